"""A new prompt format is one file plus one `register` line: this file is that file.

The toy format writes rows joined by `x` (no newline anywhere) between the markers `I`, `O` and `E`, on the
tests' character tokenizer, with a codec written from scratch against `core.codec.Codec`. Registered, it
resolves like the shipped formats ("auto" included) and runs end to end on a tiny random model: TTT, DFS
decoding under its own grammar, and selection (votes plus product of experts).
"""
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pytest
import torch
from conftest import char_tokenizer

from arc_ttt.core import formats
from arc_ttt.core.codec import (DIGITS, NEWLINE, Codec, Encoded, LossOn, answer_tokens, grid_symbols, pair_tokens,
                                rows_to_grid)
from arc_ttt.core.config import InferenceConfig, LoraSettings, TTTConfig
from arc_ttt.core.grammar import GridGrammar
from arc_ttt.core.tasks import MAX_SIDE, Pair, Task
from arc_ttt.modeling import lora, ttt
from arc_ttt.modeling.predict import predict_task
from conftest import tiny_llama


@dataclass(frozen=True)
class ToyFormat:
    name: str = "toy"

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


def test_a_toy_format_runs_end_to_end(toy):
    tok = char_tokenizer()
    codec = formats.codec_for(formats.resolve(toy, None), tok)
    assert isinstance(codec, Codec)
    rng = np.random.default_rng(3)
    g = lambda h, w: rng.integers(0, 4, (h, w)).astype(np.uint8)  # noqa: E731
    task = Task("tiny", tuple(Pair(g(2, 3), g(2, 2)) for _ in range(3)), (Pair(g(3, 2), g(2, 2)),))
    for p in task.train:  # the encoding is the toy layout, and the answer grammar accepts every answer
        np.testing.assert_array_equal(codec.decode([codec.grid_token_ids[k] for k in codec.answer_symbols(p.output)]),
                                      p.output)
        symbols = codec.answer_symbols(p.output)
        assert codec.grammar().masks(symbols)[np.arange(len(symbols)), symbols].all()
    torch.manual_seed(0)
    model = lora.attach(tiny_llama(tok, hidden=32, layers=1), LoraSettings(r=4, alpha=8, train_embeddings=True,
                                                                            train_lm_head=True))
    cfg = TTTConfig(lr=1e-2, warmup=0.0, max_len=4096, autocast="off")
    data = ttt.build_sequences(task, codec, cfg, n=2, seed=0)
    assert len(data.sequences) == 2 and all(s.loss_mask.any() for s in data.sequences)
    result = ttt.train(model, data, cfg, epochs=3)
    assert result.steps == 6 and result.losses[-1] < result.losses[0]

    icfg = InferenceConfig(n_views=2, n_score_views=2, decoding="dfs", dfs_threshold=0.05, max_candidates=4,
                           selection="both")
    pred = predict_task(model, codec, task, icfg, seed=0)
    assert pred.stopped_by == "done" and pred.candidates[0] and pred.attempts[0][0] is not None
    for c in pred.candidates[0]:
        assert c.grid.ndim == 2 and max(c.grid.shape) <= MAX_SIDE
        assert len(c.view_nlls) == 2 and all(math.isfinite(x) and x > 0 for x in c.view_nlls)
