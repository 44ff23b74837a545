# The kernel's generator (xoshiro256++ with a 256-layer ziggurat), all in mcsyn_random.h: every
# draw is a static inline C function, so the stepping loops inline it like their own code.
from libc.stdint cimport uint64_t

cdef extern from "mcsyn_random.h" nogil:
    ctypedef struct mcsyn_rng:
        pass
    ctypedef struct mcsyn_lanes:    # the block fill's lane generators (see mcsyn_random.h)
        pass
    enum: MCSYN_LANES
    void mcsyn_ziggurat_init()
    void mcsyn_rng_seed(mcsyn_rng *r, const uint64_t *words)
    void mcsyn_lanes_seed(mcsyn_lanes *lanes, const mcsyn_rng *r)   # from r just seeded
    uint64_t mcsyn_next_u64(mcsyn_rng *r)
    double mcsyn_uniform(mcsyn_rng *r)
    double mcsyn_exponential(mcsyn_rng *r)
    double mcsyn_normal(mcsyn_rng *r)
    void mcsyn_fill_normals_scalar(mcsyn_rng *r, mcsyn_lanes *lanes, double *buf, int n)   # simd.pxd: the dispatched one
    enum: MCSYN_FILL_MAX        # the most normals one mcsyn_fill_normals call may write
