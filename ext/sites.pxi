# ==================================================================================================
# site state changes
from libc.stdint cimport uint16_t
from libc.string cimport memcpy

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
    s.heap_key = <double*> grow_array(s.heap_key, cap, sizeof(double), &failed)
    s.heap_pos = <int32_t*> grow_array(s.heap_pos, cap, sizeof(int32_t), &failed)
    s.free_ids = <int32_t*> grow_array(s.free_ids, cap, sizeof(int32_t), &failed)
    if failed:
        return STATUS_NO_MEMORY
    s.capacity = cap
    return STATUS_OK


cdef int32_t new_volume_record(Sim *s, int32_t ty, int64_t v) noexcept nogil:
    # a record for a volume site leaving its ground state; the caller then sets its state
    cdef int32_t site
    if s.n_free_ids > 0:
        s.n_free_ids -= 1
        site = s.free_ids[s.n_free_ids]
    else:
        if s.n_ids == s.capacity and grow_sites(s) != STATUS_OK:
            return STATUS_NO_MEMORY
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


cdef enum:
    VOX_CODE_LIMIT = 65535          # codes of voxel hazards: they fit a uint16_t
    VOX_HASH_BITS = 17              # 2^17 hash slots for at most 65535 values: under half full
    VOX_CODED_MIN_VOXELS = 32768    # smaller grids keep plain doubles (256 kB: they stay in L2 anyway)

# the limits in force (tests change them with _set_voxel_coding to reach every path)
cdef int64_t vox_coded_min_voxels = VOX_CODED_MIN_VOXELS
cdef int32_t vox_code_limit = VOX_CODE_LIMIT
cdef int32_t vox_code_keep = VOX_CODE_LIMIT // 2   # most codes a rebuilt table may need and stay on:
                                                   # with more, rebuilds would follow one another


def _set_voxel_coding(min_voxels=VOX_CODED_MIN_VOXELS, code_limit=VOX_CODE_LIMIT, keep=None):
    """For tests: code voxel hazards from grids of ``min_voxels`` voxels up, with at most
    ``code_limit`` codes, falling back to plain doubles when a rebuilt table needs more than
    ``keep`` (default half the limit). A run's results never depend on these; called without
    arguments it restores the defaults. Not thread-safe: call it while no run is under way."""
    global vox_coded_min_voxels, vox_code_limit, vox_code_keep
    keep = code_limit // 2 if keep is None else keep
    if not (min_voxels >= 1 and 1 <= code_limit <= VOX_CODE_LIMIT and 0 <= keep <= code_limit):
        raise ValueError(f"_set_voxel_coding needs min_voxels >= 1, 1 <= code_limit <= {VOX_CODE_LIMIT} "
                         f"and 0 <= keep <= code_limit")
    vox_coded_min_voxels = min_voxels
    vox_code_limit = code_limit
    vox_code_keep = keep


cdef inline double voxel_hazard(Sim *s, int64_t v) noexcept nogil:
    # recomputed from the counts (not incremented) so that no rounding drift accumulates
    cdef int64_t nv = s.n_vox * s.n_vox * s.n_vox
    cdef double h = 0.0
    cdef int vt
    for vt in range(s.n_volume_types):
        h += s.vol_bind_hazard[vt * s.n_species] * s.vox_free[vt * nv + v]
    return h * s.voxel_weight[v]


cdef int32_t hazard_code(Sim *s, double h) noexcept nogil:
    # the code of the value h (compared bit for bit), a new code if it is new; -1 if the table is full
    cdef uint64_t key, other
    cdef uint64_t mask = (<uint64_t> 1 << VOX_HASH_BITS) - 1
    cdef uint64_t slot
    cdef int32_t c
    memcpy(&key, &h, sizeof(double))
    slot = (key * <uint64_t> 0x9E3779B97F4A7C15) >> (64 - VOX_HASH_BITS)
    while True:
        c = s.vox_code_slot[slot]
        if c < 0:
            break
        memcpy(&other, &s.vox_code_value[c], sizeof(double))
        if other == key:
            return c
        slot = (slot + 1) & mask
    if s.vox_n_codes >= vox_code_limit:
        return -1
    c = s.vox_n_codes
    s.vox_n_codes += 1
    s.vox_code_value[c] = h
    s.vox_code_slot[slot] = c
    return c


cdef void code_all_voxels(Sim *s) noexcept nogil:
    # (re)builds the table from the voxels' hazards now, so values no voxel holds any more drop
    # out; a grid that needs more than vox_code_keep codes even so keeps plain doubles from then on
    cdef int64_t v, nv = s.n_vox * s.n_vox * s.n_vox
    cdef int32_t c = 0
    memset(s.vox_code_slot, 0xFF, (<size_t> 1 << VOX_HASH_BITS) * sizeof(int32_t))
    s.vox_n_codes = 0
    for v in range(nv):
        c = hazard_code(s, voxel_hazard(s, v))
        if c < 0:
            break
        s.vox_code[v] = <uint16_t> c
    if c < 0 or s.vox_n_codes > vox_code_keep:
        s.vox_coded = 0
        for v in range(nv):
            s.vox_hazard0[v] = voxel_hazard(s, v)


cdef inline void update_voxel_hazard(Sim *s, int64_t v) noexcept nogil:
    cdef double h = voxel_hazard(s, v)
    cdef int32_t c
    if not s.vox_coded:
        s.vox_hazard0[v] = h
        return
    c = hazard_code(s, h)
    if c >= 0:
        s.vox_code[v] = <uint16_t> c
    else:
        code_all_voxels(s)      # the counts are already changed: voxel v is coded with the rest


cdef void change_free(Sim *s, int vt, int64_t v, int64_t delta, double t) noexcept nogil:
    cdef int64_t nv = s.n_vox * s.n_vox * s.n_vox
    s.vox_free[vt * nv + v] += <int32_t> delta
    s.free_total[vt] += delta
    update_voxel_hazard(s, v)
    if s.track_ground[vt]:
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
