"""`arc-ttt` command line: one sub-command per job."""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

from .core.formats.codec import TokenizerFormatError
from .core.config import ConfigError, InferenceConfig, load_config
from .core.configfile import build
from .core.errors import UserError
from .core.modelfolder import ModelFolderError
from .core.policy import PolicyFileError
from .core.ranking import RULES, rescore
from .core.submission import score_submission, validate_submission
from .core.tasks import TaskFileError, parse_task, read_json_object
from .core import formats
from .delivery import wheelhouse
from .delivery.accelerator import MACHINE_SHAPES
from .delivery.bundle import DEFAULT_OUT, BundleSpec, build_bundle
from .delivery.metadata import KAGGLE_LICENSES, MetadataError
from .runner.gridcommand import add_grid_parser
from .runner.pipeline import run
from .synth.command import add_synth_parser

# What a user's mistake raises (the kit's own error classes): `main` prints the message and exits 2. Anything else
# is a bug and keeps its traceback.
USER_ERRORS = (UserError, TaskFileError, ConfigError, TokenizerFormatError, ModelFolderError, PolicyFileError,
               MetadataError, wheelhouse.WheelhouseError)


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


def cmd_rescore(args: argparse.Namespace) -> int:
    logged = read_json_object(args.log, "run log")
    solutions = read_json_object(args.solutions, "solutions")
    tasks = logged.get("tasks")
    if not isinstance(tasks, list):
        raise TaskFileError(f"{args.log}: no `tasks` list: not a log.json written by `arc-ttt run`")
    rules = args.rules.split(",")
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise UserError(f"unknown rule(s) {', '.join(unknown)}; choose from {', '.join(RULES)}")
    sources = args.sources.split(",") if args.sources else None  # the run that had only those, votes counted again
    inference = logged.get("config", {}).get("inference", {})
    threshold = sources and build(InferenceConfig, inference, args.log).vote_threshold
    try:
        rows = [r.row() for r in rescore(tasks, solutions, rules, sources=sources, threshold=threshold)]
    except ValueError as e:  # a log written before its candidates' views named their sources
        raise UserError(f"{args.log}: {e}") from None
    print(f"{'rule':<6} {'top2':>6} {'top1':>6} {'oracle':>7} {'mean rank':>10}  ({rows[0]['outputs']} test outputs"
          + (f", proposed by {', '.join(sources)})" if sources else ")"))
    for r in rows:
        mean_rank = "-" if r["mean_rank"] is None else f"{r['mean_rank']:.2f}"
        print(f"{r['rule']:<6} {r['top2']:>6.3f} {r['top1']:>6.3f} {r['oracle']:>7.3f} {mean_rank:>10}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    overrides = list(args.set or [])
    if args.output:
        overrides.append(f"output.dir={args.output}")
    if args.resume:
        overrides.append("output.resume=true")
    cfg = load_config(args.config, overrides)
    result = run(cfg, progress=not args.quiet, solve_limit=args.solve_limit)
    print(f"submission: {result.submission_path}\nlog:        {result.log_path}")
    if result.report_path:
        print(f"report:     {result.report_path}")
    status = dict(Counter(r.status for r in result.records))
    print(f"tasks: {len(result.records)} {status}; {result.seconds:.0f} s of {cfg.budget.seconds:.0f} s budget")
    if result.score is not None:
        print(f"score: {result.score:.4f} (mean over test outputs); mean over tasks: {result.task_score:.4f}")
    return 0


def cmd_kernel_build(args: argparse.Namespace) -> int:
    spec = BundleSpec(config=args.config, model=args.model, out=args.out, owner=args.owner, prefix=args.prefix,
                      competition=args.competition, wheelhouse=args.wheelhouse, model_source=args.model_source,
                      prepare=args.prepare, shrink_vocab=args.shrink_vocab, machine_shape=args.machine_shape,
                      model_license=args.model_license, model_license_note=args.model_license_note,
                      format=args.format, private=not args.public, demo=args.demo)
    bundle = build_bundle(spec)
    for line in bundle.model_lines:
        print(line)
    print(f"bundle {bundle.root} (commit {bundle.commit}, prompt format {bundle.format}), metadata valid:")
    for key, folder in bundle.folders.items():
        print(f"  {key:<7} {bundle.ids[key]:<40} {folder}")
    if bundle.commit.endswith("+dirty"):
        print("note: src/, configs/ or notebooks/ differ from the commit: commit first for a traceable bundle")
    print(f"accelerator: {bundle.machine_shape}")
    print(f"publish with: sh {os.path.join(bundle.root, 'publish.sh')}  (creates each dataset the first time, "
          f"versions it after, waits until it is ready, then pushes the kernel)")
    return 0


def cmd_wheels(args: argparse.Namespace) -> int:
    if args.wheels_command == "build":
        if not args.force and wheelhouse.is_current(args.dest, args.requirements):
            print(f"{args.dest}: up to date with {args.requirements} (manifest matches; --force to download again)")
            return 0
        report = wheelhouse.build(args.requirements, args.dest, args.image)
        for line in report.lines():
            print(line)
        if not report.ok:
            raise UserError(f"{args.dest}: closure check failed, no manifest written")
        wheels = wheelhouse.read_wheelhouse(args.dest)
        print(f"{args.dest}: {len(wheels)} wheels, closure ok, {wheelhouse.MANIFEST} written")
        for w in wheels:
            print(f"  {w.file}  {w.sha256[:12]}")
        return 0
    if args.wheels_command == "check":
        wheels = wheelhouse.read_wheelhouse(args.folder)  # a missing folder said first, as a folder
        reqs = wheelhouse.read_requirements(os.path.join(args.folder, wheelhouse.REQUIREMENTS))
        report = wheelhouse.check_closure(wheels, wheelhouse.read_image_packages(args.image), reqs)
        problems = report.lines() + wheelhouse.verify_manifest(args.folder)
        for line in problems:
            print(line)
        print(f"{args.folder}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        return 2 if problems else 0
    wheelhouse.verify(args.requirements, args.dest, args.pins)
    return 0


def cmd_prepare_model(args: argparse.Namespace) -> int:
    from .modeling.export import prepare_model  # loads torch: only for this sub-command

    dst = prepare_model(args.src, args.dst, shrink_vocab=args.shrink_vocab, dtype=args.dtype, fmt=args.format)
    print(f"model folder ready: {dst} (prompt format: {formats.read_format_file(dst)})")
    return 0


def cmd_show_prompt(args: argparse.Namespace) -> int:
    """The exact text the model is given for one test input, special tokens written out, BOS left out."""
    challenges = read_json_object(args.challenges, "challenges")
    if args.task_id not in challenges:
        raise UserError(f"no task {args.task_id!r} in {args.challenges}")
    task = parse_task(args.task_id, challenges[args.task_id])
    if not hasattr(task, "train"):
        raise UserError(f"task {args.task_id}: {task.reason}")
    if not 0 <= args.test_index < task.n_test:
        raise UserError(f"task {args.task_id} has {task.n_test} test input(s); --test-index {args.test_index} is out "
                        "of range")
    name = formats.resolve(args.format, args.model)
    query = task.test[args.test_index].input
    if args.model:
        from transformers import AutoTokenizer  # only with --model: a tokenizer resolves the special tokens

        tokenizer = AutoTokenizer.from_pretrained(args.model, local_files_only=True)
        text = formats.codec_for(name, tokenizer).prompt_text(task.train, query)
    else:
        text = formats.get_format(name).prompt_text(task.train, query)
    sys.stdout.write(text)
    if not text.endswith("\n"):
        sys.stdout.write("\n")  # the terminal's line end, not part of the prompt
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from .core.config import FinetuneConfig, load_config  # torch-free; beside the import below
    from .runner.finetune import finetune  # loads torch: only for this sub-command

    cfg = load_config(args.config, args.set or (), cls=FinetuneConfig)
    result = finetune(cfg, resume=args.resume, progress_bar=not args.quiet)
    card = result.card
    print(f"{'finished' if result.finished else 'stopped (run again with --resume)'}: step {card['steps']} of "
          f"{cfg.train.steps}, {card['tokens']} tokens in {card['train_seconds']:.0f} s; {held_out_line(card)}; "
          f"card: {result.out_dir}/finetune.json")
    return 0


def cmd_gpu_pack(args: argparse.Namespace) -> int:
    from .core.config import FinetuneConfig, load_config  # torch-free; beside the import below
    from .runner.gpu_run import pack_run  # loads torch: only for this sub-command

    cfg = load_config(args.config, args.set or (), cls=FinetuneConfig)
    spec = pack_run(cfg, args.out, int(args.tokens), weights=args.weights, part_bytes=int(args.part_mib * (1 << 20)))
    print(f"packed {spec['samples']} samples, {spec['tokens']} tokens ({spec['samples_bytes'] / 1e6:.1f} MB) and the "
          f"weights in {len(spec['weights']['parts'])} part(s) of at most {args.part_mib:g} MiB into {args.out}; "
          f"eval sets: {', '.join(f'{k} {len(v)}' for k, v in spec['eval'].items())}")
    return 0


def cmd_gpu_run(args: argparse.Namespace) -> int:
    from .runner.gpu_run import run_packed  # loads torch: only for this sub-command

    card = run_packed(args.pack, args.out, max_seconds=args.max_seconds, batch_tokens=args.batch_tokens,
                      accum=args.accum, device=args.device, eval_every=args.eval_every)
    print(f"{card['stop_reason']}: {card['steps']} of {card['planned_steps']} steps, {card['tokens']} tokens in "
          f"{card['train_seconds']:.0f} s ({card['tokens_per_second']:.0f} tokens/s on {card['device']}); "
          f"{held_out_line(card)}; adapter and card in {args.out}")
    return 0


def held_out_line(card: dict) -> str:
    """The held-out figures before and after (either may be missing: eval.at_start=false, or no evaluation yet)."""
    def fig(e: dict | None, key: str) -> str:
        return "-" if not e or e.get(key) is None else str(e[key])
    before, after = card["holdout"]["before"], card["holdout"]["after"]
    line = f"held-out NLL per output token {fig(before, 'nll')} -> {fig(after, 'nll')}"
    if after and "dev_nll" in after:
        line += f", dev set {fig(before, 'dev_nll')} -> {fig(after, 'dev_nll')}"
    if after and "dev_eval_nll" in after:
        line += f", dev-eval set {fig(before, 'dev_eval_nll')} -> {fig(after, 'dev_eval_nll')}"
    if after and "of" in after:
        line += f", greedy exact {fig(before, 'exact')}/{fig(before, 'of')} -> {after['exact']}/{after['of']}"
    return line


def add_gpu_parsers(sub) -> None:
    """`gpu-pack` (here) and `gpu-run` (on the accelerator): the one-call GPU fine-tuning run."""
    p = sub.add_parser("gpu-pack", help="the one-call GPU fine-tuning run's folder: samples pre-tokenised, eval "
                       "sets, base weights in parts (docs/finetuning.md)")
    p.add_argument("--config", required=True, help="YAML config (configs/finetune-gpu.yaml)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override (repeatable)")
    p.add_argument("--out", required=True, help="the folder to write (build/gpu-run)")
    p.add_argument("--tokens", type=float, required=True, help="sample tokens to pack, e.g. 2e7")
    p.add_argument("--weights", nargs="+", help="base weight files to ship (default: the embedded GGUF for "
                   "models/smollm2-135m, else the model folder's files)")
    p.add_argument("--part-mib", type=float, default=48.0, help="largest part (default 48 MiB: one part and the "
                   "working tree fit in one 64 MiB call)")
    p.set_defaults(func=cmd_gpu_pack)

    p = sub.add_parser("gpu-run", help="train on a packed folder (on the accelerator): adapter + card to --out")
    p.add_argument("--pack", required=True, help="the folder gpu-pack wrote")
    p.add_argument("--out", required=True, help="where the adapter and its card go")
    p.add_argument("--max-seconds", type=float, required=True, help="wall-clock cap, load and evaluations included")
    p.add_argument("--batch-tokens", type=int, default=16384, help="padded tokens per micro-batch (default 16384)")
    p.add_argument("--accum", type=int, default=4, help="micro-batches per optimizer step (default 4)")
    p.add_argument("--device", default="auto", help="auto | cuda | cpu")
    p.add_argument("--eval-every", type=int, help="also evaluate every N steps (default: before and after only)")
    p.set_defaults(func=cmd_gpu_run)


def format_arg(value: str) -> str:
    """--format: auto, a registered name or a reference `module:attr` (loaded when the format is resolved)."""
    if value == "auto" or formats.is_reference(value) or value in formats.names():
        return value
    raise argparse.ArgumentTypeError(f"unknown prompt format {value!r}: choose one of auto, "
                                     f"{', '.join(formats.names())}, or name your own as module:attr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arc-ttt", description="ARC Prize test-time-training kit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="the whole job: tasks + model + config -> submission.json, log, report")
    p.add_argument("--config", help="YAML config (configs/local.yaml, configs/kaggle.yaml, ...)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. budget.seconds=600 (repeatable)")
    p.add_argument("--output", help="output folder (= output.dir)")
    p.add_argument("--resume", action="store_true", help="skip tasks already in the output folder's journal")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--solve-limit", type=int, help="solve only the first N tasks; the rest keep fallback answers "
                   "(the Kaggle commit run's quick mode)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check a submission.json against the Kaggle rules")
    p.add_argument("challenges")
    p.add_argument("submission")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("score", help="score a submission.json with the competition metric")
    p.add_argument("challenges")
    p.add_argument("submission")
    p.add_argument("solutions")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("rescore", help="re-rank a run's logged candidates under each selection rule, no model")
    p.add_argument("log", help="log.json of a run")
    p.add_argument("--solutions", required=True, help="a Kaggle solutions file")
    p.add_argument("--rules", default=",".join(RULES), help=f"comma-separated, of: {', '.join(RULES)}")
    p.add_argument("--sources", help="only the candidates these sources proposed (comma-separated, e.g. llm): "
                                     "the run with fewer sources, from a run with all of them")
    p.set_defaults(func=cmd_rescore)

    p = sub.add_parser("finetune", help="train a model on ARC tasks (the kit's format and views) -> a model folder")
    p.add_argument("--config", required=True, help="YAML config (configs/finetune-local.yaml, configs/finetune-colab.yaml)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. train.steps=200 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in output.dir")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_finetune)

    add_gpu_parsers(sub)
    add_synth_parser(sub)
    add_grid_parser(sub)

    p = sub.add_parser("prepare-model", help="write a local model folder ready to upload (optionally vocabulary-shrunk)")
    p.add_argument("src", help="a Hugging Face model folder or a .gguf file")
    p.add_argument("dst")
    p.add_argument("--shrink-vocab", action="store_true", help="keep only the grid format's tokens (digits, newline, markers, specials)")
    p.add_argument("--dtype", default="bfloat16", choices=["auto", "bfloat16", "float16", "float32"])
    p.add_argument("--format", default="auto", type=format_arg, metavar="FORMAT",
                   help="the prompt format the model was trained on, written to DST/arc_format.json: "
                        f"{', '.join(formats.names())} or module:attr (auto: the source's arc_format.json, else kit)")
    p.set_defaults(func=cmd_prepare_model)

    p = sub.add_parser("show-prompt", help="print exactly the text a model is given for one test input")
    p.add_argument("challenges")
    p.add_argument("task_id")
    p.add_argument("--format", default="auto", type=format_arg, metavar="FORMAT",
                   help=f"{', '.join(formats.names())} or module:attr; auto: the --model folder's arc_format.json, "
                        "else kit")
    p.add_argument("--test-index", type=int, default=0)
    p.add_argument("--model", help="a model folder: its tokenizer writes the special tokens (and is checked)")
    p.set_defaults(func=cmd_show_prompt)
    add_kernel_commands(sub)
    add_wheels_commands(sub)
    return parser


def add_kernel_commands(sub) -> None:
    """`arc-ttt kernel build`: the options that fill a BundleSpec."""
    p = sub.add_parser("kernel", help="the Kaggle submission bundle")
    ksub = p.add_subparsers(dest="kernel_command", required=True)
    k = ksub.add_parser("build", help="code, wheels and model datasets + the kernel folder, metadata validated")
    k.add_argument("--config", default="configs/kaggle.yaml", help="the config the kernel runs with")
    k.add_argument("--model", help="model folder to ship as a dataset")
    k.add_argument("--model-source", help="or a Kaggle model: owner/model/framework/variation/version")
    k.add_argument("--out", default=DEFAULT_OUT)
    k.add_argument("--owner", default=None, help="Kaggle user name; default: KAGGLE_USERNAME or ~/.kaggle/kaggle.json")
    k.add_argument("--prefix", default="arc-ttt", help="slug prefix of the datasets and the kernel")
    k.add_argument("--competition", help="the competition's slug (e.g. arc-prize-2026), attached and its test file "
                   "preferred in the notebook; default: the config's kaggle.competition (arc-prize-2025)")
    k.add_argument("--wheelhouse", default="wheels/wheelhouse", help="built by `make wheels`")
    k.add_argument("--prepare", action="store_true", help="re-save the weights through prepare_model")
    k.add_argument("--shrink-vocab", action="store_true", help="prepare_model with the vocabulary cut to the grid tokens")
    k.add_argument("--machine-shape", help="the accelerator (overrides the config's kaggle.machine_shape), one of "
                   + ", ".join(MACHINE_SHAPES))
    k.add_argument("--format", choices=formats.names(), help="the model's prompt format, when neither the config's "
                   "model.format nor the folder's arc_format.json names it (the build refuses to guess)")
    k.add_argument("--model-license", default="apache-2.0", choices=KAGGLE_LICENSES, metavar="LICENCE",
                   help="licence of the weights dataset (the model's own), a name Kaggle accepts: "
                        + ", ".join(KAGGLE_LICENSES))
    k.add_argument("--model-license-note", help="the weights dataset's description, e.g. which licence 'other' is")
    k.add_argument("--public", action="store_true", help="a public kernel (default private)")
    k.add_argument("--demo", action="store_true", help="ship the kit's demonstration model (it scores about 0)")
    k.set_defaults(func=cmd_kernel_build)


def add_wheels_commands(sub) -> None:
    """`arc-ttt wheels build|check|verify`: the offline wheelhouse."""
    p = sub.add_parser("wheels", help="the offline wheelhouse for the Kaggle image")
    wsub = p.add_subparsers(dest="wheels_command", required=True)
    w = wsub.add_parser("build", help="download for Kaggle, check the closure, write the manifest")
    w.add_argument("--requirements", default="wheels/requirements-kaggle.txt")
    w.add_argument("--dest", default="wheels/wheelhouse")
    w.add_argument("--image", default=wheelhouse.IMAGE_PACKAGES)
    w.add_argument("--force", action="store_true", help="download even when the manifest matches the requirements")
    w = wsub.add_parser("check", help="closure and manifest check of an existing wheelhouse")
    w.add_argument("folder")
    w.add_argument("--image", default=wheelhouse.IMAGE_PACKAGES)
    w = wsub.add_parser("verify", help="offline install into a clean venv for this machine, then import")
    w.add_argument("--requirements", default="wheels/requirements-kaggle.txt")
    w.add_argument("--dest", default="build/wheels-verify")
    w.add_argument("--pins", default="requirements.txt", help="versions for the image stand-ins (torch, numpy, ...)")
    for w in wsub.choices.values():
        w.set_defaults(func=cmd_wheels)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
