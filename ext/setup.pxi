# ==================================================================================================
# set-up of sites, tiles and voxels (needs no GIL; failures return STATUS_NO_MEMORY or STATUS_SHARED_TILE)

cdef int build_sites(Sim *s, Py_ssize_t n_rows, int32_t *row_type, int32_t *row_state,
                     int32_t *row_voxel, int32_t *row_count) noexcept nogil:
    # membrane sites are already in the id arrays; volume sites arrive as (type, state, voxel, count)
    cdef Py_ssize_t i, _
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
            return STATUS_SHARED_TILE
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
            for _ in range(row_count[i]):
                record = new_volume_record(s, ty, v)
                if record < 0:
                    return STATUS_NO_MEMORY
                s.site_state[record] = g
                heap_set(s, record, mcsyn_exponential(&s.rng) / s.exit_total[g])
        # a non-ground state without exits (a drug block held fixed) needs no record at all
    if s.vox_coded:
        code_all_voxels(s)
    elif s.n_volume_types > 0:
        for v in range(nv):
            update_voxel_hazard(s, v)
    for vt in range(s.n_volume_types):
        if s.track_ground[vt]:
            for v in range(nv):
                if s.vox_free[vt * nv + v]:
                    fenwick_add(s.fenwick + vt * (nv + 1), nv, v, s.vox_free[vt * nv + v])
            schedule_aggregate(s, vt, 0.0)
    return STATUS_OK


cdef int allocate_sites(Sim *s, Py_ssize_t capacity) noexcept nogil:
    cdef int64_t nv = s.n_vox * s.n_vox * s.n_vox
    s.capacity = capacity
    s.vox_coded = s.n_volume_types > 0 and nv >= vox_coded_min_voxels
    s.vox_code = NULL
    s.vox_code_value = NULL
    s.vox_code_slot = NULL
    s.site_type = <int32_t*> malloc(capacity * sizeof(int32_t))
    s.site_state = <int32_t*> malloc(capacity * sizeof(int32_t))
    s.site_plane = <int8_t*> malloc(capacity * sizeof(int8_t))
    s.site_x = <double*> malloc(capacity * sizeof(double))
    s.site_y = <double*> malloc(capacity * sizeof(double))
    s.site_voxel = <int32_t*> malloc(capacity * sizeof(int32_t))
    s.site_next = <double*> malloc(capacity * sizeof(double))
    s.site_tile = <int64_t*> malloc(capacity * sizeof(int64_t))
    s.heap = <int32_t*> malloc(capacity * sizeof(int32_t))
    s.heap_key = <double*> malloc(capacity * sizeof(double))
    s.heap_pos = <int32_t*> malloc(capacity * sizeof(int32_t))
    s.free_ids = <int32_t*> malloc(capacity * sizeof(int32_t))
    if (s.site_type == NULL or s.site_state == NULL or s.site_plane == NULL or s.site_x == NULL
            or s.site_y == NULL or s.site_voxel == NULL or s.site_next == NULL or s.site_tile == NULL
            or s.heap == NULL or s.heap_key == NULL or s.heap_pos == NULL or s.free_ids == NULL):
        return STATUS_NO_MEMORY
    if s.vox_coded:
        s.vox_code = <uint16_t*> malloc(nv * sizeof(uint16_t))
        s.vox_code_value = <double*> malloc(VOX_CODE_LIMIT * sizeof(double))
        s.vox_code_slot = <int32_t*> malloc((<size_t> 1 << VOX_HASH_BITS) * sizeof(int32_t))
        if s.vox_code == NULL or s.vox_code_value == NULL or s.vox_code_slot == NULL:
            return STATUS_NO_MEMORY
    return STATUS_OK


cdef void free_sites(Sim *s) noexcept nogil:
    free(s.site_type); free(s.site_state); free(s.site_plane); free(s.site_x); free(s.site_y)
    free(s.site_voxel); free(s.site_next); free(s.site_tile); free(s.heap); free(s.heap_key); free(s.heap_pos)
    free(s.free_ids); free(s.vox_code); free(s.vox_code_value); free(s.vox_code_slot)
