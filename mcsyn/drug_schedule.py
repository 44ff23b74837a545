"""Drug concentrations that change during one run (an intravenous bolus over seconds, a drug that
washes in during a train).

Where a drug table ``drugs = {name: concentration}`` takes a concentration, it also takes a
schedule of the free concentration, piecewise constant: C(t) = ``concentrations_M[i]`` from
``times_s[i]`` until the next time. The first time is 0 s (the start of the run) and every time
lies inside the run. Any of these forms::

    drugs = {"cocaine": "0 s: 0 nM; 20 ms: 300 nM; 60 ms: 0 nM"}            # piecewise, with units
    drugs = {"cocaine": {"times_s": [0, 0.02], "concentrations_M": [0, 3e-7]}}    # tabulated
    drugs = {"cocaine": {"times": ["0 s", "20 ms"], "concentrations": ["0 nM", "300 nM"]}}
    drugs = {"cocaine": {"regimen": {"route": "iv_infusion", "rate": "0.3 mg/kg/s", ...},
                         "step_s": 0.1}}                                         # pharmacokinetics
    drugs = {"cocaine": DrugSchedule((0, 0.02), (0, 3e-7))}

A regimen (:class:`mcsyn.pharmacokinetics.Regimen` fields; ``drug`` defaults to the table's
name) gives the free brain concentration of :mod:`mcsyn.pharmacokinetics`, run time 0 being
regimen time 0, held at its value in the middle of each step of ``step_s`` (steps also break at
every dose and infusion end). That model has no delay between plasma and brain: an intravenous
bolus is a step, an infusion over seconds a ramp.

A schedule acts on the binding clocks of a kinetic blocker (modes ``"kinetic"``, which starts at
the equilibrium of C(0), and ``"acute"``, which starts drug-free): the transition ground →
``blocked:<drug>`` runs at kon·C(t), kon = koff/Ki, written as a
:class:`~mcsyn.rate_schedule.RateSchedule` on the model. Unbinding stays at koff. A schedule
is refused (:class:`~mcsyn.ModelError` naming ``drugs.<name>`` or ``mode``) in the equilibrium
mode, for a drug without ``koff_per_s`` and for mechanisms other than the blocker. In the saved
configuration a schedule is its table form (or the regimen form as given), which builds the same
model again.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from . import library
from .errors import ModelError
from .mechanisms import Blocker, target_ki
from .rate_schedule import RateSchedule
from .units import parse_quantity

TABLE_KEYS = ("times_s", "times", "concentrations_M", "concentrations", "regimen", "step_s")
_HELP = ("a schedule such as '0 s: 0 nM; 2 s: 300 nM', a table {times_s = [...], concentrations_M = [...]} "
         "or {regimen = {...}, step_s = ...}")


@dataclass(frozen=True)
class DrugSchedule:
    """A free drug concentration, piecewise constant in time: ``concentrations_M[i]`` (M) from
    ``times_s[i]`` (s) until the next time. ``times_s[0]`` is 0; times increase strictly;
    concentrations are finite and >= 0."""

    times_s: tuple
    concentrations_M: tuple

    def __post_init__(self):
        self._set(self.times_s, self.concentrations_M, "DrugSchedule")

    def _set(self, times, concentrations, field: str):
        times, conc = _floats(times, f"{field}.times_s"), _floats(concentrations, f"{field}.concentrations_M")
        if len(times) != len(conc) or not times:
            raise ModelError(f"{field}.concentrations_M", list(conc), f"needs one concentration per time "
                                                                      f"({len(times)} times, at least one)")
        if times[0] != 0.0:
            raise ModelError(f"{field}.times_s[0]", times[0], "the first time must be 0 s (the start of the run)")
        for i in range(1, len(times)):
            if not times[i] > times[i - 1]:
                raise ModelError(f"{field}.times_s[{i}]", times[i], "times must increase strictly")
        for i, c in enumerate(conc):
            if c < 0:
                raise ModelError(f"{field}.concentrations_M[{i}]", c, "a concentration must not be negative")
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "concentrations_M", conc)

    @classmethod
    def checked(cls, times_s, concentrations_M, field: str) -> "DrugSchedule":
        """A schedule whose errors name ``field`` (``drugs.cocaine.times_s[2]``, ...)."""
        out = cls.__new__(cls)
        out._set(times_s, concentrations_M, field)
        return out

    @property
    def initial_M(self) -> float:
        """The concentration at the start of the run (M)."""
        return self.concentrations_M[0]

    def concentration_M(self, times_s):
        """C at ``times_s`` (s; an array or a number)."""
        i = np.searchsorted(self.times_s, np.asarray(times_s, dtype=float), side="right") - 1
        return np.asarray(self.concentrations_M)[np.maximum(i, 0)]

    def check_within(self, duration_s: float, field: str):
        """Raise unless every time lies inside a run of ``duration_s``."""
        for i, t in enumerate(self.times_s):
            if t >= duration_s:
                raise ModelError(f"{field}.times_s[{i}]", t, f"must lie inside the run "
                                                             f"(timing.duration_ms = {duration_s * 1e3:g})")
        return self

    def to_config(self) -> dict:
        """The table form of a configuration (exact: floats as they are)."""
        return {"times_s": list(self.times_s), "concentrations_M": list(self.concentrations_M)}

    @classmethod
    def from_regimen(cls, regimen, duration_s: float, step_s: float, field: str = "schedule") -> "DrugSchedule":
        """The free brain concentration of ``regimen`` (a :class:`mcsyn.pharmacokinetics.Regimen`)
        over a run of ``duration_s``, held at its midpoint value on steps of ``step_s`` that also
        break at every dose and infusion end inside the run."""
        from .pharmacokinetics.models import brain_free_function   # pandas and scipy: only for a regimen
        if not (math.isfinite(step_s) and 0 < step_s):
            raise ModelError(f"{field}.step_s", step_s, "must be a time step > 0 (s)")
        starts_s = regimen.dose_times_h() * 3600.0
        breaks = list(starts_s) + (list(starts_s + regimen.duration_h * 3600.0) if regimen.duration_h else [])
        grid = np.union1d(np.arange(0.0, duration_s, step_s), [b for b in breaks if 0.0 < b < duration_s])
        # a dose time in hours comes back a rounding error away from a grid point: one break
        grid = grid[np.concatenate(([True], np.diff(grid) > 1e-9 * max(1.0, duration_s)))]
        edges = np.append(grid, duration_s)
        middle_h = 0.5 * (edges[:-1] + edges[1:]) / 3600.0
        conc = brain_free_function(regimen)(middle_h)
        keep = np.concatenate(([True], np.diff(conc) != 0))     # a change only where C changes
        return cls.checked(grid[keep], conc[keep], field)


def _floats(values, field: str) -> tuple:
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError):
        raise ModelError(field, values, "must be a list of numbers") from None
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise ModelError(field, values, "must be a list of finite numbers")
    return tuple(float(x) for x in arr)


def is_schedule(value) -> bool:
    """Whether a drug table value is a schedule (not one concentration)."""
    return isinstance(value, (DrugSchedule, dict)) or (isinstance(value, str) and ":" in value)


def _with_units(value, unit: str, field: str) -> float:
    if not isinstance(value, str):
        raise ModelError(field, value, f"must be a quantity with its unit (e.g. '2 s', '300 nM'); expected {unit}")
    return parse_quantity(value, unit, field)


def _from_text(text: str, field: str) -> DrugSchedule:
    times, conc = [], []
    for i, entry in enumerate(p for p in text.split(";") if p.strip()):
        if entry.count(":") != 1:
            raise ModelError(f"{field}[{i}]", entry.strip(), "must be 'TIME: CONCENTRATION' (e.g. '2 s: 300 nM')")
        t, c = entry.split(":")
        times.append(_with_units(t.strip(), "s", f"{field}[{i}].time"))
        conc.append(_with_units(c.strip(), "M", f"{field}[{i}].concentration"))
    return DrugSchedule.checked(times, conc, field)


def _from_table(table: dict, name: str, field: str, duration_s: float) -> DrugSchedule:
    for key in table:
        if key not in TABLE_KEYS:
            library.suggest(key, TABLE_KEYS, "schedule key", f"{field}.{key}")
    if "regimen" in table:
        from .pharmacokinetics.regimen import regimen_from_dict      # pandas and scipy: only for a regimen
        extra = [k for k in table if k not in ("regimen", "step_s")]
        if extra or "step_s" not in table:
            raise ModelError(f"{field}.step_s" if not extra else f"{field}.{extra[0]}", table.get("step_s"),
                             "a regimen schedule has exactly the keys regimen and step_s")
        regimen = dict(table["regimen"]) if isinstance(table["regimen"], dict) else table["regimen"]
        if isinstance(regimen, dict):
            regimen.setdefault("drug", name)
        try:
            regimen = regimen_from_dict(regimen, f"{field}.regimen")
        except ModelError as err:      # a Regimen names its own fields "regimen.<field>"
            where = err.field if err.field.startswith(f"{field}.") else f"{field}.{err.field}"
            raise ModelError(where, err.value, err.valid) from None
        step = parse_quantity(table["step_s"], "s", f"{field}.step_s")
        return DrugSchedule.from_regimen(regimen, duration_s, step, field)
    pairs = [k for k in ("times_s", "times") if k in table], [k for k in ("concentrations_M", "concentrations") if k in table]
    if len(pairs[0]) != 1 or len(pairs[1]) != 1:
        raise ModelError(field, table, f"needs one of times_s/times and one of concentrations_M/concentrations ({_HELP})")
    (tk,), (ck,) = pairs
    values = {}
    for key, unit in ((tk, "s"), (ck, "M")):
        items = table[key]
        if not isinstance(items, (list, tuple)):
            raise ModelError(f"{field}.{key}", items, "must be a list")
        # times_s / concentrations_M hold numbers in s / M; times / concentrations hold quantities
        parse = parse_quantity if key.endswith(("_s", "_M")) else _with_units
        values[key] = [parse(v, unit, f"{field}.{key}[{i}]") for i, v in enumerate(items)]
    return DrugSchedule.checked(values[tk], values[ck], field)


def parse_schedule(value, name: str, field: str, duration_s: float) -> DrugSchedule:
    """A :class:`DrugSchedule` from any form of the module docstring, checked to lie inside a run
    of ``duration_s``; errors name ``field`` (``drugs.<name>``)."""
    if isinstance(value, DrugSchedule):
        out = value
    elif isinstance(value, str):
        out = _from_text(value, field)
    elif isinstance(value, dict):
        out = _from_table(value, name, field, duration_s)
    else:
        raise ModelError(field, value, f"must be a concentration or {_HELP}")
    return out.check_within(duration_s, field)


def split_schedules(drugs: dict | None, duration_ms: float) -> tuple[dict, dict]:
    """``(drugs with each schedule replaced by its concentration at t = 0, {name: DrugSchedule})``."""
    constant, schedules = {}, {}
    for name, value in (drugs or {}).items():
        if is_schedule(value):
            schedules[name] = parse_schedule(value, name, f"drugs.{name}", duration_ms * 1e-3)
            constant[name] = schedules[name].initial_M
        else:
            constant[name] = value
    return constant, schedules


def attach_schedules(model, schedules: dict, doses: dict, mode: str, drug_of) -> tuple:
    """``(model with a RateSchedule for the binding of each scheduled blocker, {label: schedule})``.

    ``doses`` are the parsed doses (``{label: Dose}``) and ``drug_of(name)`` the Drug of a table name."""
    if not schedules:
        return model, {}
    if mode == "equilibrium":
        raise ModelError("mode", mode, f"drugs {sorted(schedules)} have concentrations that change during the "
                                       f"run: use mode 'kinetic' (start at equilibrium) or 'acute' (start drug-free)")
    added, by_label = [], {}
    for name, schedule in schedules.items():
        drug = drug_of(name)
        if drug.mechanism != Blocker.name or drug.koff_per_s is None:
            raise ModelError(f"drugs.{name}", drug.label, "a concentration that changes during the run acts on "
                             "blockers with binding kinetics (koff_per_s) only")
        by_label[drug.label] = schedule
        added += _group_schedules(model, drug, schedule)
    return dataclasses.replace(model, rate_schedules=list(model.rate_schedules) + added), by_label


def _group_schedules(model, drug, schedule: DrugSchedule) -> list:
    state = f"blocked:{drug.label}"
    out = []
    for g in model.sites:
        if state not in g.scheme.states:
            continue
        ki = target_ki(drug, library.scheme_entry(g.scheme.name)[1])
        kon_per_M_per_s = drug.koff_per_s / ki
        times_ms = [t * 1e3 for t in schedule.times_s[1:]]
        rates = [kon_per_M_per_s * c for c in schedule.concentrations_M[1:]]
        if times_ms:
            out.append(RateSchedule(g.label, g.scheme.ground, state, tuple(times_ms), tuple(rates)))
    return out
