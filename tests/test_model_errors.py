"""Physically meaningless models are refused before the kernel runs, with a message that names
the field, the value and what would be valid; the kernel itself re-checks its arrays."""
import dataclasses

import numpy as np
import pytest

import mcsyn
from mcsyn import _engine
from mcsyn.errors import ModelError


def base(**kw):
    m = mcsyn.SynapseModel(geometry=mcsyn.Geometry(outside="band"), timing=mcsyn.Timing(duration_ms=0.1),
                           sites=[mcsyn.SiteGroup(mcsyn.ampa_jonas1993(), "postsynaptic", count=20)])
    for k, v in kw.items():
        setattr(m, k, v)
    return m


def expect_error(model, field, *fragments):
    with pytest.raises(ModelError) as err:
        mcsyn.compile_model(model)
    msg = str(err.value)
    assert field in msg, msg
    for f in fragments:
        assert f in msg, msg
    return msg


@pytest.mark.parametrize("field,value", [
    ("cleft_height_um", 0.0), ("cleft_height_um", -0.02), ("cleft_radius_um", 0.0),
    ("psd_radius_um", -1.0), ("band_outer_radius_um", 0.0), ("cleft_height_um", float("nan")),
])
def test_non_positive_geometry(field, value):
    m = base()
    setattr(m.geometry, field, value)
    expect_error(m, f"geometry.{field}", "> 0")


def test_negative_or_zero_diffusion():
    for d in (0.0, -0.3):
        expect_error(base(species=[mcsyn.Species("glutamate", d)]), "diffusion_um2_per_ms", "> 0")


def test_psd_larger_than_cleft():
    m = base()
    m.geometry.psd_radius_um = 0.3
    expect_error(m, "geometry.psd_radius_um", "0.3", "cleft_radius_um = 0.2")


def test_per_hit_probability_above_one_names_the_largest_dt():
    m = base()
    m.timing = mcsyn.Timing(duration_ms=0.1, dt_fine_us=1.0, sample_interval_us=10.0)
    m.tile_um = 0.002   # small tiles make each hit count for more
    msg = expect_error(m, "timing.dt_fine_us", "> 1", "use dt_fine_us <=")
    dt_max = float(msg.split("use dt_fine_us <= ")[1].split()[0])
    m.timing = mcsyn.Timing(duration_ms=0.1, dt_fine_us=dt_max * 0.99, sample_interval_us=dt_max * 0.99 * 10)
    m.timing.duration_ms = m.timing.sample_interval_us * 10 / 1000
    mcsyn.compile_model(m)   # the suggested step works


def test_step_too_large_for_the_cleft_names_the_dt_that_fits():
    m = base()
    m.timing = mcsyn.Timing(duration_ms=1.0, dt_fine_us=20.0, sample_interval_us=20.0)
    msg = expect_error(m, "timing.dt_fine_us", "too large", "use dt_fine_us <=")
    dt_fit = float(msg.split("use dt_fine_us <= ")[1].split()[0])
    assert 0 < dt_fit < 20


def test_zero_molecules():
    expect_error(base(releases=[mcsyn.Release(0.0, 0)]), "releases[0].molecules", "> 0")
    expect_error(base(releases=[], trains=[]), "releases", "no molecules")


def test_unknown_species_in_a_scheme():
    m = base()
    m.sites = [mcsyn.SiteGroup(mcsyn.one_site_receptor("D2", "dopamine", 1e7, 10), "postsynaptic", count=5)]
    expect_error(m, "scheme species", "'dopamine'", "glutamate")


def test_rates_that_do_not_match_the_scheme_states():
    s = mcsyn.KineticScheme("bad", ["R", "AR", "X"])
    s.bind("R", "AR", "glutamate", 1e7).first_order("AR", "R", 10.0)   # loses a molecule silently
    m = base(sites=[mcsyn.SiteGroup(s, "postsynaptic", count=5)])
    expect_error(m, "transition AR->R", "bound molecules")
    with pytest.raises(ModelError, match="must be one of the scheme's states"):
        mcsyn.KineticScheme("bad2", ["R", "AR"]).bind("R", "ARR", "glutamate", 1e7)
    with pytest.raises(ModelError, match="rate_per_s"):
        mcsyn.KineticScheme("bad3", ["R", "AR"]).first_order("R", "AR", -1.0)


def test_outside_and_location_choices():
    m = base()
    m.geometry.outside = "everywhere"
    expect_error(m, "geometry.outside", "'band'", "'volume'")
    m = base()
    m.sites = [mcsyn.SiteGroup(mcsyn.ampa_jonas1993(), "volume", density_per_um3=1.0)]
    expect_error(m, "location", "outside = 'volume'")


def test_too_many_sites_for_the_region():
    m = base()
    m.sites = [mcsyn.SiteGroup(mcsyn.ampa_jonas1993(), "postsynaptic", count=10**6)]
    expect_error(m, "sites['AMPA']", "do not fit")


def test_duration_must_be_a_whole_number_of_steps():
    m = base()
    m.timing = mcsyn.Timing(duration_ms=0.1005, dt_fine_us=1.0, sample_interval_us=10.0)
    expect_error(m, "timing.duration_ms", "whole multiple")


def test_kernel_checks_array_types_and_sizes():
    cm = mcsyn.compile_model(base())
    run = cm.draw_run(np.random.SeedSequence(0))
    seed = np.zeros(4, dtype=np.uint64)
    bad = dataclasses.replace(run, site_x_um=run.site_x_um[:-1])
    with pytest.raises(ValueError, match="site_x_um"):
        _engine.simulate(cm.kernel, bad, seed)
    bad = dataclasses.replace(run, site_type=run.site_type.astype(np.int64))
    with pytest.raises(TypeError, match="site_type"):
        _engine.simulate(cm.kernel, bad, seed)
    bad = dataclasses.replace(run, site_state=np.full_like(run.site_state, 999))
    with pytest.raises(ValueError, match="site_state"):
        _engine.simulate(cm.kernel, bad, seed)
    kernel = dataclasses.replace(cm.kernel, exit_to=np.full_like(cm.kernel.exit_to, -3))
    with pytest.raises(ValueError, match="exit_to"):
        _engine.simulate(kernel, run, seed)
    bad = dataclasses.replace(run, inject_z_um=run.inject_z_um + 1.0)
    with pytest.raises(ValueError, match="slab injection"):
        _engine.simulate(cm.kernel, bad, seed)
    x, y = run.site_x_um.copy(), run.site_y_um.copy()
    x[1], y[1] = x[0], y[0]
    bad = dataclasses.replace(run, site_x_um=x, site_y_um=y)
    with pytest.raises(ValueError, match="share one tile"):
        _engine.simulate(cm.kernel, bad, seed)
    bad = dataclasses.replace(run, inject_count=-run.inject_count)
    with pytest.raises(ValueError, match="inject_count"):
        _engine.simulate(cm.kernel, bad, seed)
    bad = dataclasses.replace(run, inject_count=np.full_like(run.inject_count, 2 ** 62))
    with pytest.raises(ValueError, match="inject_count"):
        _engine.simulate(cm.kernel, bad, seed)
    bad = dataclasses.replace(run, inject_count=run.inject_count[:-1])
    with pytest.raises(ValueError, match="inject_count"):
        _engine.simulate(cm.kernel, bad, seed)


def test_an_instant_release_is_one_injection_group():
    """A vesicle released at once reaches the kernel as one (time, count) row; a fusion pore's
    molecules as one row each."""
    m = base()
    run = mcsyn.compile_model(m).draw_run(np.random.SeedSequence(0))
    assert run.n_inject == 1 and run.inject_count.tolist() == [m.releases[0].molecules]
    m.releases = [mcsyn.Release(0.0, 50, pore_tau_ms=0.005), mcsyn.Release(0.0, 30)]
    run = mcsyn.compile_model(m).draw_run(np.random.SeedSequence(0))
    assert run.inject_count.sum() == 80 and run.n_inject == 51
    assert np.all(np.diff(run.inject_time_us) >= 0)
    r = mcsyn.run_one(m, seed=1)
    assert r.metrics["released"] == 80


def test_random_valid_models_run_and_conserve():
    """Any model the Python layer accepts runs to the end and conserves molecules."""
    rng = np.random.default_rng(2026)
    for _ in range(12):
        outside = rng.choice(["closed", "open", "band", "volume"])
        g = mcsyn.Geometry(cleft_height_um=rng.uniform(0.01, 0.04), cleft_radius_um=rng.uniform(0.1, 0.4),
                           outside=str(outside), band_outer_radius_um=rng.uniform(0.5, 1.5),
                           band_outer_boundary=str(rng.choice(["absorbing", "reflecting"])),
                           domain_radius_um=rng.uniform(1.0, 3.0))
        g.psd_radius_um = g.cleft_radius_um * rng.uniform(0.3, 1.0)
        g.domain_boundary = str(rng.choice(["absorbing", "reflecting"]))
        sites = [mcsyn.SiteGroup(mcsyn.ampa_jonas1993(), "postsynaptic", count=int(rng.integers(0, 60))),
                 mcsyn.SiteGroup(mcsyn.transporter_cycle("T", "glutamate", 1e7, 100, 50, 5), "presynaptic",
                                 density_per_um2=float(rng.uniform(0, 3000)))]
        if outside == "band":
            sites.append(mcsyn.SiteGroup(mcsyn.enzyme_site("E", "glutamate", 1e7, 10, 1e4), "band_postsynaptic",
                                         density_per_um2=500.0))
        if outside == "volume":
            sites.append(mcsyn.SiteGroup(mcsyn.transporter_cycle("V", "glutamate", 1e7, 10, 10, 1), "volume",
                                         density_per_um3=float(rng.uniform(0, 300))))
        m = mcsyn.SynapseModel(geometry=g, sites=sites, degradation=[mcsyn.Degradation(float(rng.uniform(0, 500)))],
                               releases=[mcsyn.Release(0.0, int(rng.integers(1, 3000)), quantal_cv=0.3,
                                                       pore_tau_ms=float(rng.choice([0.0, 0.05])))],
                               timing=mcsyn.Timing(duration_ms=0.5, dt_fine_us=0.5, dt_volume_us=5.0,
                                                   sample_interval_us=10.0))
        s = mcsyn.run_one(m, seed=int(rng.integers(1 << 30))).series
        np.testing.assert_array_equal(s["released"], s[["free", "bound", "taken_up", "escaped", "degraded"]].sum(axis=1))


def volume_cleft_model(**geometry):
    return base(geometry=mcsyn.Geometry(outside="volume", **geometry),
                releases=[mcsyn.Release(0.0, 100, into="cleft")],
                timing=mcsyn.Timing(duration_ms=1.0, dt_fine_us=1.0, dt_volume_us=10.0))


def test_cleft_volume_exchange_choices():
    expect_error(volume_cleft_model(domain_boundary="sticky"), "geometry.domain_boundary", "'sticky'", "'reflecting'")
    expect_error(volume_cleft_model(volume_enters_cleft="yes"), "geometry.volume_enters_cleft", "'yes'", "true")
    for field, value in (("domain_boundary", "sticky"), ("volume_enters_cleft", "yes")):
        with pytest.raises(ModelError, match=f"geometry.{field} = 'sticky'|geometry.{field} = 'yes'"):
            mcsyn.compile_model(mcsyn.presets.build("dopaminergic_striatal", **{f"geometry.{field}": value}))
    # a small varicosity has no room beside the cleft's mouth for what leaves in one volume step
    msg = expect_error(volume_cleft_model(varicosity_radius_um=0.1, domain_radius_um=3.0),
                       "timing.dt_volume_us", "10.0", "volume_enters_cleft = false")
    dt_max = float(msg.split("dt_volume_us <= ")[1].split(",")[0])
    assert 1 <= dt_max < 10
    m = volume_cleft_model(varicosity_radius_um=0.1, domain_radius_um=3.0)
    m.timing.dt_volume_us = dt_max
    m.timing.duration_ms = dt_max * 100 / 1000.0
    mcsyn.compile_model(m)                                   # the suggested step fits
    expect_error(volume_cleft_model(varicosity_radius_um=0.05, domain_radius_um=3.0),
                 "timing.dt_volume_us", "larger geometry.varicosity_radius_um")
    mcsyn.compile_model(volume_cleft_model(varicosity_radius_um=0.05, domain_radius_um=3.0,
                                           volume_enters_cleft=False))


def test_kernel_checks_the_exchange_arrays():
    cm = mcsyn.compile_model(volume_cleft_model())
    run = cm.draw_run(np.random.SeedSequence(0))
    seed = np.zeros(4, dtype=np.uint64)
    for name, value in (("enter_probability", 1.5), ("enter_probability", -0.1), ("entry_depth_um", -1.0),
                        ("entry_depth_um", 1.0)):
        kernel = dataclasses.replace(cm.kernel, **{name: np.full_like(getattr(cm.kernel, name), value)})
        with pytest.raises(ValueError, match=name):
            _engine.simulate(kernel, run, seed)
    kernel = dataclasses.replace(cm.kernel, r_mouth_um=cm.kernel.r_domain_um)
    with pytest.raises(ValueError, match="r_mouth_um"):
        _engine.simulate(kernel, run, seed)


# ======================================================================================================
# the work budget (mcsyn.budget)

def test_budget_refuses_a_run_above_max_steps_and_says_how_to_raise_it():
    from mcsyn import budget
    m = base()
    est = budget.estimate(mcsyn.compile_model(m))
    assert est.molecule_steps == pytest.approx(3000 * 100 * (1 + np.sqrt(2 * 0.33e-3) / 0.02))
    with pytest.raises(ModelError, match="max_steps") as err:
        mcsyn.run_one(m, max_steps=est.work / 2)
    assert "--max-steps" in str(err.value) and "timing.duration_ms" in str(err.value)
    with pytest.raises(ModelError, match="max_steps"):
        mcsyn.run(m, n_runs=2, max_steps=est.work / 2)
    assert mcsyn.run_one(m, max_steps=est.work * 2).metrics["released"] == 3000
    assert mcsyn.run_one(m, max_steps=None).metrics["released"] == 3000
    for bad in (0, -1.0, "many", True):
        with pytest.raises(ModelError, match="max_steps"):
            mcsyn.run_one(m, max_steps=bad)


def test_budget_reports_a_long_run_and_refuses_memory_it_cannot_have(monkeypatch, capsys):
    from mcsyn import budget
    monkeypatch.setattr(budget, "REPORT_STEPS", 1.0)
    mcsyn.run_one(base())
    assert "estimated work" in capsys.readouterr().err
    monkeypatch.setattr(budget, "MAX_MEMORY_BYTES", 1024)
    with pytest.raises(ModelError, match="run memory"):
        mcsyn.run_one(base(), max_steps=None)


def test_kernel_refusals_are_caught_in_python_first():
    # a run shorter than one step, and more output samples than the limit
    m = base(timing=mcsyn.Timing(duration_ms=1e-10))     # rounds to a whole number of steps: zero
    expect_error(m, "timing.duration_ms", "at least one step")
    m = base(timing=mcsyn.Timing(duration_ms=1e5, sample_interval_us=1.0))
    expect_error(m, "timing.sample_interval_us", "samples")
    m = base(sites=[mcsyn.SiteGroup(mcsyn.transporter_cycle("T", "glutamate", 1e7, 10, 10, 1), "volume",
                                    density_per_um3=10.0)],
             geometry=mcsyn.Geometry(outside="volume", varicosity_radius_um=1.0, domain_radius_um=1.1,
                                     volume_enters_cleft=False),
             voxel_um=10.0, timing=mcsyn.Timing(duration_ms=0.1, dt_fine_us=0.1, dt_volume_us=0.1))
    expect_error(m, "voxel_um", "too coarse")
