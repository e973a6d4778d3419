"""The grid model's config: TRM's defaults, the shipped configs, the checks that name the key, the schedule."""
import math

import numpy as np

import pytest

from arc_ttt.core.config import ConfigError
from arc_ttt.core.gridconfig import (SAME_FEATURES, GridConfig, GridTrainConfig, describe_llm, llm_record,
                                    load_grid_config, probe_distance, same_llm)


def test_defaults_and_overrides():
    cfg = load_grid_config(None, ["model.hidden=64", "train.betas=[0.9, 0.99]", "data.holdout=2"])
    assert isinstance(cfg, GridConfig) and cfg.model.hidden == 64 and cfg.train.betas == (0.9, 0.99)
    assert (cfg.model.T, cfg.model.n_sup, cfg.model.layers, cfg.model.condition) == (3, 16, 2, "none")  # TRM's
    assert cfg.data.exclude == ["arc-agi-1:eval", "arc-agi-2:eval"] and cfg.data.holdout == 2  # finetune's corpus


@pytest.mark.parametrize("path", ["configs/grid-local.yaml", "configs/grid-l4.yaml"])
def test_the_shipped_configs_load_and_never_train_on_what_is_measured(path):
    cfg = load_grid_config(path)
    assert {"arc-agi-1:eval", "arc-agi-2:eval", "benchmarks/dev_tasks.json"} <= set(cfg.data.exclude)
    assert cfg.eval.dev == "benchmarks/dev_tasks.json" and cfg.model.canvas == 30


@pytest.mark.parametrize("override, key", [
    ("model.heads=3", "model"),  # 128 / 3: no whole head size
    ("model.hidden=24", "model"),  # head size 6: not a multiple of 4 for 2-D RoPE
    ("model.canvas=31", "model"),
    ("model.condition=llm", "model.condition: llm needs model.llm.path"),  # which LLM, said
    ("model.llm.max_len=0", "model.llm"),
    ("model.llm.dtype=int8", "model.llm.dtype"),
    ("model.prefix=40", "model"),
    ("train.autocast=fp16", "train.autocast"),
    ("train.nonsense=1", "train"),
])
def test_a_bad_value_is_refused_naming_its_section(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_grid_config(None, [override])


def test_at_least_one_view_per_task():
    with pytest.raises(ConfigError, match="views_per_task"):
        load_grid_config(None, ["train.views_per_task=0"])


def test_the_schedule_warms_up_then_holds_or_falls_to_its_floor():
    held = GridTrainConfig(steps=100, warmup_steps=10)
    assert [held.lr_factor(k) for k in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert held.lr_factor(10) == held.lr_factor(99) == 1.0  # TRM's lr_min_ratio 1: constant
    cosine = GridTrainConfig(steps=110, warmup_steps=10, lr_min_ratio=0.1)
    assert cosine.lr_factor(10) == 1.0 and cosine.lr_factor(60) == pytest.approx(0.55)
    assert cosine.lr_factor(110) == pytest.approx(0.1) and cosine.lr_factor(500) == pytest.approx(0.1)
    assert not math.isnan(GridTrainConfig(steps=5, warmup_steps=0).lr_factor(0))


def test_condition_llm_names_its_llm_and_the_record_compares_them():
    """model.llm: the LLM's folder, adapter and format (auto by default, resolved when it loads); two records name
    the same LLM when folder (as written or resolved), adapter, format and width agree."""
    cfg = load_grid_config("configs/grid-local.yaml", ["model.condition=llm", "model.llm.path=models/smollm2-135m",
                                                       "model.llm.adapter=configs/adapters/smollm2-135m-arc"])
    assert cfg.model.llm.path == "models/smollm2-135m" and cfg.model.llm.format == "auto"
    assert cfg.model.llm.max_len == 2048 and cfg.model.llm.cache_mb == 512
    a = llm_record("models/smollm2-135m/", "configs/adapters/smollm2-135m-arc", "kit", 576)
    assert a["path"] == "models/smollm2-135m" and same_llm(a, dict(a))
    assert not same_llm(a, {**a, "adapter": None}) and not same_llm(a, {**a, "format": "architects"})
    assert not same_llm(a, {**a, "path": "models/smollm2-135m-arc"}) and not same_llm(a, {**a, "hidden": 960})
    assert describe_llm(a) == "models/smollm2-135m + adapter configs/adapters/smollm2-135m-arc (format kit, hidden 576)"


def test_records_with_probes_are_compared_by_what_the_llm_computes():
    """With probes on both sides the folder does not decide (moved, merged, rebuilt): the probe does, within a
    dtype's rounding (SAME_FEATURES, relative L2); format and width must still agree."""
    probe = list(np.random.default_rng(0).standard_normal(40))
    a = llm_record("models/smollm2-135m", "configs/adapters/smollm2-135m-arc", "kit", 576, probe)
    near = [x * (1 + SAME_FEATURES / 2) for x in probe]  # relative distance SAME_FEATURES / 2
    far = [x * (1 + 2 * SAME_FEATURES) for x in probe]
    assert probe_distance(a, {**a, "probe": near}) == pytest.approx(SAME_FEATURES / 2)
    assert same_llm(a, llm_record("/kaggle/input/arc/model", None, "kit", 576, near))
    assert not same_llm(a, {**a, "probe": far})  # the same folder and adapter, other weights: another LLM
    assert not same_llm(a, {**a, "probe": probe[:32]}) and probe_distance(a, {**a, "probe": probe[:32]}) == math.inf
    assert not same_llm(a, {**a, "format": "architects"}) and not same_llm(a, {**a, "hidden": 960})
    old = llm_record("models/smollm2-135m", "configs/adapters/smollm2-135m-arc", "kit", 576)  # a card before probes
    assert same_llm(a, old) and not same_llm({**a, "path": "models/other"}, old)
