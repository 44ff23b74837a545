"""Errors raised for configurations that make no physical sense."""


class ModelError(ValueError):
    """A model field holds a value that is not valid.

    The message names the field, the value and what would be valid, so that a user can fix the
    configuration without reading the source.
    """

    def __init__(self, field, value, valid):
        self.field = field
        self.value = value
        self.valid = valid
        super().__init__(f"{field} = {value!r} is not valid: {valid}")


def require_positive(field, value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 or value != value:
        raise ModelError(field, value, "must be a finite number > 0")
    if value == float("inf"):
        raise ModelError(field, value, "must be a finite number > 0")
    return float(value)


def require_nonnegative(field, value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0 or value == float("inf"):
        raise ModelError(field, value, "must be a finite number >= 0")
    return float(value)


def require_choice(field, value, choices):
    if value not in choices:
        raise ModelError(field, value, f"must be one of {', '.join(repr(c) for c in choices)}")
    return value


class PharmacologyWarning(UserWarning):
    """A drug or adaptation that has no effect on the synapse it is applied to."""
