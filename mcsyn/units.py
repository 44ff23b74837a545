"""Physical quantities given as text ("50 nM", "0.2 uM", "763 um^2/s") or as plain numbers.

:func:`parse_quantity` turns one value into a float in a target unit with `pint`. A plain number
is taken to be in the target unit already. A string must carry units of the right dimension: a
concentration written as ``"5 ms"`` or ``"5"`` is an error that names the field, the value and the
dimension that was expected.

Field names in mcsyn carry their unit (``cleft_radius_um``, ``koff_per_s``, ...).
:func:`unit_for_field` maps such a name to its unit, so that configuration files may write
``cleft_radius_um = "250 nm"`` and get 0.25.
"""
from __future__ import annotations

import math
import re

from .errors import MAX_MAGNITUDE, ModelError

# The quantity-string grammar, bounded so that pint never evaluates an expression that takes long
# or overflows: at most MAX_QUANTITY_CHARS characters of digits, letters, spaces and + - . * / ^ ( ) %,
# and every power (``^`` or ``**``) a single digit, optionally signed, not raised again
# (``"um^2/ms"`` and ``"1/um**3"`` are fine; ``"10**10**10 um"`` and ``"2**2000 um"`` are not).
MAX_QUANTITY_CHARS = 64
_QUANTITY_CHARS = re.compile(r"[0-9A-Za-z_ .+\-*/^()%]*")
_POWER = re.compile(r"(\*\*|\^)\s*\(?\s*[+-]?\s*(\d*)")

_REGISTRY = None

# name of a dimension as users know it, by pint dimensionality string
_DIMENSION_WORDS = {
    "[substance] / [length] ** 3": "a concentration (e.g. '50 nM')",
    "[time]": "a time (e.g. '5 ms')",
    "1 / [time]": "a rate (e.g. '20 /s')",
    "[length]": "a length (e.g. '0.2 um')",
    "[length] ** 2 / [time]": "a diffusion coefficient (e.g. '0.763 um^2/ms')",
    "[length] ** 3 / [substance] / [time]": "a second-order rate constant (e.g. '1e7 /M/s')",
    "[substance] / [length] ** 3 / [time]": "a concentration per time (e.g. '4 uM/s')",
    "1 / [length] ** 2": "a surface density (e.g. '800 /um^2')",
    "1 / [length] ** 3": "a volume density (e.g. '400 /um^3')",
    "[substance] / [mass]": "an amount per tissue mass (e.g. '25 pmol/g')",
    "dimensionless": "a plain number",
}

# field-name suffixes and the unit they imply, longest first
_SUFFIX_UNITS = (
    ("_per_M_per_s", "1/M/s"),
    ("_um2_per_ms", "um^2/ms"),
    ("_pmol_per_g", "pmol/g"),
    ("_uM_per_s", "uM/s"),
    ("_per_um2", "1/um^2"),
    ("_per_um3", "1/um^3"),
    ("_per_mV", "1/mV"),
    ("_per_s", "1/s"),
    ("_um", "um"),
    ("_pS", "pS"),
    ("_mV", "mV"),
    ("_mM", "mM"),
    ("_nm", "nm"),
    ("_ms", "ms"),
    ("_us", "us"),
    ("_hz", "Hz"),
    ("_M", "M"),
)

# fields that hold physical quantities but whose name carries no unit suffix
_NAMED_UNITS = {
    "km": "M",
    "ki": "M",
    "kd": "M",
    "ambient": "M",
    "concentration": "M",
    "vmax": "M/s",
}

# fields that are plain numbers by their meaning
DIMENSIONLESS_FIELDS = frozenset({
    "volume_fraction", "tortuosity", "molecules", "molecules_per_vesicle", "fraction_released",
    "probability", "release_probability", "quantal_cv", "gain", "occupancy_per_release", "count",
    "n_stimuli", "n_clusters", "vesicle_content_factor_max", "prefrontal_fraction_of_clearance",
    "fraction_of_clearance", "autoreceptor_gain", "factor", "temperature_c", "efficacy",
})


def registry():
    """The shared pint UnitRegistry (created on first use)."""
    global _REGISTRY
    if _REGISTRY is None:
        import pint
        _REGISTRY = pint.UnitRegistry()
    return _REGISTRY


def _describe(dimensionality) -> str:
    key = str(dimensionality)
    return _DIMENSION_WORDS.get(key, f"a quantity of dimension {key}")


def unit_for_field(name: str) -> str | None:
    """The unit a field name implies (``"cleft_radius_um"`` -> ``"um"``), or None when the field
    is a plain number or unknown."""
    base = name.rsplit(".", 1)[-1]
    if base in _NAMED_UNITS:
        return _NAMED_UNITS[base]
    if base in DIMENSIONLESS_FIELDS:
        return None
    for suffix, unit in _SUFFIX_UNITS:
        if base.endswith(suffix):
            return unit
    return None


def _float(field, value) -> float:
    try:
        return float(value)
    except (OverflowError, TypeError, ValueError):
        raise ModelError(field, value, f"must be a finite number of at most {MAX_MAGNITUDE:g}") from None


def _check_grammar(field, value, text):
    """Refuse a quantity string outside the bounded grammar (see MAX_QUANTITY_CHARS)."""
    if len(text) > MAX_QUANTITY_CHARS or not _QUANTITY_CHARS.fullmatch(text):
        raise ModelError(field, value, f"must be a number with units in at most {MAX_QUANTITY_CHARS} characters "
                                       f"of digits, letters, spaces and + - . * / ^ ( ) %")
    for m in _POWER.finditer(text):
        rest = text[m.end():].lstrip(" )")
        if len(m.group(2)) != 1 or rest.startswith(("**", "^")):
            raise ModelError(field, value, "powers in a quantity must be single digits (e.g. 'um^2', '1/um**3')")


def parse_quantity(value, unit: str = "M", field: str = "value", allow_negative: bool = False) -> float:
    """Return ``value`` as a float in ``unit``.

    Parameters
    ----------
    value : str, int or float
        A number (taken to be in ``unit`` already) or a string with units such as ``"50 nM"``.
    unit : str
        Target unit, in pint syntax (``"M"``, ``"1/s"``, ``"um^2/ms"``, ``"1/um^3"``).
    field : str
        Name used in error messages (e.g. ``"drugs.fluoxetine"``).
    allow_negative : bool
        Negative values are an error unless this is set.

    Raises
    ------
    ModelError
        For a value without units or with units of the wrong dimension, one that does not parse,
        or one that is not finite or is negative.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # a plain number is in ``unit`` already: no pint, whose import and registry dominate the
        # start-up of a run built from the library's (mostly plain-number) entries
        return _checked(_float(field, value), value, field, unit, allow_negative)
    ureg = registry()
    target = ureg.Quantity(1.0, unit)
    if isinstance(value, bool) or value is None:
        raise ModelError(field, value, f"must be {_describe(target.dimensionality)} in {unit}")
    if isinstance(value, str):
        text = value.strip().replace("µ", "u").replace("μ", "u")
        if not text:
            raise ModelError(field, value, f"must be {_describe(target.dimensionality)}, got an empty string")
        _check_grammar(field, value, text)
        try:
            q = ureg.Quantity(text)
        except Exception as exc:  # pint raises several error types, some not PintError
            raise ModelError(field, value, f"does not parse as a quantity ({exc.__class__.__name__}); "
                                           f"expected {_describe(target.dimensionality)}") from None
        if not hasattr(q, "dimensionality"):
            q = ureg.Quantity(float(q))
        if q.dimensionality != target.dimensionality:
            if str(q.dimensionality) == "dimensionless":
                raise ModelError(field, value, f"has no units; expected {_describe(target.dimensionality)}")
            raise ModelError(field, value, f"has units of {_describe(q.dimensionality)} but must be "
                                           f"{_describe(target.dimensionality)}")
        x = _float(field, q.to(unit).magnitude)
        # pint's conversion factors leave binary noise (50 nM -> 5.0000000000000004e-08)
        if x != 0.0 and math.isfinite(x):
            x = float(f"{x:.15g}")
    else:
        raise ModelError(field, value, f"must be a number or a string with units, "
                                       f"{_describe(target.dimensionality)}")
    return _checked(x, value, field, unit, allow_negative)


def _checked(x: float, value, field: str, unit: str, allow_negative: bool) -> float:
    if not math.isfinite(x):
        raise ModelError(field, value, "must be finite")
    if abs(x) > MAX_MAGNITUDE:
        raise ModelError(field, value, f"must be at most {MAX_MAGNITUDE:g} {unit} in size")
    if x < 0 and not allow_negative:
        raise ModelError(field, value, "must not be negative")
    return x


def parse_field(field: str, value, allow_negative: bool = False):
    """Parse ``value`` for the field named ``field``, with the unit its name implies.

    Fields with no implied unit must hold plain numbers (or strings that pint reads as
    dimensionless numbers)."""
    unit = unit_for_field(field)
    if unit is None:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ModelError(field, value, "must be a plain number")
        if isinstance(value, str):
            return parse_quantity(value, "dimensionless", field, allow_negative)
        x = _float(field, value)
        if not math.isfinite(x) or abs(x) > MAX_MAGNITUDE or (x < 0 and not allow_negative):
            raise ModelError(field, value, f"must be a finite number >= 0 and <= {MAX_MAGNITUDE:g}")
        return value if isinstance(value, int) else x
    return parse_quantity(value, unit, field, allow_negative)



def format_concentration(molar: float, digits: int = 4, micro: str = "u") -> str:
    """A readable concentration string with ``digits`` significant digits (``2.5e-8`` -> ``"25 nM"``;
    ``format_concentration(3.1623e-6, 3, "µ")`` -> ``"3.16 µM"``, as doses are written in figures).
    The unit is the largest one the rounded value reaches (999.96 nM at 3 digits is ``"1 µM"``)."""
    if not math.isfinite(molar):
        return "n/a"
    if molar == 0:
        return "0 M"
    units = ((1.0, "M"), (1e-3, "mM"), (1e-6, micro + "M"), (1e-9, "nM"), (1e-12, "pM"))
    for factor, name in units:
        if float(f"{abs(molar) / factor:.{digits}g}") >= 1 or name == "pM":
            return f"{molar / factor:.{digits}g} {name}"
    return f"{molar:g} M"  # pragma: no cover - the loop always returns
