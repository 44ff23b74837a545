"""Scenario builders and estimators shared by the checks and by the tests.

The models here are the small, exactly solvable set-ups of the physics checks (a closed or open
cleft slab, a point release into a homogenised extracellular space, a cleft opening onto a closed
cell of tissue) and the estimators computed from their runs (exit-time moments, the exact
small-number mass-action mean, the first-order uptake rate of a transporter cycle).
``tests/test_physics.py`` and ``tests/test_meanfield.py`` import them from :mod:`mcsyn.validation`.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import special

from ..compile import AVOGADRO_PER_MOL, UM3_PER_L, compile_model, kon_um3_per_s
from ..schemes import transporter_cycle_rates
from ..model import Degradation, Geometry, Release, Species, SynapseModel, Timing
from ..simulate import run_one
from ..units import parse_quantity

# The physics checks hold for any D; these are the presets' values (their data entries cite the sources).
D_GLU = 0.33                    # µm²/ms, glutamate in the cleft (Nielsen, DiGregorio & Silver 2004, Neuron 42:757)
D_DA = 0.763                    # µm²/ms, dopamine, free, 37 °C
MOLECULES_PER_M_UM3 = AVOGADRO_PER_MOL / UM3_PER_L   # molecules per µm³ at 1 M


def _slab_model(outside="closed", radius=0.2, molecules=2000, duration_ms=1.0, dt_us=1.0, sample_us=10.0,
                sites=(), psd=None, h=0.02, d=D_GLU, species="glutamate", releases=None, tile_um=0.01):
    geometry = Geometry(cleft_height_um=h, cleft_radius_um=radius,
                        psd_radius_um=psd if psd is not None else radius / 2, outside=outside)
    return SynapseModel(species=[Species(species, d)], geometry=geometry, sites=list(sites),
                        releases=releases if releases is not None else [Release(0.0, molecules)],
                        timing=Timing(duration_ms=duration_ms, dt_fine_us=dt_us, dt_volume_us=dt_us,
                                      sample_interval_us=sample_us), tile_um=tile_um)


def _point_volume_model(n, duration_ms, d=D_DA, alpha=0.21, tortuosity=1.54, domain_um=10.0, dt_volume_us=10.0,
                        sample_us=100.0, degradation_per_s=0.0, species="dopamine"):
    """A homogenised ECS around a 1 nm varicosity (a point source at the origin)."""
    geometry = Geometry(outside="volume", varicosity_radius_um=0.001, domain_radius_um=domain_um,
                        volume_fraction=alpha, tortuosity=tortuosity, cleft_radius_um=0.2, psd_radius_um=0.1)
    deg = [Degradation(degradation_per_s, region="volume")] if degradation_per_s > 0 else []
    return SynapseModel(species=[Species(species, d)], geometry=geometry, degradation=deg,
                        releases=[Release(0.0, n, into="volume", position_um=(0.001001, 0.0, 0.0))],
                        timing=Timing(duration_ms=duration_ms, dt_fine_us=1.0, dt_volume_us=dt_volume_us,
                                      sample_interval_us=sample_us))


def _positions(model, seed, n_runs, key, workers):
    """Final positions (``key``: "slab_positions" or "volume_positions") of ``n_runs`` runs."""
    cm = compile_model(model) if isinstance(model, SynapseModel) else model

    def one(i):
        return run_one(cm, seed=seed, run_index=i, keep_positions=True).positions[key]

    if workers > 1 and n_runs > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, range(n_runs)))
    return [one(i) for i in range(n_runs)]


def exit_time_moments(escaped, n, times_ms, dt_ms):
    """Mean and variance of the exit time from the survival curve (escapes are recorded at the end
    of their step: subtract half a step)."""
    survival = 1.0 - escaped / n
    mean = np.trapezoid(survival, times_ms) - dt_ms / 2
    second = 2 * np.trapezoid(times_ms * survival, times_ms)
    return mean, second - mean ** 2


def mass_action_mean_bound(n_molecules, n_sites, kon, koff, volume_um3):
    """Exact equilibrium mean of bound complexes for A + R ⇌ AR with small numbers:
    P(b+1)/P(b) = a (N − b)(S − b)/(b + 1), a = kon/(N_A V koff)."""
    a = kon_um3_per_s(kon) / (volume_um3 * koff)
    b = np.arange(min(n_molecules, n_sites) + 1)
    log_ratio = np.log(a) + np.log(n_molecules - b[:-1]) + np.log(n_sites - b[:-1]) - np.log(b[:-1] + 1)
    logp = np.concatenate([[0.0], np.cumsum(log_ratio)])
    p = np.exp(logp - logp.max())
    p /= p.sum()
    return float((b * p).sum())


def _gaussian_ball_fraction(r, var_per_axis):
    """P(|X| < r) for a 3-D isotropic Gaussian with variance ``var_per_axis`` per axis."""
    r = np.asarray(r, dtype=float)
    s = np.sqrt(2.0 * var_per_axis)
    x = r / s
    return special.erf(x) - 2.0 * x / np.sqrt(np.pi) * np.exp(-x * x)


def _clearance_terms(ens, model):
    """Per run: (uptakes incl. the bound molecules that will be translocated, ∫free dt in s) for
    transporter cycles; their ratio is the first-order uptake rate (see drugs.clearance_rate_estimate)."""
    t_s = ens.times_ms * 1e-3
    cols = ens.columns
    free = ens.series[:, :, cols.index("free")]
    integral = np.trapezoid(free, t_s, axis=1)
    taken = ens.series[:, -1, cols.index("taken_up")].astype(float)
    pending = np.zeros(len(taken))
    for g in model.sites:
        cycle = transporter_cycle_rates(g.scheme)
        col = f"{g.label}:bound"
        if cycle is None or col not in cols:
            continue
        pending += ens.series[:, -1, cols.index(col)] * cycle.uptake_probability
    return taken + pending, integral


def _parse(value, unit):
    return parse_quantity(value, unit, "validation")


def _sunflower(n, radius):
    k = np.arange(n) + 0.5
    r = np.sqrt(k / n) * radius
    th = k * 2.399963229728653
    return list(zip(r * np.cos(th), r * np.sin(th)))


def closed_tissue_cell(molecules=3000, duration_ms=20.0, dt_volume_us=4.0, domain_um=0.6, varicosity_um=0.25,
                       release_into="cleft", volume_enters_cleft=None) -> SynapseModel:
    """A cleft opening onto a closed cell of tissue (reflecting sphere): nothing leaves, so the
    molecules settle at equal free concentration in cleft and extracellular space."""
    g = Geometry(outside="volume", varicosity_radius_um=varicosity_um, domain_radius_um=domain_um,
                 domain_boundary="reflecting", volume_enters_cleft=volume_enters_cleft)
    return SynapseModel(species=[Species("glutamate", D_GLU)], geometry=g,
                        releases=[Release(0.0, molecules, into=release_into)],
                        timing=Timing(duration_ms=duration_ms, dt_fine_us=1.0, dt_volume_us=dt_volume_us,
                                      sample_interval_us=100.0))


def cleft_share_at_equilibrium(g: Geometry) -> float:
    """V_cleft / (V_cleft + α V_shell): the cleft's share of the molecules in a closed cell."""
    v_ecs = g.volume_fraction * 4.0 / 3.0 * math.pi * (g.domain_radius_um ** 3 - g.varicosity_radius_um ** 3)
    return g.cleft_volume_um3 / (g.cleft_volume_um3 + v_ecs)


def cleft_share_per_run(ens, after_ms=5.0):
    """Each run's time-averaged share of free molecules in the cleft after ``after_ms``."""
    late = ens.times_ms > after_ms
    cleft = ens.series[:, late, ens.columns.index("free_cleft")].sum(axis=1)
    return cleft / (cleft + ens.series[:, late, ens.columns.index("free_volume")].sum(axis=1))
