# ==================================================================================================
# event heap over sites (min-heap on site_next; each entry carries its key in heap_key, so that
# a step down compares two adjacent keys instead of chasing two ids into site_next)

cdef inline void heap_swap(Sim *s, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    cdef int32_t sa = s.heap[a], sb = s.heap[b]
    cdef double ka = s.heap_key[a]
    s.heap[a] = sb
    s.heap[b] = sa
    s.heap_key[a] = s.heap_key[b]
    s.heap_key[b] = ka
    s.heap_pos[sb] = <int32_t> a
    s.heap_pos[sa] = <int32_t> b

cdef void heap_up(Sim *s, Py_ssize_t i) noexcept nogil:
    cdef Py_ssize_t parent
    while i > 0:
        parent = (i - 1) >> 1
        if s.heap_key[parent] <= s.heap_key[i]:
            break
        heap_swap(s, i, parent)
        i = parent

cdef void heap_down(Sim *s, Py_ssize_t i) noexcept nogil:
    cdef Py_ssize_t left, right, smallest
    while True:
        left = 2 * i + 1
        right = left + 1
        smallest = i
        if left < s.heap_n and s.heap_key[left] < s.heap_key[smallest]:
            smallest = left
        if right < s.heap_n and s.heap_key[right] < s.heap_key[smallest]:
            smallest = right
        if smallest == i:
            break
        heap_swap(s, i, smallest)
        i = smallest

cdef void heap_set(Sim *s, int32_t site, double t) noexcept nogil:
    cdef Py_ssize_t i = s.heap_pos[site]
    cdef double old
    if i < 0:
        s.site_next[site] = t
        i = s.heap_n
        s.heap[i] = site
        s.heap_key[i] = t
        s.heap_pos[site] = <int32_t> i
        s.heap_n += 1
        heap_up(s, i)
    else:
        old = s.site_next[site]
        s.site_next[site] = t
        s.heap_key[i] = t
        if t < old:
            heap_up(s, i)
        else:
            heap_down(s, i)

cdef void heap_remove(Sim *s, int32_t site) noexcept nogil:
    cdef Py_ssize_t i = s.heap_pos[site]
    cdef Py_ssize_t last
    if i < 0:
        return
    last = s.heap_n - 1
    if i != last:
        heap_swap(s, i, last)
    s.heap_n = last
    s.heap_pos[site] = -1
    if i < s.heap_n:
        heap_up(s, i)
        heap_down(s, i)
