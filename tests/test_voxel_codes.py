"""The kernel's coded voxel hazards (ext/sites.pxi): a large grid keeps each voxel's species-0
binding hazard as a 2-byte code into a table of exact values, rebuilds the table when it fills and
falls back to plain doubles when a grid needs too many codes. None of this may change a bit: each
model here runs with the codes off, on, on with a table that fills during the run (it is rebuilt),
and on with a table that is full at once (the fallback), and every output must be identical."""
from __future__ import annotations

import numpy as np
import pytest

import mcsyn
from mcsyn import _engine, tissue
from mcsyn.simulate import prepared_kernel, run_seed_sequence
from test_golden import _volume_release

HUGE = 2 ** 62          # no grid is that large: the codes are off


def _volume_transporters():
    # the golden file's volume release, with a finer grid so that voxels hold few sites
    model = _volume_release()
    model.voxel_um = 0.2
    return model


MODELS = {
    "volume transporters": _volume_transporters,
    "dorsal striatal field": lambda: tissue.build_field("dorsal_striatal_dopamine", box_side_um=10.0,
                                                        duration_ms=200.0),
}


def _initial_hazard_kinds(cm, run):
    # distinct (weight, ground-state counts per type) over the voxels: at least as many as the
    # distinct hazards the kernel codes at the start
    k = cm.kernel
    n_types = int(np.sum(k.type_volume_index >= 0))
    counts = np.zeros((k.n_vox ** 3, n_types))
    ground = k.type_ground[run.volume_type] == run.volume_state
    np.add.at(counts, (run.volume_voxel[ground], k.type_volume_index[run.volume_type[ground]]),
              run.volume_count[ground])
    return len(np.unique(np.column_stack([k.voxel_weight, counts]), axis=0))


def _outputs(cm, min_voxels, code_limit, keep=None):
    ss = run_seed_sequence(11, 0)
    run = cm.draw_run(ss)
    if code_limit == "just above the start":
        # coded at the start and full as soon as bindings make a few new values: the table is
        # rebuilt again and again, and the codes stay on as long as the live values fit
        code_limit = keep = min(_initial_hazard_kinds(cm, run) + 2, 65535)
    _engine._set_voxel_coding(min_voxels, code_limit, keep)
    try:
        out = _engine.simulate(prepared_kernel(cm), run, ss.generate_state(4, np.uint64), False)
    finally:
        _engine._set_voxel_coding()
    return out["series"], out["states"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_coded_voxel_hazards_change_no_bit(name):
    cm = mcsyn.compile_model(MODELS[name]())
    plain = _outputs(cm, HUGE, 65535)
    assert plain[0][-1, 9] > 0, "the model must bind in the volume for this test to mean anything"
    for min_voxels, code_limit in ((1, 65535), (1, "just above the start"), (1, 1)):
        coded = _outputs(cm, min_voxels, code_limit)
        for a, b in zip(plain, coded):
            assert np.array_equal(a, b), f"{name}: codes (limit {code_limit}) changed the run"


def test_voxel_coding_limits_are_checked():
    with pytest.raises(ValueError):
        _engine._set_voxel_coding(1, 65536)
    with pytest.raises(ValueError):
        _engine._set_voxel_coding(0, 10)
    with pytest.raises(ValueError):
        _engine._set_voxel_coding(1, 10, 11)
