"""core.folders: a folder is replaced whole, and a write killed at any step leaves a complete folder."""
import os
import shutil

import pytest

from arc_ttt.core import folders
from arc_ttt.core.folders import atomic_folder, recover_folder

OLD = {"weights.bin": "old weights", "config.json": "old config"}
NEW = {"weights.bin": "new weights", "tokenizer.json": "new tokenizer"}


def fill(folder, files: dict) -> None:
    for name, text in files.items():
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)


def contents(folder) -> dict | None:
    """Every file of the folder and its text; None when there is no folder."""
    if not os.path.isdir(folder):
        return None
    return {name: open(os.path.join(folder, name)).read() for name in sorted(os.listdir(folder))}


@pytest.fixture
def dst(tmp_path):
    """A folder that holds the old version."""
    path = tmp_path / "model"
    path.mkdir()
    fill(path, OLD)
    return str(path)


def test_a_write_replaces_the_folder_and_leaves_nothing_beside_it(dst):
    with atomic_folder(dst) as tmp:
        assert os.path.dirname(tmp) == os.path.dirname(dst) and contents(tmp) == {}  # beside: the rename is atomic
        fill(tmp, NEW)
        assert contents(dst) == OLD  # nothing changes until the block ends
    assert contents(dst) == NEW  # the old files are gone, not merged
    assert os.listdir(os.path.dirname(dst)) == ["model"]


def test_a_write_creates_a_missing_folder_and_takes_a_trailing_slash(tmp_path):
    with atomic_folder(str(tmp_path / "fresh") + "/") as tmp:
        fill(tmp, NEW)
    assert contents(tmp_path / "fresh") == NEW and os.listdir(tmp_path) == ["fresh"]


def test_an_exception_inside_leaves_the_old_folder_and_no_temporary_one(dst):
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_folder(dst) as tmp:
            fill(tmp, {"weights.bin": "half"})
            raise RuntimeError("disk full")
    assert contents(dst) == OLD
    assert os.listdir(os.path.dirname(dst)) == ["model"]


class Killed(BaseException):
    """The process dies here: no cleanup runs after it (BaseException, like a signal, passes `except Exception`)."""


def commit_steps(monkeypatch, kill_at: int | None) -> list[str]:
    """Make the commit's renames and removals die at step `kill_at` (1-based); returns the steps as they run."""
    steps, rename, remove = [], os.replace, shutil.rmtree

    def step(name, real):
        def run(*args, **kwargs):
            steps.append(name)
            if len(steps) == kill_at:
                raise Killed(name)
            return real(*args, **kwargs)
        return run

    monkeypatch.setattr(folders.os, "replace", step("rename", rename))
    monkeypatch.setattr(folders.shutil, "rmtree", step("remove", remove))
    return steps


def write_new(dst, monkeypatch, kill_at: int | None) -> list[str]:
    """Write the new version; once it is whole, the commit's steps are watched and killed at `kill_at`."""
    with atomic_folder(dst) as tmp:
        fill(tmp, NEW)
        steps = commit_steps(monkeypatch, kill_at)
    return steps


def test_the_commit_renames_aside_renames_in_then_removes(dst, monkeypatch):
    assert write_new(dst, monkeypatch, kill_at=None) == ["rename", "rename", "remove"]
    assert contents(dst) == NEW


@pytest.mark.parametrize("kill_at", [1, 2, 3])
def test_a_kill_at_any_step_leaves_a_whole_folder(dst, monkeypatch, kill_at):
    with pytest.raises(Killed):
        write_new(dst, monkeypatch, kill_at)
    monkeypatch.undo()
    aside = contents(dst + ".old")
    if kill_at == 2:  # between the two renames: nothing at dst, the old folder whole beside it
        assert contents(dst) is None and aside == OLD
    else:  # before the first rename: the old folder; after the second: the new one (its old copy not yet removed)
        assert contents(dst) == (OLD if kill_at == 1 else NEW)
    assert contents(dst + ".tmp") in (None, NEW)  # the new folder is whole wherever it lies
    assert recover_folder(dst) == (kill_at == 2)  # what a reader does first
    assert contents(dst) == (NEW if kill_at == 3 else OLD)
    with atomic_folder(dst) as tmp:  # the next write clears the leftovers
        fill(tmp, {"weights.bin": "newer"})
    assert contents(dst) == {"weights.bin": "newer"} and os.listdir(os.path.dirname(dst)) == ["model"]


def test_a_write_killed_while_writing_is_never_seen_and_is_cleared_next_time(dst):
    os.makedirs(dst + ".tmp")
    fill(dst + ".tmp", {"weights.bin": "half"})  # what a write killed mid-way leaves
    assert not recover_folder(dst) and contents(dst) == OLD
    with atomic_folder(dst) as tmp:
        assert contents(tmp) == {}
        fill(tmp, NEW)
    assert contents(dst) == NEW and os.listdir(os.path.dirname(dst)) == ["model"]


def test_recover_leaves_a_folder_alone_when_nothing_was_set_aside(tmp_path):
    assert not recover_folder(tmp_path / "never-written")
    assert not os.path.exists(tmp_path / "never-written")
