"""Drugs applied to a :class:`~mcsyn.SynapseModel`: doses parsed once, occupancy, the report.

Every entry point (:func:`mcsyn.presets.build`, :meth:`mcsyn.config.SynapseConfig.build`, the
``--drug`` option of the command line, :func:`mcsyn.make_conditions`) reads a drug concentration
with :func:`parse_concentration`: a number (M), a quantity (``"25 nM"``) or an occupancy of a
target (``"80%SERT"``: the free concentration that alone occupies 80 % of SERT). A drug table
``{name: concentration}`` becomes ``{label: Dose}`` (:func:`parse_doses`) once, at the edge;
everything after works on :class:`Dose` values.

The mechanisms (competitive blocker, substrate/releaser, MAO inhibitor; at receptors antagonist,
inverse agonist and full or partial agonist) and the drug modes
(``"equilibrium"``, ``"kinetic"``, ``"acute"``) are documented in :mod:`mcsyn.mechanisms`;
:func:`apply_drugs` applies them. Chronic adaptation lives in :mod:`mcsyn.adaptation` and
autoreceptor feedback in :mod:`mcsyn.autoreceptor` (both names are also importable from here).
"""
from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import library
from .adaptation import Adaptation, _factor, _scale_affinity, _scale_group, apply_adaptation  # noqa: F401
from .autoreceptor import apply_autoreceptor, feedback_probabilities, tonic_autoreceptor_occupancy  # noqa: F401
from .errors import ModelError, PharmacologyWarning  # noqa: F401  (PharmacologyWarning: public here)
from .drug_schedule import attach_schedules, split_schedules
from .library import Drug, suggest
from .mechanisms import MODES, MONOAMINES, REGISTRY, DrugEffects, MaoInhibitor, SiteEdit, target_ki  # noqa: F401
from .model import SiteGroup, SynapseModel
from .schemes import transporter_cycle_rates
from .units import parse_quantity

_ki = target_ki

# ======================================================================================================
# drugs, concentrations and doses

# "80%SERT", "80 % SERT", "80%@SERT": an occupancy of a target
_OCCUPANCY = re.compile(r"\s*([0-9.]+(?:[eE][-+]?\d+)?)\s*%\s*@?\s*([A-Za-z][\w-]*)\s*")


class Dose(NamedTuple):
    """A drug and its free concentration: the one parsed form of a drug table entry."""

    drug: Drug
    concentration_M: float

    @property
    def label(self) -> str:
        return self.drug.label


def resolve_drug(name, custom_drugs: dict | None = None, field_name: str | None = None) -> Drug:
    """A :class:`~mcsyn.library.Drug` from a name (library or ``custom_drugs``) or a Drug itself."""
    if isinstance(name, Drug):
        return name
    if custom_drugs:
        for key, value in custom_drugs.items():
            if key == name:
                return value if isinstance(value, Drug) else Drug.from_dict(key, value, f"custom_drugs.{key}")
    return library.drug(name, field_name or f"drugs.{name}")


def parse_concentration(drug, value, field: str | None = None, custom_drugs: dict | None = None) -> float:
    """A drug concentration in M from a number (M), a quantity (``"25 nM"``) or an occupancy of a
    transporter or receptor (``"80%SERT"``, ``"80% SERT"``: the concentration that gives 80 %
    occupancy, from :func:`concentration_for_occupancy`). ``drug`` is a name or a Drug."""
    name = drug.label if isinstance(drug, Drug) else drug
    field = field or f"drugs.{name}"
    if isinstance(value, str):
        m = _OCCUPANCY.fullmatch(value)
        if m:
            occ = float(m.group(1)) / 100.0
            if not (0 < occ < 1):
                raise ModelError(field, value, "an occupancy must be strictly between 0% and 100%")
            return float(concentration_for_occupancy(drug, m.group(2), occ, custom_drugs))
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise ModelError(field, value, "a concentration must not be negative")
    return parse_quantity(value, "M", field)


def parse_drug_option(text: str, custom_drugs: dict | None = None):
    """``"NAME=CONC"`` (``CONC`` as in :func:`parse_concentration`) -> ``(name, concentration_M)``."""
    if "=" not in text:
        raise ValueError(f"drug {text!r} is not NAME=CONCENTRATION (e.g. fluoxetine=25nM or fluoxetine=80%SERT)")
    name, value = (s.strip() for s in text.split("=", 1))
    if not name:
        raise ValueError(f"drug {text!r} has no name before '='")
    return name, parse_concentration(name, value, f"--drug {name}", custom_drugs)


def parse_doses(drugs: dict | None, custom_drugs: dict | None = None) -> dict:
    """``{label: Dose}`` from ``{name: "50 nM" | "80%SERT" | number_in_M}``.

    Errors name the field (``drugs.<name>``): unknown drugs (with the closest names), missing or
    wrong units, negative concentrations, a drug listed twice."""
    out = {}
    for name, conc in (drugs or {}).items():
        f = f"drugs.{name}"
        d = resolve_drug(name, custom_drugs, f)
        c = parse_concentration(d, conc, f, custom_drugs)
        if d.label in out:
            raise ModelError(f, name, f"drug {d.label!r} is listed twice")
        out[d.label] = Dose(d, c)
    return out


parse_concentrations = parse_doses     # the earlier name (it returned (Drug, concentration) pairs: a Dose is one)


def occupancy_of(doses: dict, target: str, transmitter_M: float = 0.0, km_M: float | None = None) -> dict:
    """``{label: θ}`` over parsed ``doses`` at ``target``, competitive: θ_i = (C_i/K_i)/(1 + Σ_j C_j/K_j
    + S/Km); drugs that do not bind the target get 0."""
    ratios = {}
    for label, (d, c) in doses.items():
        k = target_ki(d, target)
        ratios[label] = c / k if k else 0.0
    denom = 1.0 + sum(ratios.values())
    if transmitter_M:
        if not km_M or km_M <= 0:
            raise ModelError("km_M", km_M, "needed (> 0) when the transmitter competes")
        denom += transmitter_M / km_M
    return {label: r / denom for label, r in ratios.items()}


def competitive_occupancy(concentrations: dict, target: str, transmitter_M: float = 0.0,
                          km_M: float | None = None, custom_drugs: dict | None = None) -> dict:
    """Equilibrium fraction of ``target`` occupied by each drug, competitive over all drugs present.

    Parameters
    ----------
    concentrations : dict
        ``{drug: concentration}`` (as in :func:`parse_concentration`).
    target : str
        Transporter or receptor name (``"SERT"``, ``"5-HT2C"``).
    transmitter_M, km_M : float
        Ambient transmitter and its Km at the target, when the transmitter competes.

    Returns
    -------
    dict
        ``{drug label: θ}`` (:func:`occupancy_of`).
    """
    return occupancy_of(parse_doses(concentrations, custom_drugs), target, transmitter_M, km_M)


def occupancy(drug, target: str, concentration, custom_drugs: dict | None = None) -> float:
    """Equilibrium occupancy of ``target`` by one drug alone: C/(C + Ki)."""
    d = resolve_drug(drug, custom_drugs)
    dose = Dose(d, parse_concentration(d, concentration, f"drugs.{d.label}", custom_drugs))
    return occupancy_of({d.label: dose}, target)[d.label]


def concentration_for_occupancy(drug, transporter: str, occupancy: float, custom_drugs: dict | None = None) -> float:
    """Free concentration (M) at which ``drug`` alone occupies ``occupancy`` of ``transporter``:
    C = Ki·θ/(1 − θ) (e.g. 80 % needs 4·Ki)."""
    d = resolve_drug(drug, custom_drugs)
    if not isinstance(occupancy, (int, float)) or isinstance(occupancy, bool) or not 0 <= occupancy < 1:
        raise ModelError("occupancy", occupancy, "must be a number in [0, 1)")
    k = target_ki(d, transporter)
    if k is None:
        name = library.canonical("transporters", transporter, "transporter") if transporter != "MAO" else "MAO"
        raise ModelError("transporter", name, f"{d.label} has no Ki at {name}; its targets: {sorted(d.targets())}")
    return k * occupancy / (1.0 - occupancy)


def vesicle_content_factor(concentrations: dict, custom_drugs: dict | None = None) -> float:
    """Product over MAO inhibitors of 1 + (f_max − 1)·C/(C + Ki_MAO)."""
    f = 1.0
    for d, c in parse_doses(concentrations, custom_drugs).values():
        if d.mechanism == MaoInhibitor.name:
            f *= MaoInhibitor.content_factor(d, c)
    return f


# ======================================================================================================
# applying drugs to a model

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
    schedules : dict
        ``{drug label: DrugSchedule}``: drugs whose concentration changes during the run
        (:mod:`mcsyn.drug_schedule`); the other fields hold their values at t = 0.
    """

    mode: str
    concentrations_M: dict
    occupancy: dict
    substrate_states: dict
    unavailable_fraction: dict
    vesicle_content_factor: float
    no_effect: list
    equilibrium_only: list
    schedules: dict = dataclasses.field(default_factory=dict)   # {drug label: DrugSchedule}; the rest is at t = 0

    def blocked_fraction(self, group: str) -> float:
        """Equilibrium fraction of ``group`` blocked by blockers (competitive formula; substrates,
        which cycle rather than block, are left out)."""
        subs = {st.partition(":")[2] for st in self.substrate_states.get(group, {}) if st.startswith("bound:")}
        return float(sum(v for k, v in self.occupancy.get(group, {}).items() if k not in subs))


def _apply_to_group(g: SiteGroup, doses: dict, mode: str, transmitter_M: float, effects: DrugEffects) -> SiteGroup:
    """``g`` with every drug that binds its library entry applied, mechanism by mechanism."""
    kind, name = library.scheme_entry(g.scheme.name)
    if kind is None:
        return g
    acting = {label: dose for label, dose in doses.items()
              if REGISTRY[dose.drug.mechanism].acts_on_sites and target_ki(dose.drug, name) is not None}
    if not acting:
        return g
    effects.acted.update(acting)
    cycle = transporter_cycle_rates(g.scheme)
    km = cycle.km_M if cycle is not None else None
    theta = occupancy_of(acting, name, transmitter_M if km else 0.0, km)
    site = SiteEdit(g.label, name, g.scheme.copy(), dict(g.initial_state_fractions),
                    sum(g.initial_state_fractions.values()), mode, cycle, theta, effects)
    for mech in REGISTRY.values():
        for label, (d, c) in acting.items():
            if d.mechanism == mech.name:
                mech.act_on_site(site, label, d, c)
    scheme, initial = site.finish()
    effects.occupancy[g.label] = theta
    if site.substrate_states is not None:
        effects.substrate_states[g.label] = site.substrate_states
    effects.unavailable_fraction[g.label] = site.unavailable
    return dataclasses.replace(g, scheme=scheme, initial_state_fractions=initial)


def apply_drugs(model: SynapseModel, drugs: dict | None, mode: str = "equilibrium", custom_drugs: dict | None = None,
                transmitter_M: float = 0.0, warn: bool = True):
    """Return ``(new_model, report)`` with ``drugs`` (``{name: concentration}``) applied.

    See :mod:`mcsyn.mechanisms` for the mechanisms and modes. ``transmitter_M`` is an ambient
    transmitter concentration that competes with blockers at transporters (equilibrium formula).
    The input model is not modified.
    """
    if mode not in MODES:
        suggest(mode, MODES, "drug mode", "mode")
    drugs, schedules = split_schedules(drugs, model.timing.duration_ms)     # schedules: C(0) here
    doses = parse_doses(drugs, custom_drugs)
    effects = DrugEffects()
    new = dataclasses.replace(model, sites=[_apply_to_group(g, doses, mode, transmitter_M, effects)
                                            for g in model.sites])
    for mech in REGISTRY.values():
        mine = {label: dose for label, dose in doses.items() if dose.drug.mechanism == mech.name}
        if mine:
            new = mech.act_on_model(new, mine, effects)
    for label, (d, c) in doses.items():
        if label not in effects.acted and label not in effects.no_effect:
            effects.no_effect[label] = (f"drug {label!r} has no effect: the synapse has none of its targets "
                                        f"{sorted(d.targets())} (site groups: {[g.label for g in model.sites]})")
    new, scheduled = attach_schedules(new, schedules, doses, mode, lambda name: resolve_drug(name, custom_drugs))
    if warn:
        for message in effects.no_effect.values():
            warnings.warn(message, PharmacologyWarning, stacklevel=2)
        if effects.equilibrium_only:
            warnings.warn(f"mode {mode!r}: {sorted(effects.equilibrium_only)} have no binding kinetics (koff_per_s) "
                          f"in the library and keep their equilibrium block", PharmacologyWarning, stacklevel=2)
    report = PharmacologyReport(mode, {label: c for label, (d, c) in doses.items()}, effects.occupancy,
                                effects.substrate_states, effects.unavailable_fraction,
                                effects.vesicle_content_factor, list(effects.no_effect),
                                sorted(effects.equilibrium_only), scheduled)
    return new, report


# ======================================================================================================
# reporting from runs

def blocked_fractions(result, model) -> dict:
    """Fraction of each site group's sites in each drug state, from one run's series.

    ``model`` is the SynapseModel (or CompiledModel) that was run. Returns
    ``{"<label>:<state>": time-averaged fraction}`` for every ``blocked:*``, ``bound:*`` and
    ``agonist:*`` state,
    plus ``"<label>:blocked@0"`` (fraction blocked at t = 0, as drawn for this run) and
    ``"<label>:blocked"`` (time-averaged total of the ``blocked:*`` states).
    """
    m = getattr(model, "model", model)
    series = result.series if hasattr(result, "series") else result
    out = {}
    for g in m.sites:
        drug_states = [s for s in g.scheme.states if s.startswith(("blocked:", "bound:", "agonist:"))]
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


def activation(result, model) -> dict:
    """``{group label: array}``: the activation of each site group with active states, per sample,
    as a fraction of its sites: Σ_states ε_state · n_state / N, with the weights of
    :meth:`~mcsyn.schemes.KineticScheme.activation_weights` (1 for the transmitter's open or active
    states, the drug's efficacy for an agonist-bound state)."""
    m = getattr(model, "model", model)
    series = result.series if hasattr(result, "series") else result
    out = {}
    for g in m.sites:
        weights = g.scheme.activation_weights()
        if not weights:
            continue
        n = series[[f"{g.label}:{s}" for s in g.scheme.states]].iloc[0].sum()
        active = sum(w * series[f"{g.label}:{s}"].to_numpy(float) for s, w in weights.items())
        out[g.label] = active / n if n else np.zeros(len(series))
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
        cycle = transporter_cycle_rates(g.scheme)
        if cycle is None:
            continue
        col = f"{g.label}:bound"
        if col in s:
            pending += float(s[col].iloc[-1]) * cycle.uptake_probability
    if integral <= 0:
        return float("nan")
    return (taken + pending) / integral
