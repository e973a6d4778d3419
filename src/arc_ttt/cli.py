"""`arc-ttt` command line: one sub-command per job."""
from __future__ import annotations

import argparse
import sys

from .submission import score_submission, validate_submission
from .tasks import TaskFileError, read_json_object


def cmd_validate(args: argparse.Namespace) -> int:
    challenges = read_json_object(args.challenges, "challenges")
    submission = read_json_object(args.submission, "submission")
    problems = validate_submission(challenges, submission)
    if problems:
        print(f"{args.submission}: {len(problems)} problem(s)")
        for p in problems:
            print(f"  - {p}")
        return 1
    n = sum(len(t.get("test", [])) for t in challenges.values() if isinstance(t, dict))
    print(f"{args.submission}: valid ({len(challenges)} tasks, {n} test outputs)")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    challenges = read_json_object(args.challenges, "challenges")
    submission = read_json_object(args.submission, "submission")
    solutions = read_json_object(args.solutions, "solutions")
    problems = validate_submission(challenges, submission)
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    score = score_submission({k: v for k, v in solutions.items() if k in challenges}, submission)
    width = max(map(len, score.per_task), default=8)
    for tid, hits in score.per_task.items():
        marks = " ".join("✓" if h else "·" for h in hits)
        print(f"{tid:<{width}}  {sum(hits)}/{len(hits)}  {marks}")
    print(f"score: {score.output_mean:.4f} ({score.n_correct}/{score.n_outputs} test outputs); "
          f"mean over tasks: {score.task_mean:.4f} ({len(score.per_task)} tasks)")
    return 0


def cmd_prepare_model(args: argparse.Namespace) -> int:
    from .model import prepare_model

    dst = prepare_model(args.src, args.dst, shrink_vocab=args.shrink_vocab, dtype=args.dtype)
    print(f"model folder ready: {dst}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arc-ttt", description="ARC Prize test-time-training kit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a submission.json against the Kaggle rules")
    p.add_argument("challenges")
    p.add_argument("submission")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("score", help="score a submission.json with the competition metric")
    p.add_argument("challenges")
    p.add_argument("submission")
    p.add_argument("solutions")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("prepare-model", help="write a local model folder ready to upload (optionally vocabulary-shrunk)")
    p.add_argument("src", help="a Hugging Face model folder or a .gguf file")
    p.add_argument("dst")
    p.add_argument("--shrink-vocab", action="store_true", help="keep only the grid format's tokens (digits, newline, markers, specials)")
    p.add_argument("--dtype", default="bfloat16", choices=["auto", "bfloat16", "float16", "float32"])
    p.set_defaults(func=cmd_prepare_model)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TaskFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
