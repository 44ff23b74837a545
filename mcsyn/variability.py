"""Where the amplitude variability of single-vesicle responses comes from (Franks et al. 2003).

A miniature EPSC/IPSC is the response to one vesicle. Its amplitude varies from event to event for
three reasons that the model draws independently per run: the stochastic gating and binding of the
few receptors ("channel noise"), the number of transmitter molecules in the vesicle (the quantal
size, Δq) and where on the active zone the vesicle fuses (release-location dependence). Franks,
Stevens & Sejnowski 2003 (J Neurosci 23:3186) split the variance of their MCell synapse's response
into 8 % channel noise, 58 % Δq and 36 % release location, and found that a release site's potency
falls with its distance from the PSD centre with a length constant of ~100 nm, with no receptor
activated by releases more than 300 nm away.

:func:`miniature` turns a model's release into one vesicle with a gamma-distributed quantum
(``quantal_cv``) released at a position drawn per run uniformly over a disk of the active zone
(``Release.random_position_radius_um``). :func:`variance_decomposition` repeats the Franks method
with nested ensembles, and :func:`potency_curve` measures the mean response against the release's
distance from the PSD centre and fits its length constant.

The nested design. With A the response, P the release position and Q the quantum, the law of total
variance gives, with no further assumption,

    Var A = E[Var(A | P, Q)] + E[Var(E[A | P, Q] | P)] + Var(E[A | P])
          =   channel noise  +        quantal size       +  release position

Three kinds of ensembles estimate the three variances: every source drawn (Var A); K positions P_k
drawn once from the active-zone disk, runs at each with Q drawn per run (pooled within-position
variance: E[Var(A | P)]); the same P_k each with one quantum Q_k drawn once, runs with only the
channels random (pooled within-group variance: E[Var(A | P, Q)]). The fractions are differences of
those variances over the total, so they add up to 1 by construction. The split is unique because
the model draws P, Q and the channels independently; where the sources interact (a far release
has both a smaller mean and a different channel noise), the interaction is assigned by the nesting
order above (channel noise averaged over positions and quanta, Δq over positions), as in a
variance-difference method such as Franks's. Sampling error can make a difference of variances
negative: estimates are reported as they are, never clipped, with bootstrap confidence intervals
(runs resampled within each group, the three ensembles independently).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .electrophysiology import amplitude_statistics
from .errors import ModelError, require_nonnegative
from .model import Release, SynapseModel
from .simulate import run

# ASSUMED: no vesicle-content CV was found stated in the sources read for Franks et al. 2003 (their
# abstract gives the variance fractions, not the Δq distribution); 0.3 is the CV of vesicle volume
# that a ~10 % CV of vesicle diameter implies (V ∝ d³), a round value, not fitted to any result.
QUANTAL_CV_ASSUMED = 0.3
FRANKS_2003 = "Franks, Stevens & Sejnowski 2003, J Neurosci 23:3186"
SOURCES = ("channel", "quantal", "position")
POTENCY_DISTANCES_UM = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)
_POSITION_KEY = 0x7661          # keeps the draw of the fixed positions apart from the runs' seeds


# ======================================================================================================
# miniature mode

def _template_release(model: SynapseModel) -> Release:
    """The model's first cleft vesicle: a release, else a train's vesicle."""
    for rel in list(model.releases) + [tr.vesicle for tr in model.trains]:
        if rel.into == "cleft":
            return rel
    raise ModelError("releases", model.releases, "a miniature needs a release (or train vesicle) into the cleft")


def miniature(model: SynapseModel, quantal_cv: float = QUANTAL_CV_ASSUMED, radius_um: float | None = None,
              position_um: tuple | None = None, molecules: float | None = None) -> SynapseModel:
    """The model with its release replaced by one vesicle that always fuses (a miniature event).

    The vesicle keeps the template release's molecules (or ``molecules``), species, time and fusion
    pore. Its quantum is gamma-distributed with ``quantal_cv`` (0: fixed). It is released at
    ``position_um`` (fixed (x, y)) or, by default, at a position drawn per run uniformly over the
    disk of ``radius_um`` (default: the PSD radius, i.e. an active zone facing the PSD). Trains are
    dropped. Returns a validated copy; the input is not changed."""
    if not isinstance(model, SynapseModel):
        raise ModelError("model", type(model).__name__, "must be a mcsyn.SynapseModel")
    require_nonnegative("quantal_cv", quantal_cv)
    template = _template_release(model)
    if position_um is not None and radius_um is not None:
        raise ModelError("radius_um", radius_um, f"excludes a fixed position_um ({position_um}); give one of them")
    if position_um is None:
        radius_um = model.geometry.psd_radius_um if radius_um is None else radius_um
        if not isinstance(radius_um, (int, float)) or isinstance(radius_um, bool) or not radius_um > 0:
            raise ModelError("radius_um", radius_um, "must be a number of µm > 0")
    vesicle = Release(time_ms=template.time_ms, molecules=template.molecules if molecules is None else molecules,
                      species=template.species, position_um=None if position_um is None else tuple(position_um),
                      into="cleft", pore_tau_ms=template.pore_tau_ms, quantal_cv=float(quantal_cv),
                      molecule_distribution="gamma" if quantal_cv > 0 else "fixed", probability=1.0,
                      random_position_radius_um=0.0 if position_um is not None else float(radius_um))
    return replace(model, releases=[vesicle], trains=[]).validate()


def metric_samples(model: SynapseModel, n_runs: int, seed: int, metric: str, workers: int | None = None):
    """The per-run values of ``metric`` (a column of :attr:`mcsyn.Ensemble.metrics`) as a float array."""
    ens = run(model, n_runs=n_runs, seed=seed, workers=workers)
    if metric not in ens.metrics.columns:
        peaks = [c for c in ens.metrics.columns if "peak" in c]
        raise ModelError("metric", metric, f"must be a per-run metric of this model, e.g. {peaks[:8]}")
    values = ens.metrics[metric].to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        raise ModelError("metric", metric, "has non-finite values in some runs; choose a peak or a count")
    return values


def miniature_statistics(model: SynapseModel, n_runs: int, seed: int, metric: str = "current:peak_pA",
                         quantal_cv: float = QUANTAL_CV_ASSUMED, radius_um: float | None = None,
                         workers: int | None = None, bins="auto") -> dict:
    """Amplitude statistics of miniature events (:func:`mcsyn.electrophysiology.amplitude_statistics`:
    mean, sd, CV and its SE, quantiles, the amplitude histogram) of ``metric``, every source drawn.
    The ``_pA`` names hold the metric's own unit when it is not a current (e.g. open channels)."""
    mini = miniature(model, quantal_cv, radius_um)
    out = amplitude_statistics(metric_samples(mini, n_runs, seed, metric, workers), bins=bins)
    return {"metric": metric, **out}


# ======================================================================================================
# the decomposition on samples

def _groups(samples, what):
    arrays = [np.asarray(samples, dtype=float)] if np.ndim(samples) == 1 else [np.asarray(g, dtype=float)
                                                                               for g in samples]
    if not arrays:
        raise ModelError(what, samples, "needs at least one group of samples")
    for k, g in enumerate(arrays):
        if g.ndim != 1 or len(g) < 2 or not np.all(np.isfinite(g)):
            raise ModelError(f"{what}[{k}]", g[:4], "must be a 1-D array of at least 2 finite values")
    return arrays


def pooled_variance(groups) -> float:
    """Pooled within-group variance Σ(n_g − 1)s_g² / Σ(n_g − 1) (ddof 1 per group)."""
    groups = _groups(groups, "groups")
    return float(sum((len(g) - 1) * g.var(ddof=1) for g in groups) / sum(len(g) - 1 for g in groups))


def _bootstrap_pooled(groups, n_boot, rng) -> np.ndarray:
    """n_boot bootstrap replicates of the pooled variance, runs resampled within each group."""
    num = np.zeros(n_boot)
    for g in groups:
        idx = rng.integers(0, len(g), size=(n_boot, len(g)))
        num += (len(g) - 1) * g[idx].var(axis=1, ddof=1)
    return num / sum(len(g) - 1 for g in groups)


def _fractions(v_total, v_position_fixed, v_channel):
    return {"channel": v_channel / v_total, "quantal": (v_position_fixed - v_channel) / v_total,
            "position": (v_total - v_position_fixed) / v_total}


@dataclass(frozen=True)
class VarianceDecomposition:
    """Variance fractions of a response (see the module notes for the method).

    ``variances``: ``total`` (every source drawn), ``position_fixed`` (pooled within-position) and
    ``channel`` (pooled within position and quantum), in the metric's unit squared. ``fractions``,
    ``se`` (bootstrap SD) and ``ci_low``/``ci_high`` (bootstrap percentiles at ``confidence``) per
    source in :data:`SOURCES`. Differences of estimated variances can be negative; none is clipped.
    ``group_means``: the mean of each group of runs (``total``, and one per fixed position or
    position and quantum), for checking that the nested ensembles sample the same response."""

    metric: str
    mean: float
    cv: float
    variances: dict
    fractions: dict
    se: dict
    ci_low: dict
    ci_high: dict
    n_runs: dict
    confidence: float
    n_boot: int
    group_means: dict

    def table(self):
        """One row per source: fraction, SE, CI and the variance it stands for (a pandas DataFrame)."""
        import pandas as pd   # pandas: start-up cost, load on use
        vt = self.variances["total"]
        return pd.DataFrame([{"source": s, "fraction": self.fractions[s], "se": self.se[s],
                              "ci_low": self.ci_low[s], "ci_high": self.ci_high[s], "variance": self.fractions[s] * vt}
                             for s in SOURCES])


def decompose_samples(total, position_fixed, channel, metric: str = "", n_boot: int = 2000,
                      confidence: float = 0.95, seed: int = 0) -> VarianceDecomposition:
    """The decomposition from samples: ``total`` (1-D, every source drawn), ``position_fixed`` (one
    array per fixed position, the quantum drawn per run) and ``channel`` (one array per fixed
    position and quantum). Bootstrap with ``n_boot`` replicates seeded by ``seed``."""
    total = _groups(total, "total")
    if len(total) != 1:
        raise ModelError("total", f"{len(total)} groups", "must be one 1-D array (every source drawn per run)")
    pos, chan = _groups(position_fixed, "position_fixed"), _groups(channel, "channel")
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 100:
        raise ModelError("n_boot", n_boot, "must be an integer >= 100")
    if not 0 < confidence < 1:
        raise ModelError("confidence", confidence, "must be in (0, 1)")
    v = {"total": float(total[0].var(ddof=1)), "position_fixed": pooled_variance(pos), "channel": pooled_variance(chan)}
    if v["total"] <= 0:
        raise ModelError("total", total[0][:4], "has no variance: nothing to decompose")
    fractions = _fractions(v["total"], v["position_fixed"], v["channel"])
    rng = np.random.default_rng(seed)
    boot = _fractions(_bootstrap_pooled(total, n_boot, rng), _bootstrap_pooled(pos, n_boot, rng),
                      _bootstrap_pooled(chan, n_boot, rng))
    tail = (1 - confidence) / 2
    mean = float(total[0].mean())
    return VarianceDecomposition(
        metric, mean, math.sqrt(v["total"]) / abs(mean) if mean != 0 else float("nan"), v, fractions,
        {s: float(np.std(boot[s], ddof=1)) for s in SOURCES},
        {s: float(np.quantile(boot[s], tail)) for s in SOURCES},
        {s: float(np.quantile(boot[s], 1 - tail)) for s in SOURCES},
        {"total": len(total[0]), "position_fixed": sum(map(len, pos)), "channel": sum(map(len, chan))},
        float(confidence), int(n_boot),
        {"total": [mean], "position_fixed": [float(g.mean()) for g in pos], "channel": [float(g.mean()) for g in chan]})


# ======================================================================================================
# the decomposition on a model

def fixed_conditions(n_positions: int, radius_um: float, molecules: float, quantal_cv: float, seed: int):
    """K release positions uniform over the disk of ``radius_um`` and one quantum per position from
    the gamma of ``quantal_cv`` (rounded, at least 1 molecule), drawn from ``seed``: ((x, y), q) pairs."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_POSITION_KEY,)))
    r = radius_um * np.sqrt(rng.random(n_positions))
    theta = 2 * np.pi * rng.random(n_positions)
    if quantal_cv > 0:
        q = np.maximum(1, np.round(rng.gamma(1 / quantal_cv ** 2, molecules * quantal_cv ** 2, n_positions)))
    else:
        q = np.full(n_positions, float(molecules))
    return [((float(a * math.cos(t)), float(a * math.sin(t))), float(n)) for a, t, n in zip(r, theta, q)]


def variance_decomposition(model: SynapseModel, n_runs: int, seed: int, metric: str = "AMPA:open:peak",
                           quantal_cv: float = QUANTAL_CV_ASSUMED, radius_um: float | None = None,
                           n_positions: int = 8, workers: int | None = None, n_boot: int = 2000,
                           confidence: float = 0.95) -> VarianceDecomposition:
    """Franks et al. 2003's split of a miniature's amplitude variance into channel noise, quantal
    size and release position, by nested ensembles (module notes): ``n_runs`` with every source
    drawn; ``n_runs`` at ``n_positions`` fixed positions (n_runs // n_positions each) with the quantum
    drawn; ``n_runs`` at the same positions each with one fixed quantum. ``metric`` is a per-run
    metric (``"AMPA:open:peak"``, or ``"current:peak_pA"`` under a clamp). 3 × n_runs runs in all."""
    if not isinstance(n_positions, (int, np.integer)) or isinstance(n_positions, bool) or n_positions < 1:
        raise ModelError("n_positions", n_positions, "must be an integer >= 1")
    if not isinstance(n_runs, (int, np.integer)) or isinstance(n_runs, bool) or n_runs < 2 * n_positions:
        raise ModelError("n_runs", n_runs, f"must be an integer >= 2 × n_positions = {2 * n_positions} "
                                           "(two runs per fixed position at least)")
    mini = miniature(model, quantal_cv, radius_um)
    radius = mini.releases[0].random_position_radius_um
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(1 + 2 * n_positions)]
    per = n_runs // n_positions
    total = metric_samples(mini, n_runs, seeds[0], metric, workers)
    position_fixed, channel = [], []
    for k, (xy, q) in enumerate(fixed_conditions(n_positions, radius, mini.releases[0].molecules, quantal_cv, seed)):
        position_fixed.append(metric_samples(miniature(model, quantal_cv, position_um=xy), per, seeds[1 + k],
                                             metric, workers))
        channel.append(metric_samples(miniature(model, 0.0, position_um=xy, molecules=q), per,
                                      seeds[1 + n_positions + k], metric, workers))
    return decompose_samples(total, position_fixed, channel, metric, n_boot, confidence, seed)


# ======================================================================================================
# potency against release distance

@dataclass(frozen=True)
class PotencyCurve:
    """Mean response against the release's distance from the PSD centre, with an exponential fit.

    ``table`` (pandas): ``distance_um``, ``mean``, ``se``, ``relative`` (to the first distance).
    ``length_constant_um`` and its ``length_constant_se_um`` from ``A·exp(−d/λ)`` fitted by weighted
    least squares (NaN with a ``reason`` when the fit fails)."""

    metric: str
    table: object
    amplitude: float
    length_constant_um: float
    length_constant_se_um: float
    reason: str = ""


def fit_length_constant(distances_um, means, ses):
    """(A, λ, SE of λ, reason) of ``A·exp(−d/λ)`` fitted to the means (negative ones, an inward
    current, by their magnitude; A keeps the sign), weighted by their SEs
    (``scipy.optimize.curve_fit`` with ``absolute_sigma``). A zero SE (no spread) is given the
    smallest positive SE of the curve so that the point keeps a finite weight."""
    d, y, s = (np.asarray(x, dtype=float) for x in (distances_um, means, ses))
    nan = float("nan")
    if len(d) < 3 or y[0] == 0:
        return nan, nan, nan, "needs at least 3 distances and a response at the first"
    sign = math.copysign(1.0, y[0])       # an inward current is negative: fit its magnitude
    y = y * sign
    positive = s[s > 0]
    s = np.where(s > 0, s, positive.min() if len(positive) else 1.0)
    from scipy.optimize import curve_fit   # scipy.optimize: start-up cost, load on use
    lam0 = float(d[np.argmax(y <= y[0] / math.e)]) if np.any(y <= y[0] / math.e) else float(d[-1])
    try:
        (a, lam), cov = curve_fit(lambda x, a, lam: a * np.exp(-x / lam), d, y, p0=(y[0], max(lam0, 1e-3)),
                                  sigma=s, absolute_sigma=True, bounds=([0, 1e-6], [np.inf, np.inf]), maxfev=5000)
    except (RuntimeError, ValueError) as exc:
        return nan, nan, nan, f"curve_fit failed: {exc}"
    return float(a) * sign, float(lam), float(math.sqrt(cov[1, 1])), ""


def potency_curve(model: SynapseModel, n_runs: int, seed: int, metric: str = "AMPA:open:peak",
                  distances_um=POTENCY_DISTANCES_UM, molecules: float | None = None,
                  workers: int | None = None) -> PotencyCurve:
    """Potency of release sites: the mean ``metric`` of ``n_runs`` miniatures with a fixed quantum
    released at (d, 0) for each distance d (µm) from the PSD centre, and the length constant of an
    exponential fit. Every d must lie inside the cleft (enlarge ``geometry.cleft_radius_um`` to
    reach far release sites)."""
    import pandas as pd   # pandas: start-up cost, load on use
    d = np.asarray(distances_um, dtype=float)
    if d.ndim != 1 or len(d) < 3 or not np.all(np.isfinite(d)) or np.any(d < 0) or np.any(np.diff(d) <= 0):
        raise ModelError("distances_um", distances_um, "must be at least 3 increasing distances >= 0 µm")
    if d[-1] >= model.geometry.cleft_radius_um:
        raise ModelError("distances_um", float(d[-1]), f"must lie inside the cleft (< geometry.cleft_radius_um = "
                                                      f"{model.geometry.cleft_radius_um} µm)")
    if not isinstance(n_runs, (int, np.integer)) or n_runs < 2:
        raise ModelError("n_runs", n_runs, "must be an integer >= 2")
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(len(d))]
    rows = []
    for dist, s in zip(d, seeds):
        x = metric_samples(miniature(model, 0.0, position_um=(float(dist), 0.0), molecules=molecules), n_runs, s,
                           metric, workers)
        rows.append({"distance_um": float(dist), "mean": float(x.mean()),
                     "se": float(x.std(ddof=1) / math.sqrt(n_runs))})
    table = pd.DataFrame(rows)
    first = table["mean"].iloc[0]
    table["relative"] = table["mean"] / first if first != 0 else float("nan")
    a, lam, lam_se, reason = fit_length_constant(table["distance_um"], table["mean"], table["se"])
    return PotencyCurve(metric, table, a, lam, lam_se, reason)
