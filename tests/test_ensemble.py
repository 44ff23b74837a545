"""Ensembles: seeds, reproducibility across workers/backends/clusters, streaming statistics,
failures, interruptions and resume.

Reproducibility is asserted as exact equality of the DataFrames (``check_exact=True``): every run
is computed from its own SeedSequence and the running moments are accumulated in run order, so
nothing may differ in any bit.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mcsyn
from mcsyn import ensemble as E
from mcsyn import storage



def small_model(molecules=200, count=10, duration_ms=0.3, name="small"):
    return mcsyn.SynapseModel(geometry=mcsyn.Geometry(outside="band"), timing=mcsyn.Timing(duration_ms=duration_ms),
                              releases=[mcsyn.Release(molecules=molecules)],
                              sites=[mcsyn.SiteGroup(mcsyn.ampa_jonas1993(), "postsynaptic", count=count,
                                                     name="AMPA")],
                              name=name)


def two_conditions():
    return E.make_conditions(lambda drugs, molecules=200: small_model(molecules), params={"molecules": [200, 400]})


def assert_same(a, b):
    for name, frame in a.tables().items():
        pd.testing.assert_frame_equal(frame, b.tables()[name], check_exact=True, obj=name)


@pytest.fixture(scope="module")
def reference():
    """Two conditions × 24 runs, one thread: the result every other way of running must equal."""
    return E.run_ensemble(two_conditions(), n_runs=24, seed=11, workers=1)


# ---------------------------------------------------------------------------------------- seeds

def test_each_run_records_its_seed_and_reproduces_alone(reference):
    m = reference.metrics
    assert list(m.columns[:4]) == ["condition", "molecules", "run", "seed"]
    assert len(m) == 48 and m.groupby("condition")["run"].apply(list).map(lambda r: r == list(range(24))).all()
    conds = two_conditions()
    for row in m.iloc[[0, 7, 30, 47]].itertuples():
        model = conds[0 if row.condition == "molecules=200" else 1].model
        alone = mcsyn.run_one(model, seed=int(row.seed), run_index=int(row.run)).metrics
        for key, value in alone.items():
            got = getattr(m.loc[row.Index], "loc")[key]
            assert (np.isnan(value) and np.isnan(got)) or got == value, key


def test_condition_seeds_depend_on_the_name_only():
    assert E.condition_seed(5, "control") == E.condition_seed(5, "control")
    assert E.condition_seed(5, "control") != E.condition_seed(6, "control")
    assert E.condition_seed(5, "control") != E.condition_seed(5, "drug")
    assert 0 <= E.condition_seed(2 ** 40, "x") < 2 ** 63
    # adding a condition to the grid leaves the others' runs unchanged
    one = E.run_ensemble(two_conditions()[:1], n_runs=5, seed=11, workers=1)
    both = E.run_ensemble(two_conditions(), n_runs=5, seed=11, workers=1)
    pd.testing.assert_frame_equal(one.metrics, both.metrics[both.metrics.condition == "molecules=200"],
                                  check_exact=True)


# ---------------------------------------------------------------------------------------- backends

def test_identical_whatever_the_workers_and_batch_size(reference):
    r = E.run_ensemble(two_conditions(), n_runs=24, seed=11, workers=2, batch_size=5)
    assert_same(reference, r)
    assert r.metadata["sessions"][-1]["workers"] == 2


def test_identical_with_processes(reference):
    r = E.run_ensemble(two_conditions(), n_runs=24, seed=11, workers=2, backend="processes", batch_size=6)
    assert_same(reference, r)
    assert r.metadata["sessions"][-1]["backend"] == "processes"


def test_identical_on_a_dask_local_cluster(reference):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cl:
        with distributed.Client(cl) as client:
            r = E.run_ensemble(two_conditions(), n_runs=24, seed=11, scheduler=client, batch_size=4)
            # a scheduler address works too (the ensemble opens and closes its own client)
            r2 = E.run_ensemble(two_conditions(), n_runs=24, seed=11, scheduler=cl.scheduler_address)
    assert_same(reference, r)
    assert_same(reference, r2)
    assert r.metadata["sessions"][-1]["backend"] == "dask"


def test_killing_a_dask_worker_mid_ensemble_loses_nothing(reference, tmp_path):
    """SIGKILL a worker process while it runs a task; Dask re-runs the lost task elsewhere and the
    result is identical.

    The kill must land while the task runs, whatever the load: every worker's run 5 of the first
    condition to reach it blocks (the first attempt only, claimed through an O_EXCL lock file) and
    writes its pid; a thread kills that pid. Timing the kill from the progress callback raced with
    the task finishing first under load."""
    distributed = pytest.importorskip("distributed")
    lock, pid_file = tmp_path / "blocked.lock", tmp_path / "blocked.pid"

    def block_first_attempt_of_run_5(lock_path, pid_path):
        from mcsyn.ensemble import backends
        real = backends._simulate_run

        def blocking(cm, seed, run):
            if run == 5:
                try:
                    os.close(os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    pass
                else:
                    Path(pid_path + ".tmp").write_text(str(os.getpid()))
                    os.replace(pid_path + ".tmp", pid_path)
                    time.sleep(3600)    # the test kills this process here
            return real(cm, seed, run)
        backends._simulate_run = blocking

    killed = []

    def kill_the_blocked_worker():
        for _ in range(60_000):                     # 10 min at most: a hang shows as a failure
            if pid_file.exists():
                pid = int(pid_file.read_text())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.01)

    import threading
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cl:
        with distributed.Client(cl, timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)
            client.run(block_first_attempt_of_run_5, str(lock), str(pid_file))
            killer = threading.Thread(target=kill_the_blocked_worker, daemon=True)
            killer.start()
            r = E.run_ensemble(two_conditions(), n_runs=24, seed=11, scheduler=client, batch_size=2)
            killer.join(timeout=1)
            lost = [t for t in cl.scheduler.transition_log if t.start == "processing" and t.finish == "released"]
    assert killed and lost
    assert_same(reference, r)


def test_bad_settings_are_rejected():
    m = small_model()
    for kwargs, match in [({"n_runs": 0}, "n_runs"), ({"seed": -1}, "seed"), ({"workers": 0}, "workers"),
                          ({"backend": "mpi"}, "backend"), ({"batch_size": 0}, "batch_size"),
                          ({"errors": "ignore"}, "errors"), ({"quantiles": (0.5, 1.5)}, "quantile"),
                          ({"backend": "dask"}, "scheduler"), ({"resume": True}, "out"),
                          ({"observables": ["nope"]}, "observable"), ({"time_points": 1}, "time_points")]:
        with pytest.raises(ValueError, match=match):
            E.run_ensemble(m, **{"n_runs": 2, **kwargs})


# ---------------------------------------------------------------------------------------- statistics

def test_timecourse_statistics_equal_direct_computation_from_traces(reference):
    tc = reference.timecourse
    assert list(tc.columns[:4]) == ["condition", "molecules", "observable", "time_ms"]
    for cond in reference.condition_names:
        for obs in ("free", "AMPA:bound"):
            x = reference.traces(cond, obs)
            assert x.shape == (24, 31)
            d = tc[(tc.condition == cond) & (tc.observable == obs)]
            np.testing.assert_allclose(d["time_ms"], x.columns.to_numpy())
            np.testing.assert_allclose(d["mean"], x.mean(axis=0), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(d["sd"], x.std(axis=0, ddof=1), rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(d["sem"], x.std(axis=0, ddof=1) / np.sqrt(24), rtol=1e-9, atol=1e-12)
            np.testing.assert_array_equal(d["median"], np.quantile(x, 0.5, axis=0))
            np.testing.assert_array_equal(d["q5"], np.quantile(x, 0.05, axis=0))
            np.testing.assert_array_equal(d["q95"], np.quantile(x, 0.95, axis=0))
            assert (d["n"] == 24).all()


def test_mean_free_count_agrees_with_the_run_metric(reference):
    """The time-course mean at the last sample is the mean of the per-run end counts."""
    tc, m = reference.timecourse, reference.metrics
    for cond in reference.condition_names:
        last = tc[(tc.condition == cond) & (tc.observable == "free")].iloc[-1]
        assert last["mean"] == pytest.approx(m[m.condition == cond]["free_end"].mean(), rel=1e-12)


def test_large_ensembles_stream_traces_through_a_disk_store(reference, monkeypatch):
    monkeypatch.setattr(E.storage, "IN_MEMORY_TRACE_LIMIT_BYTES", 1000)
    r = E.run_ensemble(two_conditions(), n_runs=24, seed=11, workers=2)
    assert_same(reference, r)
    assert r._tmpdir is not None and Path(r._tmpdir.name).is_dir()
    assert isinstance(r._traces[0][0], np.memmap)
    pd.testing.assert_frame_equal(r.traces("molecules=400", "free"), reference.traces("molecules=400", "free"))


def test_without_traces_only_moments_are_kept(reference):
    r = E.run_ensemble(two_conditions(), n_runs=24, seed=11, workers=2, keep_traces=False)
    pd.testing.assert_frame_equal(r.metrics, reference.metrics, check_exact=True)
    cols = ["mean", "sd", "sem"]
    pd.testing.assert_frame_equal(r.timecourse[cols], reference.timecourse[cols], check_exact=True)
    assert r.timecourse["median"].isna().all()
    with pytest.raises(ValueError, match="no traces"):
        r.traces(r.condition_names[0], "free")


def test_time_grid_is_strided_to_time_points():
    r = E.run_ensemble(small_model(), n_runs=3, seed=1, workers=1, time_points=11, observables=["free", "bound"])
    times = r.timecourse[r.timecourse.observable == "free"]["time_ms"].to_numpy()
    np.testing.assert_allclose(times, np.arange(0, 0.31, 0.03))
    assert set(r.timecourse.observable) == {"free", "bound"}
    assert E.time_indices(31, None).tolist() == list(range(31))


def test_summary_and_compare_shortcuts(reference):
    s = reference.summary()
    assert set(s.condition) == set(reference.condition_names)
    c = reference.compare()          # no condition named 'control': the first one is the control
    assert set(c.condition) == {"molecules=400"}
    released = c[c.metric == "released"].iloc[0]
    assert released["fold_change"] == 2.0


# ---------------------------------------------------------------------------------------- conditions

def test_condition_grid_names_labels_and_models():
    def build(drugs, scale=1.0):
        occ = drugs.get("blocker", 0.0) / (drugs.get("blocker", 0.0) + 1e-7)
        s = mcsyn.with_blocked_state(mcsyn.ampa_jonas1993(), 0.0, 0.0)
        return mcsyn.SynapseModel(sites=[mcsyn.SiteGroup(s, "postsynaptic", count=int(10 * scale), name="AMPA",
                                                         initial_state_fractions={"blocked": occ})],
                                  timing=mcsyn.Timing(duration_ms=0.2))

    conds = E.make_conditions(build, treatments=E.dose_series("blocker", ["10 nM", 1e-7]),
                              params={"scale": [1.0, 2.0], "geometry.cleft_height_um": [0.02]})
    assert [c.name for c in conds] == [
        "control, scale=1, geometry.cleft_height_um=0.02", "control, scale=2, geometry.cleft_height_um=0.02",
        "blocker 10 nM, scale=1, geometry.cleft_height_um=0.02",
        "blocker 10 nM, scale=2, geometry.cleft_height_um=0.02",
        "blocker 100 nM, scale=1, geometry.cleft_height_um=0.02",
        "blocker 100 nM, scale=2, geometry.cleft_height_um=0.02"]
    assert conds[0].labels == {"drug": "control", "dose_M": 0.0, "scale": 1.0, "geometry.cleft_height_um": 0.02}
    assert conds[5].labels["dose_M"] == pytest.approx(1e-7)
    assert conds[5].model.sites[0].count == 20
    assert conds[4].model.sites[0].initial_state_fractions["blocked"] == pytest.approx(0.5)
    r = E.run_ensemble(conds, n_runs=2, seed=0, workers=1)
    assert list(r.metrics.columns[:6]) == ["condition", "drug", "dose_M", "scale", "geometry.cleft_height_um", "run"]


def test_set_parameter_paths():
    m = small_model()
    E.set_parameter(m, "geometry.cleft_height_um", 0.03)
    E.set_parameter(m, "releases[0].molecules", 123)
    E.set_parameter(m, "sites[AMPA].count", 4)
    assert (m.geometry.cleft_height_um, m.releases[0].molecules, m.sites[0].count) == (0.03, 123, 4)
    with pytest.raises(mcsyn.ModelError, match="no field"):
        E.set_parameter(m, "geometry.cleft_width_um", 1)
    with pytest.raises(mcsyn.ModelError, match="no item"):
        E.set_parameter(m, "sites[NMDA].count", 1)


def test_duplicate_condition_names_and_drugs_on_bare_models_are_errors():
    with pytest.raises(ValueError, match="unique"):
        E.run_ensemble([small_model(name="a"), small_model(name="a")], n_runs=1)
    with pytest.raises(ValueError, match="bare SynapseModel"):
        E.make_conditions(small_model(), treatments=[{"fluoxetine": 1e-9}])


def test_preset_conditions_with_an_occupancy():
    presets = pytest.importorskip("mcsyn.presets")
    conds = E.make_conditions("serotonergic", treatments=[{}, {"escitalopram": "80%SERT"}],
                              **{"timing.duration_ms": 10, "geometry.domain_radius_um": 3.0})
    assert [c.name for c in conds] == ["control", "escitalopram 4.4 nM"]
    sert = {g.label: g for g in conds[1].model.sites}["SERT"]
    assert sum(sert.initial_state_fractions.values()) == pytest.approx(0.8)
    assert conds[1].model.config is not None and presets is not None
    r = E.run_ensemble(conds, n_runs=3, seed=2, workers=2)
    assert r.metrics.groupby("condition", sort=False).size().tolist() == [3, 3]
    assert r.control == "control"


# ---------------------------------------------------------------------------------------- failures

def test_a_failing_run_is_reported_with_its_seed_and_the_others_kept(reference, monkeypatch, fail_runs, tmp_path):
    fail_runs({3, 17})
    r = E.run_ensemble(two_conditions(), n_runs=24, seed=11, workers=2, errors="keep")
    f = r.failures
    assert len(f) == 4 and f["run"].tolist() == [3, 17, 3, 17]
    assert f["error"].str.contains("injected failure").all()
    assert (f["seed"].to_numpy() == np.repeat(reference.conditions["seed"].to_numpy(), 2)).all()
    keep = ~reference.metrics["run"].isin([3, 17])
    pd.testing.assert_frame_equal(r.metrics, reference.metrics[keep].reset_index(drop=True), check_exact=True)
    assert r.conditions["n_failed"].tolist() == [2, 2]
    assert (r.timecourse["n"] == 22).all()

    out = tmp_path / "res"
    with pytest.raises(E.RunFailures, match=r"(?s)run 3 \(seed \d+\).*reproduce: mcsyn.run_one") as info:
        E.run_ensemble(two_conditions(), n_runs=24, seed=11, workers=2, out=out)
    assert len(info.value.result.metrics) == 44
    assert storage.ResultDir(out).read_metadata()["status"] == "failed_runs"
    # the cause is fixed: resume runs only the 4 failed runs and gives the clean result
    monkeypatch.undo()
    calls = []
    real = E.backends._simulate_run
    monkeypatch.setattr(E.backends, "_simulate_run", lambda cm, seed, run: calls.append(run) or real(cm, seed, run))
    r2 = E.run_ensemble(two_conditions(), n_runs=24, seed=11, workers=2, out=out, resume=True)
    assert sorted(calls) == [3, 3, 17, 17]
    assert_same(reference, r2)


def test_an_ensemble_whose_first_runs_all_fail_stops_early(fail_runs, tmp_path):
    fail_runs(set(range(1000)))
    with pytest.raises(E.RunFailures, match="stopped early") as info:
        E.run_ensemble(small_model(), n_runs=1000, seed=1, workers=2, batch_size=2, out=tmp_path / "r")
    assert info.value.stopped_early
    assert E.FAIL_FAST_RUNS <= len(info.value.failures) < 100
    assert storage.ResultDir(tmp_path / "r").read_metadata()["status"] == "stopped_early"
    with pytest.raises(E.RunFailures, match="3 run"):        # a small ensemble runs to the end
        E.run_ensemble(small_model(), n_runs=3, seed=1, workers=1)


# ---------------------------------------------------------------------------------------- interruptions

@pytest.mark.parametrize("stop_after", [3, 7])   # 7 batches of 4: the first condition is complete
def test_interrupted_ensemble_keeps_finished_runs_and_resume_completes_identically(reference, tmp_path, stop_after):
    out = tmp_path / "res"
    seen = []

    def ctrl_c(done, total):
        seen.append(done)
        if len(seen) == stop_after:
            raise KeyboardInterrupt

    with pytest.raises(E.EnsembleInterrupted) as info:
        E.run_ensemble(two_conditions(), n_runs=24, seed=11, workers=1, batch_size=4, out=out, callback=ctrl_c)
    assert info.value.n_done >= 4 * stop_after and info.value.n_total == 48
    chunks = sorted((out / "runs").glob("*.parquet"))
    assert len(chunks) >= stop_after
    assert storage.ResultDir(out).read_metadata()["status"] == "interrupted"
    with pytest.raises(ValueError, match="unfinished"):
        storage.load_result(out)
    done_before = sum(len(pd.read_parquet(p)) for p in chunks)
    counted = []
    r = E.run_ensemble(two_conditions(), n_runs=24, seed=11, workers=1, out=out, resume=True,
                       callback=lambda d, t: counted.append(d))
    assert counted[0] > done_before and counted[-1] == 48
    assert_same(reference, r)
    assert not (out / "runs").exists()
    assert len(r.metadata["sessions"]) == 2
    # resuming a finished result returns it
    assert_same(reference, E.run_ensemble(two_conditions(), n_runs=24, seed=11, out=out, resume=True))


def test_resume_refuses_different_settings(tmp_path):
    out = tmp_path / "res"
    E.run_ensemble(small_model(), n_runs=3, seed=1, workers=1, out=out)
    with pytest.raises(ValueError, match="seed"):
        E.run_ensemble(small_model(), n_runs=3, seed=2, out=out, resume=True)
    with pytest.raises(ValueError, match="conditions"):
        E.run_ensemble(small_model(molecules=300), n_runs=3, seed=1, out=out, resume=True)


def test_existing_output_is_not_overwritten_unless_asked(tmp_path):
    out = tmp_path / "res"
    a = E.run_ensemble(small_model(), n_runs=2, seed=1, workers=1, out=out)
    with pytest.raises(FileExistsError, match="exists"):
        E.run_ensemble(small_model(), n_runs=2, seed=2, out=out)
    b = E.run_ensemble(small_model(), n_runs=2, seed=2, out=out, overwrite=True)
    assert not a.metrics["seed"].equals(b.metrics["seed"])
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not an mcsyn result"):
        E.run_ensemble(small_model(), n_runs=2, out=other, overwrite=True)
    assert (other / "thesis.txt").read_text() == "precious"


SIGTERM_SCRIPT = textwrap.dedent("""
    import sys, time
    import mcsyn
    from mcsyn import ensemble as E
    from mcsyn.ensemble import backends
    sys.path.insert(0, {tests!r})
    from test_ensemble import two_conditions
    real = backends._simulate_run

    def slow_after_3_batches(cm, seed, run):
        # from run 12 on a run takes 0.2 s (~60 s for the rest), so the SIGTERM the test sends after
        # 3 saved batches lands mid-ensemble however loaded the machine; before, the child could
        # finish all 300 runs (~2 s) first
        if run >= 12:
            time.sleep(0.2)
        return real(cm, seed, run)
    backends._simulate_run = slow_after_3_batches
    try:
        E.run_ensemble(two_conditions(), n_runs=150, seed=11, workers=1, batch_size=4, out={out!r})
    except E.EnsembleInterrupted as exc:
        print("INTERRUPTED", exc.n_done, flush=True)
        sys.exit(3)
""")


def test_sigterm_keeps_finished_runs_and_resume_equals_uninterrupted(tmp_path, child_env):
    out = tmp_path / "res"
    script = SIGTERM_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out))
    env = child_env
    # a neutral working directory: "python -c" puts it first on sys.path (see test_cli)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((out / "runs").glob("*.parquet"))) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, stderr
    n_done = int(stdout.split()[-1])
    assert 12 <= n_done < 300
    rows = sum(len(pd.read_parquet(p)) for p in (out / "runs").glob("*.parquet"))
    assert rows == n_done
    resumed = E.run_ensemble(two_conditions(), n_runs=150, seed=11, workers=2, out=out, resume=True)
    fresh = E.run_ensemble(two_conditions(), n_runs=150, seed=11, workers=2)
    assert_same(fresh, resumed)


def test_progress_bar_stays_off_when_not_a_terminal(capsys):
    E.run_ensemble(small_model(), n_runs=2, seed=1, workers=1)
    assert capsys.readouterr().err == ""
