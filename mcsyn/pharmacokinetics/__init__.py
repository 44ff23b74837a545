"""From a dose to the synapse: pharmacokinetics and target occupancy over hours to weeks.

A :class:`Regimen` (oral doses, intravenous boluses or infusions) of a library drug gives plasma
and free brain concentrations (:func:`concentrations`, one- or two-compartment, closed form or
ODE), the steady state of chronic dosing (:func:`steady_state`), and occupancy at each target of
the drug (:func:`occupancy`: equilibrium C/(C + Ki) from the library's Ki, or binding kinetics
from its koff), as a table and a figure (:func:`plot_occupancy`). :mod:`.pet` compares these, without
fitting, with published PET occupancies. :func:`snapshots` turns "4 h, 24 h and 48 h after the
last dose" into ensemble conditions of a preset (``mcsyn dose`` on the command line). Parameters and their sources are in
``mcsyn/data/pharmacokinetics.toml`` (:func:`parameters`, :func:`audit`).

Example::

    from mcsyn import pharmacokinetics as pk
    r = pk.Regimen("escitalopram", dose="10 mg", interval_h=24, number=28, body_mass_kg=70)
    table = pk.occupancy(r, times_h=range(0, 24 * 35))      # time_h, drug, target, ..., occupancy
    pk.steady_state(r).accumulation_ratio                    # 1/(1 - exp(-k tau))
    fig = pk.plot_occupancy(table)
    conds = pk.snapshots(r, hours_after_last_dose=[4, 24, 48], preset="serotonergic")   # for run_ensemble
"""
from .data import DrugPK, Metabolite, absorption_rate_from_t_max, audit, names, parameters
from .models import (OneCompartment, SteadyState, TwoCompartment, concentrations, disposition_of,
                     exp_difference, plasma_concentration, steady_state)
from .occupancy import equilibrium_occupancy, kinetic_occupancy, occupancy, plot_occupancy
from .regimen import ROUTES, Regimen, parse_amount, regimen_from_dict
from .snapshots import as_regimen, describe_regimen, plot_snapshots, snapshot_table, snapshot_times, snapshots

__all__ = [
    "DrugPK", "Metabolite", "OneCompartment", "ROUTES", "Regimen", "SteadyState", "TwoCompartment",
    "absorption_rate_from_t_max", "audit", "concentrations", "disposition_of", "equilibrium_occupancy",
    "exp_difference", "kinetic_occupancy", "names", "occupancy", "parameters", "parse_amount",
    "as_regimen", "describe_regimen", "plasma_concentration", "plot_occupancy", "plot_snapshots", "regimen_from_dict",
    "snapshot_table", "snapshot_times", "snapshots", "steady_state",
]
