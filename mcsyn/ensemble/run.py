"""Running an ensemble: :func:`run_ensemble` in named steps (check, plan, open the session and the
trace store, collect, execute, close), and :func:`sweep` for a dose–response."""
from __future__ import annotations

import os

import numpy as np

from .. import budget
from .accumulate import Collector
from .backends import BACKENDS, cut_batches, execute
from .conditions import as_conditions, dose_series, make_conditions
from .plan import Plan, make_plan
from .results import EnsembleInterrupted, EnsembleResult, RunFailures
from .integrity import ResultWriteError
from .recovery import recover_runs
from .storage import FORMAT_VERSION, Session, TraceStore, open_session

DEFAULT_QUANTILES = (0.05, 0.25, 0.75, 0.95)
DEFAULT_TIME_POINTS = 501


def run_ensemble(conditions, n_runs: int = 100, seed: int = 0, *, workers: int | None = None,
                 backend: str = "threads", scheduler=None, batch_size: int | None = None, out=None,
                 resume: bool = False, overwrite: bool = False, observables=None,
                 quantiles=DEFAULT_QUANTILES, time_points: int | None = DEFAULT_TIME_POINTS,
                 keep_traces: bool = True, progress: bool | None = None, errors: str = "raise",
                 callback=None, max_steps=budget.DEFAULT_MAX_STEPS) -> EnsembleResult:
    """Run ``n_runs`` of every condition and collect tidy statistics.

    Parameters
    ----------
    conditions : Condition, list of Condition or SynapseModel, SynapseModel, or preset name
        What to run (:func:`make_conditions` builds grids).
    n_runs : int
        Runs per condition.
    seed : int
        Ensemble seed; see :mod:`mcsyn.ensemble` for how run seeds derive from it.
    workers : int, optional
        Threads or processes (default: the cores this process may use). Ignored for dask.
    backend : ``"threads"``, ``"processes"`` or ``"dask"``
        ``"dask"`` is implied by ``scheduler``.
    scheduler : distributed.Client or str, optional
        A Dask client or scheduler address (``"tcp://host:8786"``) to run on.
    batch_size : int, optional
        Runs per task (default: enough tasks for load balance, at most 64 runs each).
    out : path, optional
        Result directory to write (see :mod:`mcsyn.storage`). It must not exist (or be empty)
        unless ``resume`` or ``overwrite``.
    resume : bool
        Continue an interrupted ensemble in ``out``: only the missing runs are run, and the result is
        identical to an uninterrupted one. The conditions and settings must be the same; ``n_runs``
        may be larger than stored (the ensemble is extended: the result equals one run with that
        many runs), not smaller. Runs whose files are damaged are computed again (a
        :class:`~mcsyn.ensemble.integrity.ResultRepaired` warning says which). Resuming a finished,
        intact result returns it. If ``out`` does not exist yet, start it.
    overwrite : bool
        Replace an existing result directory.
    observables : list of str or ``"all"``, optional
        Time series for the time-course statistics (default :func:`default_observables`).
    quantiles : sequence of float
        Time-course quantiles besides the median.
    time_points : int or None
        Cap on stored time points per run (the engine's samples are strided to fit); None keeps all.
    keep_traces : bool
        Store traces (needed for time-course medians and quantiles, and for resuming).
    progress : bool, optional
        Show a tqdm progress bar (default: when stderr is a terminal; it appears after 2 s).
    errors : ``"raise"`` or ``"keep"``
        A run that raises is recorded with its seed and the others go on. At the end, ``"raise"``
        raises :class:`RunFailures` (the result, with the finished runs, is attached and saved);
        ``"keep"`` returns the result with ``failures`` filled.
    callback : callable, optional
        ``callback(done_runs, total_runs)`` after every finished batch.
    max_steps : float or None
        Work limit per run in estimated molecule-steps plus site events (:mod:`mcsyn.budget`); a
        condition above it is refused before any run starts. None: no limit.

    Returns
    -------
    EnsembleResult

    Raises
    ------
    EnsembleInterrupted
        On Ctrl-C or SIGTERM, after saving the batches that finished.
    RunFailures
        With ``errors="raise"``, when some runs failed.
    ResultWriteError
        When ``out`` cannot be written (no space left, no permission); the runs saved stay there.
    UnsafeResultEntry
        When an entry of ``out`` is a symbolic link (nothing is written through one).
    """
    quantiles = tuple(float(q) for q in quantiles)
    backend = "dask" if scheduler is not None else backend
    _check_settings(n_runs, seed, workers, backend, scheduler, batch_size, quantiles, errors, time_points,
                    out, resume, overwrite, keep_traces)
    plan = make_plan(as_conditions(conditions), int(n_runs), int(seed), observables, quantiles, time_points,
                     keep_traces)
    for cm in plan.compiled:            # refuse a run above the work limit before any run starts
        budget.check(cm, max_steps, int(n_runs))
    session = open_session(out, resume, overwrite, plan.config)
    if session.resumed:
        _check_resumable(session.meta, plan.settings, session.path)
        finished = recover_runs(session, plan)
        if finished is not None:
            return finished
    n_workers = int(workers) if workers is not None else _default_workers()
    session.begin(backend, n_workers, plan.settings)
    traces = TraceStore.open(plan.trace_shapes(), session) if keep_traces else TraceStore()
    collector = Collector(plan, session, traces, callback, progress)
    batch_list, batch_size = cut_batches(collector.missing, batch_size, n_workers)
    try:
        with collector.progress():
            interrupted = execute(backend, n_workers, scheduler, plan, batch_list, batch_size, collector,
                                  session.record)
    except ResultWriteError as exc:
        raise _write_failed(exc, collector, session) from None
    except BaseException:
        session.set_status("error")
        raise
    if interrupted is not None:
        raise _interrupted(interrupted, collector, session, traces) from None
    return _close(plan, collector, session, traces, errors)


def _default_workers():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _is_count(value, minimum: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= minimum


def _check_settings(n_runs, seed, workers, backend, scheduler, batch_size, quantiles, errors, time_points,
                    out, resume, overwrite, keep_traces):
    if not _is_count(n_runs, 1):
        raise ValueError(f"n_runs = {n_runs!r} is not valid: must be an integer >= 1")
    if not _is_count(seed, 0):
        raise ValueError(f"seed = {seed!r} is not valid: must be an integer >= 0")
    if workers is not None and not _is_count(workers, 1):
        raise ValueError(f"workers = {workers!r} is not valid: must be an integer >= 1")
    if backend not in BACKENDS:
        raise ValueError(f"backend = {backend!r} is not valid: must be one of "
                         f"{', '.join(map(repr, BACKENDS))}")
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"batch_size = {batch_size!r} is not valid: must be an integer >= 1")
    for q in quantiles:
        if not (0 < q < 1):
            raise ValueError(f"quantile {q!r} is not valid: quantiles must be in (0, 1)")
    if errors not in ("raise", "keep"):
        raise ValueError(f"errors = {errors!r} is not valid: must be 'raise' or 'keep'")
    if time_points is not None and (not isinstance(time_points, (int, np.integer)) or time_points < 2):
        raise ValueError(f"time_points = {time_points!r} is not valid: must be an integer >= 2 or None")
    if backend == "dask" and scheduler is None:
        raise ValueError("backend 'dask' needs scheduler= (a distributed.Client or a scheduler address)")
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other")
    if resume and out is None:
        raise ValueError("resume needs out= (the result directory to continue)")
    if resume and not keep_traces:
        raise ValueError("resume needs keep_traces=True (the time-course statistics are rebuilt from stored traces)")


def _check_resumable(meta, settings, path):
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"cannot resume {path}: result format {meta.get('format')!r} != {FORMAT_VERSION}")
    for key in ("seed", "quantiles", "time_points", "keep_traces"):    # more runs extend it (recover_runs)
        if meta.get(key) != settings[key]:
            raise ValueError(f"cannot resume {path}: it was run with {key} = {meta.get(key)!r}, now {settings[key]!r}")
    old = [(c["name"], c["model_sha256"], c["observables"]) for c in meta["conditions"]]
    new = [(c["name"], c["model_sha256"], c["observables"]) for c in settings["conditions"]]
    if old != new:
        raise ValueError(f"cannot resume {path}: its conditions (names, models or observables) differ from these")


def _interrupted(exc: KeyboardInterrupt, collector: Collector, session: Session, traces: TraceStore):
    """Save the state of an interrupted ensemble; the exception that reports it."""
    traces.flush()
    session.set_status("interrupted", ended=True)
    path, n_done, n_total = session.path, collector.n_done, collector.n_total
    n_done = _saved_runs(session, n_done)
    where = f"; {n_done} of {n_total} runs are saved in {path} (resume to finish)" if path else ""
    why = str(exc) or "Ctrl-C"
    return EnsembleInterrupted(f"ensemble interrupted ({why}){where}", path=path, n_done=n_done, n_total=n_total)


def _saved_runs(session: Session, fallback: int) -> int:
    # count what is on disk: the interrupt may land after a batch's chunk was written and before
    # the collector counted it, and a resume trusts the chunks
    if session.rd is None:
        return fallback
    return sum(len(e["runs"]) for e in session.rd.saved_chunks().values())


def _write_failed(exc: ResultWriteError, collector: Collector, session: Session) -> ResultWriteError:
    """The error of a result directory that could not be written (disk full, permissions), with the
    runs that are saved; the metadata is marked if it still can be."""
    try:
        session.set_status("error", ended=True)
    except OSError:
        pass
    n_done = _saved_runs(session, collector.n_done)
    return ResultWriteError(exc.errno, f"{exc.strerror} ({n_done} of {collector.n_total} runs saved)")


def _close(plan: Plan, collector: Collector, session: Session, traces: TraceStore, errors: str) -> EnsembleResult:
    """The finished result, saved in the result directory; :class:`RunFailures` if runs failed
    and ``errors="raise"``, or if the ensemble stopped early."""
    result = collector.finish()
    result.config = plan.config
    result._tmpdir = traces.tmpdir      # a temporary trace store lives as long as the result
    result._traces = traces.by_condition(plan.layouts)
    gave_up = collector.stopped_early()
    status = "stopped_early" if gave_up else "complete" if result.failures.empty else "failed_runs"
    session.save(result, traces, status)
    if gave_up or (not result.failures.empty and errors == "raise"):
        raise RunFailures(result, stopped_early=gave_up)
    return result


def sweep(base, drug: str, concentrations, n_runs: int = 100, seed: int = 0, *, params=None,
          mode: str | None = None, adaptation=None, **kwargs) -> EnsembleResult:
    """A dose–response ensemble: the control and every concentration of ``drug`` (see
    :func:`dose_series`); further keywords go to :func:`run_ensemble`."""
    conds = make_conditions(base, treatments=dose_series(drug, concentrations), params=params, mode=mode,
                            adaptation=adaptation)
    return run_ensemble(conds, n_runs=n_runs, seed=seed, **kwargs)
