"""The ``mcsyn`` command line (also ``python -m mcsyn``).

::

    mcsyn run CONFIG|PRESET [--drug NAME=CONC ...] [--control] [--runs N] [--seed S] [--workers K]
              [--backend threads|processes] [--scheduler ADDR] --out DIR [--resume | --overwrite]
    mcsyn sweep CONFIG|PRESET --drug NAME (--doses C1,C2,... | --range LOW:HIGH:N) [--metric M]
              [--runs N] ... --out DIR
    mcsyn compare DIR [DIR ...] [--control NAME] [--metric M ...]
    mcsyn summary DIR [--metric M ...]
    mcsyn plot DIR [--format png|svg|pdf] [--observable OBS ...] [--metric M ...] [--bands quantiles|ci]
    mcsyn presets
    mcsyn drugs [NAME [--occupancy PERCENT ...]]
    mcsyn dose DRUG DOSE --preset PRESET|CONFIG [--route R] [--every T] [--doses N] [--at T1,T2,...] [--plot]
    mcsyn demo [--runs N] [--cell field_box|tissue|isolated] [--out DIR]
    mcsyn validate [--quick] [--out DIR] [--workers K]
    mcsyn bench [--repeats N] [--workers K]
    mcsyn electrode fit|simulate|clearance ...   (see mcsyn.cli_electrode)

Concentrations carry their unit: ``25nM``, ``"25 nM"``, ``2.5e-8M`` or an occupancy ``80%SERT``
(a bare number such as ``2.5e-8`` is refused: 25 meant as nM would be 25 M). Exit status: 0
on success, 1 when runs failed (the others are kept), 2 for bad arguments, 130 when interrupted.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

import pandas as pd

from .cli_options import (_Formatter, _add_ensemble_options, _drug, _join_signed_values, _message,
                          _nonnegative_int, _percent, _positive_int)
from .cli_tables import format_table as _fmt_table
from .cli_tables import print_compare as _print_compare
from .cli_tables import print_summary as _print_summary

DEMO_DRUG = "escitalopram"
DEMO_OCCUPANCY = "80%SERT"
DEMO_OCCUPANCY_WORDS = "80% SERT occupancy"
DEMO_PRESET = "serotonergic"
# The demo shows the clearance that the tissue gives, so its varicosity sits in the serotonergic
# field's 30 µm periodic box: in the preset's absorbing 10 µm sphere 70-90 % of the 5-HT counts as
# escaped and the SSRI lengthens the half-time only 1.18x (issue 16; README, "Clearance in a tissue
# cell"). The presets keep the sphere (a field box run costs ~4x an isolated one).
DEMO_CELL = "field_box"
# Escitalopram at 80 % SERT makes the box's half-time 332 ms (control 96.5 ms): in the preset's
# 300 ms the free 5-HT of no SSRI run has halved yet (half-time NaN). 1 s is three SSRI half-times:
# every run crosses half (run-to-run sd ~7 ms) and the free 5-HT left at the end is 16 % of the
# release (control 0.7 %). A run costs ~0.39 s against 0.28 s at 300 ms (measured, one core; the
# placement of the volume sites over the box's 216,000 voxels dominates), so longer buys little.
DEMO_DURATION_MS = 1000.0
# the readouts the demo's tables always show, also where they do not vary (nothing escapes the box)
DEMO_METRICS = ("clearance_half_time_ms", "fraction_taken_up", "fraction_escaped")


def _add_module_commands(sub):
    """The commands that live in modules of their own: ``export``, ``dose``, ``electrode``."""
    from . import cli_dose, cli_electrode, export
    COMMANDS["export"] = export.add_command(sub)
    COMMANDS["dose"] = cli_dose.add_command(sub, check_out=_check_out, execute=_execute, run_kwargs=_run_kwargs,
                                            clamp_settings=_clamp_settings)
    COMMANDS["electrode"] = cli_electrode.add_command(sub)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = argparse.ArgumentParser(prog="mcsyn", formatter_class=_Formatter,
                                     description="Stochastic Monte Carlo simulation of one synapse: ensembles, "
                                                 "statistics, drug comparisons and dose-response.")
    parser.add_argument("--version", action="version", version=f"mcsyn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", formatter_class=_Formatter, help="run an ensemble of one configuration",
                       description="Run N runs of a preset or configuration, with drugs, and save the result.")
    _add_ensemble_options(p)
    p.add_argument("--drug", dest="drugs", type=_drug, action="append", default=[], metavar="NAME=CONC",
                   help="add a drug (repeat for combinations): 25nM, 2.5e-8M or 80%%SERT (occupancy)")
    p.add_argument("--control", action="store_true",
                   help="also run the drug-free control, as a second condition in the same result")

    p = sub.add_parser("sweep", formatter_class=_Formatter, help="dose-response of one drug, with a Hill fit",
                       description="Run the control and a series of concentrations of one drug; fit a Hill curve.")
    _add_ensemble_options(p)
    p.add_argument("--drug", required=True, metavar="NAME", help="the drug to sweep")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--doses", metavar="C1,C2,...", help="concentrations (e.g. 1nM,10nM,100nM or 50%%SERT,80%%SERT)")
    g.add_argument("--range", dest="dose_range", metavar="LOW:HIGH:N", help="N log-spaced concentrations")
    p.add_argument("--metric", dest="metrics", action="append", default=None,
                   help="metric(s) to fit (default: fraction_taken_up)")

    p = sub.add_parser("compare", formatter_class=_Formatter, help="compare conditions against a control",
                       description="Fold change with CI, Hedges' g, Cliff's delta, Mann-Whitney U and KS p-values.")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="result directories")
    p.add_argument("--control", default=None, help="control condition (default: 'control', else the first)")
    _add_table_options(p)

    p = sub.add_parser("summary", formatter_class=_Formatter, help="summary statistics of a result",
                       description="Per condition and metric: mean, sd, sem, CV, median, IQR and 95% CI.")
    p.add_argument("dir", metavar="DIR")
    _add_table_options(p)

    _add_plot_command(sub)
    _add_module_commands(sub)

    sub.add_parser("presets", help="list the built-in presets", description="List the built-in presets.")
    p = sub.add_parser("drugs", formatter_class=_Formatter, help="list the drugs, or show one",
                       description="Without NAME: the drugs in the library. With NAME: its class, mechanism, "
                                   "sources and variants, the Ki at each target, the free concentration that "
                                   "gives each --occupancy, and clinical occupancies where a source gives them.")
    p.add_argument("name", nargs="?", default=None, metavar="NAME", help="a drug (or NAME@VARIANT)")
    p.add_argument("--occupancy", dest="occupancies", type=_percent, action="append", default=None,
                   metavar="PERCENT", help="occupancy to convert to a free concentration (repeat; default: 50 and 80)")

    from . import validation
    p = sub.add_parser("validate", formatter_class=_Formatter, help="run the quantitative validation checks",
                       description="Checks against closed-form results and published data; prints a table, "
                                   "writes CSV and Markdown, exits 1 when a check fails.")
    validation.add_arguments(p)

    p = sub.add_parser("bench", formatter_class=_Formatter, help="measure speed on this machine",
                       description="Molecule-steps per second, runs per second, parallel speed-up and memory.")
    p.add_argument("--repeats", type=_positive_int, default=5, help="repetitions per measurement (median)")
    p.add_argument("--workers", type=_positive_int, default=None, help="threads for the parallel figure")

    _add_demo_command(sub)
    return parser


def _add_demo_command(sub):
    from .tissue.cell import CELLS
    p = sub.add_parser("demo", formatter_class=_Formatter, help="serotonergic synapse: control vs an SSRI",
                       description=f"The serotonergic varicosity in a 30 µm periodic box of its tissue, control vs "
                                   f"{DEMO_DRUG} at 80% SERT occupancy, {DEMO_DURATION_MS:g} ms: runs both, prints "
                                   "the summary and comparison, saves the figures.")
    p.add_argument("--runs", type=_positive_int, default=100, help="runs per condition")
    p.add_argument("--cell", choices=CELLS, default=DEMO_CELL,
                   help="where the varicosity sits (geometry.cell), for the same duration: the tissue's 30 µm "
                        "periodic box; the periodic cell of its release-site spacing (every neighbour releasing in "
                        "step); or the absorbing 10 µm sphere of the presets, where most of the 5-HT escapes")
    p.add_argument("--seed", type=_nonnegative_int, default=0)
    p.add_argument("--workers", type=_positive_int, default=None)
    p.add_argument("--out", default=None, metavar="DIR",
                   help="result directory (default: mcsyn-demo, or mcsyn-demo-2, -3, ... if that exists)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true")
    g.add_argument("--overwrite", action="store_true")
    g2 = p.add_mutually_exclusive_group()
    g2.add_argument("--progress", dest="progress", action="store_true", default=None)
    g2.add_argument("--no-progress", dest="progress", action="store_false")


def _add_plot_command(sub):
    p = sub.add_parser("plot", formatter_class=_Formatter, help="draw the figures of a result",
                       description="Time courses with quantile bands, metric histograms, the dose-response fit, "
                                   "and for a result recorded under --clamp the mean current with its band and "
                                   "the peak-current histogram (currents.png).")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--format", choices=("png", "svg", "pdf"), default="png")
    p.add_argument("--to", dest="plot_dir", default=None, metavar="FOLDER", help="where to write (default DIR/plots)")
    p.add_argument("--observable", dest="observables", action="append", default=None, metavar="NAME",
                   help="time-course panel (repeat; default: free transmitter, each site group, fates)")
    p.add_argument("--metric", dest="metrics", action="append", default=None, metavar="NAME",
                   help="histogram panel (repeat; default: clearance, uptake and occupancy readouts)")
    p.add_argument("--condition", dest="conditions", action="append", default=None, metavar="NAME",
                   help="condition to draw (repeat; default: all)")
    p.add_argument("--bands", choices=("quantiles", "ci"), default="quantiles",
                   help="time-course bands: the stored quantiles of runs around the median, or the 95%% "
                        "confidence band of the mean")


def _add_table_options(p):
    p.add_argument("--metric", dest="metrics", action="append", default=None, metavar="NAME",
                   help="metrics to show (repeat; default: the key readouts; 'all' for every metric)")
    p.add_argument("--ci", choices=("analytic", "bootstrap"), default="analytic", help="confidence intervals")
    p.add_argument("--csv", default=None, metavar="FILE", help="also write the full table to FILE")


# ======================================================================================================
# commands

class _UsageError(Exception):
    """Bad input found after parsing (reported argparse-style, exit status 2)."""


def _check_out(args):
    from .storage import ResultDir
    rd = ResultDir(args.out)
    if rd.path.exists() and not rd.path.is_dir():
        raise _UsageError(f"--out {args.out}: exists and is not a directory")
    if rd.exists_nonempty() and not (args.resume or args.overwrite):
        raise _UsageError(f"--out {args.out}: the directory exists and is not empty; choose another, "
                          "add --resume to finish it or --overwrite to replace it")
    if args.overwrite and rd.exists_nonempty() and not rd.is_result():
        raise _UsageError(f"--out {args.out}: refusing to overwrite, it is not an mcsyn result directory")


def _clamp_settings(args) -> dict:
    """--clamp/--mg as the [clamp] section's dotted keys."""
    if args.mg is not None and args.clamp is None:
        raise _UsageError("--mg sets the clamp's external [Mg2+]: it needs --clamp (the holding potential)")
    out = {}
    if args.clamp is not None:
        out["clamp.holding_potential_mV"] = args.clamp
    if args.mg is not None:
        out["clamp.external_mg_mM"] = args.mg
    return out


def _conditions(args, treatments):
    from .ensemble import make_conditions
    clamp = _clamp_settings(args)
    keys = [k for k, _ in args.settings] + list(clamp)
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise _UsageError(f"{', '.join(twice)}: given twice (with --set, or with --set and --clamp/--mg)")
    overrides = dict(args.settings) | clamp
    try:
        return make_conditions(args.target, treatments=treatments, mode=args.mode, **overrides)
    except (ValueError, KeyError, TypeError) as exc:
        raise _UsageError(_message(exc)) from None


def _run_kwargs(args):
    return dict(n_runs=args.runs, seed=args.seed, workers=args.workers, backend=args.backend,
                scheduler=args.scheduler, batch_size=args.batch_size, out=args.out, resume=args.resume,
                overwrite=args.overwrite, observables=args.observables, quantiles=args.quantiles,
                time_points=args.time_points, keep_traces=not args.no_traces, progress=args.progress,
                max_steps=args.max_steps)


def _execute(conditions, kwargs):
    """Run an ensemble; report failures and interruptions. Returns (result or None, exit status)."""
    from .ensemble import EnsembleInterrupted, RunFailures, run_ensemble
    try:
        return run_ensemble(conditions, **kwargs), 0
    except EnsembleInterrupted as exc:
        print(f"mcsyn: {exc}", file=sys.stderr)
        return None, 130
    except RunFailures as exc:
        print(f"mcsyn: {exc}", file=sys.stderr)
        return exc.result, 1


def cmd_run(args):
    _check_out(args)
    treat = dict(args.drugs)
    if len(treat) != len(args.drugs):
        raise _UsageError("a drug is given twice with --drug")
    if args.control and not treat:
        raise _UsageError("--control needs at least one --drug (the control is the drug-free condition)")
    treatments = ([{}] if args.control else []) + [treat] if (treat or args.control) else None
    conds = _conditions(args, treatments)
    result, status = _execute(conds, _run_kwargs(args))
    if result is not None:
        print(f"{len(result.metrics)} runs of {len(conds)} condition(s) saved in {result.path}")
        _print_summary(result.metrics, None)
        if len(conds) > 1:
            _print_compare(result.metrics, result.control, None)
    return status


def _parse_doses(args):
    from .drugs import parse_concentration
    from .ensemble import log_doses
    try:
        if args.doses is not None:
            items = [x.strip() for x in args.doses.split(",") if x.strip()]
            if not items:
                raise ValueError("--doses is empty")
            return [parse_concentration(args.drug, x, field=f"--doses {x}") for x in items]
        parts = args.dose_range.split(":")
        if len(parts) != 3:
            raise ValueError(f"--range {args.dose_range!r} is not LOW:HIGH:N (e.g. 1nM:10uM:9)")
        lo = parse_concentration(args.drug, parts[0], field="--range LOW")
        hi = parse_concentration(args.drug, parts[1], field="--range HIGH")
        try:
            n = int(parts[2])
        except ValueError:
            raise ValueError(f"--range N = {parts[2]!r} is not an integer") from None
        return list(log_doses(lo, hi, n))
    except (ValueError, KeyError) as exc:
        raise _UsageError(_message(exc)) from None


def cmd_sweep(args):
    from .ensemble import dose_series
    _check_out(args)
    doses = _parse_doses(args)
    if len([d for d in doses if d > 0]) < 3:
        raise _UsageError("a dose-response needs at least 3 concentrations > 0 (plus the control)")
    conds = _conditions(args, dose_series(args.drug, doses))
    result, status = _execute(conds, _run_kwargs(args))
    if result is None:
        return status
    print(f"{len(result.metrics)} runs at {len(conds)} doses saved in {result.path}")
    metrics = args.metrics or ["fraction_taken_up"]
    _fit_and_plot_doses(result, metrics, _plots_folder(result.path), "png")
    return status


def _fit_and_plot_doses(result, metrics, folder, fmt):
    from . import plots
    from .stats import metric_columns
    rows = []
    available = metric_columns(result.metrics)
    for metric in metrics:
        if metric not in available:
            raise _UsageError(f"--metric {metric!r} is not a metric of this result; metrics: {', '.join(available)}")
        try:
            fit, table = result.dose_response(metric)
        except (RuntimeError, ValueError) as exc:
            print(f"mcsyn: no Hill fit for {metric}: {exc}", file=sys.stderr)
            continue
        rows.append(fit.to_dict())
        print(f"\nDose-response of {metric}:")
        shown = table.copy()
        shown.insert(0, "dose", [_dose(d) if d > 0 else "control" for d in shown["dose_M"]])
        print(_fmt_table(shown))
        path = plots.save_figure(plots.plot_dose_response(result, metric, fit=fit),
                                 folder / f"dose_response_{_safe(metric)}.{fmt}")
        print(f"{fit.kind} = {_dose(fit.ec50)} ({fit.ec50:.4g} M; {fit.level:.0%} CI {_dose(fit.ec50_ci_low)} to "
              f"{_dose(fit.ec50_ci_high)}), "
              f"Hill coefficient {fit.hill:.3g} ({fit.hill_ci_low:.3g}-{fit.hill_ci_high:.3g}); {fit.method}")
        print(f"plot: {path}")
    if rows and result.path is not None:
        pd.DataFrame(rows).to_csv(Path(result.path) / "hill_fits.csv", index=False)


def _dose(molar: float) -> str:
    from .labels import format_dose
    return format_dose(molar)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _load(path):
    from .storage import load_result
    try:
        return load_result(path)
    except (FileNotFoundError, ValueError) as exc:
        raise _UsageError(str(exc)) from None


def _plots_folder(result_dir) -> Path:
    """DIR/plots, refused if it is a symbolic link (figures are written only inside the result)."""
    from .storage import ResultDir
    return ResultDir(result_dir).plots_folder()


def cmd_summary(args):
    result = _load(args.dir)
    _print_summary(result.metrics, args.metrics, args.ci, args.csv)
    if len(result.condition_names) > 1:
        _print_compare(result.metrics, result.control, args.metrics, args.ci)
    if not result.failures.empty:
        print(f"\n{len(result.failures)} run(s) failed; see {Path(args.dir) / 'failures.parquet'}")
    return 0


def cmd_compare(args):
    frames = []
    for d in args.dirs:
        frames.append((d, _load(d).metrics))
    names = [n for _, m in frames for n in dict.fromkeys(m["condition"])]
    if len(set(names)) != len(names):   # same condition name in several results: prefix the folder
        renamed = []
        for d, m in frames:
            m = m.copy()
            m["condition"] = Path(d).name + ": " + m["condition"].astype(str)
            renamed.append((d, m))
        frames = renamed
    metrics = pd.concat([m for _, m in frames], ignore_index=True)
    conds = list(dict.fromkeys(metrics["condition"]))
    if len(conds) < 2:
        raise _UsageError("compare needs at least two conditions (give several result directories)")
    control = args.control
    if control is None:
        control = next((c for c in conds if c == "control" or c.endswith(": control")), conds[0])
    elif control not in conds:
        raise _UsageError(f"--control {control!r} is not a condition; conditions: {conds}")
    _print_compare(metrics, control, args.metrics, args.ci, args.csv)
    return 0


def cmd_plot(args):
    from . import current_plots, plots
    result = _load(args.dir)
    folder = Path(args.plot_dir) if args.plot_dir else _plots_folder(args.dir)
    written = []
    try:
        written.append(plots.save_figure(
            plots.plot_timecourse(result, observables=args.observables, conditions=args.conditions,
                                  bands=args.bands),
            folder / f"timecourse.{args.format}"))
        m = result.metrics if not args.conditions else result.metrics[result.metrics["condition"].isin(args.conditions)]
        columns = args.metrics or plots.default_plot_metrics(m)
        if columns:
            written.append(plots.save_figure(plots.plot_histograms(m, metrics_columns=columns),
                                             folder / f"histograms.{args.format}"))
        else:
            print("histograms: none drawn, no metric varies across runs (one run per condition?)")
        if current_plots.has_currents(result):
            written.append(plots.save_figure(current_plots.plot_currents(result, conditions=args.conditions),
                                             folder / f"currents.{args.format}"))
    except KeyError as exc:
        raise _UsageError(_message(exc)) from None
    for p in written:
        print(f"plot: {p}")
    if "dose_M" in result.metrics.columns and result.metrics["dose_M"].nunique() >= 4:
        _fit_and_plot_doses(result, args.metrics or ["fraction_taken_up"], folder, args.format)
    return 0


def cmd_presets(args):
    from . import presets
    from .simulate import site_totals
    for name in presets.names():
        desc = presets.spec(name).get("description", "")
        sites = ", ".join(f"{label} {n:,}" for label, n in site_totals(presets.build(name)).items())
        print(f"{name}\n{_wrap(desc, '    ')}\n    sites per run: {sites}")
    return 0


def cmd_drugs(args):
    from . import drug_sheet
    if args.name is None:
        if args.occupancies:
            raise _UsageError("--occupancy needs a drug NAME (e.g. mcsyn drugs escitalopram --occupancy 80)")
        print(drug_sheet.drug_list())
        return 0
    try:
        print(drug_sheet.describe(args.name, args.occupancies or (50.0, 80.0)))
    except (ValueError, KeyError) as exc:
        raise _UsageError(_message(exc)) from None
    return 0


def _wrap(text: str, indent: str, width: int = 100) -> str:
    import textwrap
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent + "  ")


def _fresh_demo_folder(base="mcsyn-demo"):
    # the demo never overwrites: a second run writes next to the first one
    candidate, k = Path(base), 1
    while candidate.exists():
        k += 1
        candidate = Path(f"{base}-{k}")
    return str(candidate)


def demo_conditions(cell: str = DEMO_CELL, duration_ms: float = DEMO_DURATION_MS) -> list:
    """The demo's two conditions: the serotonergic varicosity in ``geometry.cell = cell`` for
    ``duration_ms``, drug-free and with :data:`DEMO_DRUG` at :data:`DEMO_OCCUPANCY`."""
    from .drugs import parse_concentration
    from .ensemble import make_conditions
    conc = parse_concentration(DEMO_DRUG, DEMO_OCCUPANCY)
    return make_conditions(DEMO_PRESET, treatments=[{}, {DEMO_DRUG: conc}],
                           **{"geometry.cell": cell, "timing.duration_ms": duration_ms})


def _demo_setup(cell: str, model) -> str:
    """Where the demo's varicosity sits, in words."""
    g = model.geometry
    if cell == "isolated":
        return f"in an absorbing {g.domain_radius_um:g} µm sphere (the preset's boundary)"
    if cell == "tissue":
        return (f"in the {g.box_side_um:.3g} µm periodic cell of its release-site spacing "
                "(every neighbour releasing in step)")
    return f"in a {g.box_side_um:g} µm periodic tissue box"


def cmd_demo(args):
    from . import plots
    from .cli_tables import choose_metrics
    if args.out is None:
        args.out = "mcsyn-demo" if (args.resume or args.overwrite) else _fresh_demo_folder()
    _check_out(args)
    conds = demo_conditions(args.cell)
    model = conds[0].model
    print(f"mcsyn demo: serotonergic varicosity {_demo_setup(args.cell, model)}, "
          f"{model.timing.duration_ms:g} ms; control vs {conds[1].name} ({DEMO_OCCUPANCY_WORDS}), "
          f"{args.runs} runs each")
    result, status = _execute(conds, dict(n_runs=args.runs, seed=args.seed, workers=args.workers, out=args.out,
                                          resume=args.resume, overwrite=args.overwrite, progress=args.progress))
    if result is None:
        return status
    shown = list(dict.fromkeys([*DEMO_METRICS, *choose_metrics(result.metrics, None)]))
    _print_summary(result.metrics, shown)
    # fold changes only of what varies: the fraction escaped, 0 in every run of a box, has none
    _print_compare(result.metrics, "control", [m for m in shown if result.metrics[m].nunique(dropna=True) > 1])
    folder = _plots_folder(result.path)
    p1 = plots.save_figure(plots.plot_timecourse(result), folder / "timecourse.png")
    p2 = plots.save_figure(plots.plot_histograms(result), folder / "histograms.png")
    print(f"\nresult: {result.path}\nplots: {p1}\n       {p2}")
    return status


def cmd_validate(args):
    from .validation import validate_command
    return validate_command(args)


def cmd_bench(args):
    from .bench import bench_command
    return bench_command(args)


COMMANDS = {"run": cmd_run, "sweep": cmd_sweep, "compare": cmd_compare, "summary": cmd_summary, "plot": cmd_plot,
            "presets": cmd_presets, "drugs": cmd_drugs, "demo": cmd_demo, "validate": cmd_validate,
            "bench": cmd_bench}


def _honour_sigint():
    """A job a shell starts in the background (``mcsyn run … &`` in a script) inherits SIGINT
    ignored; Ctrl-C or ``kill -INT`` must still stop it the way it stops a foreground job (finished
    runs saved, exit status 130). Returns the handler to put back, or None."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return signal.signal(signal.SIGINT, signal.default_int_handler)
    return None


def main(argv=None) -> int:
    """Entry point of the ``mcsyn`` command. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(_join_signed_values(sys.argv[1:] if argv is None else list(argv)))
    ignored_sigint = _honour_sigint()
    try:
        return COMMANDS[args.command](args)
    except (_UsageError, ValueError, FileExistsError, FileNotFoundError) as exc:
        # bad input found after parsing (a model field, an observable, a resume that does not
        # match): reported like argparse's own errors, exit status 2
        sub = parser._subparsers._group_actions[0].choices[args.command]
        sub.error(_message(exc))
    except KeyboardInterrupt:
        print("mcsyn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `mcsyn drugs | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:   # a full disk, no permission, a read-only file system: no traceback
        print(f"mcsyn {args.command}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if ignored_sigint is not None:
            signal.signal(signal.SIGINT, ignored_sigint)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
