"""core.folders: a file or a folder is replaced whole, and a write killed at any step leaves a complete one."""
import json
import os
import shutil

import pytest

from arc_ttt.core import folders
from arc_ttt.core.folders import atomic_file, atomic_folder, recover_folder, write_files, write_json_atomic

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


def test_write_json_atomic_keeps_old_file_when_serialising_fails(tmp_path):
    path = tmp_path / "x.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_a_file_is_a_new_inode_so_a_hard_linked_copy_keeps_its_contents(tmp_path):
    path, link = tmp_path / "config.json", tmp_path / "linked.json"
    path.write_text("source")
    os.link(path, link)  # the bundle hard-links model files: a write through the inode would change both
    with atomic_file(path) as f:
        f.write("rewritten")
        assert path.read_text() == "source"  # nothing changes until the block ends
    assert (path.read_text(), link.read_text()) == ("rewritten", "source")
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)  # for others to read, as the folder's other files


def test_a_binary_file_killed_while_written_leaves_the_old_one_and_no_temporary(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"old")
    with pytest.raises(Killed):
        with atomic_file(path, binary=True) as f:
            f.write(b"half")
            raise Killed("the process dies here")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["weights.bin"]


def test_the_cards_written_inside_the_block_arrive_with_the_folder(dst, monkeypatch):
    """A kill between the new weights and the rename leaves the old folder; after the rename, the card is there."""
    with pytest.raises(Killed):
        with atomic_folder(dst) as tmp:
            fill(tmp, NEW)
            write_files(tmp, {"finetune.json": {"steps": 6}, "merged_adapter.sha256": "abc\n"})
            commit_steps(monkeypatch, kill_at=2)  # after setting the old folder aside, before renaming the new in
    monkeypatch.undo()
    assert recover_folder(dst) and contents(dst) == OLD
    with atomic_folder(dst) as tmp:
        fill(tmp, NEW)
        write_files(tmp, {"finetune.json": {"steps": 6}, "merged_adapter.sha256": "abc\n"})
    assert json.loads(contents(dst)["finetune.json"]) == {"steps": 6} and contents(dst)["merged_adapter.sha256"] == "abc\n"
