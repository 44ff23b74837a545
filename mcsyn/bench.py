"""Speed on the user's machine: ``mcsyn bench``.

The workloads are defined here once and shared with ``benchmarks/`` (pytest-benchmark), so the
command and the benchmark suite measure the same things:

* free diffusion of 5,000 molecules in a 20 nm slab (reflecting membranes, no sites);
* the same slab with receptors (z = 0) and transporters (z = h) that bind, unbind and take up;
* the same free diffusion in the pure-numpy reference implementation (``mcsyn.reference``);
* runs per second of the glutamatergic and serotonergic presets, and the parallel efficiency of
  threads over runs.

Molecule-steps are counted exactly: the kernel samples the free count at every fine step.
"""
from __future__ import annotations

import os
import resource
import time

import numpy as np

from . import _engine
from .compile import compile_model
from .model import Geometry, Release, SiteGroup, Species, SynapseModel, Timing
from .schemes import one_site_receptor, transporter_cycle

N_MOLECULES = 5000
D_GLUTAMATE = 0.33    # µm²/ms


def slab_geometry() -> Geometry:
    """A 20 nm slab, 2 µm in radius, so that the rim is far from most molecules."""
    return Geometry(cleft_height_um=0.02, cleft_radius_um=2.0, psd_radius_um=1.0, outside="closed")


def slab_model(n_molecules=N_MOLECULES, n_steps=2000, with_sites=False) -> SynapseModel:
    """Free diffusion in the slab (dt = 1 µs), optionally with receptors and transporters at
    2,000 per µm² on both membranes."""
    sites = []
    if with_sites:
        sites = [SiteGroup(one_site_receptor("R", "glutamate", 1e7, 1e3), "postsynaptic", density_per_um2=2000),
                 SiteGroup(transporter_cycle("T", "glutamate", 1e7, 300.0, 100.0, 50.0), "presynaptic",
                           density_per_um2=2000)]
    return SynapseModel(species=[Species("glutamate", D_GLUTAMATE)], geometry=slab_geometry(), sites=sites,
                        releases=[Release(0.0, n_molecules)],
                        timing=Timing(duration_ms=n_steps * 1e-3, dt_fine_us=1.0, sample_interval_us=1.0))


def dopamine_volume_model() -> SynapseModel:
    """One 200 ms volume-transmission run: 3,000 dopamine molecules released into a homogenised
    ECS (α 0.21, λ 1.54, 5 µm domain) with DAT at a density giving Vmax/Km ≈ 19 s⁻¹."""
    geometry = Geometry(outside="volume", varicosity_radius_um=0.25, domain_radius_um=5.0,
                        volume_fraction=0.21, tortuosity=1.54)
    dat = transporter_cycle("DAT", "dopamine", 9.6e6, 20.0, 20.0, 5.0)
    return SynapseModel(species=[Species("dopamine", 0.763)], geometry=geometry,
                        sites=[SiteGroup(dat, "volume", density_per_um3=250.0)],
                        releases=[Release(0.0, 3000, into="volume")],
                        timing=Timing(duration_ms=200.0, dt_fine_us=1.0, dt_volume_us=10.0,
                                      sample_interval_us=1000.0))


def kernel_call(cm, seed=1):
    """A zero-argument callable running the kernel once on a pre-drawn run (no Python overhead)."""
    ss = np.random.SeedSequence(seed)
    run = cm.draw_run(ss)
    words = ss.generate_state(4, np.uint64)
    return lambda: _engine.simulate(cm.kernel, run, words)


def molecule_steps(out) -> int:
    """Exact number of free molecule-steps of a run sampled at every fine step."""
    free = out["series"][:, 1] + out["series"][:, 2] + out["series"][:, 3]
    return int(free[:-1].sum())


def _median_time(fn, repeats):
    times = []
    result = None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), result


def reference_free_diffusion(n_molecules=N_MOLECULES, n_steps=200, seed=1):
    """The same free diffusion in the numpy reference implementation."""
    from .reference import simulate_slab
    g = slab_geometry()
    return simulate_slab(n_molecules, D_GLUTAMATE, n_steps=n_steps, dt_us=1.0, h_um=g.cleft_height_um,
                         radius_um=g.cleft_radius_um, rim="closed", sample_every=n_steps, seed=seed)


def run_bench(repeats: int = 5, workers: int | None = None) -> list[dict]:
    """Measure and return rows (what, value, unit)."""
    from . import presets
    from .simulate import run, simulate_columns
    rows = []
    free = kernel_call(compile_model(slab_model(n_steps=1000)))
    t, out = _median_time(free, repeats)
    kernel_rate = molecule_steps(out) / t
    rows.append(dict(what="free diffusion, 5,000 molecules, kernel", value=kernel_rate / 1e6,
                     unit="M molecule-steps/s"))
    sites = kernel_call(compile_model(slab_model(n_steps=1000, with_sites=True)))
    t, out = _median_time(sites, repeats)
    rows.append(dict(what="slab with receptors and transporters, kernel", value=molecule_steps(out) / t / 1e6,
                     unit="M molecule-steps/s"))
    t, _ = _median_time(lambda: reference_free_diffusion(n_steps=200), max(1, repeats // 2))
    ref_rate = N_MOLECULES * 200 / t
    rows.append(dict(what="free diffusion, 5,000 molecules, numpy reference", value=ref_rate / 1e6,
                     unit="M molecule-steps/s"))
    rows.append(dict(what="kernel / numpy reference", value=kernel_rate / ref_rate, unit="x"))
    t, _ = _median_time(kernel_call(compile_model(dopamine_volume_model())), repeats)
    rows.append(dict(what="dopamine volume run, 200 ms, 3,000 molecules", value=t, unit="s"))
    for name in ("glutamatergic", "serotonergic"):
        cm = compile_model(presets.build(name))
        t, _ = _median_time(lambda: simulate_columns(cm, 0, 0), repeats)
        rows.append(dict(what=f"{name} preset, one thread", value=1.0 / t, unit="runs/s"))
    cores = workers or os.cpu_count() or 1
    if cores > 1:
        cm = compile_model(presets.build("serotonergic"))
        n = 8 * cores
        t1, _ = _median_time(lambda: run(cm, n_runs=n, seed=1, workers=1), 1)
        tn, _ = _median_time(lambda: run(cm, n_runs=n, seed=1, workers=cores), 1)
        rows.append(dict(what=f"serotonergic preset, {cores} threads", value=n / tn, unit="runs/s"))
        rows.append(dict(what=f"parallel speed-up on {cores} cores", value=t1 / tn, unit="x"))
    rows.append(dict(what="peak memory of this process", value=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                     unit="MB"))
    return rows


def bench_command(args) -> int:
    """Entry point of ``mcsyn bench``: print the table."""
    print("mcsyn bench: medians of repeated runs on this machine (a busy machine gives lower figures)")
    for row in run_bench(repeats=args.repeats, workers=args.workers):
        print(f"  {row['what']:<48s} {row['value']:>10.3g} {row['unit']}")
    return 0
