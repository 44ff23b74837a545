"""Synapse presets that run by name, with drugs, chronic adaptation and overrides of any field.

>>> import mcsyn.presets as presets
>>> model = presets.build("dopaminergic", drugs={"cocaine": "0.5 uM"})        # doctest: +SKIP
>>> model = presets.build("glutamatergic", geometry={"cleft_radius_um": "250 nm"})  # doctest: +SKIP

A preset is a *specification* (``mcsyn/data/presets.toml``) in the configuration format of
:mod:`mcsyn.config`: sections ``transmitter``, ``geometry``, ``timing``, ``numerics``, ``release``,
``train``, ``sites.<label>``, ``degradation.<label>`` and ``autoreceptor``. Overrides are merged into
it (nested dicts, or dotted keys such as ``"geometry.cleft_radius_um"``); quantities may be numbers
in the unit their key names or strings with units (``"250 nm"``). Unknown keys are errors that
name the key and list the closest valid ones.

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

Build order: specification → model (transmitter, geometry, sites, releases, sinks) → chronic
adaptation (:func:`mcsyn.drugs.apply_adaptation`) → drugs (:func:`mcsyn.drugs.apply_drugs`) →
autoreceptor feedback (:func:`mcsyn.drugs.apply_autoreceptor`) → ``model.validate()``. All errors
are raised here, before any simulation. The returned model carries ``model.pharmacology`` (a
:class:`~mcsyn.drugs.PharmacologyReport`) and ``model.config`` (the full resolved
:class:`~mcsyn.config.SynapseConfig`, for saving with results).
"""
from __future__ import annotations

import copy
import dataclasses

from . import drugs as _drugs
from . import library
from .errors import ModelError
from .library import AVOGADRO_PER_MOL, SITES_PER_UM3_PER_PMOL_PER_G, suggest
from .model import Degradation, Geometry, Release, SiteGroup, Species, StimulusTrain, SynapseModel, Timing
from .units import parse_field, parse_quantity

# ======================================================================================================
# the specification schema

_GEOMETRY_KEYS = tuple(f.name for f in dataclasses.fields(Geometry))
_TIMING_KEYS = tuple(f.name for f in dataclasses.fields(Timing))
SECTIONS = {
    "transmitter": ("name", "diffusion_um2_per_ms", "molecules_per_vesicle", "fraction_released", "pore_tau_ms",
                    "ambient"),
    "geometry": _GEOMETRY_KEYS,
    "timing": _TIMING_KEYS,
    "numerics": ("tile_um", "voxel_um"),
    "release": ("enabled", "time_ms", "into", "position_um", "probability", "molecules", "quantal_cv",
                "molecule_distribution"),
    "train": ("enabled", "start_ms", "n_stimuli", "frequency_hz", "release_probability"),
    "autoreceptor": ("receptor", "gain", "tau_ms", "occupancy_per_release"),
}
SITE_KEYS = ("entry", "enabled", "location", "density_per_um2", "density_per_um3", "count", "vmax", "bmax_pmol_per_g",
             "arrangement", "n_clusters", "cluster_radius_um", "kon_per_M_per_s", "koff_per_s", "translocation_per_s",
             "return_per_s", "kcat_per_s", "km")
DENSITY_KEYS = ("density_per_um2", "density_per_um3", "count", "vmax", "bmax_pmol_per_g")
DEGRADATION_KEYS = ("entry", "enabled", "rate_per_s", "fraction_of_clearance", "region")
META_KEYS = ("name", "description", "source", "sources", "aliases")
TOP_KEYS = META_KEYS + tuple(SECTIONS) + ("sites", "degradation")
_STRING_FIELDS = {"name", "outside", "band_outer_boundary", "domain_boundary", "into", "molecule_distribution", "entry", "location",
                  "arrangement", "region", "receptor", "description", "source"}
_BOOL_FIELDS = {"enabled", "volume_enters_cleft"}
_INT_FIELDS = {"count", "n_stimuli", "n_clusters"}


def _check_keys(d: dict, allowed, where: str):
    if not isinstance(d, dict):
        raise ModelError(where, d, "must be a table")
    for key in d:
        if key not in allowed:
            suggest(key, allowed, f"key in {where or 'the configuration'}", f"{where + '.' if where else ''}{key}")


def check_spec(spec: dict, where: str = ""):
    """Raise on unknown keys anywhere in a specification (or in a set of overrides)."""
    pre = f"{where}." if where else ""
    _check_keys(spec, TOP_KEYS, where)
    for sec, keys in SECTIONS.items():
        if sec in spec:
            _check_keys(spec[sec], keys, f"{pre}{sec}")
    for label, site in spec.get("sites", {}).items():
        _check_keys(site, SITE_KEYS, f"{pre}sites.{label}")
    for label, deg in spec.get("degradation", {}).items():
        _check_keys(deg, DEGRADATION_KEYS, f"{pre}degradation.{label}")


def _undot(overrides: dict) -> dict:
    """Turn dotted keys (``"geometry.cleft_radius_um"``) into nested dicts."""
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
            value = _undot(value)
            if isinstance(node.get(last), dict):
                node[last] = _deep_merge(node[last], value)
                continue
        node[last] = value
    return out


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
    over = _undot(overrides or {})
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
# building

def _value(section: str, key: str, value):
    f = f"{section}.{key}" if section else key
    if key in _STRING_FIELDS:
        if not isinstance(value, str):
            raise ModelError(f, value, "must be a string")
        return value
    if key in _BOOL_FIELDS:
        if not isinstance(value, bool):
            raise ModelError(f, value, "must be true or false")
        return value
    if key in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ModelError(f, value, "must be a whole number >= 0")
        return value
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


def _site_group(label: str, site: dict, species: str, geometry: Geometry) -> SiteGroup:
    where = f"sites.{label}"
    if "entry" not in site:
        raise ModelError(f"{where}.entry", None, "each site group names a library entry (transporter, receptor, enzyme)")
    v = {k: _value(where, k, val) for k, val in site.items()}
    entry = library.site_entry(v["entry"], f"{where}.entry")
    kind = library.site_kind(v["entry"])
    rate_keys = ("kon_per_M_per_s", "koff_per_s", "translocation_per_s", "return_per_s", "kcat_per_s")
    rates = {k: v[k] for k in rate_keys if k in v}
    location = v.get("location")
    if location is None:
        raise ModelError(f"{where}.location", None, "give the site location (e.g. 'postsynaptic', 'volume')")
    if kind == "transporters":
        if "kcat_per_s" in rates:
            raise ModelError(f"{where}.kcat_per_s", rates["kcat_per_s"], "transporters take translocation_per_s and return_per_s")
        if "km" in v:
            if "koff_per_s" in rates:
                raise ModelError(f"{where}.km", site["km"], "give km or koff_per_s, not both")
            kon = rates.get("kon_per_M_per_s", entry.kon_per_M_per_s)
            ktr = rates.get("translocation_per_s", entry.translocation_per_s)
            kret = rates.get("return_per_s", entry.return_per_s)
            koff = v["km"] * kon * (ktr + kret) / kret - ktr
            if koff < 0:
                raise ModelError(f"{where}.km", site["km"], "is below the smallest Km the cycle's rates allow")
            rates["koff_per_s"] = koff
        entry = dataclasses.replace(entry, **rates)
        scheme = entry.scheme(species)
    elif kind == "receptors":
        if "km" in v:
            raise ModelError(f"{where}.km", site["km"], "km applies to transporters only")
        bad = [k for k in rates if k not in ("kon_per_M_per_s", "koff_per_s")]
        if bad or (rates and entry.scheme_kind != "one_site"):
            raise ModelError(f"{where}.{(bad or list(rates))[0]}", site.get((bad or list(rates))[0]),
                             "rate overrides apply to one-site receptors (kon_per_M_per_s, koff_per_s)")
        scheme = entry.scheme(species, **rates)
    else:
        if entry.kind != "membrane":
            raise ModelError(f"{where}.entry", v["entry"], f"{entry.name} is a first-order sink; list it under degradation")
        bad = [k for k in rates if k not in ("kon_per_M_per_s", "koff_per_s", "kcat_per_s")]
        if bad:
            raise ModelError(f"{where}.{bad[0]}", site[bad[0]], "enzymes take kon_per_M_per_s, koff_per_s, kcat_per_s")
        scheme = entry.scheme(species, **rates)
    given = [k for k in DENSITY_KEYS if k in v]
    if len(given) > 1:
        raise ModelError(where, given, "give one of density_per_um2, density_per_um3, count, vmax, bmax_pmol_per_g")
    dens = {}
    key = given[0] if given else None
    if key is None:                       # library default
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
    elif key == "vmax":
        if kind != "transporters" or location != "volume":
            raise ModelError(f"{where}.vmax", site["vmax"], "vmax sets the density of a transporter in the volume")
        t_ecs = entry.ecs_concentration_for_vmax(v["vmax"])
        dens["density_per_um3"] = t_ecs * AVOGADRO_PER_MOL * 1e-15 * geometry.volume_fraction
    elif key == "bmax_pmol_per_g":
        if location != "volume":
            raise ModelError(f"{where}.bmax_pmol_per_g", site[key], "Bmax (per tissue mass) applies to volume sites")
        dens["density_per_um3"] = v[key] * SITES_PER_UM3_PER_PMOL_PER_G
    else:
        dens[key] = v[key]
    extra = {k: v[k] for k in ("arrangement", "n_clusters", "cluster_radius_um") if k in v}
    return SiteGroup(scheme, location, name=label, **dens, **extra)


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


def _transporter_clearance(model: SynapseModel):
    """[(group label, clearance rate s⁻¹)] for volume transporter cycles."""
    out = []
    g_ = model.geometry
    for g in model.sites:
        rates = _drugs._cycle_rates(g.scheme)
        if rates is None or g.location != "volume" or g.density_per_um3 is None:
            continue
        kon, koff, ktr, kret = rates[:4]
        t_ecs = g.density_per_um3 / (AVOGADRO_PER_MOL * 1e-15 * g_.volume_fraction)
        out.append((g.label, kon * t_ecs * ktr / (koff + ktr)))
    return out


def build_from_spec(specification: dict, drugs: dict | None = None, mode: str = "equilibrium", adaptation=None,
                    custom_drugs: dict | None = None, _config=None) -> SynapseModel:
    """Build a :class:`~mcsyn.SynapseModel` from a complete specification (see module docstring)."""
    s = specification
    check_spec(s)
    if mode not in _drugs.MODES:
        suggest(mode, _drugs.MODES, "drug mode", "mode")
    adapt = _drugs.Adaptation.from_value(adaptation).validated()
    tsec = s.get("transmitter", {})
    if "name" not in tsec:
        raise ModelError("transmitter.name", None, "the specification names its transmitter")
    tr = library.transmitter(tsec["name"], "transmitter.name")
    tv = _section(s, "transmitter")
    d = tv.get("diffusion_um2_per_ms", tr.diffusion_um2_per_ms)
    content = tv.get("molecules_per_vesicle", tr.molecules_per_vesicle)
    frac = tv.get("fraction_released", tr.fraction_released)
    if not 0 < frac <= 1:
        raise ModelError("transmitter.fraction_released", frac, "must be in (0, 1]")
    pore = tv.get("pore_tau_ms", tr.pore_tau_ms)
    ambient = tv.get("ambient", 0.0)
    species = Species(tr.name, d)

    geometry = Geometry(**_section(s, "geometry"))
    timing = Timing(**_section(s, "timing"))
    numerics = _section(s, "numerics")

    rel = _section(s, "release")
    train = _section(s, "train")
    molecules = rel.get("molecules", content * frac)
    vesicle = dict(molecules=molecules, species=tr.name, into=rel.get("into", "cleft"), pore_tau_ms=pore,
                   quantal_cv=rel.get("quantal_cv", 0.0),
                   molecule_distribution=rel.get("molecule_distribution", "fixed"))
    if "position_um" in rel:
        vesicle["position_um"] = rel["position_um"]
    releases, trains = [], []
    if rel.get("enabled", True):
        releases.append(Release(time_ms=rel.get("time_ms", 0.0), probability=rel.get("probability", 1.0), **vesicle))
    if train.get("enabled", False):
        trains.append(StimulusTrain(start_ms=train.get("start_ms", 0.0), n_stimuli=train.get("n_stimuli", 1),
                                    frequency_hz=train.get("frequency_hz", 1.0),
                                    release_probability=train.get("release_probability", 1.0),
                                    vesicle=Release(time_ms=0.0, **vesicle)))

    sites = []
    for label, site in s.get("sites", {}).items():
        if not _value(f"sites.{label}", "enabled", site.get("enabled", True)):
            continue
        sites.append(_site_group(label, site, tr.name, geometry))

    model = SynapseModel(species=[species], geometry=geometry, sites=sites, releases=releases, trains=trains,
                         timing=timing, name=s.get("name", "synapse"), **numerics)

    degradation = []
    for label, deg in s.get("degradation", {}).items():
        where = f"degradation.{label}"
        v = {k: _value(where, k, val) for k, val in deg.items()}
        if not v.get("enabled", True):
            continue
        entry = library.enzyme(v["entry"], f"{where}.entry") if "entry" in v else None
        if entry is not None and entry.kind != "sink":
            raise ModelError(f"{where}.entry", v["entry"], f"{entry.name} is a membrane enzyme; list it under sites")
        rate = v.get("rate_per_s")
        fcl = v.get("fraction_of_clearance")
        if rate is None and fcl is None and entry is not None:
            rate, fcl = entry.rate_per_s, entry.fraction_of_clearance
        if rate is not None and fcl is not None and ("rate_per_s" in v and "fraction_of_clearance" in v):
            raise ModelError(where, deg, "give rate_per_s or fraction_of_clearance, not both")
        if rate is None:
            if fcl is None:
                raise ModelError(f"{where}.rate_per_s", None, "give rate_per_s, fraction_of_clearance or a library entry")
            if not 0 <= fcl < 1:
                raise ModelError(f"{where}.fraction_of_clearance", fcl, "must be in [0, 1)")
            clear = sum(k for _, k in _transporter_clearance(model))
            if clear <= 0:
                raise ModelError(f"{where}.fraction_of_clearance", fcl,
                                 "needs volume transporters whose clearance it is a fraction of")
            rate = clear * fcl / (1.0 - fcl)
        degradation.append(Degradation(rate_per_s=rate, region=v.get("region", "all"), species=tr.name))
    model = dataclasses.replace(model, degradation=degradation)

    if model.releases or model.trains:
        model.validate()    # errors name the fields as given, before drugs and feedback rewrite them
    auto = _section(s, "autoreceptor")
    if not adapt.is_identity():
        model = _drugs.apply_adaptation(model, adapt, auto.get("receptor"))
    model, report = _drugs.apply_drugs(model, drugs, mode, custom_drugs, transmitter_M=ambient)

    if auto and auto.get("gain", 0.0) * adapt.autoreceptor_gain > 0:
        if "receptor" not in auto:
            raise ModelError("autoreceptor.receptor", None, "name the autoreceptor (e.g. 'D2')")
        clear = _transporter_clearance(model)
        total = sum(k for _, k in clear)
        left = (sum(k * (1.0 - report.unavailable_fraction.get(lb, 0.0)) for lb, k in clear) / total
                if total > 0 else 1.0)
        rec = library.receptor(auto["receptor"], "autoreceptor.receptor")
        model = _drugs.apply_autoreceptor(model, auto["receptor"], min(1.0, auto["gain"] * adapt.autoreceptor_gain),
                                          auto.get("tau_ms", 1000.0), auto.get("occupancy_per_release", 0.0),
                                          ambient, left, adapt.receptor_affinity.get(rec.name, 1.0))
    elif "receptor" in auto:
        library.receptor(auto["receptor"], "autoreceptor.receptor")
    model.validate()
    model.pharmacology = report
    model.config = _config
    return model


def build(name: str, drugs: dict | None = None, mode: str = "equilibrium", adaptation=None,
          custom_drugs: dict | None = None, **overrides) -> SynapseModel:
    """Build preset ``name`` with ``drugs`` (``{name: "50 nM"}``), a drug ``mode``
    (``"equilibrium"``, ``"kinetic"``, ``"acute"``), chronic ``adaptation``
    (:class:`~mcsyn.drugs.Adaptation` or dict) and overrides of any field, as section dicts
    (``geometry={"cleft_radius_um": 0.25}``) or dotted keys (``**{"timing.duration_ms": 50}``).

    Returns a validated :class:`~mcsyn.SynapseModel` carrying ``.pharmacology`` and ``.config``.
    """
    from .config import SynapseConfig
    cfg = SynapseConfig(preset=name, mode=mode, drugs=dict(drugs or {}),
                        adaptation=_drugs.Adaptation.from_value(adaptation).to_dict(),
                        custom_drugs=dict(custom_drugs or {}), overrides=_undot(overrides))
    return cfg.build()
