"""Fixtures shared by the test modules."""
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
