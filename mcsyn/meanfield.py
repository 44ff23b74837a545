"""A deterministic mean-field model of the same synapse, built from the same SynapseModel.

Compartments are well mixed: the cleft (volume π R_cleft² h), the band (π (R_outer² − R_cleft²) h)
and the extracellular volume (α · 4/3 π (R_domain³ − R_var³)). Every scheme transition becomes a
mass-action term: binding at k_on·[free in the site's compartment]·(sites in the source state),
first-order transitions at their rates. Molecules move between compartments at first-order rates
taken from the slowest diffusion mode of each compartment:

* cleft → outside: 8D/R_cleft² (mean exit time from a disk started uniformly is R²/8D); with a band,
  or a volume that molecules enter the cleft from (``SynapseModel.volume_enters_cleft``), the back
  flux is set by detailed balance (the exchange conserves concentration, not numbers);
* band → escaped (absorbing R_outer): 1/τ with τ the mean exit time from the annulus;
* volume → escaped: π²D*/R_domain² (slowest mode of an absorbing sphere; none when it reflects).

These are approximations wherever concentration gradients inside a compartment matter (a cleft
right after release, the volume near a release site). In a regime where diffusion is fast against
the reactions, the compartments are nearly uniform and the ensemble mean of Monte Carlo runs agrees
with this model (``tests/test_meanfield.py``). Use it for quick estimates and as a cross-check.

Releases enter as their expected content (molecules × probability), instantaneously or through a
fusion pore (exponential input). Output columns match the Monte Carlo time series.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

from . import geometry
from .compile import AVOGADRO_PER_MOL, UM3_PER_L, CompiledModel, compile_model
from .geometry import COMPARTMENTS
from .errors import ModelError
from .model import SynapseModel

# state layout: [free cleft, band, volume, taken_up, escaped, degraded, effluxed, released, site states...]
FREE = {c: i for i, c in enumerate(COMPARTMENTS)}
TAKEN_UP, ESCAPED, DEGRADED, EFFLUXED, RELEASED = 3, 4, 5, 6, 7
N_FIXED = 8


def _compartment_volumes_um3(model: SynapseModel) -> dict:
    return geometry.compartment_volumes_um3(model.geometry)


def _annulus_exit_time_ms(r_in, r_out, d):
    """Mean exit time through r_out of a particle started uniformly in the annulus r_in < r < r_out,
    reflecting at r_in (solution of D ∇²T = −1 averaged over the annulus)."""
    r = np.linspace(r_in, r_out, 2001)
    t = (r_out ** 2 - r ** 2) / (4 * d) + r_in ** 2 / (2 * d) * np.log(r / r_out)
    return float(np.trapezoid(t * r, r) / np.trapezoid(r, r))


def _transfer_rates_per_ms(model: SynapseModel, d_um2_per_ms: float):
    """First-order rates (per ms) cleft→outside, outside→cleft, band→escaped, volume→escaped.

    The exchange rule per outside kind: nothing leaves a cleft whose rim reflects; what leaves
    goes to the compartment beyond the cleft (or escapes); it comes back at the detailed-balance
    rate where molecules there enter the cleft (always from a band, from a volume with
    ``SynapseModel.volume_enters_cleft``); the outer compartment loses molecules through an
    absorbing rim (band) or domain edge (volume)."""
    g = model.geometry
    vols = _compartment_volumes_um3(model)
    out = {"cleft_out": 0.0, "back_in": 0.0, "band_escape": 0.0, "volume_escape": 0.0}
    beyond = geometry.beyond_cleft(g)
    if beyond is None and geometry.rim_action(g) == "reflect":
        return out
    out["cleft_out"] = 8.0 * d_um2_per_ms / g.cleft_radius_um ** 2
    if beyond == "band":
        out["back_in"] = out["cleft_out"] * vols["cleft"] / vols["band"]
        if geometry.rim_action(g) == "absorb":
            out["band_escape"] = 1.0 / _annulus_exit_time_ms(g.cleft_radius_um, geometry.rim_radius_um(g),
                                                             d_um2_per_ms)
    if beyond == "volume":
        if model.volume_enters_cleft:
            out["back_in"] = out["cleft_out"] * vols["cleft"] / vols["volume"]
        d_star = d_um2_per_ms / g.tortuosity ** 2
        if geometry.domain_absorbs(g):
            out["volume_escape"] = math.pi ** 2 * d_star / g.domain_radius_um ** 2
    return out


def mean_field(model, t_eval_ms=None, rtol=1e-6, atol=1e-6) -> pd.DataFrame:
    """Integrate the mean-field model; returns a DataFrame indexed by ``time_ms`` with the Monte
    Carlo series columns (``free_cleft``, ``free_band``, ``free_volume``, ``free``, ``bound``,
    ``taken_up``, ``escaped``, ``degraded``, ``effluxed``, ``released`` and ``<group>:<state>``).
    One transmitter species is supported."""
    cm = model if isinstance(model, CompiledModel) else compile_model(model)
    m = cm.model
    if len(m.species) != 1:
        raise ValueError(f"species = {m.species_names!r} is not supported by the mean-field model: "
                         "it handles one transmitter species")
    if getattr(m, "rate_schedules", None):
        raise ModelError("rate_schedules", len(m.rate_schedules),
                         "the mean-field model uses constant rates; it cannot follow a drug concentration "
                         "that changes during the run (remove the schedule or use the Monte Carlo run)")
    if getattr(m, "feedback", None) is not None and m.feedback.gain > 0:
        raise ModelError("feedback", m.feedback, "the mean-field model has no closed-loop autoreceptor feedback "
                         "(each stimulus's release follows the run's own activation); set gain 0 or use the "
                         "Monte Carlo run")
    if t_eval_ms is None:
        t_eval_ms = cm.sample_times_ms
    events = _release_events(m)
    rhs = _right_hand_side(cm, events)
    t, y = _integrate(rhs, _initial_state(cm), events, t_eval_ms, m.timing.duration_ms, rtol, atol)
    return _frame(cm, t, y)


def _degradation_per_ms(model) -> dict:
    deg = {c: 0.0 for c in COMPARTMENTS}
    for dg in model.degradation:
        for c in (COMPARTMENTS if dg.region == "all" else (dg.region,)):
            deg[c] += dg.rate_per_s * 1e-3
    return deg


def _reactions(cm) -> list:
    """Every scheme transition as (kind, source, target, rate per ms [per M for bind], compartment),
    over global state indices."""
    reactions = []
    for (first, names), grp in zip(cm.group_states, cm.model.sites):
        comp = FREE[geometry.LOCATION_COMPARTMENT[grp.location]]
        index = {name: first + j for j, name in enumerate(names)}
        for tr in grp.scheme.transitions:
            reactions.append((tr.kind, index[tr.source], index[tr.target], tr.rate * 1e-3, comp))
    return reactions


def _initial_state(cm) -> np.ndarray:
    """No free molecules; site states at their expected initial fractions."""
    y0 = np.zeros(N_FIXED + len(cm.state_labels))
    for (first, names), grp in zip(cm.group_states, cm.model.sites):
        n = cm.site_count(grp)
        fr = np.array([grp.initial_state_fractions.get(s, 0.0) for s in names])
        fr[0] += 1.0 - fr.sum()
        y0[N_FIXED + first:N_FIXED + first + len(names)] = n * fr
    return y0


def _release_events(m) -> list:
    """(time_ms, expected molecules, compartment index, pore time constant), sorted."""
    events = []
    for rel in list(m.releases) + [r for tr in m.trains for r in tr.releases()]:
        amount = rel.molecules * rel.probability
        comp = FREE["volume"] if rel.into == "volume" else FREE["cleft"]
        events.append((rel.time_ms, amount, comp, rel.pore_tau_ms))
    events.sort()
    return events


def _right_hand_side(cm, events):
    m = cm.model
    g = m.geometry
    rates = _transfer_rates_per_ms(m, m.species[0].diffusion_um2_per_ms)
    deg = _degradation_per_ms(m)
    reactions = _reactions(cm)
    vols = _compartment_volumes_um3(m)
    molar_per_molecule = [UM3_PER_L / (AVOGADRO_PER_MOL * vols[c]) if vols[c] > 0 else 0.0 for c in COMPARTMENTS]
    beyond = geometry.beyond_cleft(g)
    outer = FREE[beyond] if beyond is not None else FREE["band"]      # no outer compartment: back_in is 0
    receiver = FREE[beyond] if beyond is not None else ESCAPED        # where what leaves the cleft goes

    def rhs(t, y):
        dy = np.zeros_like(y)
        free = y[0:3]
        # pores still emptying
        for t0, amount, comp, tau in events:
            if tau > 0 and t >= t0:
                flow = amount / tau * math.exp(-(t - t0) / tau)
                dy[comp] += flow
                dy[RELEASED] += flow
        # transport
        out = rates["cleft_out"] * free[0]
        back = rates["back_in"] * free[outer]
        dy[0] += back - out
        dy[receiver] += out - back
        dy[1] -= rates["band_escape"] * free[1]
        dy[ESCAPED] += rates["band_escape"] * free[1]
        dy[2] -= rates["volume_escape"] * free[2]
        dy[ESCAPED] += rates["volume_escape"] * free[2]
        for c in range(3):
            dy[c] -= deg[COMPARTMENTS[c]] * free[c]
            dy[DEGRADED] += deg[COMPARTMENTS[c]] * free[c]
        sites = y[N_FIXED:]
        for kind, src, dst, k, comp in reactions:
            if kind == "bind":
                flux = k * free[comp] * molar_per_molecule[comp] * sites[src]
                dy[comp] -= flux
            else:
                flux = k * sites[src]
                if kind == "unbind":
                    dy[comp] += flux
                elif kind == "uptake":
                    dy[TAKEN_UP] += flux
                elif kind == "degrade":
                    dy[DEGRADED] += flux
                elif kind == "efflux":
                    dy[comp] += flux
                    dy[EFFLUXED] += flux
                    dy[RELEASED] += flux
            dy[N_FIXED + src] -= flux
            dy[N_FIXED + dst] += flux
        return dy
    return rhs


def _integrate(rhs, y0, events, t_eval_ms, t_end, rtol, atol):
    """Integrate piecewise between instantaneous releases so that each impulse is exact."""
    instants = sorted({t0 for t0, _, _, tau in events if tau == 0})
    bounds = [0.0] + [t for t in instants if 0 < t < t_end] + [t_end]
    y = y0.copy()
    out_t, out_y = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        for t0, amount, comp, tau in events:
            if tau == 0 and t0 == a:
                y[comp] += amount
                y[RELEASED] += amount
        mask = (t_eval_ms >= a) & ((t_eval_ms < b) | ((b == t_end) & (t_eval_ms <= b)))
        sol = solve_ivp(rhs, (a, b), y, method="LSODA", t_eval=t_eval_ms[mask], rtol=rtol, atol=atol)
        if not sol.success:
            raise RuntimeError(f"mean-field integration failed on [{a}, {b}] ms: {sol.message}")
        out_t.append(sol.t)
        out_y.append(sol.y.T)
        end = solve_ivp(rhs, (a, b), y, method="LSODA", t_eval=[b], rtol=rtol, atol=atol)
        y = end.y[:, -1]
    return np.concatenate(out_t), np.concatenate(out_y)


def _frame(cm, t, yy) -> pd.DataFrame:
    frame = {"released": yy[:, RELEASED], "free_cleft": yy[:, 0], "free_band": yy[:, 1], "free_volume": yy[:, 2],
             "taken_up": yy[:, TAKEN_UP], "escaped": yy[:, ESCAPED], "degraded": yy[:, DEGRADED],
             "effluxed": yy[:, EFFLUXED]}
    frame["free"] = yy[:, 0] + yy[:, 1] + yy[:, 2]
    frame["bound"] = yy[:, N_FIXED:] @ cm.state_ligands.astype(float)
    for j, label in enumerate(cm.state_labels):
        frame[label] = yy[:, N_FIXED + j]
    return pd.DataFrame(frame, index=pd.Index(t, name="time_ms"))
