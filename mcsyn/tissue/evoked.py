"""The two sides of a tissue field joined: the particle field against its deterministic twin, and
an evoked-trace experiment read through the virtual electrode and fitted with the
Michaelis–Menten model.

* :func:`field_transport` reads a :class:`~mcsyn.tissue.TissueModel`'s D* (the species' D over
  λ²), α, first-order removal and transporter uptake (Vmax = [T] k_cat of its transporter
  cycles, Km of the cycle; drug-blocked transporters, ``initial_state_fractions``, do not count;
  under a substrate drug the carriers' apparent Vmax and Km, :func:`substrate_steady_state`)
  into a :class:`~mcsyn.tissue.deterministic.FieldTransport`, and :func:`twin_sources` adds a
  substrate drug's steady efflux as a uniform source;
* :func:`realised_sources` gives the release events one run of the particle field actually
  drew (the same draws as ``run_one(model, seed, run_index)``), in the deterministic solver's
  frame ``[0, L)³``; :func:`deterministic_twin` solves the same field with them;
* :func:`evoked_model` builds a field preset with a stimulating electrode (a train recruiting every
  varicosity within a radius) and a recording region; :func:`run_evoked` runs it ``n_runs``
  times; :func:`fit_evoked` passes the ensemble mean of the recording region's concentration
  through :func:`~mcsyn.tissue.electrode.electrode_response` and fits
  :func:`~mcsyn.tissue.mm_fit.fit_evoked_trace`, with jackknife standard errors over the runs
  (the run-to-run variance, which the fit's own intervals, made for i.i.d. sample noise, do not
  see).

Where the mean field is exact. The ensemble mean of the particle field obeys the deterministic
reaction–diffusion equation exactly when every reaction is first order in the transmitter:
first-order removal at any level, and transporter uptake at concentrations ≪ Km (the
transporters then act as a linear sink). Two things separate the particle field from the
deterministic MM solver outside that regime or in its transients:

* saturation at hot spots: a quantum of 3,000 molecules is ~24 µM in a 1 µm³ cell, ≫ Km, so
  E[Vmax C/(Km + C)] < Vmax E[C]/(Km + E[C]) and the particle field clears less than the mean
  field of the same sources (on the solver's grid the cell-scale hot spot saturates too, so the
  size of the difference depends on the grid);
* the transporter cycle's bound state: the dorsal preset's DAT is 3 µM of carriers (Vmax/k_cat)
  against Km = 0.2 µM, so the Michaelis–Menten quasi-steady state does not hold for transients
  (it needs [T] ≪ Km + [S]): at low [DA] the free transmitter relaxes as the slow eigenvalue of
  the bind/unbind/translocate pair, ~12.9 /s, not Vmax/Km = 20 /s. Time averages over steady
  firing are unaffected (every bound molecule is eventually taken up at the same mean rate).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .. import budget, schemes
from ..compile import compile_model
from ..errors import ModelError, require_count, require_positive
from ..simulate import run, run_seed_sequence
from . import deterministic as det
from .electrode import electrode_response
from .field import AVOGADRO_PER_MOL, UM3_PER_L, Detector, Stimulation, TissueModel
from .mm_fit import PARAMETERS, KmNotDetermined, fit_evoked_trace, stimulus_times_s


def _carriers_uM(model: TissueModel, grp, fraction: float) -> float:
    """``fraction`` of a volume group's sites as µM of extracellular fluid."""
    return grp.density_per_um3 * UM3_PER_L / (AVOGADRO_PER_MOL * model.geometry.volume_fraction) * 1e6 * fraction


def _has_efflux(grp) -> bool:
    return any(t.kind == "efflux" and t.rate > 0.0 for t in grp.scheme.transitions)


def carrier_fluxes_uM_per_s(model: TissueModel, grp, s_uM: float) -> dict:
    """The steady fluxes of a volume transporter group's carriers at a free transmitter level
    ``s_uM``: ``uptake`` (gross, through its uptake transitions) and ``efflux`` (transmitter
    carried out by inward-facing carriers returning), in µM/s of extracellular fluid, from the
    stationary distribution of the whole scheme (a substrate drug's binding, translocation and
    efflux included) over the carriers that a static drug block leaves (states without
    transitions hold their initial fractions)."""
    moving = {s for t in grp.scheme.transitions for s in (t.source, t.target)}
    static = sum(f for s, f in grp.initial_state_fractions.items() if s not in moving)
    rates = {}
    for t in grp.scheme.transitions:
        rate = t.rate * s_uM * 1e-6 if t.kind == "bind" else t.rate
        rates[(t.source, t.target)] = rates.get((t.source, t.target), 0.0) + rate
    states = [s for s in grp.scheme.states if s in moving]
    p = schemes.stationary(states, rates)
    carriers = _carriers_uM(model, grp, 1.0 - static)
    flux = {"uptake": 0.0, "efflux": 0.0}
    for t in grp.scheme.transitions:
        if t.kind in flux:
            flux[t.kind] += carriers * p[t.source] * t.rate
    return flux


def substrate_steady_state(model: TissueModel, grp, k_removal_per_s: float) -> dict:
    """A transporter group under a substrate drug (efflux through its scheme): the apparent
    Michaelis-Menten constants of its gross uptake, U(S) = Vu S / (Ku + S) (exact: one binding
    step per cycle, so U is a ratio of first-degree polynomials in S; read from U at Km and 10 Km),
    the baseline b where efflux balances uptake and first-order removal, E(b) = U(b) + k b, and
    E(b). With these a constant uniform source E(b) and MM uptake (Vu, Ku) have the same steady
    level b (``deterministic.steady_state_uM``); the efflux's rise with S (a fraction of what is
    taken up comes straight back out) is what such a twin leaves out, so it is exact at the
    baseline only, not for the time course around it."""
    from scipy.optimize import brentq      # start-up cost: only a substrate drug needs it
    km = schemes.transporter_cycle_rates(grp.scheme).km_M * 1e6
    s1, s2 = km, 10.0 * km
    u1, u2 = (carrier_fluxes_uM_per_s(model, grp, s)["uptake"] for s in (s1, s2))
    # 1/U = 1/Vu + (Ku/Vu)/S, a line in 1/S through the two points
    slope = (1.0 / u1 - 1.0 / u2) / (1.0 / s1 - 1.0 / s2)
    vu = 1.0 / (1.0 / u1 - slope / s1)
    ku = slope * vu

    def net(s_uM):
        f = carrier_fluxes_uM_per_s(model, grp, s_uM)
        return f["efflux"] - f["uptake"] - k_removal_per_s * s_uM
    upper = ku
    for _ in range(30):
        if net(upper) <= 0.0:
            break
        upper *= 10.0
    else:
        raise ModelError(f"sites[{grp.label!r}]", "efflux", "an efflux that uptake balances at some level")
    baseline = brentq(net, 0.0, upper, xtol=1e-12, rtol=1e-12)
    return {"vmax_uM_per_s": float(vu), "km_uM": float(ku), "baseline_uM": float(baseline),
            "efflux_uM_per_s": float(carrier_fluxes_uM_per_s(model, grp, baseline)["efflux"])}


def _removal_per_s(model: TissueModel) -> float:
    species = model.field.species or model.species_names[0]
    return sum(d.rate_per_s for d in model.degradation if d.species in (None, species))


def transporter_calibration(model: TissueModel) -> dict:
    """The bulk uptake of ``model``'s transporter cycles on its released species: ``vmax_uM_per_s``
    (unblocked carriers × k_cat, summed over groups), ``km_uM`` (of the first such group; groups
    of different Km are refused), ``transporter_uM`` (carriers in extracellular fluid, unblocked),
    ``efflux_uM_per_s`` (0 without a substrate drug).

    Under a substrate drug (a group whose scheme has efflux) that group's Vmax and Km are the
    carriers' apparent ones at the drug's level, and ``efflux_uM_per_s`` and ``baseline_uM`` its
    steady efflux and the level it holds (:func:`substrate_steady_state`; one such group only)."""
    species = model.field.species or model.species_names[0]
    vmax, km, carriers, efflux, baseline = 0.0, None, 0.0, 0.0, None
    for grp in model.sites:
        cycle = schemes.transporter_cycle_rates(grp.scheme)
        if grp.location != "volume" or cycle is None or (cycle.species not in (None, species)):
            continue
        if _has_efflux(grp):
            if baseline is not None:
                raise ModelError(f"sites[{grp.label!r}]", "efflux", "one transporter group under a substrate drug")
            steady = substrate_steady_state(model, grp, _removal_per_s(model))
            group_km, group_vmax = steady["km_uM"], steady["vmax_uM_per_s"]
            efflux, baseline = steady["efflux_uM_per_s"], steady["baseline_uM"]
            t_uM = _carriers_uM(model, grp, 1.0)
        else:
            free = 1.0 - sum(grp.initial_state_fractions.values())
            t_uM = _carriers_uM(model, grp, free)
            group_km, group_vmax = cycle.km_M * 1e6, t_uM * cycle.kcat_per_s
        if km is not None and not math.isclose(km, group_km, rel_tol=1e-9):
            raise ModelError(f"sites[{grp.label!r}]", group_km * 1e-6, f"transporters of one Km only (first: {km} µM)")
        km = group_km
        vmax += group_vmax
        carriers += t_uM
    out = {"vmax_uM_per_s": vmax, "km_uM": km if km is not None else 1.0, "transporter_uM": carriers,
           "efflux_uM_per_s": efflux}
    if baseline is not None:
        out["baseline_uM"] = baseline
    return out


def _linear_uptake_matrix(model: TissueModel):
    """(free, carrier-bound) rate matrix at concentrations ≪ Km: bind kon [T] (unblocked
    carriers), unbind koff, translocate k_tr, first-order removal k of free transmitter."""
    alpha = model.geometry.volume_fraction
    species = model.field.species or model.species_names[0]
    k = sum(d.rate_per_s for d in model.degradation if d.species in (None, species))
    bind, cycle = 0.0, None
    for grp in model.sites:
        c = schemes.transporter_cycle_rates(grp.scheme)
        if grp.location != "volume" or c is None or c.species not in (None, species):
            continue
        free = 1.0 - sum(grp.initial_state_fractions.values())
        bind += c.kon_per_M_per_s * grp.density_per_um3 * UM3_PER_L / (AVOGADRO_PER_MOL * alpha) * free
        cycle = c
    if cycle is None:
        return np.array([[-k, 0.0], [0.0, -1.0]])
    return np.array([[-bind - k, cycle.koff_per_s], [bind, -cycle.koff_per_s - cycle.translocation_per_s]])


def linear_clearance_rate_per_s(model: TissueModel) -> float:
    """The rate at which free transmitter relaxes at concentrations ≪ Km in the well-mixed
    particle field: the slow eigenvalue of free ⇌ carrier-bound (:func:`_linear_uptake_matrix`).
    It equals Vmax/Km + k only when [T] ≪ Km (the Michaelis–Menten quasi-steady state); the
    dorsal preset's 3 µM of DAT give 12.9 /s where Vmax/Km = 20 /s."""
    return float(-np.max(np.linalg.eigvals(_linear_uptake_matrix(model)).real))


def linear_free_fraction(model: TissueModel, t_s) -> np.ndarray:
    """The fraction of an instantaneous release still free ``t_s`` later, well mixed, ≪ Km (the
    box mean of the particle field obeys it exactly there, whatever the release positions)."""
    from scipy.linalg import expm      # start-up cost: only the cross-check needs it
    m = _linear_uptake_matrix(model)
    return np.array([expm(m * float(t))[0, 0] for t in np.atleast_1d(t_s)])


def field_transport(model: TissueModel) -> det.FieldTransport:
    """The deterministic twin's transport: D*, α, first-order removal and transporter uptake of ``model``."""
    g = model.geometry
    species = model.field.species or model.species_names[0]
    sp = next(s for s in model.species if s.name == species)
    uptake = transporter_calibration(model)
    k = _removal_per_s(model)
    return det.FieldTransport(diffusion_um2_per_s=sp.diffusion_um2_per_ms * 1e3, tortuosity=g.tortuosity,
                              volume_fraction=g.volume_fraction, vmax_uM_per_s=uptake["vmax_uM_per_s"],
                              km_uM=uptake["km_uM"], k_removal_per_s=k)


def realised_sources(model: TissueModel, seed: int, run_index: int = 0) -> det.FieldSources:
    """The releases run ``(seed, run_index)`` of ``model`` draws (times, places, molecules), moved
    from the box's centred frame to the solver's ``[0, L)³``."""
    r = compile_model(model).draw_run(run_seed_sequence(seed, run_index))
    half = 0.5 * model.field.box_side_um
    xyz = np.column_stack([r.inject_x_um, r.inject_y_um, r.inject_z_um]) + half
    xyz = np.mod(xyz, model.field.box_side_um)
    return det.FieldSources(release_times_s=np.asarray(r.inject_time_us, dtype=float) * 1e-6,
                            release_positions_um=xyz, release_molecules=np.asarray(r.inject_count, dtype=float))


def twin_sources(model: TissueModel, sources: det.FieldSources) -> det.FieldSources:
    """``sources`` with the steady efflux of a substrate drug (reversed transport, uniform over the
    box: the carriers are) added to its uniform source."""
    efflux = transporter_calibration(model)["efflux_uM_per_s"]
    if efflux == 0.0:
        return sources
    return dataclasses.replace(sources, uniform_uM_per_s=sources.uniform_uM_per_s + efflux)


def twin_detectors(model: TissueModel) -> dict:
    """The model's sphere detectors as the solver's :class:`SphereDetector` (frame ``[0, L)³``)."""
    half = 0.5 * model.field.box_side_um
    out = {}
    for d in model.field.detectors:
        if d.shape != "sphere":
            raise ModelError(f"field.detectors[{d.name!r}].shape", d.shape, "the deterministic twin reads spheres only")
        out[d.name] = det.SphereDetector(tuple(float(c) + half for c in d.centre_um), d.radius_um)
    return out


def deterministic_twin(model: TissueModel, sources: det.FieldSources, t_eval_s, n_cells: int,
                       method: str = "RK45") -> det.FieldSolution:
    """The reaction–diffusion solution of ``model``'s field with ``sources`` on ``n_cells³`` cells;
    a substrate drug's efflux is added to ``sources`` as a uniform source (:func:`twin_sources`)."""
    return det.solve_field(model.field.box_side_um, n_cells, field_transport(model), twin_sources(model, sources),
                           t_eval_s,
                           detectors=twin_detectors(model), method=method)


# ---------------------------------------------------------------------------------------------
# the evoked-trace experiment

def evoked_model(preset: str = "dorsal_striatal_dopamine", *, box_side_um: float = 12.0, duration_ms: float = 2000.0,
                 n_pulses: int = 20, frequency_hz: float = 50.0, start_ms: float = 500.0,
                 stim_radius_um: float | None = None, electrode: str = "fibre", drugs: dict | None = None,
                 variant: str | None = None, layout_seed: int | None = None, **field_overrides) -> TissueModel:
    """A field preset with a train of ``n_pulses`` at ``frequency_hz`` from ``start_ms`` recruiting
    every varicosity within ``stim_radius_um`` (default: half the box, the most a periodic box
    allows) of the box's centre, where the recording region ``"electrode"`` lies: ``"fibre"``, a
    carbon fibre of :data:`FIBRE_RADIUS_UM` along z through the whole box (the periodic images
    make it an endless fibre), or ``"point"``, a sphere of :data:`POINT_RADIUS_UM`. Recruited
    sites release with the field's release probability."""
    from . import presets      # the presets library loads on first use
    data = presets.entry(preset, variant)
    pulses = stimulus_times_s(n_pulses, frequency_hz, require_positive("start_ms", start_ms) * 1e-3) * 1e3
    radius = 0.5 * box_side_um if stim_radius_um is None else stim_radius_um
    p = field_overrides.get("release_probability", data["release_probability"])
    stim = Stimulation(times_ms=tuple(float(t) for t in pulses), centre_um=(0.0, 0.0, 0.0), radius_um=radius,
                       release_probability=p)
    return presets.build(preset, variant, drugs, box_side_um=box_side_um, duration_ms=duration_ms,
                         detectors=[_recording_region(electrode, box_side_um)], stimulation=stim,
                         layout_seed=layout_seed, **field_overrides)


# the standard FSCV carbon fibre is 7 µm across (Kawagoe, Zimmerman & Wightman 1993, J Neurosci
# Methods 48:225 [U]: diameter recalled, not read); its exposed length (50-100 µm) exceeds any box here
FIBRE_RADIUS_UM = 3.5
POINT_RADIUS_UM = 2.0
ELECTRODES = ("fibre", "point")


def _recording_region(kind, box_side_um):
    if kind not in ELECTRODES:
        raise ModelError("electrode", kind, f"must be one of {ELECTRODES}")
    if kind == "point":
        return Detector("electrode", radius_um=POINT_RADIUS_UM)
    return Detector("electrode", "cylinder", (0.0, 0.0, 0.0), min(FIBRE_RADIUS_UM, 0.5 * box_side_um), box_side_um)


@dataclass
class EvokedRecord:
    """``n_runs`` runs of an evoked field: the recording region's concentration (nM, runs × times)."""
    model: TissueModel
    times_s: np.ndarray
    electrode_nM: np.ndarray
    stim_times_s: np.ndarray
    seed: int

    def mean_nM(self, runs=None) -> np.ndarray:
        return self.electrode_nM[slice(None) if runs is None else runs].mean(axis=0)


def run_evoked(model: TissueModel, n_runs: int = 4, seed: int = 0, workers: int | None = None,
               detector: str = "electrode", max_steps=budget.DEFAULT_MAX_STEPS) -> EvokedRecord:
    """Run ``model`` ``n_runs`` times (:func:`mcsyn.run`, threads; ``max_steps`` as there) and keep
    ``detector``'s series."""
    model.detector(detector)
    if model.field.stimulation is None:
        raise ModelError("field.stimulation", None, "an evoked experiment needs a Stimulation")
    ens = run(model, n_runs=require_count("n_runs", n_runs, low=2), seed=seed, workers=workers, max_steps=max_steps)
    series = ens.series[:, :, ens.columns.index(f"{detector}:concentration_nM")].astype(float)
    return EvokedRecord(model, np.asarray(ens.times_ms) * 1e-3, series,
                        np.asarray(model.field.stimulation.times_ms, dtype=float) * 1e-3, seed)


@dataclass
class EvokedFit:
    """The fit of the ensemble-mean trace, and the jackknife standard errors over runs."""
    fit: object                     # mcsyn.tissue.mm_fit.MMFit
    trace: object                   # the electrode's reading of the mean (ElectrodeTrace)
    jackknife_se: dict              # per rate parameter, from leave-one-run-out refits
    calibration: dict               # the field's own uptake (transporter_calibration)
    km_held: bool = False           # Km was not identifiable and was held at the field's Km


def _fit_mean(record, runs, method, fix_km_uM, ci):
    trace = electrode_response(record.times_s, record.mean_nM(runs), units="nM", method=method)
    return trace, fit_evoked_trace(trace.times_s, trace.concentration_uM, record.stim_times_s, electrode=method,
                                   fix_km_uM=fix_km_uM, ci=ci, n_boot=20)


def fit_evoked(record: EvokedRecord, method: str = "fscv", fix_km_uM=None, jackknife: bool = True,
               hold_km_if_unidentifiable: bool = False) -> EvokedFit:
    """Fit the standard model to the electrode's reading of the ensemble mean; with ``jackknife``,
    refit each leave-one-run-out mean (bootstrap intervals of 20 draws there, only to keep them
    quick: their estimates are what is used) for standard errors from the run-to-run variance.

    A trace that never rises well above Km does not determine Km: the least-squares search runs
    off towards the first-order limit (Km, Vmax → ∞ at fixed Vmax/Km) until ``mm_fit`` overflows.
    With ``hold_km_if_unidentifiable`` that case is refitted with Km held at the field's own Km
    (``EvokedFit.km_held`` says so); otherwise it raises ModelError."""
    calibration = transporter_calibration(record.model)
    km_held = False
    try:
        trace, best = _fit_mean(record, None, method, fix_km_uM, "profile")
    except KmNotDetermined:
        if fix_km_uM is not None or not hold_km_if_unidentifiable:
            raise
        fix_km_uM, km_held = calibration["km_uM"], True
        trace, best = _fit_mean(record, None, method, fix_km_uM, "profile")
    n = record.electrode_nM.shape[0]
    se = {}
    if jackknife:
        rates = [p for p in PARAMETERS if p not in best.fixed]
        draws = {p: [] for p in rates}
        for i in range(n):
            _, f = _fit_mean(record, np.delete(np.arange(n), i), method, fix_km_uM, "bootstrap")
            for p in rates:
                draws[p].append(f.estimates[p])
        se = {p: float(math.sqrt((n - 1) / n * np.sum((np.array(v) - np.mean(v)) ** 2))) for p, v in draws.items()}
    return EvokedFit(best, trace, se, calibration, km_held)
