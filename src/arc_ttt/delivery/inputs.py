"""The inputs a Kaggle run needs attached, found under /kaggle/input by the files they must hold.

Kaggle mounts attached data read-only under `/kaggle/input`, in one of several layouts that changed
over the years:

    /kaggle/input/<slug>/...                                           (older: competitions and datasets)
    /kaggle/input/competitions/<slug>/...
    /kaggle/input/datasets/<owner>/<slug>/...
    /kaggle/input/models/<owner>/<model>/<framework>/<variation>/<version>/...

so inputs are found by searching for the files they must contain, never by one hard-coded path: the
competition's challenges file, a model folder, the wheels dataset (installed offline from there), and the grid
model the code dataset carries when the config's candidate sources name it.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

KAGGLE_INPUT = "/kaggle/input"
CHALLENGES_FILE = "arc-agi_test_challenges.json"
WHEEL_MANIFEST = "arc-ttt-wheels-manifest.json"  # distinctive: another dataset's manifest.json is not ours
MAX_DEPTH = 8  # models/<owner>/<model>/<framework>/<variation>/<version>/ is 6 deep; leave room for sub-folders
MODEL_WEIGHTS = (".safetensors", ".bin", ".gguf")
GRID_CARD = "grid_model.json"  # core.gridconfig.MODEL_CARD: a saved grid model's card


class InputNotFound(FileNotFoundError):
    """An input the run needs is not attached; the message lists what was searched."""


def _walk(root: str, max_depth: int = MAX_DEPTH) -> Iterator[tuple[str, list[str], list[str]]]:
    """os.walk in sorted order, following Kaggle's symlinked mounts, at most `max_depth` folders deep."""
    root = os.path.abspath(root)
    base = root.rstrip(os.sep).count(os.sep)
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        files.sort()
        if folder.rstrip(os.sep).count(os.sep) - base >= max_depth:
            dirs[:] = []
        yield folder, dirs, files


def _searched(root: str) -> str:
    if not os.path.isdir(root):
        return f"{root} (does not exist)"
    tops = sorted(os.listdir(root))
    return f"{root} ({', '.join(tops) if tops else 'empty'})"


def _pick(kind: str, matches: list[str], prefer: str | None, root: str) -> str:
    if prefer:
        preferred = [m for m in matches if prefer in os.path.relpath(m, root).split(os.sep)]
        if preferred:
            matches = preferred
    if len(matches) > 1:
        listing = "\n  ".join(matches)
        raise InputNotFound(f"several {kind} candidates under {root}; pass the one to use explicitly:\n  {listing}")
    return matches[0]


def find_file(root: str, name: str, *, prefer: str | None = None, what: str | None = None) -> str:
    """The one file called `name` under `root` (or the one inside a folder called `prefer`)."""
    matches = [os.path.join(d, name) for d, _, files in _walk(root) if name in files]
    if not matches:
        raise InputNotFound(
            f"no {what or name} found: searched {_searched(root)} up to {MAX_DEPTH} folders deep for {name}. "
            f"Attach the data (Add Input) or pass its path explicitly.")
    return _pick(what or name, matches, prefer, root)


def other_challenges(root: str, chosen: str, name: str = CHALLENGES_FILE) -> list[str]:
    """Challenges files under `root` besides the one chosen (another competition or a dataset's copy)."""
    return [os.path.join(d, name) for d, _, files in _walk(root)
            if name in files and os.path.abspath(os.path.join(d, name)) != os.path.abspath(chosen)]


def find_challenges(root: str = KAGGLE_INPUT, name: str = CHALLENGES_FILE, competition: str | None = None) -> str:
    """The competition's test challenges file, in the old or the new mount layout.

    With `competition` (the slug), a file inside a folder of that name wins over copies other attached
    datasets may hold; among several left, one under `competitions/` wins. Only a real tie is an error.
    """
    matches = [os.path.join(d, name) for d, _, files in _walk(root) if name in files]
    if competition and len(matches) > 1:
        named = [m for m in matches if competition in os.path.relpath(m, root).split(os.sep)]
        matches = named or matches
    if len(matches) > 1:
        mounted = [m for m in matches if os.path.relpath(m, root).split(os.sep)[0] == "competitions"]
        matches = mounted or matches
    if not matches:
        raise InputNotFound(f"no challenges file found: searched {_searched(root)} up to {MAX_DEPTH} folders deep for "
                            f"{name}. {competition_hint(competition)}")
    return _pick("challenges file", matches, None, root)


def competition_hint(competition: str | None) -> str:
    """What to do when the competition's data is not attached: the slug, and the rules to accept."""
    named = f"competition {competition!r}" if competition else "the competition"
    return (f"The kernel attaches {named} (competition_sources in kernel-metadata.json). If `kaggle kernels push` "
            f"printed 'not valid competition sources', the slug is wrong or you have not joined the competition: open "
            f"its page, Join Competition and accept the rules. The slug is the last part of the page's URL "
            f"(kaggle.com/competitions/<slug>, or `kaggle competitions list -s arc`); rebuild with make kernel "
            f"KERNEL_ARGS=\"--competition <slug>\", or attach it in the notebook editor (Add Input -> Competitions).")


def competition_mounts(root: str, name: str = CHALLENGES_FILE) -> dict[str, str]:
    """slug -> challenges file, for each competition mounted under `root`/competitions/ (the layout Kaggle mounts
    competitions in today; a dataset's copy of the file is not a competition)."""
    out: dict[str, str] = {}
    for folder, _, files in _walk(os.path.join(root, "competitions")):
        if name in files:
            slug = os.path.relpath(folder, os.path.join(root, "competitions")).split(os.sep)[0]
            out.setdefault(slug, os.path.join(folder, name))
    return out


def is_model_dir(folder: str, files: list[str] | None = None) -> bool:
    """Whether `folder` holds a model: config.json + weights, or a .gguf file (False for a path that is no folder)."""
    if files is None:
        if not os.path.isdir(folder):
            return False
        files = os.listdir(folder)
    if any(f.endswith(".gguf") for f in files):
        return True
    return "config.json" in files and any(f.endswith(MODEL_WEIGHTS) for f in files)


def find_model_dir(root: str = KAGGLE_INPUT, prefer: str | None = None) -> str:
    """A Hugging Face model folder (config.json + weights) or a folder holding a GGUF file."""
    matches = [d for d, _, files in _walk(root) if is_model_dir(d, files)]
    if not matches:
        raise InputNotFound(
            f"no model folder found: searched {_searched(root)} up to {MAX_DEPTH} folders deep for a folder "
            f"with config.json and {'/'.join(MODEL_WEIGHTS[:2])} weights, or a .gguf file. "
            f"Attach the model dataset or Kaggle model, or pass its path explicitly.")
    return _pick("model folder", matches, prefer, root)


GRID_MODEL_DIR = "grid_model"  # where the code dataset carries a grid model (`inference.sources` naming grid)


def find_grid_model(root: str = KAGGLE_INPUT) -> str | None:
    """The grid model the bundle carried (a folder `grid_model` holding its card and weights), or None: only a
    config whose sources name grid uses it."""
    matches = [d for d, _, files in _walk(root) if os.path.basename(d) == GRID_MODEL_DIR and GRID_CARD in files]
    return _pick("grid model folder", matches, None, root) if matches else None


def find_wheelhouse(root: str = KAGGLE_INPUT) -> str:
    """The wheels dataset: the folder holding the wheelhouse manifest."""
    return os.path.dirname(find_file(root, WHEEL_MANIFEST, what="wheelhouse manifest"))


def install_wheelhouse(folder: str, python: str = sys.executable) -> list[str]:
    """pip install the wheelhouse's requirements offline; packages already installed at the pinned version stay."""
    reqs = os.path.join(folder, "requirements.txt")
    cmd = [python, "-m", "pip", "install", "--no-index", "--find-links", folder, "--quiet",
           "--disable-pip-version-check", "-r", reqs]
    subprocess.run(cmd, check=True)
    return cmd
