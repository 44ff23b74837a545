"""Figures of ensembles: time courses with quantile bands, metric histograms, dose–response fits.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global state,
no display needed: it renders with the Agg backend) and sized for a journal column or page;
:func:`save_figure` writes PNG (300 dpi) or SVG. Colours are the Okabe–Ito palette, readable with
colour-vision deficiencies and in greyscale order.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import stats as _stats
from .labels import (condition_labels, format_dose, metric_label, metric_scale, metric_unit,  # noqa: F401
                     observable_title, observable_unit)

OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7", "#F0E442")
STYLE = {
    "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "legend.fontsize": 8, "axes.spines.top": False, "axes.spines.right": False, "axes.linewidth": 0.8,
    "lines.linewidth": 1.4, "savefig.bbox": "tight", "savefig.pad_inches": 0.03, "svg.fonttype": "none",
}
FORMATS = ("png", "svg", "pdf")

def _style():
    import matplotlib
    return matplotlib.rc_context(STYLE)


def colors(n: int) -> list:
    """``n`` colours: Okabe–Ito first, then a perceptually ordered map for long dose series."""
    if n <= len(OKABE_ITO):
        return list(OKABE_ITO[:n])
    import matplotlib
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.0, 0.9, n)]


def condition_colors(table: pd.DataFrame, conditions) -> list:
    """Colours of conditions: for a dose series of one drug (three doses or more), the control black
    and the doses in dose order along viridis; otherwise :func:`colors`."""
    if "dose_M" in table.columns and "drug" in table.columns:
        first = table.drop_duplicates("condition").set_index("condition")
        sub = first.loc[[c for c in conditions if c in first.index]]
        drugs = set(sub["drug"]) - {"control"}
        if (len(drugs) == 1 and len(sub) == len(conditions) and sub["dose_M"].notna().all()
                and (sub["dose_M"] > 0).sum() >= 3):
            import matplotlib
            doses = sub["dose_M"].to_numpy(float)
            order = {d: i for i, d in enumerate(sorted(set(doses[doses > 0])))}
            cmap = matplotlib.colormaps["viridis"]
            n = max(len(order) - 1, 1)
            return ["black" if d == 0 else cmap(0.9 * order[d] / n) for d in doses]
    return colors(len(conditions))


def _layout(n, ncols):
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


def save_figure(fig: Figure, path, dpi: int = 300) -> Path:
    """Save ``fig`` to ``path``; the format is the suffix (png, svg or pdf)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"figure format {fmt!r} is not supported: use one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _style():
        fig.savefig(path, dpi=dpi, format=fmt)
    return path


def _tc_of(source):
    return source.timecourse if hasattr(source, "timecourse") else source


def _metrics_of(source):
    return source.metrics if hasattr(source, "metrics") else source


BANDS = ("quantiles", "ci", "sd")


def quantile_pairs(timecourse: pd.DataFrame) -> list:
    """Symmetric quantile columns of a time-course table, innermost first: ``[("q25", "q75"),
    ("q5", "q95")]`` for the default quantiles, ``[("q10", "q90")]`` for ``--quantiles 0.1,0.9``."""
    levels = {}
    for col in timecourse.columns:
        if col.startswith("q") and timecourse[col].notna().any():
            try:
                levels[float(col[1:])] = col
            except ValueError:
                continue
    pairs = [(levels[p], levels[100 - p]) for p in sorted(levels, reverse=True) if p < 50 and 100 - p in levels]
    return pairs


def _band_spec(tc, bands, center, inner, outer, level):
    """(line column, [(low, high, alpha) band callables], caption) of a time-course figure."""
    if bands not in BANDS:
        raise ValueError(f"bands = {bands!r} is not valid: must be one of {', '.join(map(repr, BANDS))}")
    has_median = "median" in tc.columns and tc["median"].notna().any()
    if bands == "quantiles" and not has_median:
        bands = "sd"                    # a result without traces stores no quantiles
    if bands == "ci":
        from scipy import stats as sps
        q = sps.t.ppf(0.5 + level / 2, np.maximum(tc["n"].to_numpy(float) - 1, 1))
        half = pd.Series(q * tc["sem"].to_numpy(float), index=tc.index)
        return "mean", [(lambda d: d["mean"] - half[d.index], lambda d: d["mean"] + half[d.index], 0.3)], \
            f"line: mean over runs; band: {100 * level:g} % CI of the mean"
    if bands == "sd":
        return "mean", [(lambda d: d["mean"] - d["sd"], lambda d: d["mean"] + d["sd"], 0.25)], \
            "line: mean; band: ± 1 sd of runs"
    pairs = quantile_pairs(tc)
    chosen = []
    for given, fallback in ((inner, pairs[0] if pairs else None), (outer, pairs[-1] if len(pairs) > 1 else None)):
        band = tuple(given) if given else fallback
        if band is None:
            continue
        missing = [b for b in band if b not in tc.columns or not tc[b].notna().any()]
        if missing:
            raise KeyError(f"quantile column(s) {missing} not in the time course; stored: "
                           f"{[c for pair in pairs for c in pair]}")
        if band not in chosen:
            chosen.append(band)
    specs = [(lambda d, lo=lo: d[lo], lambda d, hi=hi: d[hi], alpha)
             for (lo, hi), alpha in zip(chosen, (0.3, 0.13))]
    caption = f"line: {center}"
    if chosen:
        caption += "; bands: " + " and ".join(f"{lo[1:]}–{hi[1:]} %" for lo, hi in chosen)
    return center, specs, caption + " of runs"


def site_totals_of(source) -> dict:
    """``{group: sites}`` from a result's ``<group>:sites`` metric, for groups whose total is the
    same in every run shown (the site count does not depend on the drug)."""
    m = getattr(source, "metrics", None)
    if m is None:
        return {}
    out = {}
    for col in m.columns:
        if col.endswith(":sites") and m[col].nunique(dropna=True) == 1:
            out[col[:-len(":sites")]] = int(m[col].dropna().iloc[0])
    return out


def _per_site_axis(ax, obs, totals):
    group, _, what = obs.rpartition(":")
    n = totals.get(group)
    if not n or what not in ("bound", "open", "occupied"):
        return
    # in percent of the sites: small fractions then read without an offset text over the title
    sec = ax.secondary_yaxis("right", functions=(lambda x, n=n: 100 * x / n, lambda p, n=n: p * n / 100))
    sec.set_ylabel({"bound": "bound per site", "open": "open", "occupied": "occupied"}[what]
                   + f" (% of {n:,} sites)", fontsize=7.5)
    sec.tick_params(labelsize=7)


def plot_timecourse(source, observables=None, conditions=None, center: str = "median", inner=None, outer=None,
                    ncols: int = 2, time_range=None, panel_size=(3.4, 2.3), bands: str = "quantiles",
                    level: float = 0.95) -> Figure:
    """Time courses per condition, one panel per observable, with bands.

    Parameters
    ----------
    source : EnsembleResult or DataFrame
        A result or its ``timecourse`` table (with a result, site groups also get a right axis per
        site, from the ``<group>:sites`` metric).
    observables : list of str, optional
        Panels to draw (default: :func:`default_plot_observables`).
    conditions : list of str, optional
        Conditions to draw (default: all, in table order).
    bands : ``"quantiles"``, ``"ci"`` or ``"sd"``
        ``"quantiles"`` (default): the ``center`` line (``"median"`` or ``"mean"``) with the
        stored quantile bands, ``inner`` and ``outer`` (pairs of columns such as ``("q25", "q75")``;
        default: the innermost and outermost symmetric pairs stored). A result without stored
        quantiles falls back to ``"sd"``. ``"ci"``: the mean with its ``level`` confidence band
        (Student t on the standard error: the uncertainty of the mean, not the spread of runs).
        ``"sd"``: the mean ± 1 sd. The caption says which.
    """
    tc = _tc_of(source)
    if observables is None:
        observables = default_plot_observables(tc)
    if conditions is None:
        conditions = list(dict.fromkeys(tc["condition"]))
    missing = [o for o in observables if o not in set(tc["observable"])]
    if missing:
        raise KeyError(f"observable(s) {missing} not in the time course; available: {sorted(set(tc['observable']))}")
    if len(conditions) > 4 and outer is None and bands == "quantiles":
        pairs = quantile_pairs(tc)     # many conditions: an outer band would bury the lines
        outer = inner = inner or (pairs[0] if pairs else None)
    line_col, specs, caption = _band_spec(tc, bands, center, inner, outer, _stats._check_level(level))
    names = condition_labels(tc, conditions)
    totals = site_totals_of(source)
    nrows, ncols = _layout(len(observables), ncols)
    with _style():
        fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + 0.5), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        cols = condition_colors(tc, conditions)
        for ax, obs in zip(axes, observables):
            sub = tc[tc["observable"] == obs]
            for color, cond in zip(cols, conditions):
                d = sub[sub["condition"] == cond].sort_values("time_ms")
                if d.empty:
                    continue
                t = d["time_ms"].to_numpy()
                for low, high, alpha in specs:
                    lo, hi = np.asarray(low(d), float), np.asarray(high(d), float)
                    if np.isfinite(lo).any():
                        ax.fill_between(t, lo, hi, color=color, alpha=alpha, linewidth=0)
                ax.plot(t, d[line_col].to_numpy(float), color=color, label=names[cond])
            ax.set_title(observable_title(obs))
            ax.set_xlabel("time (ms)")
            ax.set_ylabel(observable_unit(obs))
            if time_range is not None:
                ax.set_xlim(*time_range)
            ax.set_ylim(bottom=min(0, ax.get_ylim()[0]))
            _per_site_axis(ax, obs, totals)
        for ax in axes[len(observables):]:
            ax.set_visible(False)
        handles, labels = axes[0].get_legend_handles_labels()
        n = tc.groupby("condition", sort=False)["n"].max()
        counts = [int(n[c]) for c in conditions if c in n.index]
        runs = f"{counts[0]} per condition" if len(set(counts)) == 1 else ", ".join(map(str, counts))
        title = f"{caption} (n = {runs})"
        if counts and max(counts) < 2:
            title = "line: one run per condition (no band)"
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 3), frameon=False,
                   title=title,
                   title_fontsize=8)
    return fig


# time-course panels by priority: free, then each site group, then the fates of the transmitter
_AGGREGATE_ORDER = ("free", "taken_up", "escaped", "degraded", "effluxed", "free_cleft", "free_band",
                    "free_volume", "current_pA")


def _duplicates(timecourse: pd.DataFrame, names: list) -> set:
    """Observables whose mean series equals an earlier one's in every condition (``free_volume``
    when all free transmitter is in the extracellular space)."""
    series = {}
    for name in names:
        d = timecourse[timecourse["observable"] == name].sort_values(["condition", "time_ms"], kind="stable")
        series[name] = d["mean"].to_numpy(float)
    out, seen = set(), []
    for name in names:
        if any(len(series[name]) == len(series[s]) and np.allclose(series[name], series[s], rtol=1e-12, atol=0)
               for s in seen):
            out.add(name)
        else:
            seen.append(name)
    return out


def default_plot_observables(timecourse: pd.DataFrame, limit: int = 6) -> list:
    """The time-course panels a synapse's question needs, at most ``limit``: free transmitter, the
    transmitter bound to each site group (the receptors and transporters), then taken up and
    escaped, then the compartments' free counts. Observables that never change, and those that
    repeat an earlier one (free in the extracellular space = all free), are left out."""
    varying = timecourse.groupby("observable", sort=False)["mean"].agg(lambda s: s.max() > s.min())
    names = [o for o, v in varying.items() if v]
    group_bound = [o for o in names if o.endswith(":bound")]
    order = ["free"] + group_bound + [o for o in _AGGREGATE_ORDER if o != "free"]
    if not group_bound:
        order.append("bound")
    order += [o for o in names if o.endswith(":open")]
    ranked = [o for o in order if o in names] + [o for o in names if o not in order and o not in ("released", "bound")]
    dup = _duplicates(timecourse, ranked)
    return [o for o in ranked if o not in dup][:limit]


def _is_integer_valued(x) -> bool:
    return bool(len(x)) and bool(np.all(x == np.round(x)))


def _integer_edges(lo, hi, width):
    """Edges on half-integers, ``width`` (a whole number >= 1) integers per bin: every bin holds
    the same number of possible values (no comb from bins that hold one integer or two)."""
    width = max(1, int(math.ceil(width)))
    start = math.floor(lo) - 0.5
    n = max(1, math.ceil((hi + 0.5 - start) / width))
    return start + width * np.arange(n + 1)


def _fd_width(samples):
    widths = []
    for x in samples:
        if len(x) > 1 and x.max() > x.min():
            e = np.histogram_bin_edges(x, bins="auto")
            widths.append(e[1] - e[0])
    return min(widths) if widths else None


def _shared_edges(samples, max_bins=150, step=None):
    """Bin edges shared by all samples: the finest Freedman–Diaconis ('auto') width of any sample
    over the joint range; for integer-valued samples (or samples on a lattice of spacing ``step``,
    such as k/N occupancies) a whole number of values per bin, edges half-way between them. None
    when that would need more than ``max_bins`` bins (samples far apart): each sample then gets
    its own bins (:func:`sample_edges`)."""
    if step:
        edges = _shared_edges([np.round(x / step) for x in samples], max_bins)   # k, not k ± 1e-12
        return None if edges is None else edges * step
    x_all = np.concatenate(samples)
    lo, hi = x_all.min(), x_all.max()
    if hi == lo:
        return np.array([lo - 0.5, hi + 0.5])
    width = _fd_width(samples) or (hi - lo) / 10
    if _is_integer_valued(x_all):
        edges = _integer_edges(lo, hi, width if hi - lo > 60 else 1)
        return edges if len(edges) - 1 <= max_bins else None
    n = math.ceil((hi - lo) / width)
    if n > max_bins:
        return None
    return np.linspace(lo, hi, max(n, 1) + 1)


def sample_edges(x, step=None):
    """Bins of one sample: 'auto' widths, on integers for an integer-valued sample."""
    if step:
        edges = sample_edges(np.round(x / step))
        return edges if isinstance(edges, str) else edges * step
    if _is_integer_valued(x):
        return _integer_edges(x.min(), x.max(), _fd_width([x]) or 1)
    return "auto"


def plot_histograms(source, metrics_columns=None, by: str = "condition", ncols: int = 3, density=None,
                    panel_size=(2.6, 2.1)) -> Figure:
    """Histograms of per-run metrics, one panel per metric, conditions overlaid. Bins are shared
    (:func:`_shared_edges`) unless the conditions lie too far apart, and integer-valued metrics
    (counts) are binned on integers; the dashed line marks each condition's mean. ``density``
    (default: only when the conditions have different numbers of runs) normalises each histogram
    to unit area; otherwise the axis counts runs."""
    m = _metrics_of(source)
    if metrics_columns is None:
        metrics_columns = default_plot_metrics(m)
    if not len(metrics_columns):
        raise ValueError("no metrics to draw: none varies across runs (pass metrics_columns to draw constant ones)")
    groups = list(dict.fromkeys(m[by]))
    names = condition_labels(m, groups) if by == "condition" else {g: str(g) for g in groups}
    if density is None:
        density = m.groupby(by, sort=False).size().nunique() > 1
    nrows, ncols = _layout(len(metrics_columns), ncols)
    with _style():
        fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + 0.4), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        cols = condition_colors(m, groups) if by == "condition" else colors(len(groups))
        for ax, col in zip(axes, metrics_columns):
            samples = []
            for g in groups:
                x = m.loc[m[by] == g, col].to_numpy(float) * metric_scale(col)
                samples.append(x[np.isfinite(x)])
            ax.set_xlabel(_wrapped(metric_label(col)))
            if not any(len(x) for x in samples):
                ax.set_title("no finite values", fontsize=8)
                continue
            step = _lattice_step(m, col)
            edges = _shared_edges([x for x in samples if len(x)], step=step)
            for color, g, x in zip(cols, groups, samples):
                if x.size == 0:
                    continue
                bins = edges if edges is not None else sample_edges(x, step)
                ax.hist(x, bins=bins, density=density, histtype="stepfilled", alpha=0.25, color=color)
                ax.hist(x, bins=bins, density=density, histtype="step", color=color, linewidth=1.1,
                        label=names[g])
                ax.axvline(x.mean(), color=color, linestyle="--", linewidth=0.9)
            ax.set_ylabel("density" if density else "runs")
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=not density))
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
            if metric_unit(col) == "M":
                ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        for ax in axes[len(metrics_columns):]:
            ax.set_visible(False)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), frameon=False,
                   title="dashed: mean", title_fontsize=8)
    return fig


def _lattice_step(metrics: pd.DataFrame, col: str):
    """The spacing of a metric that takes values k/N (in its drawn unit): a peak occupancy or a
    blocked fraction of a group of N sites (N the same in every run); None otherwise."""
    group, sep, rest = col.partition(":")
    if not sep or rest not in ("occupancy_fraction:peak", "blocked_fraction"):
        return None
    sites = metrics.get(f"{group}:sites")
    if sites is None or sites.nunique(dropna=True) != 1 or not sites.dropna().iloc[0] > 0:
        return None
    step = metric_scale(col) / float(sites.dropna().iloc[0])
    x = metrics[col].dropna().to_numpy(float) * metric_scale(col) / step
    return step if np.allclose(x, np.round(x), atol=1e-6) else None


def _wrapped(label: str, width: int = 34) -> str:
    import textwrap
    return "\n".join(textwrap.wrap(label, width)) or label


def default_plot_metrics(metrics: pd.DataFrame, limit: int = 6) -> list:
    """The readouts a synapse's question needs, among those that vary across runs, at most
    ``limit``: clearance half-time and the fraction taken up, the occupancy of each receptor
    group (groups with open states) and transporter group, then the other fates."""
    cols = _stats.metric_columns(metrics)
    receptors = [c[:-len(":open:peak")] for c in cols if c.endswith(":open:peak")]
    others = [c[:-len(":sites")] for c in cols if c.endswith(":sites") and c[:-len(":sites")] not in receptors]
    preferred = ["clearance_half_time_ms", "fraction_taken_up", "current:peak_pA"]
    preferred += [f"{g}:occupancy_fraction:peak" for g in receptors + others]
    preferred += [c for c in cols if c.endswith(":bound:integral_ms")]
    preferred += ["peak_free", "fraction_escaped", "fraction_degraded", "taken_up", "escaped", "free_end"]
    varying = [c for c in cols if metrics[c].nunique(dropna=True) > 1]
    out = [c for c in preferred if c in varying]
    out += [c for c in varying if c not in out]
    return out[:limit]


def _format_conc(x: float) -> str:
    return format_dose(x)


def _dose_ticks(ax, doses):
    """Concentration ticks written as doses are (``3.16 nM``): at the doses run when there are
    few, else at the decades."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter
    doses = np.unique(np.asarray(doses, float))
    if len(doses) <= 6:
        ax.xaxis.set_major_locator(FixedLocator(doses))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: format_dose(x)))
    for label in ax.get_xticklabels():
        label.set_fontsize(7.5)


def plot_dose_response(source, metric: str, fit=None, dose: str = "dose_M", drug: str | None = None,
                       show_runs: bool = True, figsize=(4.2, 3.4)) -> Figure:
    """Dose–response of ``metric``: per-run values, means with 95 % CIs, the Hill fit and its
    EC50/IC50 with the CI shaded. The control (dose 0) is drawn on a separate axis at the left;
    the legend, with the fitted values, sits above the axes (it covers no data).

    ``source`` is a result or a per-run table; ``fit`` a :class:`~mcsyn.stats.HillFit` (fitted here
    when omitted)."""
    m = _metrics_of(source)
    if drug is not None and "drug" in m.columns:
        m = m[m["drug"].isin([drug, "control"])]
    elif drug is None and "drug" in m.columns:
        names = [d for d in dict.fromkeys(m["drug"]) if d != "control"]
        drug = names[0] if len(names) == 1 else None
    if fit is None:
        fit, _ = _stats.dose_response(m, metric, dose=dose)
    table = _stats.summarize(m, by=dose, metrics_columns=[metric]).sort_values(dose)
    k = metric_scale(metric)          # fractions are drawn in percent
    for col in ("mean", "ci_low", "ci_high"):
        table[col] = table[col] * k
    pos = table[table[dose] > 0]
    ctrl = table[table[dose] == 0]
    rng = np.random.default_rng(0)
    with _style():
        fig = Figure(figsize=figsize, layout="constrained")
        has_ctrl = not ctrl.empty
        if has_ctrl:
            ax0, ax = fig.subplots(1, 2, sharey=True, width_ratios=[1, 6])
        else:
            ax = fig.subplots()
            ax0 = None
        c_lo, c_hi = pos[dose].min(), pos[dose].max()
        if show_runs:
            runs = m[m[dose] > 0]
            jitter = 10 ** rng.uniform(-0.04, 0.04, len(runs))
            ax.scatter(runs[dose] * jitter, runs[metric] * k, s=4, color="0.6", alpha=0.35, linewidths=0, zorder=1,
                       label="runs")
        ax.errorbar(pos[dose], pos["mean"], yerr=[pos["mean"] - pos["ci_low"], pos["ci_high"] - pos["mean"]],
                    fmt="o", color="black", markersize=4, capsize=2.5, zorder=3, label="mean ± 95 % CI")
        grid = np.logspace(math.log10(c_lo) - 0.3, math.log10(c_hi) + 0.3, 300)
        fit_text = (f"Hill fit: {fit.kind} {_format_conc(fit.ec50)} ({100 * fit.level:g} % CI "
                    f"{_format_conc(fit.ec50_ci_low)}–{_format_conc(fit.ec50_ci_high)}), "
                    f"$n_H$ {fit.hill:.2f} ({fit.hill_ci_low:.2f}–{fit.hill_ci_high:.2f})")
        ax.plot(grid, k * fit.predict(grid), color=OKABE_ITO[5], zorder=2, label=fit_text)
        if np.isfinite(fit.ec50_ci_low) and np.isfinite(fit.ec50_ci_high):
            ax.axvspan(fit.ec50_ci_low, fit.ec50_ci_high, color=OKABE_ITO[5], alpha=0.12, linewidth=0)
        ax.axvline(fit.ec50, color=OKABE_ITO[5], linestyle="--", linewidth=0.9)
        ax.set_xscale("log")
        ax.set_xlim(grid[0], grid[-1])
        _dose_ticks(ax, pos[dose])
        ax.set_xlabel(f"{drug + ' ' if drug else ''}free concentration")
        if ax0 is not None:
            if show_runs:
                cr = m[m[dose] == 0]
                ax0.scatter(rng.uniform(-0.15, 0.15, len(cr)), cr[metric] * k, s=4, color="0.6", alpha=0.35,
                            linewidths=0)
            ax0.errorbar([0], ctrl["mean"], yerr=[ctrl["mean"] - ctrl["ci_low"], ctrl["ci_high"] - ctrl["mean"]],
                         fmt="o", color="black", markersize=4, capsize=2.5)
            ax0.set_xlim(-0.5, 0.5)
            ax0.set_xticks([0], ["control"], fontsize=7.5)
            ax0.set_xlabel(" ")
            ax0.set_ylabel(metric_label(metric))
            ax0.spines["right"].set_visible(False)
            ax.spines["left"].set_visible(False)
            ax.tick_params(axis="y", left=False)
            for a, x in ((ax0, 1), (ax, 0)):
                a.plot([x], [0], transform=a.transAxes, marker=[(-1, -1.5), (1, 1.5)], markersize=6,
                       color="k", mew=0.8, clip_on=False, linestyle="none")
        else:
            ax.set_ylabel(metric_label(metric))
        handles, labels = ax.get_legend_handles_labels()
        per_dose = table.groupby(dose)["n"].max()
        n_text = f"{int(per_dose.iloc[0])} runs per dose" if per_dose.nunique() == 1 else f"{fit.n_points} runs"
        fig.legend(handles, labels, loc="outside upper center", ncols=1, frameon=False, fontsize=7.5,
                   title=f"{metric_label(metric)}: {n_text}, {len(pos)} concentrations"
                         + (" and the control" if has_ctrl else ""), title_fontsize=8)
    return fig
