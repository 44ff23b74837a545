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
 * the sign comes free and no half-integer bias remains). Keeping the layer bits apart from the
 * abscissa bits avoids the index/value correlation Doornik (2005) found in the original RNOR;
 * xoshiro256++ (unlike xoshiro256+) has no weak low bits, so the low half is as good as the high
 * half. A draw is accepted when |t| < k[layer], tested as one unsigned compare
 * (t + k - 1 < 2k - 1) against precomputed offsets. The block fill of the stepping loops draws its
 * bits from independent lanes of xoshiro256++ (mcsyn_lanes below), everything else from one serial
 * stream.
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
 * The block fill's own generator: MCSYN_LANES independent xoshiro256++ states advanced in
 * lockstep, raw 64-bit word i of a block from lane i % MCSYN_LANES. One xoshiro256++ chain yields
 * a word per ~3 cycles at best, because each step needs the state the previous step left (its
 * latency, not its arithmetic, is the limit), and the block fill, two normals per word, then
 * waits on it: about half of a free slab step. Independent lanes have no such chain between them,
 * so the vector paths step 4 or 8 of them per instruction and the scalar path overlaps them.
 * Lane l starts at the run's serial state advanced by l + 1 jumps of 2^128 steps each, so no two
 * streams (the serial one included) overlap within 2^128 draws; the kernel keeps its 4-word seed.
 * Every other draw (uniforms, exponentials, the slow path of a rejected normal) stays on the serial
 * stream.
 */
#define MCSYN_LANES 8

typedef struct {
    uint64_t s[4][MCSYN_LANES];   /* s[word][lane]: word k of every lane side by side, for the vector loads */
} mcsyn_lanes;

/* advance a xoshiro256++ state by 2^128 steps: the jump polynomial of Blackman & Vigna (2019) */
static void mcsyn_jump(uint64_t s[4]) {
    static const uint64_t poly[4] = {0x180ec6d33cfd0abaULL, 0xd5a61266f0c9392cULL, 0xa9582618e03fc9aaULL,
                                     0x39abdc4529b1661cULL};
    uint64_t acc[4] = {0, 0, 0, 0};
    mcsyn_rng walk;
    int i, b, k;
    memcpy(walk.s, s, sizeof walk.s);
    for (i = 0; i < 4; i++)
        for (b = 0; b < 64; b++) {
            if (poly[i] >> b & 1u)
                for (k = 0; k < 4; k++) acc[k] ^= walk.s[k];
            mcsyn_next_u64(&walk);
        }
    memcpy(s, acc, sizeof acc);
}

/* the lanes of a run whose serial generator r was just seeded */
static void mcsyn_lanes_seed(mcsyn_lanes *lanes, const mcsyn_rng *r) {
    uint64_t s[4];
    int l, k;
    memcpy(s, r->s, sizeof s);
    for (l = 0; l < MCSYN_LANES; l++) {
        mcsyn_jump(s);
        for (k = 0; k < 4; k++) lanes->s[k][l] = s[k];
    }
}

/* rows x MCSYN_LANES raw words, lane by lane within a row (the order every path writes), as 32-bit
 * draws (little-endian: the low half of a word first) */
static void mcsyn_lanes_draw_scalar(mcsyn_lanes *lanes, uint32_t *raw, int rows) {
    uint64_t s0[MCSYN_LANES], s1[MCSYN_LANES], s2[MCSYN_LANES], s3[MCSYN_LANES];
    int row, l;
    memcpy(s0, lanes->s[0], sizeof s0);
    memcpy(s1, lanes->s[1], sizeof s1);
    memcpy(s2, lanes->s[2], sizeof s2);
    memcpy(s3, lanes->s[3], sizeof s3);
    for (row = 0; row < rows; row++) {
        uint64_t words[MCSYN_LANES];
        for (l = 0; l < MCSYN_LANES; l++) {
            const uint64_t t = s1[l] << 17;
            words[l] = mcsyn_rotl(s0[l] + s3[l], 23) + s0[l];
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = mcsyn_rotl(s3[l], 45);
        }
        memcpy(raw + 2 * MCSYN_LANES * row, words, sizeof words);
    }
    memcpy(lanes->s[0], s0, sizeof s0);
    memcpy(lanes->s[1], s1, sizeof s1);
    memcpy(lanes->s[2], s2, sizeof s2);
    memcpy(lanes->s[3], s3, sizeof s3);
}

/*
 * Fill buf[0..n) with normals, n <= MCSYN_FILL_MAX. Draw j is the 32-bit half j of the lanes' raw
 * words (low half first), so a block takes ceil(n / (2 MCSYN_LANES)) rows and leaves the unused
 * halves of its last row. The block is drawn in pieces of MCSYN_FILL_PIECE draws, so that the raw
 * words stay in the L1 cache until converted. The fast path runs branch-free over each piece and
 * remembers the ~1.5 % of draws that fall outside their layer's rectangle (position and bits packed
 * in one word); at the end of the block the serial generator r completes those through the exact
 * slow path, in block order (~0.3 ns per normal of the block). Without a branch per draw the loop
 * pipelines: ~2 ns per normal against ~5 ns for one-at-a-time calls. This is the scalar path of
 * mcsyn_fill_normals (mcsyn_simd.h), and the reference the vector paths must match bit for bit.
 */
#define MCSYN_FILL_MAX 4096
#define MCSYN_FILL_PIECE 512   /* draws per piece: a whole number of rows (2 MCSYN_LANES draws each) */

/* the fast path of draws raw[0..count) into buf[0..count), the rejected ones appended (index j0 + j) */
static inline int mcsyn_zig_fast_scalar(const uint32_t *raw, double *buf, int count, int j0, uint64_t *rejected,
                                        int n_reject) {
    int j;
    for (j = 0; j < count; j++) {
        uint32_t u = raw[j], iz = u & MCSYN_ZIG_MASK;
        int32_t t = mcsyn_zig_abscissa(u);
        buf[j] = t * MCSYN_ZIG.w[iz];
        rejected[n_reject] = ((uint64_t)(j0 + j) << 32) | u;
        n_reject += !mcsyn_zig_accept(iz, t);
    }
    return n_reject;
}

static inline void mcsyn_fill_slow(mcsyn_rng *r, double *buf, const uint64_t *rejected, int n_reject) {
    int j;
    for (j = 0; j < n_reject; j++)
        buf[rejected[j] >> 32] = mcsyn_normal_slow(r, (uint32_t)rejected[j]);
}

/* the rows of lane words that hold a piece's draws */
static inline int mcsyn_fill_rows(int draws) {
    return (draws + 2 * MCSYN_LANES - 1) / (2 * MCSYN_LANES);
}

static void mcsyn_fill_normals_scalar(mcsyn_rng *r, mcsyn_lanes *lanes, double *buf, int n) {
    uint64_t rejected[MCSYN_FILL_MAX];
    uint32_t raw[MCSYN_FILL_PIECE];
    int n_reject = 0, j0, count;
    for (j0 = 0; j0 < n; j0 += count) {
        count = n - j0 < MCSYN_FILL_PIECE ? n - j0 : MCSYN_FILL_PIECE;
        mcsyn_lanes_draw_scalar(lanes, raw, mcsyn_fill_rows(count));
        n_reject = mcsyn_zig_fast_scalar(raw, buf + j0, count, j0, rejected, n_reject);
    }
    mcsyn_fill_slow(r, buf, rejected, n_reject);
}

#endif
