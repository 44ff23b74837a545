# Stopping a kernel run from outside (a signal in the main thread, or a stop hold from any thread):
# the flags and the signal hook, all in mcsyn_interrupt.h, which says why it is built this way.
cdef extern from "mcsyn_interrupt.h":
    int mcsyn_catch_signal(int signum)          # GIL held, main thread; 1: caught (release after)
    void mcsyn_release_signal(int signum)
    void mcsyn_clear_signal()
    int mcsyn_stop_hold_count()
    void mcsyn_add_stop_holds(int n)
    int mcsyn_stop_requested(int watch_signals) nogil
