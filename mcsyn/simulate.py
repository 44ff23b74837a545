"""Run compiled models: one run, or many in parallel threads, with tidy pandas outputs.

Seeding: run ``i`` of an ensemble with seed ``S`` uses ``SeedSequence(S).spawn(n)[i]``, which is
``SeedSequence(S, spawn_key=(i,))``; so a run's result depends only on (S, i), never on how runs
are split across workers, and any run can be reproduced alone with :func:`run_one`.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:   # pandas is imported where a DataFrame is built: start-up cost of `import mcsyn`
    import pandas as pd

from . import _engine, budget, electrophysiology, trains
from .compile import CompiledModel, compile_model, molar
from .model import SynapseModel

SERIES_COLUMNS = tuple(_engine.SERIES_COLUMNS)

# raised by a kernel run that kernel_runs_stopped() ended (a KeyboardInterrupt)
RunStopped = _engine.RunStopped


@contextmanager
def kernel_runs_stopped():
    """While inside, every kernel run of this process, in any thread, stops within one fine step
    and raises :class:`RunStopped` (a KeyboardInterrupt); runs started inside stop before their
    first step. For a driver that must end its worker threads' runs after Ctrl-C or SIGTERM (the
    thread backend of an ensemble, :func:`run`): a kernel run gives up the GIL, and Python
    cannot otherwise interrupt a thread. (Ctrl-C during a run in the main thread needs nothing:
    the run raises KeyboardInterrupt itself.)"""
    _engine.stop_runs()
    try:
        yield
    finally:
        _engine.release_runs()


def stop_thread_pool(pool) -> None:
    """Shut ``pool`` (a ThreadPoolExecutor) down now: queued tasks are cancelled and the kernel
    runs of its threads stopped (:func:`kernel_runs_stopped`) until every one of its threads has
    ended. The threads are found by the pool's name prefix as well as in its own list: an
    interrupt that lands while ``submit`` starts a thread leaves that thread out of the list,
    running a task, and a join must not miss it."""
    with kernel_runs_stopped():
        pool.shutdown(wait=True, cancel_futures=True)
        prefix = getattr(pool, "_thread_name_prefix", None)     # CPython names them f"{prefix}_{i}"
        if prefix:
            for thread in threading.enumerate():
                if thread.name.startswith(prefix + "_") and thread is not threading.current_thread():
                    thread.join()


def run_seed_sequence(seed: int, run_index: int) -> np.random.SeedSequence:
    """The SeedSequence of run ``run_index`` in an ensemble seeded with ``seed``."""
    return np.random.SeedSequence(seed, spawn_key=(int(run_index),))


@dataclass
class RunResult:
    """One run: its time series (a DataFrame indexed by ``time_ms``) and scalar metrics."""

    series: pd.DataFrame
    metrics: dict
    seed: int
    run_index: int
    positions: dict | None = None


def _as_compiled(model) -> CompiledModel:
    if isinstance(model, CompiledModel):
        return model
    if isinstance(model, SynapseModel):
        return compile_model(model)
    raise TypeError(f"expected a SynapseModel or CompiledModel, got {type(model).__name__}")


def series_columns(cm: CompiledModel, out) -> dict:
    """Named time-series columns of one kernel run (numpy arrays, one value per sample)."""
    data = {name: out["series"][:, j] for j, name in enumerate(SERIES_COLUMNS)}
    data["free"] = out["series"][:, 1] + out["series"][:, 2] + out["series"][:, 3]
    states = out["states"]
    for j, label in enumerate(cm.state_labels):
        data[label] = states[:, j]
    for grp, (first, names) in zip(cm.model.sites, cm.group_states):
        block = states[:, first:first + len(names)]
        lig = cm.state_ligands[first:first + len(names)]
        data[f"{grp.label}:bound"] = block @ lig
        data[f"{grp.label}:occupied"] = block[:, lig > 0].sum(axis=1)
        if grp.scheme.open_states:
            data[f"{grp.label}:open"] = block[:, cm.state_open[first:first + len(names)]].sum(axis=1)
    probes = out.get("probes")
    for j, (name, nM) in enumerate(zip(cm.detector_names, cm.detector_nM_per_molecule)):
        data[f"{name}:molecules"] = probes[:, j] if probes is not None else np.zeros(len(out["series"]), dtype=np.int64)
        data[f"{name}:concentration_nM"] = data[f"{name}:molecules"] * nM
    if cm.model.clamp is not None:
        data.update(electrophysiology.current_columns(cm, data, cm.model.clamp, channel_list=cm.channels))
    return data


def run_metrics(cm: CompiledModel, columns: dict) -> dict:
    """Per-run scalar metrics from a run's named time-series columns (times in ms, concentrations in M)."""
    t = cm.sample_times_ms
    free = columns["free"]
    cleft = columns["free_cleft"]
    released = int(columns["released"][-1])
    m = {name: int(columns[name][-1]) for name in
         ("released", "taken_up", "escaped", "degraded", "effluxed", "binding_events")}
    m["free_end"] = int(free[-1])
    m["bound_end"] = int(columns["bound"][-1])
    i_peak = int(np.argmax(free))
    m["peak_free"] = int(free[i_peak])
    m["time_to_peak_free_ms"] = float(t[i_peak])
    j_peak = int(np.argmax(cleft))
    m["peak_cleft_free"] = int(cleft[j_peak])
    m["peak_cleft_concentration_M"] = float(molar(cleft[j_peak], cm.model.geometry.cleft_volume_um3))
    m["time_to_peak_cleft_ms"] = float(t[j_peak])
    m["clearance_half_time_ms"] = clearance_half_time_ms(t, free)
    for grp, (first, names) in zip(cm.model.sites, cm.group_states):
        blocked = [f"{grp.label}:{n}" for n in names if n.startswith("blocked")]
        if blocked:
            n_sites = sum(int(columns[f"{grp.label}:{n}"][0]) for n in names)
            frac = sum(columns[c].astype(float) for c in blocked) / max(n_sites, 1)
            m[f"{grp.label}:blocked_fraction"] = float(frac[0])
            m[f"{grp.label}:blocked_fraction_mean"] = float(np.trapezoid(frac, t) / t[-1]) if t[-1] > 0 else float(frac[0])
        for what in ("bound", "open"):
            col = f"{grp.label}:{what}"
            if col in columns:
                v = columns[col]
                m[f"{col}:peak"] = int(v.max())
                m[f"{col}:time_to_peak_ms"] = float(t[int(np.argmax(v))])
                m[f"{col}:integral_ms"] = float(np.trapezoid(v, t))
    m.update(occupancy_metrics(cm, columns))
    for what in ("taken_up", "escaped", "degraded"):
        m[f"fraction_{what}"] = m[what] / released if released else float("nan")
    if cm.model.clamp is not None:
        currents = {k: v for k, v in columns.items() if k.endswith("current_pA")}
        m.update(electrophysiology.run_current_metrics(cm, columns, cm.model.clamp, currents=currents))
    m.update(trains.train_metrics(cm, columns))     # per-stimulus responses, paired-pulse ratios
    return m


def prepared_kernel(cm: CompiledModel) -> _engine.PreparedModel:
    """The kernel's checked tables of ``cm`` (``_engine.prepare``), made once per compiled model.

    Kept on ``cm``; a pickled copy carries only the kernel model and prepares again where it is
    unpickled (``PreparedModel.__reduce__``). Two threads racing here prepare the same tables twice,
    which is harmless.
    """
    prepared = cm.__dict__.get("_prepared_kernel")
    if prepared is None or prepared.kernel_model is not cm.kernel:
        prepared = cm._prepared_kernel = _engine.prepare(cm.kernel)
    return prepared


def clearance_half_time_ms(times_ms, free) -> float:
    """Time from the peak of ``free`` until it first falls to half the peak, the crossing
    interpolated linearly between the two samples around it (not rounded to a sample, which made
    the metric take two or three values over an ensemble). NaN when there is no peak or it never
    halves within the run. For an exponential the error is at most dt²/(8τ) (linear
    interpolation of a convex function)."""
    t = np.asarray(times_ms, dtype=np.float64)
    y = np.asarray(free, dtype=np.float64)
    i_peak = int(np.argmax(y))
    half = 0.5 * y[i_peak]
    if not half > 0:
        return float("nan")
    below = np.flatnonzero(y[i_peak:] <= half)
    if not len(below):
        return float("nan")
    k = i_peak + int(below[0])          # y[k-1] > half >= y[k], and k > i_peak
    y0, y1 = y[k - 1], y[k]
    t_cross = t[k - 1] + (y0 - half) / (y0 - y1) * (t[k] - t[k - 1])
    return float(t_cross - t[i_peak])


def site_totals(model) -> dict:
    """``{group label: number of sites}`` of a model (SynapseModel or CompiledModel): the count
    every run places (fixed by the density and the region, not drawn per run)."""
    cm = _as_compiled(model)
    return {grp.label: int(cm.site_count(grp)) for grp in cm.model.sites}


def occupancy_metrics(cm: CompiledModel, columns: dict) -> dict:
    """Per site group: ``<label>:sites`` (the total), and the fraction of those sites holding
    transmitter (``<label>:occupied`` over the total; a site counts once whatever the number of
    molecules it holds), as ``<label>:occupancy_fraction:peak`` and the time average over the
    run, ``<label>:occupancy_fraction:mean``. A group with no sites gets NaN fractions."""
    t = cm.sample_times_ms
    out = {}
    for grp, (first, names) in zip(cm.model.sites, cm.group_states):
        n_sites = int(sum(columns[f"{grp.label}:{n}"][0] for n in names))
        out[f"{grp.label}:sites"] = n_sites
        occupied = columns[f"{grp.label}:occupied"].astype(np.float64)
        if n_sites == 0:
            peak = mean = float("nan")
        else:
            frac = occupied / n_sites
            peak = float(frac.max())
            mean = float(np.trapezoid(frac, t) / t[-1]) if t[-1] > 0 else float(frac[0])
        out[f"{grp.label}:occupancy_fraction:peak"] = peak
        out[f"{grp.label}:occupancy_fraction:mean"] = mean
    return out


def simulate_columns(cm: CompiledModel, seed: int, run_index: int, keep_positions: bool = False):
    """Run one simulation; return (named columns, raw kernel output). No pandas: the ensemble path."""
    ss = run_seed_sequence(seed, run_index)
    run = cm.draw_run(ss)
    out = _engine.simulate(prepared_kernel(cm), run, ss.generate_state(4, np.uint64), keep_positions)
    return series_columns(cm, out), out


def run_one(model, seed: int = 0, run_index: int = 0, keep_positions: bool = False,
            max_steps=budget.DEFAULT_MAX_STEPS) -> RunResult:
    """Run one simulation of ``model`` (a SynapseModel or CompiledModel).

    The run's stream is ``SeedSequence(seed, spawn_key=(run_index,))``: the same (seed, run_index)
    gives bit-identical results in an ensemble or alone. A run whose estimated work exceeds
    ``max_steps`` molecule-steps is refused (:mod:`mcsyn.budget`; None: no limit).
    """
    import pandas as pd   # pandas: start-up cost, load on use
    cm = _as_compiled(model)
    budget.check(cm, max_steps)
    columns, out = simulate_columns(cm, seed, run_index, keep_positions)
    series = pd.DataFrame(columns, index=pd.Index(cm.sample_times_ms, name="time_ms"))
    positions = None
    if keep_positions:
        positions = {k: out[k] for k in ("slab_positions", "volume_positions", "slab_species", "volume_images")}
    return RunResult(series, run_metrics(cm, columns), seed, run_index, positions)


@dataclass
class Ensemble:
    """Many runs of one model: ``metrics`` has one row per run, ``series`` holds every run's time
    series stacked as (n_runs, n_samples, n_columns) with ``columns`` naming the last axis."""

    model: CompiledModel
    seed: int
    metrics: pd.DataFrame
    series: np.ndarray
    columns: list
    times_ms: np.ndarray

    def run_series(self, run_index: int) -> pd.DataFrame:
        import pandas as pd   # pandas: start-up cost, load on use
        return pd.DataFrame(self.series[run_index], columns=self.columns,
                            index=pd.Index(self.times_ms, name="time_ms"))

    def mean_series(self) -> pd.DataFrame:
        """Mean over runs of every time series column."""
        import pandas as pd   # pandas: start-up cost, load on use
        return pd.DataFrame(self.series.mean(axis=0), columns=self.columns,
                            index=pd.Index(self.times_ms, name="time_ms"))

    def summary(self) -> pd.DataFrame:
        """Mean, sd and standard error of each numeric metric across runs."""
        import pandas as pd   # pandas: start-up cost, load on use
        num = self.metrics.drop(columns=["run", "seed"]).select_dtypes("number")
        n = len(num)
        out = pd.DataFrame({"mean": num.mean(), "sd": num.std(ddof=1) if n > 1 else np.nan})
        out["sem"] = out["sd"] / np.sqrt(n) if n > 1 else np.nan
        return out


def run(model, n_runs: int = 1, seed: int = 0, workers: int | None = None,
        max_steps=budget.DEFAULT_MAX_STEPS) -> Ensemble:
    """Run ``n_runs`` independent simulations on ``workers`` threads (default: all cores).

    The kernel releases the GIL, so threads run in parallel. Results do not depend on ``workers``.
    ``max_steps`` bounds the estimated work of each run (:mod:`mcsyn.budget`; None: no limit).
    """
    if not isinstance(n_runs, (int, np.integer)) or n_runs < 1:
        raise ValueError(f"n_runs = {n_runs!r} is not valid: must be an integer >= 1")
    if workers is None:
        workers = os.cpu_count() or 1
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers = {workers!r} is not valid: must be an integer >= 1")
    import pandas as pd   # pandas: start-up cost, load on use
    cm = _as_compiled(model)
    budget.check(cm, max_steps, n_runs)

    def one(i):
        columns, _ = simulate_columns(cm, seed, i)
        return columns, run_metrics(cm, columns)

    if workers == 1 or n_runs == 1:
        results = [one(i) for i in range(n_runs)]
    else:
        with ThreadPoolExecutor(max_workers=int(workers)) as pool:
            try:
                results = list(pool.map(one, range(n_runs)))
            except BaseException:   # Ctrl-C: the runs in the other threads end now, not when they finish
                stop_thread_pool(pool)
                raise
    names = list(results[0][0])
    series = np.stack([np.column_stack([cols[c] for c in names]) for cols, _ in results])
    rows = [{"run": i, "seed": seed, **m} for i, (_, m) in enumerate(results)]
    return Ensemble(cm, seed, pd.DataFrame(rows), series, names, cm.sample_times_ms)
