"""Interleaved A/B of two kernel builds in one process: an older ``_engine`` shared object loaded
beside the installed one, both called alternately on the same compiled run and seed, so that a
noisy host slows both alike. Prints per-pair ratio medians (new/old) for the two slab workloads
and three presets; the builds must give the same bits, unless ``--new-draws`` says the newer one
changed the draw order (then the two runs differ in their draws and each pair's ratio is of time
per free molecule-step, counted from each build's own series).

    python benchmarks/ab_kernel_builds.py OLD_ENGINE.so [--pairs 100]

(build the old one from an older commit, e.g. in a worktree, and copy its ``mcsyn/_engine*.so``).
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
from mcsyn.bench import slab_model


def load(path):
    loader = importlib.machinery.ExtensionFileLoader("old_build._engine", path)
    spec = importlib.util.spec_from_file_location("old_build._engine", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def free_molecule_steps(series) -> int:
    # free cleft, band and volume molecules summed over the samples: the work of a run, up to
    # the sampling interval's constant
    return int(series[:-1, 1:4].sum())


def compare(old, name, model, pairs, new_draws=False):
    cm = mcsyn.compile_model(model)
    ss = np.random.SeedSequence(1)
    run, words = cm.draw_run(ss), ss.generate_state(4, np.uint64)
    kernel = {old: cm.kernel, new: new.prepare(cm.kernel)}     # the new build prepares once, as simulate.py does
    a, b = (m.simulate(kernel[m], run, words, False)["series"] for m in (old, new))
    if new_draws:
        work = {old: free_molecule_steps(a), new: free_molecule_steps(b)}
    else:
        assert np.array_equal(a, b), f"{name}: the two builds give different results"
        work = {old: 1, new: 1}
    ratios = []
    for i in range(pairs):
        seconds = {}
        for m in ((old, new) if i % 2 == 0 else (new, old)):
            t = time.perf_counter()
            m.simulate(kernel[m], run, words, False)
            seconds[m] = time.perf_counter() - t
        ratios.append((seconds[new] / work[new]) / (seconds[old] / work[old]))
    q1, q3 = np.percentile(ratios, [25, 75])
    print(f"{name:28s} time new/old: median {statistics.median(ratios):.3f} (IQR {q1:.3f}-{q3:.3f}), {pairs} pairs")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", help="the older build's _engine shared object")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--new-draws", action="store_true",
                        help="the newer build draws differently (a golden change): compare time per molecule-step")
    args = parser.parse_args()
    old = load(args.old)
    workloads = {"free slab": slab_model(), "slab with sites": slab_model(with_sites=True)}
    workloads.update({p: mcsyn.presets.build(p) for p in ("glutamatergic", "serotonergic", "dopaminergic_striatal")})
    for name, model in workloads.items():
        compare(old, name, model, args.pairs, args.new_draws)


if __name__ == "__main__":
    main()
