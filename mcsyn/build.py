"""Specification → :class:`~mcsyn.SynapseModel`: the builder behind presets and configurations.

Build order: specification (:mod:`mcsyn.spec`) → model (transmitter, geometry, sites, releases,
sinks) → chronic adaptation (:func:`mcsyn.adaptation.apply_adaptation`) → drugs
(:func:`mcsyn.drugs.apply_drugs`) → autoreceptor feedback
(:func:`mcsyn.autoreceptor.apply_autoreceptor`) → ``model.validate()``. All errors are raised
here, before any simulation. The returned model carries ``model.pharmacology`` (a
:class:`~mcsyn.drugs.PharmacologyReport`) and ``model.config`` (the resolved
:class:`~mcsyn.config.SynapseConfig` it was built from, when it was built from one).

Calibration of volume transporters
----------------------------------
In the volume presets a transporter is specified by a bulk Vmax (per litre of extracellular
fluid). With the library cycle's k_cat = k_tr k_ret/(k_tr + k_ret), the transporter concentration in
the extracellular fluid is [T] = Vmax/k_cat, and the density per µm³ of *tissue* is
[T]·N_A·10⁻¹⁵·α. The kernel's volume binding hazard is kon/(N_A·α·V) per site, so the
low-concentration clearance rate is kon·[T]·k_tr/(koff + k_tr) = Vmax/Km of the source (koff is
derived from Km in the library). Dorsal striatum: Vmax = 4.0 µM/s, k_cat = 1.333 s⁻¹ →
[T] = 3.0 µM → 379 per µm³ (α = 0.21) → clearance 20.0 s⁻¹ = 4.0/0.2. Receptors in the volume are
given by Bmax in pmol/g (× 0.6022 per µm³ of tissue).
"""
from __future__ import annotations

import dataclasses

from . import library
from .adaptation import Adaptation, apply_adaptation
from .autoreceptor import apply_autoreceptor, unblocked_clearance_fraction
from .drugs import MODES, apply_drugs
from .electrophysiology import VoltageClamp
from .errors import ModelError, require_count, require_fraction, require_nonnegative
from .library import AVOGADRO_PER_MOL, SITES_PER_UM3_PER_PMOL_PER_G, suggest
from .model import (ClosedLoopFeedback, Degradation, Geometry, Release, ShortTermPlasticity, SiteGroup, Species,
                    StimulusTrain, SynapseModel, Timing)
from .schemes import TransporterCycle, transporter_cycle_rates
from .spec import BOOL_FIELDS, DENSITY_KEYS, INT_FIELDS, PLASTICITY_KEYS, STRING_FIELDS, check_spec
from .units import parse_field, parse_quantity

_RATE_KEYS = ("kon_per_M_per_s", "koff_per_s", "translocation_per_s", "return_per_s", "kcat_per_s")


# ======================================================================================================
# values

def _value(section: str, key: str, value):
    f = f"{section}.{key}" if section else key
    if key in STRING_FIELDS:
        if not isinstance(value, str):
            raise ModelError(f, value, "must be a string")
        return value
    if key in BOOL_FIELDS:
        if not isinstance(value, bool):
            raise ModelError(f, value, "must be true or false")
        return value
    if key in INT_FIELDS:
        if isinstance(value, float) and value.is_integer():
            value = int(value)          # 1e3 from the command line is the whole number 1000
        return require_count(f, value)
    if key == "position_um":
        if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
            raise ModelError(f, value, "must be a list of 2 (cleft) or 3 (volume) coordinates in um")
        return tuple(parse_quantity(v, "um", f"{f}[{i}]", allow_negative=True) for i, v in enumerate(value))
    if key == "vmax":
        x = parse_quantity(value, "M/s", f)
    elif key in ("ambient", "km"):
        x = parse_quantity(value, "M", f)
    else:
        x = parse_field(f, value)
    return x


def _section(s: dict, name: str) -> dict:
    return {k: _value(name, k, v) for k, v in s.get(name, {}).items()}


def _clamp(s: dict) -> VoltageClamp | None:
    """The ``[clamp]`` section as a VoltageClamp (it parses its own signed quantities), or None."""
    if "clamp" not in s:
        return None
    section = s["clamp"]
    if not isinstance(section, dict):
        raise ModelError("clamp", section, "must be a table (holding_potential_mV, external_mg_mM, ...)")
    return VoltageClamp(**section)


# ======================================================================================================
# site groups

def _transporter_scheme(where: str, site: dict, v: dict, entry, rates: dict, species: str):
    """(entry with the rate overrides, scheme) of a transporter group; ``km`` sets koff."""
    if "kcat_per_s" in rates:
        raise ModelError(f"{where}.kcat_per_s", rates["kcat_per_s"],
                         "transporters take translocation_per_s and return_per_s")
    for key in ("translocation_per_s", "return_per_s"):      # k_cat = k_tr k_ret/(k_tr + k_ret) must be > 0
        if key in rates and not rates[key] > 0:
            raise ModelError(f"{where}.{key}", site[key], "a transporter's cycle rates must be > 0")
    if "km" in v:
        if "koff_per_s" in rates:
            raise ModelError(f"{where}.km", site["km"], "give km or koff_per_s, not both")
        cycle = TransporterCycle(rates.get("kon_per_M_per_s", entry.kon_per_M_per_s), 0.0,
                                 rates.get("translocation_per_s", entry.translocation_per_s),
                                 rates.get("return_per_s", entry.return_per_s))
        koff = cycle.koff_for_km(v["km"])
        if koff < 0:
            raise ModelError(f"{where}.km", site["km"], "is below the smallest Km the cycle's rates allow")
        rates["koff_per_s"] = koff
    entry = dataclasses.replace(entry, **rates)
    return entry, entry.scheme(species)


def _site_scheme(where: str, site: dict, v: dict, entry, kind: str, species: str):
    """(library entry as used, kinetic scheme) of a site group, with its rate overrides checked."""
    rates = {k: v[k] for k in _RATE_KEYS if k in v}
    if kind == "transporters":
        return _transporter_scheme(where, site, v, entry, rates, species)
    if kind == "receptors":
        if "km" in v:
            raise ModelError(f"{where}.km", site["km"], "km applies to transporters only")
        bad = [k for k in rates if k not in ("kon_per_M_per_s", "koff_per_s")]
        if bad or (rates and entry.scheme_kind != "one_site"):
            raise ModelError(f"{where}.{(bad or list(rates))[0]}", site.get((bad or list(rates))[0]),
                             "rate overrides apply to one-site receptors (kon_per_M_per_s, koff_per_s)")
        return entry, entry.scheme(species, **rates)
    if entry.kind != "membrane":
        raise ModelError(f"{where}.entry", v["entry"], f"{entry.name} is a first-order sink; list it under degradation")
    bad = [k for k in rates if k not in ("kon_per_M_per_s", "koff_per_s", "kcat_per_s")]
    if bad:
        raise ModelError(f"{where}.{bad[0]}", site[bad[0]], "enzymes take kon_per_M_per_s, koff_per_s, kcat_per_s")
    return entry, entry.scheme(species, **rates)


def _default_density(where: str, label: str, entry, location: str) -> dict:
    dens = {}
    if location == "volume":
        if getattr(entry, "density_per_um3", None):
            dens["density_per_um3"] = entry.density_per_um3
        elif getattr(entry, "bmax_pmol_per_g", None):
            dens["density_per_um3"] = entry.bmax_pmol_per_g * SITES_PER_UM3_PER_PMOL_PER_G
    elif getattr(entry, "count", None) is not None:
        dens["count"] = entry.count
    elif getattr(entry, "density_per_um2", None):
        dens["density_per_um2"] = entry.density_per_um2
    if not dens:
        raise ModelError(where, label, f"{entry.name} has no default density for location {location!r}; "
                         f"give density_per_um2, density_per_um3, count, vmax or bmax_pmol_per_g")
    return dens


def _site_density(where: str, label: str, site: dict, v: dict, entry, kind: str, location: str,
                  geometry: Geometry) -> dict:
    """The SiteGroup density keyword: the one given (vmax and Bmax converted) or the library's."""
    given = [k for k in DENSITY_KEYS if k in v]
    if len(given) > 1:
        raise ModelError(where, given, "give one of density_per_um2, density_per_um3, count, vmax, bmax_pmol_per_g")
    key = given[0] if given else None
    if key is None:
        return _default_density(where, label, entry, location)
    if key == "vmax":
        if kind != "transporters" or location != "volume":
            raise ModelError(f"{where}.vmax", site["vmax"], "vmax sets the density of a transporter in the volume")
        t_ecs = entry.ecs_concentration_for_vmax(v["vmax"])
        return {"density_per_um3": t_ecs * AVOGADRO_PER_MOL * 1e-15 * geometry.volume_fraction}
    if key == "bmax_pmol_per_g":
        if location != "volume":
            raise ModelError(f"{where}.bmax_pmol_per_g", site[key], "Bmax (per tissue mass) applies to volume sites")
        return {"density_per_um3": v[key] * SITES_PER_UM3_PER_PMOL_PER_G}
    return {key: v[key]}


def _site_group(label: str, site: dict, species: str, geometry: Geometry) -> SiteGroup:
    where = f"sites.{label}"
    if "entry" not in site:
        raise ModelError(f"{where}.entry", None, "each site group names a library entry (transporter, receptor, enzyme)")
    v = {k: _value(where, k, val) for k, val in site.items()}
    entry = library.site_entry(v["entry"], f"{where}.entry")
    kind = library.site_kind(v["entry"])
    location = v.get("location")
    if location is None:
        raise ModelError(f"{where}.location", None, "give the site location (e.g. 'postsynaptic', 'volume')")
    entry, scheme = _site_scheme(where, site, v, entry, kind, species)
    dens = _site_density(where, label, site, v, entry, kind, location, geometry)
    extra = {k: v[k] for k in ("arrangement", "n_clusters", "cluster_radius_um") if k in v}
    return SiteGroup(scheme, location, name=label, **dens, **extra)


def _sites(s: dict, species: str, geometry: Geometry) -> list:
    return [_site_group(label, site, species, geometry) for label, site in s.get("sites", {}).items()
            if _value(f"sites.{label}", "enabled", site.get("enabled", True))]


# ======================================================================================================
# transmitter, releases, sinks

def _transmitter(s: dict):
    """(library transmitter, the ``transmitter`` section with the library's values filled in)."""
    tsec = s.get("transmitter", {})
    if "name" not in tsec:
        raise ModelError("transmitter.name", None, "the specification names its transmitter")
    tr = library.transmitter(tsec["name"], "transmitter.name")
    tv = _section(s, "transmitter")
    values = {"diffusion_um2_per_ms": tv.get("diffusion_um2_per_ms", tr.diffusion_um2_per_ms),
              "molecules_per_vesicle": tv.get("molecules_per_vesicle", tr.molecules_per_vesicle),
              "fraction_released": tv.get("fraction_released", tr.fraction_released)}
    if not 0 < values["fraction_released"] <= 1:
        raise ModelError("transmitter.fraction_released", values["fraction_released"], "must be in (0, 1]")
    values["pore_tau_ms"] = tv.get("pore_tau_ms", tr.pore_tau_ms)
    values["ambient"] = tv.get("ambient", 0.0)
    return tr, values


def _releases(s: dict, species: str, transmitter: dict):
    """(releases, trains) from the ``release`` and ``train`` sections."""
    rel = _section(s, "release")
    train = _section(s, "train")
    molecules = rel.get("molecules", transmitter["molecules_per_vesicle"] * transmitter["fraction_released"])
    vesicle = dict(molecules=molecules, species=species, into=rel.get("into", "cleft"),
                   pore_tau_ms=transmitter["pore_tau_ms"], quantal_cv=rel.get("quantal_cv", 0.0),
                   molecule_distribution=rel.get("molecule_distribution", "fixed"))
    for key in ("position_um", "random_position_radius_um"):
        if key in rel:
            vesicle[key] = rel[key]
    releases, trains = [], []
    if rel.get("enabled", True):
        releases.append(Release(time_ms=rel.get("time_ms", 0.0), probability=rel.get("probability", 1.0), **vesicle))
    if train.get("enabled", False):
        trains.append(StimulusTrain(start_ms=train.get("start_ms", 0.0), n_stimuli=train.get("n_stimuli", 1),
                                    frequency_hz=train.get("frequency_hz", 1.0),
                                    release_probability=train.get("release_probability", 1.0),
                                    vesicle=Release(time_ms=0.0, **vesicle), plasticity=_plasticity(train)))
    return releases, trains


def _plasticity(train: dict) -> ShortTermPlasticity | None:
    """The ``[train]`` plasticity keys as a ShortTermPlasticity (None when none is given):
    ``n_release_sites`` (default 1), ``tau_recovery_ms`` (required), ``tau_facilitation_ms`` (default 0,
    no facilitation); U is the train's ``release_probability``."""
    if not any(k in train for k in PLASTICITY_KEYS):
        return None
    if "tau_recovery_ms" not in train:
        raise ModelError("train.tau_recovery_ms", None, "short-term plasticity (n_release_sites, "
                         "tau_facilitation_ms) needs the vesicle recovery time constant")
    n_sites = train.get("n_release_sites", 1)
    if n_sites < 1:
        raise ModelError("train.n_release_sites", n_sites, "must be a whole number >= 1")
    return ShortTermPlasticity(n_sites=n_sites, tau_recovery_ms=train["tau_recovery_ms"],
                               tau_facilitation_ms=train.get("tau_facilitation_ms", 0.0))


def _transporter_clearance(model: SynapseModel):
    """[(group label, clearance rate s⁻¹)] for volume transporter cycles."""
    out = []
    g_ = model.geometry
    for g in model.sites:
        cycle = transporter_cycle_rates(g.scheme)
        if cycle is None or g.location != "volume" or g.density_per_um3 is None:
            continue
        t_ecs = g.density_per_um3 / (AVOGADRO_PER_MOL * 1e-15 * g_.volume_fraction)
        out.append((g.label, cycle.clearance_rate_per_s(t_ecs)))
    return out


def _degradation_rate(where: str, deg: dict, v: dict, entry, model: SynapseModel) -> float:
    rate = v.get("rate_per_s")
    fcl = v.get("fraction_of_clearance")
    if rate is None and fcl is None and entry is not None:
        rate, fcl = entry.rate_per_s, entry.fraction_of_clearance
    if rate is not None and fcl is not None and ("rate_per_s" in v and "fraction_of_clearance" in v):
        raise ModelError(where, deg, "give rate_per_s or fraction_of_clearance, not both")
    if rate is not None:
        return rate
    if fcl is None:
        raise ModelError(f"{where}.rate_per_s", None, "give rate_per_s, fraction_of_clearance or a library entry")
    if not 0 <= fcl < 1:
        raise ModelError(f"{where}.fraction_of_clearance", fcl, "must be in [0, 1)")
    clear = sum(k for _, k in _transporter_clearance(model))
    if clear <= 0:
        raise ModelError(f"{where}.fraction_of_clearance", fcl,
                         "needs volume transporters whose clearance it is a fraction of")
    return clear * fcl / (1.0 - fcl)


def _degradation(s: dict, model: SynapseModel, species: str) -> list:
    out = []
    for label, deg in s.get("degradation", {}).items():
        where = f"degradation.{label}"
        v = {k: _value(where, k, val) for k, val in deg.items()}
        if not v.get("enabled", True):
            continue
        entry = library.enzyme(v["entry"], f"{where}.entry") if "entry" in v else None
        if entry is not None and entry.kind != "sink":
            raise ModelError(f"{where}.entry", v["entry"], f"{entry.name} is a membrane enzyme; list it under sites")
        rate = _degradation_rate(where, deg, v, entry, model)
        out.append(Degradation(rate_per_s=rate, region=v.get("region", "all"), species=species))
    return out


# ======================================================================================================
# pharmacology and the whole build

def _pharmacology(model: SynapseModel, s: dict, adapt: Adaptation, drugs, mode: str, custom_drugs, ambient: float):
    """(model, report): adaptation, drugs, then autoreceptor feedback."""
    auto = _section(s, "autoreceptor")
    if not adapt.is_identity():
        model = apply_adaptation(model, adapt, auto.get("receptor"))
    model, report = apply_drugs(model, drugs, mode, custom_drugs, transmitter_M=ambient)
    if auto.get("closed_loop", False):
        model = _closed_loop(model, auto, adapt)
    elif auto and auto.get("gain", 0.0) * adapt.autoreceptor_gain > 0:
        if "receptor" not in auto:
            raise ModelError("autoreceptor.receptor", None, "name the autoreceptor (e.g. 'D2')")
        left = unblocked_clearance_fraction(_transporter_clearance(model), report.unavailable_fraction)
        rec = library.receptor(auto["receptor"], "autoreceptor.receptor")
        model = apply_autoreceptor(model, auto["receptor"], min(1.0, auto["gain"] * adapt.autoreceptor_gain),
                                   auto.get("tau_ms", 1000.0), auto.get("occupancy_per_release", 0.0),
                                   ambient, left, adapt.receptor_affinity.get(rec.name, 1.0))
    elif "receptor" in auto:
        library.receptor(auto["receptor"], "autoreceptor.receptor")
    return model, report


def _closed_loop(model: SynapseModel, auto: dict, adapt: Adaptation) -> SynapseModel:
    """``model`` with closed-loop feedback (:class:`~mcsyn.model.ClosedLoopFeedback`) from the
    autoreceptor's site group (``group``, by default the site group named as the receptor); the
    open-loop keys ``tau_ms`` and ``occupancy_per_release`` are not used."""
    if "receptor" not in auto:
        raise ModelError("autoreceptor.receptor", None, "name the autoreceptor (e.g. 'D2')")
    rec = library.receptor(auto["receptor"], "autoreceptor.receptor")
    if not rec.autoreceptor:
        raise ModelError("autoreceptor.receptor", auto["receptor"], "is not a presynaptic autoreceptor")
    group = auto.get("group", library.canonical("receptors", auto["receptor"]).partition("@")[0])
    labels = [g.label for g in model.sites]
    if group not in labels:
        raise ModelError("autoreceptor.group", group, f"the closed loop needs the {rec.name} site group in the "
                         f"model (its sites carry the activation); the model has {labels}")
    gain = require_fraction("autoreceptor.gain", auto.get("gain", 0.0))
    tau = require_nonnegative("autoreceptor.second_messenger_tau_ms", auto.get("second_messenger_tau_ms", 0.0))
    delay = require_nonnegative("autoreceptor.delay_ms", auto.get("delay_ms", 0.0))
    return dataclasses.replace(model, feedback=ClosedLoopFeedback(group, min(1.0, gain * adapt.autoreceptor_gain),
                                                                  tau, delay))


def build_from_spec(specification: dict, drugs: dict | None = None, mode: str = "equilibrium", adaptation=None,
                    custom_drugs: dict | None = None, _config=None) -> SynapseModel:
    """Build a :class:`~mcsyn.SynapseModel` from a complete specification (see module docstring).

    ``drugs`` is ``{name: concentration}`` in any form :func:`mcsyn.drugs.parse_concentration`
    reads (``"50 nM"``, ``"80%SERT"``, a number in M)."""
    s = specification
    check_spec(s)
    if mode not in MODES:
        suggest(mode, MODES, "drug mode", "mode")
    adapt = Adaptation.from_value(adaptation).validated()
    tr, transmitter = _transmitter(s)
    species = Species(tr.name, transmitter["diffusion_um2_per_ms"])
    geometry_section, numerics = _section(s, "geometry"), _section(s, "numerics")
    if "cell" in geometry_section:
        from .tissue.cell import apply_cell     # here, not at the top: the tissue package loads scipy
        geometry_section, numerics = apply_cell(geometry_section, numerics, s.get("name", "synapse"))
    geometry = Geometry(**geometry_section)
    timing = Timing(**_section(s, "timing"))
    releases, trains = _releases(s, tr.name, transmitter)
    sites = _sites(s, tr.name, geometry)
    model = SynapseModel(species=[species], geometry=geometry, sites=sites, releases=releases, trains=trains,
                         timing=timing, name=s.get("name", "synapse"), clamp=_clamp(s), **numerics)
    model = dataclasses.replace(model, degradation=_degradation(s, model, tr.name))
    if model.releases or model.trains:
        model.validate()    # errors name the fields as given, before drugs and feedback rewrite them
    model, report = _pharmacology(model, s, adapt, drugs, mode, custom_drugs, transmitter["ambient"])
    model.validate()
    model.pharmacology = report
    model.config = _config
    return model
