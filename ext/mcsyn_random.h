/*
 * The kernel's random stream: xoshiro256++ (Blackman & Vigna 2019) with a 256-layer
 * ziggurat normal (Marsaglia & Tsang 2000) fed 32 bits at a time.
 *
 * Why not numpy's bitgen_t: one Gaussian step per axis per molecule per time step makes the
 * normal sampler the hot loop, and a function call through bitgen_t per draw caps the walker
 * near 30-40 M molecule-steps/s. Inlining the generator here lets the compiler keep the state
 * in registers. The state is seeded from numpy's SeedSequence on the Python side.
 *
 * Each normal uses one 32-bit half of a 64-bit output: bits 0-7 pick one of 256 layers and bits
 * 8-31, read as a signed 24-bit integer m, the abscissa t = 2m + 1 (odd, symmetric about zero, so
 * the sign comes free and no half-integer bias remains). Keeping the layer bits apart
 * from the abscissa bits avoids the index/value correlation Doornik (2005) found in the original
 * RNOR; xoshiro256++ (unlike xoshiro256+) has no weak low bits, so the low half is as good as the
 * high half. A draw is accepted when |t| < k[layer], tested as one unsigned compare
 * (t + k - 1 < 2k - 1) against precomputed offsets.
 */
#ifndef MCSYN_RANDOM_H
#define MCSYN_RANDOM_H

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint64_t s[4];
    uint32_t spare;     /* unused upper half of the last 64-bit output */
    int has_spare;
} mcsyn_rng;

/* 256 layers (Marsaglia & Tsang's constants for n = 256): half the draws of the 128-layer table
 * fall outside their rectangle, and each of those costs an exp() in the slow path */
#define MCSYN_ZIG_N 256
#define MCSYN_ZIG_MASK 255u
#define MCSYN_ZIG_R 3.6541528853610088
#define MCSYN_ZIG_V 4.92867323399e-3
#define MCSYN_ZIG_M 16777216.0 /* 2^24 */

typedef struct {
    uint32_t k[MCSYN_ZIG_N];      /* acceptance thresholds for |t|, t the odd abscissa in (-2^24, 2^24) */
    uint32_t shift[MCSYN_ZIG_N];  /* k - 1: moves the accepted t onto [0, 2k - 2] */
    uint32_t span[MCSYN_ZIG_N];   /* 2k - 1 (0 for an empty rectangle): accept when t + shift < span */
    double w[MCSYN_ZIG_N];        /* abscissa scale per layer */
    double f[MCSYN_ZIG_N];        /* density exp(-x^2/2) at each layer edge */
    double edge[MCSYN_ZIG_N];     /* k w: |t| < k exactly when |t w| < k w (mcsyn_simd.h) */
} mcsyn_ziggurat;

static mcsyn_ziggurat MCSYN_ZIG;
static int MCSYN_ZIG_READY = 0;

static void mcsyn_ziggurat_init(void) {
    double dn = MCSYN_ZIG_R, tn = dn, vn = MCSYN_ZIG_V;
    double q = vn / exp(-0.5 * dn * dn);
    int i;
    if (MCSYN_ZIG_READY) return;
    MCSYN_ZIG.k[0] = (uint32_t)((dn / q) * MCSYN_ZIG_M);
    MCSYN_ZIG.k[1] = 0;
    MCSYN_ZIG.w[0] = q / MCSYN_ZIG_M;
    MCSYN_ZIG.w[MCSYN_ZIG_N - 1] = dn / MCSYN_ZIG_M;
    MCSYN_ZIG.f[0] = 1.0;
    MCSYN_ZIG.f[MCSYN_ZIG_N - 1] = exp(-0.5 * dn * dn);
    for (i = MCSYN_ZIG_N - 2; i >= 1; i--) {
        dn = sqrt(-2.0 * log(vn / dn + exp(-0.5 * dn * dn)));
        MCSYN_ZIG.k[i + 1] = (uint32_t)((dn / tn) * MCSYN_ZIG_M);
        tn = dn;
        MCSYN_ZIG.f[i] = exp(-0.5 * dn * dn);
        MCSYN_ZIG.w[i] = dn / MCSYN_ZIG_M;
    }
    for (i = 0; i < MCSYN_ZIG_N; i++) {
        MCSYN_ZIG.shift[i] = MCSYN_ZIG.k[i] - 1u;
        MCSYN_ZIG.span[i] = MCSYN_ZIG.k[i] ? 2u * MCSYN_ZIG.k[i] - 1u : 0u;
        MCSYN_ZIG.edge[i] = (double)MCSYN_ZIG.k[i] * MCSYN_ZIG.w[i];
    }
    MCSYN_ZIG_READY = 1;
}

static inline uint64_t mcsyn_rotl(const uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t mcsyn_next_u64(mcsyn_rng *r) {
    uint64_t *s = r->s;
    const uint64_t result = mcsyn_rotl(s[0] + s[3], 23) + s[0];
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = mcsyn_rotl(s[3], 45);
    return result;
}

static inline void mcsyn_rng_seed(mcsyn_rng *r, const uint64_t *words) {
    int i;
    for (i = 0; i < 4; i++) r->s[i] = words[i];
    /* the all-zero state is the generator's only fixed point */
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) r->s[0] = 0x9E3779B97F4A7C15ULL;
    r->has_spare = 0;
    r->spare = 0;
}

static inline uint32_t mcsyn_next_u32(mcsyn_rng *r) {
    uint64_t u;
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    u = mcsyn_next_u64(r);
    r->spare = (uint32_t)(u >> 32);
    r->has_spare = 1;
    return (uint32_t)u;
}

/* uniform on [0, 1) with 53 random bits */
static inline double mcsyn_uniform(mcsyn_rng *r) {
    return (double)(mcsyn_next_u64(r) >> 11) * 0x1.0p-53;
}

/* uniform on (0, 1), safe for log() */
static inline double mcsyn_uniform_open(mcsyn_rng *r) {
    return ((double)(mcsyn_next_u64(r) >> 11) + 0.5) * 0x1.0p-53;
}

static inline double mcsyn_exponential(mcsyn_rng *r) {
    return -log(mcsyn_uniform_open(r));
}

/* the odd abscissa t = 2m + 1 from bits 8-31 read as a signed integer m (arithmetic shift) */
static inline int32_t mcsyn_zig_abscissa(uint32_t u) {
    return ((int32_t)u >> 7) | 1;
}

static inline int mcsyn_zig_accept(uint32_t iz, int32_t t) {
    return (uint32_t)t + MCSYN_ZIG.shift[iz] < MCSYN_ZIG.span[iz];
}

static double mcsyn_normal_slow(mcsyn_rng *r, uint32_t u) {
    for (;;) {
        uint32_t iz = u & MCSYN_ZIG_MASK;
        int32_t t = mcsyn_zig_abscissa(u);
        double x = t * MCSYN_ZIG.w[iz];
        if (iz == 0) {
            /* the tail beyond R, by Marsaglia's exponential rejection */
            double y;
            do {
                x = -log(mcsyn_uniform_open(r)) / MCSYN_ZIG_R;
                y = -log(mcsyn_uniform_open(r));
            } while (y + y < x * x);
            x += MCSYN_ZIG_R;
            return t < 0 ? -x : x;
        }
        if (MCSYN_ZIG.f[iz] + mcsyn_uniform(r) * (MCSYN_ZIG.f[iz - 1] - MCSYN_ZIG.f[iz]) < exp(-0.5 * x * x))
            return x;
        u = mcsyn_next_u32(r);
        iz = u & MCSYN_ZIG_MASK;
        t = mcsyn_zig_abscissa(u);
        if (mcsyn_zig_accept(iz, t)) return t * MCSYN_ZIG.w[iz];
    }
}

static inline double mcsyn_normal(mcsyn_rng *r) {
    uint32_t u = mcsyn_next_u32(r);
    uint32_t iz = u & MCSYN_ZIG_MASK;
    int32_t t = mcsyn_zig_abscissa(u);
    if (mcsyn_zig_accept(iz, t)) return t * MCSYN_ZIG.w[iz];
    return mcsyn_normal_slow(r, u);
}

/*
 * Fill buf[0..n) with normals, n <= MCSYN_FILL_MAX. The fast path runs branch-free over the whole
 * block (two normals per 64-bit output) and remembers the ~0.6 % of draws that fall outside their
 * layer's rectangle (position and bits packed in one word); a second pass completes those through
 * the exact slow path. Without a branch per draw the loop pipelines: ~1.5 ns per normal against
 * ~5 ns for one-at-a-time calls. This is the scalar path of mcsyn_fill_normals (mcsyn_simd.h),
 * and the reference the vector paths must match bit for bit.
 */
#define MCSYN_FILL_MAX 4096

static void mcsyn_fill_normals_scalar(mcsyn_rng *r, double *buf, int n) {
    uint64_t rejected[MCSYN_FILL_MAX];
    int n_reject = 0, i, j;
    for (i = 0; i + 1 < n; i += 2) {
        uint64_t u = mcsyn_next_u64(r);
        uint32_t h0 = (uint32_t)u, h1 = (uint32_t)(u >> 32);
        uint32_t iz0 = h0 & MCSYN_ZIG_MASK, iz1 = h1 & MCSYN_ZIG_MASK;
        int32_t t0 = mcsyn_zig_abscissa(h0), t1 = mcsyn_zig_abscissa(h1);
        buf[i] = t0 * MCSYN_ZIG.w[iz0];
        buf[i + 1] = t1 * MCSYN_ZIG.w[iz1];
        rejected[n_reject] = ((uint64_t)i << 32) | h0;
        n_reject += !mcsyn_zig_accept(iz0, t0);
        rejected[n_reject] = ((uint64_t)(i + 1) << 32) | h1;
        n_reject += !mcsyn_zig_accept(iz1, t1);
    }
    if (i < n) buf[i] = mcsyn_normal(r);
    for (j = 0; j < n_reject; j++)
        buf[rejected[j] >> 32] = mcsyn_normal_slow(r, (uint32_t)rejected[j]);
}

#endif
