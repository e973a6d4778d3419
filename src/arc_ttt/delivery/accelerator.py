"""The accelerator: the machine shapes Kaggle offers, and whether this torch can run on the GPU it got.

With no GPU, or one this torch has no kernels for (Kaggle's default P100 on today's builds), every task
falls back and scores zero: the commit run stops on it before a submission is spent; the scoring rerun
only warns.
"""
from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.errors import UserError
from .environment import Environment

# Accepted by kernel-metadata.json's `machine_shape` (the documented names; see kaggle_kernel/README.md). Some are
# limited to certain competitions; the kaggle CLI 2.2.5 marks NvidiaTeslaP100 retired (today's torch has no sm_60
# kernels).
MACHINE_SHAPES = ("NvidiaTeslaT4", "NvidiaTeslaT4Highmem", "NvidiaL4", "NvidiaL4X1", "NvidiaTeslaA100", "NvidiaH100",
                  "NvidiaRtxPro6000")
RETIRED_SHAPES = ("NvidiaTeslaP100",)
NO_GPU_REASONS = ("the account's phone number is not verified (Settings: without it no accelerator is granted)",
                  "the weekly GPU quota is used up (Settings shows the hours left)",
                  "machine_shape names an accelerator not offered to this account or competition")


class AcceleratorUnusable(RuntimeError):
    """The commit run has no GPU it can use: stop before spending a submission on fallback answers."""


def check_machine_shape(name: str | None) -> str | None:
    """The name itself when Kaggle documents it (None stays None: no accelerator requested)."""
    if name in RETIRED_SHAPES:
        raise UserError(f"machine_shape {name!r} is retired (kaggle CLI 2.2.5) and today's torch cannot use it; "
                        f"use one of {', '.join(MACHINE_SHAPES)}")
    if name is not None and name not in MACHINE_SHAPES:
        raise UserError(f"machine_shape {name!r} is not one Kaggle documents; use one of {', '.join(MACHINE_SHAPES)}")
    return name


def gpu_problem(capability: tuple[int, int] | None, arch_list: Sequence[str]) -> str | None:
    """Why torch cannot run on a GPU of this compute capability, or None when it can.

    Usable when torch ships SASS for the same major architecture at an equal or lower minor
    (sm_80 runs on an sm_86 card), or PTX (compute_XY) at or below the capability, which the driver
    compiles. Kaggle's P100 is (6, 0): today's CUDA 12.8 torch builds stop at sm_70 or later.
    """
    if capability is None:
        return "no CUDA GPU visible"
    major, minor = capability
    have = [a for a in arch_list if a.startswith(("sm_", "compute_"))]
    if not have:
        return f"this torch has no CUDA kernels at all (arch list {list(arch_list)})"

    def level(a: str) -> tuple[int, int]:
        digits = "".join(c for c in a.split("_", 1)[1] if c.isdigit())
        return int(digits[:-1] or 0), int(digits[-1])

    for a in have:
        m, n = level(a)
        if (a.startswith("sm_") and m == major and n <= minor) or (a.startswith("compute_") and (m, n) <= (major, minor)):
            return None
    return (f"the GPU's compute capability sm_{major}{minor} is not in this torch's arch list {list(have)} "
            f"(a P100 is sm_60: choose a T4, L4 or H100 with machine_shape)")


@dataclass(frozen=True)
class GpuInfo:
    count: int
    name: str | None
    capability: tuple[int, int] | None
    arch_list: tuple[str, ...]
    versions: dict

    def lines(self) -> list[str]:
        out = [f"GPUs visible: {self.count}" + (f" ({self.name}, compute capability {self.capability[0]}.{self.capability[1]})"
                                                 if self.name and self.capability else "")]
        out.append(f"torch CUDA arch list: {' '.join(self.arch_list) or '(none)'}")
        out.append("versions: " + ", ".join(f"{k} {v}" for k, v in self.versions.items()))
        return out


def gpu_info() -> GpuInfo:
    """What torch sees: device count, the first device's name and capability, the arch list, library versions."""
    import torch  # reason: delivery is torch-free at import; this runs in the notebook after the wheels are in

    versions = {"torch": torch.__version__, "cuda": torch.version.cuda}
    for name in ("transformers", "peft", "accelerate", "bitsandbytes"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    if not torch.cuda.is_available():
        return GpuInfo(0, None, None, tuple(torch.cuda.get_arch_list()), versions)
    return GpuInfo(torch.cuda.device_count(), torch.cuda.get_device_name(0),
                   tuple(torch.cuda.get_device_capability(0)), tuple(torch.cuda.get_arch_list()), versions)


def require_usable_gpu(environment: Environment, device: str, info: GpuInfo) -> str | None:
    """On the Kaggle commit run, raise when the configured device needs a GPU and none is usable.

    The scoring rerun only warns (returns the problem): its fallback submission.json still scores.
    A config that asks for the CPU (model.device=cpu) needs no GPU.
    """
    if device == "cpu":
        return None
    problem = gpu_problem(info.capability, info.arch_list)
    if problem and environment.commit_run:
        why = ""
        if info.capability is None:  # no GPU at all: Kaggle did not grant one, for reasons outside the notebook
            why = " Kaggle gave this session no GPU; the usual reasons: " + "; ".join(NO_GPU_REASONS) + "."
        raise AcceleratorUnusable(
            f"{problem}.{why} Every task would fall back and score zero: check the accelerator in the notebook's "
            f"settings, and machine_shape (arc-ttt kernel build --machine-shape, or kaggle.machine_shape in the config): "
            f"one of {', '.join(MACHINE_SHAPES)}. GPU: {info.name}, torch {info.versions.get('torch')}")
    return problem
