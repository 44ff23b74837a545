"""Drug concentrations that change during a run (mcsyn.drug_schedule, mcsyn.rate_schedule and the
kernel's time-stamped rate changes, ext/schedule.pxi).

Physics: with no transmitter about, each DAT site is an independent two-state chain, ground ⇌
blocked at kon·C(t) and koff. After a step of C at T its blocked probability is
θ(t) = θ∞ + (θ0 − θ∞) e^{−(t−T)/τ}, θ∞ = C/(C + Ki), τ = 1/(kon·C + koff), so the blocked count
over N sites and R runs is binomial(N·R, θ(t)): the tests compare the ensemble's blocked fraction
with θ(t) at several times within 5 binomial standard errors, for membrane sites and for volume
sites (the aggregate clock of their ground state), on and off (a return to C = 0 washes out with
τ = 1/koff). The drug is a custom fast blocker (Ki 100 nM, koff 200 s⁻¹: TEST VALUES, no
source) so that a run of tens of ms shows several time constants.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import mcsyn
from mcsyn import ModelError
from mcsyn.config import SynapseConfig, dumps, loads
from mcsyn.drug_schedule import DrugSchedule, parse_schedule
from mcsyn.drugs import apply_drugs
from mcsyn import presets

KI_M, KOFF_PER_S = 100e-9, 200.0
KON_PER_M_PER_S = KOFF_PER_S / KI_M
FAST = {"fastblocker": {"class": "test", "mechanism": "blocker", "ki": {"DAT": KI_M}, "koff_per_s": KOFF_PER_S,
                        "source": "test values"}}
STATE = "DAT:blocked:fastblocker"
N_SE = 5.0


def _species():
    # the second species binds nothing: one inert molecule satisfies "the model releases" without
    # disturbing the sites
    return [mcsyn.Species("dopamine", 0.76), mcsyn.Species("inert", 0.76)]


def _dat():
    return mcsyn.transporter_cycle("DAT", "dopamine", 1e7, 10.0, 5.0, 2.0)


def membrane_model(duration_ms, n_sites=400, release=None):
    return mcsyn.SynapseModel(
        species=_species(), geometry=mcsyn.Geometry(outside="closed"),
        sites=[mcsyn.SiteGroup(_dat(), "presynaptic", count=n_sites, name="DAT")],
        releases=[release or mcsyn.Release(molecules=1, species="inert")],
        timing=mcsyn.Timing(duration_ms=duration_ms, dt_fine_us=1.0, sample_interval_us=100.0))


def volume_model(duration_ms, density_per_um3=100.0, release=None):
    return mcsyn.SynapseModel(
        species=_species(),
        geometry=mcsyn.Geometry(outside="volume", domain_radius_um=2.0, domain_boundary="reflecting"),
        sites=[mcsyn.SiteGroup(_dat(), "volume", density_per_um3=density_per_um3, name="DAT")],
        releases=[release or mcsyn.Release(molecules=1, species="inert", into="volume")],
        timing=mcsyn.Timing(duration_ms=duration_ms, dt_fine_us=1.0, dt_volume_us=10.0, sample_interval_us=100.0))


def with_schedule(model, schedule, mode="acute"):
    drugged, _ = apply_drugs(model, {"fastblocker": schedule}, mode, custom_drugs=FAST)
    return drugged


def blocked_counts(ens):
    """(blocked sites per run and sample, sites per run)."""
    cols = ens.columns
    states = [i for i, c in enumerate(cols) if c.startswith("DAT:") and c.count(":") >= 1
              and c.split(":", 1)[1] in ("T", "TS", "Ti", "blocked:fastblocker")]
    total = ens.series[:, 0, states].sum(axis=1)
    assert np.all(total == total[0])
    return ens.series[:, :, cols.index(STATE)], int(total[0])


def theta_step(t_after_ms, c_M, theta0):
    rate_on = KON_PER_M_PER_S * c_M
    tau_ms = 1e3 / (rate_on + KOFF_PER_S)
    theta_inf = rate_on / (rate_on + KOFF_PER_S)
    return theta_inf + (theta0 - theta_inf) * math.exp(-t_after_ms / tau_ms)


def assert_follows(ens, checks):
    """``checks``: [(time_ms, expected θ)]; each within N_SE binomial standard errors."""
    blocked, n = blocked_counts(ens)
    runs = blocked.shape[0]
    for t_ms, theta in checks:
        k = int(round(t_ms / 0.1))
        assert abs(ens.times_ms[k] - t_ms) < 1e-9
        observed = blocked[:, k].sum() / (n * runs)
        se = math.sqrt(theta * (1 - theta) / (n * runs))
        assert abs(observed - theta) <= N_SE * se, (t_ms, observed, theta, se)


# ----------------------------------------------------------------------------- wash-in and wash-out

STEP = "0 s: 0 nM; 2 ms: 300 nM; 12 ms: 0 nM"     # on at 2 ms (τ = 1.25 ms), off at 12 ms (τ = 5 ms)


def _on_off_checks():
    c = 300e-9
    on = [(2.0 + dt, theta_step(dt, c, 0.0)) for dt in (0.3, 0.6, 1.2, 2.5, 5.0, 9.9)]
    theta_off = theta_step(10.0, c, 0.0)
    off = [(12.0 + dt, theta_step(dt, 0.0, theta_off)) for dt in (1.0, 2.5, 5.0, 10.0, 17.9)]
    return on, off


def test_step_on_and_off_membrane_sites():
    ens = mcsyn.run(with_schedule(membrane_model(30.0), STEP), n_runs=40, seed=11)
    blocked, _ = blocked_counts(ens)
    assert not blocked[:, :21].any()          # drug-free until the step at 2 ms (sample 20 is 2.0 ms)
    on, off = _on_off_checks()
    assert_follows(ens, on + off)


def test_step_on_and_off_volume_sites():
    ens = mcsyn.run(with_schedule(volume_model(30.0), STEP), n_runs=6, seed=12)
    blocked, n = blocked_counts(ens)
    assert n > 2000
    assert not blocked[:, :21].any()
    on, off = _on_off_checks()
    assert_follows(ens, on + off)


@pytest.mark.parametrize("make", [membrane_model, volume_model], ids=["membrane", "volume"])
def test_step_from_one_equilibrium_to_another(make):
    # kinetic mode starts at the equilibrium of C(0) = Ki (θ0 = 1/2); the step to 9·Ki must
    # redraw the clocks that were running at the old rate (τ = 0.5 ms, θ∞ = 0.9)
    schedule = DrugSchedule((0.0, 2e-3), (KI_M, 9 * KI_M))
    ens = mcsyn.run(with_schedule(make(6.0), schedule, mode="kinetic"), n_runs=40 if make is membrane_model else 6,
                    seed=13)
    checks = [(t, 0.5) for t in (0.5, 1.5, 2.0)]
    checks += [(2.0 + dt, theta_step(dt, 9 * KI_M, 0.5)) for dt in (0.1, 0.3, 0.6, 1.0, 2.0, 3.9)]
    assert_follows(ens, checks)


def test_sites_and_molecules_are_conserved_with_transmitter_present():
    release = mcsyn.Release(molecules=2000, species="dopamine")
    # ~0.7 sites are still blocked per run at the end (200 runs), so 3 runs hold none 1 time in 10:
    # 12 runs make the "some are blocked" precondition fail once in ~6,000 seeds
    ens = mcsyn.run(with_schedule(membrane_model(8.0, release=release), "0 s: 0 nM; 1 ms: 1 uM; 4 ms: 20 nM"),
                    n_runs=12, seed=14)
    s = {c: ens.series[:, :, i] for i, c in enumerate(ens.columns)}
    blocked_counts(ens)       # sites: every sample holds them all
    assert np.array_equal(s["released"], s["free"] + s["bound"] + s["taken_up"] + s["escaped"] + s["degraded"])
    assert s[STATE][:, -1].sum() > 0 and s["taken_up"][:, -1].min() > 0


def test_no_schedule_changes_nothing_in_the_kernel_model():
    plain = mcsyn.compile_model(membrane_model(5.0)).kernel
    assert plain.rate_change_time_us.size == 0
    drugged = with_schedule(membrane_model(5.0), "0 s: 30 nM", mode="kinetic")
    assert drugged.rate_schedules == []
    assert mcsyn.compile_model(drugged).kernel.rate_change_time_us.size == 0


def test_kernel_table():
    m = with_schedule(membrane_model(5.0), STEP.replace("12 ms", "4 ms"))
    (r,) = m.rate_schedules
    assert (r.group, r.source, r.target, r.times_ms) == ("DAT", "T", "blocked:fastblocker", (2.0, 4.0))
    assert r.rates_per_s == pytest.approx((KON_PER_M_PER_S * 300e-9, 0.0))
    k = mcsyn.compile_model(m).kernel
    assert list(k.rate_change_time_us) == [2000.0, 4000.0]
    row = k.rate_change_exit[0]
    assert k.exit_to[row] == 3 and k.exit_kind[row] == mcsyn.compile.EXIT_CODES["first_order"]
    assert k.rate_change_per_us == pytest.approx([KON_PER_M_PER_S * 300e-9 * 1e-6, 0.0])


# ----------------------------------------------------------------------------- forms, round trip

def test_forms_agree():
    text = parse_schedule("0 s: 0 nM; 2 ms: 300 nM; 12 ms: 0 uM", "x", "drugs.x", 0.03)
    table = parse_schedule({"times_s": [0, 0.002, 0.012], "concentrations_M": [0, 3e-7, 0]}, "x", "drugs.x", 0.03)
    units = parse_schedule({"times": ["0 s", "2 ms", "12 ms"], "concentrations": ["0 M", "300 nM", "0 nM"]},
                           "x", "drugs.x", 0.03)
    assert text.times_s == table.times_s == units.times_s
    assert text.concentrations_M == pytest.approx(table.concentrations_M) == units.concentrations_M
    assert text.concentration_M([0.0, 0.0019, 0.002, 0.02]) == pytest.approx([0, 0, 3e-7, 0])


def test_configuration_round_trip():
    schedule = DrugSchedule((0.0, 0.05, 0.12), (0.0, 1.0 / 3.0 * 1e-6, 0.0))
    cfg = SynapseConfig(preset="dopaminergic", mode="acute", drugs={"cocaine": schedule})
    again = loads(dumps(cfg))
    assert again == cfg and again.drugs["cocaine"]["concentrations_M"][1] == 1.0 / 3.0 * 1e-6
    model = cfg.build()
    assert model.rate_schedules and model.config is not None
    rebuilt = loads(dumps(model.config)).build()
    assert rebuilt.rate_schedules == model.rate_schedules
    assert rebuilt.fingerprint() == model.fingerprint()


def test_a_toml_schedule_builds():
    cfg = loads('preset = "dopaminergic"\nmode = "kinetic"\n[drugs]\ncocaine = "0 s: 100 nM; 50 ms: 1 uM"\n')
    model = cfg.build()
    (r,) = model.rate_schedules
    assert r.times_ms == (50.0,) and r.rates_per_s[0] == pytest.approx(0.5 / 0.45e-6 * 1e-6)
    assert model.pharmacology.concentrations_M["cocaine"] == pytest.approx(1e-7)
    assert loads(dumps(model.config)).build().rate_schedules == model.rate_schedules


def test_regimen_schedule_follows_the_pharmacokinetics():
    from mcsyn.pharmacokinetics import Regimen
    from mcsyn.pharmacokinetics.models import brain_free_function
    table = {"regimen": {"route": "iv_infusion", "rate": "0.03 mg/kg/s", "duration_h": "10 s",
                         "start_h": "2 s", "body_mass_kg": 70}, "step_s": 0.5}
    schedule = parse_schedule(table, "cocaine", "drugs.cocaine", 20.0)
    assert schedule.initial_M == 0.0 and 2.0 in schedule.times_s and 12.0 in schedule.times_s
    free = brain_free_function(Regimen("cocaine", route="iv_infusion", rate="0.03 mg/kg/s", duration_h="10 s",
                                       start_h="2 s", body_mass_kg=70))
    assert schedule.concentration_M(7.1) == pytest.approx(free(7.25 / 3600)[0])
    assert 1e-7 < max(schedule.concentrations_M) < 1e-5
    cfg = SynapseConfig(preset="dopaminergic", mode="acute", drugs={"cocaine": table},
                        overrides={"timing": {"duration_ms": 20000}})
    assert loads(dumps(cfg)) == cfg


# ----------------------------------------------------------------------------- refused

@pytest.mark.parametrize("value, field", [
    ("0 s: 0 nM; 2 ms: 3 nM; 1 ms: 1 nM", r"drugs\.fastblocker\.times_s\[2\]"),
    ("1 ms: 3 nM", r"drugs\.fastblocker\.times_s\[0\]"),
    ("0: 3 nM", r"drugs\.fastblocker\[0\]\.time"),
    ("0 s: 3", r"drugs\.fastblocker\[0\]\.concentration"),
    ("0 s: 3 mg", r"drugs\.fastblocker\[0\]\.concentration"),
    ("0 s: -3 nM", r"drugs\.fastblocker\[0\]\.concentration"),
    ("0 s: 0 nM; 5 ms: 3 nM", r"drugs\.fastblocker\.times_s\[1\]"),            # the run lasts 5 ms
    ("0 s: 0 nM; 2 ms", r"drugs\.fastblocker\[1\]"),
    ({"times_s": [0, float("nan")], "concentrations_M": [0, 1e-9]}, r"drugs\.fastblocker\.times_s"),
    ({"times_s": [0, 1e-3], "concentrations_M": [0, float("inf")]}, r"drugs\.fastblocker\.concentrations_M"),
    ({"times_s": [0, 1e-3], "concentrations_M": [0]}, r"drugs\.fastblocker\.concentrations_M"),
    ({"times_s": [0], "concentrations": [1e-9]}, r"drugs\.fastblocker\.concentrations\[0\]"),
    ({"times_s": [0], "concentration_M": [1e-9]}, r"drugs\.fastblocker\.concentration_M"),
    ({"regimen": {"route": "iv_bolus", "dose": "20 mL"}, "step_s": 0.1}, r"drugs\.fastblocker\.regimen"),
])
def test_bad_schedules_are_refused_naming_the_field(value, field):
    with pytest.raises(ModelError, match=field):
        with_schedule(membrane_model(5.0), value)


def test_schedules_need_binding_kinetics():
    with pytest.raises(ModelError, match=r"^mode = 'equilibrium'"):
        with_schedule(membrane_model(5.0), STEP.replace("12 ms", "4 ms"), mode="equilibrium")
    slow = {"slowblocker": {k: v for k, v in FAST["fastblocker"].items() if k != "koff_per_s"}}
    with pytest.raises(ModelError, match=r"^drugs\.slowblocker"):
        apply_drugs(membrane_model(5.0), {"slowblocker": "0 s: 0 nM; 1 ms: 1 nM"}, "acute", custom_drugs=slow)


def test_bad_rate_schedules_are_refused_naming_the_field():
    base = with_schedule(membrane_model(5.0), "0 s: 0 nM; 2 ms: 300 nM")
    cases = [(dict(group="NET"), r"rate_schedules\[0\]\.group"),
             (dict(target="TS"), r"rate_schedules\[0\]\.target"),
             (dict(source="X"), r"rate_schedules\[0\]\.source"),
             (dict(times_ms=(0.0,)), r"rate_schedules\[0\]\.times_ms\[0\]"),
             (dict(times_ms=(2.0, 1.0), rates_per_s=(1.0, 2.0)), r"rate_schedules\[0\]\.times_ms\[1\]"),
             (dict(rates_per_s=(-1.0,)), r"rate_schedules\[0\]\.rates_per_s\[0\]"),
             (dict(rates_per_s=(1.0, 2.0)), r"rate_schedules\[0\]\.rates_per_s")]
    for change, field in cases:
        bad = dataclasses.replace(base, rate_schedules=[dataclasses.replace(base.rate_schedules[0], **change)])
        with pytest.raises(ModelError, match=field):
            bad.validate()
    twice = dataclasses.replace(base, rate_schedules=base.rate_schedules * 2)
    with pytest.raises(ModelError, match=r"rate_schedules\[1\]"):
        twice.validate()
    vol = with_schedule(volume_model(5.0), "0 s: 0 nM; 2 ms: 300 nM")
    away = dataclasses.replace(vol, rate_schedules=[mcsyn.RateSchedule("DAT", "Ti", "T", (1.0,), (5.0,))])
    with pytest.raises(ModelError, match=r"rate_schedules\[0\]\.source.*ground state"):
        away.validate()


def test_a_schedule_is_a_treatment_of_make_conditions_and_survives_save_and_resume(tmp_path):
    from mcsyn.ensemble import make_conditions, run_ensemble
    conds = make_conditions("dopaminergic_striatal", [{}, {"cocaine": "0 s: 0 nM; 5 ms: 300 nM"}], mode="kinetic")
    assert [c.name for c in conds] == ["control", "cocaine (schedule)"]
    assert math.isnan(conds[1].labels["dose_M"])
    assert conds[1].model.rate_schedules and not conds[0].model.rate_schedules
    first = run_ensemble(conds, n_runs=2, seed=3, progress=False, out=tmp_path / "r")
    assert mcsyn.load_result(tmp_path / "r") == first
    assert run_ensemble(conds, n_runs=2, seed=3, progress=False, out=tmp_path / "r", resume=True) == first


def test_the_mean_field_model_refuses_a_schedule():
    from mcsyn.meanfield import mean_field
    model = presets.build("dopaminergic_striatal", drugs={"cocaine": "0 s: 0 nM; 5 ms: 300 nM"}, mode="kinetic")
    with pytest.raises(ModelError, match="rate_schedules"):
        mean_field(model)
