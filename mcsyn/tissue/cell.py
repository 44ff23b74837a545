"""One varicosity in a periodic cell of its tissue (``geometry.cell``).

A single-varicosity volume preset (``outside = "volume"``) ends at a sphere of ``domain_radius_um``
that absorbs: what reaches it counts as escaped, so clearance is partly set by that artificial
boundary. In tissue those molecules meet the transporters of other varicosities instead.
``geometry.cell`` puts the same varicosity (its cleft, inner sphere, mouth and volume sites, as
before) at the centre of a periodic cube, whose side comes from the tissue field in
``tissue.toml`` whose ``synapse_preset`` is this preset:

* ``"isolated"`` (the default): the geometry as given (the absorbing sphere of the presets);
* ``"tissue"``: the side is the release-site spacing L = n^(-1/3) (n: the field's
  ``varicosity_density_per_um3``), so that the cube is the cell of a lattice of identical
  varicosities. Nothing escapes: a molecule leaving one face enters at the opposite one as if it
  came from the neighbour's identical release. It models a *synchronised* tissue, every
  neighbour releasing the same quantum at the same moment (one quantum per L³);
* ``"field_box"``: the side is the field's ``box_side_um`` (30 µm): one release per box in a
  tissue of transporters, the neighbours' transporters all around and the neighbours quiet (one
  release site in n × L³ releases), the nearer limit of an isolated release into tissue.

Setting ``box_side_um`` together with a cell is an error (the cell sets it); the volume's voxel is
the given ``voxel_um`` rounded to the nearest size that divides the side a whole number of times (a
periodic box must hold whole voxels). :mod:`mcsyn.validation.cell_clearance` compares the drug
effects on clearance in the three.
"""
from __future__ import annotations

import dataclasses
import functools
import tomllib
from importlib import resources

from ..errors import ModelError, require_choice
from ..model import Geometry, SynapseModel

CELLS = ("isolated", "tissue", "field_box")
VOLUME_OUTSIDE = ("volume", "periodic")


def _default(name: str, cls) -> float:
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


@functools.lru_cache(maxsize=None)
def _fields() -> dict:
    # the file mcsyn.tissue.presets reads; read here, because that module builds fields from the
    # presets, which build through this one
    return tomllib.loads(resources.files("mcsyn").joinpath("data", "tissue.toml").read_text(encoding="utf-8"))


def field_for_preset(preset: str, cell: str = "tissue") -> tuple:
    """(field name, field entry) of the tissue field whose ``synapse_preset`` is ``preset``."""
    for name, entry in _fields().items():
        if entry.get("synapse_preset") == preset:
            return name, entry
    presets = sorted({e.get("synapse_preset") for e in _fields().values()})
    raise ModelError("geometry.cell", cell,
                     f"needs a tissue field for the preset {preset!r} in mcsyn/data/tissue.toml (fields exist for "
                     f"{', '.join(presets)}); otherwise set geometry.outside = 'periodic' and geometry.box_side_um")


def release_site_spacing_um(preset: str) -> float:
    """L = density^(-1/3) of the preset's tissue field (µm)."""
    _, entry = field_for_preset(preset)
    return float(entry["varicosity_density_per_um3"]) ** (-1.0 / 3.0)


def cell_side_um(cell: str, preset: str) -> float:
    """The side of a ``geometry.cell`` other than "isolated" (µm)."""
    if cell == "tissue":
        return release_site_spacing_um(preset)
    return float(field_for_preset(preset, cell)[1]["box_side_um"])


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
                         f"is set by geometry.cell = {cell!r}; give one of the two")
    side = cell_side_um(cell, preset)
    r_var = geometry.get("varicosity_radius_um", _default("varicosity_radius_um", Geometry))
    if 2.0 * r_var >= side:
        raise ModelError("geometry.varicosity_radius_um", r_var,
                         f"must be < {side / 2:.4g} µm: half the side of the cell geometry.cell = {cell!r} "
                         f"(from the tissue field {field_for_preset(preset)[0]})")
    geometry.update(outside="periodic", box_side_um=side)
    geometry.pop("domain_radius_um", None)
    geometry.pop("domain_boundary", None)
    voxel = numerics.get("voxel_um", _default("voxel_um", SynapseModel))
    numerics["voxel_um"] = side / max(1, round(side / voxel))
    return geometry, numerics
