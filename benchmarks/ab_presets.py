"""Interleaved A/B of whole preset runs (per-run draws in Python, the kernel and the metrics) between
an older checkout and the installed mcsyn, in alternating child processes, so that a noisy host
slows both alike. Each child times ``--runs`` runs of one preset after one warm-up run and reports
their median; a pair is one child of each build, in alternating order. Prints, per preset, the
per-pair median of time new/old and the speed-up (old/new).

    python benchmarks/ab_presets.py OLD_CHECKOUT [--pairs 8] [--runs 15]

OLD_CHECKOUT is a source tree with its extension built in place, e.g.
``git worktree add /tmp/old REV && cd /tmp/old && python setup.py build_ext --inplace``; it is put
first on the child's ``PYTHONPATH`` (the child prints which ``mcsyn`` it imported, and the parent
checks it).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

PRESETS = ("glutamatergic", "serotonergic", "dopaminergic_striatal")

CHILD = """
import json, statistics, sys, time
import mcsyn
from mcsyn.simulate import simulate_columns
cm = mcsyn.compile_model(mcsyn.presets.build(sys.argv[1]))
simulate_columns(cm, 0, 0)
times = []
for i in range(int(sys.argv[2])):
    t = time.perf_counter()
    simulate_columns(cm, 0, i + 1)
    times.append(time.perf_counter() - t)
print(json.dumps({"file": mcsyn.__file__, "median_s": statistics.median(times)}))
"""


def child_median(preset: str, runs: int, checkout: Path | None) -> float:
    env = dict(os.environ)
    if checkout is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", CHILD, preset, str(runs)], env=env, cwd="/",
                         capture_output=True, text=True, check=True)
    reply = json.loads(out.stdout.strip().splitlines()[-1])
    if checkout is not None and not Path(reply["file"]).resolve().is_relative_to(checkout.resolve()):
        raise SystemExit(f"the old build's child imported {reply['file']}, not the checkout {checkout}")
    return reply["median_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path, help="older source tree with its extension built in place")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--runs", type=int, default=15, help="timed runs per child")
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    args = ap.parse_args()
    for preset in args.presets:
        ratios, old_s, new_s = [], [], []
        for i in range(args.pairs):
            order = (args.old, None) if i % 2 == 0 else (None, args.old)
            seconds = {str(tree): child_median(preset, args.runs, tree) for tree in order}
            old_s.append(seconds[str(args.old)])
            new_s.append(seconds["None"])
            ratios.append(new_s[-1] / old_s[-1])
        q1, q3 = np.percentile(ratios, [25, 75])
        r = statistics.median(ratios)
        print(f"{preset:24s} time new/old: median {r:.3f} (IQR {q1:.3f}-{q3:.3f}), speed-up {1 / r:.2f}x; "
              f"runs/s old {1 / statistics.median(old_s):.1f}, new {1 / statistics.median(new_s):.1f} "
              f"({args.pairs} pairs of {args.runs} runs)", flush=True)


if __name__ == "__main__":
    main()
