records, summary = [], {}
with scoringrun.rerun_guard(env, "the run", output_dir):
    from arc_ttt.runner.pipeline import run

    if command:  # one torchrun worker per GPU, sharing the tasks (arc_ttt.runner.workers)
        launch.run_workers(command, check=not env.scoring_run)  # a killed worker never fails the scoring run
    else:
        run(cfg, solve_limit=limit)
    log_json = launch.read_log(cfg.output.dir)
    records, summary = log_json["tasks"], log_json["summary"]
    print("submission:", os.path.join(cfg.output.dir, "submission.json"))
    print(f"{len(records)} tasks in {summary['seconds']:.0f} s: {summary['status']}")
