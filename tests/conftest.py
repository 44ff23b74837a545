"""Fixtures shared by the test modules."""
import os
from pathlib import Path

import pytest

from mcsyn.ensemble import backends


@pytest.fixture
def fail_runs(monkeypatch):
    """Fault injection for the failure-handling tests: ``fail_runs(runs, error_type, message)``
    makes the ensemble's per-run call (``mcsyn.ensemble.backends._simulate_run``, where
    ``run_batch`` looks it up) raise for the run indices in ``runs`` (every condition); the other
    runs go through unchanged. The message defaults to "injected failure in run N"."""
    real = backends._simulate_run

    def install(runs, error_type=RuntimeError, message=None):
        def failing(cm, seed, run):
            if run in runs:
                raise error_type(message if message is not None else f"injected failure in run {run}")
            return real(cm, seed, run)
        monkeypatch.setattr(backends, "_simulate_run", failing)
    return install


@pytest.fixture
def child_env():
    """Environment for a child interpreter that imports the same mcsyn as this test process: the
    directory holding it goes first on PYTHONPATH (in CI that is the installed package, which has
    the compiled kernel; the checkout's source tree does not). Start the child in a neutral folder
    (``cwd=tmp_path``): ``python -c`` and ``-m`` put the working directory first on sys.path."""
    import mcsyn
    here = str(Path(mcsyn.__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
