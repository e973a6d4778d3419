"""Folders replaced whole: a model, an adapter or a checkpoint is written beside its place and renamed over it,
so a write killed at any moment leaves a complete folder (the old one or the new one), never half of each.

Deleting the old folder first and then renaming the new one in (what the kit did before) loses both to a kill
between the two steps: the old one is gone and the new one still has its temporary name.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from typing import Iterator


def _beside(dst: str) -> tuple[str, str]:
    """The new folder while it is written, and the old one while it is set aside (fixed names, so that the next
    write finds what a killed one left)."""
    return dst + ".tmp", dst + ".old"


def recover_folder(dst: str | os.PathLike) -> bool:
    """Undo what a write killed mid-way left: if `dst` is missing but its old copy is set aside (the kill came
    between the two renames), put it back. True when it did. Readers call it before looking for `dst`."""
    dst = os.path.normpath(os.fspath(dst))
    _, old = _beside(dst)
    if not os.path.exists(dst) and os.path.isdir(old):
        os.replace(old, dst)
        return True
    return False


@contextlib.contextmanager
def atomic_folder(dst: str | os.PathLike) -> Iterator[str]:
    """An empty folder beside `dst` to write into; when the block ends without an exception it takes `dst`'s
    place: the old `dst` renamed aside, the new one renamed in, the old one removed. At every moment a complete
    folder is at `dst`, or (between the two renames) set aside where `recover_folder` puts it back. On an exception
    the new folder is removed and `dst` is left as it was."""
    dst = os.path.normpath(os.fspath(dst))
    tmp, old = _beside(dst)
    recover_folder(dst)
    shutil.rmtree(tmp, ignore_errors=True)  # a killed write's leftovers: never complete, or already superseded
    shutil.rmtree(old, ignore_errors=True)
    os.makedirs(tmp)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if os.path.exists(dst):
        os.replace(dst, old)
    os.replace(tmp, dst)
    shutil.rmtree(old, ignore_errors=True)
