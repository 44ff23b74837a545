/*
 * Vector paths of the two hottest loops, chosen once at run time for the CPU (AVX-512, AVX2, or the
 * scalar code): the block fill of normals, and the step of slab molecules that neither bind nor
 * decay and end well inside the rim. One build runs on any x86-64 (no -march=native): each vector
 * function carries its own target attribute.
 *
 * Every path gives the same bits for the same seed. The generators are those of the scalar code (the
 * block fill's lanes, each path stepping the same MCSYN_LANES of them; the serial stream for the
 * rest), drawn in the same order; the vector code only redoes, lane by lane, the arithmetic the
 * scalar code does (an int32 -> double conversion, one product, sums and products in the same
 * order, the same add-and-subtract rounding), and IEEE 754 rounds each of those alike in every
 * width. setup.py compiles with -ffp-contract=off, so that no product and sum fuse into an FMA
 * (GCC's intrinsics are plain vector arithmetic, which it would otherwise contract). Anything
 * uncommon (a draw outside its layer's rectangle, a molecule of another species, a step ending
 * near the rim) is left to the scalar code, in the original order.
 */
#ifndef MCSYN_SIMD_H
#define MCSYN_SIMD_H

#include <stdint.h>
#include <string.h>
#include <immintrin.h>
#include "mcsyn_random.h"

enum { MCSYN_ISA_SCALAR = 0, MCSYN_ISA_AVX2 = 1, MCSYN_ISA_AVX512 = 2 };

#define MCSYN_TARGET_AVX2 __attribute__((target("avx2")))
#define MCSYN_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))

/*
 * The lanes' xoshiro256++ step, 4 lanes per 256-bit register (AVX2 has no 64-bit rotate: two shifts
 * and an or) or 8 per 512-bit register. Integer arithmetic: the words are those of
 * mcsyn_lanes_draw_scalar, whatever the width.
 */
typedef struct { __m256i s0, s1, s2, s3; } mcsyn_quad;

MCSYN_TARGET_AVX2
static inline __m256i mcsyn_rotl256(__m256i x, int k) {
    return _mm256_or_si256(_mm256_slli_epi64(x, k), _mm256_srli_epi64(x, 64 - k));
}

MCSYN_TARGET_AVX2
static inline __m256i mcsyn_quad_next(mcsyn_quad *q) {
    const __m256i result = _mm256_add_epi64(mcsyn_rotl256(_mm256_add_epi64(q->s0, q->s3), 23), q->s0);
    const __m256i t = _mm256_slli_epi64(q->s1, 17);
    q->s2 = _mm256_xor_si256(q->s2, q->s0);
    q->s3 = _mm256_xor_si256(q->s3, q->s1);
    q->s1 = _mm256_xor_si256(q->s1, q->s2);
    q->s0 = _mm256_xor_si256(q->s0, q->s3);
    q->s2 = _mm256_xor_si256(q->s2, t);
    q->s3 = mcsyn_rotl256(q->s3, 45);
    return result;
}

MCSYN_TARGET_AVX2
static inline void mcsyn_quad_load(mcsyn_quad *q, const mcsyn_lanes *lanes, int first) {
    q->s0 = _mm256_loadu_si256((const __m256i *)(lanes->s[0] + first));
    q->s1 = _mm256_loadu_si256((const __m256i *)(lanes->s[1] + first));
    q->s2 = _mm256_loadu_si256((const __m256i *)(lanes->s[2] + first));
    q->s3 = _mm256_loadu_si256((const __m256i *)(lanes->s[3] + first));
}

MCSYN_TARGET_AVX2
static inline void mcsyn_quad_store(const mcsyn_quad *q, mcsyn_lanes *lanes, int first) {
    _mm256_storeu_si256((__m256i *)(lanes->s[0] + first), q->s0);
    _mm256_storeu_si256((__m256i *)(lanes->s[1] + first), q->s1);
    _mm256_storeu_si256((__m256i *)(lanes->s[2] + first), q->s2);
    _mm256_storeu_si256((__m256i *)(lanes->s[3] + first), q->s3);
}

#if MCSYN_LANES != 8
#error "the vector lane draws step lanes 0-3 and 4-7"
#endif

MCSYN_TARGET_AVX2
static void mcsyn_lanes_draw_avx2(mcsyn_lanes *lanes, uint32_t *raw, int rows) {
    mcsyn_quad a, b;
    int row;
    mcsyn_quad_load(&a, lanes, 0);
    mcsyn_quad_load(&b, lanes, 4);
    for (row = 0; row < rows; row++) {
        _mm256_storeu_si256((__m256i *)(raw + 16 * row), mcsyn_quad_next(&a));
        _mm256_storeu_si256((__m256i *)(raw + 16 * row + 8), mcsyn_quad_next(&b));
    }
    mcsyn_quad_store(&a, lanes, 0);
    mcsyn_quad_store(&b, lanes, 4);
}

MCSYN_TARGET_AVX512
static void mcsyn_lanes_draw_avx512(mcsyn_lanes *lanes, uint32_t *raw, int rows) {
    __m512i s0 = _mm512_loadu_si512(lanes->s[0]), s1 = _mm512_loadu_si512(lanes->s[1]);
    __m512i s2 = _mm512_loadu_si512(lanes->s[2]), s3 = _mm512_loadu_si512(lanes->s[3]);
    int row;
    for (row = 0; row < rows; row++) {
        const __m512i t = _mm512_slli_epi64(s1, 17);
        _mm512_storeu_si512(raw + 16 * row, _mm512_add_epi64(_mm512_rol_epi64(_mm512_add_epi64(s0, s3), 23), s0));
        s2 = _mm512_xor_si512(s2, s0);
        s3 = _mm512_xor_si512(s3, s1);
        s1 = _mm512_xor_si512(s1, s2);
        s0 = _mm512_xor_si512(s0, s3);
        s2 = _mm512_xor_si512(s2, t);
        s3 = _mm512_rol_epi64(s3, 45);
    }
    _mm512_storeu_si512(lanes->s[0], s0);
    _mm512_storeu_si512(lanes->s[1], s1);
    _mm512_storeu_si512(lanes->s[2], s2);
    _mm512_storeu_si512(lanes->s[3], s3);
}

/* the fast-path value of one draw, and whether it stands (as the scalar fill) */
static inline int mcsyn_zig_fast(uint32_t u, double *x) {
    uint32_t iz = u & MCSYN_ZIG_MASK;
    int32_t t = mcsyn_zig_abscissa(u);
    *x = t * MCSYN_ZIG.w[iz];
    return mcsyn_zig_accept(iz, t);
}

/*
 * The vector fill keeps the pieces, the draws and the slow path of the scalar fill and redoes its
 * lane draw and its fast path 8 draws at a time. Per normal of a 4095 block on this project's host
 * (best of repeats, loaded): the lane draw ~0.14 ns (the serial chain took ~0.42), the whole fill
 * ~1.1 ns (~1.4 with the serial chain; the scalar fill ~2.0). The AVX-512 path steps all 8 lanes
 * in one register (one-instruction rotates), ~0.12 ns. The layer tables are read by scalar loads
 * (one byte of the raw draw is the layer): on this project's AMD host the AVX2/AVX-512 gathers cost
 * more than the loads they replace (~0.85-1.0 against ~0.41 ns per normal for the fast path over a
 * hot piece). The AVX-512 path converts with this AVX2 code: 8-lane rows built from scalar loads
 * measured slower there than 4-lane ones (2.8-3.3 against 2.8-2.9 ns per normal under load).
 * A draw stands when |x| < edge[iz] (x = t w[iz], edge = k w): for integers |t|, k < 2^24 and
 * w > 0, |t| < k exactly when fl(|t| w) < fl(k w), since k w - |t| w >= w spans far more than an
 * ulp and rounding is monotone; an empty layer (k = 0, edge 0) keeps nothing in both tests.
 */
#define MCSYN_LAYER(q, j) ((q)[4 * (j)])   /* the layer byte of draw j (little-endian) */

/* the fast path of draws raw[0..count) into buf[0..count), as mcsyn_zig_fast_scalar */
MCSYN_TARGET_AVX2
static inline int mcsyn_zig_fast_avx2(const uint32_t *raw, double *buf, int count, int j0, uint64_t *rejected,
                                      int n_reject) {
    const __m256i one = _mm256_set1_epi32(1);
    const __m256d sign = _mm256_set1_pd(-0.0);
    const double *w = MCSYN_ZIG.w, *e = MCSYN_ZIG.edge;
    int j;
    for (j = 0; j + 8 <= count; j += 8) {
        const uint8_t *q = (const uint8_t *)(raw + j), *q4 = q + 16;
        __m256i t = _mm256_or_si256(_mm256_srai_epi32(_mm256_loadu_si256((const __m256i *)(raw + j)), 7), one);
#define MCSYN_ROW4(tab, q) _mm256_setr_pd(tab[MCSYN_LAYER(q, 0)], tab[MCSYN_LAYER(q, 1)], tab[MCSYN_LAYER(q, 2)], \
        tab[MCSYN_LAYER(q, 3)])
        __m256d x_lo = _mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(t)), MCSYN_ROW4(w, q));
        __m256d x_hi = _mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(t, 1)), MCSYN_ROW4(w, q4));
        unsigned reject = (unsigned)_mm256_movemask_pd(_mm256_cmp_pd(_mm256_andnot_pd(sign, x_lo), MCSYN_ROW4(e, q), _CMP_GE_OQ))
                        | (unsigned)_mm256_movemask_pd(_mm256_cmp_pd(_mm256_andnot_pd(sign, x_hi), MCSYN_ROW4(e, q4), _CMP_GE_OQ)) << 4;
#undef MCSYN_ROW4
        _mm256_storeu_pd(buf + j, x_lo);
        _mm256_storeu_pd(buf + j + 4, x_hi);
        while (reject) {
            int b = __builtin_ctz(reject);
            rejected[n_reject++] = ((uint64_t)(j0 + j + b) << 32) | raw[j + b];
            reject &= reject - 1;
        }
    }
    for (; j < count; j++) {
        rejected[n_reject] = ((uint64_t)(j0 + j) << 32) | raw[j];
        n_reject += !mcsyn_zig_fast(raw[j], &buf[j]);
    }
    return n_reject;
}

/* a whole vector fill: the scalar fill's pieces and slow path, with the given lane draw */
#define MCSYN_FILL_NORMALS_BODY(lanes_draw)                                                     \
    uint64_t rejected[MCSYN_FILL_MAX];                                                          \
    uint32_t raw[MCSYN_FILL_PIECE];                                                             \
    int n_reject = 0, j0, count;                                                                \
    for (j0 = 0; j0 < n; j0 += count) {                                                         \
        count = n - j0 < MCSYN_FILL_PIECE ? n - j0 : MCSYN_FILL_PIECE;                          \
        lanes_draw(lanes, raw, mcsyn_fill_rows(count));                                         \
        n_reject = mcsyn_zig_fast_avx2(raw, buf + j0, count, j0, rejected, n_reject);           \
    }                                                                                           \
    mcsyn_fill_slow(r, buf, rejected, n_reject);

MCSYN_TARGET_AVX2
static void mcsyn_fill_normals_avx2(mcsyn_rng *r, mcsyn_lanes *lanes, double *buf, int n) {
    MCSYN_FILL_NORMALS_BODY(mcsyn_lanes_draw_avx2)
}

MCSYN_TARGET_AVX512
static void mcsyn_fill_normals_avx512(mcsyn_rng *r, mcsyn_lanes *lanes, double *buf, int n) {
    MCSYN_FILL_NORMALS_BODY(mcsyn_lanes_draw_avx512)
}

/*
 * The quiet step of a chunk's molecules k in [0, m) (px.. and normals already at the chunk's start):
 * a molecule of species sp (which neither binds nor decays) whose step ends inside the quiet radius
 * (r2 >= near2 false, NaN included, as in step_slab) gets the step step_slab would give it; every
 * other one is left untouched, its k listed in special (ascending) for the scalar code. Returns
 * how many are listed.
 */
typedef int (*mcsyn_quiet_step_fn)(double *px, double *py, double *pz, const int32_t *psp,
                                    const double *normals, int m, int32_t sp, double sig, double h,
                                    double inv_period, double near2, int32_t *special);

#define MCSYN_ROUND_MAGIC 6755399441055744.0   /* 1.5 * 2^52, as round_to_integer in geometry.pxd */

/* normals n[3k], n[3k+1], n[3k+2] of 8 molecules k as three registers: two two-source permutes per axis */
MCSYN_TARGET_AVX512
static inline void mcsyn_normals_xyz_avx512(const double *nb, __m512d *nx, __m512d *ny, __m512d *nz) {
    const __m512i x_a = _mm512_setr_epi64(0, 3, 6, 9, 12, 15, 0, 0), x_b = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 10, 13);
    const __m512i y_a = _mm512_setr_epi64(1, 4, 7, 10, 13, 0, 0, 0), y_b = _mm512_setr_epi64(0, 1, 2, 3, 4, 8, 11, 14);
    const __m512i z_a = _mm512_setr_epi64(2, 5, 8, 11, 14, 0, 0, 0), z_b = _mm512_setr_epi64(0, 1, 2, 3, 4, 9, 12, 15);
    __m512d n0 = _mm512_loadu_pd(nb), n1 = _mm512_loadu_pd(nb + 8), n2 = _mm512_loadu_pd(nb + 16);
    *nx = _mm512_permutex2var_pd(_mm512_permutex2var_pd(n0, x_a, n1), x_b, n2);
    *ny = _mm512_permutex2var_pd(_mm512_permutex2var_pd(n0, y_a, n1), y_b, n2);
    *nz = _mm512_permutex2var_pd(_mm512_permutex2var_pd(n0, z_a, n1), z_b, n2);
}

/* the same for 4 molecules: 12 normals as [n0 n1|n6 n7], [n2 n3|n8 n9], [n4 n5|n10 n11], then one shuffle per axis */
MCSYN_TARGET_AVX2
static inline void mcsyn_normals_xyz_avx2(const double *nb, __m256d *nx, __m256d *ny, __m256d *nz) {
    __m256d a = _mm256_loadu_pd(nb), b = _mm256_loadu_pd(nb + 4), c = _mm256_loadu_pd(nb + 8);
    __m256d m1 = _mm256_blend_pd(a, b, 0xc), m0 = _mm256_permute2f128_pd(a, c, 0x21), m2 = _mm256_blend_pd(b, c, 0xc);
    *nx = _mm256_shuffle_pd(m1, m0, 0xa);
    *ny = _mm256_shuffle_pd(m1, m2, 0x5);
    *nz = _mm256_shuffle_pd(m0, m2, 0xa);
}

MCSYN_TARGET_AVX512
static int mcsyn_quiet_step_avx512(double *px, double *py, double *pz, const int32_t *psp,
                                    const double *normals, int m, int32_t sp, double sig, double h,
                                    double inv_period, double near2, int32_t *special) {
    const __m512d vsig = _mm512_set1_pd(sig), vnear2 = _mm512_set1_pd(near2);
    const __m512d two_h = _mm512_set1_pd(2.0 * h), vinv = _mm512_set1_pd(inv_period);
    const __m512d magic = _mm512_set1_pd(MCSYN_ROUND_MAGIC);
    const __m256i vsp = _mm256_set1_epi32(sp);
    int k, n_special = 0;
    for (k = 0; k + 8 <= m; k += 8) {
        __m512d nx, ny, nz;
        mcsyn_normals_xyz_avx512(normals + 3 * k, &nx, &ny, &nz);
        __m512d x = _mm512_add_pd(_mm512_loadu_pd(px + k), _mm512_mul_pd(vsig, nx));
        __m512d y = _mm512_add_pd(_mm512_loadu_pd(py + k), _mm512_mul_pd(vsig, ny));
        __m512d z = _mm512_add_pd(_mm512_loadu_pd(pz + k), _mm512_mul_pd(vsig, nz));
        __m512d r2 = _mm512_add_pd(_mm512_mul_pd(x, x), _mm512_mul_pd(y, y));
        __m512d q = _mm512_mul_pd(z, vinv);
        __m512d rounded = _mm512_sub_pd(_mm512_add_pd(q, magic), magic);
        __m512d folded = _mm512_abs_pd(_mm512_sub_pd(z, _mm512_mul_pd(two_h, rounded)));
        __mmask8 same = _mm256_cmpeq_epi32_mask(_mm256_loadu_si256((const __m256i *)(psp + k)), vsp);
        __mmask8 quiet = _mm512_mask_cmp_pd_mask(same, r2, vnear2, _CMP_NGE_UQ);
        unsigned loud = (uint8_t)~quiet;
        _mm512_mask_storeu_pd(px + k, quiet, x);
        _mm512_mask_storeu_pd(py + k, quiet, y);
        _mm512_mask_storeu_pd(pz + k, quiet, folded);
        while (loud) {
            special[n_special++] = k + __builtin_ctz(loud);
            loud &= loud - 1;
        }
    }
    for (; k < m; k++) special[n_special++] = k;
    return n_special;
}

MCSYN_TARGET_AVX2
static int mcsyn_quiet_step_avx2(double *px, double *py, double *pz, const int32_t *psp,
                                  const double *normals, int m, int32_t sp, double sig, double h,
                                  double inv_period, double near2, int32_t *special) {
    const __m256d vsig = _mm256_set1_pd(sig), vnear2 = _mm256_set1_pd(near2);
    const __m256d two_h = _mm256_set1_pd(2.0 * h), vinv = _mm256_set1_pd(inv_period);
    const __m256d magic = _mm256_set1_pd(MCSYN_ROUND_MAGIC), sign = _mm256_set1_pd(-0.0);
    const __m128i vsp = _mm_set1_epi32(sp);
    int k, n_special = 0;
    for (k = 0; k + 4 <= m; k += 4) {
        __m256d nx, ny, nz;
        mcsyn_normals_xyz_avx2(normals + 3 * k, &nx, &ny, &nz);
        __m256d x = _mm256_add_pd(_mm256_loadu_pd(px + k), _mm256_mul_pd(vsig, nx));
        __m256d y = _mm256_add_pd(_mm256_loadu_pd(py + k), _mm256_mul_pd(vsig, ny));
        __m256d z = _mm256_add_pd(_mm256_loadu_pd(pz + k), _mm256_mul_pd(vsig, nz));
        __m256d r2 = _mm256_add_pd(_mm256_mul_pd(x, x), _mm256_mul_pd(y, y));
        __m256d q = _mm256_mul_pd(z, vinv);
        __m256d rounded = _mm256_sub_pd(_mm256_add_pd(q, magic), magic);
        __m256d folded = _mm256_andnot_pd(sign, _mm256_sub_pd(z, _mm256_mul_pd(two_h, rounded)));
        __m128i same = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(psp + k)), vsp);
        __m256i quiet = _mm256_and_si256(_mm256_cvtepi32_epi64(same),
                                         _mm256_castpd_si256(_mm256_cmp_pd(r2, vnear2, _CMP_NGE_UQ)));
        unsigned loud = ~(unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(quiet)) & 0xfu;
        _mm256_maskstore_pd(px + k, quiet, x);
        _mm256_maskstore_pd(py + k, quiet, y);
        _mm256_maskstore_pd(pz + k, quiet, folded);
        while (loud) {
            special[n_special++] = k + __builtin_ctz(loud);
            loud &= loud - 1;
        }
    }
    for (; k < m; k++) special[n_special++] = k;
    return n_special;
}

/*
 * The crossing step of a chunk's molecules of species 0 (which binds at the membranes by spending its
 * exponential clock, and does not decay): the arithmetic step_slab's binding branch does before it
 * looks at a tile, done for the whole chunk ahead of the loop that takes the molecules in order. For a
 * molecule whose step meets at most the first two membrane planes, ends inside the quiet radius (both
 * crossings then lie on the grid) and is of species sp, quiet[k] is 1, and tile1[k], tile2[k] are the
 * tiles step_slab's branch would read (the inert tile for a plane not crossed) and x, y, z the end
 * point it would store if neither tile binds. Every other molecule gets quiet[k] = 0 and is left to the
 * scalar code. Nothing is read from the tiles here: a molecule that binds changes its tile's code, and
 * the loop reads the codes in the molecules' order, as the scalar code does.
 */
typedef struct {
    double h, inv_period, near2, sig, grid_half, inv_tile;
    int32_t n_tile, no_tile;   /* 2 n_tile^2 + 1 tiles fit int32: step_slab checks */
} mcsyn_crossing_params;

typedef void (*mcsyn_crossing_step_fn)(const double *px, const double *py, const double *pz, const int32_t *psp,
                                       const double *normals, int m, int32_t sp, const mcsyn_crossing_params *c,
                                       double *x_out, double *y_out, double *z_out, int32_t *tile1,
                                       int32_t *tile2, uint8_t *quiet);

/* As the scalar code: f = (h up - z0) / dz and f2 = f + ((2 up - 1) h) / dz, where h up and (2 up - 1) h are
 * exactly h or +0.0 and h or -h; the tile of a crossing at fraction f is
 * ((int) (gx + f gdx) n_tile + (int) (gy + f gdy)) 2 + plane, with gx = (x0 + grid_half) inv_tile and
 * gdx = dx inv_tile, truncated as C truncates (both widths give the same int for |value| < 2^31). */
MCSYN_TARGET_AVX512
static void mcsyn_crossing_step_avx512(const double *px, const double *py, const double *pz, const int32_t *psp,
                                       const double *normals, int m, int32_t sp, const mcsyn_crossing_params *c,
                                       double *x_out, double *y_out, double *z_out, int32_t *tile1,
                                       int32_t *tile2, uint8_t *quiet) {
    const double h = c->h;
    const __m512d vsig = _mm512_set1_pd(c->sig), vnear2 = _mm512_set1_pd(c->near2);
    const __m512d vh = _mm512_set1_pd(h), vminus_h = _mm512_set1_pd(-h), zero = _mm512_setzero_pd();
    const __m512d two_h = _mm512_set1_pd(2.0 * h), minus_two_h = _mm512_set1_pd(-2.0 * h);
    const __m512d three_h = _mm512_set1_pd(3.0 * h), one = _mm512_set1_pd(1.0);
    const __m512d vinv = _mm512_set1_pd(c->inv_period), magic = _mm512_set1_pd(MCSYN_ROUND_MAGIC);
    const __m512d half = _mm512_set1_pd(c->grid_half), inv_tile = _mm512_set1_pd(c->inv_tile);
    const __m256i vsp = _mm256_set1_epi32(sp), vn = _mm256_set1_epi32(c->n_tile);
    const __m256i vno = _mm256_set1_epi32(c->no_tile), ione = _mm256_set1_epi32(1);
    int k, j;
    for (k = 0; k + 8 <= m; k += 8) {
        __m512d nx, ny, nz;
        mcsyn_normals_xyz_avx512(normals + 3 * k, &nx, &ny, &nz);
        __m512d dx = _mm512_mul_pd(vsig, nx), dy = _mm512_mul_pd(vsig, ny), dz = _mm512_mul_pd(vsig, nz);
        __m512d x0 = _mm512_loadu_pd(px + k), y0 = _mm512_loadu_pd(py + k), z0 = _mm512_loadu_pd(pz + k);
        __m512d x = _mm512_add_pd(x0, dx), y = _mm512_add_pd(y0, dy), z = _mm512_add_pd(z0, dz);
        __m512d r2 = _mm512_add_pd(_mm512_mul_pd(x, x), _mm512_mul_pd(y, y));
        __mmask8 up = _mm512_cmp_pd_mask(dz, zero, _CMP_GT_OQ);
        __m512d inv_dz = _mm512_div_pd(one, dz);
        __m512d f = _mm512_mul_pd(_mm512_sub_pd(_mm512_maskz_mov_pd(up, vh), z0), inv_dz);
        __m512d f2 = _mm512_add_pd(f, _mm512_mul_pd(_mm512_mask_blend_pd(up, vminus_h, vh), inv_dz));
        __mmask8 crossed = _mm512_cmp_pd_mask(z, vh, _CMP_GT_OQ) | _mm512_cmp_pd_mask(z, zero, _CMP_LT_OQ);
        __mmask8 crossed2 = _mm512_cmp_pd_mask(z, two_h, _CMP_GT_OQ) | _mm512_cmp_pd_mask(z, vminus_h, _CMP_LT_OQ);
        __mmask8 third = _mm512_cmp_pd_mask(z, three_h, _CMP_GT_OQ) | _mm512_cmp_pd_mask(z, minus_two_h, _CMP_LT_OQ);
        __m512d gx = _mm512_mul_pd(_mm512_add_pd(x0, half), inv_tile), gdx = _mm512_mul_pd(dx, inv_tile);
        __m512d gy = _mm512_mul_pd(_mm512_add_pd(y0, half), inv_tile), gdy = _mm512_mul_pd(dy, inv_tile);
        __m256i ix = _mm512_cvttpd_epi32(_mm512_add_pd(gx, _mm512_mul_pd(f, gdx)));
        __m256i iy = _mm512_cvttpd_epi32(_mm512_add_pd(gy, _mm512_mul_pd(f, gdy)));
        __m256i ix2 = _mm512_cvttpd_epi32(_mm512_add_pd(gx, _mm512_mul_pd(f2, gdx)));
        __m256i iy2 = _mm512_cvttpd_epi32(_mm512_add_pd(gy, _mm512_mul_pd(f2, gdy)));
        __m256i plane = _mm256_maskz_mov_epi32(up, ione);
        __m256i t1 = _mm256_add_epi32(_mm256_slli_epi32(_mm256_add_epi32(_mm256_mullo_epi32(ix, vn), iy), 1), plane);
        __m256i t2 = _mm256_add_epi32(_mm256_slli_epi32(_mm256_add_epi32(_mm256_mullo_epi32(ix2, vn), iy2), 1),
                                      _mm256_xor_si256(plane, ione));
        /* a crossing off the grid (not expected inside the quiet radius) is left to the scalar code */
        __mmask8 on_grid = (__mmask8)(~crossed | (_mm256_cmplt_epu32_mask(ix, vn) & _mm256_cmplt_epu32_mask(iy, vn)))
                         & (__mmask8)(~crossed2 | (_mm256_cmplt_epu32_mask(ix2, vn) & _mm256_cmplt_epu32_mask(iy2, vn)));
        __mmask8 ok = _mm256_cmpeq_epi32_mask(_mm256_loadu_si256((const __m256i *)(psp + k)), vsp)
                    & _mm512_cmp_pd_mask(r2, vnear2, _CMP_LT_OQ) & (__mmask8)~third & on_grid;
        __m512d rounded = _mm512_sub_pd(_mm512_add_pd(_mm512_mul_pd(z, vinv), magic), magic);
        _mm512_storeu_pd(x_out + k, x);
        _mm512_storeu_pd(y_out + k, y);
        _mm512_storeu_pd(z_out + k, _mm512_abs_pd(_mm512_sub_pd(z, _mm512_mul_pd(two_h, rounded))));
        _mm256_storeu_si256((__m256i *)(tile1 + k), _mm256_mask_blend_epi32(crossed, vno, t1));
        _mm256_storeu_si256((__m256i *)(tile2 + k), _mm256_mask_blend_epi32(crossed2, vno, t2));
        for (j = 0; j < 8; j++) quiet[k + j] = (ok >> j) & 1;
    }
    for (; k < m; k++) quiet[k] = 0;
}

MCSYN_TARGET_AVX2
static inline __m128i mcsyn_narrow_mask(__m256d mask) {
    /* the 4 lanes of a double-width mask as int32 lanes (the low half of each 64-bit lane) */
    return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_castpd_si256(mask),
                                                              _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
}

MCSYN_TARGET_AVX2
static void mcsyn_crossing_step_avx2(const double *px, const double *py, const double *pz, const int32_t *psp,
                                     const double *normals, int m, int32_t sp, const mcsyn_crossing_params *c,
                                     double *x_out, double *y_out, double *z_out, int32_t *tile1,
                                     int32_t *tile2, uint8_t *quiet) {
    const double h = c->h;
    const __m256d vsig = _mm256_set1_pd(c->sig), vnear2 = _mm256_set1_pd(c->near2);
    const __m256d vh = _mm256_set1_pd(h), vminus_h = _mm256_set1_pd(-h), zero = _mm256_setzero_pd();
    const __m256d two_h = _mm256_set1_pd(2.0 * h), minus_two_h = _mm256_set1_pd(-2.0 * h);
    const __m256d three_h = _mm256_set1_pd(3.0 * h), one = _mm256_set1_pd(1.0);
    const __m256d vinv = _mm256_set1_pd(c->inv_period), magic = _mm256_set1_pd(MCSYN_ROUND_MAGIC);
    const __m256d sign = _mm256_set1_pd(-0.0);
    const __m256d half = _mm256_set1_pd(c->grid_half), inv_tile = _mm256_set1_pd(c->inv_tile);
    const __m128i vsp = _mm_set1_epi32(sp), vn = _mm_set1_epi32(c->n_tile), vno = _mm_set1_epi32(c->no_tile);
    const __m128i ione = _mm_set1_epi32(1), minus_one = _mm_set1_epi32(-1);
    int k, j;
    for (k = 0; k + 4 <= m; k += 4) {
        __m256d nx, ny, nz;
        mcsyn_normals_xyz_avx2(normals + 3 * k, &nx, &ny, &nz);
        __m256d dx = _mm256_mul_pd(vsig, nx), dy = _mm256_mul_pd(vsig, ny), dz = _mm256_mul_pd(vsig, nz);
        __m256d x0 = _mm256_loadu_pd(px + k), y0 = _mm256_loadu_pd(py + k), z0 = _mm256_loadu_pd(pz + k);
        __m256d x = _mm256_add_pd(x0, dx), y = _mm256_add_pd(y0, dy), z = _mm256_add_pd(z0, dz);
        __m256d r2 = _mm256_add_pd(_mm256_mul_pd(x, x), _mm256_mul_pd(y, y));
        __m256d up = _mm256_cmp_pd(dz, zero, _CMP_GT_OQ);
        __m256d inv_dz = _mm256_div_pd(one, dz);
        __m256d f = _mm256_mul_pd(_mm256_sub_pd(_mm256_and_pd(up, vh), z0), inv_dz);
        __m256d f2 = _mm256_add_pd(f, _mm256_mul_pd(_mm256_blendv_pd(vminus_h, vh, up), inv_dz));
        __m256d crossed = _mm256_or_pd(_mm256_cmp_pd(z, vh, _CMP_GT_OQ), _mm256_cmp_pd(z, zero, _CMP_LT_OQ));
        __m256d crossed2 = _mm256_or_pd(_mm256_cmp_pd(z, two_h, _CMP_GT_OQ), _mm256_cmp_pd(z, vminus_h, _CMP_LT_OQ));
        __m256d calm = _mm256_and_pd(_mm256_cmp_pd(z, three_h, _CMP_NGT_UQ), _mm256_cmp_pd(z, minus_two_h, _CMP_NLT_UQ));
        __m256d gx = _mm256_mul_pd(_mm256_add_pd(x0, half), inv_tile), gdx = _mm256_mul_pd(dx, inv_tile);
        __m256d gy = _mm256_mul_pd(_mm256_add_pd(y0, half), inv_tile), gdy = _mm256_mul_pd(dy, inv_tile);
        __m128i ix = _mm256_cvttpd_epi32(_mm256_add_pd(gx, _mm256_mul_pd(f, gdx)));
        __m128i iy = _mm256_cvttpd_epi32(_mm256_add_pd(gy, _mm256_mul_pd(f, gdy)));
        __m128i ix2 = _mm256_cvttpd_epi32(_mm256_add_pd(gx, _mm256_mul_pd(f2, gdx)));
        __m128i iy2 = _mm256_cvttpd_epi32(_mm256_add_pd(gy, _mm256_mul_pd(f2, gdy)));
        __m128i plane = _mm_and_si128(mcsyn_narrow_mask(up), ione);
        __m128i t1 = _mm_add_epi32(_mm_slli_epi32(_mm_add_epi32(_mm_mullo_epi32(ix, vn), iy), 1), plane);
        __m128i t2 = _mm_add_epi32(_mm_slli_epi32(_mm_add_epi32(_mm_mullo_epi32(ix2, vn), iy2), 1),
                                   _mm_xor_si128(plane, ione));
        __m128i c1 = mcsyn_narrow_mask(crossed), c2 = mcsyn_narrow_mask(crossed2);
#define MCSYN_ON_GRID(i) _mm_and_si128(_mm_cmpgt_epi32(i, minus_one), _mm_cmpgt_epi32(vn, i))
        __m128i on_grid = _mm_and_si128(_mm_or_si128(_mm_andnot_si128(c1, minus_one), _mm_and_si128(MCSYN_ON_GRID(ix), MCSYN_ON_GRID(iy))),
                                        _mm_or_si128(_mm_andnot_si128(c2, minus_one), _mm_and_si128(MCSYN_ON_GRID(ix2), MCSYN_ON_GRID(iy2))));
#undef MCSYN_ON_GRID
        __m128i ok = _mm_and_si128(_mm_and_si128(_mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(psp + k)), vsp), on_grid),
                                   mcsyn_narrow_mask(_mm256_and_pd(_mm256_cmp_pd(r2, vnear2, _CMP_LT_OQ), calm)));
        unsigned bits = (unsigned)_mm_movemask_ps(_mm_castsi128_ps(ok));
        __m256d rounded = _mm256_sub_pd(_mm256_add_pd(_mm256_mul_pd(z, vinv), magic), magic);
        _mm256_storeu_pd(x_out + k, x);
        _mm256_storeu_pd(y_out + k, y);
        _mm256_storeu_pd(z_out + k, _mm256_andnot_pd(sign, _mm256_sub_pd(z, _mm256_mul_pd(two_h, rounded))));
        _mm_storeu_si128((__m128i *)(tile1 + k), _mm_blendv_epi8(vno, t1, c1));
        _mm_storeu_si128((__m128i *)(tile2 + k), _mm_blendv_epi8(vno, t2, c2));
        for (j = 0; j < 4; j++) quiet[k + j] = (bits >> j) & 1;
    }
    for (; k < m; k++) quiet[k] = 0;
}

/*
 * The volume step of 8 molecules from px[0], normals from normals[0], as step_volume would take them
 * if none binds, decays or leaves: for each molecule of species sp whose step ends strictly inside the
 * domain (for an absorbing one, within the quiet radius, where no escape test is drawn), outside the
 * varicosity and, where molecules may enter the slab, outside the mouth, quiet[j] is 1 and x, y, z
 * are its end point and voxel[j] the voxel of its start point (voxel_index in geometry.pxd, whose
 * int64 truncation equals the int32 one for a start inside the domain; one out of [0, n_vox] is left
 * to the scalar code). step_volume reads each voxel's hazard in the molecules' order and commits a
 * quiet molecule's step only while no molecule before it in the 8 left the pool.
 */
typedef struct {
    double sig, r_domain, inv_voxel, rd2, near2, ri2, rm2, mc2;
    int32_t n_vox;          /* n_vox^3 fits int32: step_volume checks */
    int32_t absorbing, enters;
} mcsyn_volume_params;

typedef void (*mcsyn_volume_step_fn)(const double *px, const double *py, const double *pz, const int32_t *psp,
                                     const double *normals, int32_t sp, const mcsyn_volume_params *c,
                                     double *x_out, double *y_out, double *z_out, int32_t *voxel, uint8_t *quiet);

MCSYN_TARGET_AVX512
static void mcsyn_volume_step_avx512(const double *px, const double *py, const double *pz, const int32_t *psp,
                                     const double *normals, int32_t sp, const mcsyn_volume_params *c,
                                     double *x_out, double *y_out, double *z_out, int32_t *voxel, uint8_t *quiet) {
    const __m512d vsig = _mm512_set1_pd(c->sig), rd = _mm512_set1_pd(c->r_domain), inv = _mm512_set1_pd(c->inv_voxel);
    const __m256i vsp = _mm256_set1_epi32(sp), vn = _mm256_set1_epi32(c->n_vox), top = _mm256_set1_epi32(c->n_vox - 1);
    const __m256i zero_i = _mm256_setzero_si256();
    __m512d nx, ny, nz;
    mcsyn_normals_xyz_avx512(normals, &nx, &ny, &nz);
    __m512d x0 = _mm512_loadu_pd(px), y0 = _mm512_loadu_pd(py), z0 = _mm512_loadu_pd(pz);
    __m512d x = _mm512_add_pd(x0, _mm512_mul_pd(vsig, nx));
    __m512d y = _mm512_add_pd(y0, _mm512_mul_pd(vsig, ny));
    __m512d z = _mm512_add_pd(z0, _mm512_mul_pd(vsig, nz));
    __m512d r2 = _mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(x, x), _mm512_mul_pd(y, y)), _mm512_mul_pd(z, z));
    __m256i ix = _mm512_cvttpd_epi32(_mm512_mul_pd(_mm512_add_pd(x0, rd), inv));
    __m256i iy = _mm512_cvttpd_epi32(_mm512_mul_pd(_mm512_add_pd(y0, rd), inv));
    __m256i iz = _mm512_cvttpd_epi32(_mm512_mul_pd(_mm512_add_pd(z0, rd), inv));
    __mmask8 ok = _mm256_cmpeq_epi32_mask(_mm256_loadu_si256((const __m256i *)psp), vsp)
                & _mm512_cmp_pd_mask(r2, _mm512_set1_pd(c->rd2), _CMP_LT_OQ)
                & _mm512_cmp_pd_mask(r2, _mm512_set1_pd(c->ri2), _CMP_NLT_UQ)
                & _mm256_cmple_epu32_mask(ix, vn) & _mm256_cmple_epu32_mask(iy, vn) & _mm256_cmple_epu32_mask(iz, vn);
    int j;
    if (c->absorbing) ok &= _mm512_cmp_pd_mask(r2, _mm512_set1_pd(c->near2), _CMP_NGT_UQ);
    if (c->enters)
        ok &= (__mmask8)~(_mm512_cmp_pd_mask(r2, _mm512_set1_pd(c->rm2), _CMP_LT_OQ)
                          & _mm512_cmp_pd_mask(_mm512_mul_pd(z, z), _mm512_mul_pd(_mm512_set1_pd(c->mc2), r2), _CMP_LT_OQ));
    ix = _mm256_min_epi32(_mm256_max_epi32(ix, zero_i), top);
    iy = _mm256_min_epi32(_mm256_max_epi32(iy, zero_i), top);
    iz = _mm256_min_epi32(_mm256_max_epi32(iz, zero_i), top);
    _mm256_storeu_si256((__m256i *)voxel,
                        _mm256_add_epi32(_mm256_mullo_epi32(_mm256_add_epi32(_mm256_mullo_epi32(ix, vn), iy), vn), iz));
    _mm512_storeu_pd(x_out, x);
    _mm512_storeu_pd(y_out, y);
    _mm512_storeu_pd(z_out, z);
    for (j = 0; j < 8; j++) quiet[j] = (ok >> j) & 1;
}

MCSYN_TARGET_AVX2
static void mcsyn_volume_step_avx2(const double *px, const double *py, const double *pz, const int32_t *psp,
                                   const double *normals, int32_t sp, const mcsyn_volume_params *c,
                                   double *x_out, double *y_out, double *z_out, int32_t *voxel, uint8_t *quiet) {
    const __m256d vsig = _mm256_set1_pd(c->sig), rd = _mm256_set1_pd(c->r_domain), inv = _mm256_set1_pd(c->inv_voxel);
    const __m256d rd2 = _mm256_set1_pd(c->rd2), ri2 = _mm256_set1_pd(c->ri2), near2 = _mm256_set1_pd(c->near2);
    const __m256d rm2 = _mm256_set1_pd(c->rm2), mc2 = _mm256_set1_pd(c->mc2);
    const __m128i vsp = _mm_set1_epi32(sp), vn = _mm_set1_epi32(c->n_vox), top = _mm_set1_epi32(c->n_vox - 1);
    const __m128i minus_one = _mm_set1_epi32(-1), above = _mm_set1_epi32(c->n_vox + 1), zero_i = _mm_setzero_si128();
    int k, j;
    for (k = 0; k < 8; k += 4) {
        __m256d nx, ny, nz;
        mcsyn_normals_xyz_avx2(normals + 3 * k, &nx, &ny, &nz);
        __m256d x0 = _mm256_loadu_pd(px + k), y0 = _mm256_loadu_pd(py + k), z0 = _mm256_loadu_pd(pz + k);
        __m256d x = _mm256_add_pd(x0, _mm256_mul_pd(vsig, nx));
        __m256d y = _mm256_add_pd(y0, _mm256_mul_pd(vsig, ny));
        __m256d z = _mm256_add_pd(z0, _mm256_mul_pd(vsig, nz));
        __m256d r2 = _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(x, x), _mm256_mul_pd(y, y)), _mm256_mul_pd(z, z));
        __m256d fine = _mm256_and_pd(_mm256_cmp_pd(r2, rd2, _CMP_LT_OQ), _mm256_cmp_pd(r2, ri2, _CMP_NLT_UQ));
        __m128i ix = _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_add_pd(x0, rd), inv));
        __m128i iy = _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_add_pd(y0, rd), inv));
        __m128i iz = _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_add_pd(z0, rd), inv));
        __m128i ok;
        if (c->absorbing) fine = _mm256_and_pd(fine, _mm256_cmp_pd(r2, near2, _CMP_NGT_UQ));
        if (c->enters)
            fine = _mm256_andnot_pd(_mm256_and_pd(_mm256_cmp_pd(r2, rm2, _CMP_LT_OQ),
                                                  _mm256_cmp_pd(_mm256_mul_pd(z, z), _mm256_mul_pd(mc2, r2), _CMP_LT_OQ)),
                                    fine);
#define MCSYN_IN_CUBE(i) _mm_and_si128(_mm_cmpgt_epi32(i, minus_one), _mm_cmpgt_epi32(above, i))
        ok = _mm_and_si128(_mm_and_si128(_mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(psp + k)), vsp),
                                         mcsyn_narrow_mask(fine)),
                           _mm_and_si128(MCSYN_IN_CUBE(ix), _mm_and_si128(MCSYN_IN_CUBE(iy), MCSYN_IN_CUBE(iz))));
#undef MCSYN_IN_CUBE
        ix = _mm_min_epi32(_mm_max_epi32(ix, zero_i), top);
        iy = _mm_min_epi32(_mm_max_epi32(iy, zero_i), top);
        iz = _mm_min_epi32(_mm_max_epi32(iz, zero_i), top);
        _mm_storeu_si128((__m128i *)(voxel + k),
                         _mm_add_epi32(_mm_mullo_epi32(_mm_add_epi32(_mm_mullo_epi32(ix, vn), iy), vn), iz));
        _mm256_storeu_pd(x_out + k, x);
        _mm256_storeu_pd(y_out + k, y);
        _mm256_storeu_pd(z_out + k, z);
        unsigned bits = (unsigned)_mm_movemask_ps(_mm_castsi128_ps(ok));
        for (j = 0; j < 4; j++) quiet[k + j] = (bits >> j) & 1;
    }
}

static void (*mcsyn_fill_normals_impl)(mcsyn_rng *, mcsyn_lanes *, double *, int) = mcsyn_fill_normals_scalar;
static void (*mcsyn_lanes_draw_impl)(mcsyn_lanes *, uint32_t *, int) = mcsyn_lanes_draw_scalar;
static mcsyn_quiet_step_fn mcsyn_quiet_step = NULL;   /* NULL: the scalar path steps every molecule */
static mcsyn_crossing_step_fn mcsyn_crossing_step = NULL;   /* NULL on the scalar path, as mcsyn_quiet_step */
static mcsyn_volume_step_fn mcsyn_volume_step = NULL;       /* NULL on the scalar path */
static int mcsyn_isa_now = MCSYN_ISA_SCALAR;

/* the block fill the stepping loops use (the path chosen by mcsyn_set_isa) */
static inline void mcsyn_fill_normals(mcsyn_rng *r, mcsyn_lanes *lanes, double *buf, int n) {
    mcsyn_fill_normals_impl(r, lanes, buf, n);
}

/* the lane draw of the chosen path alone (a test hook: the fills use their own) */
static void mcsyn_lanes_draw(mcsyn_lanes *lanes, uint32_t *raw, int rows) {
    mcsyn_lanes_draw_impl(lanes, raw, rows);
}

static int mcsyn_isa_supported(int isa) {
    __builtin_cpu_init();
    switch (isa) {
    case MCSYN_ISA_SCALAR: return 1;
    case MCSYN_ISA_AVX2: return __builtin_cpu_supports("avx2");
    case MCSYN_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
    default: return 0;
    }
}

/* 0 on success, -1 for a path this CPU (or this list) lacks */
static int mcsyn_set_isa(int isa) {
    if (!mcsyn_isa_supported(isa)) return -1;
    mcsyn_isa_now = isa;
    if (isa == MCSYN_ISA_AVX512) {
        mcsyn_fill_normals_impl = mcsyn_fill_normals_avx512;
        mcsyn_lanes_draw_impl = mcsyn_lanes_draw_avx512;
        mcsyn_quiet_step = mcsyn_quiet_step_avx512;
        mcsyn_crossing_step = mcsyn_crossing_step_avx512;
        mcsyn_volume_step = mcsyn_volume_step_avx512;
    } else if (isa == MCSYN_ISA_AVX2) {
        mcsyn_fill_normals_impl = mcsyn_fill_normals_avx2;
        mcsyn_lanes_draw_impl = mcsyn_lanes_draw_avx2;
        mcsyn_quiet_step = mcsyn_quiet_step_avx2;
        mcsyn_crossing_step = mcsyn_crossing_step_avx2;
        mcsyn_volume_step = mcsyn_volume_step_avx2;
    } else {
        mcsyn_fill_normals_impl = mcsyn_fill_normals_scalar;
        mcsyn_lanes_draw_impl = mcsyn_lanes_draw_scalar;
        mcsyn_quiet_step = NULL;
        mcsyn_crossing_step = NULL;
        mcsyn_volume_step = NULL;
    }
    return 0;
}

static int mcsyn_best_isa(void) {
    if (mcsyn_isa_supported(MCSYN_ISA_AVX512)) return MCSYN_ISA_AVX512;
    if (mcsyn_isa_supported(MCSYN_ISA_AVX2)) return MCSYN_ISA_AVX2;
    return MCSYN_ISA_SCALAR;
}

#endif
