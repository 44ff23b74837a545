"""Kernel speed: molecule-steps per second on one core, runs per second, memory, and the numpy
reference implementation of the same physics measured in the same session.

The figures quoted in README.md come from

    pytest benchmarks/bench_kernel.py --benchmark-only -s

which prints each rate. The workloads are those of ``mcsyn bench`` (``mcsyn/bench.py``).
"""
import subprocess
import sys
import textwrap

import pytest

import mcsyn
from mcsyn.bench import (N_MOLECULES, dopamine_volume_model, kernel_call, molecule_steps,
                         reference_free_diffusion, slab_model)
from conftest import report_rate


def test_free_diffusion_in_slab(benchmark):
    """5,000 molecules in a 20 nm slab, reflecting membranes, no sites (target >= 100 M/s)."""
    fn = kernel_call(mcsyn.compile_model(slab_model()))
    out = benchmark.pedantic(fn, rounds=7, iterations=1, warmup_rounds=1)
    rate = report_rate(benchmark, molecule_steps(out), "molecule_steps_per_s")
    print(f"\nfree diffusion: {rate / 1e6:.1f} M molecule-steps/s")


def test_free_diffusion_numpy_reference(benchmark):
    """The same free diffusion in the vectorised numpy reference (mcsyn.reference)."""
    n_steps = 200
    benchmark.pedantic(lambda: reference_free_diffusion(n_steps=n_steps), rounds=3, iterations=1)
    rate = report_rate(benchmark, N_MOLECULES * n_steps, "molecule_steps_per_s")
    print(f"\nnumpy reference free diffusion: {rate / 1e6:.1f} M molecule-steps/s")


def test_slab_with_receptors_and_transporters(benchmark):
    """Same slab with receptors (z = 0) and transporters (z = h) that bind, unbind and take up
    (target >= 50 M/s). Bound molecules do not step, so only free molecule-steps count."""
    fn = kernel_call(mcsyn.compile_model(slab_model(with_sites=True)))
    out = benchmark.pedantic(fn, rounds=7, iterations=1, warmup_rounds=1)
    rate = report_rate(benchmark, molecule_steps(out), "molecule_steps_per_s")
    print(f"\nslab with sites: {rate / 1e6:.1f} M molecule-steps/s; bound at end {out['series'][-1, 4]}, "
          f"taken up {out['series'][-1, 5]}")


@pytest.mark.parametrize("n_molecules", [500, 5_000, 50_000, 500_000])
def test_scaling_with_molecule_number(benchmark, n_molecules):
    """Free diffusion rate from 500 to 500,000 molecules (fixed 1e7 molecule-steps per round)."""
    fn = kernel_call(mcsyn.compile_model(slab_model(n_molecules=n_molecules, n_steps=10_000_000 // n_molecules)))
    out = benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    rate = report_rate(benchmark, molecule_steps(out), "molecule_steps_per_s")
    print(f"\n{n_molecules} molecules: {rate / 1e6:.1f} M molecule-steps/s")


def test_dopamine_volume_transmission_run(benchmark):
    """One 200 ms run, 3,000 dopamine molecules, homogenised ECS with DAT (target < 0.5 s),
    timed through the public API (per-run site draws included)."""
    cm = mcsyn.compile_model(dopamine_volume_model())
    result = benchmark.pedantic(lambda: mcsyn.run_one(cm, seed=3), rounds=7, iterations=1, warmup_rounds=1)
    report_rate(benchmark, 1.0, "runs_per_s")
    print(f"\ndopamine 200 ms run: {benchmark.stats.stats.median:.3f} s; taken up {result.metrics['taken_up']}")


@pytest.mark.parametrize("preset", ["glutamatergic", "serotonergic", "dopaminergic_striatal"])
def test_runs_per_second_presets(benchmark, preset):
    """Runs per second of a preset on one thread (site draws, kernel and metrics)."""
    cm = mcsyn.compile_model(mcsyn.presets.build(preset))
    benchmark.pedantic(lambda: mcsyn.simulate.simulate_columns(cm, 0, 0), rounds=5, iterations=1, warmup_rounds=1)
    rate = report_rate(benchmark, 1.0, "runs_per_s")
    print(f"\n{preset}: {rate:.1f} runs/s")


def test_memory_million_molecules_hundred_thousand_sites(benchmark):
    """Peak resident memory of a run with 10⁶ molecules and 10⁵ sites (target < 200 MB), measured
    in a fresh interpreter: the whole process, interpreter and libraries included."""
    # VmHWM (peak resident size) belongs to the new address space, so unlike ru_maxrss it does not
    # carry over the parent's peak through fork and exec
    code = textwrap.dedent("""
        import mcsyn

        def peak_mb():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024

        before = peak_mb()
        g = mcsyn.Geometry(cleft_height_um=0.02, cleft_radius_um=2.0, psd_radius_um=1.0, outside="closed")
        sites = [mcsyn.SiteGroup(mcsyn.transporter_cycle("T", "glutamate", 1e7, 100, 50, 20), "presynaptic",
                                 count=100_000)]
        m = mcsyn.SynapseModel(geometry=g, sites=sites, releases=[mcsyn.Release(0.0, 1_000_000)],
                               timing=mcsyn.Timing(duration_ms=0.02, dt_fine_us=1.0, sample_interval_us=1.0))
        r = mcsyn.run_one(m, seed=1)
        print(before, peak_mb(), r.metrics["released"])
    """)

    def measure():
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return [int(v) for v in out.stdout.split()]

    before_mb, after_mb, released = benchmark.pedantic(measure, rounds=1, iterations=1)
    assert released == 1_000_000
    benchmark.extra_info["peak_rss_MB"] = after_mb
    benchmark.extra_info["run_added_MB"] = after_mb - before_mb
    print(f"\npeak RSS {after_mb} MB, of which the run added {after_mb - before_mb} MB "
          f"(interpreter and libraries {before_mb} MB)")
    assert after_mb < 200
