records, summary = [], {}
with scoringrun.rerun_guard(env, "the run", output_dir):
    from arc_ttt.runner.pipeline import run

    if command and env.scoring_run:  # a killed worker never fails it: relaunched with --resume while budget remains
        launch.supervise_workers(launch.relaunch_commands(config_path, [*overrides, *OVERRIDES], cfg.output.dir,
                                                          solve_limit=limit), n_workers, cfg.budget.seconds)
    elif command:  # one torchrun worker per GPU, sharing the tasks (arc_ttt.runner.workers)
        launch.run_workers(command)  # the commit run: a dead worker stops it
    else:
        run(cfg, solve_limit=limit)
    log_json = launch.read_log(cfg.output.dir)
    records, summary = log_json["tasks"], log_json["summary"]
    print("submission:", os.path.join(cfg.output.dir, "submission.json"))
    print(f"{len(records)} tasks in {summary['seconds']:.0f} s: {summary['status']}")
