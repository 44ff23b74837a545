"""Drug mechanisms: competitive occupancy, clearance, SNRI ratio, cocaine, amphetamine efflux, MAOI,
kinetic modes, autoreceptor feedback, chronic adaptation and bad input.

Statistical checks use fixed seeds and tolerances of 4.5 standard errors derived from the variance
(binomial for site draws, run-to-run for clearance rates, Poisson for efflux counts)."""
import dataclasses
import math

import numpy as np
import pytest

import mcsyn
from mcsyn import ModelError, drugs, library, presets
from mcsyn.drugs import PharmacologyWarning

Z = 4.5
SMALL = {"geometry.domain_radius_um": 3.0, "timing.duration_ms": 1.0}     # site draws only
# clearance estimates: a 5 um domain is enough (the estimator does not depend on escape) and a
# 1000-molecule release keeps the SERT/NET presets in the linear (low-concentration) regime; the
# full 5000-molecule 5-HT quantum locally saturates SERT near the release site (~2% slower uptake)
CLEAR = {"geometry.domain_radius_um": 5.0, "release.molecules": 1000}


def site_count(model, label):
    cm = mcsyn.compile_model(model)
    return cm.site_count(next(g for g in model.sites if g.label == label))


def drawn_fraction(model, label, state, seed=0):
    r = mcsyn.run_one(model, seed=seed)
    return drugs.blocked_fractions(r, model)[f"{label}:{state}"]


def clearance(model, n_runs, seed):
    cm = mcsyn.compile_model(model)
    k = np.array([drugs.clearance_rate_estimate(mcsyn.run_one(cm, seed=seed, run_index=i), model)
                  for i in range(n_runs)])
    return k.mean(), k.std(ddof=1) / math.sqrt(n_runs)


# ------------------------------------------------------------------ occupancy formula

def test_occupancy_follows_the_competitive_formula_for_one_drug():
    ki = library.drug("fluoxetine").ki_M["SERT"]
    for c in (0.5 * ki, ki, 4 * ki, 20 * ki):
        assert drugs.occupancy("fluoxetine", "SERT", c) == pytest.approx(c / (c + ki))
    assert drugs.occupancy("fluoxetine", "SERT", "3.24 nM") == pytest.approx(0.8)
    m = presets.build("serotonergic", drugs={"fluoxetine": "3.24 nM"}, **SMALL)
    assert m.pharmacology.occupancy["SERT"]["fluoxetine"] == pytest.approx(0.8)
    n = site_count(m, "SERT")
    f = drawn_fraction(m, "SERT", "blocked:fluoxetine")
    assert abs(f - 0.8) < Z * math.sqrt(0.8 * 0.2 / n)


def test_occupancy_follows_the_competitive_formula_for_two_drugs():
    conc = {"fluoxetine": "2 nM", "sertraline": "1 nM"}
    a = 2e-9 / library.drug("fluoxetine").ki_M["SERT"]
    b = 1e-9 / library.drug("sertraline").ki_M["SERT"]
    theta = drugs.competitive_occupancy(conc, "SERT")
    assert theta["fluoxetine"] == pytest.approx(a / (1 + a + b))
    assert theta["sertraline"] == pytest.approx(b / (1 + a + b))
    m = presets.build("serotonergic", drugs=conc, **SMALL)
    n = site_count(m, "SERT")
    for name, expected in theta.items():
        assert m.sites[0].initial_state_fractions[f"blocked:{name}"] == pytest.approx(expected)
        f = drawn_fraction(m, "SERT", f"blocked:{name}", seed=1)
        assert abs(f - expected) < Z * math.sqrt(expected * (1 - expected) / n)
    # the ambient transmitter competes too: S/Km in the denominator
    with_s = drugs.competitive_occupancy(conc, "SERT", transmitter_M=0.17e-6, km_M=0.17e-6)
    assert with_s["fluoxetine"] == pytest.approx(a / (2 + a + b))


def test_concentration_for_target_occupancy():
    ki = library.drug("paroxetine").ki_M["SERT"]
    c = drugs.concentration_for_occupancy("paroxetine", "SERT", 0.8)
    assert c == pytest.approx(4 * ki)
    assert drugs.occupancy("paroxetine", "SERT", c) == pytest.approx(0.8)
    with pytest.raises(ModelError, match="occupancy"):
        drugs.concentration_for_occupancy("paroxetine", "SERT", 1.0)
    with pytest.raises(ModelError, match="no Ki at"):
        drugs.concentration_for_occupancy("milnacipran", "DAT", 0.5)


# ------------------------------------------------------------------ clearance

def test_ssri_at_4ki_blocks_80_percent_and_slows_clearance_by_1_minus_theta():
    c = drugs.concentration_for_occupancy("fluoxetine", "SERT", 0.8)        # 4 Ki
    base = presets.build("serotonergic", **CLEAR)
    ssri = presets.build("serotonergic", drugs={"fluoxetine": c}, **CLEAR)
    theta = ssri.pharmacology.blocked_fraction("SERT")
    assert theta == pytest.approx(0.8)
    k0, se0 = clearance(base, 32, seed=21)
    k1, se1 = clearance(ssri, 32, seed=22)
    # control reproduces Vmax/Km of the preset (1.0 uM/s / 0.17 uM)
    assert abs(k0 - 1.0 / 0.17) < Z * se0
    ratio = k1 / k0
    se_ratio = ratio * math.hypot(se0 / k0, se1 / k1)
    assert abs(ratio - (1 - theta)) < Z * se_ratio
    # i.e. clearance lengthened by 1/(1 - θ) = 5
    assert abs(1 / ratio - 5.0) < Z * se_ratio / ratio ** 2


def test_snri_blocks_sert_and_net_in_its_ki_ratio():
    d = library.drug("venlafaxine")
    c = 4 * d.ki_M["SERT"]
    sert = presets.build("serotonergic", drugs={"venlafaxine": c}, **SMALL)
    net = presets.build("noradrenergic", drugs={"venlafaxine": c}, **SMALL)
    ts = sert.pharmacology.occupancy["SERT"]["venlafaxine"]
    tn = net.pharmacology.occupancy["NET"]["venlafaxine"]
    odds = (ts / (1 - ts)) / (tn / (1 - tn))
    assert odds == pytest.approx(d.ki_M["NET"] / d.ki_M["SERT"])
    for m, label, theta in ((sert, "SERT", ts), (net, "NET", tn)):
        f = drawn_fraction(m, label, "blocked:venlafaxine", seed=2)
        assert abs(f - theta) < Z * math.sqrt(theta * (1 - theta) / site_count(m, label))
    # the alternative source is selectable by name and changes the ratio
    alt = library.drug("venlafaxine@bymaster2001")
    assert alt.ki_M["NET"] / alt.ki_M["SERT"] != pytest.approx(d.ki_M["NET"] / d.ki_M["SERT"])


@pytest.mark.parametrize("preset, label", [("dopaminergic", "DAT"), ("serotonergic", "SERT"),
                                           ("noradrenergic", "NET")])
def test_cocaine_blocks_dat_sert_and_net(preset, label):
    c = 0.5e-6
    m = presets.build(preset, drugs={"cocaine": c}, **SMALL)
    ki = library.drug("cocaine").ki_M[label]
    theta = m.pharmacology.occupancy[label]["cocaine"]
    assert theta == pytest.approx(c / (c + ki)) and theta > 0.5
    f = drawn_fraction(m, label, "blocked:cocaine", seed=3)
    assert abs(f - theta) < Z * math.sqrt(theta * (1 - theta) / site_count(m, label))


def test_blocked_fraction_is_reported_per_run():
    m = presets.build("dopaminergic", drugs={"cocaine": "0.45 uM"}, **SMALL)
    ens = mcsyn.run(m, n_runs=3, seed=4, workers=1)
    table = drugs.blocked_fraction_table(ens)
    assert list(table["run"]) == [0, 1, 2]
    n = site_count(m, "DAT")
    assert np.all(np.abs(table["DAT:blocked@0"] - 0.5) < Z * math.sqrt(0.25 / n))
    assert table["DAT:blocked"].nunique() == 3            # drawn per run


# ------------------------------------------------------------------ kinetic modes

def test_acute_kinetic_block_relaxes_to_equilibrium():
    over = {"geometry.domain_radius_um": 3.0, "timing.duration_ms": 200.0, "release.molecules": 1}
    m = presets.build("dopaminergic", drugs={"cocaine": "0.45 uM"}, mode="acute", **over)
    d = library.drug("cocaine")
    kon_c = d.koff_per_s / d.ki_M["DAT"] * 0.45e-6
    theta = kon_c / (kon_c + d.koff_per_s)
    r = mcsyn.run_one(m, seed=5)
    states = [f"DAT:{s}" for s in m.sites[0].scheme.states]
    frac = (r.series["DAT:blocked:cocaine"] / r.series[states].sum(axis=1)).to_numpy()
    t_s = r.series.index.to_numpy() * 1e-3
    expected = theta * (1 - np.exp(-(kon_c + d.koff_per_s) * t_s))
    n = site_count(m, "DAT")
    assert frac[0] == 0.0
    for i in (len(t_s) // 2, len(t_s) - 1):
        p = expected[i]
        assert abs(frac[i] - p) < Z * math.sqrt(p * (1 - p) / n)


def test_kinetic_mode_starts_and_stays_at_equilibrium():
    over = {"geometry.domain_radius_um": 3.0, "timing.duration_ms": 100.0, "release.molecules": 1}
    m = presets.build("dopaminergic", drugs={"cocaine": "0.45 uM", "methylphenidate": "0.1 uM"}, mode="kinetic",
                      **over)
    theta = drugs.competitive_occupancy({"cocaine": "0.45 uM", "methylphenidate": "0.1 uM"}, "DAT")
    n = site_count(m, "DAT")
    r = mcsyn.run_one(m, seed=6)
    got = drugs.blocked_fractions(r, m)
    for name, p in theta.items():
        # a time average varies less than one snapshot, so the binomial SE is conservative
        assert abs(got[f"DAT:blocked:{name}"] - p) < Z * math.sqrt(p * (1 - p) / n)


def test_kinetic_mode_keeps_drugs_without_kinetics_at_equilibrium_with_a_warning():
    with pytest.warns(PharmacologyWarning, match="no binding kinetics"):
        m = presets.build("serotonergic", drugs={"fluoxetine": "3.24 nM"}, mode="kinetic", **SMALL)
    assert m.sites[0].initial_state_fractions["blocked:fluoxetine"] == pytest.approx(0.8)
    assert not [t for t in m.sites[0].scheme.transitions if "blocked" in t.target]


# ------------------------------------------------------------------ amphetamine

def test_amphetamine_produces_efflux_only_where_the_transporter_is():
    over = {"geometry.domain_radius_um": 3.0, "timing.duration_ms": 50.0, "release.enabled": False}
    m = presets.build("dopaminergic", drugs={"amphetamine": "1 uM"}, **over)
    assert m.releases == [] and m.trains == []
    r = mcsyn.run_one(m, seed=7)
    met = r.metrics
    assert met["effluxed"] > 0 and met["released"] == met["effluxed"]
    assert r.series["free"].max() > 0
    assert met["released"] == met["free_end"] + met["bound_end"] + met["taken_up"] + met["escaped"] + met["degraded"]
    # expected number: sites x stationary inward-facing fraction x efflux rate x duration (Poisson)
    n = site_count(m, "DAT")
    p_ti = m.pharmacology.substrate_states["DAT"]["Ti"]
    expected = n * p_ti * library.drug("amphetamine").efflux_per_s * 0.050
    assert abs(met["effluxed"] - expected) < Z * math.sqrt(expected)

    # no DAT: no efflux (the same drug and scheme, zero transporters)
    none = presets.build("dopaminergic", drugs={"amphetamine": "1 uM"},
                         adaptation={"transporter_expression": {"DAT": 0.0}}, **over)
    r0 = mcsyn.run_one(none, seed=7)
    assert r0.metrics["effluxed"] == 0 and r0.metrics["released"] == 0 and r0.series["free"].max() == 0

    # a synapse without any of its transporters: warned, nothing added
    with pytest.warns(PharmacologyWarning, match="amphetamine.*no effect"):
        glu = presets.build("glutamatergic", drugs={"amphetamine": "1 uM"})
    assert not any(t.kind == "efflux" for g in glu.sites for t in g.scheme.transitions)


def test_amphetamine_competes_for_uptake():
    # at equilibrium only the drug-free outward carriers (fraction π_T of the amphetamine cycle's
    # stationary distribution) take up transmitter: clearance falls from Vmax/Km to π_T·Vmax/Km
    over = {"geometry.domain_radius_um": 4.0, "release.molecules": 1000, "timing.duration_ms": 100.0}
    m = presets.build("dopaminergic", drugs={"amphetamine": "0.1 uM"}, **over)
    p_t = 1.0 - sum(m.pharmacology.substrate_states["DAT"].values())
    assert 0.3 < p_t < 0.9
    k, se = clearance(m, 12, seed=8)
    assert abs(k - 20.0 * p_t) < Z * se


# ------------------------------------------------------------------ MAO inhibitor

def test_maoi_raises_the_released_amount_and_not_the_clearance_rate():
    base = presets.build("dopaminergic", **CLEAR)
    maoi = presets.build("dopaminergic", drugs={"tranylcypromine": "10 uM"}, **CLEAR)
    d = library.drug("tranylcypromine")
    factor = 1 + (d.vesicle_content_factor_max - 1) * 10e-6 / (10e-6 + d.ki_M["MAO"])
    assert maoi.pharmacology.vesicle_content_factor == pytest.approx(factor)
    assert maoi.releases[0].molecules == pytest.approx(base.releases[0].molecules * factor)
    assert maoi.sites == base.sites                       # no change to transporters or receptors
    r = mcsyn.run_one(maoi, seed=10)
    assert r.metrics["released"] == round(base.releases[0].molecules * factor)
    k0, se0 = clearance(base, 16, seed=11)
    k1, se1 = clearance(maoi, 16, seed=12)
    assert abs(k1 - k0) < Z * math.hypot(se0, se1)


def test_maoi_has_no_effect_on_glutamate():
    with pytest.warns(PharmacologyWarning, match="not a monoamine"):
        m = presets.build("glutamatergic", drugs={"tranylcypromine": "10 uM"})
    assert m.releases[0].molecules == 3000


# ------------------------------------------------------------------ autoreceptors and adaptation

def test_autoreceptor_feedback_lowers_the_release_probability_of_following_stimuli():
    p = drugs.feedback_probabilities([0.0, 50.0, 100.0, 150.0], 0.5, gain=0.6, tau_ms=500.0,
                                     occupancy_per_release=0.5)
    assert p[0] == pytest.approx(0.5)
    assert all(b < a for a, b in zip(p, p[1:]))
    q = 0.5 * 0.5                                   # drive before the 2nd stimulus: p0 q
    assert p[1] == pytest.approx(0.5 * (1 - 0.6 * (1 - math.exp(-q * math.exp(-50 / 500)))))
    assert drugs.feedback_probabilities([0.0, 50.0], 0.5, 0.0, 500.0, 0.5) == [0.5, 0.5]

    train = {"enabled": True, "n_stimuli": 5, "frequency_hz": 20.0, "release_probability": 0.5}
    auto = {"gain": 0.6, "tau_ms": 500.0, "occupancy_per_release": 0.5}
    m = presets.build("dopaminergic", train=train, autoreceptor=auto, release={"enabled": False})
    probs = [r.probability for r in m.releases]
    assert len(probs) == 5 and m.trains == []
    assert probs == pytest.approx(drugs.feedback_probabilities([0, 50, 100, 150, 200], 0.5, 0.6, 500.0, 0.5))
    # chronic desensitisation halves the gain
    half = presets.build("dopaminergic", train=train, autoreceptor=auto, release={"enabled": False},
                         adaptation={"autoreceptor_gain": 0.5})
    assert [r.probability for r in half.releases] == pytest.approx(
        drugs.feedback_probabilities([0, 50, 100, 150, 200], 0.5, 0.3, 500.0, 0.5))


def test_tonic_autoreceptor_occupancy_rises_with_transporter_block():
    kd = library.receptor("D2").kd_M
    o = drugs.tonic_autoreceptor_occupancy(20e-9, kd)
    assert o == pytest.approx(20e-9 / (20e-9 + kd))
    assert drugs.tonic_autoreceptor_occupancy(20e-9, kd, 0.2) == pytest.approx(100e-9 / (100e-9 + kd))
    over = {"transmitter": {"ambient": "20 nM"}, "autoreceptor": {"gain": 0.5}}
    p0 = presets.build("dopaminergic", **over).releases[0].probability
    p1 = presets.build("dopaminergic", drugs={"cocaine": "0.45 uM"}, **over).releases[0].probability
    assert p1 < p0 < 1.0


def test_chronic_adaptation_scales_numbers_affinity_and_expression():
    base = presets.build("serotonergic", **SMALL)
    adapted = presets.build("serotonergic", adaptation={"transporter_expression": {"SERT": 0.5},
                                                        "receptor_density": {"5-HT1A": 2.0},
                                                        "receptor_affinity": {"5-HT2A": 4.0}}, **SMALL)
    g0 = {g.label: g for g in base.sites}
    g1 = {g.label: g for g in adapted.sites}
    assert g1["SERT"].density_per_um3 == pytest.approx(0.5 * g0["SERT"].density_per_um3)
    assert g1["5-HT1A"].density_per_um3 == pytest.approx(2.0 * g0["5-HT1A"].density_per_um3)
    koff = [t.rate for t in g1["5-HT2A"].scheme.transitions if t.kind == "unbind"][0]
    assert koff == pytest.approx(library.receptor("5-HT2A").koff_per_s / 4.0)
    with pytest.warns(PharmacologyWarning, match="DAT"):
        presets.build("serotonergic", adaptation={"transporter_expression": {"DAT": 0.5}}, **SMALL)


def test_sert_down_regulation_halves_clearance():
    base = presets.build("serotonergic", **CLEAR)
    down = presets.build("serotonergic", adaptation={"transporter_expression": {"SERT": 0.5}}, **CLEAR)
    k0, se0 = clearance(base, 16, seed=13)
    k1, se1 = clearance(down, 16, seed=14)
    ratio = k1 / k0
    assert abs(ratio - 0.5) < Z * ratio * math.hypot(se0 / k0, se1 / k1)


# ------------------------------------------------------------------ bad input

def test_bad_drug_input_is_reported_before_any_run():
    with pytest.raises(ModelError, match=r"did you mean 'fluoxetine'"):
        presets.build("serotonergic", drugs={"fluoxetin": "3 nM"})
    with pytest.raises(ModelError, match=r"drugs\.fluoxetine.*time"):
        presets.build("serotonergic", drugs={"fluoxetine": "5 ms"})
    with pytest.raises(ModelError, match=r"drugs\.fluoxetine.*no units"):
        presets.build("serotonergic", drugs={"fluoxetine": "5"})
    with pytest.raises(ModelError, match=r"drugs\.fluoxetine.*negative"):
        presets.build("serotonergic", drugs={"fluoxetine": -1e-9})
    with pytest.raises(ModelError, match=r"custom_drugs\.x\.ki\.SERT.*Ki must be > 0"):
        presets.build("serotonergic", drugs={"x": "1 nM"}, custom_drugs={"x": {"ki": {"SERT": "0 nM"}}})
    with pytest.raises(ModelError, match=r"custom_drugs\.x\.ki\.SERT.*Ki must be > 0"):
        presets.build("serotonergic", drugs={"x": "1 nM"}, custom_drugs={"x": {"ki": {"SERT": -2e-9}}})
    with pytest.raises(ModelError, match="did you mean 'SERT'"):
        presets.build("serotonergic", drugs={"x": "1 nM"}, custom_drugs={"x": {"ki": {"SRT": "1 nM"}}})
    with pytest.raises(ModelError, match="did you mean 'kinetic'"):
        presets.build("serotonergic", mode="kinetc")
    with pytest.warns(PharmacologyWarning, match="bupropion.*no effect"):
        presets.build("glutamatergic", drugs={"bupropion": "1 uM"})


def test_custom_drug_from_python():
    d = library.Drug.from_dict("blocker_x", {"class": "SSRI", "ki": {"SERT": "2 nM"}, "source": "test"})
    m = presets.build("serotonergic", drugs={"blocker_x": "8 nM"}, custom_drugs={"blocker_x": d}, **SMALL)
    assert m.pharmacology.occupancy["SERT"]["blocker_x"] == pytest.approx(0.8)


def test_apply_drugs_to_a_hand_built_model():
    dat = library.transporter("DAT").scheme("dopamine")
    model = mcsyn.SynapseModel(
        species=[mcsyn.Species("dopamine", 0.763)],
        geometry=mcsyn.Geometry(outside="volume", domain_radius_um=3.0),
        sites=[mcsyn.SiteGroup(dat, "volume", density_per_um3=300.0, name="striatal DAT")],
        releases=[mcsyn.Release(0.0, 100, "dopamine", into="volume")],
        timing=mcsyn.Timing(duration_ms=1.0, dt_volume_us=100.0, sample_interval_us=100.0))
    new, report = drugs.apply_drugs(model, {"bupropion": "520 nM"})
    assert report.occupancy["striatal DAT"]["bupropion"] == pytest.approx(0.5)
    assert model.sites[0].initial_state_fractions == {}          # input untouched
    mcsyn.run_one(new, seed=0)


# ------------------------------------------------------------------ one drug syntax at every entry point

def _cli_model(argv, tmp_path, monkeypatch):
    """The model `mcsyn run ARGV` would run: the real parser and condition path, no ensemble."""
    from mcsyn import cli
    seen = []
    monkeypatch.setattr(cli, "_execute", lambda conds, kwargs: (seen.extend(conds), (None, 0))[1])
    assert cli.main(["run", *argv, "--out", str(tmp_path / "never-written"), "--no-progress"]) == 0
    assert len(seen) == 1
    return seen[0].model


def test_occupancy_syntax_gives_the_same_model_everywhere(tmp_path, monkeypatch):
    from mcsyn import config
    from mcsyn.compile import compile_model
    ki = library.drug("escitalopram").ki_M["SERT"]
    by_preset = presets.build("serotonergic", drugs={"escitalopram": "80%SERT"})
    by_toml = config.loads('preset = "serotonergic"\n[drugs]\nescitalopram = "80%SERT"\n').build()
    by_cli = _cli_model(["serotonergic", "--drug", "escitalopram=80%SERT"], tmp_path, monkeypatch)
    c80 = drugs.concentration_for_occupancy("escitalopram", "SERT", 0.8)
    assert c80 == pytest.approx(4.0 * ki, rel=1e-12)                   # C = Ki θ/(1 − θ)
    by_number = presets.build("serotonergic", drugs={"escitalopram": c80})
    for other in (by_toml, by_cli, by_number):
        assert other == by_preset                                      # every field, every rate
        assert other.pharmacology == by_preset.pharmacology
        a, b = compile_model(other).kernel, compile_model(by_preset).kernel     # the compiled tables
        for f in dataclasses.fields(a):
            assert np.array_equal(getattr(a, f.name), getattr(b, f.name)), f.name
    report = by_preset.pharmacology
    assert report.concentrations_M["escitalopram"] == pytest.approx(4.0 * ki, rel=1e-12)
    assert report.blocked_fraction("SERT") == pytest.approx(0.8, rel=1e-12)    # serotonergic: no ambient 5-HT
    sert = next(g for g in by_preset.sites if g.label == "SERT")
    assert sert.initial_state_fractions["blocked:escitalopram"] == pytest.approx(0.8, rel=1e-12)


def test_parse_concentration_forms_and_errors():
    c80 = drugs.concentration_for_occupancy("fluoxetine", "SERT", 0.8)
    for text in ("80%SERT", "80 % SERT", " 80%@SERT "):
        assert drugs.parse_concentration("fluoxetine", text) == c80
    assert drugs.parse_concentration("fluoxetine", "25 nM") == pytest.approx(25e-9)
    assert drugs.parse_concentration("fluoxetine", 2.5e-8) == 2.5e-8
    assert drugs.parse_drug_option("fluoxetine = 80%SERT") == ("fluoxetine", c80)
    for bad, where in (("100%SERT", "drugs.fluoxetine"), (-1e-9, "drugs.fluoxetine"), ("25", "drugs.fluoxetine")):
        with pytest.raises(ModelError) as info:
            drugs.parse_concentration("fluoxetine", bad)
        assert info.value.field == where
    with pytest.raises(ModelError, match="no Ki at DAT"):
        presets.build("serotonergic", drugs={"milnacipran": "80%DAT"})
    with pytest.raises(ValueError, match="NAME=CONCENTRATION"):
        drugs.parse_drug_option("fluoxetine")


def test_occupancy_syntax_reads_custom_drugs():
    from mcsyn import config
    cfg = config.loads('preset = "serotonergic"\n[drugs]\nmine = "50%SERT"\n'
                       '[custom_drugs.mine]\nki = { SERT = "2 nM" }\nsource = "test"\n')
    m = cfg.build()
    assert m.pharmacology.concentrations_M["mine"] == pytest.approx(2e-9, rel=1e-12)
    assert config.loads(config.dumps(cfg, resolved=True)).build() == m


def test_doses_are_one_value_type():
    doses = drugs.parse_doses({"cocaine": "0.45 uM", "methylphenidate": "80%DAT"})
    assert all(isinstance(d, drugs.Dose) for d in doses.values())
    assert [d.label for d in doses.values()] == ["cocaine", "methylphenidate"]
    theta = drugs.occupancy_of(doses, "DAT")
    assert theta == drugs.competitive_occupancy({"cocaine": "0.45 uM", "methylphenidate": "80%DAT"}, "DAT")


# ------------------------------------------------------------------ the mechanism registry

def test_mechanism_registry_is_the_library_table():
    from mcsyn import mechanisms
    assert library.MECHANISMS == tuple(mechanisms.REGISTRY) == ("blocker", "substrate", "mao_inhibitor",
                                                                "antagonist", "inverse_agonist", "agonist")
    for m in mechanisms.REGISTRY.values():
        assert set(m.fields) <= set(library.DRUG_KEYS)
    with pytest.raises(ModelError, match="substrate .*needs koff_per_s, translocation_per_s and efflux_per_s"):
        library.Drug.from_dict("x", {"mechanism": "substrate", "ki": {"DAT": "1 uM"}, "koff_per_s": 1.0})
    with pytest.raises(ModelError, match="needs ki.MAO"):
        library.Drug.from_dict("x", {"mechanism": "mao_inhibitor", "ki": {"DAT": "1 uM"}})
    with pytest.raises(ModelError, match="vesicle_content_factor_max >= 1"):
        library.Drug.from_dict("x", {"mechanism": "mao_inhibitor", "ki": {"MAO": "1 uM"}})
