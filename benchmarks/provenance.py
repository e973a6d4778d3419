"""What a result file ran: the git commit, the model folder's identity and the resolved config sections.

A result that names only `configs/local.yaml` plus overrides stops saying what it measured the day the file
changes (lr 2e-4 -> 4e-4 did that to earlier results). So every benchmark writes `provenance(...)` beside its
figures: the commit (and whether the tree was dirty), the model folder's merge stamp or weights digest with its
fine-tuning card's summary, and the ttt, inference, budget and model sections as they were resolved.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict, is_dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
SECTIONS = ("model", "ttt", "inference", "budget", "views")


def use_fixtures() -> None:
    """Put tests/ on the import path, so a benchmark imports the models and references the tests run on
    (`from fixtures.tiny_models import char_tokenizer`), the one copy of each."""
    if TESTS not in sys.path:
        sys.path.append(TESTS)


def git_state(root: str = ROOT) -> dict:
    """The commit and whether tracked files differ from it (an untracked result file does not count)."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def file_digest(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()[:16]


def model_identity(folder: str) -> dict:
    """The folder, its merge stamp (the kit adapter's digest: `make model`), else a digest of its weights, and its
    fine-tuning card's summary when it has one."""
    out: dict = {"folder": os.path.relpath(os.path.abspath(folder), ROOT)}
    stamp = os.path.join(folder, "merged_adapter.sha256")
    if os.path.isfile(stamp):
        out["merge_stamp"] = open(stamp, encoding="utf-8").read().strip()
    elif os.path.isdir(folder):
        weights = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
        out["weights_sha256"] = {f: file_digest(os.path.join(folder, f)) for f in weights}
    card = os.path.join(folder, "finetune.json")
    if os.path.isfile(card):
        with open(card, encoding="utf-8") as f:
            c = json.load(f)
        out["card"] = {k: c.get(k) for k in ("config_digest", "steps", "tokens", "mode", "lora", "finished")}
    return out


def uptime() -> str:
    """The machine's load as `uptime` prints it (the load averages alone where it is missing): a figure's
    neighbours on a shared CPU."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return " ".join(open("/proc/loadavg").read().split()[:3])


def pyplot():
    """matplotlib's pyplot on the Agg backend, or None (and why, printed) where matplotlib is missing: a benchmark
    writes its JSON whether or not it can draw."""
    try:
        import matplotlib  # optional: the figures are extra, the JSON is the result

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # optional as above
    except ImportError as e:
        print(f"no plot: matplotlib is not importable ({e})")
        return None
    return plt


def write_result(path: str, result: dict) -> None:
    """A benchmark's JSON, written whole or not at all (a run stopped mid-write keeps the previous file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    os.replace(path + ".tmp", path)
    print(f"wrote {path}")


def provenance(cfg=None, *, model_folder: str | None = None, config_file: str | None = None,
               overrides: list[str] | tuple[str, ...] = (), adapter: str | None = None) -> dict:
    """The provenance block of a result file. `cfg`: the resolved config (a RunConfig, FinetuneConfig or any
    dataclass); its model, ttt, inference, budget and views sections are stored as resolved. `adapter`: an adapter
    folder measured on top of the model (its card's summary and weights digest)."""
    out: dict = {"git": git_state()}
    if config_file is not None:
        out["config_file"] = os.path.relpath(os.path.abspath(config_file), ROOT)
        out["overrides"] = list(overrides)
    if cfg is not None and is_dataclass(cfg):
        resolved = asdict(cfg)
        out["resolved"] = {k: resolved[k] for k in (*SECTIONS, "train", "lora", "data") if k in resolved}
    folder = model_folder or (getattr(getattr(cfg, "model", None), "path", None))
    if folder:
        out["model"] = model_identity(folder)
    if adapter:
        out["adapter"] = model_identity(adapter)
    return out
