# ==================================================================================================
# closed-loop autoreceptor feedback: the release of each train stimulus, drawn at its time from the
# autoreceptor activation realised in this run (mcsyn/autoreceptor.py has the model)
#
# a(t) is a first-order filter (time constant tau) of the group's weighted active fraction
# f(t) = sum_s w_s n_s(t) / N. Each fine step advances it exactly with f held at the value the
# previous step's events left (the counts are piecewise constant between steps):
#     a <- f + (a - f) exp(-dt_fine / tau)
# starting from a(0) = f(0). Stimulus k of a train reads a_k = a(t_k - delay) (a(0) for an earlier
# time) and each filled release site of its train releases with p_k = u_k (1 - g a_k); the sites
# then follow the Tsodyks-Markram recovery and facilitation of mcsyn.placement.plastic_train_vesicles
# (a train without plasticity: one site, always refilled, u_k = U). Which molecules a vesicle
# carries is drawn in Python per candidate site; an injection group gated by stimulus k is
# injected when its site index is below the vesicles released at k.

cdef double feedback_active_fraction(Sim *s) noexcept nogil:
    cdef double f = 0.0
    cdef int i
    for i in range(s.fb_n_states):
        f += s.fb_weight[i] * s.state_count[s.fb_state[i]]
    return f * s.fb_inv_sites


cdef void feedback_decide(Sim *s) noexcept nogil:
    # draw the vesicles released by the next stimulus
    cdef Py_ssize_t k = s.fb_next_stim
    cdef int32_t tr = s.fb_stim_train[k]
    cdef int64_t i, empty, released = 0
    cdef double u = s.fb_train_u[tr], p
    while s.fb_next_read <= k:          # a group of stimulus k came due before its read time
        s.fb_a_read[s.fb_next_read] = s.fb_a
        s.fb_next_read += 1
    if s.fb_seen[tr]:
        # recovery and facilitation over the interval since the train's previous stimulus
        empty = s.fb_train_sites[tr] - s.fb_filled[tr]
        for i in range(empty):
            if mcsyn_uniform(&s.rng) >= s.fb_train_stay_empty[tr]:
                s.fb_filled[tr] += 1
        s.fb_u[tr] = u + s.fb_u[tr] * (1.0 - u) * s.fb_train_facil[tr]
    else:
        s.fb_seen[tr] = 1
        s.fb_filled[tr] = s.fb_train_sites[tr]
        s.fb_u[tr] = u
    p = s.fb_u[tr] * (1.0 - s.fb_gain * s.fb_a_read[k])
    for i in range(s.fb_filled[tr]):
        if mcsyn_uniform(&s.rng) < p:
            released += 1
    s.fb_filled[tr] -= released
    s.fb_released[k] = released
    s.fb_next_stim += 1


cdef void feedback_due(Sim *s, double t) noexcept nogil:
    # one fine step of the filter, then the reads and stimuli due by t
    cdef double f
    if s.fb_next_read < s.fb_n_stim:
        f = feedback_active_fraction(s)
        if s.fb_started:
            s.fb_a = f + (s.fb_a - f) * s.fb_decay
        else:
            s.fb_a = f
            s.fb_started = 1
    while s.fb_next_read < s.fb_n_stim and s.fb_read_time[s.fb_next_read] <= t:
        s.fb_a_read[s.fb_next_read] = s.fb_a
        s.fb_next_read += 1
    while s.fb_next_stim < s.fb_n_stim and s.fb_stim_time[s.fb_next_stim] <= t:
        feedback_decide(s)


cdef bint feedback_admits(Sim *s, Py_ssize_t j) noexcept nogil:
    # whether injection group j happens: ungated, or its site released at its stimulus
    cdef int32_t k = s.inj_gate[j]
    if k < 0:
        return True
    while s.fb_next_stim <= k:
        feedback_decide(s)
    return s.inj_slot[j] < s.fb_released[k]


# --------------------------------------------------------------------------------------------------
# the Python-level half: checks once per model (prepare) and per run (simulate)

cdef _prepare_feedback(PreparedModel p, object model):
    cdef dict a = p.arrays
    times = getattr(model, "feedback_stimulus_time_us", None)
    p.fb_n_stim = 0 if times is None else len(times)
    if p.fb_n_stim == 0:
        return
    n, n_trains = p.fb_n_stim, len(model.feedback_train_sites)
    a["fb_stim_time"] = _frozen(_array(model, "feedback_stimulus_time_us", np.float64, n))
    a["fb_read_time"] = _frozen(_array(model, "feedback_read_time_us", np.float64, n))
    a["fb_stim_train"] = _frozen(_array(model, "feedback_stimulus_train", np.int32, n))
    a["fb_train_sites"] = _frozen(_array(model, "feedback_train_sites", np.int32, n_trains))
    for name in ("u", "stay_empty", "facilitation"):
        a[f"fb_train_{name}"] = _frozen(_array(model, f"feedback_train_{name}", np.float64, n_trains))
    a["fb_state"] = _frozen(_array(model, "feedback_states", np.int32, -1))
    a["fb_weight"] = _frozen(_array(model, "feedback_weights", np.float64, len(a["fb_state"])))
    p.fb_n_states = len(a["fb_state"])
    p.fb_n_trains = n_trains
    p.fb_gain, p.fb_decay, p.fb_inv_sites = model.feedback_gain, model.feedback_decay, model.feedback_inv_sites
    if np.any(np.diff(a["fb_stim_time"]) < 0) or np.any(np.diff(a["fb_read_time"]) < 0) \
            or np.any(a["fb_read_time"] > a["fb_stim_time"]):
        raise ValueError("kernel input 'feedback_stimulus_time_us' must be sorted, read times at or before them")
    if a["fb_stim_train"].min() < 0 or a["fb_stim_train"].max() >= n_trains or a["fb_train_sites"].min() < 1:
        raise ValueError("kernel input 'feedback_stimulus_train' names an unknown train, or a train has no sites")
    for name in ("fb_train_u", "fb_train_stay_empty", "fb_train_facilitation"):
        if not np.all((a[name] >= 0) & (a[name] <= 1)):
            raise ValueError(f"kernel input {name!r} must lie in [0, 1]")
    if p.fb_n_states and (a["fb_state"].min() < 0 or a["fb_state"].max() >= p.n_states):
        raise ValueError("kernel input 'feedback_states' has an index outside the states")
    if not (0 <= p.fb_gain <= 1 and 0 <= p.fb_decay <= 1 and p.fb_inv_sites >= 0) or np.any(a["fb_weight"] < 0):
        raise ValueError("kernel feedback gain and decay must lie in [0, 1], weights and 1/sites >= 0")


cdef tuple _wire_feedback(Sim *s, PreparedModel p, object run):
    # per-run feedback state and outputs; returns the arrays the pointers point into
    n_inj = run.n_inject
    gate = getattr(run, "inject_gate", None)
    if p.fb_n_stim == 0:
        if gate is not None and len(gate) and np.any(np.asarray(gate) >= 0):
            raise ValueError("kernel input 'inject_gate' gates injections of a model without feedback")
        return ()
    gate = _array(run, "inject_gate", np.int32, n_inj)
    slot = _array(run, "inject_slot", np.int32, n_inj)
    if n_inj and (gate.min() < -1 or gate.max() >= p.fb_n_stim or slot.min() < 0):
        raise ValueError("kernel input 'inject_gate'/'inject_slot' out of range")
    filled = np.zeros(p.fb_n_trains, dtype=np.int64)
    u = np.zeros(p.fb_n_trains, dtype=np.float64)
    seen = np.zeros(p.fb_n_trains, dtype=np.int8)
    a_read = np.zeros(p.fb_n_stim, dtype=np.float64)
    released = np.zeros(p.fb_n_stim, dtype=np.int64)
    s.inj_gate, s.inj_slot = <const int32_t*> _ptr(gate), <const int32_t*> _ptr(slot)
    s.fb_n_stim, s.fb_next_stim, s.fb_next_read = p.fb_n_stim, 0, 0
    s.fb_n_states, s.fb_started = p.fb_n_states, 0
    s.fb_state = <const int32_t*> p.table("fb_state")
    s.fb_weight = <const double*> p.table("fb_weight")
    s.fb_inv_sites, s.fb_gain, s.fb_decay, s.fb_a = p.fb_inv_sites, p.fb_gain, p.fb_decay, 0.0
    s.fb_stim_time = <const double*> p.table("fb_stim_time")
    s.fb_read_time = <const double*> p.table("fb_read_time")
    s.fb_stim_train = <const int32_t*> p.table("fb_stim_train")
    s.fb_train_sites = <const int32_t*> p.table("fb_train_sites")
    s.fb_train_u = <const double*> p.table("fb_train_u")
    s.fb_train_stay_empty = <const double*> p.table("fb_train_stay_empty")
    s.fb_train_facil = <const double*> p.table("fb_train_facilitation")
    s.fb_filled, s.fb_u, s.fb_seen = <int64_t*> _ptr(filled), <double*> _ptr(u), <int8_t*> _ptr(seen)
    s.fb_a_read, s.fb_released = <double*> _ptr(a_read), <int64_t*> _ptr(released)
    return gate, slot, filled, u, seen, a_read, released
