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
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import math
import os
import re
import signal
import sys
import tempfile
import threading
import traceback
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as _cf_wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats as _stats
from .compile import CompiledModel, compile_model
from .errors import ModelError
from .model import SynapseModel
from .simulate import SERIES_COLUMNS, run_metrics, series_columns, simulate_columns
from .storage import (CONDITIONS_FILE, FAILURES_FILE, FORMAT_VERSION, METRICS_FILE, TIMECOURSE_FILE,
                      ResultDir, now_iso, to_plain)

BACKENDS = ("threads", "processes", "dask")
DEFAULT_QUANTILES = (0.05, 0.25, 0.75, 0.95)
DEFAULT_TIME_POINTS = 501
IN_MEMORY_TRACE_LIMIT_BYTES = 256 * 2 ** 20
INT32_MAX = np.iinfo(np.int32).max
FAIL_FAST_RUNS = 8          # stop an ensemble whose first runs all fail (a broken model or install)


# ======================================================================================================
# Conditions

@dataclass
class Condition:
    """One resolved model to run, with its name and the labels that become table columns.

    ``drugs`` maps drug names to concentrations in M; ``source`` says how the model was built
    (preset, overrides, parameter values) and is written to the result's configuration.
    """

    name: str
    model: SynapseModel
    labels: dict = field(default_factory=dict)
    drugs: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)


def condition_seed(seed: int, name: str) -> int:
    """The stream seed of the condition ``name`` in an ensemble seeded with ``seed`` (0 <= s < 2**63)."""
    digest = hashlib.sha256(f"mcsyn:{int(seed)}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _format_value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_dose(molar: float, digits: int = 4, micro: str = "u") -> str:
    """A concentration in a readable unit with ``digits`` significant digits
    (``4.6416e-10`` -> ``"464.2 pM"``); ``micro="µ"`` for figures."""
    if not math.isfinite(molar):
        return "n/a"
    for factor, unit in ((1.0, "M"), (1e-3, "mM"), (1e-6, micro + "M"), (1e-9, "nM"), (1e-12, "pM")):
        if abs(molar) >= factor or unit == "pM":
            return f"{molar / factor:.{digits}g} {unit}"


def treatment_name(drugs: dict) -> str:
    """``"control"`` for no drug, else ``"fluoxetine 25 nM"`` (several joined by ``" + "``)."""
    active = {d: c for d, c in drugs.items() if c > 0}
    if not active:
        return "control"
    return " + ".join(f"{d} {format_dose(c)}" for d, c in active.items())


def parse_concentration(drug: str, value, field: str | None = None) -> float:
    """A drug concentration in M from a number (M), a quantity (``"25 nM"``) or an occupancy of a
    transporter or receptor (``"80%SERT"``, ``"80% SERT"``: the concentration that gives 80 %
    occupancy, from :func:`mcsyn.drugs.concentration_for_occupancy`)."""
    field = field or f"drugs.{drug}"
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9.]+(?:[eE][-+]?\d+)?)\s*%\s*@?\s*([A-Za-z][\w-]*)\s*", value)
        if m:
            occ = float(m.group(1)) / 100.0
            if not (0 < occ < 1):
                raise ModelError(field, value, "an occupancy must be strictly between 0% and 100%")
            from . import drugs as _drugs
            return float(_drugs.concentration_for_occupancy(drug, m.group(2), occ))
    from .units import parse_quantity
    return parse_quantity(value, "M", field)


def parse_drug_option(text: str):
    """``"NAME=CONC"`` (``CONC`` as in :func:`parse_concentration`) -> ``(name, concentration_M)``."""
    if "=" not in text:
        raise ValueError(f"drug {text!r} is not NAME=CONCENTRATION (e.g. fluoxetine=25nM or fluoxetine=80%SERT)")
    name, value = (s.strip() for s in text.split("=", 1))
    if not name:
        raise ValueError(f"drug {text!r} has no name before '='")
    return name, parse_concentration(name, value, field=f"--drug {name}")


def dose_series(drug: str, concentrations, control: bool = True) -> list:
    """Treatments for a dose–response sweep: ``[{}] + [{drug: c} for c in concentrations]``.

    Concentrations may be numbers (M) or strings (``"10 nM"``, ``"80%SERT"``); a 0 is the control."""
    doses = [parse_concentration(drug, c) for c in concentrations]
    out = [{}] if control and 0.0 not in doses else []
    out += [{drug: c} if c > 0 else {} for c in doses]
    return out


def log_doses(low_M: float, high_M: float, n: int) -> np.ndarray:
    """``n`` concentrations evenly spaced in log10 between ``low_M`` and ``high_M``."""
    if not (0 < low_M < high_M) or n < 2:
        raise ValueError(f"need 0 < low ({low_M}) < high ({high_M}) and n >= 2 (got {n})")
    return np.logspace(math.log10(low_M), math.log10(high_M), int(n))


_PATH_PART = re.compile(r"^([A-Za-z_]\w*)(?:\[([^\]]+)\])?$")


def set_parameter(model: SynapseModel, path: str, value):
    """Set a field of ``model`` in place by a dotted path: ``"geometry.cleft_height_um"``,
    ``"timing.duration_ms"``, ``"releases[0].molecules"``, ``"sites[SERT].density_per_um2"``
    (a site group by label or index). The value is checked when the model is compiled."""
    obj = model
    parts = path.split(".")
    for k, part in enumerate(parts):
        m = _PATH_PART.match(part)
        if not m:
            raise ModelError(path, value, f"{part!r} is not a field name or name[index]")
        attr, index = m.groups()
        last = k == len(parts) - 1 and index is None
        if not hasattr(obj, attr):
            fields = [f for f in vars(obj)] if hasattr(obj, "__dict__") else []
            raise ModelError(path, value, f"{type(obj).__name__} has no field {attr!r}; fields: {fields}")
        if last:
            setattr(obj, attr, value)
            return model
        obj = getattr(obj, attr)
        if index is not None:
            seq = obj
            if index.lstrip("-").isdigit():
                obj = seq[int(index)]
            else:
                found = [x for x in seq if getattr(x, "label", getattr(x, "name", None)) == index]
                if not found:
                    labels = [getattr(x, "label", getattr(x, "name", None)) for x in seq]
                    raise ModelError(path, value, f"no item {index!r} in {attr}; items: {labels}")
                obj = found[0]
            if k == len(parts) - 1:
                raise ModelError(path, value, "the path must end at a field, not at a list item")
    return model


def _load_base(base):
    """Resolve a preset name or a configuration path into something buildable."""
    if isinstance(base, (str, Path)):
        text = str(base)
        if isinstance(base, str):
            try:
                from . import presets
                if text in presets.names():
                    return ("preset", text)
            except ImportError:
                pass
        p = Path(text)
        if p.is_file():
            from . import config
            return ("config", config.load(p))
        try:
            from . import presets
            known = ", ".join(presets.names())
        except ImportError:
            known = "(presets unavailable)"
        raise ValueError(f"{text!r} is neither a preset ({known}) nor a configuration file")
    if isinstance(base, SynapseModel):
        return ("model", base)
    if hasattr(base, "build") and callable(base.build):
        return ("config", base)
    if callable(base):
        return ("function", base)
    raise TypeError(f"cannot build conditions from a {type(base).__name__}: give a preset name, a configuration "
                    "(path or SynapseConfig), a SynapseModel or a function(drugs=..., **params) -> SynapseModel")


def _build_model(kind, obj, drugs, overrides, mode, adaptation):
    if kind == "preset":
        from . import presets
        return presets.build(obj, drugs=drugs or None, mode=mode or "equilibrium", adaptation=adaptation,
                             **overrides)
    if kind == "config":
        from . import presets
        cfg = copy.deepcopy(obj)
        cfg.drugs = {**cfg.drugs, **drugs}
        if overrides:
            cfg.overrides = presets.merge(cfg.overrides, overrides)
        if mode is not None:
            cfg.mode = mode
        if adaptation is not None:
            cfg.adaptation = adaptation
        return cfg.build()
    if kind == "model":
        if drugs:
            raise ValueError("drugs cannot be applied to a bare SynapseModel: give a preset name or a configuration")
        if overrides:
            raise ValueError(f"parameters {sorted(overrides)} need a dotted path into the model "
                             "(e.g. 'geometry.cleft_height_um')")
        return copy.deepcopy(obj)
    return obj(drugs=dict(drugs), **overrides)


def _base_drugs(kind, obj) -> dict:
    """Drugs a configuration already contains, in M (they join every treatment)."""
    if kind != "config":
        return {}
    return {d: parse_concentration(d, c) for d, c in (getattr(obj, "drugs", None) or {}).items()}


def make_conditions(base, treatments=None, params=None, *, mode: str | None = None, adaptation=None,
                    **overrides) -> list:
    """A grid of conditions: every treatment × every combination of parameter values.

    Parameters
    ----------
    base : str, path, SynapseConfig, SynapseModel or callable
        A preset name (``mcsyn.presets.names()``), a TOML configuration file or object, a model, or
        a function ``f(drugs=dict, **params) -> SynapseModel``.
    treatments : list of dict, optional
        Each a ``{drug: concentration}`` mapping (numbers in M, quantities like ``"25 nM"`` or
        occupancies like ``"80%SERT"``); ``{}`` is the control. Default: one drug-free condition.
        :func:`dose_series` builds a dose–response list.
    params : dict, optional
        ``{name: [values...]}`` swept as a full grid. For presets and configurations a name is an
        override of the specification (``"geometry.cleft_radius_um"``, ``"sites.SERT.vmax"``, values
        with units allowed); for models and functions a dotted name sets a model field after building
        (``"geometry.cleft_height_um"``; see :func:`set_parameter`) and a plain name is a keyword of
        the function. A name with an index (``"releases[0].molecules"``, ``"sites[SERT].count"``)
        always sets the built model's field.
    mode, adaptation, **overrides
        Drug mode (default: the configuration's, or ``"equilibrium"``), chronic adaptation and
        specification overrides for presets and configurations (:func:`mcsyn.presets.build`);
        ``overrides`` are keywords of a function base.

    Returns
    -------
    list of Condition
        Labels: ``drug`` (``"control"``, a drug name, or ``"a+b"``) and ``dose_M`` (0 for the control,
        NaN for combinations) when treatments are given, one ``<drug>_M`` column per drug when a
        treatment combines drugs, and one column per swept parameter.
    """
    kind, obj = _load_base(base)
    if treatments is None:
        treatments = [{}]
        with_drug_labels = False
    else:
        treatments = [dict(t) for t in treatments]
        with_drug_labels = True
        if not treatments:
            raise ValueError("treatments is empty: give at least one ({} is the control)")
    parsed = []
    for t in treatments:
        if not isinstance(t, dict):
            raise TypeError(f"a treatment must be a dict {{drug: concentration}}, got {t!r}")
        parsed.append({d: parse_concentration(d, c) for d, c in t.items()})
    fixed = _base_drugs(kind, obj)
    parsed = [{**fixed, **t} for t in parsed]
    combos = any(sum(c > 0 for c in t.values()) > 1 for t in parsed)
    all_drugs = list(dict.fromkeys(d for t in parsed for d in t))
    params = dict(params or {})
    for k, v in params.items():
        if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
            raise TypeError(f"params[{k!r}] must be a list of values, got {v!r}")
    grid = list(itertools.product(*[list(v) for v in params.values()])) if params else [()]
    out = []
    for drugs in parsed:
        active = {d: c for d, c in drugs.items() if c > 0}
        for values in grid:
            pvals = dict(zip(params, values))
            labels = {}
            if with_drug_labels:
                labels["drug"] = "+".join(active) if active else "control"
                labels["dose_M"] = (next(iter(active.values())) if len(active) == 1 else
                                    0.0 if not active else float("nan"))
                if combos:
                    for d in all_drugs:
                        labels[f"{d}_M"] = active.get(d, 0.0)
            labels.update(pvals)
            on_model = {k: v for k, v in pvals.items() if _is_model_path(k, kind)}
            build_kw = dict(overrides)
            build_kw.update({k: v for k, v in pvals.items() if k not in on_model})
            model = _build_model(kind, obj, active, build_kw, mode, adaptation)
            for k, v in on_model.items():
                set_parameter(model, k, v)
            name = treatment_name(active) if (with_drug_labels or not pvals) else ""
            if pvals:
                pstr = ", ".join(f"{k}={_format_value(v)}" for k, v in pvals.items())
                name = f"{name}, {pstr}" if name else pstr
            source = {"base": obj if kind == "preset" else kind, "mode": mode,
                      "overrides": {k: v for k, v in build_kw.items()},
                      "parameters": pvals}
            if adaptation is not None:
                source["adaptation"] = adaptation
            out.append(Condition(name=name, model=model, labels=labels, drugs=active, source=source))
    _check_unique([c.name for c in out])
    return out


def _is_model_path(name: str, kind: str) -> bool:
    """Whether a swept parameter sets a field of the built model (else it goes to the builder)."""
    return "[" in name or ("." in name and kind in ("model", "function"))


def _check_unique(names):
    seen = set()
    for n in names:
        if n in seen:
            raise ValueError(f"two conditions are named {n!r}; condition names must be unique")
        seen.add(n)


def _as_conditions(conditions) -> list:
    if isinstance(conditions, Condition):
        return [conditions]
    if isinstance(conditions, SynapseModel):
        return [Condition(name=conditions.name or "model", model=conditions)]
    if isinstance(conditions, (str, Path)):
        return make_conditions(conditions)
    conditions = list(conditions)
    if not conditions:
        raise ValueError("no conditions to run")
    out = []
    for i, c in enumerate(conditions):
        if isinstance(c, SynapseModel):
            c = Condition(name=c.name if c.name else f"model {i}", model=c)
        if not isinstance(c, Condition):
            raise TypeError(f"conditions[{i}] is a {type(c).__name__}, not a Condition or SynapseModel")
        out.append(c)
    _check_unique([c.name for c in out])
    return out


# ======================================================================================================
# Observables and the time grid

def available_observables(cm: CompiledModel) -> list:
    """Every time-series column of a run of ``cm`` (aggregates, then every site state)."""
    dummy = {"series": np.zeros((1, len(SERIES_COLUMNS)), dtype=np.int64),
             "states": np.zeros((1, cm.kernel.n_states), dtype=np.int64)}
    return list(series_columns(cm, dummy))


def default_observables(cm: CompiledModel) -> list:
    """The aggregate time series that can be non-zero for this model: free molecules (in total and
    per compartment), bound, cumulative released/taken up/escaped/degraded/effluxed, and each site
    group's bound and open counts. Per-state columns are left out (ask for them by name)."""
    model = cm.model
    kinds = {t.kind for g in model.sites for t in g.scheme.transitions}
    g = model.geometry
    obs = ["free", "free_cleft"]
    if g.outside == "band":
        obs.append("free_band")
    if g.outside == "volume":
        obs.append("free_volume")
    obs += ["bound", "released"]
    if "uptake" in kinds:
        obs.append("taken_up")
    if g.outside in ("open", "volume") or (g.outside == "band" and g.band_outer_boundary == "absorbing"):
        obs.append("escaped")
    if "degrade" in kinds or model.degradation:
        obs.append("degraded")
    if "efflux" in kinds:
        obs.append("effluxed")
    for grp in model.sites:
        obs.append(f"{grp.label}:bound")
        if grp.scheme.open_states:
            obs.append(f"{grp.label}:open")
    return obs


def time_indices(n_samples: int, time_points: int | None) -> np.ndarray:
    """Sample indices kept for the time course: every sample, or every k-th so that at most
    ``time_points`` remain (the first sample always included)."""
    if time_points is None or n_samples <= time_points:
        return np.arange(n_samples)
    if time_points < 2:
        raise ValueError(f"time_points = {time_points!r} is not valid: must be >= 2 or None")
    stride = math.ceil((n_samples - 1) / (time_points - 1))
    return np.arange(0, n_samples, stride)


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
                if v.size and (v.max() > INT32_MAX or v.min() < -INT32_MAX):
                    raise OverflowError(f"observable {name!r} exceeds the int32 range of stored traces")
                traces[k, j] = v
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


def _process_worker_init():
    # the parent decides when to stop; Ctrl-C in the terminal must not kill the pool mid-batch
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ======================================================================================================
# Executors behind one interface

class _ConcurrentBackend:
    def __init__(self, kind, workers, models, tokens):
        self.kind = kind
        self.workers = workers
        self.models = models
        self.tokens = tokens
        if kind == "threads":
            self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mcsyn")
        else:
            import multiprocessing as mp
            ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
            if ctx.get_start_method() == "forkserver":
                ctx.set_forkserver_preload(["mcsyn.ensemble"])
            self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_process_worker_init)
        self.compiled = {}

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


# ======================================================================================================
# Accumulating results in run order

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


# ======================================================================================================
# Results

@dataclass
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
    _traces: dict = field(default_factory=dict, repr=False)
    _tmpdir: object = field(default=None, repr=False)

    def tables(self) -> dict:
        return {METRICS_FILE: self.metrics, TIMECOURSE_FILE: self.timecourse, FAILURES_FILE: self.failures,
                CONDITIONS_FILE: self.conditions}

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


# ======================================================================================================
# The ensemble

def _default_workers():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _version():
    from . import __version__
    return __version__


def _quantile_name(q: float) -> str:
    return f"q{100 * q:g}"


def _check_settings(n_runs, seed, workers, backend, batch_size, quantiles, errors, time_points):
    if isinstance(n_runs, bool) or not isinstance(n_runs, (int, np.integer)) or n_runs < 1:
        raise ValueError(f"n_runs = {n_runs!r} is not valid: must be an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed = {seed!r} is not valid: must be an integer >= 0")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1):
        raise ValueError(f"workers = {workers!r} is not valid: must be an integer >= 1")
    if backend not in BACKENDS:
        raise ValueError(f"backend = {backend!r} is not valid: must be one of {', '.join(map(repr, BACKENDS))}")
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"batch_size = {batch_size!r} is not valid: must be an integer >= 1")
    for q in quantiles:
        if not (0 < q < 1):
            raise ValueError(f"quantile {q!r} is not valid: quantiles must be in (0, 1)")
    if errors not in ("raise", "keep"):
        raise ValueError(f"errors = {errors!r} is not valid: must be 'raise' or 'keep'")
    if time_points is not None and (not isinstance(time_points, (int, np.integer)) or time_points < 2):
        raise ValueError(f"time_points = {time_points!r} is not valid: must be an integer >= 2 or None")


def _resolved_description(model) -> dict:
    """What config.toml records of a condition's model: its resolved synapse configuration
    (:class:`mcsyn.config.SynapseConfig`, loadable with ``SynapseConfig.from_dict``) when it was
    built from a preset or configuration, and always the complete model as simulated."""
    out = {}
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "to_dict"):
        out["config"] = cfg.to_dict()
    out["model"] = model
    return out


def _model_fingerprint(model) -> str:
    import json
    return hashlib.sha256(json.dumps(to_plain(model), sort_keys=True, default=str).encode()).hexdigest()


def run_ensemble(conditions, n_runs: int = 100, seed: int = 0, *, workers: int | None = None,
                 backend: str = "threads", scheduler=None, batch_size: int | None = None, out=None,
                 resume: bool = False, overwrite: bool = False, observables=None,
                 quantiles=DEFAULT_QUANTILES, time_points: int | None = DEFAULT_TIME_POINTS,
                 keep_traces: bool = True, progress: bool | None = None, errors: str = "raise",
                 callback=None) -> EnsembleResult:
    """Run ``n_runs`` of every condition and collect tidy statistics.

    Parameters
    ----------
    conditions : Condition, list of Condition or SynapseModel, SynapseModel, or preset name
        What to run (:func:`make_conditions` builds grids).
    n_runs : int
        Runs per condition.
    seed : int
        Ensemble seed; see the module docstring for how run seeds derive from it.
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
        identical to an uninterrupted one. The conditions and settings must be the same. Resuming a
        finished result returns it. If ``out`` does not exist yet, start it.
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

    Returns
    -------
    EnsembleResult

    Raises
    ------
    EnsembleInterrupted
        On Ctrl-C or SIGTERM, after saving the batches that finished.
    RunFailures
        With ``errors="raise"``, when some runs failed.
    """
    quantiles = tuple(float(q) for q in quantiles)
    if scheduler is not None:
        backend = "dask"
    _check_settings(n_runs, seed, workers, backend, batch_size, quantiles, errors, time_points)
    if backend == "dask" and scheduler is None:
        raise ValueError("backend 'dask' needs scheduler= (a distributed.Client or a scheduler address)")
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other")
    if resume and out is None:
        raise ValueError("resume needs out= (the result directory to continue)")
    if resume and not keep_traces:
        raise ValueError("resume needs keep_traces=True (the time-course statistics are rebuilt from stored traces)")
    conds = _as_conditions(conditions)
    n_runs = int(n_runs)
    seed = int(seed)

    # ---- compile (validates every model before any run) and settle the per-condition layout
    compiled = [compile_model(c.model) for c in conds]
    layouts = []
    for c, cm in zip(conds, compiled):
        avail = available_observables(cm)
        if observables is None:
            obs = default_observables(cm)
        elif observables == "all":
            obs = avail
        else:
            obs = list(observables)
            bad = [o for o in obs if o not in avail]
            if bad:
                raise ValueError(f"observable(s) {bad} do not exist for condition {c.name!r}; available: {avail}")
        t_index = time_indices(len(cm.sample_times_ms), time_points)
        layouts.append((obs, t_index, cm.sample_times_ms[t_index]))
    seeds = [condition_seed(seed, c.name) for c in conds]

    settings = {"n_runs": n_runs, "seed": seed, "quantiles": list(quantiles), "time_points": time_points,
                "keep_traces": bool(keep_traces),
                "conditions": [{"name": c.name, "seed": s, "labels": to_plain(c.labels), "drugs": to_plain(c.drugs),
                                "model_sha256": _model_fingerprint(c.model), "observables": obs,
                                "times_ms": times.tolist()}
                               for c, s, (obs, _, times) in zip(conds, seeds, layouts)]}
    config = {"ensemble": {"n_runs": n_runs, "seed": seed, "quantiles": list(quantiles),
                           "time_points": time_points, "keep_traces": bool(keep_traces)},
              "conditions": [{"name": c.name, "seed": s, "labels": c.labels, "drugs": c.drugs, "source": c.source,
                              "observables": obs, **_resolved_description(c.model)}
                             for c, s, (obs, _, _) in zip(conds, seeds, layouts)]}

    # ---- the result directory: fresh, or resumed
    rd = ResultDir(out) if out is not None else None
    done_rows = {}
    meta = None
    resuming = rd is not None and resume and rd.is_result()
    if resuming:
        meta = rd.read_metadata()
        _check_resumable(meta, settings, rd.path)
        if meta.get("status") == "complete":
            from .storage import load_result
            return load_result(rd.path)
        done_rows = rd.read_chunks()
    elif rd is not None:
        if resume and rd.exists_nonempty():
            raise FileExistsError(f"cannot resume {rd.path}: it is not an mcsyn result directory")
        rd.create(overwrite=overwrite)
        rd.write_config(config)
    n_workers = int(workers) if workers is not None else _default_workers()
    session = {"started": now_iso(), "backend": backend, "workers": n_workers if backend != "dask" else None,
               "scheduler": None, "python": sys.version.split()[0], "numpy": np.__version__,
               "pandas": pd.__version__, "mcsyn": _version()}
    if meta is None:
        meta = {"format": FORMAT_VERSION, "mcsyn_version": _version(), "created": now_iso(), "sessions": [],
                **settings}
    meta["sessions"].append(session)
    meta["status"] = "running"
    if rd is not None:
        rd.write_metadata(meta)

    # ---- trace stores
    tmpdir = None
    traces = {}
    if keep_traces:
        total_bytes = sum(4 * len(o) * n_runs * len(t) for o, t, _ in layouts)
        if rd is None and total_bytes > IN_MEMORY_TRACE_LIMIT_BYTES:
            tmpdir = tempfile.TemporaryDirectory(prefix="mcsyn-traces-")
            store = ResultDir(tmpdir.name)
        else:
            store = rd
        for ci, (obs, t_index, _) in enumerate(layouts):
            shape = (len(obs), n_runs, len(t_index))
            if store is None:
                traces[ci] = np.zeros(shape, dtype=np.int32)
            else:
                reuse = resuming and store.trace_path(ci).is_file()
                if done_rows.get(ci) and not reuse:
                    raise FileNotFoundError(f"cannot resume {rd.path}: {store.trace_path(ci)} is missing")
                traces[ci] = store.open_traces(ci, shape, create=not reuse)

    states = []
    for ci, (obs, t_index, _) in enumerate(layouts):
        done = {int(r) for f in done_rows.get(ci, []) for r in f["run"]}
        states.append(_ConditionState(n_runs, (len(obs), len(t_index)), traces.get(ci), done))
    rows = {ci: list(done_rows.get(ci, [])) for ci in range(len(conds))}
    failures = []

    # ---- work list
    missing = [(ci, [r for r in range(n_runs) if r not in states[ci].done_before]) for ci in range(len(conds))]
    total_missing = sum(len(m) for _, m in missing)
    if batch_size is None:
        slots = n_workers if backend != "dask" else max(n_workers, 1)
        batch_size = max(1, min(64, math.ceil(total_missing / (8 * slots)))) if total_missing else 1
    batches = [(ci, runs[i:i + batch_size]) for ci, runs in missing for i in range(0, len(runs), batch_size)]
    n_total = n_runs * len(conds)
    n_done = n_total - total_missing

    counts = {"ok": 0, "failed": 0}

    def consume(out_: BatchOutput):
        nonlocal n_done
        ci = out_.condition
        counts["ok"] += len(out_.runs)
        counts["failed"] += len(out_.failures)
        if traces.get(ci) is not None and out_.runs:
            arr = traces[ci]
            idx = np.asarray(out_.runs)
            arr[:, idx, :] = np.transpose(out_.traces, (1, 0, 2))
        c = conds[ci]
        if out_.runs:
            # one small numpy-backed frame per batch: far lighter than a dict per run
            frame = pd.DataFrame([{"condition": c.name, **c.labels, "run": r, "seed": seeds[ci], **m}
                                  for r, m in zip(out_.runs, out_.metrics)])
            if rd is not None:
                rd.write_chunk(ci, out_.runs[0], frame)
            rows[ci].append(frame)
        for f in out_.failures:
            failures.append({"_c": ci, "condition": c.name, "run": int(f["run"]), "seed": seeds[ci],
                             "error": f["error"], "traceback": f["traceback"]})
        states[ci].add(out_.runs, out_.traces, [f["run"] for f in out_.failures])
        n_done += len(out_.runs) + len(out_.failures)
        bar.update(len(out_.runs) + len(out_.failures))
        if callback is not None:
            callback(n_done, n_total)

    if progress is None:
        progress = sys.stderr.isatty()
    from tqdm.auto import tqdm
    bar = tqdm(total=n_total, initial=n_done, disable=not progress, unit="run", delay=2.0,
               desc="mcsyn", dynamic_ncols=True, file=sys.stderr)

    tokens = [uuid.uuid4().hex for _ in conds]
    backend_obj = None
    in_flight = {}
    old_term = None
    interrupted = None
    try:
        if threading.current_thread() is threading.main_thread():
            old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        if batches:
            models = [c.model for c in conds]
            if backend == "dask":
                backend_obj = _DaskBackend(scheduler, models, tokens)
                session["scheduler"] = backend_obj.address
                session["workers"] = backend_obj.workers
            else:
                backend_obj = _ConcurrentBackend(backend, n_workers, models, tokens)
                backend_obj.compiled = dict(enumerate(compiled))
            _drive(backend_obj, batches, seeds, layouts, consume, states, in_flight,
                   give_up=lambda: counts["ok"] == 0 and counts["failed"] >= FAIL_FAST_RUNS,
                   max_in_flight=2 * backend_obj.workers, max_buffered=8 * backend_obj.workers * batch_size)
    except KeyboardInterrupt as exc:
        interrupted = exc
    except BaseException:
        # an error of the machinery itself (disk full, a lost scheduler): stop the workers, keep
        # what is on disk, and let the error through
        if backend_obj is not None:
            _salvage(backend_obj, in_flight, lambda out_: None)
        if rd is not None:
            meta["status"] = "error"
            rd.write_metadata(meta)
        raise
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        bar.close()

    if interrupted is not None:
        if backend_obj is not None:
            try:
                _salvage(backend_obj, in_flight, consume)
            except KeyboardInterrupt:
                pass
        for arr in traces.values():
            if hasattr(arr, "flush"):
                arr.flush()
        meta["status"] = "interrupted"
        session["ended"] = now_iso()
        if rd is not None:
            rd.write_metadata(meta)
        where = f"; {n_done} of {n_total} runs are saved in {rd.path} (resume to finish)" if rd else ""
        why = str(interrupted) or "Ctrl-C"
        raise EnsembleInterrupted(f"ensemble interrupted ({why}){where}",
                                  path=rd.path if rd else None, n_done=n_done, n_total=n_total) from None
    if backend_obj is not None:
        backend_obj.close()

    # ---- finish: tables (a condition finished entirely in an earlier session is fed from disk here)
    for st in states:
        st.drain()
    result = _finish(conds, seeds, layouts, states, rows, failures, quantiles, traces, n_runs)
    result.config = config
    session["ended"] = now_iso()
    gave_up = counts["ok"] == 0 and counts["failed"] >= FAIL_FAST_RUNS and n_done < n_total
    meta["status"] = "complete" if result.failures.empty and not gave_up else \
        "stopped_early" if gave_up else "failed_runs"
    meta["n_failed"] = len(result.failures)
    result.metadata = meta
    result._tmpdir = tmpdir      # a temporary trace store lives as long as the result
    result._traces = {ci: (traces[ci], layouts[ci][0], layouts[ci][2]) for ci in traces}
    if rd is not None:
        for arr in traces.values():
            arr.flush()
        rd.write_tables(result.tables())
        if result.failures.empty:
            rd.remove_chunks()
        rd.write_metadata(meta)
        result.path = rd.path
    if gave_up or (not result.failures.empty and errors == "raise"):
        raise RunFailures(result, stopped_early=gave_up)
    return result


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _check_resumable(meta, settings, path):
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"cannot resume {path}: result format {meta.get('format')!r} != {FORMAT_VERSION}")
    for key in ("n_runs", "seed", "quantiles", "time_points", "keep_traces"):
        if meta.get(key) != settings[key]:
            raise ValueError(f"cannot resume {path}: it was run with {key} = {meta.get(key)!r}, now {settings[key]!r}")
    old = [(c["name"], c["model_sha256"], c["observables"]) for c in meta["conditions"]]
    new = [(c["name"], c["model_sha256"], c["observables"]) for c in settings["conditions"]]
    if old != new:
        raise ValueError(f"cannot resume {path}: its conditions (names, models or observables) differ from these")


def _drive(backend, batches, seeds, layouts, consume, states, in_flight, give_up, max_in_flight, max_buffered):
    """Submit batches through a bounded window and consume results as they finish.

    ``in_flight`` (future -> (condition, runs)) belongs to the caller, so that batches still
    running when the ensemble is interrupted can be saved. When ``give_up()`` turns true (every run
    so far failed), nothing more is submitted."""
    queue = list(reversed(batches))

    def buffered():
        return sum(len(s.pending) for s in states)

    while queue or in_flight:
        if give_up():
            queue.clear()
        while queue and len(in_flight) < max_in_flight and buffered() < max_buffered:
            ci, runs = queue.pop()
            obs, t_index, _ = layouts[ci]
            try:
                fut = backend.submit(ci, seeds[ci], runs, obs, t_index)
            except RuntimeError as exc:  # a broken pool: report this batch, keep going with the others
                consume(_failed_batch(ci, runs, exc))
                continue
            in_flight[fut] = (ci, runs)
        for fut in backend.wait(set(in_flight), timeout=0.5):
            ci, runs = in_flight.pop(fut)
            consume(_batch_result(fut, ci, runs))


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


def _salvage(backend, in_flight, consume):
    """After an interruption: drop queued batches, save the ones that finished or were running.

    Threads cannot be stopped, so running thread batches are waited for (one batch at most per
    worker) and saved; process pools are shut down the same way; Dask futures not yet finished are
    cancelled."""
    if isinstance(backend, _ConcurrentBackend):
        backend.pool.shutdown(wait=True, cancel_futures=True)
    for fut, (ci, runs) in list(in_flight.items()):
        if fut.done() and not fut.cancelled():
            out = _batch_result(fut, ci, runs)
            if out.runs:
                consume(out)
        else:
            fut.cancel()
        in_flight.pop(fut, None)
    if not isinstance(backend, _ConcurrentBackend):
        backend.close(interrupted=True)


def _finish(conds, seeds, layouts, states, rows, failures, quantiles, traces, n_runs) -> EnsembleResult:
    # metrics: condition order, then run order
    label_cols = list(dict.fromkeys(k for c in conds for k in c.labels))
    frames = [f for ci in range(len(conds)) for f in rows[ci]]
    fixed = ["condition", *label_cols, "run", "seed"]
    if frames:
        metrics = pd.concat(frames, ignore_index=True)
        order = {c.name: i for i, c in enumerate(conds)}
        key = metrics["condition"].map(order).to_numpy() * (n_runs + 1) + metrics["run"].to_numpy()
        metrics = metrics.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
        metric_cols = [k for k in metrics.columns if k not in fixed]
        metrics = metrics[fixed + metric_cols]
    else:
        metrics = pd.DataFrame(columns=fixed)
    metrics = metrics.astype({"condition": "str", "run": np.int64, "seed": np.int64})

    failures = sorted(failures, key=lambda f: (f["_c"], f["run"]))
    fail = pd.DataFrame(failures, columns=["condition", "run", "seed", "error", "traceback"])
    fail = fail.astype({"condition": "str", "run": np.int64, "seed": np.int64, "error": "str", "traceback": "str"})

    # per-condition table
    crow = []
    for ci, c in enumerate(conds):
        n_ok = int(states[ci].ok.sum())
        crow.append({"condition": c.name, **c.labels, "seed": seeds[ci], "n_runs": n_runs, "n_ok": n_ok,
                     "n_failed": int((fail["condition"] == c.name).sum())})
    cond_table = pd.DataFrame(crow, columns=["condition", *label_cols, "seed", "n_runs", "n_ok", "n_failed"])
    cond_table = cond_table.astype({"condition": "str", "seed": np.int64, "n_runs": np.int64, "n_ok": np.int64,
                                    "n_failed": np.int64})

    # time course
    parts = []
    qs = (0.5, *quantiles)
    qnames = ["median", *[_quantile_name(q) for q in quantiles]]
    for ci, c in enumerate(conds):
        obs, t_index, times = layouts[ci]
        st = states[ci]
        n_obs, n_t = len(obs), len(times)
        mom = st.moments
        qvals = np.full((len(qs), n_obs, n_t), np.nan)
        arr = traces.get(ci)
        ok_idx = np.flatnonzero(st.ok)
        if arr is not None and len(ok_idx):
            block = max(1, int(32e6 // (8 * len(ok_idx))))
            all_ok = len(ok_idx) == n_runs
            for j in range(n_obs):
                for t0 in range(0, n_t, block):
                    a = np.asarray(arr[j, :, t0:t0 + block])
                    if not all_ok:
                        a = a[ok_idx]
                    qvals[:, j, t0:t0 + block] = np.quantile(a, qs, axis=0)
        data = {"condition": np.full(n_obs * n_t, c.name, dtype=object)}
        for k in label_cols:
            data[k] = [c.labels.get(k, None)] * (n_obs * n_t)
        data["observable"] = np.repeat(np.array(obs, dtype=object), n_t)
        data["time_ms"] = np.tile(np.asarray(times, dtype=np.float64), n_obs)
        data["n"] = np.full(n_obs * n_t, mom.n, dtype=np.int64)
        data["mean"] = mom.mean.ravel() if mom.n else np.full(n_obs * n_t, np.nan)
        data["sd"] = mom.sd.ravel()
        data["sem"] = mom.sem.ravel()
        for name, qv in zip(qnames, qvals):
            data[name] = qv.ravel()
        parts.append(pd.DataFrame(data))
    timecourse = pd.concat(parts, ignore_index=True)
    timecourse["condition"] = timecourse["condition"].astype("str")
    timecourse["observable"] = timecourse["observable"].astype("str")
    # label columns: same dtype as in the metrics table
    for k in label_cols:
        if k in metrics.columns and len(metrics):
            try:
                timecourse[k] = timecourse[k].astype(metrics[k].dtype)
            except (TypeError, ValueError):
                pass
    return EnsembleResult(metrics=metrics, timecourse=timecourse, failures=fail, conditions=cond_table, metadata={})


def sweep(base, drug: str, concentrations, n_runs: int = 100, seed: int = 0, *, params=None,
          mode: str | None = None, adaptation=None, **kwargs) -> EnsembleResult:
    """A dose–response ensemble: the control and every concentration of ``drug`` (see
    :func:`dose_series`); further keywords go to :func:`run_ensemble`."""
    conds = make_conditions(base, treatments=dose_series(drug, concentrations), params=params, mode=mode,
                            adaptation=adaptation)
    return run_ensemble(conds, n_runs=n_runs, seed=seed, **kwargs)
