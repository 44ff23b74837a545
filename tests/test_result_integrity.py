"""Saved results: nothing silently wrong, nothing written outside the result directory.

Every test damages a file on purpose and asserts that loading refuses it naming the file, or that a
resume recomputes what it held (saying so) and ends bit-identical to an uninterrupted ensemble.
"""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mcsyn import cli, storage
from mcsyn import ensemble as E
from mcsyn.ensemble import backends, integrity
from mcsyn.ensemble.integrity import ResultDamaged, ResultRepaired, ResultWriteError, UnsafeResultEntry
from test_ensemble import assert_same, two_conditions

RUNS, SEED = 24, 11


@pytest.fixture(scope="module")
def reference():
    return E.run_ensemble(two_conditions(), n_runs=RUNS, seed=SEED, workers=1)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A finished result and an interrupted one (8 batches of 4 saved: condition 0 complete,
    runs 0-7 of condition 1, and the batch in flight), copied by each test before it damages them."""
    base = tmp_path_factory.mktemp("pristine")
    E.run_ensemble(two_conditions(), n_runs=RUNS, seed=SEED, workers=1, batch_size=4, out=base / "finished")
    seen = []

    def stop(done, total):
        seen.append(done)
        if len(seen) == 8:
            raise KeyboardInterrupt

    with pytest.raises(E.EnsembleInterrupted):
        E.run_ensemble(two_conditions(), n_runs=RUNS, seed=SEED, workers=1, batch_size=4, out=base / "interrupted",
                       callback=stop)
    return base


def copy_of(pristine, tmp_path, which):
    out = tmp_path / which
    shutil.copytree(pristine / which, out)
    return out


def flip_byte(path: Path, offset: int):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def trace_offset(path: Path, observable: int, run: int, time_index: int) -> int:
    arr = np.load(path, mmap_mode="r")
    return arr.offset + 4 * ((observable * arr.shape[1] + run) * arr.shape[2] + time_index)


def resume(out, **kwargs):
    return E.run_ensemble(two_conditions(), n_runs=RUNS, seed=SEED, workers=1, out=out, resume=True, **kwargs)


@pytest.fixture
def recorded_runs(monkeypatch):
    """The (condition seed, run) of every run computed."""
    calls, real = [], backends._simulate_run
    monkeypatch.setattr(backends, "_simulate_run", lambda cm, seed, run: calls.append((seed, run)) or real(cm, seed, run))
    return calls


# ---------------------------------------------------------------------------------------- loading

def _damage_finished(out: Path, case: str) -> str:
    """Damage one file of a finished result the way ``case`` says; the file's name."""
    if case == "metadata.json":
        meta = out / "metadata.json"
        meta.write_text(meta.read_text().replace('"seed": 11', '"seed": 13', 1))
    elif case == "config.toml":
        cfg = out / "config.toml"
        cfg.write_text(cfg.read_text().replace("molecules = 400", "molecules = 500", 1))
    elif case == "metrics.parquet":
        flip_byte(out / case, (out / case).stat().st_size // 2)
    elif case == "timecourse.parquet":
        os.truncate(out / case, (out / case).stat().st_size - 100)
    elif case == "failures.parquet":
        (out / case).unlink()
    elif case == "conditions.parquet":
        with open(out / case, "ab") as fh:
            fh.write(b"\0")
    elif case == "traces/c0001.npy":
        flip_byte(out / case, trace_offset(out / case, 0, 20, 5))
    elif case == "traces/c0000.npy":
        os.truncate(out / case, (out / case).stat().st_size // 2)
    return case


CASES = ["metadata.json", "config.toml", "metrics.parquet", "timecourse.parquet", "failures.parquet",
         "conditions.parquet", "traces/c0001.npy", "traces/c0000.npy"]


@pytest.mark.parametrize("case", CASES)
def test_loading_a_damaged_result_names_the_file(pristine, tmp_path, case):
    out = copy_of(pristine, tmp_path, "finished")
    storage.load_result(out)                     # intact: loads
    name = _damage_finished(out, case)
    with pytest.raises(ResultDamaged, match=name.replace(".", r"\.")) as info:
        storage.load_result(out)
    assert info.value.entry == name and isinstance(info.value, ValueError)


def test_a_bit_flip_in_a_trace_file_would_load_silently_without_the_check(pristine, tmp_path, reference):
    out = copy_of(pristine, tmp_path, "finished")
    _damage_finished(out, "traces/c0001.npy")
    unchecked = storage.load_result(out, verify=False)
    assert not unchecked.traces("molecules=400", "free").equals(reference.traces("molecules=400", "free"))
    with pytest.raises(ResultDamaged, match="traces/c0001.npy"):
        storage.load_result(out)


@pytest.mark.parametrize("case", ["metrics.parquet", "traces/c0001.npy", "traces/c0000.npy", "timecourse.parquet"])
def test_resume_repairs_a_damaged_finished_result(pristine, tmp_path, reference, case, recorded_runs):
    out = copy_of(pristine, tmp_path, "finished")
    name = _damage_finished(out, case)
    with pytest.warns(ResultRepaired, match=name.replace(".", r"\.")):
        repaired = resume(out)
    assert_same(reference, repaired)
    assert_same(reference, storage.load_result(out))
    expected = {"metrics.parquet": 48, "traces/c0001.npy": 24, "traces/c0000.npy": 24, "timecourse.parquet": 0}
    assert len(recorded_runs) == expected[case]


# ---------------------------------------------------------------------------------------- resuming

def _damage_interrupted(out: Path, case: str):
    runs = out / "runs"
    if case == "chunk bit flip":
        flip_byte(runs / "c0000-r0000004.parquet", 200)
        return "runs/c0000-r0000004.parquet", {(0, r) for r in range(4, 8)}
    if case == "chunk truncated":
        os.truncate(runs / "c0001-r0000004.parquet", 300)
        return "runs/c0001-r0000004.parquet", {(1, r) for r in range(4, 8)}
    if case == "trace bit flip":
        flip_byte(out / "traces/c0000.npy", trace_offset(out / "traces/c0000.npy", 1, 5, 3))
        return r"traces/c0000\.npy: the traces of run 5", {(0, r) for r in range(4, 8)}
    if case == "trace truncated":
        os.truncate(out / "traces/c0001.npy", (out / "traces/c0001.npy").stat().st_size // 3)
        return "traces/c0001.npy", "every saved run of condition 1"
    if case == "stray chunk":     # a copy of a batch under another batch's name: 4 rows too many
        shutil.copy(runs / "c0000-r0000000.parquet", runs / "c0001-r0000016.parquet")
        return "runs/c0001-r0000016.parquet: not recorded", set()
    if case == "duplicate chunk":  # a second journal line for the same runs
        shutil.copy(runs / "c0000-r0000000.parquet", runs / "c0000-r0000001.parquet")
        entries, _ = integrity.read_journal(runs / "journal.jsonl")
        with open(runs / "journal.jsonl", "ab") as fh:
            fh.write(integrity.journal_line({**entries["c0000-r0000000.parquet"], "chunk": "c0000-r0000001.parquet"}))
        return "holds runs that another batch holds too", {(0, r) for r in range(4)}
    if case == "journal line damaged":
        lines = (runs / "journal.jsonl").read_bytes().split(b"\n")
        lines[2] = lines[2].replace(b'"runs":[8', b'"runs":[9', 1)
        (runs / "journal.jsonl").write_bytes(b"\n".join(lines))
        return r"journal\.jsonl: 1 damaged line", {(0, r) for r in range(8, 12)}
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["chunk bit flip", "chunk truncated", "trace bit flip", "trace truncated",
                                  "stray chunk", "duplicate chunk", "journal line damaged"])
def test_resume_recomputes_the_runs_of_damaged_files(pristine, tmp_path, reference, case, recorded_runs):
    out = copy_of(pristine, tmp_path, "interrupted")
    saved = {(c, int(r)) for c, frames in storage.ResultDir(out).read_chunks().items() for f in frames for r in f["run"]}
    says, damaged = _damage_interrupted(out, case)
    if damaged == "every saved run of condition 1":
        damaged = {k for k in saved if k[0] == 1}
    with pytest.warns(ResultRepaired, match=says.replace("/", "/")):
        resumed = resume(out)
    assert_same(reference, resumed)
    seeds = reference.conditions["seed"].tolist()
    computed = {(seeds.index(s), r) for s, r in recorded_runs}
    untouched = {(c, r) for c in (0, 1) for r in range(RUNS)} - saved    # not run before the interruption
    assert computed == damaged | untouched
    assert len(resumed.metrics) == 2 * RUNS


def test_without_the_journal_a_stray_chunk_adds_rows(pristine, tmp_path):
    """What the journal prevents: the metrics files alone (as read before) count the stray copy."""
    out = copy_of(pristine, tmp_path, "interrupted")
    _damage_interrupted(out, "stray chunk")
    legacy = storage.ResultDir(out).legacy_chunks()
    saved = sum(len(f) for frames in storage.ResultDir(out).read_chunks().values() for f in frames)
    assert sum(len(f) for frames in legacy.values() for f in frames) == saved + 4


# ---------------------------------------------------------------------------------------- more runs

def test_resume_with_more_runs_extends_a_finished_ensemble(tmp_path, reference, recorded_runs):
    out = tmp_path / "r"
    E.run_ensemble(two_conditions(), n_runs=16, seed=SEED, workers=2, out=out)
    recorded_runs.clear()
    extended = resume(out)
    assert sorted(r for _, r in recorded_runs) == sorted(list(range(16, 24)) * 2)
    assert_same(reference, extended)
    assert_same(reference, storage.load_result(out))
    assert storage.ResultDir(out).read_metadata()["n_runs"] == RUNS
    with pytest.raises(ValueError, match=r"holds 24 runs per condition.*n_runs >= 24"):
        E.run_ensemble(two_conditions(), n_runs=20, seed=SEED, out=out, resume=True)


def test_an_interrupted_extension_resumes_identically(tmp_path, reference):
    out = tmp_path / "r"
    E.run_ensemble(two_conditions(), n_runs=8, seed=SEED, workers=1, out=out)

    def stop(done, total):
        if done >= 20:
            raise KeyboardInterrupt

    with pytest.raises(E.EnsembleInterrupted):
        E.run_ensemble(two_conditions(), n_runs=16, seed=SEED, workers=1, batch_size=2, out=out, resume=True,
                       callback=stop)
    assert_same(reference, resume(out))


def test_cli_run_with_more_runs_and_resume_extends(tmp_path, capsys):
    small = ["--set", "timing.duration_ms=2", "--set", "geometry.domain_radius_um=3", "--no-progress"]
    assert cli.main(["run", "cholinergic", "--runs", "4", "--seed", "2", "--out", str(tmp_path / "a"), *small]) == 0
    assert cli.main(["run", "cholinergic", "--runs", "6", "--seed", "2", "--out", str(tmp_path / "a"), "--resume",
                     *small]) == 0
    assert cli.main(["run", "cholinergic", "--runs", "6", "--seed", "2", "--out", str(tmp_path / "b"), *small]) == 0
    assert storage.load_result(tmp_path / "a") == storage.load_result(tmp_path / "b")
    with pytest.raises(SystemExit):
        cli.main(["run", "cholinergic", "--runs", "5", "--seed", "2", "--out", str(tmp_path / "a"), "--resume", *small])
    assert "holds 6 runs per condition" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- full disk, permissions

def test_trace_files_are_allocated_in_full(tmp_path):
    """A sparse trace file is what turned a full disk into SIGBUS: every block exists beforehand."""
    rd = storage.ResultDir(tmp_path / "r").create()
    arr = rd.open_traces(0, (3, 2000, 501), create=True)
    assert arr.shape == (3, 2000, 501) and not arr.any()
    stat = rd.trace_path(0).stat()
    assert stat.st_blocks * 512 >= stat.st_size


def test_a_disk_too_small_for_the_traces_is_refused_before_any_run(tmp_path, monkeypatch, recorded_runs):
    # a tiny tmpfs needs root to mount; what it does to posix_fallocate is what is simulated here
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "posix_fallocate", full)
    out = tmp_path / "r"
    with pytest.raises(ResultWriteError, match=rf"{out}.*no space left on device \(\d+ bytes for traces/c0000.npy\)"):
        E.run_ensemble(two_conditions(), n_runs=RUNS, seed=SEED, workers=1, out=out)
    assert recorded_runs == [] and not (out / "traces" / "c0000.npy").exists()


def _fail_writes_from(monkeypatch, prefix: str, code: int):
    real = integrity._write_new

    def failing(path, data):
        if Path(path).name.startswith(prefix):
            raise OSError(code, os.strerror(code), str(path))
        return real(path, data)
    monkeypatch.setattr(integrity, "_write_new", failing)


def test_a_full_disk_during_a_run_is_reported_and_the_saved_runs_are_kept(tmp_path, monkeypatch, reference):
    out = tmp_path / "r"
    _fail_writes_from(monkeypatch, "c0000-r0000012", errno.ENOSPC)
    with pytest.raises(ResultWriteError, match=rf"{out}: no space left on device.*\(12 of 48 runs saved\)"):
        E.run_ensemble(two_conditions(), n_runs=RUNS, seed=SEED, workers=1, batch_size=4, out=out)
    monkeypatch.undo()
    assert_same(reference, resume(out))


def test_permission_errors_are_clear_from_the_api_and_the_cli(tmp_path, monkeypatch, capsys):
    # the tests may run as root, which chmod does not stop: the refusal is simulated where files are written
    _fail_writes_from(monkeypatch, "", errno.EACCES)
    with pytest.raises(ResultWriteError, match=r"cannot write the result directory .*: permission denied"):
        E.run_ensemble(two_conditions(), n_runs=2, seed=SEED, workers=1, out=tmp_path / "api")
    status = cli.main(["run", "cholinergic", "--runs", "2", "--out", str(tmp_path / "cli"), "--no-progress",
                       "--set", "timing.duration_ms=1"])
    err = capsys.readouterr().err
    assert status == 1 and "permission denied" in err and str(tmp_path / "cli") in err and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_result_loads_and_refuses_a_resume_clearly(pristine, tmp_path):
    out = copy_of(pristine, tmp_path, "interrupted")
    out.chmod(0o555)
    try:
        with pytest.raises(ResultWriteError, match="permission denied"):
            resume(out)
    finally:
        out.chmod(0o755)


# ---------------------------------------------------------------------------------------- symbolic links

@pytest.mark.parametrize("entry", ["runs", "traces", "metadata.json.tmp", "runs/c0001-r0000008.parquet.tmp",
                                   "traces/c0001.npy"])
def test_resume_refuses_to_follow_symbolic_links(pristine, tmp_path, entry):
    out = copy_of(pristine, tmp_path, "interrupted")
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "target"
    if (out / entry).exists():
        shutil.move(out / entry, target)
    else:
        target.write_text("precious")
    os.symlink(target, out / entry)
    before = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    with pytest.raises(UnsafeResultEntry, match=rf"{entry.replace('.', '[.]')} is a symbolic link"):
        resume(out)
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == before


def test_plot_refuses_a_symlinked_plots_folder(pristine, tmp_path, capsys):
    out = copy_of(pristine, tmp_path, "finished")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, out / "plots")
    with pytest.raises(SystemExit):
        cli.main(["plot", str(out)])
    assert "plots is a symbolic link" in capsys.readouterr().err
    assert not list(outside.iterdir())
    os.unlink(out / "plots")
    os.symlink(outside / "x.npy", out / "traces" / "c0002.npy")
    with pytest.raises(UnsafeResultEntry, match="traces/c0002.npy"):
        storage.load_result(out)


# ---------------------------------------------------------------------------------------- killed parent

KILLED_PARENT_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from mcsyn import ensemble as E
    from test_ensemble import small_model
    if __name__ == "__main__":
        E.run_ensemble(small_model(duration_ms=3.0), n_runs=100000, seed=1, workers=2, batch_size=4,
                       backend="processes", out={out!r}, progress=False)
""")


def _children(pid: int) -> set:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_parent(tmp_path, child_env):
    out = tmp_path / "r"
    script = tmp_path / "ensemble.py"
    script.write_text(KILLED_PARENT_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out)))
    proc = subprocess.Popen([sys.executable, str(script)], env=child_env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "runs").glob("*.parquet"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    family, frontier = set(), {proc.pid}
    while frontier:                   # every descendant: the forkserver, its workers, the resource tracker
        frontier = set().union(*(_children(p) for p in frontier)) - family
        family |= frontier
    assert len(family) >= 3
    proc.kill()
    proc.wait()
    # the kernel kills a worker when its parent (the forkserver) exits, and the forkserver exits as
    # soon as the ensemble's process is gone; the watch thread is the fallback every
    # PARENT_WATCH_INTERVAL_S. Twenty such intervals leave room for a loaded machine.
    limit = time.monotonic() + 20 * backends.PARENT_WATCH_INTERVAL_S
    while time.monotonic() < limit and any(_alive(p) for p in family):
        time.sleep(0.05)
    survivors = [p for p in family if _alive(p)]
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert not survivors
