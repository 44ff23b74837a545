"""Presets: every preset runs by name and reproduces its bulk behaviour; overrides of any field."""
import math

import numpy as np
import pytest

import mcsyn
from mcsyn import ModelError, drugs, library, presets
from mcsyn.compile import AVOGADRO_PER_MOL

Z = 4.5
PRESETS = ["glutamatergic", "gabaergic", "cholinergic", "dopaminergic_striatal", "dopaminergic_ventral_striatal",
           "serotonergic", "noradrenergic"]


def test_preset_names():
    assert sorted(presets.names()) == sorted(PRESETS)
    assert presets.build("dopaminergic").name == "dopaminergic_striatal"       # alias
    for name in PRESETS:
        assert presets.describe(name)
    with pytest.raises(ModelError, match="did you mean 'dopaminergic"):
        presets.build("dopaminergc")


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_runs(name):
    model = presets.build(name)
    r = mcsyn.run_one(model, seed=1)
    m = r.metrics
    assert m["released"] > 0
    assert m["released"] == m["free_end"] + m["bound_end"] + m["taken_up"] + m["escaped"] + m["degraded"]
    assert m["binding_events"] > 0


@pytest.mark.parametrize("name, vmax, km", [
    ("dopaminergic_striatal", 4.0e-6, 0.2e-6),
    ("dopaminergic_ventral_striatal", 1.55e-6, 0.2e-6),
    ("serotonergic", 1.0e-6, 0.17e-6),
    ("noradrenergic", 1.0e-6, 0.4e-6),
])
def test_volume_presets_clear_at_vmax_over_km(name, vmax, km):
    # a 1000-molecule release keeps every transporter in its linear regime; the rate estimator
    # (mcsyn.drugs.clearance_rate_estimate) does not depend on the domain size
    model = presets.build(name, **{"geometry.domain_radius_um": 5.0, "release.molecules": 1000})
    cm = mcsyn.compile_model(model)
    k = np.array([drugs.clearance_rate_estimate(mcsyn.run_one(cm, seed=41, run_index=i), model)
                  for i in range(24)])
    se = k.std(ddof=1) / math.sqrt(len(k))
    assert abs(k.mean() - vmax / km) < Z * se


def test_dat_density_calibration_numbers():
    model = presets.build("dopaminergic_striatal")
    dat = next(g for g in model.sites if g.label == "DAT")
    # [T] = Vmax/k_cat = 4.0 uM/s / (4/3 /s) = 3.0 uM of ECS; density = [T] N_A 1e-15 alpha
    assert dat.density_per_um3 == pytest.approx(3.0e-6 * AVOGADRO_PER_MOL * 1e-15 * 0.21, rel=1e-6)
    assert dat.density_per_um3 == pytest.approx(379.4, abs=0.1)
    entry = library.transporter("DAT")
    t = dat.density_per_um3 / (AVOGADRO_PER_MOL * 1e-15 * model.geometry.volume_fraction)
    assert entry.clearance_rate_per_s(t) == pytest.approx(20.0, rel=1e-6)
    vs = next(g for g in presets.build("dopaminergic_ventral_striatal").sites if g.label == "DAT")
    assert vs.density_per_um3 / dat.density_per_um3 == pytest.approx(1.55 / 4.0)
    assert model.geometry.outside == "volume" and model.releases[0].into == "volume"
    assert all(g.location == "volume" for g in model.sites)


def test_glutamatergic_preset_bulk_behaviour():
    model = presets.build("glutamatergic")
    assert {g.label for g in model.sites} == {"AMPA", "NMDA", "EAAT2", "GLAST"}
    ens = mcsyn.run(model, n_runs=3, seed=2, workers=1)
    # G1: cleft [Glu] peaks at 1-5 mM (Clements 1996); 10-70 AMPARs open per vesicle (Harris 2012)
    assert np.all((ens.metrics["peak_cleft_concentration_M"] > 1e-3) & (ens.metrics["peak_cleft_concentration_M"] < 5e-3))
    assert np.all((ens.metrics["AMPA:open:peak"] >= 10) & (ens.metrics["AMPA:open:peak"] <= 70))
    assert np.all(ens.metrics["escaped"] == 0)           # closed by the glial band
    assert np.all(ens.metrics["taken_up"] > 0)


def test_cholinergic_preset_degrades_acetylcholine():
    model = presets.build("cholinergic")
    assert model.releases[0].molecules == 9000           # acetylcholine@bennett1997
    r = mcsyn.run_one(model, seed=3)
    assert r.metrics["degraded"] > 0 and r.metrics["nAChR:open:peak"] > 0


def test_overrides_of_any_field_with_units():
    m = presets.build("glutamatergic", geometry={"cleft_radius_um": "250 nm"}, **{"timing.duration_ms": 2.0})
    assert m.geometry.cleft_radius_um == pytest.approx(0.25)
    assert m.timing.duration_ms == 2.0
    m = presets.build("dopaminergic", sites={"DAT": {"vmax": "2 uM/s"}, "D1": {"enabled": False}},
                      transmitter={"name": "dopamine@kaya2018"})
    assert m.species[0].diffusion_um2_per_ms == pytest.approx(0.40)
    assert m.releases[0].molecules == 3250
    assert [g.label for g in m.sites] == ["DAT", "D2"]
    assert m.sites[0].density_per_um3 == pytest.approx(379.4 / 2, rel=1e-3)
    # a density key replaces the preset's vmax
    m = presets.build("dopaminergic", **{"sites.DAT.density_per_um3": 100.0})
    assert m.sites[0].density_per_um3 == 100.0
    # sinks from the library: COMT as a fraction of transporter clearance
    m = presets.build("dopaminergic", degradation={"COMT": {"entry": "COMT"}})
    comt = m.degradation[-1]
    assert comt.rate_per_s == pytest.approx(20.0, rel=1e-6)          # f = 1/2: equal to DAT clearance


@pytest.mark.parametrize("overrides, field", [
    ({"geometry": {"cleft_radius_um": "5 ms"}}, "geometry.cleft_radius_um"),
    ({"geometry": {"cleft_radius": 0.3}}, "geometry.cleft_radius"),
    ({"sites": {"DAT": {"vmax": "4 uM"}}}, "sites.DAT.vmax"),
    ({"sites": {"DAT": {"entry": "DATT"}}}, "sites.DAT.entry"),
    ({"transmitter": {"name": "dopamin"}}, "transmitter.name"),
    ({"timing.duraton_ms": 5.0}, "timing.duraton_ms"),
    ({"autoreceptor": {"receptor": "D1", "gain": 0.5}}, "autoreceptor.receptor"),
])
def test_bad_overrides_name_the_field(overrides, field):
    with pytest.raises(ModelError) as info:
        presets.build("dopaminergic", **overrides)
    assert str(info.value).startswith(field)
