"""The kernel's Python face: constants shared with mcsyn.compile, prepare/simulate, the
compile-time guard on the block sizes."""
import dataclasses
import pathlib
import pickle
import re
import shutil
import subprocess
import sysconfig

import numpy as np
import pytest

import mcsyn
from mcsyn import _engine, compile as compile_mod
from mcsyn.simulate import prepared_kernel

EXT = pathlib.Path(__file__).resolve().parent.parent / "ext"


def constants_in_pxd():
    """name -> value of every item of a cpdef enum block in ext/constants.pxd."""
    found, in_enum = {}, False
    for line in (EXT / "constants.pxd").read_text().splitlines():
        if line.startswith("cpdef enum:"):
            in_enum = True
            continue
        if in_enum and line and not line[0].isspace():
            in_enum = False
        m = re.match(r"\s+([A-Z_0-9]+) = (-?\d+)", line) if in_enum else None
        if m:
            found[m.group(1)] = int(m.group(2))
    return found


def test_every_kernel_constant_reaches_python():
    constants = constants_in_pxd()
    assert len(constants) > 30
    for name, value in constants.items():
        assert getattr(_engine, name) == value, name


def test_compile_uses_the_kernel_constants():
    assert compile_mod.OUTSIDE_CODES == {"closed": _engine.OUTSIDE_CLOSED, "open": _engine.OUTSIDE_OPEN,
                                         "band": _engine.OUTSIDE_BAND, "volume": _engine.OUTSIDE_VOLUME}
    assert compile_mod.EXIT_CODES == {"first_order": _engine.EXIT_PLAIN, "unbind": _engine.EXIT_UNBIND,
                                      "uptake": _engine.EXIT_UPTAKE, "degrade": _engine.EXIT_DEGRADE,
                                      "efflux": _engine.EXIT_EFFLUX}
    assert (compile_mod.PLANE_POST, compile_mod.PLANE_PRE, compile_mod.PLANE_VOLUME) == \
        (_engine.PLANE_POST, _engine.PLANE_PRE, _engine.PLANE_VOLUME)
    assert compile_mod.ENTRY_DEPTH_QUANTILES == _engine.ENTRY_DEPTH_QUANTILES
    cm = mcsyn.compile_model(mcsyn.presets.build("glutamatergic"))
    assert cm.kernel.entry_depth_um.size == cm.kernel.n_species * _engine.ENTRY_DEPTH_QUANTILES


def test_series_columns_follow_the_kernel_indices():
    assert len(_engine.SERIES_COLUMNS) == _engine.N_SERIES
    for name, column in zip(_engine.SERIES_COLUMNS, range(_engine.N_SERIES)):
        assert getattr(_engine, "SERIES_" + name.upper()) == column
    assert mcsyn.simulate.SERIES_COLUMNS == _engine.SERIES_COLUMNS


def test_statuses_are_named_and_distinct():
    assert _engine.STATUS_OK == 0
    assert _engine.STATUS_NO_MEMORY < 0 and _engine.STATUS_SHARED_TILE < 0
    assert _engine.STATUS_NO_MEMORY != _engine.STATUS_SHARED_TILE


def test_block_sizes_fit():
    assert _engine.NORMAL_BLOCK % 3 == 0
    assert 3 * _engine.CHUNK <= _engine.NORMAL_BLOCK <= 4096     # MCSYN_FILL_MAX in mcsyn_random.h


@pytest.fixture(scope="module")
def compiled():
    cm = mcsyn.compile_model(mcsyn.presets.build("glutamatergic"))
    ss = np.random.SeedSequence(11)
    return cm, cm.draw_run(ss), ss.generate_state(4, np.uint64)


def test_prepared_and_on_the_fly_runs_are_identical(compiled):
    cm, run, words = compiled
    prepared = _engine.prepare(cm.kernel)
    a = _engine.simulate(prepared, run, words)
    b = _engine.simulate(cm.kernel, run, words)
    c = _engine.simulate(prepared, run, words)          # a prepared model serves any number of runs
    for key in ("series", "states"):
        assert np.array_equal(a[key], b[key]) and np.array_equal(a[key], c[key])


def test_prepared_model_pickles_and_is_cached(compiled):
    cm, run, words = compiled
    prepared = prepared_kernel(cm)
    assert prepared_kernel(cm) is prepared
    copy = pickle.loads(pickle.dumps(prepared))
    assert isinstance(copy, _engine.PreparedModel) and copy is not prepared
    assert np.array_equal(_engine.simulate(copy, run, words)["series"],
                          _engine.simulate(prepared, run, words)["series"])
    cm_copy = pickle.loads(pickle.dumps(cm))        # a worker's copy prepares again on arrival
    assert prepared_kernel(cm_copy).kernel_model is cm_copy.kernel


def test_prepared_model_holds_its_own_checked_tables(compiled):
    cm, run, words = compiled
    kernel = dataclasses.replace(cm.kernel, bind_value=cm.kernel.bind_value.copy())
    prepared = _engine.prepare(kernel)
    before = _engine.simulate(prepared, run, words)["series"]
    kernel.bind_value[:] = 0.0                        # changing the model after the check changes nothing
    assert np.array_equal(_engine.simulate(prepared, run, words)["series"], before)


def test_model_is_refused_at_prepare_and_run_at_simulate(compiled):
    cm, run, words = compiled
    with pytest.raises(ValueError, match="exit_to"):
        _engine.prepare(dataclasses.replace(cm.kernel, exit_to=np.full_like(cm.kernel.exit_to, -3)))
    prepared = _engine.prepare(cm.kernel)
    with pytest.raises(ValueError, match="site_state"):
        _engine.simulate(prepared, dataclasses.replace(run, site_state=np.full_like(run.site_state, 999)), words)
    with pytest.raises(TypeError, match="site_type"):
        _engine.simulate(prepared, dataclasses.replace(run, site_type=run.site_type.astype(np.int64)), words)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a C compiler")
@pytest.mark.parametrize("normal_block, chunk, fits", [(4095, 128, True), (4098, 128, False),
                                                       (4095, 1366, False), (4094, 128, False)])
def test_block_size_guard_stops_the_c_compiler(tmp_path, normal_block, chunk, fits):
    cython = pytest.importorskip("Cython.Compiler.Main")
    for name in ("constants.pxd", "random.pxd", "mcsyn_random.h"):
        shutil.copy(EXT / name, tmp_path / name)
    pxd = (tmp_path / "constants.pxd").read_text()
    pxd = re.sub(r"NORMAL_BLOCK = \d+", f"NORMAL_BLOCK = {normal_block}", pxd)
    pxd = re.sub(r"CHUNK = \d+", f"CHUNK = {chunk}", pxd)
    (tmp_path / "constants.pxd").write_text(pxd)
    (tmp_path / "guard.pyx").write_text("from constants cimport BlockSizeGuard\n"
                                        "cdef BlockSizeGuard *unused = NULL\n")
    options = cython.CompilationOptions(language_level=3, include_path=[str(tmp_path)])
    assert cython.compile(str(tmp_path / "guard.pyx"), options).num_errors == 0
    result = subprocess.run(["gcc", "-fsyntax-only", "-I", str(tmp_path), "-I", sysconfig.get_paths()["include"],
                             str(tmp_path / "guard.c")], capture_output=True, text=True)
    assert (result.returncode == 0) == fits, result.stderr[-2000:]
