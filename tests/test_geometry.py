"""The behaviour table of mcsyn.geometry against the kernel and against plain geometry."""
from __future__ import annotations

import math

import numpy as np
import pytest

import mcsyn
from mcsyn import geometry
from mcsyn.errors import ModelError

KINDS = {
    "closed": dict(outside="closed"),
    "open": dict(outside="open"),
    "band_absorbing": dict(outside="band"),
    "band_reflecting": dict(outside="band", band_outer_boundary="reflecting"),
    "volume_absorbing": dict(outside="volume", domain_radius_um=0.6),
    "volume_reflecting": dict(outside="volume", domain_radius_um=0.6, domain_boundary="reflecting"),
}


def _model(**geometry_fields):
    return mcsyn.SynapseModel(
        geometry=mcsyn.Geometry(**geometry_fields),
        releases=[mcsyn.Release(time_ms=0.0, molecules=2000)],
        timing=mcsyn.Timing(duration_ms=2.0, dt_fine_us=1.0, dt_volume_us=4.0, sample_interval_us=100.0))


@pytest.mark.parametrize("name", KINDS)
def test_escape_behaviour_matches_the_kernel(name):
    """geometry.escapes says whether anything can escape; a run escapes molecules exactly then.
    (2,000 molecules for 2 ms next to an absorbing edge at most 1 µm away: the chance that none
    escapes is negligible.)"""
    g = mcsyn.Geometry(**KINDS[name])
    m = _model(**KINDS[name])
    escaped = mcsyn.run_one(m, seed=11).series["escaped"].iloc[-1]
    assert (escaped > 0) == geometry.escapes(g)


@pytest.mark.parametrize("name", KINDS)
def test_compartments_and_rim_agree_with_areas_and_volumes(name):
    g = mcsyn.Geometry(**KINDS[name])
    g.validate()
    vols = geometry.compartment_volumes_um3(g)
    assert set(vols) == set(geometry.COMPARTMENTS)
    assert all((vols[c] > 0) == (c in geometry.compartments(g)) for c in geometry.COMPARTMENTS)
    slab_area = sum(geometry.region_area_um2(g, loc) for loc in geometry.site_locations(g)
                    if geometry.LOCATION_PLANE_NAME[loc] == "pre")
    assert slab_area == pytest.approx(math.pi * geometry.rim_radius_um(g) ** 2, rel=1e-12)
    assert vols["cleft"] + vols["band"] == pytest.approx(slab_area * g.cleft_height_um, rel=1e-12)
    if geometry.has_volume(g):
        assert vols["volume"] == pytest.approx(g.volume_fraction * geometry.shell_volume_um3(g), rel=1e-12)


@pytest.mark.parametrize("location", ["postsynaptic", "presynaptic", "band_presynaptic"])
def test_candidate_tiles_cover_the_region_area(location):
    """Tile centres inside a region, times the tile area, approach the region's area (the error is
    the rim's perimeter × about a tile)."""
    g = mcsyn.Geometry(outside="band", cleft_radius_um=0.2, psd_radius_um=0.15, band_outer_radius_um=0.5)
    tile = 0.005
    n = geometry.tiles_per_side(g, tile)
    tiles = geometry.candidate_tiles(g, location, n, tile, 0.5 * n * tile)
    area = geometry.region_area_um2(g, location)
    perimeter = 2 * math.pi * (0.5 if location.startswith("band") else 0.2) + 2 * math.pi * 0.2
    assert abs(len(tiles) * tile ** 2 - area) < perimeter * tile


def test_degradation_region_must_exist():
    m = _model(outside="closed")
    m.degradation = [mcsyn.Degradation(100.0, region="band")]
    with pytest.raises(ModelError, match="degradation\\[0\\].region = 'band'"):
        m.validate()
    m.degradation = [mcsyn.Degradation(100.0, region="cleft"), mcsyn.Degradation(100.0, region="all")]
    m.validate()


def test_sites_and_releases_need_their_compartment():
    m = _model(outside="open")
    m.sites = [mcsyn.SiteGroup(mcsyn.ampa_jonas1993(), "band_postsynaptic", count=3)]
    with pytest.raises(ModelError, match="band sites need geometry.outside = 'band'"):
        m.validate()
    m.sites = []
    m.releases = [mcsyn.Release(0.0, 10, into="volume")]
    with pytest.raises(ModelError, match="release into the volume needs geometry.outside = 'volume'"):
        m.validate()


def test_geometry_is_the_same_class_everywhere():
    from mcsyn import model
    assert mcsyn.Geometry is model.Geometry is geometry.Geometry
    assert model.OUTSIDE_KINDS == tuple(geometry.OUTSIDE) and model.SITE_LOCATIONS == geometry.SITE_LOCATIONS
    g = mcsyn.Geometry(outside="band", band_outer_radius_um=0.7)
    assert g.slab_radius_um == 0.7 and g.cleft_volume_um3 == np.pi * g.cleft_radius_um ** 2 * g.cleft_height_um
