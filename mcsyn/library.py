"""The built-in, cited library: transmitters, transporters, receptors, enzymes, drugs and presets.

The data live in ``mcsyn/data/*.toml``; every number carries its unit (in the key name or as a
unit string) and every entry a ``source`` (tags as in ``REFERENCES.md``: [V]
read in the primary source, [V2] secondary, [V3] tertiary, [D] derived, [U] unverified or
assumed). Lookups are by name or alias, case-insensitive; an unknown name raises
:class:`UnknownNameError` listing the closest names. Where sources conflict, the entry holds the
default and the alternative is a *variant*, selected as ``"name@variant"`` (for example
``"venlafaxine@bymaster2001"`` or ``"dopamine@kaya2018"``).

Functions: :func:`transmitter`, :func:`transporter`, :func:`receptor`, :func:`enzyme`,
:func:`site_entry`, :func:`drug`, :func:`names`, :func:`raw`, :func:`audit`.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources

from .errors import ModelError
from .mechanisms import REGISTRY as _MECHANISM_REGISTRY
from .mechanisms import TABLE_FIELDS as _MECHANISM_TABLES
from .schemes import (KineticScheme, TransporterCycle, ampa_jonas1993, enzyme_site, one_site_receptor,
                      transporter_cycle)
from .units import DIMENSIONLESS_FIELDS, parse_field, parse_quantity, unit_for_field

KINDS = ("transmitters", "transporters", "receptors", "enzymes", "drugs", "presets")
_SINGULAR = {"transmitters": "transmitter", "transporters": "transporter", "receptors": "receptor",
             "enzymes": "enzyme", "drugs": "drug", "presets": "preset"}
AVOGADRO_PER_MOL = 6.02214076e23
SITES_PER_UM3_PER_PMOL_PER_G = 1e-12 * AVOGADRO_PER_MOL / 1e12   # 1 g of tissue = 1e12 um^3


class UnknownNameError(ModelError, KeyError):
    """A library name that does not exist; the message lists the closest names."""

    def __str__(self):  # KeyError would otherwise quote the message
        return ModelError.__str__(self)


def suggest(name: str, candidates, what: str, field_name: str | None = None, known=None):
    """Raise :class:`UnknownNameError` for ``name``, suggesting the closest ``candidates``
    (difflib); ``known`` (default: the candidates) is the list shown in full."""
    cands = sorted(set(candidates), key=str.lower)
    lower = {c.lower(): c for c in cands}
    close = difflib.get_close_matches(str(name).lower(), list(lower), n=3, cutoff=0.5)
    close = [lower[c] for c in close]
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    shown = sorted(set(known), key=str.lower) if known is not None else cands
    raise UnknownNameError(field_name or what, name,
                           f"unknown {what}; {hint}known: {', '.join(shown)}")


# ======================================================================================================
# raw data

@functools.lru_cache(maxsize=None)
def _load(kind: str) -> dict:
    text = resources.files("mcsyn").joinpath("data", f"{kind}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def raw(kind: str) -> dict:
    """The parsed TOML of one data file (``kind`` in :data:`KINDS`); a deep copy."""
    if kind not in KINDS:
        suggest(kind, KINDS, "library kind")
    import copy
    return copy.deepcopy(_load(kind))


def _index(kind: str) -> dict:
    """lower-case name or alias -> canonical name."""
    idx = {}
    for name, entry in _load(kind).items():
        idx[name.lower()] = name
        for alias in entry.get("aliases", []):
            idx.setdefault(alias.lower(), name)
    return idx


def names(kind: str) -> list[str]:
    """Canonical names of one library kind."""
    if kind not in KINDS:
        suggest(kind, KINDS, "library kind")
    return list(_load(kind))


def canonical(kind: str, name: str, field_name: str | None = None) -> str:
    """Canonical name (aliases and case resolved); variants (``@...``) are kept."""
    if not isinstance(name, str) or not name.strip():
        raise ModelError(field_name or _SINGULAR[kind], name, f"must be the name of a {_SINGULAR[kind]}")
    base, _, variant = name.strip().partition("@")
    idx = _index(kind)
    key = base.strip().lower()
    if key not in idx:
        allnames = list(_load(kind)) + [a for e in _load(kind).values() for a in e.get("aliases", [])]
        suggest(base, allnames, _SINGULAR[kind], field_name, known=list(_load(kind)))
    canon = idx[key]
    if variant:
        variants = _load(kind)[canon].get("variants", {})
        if variant not in variants:
            suggest(variant, list(variants) or ["(none)"], f"variant of {_SINGULAR[kind]} {canon!r}", field_name)
        return f"{canon}@{variant}"
    return canon


def _entry(kind: str, name: str, field_name: str | None = None):
    """(canonical name, variant, merged entry dict) for ``name`` (which may carry ``@variant``)."""
    canon = canonical(kind, name, field_name)
    base, _, variant = canon.partition("@")
    entry = dict(_load(kind)[base])
    variants = entry.pop("variants", {})
    if variant:
        v = dict(variants[variant])
        src = v.pop("source", "")
        for k, val in v.items():
            if isinstance(val, dict) and isinstance(entry.get(k), dict):
                entry[k] = {**entry[k], **val} if k not in ("ki",) else dict(val)
            else:
                entry[k] = val
        entry["source"] = f"variant {variant!r}: {src} | default entry: {entry.get('source', '')}"
    return base, variant, entry


def _num(entry: dict, key: str, field_prefix: str, default=None, allow_zero=True):
    if key not in entry:
        return default
    x = parse_field(f"{field_prefix}.{key}", entry[key])
    if not allow_zero and not x > 0:
        raise ModelError(f"{field_prefix}.{key}", entry[key], "must be > 0")
    return float(x)


# ======================================================================================================
# entries

@dataclass(frozen=True)
class Transmitter:
    """A transmitter: ``diffusion_um2_per_ms`` (free D), vesicle content and fraction released."""

    name: str
    diffusion_um2_per_ms: float
    molecules_per_vesicle: float
    fraction_released: float
    release_profile: str
    pore_tau_ms: float
    source: str
    variant: str = ""
    sources: dict = field(default_factory=dict, compare=False)

    @property
    def released_molecules(self) -> float:
        """Molecules released by one fusion: content x fraction released."""
        return self.molecules_per_vesicle * self.fraction_released


def transmitter(name: str, field_name: str | None = None) -> Transmitter:
    """Look up a transmitter (``"dopamine"``, ``"5-HT"``, ``"dopamine@kaya2018"``)."""
    base, variant, e = _entry("transmitters", name, field_name)
    p = f"transmitters.{base}"
    frac = _num(e, "fraction_released", p, 1.0)
    if not 0 < frac <= 1:
        raise ModelError(f"{p}.fraction_released", frac, "must be in (0, 1]")
    return Transmitter(base, _num(e, "diffusion_um2_per_ms", p, allow_zero=False),
                       _num(e, "molecules_per_vesicle", p, allow_zero=False), frac,
                       e.get("release_profile", "instantaneous"), _num(e, "pore_tau_ms", p, 0.0),
                       e.get("source", ""), variant, e.get("sources", {}))


@dataclass(frozen=True)
class Transporter:
    """A transporter cycle (see :func:`mcsyn.transporter_cycle`) with the bulk values it reproduces.

    ``km_M`` is the bulk Km the cycle reproduces; ``vmax_M_per_s`` maps regions to bulk Vmax (per
    litre of extracellular fluid)."""

    name: str
    transmitter: str
    kon_per_M_per_s: float
    koff_per_s: float
    translocation_per_s: float
    return_per_s: float
    vmax_M_per_s: dict
    density_per_um2: float | None
    density_per_um3: float | None
    source: str
    variant: str = ""
    sources: dict = field(default_factory=dict, compare=False)

    @property
    def cycle(self) -> TransporterCycle:
        """The cycle's rates and the bulk values they give (:class:`~mcsyn.schemes.TransporterCycle`)."""
        return TransporterCycle(self.kon_per_M_per_s, self.koff_per_s, self.translocation_per_s, self.return_per_s,
                                species=self.transmitter)

    @property
    def kcat_per_s(self) -> float:
        """Turnover k_cat = k_tr k_ret / (k_tr + k_ret)."""
        return self.cycle.kcat_per_s

    @property
    def km_M(self) -> float:
        """Km = (koff + k_tr)/kon · k_ret/(k_tr + k_ret)."""
        return self.cycle.km_M

    @property
    def uptake_probability(self) -> float:
        """Chance that a bound molecule is translocated rather than released: k_tr/(koff + k_tr)."""
        return self.cycle.uptake_probability

    def ecs_concentration_for_vmax(self, vmax_M_per_s: float) -> float:
        """Transporter concentration (M of extracellular fluid) giving bulk ``vmax``: Vmax/k_cat."""
        return self.cycle.ecs_concentration_for_vmax(vmax_M_per_s)

    def clearance_rate_per_s(self, transporter_M: float) -> float:
        """Low-concentration first-order clearance kon [T] k_tr/(koff + k_tr) = Vmax/Km."""
        return self.cycle.clearance_rate_per_s(transporter_M)

    def scheme(self, species: str | None = None, **rates) -> KineticScheme:
        """The kinetic scheme for ``species`` (default: its own transmitter); ``rates`` may override
        ``kon_per_M_per_s``, ``koff_per_s``, ``translocation_per_s``, ``return_per_s``."""
        r = {"kon_per_M_per_s": self.kon_per_M_per_s, "koff_per_s": self.koff_per_s,
             "translocation_per_s": self.translocation_per_s, "return_per_s": self.return_per_s}
        r.update(rates)
        return transporter_cycle(self.name, species or self.transmitter, r["kon_per_M_per_s"], r["koff_per_s"],
                                 r["translocation_per_s"], r["return_per_s"], source=self.source)


def transporter(name: str, field_name: str | None = None) -> Transporter:
    """Look up a transporter (``"DAT"``, ``"GLT-1"``, ...). ``koff`` is derived from ``km`` when
    the entry gives Km and no koff (``koff = Km kon (k_tr + k_ret)/k_ret - k_tr``)."""
    base, variant, e = _entry("transporters", name, field_name)
    p = f"transporters.{base}"
    kon = _num(e, "kon_per_M_per_s", p, allow_zero=False)
    ktr = _num(e, "translocation_per_s", p, allow_zero=False)
    kret = _num(e, "return_per_s", p, allow_zero=False)
    koff = _num(e, "koff_per_s", p)
    if "km" in e:
        km = parse_quantity(e["km"], "M", f"{p}.km")
        if not km > 0:
            raise ModelError(f"{p}.km", e["km"], "must be > 0")
        cycle = TransporterCycle(kon, 0.0, ktr, kret)
        derived = cycle.koff_for_km(km)
        if koff is None:
            if derived < 0:
                raise ModelError(f"{p}.km", e["km"], f"is below the smallest Km the cycle allows "
                                 f"({cycle.smallest_km_M:.3g} M with koff = 0)")
            koff = derived
        elif not math.isclose(koff, derived, rel_tol=1e-3, abs_tol=1e-9):
            raise ModelError(f"{p}.koff_per_s", koff, f"disagrees with km = {e['km']} (which needs {derived:.4g} /s)")
    if koff is None:
        raise ModelError(f"{p}.koff_per_s", None, "give koff_per_s or km")
    vmax = {region: parse_quantity(v, "M/s", f"{p}.vmax.{region}") for region, v in e.get("vmax", {}).items()}
    return Transporter(base, e["transmitter"], kon, koff, ktr, kret, vmax, _num(e, "density_per_um2", p),
                       _num(e, "density_per_um3", p), e.get("source", ""), variant, e.get("sources", {}))


@dataclass(frozen=True)
class Receptor:
    """A receptor: its scheme (built-in, one site, or explicit transitions) and density data.

    Ligand-gated channels (``ionotropic``) may carry ``conductance_pS`` ((open state, pS) pairs),
    ``reversal_potential_mV`` and the Jahr & Stevens Mg2+ block constants; see
    :mod:`mcsyn.electrophysiology`. G-protein-coupled receptors carry none of them."""

    name: str
    transmitter: str
    scheme_kind: str
    kon_per_M_per_s: float | None
    koff_per_s: float | None
    states: tuple
    open_states: tuple
    transitions: tuple
    density_per_um2: float | None
    count: int | None
    bmax_pmol_per_g: float | None
    autoreceptor: bool
    source: str
    variant: str = ""
    sources: dict = field(default_factory=dict, compare=False)
    ionotropic: bool = False
    conductance_pS: tuple = ()
    reversal_potential_mV: float | None = None
    mg_block_k0_mM: float | None = None
    mg_block_slope_per_mV: float | None = None

    @property
    def kd_M(self) -> float | None:
        """K_D = koff/kon for a one-site receptor (None for multi-state schemes)."""
        if self.scheme_kind == "one_site":
            return self.koff_per_s / self.kon_per_M_per_s
        return None

    def scheme(self, species: str | None = None, **rates) -> KineticScheme:
        """The kinetic scheme for ``species`` (default: its own transmitter); a one-site receptor
        takes ``kon_per_M_per_s`` and ``koff_per_s`` overrides. (Adaptation of the affinity is
        :func:`mcsyn.adaptation.apply_adaptation`.)"""
        sp = species or self.transmitter
        if self.scheme_kind == "ampa_jonas1993":
            base = ampa_jonas1993(sp)
        elif self.scheme_kind == "one_site":
            kon = rates.get("kon_per_M_per_s", self.kon_per_M_per_s)
            koff = rates.get("koff_per_s", self.koff_per_s)
            base = one_site_receptor(self.name, sp, kon, koff, source=self.source)
        else:
            base = KineticScheme(self.name, list(self.states), tuple(self.open_states), source=self.source)
            for t in self.transitions:
                getattr(base, t["kind"])(*((t["from"], t["to"], sp, t["rate"]) if t["kind"] in ("bind", "unbind", "efflux")
                                          else (t["from"], t["to"], t["rate"])))
        return base


def receptor(name: str, field_name: str | None = None) -> Receptor:
    """Look up a receptor (``"AMPA"``, ``"D2"``, ``"5-HT1A"``, ``"alpha2"``, ...)."""
    base, variant, e = _entry("receptors", name, field_name)
    p = f"receptors.{base}"
    kind = e.get("scheme")
    if kind not in ("ampa_jonas1993", "one_site", "transitions"):
        raise ModelError(f"{p}.scheme", kind, "must be 'ampa_jonas1993', 'one_site' or 'transitions'")
    transitions = []
    for i, t in enumerate(e.get("transitions", [])):
        key = "rate_per_M_per_s" if t.get("kind") == "bind" else "rate_per_s"
        if key not in t:
            raise ModelError(f"{p}.transitions[{i}]", t, f"a {t.get('kind')!r} transition needs {key}")
        transitions.append({"from": t["from"], "to": t["to"], "kind": t["kind"],
                            "rate": parse_field(f"{p}.transitions[{i}].{key}", t[key])})
    count = e.get("count")
    rec = Receptor(base, e["transmitter"], kind, _num(e, "kon_per_M_per_s", p), _num(e, "koff_per_s", p),
                   tuple(e.get("states", ())), tuple(e.get("open_states", ())), tuple(transitions),
                   _num(e, "density_per_um2", p), int(count) if count is not None else None,
                   _num(e, "bmax_pmol_per_g", p), bool(e.get("autoreceptor", False)), e.get("source", ""),
                   variant, e.get("sources", {}))
    return _with_channel(rec, e, p)


CHANNEL_KEYS = ("conductance_pS", "reversal_potential_mV", "mg_block_k0_mM", "mg_block_slope_per_mV")


def _with_channel(rec: Receptor, e: dict, p: str) -> Receptor:
    """``rec`` with the channel fields of entry ``e`` (conductance per open state, reversal, Mg2+ block)."""
    if not isinstance(e.get("ionotropic", False), bool):
        raise ModelError(f"{p}.ionotropic", e["ionotropic"], "must be true or false")
    if not e.get("ionotropic", False):
        for key in CHANNEL_KEYS:
            if key in e:
                raise ModelError(f"{p}.{key}", e[key], "only an ionotropic receptor (ionotropic = true) carries it")
        return rec
    open_states = rec.scheme().open_states
    g = e.get("conductance_pS")
    table = g if isinstance(g, dict) else ({} if g is None else {s: g for s in open_states})
    for state in table:
        if state not in open_states:
            raise ModelError(f"{p}.conductance_pS.{state}", table[state], f"must name an open state {list(open_states)}")
    conductance = tuple((s, parse_quantity(table[s], "pS", f"{p}.conductance_pS.{s}")) for s in open_states if s in table)
    for state, pS in conductance:
        if not pS > 0:
            raise ModelError(f"{p}.conductance_pS.{state}", pS, "must be > 0")
    reversal = parse_field(f"{p}.reversal_potential_mV", e["reversal_potential_mV"], allow_negative=True) \
        if "reversal_potential_mV" in e else None
    if reversal is not None and abs(reversal) > 200:
        raise ModelError(f"{p}.reversal_potential_mV", e["reversal_potential_mV"], "must be within +-200 mV")
    k0, slope = (_num(e, k, p, allow_zero=False) for k in ("mg_block_k0_mM", "mg_block_slope_per_mV"))
    if (k0 is None) != (slope is None):
        raise ModelError(f"{p}.mg_block_k0_mM", e.get("mg_block_k0_mM"), "give both Mg2+ block constants or neither")
    return dataclasses.replace(rec, ionotropic=True, conductance_pS=conductance, reversal_potential_mV=reversal,
                               mg_block_k0_mM=k0, mg_block_slope_per_mV=slope)


@dataclass(frozen=True)
class Enzyme:
    """A membrane enzyme (AChE) or a first-order sink (COMT, non-DAT removal)."""

    name: str
    kind: str
    transmitter: str
    kon_per_M_per_s: float | None
    koff_per_s: float | None
    kcat_per_s: float | None
    density_per_um2: float | None
    rate_per_s: float | None
    fraction_of_clearance: float | None
    source: str
    variant: str = ""
    sources: dict = field(default_factory=dict, compare=False)

    def scheme(self, species: str | None = None, **rates) -> KineticScheme:
        if self.kind != "membrane":
            raise ModelError(f"enzymes.{self.name}", self.kind, "a sink has no site scheme; use it as a degradation")
        r = {"kon_per_M_per_s": self.kon_per_M_per_s, "koff_per_s": self.koff_per_s, "kcat_per_s": self.kcat_per_s}
        r.update(rates)
        return enzyme_site(self.name, species or self.transmitter, r["kon_per_M_per_s"], r["koff_per_s"],
                           r["kcat_per_s"], source=self.source)


def enzyme(name: str, field_name: str | None = None) -> Enzyme:
    """Look up an enzyme or sink (``"AChE"``, ``"COMT"``, ``"non_DAT"``)."""
    base, variant, e = _entry("enzymes", name, field_name)
    p = f"enzymes.{base}"
    return Enzyme(base, e["kind"], e["transmitter"], _num(e, "kon_per_M_per_s", p), _num(e, "koff_per_s", p),
                  _num(e, "kcat_per_s", p), _num(e, "density_per_um2", p), _num(e, "rate_per_s", p),
                  _num(e, "fraction_of_clearance", p), e.get("source", ""), variant, e.get("sources", {}))


def site_kind(name: str, field_name: str | None = None) -> str:
    """``"transporters"``, ``"receptors"`` or ``"enzymes"`` for a site entry name."""
    if not isinstance(name, str) or not name.strip():
        raise ModelError(field_name or "entry", name, "must be the name of a transporter, receptor or enzyme")
    base = name.partition("@")[0].strip().lower()
    for kind in ("transporters", "receptors", "enzymes"):
        if base in _index(kind):
            return kind
    allnames, known = [], []
    for kind in ("transporters", "receptors", "enzymes"):
        known += list(_load(kind))
        allnames += list(_load(kind)) + [a for e in _load(kind).values() for a in e.get("aliases", [])]
    suggest(name, allnames, "transporter, receptor or enzyme", field_name, known=known)


def site_entry(name: str, field_name: str | None = None):
    """Look up a transporter, receptor or enzyme by name."""
    kind = site_kind(name, field_name)
    return {"transporters": transporter, "receptors": receptor, "enzymes": enzyme}[kind](name, field_name)


def scheme_entry(scheme_name: str):
    """``(kind, canonical name)`` of the library entry a scheme is named after (variants dropped),
    or ``(None, None)`` for a scheme that names no transporter, receptor or enzyme."""
    for kind in ("transporters", "receptors", "enzymes"):
        try:
            return kind, canonical(kind, scheme_name).partition("@")[0]
        except ModelError:
            continue
    return None, None


# ======================================================================================================
# drugs

# the mechanism table is mcsyn.mechanisms.REGISTRY: its names, the fields each one uses and requires
MECHANISMS = tuple(_MECHANISM_REGISTRY)
_MECHANISM_FIELDS = tuple(dict.fromkeys(f for m in _MECHANISM_REGISTRY.values() for f in m.fields))
DRUG_KEYS = ("class", "mechanism", "ki", "off_targets", "koff_per_s") + _MECHANISM_FIELDS + _MECHANISM_TABLES + (
    "source", "sources", "aliases", "variants", "clinical")     # clinical: read by "mcsyn drugs NAME"
_RATE_KEYS = ("koff_per_s",) + _MECHANISM_FIELDS      # optional numbers > 0, in the Drug fields of the same names


@dataclass(frozen=True)
class Drug:
    """A drug: class, mechanism, affinities and optional kinetics.

    ``ki_M`` maps transporter names (and ``"MAO"`` for MAO inhibitors; receptor names for the
    receptor ligands of :mod:`mcsyn.mechanisms`) to Ki in M; ``off_targets_M`` maps receptor
    names to Ki in M. ``koff_per_s`` (optional) gives binding kinetics with kon = koff/Ki.
    Substrates (releasers) add ``translocation_per_s`` (transport of the drug) and
    ``efflux_per_s`` (reverse transport of transmitter by inward-facing carriers); agonists add
    ``efficacy`` (receptor -> ε in [0, 1]).
    """

    name: str
    drug_class: str
    mechanism: str
    ki_M: dict
    off_targets_M: dict = field(default_factory=dict)
    koff_per_s: float | None = None
    translocation_per_s: float | None = None
    efflux_per_s: float | None = None
    vesicle_content_factor_max: float | None = None
    source: str = ""
    variant: str = ""
    efficacy: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name + (f"@{self.variant}" if self.variant else "")

    def targets(self) -> dict:
        """All targets (transporters, receptors, MAO) with their Ki in M."""
        return {**self.ki_M, **self.off_targets_M}

    def to_dict(self) -> dict:
        """The drug in the ``drugs.toml`` format (concentrations in M as numbers)."""
        d = {"class": self.drug_class, "mechanism": self.mechanism, "ki": dict(self.ki_M)}
        if self.off_targets_M:
            d["off_targets"] = dict(self.off_targets_M)
        for key in _RATE_KEYS:
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.efficacy:
            d["efficacy"] = dict(self.efficacy)
        if self.source:
            d["source"] = self.source
        return d

    @classmethod
    def from_dict(cls, name: str, d: dict, field_prefix: str | None = None, variant: str = "") -> "Drug":
        """Build and validate a drug from a dict in the ``drugs.toml`` format (custom drugs)."""
        p = field_prefix or f"drugs.{name}"
        for key in d:
            if key not in DRUG_KEYS:
                suggest(key, DRUG_KEYS, "drug field", f"{p}.{key}")
        mech = d.get("mechanism", "blocker")
        if mech not in MECHANISMS:
            suggest(mech, MECHANISMS, "drug mechanism", f"{p}.mechanism")
        mechanism = _MECHANISM_REGISTRY[mech]
        ki = {}
        for table, label in (("ki", "ki"), ("off_targets", "off_targets")):
            out = {}
            tab = d.get(table, {})
            if not isinstance(tab, dict):
                raise ModelError(f"{p}.{label}", tab, "must be a table of target = concentration")
            for target, value in tab.items():
                f = f"{p}.{label}.{target}"
                if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
                    raise ModelError(f, value, "Ki must be > 0")
                x = parse_quantity(value, "M", f)
                if not x > 0:
                    raise ModelError(f, value, "Ki must be > 0")
                if table == "ki" and target != "MAO":
                    target = canonical(mechanism.ki_kind, target, f)
                elif table == "off_targets":
                    target = canonical("receptors", target, f)
                out[target] = x
            ki[table] = out
        if not ki["ki"] and not ki["off_targets"]:
            raise ModelError(f"{p}.ki", d.get("ki"), "a drug needs at least one target with its Ki")
        mechanism.check_targets(ki["ki"], p, d.get("ki"))
        tables = mechanism.parse_tables(d, p, ki["ki"], lambda t, f: canonical(mechanism.ki_kind, t, f))

        def opt(key):
            if key not in d:
                return None
            x = parse_field(f"{p}.{key}", d[key])
            if not x > 0:
                raise ModelError(f"{p}.{key}", d[key], "must be > 0")
            return float(x)

        drug = cls(name, str(d.get("class", mech)), mech, ki["ki"], ki["off_targets"], source=str(d.get("source", "")),
                   variant=variant, **{key: opt(key) for key in _RATE_KEYS}, **tables)
        mechanism.check(drug, p, d)
        return drug


def drug(name: str, field_name: str | None = None) -> Drug:
    """Look up a drug (``"fluoxetine"``, ``"venlafaxine@bymaster2001"``, ...)."""
    base, variant, e = _entry("drugs", name, field_name)
    e.pop("aliases", None)
    return Drug.from_dict(base, e, f"drugs.{base}", variant)


# ======================================================================================================
# audit: every entry has a source and every number its unit

def _audit_value(path: str, key: str, value, problems: list):
    if isinstance(value, bool):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            sub_key = key if key in ("ki", "off_targets", "vmax", "conductance_pS", "efficacy") else k
            _audit_value(f"{path}.{k}", sub_key, v, problems)
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, dict):
                for k, vv in v.items():
                    _audit_value(f"{path}[{i}].{k}", k, vv, problems)
        return
    if isinstance(value, (int, float)):
        if unit_for_field(key) is None and key not in DIMENSIONLESS_FIELDS:
            problems.append(f"{path}: number {value!r} without a unit in its key name")
        return
    if isinstance(value, str) and key in ("ki", "off_targets", "vmax", "km"):
        unit = {"vmax": "M/s"}.get(key, "M")
        try:
            parse_quantity(value, unit, path)
        except ModelError as exc:
            problems.append(str(exc))


def audit() -> list[str]:
    """Check every data file: each entry has a non-empty ``source`` and every number a unit.

    Returns a list of problems (empty when the library is clean)."""
    problems = []
    for kind in KINDS:
        for name, entry in _load(kind).items():
            if not str(entry.get("source", "")).strip():
                problems.append(f"{kind}.{name}: no source")
            for variant, v in entry.get("variants", {}).items():
                if not str(v.get("source", "")).strip():
                    problems.append(f"{kind}.{name}.variants.{variant}: no source")
            for key, value in entry.items():
                if key in ("source", "sources", "aliases", "description"):
                    continue
                _audit_value(f"{kind}.{name}.{key}", key, value, problems)
    return problems
