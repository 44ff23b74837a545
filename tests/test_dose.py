"""Dose snapshots (issue 14): conditions at times after the last dose carry the concentrations of
the pharmacokinetic model, checked against closed forms written out here; ``mcsyn dose`` end to
end on small runs; the two-compartment and metabolite data; bad input naming its field.

The snapshot checks are deterministic (closed forms to ~1e-12, the metabolite ODE at rtol 1e-10 to
~1e-7); the command-line runs only check what is printed and saved, not Monte Carlo statistics."""
import math

import numpy as np
import pandas as pd
import pytest

from mcsyn import ModelError, library
from mcsyn import pharmacokinetics as pk
from mcsyn.ensemble import run_ensemble
from mcsyn.pharmacokinetics import data as pk_data
from cli_support import run, usage_error

BODY = 70.0
SMALL = ["--set", "timing.duration_ms=30", "--set", "geometry.domain_radius_um=3", "--set", "release.molecules=1000",
         "--no-progress"]
SMALL_OVERRIDES = {"timing.duration_ms": 30, "geometry.domain_radius_um": 3, "release.molecules": 1000}


def repeated_oral_brain_free(p, dose_mg, tau, n, t_abs):
    """F D ka/(V (ka - ke)) sum_k (e^-ke s_k - e^-ka s_k), s_k = t - k tau >= 0, x fu x Kp,uu."""
    ka, ke = p.absorption_rate(), math.log(2) / p.half_life_h
    v = p.volume_of_distribution_L_per_kg * BODY
    d = dose_mg * 1e-3 / p.dose_molar_mass_g_per_mol
    total = 0.0
    for k in range(n):
        s = t_abs - k * tau
        if s >= 0:
            total += p.bioavailability * d * ka / (v * (ka - ke)) * (math.exp(-ke * s) - math.exp(-ka * s))
    return total * p.free_fraction_plasma * p.brain_to_plasma_free_ratio


# ------------------------------------------------------------------ snapshots carry the PK model
def test_snapshot_conditions_carry_the_closed_form_free_brain_concentration():
    regimen = {"dose": "10 mg", "interval_h": 24, "number": 7, "body_mass_kg": BODY}
    hours = [4, "1 day", 48, "-12 h"]
    conds = pk.snapshots("escitalopram", regimen, hours_after_last_dose=hours, preset="serotonergic")
    assert [c.name for c in conds] == ["control", "4 h after the last dose", "24 h after the last dose",
                                       "48 h after the last dose", "12 h before the last dose"]
    assert conds[0].drugs == {} and conds[0].labels["drug"] == "control"
    p = pk.parameters("escitalopram")
    ki = library.drug("escitalopram").ki_M["SERT"]
    for cond, after in zip(conds[1:], (4.0, 24.0, 48.0, -12.0)):
        t_abs = 6 * 24.0 + after
        expected = repeated_oral_brain_free(p, 10.0, 24.0, 7, t_abs)
        assert cond.drugs == {"escitalopram": pytest.approx(expected, rel=1e-12)}
        assert cond.labels["hours_after_last_dose"] == after
        assert cond.labels["time_since_first_dose_h"] == t_abs
        assert cond.labels["escitalopram_M"] == cond.drugs["escitalopram"]
        assert cond.labels["SERT_occupancy"] == pytest.approx(expected / (expected + ki), rel=1e-12)
        # the built model blocks SERT by exactly the occupancy the table states
        assert cond.model.pharmacology.unavailable_fraction["SERT"] == pytest.approx(
            cond.labels["SERT_occupancy"], rel=1e-12)
    # the 12 h before the last dose are 12 h after the one before: less than 4 h after the last
    assert conds[4].drugs["escitalopram"] < conds[1].drugs["escitalopram"]


def test_snapshot_of_an_intravenous_bolus_is_the_exponential():
    reg = pk.Regimen("cocaine", route="iv_bolus", dose="0.3 mg/kg", body_mass_kg=BODY)
    table = pk.snapshot_table(reg, hours_after_last_dose=["5 min", 1, "2 h"])
    p = reg.pk()
    d = 0.3 * BODY * 1e-3 / p.dose_molar_mass_g_per_mol
    ke, v = math.log(2) / p.half_life_h, p.volume_of_distribution_L_per_kg * BODY
    t = np.array([5 / 60, 1.0, 2.0])
    np.testing.assert_allclose(table["cocaine_plasma_total_M"], d / v * np.exp(-ke * t), rtol=1e-12)
    np.testing.assert_allclose(table["cocaine_brain_free_M"], d / v * np.exp(-ke * t) * p.free_fraction_plasma,
                               rtol=1e-12)
    np.testing.assert_allclose(table["cocaine_plasma_total_ng_per_mL"],
                               d / v * np.exp(-ke * t) * p.molar_mass_g_per_mol * 1e6, rtol=1e-12)
    ki = library.drug("cocaine").ki_M["DAT"]
    c = table["cocaine_brain_free_M"]
    np.testing.assert_allclose(table["DAT_occupancy"], c / (c + ki), rtol=1e-12)


def test_fluoxetine_snapshots_count_norfluoxetine_competitively():
    """Parent and metabolite after one IV bolus: the parent is D/V e^-k t, the metabolite
    fm k D/(Vm (km - k)) (e^-k t - e^-km t) (closed forms; the package integrates the metabolite)."""
    reg = pk.Regimen("fluoxetine", route="iv_bolus", dose="20 mg", body_mass_kg=BODY)
    conds = pk.snapshots(reg, hours_after_last_dose=[24, 240], preset="serotonergic", control=False)
    p, met = reg.pk(), reg.pk().metabolites[0]
    d = 20e-3 / p.dose_molar_mass_g_per_mol
    k, km = math.log(2) / p.half_life_h, math.log(2) / met.half_life_h
    v, vm = p.volume_of_distribution_L_per_kg * BODY, met.volume_of_distribution_L_per_kg * BODY
    ki = {name: library.drug(name).ki_M["SERT"] for name in ("fluoxetine", "norfluoxetine")}
    for cond, t in zip(conds, (24.0, 240.0)):
        parent = d / v * math.exp(-k * t) * p.free_fraction_plasma * p.brain_to_plasma_free_ratio
        metabolite = (met.fraction_formed * k * d / (vm * (km - k)) * (math.exp(-k * t) - math.exp(-km * t))
                      * met.free_fraction_plasma * met.brain_to_plasma_free_ratio)
        assert set(cond.drugs) == {"fluoxetine", "norfluoxetine"}
        assert cond.drugs["fluoxetine"] == pytest.approx(parent, rel=1e-12)
        assert cond.drugs["norfluoxetine"] == pytest.approx(metabolite, rel=1e-7)
        ratio = {n: cond.drugs[n] / ki[n] for n in ki}
        both = sum(ratio.values()) / (1 + sum(ratio.values()))
        assert cond.labels["SERT_occupancy"] == pytest.approx(both, rel=1e-12)
        assert cond.model.pharmacology.unavailable_fraction["SERT"] == pytest.approx(both, rel=1e-12)
    # ten days on, the metabolite carries most of the block
    assert conds[1].drugs["norfluoxetine"] / ki["norfluoxetine"] > 3 * conds[1].drugs["fluoxetine"] / ki["fluoxetine"]


def test_a_drug_variant_keeps_its_affinities_in_the_condition():
    reg = pk.Regimen("methylphenidate@blog", dose="20 mg", body_mass_kg=BODY)
    cond = pk.snapshots(reg, [2], preset="dopaminergic_striatal", control=False)[0]
    assert list(cond.drugs) == ["methylphenidate@blog"]
    ki = library.drug("methylphenidate@blog").ki_M["DAT"]
    c = cond.drugs["methylphenidate@blog"]
    assert cond.labels["DAT_occupancy"] == pytest.approx(c / (c + ki), rel=1e-12)


def test_snapshot_conditions_run_and_keep_their_labels():
    conds = pk.snapshots("escitalopram", {"dose": "10 mg", "number": 3, "body_mass_kg": BODY}, [4, 24],
                         preset="serotonergic", **SMALL_OVERRIDES)
    result = run_ensemble(conds, n_runs=2, seed=3, progress=False)
    m = result.metrics
    assert list(dict.fromkeys(m["condition"])) == [c.name for c in conds]
    for cond in conds[1:]:
        rows = m[m["condition"] == cond.name]
        assert (rows["hours_after_last_dose"] == cond.labels["hours_after_last_dose"]).all()
        assert (rows["SERT_occupancy"] == cond.labels["SERT_occupancy"]).all()
    assert result.control == "control"


# ------------------------------------------------------------------ two compartments (data)
def test_citalopram_two_compartment_variant_is_the_sourced_disposition():
    reg = pk.Regimen("citalopram", route="iv_bolus", dose="20 mg", body_mass_kg=BODY,
                     pharmacokinetics="citalopram@two_compartment")
    disp = pk.disposition_of(reg)
    assert isinstance(disp, pk.TwoCompartment)
    assert disp.central_volume_L == pytest.approx(175.0)                     # Kragh-Sørensen 1981: 175 L
    assert disp.central_volume_L + disp.peripheral_volume_L == pytest.approx(1150.0, rel=1e-3)   # ~1150 L
    assert disp.clearance_L_per_h == pytest.approx(0.42 * 60, rel=1e-3)     # 0.42 L/min
    # the derived intercompartmental clearance gives the study's 33 h terminal half-life
    v1, v2, cl, q = (disp.central_volume_L, disp.peripheral_volume_L, disp.clearance_L_per_h,
                     disp.intercompartmental_clearance_L_per_h)
    k10, k12, k21 = cl / v1, q / v1, q / v2
    s = k10 + k12 + k21
    alpha = (s + math.sqrt(s * s - 4 * k10 * k21)) / 2
    beta = (s - math.sqrt(s * s - 4 * k10 * k21)) / 2
    assert math.log(2) / beta == pytest.approx(33.0, rel=1e-3)
    # the snapshot is the biexponential (A e^-alpha t + B e^-beta t) D / V1
    t = np.array([0.25, 4.0, 48.0])
    table = pk.snapshot_table(reg, t)
    d = 20e-3 / reg.pk().dose_molar_mass_g_per_mol
    a = (alpha - k21) / (alpha - beta)
    expected = d / v1 * (a * np.exp(-alpha * t) + (1 - a) * np.exp(-beta * t))
    np.testing.assert_allclose(table["citalopram_plasma_total_M"], expected, rtol=1e-9)
    assert pk.parameters("citalopram").two_compartment is False            # the default stays one compartment


def test_a_two_compartment_entry_needs_all_four_values(monkeypatch):
    entry = {"molar_mass_g_per_mol": 300.0, "central_volume_L_per_kg": 1.0, "clearance_L_per_h_per_kg": 1.0}
    monkeypatch.setattr(pk_data, "_load", lambda: {"cocaine": entry})
    pk_data.parameters.cache_clear()
    try:
        with pytest.raises(ModelError) as e:
            pk_data.parameters("cocaine")
        assert e.value.field == "pharmacokinetics.cocaine.peripheral_volume_L_per_kg"
    finally:
        pk_data.parameters.cache_clear()


def test_norfluoxetine_is_in_the_library_with_a_cited_sert_ki():
    nor = library.drug("norfluoxetine")
    assert nor.ki_M == {"SERT": pytest.approx(2.5e-9)}
    assert "Wong" in nor.source and "1993" in nor.source and "[V]" in nor.source
    assert library.raw("drugs")["norfluoxetine"]["sources"]["ki"].strip()
    # 1/(0.5/1.3 + 0.5/26) nM: the racemate of the two enantiomers of Wong et al. 1993
    assert 1 / (0.5 / 1.3 + 0.5 / 26) == pytest.approx(2.5, abs=0.05)
    assert pk.audit() == []


# ------------------------------------------------------------------ the figure
def test_snapshot_figure_has_human_labels_with_units():
    table = pk.snapshot_table("fluoxetine", {"dose": "20 mg", "number": 14, "body_mass_kg": BODY}, [4, 24, 48])
    fig = pk.plot_snapshots(table, n_points=200)
    top, bottom = fig.axes
    assert top.get_ylabel() == "Occupancy (%)"
    assert bottom.get_ylabel() == "Free brain\nconcentration (nM)"
    assert bottom.get_xlabel() == "Time since first dose (days)"
    assert [line.get_label() for line in bottom.get_lines()] == ["fluoxetine", "norfluoxetine"]
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert legend[0].startswith("SERT (Ki 0.81 nM, 2.5 nM)")
    assert top.get_legend().get_title().get_text() == "by fluoxetine + norfluoxetine"
    marks = [t.get_text() for t in top.texts if t.get_text().startswith("+")]
    assert marks == ["+4 h", "+24 h", "+48 h"]
    short = pk.snapshot_table("cocaine", {"route": "iv_bolus", "dose": "0.3 mg/kg", "body_mass_kg": BODY}, ["5 min"])
    fig = pk.plot_snapshots(short, n_points=50)
    assert fig.axes[1].get_xlabel() == "Time since first dose (h)"
    assert "+5 min" in [t.get_text() for t in fig.axes[0].texts]


# ------------------------------------------------------------------ the command line
def test_dose_command_end_to_end(tmp_path, capsys):
    out_dir = tmp_path / "dose"
    status, out, _ = run(["dose", "paroxetine", "20mg", "--every", "24h", "--doses", "14", "--at", "4h,24h,48h",
                          "--preset", "serotonergic", "--runs", "2", "--pk", "paroxetine@complete_absorption",
                          "--out", str(out_dir), "--plot"] + SMALL, capsys)
    assert status == 0
    head = out.split("Summary")[0]
    assert "paroxetine: 20mg oral every 24 h, 14 doses, 70 kg" in head
    assert "paroxetine@complete_absorption (one compartment)" in head
    for column in ("after last dose", "paroxetine plasma (ng/mL)", "paroxetine free brain (nM)",
                   "SERT occupancy (%)", "NET occupancy (%)", "DAT occupancy (%)"):
        assert column in head
    assert "8 runs of 4 condition(s)" in out
    assert "Against 'control'" in out and "48 h after the last dose" in out.split("Against")[1]
    saved = pd.read_csv(out_dir / "pharmacokinetics.csv")
    fields = {"dose": "20mg", "interval_h": "24h", "number": 14, "body_mass_kg": "70 kg",
              "pharmacokinetics": "paroxetine@complete_absorption"}
    expected = pk.snapshot_table("paroxetine", fields, ["4h", "24h", "48h"])
    np.testing.assert_allclose(saved["paroxetine_brain_free_M"], expected["paroxetine_brain_free_M"], rtol=1e-12)
    assert (out_dir / "plots" / "occupancy.png").stat().st_size > 0
    from mcsyn import storage
    metrics = storage.load_result(out_dir).metrics
    assert sorted(metrics["hours_after_last_dose"].dropna().unique()) == [4.0, 24.0, 48.0]


def test_dose_command_infusion_without_control_and_default_out(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, _ = run(["dose", "cocaine", "20mg/h", "--route", "iv_infusion", "--duration", "30min",
                          "--at", "10min,1h", "--preset", "dopaminergic_striatal", "--runs", "1", "--no-control",
                          "--set", "timing.duration_ms=5", "--no-progress"], capsys)
    assert status == 0 and "10 min" in out and "2 runs of 2 condition(s)" in out
    assert (tmp_path / "mcsyn-dose-cocaine" / "pharmacokinetics.csv").exists()
    assert "Against '10 min after the last dose'" in out          # without a control, against the first


@pytest.mark.parametrize("argv, words", [
    (["fluoxetine", "20mg", "--route", "intranasal"], ["--route", "regimen.route", "iv_bolus"]),
    (["fluoxetine", "20 mL"], ["DOSE", "regimen.dose", "[length] ** 3"]),
    (["fluoxetine", "20"], ["DOSE", "regimen.dose"]),
    (["fluoxetine", "20mg", "--every", "0h", "--doses", "2"], ["--every", "regimen.interval_h", "> 0"]),
    (["fluoxetine", "20mg", "--every", "-24h", "--doses", "2"], ["--every", "regimen.interval_h", "negative"]),
    (["fluoxetine", "20mg", "--every", "24", "--doses", "2"], ["--every", "regimen.interval_h", "units"]),
    (["fluoxetine", "20mg", "--doses", "3", "--at", "-49h"], ["--at", "hours_after_last_dose[0]", "first dose"]),
    (["fluoxetine", "20mg", "--at", "4h,4h"], ["--at", "twice"]),
    (["fluoxetine", "20mg", "--at", ","], ["--at", "at least one time"]),
    (["fluoxetine", "20mg", "--at", "4"], ["--at", "hours_after_last_dose[0]", "units"]),
    (["fluoxetine", "20mg", "--body-mass", "-70kg"], ["--body-mass", "regimen.body_mass_kg"]),
    (["fluoxetine", "20mg", "--duration", "1h"], ["--duration", "iv_infusion"]),
    (["fluvoxamine", "20mg"], ["DRUG", "regimen.drug", "pharmacokinetic data"]),
    (["sertraline", "50mg"], ["pharmacokinetics.sertraline.bioavailability", "no source"]),
    (["paroxetine", "20mg"], ["pharmacokinetics.paroxetine.bioavailability", "--pk paroxetine@complete_absorption"]),
    (["cocaine", "2mg/h", "--route", "iv_infusion"], ["--duration", "regimen.duration_h"]),
    (["fluoxetine", "20mg", "--pk", "fluoxetine@nope"], ["--pk", "regimen.pharmacokinetics"]),
])
def test_dose_command_bad_input_names_the_field(argv, words, tmp_path, capsys):
    err = usage_error(["dose"] + argv + ["--preset", "serotonergic", "--out", str(tmp_path / "x")], capsys)
    for word in words:
        assert word in err, (word, err)
    assert not (tmp_path / "x").exists()                            # refused before any run


# ------------------------------------------------------------------ bad input through the API
@pytest.mark.parametrize("kwargs, field", [
    ({"route": "intranasal", "dose": "20 mg"}, "regimen.route"),
    ({"dose": "20 mL"}, "regimen.dose"),
    ({"dose": "20 mg", "interval_h": 0, "number": 2}, "regimen.interval_h"),
    ({"dose": "20 mg", "interval_h": -12, "number": 2}, "regimen.interval_h"),
    ({"dose": "20 mg", "interval_h": "-12 h", "number": 2}, "regimen.interval_h"),
])
def test_bad_regimens_name_their_field(kwargs, field):
    with pytest.raises(ModelError) as e:
        pk.snapshots("fluoxetine", {**kwargs, "body_mass_kg": BODY}, [4])
    assert e.value.field == field


@pytest.mark.parametrize("hours, field", [
    ([-73], "hours_after_last_dose[0]"),          # 3 doses a day apart: the first is 48 h before the last
    ([4, "-2 days 2 h"], "hours_after_last_dose[1]"),
    ([], "hours_after_last_dose"),
    ([4, 4.0], "hours_after_last_dose"),
    (["4"], "hours_after_last_dose[0]"),
    (["soon"], "hours_after_last_dose[0]"),
    ([float("nan")], "hours_after_last_dose[0]"),
    (["4 mg"], "hours_after_last_dose[0]"),
])
def test_snapshot_times_before_the_first_dose_or_malformed_are_refused(hours, field):
    reg = pk.Regimen("fluoxetine", dose="20 mg", number=3, body_mass_kg=BODY)
    with pytest.raises(ModelError) as e:
        pk.snapshot_table(reg, hours)
    assert e.value.field == field
    assert pk.snapshot_table(reg, [-48])["time_since_first_dose_h"].iloc[0] == 0.0     # the first dose itself


def test_a_regimen_for_a_drug_without_pharmacokinetics_is_refused():
    with pytest.raises(ModelError) as e:
        pk.snapshots("fluvoxamine", {"dose": "50 mg", "body_mass_kg": BODY}, [4])
    assert e.value.field == "regimen.drug" and "pharmacokinetic data" in str(e.value)
    with pytest.raises(ModelError) as e:
        pk.snapshots("amphetamine", {"dose": "10 mg", "body_mass_kg": BODY}, [4])
    assert e.value.field.startswith("pharmacokinetics.amphetamine.")
    with pytest.raises(ModelError) as e:
        pk.snapshots(pk.Regimen("fluoxetine", dose="20 mg", body_mass_kg=BODY), {"dose": "10 mg"}, [4])
    assert e.value.field == "regimen"
    with pytest.raises(ModelError) as e:
        pk.snapshots("fluoxetine", {"drug": "paroxetine", "dose": "10 mg", "body_mass_kg": BODY}, [4])
    assert e.value.field == "regimen.drug"


def test_the_meyer_fluoxetine_row_counts_norfluoxetine():
    from mcsyn.pharmacokinetics import pet
    row = pet.meyer_ssri_sert().set_index("drug").loc["fluoxetine"]
    assert row["ligands"] == "fluoxetine + norfluoxetine" and row["computed"]
    reg = pk.Regimen("fluoxetine", dose="20.0 mg", number=28, body_mass_kg=BODY)
    last_day = np.linspace(27 * 24.0, 28 * 24.0, 241)
    occ = pk.occupancy(reg, last_day, mode="equilibrium", targets=["SERT"])
    total = occ.groupby("time_h")["occupancy"].sum().to_numpy()
    assert row["predicted_trough"] == pytest.approx(total.min(), rel=1e-12)
    assert row["predicted_peak"] == pytest.approx(total.max(), rel=1e-12)
    assert total.min() <= row["predicted_occupancy"] <= total.max()
    parent_only = pk.steady_state(reg).average_brain_free_M
    ki = library.drug("fluoxetine").ki_M["SERT"]
    assert row["predicted_occupancy"] > parent_only / (parent_only + ki)    # the metabolite adds block
