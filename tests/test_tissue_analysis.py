"""The analysis side of tissue fields: the deterministic reaction-diffusion cross-check against
closed forms, the virtual electrode, the Michaelis-Menten fit of evoked traces (recovery, a
competitive blocker, efflux), the chronoamperometric bolus, the CSV reader and ``mcsyn electrode``.

The fits are of single traces with fixed noise seeds; each check is that the fit's profile
interval at LEVEL (99.99 %, i.e. ~3.9 standard errors, the project's 4-5 SE rule) holds the
generator's value (or the value the closed form predicts), nothing tuned to pass.
"""
import math

import numpy as np
import pytest

from mcsyn import ModelError
from mcsyn.tissue import deterministic as det
from mcsyn.tissue import electrode as el
from mcsyn.tissue import mm_fit as mm
from mcsyn.tissue import traces

DA = dict(diffusion_um2_per_s=763.0, tortuosity=1.54, volume_fraction=0.21)   # Ejdrup et al. code values


# ---------------------------------------------------------------------------------------------
# the deterministic field against closed forms

def test_point_source_in_periodic_box_matches_gaussian_image_sum():
    transport = det.FieldTransport(**DA, k_removal_per_s=2.0)
    box, n, src_pos = 20.0, 20, (5.5, 10.5, 3.5)
    sources = det.FieldSources(release_times_s=np.array([0.0]), release_positions_um=np.array([src_pos]),
                               release_molecules=np.array([3000.0]))
    times = np.array([0.02, 0.05, 0.1])
    sol = det.solve_field(box, n, transport, sources, times)
    closed = det.point_source_periodic_uM(3000.0, src_pos, box, n, transport, 0.1)
    # second-order finite differences: error ~ h² / (12 σ²) at σ = sqrt(2 D* t) = 5.7 µm, well under 2 %
    assert np.max(np.abs(sol.final_field_uM - closed)) < 0.02 * closed.max()
    # first-order removal is linear: the box mean is exactly the released amount times exp(-k t)
    expected = det.molecules_to_uM(3000.0, box ** 3, DA["volume_fraction"]) * np.exp(-2.0 * times)
    np.testing.assert_allclose(sol.box_mean_uM, expected, rtol=1e-5)


def test_spread_grows_as_2_D_over_lambda_squared_t():
    """On the lattice the second moment of the discrete diffusion grows exactly as 2 D* t per axis;
    D* = D / λ² is written out here, not read from the solver."""
    transport = det.FieldTransport(**DA)
    box, n, t = 20.0, 20, 0.015
    centre = (10.5, 10.5, 10.5)
    sources = det.FieldSources(release_times_s=np.array([0.0]), release_positions_um=np.array([centre]),
                               release_molecules=np.array([1e4]))
    field = det.solve_field(box, n, transport, sources, [t]).final_field_uM
    x = np.arange(n) + 0.5 - centre[0]
    variance = np.sum(field.sum(axis=(1, 2)) * x ** 2) / field.sum()
    # σ = 3.1 µm, so the half box is 3.2 σ: a Gaussian's x² moment beyond 3.2 σ is 1.7 % of σ², the
    # most the periodic wrap can take off
    assert variance == pytest.approx(2.0 * DA["diffusion_um2_per_s"] / DA["tortuosity"] ** 2 * t, rel=0.02)


def test_closed_form_images_wrap_around_the_box():
    transport = det.FieldTransport(**DA)
    # at long times the periodic Gaussian flattens to the uniform level
    late = det.point_source_periodic_uM(1000.0, (1.0, 1.0, 1.0), 10.0, 10, transport, 5.0)
    np.testing.assert_allclose(late, det.molecules_to_uM(1000.0, 1000.0, DA["volume_fraction"]), rtol=1e-6)


def test_steady_state_of_uniform_release_with_mm_uptake():
    transport = det.FieldTransport(**DA, vmax_uM_per_s=4.5, km_uM=0.2)
    # relaxation rate Vmax Km / (Km + C*)² ~ 14 /s: 3 s is 40 time constants
    sol = det.solve_field(10.0, 4, transport, det.FieldSources(uniform_uM_per_s=1.0), [3.0], method="BDF")
    assert sol.box_mean_uM[-1] == pytest.approx(0.2 * 1.0 / (4.5 - 1.0), rel=1e-4)
    assert det.steady_state_uM(1.0, 4.5, 0.2) == pytest.approx(0.2 / 3.5)
    # with a first-order term too: R = Vmax C/(Km + C) + k C at the root
    c = det.steady_state_uM(1.0, 4.5, 0.2, k_removal_per_s=3.0)
    assert 4.5 * c / (0.2 + c) + 3.0 * c == pytest.approx(1.0, rel=1e-12)
    with pytest.raises(ModelError, match="release_uM_per_s"):
        det.steady_state_uM(5.0, 4.5, 0.2)


def test_releases_are_conserved_without_removal_and_detectors_see_the_mean():
    transport = det.FieldTransport(**DA)
    positions = np.array([[1.0, 2.0, 3.0], [7.0, 7.0, 7.0], [9.9, 0.0, 5.0]])
    sources = det.FieldSources(release_times_s=np.array([0.0, 0.01, 0.01]), release_positions_um=positions,
                               release_molecules=np.array([1000.0, 2000.0, 500.0]))
    sol = det.solve_field(10.0, 10, transport, sources, [0.005, 0.01, 0.5],
                          detectors={"probe": det.SphereDetector((5.0, 5.0, 5.0), 3.0)})
    per = det.molecules_to_uM(1.0, 1000.0, DA["volume_fraction"])
    np.testing.assert_allclose(sol.box_mean_uM, per * np.array([1000.0, 3500.0, 3500.0]), rtol=1e-6)
    # by 0.5 s the field is uniform (L²/D* ~ 0.3 s), so a detector reads the box mean
    assert sol.detector_uM["probe"][-1] == pytest.approx(sol.box_mean_uM[-1], rel=1e-3)


def test_tonic_level_of_steady_sources_with_linear_removal():
    """With first-order removal only, the box mean obeys dC/dt = R - k C whatever the sources'
    positions: the tonic level is R / k (the case where the particle picture's mean is exact)."""
    rng = np.random.default_rng(0)
    positions = rng.uniform(0.0, 10.0, (40, 3))
    sources = det.tonic_sources(positions, 4.0, 0.06, 3000.0)
    rates = sources.steady_molecules_per_s
    transport = det.FieldTransport(**DA, k_removal_per_s=10.0)
    sol = det.solve_field(10.0, 5, transport, sources, np.linspace(0.0, 1.5, 31))
    expected = det.molecules_to_uM(rates.sum(), 1000.0, DA["volume_fraction"]) / 10.0
    assert det.tonic_level_uM(sol, after_s=1.0) == pytest.approx(expected, rel=1e-4)     # e^-10 left


def test_evoked_clearance_in_the_linear_regime_and_stimulated_sites():
    sites = np.array([[1.0, 1.0, 1.0], [9.5, 1.0, 1.0], [5.0, 5.0, 5.0]])
    src = det.stimulated_releases(sites, 10.0, (0.5, 1.0, 1.0), 2.0, [0.1, 0.2], 3000.0, release_probability=0.5)
    assert src.release_molecules.tolist() == [1500.0] * 4            # two sites (one across the boundary) × 2 pulses
    with pytest.raises(ModelError, match="stim_radius_um"):
        det.stimulated_releases(sites, 10.0, (0.5, 1.0, 1.0), 6.0, [0.1], 3000.0)
    # a small uniform release far below Km: t½ = ln 2 / (Vmax/Km + k)
    transport = det.FieldTransport(**DA, vmax_uM_per_s=4.0, km_uM=0.2, k_removal_per_s=0.0)
    grid = (np.indices((4, 4, 4)).reshape(3, -1).T + 0.5) * 2.5
    tiny = det.FieldSources(release_times_s=np.full(64, 0.05), release_positions_um=grid,
                            release_molecules=np.full(64, 0.1))       # C ~ 5e-5 µM << Km
    t = np.arange(0.0, 0.3, 5e-4)
    sol = det.solve_field(10.0, 4, transport, tiny, t)
    assert det.clearance_half_time_s(t, sol.box_mean_uM, 0.05) == pytest.approx(math.log(2) / 20.0, rel=2e-3)


def test_field_input_errors_name_the_field():
    transport = det.FieldTransport(**DA)
    with pytest.raises(ModelError, match=r"detectors\['e'\].center_um"):
        det.solve_field(10.0, 5, transport, det.FieldSources(), [0.1],
                        detectors={"e": det.SphereDetector((12.0, 1.0, 1.0), 1.0)})
    with pytest.raises(ModelError, match="radius_um"):
        det.solve_field(10.0, 5, transport, det.FieldSources(), [0.1],
                        detectors={"e": det.SphereDetector((1.1, 1.1, 1.1), 0.1)})
    with pytest.raises(ModelError, match=r"release_positions_um\[1\]"):
        det.solve_field(10.0, 5, transport, det.FieldSources(
            release_times_s=np.array([0.0, 0.0]), release_positions_um=np.array([[1.0, 1, 1], [1.0, 10.5, 1]]),
            release_molecules=np.array([1.0, 1.0])), [0.1])
    with pytest.raises(ModelError, match="tortuosity"):
        det.FieldTransport(diffusion_um2_per_s=763.0, tortuosity=0.5)


# ---------------------------------------------------------------------------------------------
# the electrode response

def test_first_order_response_and_window_are_exact():
    tau, step = 0.1, 1e-3
    t = np.arange(0.0, 1.0 + step / 2, step)
    c = np.where(t >= 0.2, 1.0, 0.0)
    c[t == 0.2] = 0.0           # a step resolved as a ramp over one fine step
    a = el.first_order_response(c, step, tau)
    # a ramp over [0.2, 0.201] then constant: exact response from the linear-input formula
    later = t >= 0.3
    ramp_end = 1.0 - (1.0 - math.exp(-step / tau)) * tau / step
    np.testing.assert_allclose(a[later], 1.0 - (1.0 - ramp_end) * np.exp(-(t[later] - 0.201) / tau), rtol=1e-10)
    # the window mean of a linear signal is its value at the window's midpoint
    ramp = 2.0 * t + 1.0
    np.testing.assert_allclose(el.windowed_samples(t, ramp, np.array([0.5, 0.9]), 0.1), [1.9, 2.7], rtol=1e-12)


def test_fscv_samples_at_10_hz_in_uM_from_nM():
    t = np.linspace(0.0, 2.0, 2001)
    trace = el.electrode_response(t, np.full_like(t, 250.0), units="nM", method="fscv")
    np.testing.assert_allclose(np.diff(trace.times_s), 0.1)
    np.testing.assert_allclose(trace.concentration_uM, 0.25, rtol=1e-12)
    # the response lags: a step seen by FSCV (τ_e 0.1 s) is at ~1 - e^-1 one τ later
    step = el.electrode_response(t, np.where(t > 1.0, 1.0, 0.0), units="uM", method="fscv")
    # (the scan window's 8.5 ms mean sits 4 ms before the scan: 1 - e^-(0.096/0.1))
    at = np.isclose(step.times_s, 1.1)
    assert step.concentration_uM[at][0] == pytest.approx(1 - math.exp(-0.0957 / 0.1), abs=2e-3)
    amp = el.electrode_response(t, np.where(t > 1.0, 1.0, 0.0), units="uM", method="amperometry")
    assert amp.concentration_uM[np.isclose(amp.times_s, 1.1)][0] == pytest.approx(1.0, abs=0.1)
    with pytest.raises(ModelError, match=r"times_s\[2\]"):
        el.electrode_response([0.0, 1.0, 0.5, 2.0], [0, 0, 0, 0])
    with pytest.raises(ModelError, match="window_s"):
        el.electrode_method("fscv", window_s=0.5)


# ---------------------------------------------------------------------------------------------
# the Michaelis-Menten analysis

TRAIN = mm.stimulus_times_s(20, 50.0, 1.0)
LEVEL = 0.9999
DS = mm.EVOKED_CALIBRATIONS["dorsal-striatum"]


def _inside(fit, name, value):
    lo, hi = fit.intervals[name]
    return lo <= value <= hi


def test_lambert_w_of_exp_matches_scipy_and_does_not_overflow():
    from scipy.special import lambertw
    y = np.linspace(-40.0, 700.0, 5001)
    np.testing.assert_allclose(mm._w_of_exp(y), lambertw(np.exp(y)).real, rtol=1e-13)
    w = mm._w_of_exp(np.array([5000.0]))[0]
    assert w + math.log(w) == pytest.approx(5000.0, rel=1e-14)
    assert mm._w_of_exp_scalar(3.0) == pytest.approx(lambertw(math.exp(3.0)).real, rel=1e-14)


def test_lambert_w_model_matches_the_ode_generator():
    trace = mm.simulate_evoked_trace(TRAIN, 0.1, 4.5, 0.2, 3.0, electrode="amperometry", tau_s=0.0)
    # the generator's grid holds each pulse time twice (before and after the jump); the closed form
    # is right-continuous, so it is compared away from the jumps
    away = ~np.isin(trace.fine_times_s, TRAIN)
    closed = mm.wightman_model_uM(trace.fine_times_s[away], TRAIN, 0.1, 4.5, 0.2)
    np.testing.assert_allclose(closed, trace.fine_uM[away], atol=1e-8)


def test_fit_of_the_deterministic_field_recovers_vmax_and_km():
    """Every site recruited equally: the field's detector series is the well-mixed model, seen by
    FSCV, with 10 nM noise; the fit's LEVEL profile intervals hold the field's Vmax and Km."""
    vmax, km, release = 4.5, 0.2, 0.15
    transport = det.FieldTransport(**DA, vmax_uM_per_s=vmax, km_uM=km)
    box, n = 10.0, 4
    centres = (np.indices((n, n, n)).reshape(3, -1).T + 0.5) * box / n
    per_cell = release / det.molecules_to_uM(1.0, (box / n) ** 3, DA["volume_fraction"])
    sources = det.FieldSources(release_times_s=np.repeat(TRAIN, n ** 3),
                               release_positions_um=np.tile(centres, (TRAIN.size, 1)),
                               release_molecules=np.full(TRAIN.size * n ** 3, per_cell))
    fine_t = np.arange(0.0, 4.0 + 1e-4, 2.5e-4)      # a jump is a ramp over one step of the series
    field = det.solve_field(box, n, transport, sources, fine_t,
                            detectors={"electrode": det.SphereDetector((5.0, 5.0, 5.0), 3.0)})
    np.testing.assert_allclose(field.detector_uM["electrode"], mm.wightman_model_uM(fine_t, TRAIN, release, vmax, km),
                               atol=2e-5)
    seen = el.electrode_response(fine_t, field.detector_uM["electrode"] * 1e3, units="nM", method="fscv")
    noisy = seen.concentration_uM + np.random.default_rng(7).normal(0.0, 0.01, seen.times_s.size)
    fit = mm.fit_evoked_trace(seen.times_s, noisy, TRAIN, electrode="fscv", level=LEVEL)
    assert _inside(fit, "vmax_uM_per_s", vmax) and _inside(fit, "km_uM", km) and _inside(fit, "release_uM", release)


def test_competitive_blocker_raises_apparent_km_only():
    inhibitor, ki = 2.0, 1.0                     # Km_app = 3 Km
    control = mm.simulate_evoked_trace(TRAIN, 0.15, DS["vmax_uM_per_s"], DS["km_uM"], 4.0, noise_sd_uM=0.01, seed=1)
    blocked = mm.simulate_evoked_trace(TRAIN, 0.15, DS["vmax_uM_per_s"], DS["km_uM"], 4.0, noise_sd_uM=0.01, seed=2,
                                       inhibitor_uM=inhibitor, ki_uM=ki)
    fit_c = mm.fit_evoked_trace(control.times_s, control.concentration_uM, TRAIN, level=LEVEL)
    fit_b = mm.fit_evoked_trace(blocked.times_s, blocked.concentration_uM, TRAIN, level=LEVEL)
    assert _inside(fit_c, "km_uM", DS["km_uM"])
    assert _inside(fit_b, "km_uM", DS["km_uM"] * (1.0 + inhibitor / ki))
    assert _inside(fit_b, "vmax_uM_per_s", DS["vmax_uM_per_s"]) and _inside(fit_c, "vmax_uM_per_s", DS["vmax_uM_per_s"])
    # the ratio of the fitted Km is (1 + C/Ki) within the two intervals' combined width (log scale)
    half = [math.log(f.intervals["km_uM"][1] / f.intervals["km_uM"][0]) / 2.0 for f in (fit_c, fit_b)]
    ratio = fit_b.estimates["km_uM"] / fit_c.estimates["km_uM"]
    assert abs(math.log(ratio / 3.0)) <= math.hypot(*half)


def test_efflux_raises_baseline_and_slows_apparent_clearance_as_predicted():
    vmax, km, efflux = DS["vmax_uM_per_s"], DS["km_uM"], 1.5
    control = mm.simulate_evoked_trace(TRAIN, 0.15, vmax, km, 4.0)
    amph = mm.simulate_evoked_trace(TRAIN, 0.15, vmax, km, 4.0, efflux_uM_per_s=efflux, noise_sd_uM=0.01, seed=3)
    baseline, vmax_app, km_app = mm.efflux_apparent(vmax, km, efflux)
    assert amph.baseline_uM == pytest.approx(km * efflux / (vmax - efflux)) == pytest.approx(baseline)
    assert amph.fine_uM[0] == pytest.approx(baseline)

    def half_time(trace):
        excess = trace.fine_uM - trace.fine_uM[0]
        i = int(np.argmax(excess))
        return trace.fine_times_s[i + np.flatnonzero(excess[i:] <= excess[i] / 2.0)[0]] - trace.fine_times_s[i]
    assert half_time(amph) > 1.2 * half_time(control)
    fit = mm.fit_evoked_trace(amph.times_s, amph.concentration_uM, TRAIN, level=LEVEL)
    assert fit.baseline_uM == pytest.approx(baseline, abs=0.01)          # ~5 SE of a 10 nM-noise offset
    assert _inside(fit, "vmax_uM_per_s", vmax_app) and _inside(fit, "km_uM", km_app)
    assert not _inside(fit, "vmax_uM_per_s", vmax)


def test_fixed_km_and_bootstrap_intervals():
    trace = mm.simulate_evoked_trace(TRAIN, 0.15, 4.5, 0.2, 4.0, noise_sd_uM=0.01, seed=4)
    fit = mm.fit_evoked_trace(trace.times_s, trace.concentration_uM, TRAIN, fix_km_uM=0.2, ci="bootstrap",
                              n_boot=40, seed=1)
    assert "km_uM" not in fit.intervals and fit.estimates["km_uM"] == 0.2
    assert _inside(fit, "vmax_uM_per_s", 4.5)
    assert "(fixed)" in fit.table()
    with pytest.raises(ModelError, match="stim_times_s"):
        mm.fit_evoked_trace(trace.times_s, trace.concentration_uM, [10.0])


# ---------------------------------------------------------------------------------------------
# chronoamperometry of an ejected bolus

def test_bolus_matches_the_uniform_sphere_closed_form_and_conserves_mass():
    transport = det.FieldTransport(diffusion_um2_per_s=600.0, tortuosity=1.6, volume_fraction=0.2,
                                   k_removal_per_s=0.5)
    t = np.linspace(0.0, 10.0, 101)
    sol = det.pressure_ejected_bolus(1.0, 0.005, 200.0, transport, t, n_shells=600)
    c0 = 1.0 / 0.005 * det.PMOL_PER_NL_IN_UM
    closed = det.uniform_sphere_release_uM(200.0, 10.0, sol.radius_of_bolus_um, c0, transport)
    assert sol.at_electrode_uM[-1] == pytest.approx(closed, rel=0.01)
    np.testing.assert_allclose(sol.remaining_molecules_fraction[:11], np.exp(-0.5 * t[:11]), rtol=1e-4)


def test_clearance_metrics_of_an_exponential_and_an_uptake_blocker():
    t = np.arange(0.0, 20.0, 0.2)
    y = np.where(t >= 2.0, 0.5 * np.exp(-(t - 2.0) / 3.0), 0.0) + 0.01
    m = el.clearance_metrics(t, y, 1.0)
    assert m.amplitude_uM == pytest.approx(0.5)
    assert m.baseline_uM == pytest.approx(0.01)
    assert m.t20_s == pytest.approx(3.0 * math.log(1 / 0.8), abs=0.01)
    assert m.t80_s == pytest.approx(3.0 * math.log(5.0), abs=0.02)
    assert m.clearance_rate_uM_per_s == pytest.approx(0.2 / (3.0 * math.log(0.8 / 0.4)), rel=0.01)
    # a 5-HT bolus 200 µm away; lowering Vmax (an SSRI) lengthens T80
    times = np.linspace(0.0, 30.0, 301)
    t80 = []
    for vmax in (0.39, 0.39 / 5.0):
        tr = det.FieldTransport(diffusion_um2_per_s=600.0, vmax_uM_per_s=vmax, km_uM=0.17)
        bolus = det.pressure_ejected_bolus(0.01, 0.001, 200.0, tr, times, n_shells=300)
        seen = el.electrode_response(times, bolus.at_electrode_uM, units="uM", method="chronoamperometry")
        t80.append(el.clearance_metrics(seen.times_s, seen.concentration_uM, 0.0).t80_s)
    assert t80[1] > t80[0]


# ---------------------------------------------------------------------------------------------
# CSV traces and the command line

def _write(tmp_path, text):
    path = tmp_path / "trace.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_trace_csv_round_trip_and_nM(tmp_path):
    path = traces.write_trace_csv(tmp_path / "t.csv", [0.0, 0.1, 0.2, 0.3], [0.0, 0.5, 0.25, 0.1], comment="hi")
    t, c = traces.read_trace_csv(path)
    np.testing.assert_allclose(c, [0.0, 0.5, 0.25, 0.1])
    _, c_nm = traces.read_trace_csv(_write(tmp_path, "time_s,concentration_nM\n0,0\n0.1,500\n0.2,250\n0.3,100\n"))
    np.testing.assert_allclose(c_nm, [0.0, 0.5, 0.25, 0.1])


@pytest.mark.parametrize("text, where", [
    ("time_ms,concentration_uM\n0,0\n", "time_ms"),
    ("time_s,concentration\n0,0\n", "concentration"),
    ("time_s,concentration_uM\n0,0\n0.1,1\n0.1,2\n0.3,1\n", "row 3, column time_s"),
    ("time_s,concentration_uM\n0,0\n0.1,nan\n0.2,2\n0.3,1\n", "row 2, column concentration_uM"),
    ("time_s,concentration_uM\n0,0\n,1\n0.2,2\n0.3,1\n", "row 2, column time_s"),
    ("time_s,concentration_uM\n0,0\n0.1,abc\n0.2,2\n0.3,1\n", "row 2, column concentration_uM"),
    ("time_s,concentration_uM\n0,0\n0.1,1\n", "rows"),
])
def test_bad_trace_csv_names_column_and_row(tmp_path, text, where):
    with pytest.raises(ModelError) as err:
        traces.read_trace_csv(_write(tmp_path, text))
    assert where in str(err.value)


def test_electrode_cli_simulate_fit_clearance(tmp_path, capsys):
    from mcsyn.cli import main
    trace = tmp_path / "ds.csv"
    assert main(["electrode", "simulate", "--preset", "dorsal-striatum", "--out", str(trace)]) == 0
    figure = tmp_path / "fit.png"
    assert main(["electrode", "fit", str(trace), "--pulses", "20", "--frequency", "50", "--start", "1",
                 "--figure", str(figure)]) == 0
    out = capsys.readouterr().out
    assert "Vmax (µM/s)" in out and "95% CI (profile)" in out
    assert figure.stat().st_size > 10_000
    bad = _write(tmp_path, "time_s,concentration_uM\n0,0\n0.2,1\n0.1,2\n0.3,1\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["electrode", "fit", str(bad), "--stim-times", "0.05"])
    assert exit_info.value.code == 2
    assert "row 3, column time_s" in capsys.readouterr().err
    assert main(["electrode", "clearance", str(trace), "--ejection-time", "1.0"]) == 0
    assert "T80" in capsys.readouterr().out
    t80 = []
    for blocker in ("0", "4"):                     # an SSRI at 4 Ki: Km × 5, so T80 lengthens
        assert main(["electrode", "bolus", "--amount-pmol", "0.01", "--volume-nl", "0.001", "--distance-um",
                     "100", "--duration", "20", "--blocker-uM", blocker, "--out", str(tmp_path / "b.csv")]) == 0
        line = [ln for ln in capsys.readouterr().out.splitlines() if "T80" in ln][0]
        t80.append(float(line.split()[-2]))
    assert t80[1] > t80[0]


def test_a_trace_that_does_not_determine_km_is_a_clear_error_not_an_overflow():
    from mcsyn.tissue.mm_fit import KmNotDetermined, fit_evoked_trace
    t = np.arange(0.0, 3.0, 0.1)
    c = 0.02 * np.exp(-np.clip(t - 0.5, 0, None) * 10.0) * (t >= 0.5)   # 20 nM, far below any Km
    with pytest.raises(KmNotDetermined, match="fix_km_uM"):
        fit_evoked_trace(t, c, [0.45])
