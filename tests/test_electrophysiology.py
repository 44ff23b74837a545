"""Voltage-clamp currents: library data, the Mg2+ block, currents from real runs, waveform metrics,
the 1/sqrt(N) scaling of their variability, bad input, and the figure."""
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import brentq

import mcsyn
from mcsyn import electrophysiology as ep
from mcsyn import library
from mcsyn.errors import ModelError
from mcsyn.electrophysiology import VoltageClamp

# Jahr & Stevens 1990 constants, written out here so that the test does not read them from the code
K0_MM, SLOPE_PER_MV = 3.57, 0.062
IONOTROPIC = ("AMPA", "NMDA", "GABA_A", "nAChR")


def jahr_stevens(v_mV, mg_mM):
    return 1.0 / (1.0 + mg_mM / K0_MM * math.exp(-SLOPE_PER_MV * v_mV))


@pytest.fixture(scope="module")
def glutamatergic_run():
    cm = mcsyn.compile_model(mcsyn.presets.build("glutamatergic"))
    run = mcsyn.run_one(cm, seed=11, run_index=3)
    columns = {c: run.series[c].to_numpy() for c in run.series.columns}
    return cm, columns


# ------------------------------------------------------------------------------------------ library

def test_library_channels_have_conductance_reversal_and_sources():
    assert library.audit() == []
    for name in IONOTROPIC:
        rec = library.receptor(name)
        assert rec.ionotropic
        assert {s for s, _ in rec.conductance_pS} == set(rec.scheme().open_states)
        assert all(g > 0 for _, g in rec.conductance_pS)
        assert rec.reversal_potential_mV is not None
        for key in ("conductance_pS", "reversal_potential_mV"):
            assert rec.sources.get(key, "").strip(), f"{name}.sources.{key}"
    nmda = library.receptor("NMDA")
    assert (nmda.mg_block_k0_mM, nmda.mg_block_slope_per_mV) == (K0_MM, SLOPE_PER_MV)
    assert nmda.sources["mg_block_k0_mM"].startswith("Jahr & Stevens 1990")


def test_gpcrs_carry_no_channel_data():
    for name in library.names("receptors"):
        rec = library.receptor(name)
        if rec.scheme_kind == "one_site":
            assert not rec.ionotropic and rec.conductance_pS == () and rec.reversal_potential_mV is None


def _patched_receptors(monkeypatch, name, **changes):
    real = library._load

    def fake(kind):
        data = real(kind)
        if kind != "receptors":
            return data
        data = {k: dict(v) for k, v in data.items()}
        data[name].update(changes)
        return data
    monkeypatch.setattr(library, "_load", fake)


@pytest.mark.parametrize("name, changes, field_name", [
    ("D2", {"conductance_pS": 10.0}, "receptors.D2.conductance_pS"),
    ("GABA_A", {"conductance_pS": {"O1": 25.0, "O3": 25.0}}, "receptors.GABA_A.conductance_pS.O3"),
    ("AMPA", {"conductance_pS": -10.0}, "receptors.AMPA.conductance_pS.O"),
    ("AMPA", {"conductance_pS": "10 mV"}, "receptors.AMPA.conductance_pS.O"),
    ("AMPA", {"reversal_potential_mV": 500.0}, "receptors.AMPA.reversal_potential_mV"),
    ("AMPA", {"mg_block_k0_mM": 3.57}, "receptors.AMPA.mg_block_k0_mM"),
    ("AMPA", {"ionotropic": "yes"}, "receptors.AMPA.ionotropic"),
])
def test_bad_channel_data_names_the_entry(monkeypatch, name, changes, field_name):
    _patched_receptors(monkeypatch, name, **changes)
    with pytest.raises(ModelError) as err:
        library.receptor(name)
    assert err.value.field == field_name


def test_conductance_with_units_parses(monkeypatch):
    _patched_receptors(monkeypatch, "AMPA", conductance_pS="0.01 nS")
    assert library.receptor("AMPA").conductance_pS == (("O", 10.0),)


# ------------------------------------------------------------------------------------------ Mg block

@pytest.mark.parametrize("v_mV", [-120.0, -80.0, -60.0, -30.0, 0.0, 20.0, 60.0])
@pytest.mark.parametrize("mg_mM", [0.0, 0.1, 1.0, 2.0, 10.0])
def test_mg_block_is_the_jahr_stevens_formula(v_mV, mg_mM):
    got = ep.mg_block(v_mV, mg_mM, K0_MM, SLOPE_PER_MV)
    assert got == pytest.approx(jahr_stevens(v_mV, mg_mM), rel=1e-14)
    assert 0 < got <= 1


def test_mg_block_limits():
    assert ep.mg_block(-80.0, 0.0, K0_MM, SLOPE_PER_MV) == 1.0
    assert ep.mg_block(0.0, K0_MM, K0_MM, SLOPE_PER_MV) == pytest.approx(0.5)
    v = np.linspace(-100, 60, 17)
    assert np.all(np.diff(ep.mg_block(v, 1.0, K0_MM, SLOPE_PER_MV)) > 0)     # relief with depolarisation


# ------------------------------------------------------------------------------------------ currents

@pytest.mark.parametrize("v_mV, mg_mM", [(-70.0, 1.0), (-40.0, 2.0), (40.0, 1.0), (-70.0, 0.0)])
def test_current_is_open_count_times_conductance_times_driving_force(glutamatergic_run, v_mV, mg_mM):
    cm, columns = glutamatergic_run
    cur = ep.current_columns(cm, columns, ep.VoltageClamp(v_mV, mg_mM))
    assert set(cur) == {"AMPA:current_pA", "NMDA:current_pA", "current_pA"}
    ampa = columns["AMPA:O"] * 10.0 * (v_mV - 0.0) * 1e-3
    nmda = columns["NMDA:O"] * 50.0 * jahr_stevens(v_mV, mg_mM) * (v_mV - 0.0) * 1e-3
    assert columns["AMPA:O"].max() > 5               # the run opened channels
    np.testing.assert_allclose(cur["AMPA:current_pA"], ampa, rtol=1e-12, atol=0)
    np.testing.assert_allclose(cur["NMDA:current_pA"], nmda, rtol=1e-12, atol=0)
    np.testing.assert_allclose(cur["current_pA"], ampa + nmda, rtol=1e-12, atol=0)
    if v_mV < 0:
        assert cur["current_pA"].min() < 0 and cur["current_pA"].max() <= 0    # inward is negative


def test_gaba_current_sums_both_open_states_and_reverses_at_e_cl():
    cm = mcsyn.compile_model(mcsyn.presets.build("gabaergic"))
    run = mcsyn.run_one(cm, seed=5)
    columns = {c: run.series[c].to_numpy() for c in run.series.columns}
    at_zero = ep.current_columns(cm, columns, ep.VoltageClamp(0.0, 1.0))["GABA_A:current_pA"]
    expect = (columns["GABA_A:O1"] + columns["GABA_A:O2"]) * 25.0 * (0.0 + 70.0) * 1e-3
    np.testing.assert_allclose(at_zero, expect, rtol=1e-12)
    assert at_zero.max() > 0                                            # outward Cl- current at 0 mV
    at_e_cl = ep.current_columns(cm, columns, ep.VoltageClamp(-70.0))["current_pA"]
    assert np.all(at_e_cl == 0)
    shifted = ep.current_columns(cm, columns, ep.VoltageClamp(-70.0, reversal_potential_mV={"GABAA": -50}))
    np.testing.assert_allclose(shifted["current_pA"], (columns["GABA_A:O1"] + columns["GABA_A:O2"]) * 25.0
                               * (-70.0 + 50.0) * 1e-3, rtol=1e-12)


def test_ensemble_currents_match_single_runs():
    cm = mcsyn.compile_model(mcsyn.presets.build("glutamatergic"))
    ens = mcsyn.run(cm, n_runs=3, seed=2, workers=1)
    clamp = ep.VoltageClamp(-60.0, 1.0)
    stacked = ep.ensemble_currents(ens, clamp)
    for r in range(3):
        one = mcsyn.run_one(cm, seed=2, run_index=r)
        single = ep.current_columns(cm, {c: one.series[c].to_numpy() for c in one.series.columns}, clamp)
        for name, values in single.items():
            np.testing.assert_array_equal(stacked[name][r], values)
    table = ep.ensemble_current_metrics(ens, clamp)
    assert list(table["run"]) == [0, 1, 2]
    assert np.all(table["current:peak_pA"] < 0)


def test_nmda_iv_curve_follows_the_block(glutamatergic_run):
    cm, columns = glutamatergic_run
    volts = [-100.0, -80.0, -60.0, -40.0, -20.0, 0.0, 20.0, 40.0]
    iv = ep.iv_curve(cm, columns, volts, external_mg_mM=1.0)
    n_peak = columns["NMDA:O"].max()
    assert n_peak > 0
    expect = [n_peak * 50.0 * jahr_stevens(v, 1.0) * v * 1e-3 for v in volts]
    np.testing.assert_allclose(iv["NMDA:peak_current_pA"], expect, rtol=1e-12, atol=1e-15)
    nmda = iv.set_index("holding_potential_mV")["NMDA:peak_current_pA"]
    assert nmda[-20.0] < nmda[-60.0] < nmda[-100.0] < 0          # negative slope region in 1 mM Mg
    assert nmda[0.0] == 0 and nmda[40.0] > nmda[20.0] > 0
    free = ep.iv_curve(cm, columns, volts, external_mg_mM=0.0)["NMDA:peak_current_pA"]
    np.testing.assert_allclose(free, [n_peak * 50.0 * v * 1e-3 for v in volts], rtol=1e-12)   # ohmic


# ------------------------------------------------------------------------------------------ 1/sqrt(N)

def _cv_and_se(x):
    """CV of a sample and its delta-method standard error from the sample's own moments:
    Var(CV) = [(m4 - s^4)/(4 s^2 mu^2) + s^4/mu^4 - m3/mu^3] / n."""
    x = np.asarray(x, dtype=float)
    n, mu = len(x), x.mean()
    d = x - mu
    m2, m3, m4 = (d ** 2).mean(), (d ** 3).mean(), (d ** 4).mean()
    var = ((m4 - m2 ** 2) / (4 * m2 * mu ** 2) + m2 ** 2 / mu ** 4 - m3 / mu ** 3) / n
    return math.sqrt(m2) / abs(mu), math.sqrt(var)


def _ampa_currents(n_receptors, n_runs, seed):
    model = mcsyn.presets.build("glutamatergic")
    model.timing = dataclasses.replace(model.timing, duration_ms=0.7)      # the mean peaks near 0.5 ms
    ampa = next(g for g in model.sites if g.label == "AMPA")
    ampa.density_per_um2, ampa.count = None, n_receptors
    ens = mcsyn.run(model, n_runs=n_runs, seed=seed)
    return ens.times_ms, ep.ensemble_currents(ens, ep.VoltageClamp(-70.0, 1.0))["AMPA:current_pA"]


def test_cv_of_the_current_falls_as_one_over_sqrt_n():
    """Channels placed and gated independently: the current at a fixed time is -0.7 pA times a sum
    of N independent open indicators, each open with the same probability p, so
    CV = sqrt((1 - p) / (N p)): CV * sqrt(N) is the same for every N and matches that binomial
    value. Fixed time = peak of the mean current of the larger synapse; tolerances 5 standard
    errors (delta method from each sample's own moments)."""
    n_small, n_large, n_runs = 20, 80, 250
    _, small = _ampa_currents(n_small, n_runs, seed=101)
    _, large = _ampa_currents(n_large, n_runs, seed=202)
    k = int(np.argmax(np.abs(large.mean(axis=0))))
    scaled = {}
    for n_receptors, currents in ((n_small, small), (n_large, large)):
        cv, se = _cv_and_se(currents[:, k])
        p = currents[:, k].mean() / (-0.7 * n_receptors)          # one open AMPAR: 10 pS x -70 mV
        binomial = math.sqrt((1 - p) / p)
        se_binomial = math.sqrt(p * (1 - p) / (n_receptors * n_runs)) / (2 * p * p * binomial)
        scaled[n_receptors] = (cv * math.sqrt(n_receptors), se * math.sqrt(n_receptors))
        assert abs(scaled[n_receptors][0] - binomial) < 5 * math.hypot(scaled[n_receptors][1], se_binomial), \
            (n_receptors, scaled[n_receptors], binomial)
    diff = scaled[n_small][0] - scaled[n_large][0]
    assert abs(diff) < 5 * math.hypot(scaled[n_small][1], scaled[n_large][1]), scaled
    assert scaled[n_small][0] / math.sqrt(n_small) > 1.5 * scaled[n_large][0] / math.sqrt(n_large)


# ------------------------------------------------------------------------------------------ waveform metrics

def difference_of_exponentials(tau_rise, tau_decay, amplitude=-20.0, dt=0.005, duration=40.0):
    t = np.arange(0.0, duration + dt / 2, dt)
    return t, amplitude * (np.exp(-t / tau_decay) - np.exp(-t / tau_rise))


@pytest.mark.parametrize("tau_rise, tau_decay", [(0.1, 3.0), (0.2, 5.0), (0.05, 1.5)])
def test_waveform_metrics_against_closed_form(tau_rise, tau_decay):
    amp, dt, duration = -20.0, 0.005, 40.0
    t, i = difference_of_exponentials(tau_rise, tau_decay, amp, dt, duration)

    def f(x):
        return amp * (math.exp(-x / tau_decay) - math.exp(-x / tau_rise))
    t_peak = tau_rise * tau_decay / (tau_decay - tau_rise) * math.log(tau_decay / tau_rise)
    peak = f(t_peak)
    curvature = abs(amp) * (1 / tau_rise ** 2 + 1 / tau_decay ** 2)      # bound on |I''|
    m = ep.current_metrics(t, i)
    assert abs(m["peak_pA"] - peak) <= 0.5 * curvature * dt ** 2 + 1e-12
    assert abs(m["time_to_peak_ms"] - t_peak) <= dt
    t10 = brentq(lambda x: f(x) - 0.1 * peak, 1e-9, t_peak)
    t90 = brentq(lambda x: f(x) - 0.9 * peak, 1e-9, t_peak)
    slope_min = min(abs((f(x + 1e-6) - f(x - 1e-6)) / 2e-6) for x in (t10, t90))
    interp = 2 * curvature * dt ** 2 / (8 * slope_min)                 # linear-interpolation error, two ends
    assert abs(m["rise_time_10_90_ms"] - (t90 - t10)) <= interp + 1e-12
    charge = amp * (tau_decay * (1 - math.exp(-duration / tau_decay)) - tau_rise * (1 - math.exp(-duration / tau_rise)))
    assert abs(m["charge_pC"] - 1e-3 * charge) <= 1e-3 * duration * dt ** 2 * curvature / 12
    # the fit starts at 80 % of the peak, where the rising term is below 1e-4 of the decaying one
    fit = ep.fit_decay(t, i)
    assert math.exp(-fit.start_ms / tau_rise) < 1e-4 * math.exp(-fit.start_ms / tau_decay)
    assert fit.reason == "" and m["decay_tau_ms"] == pytest.approx(tau_decay, rel=1e-3)


def test_decay_of_a_pure_exponential_is_exact_and_rise_is_undefined():
    t = np.arange(0.0, 20.0, 0.01)
    i = -15.0 * np.exp(-t / 2.5)
    m = ep.current_metrics(t, i)
    assert m["decay_tau_ms"] == pytest.approx(2.5, rel=1e-6)
    assert math.isnan(m["rise_time_10_90_ms"])           # the record starts at its peak
    assert ep.fit_decay(t, i).amplitude_pA < 0


@pytest.mark.parametrize("current, reason", [
    (np.zeros(50), "no current"),
    (np.ones(50), "never falls"),
    (np.r_[np.zeros(46), 1.0, 0.5, 0.2, 0.1], "fewer than 4"),
])
def test_decay_fit_failures_give_nan_and_a_reason(current, reason):
    t = np.arange(len(current)) * 0.01
    fit = ep.fit_decay(t, current)
    assert math.isnan(fit.tau_ms) and reason in fit.reason
    assert math.isnan(ep.current_metrics(t, current)["decay_tau_ms"])


def test_real_run_metrics(glutamatergic_run):
    cm, columns = glutamatergic_run
    m = ep.run_current_metrics(cm, columns, ep.VoltageClamp(-70.0, 1.0))
    assert m["current:peak_pA"] < 0 and m["AMPA:current:peak_pA"] < 0
    assert 0 < m["current:rise_time_10_90_ms"] < m["current:time_to_peak_ms"]
    assert m["current:charge_pC"] < 0
    assert math.isfinite(m["AMPA:current:decay_tau_ms"]) and m["AMPA:current:decay_tau_ms"] > 0


def test_amplitude_statistics():
    a = np.array([-10.0, -12.0, -8.0, -11.0, -9.0])
    s = ep.amplitude_statistics(a, bins=4)
    assert s["n"] == 5 and s["mean_pA"] == pytest.approx(-10.0)
    assert s["cv"] == pytest.approx(np.std(a, ddof=1) / 10.0)
    assert s["histogram_counts"].sum() == 5 and len(s["histogram_edges_pA"]) == 5
    assert s["quantiles_pA"][0.5] == pytest.approx(-10.0)
    with pytest.raises(ModelError):
        ep.amplitude_statistics([1.0])


# ------------------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("kwargs, field_name", [
    ({"holding_potential_mV": 200.0}, "clamp.holding_potential_mV"),
    ({"holding_potential_mV": -151.0}, "clamp.holding_potential_mV"),
    ({"holding_potential_mV": "5 ms"}, "clamp.holding_potential_mV"),
    ({"holding_potential_mV": float("nan")}, "clamp.holding_potential_mV"),
    ({"holding_potential_mV": True}, "clamp.holding_potential_mV"),
    ({"external_mg_mM": -1.0}, "clamp.external_mg_mM"),
    ({"external_mg_mM": "1 mV"}, "clamp.external_mg_mM"),
    ({"temperature_c": 80.0}, "clamp.temperature_c"),
    ({"temperature_c": "warm"}, "clamp.temperature_c"),
    ({"reversal_potential_mV": {"GABA_A": 400.0}}, "clamp.reversal_potential_mV.GABA_A"),
    ({"reversal_potential_mV": {"nonsense": -60.0}}, "clamp.reversal_potential_mV.nonsense"),
    ({"reversal_potential_mV": 5}, "clamp.reversal_potential_mV"),
])
def test_bad_clamp_names_the_field(kwargs, field_name):
    with pytest.raises(ModelError) as err:
        ep.VoltageClamp(**kwargs)
    assert err.value.field == field_name


def test_clamp_accepts_units():
    c = ep.VoltageClamp("-0.07 V", "500 uM", 34, {"GABAA": "-60 mV"})
    assert (c.holding_potential_mV, c.external_mg_mM, c.temperature_c) == (-70.0, 0.5, 34.0)
    assert c.reversal_for("GABA_A") == -60.0 and c.reversal_for("AMPA") is None


def test_clamp_on_a_model_without_ionotropic_receptors():
    cm = mcsyn.compile_model(mcsyn.presets.build("noradrenergic"))
    with pytest.raises(ModelError) as err:
        ep.channels(cm, ep.VoltageClamp())
    assert err.value.field == "clamp" and "no ionotropic receptor" in str(err.value)


@pytest.mark.parametrize("change, field_name", [
    ({"conductance_pS": ()}, "receptors.AMPA.conductance_pS"),
    ({"reversal_potential_mV": None}, "receptors.AMPA.reversal_potential_mV"),
])
def test_missing_channel_data_names_the_library_entry(glutamatergic_run, change, field_name):
    cm, columns = glutamatergic_run
    broken = dataclasses.replace(library.receptor("AMPA"), **change)
    with pytest.raises(ModelError) as err:
        ep.current_columns(cm, columns, ep.VoltageClamp(), receptors={"AMPA": broken})
    assert err.value.field == field_name


def test_custom_scheme_needs_a_receptor_entry():
    model = mcsyn.presets.build("glutamatergic")
    ampa = next(g for g in model.sites if g.label == "AMPA")
    ampa.scheme = ampa.scheme.copy("MyChannel")
    cm = mcsyn.compile_model(model)
    with pytest.raises(ModelError) as err:
        ep.channels(cm, ep.VoltageClamp())
    assert err.value.field == "sites['AMPA'].scheme"
    named = ep.channels(cm, ep.VoltageClamp(), receptors={"AMPA": "AMPA"})
    assert [c.entry for c in named] == ["AMPA", "NMDA"]
    assert [c.entry for c in ep.channels(cm, ep.VoltageClamp(), receptors={"AMPA": None})] == ["NMDA"]


def test_waveform_input_errors():
    with pytest.raises(ModelError) as err:
        ep.current_metrics([0.0, 1.0, 1.0], [0.0, 1.0, 2.0])
    assert err.value.field == "times_ms"
    with pytest.raises(ModelError) as err:
        ep.current_metrics([0.0, 1.0, 2.0], [0.0, 1.0])
    assert err.value.field == "current_pA"
    with pytest.raises(ModelError) as err:
        ep.current_metrics([0.0, 1.0, 2.0], [0.0, float("inf"), 0.0])
    assert err.value.field == "current_pA"


# ------------------------------------------------------------------------------------------ properties

finite = dict(allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(v=st.floats(-150, 150, **finite), mg=st.floats(0, 100, **finite),
       temp=st.none() | st.floats(0, 45, **finite))
def test_valid_clamps_are_accepted(v, mg, temp):
    c = ep.VoltageClamp(v, mg, temp)
    assert (c.holding_potential_mV, c.external_mg_mM, c.temperature_c) == (v, mg, temp)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(which=st.sampled_from(["holding_potential_mV", "external_mg_mM", "temperature_c"]),
       magnitude=st.floats(1e-6, 1e6, **finite), sign=st.sampled_from([-1.0, 1.0]),
       special=st.sampled_from([None, float("nan"), float("inf"), -float("inf")]))
def test_invalid_clamps_are_refused(which, magnitude, sign, special):
    bad = {"holding_potential_mV": sign * (150.0 + magnitude), "external_mg_mM": -magnitude,
           "temperature_c": 45.0 + magnitude if sign > 0 else -magnitude}[which]
    if special is not None:
        bad = special
    with pytest.raises(ModelError) as err:
        ep.VoltageClamp(**{which: bad})
    assert err.value.field == f"clamp.{which}"


@settings(max_examples=150, deadline=None, derandomize=True)
@given(values=st.lists(st.floats(1e-3, 1e3, **finite), min_size=2, max_size=200),
       dt=st.floats(1e-3, 1.0, **finite), sign=st.sampled_from([-1.0, 1.0]))
def test_metrics_of_random_positive_waveforms_are_finite_or_explained(values, dt, sign):
    y = np.asarray(values)
    t = np.arange(len(y)) * dt
    m = ep.current_metrics(t, sign * y)
    for key in ("peak_pA", "time_to_peak_ms", "charge_pC"):
        assert math.isfinite(m[key])
    assert m["peak_pA"] == pytest.approx(sign * y.max()) and np.sign(m["charge_pC"]) == sign
    k = int(np.argmax(y))
    assert math.isnan(m["rise_time_10_90_ms"]) == (y[0] >= 0.1 * y[k])
    if not math.isnan(m["rise_time_10_90_ms"]):
        assert 0 <= m["rise_time_10_90_ms"] <= t[k]
    fit = ep.fit_decay(t, sign * y)
    assert math.isnan(m["decay_tau_ms"]) == bool(fit.reason)
    if not fit.reason:
        assert m["decay_tau_ms"] > 0


@settings(max_examples=60, deadline=None, derandomize=True)
@given(tau_rise=st.floats(0.02, 1.0, **finite), ratio=st.floats(3.0, 50.0, **finite),
       amp=st.floats(0.1, 1e3, **finite))
def test_metrics_of_random_synaptic_waveforms_are_finite(tau_rise, ratio, amp):
    t, i = difference_of_exponentials(tau_rise, tau_rise * ratio, -amp, dt=tau_rise / 10,
                                      duration=tau_rise * ratio * 8)
    m = ep.current_metrics(t, i)
    assert all(math.isfinite(v) for v in m.values()), m
    assert m["rise_time_10_90_ms"] > 0 and m["decay_tau_ms"] > 0 and m["peak_pA"] < 0


# ------------------------------------------------------------------------------------------ figure

def test_plot_current_writes_a_figure(tmp_path):
    from mcsyn.plots import save_figure
    cm = mcsyn.compile_model(mcsyn.presets.build("glutamatergic"))
    ens = mcsyn.run(cm, n_runs=6, seed=4, workers=1)
    clamp = ep.VoltageClamp(-70.0, 1.0, 22)
    fig = ep.plot_current(ens.times_ms, ep.ensemble_currents(ens, clamp), clamp)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Time (ms)" and ax.get_ylabel() == "Current (pA)"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"Total", "AMPA", "NMDA"}
    path = save_figure(fig, tmp_path / "current.png")
    assert path.stat().st_size > 10_000
    with pytest.raises(ModelError):
        ep.plot_current(ens.times_ms, np.zeros((2, 3)))


# ------------------------------------------------------------------------------------------------------
# the clamp on a model: presets, configurations, the command line

def test_a_clamp_given_through_presets_toml_and_the_command_line_is_the_same():
    from mcsyn import cli, config
    by_preset = mcsyn.presets.build("glutamatergic", clamp={"holding_potential_mV": "-60 mV", "external_mg_mM": 0.5})
    by_toml = config.loads('preset = "glutamatergic"\n[clamp]\nholding_potential_mV = "-60 mV"\n'
                           'external_mg_mM = 0.5\n').build()
    args = cli.build_parser().parse_args(cli._join_signed_values(
        ["run", "glutamatergic", "--clamp", "-60mV", "--mg", "0.5mM", "--out", "unused"]))
    (condition,) = cli._conditions(args, None)
    assert by_preset.clamp == by_toml.clamp == condition.model.clamp == VoltageClamp(-60, 0.5)


def test_a_clamped_run_carries_currents_in_its_series_and_metrics():
    model = mcsyn.presets.build("glutamatergic", clamp={"holding_potential_mV": -70})
    run = mcsyn.run_one(model, seed=3)
    cm = mcsyn.compile_model(model)
    expected = ep.current_columns(cm, {c: run.series[c].to_numpy() for c in run.series}, model.clamp)
    np.testing.assert_array_equal(run.series["current_pA"].to_numpy(), expected["current_pA"])
    assert run.metrics["current:peak_pA"] == pytest.approx(run.series["current_pA"].min())
    assert run.metrics["current:peak_pA"] < 0          # inward at -70 mV
    unclamped = mcsyn.run_one(mcsyn.presets.build("glutamatergic"), seed=3)
    assert "current_pA" not in unclamped.series and not any(k.startswith("current") for k in unclamped.metrics)
    # the clamp reads the run: the molecule counts are those of the unclamped run, bit for bit
    np.testing.assert_array_equal(unclamped.series["AMPA:open"].to_numpy(), run.series["AMPA:open"].to_numpy())


def test_a_clamp_on_a_model_without_ligand_gated_channels_is_refused_when_built():
    with pytest.raises(ModelError, match="no ionotropic receptor"):
        mcsyn.presets.build("serotonergic", clamp={"holding_potential_mV": -70})
    with pytest.raises(ModelError, match=r"clamp\.holding_potential_mV"):
        mcsyn.presets.build("glutamatergic", clamp={"holding_potential_mV": "-200 mV"})
    with pytest.raises(ModelError, match="^clamp"):
        mcsyn.presets.build("glutamatergic", clamp=-70)
    with pytest.raises(ModelError, match="clamp"):
        mcsyn.SynapseModel(clamp="-70 mV").validate()


def test_signed_option_values_reach_argparse_as_values():
    from mcsyn import cli
    assert cli._join_signed_values(["run", "x", "--clamp", "-70mV", "--range", "-1uM:2uM:3", "--runs", "4"]) == [
        "run", "x", "--clamp=-70mV", "--range=-1uM:2uM:3", "--runs", "4"]
    with pytest.raises(SystemExit):
        cli.main(["run", "glutamatergic", "--mg", "1mM", "--out", "/nonexistent/never"])


def test_an_ensemble_stores_currents_to_a_femtoampere_not_cut_to_whole_pA():
    from mcsyn import ensemble
    model = mcsyn.presets.build("glutamatergic", clamp={"holding_potential_mV": -70, "external_mg_mM": 1.0})
    (cond,) = ensemble.make_conditions(model)
    res = ensemble.run_ensemble([cond], n_runs=4, seed=2, workers=1, progress=False)
    seed = ensemble.condition_seed(2, cond.name)
    runs = [mcsyn.run_one(model, seed=seed, run_index=i).series for i in range(4)]
    tc = res.timecourse.set_index(["observable", "time_ms"])["mean"]
    for name in ("current_pA", "NMDA:current_pA"):
        stored = tc.loc[name]
        exact = np.mean([r[name].reindex(stored.index).to_numpy() for r in runs], axis=0)
        np.testing.assert_allclose(stored.to_numpy(), exact, rtol=0, atol=0.5e-3)   # rounding to 1 fA
    assert tc.loc["NMDA:current_pA"].abs().max() > 0.01      # a few channels, under the block
    traces = res.traces(cond.name, "current_pA")
    np.testing.assert_allclose(traces.mean(axis=0).to_numpy(), tc.loc["current_pA"].to_numpy(), atol=1e-9)
