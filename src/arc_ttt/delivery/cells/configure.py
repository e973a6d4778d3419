# From here on, the Kaggle scoring run never raises (rerun_guard): an error is printed and logged, and the last
# cell re-validates submission.json. Everywhere else errors stop the notebook, so that they are seen.
from arc_ttt.core.config import load_config

with scoringrun.rerun_guard(env, "configure", output_dir):
    from arc_ttt.modeling.embedded import DEFAULT_ARC_MODEL_DIR, DEFAULT_MODEL_DIR, ensure_arc_model, ensure_default_model

    config_path = os.path.abspath(environment.resolve_config(CONFIG or environment.default_config_name(env)))
    # On the commit run the placeholder's tasks are evaluation tasks: score the quick tasks against their solutions.
    solutions = SOLUTIONS or (commitrun.quick_solutions(env, CHALLENGES) if env.on_kaggle else None)
    overrides = environment.run_overrides(
        env, challenges=CHALLENGES, solutions=solutions, model=MODEL, output_dir=output_dir,
        budget_seconds=BUDGET_SECONDS, max_tasks=MAX_TASKS, competition=COMPETITION, format_name=FORMAT)
    cfg = load_config(config_path, [*overrides, *OVERRIDES])
    if not env.on_kaggle and cfg.model.path == DEFAULT_ARC_MODEL_DIR:
        ensure_arc_model(cfg.model.path)  # the embedded default: SmolLM2-135M + the kit's ARC adapter, merged on first use
    elif not env.on_kaggle and cfg.model.path == DEFAULT_MODEL_DIR:
        ensure_default_model(cfg.model.path)  # SmolLM2-135M as packaged, converted from its GGUF on first use
    limit = environment.solve_limit(env, cfg.kaggle.commit_run, cfg.kaggle.quick_tasks)
    print("config:", config_path)
    for item in [*overrides, *OVERRIDES]:
        print("  ", item)
    if limit is not None:
        print(f"Kaggle commit run, commit_run=quick: solving {limit} tasks, the rest get fallback answers")
    # What runs: the model, its prompt format and the transformers versions. On the commit run, a folder the
    # installed transformers would load wrongly (e.g. saved by 5.x without a top-level rope_theta) stops here, and so
    # does the kit's demonstration model (it scores about 0) unless ALLOW_DEMO says it is meant.
    format_name, format_source = commitrun.resolve_format(cfg.model.format, cfg.model.path)
    model_lines, model_problem = commitrun.model_report(env, cfg.model.path, format_name, format_source,
                                                         allow_demo=ALLOW_DEMO)
    for line in model_lines:
        print(line)
    if model_problem:
        print("WARNING:", model_problem)
    if env.on_kaggle:  # the attached weights are the ones built with (a stale version raises on the commit run)
        model_problem = commitrun.check_fingerprint(env, "model", cfg.model.path, fingerprints)
        if model_problem:
            print("WARNING:", model_problem)
