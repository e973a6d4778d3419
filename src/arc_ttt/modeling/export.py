"""Model folders written for upload: a GGUF file converted, an adapter merged in, a vocabulary shrunk to what a
prompt format needs (`prepare_model`). Every folder is written atomically and portably (core.modelfolder)."""
from __future__ import annotations

import json
import os
import re
import shutil
from typing import Mapping

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from ..core.formats.codec import TokenizerFormatError
from ..core.config import ModelConfig
from ..core.errors import UserError
from ..core.folders import FileContents, atomic_folder, write_files
from ..core.modelfolder import CARD_FILE, MERGE_STAMP, make_portable, merge_stamp
from ..core.formats.symbols import KIT
from ..core.formats import codec_for, get_format, resolve, write_format_file
from .loading import load_model, load_tokenizer, saved_quantization
from .runtime import resolve_dtype


def mark_dequantised(model) -> None:
    """transformers marks a GGUF-loaded model as quantised and then refuses to cast or save it as plain weights."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def save_model(model, tokenizer, dst: str, format_name: str | None = None,
               files: Mapping[str, FileContents] | None = None) -> str:
    """Write a plain HF folder atomically: a killed write never leaves a half-written model folder. With
    `format_name`, the folder's arc_format.json says which prompt format the model speaks; `files` (a card, a
    stamp, a marker) are written inside the same atomic step, so the folder never appears without them. The
    folder is written portably (core.modelfolder): transformers 4.x reads the same RoPE base and tokenizer."""
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        raise UserError("refusing to save a bitsandbytes-quantised model as an upload folder; load it unquantised")
    mark_dequantised(model)
    with atomic_folder(dst) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        make_portable(tmp)
        if format_name is not None:
            write_format_file(tmp, format_name)
        write_files(tmp, files or {})
    return dst


def convert_gguf(gguf_path: str, dst: str, dtype: torch.dtype = torch.bfloat16) -> str:
    """GGUF -> a Hugging Face folder (safetensors + tokenizer). Dequantises once; later loads are fast."""
    folder, name = os.path.split(os.path.abspath(gguf_path))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, local_files_only=True)
    mark_dequantised(model)
    model.to(dtype)
    return save_model(model, tok, dst)


def merge_into_folder(base: str, adapter_folder: str, dst: str, dtype: str = "float32",
                      save_dtype: str | None = None, shrink: bool = False,
                      files: Mapping[str, FileContents] | None = None) -> str:
    """`base` (a HF folder) with the adapter merged, written to `dst` with a stamp of the adapter's digest, the
    adapter's card (finetune.json) and `files`, all inside the folder's atomic step: a kill leaves the old folder
    or the new one stamped (a stamped folder is never rebuilt). Merged in `dtype`, on the CPU: fp32 keeps every small
    delta (a bf16 merge rounds some away); float16 halves the memory for a model too big for fp32 in RAM.
    `save_dtype` casts the merged weights before saving (bfloat16: half the upload of fp32). `shrink` then cuts
    the vocabulary to the tokens of the adapter's prompt format (shrink_vocab: the same logits on those tokens)."""
    from . import lora  # peft (and bitsandbytes) only when merging: the notebook loads this before its GPU check

    card = _read_card(adapter_folder)
    trained_in = None if card is None else card.get("format") or "kit"  # the format the adapter was trained in
    model, tok = load_model(ModelConfig(path=base, dtype=dtype, device="cpu"))
    merged = lora.merge_adapter(model, adapter_folder)
    if shrink:
        merged, tok = shrink_vocab(merged, tok, fmt=trained_in or "kit")
    if save_dtype is not None:
        merged.to(resolve_dtype(save_dtype, torch.device("cpu")))
    stamp = {MERGE_STAMP: merge_stamp(adapter_folder, shrink) + "\n", **({} if card is None else {CARD_FILE: card})}
    return save_model(merged, tok, dst, format_name=trained_in, files={**stamp, **(files or {})})


def _read_card(adapter_folder: str) -> dict | None:
    """The adapter's fine-tune card, None when it has none (an adapter made elsewhere)."""
    path = os.path.join(adapter_folder, CARD_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------------------- vocabulary shrinking

def format_keep_ids(tokenizer, fmt=None) -> list[int]:
    """Old ids of the tokens a prompt format needs: one per format symbol (its special tokens resolved as such),
    plus bos/eos/pad/unk. The kit's layout by default."""
    fmt = get_format(fmt) if isinstance(fmt, str) else (fmt or KIT)
    if not fmt.shrinkable:
        raise TokenizerFormatError(f"prompt format {fmt.name!r} is text over the model's own BPE vocabulary: its "
                                   f"answers need the multi-character tokens, so its vocabulary cannot be shrunk")
    keep = set(codec_for(fmt, tokenizer).format_token_ids)  # refuses a tokenizer that does not fit the format
    keep |= {i for i in (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id,
                         tokenizer.unk_token_id) if i is not None}
    return sorted(keep)


def _char_tokenizer(texts: list[str], special: set[str], roles: dict[str, str | None]):
    """A fast WordLevel tokenizer: one token per kept text (single characters, and whole words such as NVARC's
    `user`), special tokens matched whole, text decoded by fusing."""
    vocab = {t: i for i, t in enumerate(texts)}
    unk = roles.get("unk_token") or roles.get("eos_token") or texts[0]
    tok = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    words = sorted((t for t in texts if len(t) > 1 and t not in special), key=len, reverse=True)
    pattern = "".join(f"{re.escape(w)}|" for w in words) + r"[\s\S]"
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in texts if t in special])
    return PreTrainedTokenizerFast(tokenizer_object=tok, **{k: v for k, v in roles.items() if v is not None})


def _remap_token_ids(cfg, remap: dict[int, int]) -> None:
    for attr in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "decoder_start_token_id"):
        value = getattr(cfg, attr, None)
        if isinstance(value, int):
            setattr(cfg, attr, remap.get(value))
        elif isinstance(value, (list, tuple)):
            setattr(cfg, attr, [remap[v] for v in value if v in remap] or None)


@torch.no_grad()
def shrink_vocab(model, tokenizer, keep_ids: list[int] | None = None, fmt=None):
    """(model, tokenizer) cut to `keep_ids` (default: the tokens of prompt format `fmt`, the kit's by default),
    in place on the model.

    Embedding and lm_head keep only those rows (a tied lm_head stays tied), so the shrunk model's
    logits are exactly the original logits on the kept tokens. New ids follow the old id order; the
    new tokenizer maps each format character, and each kept special token, to its new id.
    """
    keep = sorted(set(keep_ids)) if keep_ids is not None else format_keep_ids(tokenizer, fmt)
    remap = {old: new for new, old in enumerate(keep)}
    added = {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}  # e.g. <|im_start|>
    special = {tokenizer.convert_ids_to_tokens(i) for i in {*tokenizer.all_special_ids, *added} if i in remap}
    texts = []
    for i in keep:
        token = tokenizer.convert_ids_to_tokens(i)
        texts.append(token if token in special else tokenizer.decode([i]))
    if len(set(texts)) != len(texts):
        raise ValueError(f"kept tokens do not have distinct texts: {texts}")
    roles = {role: getattr(tokenizer, role) for role in ("bos_token", "eos_token", "pad_token", "unk_token")}
    roles = {role: (t if t in special else None) for role, t in roles.items()}

    index = torch.tensor(keep, dtype=torch.long)
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    tied = head is not None and head.weight is emb.weight
    emb.weight = nn.Parameter(emb.weight[index.to(emb.weight.device)].clone(), requires_grad=emb.weight.requires_grad)
    emb.num_embeddings = len(keep)
    if getattr(emb, "padding_idx", None) is not None:
        emb.padding_idx = remap.get(emb.padding_idx)
    if head is not None:
        if tied:
            head.weight = emb.weight
        else:
            head.weight = nn.Parameter(head.weight[index.to(head.weight.device)].clone(),
                                       requires_grad=head.weight.requires_grad)
        if getattr(head, "bias", None) is not None:
            head.bias = nn.Parameter(head.bias[index.to(head.bias.device)].clone())
        head.out_features = len(keep)
    configs = [model.config, getattr(model.config, "get_text_config", lambda: None)()]
    for cfg in {id(c): c for c in configs if c is not None}.values():
        cfg.vocab_size = len(keep)
        _remap_token_ids(cfg, remap)
    if getattr(model, "generation_config", None) is not None:
        _remap_token_ids(model.generation_config, remap)
    return model, _char_tokenizer(texts, special, roles)


_shrink = shrink_vocab  # prepare_model's argument of the same name shadows it


def prepare_model(src: str, dst: str, shrink_vocab: bool = False, dtype: str = "bfloat16", fmt: str = "auto") -> str:
    """A model folder ready to upload: from a HF folder or a .gguf file, optionally vocabulary-shrunk to what its
    prompt format needs, with arc_format.json naming that format. `fmt` "auto": what the source folder's
    arc_format.json says, else the kit's layout. A tokenizer that does not fit the format is refused. A
    pre-quantised folder is copied as it is, its format file added."""
    folder, gguf = (os.path.split(os.path.abspath(src)) if src.endswith(".gguf") else (src, None))
    name = resolve(fmt, folder)
    if gguf is None and saved_quantization(folder) is not None:
        # a pre-quantised folder (e.g. ARChitects' bnb-4bit upload) cannot be re-saved as plain weights
        if shrink_vocab:
            raise UserError(f"{folder} is pre-quantised: its vocabulary cannot be shrunk here; use it as it is")
        codec_for(name, load_tokenizer(ModelConfig(path=folder)))
        with atomic_folder(dst) as tmp:
            shutil.copytree(folder, tmp, dirs_exist_ok=True)
            write_format_file(tmp, name)
        return dst
    model, tok = load_model(ModelConfig(path=folder, gguf_file=gguf, dtype=dtype, device="cpu"))
    codec_for(name, tok)  # the source must already speak the format
    if shrink_vocab:
        model, tok = _shrink(model, tok, fmt=name)
        codec_for(name, tok)  # the shrunk folder must speak the format one token per symbol
    return save_model(model, tok, dst, format_name=name)
