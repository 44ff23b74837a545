# Pure geometric helpers of the stepping loops. They are `cdef inline` (as they were inside
# _engine.pyx), so defining them here keeps them inlined into step_slab and step_volume; helpers
# that are not inline (reflect_at_sphere, sort_slab_by_cell) stay in the .pxi parts, where GCC
# decides their inlining as before.
from libc.stdint cimport int64_t, int32_t
from libc.math cimport sqrt, fabs, exp


cdef inline double round_to_integer(double v) noexcept nogil:
    # v rounded to the nearest integer (ties to even) for |v| < 2^51, without a libm call or an
    # integer conversion (baseline x86-64 has no rounding instruction): adding 1.5 * 2^52 leaves
    # no fraction bits. The compiler may not reassociate this without -ffast-math.
    cdef double magic = 6755399441055744.0
    return (v + magic) - magic


cdef inline double fold_slab_fast(double z, double h, double inv_period) noexcept nogil:
    # Reflecting walls at 0 and h make the height a triangle wave of the unfolded one: its
    # distance to the nearest multiple of the period 2h. Branch-free because most steps in a
    # 20 nm cleft leave it, in no predictable direction.
    return fabs(z - 2.0 * h * round_to_integer(z * inv_period))


cdef inline double fold_slab(double z, double h) noexcept nogil:
    return fold_slab_fast(z, h, 0.5 / h)


cdef inline double quiet_radius2(double edge, double sig) noexcept nogil:
    # squared radius inside which a step's end gets no edge test: to have touched the edge, the
    # step would have come back more than 4 sig (sd per axis) within it, a chance below 1e-4
    # even for a start at the edge; this is neglected
    cdef double r = edge - 4.0 * sig
    return r * r if r > 0.0 else 0.0


cdef inline double crossing_probability(double d0, double d1, double sig) noexcept nogil:
    # Brownian bridge: chance that a step starting d0 and ending d1 inside an absorbing boundary
    # touched it in between (planar approximation, per-axis sd sig)
    if d0 <= 0.0 or d1 <= 0.0:
        return 1.0
    return exp(-2.0 * d0 * d1 / (sig * sig))


cdef inline void reflect_at_rim(double x0, double y0, double *x, double *y, double rim) noexcept nogil:
    # Specular reflection of the straight lateral step (x0, y0) -> (x, y) where it leaves the disk
    # r < rim: the part beyond the exit point is mirrored in the tangent there. (Mirroring the end
    # point radially instead depletes the outermost σ of a curved rim by several per cent.)
    cdef double dx = x[0] - x0, dy = y[0] - y0
    cdef double a = dx * dx + dy * dy
    cdef double b = x0 * dx + y0 * dy
    cdef double c = x0 * x0 + y0 * y0 - rim * rim
    cdef double disc = b * b - a * c
    cdef double t, cx, cy, nx, ny, wx, wy, dot, r
    if a <= 0.0 or disc < 0.0:
        t = 1.0
    else:
        t = (-b + sqrt(disc)) / a
    cx = x0 + t * dx
    cy = y0 + t * dy
    r = sqrt(cx * cx + cy * cy)
    if r <= 0.0:
        return
    nx = cx / r
    ny = cy / r
    wx = x[0] - cx
    wy = y[0] - cy
    dot = wx * nx + wy * ny
    x[0] = cx + wx - 2.0 * dot * nx
    y[0] = cy + wy - 2.0 * dot * ny
    r = sqrt(x[0] * x[0] + y[0] * y[0])
    if r >= rim:
        # a step long enough to cross the disk again: fall back to the radial mirror
        dot = (2.0 * rim - r) / r
        if dot < 0.0:
            dot = 0.0
        x[0] *= dot
        y[0] *= dot


cdef inline void first_two_crossings(double h, double z0, double dx, double dy, double dz,
                                     double *f, double *f2, bint *up, bint *crossed, bint *crossed2) noexcept nogil:
    # Where a step from height z0 meets the first and second membrane planes (fractions f, f2 of
    # the step) and whether it gets there. Branch-free: direction and crossing are coin flips when
    # σ is comparable to h. PLANE_PRE is 1, so an upward step meets plane `up` first, `1 - up` next.
    cdef double z = z0 + dz
    cdef double inv_dz = 1.0 / dz
    up[0] = dz > 0.0
    f[0] = (h * up[0] - z0) * inv_dz
    f2[0] = f[0] + (2 * up[0] - 1) * h * inv_dz
    crossed[0] = (z > h) | (z < 0.0)
    crossed2[0] = (z > 2.0 * h) | (z < -h)


cdef inline int64_t tile_on_grid(int64_t n_tile, int plane, double gx, double gy) noexcept nogil:
    # hit_index for a crossing known to lie inside the rim, given in tile units from the grid's
    # corner: no range test, since the grid has a spare tile beyond the rim on every side
    return ((<int64_t> gx) * n_tile + <int64_t> gy) * 2 + plane


cdef inline int64_t voxel_index(int64_t n, double inv_voxel, double r_domain,
                                double x, double y, double z) noexcept nogil:
    # voxel of a point in the domain's bounding cube; the clamp catches rounding at its faces
    cdef int64_t ix = <int64_t> ((x + r_domain) * inv_voxel)
    cdef int64_t iy = <int64_t> ((y + r_domain) * inv_voxel)
    cdef int64_t iz = <int64_t> ((z + r_domain) * inv_voxel)
    ix = 0 if ix < 0 else (n - 1 if ix >= n else ix)
    iy = 0 if iy < 0 else (n - 1 if iy >= n else iy)
    iz = 0 if iz < 0 else (n - 1 if iz >= n else iz)
    return (ix * n + iy) * n + iz


cdef inline double wrap_into_box(double x, double half, int32_t *image) noexcept nogil:
    # A periodic box |x| < half: a coordinate that left one face re-enters at the other, and the
    # crossing is counted in *image. A volume step is at most a few σ <= (half - R_var)/10 (compile
    # checks), so one wrap suffices.
    if x >= half:
        image[0] += 1
        return x - 2.0 * half
    if x < -half:
        image[0] -= 1
        return x + 2.0 * half
    return x


cdef inline double nearest_image(double d, double box) noexcept nogil:
    # the periodic image of a separation d closest to zero (|result| <= box / 2)
    return d - box * round_to_integer(d / box)
