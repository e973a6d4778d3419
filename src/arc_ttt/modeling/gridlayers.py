"""The grid network's two primitives, TRM's: RMSNorm without a weight (in fp32) and LeCun's truncated normal
initialisation. One copy for the recursive network (gridmodel) and its LLM conditioning (gridcondition)."""
from __future__ import annotations

import math

import torch
from torch import nn


def rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def truncated_(weight: torch.Tensor, std: float) -> torch.Tensor:
    return nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def lecun(layer: nn.Linear) -> nn.Linear:
    """Truncated normal of std 1/sqrt(fan in): TRM's initialisation of every linear layer (models/layers.py)."""
    truncated_(layer.weight, 1.0 / math.sqrt(layer.in_features))
    return layer
