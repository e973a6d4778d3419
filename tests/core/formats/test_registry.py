"""A new prompt format is one file plus one `register` line: this file is that file.

The toy format writes rows joined by `x` (no newline anywhere) between the markers `I`, `O` and `E`, on the
tests' character tokenizer, with a codec written from scratch against `core.formats.codec.Codec`. Registered, it
resolves like the shipped formats ("auto" included) and runs end to end on a tiny random model: TTT, DFS
decoding under its own grammar, and selection (votes plus product of experts).
"""
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pytest
from conftest import char_tokenizer

from arc_ttt.core import formats
from arc_ttt.core.errors import UserError
from arc_ttt.core.formats.codec import (DIGITS, NEWLINE, Codec, Encoded, LossOn, answer_tokens, grid_symbols, pair_tokens,
                                rows_to_grid)
from arc_ttt.core.formats.grammar import GridGrammar
from arc_ttt.core.tasks import MAX_SIDE, Pair, Task
from conftest import ttt_then_predict


@dataclass(frozen=True)
class ToyFormat:
    name: str = "toy"
    shrinkable: bool = False  # its codec is written by hand: no vocabulary cutting asked of it

    def prompt_text(self, demos: Sequence[Pair], query: np.ndarray) -> str:
        rows = lambda g: "x".join("".join(DIGITS[v] for v in r) for r in g)  # noqa: E731
        return "".join(f"I{rows(p.input)}O{rows(p.output)}E" for p in demos) + f"I{rows(query)}O"

    def codec(self, tokenizer) -> "ToyCodec":
        return ToyCodec(self.name, {s: tokenizer.convert_tokens_to_ids(s) for s in [*DIGITS, "x", "I", "O", "E"]},
                        tokenizer.bos_token_id, tokenizer.pad_token_id)


@dataclass(frozen=True)
class ToyCodec:
    name: str
    ids: dict
    bos_id: int
    pad_id: int
    overhead: int = 1  # the BOS

    @property
    def end_id(self) -> int:
        return self.ids["E"]

    @property
    def grid_token_ids(self) -> tuple[int, ...]:
        return (*(self.ids[d] for d in DIGITS), self.ids["x"], self.ids["E"])

    @property
    def format_token_ids(self) -> tuple[int, ...]:
        return (*self.ids.values(), self.bos_id, self.pad_id)

    def _grid(self, g: np.ndarray) -> list[int]:
        return [self.grid_token_ids[k] for k in grid_symbols(g, rows_terminated=False)[:-1]]

    def _pair(self, p: Pair) -> tuple[list[int], list[int]]:
        return [self.ids["I"], *self._grid(p.input), self.ids["O"]], [*self._grid(p.output), self.end_id]

    def encode_pairs(self, pairs: Sequence[Pair], loss_on: LossOn | str = LossOn.ALL_OUTPUTS) -> Encoded:
        ids, mask = [self.bos_id], [False]
        for i, p in enumerate(pairs):
            prompt, answer = self._pair(p)
            on = LossOn(loss_on) is LossOn.ALL_OUTPUTS or i == len(pairs) - 1
            ids, mask = ids + prompt + answer, mask + [False] * len(prompt) + [on] * len(answer)
        return Encoded(np.asarray(ids, dtype=np.int64), np.asarray(mask, dtype=bool))

    def encode_prompt(self, demos: Sequence[Pair], query_input: np.ndarray) -> np.ndarray:
        head = self.encode_pairs(demos).ids.tolist() if demos else [self.bos_id]
        return np.asarray(head + [self.ids["I"], *self._grid(query_input), self.ids["O"]], dtype=np.int64)

    def prompt_text(self, demos: Sequence[Pair], query_input: np.ndarray) -> str:
        return ToyFormat(self.name).prompt_text(demos, query_input)

    def grammar(self, max_side: int = MAX_SIDE) -> GridGrammar:
        return GridGrammar(max_side, separated=True)

    def answer_symbols(self, grid: np.ndarray) -> list[int]:
        return grid_symbols(grid, rows_terminated=False)

    def decode(self, ids: Sequence[int]) -> np.ndarray | None:
        index = {t: k for k, t in enumerate(self.grid_token_ids)}
        rows: list[list[int]] = [[]]
        for t in ids:
            k = index.get(int(t))
            if k == len(self.grid_token_ids) - 1:  # the end marker
                break
            if k is None:
                return None
            rows[-1:] = [rows[-1], []] if k == NEWLINE else [rows[-1] + [k]]
        return None if not rows[-1] else rows_to_grid(rows, lambda row: row)

    def pair_cost(self, pair: Pair) -> int:
        return pair_tokens(pair, markers=3)

    def answer_cost(self, demos: Sequence[Pair]) -> int:
        return answer_tokens(demos) - 1


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(formats, "_REGISTRY", dict(formats._REGISTRY))  # the registration ends with the test
    formats.register(ToyFormat())  # the one registry line a new format needs
    return "toy"


def test_a_registered_format_resolves_like_the_shipped_ones(toy, tmp_path):
    assert toy in formats.names() and formats.resolve(toy, None) == toy
    formats.write_format_file(str(tmp_path), toy)
    assert formats.resolve("auto", str(tmp_path)) == toy
    task = Task("t", (Pair(np.array([[1, 2]]), np.array([[3], [4]])),), (Pair(np.array([[5]]), None),))
    assert formats.get_format(toy).prompt_text(task.train, task.test[0].input) == "I12O3x4EI5O"


def test_a_toy_format_runs_end_to_end(toy, tiny_task):
    tok = char_tokenizer()
    codec = formats.codec_for(formats.resolve(toy, None), tok)
    assert isinstance(codec, Codec)
    for p in tiny_task.train:  # the encoding is the toy layout, and the answer grammar accepts every answer
        np.testing.assert_array_equal(codec.decode([codec.grid_token_ids[k] for k in codec.answer_symbols(p.output)]),
                                      p.output)
        symbols = codec.answer_symbols(p.output)
        assert codec.grammar().masks(symbols)[np.arange(len(symbols)), symbols].all()
    ttt_then_predict(codec, tok, tiny_task)  # trains, decodes and ranks in the toy layout


REFERENCED = """
from arc_ttt.core.formats.symbols import PromptFormat
MINE = PromptFormat("mine", input_prefix=("I",), output_prefix=("O",), end="E", rows_terminated=False)
"""


@pytest.fixture
def referenced(tmp_path, monkeypatch):
    """A user's format in a module of its own, importable, never registered by a line of the kit."""
    (tmp_path / "my_formats.py").write_text(textwrap.dedent(REFERENCED))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(formats, "_REGISTRY", dict(formats._REGISTRY))
    monkeypatch.setattr(formats, "_REFERENCES", dict(formats._REFERENCES))
    monkeypatch.delitem(sys.modules, "my_formats", raising=False)
    return tmp_path


def test_a_format_named_by_reference_reaches_another_process(referenced, tmp_path):
    assert "mine" not in formats.names()
    assert formats.resolve("my_formats:MINE", None) == "my_formats:MINE"  # portable: any process can load it
    assert formats.get_format("my_formats:MINE").name == "mine" and "mine" in formats.names()
    folder = tmp_path / "model"
    folder.mkdir()
    formats.write_format_file(str(folder), "mine")  # by name, written as the reference it was loaded by
    assert json.loads((folder / formats.FORMAT_FILE).read_text()) == {"format": "my_formats:MINE"}
    probe = ("from arc_ttt.core import formats; import sys; "
             "name = formats.resolve('auto', sys.argv[1]); print(name, formats.get_format(name).name)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(referenced), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", probe, str(folder)], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["my_formats:MINE", "mine"]  # a fresh process, no register line run: the folder's file sufficed


def test_a_bad_reference_names_itself(referenced, tmp_path):
    with pytest.raises(UserError, match="'my_formats:NOPE': cannot load it"):
        formats.get_format("my_formats:NOPE")
    with pytest.raises(UserError, match="'no_such_module:X': cannot load it"):
        formats.resolve("no_such_module:X", None)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / formats.FORMAT_FILE).write_text('{"format": "my_formats:REFERENCED_NOT"}')
    with pytest.raises(UserError, match="REFERENCED_NOT"):
        formats.resolve("auto", str(folder))
