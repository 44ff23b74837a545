"""What a voltage clamp adds to a run: the glutamatergic preset with and without currents
(target: < 5 % more time per run). The currents are computed from the run's receptor columns after
the kernel returns, so the kernel's work is the same in both. The two are timed in alternating
pairs, so that a noisy host slows both alike; the figure is the median of the per-pair ratios.

    pytest benchmarks/bench_currents.py --benchmark-only -s
"""
import statistics
import time

import mcsyn

PAIRS = 60


def test_glutamatergic_run_with_and_without_a_clamp(benchmark):
    plain = mcsyn.compile_model(mcsyn.presets.build("glutamatergic"))
    clamped = mcsyn.compile_model(mcsyn.presets.build(
        "glutamatergic", clamp={"holding_potential_mV": -70, "external_mg_mM": 1.0}))

    def alternate():
        times = {False: [], True: []}
        for i in range(PAIRS):
            for with_clamp in ((False, True) if i % 2 == 0 else (True, False)):
                cm = clamped if with_clamp else plain
                t = time.perf_counter()
                run = mcsyn.run_one(cm, seed=0)
                times[with_clamp].append(time.perf_counter() - t)
                assert ("current:peak_pA" in run.metrics) == with_clamp
        return times

    times = benchmark.pedantic(alternate, rounds=1, iterations=1, warmup_rounds=1)
    ratio = statistics.median(c / p for p, c in zip(times[False], times[True]))
    benchmark.extra_info.update(without_ms=1e3 * statistics.median(times[False]),
                                with_ms=1e3 * statistics.median(times[True]), ratio=ratio)
    print(f"\nglutamatergic run: {benchmark.extra_info['without_ms']:.1f} ms without currents, "
          f"{benchmark.extra_info['with_ms']:.1f} ms with; currents add {100 * (ratio - 1):+.1f} % "
          f"(median of {PAIRS} alternating pairs)")
