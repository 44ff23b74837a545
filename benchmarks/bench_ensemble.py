"""Ensemble throughput: runs per second of the serotonergic preset, threads vs processes, 1 vs 2
workers, and the 1,000-run control-vs-SSRI target (issue 4: under 60 s on a 2-core machine).

    pytest benchmarks/bench_ensemble.py --benchmark-only --benchmark-columns=median,rounds -s

prints runs/s and the parallel speed-up; each benchmark stores them in ``extra_info`` too.
``MCSYN_BENCH_RUNS`` sets the runs per round of the throughput benchmarks (default 40) and
``MCSYN_BENCH_TARGET_RUNS`` the runs per condition of the target benchmark (default 1000).
Results are the same in every configuration (seeded per run), so only time is compared.
"""
import os

import pytest

from mcsyn import ensemble as E

RUNS = int(os.environ.get("MCSYN_BENCH_RUNS", "40"))
TARGET_RUNS = int(os.environ.get("MCSYN_BENCH_TARGET_RUNS", "1000"))
RATES = {}


PRESETS = ["serotonergic", "glutamatergic"]
RUNS_PER_PRESET = {"serotonergic": RUNS, "glutamatergic": 5 * RUNS}


def throughput(benchmark, conditions, n_runs, **kwargs):
    benchmark.pedantic(lambda: E.run_ensemble(conditions, n_runs=n_runs, seed=1, progress=False, **kwargs),
                       rounds=3, iterations=1, warmup_rounds=1)
    runs = n_runs * len(conditions)
    rate = runs / benchmark.stats.stats.median
    benchmark.extra_info["runs_per_s"] = rate
    benchmark.extra_info["runs_per_round"] = runs
    return rate


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("workers", [1, 2])
def test_threads(benchmark, preset, workers):
    rate = RATES[(preset, "threads", workers)] = throughput(benchmark, E.make_conditions(preset),
                                                            RUNS_PER_PRESET[preset], workers=workers)
    line = f"\n{preset} threads x{workers}: {rate:.2f} runs/s"
    if (preset, "threads", 1) in RATES and workers > 1:
        speedup = rate / RATES[(preset, "threads", 1)]
        benchmark.extra_info["speedup_vs_1"] = speedup
        line += f" (speed-up {speedup:.2f} over 1 worker)"
    print(line)


@pytest.mark.parametrize("preset", PRESETS)
def test_processes(benchmark, preset):
    rate = RATES[(preset, "processes", 2)] = throughput(benchmark, E.make_conditions(preset), RUNS_PER_PRESET[preset],
                                                        workers=2, backend="processes")
    line = f"\n{preset} processes x2: {rate:.2f} runs/s"
    if (preset, "threads", 2) in RATES:
        ratio = RATES[(preset, "threads", 2)] / rate
        benchmark.extra_info["threads_over_processes"] = ratio
        line += f" (threads x2 are {ratio:.2f}x as fast)"
    print(line)


def test_thousand_runs_control_vs_ssri(benchmark, tmp_path):
    """The README's demo at full size: serotonergic, control and escitalopram at 80 % SERT occupancy,
    ``TARGET_RUNS`` runs each, written to a result directory."""
    conds = E.make_conditions("serotonergic", treatments=[{}, {"escitalopram": "80%SERT"}])
    out = tmp_path / "demo"
    benchmark.pedantic(lambda: E.run_ensemble(conds, n_runs=TARGET_RUNS, seed=1, out=out, overwrite=True,
                                              progress=False), rounds=1, iterations=1)
    seconds = benchmark.stats.stats.median
    benchmark.extra_info["seconds"] = seconds
    benchmark.extra_info["runs_per_s"] = 2 * TARGET_RUNS / seconds
    print(f"\n{TARGET_RUNS} runs x 2 conditions: {seconds:.1f} s ({2 * TARGET_RUNS / seconds:.2f} runs/s)")
