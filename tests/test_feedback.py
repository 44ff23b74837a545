"""Closed-loop autoreceptor feedback (``SynapseModel.feedback``, ``ext/feedback.pxi``): the kernel
draws each train stimulus's vesicles from the autoreceptor activation realised in the run.

Stochastic checks use fixed seeds and tolerances of Z_TOL standard errors from the binomial or
sample variance; none is tuned. The filter is checked exactly: from the run's own states series
(sampled every fine step) the activation the kernel read is bracketed by two recursions."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mcsyn import presets, schemes
from mcsyn.autoreceptor import activation_weights
from mcsyn.compile import compile_model
from mcsyn.errors import ModelError
from mcsyn.model import (ClosedLoopFeedback, Geometry, Release, ShortTermPlasticity, SiteGroup, StimulusTrain,
                         SynapseModel, Timing)
from mcsyn.simulate import simulate_columns

Z_TOL = 5.0
DT_US = 1.0


def cleft_model(gain=0.8, tau_ms=0.5, delay_ms=0.2, kon=1e8, n_sites=5, u=0.5, tau_rec=0.0, tau_f=0.0,
                n_stimuli=6, frequency_hz=1000.0, molecules=300):
    """A cheap cleft with a presynaptic one-site autoreceptor that a train's vesicles activate."""
    g = Geometry(cleft_height_um=0.02, cleft_radius_um=0.2, psd_radius_um=0.15, outside="band",
                 band_outer_radius_um=0.3, band_outer_boundary="absorbing")
    auto = SiteGroup(schemes.one_site_receptor("auto", "glutamate", kon, 1000.0), "presynaptic", count=40, name="auto")
    tr = StimulusTrain(n_stimuli=n_stimuli, frequency_hz=frequency_hz, release_probability=u,
                       vesicle=Release(molecules=molecules), plasticity=ShortTermPlasticity(n_sites, tau_rec, tau_f))
    duration = (n_stimuli - 1) * 1000.0 / frequency_hz + 0.5
    return SynapseModel(geometry=g, sites=[auto], releases=[], trains=[tr],
                        timing=Timing(duration_ms=duration, dt_fine_us=DT_US, dt_volume_us=DT_US,
                                      sample_interval_us=DT_US),
                        feedback=ClosedLoopFeedback("auto", gain, tau_ms, delay_ms)).validate()


def runs(model, n_runs, seed):
    cm = compile_model(model)
    return cm, [simulate_columns(cm, seed, i) for i in range(n_runs)]


def filter_bounds(cm, cols, decay):
    """(a_lo, a_hi) per fine step: the filter a_j = f_{j-1} + (a_{j-1} - f_{j-1}) decay run on the
    sampled active fraction (a lower bound of what the kernel saw: the sample at step j comes before
    that step's bindings) and on it plus that step's binding events (an upper bound)."""
    n = cm.site_count(cm.model.sites[0])
    f_lo = cols["auto:AR"] / n
    f_hi = f_lo + np.diff(cols["binding_events"], append=cols["binding_events"][-1]) / n
    out = []
    for f in (f_lo, f_hi):
        a = np.zeros(len(f))
        for j in range(1, len(f)):
            a[j] = f[j - 1] + (a[j - 1] - f[j - 1]) * decay
        out.append(a)
    return out


def test_activation_weights_count_the_states_holding_transmitter():
    assert activation_weights(schemes.one_site_receptor("D2", "dopamine", 1e6, 1.0)) == {"AR": 1.0}
    assert activation_weights(schemes.transporter_cycle("T", "dopamine", 1e7, 1, 1, 1)) == {"TS": 1.0}


def test_the_activation_read_matches_a_filter_of_the_runs_own_states():
    model = cleft_model()
    fb = model.feedback
    cm, results = runs(model, 3, seed=5)
    decay = np.exp(-DT_US / (fb.tau_ms * 1000.0))
    read_us = np.maximum(model.trains[0].stimulus_times_ms() - fb.delay_ms, 0.0) * 1000.0
    steps = np.ceil(read_us / DT_US - 1e-9).astype(int)
    for cols, out in results:
        lo, hi = filter_bounds(cm, cols, decay)
        a = out["feedback_activation"]
        assert np.all(lo[steps] - 1e-12 <= a) and np.all(a <= hi[steps] + 1e-12), (lo[steps], a, hi[steps])
        assert np.all(hi[steps] - lo[steps] < 0.05) and a[-1] > 0.1     # a narrow bracket of a real activation


def test_later_stimuli_release_less_and_as_p_u_1_minus_g_a_given_the_realised_activation():
    model = cleft_model()
    tr, fb = model.trains[0], model.feedback
    _, results = runs(model, 300, seed=21)
    a = np.array([out["feedback_activation"] for _, out in results])
    v = np.array([out["feedback_vesicles"] for _, out in results])
    p = tr.stimulus_probability * (1.0 - fb.gain * a)                 # per run and stimulus
    n = tr.plasticity.n_sites                                         # tau_recovery 0: every site refilled
    se = np.sqrt((n * p * (1 - p)).sum())
    assert abs(v.sum() - (n * p).sum()) < Z_TOL * se, (v.sum(), (n * p).sum(), se)
    first, last = v[:, 0], v[:, -1]
    se_diff = np.sqrt((first.var(ddof=1) + last.var(ddof=1)) / len(v))
    assert first.mean() - last.mean() > Z_TOL * se_diff, (first.mean(), last.mean(), se_diff)
    assert abs(first.mean() - n * tr.stimulus_probability) < Z_TOL * np.sqrt(n * 0.25 / len(v))   # a(0) = 0


def test_short_term_plasticity_composes_with_the_kernels_draws():
    """With an autoreceptor that no molecule reaches (kon ~ 0), the kernel's draws follow the
    Tsodyks-Markram recursion, as the placement draws do (tests/test_trains.py)."""
    n_sites, u, tau_rec, tau_f = 5, 0.4, 3.0, 2.0
    model = cleft_model(gain=1.0, kon=1e-3, n_sites=n_sites, u=u, tau_rec=tau_rec, tau_f=tau_f, molecules=1)
    _, results = runs(model, 600, seed=3)
    v = np.array([out["feedback_vesicles"] for _, out in results])
    assert all(np.all(out["feedback_activation"] == 0) for _, out in results)
    expected = model.trains[0].expected_vesicles()
    per_site = expected / n_sites
    se = np.sqrt(n_sites * per_site * (1 - per_site) / len(v))
    assert np.all(np.abs(v.mean(axis=0) - expected) < Z_TOL * se), (v.mean(axis=0), expected, se)
    released = np.array([cols["released"][-1] for cols, _ in results])
    assert np.array_equal(released, v.sum(axis=1))              # one molecule per vesicle, all injected


def test_gain_zero_is_the_model_without_feedback_bit_for_bit():
    model = cleft_model(gain=0.0)
    plain = dataclasses.replace(model, feedback=None)
    for i in range(3):
        _, out0 = simulate_columns(compile_model(model), 9, i)
        _, out1 = simulate_columns(compile_model(plain), 9, i)
        assert np.array_equal(out0["series"], out1["series"]) and np.array_equal(out0["states"], out1["states"])
        assert "feedback_vesicles" not in out0


def dopaminergic(drugs=None):
    return presets.build(
        "dopaminergic", drugs=drugs, release={"enabled": False},
        train={"enabled": True, "n_stimuli": 4, "frequency_hz": 20, "release_probability": 0.5,
               "n_release_sites": 20, "tau_recovery_ms": 0},
        autoreceptor={"closed_loop": True, "gain": 1.0, "second_messenger_tau_ms": 20.0, "delay_ms": 5.0},
        geometry={"domain_radius_um": 1.2, "domain_boundary": "reflecting"}, numerics={"voxel_um": 0.2},
        timing={"duration_ms": 160.0, "dt_volume_us": 10.0}, transmitter={"molecules_per_vesicle": 300})


def test_a_d2_antagonist_raises_evoked_release_in_a_dopaminergic_train():
    later = {}
    for name, drugs in (("control", None), ("haloperidol", {"haloperidol": "100 nM"})):
        model = dopaminergic(drugs)
        assert model.feedback == ClosedLoopFeedback("D2", 1.0, 20.0, 5.0)
        _, results = runs(model, 6, seed=13)
        later[name] = np.array([out["feedback_vesicles"][1:].sum() for _, out in results])
    c, h = later["control"], later["haloperidol"]
    se = np.sqrt((c.var(ddof=1) + h.var(ddof=1)) / len(c))
    assert h.mean() - c.mean() > Z_TOL * se, (c.mean(), h.mean(), se)


@pytest.mark.parametrize("change, field", [
    ({"gain": 1.5}, "feedback.gain"), ({"gain": -0.1}, "feedback.gain"), ({"tau_ms": -1.0}, "feedback.tau_ms"),
    ({"delay_ms": -0.5}, "feedback.delay_ms"), ({"group": "D2"}, "feedback.group")])
def test_bad_feedback_is_refused_naming_the_field(change, field):
    model = cleft_model()
    with pytest.raises(ModelError) as err:
        dataclasses.replace(model, feedback=dataclasses.replace(model.feedback, **change)).validate()
    assert field in str(err.value)


def test_feedback_without_a_train_is_refused():
    model = cleft_model()
    with pytest.raises(ModelError) as err:
        dataclasses.replace(model, trains=[], releases=[Release()]).validate()
    assert "feedback" in str(err.value)


@pytest.mark.parametrize("auto, field", [
    ({"gain": 2.0}, "autoreceptor.gain"), ({"second_messenger_tau_ms": -1.0}, "autoreceptor.second_messenger_tau_ms"),
    ({"delay_ms": -1.0}, "autoreceptor.delay_ms"), ({"group": "D5"}, "autoreceptor.group"),
    ({"receptor": "D1"}, "autoreceptor.receptor")])
def test_bad_closed_loop_settings_are_refused_naming_the_key(auto, field):
    with pytest.raises(ModelError) as err:
        presets.build("dopaminergic", train={"enabled": True, "n_stimuli": 2, "frequency_hz": 20}, release={"enabled": False},
                      autoreceptor={"closed_loop": True, "gain": 0.5, **auto})
    assert field in str(err.value)


def test_a_closed_loop_on_a_model_without_the_autoreceptor_group_is_refused():
    with pytest.raises(ModelError) as err:
        presets.build("dopaminergic", train={"enabled": True, "n_stimuli": 2, "frequency_hz": 20}, release={"enabled": False},
                      sites={"D2": {"enabled": False}}, autoreceptor={"closed_loop": True, "gain": 0.5})
    assert "autoreceptor.group" in str(err.value)


def test_presets_keep_feedback_off_and_haloperidol_blocks_d2():
    from mcsyn import library
    for name in ("dopaminergic", "serotonergic", "noradrenergic"):
        assert presets.build(name).feedback is None
    drug = library.drug("haloperidol")
    assert drug.mechanism == "antagonist" and drug.ki_M == {"D2": pytest.approx(0.56e-9)}


def test_a_d2_partial_agonist_activates_the_loop_with_its_efficacy_and_lowers_release():
    # aripiprazole (efficacy 0.25 at D2): its bound autoreceptors count 0.25 each, so before any
    # release the activation is 0.25 x the bound fraction, and the first stimulus releases less
    model = dopaminergic({"aripiprazole": "10 nM"})
    assert activation_weights(model.sites[[g.label for g in model.sites].index("D2")].scheme)[
        "agonist:aripiprazole"] == pytest.approx(0.25)
    cm, results = runs(model, 6, seed=13)
    _, control = runs(dopaminergic(None), 6, seed=13)
    n_d2 = cm.site_count(cm.model.sites[[g.label for g in cm.model.sites].index("D2")])
    for cols, out in results:
        bound0 = cols["D2:agonist:aripiprazole"][0] / n_d2
        assert out["feedback_activation"][0] == pytest.approx(0.25 * bound0, abs=0.02)
    first = np.array([out["feedback_vesicles"][0] for _, out in results])
    first_control = np.array([out["feedback_vesicles"][0] for _, out in control])
    n_sites, p = 20, 0.5
    assert first_control.mean() == pytest.approx(n_sites * p, abs=Z_TOL * np.sqrt(n_sites * p * (1 - p) / 6))
    a0 = np.mean([out["feedback_activation"][0] for _, out in results])
    expected = n_sites * p * (1 - a0)
    assert abs(first.mean() - expected) < Z_TOL * np.sqrt(n_sites * p * (1 - a0) * (1 - p * (1 - a0)) / 6)


def test_the_mean_field_model_refuses_a_closed_loop():
    from mcsyn.meanfield import mean_field
    with pytest.raises(ModelError, match="feedback"):
        mean_field(cleft_model())
