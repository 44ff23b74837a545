"""``mcsyn dose``: a dose regimen's concentrations and occupancies at chosen times after the last
dose, and an ensemble at each of those times (:func:`mcsyn.pharmacokinetics.snapshots`).

::

    mcsyn dose DRUG DOSE --preset PRESET|CONFIG [--route oral|iv_bolus|iv_infusion] [--every 24h]
               [--doses N] [--duration 1h] [--at 4h,24h,48h] [--body-mass 70kg] [--pk NAME@VARIANT]
               [--no-control] [--plot] [--format png|svg|pdf] [--runs N] [--seed S] [--out DIR] ...

DOSE is one dose (``20mg``, ``0.3mg/kg``), or the rate of an infusion (``2mg/h``). The command
prints the pharmacokinetic table (plasma and free brain concentration of the drug and its active
metabolites, occupancy of each target by all of them), runs a drug-free control and one condition
per time, and prints the usual summary and comparisons against the control. The run machinery
(result directory checks, run options, failures and interruptions) is :mod:`mcsyn.cli`'s, handed
to :func:`add_command` by the parser that registers this command.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .cli_options import _Formatter, _add_run_options, _message, _positive_int
from .cli_tables import format_table, print_compare, print_summary
from .errors import ModelError

REFERENCE_BODY_MASS = "70 kg"        # ASSUMED adult body mass, as in mcsyn.pharmacokinetics.pet [U]
DEFAULT_TIMES = "4h,24h,48h"
# the option a user typed for each regimen field (an error names both)
OPTION_OF_FIELD = {"regimen.route": "--route", "regimen.dose": "DOSE", "regimen.rate": "DOSE (an infusion rate)",
                   "regimen.interval_h": "--every", "regimen.number": "--doses", "regimen.duration_h": "--duration",
                   "regimen.body_mass_kg": "--body-mass", "regimen.drug": "DRUG", "regimen.pharmacokinetics": "--pk",
                   "hours_after_last_dose": "--at"}


def add_command(sub, *, check_out, execute, run_kwargs, clamp_settings):
    """Register ``mcsyn dose`` on the subparsers ``sub``; returns the command function.

    ``check_out(args)``, ``execute(conditions, kwargs)``, ``run_kwargs(args)`` and
    ``clamp_settings(args)`` are the command line's own run helpers (:mod:`mcsyn.cli`)."""
    p = sub.add_parser("dose", formatter_class=_Formatter,
                       help="a dose regimen: PK table, then ensembles at times after it",
                       description="Concentrations and occupancy at times after the last dose of a regimen "
                                   "(one- or two-compartment pharmacokinetics from the library), then an ensemble "
                                   "of the preset at each time, with the free brain concentrations as the drug, "
                                   "against a drug-free control. --out defaults to mcsyn-dose-DRUG (-2, -3, ... "
                                   "if that exists).")
    p.add_argument("drug", metavar="DRUG", help="a drug with pharmacokinetic data (see 'mcsyn drugs')")
    p.add_argument("dose", metavar="DOSE", help="one dose (20mg, 0.3mg/kg) or, for --route iv_infusion, a rate (2mg/h)")
    p.add_argument("--preset", required=True, metavar="PRESET|CONFIG",
                   help="the synapse: a preset name (see 'mcsyn presets') or a TOML configuration")
    p.add_argument("--route", default="oral", help="oral, iv_bolus or iv_infusion")
    p.add_argument("--every", default="24h", metavar="TIME", help="interval between doses (e.g. 24h, 12h, 1day)")
    p.add_argument("--doses", type=_positive_int, default=1, metavar="N", help="number of doses")
    p.add_argument("--duration", default=None, metavar="TIME", help="duration of each infusion (iv_infusion)")
    p.add_argument("--at", default=DEFAULT_TIMES, metavar="T1,T2,...",
                   help="times after the start of the last dose (negative: before it, not before the first)")
    p.add_argument("--body-mass", default=REFERENCE_BODY_MASS, metavar="MASS", help="body mass (ASSUMED adult)")
    p.add_argument("--pk", default=None, metavar="NAME@VARIANT",
                   help="pharmacokinetic entry (default: the drug's; e.g. paroxetine@complete_absorption)")
    p.add_argument("--no-control", action="store_true", help="no drug-free control condition")
    p.add_argument("--plot", action="store_true", help="also draw occupancy against time (DIR/plots/occupancy.FORMAT)")
    p.add_argument("--format", choices=("png", "svg", "pdf"), default="png", help="figure format")
    _add_run_options(p, out_required=False)

    def command(args):
        return dose_command(args, check_out, execute, run_kwargs, clamp_settings)
    return command


def _named(exc: ModelError) -> ValueError:
    """The error with the option the user typed in front (``--every: regimen.interval_h = ...``)."""
    field = exc.field.split("[")[0]
    option = OPTION_OF_FIELD.get(field)
    text = f"{option}: {exc}" if option else str(exc)
    if field.startswith("pharmacokinetics.") and exc.value is None:
        from .pharmacokinetics.data import variants as pk_variants    # start-up cost, as in dose_command
        base = field.split(".")[1].partition("@")[0]
        variants = pk_variants(base)
        if variants:
            text += "; PK variants: " + ", ".join(f"--pk {base}@{v}" for v in variants)
    return ValueError(text)


def _regimen_fields(args) -> dict:
    fields = {"route": args.route, "interval_h": args.every, "number": args.doses,
              "body_mass_kg": args.body_mass, "pharmacokinetics": args.pk}
    if args.route == "iv_infusion":
        fields.update(rate=args.dose, duration_h=args.duration)
    else:
        if args.duration is not None:
            raise ValueError(f"--duration is only for --route iv_infusion (this regimen is {args.route!r})")
        fields["dose"] = args.dose
    return fields


def _times(text: str) -> list:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise ValueError(f"--at {text!r}: give at least one time after the last dose (e.g. 4h,24h)")
    return items


def _fresh_folder(base: str) -> str:
    # like the demo, a second dose run writes next to the first one instead of refusing
    candidate, k = Path(base), 1
    while candidate.exists():
        k += 1
        candidate = Path(f"{base}-{k}")
    return str(candidate)


def pk_table_text(table) -> str:
    """The pharmacokinetic table as people read it: hours, ng/mL, nM and %."""
    shown = pd.DataFrame({"after last dose": [_hours_text(h) for h in table["hours_after_last_dose"]],
                          "since first dose": [_hours_text(h) for h in table["time_since_first_dose_h"]]})
    for species in table.attrs["species"]:
        shown[f"{species} plasma (ng/mL)"] = table[f"{species}_plasma_total_ng_per_mL"]
        shown[f"{species} free brain (nM)"] = 1e9 * table[f"{species}_brain_free_M"]
    for target in table.attrs["targets"]:
        shown[f"{target} occupancy (%)"] = 100 * table[f"{target}_occupancy"]
    return format_table(shown)


def _hours_text(hours: float) -> str:
    if abs(hours) >= 72:
        return f"{hours:.4g} h ({hours / 24:.3g} d)"
    if hours != 0 and abs(hours) < 1:
        return f"{60 * hours:.3g} min"
    return f"{hours:.4g} h"


def _describe(table) -> str:
    from .pharmacokinetics import describe_regimen     # start-up cost, as in dose_command
    reg = table.attrs["regimen"]
    lines = [describe_regimen(reg), f"pharmacokinetics: {reg.pk().label}"
             + (" (two compartments)" if reg.pk().two_compartment else " (one compartment)")]
    ligands = table.attrs["ligands"]
    if len(ligands) > 1:
        lines.append("occupancy by " + " + ".join(ligands) + " together (competitive, equilibrium)")
    if table.attrs["metabolites_without_ki"]:
        lines.append("not binding (no Ki in the library): " + ", ".join(table.attrs["metabolites_without_ki"]))
    return "\n".join(lines)


def dose_command(args, check_out, execute, run_kwargs, clamp_settings) -> int:
    # imported here so that the other commands (and --help) do not load the pharmacokinetics
    from . import pharmacokinetics as pk
    try:
        table = pk.snapshot_table(args.drug, _regimen_fields(args), _times(args.at))
    except ModelError as exc:
        raise _named(exc) from None
    print(f"mcsyn dose: {_describe(table)}\n")
    print(pk_table_text(table))
    if args.out is None:
        args.out = _fresh_folder(f"mcsyn-dose-{table.attrs['regimen'].pk().name}")
    check_out(args)
    overrides = dict(args.settings)
    for key, value in clamp_settings(args).items():
        if key in overrides:
            raise ValueError(f"{key}: given twice (with --set and with --clamp/--mg)")
        overrides[key] = value
    try:
        conds = pk.snapshots(table=table, drug_or_regimen=table.attrs["regimen"], preset=args.preset,
                             control=not args.no_control, mode=args.mode, **overrides)
    except (KeyError, TypeError) as exc:
        raise ValueError(_message(exc)) from None
    result, status = execute(conds, run_kwargs(args))
    if result is None:
        return status
    folder = Path(result.path)
    table.to_csv(folder / "pharmacokinetics.csv", index=False)
    print(f"\n{len(result.metrics)} runs of {len(conds)} condition(s) saved in {result.path} "
          f"(pharmacokinetics.csv: the table above)")
    print_summary(result.metrics, None)
    if len(conds) > 1:
        print_compare(result.metrics, result.control, None)
    if args.plot:
        from .plots import save_figure
        path = save_figure(pk.plot_snapshots(table), folder / "plots" / f"occupancy.{args.format}")
        print(f"plot: {path}")
    return status
