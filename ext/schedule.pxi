# ==================================================================================================
# time-stamped rate changes: a first-order rate that changes during the run (the kon·C of a drug
# whose concentration changes, mcsyn.rate_schedule). At each change time the exit row takes its
# new rate, the totals of the states it leaves are recomputed, and every clock of a site (or
# volume aggregate) in such a state is redrawn from the change time. Exits are memoryless, so the
# redrawn clock has the law of the remaining time at the new rate: the change is exact.
#
# Only exits that leave a membrane state or a volume type's ground state may change (checked in
# _prepare_changes): a volume site away from its ground state holds a record, with its own clock,
# only when its state had an exit at the start.

cdef void redraw_changed_clocks(Sim *s, double t) noexcept nogil:
    cdef Py_ssize_t i
    cdef int32_t g
    cdef int vt
    for i in range(s.n_membrane):
        g = s.site_state[i]
        if s.state_changed[g]:
            if s.exit_total[g] > 0.0:
                heap_set(s, <int32_t> i, t + mcsyn_exponential(&s.rng) / s.exit_total[g])
            else:
                heap_remove(s, <int32_t> i)
    for vt in range(s.n_volume_types):
        if s.state_changed[s.type_ground[s.volume_type_of[vt]]]:
            schedule_aggregate(s, vt, t)


cdef int apply_due_changes(Sim *s, double t) noexcept nogil:
    # every change due by t, in time order; the site exits that fall before a change happen first,
    # at the old rates
    cdef double t_change, total
    cdef Py_ssize_t i, first
    cdef int32_t g, e
    while s.next_change < s.n_changes and s.change_time[s.next_change] <= t:
        t_change = s.change_time[s.next_change]
        if fire_due_sites(s, t_change, t) != STATUS_OK:
            return STATUS_NO_MEMORY
        first = s.next_change
        while s.next_change < s.n_changes and s.change_time[s.next_change] == t_change:
            s.live_exit_rate[s.change_exit[s.next_change]] = s.change_rate[s.next_change]
            s.next_change += 1
        for i in range(first, s.next_change):
            g = s.change_state[i]
            # summed in row order from 0, as prepare sums the model's totals
            total = 0.0
            for e in range(s.exit_start[g], s.exit_start[g + 1]):
                total += s.live_exit_rate[e]
            s.live_exit_total[g] = total
            s.state_changed[g] = 1
        redraw_changed_clocks(s, t_change)
        for i in range(first, s.next_change):
            s.state_changed[s.change_state[i]] = 0
    return STATUS_OK


cdef _prepare_changes(PreparedModel p, object model):
    # the model's rate changes (optional fields of the kernel model), checked once, and which
    # volume types keep their free sites in the Fenwick tree
    cdef dict a = p.arrays
    n = len(getattr(model, "rate_change_time_us", ()))
    for name, key, dtype in (("rate_change_time_us", "change_time", np.float64),
                             ("rate_change_exit", "change_exit", np.int32),
                             ("rate_change_per_us", "change_rate", np.float64)):
        a[key] = _frozen(_array(model, name, dtype, n) if n else np.zeros(0, dtype=dtype))
    time, exit_row, rate = a["change_time"], a["change_exit"], a["change_rate"]
    exit_start, state_type, type_volume = a["exit_start"], a["state_type"], a["type_volume_index"]
    n_exits = int(exit_start[p.n_states]) if p.n_states else 0
    if n and not (np.all(np.isfinite(time)) and time.min() >= 0 and np.all(np.diff(time) >= 0)):
        raise ValueError("kernel input 'rate_change_time_us' must be finite, >= 0 and sorted")
    if n and (exit_row.min() < 0 or exit_row.max() >= n_exits):
        raise ValueError(f"kernel input 'rate_change_exit' has an exit outside [0, {n_exits})")
    if n and not (np.all(np.isfinite(rate)) and rate.min() >= 0):
        raise ValueError("kernel input 'rate_change_per_us' must be finite and >= 0")
    source = (np.searchsorted(exit_start, exit_row, side="right") - 1).astype(np.int32)
    if n and np.any((type_volume[state_type[source]] >= 0) & (a["type_ground"][state_type[source]] != source)):
        raise ValueError("kernel input 'rate_change_exit': a volume site type's rates may change only "
                         "for exits from its ground state")
    a["change_state"] = _frozen(source)
    ground_of = a["type_ground"][a["volume_type_of"][:p.n_volume_types]]
    track = (a["exit_total"][ground_of] > 0) | np.isin(ground_of, source)
    a["track_ground"] = _frozen(np.concatenate((track, [False])).astype(np.intc))
    p.ground_exits = bool(track.any())


cdef tuple _wire_changes(Sim *s, PreparedModel p):
    # this run's copies of the exit tables when its rates change (the prepared model's are shared
    # and read-only); the caller keeps the returned arrays alive for the run
    s.track_ground = <const int*> p.table("track_ground")
    s.n_changes = p.arrays["change_time"].shape[0]
    s.next_change = 0
    if s.n_changes == 0:
        return ()
    rates = np.array(p.arrays["exit_rate"], copy=True)
    totals = np.array(p.arrays["exit_total"], copy=True)
    changed = np.zeros(max(p.n_states, 1), dtype=np.uint8)
    s.live_exit_rate = <double*> _ptr(rates)
    s.live_exit_total = <double*> _ptr(totals)
    s.exit_rate = <const double*> s.live_exit_rate
    s.exit_total = <const double*> s.live_exit_total
    s.state_changed = <uint8_t*> _ptr(changed)
    s.change_time = <const double*> p.table("change_time")
    s.change_exit = <const int32_t*> p.table("change_exit")
    s.change_state = <const int32_t*> p.table("change_state")
    s.change_rate = <const double*> p.table("change_rate")
    return rates, totals, changed
