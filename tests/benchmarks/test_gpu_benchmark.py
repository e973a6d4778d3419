"""benchmarks/speed/gpu.py: its CPU run on tiny models of the winners' architectures, and the L4 projection's arithmetic."""
import importlib.util
import json
import os
import sys

import pytest
from conftest import ROOT



@pytest.fixture(scope="module")
def gpu_bench():
    spec = importlib.util.spec_from_file_location("gpu_bench", os.path.join(ROOT, "benchmarks", "speed", "gpu.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_the_gpu_benchmark_runs_every_path_on_the_cpu_with_tiny_models(gpu_bench, tmp_path):
    """The same code a GPU runs (save, load incl. bitsandbytes 4-bit, LoRA, TTT steps, batched DFS, PoE, decoding)
    on tiny models of each shape, in bf16 and fp16. Timings are recorded, never asserted."""
    out = tmp_path / "gpu.json"
    assert gpu_bench.main(["--tiny", "--device", "cpu", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["tiny"] is True and set(result["shapes"]) == {"qwen3-4b", "llama-3.2-3b", "llama-3-8b-4bit"}
    for name, shape in result["shapes"].items():
        assert set(shape["runs"]) == {"bfloat16", "float16"}
        for dtype, run in shape["runs"].items():
            assert run["quantized_4bit"] is (name == "llama-3-8b-4bit"), (name, dtype)
            assert run["train_steps"] == 2 and run["loss_finite"] and run["train_tokens_per_step"] > 0
            assert run["seconds_per_step"] > 0 and run["decode_step_seconds"] > 0 and run["poe_pairs"] >= 2
            assert run["peak_gib"] > 0
            assert run["l4_projection"] is None  # no datasheet peak for a CPU: no projection is made


def test_l4_projection_scales_by_the_datasheet_peaks(gpu_bench):
    row = {"seconds_per_step": 0.5, "dfs_prefill_seconds": 0.8, "views": 16, "decode_rows": 8,
           "decode_step_seconds": 0.02, "poe_seconds": 1.6, "poe_pairs": 64, "peak_gib": 20.0}
    work = gpu_bench.Workload(steps=64, views=16, answer_tokens=110, score_views=16, candidates=4)
    p = gpu_bench.l4_projection(row, "NVIDIA H200", work)
    compute, bandwidth = 989.0 / 121.0, 4800.0 / 300.0
    expected = {"train": 64 * 0.5 * compute, "prefill": 0.8 * compute, "decode": 2 * 110 * 0.02 * bandwidth,
                "rescore": 1.6 / 64 * 4 * 16 * compute}
    assert p["seconds"] == {k: round(v, 1) for k, v in expected.items()}
    per_task = sum(expected.values())
    assert p["minutes_per_task"] == round(per_task / 60, 2) and p["fits_24gb"] is True
    assert p["240_tasks"] == {"hours_1xL4": round(240 * per_task / 3600, 2), "hours_4xL4": round(60 * per_task / 3600, 2)}
    assert gpu_bench.device_peaks("NVIDIA L40S") == gpu_bench.PEAKS["L40S"]  # not the L4's
    assert gpu_bench.l4_projection(dict(row, peak_gib=23.0), "NVIDIA L4", work)["fits_24gb"] is False
    assert gpu_bench.l4_projection(row, None, work) is None and gpu_bench.device_peaks("Tesla P100") is None
