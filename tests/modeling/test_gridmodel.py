"""The recursive grid model: the canvas and its outside class, 2-D RoPE, the recursion (what runs with and without
gradient), deep supervision and halting, seeds, parameter counts, a fitted task vector, voting, saving."""
import numpy as np
import pytest
import torch

from arc_ttt.core.gridconfig import GridModelConfig, load_grid_config
from arc_ttt.core.tasks import Pair, Task
from arc_ttt.core.views import IDENTITY, View
from arc_ttt.modeling import gridmodel as gm

TINY = GridModelConfig(canvas=4, hidden=16, heads=2, layers=2, n=2, T=3, n_sup=3, prefix=2, mlp_multiple=16)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: torch on one thread here


def tiny(seed=0, cfg=TINY, rows=3) -> gm.GridModel:
    torch.manual_seed(seed)
    return gm.GridModel(cfg, rows)


def batch(n=2, seed=0):
    rng = np.random.default_rng(seed)
    grids = [rng.integers(0, 10, (int(rng.integers(1, 5)), int(rng.integers(1, 5)))) for _ in range(2 * n)]
    cells = torch.tensor(np.stack([gm.encode_grid(g, TINY.canvas) for g in grids[:n]]))
    targets = torch.tensor(np.stack([gm.encode_grid(g, TINY.canvas) for g in grids[n:]]))
    return cells, targets


# ---------------------------------------------------------------------------- canvas

def as_logprobs(cells: np.ndarray) -> np.ndarray:
    """A canvas of classes as a network sure of each: 0.9 on the class, 0.01 on each other (log)."""
    return np.log(np.where(np.eye(gm.CLASSES, dtype=bool)[np.asarray(cells).reshape(-1)], 0.9, 0.01))


def test_a_grid_goes_to_the_top_left_and_comes_back():
    g = np.array([[0, 3, 9], [5, 5, 1]], dtype=np.uint8)
    cells = gm.encode_grid(g, 4)
    assert cells.reshape(4, 4)[:2, :3].tolist() == [[1, 4, 10], [6, 6, 2]]
    assert (cells.reshape(4, 4)[2:] == gm.OUTSIDE).all() and (cells.reshape(4, 4)[:, 3] == gm.OUTSIDE).all()
    grid, logprob = gm.likeliest_grid(as_logprobs(cells), 4)
    assert np.array_equal(grid, g) and grid.dtype == g.dtype
    assert logprob == pytest.approx(16 * np.log(0.9))  # every cell at its likeliest class: 16 terms in float64
    full = np.arange(16).reshape(4, 4) % 10
    assert np.array_equal(gm.likeliest_grid(as_logprobs(gm.encode_grid(full, 4)), 4)[0], full)  # no outside cell
    with pytest.raises(ValueError, match="does not fit"):
        gm.encode_grid(np.zeros((5, 2), dtype=np.uint8), 4)


@pytest.mark.parametrize("broken", ["hole", "stray", "corner", "ragged", "empty"])
def test_a_canvas_that_is_not_one_rectangle_at_the_corner_gives_the_grid_nearest_to_it(broken):
    """The 2x3 grid of ones with one cell broken: the likeliest grid is still 2x3 (a broken cell inside it takes
    its likeliest colour, here 0: the colours tie and the first wins); a canvas all outside gives the likeliest
    single cell. Its log-probability is that of the canvas the grid makes, cell by cell."""
    cells = gm.encode_grid(np.ones((2, 3), dtype=np.uint8), 4).reshape(4, 4)
    want = np.ones((2, 3), dtype=np.uint8)
    if broken == "hole":
        cells[1, 1], want[1, 1] = gm.OUTSIDE, 0
    elif broken == "stray":
        cells[3, 3] = 5
    elif broken == "corner":
        cells[0, 0], want[0, 0] = gm.OUTSIDE, 0
    elif broken == "ragged":
        cells[2, 0] = 3  # a third row one cell long
    else:
        cells[:], want = gm.OUTSIDE, np.zeros((1, 1), dtype=np.uint8)
    lp = as_logprobs(cells)
    grid, logprob = gm.likeliest_grid(lp, 4)
    assert np.array_equal(grid, want)
    chosen = gm.encode_grid(grid, 4)
    assert logprob == pytest.approx(lp[np.arange(16), chosen].sum())


def test_the_likeliest_grid_is_the_best_of_every_size():
    """Against a brute force over the 16 sizes of a 4x4 canvas, on random log-probabilities."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        lp = np.log(rng.dirichlet(np.ones(gm.CLASSES), size=16))
        best = max((lp[np.arange(16), gm.encode_grid(lp.reshape(4, 4, -1)[:h, :w, 1:].argmax(-1), 4)].sum(), h, w)
                   for h in range(1, 5) for w in range(1, 5))
        grid, logprob = gm.likeliest_grid(lp, 4)
        assert grid.shape == best[1:] and logprob == pytest.approx(best[0])


# ---------------------------------------------------------------------------- positions

def test_2d_rope_turns_by_the_offset_alone_and_keeps_lengths():
    """q.k after RoPE depends on the offset between two positions, in rows and columns apart, never on where they
    are; a rotation keeps every vector's length (fp32: 1e-5 of values of order 1)."""
    cfg = GridModelConfig(canvas=6, hidden=32, heads=2, prefix=3)
    cos, sin = gm.rope_2d(cfg)
    assert cos.shape == (3 + 36, 16)
    torch.manual_seed(0)
    q, k = torch.randn(16), torch.randn(16)

    def dot(i, j):  # canvas cells, by (row, column)
        a, b = 3 + i[0] * 6 + i[1], 3 + j[0] * 6 + j[1]
        return float(gm.rotate(q, cos[a], sin[a]) @ gm.rotate(k, cos[b], sin[b]))

    assert dot((0, 0), (2, 3)) == pytest.approx(dot((3, 1), (5, 4)), abs=1e-4)
    assert dot((0, 0), (2, 3)) != pytest.approx(dot((0, 0), (3, 2)), abs=1e-3)  # rows and columns are told apart
    assert torch.allclose(gm.rotate(q, cos[20], sin[20]).norm(), q.norm(), atol=1e-5)
    assert torch.equal(cos[0], torch.ones(16)) and torch.equal(sin[0], torch.zeros(16))  # the task vector: (0, 0)


# ---------------------------------------------------------------------------- the recursion

def test_one_step_gives_canvas_logits_a_halt_logit_and_detached_states():
    model = tiny()
    cells, _ = batch(3)
    y, z = model.initial_state(3)
    assert y.shape == z.shape == (3, TINY.prefix + TINY.canvas ** 2, TINY.hidden)
    y2, z2, logits, q = model.step(model.embed_input(cells, model.task(torch.tensor([0, 1, 2]))), y, z)
    assert logits.shape == (3, 16, gm.CLASSES) and q.shape == (3,)
    assert logits.dtype == q.dtype == torch.float32 and logits.requires_grad
    assert not y2.requires_grad and not z2.requires_grad
    assert torch.allclose(torch.sigmoid(q), torch.full((3,), torch.sigmoid(torch.tensor(-5.0)).item()))  # bias -5


def test_all_cycles_but_the_last_run_without_gradient():
    """Per supervision step, (n + 1) applications of the network per cycle: T - 1 cycles without gradient, one with."""
    model = tiny()
    grads: list[bool] = []
    model.blocks[0].register_forward_hook(lambda *_: grads.append(torch.is_grad_enabled()))
    cells, _ = batch(1)
    model.step(model.embed_input(cells, model.task(torch.tensor([0]))), *model.initial_state(1))
    per_cycle = TINY.n + 1
    assert grads == [False] * per_cycle * (TINY.T - 1) + [True] * per_cycle


def test_the_gradient_reaches_the_network_and_only_the_rows_used():
    model = tiny()
    cells, targets = batch(2)
    _, _, logits, q = model.step(model.embed_input(cells, model.task(torch.tensor([0, 2]))), *model.initial_state(2))
    loss, _, _ = gm.supervision_loss(logits, q, targets, torch.ones(2, dtype=torch.bool))
    loss.backward()
    assert model.blocks[0].qkv.weight.grad.abs().sum() > 0 and model.halt.bias.grad.abs().sum() > 0
    assert model.task.weight.grad[1].abs().sum() == 0 and model.task.weight.grad[[0, 2]].abs().sum() > 0


def test_the_loss_counts_only_active_samples_and_a_right_answer_is_correct():
    targets = torch.tensor([[1, 2, 0, 0], [3, 3, 3, 0]])
    logits = torch.nn.functional.one_hot(targets, gm.CLASSES).float() * 20
    logits[1, 0] = torch.nn.functional.one_hot(torch.tensor(5), gm.CLASSES).float() * 20
    q = torch.tensor([3.0, -3.0])
    loss, correct, right = gm.supervision_loss(logits, q, targets, torch.tensor([True, True]))
    assert correct.tolist() == [True, False] and right.tolist() == [4, 3]
    only_first, _, _ = gm.supervision_loss(logits, q, targets, torch.tensor([True, False]))
    assert only_first < loss  # the wrong sample's cross-entropy is gone from the mean
    none, _, _ = gm.supervision_loss(logits, q, targets, torch.tensor([False, False]))
    assert none == 0


# ---------------------------------------------------------------------------- deep supervision and halting

def run(model, min_halt=None, stop_after=None):
    cells, targets = batch(2)
    calls = []

    def update(loss):
        calls.append(float(loss.detach()))
        return stop_after is None or len(calls) < stop_after

    stats = gm.deep_supervision(model, cells, targets, lambda: model.task(torch.tensor([0, 1])), update, min_halt)
    return stats, calls


def test_deep_supervision_runs_n_sup_steps_until_the_head_halts():
    model = tiny()
    stats, calls = run(model)
    assert len(stats) == len(calls) == TINY.n_sup and all(s["active"] == 2 for s in stats)  # bias -5: never halts
    with torch.no_grad():
        model.halt.bias.fill_(5.0)
    assert len(run(model)[0]) == 1  # every halt logit positive after the first step
    forced = run(model, min_halt=torch.tensor([3, 0]))[0]  # exploration: the first may not halt before step 3
    assert [s["active"] for s in forced] == [2, 1, 1]
    assert len(run(tiny(), stop_after=2)[0]) == 2  # the update says stop (the run's last step)


def test_prediction_runs_every_step_unless_asked_to_halt():
    model = tiny()
    calls = []
    model.head.register_forward_hook(lambda *_: calls.append(1))
    cells, _ = batch(2)
    logprobs, conf = gm.predict_cells(model, cells, model.task(torch.tensor([0, 1])))
    assert logprobs.shape == (2, 16, gm.CLASSES) and conf.shape == (2,) and len(calls) == TINY.n_sup
    assert np.allclose(np.exp(logprobs).sum(-1), 1.0, atol=1e-5)  # fp32 softmax over 11 classes
    with torch.no_grad():
        model.halt.bias.fill_(5.0)
    calls.clear()
    gm.predict_cells(model, cells, model.task(torch.tensor([0, 1])), halt=True)
    assert len(calls) == 1


# ---------------------------------------------------------------------------- seeds, sizes, saving

def test_the_same_seed_gives_the_same_model_and_outputs():
    a, b, c = tiny(0), tiny(0), tiny(1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.blocks[0].qkv.weight, c.blocks[0].qkv.weight)
    cells, _ = batch(2)
    vec = a.task(torch.tensor([0, 1]))
    assert np.array_equal(gm.predict_cells(a, cells, vec)[0], gm.predict_cells(b, cells, vec)[0])


def expected_parameters(cfg: GridModelConfig) -> int:
    width = -(-round(cfg.expansion * cfg.hidden * 2 / 3) // cfg.mlp_multiple) * cfg.mlp_multiple
    block = 4 * cfg.hidden ** 2 + 3 * cfg.hidden * width  # qkv + out; gate, up and down
    return 2 * gm.CLASSES * cfg.hidden + cfg.hidden + 1 + cfg.layers * block  # embed, head, halt (+ bias)


@pytest.mark.parametrize("config", ["configs/grid-local.yaml", "configs/grid-l4.yaml"])
def test_the_parameter_count_follows_the_configured_sizes(config):
    cfg = load_grid_config(config).model
    counted = gm.count_parameters(gm.GridModel(cfg, 5))
    assert counted == {"network": expected_parameters(cfg), "task_embedding": 5 * cfg.hidden}
    if cfg.hidden == 512:  # TRM's sizes: its "7M" (hidden 512, SwiGLU 1536, 2 layers)
        assert counted["network"] == 6_827_521


def test_a_saved_model_loads_back_the_same(tmp_path):
    model = tiny()
    with torch.no_grad():
        model.task.weight.normal_()
    gm.save_grid_model(model, str(tmp_path / "m"), {"card.json": {"steps": 3}})
    back = gm.load_grid_model(str(tmp_path / "m"))
    assert back.cfg == TINY and (tmp_path / "m" / "card.json").exists()
    cells, _ = batch(2)
    ids = torch.tensor([0, 2])
    assert np.array_equal(gm.predict_cells(model, cells, model.task(ids))[0],
                          gm.predict_cells(back, cells, back.task(ids))[0])


# ---------------------------------------------------------------------------- task vectors

def test_sign_sgd_moves_only_the_rows_given():
    table = torch.ones(4, 3)
    gm.sign_sgd_(table, torch.tensor([1, 3]), torch.tensor([[2.0, -0.1, 0.0], [-5.0, 5.0, 1.0]]), 0.5, 0.2)
    assert table[0].tolist() == [1, 1, 1] and table[2].tolist() == [1, 1, 1]
    assert table[1].tolist() == pytest.approx([0.4, 1.4, 0.9]) and table[3].tolist() == pytest.approx([1.4, 0.4, 0.4])


def test_a_fitted_vector_moves_by_signs_and_leaves_the_network_alone():
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cells, targets = batch(2)
    start = torch.zeros(TINY.hidden)
    vec = gm.fit_vector(model, cells, targets, start, steps=2, lr=0.01)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    moved = (vec - start).abs()
    assert moved.max() > 0 and moved.max() <= 2 * TINY.n_sup * 0.01 + 1e-6  # at most lr a coordinate an update


def test_predictions_are_mapped_back_and_voted(monkeypatch):
    """Three views; two see the same grid once mapped back by their inverse: it wins over the third's."""
    task = Task("t", (), (Pair(np.array([[1, 2]], dtype=np.uint8), np.array([[2, 1]], dtype=np.uint8)),))
    transpose = View(d8=4)
    answer = np.array([[2, 1]], dtype=np.uint8)
    canvases = [gm.encode_grid(answer, 4), gm.encode_grid(transpose.apply_grid(answer), 4),
                gm.encode_grid(np.array([[7]], dtype=np.uint8), 4)]
    monkeypatch.setattr(gm, "predict_cells", lambda *a, **k: (np.stack([as_logprobs(c) for c in canvases]),
                                                              np.array([0.1, 0.1, 0.9])))
    vec = torch.zeros(TINY.hidden)
    ((grid, first),) = gm.predict_task(tiny(), task, [(IDENTITY, vec), (transpose, vec), (IDENTITY, vec)])
    assert np.array_equal(grid, answer) and np.array_equal(first, canvases[0])
    assert gm.score(task, [(grid, first)], 4) == (1, 1, 1.0)
