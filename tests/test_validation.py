"""``mcsyn validate``: the quick subset passes, writes its report, and a broken check fails.

The quick subset runs once per session (module fixture, a few seconds of CPU); the broken-check
tests run single cheap checks.
"""
import argparse
import math

import numpy as np
import pandas as pd
import pytest

from mcsyn import validation as V


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("validation")
    args = argparse.Namespace(quick=True, out=str(out), workers=2)
    code = V.validate_command(args)
    return code, out, pd.read_csv(out / "validation.csv")


def test_quick_subset_passes(quick_run):
    code, _, df = quick_run
    failed = df[df["verdict"] == "fail"]
    assert failed.empty, failed[["check", "expected", "measured", "tolerance", "note"]].to_string()
    assert code == 0
    assert set(df["verdict"]) <= {"pass", "skip"}
    # the engine checks never skip; together with the pharmacology checks there are many rows
    engine = df[df["category"].isin(["free diffusion", "first passage", "extracellular space", "binding"])]
    assert (engine["verdict"] == "pass").all()
    assert (df["verdict"] == "pass").sum() >= 15


def test_quick_subset_covers_every_category(quick_run):
    _, _, df = quick_run
    assert {"free diffusion", "first passage", "extracellular space", "binding", "transporters", "drugs",
            "published"} <= set(df["category"])
    assert df["quick"].all()
    assert set(df["check"].str.split(".").str[0]) >= {"diffusion", "first_passage", "ecs", "binding"}


def test_report_columns_and_files(quick_run):
    _, out, df = quick_run
    for col in ("check", "category", "expected", "measured", "tolerance", "verdict", "citation", "note", "wall_s"):
        assert col in df.columns
    assert df["wall_s"].notna().all() and (df["wall_s"] >= 0).all()
    stat = df[df["tolerance"].str.startswith("±")]
    assert len(stat) >= 10 and stat["tolerance"].str.contains("SE").all()     # statistical tolerances say so
    published = df[df["category"] == "published"]
    assert (published["citation"].str.len() > 0).all()
    md = (out / "validation.md").read_text(encoding="utf-8")
    assert "| check |" in md and "## What each check means" in md
    for name in df["check"]:
        assert name in md


def test_wrong_expected_diffusion_coefficient_fails(monkeypatch, tmp_path, capsys):
    """A 10 % wrong D in the expectation of the MSD check makes it fail and the command exit 1."""
    monkeypatch.setattr(V.physics, "D_GLU", V.D_GLU * 1.1)   # the model keeps the true D (bound at definition)
    df = V.run_validation(quick=True, workers=1, progress=False, only=["diffusion.msd_slab"])
    assert len(df) == 2 and (df["verdict"] == "fail").all()
    args = argparse.Namespace(quick=True, out=str(tmp_path / "broken"), workers=1, only=["diffusion.msd_slab"])
    assert V.validate_command(args) == 1
    assert "FAILED" in capsys.readouterr().out
    saved = pd.read_csv(tmp_path / "broken" / "validation.csv")
    assert (saved["verdict"] == "fail").all()


def _temporary_check(monkeypatch, func):
    spec = V.CheckSpec("zz.temporary", "test", func, True, "a temporary check")
    monkeypatch.setattr(V.framework, "REGISTRY", [spec])


def test_monkeypatched_measured_value_fails(monkeypatch, tmp_path):
    real = V.physics.check_exit_disk

    def broken(ctx):
        rows = real(ctx)
        for r in rows:           # recompute the verdict as if the engine had returned 10 % longer exit times
            bad = V.stat_check(r.name, r.category, r.expected, r.measured * 1.1, r.se, r.unit)
            r.measured, r.verdict = bad.measured, bad.verdict
        return rows

    _temporary_check(monkeypatch, broken)
    args = argparse.Namespace(quick=True, out=str(tmp_path), workers=1)
    assert V.validate_command(args) == 1
    df = pd.read_csv(tmp_path / "validation.csv")
    assert list(df["verdict"]) == ["fail"]


def test_crashing_check_fails(monkeypatch, tmp_path):
    def crash(ctx):
        raise RuntimeError("boom")

    _temporary_check(monkeypatch, crash)
    df = V.run_validation(quick=True, progress=False)
    assert list(df["verdict"]) == ["fail"] and "boom" in df["note"].iloc[0]
    assert V.validate_command(argparse.Namespace(quick=True, out=str(tmp_path), workers=1)) == 1


def test_row_constructors():
    ok = V.stat_check("a", "c", 1.0, 1.04, 0.01, "µM", "x")
    bad = V.stat_check("a", "c", 1.0, 1.06, 0.01, "µM", "x")
    assert ok.verdict == "pass" and bad.verdict == "fail"
    assert ok.lower == pytest.approx(0.95) and ok.upper == pytest.approx(1.05)
    assert V.stat_check("a", "c", 1.0, float("nan"), 0.01).verdict == "fail"
    assert V.range_check("r", "c", 3.0, 1.0, 5.0, "mM").verdict == "pass"
    assert V.range_check("r", "c", 6.0, 1.0, 5.0, "mM").verdict == "fail"
    assert V.range_check("r", "c", 2.0, None, 5.0, "%").verdict == "pass"
    assert math.isnan(V.range_check("r", "c", 2.0, None, 5.0).lower)


def test_registry_names_are_unique_and_quick_subset_is_a_subset():
    names = [c.name for c in V.REGISTRY]
    assert len(names) == len(set(names))
    assert {c.name for c in V.checks(quick=True)} < set(names)
    for c in V.REGISTRY:
        assert c.description, c.name


# ---------------------------------------------------------------------------------------------------
# the restated published checks (Clements 1996 / Clements et al. 1992; Daws et al. 2003)

def test_restated_published_checks_are_registered():
    names = {c.name for c in V.REGISTRY}
    assert {"published.clements_biphasic", "published.daws_sert"} <= names
    assert "published.daws_sert_reserve" not in names
    assert "discrepancy" in V.VERDICTS


def test_cleft_decay_statistics_on_known_waveforms():
    """A single exponential is not biphasic (slow/fast = 1); the published Rusakov 2001 profile meets
    every restated Clements criterion; an ideal two-phase transient returns its slow τ."""
    t = np.arange(0.0, 5.0, 0.01)
    one = V.published.cleft_decay_statistics(t, 3.0 * np.exp(-t / 0.06))
    assert one["fast_1e_us"] == pytest.approx(60.0, rel=1e-3)
    assert one["slow_over_fast"] == pytest.approx(1.0, rel=1e-3)
    ref = V.published.cleft_decay_statistics(t, sum(a * np.exp(-t / tau)
                                                    for a, tau in V.published.RUSAKOV_2001_PROFILE))
    assert 50 <= ref["fast_1e_us"] <= 200 and ref["slow_over_fast"] >= 3 and 0.6 <= ref["slow_tau_ms"] <= 2.4
    two = V.published.cleft_decay_statistics(t, 3.0 * np.exp(-t / 0.05) + 0.05 * np.exp(-t / 1.2))
    assert two["slow_tau_ms"] == pytest.approx(1.2, rel=0.02)


def _rows(func, **kw):
    return {r.name.rsplit(".", 1)[-1] if "uptake_linear" not in r.name else r.name.split(".", 2)[-1]: r
            for r in func(V.Context(quick=True, workers=2), **kw)}


def test_clements_fails_without_glial_transporters(monkeypatch):
    """Without EAAT2 and GLAST the glutamate stays in the closed band: no slow decay phase."""
    build = V.published.presets.build

    def no_transporters(name, **kw):     # 2.5 ms covers the 0.5–2 ms window and keeps the test cheap
        return build(name, **{"sites.EAAT2.enabled": False, "sites.GLAST.enabled": False,
                              "timing.duration_ms": 2.5, **kw})

    monkeypatch.setattr(V.published.presets, "build", no_transporters)
    rows = _rows(V.published.check_clements_biphasic)
    assert rows["slow_tau"].verdict == "fail"


@pytest.fixture
def cheap_sert_cell(monkeypatch):
    """The Daws closed cell with 500 molecules for 200 ms (2 runs per arm in quick mode)."""
    monkeypatch.setattr(V.published, "_SERT_CELL", {**V.published._SERT_CELL, "release.molecules": 500,
                                                    "timing.duration_ms": 200.0})
    return V.published.sert_closed_cell


def test_daws_rows_and_discrepancy(cheap_sert_cell, monkeypatch, tmp_path):
    rows = _rows(V.published.check_daws_sert)
    linear = [r for k, r in rows.items() if k.startswith("uptake_linear")]
    assert len(linear) == 4 and all(r.verdict == "pass" for r in linear)
    assert rows["ssri_control"].verdict == "pass"
    assert rows["reserve"].verdict == "discrepancy" and "Montañez" in rows["reserve"].citation
    # a discrepancy is reported but is not a failure: the command exits 0
    _temporary_check(monkeypatch, lambda ctx: [rows["reserve"]])
    assert V.validate_command(argparse.Namespace(quick=True, out=str(tmp_path), workers=1)) == 0
    assert list(pd.read_csv(tmp_path / "validation.csv")["verdict"]) == ["discrepancy"]


def test_daws_linearity_fails_when_uptake_is_quadratic_in_sert(cheap_sert_cell, monkeypatch):
    monkeypatch.setattr(V.published, "sert_closed_cell", lambda f=1.0, drugs_=None: cheap_sert_cell(f * f, drugs_))
    rows = _rows(V.published.check_daws_sert)
    assert all(r.verdict == "fail" for k, r in rows.items() if k.startswith("uptake_linear"))


def test_daws_ssri_rows_fail_when_the_ssri_is_ignored_or_misses_the_lesion(cheap_sert_cell, monkeypatch):
    monkeypatch.setattr(V.published, "sert_closed_cell", lambda f=1.0, drugs_=None: cheap_sert_cell(f, None))
    assert _rows(V.published.check_daws_sert)["ssri_control"].verdict == "fail"
    # an SSRI that acts on the full SERT complement whatever the lesion left
    monkeypatch.setattr(V.published, "sert_closed_cell",
                        lambda f=1.0, drugs_=None: cheap_sert_cell(1.0 if drugs_ else f, drugs_))
    assert _rows(V.published.check_daws_sert)["ssri_loss95"].verdict == "fail"


# ---------------------------------------------------------------------------------------------------
# Franks, Stevens & Sejnowski 2003: sources of quantal variability (full mode only; run here at quick sizes)

def test_franks_variance_rows_and_a_broken_nesting_fails(monkeypatch):
    """The check's rows: three shares that add up to 100 %, the nesting row, the potency rows; every row
    outside its tolerance is a discrepancy that states its reason. A nested ensemble that samples a
    different quantum (half the molecules at the fixed positions) fails the nesting row."""
    from mcsyn import variability
    assert "published.franks_variance" not in {c.name for c in V.checks(quick=True)}
    rows = {r.name.split(".", 1)[1]: r for r in V.published.check_franks_variance(V.Context(quick=True, workers=2))}
    assert set(rows) == {"franks_variance.channel", "franks_variance.quantal", "franks_variance.position",
                         "franks_variance.nesting", "franks_potency.length_constant", "franks_potency.far_release"}
    shares = [rows[f"franks_variance.{s}"].measured for s in variability.SOURCES]
    assert sum(shares) == pytest.approx(100.0, abs=1e-9)
    assert rows["franks_variance.nesting"].verdict == "pass"
    for r in rows.values():
        assert r.verdict in ("pass", "discrepancy") and "Franks" in r.citation and r.tolerance
        assert (r.verdict == "discrepancy") == ("reason:" in r.note)
    real = variability.miniature

    def half_quantum_at_fixed_positions(model, quantal_cv=variability.QUANTAL_CV_ASSUMED, radius_um=None,
                                        position_um=None, molecules=None):
        if position_um is not None:
            molecules = (molecules or variability._template_release(model).molecules) / 2
        return real(model, quantal_cv, radius_um, position_um, molecules)

    monkeypatch.setattr(variability, "miniature", half_quantum_at_fixed_positions)
    broken = {r.name: r for r in V.published.check_franks_variance(V.Context(quick=True, workers=2))}
    assert broken["published.franks_variance.nesting"].verdict == "fail"


def test_pet_occupancy_rows_pass_or_say_why_not():
    from mcsyn.validation import dosing
    rows = dosing.check_volkow_methylphenidate(V.Context()) + dosing.check_meyer_ssri(V.Context())
    names = [r.name for r in rows]
    assert len(set(names)) == len(names) and "published.volkow_methylphenidate_dat.5mg" in names
    assert {r.verdict for r in rows} <= {"pass", "discrepancy"}
    for r in rows:
        if r.verdict == "pass":
            assert r.lower <= r.measured <= r.upper
        else:
            assert r.note                      # a documented discrepancy carries its reason
