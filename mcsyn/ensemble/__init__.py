"""Ensembles: many runs of one or more conditions, in parallel, with tidy statistics.

A *condition* is one fully resolved :class:`~mcsyn.model.SynapseModel` with a name and labels
(drug, dose, swept parameters). :func:`make_conditions` builds a grid of them from a preset, a
configuration, a model or a function; :func:`run_ensemble` runs ``n_runs`` of each and returns an
:class:`EnsembleResult` (per-run metrics, time-course statistics, failures), optionally written to a
result directory (:mod:`mcsyn.storage`) that survives interruptions and can be resumed.

Seeds
-----
Each condition gets its own stream seed, ``condition_seed(seed, name)`` (a 63-bit integer from a
SHA-256 of the ensemble seed and the condition name), so conditions are statistically independent
and a condition's runs do not change when other conditions are added to the grid. Run ``i`` of a
condition uses ``SeedSequence(condition_seed, spawn_key=(i,))`` (:func:`mcsyn.run_seed_sequence`);
the metrics table records ``seed`` (the condition seed) and ``run`` (``i``) of every run, and
``mcsyn.run_one(model, seed, run)`` reproduces it alone, bit for bit.

Results do not depend on the backend, the number of workers or the batch size: every run is
computed from its own stream, and the running time-course moments are accumulated run by run in run
order (runs that finish early wait in a small reorder buffer).

Backends
--------
``"threads"`` (default): the kernel releases the GIL, so threads over batches of runs use every core
with no copying; measured as fast as processes or faster (``benchmarks/bench_ensemble.py``).
``"processes"``: a process pool (``forkserver``), each worker compiling each condition once; as
with any multiprocessing, a script that uses it needs the ``if __name__ == "__main__":`` guard.
Workers end with the ensemble's process, even one killed with SIGKILL.
``"dask"``: an existing ``dask.distributed`` cluster, given as a ``Client`` or a scheduler address;
batches of runs are tasks, models are compiled once per worker process, and tasks lost with a worker
are re-run by Dask, with identical results.

A run that raises is recorded (condition, run, seed, traceback) and the others go on; an ensemble
whose first ``FAIL_FAST_RUNS`` runs all fail stops early. Ctrl-C and SIGTERM stop an ensemble after
saving the batches that finished (:class:`EnsembleInterrupted`).

Streaming
---------
Nothing holds every trace in memory: each condition's time-course mean and variance are running
moments (Welford, :class:`mcsyn.stats.OnlineMoments`); medians and quantiles are exact, computed at
the end from the traces stored as an int32 (observables, runs, times) array, memory-mapped on disk
for result directories and large ensembles and read back in blocks of time points. Disk use is
4 bytes × observables × runs × time points per condition; ``time_points`` caps the stored time grid
(default 501 points, by striding the engine's samples) and ``keep_traces=False`` stores nothing (the
time-course table then has mean, sd and sem only).

Layout
------
:mod:`~mcsyn.ensemble.conditions` (what to run), :mod:`~mcsyn.ensemble.observables` (what is kept
of each run), :mod:`~mcsyn.ensemble.plan` (the compiled conditions and settings),
:mod:`~mcsyn.ensemble.backends` (running batches), :mod:`~mcsyn.ensemble.accumulate` (statistics in
run order), :mod:`~mcsyn.ensemble.results` (what an ensemble returns), :mod:`~mcsyn.ensemble.storage`
(result directories and trace stores), :mod:`~mcsyn.ensemble.integrity` (checksums and safe writes),
:mod:`~mcsyn.ensemble.recovery` (what a resume trusts, extending an ensemble) and :mod:`~mcsyn.ensemble.run` (:func:`run_ensemble` itself).
This module is their public face.
"""
from __future__ import annotations

from .accumulate import FAIL_FAST_RUNS
from .backends import BACKENDS, INT32_MAX, BatchOutput, remote_batch, run_batch
from .conditions import (Condition, condition_seed, dose_series, format_dose, log_doses, make_conditions,
                         parse_concentration, parse_drug_option, set_parameter, treatment_name)
from .integrity import ResultDamaged, ResultRepaired, ResultWriteError, UnsafeResultEntry
from .observables import available_observables, default_observables, time_indices
from .results import EnsembleInterrupted, EnsembleResult, RunFailures
from .run import DEFAULT_QUANTILES, DEFAULT_TIME_POINTS, run_ensemble, sweep
from .storage import IN_MEMORY_TRACE_LIMIT_BYTES

__all__ = [
    "BACKENDS", "DEFAULT_QUANTILES", "DEFAULT_TIME_POINTS", "FAIL_FAST_RUNS", "IN_MEMORY_TRACE_LIMIT_BYTES",
    "INT32_MAX", "BatchOutput", "Condition", "EnsembleInterrupted", "EnsembleResult", "RunFailures",
    "available_observables", "condition_seed", "default_observables", "dose_series", "format_dose", "log_doses",
    "ResultDamaged", "ResultRepaired", "ResultWriteError", "UnsafeResultEntry",
    "make_conditions", "parse_concentration", "parse_drug_option", "remote_batch", "run_batch", "run_ensemble",
    "set_parameter", "sweep", "time_indices", "treatment_name",
]
