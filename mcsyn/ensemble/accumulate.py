"""Accumulating results: every finished batch, in whatever order batches finish, is stored, written
to the result directory and fed to running statistics in run order; at the end the tables are
built from them."""
from __future__ import annotations

import sys
from contextlib import contextmanager

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import stats as _stats
from .backends import BatchOutput
from .results import EnsembleResult

FAIL_FAST_RUNS = 8          # stop an ensemble whose first runs all fail (a broken model or install)


class _ConditionState:
    """Running statistics of one condition, fed in run order whatever order batches finish in."""

    def __init__(self, n_runs, shape, traces, done_before):
        self.n_runs = n_runs
        self.moments = _stats.OnlineMoments(shape)
        self.traces = traces                 # (n_obs, n_runs, n_t) array or None
        self.done_before = done_before       # runs finished in an earlier session (traces on disk)
        self.pending = {}                    # run -> trace (None: failed) waiting for earlier runs
        self.next_run = 0
        self.ok = np.zeros(n_runs, dtype=bool)

    def add(self, runs, traces, failed_runs):
        for run, tr in zip(runs, traces):
            self.pending[run] = tr
        for run in failed_runs:
            self.pending[run] = None
        self.drain()

    def drain(self):
        while self.next_run < self.n_runs:
            r = self.next_run
            if r in self.pending:
                tr = self.pending.pop(r)
            elif r in self.done_before:
                tr = np.asarray(self.traces[:, r, :])
            else:
                return
            if tr is not None:
                self.moments.update(tr)
                self.ok[r] = True
            self.next_run += 1


class Collector:
    """Takes every finished batch of a :class:`~mcsyn.ensemble.plan.Plan` (:meth:`take`): stores its
    traces, then writes its metrics to the session's result directory (which marks its runs done),
    feeds the running statistics in run order, counts, and reports progress and ``callback(done,
    total)``. :meth:`finish` builds the result's tables."""

    def __init__(self, plan, session, traces, callback=None, progress: bool | None = None):
        self.plan = plan
        self.session = session
        self.traces = traces
        self.callback = callback
        self.show_progress = sys.stderr.isatty() if progress is None else bool(progress)
        self.states = [_ConditionState(plan.n_runs, lay.shape, traces.get(ci), session.done_runs(ci))
                       for ci, lay in enumerate(plan.layouts)]
        self.rows = {ci: list(session.done_rows.get(ci, [])) for ci in range(len(plan.conditions))}
        self.failures = []
        self.missing = [(ci, [r for r in range(plan.n_runs) if r not in st.done_before])
                        for ci, st in enumerate(self.states)]
        self.n_total = plan.n_runs * len(plan.conditions)
        self.n_done = self.n_total - sum(len(runs) for _, runs in self.missing)
        self.n_ok = 0
        self.n_failed = 0
        self._bar = None

    @contextmanager
    def progress(self):
        """A tqdm progress bar over every run while the batches run (it appears after 2 s)."""
        self._bar = tqdm(total=self.n_total, initial=self.n_done, disable=not self.show_progress, unit="run",
                         delay=2.0, desc="mcsyn", dynamic_ncols=True, file=sys.stderr)
        try:
            yield self
        finally:
            self._bar.close()

    def take(self, batch: BatchOutput):
        ci = batch.condition
        c, seed = self.plan.conditions[ci], self.plan.seeds[ci]
        self.n_ok += len(batch.runs)
        self.n_failed += len(batch.failures)
        self.traces.write(ci, batch.runs, batch.traces)
        if batch.runs:
            # one small numpy-backed frame per batch: far lighter than a dict per run
            frame = pd.DataFrame([{"condition": c.name, **c.labels, "run": r, "seed": seed, **m}
                                  for r, m in zip(batch.runs, batch.metrics)])
            if self.session.rd is not None:
                self.session.rd.write_chunk(ci, batch.runs[0], frame, traces=batch.traces)
            self.rows[ci].append(frame)
        for f in batch.failures:
            self.failures.append({"_c": ci, "condition": c.name, "run": int(f["run"]), "seed": seed,
                                  "error": f["error"], "traceback": f["traceback"]})
        self.states[ci].add(batch.runs, batch.traces, [f["run"] for f in batch.failures])
        n = len(batch.runs) + len(batch.failures)
        self.n_done += n
        if self._bar is not None:
            self._bar.update(n)
        if self.callback is not None:
            self.callback(self.n_done, self.n_total)

    def buffered(self) -> int:
        """Finished runs waiting in the reorder buffers for earlier runs."""
        return sum(len(s.pending) for s in self.states)

    def should_stop(self) -> bool:
        """Every run so far failed, and enough of them to call the model or installation broken."""
        return self.n_ok == 0 and self.n_failed >= FAIL_FAST_RUNS

    def stopped_early(self) -> bool:
        return self.should_stop() and self.n_done < self.n_total

    def finish(self) -> EnsembleResult:
        """The result's tables (a condition finished entirely in an earlier session is fed from disk here)."""
        for st in self.states:
            st.drain()
        plan = self.plan
        label_cols = list(dict.fromkeys(k for c in plan.conditions for k in c.labels))
        metrics = _metrics_table(plan, self.rows, label_cols)
        failures = _failures_table(self.failures)
        conditions = _conditions_table(plan, self.states, failures, label_cols)
        timecourse = _timecourse_table(plan, self.states, self.traces, label_cols)
        _match_label_dtypes(timecourse, metrics, label_cols)
        return EnsembleResult(metrics=metrics, timecourse=timecourse, failures=failures, conditions=conditions,
                              metadata={})


def _quantile_name(q: float) -> str:
    return f"q{100 * q:g}"


def _metrics_table(plan, rows, label_cols) -> pd.DataFrame:
    """Every finished run: condition order, then run order."""
    frames = [f for ci in range(len(plan.conditions)) for f in rows[ci]]
    fixed = ["condition", *label_cols, "run", "seed"]
    if frames:
        metrics = pd.concat(frames, ignore_index=True)
        order = {c.name: i for i, c in enumerate(plan.conditions)}
        key = metrics["condition"].map(order).to_numpy() * (plan.n_runs + 1) + metrics["run"].to_numpy()
        metrics = metrics.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
        metric_cols = [k for k in metrics.columns if k not in fixed]
        metrics = metrics[fixed + metric_cols]
    else:
        metrics = pd.DataFrame(columns=fixed)
    return metrics.astype({"condition": "str", "run": np.int64, "seed": np.int64})


def _failures_table(failures) -> pd.DataFrame:
    failures = sorted(failures, key=lambda f: (f["_c"], f["run"]))
    fail = pd.DataFrame(failures, columns=["condition", "run", "seed", "error", "traceback"])
    return fail.astype({"condition": "str", "run": np.int64, "seed": np.int64, "error": "str", "traceback": "str"})


def _conditions_table(plan, states, fail, label_cols) -> pd.DataFrame:
    crow = []
    for ci, c in enumerate(plan.conditions):
        n_ok = int(states[ci].ok.sum())
        crow.append({"condition": c.name, **c.labels, "seed": plan.seeds[ci], "n_runs": plan.n_runs, "n_ok": n_ok,
                     "n_failed": int((fail["condition"] == c.name).sum())})
    cond_table = pd.DataFrame(crow, columns=["condition", *label_cols, "seed", "n_runs", "n_ok", "n_failed"])
    return cond_table.astype({"condition": "str", "seed": np.int64, "n_runs": np.int64, "n_ok": np.int64,
                              "n_failed": np.int64})


def _timecourse_table(plan, states, traces, label_cols) -> pd.DataFrame:
    """Per condition, observable and time: running moments, and quantiles from the stored traces."""
    qs = (0.5, *plan.quantiles)
    qnames = ["median", *[_quantile_name(q) for q in plan.quantiles]]
    parts = []
    for ci, c in enumerate(plan.conditions):
        lay, st = plan.layouts[ci], states[ci]
        n_obs, n_t = len(lay.observables), len(lay.times_ms)
        mom = st.moments
        qvals = _trace_quantiles(traces.get(ci), np.flatnonzero(st.ok), plan.n_runs, qs, n_obs, n_t)
        data = {"condition": np.full(n_obs * n_t, c.name, dtype=object)}
        for k in label_cols:
            data[k] = [c.labels.get(k, None)] * (n_obs * n_t)
        data["observable"] = np.repeat(np.array(lay.observables, dtype=object), n_t)
        data["time_ms"] = np.tile(np.asarray(lay.times_ms, dtype=np.float64), n_obs)
        data["n"] = np.full(n_obs * n_t, mom.n, dtype=np.int64)
        unit = np.repeat(lay.scales, n_t)       # stored values per unit of the observable
        data["mean"] = mom.mean.ravel() / unit if mom.n else np.full(n_obs * n_t, np.nan)
        data["sd"] = mom.sd.ravel() / unit
        data["sem"] = mom.sem.ravel() / unit
        for name, qv in zip(qnames, qvals):
            data[name] = qv.ravel() / unit
        parts.append(pd.DataFrame(data))
    timecourse = pd.concat(parts, ignore_index=True)
    timecourse["condition"] = timecourse["condition"].astype("str")
    timecourse["observable"] = timecourse["observable"].astype("str")
    return timecourse


def _trace_quantiles(arr, ok_idx, n_runs, qs, n_obs, n_t) -> np.ndarray:
    """(quantiles, observables, times) over the finished runs ``ok_idx`` of one condition's stored
    traces, read in blocks of time points of about 32 MB; NaN without traces."""
    qvals = np.full((len(qs), n_obs, n_t), np.nan)
    if arr is None or not len(ok_idx):
        return qvals
    block = max(1, int(32e6 // (8 * len(ok_idx))))
    all_ok = len(ok_idx) == n_runs
    for j in range(n_obs):
        for t0 in range(0, n_t, block):
            a = np.asarray(arr[j, :, t0:t0 + block])
            if not all_ok:
                a = a[ok_idx]
            qvals[:, j, t0:t0 + block] = np.quantile(a, qs, axis=0)
    return qvals


def _match_label_dtypes(timecourse, metrics, label_cols):
    """Label columns of the time course: the same dtype as in the metrics table."""
    for k in label_cols:
        if k in metrics.columns and len(metrics):
            try:
                timecourse[k] = timecourse[k].astype(metrics[k].dtype)
            except (TypeError, ValueError):
                pass
