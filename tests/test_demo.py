"""The main job, ``mcsyn demo``: the serotonergic varicosity in its tissue's 30 µm periodic box,
control against escitalopram at 80 % SERT occupancy (issue 16: in the presets' absorbing sphere
most of the 5-HT escapes and the SSRI lengthens the half-time only 1.18x)."""
import math

import numpy as np
import pytest
from cli_support import run

from mcsyn import budget, cli, compile_model
from mcsyn.ensemble import run_ensemble

# README, "Clearance in a tissue cell" (python -m mcsyn.validation.cell_clearance --runs 40, 2 s), field
# box: half-time 96.5 ± 0.7 ms in control, 332 ± 2.3 ms with escitalopram (95 % CI of the mean of 40
# runs), ratio 3.44 [3.40, 3.47]; the isolated sphere gives 1.18 [1.17, 1.19]
TABLE_N = 40
TABLE_HALF_TIME_MS = {"control": (96.5, 0.7), "drug": (332.0, 2.3)}    # (mean, 95 % CI half-width)
TABLE_RATIO, TABLE_RATIO_HIGH = 3.44, 3.47
Z95 = 1.96
N_SE = 5
N_RUNS = 4


def _per_run_sd(which):
    mean, ci = TABLE_HALF_TIME_MS[which]
    return ci / Z95 * math.sqrt(TABLE_N)            # 2.3 ms in control, 7.4 ms with the drug


def test_the_demo_loses_no_5ht_and_the_ssri_lengthens_its_half_time_more_than_twofold():
    conds = cli.demo_conditions()
    metrics = run_ensemble(conds, n_runs=N_RUNS, seed=16, workers=1, progress=False, keep_traces=False).metrics
    assert (metrics["escaped"] == 0).all() and (metrics["fraction_escaped"] == 0).all()
    half = {name: g["clearance_half_time_ms"].to_numpy() for name, g in metrics.groupby("condition", sort=False)}
    control, drug = half["control"], half[conds[1].name]
    assert np.isfinite(control).all() and np.isfinite(drug).all(), "the run ends before the free 5-HT halves"
    ratio = drug.mean() / control.mean()
    # the standard error of log(ratio) of N_RUNS runs each, from the table's per-run spread: 0.016, so
    # 5 SE below the table's 3.44 is 3.17; the 2x bound separates the tissue (3.44) from the sphere (1.18)
    log_se = math.hypot(_per_run_sd("drug") / TABLE_HALF_TIME_MS["drug"][0],
                        _per_run_sd("control") / TABLE_HALF_TIME_MS["control"][0]) / math.sqrt(N_RUNS)
    table_log_se = math.log(TABLE_RATIO_HIGH / TABLE_RATIO) / Z95
    assert TABLE_RATIO * math.exp(-N_SE * log_se) > 2.0       # the bound is not within reach of the noise
    assert ratio > 2.0
    assert abs(math.log(ratio / TABLE_RATIO)) < N_SE * math.hypot(log_se, table_log_se)


def test_the_work_estimate_of_the_demo_counts_the_coarse_steps_its_volume_molecules_take():
    model = cli.demo_conditions()[0].model
    est = budget.estimate(compile_model(model))
    molecule_ms = sum(r.molecules * r.probability * (model.timing.duration_ms - r.time_ms) for r in model.releases)
    assert est.molecule_steps == pytest.approx(molecule_ms * 1000.0 / model.timing.dt_volume_us)
    assert est.work < budget.REPORT_STEPS          # so the demo prints no estimate before it starts


def test_the_demo_in_the_isolated_sphere_shows_the_escape(tmp_path, capsys):
    status, out, err = run(["demo", "--cell", "isolated", "--runs", "2", "--out", str(tmp_path / "iso"),
                            "--no-progress"], capsys)
    assert status == 0, err
    header = out.splitlines()[0]
    assert "absorbing 10 µm sphere" in header and "1000 ms" in header and "2 runs each" in header
    against = out[out.index("Against 'control'"):]
    assert "clearance_half_time_ms" in against and "fraction_taken_up" in against and "fraction_escaped" in against
