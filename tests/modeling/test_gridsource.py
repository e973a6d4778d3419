"""The grid model as a candidate source: per view a task vector fitted on the demonstrations under that view, the
test input predicted under each view and mapped back by the view's exact inverse, one candidate per view with its
canvas's log-probability; the adaptation made once per task; the deadline kept; `full` adaptation trains a copy and
leaves the loaded model alone; the sources `inference.sources` names, built from the config; a grid model trained on
an LLM's features proposing with the run's LLM, and refused with another."""
import math
import os

import numpy as np
import pytest
import torch
from conftest import ticking, tiny_grid_model, tiny_llama
from transformers import AutoModelForCausalLM, AutoTokenizer

from arc_ttt.core import formats
from arc_ttt.core.clock import Deadline, FakeClock
from arc_ttt.core.config import ConfigError, GridSourceConfig, InferenceConfig, LoraSettings
from arc_ttt.core.errors import UserError
from arc_ttt.core.gridconfig import GridModelConfig
from arc_ttt.core.tasks import Pair, Task
from arc_ttt.core.views import IDENTITY, View
from arc_ttt.modeling import gridcondition as gc
from arc_ttt.modeling import gridmodel as gm
from arc_ttt.modeling import gridsource as gs
from arc_ttt.modeling import lora
from arc_ttt.modeling.decoding import PhaseTimes
from arc_ttt.modeling.sources import LLMSource, build_sources

CFG = InferenceConfig()  # the source reads its own settings; the prediction's config is passed through
TURN = View(d8=1, colors=(0, 3, 1, 2, 4, 5, 6, 7, 8, 9))  # a quarter turn and a colour permutation
VIEWS = [IDENTITY, TURN, View(d8=5, colors=(0, 2, 3, 1, 4, 5, 6, 7, 8, 9))]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: torch on one thread here


def task(seed=0, shape=(2, 3), n_test=1, task_id="t") -> Task:
    """Asymmetric grids in colours 0-3, so that a view changes what the model sees and a wrong inverse shows."""
    rng = np.random.default_rng(seed)

    def grid():
        return rng.integers(0, 4, shape).astype(np.uint8)

    return Task(task_id, tuple(Pair(grid(), grid()) for _ in range(3)), tuple(Pair(grid(), None) for _ in range(n_test)))


def propose(source, t, views=VIEWS, test_index=0, deadline=None):
    return source.propose(t, test_index, views, CFG, deadline or Deadline(), PhaseTimes())


def state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_each_view_answers_in_the_original_frame_by_its_exact_inverse(monkeypatch):
    """A model that copies its input canvas: under every view, the quarter turn and the transpose with colours
    permuted among them, the answer mapped back is the test input itself (a missing or wrong inverse would turn or
    recolour it). Its log-probability is the canvas's: 16 cells, each logit 2 against ten of 0 (fp32 log-softmax of
    values near 3, spacing 2.4e-7, summed over 16 cells: within 1e-5)."""
    def echo(net, cells, vectors, halt=False, amp=None, features=None):
        return 2.0 * torch.nn.functional.one_hot(cells, gm.CLASSES).float(), torch.zeros(len(cells))

    monkeypatch.setattr(gm, "final_logits", echo)
    t, times = task(), PhaseTimes()
    out = gs.GridSource(tiny_grid_model(canvas=4), GridSourceConfig(fit_steps=1)).propose(
        t, 0, VIEWS, CFG, Deadline(), times)
    assert [c.views for c in out] == [[v.key] for v in VIEWS]
    for c, view in zip(out, VIEWS):
        assert np.array_equal(c.grid, t.test[0].input) and c.grid.dtype == np.uint8
        assert view is IDENTITY or not np.array_equal(view.apply_grid(t.test[0].input), t.test[0].input)
        assert c.logprobs[0] == pytest.approx(16 * (2 - math.log(math.exp(2) + 10)), abs=1e-5)
    assert times == PhaseTimes()  # no prompts: predict_task counts the source's seconds as decoding


def test_a_candidate_is_the_views_prediction_with_the_vector_fitted_under_that_view():
    """The real tiny network: the turned view's candidate is its canvas, predicted with a vector fitted on the
    demonstrations under the turn (2 sign-SGD batches from the mean row, the same computation as fit_vector with
    steps=2: equal bit for bit), mapped back by the inverse; the network itself is never changed."""
    model = tiny_grid_model(canvas=4)
    before, t = state(model), task(shape=(4, 4))
    source = gs.GridSource(model, GridSourceConfig(fit_steps=2, fit_lr=0.05))
    (ident, turned) = propose(source, t, [IDENTITY, TURN])
    cells, targets = gs.demo_canvases(t, TURN, 4, "cpu")
    mean = model.task.weight.detach().mean(0)
    vec = gm.fit_vector(model, cells, targets, mean, 2, 0.05)
    assert torch.equal(source.adapted.vectors[TURN.key], vec) and not torch.equal(vec, mean)
    logits, _ = gm.final_logits(model, torch.tensor(gm.encode_grid(TURN.apply_grid(t.test[0].input), 4)[None]),
                                vec[None])
    logprobs = torch.log_softmax(logits[0], -1)
    assert np.array_equal(turned.grid, TURN.invert(gm.likeliest_grid(logprobs.numpy(), 4)[0]))
    # the log-probability of the canvas the grid makes under the turn: fp32 log-softmax of 16 cells summed in
    # another order, 1e-5 relative
    chosen = torch.tensor(gm.encode_grid(TURN.apply_grid(turned.grid), 4))
    expected = float(torch.log_softmax(logits[0].double(), -1).gather(-1, chosen[:, None]).sum())
    assert turned.logprobs[0] == pytest.approx(expected, rel=1e-5) and turned.logprobs[0] < 0
    assert ident.views == ["id"] and turned.views == [TURN.key]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_adaptation_is_made_once_per_task(monkeypatch):
    """Two test inputs of one task: the vectors are fitted for the first (3 views x 2 batches) and reused by the
    second; a task with other demonstrations (the same id) is adapted anew."""
    fits = []
    real = gm.fit_vector
    monkeypatch.setattr(gm, "fit_vector", lambda *a, **k: fits.append(1) or real(*a, **k))
    source = gs.GridSource(tiny_grid_model(canvas=4), GridSourceConfig(fit_steps=2))
    t = task(n_test=2)
    first, second = propose(source, t, test_index=0), propose(source, t, test_index=1)
    assert len(fits) == 6 and len(first) == len(second) == 3
    adapted = source.adapted
    assert propose(source, t, test_index=1)[0].grid.tobytes() == second[0].grid.tobytes()
    assert len(fits) == 6 and source.adapted is adapted
    propose(source, task(seed=1, n_test=1))
    assert len(fits) == 12 and source.adapted is not adapted


def test_the_deadline_is_checked_between_views_and_between_fitting_batches():
    """On a fake clock where each pass through the network's block costs a second: with time for 1.2 views, the
    first view's candidate comes back, the second's fit is cut after its first batch and its vector neither used nor
    kept; with time for 1.5, the second's fit ends past the deadline: kept, not used. A deadline already passed
    costs nothing."""
    t = task()
    model = tiny_grid_model(canvas=4)
    clock = FakeClock()
    with ticking(model.blocks[0], clock):
        propose(gs.GridSource(model, GridSourceConfig(fit_steps=2)), t)
        per_view = clock() / len(VIEWS)  # a view: 2 fitting batches and a prediction, the same work each
        for share, kept in ((1.2, [IDENTITY.key]), (1.5, [IDENTITY.key, TURN.key])):
            clock.now = 0.0
            source = gs.GridSource(model, GridSourceConfig(fit_steps=2))
            deadline = Deadline(clock, share * per_view)
            out = propose(source, t, deadline=deadline)
            assert [c.views for c in out] == [[IDENTITY.key]] and deadline.hit
            assert list(source.adapted.vectors) == kept
            assert clock() <= share * per_view + per_view / 3  # at most one fitting batch past it
        spent = clock()
        assert propose(source, t, deadline=Deadline(clock, 0.0)) == [] and clock() == spent


def test_full_adaptation_trains_a_copy_once_per_task_and_leaves_the_model_alone():
    """`full`: a copy of the network and one vector per view trained together (2 batches); the loaded model is
    unchanged, the copy's loss on the demonstrations under the views went down, and the next test input reuses it.
    Past the deadline nothing is trained."""
    model = tiny_grid_model(canvas=4, inside=False)
    before, t = state(model), task(n_test=2)
    source = gs.GridSource(model, GridSourceConfig(adapt="full", full_steps=2, full_lr=1e-2, fit_steps=1))
    propose(source, t)
    adapted = source.adapted
    assert adapted.net is not model and adapted.steps == 2 and list(adapted.vectors) == [v.key for v in VIEWS]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in adapted.net.state_dict().items() if not k.startswith("task."))

    def loss(net, vectors):
        per = [gs.demo_canvases(t, v, 4, "cpu") for v in VIEWS]
        cells, targets = torch.cat([p[0] for p in per]), torch.cat([p[1] for p in per])
        rows = torch.cat([torch.full((len(p[0]),), i) for i, p in enumerate(per)])
        return gm.deep_supervision(net, cells, targets, lambda: vectors[rows], lambda _: False)[0]["loss"]

    mean = model.task.weight.detach().mean(0).repeat(len(VIEWS), 1)
    assert loss(adapted.net, torch.stack([adapted.vectors[v.key] for v in VIEWS])) < loss(model, mean)
    propose(source, t, test_index=1)
    assert source.adapted is adapted and adapted.steps == 2
    late = gs.GridSource(model, source.settings)
    assert propose(late, t, deadline=Deadline(FakeClock(), 0.0)) == [] and late.adapted.steps == 0


def test_a_test_input_the_canvas_cannot_hold_gets_no_candidate():
    source = gs.GridSource(tiny_grid_model(canvas=2), GridSourceConfig(fit_steps=1))
    assert propose(source, task(shape=(2, 3))) == [] and source.adapted is None


def test_the_sources_the_config_names_are_built_in_its_order(tmp_path, tokenizer, grid_model_dir):
    """llm: the LLM's decoding; grid: the saved model loaded on the LLM's device; no folder, or one holding no grid
    model, is a ConfigError naming inference.grid.path."""
    llm = tiny_llama(tokenizer, hidden=32, layers=1)
    made = build_sources(InferenceConfig(sources=["grid", "llm"], grid=GridSourceConfig(path=grid_model_dir)), llm,
                         codec=None)
    assert [s.name for s in made] == ["grid", "llm"] and isinstance(made[1], LLMSource)
    assert isinstance(made[0], gs.GridSource) and made[0].model.cfg.canvas == 2
    assert [s.name for s in build_sources(InferenceConfig(), llm, codec=None)] == ["llm"]
    with pytest.raises(ConfigError, match=r"inference.grid.path: .*holds no grid model"):
        build_sources(InferenceConfig(sources=["grid"], grid=GridSourceConfig(path=str(tmp_path))), llm, codec=None)
    with pytest.raises(ConfigError, match=r"inference.grid.path: not set"):
        gs.GridSource.load(GridSourceConfig())


def test_the_committed_grid_model_is_what_the_local_config_names(monkeypatch):
    """configs/grid/local (a 500-step configs/grid-local.yaml run) loads as the local config's grid source, so
    `--set 'inference.sources=["llm","grid"]'` works from a fresh clone; its card says how little it trained."""
    import json
    import os

    from conftest import ROOT
    from arc_ttt.core.config import load_config

    monkeypatch.chdir(ROOT)
    settings = load_config("configs/local.yaml").inference.grid
    source = gs.GridSource.load(settings)
    card = json.load(open(os.path.join(settings.path, "grid.json"), encoding="utf-8"))
    assert source.name == "grid" and source.model.cfg.canvas == 30 and card["finished"] and card["steps"] == 500
    assert sum(os.path.getsize(os.path.join(settings.path, f)) for f in os.listdir(settings.path)) < 20 * 2 ** 20


@pytest.mark.parametrize("adapt", ["embedding", "full"])
def test_a_grid_model_on_an_llms_features_proposes_with_the_runs_llm(tmp_path, tokenizer, tiny_model_dir, adapt):
    """condition llm in a run, end to end: a grid model saved with the record of the LLM in tiny_model_dir is built
    by build_sources beside that LLM (its LoRA attached, as the engine does) and proposes, under inference mode as
    a run predicts, a candidate per view in the original frame. Each view's demonstrations (each left out of its
    own prompt) and test input are encoded once; the next test input adds its own prompts only, and a retried
    prediction finds them all in the cache. Another LLM is refused, naming both; the same weights built afresh
    (not from the folder) are the same LLM."""
    llm = lora.attach(AutoModelForCausalLM.from_pretrained(tiny_model_dir), LoraSettings(r=4))
    codec = formats.codec_for(formats.resolve("auto", tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir))
    torch.manual_seed(0)
    model = gm.GridModel(GridModelConfig(canvas=4, hidden=16, heads=2, layers=1, n=1, T=2, n_sup=2, prefix=2,
                                         mlp_multiple=16, condition="llm"), rows=3, llm_hidden=64)
    with torch.no_grad():  # conftest.tiny_grid_model's head: every canvas decodes to a 4x4 grid
        v = model.head.weight[1].clone()
        model.head.weight.zero_()
        model.head.weight[1], model.head.weight[2] = -v, v
    folder = str(tmp_path / "grid")
    gm.save_grid_model(model, folder, {}, gc.run_record(llm, codec))
    settings = GridSourceConfig(path=folder, fit_steps=2, adapt=adapt, full_steps=1)
    grid, _ = build_sources(InferenceConfig(sources=["grid", "llm"], grid=settings), llm, codec)
    assert grid.encoder.model is llm and grid.encoder.record["path"] == os.path.normpath(tiny_model_dir)
    t = task(shape=(4, 4), n_test=2)
    with torch.inference_mode():
        first = propose(grid, t)
        enc = grid.encoder
        assert [c.views for c in first] == [[v.key] for v in VIEWS] and all(c.grid.shape == (4, 4) for c in first)
        assert enc.misses == len(VIEWS) * (3 + 1) and enc.hits == 0
        assert len(propose(grid, t, test_index=1)) == len(VIEWS) and enc.misses == len(VIEWS) * 5
        again = propose(grid, t)
    assert enc.hits == len(VIEWS) and [c.grid.tobytes() for c in again] == [c.grid.tobytes() for c in first]
    assert all(math.isfinite(c.logprobs[0]) for c in first)
    with pytest.raises(UserError, match=f"trained on the features of LLM {os.path.normpath(tiny_model_dir)}.*"
                                        "this config's LLM is .* differ by"):
        build_sources(InferenceConfig(sources=["grid"], grid=settings), tiny_llama(tokenizer, seed=7), codec)
    build_sources(InferenceConfig(sources=["grid"], grid=settings), tiny_llama(tokenizer), codec)  # its very weights
