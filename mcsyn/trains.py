"""Responses to a stimulus train, one per stimulus: what a paired-pulse or train protocol measures.

How the responses are separated
-------------------------------
Stimulus k of a train (at t_k) owns the samples with t_k <= t < t_{k+1}; the last stimulus owns
those up to t_last + one interval (or the end of the run, whichever comes first).

* **Released molecules** of stimulus k: the cumulative ``released`` count at the last sample before
  t_{k+1} minus that at the last sample before t_k (the kernel's sample at t_k already counts an
  injection made at t_k). Molecules that a fusion pore lets out after the next stimulus count for
  the next one.
* **Peak** of a trace at stimulus k: its extreme in the window (``from_foot=False``).
* **Amplitude** of a trace (a current, an open count) at stimulus k: its extreme in the window,
  in the direction of the trace's largest deflection, minus its value at the last sample before
  t_k: the "from the foot" measurement a rig reports when responses overlap. It removes the
  residual of the earlier responses as it stands at t_k, not as it stands at the peak. With the
  Jonas 1993 AMPA scheme at 100 Hz (the model of ``tests/test_trains.py``) about 4 % of the peak
  open count is left 10 ms after a response, and a copy of the scheme without desensitised states
  gives foot amplitudes a few per cent below the first while its peaks stay equal.

Ratios: the paired-pulse ratio is response 2 / response 1; the steady-state ratio is the mean of
the last :data:`STEADY_STATE_STIMULI` responses (fewer for short trains: at most n − 1) over
response 1. Per run they are NaN when response 1 is 0; across runs use the ratio of the means
(:func:`ratio_of_means`), not the mean of per-run ratios.
"""
from __future__ import annotations

import numpy as np

STEADY_STATE_STIMULI = 3


def stimulus_windows(times_ms, stimulus_times_ms, interval_ms: float):
    """Per stimulus: (index of the last sample before it or -1, first sample index, end index)."""
    t = np.asarray(times_ms, dtype=float)
    stim = np.asarray(stimulus_times_ms, dtype=float)
    ends = np.append(stim[1:], stim[-1] + interval_ms)
    out = []
    for t_k, t_next in zip(stim, ends):
        first = int(np.searchsorted(t, t_k, side="left"))
        end = int(np.searchsorted(t, t_next, side="left")) if t_next <= t[-1] else len(t)
        out.append((first - 1, first, end))
    return out


def released_per_stimulus(times_ms, released, stimulus_times_ms, interval_ms: float) -> np.ndarray:
    """Molecules released by each stimulus from a cumulative ``released`` series (last axis: time;
    any leading axes, e.g. runs)."""
    cum = np.asarray(released, dtype=float)
    out = []
    for before, _, end in stimulus_windows(times_ms, stimulus_times_ms, interval_ms):
        start = cum[..., before] if before >= 0 else np.zeros(cum.shape[:-1])
        out.append(cum[..., end - 1] - start)
    return np.stack(out, axis=-1)


def amplitude_per_stimulus(times_ms, trace, stimulus_times_ms, interval_ms: float,
                           from_foot: bool = True) -> np.ndarray:
    """Signed amplitude of each stimulus's response in ``trace`` (last axis: time), measured from
    the value just before the stimulus (``from_foot``) or from zero (the peak in the window, which
    includes what is left of the earlier responses); NaN for a stimulus whose window holds no sample."""
    y = np.asarray(trace, dtype=float)
    extreme = np.take_along_axis(y, np.abs(y).argmax(axis=-1)[..., None], axis=-1)[..., 0]
    sign = np.where(extreme < 0, -1.0, 1.0)
    out = []
    for before, first, end in stimulus_windows(times_ms, stimulus_times_ms, interval_ms):
        if end <= first:
            out.append(np.full(y.shape[:-1], np.nan))
            continue
        base = (y[..., before] if before >= 0 else y[..., first]) if from_foot else np.zeros(y.shape[:-1])
        peak = (y[..., first:end] * sign[..., None]).max(axis=-1)
        out.append(sign * (peak - base * sign))
    return np.stack(out, axis=-1)


def _steady_count(n_stimuli: int) -> int:
    return min(STEADY_STATE_STIMULI, n_stimuli - 1)


def response_metrics(responses, prefix: str) -> dict:
    """``{prefix}_1``, ``_2``, ``_steady`` and the paired-pulse and steady-state ratios of one run's
    per-stimulus responses."""
    r = np.asarray(responses, dtype=float)
    nan = float("nan")
    out = {f"{prefix}_1": float(r[0])}
    if len(r) < 2:
        return out
    steady = float(r[-_steady_count(len(r)):].mean())
    out.update({f"{prefix}_2": float(r[1]), f"{prefix}_steady": steady,
                f"{prefix}_paired_pulse_ratio": float(r[1] / r[0]) if r[0] != 0 else nan,
                f"{prefix}_steady_state_ratio": steady / float(r[0]) if r[0] != 0 else nan})
    return out


def ratio_of_means(numerator, denominator) -> tuple[float, float]:
    """(mean(a)/mean(b), its standard error by the delta method) over runs: the ensemble's
    paired-pulse or steady-state ratio from per-run responses."""
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    n = len(a)
    ma, mb = a.mean(), b.mean()
    ratio = ma / mb
    cov = np.cov(a, b, ddof=1)
    var = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio ** 2 * cov[1, 1]) / (n * mb ** 2)
    return float(ratio), float(np.sqrt(max(var, 0.0)))


def train_metrics(compiled_model, columns: dict) -> dict:
    """Per-run train metrics for :func:`mcsyn.simulate.run_metrics`: for each train ``i`` with at
    least two stimuli, ``train[i]:released_*`` (molecules per stimulus) and, when the model has a
    clamp, ``train[i]:current_pA_*`` (amplitude of the total current), each with ``_1``, ``_2``,
    ``_steady``, ``_paired_pulse_ratio`` and ``_steady_state_ratio``."""
    t = compiled_model.sample_times_ms
    out = {}
    for i, tr in enumerate(compiled_model.model.trains):
        if tr.n_stimuli < 2:
            continue
        stim, dt = tr.stimulus_times_ms(), tr.interval_ms
        out.update(response_metrics(released_per_stimulus(t, columns["released"], stim, dt), f"train[{i}]:released"))
        if "current_pA" in columns:
            amps = amplitude_per_stimulus(t, columns["current_pA"], stim, dt)
            out.update(response_metrics(amps, f"train[{i}]:current_pA"))
    return out
