# cython: language_level=3
"""Molecule-level kernel of mcsyn: one synapse run on plain arrays, without the GIL.

Units inside the kernel: length in µm, time in µs. Every rate arrives already converted to the
quantity the loop needs (a per-hit probability, a hazard per step, a rate per µs), so the loop
does no unit arithmetic. The Python layer (``mcsyn.compile``) validates the model and builds
those arrays; this module re-checks array sizes at entry and never trusts indices it did not check.

Geometry (see docs in ``mcsyn/geometry.py``): a slab 0 <= z <= h between the postsynaptic (z = 0,
plane 0) and presynaptic (z = h, plane 1) membranes. The slab is the cleft for r < R_cleft and,
with an explicit band, continues to R_outer. Outside kinds: closed rim, absorbing rim, band, or a
homogenised volume (a spherical shell R_inner < |x| < R_domain around the terminal).

Time stepping: slab molecules take fine steps (dt_fine); volume molecules take one coarse step
(dt_coarse = K dt_fine) per window. Site transitions are exact exponential waiting times kept in a
binary heap, executed at the first fine step boundary after they fall due.
"""
from libc.stdint cimport uint64_t, uint32_t, int64_t, int32_t, int8_t, uint8_t
from libc.stdlib cimport malloc, realloc, free, calloc
from libc.math cimport sqrt, floor, exp, log, fabs, ceil, cbrt
from libc.string cimport memset

import numpy as np
cimport numpy as cnp

cnp.import_array()

from random cimport (mcsyn_rng, mcsyn_ziggurat_init, mcsyn_rng_seed, mcsyn_uniform, mcsyn_exponential,
                     mcsyn_normal, mcsyn_fill_normals)
from constants cimport *
from state cimport Pool, Sim
from geometry cimport *

mcsyn_ziggurat_init()

# Python-visible copies of the constants in constants.pxd (Cython exports a cpdef enum only from a
# module's own scope); tests/test_kernel_api.py checks that every name there is here.
globals().update(
    OUTSIDE_CLOSED=OUTSIDE_CLOSED, OUTSIDE_OPEN=OUTSIDE_OPEN, OUTSIDE_BAND=OUTSIDE_BAND,
    OUTSIDE_VOLUME=OUTSIDE_VOLUME,
    EXIT_PLAIN=EXIT_PLAIN, EXIT_UNBIND=EXIT_UNBIND, EXIT_UPTAKE=EXIT_UPTAKE, EXIT_DEGRADE=EXIT_DEGRADE,
    EXIT_EFFLUX=EXIT_EFFLUX,
    PLANE_POST=PLANE_POST, PLANE_PRE=PLANE_PRE, PLANE_VOLUME=PLANE_VOLUME, PLANE_AGGREGATE=PLANE_AGGREGATE,
    STATUS_OK=STATUS_OK, STATUS_NO_MEMORY=STATUS_NO_MEMORY, STATUS_SHARED_TILE=STATUS_SHARED_TILE,
    SERIES_RELEASED=SERIES_RELEASED, SERIES_FREE_CLEFT=SERIES_FREE_CLEFT, SERIES_FREE_BAND=SERIES_FREE_BAND,
    SERIES_FREE_VOLUME=SERIES_FREE_VOLUME, SERIES_BOUND=SERIES_BOUND, SERIES_TAKEN_UP=SERIES_TAKEN_UP,
    SERIES_ESCAPED=SERIES_ESCAPED, SERIES_DEGRADED=SERIES_DEGRADED, SERIES_EFFLUXED=SERIES_EFFLUXED,
    SERIES_BINDING_EVENTS=SERIES_BINDING_EVENTS, N_SERIES=N_SERIES,
    ENTRY_DEPTH_QUANTILES=ENTRY_DEPTH_QUANTILES, NORMAL_BLOCK=NORMAL_BLOCK, CHUNK=CHUNK,
    SORT_EVERY=SORT_EVERY, SORT_CELL_TILES=SORT_CELL_TILES)


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

# Implementation, in dependency order (each part uses only the ones above it):
include "pools.pxi"
include "heap.pxi"
include "sites.pxi"
include "placement.pxi"
include "events.pxi"
include "slab.pxi"
include "volume.pxi"
include "loop.pxi"
include "setup.pxi"

# ==================================================================================================
# Python entry points

cdef object _array(object owner, str name, object dtype, Py_ssize_t length):
    arr = getattr(owner, name)
    if not isinstance(arr, np.ndarray) or arr.dtype != np.dtype(dtype) or arr.ndim != 1 \
            or not arr.flags.c_contiguous:
        raise TypeError(f"kernel input {name!r} must be a C-contiguous 1-d {np.dtype(dtype)} array")
    if length >= 0 and arr.shape[0] != length:
        raise ValueError(f"kernel input {name!r} has length {arr.shape[0]}, expected {length}")
    return arr

cdef void* _ptr(object arr):
    return cnp.PyArray_DATA(<cnp.ndarray> arr)


def simulate(object model, object run, object seed_words, bint keep_positions=False):
    """Run one simulation of a compiled model.

    Parameters
    ----------
    model : mcsyn.compile.KernelModel
        Arrays and scalars describing geometry, species and kinetic schemes (µm, µs units).
    run : mcsyn.compile.KernelRun
        Per-run site positions and initial states, and the injection schedule.
    seed_words : numpy.ndarray of uint64, shape (4,)
        Generator state from ``SeedSequence.generate_state(4, np.uint64)``.
    keep_positions : bool
        Also return the final positions of free molecules.

    Returns
    -------
    dict with ``series`` (int64, [n_samples, len(SERIES_COLUMNS)]), ``states``
    (int64, [n_samples, n_states]) and, when asked, ``slab_positions`` and ``volume_positions``.
    """
    cdef Sim s
    cdef int status = 0
    cdef int sp, ty, g
    cdef Py_ssize_t n_species, n_states, n_types, n_bind, n_exit, n_sites, n_inj
    memset(&s, 0, sizeof(Sim))

    seed = np.ascontiguousarray(seed_words, dtype=np.uint64)
    if seed.shape != (4,):
        raise ValueError(f"seed_words must hold 4 uint64 words, got shape {seed.shape}")
    mcsyn_rng_seed(&s.rng, <uint64_t*> _ptr(seed))
    s.normals_used = NORMAL_BLOCK

    s.h = model.h_um
    s.r_cleft = model.r_cleft_um
    s.r_outer = model.r_outer_um
    s.r_inner = model.r_inner_um
    s.r_domain = model.r_domain_um
    s.outside = model.outside
    s.outer_absorbing = model.outer_absorbing
    s.domain_reflects = model.domain_reflects
    s.r_mouth = model.r_mouth_um
    s.mouth_cos = model.mouth_cos
    s.rim = s.r_outer if s.outside == OUTSIDE_BAND else s.r_cleft
    s.reflecting_rim = s.outside == OUTSIDE_CLOSED or (s.outside == OUTSIDE_BAND and not s.outer_absorbing)
    s.dt_fine = model.dt_fine_us
    s.steps_per_coarse = model.steps_per_coarse
    s.dt_coarse = s.dt_fine * s.steps_per_coarse
    s.n_coarse = model.n_coarse
    s.sample_every = model.sample_every
    s.n_samples = model.n_samples
    s.tile = model.tile_um
    s.n_tile = model.n_tile
    s.grid_half = 0.5 * s.n_tile * s.tile
    s.inv_tile = 1.0 / s.tile if s.tile > 0 else 0.0
    s.voxel = model.voxel_um
    s.n_vox = model.n_vox
    if not (s.h > 0 and s.dt_fine > 0 and s.steps_per_coarse >= 1 and s.n_coarse >= 1
            and s.sample_every >= 1 and s.tile > 0 and s.n_tile >= 1 and s.voxel > 0 and s.n_vox >= 1):
        raise ValueError("kernel model has a non-positive size or step; build it with mcsyn.compile")
    if s.outside not in (OUTSIDE_CLOSED, OUTSIDE_OPEN, OUTSIDE_BAND, OUTSIDE_VOLUME):
        raise ValueError(f"kernel model has unknown outside kind {s.outside}")
    if s.n_samples != (s.n_coarse * s.steps_per_coarse) // s.sample_every + 1:
        raise ValueError("kernel model n_samples does not match its step counts")

    n_species = model.n_species
    n_states = model.n_states
    n_types = model.n_types
    if n_species < 1 or n_states < 0 or n_types < 0:
        raise ValueError("kernel model needs at least one species")
    s.n_species = <int> n_species
    s.n_states = <int> n_states
    s.n_types = <int> n_types

    a_sigma_fine = _array(model, "sigma_fine_um", np.float64, n_species)
    a_sigma_volume = _array(model, "sigma_volume_um", np.float64, n_species)
    a_hz_cleft = _array(model, "hazard_cleft", np.float64, n_species)
    a_hz_band = _array(model, "hazard_band", np.float64, n_species)
    a_hz_volume = _array(model, "hazard_volume", np.float64, n_species)
    a_enter = _array(model, "enter_probability", np.float64, n_species)
    a_entry_depth = _array(model, "entry_depth_um", np.float64, n_species * ENTRY_DEPTH_QUANTILES)
    if not np.all((a_entry_depth >= 0) & (a_entry_depth <= model.r_cleft_um)):
        raise ValueError("kernel input 'entry_depth_um' must lie in [0, r_cleft_um]")
    if not np.all((a_enter >= 0) & (a_enter <= 1)):
        raise ValueError("kernel input 'enter_probability' must lie in [0, 1]")
    s.volume_enters_slab = s.outside == OUTSIDE_VOLUME and bool(np.any(a_enter > 0))
    if s.outside == OUTSIDE_VOLUME and not (0.0 < s.r_inner <= s.r_mouth < s.r_domain
                                            and 0.0 <= s.mouth_cos <= 1.0):
        raise ValueError("kernel model needs 0 < r_inner_um <= r_mouth_um < r_domain_um and 0 <= mouth_cos <= 1")
    a_state_type = _array(model, "state_type", np.int32, n_states)
    a_state_ligands = _array(model, "state_ligands", np.int32, n_states)
    a_bind_start = _array(model, "bind_start", np.int32, n_states + 1)
    n_bind = a_bind_start[n_states] if n_states > 0 else 0
    a_bind_to = _array(model, "bind_to", np.int32, n_bind)
    a_bind_species = _array(model, "bind_species", np.int32, n_bind)
    a_bind_value = _array(model, "bind_value", np.float64, n_bind)
    a_exit_start = _array(model, "exit_start", np.int32, n_states + 1)
    n_exit = a_exit_start[n_states] if n_states > 0 else 0
    a_exit_to = _array(model, "exit_to", np.int32, n_exit)
    a_exit_kind = _array(model, "exit_kind", np.int32, n_exit)
    a_exit_species = _array(model, "exit_species", np.int32, n_exit)
    a_exit_rate = _array(model, "exit_rate_per_us", np.float64, n_exit)
    a_type_volume = _array(model, "type_volume_index", np.int32, n_types)
    a_type_ground = _array(model, "type_ground", np.int32, n_types)

    # index checks: everything the loop will dereference
    if n_states and (np.any(np.diff(a_bind_start) < 0) or a_bind_start[0] != 0
                     or np.any(np.diff(a_exit_start) < 0) or a_exit_start[0] != 0):
        raise ValueError("kernel model transition offsets are not monotone from 0")
    for arr, hi, name in ((a_bind_to, n_states, "bind_to"), (a_exit_to, n_states, "exit_to"),
                          (a_bind_species, n_species, "bind_species"),
                          (a_exit_species, n_species, "exit_species"),
                          (a_state_type, n_types, "state_type"), (a_type_ground, n_states, "type_ground")):
        if arr.size and (arr.min() < 0 or arr.max() >= hi):
            raise ValueError(f"kernel input {name!r} has an index outside [0, {hi})")
    if a_exit_kind.size and (a_exit_kind.min() < EXIT_PLAIN or a_exit_kind.max() > EXIT_EFFLUX):
        raise ValueError("kernel input 'exit_kind' has an unknown kind")
    if np.any(a_exit_rate < 0) or np.any(a_bind_value < 0) or np.any(a_sigma_fine < 0) \
            or np.any(a_sigma_volume < 0) or np.any(a_hz_cleft < 0) or np.any(a_hz_band < 0) \
            or np.any(a_hz_volume < 0):
        raise ValueError("kernel model has a negative rate, probability or step size")
    n_volume_types = int(np.sum(a_type_volume >= 0))
    if n_types and not np.array_equal(np.sort(a_type_volume[a_type_volume >= 0]), np.arange(n_volume_types)):
        raise ValueError("kernel input 'type_volume_index' must number volume types 0..n-1")
    s.n_volume_types = n_volume_types

    a_exit_total = np.zeros(n_states, dtype=np.float64)
    if n_exit:
        np.add.at(a_exit_total, np.repeat(np.arange(n_states), np.diff(a_exit_start)), a_exit_rate)

    # per-species flags and the volume binding hazard per free site
    membrane_binding = np.zeros(n_species, dtype=np.intc)
    vol_binding = np.zeros(n_species, dtype=np.intc)
    vol_bind_hazard = np.zeros(max(n_volume_types, 1) * n_species, dtype=np.float64)
    for g in range(n_states):
        ty = a_state_type[g]
        for b in range(a_bind_start[g], a_bind_start[g + 1]):
            sp = a_bind_species[b]
            if a_type_volume[ty] >= 0:
                if g != a_type_ground[ty]:
                    raise ValueError("volume site types may bind only from their ground state")
                vol_binding[sp] = 1
                vol_bind_hazard[a_type_volume[ty] * n_species + sp] += a_bind_value[b]
            else:
                membrane_binding[sp] = 1
    for g in range(n_states):
        if a_type_volume[a_state_type[g]] >= 0:
            continue
        sl = slice(a_bind_start[g], a_bind_start[g + 1])
        per_species = np.bincount(a_bind_species[sl], weights=a_bind_value[sl], minlength=n_species)
        if per_species.size and per_species.max() > 1.0 + 1e-12:
            raise ValueError(f"per-hit binding probabilities from state {g} add up to "
                             f"{per_species.max():.3g} > 1")
    slab_hazard = ((a_hz_cleft > 0) | (a_hz_band > 0)).astype(np.intc)

    # per-run inputs: membrane sites one by one, volume sites as counts per (type, state, voxel)
    n_sites = run.n_sites
    a_site_type = _array(run, "site_type", np.int32, n_sites)
    a_site_state = _array(run, "site_state", np.int32, n_sites)
    a_site_plane = _array(run, "site_plane", np.int8, n_sites)
    a_site_x = _array(run, "site_x_um", np.float64, n_sites)
    a_site_y = _array(run, "site_y_um", np.float64, n_sites)
    if n_sites:
        if a_site_type.min() < 0 or a_site_type.max() >= n_types or np.any(a_type_volume[a_site_type] >= 0):
            raise ValueError("kernel input 'site_type' must name membrane site types")
        if a_site_state.min() < 0 or a_site_state.max() >= n_states or np.any(a_state_type[a_site_state] != a_site_type):
            raise ValueError("kernel input 'site_state' holds a state of another site type")
        if a_site_plane.min() < PLANE_POST or a_site_plane.max() > PLANE_PRE:
            raise ValueError("kernel input 'site_plane' must be 0 (postsynaptic) or 1 (presynaptic)")
        ix = np.floor((a_site_x + s.grid_half) / s.tile)
        iy = np.floor((a_site_y + s.grid_half) / s.tile)
        if ix.min() < 0 or iy.min() < 0 or ix.max() >= s.n_tile or iy.max() >= s.n_tile:
            raise ValueError("a membrane site lies outside the tile grid")
        # two sites on one tile: found while the kernel fills the tile map (status STATUS_SHARED_TILE)
    nv = s.n_vox * s.n_vox * s.n_vox
    if n_volume_types and nv * n_volume_types > 2 ** 31 - 2:
        raise ValueError("voxel grid too large for the kernel")
    a_voxel_weight = _array(model, "voxel_weight", np.float64, nv if n_volume_types else -1)
    if n_volume_types and (np.any(a_voxel_weight < 0) or not np.all(np.isfinite(a_voxel_weight))):
        raise ValueError("kernel input 'voxel_weight' must be finite and >= 0")
    n_rows = run.n_volume_rows
    a_vol_type = _array(run, "volume_type", np.int32, n_rows)
    a_vol_state = _array(run, "volume_state", np.int32, n_rows)
    a_vol_voxel = _array(run, "volume_voxel", np.int32, n_rows)
    a_vol_count = _array(run, "volume_count", np.int32, n_rows)
    n_records = 0
    if n_rows:
        if a_vol_type.min() < 0 or a_vol_type.max() >= n_types or np.any(a_type_volume[a_vol_type] < 0):
            raise ValueError("kernel input 'volume_type' must name volume site types")
        if a_vol_state.min() < 0 or a_vol_state.max() >= n_states or np.any(a_state_type[a_vol_state] != a_vol_type):
            raise ValueError("kernel input 'volume_state' holds a state of another site type")
        if np.any(a_state_ligands[a_vol_state] != 0):
            raise ValueError("kernel input 'volume_state' starts a volume site holding transmitter")
        if a_vol_voxel.min() < 0 or a_vol_voxel.max() >= nv or a_vol_count.min() < 0:
            raise ValueError("kernel input 'volume_voxel'/'volume_count' out of range")
        if np.any(a_voxel_weight[a_vol_voxel[a_vol_count > 0]] == 0):
            raise ValueError("kernel input 'volume_voxel' places sites in a voxel outside the shell")
        ground = a_type_ground[a_vol_type] == a_vol_state
        n_records = int(a_vol_count[~ground & (a_exit_total[a_vol_state] > 0)].sum())
    if n_sites + n_volume_types + n_records >= 2 ** 31 - 1:
        raise ValueError("too many sites for the kernel (limit 2^31 - 2)")

    n_inj = run.n_inject
    a_inj_time = _array(run, "inject_time_us", np.float64, n_inj)
    a_inj_count = _array(run, "inject_count", np.int64, n_inj)
    a_inj_x = _array(run, "inject_x_um", np.float64, n_inj)
    a_inj_y = _array(run, "inject_y_um", np.float64, n_inj)
    a_inj_z = _array(run, "inject_z_um", np.float64, n_inj)
    a_inj_species = _array(run, "inject_species", np.int32, n_inj)
    a_inj_volume = _array(run, "inject_volume", np.int8, n_inj)
    if n_inj:
        if np.any(np.diff(a_inj_time) < 0):
            raise ValueError("kernel input 'inject_time_us' must be sorted")
        # summed in floating point, which cannot wrap around as an int64 sum can
        if a_inj_count.min() < 0 or a_inj_count.sum(dtype=np.float64) >= 2.0 ** 40:
            raise ValueError("kernel input 'inject_count' must be >= 0 and sum to < 2^40 molecules")
        if a_inj_species.min() < 0 or a_inj_species.max() >= n_species:
            raise ValueError("kernel input 'inject_species' has an unknown species")
        slab_inj = a_inj_volume == 0
        if np.any(slab_inj) and (np.any(a_inj_z[slab_inj] < 0) or np.any(a_inj_z[slab_inj] > s.h)):
            raise ValueError("a slab injection lies outside 0 <= z <= h")
        if np.any(~slab_inj) and s.outside != OUTSIDE_VOLUME:
            raise ValueError("volume injections need a model with a volume outside")

    cdef Py_ssize_t n_slab_inj = int(a_inj_count[a_inj_volume == 0].sum()) if n_inj else 0
    cdef Py_ssize_t n_volume_inj = int(a_inj_count[a_inj_volume != 0].sum()) if n_inj else 0

    series = np.zeros((s.n_samples, N_SERIES), dtype=np.int64)
    states = np.zeros((s.n_samples, max(n_states, 1)), dtype=np.int64)
    state_count = np.zeros(max(n_states, 1), dtype=np.int64)
    tile_site = np.zeros(2 * s.n_tile * s.n_tile + 1, dtype=np.int32)
    tile_code = np.zeros(2 * s.n_tile * s.n_tile + 1, dtype=np.uint8)
    s.no_tile = 2 * s.n_tile * s.n_tile
    bind_total0 = np.zeros(max(n_states, 1), dtype=np.float64)
    for g in range(n_states):
        if a_type_volume[a_state_type[g]] < 0:
            sl = slice(a_bind_start[g], a_bind_start[g + 1])
            bind_total0[g] = a_bind_value[sl][a_bind_species[sl] == 0].sum()
    with np.errstate(divide="ignore"):
        bind_hazard0 = -np.log1p(-np.minimum(bind_total0, 1.0))   # +inf where a hit always binds
    # states with the same hazard share a code; code 0 is "no binding"
    code_hazard, state_code = np.unique(np.concatenate(([0.0], bind_hazard0)), return_inverse=True)
    if code_hazard[0] != 0.0 or code_hazard.size > 256:
        raise ValueError(f"the kernel holds at most 255 distinct per-hit binding probabilities of "
                         f"the first species; this model has {code_hazard.size - 1}")
    state_code = np.ascontiguousarray(state_code[1:], dtype=np.uint8)
    vox_free = np.zeros(max(n_volume_types * nv, 1), dtype=np.int32)
    ground_exits = n_volume_types and any(
        a_exit_total[a_type_ground[ty]] > 0 for ty in range(n_types) if a_type_volume[ty] >= 0)
    fenwick = np.zeros(n_volume_types * (nv + 1) if ground_exits else 1, dtype=np.int64)
    free_total = np.zeros(max(n_volume_types, 1), dtype=np.int64)
    vox_hazard0 = np.zeros(nv if n_volume_types else 1, dtype=np.float64)
    volume_type_of = np.zeros(max(n_volume_types, 1), dtype=np.int32)
    for ty in range(n_types):
        if a_type_volume[ty] >= 0:
            volume_type_of[a_type_volume[ty]] = ty
    a_vol_count_c = np.ascontiguousarray(a_vol_count)
    capacity = n_sites + n_volume_types + n_records + 1024

    s.sigma_fine = <double*> _ptr(a_sigma_fine)
    s.sigma_volume = <double*> _ptr(a_sigma_volume)
    s.hazard_cleft = <double*> _ptr(a_hz_cleft)
    s.hazard_band = <double*> _ptr(a_hz_band)
    s.hazard_volume = <double*> _ptr(a_hz_volume)
    s.enter_probability = <double*> _ptr(a_enter)
    s.entry_depth = <double*> _ptr(a_entry_depth)
    s.membrane_binding = <int*> _ptr(membrane_binding)
    s.any_membrane_binding = int(membrane_binding.any())
    s.sort_countdown = 0
    s.slab_hazard = <int*> _ptr(slab_hazard)
    s.state_ligands = <int32_t*> _ptr(a_state_ligands)
    s.bind_start = <int32_t*> _ptr(a_bind_start)
    s.bind_to = <int32_t*> _ptr(a_bind_to)
    s.bind_species = <int32_t*> _ptr(a_bind_species)
    s.bind_value = <double*> _ptr(a_bind_value)
    s.exit_start = <int32_t*> _ptr(a_exit_start)
    s.exit_to = <int32_t*> _ptr(a_exit_to)
    s.exit_kind = <int32_t*> _ptr(a_exit_kind)
    s.exit_species = <int32_t*> _ptr(a_exit_species)
    s.exit_rate = <double*> _ptr(a_exit_rate)
    s.exit_total = <double*> _ptr(a_exit_total)
    s.type_volume_index = <int32_t*> _ptr(a_type_volume)
    s.type_ground = <int32_t*> _ptr(a_type_ground)
    s.vol_bind_hazard = <double*> _ptr(vol_bind_hazard)
    s.vol_binding = <int*> _ptr(vol_binding)
    s.voxel_weight = <double*> _ptr(a_voxel_weight)
    s.n_membrane = n_sites
    s.tile_site = <int32_t*> _ptr(tile_site)
    s.tile_code = <uint8_t*> _ptr(tile_code)
    s.code_hazard = <double*> _ptr(code_hazard)
    s.state_code = <uint8_t*> _ptr(state_code)
    s.bind_total0 = <double*> _ptr(bind_total0)
    s.vox_free = <int32_t*> _ptr(vox_free)
    s.fenwick = <int64_t*> _ptr(fenwick)
    s.free_total = <int64_t*> _ptr(free_total)
    s.vox_hazard0 = <double*> _ptr(vox_hazard0)
    s.volume_type_of = <int32_t*> _ptr(volume_type_of)
    s.state_count = <int64_t*> _ptr(state_count)
    s.series = <int64_t*> _ptr(series)
    s.states_series = <int64_t*> _ptr(states)
    s.n_inject = n_inj
    s.next_inject = 0
    s.inj_time = <double*> _ptr(a_inj_time)
    s.inj_count = <int64_t*> _ptr(a_inj_count)
    s.inj_x = <double*> _ptr(a_inj_x)
    s.inj_y = <double*> _ptr(a_inj_y)
    s.inj_z = <double*> _ptr(a_inj_z)
    s.inj_species = <int32_t*> _ptr(a_inj_species)
    s.inj_volume = <int8_t*> _ptr(a_inj_volume)

    if allocate_sites(&s, capacity) != 0:
        free_sites(&s)
        raise MemoryError("mcsyn kernel could not allocate memory for sites")
    cdef Py_ssize_t k_site, n_volume_rows = n_rows
    cdef int32_t *site_type_in = <int32_t*> _ptr(a_site_type)
    cdef int32_t *site_state_in = <int32_t*> _ptr(a_site_state)
    cdef int8_t *site_plane_in = <int8_t*> _ptr(a_site_plane)
    cdef double *site_x_in = <double*> _ptr(a_site_x)
    cdef double *site_y_in = <double*> _ptr(a_site_y)
    cdef int32_t *row_type = <int32_t*> _ptr(a_vol_type)
    cdef int32_t *row_state = <int32_t*> _ptr(a_vol_state)
    cdef int32_t *row_voxel = <int32_t*> _ptr(a_vol_voxel)
    cdef int32_t *row_count = <int32_t*> _ptr(a_vol_count_c)
    for k_site in range(n_sites):
        s.site_type[k_site] = site_type_in[k_site]
        s.site_state[k_site] = site_state_in[k_site]
        s.site_plane[k_site] = site_plane_in[k_site]
        s.site_x[k_site] = site_x_in[k_site]
        s.site_y[k_site] = site_y_in[k_site]
    with nogil:
        status = pool_init(&s.slab, n_slab_inj + 64)
        if status == 0:
            status = pool_init(&s.vol, n_volume_inj + 64)
        if status == 0:
            status = pool_init(&s.entering, 64)
        if status == 0:
            status = build_sites(&s, n_volume_rows, row_type, row_state, row_voxel, row_count)
        if status == 0:
            status = run_loop(&s)
    try:
        if status == STATUS_SHARED_TILE:
            raise ValueError("kernel input 'site_x_um'/'site_y_um': two membrane sites share one tile")
        if status != 0:
            raise MemoryError("mcsyn kernel could not allocate memory for molecules or sites")
        out = {"series": series, "states": states[:, :n_states]}
        if keep_positions:
            out["slab_positions"] = np.array(
                [[s.slab.x[i], s.slab.y[i], s.slab.z[i]] for i in range(s.slab.n)],
                dtype=np.float64).reshape(-1, 3)
            out["volume_positions"] = np.array(
                [[s.vol.x[i], s.vol.y[i], s.vol.z[i]] for i in range(s.vol.n)],
                dtype=np.float64).reshape(-1, 3)
            out["slab_species"] = np.array([s.slab.species[i] for i in range(s.slab.n)], dtype=np.int32)
        return out
    finally:
        pool_free(&s.slab)
        pool_free(&s.vol)
        pool_free(&s.entering)
        free_sites(&s)


def standard_normals(object seed_words, Py_ssize_t n, bint bulk=True):
    """Draw n normals from the kernel's generator (test hook for the sampler's statistics).

    ``bulk=True`` uses the block fill that the stepping loops use; ``bulk=False`` the one-at-a-time
    sampler used for rare draws.
    """
    cdef mcsyn_rng r
    cdef Py_ssize_t i = 0
    cdef int block
    seed = np.ascontiguousarray(seed_words, dtype=np.uint64)
    if seed.shape != (4,):
        raise ValueError("seed_words must hold 4 uint64 words")
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] view = out
    mcsyn_rng_seed(&r, <uint64_t*> _ptr(seed))
    with nogil:
        if bulk:
            while i < n:
                block = <int> min(<Py_ssize_t> NORMAL_BLOCK, n - i)
                mcsyn_fill_normals(&r, &view[i], block)
                i += block
        else:
            for i in range(n):
                view[i] = mcsyn_normal(&r)
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
