"""Reading and writing electrode traces as CSV: ``time_s`` and ``concentration_uM`` columns.

A trace file is checked entirely before anything runs: the two columns must be there (a
``concentration_nM`` column is accepted and converted; other units are refused by name, since a
number in the wrong unit would fit to a wrong Vmax without any other sign), every cell must be a
finite number, and the times must increase strictly. Each error is a :class:`mcsyn.ModelError`
naming the file, the column and the row (the first data row is row 1, i.e. line 2 of the file).
Other columns are ignored; lines starting with ``#`` are comments.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..errors import ModelError

TIME_COLUMN = "time_s"
CONCENTRATION_COLUMNS = {"concentration_uM": 1.0, "concentration_µM": 1.0, "concentration_nM": 1e-3}
MIN_ROWS = 4


def _header(path, rows):
    for line_no, row in rows:
        if row and not row[0].lstrip().startswith("#"):
            return line_no, [cell.strip() for cell in row]
    raise ModelError(str(path), "empty", f"must hold a header with {TIME_COLUMN} and concentration_uM")


def _column_of(path, header):
    if TIME_COLUMN not in header:
        timeish = [h for h in header if h.lower().startswith("time")]
        hint = f" (found {timeish[0]!r}: convert it to seconds and name it {TIME_COLUMN})" if timeish else ""
        raise ModelError(f"{path}: columns", header, f"must include {TIME_COLUMN}{hint}")
    found = [h for h in header if h in CONCENTRATION_COLUMNS]
    if len(found) != 1:
        concish = [h for h in header if h.lower().startswith("conc") or h.lower() in ("da", "dopamine", "5-ht")]
        hint = (f" (found {concish[0]!r}, whose unit is not µM or nM)" if concish and not found
                else " (not both)" if found else "")
        raise ModelError(f"{path}: columns", header,
                         f"must include exactly one of concentration_uM, concentration_nM{hint}")
    return header.index(TIME_COLUMN), header.index(found[0]), found[0]


def _number(path, column, row_no, text):
    try:
        value = float(text)
    except ValueError:
        raise ModelError(f"{path}: row {row_no}, column {column}", text, "must be a number") from None
    if not math.isfinite(value):
        raise ModelError(f"{path}: row {row_no}, column {column}", text, "must be a finite number (no NaN)")
    return value


def read_trace_csv(path):
    """``(time_s, concentration_uM)`` arrays from a trace file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("trace", str(path), "must be an existing CSV file")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(enumerate(csv.reader(handle), start=1))
    header_line, header = _header(path, rows)
    i_time, i_conc, conc_name = _column_of(path, header)
    times, values = [], []
    for line_no, row in rows:
        if line_no <= header_line or not row or row[0].lstrip().startswith("#") or not any(c.strip() for c in row):
            continue
        row_no = len(times) + 1
        cells = [row[i].strip() if i < len(row) else "" for i in (i_time, i_conc)]
        for name, text in zip((TIME_COLUMN, conc_name), cells):
            if text == "":
                raise ModelError(f"{path}: row {row_no}, column {name}", text, "must not be empty")
        t = _number(path, TIME_COLUMN, row_no, cells[0])
        if times and t <= times[-1]:
            raise ModelError(f"{path}: row {row_no}, column {TIME_COLUMN}", t,
                             f"must be later than the row before ({times[-1]:g} s): times must increase")
        times.append(t)
        values.append(_number(path, conc_name, row_no, cells[1]))
    if len(times) < MIN_ROWS:
        raise ModelError(f"{path}: rows", len(times), f"must be at least {MIN_ROWS} samples")
    return np.array(times), np.array(values) * CONCENTRATION_COLUMNS[conc_name]


def write_trace_csv(path, times_s, concentration_uM, comment=None):
    """Write a trace in the format :func:`read_trace_csv` reads (``comment`` lines first, as ``#``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        for line in (comment or "").splitlines():
            handle.write(f"# {line}\n")
        writer = csv.writer(handle)
        writer.writerow([TIME_COLUMN, "concentration_uM"])
        for t, c in zip(times_s, concentration_uM):
            writer.writerow([f"{t:.6g}", f"{c:.6g}"])
    return path
