"""First-order rates that change at given times during one run (the model side of a drug
concentration that changes: :mod:`mcsyn.drug_schedule` writes these for the kon·C of its binding).

A :class:`RateSchedule` names one first-order transition of one site group and the rates it takes
from given times on; before the first time the transition keeps its scheme's rate. The model
carries them in ``SynapseModel.rate_schedules``; :func:`kernel_rate_changes` turns them into the
kernel's table of (time, exit row, new rate). The kernel (``ext/schedule.pxi``) applies each change
at its time and redraws every clock whose state has that exit: exits are memoryless, so this is
exact, and a membrane site or a volume site group's ground state may change its rates. A volume
group's other states may not (their sites keep no clock unless they had an exit at the start).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ModelError


@dataclass(frozen=True)
class RateSchedule:
    """The rate of the first-order transition ``source`` → ``target`` of site group ``group`` (its
    label) is ``rates_per_s[i]`` from ``times_ms[i]`` until the next time (or the end of the run).

    Times are strictly increasing and inside the run (0 < t < ``timing.duration_ms``); rates are
    finite and >= 0. Before ``times_ms[0]`` the scheme's own rate holds."""

    group: str
    source: str
    target: str
    times_ms: tuple
    rates_per_s: tuple

    def __post_init__(self):
        object.__setattr__(self, "times_ms", tuple(float(t) for t in np.atleast_1d(self.times_ms)))
        object.__setattr__(self, "rates_per_s", tuple(float(r) for r in np.atleast_1d(self.rates_per_s)))

    def validate(self, model, where: str = "rate_schedules[0]"):
        """Raise :class:`~mcsyn.ModelError` naming ``where.<field>`` unless this schedule fits ``model``."""
        group = next((g for g in model.sites if g.label == self.group), None)
        if group is None:
            raise ModelError(f"{where}.group", self.group, f"must be the label of a site group "
                                                           f"({[g.label for g in model.sites]})")
        scheme = group.scheme
        for key in ("source", "target"):
            if getattr(self, key) not in scheme.states:
                raise ModelError(f"{where}.{key}", getattr(self, key), f"must be a state of {self.group!r} "
                                                                       f"({list(scheme.states)})")
        matching = [t for t in scheme.transitions if (t.source, t.target) == (self.source, self.target)]
        if len(matching) != 1 or matching[0].kind != "first_order":
            raise ModelError(f"{where}.target", self.target, f"{self.group!r} needs exactly one first_order "
                                                             f"transition {self.source} -> {self.target}")
        if group.location == "volume" and self.source != scheme.ground:
            raise ModelError(f"{where}.source", self.source, f"a volume site group's rates may change only "
                                                             f"from its ground state {scheme.ground!r}")
        times, rates = self.times_ms, self.rates_per_s
        if not times or len(times) != len(rates):
            raise ModelError(f"{where}.rates_per_s", rates, f"needs one rate per time ({len(times)} times)")
        duration = model.timing.duration_ms
        for i, t in enumerate(times):
            if not (math.isfinite(t) and 0.0 < t < duration) or (i and t <= times[i - 1]):
                raise ModelError(f"{where}.times_ms[{i}]", t, f"times must increase strictly inside the run "
                                                              f"(0 < t < timing.duration_ms = {duration})")
        for i, r in enumerate(rates):
            if not (math.isfinite(r) and r >= 0.0):
                raise ModelError(f"{where}.rates_per_s[{i}]", r, "must be a finite rate >= 0 (s⁻¹)")
        return self


def validate_all(model):
    """Check ``model.rate_schedules``: each one, and at most one per transition."""
    schedules = model.rate_schedules
    if not isinstance(schedules, (list, tuple)):
        raise ModelError("rate_schedules", schedules, "must be a list of mcsyn.RateSchedule")
    seen = set()
    for i, r in enumerate(schedules):
        where = f"rate_schedules[{i}]"
        if not isinstance(r, RateSchedule):
            raise ModelError(where, r, "must be a mcsyn.RateSchedule")
        r.validate(model, where)
        key = (r.group, r.source, r.target)
        if key in seen:
            raise ModelError(where, key, "a transition may have one rate schedule (merge them)")
        seen.add(key)


def kernel_rate_changes(model, group_states, tables: dict, exit_plain: int) -> dict:
    """The kernel's rate-change table, sorted by time: ``rate_change_time_us``,
    ``rate_change_exit`` (the exit row in ``tables``) and ``rate_change_per_us``.

    ``group_states`` is the compiled ``[(first global state, states)]`` per group and ``tables``
    the exit tables of :func:`mcsyn.compile._transition_tables`."""
    labels = [g.label for g in model.sites]
    start, to, kind = tables["exit_start"], tables["exit_to"], tables["exit_kind"]
    rows = []
    for r in model.rate_schedules:
        first, states = group_states[labels.index(r.group)]
        src, dst = first + states.index(r.source), first + states.index(r.target)
        exits = [e for e in range(start[src], start[src + 1]) if to[e] == dst and kind[e] == exit_plain]
        (exit_row,) = exits          # validate_all: exactly one first-order transition
        rows.extend((t * 1e3, exit_row, rate * 1e-6) for t, rate in zip(r.times_ms, r.rates_per_s))
    rows.sort(key=lambda row: row[0])
    return dict(rate_change_time_us=np.array([row[0] for row in rows], dtype=np.float64),
                rate_change_exit=np.array([row[1] for row in rows], dtype=np.int32),
                rate_change_per_us=np.array([row[2] for row in rows], dtype=np.float64))
