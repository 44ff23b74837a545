"""Human labels, with units, for metrics, time series and conditions (figures and tables).

A metric key such as ``"5-HT1A:occupancy_fraction:peak"`` reads ``"5-HT1A: peak occupancy
(fraction of sites)"``; a time series ``"SERT:bound"`` has the title ``"SERT: bound transmitter"``
and the unit ``"molecules"``; a condition of a one-drug dose series reads ``"escitalopram 3.16 nM"``
(three significant digits, as doses are written). Nothing here imports matplotlib.
"""
from __future__ import annotations

import pandas as pd

from .units import format_concentration

# (label, unit); a fraction (stored in [0, 1]) is labelled in percent, "% of ...", and shown x 100
_RUN_METRICS = {
    "released": ("released", "molecules"),
    "taken_up": ("taken up", "molecules"),
    "escaped": ("escaped", "molecules"),
    "degraded": ("degraded", "molecules"),
    "effluxed": ("effluxed", "molecules"),
    "binding_events": ("binding events", "count"),
    "free_end": ("free at the end of the run", "molecules"),
    "bound_end": ("bound at the end of the run", "molecules"),
    "peak_free": ("peak free transmitter", "molecules"),
    "time_to_peak_free_ms": ("time to peak free transmitter", "ms"),
    "peak_cleft_free": ("peak free in the cleft", "molecules"),
    "peak_cleft_concentration_M": ("peak cleft concentration", "M"),
    "time_to_peak_cleft_ms": ("time to peak in the cleft", "ms"),
    "clearance_half_time_ms": ("clearance half-time", "ms"),
    "fraction_taken_up": ("taken up", "% of released"),
    "fraction_escaped": ("escaped", "% of released"),
    "fraction_degraded": ("degraded", "% of released"),
}

# the part after "<group>:"
_GROUP_METRICS = {
    "sites": ("sites", "count"),
    "blocked_fraction": ("blocked at t = 0", "% of sites"),
    "blocked_fraction_mean": ("blocked, time mean", "% of sites"),
    "occupancy_fraction:peak": ("peak occupancy", "% of sites"),
    "occupancy_fraction:mean": ("mean occupancy", "% of sites"),
    "bound:peak": ("peak bound transmitter", "molecules"),
    "bound:time_to_peak_ms": ("time to peak bound", "ms"),
    "bound:integral_ms": ("bound transmitter × time", "molecule·ms"),
    "open:peak": ("peak open", "sites"),
    "open:time_to_peak_ms": ("time to peak open", "ms"),
    "open:integral_ms": ("open sites × time", "site·ms"),
}

# current metrics, after "current:" or "<group>:current:"
_CURRENT_METRICS = {
    "peak_pA": ("peak current", "pA"),
    "time_to_peak_ms": ("time to peak current", "ms"),
    "rise_time_10_90_ms": ("10–90 % rise time", "ms"),
    "decay_tau_ms": ("decay time constant", "ms"),
    "charge_pC": ("charge", "pC"),
}

_SUFFIX_UNITS = (("_ms", "ms"), ("_pA", "pA"), ("_pC", "pC"), ("_M", "M"), ("_um", "µm"), ("_mV", "mV"))

_SERIES = {
    "free": ("Free transmitter", "molecules"),
    "free_cleft": ("Free in the cleft", "molecules"),
    "free_band": ("Free in the perisynaptic band", "molecules"),
    "free_volume": ("Free in the extracellular space", "molecules"),
    "bound": ("Bound to all site groups", "molecules"),
    "released": ("Released (cumulative)", "molecules"),
    "taken_up": ("Taken up (cumulative)", "molecules"),
    "escaped": ("Escaped (cumulative)", "molecules"),
    "degraded": ("Degraded (cumulative)", "molecules"),
    "effluxed": ("Effluxed (cumulative)", "molecules"),
    "binding_events": ("Binding events (cumulative)", "count"),
    "current_pA": ("Total current", "pA"),
}
_GROUP_SERIES = {
    "bound": ("bound transmitter", "molecules"),
    "open": ("open", "sites"),
    "occupied": ("occupied sites", "sites"),
    "current_pA": ("current", "pA"),
}


def _with_unit(label: str, unit: str | None) -> str:
    return f"{label} ({unit})" if unit else label


def metric_parts(name: str) -> tuple:
    """``(label, unit)`` of a per-run metric key; ``unit`` is None for a fraction."""
    if name in _RUN_METRICS:
        return _RUN_METRICS[name]
    head, sep, rest = name.partition(":")
    if sep and head == "current" and rest in _CURRENT_METRICS:
        label, unit = _CURRENT_METRICS[rest]
        return (label.replace("current", "total current") if "current" in label else f"total current: {label}"), unit
    if sep:
        if rest in _GROUP_METRICS:
            label, unit = _GROUP_METRICS[rest]
            return f"{head}: {label}", unit
        what, sep2, tail = rest.partition(":")
        if sep2 and what == "current" and tail in _CURRENT_METRICS:
            label, unit = _CURRENT_METRICS[tail]
            return f"{head}: {label}", unit
    for suffix, unit in _SUFFIX_UNITS:
        if name.endswith(suffix):
            return _plain(name[:-len(suffix)]), unit
    return _plain(name), None


def _plain(key: str) -> str:
    head, sep, rest = key.partition(":")
    text = (f"{head}: " + rest.replace(":", " ") if sep else key).replace("_", " ")
    return text


def metric_label(name: str) -> str:
    """Axis label of a metric, with its unit: ``"clearance_half_time_ms"`` -> ``"clearance
    half-time (ms)"``, ``"SERT:blocked_fraction"`` -> ``"SERT: blocked at t = 0 (% of sites)"``
    (fractions are labelled, and drawn, in percent: see :func:`metric_scale`)."""
    return _with_unit(*metric_parts(name))


def metric_scale(name: str) -> float:
    """Factor from the stored value to the labelled one: 100 for a fraction labelled in percent."""
    unit = metric_parts(name)[1]
    return 100.0 if unit and unit.startswith("%") else 1.0


def metric_unit(name: str) -> str | None:
    return metric_parts(name)[1]


def observable_parts(name: str) -> tuple:
    """``(title, unit)`` of a time-series column."""
    if name in _SERIES:
        return _SERIES[name]
    group, sep, what = name.rpartition(":")
    if sep and what in _GROUP_SERIES:
        label, unit = _GROUP_SERIES[what]
        return f"{group}: {label}", unit
    if sep:
        return f"{group}: sites in state {what!r}", "sites"
    return name.replace("_", " "), "molecules"


def observable_title(name: str) -> str:
    """Readable title of a time-series column (``"SERT:bound"`` -> ``"SERT: bound transmitter"``)."""
    return observable_parts(name)[0]


def observable_unit(name: str) -> str:
    """Unit of a time-series column: ``"molecules"``, ``"sites"`` (counts of sites) or ``"pA"``."""
    return observable_parts(name)[1]


def format_dose(molar: float) -> str:
    """A dose as people write it: three significant digits, µ for micro (``3.1623e-6`` -> ``"3.16 µM"``)."""
    return format_concentration(molar, 3, "µ")


def condition_labels(table: pd.DataFrame, conditions) -> dict:
    """``{condition: label}``: a condition of one drug at one dose (``drug`` and ``dose_M`` columns)
    reads ``"<drug> <dose>"`` with :func:`format_dose`, the drug-free one ``"control"``; any other
    keeps its name."""
    out = {c: str(c) for c in conditions}
    if not {"condition", "drug", "dose_M"} <= set(table.columns):
        return out
    first = table.drop_duplicates("condition").set_index("condition")
    for c in conditions:
        if c not in first.index:
            continue
        drug, dose = first.at[c, "drug"], first.at[c, "dose_M"]
        if not isinstance(drug, str) or "+" in drug or pd.isna(dose):
            continue
        out[c] = "control" if dose == 0 or drug == "control" else f"{drug} {format_dose(float(dose))}"
    return out
