"""Statistics: running moments, summaries, comparisons and Hill fits against known answers.

Stochastic checks use fixed seeds; coverage checks allow three binomial standard deviations around
the nominal level, so a correct method fails them with probability ~0.3 % (for a fixed seed, never).
"""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from mcsyn import stats


def binomial_band(p, n, k=3.0):
    s = math.sqrt(p * (1 - p) / n)
    return p - k * s, p + k * s


# ---------------------------------------------------------------------------------------- moments

def test_online_moments_match_numpy_by_update_batch_and_merge():
    rng = np.random.default_rng(0)
    x = rng.normal(1e6, 3.0, size=(257, 4, 5))        # large offset: the naive formula would lose digits
    one = stats.OnlineMoments((4, 5))
    for row in x:
        one.update(row)
    batch = stats.OnlineMoments((4, 5)).update_batch(x[:100]).update_batch(x[100:])
    parts = [stats.OnlineMoments((4, 5)).update_batch(x[i:i + 50]) for i in range(0, 257, 50)]
    merged = stats.OnlineMoments((4, 5))
    for p in reversed(parts):
        merged.merge(p)
    for m in (one, batch, merged):
        assert m.n == 257
        np.testing.assert_allclose(m.mean, x.mean(axis=0), rtol=1e-14)
        np.testing.assert_allclose(m.variance, x.var(axis=0, ddof=1), rtol=1e-9)
        np.testing.assert_allclose(m.sem, x.std(axis=0, ddof=1) / math.sqrt(257), rtol=1e-9)


def test_online_moments_with_fewer_than_two_values():
    m = stats.OnlineMoments(3)
    assert np.all(np.isnan(m.variance))
    m.update([1.0, 2.0, 3.0])
    assert np.all(np.isnan(m.sd))
    np.testing.assert_array_equal(m.mean, [1, 2, 3])
    m.merge(stats.OnlineMoments(3))
    assert m.n == 1


# ---------------------------------------------------------------------------------------- summaries

def runs_table(groups):
    rows = []
    for name, values in groups.items():
        for i, v in enumerate(values):
            rows.append({"condition": name, "run": i, "seed": 7, "x": float(v), "k": int(round(v))})
    return pd.DataFrame(rows)


def test_summarize_matches_direct_formulas():
    x = np.array([1.0, 2.0, 4.0, 7.0, 11.0, 16.0])
    s = stats.summarize(runs_table({"a": x}), metrics_columns=["x"]).iloc[0]
    n = len(x)
    sd = x.std(ddof=1)
    half = sps.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert s["n"] == n
    assert s["mean"] == pytest.approx(x.mean())
    assert s["sd"] == pytest.approx(sd)
    assert s["sem"] == pytest.approx(sd / math.sqrt(n))
    assert s["cv"] == pytest.approx(sd / x.mean())
    assert s["median"] == pytest.approx(np.median(x))
    assert s["iqr"] == pytest.approx(np.quantile(x, 0.75) - np.quantile(x, 0.25))
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((x.mean() - half, x.mean() + half))
    assert s["ci_method"] == "analytic 95%"


def test_summarize_metric_columns_are_the_ones_after_seed_and_nan_is_dropped():
    t = runs_table({"a": [1, 2, 3], "b": [4, 5, 6]})
    t.loc[0, "x"] = np.nan
    s = stats.summarize(t)
    assert set(s["metric"]) == {"x", "k"}
    assert list(dict.fromkeys(s["condition"])) == ["a", "b"]       # group order kept
    assert s[(s.condition == "a") & (s.metric == "x")]["n"].item() == 2


def test_bootstrap_ci_is_reproducible_and_agrees_with_analytic():
    rng = np.random.default_rng(1)
    t = runs_table({"a": rng.normal(10, 2, 400)})
    a = stats.summarize(t, metrics_columns=["x"]).iloc[0]
    b1 = stats.summarize(t, metrics_columns=["x"], ci="bootstrap", seed=5).iloc[0]
    b2 = stats.summarize(t, metrics_columns=["x"], ci="bootstrap", seed=5).iloc[0]
    assert (b1["ci_low"], b1["ci_high"]) == (b2["ci_low"], b2["ci_high"])
    width = a["ci_high"] - a["ci_low"]
    # the bootstrap half-width has a relative sd of ~1/sqrt(2 n_boot) plus the t-vs-z difference
    assert b1["ci_high"] - b1["ci_low"] == pytest.approx(width, rel=0.1)
    assert b1["ci_method"] == "bootstrap 95%"


def test_analytic_mean_ci_covers_at_nominal_rate():
    rng = np.random.default_rng(2)
    reps, n = 600, 12
    data = rng.exponential(3.0, size=(reps, n)) ** 0.5     # skewed; the t interval is still close
    true_mean = math.gamma(1.5) * math.sqrt(3.0)
    hits = 0
    for x in data:
        lo, hi = stats.mean_ci(x)
        hits += lo <= true_mean <= hi
    lo, hi = binomial_band(0.95, reps)
    assert lo <= hits / reps <= hi


def test_summarize_rejects_bad_options():
    t = runs_table({"a": [1, 2, 3]})
    with pytest.raises(ValueError, match="level"):
        stats.summarize(t, level=95)
    with pytest.raises(ValueError, match="ci"):
        stats.summarize(t, ci="exact")
    with pytest.raises(KeyError, match="grouping"):
        stats.summarize(t, by="drug")


# ---------------------------------------------------------------------------------------- comparisons

def test_compare_detects_a_shift_and_estimates_fold_change():
    rng = np.random.default_rng(3)
    t = runs_table({"control": rng.normal(100, 10, 300), "drug": rng.normal(80, 10, 300),
                    "same": rng.normal(100, 10, 300)})
    c = stats.compare(t, metrics_columns=["x"]).set_index("condition")
    d = c.loc["drug"]
    assert d["fold_ci_low"] < 0.8 < d["fold_ci_high"]
    assert d["fold_change"] == pytest.approx(0.8, abs=0.02)
    assert d["p_mannwhitney"] < 1e-20 and d["p_ks"] < 1e-20
    assert d["hedges_g"] == pytest.approx(-2.0, abs=0.25)
    assert d["cliffs_delta"] < -0.8
    s = c.loc["same"]
    assert s["fold_ci_low"] < 1.0 < s["fold_ci_high"]
    assert s["p_mannwhitney"] > 0.001 and s["p_ks"] > 0.001


def test_compare_constant_metric_and_unknown_control():
    t = runs_table({"control": [3, 3, 3], "drug": [3, 3, 3]})
    c = stats.compare(t, metrics_columns=["k"]).iloc[0]
    assert c["p_mannwhitney"] == 1.0 and c["p_ks"] == 1.0 and c["fold_change"] == 1.0
    assert c["hedges_g"] == 0.0
    with pytest.raises(KeyError, match="control"):
        stats.compare(t, control="placebo")


def test_cliffs_delta_and_hedges_g_against_brute_force():
    rng = np.random.default_rng(4)
    x, y = rng.normal(1, 1, 40), rng.normal(0, 2, 55)
    t = pd.DataFrame({"condition": ["ctl"] * 55 + ["x"] * 40, "run": range(95), "seed": 0,
                      "v": np.concatenate([y, x])})
    c = stats.compare(t, control="ctl").iloc[0]
    brute = (np.sign(x[:, None] - y[None, :])).mean()
    assert c["cliffs_delta"] == pytest.approx(brute)
    pooled = math.sqrt((39 * x.var(ddof=1) + 54 * y.var(ddof=1)) / 93)
    assert c["hedges_g"] == pytest.approx((x.mean() - y.mean()) / pooled * (1 - 3 / (4 * 95 - 9)))


def test_fold_change_interval_covers_at_nominal_rate():
    rng = np.random.default_rng(5)
    reps = 500
    hits_a = hits_b = 0
    for _ in range(reps):
        x, c = rng.gamma(20, 1.0, 30), rng.gamma(25, 1.0, 30)     # true ratio 0.8
        _, lo, hi = stats.fold_change_ci(x, c)
        hits_a += lo <= 0.8 <= hi
    for _ in range(100):
        x, c = rng.gamma(20, 1.0, 30), rng.gamma(25, 1.0, 30)
        _, lo, hi = stats.fold_change_ci(x, c, ci="bootstrap", n_boot=400, rng=rng)
        hits_b += lo <= 0.8 <= hi
    lo, hi = binomial_band(0.95, reps)
    assert lo <= hits_a / reps <= hi
    lo, hi = binomial_band(0.95, 100)
    assert lo - 0.02 <= hits_b / 100 <= 1.0      # percentile bootstrap runs slightly narrow at n = 30


# ---------------------------------------------------------------------------------------- Hill fits

DOSES = np.array([0, 1e-9, 3e-9, 1e-8, 3e-8, 1e-7, 3e-7, 1e-6, 1e-5])


def noisy_dose_response(rng, bottom=100.0, top=20.0, ec50=5e-8, n=1.3, sd=8.0, reps=30):
    c = np.repeat(DOSES, reps)
    return c, stats.hill(c, bottom, top, ec50, n) + rng.normal(0, sd, len(c))


def test_hill_function_limits():
    assert stats.hill(0.0, 10, 2, 1e-7, 1) == 10
    assert stats.hill(1e-7, 10, 2, 1e-7, 1) == pytest.approx(6)
    assert stats.hill(1e3, 10, 2, 1e-7, 1) == pytest.approx(2, abs=1e-6)


@pytest.mark.parametrize("ci", ["wald", "bootstrap"])
def test_fit_hill_recovers_known_parameters(ci):
    rng = np.random.default_rng(6)
    c, y = noisy_dose_response(rng)
    f = stats.fit_hill(c, y, ci=ci, n_boot=150, metric="m")
    assert f.kind == "IC50" and f.metric == "m"
    assert f.ec50_ci_low < 5e-8 < f.ec50_ci_high
    assert f.hill_ci_low < 1.3 < f.hill_ci_high
    assert f.bottom_ci_low < 100 < f.bottom_ci_high and f.top_ci_low < 20 < f.top_ci_high
    assert f.ec50 == pytest.approx(5e-8, rel=0.25)
    assert f.n_doses == len(DOSES) and f.n_points == len(c)
    assert f.predict(0.0) == pytest.approx(f.bottom)


def test_fit_hill_rising_curve_is_an_ec50():
    rng = np.random.default_rng(7)
    c, y = noisy_dose_response(rng, bottom=5, top=50, ec50=2e-7, n=0.8, sd=3)
    f = stats.fit_hill(c, y)
    assert f.kind == "EC50"
    assert f.ec50_ci_low < 2e-7 < f.ec50_ci_high


def test_fit_hill_ec50_interval_covers_at_nominal_rate():
    rng = np.random.default_rng(8)
    reps = 80
    hits = 0
    for _ in range(reps):
        c, y = noisy_dose_response(rng, reps=12)
        f = stats.fit_hill(c, y)
        hits += f.ec50_ci_low <= 5e-8 <= f.ec50_ci_high
    lo, _ = binomial_band(0.95, reps)
    assert hits / reps >= lo


def test_fit_hill_unreplicated_points_and_errors():
    c = np.array([1e-9, 1e-8, 1e-7, 1e-6, 1e-5])
    y = stats.hill(c, 1.0, 0.0, 1e-7, 1.0) + np.array([0.01, -0.02, 0.015, -0.01, 0.005])
    f = stats.fit_hill(c, y)
    assert f.ec50_ci_low < 1e-7 < f.ec50_ci_high
    assert "t" in f.method
    with pytest.raises(ValueError, match="4 distinct doses"):
        stats.fit_hill([0, 0, 1e-9, 1e-9], [1, 1, 0.5, 0.4])
    with pytest.raises(ValueError, match=">= 0"):
        stats.fit_hill([-1, 1, 2, 3], [1, 2, 3, 4])


def test_dose_response_from_a_runs_table():
    rng = np.random.default_rng(9)
    c, y = noisy_dose_response(rng)
    t = pd.DataFrame({"condition": [f"d{x}" for x in c], "dose_M": c, "run": 0, "seed": 0, "r": y})
    fit, table = stats.dose_response(t, "r")
    assert list(table["dose_M"]) == sorted(DOSES)
    assert (table["n"] == 30).all()
    assert fit.ec50_ci_low < 5e-8 < fit.ec50_ci_high
    with pytest.raises(KeyError, match="metric"):
        stats.dose_response(t, "nope")


# ---------------------------------------------------------------------------------------- per-run readouts

def test_clearance_half_time_of_an_exponential_is_exact_within_the_interpolation_error():
    from mcsyn.simulate import clearance_half_time_ms
    tau, dt = 7.3, 1.0
    for t_peak in (0.0, 4.0):
        t = np.arange(0.0, 80.0, dt)
        free = np.where(t < t_peak, 1000.0 * t / max(t_peak, 1), 1000.0 * np.exp(-(t - t_peak) / tau))
        got = clearance_half_time_ms(t, free)
        # linear interpolation of a convex decay: late by at most max|f''| dt²/8 / |f'| = dt²/(8 tau)
        bound = dt ** 2 / (8 * tau)
        assert tau * math.log(2) <= got <= tau * math.log(2) + bound
        assert got != round(got / dt) * dt                       # not on the sample grid
    assert math.isnan(clearance_half_time_ms(t, np.zeros_like(t)))
    assert math.isnan(clearance_half_time_ms(t, np.linspace(1, 2, len(t))))   # never halves


def test_clearance_half_time_of_runs_is_not_quantised():
    from mcsyn import presets, simulate
    model = presets.build("serotonergic", **{"timing.duration_ms": 20, "geometry.domain_radius_um": 3.0,
                                            "release.molecules": 1000})
    ens = simulate.run(model, n_runs=12, seed=5, workers=1)
    x = ens.metrics["clearance_half_time_ms"].to_numpy()
    dt = float(np.diff(ens.times_ms)[0])
    on_grid = np.isclose(x / dt, np.round(x / dt), rtol=0, atol=1e-9)
    assert np.all(np.isfinite(x)) and on_grid.sum() <= 2          # sampled: 12 runs on 2-3 grid values
    assert len(np.unique(x)) >= 10


def test_occupancy_fractions_against_a_closed_form():
    from types import SimpleNamespace
    from mcsyn.simulate import occupancy_metrics
    t = np.linspace(0.0, 100.0, 100001)
    n_sites, tau, f_max = 2000, 12.0, 0.3
    occupied = n_sites * f_max * (1 - np.exp(-t / tau))
    grp = SimpleNamespace(label="R")
    cm = SimpleNamespace(model=SimpleNamespace(sites=[grp]), group_states=[(0, ["free", "bound"])],
                         sample_times_ms=t)
    columns = {"R:free": n_sites - occupied, "R:bound": occupied, "R:occupied": occupied}
    m = occupancy_metrics(cm, columns)
    T = t[-1]
    assert m["R:sites"] == n_sites
    assert m["R:occupancy_fraction:peak"] == pytest.approx(f_max * (1 - math.exp(-T / tau)), rel=1e-12)
    mean = f_max * (1 - tau / T * (1 - math.exp(-T / tau)))
    assert m["R:occupancy_fraction:mean"] == pytest.approx(mean, rel=1e-8)      # trapezoid error ~dt²
    empty = occupancy_metrics(cm, {k: np.zeros_like(t) for k in columns})
    assert empty["R:sites"] == 0 and math.isnan(empty["R:occupancy_fraction:peak"])


def test_site_totals_of_the_serotonergic_preset_and_in_every_run():
    from mcsyn import presets, simulate
    model = presets.build("serotonergic")
    totals = simulate.site_totals(model)
    assert totals["5-HT1A"] == 25225 and totals["5-HT2A"] == 25225 and totals["SERT"] > 0
    small = presets.build("serotonergic", **{"timing.duration_ms": 10, "geometry.domain_radius_um": 3.0,
                                            "release.molecules": 500})
    run = simulate.run_one(small, seed=2)
    for label, n in simulate.site_totals(small).items():
        assert run.metrics[f"{label}:sites"] == n
        peak, mean = run.metrics[f"{label}:occupancy_fraction:peak"], run.metrics[f"{label}:occupancy_fraction:mean"]
        assert 0 <= mean <= peak <= 1
        occupied = run.series[f"{label}:occupied"].to_numpy()
        assert peak == occupied.max() / n


def test_summary_and_compare_of_no_metrics_keep_their_columns():
    t = runs_table({"a": [1, 2], "b": [3, 4]})
    s = stats.summarize(t, metrics_columns=[])
    assert s.empty and {"condition", "metric", "mean", "ci_low"} <= set(s.columns)
    c = stats.compare(t, control="a", metrics_columns=[])
    assert c.empty and {"metric", "p_mannwhitney"} <= set(c.columns)
