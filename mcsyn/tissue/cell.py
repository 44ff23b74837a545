"""One varicosity in the periodic cell of its tissue (``geometry.cell = "tissue"``).

A single-varicosity volume preset (``outside = "volume"``) ends at a sphere of ``domain_radius_um``
that absorbs: what reaches it counts as escaped, so clearance is partly set by that artificial
boundary. In tissue the molecules meet the transporters of the neighbouring varicosities instead.
``geometry.cell = "tissue"`` puts the same varicosity (its cleft, inner sphere, mouth and volume
sites, as before) at the centre of a periodic cube whose side is the tissue's release-site spacing

    L = n^(-1/3)   (n: the varicosity density of the transmitter's field in ``tissue.toml``),

so that the cube is the Wigner-Seitz-like cell of a lattice of identical varicosities. With the
cell's own transporters only, nothing escapes: a molecule leaving one face enters at the opposite
one as if it came from the neighbour's identical release. The cell therefore models a
*synchronised* tissue (every neighbour releases the same quantum at the same time), the other
limit from the absorbing sphere (an isolated release into quiet tissue that never returns). Uptake
in the cell is the varicosity's own transporter density acting on every released molecule, which
is what a blocker's ``1/(1 - θ)`` on clearance assumes.

``"isolated"`` (the default) leaves the geometry as given. Setting ``box_side_um`` together with
``cell = "tissue"`` is an error (the cell sets it); the volume's voxel is the given ``voxel_um``
rounded to the nearest size that divides L a whole number of times (a periodic box must hold whole
voxels).
"""
from __future__ import annotations

import dataclasses
import functools
import tomllib
from importlib import resources

from ..errors import ModelError, require_choice
from ..model import Geometry, SynapseModel

CELLS = ("isolated", "tissue")
VOLUME_OUTSIDE = ("volume", "periodic")


def _default(name: str, cls) -> float:
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


@functools.lru_cache(maxsize=None)
def _fields() -> dict:
    # the file mcsyn.tissue.presets reads; read here, because that module builds fields from the
    # presets, which build through this one
    return tomllib.loads(resources.files("mcsyn").joinpath("data", "tissue.toml").read_text(encoding="utf-8"))


def field_for_preset(preset: str) -> tuple:
    """(field name, field entry) of the tissue field whose ``synapse_preset`` is ``preset``."""
    for name, entry in _fields().items():
        if entry.get("synapse_preset") == preset:
            return name, entry
    presets = sorted({e.get("synapse_preset") for e in _fields().values()})
    raise ModelError("geometry.cell", "tissue",
                     f"needs a tissue field for the preset {preset!r} in mcsyn/data/tissue.toml (fields exist for "
                     f"{', '.join(presets)}); otherwise set geometry.outside = 'periodic' and geometry.box_side_um")


def release_site_spacing_um(preset: str) -> float:
    """L = density^(-1/3) of the preset's tissue field (µm)."""
    _, entry = field_for_preset(preset)
    return float(entry["varicosity_density_per_um3"]) ** (-1.0 / 3.0)


def apply_cell(geometry: dict, numerics: dict, preset: str) -> tuple:
    """The parsed ``geometry`` and ``numerics`` sections with ``geometry.cell`` resolved (removed);
    ``preset`` is the specification's name (which tissue field gives the spacing)."""
    geometry, numerics = dict(geometry), dict(numerics)
    cell = require_choice("geometry.cell", geometry.pop("cell", "isolated"), CELLS)
    if cell == "isolated":
        return geometry, numerics
    outside = geometry.get("outside", "band")
    if outside not in VOLUME_OUTSIDE:
        raise ModelError("geometry.cell", cell, f"needs a volume preset (geometry.outside = 'volume'), not {outside!r}")
    if "box_side_um" in geometry:
        raise ModelError("geometry.box_side_um", geometry["box_side_um"],
                         "is set by geometry.cell = 'tissue' (the release-site spacing); give one of the two")
    side = release_site_spacing_um(preset)
    r_var = geometry.get("varicosity_radius_um", _default("varicosity_radius_um", Geometry))
    if 2.0 * r_var >= side:
        raise ModelError("geometry.varicosity_radius_um", r_var,
                         f"must be < {side / 2:.4g} µm: half the tissue cell's side (geometry.cell = 'tissue', "
                         f"the release-site spacing of {field_for_preset(preset)[0]})")
    geometry.update(outside="periodic", box_side_um=side)
    geometry.pop("domain_radius_um", None)
    geometry.pop("domain_boundary", None)
    voxel = numerics.get("voxel_um", _default("voxel_um", SynapseModel))
    numerics["voxel_um"] = side / max(1, round(side / voxel))
    return geometry, numerics
