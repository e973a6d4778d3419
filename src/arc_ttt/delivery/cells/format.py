# The commit run's format check (delivery/formatcheck.py): the model reads known answers (the quick tasks' solutions,
# a few tasks' last demonstration) in the run's prompt format, teacher-forced; a model shown a format it was not
# trained in passes every check above and scores about 0, so above the calibrated limit the commit run stops here,
# before the run. FORMAT_NLL_LIMIT moves the limit. The scoring rerun skips it.
with scoringrun.rerun_guard(env, "the format check", output_dir):
    if env.commit_run:
        from arc_ttt.core.tasks import select_tasks
        from arc_ttt.delivery import formatcheck

        formatcheck.check_format(env, cfg, format_name, select_tasks(cfg.data).valid, quick=limit,
                                 limit=FORMAT_NLL_LIMIT)
