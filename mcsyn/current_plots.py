"""The voltage-clamp figure of a result: the mean current with its confidence band, and the
distribution of the peak current across runs.

A result recorded under a clamp (``mcsyn run ... --clamp -70mV``) stores the ``current_pA`` time
course (and ``<group>:current_pA`` per ligand-gated group) and the per-run metric
``current:peak_pA``; :func:`plot_currents` draws both as one two-panel figure, which ``mcsyn
plot`` writes as ``currents.<format>``. The drawing conventions are those of :mod:`mcsyn.plots`
(Okabe–Ito colours, a column-width style, the legend and captions outside the axes) and of
:func:`mcsyn.electrophysiology.plot_current` (the clamp conditions above the axes, inward
currents negative).
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .electrophysiology import VoltageClamp, _clamp_text
from .errors import ModelError
from .labels import condition_labels
from .plots import _shared_edges, _style, condition_colors, colors

TOTAL = "current_pA"
PEAK = "current:peak_pA"


def has_currents(source) -> bool:
    """Whether a result (or its time-course table) holds voltage-clamp currents."""
    tc = getattr(source, "timecourse", source)
    return TOTAL in set(tc["observable"])


def clamps_of(result) -> dict:
    """``{condition: VoltageClamp}`` from a result's configuration (conditions without a clamp, or
    a result without its configuration, are left out)."""
    out = {}
    for cond in (getattr(result, "config", None) or {}).get("conditions", []):
        section = (cond.get("config") or {}).get("clamp")
        if isinstance(section, dict):
            try:
                out[cond["name"]] = VoltageClamp(**section)
            except (ModelError, TypeError):
                continue          # a hand-edited configuration: the figure goes without the line
    return out


def _caption(clamps: dict, conditions: list, counts: list, level: float) -> list:
    shown = {clamps.get(c) for c in conditions}
    lines = [_clamp_text(shown.pop())] if len(shown) == 1 and None not in shown else []
    runs = f"{counts[0]} runs" if len(set(counts)) == 1 else "runs " + ", ".join(map(str, counts))
    runs += " per condition" if len(conditions) > 1 else ""
    lines.append(f"A: mean current ({runs}), band {100 * level:g} % CI of the mean; "
                 f"B: peak of each run's total current, dashed: mean")
    return lines


def _mean_panel(ax, tc, conditions, cols, names, level):
    from scipy import stats      # scipy.stats: start-up cost, load on use
    single = len(conditions) == 1
    groups = [o for o in dict.fromkeys(tc["observable"]) if o.endswith(":current_pA")] if single else []
    traces = [(cond, TOTAL, color) for cond, color in zip(conditions, cols)]
    if single and len(groups) > 1:     # one condition: its groups in colour, the total dashed black
        group_cols = colors(len(groups) + 1)[1:]
        traces = [(conditions[0], g, c) for g, c in zip(groups, group_cols)] + [(conditions[0], TOTAL, "black")]
    for cond, obs, color in traces:
        d = tc[(tc["condition"] == cond) & (tc["observable"] == obs)].sort_values("time_ms")
        t, mean = d["time_ms"].to_numpy(float), d["mean"].to_numpy(float)
        n = d["n"].to_numpy(float)
        half = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)) * d["sem"].to_numpy(float)
        dashed = single and obs == TOTAL and len(groups) > 1
        label = (obs[:-len(":current_pA")] if obs != TOTAL else "total") if single and len(groups) > 1 else names[cond]
        if np.isfinite(half).any() and (n > 1).all():
            ax.fill_between(t, mean - half, mean + half, color="0.55" if dashed else color,
                            alpha=0.2 if dashed else 0.3, linewidth=0, zorder=2)
        ax.plot(t, mean, color=color, label=label, zorder=4 if dashed else 3,
                **({"ls": (0, (4, 2)), "lw": 1.1} if dashed else {"lw": 1.3}))
    ax.axhline(0.0, color="0.6", lw=0.6, zorder=1)
    ax.set_xlim(tc["time_ms"].min(), tc["time_ms"].max())
    ax.set_xlabel("Time (ms)")
    ax.set_ylabel("Current (pA)")
    ax.set_title("A   Mean current", loc="left")


def peak_histograms(metrics, conditions) -> dict:
    """``{condition: (counts, edges_pA)}`` of each run's peak current (``current:peak_pA``), with
    edges shared by all conditions (:func:`mcsyn.plots._shared_edges`: the finest
    Freedman–Diaconis width over the joint range) unless they lie too far apart."""
    samples = {}
    for c in conditions:
        x = metrics.loc[metrics["condition"] == c, PEAK].to_numpy(float)
        samples[c] = x[np.isfinite(x)]
    filled = [x for x in samples.values() if len(x)]
    edges = _shared_edges(filled) if filled else None
    out = {}
    for c, x in samples.items():
        if len(x):
            counts, e = np.histogram(x, bins=edges if edges is not None else "auto")
            out[c] = (counts, e)
    return out


def _histogram_panel(ax, m, conditions, cols, names):
    hists = peak_histograms(m, conditions)
    density = len({int(counts.sum()) for counts, _ in hists.values()}) > 1
    for color, cond in zip(cols, conditions):
        if cond not in hists:
            continue
        counts, edges = hists[cond]
        y = counts / (counts.sum() * np.diff(edges)) if density else counts
        ax.stairs(y, edges, fill=True, alpha=0.25, color=color)
        ax.stairs(y, edges, color=color, linewidth=1.1, label=names[cond])
        x = m.loc[m["condition"] == cond, PEAK].to_numpy(float)
        ax.axvline(np.nanmean(x), color=color, linestyle="--", linewidth=0.9)
    ax.set_xlabel("Peak current (pA)")
    ax.set_ylabel("Density (1/pA)" if density else "Runs")
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=not density))
    ax.set_title("B   Amplitude distribution", loc="left")


def plot_currents(source, conditions=None, level: float = 0.95, figsize=(7.0, 2.9)) -> Figure:
    """Two panels: (A) the mean ``current_pA`` of each condition over time with its ``level``
    confidence band of the mean (Student t on the stored standard error; with one condition, each
    ligand-gated group in colour and the total dashed black), and (B) the histogram of each run's
    peak current (``current:peak_pA``, signed: inward currents are negative), bins shared across
    conditions (Freedman–Diaconis width), the dashed lines at the means. The clamp conditions, read
    from the result's configuration, and the run counts are written under the panels.

    ``source`` is an :class:`~mcsyn.ensemble.EnsembleResult` recorded under a clamp. Raises
    KeyError for a result without currents and for unknown conditions."""
    tc, m = source.timecourse, source.metrics
    if not has_currents(source) or PEAK not in m.columns:
        raise KeyError("the result has no voltage-clamp currents: run it with --clamp (e.g. --clamp -70mV)")
    known = list(dict.fromkeys(tc["condition"]))
    conditions = list(conditions) if conditions else known
    missing = [c for c in conditions if c not in known]
    if missing:
        raise KeyError(f"condition(s) {missing} not in the result; conditions: {known}")
    tc = tc[tc["condition"].isin(conditions) & tc["observable"].str.endswith("current_pA")]
    m = m[m["condition"].isin(conditions)]
    names = condition_labels(m, conditions)
    counts = [int(tc.loc[tc["condition"] == c, "n"].max()) for c in conditions]
    with _style():
        fig = Figure(figsize=figsize, layout="constrained")
        ax_mean, ax_hist = fig.subplots(1, 2, width_ratios=[1.25, 1])
        cols = condition_colors(m, conditions)
        _mean_panel(ax_mean, tc, conditions, cols, names, level)
        _histogram_panel(ax_hist, m, conditions, cols, names)
        handles, labels = ax_mean.get_legend_handles_labels()
        if len(conditions) > 1:
            handles, labels = ax_hist.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), frameon=False,
                   title="\n".join(_caption(clamps_of(source), conditions, counts, level)), title_fontsize=7.5)
    return fig
