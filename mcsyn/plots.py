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

from . import stats as _stats

OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7", "#F0E442")
STYLE = {
    "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "legend.fontsize": 8, "axes.spines.top": False, "axes.spines.right": False, "axes.linewidth": 0.8,
    "lines.linewidth": 1.4, "savefig.bbox": "tight", "savefig.pad_inches": 0.03, "svg.fonttype": "none",
}
FORMATS = ("png", "svg", "pdf")

_OBS_TITLES = {
    "free": "Free transmitter", "free_cleft": "Free in the cleft", "free_band": "Free in the band",
    "free_volume": "Free in the extracellular volume", "bound": "Bound to sites", "released": "Released (cumulative)",
    "taken_up": "Taken up (cumulative)", "escaped": "Escaped (cumulative)", "degraded": "Degraded (cumulative)",
    "effluxed": "Effluxed (cumulative)", "binding_events": "Binding events (cumulative)",
}


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


def observable_title(name: str) -> str:
    """Readable title of a time-series column (``"SERT:bound"`` -> ``"SERT: bound"``)."""
    if name in _OBS_TITLES:
        return _OBS_TITLES[name]
    if ":" in name:
        group, _, what = name.rpartition(":")
        return f"{group}: {what}"
    return name.replace("_", " ")


def observable_unit(name: str) -> str:
    return "sites" if ":" in name else "molecules"


def metric_label(name: str) -> str:
    """Axis label of a metric, with its unit."""
    if name.endswith("integral_ms"):
        return name[:-len("_ms")].replace("_", " ") + " (site·ms)"
    if name.endswith("_ms"):
        return name[:-3].replace("_", " ") + " (ms)"
    if name.endswith("_M"):
        return name[:-2].replace("_", " ") + " (M)"
    if name.startswith("fraction_"):
        return name.replace("_", " ")
    if name == "binding_events":
        return "binding events (count)"
    return name.replace("_", " ") + (" (sites)" if ":" in name else " (molecules)")


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


def plot_timecourse(source, observables=None, conditions=None, center: str = "median",
                    inner=("q25", "q75"), outer=("q5", "q95"), ncols: int = 2, time_range=None,
                    panel_size=(3.4, 2.3)) -> Figure:
    """Time courses per condition: a central line with quantile bands, one panel per observable.

    Parameters
    ----------
    source : EnsembleResult or DataFrame
        A result or its ``timecourse`` table.
    observables : list of str, optional
        Panels to draw (default: every observable in the table, at most 6).
    conditions : list of str, optional
        Conditions to draw (default: all, in table order).
    center : ``"median"`` or ``"mean"``
        The line. Without stored quantiles the line is the mean and the band ± 1 sd.
    inner, outer : pair of column names or None
        Quantile bands (defaults: 25–75 % darker, 5–95 % lighter).
    """
    tc = _tc_of(source)
    if observables is None:
        observables = default_plot_observables(tc)
    if conditions is None:
        conditions = list(dict.fromkeys(tc["condition"]))
    missing = [o for o in observables if o not in set(tc["observable"])]
    if missing:
        raise KeyError(f"observable(s) {missing} not in the time course; available: {sorted(set(tc['observable']))}")
    has_q = center in tc.columns and tc[center].notna().any()
    nrows, ncols = _layout(len(observables), ncols)
    with _style():
        fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + 0.5), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        cols = condition_colors(tc, conditions)
        if len(conditions) > 4:        # many conditions: the outer band would bury the lines
            outer = None
        for ax, obs in zip(axes, observables):
            sub = tc[tc["observable"] == obs]
            for color, cond in zip(cols, conditions):
                d = sub[sub["condition"] == cond].sort_values("time_ms")
                if d.empty:
                    continue
                t = d["time_ms"].to_numpy()
                if has_q:
                    line = d[center].to_numpy(float)
                    for band, alpha in ((outer, 0.13), (inner, 0.3)):
                        if band and all(b in d.columns for b in band):
                            ax.fill_between(t, d[band[0]].to_numpy(float), d[band[1]].to_numpy(float),
                                            color=color, alpha=alpha, linewidth=0)
                else:
                    line = d["mean"].to_numpy(float)
                    sd = d["sd"].to_numpy(float)
                    ax.fill_between(t, line - sd, line + sd, color=color, alpha=0.25, linewidth=0)
                ax.plot(t, line, color=color, label=cond)
            ax.set_title(observable_title(obs))
            ax.set_xlabel("time (ms)")
            ax.set_ylabel(observable_unit(obs))
            if time_range is not None:
                ax.set_xlim(*time_range)
            ax.set_ylim(bottom=min(0, ax.get_ylim()[0]))
        for ax in axes[len(observables):]:
            ax.set_visible(False)
        handles, labels = axes[0].get_legend_handles_labels()
        if has_q:
            what = f"line: {center}"
            if inner:
                what += f"; bands: {inner[0][1:]}–{inner[1][1:]} %"
            if outer:
                what += f" and {outer[0][1:]}–{outer[1][1:]} %"
        else:
            what = "line: mean; band: ± 1 sd"
        n = tc.groupby("condition", sort=False)["n"].max()
        counts = [int(n[c]) for c in conditions if c in n.index]
        runs = f"{counts[0]} per condition" if len(set(counts)) == 1 else ", ".join(map(str, counts))
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), frameon=False,
                   title=f"{what} of runs (n = {runs})", title_fontsize=8)
    return fig


def default_plot_observables(timecourse: pd.DataFrame, limit: int = 6) -> list:
    """The observables of a time-course table that change (over time or between conditions), at
    most ``limit``, in table order."""
    varying = timecourse.groupby("observable", sort=False)["mean"].agg(lambda s: s.max() > s.min())
    return [o for o, v in varying.items() if v][:limit]


def _shared_edges(samples, max_bins=150):
    """Bin edges shared by all samples: integer-aligned for small integer ranges, else the finest
    Freedman–Diaconis ('auto') width of any sample over the joint range. None when that would need
    more than ``max_bins`` bins (samples far apart): each sample then gets its own bins."""
    x_all = np.concatenate(samples)
    lo, hi = x_all.min(), x_all.max()
    if hi == lo:
        return np.array([lo - 0.5, hi + 0.5])
    if np.all(x_all == np.round(x_all)) and hi - lo <= 60:
        return np.arange(lo - 0.5, hi + 1.5)
    widths = []
    for x in samples:
        if len(x) > 1 and x.max() > x.min():
            e = np.histogram_bin_edges(x, bins="auto")
            widths.append(e[1] - e[0])
    width = min(widths) if widths else (hi - lo) / 10
    n = math.ceil((hi - lo) / width)
    if n > max_bins:
        return None
    return np.linspace(lo, hi, max(n, 1) + 1)


def plot_histograms(source, metrics_columns=None, by: str = "condition", ncols: int = 3, density=None,
                    panel_size=(2.6, 2.1)) -> Figure:
    """Histograms of per-run metrics, one panel per metric, conditions overlaid. Bins are shared
    (:func:`_shared_edges`) unless the conditions lie too far apart; the dashed line marks each
    condition's mean. ``density`` (default: only when the conditions have different numbers of
    runs) normalises each histogram to unit area; otherwise the axis counts runs."""
    m = _metrics_of(source)
    if metrics_columns is None:
        metrics_columns = default_plot_metrics(m)
    groups = list(dict.fromkeys(m[by]))
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
                x = m.loc[m[by] == g, col].to_numpy(float)
                samples.append(x[np.isfinite(x)])
            if not any(len(x) for x in samples):
                ax.set_title(f"{col}\n(no finite values)")
                continue
            edges = _shared_edges([x for x in samples if len(x)])
            for color, g, x in zip(cols, groups, samples):
                if x.size == 0:
                    continue
                bins = edges if edges is not None else "auto"
                ax.hist(x, bins=bins, density=density, histtype="stepfilled", alpha=0.25, color=color)
                ax.hist(x, bins=bins, density=density, histtype="step", color=color, linewidth=1.1, label=str(g))
                ax.axvline(x.mean(), color=color, linestyle="--", linewidth=0.9)
            ax.set_xlabel(metric_label(col))
            ax.set_ylabel("density" if density else "runs")
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
        for ax in axes[len(metrics_columns):]:
            ax.set_visible(False)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), frameon=False,
                   title="dashed: mean", title_fontsize=8)
    return fig


def default_plot_metrics(metrics: pd.DataFrame, limit: int = 6) -> list:
    """A few informative metrics: those that vary across runs, preferring the key readouts."""
    cols = _stats.metric_columns(metrics)
    preferred = ["peak_free", "clearance_half_time_ms", "fraction_taken_up", "fraction_escaped", "taken_up",
                 "escaped", "fraction_degraded", "free_end"]
    preferred += [c for c in cols if c.endswith(":bound:integral_ms") or c.endswith(":open:peak")]
    varying = [c for c in cols if metrics[c].nunique(dropna=True) > 1]
    out = [c for c in preferred if c in varying]
    out += [c for c in varying if c not in out]
    return out[:limit]


def _format_conc(x: float) -> str:
    from .units import format_concentration as format_dose
    return format_dose(x, digits=3, micro="µ")


def plot_dose_response(source, metric: str, fit=None, dose: str = "dose_M", drug: str | None = None,
                       show_runs: bool = True, figsize=(4.2, 3.2)) -> Figure:
    """Dose–response of ``metric``: per-run values, means with 95 % CIs, the Hill fit and its
    EC50/IC50 with the CI shaded. The control (dose 0) is drawn on a separate axis at the left.

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
            ax.scatter(runs[dose] * jitter, runs[metric], s=4, color="0.6", alpha=0.35, linewidths=0, zorder=1)
        ax.errorbar(pos[dose], pos["mean"], yerr=[pos["mean"] - pos["ci_low"], pos["ci_high"] - pos["mean"]],
                    fmt="o", color="black", markersize=4, capsize=2.5, zorder=3, label="mean ± 95 % CI")
        grid = np.logspace(math.log10(c_lo) - 0.3, math.log10(c_hi) + 0.3, 300)
        ax.plot(grid, fit.predict(grid), color=OKABE_ITO[5], zorder=2, label="Hill fit")
        if np.isfinite(fit.ec50_ci_low) and np.isfinite(fit.ec50_ci_high):
            ax.axvspan(fit.ec50_ci_low, fit.ec50_ci_high, color=OKABE_ITO[5], alpha=0.12, linewidth=0)
        ax.axvline(fit.ec50, color=OKABE_ITO[5], linestyle="--", linewidth=0.9)
        ax.set_xscale("log")
        ax.set_xlim(grid[0], grid[-1])
        ax.set_xlabel(f"{drug + ' ' if drug else ''}concentration (M)")
        text = (f"{fit.kind} = {_format_conc(fit.ec50)}\n"
                f"  ({fit.level:.0%} CI {_format_conc(fit.ec50_ci_low)}–{_format_conc(fit.ec50_ci_high)})\n"
                f"$n_H$ = {fit.hill:.2f} ({fit.hill_ci_low:.2f}–{fit.hill_ci_high:.2f})")
        ax.text(0.98 if fit.kind == "IC50" else 0.02, 0.97, text, transform=ax.transAxes, va="top",
                ha="right" if fit.kind == "IC50" else "left", fontsize=7.5)
        ax.legend(loc="lower left" if fit.kind == "IC50" else "lower right", frameon=False, fontsize=7.5)
        if ax0 is not None:
            if show_runs:
                cr = m[m[dose] == 0]
                ax0.scatter(rng.uniform(-0.15, 0.15, len(cr)), cr[metric], s=4, color="0.6", alpha=0.35,
                            linewidths=0)
            ax0.errorbar([0], ctrl["mean"], yerr=[ctrl["mean"] - ctrl["ci_low"], ctrl["ci_high"] - ctrl["mean"]],
                         fmt="o", color="black", markersize=4, capsize=2.5)
            ax0.set_xlim(-0.5, 0.5)
            ax0.set_xticks([0], ["0"])
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
        fig.suptitle(f"{metric}: {fit.n_points} runs at {fit.n_doses} doses", fontsize=8.5)
    return fig
