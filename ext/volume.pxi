# ==================================================================================================
# one coarse step of every volume molecule

cdef extern from *:
    void __builtin_prefetch(const void *address) noexcept nogil

cdef enum:
    VOXEL_PREFETCH_AHEAD = 8        # molecules ahead whose voxel entry is fetched into the cache: the
                                    # grid's random loads then overlap with the steps in between

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
                return STATUS_NO_MEMORY
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
    cdef int periodic = s.domain_periodic
    cdef int absorbing = not s.domain_reflects and not periodic
    cdef int32_t *pimage = p.image
    cdef double rd2 = r_domain * r_domain
    cdef double ri2 = s.r_inner * s.r_inner
    cdef double inv_voxel = 1.0 / s.voxel
    cdef int64_t n_vox = s.n_vox
    cdef int64_t v, nv = n_vox * n_vox * n_vox
    cdef double *vox_hazard0 = s.vox_hazard0
    cdef const uint16_t *vox_code = s.vox_code
    cdef const double *code_value = s.vox_code_value
    cdef int coded = s.vox_coded
    cdef int vt, binds = 0, status
    cdef int32_t sp, last_sp = -1
    cdef int64_t va
    cdef Py_ssize_t ahead
    # the vector step's results for the 8 molecules from block_start (mcsyn_simd.h), valid while the
    # pool keeps block_n molecules; the loop still reads each voxel's hazard in the molecules' order
    cdef mcsyn_volume_step_fn volume_step = mcsyn_volume_step
    cdef mcsyn_volume_params vector
    cdef double step_x[8]
    cdef double step_y[8]
    cdef double step_z[8]
    cdef int32_t step_voxel[8]
    cdef uint8_t step_quiet[8]
    cdef Py_ssize_t block_start = 0, block_end = 0, block_n = 0
    cdef int block_used = 0, j
    if periodic or nv >= INT32_MAX:
        volume_step = NULL
    vector.r_domain = r_domain
    vector.inv_voxel = inv_voxel
    vector.rd2 = rd2
    vector.ri2 = ri2
    vector.rm2 = rm2
    vector.mc2 = mc2
    vector.n_vox = <int32_t> n_vox
    vector.absorbing = absorbing
    while i < p.n:
        sp = psp[i]
        if sp != last_sp:
            last_sp = sp
            sig = s.sigma_volume[sp]
            hz = s.hazard_volume[sp]
            binds = s.vol_binding[sp]
            near2 = quiet_radius2(r_domain, sig)
            enter = s.enter_probability[sp] if s.volume_enters_slab else 0.0
        if volume_step != NULL:
            if p.n != block_n:
                block_end = 0       # a molecule left the pool: another one now fills its slot
            if i >= block_end and i + 8 <= p.n and used + 24 <= NORMAL_BLOCK and (sp == 0 or not binds):
                vector.sig = sig
                vector.near2 = near2
                vector.enters = enter > 0.0
                volume_step(px + i, py + i, pz + i, psp + i, normals + used, sp, &vector,
                            step_x, step_y, step_z, step_voxel, step_quiet)
                block_start = i
                block_end = i + 8
                block_n = p.n
                block_used = used
            j = <int> (i - block_start)
            if i < block_end and step_quiet[j] and used == block_used + 3 * j:
                hb = 0.0
                v = 0
                if binds:
                    v = step_voxel[j]
                    hb = code_value[vox_code[v]] if coded else vox_hazard0[v]
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
                            coded = s.vox_coded
                            if status < 0:
                                s.normals_used = used
                                return STATUS_NO_MEMORY
                        pool_remove(p, i)
                        continue
                px[i] = step_x[j]
                py[i] = step_y[j]
                pz[i] = step_z[j]
                used += 3
                i += 1
                continue
        x0 = px[i]
        y0 = py[i]
        z0 = pz[i]
        hb = 0.0
        v = 0
        if binds:
            ahead = i + VOXEL_PREFETCH_AHEAD
            if ahead < p.n:
                # a hint only: it changes no value (the molecule there may yet be swapped away)
                va = voxel_index(n_vox, inv_voxel, r_domain, px[ahead], py[ahead], pz[ahead])
                if coded:
                    __builtin_prefetch(vox_code + va)
                else:
                    __builtin_prefetch(vox_hazard0 + va)
            v = voxel_index(n_vox, inv_voxel, r_domain, x0, y0, z0)
            if sp == 0:
                hb = code_value[vox_code[v]] if coded else vox_hazard0[v]
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
                    coded = s.vox_coded     # a full code table may have turned the codes off
                    if status < 0:
                        s.normals_used = used
                        return STATUS_NO_MEMORY
                pool_remove(p, i)
                continue
        if used > NORMAL_BLOCK - 3:
            mcsyn_fill_normals(&rng, &s.lanes, normals, NORMAL_BLOCK)
            used = 0
        x = x0 + sig * normals[used]
        y = y0 + sig * normals[used + 1]
        z = z0 + sig * normals[used + 2]
        used += 3
        r2 = x * x + y * y + z * z
        if periodic:
            # the varicosity at the centre lies well inside the box (compile checks), so a step
            # that wraps cannot also reach it: wrapping first leaves the test below unchanged
            x = wrap_into_box(x, r_domain, pimage + 3 * i)
            y = wrap_into_box(y, r_domain, pimage + 3 * i + 1)
            z = wrap_into_box(z, r_domain, pimage + 3 * i + 2)
        elif r2 >= rd2:
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
                if enter_slab_later(s, &rng, x, y, sp) != STATUS_OK:
                    s.rng = rng
                    s.normals_used = used
                    return STATUS_NO_MEMORY
                pool_remove(p, i)
                continue
        px[i] = x
        py[i] = y
        pz[i] = z
        i += 1
    s.rng = rng
    s.normals_used = used
    return STATUS_OK
