"""Text tables of the command line: which metrics a summary shows, and how numbers print
(four significant digits, p-values as ``< 1e-16`` rather than ``0``, site totals on one line)."""
from __future__ import annotations

import math

import numpy as np

SUMMARY_METRICS = ("peak_free", "clearance_half_time_ms", "taken_up", "escaped", "degraded", "free_end",
                   "fraction_taken_up", "fraction_escaped")

# the total current's metrics shown by default when a result was recorded under a clamp
CURRENT_SUMMARY = ("peak_pA", "rise_time_10_90_ms", "decay_tau_ms", "charge_pC")


def choose_metrics(metrics_df, requested):
    """The metrics a table shows: ``requested``, every one for ``["all"]``, or (None) the key
    readouts that vary across runs (all of them when there is one run per condition)."""
    from .stats import metric_columns
    available = metric_columns(metrics_df)
    if requested is None:
        keys = [m for m in SUMMARY_METRICS if m in available]
        keys += [m for m in available if m.endswith(":occupancy_fraction:peak")]
        keys += [m for m in available if m.endswith(":bound:peak") or m.endswith(":open:integral_ms")]
        keys += [m for m in available if m.startswith("current:") and m.split(":")[1] in CURRENT_SUMMARY]
        if metrics_df.groupby("condition").size().max() < 2:
            return keys                 # one run per condition: nothing can vary, show the readouts
        return [m for m in keys if metrics_df[m].nunique(dropna=True) > 1]     # drop what never varies
    if requested == ["all"]:
        return available
    bad = [m for m in requested if m not in available]
    if bad:
        raise ValueError(f"--metric {', '.join(bad)}: not a metric of this result; metrics: {', '.join(available)}")
    return requested


def format_table(df) -> str:
    from .stats import format_p_value

    def fmt(x):
        if isinstance(x, (float, np.floating)):
            if not math.isfinite(x):
                return "nan" if math.isnan(x) else str(x)
            return f"{x:.4g}"
        return str(x)
    formatters = {c: fmt for c in df.columns if df[c].dtype.kind == "f"}
    formatters.update({c: format_p_value for c in df.columns if c.startswith("p_")})
    return df.to_string(index=False, formatters=formatters)


def site_totals_line(metrics_df) -> str | None:
    """``"Sites per run: SERT 361,560, 5-HT1A 25,225 (...)"`` from the ``<group>:sites`` metrics."""
    parts = []
    for col in metrics_df.columns:
        if col.endswith(":sites"):
            values = sorted(set(int(v) for v in metrics_df[col].dropna()))
            parts.append(f"{col[:-len(':sites')]} " + " / ".join(f"{v:,}" for v in values))
    return "Sites per run: " + ", ".join(parts) if parts else None


def print_summary(metrics_df, requested, ci="analytic", csv=None):
    from .stats import summarize
    keys = choose_metrics(metrics_df, requested)
    full = summarize(metrics_df, ci=ci, metrics_columns=choose_metrics(metrics_df, ["all"]) if csv else keys)
    if csv:
        full.to_csv(csv, index=False)
    table = full[full["metric"].isin(keys)]
    cols = ["condition", "metric", "n", "mean", "sd", "sem", "cv", "median", "iqr", "ci_low", "ci_high"]
    print(f"\nSummary ({table['ci_method'].iloc[0] if len(table) else ci} CI of the mean):")
    print(format_table(table[cols]))
    line = site_totals_line(metrics_df)
    if line:
        print(line)


def print_compare(metrics_df, control, requested, ci="analytic", csv=None):
    from .stats import compare
    keys = choose_metrics(metrics_df, requested)
    full = compare(metrics_df, control=control, ci=ci,
                   metrics_columns=choose_metrics(metrics_df, ["all"]) if csv else keys)
    if csv:
        full.to_csv(csv, index=False)
    table = full[full["metric"].isin(keys)]
    cols = ["condition", "metric", "mean_control", "mean", "fold_change", "fold_ci_low", "fold_ci_high",
            "hedges_g", "cliffs_delta", "p_mannwhitney", "p_ks"]
    print(f"\nAgainst {control!r} (fold change with {ci} 95% CI; two-sided p-values, not adjusted):")
    print(format_table(table[cols]))
