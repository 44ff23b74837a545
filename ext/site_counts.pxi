# ==================================================================================================
# volume sites per voxel: one run's multinomial draw, Poissonised
#
# N sites fall into K voxels with probabilities p_i (each voxel's share of the extracellular
# shell). Drawing that as K conditional binomials, one per voxel (numpy's multinomial), was most
# of a serotonergic or dopaminergic run's placement, because K is large (36,312 voxels) and each
# binomial pays its own set-up. Here each voxel first gets an independent Poisson(N p_i) count, by
# inversion of a table that all voxels of one probability class share (a geometry has few distinct
# shares: 54 on the presets' grid). Given their sum S those counts are multinomial(S, p); the
# N - S sites still missing are then placed one by one with probabilities p, or, where S > N,
# S - N of the placed sites are taken away uniformly at random (a uniform subset of i.i.d. sites
# is i.i.d.). The result is multinomial(N, p) exactly, for any N and p.

cdef enum:
    GUIDE_PER_ENTRY = 4       # guide buckets per table entry

cdef struct PoissonTable:
    int64_t low         # the table's first value
    int64_t n           # entries: cdf[j] = P(X <= low + j) within the window, cdf[n - 1] = 1
    double *cdf
    int64_t n_guide     # GUIDE_PER_ENTRY n buckets, so that most searches end at once
    int64_t *guide      # guide[g]: the first j with cdf[j] > g / n_guide


cdef int poisson_table_build(PoissonTable *t, double mean) noexcept nogil:
    # The window [mean - w, mean + w], w = 10 sqrt(mean) + 20, leaves out less than 1e-20 of the
    # mass (Chernoff), below what a 53-bit uniform resolves. The weights are relative to the mode
    # (ratios of neighbouring terms), so nothing underflows however large the mean.
    cdef double half = 10.0 * sqrt(mean) + 20.0
    cdef int64_t mode = <int64_t> floor(mean)
    cdef int64_t low = <int64_t> floor(mean - half)
    cdef int64_t high = <int64_t> ceil(mean + half)
    cdef int64_t j, g, k
    cdef double total = 0.0, w
    if low < 0:
        low = 0
    t.low = low
    t.n = high - low + 1
    t.cdf = <double*> malloc(t.n * sizeof(double))
    t.n_guide = GUIDE_PER_ENTRY * t.n
    t.guide = <int64_t*> malloc(t.n_guide * sizeof(int64_t))
    if t.cdf == NULL or t.guide == NULL:
        return STATUS_NO_MEMORY
    t.cdf[mode - low] = 1.0
    w = 1.0
    for k in range(mode + 1, high + 1):
        w *= mean / k
        t.cdf[k - low] = w
    w = 1.0
    for k in range(mode, low, -1):
        w *= k / mean
        t.cdf[k - 1 - low] = w
    for j in range(t.n):
        total += t.cdf[j]
        t.cdf[j] = total
    for j in range(t.n):
        t.cdf[j] /= total
    t.cdf[t.n - 1] = 1.0
    j = 0
    for g in range(t.n_guide):
        while t.cdf[j] <= <double> g / t.n_guide:
            j += 1
        t.guide[g] = j
    return STATUS_OK


cdef inline int64_t poisson_table_draw(const PoissonTable *t, mcsyn_rng *r) noexcept nogil:
    cdef double u = mcsyn_uniform(r)
    cdef int64_t g = <int64_t> (u * t.n_guide)
    cdef int64_t j
    if g >= t.n_guide:       # u * n_guide may round up to n_guide
        g = t.n_guide - 1
    j = t.guide[g]
    while t.cdf[j] <= u:
        j += 1
    return t.low + j


cdef inline int64_t uniform_below(mcsyn_rng *r, int64_t n) noexcept nogil:
    # uniform on 0..n-1 (n >= 1), to the 53-bit resolution of the kernel's uniforms
    cdef int64_t k = <int64_t> (mcsyn_uniform(r) * n)
    return n - 1 if k >= n else k


cdef void tally_classes(int64_t n_voxels, const int32_t *voxel_class, int64_t n_classes,
                        const double *class_probability, int64_t *members, double *mass,
                        double *largest) noexcept nogil:
    # members[c] (of a zeroed [4, n_classes] buffer): the voxels of class c; mass: the voxels'
    # summed probability; largest: the largest probability a voxel has. Four interleaved tallies,
    # because most voxels share one class and a single tally would wait on its own last store.
    cdef int64_t i, c
    mass[0] = 0.0
    largest[0] = 0.0
    for i in range(0, n_voxels - 3, 4):
        members[voxel_class[i]] += 1
        members[n_classes + voxel_class[i + 1]] += 1
        members[2 * n_classes + voxel_class[i + 2]] += 1
        members[3 * n_classes + voxel_class[i + 3]] += 1
    for i in range(n_voxels - n_voxels % 4, n_voxels):
        members[voxel_class[i]] += 1
    for c in range(n_classes):
        members[c] += members[n_classes + c] + members[2 * n_classes + c] + members[3 * n_classes + c]
        mass[0] += class_probability[c] * members[c]
        if members[c] > 0 and class_probability[c] > largest[0]:
            largest[0] = class_probability[c]


cdef int draw_volume_counts(mcsyn_rng *r, int64_t total, int64_t n_voxels, const int32_t *voxel_class,
                            int64_t n_classes, const double *class_probability, const int64_t *members,
                            double mass, double largest, int32_t *counts) noexcept nogil:
    # counts[i] for i < n_voxels: multinomial(total, p), p_i ∝ class_probability[voxel_class[i]],
    # with members, mass and largest from tally_classes (mass > 0)
    cdef PoissonTable *tables = <PoissonTable*> calloc(n_classes, sizeof(PoissonTable))
    cdef int64_t *tree = NULL
    cdef int64_t i, c, placed = 0
    cdef int status = STATUS_OK
    if tables == NULL:
        status = STATUS_NO_MEMORY
    else:
        for c in range(n_classes):
            if members[c] > 0 and class_probability[c] > 0.0:
                status = poisson_table_build(&tables[c], total * class_probability[c] / mass)
                if status != STATUS_OK:
                    break
    if status == STATUS_OK:
        for i in range(n_voxels):
            c = voxel_class[i]
            counts[i] = <int32_t> poisson_table_draw(&tables[c], r) if tables[c].n else 0
            placed += counts[i]
        while placed < total:
            # one more site, voxel i with probability p_i: a uniform voxel, kept with probability
            # p_i / max p (most are kept: a grid's voxels hold similar shares)
            i = uniform_below(r, n_voxels)
            if mcsyn_uniform(r) * largest < class_probability[voxel_class[i]]:
                counts[i] += 1
                placed += 1
        if placed > total:              # take away placed sites, each uniform among those left
            tree = <int64_t*> calloc(n_voxels + 1, sizeof(int64_t))
            if tree == NULL:
                status = STATUS_NO_MEMORY
            else:
                for i in range(1, n_voxels + 1):        # the prefix tree in linear time
                    tree[i] += counts[i - 1]
                    if i + (i & (-i)) <= n_voxels:
                        tree[i + (i & (-i))] += tree[i]
                while placed > total:
                    i = fenwick_find(tree, n_voxels, uniform_below(r, placed))
                    counts[i] -= 1
                    fenwick_add(tree, n_voxels, i, -1)
                    placed -= 1
    if tables != NULL:
        for c in range(n_classes):
            free(tables[c].cdf)
            free(tables[c].guide)
    free(tables)
    free(tree)
    return status
