"""Fingerprints of the bundle's datasets: what the builder shipped, recomputed on Kaggle from what is attached.

A kernel attaches whatever version of each dataset Kaggle has processed; an upload still processing, or an older
version pinned, runs silently with stale code, wheels or weights. The commit alone cannot tell (two dirty builds share
one `<sha>+dirty` stamp, and the model and wheels datasets carry no commit), so the builder writes a fingerprint of
each into BUILD.json and the kernel's parameters, and the commit run recomputes them from the mounted folders.

Weights are gigabytes: a folder's fingerprint takes each top-level file's name and size, small files whole and large
ones sampled (start, middle, end), which a retrained or re-merged model changes in every tensor. Standard library only.
"""
from __future__ import annotations

import hashlib
import os

SAMPLE = 1 << 20  # bytes read at each of a large file's three places
WHOLE = 4 << 20  # files up to this size are hashed whole
IGNORED = ("dataset-metadata.json",)  # the CLI's upload metadata, not the dataset's content
CONFIG_SUFFIXES = (".yaml", ".yml")


def _update_with_file(h: "hashlib._Hash", path: str) -> None:
    size = os.path.getsize(path)
    h.update(f"{size}\n".encode())
    with open(path, "rb") as f:
        if size <= WHOLE:
            h.update(f.read())
            return
        for offset in (0, size // 2 - SAMPLE // 2, size - SAMPLE):
            f.seek(offset)
            h.update(f.read(SAMPLE))


def _digest(files: list[tuple[str, str]]) -> str:
    """sha256 over (name, size, content or samples) of each (name, path), in name order."""
    h = hashlib.sha256()
    for name, path in sorted(files):
        h.update(name.encode() + b"\0")
        _update_with_file(h, path)
    return h.hexdigest()


def folder_fingerprint(folder: str) -> str:
    """A model or wheels dataset: its top-level files (sub-folders are not part of either), the CLI's metadata left out."""
    return _digest([(name, os.path.join(folder, name)) for name in os.listdir(folder)
                    if name not in IGNORED and os.path.isfile(os.path.join(folder, name))])


def code_fingerprint(code_src: str) -> str:
    """The code dataset's content: every file of `code_src`/arc_ttt (bytecode left out: importing writes it) and the
    configs beside `code_src` (`code_src`/../configs/*.yaml), as the builder vendors them and the notebook mounts or
    unpacks them."""
    package = os.path.join(code_src, "arc_ttt")
    files = []
    for folder, dirs, names in os.walk(package):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        files += [("src/" + os.path.relpath(os.path.join(folder, n), package).replace(os.sep, "/"), os.path.join(folder, n))
                  for n in names if not n.endswith(".pyc")]
    configs = os.path.join(os.path.dirname(os.path.abspath(code_src)), "configs")
    if os.path.isdir(configs):
        files += [("configs/" + n, os.path.join(configs, n)) for n in os.listdir(configs) if n.endswith(CONFIG_SUFFIXES)]
    return _digest(files)
