"""Snapshots of a dose regimen for the engine: "clearance and occupancy 4 h, 24 h and 48 h after
the last dose" as ensemble conditions in one call.

:func:`snapshot_table` gives, at each time after the start of the last dose (or infusion), the
plasma and free brain concentrations of the drug and of each active metabolite the library knows
(:mod:`.models`), and the competitive equilibrium occupancy of every target by all of them
together. :func:`snapshots` turns each row into a :class:`mcsyn.ensemble.Condition` of a preset
or configuration whose drugs are those free brain concentrations (a drug-free control first), for
:func:`mcsyn.ensemble.run_ensemble`. :func:`plot_snapshots` draws occupancy against time since the
first dose with the snapshot times marked.

Occupancy here is at equilibrium with the concentration of the moment because that is what a
condition imposes in the engine's equilibrium mode; the library's fastest dissociation
(koff >= 0.1 /s) lags a concentration that changes over hours by seconds.

Example::

    from mcsyn import pharmacokinetics as pk
    from mcsyn.ensemble import run_ensemble
    conds = pk.snapshots("paroxetine", {"dose": "20 mg", "interval_h": 24, "number": 14, "body_mass_kg": 70,
                                        "pharmacokinetics": "paroxetine@complete_absorption"},
                         hours_after_last_dose=[4, 24, 48], preset="serotonergic")
    result = run_ensemble(conds, n_runs=50)       # conditions: control, 4 h, 24 h, 48 h after the last dose
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ModelError
from ..units import parse_quantity
from .models import concentrations
from .occupancy import LINE_STYLES, _describe, occupancy
from .regimen import Regimen, _has_number, regimen_from_dict

FIELD = "hours_after_last_dose"


DEFAULT_HOURS = (4, 24, 48)


def _arguments(drug_or_regimen, regimen, hours_after_last_dose) -> tuple:
    """(Regimen, times): ``f(regimen, times)`` reads as ``f(regimen, hours_after_last_dose=times)``,
    ``f(drug, fields, times)`` as a drug name with its regimen fields."""
    if isinstance(drug_or_regimen, Regimen) and regimen is not None and not isinstance(regimen, (dict, Regimen)):
        if hours_after_last_dose is not None:
            raise ModelError("regimen", regimen, "give either a Regimen, or a drug name and a table of regimen fields")
        regimen, hours_after_last_dose = None, regimen
    times = DEFAULT_HOURS if hours_after_last_dose is None else hours_after_last_dose
    return as_regimen(drug_or_regimen, regimen), times


def as_regimen(drug_or_regimen, regimen=None) -> Regimen:
    """A :class:`Regimen`, or a drug name with a table of the other regimen fields."""
    if isinstance(drug_or_regimen, Regimen):
        if regimen is not None:
            raise ModelError("regimen", regimen, "give either a Regimen, or a drug name and a table of regimen fields")
        return drug_or_regimen
    if not isinstance(drug_or_regimen, str):
        raise ModelError("drug", drug_or_regimen, "must be a Regimen or the name of a library drug")
    fields = {} if regimen is None else regimen
    if not isinstance(fields, dict):
        raise ModelError("regimen", regimen, "must be a table of regimen fields (dose, interval_h, number, ...)")
    if "drug" in fields and fields["drug"] != drug_or_regimen:
        raise ModelError("regimen.drug", fields["drug"], f"differs from the drug given, {drug_or_regimen!r}")
    return regimen_from_dict({**fields, "drug": drug_or_regimen})


def snapshot_times(regimen: Regimen, hours_after_last_dose) -> tuple[np.ndarray, np.ndarray]:
    """(hours after the start of the last dose, hours since the first dose) of each snapshot.

    A time is a number of hours or a string with its unit (``"4 h"``, ``"2 days"``); a negative
    one is before the last dose and must not be before the first dose."""
    values = [hours_after_last_dose] if isinstance(hours_after_last_dose, (str, int, float)) \
        else list(hours_after_last_dose)
    if not values:
        raise ModelError(FIELD, hours_after_last_dose, "must list at least one time after the last dose (e.g. [4, 24])")
    last = float(regimen.dose_times_h()[-1])
    after = []
    for i, value in enumerate(values):
        field = f"{FIELD}[{i}]"
        if not _has_number(value):
            raise ModelError(field, value, "must be a time with its number (e.g. 4 or '4 h')")
        h = parse_quantity(value, "h", field, allow_negative=True)
        if last + h < regimen.start_h:
            raise ModelError(field, value, f"is {regimen.start_h - last - h:g} h before the first dose (the last "
                                           f"dose starts {last - regimen.start_h:g} h after the first); a snapshot "
                                           f"must be at least {regimen.start_h - last:g} h after the last dose")
        after.append(h)
    after = np.array(after)
    twice = sorted({h for h in after if np.count_nonzero(after == h) > 1})
    if twice:
        raise ModelError(FIELD, hours_after_last_dose, f"lists {', '.join(f'{h:g} h' for h in twice)} twice")
    return after, last + after - regimen.start_h


def _ligands(table: pd.DataFrame) -> list[str]:
    """Species that bind a target (the drug, then metabolites with a library Ki), in table order."""
    return list(dict.fromkeys(table["drug"]))


def snapshot_table(drug_or_regimen, regimen=None, hours_after_last_dose=None, disposition=None,
                   method: str = "closed_form") -> pd.DataFrame:
    """One row per snapshot: ``hours_after_last_dose``, ``time_since_first_dose_h``, then for each
    species ``<species>_plasma_total_M`` (and ``_ng_per_mL``) and ``<species>_brain_free_M``, and
    for each target of the drug ``<target>_occupancy`` (by the drug and its metabolites together,
    competitive equilibrium).

    ``attrs``: ``regimen``, ``species``, ``ligands`` (species that get a drug concentration in a condition),
    ``targets`` and ``metabolites_without_ki``."""
    reg, times = _arguments(drug_or_regimen, regimen, hours_after_last_dose)
    after, since_first = snapshot_times(reg, times)
    absolute = since_first + reg.start_h
    conc = concentrations(reg, absolute, method=method, disposition=disposition)
    occ = occupancy(reg, absolute, mode="equilibrium", method=method, disposition=disposition)
    out = pd.DataFrame({FIELD: after, "time_since_first_dose_h": since_first})
    pk = reg.pk()
    molar_mass = {pk.name: pk.molar_mass_g_per_mol, **{m.name: m.molar_mass_g_per_mol for m in pk.metabolites}}
    for species, sub in conc.groupby("species", sort=False):
        out[f"{species}_plasma_total_M"] = sub["plasma_total_M"].to_numpy()
        # M x g/mol = g/L = 1e6 ng/mL
        out[f"{species}_plasma_total_ng_per_mL"] = 1e6 * molar_mass[species] * sub["plasma_total_M"].to_numpy()
        out[f"{species}_brain_free_M"] = sub["brain_free_M"].to_numpy()
    targets = list(dict.fromkeys(occ["target"]))
    for target in targets:
        rows = occ[occ["target"] == target]
        out[f"{target}_occupancy"] = rows.groupby("time_h", sort=False)["occupancy"].sum().reindex(absolute).to_numpy()
    out.attrs.update(regimen=reg, species=list(dict.fromkeys(conc["species"])), ligands=_ligands(occ), targets=targets,
                     metabolites_without_ki=list(occ.attrs.get("metabolites_without_ki", [])))
    return out


def describe_regimen(reg: Regimen) -> str:
    """``"paroxetine: 20 mg oral every 24 h, 14 doses, 70 kg"``."""
    return _describe(reg).replace("\n", ": ")


def _label(hours: float) -> str:
    """``"4 h after the last dose"``, ``"12 h before the last dose"``, ``"at the last dose"``."""
    if hours == 0:
        return "at the last dose"
    return f"{_short_time(abs(hours))[1:]} {'after' if hours > 0 else 'before'} the last dose"


def _short_time(hours: float) -> str:
    """``"+4 h"``, ``"-12 h"``, ``"+5 min"`` (four significant digits)."""
    if hours != 0 and abs(hours) < 1.0:
        return f"{60 * hours:+.4g} min"
    return f"{hours:+.4g} h"


def _regimen_source(reg: Regimen) -> dict:
    """The regimen as plain values, for the result's configuration."""
    import dataclasses
    return {f.name: getattr(reg, f.name) for f in dataclasses.fields(reg) if getattr(reg, f.name) is not None}


def snapshots(drug_or_regimen, regimen=None, hours_after_last_dose=None, preset="serotonergic", *,
              control: bool = True, mode: str | None = None, adaptation=None, disposition=None,
              table: pd.DataFrame | None = None, **overrides) -> list:
    """Ensemble conditions, one per snapshot time (after a drug-free ``"control"`` when ``control``).

    ``drug_or_regimen`` is a :class:`Regimen` (then ``snapshots(r, [4, 24])`` works too), or a drug
    name with ``regimen`` a table of the other fields (``{"dose": "20 mg", "interval_h": 24,
    "number": 14, "body_mass_kg": 70}``). ``hours_after_last_dose`` defaults to 4, 24 and 48 h. Each
    condition is named ``"4 h after the last dose"``; its drugs are the free brain concentrations
    of the drug (under ``regimen.drug``, with its variant) and of each metabolite the library
    knows, from :func:`snapshot_table` (pass ``table`` to reuse one); its labels are
    ``hours_after_last_dose``, ``time_since_first_dose_h``, ``<species>_M`` and
    ``<target>_occupancy``. ``preset`` is a preset name or a configuration (anything
    :func:`mcsyn.ensemble.make_conditions` takes), with ``mode``, ``adaptation`` and ``overrides``
    passed on."""
    # the ensemble stack is imported here so that the pharmacokinetics alone load without it
    from ..ensemble import make_conditions
    if table is None:
        table = snapshot_table(drug_or_regimen, regimen, hours_after_last_dose, disposition)
    reg = table.attrs["regimen"]
    parent = reg.pk().name
    ligands, targets = table.attrs["ligands"], table.attrs["targets"]
    drug_key = {sp: (reg.drug if sp == parent else sp) for sp in ligands}
    out = []
    if control:
        cond = make_conditions(preset, treatments=[{}], mode=mode, adaptation=adaptation, **overrides)[0]
        cond.labels = {"drug": "control", FIELD: np.nan, "time_since_first_dose_h": np.nan,
                       **{f"{sp}_M": 0.0 for sp in ligands}, **{f"{t}_occupancy": 0.0 for t in targets}}
        out.append(cond)
    for values in table.to_dict("records"):
        drugs = {drug_key[sp]: float(values[f"{sp}_brain_free_M"]) for sp in ligands}
        cond = make_conditions(preset, treatments=[drugs], mode=mode, adaptation=adaptation, **overrides)[0]
        cond.name = _label(float(values[FIELD]))
        cond.labels = {"drug": reg.drug, FIELD: float(values[FIELD]),
                       "time_since_first_dose_h": float(values["time_since_first_dose_h"]),
                       **{f"{sp}_M": drugs[drug_key[sp]] for sp in ligands},
                       **{f"{t}_occupancy": float(values[f"{t}_occupancy"]) for t in targets}}
        cond.source = {**cond.source, "regimen": _regimen_source(reg), FIELD: float(values[FIELD])}
        out.append(cond)
    return out


def _ki_text(ki_M: float) -> str:
    """Ki as pharmacologists write it: nM below 1 µM (``"0.13 nM"``), else µM."""
    return f"{ki_M * 1e9:.3g} nM" if ki_M < 1e-6 else f"{ki_M * 1e6:.3g} µM"


def _time_grid(reg: Regimen, since_first: np.ndarray, n_points: int) -> np.ndarray:
    """Hours since the first dose from 0 past the last snapshot, with the snapshots and doses on it."""
    last = float(reg.dose_times_h()[-1]) - reg.start_h
    end = max(float(since_first.max()), last) * 1.08 + 1e-3 * max(reg.interval_h, 1.0)
    return np.union1d(np.linspace(0.0, end, n_points), np.concatenate([since_first, reg.dose_times_h() - reg.start_h]))


def plot_snapshots(table: pd.DataFrame, n_points: int = 1200, disposition=None):
    """Occupancy (%) of each target by the drug and its metabolites against time since the first
    dose, the snapshot times marked, and the free brain concentrations (nM) in a panel below."""
    from matplotlib.figure import Figure
    from ..plots import OKABE_ITO, _style
    reg = table.attrs["regimen"]
    since_first = table["time_since_first_dose_h"].to_numpy()
    grid = _time_grid(reg, since_first, n_points)
    occ = occupancy(reg, grid + reg.start_h, mode="equilibrium", disposition=disposition)
    conc = concentrations(reg, grid + reg.start_h, disposition=disposition)
    days = grid.max() > 72.0
    scale, unit = (1 / 24.0, "days") if days else (1.0, "h")
    colours = OKABE_ITO[1:] + OKABE_ITO[:1]
    ligands = table.attrs["ligands"]
    with _style():
        fig = Figure(figsize=(3.5, 4.4), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
        for k, target in enumerate(table.attrs["targets"]):
            rows = occ[occ["target"] == target]
            total = rows.groupby("time_h", sort=True)["occupancy"].sum().to_numpy()
            ki = ", ".join(_ki_text(float(r.ki_M)) for r in rows.drop_duplicates("drug").itertuples())
            top.plot(grid * scale, 100 * total, color=colours[k % 8], linestyle=LINE_STYLES[k % 4],
                     label=f"{target} (Ki {ki})")
            top.plot(since_first * scale, 100 * table[f"{target}_occupancy"], "o", color=colours[k % 8], ms=3.5)
        for h, t in zip(table[FIELD], since_first):
            top.axvline(t * scale, color="0.6", lw=0.6, ls=":", zorder=0)
            top.annotate(_short_time(h), (t * scale, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 2),
                         textcoords="offset points", ha="center", va="bottom", fontsize=6.5, color="0.35",
                         rotation=90)
        top.set_ylim(0, 100)
        top.set_ylabel("Occupancy (%)")
        top.legend(frameon=False, loc="center right" if reg.number > 1 else "best", fontsize=7,
                   title="by " + " + ".join(ligands) if len(ligands) > 1 else None, title_fontsize=7)
        top.set_title(_describe(reg), loc="left", pad=30)
        top.annotate("after the\nlast dose", (1.0, 1.0), xycoords="axes fraction", xytext=(2, 2),
                     textcoords="offset points", ha="left", va="bottom", fontsize=6.5, color="0.35")
        for k, (species, sub) in enumerate(conc.groupby("species", sort=False)):
            bottom.plot(grid * scale, 1e9 * sub["brain_free_M"].to_numpy(), color=("0.15", "0.55")[k % 2],
                        linestyle=LINE_STYLES[k % 4], label=species)
        bottom.set_ylabel("Free brain\nconcentration (nM)")
        bottom.set_ylim(bottom=0)
        if conc["species"].nunique() > 1:
            bottom.legend(frameon=False, fontsize=7)
        bottom.set_xlabel(f"Time since first dose ({unit})")
        bottom.set_xlim(0, float(grid.max()) * scale)
        fig.align_ylabels([top, bottom])
    return fig
