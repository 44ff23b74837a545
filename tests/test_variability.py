"""Miniature mode, the Franks et al. 2003 variance decomposition and the potency curve (mcsyn.variability).

Statistical tests use fixed seeds and 5-standard-error tolerances derived from the estimator's variance."""
import math

import numpy as np
import pytest

from mcsyn import ModelError, Release, SiteGroup, SynapseModel, Timing, compile_model
from mcsyn import variability as V
from mcsyn.placement import draw_run
from mcsyn.schemes import KineticScheme, ampa_jonas1993

K = 5.0


def _exact_variance(n, variance, rng):
    """n values whose sample variance (ddof 1) is exactly ``variance``."""
    x = rng.standard_normal(n)
    x -= x.mean()
    return 3.0 + x * math.sqrt(variance / x.var(ddof=1))


def test_decompose_samples_exact_fractions_that_add_up_to_one():
    rng = np.random.default_rng(1)
    total = _exact_variance(50, 10.0, rng)
    position_fixed = [_exact_variance(20, 6.0, rng) for _ in range(4)]
    channel = [_exact_variance(20, 1.0, rng) for _ in range(4)]
    d = V.decompose_samples(total, position_fixed, channel, n_boot=500)
    assert d.variances == pytest.approx({"total": 10.0, "position_fixed": 6.0, "channel": 1.0}, rel=1e-12)
    assert d.fractions == pytest.approx({"channel": 0.1, "quantal": 0.5, "position": 0.4}, rel=1e-12)
    assert sum(d.fractions.values()) == pytest.approx(1.0, abs=1e-12)
    for s in V.SOURCES:
        assert d.ci_low[s] <= d.fractions[s] <= d.ci_high[s] and d.se[s] > 0
    assert list(d.table()["source"]) == list(V.SOURCES)


def test_negative_estimates_are_reported_not_clipped():
    rng = np.random.default_rng(2)
    d = V.decompose_samples(_exact_variance(30, 4.0, rng), [_exact_variance(30, 5.0, rng)],
                            [_exact_variance(30, 1.0, rng)], n_boot=200)
    assert d.fractions["position"] == pytest.approx(-0.25, rel=1e-12)
    assert d.fractions["quantal"] == pytest.approx(1.0, rel=1e-12)


def _synthetic(rng, n, positions=None, quanta=None):
    """A = 10 + 4 r² (position) + 2 (q − 1) (quantal, q ~ gamma CV 0.3) + N(0, 0.5²) (channel);
    r² uniform on (0, 1): position variance 16/12, quantal 4·0.09, channel 0.25."""
    r2 = rng.random(n) if positions is None else np.full(n, positions)
    q = rng.gamma(1 / 0.09, 0.09, n) if quanta is None else np.full(n, quanta)
    return 10 + 4 * r2 + 2 * (q - 1) + 0.5 * rng.standard_normal(n)


def test_decomposition_recovers_known_components_of_a_synthetic_generator():
    rng = np.random.default_rng(3)
    n_pos, per = 40, 100
    r2 = rng.random(n_pos)
    q = rng.gamma(1 / 0.09, 0.09, n_pos)
    d = V.decompose_samples(_synthetic(rng, 4000), [_synthetic(rng, per, positions=a) for a in r2],
                            [_synthetic(rng, per, positions=a, quanta=b) for a, b in zip(r2, q)], n_boot=1000)
    parts = {"channel": 0.25, "quantal": 4 * 0.09, "position": 16 / 12}
    total = sum(parts.values())
    for s, v in parts.items():
        assert abs(d.fractions[s] - v / total) <= K * d.se[s], (s, d.fractions[s], v / total, d.se[s])
    assert d.variances["channel"] == pytest.approx(0.25, rel=K * math.sqrt(2 / (n_pos * (per - 1))))


def _gating_model(n_sites=40, duration_ms=0.2, rate_per_s=3466.0):
    """Receptors that open on their own (closed -> open, first order, no way back), ligand-free: the
    open count at the end is Binomial(N, 1 − exp(−k T)) and neither quantum nor position matter."""
    scheme = KineticScheme("gate", ["closed", "open"], open_states=("open",))
    scheme.first_order("closed", "open", rate_per_s)
    return SynapseModel(sites=[SiteGroup(scheme, "postsynaptic", count=n_sites, name="gate")], releases=[Release(molecules=50)],
                        timing=Timing(duration_ms=duration_ms)).validate()


def test_channel_only_variance_matches_the_binomial_prediction():
    model = _gating_model()
    n_sites, t_end = 40, compile_model(model).sample_times_ms[-1]
    p = 1 - math.exp(-3466.0 * t_end * 1e-3)
    n_runs, n_pos = 400, 4
    d = V.variance_decomposition(model, n_runs, seed=11, metric="gate:open:peak", n_positions=n_pos, workers=1,
                                 n_boot=500)
    var = n_sites * p * (1 - p)
    mu4 = var * (1 + 3 * (n_sites - 2) * p * (1 - p))          # fourth central moment of a binomial
    per = n_runs // n_pos
    se = math.sqrt((mu4 - (per - 3) / (per - 1) * var ** 2) / per / n_pos)
    assert abs(d.variances["channel"] - var) <= K * se, (d.variances, var, se)
    assert abs(d.mean - n_sites * p) <= K * math.sqrt(var / n_runs)
    assert sum(d.fractions.values()) == pytest.approx(1.0, abs=1e-12)
    for s in ("quantal", "position"):            # the gating ignores the transmitter
        assert abs(d.fractions[s]) <= K * d.se[s], (s, d.fractions[s], d.se[s])


def test_miniature_positions_are_uniform_over_the_disk_and_quanta_gamma():
    radius, cv, molecules = 0.1, 0.3, 3000.0
    mini = V.miniature(SynapseModel(), quantal_cv=cv, radius_um=radius)
    assert mini.releases[0].random_position_radius_um == radius and not mini.trains
    cm = compile_model(mini)
    n = 4000
    runs = [draw_run(cm, np.random.SeedSequence(5, spawn_key=(i,))) for i in range(n)]
    x = np.array([r.inject_x_um[0] for r in runs])
    y = np.array([r.inject_y_um[0] for r in runs])
    counts = np.array([r.inject_count[0] for r in runs], dtype=float)
    u = (x * x + y * y) / radius ** 2                  # uniform on (0, 1) for a uniform disk
    assert u.max() < 1
    assert abs(u.mean() - 0.5) <= K * math.sqrt(1 / 12 / n)
    assert abs(np.mean(u < 0.25) - 0.25) <= K * math.sqrt(0.25 * 0.75 / n)
    theta = np.arctan2(y, x)
    assert abs(np.cos(theta).mean()) <= K * math.sqrt(0.5 / n) and abs(np.sin(theta).mean()) <= K * math.sqrt(0.5 / n)
    assert abs(counts.mean() - molecules) <= K * cv * molecules / math.sqrt(n)
    assert abs(counts.std(ddof=1) / counts.mean() - cv) <= K * cv / math.sqrt(2 * n) * math.sqrt(1 + 2 * cv * cv)


def test_random_position_is_drawn_after_every_other_draw():
    fixed = V.miniature(SynapseModel(sites=_gating_model().sites), position_um=(0.0, 0.0))
    moving = V.miniature(SynapseModel(sites=_gating_model().sites), radius_um=0.1)
    a = draw_run(compile_model(fixed), np.random.SeedSequence(9))
    b = draw_run(compile_model(moving), np.random.SeedSequence(9))
    np.testing.assert_array_equal(a.site_x_um, b.site_x_um)
    np.testing.assert_array_equal(a.inject_count, b.inject_count)
    assert (a.inject_x_um[0], a.inject_y_um[0]) == (0.0, 0.0) and b.inject_x_um[0] != 0.0


def test_fit_length_constant_recovers_an_exponential():
    d = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.4])
    a, lam, se, reason = V.fit_length_constant(d, 20 * np.exp(-d / 0.1), np.full(len(d), 0.1))
    assert reason == "" and a == pytest.approx(20, rel=1e-6) and lam == pytest.approx(0.1, rel=1e-6) and se > 0
    a, lam, _, reason = V.fit_length_constant(d, -15 * np.exp(-d / 0.2), np.full(len(d), 0.1))   # inward current
    assert reason == "" and a == pytest.approx(-15, rel=1e-6) and lam == pytest.approx(0.2, rel=1e-6)
    assert V.fit_length_constant(d[:2], [1.0, 0.5], [0.1, 0.1])[3]


def test_potency_falls_with_distance_for_a_real_synapse():
    model = SynapseModel(sites=[SiteGroup(ampa_jonas1993(), "postsynaptic", count=60, name="AMPA")], timing=Timing(duration_ms=0.6))
    curve = V.potency_curve(model, 8, seed=4, metric="AMPA:open:peak", distances_um=(0.0, 0.08, 0.16), workers=1)
    assert list(curve.table["distance_um"]) == [0.0, 0.08, 0.16]
    assert curve.table["mean"].iloc[0] > curve.table["mean"].iloc[-1]


@pytest.mark.parametrize("change, field", [
    ({"random_position_radius_um": -0.1}, "releases[0].random_position_radius_um"),
    ({"random_position_radius_um": 0.5}, "releases[0].random_position_radius_um"),
    ({"random_position_radius_um": 0.1, "position_um": (0.0, 0.0)}, "releases[0].random_position_radius_um"),
])
def test_bad_random_position_is_a_model_error(change, field):
    with pytest.raises(ModelError) as err:
        SynapseModel(releases=[Release(**change)]).validate()
    assert err.value.field == field


def test_bad_inputs_are_model_errors():
    model = _gating_model()
    with pytest.raises(ModelError, match="radius_um"):
        V.miniature(model, radius_um=0.05, position_um=(0.0, 0.0))
    with pytest.raises(ModelError, match="quantal_cv"):
        V.miniature(model, quantal_cv=-0.1)
    with pytest.raises(ModelError, match="n_runs"):
        V.variance_decomposition(model, 6, seed=1, metric="gate:open:peak", n_positions=4)
    with pytest.raises(ModelError, match="metric"):
        V.metric_samples(V.miniature(model), 2, 1, "no:such:metric", workers=1)
    with pytest.raises(ModelError, match="distances_um"):
        V.potency_curve(model, 4, 1, metric="gate:open:peak", distances_um=(0.0, 0.1, 0.3))
    with pytest.raises(ModelError, match="position_fixed"):
        V.decompose_samples(np.arange(5.0), [np.array([1.0])], [np.arange(3.0)])
    with pytest.raises(ModelError, match="n_boot"):
        V.decompose_samples(np.arange(5.0), [np.arange(3.0)], [np.arange(3.0)], n_boot=10)


def test_miniature_statistics_of_the_clamped_current():
    from mcsyn import VoltageClamp
    model = SynapseModel(sites=[SiteGroup(ampa_jonas1993(), "postsynaptic", count=60, name="AMPA")],
                         timing=Timing(duration_ms=0.6), clamp=VoltageClamp(-70.0))
    out = V.miniature_statistics(model, 6, seed=2, workers=1)
    assert out["metric"] == "current:peak_pA" and out["n"] == 6
    assert out["mean_pA"] < 0 and out["cv"] > 0 and sum(out["histogram_counts"]) == 6


def test_a_random_release_position_is_a_configuration_key_too():
    import mcsyn
    m = mcsyn.config.loads('preset = "glutamatergic"\n[release]\nrandom_position_radius_um = "100 nm"\n').build()
    assert m.releases[0].random_position_radius_um == pytest.approx(0.1)
    with pytest.raises(mcsyn.ModelError, match=r"random_position_radius_um"):
        mcsyn.presets.build("glutamatergic", **{"release.random_position_radius_um": "1 um"})
