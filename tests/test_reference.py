"""The numpy reference (mcsyn.reference) against closed-form theory, and the compiled kernel
(mcsyn.run_one / mcsyn.run) against the reference.

Statistics: every test uses fixed seeds and a tolerance set from the variance of what it measures,
never tuned to pass. Means are compared in units of their standard error (SE estimated from the
samples), with |z| <= Z_MAX = 5 (two-sided false-alarm rate 6e-7 per comparison); distributions
with two-sample Kolmogorov-Smirnov or chi-square homogeneity tests at P_MIN = 1e-5. Where the
discretisation of time has a known O(Δt) effect on a closed form it is corrected for explicitly
and named in the test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

import mcsyn
from mcsyn import reference as ref

Z_MAX = 5.0
P_MIN = 1e-5

D_GLU = 0.33          # µm²/ms
H = 0.02              # µm
R_CLEFT = 0.2         # µm
R_PSD = 0.15          # µm
TILE = 0.01           # µm


# ==================================================================================================
# helpers

def z_of_means(a, b):
    """z statistic of mean(a) - mean(b), with the SE of the difference from both samples."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    if se == 0.0:                                 # both samples constant
        return 0.0 if a.mean() == b.mean() else math.inf
    return (a.mean() - b.mean()) / se


def assert_series_means_agree(ens, refs, names, times_ms):
    """Kernel ensemble and reference runs have the same mean of each named series at each time
    (|z| < Z_MAX, with the SE of the difference from both samples)."""
    col = {c: j for j, c in enumerate(ens.columns)}
    for name in names:
        for t in times_ms:
            i = int(np.argmin(np.abs(ens.times_ms - t)))
            k = ens.series[:, i, col[name]]
            r = np.array([res.series[name][i] for res in refs])
            z = z_of_means(k, r)
            assert abs(z) < Z_MAX, (f"{name} at {t} ms: kernel {k.mean():.2f} ± {k.std(ddof=1) / math.sqrt(len(k)):.2f}, "
                                    f"reference {r.mean():.2f} ± {r.std(ddof=1) / math.sqrt(len(r)):.2f} (z = {z:.2f})")


def psd_tile_centres(radius_psd=R_PSD, radius_slab=R_CLEFT, tile=TILE):
    """Centres of the kernel's tiles (grid [-G, G]², G = ceil(2R/tile) tile / 2) with r < R_psd."""
    n_tile = math.ceil(2.0 * radius_slab / tile)
    g = 0.5 * n_tile * tile
    c = -g + (np.arange(n_tile) + 0.5) * tile
    x, y = np.meshgrid(c, c, indexing="ij")
    inside = x ** 2 + y ** 2 < radius_psd ** 2
    return np.column_stack([x[inside], y[inside]])


def chosen_sites(n, seed):
    cand = psd_tile_centres()
    return cand[np.random.default_rng(seed).choice(len(cand), size=n, replace=False)]


def cleft_model(*, outside, molecules, duration_ms, sample_us=10.0, sites=(), dt_us=1.0, degradation=(), h_um=H):
    return mcsyn.SynapseModel(
        species=[mcsyn.Species("glutamate", D_GLU)],
        geometry=mcsyn.Geometry(cleft_height_um=h_um, cleft_radius_um=R_CLEFT, psd_radius_um=R_PSD, outside=outside),
        sites=list(sites),
        releases=[mcsyn.Release(time_ms=0.0, molecules=molecules, position_um=(0.0, 0.0))],
        degradation=list(degradation),
        timing=mcsyn.Timing(duration_ms=duration_ms, dt_fine_us=dt_us, sample_interval_us=sample_us),
        tile_um=TILE)


def homogeneity_pvalue(counts_a, counts_b, min_expected=5.0):
    """Chi-square test that two histograms over the same bins come from one distribution.
    Adjacent bins are merged (left to right) until each merged bin expects >= min_expected in both
    samples."""
    a, b = np.asarray(counts_a, float), np.asarray(counts_b, float)
    na, nb = a.sum(), b.sum()
    merged, acc_a, acc_b = [], 0.0, 0.0
    for ca, cb in zip(a, b):
        acc_a += ca
        acc_b += cb
        tot = acc_a + acc_b
        if tot * min(na, nb) / (na + nb) >= min_expected:
            merged.append((acc_a, acc_b))
            acc_a = acc_b = 0.0
    if acc_a + acc_b > 0:
        if merged:
            la, lb = merged.pop()
            merged.append((la + acc_a, lb + acc_b))
        else:
            merged.append((acc_a, acc_b))
    table = np.array(merged).T
    if table.shape[1] < 2:
        return 1.0
    return stats.chi2_contingency(table, correction=False)[1]


def reference_runs(n_runs, seed, **kwargs):
    """Independent reference runs (seeds spawned from ``seed``); returns the list of Results."""
    return [ref.simulate_slab(rng=np.random.default_rng(ss), **kwargs)
            for ss in np.random.SeedSequence(seed).spawn(n_runs)]


# ==================================================================================================
# (a) the reference against theory

def test_per_hit_probability_units_agree_with_package():
    # µm/µs arithmetic in the reference vs. SI arithmetic in mcsyn.compile
    for kon, tile, dt, d in [(1e7, 0.01, 1.0, 0.33), (4.59e6, 0.005, 0.5, 0.2), (3e8, 0.02, 2.0, 0.76)]:
        assert ref.per_hit_probability(kon, tile, dt, d) == pytest.approx(
            mcsyn.per_hit_probability(kon, tile, dt, d), rel=1e-12)
    # k_on = 1e7 M⁻¹s⁻¹ is 1e7 · 1e15 / N_A µm³/s = 1.6605e-2 µm³/s
    assert ref.kon_um3_per_us(1e7) * 1e6 == pytest.approx(1.66053907e-2, rel=1e-8)


def test_reference_lateral_msd_is_2Dt_and_gaussian():
    # closed slab with the rim 28 rms displacements away: free 2D diffusion laterally
    n, steps, dt = 20000, 200, 1.0
    res = ref.simulate_slab(n, D_GLU, n_steps=steps, dt_us=dt, radius_um=10.0, sample_every=steps, seed=11)
    var = 2.0 * D_GLU * 1e-3 * steps * dt                     # µm² per axis
    sq = res.positions[:, :2].ravel() ** 2                     # x² and y² are independent estimates
    z = (sq.mean() - var) / (sq.std(ddof=1) / math.sqrt(sq.size))
    assert abs(z) < Z_MAX, f"MSD per axis {sq.mean():.5f} µm² vs 2Dt = {var:.5f} µm² (z = {z:.2f})"
    p = stats.kstest(res.positions[:, 0], stats.norm(scale=math.sqrt(var)).cdf).pvalue
    assert p > P_MIN, f"x is not N(0, 2Dt): KS p = {p:.2g}"


def test_reference_z_occupancy_is_uniform():
    # released at z = h; σ = 26 nm > h, so after 50 steps z is uniform on [0, h] (reflecting walls)
    n = 20000
    res = ref.simulate_slab(n, D_GLU, n_steps=50, dt_us=1.0, radius_um=10.0, sample_every=50, seed=12)
    z = res.positions[:, 2]
    assert z.min() >= 0.0 and z.max() <= H
    counts = np.histogram(z, bins=20, range=(0.0, H))[0]
    p = stats.chisquare(counts).pvalue
    assert p > P_MIN, f"z occupancy not uniform: {counts} (chi-square p = {p:.2g})"


def test_reference_closed_rim_keeps_a_uniform_density_uniform():
    # Start uniform in the cylinder; a correct reflecting rim keeps it uniform. The band within σ/2
    # of the rim is the sensitive place (mirroring end points radially depletes it by ~5 %).
    n, steps = 200000, 20
    rng = np.random.default_rng(18)
    r = R_CLEFT * np.sqrt(rng.random(n))
    a = rng.uniform(0.0, 2.0 * np.pi, n)
    start = np.column_stack([r * np.cos(a), r * np.sin(a), rng.uniform(0.0, H, n)])
    res = ref.simulate_slab(n, D_GLU, n_steps=steps, start_xyz=start, sample_every=steps, rng=rng)
    rr = np.hypot(res.positions[:, 0], res.positions[:, 1])
    sigma = math.sqrt(2.0 * D_GLU * 1e-3 * 1.0)
    for lo, hi in [(R_CLEFT - sigma / 2, R_CLEFT), (R_CLEFT - sigma, R_CLEFT - sigma / 2), (0.0, R_CLEFT / 2)]:
        frac = (hi ** 2 - lo ** 2) / R_CLEFT ** 2
        obs = np.count_nonzero((rr >= lo) & (rr < hi))
        z = (obs - n * frac) / math.sqrt(n * frac * (1 - frac))
        assert abs(z) < Z_MAX, f"{obs} molecules in r ∈ [{lo:.4f}, {hi:.4f}) µm, uniform gives {n * frac:.0f} (z = {z:.2f})"
    assert rr.max() < R_CLEFT


def test_reference_mean_exit_time_from_disk_centre():
    # absorbing rim at R: mean first-passage time from the centre of a disk is R² / (4D).
    # Escapes are stamped at the end of their step, on average Δt/2 after the crossing: subtract it.
    n, dt = 20000, 1.0
    d = D_GLU * 1e-3                                           # µm²/µs
    theory = R_CLEFT ** 2 / (4.0 * d)                          # 30.3 µs
    steps = int(12 * theory / dt)                              # survival ~ e^-17 at the end
    res = ref.simulate_slab(n, D_GLU, n_steps=steps, dt_us=dt, rim="open", start_xyz=(0.0, 0.0, 0.5 * H),
                            sample_every=steps, seed=13)
    t = res.escape_times_us
    assert len(t) == n
    mean = t.mean() - 0.5 * dt
    z = (mean - theory) / (t.std(ddof=1) / math.sqrt(n))
    assert abs(z) < Z_MAX, f"mean exit time {mean:.3f} µs vs R²/4D = {theory:.3f} µs (z = {z:.2f})"


def test_reference_binding_equilibrium_is_mass_action():
    # Closed cleft, M one-site receptors, N molecules. At equilibrium the number bound, n, follows
    # the canonical law of independent molecules binding independent sites:
    #     P(n) ∝ C(M, n) · N! / (N - n)! · (K / V)^n,   V = π R² h,   K = k_on / k_off,
    # which the reference's time stepping keeps exactly (binding stamped at the crossing time,
    # unbinding placed by the time reversal of a hit; see the module docstring), up to the O(p)
    # loss when a site is hit twice in one step, < 0.5 % at p = 0.16 per hit.
    # SE from batch means of a long run.
    m_sites, n_mol, kon, koff, dt = 40, 170, 1e8, 1e4, 1.0
    steps, burn, batches = 9000, 1000, 10
    res = ref.simulate_slab(n_mol, D_GLU, n_steps=steps, dt_us=dt, sites_xy=chosen_sites(m_sites, 1),
                            kon_per_M_per_s=kon, koff_per_s=koff, sample_every=5, seed=14)
    bound = res.series["bound"][res.times_ms * 1e3 >= burn]
    means = np.array([b.mean() for b in np.array_split(bound, batches)])
    se = means.std(ddof=1) / math.sqrt(batches)
    volume = math.pi * R_CLEFT ** 2 * H
    k_eff = ref.kon_um3_per_us(kon) / (koff * 1e-6)                # µm³
    n = np.arange(m_sites + 1)
    logw = (special.gammaln(m_sites + 1) - special.gammaln(n + 1) - special.gammaln(m_sites - n + 1)
            + special.gammaln(n_mol + 1) - special.gammaln(n_mol - n + 1) + n * math.log(k_eff / volume))
    w = np.exp(logw - logw.max())
    theory = float((n * w).sum() / w.sum())
    z = (bound.mean() - theory) / se
    assert abs(z) < Z_MAX, f"equilibrium bound {bound.mean():.2f} ± {se:.2f} vs mass action {theory:.2f}"


def test_reference_volume_exit_time_from_shell():
    # D* = D/λ², reflecting sphere a, absorbing sphere b: T(r0) = (b² - r0²)/(6D*) + a³/(3D*) (1/b - 1/r0)
    n, dt, lam, a, b, r0 = 20000, 10.0, 1.54, 0.25, 1.0, 0.3
    ds = D_GLU / lam ** 2 * 1e-3
    theory = (b * b - r0 * r0) / (6 * ds) + a ** 3 / (3 * ds) * (1 / b - 1 / r0)     # ≈ 1003 µs
    steps = int(12 * theory / dt)
    res = ref.simulate_volume(n, D_GLU, n_steps=steps, dt_us=dt, tortuosity=lam, inner_radius_um=a,
                              domain_radius_um=b, start_xyz=(r0, 0.0, 0.0), sample_every=steps, seed=15)
    t = res.escape_times_us
    assert len(t) == n
    mean = t.mean() - 0.5 * dt
    z = (mean - theory) / (t.std(ddof=1) / math.sqrt(n))
    assert abs(z) < Z_MAX, f"mean exit time {mean:.1f} µs vs theory {theory:.1f} µs (z = {z:.2f})"
    assert np.all(np.linalg.norm(res.positions, axis=1) >= a)


@pytest.mark.parametrize("where", ["slab", "volume"])
def test_reference_first_order_removal_is_exponential(where):
    # nothing escapes (closed rim / far outer sphere): survivors ~ Binomial(n, exp(-k t))
    n, k = 5000, 2000.0
    if where == "slab":
        res = ref.simulate_slab(n, D_GLU, n_steps=500, dt_us=1.0, removal_per_s=k, sample_every=100, seed=16)
    else:
        res = ref.simulate_volume(n, D_GLU, n_steps=50, dt_us=10.0, domain_radius_um=50.0, removal_per_s=k,
                                  sample_every=10, seed=17)
    t_s = res.times_ms * 1e-3
    survive = np.exp(-k * t_s)
    se = np.sqrt(n * survive * (1 - survive)) + 1e-12
    z = (res.series["free"] - n * survive) / se
    assert np.all(np.abs(z) < Z_MAX), f"free counts {res.series['free']} vs {np.round(n * survive)}"
    assert np.array_equal(res.series["free"] + res.series["degraded"], np.full(len(t_s), n))


# ==================================================================================================
# (b) the kernel against the reference

@pytest.mark.parametrize("duration_ms", [0.05, 0.2])
def test_kernel_closed_cleft_positions_match_reference(duration_ms):
    # no sites: molecules are independent, so final positions are iid and a two-sample KS test on
    # r (tests the rim reflection) and z (the wall folding) is valid
    n = 4000
    m = cleft_model(outside="closed", molecules=n, duration_ms=duration_ms)
    kpos = mcsyn.run_one(m, seed=21, keep_positions=True).positions["slab_positions"]
    rres = ref.simulate_slab(n, D_GLU, n_steps=int(round(duration_ms * 1000)), dt_us=1.0, radius_um=R_CLEFT,
                             sample_every=10, seed=22)
    assert len(kpos) == n and len(rres.positions) == n
    for name, a, b in [("r", np.hypot(kpos[:, 0], kpos[:, 1]), np.hypot(rres.positions[:, 0], rres.positions[:, 1])),
                       ("z", kpos[:, 2], rres.positions[:, 2]),
                       ("angle", np.arctan2(kpos[:, 1], kpos[:, 0]), np.arctan2(rres.positions[:, 1], rres.positions[:, 0]))]:
        p = stats.ks_2samp(a, b).pvalue
        assert p > P_MIN, f"{name} distributions differ at t = {duration_ms} ms: KS p = {p:.2g}"
    assert np.hypot(kpos[:, 0], kpos[:, 1]).max() < R_CLEFT


def test_kernel_open_rim_exit_times_match_reference():
    # independent molecules: escapes per 10-µs sample interval form a multinomial histogram
    n, duration = 4000, 0.15
    m = cleft_model(outside="open", molecules=n, duration_ms=duration)
    k_esc = mcsyn.run_one(m, seed=23).series["escaped"].to_numpy()
    rres = ref.simulate_slab(n, D_GLU, n_steps=int(duration * 1000), dt_us=1.0, rim="open", sample_every=10, seed=24)
    r_esc = rres.series["escaped"]
    assert len(k_esc) == len(r_esc)
    hist_k = np.append(np.diff(k_esc), n - k_esc[-1])          # last bin: still inside at the end
    hist_r = np.append(np.diff(r_esc), n - r_esc[-1])
    p = homogeneity_pvalue(hist_k, hist_r)
    assert p > P_MIN, f"escape-time histograms differ (chi-square p = {p:.2g})\n{hist_k}\n{hist_r}"
    # the fraction escaped halfway, as a two-proportion z test
    i = len(k_esc) // 2
    fk, fr = k_esc[i] / n, r_esc[i] / n
    z = (fk - fr) / math.sqrt(fk * (1 - fk) / n + fr * (1 - fr) / n)
    assert abs(z) < Z_MAX, f"escaped fraction at {rres.times_ms[i]} ms: kernel {fk:.4f}, reference {fr:.4f}"


@pytest.mark.parametrize("location", ["postsynaptic", "presynaptic"])
def test_kernel_one_site_binding_time_course_matches_reference(location):
    # R + A <-> AR sites at fixed tile centres; compare, across independent runs, the mean number
    # bound and the mean cumulative number of binding events at several times. Closed rim.
    n_mol, n_sites, kon, koff = 600, 40, 2e7, 2e3
    duration, n_runs = 0.3, 40
    xy = chosen_sites(n_sites, 2)
    plane = 0 if location == "postsynaptic" else 1
    grp = mcsyn.SiteGroup(mcsyn.one_site_receptor("R", "glutamate", kon, koff), location,
                          arrangement="coordinates", coordinates_um=xy)
    m = cleft_model(outside="closed", molecules=n_mol, duration_ms=duration, sites=[grp])
    ens = mcsyn.run(m, n_runs=n_runs, seed=25, workers=1)
    col = {c: j for j, c in enumerate(ens.columns)}
    refs = reference_runs(n_runs, 26, n_molecules=n_mol, diffusion_um2_per_ms=D_GLU, n_steps=int(duration * 1000),
                          dt_us=1.0, sites_xy=xy, site_plane=np.full(n_sites, plane),
                          kon_per_M_per_s=kon, koff_per_s=koff, sample_every=10)
    assert np.allclose(ens.times_ms, refs[0].times_ms)
    assert_series_means_agree(ens, refs, ("bound", "binding_events", "free"), (0.01, 0.03, 0.1, 0.3))
    # conservation in both
    assert np.all(ens.series[:, :, col["free"]] + ens.series[:, :, col["bound"]] == n_mol)
    assert all(np.all(res.series["free"] + res.series["bound"] == n_mol) for res in refs)


@pytest.mark.parametrize("location,h_um", [("postsynaptic", H), ("presynaptic", 0.06)])
def test_kernel_rebinding_in_a_site_cluster_matches_reference(location, h_um):
    # 60 one-site receptors packed within 50 nm of the release point, open rim, p = 0.81 per hit and
    # k_off = 5e5/s (a bound molecule comes off after ~2 steps; unrealistically fast, to make the
    # time stepping matter): most bindings after the first are rebindings of molecules just
    # released by a site, so the number bound, binding events and escapes over time depend on where
    # unbinding puts a molecule (the time reversal of a hit, on the site's own membrane: the taller
    # cleft makes the plane matter) and on when a fresh binding may first unbind (binding is
    # stamped at the crossing time, so possibly at the end of its own step).
    n_mol, n_sites, kon, koff, duration, n_runs = 300, 60, 5e8, 5e5, 0.1, 30
    cand = psd_tile_centres()
    cand = cand[np.hypot(cand[:, 0], cand[:, 1]) < 0.05]
    xy = cand[np.random.default_rng(0).choice(len(cand), n_sites, replace=False)]
    grp = mcsyn.SiteGroup(mcsyn.one_site_receptor("R", "glutamate", kon, koff), location,
                          arrangement="coordinates", coordinates_um=xy)
    m = cleft_model(outside="open", molecules=n_mol, duration_ms=duration, sites=[grp], h_um=h_um)
    ens = mcsyn.run(m, n_runs=n_runs, seed=33, workers=1)
    refs = reference_runs(n_runs, 34, n_molecules=n_mol, diffusion_um2_per_ms=D_GLU, n_steps=int(duration * 1000),
                          dt_us=1.0, h_um=h_um, rim="open", sites_xy=xy,
                          site_plane=np.full(n_sites, 0 if location == "postsynaptic" else 1),
                          kon_per_M_per_s=kon, koff_per_s=koff, sample_every=10)
    assert_series_means_agree(ens, refs, ("bound", "binding_events", "escaped"), (0.01, 0.03, 0.06, 0.1))


def test_kernel_sites_at_a_reflecting_rim_match_reference():
    # presynaptic sites on every tile within 30 nm of a closed rim: membrane crossings that fall
    # beyond the rim (the step is reflected there) are taken at their mirror image inside, which
    # feeds these sites; compare the mean number bound and binding events across runs
    n_mol, kon, koff, duration, n_runs = 600, 2e7, 2e3, 0.2, 30
    n_tile = math.ceil(2 * R_CLEFT / TILE)
    c = -0.5 * n_tile * TILE + (np.arange(n_tile) + 0.5) * TILE
    x, y = np.meshgrid(c, c, indexing="ij")
    ring = (np.hypot(x, y) < R_CLEFT) & (np.hypot(x, y) > R_CLEFT - 0.03)
    xy = np.column_stack([x[ring], y[ring]])
    grp = mcsyn.SiteGroup(mcsyn.one_site_receptor("R", "glutamate", kon, koff), "presynaptic",
                          arrangement="coordinates", coordinates_um=xy)
    m = cleft_model(outside="closed", molecules=n_mol, duration_ms=duration, sites=[grp])
    ens = mcsyn.run(m, n_runs=n_runs, seed=37, workers=1)
    refs = reference_runs(n_runs, 38, n_molecules=n_mol, diffusion_um2_per_ms=D_GLU, n_steps=int(duration * 1000),
                          dt_us=1.0, sites_xy=xy, site_plane=np.ones(len(xy), int), kon_per_M_per_s=kon,
                          koff_per_s=koff, sample_every=10)
    assert_series_means_agree(ens, refs, ("bound", "binding_events"), (0.03, 0.1, 0.2))


def scheme_on_coordinates_runs(scheme, n_mol, n_sites, site_seed, duration_ms, n_runs, seed):
    """Kernel ensemble (seed) and reference runs (seed + 1) of one scheme's sites at fixed tile
    centres on the postsynaptic membrane of a closed cleft; returns (ensemble, column index, refs)."""
    xy = chosen_sites(n_sites, site_seed)
    grp = mcsyn.SiteGroup(scheme, "postsynaptic", arrangement="coordinates", coordinates_um=xy)
    m = cleft_model(outside="closed", molecules=n_mol, duration_ms=duration_ms, sites=[grp])
    ens = mcsyn.run(m, n_runs=n_runs, seed=seed, workers=1)
    col = {c: j for j, c in enumerate(ens.columns)}
    refs = reference_runs(n_runs, seed + 1, n_molecules=n_mol, diffusion_um2_per_ms=D_GLU,
                          n_steps=int(duration_ms * 1000), dt_us=1.0, sites_xy=xy, scheme=scheme, sample_every=10)
    return ens, col, refs


def test_kernel_transporter_cycle_matches_reference():
    # T -> TS (bind) -> Ti (uptake, counted as taken up) -> T, TS -> T + A; fast rates so that
    # every transition happens many times within the run
    n_mol, n_sites, duration, n_runs = 600, 60, 0.4, 30
    scheme = mcsyn.transporter_cycle("EAAT", "glutamate", kon_per_M_per_s=2e7, koff_per_s=3e3,
                                     translocation_per_s=5e3, return_per_s=4e3)
    ens, col, refs = scheme_on_coordinates_runs(scheme, n_mol, n_sites, 3, duration, n_runs, seed=27)
    assert_series_means_agree(ens, refs, ("bound", "taken_up", "binding_events", "free"), (0.02, 0.1, 0.4))
    # inward-facing carriers (Ti) at the end
    k_ti = ens.series[:, -1, col["EAAT:Ti"]]
    r_ti = np.array([np.sum(res.site_state == 2) for res in refs])
    z = z_of_means(k_ti, r_ti)
    assert abs(z) < Z_MAX, f"Ti at the end: kernel {k_ti.mean():.2f}, reference {r_ti.mean():.2f}"


def test_kernel_ampa_scheme_matches_reference():
    # Jonas et al. 1993 AMPA scheme (two binding steps, opening, desensitisation): compare the mean
    # number of open (O) and desensitised (C3 + C4 + C5) receptors, bound molecules and binding events
    n_mol, n_sites, duration, n_runs = 1000, 200, 0.4, 25
    scheme = mcsyn.ampa_jonas1993()
    ens, col, refs = scheme_on_coordinates_runs(scheme, n_mol, n_sites, 5, duration, n_runs, seed=35)
    desens = ("C3", "C4", "C5")
    for t in (0.02, 0.1, 0.4):
        i = int(np.argmin(np.abs(ens.times_ms - t)))
        for name, k, r in [
            ("open", ens.series[:, i, col["AMPA:open"]], [res.series["state:O"][i] for res in refs]),
            ("desensitised", sum(ens.series[:, i, col[f"AMPA:{s}"]] for s in desens),
             [sum(res.series[f"state:{s}"][i] for s in desens) for res in refs]),
            ("bound", ens.series[:, i, col["bound"]], [res.series["bound"][i] for res in refs]),
            ("binding_events", ens.series[:, i, col["binding_events"]], [res.series["binding_events"][i] for res in refs]),
        ]:
            z = z_of_means(k, r)
            assert abs(z) < Z_MAX, f"{name} at {t} ms: kernel {np.mean(k):.2f}, reference {np.mean(r):.2f} (z = {z:.2f})"


def test_kernel_volume_matches_reference():
    # release into the homogenised volume at r0 = 0.3 µm; reflecting varicosity 0.25 µm, absorbing
    # sphere 1 µm, λ = 1.54, first-order removal 1000/s. Molecules are independent: compare the fate
    # histogram (escaped per interval / degraded / still free) and the final radii.
    n, duration, a, b, lam, k = 4000, 1.0, 0.25, 1.0, 1.54, 1000.0
    m = mcsyn.SynapseModel(
        species=[mcsyn.Species("glutamate", D_GLU)],
        geometry=mcsyn.Geometry(cleft_height_um=H, cleft_radius_um=R_CLEFT, psd_radius_um=R_PSD, outside="volume",
                                varicosity_radius_um=a, domain_radius_um=b, tortuosity=lam),
        releases=[mcsyn.Release(time_ms=0.0, molecules=n, into="volume", position_um=(0.3, 0.0, 0.0))],
        degradation=[mcsyn.Degradation(k, region="volume")],
        timing=mcsyn.Timing(duration_ms=duration, dt_fine_us=1.0, dt_volume_us=10.0, sample_interval_us=50.0))
    kr = mcsyn.run_one(m, seed=29, keep_positions=True)
    rr = ref.simulate_volume(n, D_GLU, n_steps=int(duration * 1000 / 10), dt_us=10.0, tortuosity=lam,
                             inner_radius_um=a, domain_radius_um=b, start_xyz=(0.3, 0.0, 0.0), removal_per_s=k,
                             sample_every=5, seed=30)
    k_esc, r_esc = kr.series["escaped"].to_numpy(), rr.series["escaped"]
    k_deg, r_deg = int(kr.series["degraded"].iloc[-1]), int(rr.series["degraded"][-1])
    k_free, r_free = int(kr.series["free_volume"].iloc[-1]), int(rr.series["free"][-1])
    assert k_esc[-1] + k_deg + k_free == n and r_esc[-1] + r_deg + r_free == n
    p = homogeneity_pvalue(np.append(np.diff(k_esc), [k_deg, k_free]), np.append(np.diff(r_esc), [r_deg, r_free]))
    assert p > P_MIN, f"fates differ (chi-square p = {p:.2g}): kernel esc/deg/free {k_esc[-1]}/{k_deg}/{k_free}, " \
                      f"reference {r_esc[-1]}/{r_deg}/{r_free}"
    rk = np.linalg.norm(kr.positions["volume_positions"], axis=1)
    rf = np.linalg.norm(rr.positions, axis=1)
    p = stats.ks_2samp(rk, rf).pvalue
    assert p > P_MIN, f"final radii differ: KS p = {p:.2g}"
