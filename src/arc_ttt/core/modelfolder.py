"""A model folder's own files, read and made portable across transformers 4.x and 5.x (JSON only, no torch).

transformers 5 saves `config.json` with `rope_parameters` and no top-level `rope_theta`, and
`tokenizer_config.json` with `tokenizer_class: TokenizersBackend`. transformers 4.x (Kaggle's image has
lagged releases) then loads the config with its default RoPE base (10000 where the model needs e.g.
100000: a model that runs and scores about zero with no error) and fails on the tokenizer class. The
kit writes both files so that either major version reads the same model, and describes a folder
(format, kind, saving version) so that the builder and the notebook can say what they ship and run.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from .config import DEFAULT_ADAPTER
from .folders import write_json_atomic, write_text_atomic

FORMAT_FILE = "arc_format.json"  # the prompt format the model speaks (core.formats writes it)
CARD_FILE = "finetune.json"  # the fine-tune card `arc-ttt finetune` writes beside a merged model
MERGE_STAMP = "merged_adapter.sha256"  # written by every merge (modeling.export): the adapter's digest, then
SHRUNK_TAG = "shrink-vocab"  # this word when the merge also cut the vocabulary to the prompt format's tokens
DEMO_MARKER = "ARC_TTT_DEMO_MODEL.txt"  # written into the kit's demonstration model (make model, the bundle)
REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# Tokenizer classes of transformers 5 that 4.x does not have; the fast tokenizer's tokenizer.json holds everything.
V5_ONLY_TOKENIZER_CLASSES = ("TokenizersBackend",)
PORTABLE_TOKENIZER_CLASS = "PreTrainedTokenizerFast"
V5_TOKENIZER_KEYS = ("backend", "is_local", "local_files_only")  # bookkeeping 4.x would keep as unknown kwargs


class ModelFolderError(ValueError):
    """A model folder's files cannot be read; the message names the file."""


def _read_json(path: str) -> dict | None:
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ModelFolderError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(data, dict):
        raise ModelFolderError(f"{path}: expected a JSON object")
    return data


def _rope_fields(rope: dict) -> dict:
    """The 4.x top-level fields of one `rope_parameters` mapping: rope_theta, and rope_scaling unless default."""
    out: dict = {}
    if "rope_theta" in rope:
        out["rope_theta"] = rope["rope_theta"]
    if "partial_rotary_factor" in rope:
        out["partial_rotary_factor"] = rope["partial_rotary_factor"]
    scaling = {k: v for k, v in rope.items() if k not in ("rope_theta", "partial_rotary_factor")}
    if scaling and scaling.get("rope_type", "default") != "default":
        out["rope_scaling"] = scaling
    return out


def portable_config(config: dict) -> dict:
    """config.json readable by transformers 4.x and 5.x: the top-level fields 4.x reads, added from
    transformers 5's `rope_parameters` (also inside a nested text_config). Fields already there are kept: a 4.x-saved config comes back unchanged."""
    out = dict(config)
    rope = out.get("rope_parameters")
    if isinstance(rope, dict) and isinstance(rope.get("rope_theta"), (int, float)):
        for key, value in _rope_fields(rope).items():
            out.setdefault(key, value)
    for key in ("text_config", "language_config"):
        if isinstance(out.get(key), dict):
            out[key] = portable_config(out[key])
    return out


def portable_tokenizer_config(config: dict) -> dict:
    """tokenizer_config.json readable by 4.x and 5.x: a tokenizer class both have, and `extra_special_tokens`
    as the mapping 4.x expects (5.x may write a list)."""
    out = {k: v for k, v in config.items() if k not in V5_TOKENIZER_KEYS}
    if out.get("tokenizer_class") in V5_ONLY_TOKENIZER_CLASSES:
        out["tokenizer_class"] = PORTABLE_TOKENIZER_CLASS
    extra = out.get("extra_special_tokens")
    if isinstance(extra, list):
        del out["extra_special_tokens"]
        if extra:
            out["additional_special_tokens"] = list(dict.fromkeys([*out.get("additional_special_tokens", []), *extra]))
    return out


def _rewrite_json(path: str, data: dict) -> None:
    """Replace a file with new contents, never writing through it: the bundle hard-links weights folders, and a
    write into a shared inode would change the source folder too (atomic_file writes a new one)."""
    write_json_atomic(path, data, indent=2)


def make_portable(folder: str) -> list[str]:
    """Rewrite the folder's config.json and tokenizer_config.json portably; returns the files changed."""
    changed = []
    for name, fix in (("config.json", portable_config), ("tokenizer_config.json", portable_tokenizer_config)):
        path = os.path.join(folder, name)
        data = _read_json(path)
        if data is not None and fix(data) != data:
            _rewrite_json(path, fix(data))
            changed.append(name)
    return changed


@dataclass(frozen=True)
class ModelInfo:
    """What a model folder is, from its files: printed by `make kernel`, the notebook and run.log."""

    path: str
    format: str | None  # arc_format.json's format, None when the folder says nothing
    kind: str  # "demo" | "fine-tuned" | "base"
    base: str | None  # the fine-tune card's base model
    architecture: str | None
    saved_with: str | None  # config.json's transformers_version
    rope_theta: float | None  # the top-level value 4.x reads (None: 4.x would use its class default)
    tokenizer_class: str | None
    card: dict | None = None

    @property
    def saved_major(self) -> int | None:
        return major_version(self.saved_with)

    def summary(self) -> str:
        what = {"demo": "the kit's DEMONSTRATION model (SmolLM2-135M + the kit's small ARC adapter: far below a competitive model)",
                "fine-tuned": f"fine-tuned from {self.base or '?'} (card {CARD_FILE})",
                "base": "a model without a fine-tune card"}[self.kind]
        return (f"{self.architecture or '?'}, {what}; prompt format {self.format or '(none: arc_format.json missing)'}; "
                f"saved by transformers {self.saved_with or '?'}")

    def warnings(self, format_used: str) -> list[str]:
        """What a user must hear before spending a submission on this folder run in `format_used`."""
        out = []
        if self.kind == "demo":
            out.append("WARNING: this is the kit's demonstration model: it checks the pipeline end to end and would "
                       "score about 0 on the competition's tasks. Ship your ARC model: make kernel KERNEL_MODEL=path/to/model")
        if self.format and self.format != format_used:
            out.append(f"WARNING: the folder's arc_format.json says {self.format}; the run uses {format_used}")
        return out


def major_version(version: str | None) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None


def adapter_digest(adapter_folder: str) -> str:
    """sha256 of an adapter folder's weights and config: the stamp a merged folder keeps of its adapter."""
    h = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        with open(os.path.join(adapter_folder, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def merge_stamp(adapter_folder: str, shrunk: bool = False) -> str:
    """What a merged folder's stamp says: the adapter's digest, then `shrink-vocab` if the vocabulary was cut. A
    folder whose stamp differs from the one wanted is rebuilt (make model)."""
    return adapter_digest(adapter_folder) + (f" {SHRUNK_TAG}" if shrunk else "")


def read_merge_stamp(folder: str) -> str | None:
    path = os.path.join(folder, MERGE_STAMP)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def is_demo(folder: str, kit_adapter: str = os.path.join(REPO_DIR, DEFAULT_ADAPTER)) -> bool:
    """The kit's demonstration model: its marker, or (in a checkout, where the kit's adapter is) a merge stamp of
    exactly that adapter. A user's own fine-tune of the same base has another adapter, so another stamp."""
    if os.path.exists(os.path.join(folder, DEMO_MARKER)):
        return True
    stamp = read_merge_stamp(folder)
    if not (stamp and os.path.isfile(os.path.join(kit_adapter, "adapter_model.safetensors"))):
        return False
    return stamp.split()[0] == adapter_digest(kit_adapter)  # shrunk or not


DEMO_TEXT = ("The arc-ttt-kit demonstration model: SmolLM2-135M with the kit's small ARC adapter. It checks the "
             "pipeline end to end and solves only a few small tasks (benchmarks/README.md), far below a "
             "competitive ARC model.\n")


def mark_demo(folder: str) -> None:
    """The marker in a folder already in place (the bundle's copy); a merge writes it inside its atomic step."""
    write_text_atomic(os.path.join(folder, DEMO_MARKER), DEMO_TEXT)


def describe_model(folder: str) -> ModelInfo:
    """The folder's format, kind and saving version, from config.json, tokenizer_config.json, arc_format.json
    and the fine-tune card. A folder holding only a GGUF file has no config: those fields stay None."""
    config = _read_json(os.path.join(folder, "config.json")) or {}
    tok = _read_json(os.path.join(folder, "tokenizer_config.json")) or {}
    fmt = _read_json(os.path.join(folder, FORMAT_FILE))
    card = _read_json(os.path.join(folder, CARD_FILE))
    base = None
    if card is not None:
        raw = card.get("base_model") or card.get("model")
        base = raw.get("path") if isinstance(raw, dict) else raw
        card = dict(card, base_model=base)
    kind = "demo" if is_demo(folder) else ("fine-tuned" if card is not None else "base")
    arch = config.get("architectures")
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    theta = config.get("rope_theta", text.get("rope_theta"))
    return ModelInfo(path=folder, format=(fmt or {}).get("format"), kind=kind, base=base,
                     architecture=arch[0] if isinstance(arch, list) and arch else None,
                     saved_with=config.get("transformers_version"),
                     rope_theta=float(theta) if isinstance(theta, (int, float)) else None,
                     tokenizer_class=tok.get("tokenizer_class"), card=card)


def compatibility_problem(info: ModelInfo, transformers_version: str | None,
                          has_tokenizer_class=lambda name: True) -> str | None:
    """Why the installed transformers would load this folder wrongly or not at all, or None.

    4.x reads only the top-level rope_theta: a 5.x folder without it loads with the class default RoPE base and
    runs silently wrong. `has_tokenizer_class(name)` says whether the installed transformers has that class."""
    major = major_version(transformers_version)
    if major is None:
        return None
    problems = []
    config = _read_json(os.path.join(info.path, "config.json")) or {}
    rope = config.get("rope_parameters")
    if major < 5 and isinstance(rope, dict) and "rope_theta" in rope and info.rope_theta is None:
        problems.append(f"config.json has rope_parameters (rope_theta {rope['rope_theta']}) but no top-level "
                        f"rope_theta: transformers {transformers_version} would run it with its default RoPE base")
    if info.tokenizer_class and not has_tokenizer_class(info.tokenizer_class):
        problems.append(f"tokenizer_config.json names tokenizer_class {info.tokenizer_class}, which transformers "
                        f"{transformers_version} does not have")
    if not problems:
        return None
    return (f"model folder {info.path} (saved by transformers {info.saved_with or '?'}): " + "; ".join(problems)
            + ". Rebuild the bundle with this kit (`make kernel` writes model folders portably) or fix the two files "
              "by hand (arc_ttt.core.modelfolder.make_portable).")
