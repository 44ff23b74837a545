"""Errors raised for configurations that make no physical sense, and the checks that raise them.

Bounds on every number at the surface (so that no value overflows, allocates without limit or
runs for ever before the kernel sees it):

* any physical quantity: finite and at most :data:`MAX_MAGNITUDE` (1e15) in the unit its field
  names (µm, ms, µs, s⁻¹, M⁻¹ s⁻¹, ...); no mcsyn field has a meaningful value above it;
* counts (sites, molecules per release, stimuli, clusters): whole numbers <= :data:`MAX_COUNT` (1e9);
* time: ``timing.duration_ms`` <= :data:`MAX_DURATION_MS` (1e6 ms), every step >=
  :data:`MIN_STEP_US` (1e-6 µs); the work of a run is bounded separately (:mod:`mcsyn.budget`).
"""
import math
import numbers

MAX_MAGNITUDE = 1e15
MAX_COUNT = 10 ** 9
MAX_DURATION_MS = 1e6
MIN_STEP_US = 1e-6
MAX_SHOWN_CHARS = 120


class ModelError(ValueError):
    """A model field holds a value that is not valid.

    The message names the field, the value and what would be valid, so that a user can fix the
    configuration without reading the source.
    """

    def __init__(self, field, value, valid):
        self.field = field
        self.value = value
        self.valid = valid
        shown = repr(value)
        if len(shown) > MAX_SHOWN_CHARS:      # a 400-digit integer or a whole table would bury the reason
            shown = f"{shown[:MAX_SHOWN_CHARS // 2]}...{shown[-MAX_SHOWN_CHARS // 4:]} ({len(shown)} characters)"
        super().__init__(f"{field} = {shown} is not valid: {valid}")


def require_real(field, value, low=-MAX_MAGNITUDE, high=MAX_MAGNITUDE, what=None):
    """``value`` as a float, or ModelError unless it is a real number (not a bool) in [low, high]."""
    what = what or f"a finite number in [{low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ModelError(field, value, f"must be {what}")
    try:
        x = float(value)
    except OverflowError:
        raise ModelError(field, value, f"must be {what}") from None
    if not (math.isfinite(x) and low <= x <= high):
        raise ModelError(field, value, f"must be {what}")
    return x


def require_positive(field, value, high=MAX_MAGNITUDE):
    x = require_real(field, value, 0.0, high, f"a finite number > 0 and <= {high:g}")
    if not x > 0:
        raise ModelError(field, value, f"must be a finite number > 0 and <= {high:g}")
    return x


def require_nonnegative(field, value, high=MAX_MAGNITUDE):
    return require_real(field, value, 0.0, high, f"a finite number >= 0 and <= {high:g}")


def require_fraction(field, value):
    return require_real(field, value, 0.0, 1.0, "a number in [0, 1]")


def require_count(field, value, low=0, high=MAX_COUNT):
    """``value`` as an int, or ModelError unless it is a whole number (int or numpy integer) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ModelError(field, value, f"must be a whole number in [{low}, {high:g}]")
    return int(value)


def require_choice(field, value, choices):
    if value not in choices:
        raise ModelError(field, value, f"must be one of {', '.join(repr(c) for c in choices)}")
    return value


class PharmacologyWarning(UserWarning):
    """A drug or adaptation that has no effect on the synapse it is applied to."""
