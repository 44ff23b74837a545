"""Published results: the presets against numbers from the literature.

The tolerance of each row is the literature range, and the row names its source. A failing
published-result check is information about the model (its geometry and parameters), not
necessarily an engine error; the row's note says what drives it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .. import drugs, presets, variability
from ..compile import compile_model
from ..model import SiteGroup
from ..simulate import run
from .framework import Z, Check, range_check, register, stat_check
from .pharmacology import _bulk_targets, _clearance_ratio, _preset_transporter, _sert_states_at_zero
from .scenarios import MOLECULES_PER_M_UM3, _clearance_terms, _positions

CLEMENTS = "Clements 1996, TINS 19:163"
CLEMENTS_1996 = "Clements 1996, TINS 19:163 (review of antagonist-displacement and modelling estimates)"
CLEMENTS_1992 = "Clements et al. 1992, Science 258:1498 (1.2 ms, cultured hippocampal synapses); Clements 1996, TINS 19:163"
# Rusakov 2001 (Biophys J 81:1947) cleft profile as three exponentials (mM, ms), ModelDB 51196 (Saftenku 2002, glu1.mod)
RUSAKOV_2001_PROFILE = ((2.88, 0.05), (0.2, 0.5), (0.04, 1.7))
BARBOUR = "Barbour 2001, J Neurosci 21:7969; neighbour at ~465 nm, Rusakov & Kullmann 1998, J Neurosci 18:3158"
RICE_CRAGG = "Rice & Cragg 2008, Brain Res Rev 58:303"
DAWS = "Daws et al. 2003, J Neurochem 86:861 (graded 5,7-DHT lesions; 5-HT clearance in rat CA3, chronoamperometry)"
MONTANEZ = "Montañez et al. 2003, J Neurochem 86:210 (SERT+/− mice clear 5-HT more slowly)"
MEYER = "Meyer et al. 2004, Am J Psychiatry 161:826; Meyer et al. 2001, 158:1843"


@register("published.clements_peak", "published", quick=True)
def check_clements_peak(ctx):
    """Peak glutamate averaged over the PSD (r < R_psd, all heights) after one vesicle in the
    glutamatergic preset lies in the 1–5 mM of Clements 1996 (earliest sample, 2 µs)."""
    times = (0.002, 0.01, 0.02)
    model0 = presets.build("glutamatergic")
    g = model0.geometry
    n0 = model0.releases[0].molecules
    peaks = []
    for j, t in enumerate(times):
        m = presets.build("glutamatergic", **{"timing.duration_ms": t, "timing.sample_interval_us": 1.0})
        pos = _positions(m, 91 + j, ctx.n(4, 8), "slab_positions", ctx.workers)
        c = [np.sum(np.hypot(p[:, 0], p[:, 1]) < g.psd_radius_um) / (MOLECULES_PER_M_UM3 * np.pi
                                                                        * g.psd_radius_um ** 2 * g.cleft_height_um)
             for p in pos]
        peaks.append((float(np.mean(c)), float(np.std(c, ddof=1) / math.sqrt(len(c)))))
    i = int(np.argmax([p[0] for p in peaks]))
    a, h = g.psd_radius_um, g.cleft_height_um
    d = model0.species[0].diffusion_um2_per_ms
    analytic = [n0 / (MOLECULES_PER_M_UM3 * np.pi * a * a * h) * (1 - math.exp(-a * a / (4 * d * t))) for t in times]
    return [range_check("published.clements_peak", "published", peaks[i][0] * 1e3, 1.0, 5.0, "mM", se=peaks[i][1] * 1e3,
                        citation=CLEMENTS,
                        note="mean [Glu] over the PSD at t = " + ", ".join(f"{t * 1e3:g} µs: {p[0] * 1e3:.2f} mM"
                                                                          for t, p in zip(times, peaks))
                             + "; free-slab analytic N/(N_A π a² h)(1 − e^{−a²/4Dt}): "
                             + ", ".join(f"{x * 1e3:.2f}" for x in analytic)
                             + f" mM; the cleft-average peak is N/V_cleft = "
                               f"{n0 / (MOLECULES_PER_M_UM3 * g.cleft_volume_um3) * 1e3:.2f} mM at release")]


def _log_interp(t, c, x):
    """ln C interpolated linearly in time at ``x`` (C > 0 around ``x``)."""
    return float(np.interp(x, t, np.log(np.maximum(c, 1e-300))))


def cleft_decay_statistics(t_ms, c_mM, window_ms=(0.5, 2.0)):
    """Shape of a cleft concentration transient ``c_mM(t_ms)`` (one waveform, e.g. a mean over runs).

    Returns a dict: ``peak_mM``; ``fast_1e_us``, the time from the peak until C first falls to
    peak/e (log-linear between samples); ``slow_tau_ms``, the local time constant −1/(d ln C/dt)
    over ``window_ms`` taken as the reciprocal of the window's mean decay rate,
    (t₂ − t₁)/ln(C(t₁)/C(t₂)) (a single exponential gives its τ); ``slow_over_fast``; ``tail_mM``,
    the slow phase extrapolated back to the peak time, C(t₁)·e^{(t₁ − t_peak)/τ_slow}; and C at 1 and 2 ms.
    """
    t, c = np.asarray(t_ms, dtype=float), np.asarray(c_mM, dtype=float)
    i0 = int(np.argmax(c))
    peak = float(c[i0])
    below = np.flatnonzero(c[i0:] <= peak / math.e)
    if len(below) == 0:
        fast = float("nan")
    else:
        j = i0 + int(below[0])
        la, lb = math.log(c[j - 1]), math.log(max(c[j], 1e-300))
        fast = (t[j - 1] + (la - (math.log(peak) - 1.0)) / (la - lb) * (t[j] - t[j - 1]) - t[i0]) * 1e3
    t1, t2 = window_ms
    drop = _log_interp(t, c, t1) - _log_interp(t, c, t2)
    slow = (t2 - t1) / drop if drop > 0 else float("inf")
    tail = math.exp(_log_interp(t, c, t1) + (t1 - t[i0]) / slow) if math.isfinite(slow) else float("nan")
    return {"peak_mM": peak, "fast_1e_us": fast, "slow_tau_ms": slow, "slow_over_fast": slow * 1e3 / fast,
            "tail_mM": tail, "c1_uM": math.exp(_log_interp(t, c, 1.0)) * 1e3,
            "c2_uM": math.exp(_log_interp(t, c, 2.0)) * 1e3}


def _jackknife(per_run, statistic):
    """statistic(mean over runs) and its jackknife standard error over runs (dict of floats)."""
    per_run = np.asarray(per_run, dtype=float)
    n = len(per_run)
    full = statistic(per_run.mean(axis=0))
    total = per_run.sum(axis=0)
    leave_out = [statistic((total - per_run[i]) / (n - 1)) for i in range(n)]
    se = {k: math.sqrt((n - 1) / n * sum((s[k] - np.mean([x[k] for x in leave_out])) ** 2 for s in leave_out))
          for k in full}
    return full, se


@register("published.clements_biphasic", "published")
def check_clements_biphasic(ctx):
    """The mean cleft glutamate transient of the glutamatergic preset: peak 1–5 mM and biphasic
    decay, fast ≈ 100 µs and a slow phase (Clements 1996, a review), the slow phase against the
    1.2 ms decay that Clements et al. 1992 inferred from antagonist displacement.

    Rows: the peak of the mean cleft [Glu] in 1–5 mM; the time from the peak to 1/e of it in
    50–200 µs (≈ 100 µs within a factor of 2); the local time constant −1/(d ln C/dt) over
    0.5–2 ms (the reciprocal of the mean decay rate of the window, (t₂ − t₁)/ln(C(t₁)/C(t₂)))
    at least 3 × the fast 1/e time (biphasic: a single exponential gives 1) and within a factor of
    2 of 1.2 ms (0.6–2.4 ms, the window the 1992 method is sensitive to). The "≈ 2 ms" of the
    review summarises antagonist-displacement inferences without amplitudes, so it is not fitted:
    a two-exponential fit merges the escape, transporter-binding and unbinding phases of a Monte
    Carlo waveform unpredictably (it fails the published Rusakov 2001 cleft profile too). Standard
    errors are jackknife over runs; the ranges are literature ranges."""
    model = presets.build("glutamatergic")
    n_runs = ctx.n(4, 48)
    ens = run(model, n_runs=n_runs, seed=95, workers=ctx.workers)
    c_runs = ens.series[:, :, ens.columns.index("free_cleft")] / (
        MOLECULES_PER_M_UM3 * model.geometry.cleft_volume_um3) * 1e3     # mM
    s, se = _jackknife(c_runs, lambda c: cleft_decay_statistics(ens.times_ms, c))
    t_ref = np.arange(0.0, 5.0, 0.01)
    ref = cleft_decay_statistics(t_ref, sum(a * np.exp(-t_ref / tau) for a, tau in RUSAKOV_2001_PROFILE))
    note = (f"mean cleft [Glu] of {n_runs} runs: peak {s['peak_mM']:.3g} mM, 1/e after {s['fast_1e_us']:.3g} µs; "
            f"{s['c1_uM']:.3g} µM at 1 ms, {s['c2_uM']:.3g} µM at 2 ms; slow phase τ {s['slow_tau_ms']:.3g} ms "
            f"± {se['slow_tau_ms']:.2g} ({(s['slow_tau_ms'] - 0.6) / se['slow_tau_ms']:.1f} SE above 0.6 ms), its amplitude extrapolated to the peak {s['tail_mM'] * 1e3:.3g} µM "
            f"({s['tail_mM'] / s['peak_mM'] * 100:.2g} % of the peak); the same statistics of the Rusakov 2001 cleft "
            f"profile (three exponentials, ModelDB 51196): 1/e after {ref['fast_1e_us']:.3g} µs, τ "
            f"{ref['slow_tau_ms']:.3g} ms over 0.5–2 ms ({ref['slow_over_fast']:.3g}×), tail "
            f"{ref['tail_mM'] / ref['peak_mM'] * 100:.2g} % of the peak; "
            f"glial band reflecting at {model.geometry.band_outer_radius_um} µm")
    return [range_check("published.clements_biphasic.peak", "published", s["peak_mM"], 1.0, 5.0, "mM",
                        se=se["peak_mM"], citation=CLEMENTS_1996, note=note),
            range_check("published.clements_biphasic.fast_1e_time", "published", s["fast_1e_us"], 50.0, 200.0, "µs",
                        expected=100.0, se=se["fast_1e_us"], citation=CLEMENTS_1996, note=note,
                        what="≈100 µs within a factor of 2"),
            range_check("published.clements_biphasic.slow_over_fast", "published", s["slow_over_fast"], 3.0, None,
                        "×", expected=3.0, se=se["slow_over_fast"], citation=CLEMENTS_1996, note=note,
                        what="biphasic: slow local τ / fast 1/e time"),
            range_check("published.clements_biphasic.slow_tau", "published", s["slow_tau_ms"], 0.6, 2.4, "ms",
                        expected=1.2, se=se["slow_tau_ms"], citation=CLEMENTS_1992, note=note,
                        what="1.2 ms within a factor of 2")]


@register("published.barbour_spillover", "published")
def check_barbour(ctx):
    """Spillover to a neighbouring synapse: the glutamatergic preset with an open neuropil (band to
    1 µm, absorbing edge) and a second patch of AMPA receptors (as many as the own PSD, on a disk of
    R_psd) centred 465 nm away on the band membrane; the peak of the mean number of open receptors
    there is < 5 % of the synapse's own (Barbour 2001)."""
    model = presets.build("glutamatergic", **{"geometry.band_outer_radius_um": 1.0,
                                             "geometry.band_outer_boundary": "absorbing",
                                             "timing.duration_ms": 3.0})
    own = [grp for grp in model.sites if grp.scheme.name == "AMPA" and grp.location == "postsynaptic"]
    if not own:
        raise LookupError("the glutamatergic preset has no postsynaptic AMPA group")
    own = own[0]
    cm = compile_model(model)
    n_rec = cm.site_count(own)
    tile = model.tile_um
    n_tile = cm.kernel.n_tile
    centres = -cm.grid_half_um + (np.arange(n_tile) + 0.5) * tile
    xx, yy = np.meshgrid(centres, centres, indexing="ij")
    cx, a = 0.465, model.geometry.psd_radius_um
    inside = np.flatnonzero(((xx - cx) ** 2 + yy ** 2 < a * a).ravel())
    pick = np.random.default_rng(2001).choice(inside, size=n_rec, replace=False)
    coords = np.column_stack([xx.ravel()[pick], yy.ravel()[pick]])
    neighbour = SiteGroup(own.scheme, "band_postsynaptic", arrangement="coordinates", coordinates_um=coords,
                          name="AMPA_neighbour")
    sites = list(model.sites)
    first_band = min([i for i, grp in enumerate(sites) if grp.location == "band_postsynaptic"] or [len(sites)])
    sites.insert(first_band, neighbour)      # placed before the band transporters so that they avoid its tiles
    m = replace(model, sites=sites)
    n_runs = ctx.n(6, 16)
    ens = run(m, n_runs=n_runs, seed=97, workers=ctx.workers)
    o_own = ens.series[:, :, ens.columns.index(f"{own.label}:open")]
    o_nb = ens.series[:, :, ens.columns.index("AMPA_neighbour:open")]
    i_own, i_nb = int(np.argmax(o_own.mean(0))), int(np.argmax(o_nb.mean(0)))
    ratio = o_nb.mean(0)[i_nb] / o_own.mean(0)[i_own]
    se = ratio * math.sqrt((o_nb[:, i_nb].std(ddof=1) / max(o_nb[:, i_nb].mean(), 1e-12)) ** 2
                           + (o_own[:, i_own].std(ddof=1) / o_own[:, i_own].mean()) ** 2) / math.sqrt(n_runs)
    return [range_check("published.barbour_spillover", "published", ratio * 100, None, 5.0, "%", expected=5.0,
                        se=se * 100, citation=BARBOUR,
                        note=f"peak mean open AMPA: own {o_own.mean(0)[i_own]:.2f} at {ens.times_ms[i_own]:.2f} ms, "
                             f"neighbour {o_nb.mean(0)[i_nb]:.3f} at {ens.times_ms[i_nb]:.2f} ms ({n_rec} receptors "
                             f"each); {n_runs} runs. The band is a 20 nm sheet (2-D spread), so it overestimates the "
                             "concentration reaching a neighbour compared with 3-D neuropil")]


@register("published.rice_cragg_peak", "published")
def check_rice_cragg(ctx):
    """Dopamine uptake does not change the peak [DA] within 1 µm of a release site (Rice & Cragg
    2008): in the dorsal-striatal preset, the peak over time (0.25, 0.5, 1 ms) of the mean [DA]
    in the shell 0.75–1 µm from the release point, with DAT versus without; accepted within ±5 %."""
    times = (0.25, 0.5, 1.0)
    over = {"timing.dt_volume_us": 10.0, "timing.sample_interval_us": 10.0, "geometry.domain_radius_um": 5.0}
    n_runs = ctx.n(6, 16)
    peak, notes = {}, []
    for arm, extra in (("DAT", {}), ("no DAT", {"sites.DAT.enabled": False})):
        means = []
        for j, t in enumerate(times):
            m = presets.build("dopaminergic_striatal", **{**over, **extra, "timing.duration_ms": t})
            src = np.asarray(m.releases[0].position_um if m.releases[0].position_um is not None
                             else (m.geometry.varicosity_radius_um * (1 + 1e-9), 0.0, 0.0))
            pos = _positions(m, 101 + j, n_runs, "volume_positions", ctx.workers)
            counts = np.array([np.sum((lambda d: (d >= 0.75) & (d < 1.0))(np.linalg.norm(p - src, axis=1)))
                               for p in pos], dtype=float)
            means.append((counts.mean(), counts.std(ddof=1) / math.sqrt(n_runs)))
        i = int(np.argmax([x[0] for x in means]))
        peak[arm] = means[i]
        notes.append(f"{arm}: " + ", ".join(f"{t:g} ms {x[0]:.0f}" for t, x in zip(times, means)))
    (a, sa), (b, sb) = peak["DAT"], peak["no DAT"]
    ratio = a / b
    se = ratio * math.sqrt((sa / a) ** 2 + (sb / b) ** 2)
    return [range_check("published.rice_cragg_peak", "published", ratio, 0.95, 1.05, "", expected=1.0, se=se,
                        citation=RICE_CRAGG, what="no effect of uptake: ratio within ±5 %",
                        note="peak molecules in the shell per run, " + "; ".join(notes)
                             + f"; {n_runs} runs of the preset's 3000 molecules; domain 5 µm, 10 µs volume steps")]


SERT_FRACTIONS = (0.5, 0.2, 0.1, 0.05)        # SERT expression left after a lesion (1 − loss)
SSRI, SSRI_OCCUPANCY = "fluvoxamine", 0.8     # the SSRI of Daws et al. 2003, at ≈ the clinical occupancy
_SERT_CELL = {"geometry.domain_boundary": "reflecting", "release.molecules": 2000, "timing.duration_ms": 500.0}


def sert_closed_cell(expression=1.0, drugs_=None):
    """The serotonergic preset in a closed cell: its 10 µm domain made reflecting, so that SERT uptake
    is the only sink (the preset has no degradation), with SERT expression scaled by ``expression``
    and 2000 molecules released (≈ 4 nM over the extracellular space, C/Km ≈ 0.02: linear regime)."""
    adaptation = {"transporter_expression": {"SERT": expression}} if expression != 1.0 else None
    model = presets.build("serotonergic", drugs=drugs_, adaptation=adaptation, **_SERT_CELL)
    if model.degradation:
        raise ValueError("the serotonergic preset gained a degradation route: uptake is no longer the only sink")
    return model


@dataclass
class _UptakeArm:
    """One arm of the closed-cell SERT experiment: k̂ = U/∫free dt in s⁻¹ and its SE √U/∫free dt."""
    k: float
    se: float
    uptakes: float
    exposure_s: float           # ∫free dt summed over runs (molecule·s)
    mean_free: float            # exposure-weighted mean number of free molecules, ∫free² dt / ∫free dt
    theta: float                # realised fraction of SERT blocked at t = 0 (0 without a drug)
    sites: float                # SERT sites summed over runs
    escaped: float


def _uptake_arm(model, seed, n_runs, workers) -> _UptakeArm:
    """Run the closed cell and estimate its first-order uptake rate. With first-order uptake each free
    molecule is taken up at rate k, so k̂ = U/∫free dt is the maximum-likelihood rate of censored
    exponential lifetimes and SE(k̂) = k̂/√U (U counts uptakes plus the bound molecules that will
    be translocated)."""
    ens = run(model, n_runs=n_runs, seed=seed, workers=workers)
    num, den = _clearance_terms(ens, model)
    free = ens.series[:, :, ens.columns.index("free")].astype(float)
    second = np.trapezoid(free ** 2, ens.times_ms * 1e-3, axis=1).sum()
    sert = next(g for g in model.sites if g.label == "SERT").scheme.states
    at_start = {st: ens.series[:, 0, ens.columns.index(f"SERT:{st}")].sum() for st in sert}
    total = sum(at_start.values())
    blocked = sum(n for st, n in at_start.items() if st.startswith("blocked:"))
    u, exposure = float(num.sum()), float(den.sum())
    return _UptakeArm(u / exposure, math.sqrt(u) / exposure, u, exposure, second / exposure, blocked / total, total,
                      float(ens.series[:, -1, ens.columns.index("escaped")].sum()))


def _sert_arms(ctx):
    """The arms of the experiment: SERT expression 1 and each of SERT_FRACTIONS without drug, and
    1 and the smallest fraction with the SSRI at SSRI_OCCUPANCY."""
    n_runs = ctx.n(2, 4)
    c_ssri = drugs.concentration_for_occupancy(SSRI, "SERT", SSRI_OCCUPANCY)
    arms = {(f, None): _uptake_arm(sert_closed_cell(f), 131 + j, n_runs, ctx.workers)
            for j, f in enumerate((1.0,) + SERT_FRACTIONS)}
    for j, f in enumerate((1.0, SERT_FRACTIONS[-1])):
        arms[(f, SSRI)] = _uptake_arm(sert_closed_cell(f, {SSRI: c_ssri}), 141 + j, 2 * n_runs, ctx.workers)
    return arms, n_runs, c_ssri


def _ratio_se(a, b):
    """a.k / b.k and its SE (independent arms, relative SEs in quadrature)."""
    r = a.k / b.k
    return r, r * math.sqrt((a.se / a.k) ** 2 + (b.se / b.k) ** 2)


def _linearity_rows(arms, n_runs):
    control = arms[(1.0, None)]
    rows = []
    for f in SERT_FRACTIONS:
        arm = arms[(f, None)]
        r, se = _ratio_se(arm, control)
        rows.append(stat_check(f"published.daws_sert.uptake_linear.f{f:g}", "published", f, r, se, "",
                               "k̂ = U/∫free dt, SE k̂/√U per arm, relative SEs in quadrature", citation=MONTANEZ,
                               note=f"k̂(f)/k̂(1) in the closed cell (uptake the only sink; escaped: {arm.escaped:.0f}); "
                                    f"k̂(1) = {control.k:.3f} ± {control.se:.3f} s⁻¹, k̂({f:g}) = {arm.k:.4f} ± "
                                    f"{arm.se:.4f} s⁻¹ from {arm.uptakes:.0f} uptakes; {n_runs} runs of 2000 molecules"))
    return rows


def _ssri_rows(arms, km_M, volume_ecs_um3, c_ssri):
    """The SSRI slows clearance by 1/(1 − θ) with all SERT, and hardly changes it at 95 % SERT loss."""
    k0, drugged = arms[(1.0, None)], arms[(1.0, SSRI)]
    slowing, se_counts = _ratio_se(k0, drugged)
    expected = 1.0 / (1.0 - SSRI_OCCUPANCY)
    # each run draws its blocked sites: binomial spread of the realised θ over all runs' sites
    se_theta = math.sqrt(SSRI_OCCUPANCY * (1 - SSRI_OCCUPANCY) / drugged.sites) * expected ** 2
    se = math.hypot(se_counts, se_theta)
    saturation = drugged.mean_free / (MOLECULES_PER_M_UM3 * volume_ecs_um3) / km_M
    lo, hi = expected - Z * se, expected + Z * se + saturation * expected
    control = Check("published.daws_sert.ssri_control", "published", expected, slowing,
                    f"[−{Z:g} SE, +{Z:g} SE + saturation bias] = [{lo:.4g}, {hi:.4g}] × (SE {se:.3g}: Poisson uptake "
                    f"counts and the binomial draw of θ; saturation bias ⟨C⟩/Km = {saturation:.3g} of 1/(1 − θ))",
                    "pass" if lo <= slowing <= hi else "fail", DAWS,
                    f"k̂ without / with {SSRI} {c_ssri * 1e9:.3g} nM (realised θ = {drugged.theta:.4f}): "
                    f"{k0.k:.3f} / {drugged.k:.3f} s⁻¹ in the closed cell", "×", se, lo, hi)
    f = SERT_FRACTIONS[-1]
    lesion, both = arms[(f, None)], arms[(f, SSRI)]
    change = abs(lesion.k - both.k) / k0.k
    se_change = math.sqrt(lesion.se ** 2 + both.se ** 2 + (change * k0.se) ** 2) / k0.k
    loss = range_check(f"published.daws_sert.ssri_loss{int(round((1 - f) * 100))}", "published", change, None, 0.05,
                       "", expected=both.theta * f, se=se_change, citation=DAWS,
                       what="change < 5 % of control k̂",
                       note=f"|k̂({f:g}) − k̂({f:g}, {SSRI})| / k̂(1): {lesion.k:.4f} − {both.k:.4f} s⁻¹ over "
                            f"{k0.k:.3f} s⁻¹; expected θ·f = {both.theta * f:.4f} (the SSRI blocks θ of what SERT is "
                            f"left); {(0.05 - change) / se_change:.1f} SE below the bound")
    return [control, loss]


def _reserve_row(arms):
    control, lesion = arms[(1.0, None)], arms[(0.2, None)]
    slowing, se = _ratio_se(control, lesion)
    return Check("published.daws_sert.reserve", "published", 1.0, slowing,
                 "documented discrepancy (no verdict): Daws et al. 2003 found no slowing below > 90 % SERT loss",
                 "discrepancy", f"{DAWS}; {MONTANEZ}",
                 "clearance slowing k̂(1)/k̂(0.2) at 80 % SERT loss in the closed cell. Daws et al. 2003 observed no "
                 "loss of 5-HT clearance until > 90 % SERT loss (5,7-DHT lesions, chronoamperometry of exogenous 5-HT "
                 "in rat CA3, in vivo): a tissue-level result with compensation by other uptake routes. mcsyn's uptake "
                 "is linear in SERT (rows uptake_linear); a reserve would need lesion-induced compensation or "
                 "SSRI-insensitive uptake (NET, OCT3, PMAT, DAT), which the presets do not include, and SERT+/− mice "
                 "do show slower maximal clearance (Montañez et al. 2003). The former t½ rows (preset geometry) "
                 "passed only because escape through the assumed 10 µm absorbing edge dilutes the SERT effect",
                 "×", se)


@register("published.daws_sert", "published")
def check_daws_sert(ctx):
    """SERT function after graded loss (Daws et al. 2003), restated for one varicosity in a closed cell
    of tissue (the serotonergic preset's 10 µm domain made reflecting: uptake is the only sink).

    (a) Uptake is linear in SERT expression: k̂(f)/k̂(1) = f within 5 SE for f = 0.5, 0.2, 0.1, 0.05
    (SERT+/− mice clear 5-HT more slowly, Montañez et al. 2003). k̂ = U/∫free dt is the
    maximum-likelihood first-order uptake rate (uptakes over the exposure of free molecules), with
    SE k̂/√U. (b) Fluvoxamine at the concentration for θ = 80 % occupancy (C = 4·K_i) slows
    clearance by 1/(1 − θ) with all SERT. The SE combines the uptake counts with the binomial draw of
    the blocked sites; the tolerance is −5 SE to +5 SE plus the saturation bias ⟨C⟩/Km·1/(1 − θ),
    where ⟨C⟩ is the exposure-weighted mean free concentration of the drug arm, ∫free² dt/∫free dt
    over the extracellular volume: 1/(1 − θ) is exact for first-order uptake, which holds only for
    C ≪ Km, and the drug arm, clearing 5× more slowly, is the more saturated one, so the bias can
    only raise the ratio (the first milliseconds near the release point, more saturated than the
    mean, carry a small share of the exposure). At 95 % SERT loss the same SSRI changes k̂ by < 5 % of
    control (Daws: no fluvoxamine effect above 90 % loss). The reserve itself (no slowing until
    > 90 % loss) is recorded as a documented discrepancy, with its reason."""
    arms, n_runs, c_ssri = _sert_arms(ctx)
    model = sert_closed_cell()
    _, group, rates = _preset_transporter("serotonergic", "SERT")
    _, km, _, _ = _bulk_targets("serotonergic", "SERT", model, group, rates)
    g = model.geometry
    volume_ecs = g.volume_fraction * 4.0 / 3.0 * math.pi * (g.domain_radius_um ** 3 - g.varicosity_radius_um ** 3)
    return _linearity_rows(arms, n_runs) + _ssri_rows(arms, km, volume_ecs, c_ssri) + [_reserve_row(arms)]


@register("published.meyer_occupancy", "published", quick=True)
def check_meyer(ctx):
    """≈ 80 % SERT occupancy at a clinical SSRI concentration (Meyer 2004; 77–85 %, Meyer 2001):
    the serotonergic preset with fluoxetine at the clinical free brain concentration of
    ≈ 4·K_i (≈ 3 nM; K_i Tatsumi 1997), the measured fraction of SERT blocked, and the resulting slowing of
    uptake clearance (the preset's own 5000-molecule release) against 1/(1 − θ) for θ in 77–85 %."""
    c = 3e-9
    occ, n, _ = _sert_states_at_zero({"fluoxetine": c}, 121)
    theta = occ["blocked:fluoxetine"]
    rows = [range_check("published.meyer_occupancy.theta", "published", theta * 100, 77.0, 85.0, "%", expected=80.0,
                        se=math.sqrt(theta * (1 - theta) / n) * 100, citation=MEYER,
                        note="fluoxetine 3 nM free (K_i Tatsumi et al. 1997; the clinical free concentration is "
                             "back-calculated as ≈ 4·K_i from the 80 % occupancy itself, so this checks the drug → "
                             "preset → per-run occupancy pipeline rather than pharmacokinetics)")]
    if not ctx.quick:
        n_runs = 6
        k0, se0, e0, m0 = _clearance_ratio(None, 122, n_runs, 5000, ctx.workers, duration_ms=300.0)
        k1, se1, e1, m1 = _clearance_ratio({"fluoxetine": c}, 123, 2 * n_runs, 5000, ctx.workers,
                                           duration_ms=300.0)
        ratio = k0 / k1
        rse = ratio * math.sqrt((se0 / k0) ** 2 + (se1 / k1) ** 2)
        t0 = np.nanmean(e0.metrics["clearance_half_time_ms"])
        t1 = np.nanmean(e1.metrics["clearance_half_time_ms"])
        rows.append(range_check("published.meyer_occupancy.clearance_slowing", "published", ratio, 1 / (1 - 0.77),
                                1 / (1 - 0.85), "×", expected=5.0, se=rse, citation=MEYER,
                                what="1/(1 − θ) for θ in [77, 85] %",
                                note=f"uptake clearance rate control {k0:.3f} s⁻¹ vs fluoxetine {k1:.3f} s⁻¹; "
                                     f"t½ of free 5-HT {t0:.1f} → {t1:.1f} ms ({t1 / t0:.2f}×; the slice FSCV decay "
                                     "slows 2–3× under full SERT block, Mol Psychiatry 2025, "
                                     "doi 10.1038/s41380-025-02930-4)"))
    return rows


FRANKS = ("Franks, Stevens & Sejnowski 2003, J Neurosci 23:3186 (abstract: channel noise 8 %, Δq 58 %, release "
          "location 36 % of the variance; potency length constant ~100 nm, no activation from release > 300 nm)")
FRANKS_FRACTIONS_PERCENT = {"channel": 8.0, "quantal": 58.0, "position": 36.0}
# What the preset's geometry, receptor number and the ASSUMED quantal CV may move each share by (module note
# of the check): ±15 percentage points for the large shares, a factor of 2 for the small channel-noise share
FRANKS_BANDS_PERCENT = {"channel": (4.0, 16.0), "quantal": (43.0, 73.0), "position": (21.0, 51.0)}
FRANKS_REASONS = {
    "channel": "channel noise is binomial-like, CV² ≈ (1 − p_open)/(N p_open): the preset has ~90 AMPA receptors "
               "(1280 /µm² on a 150 nm PSD) of which ~16 open at the peak, and its share is that CV² over the "
               "total CV², which the ASSUMED quantal CV sets; Franks's receptor number is not in the abstract read",
    "quantal": "the Δq share grows with the square of the quantal CV, ASSUMED 0.3 here (not stated in the source "
               "read); the preset's AMPA receptors are far from saturated by one quantum, so Δq passes through",
    "position": "potency falls slowly across the preset's release disk (the PSD radius, 150 nm): its length "
                "constant (row franks_potency.length_constant) is ~2.5× Franks's, so release location moves the "
                "mean little; the share is also the least precise of the three (a difference of two noisy variances)",
    "length_constant": "the preset's receptors cover a 150 nm PSD and bind slowly enough that glutamate spreading "
                       "in the 20 nm slab still reaches them from 200–400 nm; opening the glial band's edge "
                       "(absorbing) changes λ little (≈ 230 nm in a trial run), so the slab and receptor kinetics, "
                       "not the closed band, set it; Franks's geometry and receptor layout are not in the abstract",
    "far_release": "as for the length constant: a 3000-molecule quantum released 300–400 nm from the centre of the "
                   "preset's PSD still opens AMPA receptors in the 2-D slab",
}


def _franks_row(name, measured, se, lower, upper, unit, expected, tolerance, reason, note):
    """Within the stated tolerance: pass. Outside: a documented discrepancy with its reason. Not finite: fail
    (the method broke)."""
    if not (math.isfinite(measured) and math.isfinite(se)):
        verdict = "fail"
    else:
        verdict = "pass" if lower <= measured <= upper else "discrepancy"
    if verdict == "discrepancy":
        note = f"{note}. Outside the tolerance; reason: {reason}"
    return Check(name, "published", expected, float(measured), tolerance, verdict, FRANKS, note, unit, float(se),
                 lower, upper)


def _franks_fraction_rows(d, n_positions):
    rows = []
    for source, expected in FRANKS_FRACTIONS_PERCENT.items():
        lo, hi = FRANKS_BANDS_PERCENT[source]
        what = "factor 2" if source == "channel" else "±15 percentage points"
        rows.append(_franks_row(
            f"published.franks_variance.{source}", d.fractions[source] * 100, d.se[source] * 100, lo, hi, "%",
            expected, f"{what}: [{lo:g}, {hi:g}] % (the preset is not Franks's synapse; see the check's description)",
            FRANKS_REASONS[source],
            f"share of Var(AMPA open peak) from {source}: {d.fractions[source]:.1%} (bootstrap 95 % CI "
            f"{d.ci_low[source]:.1%} to {d.ci_high[source]:.1%}, never clipped); variances total "
            f"{d.variances['total']:.3g}, position fixed {d.variances['position_fixed']:.3g}, channel only "
            f"{d.variances['channel']:.3g} (open receptors²); mean {d.mean:.3g}, CV {d.cv:.3g}; {d.n_runs['total']} "
            f"runs per ensemble, {n_positions} fixed positions; quantal CV {variability.QUANTAL_CV_ASSUMED} ASSUMED"))
    fixed = np.asarray(d.group_means["position_fixed"])
    se = math.hypot(math.sqrt(d.variances["total"] / d.n_runs["total"]), fixed.std(ddof=1) / math.sqrt(len(fixed)))
    rows.append(stat_check("published.franks_variance.nesting", "published", d.mean, float(fixed.mean()), se, "",
                           "total-ensemble SE and the spread of the fixed positions' means, in quadrature",
                           citation=FRANKS, note="the fixed-position ensembles sample the same mean response as the "
                                                 "ensemble with every source drawn (positions from the same disk, "
                                                 "quanta from the same gamma): the nesting is consistent"))
    return rows


def _franks_potency_rows(curve, n_runs):
    table = curve.table
    rel = dict(zip(table["distance_um"], table["relative"]))
    far = max(d for d in rel if d >= 0.3)
    i_far = list(table["distance_um"]).index(far)
    rel_se = table["se"].iloc[i_far] / table["mean"].iloc[0]
    note = ("mean open AMPA peak against release distance (fixed quantum, cleft enlarged to 450 nm so that the "
            "release can lie 400 nm away): " + ", ".join(f"{d * 1e3:.0f} nm {r:.2f}" for d, r in rel.items())
            + f" of the centre's {table['mean'].iloc[0]:.3g}; {n_runs} runs per distance; A·exp(−d/λ) weighted fit")
    return [_franks_row("published.franks_potency.length_constant", curve.length_constant_um * 1e3,
                        curve.length_constant_se_um * 1e3, 50.0, 200.0, "nm", 100.0,
                        "factor 2 of ~100 nm: [50, 200] nm", FRANKS_REASONS["length_constant"], note),
            _franks_row("published.franks_potency.far_release", rel[far] * 100, rel_se * 100, 0.0, 5.0, "%", 0.0,
                        f"no activation from > 300 nm: < 5 % of the centre's potency at {far * 1e3:.0f} nm",
                        FRANKS_REASONS["far_release"], note)]


@register("published.franks_variance", "published")
def check_franks_variance(ctx):
    """The sources of quantal variability of Franks, Stevens & Sejnowski 2003 in the glutamatergic
    preset: a miniature (one vesicle, quantum gamma-distributed with CV 0.3 ASSUMED, released
    uniformly over the PSD-facing disk) and the share of the variance of the peak number of open AMPA
    receptors from channel noise, quantal size and release position, by nested ensembles
    (:mod:`mcsyn.variability`), against 8 / 58 / 36 %; and the potency of a release site against its
    distance from the PSD centre (cleft enlarged to 450 nm) against a length constant of ~100 nm and no
    activation beyond 300 nm.

    Tolerance: the preset is not Franks's synapse (its receptor number, PSD radius, cleft and the
    assumed quantal CV differ or are unknown), so a share agrees within ±15 percentage points (the
    channel-noise share, small, within a factor of 2) and λ within a factor of 2; a share outside is
    reported as a documented discrepancy with its reason, not tuned. The row ``nesting`` (5 SE) checks
    that the nested ensembles sample the same mean response, and fails if the method breaks."""
    n_runs, n_positions = ctx.n(48, 240), ctx.n(6, 12)
    model = presets.build("glutamatergic", **{"timing.duration_ms": 1.5})
    d = variability.variance_decomposition(model, n_runs, 3186, n_positions=n_positions, workers=ctx.workers)
    wide = presets.build("glutamatergic", **{"timing.duration_ms": 1.5, "geometry.cleft_radius_um": 0.45,
                                            "geometry.band_outer_radius_um": 0.75})
    n_potency = ctx.n(8, 24)
    curve = variability.potency_curve(wide, n_potency, 3187, workers=ctx.workers)
    return _franks_fraction_rows(d, n_positions) + _franks_potency_rows(curve, n_potency)
