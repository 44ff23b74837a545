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

cdef extern from "mcsyn_random.h" nogil:
    ctypedef struct mcsyn_rng:
        pass
    void mcsyn_ziggurat_init()
    void mcsyn_rng_seed(mcsyn_rng *r, const uint64_t *words)
    uint64_t mcsyn_next_u64(mcsyn_rng *r)
    double mcsyn_uniform(mcsyn_rng *r)
    double mcsyn_exponential(mcsyn_rng *r)
    double mcsyn_normal(mcsyn_rng *r)
    void mcsyn_fill_normals(mcsyn_rng *r, double *buf, int n)
    enum: MCSYN_FILL_MAX

mcsyn_ziggurat_init()

# ==================================================================================================
# Constants shared with the Python layer (mcsyn/compile.py mirrors them)

cdef enum:
    OUTSIDE_CLOSED = 0      # reflecting cleft rim
    OUTSIDE_OPEN = 1        # absorbing cleft rim: leaving counts as escaped
    OUTSIDE_BAND = 2        # slab continues to R_outer
    OUTSIDE_VOLUME = 3      # homogenised extracellular volume beyond the rim

cdef enum:
    EXIT_PLAIN = 0          # first-order change of state, nothing else happens
    EXIT_UNBIND = 1         # a bound molecule is released next to the site
    EXIT_UPTAKE = 2         # the bound molecule is translocated: counted as taken up
    EXIT_DEGRADE = 3        # the bound molecule is destroyed by the site (enzyme)
    EXIT_EFFLUX = 4         # the site emits a new molecule (reverse transport): counted as released

cdef enum:
    SHARED_TILE = -2        # status of build_sites: two membrane sites on one tile (-1: out of memory)

cdef enum:
    PLANE_POST = 0
    PLANE_PRE = 1
    PLANE_VOLUME = 2
    PLANE_AGGREGATE = 3     # the aggregate clock of a volume type's ground-state exits

# time-series columns, in this order
SERIES_COLUMNS = ("released", "free_cleft", "free_band", "free_volume", "bound",
                  "taken_up", "escaped", "degraded", "effluxed", "binding_events")
DEF N_SERIES = 10

# ==================================================================================================
# C-level state of one run

ctypedef struct Pool:
    double *x
    double *y
    double *z
    double *clock           # remaining integrated hazard before a volume reaction or degradation
    int32_t *species
    Py_ssize_t n
    Py_ssize_t capacity

DEF ENTRY_DEPTH_QUANTILES = 257   # mcsyn/compile.py mirrors it
DEF NORMAL_BLOCK = 4095    # normals drawn per refill: a multiple of 3 (one step) and <= MCSYN_FILL_MAX

ctypedef struct Sim:
    mcsyn_rng rng
    double normals[NORMAL_BLOCK]    # pre-drawn normals for the stepping loops
    int normals_used
    # geometry, µm
    double h
    double r_cleft
    double r_outer
    double r_inner
    double r_domain
    int outside
    int outer_absorbing
    int domain_reflects         # 1: the sphere R_domain reflects (a closed cell of tissue); 0: absorbs
    # Exchange between the cleft rim and the volume. A molecule leaving the rim lands uniformly in
    # the mouth shell R_inner < |x| < r_mouth, |z| < mouth_cos |x|, at the azimuth where it left; a
    # volume molecule in that shell enters the slab with enter_probability[sp] per coarse step
    # (0 when the volume does not enter the cleft). compile chooses these so that the two fluxes
    # balance at equal concentrations (detailed balance).
    double r_mouth
    double mouth_cos
    double *enter_probability
    double *entry_depth         # [n_species, ENTRY_DEPTH_QUANTILES]: inverse CDF of an entering molecule's depth, µm
    int volume_enters_slab
    double rim                  # lateral edge of the slab: R_outer with a band, else R_cleft
    int reflecting_rim          # 1 if that edge reflects
    # time, µs
    double dt_fine
    double dt_coarse
    int64_t steps_per_coarse
    int64_t n_coarse
    int64_t sample_every
    int64_t n_samples
    # species
    int n_species
    double *sigma_fine          # per-axis step sd in the slab, µm
    double *sigma_volume        # per-axis step sd in the volume per coarse step, µm (D* = D/λ²)
    double *hazard_cleft        # degradation hazard per fine step in the cleft
    double *hazard_band         # degradation hazard per fine step in the band
    double *hazard_volume       # degradation hazard per coarse step in the volume
    int *membrane_binding       # 1 if some membrane site can bind this species
    int *slab_hazard            # 1 if a degradation hazard acts in the slab
    # kinetic schemes, over global state index g
    int n_states
    int32_t *state_ligands
    int32_t *bind_start
    int32_t *bind_to
    int32_t *bind_species
    double *bind_value          # membrane: per-hit probability; volume: hazard per coarse step per free site
    int32_t *exit_start
    int32_t *exit_to
    int32_t *exit_kind
    int32_t *exit_species
    double *exit_rate           # per µs
    double *exit_total          # per µs
    # site types
    int n_types
    int32_t *type_volume_index  # -1 for membrane types
    int32_t *type_ground        # global index of each type's state 0
    int n_volume_types
    # Sites, by id: membrane sites 0..n_membrane-1 (fixed), then one aggregate clock per volume type
    # (fires when some ground-state volume site of that type takes a first-order exit), then
    # volume-site records. A volume site in its ground state is only a count in vox_free; it gets
    # a record when it leaves the ground state and gives it back when it returns.
    Py_ssize_t n_membrane
    Py_ssize_t n_ids            # ids in use (records freed later are reused through free_ids)
    Py_ssize_t capacity         # allocated length of every per-id array
    int32_t *site_type
    int32_t *site_state
    int8_t *site_plane
    double *site_x
    double *site_y
    int32_t *site_voxel
    double *site_next
    int32_t *heap
    int32_t *heap_pos
    int32_t *free_ids
    Py_ssize_t n_free_ids
    Py_ssize_t heap_n
    # membrane tile maps
    double tile
    double inv_tile
    int64_t n_tile
    double grid_half
    int32_t *tile_site          # [n_tile, n_tile, 2]: the two planes of one patch side by side
    uint8_t *tile_code          # per tile: hazard code of the site there now (0: none or inert);
                                # one byte per tile keeps the grid in L2 cache, where a float per
                                # tile made every hit a cache miss
    double *code_hazard         # per code: binding hazard −log(1 − p) of a species-0 hit
    uint8_t *state_code         # per state: its hazard code
                                # (0 for empty tiles); kept current on every state change, so a
                                # hit costs one load instead of tile -> site -> state -> table
    int64_t no_tile             # index of an extra tile that never holds a site (hits off the grid)
    int64_t *site_tile          # tile index of each membrane site (-1 for volume sites)
    double *bind_total0         # per state: summed per-hit probability for species 0
    # volume voxels
    double voxel
    int64_t n_vox
    int32_t *vox_free           # [n_volume_types, n_vox^3] ground-state sites per voxel
    int64_t *fenwick            # [n_volume_types, n_vox^3 + 1] prefix tree over vox_free, to pick
                                # a voxel for a ground-state exit in O(log n)
    int64_t *free_total         # [n_volume_types] ground-state sites of each volume type
    double *vox_hazard0         # [n_vox^3] binding hazard per coarse step of a species-0 molecule
                                # in each voxel, summed over volume types: one load per step
    int32_t *volume_type_of     # [n_volume_types] volume type -> type
    double *vol_bind_hazard     # [n_volume_types, n_species] hazard per coarse step per free site
    double *voxel_weight        # [n_vox^3] voxel volume / extracellular-shell volume inside it
    int *vol_binding            # per species: some volume site binds it
    # molecules
    Pool slab
    Pool vol
    Pool entering               # volume molecules passing into the slab within this coarse window;
                                # their clock field holds the fine step (1..K) after which they enter
    int64_t sort_countdown      # fine steps until the slab molecules are next sorted by cell
    int any_membrane_binding
    double volume_clock         # time volume molecules have been advanced to
    # counters
    int64_t released
    int64_t taken_up
    int64_t escaped
    int64_t degraded
    int64_t effluxed
    int64_t bound
    int64_t binding_events
    int64_t *state_count
    # output
    int64_t *series
    int64_t *states_series
    # injections: groups of inj_count molecules entering together at one time and place
    Py_ssize_t n_inject
    Py_ssize_t next_inject
    double *inj_time
    int64_t *inj_count
    double *inj_x
    double *inj_y
    double *inj_z
    int32_t *inj_species
    int8_t *inj_volume

# ==================================================================================================
# molecule pools

cdef int pool_init(Pool *p, Py_ssize_t capacity) noexcept nogil:
    if capacity < 16:
        capacity = 16
    p.n = 0
    p.capacity = capacity
    p.x = <double*> malloc(capacity * sizeof(double))
    p.y = <double*> malloc(capacity * sizeof(double))
    p.z = <double*> malloc(capacity * sizeof(double))
    p.clock = <double*> malloc(capacity * sizeof(double))
    p.species = <int32_t*> malloc(capacity * sizeof(int32_t))
    if p.x == NULL or p.y == NULL or p.z == NULL or p.clock == NULL or p.species == NULL:
        return -1
    return 0

cdef void pool_free(Pool *p) noexcept nogil:
    free(p.x); free(p.y); free(p.z); free(p.clock); free(p.species)
    p.x = NULL; p.y = NULL; p.z = NULL; p.clock = NULL; p.species = NULL

cdef int pool_grow(Pool *p) noexcept nogil:
    cdef Py_ssize_t cap = p.capacity * 2
    cdef double *nx = <double*> realloc(p.x, cap * sizeof(double))
    if nx == NULL: return -1
    p.x = nx
    nx = <double*> realloc(p.y, cap * sizeof(double))
    if nx == NULL: return -1
    p.y = nx
    nx = <double*> realloc(p.z, cap * sizeof(double))
    if nx == NULL: return -1
    p.z = nx
    nx = <double*> realloc(p.clock, cap * sizeof(double))
    if nx == NULL: return -1
    p.clock = nx
    cdef int32_t *ns = <int32_t*> realloc(p.species, cap * sizeof(int32_t))
    if ns == NULL: return -1
    p.species = ns
    p.capacity = cap
    return 0

cdef inline int pool_add(Sim *s, Pool *p, double x, double y, double z, int32_t sp) noexcept nogil:
    if p.n == p.capacity:
        if pool_grow(p) != 0:
            return -1
    p.x[p.n] = x
    p.y[p.n] = y
    p.z[p.n] = z
    p.species[p.n] = sp
    p.clock[p.n] = mcsyn_exponential(&s.rng)
    p.n += 1
    return 0

cdef inline void pool_remove(Pool *p, Py_ssize_t i) noexcept nogil:
    # swap-remove keeps the arrays dense; the caller re-examines index i
    cdef Py_ssize_t last = p.n - 1
    p.x[i] = p.x[last]
    p.y[i] = p.y[last]
    p.z[i] = p.z[last]
    p.clock[i] = p.clock[last]
    p.species[i] = p.species[last]
    p.n = last

# ==================================================================================================
# event heap over sites (min-heap on site_next)

cdef inline void heap_swap(Sim *s, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    cdef int32_t sa = s.heap[a], sb = s.heap[b]
    s.heap[a] = sb
    s.heap[b] = sa
    s.heap_pos[sb] = <int32_t> a
    s.heap_pos[sa] = <int32_t> b

cdef void heap_up(Sim *s, Py_ssize_t i) noexcept nogil:
    cdef Py_ssize_t parent
    while i > 0:
        parent = (i - 1) >> 1
        if s.site_next[s.heap[parent]] <= s.site_next[s.heap[i]]:
            break
        heap_swap(s, i, parent)
        i = parent

cdef void heap_down(Sim *s, Py_ssize_t i) noexcept nogil:
    cdef Py_ssize_t left, right, smallest
    while True:
        left = 2 * i + 1
        right = left + 1
        smallest = i
        if left < s.heap_n and s.site_next[s.heap[left]] < s.site_next[s.heap[smallest]]:
            smallest = left
        if right < s.heap_n and s.site_next[s.heap[right]] < s.site_next[s.heap[smallest]]:
            smallest = right
        if smallest == i:
            break
        heap_swap(s, i, smallest)
        i = smallest

cdef void heap_set(Sim *s, int32_t site, double t) noexcept nogil:
    cdef Py_ssize_t i = s.heap_pos[site]
    cdef double old
    if i < 0:
        s.site_next[site] = t
        i = s.heap_n
        s.heap[i] = site
        s.heap_pos[site] = <int32_t> i
        s.heap_n += 1
        heap_up(s, i)
    else:
        old = s.site_next[site]
        s.site_next[site] = t
        if t < old:
            heap_up(s, i)
        else:
            heap_down(s, i)

cdef void heap_remove(Sim *s, int32_t site) noexcept nogil:
    cdef Py_ssize_t i = s.heap_pos[site]
    cdef Py_ssize_t last
    if i < 0:
        return
    last = s.heap_n - 1
    if i != last:
        heap_swap(s, i, last)
    s.heap_n = last
    s.heap_pos[site] = -1
    if i < s.heap_n:
        heap_up(s, i)
        heap_down(s, i)

# ==================================================================================================
# site state changes

cdef void* grow_array(void *p, Py_ssize_t n, size_t size, int *failed) noexcept nogil:
    cdef void *q = realloc(p, n * size)
    if q == NULL:
        failed[0] = 1
        return p
    return q


cdef int grow_sites(Sim *s) noexcept nogil:
    cdef Py_ssize_t cap = 2 * s.capacity
    cdef int failed = 0
    s.site_type = <int32_t*> grow_array(s.site_type, cap, sizeof(int32_t), &failed)
    s.site_state = <int32_t*> grow_array(s.site_state, cap, sizeof(int32_t), &failed)
    s.site_plane = <int8_t*> grow_array(s.site_plane, cap, sizeof(int8_t), &failed)
    s.site_x = <double*> grow_array(s.site_x, cap, sizeof(double), &failed)
    s.site_y = <double*> grow_array(s.site_y, cap, sizeof(double), &failed)
    s.site_voxel = <int32_t*> grow_array(s.site_voxel, cap, sizeof(int32_t), &failed)
    s.site_next = <double*> grow_array(s.site_next, cap, sizeof(double), &failed)
    s.site_tile = <int64_t*> grow_array(s.site_tile, cap, sizeof(int64_t), &failed)
    s.heap = <int32_t*> grow_array(s.heap, cap, sizeof(int32_t), &failed)
    s.heap_pos = <int32_t*> grow_array(s.heap_pos, cap, sizeof(int32_t), &failed)
    s.free_ids = <int32_t*> grow_array(s.free_ids, cap, sizeof(int32_t), &failed)
    if failed:
        return -1
    s.capacity = cap
    return 0


cdef int32_t new_volume_record(Sim *s, int32_t ty, int64_t v) noexcept nogil:
    # a record for a volume site leaving its ground state; the caller then sets its state
    cdef int32_t site
    if s.n_free_ids > 0:
        s.n_free_ids -= 1
        site = s.free_ids[s.n_free_ids]
    else:
        if s.n_ids == s.capacity and grow_sites(s) != 0:
            return -1
        site = <int32_t> s.n_ids
        s.n_ids += 1
    s.site_type[site] = ty
    s.site_state[site] = s.type_ground[ty]
    s.site_plane[site] = PLANE_VOLUME
    s.site_voxel[site] = <int32_t> v
    s.site_tile[site] = -1
    s.heap_pos[site] = -1
    return site


cdef inline void fenwick_add(int64_t *tree, int64_t n, int64_t v, int64_t delta) noexcept nogil:
    cdef int64_t i = v + 1
    while i <= n:
        tree[i] += delta
        i += i & (-i)


cdef inline int64_t fenwick_find(int64_t *tree, int64_t n, int64_t k) noexcept nogil:
    # the voxel holding the k-th ground-state site (0 <= k < total), by descent
    cdef int64_t pos = 0, step = 1
    while step * 2 <= n:
        step *= 2
    while step > 0:
        if pos + step <= n and tree[pos + step] <= k:
            pos += step
            k -= tree[pos]
        step //= 2
    return pos


cdef void schedule_aggregate(Sim *s, int vt, double t) noexcept nogil:
    # the ground-state exits of all free sites of a volume type form one Poisson clock; it is
    # memoryless, so redrawing it whenever the number of free sites changes is exact
    cdef int32_t pseudo = <int32_t> (s.n_membrane + vt)
    cdef double rate = s.exit_total[s.type_ground[s.volume_type_of[vt]]] * s.free_total[vt]
    if rate > 0.0:
        heap_set(s, pseudo, t + mcsyn_exponential(&s.rng) / rate)
    else:
        heap_remove(s, pseudo)


cdef inline void update_voxel_hazard(Sim *s, int64_t v) noexcept nogil:
    # recomputed from the counts (not incremented) so that no rounding drift accumulates
    cdef int64_t nv = s.n_vox * s.n_vox * s.n_vox
    cdef double h = 0.0
    cdef int vt
    for vt in range(s.n_volume_types):
        h += s.vol_bind_hazard[vt * s.n_species] * s.vox_free[vt * nv + v]
    s.vox_hazard0[v] = h * s.voxel_weight[v]


cdef void change_free(Sim *s, int vt, int64_t v, int64_t delta, double t) noexcept nogil:
    cdef int64_t nv = s.n_vox * s.n_vox * s.n_vox
    s.vox_free[vt * nv + v] += <int32_t> delta
    s.free_total[vt] += delta
    update_voxel_hazard(s, v)
    if s.exit_total[s.type_ground[s.volume_type_of[vt]]] > 0.0:
        fenwick_add(s.fenwick + vt * (nv + 1), nv, v, delta)
        schedule_aggregate(s, vt, t)


cdef void set_site_state(Sim *s, int32_t site, int32_t g, double t) noexcept nogil:
    cdef int32_t old = s.site_state[site]
    cdef int32_t ground = s.type_ground[s.site_type[site]]
    s.state_count[old] -= 1
    s.state_count[g] += 1
    s.bound += s.state_ligands[g] - s.state_ligands[old]
    s.site_state[site] = g
    if s.site_tile[site] >= 0:
        s.tile_code[s.site_tile[site]] = s.state_code[g]
    if s.site_plane[site] == PLANE_VOLUME and g == ground:
        # back to a plain count: the record is recycled
        heap_remove(s, site)
        s.free_ids[s.n_free_ids] = site
        s.n_free_ids += 1
        change_free(s, s.type_volume_index[s.site_type[site]], s.site_voxel[site], 1, t)
        return
    if s.exit_total[g] > 0.0:
        heap_set(s, site, t + mcsyn_exponential(&s.rng) / s.exit_total[g])
    else:
        heap_remove(s, site)


# ==================================================================================================
# placing molecules

cdef inline double round_to_integer(double v) noexcept nogil:
    # v rounded to the nearest integer (ties to even) for |v| < 2^51, without a libm call or an
    # integer conversion (baseline x86-64 has no rounding instruction): adding 1.5 * 2^52 leaves
    # no fraction bits. The compiler may not reassociate this without -ffast-math.
    cdef double magic = 6755399441055744.0
    return (v + magic) - magic


cdef inline double fold_slab(double z, double h) noexcept nogil:
    return fold_slab_fast(z, h, 0.5 / h)


cdef inline double fold_slab_fast(double z, double h, double inv_period) noexcept nogil:
    # Reflecting walls at 0 and h make the height a triangle wave of the unfolded one: its
    # distance to the nearest multiple of the period 2h. Branch-free because most steps in a
    # 20 nm cleft leave it, in no predictable direction.
    return fabs(z - 2.0 * h * round_to_integer(z * inv_period))


cdef int add_volume_molecule(Sim *s, double x, double y, double z, int32_t sp, double t) noexcept nogil:
    # molecules joining the volume mid-window are advanced to the volume clock at once, so that
    # every volume molecule stands at the same time when the next coarse step is taken
    cdef double remaining = s.volume_clock - t
    cdef double sig, r2
    cdef double x0 = x, y0 = y, z0 = z
    if remaining > 0.0:
        sig = s.sigma_volume[sp] * sqrt(remaining / s.dt_coarse)
        x += sig * mcsyn_normal(&s.rng)
        y += sig * mcsyn_normal(&s.rng)
        z += sig * mcsyn_normal(&s.rng)
        r2 = x * x + y * y + z * z
        if r2 >= s.r_domain * s.r_domain:
            if not s.domain_reflects:
                s.escaped += 1
                return 0
            reflect_at_sphere(x0, y0, z0, &x, &y, &z, s.r_domain, False)
        elif r2 < s.r_inner * s.r_inner:
            reflect_at_sphere(x0, y0, z0, &x, &y, &z, s.r_inner, True)
    return pool_add(s, &s.vol, x, y, z, sp)

cdef int add_to_mouth(Sim *s, mcsyn_rng *rng, double ux, double uy, int32_t sp) noexcept nogil:
    # a molecule that left the slab rim in the direction (ux, uy): uniform in the mouth shell at
    # that azimuth (r³ uniform between the radii, cos θ uniform within ±mouth_cos)
    cdef double ri3 = s.r_inner * s.r_inner * s.r_inner
    cdef double r = cbrt(ri3 + mcsyn_uniform(rng) * (s.r_mouth * s.r_mouth * s.r_mouth - ri3))
    cdef double c = s.mouth_cos * (2.0 * mcsyn_uniform(rng) - 1.0)
    cdef double rho = r * sqrt(1.0 - c * c)
    return pool_add(s, &s.vol, rho * ux, rho * uy, r * c, sp)

cdef int enter_slab_later(Sim *s, mcsyn_rng *rng, double x0, double y0, int32_t sp) noexcept nogil:
    # Time reversal of a rim exit. Among uniformly placed slab molecules, those that leave in one
    # fine step start at a depth d below the rim with density ∝ P(exit | d) (r_rim − d); compile
    # tabulates its inverse CDF for the kernel's exit rule. The height is uniform.
    # The molecule waits in s.entering until the end of fine step k of this window, k uniform in
    # 1..K, so that it is in place before the sample and the step that follow (and every entry of
    # the window is made by its end).
    cdef double rho = sqrt(x0 * x0 + y0 * y0)
    cdef double ux = 1.0, uy = 0.0
    cdef double u = mcsyn_uniform(rng) * (ENTRY_DEPTH_QUANTILES - 1)
    cdef int k = <int> u
    cdef double *table = s.entry_depth + sp * ENTRY_DEPTH_QUANTILES
    cdef double r
    if k > ENTRY_DEPTH_QUANTILES - 2:
        k = ENTRY_DEPTH_QUANTILES - 2
    r = s.rim - (table[k] + (u - k) * (table[k + 1] - table[k]))
    cdef Pool *p = &s.entering
    if rho > 0.0:
        ux = x0 / rho
        uy = y0 / rho
    if p.n == p.capacity:
        if pool_grow(p) != 0:
            return -1
    p.x[p.n] = r * ux
    p.y[p.n] = r * uy
    p.z[p.n] = mcsyn_uniform(rng) * s.h
    p.species[p.n] = sp
    p.clock[p.n] = 1.0 + floor(mcsyn_uniform(rng) * s.steps_per_coarse)
    p.n += 1
    return 0

cdef int enter_due(Sim *s, int64_t step) noexcept nogil:
    cdef Pool *p = &s.entering
    cdef Py_ssize_t i = 0
    while i < p.n:
        if p.clock[i] == step:
            if pool_add(s, &s.slab, p.x[i], p.y[i], p.z[i], p.species[i]) != 0:
                return -1
            pool_remove(p, i)
        else:
            i += 1
    return 0

cdef int place_near_membrane_site(Sim *s, int32_t site, int32_t sp, double t) noexcept nogil:
    # Time reversal of a hit, which keeps detailed balance with the per-hit binding probability.
    # Among uniformly placed molecules, those whose step crosses the membrane have |Δz| with
    # density ∝ |Δz| φ(Δz) (a Rayleigh law: the chance to cross grows with |Δz|), start a uniform
    # fraction f of the step above the membrane, and cross it uniformly over the site's tile.
    # The molecule reappears at such a starting point.
    cdef double sig = s.sigma_fine[sp]
    cdef double f = mcsyn_uniform(&s.rng)
    cdef double x = s.site_x[site] + (mcsyn_uniform(&s.rng) - 0.5) * s.tile - f * sig * mcsyn_normal(&s.rng)
    cdef double y = s.site_y[site] + (mcsyn_uniform(&s.rng) - 0.5) * s.tile - f * sig * mcsyn_normal(&s.rng)
    cdef double dz = f * sig * sqrt(2.0 * mcsyn_exponential(&s.rng))
    cdef double z
    cdef double r2, r, scale
    if s.site_plane[site] == PLANE_POST:
        z = fold_slab(dz, s.h)
    else:
        z = fold_slab(s.h - dz, s.h)
    r2 = x * x + y * y
    if s.outside == OUTSIDE_BAND:
        if r2 >= s.r_outer * s.r_outer:
            r = sqrt(r2)
            scale = (2.0 * s.r_outer - r) / r
            x *= scale
            y *= scale
    elif r2 >= s.r_cleft * s.r_cleft:
        r = sqrt(r2)
        scale = (2.0 * s.r_cleft - r) / r
        x *= scale
        y *= scale
    return pool_add(s, &s.slab, x, y, z, sp)


cdef int release_from_volume_record(Sim *s, int32_t site, int32_t sp, double t) noexcept nogil:
    # Volume sites are well mixed within their voxel, so a released molecule appears at a uniform
    # point of the voxel's share of the extracellular shell (rejection; a voxel holding sites
    # holds some shell, and the sliver case falls back to the radial projection).
    cdef int64_t n = s.n_vox
    cdef int64_t v = s.site_voxel[site]
    cdef int64_t ix = v // (n * n)
    cdef int64_t iy = (v // n) % n
    cdef int64_t iz = v % n
    cdef double x = 0.0, y = 0.0, z = 0.0, r2 = 0.0, r, scale
    cdef int attempt
    for attempt in range(64):
        x = -s.r_domain + (ix + mcsyn_uniform(&s.rng)) * s.voxel
        y = -s.r_domain + (iy + mcsyn_uniform(&s.rng)) * s.voxel
        z = -s.r_domain + (iz + mcsyn_uniform(&s.rng)) * s.voxel
        r2 = x * x + y * y + z * z
        if r2 >= s.r_inner * s.r_inner and r2 < s.r_domain * s.r_domain:
            return pool_add(s, &s.vol, x, y, z, sp)
    r = sqrt(r2)
    scale = (0.5 * (s.r_inner + s.r_domain)) / r if r > 0.0 else 0.0
    if r >= s.r_domain:
        scale = s.r_domain * (1.0 - 1e-9) / r
    elif r < s.r_inner:
        scale = s.r_inner * (1.0 + 1e-9) / r if r > 0.0 else 0.0
    return pool_add(s, &s.vol, x * scale, y * scale, z * scale, sp)


cdef int release_from_site(Sim *s, int32_t site, int32_t sp, double t) noexcept nogil:
    if s.site_plane[site] == PLANE_VOLUME:
        return release_from_volume_record(s, site, sp, t)
    return place_near_membrane_site(s, site, sp, t)


# ==================================================================================================
# site events

cdef int fire_site(Sim *s, int32_t site, double t_event, double t) noexcept nogil:
    # one first-order exit of a site, the branch drawn in proportion to the exit rates
    cdef int32_t g = s.site_state[site]
    cdef int32_t e = s.exit_start[g]
    cdef int32_t e_end = s.exit_start[g + 1]
    cdef double pick = mcsyn_uniform(&s.rng) * s.exit_total[g]
    cdef double acc = 0.0
    cdef int32_t kind, sp
    while e < e_end - 1:
        acc += s.exit_rate[e]
        if pick < acc:
            break
        e += 1
    kind = s.exit_kind[e]
    sp = s.exit_species[e]
    # the molecule leaves before the record may be recycled by a return to the ground state
    if kind == EXIT_UNBIND:
        if release_from_site(s, site, sp, t) != 0:
            return -1
    elif kind == EXIT_UPTAKE:
        s.taken_up += 1
    elif kind == EXIT_DEGRADE:
        s.degraded += 1
    elif kind == EXIT_EFFLUX:
        s.released += 1
        s.effluxed += 1
        if release_from_site(s, site, sp, t) != 0:
            return -1
    set_site_state(s, site, s.exit_to[e], t_event)
    return 0


cdef int process_events(Sim *s, double t) noexcept nogil:
    cdef int32_t site, record
    cdef int vt
    cdef int64_t v, nv = s.n_vox * s.n_vox * s.n_vox
    cdef double t_event
    while s.heap_n > 0 and s.site_next[s.heap[0]] <= t:
        site = s.heap[0]
        t_event = s.site_next[site]
        if s.site_plane[site] == PLANE_AGGREGATE:
            # some ground-state site of this volume type changes state: pick its voxel
            vt = <int> (site - s.n_membrane)
            v = fenwick_find(s.fenwick + vt * (nv + 1), nv, <int64_t> (mcsyn_uniform(&s.rng) * s.free_total[vt]))
            record = new_volume_record(s, s.volume_type_of[vt], v)
            if record < 0:
                return -1
            change_free(s, vt, v, -1, t_event)
            if fire_site(s, record, t_event, t) != 0:
                return -1
        elif fire_site(s, site, t_event, t) != 0:
            return -1
    return 0


cdef inline int bind_with(Sim *s, mcsyn_rng *rng, int32_t site, int32_t sp, double u, double t) noexcept nogil:
    # The hit binds if the uniform u falls below the summed per-hit probability of the site's
    # current state for this species; u then also picks the transition. Returns 1 on binding.
    cdef int32_t g = s.site_state[site]
    cdef int32_t b = s.bind_start[g]
    cdef int32_t b_end = s.bind_start[g + 1]
    cdef double acc = 0.0
    while b < b_end:
        if s.bind_species[b] == sp:
            acc += s.bind_value[b]
            if u < acc:
                s.rng = rng[0]
                set_site_state(s, site, s.bind_to[b], t)
                rng[0] = s.rng
                s.binding_events += 1
                return 1
        b += 1
    return 0


# ==================================================================================================
# one fine step of every slab molecule

cdef inline int64_t hit_index(Sim *s, int plane, double x, double y) noexcept nogil:
    # Tile under a hit at (x, y) on a membrane plane. A reflecting rim mirrors the step, so a
    # crossing beyond it lies at its mirror image. Off the grid: s.no_tile, a tile that never
    # holds a site. The range test is branch-free: hits land anywhere, unpredictably.
    cdef double r2 = x * x + y * y
    cdef double r, scale, fx, fy
    cdef int64_t ix, iy
    cdef bint valid
    if s.reflecting_rim and r2 > s.rim * s.rim:
        r = sqrt(r2)
        scale = (2.0 * s.rim - r) / r
        x *= scale
        y *= scale
    fx = (x + s.grid_half) * s.inv_tile
    fy = (y + s.grid_half) * s.inv_tile
    # (fx < n_tile) rather than ix: a huge or NaN crossing fraction must not make a valid index
    valid = (fx >= 0.0) & (fy >= 0.0) & (fx < s.n_tile) & (fy < s.n_tile)
    if not valid:
        return s.no_tile
    ix = <int64_t> fx
    iy = <int64_t> fy
    return (ix * s.n_tile + iy) * 2 + plane


cdef inline int64_t tile_on_grid(int64_t n_tile, int plane, double gx, double gy) noexcept nogil:
    # hit_index for a crossing known to lie inside the rim, given in tile units from the grid's
    # corner: no range test, since the grid has a spare tile beyond the rim on every side
    return ((<int64_t> gx) * n_tile + <int64_t> gy) * 2 + plane


cdef inline int32_t pick_binding(Sim *s, int32_t g, int32_t sp, double pick) noexcept nogil:
    # the binding transition of state g for species sp at which the running sum of per-hit
    # probabilities (or hazards) first exceeds pick; the last one if rounding leaves pick beyond
    # their sum; -1 if state g has none for sp
    cdef int32_t b = s.bind_start[g]
    cdef int32_t b_end = s.bind_start[g + 1]
    cdef int32_t chosen = -1
    cdef double acc = 0.0
    while b < b_end:
        if s.bind_species[b] == sp:
            chosen = b
            acc += s.bind_value[b]
            if pick < acc:
                break
        b += 1
    return chosen


cdef int bind_site_now(Sim *s, mcsyn_rng *rng, int32_t site, int32_t sp, double t) noexcept nogil:
    # A species-0 hit exhausted the molecule's binding clock on this site: it binds, through one
    # of the state's binding transitions chosen in proportion to their per-hit probabilities.
    # (An exhausted clock implies a site with a positive hazard; the guard keeps it so.)
    if site < 0:
        return 0
    cdef int32_t g = s.site_state[site]
    cdef int32_t chosen = pick_binding(s, g, sp, mcsyn_uniform(rng) * s.bind_total0[g])
    if chosen < 0:
        return 0
    s.rng = rng[0]
    set_site_state(s, site, s.bind_to[chosen], t)
    rng[0] = s.rng
    s.binding_events += 1
    return 1


cdef inline int hit_plane(Sim *s, mcsyn_rng *rng, double *clock, int plane, double x, double y,
                          int32_t sp, double t) noexcept nogil:
    # One hit; returns 1 if the molecule binds. Species 0 spends the tile's hazard −log(1 − p)
    # from the molecule's exponential clock (equivalent to a Bernoulli(p) trial per hit, without
    # a uniform draw per hit); other species draw a uniform per hit on an occupied tile.
    cdef int64_t idx = hit_index(s, plane, x, y)
    cdef int32_t site
    if sp == 0:
        clock[0] -= s.code_hazard[s.tile_code[idx]]
        if clock[0] > 0.0:
            return 0
        return bind_site_now(s, rng, s.tile_site[idx], sp, t)
    site = s.tile_site[idx]
    if site < 0:
        return 0
    return bind_with(s, rng, site, sp, mcsyn_uniform(rng), t)


cdef int hit_membranes(Sim *s, mcsyn_rng *rng, double *clock, double x0, double y0, double z0,
                       double dx, double dy, double dz, int32_t sp, double t, int skip) noexcept nogil:
    # Walk the straight step through the unfolded slab: every crossing of a plane z = k h is a
    # hit on the postsynaptic (k even) or presynaptic (k odd) membrane at the crossing point,
    # visited in order from the start point (the first `skip` crossings were handled already).
    # t is the end of the step; a binding is stamped at the crossing time, so that the bound
    # lifetime (an exact exponential) starts when the molecule actually reached the site.
    cdef double z1 = z0 + dz
    cdef double f
    cdef double inv_dz = 1.0 / dz
    cdef double step = s.h if dz > 0.0 else -s.h
    cdef double plane_z = s.h if dz > 0.0 else 0.0
    cdef int plane = PLANE_PRE if dz > 0.0 else PLANE_POST
    cdef int k = 0
    while (plane_z <= z1) if dz > 0.0 else (plane_z >= z1):
        if k >= skip:
            f = (plane_z - z0) * inv_dz
            if hit_plane(s, rng, clock, plane, x0 + f * dx, y0 + f * dy, sp, t - (1.0 - f) * s.dt_fine):
                return 1
        k += 1
        plane_z += step
        plane ^= 1
    return 0


cdef inline void reflect_at_rim(double x0, double y0, double *x, double *y, double rim) noexcept nogil:
    # Specular reflection of the straight lateral step (x0, y0) -> (x, y) where it leaves the disk
    # r < rim: the part beyond the exit point is mirrored in the tangent there. (Mirroring the end
    # point radially instead depletes the outermost σ of a curved rim by several per cent.)
    cdef double dx = x[0] - x0, dy = y[0] - y0
    cdef double a = dx * dx + dy * dy
    cdef double b = x0 * dx + y0 * dy
    cdef double c = x0 * x0 + y0 * y0 - rim * rim
    cdef double disc = b * b - a * c
    cdef double t, cx, cy, nx, ny, wx, wy, dot, r
    if a <= 0.0 or disc < 0.0:
        t = 1.0
    else:
        t = (-b + sqrt(disc)) / a
    cx = x0 + t * dx
    cy = y0 + t * dy
    r = sqrt(cx * cx + cy * cy)
    if r <= 0.0:
        return
    nx = cx / r
    ny = cy / r
    wx = x[0] - cx
    wy = y[0] - cy
    dot = wx * nx + wy * ny
    x[0] = cx + wx - 2.0 * dot * nx
    y[0] = cy + wy - 2.0 * dot * ny
    r = sqrt(x[0] * x[0] + y[0] * y[0])
    if r >= rim:
        # a step long enough to cross the disk again: fall back to the radial mirror
        dot = (2.0 * rim - r) / r
        if dot < 0.0:
            dot = 0.0
        x[0] *= dot
        y[0] *= dot


cdef void reflect_at_sphere(double x0, double y0, double z0, double *x, double *y, double *z,
                            double radius, bint from_outside) noexcept nogil:
    # Specular reflection, as reflect_at_rim, of the step (x0, y0, z0) -> (x, y, z) at the sphere
    # |x| = radius: entering it from outside (the varicosity) or leaving it from inside (a
    # reflecting domain). A radial mirror of the end point leaves a density excess of ~9 % within
    # 20 nm of a 0.25 µm varicosity at 4 µs volume steps; the specular one does not.
    cdef double dx = x[0] - x0, dy = y[0] - y0, dz = z[0] - z0
    cdef double a = dx * dx + dy * dy + dz * dz
    cdef double b = x0 * dx + y0 * dy + z0 * dz
    cdef double c = x0 * x0 + y0 * y0 + z0 * z0 - radius * radius
    cdef double disc = b * b - a * c
    cdef double t, cx, cy, cz, nx, ny, nz, wx, wy, wz, dot, r
    if a <= 0.0 or disc < 0.0:
        t = 1.0
    elif from_outside:
        t = (-b - sqrt(disc)) / a
    else:
        t = (-b + sqrt(disc)) / a
    if t < 0.0:
        t = 0.0
    cx = x0 + t * dx
    cy = y0 + t * dy
    cz = z0 + t * dz
    r = sqrt(cx * cx + cy * cy + cz * cz)
    if r <= 0.0:
        return
    nx = cx / r
    ny = cy / r
    nz = cz / r
    wx = x[0] - cx
    wy = y[0] - cy
    wz = z[0] - cz
    dot = wx * nx + wy * ny + wz * nz
    x[0] = cx + wx - 2.0 * dot * nx
    y[0] = cy + wy - 2.0 * dot * ny
    z[0] = cz + wz - 2.0 * dot * nz
    r = sqrt(x[0] * x[0] + y[0] * y[0] + z[0] * z[0])
    if (from_outside and r < radius) or (not from_outside and r > radius):
        # a step long enough to cross the sphere again: fall back to the radial mirror
        dot = (2.0 * radius - r) / r if r > 0.0 else 0.0
        if dot < 0.0:
            dot = 0.0
        x[0] *= dot
        y[0] *= dot
        z[0] *= dot


cdef inline double quiet_radius2(double edge, double sig) noexcept nogil:
    # squared radius inside which a step's end gets no edge test: to have touched the edge, the
    # step would have come back more than 4 sig (sd per axis) within it, a chance below 1e-4
    # even for a start at the edge; this is neglected
    cdef double r = edge - 4.0 * sig
    return r * r if r > 0.0 else 0.0


cdef inline double crossing_probability(double d0, double d1, double sig) noexcept nogil:
    # Brownian bridge: chance that a step starting d0 and ending d1 inside an absorbing boundary
    # touched it in between (planar approximation, per-axis sd sig)
    if d0 <= 0.0 or d1 <= 0.0:
        return 1.0
    return exp(-2.0 * d0 * d1 / (sig * sig))

DEF CHUNK = 128          # molecules per chunk of step_slab (3 * CHUNK <= NORMAL_BLOCK)
DEF SORT_EVERY = 64       # fine steps between spatial sorts of the slab molecules
DEF SORT_CELL_TILES = 16  # sort cells are 16 x 16 tiles (160 nm at the default tile)


cdef inline void permute_doubles(double *values, double *buf, int64_t *dest, Py_ssize_t n) noexcept nogil:
    # values[i] moves to position dest[i]
    cdef Py_ssize_t i
    for i in range(n):
        buf[dest[i]] = values[i]
    for i in range(n):
        values[i] = buf[i]


cdef int sort_slab_by_cell(Sim *s) noexcept nogil:
    # Counting sort of the slab molecules by lateral cell, so that consecutive molecules hit
    # neighbouring tiles and the tile arrays stay in cache. Molecules move ~σ per step, so the
    # order stays good for many steps. Only the processing order changes.
    cdef Pool *p = &s.slab
    cdef Py_ssize_t n = p.n, i, j
    cdef int64_t nc = (s.n_tile + SORT_CELL_TILES - 1) // SORT_CELL_TILES
    cdef double inv_cell = s.inv_tile / SORT_CELL_TILES
    cdef int64_t cx, cy, c
    cdef int64_t *start = <int64_t*> calloc(nc * nc + 1, sizeof(int64_t))
    # two scratch arrays of n words (16 bytes per molecule; a million molecules is already 36 MB
    # of pool): `dest` first holds each molecule's cell, `buf` also serves the int32 species
    cdef int64_t *dest = <int64_t*> malloc(n * sizeof(int64_t))
    cdef double *buf = <double*> malloc(n * sizeof(double))
    cdef int32_t *ibuf = <int32_t*> buf
    if start == NULL or dest == NULL or buf == NULL:
        free(start); free(dest); free(buf)
        return -1
    for i in range(n):
        cx = <int64_t> ((p.x[i] + s.grid_half) * inv_cell)
        cy = <int64_t> ((p.y[i] + s.grid_half) * inv_cell)
        cx = 0 if cx < 0 else (nc - 1 if cx >= nc else cx)
        cy = 0 if cy < 0 else (nc - 1 if cy >= nc else cy)
        c = cx * nc + cy
        dest[i] = c
        start[c + 1] += 1
    for c in range(nc * nc):
        start[c + 1] += start[c]
    for i in range(n):
        c = dest[i]
        dest[i] = start[c]
        start[c] += 1
    permute_doubles(p.x, buf, dest, n)
    permute_doubles(p.y, buf, dest, n)
    permute_doubles(p.z, buf, dest, n)
    permute_doubles(p.clock, buf, dest, n)
    for i in range(n):
        ibuf[dest[i]] = p.species[i]
    for i in range(n):
        p.species[i] = ibuf[i]
    free(start); free(dest); free(buf)
    return 0


cdef inline void first_two_crossings(double h, double z0, double dx, double dy, double dz,
                                     double *f, double *f2, bint *up, bint *crossed, bint *crossed2) noexcept nogil:
    # Where a step from height z0 meets the first and second membrane planes (fractions f, f2 of
    # the step) and whether it gets there. Branch-free: direction and crossing are coin flips when
    # σ is comparable to h. PLANE_PRE is 1, so an upward step meets plane `up` first, `1 - up` next.
    cdef double z = z0 + dz
    cdef double inv_dz = 1.0 / dz
    up[0] = dz > 0.0
    f[0] = (h * up[0] - z0) * inv_dz
    f2[0] = f[0] + (2 * up[0] - 1) * h * inv_dz
    crossed[0] = (z > h) | (z < 0.0)
    crossed2[0] = (z > 2.0 * h) | (z < -h)


cdef int step_slab(Sim *s, double t_end) noexcept nogil:
    # Hot loop, over chunks of CHUNK molecules: the normals for a whole chunk are drawn at once,
    # and removals wait for the end of their chunk. Chunks go from the top of the pool down, so
    # that pool_remove, which fills a hole with the last molecule, only ever moves a molecule
    # that has had its step.
    #
    # Everything touched per molecule lives in locals, the generator included: the compiler
    # cannot keep a field of *s in a register across stores to the position arrays, since they
    # might alias. The generator goes back into *s around the rare calls that draw from it.
    if s.any_membrane_binding:
        s.sort_countdown -= 1
        if s.sort_countdown <= 0:
            s.sort_countdown = SORT_EVERY
            if s.slab.n > 256 and sort_slab_by_cell(s) != 0:
                return -1
    cdef mcsyn_rng rng = s.rng
    cdef double *normals = s.normals
    cdef int used = s.normals_used
    cdef Pool *p = &s.slab
    cdef double *px = p.x
    cdef double *py = p.y
    cdef double *pz = p.z
    cdef double *pclock = p.clock
    cdef int32_t *psp = p.species
    cdef Py_ssize_t i, c0, c_end = p.n
    cdef int k, m, base, n_dead
    cdef double x0, y0, z0, x, y, z, dx, dy, dz, sig, r2, r, r0, scale, hz, f, f2, clock1, clock2
    cdef double gx, gy, gdx, gdy
    cdef bint up, crossed, crossed2
    cdef int64_t idx, idx2
    cdef double h = s.h
    cdef double inv_period = 0.5 / s.h
    cdef double rc2 = s.r_cleft * s.r_cleft
    cdef double rim = s.r_outer if s.outside == OUTSIDE_BAND else s.r_cleft
    cdef int reflecting = s.outside == OUTSIDE_CLOSED or (s.outside == OUTSIDE_BAND and not s.outer_absorbing)
    cdef double near2 = 0.0
    cdef int32_t sp, last_sp = -1
    cdef int binds = 0, hazard = 0, leaves, status = 0
    cdef int64_t no_tile = s.no_tile
    cdef uint8_t *tile_code = s.tile_code
    cdef double *code_hazard = s.code_hazard
    cdef double grid_half = s.grid_half
    cdef double inv_tile = s.inv_tile
    cdef int64_t n_tile = s.n_tile
    cdef Py_ssize_t dead[CHUNK]
    while c_end > 0:
        c0 = c_end - CHUNK if c_end > CHUNK else 0
        m = <int> (c_end - c0)
        if used + 3 * m > NORMAL_BLOCK:
            mcsyn_fill_normals(&rng, normals, NORMAL_BLOCK)
            used = 0
        base = used
        n_dead = 0
        for k in range(m):
            i = c0 + k
            sp = psp[i]
            if sp != last_sp:
                last_sp = sp
                sig = s.sigma_fine[sp]
                binds = s.membrane_binding[sp]
                hazard = s.slab_hazard[sp]
                near2 = quiet_radius2(rim, sig)
            x0 = px[i]
            y0 = py[i]
            z0 = pz[i]
            if hazard:
                r2 = x0 * x0 + y0 * y0
                hz = s.hazard_cleft[sp] if r2 < rc2 else s.hazard_band[sp]
                pclock[i] -= hz
                if pclock[i] <= 0.0:
                    s.degraded += 1
                    dead[n_dead] = i
                    n_dead += 1
                    continue
            dx = sig * normals[base + 3 * k]
            dy = sig * normals[base + 3 * k + 1]
            dz = sig * normals[base + 3 * k + 2]
            z = z0 + dz
            x = x0 + dx
            y = y0 + dy
            r2 = x * x + y * y
            if binds:
                if sp == 0:
                    first_two_crossings(h, z0, dx, dy, dz, &f, &f2, &up, &crossed, &crossed2)
                    if r2 < near2:
                        # both ends well inside the rim: so is the step, hence on the grid
                        gx = (x0 + grid_half) * inv_tile
                        gy = (y0 + grid_half) * inv_tile
                        gdx = dx * inv_tile
                        gdy = dy * inv_tile
                        idx = tile_on_grid(n_tile, up, gx + f * gdx, gy + f * gdy)
                        idx2 = tile_on_grid(n_tile, 1 - up, gx + f2 * gdx, gy + f2 * gdy)
                    else:
                        idx = hit_index(s, up, x0 + f * dx, y0 + f * dy)
                        idx2 = hit_index(s, 1 - up, x0 + f2 * dx, y0 + f2 * dy)
                    # a crossing that does not happen goes to the inert tile, by a mask
                    idx = no_tile + ((idx - no_tile) & -(<int64_t> crossed))
                    idx2 = no_tile + ((idx2 - no_tile) & -(<int64_t> crossed2))
                    clock1 = pclock[i] - code_hazard[tile_code[idx]]
                    clock2 = clock1 - code_hazard[tile_code[idx2]]
                    pclock[i] = clock2
                    if clock2 <= 0.0:
                        if clock1 <= 0.0:
                            pclock[i] = clock1
                            status = bind_site_now(s, &rng, s.tile_site[idx], sp, t_end - (1.0 - f) * s.dt_fine)
                        else:
                            status = bind_site_now(s, &rng, s.tile_site[idx2], sp, t_end - (1.0 - f2) * s.dt_fine)
                        if status:
                            status = 0
                            dead[n_dead] = i
                            n_dead += 1
                            continue
                    if (z > 3.0 * h) | (z < -2.0 * h):
                        if hit_membranes(s, &rng, &pclock[i], x0, y0, z0, dx, dy, dz, sp, t_end, 2):
                            dead[n_dead] = i
                            n_dead += 1
                            continue
                elif (z < 0.0) | (z > h):
                    if hit_membranes(s, &rng, &pclock[i], x0, y0, z0, dx, dy, dz, sp, t_end, 0):
                        dead[n_dead] = i
                        n_dead += 1
                        continue
            z = fold_slab_fast(z, h, inv_period)
            if r2 >= near2:
                leaves = 0
                r = sqrt(r2)
                if reflecting:
                    if r >= rim:
                        reflect_at_rim(x0, y0, &x, &y, rim)
                elif r >= rim:
                    leaves = 1
                else:
                    r0 = sqrt(x0 * x0 + y0 * y0)
                    if mcsyn_uniform(&rng) < crossing_probability(rim - r0, rim - r, sig):
                        leaves = 1
                if leaves:
                    if s.outside == OUTSIDE_VOLUME:
                        # the rim opens onto the varicosity's surface in the volume
                        s.rng = rng
                        status = add_to_mouth(s, &s.rng, x / r, y / r, sp)
                        rng = s.rng
                        if status != 0:
                            s.normals_used = base + 3 * m
                            return -1
                    else:
                        s.escaped += 1
                    dead[n_dead] = i
                    n_dead += 1
                    continue
            px[i] = x
            py[i] = y
            pz[i] = z
        used = base + 3 * m
        # highest index first, so that each hole is filled from above the chunk's start
        for k in range(n_dead - 1, -1, -1):
            pool_remove(p, dead[k])
        c_end = c0
    s.rng = rng
    s.normals_used = used
    return 0

# ==================================================================================================
# one coarse step of every volume molecule

cdef inline int64_t voxel_index(int64_t n, double inv_voxel, double r_domain,
                                double x, double y, double z) noexcept nogil:
    # voxel of a point in the domain's bounding cube; the clamp catches rounding at its faces
    cdef int64_t ix = <int64_t> ((x + r_domain) * inv_voxel)
    cdef int64_t iy = <int64_t> ((y + r_domain) * inv_voxel)
    cdef int64_t iz = <int64_t> ((z + r_domain) * inv_voxel)
    ix = 0 if ix < 0 else (n - 1 if ix >= n else ix)
    iy = 0 if iy < 0 else (n - 1 if iy >= n else iy)
    iz = 0 if iz < 0 else (n - 1 if iz >= n else iz)
    return (ix * n + iy) * n + iz


cdef int bind_in_voxel(Sim *s, int64_t v, int32_t sp, double pick, double t) noexcept nogil:
    # pick is uniform on [0, summed binding hazard of the voxel); choose the site type, then its
    # transition. Returns -1 only when memory runs out.
    cdef int vt
    cdef int64_t nv = s.n_vox * s.n_vox * s.n_vox
    cdef double w, acc = 0.0
    cdef int32_t record, ty, chosen
    for vt in range(s.n_volume_types):
        w = s.vol_bind_hazard[vt * s.n_species + sp] * s.vox_free[vt * nv + v]
        if w > 0.0 and pick < acc + w:
            ty = s.volume_type_of[vt]
            chosen = pick_binding(s, s.type_ground[ty], sp, (pick - acc) / s.vox_free[vt * nv + v])
            record = new_volume_record(s, ty, v)
            if record < 0:
                return -1
            change_free(s, vt, v, -1, t)
            set_site_state(s, record, s.bind_to[chosen], t)
            s.binding_events += 1
            return 1
        acc += w
    return 0


cdef int step_volume(Sim *s, double t) noexcept nogil:
    # One coarse step of every volume molecule; like step_slab, the per-molecule work reads locals
    # (the generator included), so that stores to the position arrays do not force reloads of *s.
    cdef mcsyn_rng rng = s.rng
    cdef double *normals = s.normals
    cdef int used = s.normals_used
    cdef Pool *p = &s.vol
    cdef double *px = p.x
    cdef double *py = p.y
    cdef double *pz = p.z
    cdef double *pclock = p.clock
    cdef int32_t *psp = p.species
    cdef Py_ssize_t i = 0
    cdef double x, y, z, x0, y0, z0, sig = 0.0, r2, r, r0, scale, hz = 0.0, hb, near2 = 0.0, enter = 0.0
    cdef double r_domain = s.r_domain
    cdef double rm2 = s.r_mouth * s.r_mouth
    cdef double mc2 = s.mouth_cos * s.mouth_cos
    cdef int absorbing = not s.domain_reflects
    cdef double rd2 = r_domain * r_domain
    cdef double ri2 = s.r_inner * s.r_inner
    cdef double inv_voxel = 1.0 / s.voxel
    cdef int64_t n_vox = s.n_vox
    cdef int64_t v, nv = n_vox * n_vox * n_vox
    cdef double *vox_hazard0 = s.vox_hazard0
    cdef int vt, binds = 0, status
    cdef int32_t sp, last_sp = -1
    while i < p.n:
        sp = psp[i]
        if sp != last_sp:
            last_sp = sp
            sig = s.sigma_volume[sp]
            hz = s.hazard_volume[sp]
            binds = s.vol_binding[sp]
            near2 = quiet_radius2(r_domain, sig)
            enter = s.enter_probability[sp] if s.volume_enters_slab else 0.0
        x0 = px[i]
        y0 = py[i]
        z0 = pz[i]
        hb = 0.0
        v = 0
        if binds:
            v = voxel_index(n_vox, inv_voxel, r_domain, x0, y0, z0)
            if sp == 0:
                hb = vox_hazard0[v]
            else:
                for vt in range(s.n_volume_types):
                    hb += s.vol_bind_hazard[vt * s.n_species + sp] * s.vox_free[vt * nv + v]
                hb *= s.voxel_weight[v]
        if hz + hb > 0.0:
            pclock[i] -= hz + hb
            if pclock[i] <= 0.0:
                scale = mcsyn_uniform(&rng) * (hz + hb)
                if scale < hz:
                    s.degraded += 1
                else:
                    s.rng = rng
                    status = bind_in_voxel(s, v, sp, (scale - hz) / s.voxel_weight[v], t)
                    rng = s.rng
                    if status < 0:
                        s.normals_used = used
                        return -1
                pool_remove(p, i)
                continue
        if used > NORMAL_BLOCK - 3:
            mcsyn_fill_normals(&rng, normals, NORMAL_BLOCK)
            used = 0
        x = x0 + sig * normals[used]
        y = y0 + sig * normals[used + 1]
        z = z0 + sig * normals[used + 2]
        used += 3
        r2 = x * x + y * y + z * z
        if r2 >= rd2:
            if absorbing:
                s.escaped += 1
                pool_remove(p, i)
                continue
            reflect_at_sphere(x0, y0, z0, &x, &y, &z, r_domain, False)
        elif absorbing and r2 > near2:
            r = sqrt(r2)
            r0 = sqrt(x0 * x0 + y0 * y0 + z0 * z0)
            if mcsyn_uniform(&rng) < crossing_probability(r_domain - r0, r_domain - r, sig):
                s.escaped += 1
                pool_remove(p, i)
                continue
        if x * x + y * y + z * z < ri2:
            reflect_at_sphere(x0, y0, z0, &x, &y, &z, s.r_inner, True)
        if enter > 0.0:
            # tested after the step: the uniform density is then stationary, because the molecules
            # taken from the mouth shell and those that left the rim into it (uniformly, during this
            # window) fill the same places before anyone moves again
            r2 = x * x + y * y + z * z
            if r2 < rm2 and z * z < mc2 * r2 and mcsyn_uniform(&rng) < enter:
                if enter_slab_later(s, &rng, x, y, sp) != 0:
                    s.rng = rng
                    s.normals_used = used
                    return -1
                pool_remove(p, i)
                continue
        px[i] = x
        py[i] = y
        pz[i] = z
        i += 1
    s.rng = rng
    s.normals_used = used
    return 0

# ==================================================================================================
# sampling, injection, main loop

cdef void take_sample(Sim *s, int64_t k) noexcept nogil:
    cdef int64_t *row = s.series + k * N_SERIES
    cdef Py_ssize_t i
    cdef int64_t in_cleft = 0
    cdef double rc2 = s.r_cleft * s.r_cleft
    cdef int g
    if s.outside == OUTSIDE_BAND:
        for i in range(s.slab.n):
            if s.slab.x[i] * s.slab.x[i] + s.slab.y[i] * s.slab.y[i] < rc2:
                in_cleft += 1
    else:
        in_cleft = s.slab.n
    row[0] = s.released
    row[1] = in_cleft
    row[2] = s.slab.n - in_cleft
    row[3] = s.vol.n + s.entering.n
    row[4] = s.bound
    row[5] = s.taken_up
    row[6] = s.escaped
    row[7] = s.degraded
    row[8] = s.effluxed
    row[9] = s.binding_events
    for g in range(s.n_states):
        s.states_series[k * s.n_states + g] = s.state_count[g]

cdef int inject_due(Sim *s, double t) noexcept nogil:
    cdef Py_ssize_t j
    cdef int64_t m
    while s.next_inject < s.n_inject and s.inj_time[s.next_inject] <= t:
        j = s.next_inject
        for m in range(s.inj_count[j]):
            s.released += 1
            if s.inj_volume[j]:
                if add_volume_molecule(s, s.inj_x[j], s.inj_y[j], s.inj_z[j], s.inj_species[j], t) != 0:
                    return -1
            else:
                if pool_add(s, &s.slab, s.inj_x[j], s.inj_y[j], s.inj_z[j], s.inj_species[j]) != 0:
                    return -1
        s.next_inject += 1
    return 0

cdef int run_loop(Sim *s) noexcept nogil:
    cdef int64_t c, j, fine = 0, k = 0
    cdef double t0, t
    s.volume_clock = 0.0
    for c in range(s.n_coarse):
        t0 = c * s.dt_coarse
        for j in range(s.steps_per_coarse):
            t = t0 + j * s.dt_fine
            if inject_due(s, t) != 0:
                return -1
            if process_events(s, t) != 0:
                return -1
            if fine % s.sample_every == 0:
                take_sample(s, k)
                k += 1
            if j == 0:
                s.volume_clock = t0 + s.dt_coarse
                if s.vol.n > 0 and step_volume(s, t0) != 0:
                    return -1
            if s.slab.n > 0 and step_slab(s, t + s.dt_fine) != 0:
                return -1
            if s.entering.n > 0 and enter_due(s, j + 1) != 0:
                return -1
            fine += 1
    t = s.n_coarse * s.dt_coarse
    if inject_due(s, t) != 0:
        return -1
    if process_events(s, t) != 0:
        return -1
    if k < s.n_samples:
        take_sample(s, k)
    return 0

# ==================================================================================================
# set-up of sites, tiles and voxels (needs no GIL; failures return -1 for MemoryError)

cdef int build_sites(Sim *s, Py_ssize_t n_rows, int32_t *row_type, int32_t *row_state,
                     int32_t *row_voxel, int32_t *row_count) noexcept nogil:
    # membrane sites are already in the id arrays; volume sites arrive as (type, state, voxel, count)
    cdef Py_ssize_t i, c
    cdef int64_t nv = s.n_vox * s.n_vox * s.n_vox
    cdef int64_t ix, iy, v
    cdef int32_t ty, vt, g, record
    cdef Py_ssize_t n_tiles = 2 * s.n_tile * s.n_tile
    s.heap_n = 0
    s.n_free_ids = 0
    memset(s.tile_site, 0xFF, (n_tiles + 1) * sizeof(int32_t))     # all bytes 0xFF: -1, no site
    memset(s.tile_code, 0, (n_tiles + 1) * sizeof(uint8_t))
    for i in range(s.n_membrane):
        s.heap_pos[i] = -1
        ix = <int64_t> ((s.site_x[i] + s.grid_half) / s.tile)
        iy = <int64_t> ((s.site_y[i] + s.grid_half) / s.tile)
        v = (ix * s.n_tile + iy) * 2 + s.site_plane[i]
        if s.tile_site[v] >= 0:
            return SHARED_TILE
        s.tile_site[v] = <int32_t> i
        s.site_tile[i] = v
        s.site_voxel[i] = -1
        s.tile_code[v] = s.state_code[s.site_state[i]]
        g = s.site_state[i]
        s.state_count[g] += 1
        s.bound += s.state_ligands[g]
        if s.exit_total[g] > 0.0:
            heap_set(s, <int32_t> i, mcsyn_exponential(&s.rng) / s.exit_total[g])
    for vt in range(s.n_volume_types):
        i = s.n_membrane + vt
        s.site_type[i] = s.volume_type_of[vt]
        s.site_state[i] = s.type_ground[s.volume_type_of[vt]]
        s.site_plane[i] = PLANE_AGGREGATE
        s.site_tile[i] = -1
        s.heap_pos[i] = -1
    s.n_ids = s.n_membrane + s.n_volume_types
    for i in range(n_rows):
        ty = row_type[i]
        vt = s.type_volume_index[ty]
        g = row_state[i]
        v = row_voxel[i]
        s.state_count[g] += row_count[i]
        if g == s.type_ground[ty]:
            s.vox_free[vt * nv + v] += row_count[i]
            s.free_total[vt] += row_count[i]
        elif s.exit_total[g] > 0.0:
            for c in range(row_count[i]):
                record = new_volume_record(s, ty, v)
                if record < 0:
                    return -1
                s.site_state[record] = g
                heap_set(s, record, mcsyn_exponential(&s.rng) / s.exit_total[g])
        # a non-ground state without exits (a drug block held fixed) needs no record at all
    if s.n_volume_types > 0:
        for v in range(nv):
            update_voxel_hazard(s, v)
    for vt in range(s.n_volume_types):
        if s.exit_total[s.type_ground[s.volume_type_of[vt]]] > 0.0:
            for v in range(nv):
                if s.vox_free[vt * nv + v]:
                    fenwick_add(s.fenwick + vt * (nv + 1), nv, v, s.vox_free[vt * nv + v])
            schedule_aggregate(s, vt, 0.0)
    return 0


cdef int allocate_sites(Sim *s, Py_ssize_t capacity) noexcept nogil:
    s.capacity = capacity
    s.site_type = <int32_t*> malloc(capacity * sizeof(int32_t))
    s.site_state = <int32_t*> malloc(capacity * sizeof(int32_t))
    s.site_plane = <int8_t*> malloc(capacity * sizeof(int8_t))
    s.site_x = <double*> malloc(capacity * sizeof(double))
    s.site_y = <double*> malloc(capacity * sizeof(double))
    s.site_voxel = <int32_t*> malloc(capacity * sizeof(int32_t))
    s.site_next = <double*> malloc(capacity * sizeof(double))
    s.site_tile = <int64_t*> malloc(capacity * sizeof(int64_t))
    s.heap = <int32_t*> malloc(capacity * sizeof(int32_t))
    s.heap_pos = <int32_t*> malloc(capacity * sizeof(int32_t))
    s.free_ids = <int32_t*> malloc(capacity * sizeof(int32_t))
    if (s.site_type == NULL or s.site_state == NULL or s.site_plane == NULL or s.site_x == NULL
            or s.site_y == NULL or s.site_voxel == NULL or s.site_next == NULL or s.site_tile == NULL
            or s.heap == NULL or s.heap_pos == NULL or s.free_ids == NULL):
        return -1
    return 0


cdef void free_sites(Sim *s) noexcept nogil:
    free(s.site_type); free(s.site_state); free(s.site_plane); free(s.site_x); free(s.site_y)
    free(s.site_voxel); free(s.site_next); free(s.site_tile); free(s.heap); free(s.heap_pos)
    free(s.free_ids)


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
        # two sites on one tile: found while the kernel fills the tile map (status SHARED_TILE)
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
        if status == SHARED_TILE:
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
