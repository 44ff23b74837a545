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
