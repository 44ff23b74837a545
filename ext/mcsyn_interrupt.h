/* Stopping a kernel run from outside while it runs without the GIL.

   Two sources, read by the main loop at the top of every fine step (two loads of volatile ints,
   next to the work of a fine step over every molecule):

   - a signal that Python handles (SIGINT, SIGTERM) arriving while the *main thread* runs a kernel.
     Python's own C handler only records the signal for the interpreter, whose Python-level
     handler cannot run until the kernel returns; so for the duration of the run the entry point
     puts mcsyn_on_signal in front of it (PyOS_setsig), which records the signal here and then
     calls Python's handler, so the interpreter still sees the signal exactly as before. The entry
     point then runs Python's handler (PyErr_CheckSignals) and resumes the run if it raised nothing.
     Signals whose handler is SIG_DFL or SIG_IGN are left alone (the process dies, or ignores them,
     as it would without mcsyn).
   - stop holds (mcsyn_stop_holds > 0), taken and released with the GIL held by code that must end
     kernel runs in other threads (an ensemble's driver after Ctrl-C): every run, in any thread,
     stops at its next check, and runs started while a hold is taken stop at their first step.

   Only the main thread's run watches mcsyn_signal_caught: a signal is the main thread's business
   in Python, and a worker run must not spin on a flag that only the main thread clears. */
#ifndef MCSYN_INTERRUPT_H
#define MCSYN_INTERRUPT_H

#include <Python.h>
#include <signal.h>

/* the signal caught during the main thread's kernel run, 0: none; written by mcsyn_on_signal, cleared by
   the main thread before and after its run */
static volatile sig_atomic_t mcsyn_signal_caught = 0;
/* stop holds; written only with the GIL held (so never concurrently), read without it. An aligned int
   is loaded whole on every platform CPython supports; volatile makes every check load it again. */
static volatile int mcsyn_stop_holds = 0;

static PyOS_sighandler_t mcsyn_previous_sigint = SIG_DFL;
static PyOS_sighandler_t mcsyn_previous_sigterm = SIG_DFL;

static void mcsyn_on_signal(int signum)
{
    PyOS_sighandler_t previous = signum == SIGINT ? mcsyn_previous_sigint : mcsyn_previous_sigterm;
    mcsyn_signal_caught = signum;
    if (previous != SIG_DFL && previous != SIG_IGN && previous != SIG_ERR && previous != NULL)
        previous(signum);
}

/* Put mcsyn_on_signal in front of the handler of signum if that is a function (Python's); returns 1 if it
   did (then mcsyn_release_signal must follow), 0 if the signal is left alone. Main thread, GIL held. */
static int mcsyn_catch_signal(int signum)
{
    PyOS_sighandler_t *slot = signum == SIGINT ? &mcsyn_previous_sigint : &mcsyn_previous_sigterm;
    PyOS_sighandler_t current = PyOS_getsig(signum);
    if (current == SIG_DFL || current == SIG_IGN || current == SIG_ERR || current == mcsyn_on_signal)
        return 0;
    *slot = current;                    /* before the swap: the handler reads it */
    PyOS_setsig(signum, mcsyn_on_signal);
    return 1;
}

/* Put the previous handler back, unless a Python handler run during the pause (PyErr_CheckSignals) set
   another one for this signal: that one stays. */
static void mcsyn_release_signal(int signum)
{
    if (PyOS_getsig(signum) == mcsyn_on_signal)
        PyOS_setsig(signum, signum == SIGINT ? mcsyn_previous_sigint : mcsyn_previous_sigterm);
}

static void mcsyn_clear_signal(void) { mcsyn_signal_caught = 0; }
static int mcsyn_stop_hold_count(void) { return mcsyn_stop_holds; }
static void mcsyn_add_stop_holds(int n) { mcsyn_stop_holds += n; }      /* GIL held */

/* The check of the main loop: 1 when the run must pause (watch_signals: this run is the main thread's). */
static inline int mcsyn_stop_requested(int watch_signals)
{
    return mcsyn_stop_holds > 0 || (watch_signals && mcsyn_signal_caught != 0);
}

#endif
