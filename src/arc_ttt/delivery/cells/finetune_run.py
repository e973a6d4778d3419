from arc_ttt.runner.finetune import finetune

result = finetune(cfg, resume=resume)
card = result.card
before, after = card["holdout"]["before"], card["holdout"]["after"]
print(("finished" if result.finished else "stopped: run the notebook again to resume"),
      f"at step {card['steps']} of {cfg.train.steps}; {card['tokens']} tokens in {card['train_seconds']:.0f} s")
print(f"held-out NLL per output token {before['nll']} -> {after['nll']}; "
      f"greedy exact {before['exact']}/{before['of']} -> {after['exact']}/{after['of']}")
print("training tasks:", card["data"]["train_tasks"], "| excluded as overlapping the evaluation sets:",
      card["data"]["excluded_by_id"], "by id,", card["data"]["excluded_by_grid"], "by grid")
if result.finished and cfg.output.merge:
    print("model folder:", os.path.join(cfg.output.dir, "model"))
