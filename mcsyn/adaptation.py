"""Chronic adaptation: explicit, user-set factors applied on top of any preset.

Receptor number (density or count × factor), receptor affinity (every unbinding rate divided by
the factor: K_D → K_D/factor), transporter expression (density or count × factor), and the
autoreceptor gain (× factor, used by :mod:`mcsyn.autoreceptor`). Adaptation is applied before the
drugs (:func:`mcsyn.build.build_from_spec`).
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

from . import library
from .errors import ModelError, PharmacologyWarning, require_nonnegative
from .library import suggest
from .model import SiteGroup, SynapseModel
from .schemes import KineticScheme


@dataclass
class Adaptation:
    """Explicit chronic-adaptation factors, applied on top of any preset.

    Parameters
    ----------
    receptor_density : dict
        ``{receptor: factor}``: site density (or count) multiplied by the factor.
    receptor_affinity : dict
        ``{receptor: factor}``: affinity multiplied by the factor (every unbinding rate divided by it,
        so K_D → K_D/factor).
    transporter_expression : dict
        ``{transporter: factor}``: density (or count) multiplied (e.g. SERT down-regulation 0.6).
    autoreceptor_gain : float
        Multiplies the autoreceptor feedback gain (desensitisation < 1).
    note : str
        Free text: where the factors come from.
    """

    receptor_density: dict = field(default_factory=dict)
    receptor_affinity: dict = field(default_factory=dict)
    transporter_expression: dict = field(default_factory=dict)
    autoreceptor_gain: float = 1.0
    note: str = ""

    FIELDS = ("receptor_density", "receptor_affinity", "transporter_expression", "autoreceptor_gain", "note")

    @classmethod
    def from_value(cls, value) -> "Adaptation":
        if value is None:
            return cls()
        if isinstance(value, Adaptation):
            return value
        if not isinstance(value, dict):
            raise ModelError("adaptation", value, "must be an Adaptation or a table of factors")
        for key in value:
            if key not in cls.FIELDS:
                suggest(key, cls.FIELDS, "adaptation field", f"adaptation.{key}")
            if key in cls.FIELDS[:3] and not isinstance(value[key], dict):
                raise ModelError(f"adaptation.{key}", value[key], "must be a table of name = factor")
        return cls(**{k: (dict(v) if isinstance(v, dict) else v) for k, v in value.items()})

    def validated(self) -> "Adaptation":
        """A copy with canonical names and numeric factors; raises on bad input."""
        out = {}
        for table, kind in (("receptor_density", "receptors"), ("receptor_affinity", "receptors"),
                            ("transporter_expression", "transporters")):
            tab = getattr(self, table)
            if not isinstance(tab, dict):
                raise ModelError(f"adaptation.{table}", tab, "must be a table of name = factor")
            res = {}
            for name, factor in tab.items():
                f = f"adaptation.{table}.{name}"
                canon = library.canonical(kind, name, f).partition("@")[0]
                x = _factor(f, factor, positive=(table == "receptor_affinity"))
                res[canon] = x
            out[table] = res
        g = _factor("adaptation.autoreceptor_gain", self.autoreceptor_gain)
        return Adaptation(out["receptor_density"], out["receptor_affinity"], out["transporter_expression"], g,
                          str(self.note))

    def is_identity(self) -> bool:
        return (not self.receptor_density and not self.receptor_affinity and not self.transporter_expression
                and self.autoreceptor_gain == 1.0)

    def to_dict(self) -> dict:
        d = {}
        for k in ("receptor_density", "receptor_affinity", "transporter_expression"):
            if getattr(self, k):
                d[k] = dict(getattr(self, k))
        if self.autoreceptor_gain != 1.0:
            d["autoreceptor_gain"] = self.autoreceptor_gain
        if self.note:
            d["note"] = self.note
        return d


def _factor(f, value, positive=False) -> float:
    require_nonnegative(f, value)       # a finite, bounded number (mcsyn.errors)
    if positive and value == 0:
        raise ModelError(f, value, "must be > 0")
    return float(value)


def _scale_group(g: SiteGroup, factor: float) -> SiteGroup:
    if g.count is not None:
        return dataclasses.replace(g, count=int(round(g.count * factor)))
    if g.density_per_um2 is not None:
        return dataclasses.replace(g, density_per_um2=g.density_per_um2 * factor)
    if g.density_per_um3 is not None:
        return dataclasses.replace(g, density_per_um3=g.density_per_um3 * factor)
    raise ModelError(f"sites[{g.label!r}]", g.arrangement, "sites at fixed coordinates cannot be scaled by adaptation")


def apply_adaptation(model: SynapseModel, adaptation, autoreceptor: str | None = None) -> SynapseModel:
    """A copy of ``model`` with the adaptation's density and affinity factors applied to the site
    groups whose scheme names a library receptor or transporter. Names that match no group warn,
    except the affinity of ``autoreceptor`` (used by :func:`mcsyn.autoreceptor.apply_autoreceptor`)."""
    a = Adaptation.from_value(adaptation).validated()
    auto = library.canonical("receptors", autoreceptor).partition("@")[0] if autoreceptor else None
    sites = list(model.sites)
    used = set()
    for i, g in enumerate(sites):
        kind, name = library.scheme_entry(g.scheme.name)
        if kind == "transporters" and name in a.transporter_expression:
            sites[i] = _scale_group(sites[i], a.transporter_expression[name])
            used.add(("transporter_expression", name))
        if kind == "receptors":
            if name in a.receptor_density:
                sites[i] = _scale_group(sites[i], a.receptor_density[name])
                used.add(("receptor_density", name))
            if name in a.receptor_affinity:
                sites[i] = dataclasses.replace(sites[i], scheme=_scale_affinity(sites[i].scheme, a.receptor_affinity[name]))
                used.add(("receptor_affinity", name))
    for table in ("transporter_expression", "receptor_density", "receptor_affinity"):
        for name in getattr(a, table):
            if (table, name) not in used and not (table == "receptor_affinity" and name == auto):
                warnings.warn(f"adaptation.{table}.{name} has no effect: the synapse has no {name} sites "
                              f"(site groups: {[g.label for g in model.sites]})", PharmacologyWarning, stacklevel=2)
    return dataclasses.replace(model, sites=sites)


def _scale_affinity(scheme: KineticScheme, factor: float) -> KineticScheme:
    s = KineticScheme(scheme.name, list(scheme.states), tuple(scheme.open_states), scheme.source,
                      state_efficacy=dict(scheme.state_efficacy))
    for t in scheme.transitions:
        s._add(t.source, t.target, t.kind, t.rate / factor if t.kind == "unbind" else t.rate, t.species)
    return s
