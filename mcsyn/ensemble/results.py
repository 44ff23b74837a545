"""What an ensemble returns: its tables and stored traces (:class:`EnsembleResult`), and the two
ways it can end early (:class:`RunFailures`, :class:`EnsembleInterrupted`).

Nothing here reads or writes files: :mod:`mcsyn.ensemble.storage` saves and loads results."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import stats as _stats
from .observables import trace_scale


@dataclass(eq=False)
class EnsembleResult:
    """What an ensemble returns (and :func:`mcsyn.storage.load_result` loads).

    Attributes
    ----------
    metrics : DataFrame
        One row per finished run: ``condition``, the label columns, ``run``, ``seed``, then every
        scalar metric of the engine (:func:`mcsyn.simulate.run_metrics`).
    timecourse : DataFrame
        Per condition, observable and time (``time_ms``): ``n``, ``mean``, ``sd``, ``sem``,
        ``median`` and the chosen quantiles (``q5``, ``q25``, ... in percent).
    failures : DataFrame
        Runs that raised: ``condition``, ``run``, ``seed``, ``error``, ``traceback``. Reproduce one
        with ``mcsyn.run_one(model, seed=seed, run_index=run)``.
    conditions : DataFrame
        One row per condition: name, labels, ``seed``, ``n_runs``, ``n_ok``, ``n_failed``.
    metadata : dict
        mcsyn version, seed, dates, backend and workers of every session, settings, status.
    config : dict
        The resolved configuration, as written to ``config.toml``.
    path : Path or None
        The result directory, if any.
    """

    metrics: pd.DataFrame
    timecourse: pd.DataFrame
    failures: pd.DataFrame
    conditions: pd.DataFrame
    metadata: dict
    config: dict | None = None
    path: Path | None = None
    _traces: dict = field(default_factory=dict, repr=False)   # condition index -> (array, observables, times)
    _tmpdir: object = field(default=None, repr=False)

    def __eq__(self, other):
        """Equal results hold equal tables (metrics, time courses, failures, conditions with their
        seeds). Provenance does not count: the metadata (dates, the worker layout of each session),
        the form the configuration is held in (objects in memory, TOML once loaded) and the
        directory."""
        if not isinstance(other, EnsembleResult):
            return NotImplemented
        return all(a.equals(b) for a, b in zip(self.tables().values(), other.tables().values()))

    __hash__ = None   # mutable tables

    def tables(self) -> dict:
        """The four tables by name: ``metrics``, ``timecourse``, ``failures``, ``conditions``."""
        return {"metrics": self.metrics, "timecourse": self.timecourse, "failures": self.failures,
                "conditions": self.conditions}

    @property
    def condition_names(self) -> list:
        return self.conditions["condition"].tolist()

    @property
    def control(self) -> str:
        """The control condition: the one named ``"control"`` if any, else the first."""
        names = self.condition_names
        return "control" if "control" in names else names[0]

    def summary(self, **kwargs) -> pd.DataFrame:
        """:func:`mcsyn.stats.summarize` of the per-run metrics, by condition."""
        return _stats.summarize(self.metrics, **kwargs)

    def compare(self, control: str | None = None, **kwargs) -> pd.DataFrame:
        """:func:`mcsyn.stats.compare` of every condition against ``control`` (default :attr:`control`)."""
        return _stats.compare(self.metrics, control=control or self.control, **kwargs)

    def dose_response(self, metric: str, drug: str | None = None, **kwargs):
        """Hill fit of ``metric`` against ``dose_M`` (one drug's conditions and the control).

        Returns ``(HillFit, per-dose table)``."""
        if "dose_M" not in self.metrics.columns:
            raise ValueError("this result has no dose_M column: it was not run over drug doses")
        m = self.metrics
        drugs = [d for d in m["drug"].unique() if d != "control"]
        if drug is None:
            if len(drugs) != 1:
                raise ValueError(f"the result holds several drugs {drugs}: choose one with drug=")
            drug = drugs[0]
        m = m[m["drug"].isin([drug, "control"])]
        return _stats.dose_response(m, metric, **kwargs)

    def traces(self, condition: str, observable: str) -> pd.DataFrame:
        """Stored traces of one observable: rows are runs (index ``run``), columns times (ms)."""
        c = self._condition_index(condition)
        if c not in self._traces:
            raise ValueError("this result keeps no traces (it was run with keep_traces=False)")
        arr, obs, times = self._traces[c]
        if observable not in obs:
            raise KeyError(f"observable {observable!r} was not stored; stored: {obs}")
        runs = self.metrics.loc[self.metrics["condition"] == condition, "run"].to_numpy()
        data = np.asarray(arr[obs.index(observable)][runs], dtype=np.int64)
        scale = trace_scale(observable)
        if scale != 1.0:
            data = data / scale
        return pd.DataFrame(data, index=pd.Index(runs, name="run"), columns=pd.Index(times, name="time_ms"))

    def _condition_index(self, condition):
        names = self.condition_names
        if condition not in names:
            raise KeyError(f"no condition {condition!r}; conditions: {names}")
        return names.index(condition)


class RunFailures(RuntimeError):
    """Some runs of an ensemble raised. The others finished and are kept (``result``, and on disk);
    ``failures`` lists each failed run with its seed, so that it can be reproduced alone."""

    def __init__(self, result: EnsembleResult, stopped_early: bool = False):
        self.result = result
        self.failures = result.failures
        self.stopped_early = stopped_early
        if stopped_early:
            lines = [f"stopped early: the first {len(result.failures)} runs all failed, so the others were not "
                     "started (a broken model or installation?):"]
        else:
            lines = [f"{len(result.failures)} run(s) failed; the other {len(result.metrics)} finished"
                     + (f" and are saved in {result.path}" if result.path else "") + ":"]
        for row in result.failures.head(10).itertuples():
            lines.append(f"  condition {row.condition!r} run {row.run} (seed {row.seed}): {row.error}\n"
                         f"    reproduce: mcsyn.run_one(model, seed={row.seed}, run_index={row.run})")
        if len(result.failures) > 10:
            lines.append(f"  ... and {len(result.failures) - 10} more (see .failures)")
        if result.path:
            lines.append("  run the ensemble again with resume to retry only the failed runs")
        super().__init__("\n".join(lines))


class EnsembleInterrupted(KeyboardInterrupt):
    """An ensemble stopped by Ctrl-C or SIGTERM. Finished runs are on disk (``path``) when the
    ensemble had an output directory; resume it to finish."""

    def __init__(self, message, path=None, n_done=0, n_total=0):
        super().__init__(message)
        self.path = path
        self.n_done = n_done
        self.n_total = n_total
