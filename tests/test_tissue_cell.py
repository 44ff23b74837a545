"""One varicosity in the periodic cell of its tissue (``geometry.cell = "tissue"``,
:mod:`mcsyn.tissue.cell`): the cell's side, conservation with the varicosity (and its cleft)
inside, and bad input."""
from __future__ import annotations

import numpy as np
import pytest

import mcsyn
from mcsyn import presets
from mcsyn.tissue import cell
from mcsyn.tissue.presets import entry

CELL = {"geometry.cell": "tissue"}


def test_the_cell_is_the_release_site_spacing_of_the_presets_field():
    for preset, field in (("serotonergic", "serotonergic_field"), ("dopaminergic_striatal", "dorsal_striatal_dopamine")):
        model = presets.build(preset, **CELL, **{"timing.dt_volume_us": 10.0})
        side = entry(field)["varicosity_density_per_um3"] ** (-1.0 / 3.0)
        g = model.geometry
        assert g.outside == "periodic" and g.box_side_um == pytest.approx(side, rel=1e-12)
        n = g.box_side_um / model.voxel_um
        assert abs(n - round(n)) < 1e-9 and abs(model.voxel_um - 0.5) < 0.5 / round(n)
    assert presets.build("serotonergic").geometry.outside == "volume"       # the default is unchanged
    box = presets.build("serotonergic", **{"geometry.cell": "field_box"})
    assert box.geometry.outside == "periodic" and box.geometry.box_side_um == entry("serotonergic_field")["box_side_um"]


def _check_conserved(series):
    free = series["free_cleft"] + series["free_volume"]
    total = free + series["bound"] + series["taken_up"] + series["degraded"]
    assert (series["escaped"] == 0).all()
    np.testing.assert_array_equal(total, series["released"])


def test_the_cell_keeps_every_molecule_with_the_varicosity_inside():
    # the dopamine cell (L = 2.13 µm around a 0.2 µm varicosity) with fast removal, so that within
    # 30 ms molecules are taken up, degraded and wrapped through the faces many times
    model = presets.build("dopaminergic_striatal", **CELL, **{"timing.dt_volume_us": 10.0, "timing.duration_ms": 30.0,
                                                                "degradation.non_DAT.rate_per_s": 20.0})
    series = mcsyn.run_one(model, seed=161).series
    _check_conserved(series)
    assert series["taken_up"].iloc[-1] > 0 and series["degraded"].iloc[-1] > 0 and series["bound"].iloc[-1] > 0


def test_the_cell_keeps_every_molecule_exchanged_with_the_cleft():
    # released into the cleft, whose mouth opens onto the varicosity at the cube's centre: molecules
    # leave into the volume (at equilibrium the cleft's 0.0025 µm³ holds < 1 of them)
    model = presets.build("serotonergic", **CELL, **{"release.into": "cleft", "geometry.volume_enters_cleft": True,
                                                       "timing.duration_ms": 20.0, "timing.dt_volume_us": 50.0})
    series = mcsyn.run_one(model, seed=162).series
    _check_conserved(series)
    assert series["free_cleft"].max() > 0 and series["free_volume"].iloc[-1] > 0.5 * series["released"].iloc[-1]


def test_a_cell_too_small_for_the_synapse_is_an_error_naming_the_field():
    with pytest.raises(mcsyn.ModelError, match="geometry.varicosity_radius_um"):
        presets.build("dopaminergic_striatal", **CELL, **{"geometry.varicosity_radius_um": 1.1})
    with pytest.raises(mcsyn.ModelError, match="geometry.box_side_um"):
        presets.build("serotonergic", **{"geometry.outside": "periodic", "geometry.box_side_um": 0.4})
    with pytest.raises(mcsyn.ModelError, match="geometry.box_side_um"):
        presets.build("serotonergic", **CELL, **{"geometry.box_side_um": 3.0})


def test_a_cell_needs_a_volume_preset_with_a_tissue_field():
    for cell_kind in ("tissue", "field_box"):
        with pytest.raises(mcsyn.ModelError, match="geometry.cell"):
            presets.build("noradrenergic", **{"geometry.cell": cell_kind})
    with pytest.raises(mcsyn.ModelError, match="geometry.cell"):
        presets.build("glutamatergic", **CELL)
    with pytest.raises(mcsyn.ModelError, match="geometry.cell"):
        presets.build("serotonergic", **{"geometry.cell": "cube"})
    assert cell.release_site_spacing_um("serotonergic") == pytest.approx(0.006 ** (-1 / 3))


def test_a_saved_configuration_keeps_the_cell():
    from mcsyn import config
    cfg = config.SynapseConfig(preset="serotonergic", overrides={"geometry": {"cell": "tissue"}})
    again = config.loads(config.dumps(cfg, resolved=True))
    assert again.build().geometry == cfg.build().geometry
