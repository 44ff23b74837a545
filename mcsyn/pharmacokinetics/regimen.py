"""Dosing regimens: oral doses (single or repeated), intravenous boluses and infusions.

Amounts are written as people write them: ``"20 mg"``, ``"0.5 mg/kg"`` (with ``body_mass_kg``),
``"50 umol"``; infusion rates as ``"2 mg/h"`` or ``"0.1 mg/kg/h"``; times as hours or strings
(``"12 h"``, ``"1 day"``). Every field is checked when the regimen is made; a bad one raises
:class:`~mcsyn.ModelError` naming ``regimen.<field>``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..units import parse_quantity, registry
from .data import DrugPK, parameters

ROUTES = ("oral", "iv_bolus", "iv_infusion")
_AMOUNT_HELP = "an amount such as '20 mg', '0.5 mg/kg' (with body_mass_kg) or '50 umol'"
_RATE_HELP = "a rate such as '2 mg/h', '0.1 mg/kg/h' (with body_mass_kg) or '1 umol/h'"


_LEADING_NUMBER = re.compile(r"^\s*[+-]?(\d|\.\d)")


def _has_number(value) -> bool:
    """pint reads a bare unit ("mg") as one of it; a dose must be written with its number."""
    return not isinstance(value, str) or bool(_LEADING_NUMBER.match(value))


def _per_body_mass(units) -> bool:
    """Whether a pint unit container has a mass in its denominator (``mg/kg``, ``mg/kg/h``)."""
    ureg = registry()
    for name, power in units._units.items():
        if power < 0 and ureg.Quantity(1.0, name).dimensionality == ureg.Quantity(1.0, "kg").dimensionality:
            return True
    return False


def parse_amount(value, field: str, per_time: bool = False) -> tuple[float, str, bool]:
    """``value`` as (magnitude, unit, per_body_mass): magnitude in mg or mol (per kg of body mass
    when ``per_body_mass``; per hour when ``per_time``)."""
    help_text = _RATE_HELP if per_time else _AMOUNT_HELP
    if not isinstance(value, str) or not value.strip() or not _has_number(value):
        raise ModelError(field, value, f"must be {help_text} (a number with its unit)")
    ureg = registry()
    try:
        q = ureg.Quantity(value.strip().replace("µ", "u").replace("μ", "u"))
    except Exception as exc:   # pint raises several error types, some not PintError
        raise ModelError(field, value, f"does not parse ({exc.__class__.__name__}); expected {help_text}") from None
    per_kg = _per_body_mass(q.units) if hasattr(q, "units") else False
    time = "/h" if per_time else ""
    for base in ("mg", "mol"):
        unit = f"{base}/kg{time}" if per_kg else f"{base}{time}"
        target = ureg.Quantity(1.0, unit)
        same = getattr(q, "dimensionality", None) == target.dimensionality
        if same and (per_kg or str(q.dimensionality) != "dimensionless"):
            x = float(q.to(unit).magnitude)
            if not (math.isfinite(x) and x > 0):
                raise ModelError(field, value, "must be a finite amount > 0")
            return x, base, per_kg
    dims = getattr(q, "dimensionality", "dimensionless")
    raise ModelError(field, value, f"has units of dimension {dims}; expected {help_text}")


def _hours(value, field: str, allow_zero: bool = False) -> float:
    if not _has_number(value):
        raise ModelError(field, value, "must be a time with its number (e.g. 12 or '12 h')")
    x = parse_quantity(value, "h", field)
    if not math.isfinite(x) or (x <= 0 and not allow_zero):
        raise ModelError(field, value, "must be a time > 0" if not allow_zero else "must be a time >= 0")
    return x


@dataclass(frozen=True)
class Regimen:
    """How a drug is given.

    ``route`` is ``"oral"`` (``dose`` every ``interval_h``, ``number`` times), ``"iv_bolus"`` (the
    same, into the blood) or ``"iv_infusion"`` (``rate`` for ``duration_h``, repeated ``number``
    times every ``interval_h``). ``drug`` names a drug of the library (its Ki and koff; a variant
    ``"name@variant"`` selects affinities); ``pharmacokinetics`` names the PK entry (default: the
    drug's base name; ``"citalopram@label"`` selects PK values). ``body_mass_kg`` is needed for
    doses per kg and for volumes of distribution given per kg (all built-in ones are).
    """

    drug: str
    route: str = "oral"
    dose: str | None = None
    interval_h: float | str = 24.0
    number: int = 1
    rate: str | None = None
    duration_h: float | str | None = None
    start_h: float | str = 0.0
    body_mass_kg: float | str | None = None
    pharmacokinetics: str | None = None

    def __post_init__(self):
        if self.route not in ROUTES:
            raise ModelError("regimen.route", self.route, f"must be one of {', '.join(map(repr, ROUTES))}")
        if isinstance(self.number, bool) or not isinstance(self.number, (int, np.integer)) or self.number < 1:
            raise ModelError("regimen.number", self.number, "must be a whole number of doses >= 1")
        object.__setattr__(self, "interval_h", _hours(self.interval_h, "regimen.interval_h"))
        object.__setattr__(self, "start_h", _hours(self.start_h, "regimen.start_h", allow_zero=True))
        if self.body_mass_kg is not None:
            if not _has_number(self.body_mass_kg):
                raise ModelError("regimen.body_mass_kg", self.body_mass_kg, "must be a mass with its number (e.g. 70)")
            mass = parse_quantity(self.body_mass_kg, "kg", "regimen.body_mass_kg")
            if not mass > 0:
                raise ModelError("regimen.body_mass_kg", self.body_mass_kg, "must be > 0")
            object.__setattr__(self, "body_mass_kg", mass)
        if self.route == "iv_infusion":
            self._check_infusion()
        else:
            for key in ("rate", "duration_h"):
                if getattr(self, key) is not None:
                    raise ModelError(f"regimen.{key}", getattr(self, key), f"is only for route 'iv_infusion' "
                                                                          f"(this regimen is {self.route!r})")
            if self.dose is None:
                raise ModelError("regimen.dose", None, f"route {self.route!r} needs a dose ({_AMOUNT_HELP})")
            self._amount()
        from .. import library
        library.drug(self.drug, "regimen.drug")
        pk = self.pk()
        if self.route == "oral":
            pk.require("bioavailability", "an oral regimen")
            pk.absorption_rate()
        self.volume_L()

    def _check_infusion(self):
        if self.dose is not None:
            raise ModelError("regimen.dose", self.dose, "an infusion is given by rate and duration_h, not dose")
        if self.rate is None:
            raise ModelError("regimen.rate", None, f"an infusion needs a rate ({_RATE_HELP})")
        if self.duration_h is None:
            raise ModelError("regimen.duration_h", None, "an infusion needs a duration")
        object.__setattr__(self, "duration_h", _hours(self.duration_h, "regimen.duration_h"))
        if self.number > 1 and self.duration_h > self.interval_h:
            raise ModelError("regimen.duration_h", self.duration_h,
                             f"repeated infusions must not overlap: at most interval_h = {self.interval_h:g} h")
        self._amount()

    def pk(self) -> DrugPK:
        """The pharmacokinetic parameters this regimen uses."""
        name = self.pharmacokinetics or str(self.drug).partition("@")[0]
        field = "regimen.pharmacokinetics" if self.pharmacokinetics else "regimen.drug"
        return parameters(name, field)

    def _body_mass(self, why: str) -> float:
        if self.body_mass_kg is None:
            raise ModelError("regimen.body_mass_kg", None, f"{why}; give the body mass (e.g. 70)")
        return self.body_mass_kg

    def _amount(self) -> float:
        """One dose (mol) or the infusion rate (mol/h), of the base."""
        field, value = ("regimen.rate", self.rate) if self.route == "iv_infusion" else ("regimen.dose", self.dose)
        x, unit, per_kg = parse_amount(value, field, per_time=self.route == "iv_infusion")
        if per_kg:
            x *= self._body_mass(f"{field} = {value!r} is per kg of body mass")
        if unit == "mg":
            x = x * 1e-3 / self.pk().dose_molar_mass_g_per_mol
        return x

    @property
    def amount_mol(self) -> float:
        """One dose of the base (mol); for an infusion, the rate (mol/h)."""
        return self._amount()

    def volume_L(self) -> float:
        """The volume of distribution of the parent for this body mass (L)."""
        pk = self.pk()
        v = pk.require("volume_of_distribution_L_per_kg", "any concentration")
        return v * self._body_mass(f"the volume of distribution of {pk.label} is per kg of body mass")

    def dose_times_h(self) -> np.ndarray:
        """Start of each dose (or infusion), in hours."""
        return self.start_h + self.interval_h * np.arange(self.number)


def regimen_from_dict(d: dict, field_prefix: str = "regimen") -> Regimen:
    """A :class:`Regimen` from a configuration table; unknown keys are errors."""
    import dataclasses
    known = [f.name for f in dataclasses.fields(Regimen)]
    if not isinstance(d, dict):
        raise ModelError(field_prefix, d, "must be a table of regimen fields")
    for key in d:
        if key not in known:
            from ..library import suggest
            suggest(key, known, "regimen field", f"{field_prefix}.{key}")
    if "drug" not in d:
        raise ModelError(f"{field_prefix}.drug", None, "a regimen needs the drug")
    return Regimen(**d)
