"""mcsyn export: a NEURON point process and a Brian2 module that play the ensemble-mean conductance.

Without neuron/brian2: the files are written, their tables equal the time course's mean open counts
times the single-channel conductances bit for bit, and bad input names what is wrong. With them
(the optional extra ``export``): the mod file compiles, a clamped compartment reproduces mcsyn's
mean current sample by sample, and so does a Brian2 group.

Tolerance of the simulator checks. The exported synapse plays the mean itself, so a difference
comes only from the discretisation, not from sampling: NEURON's fixed-step method evaluates the
synaptic current half a step before the time it records, and the clamp (series resistance 1 kΩ,
3 pF) settles within a small fraction of a step, so the lag is below one step ``dt`` and
|ΔI_k| ≤ dt · |dI/dt| near sample k (the steeper neighbouring slope of the table), plus the clamp's
voltage error i·rs times the current's voltage sensitivity (1/|V_h − E| plus the NMDA block's
slope; ~1e-5 pA here) and 1e-9 of the peak for rounding. Brian2 samples the table at its own nodes (dt divides the table step): no lag.
That is the bound asserted. It is far below the sampling error a modeller inherits, k = 4 standard
errors of the mean (the project's level for stochastic comparisons), also asserted against the
stored mean current, which the ensemble keeps to the femtoampere (each run's value rounded to 1e-3 pA).
"""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mcsyn import cli, library, load_result
from mcsyn.errors import ModelError
from mcsyn.export import conductance_waveform, export, to_brian2, to_neuron

HOLDING_MV = -70.0
N_RUNS = 20
K_SEM = 4.0
STORED_CURRENT_ROUNDING_PA = 0.5e-3   # int32 traces hold a current as whole fA: each run's value within 0.5 fA
ROUNDING = 1e-9                        # relative to the peak current


def _run(out, *extra):
    argv = ["run", "glutamatergic", "--runs", str(N_RUNS), "--seed", "7", "--set", "timing.duration_ms=4",
            "--out", str(out), "--no-progress", "--workers", "1", *extra]
    assert cli.main(argv) == 0
    return out


@pytest.fixture(scope="module")
def clamped(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("clamped") / "res", "--clamp", f"{HOLDING_MV:g}mV")


@pytest.fixture(scope="module")
def unclamped(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("unclamped") / "res")


def _mean(result, observable, column="mean"):
    tc = result.timecourse
    rows = tc[(tc["condition"] == "control") & (tc["observable"] == observable)].sort_values("time_ms")
    return rows[column].to_numpy(dtype=float)


def _expected_pS(result, group):
    (state, pS), = library.receptor(group, "test").conductance_pS   # AMPA and NMDA: one open state "O"
    assert state == "O"
    return _mean(result, f"{group}:open") * pS


def _mod_tables(text):
    found = re.findall(r"static const double mcsyn_g_(\w+)\[MCSYN_N\] = \{ /\* uS \*/\n(.*?)\n\};", text, re.S)
    return {name: np.array([float(x) for x in body.replace("\n", " ").split(",")]) for name, body in found}


def test_neuron_file_holds_the_mean_conductance_exactly(clamped, tmp_path):
    result = load_result(clamped)
    path = to_neuron(clamped, "control", tmp_path)
    text = path.read_text()
    assert path.name == "mcsyn_glutamatergic_control.mod"
    assert "POINT_PROCESS mcsyn_glutamatergic_control" in text and "NET_RECEIVE(weight)" in text
    tables = _mod_tables(text)
    assert sorted(tables) == ["AMPA", "NMDA"]
    for group, table in tables.items():
        np.testing.assert_array_equal(table, _expected_pS(result, group) * 1e-6)
        assert f"e_{group} = 0.0 (mV)" in text
    assert int(re.search(r"#define MCSYN_N (\d+)", text).group(1)) == len(tables["AMPA"])
    times = np.sort(result.timecourse["time_ms"].unique())
    assert float(re.search(r"mcsyn_step_ms = (\S+);", text).group(1)) == pytest.approx(times[1] - times[0])
    assert "mg_mM = 1.0 (mM)" in text and "k0_NMDA = 3.57 (mM)" in text
    seed = int(result.conditions["seed"].iloc[0])
    for line in (f"result directory: {clamped}", "condition: control", f"runs averaged: {N_RUNS}",
                 f"condition {seed}", "exported by mcsyn 0.1.0", "-70 mV"):
        assert line in text


def test_brian2_file_holds_the_mean_conductance_exactly(clamped, tmp_path):
    result = load_result(clamped)
    text = to_brian2(result, None, tmp_path).read_text()
    tree = ast.parse(text)                          # valid Python
    arrays = {node.targets[0].id: ast.literal_eval(node.value.args[0]) for node in tree.body
              if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
              and node.targets[0].id.startswith("G_")}
    assert sorted(arrays) == ["G_AMPA_NS", "G_NMDA_NS"]
    for group in ("AMPA", "NMDA"):
        np.testing.assert_array_equal(np.array(arrays[f"G_{group}_NS"]), _expected_pS(result, group) * 1e-3)
    assert "I_AMPA = w_mcsyn * g_AMPA_table(" in text and ": amp" in text and "TimedArray" in text
    assert f"runs averaged: {N_RUNS}" in text


def test_conductance_times_driving_force_is_the_stored_current(clamped):
    """The export's g · B(V_h) · (V_h − E) is mcsyn's mean current, up to the storage rounding."""
    result = load_result(clamped)
    w = conductance_waveform(result)
    for g in w.groups:
        current_pA = g.g_pS * g.block_at_holding * (HOLDING_MV - g.reversal_potential_mV) * 1e-3
        stored = _mean(result, f"{g.group}:current_pA")
        assert np.all(np.abs(current_pA - stored) <= STORED_CURRENT_ROUNDING_PA + 1e-12)
    assert w.groups[1].block_at_holding == pytest.approx(1 / (1 + 1.0 / 3.57 * np.exp(0.062 * 70)))


def test_cli_writes_both_files(clamped, tmp_path, capsys):
    assert cli.main(["export", "neuron", str(clamped), "--out", str(tmp_path), "--condition", "control"]) == 0
    assert cli.main(["export", "brian2", str(clamped), "--out", str(tmp_path), "--name", "syn"]) == 0
    assert (tmp_path / "mcsyn_glutamatergic_control.mod").is_file() and (tmp_path / "syn.py").is_file()
    assert "wrote" in capsys.readouterr().out


def test_an_in_memory_result_exports_as_its_saved_directory(tmp_path):
    import mcsyn
    conds = mcsyn.make_conditions("glutamatergic", **{"clamp.holding_potential_mV": "-60mV", "timing.duration_ms": 1})
    result = mcsyn.run_ensemble(conds, n_runs=3, seed=3, workers=1, progress=False)
    saved = conductance_waveform(mcsyn.storage.save_result(result, tmp_path / "res"))
    memory = conductance_waveform(result)
    assert memory.clamp == saved.clamp and memory.n_runs == saved.n_runs == 3
    for a, b in zip(memory.groups, saved.groups):
        assert a.group == b.group and a.reversal_potential_mV == b.reversal_potential_mV
        np.testing.assert_array_equal(a.g_pS, b.g_pS)


@pytest.mark.parametrize("call, field, named", [
    (lambda d, o: to_neuron(d, "nonsense", o), "condition", "nonsense"),
    (lambda d, o: export("nest", d, None, o), "target", "nest"),
    (lambda d, o: to_brian2(d, None, o, name="2bad"), "name", "2bad"),
])
def test_bad_input_names_the_field(clamped, tmp_path, call, field, named):
    with pytest.raises(ModelError) as err:
        call(clamped, tmp_path)
    assert err.value.field == field and named in str(err.value)


def test_a_result_without_a_clamp_is_refused(unclamped, tmp_path):
    with pytest.raises(ModelError, match="voltage clamp") as err:
        to_neuron(unclamped, None, tmp_path)
    assert err.value.field == "conditions['control'].model.clamp"
    assert not list(tmp_path.iterdir())


def test_cli_bad_target_and_condition(clamped, tmp_path, capsys):
    for argv, named in ((["export", "nest", str(clamped)], "nest"),
                        (["export", "neuron", str(clamped), "--condition", "drug"], "drug"),
                        (["export", "neuron", str(tmp_path / "missing")], "missing")):
        with pytest.raises(SystemExit) as stop:
            cli.main(argv + ["--out", str(tmp_path)])
        assert stop.value.code == 2 and named in capsys.readouterr().err


# ======================================================================================================
# with the simulators (pip install mcsyn[export])

def _import_or_skip(name):
    try:
        return pytest.importorskip(name)
    except (AttributeError, TypeError) as exc:   # e.g. brian2 2.9 with numpy >= 2.4 (ndarray.ptp removed)
        pytest.skip(f"{name} does not import with this numpy: {exc}")


def _mean_current(result):
    """mcsyn's mean current (pA), from the exact mean counts, and an upper bound of its sem."""
    w = conductance_waveform(result)
    total, sem = 0.0, 0.0
    for g in w.groups:
        pA_per_open = dict(library.receptor(g.entry, "test").conductance_pS)["O"] \
            * g.block_at_holding * (HOLDING_MV - g.reversal_potential_mV) * 1e-3
        total = total + g.g_pS * g.block_at_holding * (HOLDING_MV - g.reversal_potential_mV) * 1e-3
        sem = sem + _mean(result, f"{g.group}:open", "sem") * abs(pA_per_open)   # sd(x+y) <= sd x + sd y
    return w, total, sem


def _check_against_mcsyn(result, simulated_pA, lag_ms, series_resistance_MOhm=0.0):
    w, expected, sem = _mean_current(result)
    slope = np.abs(np.diff(expected)) / w.step_ms
    steepest = np.maximum(np.r_[slope, 0.0], np.r_[0.0, slope])
    # the clamp holds v off V_h by i·rs (nA · MΩ = mV); I changes by at most (1/|V_h − E| + a) per mV
    # of it, a = 0.062 /mV the slope of the NMDA block (|d ln B/dV| = a (1 − B) < a)
    sensitivity_per_mV = 1.0 / abs(HOLDING_MV) + library.receptor("NMDA", "test").mg_block_slope_per_mV
    clamp_error_pA = np.abs(expected) * (np.abs(expected) * 1e-3 * series_resistance_MOhm) * sensitivity_per_mV
    bound = lag_ms * steepest + clamp_error_pA + ROUNDING * np.max(np.abs(expected))
    print(f"max |simulated - mcsyn| {np.max(np.abs(simulated_pA - expected)):.3g} pA, bound used "
          f"{np.max(np.abs(simulated_pA - expected) / bound):.3g}, 4 sem at the peak "
          f"{K_SEM * sem[np.argmax(np.abs(expected))]:.3g} pA")
    diff = np.abs(simulated_pA - expected)
    assert np.all(diff <= bound), f"worst excess {np.max(diff - bound):.3g} pA at sample {np.argmax(diff - bound)}"
    assert np.all(diff <= K_SEM * sem + bound)
    stored = _mean(result, "current_pA")
    assert np.all(np.abs(simulated_pA - stored)
                  <= K_SEM * _mean(result, "current_pA", "sem") + STORED_CURRENT_ROUNDING_PA + bound)


def test_neuron_reproduces_the_mean_current(clamped, tmp_path):
    _import_or_skip("neuron")
    nrnivmodl = shutil.which("nrnivmodl") or str(Path(sys.executable).with_name("nrnivmodl"))
    if not Path(nrnivmodl).exists():
        pytest.skip("nrnivmodl not found")
    result = load_result(clamped)
    mod = to_neuron(result, "control", tmp_path)
    build = subprocess.run([nrnivmodl, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    from neuron import h
    lib = next(tmp_path.glob("*/libnrnmech.so"), None) or next(tmp_path.glob("*/.libs/libnrnmech.so"))
    assert h.nrn_load_dll(str(lib))
    h.load_file("stdrun.hoc")
    w = conductance_waveform(result)
    sec = h.Section(name="soma")
    sec.L = sec.diam = 10.0                                   # 314 µm², 3 pF; no other conductance
    clamp = h.SEClamp(sec(0.5))
    clamp.dur1, clamp.amp1, clamp.rs = 1e9, HOLDING_MV, 1e-3   # 1 kΩ series resistance
    syn = getattr(h, mod.stem)(sec(0.5))
    net = h.NetCon(None, syn)
    net.weight[0] = 1.0
    release_ms, sub = 0.5, 10
    h.dt = w.step_ms / sub
    i_clamp, t_rec = h.Vector().record(clamp._ref_i), h.Vector().record(h._ref_t)
    h.finitialize(HOLDING_MV)
    net.event(release_ms)
    h.continuerun(release_ms + w.step_ms * (w.n_samples - 1) + h.dt / 2)
    t, i_nA = np.array(t_rec), np.array(i_clamp)
    k = np.rint((release_ms + w.start_ms + w.step_ms * np.arange(w.n_samples)) / h.dt).astype(int)
    assert np.allclose(t[k] - release_ms, w.start_ms + w.step_ms * np.arange(w.n_samples))
    _check_against_mcsyn(result, i_nA[k] * 1e3, lag_ms=h.dt, series_resistance_MOhm=clamp.rs)


def test_brian2_reproduces_the_mean_current(clamped, tmp_path):
    b2 = _import_or_skip("brian2")
    result = load_result(clamped)
    path = to_brian2(result, "control", tmp_path)
    source = {}
    exec(compile(path.read_text(), str(path), "exec"), source)   # the generated module, as a user imports it
    w = conductance_waveform(result)
    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    dt = w.step_ms / 10 * b2.ms
    b2.defaultclock.dt = dt
    release_ms = 0.5
    cell = b2.NeuronGroup(1, source["EQUATIONS"] + "v : volt\n", namespace=source["namespace"](dt), dt=dt)
    cell.v, cell.w_mcsyn, cell.t_release = HOLDING_MV * b2.mV, 1.0, source["NO_RELEASE"]
    spikes = b2.SpikeGeneratorGroup(1, [0], [release_ms] * b2.ms, dt=dt)
    link = b2.Synapses(spikes, cell, on_pre=source["ON_PRE"], dt=dt)
    link.connect()
    monitor = b2.StateMonitor(cell, "I_mcsyn", record=0, dt=dt, when="end")   # after the release's on_pre
    b2.run((release_ms + w.step_ms * w.n_samples) * b2.ms, namespace={})
    t_ms = np.asarray(monitor.t / b2.ms)
    k = np.rint((release_ms + w.start_ms + w.step_ms * np.arange(w.n_samples)) / (dt / b2.ms)).astype(int)
    assert np.allclose(t_ms[k] - release_ms, w.start_ms + w.step_ms * np.arange(w.n_samples))
    _check_against_mcsyn(result, np.asarray(monitor.I_mcsyn[0] / b2.pA)[k], lag_ms=0.0)
