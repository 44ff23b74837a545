"""Drug effects on clearance: the absorbing 10 µm sphere against the periodic tissue cell.

The single-varicosity volume presets end at a sphere that absorbs (``geometry.cell = "isolated"``,
the default); ``geometry.cell = "tissue"`` (:mod:`mcsyn.tissue.cell`) puts the same varicosity in
the periodic cell of its tissue's release-site spacing; ``"field_box"``, the tissue field's 30 µm box, holds
one release in a tissue of transporters. For each preset this runs control and a transporter blocker in the
three set-ups (:data:`SETUPS`) and reports the clearance half-time, the fractions taken up,
escaped and degraded by the end of the run, and the drug/control ratio of the half-time, each
with a 95 % confidence interval (normal, 1.96 standard errors; the ratio's by the delta method on
its logarithm)::

    python -m mcsyn.validation.cell_clearance --runs 48

prints the Markdown table of the README's "Clearance in a tissue cell" section.
"""
from __future__ import annotations

import argparse
import math

import numpy as np

# (preset, drug, concentration, overrides of the tissue cell): the dopamine cell's shell (L/2 - R_var
# = 0.86 µm) needs a volume step with σ <= shell/10 (compile's rule), 10 µs instead of 100 µs
CASES = (("serotonergic", "escitalopram", "80%SERT", {}),
         ("dopaminergic_striatal", "cocaine", "80%DAT", {"timing.dt_volume_us": 10.0}))
# the set-ups: the preset's absorbing sphere; the periodic cell of the release-site spacing (every
# neighbour releases in step); a 30 µm periodic box (the tissue fields' box: one release per 30 µm
# cube, the neighbours' transporters all around, the neighbours quiet)
SETUPS = {"isolated 10 µm sphere": {"geometry.cell": "isolated"},
          "tissue cell (L = n^-1/3)": {"geometry.cell": "tissue"},
          "field box (30 µm)": {"geometry.cell": "field_box"}}
DURATION_MS = 2000.0        # long enough for the blocked tissue cell to clear past half
Z95 = 1.96
METRICS = ("clearance_half_time_ms", "fraction_taken_up", "fraction_escaped", "fraction_degraded")


def _mean_ci(x) -> tuple:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    sem = x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else float("nan")
    return float(x.mean()), Z95 * sem, len(x)


def measure(n_runs: int = 48, seed: int = 16, workers: int | None = None, cases=CASES) -> list:
    """One row per (preset, set-up, condition): the means and CI half-widths of :data:`METRICS`,
    and for the drug row the half-time ratio to control with its CI."""
    from ..ensemble import make_conditions, run_ensemble     # here, not at the top: start-up cost
    rows = []
    for preset, drug, conc, cell_overrides in cases:
        for setup, overrides in SETUPS.items():
            extra = cell_overrides if overrides.get("geometry.cell") == "tissue" else {}
            conds = make_conditions(preset, treatments=[{}, {drug: conc}],
                                    **overrides, **extra, **{"timing.duration_ms": DURATION_MS})
            metrics = run_ensemble(conds, n_runs=n_runs, seed=seed, workers=workers, progress=False,
                                   keep_traces=False).metrics
            rows += _rows(preset, setup, metrics, f"{drug} {conc}")
    return rows


def _rows(preset, setup, metrics, drug_label) -> list:
    out, control = [], None
    for name, group in metrics.groupby("condition", sort=False):
        row = {"preset": preset, "setup": setup, "condition": "control" if control is None else drug_label}
        for m in METRICS:
            row[m], row[m + ":ci"], row["n"] = _mean_ci(group[m])
        if control is None:
            control = row
        else:
            mean_d, ci_d = row["clearance_half_time_ms"], row["clearance_half_time_ms:ci"]
            mean_c, ci_c = control["clearance_half_time_ms"], control["clearance_half_time_ms:ci"]
            ratio = mean_d / mean_c
            log_sd = math.hypot(ci_d / Z95 / mean_d, ci_c / Z95 / mean_c)
            row["ratio"], row["ratio_lo"], row["ratio_hi"] = (ratio, ratio * math.exp(-Z95 * log_sd),
                                                              ratio * math.exp(Z95 * log_sd))
        out.append(row)
    return out


def markdown(rows) -> str:
    head = ("| preset | set-up | condition | t½ (ms) | taken up | escaped | degraded | t½ drug/control |\n"
            "|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        def pm(m, scale=1.0, digits=3):
            return f"{r[m] * scale:.{digits}g} ± {r[m + ':ci'] * scale:.2g}"
        ratio = f"{r['ratio']:.2f} [{r['ratio_lo']:.2f}, {r['ratio_hi']:.2f}]" if "ratio" in r else ""
        lines.append(f"| {r['preset']} | {r['setup']} | {r['condition']} | {pm('clearance_half_time_ms')} "
                     f"| {pm('fraction_taken_up')} | {pm('fraction_escaped')} | {pm('fraction_degraded')} | {ratio} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=48)
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--workers", type=int, default=None)
    args = p.parse_args(argv)
    print(markdown(measure(args.runs, args.seed, args.workers)))


if __name__ == "__main__":
    main()
