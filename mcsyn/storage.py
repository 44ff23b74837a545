"""Result directories: what an ensemble writes, how it survives interruptions, how it is loaded.

The public face of :mod:`mcsyn.ensemble.storage`, where the format is described and implemented;
``to_plain`` and ``dumps_toml`` live in :mod:`mcsyn.serialize`."""
from __future__ import annotations

from .ensemble.storage import (CONDITIONS_FILE, CONFIG_FILE, FAILURES_FILE, FORMAT_VERSION, METADATA_FILE,
                               METRICS_FILE, RUNS_DIR, TABLE_FILES, TIMECOURSE_FILE, TRACES_DIR, MappedTraces,
                               MemoryTraces, ResultDir, TraceStore, load_result, now_iso, read_parquet,
                               result_tables, save_result, write_json, write_parquet)
from .ensemble.integrity import ResultDamaged, ResultRepaired, ResultWriteError, UnsafeResultEntry
from .serialize import dumps_toml, to_plain

__all__ = [
    "CONDITIONS_FILE", "CONFIG_FILE", "FAILURES_FILE", "FORMAT_VERSION", "METADATA_FILE", "METRICS_FILE",
    "RUNS_DIR", "TABLE_FILES", "TIMECOURSE_FILE", "TRACES_DIR", "MappedTraces", "MemoryTraces", "ResultDamaged",
    "ResultDir", "ResultRepaired", "ResultWriteError", "TraceStore", "UnsafeResultEntry", "dumps_toml", "load_result", "now_iso", "read_parquet", "result_tables", "save_result",
    "to_plain", "write_json", "write_parquet",
]
