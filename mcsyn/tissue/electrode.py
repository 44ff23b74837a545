"""A virtual carbon-fibre electrode: what a voltammetry or amperometry rig reports from a
concentration time series, and the chronoamperometric clearance analysis of an ejected bolus.

The response model, applied to the mean concentration of a detector region (fine sampling, nM or
µM) and reported in µM at the sampling times:

1. **Adsorption / response time.** Dopamine adsorbs to the carbon surface between scans, and the
   signal follows the concentration with a lag (Bath et al. 2000, Anal Chem 72:5994, "Subsecond
   adsorption and desorption of dopamine at carbon-fiber microelectrodes" [U]: title recalled, not
   read); in tissue mass-transport-limited adsorption lengthens the response time (Atcherley et al.
   2015, ACS Chem Neurosci, abs. [V]; volume and pages [U]). Principles of both techniques:
   Kawagoe, Zimmerman & Wightman 1993, J Neurosci Methods 48:225 [V]. mcsyn models it as a first-order response
   ``da/dt = (C - a) / τ_e`` (exact for piecewise-linear input), so that a step in C appears with
   time constant τ_e; calibrated electrodes are deconvolved the same way (Venton et al. 2003, J
   Neurochem 87:1284 [U]).
2. **Sampling with an integration window.** FSCV scans at 10 Hz, 400 V/s (Venton & Cao 2020,
   Analyst 145:1158, abs. [V]). A triangle from -0.4 V to +1.3 V and back at 400 V/s lasts 8.5 ms
   [D] (waveform limits of the standard dopamine waveform [U]); each sample is the mean of the
   adsorbed signal over that scan. Constant-potential amperometry records continuously; a sample is
   the mean current over its sampling interval (a boxcar). High-speed chronoamperometry (the
   Gerhardt/Daws method: Nafion-coated fibre, potential pulses at 5 Hz, the oxidation current
   integrated over the last 80 ms of each 100 ms pulse; Daws et al. 1997, J Neurosci Methods
   78:139, abs. [V] for the method; the pulse timing [U]) samples the mean over that 80 ms window.

Every number of :data:`ELECTRODE_METHODS` names its source; the response times are ASSUMED (no
calibration read gives τ_e for these set-ups) and can be set per call.

The clearance analysis (:func:`clearance_metrics`) reads a chronoamperometric trace after a
pressure-ejected bolus the way the serotonin clearance studies do (Daws et al. 1997; Luthman et al.
1997, J Neural Transm 104:379, abs. [V]): the signal amplitude, the rise time, and the times for
the signal to fall by 20 %, 60 % and 80 % from its peak (T20, T60, T80), with the clearance rate as
the slope between T20 and T60 (the lab's exact definitions [U]).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.integrate import cumulative_trapezoid

from ..errors import ModelError, require_choice, require_nonnegative, require_positive, require_real

UNITS_TO_UM = {"nM": 1e-3, "uM": 1.0, "µM": 1.0}
MAX_FINE_POINTS = 2_000_000


@dataclass(frozen=True)
class ElectrodeMethod:
    """One recording method: its response time, sampling rate and integration window."""
    name: str
    tau_s: float                     # first-order (adsorption) response time τ_e
    sample_rate_hz: float            # samples per second
    window_s: float                  # each sample is the mean over the window ending at the sample time
    source: str


ELECTRODE_METHODS = {
    "fscv": ElectrodeMethod(
        "fscv", tau_s=0.1, sample_rate_hz=10.0, window_s=0.0085,
        source="10 Hz, 400 V/s: Venton & Cao 2020, Analyst 145:1158 (abs.) [V]; window = one -0.4 to +1.3 V "
               "triangle at 400 V/s = 8.5 ms [D]; adsorption response per Bath et al. 2000, Anal Chem 72:5994 [U]; "
               "tau_s = 0.1 s ASSUMED (one sampling interval: adsorption equilibrates within a scan period)"),
    "amperometry": ElectrodeMethod(
        "amperometry", tau_s=0.0, sample_rate_hz=100.0, window_s=0.01,
        source="constant-potential amperometry: continuous current, each sample the mean over its interval "
               "(boxcar); sample_rate_hz = 100 ASSUMED (set by the user's acquisition); tau_s = 0 ASSUMED "
               "(no adsorption step at a constant oxidising potential)"),
    "chronoamperometry": ElectrodeMethod(
        "chronoamperometry", tau_s=0.0, sample_rate_hz=5.0, window_s=0.08,
        source="high-speed chronoamperometry, Nafion-coated carbon fibre: Daws et al. 1997, J Neurosci Methods "
               "78:139 (abs.) [V]; 5 Hz pulses, current integrated over the last 80 ms of each 100 ms pulse [U]; "
               "tau_s = 0 ASSUMED"),
}


@dataclass(frozen=True)
class ElectrodeTrace:
    times_s: np.ndarray
    concentration_uM: np.ndarray
    method: ElectrodeMethod


def electrode_method(method="fscv", tau_s=None, sample_rate_hz=None, window_s=None) -> ElectrodeMethod:
    """A method of :data:`ELECTRODE_METHODS`, with any of its numbers replaced."""
    base = ELECTRODE_METHODS[require_choice("method", method, tuple(ELECTRODE_METHODS))]
    changes = {}
    if tau_s is not None:
        changes["tau_s"] = require_nonnegative("tau_s", tau_s, high=1e3)
    if sample_rate_hz is not None:
        changes["sample_rate_hz"] = require_positive("sample_rate_hz", sample_rate_hz, high=1e6)
    if window_s is not None:
        changes["window_s"] = require_nonnegative("window_s", window_s, high=1e3)
    out = replace(base, **changes) if changes else base
    if out.window_s > 1.0 / out.sample_rate_hz + 1e-12:
        raise ModelError("window_s", out.window_s,
                         f"must not exceed the sampling interval 1/sample_rate_hz = {1.0 / out.sample_rate_hz:g} s")
    return out


def check_series(times_s, values, time_name="times_s", value_name="concentration"):
    """``(times, values)`` as float arrays, or ModelError naming the first bad entry: the times must
    be finite and strictly increasing, the values finite, both the same length (>= 2)."""
    t = np.asarray(times_s, dtype=float).ravel()
    c = np.asarray(values, dtype=float).ravel()
    if t.size != c.size or t.size < 2:
        raise ModelError(value_name, c.size, f"must have as many entries as {time_name} ({t.size}), at least 2")
    for name, arr in ((time_name, t), (value_name, c)):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ModelError(f"{name}[{bad[0]}]", arr[bad[0]], "must be a finite number")
    steps = np.flatnonzero(np.diff(t) <= 0)
    if steps.size:
        i = int(steps[0]) + 1
        raise ModelError(f"{time_name}[{i}]", t[i], f"must be later than {time_name}[{i - 1}] = {t[i - 1]:g}")
    return t, c


def first_order_response(values, step_s, tau_s, initial=None):
    """The response ``a`` of ``da/dt = (C - a) / τ`` to ``C`` sampled on a uniform grid, exact for
    ``C`` linear between samples (``τ = 0`` returns ``C``). ``a`` starts at ``initial`` (default:
    in equilibrium with the first value)."""
    from scipy.signal import lfilter      # start-up cost: `mcsyn --help` loads this module, not the filter
    c = np.asarray(values, dtype=float)
    if tau_s == 0.0:
        return c.copy()
    h = step_s / tau_s
    decay = np.exp(-h)
    ramp = -np.expm1(-h) / h                       # (1 - e^-h) / h, accurate for small h
    b = np.array([1.0 - ramp, ramp - decay])
    start = c[0] if initial is None else initial
    # a[n] = e a[n-1] + b0 c[n] + b1 c[n-1]; the initial state zi makes a[0] = start
    out, _ = lfilter(b, [1.0, -decay], c, zi=np.array([start - b[0] * c[0]]))
    return out


def windowed_samples(fine_times_s, signal, sample_times_s, window_s):
    """The mean of ``signal`` (on ``fine_times_s``) over ``[t - window, t]`` at each sample time
    (the value itself when the window is 0), by the exact integral of its linear interpolant."""
    if window_s == 0.0:
        return np.interp(sample_times_s, fine_times_s, signal)
    integral = cumulative_trapezoid(signal, fine_times_s, initial=0.0)
    upper = np.interp(sample_times_s, fine_times_s, integral)
    lower = np.interp(np.asarray(sample_times_s) - window_s, fine_times_s, integral)
    return (upper - lower) / window_s


def fine_grid(t_start_s, t_end_s, method: ElectrodeMethod, data_step_s=np.inf):
    """A uniform grid fine enough for the response: the step is at most 2 ms, an eighth of τ_e, a
    quarter of the window and the input's own step, and never below the span / MAX_FINE_POINTS."""
    candidates = [data_step_s, 2e-3]
    candidates += [x / f for x, f in ((method.tau_s, 8.0), (method.window_s, 4.0)) if x > 0.0]
    step = max(min(candidates), (t_end_s - t_start_s) / MAX_FINE_POINTS)
    n = int(np.ceil((t_end_s - t_start_s) / step)) + 1
    return np.linspace(t_start_s, t_end_s, n)


@dataclass(frozen=True)
class PulseGrid:
    """A fine grid whose segments run from one instantaneous release to the next, each uniform
    and each ending on the next release time, which is repeated as the first node of the next
    segment: the concentration just before and just after a jump are two nodes at one time, so the
    response to a jump is exact (it is not a ramp over a grid step)."""
    times_s: np.ndarray            # all nodes, non-decreasing (release times twice)
    bounds: tuple                  # (first, last) node index of each segment, inclusive
    steps_s: tuple                 # the uniform step of each segment


def pulse_grid(t_start_s, t_end_s, pulse_times_s, max_step_s) -> PulseGrid:
    """Segments ``[t_start, p_0], [p_0, p_1], ..., [p_last, t_end]`` with steps <= ``max_step_s``."""
    edges = np.concatenate([[t_start_s], np.sort(np.asarray(pulse_times_s, dtype=float)), [t_end_s]])
    nodes, bounds, steps, first = [], [], [], 0
    for a, b in zip(edges[:-1], edges[1:]):
        m = max(1, int(np.ceil((b - a) / max_step_s - 1e-9)))
        segment = a + (b - a) * np.arange(m + 1) / m
        segment[-1] = b                    # exactly, so that the next segment starts where this ends
        nodes.append(segment)
        bounds.append((first, first + m))
        steps.append((b - a) / m)
        first += m + 1
    return PulseGrid(np.concatenate(nodes), tuple(bounds), tuple(steps))


def segment_response(grid: PulseGrid, values, tau_s, initial=None):
    """:func:`first_order_response` segment by segment on a :class:`PulseGrid`: the response
    carries over a jump unchanged (an adsorbed amount cannot jump) while the input jumps."""
    out = np.empty_like(np.asarray(values, dtype=float))
    state = values[0] if initial is None else initial
    for (i, j), step in zip(grid.bounds, grid.steps_s):
        if step == 0.0:
            out[i:j + 1] = state
            continue
        out[i:j + 1] = first_order_response(values[i:j + 1], step, tau_s, initial=state)
        state = out[j]
    return out


def sample_times_for(t_start_s, t_end_s, method: ElectrodeMethod):
    """Scan times ``k / f`` whose whole window lies inside ``[t_start, t_end]``."""
    period = 1.0 / method.sample_rate_hz
    first = np.ceil((t_start_s + method.window_s) / period - 1e-9)
    last = np.floor(t_end_s / period + 1e-9)
    if last < first:
        raise ModelError("times_s", (t_start_s, t_end_s),
                         f"must span at least one sampling interval of {method.name} ({period:g} s)")
    return np.arange(first, last + 1) * period


def electrode_response(times_s, concentration, units="nM", method="fscv", **overrides) -> ElectrodeTrace:
    """What the electrode reports (µM at its sampling times) for a concentration time series.

    ``times_s`` strictly increasing; ``concentration`` in ``units`` (``"nM"``, as a detector
    region reports it, or ``"uM"``); ``method`` one of :data:`ELECTRODE_METHODS`, with
    ``tau_s``, ``sample_rate_hz`` or ``window_s`` overriding its numbers. The series is
    interpolated linearly onto a fine uniform grid, passed through the first-order response
    (starting in equilibrium with the first value) and averaged over each sample's window. A jump
    in the series (an instantaneous release) is thereby spread over one input step: sample the
    series finely (for a 20-pulse 50 Hz train, a 1 ms series biases a fitted Vmax by ~1 % and Km by
    ~4 %, a 0.25 ms series by 0.3 % and 1.2 %; the generator and
    the fit of :mod:`mcsyn.tissue.mm_fit` treat their own jumps exactly, on a :class:`PulseGrid`).
    """
    m = electrode_method(method, **overrides)
    scale = UNITS_TO_UM[require_choice("units", units, tuple(UNITS_TO_UM))]
    t, c = check_series(times_s, concentration)
    grid = fine_grid(t[0], t[-1], m, data_step_s=float(np.min(np.diff(t))))
    fine = first_order_response(np.interp(grid, t, c * scale), grid[1] - grid[0], m.tau_s)
    samples = sample_times_for(t[0], t[-1], m)
    return ElectrodeTrace(samples, windowed_samples(grid, fine, samples, m.window_s), m)


@dataclass(frozen=True)
class ClearanceMetrics:
    """Chronoamperometric readouts of one ejected bolus (times in s from the ejection or the peak)."""
    baseline_uM: float
    amplitude_uM: float
    time_to_peak_s: float
    t20_s: float          # peak -> 20 % decline (signal at 80 % of the amplitude)
    t60_s: float
    t80_s: float          # peak -> 80 % decline; NaN when the trace ends first
    clearance_rate_uM_per_s: float   # amplitude fallen between T20 and T60, per second


def _decline_time(t, y, i_peak, level):
    after = np.flatnonzero(y[i_peak:] <= level)
    if after.size == 0:
        return np.nan
    j = i_peak + int(after[0])
    # linear interpolation between the last sample above the level and the first at or below it
    return float(t[j - 1] + (y[j - 1] - level) / (y[j - 1] - y[j]) * (t[j] - t[j - 1]))


def clearance_metrics(times_s, signal_uM, ejection_time_s) -> ClearanceMetrics:
    """Amplitude, rise time, T20/T60/T80 and the T20-T60 clearance rate of a bolus trace.

    The baseline is the mean of the samples before ``ejection_time_s`` (0 when there are none);
    the amplitude is the peak after the ejection above it. A decline the trace never reaches is
    NaN (the trace is too short, or clearance stalled).
    """
    t, y = check_series(times_s, signal_uM, value_name="signal_uM")
    t_ej = require_real("ejection_time_s", ejection_time_s)
    if not t_ej < t[-1]:
        raise ModelError("ejection_time_s", ejection_time_s, f"must come before the trace ends ({t[-1]:g} s)")
    before = y[t < t_ej]
    baseline = float(before.mean()) if before.size else 0.0
    after = np.flatnonzero(t >= t_ej)
    i_peak = int(after[np.argmax(y[after])])
    amplitude = float(y[i_peak] - baseline)
    if amplitude <= 0.0:
        raise ModelError("signal_uM", float(y[i_peak]), f"must rise above its pre-ejection baseline {baseline:g} µM")
    t_peak = float(t[i_peak])
    times = {f: _decline_time(t, y, i_peak, baseline + (1.0 - f) * amplitude) for f in (0.2, 0.6, 0.8)}
    t20, t60, t80 = (times[f] - t_peak for f in (0.2, 0.6, 0.8))
    rate = 0.4 * amplitude / (t60 - t20) if np.isfinite(t60) and t60 > t20 else np.nan
    return ClearanceMetrics(baseline, amplitude, t_peak - t_ej, t20, t60, t80, rate)

