"""Monte Carlo ensemble means against the deterministic mean-field model, where it is exact:
diffusion across the cleft (R²/D ≈ 0.1 ms) is fast against binding and uptake (≥ 1 ms), so the
cleft stays well mixed. Tolerance: 5 standard errors of the ensemble mean (the O(1/N)
small-number correction of bimolecular kinetics is below that resolution here: 150-200 sites).
A 10 % error in k_on moves the worst point to 7 standard errors."""
import math

import numpy as np
import pytest

import mcsyn
from mcsyn.meanfield import mean_field
from mcsyn.validation import cleft_share_at_equilibrium, closed_tissue_cell

Z = 5.0


def closed_cleft():
    g = mcsyn.Geometry(cleft_height_um=0.02, cleft_radius_um=0.2, psd_radius_um=0.15, outside="closed")
    sites = [mcsyn.SiteGroup(mcsyn.one_site_receptor("R", "glutamate", 2e6, 300.0), "postsynaptic", count=150),
             mcsyn.SiteGroup(mcsyn.transporter_cycle("T", "glutamate", 2e6, 100.0, 200.0, 100.0),
                             "presynaptic", count=200)]
    return mcsyn.SynapseModel(species=[mcsyn.Species("glutamate", 0.33)], geometry=g, sites=sites,
                              releases=[mcsyn.Release(0.0, 2000)],
                              timing=mcsyn.Timing(duration_ms=6.0, dt_fine_us=1.0, sample_interval_us=50.0))


def test_monte_carlo_mean_matches_mean_field_in_well_mixed_regime():
    model = closed_cleft()
    ens = mcsyn.run(model, n_runs=24, seed=31, workers=2)
    mf = mean_field(model)
    assert np.allclose(mf.index.to_numpy(), ens.times_ms)
    checked = 0
    for name in ("bound", "taken_up", "free", "R:AR", "T:Ti"):
        j = ens.columns.index(name)
        for k in range(10, len(ens.times_ms), 20):       # from 0.5 ms on, every ms
            mc = ens.series[:, k, j]
            se = mc.std(ddof=1) / math.sqrt(len(mc))
            expected = mf[name].iloc[k]
            assert abs(mc.mean() - expected) < Z * se, (name, ens.times_ms[k], mc.mean(), expected, se)
            checked += 1
    assert checked > 20


def test_mean_field_conserves_molecules():
    mf = mean_field(closed_cleft())
    total = mf[["free", "bound", "taken_up", "escaped", "degraded"]].sum(axis=1)
    np.testing.assert_allclose(total, mf["released"], rtol=1e-5)


def test_mean_field_escape_from_open_cleft():
    """Open rim, no sites: the mean-field decay rate is 8D/R², the slowest-mode approximation of
    the exit-time distribution; the mean exit time of both agrees with R²/8D."""
    g = mcsyn.Geometry(cleft_radius_um=0.2, psd_radius_um=0.1, outside="open")
    model = mcsyn.SynapseModel(geometry=g, releases=[mcsyn.Release(0.0, 1000)],
                               timing=mcsyn.Timing(duration_ms=1.0, dt_fine_us=0.5, sample_interval_us=1.0))
    mf = mean_field(model)
    t = mf.index.to_numpy()
    mean_exit = np.trapezoid(mf["free"].to_numpy() / 1000.0, t)
    assert abs(mean_exit - 0.2 ** 2 / (8 * 0.33)) < 0.01 * 0.2 ** 2 / (8 * 0.33)


def test_cleft_and_volume_exchange_both_ways():
    # a cleft opening onto a closed cell of tissue settles at equal concentrations, as the Monte
    # Carlo runs do (tests/test_physics.py::test_cleft_and_volume_reach_equal_concentrations)
    m = closed_tissue_cell(molecules=3000, duration_ms=20.0)
    mf = mean_field(m, t_eval_ms=np.array([0.0, 20.0]))
    assert mf["free_cleft"].iloc[-1] == pytest.approx(3000 * cleft_share_at_equilibrium(m.geometry), rel=1e-4)
    # without re-entry the cleft empties into the volume for good
    m.geometry.volume_enters_cleft = False
    assert mean_field(m, t_eval_ms=np.array([0.0, 20.0]))["free_cleft"].iloc[-1] < 1e-3
