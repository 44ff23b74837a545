"""The specification schema and the preset catalogue.

A *specification* is the dict form of a synapse in the configuration format of
:mod:`mcsyn.config`: sections ``transmitter``, ``geometry``, ``timing``, ``numerics``, ``release``,
``train``, ``sites.<label>``, ``degradation.<label>`` and ``autoreceptor`` (:data:`SECTIONS`,
:data:`SITE_KEYS`, :data:`DEGRADATION_KEYS`). Overrides are merged into it (:func:`merge`: nested
dicts, or dotted keys such as ``"geometry.cleft_radius_um"``). Unknown keys are errors that name
the key and list the closest valid ones (:func:`check_spec`). The built-in presets are
specifications in ``mcsyn/data/presets.toml`` (:func:`names`, :func:`spec`, :func:`describe`);
:mod:`mcsyn.build` turns a specification into a model.
"""
from __future__ import annotations

import copy
import dataclasses

from . import library
from .errors import ModelError
from .library import suggest
from .model import Geometry, Timing

# ======================================================================================================
# the specification schema

_GEOMETRY_KEYS = tuple(f.name for f in dataclasses.fields(Geometry))
_TIMING_KEYS = tuple(f.name for f in dataclasses.fields(Timing))
SECTIONS = {
    "transmitter": ("name", "diffusion_um2_per_ms", "molecules_per_vesicle", "fraction_released", "pore_tau_ms",
                    "ambient"),
    "geometry": _GEOMETRY_KEYS + ("cell",),     # cell: mcsyn.tissue.cell (resolved by the builder)
    "timing": _TIMING_KEYS,
    "numerics": ("tile_um", "voxel_um"),
    "release": ("enabled", "time_ms", "into", "position_um", "probability", "molecules", "quantal_cv",
                "molecule_distribution", "random_position_radius_um"),
    "train": ("enabled", "start_ms", "n_stimuli", "frequency_hz", "release_probability", "n_release_sites",
              "tau_recovery_ms", "tau_facilitation_ms"),
    "autoreceptor": ("receptor", "gain", "tau_ms", "occupancy_per_release", "closed_loop", "group",
                     "second_messenger_tau_ms", "delay_ms"),
    "clamp": ("holding_potential_mV", "external_mg_mM", "temperature_c", "reversal_potential_mV"),
}
SITE_KEYS = ("entry", "enabled", "location", "density_per_um2", "density_per_um3", "count", "vmax", "bmax_pmol_per_g",
             "arrangement", "n_clusters", "cluster_radius_um", "kon_per_M_per_s", "koff_per_s", "translocation_per_s",
             "return_per_s", "kcat_per_s", "km")
DENSITY_KEYS = ("density_per_um2", "density_per_um3", "count", "vmax", "bmax_pmol_per_g")
DEGRADATION_KEYS = ("entry", "enabled", "rate_per_s", "fraction_of_clearance", "region")
META_KEYS = ("name", "description", "source", "sources", "aliases")
TOP_KEYS = META_KEYS + tuple(SECTIONS) + ("sites", "degradation")
# value types of the keys (everything else is a number with the unit its name gives)
STRING_FIELDS = {"name", "outside", "cell", "band_outer_boundary", "domain_boundary", "into", "molecule_distribution",
                 "entry", "location", "arrangement", "region", "receptor", "description", "source", "group"}
BOOL_FIELDS = {"enabled", "volume_enters_cleft", "closed_loop"}
INT_FIELDS = {"count", "n_stimuli", "n_clusters", "n_release_sites"}
# [train] keys that give the train short-term plasticity (mcsyn.model.ShortTermPlasticity)
PLASTICITY_KEYS = ("n_release_sites", "tau_recovery_ms", "tau_facilitation_ms")


def _check_keys(d: dict, allowed, where: str):
    if not isinstance(d, dict):
        raise ModelError(where, d, "must be a table")
    for key in d:
        if key not in allowed:
            suggest(key, allowed, f"key in {where or 'the configuration'}", f"{where + '.' if where else ''}{key}")


# keys whose value is a table or a list, not a number or a string
_TABLE_FIELDS = {"sources", "reversal_potential_mV"}
_LIST_FIELDS = {"aliases", "position_um"}


def check_value_type(key: str, value, field: str):
    """Raise unless ``value`` has the type its key takes: a string, true/false, a whole number, a
    table, a list, or (every other key) a number or a string with units. Ranges are checked where
    the value is used (:mod:`mcsyn.build`, the model's ``validate``)."""
    if key in STRING_FIELDS:
        ok, what = isinstance(value, str), "a string"
    elif key in BOOL_FIELDS:
        ok, what = isinstance(value, bool), "true or false"
    elif key in INT_FIELDS:
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
        what = "a whole number"
    elif key in _TABLE_FIELDS:
        ok, what = isinstance(value, dict), "a table"
    elif key in _LIST_FIELDS:
        ok, what = isinstance(value, (list, tuple)), "a list"
    else:
        ok = isinstance(value, (int, float, str)) and not isinstance(value, bool)
        what = "a number or a string with units"
    if not ok:
        raise ModelError(field, value, f"must be {what}")


def _check_table(d: dict, allowed, where: str):
    _check_keys(d, allowed, where)
    for key, value in d.items():
        check_value_type(key, value, f"{where}.{key}" if where else key)


def _labelled_tables(spec: dict, name: str, pre: str) -> dict:
    tables = spec.get(name, {})
    if not isinstance(tables, dict):
        raise ModelError(f"{pre}{name}", tables, f"must be a table of [{name}.<label>] tables")
    return tables


def check_spec(spec: dict, where: str = ""):
    """Raise on unknown keys, and on values of the wrong type, anywhere in a specification (or in a
    set of overrides)."""
    pre = f"{where}." if where else ""
    _check_keys(spec, TOP_KEYS, where)
    for key in META_KEYS:
        if key in spec:
            check_value_type(key, spec[key], f"{pre}{key}")
    for sec, keys in SECTIONS.items():
        if sec in spec:
            _check_table(spec[sec], keys, f"{pre}{sec}")
    for label, site in _labelled_tables(spec, "sites", pre).items():
        _check_table(site, SITE_KEYS, f"{pre}sites.{label}")
    for label, deg in _labelled_tables(spec, "degradation", pre).items():
        _check_table(deg, DEGRADATION_KEYS, f"{pre}degradation.{label}")


def undot(overrides: dict) -> dict:
    """Turn dotted keys (``"geometry.cleft_radius_um"``) into nested dicts."""
    if not isinstance(overrides, dict):
        raise ModelError("overrides", overrides, "must be a table of key = value")
    out = {}
    for key, value in overrides.items():
        parts = key.split(".") if isinstance(key, str) else [key]
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ModelError(key, value, f"{p!r} is set both as a value and as a table")
        last = parts[-1]
        if isinstance(value, dict):
            value = undot(value)
            if isinstance(node.get(last), dict):
                _check_no_repeats(node[last], value, key)
                node[last] = _deep_merge(node[last], value)
                continue
        if last in node:
            raise ModelError(key, value, f"is given twice (also as {node[last]!r}); give each key once")
        node[last] = value
    return out


_undot = undot


def _check_no_repeats(first: dict, second: dict, where: str):
    """Raise when two spellings of the overrides (dotted and nested) set the same key."""
    for key, value in second.items():
        if key in first:
            if isinstance(value, dict) and isinstance(first[key], dict):
                _check_no_repeats(first[key], value, f"{where}.{key}")
            else:
                raise ModelError(f"{where}.{key}", value, f"is given twice (also as {first[key]!r}); give each key once")


def _deep_merge(base: dict, over: dict, path: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        here = f"{path}.{key}" if path else key
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            target = out[key]
            if here.startswith("sites.") and here.count(".") == 1 and any(k in value for k in DENSITY_KEYS):
                for k in DENSITY_KEYS:
                    target.pop(k, None)
            out[key] = _deep_merge(target, value, here)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge(spec: dict, overrides: dict | None) -> dict:
    """``spec`` with ``overrides`` merged in (checked for unknown keys). Setting any density key of
    a site (density_per_um2/um3, count, vmax, bmax_pmol_per_g) replaces the preset's density."""
    over = undot(overrides or {})
    check_spec(over)
    return _deep_merge(spec, over)


# ======================================================================================================
# presets

def _preset_table() -> dict:
    return library.raw("presets")


def names() -> list[str]:
    """Names of the built-in presets."""
    return library.names("presets")


def exists(name: str) -> bool:
    """Whether ``name`` is a preset or a preset alias (e.g. ``"dopaminergic"``)."""
    try:
        canonical_name(name)
    except ModelError:
        return False
    return True


def canonical_name(name: str) -> str:
    return library.canonical("presets", name, "preset")


def spec(name: str) -> dict:
    """The specification of a preset (a deep copy; aliases resolved)."""
    canon = canonical_name(name)
    s = _preset_table()[canon]
    s.pop("aliases", None)
    s.setdefault("name", canon)
    return s


def describe(name: str) -> str:
    """One paragraph: what the preset contains and where its numbers come from."""
    s = spec(name)
    return f"{s['name']}: {s.get('description', '')}\nSources: {s.get('source', '')}"


# ======================================================================================================
# writing the library values out

def materialise(specification: dict) -> dict:
    """A copy of a specification with the library values it uses written out (transmitter D and
    quantum, site rates, sink rates), so that it builds the same model without relying on the
    library's numbers. Multi-state receptor schemes (AMPA, NMDA, ...) stay referenced by name."""
    s = copy.deepcopy(specification)
    tsec = s.get("transmitter", {})
    if "name" in tsec:
        tr = library.transmitter(tsec["name"], "transmitter.name")
        for key in ("diffusion_um2_per_ms", "molecules_per_vesicle", "fraction_released", "pore_tau_ms"):
            tsec.setdefault(key, getattr(tr, key))
    for label, site in s.get("sites", {}).items():
        if "entry" not in site:
            continue
        entry = library.site_entry(site["entry"], f"sites.{label}.entry")
        kind = library.site_kind(site["entry"])
        if kind == "transporters":
            keys = ("kon_per_M_per_s", "translocation_per_s", "return_per_s") + (() if "km" in site else ("koff_per_s",))
        elif kind == "receptors":
            keys = ("kon_per_M_per_s", "koff_per_s") if entry.scheme_kind == "one_site" else ()
        else:
            keys = ("kon_per_M_per_s", "koff_per_s", "kcat_per_s") if entry.kind == "membrane" else ()
        for key in keys:
            site.setdefault(key, getattr(entry, key))
    for label, deg in s.get("degradation", {}).items():
        if "entry" in deg and "rate_per_s" not in deg and "fraction_of_clearance" not in deg:
            entry = library.enzyme(deg["entry"], f"degradation.{label}.entry")
            if entry.rate_per_s is not None:
                deg["rate_per_s"] = entry.rate_per_s
            elif entry.fraction_of_clearance is not None:
                deg["fraction_of_clearance"] = entry.fraction_of_clearance
    return s
