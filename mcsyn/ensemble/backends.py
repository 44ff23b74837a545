"""Running batches of runs: the same function on every backend (threads, a process pool, a Dask
cluster), a bounded window of batches in flight, and saving what finished when an ensemble is
interrupted (Ctrl-C, SIGTERM) or its machinery fails."""
from __future__ import annotations

import ctypes
import math
import os
import select
import signal
import sys
import threading
import time
import traceback
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as _cf_wait
from dataclasses import dataclass

import numpy as np

from ..compile import CompiledModel, compile_model
from ..model import SynapseModel
from ..simulate import RunStopped, run_metrics, simulate_columns, stop_thread_pool
from .observables import trace_scale

BACKENDS = ("threads", "processes", "dask")
INT32_MAX = np.iinfo(np.int32).max
PARENT_WATCH_INTERVAL_S = 0.5     # how often a worker checks that the ensemble's process lives (without pidfd)
_PR_SET_PDEATHSIG = 1


# ======================================================================================================
# Running batches (the same function on every backend)

@dataclass
class BatchOutput:
    condition: int
    runs: list           # runs that finished
    metrics: list        # one dict per finished run
    traces: np.ndarray   # (len(runs), n_observables, n_times) int32
    failures: list       # dicts: run, error, traceback


def _simulate_run(cm, seed, run):
    """One run: named columns and metrics (a seam for tests)."""
    columns, _ = simulate_columns(cm, seed, run)
    return columns, run_metrics(cm, columns)


def run_batch(cm: CompiledModel, condition: int, seed: int, runs, observables, t_index) -> BatchOutput:
    """Run ``runs`` of one condition. A run that raises is recorded and skipped; the others go on."""
    runs = [int(r) for r in runs]
    traces = np.zeros((len(runs), len(observables), len(t_index)), dtype=np.int32)
    ok, metrics, failures = [], [], []
    for k, run in enumerate(runs):
        try:
            columns, m = _simulate_run(cm, seed, run)
            for j, name in enumerate(observables):
                v = columns[name][t_index]
                scale = trace_scale(name)
                if scale != 1.0:
                    v = np.rint(np.asarray(v, dtype=np.float64) * scale)
                if v.size and (v.max() > INT32_MAX or v.min() < -INT32_MAX):
                    raise OverflowError(f"observable {name!r} exceeds the int32 range of stored traces")
                traces[k, j] = v
        except RunStopped as exc:
            # the ensemble is stopping (_salvage): the batch ends with the runs that finished; the
            # others are reported, never silently missing (a stop reaches every run in the process)
            failures += [{"run": r, "error": f"{type(exc).__name__}: {exc}", "traceback": ""} for r in runs[k:]]
            break
        except Exception as exc:  # a failing run must not take the others with it
            failures.append({"run": run, "error": f"{type(exc).__name__}: {exc}",
                             "traceback": traceback.format_exc()})
            continue
        ok.append(k)
        metrics.append(m)
    return BatchOutput(condition, [runs[k] for k in ok], metrics, traces[ok], failures)


_WORKER_CACHE: dict = {}
_WORKER_LOCK = threading.Lock()
_WORKER_CACHE_SIZE = 16


def _compiled_in_worker(token: str, model: SynapseModel) -> CompiledModel:
    with _WORKER_LOCK:
        cm = _WORKER_CACHE.get(token)
    if cm is None:
        cm = compile_model(model)
        with _WORKER_LOCK:
            if len(_WORKER_CACHE) >= _WORKER_CACHE_SIZE:
                _WORKER_CACHE.pop(next(iter(_WORKER_CACHE)))
            _WORKER_CACHE[token] = cm
    return cm


def remote_batch(token, model, condition, seed, runs, observables, t_index) -> BatchOutput:
    """:func:`run_batch` in a worker process: the model is compiled once per worker and token."""
    return run_batch(_compiled_in_worker(token, model), condition, seed, runs, observables, t_index)


def _process_worker_init(ensemble_pid: int):
    # the parent decides when to stop; Ctrl-C in the terminal must not kill the pool mid-batch
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(ensemble_pid)


def _die_with(ensemble_pid: int):
    """A worker must not outlive the ensemble's process: one killed with SIGKILL cannot shut its pool
    down. The worker's parent is the forkserver, which lives as long as any worker does, so the
    worker watches the ensemble's process itself: through a pidfd where the system has them
    (readable once that process has ended), else by polling every ``PARENT_WATCH_INTERVAL_S``. With
    the spawn start method the parent is the ensemble's process and Linux also kills the worker
    with it (PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux") and os.getppid() == ensemble_pid:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            pass
    try:
        pidfd = os.pidfd_open(ensemble_pid)
    except (AttributeError, OSError):
        pidfd = None
    if not _alive(ensemble_pid):      # it ended before the watch began
        os._exit(1)
    threading.Thread(target=_watch, args=(ensemble_pid, pidfd), daemon=True, name="mcsyn-parent-watch").start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(pid: int, pidfd):
    if pidfd is not None:
        select.select([pidfd], [], [])
    else:
        while _alive(pid):
            time.sleep(PARENT_WATCH_INTERVAL_S)
    os._exit(1)


# ======================================================================================================
# Executors behind one interface

class _ConcurrentBackend:
    def __init__(self, kind, workers, models, tokens, compiled):
        self.kind = kind
        self.workers = workers
        self.models = models
        self.tokens = tokens
        self.compiled = compiled
        if kind == "threads":
            self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mcsyn")
        else:
            import multiprocessing as mp
            ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
            if ctx.get_start_method() == "forkserver":
                ctx.set_forkserver_preload([__name__])
            self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_process_worker_init,
                                            initargs=(os.getpid(),))

    def submit(self, c, seed, runs, observables, t_index):
        if self.kind == "threads":
            return self.pool.submit(run_batch, self.compiled[c], c, seed, runs, observables, t_index)
        return self.pool.submit(remote_batch, self.tokens[c], self.models[c], c, seed, runs, observables, t_index)

    def wait(self, futures, timeout):
        done, _ = _cf_wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        return done

    def close(self, interrupted=False):
        self.pool.shutdown(wait=True, cancel_futures=interrupted)


class _DaskBackend:
    kind = "dask"

    def __init__(self, scheduler, models, tokens):
        try:
            import distributed
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ImportError("the dask backend needs the 'distributed' package: pip install 'mcsyn[cluster]'") from exc
        self.distributed = distributed
        if isinstance(scheduler, distributed.Client):
            self.client, self.own_client = scheduler, False
        else:
            self.client, self.own_client = distributed.Client(scheduler), True
        self.models = models
        self.tokens = tokens
        self.workers = max(1, sum(self.client.nthreads().values()))
        self.address = self.client.scheduler.address

    def submit(self, c, seed, runs, observables, t_index):
        key = f"mcsyn-batch-{self.tokens[c]}-{runs[0]}-{len(runs)}-{uuid.uuid4().hex[:8]}"
        return self.client.submit(remote_batch, self.tokens[c], self.models[c], c, seed, list(runs),
                                  list(observables), t_index, key=key, pure=False)

    def wait(self, futures, timeout):
        try:
            done, _ = self.distributed.wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set()
        return set(done)

    def close(self, interrupted=False):
        if self.own_client:
            self.client.close()


def _start(kind, workers, scheduler, plan, record):
    """The backend for ``plan``; a Dask one records its scheduler and worker threads in ``record``."""
    models = [c.model for c in plan.conditions]
    tokens = [uuid.uuid4().hex for _ in plan.conditions]
    if kind == "dask":
        backend = _DaskBackend(scheduler, models, tokens)
        record["scheduler"] = backend.address
        record["workers"] = backend.workers
        return backend
    return _ConcurrentBackend(kind, workers, models, tokens, dict(enumerate(plan.compiled)))


# ======================================================================================================
# Driving batches through a backend

def cut_batches(missing, batch_size: int | None, workers: int) -> tuple:
    """``(batches, batch_size)``: the runs still ``missing`` (condition index, runs) cut into
    ``(condition index, runs)`` batches; by default enough for load balance (8 per worker), at
    most 64 runs each."""
    total = sum(len(runs) for _, runs in missing)
    if batch_size is None:
        batch_size = max(1, min(64, math.ceil(total / (8 * workers)))) if total else 1
    return [(ci, runs[i:i + batch_size]) for ci, runs in missing for i in range(0, len(runs), batch_size)], batch_size


def execute(kind: str, workers: int, scheduler, plan, batch_list, batch_size: int, collector, record):
    """Run ``batch_list`` of ``plan`` on the backend ``kind`` and give every finished batch to
    ``collector.take``. Returns None, or the interruption (Ctrl-C or SIGTERM) after the batches that
    finished or were running have been given too. An error of the machinery itself (disk full, a
    lost scheduler) stops the workers and goes through."""
    backend, in_flight, old_term, interrupted = None, {}, None, None
    try:
        if threading.current_thread() is threading.main_thread():
            old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        if batch_list:
            backend = _start(kind, workers, scheduler, plan, record)
            _drive(backend, batch_list, plan, collector, in_flight, max_in_flight=2 * backend.workers,
                   max_buffered=8 * backend.workers * batch_size)
    except KeyboardInterrupt as exc:
        interrupted = exc
    except BaseException:
        # keep what the collector has (on disk for a result directory), and let the error through
        if backend is not None:
            _salvage(backend, in_flight, lambda batch: None)
        raise
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    if interrupted is not None:
        if backend is not None:
            try:
                _salvage(backend, in_flight, collector.take)
            except KeyboardInterrupt:
                pass
        return interrupted
    if backend is not None:
        backend.close()
    return None


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _drive(backend, batch_list, plan, collector, in_flight, max_in_flight, max_buffered):
    """Submit batches through a bounded window and give them to the collector as they finish.

    ``in_flight`` (future -> (condition, runs)) belongs to the caller, so that batches still
    running when the ensemble is interrupted can be saved. When ``collector.should_stop()`` turns
    true (every run so far failed), nothing more is submitted."""
    queue = list(reversed(batch_list))
    while queue or in_flight:
        if collector.should_stop():
            queue.clear()
        while queue and len(in_flight) < max_in_flight and collector.buffered() < max_buffered:
            ci, runs = queue.pop()
            lay = plan.layouts[ci]
            try:
                fut = backend.submit(ci, plan.seeds[ci], runs, lay.observables, lay.t_index)
            except RuntimeError as exc:  # a broken pool: report this batch, keep going with the others
                collector.take(_failed_batch(ci, runs, exc))
                continue
            in_flight[fut] = (ci, runs)
        for fut in backend.wait(set(in_flight), timeout=0.5):
            ci, runs = in_flight.pop(fut)
            collector.take(_batch_result(fut, ci, runs))


def _failed_batch(ci, runs, exc) -> BatchOutput:
    err = f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(exc))
    return BatchOutput(ci, [], [], np.zeros((0, 0, 0), dtype=np.int32),
                       [{"run": r, "error": err, "traceback": tb} for r in runs])


def _batch_result(fut, ci, runs) -> BatchOutput:
    """A finished future's output; a batch that failed as a whole (a worker that died, an error
    outside the runs) is reported as a failure of each of its runs."""
    try:
        return fut.result()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - report, never lose the other batches
        return _failed_batch(ci, runs, exc)


def _salvage(backend, in_flight, take):
    """After an interruption: drop queued batches, save the ones that finished or were running.

    Running thread batches end at their kernels' next step (simulate.stop_thread_pool) and are
    saved with the runs they finished; process pools are waited for (one batch at most per worker); Dask
    futures not yet finished are cancelled."""
    if isinstance(backend, _ConcurrentBackend):
        if backend.kind == "threads":
            stop_thread_pool(backend.pool)
        else:
            backend.pool.shutdown(wait=True, cancel_futures=True)
    for fut, (ci, runs) in list(in_flight.items()):
        if fut.done() and not fut.cancelled():
            out = _batch_result(fut, ci, runs)
            if out.runs:
                take(out)
        else:
            fut.cancel()
        in_flight.pop(fut, None)
    if not isinstance(backend, _ConcurrentBackend):
        backend.close(interrupted=True)
