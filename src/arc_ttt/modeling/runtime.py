"""Where and in what precision the model runs: the device, the weight dtype, torch's threads, autocast and loss
scaling. Loading, training and decoding all ask here, so that "auto" means the same thing everywhere."""
from __future__ import annotations

import contextlib
import logging
import os

import torch


def cpu_supports_bf16() -> bool:
    """bf16 matmuls are fast on CPUs with AVX512-BF16 or AMX; elsewhere they are emulated and slow."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cuda_compute_dtype(capability: tuple[int, int]) -> torch.dtype:
    """bf16 only with native bf16 tensor cores (compute capability >= 8.0: A100, L4, H100). A T4 (7.5) reports
    torch.cuda.is_bf16_supported() True but emulates bf16 slowly; it and the P100 (6.0) get fp16 instead."""
    return torch.bfloat16 if tuple(capability) >= (8, 0) else torch.float16


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """The weight dtype. "auto" on a pre-Ampere GPU is fp16 weights (not fp32 + fp16 autocast): the frozen base
    then takes half the memory, which a 4B model on a 16 GB T4 needs, while peft keeps the trainable adapters in
    fp32 (the master weights) and ttt.train turns loss scaling on."""
    if dtype == "auto":
        if device.type == "cuda":
            return cuda_compute_dtype(torch.cuda.get_device_capability(device))
        return torch.bfloat16 if cpu_supports_bf16() else torch.float32
    try:
        return {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16,
                "fp16": torch.float16, "float32": torch.float32, "fp32": torch.float32}[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}: choose auto, bfloat16, float16 or float32") from None


def thread_count(env=os.environ) -> int:
    """Torch's intra-op threads: OMP_NUM_THREADS when it is set, else the CPUs this process may run on.

    Never more threads than usable cores: OpenMP threads spin at every barrier, and one that shares
    a core with another process turns a sub-second TTT step into tens of seconds.
    """
    omp = env.get("OMP_NUM_THREADS", "").split(",")[0].strip()  # "4,2" is a nesting list: take the outer level
    if omp.isdigit() and int(omp) > 0:
        return int(omp)
    try:
        return max(1, len(os.sched_getaffinity(0)))  # taskset / cgroup cpusets, not the machine's core count
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configure_threads(env=os.environ) -> int:
    """Set torch's intra-op thread count by `thread_count`; returns it. Call before any torch work."""
    n = thread_count(env)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    logging.getLogger(__name__).info("torch threads: %d (OMP_NUM_THREADS=%s)", n, env.get("OMP_NUM_THREADS", "unset"))
    return n


def autocast_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The dtype autocast computes in, or None for no autocast. "auto" follows resolve_dtype("auto")."""
    if mode == "off":
        return None
    if mode == "auto":
        dtype = resolve_dtype("auto", device)
        return None if dtype == torch.float32 else dtype
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def autocast_context(mode: str, device: torch.device):
    """Half-precision autocast in the dtype of `autocast_dtype`; a no-op context without one."""
    dtype = autocast_dtype(mode, device)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)


def weight_dtype(model) -> torch.dtype:
    """The dtype of the frozen base weights (peft keeps the adapters in fp32 over an fp16 or bf16 base)."""
    for p in model.parameters():
        if not p.requires_grad and p.is_floating_point():
            return p.dtype
    return next(model.parameters()).dtype


def needs_loss_scaling(autocast_mode: str, model_dtype: torch.dtype, device: torch.device) -> bool:
    """fp16 gradients underflow without loss scaling, whether fp16 comes from autocast or from fp16 weights
    (e.g. dtype float16 with autocast off); bf16 and fp32 have fp32's exponent range and need none."""
    return torch.float16 in (autocast_dtype(autocast_mode, device), model_dtype)
