"""Built-in release-site fields (``mcsyn/data/tissue.toml``): dorsal and ventral striatal dopamine
and a serotonergic field, each with selectable variants.

:func:`build` makes the field's volume preset (:func:`mcsyn.presets.build`, so drugs such as
cocaine or methylphenidate act on its transporters exactly as in the single-varicosity presets)
and moves its species, volume sites and first-order removal into a periodic box of tissue with the
field's release sites (:func:`tissue_model`).
"""
from __future__ import annotations

import functools
import tomllib
from importlib import resources

from .. import geometry
from ..errors import ModelError
from ..model import Geometry, SynapseModel, Timing
from .field import Detector, Firing, TissueField, TissueModel

# the box's centre holds no varicosity of its own: the kernel's reflecting sphere there is made
# negligible (its volume is 4e-9 µm³)
CENTRE_SPHERE_RADIUS_UM = 1e-3
FIELD_KEYS = ("box_side_um", "varicosity_density_per_um3", "varicosity_radius_um", "n_neurons",
              "release_probability", "quantum_molecules")
FIRING_KEYS = {"firing_pattern": "pattern", "firing_rate_hz": "rate_hz", "burst_rate_hz": "burst_rate_hz",
               "spikes_per_burst": "spikes_per_burst", "intraburst_hz": "intraburst_hz"}


@functools.lru_cache(maxsize=None)
def _entries() -> dict:
    text = resources.files("mcsyn").joinpath("data", "tissue.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def names() -> list:
    return list(_entries())


def canonical_name(name: str) -> str:
    for key, entry in _entries().items():
        if name == key or name in entry.get("aliases", ()):
            return key
    raise ModelError("field", name, f"is not a tissue field; fields: {', '.join(names())}")


def entry(name: str, variant: str | None = None) -> dict:
    """The data of field ``name`` with ``variant`` applied (a copy)."""
    base = dict(_entries()[canonical_name(name)])
    variants = base.pop("variants", {})
    if variant is not None:
        if variant not in variants:
            raise ModelError("variant", variant, f"field {name!r} has the variants {sorted(variants) or 'none'}")
        base.update({k: v for k, v in variants[variant].items() if k != "source"})
    return base


def tissue_model(base: SynapseModel, tissue_field: TissueField, duration_ms: float,
                 sample_interval_us: float = 1000.0, dt_volume_us: float | None = None) -> TissueModel:
    """``base``'s species, volume sites and degradation in a periodic box with ``tissue_field``'s
    release sites, stepped at ``dt_volume_us`` (default: ``base``'s). ``base`` must keep its
    sites in the volume (a tissue box has no cleft to use)."""
    for grp in base.sites:
        if grp.location != "volume":
            raise ModelError(f"sites[{grp.label!r}].location", grp.location,
                             "a tissue field holds volume sites only")
    g = base.geometry
    box = Geometry(outside="periodic", box_side_um=tissue_field.box_side_um,
                   varicosity_radius_um=CENTRE_SPHERE_RADIUS_UM, volume_fraction=g.volume_fraction,
                   tortuosity=g.tortuosity, volume_enters_cleft=False)
    t = base.timing
    timing = Timing(duration_ms=duration_ms, dt_fine_us=t.dt_fine_us,
                    dt_volume_us=t.dt_volume_us if dt_volume_us is None else dt_volume_us,
                    sample_interval_us=sample_interval_us)
    model = TissueModel(species=list(base.species), geometry=box, sites=list(base.sites), releases=[],
                        trains=[], degradation=list(base.degradation), timing=timing, tile_um=base.tile_um,
                        voxel_um=base.voxel_um, name=f"{base.name} field", field=tissue_field)
    if hasattr(base, "pharmacology"):
        model.__dict__["pharmacology"] = base.pharmacology
    return model.validate()


def build(name: str, /, variant: str | None = None, drugs: dict | None = None, *, box_side_um: float | None = None,
          duration_ms: float | None = None, detectors=None, stimulation=None, snapshot_interval_ms=None,
          layout_seed: int | None = None, mode: str = "equilibrium", **field_overrides) -> TissueModel:
    """Build the tissue field ``name`` (see :func:`names`) as a validated :class:`TissueModel`.

    ``drugs`` act as in :func:`mcsyn.presets.build`; ``detectors`` is a list of
    :class:`Detector` (default: one sphere of 2 µm radius at the box's centre, named
    ``"centre"``); ``field_overrides`` set :class:`TissueField` fields (or the firing keys of
    the data file, e.g. ``firing_rate_hz``)."""
    data = entry(name, variant)
    from .. import presets      # here, not at the top: the presets library loads on first use
    base = presets.build(data["synapse_preset"], drugs=drugs, mode=mode, **data.get("synapse_overrides", {}))
    values = {k: data[k] for k in FIELD_KEYS}
    firing = {FIRING_KEYS[k]: data[k] for k in FIRING_KEYS if k in data}
    for key, value in field_overrides.items():
        if key in FIRING_KEYS:
            firing[FIRING_KEYS[key]] = value
        elif key in TissueField.__dataclass_fields__:
            values[key] = value
        else:
            raise ModelError(key, value, f"is not a field setting; settings: {sorted(values) + sorted(FIRING_KEYS)}")
    if box_side_um is not None:
        values["box_side_um"] = box_side_um
    tissue_field = TissueField(**values, firing=Firing(**firing),
                               detectors=list(detectors) if detectors is not None else [Detector("centre", radius_um=2.0)],
                               stimulation=stimulation, snapshot_interval_ms=snapshot_interval_ms,
                               layout_seed=layout_seed)
    geometry.require_length("field.box_side_um", tissue_field.box_side_um)
    return tissue_model(base, tissue_field, duration_ms if duration_ms is not None else data["duration_ms"],
                        data["sample_interval_us"], data.get("dt_volume_us"))
