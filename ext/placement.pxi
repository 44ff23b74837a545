# ==================================================================================================
# placing molecules

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
        if s.domain_periodic:
            return add_wrapped_volume_molecule(s, x, y, z, sp, x0, y0, z0)
        if r2 >= s.r_domain * s.r_domain:
            if not s.domain_reflects:
                s.escaped += 1
                return STATUS_OK
            reflect_at_sphere(x0, y0, z0, &x, &y, &z, s.r_domain, False)
        elif r2 < s.r_inner * s.r_inner:
            reflect_at_sphere(x0, y0, z0, &x, &y, &z, s.r_inner, True)
    return pool_add(s, &s.vol, x, y, z, sp)

cdef int add_wrapped_volume_molecule(Sim *s, double x, double y, double z, int32_t sp,
                                     double x0, double y0, double z0) noexcept nogil:
    # add_volume_molecule's advance in a periodic box: the varicosity reflection, then the wrap,
    # whose image counts the new molecule keeps
    cdef int32_t image[3]
    image[0] = 0
    image[1] = 0
    image[2] = 0
    if x * x + y * y + z * z < s.r_inner * s.r_inner:
        reflect_at_sphere(x0, y0, z0, &x, &y, &z, s.r_inner, True)
    x = wrap_into_box(x, s.r_domain, image)
    y = wrap_into_box(y, s.r_domain, image + 1)
    z = wrap_into_box(z, s.r_domain, image + 2)
    if pool_add(s, &s.vol, x, y, z, sp) != STATUS_OK:
        return STATUS_NO_MEMORY
    s.vol.image[3 * (s.vol.n - 1)] = image[0]
    s.vol.image[3 * (s.vol.n - 1) + 1] = image[1]
    s.vol.image[3 * (s.vol.n - 1) + 2] = image[2]
    return STATUS_OK

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
    cdef const double *table = s.entry_depth + sp * ENTRY_DEPTH_QUANTILES
    cdef double r
    if k > ENTRY_DEPTH_QUANTILES - 2:
        k = ENTRY_DEPTH_QUANTILES - 2
    r = s.rim - (table[k] + (u - k) * (table[k + 1] - table[k]))
    cdef Pool *p = &s.entering
    if rho > 0.0:
        ux = x0 / rho
        uy = y0 / rho
    if p.n == p.capacity:
        if pool_grow(p) != STATUS_OK:
            return STATUS_NO_MEMORY
    p.x[p.n] = r * ux
    p.y[p.n] = r * uy
    p.z[p.n] = mcsyn_uniform(rng) * s.h
    p.species[p.n] = sp
    p.clock[p.n] = 1.0 + floor(mcsyn_uniform(rng) * s.steps_per_coarse)
    p.n += 1
    return STATUS_OK

cdef int enter_due(Sim *s, int64_t step) noexcept nogil:
    cdef Pool *p = &s.entering
    cdef Py_ssize_t i = 0
    while i < p.n:
        if p.clock[i] == step:
            if pool_add(s, &s.slab, p.x[i], p.y[i], p.z[i], p.species[i]) != STATUS_OK:
                return STATUS_NO_MEMORY
            pool_remove(p, i)
        else:
            i += 1
    return STATUS_OK

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
    cdef int _
    for _ in range(64):     # tries before the radial fallback
        x = -s.r_domain + (ix + mcsyn_uniform(&s.rng)) * s.voxel
        y = -s.r_domain + (iy + mcsyn_uniform(&s.rng)) * s.voxel
        z = -s.r_domain + (iz + mcsyn_uniform(&s.rng)) * s.voxel
        r2 = x * x + y * y + z * z
        if r2 >= s.r_inner * s.r_inner and (r2 < s.r_domain * s.r_domain or s.domain_periodic):
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
