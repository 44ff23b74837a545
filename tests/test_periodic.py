"""The periodic tissue box (``Geometry(outside="periodic")``): conservation, free diffusion of the
unwrapped positions, detector-region counts and voxel snapshots.

Statistical checks use Z = 5 standard errors, with fixed seeds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

import mcsyn
from mcsyn import geometry

Z = 5.0
D_UM2_PER_MS = 0.33
TORTUOSITY = 1.54
D_STAR = D_UM2_PER_MS / TORTUOSITY ** 2


def box_model(molecules=2000, box_um=2.0, duration_ms=20.0, start=(0.3, -0.2, 0.1)) -> mcsyn.SynapseModel:
    """Free diffusion of one burst released into a small periodic box: after 20 ms the rms
    displacement per axis (√(2 D* t) ≈ 2.4 µm) exceeds the 2 µm box, so most molecules have
    crossed a face, many several times."""
    g = mcsyn.Geometry(outside="periodic", box_side_um=box_um, varicosity_radius_um=0.001,
                       volume_enters_cleft=False, tortuosity=TORTUOSITY)
    return mcsyn.SynapseModel(
        species=[mcsyn.Species("glutamate", D_UM2_PER_MS)], geometry=g,
        releases=[mcsyn.Release(0.0, molecules, into="volume", position_um=start)],
        timing=mcsyn.Timing(duration_ms=duration_ms, dt_fine_us=1.0, dt_volume_us=10.0, sample_interval_us=500.0),
        voxel_um=0.5)


def test_a_periodic_box_keeps_every_molecule():
    s = mcsyn.run_one(box_model(), seed=201).series
    assert (s["free_volume"] == 2000).all()
    assert (s["escaped"] == 0).all()
    assert (s["free_cleft"] == 0).all()


def test_unwrapped_msd_is_six_d_star_t():
    # the squared unwrapped displacement of each molecule; the molecules are independent, so the
    # standard error of the mean is the sd over molecules / √N
    model = box_model()
    one = mcsyn.run_one(model, seed=202, keep_positions=True)
    wrapped, images = one.positions["volume_positions"], one.positions["volume_images"]
    L = model.geometry.box_side_um
    assert len(wrapped) == 2000 and images.shape == (2000, 3)
    assert (np.abs(wrapped) <= L / 2).all()
    assert (images != 0).any(axis=1).mean() > 0.5          # the test exercises the wrap
    d2 = ((wrapped + images * L - np.array(model.releases[0].position_um)) ** 2).sum(axis=1)
    expected = 6.0 * D_STAR * model.timing.duration_ms
    se = d2.std(ddof=1) / math.sqrt(len(d2))
    assert abs(d2.mean() - expected) <= Z * se, (d2.mean(), expected, se)
    assert Z * se < 0.15 * expected                         # resolves a 15 % error of D*


def test_positions_in_a_box_are_uniform_once_mixed():
    # per axis, the wrapped coordinate of a molecule is uniform on [-L/2, L/2) once √(2D*t) >> L:
    # its variance is L²/12 (standard error from the fourth moment of a uniform, L⁴/80)
    model = box_model(duration_ms=40.0)
    one = mcsyn.run_one(model, seed=203, keep_positions=True)
    xyz = one.positions["volume_positions"]
    L = model.geometry.box_side_um
    n = len(xyz)
    var = (xyz ** 2).mean(axis=0)
    se = math.sqrt((L ** 4 / 80 - (L ** 2 / 12) ** 2) / n)
    assert (np.abs(var - L ** 2 / 12) <= Z * se).all(), (var, L ** 2 / 12, se)


@dataclass
class Region:
    name: str
    shape: str
    centre_um: tuple
    radius_um: float
    length_um: float = 0.0

    def volume_um3(self):
        if self.shape == "sphere":
            return 4 / 3 * math.pi * self.radius_um ** 3
        return math.pi * self.radius_um ** 2 * self.length_um


class ProbedBox(mcsyn.SynapseModel):
    """A box model that asks the kernel for region counts and voxel snapshots."""

    def detector_regions(self):
        return [Region("ball", "sphere", (0.9, 0.9, 0.9), 0.5),             # wraps round the corner
                Region("rod", "cylinder", (-0.5, 0.0, 0.0), 0.3, 1.6)]

    def voxel_snapshot_every(self, sample_interval_us):
        return 10


def test_detector_regions_count_at_their_volume_share():
    # once mixed, a region of volume v in a box of volume V holds N v/V molecules on average; the
    # ball centred near a corner lies partly across the faces, so the count checks nearest
    # images. Each run's late-time mean is one estimate; the tolerance is Z standard errors of
    # the mean over runs, from their spread
    base = box_model(duration_ms=40.0)
    model = ProbedBox(**{f: getattr(base, f) for f in ("species", "geometry", "releases", "timing", "voxel_um")})
    n_runs, L, n = 6, model.geometry.box_side_um, 2000
    ens = mcsyn.run(model, n_runs=n_runs, seed=204, workers=2)
    late = ens.times_ms >= 20.0
    for col, v in (("ball:molecules", 4 / 3 * math.pi * 0.5 ** 3), ("rod:molecules", math.pi * 0.3 ** 2 * 1.6)):
        per_run = ens.series[:, late, ens.columns.index(col)].mean(axis=1)
        se = per_run.std(ddof=1) / math.sqrt(n_runs)
        assert abs(per_run.mean() - n * v / L ** 3) <= Z * se, (col, per_run.mean(), n * v / L ** 3, se)
        assert Z * se < 0.1 * n * v / L ** 3


def test_voxel_snapshots_hold_every_molecule():
    base = box_model(duration_ms=10.0)
    model = ProbedBox(**{f: getattr(base, f) for f in ("species", "geometry", "releases", "timing", "voxel_um")})
    cm = mcsyn.compile_model(model)
    _, out = mcsyn.simulate.simulate_columns(cm, 205, 0)
    snaps = out["voxel_snapshots"]
    assert snaps.shape == (len(range(0, len(cm.sample_times_ms), 10)), 4 ** 3)
    assert (snaps.sum(axis=1) == 2000).all()
    start_voxel = np.argmax(snaps[0])
    assert snaps[0][start_voxel] == 2000            # at t = 0 every molecule is where it was released


def test_a_periodic_box_needs_a_whole_number_of_voxels():
    model = box_model()
    model.voxel_um = 0.3
    model.sites = [mcsyn.SiteGroup(mcsyn.transporter_cycle("EAAT", "glutamate", 1e7, 100.0, 50.0, 20.0),
                                   "volume", density_per_um3=10)]
    with pytest.raises(mcsyn.ModelError, match="voxel_um"):
        mcsyn.compile_model(model)


def test_volume_of_a_box_is_its_cube_less_the_varicosity():
    g = mcsyn.Geometry(outside="periodic", box_side_um=3.0, varicosity_radius_um=0.5)
    assert geometry.shell_volume_um3(g) == pytest.approx(27.0 - 4 / 3 * math.pi * 0.125)
    assert not geometry.escapes(g)
    assert geometry.volume_radii_um(g) == (0.5, 1.5)
