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
    row[SERIES_RELEASED] = s.released
    row[SERIES_FREE_CLEFT] = in_cleft
    row[SERIES_FREE_BAND] = s.slab.n - in_cleft
    row[SERIES_FREE_VOLUME] = s.vol.n + s.entering.n
    row[SERIES_BOUND] = s.bound
    row[SERIES_TAKEN_UP] = s.taken_up
    row[SERIES_ESCAPED] = s.escaped
    row[SERIES_DEGRADED] = s.degraded
    row[SERIES_EFFLUXED] = s.effluxed
    row[SERIES_BINDING_EVENTS] = s.binding_events
    for g in range(s.n_states):
        s.states_series[k * s.n_states + g] = s.state_count[g]
    if s.n_probes:
        count_in_probes(s, s.probe_series + k * s.n_probes)
    if s.snapshot_every and k % s.snapshot_every == 0 and k // s.snapshot_every < s.n_snapshots:
        count_in_voxels(s, s.snapshots + (k // s.snapshot_every) * s.n_vox * s.n_vox * s.n_vox)
        count_occupied_in_voxels(s, s.occupied_snapshots
                                 + (k // s.snapshot_every) * s.n_volume_types * s.n_vox * s.n_vox * s.n_vox)

cdef void count_in_probes(Sim *s, int64_t *row) noexcept nogil:
    # free volume molecules inside each detector region (molecules waiting to enter the cleft are
    # not counted); separations to a centre are taken to its nearest periodic image in a box
    cdef Py_ssize_t i, d
    cdef double dx, dy, dz, box = 2.0 * s.r_domain, r2
    for d in range(s.n_probes):
        row[d] = 0
    for i in range(s.vol.n):
        for d in range(s.n_probes):
            dx = s.vol.x[i] - s.probe_centre[3 * d]
            dy = s.vol.y[i] - s.probe_centre[3 * d + 1]
            dz = s.vol.z[i] - s.probe_centre[3 * d + 2]
            if s.domain_periodic:
                dx = nearest_image(dx, box)
                dy = nearest_image(dy, box)
                dz = nearest_image(dz, box)
            r2 = s.probe_radius[d] * s.probe_radius[d]
            if s.probe_shape[d] == PROBE_SPHERE:
                if dx * dx + dy * dy + dz * dz < r2:
                    row[d] += 1
            elif dx * dx + dy * dy < r2 and fabs(dz) < s.probe_half_length[d]:
                row[d] += 1

cdef void count_in_voxels(Sim *s, int32_t *grid) noexcept nogil:
    cdef Py_ssize_t i
    cdef double inv_voxel = 1.0 / s.voxel
    for i in range(s.vol.n):
        grid[voxel_index(s.n_vox, inv_voxel, s.r_domain, s.vol.x[i], s.vol.y[i], s.vol.z[i])] += 1

cdef void count_occupied_in_voxels(Sim *s, int32_t *grid) noexcept nogil:
    # grid is [n_volume_types, n_vox^3]. "Occupied" is the series' <group>:occupied: a state holding
    # transmitter (state_ligands > 0). Only a volume record can be in one: ground states hold none,
    # a run starts with no site holding transmitter (simulate checks), and a recycled record is
    # back in its ground state.
    cdef Py_ssize_t i
    cdef int64_t nv = s.n_vox * s.n_vox * s.n_vox
    for i in range(s.n_membrane + s.n_volume_types, s.n_ids):
        if s.state_ligands[s.site_state[i]] > 0:
            grid[s.type_volume_index[s.site_type[i]] * nv + s.site_voxel[i]] += 1

cdef int inject_due(Sim *s, double t) noexcept nogil:
    cdef Py_ssize_t j
    cdef int64_t _
    if s.fb_n_stim > 0:
        feedback_due(s, t)
    while s.next_inject < s.n_inject and s.inj_time[s.next_inject] <= t:
        j = s.next_inject
        if s.fb_n_stim > 0 and not feedback_admits(s, j):
            s.next_inject += 1
            continue
        for _ in range(s.inj_count[j]):
            s.released += 1
            if s.inj_volume[j]:
                if add_volume_molecule(s, s.inj_x[j], s.inj_y[j], s.inj_z[j], s.inj_species[j], t) != STATUS_OK:
                    return STATUS_NO_MEMORY
            else:
                if pool_add(s, &s.slab, s.inj_x[j], s.inj_y[j], s.inj_z[j], s.inj_species[j]) != STATUS_OK:
                    return STATUS_NO_MEMORY
        s.next_inject += 1
    return STATUS_OK

cdef int64_t idle_fine_steps(Sim *s, double t0, int64_t j, int64_t fine, int64_t k) noexcept nogil:
    # With the cleft empty and nothing entering it, a fine step that is neither a window's start
    # (the volume step) nor a sample, and at which no injection, site event or rate change falls
    # due, does nothing and draws nothing: the volume presets' runs are mostly such steps. Returns
    # how many of the steps after step j of the window starting at t0 are of that kind, so the
    # loop can pass over them with the same bits (the due times are compared with each step's
    # time as the loop computes it).
    cdef int64_t last = s.steps_per_coarse - 1            # the window's last step
    cdef int64_t next_sample = k * s.sample_every - fine  # steps from this one to the next sample
    cdef double due = INFINITY
    cdef int64_t jd
    if next_sample - 1 < last - j:
        last = j + next_sample - 1
    if s.next_inject < s.n_inject:
        due = s.inj_time[s.next_inject]
    if s.heap_n > 0 and s.site_next[s.heap[0]] < due:
        due = s.site_next[s.heap[0]]
    if s.next_change < s.n_changes and s.change_time[s.next_change] < due:
        due = s.change_time[s.next_change]
    if due <= t0 + last * s.dt_fine:
        # the first step at or after the due time, from an estimate corrected by the loop's own sums
        jd = <int64_t> ((due - t0) / s.dt_fine)
        if jd < j + 1:
            jd = j + 1
        while jd > j + 1 and t0 + (jd - 1) * s.dt_fine >= due:
            jd -= 1
        while t0 + jd * s.dt_fine < due:
            jd += 1
        last = jd - 1
    return last - j if last > j else 0


cdef int run_loop(Sim *s) noexcept nogil:
    # Resumable: before every fine step it checks for a stop request (mcsyn_interrupt.h) and, if
    # there is one, saves where it is in s and returns STATUS_INTERRUPTED; called again, it goes on
    # from that step, so a paused and resumed run gives the same bits as one that never paused.
    cdef int64_t c, j, skip, fine = s.fine_done, k = s.samples_done
    cdef double t0, t
    cdef int watch_signals = s.watch_signals
    if fine == 0:
        s.volume_clock = 0.0
    c = fine // s.steps_per_coarse
    j = fine - c * s.steps_per_coarse
    while c < s.n_coarse:
        t0 = c * s.dt_coarse
        while j < s.steps_per_coarse:
            if mcsyn_stop_requested(watch_signals):
                s.fine_done = fine
                s.samples_done = k
                return STATUS_INTERRUPTED
            t = t0 + j * s.dt_fine
            if inject_due(s, t) != STATUS_OK:
                return STATUS_NO_MEMORY
            if process_events(s, t) != STATUS_OK:
                return STATUS_NO_MEMORY
            if fine % s.sample_every == 0:
                take_sample(s, k)
                k += 1
            if j == 0:
                s.volume_clock = t0 + s.dt_coarse
                if s.vol.n > 0 and step_volume(s, t0) != STATUS_OK:
                    return STATUS_NO_MEMORY
            if s.slab.n > 0 and step_slab(s, t + s.dt_fine) != STATUS_OK:
                return STATUS_NO_MEMORY
            if s.entering.n > 0 and enter_due(s, j + 1) != STATUS_OK:
                return STATUS_NO_MEMORY
            if s.slab.n == 0 and s.entering.n == 0 and s.fb_n_stim == 0:
                skip = idle_fine_steps(s, t0, j, fine, k)
                fine += skip
                j += skip
            fine += 1
            j += 1
        j = 0
        c += 1
    s.fine_done = fine
    s.samples_done = k
    t = s.n_coarse * s.dt_coarse
    if inject_due(s, t) != STATUS_OK:
        return STATUS_NO_MEMORY
    if process_events(s, t) != STATUS_OK:
        return STATUS_NO_MEMORY
    if k < s.n_samples:
        take_sample(s, k)
    return STATUS_OK
