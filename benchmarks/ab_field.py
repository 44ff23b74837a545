"""Interleaved A/B of two kernel builds on a tissue field (issue 16): an older ``_engine`` shared
object loaded beside the installed one, both called alternately on the same compiled run and seed,
so that a noisy host slows both alike. Prints each build's time per pair and the per-pair median of
new/old; the builds must give the same bits.

    python benchmarks/ab_field.py OLD_ENGINE.so [--box-um 30] [--duration-ms 250] [--pairs 3]
    python benchmarks/ab_field.py OLD_ENGINE.so --new NEW_ENGINE.so ...   # two builds, neither installed
    python benchmarks/ab_field.py --only-new [--box-um 30] [--duration-ms 200]   # one run (profiling)

The kernel model's fields must be those the old build reads (true while KernelModel is unchanged).
"""
import argparse
import importlib.machinery
import importlib.util
import statistics
import time

import numpy as np

import mcsyn
from mcsyn import _engine as new
from mcsyn import tissue



def load(path, name):
    """An ``_engine`` build from its shared object, as module ``name`` (two builds load side by side)."""
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, path, loader=loader))
    loader.exec_module(module)
    return module


def field_run(box_um, duration_ms):
    model = tissue.build_field("dorsal_striatal_dopamine", box_side_um=box_um, duration_ms=duration_ms)
    cm = mcsyn.compile_model(model)
    ss = np.random.SeedSequence(1)
    return cm, cm.draw_run(ss), ss.generate_state(4, np.uint64)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", nargs="?", help="the older build's _engine shared object")
    parser.add_argument("--box-um", type=float, default=30.0)
    parser.add_argument("--duration-ms", type=float, default=250.0)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--only-new", action="store_true", help="one run of the installed build, no A/B")
    parser.add_argument("--new", help="the newer build's _engine shared object (default: the installed one)")
    args = parser.parse_args()
    global new
    if args.new:
        new = load(args.new, "new_build._engine")
    cm, run, words = field_run(args.box_um, args.duration_ms)
    prepared = new.prepare(cm.kernel)
    if args.only_new:
        t = time.perf_counter()
        out = new.simulate(prepared, run, words, False)
        print(f"new build: {time.perf_counter() - t:.2f} s, {int(out['series'][-1, 0])} released")
        return
    old = load(args.old, "old_build._engine")
    kernel = {old: cm.kernel, new: prepared}     # the new build prepares once, as simulate.py does
    ratios = []
    for i in range(args.pairs):
        seconds, series = {}, {}
        for m in ((old, new) if i % 2 == 0 else (new, old)):
            t = time.perf_counter()
            series[m] = m.simulate(kernel[m], run, words, False)["series"]
            seconds[m] = time.perf_counter() - t
        assert np.array_equal(series[old], series[new]), "the two builds give different results"
        ratios.append(seconds[new] / seconds[old])
        print(f"pair {i}: old {seconds[old]:.2f} s, new {seconds[new]:.2f} s, new/old {ratios[-1]:.3f}", flush=True)
    print(f"{args.box_um:g} um field, {args.duration_ms:g} ms: time new/old median {statistics.median(ratios):.3f} "
          f"over {args.pairs} pairs (same bits)")


if __name__ == "__main__":
    main()
