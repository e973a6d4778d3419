"""Symbol formats: prompt layouts built one token per symbol (kit, ARChitects, NVARC), and the check that a
tokenizer can write them.

The kit's own layout (format "kit"), one token per cell, one newline per row, three markers:

    [bos] I <input rows> O <output rows> E  I ... O <output rows> E ... I <query rows> O

A row is its cells' digits followed by a newline, so an H x W grid costs H*W + H tokens. The winners'
checkpoints were trained on other layouts, and a model shown another layout loses most of what it learned:
`PromptFormat` also expresses ARChitects' ("architects") and NVARC's ("nvarc"); MIT's chat-template format
("marc", numpy-printed arrays over a stock BPE vocabulary) lives in `core.formats.chat`. Symbol formats are
built from token ids symbol by symbol, never by tokenizing joined text, so BPE merges can never change the
layout; `check_format` still refuses a tokenizer that lacks a symbol or merges symbols the model saw apart.
`GridCodec` is a symbol format bound to one tokenizer's ids (a `core.formats.codec.Codec`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .codec import (DIGITS, Encoded, LossOn, TokenizerFormatError, answer_tokens, grid_symbols, pair_tokens,
                    rows_to_grid)
from .grammar import GridGrammar
from ..tasks import GRID_DTYPE, MAX_SIDE, Pair


@dataclass(frozen=True)
class PromptFormat:
    """A prompt layout built symbol by symbol: each symbol is one token, found alone in the vocabulary.

        [bos] preamble  (separator)? input_prefix <input rows> output_prefix <output rows> end ...
                        (separator)? input_prefix <query rows> output_prefix

    Rows are digits; `rows_terminated` closes every row with a newline (ARChitects' and the kit's
    layouts), otherwise rows are joined by newlines (NVARC). The end symbol closes an answer and plays
    END in decoding. Symbols listed in `specials` are special tokens resolved through the tokenizer
    (role "eos"/"bos"/"pad": the tokenizer's own; role "token": the added token of that name), never by
    encoding their text, so a tokenizer that would split `<|im_end|>` as text cannot corrupt the layout.
    """

    name: str
    input_prefix: tuple[str, ...]
    output_prefix: tuple[str, ...]
    end: str
    preamble: tuple[str, ...] = ()
    separator: tuple[str, ...] = ()
    rows_terminated: bool = True
    bos: str = "optional"  # "required" | "optional" (when the tokenizer has one) | "none"
    newline: str = "\n"
    specials: tuple[tuple[str, str], ...] = ()  # (symbol, role)
    merge_hint: str = "Run `arc-ttt prepare-model --shrink-vocab`."
    shrinkable: bool = True  # one token per symbol: the vocabulary can be cut to the format's symbols

    @property
    def special_roles(self) -> dict[str, str]:
        return dict(self.specials)

    def symbols(self) -> dict[str, str]:
        """name -> symbol for every symbol the layout uses (the vocabulary it needs)."""
        named = {f"digit {d}": d for d in DIGITS}
        named["newline"] = self.newline
        for part in ("preamble", "input_prefix", "output_prefix", "separator"):
            for sym in getattr(self, part):
                named.setdefault(f"{part.replace('_', ' ')} symbol {sym!r}", sym)
        named["end of answer"] = self.end
        return named

    def grid_symbols(self, grid: np.ndarray) -> list[str]:
        rows = ["".join(DIGITS[v] for v in row) for row in np.asarray(grid)]
        out: list[str] = []
        for i, row in enumerate(rows):
            out += list(row)
            if self.rows_terminated or i < len(rows) - 1:
                out.append(self.newline)
        return out

    def layout(self, pairs: Sequence[Pair], query: np.ndarray | None = None) -> tuple[list[str], list[bool]]:
        """Symbols of complete pairs (then of a query input, if given) and which are answer symbols.
        BOS is not included: it is the tokenizer's, added by the codec."""
        syms, target = list(self.preamble), [False] * len(self.preamble)
        for i, p in enumerate(pairs):
            head = [*(self.separator if i else ()), *self.input_prefix, *self.grid_symbols(p.input), *self.output_prefix]
            answer = [*self.grid_symbols(p.output), self.end]
            syms += head + answer
            target += [False] * len(head) + [True] * len(answer)
        if query is not None:
            head = [*(self.separator if pairs else ()), *self.input_prefix, *self.grid_symbols(query),
                    *self.output_prefix]
            syms += head
            target += [False] * len(head)
        return syms, target

    def prompt_text(self, demos: Sequence[Pair], query: np.ndarray, names: dict[str, str] | None = None) -> str:
        """The prompt as text, special tokens written out (by `names`, e.g. the tokenizer's own eos text), no BOS."""
        names = names or {}
        return "".join(names.get(s, s) for s in self.layout(demos, query)[0])

    def grid_text(self, grid: np.ndarray) -> str:
        return "".join(self.grid_symbols(grid))

    def parse(self, text: str) -> np.ndarray | None:
        """Answer text (the model's continuation) -> grid, or None when it is not a legal ARC grid."""
        text = text.split(self.end, 1)[0]
        return rows_to_grid(text.split(self.newline), lambda row: [DIGITS.index(ch) for ch in row]
                             if all(ch in DIGITS for ch in row) else None)

    def codec(self, tokenizer) -> "GridCodec":
        """This layout bound to a tokenizer's ids (what `core.formats.codec_for` asks of every format)."""
        return GridCodec.from_tokenizer(tokenizer, self)


def kit_format(input_marker: str = "I", output_marker: str = "O", end_marker: str = "E",
               newline: str = "\n") -> PromptFormat:
    """The kit's own layout: `I` rows `O` rows `E`, rows newline-terminated, the tokenizer's BOS if it has one."""
    return PromptFormat("kit", (input_marker,), (output_marker,), end_marker, newline=newline)


KIT = kit_format()


# ARChitects 2024 / Product-of-Experts 2025: BOS, this preprompt, `I` rows `\n+/-=O` rows `\n` EOS; every row
# newline-terminated in this layout because their `\n+/-=O` and `\n</s>` supply the last row's newline.
ARCHITECTS_PREPROMPT = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjklmnpqrstuvwxyz"
ARCHITECTS = PromptFormat(
    "architects", input_prefix=("I",), output_prefix=tuple("+/-=O"), end="</s>", preamble=tuple(ARCHITECTS_PREPROMPT),
    bos="required", specials=(("</s>", "eos"),),
    merge_hint="ARChitects' checkpoints ship a vocabulary of single characters without merges; use that tokenizer.")
# NVARC 2025: no BOS, no system prompt, Qwen chat markers, rows joined by newlines.
NVARC = PromptFormat(
    "nvarc", input_prefix=("<|im_start|>", "user", "\n"), output_prefix=("<|im_end|>", "<|im_start|>", "assistant", "\n"),
    end="<|im_end|>", rows_terminated=False, bos="none",
    specials=(("<|im_start|>", "token"), ("<|im_end|>", "token")),
    merge_hint="NVARC's checkpoint ships a 16-token vocabulary; use that tokenizer.")


def _shared_roles(fmt: PromptFormat) -> list[str]:
    """A symbol playing two parts the decoder must tell apart: the answer's alphabet (digits, newline, end) and
    the input marker that opens every pair. (Prefixes may reuse them: NVARC's output prefix ends in a newline.)"""
    parts = {"digit " + d: d for d in DIGITS}
    parts.update({"newline": fmt.newline, "end of answer": fmt.end, "input marker": fmt.input_prefix[0]})
    seen: dict[str, str] = {}
    problems = []
    for part, sym in parts.items():
        if sym in seen:
            problems.append(f"the {seen[sym]} and the {part} are the same symbol {sym!r}")
        seen.setdefault(sym, part)
    return problems


def check_format(tokenizer, fmt: PromptFormat) -> tuple[dict[str, int], dict[str, str]]:
    """(symbol -> id, special symbol -> the tokenizer's text for it) for a format; raises TokenizerFormatError
    naming the format and every missing, split or merged symbol."""
    roles = fmt.special_roles
    problems = _shared_roles(fmt)
    ids: dict[str, int] = {}
    names: dict[str, str] = {}
    unk = getattr(tokenizer, "unk_token_id", None)
    added = set(getattr(tokenizer, "all_special_tokens", [])) | set(tokenizer.get_added_vocab())
    for sym in dict.fromkeys(fmt.symbols().values()):
        role = roles.get(sym)
        if role in ("eos", "bos", "pad"):
            i = getattr(tokenizer, f"{role}_token_id")
            if i is None:
                problems.append(f"{sym!r} is the tokenizer's {role} token, and it has none")
                continue
            ids[sym], names[sym] = i, getattr(tokenizer, f"{role}_token")
        elif role == "token":
            i = tokenizer.convert_tokens_to_ids(sym)
            if sym not in added or i is None or i == unk:
                problems.append(f"special token {sym!r} is missing")
                continue
            ids[sym], names[sym] = i, sym
        else:
            toks = tokenizer.encode(sym, add_special_tokens=False)
            if len(toks) != 1 or (toks[0] == unk and sym != getattr(tokenizer, "unk_token", None)):
                problems.append(f"{sym!r} is missing (encodes to {len(toks)} tokens {toks})" if len(toks) != 1
                                else f"{sym!r} is missing (unknown token)")
                continue
            ids[sym] = toks[0]
    if fmt.bos == "required" and tokenizer.bos_token_id is None:
        problems.append("the format starts with the tokenizer's BOS, and it has none")
    by_id: dict[int, str] = {}
    for sym, i in ids.items():
        if i in by_id:
            problems.append(f"{by_id[i]!r} and {sym!r} share token id {i}")
        by_id[i] = sym
    if not problems:  # merges: runs of text symbols encoded whole must still give one token per symbol
        rows = np.array([[int(a), int(b)] * 5 for a in DIGITS for b in DIGITS], dtype=GRID_DTYPE).reshape(10, 10, 10)
        syms, _ = fmt.layout([Pair(rows[a], rows[(a + 1) % 10]) for a in range(10)])
        run: list[str] = []
        for sym in [*syms, None]:
            if sym is not None and sym not in roles:
                run.append(sym)
                continue
            if run:
                got = tokenizer.encode("".join(run), add_special_tokens=False)
                want = [ids[s] for s in run]
                if got != want:
                    k = next((j for j, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
                    piece = tokenizer.convert_ids_to_tokens(got[k]) if k < len(got) else None
                    problems.append(f"merged symbols: {''.join(run[max(0, k - 3):k + 4])!r} encodes to "
                                    f"{len(got)} tokens instead of {len(want)} (one per symbol); at symbol {k} the "
                                    f"tokenizer writes {piece!r} for {run[k] if k < len(run) else None!r}")
                    break
                run = []
    if problems:
        raise TokenizerFormatError(f"this tokenizer does not fit prompt format {fmt.name!r}: " + "; ".join(problems)
                                   + f". {fmt.merge_hint}")
    return ids, names


@dataclass(frozen=True)
class GridCodec:
    """A PromptFormat bound to one tokenizer's ids. Sequences are built id by id, never by tokenizing text."""

    fmt: PromptFormat
    digit_ids: tuple[int, ...]
    newline_id: int
    input_id: int  # the first symbol of the input prefix
    output_id: int  # the last symbol of the output prefix (the prompt ends with it)
    end_id: int
    bos_id: int | None = None
    pad_id: int = 0
    ids: tuple[tuple[str, int], ...] = ()  # symbol -> id, every symbol of the format
    names: tuple[tuple[str, str], ...] = ()  # special symbol -> the tokenizer's text for it

    @classmethod
    def from_tokenizer(cls, tokenizer, fmt: PromptFormat | None = None, use_bos: bool = True) -> "GridCodec":
        """The format (the kit's by default) on this tokenizer; raises TokenizerFormatError when it does not fit."""
        fmt = KIT if fmt is None else fmt
        if not isinstance(fmt, PromptFormat):
            raise TypeError(f"GridCodec speaks symbol formats; use core.formats.codec_for() for {fmt.name!r}")
        ids, names = check_format(tokenizer, fmt)
        bos = tokenizer.bos_token_id if use_bos and fmt.bos != "none" else None
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        return cls(
            fmt=fmt,
            digit_ids=tuple(ids[d] for d in DIGITS),
            newline_id=ids[fmt.newline],
            input_id=ids[fmt.input_prefix[0]],
            output_id=ids[fmt.output_prefix[-1]],
            end_id=ids[fmt.end],
            bos_id=bos,
            pad_id=pad if pad is not None else ids[fmt.end],
            ids=tuple(ids.items()),
            names=tuple(names.items()),
        )

    @property
    def name(self) -> str:
        return self.fmt.name

    def grammar(self, max_side: int = MAX_SIDE) -> GridGrammar:
        """The grid grammar with the format's row layout (rows newline-terminated, or joined by newlines)."""
        return GridGrammar(max_side, separated=not self.fmt.rows_terminated)

    @property
    def grid_token_ids(self) -> tuple[int, ...]:
        """The only tokens a generated output may contain: digits 0-9, newline, end (indices NEWLINE, END)."""
        return (*self.digit_ids, self.newline_id, self.end_id)

    @property
    def format_token_ids(self) -> tuple[int, ...]:
        ids = [*self.grid_token_ids, *(i for _, i in self.ids), self.pad_id]
        if self.bos_id is not None:
            ids.append(self.bos_id)
        return tuple(dict.fromkeys(ids))

    def _lookup(self) -> dict[str, int]:
        return dict(self.ids)

    def encode_grid(self, grid: np.ndarray) -> list[int]:
        lut = np.asarray(self.digit_ids, dtype=np.int64)
        g = lut[np.asarray(grid)]
        rows = np.concatenate([g, np.full((g.shape[0], 1), self.newline_id, dtype=np.int64)], axis=1)
        flat = rows.reshape(-1).tolist()
        return flat if self.fmt.rows_terminated else flat[:-1]

    def answer_symbols(self, grid: np.ndarray) -> list[int]:
        """A grid as the answer the model writes, in grid-token indices (digits, NEWLINE, END)."""
        return grid_symbols(grid, self.fmt.rows_terminated)

    def pair_cost(self, pair: Pair) -> int:
        """Tokens the pair takes in any D8 orientation (an upper bound for fitting demos under a cap)."""
        f = self.fmt
        return pair_tokens(pair, markers=len(f.separator) + len(f.input_prefix) + len(f.output_prefix) + 1)

    def answer_cost(self, demos: Sequence[Pair]) -> int:
        """Expected tokens of a generated answer (for planning): the largest demo output's, with the end."""
        return answer_tokens(demos)

    @property
    def overhead(self) -> int:
        """Tokens before the first pair: BOS and the preamble."""
        return (self.bos_id is not None) + len(self.fmt.preamble)

    def _head(self) -> list[int]:
        look = self._lookup()
        return ([] if self.bos_id is None else [self.bos_id]) + [look[s] for s in self.fmt.preamble]

    def encode_pairs(self, pairs: Sequence[Pair], loss_on: LossOn | str = LossOn.ALL_OUTPUTS) -> Encoded:
        """Complete pairs (all with outputs); the last plays the query. For training and scoring."""
        loss_on = LossOn(loss_on)
        look = self._lookup()
        sep = [look[s] for s in self.fmt.separator]
        inp = [look[s] for s in self.fmt.input_prefix]
        out = [look[s] for s in self.fmt.output_prefix]
        ids: list[int] = self._head()
        mask: list[bool] = [False] * len(ids)
        for i, p in enumerate(pairs):
            if p.output is None:
                raise ValueError("encode_pairs needs every pair's output")
            prompt = [*(sep if i else []), *inp, *self.encode_grid(p.input), *out]
            target = [*self.encode_grid(p.output), self.end_id]
            on = (loss_on is LossOn.ALL_OUTPUTS or (loss_on is LossOn.ALL_BUT_FIRST and i > 0)
                  or i == len(pairs) - 1)
            ids += prompt + target
            mask += [False] * len(prompt) + [on] * len(target)
        return Encoded(np.asarray(ids, dtype=np.int64), np.asarray(mask, dtype=bool))

    def encode_prompt(self, demos: Sequence[Pair], query_input: np.ndarray) -> np.ndarray:
        """Demonstrations, then the query input and the output prefix: the model continues with the grid."""
        look = self._lookup()
        head = self.encode_pairs(demos).ids.tolist() if demos else self._head()
        tail = [*([look[s] for s in self.fmt.separator] if demos else []), *(look[s] for s in self.fmt.input_prefix),
                *self.encode_grid(query_input), *(look[s] for s in self.fmt.output_prefix)]
        return np.asarray(head + tail, dtype=np.int64)

    def prompt_text(self, demos: Sequence[Pair], query_input: np.ndarray) -> str:
        """Exactly the text of `encode_prompt` (special tokens as the tokenizer writes them), without BOS."""
        return self.fmt.prompt_text(demos, query_input, dict(self.names))

    def decode(self, ids: Sequence[int]) -> np.ndarray | None:
        """Generated ids (after the output prefix) -> grid, or None when they are not a legal grid."""
        digit = {t: d for d, t in enumerate(self.digit_ids)}
        rows: list[list[int]] = [[]]
        for t in ids:
            t = int(t)
            if t == self.end_id:
                break
            if t == self.newline_id:
                rows.append([])
            elif t in digit:
                rows[-1].append(digit[t])
            else:
                return None
        if not self.fmt.rows_terminated and rows and not rows[-1]:
            return None  # a trailing newline is not in this layout
        return rows_to_grid(rows, lambda row: row)
