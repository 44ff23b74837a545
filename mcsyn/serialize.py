"""Plain data: dataclasses, numpy values and paths as dicts, lists, numbers and strings, and TOML
documents of them (result configurations, metadata, model fingerprints)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .config import to_toml


def to_plain(obj, skip_defaults: bool = False):
    """Dataclasses, numpy values and tuples as plain dicts, lists, numbers and strings.

    ``skip_defaults`` leaves out dataclass fields that hold their default, so that a field added
    to a class later does not change the plain form of objects that do not use it."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {"type": type(obj).__name__}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if not (skip_defaults and _is_default(f, value)):
                out[f.name] = to_plain(value, skip_defaults)
        return out
    if isinstance(obj, dict):
        return {str(k): to_plain(v, skip_defaults) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v, skip_defaults) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _is_default(f: dataclasses.Field, value) -> bool:
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return False
    if value is default:
        return True
    if type(value) is not type(default) or isinstance(value, np.ndarray):
        return False
    try:
        return bool(value == default)
    except (TypeError, ValueError):        # values without a plain equality are never "default"
        return False


def _without_none(obj):
    # TOML has no null: leave such values out
    if isinstance(obj, dict):
        return {str(k): _without_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_without_none(v) for v in obj if v is not None]
    return obj


def dumps_toml(data: dict) -> str:
    """A TOML document for nested dicts and lists (``None`` values are left out; TOML has no null).

    Lists of dicts become arrays of tables."""
    return to_toml(_without_none(to_plain(data)))
