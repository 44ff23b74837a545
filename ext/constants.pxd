# Constants of the kernel, shared with the Python layer: mcsyn.compile reads them from
# mcsyn._engine (which re-exports every name below; a cpdef enum in a cimported .pxd does not
# reach Python by itself), so no value is written down twice.
from random cimport MCSYN_FILL_MAX

cpdef enum:
    OUTSIDE_CLOSED = 0      # reflecting cleft rim
    OUTSIDE_OPEN = 1        # absorbing cleft rim: leaving counts as escaped
    OUTSIDE_BAND = 2        # slab continues to R_outer
    OUTSIDE_VOLUME = 3      # homogenised extracellular volume beyond the rim

cpdef enum:
    PROBE_SPHERE = 0        # a detector region: the ball |x - c| < radius
    PROBE_CYLINDER = 1      # a detector region: |(x, y) - c| < radius, |z - c_z| < half length

cpdef enum:
    EXIT_PLAIN = 0          # first-order change of state, nothing else happens
    EXIT_UNBIND = 1         # a bound molecule is released next to the site
    EXIT_UPTAKE = 2         # the bound molecule is translocated: counted as taken up
    EXIT_DEGRADE = 3        # the bound molecule is destroyed by the site (enzyme)
    EXIT_EFFLUX = 4         # the site emits a new molecule (reverse transport): counted as released

cpdef enum:
    PLANE_POST = 0          # postsynaptic membrane, z = 0
    PLANE_PRE = 1           # presynaptic membrane, z = h
    PLANE_VOLUME = 2        # a site in the homogenised volume
    PLANE_AGGREGATE = 3     # the aggregate clock of a volume type's ground-state exits

cpdef enum:
    # what the kernel's set-up and stepping functions return
    STATUS_OK = 0
    STATUS_NO_MEMORY = -1   # an allocation failed: the entry point raises MemoryError
    STATUS_SHARED_TILE = -2 # build_sites: two membrane sites on one tile
    STATUS_INTERRUPTED = -3 # run_loop: a stop was requested (mcsyn_interrupt.h); calling it again resumes

cpdef enum:
    # columns of the time series, in this order (mcsyn._engine.SERIES_COLUMNS names them)
    SERIES_RELEASED = 0
    SERIES_FREE_CLEFT = 1
    SERIES_FREE_BAND = 2
    SERIES_FREE_VOLUME = 3
    SERIES_BOUND = 4
    SERIES_TAKEN_UP = 5
    SERIES_ESCAPED = 6
    SERIES_DEGRADED = 7
    SERIES_EFFLUXED = 8
    SERIES_BINDING_EVENTS = 9
    N_SERIES = 10

cpdef enum:
    ENTRY_DEPTH_QUANTILES = 257     # table length of the inverse CDF of an entering molecule's depth
    NORMAL_BLOCK = 4095     # normals drawn per refill: a multiple of 3 (one step)
    CHUNK = 128             # molecules per chunk of step_slab
    SORT_EVERY = 64         # fine steps between spatial sorts of the slab molecules
    SORT_CELL_TILES = 16    # sort cells are 16 x 16 tiles (160 nm at the default tile)

# Compile-time guard (never instantiated): a negative array size stops the C compiler if a refill
# could overrun mcsyn_fill_normals' limit, a chunk of step_slab (3 normals per molecule) outgrow
# a block, or a block end in the middle of a step. 2 (b - a) + 1 is negative exactly when a > b
# (a plain b - a + 1 would allow the zero-length arrays GCC accepts). Cython cannot fold a
# comparison in an array size, hence the arithmetic. tests/test_kernel_api.py checks it fires.
ctypedef struct BlockSizeGuard:
    char normal_block_within_fill_max[2 * (MCSYN_FILL_MAX - NORMAL_BLOCK) + 1]
    char three_per_molecule_chunk_within_block[2 * (NORMAL_BLOCK - 3 * CHUNK) + 1]
    char normal_block_multiple_of_3[1 - 2 * (NORMAL_BLOCK % 3)]
