"""What a voltage clamp adds to a run: the glutamatergic preset with and without currents
(target: < 5 % more time per run). The currents are computed from the run's receptor columns after
the kernel returns, so the kernel's work is the same in both.

    pytest benchmarks/bench_currents.py --benchmark-only -s
"""
import pytest

import mcsyn

_MEDIANS = {}


@pytest.mark.parametrize("clamped", [False, True], ids=["counts", "currents"])
def test_glutamatergic_run_with_and_without_a_clamp(benchmark, clamped):
    clamp = {"clamp": {"holding_potential_mV": -70, "external_mg_mM": 1.0}} if clamped else {}
    cm = mcsyn.compile_model(mcsyn.presets.build("glutamatergic", **clamp))
    run = benchmark.pedantic(lambda: mcsyn.run_one(cm, seed=0), rounds=15, iterations=1, warmup_rounds=2)
    assert ("current:peak_pA" in run.metrics) == clamped
    _MEDIANS[clamped] = benchmark.stats.stats.median
    benchmark.extra_info["median_s"] = _MEDIANS[clamped]
    line = f"\nglutamatergic run {'with' if clamped else 'without'} currents: {_MEDIANS[clamped] * 1e3:.1f} ms"
    if len(_MEDIANS) == 2:
        line += f"; currents add {100 * (_MEDIANS[True] / _MEDIANS[False] - 1):+.1f} %"
    print(line)
