"""Physics checks: the Monte Carlo engine against exact results.

Free diffusion (mean squared displacement, uniform filling of the slab and of the rim), first
passage (mean exit times from a disk and a sphere), a point release into the homogenised
extracellular space (the Gaussian kernel, with and without first-order removal), binding (event
rates against kon, mass-action equilibria, clamped occupancy) and the exchange between the cleft
and a closed cell of tissue. Tolerances are ``k`` standard errors of each estimator.
"""
from __future__ import annotations

import math

import numpy as np

from ..compile import kon_um3_per_s
from ..model import Release, SiteGroup
from ..schemes import one_site_receptor
from ..simulate import run, run_one
from .framework import Z, Check, register, stat_check
from .scenarios import (D_DA, D_GLU, MOLECULES_PER_M_UM3, _gaussian_ball_fraction, _point_volume_model, _positions,
                        _slab_model, _sunflower, cleft_share_at_equilibrium, cleft_share_per_run, closed_tissue_cell,
                        exit_time_moments, mass_action_mean_bound)


# ======================================================================================================
# free diffusion

@register("diffusion.msd_slab", "free diffusion", quick=True)
def check_msd_slab(ctx):
    """Mean squared displacement per lateral axis in the cleft slab equals 2Dt (D = 0.33 µm²/ms,
    t = 1 ms, closed cleft of radius 10 µm so that the rim is never reached)."""
    t_ms, n = 1.0, ctx.n(50000, 200000)
    m = _slab_model(radius=10.0, molecules=n, duration_ms=t_ms, sample_us=100.0)
    pos = run_one(m, seed=11, keep_positions=True).positions["slab_positions"]
    expected = 2 * D_GLU * t_ms
    se = math.sqrt(2.0) * expected / math.sqrt(len(pos))
    return [stat_check(f"diffusion.msd_slab.{ax}", "free diffusion", expected, float(np.mean(pos[:, i] ** 2)), se,
                       "µm²", "sd of x² is √2·σ² for a Gaussian, / √N",
                       note=f"N = {len(pos)} molecules, dt = 1 µs, D = {D_GLU} µm²/ms, t = {t_ms} ms")
            for i, ax in enumerate("xy")]


@register("diffusion.msd_volume", "free diffusion", quick=True)
def check_msd_volume(ctx):
    """Mean squared displacement per axis in the homogenised ECS equals 2D*t with D* = D/λ²
    (D = 0.763 µm²/ms, λ = 1.54, t = 2 ms, coarse volume steps of 10 µs)."""
    t_ms, n, lam = 2.0, ctx.n(50000, 200000), 1.54
    m = _point_volume_model(n, t_ms, tortuosity=lam)
    pos = run_one(m, seed=12, keep_positions=True).positions["volume_positions"]
    d_star = D_DA / lam ** 2
    expected = 2 * d_star * t_ms
    se = math.sqrt(2.0) * expected / math.sqrt(len(pos))
    return [stat_check(f"diffusion.msd_volume.{ax}", "free diffusion", expected, float(np.mean(pos[:, i] ** 2)), se,
                       "µm²", "√2·σ²/√N", note=f"N = {len(pos)} (escaped: {n - len(pos)}), D* = {d_star:.4f} µm²/ms")
            for i, ax in enumerate("xyz")]


@register("diffusion.slab_uniformity", "free diffusion", quick=True)
def check_slab_uniformity(ctx):
    """Molecules fill the 20 nm slab uniformly across its height (reflection by folding): a
    chi-square over 20 bins of z stays below its mean + 5 sd."""
    n = ctx.n(20000, 100000)
    m = _slab_model(radius=10.0, molecules=n, duration_ms=0.2, sample_us=100.0)
    z = run_one(m, seed=13, keep_positions=True).positions["slab_positions"][:, 2]
    bins = 20
    counts, _ = np.histogram(z, bins=bins, range=(0, 0.02))
    exp = len(z) / bins
    chi2 = float(np.sum((counts - exp) ** 2 / exp))
    df = bins - 1
    limit = df + Z * math.sqrt(2 * df)
    inside = bool(z.min() >= 0 and z.max() <= 0.02)
    ok = chi2 <= limit and inside
    return [Check("diffusion.slab_uniformity", "free diffusion", float(df), chi2,
                  f"chi² <= df + {Z:g}·√(2 df) = {limit:.1f} (chi² with {df} df: mean {df}, sd √{2 * df})",
                  "pass" if ok else "fail", "", f"N = {len(z)}, 20 bins over h = 20 nm; all z in [0, h]: {inside}",
                  "chi²", math.sqrt(2 * df), float("nan"), limit)]


# ======================================================================================================
# first passage

@register("first_passage.disk", "first passage", quick=True)
def check_exit_disk(ctx):
    """Mean exit time from the centre of a disk with an absorbing rim (open cleft, R = 0.2 µm)
    equals R²/4D."""
    radius, dt_us = 0.2, 0.1
    tau = radius ** 2 / (4 * D_GLU)
    n = ctx.n(20000, 50000)
    m = _slab_model(outside="open", radius=radius, molecules=n, duration_ms=round(12 * tau, 3), dt_us=dt_us,
                    sample_us=dt_us)
    m.releases[0].position_um = (0.0, 0.0)
    r = run_one(m, seed=14)
    esc = r.series["escaped"].to_numpy()
    mean, var = exit_time_moments(esc, n, r.series.index.to_numpy(), dt_us * 1e-3)
    se = math.sqrt(var / n)
    return [stat_check("first_passage.disk", "first passage", tau * 1e3, mean * 1e3, se * 1e3, "µs",
                       "sd of the exit time / √N", note=f"N = {n}, dt = {dt_us} µs, escaped by the end: {esc[-1]}")]


@register("first_passage.sphere", "first passage", quick=True)
def check_exit_sphere(ctx):
    """Mean exit time from the centre of an absorbing sphere (R = 2 µm, homogenised volume with
    α = 1, λ = 1) equals R²/6D."""
    radius = 2.0
    tau = radius ** 2 / (6 * D_GLU)
    n = ctx.n(10000, 30000)
    m = _point_volume_model(n, round(10 * tau, 2), d=D_GLU, alpha=1.0, tortuosity=1.0, domain_um=radius,
                            sample_us=10.0, species="glutamate")
    r = run_one(m, seed=15)
    esc = r.series["escaped"].to_numpy()
    mean, var = exit_time_moments(esc, n, r.series.index.to_numpy(), 0.010)
    se = math.sqrt(var / n)
    return [stat_check("first_passage.sphere", "first passage", tau, mean, se, "ms", "sd of the exit time / √N",
                       note=f"N = {n}, volume step 10 µs, escaped by the end: {esc[-1]}")]


# ======================================================================================================
# point release into the homogenised ECS

def _shell_concentrations(pos, edges, alpha):
    r = np.linalg.norm(pos, axis=1)
    counts, _ = np.histogram(r, bins=edges)
    vol_ecs = alpha * 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return counts, vol_ecs


@register("ecs.point_release", "extracellular space", quick=True)
def check_point_release(ctx):
    """Point release into a homogenised ECS (α = 0.21, λ = 1.54) against the analytic
    C(r,t) = N e^{−r²/4D*t} e^{−kt} / [α N_A (4πD*t)^{3/2}], averaged over radial shells, without
    and with first-order removal (k = 200 s⁻¹); plus the surviving fraction e^{−kt}."""
    alpha, lam, t_ms = 0.21, 1.54, 2.0
    d_star = D_DA / lam ** 2
    n = ctx.n(20000, 100000)
    edges = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 4.5])
    report = [(1, 2), (2, 3), (3, 4)]          # shells [0.5,1], [1,2], [2,3] µm
    rows = []
    for k_per_s, seed in ((0.0, 21), (200.0, 22)):
        m = _point_volume_model(n, t_ms, alpha=alpha, tortuosity=lam, degradation_per_s=k_per_s)
        pos = run_one(m, seed=seed, keep_positions=True).positions["volume_positions"]
        counts, vol_ecs = _shell_concentrations(pos, edges, alpha)
        survive = math.exp(-k_per_s * t_ms * 1e-3)
        frac = np.diff(_gaussian_ball_fraction(edges, 2 * d_star * t_ms))
        p = survive * frac                    # probability that a released molecule is in the shell
        tag = "uptake" if k_per_s else "free"
        to_uM = 1e6 / (MOLECULES_PER_M_UM3 * vol_ecs)
        for a, b in report:
            i = a
            exp_c = n * p[i] * to_uM[i]
            se = math.sqrt(n * p[i] * (1 - p[i])) * to_uM[i]
            rows.append(stat_check(
                f"ecs.point_release.{tag}.r{edges[a]:g}-{edges[b]:g}um", "extracellular space", exp_c,
                counts[i] * to_uM[i], se, "µM", "binomial count in the shell",
                note=f"shell-averaged ECS concentration at t = {t_ms} ms, N = {n}, D* = {d_star:.4f} µm²/ms, "
                     f"k = {k_per_s:g} s⁻¹"))
        if k_per_s:
            f_meas = len(pos) / n
            se = math.sqrt(survive * (1 - survive) / n)
            rows.append(stat_check("ecs.point_release.uptake.surviving_fraction", "extracellular space", survive,
                                   f_meas, se, "", "binomial", note=f"e^(−kt), k = {k_per_s:g} s⁻¹, t = {t_ms} ms"))
    return rows


# ======================================================================================================
# binding

def _receptor_group(kon, koff, count, location="postsynaptic", species="glutamate"):
    return SiteGroup(one_site_receptor("R", species, kon, koff), location, count=count)


def _binding_rate_rows(name, m, seed, location, t_start, n_runs, workers, note):
    kon = m.sites[0].scheme.transitions[0].rate
    ens = run(m, n_runs=n_runs, seed=seed, workers=workers)
    t = ens.times_ms
    w = t >= t_start
    volume = m.geometry.cleft_volume_um3
    rate = kon_um3_per_s(kon) * 1e-3 / volume       # per molecule per site per ms
    cols = ens.columns
    free = ens.series[:, w, cols.index("free")]
    sites = ens.series[:, w, cols.index(f"{m.sites[0].label}:R")]
    events = ens.series[:, w, cols.index("binding_events")]
    expected = float(sum(np.trapezoid(rate * free[i] * sites[i], t[w]) for i in range(n_runs)))
    observed = float((events[:, -1] - events[:, 0]).sum())
    return stat_check(name, "binding", 1.0, observed / expected, math.sqrt(expected) / expected, "",
                      "binding events are Poisson given the trajectory: √expected/expected",
                      note=f"observed/expected binding events = {observed:.0f}/{expected:.1f}; {note}")


@register("binding.rate_vs_kon", "binding", quick=True)
def check_binding_rate(ctx):
    """Binding events counted in a well-mixed closed cleft equal ∫ kon·C_free·S_free dt (kon = 10⁷
    M⁻¹ s⁻¹, 100 sites on the PSD, fast unbinding) for dt = 1 µs and dt = 0.25 µs."""
    rows = []
    for dt_us, seed in ((1.0, 31), (0.25, 32)) if not ctx.quick else ((1.0, 31),):
        m = _slab_model(radius=0.2, molecules=1000, duration_ms=2.5, dt_us=dt_us, sample_us=5.0,
                        sites=[_receptor_group(1e7, 1e5, 100)], psd=0.15)
        rows.append(_binding_rate_rows(f"binding.rate_vs_kon.dt{dt_us:g}us", m, seed, "postsynaptic", 0.5,
                                       ctx.n(2, 4), ctx.workers, f"dt = {dt_us} µs, sites on the PSD (r < 0.15 µm)"))
    return rows


def _tile_inside_fraction(radius, tile, sub=16):
    """Mean fraction of a candidate tile's area (tiles whose centre lies inside ``radius``) that lies
    inside the disk: the share of hits a uniformly placed site can receive."""
    n = int(math.ceil(2 * radius / tile))
    c = -0.5 * n * tile + (np.arange(n) + 0.5) * tile
    x, y = np.meshgrid(c, c, indexing="ij")
    cand = x ** 2 + y ** 2 < radius ** 2
    off = (np.arange(sub) + 0.5) / sub * tile - tile / 2
    inside = np.zeros_like(x)
    for dx in off:
        for dy in off:
            inside += (x + dx) ** 2 + (y + dy) ** 2 < radius ** 2
    return float((inside[cand] / sub ** 2).mean())


@register("binding.rate_near_rim", "binding")
def check_binding_rate_rim(ctx):
    """As binding.rate_vs_kon, but with the sites spread over the whole presynaptic face of a
    closed cleft, up to its reflecting rim (R = 0.3 µm, dt = 1 µs): probes membrane hits by steps
    that also reflect off the rim. The expected ratio is the mean share of a rim tile's area that
    lies inside the cleft (tiles are kept when their centre is inside)."""
    r = 0.3
    area = math.pi * r * r
    m = _slab_model(radius=r, molecules=0, duration_ms=4.0, dt_us=1.0, sample_us=10.0,
                    sites=[_receptor_group(1e7, 1e5, int(1000 * area), "presynaptic")], psd=r / 2,
                    releases=[Release(0.0, int(3000 * area) // 64, position_um=p) for p in _sunflower(64, r * 0.999)])
    row = _binding_rate_rows("binding.rate_near_rim", m, 33, "presynaptic", 0.8, 32, ctx.workers,
                             f"{int(1000 * area)} sites over the presynaptic face r < {r} µm (to the rim), dt = 1 µs; "
                             "binding.rate_vs_kon keeps its sites on the PSD, away from the rim")
    geo = _tile_inside_fraction(r, m.tile_um)
    return [stat_check(row.name, row.category, geo, row.measured, row.se, "", row.tolerance.split("(SE: ")[-1][:-1],
                       note=row.note + f"; expected = mean inside share of the candidate tiles ({geo:.4f})")]


@register("diffusion.rim_uniformity", "free diffusion")
def check_rim_uniformity(ctx):
    """At equilibrium a closed cleft (R = 0.3 µm, dt = 1 µs, reflecting rim) holds its molecules
    uniformly up to the rim: the fraction found in the outermost 10 nm annulus equals its share of
    the area."""
    r, w = 0.3, 0.01
    n_runs, n_per = 8, 50000
    m = _slab_model(radius=r, molecules=0, duration_ms=0.5, dt_us=1.0, sample_us=100.0, psd=r / 2,
                    releases=[Release(0.0, n_per // 64, position_um=p) for p in _sunflower(64, r * 0.999)])
    pos = np.concatenate(_positions(m, 37, n_runs, "slab_positions", ctx.workers))
    rr = np.hypot(pos[:, 0], pos[:, 1])
    p = 1 - ((r - w) / r) ** 2
    f = float(np.mean(rr >= r - w))
    inner = float(np.mean((rr >= r - 3 * w) & (rr < r - 2 * w)))
    p_inner = ((r - 2 * w) ** 2 - (r - 3 * w) ** 2) / r ** 2
    return [stat_check("diffusion.rim_uniformity", "free diffusion", 1.0, f / p, math.sqrt(p * (1 - p) / len(rr)) / p,
                       "", "binomial",
                       note=f"density in r > {r - w:g} µm relative to uniform, {len(rr)} molecules after 0.5 ms "
                            f"(σ = {math.sqrt(2 * D_GLU * 1e-3) * 1e3:.0f} nm per step); the annulus 20–30 nm inside "
                            f"the rim holds {inner / p_inner:.4f} of uniform")]


@register("ecs.cleft_volume_exchange", "ecs")
def check_cleft_volume_exchange(ctx):
    """A cleft opening onto a closed cell of tissue (varicosity 0.25 µm, reflecting sphere 0.6 µm,
    α 0.21) holds V_cleft / (V_cleft + α V_shell) of the molecules once mixed: molecules leave the
    cleft's rim into the volume and return through it at equal concentrations (detailed balance
    of the exchange)."""
    m = closed_tissue_cell()
    n_runs = ctx.n(8, 16)
    share = cleft_share_per_run(run(m, n_runs=n_runs, seed=36, workers=ctx.workers)) * 100
    return [stat_check("ecs.cleft_volume_exchange", "ecs", cleft_share_at_equilibrium(m.geometry) * 100,
                       float(share.mean()),
                       float(share.std(ddof=1) / math.sqrt(n_runs)), "%", f"sd of the per-run share / √{n_runs}",
                       note="time average over 5–20 ms of 3000 molecules released into the cleft; 4 µs volume steps")]


@register("binding.mass_action", "binding", quick=True)
def check_mass_action(ctx):
    """Reversible binding A + R ⇌ AR in a closed cleft (200 molecules, 100 sites, kon = 10⁷ M⁻¹ s⁻¹,
    koff = 10³ s⁻¹) settles at the exact small-number mass-action mean (detailed balance of the
    unbinding placement)."""
    kon, koff, n_mol, n_sites = 1e7, 1e3, 200, 100
    m = _slab_model(radius=0.2, molecules=n_mol, duration_ms=8.0, sample_us=50.0,
                    sites=[_receptor_group(kon, koff, n_sites)], psd=0.15)
    expected = mass_action_mean_bound(n_mol, n_sites, kon, koff, m.geometry.cleft_volume_um3)
    n_runs = ctx.n(12, 24)
    ens = run(m, n_runs=n_runs, seed=34, workers=ctx.workers)
    bound = ens.series[:, ens.times_ms >= 2.0, ens.columns.index("bound")]
    per_run = bound.mean(axis=1)
    se = per_run.std(ddof=1) / math.sqrt(n_runs)
    off = mass_action_mean_bound(n_mol, n_sites, 0.9 * kon, koff, m.geometry.cleft_volume_um3)
    return [stat_check("binding.mass_action", "binding", expected, float(per_run.mean()), se, "complexes",
                       f"sd of the per-run time average / √{n_runs}",
                       note=f"time average over 2–8 ms; a 10 % lower kon would give {off:.2f}")]


@register("binding.clamped_occupancy", "binding", quick=True)
def check_clamped_occupancy(ctx):
    """With the ligand clamped (2000 molecules in a closed cleft, 10 sites), the fraction of sites
    bound equals C/(C + K_D), C the time-averaged free concentration, K_D = koff/kon."""
    kon, n_mol, n_sites = 1e7, 2000, 10
    m0 = _slab_model(radius=0.2, molecules=n_mol, duration_ms=3.0, sample_us=10.0, psd=0.15)
    volume = m0.geometry.cleft_volume_um3
    c_nominal = n_mol / (MOLECULES_PER_M_UM3 * volume)
    rows = []
    ratios = (1.0,) if ctx.quick else (1.0, 1 / 3)
    for j, kd_over_c in enumerate(ratios):
        koff = kon * c_nominal * kd_over_c
        m = _slab_model(radius=0.2, molecules=n_mol, duration_ms=3.0, sample_us=10.0, psd=0.15,
                        sites=[_receptor_group(kon, koff, n_sites)])
        n_runs = ctx.n(8, 16)
        ens = run(m, n_runs=n_runs, seed=35 + j, workers=ctx.workers)
        w = ens.times_ms >= 0.3
        frac = ens.series[:, w, ens.columns.index("bound")].mean(axis=1) / n_sites
        c = ens.series[:, w, ens.columns.index("free")].mean(axis=1) / (MOLECULES_PER_M_UM3 * volume)
        kd = koff / kon
        expected_each = c / (c + kd)
        diff = frac - expected_each
        se = diff.std(ddof=1) / math.sqrt(n_runs)
        rows.append(stat_check(f"binding.clamped_occupancy.KD{kd * 1e3:.3g}mM", "binding",
                               float(expected_each.mean()), float(frac.mean()), se, "",
                               f"sd over {n_runs} runs of (measured − C/(C+K_D)) / √n",
                               note=f"C_free = {c.mean() * 1e3:.3f} mM, K_D = {kd * 1e3:.3g} mM, "
                                    f"{n_sites} sites, time average over 0.3–3 ms"))
    return rows
