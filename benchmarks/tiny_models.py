"""Random models that speak the kit's grid format, built in memory without any file: the tests' models
(tests/conftest.py loads this file by its path) and benchmarks/gpu.py's tokenizer. The product never uses them."""
from __future__ import annotations

import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast


def char_tokenizer() -> PreTrainedTokenizerFast:
    """A fast tokenizer with one token per character of the kit's grid format."""
    symbols = ["<pad>", "<s>", "</s>", "<unk>", *"0123456789", "\n", "I", "O", "E", "x", " "]
    tok = Tokenizer(models.WordLevel({s: i for i, s in enumerate(symbols)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def tiny_llama(tokenizer, *, hidden: int = 64, layers: int = 2, heads: int = 4, kv_heads: int | None = None,
               tied: bool = False, seed: int = 0):
    """A random Llama of a few hundred thousand parameters on `tokenizer`'s vocabulary, for tests; `tied` ties
    lm_head to the input embedding (SmolLM2, Gemma and Qwen-small do), `kv_heads` < `heads` is grouped-query."""
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads or heads, max_position_embeddings=8192,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=tied)
    return LlamaForCausalLM(cfg).eval()
