"""Plasma and free brain concentrations of a regimen: one- and two-compartment models.

The disposition of a drug is its concentration after a unit intravenous bolus, a sum of
exponentials ``sum_i a_i exp(-lambda_i t)`` (one term for one compartment, two for two). Every
regimen is then a superposition of closed forms: a bolus gives the impulse response, a first-order
oral input its convolution with ``ka exp(-ka t)`` (the Bateman function for one compartment), an
infusion its convolution with a rectangle. Differences of exponentials are written as
``t exp(-min t) (1 - exp(-|b - a| t))/(|b - a| t)``, exact and stable for ka = ke.
:func:`concentrations` with ``method="ode"`` integrates the same system with
:func:`scipy.integrate.solve_ivp`, which also carries the metabolites (they have no closed form
here). Free plasma = total x free fraction; free brain = free plasma x Kp,uu (instantaneous
equilibration across the blood-brain barrier, an approximation for hours-long kinetics).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ModelError
from .regimen import Regimen


# Spans between dosing events shorter than this are not integrated (nothing changes in 0.4 us);
# solve_ivp does not return from a span of 5e-324 h.
TINY_SPAN_H = 1e-10


@dataclass(frozen=True)
class OneCompartment:
    """Volume ``volume_L`` and first-order elimination ``elimination_rate_per_h``."""

    volume_L: float
    elimination_rate_per_h: float

    @property
    def clearance_L_per_h(self) -> float:
        return self.volume_L * self.elimination_rate_per_h

    @property
    def central_volume_L(self) -> float:
        return self.volume_L

    def impulse(self) -> tuple[np.ndarray, np.ndarray]:
        """(a_i per L, lambda_i per h): concentration per mol of an intravenous bolus."""
        return np.array([1.0 / self.volume_L]), np.array([self.elimination_rate_per_h])

    def matrix(self) -> np.ndarray:
        """d(amounts)/dt = matrix @ amounts; amount 0 is the central (plasma) compartment."""
        return np.array([[-self.elimination_rate_per_h]])


@dataclass(frozen=True)
class TwoCompartment:
    """Central and peripheral compartments, elimination from the central one."""

    central_volume_L: float
    peripheral_volume_L: float
    clearance_L_per_h: float
    intercompartmental_clearance_L_per_h: float

    def __post_init__(self):
        for key in ("central_volume_L", "peripheral_volume_L", "clearance_L_per_h",
                    "intercompartmental_clearance_L_per_h"):
            value = getattr(self, key)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and math.isfinite(value) and value > 0):
                raise ModelError(f"two_compartment.{key}", value, "must be a finite number > 0")

    def _rates(self):
        v1, v2 = self.central_volume_L, self.peripheral_volume_L
        return (self.clearance_L_per_h / v1, self.intercompartmental_clearance_L_per_h / v1,
                self.intercompartmental_clearance_L_per_h / v2)

    def impulse(self) -> tuple[np.ndarray, np.ndarray]:
        """(A/V1, B/V1 per L; alpha, beta per h) of C(t) = (A e^-alpha t + B e^-beta t)/V1."""
        k10, k12, k21 = self._rates()
        total, product = k10 + k12 + k21, k10 * k21
        root = math.sqrt(total * total - 4.0 * product)
        alpha = 0.5 * (total + root)
        beta = product / alpha              # the smaller root without cancellation
        a = (alpha - k21) / (alpha - beta)
        return np.array([a, 1.0 - a]) / self.central_volume_L, np.array([alpha, beta])

    def matrix(self) -> np.ndarray:
        k10, k12, k21 = self._rates()
        return np.array([[-(k10 + k12), k21], [k12, -k21]])


def disposition_of(regimen: Regimen):
    """The disposition the library gives for ``regimen`` (its body mass): two compartments where
    the entry gives them (:data:`~.data.TWO_COMPARTMENT_FIELDS`), else one."""
    pk = regimen.pk()
    if pk.two_compartment:
        mass = regimen.body_mass_kg
        if mass is None:
            regimen.volume_L()                  # the ModelError that asks for the body mass
        return TwoCompartment(pk.central_volume_L_per_kg * mass, pk.peripheral_volume_L_per_kg * mass,
                              pk.clearance_L_per_h_per_kg * mass, pk.intercompartmental_clearance_L_per_h_per_kg * mass)
    return OneCompartment(regimen.volume_L(), pk.elimination_rate_per_h)


def _phi(x):
    """(1 - e^-x)/x for x >= 0, 1 at 0."""
    x = np.asarray(x, dtype=float)
    small = x < 1e-9
    return np.where(small, 1.0 - 0.5 * x, -np.expm1(-x) / np.where(small, 1.0, x))


def exp_difference(a: float, b: float, t):
    """(e^-a t - e^-b t)/(b - a) for t >= 0 (symmetric in a, b; t e^-a t when a = b)."""
    lo, hi = min(a, b), max(a, b)
    t = np.asarray(t, dtype=float)
    return t * np.exp(-lo * t) * _phi((hi - lo) * t)


@dataclass(frozen=True)
class _Input:
    """A regimen reduced to numbers once (amounts parsed, ka solved) for fast evaluation."""

    route: str
    amount: float                 # mol per dose, or mol/h of infusion
    starts: np.ndarray            # h
    duration: float               # h (infusions)
    bioavailability: float
    ka: float
    coef: np.ndarray
    lam: np.ndarray


def _prepare(regimen: Regimen, disp) -> _Input:
    pk = regimen.pk()
    oral = regimen.route == "oral"
    coef, lam = disp.impulse()
    return _Input(regimen.route, regimen.amount_mol, regimen.dose_times_h(), regimen.duration_h or 0.0,
                  pk.require("bioavailability", "an oral regimen") if oral else 1.0,
                  pk.absorption_rate() if oral else 0.0, coef, lam)


def _unit_response(inp: _Input, s: np.ndarray) -> np.ndarray:
    """Plasma concentration (M) per mol of one dose (per mol/h of infusion) at times s >= 0 after it."""
    out = np.zeros_like(s)
    for a, lm in zip(inp.coef, inp.lam):
        if inp.route == "oral":
            out += inp.bioavailability * a * inp.ka * exp_difference(lm, inp.ka, s)
        elif inp.route == "iv_bolus":
            out += a * np.exp(-lm * s)
        else:
            rising = s * _phi(lm * s)
            falling = inp.duration * _phi(lm * inp.duration) * np.exp(-lm * np.maximum(s - inp.duration, 0.0))
            out += a * np.where(s < inp.duration, rising, falling)
    return out


def _evaluate(inp: _Input, t: np.ndarray) -> np.ndarray:
    total = np.zeros_like(t)
    for t0 in inp.starts:
        after = t >= t0
        total[after] += inp.amount * _unit_response(inp, t[after] - t0)
    return total


def _times(times_h) -> np.ndarray:
    t = np.atleast_1d(np.asarray(times_h, dtype=float))
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ModelError("times_h", times_h, "must be a non-empty list of finite times >= 0 (h)")
    return t


def plasma_concentration(regimen: Regimen, times_h, disposition=None) -> np.ndarray:
    """Total plasma concentration of the parent (M) at ``times_h`` (closed form, superposition)."""
    return _evaluate(_prepare(regimen, disposition or disposition_of(regimen)), _times(times_h))


def brain_free_function(regimen: Regimen, disposition=None):
    """A fast function t_h -> free brain concentration of the parent (M), for ODE right-hand sides."""
    pk = regimen.pk()
    factor = pk.require("free_fraction_plasma", "free concentrations") * pk.require(
        "brain_to_plasma_free_ratio", "brain concentrations")
    inp = _prepare(regimen, disposition or disposition_of(regimen))
    return lambda t_h: factor * _evaluate(inp, np.atleast_1d(np.asarray(t_h, dtype=float)))


def _inputs(regimen: Regimen):
    """Events (time_h, state index, amount mol) and infusion pieces (start, stop, rate mol/h)."""
    pk, amount = regimen.pk(), regimen.amount_mol
    events, pieces = [], []
    for t0 in regimen.dose_times_h():
        if regimen.route == "oral":
            events.append((t0, "gut", amount * pk.require("bioavailability", "an oral regimen")))
        elif regimen.route == "iv_bolus":
            events.append((t0, "central", amount))
        else:
            pieces.append((t0, t0 + regimen.duration_h, amount))
    return events, pieces


def _system(regimen: Regimen, disp):
    """Matrix of the amounts (gut, disposition compartments, metabolites) and the state layout."""
    pk = regimen.pk()
    n_disp = disp.matrix().shape[0]
    mets = pk.metabolites
    n = 1 + n_disp + len(mets)
    m = np.zeros((n, n))
    ka = pk.absorption_rate() if regimen.route == "oral" else 0.0
    m[0, 0], m[1, 0] = -ka, ka
    m[1:1 + n_disp, 1:1 + n_disp] = disp.matrix()
    k10 = disp.clearance_L_per_h / disp.central_volume_L
    for j, met in enumerate(mets):
        i = 1 + n_disp + j
        m[i, 1] = met.fraction_formed * k10
        m[i, i] = -met.elimination_rate_per_h
    return m, n_disp


def _integrate(regimen: Regimen, disp, t: np.ndarray) -> np.ndarray:
    """Amounts (mol) of every state at times t, by solve_ivp between dosing events."""
    from scipy.integrate import solve_ivp   # slow to import; only the ODE path needs it
    m, _ = _system(regimen, disp)
    events, pieces = _inputs(regimen)
    end = float(t.max())
    cuts = sorted({0.0, end} | {e[0] for e in events if e[0] < end}
                  | {p for pc in pieces for p in pc[:2] if p < end})
    state, out = np.zeros(m.shape[0]), np.zeros((t.size, m.shape[0]))
    atol = 1e-14 * regimen.amount_mol * max(1.0, regimen.duration_h or 1.0)
    for a, b in zip(cuts, cuts[1:] + [np.inf]):
        for t0, where, amount in events:
            if t0 == a:
                state[0 if where == "gut" else 1] += amount
        u = np.zeros_like(state)
        u[1] = sum(rate for start, stop, rate in pieces if start <= a < stop)
        sel = (t >= a) & (t < b)
        if not np.isfinite(b):                 # the last cut is the last time asked for
            out[sel] = state
            break
        if b - a < TINY_SPAN_H:                # solve_ivp does not return from a subnormal span
            out[sel] = state
            continue
        when = np.union1d(t[sel], [b])
        sol = solve_ivp(lambda _, y: m @ y + u, (a, b), state, method="LSODA", t_eval=when,
                        rtol=1e-10, atol=atol, jac=lambda *_: m)
        if not sol.success:
            raise RuntimeError(f"solve_ivp failed between {a} h and {b} h: {sol.message}")
        out[sel] = sol.y.T[np.searchsorted(when, t[sel])]
        state = sol.y[:, -1]
    return out


def concentrations(regimen: Regimen, times_h, method: str = "closed_form", disposition=None) -> pd.DataFrame:
    """Long table of concentrations (M): ``time_h, species, plasma_total_M, plasma_free_M,
    brain_free_M``, one row per time and species (the parent, then its metabolites).

    ``method`` "closed_form" gives the parent by superposition of closed forms and metabolites by
    ODE; "ode" integrates everything with solve_ivp. ``disposition`` overrides the library's one
    compartment (e.g. a :class:`TwoCompartment`)."""
    if method not in ("closed_form", "ode"):
        raise ModelError("method", method, "must be 'closed_form' or 'ode'")
    t = _times(times_h)
    disp = disposition or disposition_of(regimen)
    pk = regimen.pk()
    amounts = _integrate(regimen, disp, t) if (method == "ode" or pk.metabolites) else None
    if method == "closed_form":
        parent = plasma_concentration(regimen, t, disp)
    else:
        parent = amounts[:, 1] / disp.central_volume_L
    rows = [_species_frame(pk.name, t, parent, pk.require("free_fraction_plasma", "free concentrations"),
                           pk.require("brain_to_plasma_free_ratio", "brain concentrations"))]
    n_disp = disp.matrix().shape[0]
    mass = regimen.body_mass_kg
    for j, met in enumerate(pk.metabolites):
        c = amounts[:, 1 + n_disp + j] / (met.volume_of_distribution_L_per_kg * mass)
        rows.append(_species_frame(met.name, t, c, met.free_fraction_plasma, met.brain_to_plasma_free_ratio))
    return pd.concat(rows, ignore_index=True)


def _species_frame(name, t, total, free_fraction, kp_uu) -> pd.DataFrame:
    total = np.maximum(total, 0.0)     # round-off of a difference of exponentials can give -1e-30
    return pd.DataFrame({"time_h": t, "species": name, "plasma_total_M": total,
                         "plasma_free_M": total * free_fraction, "brain_free_M": total * free_fraction * kp_uu})


@dataclass(frozen=True)
class SteadyState:
    """The regimen repeated for ever (every ``interval_h``): plasma and free brain levels of the parent.

    ``accumulation_ratio`` is 1/(1 - e^(-lambda_z tau)) with the terminal rate lambda_z: the steady
    state over the first dose at the same time after it (exact for one compartment after
    absorption ends). ``time_to_90_percent_h`` is ln(10)/lambda_z. For a single infusion
    (``number == 1``) the steady state is that of the infusion continued: R/CL."""

    interval_h: float
    accumulation_ratio: float
    average_plasma_M: float
    peak_plasma_M: float
    trough_plasma_M: float
    time_of_peak_after_dose_h: float
    time_to_90_percent_h: float
    brain_free_per_plasma_total: float

    @property
    def average_brain_free_M(self) -> float:
        return self.average_plasma_M * self.brain_free_per_plasma_total

    @property
    def peak_brain_free_M(self) -> float:
        return self.peak_plasma_M * self.brain_free_per_plasma_total

    @property
    def trough_brain_free_M(self) -> float:
        return self.trough_plasma_M * self.brain_free_per_plasma_total


def _periodic_unit_response(inp: _Input, s: np.ndarray, tau: float) -> np.ndarray:
    """Sum over n >= 0 of the unit response at s + n tau (closed-form geometric series)."""
    out = np.zeros_like(s)
    geo = lambda rate: 1.0 / -np.expm1(-rate * tau)                       # noqa: E731
    for a, lm in zip(inp.coef, inp.lam):
        if inp.route == "iv_bolus":
            out += a * np.exp(-lm * s) * geo(lm)
        elif inp.route == "oral":
            ka, f = inp.ka, inp.bioavailability
            if abs(ka - lm) < 1e-6 * max(ka, lm):
                return _superposed(inp, s, tau)
            out += f * a * ka / (ka - lm) * (np.exp(-lm * s) * geo(lm) - np.exp(-ka * s) * geo(ka))
        else:
            dur = inp.duration
            plateau = -np.expm1(-lm * dur) / lm
            tail = plateau * np.exp(-lm * (s + tau - dur)) * geo(lm)       # earlier infusions, all ended
            out += a * np.where(s < dur, -np.expm1(-lm * s) / lm + tail, plateau * np.exp(-lm * (s - dur)) * geo(lm))
    return out


def _superposed(inp: _Input, s: np.ndarray, tau: float) -> np.ndarray:
    """Fallback for ka = lambda: sum enough earlier doses that the rest is below e^-30."""
    lam_min = min(inp.lam.min(), inp.ka)
    n = int(math.ceil(30.0 / (lam_min * tau))) + 1
    return sum(_unit_response(inp, s + k * tau) for k in range(n))


def steady_state(regimen: Regimen, disposition=None, n_points: int = 2001) -> SteadyState:
    """Steady state of ``regimen`` repeated every ``interval_h`` (closed form)."""
    disp = disposition or disposition_of(regimen)
    pk = regimen.pk()
    coef, lam = disp.impulse()
    lam_z = float(lam.min())
    brain = pk.require("free_fraction_plasma", "free concentrations") * pk.require(
        "brain_to_plasma_free_ratio", "brain concentrations")
    amount = regimen.amount_mol
    if regimen.route == "iv_infusion" and regimen.number == 1:
        css = amount / disp.clearance_L_per_h
        return SteadyState(math.inf, math.inf, css, css, css, math.nan, math.log(10.0) / lam_z, brain)
    tau = regimen.interval_h
    s = np.linspace(0.0, tau, n_points)
    c = amount * _periodic_unit_response(_prepare(regimen, disp), s, tau)
    dose = amount * (regimen.duration_h if regimen.route == "iv_infusion" else 1.0)
    if regimen.route == "oral":
        dose *= pk.require("bioavailability", "an oral regimen")
    i = int(np.argmax(c))
    return SteadyState(tau, 1.0 / -math.expm1(-lam_z * tau), dose / (disp.clearance_L_per_h * tau), float(c[i]),
                       float(c.min()), float(s[i]), math.log(10.0) / lam_z, brain)
