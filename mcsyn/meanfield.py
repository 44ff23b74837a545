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

from .compile import AVOGADRO_PER_MOL, UM3_PER_L, CompiledModel, compile_model
from .model import SynapseModel

COMPARTMENTS = ("cleft", "band", "volume")
_SITE_COMPARTMENT = {"postsynaptic": "cleft", "presynaptic": "cleft", "band_postsynaptic": "band",
                     "band_presynaptic": "band", "volume": "volume"}


def _compartment_volumes_um3(model: SynapseModel) -> dict:
    g = model.geometry
    out = {"cleft": math.pi * g.cleft_radius_um ** 2 * g.cleft_height_um, "band": 0.0, "volume": 0.0}
    if g.outside == "band":
        out["band"] = math.pi * (g.band_outer_radius_um ** 2 - g.cleft_radius_um ** 2) * g.cleft_height_um
    if g.outside == "volume":
        out["volume"] = g.volume_fraction * 4.0 / 3.0 * math.pi * (g.domain_radius_um ** 3 - g.varicosity_radius_um ** 3)
    return out


def _annulus_exit_time_ms(r_in, r_out, d):
    """Mean exit time through r_out of a particle started uniformly in the annulus r_in < r < r_out,
    reflecting at r_in (solution of D ∇²T = −1 averaged over the annulus)."""
    r = np.linspace(r_in, r_out, 2001)
    t = (r_out ** 2 - r ** 2) / (4 * d) + r_in ** 2 / (2 * d) * np.log(r / r_out)
    return float(np.trapezoid(t * r, r) / np.trapezoid(r, r))


def _transfer_rates_per_ms(model: SynapseModel, d_um2_per_ms: float):
    """First-order rates (per ms) cleft→outside, outside→cleft, band→escaped, volume→escaped."""
    g = model.geometry
    vols = _compartment_volumes_um3(model)
    out = {"cleft_out": 0.0, "back_in": 0.0, "band_escape": 0.0, "volume_escape": 0.0}
    if g.outside == "closed":
        return out
    out["cleft_out"] = 8.0 * d_um2_per_ms / g.cleft_radius_um ** 2
    if g.outside == "band":
        out["back_in"] = out["cleft_out"] * vols["cleft"] / vols["band"]
        if g.band_outer_boundary == "absorbing":
            out["band_escape"] = 1.0 / _annulus_exit_time_ms(g.cleft_radius_um, g.band_outer_radius_um, d_um2_per_ms)
    if g.outside == "volume":
        if model.volume_enters_cleft:
            out["back_in"] = out["cleft_out"] * vols["cleft"] / vols["volume"]
        d_star = d_um2_per_ms / g.tortuosity ** 2
        if g.domain_boundary == "absorbing":
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
    d = m.species[0].diffusion_um2_per_ms
    vols = _compartment_volumes_um3(m)
    rates = _transfer_rates_per_ms(m, d)
    t_end = m.timing.duration_ms
    if t_eval_ms is None:
        t_eval_ms = cm.sample_times_ms

    # state layout: [free cleft, band, volume, taken_up, escaped, degraded, effluxed, released, site states...]
    n_fixed = 8
    n_states = len(cm.state_labels)
    deg = {c: 0.0 for c in COMPARTMENTS}
    for dg in m.degradation:
        for c in (COMPARTMENTS if dg.region == "all" else (dg.region,)):
            deg[c] += dg.rate_per_s * 1e-3

    # per-transition tables over global state indices
    reactions = []      # (kind, source, target, rate per ms [per M for bind], compartment)
    for (first, names), grp in zip(cm.group_states, m.sites):
        comp = COMPARTMENTS.index(_SITE_COMPARTMENT[grp.location])
        index = {name: first + j for j, name in enumerate(names)}
        for tr in grp.scheme.transitions:
            reactions.append((tr.kind, index[tr.source], index[tr.target], tr.rate * 1e-3, comp))
    molar_per_molecule = [UM3_PER_L / (AVOGADRO_PER_MOL * v) if v > 0 else 0.0
                          for v in (vols["cleft"], vols["band"], vols["volume"])]

    y0 = np.zeros(n_fixed + n_states)
    counts = np.zeros(n_states)
    # expected initial states from the configured fractions
    for (first, names), grp in zip(cm.group_states, m.sites):
        n = cm.site_count(grp)
        fr = np.array([grp.initial_state_fractions.get(s, 0.0) for s in names])
        fr[0] += 1.0 - fr.sum()
        counts[first:first + len(names)] = n * fr
    y0[n_fixed:] = counts

    # releases: impulses at their times and exponential pore inputs
    events = []
    for rel in list(m.releases) + [r for tr in m.trains for r in tr.releases()]:
        amount = rel.molecules * rel.probability
        comp = 2 if rel.into == "volume" else 0
        events.append((rel.time_ms, amount, comp, rel.pore_tau_ms))
    events.sort()

    def rhs(t, y):
        dy = np.zeros_like(y)
        free = y[0:3]
        # pores still emptying
        for t0, amount, comp, tau in events:
            if tau > 0 and t >= t0:
                flow = amount / tau * math.exp(-(t - t0) / tau)
                dy[comp] += flow
                dy[7] += flow
        # transport
        out = rates["cleft_out"] * free[0]
        back = rates["back_in"] * free[2 if m.geometry.outside == "volume" else 1]
        dy[0] += back - out
        if m.geometry.outside == "band":
            dy[1] += out - back - rates["band_escape"] * free[1]
            dy[4] += rates["band_escape"] * free[1]
        elif m.geometry.outside == "volume":
            dy[2] += out - back
        else:
            dy[4] += out   # open rim
        dy[2] -= rates["volume_escape"] * free[2]
        dy[4] += rates["volume_escape"] * free[2]
        for c in range(3):
            dy[c] -= deg[COMPARTMENTS[c]] * free[c]
            dy[5] += deg[COMPARTMENTS[c]] * free[c]
        sites = y[n_fixed:]
        for kind, src, dst, k, comp in reactions:
            if kind == "bind":
                flux = k * free[comp] * molar_per_molecule[comp] * sites[src]
                dy[comp] -= flux
            else:
                flux = k * sites[src]
                if kind == "unbind":
                    dy[comp] += flux
                elif kind == "uptake":
                    dy[3] += flux
                elif kind == "degrade":
                    dy[5] += flux
                elif kind == "efflux":
                    dy[comp] += flux
                    dy[6] += flux
                    dy[7] += flux
            dy[n_fixed + src] -= flux
            dy[n_fixed + dst] += flux
        return dy

    # integrate piecewise between instantaneous releases so that each impulse is exact
    instants = sorted({t0 for t0, _, _, tau in events if tau == 0})
    bounds = [0.0] + [t for t in instants if 0 < t < t_end] + [t_end]
    y = y0.copy()
    out_t, out_y = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        for t0, amount, comp, tau in events:
            if tau == 0 and t0 == a:
                y[comp] += amount
                y[7] += amount
        mask = (t_eval_ms >= a) & ((t_eval_ms < b) | ((b == t_end) & (t_eval_ms <= b)))
        sol = solve_ivp(rhs, (a, b), y, method="LSODA", t_eval=t_eval_ms[mask], rtol=rtol, atol=atol)
        if not sol.success:
            raise RuntimeError(f"mean-field integration failed on [{a}, {b}] ms: {sol.message}")
        out_t.append(sol.t)
        out_y.append(sol.y.T)
        end = solve_ivp(rhs, (a, b), y, method="LSODA", t_eval=[b], rtol=rtol, atol=atol)
        y = end.y[:, -1]
    t = np.concatenate(out_t)
    yy = np.concatenate(out_y)
    frame = {"released": yy[:, 7], "free_cleft": yy[:, 0], "free_band": yy[:, 1], "free_volume": yy[:, 2],
             "taken_up": yy[:, 3], "escaped": yy[:, 4], "degraded": yy[:, 5], "effluxed": yy[:, 6]}
    frame["free"] = yy[:, 0] + yy[:, 1] + yy[:, 2]
    frame["bound"] = yy[:, n_fixed:] @ cm.state_ligands.astype(float)
    for j, label in enumerate(cm.state_labels):
        frame[label] = yy[:, n_fixed + j]
    return pd.DataFrame(frame, index=pd.Index(t, name="time_ms"))
