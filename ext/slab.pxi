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
    cdef Py_ssize_t n = p.n, i
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
        return STATUS_NO_MEMORY
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
    return STATUS_OK


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
            if s.slab.n > 256 and sort_slab_by_cell(s) != STATUS_OK:
                return STATUS_NO_MEMORY
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
    cdef double x0, y0, z0, x, y, z, dx, dy, dz, r2, r, r0, hz, clock1, clock2
    # initialised for the compilers' flow analysis only: sig is set at the first molecule (no
    # species is -1), the crossings by first_two_crossings through their pointers
    cdef double sig = 0.0, f = 0.0, f2 = 0.0
    cdef double gx, gy, gdx, gdy
    cdef bint up = False, crossed = False, crossed2 = False
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
    cdef const double *code_hazard = s.code_hazard
    cdef double grid_half = s.grid_half
    cdef double inv_tile = s.inv_tile
    cdef int64_t n_tile = s.n_tile
    cdef Py_ssize_t dead[CHUNK]
    cdef int32_t loud[CHUNK]        # the chunk's molecules the vector path left to the loop below
    cdef mcsyn_quiet_step_fn quiet_step = mcsyn_quiet_step
    cdef int q, n_loud
    cdef bint vector_stepped
    # the crossing step's results for the chunk (mcsyn_simd.h): the end points and the tiles the
    # binding branch below would read, for the molecules it marks quiet
    cdef mcsyn_crossing_step_fn crossing_step = mcsyn_crossing_step
    cdef mcsyn_crossing_params crossing
    cdef double cross_x[CHUNK]
    cdef double cross_y[CHUNK]
    cdef double cross_z[CHUNK]
    cdef int32_t cross_tile1[CHUNK]
    cdef int32_t cross_tile2[CHUNK]
    cdef uint8_t cross_quiet[CHUNK]
    cdef bint crossings_ready
    # its tile indices are int32
    if not (s.membrane_binding[0] and not s.slab_hazard[0] and no_tile < INT32_MAX):
        crossing_step = NULL
    if crossing_step != NULL:
        crossing.h = h
        crossing.inv_period = inv_period
        crossing.near2 = quiet_radius2(rim, s.sigma_fine[0])
        crossing.sig = s.sigma_fine[0]
        crossing.grid_half = grid_half
        crossing.inv_tile = inv_tile
        crossing.n_tile = <int32_t> n_tile
        crossing.no_tile = <int32_t> no_tile
    while c_end > 0:
        c0 = c_end - CHUNK if c_end > CHUNK else 0
        m = <int> (c_end - c0)
        if used + 3 * m > NORMAL_BLOCK:
            mcsyn_fill_normals(&rng, &s.lanes, normals, NORMAL_BLOCK)
            used = 0
        base = used
        n_dead = 0
        # the vector path steps the chunk's quiet molecules (no binding, no decay, the step ending
        # well inside the rim) of its first molecule's species; the loop below does the rest, in order
        n_loud = m
        vector_stepped = False
        crossings_ready = False
        if quiet_step != NULL:
            sp = psp[c0]
            if not s.membrane_binding[sp] and not s.slab_hazard[sp]:
                n_loud = quiet_step(px + c0, py + c0, pz + c0, psp + c0, normals + base, m, sp,
                                    s.sigma_fine[sp], h, inv_period, quiet_radius2(rim, s.sigma_fine[sp]), loud)
                vector_stepped = True
            elif sp == 0 and crossing_step != NULL:
                crossing_step(px + c0, py + c0, pz + c0, psp + c0, normals + base, m, 0, &crossing,
                              cross_x, cross_y, cross_z, cross_tile1, cross_tile2, cross_quiet)
                crossings_ready = True
        for q in range(n_loud):
            k = loud[q] if vector_stepped else q
            i = c0 + k
            if crossings_ready and cross_quiet[k]:
                # the binding branch's two tile reads, in the molecules' order, since a binding
                # just before changed its tile's code; a molecule that binds takes the branch itself
                clock1 = pclock[i] - code_hazard[tile_code[cross_tile1[k]]]
                clock2 = clock1 - code_hazard[tile_code[cross_tile2[k]]]
                if not (clock2 <= 0.0):
                    pclock[i] = clock2
                    px[i] = cross_x[k]
                    py[i] = cross_y[k]
                    pz[i] = cross_z[k]
                    continue
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
                        if status != STATUS_OK:
                            s.normals_used = base + 3 * m
                            return STATUS_NO_MEMORY
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
    return STATUS_OK
