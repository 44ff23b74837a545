"""What a tissue field shows: the tonic level, the distribution of the concentration over space
and time, receptor occupancy, and the detectors' concentration series.

Every concentration is of free transmitter in the extracellular space: a count over α times the
tissue volume it lies in, in nM. Voxel concentrations come from the kernel's per-voxel counts of
free molecules (voxel snapshots, ``TissueField.snapshot_interval_ms``); one molecule in a
0.5 µm voxel at α = 0.21 is already 63 nM, so the distribution over space is read on blocks of
``block_voxels``³ voxels (the counting noise of a block of mean count m is √m molecules, which
the percentiles include: they describe what a probe of the block's size would see).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..compile import compile_model
from ..simulate import run_metrics, simulate_columns
from .field import TissueModel

DEFAULT_PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)


@dataclass
class FieldRun:
    """One run of a field: its series (DataFrame indexed by ``time_ms``), metrics, and the voxel
    snapshots (``(n_snapshots, n, n, n)`` free molecules, None without snapshots) at
    ``snapshot_times_ms``."""

    model: TissueModel
    series: object
    metrics: dict
    snapshots: np.ndarray | None
    snapshot_times_ms: np.ndarray
    voxel_um: float


def run_field(model: TissueModel, seed: int = 0, run_index: int = 0) -> FieldRun:
    """Run one simulation of ``model`` (the same run as ``run_one(model, seed, run_index)``)
    keeping its voxel snapshots."""
    import pandas as pd   # pandas: start-up cost, load on use
    cm = compile_model(model)
    columns, out = simulate_columns(cm, seed, run_index)
    series = pd.DataFrame(columns, index=pd.Index(cm.sample_times_ms, name="time_ms"))
    snaps, times = None, np.zeros(0)
    if "voxel_snapshots" in out:
        n = cm.kernel.n_vox
        snaps = out["voxel_snapshots"].reshape(-1, n, n, n)
        times = cm.sample_times_ms[::cm.kernel.snapshot_every][:len(snaps)]
    return FieldRun(model, series, run_metrics(cm, columns), snaps, times, model.voxel_um)


def box_nM_per_molecule(model: TissueModel) -> float:
    """Concentration of one free molecule spread over the box's extracellular space."""
    return model.nM_per_molecule(model.geometry.box_side_um ** 3)


def tonic_level_nM(series, model: TissueModel, after_ms: float = 0.0) -> dict:
    """The tonic level: the time average (from ``after_ms``) of the mean free concentration in
    the box, and of each detector's concentration, in nM."""
    late = series.index >= after_ms
    out = {"box": float(series.loc[late, "free_volume"].mean() * box_nM_per_molecule(model))}
    for d in model.field.detectors:
        out[d.name] = float(series.loc[late, f"{d.name}:concentration_nM"].mean())
    return out


def block_concentrations_nM(run: FieldRun, block_voxels: int = 2) -> np.ndarray:
    """(n_snapshots, blocks) concentrations of the snapshots summed over cubes of
    ``block_voxels``³ voxels (which must divide the voxels per side)."""
    if run.snapshots is None:
        raise ValueError("the run has no voxel snapshots: set TissueField.snapshot_interval_ms")
    s = run.snapshots
    n = s.shape[1]
    if block_voxels < 1 or n % block_voxels:
        raise ValueError(f"block_voxels = {block_voxels!r} must divide the {n} voxels per side")
    m = n // block_voxels
    blocks = s.reshape(len(s), m, block_voxels, m, block_voxels, m, block_voxels).sum(axis=(2, 4, 6))
    return blocks.reshape(len(s), -1) * run.model.nM_per_molecule((block_voxels * run.voxel_um) ** 3)


def concentration_distribution(run: FieldRun, block_voxels: int = 2, percentiles=DEFAULT_PERCENTILES,
                               thresholds_nM=(10.0, 50.0, 100.0, 1000.0), after_ms: float = 0.0) -> dict:
    """The distribution of the free concentration over space and time (snapshots from
    ``after_ms``, blocks of ``block_voxels``³ voxels pooled): ``percentiles_nM``, the
    ``fraction_above_nM`` of volume × time above each threshold, the ``mean_nM``, and per
    snapshot the fraction of the volume above each threshold (``fraction_above_by_time``,
    rows = snapshot times)."""
    conc = block_concentrations_nM(run, block_voxels)
    keep = run.snapshot_times_ms >= after_ms
    conc, times = conc[keep], run.snapshot_times_ms[keep]
    pooled = conc.ravel()
    return {
        "block_um": block_voxels * run.voxel_um,
        "mean_nM": float(pooled.mean()),
        "percentiles_nM": {float(q): float(v) for q, v in zip(percentiles, np.percentile(pooled, percentiles))},
        "fraction_above_nM": {float(c): float((pooled > c).mean()) for c in thresholds_nM},
        "fraction_above_by_time": {float(c): (conc > c).mean(axis=1) for c in thresholds_nM},
        "times_ms": times,
    }


def occupancy_summary(series, model: TissueModel, after_ms: float = 0.0, percentiles=DEFAULT_PERCENTILES) -> dict:
    """Per site group: the fraction of its sites holding transmitter over time (from
    ``after_ms``): mean, sd and percentiles. D1 (fast unbinding) follows [DA] and spreads wide;
    D2 (slow) integrates it and stays narrow."""
    late = series.index >= after_ms
    out = {}
    for grp in model.sites:
        n_sites = sum(int(series[f"{grp.label}:{s}"].iloc[0]) for s in grp.scheme.states)
        if n_sites == 0:
            continue
        frac = series.loc[late, f"{grp.label}:occupied"].to_numpy(dtype=float) / n_sites
        out[grp.label] = {"mean": float(frac.mean()), "sd": float(frac.std()),
                          "percentiles": {float(q): float(v) for q, v in zip(percentiles, np.percentile(frac, percentiles))}}
    return out
