"""How the kernel's cost grows with molecules (10³–10⁶), sites (10²–10⁵) and simulated time
(0.1–10 ms), on the workloads of ``mcsyn bench`` (``mcsyn/bench.py``: the 20 nm slab, dt = 1 µs).

    pytest benchmarks/bench_scale.py --benchmark-only --benchmark-columns=median,rounds -s

prints, after the last point, one table (median seconds, M molecule-steps/s, seconds per simulated
ms) and for each axis the log-log slope of the median time against the axis, and of the time per
molecule-step: linear growth is a time slope of 1 for molecules and simulated time and a slope of 0
for the cost per molecule-step; a per-molecule-step slope above ``SUPERLINEAR_SLOPE`` is flagged
as super-linear. Nothing about speed is asserted. About 1.5·10⁹ molecule-steps in all: under a
minute on a quiet machine at 100 M molecule-steps/s (``MCSYN_BENCH_SCALE_ROUNDS`` sets the rounds
per point, default 3; each point has one warm-up round more).

Only free molecules step, and sites bind some of them, so every rate counts free molecule-steps
exactly (``molecule_steps``); the site points keep 10⁴ molecules for 1 ms and spread the sites over
both membranes at one density (at 10⁵ sites about 6,400 per µm², under the 10⁴ per µm² that the
0.01 µm tiles hold).
"""
import dataclasses
import math
import os

import numpy as np
import pytest

import mcsyn
from mcsyn.bench import kernel_call, molecule_steps, slab_model

ROUNDS = int(os.environ.get("MCSYN_BENCH_SCALE_ROUNDS", "3"))
SUPERLINEAR_SLOPE = 0.1     # log-log slope of seconds per molecule-step above which growth is flagged
DT_US = 1.0                 # slab_model's fine step

MOLECULES = [1_000, 10_000, 100_000, 1_000_000]     # at 200 steps (0.2 ms), no sites
SITES = [100, 1_000, 10_000, 100_000]               # at 10⁴ molecules, 1,000 steps (1 ms)
STEPS = [100, 1_000, 10_000]                        # at 10⁴ molecules, no sites: 0.1, 1, 10 ms
POINTS = ([("molecules", n, dict(n_molecules=n, n_steps=200, n_sites=0)) for n in MOLECULES]
          + [("sites", n, dict(n_molecules=10_000, n_steps=1_000, n_sites=n)) for n in SITES]
          + [("simulated ms", s * DT_US / 1000, dict(n_molecules=10_000, n_steps=s, n_sites=0)) for s in STEPS])


def scale_model(n_molecules, n_steps, n_sites):
    """``slab_model`` with ``n_sites`` sites in all, split between the PSD disk (receptors) and
    the presynaptic membrane (transporters) in proportion to their areas."""
    if n_sites == 0:
        return slab_model(n_molecules=n_molecules, n_steps=n_steps)
    model = slab_model(n_molecules=n_molecules, n_steps=n_steps, with_sites=True)
    g = model.geometry
    post_area, pre_area = math.pi * g.psd_radius_um ** 2, math.pi * g.cleft_radius_um ** 2
    on_psd = round(n_sites * post_area / (post_area + pre_area))
    counts = {"postsynaptic": on_psd, "presynaptic": n_sites - on_psd}
    return dataclasses.replace(model, sites=[dataclasses.replace(s, density_per_um2=None, count=counts[s.location])
                                             for s in model.sites])


@pytest.fixture(scope="module")
def table():
    rows = []
    yield rows
    print_table(rows)


IDS = [f"{axis.replace('simulated ms', 'time_ms')}={value:_}" for axis, value, _ in POINTS]


@pytest.mark.parametrize("axis, value, params", POINTS, ids=IDS)
def test_scale(benchmark, table, axis, value, params):
    fn = kernel_call(mcsyn.compile_model(scale_model(**params)))
    out = benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    steps = molecule_steps(out)
    simulated_ms = params["n_steps"] * DT_US / 1000
    row = dict(axis=axis, value=value, **params, median_s=median, molecule_steps=steps,
               rate=steps / median, s_per_simulated_ms=median / simulated_ms)
    benchmark.extra_info.update({k: v for k, v in row.items() if k != "axis"})
    table.append(row)


def log_log_slope(x, y) -> float:
    return float(np.polyfit(np.log10(x), np.log10(y), 1)[0])


def print_table(rows):
    print("\n\nmcsyn kernel scaling (medians; free molecule-steps counted exactly)")
    print(f"{'axis':<13s} {'molecules':>10s} {'sites':>8s} {'sim. ms':>8s} {'median s':>10s} "
          f"{'M mol-steps/s':>14s} {'s / sim. ms':>12s}")
    for r in rows:
        print(f"{r['axis']:<13s} {r['n_molecules']:>10,d} {r['n_sites']:>8,d} {r['n_steps'] * DT_US / 1000:>8g} "
              f"{r['median_s']:>10.4f} {r['rate'] / 1e6:>14.1f} {r['s_per_simulated_ms']:>12.4f}")
    print("\nlog-log slopes (time: 1 is linear for molecules and simulated time; per molecule-step: 0 is flat)")
    for axis in dict.fromkeys(r["axis"] for r in rows):
        sel = [r for r in rows if r["axis"] == axis]
        if len(sel) < 2:
            continue
        x = [r["value"] for r in sel]
        time_slope = log_log_slope(x, [r["median_s"] for r in sel])
        per_step_slope = log_log_slope(x, [r["median_s"] / r["molecule_steps"] for r in sel])
        flag = "SUPER-LINEAR" if per_step_slope > SUPERLINEAR_SLOPE else "ok"
        print(f"  {axis:<13s} time {time_slope:+.2f}   per molecule-step {per_step_slope:+.2f}   {flag}")
