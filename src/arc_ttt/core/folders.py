"""Files and folders replaced whole, the kit's one atomic writer: a file (`atomic_file`, `write_json_atomic`) or a
folder (a model, an adapter, a checkpoint: `atomic_folder`) is written beside its place and renamed over it, so a
write killed at any moment leaves the old one or the new one, never half of each. A folder's cards and stamps are
written inside its block (`write_files`), so they arrive with it.

Deleting the old folder first and then renaming the new one in (what the kit did before) loses both to a kill
between the two steps: the old one is gone and the new one still has its temporary name.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from typing import IO, Any, Iterator, Mapping, Union


def _beside(dst: str) -> tuple[str, str]:
    """The new folder while it is written, and the old one while it is set aside (fixed names, so that the next
    write finds what a killed one left)."""
    return dst + ".tmp", dst + ".old"


def recover_folder(dst: str | os.PathLike) -> bool:
    """Undo what a write killed mid-way left: if `dst` is missing but its old copy is set aside (the kill came
    between the two renames), put it back. True when it did. An old copy beside a `dst` (the kill came after the
    new one was renamed in) is superseded: removed. Readers call it before looking for `dst`."""
    dst = os.path.normpath(os.fspath(dst))
    _, old = _beside(dst)
    if not os.path.exists(dst) and os.path.isdir(old):
        os.replace(old, dst)
        return True
    shutil.rmtree(old, ignore_errors=True)
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


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, binary: bool = False) -> Iterator[IO]:
    """A new file beside `path` to write into (text, or bytes with `binary`); when the block ends without an
    exception it is flushed to disk and renamed over `path`: readers see the old file or the new one, whole. A
    new inode, never a write through the old one (the bundle hard-links model files; a write into a shared inode
    would change the source too). On an exception the new file is removed and `path` left as it was."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; outputs are for others to read
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _sync_folder(folder)


def _sync_folder(folder: str) -> None:
    """Make a rename in `folder` durable (not every file system can open a folder: then nothing to do)."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int | None = None) -> None:
    """`obj` as JSON through `atomic_file` (compact unless `indent`): a serialising error leaves the old file."""
    with atomic_file(path) as f:
        json.dump(obj, f, **({"indent": indent} if indent else {"separators": (",", ":")}))
        if indent:
            f.write("\n")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_file(path) as f:
        f.write(text)


FileContents = Union[str, dict]  # a folder's extra file: text as it is, or a JSON object


def write_files(folder: str | os.PathLike, files: Mapping[str, FileContents]) -> None:
    """A folder's small files (cards, stamps, markers) by name, each written atomically. Called on the folder
    that `atomic_folder` yields, they are there before the rename: no current-looking folder lacks them."""
    for name, contents in files.items():
        if isinstance(contents, dict):
            write_json_atomic(os.path.join(folder, name), contents, indent=2)
        else:
            write_text_atomic(os.path.join(folder, name), contents)
