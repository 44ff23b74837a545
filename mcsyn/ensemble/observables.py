"""Observables and the time grid: which time series of a condition's runs are kept, and at which
samples."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import geometry
from ..compile import CompiledModel
from ..simulate import SERIES_COLUMNS, series_columns


def available_observables(cm: CompiledModel) -> list:
    """Every time-series column of a run of ``cm`` (aggregates, then every site state)."""
    # series_columns is the one place that names the columns; a one-sample output of zeros asks it
    dummy = {"series": np.zeros((1, len(SERIES_COLUMNS)), dtype=np.int64),
             "states": np.zeros((1, cm.kernel.n_states), dtype=np.int64)}
    return list(series_columns(cm, dummy))


def default_observables(cm: CompiledModel) -> list:
    """The aggregate time series that can be non-zero for this model: free molecules (in total and
    per compartment), bound, cumulative released/taken up/escaped/degraded/effluxed, and each site
    group's bound and open counts. Per-state columns are left out (ask for them by name)."""
    model = cm.model
    kinds = {t.kind for g in model.sites for t in g.scheme.transitions}
    g = model.geometry
    obs = ["free"] + [f"free_{c}" for c in geometry.compartments(g)]
    obs += ["bound", "released"]
    if "uptake" in kinds:
        obs.append("taken_up")
    if geometry.escapes(g):
        obs.append("escaped")
    if "degrade" in kinds or model.degradation:
        obs.append("degraded")
    if "efflux" in kinds:
        obs.append("effluxed")
    for grp in model.sites:
        obs.append(f"{grp.label}:bound")
        if grp.scheme.open_states:
            obs.append(f"{grp.label}:open")
    if model.clamp is not None:
        obs += [f"{ch.group}:current_pA" for ch in cm.channels] + ["current_pA"]
    return obs


def time_indices(n_samples: int, time_points: int | None) -> np.ndarray:
    """Sample indices kept for the time course: every sample, or every k-th so that at most
    ``time_points`` remain (the first sample always included)."""
    if time_points is None or n_samples <= time_points:
        return np.arange(n_samples)
    if time_points < 2:
        raise ValueError(f"time_points = {time_points!r} is not valid: must be >= 2 or None")
    stride = math.ceil((n_samples - 1) / (time_points - 1))
    return np.arange(0, n_samples, stride)


@dataclass
class Layout:
    """What is stored of each run of one condition: these observables at these samples."""

    observables: list
    t_index: np.ndarray      # indices into the engine's samples
    times_ms: np.ndarray     # their times

    @property
    def scales(self) -> np.ndarray:
        """Per observable, what a stored int32 trace value is in its unit (:func:`trace_scale`)."""
        return np.array([trace_scale(o) for o in self.observables], dtype=np.float64)

    @property
    def shape(self) -> tuple:
        """(observables, times) of one run's traces."""
        return (len(self.observables), len(self.t_index))


def trace_scale(observable: str) -> float:
    """Stored traces are int32: counts exactly; a current (``…current_pA``) in whole femtoamperes
    (a stored value is ``round(I × 1000)``: 1e-3 pA resolution, ±2.1 µA range), since cutting pA
    to whole numbers would lose a single NMDA channel's 0.16 pA under the Mg²⁺ block."""
    if observable.endswith("_nM"):      # a concentration (a tissue detector's) in whole pM
        return 1000.0
    return 1000.0 if observable.endswith("current_pA") else 1.0


def layout(cm: CompiledModel, name: str, observables, time_points: int | None) -> Layout:
    """The layout of the condition ``name`` compiled as ``cm``: ``observables`` is None (the
    defaults), ``"all"`` or a list of names that must exist for this model."""
    avail = available_observables(cm)
    if observables is None:
        obs = default_observables(cm)
    elif observables == "all":
        obs = avail
    else:
        obs = list(observables)
        bad = [o for o in obs if o not in avail]
        if bad:
            raise ValueError(f"observable(s) {bad} do not exist for condition {name!r}; available: {avail}")
    t_index = time_indices(len(cm.sample_times_ms), time_points)
    return Layout(obs, t_index, cm.sample_times_ms[t_index])
