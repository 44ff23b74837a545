"""Target occupancy over time: equilibrium from the library's Ki, or binding kinetics from its koff.

At equilibrium a competitive ligand i occupies theta_i = (C_i/K_i)/(1 + sum_j C_j/K_j) of a target
(the parent and any metabolite the library knows). Kinetically (one ligand),
d theta/dt = kon C(t) (1 - theta) - koff theta with kon = koff/Ki; after a step to C it relaxes to
C/(C + Ki) with time constant 1/(kon C + koff). C is the free brain concentration of
:mod:`.models`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ModelError
from .models import TINY_SPAN_H, _times, brain_free_function, concentrations
from .regimen import Regimen

MODES = ("auto", "equilibrium", "kinetic")
SECONDS_PER_HOUR = 3600.0


def equilibrium_occupancy(concentrations_M: dict, ki_M: dict) -> dict:
    """Competitive equilibrium: ligand -> theta_i = (C_i/K_i)/(1 + sum_j C_j/K_j) (arrays)."""
    ratios = {name: np.asarray(concentrations_M[name], dtype=float) / ki_M[name] for name in ki_M}
    denominator = 1.0 + sum(ratios.values())
    return {name: r / denominator for name, r in ratios.items()}


def kinetic_occupancy(concentration_M, times_h, kon_per_M_per_s: float, koff_per_s: float,
                      breakpoints_h=(), initial: float = 0.0) -> np.ndarray:
    """theta(t) from d theta/dt = kon C(t)(1 - theta) - koff theta, theta(0) = ``initial``.

    ``concentration_M`` is a function of time (h) returning M; ``breakpoints_h`` are times where C
    has a kink or a jump (doses), at which the stiff integrator (Radau) restarts."""
    from scipy.integrate import solve_ivp   # slow to import; only kinetic occupancy needs it
    for key, value in (("kon_per_M_per_s", kon_per_M_per_s), ("koff_per_s", koff_per_s)):
        if not (np.isfinite(value) and value > 0):
            raise ModelError(key, value, "must be a finite rate > 0")
    if not 0.0 <= initial <= 1.0:
        raise ModelError("initial", initial, "must be an occupancy in [0, 1]")
    t = _times(times_h)
    order = np.argsort(t)
    kon, koff = kon_per_M_per_s * SECONDS_PER_HOUR, koff_per_s * SECONDS_PER_HOUR

    def rhs(time, theta):
        c = float(np.ravel(concentration_M(time))[0])
        return kon * c * (1.0 - theta) - koff * theta

    def jac(time, _):
        c = np.ravel(concentration_M(time))[0]
        return np.array([[-(kon * c + koff)]])

    end = float(t.max())
    cuts = sorted({0.0, end} | {float(b) for b in breakpoints_h if 0.0 < b < end})
    out, theta = np.zeros(t.size), np.array([float(initial)])
    out[order[t[order] == 0.0]] = initial
    for a, b in zip(cuts, cuts[1:]):
        sel = order[(t[order] > a) & (t[order] <= b)]
        if b - a < TINY_SPAN_H:
            out[sel] = theta[0]
            continue
        when = np.union1d(t[sel], [b])
        sol = solve_ivp(rhs, (a, b), theta, method="Radau", t_eval=when, jac=jac, rtol=1e-9, atol=1e-12)
        if not sol.success:
            raise RuntimeError(f"kinetic occupancy: solve_ivp failed between {a} h and {b} h: {sol.message}")
        out[sel] = sol.y[0][np.searchsorted(when, t[sel])]
        theta = sol.y[:, -1]
    return out


def _ligands(regimen: Regimen, table: pd.DataFrame):
    """(drug objects by species, brain concentrations by species, metabolites without a Ki)."""
    from .. import library
    drugs = {regimen.pk().name: library.drug(regimen.drug, "regimen.drug")}
    ignored = []
    for met in regimen.pk().metabolites:
        try:
            drugs[met.name] = library.drug(met.name)
        except library.UnknownNameError:
            ignored.append(met.name)
    conc = {sp: table.loc[table["species"] == sp, "brain_free_M"].to_numpy() for sp in drugs}
    return drugs, conc, ignored


def occupancy(regimen: Regimen, times_h, mode: str = "auto", targets=None, method: str = "closed_form",
              disposition=None) -> pd.DataFrame:
    """Occupancy of each target of the drug over time: a long table ``time_h, drug, target,
    brain_free_M, ki_M, occupancy, mode`` (``occupancy`` is by the parent; metabolites the library
    knows compete at equilibrium and get their own rows).

    ``mode`` "equilibrium" uses C/(C + Ki); "kinetic" needs the library's ``koff_per_s``; "auto"
    is kinetic where the drug has a koff and equilibrium otherwise. ``targets`` restricts the
    targets (default: all the drug's Ki entries). Metabolites without a library Ki are listed in
    ``table.attrs["metabolites_without_ki"]``."""
    if mode not in MODES:
        raise ModelError("mode", mode, f"must be one of {', '.join(map(repr, MODES))}")
    t = _times(times_h)
    table = concentrations(regimen, t, method=method, disposition=disposition)
    drugs, conc, ignored = _ligands(regimen, table)
    parent = regimen.pk().name
    all_targets = list(drugs[parent].targets())
    chosen = all_targets if targets is None else list(targets)
    for target in chosen:
        if target not in all_targets:
            raise ModelError("targets", target, f"is not a target of {regimen.drug}: {', '.join(all_targets)}")
    kinetic = mode == "kinetic" or (mode == "auto" and drugs[parent].koff_per_s is not None)
    if mode == "kinetic" and drugs[parent].koff_per_s is None:
        raise ModelError("mode", mode, f"{regimen.drug} has no koff_per_s in the library; use 'equilibrium'")
    if kinetic and len(drugs) > 1:
        raise ModelError("mode", mode, "kinetic occupancy with a competing metabolite is not modelled")
    frames = []
    for target in chosen:
        ki = {sp: d.targets()[target] for sp, d in drugs.items() if target in d.targets()}
        if kinetic:
            koff = drugs[parent].koff_per_s
            theta = {parent: kinetic_occupancy(brain_free_function(regimen, disposition), t, koff / ki[parent],
                                               koff, breakpoints_h=regimen.dose_times_h())}
        else:
            theta = equilibrium_occupancy({sp: conc[sp] for sp in ki}, ki)
        for sp, th in theta.items():
            frames.append(pd.DataFrame({"time_h": t, "drug": sp, "target": target, "brain_free_M": conc[sp],
                                        "ki_M": ki[sp], "occupancy": th,
                                        "mode": "kinetic" if kinetic else "equilibrium"}))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["metabolites_without_ki"] = ignored
    out.attrs["regimen"] = regimen
    return out


def _time_axis(hours: np.ndarray):
    """(values, label) in hours up to 3 days, in days beyond."""
    if hours.max() > 72.0:
        return hours / 24.0, "Time since first dose (days)"
    return hours, "Time since first dose (h)"


def _describe(regimen: Regimen) -> str:
    if regimen.route == "iv_infusion":
        what = f"{regimen.rate} IV for {regimen.duration_h:g} h"
    else:
        what = f"{regimen.dose} {'oral' if regimen.route == 'oral' else 'IV bolus'}"
    if regimen.number > 1:
        what += f" every {regimen.interval_h:g} h, {regimen.number} doses"
    return f"{regimen.drug}\n{what}, {regimen.body_mass_kg:g} kg"


LINE_STYLES = ("-", "--", ":", "-.")


def plot_occupancy(table: pd.DataFrame, title: str | None = None, concentration: bool = True):
    """Figure of occupancy (%) against time since the first dose, one line per target (parent drug;
    targets with equal Ki overlap, so each target has its own dash), with the free brain
    concentration (nM) in a panel below when ``concentration``."""
    from matplotlib.figure import Figure
    from ..plots import OKABE_ITO, _style
    from ..units import format_concentration
    regimen = table.attrs.get("regimen")
    parent = table["drug"].iloc[0]
    rows = table[table["drug"] == parent]
    with _style():
        fig = Figure(figsize=(3.5, 4.2 if concentration else 2.6), layout="constrained")
        axes = fig.subplots(2 if concentration else 1, 1, sharex=True, squeeze=False,
                            gridspec_kw={"height_ratios": [2, 1]} if concentration else None)[:, 0]
        groups = list(rows.groupby("target", sort=False))
        for k, (target, sub) in enumerate(groups):
            x, xlabel = _time_axis(sub["time_h"].to_numpy())
            ki = format_concentration(float(sub["ki_M"].iloc[0])).replace("uM", "µM")
            axes[0].plot(x, 100.0 * sub["occupancy"].to_numpy(), color=(OKABE_ITO[1:] + OKABE_ITO[:1])[k % 8],
                         linestyle=LINE_STYLES[k % 4], label=f"{target} (Ki {ki})")
        axes[0].set_ylim(0, 100)
        axes[0].set_ylabel("Occupancy (%)")
        axes[0].legend(frameon=False, loc="best")
        axes[0].set_title(title or (_describe(regimen) if regimen is not None else parent), loc="left")
        if concentration:
            first = rows[rows["target"] == groups[0][0]]
            axes[1].plot(x, 1e9 * first["brain_free_M"].to_numpy(), color="0.2")
            axes[1].set_ylabel(f"Free brain\n{parent} (nM)")
            axes[1].set_ylim(bottom=0)
        ignored = table.attrs.get("metabolites_without_ki") or []
        if ignored:
            axes[-1].annotate(f"Not shown: {', '.join(ignored)} (no Ki in the library)", (0, 0),
                              xytext=(0, -30), xycoords="axes fraction", textcoords="offset points",
                              fontsize=7, color="0.35", va="top")
        axes[-1].set_xlabel(xlabel)
        axes[-1].set_xlim(0, float(x.max()))
    return fig
