"""Reporting: the terminal table, ``validation.csv`` and ``validation.md``, and ``mcsyn validate``."""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import pandas as pd

from . import framework
from .framework import VERDICTS, run_validation


def _fmt(x, digits=4):
    if isinstance(x, str):
        return x
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(xf):
        return ""
    return f"{xf:.{digits}g}"


def format_table(df: pd.DataFrame, width: int = 60) -> str:
    """A plain-text table (check, expected, measured, unit, tolerance, verdict) for the terminal."""
    cols = ["check", "expected", "measured", "unit", "tolerance", "verdict"]
    body = [[str(r["check"]), _fmt(r["expected"]), _fmt(r["measured"]), str(r["unit"] or ""),
             (str(r["tolerance"])[:width] + ("…" if len(str(r["tolerance"])) > width else "")), str(r["verdict"])]
            for _, r in df.iterrows()]
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(b, widths)) for b in body]
    return "\n".join(out)


def summary_line(df: pd.DataFrame) -> str:
    counts = {v: int((df["verdict"] == v).sum()) for v in VERDICTS}
    wall = df.attrs.get("wall_s", float(df["wall_s"].drop_duplicates().sum()))
    return (f"{len(df)} results: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
            + f" ({df.attrs.get('mode', '')} run, {wall:.1f} s)")


def _md_escape(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def write_report(df: pd.DataFrame, out_dir) -> tuple[Path, Path]:
    """Write ``validation.csv`` (every column) and ``validation.md`` (a table, then each check's
    citation and note) into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "validation.csv", out / "validation.md"
    df.to_csv(csv_path, index=False)
    lines = ["# mcsyn validation report", "",
             f"{summary_line(df)}. Generated {time.strftime('%Y-%m-%d %H:%M:%S')} by `mcsyn validate"
             f"{' --quick' if df.attrs.get('mode') == 'quick' else ''}`.", "",
             "Statistical checks allow ±5 standard errors of the estimator (stated per row); published results "
             "are compared with the literature range. Seeds are fixed. A row marked *discrepancy* documents a "
             "known disagreement with a published result, with its reason in the notes; it is not a failure.", "",
             "| check | category | expected | measured | unit | tolerance | verdict | wall (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in df.iterrows():
        verdict = f"**{r['verdict']}**" if r["verdict"] == "fail" else r["verdict"]
        lines.append("| " + " | ".join(_md_escape(v) for v in (
            r["check"], r["category"], _fmt(r["expected"]), _fmt(r["measured"]), r["unit"] or "", r["tolerance"],
            verdict, _fmt(r["wall_s"], 3))) + " |")
    lines += ["", "## Notes and citations", ""]
    for _, r in df.iterrows():
        text = []
        if r["citation"]:
            text.append(f"*{_md_escape(r['citation'])}*")
        if r["note"]:
            text.append(_md_escape(r["note"]))
        if text:
            lines.append(f"- **{_md_escape(r['check'])}** ({r['verdict']}): " + " — ".join(text))
    lines += ["", "## What each check means", ""]
    for spec in framework.REGISTRY:
        lines.append(f"- **{spec.name}**{' (quick)' if spec.quick else ''}: {_md_escape(spec.description)}")
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path, md_path


def validate_command(args) -> int:
    """Entry point of ``mcsyn validate``: run, print the table, write the report, and return the
    exit status (0 when no check failed, 1 otherwise; a documented discrepancy is not a failure).
    ``args`` has ``quick`` (bool), ``out`` (directory; default ``mcsyn-validation``) and ``workers``
    (int or None)."""
    quick = bool(getattr(args, "quick", False))
    out = getattr(args, "out", None) or "mcsyn-validation"
    workers = getattr(args, "workers", None)
    only = getattr(args, "only", None)
    df = run_validation(quick=quick, workers=workers, progress=not getattr(args, "no_progress", False), only=only)
    print(format_table(df))
    print()
    print(summary_line(df))
    csv_path, md_path = write_report(df, out)
    print(f"report: {csv_path} and {md_path}")
    discrepancies = df.loc[df["verdict"] == "discrepancy", "check"].tolist()
    if discrepancies:
        print(f"documented discrepancies (not failures; see the report's notes): {', '.join(discrepancies)}")
    failed = df.loc[df["verdict"] == "fail", "check"].tolist()
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``mcsyn validate`` (for the CLI to reuse)."""
    parser.add_argument("--quick", action="store_true", help="run the quick subset (seconds)")
    parser.add_argument("--out", default="mcsyn-validation", metavar="DIR",
                        help="directory for validation.csv and validation.md")
    parser.add_argument("--workers", type=int, default=None, help="threads per ensemble (default: all cores)")
    parser.add_argument("--only", nargs="*", default=None, metavar="PREFIX", help="run only checks with these prefixes")
    return parser


def main(argv=None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="mcsyn validate",
                                                   description="Quantitative checks of the engine against "
                                                               "closed-form results and published data."))
    return validate_command(parser.parse_args(argv))
