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
        if release_from_site(s, site, sp, t) != STATUS_OK:
            return STATUS_NO_MEMORY
    elif kind == EXIT_UPTAKE:
        s.taken_up += 1
    elif kind == EXIT_DEGRADE:
        s.degraded += 1
    elif kind == EXIT_EFFLUX:
        s.released += 1
        s.effluxed += 1
        if release_from_site(s, site, sp, t) != STATUS_OK:
            return STATUS_NO_MEMORY
    set_site_state(s, site, s.exit_to[e], t_event)
    return STATUS_OK


cdef int process_events(Sim *s, double t) noexcept nogil:
    # the site exits due by t; rate changes due by t first (schedule.pxi), each after the exits
    # that fall before it
    if s.next_change < s.n_changes and apply_due_changes(s, t) != STATUS_OK:
        return STATUS_NO_MEMORY
    return fire_due_sites(s, t, t)


cdef int fire_due_sites(Sim *s, double limit, double t) noexcept nogil:
    # every site exit due by limit, in time order; t is the step in which they take effect
    cdef int32_t site, record
    cdef int vt
    cdef int64_t v, nv = s.n_vox * s.n_vox * s.n_vox
    cdef double t_event
    while s.heap_n > 0 and s.site_next[s.heap[0]] <= limit:
        site = s.heap[0]
        t_event = s.site_next[site]
        if s.site_plane[site] == PLANE_AGGREGATE:
            # some ground-state site of this volume type changes state: pick its voxel
            vt = <int> (site - s.n_membrane)
            v = fenwick_find(s.fenwick + vt * (nv + 1), nv, <int64_t> (mcsyn_uniform(&s.rng) * s.free_total[vt]))
            record = new_volume_record(s, s.volume_type_of[vt], v)
            if record < 0:
                return STATUS_NO_MEMORY
            change_free(s, vt, v, -1, t_event)
            if fire_site(s, record, t_event, t) != STATUS_OK:
                return STATUS_NO_MEMORY
        elif fire_site(s, site, t_event, t) != STATUS_OK:
            return STATUS_NO_MEMORY
    return STATUS_OK


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
