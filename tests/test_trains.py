"""Stimulus trains: short-term plasticity (the stochastic Tsodyks–Markram scheme), responses per
stimulus, paired-pulse and steady-state ratios, receptor desensitisation across a train.

Stochastic checks use fixed seeds and tolerances of Z_TOL standard errors derived from the
variance (binomial for released vesicles, sample variance for amplitudes); none is tuned."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mcsyn
from mcsyn import config, presets, schemes, trains
from mcsyn.errors import ModelError
from mcsyn.model import Geometry, Release, ShortTermPlasticity, SiteGroup, StimulusTrain, SynapseModel, Timing
from mcsyn.placement import draw_run, plastic_train_vesicles
from mcsyn.simulate import run_seed_sequence

Z_TOL = 5.0


def tm_recursion(n_stimuli, interval_ms, u, tau_recovery_ms, tau_facilitation_ms):
    """Mean fraction of sites releasing per stimulus, u_n R_n, written out independently of
    mcsyn (Tsodyks & Markram 1997; Fuhrmann et al. 2002): R_1 = 1, u_1 = U,
    R_{n+1} = 1 - (1 - R_n (1 - u_n)) e^{-Δt/τrec}, u_{n+1} = U + u_n (1 - U) e^{-Δt/τf}."""
    rec = np.exp(-interval_ms / tau_recovery_ms) if tau_recovery_ms > 0 else 0.0
    fac = np.exp(-interval_ms / tau_facilitation_ms) if tau_facilitation_ms > 0 else 0.0
    out, r, uu = [], 1.0, u
    for _ in range(n_stimuli):
        out.append(uu * r)
        r = 1.0 - (1.0 - r * (1.0 - uu)) * rec
        uu = u + uu * (1.0 - u) * fac
    return np.array(out)


def counting_model(u, n_sites, tau_rec, tau_f, n_stimuli=6, frequency_hz=50.0):
    """A cheap model whose vesicles hold one molecule each: released molecules = vesicles."""
    g = Geometry(cleft_height_um=0.02, cleft_radius_um=0.2, psd_radius_um=0.15, outside="band",
                 band_outer_radius_um=0.3, band_outer_boundary="absorbing")
    tr = StimulusTrain(start_ms=0.0, n_stimuli=n_stimuli, frequency_hz=frequency_hz, release_probability=u,
                       vesicle=Release(molecules=1), plasticity=ShortTermPlasticity(n_sites, tau_rec, tau_f))
    duration = (n_stimuli - 1) * 1000.0 / frequency_hz + 10.0
    return SynapseModel(geometry=g, releases=[], trains=[tr],
                        timing=Timing(duration_ms=duration, dt_fine_us=2.0, dt_volume_us=10.0,
                                      sample_interval_us=100.0)).validate()


def vesicles_per_stimulus(model, n_runs, seed):
    ens = mcsyn.run(model, n_runs=n_runs, seed=seed, workers=1)
    tr = model.trains[0]
    released = ens.series[:, :, ens.columns.index("released")]
    return trains.released_per_stimulus(ens.times_ms, released, tr.stimulus_times_ms(), tr.interval_ms), ens


# ======================================================================================================
# the scheme against its closed form

def test_release_per_stimulus_follows_the_tsodyks_markram_recursion():
    n_sites, u, tau_rec, tau_f = 5, 0.4, 60.0, 40.0
    model = counting_model(u, n_sites, tau_rec, tau_f)
    v, _ = vesicles_per_stimulus(model, n_runs=2000, seed=11)
    p = tm_recursion(6, 20.0, u, tau_rec, tau_f)
    expected = n_sites * p
    se = np.sqrt(n_sites * p * (1 - p) / len(v))          # each stimulus: Binomial(n_sites, u_n R_n)
    assert np.all(np.abs(v.mean(axis=0) - expected) < Z_TOL * se), (v.mean(axis=0), expected, se)
    assert np.allclose(model.trains[0].expected_vesicles(), expected, rtol=1e-12)
    assert np.all(v == np.round(v)) and v.min() >= 0 and v.max() <= n_sites


def test_placement_draws_follow_the_recursion_with_facilitation_and_depression():
    tr = StimulusTrain(n_stimuli=8, frequency_hz=40.0, release_probability=0.15, vesicle=Release(molecules=1),
                       plasticity=ShortTermPlasticity(8, 150.0, 300.0))
    rng = np.random.default_rng(5)
    n = 20000
    v = np.array([plastic_train_vesicles(tr, rng) for _ in range(n)])
    p = tm_recursion(8, 25.0, 0.15, 150.0, 300.0)
    se = np.sqrt(8 * p * (1 - p) / n)
    assert np.all(np.abs(v.mean(axis=0) - 8 * p) < Z_TOL * se)


def test_no_recovery_and_no_facilitation_limits():
    """τ_rec = 0 refills every site and τ_f = 0 keeps u = U: each stimulus is Binomial(N, U)."""
    stp = ShortTermPlasticity(3, 0.0, 0.0)
    u_n, r_n = stp.expected_release(5, 10.0, 0.3)
    assert np.allclose(u_n, 0.3) and np.allclose(r_n, 1.0)
    tr = StimulusTrain(n_stimuli=5, frequency_hz=100.0, release_probability=0.3, plasticity=stp)
    assert np.allclose(tr.expected_vesicles(), 0.9)
    singles = list(tr.releases())
    assert len(singles) == 15 and all(r.probability == pytest.approx(0.3) for r in singles)


# ======================================================================================================
# paired-pulse ratios

def _ratio(v, k_num, k_den=0):
    return trains.ratio_of_means(v[:, k_num], v[:, k_den])


def test_depression_with_slow_recovery_gives_a_paired_pulse_ratio_below_one():
    model = counting_model(u=0.5, n_sites=10, tau_rec=500.0, tau_f=0.0, n_stimuli=6, frequency_hz=20.0)
    v, ens = vesicles_per_stimulus(model, n_runs=1500, seed=21)
    ppr, se = _ratio(v, 1)
    p = tm_recursion(6, 50.0, 0.5, 500.0, 0.0)
    assert ppr + Z_TOL * se < 1.0, (ppr, se)
    assert abs(ppr - p[1] / p[0]) < Z_TOL * se
    steady, se_s = trains.ratio_of_means(v[:, -3:].mean(axis=1), v[:, 0])
    assert steady + Z_TOL * se_s < ppr                     # the depression deepens along the train
    m = ens.metrics                                         # the per-run metrics hold the same responses
    assert np.array_equal(m["train[0]:released_1"], v[:, 0]) and np.array_equal(m["train[0]:released_2"], v[:, 1])
    assert np.allclose(m["train[0]:released_steady"], v[:, -3:].mean(axis=1))


def test_facilitation_with_small_u_gives_a_paired_pulse_ratio_above_one():
    model = counting_model(u=0.05, n_sites=10, tau_rec=10.0, tau_f=200.0, n_stimuli=4, frequency_hz=50.0)
    v, _ = vesicles_per_stimulus(model, n_runs=2000, seed=31)
    ppr, se = _ratio(v, 1)
    p = tm_recursion(4, 20.0, 0.05, 10.0, 200.0)
    assert ppr - Z_TOL * se > 1.0, (ppr, se)
    assert abs(ppr - p[1] / p[0]) < Z_TOL * se


def test_response_metrics_and_separation_on_a_known_trace():
    t = np.arange(0.0, 40.0, 0.5)
    stim = np.array([0.0, 10.0, 20.0, 30.0])
    released = np.searchsorted(stim, t, side="right") * 100.0       # 100 molecules at each stimulus
    released[t >= 20.0] += 50.0                                       # the third releases 150
    assert np.array_equal(trains.released_per_stimulus(t, released, stim, 10.0), [100, 100, 150, 100])
    trace = np.zeros_like(t)
    for k, a in enumerate([-10.0, -6.0, -4.0, -4.0]):                 # inward steps on the earlier ones' residual
        trace += np.where(t >= stim[k] + 1.0, a, 0.0)
    amps = trains.amplitude_per_stimulus(t, trace, stim, 10.0)
    assert np.allclose(amps, [-10.0, -6.0, -4.0, -4.0], rtol=1e-12)
    peaks = trains.amplitude_per_stimulus(t, trace, stim, 10.0, from_foot=False)
    assert np.allclose(peaks, [-10.0, -16.0, -20.0, -24.0], rtol=1e-12)
    m = trains.response_metrics(amps, "x")
    assert m["x_paired_pulse_ratio"] == pytest.approx(0.6, rel=0.03)
    assert m["x_steady_state_ratio"] == pytest.approx((6 + 4 + 4) / 3 / 10, rel=0.03)
    assert trains.response_metrics([0.0, 1.0], "y")["y_paired_pulse_ratio"] != trains.response_metrics(
        [0.0, 1.0], "y")["y_paired_pulse_ratio"]                        # NaN when the first response is 0


# ======================================================================================================
# receptor desensitisation across a 100 Hz train

def ampa_without_desensitisation():
    """The Jonas 1993 scheme with its desensitised states (C3, C4, C5) and their transitions removed."""
    full = schemes.ampa_jonas1993()
    keep = ["C0", "C1", "C2", "O"]
    s = mcsyn.KineticScheme("AMPA_nd", keep, open_states=("O",), source=full.source + " (no desensitisation)")
    s.transitions = [t for t in full.transitions if t.source in keep and t.target in keep]
    return s


def ampa_train_model(scheme, clamp=None):
    g = Geometry(cleft_height_um=0.02, cleft_radius_um=0.2, psd_radius_um=0.15, outside="band",
                 band_outer_radius_um=0.4, band_outer_boundary="absorbing")
    tr = StimulusTrain(start_ms=0.0, n_stimuli=5, frequency_hz=100.0, release_probability=1.0,
                       vesicle=Release(molecules=3000))
    return SynapseModel(geometry=g, sites=[SiteGroup(scheme, "postsynaptic", count=100, name="AMPA")],
                        releases=[], trains=[tr], clamp=clamp,
                        timing=Timing(duration_ms=50.0, dt_fine_us=1.0, sample_interval_us=20.0)).validate()


def open_peaks(model, n_runs, seed, from_foot=False):
    ens = mcsyn.run(model, n_runs=n_runs, seed=seed, workers=1)
    tr = model.trains[0]
    opened = ens.series[:, :, ens.columns.index("AMPA:open")]
    return trains.amplitude_per_stimulus(ens.times_ms, opened, tr.stimulus_times_ms(), tr.interval_ms,
                                         from_foot=from_foot), ens


def test_ampa_responses_decline_with_desensitisation_and_not_without():
    """Open-count peaks per stimulus (not foot amplitudes, which the residual of the earlier
    responses lowers by a few per cent even without desensitisation; see mcsyn.trains)."""
    with_d, _ = open_peaks(ampa_train_model(schemes.ampa_jonas1993()), n_runs=150, seed=41)
    ratio, se = trains.ratio_of_means(with_d[:, -1], with_d[:, 0])
    assert ratio + Z_TOL * se < 1.0, (ratio, se)
    without, _ = open_peaks(ampa_train_model(ampa_without_desensitisation()), n_runs=150, seed=42)
    for k in range(1, 5):
        r, s = trains.ratio_of_means(without[:, k], without[:, 0])
        assert abs(r - 1.0) < Z_TOL * s, (k, r, s)


def test_current_amplitudes_per_stimulus_scale_with_open_counts():
    """The clamp's current is open count × single-channel current, so per-run current ratios equal
    the open-count ratios and the metrics carry them."""
    model = ampa_train_model(schemes.ampa_jonas1993(), clamp=mcsyn.VoltageClamp(holding_potential_mV=-70.0))
    peaks, ens = open_peaks(model, n_runs=4, seed=43, from_foot=True)
    m = ens.metrics
    assert np.all(m["train[0]:current_pA_1"] < 0)
    ok = peaks[:, 0] > 0
    assert np.allclose(m["train[0]:current_pA_paired_pulse_ratio"][ok], (peaks[:, 1] / peaks[:, 0])[ok])


# ======================================================================================================
# draw order, configuration, bad input

def test_a_plastic_train_leaves_the_other_draws_as_they_were():
    base = counting_model(0.5, 4, 100.0, 0.0)
    single = Release(time_ms=0.0, molecules=500, quantal_cv=0.3, probability=0.7)
    plain = dataclasses.replace(base, releases=[single], trains=[])
    both = dataclasses.replace(base, releases=[single])
    for run in range(5):
        ss = run_seed_sequence(3, run)
        a = draw_run(mcsyn.compile_model(plain), ss)
        b = draw_run(mcsyn.compile_model(both), ss)
        counts_b = b.inject_count[b.inject_count > 1]                # the train's vesicles hold 1 molecule
        assert np.array_equal(a.inject_count, counts_b)


def test_train_plasticity_in_the_configuration_round_trips(tmp_path):
    over = {"train": {"enabled": True, "n_stimuli": 4, "frequency_hz": 20, "release_probability": 0.3,
                      "n_release_sites": 6, "tau_recovery_ms": "1.5 s", "tau_facilitation_ms": 50}}
    cfg = config.SynapseConfig(preset="dopaminergic_striatal", overrides=over)
    model = cfg.build()
    assert model.trains[0].plasticity == ShortTermPlasticity(6, 1500.0, 50.0)
    again = config.loads(config.dumps(cfg))
    assert again == cfg and again.build() == model
    config.save(cfg, tmp_path / "t.toml")
    assert config.load(tmp_path / "t.toml").build() == model
    assert config.loads(config.dumps(cfg, resolved=True)).build() == model
    plain = presets.build("dopaminergic_striatal", **{"train.enabled": True})
    assert plain.trains[0].plasticity is None


@pytest.mark.parametrize("over, field", [
    ({"train.n_release_sites": 3}, "train.tau_recovery_ms"),
    ({"train.n_release_sites": 0, "train.tau_recovery_ms": 100}, "train.n_release_sites"),
    ({"train.n_release_sites": 2.5, "train.tau_recovery_ms": 100}, "train.n_release_sites"),
    ({"train.tau_recovery_ms": -1}, "train.tau_recovery_ms"),
    ({"train.tau_recovery_ms": 100, "train.tau_facilitation_ms": "-3 ms"}, "train.tau_facilitation_ms"),
    ({"train.tau_recovery_ms": "2 uM"}, "train.tau_recovery_ms"),
    ({"train.tau_recover_ms": 100}, "train.tau_recover_ms"),
])
def test_bad_plasticity_configuration_names_the_field(over, field):
    with pytest.raises(ModelError) as err:
        presets.build("dopaminergic_striatal", **{"train.enabled": True, **over})
    assert field in str(err.value)


def test_autoreceptor_feedback_refuses_a_plastic_train():
    with pytest.raises(ModelError) as err:
        presets.build("dopaminergic_striatal", **{"train.enabled": True, "train.tau_recovery_ms": 100,
                                                  "autoreceptor.gain": 0.5, "autoreceptor.occupancy_per_release": 0.1})
    assert "autoreceptor.gain" in str(err.value)


def _validate(stp):
    tr = StimulusTrain(n_stimuli=2, frequency_hz=10.0, plasticity=stp)
    SynapseModel(releases=[], trains=[tr], timing=Timing(duration_ms=200.0)).validate()


@given(n=st.integers(min_value=1, max_value=10_000), rec=st.floats(0.0, 1e6), fac=st.floats(0.0, 1e6))
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
def test_valid_plasticity_is_accepted_and_its_expectation_is_a_probability(n, rec, fac):
    stp = ShortTermPlasticity(n, rec, fac)
    _validate(stp)
    u_n, r_n = stp.expected_release(6, 100.0, 0.3)
    assert np.all((u_n >= 0.3 - 1e-12) & (u_n <= 1.0)) and np.all((r_n > 0) & (r_n <= 1.0))


@given(bad=st.one_of(
    st.tuples(st.just("n_sites"), st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), st.booleans(),
                                             st.text(max_size=3))),
    st.tuples(st.sampled_from(["tau_recovery_ms", "tau_facilitation_ms"]),
              st.one_of(st.floats(max_value=-1e-300), st.just(float("nan")), st.just(float("inf")),
                        st.text(max_size=3), st.none()))))
@settings(max_examples=80, deadline=None, derandomize=True, database=None)
def test_invalid_plasticity_is_refused_naming_the_field(bad):
    name, value = bad
    kw = {"n_sites": 2, "tau_recovery_ms": 100.0, "tau_facilitation_ms": 0.0, name: value}
    with pytest.raises(ModelError) as err:
        _validate(ShortTermPlasticity(**kw))
    assert f"trains[0].plasticity.{name}" in str(err.value)


def test_plasticity_must_be_the_dataclass():
    with pytest.raises(ModelError) as err:
        _validate({"n_sites": 2})
    assert "trains[0].plasticity" in str(err.value)


def test_the_mean_field_model_releases_the_expected_vesicles_of_a_plastic_train():
    from mcsyn import meanfield
    model = counting_model(u=0.5, n_sites=10, tau_rec=500.0, tau_f=0.0, n_stimuli=6, frequency_hz=20.0)
    released = meanfield.mean_field(model)["released"].iloc[-1]
    assert released == pytest.approx(model.trains[0].expected_vesicles().sum(), rel=1e-9)
