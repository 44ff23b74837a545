"""The Michaelis-Menten model of electrically evoked traces, its generator and its fit with
confidence intervals.

The standard model (Wightman et al. 1988, Neuroscience 25:513 [U]; Wightman & Zimmerman 1990,
Brain Res Rev 15:135 [U]; fitted to FSCV traces with the electrode response folded in as in Wu et
al. 2001, J Neurosci Methods 112:119 [U]):

    dC/dt = [DA]p · Σ δ(t - t_i) - Vmax C / (Km + C)

with ``[DA]p`` the concentration released per pulse, ``Vmax`` (µM/s) and ``Km`` (µM). Between
pulses it has a closed form through the Lambert W function, ``C(t) = Km W((C0/Km) exp((C0 -
Vmax t)/Km))`` (Schnell & Mendoza 1997, J Theor Biol 187:207 [U]), which the fit evaluates
exactly on a :class:`~mcsyn.tissue.electrode.PulseGrid` (each release time a node before and a
node after the jump), passes through the electrode response (:mod:`mcsyn.tissue.electrode`) and
compares with the samples, with a constant baseline fitted alongside. Km is often poorly determined by a
single trace (the lab practice is to fix it near 0.2 µM; Michael et al. 2005, J Neurochem 94:1202,
abs. [V]): ``fix_km_uM`` does that.

Confidence intervals (:func:`fit_evoked_trace`):

* ``"profile"`` (default): profile likelihood for Gaussian errors of unknown variance: the interval
  of each parameter where ``n ln(RSS_profile / RSS_min) <= χ²₁(level)``, with the other parameters
  re-fitted at each value (Venzon & Moolgavkar 1988, Appl Stat 37:87 [U]); asymmetric intervals,
  valid where the curvature-based ones are not (Km near the floor of what a trace can show).
* ``"bootstrap"``: residual bootstrap (Efron & Tibshirani 1993 [U]): the fitted curve plus
  resampled residuals, re-fitted ``n_boot`` times; the percentile interval.

The generator (:func:`simulate_evoked_trace`) integrates a richer model with ``solve_ivp``: a
first-order removal ``k C``, a constant source ``E`` (amphetamine-like efflux through reversed
transport; Jones et al. 1998, J Neurosci 18:1979, abs. [V]) and a competitive blocker through
``Km_app = Km (1 + [I]/Ki)``. Efflux predicts, exactly: the baseline rises to ``Km E / (Vmax - E)``
and the baseline-subtracted trace is a Michaelis-Menten trace of ``Vmax' = Vmax - E`` and
``Km' = Km Vmax / (Vmax - E)``: slower apparent clearance (see :func:`efflux_apparent`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq, least_squares
from scipy.special import erfinv

from ..errors import ModelError, require_choice, require_count, require_nonnegative, require_positive, require_real
from .deterministic import competitive_km_uM, steady_state_uM
from .electrode import (ElectrodeMethod, check_series, electrode_method, fine_grid, pulse_grid,
                        sample_times_for, segment_response, windowed_samples)

PARAMETERS = ("release_uM", "vmax_uM_per_s", "km_uM")
PARAMETER_LABELS = {"release_uM": "[DA]p, release per pulse (µM)", "vmax_uM_per_s": "Vmax (µM/s)",
                    "km_uM": "Km (µM)"}


# Calibrations of the evoked-trace generator (``mcsyn electrode simulate --preset NAME``): the
# field's uptake in the well-mixed limit. Release per pulse is ASSUMED everywhere: no source read
# here gives [DA]p for these set-ups; 0.1 µM per pulse peaks near 0.9 µM after 20 pulses at 50 Hz in
# the dorsal striatum, well above a Km of ~0.2 µM, which a trace must reach for Km to be seen at all.
EVOKED_CALIBRATIONS = {
    "dorsal-striatum": {
        "vmax_uM_per_s": 4.5, "km_uM": 0.21, "release_uM": 0.1,
        "source": "Vmax DS 4.5 µM/s and Km 0.21 µM: Ejdrup et al., GitHub Ejdrup/striatal-dopamine-modelling [V2]; "
                  "Km 'near 0.2 µM': Michael et al. 2005, J Neurochem 94:1202 (abs.) [V]; release_uM ASSUMED"},
    "ventral-striatum": {
        "vmax_uM_per_s": 1.55, "km_uM": 0.21, "release_uM": 0.1,
        "source": "Vmax VS 1.55 µM/s and Km 0.21 µM: Ejdrup et al., GitHub Ejdrup/striatal-dopamine-modelling "
                  "[V2]; release_uM ASSUMED"},
    "serotonergic": {
        "vmax_uM_per_s": 0.39, "km_uM": 0.17, "release_uM": 0.02,
        "source": "SERT Km 0.17 µM attributed to Bunin & Wightman 1998, J Neurosci 18:4854, and Vmax 1400 µM/h "
                  "= 0.39 µM/s, both read in the Best, Nijhout & Reed model code (GitHub cparker-uc/VeVaPy, "
                  "VUP2.m) [V2]; release_uM ASSUMED"},
}


def stimulus_times_s(n_pulses=1, frequency_hz=60.0, start_s=0.0):
    """Pulse times of a train: ``n_pulses`` at ``frequency_hz`` from ``start_s``."""
    n = require_count("n_pulses", n_pulses, low=1, high=10_000)
    f = require_positive("frequency_hz", frequency_hz, high=1e4)
    return require_nonnegative("start_s", start_s) + np.arange(n) / f


def _w_of_exp(y):
    """W(exp(y)) for real y, without forming exp(y): Winitzki's approximation
    ``W(x) ~ L (1 - ln(1 + L) / (2 + L))``, ``L = ln(1 + x)`` (within 2 % for all x > 0;
    Winitzki 2003, Lecture Notes Comput Sci 2667:780 [U]), then Newton steps on ``w + ln w = y``
    to machine precision (the Lambert W function itself, ``scipy.special.lambertw``, is ~10x slower
    here and overflows for large y)."""
    y = np.asarray(y, dtype=float)
    big_l = np.logaddexp(0.0, y)
    w = big_l * (1.0 - np.log1p(big_l) / (2.0 + big_l))
    for _ in range(4):
        w = w - (w + np.log(w) - y) * w / (w + 1.0)
    return w


def _w_of_exp_scalar(y: float) -> float:
    """:func:`_w_of_exp` for one number, in plain floats (called once per pulse per evaluation)."""
    big_l = y + math.log1p(math.exp(-y)) if y > 0.0 else math.log1p(math.exp(y))
    w = big_l * (1.0 - math.log1p(big_l) / (2.0 + big_l))
    for _ in range(4):
        w -= (w + math.log(w) - y) * w / (w + 1.0)
    return w


def wightman_model_uM(times_s, stim_times_s, release_uM, vmax_uM_per_s, km_uM):
    """The standard model's C(t) (µM above baseline) at ``times_s``, exact between pulses."""
    t = np.asarray(times_s, dtype=float)
    stims = np.sort(np.asarray(stim_times_s, dtype=float))
    segment = np.searchsorted(stims, t, side="right") - 1
    # y_i = ln(C_i/Km) + C_i/Km for the level C_i just after pulse i, carried pulse to pulse
    y_start = np.empty(stims.size)
    c_start = 0.0
    for i in range(stims.size):
        if i:
            c_start = km_uM * _w_of_exp_scalar(y_start[i - 1] - vmax_uM_per_s * (stims[i] - stims[i - 1]) / km_uM)
        c_start += release_uM
        y_start[i] = math.log(c_start / km_uM) + c_start / km_uM
    out = np.zeros_like(t)
    after = segment >= 0
    seg = segment[after]
    out[after] = km_uM * _w_of_exp(y_start[seg] - vmax_uM_per_s * (t[after] - stims[seg]) / km_uM)
    return out


@dataclass(frozen=True)
class EvokedTrace:
    """A generated trace: the true concentration (fine grid) and what the electrode reports."""
    fine_times_s: np.ndarray
    fine_uM: np.ndarray
    times_s: np.ndarray
    concentration_uM: np.ndarray
    stim_times_s: np.ndarray
    baseline_uM: float


def efflux_apparent(vmax_uM_per_s, km_uM, efflux_uM_per_s):
    """What a constant efflux ``E`` does to the standard model: ``(baseline, Vmax', Km')`` =
    ``(Km E/(Vmax-E), Vmax - E, Km Vmax/(Vmax - E))`` (algebra of ``Vmax (Cb+x)/(Km+Cb+x) - E``)."""
    baseline = steady_state_uM(efflux_uM_per_s, vmax_uM_per_s, km_uM)
    return baseline, vmax_uM_per_s - efflux_uM_per_s, km_uM * vmax_uM_per_s / (vmax_uM_per_s - efflux_uM_per_s)


def simulate_evoked_trace(stim_times_s, release_uM, vmax_uM_per_s, km_uM, duration_s, electrode="fscv",
                          k_removal_per_s=0.0, efflux_uM_per_s=0.0, inhibitor_uM=0.0, ki_uM=1.0,
                          noise_sd_uM=0.0, seed=0, fine_step_s=1e-3, **electrode_overrides) -> EvokedTrace:
    """A well-mixed evoked trace from the generator model, seen through ``electrode``.

    It starts at the steady baseline the efflux and removal set, adds ``release_uM`` at each pulse,
    and removes by ``Vmax C / (Km_app + C) + k C`` with ``Km_app = Km (1 + [I]/Ki)``. ``noise_sd_uM``
    adds Gaussian noise to the samples (``numpy.random.default_rng(seed)``).
    """
    method = electrode if isinstance(electrode, ElectrodeMethod) else electrode_method(electrode,
                                                                                         **electrode_overrides)
    km_app = competitive_km_uM(km_uM, inhibitor_uM, ki_uM)
    vmax, k = require_nonnegative("vmax_uM_per_s", vmax_uM_per_s), require_nonnegative("k_removal_per_s",
                                                                                       k_removal_per_s)
    efflux = require_nonnegative("efflux_uM_per_s", efflux_uM_per_s)
    baseline = steady_state_uM(efflux, vmax, km_app, k)
    stims = np.sort(np.asarray(stim_times_s, dtype=float))
    duration = require_positive("duration_s", duration_s)
    if stims.size == 0 or stims[0] < 0 or stims[-1] >= duration:
        raise ModelError("stim_times_s", stims.tolist(), f"must be one or more times in [0, {duration:g}) s")
    grid = pulse_grid(0.0, duration, stims, require_positive("fine_step_s", fine_step_s))
    conc = np.full(grid.times_s.size, baseline)

    def rhs(_t, c):
        return efflux - vmax * c / (km_app + c) - k * c

    state = baseline
    for (i, j) in grid.bounds[1:]:
        state += require_positive("release_uM", release_uM)
        sol = solve_ivp(rhs, (grid.times_s[i], grid.times_s[j]), [state], t_eval=grid.times_s[i:j + 1],
                        rtol=1e-10, atol=1e-12, method="LSODA")
        conc[i:j + 1] = sol.y[0]
        state = float(sol.y[0, -1])
    signal = segment_response(grid, conc, method.tau_s)
    samples = sample_times_for(0.0, duration, method)
    values = windowed_samples(grid.times_s, signal, samples, method.window_s)
    if noise_sd_uM:
        values = values + np.random.default_rng(seed).normal(0.0, require_positive("noise_sd_uM", noise_sd_uM),
                                                             values.size)
    return EvokedTrace(grid.times_s, conc, samples, values, stims, baseline)


class KmNotDetermined(ModelError):
    """The trace does not determine Km: it peaks near or below Km, so the fit runs off towards
    Km → ∞ (with Vmax/Km fixed by the decay). Hold Km (``fix_km_uM``) to fit the rest."""


@dataclass
class MMFit:
    """A fit of the standard model: estimates, intervals (level), residual SD and the curves."""
    estimates: dict
    intervals: dict
    level: float
    ci_method: str
    residual_sd_uM: float
    n_samples: int
    baseline_uM: float
    fixed: dict
    stim_times_s: np.ndarray
    electrode: ElectrodeMethod
    times_s: np.ndarray
    data_uM: np.ndarray
    fitted_uM: np.ndarray
    fine_times_s: np.ndarray = field(repr=False, default=None)
    fine_uM: np.ndarray = field(repr=False, default=None)          # the fitted curve through the electrode
    fine_model_uM: np.ndarray = field(repr=False, default=None)    # the fitted concentration itself

    def table(self) -> str:
        rows = [f"{'parameter':32s} {'estimate':>10s}   {self.level * 100:g}% CI ({self.ci_method})"]
        for name in PARAMETERS:
            if name in self.fixed:
                rows.append(f"{PARAMETER_LABELS[name]:32s} {self.fixed[name]:10.4g}   (fixed)")
                continue
            lo, hi = self.intervals[name]
            rows.append(f"{PARAMETER_LABELS[name]:32s} {self.estimates[name]:10.4g}   [{lo:.4g}, {hi:.4g}]")
        rows.append(f"residual SD {self.residual_sd_uM * 1e3:.3g} nM over {self.n_samples} samples; "
                    f"baseline {self.baseline_uM:.4g} µM ({'held' if 'baseline_uM' in self.fixed else 'fitted'}); "
                    f"electrode {self.electrode.name} "
                    f"(tau_e {self.electrode.tau_s:g} s, {self.electrode.sample_rate_hz:g} Hz, "
                    f"window {self.electrode.window_s * 1e3:g} ms)")
        return "\n".join(rows)


class _Problem:
    """The data, the electrode and the fine grid shared by every evaluation of one fit. The rate
    parameters are fitted in log space (they are positive); the baseline, when fitted, linearly."""

    def __init__(self, times, data, stims, method, fixed):
        self.times, self.data, self.stims, self.method, self.fixed = times, data, stims, method, fixed
        start = min(stims[0], times[0] - method.window_s) - max(method.tau_s * 5.0, 1e-3)
        step = float(np.min(np.diff(times)))
        draft = fine_grid(start, times[-1], method, data_step_s=step)
        self.pulse_grid = pulse_grid(start, times[-1], stims, draft[1] - draft[0])
        self.grid = self.pulse_grid.times_s
        # each node's pulse and the time since it (nodes before the first pulse: index -1)
        self.segment = np.concatenate([np.full(j - i + 1, k - 1) for k, (i, j) in enumerate(self.pulse_grid.bounds)])
        self.elapsed = self.grid - np.where(self.segment >= 0, stims[np.maximum(self.segment, 0)], 0.0)
        self.free = [p for p in PARAMETERS + ("baseline_uM",) if p not in fixed]

    def concentration(self, params):
        """The standard model on the pulse grid, exact at every node (before and after each jump)."""
        release, vmax, km = params["release_uM"], params["vmax_uM_per_s"], params["km_uM"]
        y_start = np.empty(self.stims.size)
        c_start = 0.0
        for i in range(self.stims.size):
            if i:
                c_start = km * _w_of_exp_scalar(y_start[i - 1] - vmax * (self.stims[i] - self.stims[i - 1]) / km)
            c_start += release
            y_start[i] = math.log(c_start / km) + c_start / km
        out = np.zeros_like(self.grid)
        after = self.segment >= 0
        out[after] = km * _w_of_exp(y_start[self.segment[after]] - vmax * self.elapsed[after] / km)
        return out

    def curve(self, params):
        return segment_response(self.pulse_grid, self.concentration(params), self.method.tau_s, initial=0.0)

    def predict(self, params):
        return windowed_samples(self.grid, self.curve(params), self.times, self.method.window_s) + params["baseline_uM"]

    def params(self, x, held=None):
        out = dict(self.fixed)
        out.update(held or {})
        names = [p for p in self.free if p not in (held or {})]
        out.update({p: float(v) if p == "baseline_uM" else math.exp(v) for p, v in zip(names, x)})
        return out

    def fit(self, start, held=None, data=None):
        names = [p for p in self.free if p not in (held or {})]
        target = self.data if data is None else data
        x0 = np.array([start[p] if p == "baseline_uM" else math.log(start[p]) for p in names])
        res = least_squares(lambda x: self.predict(self.params(x, held)) - target, x0, method="lm",
                            x_scale=1.0, xtol=1e-8, ftol=1e-8)
        best = self.params(res.x, held)
        return best, float(np.sum(res.fun ** 2))


def _initial_guess(problem, baseline):
    above = problem.data - baseline
    peak = max(float(np.max(above)), 1e-6)
    km = problem.fixed.get("km_uM", 0.2)
    # decay from the peak to half: for C >> Km the slope is ~Vmax, for C << Km it is Vmax/Km C
    i = int(np.argmax(above))
    below = np.flatnonzero(above[i:] <= peak / 2.0)
    t_half = problem.times[i + below[0]] - problem.times[i] if below.size else 1.0
    vmax = max((peak / 2.0 + km * math.log(2.0)) / max(t_half, 1e-3), 1e-3)
    return {"release_uM": peak / len(problem.stims), "vmax_uM_per_s": vmax, "km_uM": km, "baseline_uM": baseline}


def _log_standard_errors(problem, best, rss):
    """Curvature (Gauss-Newton) standard errors of the log rate parameters at the optimum: only
    the profile search's first bracket, not an interval that is reported."""
    names = [p for p in problem.free]
    x = np.array([best[p] if p == "baseline_uM" else math.log(best[p]) for p in names])
    res = least_squares(lambda v: problem.predict(problem.params(v)) - problem.data, x, method="lm", max_nfev=1)
    jtj = res.jac.T @ res.jac
    try:
        cov = np.linalg.inv(jtj) * rss / max(problem.data.size - len(names), 1)
    except np.linalg.LinAlgError:
        return {p: 0.1 for p in names}
    return {p: float(math.sqrt(max(cov[i, i], 1e-12))) for i, p in enumerate(names)}


def _profile_interval(problem, best, rss_min, name, threshold, se_log):
    """Where ``n ln(RSS_profile / RSS_min)`` crosses the χ² threshold on each side, searched outwards
    from the curvature estimate (each profile fit starts from the last one)."""
    n = problem.data.size
    x_hat = math.log(best[name])
    warm = {"start": best}

    def excess(x):
        fitted, rss = problem.fit(warm["start"], held={name: math.exp(x)})
        warm["start"] = fitted
        return n * math.log(max(rss, 1e-300) / rss_min) - threshold

    bounds = []
    for direction in (-1.0, 1.0):
        warm["start"] = best
        step, inner, found = max(min(math.sqrt(threshold) * se_log, 2.0), 1e-3), x_hat, None
        for _ in range(20):
            outer = x_hat + direction * step
            if excess(outer) > 0.0:
                found = brentq(excess, min(inner, outer), max(inner, outer), xtol=1e-3)
                break
            inner, step = outer, step * 1.5
        bounds.append(math.exp(found) if found is not None else (0.0 if direction < 0 else math.inf))
    return tuple(bounds)


def _bootstrap_intervals(problem, best, level, n_boot, seed):
    fitted = problem.predict(best)
    resid = problem.data - fitted
    rng = np.random.default_rng(seed)
    rates = [p for p in problem.free if p in PARAMETERS]
    draws = {p: [] for p in rates}
    for _ in range(n_boot):
        est, _ = problem.fit(best, data=fitted + rng.choice(resid, resid.size, replace=True))
        for p in rates:
            draws[p].append(est[p])
    tail = (1.0 - level) / 2.0
    return {p: tuple(np.quantile(v, [tail, 1.0 - tail])) for p, v in draws.items()}


def fit_evoked_trace(times_s, concentration_uM, stim_times_s, electrode="fscv", fix_km_uM=None,
                     baseline="fit", ci="profile", level=0.95, n_boot=200, seed=0, **electrode_overrides) -> MMFit:
    """Fit ``[DA]p``, ``Vmax`` and ``Km`` (or ``Km`` fixed) of the standard model to a trace.

    ``times_s`` are the electrode's sample times (strictly increasing), ``concentration_uM`` its
    readings; the model is passed through the same electrode response before it is compared.
    ``baseline="fit"`` fits a constant offset with the rest (a background-subtracted trace has
    it near 0; a raised tonic level, e.g. under efflux, is reported, and its uncertainty is carried
    into the intervals); ``baseline=0.0`` or any number holds it. ``ci`` is ``"profile"`` or
    ``"bootstrap"`` (module docstring).
    """
    t, c = check_series(times_s, concentration_uM, "time_s", "concentration_uM")
    stims = np.sort(np.asarray(stim_times_s, dtype=float).ravel())
    if stims.size == 0 or not np.all(np.isfinite(stims)) or stims[-1] >= t[-1]:
        raise ModelError("stim_times_s", stims.tolist(),
                         f"must be one or more times before the trace ends ({t[-1]:g} s)")
    method = electrode if isinstance(electrode, ElectrodeMethod) else electrode_method(electrode,
                                                                                         **electrode_overrides)
    require_choice("ci", ci, ("profile", "bootstrap"))
    if not 0.5 <= level < 1.0:
        raise ModelError("level", level, "must be a confidence level in [0.5, 1)")
    fixed = {} if fix_km_uM is None else {"km_uM": require_positive("fix_km_uM", fix_km_uM)}
    if baseline == "fit":
        before = c[t < stims[0]]
        start_baseline = float(before.mean()) if before.size else 0.0
    else:
        fixed["baseline_uM"] = start_baseline = require_real("baseline", baseline)
    problem = _Problem(t, c, stims, method, fixed)
    if t.size <= len(problem.free) + 1:
        raise ModelError("concentration_uM", t.size, f"must have more than {len(problem.free) + 1} samples to fit")
    try:
        best, rss = problem.fit(_initial_guess(problem, start_baseline))
        rates = [p for p in problem.free if p in PARAMETERS]
        if ci == "profile":
            threshold = 2.0 * float(erfinv(level)) ** 2       # χ²₁ quantile = (normal quantile of (1+level)/2)²
            se_log = _log_standard_errors(problem, best, rss)
            intervals = {p: _profile_interval(problem, best, rss, p, threshold, se_log[p]) for p in rates}
        else:
            intervals = _bootstrap_intervals(problem, best, level, require_count("n_boot", n_boot, low=10), seed)
    except (OverflowError, ZeroDivisionError, FloatingPointError):
        # the search is in log space without bounds: a Km that the trace does not pin runs off to
        # where exp() overflows
        if "km_uM" in fixed:
            raise
        raise KmNotDetermined("fix_km_uM", fix_km_uM, f"the trace (peak {float(np.max(c)):.3g} µM) does not determine "
                              "Km: the fit runs off towards Km → ∞; hold Km with fix_km_uM") from None
    curve = problem.curve(best)
    return MMFit(estimates=best, intervals=intervals, level=level, ci_method=ci,
                 residual_sd_uM=math.sqrt(rss / max(t.size - len(problem.free), 1)), n_samples=int(t.size),
                 baseline_uM=best["baseline_uM"], fixed=fixed, stim_times_s=stims, electrode=method, times_s=t,
                 data_uM=c, fitted_uM=problem.predict(best), fine_times_s=problem.grid,
                 fine_uM=curve + best["baseline_uM"],
                 fine_model_uM=problem.concentration(best) + best["baseline_uM"])
