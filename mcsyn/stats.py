"""Statistics over ensembles: running moments, per-condition summaries, comparisons, Hill fits.

Every function here takes plain arrays or the tidy per-run metrics table of an ensemble (one row per
run: ``condition``, label columns, ``run``, ``seed``, then one column per scalar metric) and returns a
pandas DataFrame or a small dataclass.

Conventions, stated once:

* ``sd`` is the sample standard deviation (ddof = 1); ``sem = sd / sqrt(n)``; ``cv = sd / |mean|``.
* Confidence intervals are two-sided at ``level`` (default 95 %). ``ci="analytic"`` gives the
  Student-t interval of the mean; ``ci="bootstrap"`` the percentile interval of the mean over
  ``n_boot`` resamples drawn from ``numpy.random.default_rng(seed)`` (so it is reproducible).
* Fold change is ``mean(condition) / mean(control)``; its analytic interval is the delta-method
  interval on the log ratio, ``exp(log r ± z·sqrt(sd_c²/(n_c m_c²) + sd_0²/(n_0 m_0²)))`` (both means
  must be > 0), or the percentile bootstrap of the ratio of means.
* Effect sizes: Hedges' g (Cohen's d on the pooled sd, small-sample corrected) and Cliff's delta
  (P(X > Y) − P(X < Y), from the Mann–Whitney U). p-values are two-sided (scipy's Mann–Whitney U,
  asymptotic with continuity correction for large samples, and the two-sample Kolmogorov–Smirnov
  test); they are not adjusted for multiple comparisons.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps

CI_METHODS = ("analytic", "bootstrap")
NON_METRIC_COLUMNS = ("condition", "run", "seed")


# ======================================================================================================
# Running moments

class OnlineMoments:
    """Running count, mean and sum of squared deviations (M2) of arrays of one fixed shape.

    :meth:`update` adds one observation (Welford 1962); :meth:`update_batch` and :meth:`merge` combine
    whole groups with the pairwise formula of Chan, Golub & LeVeque (1979):
    ``mean = m_a + δ n_b/n``, ``M2 = M2_a + M2_b + δ² n_a n_b / n`` with ``δ = m_b − m_a``.
    Memory is one mean and one M2 array, whatever the number of observations.
    """

    def __init__(self, shape=()):
        self.n = 0
        self.mean = np.zeros(shape, dtype=np.float64)
        self.m2 = np.zeros(shape, dtype=np.float64)

    def update(self, x) -> "OnlineMoments":
        x = np.asarray(x, dtype=np.float64)
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)
        return self

    def update_batch(self, xs) -> "OnlineMoments":
        """Add the observations stacked along axis 0 of ``xs``."""
        xs = np.asarray(xs, dtype=np.float64)
        if len(xs) == 0:
            return self
        other = OnlineMoments(self.mean.shape)
        other.n = len(xs)
        other.mean = xs.mean(axis=0)
        other.m2 = ((xs - other.mean) ** 2).sum(axis=0)
        return self.merge(other)

    def merge(self, other: "OnlineMoments") -> "OnlineMoments":
        if other.n == 0:
            return self
        if self.n == 0:
            self.n, self.mean, self.m2 = other.n, other.mean.copy(), other.m2.copy()
            return self
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.n / n)
        self.m2 = self.m2 + other.m2 + delta ** 2 * (self.n * other.n / n)
        self.n = n
        return self

    @property
    def variance(self) -> np.ndarray:
        """Sample variance (ddof = 1); NaN with fewer than two observations."""
        if self.n < 2:
            return np.full(self.mean.shape, np.nan)
        return self.m2 / (self.n - 1)

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(self.variance)

    @property
    def sem(self) -> np.ndarray:
        return self.sd / math.sqrt(self.n) if self.n else np.full(self.mean.shape, np.nan)


# ======================================================================================================
# Helpers

def metric_columns(metrics: pd.DataFrame, by=("condition",)) -> list:
    """The metric columns of a per-run table: the numeric columns after ``seed`` (ensemble layout),
    or, without a ``seed`` column, every numeric column that is not a grouping column."""
    cols = list(metrics.columns)
    if "seed" in cols:
        cols = cols[cols.index("seed") + 1:]
    skip = set(NON_METRIC_COLUMNS) | set(_as_list(by))
    return [c for c in cols if c not in skip and pd.api.types.is_numeric_dtype(metrics[c])
            and not pd.api.types.is_bool_dtype(metrics[c])]


def _as_list(x):
    if x is None:
        return []
    return [x] if isinstance(x, str) else list(x)


def _check_level(level):
    if not (0 < level < 1):
        raise ValueError(f"level = {level!r} is not valid: must be in (0, 1), e.g. 0.95")
    return float(level)


def _check_ci(ci):
    if ci not in CI_METHODS:
        raise ValueError(f"ci = {ci!r} is not valid: must be one of {', '.join(map(repr, CI_METHODS))}")
    return ci


def _groups(metrics, by):
    by = _as_list(by)
    missing = [b for b in by if b not in metrics.columns]
    if missing:
        raise KeyError(f"grouping column(s) {missing} not in the table (columns: {list(metrics.columns)})")
    return by, metrics.groupby(by, sort=False, dropna=False)


def _finite(x):
    x = np.asarray(x, dtype=np.float64)
    return x[np.isfinite(x)]


def mean_ci(x, level=0.95, ci="analytic", n_boot=2000, rng=None):
    """Confidence interval of the mean of ``x`` (NaNs dropped): (low, high)."""
    x = _finite(x)
    n = len(x)
    if n < 2:
        return (np.nan, np.nan)
    m = x.mean()
    if ci == "analytic":
        half = sps.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
        return (m - half, m + half)
    rng = np.random.default_rng(rng)
    means = _boot_means(x, n_boot, rng)
    return tuple(np.quantile(means, [0.5 - level / 2, 0.5 + level / 2]))


def _boot_means(x, n_boot, rng, block=2_000_000):
    """Means of ``n_boot`` resamples of ``x``, drawn in blocks to bound memory."""
    n = len(x)
    out = np.empty(n_boot)
    step = max(1, block // max(n, 1))
    for i in range(0, n_boot, step):
        k = min(step, n_boot - i)
        out[i:i + k] = x[rng.integers(0, n, size=(k, n))].mean(axis=1)
    return out


# ======================================================================================================
# Summaries

def summarize(metrics: pd.DataFrame, by="condition", metrics_columns=None, level: float = 0.95,
              ci: str = "analytic", n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per group and metric: n, mean, sd, sem, cv, median, q25, q75, iqr and a CI of the mean.

    Parameters
    ----------
    metrics : DataFrame
        Per-run table (one row per run).
    by : str or list of str
        Grouping columns (default ``"condition"``).
    metrics_columns : list of str, optional
        Metrics to summarise (default: :func:`metric_columns`).
    level, ci, n_boot, seed
        Confidence level; ``"analytic"`` (Student t) or ``"bootstrap"`` (percentile, ``n_boot``
        resamples, ``default_rng(seed)``). The method is given in the ``ci_method`` column.

    Returns
    -------
    DataFrame with one row per (group, metric). NaN values of a metric (e.g. a clearance time that
    was never reached) are left out of its statistics; ``n`` counts the values used.
    """
    level = _check_level(level)
    _check_ci(ci)
    by, grouped = _groups(metrics, by)
    cols = metrics_columns if metrics_columns is not None else metric_columns(metrics, by)
    rng = np.random.default_rng(seed)
    rows = []
    for key, grp in grouped:
        key = key if isinstance(key, tuple) else (key,)
        for col in cols:
            x = _finite(grp[col])
            n = len(x)
            row = dict(zip(by, key))
            row["metric"] = col
            row["n"] = n
            if n:
                mean = x.mean()
                sd = x.std(ddof=1) if n > 1 else np.nan
                q25, med, q75 = np.quantile(x, [0.25, 0.5, 0.75])
            else:
                mean = sd = q25 = med = q75 = np.nan
            lo, hi = mean_ci(x, level, ci, n_boot, rng)
            row.update(mean=mean, sd=sd, sem=sd / math.sqrt(n) if n > 1 else np.nan,
                       cv=sd / abs(mean) if n > 1 and mean != 0 else np.nan,
                       median=med, q25=q25, q75=q75, iqr=q75 - q25, ci_low=lo, ci_high=hi,
                       ci_method=f"{ci} {level:.0%}")
            rows.append(row)
    return pd.DataFrame(rows, columns=[*by, *SUMMARY_COLUMNS])   # the columns even with no rows


SUMMARY_COLUMNS = ("metric", "n", "mean", "sd", "sem", "cv", "median", "q25", "q75", "iqr", "ci_low", "ci_high",
                   "ci_method")
COMPARE_COLUMNS = ("metric", "n_control", "n", "mean_control", "mean", "difference", "fold_change", "fold_ci_low",
                   "fold_ci_high", "hedges_g", "cliffs_delta", "mannwhitney_u", "p_mannwhitney", "ks_statistic",
                   "p_ks", "ci_method")

# a p-value below this is reported as "< 1e-16": double precision resolves 1 - cdf no further
P_VALUE_FLOOR = 1e-16


def format_p_value(p, digits: int = 2) -> str:
    """A p-value for a table or a figure: ``"3.1e-05"``, ``"< 1e-16"`` below :data:`P_VALUE_FLOOR`
    (never ``"0"``), ``"nan"`` when undefined."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        return str(p)
    if not math.isfinite(p):
        return "nan"
    if p < P_VALUE_FLOOR:
        return f"< {P_VALUE_FLOOR:.0e}"
    return f"{p:.{digits}g}"


# ======================================================================================================
# Comparisons against a control

def hedges_g(x, y) -> float:
    """Standardised mean difference (x − y) / pooled sd, with the small-sample correction
    J = 1 − 3 / (4 (n_x + n_y) − 9)."""
    x, y = _finite(x), _finite(y)
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        return np.nan
    pooled = math.sqrt(((nx - 1) * x.var(ddof=1) + (ny - 1) * y.var(ddof=1)) / (nx + ny - 2))
    if pooled == 0:
        return 0.0 if x.mean() == y.mean() else math.copysign(np.inf, x.mean() - y.mean())
    return (x.mean() - y.mean()) / pooled * (1 - 3 / (4 * (nx + ny) - 9))


def fold_change_ci(x, control, level=0.95, ci="analytic", n_boot=2000, rng=None):
    """Ratio of means mean(x)/mean(control) and its CI (see module docstring)."""
    x, c = _finite(x), _finite(control)
    if len(x) < 2 or len(c) < 2:
        return np.nan, np.nan, np.nan
    mx, mc = x.mean(), c.mean()
    ratio = mx / mc if mc != 0 else np.nan
    if ci == "analytic":
        if mx <= 0 or mc <= 0:
            return ratio, np.nan, np.nan
        se = math.sqrt(x.var(ddof=1) / (len(x) * mx ** 2) + c.var(ddof=1) / (len(c) * mc ** 2))
        z = sps.norm.ppf(0.5 + level / 2)
        return ratio, ratio * math.exp(-z * se), ratio * math.exp(z * se)
    rng = np.random.default_rng(rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = _boot_means(x, n_boot, rng) / _boot_means(c, n_boot, rng)
    r = r[np.isfinite(r)]
    if len(r) < n_boot // 2:
        return ratio, np.nan, np.nan
    lo, hi = np.quantile(r, [0.5 - level / 2, 0.5 + level / 2])
    return ratio, lo, hi


def _two_sample_tests(x, c):
    """Mann–Whitney U (statistic, p), Cliff's delta and KS (statistic, p); NaN where undefined."""
    if len(x) == 0 or len(c) == 0:
        return np.nan, np.nan, np.nan, np.nan, np.nan
    if np.all(x == x[0]) and np.all(c == x[0]):
        # identical constants: no difference at all (scipy would return NaN)
        return len(x) * len(c) / 2, 1.0, 0.0, 0.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mw = sps.mannwhitneyu(x, c, alternative="two-sided")
        ks = sps.ks_2samp(x, c, alternative="two-sided")
    u = float(mw.statistic)
    return u, float(mw.pvalue), 2 * u / (len(x) * len(c)) - 1, float(ks.statistic), float(ks.pvalue)


def compare(metrics: pd.DataFrame, control="control", by="condition", metrics_columns=None,
            level: float = 0.95, ci: str = "analytic", n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Each group against a control group, per metric.

    Parameters
    ----------
    metrics : DataFrame
        Per-run table.
    control : str or tuple
        Value of ``by`` (a tuple for several grouping columns) that names the control group.
    by, metrics_columns, level, ci, n_boot, seed
        As in :func:`summarize`.

    Returns
    -------
    DataFrame, one row per (group ≠ control, metric): ``n_control``, ``n``, ``mean_control``,
    ``mean``, ``difference``, ``fold_change``, ``fold_ci_low``, ``fold_ci_high``, ``hedges_g``,
    ``cliffs_delta``, ``mannwhitney_u``, ``p_mannwhitney``, ``ks_statistic``, ``p_ks``, ``ci_method``.
    """
    level = _check_level(level)
    _check_ci(ci)
    by, grouped = _groups(metrics, by)
    cols = metrics_columns if metrics_columns is not None else metric_columns(metrics, by)
    groups = {(k if isinstance(k, tuple) else (k,)): g for k, g in grouped}
    ckey = control if isinstance(control, tuple) else (control,)
    if ckey not in groups:
        names = [k[0] if len(k) == 1 else k for k in groups]
        raise KeyError(f"control = {control!r} is not a group of {by}: choose one of {names}")
    rng = np.random.default_rng(seed)
    ctrl = groups[ckey]
    rows = []
    for key, grp in groups.items():
        if key == ckey:
            continue
        for col in cols:
            x, c = _finite(grp[col]), _finite(ctrl[col])
            fc, lo, hi = fold_change_ci(x, c, level, ci, n_boot, rng)
            u, p_mw, cliff, ks, p_ks = _two_sample_tests(x, c)
            row = dict(zip(by, key))
            row.update(metric=col, n_control=len(c), n=len(x),
                       mean_control=c.mean() if len(c) else np.nan, mean=x.mean() if len(x) else np.nan)
            row.update(difference=row["mean"] - row["mean_control"], fold_change=fc, fold_ci_low=lo,
                       fold_ci_high=hi, hedges_g=hedges_g(x, c), cliffs_delta=cliff, mannwhitney_u=u,
                       p_mannwhitney=p_mw, ks_statistic=ks, p_ks=p_ks, ci_method=f"{ci} {level:.0%}")
            rows.append(row)
    return pd.DataFrame(rows, columns=[*by, *COMPARE_COLUMNS])


# ======================================================================================================
# Hill fits

def hill(concentration, bottom, top, ec50, n):
    """``bottom + (top − bottom) · c^n / (EC50^n + c^n)``; equals ``bottom`` at c = 0.

    With ``top < bottom`` it is an inhibition curve and EC50 is the IC50."""
    c = np.asarray(concentration, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        frac = np.where(c > 0, 1.0 / (1.0 + (ec50 / np.where(c > 0, c, 1.0)) ** n), 0.0)
    return bottom + (top - bottom) * frac


def _hill_log(c, bottom, top, log10_ec50, n):
    return hill(c, bottom, top, 10.0 ** log10_ec50, n)


@dataclass
class HillFit:
    """A fitted Hill curve. ``kind`` is ``"EC50"`` for a rising and ``"IC50"`` for a falling response.

    Intervals are at ``level``; ``method`` says how they were computed."""

    ec50: float
    ec50_ci_low: float
    ec50_ci_high: float
    hill: float
    hill_ci_low: float
    hill_ci_high: float
    bottom: float
    bottom_ci_low: float
    bottom_ci_high: float
    top: float
    top_ci_low: float
    top_ci_high: float
    kind: str
    n_doses: int
    n_points: int
    r_squared: float
    level: float
    method: str
    metric: str = ""

    def predict(self, concentration):
        return hill(concentration, self.bottom, self.top, self.ec50, self.hill)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])


def _dose_table(concentration, response):
    c = np.asarray(concentration, dtype=np.float64)
    y = np.asarray(response, dtype=np.float64)
    if c.shape != y.shape or c.ndim != 1:
        raise ValueError(f"concentration and response must be 1-D arrays of one length, got {c.shape} and {y.shape}")
    ok = np.isfinite(c) & np.isfinite(y)
    c, y = c[ok], y[ok]
    if np.any(c < 0):
        raise ValueError("concentrations must be >= 0 (0 is the drug-free control)")
    doses = np.unique(c)
    if np.count_nonzero(doses > 0) < 2 or len(doses) < 4:
        raise ValueError(f"a Hill fit needs at least 4 distinct doses (2 of them > 0); got {len(doses)}: {doses}")
    return c, y, doses


def _fit_once(c, y, sigma, p0, bounds):
    popt, pcov = optimize.curve_fit(_hill_log, c, y, p0=p0, sigma=sigma, absolute_sigma=sigma is not None,
                                    bounds=bounds, maxfev=20000)
    return popt, pcov


class _DoseResponse:
    """One dose–response to fit: the points, their doses, and per-dose summaries."""

    def __init__(self, concentration, response):
        self.c, self.y, self.doses = _dose_table(concentration, response)
        self.idx = np.searchsorted(self.doses, self.c)          # each point's dose
        self.counts = np.bincount(self.idx, minlength=len(self.doses))
        self.means = np.bincount(self.idx, weights=self.y, minlength=len(self.doses)) / self.counts
        self.replicated = bool(np.all(self.counts >= 2))
        self.positive_doses = self.doses[self.doses > 0]
        self.lo_d = np.log10(self.positive_doses.min())
        self.hi_d = np.log10(self.positive_doses.max())
        self.bounds = ([-np.inf, -np.inf, self.lo_d - 3, 0.05], [np.inf, np.inf, self.hi_d + 3, 20.0])

    def summarize_doses(self, yy):
        """Mean and standard error of the mean of ``yy`` at each dose."""
        n_doses = len(self.doses)
        m = np.bincount(self.idx, weights=yy, minlength=n_doses) / self.counts
        ss = np.bincount(self.idx, weights=(yy - m[self.idx]) ** 2, minlength=n_doses)
        with np.errstate(invalid="ignore", divide="ignore"):
            sem = np.sqrt(ss / (self.counts - 1) / self.counts)
        return m, sem

    def start(self, m):
        """Starting values (bottom, top, log10 EC50, n) from the dose means ``m``."""
        bottom = m[0]
        top = m[-1]
        half = bottom + 0.5 * (top - bottom)
        # first dose whose mean has crossed halfway
        crossed = np.flatnonzero((m - half) * np.sign(top - bottom) >= 0)
        pos = self.positive_doses
        guess = (self.doses[crossed[0]] if len(crossed) and self.doses[crossed[0]] > 0
                 else np.sqrt(pos.min() * pos.max()))
        return [bottom, top, float(np.clip(np.log10(guess), self.lo_d, self.hi_d)), 1.0]

    def fit(self, m, sem):
        """(popt, pcov) of log10-EC50 Hill parameters: weighted on the dose means ``m`` if every
        dose is replicated, else unweighted on the points."""
        if self.replicated:
            # a dose whose runs all gave the same value (often 0 at full block) has sem 0; give it the
            # smallest sem seen at any dose rather than an infinite weight
            positive = sem[np.isfinite(sem) & (sem > 0)]
            floor = positive.min() if len(positive) else 1.0
            sigma = np.where(np.isfinite(sem) & (sem > 0), sem, floor)
            return _fit_once(self.doses, m, sigma, self.start(m), self.bounds)
        return _fit_once(self.c, self.y, None, self.start(self.means), self.bounds)


def _wald_intervals(data: _DoseResponse, popt, pcov, level):
    """Intervals from the parameter covariance: normal quantile for weighted fits, Student t with
    n_points − 4 degrees of freedom otherwise."""
    se = np.sqrt(np.clip(np.diag(pcov), 0, None))
    q = (sps.norm.ppf(0.5 + level / 2) if data.replicated
         else sps.t.ppf(0.5 + level / 2, max(len(data.c) - 4, 1)))
    method = (f"weighted least squares on dose means (1/sem²), Wald {level:.0%}" if data.replicated
              else f"least squares, Wald (t) {level:.0%}")
    return popt - q * se, popt + q * se, method


def _bootstrap_intervals(data: _DoseResponse, level, n_boot, seed):
    """Percentile intervals of refits to the runs resampled within each dose."""
    rng = np.random.default_rng(seed)
    order = np.argsort(data.idx, kind="stable")
    starts = np.concatenate([[0], np.cumsum(data.counts)])
    boot = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n_boot):
            pick = np.concatenate([order[starts[k] + rng.integers(0, data.counts[k], data.counts[k])]
                                   for k in range(len(data.doses))])
            yy = np.empty_like(data.y)
            yy[order] = data.y[pick]
            try:
                boot.append(data.fit(*data.summarize_doses(yy))[0])
            except (RuntimeError, ValueError):
                continue
    boot = np.array(boot)
    if len(boot) < n_boot // 2:
        lows = highs = np.full(4, np.nan)
    else:
        lows, highs = np.quantile(boot, [0.5 - level / 2, 0.5 + level / 2], axis=0)
    return lows, highs, f"bootstrap over runs within doses ({len(boot)} refits), percentile {level:.0%}"


def fit_hill(concentration, response, level: float = 0.95, ci: str = "wald", n_boot: int = 500,
             seed: int = 0, metric: str = "") -> HillFit:
    """Fit ``bottom + (top − bottom) c^n/(EC50^n + c^n)`` to a dose–response.

    Parameters
    ----------
    concentration, response : 1-D arrays
        One value per run (or per point); concentration in M, 0 for the drug-free control.
    level : float
        Confidence level of the intervals.
    ci : ``"wald"`` or ``"bootstrap"``
        ``"wald"``: weighted least squares on the dose means with weights 1/sem² (sem from the
        runs at each dose; a dose with sem 0 gets the smallest positive sem; if every dose has one
        point, an unweighted fit with residual variance),
        intervals from the parameter covariance (normal quantile for weighted, Student t with
        n_points − 4 degrees of freedom otherwise); EC50 is fitted on log10 so its interval is
        multiplicative. ``"bootstrap"``: resample the runs within each dose ``n_boot`` times
        (``default_rng(seed)``), refit, take percentile intervals.

    Returns
    -------
    HillFit
    """
    level = _check_level(level)
    if ci not in ("wald", "bootstrap"):
        raise ValueError(f"ci = {ci!r} is not valid: must be 'wald' or 'bootstrap'")
    data = _DoseResponse(concentration, response)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optimize.OptimizeWarning)
        popt, pcov = data.fit(*data.summarize_doses(data.y))
    pred = _hill_log(data.c, *popt)
    ss_res = float(np.sum((data.y - pred) ** 2))
    ss_tot = float(np.sum((data.y - data.y.mean()) ** 2))
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else np.nan
    if ci == "wald":
        lows, highs, method = _wald_intervals(data, popt, pcov, level)
    else:
        lows, highs, method = _bootstrap_intervals(data, level, n_boot, seed)

    bottom, top, log_ec50, n = (float(v) for v in popt)
    lows, highs = [float(v) for v in lows], [float(v) for v in highs]
    return HillFit(ec50=10 ** log_ec50, ec50_ci_low=10 ** lows[2], ec50_ci_high=10 ** highs[2],
                   hill=n, hill_ci_low=lows[3], hill_ci_high=highs[3],
                   bottom=bottom, bottom_ci_low=lows[0], bottom_ci_high=highs[0],
                   top=top, top_ci_low=lows[1], top_ci_high=highs[1],
                   kind="EC50" if top >= bottom else "IC50", n_doses=len(data.doses), n_points=len(data.c),
                   r_squared=float(r2), level=level, method=method, metric=metric)


def dose_response(metrics: pd.DataFrame, metric: str, dose: str = "dose_M", **fit_kwargs):
    """Fit a Hill curve to ``metric`` against the ``dose`` column of a per-run table.

    Returns ``(fit, table)``: the :class:`HillFit` and a per-dose table (dose, n, mean, sd, sem,
    ci_low, ci_high of the mean, Student t).
    """
    if metric not in metrics.columns:
        raise KeyError(f"metric {metric!r} not in the table; metrics: {metric_columns(metrics)}")
    if dose not in metrics.columns:
        raise KeyError(f"dose column {dose!r} not in the table (columns: {list(metrics.columns)})")
    fit = fit_hill(metrics[dose].to_numpy(float), metrics[metric].to_numpy(float), metric=metric, **fit_kwargs)
    table = summarize(metrics, by=dose, metrics_columns=[metric], level=fit.level)
    table = table.sort_values(dose, kind="stable").reset_index(drop=True)
    return fit, table[[dose, "n", "mean", "sd", "sem", "ci_low", "ci_high"]]
