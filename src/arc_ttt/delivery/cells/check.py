# The commit run: fail loudly when every task it tried errored, and project the scoring rerun
# (120 and 240 tasks) from the speed measured here, with this GPU and this config.
with scoringrun.rerun_guard(env, "the commit-run checks", output_dir):
    commitrun.check_commit_run(env, records, limit)
    if limit is not None:
        where = f"{n_workers} x {gpu.name or 'CPU'}, {os.path.basename(config_path)}"
        for line in commitrun.projection_lines(commitrun.project_rerun(records, cfg, workers=n_workers), where):
            print(line)
