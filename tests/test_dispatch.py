"""The kernel's vector paths (scalar, AVX2, AVX-512, chosen at import for the CPU) give the same bits.

A seed must mean the same run on every machine, so each path this CPU can run is forced in turn
(``_engine.set_isa``) and must reproduce the stored golden hashes, the scalar path's positions on
models that exercise the vector steps (free molecules meeting every kind of rim, mixed species in
one chunk, decay; molecules crossing membranes dense with binding sites; volume sites, coded or not), the scalar path's normals for block sizes around the vector width, a row of the
lane generators, a piece and a block, and the scalar path's raw lane words.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import mcsyn
from mcsyn import _engine
from mcsyn.simulate import run_seed_sequence

from test_golden import CASES, GOLDEN_FILE, run_hashes

PATHS = _engine.supported_isas()


@pytest.fixture(autouse=True)
def restore_path():
    chosen = _engine.current_isa()
    yield
    _engine.set_isa(chosen)


def _digest(out) -> str:
    h = hashlib.sha256()
    for key in sorted(out):
        a = np.ascontiguousarray(out[key])
        h.update(key.encode() + f"{a.dtype.str}{a.shape}".encode() + a.tobytes())
    return h.hexdigest()


def _free_model(outside, n_species=1, degrade=False, **geometry):
    # a small cleft (0.3 µm) so that many steps end near its rim within the 0.3 ms run
    species = [mcsyn.Species("glutamate", 0.33), mcsyn.Species("gaba", 0.5)][:n_species]
    sites = []
    releases = [mcsyn.Release(time_ms=0.0, molecules=3000, species="glutamate")]
    if n_species == 2:
        # glutamate binds (the scalar path), gaba does not (the vector path), in shared chunks
        sites = [mcsyn.SiteGroup(mcsyn.transporter_cycle("EAAT", "glutamate", 1e7, 100, 50, 20),
                                 "presynaptic", density_per_um2=2000)]
        releases.append(mcsyn.Release(time_ms=0.05, molecules=2000, species="gaba"))
    return mcsyn.SynapseModel(
        species=species,
        geometry=mcsyn.Geometry(outside=outside, cleft_radius_um=0.3, psd_radius_um=0.15, **geometry),
        sites=sites, releases=releases,
        degradation=[mcsyn.Degradation(rate_per_s=2000.0, region="all")] if degrade else [],
        timing=mcsyn.Timing(duration_ms=0.3, dt_fine_us=1.0, dt_volume_us=4.0, sample_interval_us=5.0),
        name=f"dispatch_{outside}")


def _binding_model(outside, kon_per_M_s=1e8):
    # glutamate binding on both membranes (the crossing step): sites dense and fast enough that
    # molecules bind within most chunks, so a later molecule of the chunk reads a tile a binding
    # just changed
    sites = [mcsyn.SiteGroup(mcsyn.one_site_receptor("R", "glutamate", kon_per_M_s, 1e3), "postsynaptic",
                             density_per_um2=4000),
             mcsyn.SiteGroup(mcsyn.transporter_cycle("EAAT", "glutamate", kon_per_M_s, 100, 50, 20), "presynaptic",
                             density_per_um2=4000)]
    return mcsyn.SynapseModel(
        species=[mcsyn.Species("glutamate", 0.33)],
        geometry=mcsyn.Geometry(outside=outside, cleft_radius_um=0.3, psd_radius_um=0.15),
        sites=sites, releases=[mcsyn.Release(time_ms=0.0, molecules=3000, species="glutamate")],
        timing=mcsyn.Timing(duration_ms=0.3, dt_fine_us=1.0, sample_interval_us=5.0),
        name=f"dispatch_binding_{outside}")


def _volume_sites_model(boundary="absorbing", degrade=False, two_species=False, enters=None):
    # volume sites that bind (the volume vector step), molecules released into the volume and into
    # the cleft, whose mouth they leave and, with enters, come back through
    species = [mcsyn.Species("dopamine", 0.763), mcsyn.Species("gaba", 0.5)][:2 if two_species else 1]
    releases = [mcsyn.Release(time_ms=0.0, molecules=3000, species="dopamine", into="volume"),
                mcsyn.Release(time_ms=0.0, molecules=1000, species="dopamine")]
    if two_species:
        releases.append(mcsyn.Release(time_ms=0.1, molecules=2000, species="gaba", into="volume"))
    return mcsyn.SynapseModel(
        species=species,
        geometry=mcsyn.Geometry(outside="volume", cleft_radius_um=0.3, psd_radius_um=0.15, varicosity_radius_um=0.25,
                                domain_radius_um=1.5, volume_fraction=0.21, tortuosity=1.54,
                                domain_boundary=boundary, volume_enters_cleft=enters),
        sites=[mcsyn.SiteGroup(mcsyn.transporter_cycle("DAT", "dopamine", 9.6e7, 20.0, 20.0, 5.0), "volume",
                               density_per_um3=2500.0)],
        releases=releases,
        degradation=[mcsyn.Degradation(rate_per_s=500.0, region="volume")] if degrade else [],
        timing=mcsyn.Timing(duration_ms=5.0, dt_fine_us=1.0, dt_volume_us=10.0, sample_interval_us=100.0),
        voxel_um=0.1, name=f"dispatch_volume_{boundary}")


VECTOR_CASES = {
    "volume_sites_absorbing": lambda: _volume_sites_model(),
    "volume_sites_reflecting": lambda: _volume_sites_model("reflecting", enters=False),
    "volume_sites_entering": lambda: _volume_sites_model("reflecting", enters=True),
    "volume_sites_absorbing_entering": lambda: _volume_sites_model("absorbing", enters=True),
    "volume_sites_degraded_two_species": lambda: _volume_sites_model(degrade=True, two_species=True),
    "binding_closed": lambda: _binding_model("closed"),
    "binding_open": lambda: _binding_model("open"),
    "binding_band_slow": lambda: _binding_model("band", kon_per_M_s=1e6),
    "closed": lambda: _free_model("closed"),
    "open": lambda: _free_model("open"),
    "band_absorbing": lambda: _free_model("band", band_outer_boundary="absorbing"),
    "band_reflecting": lambda: _free_model("band", band_outer_boundary="reflecting"),
    "volume": lambda: _free_model("volume", domain_radius_um=1.0),
    "closed_two_species": lambda: _free_model("closed", n_species=2),
    "open_degraded": lambda: _free_model("open", degrade=True),
}


def _run_digest(model, seed=11, run_index=3) -> str:
    cm = mcsyn.compile_model(model)
    ss = run_seed_sequence(seed, run_index)
    return _digest(_engine.simulate(cm.kernel, cm.draw_run(ss), ss.generate_state(4, np.uint64), True))


def test_scalar_is_always_there_and_the_best_path_is_chosen_at_import():
    assert PATHS[0] == "scalar"
    assert set(PATHS) <= {"scalar", "avx2", "avx512"}


@pytest.mark.parametrize("bad", ["sse9", "AVX2", ""])
def test_an_unknown_path_is_refused(bad):
    with pytest.raises(ValueError):
        _engine.set_isa(bad)


@pytest.mark.parametrize("path", PATHS)
def test_every_path_reproduces_the_golden_hashes(path):
    stored = json.loads(GOLDEN_FILE.read_text())
    _engine.set_isa(path)
    assert _engine.current_isa() == path
    for case in sorted(CASES):
        assert run_hashes(CASES[case](), 7, 0) == stored[f"{case}|7|0"], f"{case} on the {path} path"


def test_every_path_gives_the_scalar_positions_and_series_with_coded_voxels():
    # the voxel hazards as 2-byte codes (the default only on grids of 32,768 voxels or more)
    digests = {}
    _engine._set_voxel_coding(1)
    try:
        for path in PATHS:
            _engine.set_isa(path)
            digests[path] = _run_digest(_volume_sites_model(enters=True))
    finally:
        _engine._set_voxel_coding()
    assert len(set(digests.values())) == 1, digests


@pytest.mark.parametrize("case", sorted(VECTOR_CASES))
def test_every_path_gives_the_scalar_positions_and_series(case):
    digests = {}
    for path in PATHS:
        _engine.set_isa(path)
        digests[path] = _run_digest(VECTOR_CASES[case]())
    assert len(set(digests.values())) == 1, digests


# around the vector width (8), a row of lane words (16 draws), a piece (512) and a block (4095)
@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 511, 512, 513, 1025, 4080, 4094, 4095,
                               4096, 8190, 50_001])
def test_every_path_draws_the_scalar_normals(n):
    words = np.random.SeedSequence(n).generate_state(4, np.uint64)
    _engine.set_isa("scalar")
    reference = _engine.standard_normals(words, n).view(np.uint64)
    for path in PATHS[1:]:
        _engine.set_isa(path)
        assert np.array_equal(_engine.standard_normals(words, n).view(np.uint64), reference), path


@pytest.mark.parametrize("rows", [0, 1, 2, 3, 255, 256, 1000])
def test_every_path_draws_the_scalar_lane_words(rows):
    words = np.random.SeedSequence(1000 + rows).generate_state(4, np.uint64)
    _engine.set_isa("scalar")
    reference = _engine.lane_words(words, rows)
    assert reference.shape == (rows * _engine.NORMAL_LANES,)
    for path in PATHS[1:]:
        _engine.set_isa(path)
        assert np.array_equal(_engine.lane_words(words, rows), reference), path
