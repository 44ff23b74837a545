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
                         and ``journal.jsonl``, their checksums (removed once every run has finished)

Interruption safety: a batch's traces are written into ``traces/`` first and its metrics file in
``runs/`` last, by rename, so a run counts as done exactly when its metrics file exists. A process
that dies (Ctrl-C, SIGTERM, a crash) leaves every finished batch on disk; ``resume=True`` reads them
back and runs only the rest. (Data reach the page cache at once; an operating-system crash before
it writes them back is not covered.)

Integrity (:mod:`mcsyn.ensemble.integrity`): ``metadata.json`` is sealed with its own SHA-256 and
records the size and SHA-256 of every other file; :func:`load_result` refuses a damaged file
(:class:`~mcsyn.ensemble.integrity.ResultDamaged`, naming it), and a resume recomputes the runs of
damaged batches from their seeds. Trace files are allocated in full when created, so that a full
disk is reported before any run (not a SIGBUS later). A resume with more runs than stored extends
the result; nothing is written through a symbolic link.

Parquet is written with pyarrow; :func:`load_result` gives DataFrames identical to the ones the
ensemble returned.
"""
from __future__ import annotations

import datetime as _dt
import errno
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..serialize import dumps_toml, to_plain
from . import integrity as _integrity
from .integrity import (FILES_KEY, JOURNAL_FILE, ResultDamaged, ResultWriteError, digest_bytes, digest_file,
                        refuse_link, refuse_links, run_trace_digest, write_bytes_atomically, writing)
from .results import EnsembleResult

FORMAT_VERSION = 1
CONFIG_FILE = "config.toml"
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.parquet"
TIMECOURSE_FILE = "timecourse.parquet"
CONDITIONS_FILE = "conditions.parquet"
FAILURES_FILE = "failures.parquet"
TRACES_DIR = "traces"
RUNS_DIR = "runs"
TABLE_FILES = {"metrics": METRICS_FILE, "timecourse": TIMECOURSE_FILE, "failures": FAILURES_FILE,
               "conditions": CONDITIONS_FILE}
IN_MEMORY_TRACE_LIMIT_BYTES = 256 * 2 ** 20   # larger trace stores of an ensemble without a directory go to disk
_CHUNK_RE = re.compile(r"^c(\d{4,})-r(\d{7,})\.parquet$")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ======================================================================================================
# Atomic writes

def _atomic_write_bytes(path: Path, data: bytes):
    path = Path(path)
    write_bytes_atomically(path.parent, path, data)


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, engine="pyarrow", index=False)
    return buf.getvalue()


def write_json(path: Path, data: dict):
    _atomic_write_bytes(Path(path), (json.dumps(to_plain(data), indent=2, allow_nan=True) + "\n").encode())


def write_parquet(path: Path, frame: pd.DataFrame):
    """Write ``frame`` to ``path`` (pyarrow, pandas metadata kept) by rename, so that a reader sees the
    old file or the new one, never half of one."""
    _atomic_write_bytes(Path(path), _parquet_bytes(frame))


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
    def entry(self, name: str) -> Path:
        """``path/name``, refused if it is a symbolic link."""
        path = self.path / name
        refuse_link(self.path, path)
        return path

    def write_bytes(self, name: str, data: bytes) -> dict:
        """Write ``data`` to ``name`` (relative) atomically; its size and digest."""
        write_bytes_atomically(self.path, self.path / name, data)
        return digest_bytes(data)

    def write_config(self, data: dict):
        self.write_bytes(CONFIG_FILE, dumps_toml(data).encode())

    def read_config(self) -> dict:
        import tomllib
        try:
            return tomllib.loads(self.entry(CONFIG_FILE).read_bytes().decode())
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ResultDamaged(self.path, CONFIG_FILE, f"not valid TOML: {exc}") from None

    def write_metadata(self, data: dict):
        self.write_bytes(METADATA_FILE, _integrity.seal(data))

    def read_metadata(self) -> dict:
        """The metadata; :class:`ResultDamaged` if it fails its seal."""
        if not self.is_result():
            raise FileNotFoundError(f"{self.path} is not an mcsyn result directory (no {METADATA_FILE})")
        return _integrity.unseal(self.path, METADATA_FILE, self.entry(METADATA_FILE).read_bytes())

    def plots_folder(self) -> Path:
        """``plots/`` inside the directory, refused if it is a symbolic link."""
        return self.entry("plots")

    # ---------------------------------------------------------------- traces
    def trace_path(self, condition_index: int) -> Path:
        return self.path / TRACES_DIR / f"c{condition_index:04d}.npy"

    def trace_entry(self, condition_index: int) -> str:
        return f"{TRACES_DIR}/c{condition_index:04d}.npy"

    def open_traces(self, condition_index: int, shape, create: bool):
        """The (observables, runs, times) int32 trace array of one condition, memory-mapped. A new
        file is allocated in full (a full disk fails here, not with SIGBUS when the map is written)."""
        path = self.trace_path(condition_index)
        refuse_link(self.path, path.parent)
        refuse_link(self.path, path)
        if create:
            return _allocated_memmap(self.path, path, tuple(shape))
        arr = np.load(path, mmap_mode="r+")
        if arr.shape != tuple(shape) or arr.dtype != np.int32:
            raise ValueError(f"{path} holds an array of shape {arr.shape} ({arr.dtype}), expected {tuple(shape)} int32")
        return arr

    def load_traces(self, condition_index: int):
        path = self.trace_path(condition_index)
        refuse_link(self.path, path)
        return np.load(path, mmap_mode="r") if path.is_file() else None

    # ---------------------------------------------------------------- batches of finished runs
    def chunk_path(self, condition_index: int, first_run: int) -> Path:
        return self.path / RUNS_DIR / f"c{condition_index:04d}-r{first_run:07d}.parquet"

    @property
    def journal_path(self) -> Path:
        return self.path / RUNS_DIR / JOURNAL_FILE

    def write_chunk(self, condition_index: int, first_run: int, frame: pd.DataFrame, traces=None):
        """Mark runs as done: their metrics rows (the traces must already be written). The journal
        line (digests of the metrics file and of each run's ``traces``) goes first, the file last,
        by rename: a run is done when its file exists and matches its line."""
        path = self.chunk_path(condition_index, first_run)
        refuse_link(self.path, path.parent)
        data = _parquet_bytes(frame)
        tmp = path.with_name(path.name + ".tmp")
        write_bytes_atomically(self.path, tmp, data)      # tmp.tmp, then tmp: never half a file under tmp
        entry = {"chunk": path.name, "condition": int(condition_index), "runs": [int(r) for r in frame["run"]],
                 **digest_bytes(data), "traces": [run_trace_digest(t) for t in traces] if traces is not None else None}
        _integrity.append_journal(self.path, self.journal_path, entry)
        with writing(self.path):
            os.replace(tmp, path)

    def saved_chunks(self) -> dict:
        """Journal entries whose metrics file is on disk with the recorded size (a cheap count of
        the runs saved; a resume checks them in full)."""
        entries, _ = _integrity.read_journal(self.journal_path)
        folder = self.path / RUNS_DIR
        return {name: e for name, e in entries.items()
                if (folder / name).is_file() and (folder / name).stat().st_size == e.get("bytes")}

    def read_chunks(self):
        """Metrics of every finished run, by condition index: ``{c: [DataFrame per batch, ...]}``,
        unchecked (what an interrupted ensemble reports; :func:`recover_runs` checks)."""
        out = {}
        for name, e in sorted(self.saved_chunks().items()):
            out.setdefault(int(e["condition"]), []).append(read_parquet(self.path / RUNS_DIR / name))
        return out

    def legacy_chunks(self):
        """The metrics files of a result written before the journal, unchecked."""
        out = {}
        folder = self.path / RUNS_DIR
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                m = _CHUNK_RE.match(p.name)
                if m:
                    out.setdefault(int(m.group(1)), []).append(read_parquet(p))
        return out

    def remove_chunks(self):
        refuse_link(self.path, self.path / RUNS_DIR)
        shutil.rmtree(self.path / RUNS_DIR, ignore_errors=True)

    # ---------------------------------------------------------------- tables
    def write_tables(self, tables: dict) -> dict:
        return {name: self.write_bytes(name, _parquet_bytes(frame)) for name, frame in tables.items()}

    def read_table(self, name: str) -> pd.DataFrame:
        try:
            return read_parquet(self.entry(name))
        except (OSError, ValueError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ResultDamaged(self.path, name, f"not a readable Parquet file: {exc}") from None

    def file_records(self, trace_conditions) -> dict:
        """Size and digest of the configuration, the tables and the traces of ``trace_conditions``."""
        names = [CONFIG_FILE, *TABLE_FILES.values(), *(self.trace_entry(c) for c in sorted(trace_conditions))]
        return {name: digest_file(self.path / name) for name in names if (self.path / name).is_file()}

    def check_files(self, meta: dict, n_conditions: int):
        """:class:`ResultDamaged` unless every file of a finished result matches ``meta``'s record."""
        records = meta.get(FILES_KEY, {})
        for name in [*TABLE_FILES.values(), *(self.trace_entry(c) for c in range(n_conditions))]:
            if name not in records and (self.path / name).exists():
                raise ResultDamaged(self.path, name, f"not recorded in {METADATA_FILE}")
        for name, record in records.items():
            _integrity.check_file(self.path, name, record)


def _allocated_memmap(directory: Path, path: Path, shape: tuple):
    """A new .npy file of int32 ``shape``, its blocks allocated, memory-mapped for writing."""
    with writing(directory):
        path.parent.mkdir(exist_ok=True)
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.int32, shape=shape)
    if not (hasattr(os, "posix_fallocate") and arr.nbytes):
        return arr
    try:
        with open(path, "r+b") as fh:
            os.posix_fallocate(fh.fileno(), 0, arr.offset + arr.nbytes)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):   # a file system without fallocate
            return arr
        needed = arr.offset + arr.nbytes
        del arr
        path.unlink(missing_ok=True)
        raise _integrity.write_error(directory, exc, f"{needed} bytes for {path.parent.name}/{path.name}") from None
    return arr


# ======================================================================================================
# Trace stores

class TraceStore:
    """The stored traces of an ensemble: per condition index, an (observables, runs, times) int32
    array. This base class stores nothing (``keep_traces=False``); :class:`MemoryTraces` and
    :class:`MappedTraces` do. ``tmpdir`` is a temporary directory the arrays live in, if any: it
    must live as long as the result that holds them."""

    def __init__(self, arrays: dict | None = None, tmpdir=None):
        self.arrays = arrays if arrays is not None else {}
        self.tmpdir = tmpdir

    @staticmethod
    def open(shapes: dict, session: "Session") -> "TraceStore":
        """The traces of every condition (``shapes``: condition index -> shape) of ``session``:
        memory-mapped in its result directory (reopened when resumed), in memory when it has no
        directory, or memory-mapped in a temporary directory when they would not fit in
        ``IN_MEMORY_TRACE_LIMIT_BYTES``."""
        if session.rd is not None:
            return MappedTraces(session.rd, shapes, resumed_runs=session.done_rows if session.resumed else None)
        if sum(4 * math.prod(shape) for shape in shapes.values()) > IN_MEMORY_TRACE_LIMIT_BYTES:
            return MappedTraces.temporary(shapes)
        return MemoryTraces(shapes)

    def get(self, condition_index: int):
        return self.arrays.get(condition_index)

    def write(self, condition_index: int, runs, traces: np.ndarray):
        """Store the (runs, observables, times) ``traces`` of ``runs`` of one condition."""
        arr = self.arrays.get(condition_index)
        if arr is not None and len(runs):
            arr[:, np.asarray(runs), :] = np.transpose(traces, (1, 0, 2))

    def flush(self):
        """Hand what was written to the operating system (a no-op for arrays in memory)."""

    def by_condition(self, layouts) -> dict:
        """``EnsembleResult._traces``: condition index -> (array, observables, times)."""
        return {ci: (arr, layouts[ci].observables, layouts[ci].times_ms) for ci, arr in self.arrays.items()}


class MemoryTraces(TraceStore):
    """Traces in memory: an ensemble without a result directory whose traces fit."""

    def __init__(self, shapes: dict):
        super().__init__({ci: np.zeros(shape, dtype=np.int32) for ci, shape in shapes.items()})


class MappedTraces(TraceStore):
    """Traces memory-mapped from the ``traces/`` files of a result directory. ``resumed_runs``
    (condition index -> metrics frames of runs finished before) reopens the files of a resumed
    ensemble, which must exist for every condition with finished runs."""

    def __init__(self, rd: "ResultDir", shapes: dict, resumed_runs: dict | None = None, tmpdir=None):
        arrays = {}
        for ci, shape in shapes.items():
            reuse = resumed_runs is not None and rd.trace_path(ci).is_file()
            if resumed_runs and resumed_runs.get(ci) and not reuse:
                raise FileNotFoundError(f"cannot resume {rd.path}: {rd.trace_path(ci)} is missing")
            arrays[ci] = rd.open_traces(ci, shape, create=not reuse)
        super().__init__(arrays, tmpdir)

    @classmethod
    def temporary(cls, shapes: dict) -> "MappedTraces":
        tmpdir = tempfile.TemporaryDirectory(prefix="mcsyn-traces-")
        return cls(ResultDir(tmpdir.name), shapes, tmpdir=tmpdir)

    def flush(self):
        for arr in self.arrays.values():
            arr.flush()


# ======================================================================================================
# One sitting of an ensemble

class Session:
    """One sitting of an ensemble: its result directory (``rd``; None when the result lives in
    memory only), the metadata with this sitting's entry (``record``), and the runs that earlier
    sittings finished (``done_rows``: condition index -> their metrics frames)."""

    def __init__(self, rd: "ResultDir | None", meta: dict | None = None, done_rows: dict | None = None):
        self.rd = rd
        self.repairs = []          # what a resume found damaged and computes again
        self.resumed = meta is not None
        self.meta = meta
        self.done_rows = done_rows or {}
        self.record = None

    @property
    def path(self):
        return self.rd.path if self.rd is not None else None

    def done_runs(self, condition_index: int) -> set:
        return {int(r) for frame in self.done_rows.get(condition_index, []) for r in frame["run"]}

    def begin(self, backend: str, workers: int, settings: dict):
        """Record this sitting (backend, workers, versions) and mark the ensemble running. The
        metadata's file records keep only the configuration: the other files change from now on."""
        self.record = {"started": now_iso(), "backend": backend, "workers": workers if backend != "dask" else None,
                       "scheduler": None, "python": sys.version.split()[0], "numpy": np.__version__,
                       "pandas": pd.__version__, "mcsyn": __version__}
        if self.meta is None:
            self.meta = {"format": FORMAT_VERSION, "mcsyn_version": __version__, "created": now_iso(),
                         "sessions": [], **settings}
        self.meta["n_runs"] = settings["n_runs"]        # a resume may extend the ensemble
        if self.rd is not None:
            self.meta[FILES_KEY] = {n: r for n, r in self.rd.file_records(()).items() if n == CONFIG_FILE}
        self.meta["sessions"].append(self.record)
        self.set_status("running")

    def set_status(self, status: str, ended: bool = False):
        if ended:
            self.record["ended"] = now_iso()
        self.meta["status"] = status
        self.write_metadata()

    def write_metadata(self):
        if self.rd is not None:
            self.rd.write_metadata(self.meta)

    def save(self, result: EnsembleResult, traces: TraceStore, status: str):
        """End this sitting with ``status`` and give ``result`` its metadata. With a result
        directory, write the result there: traces flushed, then the tables, then the metadata with
        the digest of every file, and last the per-batch files removed once no run failed (failed
        runs are retried on resume)."""
        self.record["ended"] = now_iso()
        self.meta["status"] = status
        self.meta["n_failed"] = len(result.failures)
        result.metadata = self.meta
        if self.rd is None:
            return
        traces.flush()
        self.rd.write_tables(result_tables(result))
        self.meta[FILES_KEY] = self.rd.file_records(traces.arrays)
        self.rd.write_metadata(self.meta)
        if result.failures.empty:
            self.rd.remove_chunks()
        result.path = self.rd.path


def open_session(out, resume: bool, overwrite: bool, config: dict) -> Session:
    """The sitting of an ensemble writing to ``out`` (None: nothing is written). Resuming an
    existing result reads its metadata back and writes nothing yet (its finished runs are read and
    checked by :func:`mcsyn.ensemble.recovery.recover_runs`); otherwise the directory is created
    (or overwritten) and ``config`` written to it."""
    if out is None:
        return Session(None)
    rd = ResultDir(out)
    if resume and rd.is_result():
        refuse_links(rd.path)
        return Session(rd, rd.read_metadata())
    if resume and rd.exists_nonempty():
        raise FileExistsError(f"cannot resume {rd.path}: it is not an mcsyn result directory")
    with writing(rd.path):
        rd.create(overwrite=overwrite)
    rd.write_config(config)
    return Session(rd)


# ======================================================================================================
# Saving and loading results

FINISHED = ("complete", "failed_runs", "stopped_early")


def result_tables(result: EnsembleResult) -> dict:
    """The tables of a result by the file each is stored in."""
    return {TABLE_FILES[name]: frame for name, frame in result.tables().items()}


def save_result(result, path, overwrite: bool = False):
    """Write an in-memory :class:`~mcsyn.ensemble.EnsembleResult` to a result directory.

    Traces are written too when the result has them. Returns the path."""
    rd = ResultDir(path)
    with writing(rd.path):
        rd.create(overwrite=overwrite)
    if result.config is not None:
        rd.write_config(result.config)
    for c, (arr, _obs, _times) in sorted(result._traces.items()):
        out = rd.open_traces(c, arr.shape, create=True)
        out[...] = arr
        out.flush()
        del out
    rd.write_tables(result_tables(result))
    rd.remove_chunks()
    meta = dict(result.metadata)
    meta["saved"] = now_iso()
    meta[FILES_KEY] = rd.file_records(result._traces)
    rd.write_metadata(meta)
    return rd.path


def load_result(path, verify: bool = True):
    """Load a result directory written by an ensemble or :func:`save_result`.

    Returns an :class:`~mcsyn.ensemble.EnsembleResult` whose DataFrames equal the ones the ensemble
    returned; traces are memory-mapped read-only. Every file is checked against the size and
    SHA-256 recorded when it was written (``verify=False`` skips the digests of large results):
    a damaged, missing or unrecorded file raises :class:`~mcsyn.ensemble.integrity.ResultDamaged`
    naming it, and a symbolic link inside the directory
    :class:`~mcsyn.ensemble.integrity.UnsafeResultEntry`. An interrupted ensemble (no tables yet)
    is an error: resume it first. A result with failed runs loads (``metadata["status"]`` is then
    ``"failed_runs"`` and ``failures`` lists them).
    """
    rd = ResultDir(path)
    refuse_links(rd.path)
    meta = rd.read_metadata()
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{rd.path}: result format {meta.get('format')!r} is not supported "
                         f"(expected {FORMAT_VERSION})")
    finished = meta.get("status") in FINISHED if _integrity.is_sealed(meta) else (rd.path / METRICS_FILE).is_file()
    if not finished:
        raise ValueError(f"{rd.path} holds an unfinished ensemble (status {meta.get('status')!r}): "
                         "run it again with resume to finish it")
    if verify and _integrity.is_sealed(meta):
        rd.check_files(meta, len(meta["conditions"]))
    traces = {}
    for c, info in enumerate(meta["conditions"]):
        try:
            arr = rd.load_traces(c)
        except (ValueError, OSError) as exc:
            raise ResultDamaged(rd.path, rd.trace_entry(c), f"not a readable array: {exc}") from None
        if arr is not None:
            traces[c] = (arr, list(info["observables"]), np.asarray(info["times_ms"], dtype=np.float64))
    config = rd.read_config() if (rd.path / CONFIG_FILE).is_file() else None
    return EnsembleResult(metrics=rd.read_table(METRICS_FILE), timecourse=rd.read_table(TIMECOURSE_FILE),
                          failures=rd.read_table(FAILURES_FILE), conditions=rd.read_table(CONDITIONS_FILE),
                          metadata=meta, config=config, path=rd.path, _traces=traces)
