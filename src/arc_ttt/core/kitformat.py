"""The kit's own grid layout, `I` rows `O` rows `E`: its markers and its own tokenizer check.

Format "kit" (`symbolformat.kit_format`) is built from a `GridFormat` and keeps this check and its messages
(a digit or marker that is not one token, two symbols sharing an id, digits or newlines merged), so a
model refused before the other formats existed is refused with the same words. Writing and reading the
layout is `PromptFormat`'s, as for every symbol format.
"""
from __future__ import annotations

from dataclasses import dataclass

from .codec import DIGITS, TokenizerFormatError


@dataclass(frozen=True)
class GridFormat:
    input_marker: str = "I"
    output_marker: str = "O"
    end_marker: str = "E"
    newline: str = "\n"

    def symbols(self) -> dict[str, str]:
        """name -> symbol, for every symbol the format uses."""
        named = {f"digit {d}": d for d in DIGITS}
        named.update(newline=self.newline, **{"input marker": self.input_marker,
                                                "output marker": self.output_marker,
                                                "end marker": self.end_marker})
        return named


def check_tokenizer(tokenizer, fmt: GridFormat = GridFormat()) -> dict[str, int]:
    """symbol name (as in GridFormat.symbols) -> id; raises TokenizerFormatError naming the first symbol or merge that breaks the format."""
    ids: dict[str, int] = {}  # by name: two names may (wrongly) share one symbol
    for name, sym in fmt.symbols().items():
        toks = tokenizer.encode(sym, add_special_tokens=False)
        if len(toks) != 1:
            raise TokenizerFormatError(
                f"{name} {sym!r} encodes to {len(toks)} tokens {toks} with this tokenizer; the grid format "
                f"needs exactly one. Choose other marker symbols, or run `arc-ttt prepare-model --shrink-vocab`.")
        if toks[0] == getattr(tokenizer, "unk_token_id", None) and sym != getattr(tokenizer, "unk_token", None):
            raise TokenizerFormatError(f"{name} {sym!r} is not in this tokenizer's vocabulary (it encodes to the "
                                       f"unknown token)")
        ids[name] = toks[0]
    by_id: dict[int, str] = {}
    for name, i in ids.items():
        if i in by_id:
            raise TokenizerFormatError(f"the {by_id[i]} and the {name} share token id {i}")
        by_id[i] = name
    # Every ordered pair of digits side by side, rows closed by newlines: a BPE merge shows up as a
    # shorter encoding.
    for a in DIGITS:
        row = "".join(a + b for b in DIGITS)
        text = row + fmt.newline + row + fmt.newline
        toks = tokenizer.encode(text, add_special_tokens=False)
        if len(toks) != 2 * len(row) + 2:
            raise TokenizerFormatError(
                f"a 2x{len(row)} grid {text!r} encodes to {len(toks)} tokens, expected {2 * len(row) + 2} "
                f"(H*W+H): the tokenizer merges digits or newlines. Run `arc-ttt prepare-model --shrink-vocab`.")
    return ids
