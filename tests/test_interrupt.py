"""Stopping kernel runs: Ctrl-C inside one long run, stop holds for worker threads, and an ensemble
started from the CLI in the background that gets SIGINT mid-run.

Every signal is sent once the run it must reach has started, as the kernel reports it
(``_engine.runs_in_progress()``), never after a fixed sleep. The long runs would take hours
(``LONG`` below: ~2000 molecules for 100 s of model time, ~4.6e11 molecule-steps), so a run that
ignored the stop shows as a timeout of minutes, never as a pass."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mcsyn
from mcsyn import _engine, cli
from mcsyn import storage
from mcsyn.simulate import RunStopped, kernel_runs_stopped, prepared_kernel

LONG = ("mcsyn.SynapseModel(geometry=mcsyn.Geometry(outside='closed'), releases=[mcsyn.Release(molecules=2000)], "
        "timing=mcsyn.Timing(duration_ms=1e5, sample_interval_us=1e5))")
EXIT_S = 60         # a stopped child exits within this; the run it stopped would take hours


def _sigint_ignored_below_python() -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


@pytest.fixture(autouse=True)
def python_handles_sigint():
    """These tests need SIGINT to reach Python's handler, here and in the children they start. A test
    process started in the background by a non-interactive shell (``pytest > log &``) inherits SIGINT
    and SIGQUIT ignored, as POSIX has such a shell do; Python then leaves SIGINT ignored
    (``signal.getsignal`` gives SIG_IGN, /proc/self/status SigIgn ...1006), its children inherit that,
    and an ignored SIGINT never reaches the kernel's hook: the run goes on and the test times out
    (seen in background full-suite runs; never under ``.ci/run``). Install Python's own handler, as
    a process started in the foreground has, for the test, and put the disposition back after it."""
    before = signal.getsignal(signal.SIGINT)
    if Path("/proc/self/status").exists() and _sigint_ignored_below_python():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        assert not _sigint_ignored_below_python()
    yield
    signal.signal(signal.SIGINT, before)


def long_model():
    return eval(LONG)


def wait_for(condition, what, timeout_s=120.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def kernel_args(model, seed=3):
    cm = mcsyn.compile_model(model)
    ss = np.random.SeedSequence(seed)
    return prepared_kernel(cm), cm.draw_run(ss), ss.generate_state(4, np.uint64)


SINGLE_RUN = textwrap.dedent("""
    import faulthandler, signal, threading, time
    faulthandler.register(signal.SIGUSR1, all_threads=True)   # what it was doing, if it ignores the stop
    import mcsyn
    from mcsyn import _engine
    def marker():
        while _engine.runs_in_progress() < 1:
            time.sleep(0.005)
        print("RUNNING", flush=True)
    threading.Thread(target=marker, daemon=True).start()
    mcsyn.run({long}, n_runs=1, max_steps=None)
    print("FINISHED", flush=True)
""")


def _stuck_child_report(proc) -> str:
    """A child that did not stop: its signal masks (blocked, ignored, pending) and every thread's
    Python stack (faulthandler on SIGUSR1), so a failure says why."""
    status = Path(f"/proc/{proc.pid}/status")
    masks = [ln for ln in status.read_text().splitlines() if ln.startswith("Sig")] if status.exists() else []
    proc.send_signal(signal.SIGUSR1)
    time.sleep(2.0)
    proc.kill()
    stdout, stderr = proc.communicate()
    return "\n".join(masks) + "\n" + stderr


def test_ctrl_c_stops_a_single_long_run(tmp_path, child_env):
    proc = subprocess.Popen([sys.executable, "-c", SINGLE_RUN.format(long=LONG)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env, cwd=tmp_path)
    try:
        assert proc.stdout.readline().strip() == "RUNNING", proc.communicate()
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=EXIT_S)
        except subprocess.TimeoutExpired:
            pytest.fail("the run went on after SIGINT:\n" + _stuck_child_report(proc))
    finally:
        proc.kill()
    # an uncaught KeyboardInterrupt: Python ends by SIGINT, with the traceback from inside the kernel
    assert proc.returncode == -signal.SIGINT, stderr
    assert "FINISHED" not in stdout
    assert stderr.rstrip().endswith("KeyboardInterrupt") and "_run_stoppably" in stderr, stderr


def test_a_signal_handler_that_returns_lets_the_run_go_on_with_the_same_bits():
    """The loop pauses for the signal, runs Python's handler, and continues where it stopped."""
    model = mcsyn.SynapseModel(geometry=mcsyn.Geometry(outside="closed"), releases=[mcsyn.Release(molecules=500)],
                               timing=mcsyn.Timing(duration_ms=5.0, sample_interval_us=100.0))
    args = kernel_args(model)
    plain = _engine.simulate(*args)
    seen_in_run = []
    old = signal.signal(signal.SIGTERM, lambda signum, frame: seen_in_run.append(_engine.runs_in_progress()))
    done = threading.Event()

    def keep_signalling():     # until a signal has reached the run (or it ended: then the test fails)
        wait_for(lambda: _engine.runs_in_progress() or done.is_set(), "the run to start")
        while not seen_in_run and not done.is_set():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.002)
    sender = threading.Thread(target=keep_signalling)
    try:
        sender.start()
        paused = _engine.simulate(*args)
    finally:
        done.set()
        sender.join()
        signal.signal(signal.SIGTERM, old)
    assert 1 in seen_in_run
    for key in ("series", "states"):
        assert np.array_equal(paused[key], plain[key])


def test_a_stop_hold_ends_runs_in_other_threads_and_runs_started_under_it():
    args = kernel_args(long_model())
    ended = []

    def worker():
        try:
            _engine.simulate(*args)
        except RunStopped as exc:
            ended.append(exc)
    t = threading.Thread(target=worker)
    t.start()
    wait_for(lambda: _engine.runs_in_progress() == 1, "the worker's run to start")
    with kernel_runs_stopped():
        t.join(timeout=EXIT_S)
        assert not t.is_alive() and len(ended) == 1 and isinstance(ended[0], KeyboardInterrupt)
        with pytest.raises(RunStopped):
            _engine.simulate(*args)         # started under the hold: stops before its first step
    assert _engine.runs_in_progress() == 0
    small = kernel_args(mcsyn.SynapseModel(timing=mcsyn.Timing(duration_ms=0.1)))
    _engine.simulate(*small)                # released: runs go through again
    with pytest.raises(RuntimeError, match="without a stop_runs"):
        _engine.release_runs()


def test_ctrl_c_in_the_main_thread_stops_the_other_threads_of_run():
    """mcsyn.run on threads: the main thread waits in the pool, gets KeyboardInterrupt, and the
    worker threads' runs end instead of running for hours."""
    def interrupt_once_both_run():
        wait_for(lambda: _engine.runs_in_progress() == 2, "both runs to start")
        os.kill(os.getpid(), signal.SIGINT)
    sender = threading.Thread(target=interrupt_once_both_run, daemon=True)
    sender.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        mcsyn.run(long_model(), n_runs=2, workers=2, max_steps=None)
    assert time.monotonic() - started < 300 and _engine.runs_in_progress() == 0


ENSEMBLE_CLI = textwrap.dedent("""
    import os, signal, sys
    import mcsyn
    from mcsyn import cli
    from mcsyn.ensemble import backends
    from mcsyn.simulate import simulate_columns
    print("SIGINT", "ignored" if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else "handled", os.getpid(),
          flush=True)
    real, long_cm = backends._simulate_run, mcsyn.compile_model({long})

    def long_from_run_4(cm, seed, run):
        if run >= 4:                    # hours in the kernel: only a stop ends it
            sys.stdout.write(f"LONG {{run}}\\n")     # one write: the two workers' lines must not mix
            sys.stdout.flush()
            simulate_columns(long_cm, seed, run)
        return real(cm, seed, run)
    backends._simulate_run = long_from_run_4
    sys.exit(cli.main(["run", "glutamatergic", "--runs", "12", "--seed", "5", "--workers", "2", "--batch-size", "2",
                       "--set", "timing.duration_ms=0.5", "--no-progress", "--out", {out!r}]))
""")


def test_background_cli_ensemble_stops_on_sigint_and_keeps_its_finished_runs(tmp_path, child_env):
    """`mcsyn run … &` from a script: the shell starts the job with SIGINT ignored; kill -INT must
    still stop it, with the 4 runs that finished saved and the 2 running (hours long) stopped."""
    out = tmp_path / "res"
    script = ENSEMBLE_CLI.format(long=LONG, out=str(out))
    # sh starts an asynchronous command with SIGINT ignored, as it does for `cmd &` in a script
    proc = subprocess.Popen(["sh", "-c", '"$@" & wait $!', "sh", sys.executable, "-c", script],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env, cwd=tmp_path)
    pid = None
    try:
        first = proc.stdout.readline().split()
        assert first[:2] == ["SIGINT", "ignored"], (first, proc.communicate())
        pid = int(first[2])
        # both workers in their long runs (so runs 0-3 have finished), and runs 0-3 on disk: a
        # signal landing while the main thread saves a batch would be a different test
        assert [proc.stdout.readline().split()[0] for _ in range(2)] == ["LONG", "LONG"]
        wait_for(lambda: len(list((out / "runs").glob("*.parquet"))) == 2, "two saved batches")
        os.kill(pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=EXIT_S)
    finally:
        if pid is not None and proc.poll() is None:
            os.kill(pid, signal.SIGKILL)        # the job itself: killing sh would leave it running
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "4 of 12 runs are saved" in stderr, stderr
    rows = pd.concat([pd.read_parquet(p) for p in (out / "runs").glob("*.parquet")])
    assert sorted(rows["run"]) == [0, 1, 2, 3]
    # resume finishes it, equal to an uninterrupted ensemble
    resumed = cli.main(["run", "glutamatergic", "--runs", "12", "--seed", "5", "--workers", "2",
                              "--set", "timing.duration_ms=0.5", "--no-progress", "--out", str(out), "--resume"])
    fresh = cli.main(["run", "glutamatergic", "--runs", "12", "--seed", "5", "--workers", "1",
                            "--set", "timing.duration_ms=0.5", "--no-progress", "--out", str(tmp_path / "fresh")])
    assert resumed == fresh == 0
    a, b = storage.load_result(out), storage.load_result(tmp_path / "fresh")
    pd.testing.assert_frame_equal(a.metrics, b.metrics, check_exact=True)
