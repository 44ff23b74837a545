"""Release-site fields (mcsyn.tissue): the release schedule, a linear field's steady state, the
detector series, the ensemble, and bad input refused before anything runs.

Statistical checks use Z = 5 standard errors, derived from the variance of the quantity checked
(or the spread over runs), with fixed seeds.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import mcsyn
from mcsyn import tissue
from mcsyn.ensemble import condition_seed, make_conditions, run_ensemble
from mcsyn.tissue import Detector, Firing, Stimulation, TissueField

Z = 5.0


def linear_field(box_um=10.0, removal_per_s=50.0, duration_ms=300.0, **field_kw) -> tissue.TissueModel:
    """A field with first-order removal only (no sites): its mean free count obeys
    dN/dt = R − k N exactly, with R the mean release rate in molecules per ms."""
    base = mcsyn.SynapseModel(species=[mcsyn.Species("dopamine", 0.763)],
                              degradation=[mcsyn.Degradation(removal_per_s, "all")],
                              timing=mcsyn.Timing(dt_fine_us=1.0, dt_volume_us=100.0),
                              geometry=mcsyn.Geometry(volume_fraction=0.21, tortuosity=1.54), voxel_um=0.5)
    kw = dict(box_side_um=box_um, detectors=[Detector("centre", radius_um=2.0),
                                             Detector("rod", "cylinder", (2.0, -2.0, 0.0), 1.0, 6.0)])
    kw.update(field_kw)
    return tissue.tissue_model(base, TissueField(**kw), duration_ms)


def mean_release_rate_per_ms(f: TissueField) -> float:
    return f.n_varicosities() * f.firing.rate_hz * 1e-3 * f.release_probability * f.quantum_molecules


# ---------------------------------------------------------------------------------------- schedule

def test_release_count_matches_density_firing_and_probability():
    # per neuron j with n_j varicosities and S_j ~ Poisson(rT) spikes, releases ~ Binomial(n_j S_j, p):
    # Var = Σ n_j rT p (1 - p) + Σ n_j² p² rT (the neurons' shared spikes correlate their sites)
    f = TissueField(box_side_um=20.0, n_neurons=50)
    T_ms, rT, p = 1000.0, f.firing.rate_hz, f.release_probability
    rng = np.random.default_rng(301)
    xyz, neuron = f.layout(rng)
    n_j = np.bincount(neuron, minlength=f.n_neurons)
    var = (n_j * rT * p * (1 - p)).sum() + (n_j ** 2 * p ** 2 * rT).sum()
    counts = [len(f.release_events(T_ms, rng, (xyz, neuron))[0]) for _ in range(40)]
    expected = n_j.sum() * rT * p
    assert abs(np.mean(counts) - expected) <= Z * math.sqrt(var / len(counts)), (np.mean(counts), expected)


def test_bursts_keep_the_mean_rate_and_cluster_the_spikes():
    burst = Firing("burst", burst_rate_hz=1.0, spikes_per_burst=4, intraburst_hz=20.0)
    rng = np.random.default_rng(302)
    spikes = [burst.spike_times_ms(10_000.0, rng) for _ in range(20)]
    n = np.array([len(s) for s in spikes])
    # bursts ~ Poisson(10) per train, 4 spikes each (a burst that starts within 150 ms of the end is cut)
    assert abs(n.mean() - 40.0) <= Z * math.sqrt(16 * 10 / len(n)) + 4 * 0.015 * 10
    gaps = np.concatenate([np.diff(s) for s in spikes])
    assert np.isclose(gaps, 50.0).mean() > 0.5          # most intervals are intraburst


def test_stimulation_recruits_every_site_within_its_radius():
    f = TissueField(box_side_um=20.0, release_probability=0.0,
                    stimulation=Stimulation(times_ms=(10.0,), centre_um=(9.0, 0.0, 0.0), radius_um=4.0,
                                            release_probability=1.0))
    rng = np.random.default_rng(303)
    xyz, neuron = f.layout(rng)
    t, which = f.release_events(100.0, rng, (xyz, neuron))
    d = xyz - np.array([9.0, 0.0, 0.0])
    d -= 20.0 * np.round(d / 20.0)                      # the ball crosses the face at x = 10
    near = np.flatnonzero(np.linalg.norm(d, axis=1) < 4.0)
    assert (t == 10.0).all() and sorted(which) == sorted(near)
    assert (xyz[near, 0] < -6.0).any()                  # some recruited sites lie across the face


# ---------------------------------------------------------------------------------------- runs

def test_a_field_conserves_molecules_and_counts_its_detectors():
    model = linear_field(duration_ms=100.0)
    s = mcsyn.run_one(model, seed=304).series
    np.testing.assert_array_equal(s["released"], s[["free", "bound", "taken_up", "escaped", "degraded"]].sum(axis=1))
    assert (s["escaped"] == 0).all() and s["released"].iloc[-1] > 0
    nM = model.nM_per_molecule(4 / 3 * math.pi * 8.0)
    np.testing.assert_allclose(s["centre:concentration_nM"], s["centre:molecules"] * nM)
    assert s["centre:molecules"].max() > 0 and s["rod:molecules"].max() > 0


def test_a_linear_field_reaches_release_rate_over_removal():
    # E[N(t)] = R/k (1 - e^{-kt}) for releases starting at t = 0; each run's mean of N(t) / E[N(t)]
    # over the second half is one estimate, Z standard errors of the mean over runs from their spread
    # (independent sites firing fast, small quanta: ~40 releases per lifetime 1/k)
    model = linear_field(duration_ms=200.0, n_neurons=104, firing=Firing(rate_hz=20.0), release_probability=1.0,
                         quantum_molecules=100.0)
    k_per_ms = 50.0e-3
    R = mean_release_rate_per_ms(model.field)
    n_runs = 6
    ens = mcsyn.run(model, n_runs=n_runs, seed=305, workers=2)
    late = ens.times_ms >= 100.0
    expected = R / k_per_ms * (1.0 - np.exp(-k_per_ms * ens.times_ms[late]))
    ratio = (ens.series[:, late, ens.columns.index("free_volume")] / expected).mean(axis=1)
    se = ratio.std(ddof=1) / math.sqrt(n_runs)
    assert abs(ratio.mean() - 1.0) <= Z * se, (ratio.mean(), se)
    assert Z * se < 0.25
    # the detectors see the same mean concentration as the box (uniform in expectation)
    box_nM = tissue.observe.box_nM_per_molecule(model)
    conc = ens.series[:, late, ens.columns.index("centre:concentration_nM")].mean(axis=1)
    box = ens.series[:, late, ens.columns.index("free_volume")].mean(axis=1) * box_nM
    se_c = (conc - box).std(ddof=1) / math.sqrt(n_runs)
    assert abs((conc - box).mean()) <= Z * se_c


def test_same_seed_same_field_run_and_layout_seed_fixes_the_sites():
    model = linear_field(duration_ms=50.0)
    a = mcsyn.run_one(model, seed=306).series
    b = mcsyn.run_one(model, seed=306).series
    assert a.equals(b)
    fixed = linear_field(duration_ms=50.0, layout_seed=7)
    cm = mcsyn.compile_model(fixed)
    runs = [cm.draw_run(mcsyn.run_seed_sequence(306, i)) for i in range(2)]
    sites = [set(zip(r.inject_x_um.round(9), r.inject_y_um.round(9))) for r in runs]
    layout = fixed.field.layout(np.random.default_rng(7))[0]
    every = set(zip(layout[:, 0].round(9), layout[:, 1].round(9)))
    assert sites[0] <= every and sites[1] <= every and sites[0] != sites[1]


def test_voxel_snapshots_give_the_concentration_distribution():
    model = linear_field(duration_ms=100.0, snapshot_interval_ms=10.0)
    run = tissue.run_field(model, seed=307)
    assert run.snapshots.shape == (11, 20, 20, 20)
    np.testing.assert_array_equal(run.snapshots.sum(axis=(1, 2, 3)),
                                  run.series["free_volume"].to_numpy()[::10])
    dist = tissue.concentration_distribution(run, block_voxels=2)
    mean = run.series["free_volume"].to_numpy()[::10].mean() * tissue.observe.box_nM_per_molecule(model)
    assert dist["mean_nM"] == pytest.approx(mean)
    p = list(dist["percentiles_nM"].values())
    assert p == sorted(p)
    assert 0.0 <= dist["fraction_above_nM"][1000.0] <= dist["fraction_above_nM"][10.0] <= 1.0


def test_a_field_runs_on_the_ensemble_backends():
    model = linear_field(duration_ms=20.0)
    obs = ["free_volume", "centre:molecules", "centre:concentration_nM"]
    res = run_ensemble(model, n_runs=2, seed=308, workers=2, observables=obs, progress=False)
    alone = mcsyn.run_one(model, seed=int(res.conditions["seed"].iloc[0]), run_index=1)
    assert int(res.conditions["seed"].iloc[0]) == condition_seed(308, res.conditions["condition"].iloc[0])
    assert res.metrics["released"].tolist()[1] == alone.metrics["released"]
    procs = run_ensemble(model, n_runs=2, seed=308, workers=2, backend="processes", observables=obs, progress=False)
    assert procs.metrics["released"].tolist() == res.metrics["released"].tolist()


def _small_dorsal_field(drugs, **_):
    return tissue.build_field("dorsal_striatal_dopamine", drugs=drugs, box_side_um=8.0, duration_ms=10.0,
                              n_neurons=20)


def test_a_field_sweep_runs_on_a_dask_cluster_as_on_threads():
    # two drug conditions × 2 runs of a small field on a dask.distributed cluster: the same runs as on
    # threads (in-process workers, 1.7 s; worker processes took 7.7 s on a loaded machine and
    # gave the same, and the processes backend above already sends a field across processes)
    distributed = pytest.importorskip("distributed")
    conds = make_conditions(_small_dorsal_field, treatments=[{}, {"amphetamine": "1 uM"}])
    kw = dict(n_runs=2, seed=310, observables=["free_volume", "centre:concentration_nM"], progress=False)
    threads = run_ensemble(conds, workers=2, **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=50) as cl:
        with distributed.Client(cl, timeout="60s") as client:
            on_dask = run_ensemble(conds, scheduler=client, **kw)
    assert on_dask.metadata["sessions"][-1]["backend"] == "dask"
    assert on_dask.conditions["n_ok"].tolist() == [2, 2]
    key = ["condition", "run"]
    a = threads.metrics.sort_values(key).reset_index(drop=True)
    b = on_dask.metrics.sort_values(key).reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b)
    # the drug acted: amphetamine's reverse transport released molecules no varicosity did
    assert (a.loc[a["drug"] == "amphetamine", "effluxed"] > 0).all()
    assert (a.loc[a["drug"] == "control", "effluxed"] == 0).all()


def test_dorsal_field_preset_builds_with_drugs_and_variants():
    dorsal = tissue.build_field("dorsal_striatal_dopamine", duration_ms=10.0)
    assert dorsal.field.n_varicosities() == round(0.104 * 30 ** 3)
    assert [g.label for g in dorsal.sites] == ["DAT", "D1", "D2"]
    assert tissue.build_field("dorsal_striatal_dopamine", "burst", duration_ms=10.0).field.firing.pattern == "burst"
    cocaine = tissue.build_field("dorsal_striatal_dopamine", drugs={"cocaine": "1 uM"}, duration_ms=10.0)
    assert cocaine.sites[0].initial_state_fractions
    assert set(tissue.field_names()) == {"dorsal_striatal_dopamine", "ventral_striatal_dopamine", "serotonergic_field"}
    tissue.build_field("serotonergic_field", duration_ms=10.0)


# ---------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("change, path", [
    (dict(varicosity_density_per_um3=100.0), "field.varicosity_density_per_um3"),
    (dict(detectors=[Detector("probe", centre_um=(6.0, 0.0, 0.0))]), "field.detectors['probe'].centre_um"),
    (dict(detectors=[Detector("probe", "cylinder", (0.0, 0.0, 0.0), 1.0, 12.0)]), "field.detectors['probe'].length_um"),
    (dict(stimulation=Stimulation(radius_um=6.0)), "field.stimulation.radius_um"),
    (dict(n_neurons=0), "field.n_neurons"),
])
def test_bad_fields_are_refused_before_anything_runs(change, path):
    with pytest.raises(mcsyn.ModelError) as err:
        linear_field(**change)
    assert err.value.field == path, str(err.value)


def test_a_preset_refuses_a_detector_outside_its_box():
    with pytest.raises(mcsyn.ModelError, match=r"field\.detectors\['far'\]\.centre_um"):
        tissue.build_field("dorsal_striatal_dopamine", detectors=[Detector("far", centre_um=(20.0, 0.0, 0.0))])
    with pytest.raises(mcsyn.ModelError, match=r"field\.stimulation\.radius_um"):
        tissue.build_field("dorsal_striatal_dopamine", stimulation=Stimulation(radius_um=40.0))


def test_drug_conditions_of_a_field_run_as_an_ensemble():
    # drugs act on a field preset through a build function, as on any preset
    conds = make_conditions(lambda drugs, **kw: tissue.build_field("dorsal_striatal_dopamine", drugs=drugs,
                                                                   box_side_um=10.0, duration_ms=20.0),
                            treatments=[{}, {"cocaine": "60%DAT"}])
    res = run_ensemble(conds, n_runs=2, seed=309, workers=2, observables=["free_volume", "centre:concentration_nM"],
                       progress=False)
    assert res.conditions["n_ok"].tolist() == [2, 2]
