"""Config files: a YAML file and `section.key=value` overrides mapped onto typed dataclasses, every value checked.

The loader behind every config of the kit (`config.load_config`: the run, fine-tuning; `gridconfig`: the grid
model). A leaf like `config.py`: no torch, nothing of the package. An unknown key, a value of the wrong type or a
choice outside its `Literal` is a ConfigError that names the key and the file.
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A config file or override that cannot be read: the message names the file and the key."""


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
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(value, bool) and all(isinstance(c, str) for c in choices):
            return _coerce(value, str, where)  # the YAML off/on hint
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
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
    # null clears a field: None where the type admits it, else the field's default
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in values.items()
              if v is not None or type(None) in typing.get_args(hints[k])}  # null: None if Optional
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


def read_tree(path: str | os.PathLike | None = None, overrides: typing.Iterable[str] = ()) -> tuple[dict, str]:
    """(the mapping a YAML file (or nothing) and `section.key=value` overrides (values parsed as YAML) make, what
    its errors call it: the file or "config"); `build` turns it into a dataclass."""
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
    return tree, where

