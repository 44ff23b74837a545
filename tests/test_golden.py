"""Bit-exact regression net: stored hashes of kernel outputs for fixed (seed, run) pairs.

Every preset, every outside kind and boundary, a drug in each binding mode, a train and a fusion
pore run with fixed seeds; the SHA-256 of each run's raw ``series`` and ``states`` arrays (and of
the first 4,096 kernel normals of a known seed) must equal ``tests/data/golden.json``. A refactor
that moves code must leave them unchanged; a change that alters the physics or the draw order must
change them in a commit of its own that says why.

Regenerate (only for such a commit) with::

    MCSYN_REGENERATE_GOLDEN=1 pytest tests/test_golden.py

which rewrites the file and then fails each regenerated case once, so that a regeneration is never
mistaken for a pass.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

import mcsyn
from mcsyn import _engine, presets
from mcsyn.simulate import run_seed_sequence

GOLDEN_FILE = Path(__file__).parent / "data" / "golden.json"
REGENERATE = os.environ.get("MCSYN_REGENERATE_GOLDEN") == "1"
SEED_RUNS = ((7, 0), (7, 5), (2024, 1))


def _glu_sites(outside):
    sites = [mcsyn.SiteGroup(mcsyn.ampa_jonas1993(), "postsynaptic", count=60),
             mcsyn.SiteGroup(mcsyn.transporter_cycle("EAAT", "glutamate", 1e7, 100, 50, 20),
                             "presynaptic", density_per_um2=2000)]
    if outside == "band":
        sites.append(mcsyn.SiteGroup(mcsyn.transporter_cycle("EAAT", "glutamate", 1e7, 100, 50, 20),
                                     "band_postsynaptic", density_per_um2=2000, name="EAAT_band"))
    return sites


def _hand_built(outside, **geometry):
    timing = mcsyn.Timing(duration_ms=1.0, dt_fine_us=1.0, dt_volume_us=4.0, sample_interval_us=10.0)
    return mcsyn.SynapseModel(
        species=[mcsyn.Species("glutamate", 0.33)],
        geometry=mcsyn.Geometry(outside=outside, **geometry),
        sites=_glu_sites(outside),
        releases=[mcsyn.Release(time_ms=0.0, molecules=1500)],
        timing=timing, name=f"golden_{outside}")


def _fusion_pore():
    m = _hand_built("band")
    m.releases = [mcsyn.Release(time_ms=0.1, molecules=800, pore_tau_ms=0.2, quantal_cv=0.3,
                                molecule_distribution="gamma"),
                  mcsyn.Release(time_ms=0.3, molecules=400, position_um=(0.05, -0.02))]
    return m


def _volume_release():
    return mcsyn.SynapseModel(
        species=[mcsyn.Species("dopamine", 0.76)],
        geometry=mcsyn.Geometry(outside="volume", domain_radius_um=2.0, domain_boundary="reflecting"),
        sites=[mcsyn.SiteGroup(mcsyn.transporter_cycle("DAT", "dopamine", 1e7, 10, 5, 2), "volume",
                               density_per_um3=200)],
        releases=[mcsyn.Release(time_ms=0.0, molecules=1000, into="volume")],
        degradation=[mcsyn.Degradation(rate_per_s=50.0, region="volume")],
        timing=mcsyn.Timing(duration_ms=2.0, dt_fine_us=1.0, dt_volume_us=10.0, sample_interval_us=20.0))


# name -> builder of a validated SynapseModel
CASES = {f"preset:{name}": (lambda name=name: presets.build(name)) for name in presets.names()}
CASES.update({
    "preset:dopaminergic_striatal:train": lambda: presets.build(
        "dopaminergic_striatal", **{"timing.duration_ms": 60}),
    "preset:serotonergic:escitalopram_equilibrium": lambda: presets.build(
        "serotonergic", drugs={"escitalopram": "3 nM"}),
    "preset:dopaminergic_striatal:cocaine_kinetic": lambda: presets.build(
        "dopaminergic_striatal", drugs={"cocaine": "1 uM"}, mode="kinetic"),
    "preset:dopaminergic_striatal:cocaine": lambda: presets.build(
        "dopaminergic_striatal", drugs={"cocaine": "1 uM"}),
    "outside:closed": lambda: _hand_built("closed"),
    "outside:open": lambda: _hand_built("open"),
    "outside:band_absorbing": lambda: _hand_built("band", band_outer_boundary="absorbing"),
    "outside:band_reflecting": lambda: _hand_built("band", band_outer_boundary="reflecting"),
    "outside:volume_absorbing": lambda: _hand_built("volume", domain_radius_um=1.5),
    "outside:volume_reflecting": lambda: _hand_built("volume", domain_radius_um=1.5,
                                                      domain_boundary="reflecting"),
    "outside:volume_no_reentry": lambda: _hand_built("volume", domain_radius_um=1.5,
                                                      volume_enters_cleft=False),
    "release:fusion_pore": _fusion_pore,
    "release:into_volume": _volume_release,
})


def _digest(array) -> str:
    a = np.ascontiguousarray(array)
    return hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()


def run_hashes(model, seed, run_index) -> dict:
    """The hashes of one kernel run of ``model`` for (seed, run_index)."""
    cm = mcsyn.compile_model(model)
    ss = run_seed_sequence(seed, run_index)
    out = _engine.simulate(cm.kernel, cm.draw_run(ss), ss.generate_state(4, np.uint64), False)
    return {"series": _digest(out["series"]), "states": _digest(out["states"])}


def normals_hash() -> str:
    words = np.random.SeedSequence(12345).generate_state(4, np.uint64)
    return _digest(_engine.standard_normals(words, 4096))


def _stored() -> dict:
    if GOLDEN_FILE.exists():
        return json.loads(GOLDEN_FILE.read_text())
    return {}


def _check(key: str, actual):
    stored = _stored()
    if REGENERATE:
        stored[key] = actual
        GOLDEN_FILE.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN_FILE.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
        pytest.fail(f"regenerated {key}; rerun without MCSYN_REGENERATE_GOLDEN to check")
    assert key in stored, f"{key} has no stored hash: regenerate (see this module's docstring)"
    assert actual == stored[key], (
        f"{key}: kernel output changed bit for bit; if intended, regenerate in a commit of its own")


@pytest.mark.parametrize("seed,run_index", SEED_RUNS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_output_is_bit_identical_to_the_stored_hashes(case, seed, run_index):
    _check(f"{case}|{seed}|{run_index}", run_hashes(CASES[case](), seed, run_index))


def test_first_normals_of_a_known_seed_are_unchanged():
    _check("normals|12345|4096", normals_hash())


def test_hash_depends_on_every_bit():
    a = np.zeros((3, 4), dtype=np.int64)
    b = a.copy()
    b[2, 3] = 1
    assert _digest(a) != _digest(b)
    assert _digest(a) != _digest(a.reshape(4, 3))
