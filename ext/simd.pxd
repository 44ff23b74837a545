# The vector paths of the block fill, the quiet slab step and the crossing step (mcsyn_simd.h), chosen once at import
# for the CPU; every path gives the same bits for the same seed.
from libc.stdint cimport int32_t, uint8_t, uint32_t
from random cimport mcsyn_rng, mcsyn_lanes

cdef extern from "mcsyn_simd.h" nogil:
    enum:
        MCSYN_ISA_SCALAR
        MCSYN_ISA_AVX2
        MCSYN_ISA_AVX512
    void mcsyn_fill_normals(mcsyn_rng *r, mcsyn_lanes *lanes, double *buf, int n)
    void mcsyn_lanes_draw(mcsyn_lanes *lanes, uint32_t *raw, int rows)   # the lane words alone (test hook)
    ctypedef int (*mcsyn_quiet_step_fn)(double *px, double *py, double *pz, const int32_t *psp,
                                        const double *normals, int m, int32_t sp, double sig, double h,
                                        double inv_period, double near2, int32_t *special)
    mcsyn_quiet_step_fn mcsyn_quiet_step    # NULL on the scalar path
    ctypedef struct mcsyn_crossing_params:
        double h, inv_period, near2, sig, grid_half, inv_tile
        int32_t n_tile, no_tile
    ctypedef void (*mcsyn_crossing_step_fn)(const double *px, const double *py, const double *pz,
                                            const int32_t *psp, const double *normals, int m, int32_t sp,
                                            const mcsyn_crossing_params *c, double *x_out, double *y_out,
                                            double *z_out, int32_t *tile1, int32_t *tile2, uint8_t *quiet)
    mcsyn_crossing_step_fn mcsyn_crossing_step    # NULL on the scalar path
    ctypedef struct mcsyn_volume_params:
        double sig, r_domain, inv_voxel, rd2, near2, ri2, rm2, mc2
        int32_t n_vox, absorbing, enters
    ctypedef void (*mcsyn_volume_step_fn)(const double *px, const double *py, const double *pz,
                                          const int32_t *psp, const double *normals, int32_t sp,
                                          const mcsyn_volume_params *c, double *x_out, double *y_out,
                                          double *z_out, int32_t *voxel, uint8_t *quiet)
    mcsyn_volume_step_fn mcsyn_volume_step    # NULL on the scalar path
    int mcsyn_isa_supported(int isa)
    int mcsyn_set_isa(int isa)
    int mcsyn_best_isa()
    int mcsyn_isa_now
