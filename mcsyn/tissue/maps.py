"""Maps of one snapshot of a field: the free transmitter concentration and the fractional occupancy
of receptor groups in a slice of blocks (:func:`plot_occupancy_maps`), to see D1 follow the local
[DA] around each release while D2 integrates it and stays near its mean.

Built without pyplot (renders with the Agg backend), in the style of :mod:`mcsyn.plots`.
"""
from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ..errors import ModelError
from ..plots import _style
from .observe import FieldRun, block_concentrations_nM, block_occupancy

CONCENTRATION_CMAP = "magma"
OCCUPANCY_CMAP = "viridis"


def _snapshot_index(run: FieldRun, time_ms) -> int:
    times = run.snapshot_times_ms
    if time_ms is None:
        return len(times) - 1
    if not times[0] <= time_ms <= times[-1]:
        raise ModelError("time_ms", time_ms, f"a time within the snapshots, [{times[0]:g}, {times[-1]:g}] ms")
    return int(np.argmin(np.abs(times - time_ms)))


def _slice_index(run: FieldRun, z_um: float, block_um: float, m: int) -> int:
    half = 0.5 * run.model.field.box_side_um
    if not -half <= z_um < half:
        raise ModelError("z_um", z_um, f"a height inside the box, [{-half:g}, {half:g}) µm")
    return min(int((z_um + half) / block_um), m - 1)


def plot_occupancy_maps(run: FieldRun, groups=("D1", "D2"), time_ms: float | None = None, z_um: float = 0.0,
                        block_voxels: int = 2) -> Figure:
    """One snapshot (the one nearest ``time_ms``; None: the last) in the slice of blocks of
    ``block_voxels``³ voxels holding height ``z_um``: the free concentration (nM, log colour scale;
    blocks without a molecule in grey) beside the fractional occupancy of each of ``groups``
    (sites holding transmitter over the group's sites in the block, as the run placed them)."""
    conc = block_concentrations_nM(run, block_voxels)      # first: it names a run without snapshots
    k = _snapshot_index(run, time_ms)
    conc = conc[k]
    block_um = block_voxels * run.voxel_um
    m = round(len(conc) ** (1.0 / 3.0))
    iz = _slice_index(run, z_um, block_um, m)
    transmitter = run.model.field.species or run.model.species[0].name
    panels = [(f"free {transmitter}", conc.reshape(m, m, m)[:, :, iz], f"[{transmitter}] (nM; grey: none)")]
    for group in groups:
        occupied, sites = block_occupancy(run, group, block_voxels)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(sites > 0, occupied[k] / np.maximum(sites, 1), np.nan)
        panels.append((f"{group} occupancy", frac.reshape(m, m, m)[:, :, iz], f"{group} occupied (fraction of sites)"))
    lo = -0.5 * run.model.field.box_side_um
    extent = (lo, lo + m * block_um, lo, lo + m * block_um)
    with _style():
        fig = Figure(figsize=(3.0 * len(panels) + 0.6, 3.1), layout="constrained")
        for j, (title, image, unit) in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), j + 1)
            if j == 0:
                shown = np.ma.masked_less_equal(image, 0.0)
                cmap = _with_grey(CONCENTRATION_CMAP)
                positive = image[image > 0]
                norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size else None
                im = ax.imshow(shown.T, origin="lower", extent=extent, cmap=cmap, norm=norm, interpolation="nearest")
            else:
                shown = np.ma.masked_invalid(image)
                im = ax.imshow(shown.T, origin="lower", extent=extent, cmap=_with_grey(OCCUPANCY_CMAP), vmin=0.0,
                               vmax=max(float(np.nanmax(image)) if np.isfinite(image).any() else 1.0, 1e-3),
                               interpolation="nearest")
            ax.set_title(title)
            ax.set_xlabel("x (µm)")
            if j == 0:
                ax.set_ylabel("y (µm)")
            fig.colorbar(im, ax=ax, shrink=0.82, label=unit)
        z_lo = lo + iz * block_um
        fig.suptitle(f"t = {run.snapshot_times_ms[k]:g} ms, slice {z_lo:g} ≤ z < {z_lo + block_um:g} µm "
                     f"({block_um:g} µm blocks)")
    return fig


def _with_grey(name: str):
    import matplotlib
    return matplotlib.colormaps[name].with_extremes(bad="#d9d9d9")
