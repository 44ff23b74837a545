"""What a tissue field shows: the tonic level, the distribution of the concentration over space
and time, receptor occupancy over time and over space, and the detectors' concentration series.

Every concentration is of free transmitter in the extracellular space: a count over α times the
tissue volume it lies in, in nM. Voxel concentrations come from the kernel's per-voxel counts of
free molecules (voxel snapshots, ``TissueField.snapshot_interval_ms``); one molecule in a
0.5 µm voxel at α = 0.21 is already 63 nM, so the distribution over space is read on blocks of
``block_voxels``³ voxels (the counting noise of a block of mean count m is √m molecules, which
the percentiles include: they describe what a probe of the block's size would see).

At the same snapshot times the kernel counts, per volume site group and voxel, the sites holding
transmitter (the series' ``<group>:occupied``: a site counts once whatever it holds), and returns
each group's sites per voxel of the run's own placement (fixed: sites do not move).
:func:`occupancy_distribution` reads the fractional occupancy on blocks, as
:func:`concentration_distribution` reads the concentration; a block of S sites at occupancy p
has binomial noise √(p(1 − p)/S), which the percentiles include.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..compile import compile_model
from ..errors import ModelError
from ..simulate import run_metrics, simulate_columns
from .field import TissueModel

DEFAULT_PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)


@dataclass
class FieldRun:
    """One run of a field: its series (DataFrame indexed by ``time_ms``), metrics, and the voxel
    snapshots (``(n_snapshots, n, n, n)`` free molecules, None without snapshots) at
    ``snapshot_times_ms``; with snapshots also ``occupancy_snapshots`` (``{group label:
    (n_snapshots, n, n, n)}`` sites holding transmitter) and ``sites_per_voxel`` (``{group label:
    (n, n, n)}`` sites placed in this run)."""

    model: TissueModel
    series: object
    metrics: dict
    snapshots: np.ndarray | None
    snapshot_times_ms: np.ndarray
    voxel_um: float
    occupancy_snapshots: dict | None = None
    sites_per_voxel: dict | None = None


def run_field(model: TissueModel, seed: int = 0, run_index: int = 0) -> FieldRun:
    """Run one simulation of ``model`` (the same run as ``run_one(model, seed, run_index)``)
    keeping its voxel snapshots."""
    import pandas as pd   # pandas: start-up cost, load on use
    cm = compile_model(model)
    columns, out = simulate_columns(cm, seed, run_index)
    series = pd.DataFrame(columns, index=pd.Index(cm.sample_times_ms, name="time_ms"))
    snaps, times, occupied, sites = None, np.zeros(0), None, None
    if "voxel_snapshots" in out:
        n = cm.kernel.n_vox
        snaps = out["voxel_snapshots"].reshape(-1, n, n, n)
        times = cm.sample_times_ms[::cm.kernel.snapshot_every][:len(snaps)]
        occupied, sites = {}, {}
        for grp, vt in zip(model.sites, cm.kernel.type_volume_index):
            if vt >= 0:
                occupied[grp.label] = out["voxel_occupied"][:, vt].reshape(-1, n, n, n)
                sites[grp.label] = out["voxel_sites"][vt].reshape(n, n, n)
    return FieldRun(model, series, run_metrics(cm, columns), snaps, times, model.voxel_um, occupied, sites)


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
    _require_snapshots(run)
    blocks = block_sums(run.snapshots, block_voxels)
    return blocks * run.model.nM_per_molecule((block_voxels * run.voxel_um) ** 3)


def _require_snapshots(run: FieldRun):
    if run.snapshots is None:
        raise ModelError("run", "a run without voxel snapshots", "a run of a field with "
                         "TissueField.snapshot_interval_ms set (mcsyn.tissue.run_field)")


def block_sums(grids: np.ndarray, block_voxels: int = 2) -> np.ndarray:
    """(n_grids, blocks) sums of ``(n_grids, n, n, n)`` voxel counts over cubes of
    ``block_voxels``³ voxels (which must divide n), blocks in C order of their (x, y, z) index."""
    n = grids.shape[1]
    if isinstance(block_voxels, bool) or not isinstance(block_voxels, (int, np.integer)) \
            or block_voxels < 1 or n % block_voxels:
        divisors = [d for d in range(1, n + 1) if n % d == 0]
        raise ModelError("block_voxels", block_voxels, f"must divide the {n} voxels per side: one of {divisors}")
    m = n // block_voxels
    blocks = grids.reshape(len(grids), m, block_voxels, m, block_voxels, m, block_voxels).sum(axis=(2, 4, 6))
    return blocks.reshape(len(grids), -1)


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
    above, above_by_time = _fractions_above(conc, thresholds_nM)
    return {
        "block_um": block_voxels * run.voxel_um,
        "mean_nM": float(conc.mean()),
        "percentiles_nM": _percentiles(conc, percentiles),
        "fraction_above_nM": above,
        "fraction_above_by_time": above_by_time,
        "times_ms": times,
    }


def _percentiles(values, percentiles) -> dict:
    return {float(q): float(v) for q, v in zip(percentiles, np.percentile(np.ravel(values), percentiles))}


def _fractions_above(by_time, thresholds) -> tuple:
    """For (times × blocks) values: the fraction of blocks × times above each threshold, and per
    time the fraction of blocks above it."""
    return ({float(c): float((by_time > c).mean()) for c in thresholds},
            {float(c): (by_time > c).mean(axis=1) for c in thresholds})


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
                          "percentiles": _percentiles(frac, percentiles)}
    return out


def block_occupancy(run: FieldRun, group: str, block_voxels: int = 2) -> tuple:
    """(occupied, sites): ``(n_snapshots, blocks)`` sites of ``group`` holding transmitter and the
    ``(blocks,)`` sites of the group the run placed in each block of ``block_voxels``³ voxels."""
    _require_snapshots(run)
    if group not in run.occupancy_snapshots:
        raise ModelError("group", group, f"one of the field's volume site groups {sorted(run.occupancy_snapshots)}")
    occupied = block_sums(run.occupancy_snapshots[group], block_voxels)
    return occupied, block_sums(run.sites_per_voxel[group][None], block_voxels)[0]


def occupancy_distribution(run: FieldRun, model: TissueModel, group: str, block_voxels: int = 2,
                           after_ms: float = 0.0, percentiles=DEFAULT_PERCENTILES,
                           thresholds=(0.1, 0.25, 0.5, 0.75, 0.9)) -> dict:
    """The distribution over space and time of the fractional occupancy of ``group`` (sites
    holding transmitter over the group's sites in each block of ``block_voxels``³ voxels, as this
    run placed them), pooled over the snapshots from ``after_ms``: ``mean``, ``sd``,
    ``percentiles``, the ``fraction_above`` of volume × time above each threshold and per snapshot
    (``fraction_above_by_time``), and the fraction occupied over the whole box per snapshot
    (``box_by_time``). Blocks without a site of the group are left out (``blocks_without_sites``
    says how many). D1 (fast unbinding) follows the local [DA] and spreads over the volume; D2
    (slow) integrates it and stays near its mean."""
    labels = [grp.label for grp in model.sites]
    if group not in labels:
        raise ModelError("group", group, f"one of the model's site groups {labels}")
    occupied, sites = block_occupancy(run, group, block_voxels)
    keep = run.snapshot_times_ms >= after_ms
    if not keep.any():
        raise ModelError("after_ms", after_ms, f"at most the last snapshot time {run.snapshot_times_ms[-1]:g} ms")
    has_sites = sites > 0
    if not has_sites.any():
        raise ModelError("group", group, "a group that places sites in this run")
    frac = occupied[keep][:, has_sites] / sites[has_sites]
    above, above_by_time = _fractions_above(frac, thresholds)
    return {
        "block_um": block_voxels * run.voxel_um,
        "mean": float(frac.mean()),
        "sd": float(frac.std()),
        "percentiles": _percentiles(frac, percentiles),
        "fraction_above": above,
        "fraction_above_by_time": above_by_time,
        "box_by_time": occupied[keep].sum(axis=1) / sites.sum(),
        "sites_per_block_mean": float(sites[has_sites].mean()),
        "blocks_without_sites": int((~has_sites).sum()),
        "times_ms": run.snapshot_times_ms[keep],
    }
