# cython: language_level=3
"""Molecule-level kernel of mcsyn: one synapse run on plain arrays, without the GIL.

Units inside the kernel: length in µm, time in µs. Every rate arrives already converted to the
quantity the loop needs (a per-hit probability, a hazard per step, a rate per µs), so the loop
does no unit arithmetic. The Python layer (``mcsyn.compile``) validates the model and builds
those arrays; this module never trusts an index it did not check. :func:`prepare` checks a kernel
model once and derives its tables (read-only, shared by every run); :func:`simulate` checks one
run's sites and injections, allocates, and runs without the GIL.

Sources (one extension, one translation unit): declarations in ``constants.pxd``, ``state.pxd``,
``random.pxd`` and ``geometry.pxd``; the implementation in the ``.pxi`` parts included below, in
dependency order; the entry points here.

Geometry (see docs in ``mcsyn/geometry.py``): a slab 0 <= z <= h between the postsynaptic (z = 0,
plane 0) and presynaptic (z = h, plane 1) membranes. The slab is the cleft for r < R_cleft and,
with an explicit band, continues to R_outer. Outside kinds: closed rim, absorbing rim, band, or a
homogenised volume (a spherical shell R_inner < |x| < R_domain around the terminal).

Time stepping: slab molecules take fine steps (dt_fine); volume molecules take one coarse step
(dt_coarse = K dt_fine) per window. Site transitions are exact exponential waiting times kept in a
binary heap, executed at the first fine step boundary after they fall due.
"""
from libc.stdint cimport uint64_t, uint32_t, int64_t, int32_t, int8_t, uint8_t, INT32_MAX
from libc.stdlib cimport malloc, realloc, free, calloc
from libc.math cimport sqrt, floor, exp, log, fabs, ceil, cbrt, INFINITY
from libc.string cimport memset
from libc.signal cimport SIGINT, SIGTERM
from cpython.exc cimport PyErr_CheckSignals

import threading

import os as _os

import numpy as np
cimport numpy as cnp

cnp.import_array()

from random cimport (mcsyn_rng, mcsyn_lanes, MCSYN_LANES, mcsyn_ziggurat_init, mcsyn_rng_seed, mcsyn_lanes_seed,
                     mcsyn_uniform, mcsyn_exponential, mcsyn_normal)
from simd cimport (mcsyn_fill_normals, mcsyn_lanes_draw, mcsyn_quiet_step_fn, mcsyn_quiet_step, mcsyn_crossing_params,
                   mcsyn_crossing_step_fn, mcsyn_crossing_step, mcsyn_volume_params, mcsyn_volume_step_fn,
                   mcsyn_volume_step, mcsyn_isa_supported,
                   mcsyn_set_isa, mcsyn_best_isa, mcsyn_isa_now)
from constants cimport *
from state cimport Pool, Sim
from geometry cimport *
from interrupt cimport (mcsyn_catch_signal, mcsyn_release_signal, mcsyn_clear_signal, mcsyn_stop_hold_count,
                       mcsyn_add_stop_holds, mcsyn_stop_requested)

mcsyn_ziggurat_init()
mcsyn_set_isa(mcsyn_best_isa())

# the vector paths by name, in the order of mcsyn_simd.h's MCSYN_ISA_* (see set_isa)
_ISA_NAMES = ("scalar", "avx2", "avx512")

# Python-visible copies of the constants in constants.pxd (Cython exports a cpdef enum only from a
# module's own scope); tests/test_kernel_api.py checks that every name there is here.
globals().update(
    OUTSIDE_CLOSED=OUTSIDE_CLOSED, OUTSIDE_OPEN=OUTSIDE_OPEN, OUTSIDE_BAND=OUTSIDE_BAND,
    OUTSIDE_VOLUME=OUTSIDE_VOLUME, PROBE_SPHERE=PROBE_SPHERE, PROBE_CYLINDER=PROBE_CYLINDER,
    EXIT_PLAIN=EXIT_PLAIN, EXIT_UNBIND=EXIT_UNBIND, EXIT_UPTAKE=EXIT_UPTAKE, EXIT_DEGRADE=EXIT_DEGRADE,
    EXIT_EFFLUX=EXIT_EFFLUX,
    PLANE_POST=PLANE_POST, PLANE_PRE=PLANE_PRE, PLANE_VOLUME=PLANE_VOLUME, PLANE_AGGREGATE=PLANE_AGGREGATE,
    STATUS_OK=STATUS_OK, STATUS_NO_MEMORY=STATUS_NO_MEMORY, STATUS_SHARED_TILE=STATUS_SHARED_TILE,
    STATUS_INTERRUPTED=STATUS_INTERRUPTED,
    SERIES_RELEASED=SERIES_RELEASED, SERIES_FREE_CLEFT=SERIES_FREE_CLEFT, SERIES_FREE_BAND=SERIES_FREE_BAND,
    SERIES_FREE_VOLUME=SERIES_FREE_VOLUME, SERIES_BOUND=SERIES_BOUND, SERIES_TAKEN_UP=SERIES_TAKEN_UP,
    SERIES_ESCAPED=SERIES_ESCAPED, SERIES_DEGRADED=SERIES_DEGRADED, SERIES_EFFLUXED=SERIES_EFFLUXED,
    SERIES_BINDING_EVENTS=SERIES_BINDING_EVENTS, N_SERIES=N_SERIES,
    ENTRY_DEPTH_QUANTILES=ENTRY_DEPTH_QUANTILES, NORMAL_BLOCK=NORMAL_BLOCK, CHUNK=CHUNK,
    SORT_EVERY=SORT_EVERY, SORT_CELL_TILES=SORT_CELL_TILES, NORMAL_LANES=MCSYN_LANES)


def _series_columns():
    names = [None] * N_SERIES
    names[SERIES_RELEASED] = "released"
    names[SERIES_FREE_CLEFT] = "free_cleft"
    names[SERIES_FREE_BAND] = "free_band"
    names[SERIES_FREE_VOLUME] = "free_volume"
    names[SERIES_BOUND] = "bound"
    names[SERIES_TAKEN_UP] = "taken_up"
    names[SERIES_ESCAPED] = "escaped"
    names[SERIES_DEGRADED] = "degraded"
    names[SERIES_EFFLUXED] = "effluxed"
    names[SERIES_BINDING_EVENTS] = "binding_events"
    if None in names:
        raise ImportError("mcsyn._engine: a time-series column has no name")
    return tuple(names)


# time-series columns, named in the order of their SERIES_* indices
SERIES_COLUMNS = _series_columns()

# Implementation, in the order of the file it was split from (Cython declares every function up
# front, so order is free; each part uses only the parts above it, except that placement.pxi
# calls reflect_at_sphere from slab.pxi and loop.pxi calls the feedback steps of feedback.pxi,
# which comes after prepare.pxi because its checks fill a PreparedModel):
include "pools.pxi"
include "heap.pxi"
include "sites.pxi"
include "site_counts.pxi"
include "placement.pxi"
include "events.pxi"
include "slab.pxi"
include "volume.pxi"
include "loop.pxi"
include "setup.pxi"
include "schedule.pxi"

include "prepare.pxi"
include "feedback.pxi"

# ==================================================================================================
# Python entry points

def simulate(object model, object run, object seed_words, bint keep_positions=False):
    """Run one simulation of a compiled model.

    Parameters
    ----------
    model : PreparedModel or mcsyn.compile.KernelModel
        The model from :func:`prepare` (checked once, for any number of runs), or a kernel model,
        which is then prepared for this run alone.
    run : mcsyn.compile.KernelRun
        Per-run site positions and initial states, and the injection schedule.
    seed_words : numpy.ndarray of uint64, shape (4,)
        Generator state from ``SeedSequence.generate_state(4, np.uint64)``.
    keep_positions : bool
        Also return the final positions of free molecules.

    Returns
    -------
    dict with ``series`` (int64, [n_samples, len(SERIES_COLUMNS)]), ``states``
    (int64, [n_samples, n_states]), with closed-loop feedback ``feedback_activation`` (float64,
    a(t_k - delay) per stimulus) and ``feedback_vesicles`` (int64, vesicles released per
    stimulus), with detector regions ``probes`` (int64, [n_samples, n_probes]), with voxel
    snapshots ``voxel_snapshots`` (int32, [n_snapshots, n_vox³] free volume molecules),
    ``voxel_occupied`` (int32, [n_snapshots, n_volume_types, n_vox³] volume sites holding
    transmitter, at the same samples) and ``voxel_sites`` (int64, [n_volume_types, n_vox³] sites
    placed), and, when asked, ``slab_positions`` and ``volume_positions``.

    Raises
    ------
    KeyboardInterrupt
        In the main thread, on Ctrl-C (SIGINT) during the run: it stops within one fine step.
        Generally, a SIGINT or SIGTERM with a Python handler runs that handler within one fine
        step, and what it raises ends the run (a handler that returns lets the run go on).
    RunStopped
        In any thread, while :func:`stop_runs` is in force.
    """
    cdef PreparedModel p = model if isinstance(model, PreparedModel) else prepare(model)
    cdef Sim s
    cdef int status = STATUS_OK
    memset(&s, 0, sizeof(Sim))
    seed = np.ascontiguousarray(seed_words, dtype=np.uint64)
    if seed.shape != (4,):
        raise ValueError(f"seed_words must hold 4 uint64 words, got shape {seed.shape}")
    mcsyn_rng_seed(&s.rng, <uint64_t*> _ptr(seed))
    mcsyn_lanes_seed(&s.lanes, &s.rng)
    s.normals_used = NORMAL_BLOCK
    _wire_model(&s, p)
    live_tables = _wire_changes(&s, p)     # noqa: F841  (kept alive for the run)
    sites = _check_sites(p, run)
    volume_rows = _check_volume_rows(p, run)
    injections = _check_injections(p, run)
    n_records = volume_rows[4]
    s.n_membrane = len(sites[0])
    if s.n_membrane + p.n_volume_types + n_records >= 2 ** 31 - 1:
        raise ValueError("too many sites for the kernel (limit 2^31 - 2)")

    # per-run state: output, counters, tile and voxel maps
    series = np.zeros((p.n_samples, N_SERIES), dtype=np.int64)
    states = np.zeros((p.n_samples, max(p.n_states, 1)), dtype=np.int64)
    state_count = np.zeros(max(p.n_states, 1), dtype=np.int64)
    tile_site = np.zeros(2 * p.n_tile * p.n_tile + 1, dtype=np.int32)
    tile_code = np.zeros(2 * p.n_tile * p.n_tile + 1, dtype=np.uint8)
    vox_free = np.zeros(max(p.n_volume_types * p.nv, 1), dtype=np.int32)
    fenwick = np.zeros(p.n_volume_types * (p.nv + 1) if p.ground_exits else 1, dtype=np.int64)
    free_total = np.zeros(max(p.n_volume_types, 1), dtype=np.int64)
    vox_hazard0 = np.zeros(p.nv if p.n_volume_types else 1, dtype=np.float64)
    probe_series = np.zeros((p.n_samples, max(p.n_probes, 1)), dtype=np.int64)
    snapshots = np.zeros((max(p.n_snapshots, 1), p.nv if p.n_snapshots else 1), dtype=np.int32)
    s.probe_series = <int64_t*> _ptr(probe_series)
    s.snapshots = <int32_t*> _ptr(snapshots)
    occupied_snapshots = np.zeros(max(p.n_snapshots * p.n_volume_types * p.nv, 1), dtype=np.int32)
    s.occupied_snapshots = <int32_t*> _ptr(occupied_snapshots)
    s.series = <int64_t*> _ptr(series)
    s.states_series = <int64_t*> _ptr(states)
    s.state_count = <int64_t*> _ptr(state_count)
    s.tile_site = <int32_t*> _ptr(tile_site)
    s.tile_code = <uint8_t*> _ptr(tile_code)
    s.vox_free = <int32_t*> _ptr(vox_free)
    s.fenwick = <int64_t*> _ptr(fenwick)
    s.free_total = <int64_t*> _ptr(free_total)
    s.vox_hazard0 = <double*> _ptr(vox_hazard0)
    _wire_injections(&s, injections)
    feedback = _wire_feedback(&s, p, run)

    if allocate_sites(&s, s.n_membrane + p.n_volume_types + n_records + 1024) != STATUS_OK:
        free_sites(&s)
        raise MemoryError("mcsyn kernel could not allocate memory for sites")
    _copy_sites(&s, sites)
    cdef Py_ssize_t n_volume_rows = len(volume_rows[0])
    cdef int32_t *row_type = <int32_t*> _ptr(volume_rows[0])
    cdef int32_t *row_state = <int32_t*> _ptr(volume_rows[1])
    cdef int32_t *row_voxel = <int32_t*> _ptr(volume_rows[2])
    cdef int32_t *row_count = <int32_t*> _ptr(volume_rows[3])
    cdef Py_ssize_t n_slab_inj = injections[7], n_volume_inj = injections[8]
    with nogil:
        status = pool_init(&s.slab, n_slab_inj + 64)
        if status == STATUS_OK:
            status = pool_init(&s.vol, n_volume_inj + 64)
        if status == STATUS_OK:
            status = pool_init(&s.entering, 64)
        if status == STATUS_OK:
            status = build_sites(&s, n_volume_rows, row_type, row_state, row_voxel, row_count)
    try:
        if status == STATUS_OK:
            status = _run_stoppably(&s)
        if status == STATUS_SHARED_TILE:
            raise ValueError("kernel input 'site_x_um'/'site_y_um': two membrane sites share one tile")
        if status != STATUS_OK:
            raise MemoryError("mcsyn kernel could not allocate memory for molecules or sites")
        out = {"series": series, "states": states[:, :p.n_states]}
        if feedback:
            out.update(feedback_activation=feedback[5], feedback_vesicles=feedback[6])
        if p.n_probes:
            out["probes"] = probe_series
        if p.n_snapshots:
            out["voxel_snapshots"] = snapshots
            out["voxel_occupied"] = occupied_snapshots[:p.n_snapshots * p.n_volume_types * p.nv].reshape(
                p.n_snapshots, p.n_volume_types, p.nv)
            out["voxel_sites"] = _sites_per_voxel(p, volume_rows)
        if keep_positions:
            out.update(_positions(&s))
        return out
    finally:
        pool_free(&s.slab)
        pool_free(&s.vol)
        pool_free(&s.entering)
        free_sites(&s)


class RunStopped(KeyboardInterrupt):
    """A kernel run ended early because :func:`stop_runs` was in force (an ensemble's worker thread
    after Ctrl-C or SIGTERM in the main thread, for example)."""


def stop_runs():
    """Stop every kernel run in this process, in any thread, at its next fine step, with
    :class:`RunStopped`; runs started before :func:`release_runs` stop before their first step.
    Calls nest: each needs its own :func:`release_runs`."""
    mcsyn_add_stop_holds(1)


def release_runs():
    """Undo one :func:`stop_runs`."""
    if mcsyn_stop_hold_count() <= 0:
        raise RuntimeError("release_runs() without a stop_runs() to undo")
    mcsyn_add_stop_holds(-1)


cdef int _runs_in_progress = 0     # changed with the GIL held


def runs_in_progress():
    """Kernel runs of this process in their main loop now, all threads together (from the moment a
    run in the main thread catches signals): for tests, which must signal a run that has started."""
    return _runs_in_progress


cdef int _run_stoppably(Sim *s) except? -1:
    # run_loop until it ends. A run in the main thread catches SIGINT and SIGTERM while it runs
    # (where Python handles them; see mcsyn_interrupt.h): when the loop pauses for one, Python's
    # handler runs here, and its exception (KeyboardInterrupt for SIGINT) ends the run; a handler
    # that returns lets the run go on. A stop hold ends the run with RunStopped. Between pauses
    # the loop keeps its place, so a run that paused and went on gives the same bits.
    cdef int status = STATUS_INTERRUPTED
    cdef bint main = threading.current_thread() is threading.main_thread()
    cdef bint caught_int = False, caught_term = False
    if main:
        mcsyn_clear_signal()
        caught_int = mcsyn_catch_signal(SIGINT)
        caught_term = mcsyn_catch_signal(SIGTERM)
    s.watch_signals = caught_int or caught_term
    global _runs_in_progress
    _runs_in_progress += 1
    try:
        while status == STATUS_INTERRUPTED:
            if main:
                mcsyn_clear_signal()
                PyErr_CheckSignals()    # a signal that came before the hook, or paused the loop
            if mcsyn_stop_hold_count() > 0:
                raise RunStopped("kernel run stopped by mcsyn._engine.stop_runs()")
            with nogil:
                status = run_loop(s)
    finally:
        _runs_in_progress -= 1
        if caught_int:
            mcsyn_release_signal(SIGINT)
        if caught_term:
            mcsyn_release_signal(SIGTERM)
        if main:
            mcsyn_clear_signal()
    return status


cdef void _wire_model(Sim *s, PreparedModel p):
    # scalars and read-only tables of the prepared model
    s.h = p.h
    s.r_cleft = p.r_cleft
    s.r_outer = p.r_outer
    s.r_inner = p.r_inner
    s.r_domain = p.r_domain
    s.outside = p.outside
    s.outer_absorbing = p.outer_absorbing
    s.domain_reflects = p.domain_reflects
    s.domain_periodic = p.domain_periodic
    s.n_probes = p.n_probes
    s.probe_shape = <const int32_t*> p.table("probe_shape")
    s.probe_centre = <const double*> p.table("probe_centre")
    s.probe_radius = <const double*> p.table("probe_radius")
    s.probe_half_length = <const double*> p.table("probe_half_length")
    s.snapshot_every = p.snapshot_every
    s.n_snapshots = p.n_snapshots
    s.r_mouth = p.r_mouth
    s.mouth_cos = p.mouth_cos
    s.rim = s.r_outer if s.outside == OUTSIDE_BAND else s.r_cleft
    s.reflecting_rim = s.outside == OUTSIDE_CLOSED or (s.outside == OUTSIDE_BAND and not s.outer_absorbing)
    s.volume_enters_slab = p.volume_enters_slab
    s.dt_fine = p.dt_fine
    s.steps_per_coarse = p.steps_per_coarse
    s.dt_coarse = s.dt_fine * s.steps_per_coarse
    s.n_coarse = p.n_coarse
    s.sample_every = p.sample_every
    s.n_samples = p.n_samples
    s.tile = p.tile
    s.n_tile = p.n_tile
    s.grid_half = 0.5 * s.n_tile * s.tile
    s.inv_tile = 1.0 / s.tile if s.tile > 0 else 0.0
    s.no_tile = 2 * s.n_tile * s.n_tile
    s.voxel = p.voxel
    s.n_vox = p.n_vox
    s.n_species = <int> p.n_species
    s.n_states = <int> p.n_states
    s.n_types = <int> p.n_types
    s.n_volume_types = <int> p.n_volume_types
    s.any_membrane_binding = p.any_membrane_binding
    s.sort_countdown = 0
    s.sigma_fine = <const double*> p.table("sigma_fine")
    s.sigma_volume = <const double*> p.table("sigma_volume")
    s.hazard_cleft = <const double*> p.table("hazard_cleft")
    s.hazard_band = <const double*> p.table("hazard_band")
    s.hazard_volume = <const double*> p.table("hazard_volume")
    s.enter_probability = <const double*> p.table("enter_probability")
    s.entry_depth = <const double*> p.table("entry_depth")
    s.membrane_binding = <const int*> p.table("membrane_binding")
    s.slab_hazard = <const int*> p.table("slab_hazard")
    s.state_ligands = <const int32_t*> p.table("state_ligands")
    s.bind_start = <const int32_t*> p.table("bind_start")
    s.bind_to = <const int32_t*> p.table("bind_to")
    s.bind_species = <const int32_t*> p.table("bind_species")
    s.bind_value = <const double*> p.table("bind_value")
    s.exit_start = <const int32_t*> p.table("exit_start")
    s.exit_to = <const int32_t*> p.table("exit_to")
    s.exit_kind = <const int32_t*> p.table("exit_kind")
    s.exit_species = <const int32_t*> p.table("exit_species")
    s.exit_rate = <const double*> p.table("exit_rate")
    s.exit_total = <const double*> p.table("exit_total")
    s.type_volume_index = <const int32_t*> p.table("type_volume_index")
    s.type_ground = <const int32_t*> p.table("type_ground")
    s.vol_bind_hazard = <const double*> p.table("vol_bind_hazard")
    s.vol_binding = <const int*> p.table("vol_binding")
    s.voxel_weight = <const double*> p.table("voxel_weight")
    s.code_hazard = <const double*> p.table("code_hazard")
    s.state_code = <const uint8_t*> p.table("state_code")
    s.bind_total0 = <const double*> p.table("bind_total0")
    s.volume_type_of = <const int32_t*> p.table("volume_type_of")


cdef tuple _check_sites(PreparedModel p, object run):
    # membrane sites one by one: type, state of that type, plane, a tile on the grid
    n_sites = run.n_sites
    site_type = _array(run, "site_type", np.int32, n_sites)
    site_state = _array(run, "site_state", np.int32, n_sites)
    site_plane = _array(run, "site_plane", np.int8, n_sites)
    site_x = _array(run, "site_x_um", np.float64, n_sites)
    site_y = _array(run, "site_y_um", np.float64, n_sites)
    type_volume, state_type = p.arrays["type_volume_index"], p.arrays["state_type"]
    if n_sites:
        if site_type.min() < 0 or site_type.max() >= p.n_types or np.any(type_volume[site_type] >= 0):
            raise ValueError("kernel input 'site_type' must name membrane site types")
        if site_state.min() < 0 or site_state.max() >= p.n_states or np.any(state_type[site_state] != site_type):
            raise ValueError("kernel input 'site_state' holds a state of another site type")
        if site_plane.min() < PLANE_POST or site_plane.max() > PLANE_PRE:
            raise ValueError("kernel input 'site_plane' must be 0 (postsynaptic) or 1 (presynaptic)")
        grid_half = 0.5 * p.n_tile * p.tile
        ix = np.floor((site_x + grid_half) / p.tile)
        iy = np.floor((site_y + grid_half) / p.tile)
        if ix.min() < 0 or iy.min() < 0 or ix.max() >= p.n_tile or iy.max() >= p.n_tile:
            raise ValueError("a membrane site lies outside the tile grid")
        # two sites on one tile: found while the kernel fills the tile map (STATUS_SHARED_TILE)
    return site_type, site_state, site_plane, site_x, site_y


cdef void _copy_sites(Sim *s, tuple sites):
    cdef Py_ssize_t k, n = len(sites[0])
    cdef int32_t *site_type = <int32_t*> _ptr(sites[0])
    cdef int32_t *site_state = <int32_t*> _ptr(sites[1])
    cdef int8_t *site_plane = <int8_t*> _ptr(sites[2])
    cdef double *site_x = <double*> _ptr(sites[3])
    cdef double *site_y = <double*> _ptr(sites[4])
    for k in range(n):
        s.site_type[k] = site_type[k]
        s.site_state[k] = site_state[k]
        s.site_plane[k] = site_plane[k]
        s.site_x[k] = site_x[k]
        s.site_y[k] = site_y[k]


cdef tuple _check_volume_rows(PreparedModel p, object run):
    # volume sites as counts per (type, state, voxel); returns the rows and the records they need
    n_rows = run.n_volume_rows
    vol_type = _array(run, "volume_type", np.int32, n_rows)
    vol_state = _array(run, "volume_state", np.int32, n_rows)
    vol_voxel = _array(run, "volume_voxel", np.int32, n_rows)
    vol_count = _array(run, "volume_count", np.int32, n_rows)
    a = p.arrays
    n_records = 0
    if n_rows:
        if vol_type.min() < 0 or vol_type.max() >= p.n_types or np.any(a["type_volume_index"][vol_type] < 0):
            raise ValueError("kernel input 'volume_type' must name volume site types")
        if vol_state.min() < 0 or vol_state.max() >= p.n_states or np.any(a["state_type"][vol_state] != vol_type):
            raise ValueError("kernel input 'volume_state' holds a state of another site type")
        if np.any(a["state_ligands"][vol_state] != 0):
            raise ValueError("kernel input 'volume_state' starts a volume site holding transmitter")
        if vol_voxel.min() < 0 or vol_voxel.max() >= p.nv or vol_count.min() < 0:
            raise ValueError("kernel input 'volume_voxel'/'volume_count' out of range")
        if np.any(a["voxel_weight"][vol_voxel[vol_count > 0]] == 0):
            raise ValueError("kernel input 'volume_voxel' places sites in a voxel outside the shell")
        ground = a["type_ground"][vol_type] == vol_state
        n_records = int(vol_count[~ground & (a["exit_total"][vol_state] > 0)].sum())
    return vol_type, vol_state, vol_voxel, vol_count, n_records


cdef object _sites_per_voxel(PreparedModel p, tuple volume_rows):
    # [n_volume_types, n_vox^3] sites of each volume type per voxel: fixed for the run (sites do not move)
    vol_type, _, vol_voxel, vol_count = volume_rows[:4]
    sites = np.zeros(p.n_volume_types * p.nv, dtype=np.int64)
    if len(vol_type):
        np.add.at(sites, p.arrays["type_volume_index"][vol_type].astype(np.int64) * p.nv + vol_voxel, vol_count)
    return sites.reshape(p.n_volume_types, p.nv)


cdef tuple _check_injections(PreparedModel p, object run):
    # the injection schedule: sorted times, counts, species, slab heights, volume only with a volume
    n_inj = run.n_inject
    inj_time = _array(run, "inject_time_us", np.float64, n_inj)
    inj_count = _array(run, "inject_count", np.int64, n_inj)
    inj_x = _array(run, "inject_x_um", np.float64, n_inj)
    inj_y = _array(run, "inject_y_um", np.float64, n_inj)
    inj_z = _array(run, "inject_z_um", np.float64, n_inj)
    inj_species = _array(run, "inject_species", np.int32, n_inj)
    inj_volume = _array(run, "inject_volume", np.int8, n_inj)
    if n_inj:
        if np.any(np.diff(inj_time) < 0):
            raise ValueError("kernel input 'inject_time_us' must be sorted")
        # summed in floating point, which cannot wrap around as an int64 sum can
        if inj_count.min() < 0 or inj_count.sum(dtype=np.float64) >= 2.0 ** 40:
            raise ValueError("kernel input 'inject_count' must be >= 0 and sum to < 2^40 molecules")
        if inj_species.min() < 0 or inj_species.max() >= p.n_species:
            raise ValueError("kernel input 'inject_species' has an unknown species")
        slab_inj = inj_volume == 0
        if np.any(slab_inj) and (np.any(inj_z[slab_inj] < 0) or np.any(inj_z[slab_inj] > p.h)):
            raise ValueError("a slab injection lies outside 0 <= z <= h")
        if np.any(~slab_inj) and p.outside != OUTSIDE_VOLUME:
            raise ValueError("volume injections need a model with a volume outside")
    n_slab = int(inj_count[inj_volume == 0].sum()) if n_inj else 0
    n_volume = int(inj_count[inj_volume != 0].sum()) if n_inj else 0
    return inj_time, inj_count, inj_x, inj_y, inj_z, inj_species, inj_volume, n_slab, n_volume


cdef void _wire_injections(Sim *s, tuple injections):
    s.n_inject = len(injections[0])
    s.next_inject = 0
    s.inj_time = <double*> _ptr(injections[0])
    s.inj_count = <int64_t*> _ptr(injections[1])
    s.inj_x = <double*> _ptr(injections[2])
    s.inj_y = <double*> _ptr(injections[3])
    s.inj_z = <double*> _ptr(injections[4])
    s.inj_species = <int32_t*> _ptr(injections[5])
    s.inj_volume = <int8_t*> _ptr(injections[6])


cdef dict _positions(Sim *s):
    return {
        "slab_positions": np.array([[s.slab.x[i], s.slab.y[i], s.slab.z[i]] for i in range(s.slab.n)],
                                   dtype=np.float64).reshape(-1, 3),
        "volume_positions": np.array([[s.vol.x[i], s.vol.y[i], s.vol.z[i]] for i in range(s.vol.n)],
                                     dtype=np.float64).reshape(-1, 3),
        "slab_species": np.array([s.slab.species[i] for i in range(s.slab.n)], dtype=np.int32),
        # periodic images each volume molecule crossed (x, y, z): its unwrapped position is
        # volume_positions + volume_images * box side (all 0 outside a periodic box)
        "volume_images": np.array([s.vol.image[j] for j in range(3 * s.vol.n)], dtype=np.int64).reshape(-1, 3),
    }


def standard_normals(object seed_words, Py_ssize_t n, bint bulk=True):
    """Draw n normals from the kernel's generator (test hook for the sampler's statistics).

    ``bulk=True`` uses the block fill that the stepping loops use (blocks of NORMAL_BLOCK, the
    last one shorter, from the lane generators); ``bulk=False`` the one-at-a-time sampler used for
    rare draws (the serial stream).
    """
    cdef mcsyn_rng r
    cdef mcsyn_lanes lanes
    cdef Py_ssize_t i = 0
    cdef int block
    seed = np.ascontiguousarray(seed_words, dtype=np.uint64)
    if seed.shape != (4,):
        raise ValueError("seed_words must hold 4 uint64 words")
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] view = out
    mcsyn_rng_seed(&r, <uint64_t*> _ptr(seed))
    mcsyn_lanes_seed(&lanes, &r)
    with nogil:
        if bulk:
            while i < n:
                block = <int> min(<Py_ssize_t> NORMAL_BLOCK, n - i)
                mcsyn_fill_normals(&r, &lanes, &view[i], block)
                i += block
        else:
            for i in range(n):
                view[i] = mcsyn_normal(&r)
    return out


def lane_words(object seed_words, Py_ssize_t rows):
    """The block fill's raw 64-bit words for rows rows, word i from lane i % NORMAL_LANES, by the
    chosen path's lane draw (test hook: the words a run's fills use, before the halves become
    normals)."""
    cdef mcsyn_rng r
    cdef mcsyn_lanes lanes
    seed = np.ascontiguousarray(seed_words, dtype=np.uint64)
    if seed.shape != (4,):
        raise ValueError("seed_words must hold 4 uint64 words")
    if rows < 0 or rows > (1 << 24):
        raise ValueError(f"rows must lie in [0, 2**24], got {rows}")
    out = np.empty(rows * MCSYN_LANES, dtype=np.uint64)
    cdef uint32_t *raw = <uint32_t*> _ptr(out)
    mcsyn_rng_seed(&r, <uint64_t*> _ptr(seed))
    mcsyn_lanes_seed(&lanes, &r)
    with nogil:
        mcsyn_lanes_draw(&lanes, raw, <int> rows)
    return out


def supported_isas():
    """The vector paths this CPU can run, from "scalar" up; the last is the one chosen at import."""
    return tuple(name for level, name in enumerate(_ISA_NAMES) if mcsyn_isa_supported(level))


def current_isa():
    """The vector path the stepping loops use now."""
    return _ISA_NAMES[mcsyn_isa_now]


def set_isa(str name):
    """Force a vector path ("scalar", "avx2" or "avx512"; test hook). Every path gives the same bits
    for the same seed, so this changes only the speed; a path the CPU lacks raises ValueError."""
    if name not in _ISA_NAMES:
        raise ValueError(f"isa must be one of {_ISA_NAMES}, not {name!r}")
    if mcsyn_set_isa(_ISA_NAMES.index(name)) != 0:
        raise ValueError(f"this CPU cannot run the {name} path; it can run {supported_isas()}")


if _os.environ.get("MCSYN_ISA"):
    # pins a path for a whole process, e.g. to run the test suite on each one
    set_isa(_os.environ["MCSYN_ISA"])


def volume_site_counts(int64_t total, object voxel_class, object class_probability, object seed_words):
    """One run's volume sites over the voxels: ``total`` sites, multinomial with voxel i's
    probability proportional to ``class_probability[voxel_class[i]]`` (drawn as Poisson counts
    and then corrected to the total, exactly; see ``site_counts.pxi``).

    Parameters
    ----------
    total : int
        Sites to place, >= 0.
    voxel_class : numpy.ndarray of int32, shape (K,)
        Each voxel's probability class, in 0..C-1.
    class_probability : numpy.ndarray of float64, shape (C,)
        A voxel's (unnormalised) probability per class: finite, >= 0, and with some mass on the
        voxels when ``total`` > 0.
    seed_words : numpy.ndarray of uint64, shape (4,)
        The generator's state for this draw.

    Returns
    -------
    numpy.ndarray of int32, shape (K,): the sites per voxel, summing to ``total``.
    """
    cdef mcsyn_rng r
    seed = np.ascontiguousarray(seed_words, dtype=np.uint64)
    if seed.shape != (4,):
        raise ValueError(f"seed_words must hold 4 uint64 words, got shape {seed.shape}")
    classes = np.ascontiguousarray(voxel_class, dtype=np.int32)
    weights = np.ascontiguousarray(class_probability, dtype=np.float64)
    if classes.ndim != 1 or weights.ndim != 1:
        raise ValueError("voxel_class and class_probability must be one-dimensional")
    if total < 0:
        raise ValueError(f"total must be >= 0 sites, got {total}")
    if len(classes) and (classes.min() < 0 or classes.max() >= len(weights)):
        raise ValueError(f"voxel_class must lie in 0..{len(weights) - 1} (one per class_probability entry)")
    if not np.all(np.isfinite(weights)) or (len(weights) and weights.min() < 0.0):
        raise ValueError("class_probability must be finite and >= 0")
    cdef int status
    cdef int64_t n_voxels = len(classes), n_classes = len(weights)
    cdef int32_t *class_ptr = <int32_t*> _ptr(classes)
    cdef double *weight_ptr = <double*> _ptr(weights)
    members = np.zeros(4 * n_classes, dtype=np.int64)
    cdef int64_t *members_ptr = <int64_t*> _ptr(members)
    cdef double mass = 0.0, largest = 0.0
    with nogil:
        tally_classes(n_voxels, class_ptr, n_classes, weight_ptr, members_ptr, &mass, &largest)
    if total > 0 and not mass > 0.0:
        raise ValueError(f"{total} sites need voxels of positive probability; the voxels' total is {mass}")
    if total > 0 and total * largest / mass > 2 ** 30:
        raise ValueError(f"{total} sites would put more than 2**30 sites into one voxel on average "
                         "(the kernel counts a voxel's sites in 32 bits); use more voxels or fewer sites")
    out = np.zeros(len(classes), dtype=np.int32)
    if total == 0:
        return out
    mcsyn_rng_seed(&r, <uint64_t*> _ptr(seed))
    cdef int32_t *out_ptr = <int32_t*> _ptr(out)
    with nogil:
        status = draw_volume_counts(&r, total, n_voxels, class_ptr, n_classes, weight_ptr, members_ptr,
                                    mass, largest, out_ptr)
    if status != STATUS_OK:
        raise MemoryError("mcsyn kernel could not allocate memory for the volume sites' draw")
    return out


def uniforms(object seed_words, Py_ssize_t n):
    """Draw n uniforms on [0, 1) from the kernel's generator (test hook)."""
    cdef mcsyn_rng r
    cdef Py_ssize_t i
    seed = np.ascontiguousarray(seed_words, dtype=np.uint64)
    if seed.shape != (4,):
        raise ValueError("seed_words must hold 4 uint64 words")
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] view = out
    mcsyn_rng_seed(&r, <uint64_t*> _ptr(seed))
    with nogil:
        for i in range(n):
            view[i] = mcsyn_uniform(&r)
    return out
