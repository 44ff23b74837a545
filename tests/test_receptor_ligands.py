"""Receptor ligands (mcsyn.mechanisms: antagonist, inverse agonist, full and partial agonist):
competitive occupancy at the receptors, activation weighted by efficacy, currents through
agonist-bound channels, the library entries and bad input.

Stochastic checks use fixed seeds and tolerances of Z = 4.5 standard errors derived from the
variance: binomial for the drawn drug-bound fraction of sites, run-to-run for peak responses.
Each stochastic check also asserts that its standard error is small next to the effect it tests,
so that a wrong mechanism (no block, or efficacy ignored) cannot pass inside the tolerance.

The closed forms assume that the receptors do not change the transmitter's concentration field
(a few percent of the released glutamate binds AMPA receptors at the peak): then each free
receptor responds as in the control, and an equilibrium block of θ removes θ of the response."""
import dataclasses
import math

import numpy as np
import pytest

import mcsyn
from mcsyn import ModelError, drugs, electrophysiology as ep, library
from mcsyn.schemes import KineticScheme, one_site_receptor

Z = 4.5
N_RUNS = 150
AMPA_KI_M = 1e-6                     # a hypothetical AMPA ligand: the test needs no library value
SMALL = {"geometry.domain_radius_um": 4.0, "timing.duration_ms": 1.0}     # site draws only


def ampa_ligand(mechanism: str, efficacy: float | None = None) -> dict:
    d = {"class": "test ligand", "mechanism": mechanism, "ki": {"AMPA": AMPA_KI_M}, "source": "test"}
    if efficacy is not None:
        d["efficacy"] = {"AMPA": efficacy}
    return d


def glutamatergic(drug: dict | None = None, concentration_M: float = AMPA_KI_M, clamp=None):
    custom = {"ligand": drug} if drug else None
    model = mcsyn.presets.build("glutamatergic", drugs={"ligand": concentration_M} if drug else None,
                                custom_drugs=custom)
    return dataclasses.replace(model, clamp=clamp) if clamp is not None else model


def ensemble(model, seed: int):
    cm = mcsyn.compile_model(model)
    return cm, mcsyn.run(cm, n_runs=N_RUNS, seed=seed, workers=1)


def column(ens, name):
    return ens.series[:, :, ens.columns.index(name)]


def mean_se(x):
    x = np.asarray(x, dtype=float)
    return x.mean(), x.std(ddof=1) / math.sqrt(len(x))


# ------------------------------------------------------------------ antagonists

def test_antagonist_reduces_peak_ampa_activation_by_the_competitive_fraction():
    """Equilibrium block: the fraction of receptors left to the transmitter is 1/(1 + C/Ki), so the
    mean peak of open AMPA receptors falls by that factor (here C = 3 Ki: to 1/4)."""
    c = 3 * AMPA_KI_M
    available = 1.0 / (1.0 + c / AMPA_KI_M)
    _, control = ensemble(glutamatergic(), seed=21)
    _, blocked = ensemble(glutamatergic(ampa_ligand("antagonist"), c), seed=22)
    m_c, se_c = mean_se(column(control, "AMPA:open").max(axis=1))
    m_b, se_b = mean_se(column(blocked, "AMPA:open").max(axis=1))
    se = math.hypot(se_b, available * se_c)
    assert se < 0.05 * (1 - available) * m_c            # the test can tell a block from no block
    assert abs(m_b - available * m_c) < Z * se, (m_b, available * m_c, se)
    assert np.all(column(blocked, "AMPA:blocked:ligand")[:, 0] > 0)


def test_inverse_agonist_acts_as_a_neutral_antagonist():
    """Without constitutive activity in the scheme an inverse agonist is an antagonist: the same
    scheme, the same drawn sites, the same run."""
    a = glutamatergic(ampa_ligand("antagonist"))
    b = glutamatergic(ampa_ligand("inverse_agonist"))
    ga, gb = (next(g for g in m.sites if g.label == "AMPA") for m in (a, b))
    assert ga.scheme.states == gb.scheme.states and ga.scheme.transitions == gb.scheme.transitions
    assert ga.initial_state_fractions == gb.initial_state_fractions
    assert gb.scheme.activation_weights() == {"O": 1.0}
    ra, rb = mcsyn.run_one(a, seed=3), mcsyn.run_one(b, seed=3)
    assert ra.series.equals(rb.series)


def test_library_antagonists_bind_their_receptor_only():
    m = mcsyn.presets.build("serotonergic", drugs={"WAY-100635": "1.1 nM"}, **SMALL)
    assert m.pharmacology.occupancy == {"5-HT1A": {"WAY-100635": pytest.approx(0.5)}}
    g = next(g for g in m.sites if g.label == "5-HT1A")
    assert "blocked:WAY-100635" in g.scheme.states and g.scheme.activation_weights() == {"AR": 1.0}
    m = mcsyn.presets.build("dopaminergic_striatal", drugs={"raclopride": "1.2 nM"}, **SMALL)
    assert m.pharmacology.occupancy == {"D2": {"raclopride": pytest.approx(0.5)}}


def test_kinetic_antagonist_binds_at_kon_c_and_unbinds_at_koff():
    """raclopride has a dissociation rate (Köhler et al. 1985): kon = koff/Ki, from the ground state."""
    d = library.drug("raclopride")
    c = 2.4e-9
    m = mcsyn.presets.build("dopaminergic_striatal", drugs={"raclopride": c}, mode="kinetic", **SMALL)
    g = next(g for g in m.sites if g.label == "D2")
    rates = {(t.source, t.target): t.rate for t in g.scheme.transitions if t.kind == "first_order"}
    assert rates[("R", "blocked:raclopride")] == pytest.approx(d.koff_per_s / d.ki_M["D2"] * c)
    assert rates[("blocked:raclopride", "R")] == pytest.approx(d.koff_per_s)
    assert g.initial_state_fractions["blocked:raclopride"] == pytest.approx(2 / 3)


# ------------------------------------------------------------------ agonists

def test_partial_agonist_alone_activates_efficacy_times_occupancy():
    """aripiprazole at D2 (ε = 0.25, Burris et al. 2002) at C = 3 Ki: θ = 3/4 of the sites bound,
    activation ε·θ; the drawn bound count is binomial."""
    d = library.drug("aripiprazole")
    eps, ki = d.efficacy["D2"], d.ki_M["D2"]
    theta = 0.75
    m = mcsyn.presets.build("dopaminergic_striatal", drugs={"aripiprazole": 3 * ki}, **SMALL)
    cm = mcsyn.compile_model(m)
    n = cm.site_count(next(g for g in m.sites if g.label == "D2"))
    r = mcsyn.run_one(cm, seed=5)
    start = drugs.activation(r, m)["D2"][0]             # the first sample: before any release
    se = eps * math.sqrt(theta * (1 - theta) / n)
    assert se < 0.05 * eps * theta
    assert abs(start - eps * theta) < Z * se, (start, eps * theta, se)
    assert abs(start - theta) > 100 * se                # a full agonist's activation is ruled out


def test_partial_agonist_competes_with_glutamate_at_ampa():
    """An AMPA partial agonist (ε = 0.3) at C = Ki under a -70 mV clamp: each run's current is the
    drug-bound channels' constant ε·γ·(V − E) plus the transmitter's current from the 1 − θ free
    receptors, so the mean peak is ε·θ·N·γ·(V − E) + (1 − θ)·(control mean peak)."""
    eps, theta = 0.3, 0.5
    clamp = ep.VoltageClamp(-70.0, 1.0)
    cm_c, control = ensemble(glutamatergic(clamp=clamp), seed=31)
    cm_d, dosed = ensemble(glutamatergic(ampa_ligand("agonist", eps), clamp=clamp), seed=32)
    ampa = next(g for g in cm_d.model.sites if g.label == "AMPA")
    n = cm_d.site_count(ampa)
    gamma = dict(library.receptor("AMPA").conductance_pS)["O"]
    drug_pA = eps * theta * n * gamma * (-70.0 - 0.0) * 1e-3
    peak_c = ep.ensemble_currents(control, clamp)["AMPA:current_pA"].min(axis=1)
    peak_d = ep.ensemble_currents(dosed, clamp)["AMPA:current_pA"].min(axis=1)
    m_c, se_c = mean_se(peak_c)
    m_d, se_d = mean_se(peak_d)
    expect = drug_pA + (1 - theta) * m_c
    se = math.hypot(se_d, (1 - theta) * se_c)
    assert se < 0.05 * abs(drug_pA)                      # the test can tell a partial agonist from an antagonist
    assert abs(m_d - expect) < Z * se, (m_d, expect, se)
    # with a full agonist at the same occupancy the mean peak would lie far outside the tolerance
    assert abs(m_d - (drug_pA / eps + (1 - theta) * m_c)) > 10 * se


def test_current_includes_the_agonist_bound_open_state_sample_by_sample():
    clamp = ep.VoltageClamp(-60.0, 1.0)
    eps = 0.4
    m = glutamatergic(ampa_ligand("agonist", eps), clamp=clamp)
    g = next(g for g in m.sites if g.label == "AMPA")
    assert g.scheme.open_states == ("O", "agonist:ligand")
    assert g.scheme.activation_weights() == {"O": 1.0, "agonist:ligand": eps}
    r = mcsyn.run_one(m, seed=7)
    s = r.series
    assert s["AMPA:agonist:ligand"].iloc[0] > 0
    gamma = dict(library.receptor("AMPA").conductance_pS)["O"]
    expect = (s["AMPA:O"] + eps * s["AMPA:agonist:ligand"]) * gamma * (-60.0 - 0.0) * 1e-3
    np.testing.assert_allclose(s["AMPA:current_pA"], expect, rtol=1e-12)
    assert s["current_pA"].iloc[0] < 0                  # the drug alone passes an inward current


def test_full_agonist_at_a_gpcr_is_an_active_state():
    m = mcsyn.presets.build("serotonergic", drugs={"8-OH-DPAT": "0.75 nM"}, **SMALL)
    g = next(g for g in m.sites if g.label == "5-HT1A")
    assert g.scheme.activation_weights() == {"AR": 1.0, "agonist:8-OH-DPAT": 1.0}
    assert g.initial_state_fractions["agonist:8-OH-DPAT"] == pytest.approx(0.5)
    r = mcsyn.run_one(m, seed=1)
    assert drugs.blocked_fractions(r, m)["5-HT1A:agonist:8-OH-DPAT"] == pytest.approx(
        drugs.activation(r, m)["5-HT1A"][0], abs=1e-12)


def test_agonist_and_antagonist_compete_for_the_same_sites():
    m = mcsyn.presets.build("serotonergic", drugs={"8-OH-DPAT": "0.75 nM", "WAY-100635": "2.2 nM"}, **SMALL)
    theta = m.pharmacology.occupancy["5-HT1A"]
    assert theta["8-OH-DPAT"] == pytest.approx(1 / 4) and theta["WAY-100635"] == pytest.approx(2 / 4)


def test_state_efficacy_survives_a_copy_and_weights_default_to_open_states():
    s = one_site_receptor("D2", "dopamine", 3e6, 0.3)
    assert s.activation_weights() == {"AR": 1.0}
    s.add_state("agonist:x")
    s.set_efficacy("agonist:x", 0.2)
    c = s.copy()
    assert c.state_efficacy == {"agonist:x": 0.2} and c.open_states == ("AR", "agonist:x")
    c.set_efficacy("agonist:x", 0.0)
    assert c.open_states == ("AR",) and s.open_states == ("AR", "agonist:x")


# ------------------------------------------------------------------ library and bad input

def test_library_ligands_carry_sourced_ki_and_efficacy():
    assert library.audit() == []
    assert library.drug("aripiprazole").efficacy == {"D2": 0.25}
    assert library.drug("8-OH-DPAT").efficacy == {"5-HT1A": 1.0}
    assert library.drug("raclopride").ki_M == {"D2": pytest.approx(1.2e-9)}
    assert library.drug("WAY100635").ki_M == {"5-HT1A": pytest.approx(1.1e-9)}
    for name in ("raclopride", "aripiprazole", "8-OH-DPAT", "WAY-100635"):
        assert "[V]" in library.drug(name).source


@pytest.mark.parametrize("entry, field", [
    (ampa_ligand("agonist", 1.5), "drugs.bad.efficacy.AMPA"),
    (ampa_ligand("agonist", -0.1), "drugs.bad.efficacy.AMPA"),
    (ampa_ligand("agonist", True), "drugs.bad.efficacy.AMPA"),
    (ampa_ligand("agonist"), "drugs.bad.efficacy"),
    ({**ampa_ligand("agonist", 0.5), "efficacy": {"AMPA": 0.5, "NMDA": 0.5}}, "drugs.bad.efficacy.NMDA"),
    ({**ampa_ligand("agonist", 0.5), "efficacy": {"AMPA": 0.5, "nonsense": 0.5}}, "drugs.bad.efficacy.nonsense"),
    (ampa_ligand("antagonist", 0.5), "drugs.bad.efficacy"),
    ({"mechanism": "blocker", "ki": {"SERT": "1 nM"}, "efficacy": {"SERT": 1.0}}, "drugs.bad.efficacy"),
    ({"mechanism": "antagonist", "ki": {"SERT": "1 nM"}}, "drugs.bad.ki.SERT"),
    ({**ampa_ligand("antagonist"), "off_targets": {"D2": "1 nM"}}, "drugs.bad.off_targets"),
])
def test_bad_ligand_input_names_the_field(entry, field):
    with pytest.raises(ModelError) as err:
        library.Drug.from_dict("bad", entry)
    assert err.value.field == field


def test_bad_state_efficacy_names_the_field():
    s = one_site_receptor("D2", "dopamine", 3e6, 0.3)
    with pytest.raises(ModelError, match=r"state_efficacy\.AR"):
        s.set_efficacy("AR", 2.0)
    with pytest.raises(ModelError, match=r"state_efficacy"):
        s.set_efficacy("nonsense", 0.5)
    with pytest.raises(ModelError, match=r"state_efficacy\.AR"):
        KineticScheme("x", ["R", "AR"], ("AR",), state_efficacy={"AR": float("nan")})


def test_agonist_at_a_channel_with_several_conductance_levels_is_refused():
    clamp = ep.VoltageClamp(-60.0, 1.0)
    m = glutamatergic(ampa_ligand("agonist", 0.5), clamp=clamp)
    two_levels = dataclasses.replace(library.receptor("AMPA"), conductance_pS=(("O", 10.0),), name="AMPA")
    ep.channels(m, clamp, receptors={"AMPA": two_levels})            # one level: accepted
    g = next(g for g in m.sites if g.label == "AMPA")
    g.scheme.add_state("O2")
    g.scheme.set_efficacy("O2", 1.0)
    two_levels = dataclasses.replace(two_levels, conductance_pS=(("O", 10.0), ("O2", 20.0)))
    with pytest.raises(ModelError, match=r"receptors\.AMPA\.conductance_pS"):
        ep.channels(m, clamp, receptors={"AMPA": two_levels})


def test_a_ligand_at_a_receptor_the_synapse_lacks_has_no_effect_with_a_warning():
    with pytest.warns(drugs.PharmacologyWarning, match="aripiprazole"):
        mcsyn.presets.build("glutamatergic", drugs={"aripiprazole": "1 nM"})
