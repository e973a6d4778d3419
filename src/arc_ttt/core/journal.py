"""The journal: one JSON line per finished task, appended and fsynced, so a killed run resumes where
it stopped. Several workers on one machine each append to their own file; `file_lock` serialises
whoever merges them."""
from __future__ import annotations

import dataclasses
import fcntl
import glob
import json
import os
from contextlib import contextmanager

import numpy as np

from .records import TaskRecord

PATTERN = "journal*.jsonl"


def journal_name(rank: int) -> str:
    return "journal.jsonl" if rank == 0 else f"journal.rank{rank}.jsonl"


def read_journal(path: str) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if not os.path.exists(path):
        return done
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                item = json.loads(line)
                done[item["id"]] = item
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut by a kill
    return done


def append_journal(path: str, rec: TaskRecord) -> None:
    line = json.dumps(dataclasses.asdict(rec), default=json_default) + "\n"
    with open(path, "ab+") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a line cut by a kill: never glue the next record onto it
                line = "\n" + line
        f.write(line.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def journals(folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(folder, PATTERN)))


def read_records(folder: str) -> dict[str, TaskRecord]:
    """Every worker's journal in `folder`, merged by task id."""
    records = {}
    for path in journals(folder):
        for tid, item in read_journal(path).items():
            records[tid] = TaskRecord.from_dict(item)
    return records


def json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    raise TypeError(type(o).__name__)


@contextmanager
def file_lock(path: str):
    """An exclusive lock between the workers of one machine (they share the output folder)."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
