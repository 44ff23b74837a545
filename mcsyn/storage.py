"""Result directories: what an ensemble writes, how it survives interruptions, how it is loaded.

A result is a directory::

    config.toml          the resolved configuration: ensemble settings and, per condition, its
                         labels, drugs and the complete SynapseModel that was simulated
    metadata.json        mcsyn version, seed, dates, backend and workers of every session, status
    conditions.parquet   one row per condition: labels, seed, runs done and failed
    metrics.parquet      per-run metrics, one row per run (written when the ensemble finishes)
    timecourse.parquet   per condition, observable and time: n, mean, sd, sem, median, quantiles
    failures.parquet     runs that raised: condition, run, seed, error, traceback
    traces/c0000.npy     per condition, the stored traces, an (observables, runs, times) int32 array
                         (absent with ``keep_traces=False``)
    runs/                while an ensemble is running: one Parquet file per finished batch of runs
                         (removed once every run has finished)

Interruption safety: a batch's traces are written into ``traces/`` first and its metrics file in
``runs/`` last, by rename, so a run counts as done exactly when its metrics file exists. A process
that dies (Ctrl-C, SIGTERM, a crash) leaves every finished batch on disk; ``resume=True`` reads them
back and runs only the rest. (Data reach the page cache at once; an operating-system crash before
it writes them back is not covered.)

Parquet is written with pyarrow; :func:`load_result` gives DataFrames identical to the ones the
ensemble returned.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .config import to_toml

FORMAT_VERSION = 1
CONFIG_FILE = "config.toml"
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.parquet"
TIMECOURSE_FILE = "timecourse.parquet"
CONDITIONS_FILE = "conditions.parquet"
FAILURES_FILE = "failures.parquet"
TRACES_DIR = "traces"
RUNS_DIR = "runs"
_CHUNK_RE = re.compile(r"^c(\d{4,})-r(\d{7,})\.parquet$")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ======================================================================================================
# Plain data and TOML

def to_plain(obj):
    """Dataclasses, numpy values and tuples as plain dicts, lists, numbers and strings."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {"type": type(obj).__name__}
        for f in dataclasses.fields(obj):
            out[f.name] = to_plain(getattr(obj, f.name))
        return out
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _without_none(obj):
    # TOML has no null: leave such values out
    if isinstance(obj, dict):
        return {str(k): _without_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_without_none(v) for v in obj if v is not None]
    return obj


def dumps_toml(data: dict) -> str:
    """A TOML document for nested dicts and lists (``None`` values are left out; TOML has no null).

    Lists of dicts become arrays of tables."""
    return to_toml(_without_none(to_plain(data)))


# ======================================================================================================
# Atomic writes

def _atomic_write_bytes(path: Path, data: bytes):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def write_json(path: Path, data: dict):
    _atomic_write_bytes(Path(path), (json.dumps(to_plain(data), indent=2, allow_nan=True) + "\n").encode())


def write_parquet(path: Path, frame: pd.DataFrame):
    """Write ``frame`` to ``path`` (pyarrow, pandas metadata kept) by rename, so that a reader sees the
    old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp, engine="pyarrow", index=False)
    os.replace(tmp, path)


def read_parquet(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path, engine="pyarrow")


# ======================================================================================================
# A result directory

class ResultDir:
    """The files of one result directory (see the module docstring)."""

    def __init__(self, path):
        self.path = Path(path)

    # ---------------------------------------------------------------- creation
    def exists_nonempty(self) -> bool:
        return self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir()))

    def is_result(self) -> bool:
        return (self.path / METADATA_FILE).is_file()

    def create(self, overwrite: bool = False):
        """Make a fresh, empty result directory. An existing non-empty path is an error unless
        ``overwrite`` (then it must be a result directory, which is deleted first)."""
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(f"output path {self.path} exists and is not a directory")
        if self.exists_nonempty():
            if not overwrite:
                raise FileExistsError(f"output directory {self.path} exists and is not empty; choose another, "
                                      "resume it (resume=True / --resume) or overwrite it "
                                      "(overwrite=True / --overwrite)")
            if not self.is_result():
                raise FileExistsError(f"refusing to overwrite {self.path}: it is not an mcsyn result directory "
                                      f"(no {METADATA_FILE})")
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / RUNS_DIR).mkdir()
        return self

    # ---------------------------------------------------------------- small files
    def write_config(self, data: dict):
        _atomic_write_bytes(self.path / CONFIG_FILE, dumps_toml(data).encode())

    def read_config(self) -> dict:
        import tomllib
        with open(self.path / CONFIG_FILE, "rb") as fh:
            return tomllib.load(fh)

    def write_metadata(self, data: dict):
        write_json(self.path / METADATA_FILE, data)

    def read_metadata(self) -> dict:
        if not self.is_result():
            raise FileNotFoundError(f"{self.path} is not an mcsyn result directory (no {METADATA_FILE})")
        with open(self.path / METADATA_FILE) as fh:
            return json.load(fh)

    # ---------------------------------------------------------------- traces
    def trace_path(self, condition_index: int) -> Path:
        return self.path / TRACES_DIR / f"c{condition_index:04d}.npy"

    def open_traces(self, condition_index: int, shape, create: bool):
        """The (observables, runs, times) int32 trace array of one condition, memory-mapped."""
        path = self.trace_path(condition_index)
        if create:
            path.parent.mkdir(exist_ok=True)
            return np.lib.format.open_memmap(path, mode="w+", dtype=np.int32, shape=tuple(shape))
        arr = np.load(path, mmap_mode="r+")
        if arr.shape != tuple(shape) or arr.dtype != np.int32:
            raise ValueError(f"{path} holds an array of shape {arr.shape} ({arr.dtype}), expected {tuple(shape)} int32")
        return arr

    def load_traces(self, condition_index: int):
        path = self.trace_path(condition_index)
        return np.load(path, mmap_mode="r") if path.is_file() else None

    # ---------------------------------------------------------------- batches of finished runs
    def chunk_path(self, condition_index: int, first_run: int) -> Path:
        return self.path / RUNS_DIR / f"c{condition_index:04d}-r{first_run:07d}.parquet"

    def write_chunk(self, condition_index: int, first_run: int, frame: pd.DataFrame):
        """Mark runs as done: their metrics rows (the traces must already be written)."""
        write_parquet(self.chunk_path(condition_index, first_run), frame)

    def read_chunks(self):
        """Metrics of every finished run, by condition index: ``{c: [DataFrame per batch, ...]}``."""
        out = {}
        folder = self.path / RUNS_DIR
        if not folder.is_dir():
            return out
        for p in sorted(folder.iterdir()):
            m = _CHUNK_RE.match(p.name)
            if not m:
                continue
            out.setdefault(int(m.group(1)), []).append(read_parquet(p))
        return out

    def remove_chunks(self):
        shutil.rmtree(self.path / RUNS_DIR, ignore_errors=True)

    # ---------------------------------------------------------------- tables
    def write_tables(self, tables: dict):
        for name, frame in tables.items():
            write_parquet(self.path / name, frame)

    def read_table(self, name: str) -> pd.DataFrame:
        return read_parquet(self.path / name)


# ======================================================================================================
# Saving and loading results

def save_result(result, path, overwrite: bool = False):
    """Write an in-memory :class:`~mcsyn.ensemble.EnsembleResult` to a result directory.

    Traces are written too when the result has them. Returns the path."""
    rd = ResultDir(path).create(overwrite=overwrite)
    if result.config is not None:
        rd.write_config(result.config)
    for c, (arr, _obs, _times) in sorted(result._traces.items()):
        out = rd.open_traces(c, arr.shape, create=True)
        out[...] = arr
        out.flush()
        del out
    rd.write_tables(result.tables())
    rd.remove_chunks()
    meta = dict(result.metadata)
    meta["saved"] = now_iso()
    rd.write_metadata(meta)
    return rd.path


def load_result(path):
    """Load a result directory written by an ensemble or :func:`save_result`.

    Returns an :class:`~mcsyn.ensemble.EnsembleResult` whose DataFrames equal the ones the ensemble
    returned; traces are memory-mapped read-only. An interrupted ensemble (no tables yet) is an
    error: resume it first. A result with failed runs loads (``metadata["status"]`` is then
    ``"failed_runs"`` and ``failures`` lists them).
    """
    from .ensemble import EnsembleResult

    rd = ResultDir(path)
    meta = rd.read_metadata()
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{rd.path}: result format {meta.get('format')!r} is not supported "
                         f"(expected {FORMAT_VERSION})")
    if not (rd.path / METRICS_FILE).is_file():
        raise ValueError(f"{rd.path} holds an unfinished ensemble (status {meta.get('status')!r}): "
                         "run it again with resume to finish it")
    traces = {}
    for c, info in enumerate(meta["conditions"]):
        arr = rd.load_traces(c)
        if arr is not None:
            traces[c] = (arr, list(info["observables"]), np.asarray(info["times_ms"], dtype=np.float64))
    config = rd.read_config() if (rd.path / CONFIG_FILE).is_file() else None
    return EnsembleResult(metrics=rd.read_table(METRICS_FILE), timecourse=rd.read_table(TIMECOURSE_FILE),
                          failures=rd.read_table(FAILURES_FILE), conditions=rd.read_table(CONDITIONS_FILE),
                          metadata=meta, config=config, path=rd.path, _traces=traces)
