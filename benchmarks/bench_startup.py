"""Start-up: wall time of a fresh Python that imports mcsyn, and of one that does a default run
(targets: under 0.3 s and under 1 s).

    pytest benchmarks/bench_startup.py --benchmark-only --benchmark-columns=median,min,max,rounds -s

prints each median. Every round is a new interpreter (``subprocess``), so the figures include the
interpreter itself; the bare interpreter and ``import numpy`` are measured alongside as the floor
that mcsyn cannot go below. The children are started with bytecode writing allowed and a warm-up
round, so the rounds read cached bytecode as an installed package does (``PYTHONDONTWRITEBYTECODE``
would otherwise make every round compile mcsyn's sources again). What ``import mcsyn`` must not load
is checked, untimed, in ``tests/test_startup.py``.
"""
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = int(os.environ.get("MCSYN_BENCH_STARTUP_ROUNDS", "11"))

DEFAULT_RUN = "import mcsyn; mcsyn.run_one(mcsyn.presets.build('glutamatergic'))"
PROGRAMS = {
    "python": "pass",
    "import numpy": "import numpy",
    "import mcsyn": "import mcsyn",
    "default run": DEFAULT_RUN,
}
PHASES = """
import time
t0 = time.perf_counter()
import mcsyn
t1 = time.perf_counter()
model = mcsyn.presets.build('glutamatergic')
t2 = time.perf_counter()
result = mcsyn.run_one(model)
t3 = time.perf_counter()
import json
print(json.dumps({"import mcsyn": t1 - t0, "presets.build": t2 - t1, "run_one (pandas included)": t3 - t2}))
"""


def _child_env():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _python(code):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_child_env(), check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.parametrize("what", list(PROGRAMS))
def test_fresh_process(benchmark, what):
    benchmark.pedantic(_python, args=(PROGRAMS[what],), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info["median_s"] = median
    print(f"\n{what}: median {median:.3f} s over {ROUNDS} fresh processes")


def test_default_run_phases(benchmark):
    """Where the default run's time goes, measured inside fresh processes (medians)."""
    samples = []

    def one():
        samples.append(json.loads(_python(PHASES).splitlines()[-1]))

    benchmark.pedantic(one, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    samples = samples[-ROUNDS:]   # without the warm-up round
    for phase in samples[0]:
        median = statistics.median(s[phase] for s in samples)
        benchmark.extra_info[f"{phase} median_s"] = median
        print(f"\n  {phase:<28s} median {median:.3f} s", end="")
    print()
