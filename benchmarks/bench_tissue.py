"""Tissue field speed and memory: one simulated second of a dorsal-striatal dopamine field.

    pytest benchmarks/bench_tissue.py --benchmark-only -s

The target (issue 16): a 30 µm box (≈ 2,800 varicosities at 0.104 µm⁻³, tonic 4 Hz, p = 0.06,
3,000 molecules per release) in under 20 s on one core and under 1 GB. The cost as the box grows
(20, 30, 50 µm) is measured too; each round is one run (compile, draws and kernel), since a
field's cost is mostly the kernel stepping the ~10⁵ molecules in flight.
"""
import resource
import time

import pytest

import mcsyn
from mcsyn import tissue
from mcsyn.simulate import simulate_columns


def one_second(box_um):
    return tissue.build_field("dorsal_striatal_dopamine", box_side_um=box_um, duration_ms=1000.0)


@pytest.mark.parametrize("box_um", [20.0, 30.0, 50.0])
def test_one_second_of_a_dorsal_striatal_field(benchmark, box_um):
    model = one_second(box_um)

    def run():
        cm = mcsyn.compile_model(model)
        columns, _ = simulate_columns(cm, 1, 0)
        return columns

    start = time.process_time()
    columns = benchmark.pedantic(run, rounds=1, iterations=1)
    cpu_s = time.process_time() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    free = columns["free_volume"]
    benchmark.extra_info.update(cpu_s=cpu_s, peak_rss_mib=peak_mib, varicosities=model.field.n_varicosities(),
                                released=int(columns["released"][-1]), mean_free=float(free.mean()))
    print(f"\n{box_um:g} µm box, {model.field.n_varicosities()} varicosities: {cpu_s:.1f} s CPU, "
          f"peak RSS {peak_mib:.0f} MiB (process), {int(columns['released'][-1])} released, "
          f"{free.mean():.3g} free on average")
    if box_um == 30.0:
        assert peak_mib < 1024, "the 30 µm field's target is under 1 GB"
