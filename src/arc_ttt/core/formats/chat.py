"""MIT's TTT format (marc): numpy-printed grids inside the model's chat template, over a stock BPE vocabulary.

    system:    <MARC_SYSTEM>{in} -> {out}#\\n{in} -> {out}#\\n...
    user:      {query in} ->
    assistant: {out}#

A grid is printed as numpy prints an integer array (`[[0 1 2]\\n [3 4 5]]`; ARC grids are at most 30 wide,
so numpy never wraps a row). Unlike the symbol formats this one is text-level: the chat template renders
text and the tokenizer encodes it, as the marc checkpoints were trained. Decoding cannot use the kit's
one-token-per-cell grammar, so `NumpyGridGrammar` is a character-level automaton over every vocabulary
token made only of answer characters (digits, `[`, `]`, space, newline, `#`): a token is allowed when all
its characters keep the text a prefix of a legal answer. `ChatGridCodec` orders those tokens so that
indices 0-9 are the single digits, NEWLINE the newline and END the end of the assistant turn, so decoding,
scoring and the loss masks use it as they use a `GridCodec`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..tasks import GRID_DTYPE, MAX_SIDE, Pair
from .codec import DIGITS, END, NEWLINE, Encoded, LossOn, TokenizerFormatError, grammar_masks

MARC_SYSTEM = ("Figure out the underlying transformation in the following examples and apply it to the test case. "
               "Here are some examples from this transformation, your answer must follow the format.\n"
               "The input-output grids are provided as python arrays:\n")
ANSWER_CHARS = frozenset(DIGITS + "[] \n#")
# Llama-3 Instruct's chat markers, for rendering when the tokenizer brings no chat template of its own.
LLAMA3 = {"bos": "<|begin_of_text|>", "start": "<|start_header_id|>", "end_header": "<|end_header_id|>",
          "eot": "<|eot_id|>"}


def numpy_text(grid: np.ndarray) -> str:
    """The grid as numpy prints it (`str(np.array(grid))`)."""
    return np.array2string(np.asarray(grid, dtype=np.int64))


def parse_numpy_text(text: str) -> np.ndarray | None:
    """Numpy-printed grid text -> grid, or None unless it is exactly how numpy prints a legal ARC grid."""
    text = text.removesuffix("#")
    if not (text.startswith("[[") and text.endswith("]]")):
        return None
    rows = text[1:-1].split("\n")
    if not rows or len(rows) > MAX_SIDE:
        return None
    cells = []
    for i, row in enumerate(rows):
        row = row if i == 0 else row.removeprefix(" ")
        if not (row.startswith("[") and row.endswith("]")):
            return None
        values = row[1:-1].split(" ")
        if not all(len(v) == 1 and v in DIGITS for v in values) or len(values) > MAX_SIDE:
            return None
        cells.append([int(v) for v in values])
    if len({len(r) for r in cells}) != 1:
        return None
    grid = np.array(cells, dtype=GRID_DTYPE)
    return grid if numpy_text(grid) == text else None


# --- the character automaton ---------------------------------------------------------------------------

# phases: 0 before "[[", 1 before a row's "[", 2 before a cell, 3 after a cell (" " or "]"), 4 after a row's "]"
# ("\n" or the final "]"), 5 after "\n" (" "), 6 after the final "]" ("#"), 7 finished (END only)
CharState = tuple[int, int, int, int]  # (phase, finished rows, cells in the current row, row width; 0 = not fixed)


def char_step(state: CharState | None, ch: str, max_side: int = MAX_SIDE) -> CharState | None:
    """The automaton's next state, or None when `ch` cannot continue a legal numpy-printed grid."""
    if state is None:
        return None
    phase, rows, col, width = state
    if phase == 0:
        return (1, 0, 0, 0) if ch == "[" else None
    if phase == 1:
        return (2, rows, 0, width) if ch == "[" else None
    if phase == 2:
        return (3, rows, col + 1, width) if ch in DIGITS else None
    if phase == 3:
        if ch == " " and col < (width or max_side):
            return (2, rows, col, width)
        if ch == "]" and (width == 0 or col == width):
            return (4, rows + 1, 0, width or col)
        return None
    if phase == 4:
        if ch == "\n" and rows < max_side:
            return (5, rows, 0, width)
        return (6, rows, 0, width) if ch == "]" else None
    if phase == 5:
        return (1, rows, 0, width) if ch == " " else None
    if phase == 6:
        return (7, rows, 0, width) if ch == "#" else None
    return None


class NumpyGridGrammar:
    """Which of the codec's answer tokens may come next (a `codec.Grammar`, as `grammar.GridGrammar`).

    `texts[k]` is the text of answer token k (None for END, allowed only once `#` is written). Masks are
    cached per automaton state: answers revisit few distinct states."""

    start: CharState = (0, 0, 0, 0)

    def __init__(self, texts: Sequence[str | None], max_side: int = MAX_SIDE):
        self.texts = tuple(texts)
        self.max_side = max_side
        self._cache: dict[CharState, np.ndarray] = {}

    @property
    def max_tokens(self) -> int:
        return len(numpy_text(np.zeros((self.max_side, self.max_side)))) + 2  # every token has >= 1 character

    def _walk(self, state: CharState, text: str) -> CharState | None:
        for ch in text:
            state = char_step(state, ch, self.max_side)
            if state is None:
                return None
        return state

    def allowed(self, state: CharState) -> np.ndarray:
        ok = self._cache.get(state)
        if ok is None:
            ok = np.array([state[0] == 7 if t is None else self._walk(state, t) is not None for t in self.texts])
            self._cache[state] = ok
        return ok

    def advance(self, state: CharState, k: int) -> CharState:
        return state if self.texts[k] is None else self._walk(state, self.texts[k])

    def masks(self, tokens: Sequence[int]) -> np.ndarray:
        """The allowed set before each token of a complete text (grid-token indices)."""
        return grammar_masks(self, tokens)


# --- the format and its codec --------------------------------------------------------------------------

@dataclass(frozen=True)
class ChatFormat:
    """A chat-template format: the demos in the system message, the query as the user, the answer as the assistant."""

    name: str
    system: str
    io_sep: str = " -> "
    answer_end: str = "#"
    demo_end: str = "#\n"
    shrinkable: bool = False  # text over the model's BPE vocabulary: answers need its multi-character tokens

    def messages(self, demos: Sequence[Pair], query: np.ndarray) -> list[dict]:
        body = "".join(f"{numpy_text(p.input)}{self.io_sep}{numpy_text(p.output)}{self.demo_end}" for p in demos)
        return [{"role": "system", "content": self.system + body},
                {"role": "user", "content": f"{numpy_text(query)}{self.io_sep}"}]

    def answer_text(self, grid: np.ndarray) -> str:
        return numpy_text(grid) + self.answer_end

    def render(self, demos: Sequence[Pair], query: np.ndarray, tokenizer=None) -> str:
        """The whole prompt text, BOS included, ending where the assistant's answer starts: the tokenizer's own
        chat template when it has one, else Llama-3 Instruct's (content trimmed, as that template does)."""
        messages = self.messages(demos, query)
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        bos = getattr(tokenizer, "bos_token", None) or LLAMA3["bos"]
        turn = "{start}{role}{end_header}\n\n{content}"
        text = bos + "".join(turn.format(role=m["role"], content=m["content"].strip(), **LLAMA3) + LLAMA3["eot"]
                             for m in messages)
        return text + turn.format(role="assistant", content="", **LLAMA3)

    def prompt_text(self, demos: Sequence[Pair], query: np.ndarray, tokenizer=None) -> str:
        """The prompt as text without the BOS (what `show-prompt` prints)."""
        text = self.render(demos, query, tokenizer)
        template = getattr(tokenizer, "chat_template", None)
        if template and "bos_token" not in template:
            return text  # e.g. ChatML, whose first <|im_start|> is a marker even where it is also the bos token
        bos = getattr(tokenizer, "bos_token", None) or LLAMA3["bos"]
        return text.removeprefix(bos)

    def codec(self, tokenizer) -> "ChatGridCodec":
        return ChatGridCodec.build(self, tokenizer)


MARC = ChatFormat("marc", MARC_SYSTEM)


@dataclass
class ChatGridCodec:
    """A ChatFormat bound to a tokenizer: prompts encoded from rendered text, answers over the answer tokens."""

    fmt: ChatFormat
    tokenizer: object = field(repr=False)
    grid_token_ids: tuple[int, ...]  # digits 0-9, newline, END, then every other answer-character token
    texts: tuple[str | None, ...]  # text of each, None for END
    end_id: int
    bos_id: int | None
    pad_id: int
    _grammars: dict = field(default_factory=dict, repr=False)
    _overhead: int | None = field(default=None, repr=False)

    @classmethod
    def build(cls, fmt: ChatFormat, tokenizer) -> "ChatGridCodec":
        problems = []
        if not getattr(tokenizer, "chat_template", None):
            missing = [t for k, t in LLAMA3.items() if k != "bos" and t not in tokenizer.get_added_vocab()]
            if missing:
                problems.append(f"no chat template, and the Llama-3 markers {missing} are missing")
        vocab = tokenizer.get_vocab()
        eot = vocab.get(LLAMA3["eot"]) if LLAMA3["eot"] in tokenizer.get_added_vocab() else tokenizer.eos_token_id
        if eot is None:
            problems.append("no end-of-turn token (<|eot_id|> or the tokenizer's eos)")
        singles = {}
        for ch in [*DIGITS, "\n", "[", "]", " ", "#"]:
            ids = tokenizer.encode(ch, add_special_tokens=False)
            if len(ids) != 1 or tokenizer.decode(ids) != ch:
                problems.append(f"{ch!r} is missing as a single token (encodes to {ids})")
            else:
                singles[ch] = ids[0]
        if problems:
            raise TokenizerFormatError(f"this tokenizer does not fit prompt format {fmt.name!r}: " + "; ".join(problems))
        special = set(tokenizer.all_special_ids) | {i for t, i in tokenizer.get_added_vocab().items()}
        ids = sorted(i for i in set(vocab.values()) if i not in special)
        texts = tokenizer.batch_decode([[i] for i in ids])
        first = [singles[d] for d in DIGITS] + [singles["\n"]]
        others = [i for i, t in zip(ids, texts) if t and set(t) <= ANSWER_CHARS and i not in first]
        text_of = dict(zip(ids, texts))
        order = [*first, eot, *others]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eot
        return cls(fmt, tokenizer, tuple(order), tuple(None if i == eot else text_of[i] for i in order), eot,
                   tokenizer.bos_token_id, pad)

    name = property(lambda self: self.fmt.name)

    @property
    def format_token_ids(self) -> tuple[int, ...]:
        ids = [*self.grid_token_ids, self.pad_id] + ([] if self.bos_id is None else [self.bos_id])
        return tuple(dict.fromkeys(ids))

    def grammar(self, max_side: int = MAX_SIDE) -> NumpyGridGrammar:
        """The character-level grammar over the answer tokens (cached: building its masks costs)."""
        if max_side not in self._grammars:
            self._grammars[max_side] = NumpyGridGrammar(self.texts, max_side)
        return self._grammars[max_side]

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def encode_prompt(self, demos: Sequence[Pair], query_input: np.ndarray) -> np.ndarray:
        return np.asarray(self._encode(self.fmt.render(demos, query_input, self.tokenizer)), dtype=np.int64)

    def answer_ids(self, grid: np.ndarray) -> list[int]:
        return [*self._encode(self.fmt.answer_text(grid)), self.end_id]

    def answer_symbols(self, grid: np.ndarray) -> list[int]:
        """The answer as the tokenizer writes it, in indices into grid_token_ids (END last)."""
        index = {t: k for k, t in enumerate(self.grid_token_ids)}
        return [index[t] for t in self.answer_ids(grid)]

    def encode_pairs(self, pairs: Sequence[Pair], loss_on: LossOn | str = LossOn.ALL_OUTPUTS) -> Encoded:
        """The last pair is the query, the others the demos in the system message. The loss covers the
        assistant's answer only (marc's own training target), whatever `loss_on` says: the demos' outputs
        sit inside the system message."""
        *demos, last = pairs
        if any(p.output is None for p in pairs):
            raise ValueError("encode_pairs needs every pair's output")
        prompt = self.encode_prompt(demos, last.input).tolist()
        answer = self.answer_ids(last.output)
        return Encoded(np.asarray(prompt + answer, dtype=np.int64),
                       np.asarray([False] * len(prompt) + [True] * len(answer), dtype=bool))

    def prompt_text(self, demos: Sequence[Pair], query_input: np.ndarray) -> str:
        return self.fmt.prompt_text(demos, query_input, self.tokenizer)

    def decode(self, ids: Sequence[int]) -> np.ndarray | None:
        text_of = dict(zip(self.grid_token_ids, self.texts))
        out = []
        for t in ids:
            t = int(t)
            if t == self.end_id:
                break
            if text_of.get(t) is None:
                return None
            out.append(text_of[t])
        return parse_numpy_text("".join(out))

    def pair_cost(self, pair: Pair) -> int:
        """An upper bound on the pair's tokens in any D8 orientation: its characters (a token has at least one)."""
        def chars(g):
            h, w = g.shape
            return max(len(numpy_text(np.zeros((h, w)))), len(numpy_text(np.zeros((w, h)))))
        return chars(pair.input) + chars(pair.output) + len(self.fmt.io_sep) + len(self.fmt.demo_end)

    def answer_cost(self, demos: Sequence[Pair]) -> int:
        """Expected tokens of a generated answer (for planning): the largest demo output's, with the end."""
        return max(len(self.answer_ids(p.output)) for p in demos)

    @property
    def overhead(self) -> int:
        """Tokens of the prompt around the pairs (system text and chat markers)."""
        if self._overhead is None:
            one = np.zeros((1, 1), dtype=GRID_DTYPE)
            self._overhead = len(self.encode_prompt([], one)) + len(self.answer_ids(one))
        return self._overhead


__all__ = ["MARC", "MARC_SYSTEM", "ChatFormat", "ChatGridCodec", "NumpyGridGrammar", "char_step", "numpy_text",
           "parse_numpy_text", "END", "NEWLINE"]
