"""Trusting a result directory only as far as it can be checked.

Every file mcsyn writes into a result directory is checked when it is read back:

* ``metadata.json`` is sealed: it holds ``sha256``, the SHA-256 of its own content in canonical JSON
  (sorted keys), and ``files``, the size and SHA-256 of every other file of a finished result
  (``config.toml``, the tables, ``traces/*.npy``);
* while an ensemble runs, ``runs/journal.jsonl`` gets one line per finished batch before its metrics
  file appears under ``runs/``: the file's name, size and SHA-256, its runs and the SHA-256 of each
  run's stored traces; every line carries its own check.

:func:`~mcsyn.ensemble.storage.load_result` refuses a file whose size or digest differ
(:class:`ResultDamaged`, naming it). A resume trusts only the batches whose journal line, metrics
file and traces all check out; it recomputes the others from their seeds (the result is the same,
bit for bit) and says so (:class:`ResultRepaired` warning). Nothing is followed through a symbolic
link (:class:`UnsafeResultEntry`), and failed writes (full disk, no permission, read-only file
system) end in :class:`ResultWriteError` naming the directory.

A result written before these checks (no ``sha256`` and no ``files`` in its metadata) loads
unchecked.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from ..serialize import to_plain

SEAL_KEY = "sha256"
FILES_KEY = "files"
JOURNAL_FILE = "journal.jsonl"
_READ_BLOCK_BYTES = 1 << 22


class ResultDamaged(ValueError):
    """A file of a result directory is not what mcsyn wrote: missing, truncated, changed or
    unreadable. ``entry`` is the file (relative to ``directory``), ``reason`` what is wrong."""

    def __init__(self, directory, entry, reason):
        self.directory = Path(directory)
        self.entry = str(entry)
        self.reason = reason
        super().__init__(f"result directory {self.directory}: {self.entry} is damaged ({reason}); resume the "
                         "ensemble (resume=True / --resume) to recompute what it held, or run it again")


class UnsafeResultEntry(ValueError):
    """An entry of a result directory is a symbolic link: mcsyn writes only inside the directory and
    never follows one."""

    def __init__(self, directory, entry):
        self.directory = Path(directory)
        self.entry = str(entry)
        try:
            target = os.readlink(self.directory / entry)
        except OSError:
            target = "?"
        super().__init__(f"result directory {self.directory}: {self.entry} is a symbolic link (to {target}); "
                         "refusing to follow it, since mcsyn writes only inside the result directory: "
                         "remove the link")


class ResultWriteError(OSError):
    """A result directory could not be written (no space left, no permission, a read-only file
    system). The runs saved before it stay on disk; resume once the cause is fixed."""

    def __str__(self):
        return str(self.strerror)


class ResultRepaired(UserWarning):
    """A resume found damaged, stray or duplicated files and recomputes the runs they held."""


# ======================================================================================================
# Files

def refuse_link(directory: Path, path: Path):
    """:class:`UnsafeResultEntry` if ``path`` (inside ``directory``) is a symbolic link."""
    if path.is_symlink():
        raise UnsafeResultEntry(directory, path.relative_to(directory))


def refuse_links(directory: Path, subfolders=("runs", "traces", "plots")):
    """Refuse any symbolic link among the entries of a result directory and of its ``subfolders``."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        refuse_link(directory, entry)
        if entry.name in subfolders and entry.is_dir():
            for inner in entry.iterdir():
                refuse_link(directory, inner)


def write_bytes_atomically(directory: Path, path: Path, data: bytes):
    """Write ``data`` to ``path`` through ``path.tmp`` and a rename, never through a symbolic link."""
    tmp = path.with_name(path.name + ".tmp")
    refuse_link(directory, path)
    refuse_link(directory, tmp)
    with writing(directory):
        _write_new(tmp, data)
        os.replace(tmp, path)


def _write_new(path: Path, data: bytes):
    """Write ``data`` to ``path``, not through a symbolic link (the seam where tests make the disk full)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def digest_bytes(data: bytes) -> dict:
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def digest_file(path: Path) -> dict:
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while block := fh.read(_READ_BLOCK_BYTES):
            h.update(block)
            n += len(block)
    return {"bytes": n, "sha256": h.hexdigest()}


def check_file(directory: Path, entry: str, record: dict):
    """:class:`ResultDamaged` unless ``directory/entry`` has the size and digest of ``record``."""
    path = directory / entry
    refuse_link(directory, path)
    if not path.is_file():
        raise ResultDamaged(directory, entry, "missing")
    size = path.stat().st_size
    if size != record.get("bytes"):
        raise ResultDamaged(directory, entry, f"{size} bytes, {record.get('bytes')} were written")
    if digest_file(path)["sha256"] != record.get("sha256"):
        raise ResultDamaged(directory, entry, "its content differs from what was written (SHA-256 mismatch)")


def run_trace_digest(trace: np.ndarray) -> str:
    """The digest of one run's (observables, times) stored traces."""
    return hashlib.sha256(np.ascontiguousarray(trace, dtype=np.int32).tobytes()).hexdigest()[:32]


class writing:
    """Turn the operating system's refusals to write into :class:`ResultWriteError` naming the
    directory (a context manager)."""

    def __init__(self, directory):
        self.directory = Path(directory)

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if not isinstance(exc, OSError) or isinstance(exc, ResultWriteError) or exc.errno not in WRITE_ERRORS:
            return False
        raise write_error(self.directory, exc) from None


WRITE_ERRORS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
                errno.EROFS: "read-only file system", errno.EFBIG: "file too large", errno.EIO: "input/output error"}


def write_error(directory: Path, exc: OSError, detail: str | None = None) -> ResultWriteError:
    what = WRITE_ERRORS.get(exc.errno, exc.strerror or str(exc))
    where = f" ({detail or exc.filename})" if (detail or exc.filename) else ""
    return ResultWriteError(exc.errno, f"cannot write the result directory {directory}: {what}{where}; the runs "
                                       "saved before stay there: resume (resume=True / --resume) once it is fixed")


# ======================================================================================================
# The sealed metadata

def _canonical(plain: dict) -> bytes:
    return json.dumps(plain, sort_keys=True, allow_nan=True, separators=(",", ":")).encode()


def seal(meta: dict) -> bytes:
    """``metadata.json``'s text: ``meta`` with the SHA-256 of its canonical form."""
    plain = to_plain({k: v for k, v in meta.items() if k != SEAL_KEY})
    plain[SEAL_KEY] = hashlib.sha256(_canonical(plain)).hexdigest()
    return (json.dumps(plain, indent=2, allow_nan=True) + "\n").encode()


def unseal(directory: Path, entry: str, text: bytes) -> dict:
    """The metadata read from ``text``; :class:`ResultDamaged` if it is not what :func:`seal` wrote."""
    try:
        meta = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultDamaged(directory, entry, f"not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise ResultDamaged(directory, entry, "not a JSON object")
    check = meta.pop(SEAL_KEY, None)
    if check is None and FILES_KEY not in meta:
        return meta                      # written before results were sealed
    if check != hashlib.sha256(_canonical(meta)).hexdigest():
        raise ResultDamaged(directory, entry, "its content differs from what was written (SHA-256 mismatch)")
    return meta


def is_sealed(meta: dict) -> bool:
    return FILES_KEY in meta


# ======================================================================================================
# The journal of finished batches

def journal_line(entry: dict) -> bytes:
    body = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    return f"{body}\t{hashlib.sha256(body.encode()).hexdigest()[:16]}\n".encode()


def append_journal(directory: Path, path: Path, entry: dict):
    refuse_link(directory, path)
    with writing(directory):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with os.fdopen(fd, "ab") as fh:
            fh.write(journal_line(entry))


def read_journal(path: Path) -> tuple:
    """``(entries, bad_lines)``: the last valid entry of every chunk file, by name, and how many
    lines failed their check (a line cut short by a killed process, or damaged)."""
    entries, bad = {}, 0
    if not path.is_file():
        return entries, bad
    for raw in path.read_bytes().split(b"\n"):
        if not raw:
            continue
        try:
            body, check = raw.decode().rsplit("\t", 1)
            if hashlib.sha256(body.encode()).hexdigest()[:16] != check:
                raise ValueError("check")
            entry = json.loads(body)
            entries[entry["chunk"]] = entry
        except (ValueError, KeyError, TypeError):
            bad += 1
    return entries, bad


def repaired(directory: Path, problems: list):
    """Say what a resume found damaged and recomputes."""
    problems = list(dict.fromkeys(problems))
    if problems:
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        warnings.warn(f"resuming {directory}: {shown}. Those runs are computed again from their seeds.",
                      ResultRepaired, stacklevel=4)
