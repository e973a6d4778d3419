"""The Kaggle configs against the limits they are written for (KAGGLE.md): budgets, accelerators, memory settings."""
import glob
import os

import pytest

from arc_ttt.core.config import load_config
from arc_ttt.delivery import accelerator
from conftest import ROOT

KAGGLE_CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "kaggle*.yaml")))
TWELVE_HOURS = 12 * 3600


def test_every_kaggle_config_loads_with_a_documented_accelerator():
    assert len(KAGGLE_CONFIGS) >= 8
    for path in KAGGLE_CONFIGS:
        cfg = load_config(path)
        assert accelerator.check_machine_shape(cfg.kaggle.machine_shape) is not None, path
        assert cfg.output.dir == "/kaggle/working" and cfg.kaggle.commit_run == "quick", path


@pytest.mark.parametrize("name", ["kaggle-4xL4-12h", "kaggle-nvarc-4xL4-12h", "kaggle-architects-4xL4-12h",
                                  "kaggle-marc-4xL4-12h"])
def test_twelve_hour_configs_leave_30_minutes_and_cap_a_task_at_1200_s(name):
    cfg = load_config(os.path.join(ROOT, "configs", f"{name}.yaml"))
    assert TWELVE_HOURS - cfg.budget.seconds >= 1800  # the run's clock starts after kernel start, pip and imports
    assert cfg.budget.max_task_seconds == 1200 and cfg.kaggle.machine_shape == "NvidiaL4"  # 4x L4


def test_each_winner_runs_in_its_own_format_in_both_budgets():
    for winner in ("nvarc", "architects", "marc"):
        for suffix in ("", "-4xL4-12h"):
            assert load_config(os.path.join(ROOT, "configs", f"kaggle-{winner}{suffix}.yaml")).model.format == winner


@pytest.mark.parametrize("suffix", ["", "-4xL4-12h"])
def test_nvarc_permutes_all_ten_colours_with_bf16_r256_adapters(suffix):
    cfg = load_config(os.path.join(ROOT, "configs", f"kaggle-nvarc{suffix}.yaml"))
    assert cfg.views.keep_background is False and cfg.lora.r == 256 and cfg.lora.dtype == "bfloat16"


def test_long_sequences_train_with_gradient_checkpointing():
    """At 8192 tokens on a 16-24 GB GPU a long task would otherwise run out of memory and retry with a shorter
    context (the engine's OOM retry): every config that trains past 4096 tokens checkpoints."""
    for path in KAGGLE_CONFIGS:
        cfg = load_config(path)
        if cfg.ttt.max_len > 4096:
            assert cfg.ttt.grad_checkpointing, path
