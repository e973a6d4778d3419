"""modeling.runtime: threads, the auto dtype by device, autocast and loss scaling; no GPU needed (capabilities are
simulated)."""
import os
import subprocess
import sys

import pytest
import torch

from arc_ttt.modeling import runtime


def test_thread_count_uses_the_usable_cpus_unless_omp_num_threads_is_set(monkeypatch):
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert runtime.thread_count({}) == 3  # the affinity mask, not the machine's core count
    assert runtime.thread_count({"OMP_NUM_THREADS": "1"}) == 1
    assert runtime.thread_count({"OMP_NUM_THREADS": "4,2"}) == 4  # a nesting list: the outer level
    assert runtime.thread_count({"OMP_NUM_THREADS": ""}) == 3  # empty or invalid: ignored
    assert runtime.thread_count({"OMP_NUM_THREADS": "0"}) == 3
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: set(), raising=False)
    assert runtime.thread_count({}) == 1


def test_configure_threads_sets_torch(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert runtime.configure_threads({"OMP_NUM_THREADS": "1"}) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_openmp_threads_wait_passively_unless_the_user_says_otherwise():
    code = "import os, arc_ttt; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"


@pytest.mark.parametrize("capability, dtype", [((6, 0), torch.float16), ((7, 5), torch.float16),
                                               ((8, 0), torch.bfloat16), ((8, 9), torch.bfloat16),
                                               ((9, 0), torch.bfloat16)],
                         ids=["P100", "T4", "A100", "L4", "H100"])
def test_auto_dtype_on_cuda_by_compute_capability(monkeypatch, capability, dtype):
    """bf16 only on real bf16 hardware (>= 8.0); a T4 reports is_bf16_supported() True by emulation: fp16."""
    assert runtime.cuda_compute_dtype(capability) == dtype
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert runtime.resolve_dtype("auto", torch.device("cuda")) == dtype
    assert runtime.resolve_dtype("float32", torch.device("cuda")) == torch.float32  # an explicit dtype is kept


CPU, CUDA = torch.device("cpu"), torch.device("cuda")
F16, BF16, F32 = torch.float16, torch.bfloat16, torch.float32


@pytest.mark.parametrize("autocast, weights, device, scale", [
    ("fp16", F32, CPU, True), ("fp16", F32, CUDA, True),
    ("off", F16, CUDA, True),  # colab.yaml's old float16 + autocast off: fp16 compute, so scale
    ("bf16", F16, CUDA, True),  # ops outside autocast still run in the fp16 weights
    ("off", F32, CUDA, False), ("bf16", BF16, CUDA, False), ("bf16", F32, CPU, False), ("off", BF16, CPU, False),
])
def test_needs_loss_scaling_whenever_fp16_computes(autocast, weights, device, scale):
    assert runtime.needs_loss_scaling(autocast, weights, device) is scale


@pytest.mark.parametrize("capability, scale", [((6, 0), True), ((7, 5), True), ((8, 0), False), ((8, 9), False)],
                         ids=["P100", "T4", "A100", "L4"])
def test_auto_autocast_follows_the_gpu(monkeypatch, capability, scale):
    """No GPU needed: the capability is simulated. A T4 claims bf16 support (emulated) and still gets fp16."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert runtime.autocast_dtype("auto", CUDA) == (F16 if scale else BF16)
    assert runtime.needs_loss_scaling("auto", F32, CUDA) is scale  # fp32 weights, fp16 autocast: scale
    assert runtime.needs_loss_scaling("auto", F16 if scale else BF16, CUDA) is scale  # what dtype auto loads


def test_auto_on_cpu_keeps_its_rule(monkeypatch):
    for bf16, want in [(True, BF16), (False, None)]:
        monkeypatch.setattr(runtime, "cpu_supports_bf16", lambda: bf16)
        assert runtime.autocast_dtype("auto", CPU) == want
        assert not runtime.needs_loss_scaling("auto", F32, CPU)
