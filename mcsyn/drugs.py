"""Drugs, chronic adaptation and autoreceptor feedback, applied to a :class:`~mcsyn.SynapseModel`.

Mechanisms
----------
**Competitive blocker** (SSRIs, SNRIs, bupropion, cocaine, methylphenidate; also receptor
off-targets such as fluoxetine at 5-HT2C). At equilibrium the fraction of a target blocked by drug
*i* is the competitive occupancy

    θ_i = (C_i/K_i) / (1 + Σ_j C_j/K_j [+ S/Km]),

summed over all drugs *j* present that bind the target (and the ambient transmitter S, with the
transporter's Km, when an ambient concentration is given). Blocking is a site state
``"blocked:<drug>"`` reachable only from the empty ground state; a blocked site binds no
transmitter.

* ``mode="equilibrium"``: each site starts blocked with probability θ_i (drawn per run) and stays
  blocked: the blocked state has no exits (drug binding is slow next to one synaptic event;
  parameters.md §5b).
* ``mode="kinetic"``: drugs with binding kinetics (``koff_per_s``; kon = koff/Ki) bind and unbind
  during the run at the pseudo-first-order rate kon·C and koff, starting at equilibrium.
* ``mode="acute"``: as ``"kinetic"``, but starting drug-free (acute application at t = 0).
  In both kinetic modes drugs without kinetics keep their equilibrium block (with a warning).

**Substrate / releaser** (amphetamine). On each target transporter (a
:func:`~mcsyn.transporter_cycle`: T, TS, Ti) the drug adds a state ``"bound:<drug>"``:
T → bound at kon·C (kon = koff/Ki), bound → T at koff (competes with transmitter for T),
bound → Ti at ``translocation_per_s`` (the drug is transported; it is not a model species, so this
is a first-order step), and an ``efflux`` exit Ti → T at ``efflux_per_s``: an inward-facing carrier
returns carrying a cytosolic transmitter molecule out (reverse transport). The kernel counts each
such molecule as released and as ``effluxed``, so conservation holds. Efflux exists only where the
transporter is. In ``"equilibrium"``/``"kinetic"`` modes the transporter states start at the
stationary distribution of the drug's cycle; in ``"acute"`` mode drug-free.

**MAO inhibitor** (tranylcypromine). MAO is intracellular: the drug multiplies the vesicle content
(molecules per release, including an explicit ``release.molecules``) by
1 + (f_max − 1)·C/(C + Ki_MAO), for monoamine transmitters only, and changes nothing about
extracellular clearance.

**Autoreceptors** (5-HT1A/1B, D2, α2). The kernel runs a whole train at once, so feedback is
computed *before* the run, open loop, from expected values (a mean-field rule, not the realised
releases of a run). Tonic occupancy from an ambient transmitter concentration S₀ seen by the
autoreceptor: o₀ = S/(S + K_D) with S = S₀/r, where r = Σ k_g(1 − θ_g)/Σ k_g is the fraction of
transporter clearance left unblocked (k_g: clearance rate of volume transporter group g; θ_g: its
equilibrium fraction blocked or held in a substrate cycle) — the steady state of constant tonic
release with first-order clearance. Agonist drugs at autoreceptors are not modelled (the library
has none). Phasic occupancy before stimulus k:

    o_k = 1 − (1 − o₀)·exp(−q Σ_{j<k} p_j e^{−(t_k − t_j)/τ}),

with q the occupancy added per expected release (``occupancy_per_release``) and τ (``tau_ms``) its
decay time. The release probability of stimulus k is p_k = p·(1 − g·o_k), with gain g (a single
release outside a train gets p·(1 − g·o₀)); trains become one Release per stimulus. The preset
defaults keep g = 0 (off) because parameters.md gives no value for it: the user states gain, τ and q.

**Chronic adaptation** (:class:`Adaptation`): explicit, user-set factors applied on top of any
preset: receptor number (density or count × factor), receptor affinity (every unbinding rate
divided by the factor: K_D → K_D/factor), transporter expression (density or count × factor), and
the autoreceptor gain (× factor).
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import library
from .errors import ModelError
from .library import Drug, suggest
from .model import Release, SiteGroup, SynapseModel
from .schemes import KineticScheme
from .units import parse_quantity

MODES = ("equilibrium", "kinetic", "acute")
MONOAMINES = ("dopamine", "serotonin", "norepinephrine")


class PharmacologyWarning(UserWarning):
    """A drug or adaptation that has no effect on the synapse it is applied to."""


# ======================================================================================================
# drugs and concentrations

def resolve_drug(name, custom_drugs: dict | None = None, field_name: str | None = None) -> Drug:
    """A :class:`~mcsyn.library.Drug` from a name (library or ``custom_drugs``) or a Drug itself."""
    if isinstance(name, Drug):
        return name
    if custom_drugs:
        for key, value in custom_drugs.items():
            if key == name:
                return value if isinstance(value, Drug) else Drug.from_dict(key, value, f"custom_drugs.{key}")
    return library.drug(name, field_name or f"drugs.{name}")


def parse_concentrations(drugs: dict | None, custom_drugs: dict | None = None) -> dict:
    """``{label: (Drug, concentration_M)}`` from ``{name: "50 nM" | number_in_M}``.

    Errors name the field (``drugs.<name>``): unknown drugs (with the closest names), missing or
    wrong units, negative concentrations."""
    out = {}
    for name, conc in (drugs or {}).items():
        f = f"drugs.{name}"
        d = resolve_drug(name, custom_drugs, f)
        if isinstance(conc, (int, float)) and not isinstance(conc, bool) and conc < 0:
            raise ModelError(f, conc, "a concentration must not be negative")
        c = parse_quantity(conc, "M", f)
        if d.label in out:
            raise ModelError(f, name, f"drug {d.label!r} is listed twice")
        out[d.label] = (d, c)
    return out


def _ki(drug: Drug, target: str):
    base = target.partition("@")[0]
    for t, k in drug.targets().items():
        if t.lower() == base.lower():
            return k
    return None


def competitive_occupancy(concentrations: dict, target: str, transmitter_M: float = 0.0,
                          km_M: float | None = None, custom_drugs: dict | None = None) -> dict:
    """Equilibrium fraction of ``target`` occupied by each drug, competitive over all drugs present.

    Parameters
    ----------
    concentrations : dict
        ``{drug: concentration}`` (strings with units, or numbers in M).
    target : str
        Transporter or receptor name (``"SERT"``, ``"5-HT2C"``).
    transmitter_M, km_M : float
        Ambient transmitter and its Km at the target, when the transmitter competes.

    Returns
    -------
    dict
        ``{drug label: θ}`` with θ_i = (C_i/K_i)/(1 + Σ_j C_j/K_j + S/Km); drugs that do not bind
        the target get 0.
    """
    parsed = parse_concentrations(concentrations, custom_drugs) if not _is_parsed(concentrations) else concentrations
    ratios = {}
    for label, (d, c) in parsed.items():
        k = _ki(d, target)
        ratios[label] = c / k if k else 0.0
    denom = 1.0 + sum(ratios.values())
    if transmitter_M:
        if not km_M or km_M <= 0:
            raise ModelError("km_M", km_M, "needed (> 0) when the transmitter competes")
        denom += transmitter_M / km_M
    return {label: r / denom for label, r in ratios.items()}


def _is_parsed(concentrations) -> bool:
    return bool(concentrations) and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], Drug)
                                        for v in concentrations.values())


def occupancy(drug, target: str, concentration, custom_drugs: dict | None = None) -> float:
    """Equilibrium occupancy of ``target`` by one drug alone: C/(C + Ki)."""
    d = resolve_drug(drug, custom_drugs)
    return competitive_occupancy({d.label: (d, parse_quantity(concentration, "M", f"drugs.{d.label}"))},
                                 target)[d.label]


def concentration_for_occupancy(drug, transporter: str, occupancy: float, custom_drugs: dict | None = None) -> float:
    """Free concentration (M) at which ``drug`` alone occupies ``occupancy`` of ``transporter``:
    C = Ki·θ/(1 − θ) (e.g. 80 % needs 4·Ki)."""
    d = resolve_drug(drug, custom_drugs)
    if not isinstance(occupancy, (int, float)) or isinstance(occupancy, bool) or not 0 <= occupancy < 1:
        raise ModelError("occupancy", occupancy, "must be a number in [0, 1)")
    k = _ki(d, transporter)
    if k is None:
        name = library.canonical("transporters", transporter, "transporter") if transporter != "MAO" else "MAO"
        raise ModelError("transporter", name, f"{d.label} has no Ki at {name}; its targets: {sorted(d.targets())}")
    return k * occupancy / (1.0 - occupancy)


def vesicle_content_factor(concentrations: dict, custom_drugs: dict | None = None) -> float:
    """Product over MAO inhibitors of 1 + (f_max − 1)·C/(C + Ki_MAO)."""
    parsed = parse_concentrations(concentrations, custom_drugs) if not _is_parsed(concentrations) else concentrations
    f = 1.0
    for d, c in parsed.values():
        if d.mechanism == "mao_inhibitor":
            k = d.ki_M["MAO"]
            f *= 1.0 + (d.vesicle_content_factor_max - 1.0) * c / (c + k)
    return f


# ======================================================================================================
# chronic adaptation

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
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ModelError(f, value, "must be a finite number >= 0")
    if positive and value == 0:
        raise ModelError(f, value, "must be > 0")
    return float(value)


def _entry_name(scheme_name: str):
    """(kind, canonical name) of a library entry matching a scheme name, or (None, None)."""
    for kind in ("transporters", "receptors", "enzymes"):
        try:
            return kind, library.canonical(kind, scheme_name).partition("@")[0]
        except ModelError:
            continue
    return None, None


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
    except the affinity of ``autoreceptor`` (used by :func:`apply_autoreceptor`)."""
    a = Adaptation.from_value(adaptation).validated()
    auto = library.canonical("receptors", autoreceptor).partition("@")[0] if autoreceptor else None
    sites = list(model.sites)
    used = set()
    for i, g in enumerate(sites):
        kind, name = _entry_name(g.scheme.name)
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
    s = KineticScheme(scheme.name, list(scheme.states), tuple(scheme.open_states), scheme.source)
    for t in scheme.transitions:
        s._add(t.source, t.target, t.kind, t.rate / factor if t.kind == "unbind" else t.rate, t.species)
    return s


# ======================================================================================================
# applying drugs to a model

def _cycle_rates(scheme: KineticScheme):
    """(kon, koff, k_tr, k_ret, Ti state) of a transporter_cycle-shaped scheme, else None."""
    g = scheme.ground
    binds = [t for t in scheme.transitions if t.kind == "bind" and t.source == g]
    if len(binds) != 1:
        return None
    ts = binds[0].target
    unb = [t for t in scheme.transitions if t.kind == "unbind" and t.source == ts and t.target == g]
    upt = [t for t in scheme.transitions if t.kind == "uptake" and t.source == ts]
    if len(unb) != 1 or len(upt) != 1:
        return None
    ti = upt[0].target
    ret = [t for t in scheme.transitions if t.kind == "first_order" and t.source == ti and t.target == g]
    if len(ret) != 1:
        return None
    return binds[0].rate, unb[0].rate, upt[0].rate, ret[0].rate, ti, binds[0].species


def _stationary(states, rates):
    """Stationary distribution of a small continuous-time chain {(a, b): rate}."""
    n = len(states)
    idx = {s: i for i, s in enumerate(states)}
    q = np.zeros((n, n))
    for (a, b), r in rates.items():
        q[idx[a], idx[b]] += r
        q[idx[a], idx[a]] -= r
    m = np.vstack([q.T, np.ones(n)])
    rhs = np.zeros(n + 1)
    rhs[-1] = 1.0
    p, *_ = np.linalg.lstsq(m, rhs, rcond=None)
    p = np.clip(p, 0.0, None)
    return dict(zip(states, p / p.sum()))


@dataclass
class PharmacologyReport:
    """What the drugs did to a model (all values are equilibrium expectations; each run draws its
    own site states, see :func:`blocked_fractions`).

    Attributes
    ----------
    mode : str
    concentrations_M : dict
        ``{drug label: free concentration in M}``.
    occupancy : dict
        ``{group label: {drug label: θ}}``: the competitive formula for every drug acting on the
        group (for a substrate this is its share of the outward-facing carriers by affinity; its
        actual cycle states are in ``substrate_states``).
    substrate_states : dict
        ``{group label: {state: fraction}}``: stationary fractions of the transporter states of a
        substrate (releaser) cycle.
    unavailable_fraction : dict
        ``{group label: fraction}``: equilibrium fraction of sites not free to bind transmitter
        (blocked, or in a substrate's cycle).
    vesicle_content_factor : float
        Factor on the molecules per release (MAO inhibitors).
    no_effect : list
        Drugs that act on nothing in this synapse (each also warned about).
    equilibrium_only : list
        Drugs kept at their equilibrium block in a kinetic mode (no ``koff_per_s``).
    """

    mode: str
    concentrations_M: dict
    occupancy: dict
    substrate_states: dict
    unavailable_fraction: dict
    vesicle_content_factor: float
    no_effect: list
    equilibrium_only: list

    def blocked_fraction(self, group: str) -> float:
        """Equilibrium fraction of ``group`` blocked by blockers (competitive formula; substrates,
        which cycle rather than block, are left out)."""
        subs = {st.partition(":")[2] for st in self.substrate_states.get(group, {}) if st.startswith("bound:")}
        return float(sum(v for k, v in self.occupancy.get(group, {}).items() if k not in subs))


def apply_drugs(model: SynapseModel, drugs: dict | None, mode: str = "equilibrium", custom_drugs: dict | None = None,
                transmitter_M: float = 0.0, warn: bool = True):
    """Return ``(new_model, report)`` with ``drugs`` (``{name: concentration}``) applied.

    See the module docstring for the mechanisms and modes. ``transmitter_M`` is an ambient
    transmitter concentration that competes with blockers at transporters (equilibrium formula).
    The input model is not modified.
    """
    if mode not in MODES:
        suggest(mode, MODES, "drug mode", "mode")
    parsed = parse_concentrations(drugs, custom_drugs)
    conc = {label: c for label, (d, c) in parsed.items()}
    sites = list(model.sites)
    occ_report, sub_report, unavailable, hit, eq_only = {}, {}, {}, set(), set()
    for gi, g in enumerate(sites):
        kind, name = _entry_name(g.scheme.name)
        if kind is None:
            continue
        acting = {label: (d, c) for label, (d, c) in parsed.items()
                  if d.mechanism in ("blocker", "substrate") and _ki(d, name) is not None}
        if not acting:
            continue
        hit.update(acting)
        rates = _cycle_rates(g.scheme)
        km = None
        if rates is not None:
            kon, koff, ktr, kret = rates[:4]
            km = (koff + ktr) / kon * kret / (ktr + kret)
        theta = competitive_occupancy(acting, name, transmitter_M if km else 0.0, km)
        blockers = {lb: v for lb, v in acting.items() if v[0].mechanism == "blocker"}
        substrates = {lb: v for lb, v in acting.items() if v[0].mechanism == "substrate"}
        if substrates and rates is None:
            raise ModelError(f"sites[{g.label!r}].scheme", g.scheme.name,
                             "a substrate drug needs a transporter cycle (T, TS, Ti) to act on")
        s = g.scheme.copy()
        init = dict(g.initial_state_fractions)
        fixed_total = 0.0
        for label, (d, c) in blockers.items():
            state = f"blocked:{label}"
            s.add_state(state)
            kinetic = mode != "equilibrium" and d.koff_per_s is not None
            if kinetic:
                kon_c = d.koff_per_s / _ki(d, name) * c
                s.first_order(s.ground, state, kon_c).first_order(state, s.ground, d.koff_per_s)
                if mode == "kinetic" and theta[label] > 0:
                    init[state] = theta[label]
            else:
                if mode != "equilibrium":
                    eq_only.add(label)
                if theta[label] > 0:
                    init[state] = theta[label]
                fixed_total += theta[label]
        if substrates:
            ti, species = rates[4], rates[5]
            chain_states = [s.ground, ti]
            chain = {(ti, s.ground): rates[3]}
            for label, (d, c) in substrates.items():
                state = f"bound:{label}"
                s.add_state(state)
                kon_c = d.koff_per_s / _ki(d, name) * c
                s.first_order(s.ground, state, kon_c).first_order(state, s.ground, d.koff_per_s)
                s.first_order(state, ti, d.translocation_per_s)
                s.efflux(ti, s.ground, species, d.efflux_per_s)
                chain_states.append(state)
                chain[(s.ground, state)] = kon_c
                chain[(state, s.ground)] = d.koff_per_s
                chain[(state, ti)] = d.translocation_per_s
                chain[(ti, s.ground)] = chain.get((ti, s.ground), 0.0) + d.efflux_per_s
            # stationary distribution of the drug cycle (kinetic blockers included), ignoring the
            # few transmitter molecules: the equilibrium the sites start in, or relax to ("acute")
            for label, (d, c) in blockers.items():
                if mode != "equilibrium" and d.koff_per_s is not None:
                    st = f"blocked:{label}"
                    chain_states.append(st)
                    chain[(s.ground, st)] = d.koff_per_s / _ki(d, name) * c
                    chain[(st, s.ground)] = d.koff_per_s
                    init.pop(st, None)
            pi = _stationary(chain_states, chain)
            rest = 1.0 - fixed_total - sum(g.initial_state_fractions.values())
            sub_report[g.label] = {st: float(rest * p) for st, p in pi.items() if st != s.ground}
            unavailable[g.label] = fixed_total + sum(sub_report[g.label].values())
            if mode != "acute":
                for st, p in sub_report[g.label].items():
                    if p > 0:
                        init[st] = float(init.get(st, 0.0) + p)
        else:
            unavailable[g.label] = float(sum(theta.values()))
        sites[gi] = dataclasses.replace(g, scheme=s, initial_state_fractions=init)
        occ_report[g.label] = theta
    no_effect = []
    factor = 1.0
    mao = {lb: v for lb, v in parsed.items() if v[0].mechanism == "mao_inhibitor"}
    species = set(model.species_names)
    if mao:
        if species & set(MONOAMINES):
            factor = vesicle_content_factor(mao)
            hit.update(mao)
        else:
            for label in mao:
                no_effect.append(label)
                if warn:
                    warnings.warn(f"drug {label!r} (MAO inhibitor) has no effect: the synapse's transmitter "
                                  f"{sorted(species)} is not a monoamine", PharmacologyWarning, stacklevel=2)
    for label, (d, c) in parsed.items():
        if label not in hit and label not in no_effect:
            no_effect.append(label)
            if warn:
                warnings.warn(f"drug {label!r} has no effect: the synapse has none of its targets "
                              f"{sorted(d.targets())} (site groups: {[g.label for g in model.sites]})",
                              PharmacologyWarning, stacklevel=2)
    if eq_only and warn:
        warnings.warn(f"mode {mode!r}: {sorted(eq_only)} have no binding kinetics (koff_per_s) in the library and "
                      f"keep their equilibrium block", PharmacologyWarning, stacklevel=2)
    releases, trains = list(model.releases), list(model.trains)
    if factor != 1.0:
        releases = [dataclasses.replace(r, molecules=r.molecules * factor) if _is_mono(r, model) else r
                    for r in releases]
        trains = [dataclasses.replace(t, vesicle=dataclasses.replace(t.vesicle, molecules=t.vesicle.molecules * factor))
                  if _is_mono(t.vesicle, model) else t for t in trains]
    new = dataclasses.replace(model, sites=sites, releases=releases, trains=trains)
    report = PharmacologyReport(mode, conc, occ_report, sub_report, unavailable, factor, no_effect, sorted(eq_only))
    return new, report


def _is_mono(release: Release, model: SynapseModel) -> bool:
    sp = release.species or model.species_names[0]
    return sp in MONOAMINES


# ======================================================================================================
# autoreceptors

def tonic_autoreceptor_occupancy(ambient_M: float, kd_M: float, unblocked_clearance_fraction: float = 1.0) -> float:
    """o₀ = S/(S + K_D) with S = ambient/r (r: fraction of transporter clearance left unblocked)."""
    if not kd_M > 0:
        raise ModelError("autoreceptor K_D", kd_M, "must be > 0")
    if ambient_M <= 0:
        return 0.0
    r = max(float(unblocked_clearance_fraction), 1e-12)
    s = ambient_M / r
    return s / (s + kd_M)


def feedback_probabilities(times_ms, base_probability: float, gain: float, tau_ms: float,
                           occupancy_per_release: float, tonic_occupancy: float = 0.0) -> list[float]:
    """Release probability of each stimulus under open-loop autoreceptor feedback (module docstring):
    p_k = p·(1 − g·o_k), o_k = 1 − (1 − o₀)·exp(−q Σ_{j<k} p_j e^{−(t_k − t_j)/τ})."""
    if not 0 <= gain <= 1:
        raise ModelError("autoreceptor.gain", gain, "must be in [0, 1] (fractional reduction at full occupancy)")
    if not tau_ms > 0:
        raise ModelError("autoreceptor.tau_ms", tau_ms, "must be > 0")
    if occupancy_per_release < 0:
        raise ModelError("autoreceptor.occupancy_per_release", occupancy_per_release, "must be >= 0")
    probs = []
    for k, tk in enumerate(times_ms):
        drive = sum(pj * math.exp(-(tk - tj) / tau_ms) for tj, pj in zip(times_ms[:k], probs))
        o = 1.0 - (1.0 - tonic_occupancy) * math.exp(-occupancy_per_release * drive)
        probs.append(base_probability * (1.0 - gain * o))
    return probs


def apply_autoreceptor(model: SynapseModel, receptor: str, gain: float, tau_ms: float, occupancy_per_release: float,
                       ambient_M: float = 0.0, unblocked_clearance_fraction: float = 1.0,
                       affinity_factor: float = 1.0) -> SynapseModel:
    """A copy of ``model`` whose releases and trains carry autoreceptor-lowered release
    probabilities. Trains are expanded into single releases (one per stimulus) with their own
    probabilities. ``receptor`` is a library receptor (its K_D, divided by ``affinity_factor``, sets
    the tonic occupancy)."""
    rec = library.receptor(receptor, "autoreceptor.receptor")
    if rec.kd_M is None:
        raise ModelError("autoreceptor.receptor", receptor, "must be a one-site receptor with a K_D")
    if not rec.autoreceptor:
        autos = [n for n in library.names("receptors") if library.receptor(n).autoreceptor]
        raise ModelError("autoreceptor.receptor", receptor, f"is not a presynaptic autoreceptor; use one of {autos}")
    if gain == 0:
        return model
    o0 = tonic_autoreceptor_occupancy(ambient_M, rec.kd_M / affinity_factor, unblocked_clearance_fraction)
    releases = [dataclasses.replace(r, probability=r.probability * (1.0 - gain * o0)) for r in model.releases]
    for tr in model.trains:
        singles = list(tr.releases())
        times = [r.time_ms for r in singles]
        probs = feedback_probabilities(times, tr.release_probability * tr.vesicle.probability, gain, tau_ms,
                                       occupancy_per_release, o0)
        releases += [dataclasses.replace(r, probability=p) for r, p in zip(singles, probs)]
    return dataclasses.replace(model, releases=releases, trains=[])


# ======================================================================================================
# reporting from runs

def blocked_fractions(result, model) -> dict:
    """Fraction of each site group's sites in each drug state, from one run's series.

    ``model`` is the SynapseModel (or CompiledModel) that was run. Returns
    ``{"<label>:<state>": time-averaged fraction}`` for every ``blocked:*`` and ``bound:*`` state,
    plus ``"<label>:blocked@0"`` (fraction blocked at t = 0, as drawn for this run) and
    ``"<label>:blocked"`` (time-averaged total of the ``blocked:*`` states).
    """
    m = getattr(model, "model", model)
    series = result.series if hasattr(result, "series") else result
    out = {}
    for g in m.sites:
        drug_states = [s for s in g.scheme.states if s.startswith(("blocked:", "bound:"))]
        if not drug_states:
            continue
        cols = [f"{g.label}:{s}" for s in g.scheme.states]
        n = series[cols].iloc[0].sum()
        if n == 0:
            continue
        total0, total = 0.0, np.zeros(len(series))
        for s in drug_states:
            v = series[f"{g.label}:{s}"].to_numpy() / n
            out[f"{g.label}:{s}"] = float(v.mean())
            if s.startswith("blocked:"):
                total0 += v[0]
                total = total + v
        out[f"{g.label}:blocked@0"] = float(total0)
        out[f"{g.label}:blocked"] = float(total.mean())
    return out


def blocked_fraction_table(ensemble):
    """One row per run of an :class:`~mcsyn.Ensemble` with :func:`blocked_fractions`."""
    import pandas as pd
    rows = []
    for i in range(ensemble.series.shape[0]):
        rows.append({"run": i, **blocked_fractions(ensemble.run_series(i), ensemble.model)})
    return pd.DataFrame(rows)


def clearance_rate_estimate(result, model) -> float:
    """First-order uptake rate (s⁻¹) of one run, from its time series, for the linear regime.

    For transporter cycles (T ⇌ TS → Ti) at low concentration the rate of uptake is
    k_tr·[TS] and d[TS]/dt = kon[T]·free − (koff + k_tr)[TS]; integrating over the run gives

        k̂ = (taken_up + bound_end·k_tr/(koff + k_tr)) / ∫ free dt,

    an unbiased estimate of kon[T]·k_tr/(koff + k_tr) = Vmax/Km, whatever the geometry and
    escape (the free molecules see the same uniform transporter density). Uses the
    transporter groups' own rates; with several groups their bound molecules are weighted by each
    group's uptake probability.
    """
    m = getattr(model, "model", model)
    s = result.series if hasattr(result, "series") else result
    t_s = s.index.to_numpy() * 1e-3
    free = s["free"].to_numpy()
    integral = float(np.sum(0.5 * (free[1:] + free[:-1]) * np.diff(t_s)))
    taken = float(s["taken_up"].iloc[-1])
    pending = 0.0
    for g in m.sites:
        rates = _cycle_rates(g.scheme)
        if rates is None:
            continue
        kon, koff, ktr, kret = rates[:4]
        col = f"{g.label}:bound"
        if col in s:
            pending += float(s[col].iloc[-1]) * ktr / (koff + ktr)
    if integral <= 0:
        return float("nan")
    return (taken + pending) / integral
