"""The `arc-ttt train-grid` sub-command: its parser and the command, torch loaded only when it runs (the CLI's
other commands, and `--help`, start without it)."""
from __future__ import annotations

import argparse

from ..core.gridconfig import load_grid_config


def cmd_train_grid(args: argparse.Namespace) -> int:
    from .gridtrain import CARD, train_grid  # loads torch: only for this sub-command

    cfg = load_grid_config(args.config, args.set or ())
    result = train_grid(cfg, resume=args.resume, progress_bar=not args.quiet)  # a UserError: cli.main says it
    card = result.card
    after = (card["evaluations"]["after"] or {}).get("holdout")
    held = f"held-out exact {after['exact']}/{after['of']}, cells {after['cell_accuracy']}" if after else "no evaluation"
    print(f"{'finished' if result.finished else 'stopped (run again with --resume)'}: step {card['steps']} of "
          f"{cfg.train.steps}, {card['cells']} cells in {card['train_seconds']:.0f} s; {held}; "
          f"card: {result.out_dir}/{CARD}")
    return 0


def add_grid_parser(sub) -> None:
    p = sub.add_parser("train-grid", help="train the recursive grid model (TRM-style) on ARC tasks -> model/ + card")
    p.add_argument("--config", required=True, help="YAML config (configs/grid-local.yaml, configs/grid-l4.yaml)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. train.steps=200 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in output.dir")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train_grid)
