"""Receptor occupancy over space in a tissue field: the kernel's per-voxel counts of sites holding
transmitter at the snapshot times (:attr:`mcsyn.tissue.FieldRun.occupancy_snapshots`) and
:func:`mcsyn.tissue.occupancy_distribution`.

The voxel counts must add up, at every snapshot, to the series' ``<group>:occupied`` exactly. The
statistical checks use a closed box holding a uniform, steady free concentration C of transmitter
and one reversible receptor (no removal): every site is then an independent two-state process
with occupancy p = C / (C + Kd), so the block fractions average to p and scatter binomially about
it. Tolerances are Z = 5 standard errors derived from that process, with fixed seeds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import mcsyn
from mcsyn import ModelError, tissue
from mcsyn.schemes import one_site_receptor
from mcsyn.simulate import simulate_columns
from mcsyn.tissue import Stimulation, TissueField
from mcsyn.tissue import field as field_module

Z = 5.0
KON_PER_M_PER_S = 2e8
KOFF_PER_S = 100.0
KD_NM = KOFF_PER_S / KON_PER_M_PER_S * 1e9      # 500 nM
SNAPSHOT_MS = 1.0
# > 6 relaxation times 1 / (kon C + koff) ≈ 7.5 ms; the box mixes in L² / (4π² D*) ≈ 3 ms
SETTLED_MS = 50.0


def closed_receptor_box(duration_ms=150.0) -> tissue.TissueModel:
    """A 6 µm box whose varicosities within 3 µm of the centre all release 500 molecules at t = 0
    and never again; nothing removes transmitter, so once mixed the free field is uniform and
    steady (C ≈ 160 nM) and the receptor's occupancy is C / (C + Kd) ≈ 0.25 everywhere."""
    receptor = one_site_receptor("R", "dopamine", KON_PER_M_PER_S, KOFF_PER_S)
    base = mcsyn.SynapseModel(species=[mcsyn.Species("dopamine", 0.763)],
                              sites=[mcsyn.SiteGroup(receptor, "volume", density_per_um3=20.0)],
                              timing=mcsyn.Timing(dt_fine_us=1.0, dt_volume_us=100.0),
                              geometry=mcsyn.Geometry(volume_fraction=0.21, tortuosity=1.54), voxel_um=0.5)
    f = TissueField(box_side_um=6.0, n_neurons=5, release_probability=0.0, quantum_molecules=500.0,
                    stimulation=Stimulation(times_ms=(0.0,), radius_um=3.0, release_probability=1.0),
                    snapshot_interval_ms=SNAPSHOT_MS)
    return tissue.tissue_model(base, f, duration_ms)


@pytest.fixture(scope="module")
def closed_run():
    model = closed_receptor_box()
    return model, tissue.run_field(model, seed=2026)


@pytest.fixture(scope="module")
def dorsal_run():
    # the dorsal preset's DAT, D1 and D2 in a 10 µm box, with a stimulus for many molecules
    model = tissue.build_field("dorsal_striatal_dopamine", box_side_um=10.0, duration_ms=40.0, snapshot_interval_ms=2.0,
                               stimulation=Stimulation(times_ms=(5.0,), radius_um=3.0, release_probability=1.0))
    return model, tissue.run_field(model, seed=11)


def settled_free_nM(model, run) -> float:
    late = run.snapshot_times_ms >= SETTLED_MS
    return float(run.snapshots[late].sum(axis=(1, 2, 3)).mean() * tissue.observe.box_nM_per_molecule(model))


def lag_correlation(free_nM: float) -> float:
    """Correlation of one site's state between consecutive snapshots: exp(−(kon C + koff) Δt)."""
    rate_per_ms = (KON_PER_M_PER_S * free_nM * 1e-9 + KOFF_PER_S) * 1e-3
    return math.exp(-rate_per_ms * SNAPSHOT_MS)


# ------------------------------------------------------------------------------------ exact counts

def test_voxel_occupancy_adds_up_to_the_series_at_every_snapshot(dorsal_run):
    model, run = dorsal_run
    at = np.searchsorted(run.series.index.to_numpy(), run.snapshot_times_ms)
    assert set(run.occupancy_snapshots) == {"DAT", "D1", "D2"}
    for grp in model.sites:
        occ = run.occupancy_snapshots[grp.label]
        assert occ.shape == run.snapshots.shape and occ.dtype == np.int32
        series = run.series[f"{grp.label}:occupied"].to_numpy()[at]
        np.testing.assert_array_equal(occ.sum(axis=(1, 2, 3)), series)
        assert run.sites_per_voxel[grp.label].sum() == sum(int(run.series[f"{grp.label}:{s}"].iloc[0])
                                                           for s in grp.scheme.states)
        assert np.all(occ <= run.sites_per_voxel[grp.label][None])
    assert run.series["D1:occupied"].max() > 0 and run.series["DAT:occupied"].max() > 0


def test_a_run_without_snapshots_has_no_occupancy_output():
    model = closed_receptor_box(duration_ms=5.0)
    model.field.snapshot_interval_ms = None
    _, out = simulate_columns(mcsyn.compile_model(model), 0, 0)
    assert "voxel_occupied" not in out and "voxel_sites" not in out
    run = tissue.run_field(model)
    assert run.occupancy_snapshots is None and run.sites_per_voxel is None


# ------------------------------------------------------------------------------ against a closed form

def test_block_occupancy_averages_to_the_binding_equilibrium_of_the_realised_concentration(closed_run):
    model, run = closed_run
    dist = tissue.occupancy_distribution(run, model, "R", block_voxels=2, after_ms=SETTLED_MS)
    occupied, sites = tissue.observe.block_occupancy(run, "R", 2)
    free_nM = settled_free_nM(model, run)
    p = free_nM / (free_nM + KD_NM)
    n, rho = len(dist["times_ms"]), lag_correlation(free_nM)
    # each site's time average over n snapshots has variance <= p(1-p)/n (1+rho)/(1-rho); the mean
    # of block fractions weighs a site of block b by 1/(blocks S_b)
    per_site = p * (1 - p) / n * (1 + rho) / (1 - rho)
    se_mean = math.sqrt(per_site * np.sum(1.0 / sites)) / len(sites)
    # C is N - B: the same fluctuation of the bound total moves p the other way, by dp/dC per molecule
    dp_per_molecule = KD_NM / (free_nM + KD_NM) ** 2 * tissue.observe.box_nM_per_molecule(model)
    se_p = dp_per_molecule * math.sqrt(per_site * sites.sum())
    assert dist["blocks_without_sites"] == 0 and 0.15 < p < 0.35
    assert abs(dist["mean"] - p) < Z * (se_mean + se_p)


def test_blocks_scatter_binomially_about_the_box_occupancy(closed_run):
    # independent sites: block b's fraction has variance p(1-p)/S_b, so the mean squared deviation
    # from the snapshot's block mean is p(1-p) mean(1/S_b) (1 - 1/blocks); sites placed from the
    # run's own voxels, not the mean per block (that would add p² var(S)/S² ≈ +30 %)
    model, run = closed_run
    occupied, sites = tissue.observe.block_occupancy(run, "R", 2)
    late = run.snapshot_times_ms >= SETTLED_MS
    frac = occupied[late] / sites
    p = occupied[late].sum() / (sites.sum() * late.sum())
    var_b = p * (1 - p) / sites
    expected = var_b.mean() * (1 - 1 / len(sites))
    spread = ((frac - frac.mean(axis=1, keepdims=True)) ** 2).mean(axis=1)
    # one snapshot's spread is a weighted sum of chi-squares: relative sd sqrt(2 Σ var_b²) / Σ var_b;
    # squared deviations decorrelate as rho² per snapshot
    rho2 = lag_correlation(settled_free_nM(model, run)) ** 2
    rel_se = math.sqrt(2 * np.sum(var_b ** 2)) / np.sum(var_b) * math.sqrt((1 + rho2) / (1 - rho2) / len(spread))
    assert abs(spread.mean() / expected - 1) < Z * rel_se


def test_distribution_summaries_are_consistent(closed_run):
    model, run = closed_run
    dist = tissue.occupancy_distribution(run, model, "R", block_voxels=3, after_ms=SETTLED_MS,
                                         thresholds=(0.1, 0.5))
    assert dist["block_um"] == 1.5
    p = list(dist["percentiles"].values())
    assert p == sorted(p) and 0.0 <= p[0] and p[-1] <= 1.0
    assert 0.0 <= dist["fraction_above"][0.5] <= dist["fraction_above"][0.1] <= 1.0
    assert len(dist["fraction_above_by_time"][0.1]) == len(dist["times_ms"]) == len(dist["box_by_time"])
    at = np.searchsorted(run.series.index.to_numpy(), dist["times_ms"])
    box = run.series["R:occupied"].to_numpy()[at] / run.sites_per_voxel["R"].sum()
    np.testing.assert_allclose(dist["box_by_time"], box)


# ---------------------------------------------------------------------------------------- bad input

def test_bad_arguments_name_themselves(closed_run):
    model, run = closed_run
    with pytest.raises(ModelError, match="group"):
        tissue.occupancy_distribution(run, model, "D7")
    with pytest.raises(ModelError, match="block_voxels"):
        tissue.occupancy_distribution(run, model, "R", block_voxels=5)     # 12 voxels per side
    with pytest.raises(ModelError, match="block_voxels"):
        tissue.occupancy_distribution(run, model, "R", block_voxels=0)
    with pytest.raises(ModelError, match="after_ms"):
        tissue.occupancy_distribution(run, model, "R", after_ms=1e4)
    quiet = closed_receptor_box(duration_ms=5.0)
    quiet.field.snapshot_interval_ms = None
    with pytest.raises(ModelError, match="run"):
        tissue.occupancy_distribution(tissue.run_field(quiet), quiet, "R")


def test_the_snapshot_memory_limit_counts_the_occupancy_grids(monkeypatch):
    model = closed_receptor_box(duration_ms=10.0)
    free_only = 11 * 12 ** 3 * 4           # 11 snapshots of 12³ voxels, int32
    monkeypatch.setattr(field_module, "MAX_SNAPSHOT_BYTES", free_only + 1)
    with pytest.raises(ModelError, match="field.snapshot_interval_ms"):
        model.validate()
    monkeypatch.setattr(field_module, "MAX_SNAPSHOT_BYTES", 2 * free_only)
    model.validate()


def test_occupancy_maps_show_a_slice_with_units(closed_run):
    from mcsyn.tissue.maps import plot_occupancy_maps
    model, run = closed_run
    fig = plot_occupancy_maps(run, groups=("R",), time_ms=100.0, z_um=1.2, block_voxels=2)
    maps = [ax for ax in fig.axes if ax.get_xlabel() == "x (µm)"]
    assert len(maps) == 2 and maps[0].get_ylabel() == "y (µm)"
    bars = [ax.get_ylabel() for ax in fig.axes if ax not in maps]
    assert bars == ["[dopamine] (nM; grey: none)", "R occupied (fraction of sites)"]
    assert "t = 100 ms" in fig._suptitle.get_text() and "1 ≤ z < 2 µm" in fig._suptitle.get_text()
    with pytest.raises(ModelError, match="z_um"):
        plot_occupancy_maps(run, groups=("R",), z_um=3.0)
    with pytest.raises(ModelError, match="time_ms"):
        plot_occupancy_maps(run, groups=("R",), time_ms=-1.0)
