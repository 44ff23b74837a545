"""Result directories: layout, identical DataFrames on loading, metadata, configuration, TOML."""
import json
import math
import tomllib

import numpy as np
import pandas as pd
import pytest

import mcsyn
from mcsyn import ensemble as E
from mcsyn import storage


def small_model(molecules=200):
    return mcsyn.SynapseModel(geometry=mcsyn.Geometry(outside="band"), timing=mcsyn.Timing(duration_ms=0.3),
                              releases=[mcsyn.Release(molecules=molecules)],
                              sites=[mcsyn.SiteGroup(mcsyn.ampa_jonas1993(), "postsynaptic", count=10, name="AMPA")],
                              name="small")


def conditions():
    return E.make_conditions(lambda drugs, molecules=200: small_model(molecules), params={"molecules": [200, 300]})


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    out = tmp_path_factory.mktemp("res") / "result"
    return out, E.run_ensemble(conditions(), n_runs=6, seed=4, workers=2, out=out)


def test_layout(saved):
    out, _ = saved
    names = {p.name for p in out.iterdir()}
    assert names == {"config.toml", "metadata.json", "metrics.parquet", "timecourse.parquet", "failures.parquet",
                     "conditions.parquet", "traces"}
    assert sorted(p.name for p in (out / "traces").iterdir()) == ["c0000.npy", "c0001.npy"]
    assert not list(out.rglob("*.tmp"))


def test_loading_gives_identical_dataframes_and_traces(saved):
    out, result = saved
    loaded = storage.load_result(out)
    for name, frame in result.tables().items():
        pd.testing.assert_frame_equal(loaded.tables()[name], frame, check_exact=True, obj=name)
    for cond in result.condition_names:
        pd.testing.assert_frame_equal(loaded.traces(cond, "AMPA:bound"), result.traces(cond, "AMPA:bound"),
                                      check_exact=True)
    assert loaded.path == out
    assert loaded.config == tomllib.loads((out / "config.toml").read_text())


def test_metadata_records_version_seed_dates_and_backend(saved):
    out, result = saved
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["mcsyn_version"] == mcsyn.__version__
    assert meta["seed"] == 4 and meta["n_runs"] == 6 and meta["status"] == "complete"
    assert meta["created"].endswith("+00:00")
    session = meta["sessions"][0]
    assert session["backend"] == "threads" and session["workers"] == 2 and "ended" in session
    assert [c["name"] for c in meta["conditions"]] == result.condition_names
    assert [c["seed"] for c in meta["conditions"]] == result.conditions["seed"].tolist()


def test_config_toml_holds_the_resolved_models(saved):
    out, _ = saved
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["ensemble"]["n_runs"] == 6 and cfg["ensemble"]["seed"] == 4
    c1 = cfg["conditions"][1]
    assert c1["name"] == "molecules=300" and c1["labels"] == {"molecules": 300}
    assert c1["model"]["releases"][0]["molecules"] == 300
    assert c1["model"]["sites"][0]["scheme"]["name"] == "AMPA"


def test_preset_conditions_save_a_loadable_synapse_configuration(tmp_path):
    config = pytest.importorskip("mcsyn.config")
    conds = E.make_conditions("serotonergic", treatments=[{"escitalopram": "10 nM"}],
                              **{"timing.duration_ms": 5, "geometry.domain_radius_um": 3.0})
    E.run_ensemble(conds, n_runs=1, seed=0, workers=1, out=tmp_path / "r")
    saved = tomllib.loads((tmp_path / "r" / "config.toml").read_text())["conditions"][0]["config"]
    rebuilt = config.SynapseConfig.from_dict(saved).build()
    assert E.plan._model_fingerprint(rebuilt) == E.plan._model_fingerprint(conds[0].model)


def test_save_result_of_an_in_memory_ensemble(tmp_path):
    result = E.run_ensemble(conditions(), n_runs=4, seed=9, workers=1)
    path = storage.save_result(result, tmp_path / "saved")
    loaded = storage.load_result(path)
    for name, frame in result.tables().items():
        pd.testing.assert_frame_equal(loaded.tables()[name], frame, check_exact=True, obj=name)
    pd.testing.assert_frame_equal(loaded.traces("molecules=300", "free"), result.traces("molecules=300", "free"))
    with pytest.raises(FileExistsError):
        storage.save_result(result, path)
    storage.save_result(result, path, overwrite=True)


def test_failures_table_round_trips_when_empty_and_full(tmp_path, fail_runs):
    fail_runs({1}, ValueError, "boom")
    r = E.run_ensemble(small_model(), n_runs=3, seed=1, workers=1, errors="keep")
    path = storage.save_result(r, tmp_path / "f")
    loaded = storage.load_result(path)
    pd.testing.assert_frame_equal(loaded.failures, r.failures, check_exact=True)
    assert loaded.failures["error"].tolist() == ["ValueError: boom"]


def test_loading_something_else_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an mcsyn result"):
        storage.load_result(tmp_path)


def test_dumps_toml():
    text = storage.dumps_toml({"a": 1, "b": None, "c": [1.5, float("inf"), float("nan")], "d e": "x\"y",
                               "t": {"k": True, "nested": {"z": np.int64(3)}},
                               "items": [{"n": 1}, {"n": 2, "arr": np.array([1.0, 2.0])}]})
    d = tomllib.loads(text)
    assert "b" not in d and d["a"] == 1 and d["d e"] == 'x"y'
    assert d["c"][0] == 1.5 and math.isinf(d["c"][1]) and math.isnan(d["c"][2])
    assert d["t"] == {"k": True, "nested": {"z": 3}}
    assert d["items"] == [{"n": 1}, {"n": 2, "arr": [1.0, 2.0]}]


def test_results_compare_equal_by_their_tables_and_configuration(tmp_path):
    import mcsyn
    conds = mcsyn.make_conditions("cholinergic", **{"timing.duration_ms": 0.5})
    a = mcsyn.run_ensemble(conds, n_runs=3, seed=4, out=tmp_path / "a", progress=False)
    b = mcsyn.run_ensemble(conds, n_runs=3, seed=4, progress=False)
    c = mcsyn.run_ensemble(conds, n_runs=3, seed=5, progress=False)
    assert a == b and a == mcsyn.load_result(tmp_path / "a")
    assert a != c and a != "a result"


def test_metadata_records_the_site_totals_of_every_condition(tmp_path):
    import json
    import mcsyn
    conds = mcsyn.make_conditions("serotonergic", **{"timing.duration_ms": 2})
    mcsyn.run_ensemble(conds, n_runs=1, seed=0, out=tmp_path / "r", progress=False)
    meta = json.loads((tmp_path / "r" / "metadata.json").read_text())
    assert meta["conditions"][0]["site_totals"] == mcsyn.simulate.site_totals(conds[0].model)
    assert meta["conditions"][0]["site_totals"]["5-HT1A"] == 25225


def test_a_field_added_at_its_default_leaves_the_resume_fingerprint_unchanged():
    import dataclasses
    import mcsyn
    model = mcsyn.presets.build("cholinergic")
    assert E.plan._model_fingerprint(model) == E.plan._model_fingerprint(dataclasses.replace(model, clamp=None))
    changed = dataclasses.replace(model, timing=dataclasses.replace(model.timing, duration_ms=1.0))
    assert E.plan._model_fingerprint(changed) != E.plan._model_fingerprint(model)
    # a field set away from its default counts
    release = dataclasses.replace(model.releases[0], random_position_radius_um=0.05)
    moved = dataclasses.replace(model, releases=[release])
    assert E.plan._model_fingerprint(moved) != E.plan._model_fingerprint(model)
