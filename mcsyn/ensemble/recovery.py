"""What a resume may trust of a result directory, and extending an ensemble with more runs.

A resume (:func:`recover_runs`) keeps only the runs it can check (see
:mod:`mcsyn.ensemble.integrity`): a batch counts when its journal line, its metrics file and the
stored traces of each of its runs match their digests, and no other batch holds the same runs.
Everything else (damaged, truncated, stray or duplicated files) is reported as a
:class:`~mcsyn.ensemble.integrity.ResultRepaired` warning, removed, and its runs are computed again
from their seeds, which gives the same result bit for bit. A finished result is taken from its
tables (checked against the metadata's records) and written back as batches, so that extending it
(more runs than stored) survives an interruption as well.
"""
from __future__ import annotations

import numpy as np

from . import integrity as _integrity
from .integrity import FILES_KEY, ResultDamaged
from .storage import (CONFIG_FILE, METRICS_FILE, RUNS_DIR, ResultDir, Session, _allocated_memmap, load_result,
                      read_parquet)


def recover_runs(session: Session, plan):
    """Check what earlier sittings of ``session`` left and set ``session.done_rows`` to the runs
    that can be trusted. Returns the loaded result instead when the ensemble is finished, intact
    and not extended (nothing is left to run)."""
    rd, meta = session.rd, session.meta
    stored_runs = int(meta["n_runs"])
    if plan.n_runs < stored_runs:
        raise ValueError(f"cannot resume {rd.path} with n_runs = {plan.n_runs}: it holds {stored_runs} runs per "
                         f"condition; resume with n_runs >= {stored_runs} (more runs extend it)")
    problems = []
    if meta.get("status") == "complete" and plan.n_runs == stored_runs:
        try:
            return load_result(rd.path)
        except ResultDamaged as exc:
            problems.append(f"{exc.entry}: {exc.reason}")
    sealed = _integrity.is_sealed(meta)
    _check_config(rd, meta, plan, sealed, stored_runs, problems)
    arrays = {ci: _stored_traces(rd, ci, (len(lay.observables), stored_runs, len(lay.times_ms)), problems)
              for ci, lay in enumerate(plan.layouts)}
    if not sealed:
        done = rd.legacy_chunks()           # written before checksums: trusted as before
    elif meta.get("status") == "complete":
        done = _from_tables(rd, meta, plan, arrays, problems)
    else:
        done = _from_journal(rd, plan, arrays, stored_runs, problems)
    arrays.clear()                          # the maps are read-only views of files replaced below
    for ci in range(len(plan.conditions)):
        if not done.get(ci):
            rd.trace_path(ci).unlink(missing_ok=True)      # nothing trusted in it: start it afresh
        elif plan.n_runs > stored_runs:
            _extend_traces(rd, ci, plan.trace_shapes()[ci])
    session.done_rows = done
    session.repairs = problems
    _integrity.repaired(rd.path, problems)
    return None


def _check_config(rd: ResultDir, meta, plan, sealed, stored_runs, problems):
    """Rewrite ``config.toml`` when it is damaged or the ensemble is extended."""
    record = meta.get(FILES_KEY, {}).get(CONFIG_FILE)
    if sealed and record is not None:
        try:
            _integrity.check_file(rd.path, CONFIG_FILE, record)
        except ResultDamaged as exc:
            problems.append(f"{CONFIG_FILE}: {exc.reason} (written again)")
            record = None
    if record is None or plan.n_runs != stored_runs:
        rd.write_config(plan.config)


def _stored_traces(rd: ResultDir, ci: int, shape: tuple, problems):
    """The trace array of condition ``ci`` as stored (read-only), or None if it is missing or not
    the array it should be."""
    path, entry = rd.trace_path(ci), rd.trace_entry(ci)
    if not path.is_file():
        return None
    try:
        arr = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        problems.append(f"{entry}: not a readable array ({exc})")
        return None
    if arr.shape != shape or arr.dtype != np.int32 or path.stat().st_size != arr.offset + arr.nbytes:
        problems.append(f"{entry}: {path.stat().st_size} bytes holding {arr.shape} {arr.dtype}, expected {shape} "
                        "int32")
        return None
    return arr


def _from_journal(rd: ResultDir, plan, arrays, stored_runs, problems) -> dict:
    """The batches of the journal that check out; the journal is rewritten with them only, and
    every other file under ``runs/`` is removed."""
    entries, bad_lines = _integrity.read_journal(rd.journal_path)
    if bad_lines:
        problems.append(f"{RUNS_DIR}/{_integrity.JOURNAL_FILE}: {bad_lines} damaged line(s)")
    kept = {}
    for name, entry in sorted(entries.items()):
        frame = _checked_batch(rd, entry, plan, arrays, stored_runs, problems)
        if frame is not None:
            kept[name] = (entry, frame)
    _drop_duplicates(kept, problems)
    folder = rd.path / RUNS_DIR
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if p.name in kept or p.name == _integrity.JOURNAL_FILE:
                continue
            if not p.name.endswith(".tmp") and p.name not in entries:
                problems.append(f"{RUNS_DIR}/{p.name}: not recorded in the journal (a stray file), removed")
            p.unlink()
    rd.path.joinpath(RUNS_DIR).mkdir(exist_ok=True)
    rd.write_bytes(f"{RUNS_DIR}/{_integrity.JOURNAL_FILE}",
                   b"".join(_integrity.journal_line(entry) for entry, _ in kept.values()))
    done = {}
    for entry, frame in kept.values():
        done.setdefault(int(entry["condition"]), []).append(frame)
    return done


def _checked_batch(rd: ResultDir, entry, plan, arrays, stored_runs, problems):
    """The metrics frame of one journal entry, or None (with the reason in ``problems``)."""
    name = f"{RUNS_DIR}/{entry['chunk']}"
    path = rd.path / name
    if not path.is_file():
        return None          # a process stopped between the journal line and the rename
    try:
        _integrity.check_file(rd.path, name, entry)
        frame = read_parquet(path)
    except (ResultDamaged, OSError, ValueError) as exc:
        problems.append(f"{name}: {getattr(exc, 'reason', exc)}")
        return None
    ci, runs = int(entry["condition"]), [int(r) for r in entry["runs"]]
    if not (0 <= ci < len(plan.conditions)) or frame["run"].tolist() != runs or \
            not all(0 <= r < stored_runs for r in runs):
        problems.append(f"{name}: its runs are not those of this ensemble")
        return None
    arr, digests = arrays.get(ci), entry.get("traces")
    if arr is None or digests is None or len(digests) != len(runs):
        problems.append(f"{name}: the stored traces of its runs are missing ({rd.trace_entry(ci)})")
        return None
    for r, digest in zip(runs, digests):
        if _integrity.run_trace_digest(arr[:, r, :]) != digest:
            problems.append(f"{rd.trace_entry(ci)}: the traces of run {r} differ from what was written")
            return None
    return frame


def _drop_duplicates(kept: dict, problems):
    """Two batches that hold the same run of a condition: neither is trusted."""
    owner, twice = {}, set()
    for name, (entry, _frame) in kept.items():
        for r in entry["runs"]:
            key = (int(entry["condition"]), int(r))
            if key in owner:
                twice.update({owner[key], name})
            owner[key] = name
    for name in sorted(twice):
        problems.append(f"{RUNS_DIR}/{name}: holds runs that another batch holds too")
        del kept[name]


def _from_tables(rd: ResultDir, meta, plan, arrays, problems) -> dict:
    """The runs of a finished result, from its metrics table (when it and the condition's traces
    match their records), written back as one batch per condition."""
    records = meta.get(FILES_KEY, {})
    if (rd.path / RUNS_DIR).exists():
        problems.append(f"{RUNS_DIR}/: left in a finished result, removed")
        rd.remove_chunks()
    rd.path.joinpath(RUNS_DIR).mkdir()
    try:
        _integrity.check_file(rd.path, METRICS_FILE, records.get(METRICS_FILE, {}))
        metrics = read_parquet(rd.path / METRICS_FILE)
    except (ResultDamaged, OSError, ValueError) as exc:
        problems.append(f"{METRICS_FILE}: {getattr(exc, 'reason', exc)}")
        return {}
    label_cols = {k for c in plan.conditions for k in c.labels}
    done = {}
    for ci, c in enumerate(plan.conditions):
        entry = rd.trace_entry(ci)
        try:
            _integrity.check_file(rd.path, entry, records.get(entry, {}))
        except ResultDamaged as exc:
            problems.append(f"{entry}: {exc.reason}")
            arrays[ci] = None
            continue
        rows = metrics[metrics["condition"] == c.name]
        if rows.empty or arrays.get(ci) is None:
            continue
        # the columns a batch of this condition had: its own labels, not the other conditions'
        foreign = [k for k in sorted(label_cols - set(c.labels)) if k in rows and rows[k].isna().all()]
        frame = rows.drop(columns=foreign)
        frame = frame.reset_index(drop=True)
        rd.write_chunk(ci, int(frame["run"].iloc[0]), frame, traces=[arrays[ci][:, r, :] for r in frame["run"]])
        done[ci] = [read_parquet(rd.chunk_path(ci, int(frame["run"].iloc[0])))]
    return done


def _extend_traces(rd: ResultDir, ci: int, shape: tuple):
    """Grow condition ``ci``'s trace file to ``shape`` (more runs), the stored runs copied."""
    path = rd.trace_path(ci)
    old = np.load(path, mmap_mode="r")
    tmp = path.with_name(path.name + ".grow")
    _integrity.refuse_link(rd.path, tmp)
    new = _allocated_memmap(rd.path, tmp, shape)
    new[:, :old.shape[1], :] = old
    new.flush()
    del new, old
    with _integrity.writing(rd.path):
        tmp.replace(path)

