"""Pharmacokinetic parameters per drug, read from ``mcsyn/data/pharmacokinetics.toml``.

:func:`parameters` returns a :class:`DrugPK` for ``"name"`` or ``"name@variant"``. Values that no
source gives are absent (None); :meth:`DrugPK.require` turns a missing value into a
:class:`~mcsyn.ModelError` that names the field, so that a regimen refuses such a drug instead of
guessing. :func:`audit` checks the file the way :func:`mcsyn.library.audit` checks the library.
"""
from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources

from ..errors import ModelError

DATA_FILE = "pharmacokinetics.toml"
FRACTIONS = ("bioavailability", "free_fraction_plasma", "fraction_formed")
# a two-compartment disposition is given by all four (per kg of body mass) or by none
TWO_COMPARTMENT_FIELDS = ("central_volume_L_per_kg", "peripheral_volume_L_per_kg", "clearance_L_per_h_per_kg",
                          "intercompartmental_clearance_L_per_h_per_kg")
POSITIVE = ("molar_mass_g_per_mol", "dose_molar_mass_g_per_mol", "absorption_rate_per_h", "t_max_h",
            "volume_of_distribution_L_per_kg", "half_life_h", "brain_to_plasma_free_ratio") + TWO_COMPARTMENT_FIELDS
DRUG_FIELDS = ("molar_mass_g_per_mol", "dose_molar_mass_g_per_mol", "bioavailability", "absorption_rate_per_h",
               "t_max_h", "volume_of_distribution_L_per_kg", "half_life_h", "free_fraction_plasma",
               "brain_to_plasma_free_ratio") + TWO_COMPARTMENT_FIELDS
METABOLITE_FIELDS = ("molar_mass_g_per_mol", "fraction_formed", "volume_of_distribution_L_per_kg", "half_life_h",
                     "free_fraction_plasma", "brain_to_plasma_free_ratio")
_TEXT_KEYS = ("source", "sources", "variants", "metabolites")


@functools.lru_cache(maxsize=None)
def _load() -> dict:
    text = resources.files("mcsyn").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    return tomllib.loads(text)


def names() -> list[str]:
    """Drugs with a pharmacokinetics entry."""
    return list(_load())


def variants(name: str) -> list[str]:
    """The variant names of the pharmacokinetics entry ``name`` (empty for an unknown drug)."""
    lower = {k.lower(): k for k in _load()}
    base = lower.get(str(name).partition("@")[0].strip().lower())
    return list(_load()[base].get("variants", {})) if base else []


def _number(path: str, key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelError(f"{path}.{key}", value, "must be a finite number (the unit is in the key name)")
    x = float(value)
    if key in FRACTIONS and not 0 < x <= 1:
        raise ModelError(f"{path}.{key}", value, "must be a fraction in (0, 1]")
    if key in POSITIVE and not x > 0:
        raise ModelError(f"{path}.{key}", value, "must be > 0")
    return x


@dataclass(frozen=True)
class Metabolite:
    """An active metabolite formed from the parent's elimination (``fraction_formed`` of it)."""

    name: str
    molar_mass_g_per_mol: float
    fraction_formed: float
    volume_of_distribution_L_per_kg: float
    half_life_h: float
    free_fraction_plasma: float
    brain_to_plasma_free_ratio: float
    source: str = ""
    sources: dict = field(default_factory=dict, compare=False)

    @property
    def elimination_rate_per_h(self) -> float:
        return math.log(2.0) / self.half_life_h


@dataclass(frozen=True)
class DrugPK:
    """Pharmacokinetic parameters of one drug (None where no source gives a value)."""

    name: str
    variant: str
    molar_mass_g_per_mol: float
    dose_molar_mass_g_per_mol: float
    bioavailability: float | None = None
    absorption_rate_per_h: float | None = None
    t_max_h: float | None = None
    volume_of_distribution_L_per_kg: float | None = None
    half_life_h: float | None = None
    free_fraction_plasma: float | None = None
    brain_to_plasma_free_ratio: float | None = None
    central_volume_L_per_kg: float | None = None
    peripheral_volume_L_per_kg: float | None = None
    clearance_L_per_h_per_kg: float | None = None
    intercompartmental_clearance_L_per_h_per_kg: float | None = None
    metabolites: tuple = ()
    source: str = ""
    sources: dict = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return self.name + (f"@{self.variant}" if self.variant else "")

    def require(self, key: str, why: str) -> float:
        """The value of ``key``, or a ModelError naming ``pharmacokinetics.<drug>.<key>``."""
        value = getattr(self, key)
        if value is None:
            raise ModelError(f"pharmacokinetics.{self.label}.{key}", None,
                             f"no source gives this value for {self.label} (see mcsyn/data/{DATA_FILE}); "
                             f"it is needed for {why}. Choose another drug or variant, or give the value "
                             f"in a custom DrugPK")
        return value

    @property
    def elimination_rate_per_h(self) -> float:
        return math.log(2.0) / self.require("half_life_h", "elimination")

    @property
    def two_compartment(self) -> bool:
        """Whether the entry gives a two-compartment disposition (all of TWO_COMPARTMENT_FIELDS)."""
        return self.central_volume_L_per_kg is not None

    def absorption_rate(self) -> float:
        """Oral absorption rate (/h): given, or derived from ``t_max_h`` (the root ka > ke of
        t_max = ln(ka/ke)/(ka - ke))."""
        if self.absorption_rate_per_h is not None:
            return self.absorption_rate_per_h
        t_max = self.require("t_max_h", "oral absorption (give absorption_rate_per_h or t_max_h)")
        return absorption_rate_from_t_max(t_max, self.elimination_rate_per_h, f"pharmacokinetics.{self.label}.t_max_h")


def absorption_rate_from_t_max(t_max_h: float, elimination_rate_per_h: float, field_name: str = "t_max_h") -> float:
    """The absorption rate ka > ke whose Bateman curve peaks at ``t_max_h``.

    t_max(ka) = ln(ka/ke)/(ka - ke) falls from 1/ke (ka -> ke) to 0 (ka -> inf), so a root exists
    only for t_max < 1/ke."""
    from scipy.optimize import brentq   # scipy.optimize is slow to import; only oral regimens need it
    ke = elimination_rate_per_h
    if not 0 < t_max_h < 1.0 / ke:
        raise ModelError(field_name, t_max_h, f"must be in (0, 1/ke) = (0, {1.0 / ke:.4g} h) for a "
                                              f"first-order absorption with ke = {ke:.4g} /h")

    def excess(log_ratio):                       # ka = ke * exp(log_ratio), log_ratio > 0
        ka = ke * math.exp(log_ratio)
        return log_ratio / (ka - ke) - t_max_h

    hi = 1.0
    while excess(hi) > 0:
        hi *= 2.0
    return ke * math.exp(brentq(excess, 1e-12, hi, xtol=1e-14, rtol=1e-13))


def _entry(name: str, field_name: str) -> tuple[str, str, dict]:
    from ..library import suggest   # read-only use of the library's name suggestions
    if not isinstance(name, str) or not name.strip():
        raise ModelError(field_name, name, "must be the name of a drug with pharmacokinetic data")
    base, _, variant = name.strip().partition("@")
    lower = {k.lower(): k for k in _load()}
    if base.strip().lower() not in lower:
        suggest(base, list(_load()), "drug with pharmacokinetic data", field_name)
    base = lower[base.strip().lower()]
    entry = dict(_load()[base])
    variants = entry.pop("variants", {})
    if variant:
        if variant not in variants:
            suggest(variant, list(variants) or ["(none)"], f"pharmacokinetic variant of {base!r}", field_name)
        v = dict(variants[variant])
        entry["sources"] = {**entry.get("sources", {}), **v.pop("sources", {})}
        entry["source"] = f"variant {variant!r}: {v.pop('source', '')} | default entry: {entry.get('source', '')}"
        entry.update(v)
    return base, variant, entry


def _metabolite(parent: str, name: str, entry: dict) -> Metabolite:
    path = f"pharmacokinetics.{parent}.metabolites.{name}"
    missing = [k for k in METABOLITE_FIELDS if k not in entry]
    if missing:
        raise ModelError(f"{path}.{missing[0]}", None, "a metabolite needs " + ", ".join(METABOLITE_FIELDS))
    values = {k: _number(path, k, entry[k]) for k in METABOLITE_FIELDS}
    return Metabolite(name, **values, source=entry.get("source", ""), sources=entry.get("sources", {}))


@functools.lru_cache(maxsize=None)
def parameters(name: str, field_name: str = "pharmacokinetics") -> DrugPK:
    """The :class:`DrugPK` of ``name`` (``"paroxetine"``, ``"citalopram@label"``)."""
    base, variant, e = _entry(name, field_name)
    path = f"pharmacokinetics.{base}"
    for key in e:
        if key not in DRUG_FIELDS and key not in _TEXT_KEYS:
            raise ModelError(f"{path}.{key}", e[key], "unknown field; known: " + ", ".join(DRUG_FIELDS))
    values = {k: _number(path, k, e[k]) for k in DRUG_FIELDS if k in e}
    if "molar_mass_g_per_mol" not in values:
        raise ModelError(f"{path}.molar_mass_g_per_mol", None, "every entry needs the molar mass of the base")
    values.setdefault("dose_molar_mass_g_per_mol", values["molar_mass_g_per_mol"])
    given = [k for k in TWO_COMPARTMENT_FIELDS if k in values]
    if given and len(given) < len(TWO_COMPARTMENT_FIELDS):
        missing = next(k for k in TWO_COMPARTMENT_FIELDS if k not in values)
        raise ModelError(f"{path}.{missing}", None, f"a two-compartment disposition needs all of "
                                                   f"{', '.join(TWO_COMPARTMENT_FIELDS)} (given: {', '.join(given)})")
    metabolites = tuple(_metabolite(base, m, me) for m, me in e.get("metabolites", {}).items())
    return DrugPK(base, variant, **values, metabolites=metabolites, source=e.get("source", ""),
                  sources=e.get("sources", {}))


def _audit_table(path: str, table: dict, fields: tuple, problems: list):
    if not str(table.get("source", "")).strip():
        problems.append(f"{path}: no source")
    sources = table.get("sources", {})
    for key, value in table.items():
        if key in _TEXT_KEYS:
            continue
        if key not in fields:
            problems.append(f"{path}.{key}: unknown field (units belong in the key name)")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}.{key}: {value!r} is not a number")
        elif not str(sources.get(key, "")).strip():
            problems.append(f"{path}.{key}: no entry in {path}.sources")


def audit() -> list[str]:
    """Problems in the pharmacokinetics file (empty when clean): every table has a ``source``,
    every number a known key (with its unit in the name) and its own line in ``sources``, every
    drug a name of ``drugs.toml``, and every entry and variant loads."""
    from .. import library
    problems = []
    known = {n.lower() for n in library.names("drugs")}
    for name, entry in _load().items():
        if name.lower() not in known:
            problems.append(f"pharmacokinetics.{name}: not a drug of drugs.toml")
        _audit_table(f"pharmacokinetics.{name}", entry, DRUG_FIELDS, problems)
        for v, ve in entry.get("variants", {}).items():
            _audit_table(f"pharmacokinetics.{name}.variants.{v}", ve, DRUG_FIELDS, problems)
        for m, me in entry.get("metabolites", {}).items():
            _audit_table(f"pharmacokinetics.{name}.metabolites.{m}", me, METABOLITE_FIELDS, problems)
        for label in [name] + [f"{name}@{v}" for v in entry.get("variants", {})]:
            try:
                parameters(label)
            except ModelError as exc:
                problems.append(str(exc))
    return problems
