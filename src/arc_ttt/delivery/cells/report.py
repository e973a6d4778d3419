with scoringrun.rerun_guard(env, "the report", output_dir):
    from IPython.display import HTML, display

    quick = commitrun.quick_score_line(records) if limit is not None else None
    if quick:
        print(quick)  # the fallback-answered tasks are left out: they would dilute the score
    elif summary.get("score") is not None:
        print(f"score: {summary['score']:.4f} (mean over test outputs)")
    report = os.path.join(cfg.output.dir, "report.html")
    if os.path.exists(report):
        with open(report, encoding="utf-8") as f:
            display(HTML(f.read()))
