"""Shared helpers for the speed benchmarks: run with ``pytest benchmarks/ --benchmark-only``."""
import numpy as np
import pytest

import mcsyn
from mcsyn import _engine


def kernel_call(cm, seed=1):
    """A zero-argument callable running the kernel once on a pre-drawn run (no Python overhead)."""
    ss = np.random.SeedSequence(seed)
    run = cm.draw_run(ss)
    words = ss.generate_state(4, np.uint64)
    return lambda: _engine.simulate(cm.kernel, run, words)


def report_rate(benchmark, work, name):
    """Store work / median time in the benchmark's extra_info (shown with --benchmark-columns)."""
    median = benchmark.stats.stats.median
    benchmark.extra_info[name] = work / median
    benchmark.extra_info["median_s"] = median
    return work / median


@pytest.fixture
def slab_geometry():
    return mcsyn.Geometry(cleft_height_um=0.02, cleft_radius_um=2.0, psd_radius_um=1.0, outside="closed")
