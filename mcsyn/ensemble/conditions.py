"""Conditions: the resolved models an ensemble runs, each with a name and the labels that become
table columns, and the grids of them (treatments × swept parameters) that :func:`make_conditions`
builds from a preset, a configuration, a model or a function."""
from __future__ import annotations

import copy
import hashlib
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import config, presets
from ..drug_schedule import is_schedule
from ..drugs import parse_concentration, parse_drug_option  # noqa: F401  (re-exported by the face)
from ..errors import ModelError
from ..model import SynapseModel
from ..units import format_concentration


@dataclass
class Condition:
    """One resolved model to run, with its name and the labels that become table columns.

    ``drugs`` maps drug names to concentrations in M; ``source`` says how the model was built
    (preset, overrides, parameter values) and is written to the result's configuration.
    """

    name: str
    model: SynapseModel
    labels: dict = field(default_factory=dict)
    drugs: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)


def condition_seed(seed: int, name: str) -> int:
    """The stream seed of the condition ``name`` in an ensemble seeded with ``seed`` (0 <= s < 2**63)."""
    digest = hashlib.sha256(f"mcsyn:{int(seed)}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _format_value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


# the name condition labels and figures have always used for the one concentration formatter
format_dose = format_concentration


def _given(value) -> bool:
    """Whether a treatment's value applies a drug: a positive concentration or a schedule."""
    return is_schedule(value) or value > 0


def _dose_M(value) -> float:
    """The concentration label of one drug: its concentration, NaN for a schedule (no one value)."""
    return float("nan") if is_schedule(value) else value


def treatment_name(drugs: dict) -> str:
    """``"control"`` for no drug, else ``"fluoxetine 25 nM"`` (several joined by ``" + "``); a drug
    given as a concentration schedule is named ``"cocaine (schedule)"``."""
    active = {d: c for d, c in drugs.items() if _given(c)}
    if not active:
        return "control"
    return " + ".join(f"{d} (schedule)" if is_schedule(c) else f"{d} {format_dose(c)}" for d, c in active.items())


def dose_series(drug: str, concentrations, control: bool = True) -> list:
    """Treatments for a dose–response sweep: ``[{}] + [{drug: c} for c in concentrations]``.

    Concentrations may be numbers (M) or strings (``"10 nM"``, ``"80%SERT"``); a 0 is the control."""
    doses = [parse_concentration(drug, c) for c in concentrations]
    out = [{}] if control and 0.0 not in doses else []
    out += [{drug: c} if c > 0 else {} for c in doses]
    return out


def log_doses(low_M: float, high_M: float, n: int) -> np.ndarray:
    """``n`` concentrations evenly spaced in log10 between ``low_M`` and ``high_M``."""
    if not (0 < low_M < high_M) or n < 2:
        raise ValueError(f"need 0 < low ({low_M}) < high ({high_M}) and n >= 2 (got {n})")
    return np.logspace(math.log10(low_M), math.log10(high_M), int(n))


_PATH_PART = re.compile(r"^([A-Za-z_]\w*)(?:\[([^\]]+)\])?$")


def set_parameter(model: SynapseModel, path: str, value):
    """Set a field of ``model`` in place by a dotted path: ``"geometry.cleft_height_um"``,
    ``"timing.duration_ms"``, ``"releases[0].molecules"``, ``"sites[SERT].density_per_um2"``
    (a site group by label or index). The value is checked when the model is compiled."""
    obj = model
    parts = path.split(".")
    for k, part in enumerate(parts):
        m = _PATH_PART.match(part)
        if not m:
            raise ModelError(path, value, f"{part!r} is not a field name or name[index]")
        attr, index = m.groups()
        last = k == len(parts) - 1 and index is None
        if not hasattr(obj, attr):
            fields = [f for f in vars(obj)] if hasattr(obj, "__dict__") else []
            raise ModelError(path, value, f"{type(obj).__name__} has no field {attr!r}; fields: {fields}")
        if last:
            setattr(obj, attr, value)
            return model
        obj = getattr(obj, attr)
        if index is not None:
            obj = _item(obj, index, attr, path, value)
            if k == len(parts) - 1:
                raise ModelError(path, value, "the path must end at a field, not at a list item")
    return model


def _item(seq, index: str, attr: str, path: str, value):
    """``seq[index]`` by position, or the item whose label (or name) is ``index``."""
    if index.lstrip("-").isdigit():
        return seq[int(index)]
    found = [x for x in seq if getattr(x, "label", getattr(x, "name", None)) == index]
    if not found:
        labels = [getattr(x, "label", getattr(x, "name", None)) for x in seq]
        raise ModelError(path, value, f"no item {index!r} in {attr}; items: {labels}")
    return found[0]


# ------------------------------------------------------------------------------------------ grids

def _load_base(base):
    """Resolve a preset name or a configuration path into something buildable."""
    if isinstance(base, (str, Path)):
        text = str(base)
        if isinstance(base, str) and text in presets.names():
            return ("preset", text)
        p = Path(text)
        if p.is_file():
            return ("config", config.load(p))
        raise ValueError(f"{text!r} is neither a preset ({', '.join(presets.names())}) nor a configuration file")
    if isinstance(base, SynapseModel):
        return ("model", base)
    if hasattr(base, "build") and callable(base.build):
        return ("config", base)
    if callable(base):
        return ("function", base)
    raise TypeError(f"cannot build conditions from a {type(base).__name__}: give a preset name, a configuration "
                    "(path or SynapseConfig), a SynapseModel or a function(drugs=..., **params) -> SynapseModel")


def _build_model(kind, obj, drugs, overrides, mode, adaptation):
    if kind == "preset":
        return presets.build(obj, drugs=drugs or None, mode=mode or "equilibrium", adaptation=adaptation,
                             **overrides)
    if kind == "config":
        cfg = copy.deepcopy(obj)
        cfg.drugs = {**cfg.drugs, **drugs}
        if overrides:
            cfg.overrides = presets.merge(cfg.overrides, overrides)
        if mode is not None:
            cfg.mode = mode
        if adaptation is not None:
            cfg.adaptation = adaptation
        return cfg.build()
    if kind == "model":
        if drugs:
            raise ValueError("drugs cannot be applied to a bare SynapseModel: give a preset name or a configuration")
        if overrides:
            raise ValueError(f"parameters {sorted(overrides)} need a dotted path into the model "
                             "(e.g. 'geometry.cleft_height_um')")
        return copy.deepcopy(obj)
    return obj(drugs=dict(drugs), **overrides)


def _base_drugs(kind, obj) -> dict:
    """Drugs a configuration already contains, in M, or as given when a schedule (they join every
    treatment; the drug layer parses a schedule against the run's duration)."""
    if kind != "config":
        return {}
    custom = getattr(obj, "custom_drugs", None)
    return {d: c if is_schedule(c) else parse_concentration(d, c, custom_drugs=custom)
            for d, c in (getattr(obj, "drugs", None) or {}).items()}


def make_conditions(base, treatments=None, params=None, *, mode: str | None = None, adaptation=None,
                    **overrides) -> list:
    """A grid of conditions: every treatment × every combination of parameter values.

    Parameters
    ----------
    base : str, path, SynapseConfig, SynapseModel or callable
        A preset name (``mcsyn.presets.names()``), a TOML configuration file or object, a model, or
        a function ``f(drugs=dict, **params) -> SynapseModel``.
    treatments : list of dict, optional
        Each a ``{drug: concentration}`` mapping (numbers in M, quantities like ``"25 nM"`` or
        occupancies like ``"80%SERT"``); ``{}`` is the control. Default: one drug-free condition.
        :func:`dose_series` builds a dose–response list.
    params : dict, optional
        ``{name: [values...]}`` swept as a full grid. For presets and configurations a name is an
        override of the specification (``"geometry.cleft_radius_um"``, ``"sites.SERT.vmax"``, values
        with units allowed); for models and functions a dotted name sets a model field after building
        (``"geometry.cleft_height_um"``; see :func:`set_parameter`) and a plain name is a keyword of
        the function. A name with an index (``"releases[0].molecules"``, ``"sites[SERT].count"``)
        always sets the built model's field.
    mode, adaptation, **overrides
        Drug mode (default: the configuration's, or ``"equilibrium"``), chronic adaptation and
        specification overrides for presets and configurations (:func:`mcsyn.presets.build`);
        ``overrides`` are keywords of a function base.

    Returns
    -------
    list of Condition
        Labels: ``drug`` (``"control"``, a drug name, or ``"a+b"``) and ``dose_M`` (0 for the control,
        NaN for combinations) when treatments are given, one ``<drug>_M`` column per drug when a
        treatment combines drugs, and one column per swept parameter.
    """
    kind, obj = _load_base(base)
    with_drug_labels = treatments is not None
    parsed = _parse_treatments([{}] if treatments is None else treatments, kind, obj)
    grid = _parameter_grid(params)
    combos = any(sum(_given(c) for c in t.values()) > 1 for t in parsed)
    all_drugs = list(dict.fromkeys(d for t in parsed for d in t))
    out = []
    for drugs in parsed:
        active = {d: c for d, c in drugs.items() if _given(c)}
        drug_labels = _drug_labels(active, all_drugs if combos else ()) if with_drug_labels else {}
        for pvals in grid:
            out.append(_condition(kind, obj, active, pvals, drug_labels, with_drug_labels,
                                  overrides, mode, adaptation))
    _check_unique([c.name for c in out])
    return out


def _parse_treatments(treatments, kind, obj) -> list:
    """Each treatment as ``{drug: concentration_M}``, the configuration's own drugs joined in."""
    treatments = [dict(t) for t in treatments]
    if not treatments:
        raise ValueError("treatments is empty: give at least one ({} is the control)")
    parsed = []
    for t in treatments:
        if not isinstance(t, dict):
            raise TypeError(f"a treatment must be a dict {{drug: concentration}}, got {t!r}")
        parsed.append({d: c if is_schedule(c) else parse_concentration(d, c) for d, c in t.items()})
    fixed = _base_drugs(kind, obj)
    return [{**fixed, **t} for t in parsed]


def _parameter_grid(params) -> list:
    """Every combination of the swept values, as ``{name: value}`` (one empty one without params)."""
    params = dict(params or {})
    for k, v in params.items():
        if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
            raise TypeError(f"params[{k!r}] must be a list of values, got {v!r}")
    if not params:
        return [{}]
    return [dict(zip(params, values)) for values in itertools.product(*[list(v) for v in params.values()])]


def _drug_labels(active: dict, all_drugs) -> dict:
    """``drug`` and ``dose_M`` of one treatment, and ``<drug>_M`` for each of ``all_drugs``."""
    labels = {"drug": "+".join(active) if active else "control",
              "dose_M": (_dose_M(next(iter(active.values()))) if len(active) == 1 else
                         0.0 if not active else float("nan"))}
    for d in all_drugs:
        labels[f"{d}_M"] = _dose_M(active.get(d, 0.0))
    return labels


def _condition(kind, obj, active, pvals, drug_labels, named_by_drug, overrides, mode, adaptation) -> Condition:
    """The condition of one treatment (``active`` drugs) and one point ``pvals`` of the grid."""
    on_model = {k: v for k, v in pvals.items() if _is_model_path(k, kind)}
    build_kw = dict(overrides)
    build_kw.update({k: v for k, v in pvals.items() if k not in on_model})
    model = _build_model(kind, obj, active, build_kw, mode, adaptation)
    for k, v in on_model.items():
        set_parameter(model, k, v)
    name = treatment_name(active) if (named_by_drug or not pvals) else ""
    if pvals:
        pstr = ", ".join(f"{k}={_format_value(v)}" for k, v in pvals.items())
        name = f"{name}, {pstr}" if name else pstr
    source = {"base": obj if kind == "preset" else kind, "mode": mode,
              "overrides": {k: v for k, v in build_kw.items()}, "parameters": pvals}
    if adaptation is not None:
        source["adaptation"] = adaptation
    return Condition(name=name, model=model, labels={**drug_labels, **pvals}, drugs=active, source=source)


def _is_model_path(name: str, kind: str) -> bool:
    """Whether a swept parameter sets a field of the built model (else it goes to the builder)."""
    return "[" in name or ("." in name and kind in ("model", "function"))


def _check_unique(names):
    seen = set()
    for n in names:
        if n in seen:
            raise ValueError(f"two conditions are named {n!r}; condition names must be unique")
        seen.add(n)


def as_conditions(conditions) -> list:
    """What :func:`~mcsyn.ensemble.run_ensemble` accepts as a list of conditions."""
    if isinstance(conditions, Condition):
        return [conditions]
    if isinstance(conditions, SynapseModel):
        return [Condition(name=conditions.name or "model", model=conditions)]
    if isinstance(conditions, (str, Path)):
        return make_conditions(conditions)
    conditions = list(conditions)
    if not conditions:
        raise ValueError("no conditions to run")
    out = []
    for i, c in enumerate(conditions):
        if isinstance(c, SynapseModel):
            c = Condition(name=c.name if c.name else f"model {i}", model=c)
        if not isinstance(c, Condition):
            raise TypeError(f"conditions[{i}] is a {type(c).__name__}, not a Condition or SynapseModel")
        out.append(c)
    _check_unique([c.name for c in out])
    return out
