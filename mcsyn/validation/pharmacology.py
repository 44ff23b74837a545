"""Pharmacology checks: the presets' transporters and drugs against their own claims.

Transporters: the dorsal-striatal DAT cycle recovers the bulk Michaelis–Menten constants it was
built from, clears a small release at its calibrated first-order rate Vmax/Km, and saturates at a
large release by as much as a deterministic reaction–diffusion solution of the same scheme
predicts. Drugs: competitive SERT occupancy and the 1/(1 − θ) slowing of uptake clearance.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.integrate import solve_ivp

from .. import drugs, library, presets
from ..compile import compile_model, kon_um3_per_s
from ..schemes import transporter_cycle_rates
from ..model import Geometry, Release, SiteGroup, SynapseModel, Timing
from ..simulate import run, run_one
from .framework import Z, register, stat_check
from .scenarios import MOLECULES_PER_M_UM3, _clearance_terms, _gaussian_ball_fraction, _parse, _sunflower


# ======================================================================================================
# transporters

def _preset_transporter(preset, label):
    """(model, site group, (kon, koff, ktr, kret, Ti state)) of a preset's transporter group."""
    model = presets.build(preset)
    groups = [g for g in model.sites if g.label == label]
    if not groups:
        raise LookupError(f"preset {preset!r} has no site group {label!r}")
    rates = transporter_cycle_rates(groups[0].scheme)
    if rates is None:
        raise LookupError(f"preset {preset!r} group {label!r} is not a transporter cycle")
    return model, groups[0], rates


def _bulk_targets(preset, label, model, group, rates):
    """(Vmax in M/s of ECS, Km in M, transporter concentration in M of ECS) claimed by the preset."""
    kcat, km = rates.kcat_per_s, rates.km_M
    t_ecs = group.density_per_um3 / (MOLECULES_PER_M_UM3 * model.geometry.volume_fraction)
    spec = presets.spec(preset)
    site = spec.get("sites", {}).get(label, {})
    vmax = _parse(site["vmax"], "M/s") if "vmax" in site else kcat * t_ecs
    return vmax, km, t_ecs, kcat


def _clamped_dat_slab(group, species, rates, km, kcat, s, n_mol, target_uptakes, window_ms, duration_ms):
    """A closed slab of height 0.3 R holding ``n_mol`` dopamine molecules at the concentration ``s``
    (M) with just enough of the group's carriers for ``target_uptakes`` uptakes in the window (so
    that uptake barely depletes the clamp), carriers started near their steady state at ``s``, the
    step as long as the slab allows. Returns (model, number of carriers, slab volume in µm³)."""
    kon, koff, ktr, kret, ti = rates[:5]
    d = species.diffusion_um2_per_ms
    volume = n_mol / (s * MOLECULES_PER_M_UM3)
    radius = (volume / (0.3 * math.pi)) ** (1 / 3)          # slab of height 0.3 R
    h = 0.3 * radius
    sigma_max = min(radius / 5.0, h / 1.5)
    dt_us = max(x for x in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)
                if math.sqrt(2 * d * x * 1e-3) <= sigma_max)
    f = s / (s + km)
    n_sites = int(round(target_uptakes / (kcat * f * window_ms * 1e-3)))
    # start the carriers near their steady state at S: T : TS : Ti = (koff + ktr)/(kon S) : 1 : ktr/kret
    a = kon * s
    w_t, w_ts, w_ti = (koff + ktr) / a, 1.0, ktr / kret
    init = {ti: w_ti / (w_t + w_ts + w_ti)}
    tile = 0.02
    sg = SiteGroup(group.scheme, "postsynaptic", count=n_sites, initial_state_fractions=init, name="DAT")
    rels = [Release(0.0, n_mol // 16, species=species.name, position_um=p) for p in _sunflower(16, 0.95 * radius)]
    m = SynapseModel(species=[species],
                     geometry=Geometry(cleft_height_um=h, cleft_radius_um=radius, psd_radius_um=radius / 2,
                                       outside="closed"),
                     sites=[sg], releases=rels, tile_um=tile,
                     timing=Timing(duration_ms=duration_ms, dt_fine_us=float(dt_us),
                                   dt_volume_us=float(dt_us), sample_interval_us=5000.0))
    return m, n_sites, math.pi * radius ** 2 * h


def _uptake_rate_per_carrier(m, n_sites, volume_um3, seed, burn_ms, window_ms, workers, n_runs=2):
    """(free concentration in M, uptakes per carrier per s, its Poisson SE) after ``burn_ms``."""
    ens = run(m, n_runs=n_runs, seed=seed, workers=workers)
    w = ens.times_ms >= burn_ms
    up = ens.series[:, w, ens.columns.index("taken_up")]
    uptakes = float((up[:, -1] - up[:, 0]).sum())
    free = ens.series[:, w, ens.columns.index("free")].mean()
    site_seconds = n_runs * n_sites * window_ms * 1e-3
    return free / (MOLECULES_PER_M_UM3 * volume_um3), uptakes / site_seconds, math.sqrt(max(uptakes, 1.0)) / site_seconds


@register("transporters.michaelis_menten", "transporters")
def check_michaelis_menten(ctx):
    """Bulk Michaelis–Menten constants of the dorsal-striatal DAT recovered from the engine: the
    preset's DAT cycle runs at clamped dopamine concentrations (0.25–16 Km; a closed slab with
    many molecules and few carriers, carriers started near their steady state); a weighted fit of
    v = Vmax·S/(Km + S) to the per-carrier uptake rate, scaled by the preset's ECS carrier
    concentration, gives Km and Vmax."""
    preset = "dopaminergic_striatal"
    model, group, rates = _preset_transporter(preset, "DAT")
    vmax, km, t_ecs, kcat = _bulk_targets(preset, "DAT", model, group, rates)
    levels = (0.25, 1.0, 4.0) if ctx.quick else (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    n_mol, target_uptakes = ctx.n(3000, 5000), ctx.n(300, 500)
    burn_ms, window_ms = 250.0, 1500.0
    measured, notes = [], []
    for j, rel in enumerate(levels):
        m, n_sites, volume = _clamped_dat_slab(group, model.species[0], rates, km, kcat, rel * km, n_mol,
                                               target_uptakes, window_ms, burn_ms + window_ms)
        measured.append(_uptake_rate_per_carrier(m, n_sites, volume, 41 + j, burn_ms, window_ms, ctx.workers))
        s, v, v_se = measured[-1]
        notes.append(f"{rel:g}Km: S = {s * 1e6:.3g} µM, v = {v:.3f} ± {v_se:.3f} s⁻¹/carrier")
    s_meas, v_meas, v_se = map(np.asarray, zip(*measured))
    popt, pcov = optimize.curve_fit(lambda x, k, K: k * x / (K + x), s_meas, v_meas, p0=(kcat, km), sigma=v_se,
                                    absolute_sigma=True)
    perr = np.sqrt(np.diag(pcov))
    resid = (v_meas - popt[0] * s_meas / (popt[1] + s_meas)) / v_se
    fit = (f"weighted fit: k_cat = {popt[0]:.4g} ± {perr[0]:.2g} s⁻¹ (cycle: {kcat:.4g}); chi²/df = "
           f"{np.sum(resid ** 2):.1f}/{len(levels) - 2}; {'; '.join(notes)}")
    how = "fit covariance from Poisson counts of uptakes (conservative: a multi-step cycle has Fano factor < 1)"
    src = "preset dopaminergic_striatal (Vmax Dreyer toolbox, Km Michael et al. 2005, J Neurochem 94:1202)"
    return [stat_check("transporters.michaelis_menten.Km", "transporters", km * 1e6, popt[1] * 1e6, perr[1] * 1e6,
                       "µM", how, citation=src, note=fit),
            stat_check("transporters.michaelis_menten.Vmax", "transporters", vmax * 1e6, popt[0] * t_ecs * 1e6,
                       perr[0] * t_ecs * 1e6, "µM/s", how + "; × [T]_ECS of the preset",
                       citation=src, note=f"[T]_ECS = {t_ecs * 1e6:.3f} µM from the preset's density "
                                          f"{group.density_per_um3:.1f} per µm³ of tissue, α = {model.geometry.volume_fraction}")]


@register("transporters.linear_clearance", "transporters", quick=True)
def check_linear_clearance(ctx):
    """In its own homogenised volume (voxel hazards, coarse steps) the dorsal-striatal preset clears
    a small release (100 molecules, linear regime) at the first-order rate Vmax/Km = 20 s⁻¹ that
    it is calibrated to: uptakes (plus bound molecules that will be translocated) / ∫free dt."""
    preset = "dopaminergic_striatal"
    base, group, rates = _preset_transporter(preset, "DAT")
    vmax, km, t_ecs, kcat = _bulk_targets(preset, "DAT", base, group, rates)
    model = presets.build(preset, **{"release.molecules": 100, "timing.duration_ms": 100.0})
    n_runs = ctx.n(48, 96)
    ens = run(model, n_runs=n_runs, seed=51, workers=ctx.workers)
    num, den = _clearance_terms(ens, model)
    k_hat = num.sum() / den.sum()
    se = math.sqrt(num.sum()) / den.sum()
    return [stat_check("transporters.linear_clearance", "transporters", vmax / km, k_hat, se, "s⁻¹",
                       "uptakes are Poisson given the free trajectory: √U/∫free",
                       citation="preset dopaminergic_striatal calibration (Vmax Dreyer toolbox, Km Michael et al. 2005)",
                       note=f"{n_runs} runs of 100 molecules, {num.sum():.0f} uptakes; Vmax/Km = "
                            f"{vmax * 1e6:.3g} µM/s / {km * 1e6:.3g} µM")]


@dataclass
class _RadialGrid:
    """Radial finite volumes from the centre to the absorbing domain edge."""
    edges: np.ndarray
    centres: np.ndarray
    vol: np.ndarray             # µm³ per shell
    area: np.ndarray            # µm² of the inner faces
    gap: np.ndarray             # µm between neighbouring centres
    big_r: float


def _radial_grid(big_r, dr_fine, r_fine, dr_coarse) -> _RadialGrid:
    edges = np.unique(np.concatenate([np.arange(0.0, min(r_fine, big_r), dr_fine),
                                      np.arange(min(r_fine, big_r), big_r, dr_coarse), [big_r]]))
    centres = 0.5 * (edges[1:] + edges[:-1])
    return _RadialGrid(edges, centres, 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3),
                       4.0 * np.pi * edges[1:-1] ** 2, np.diff(centres), big_r)


def _volume_reactions(model):
    """The volume site groups as local mass action. Returns (layout, reactions, number of site
    states + 1): per group (state → column index, density per µm³ of tissue, initial fractions);
    per transition (kind, source column, target column, rate per ms — per M⁻¹ µm³ for binding).
    Column 0 is the free ligand."""
    g = model.geometry
    shell = 4.0 / 3.0 * np.pi * (g.domain_radius_um ** 3 - g.varicosity_radius_um ** 3)
    cm = compile_model(model)
    layout, reactions = [], []
    k_state = 1
    for (first, names), grp in zip(cm.group_states, model.sites):
        if grp.location != "volume":
            continue
        density = cm.site_count(grp) / shell
        idx = {s: k_state + j for j, s in enumerate(names)}
        fr = np.array([grp.initial_state_fractions.get(s, 0.0) for s in names])
        fr[0] += 1.0 - fr.sum()
        layout.append((idx, density, fr))
        for tr in grp.scheme.transitions:
            k = kon_um3_per_s(tr.rate) * 1e-3 if tr.kind == "bind" else tr.rate * 1e-3
            reactions.append((tr.kind, idx[tr.source], idx[tr.target], k))
        k_state += len(names)
    return layout, reactions, k_state


def _reaction_diffusion_rhs(grid, d_star, alpha, reactions, kdeg, i_up, i_deg, nv):
    """d/dt of the (shells × columns) state: diffusion between shells and out of the last one,
    reactions within each shell, first-order degradation of the free ligand."""
    nc = len(grid.centres)
    vol, area, gap, big_r, centres = grid.vol, grid.area, grid.gap, grid.big_r, grid.centres

    def rhs(t, y):
        y = y.reshape(nc, nv)
        dy = np.zeros_like(y)
        u = y[:, 0]
        flux = d_star * area * (u[:-1] - u[1:]) / gap
        dy[:-1, 0] -= flux / vol[:-1]
        dy[1:, 0] += flux / vol[1:]
        dy[-1, 0] -= d_star * 4 * np.pi * big_r ** 2 * u[-1] / (big_r - centres[-1]) / vol[-1]   # absorbing edge
        c = u / alpha
        for kind, src, dst, k in reactions:
            rate = k * c * y[:, src] if kind == "bind" else k * y[:, src]
            dy[:, src] -= rate
            dy[:, dst] += rate
            if kind == "bind":
                dy[:, 0] -= rate
            elif kind in ("unbind", "efflux"):
                dy[:, 0] += rate
            elif kind == "uptake":
                dy[:, i_up] += rate
            elif kind == "degrade":
                dy[:, i_deg] += rate
        if kdeg:
            dy[:, 0] -= kdeg * u
            dy[:, i_deg] += kdeg * u
        return dy.ravel()

    return rhs


def _radial_pde(model, n0, t_end_ms, t0_ms=0.02, dr_fine=0.02, r_fine=2.0, dr_coarse=0.1):
    """Deterministic reaction–diffusion (mean-field) solution of a point release of ``n0``
    molecules at the centre of a model with ``outside="volume"``: radial finite volumes, D* = D/λ²,
    absorbing at R_domain, every volume site group's scheme as local mass action (binding at
    kon·c_ECS per free site), first-order degradation in the volume. Starts from the free Gaussian
    at ``t0_ms``. Returns (times, taken_up, degraded, free) totals."""
    g = model.geometry
    sp = model.species[0]
    d_star = sp.diffusion_um2_per_ms / g.tortuosity ** 2
    grid = _radial_grid(g.domain_radius_um, dr_fine, r_fine, dr_coarse)
    layout, reactions, k_state = _volume_reactions(model)
    i_up, i_deg = k_state, k_state + 1
    nc, nv = len(grid.centres), k_state + 2
    kdeg = sum(dg.rate_per_s * 1e-3 for dg in model.degradation
               if dg.region in ("volume", "all") and dg.species in (None, sp.name))
    y0 = np.zeros((nc, nv))
    y0[:, 0] = n0 * np.diff(_gaussian_ball_fraction(grid.edges, 2 * d_star * t0_ms)) / grid.vol
    for idx, density, fr in layout:
        for (s, i), f in zip(idx.items(), fr):
            y0[:, i] = density * f
    rhs = _reaction_diffusion_rhs(grid, d_star, g.volume_fraction, reactions, kdeg, i_up, i_deg, nv)
    t_eval = np.linspace(t0_ms, t_end_ms, 201)
    sol = solve_ivp(rhs, (t0_ms, t_end_ms), y0.ravel(), method="LSODA", t_eval=t_eval, lband=nv, uband=nv,
                    rtol=1e-7, atol=1e-9)
    if not sol.success:
        raise RuntimeError(f"reaction–diffusion solution failed: {sol.message}")
    y = sol.y.reshape(nc, nv, -1)
    totals = lambda i: np.einsum("c,ct->t", grid.vol, y[:, i, :])  # noqa: E731
    return sol.t, totals(i_up), totals(i_deg), totals(0)


@register("transporters.saturation", "transporters")
def check_saturation(ctx):
    """Transporters saturate at high release: in the dorsal-striatal preset (point release at the
    centre of a 1 nm varicosity) the fraction of a release taken up within 50 ms falls from a
    300-molecule to a 300,000-molecule release (about a hundred vesicles at once), by the amount a deterministic reaction–diffusion
    solution of the same scheme predicts (DAT, D1, D2 and non-DAT removal as local mass action)."""
    t_end = 50.0
    over = {"geometry.varicosity_radius_um": 0.001, "timing.duration_ms": t_end, "release.position_um": [0.0011, 0, 0]}
    rows, fr = [], {}
    for label, n0, n_runs, seed in (("low", 300, ctx.n(24, 48), 61), ("high", 300000, 3, 62)):
        model = presets.build("dopaminergic_striatal", **{**over, "release.molecules": n0})
        ens = run(model, n_runs=n_runs, seed=seed, workers=ctx.workers)
        f = ens.series[:, -1, ens.columns.index("taken_up")] / n0
        t, up, deg, free = _radial_pde(model, n0, t_end)
        pde = float(up[-1] / n0)
        se = f.std(ddof=1) / math.sqrt(n_runs)
        fr[label] = (float(f.mean()), se, pde)
        rows.append(stat_check(f"transporters.saturation.{label}_release", "transporters", pde, float(f.mean()), se,
                               "", f"sd of the per-run fraction / √{n_runs}",
                               note=f"fraction of {n0} molecules taken up within {t_end:g} ms; expected from the "
                                    f"radial reaction–diffusion solution"))
    (lo, lo_se, lo_pde), (hi, hi_se, hi_pde) = fr["low"], fr["high"]
    ratio = hi / lo
    se = ratio * math.sqrt((lo_se / lo) ** 2 + (hi_se / hi) ** 2)
    row = stat_check("transporters.saturation.ratio", "transporters", hi_pde / lo_pde, ratio, se, "",
                     "relative SEs in quadrature",
                     note=f"taken-up fraction high/low release; a linear (unsaturable) uptake would give 1; "
                          f"saturation shown: {ratio + Z * se < 1}")
    if not ratio + Z * se < 1:
        row.verdict = "fail"
    rows.append(row)
    return rows


# ======================================================================================================
# drugs

def _sert_states_at_zero(drugs_, seed):
    """Fraction of SERT sites in each drug state at t = 0 of one run, and the number of sites."""
    m = presets.build("serotonergic", drugs=drugs_, **{"timing.duration_ms": 0.1, "timing.dt_volume_us": 100.0,
                                                      "timing.sample_interval_us": 100.0})
    s = run_one(m, seed=seed).series
    grp = [g for g in m.sites if g.label == "SERT"][0]
    cols = [f"SERT:{st}" for st in grp.scheme.states]
    n = float(s[cols].iloc[0].sum())
    out = {st: float(s[f"SERT:{st}"].iloc[0]) / n for st in grp.scheme.states}
    return out, n, m


@register("drugs.competitive_occupancy", "drugs", quick=True)
def check_competitive_occupancy(ctx):
    """Equilibrium SERT occupancy in the serotonergic preset equals the competitive formula
    θ_i = (C_i/K_i)/(1 + Σ_j C_j/K_j): fluoxetine alone at the concentration for 80 % (from
    drugs.concentration_for_occupancy), and a fluoxetine + paroxetine mixture. Each site is drawn
    blocked per run; the measured fraction is over the preset's ~3.6·10⁵ SERT sites."""
    ki_f = library.drug("fluoxetine").ki_M["SERT"]
    ki_p = library.drug("paroxetine").ki_M["SERT"]
    c80 = drugs.concentration_for_occupancy("fluoxetine", "SERT", 0.8)
    rows = []
    occ, n, _ = _sert_states_at_zero({"fluoxetine": c80}, 71)
    theta = (c80 / ki_f) / (1 + c80 / ki_f)
    rows.append(stat_check("drugs.competitive_occupancy.fluoxetine80", "drugs", theta, occ["blocked:fluoxetine"],
                           math.sqrt(theta * (1 - theta) / n), "", "binomial over sites",
                           citation="competitive equilibrium θ = C/(C+K_i) [D]; K_i Tatsumi et al. 1997",
                           note=f"C = {c80 * 1e9:.3g} nM (K_i {ki_f * 1e9:.3g} nM), {n:.0f} SERT sites"))
    cf, cp = 2e-9, 0.3e-9
    denom = 1 + cf / ki_f + cp / ki_p
    occ, n, _ = _sert_states_at_zero({"fluoxetine": cf, "paroxetine": cp}, 72)
    for drug, c, ki in (("fluoxetine", cf, ki_f), ("paroxetine", cp, ki_p)):
        th = (c / ki) / denom
        rows.append(stat_check(f"drugs.competitive_occupancy.mixture.{drug}", "drugs", th, occ[f"blocked:{drug}"],
                               math.sqrt(th * (1 - th) / n), "", "binomial over sites",
                               citation="competitive equilibrium occupancy [D]; K_i Tatsumi et al. 1997",
                               note=f"fluoxetine {cf * 1e9:g} nM + paroxetine {cp * 1e9:g} nM"))
    return rows


def _clearance_ratio(drugs_, theta_seed, n_runs, molecules, workers, duration_ms=300.0, **extra):
    m = presets.build("serotonergic", drugs=drugs_, **{"release.molecules": molecules,
                                                        "timing.duration_ms": duration_ms, **extra})
    ens = run(m, n_runs=n_runs, seed=theta_seed, workers=workers)
    num, den = _clearance_terms(ens, m)
    return num.sum() / den.sum(), math.sqrt(num.sum()) / den.sum(), ens, m


@register("drugs.clearance_slowing", "drugs", quick=True)
def check_clearance_slowing(ctx):
    """In the linear regime (2000 molecules into the serotonergic preset's volume) a competitive
    SERT blocker at occupancy θ slows the uptake clearance rate by 1/(1 − θ) (fluoxetine at the
    concentrations for θ = 0.5, 0.8, 0.9)."""
    k0, se0, _, _ = _clearance_ratio(None, 81, ctx.n(6, 12), 2000, ctx.workers)
    rows = []
    for j, theta in enumerate((0.8,) if ctx.quick else (0.5, 0.8, 0.9)):
        c = drugs.concentration_for_occupancy("fluoxetine", "SERT", theta)
        k, se, _, _ = _clearance_ratio({"fluoxetine": c}, 82 + j,
                                       ctx.n(12, int(round(12 / (1 - theta) / 2.5))), 2000, ctx.workers)
        ratio = k0 / k
        rse = ratio * math.sqrt((se0 / k0) ** 2 + (se / k) ** 2)
        rows.append(stat_check(f"drugs.clearance_slowing.theta{theta:g}", "drugs", 1 / (1 - theta), ratio, rse, "×",
                               "Poisson uptake counts, relative SEs in quadrature",
                               citation="competitive inhibition: Vmax/Km falls by 1/(1−θ) in the linear regime [D]",
                               note=f"k̂(control) = {k0:.3f} ± {se0:.3f} s⁻¹, k̂(θ) = {k:.3f} ± {se:.3f} s⁻¹; "
                                    f"fluoxetine {c * 1e9:.3g} nM"))
    return rows
