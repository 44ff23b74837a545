# ==================================================================================================
# molecule pools

cdef int pool_init(Pool *p, Py_ssize_t capacity) noexcept nogil:
    if capacity < 16:
        capacity = 16
    p.n = 0
    p.capacity = capacity
    p.x = <double*> malloc(capacity * sizeof(double))
    p.y = <double*> malloc(capacity * sizeof(double))
    p.z = <double*> malloc(capacity * sizeof(double))
    p.clock = <double*> malloc(capacity * sizeof(double))
    p.species = <int32_t*> malloc(capacity * sizeof(int32_t))
    p.image = <int32_t*> malloc(3 * capacity * sizeof(int32_t))
    if p.x == NULL or p.y == NULL or p.z == NULL or p.clock == NULL or p.species == NULL or p.image == NULL:
        return STATUS_NO_MEMORY
    return STATUS_OK

cdef void pool_free(Pool *p) noexcept nogil:
    free(p.x); free(p.y); free(p.z); free(p.clock); free(p.species); free(p.image)
    p.x = NULL; p.y = NULL; p.z = NULL; p.clock = NULL; p.species = NULL; p.image = NULL

cdef int pool_grow(Pool *p) noexcept nogil:
    cdef Py_ssize_t cap = p.capacity * 2
    cdef double *nx = <double*> realloc(p.x, cap * sizeof(double))
    if nx == NULL: return STATUS_NO_MEMORY
    p.x = nx
    nx = <double*> realloc(p.y, cap * sizeof(double))
    if nx == NULL: return STATUS_NO_MEMORY
    p.y = nx
    nx = <double*> realloc(p.z, cap * sizeof(double))
    if nx == NULL: return STATUS_NO_MEMORY
    p.z = nx
    nx = <double*> realloc(p.clock, cap * sizeof(double))
    if nx == NULL: return STATUS_NO_MEMORY
    p.clock = nx
    cdef int32_t *ns = <int32_t*> realloc(p.species, cap * sizeof(int32_t))
    if ns == NULL: return STATUS_NO_MEMORY
    p.species = ns
    ns = <int32_t*> realloc(p.image, 3 * cap * sizeof(int32_t))
    if ns == NULL: return STATUS_NO_MEMORY
    p.image = ns
    p.capacity = cap
    return STATUS_OK

cdef inline int pool_add(Sim *s, Pool *p, double x, double y, double z, int32_t sp) noexcept nogil:
    if p.n == p.capacity:
        if pool_grow(p) != STATUS_OK:
            return STATUS_NO_MEMORY
    p.x[p.n] = x
    p.y[p.n] = y
    p.z[p.n] = z
    p.species[p.n] = sp
    p.image[3 * p.n] = 0
    p.image[3 * p.n + 1] = 0
    p.image[3 * p.n + 2] = 0
    p.clock[p.n] = mcsyn_exponential(&s.rng)
    p.n += 1
    return STATUS_OK

cdef inline void pool_remove(Pool *p, Py_ssize_t i) noexcept nogil:
    # swap-remove keeps the arrays dense; the caller re-examines index i
    cdef Py_ssize_t last = p.n - 1
    p.x[i] = p.x[last]
    p.y[i] = p.y[last]
    p.z[i] = p.z[last]
    p.clock[i] = p.clock[last]
    p.species[i] = p.species[last]
    p.image[3 * i] = p.image[3 * last]
    p.image[3 * i + 1] = p.image[3 * last + 1]
    p.image[3 * i + 2] = p.image[3 * last + 2]
    p.n = last
