"""Kernel speed: molecule-steps per second on one core, runs per second, memory.

The figures quoted in README.md come from

    pytest benchmarks/bench_kernel.py --benchmark-only --benchmark-columns=median,rounds \
        -k "not memory" -s

which prints each rate. Molecule-steps are counted exactly: the kernel samples the free count at
every fine step, and their sum is the number of molecule-steps taken.
"""
import resource
import subprocess
import sys
import textwrap

import mcsyn
from conftest import kernel_call, report_rate

N_MOLECULES = 5000
N_STEPS = 2000


def slab_model(geometry, n_molecules=N_MOLECULES, n_steps=N_STEPS, sites=()):
    return mcsyn.SynapseModel(
        species=[mcsyn.Species("glutamate", 0.33)], geometry=geometry, sites=list(sites),
        releases=[mcsyn.Release(0.0, n_molecules)],
        timing=mcsyn.Timing(duration_ms=n_steps * 1e-3, dt_fine_us=1.0, sample_interval_us=1.0))


def molecule_steps(out):
    free = out["series"][:, 1] + out["series"][:, 2] + out["series"][:, 3]
    return int(free[:-1].sum())


def test_free_diffusion_in_slab(benchmark, slab_geometry):
    """5,000 molecules in a 20 nm slab, reflecting membranes, no sites (target >= 100 M/s)."""
    fn = kernel_call(mcsyn.compile_model(slab_model(slab_geometry)))
    out = benchmark.pedantic(fn, rounds=7, iterations=1, warmup_rounds=1)
    rate = report_rate(benchmark, molecule_steps(out), "molecule_steps_per_s")
    print(f"\nfree diffusion: {rate / 1e6:.1f} M molecule-steps/s")


def test_slab_with_receptors_and_transporters(benchmark, slab_geometry):
    """Same slab with receptors (z = 0) and transporters (z = h) that bind, unbind and take up
    (target >= 50 M/s). Binding removes molecules, so only free molecule-steps are counted."""
    receptors = mcsyn.SiteGroup(mcsyn.one_site_receptor("R", "glutamate", 1e7, 1e3), "postsynaptic",
                                density_per_um2=2000)
    transporters = mcsyn.SiteGroup(mcsyn.transporter_cycle("T", "glutamate", 1e7, 300.0, 100.0, 50.0),
                                   "presynaptic", density_per_um2=2000)
    fn = kernel_call(mcsyn.compile_model(slab_model(slab_geometry, sites=[receptors, transporters])))
    out = benchmark.pedantic(fn, rounds=7, iterations=1, warmup_rounds=1)
    rate = report_rate(benchmark, molecule_steps(out), "molecule_steps_per_s")
    print(f"\nslab with sites: {rate / 1e6:.1f} M molecule-steps/s; bound at end {out['series'][-1, 4]}, "
          f"taken up {out['series'][-1, 5]}")


def dopamine_volume_model():
    # DAT density chosen for a low-concentration clearance of 19 s⁻¹ (Vmax/Km = 4 µM/s / 0.21 µM)
    geometry = mcsyn.Geometry(outside="volume", varicosity_radius_um=0.25, domain_radius_um=5.0,
                              volume_fraction=0.21, tortuosity=1.54)
    dat = mcsyn.transporter_cycle("DAT", "dopamine", 9.6e6, 20.0, 20.0, 5.0)
    return mcsyn.SynapseModel(
        species=[mcsyn.Species("dopamine", 0.763)], geometry=geometry,
        sites=[mcsyn.SiteGroup(dat, "volume", density_per_um3=250.0)],
        releases=[mcsyn.Release(0.0, 3000, into="volume")],
        timing=mcsyn.Timing(duration_ms=200.0, dt_fine_us=1.0, dt_volume_us=10.0, sample_interval_us=1000.0))


def test_dopamine_volume_transmission_run(benchmark):
    """One 200 ms run, 3,000 dopamine molecules, homogenised ECS with DAT (target < 0.5 s),
    timed through the public API (site placement included)."""
    cm = mcsyn.compile_model(dopamine_volume_model())
    result = benchmark.pedantic(lambda: mcsyn.run_one(cm, seed=3), rounds=7, iterations=1, warmup_rounds=1)
    report_rate(benchmark, 1.0, "runs_per_s")
    print(f"\ndopamine 200 ms run: {benchmark.stats.stats.median:.3f} s; taken up {result.metrics['taken_up']}")


def test_runs_per_second_small_cleft(benchmark):
    """Runs per second of a glutamatergic cleft (AMPA + band transporters), 2 ms, public API."""
    geometry = mcsyn.Geometry(outside="band", band_outer_radius_um=1.0)
    sites = [mcsyn.SiteGroup(mcsyn.ampa_jonas1993(), "postsynaptic", count=80),
             mcsyn.SiteGroup(mcsyn.transporter_cycle("EAAT", "glutamate", 1e7, 100, 50, 20), "band_postsynaptic",
                             density_per_um2=2000)]
    model = mcsyn.SynapseModel(geometry=geometry, sites=sites, timing=mcsyn.Timing(duration_ms=2.0))
    cm = mcsyn.compile_model(model)
    benchmark.pedantic(lambda: mcsyn.simulate.simulate_columns(cm, 0, 0), rounds=7, iterations=1, warmup_rounds=1)
    rate = report_rate(benchmark, 1.0, "runs_per_s")
    print(f"\nglutamatergic 2 ms run: {rate:.1f} runs/s")


def test_memory_million_molecules_hundred_thousand_sites(benchmark):
    """Peak resident memory of a run with 10⁶ molecules and 10⁵ sites (target < 200 MB),
    measured in a fresh interpreter so that nothing else is counted."""
    code = textwrap.dedent("""
        import resource, mcsyn
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        g = mcsyn.Geometry(cleft_height_um=0.02, cleft_radius_um=2.0, psd_radius_um=1.0, outside="closed")
        sites = [mcsyn.SiteGroup(mcsyn.transporter_cycle("T", "glutamate", 1e7, 100, 50, 20), "presynaptic",
                                 count=100_000)]
        m = mcsyn.SynapseModel(geometry=g, sites=sites, releases=[mcsyn.Release(0.0, 1_000_000)],
                               timing=mcsyn.Timing(duration_ms=0.02, dt_fine_us=1.0, sample_interval_us=1.0))
        r = mcsyn.run_one(m, seed=1)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(before, after, r.metrics["released"])
    """)

    def measure():
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return [int(v) for v in out.stdout.split()]

    before_kb, after_kb, released = benchmark.pedantic(measure, rounds=1, iterations=1)
    assert released == 1_000_000
    benchmark.extra_info["peak_rss_MB"] = after_kb / 1024
    benchmark.extra_info["run_added_MB"] = (after_kb - before_kb) / 1024
    print(f"\npeak RSS {after_kb / 1024:.0f} MB (interpreter + libraries {before_kb / 1024:.0f} MB)")
    assert (after_kb - before_kb) / 1024 < 200
