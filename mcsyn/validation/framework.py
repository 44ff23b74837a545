"""The check framework: result rows, the registry of checks and the runner.

A check is a function ``f(ctx) -> list[Check]`` registered with :func:`register`;
:func:`run_validation` runs the registered checks of a mode and returns one table row per
:class:`Check`. A check that raises is reported as a failed row carrying the exception.
"""
from __future__ import annotations

import math
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Callable

import pandas as pd

Z = 5.0                         # standard errors allowed in a statistical check

COLUMNS = ["check", "category", "expected", "measured", "unit", "tolerance", "verdict", "se", "lower", "upper",
           "citation", "note", "wall_s", "quick"]
# "discrepancy": a documented disagreement with a published result whose reason the row states; it is
# reported, and it is not a failure
VERDICTS = ("pass", "fail", "discrepancy")


# ======================================================================================================
# rows

@dataclass
class Check:
    """One row of the validation table.

    ``expected`` and ``measured`` are numbers in ``unit``; ``tolerance`` says in words what was
    allowed (``±5 SE = ...`` or a literature range); ``lower``/``upper`` are the bounds that decided
    the verdict (NaN where open); ``se`` is the standard error of ``measured`` where one exists.
    """

    name: str
    category: str
    expected: float
    measured: float
    tolerance: str
    verdict: str
    citation: str = ""
    note: str = ""
    unit: str = ""
    se: float = float("nan")
    lower: float = float("nan")
    upper: float = float("nan")
    wall_s: float = float("nan")
    quick: bool = False

    def as_row(self) -> dict:
        d = asdict(self)
        d["check"] = d.pop("name")
        return {c: d[c] for c in COLUMNS}


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def stat_check(name, category, expected, measured, se, unit="", how="", k=Z, citation="", note="") -> Check:
    """Pass when |measured − expected| <= k·SE."""
    ok = _finite(measured) and _finite(se) and abs(measured - expected) <= k * se
    tol = f"±{k:g} SE = ±{k * se:.3g} {unit}".rstrip() + (f" (SE: {how})" if how else "")
    return Check(name, category, float(expected), float(measured), tol, "pass" if ok else "fail", citation, note,
                 unit, float(se), expected - k * se, expected + k * se)


def range_check(name, category, measured, lower, upper, unit="", expected=None, se=float("nan"), citation="",
                note="", what="literature range") -> Check:
    """Pass when lower <= measured <= upper (either bound may be None: open)."""
    lo = -math.inf if lower is None else lower
    hi = math.inf if upper is None else upper
    ok = _finite(measured) and lo <= measured <= hi
    if lower is None:
        tol = f"{what}: < {hi:.4g} {unit}".rstrip()
    elif upper is None:
        tol = f"{what}: > {lo:.4g} {unit}".rstrip()
    else:
        tol = f"{what}: [{lo:.4g}, {hi:.4g}] {unit}".rstrip()
    if expected is None:
        expected = (lo + hi) / 2 if math.isfinite(lo) and math.isfinite(hi) else (hi if math.isfinite(hi) else lo)
    return Check(name, category, float(expected), float(measured), tol, "pass" if ok else "fail", citation, note,
                 unit, float(se), float(lo) if math.isfinite(lo) else float("nan"),
                 float(hi) if math.isfinite(hi) else float("nan"))


# ======================================================================================================
# registry

@dataclass(frozen=True)
class CheckSpec:
    name: str
    category: str
    func: Callable
    quick: bool
    description: str


REGISTRY: list[CheckSpec] = []


def register(name: str, category: str, quick: bool = False):
    """Decorator: add a check function ``f(ctx) -> list[Check]`` to the registry.

    ``quick`` marks it as part of the ``--quick`` subset. The first paragraph of the function's
    docstring becomes the check's description in the report.
    """
    def deco(func):
        doc = " ".join((func.__doc__ or "").strip().split("\n\n")[0].split())
        REGISTRY.append(CheckSpec(name, category, func, quick, doc))
        return func
    return deco


@dataclass
class Context:
    quick: bool = False
    workers: int = 2

    def n(self, quick_value, full_value):
        """Sample size for the current mode."""
        return quick_value if self.quick else full_value


# ======================================================================================================
# running

def checks(quick: bool = False) -> list[CheckSpec]:
    """The registered checks of a mode (quick: the subset marked quick)."""
    return [c for c in REGISTRY if c.quick or not quick]


def run_validation(quick: bool = False, workers: int | None = None, progress: bool = True,
                   only: list[str] | None = None) -> pd.DataFrame:
    """Run the checks (all, or the quick subset; ``only`` filters by name prefix) and return the
    table: one row per check result with the columns of :data:`COLUMNS`."""
    if workers is None:
        workers = os.cpu_count() or 1
    ctx = Context(quick=quick, workers=max(1, int(workers)))
    selected = [c for c in checks(quick) if not only or any(c.name.startswith(p) for p in only)]
    rows = []
    t_all = time.perf_counter()
    for i, spec in enumerate(selected, 1):
        if progress:
            print(f"[{i}/{len(selected)}] {spec.name} ...", end="", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            out = spec.func(ctx)
        except Exception as exc:  # noqa: BLE001 - a check that crashes is a failed check
            tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
            out = [Check(spec.name, spec.category, float("nan"), float("nan"), "", "fail",
                         note=f"the check raised {tb}")]
        wall = time.perf_counter() - t0
        for row in out:
            row.wall_s = wall
            row.quick = spec.quick
        rows.extend(out)
        if progress:
            verdicts = ", ".join(r.verdict for r in out)
            print(f" {verdicts} ({wall:.1f} s)", file=sys.stderr, flush=True)
    df = pd.DataFrame([r.as_row() for r in rows], columns=COLUMNS)
    df.attrs["wall_s"] = time.perf_counter() - t_all
    df.attrs["mode"] = "quick" if quick else "full"
    return df
