# ==================================================================================================
# the per-model half of an entry point: checks and derived tables, once per compiled model

cdef object _array(object owner, str name, object dtype, Py_ssize_t length):
    arr = getattr(owner, name)
    if not isinstance(arr, np.ndarray) or arr.dtype != np.dtype(dtype) or arr.ndim != 1 \
            or not arr.flags.c_contiguous:
        raise TypeError(f"kernel input {name!r} must be a C-contiguous 1-d {np.dtype(dtype)} array")
    if length >= 0 and arr.shape[0] != length:
        raise ValueError(f"kernel input {name!r} has length {arr.shape[0]}, expected {length}")
    return arr

cdef object _frozen(object arr):
    # a private read-only copy: a table checked once cannot change behind the check
    arr = np.array(arr, copy=True, order="C")
    arr.setflags(write=False)
    return arr

cdef void* _ptr(object arr):
    return cnp.PyArray_DATA(<cnp.ndarray> arr)


cdef class PreparedModel:
    """A kernel model checked once, with the tables derived from it; made by :func:`prepare`.

    Immutable: it holds read-only copies of the model's arrays, so the runs of an ensemble (threads
    included) share it. Pickles as its kernel model and is prepared again where it is unpickled.
    """
    cdef readonly object kernel_model
    cdef dict arrays            # name -> read-only array: everything the pointers below point into
    # geometry, µm
    cdef double h, r_cleft, r_outer, r_inner, r_domain, r_mouth, mouth_cos
    cdef int outside, outer_absorbing, domain_reflects, volume_enters_slab, domain_periodic
    # detector regions and voxel snapshots (outputs only: they never change a run's draws)
    cdef Py_ssize_t n_probes
    cdef int64_t snapshot_every, n_snapshots
    # time, µs
    cdef double dt_fine
    cdef int64_t steps_per_coarse, n_coarse, sample_every, n_samples
    # tiles and voxels
    cdef double tile           # µm
    cdef int64_t n_tile        # tiles per side
    cdef double voxel          # µm
    cdef int64_t n_vox         # voxels per side
    cdef int64_t nv            # voxels in the grid, n_vox³
    # sizes
    cdef Py_ssize_t n_species, n_states, n_types, n_volume_types
    cdef bint ground_exits     # some volume type leaves its ground state by a first-order exit
    cdef int any_membrane_binding
    # closed-loop feedback (feedback.pxi); fb_n_stim = 0: off
    cdef Py_ssize_t fb_n_stim, fb_n_trains
    cdef int fb_n_states
    cdef double fb_gain, fb_decay, fb_inv_sites

    def __reduce__(self):
        return prepare, (self.kernel_model,)

    def __repr__(self):
        return (f"<mcsyn._engine.PreparedModel: {self.n_species} species, {self.n_states} states, "
                f"{self.n_types} site types>")

    cdef const void* table(self, str name):
        return _ptr(self.arrays[name])


def prepare(object model):
    """Check a kernel model once and derive its per-model tables.

    Parameters
    ----------
    model : mcsyn.compile.KernelModel
        Arrays and scalars describing geometry, species and kinetic schemes (µm, µs units).

    Returns
    -------
    PreparedModel, to pass to :func:`simulate` for any number of runs.
    """
    cdef PreparedModel p = PreparedModel.__new__(PreparedModel)
    p.kernel_model = model
    p.arrays = {}
    _prepare_scalars(p, model)
    _prepare_schemes(p, model)
    _prepare_tables(p, model)
    _prepare_changes(p, model)
    _prepare_feedback(p, model)
    _prepare_probes(p, model)
    return p


cdef _prepare_scalars(PreparedModel p, object model):
    p.h = model.h_um
    p.r_cleft = model.r_cleft_um
    p.r_outer = model.r_outer_um
    p.r_inner = model.r_inner_um
    p.r_domain = model.r_domain_um
    p.outside = model.outside
    p.outer_absorbing = model.outer_absorbing
    p.domain_reflects = model.domain_reflects
    p.domain_periodic = model.domain_periodic
    if p.domain_periodic and (p.outside != OUTSIDE_VOLUME or p.domain_reflects):
        raise ValueError("kernel model: a periodic domain needs outside = OUTSIDE_VOLUME and domain_reflects = 0")
    p.r_mouth = model.r_mouth_um
    p.mouth_cos = model.mouth_cos
    p.dt_fine = model.dt_fine_us
    p.steps_per_coarse = model.steps_per_coarse
    p.n_coarse = model.n_coarse
    p.sample_every = model.sample_every
    p.n_samples = model.n_samples
    p.tile = model.tile_um
    p.n_tile = model.n_tile
    p.voxel = model.voxel_um
    p.n_vox = model.n_vox
    if not (p.h > 0 and p.dt_fine > 0 and p.steps_per_coarse >= 1 and p.n_coarse >= 1
            and p.sample_every >= 1 and p.tile > 0 and p.n_tile >= 1 and p.voxel > 0 and p.n_vox >= 1):
        raise ValueError("kernel model has a non-positive size or step; build it with mcsyn.compile")
    if p.outside not in (OUTSIDE_CLOSED, OUTSIDE_OPEN, OUTSIDE_BAND, OUTSIDE_VOLUME):
        raise ValueError(f"kernel model has unknown outside kind {p.outside}")
    if p.n_samples != (p.n_coarse * p.steps_per_coarse) // p.sample_every + 1:
        raise ValueError("kernel model n_samples does not match its step counts")
    if p.outside == OUTSIDE_VOLUME and not (0.0 < p.r_inner <= p.r_mouth < p.r_domain
                                            and 0.0 <= p.mouth_cos <= 1.0):
        raise ValueError("kernel model needs 0 < r_inner_um <= r_mouth_um < r_domain_um and 0 <= mouth_cos <= 1")
    p.n_species = model.n_species
    p.n_states = model.n_states
    p.n_types = model.n_types
    if p.n_species < 1 or p.n_states < 0 or p.n_types < 0:
        raise ValueError("kernel model needs at least one species")
    p.nv = p.n_vox * p.n_vox * p.n_vox
    p.snapshot_every = model.snapshot_every
    p.n_snapshots = (p.n_samples - 1) // p.snapshot_every + 1 if p.snapshot_every > 0 else 0
    if p.snapshot_every < 0 or (p.n_snapshots and p.n_vox * p.voxel < 2.0 * p.r_domain * (1.0 - 1e-9)):
        raise ValueError("kernel model: voxel snapshots need snapshot_every >= 0 and a voxel grid covering the domain")


cdef _prepare_probes(PreparedModel p, object model):
    cdef dict a = p.arrays
    a["probe_shape"] = _frozen(_array(model, "probe_shape", np.int32, -1))
    p.n_probes = a["probe_shape"].shape[0]
    a["probe_centre"] = _frozen(_array(model, "probe_centre_um", np.float64, 3 * p.n_probes))
    a["probe_radius"] = _frozen(_array(model, "probe_radius_um", np.float64, p.n_probes))
    a["probe_half_length"] = _frozen(_array(model, "probe_half_length_um", np.float64, p.n_probes))
    if p.n_probes and (a["probe_shape"].min() < PROBE_SPHERE or a["probe_shape"].max() > PROBE_CYLINDER
                       or np.any(a["probe_radius"] <= 0) or np.any(a["probe_half_length"] < 0)):
        raise ValueError("kernel input 'probe_*': unknown shape or a non-positive size")
    for name in ("probe_shape", "probe_centre", "probe_radius", "probe_half_length"):
        if a[name].size == 0:      # a pointer into an empty array is never read, but must exist
            a[name] = _frozen(np.zeros(1, dtype=a[name].dtype))


cdef _prepare_schemes(PreparedModel p, object model):
    # the model's own arrays, read-only copies, and every index the loop will dereference checked
    cdef Py_ssize_t n_species = p.n_species, n_states = p.n_states, n_types = p.n_types
    cdef dict a = p.arrays
    for name, key in (("sigma_fine_um", "sigma_fine"), ("sigma_volume_um", "sigma_volume"),
                      ("hazard_cleft", "hazard_cleft"), ("hazard_band", "hazard_band"),
                      ("hazard_volume", "hazard_volume"), ("enter_probability", "enter_probability")):
        a[key] = _frozen(_array(model, name, np.float64, n_species))
    a["entry_depth"] = _frozen(_array(model, "entry_depth_um", np.float64, n_species * ENTRY_DEPTH_QUANTILES))
    if not np.all((a["entry_depth"] >= 0) & (a["entry_depth"] <= p.r_cleft)):
        raise ValueError("kernel input 'entry_depth_um' must lie in [0, r_cleft_um]")
    if not np.all((a["enter_probability"] >= 0) & (a["enter_probability"] <= 1)):
        raise ValueError("kernel input 'enter_probability' must lie in [0, 1]")
    p.volume_enters_slab = p.outside == OUTSIDE_VOLUME and bool(np.any(a["enter_probability"] > 0))
    for name in ("state_type", "state_ligands"):
        a[name] = _frozen(_array(model, name, np.int32, n_states))
    for prefix, value_name, value_key in (("bind", "bind_value", "bind_value"),
                                          ("exit", "exit_rate_per_us", "exit_rate")):
        start = a[prefix + "_start"] = _frozen(_array(model, prefix + "_start", np.int32, n_states + 1))
        n_rows = start[n_states] if n_states > 0 else 0
        fields = ("to", "species") if prefix == "bind" else ("to", "kind", "species")
        for field in fields:
            a[f"{prefix}_{field}"] = _frozen(_array(model, f"{prefix}_{field}", np.int32, n_rows))
        a[value_key] = _frozen(_array(model, value_name, np.float64, n_rows))
    for name in ("type_volume_index", "type_ground"):
        a[name] = _frozen(_array(model, name, np.int32, n_types))
    if n_states and (np.any(np.diff(a["bind_start"]) < 0) or a["bind_start"][0] != 0
                     or np.any(np.diff(a["exit_start"]) < 0) or a["exit_start"][0] != 0):
        raise ValueError("kernel model transition offsets are not monotone from 0")
    for name, hi in (("bind_to", n_states), ("exit_to", n_states), ("bind_species", n_species),
                     ("exit_species", n_species), ("state_type", n_types), ("type_ground", n_states)):
        if a[name].size and (a[name].min() < 0 or a[name].max() >= hi):
            raise ValueError(f"kernel input {name!r} has an index outside [0, {hi})")
    if a["exit_kind"].size and (a["exit_kind"].min() < EXIT_PLAIN or a["exit_kind"].max() > EXIT_EFFLUX):
        raise ValueError("kernel input 'exit_kind' has an unknown kind")
    for name in ("exit_rate", "bind_value", "sigma_fine", "sigma_volume", "hazard_cleft", "hazard_band",
                 "hazard_volume"):
        if np.any(a[name] < 0):
            raise ValueError("kernel model has a negative rate, probability or step size")
    type_volume = a["type_volume_index"]
    p.n_volume_types = int(np.sum(type_volume >= 0))
    if n_types and not np.array_equal(np.sort(type_volume[type_volume >= 0]), np.arange(p.n_volume_types)):
        raise ValueError("kernel input 'type_volume_index' must number volume types 0..n-1")
    if p.n_volume_types and p.nv * p.n_volume_types > 2 ** 31 - 2:
        raise ValueError("voxel grid too large for the kernel")
    a["voxel_weight"] = _frozen(_array(model, "voxel_weight", np.float64, p.nv if p.n_volume_types else -1))
    if p.n_volume_types and (np.any(a["voxel_weight"] < 0) or not np.all(np.isfinite(a["voxel_weight"]))):
        raise ValueError("kernel input 'voxel_weight' must be finite and >= 0")


cdef _prepare_tables(PreparedModel p, object model):
    # derived per-model tables: exit totals, per-species flags, volume hazards, hazard codes
    cdef Py_ssize_t n_species = p.n_species, n_states = p.n_states, n_types = p.n_types
    cdef Py_ssize_t n_volume_types = p.n_volume_types, g, b, ty
    cdef dict a = p.arrays
    state_type, type_volume, type_ground = a["state_type"], a["type_volume_index"], a["type_ground"]
    bind_start, bind_species, bind_value = a["bind_start"], a["bind_species"], a["bind_value"]
    exit_total = np.zeros(n_states, dtype=np.float64)
    if a["exit_rate"].size:
        np.add.at(exit_total, np.repeat(np.arange(n_states), np.diff(a["exit_start"])), a["exit_rate"])
    membrane_binding = np.zeros(n_species, dtype=np.intc)
    vol_binding = np.zeros(n_species, dtype=np.intc)
    vol_bind_hazard = np.zeros(max(n_volume_types, 1) * n_species, dtype=np.float64)
    bind_total0 = np.zeros(max(n_states, 1), dtype=np.float64)
    for g in range(n_states):
        ty = state_type[g]
        sl = slice(bind_start[g], bind_start[g + 1])
        if type_volume[ty] >= 0:
            for b in range(bind_start[g], bind_start[g + 1]):
                if g != type_ground[ty]:
                    raise ValueError("volume site types may bind only from their ground state")
                vol_binding[bind_species[b]] = 1
                vol_bind_hazard[type_volume[ty] * n_species + bind_species[b]] += bind_value[b]
            continue
        for b in range(bind_start[g], bind_start[g + 1]):
            membrane_binding[bind_species[b]] = 1
        per_species = np.bincount(bind_species[sl], weights=bind_value[sl], minlength=n_species)
        if per_species.size and per_species.max() > 1.0 + 1e-12:
            raise ValueError(f"per-hit binding probabilities from state {g} add up to "
                             f"{per_species.max():.3g} > 1")
        bind_total0[g] = bind_value[sl][bind_species[sl] == 0].sum()
    # -log(1 - p), +inf where a hit always binds (log1p evaluated only where p < 1)
    bind_hazard0 = -np.log1p(-bind_total0, out=np.full_like(bind_total0, -np.inf), where=bind_total0 < 1.0)
    # states with the same hazard share a code; code 0 is "no binding"
    code_hazard, state_code = np.unique(np.concatenate(([0.0], bind_hazard0)), return_inverse=True)
    if code_hazard[0] != 0.0 or code_hazard.size > 256:
        raise ValueError(f"the kernel holds at most 255 distinct per-hit binding probabilities of "
                         f"the first species; this model has {code_hazard.size - 1}")
    volume_type_of = np.zeros(max(n_volume_types, 1), dtype=np.int32)
    for ty in range(n_types):
        if type_volume[ty] >= 0:
            volume_type_of[type_volume[ty]] = ty
    p.ground_exits = bool(n_volume_types) and bool(np.any(exit_total[type_ground[volume_type_of[:n_volume_types]]] > 0))
    p.any_membrane_binding = int(membrane_binding.any())
    slab_hazard = ((a["hazard_cleft"] > 0) | (a["hazard_band"] > 0)).astype(np.intc)
    for name, arr in (("exit_total", exit_total), ("membrane_binding", membrane_binding),
                      ("vol_binding", vol_binding), ("vol_bind_hazard", vol_bind_hazard),
                      ("bind_total0", bind_total0), ("code_hazard", code_hazard),
                      ("state_code", state_code[1:].astype(np.uint8)), ("volume_type_of", volume_type_of),
                      ("slab_hazard", slab_hazard)):
        a[name] = _frozen(arr)
