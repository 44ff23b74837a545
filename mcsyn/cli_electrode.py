"""``mcsyn electrode``: a virtual carbon-fibre electrode on the command line.

::

    mcsyn electrode fit TRACE.csv (--stim-times T1,T2,... | --pulses N [--frequency HZ] [--start S])
                    [--method fscv|amperometry|chronoamperometry] [--tau-e S] [--sample-rate HZ]
                    [--window S] [--fix-km UM] [--ci profile|bootstrap] [--boots N] [--figure PATH]
    mcsyn electrode simulate --preset dorsal-striatum|ventral-striatum|serotonergic --out TRACE.csv
                    [--pulses N] [--frequency HZ] [--start S] [--duration S] [--blocker-uM C --ki-uM K]
                    [--efflux-uM-per-s E] [--noise-nM SD] [--seed S] [--method ...] [--figure PATH]
    mcsyn electrode simulate --preset dorsal_striatal_dopamine|ventral_striatal_dopamine|serotonergic_field
                    --out TRACE.csv [--drug cocaine=1uM ...] [--runs N] [--box-um L] [--pulses N]
                    [--frequency HZ] [--start S] [--duration S] [--seed S] [--figure PATH]
    mcsyn electrode clearance TRACE.csv --ejection-time S
    mcsyn electrode bolus --amount-pmol P --volume-nl V --distance-um R --out TRACE.csv
                    [--blocker-uM C --ki-uM K] [--duration S] [--method chronoamperometry|...]

``fit`` fits the Michaelis-Menten model of evoked release (release per pulse, Vmax, Km) with
confidence intervals and draws the trace with the fitted curve (:mod:`mcsyn.tissue.mm_fit`).
``simulate`` with a tissue field preset runs the particle field (:mod:`mcsyn.tissue.evoked`): a
train recruiting every varicosity within half the box of a 7 µm carbon fibre through its centre,
``--runs`` runs, the FSCV reading of their mean, the fit (Km held at the field's own Km when the
trace does not determine it) with jackknife standard errors over the runs, and the figure. With a
calibration name (``dorsal-striatum``, ...) it writes a trace from the *deterministic well-mixed*
generator calibrated to it (a fit of that trace gives back the calibration's Vmax and Km).
``clearance`` reads a chronoamperometric bolus trace: amplitude, rise time, T20/T60/T80 and the
clearance rate (:func:`mcsyn.tissue.electrode.clearance_metrics`). ``bolus`` simulates that
experiment: 5-HT ejected at a distance from the electrode, spreading with D/λ² (D of the library's
serotonin entry, α and λ of Nicholson & Syková 1998) and cleared by SERT with the ``serotonergic``
calibration (:func:`mcsyn.tissue.deterministic.pressure_ejected_bolus`), seen by the electrode.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .tissue import electrode as _electrode
from .tissue import mm_fit as _mm
from .tissue import traces as _traces


def _times(text):
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of times in s") from None
    if not values:
        raise argparse.ArgumentTypeError("no stimulus times given")
    return values


def _electrode_options(p, default="fscv"):
    p.add_argument("--method", choices=tuple(_electrode.ELECTRODE_METHODS), default=default,
                   help="recording method (its response time, sampling rate and window are the defaults)")
    p.add_argument("--tau-e", dest="tau_s", type=float, default=None, metavar="S",
                   help="electrode response time constant τ_e in s (adsorption)")
    p.add_argument("--sample-rate", dest="sample_rate_hz", type=float, default=None, metavar="HZ")
    p.add_argument("--window", dest="window_s", type=float, default=None, metavar="S",
                   help="integration window of each sample, s")


def _stimulus_options(p, required):
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--stim-times", type=_times, default=None, metavar="T1,T2,...", help="pulse times in s")
    g.add_argument("--pulses", type=int, default=None, metavar="N", help="number of pulses in the train")
    p.add_argument("--frequency", type=float, default=50.0, metavar="HZ", help="train frequency (default 50 Hz)")
    p.add_argument("--start", type=float, default=None, metavar="S",
                   help="first pulse, s (default 1; 0.3 for a particle field)")


def add_command(sub):
    """Register ``mcsyn electrode`` on the subparsers ``sub``; returns the command function."""
    p = sub.add_parser("electrode", help="virtual electrode: fit evoked traces, simulate, clearance",
                       description="Fit the Michaelis-Menten model of evoked release to a trace (CSV with "
                                   "time_s, concentration_uM), simulate a trace, or read bolus clearance.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    f = actions.add_parser("fit", help="fit release per pulse, Vmax and Km with confidence intervals",
                           description="Fit dC/dt = [DA]p·Σδ(t - t_i) - Vmax·C/(Km + C), convolved with the "
                                       "electrode response, to a trace; print estimates with CIs; draw it.")
    f.add_argument("trace", metavar="TRACE.csv")
    _stimulus_options(f, required=True)
    _electrode_options(f)
    f.add_argument("--fix-km", dest="fix_km_uM", type=float, default=None, metavar="UM",
                   help="hold Km at this value (µM) and fit release and Vmax only")
    f.add_argument("--ci", choices=("profile", "bootstrap"), default="profile")
    f.add_argument("--boots", type=int, default=200, help="bootstrap resamples (with --ci bootstrap)")
    f.add_argument("--figure", default=None, metavar="PATH", help="figure path (default: TRACE_fit.png)")
    s = actions.add_parser("simulate", help="simulate an evoked trace: a particle tissue field or the well-mixed model",
                           description="An evoked trace seen by the electrode. With a tissue field preset (e.g. "
                                       "dorsal_striatal_dopamine) the particle field runs --runs times, the mean over "
                                       "its carbon fibre is read through the electrode and fitted (Vmax, Km, CIs); "
                                       "with a calibration name (e.g. dorsal-striatum) the deterministic well-mixed "
                                       "model (the field's mean-field limit) writes the trace.")
    s.add_argument("--preset", required=True, choices=tuple(_mm.EVOKED_CALIBRATIONS) + tuple(_field_presets()))
    _stimulus_options(s, required=False)
    _electrode_options(s)
    s.add_argument("--duration", type=float, default=None, metavar="S",
                   help="trace length, s (default 4 for the well-mixed model, 1.5 for a particle field)")
    s.add_argument("--drug", action="append", default=[], metavar="NAME=CONC",
                   help="a drug on the particle field's drug layer, e.g. cocaine=1uM (repeatable)")
    s.add_argument("--runs", type=int, default=4, metavar="N", help="particle-field runs averaged (default 4)")
    s.add_argument("--box-um", dest="box_um", type=float, default=10.0, metavar="L",
                   help="side of the particle field's periodic box, µm (default 10; the train recruits every "
                        "varicosity within L/2 of the centre, the electrode is a 2 µm sphere there)")
    s.add_argument("--blocker-uM", dest="inhibitor_uM", type=float, default=0.0, metavar="C",
                   help="well-mixed model: competitive uptake blocker concentration (µM); Km_app = Km (1 + C/Ki)")
    s.add_argument("--ki-uM", dest="ki_uM", type=float, default=1.0, metavar="K")
    s.add_argument("--efflux-uM-per-s", dest="efflux_uM_per_s", type=float, default=0.0, metavar="E",
                   help="well-mixed model: constant efflux (amphetamine-like reversed transport)")
    s.add_argument("--noise-nM", dest="noise_nM", type=float, default=10.0, metavar="SD",
                   help="well-mixed model: sample noise")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, metavar="TRACE.csv")
    s.add_argument("--figure", default=None, metavar="PATH",
                   help="draw the trace (a particle field: the trace with its fit; default TRACE_fit.png)")
    c = actions.add_parser("clearance", help="amplitude and T20/T60/T80 of an ejected bolus (chronoamperometry)",
                           description="Signal amplitude, rise time, T20, T60, T80 and the T20-T60 clearance rate "
                                       "of a trace after a pressure-ejected bolus.")
    c.add_argument("trace", metavar="TRACE.csv")
    c.add_argument("--ejection-time", dest="ejection_time_s", type=float, required=True, metavar="S")
    b = actions.add_parser("bolus", help="simulate a pressure-ejected 5-HT bolus and read its clearance",
                           description="5-HT ejected at a distance from the electrode (chronoamperometry of the "
                                       "serotonin clearance studies): the trace, T20/T60/T80 and the clearance rate.")
    b.add_argument("--amount-pmol", dest="amount_pmol", type=float, required=True, metavar="P")
    b.add_argument("--volume-nl", dest="volume_nl", type=float, required=True, metavar="V",
                   help="ejected volume (nL); the pipette concentration is P/V")
    b.add_argument("--distance-um", dest="distance_um", type=float, required=True, metavar="R",
                   help="pipette-electrode spacing (µm)")
    b.add_argument("--blocker-uM", dest="inhibitor_uM", type=float, default=0.0, metavar="C",
                   help="competitive SERT blocker (an SSRI), µM; Km_app = Km (1 + C/Ki)")
    b.add_argument("--ki-uM", dest="ki_uM", type=float, default=1.0, metavar="K")
    b.add_argument("--duration", type=float, default=30.0, metavar="S")
    _electrode_options(b, default="chronoamperometry")
    b.add_argument("--out", required=True, metavar="TRACE.csv")
    return command


def _field_presets():
    from .tissue import presets     # reads tissue.toml; small, but only the electrode command needs it
    return presets.names()


def _stims(args, start_s=1.0):
    if args.stim_times is not None:
        return np.array(args.stim_times)
    return _mm.stimulus_times_s(args.pulses if args.pulses is not None else 20, args.frequency,
                                start_s if args.start is None else args.start)


def _overrides(args):
    return {k: getattr(args, k) for k in ("tau_s", "sample_rate_hz", "window_s") if getattr(args, k) is not None}


def command(args):
    return {"fit": _fit, "simulate": _simulate, "clearance": _clearance, "bolus": _bolus}[args.action](args)


def _fit(args):
    times, conc = _traces.read_trace_csv(args.trace)
    fit = _mm.fit_evoked_trace(times, conc, _stims(args), electrode=args.method, fix_km_uM=args.fix_km_uM,
                               ci=args.ci, n_boot=args.boots, **_overrides(args))
    print(f"mcsyn electrode fit: {args.trace}, {len(fit.stim_times_s)} pulse(s)")
    print(fit.table())
    path = Path(args.figure) if args.figure else Path(args.trace).with_name(Path(args.trace).stem + "_fit.png")
    from . import plots
    print(f"figure: {plots.save_figure(figure_of_fit(fit, title=Path(args.trace).name), path)}")
    return 0


def _simulate(args):
    if args.preset not in _mm.EVOKED_CALIBRATIONS:
        return _simulate_field(args)
    cal = _mm.EVOKED_CALIBRATIONS[args.preset]
    trace = _mm.simulate_evoked_trace(_stims(args), cal["release_uM"], cal["vmax_uM_per_s"], cal["km_uM"],
                                      4.0 if args.duration is None else args.duration, electrode=args.method,
                                      efflux_uM_per_s=args.efflux_uM_per_s,
                                      inhibitor_uM=args.inhibitor_uM, ki_uM=args.ki_uM,
                                      noise_sd_uM=args.noise_nM * 1e-3 or 0.0, seed=args.seed, **_overrides(args))
    note = (f"mcsyn electrode simulate --preset {args.preset}: deterministic well-mixed model, "
            f"Vmax {cal['vmax_uM_per_s']} uM/s, Km {cal['km_uM']} uM, release {cal['release_uM']} uM/pulse; "
            f"blocker {args.inhibitor_uM} uM (Ki {args.ki_uM} uM), efflux {args.efflux_uM_per_s} uM/s; "
            f"pulses at {', '.join(f'{t:g}' for t in trace.stim_times_s)} s; electrode {args.method}")
    out = _traces.write_trace_csv(args.out, trace.times_s, trace.concentration_uM, comment=note)
    print(f"{note}\ntrace: {out}")
    if args.figure:
        from . import plots
        print(f"figure: {plots.save_figure(figure_of_trace(trace, title=args.preset), args.figure)}")
    return 0


def _drugs(items):
    out = {}
    for item in items:
        name, sep, conc = item.partition("=")
        if not sep or not name.strip() or not conc.strip():
            raise SystemExit(f"mcsyn electrode simulate: --drug {item!r} must be NAME=CONCENTRATION, e.g. cocaine=1uM")
        out[name.strip()] = conc.strip()
    return out


def _simulate_field(args):
    from .tissue import evoked
    stims = _stims(args, start_s=0.3)
    if len(stims) > 1 and np.any(np.abs(np.diff(stims) - np.diff(stims)[0]) > 1e-12):
        raise SystemExit("mcsyn electrode simulate: a particle field takes a regular train (--pulses, --frequency)")
    duration = 1.5 if args.duration is None else args.duration
    freq = 1.0 / float(np.diff(stims)[0]) if len(stims) > 1 else args.frequency
    drugs = _drugs(args.drug)
    model = evoked.evoked_model(args.preset, box_side_um=args.box_um, duration_ms=duration * 1e3,
                                n_pulses=len(stims), frequency_hz=freq, start_ms=float(stims[0]) * 1e3,
                                drugs=drugs or None)
    if args.method != "fscv" or _overrides(args):
        raise SystemExit("mcsyn electrode simulate: a particle field is read by FSCV at its defaults only")
    record = evoked.run_evoked(model, n_runs=args.runs, seed=args.seed)
    result = evoked.fit_evoked(record, jackknife=args.runs >= 3, hold_km_if_unidentifiable=True)
    cal = result.calibration
    drug_text = ", ".join(f"{k} {v}" for k, v in drugs.items()) or "no drug"
    note = (f"mcsyn electrode simulate --preset {args.preset}: particle field, {args.box_um:g} um periodic box, "
            f"{args.runs} runs (seed {args.seed}), {drug_text}; its uptake Vmax {cal['vmax_uM_per_s']:.4g} uM/s, "
            f"Km {cal['km_uM']:.4g} uM (unblocked carriers); {len(stims)} pulses at {freq:g} Hz from {stims[0]:g} s; "
            f"electrode fscv on the mean of a 7 um carbon fibre through the centre")
    out = _traces.write_trace_csv(args.out, result.trace.times_s, result.trace.concentration_uM, comment=note)
    print(f"{note}\ntrace: {out}")
    if result.km_held:
        print(f"Km is not determined by this trace (it peaks near Km; the fit runs off to Km -> inf): "
              f"held at the field's Km {cal['km_uM']:.4g} uM, so Vmax/Km is the fitted clearance")
    print(result.fit.table())
    print(f"field's own low-concentration clearance (carrier-bound state included): "
          f"{evoked.linear_clearance_rate_per_s(model):.4g} /s; its Vmax/Km: "
          f"{cal['vmax_uM_per_s'] / cal['km_uM']:.4g} /s")
    for name, se in result.jackknife_se.items():
        print(f"jackknife SE over runs: {_mm.PARAMETER_LABELS[name]:32s} {se:10.4g}")
    path = Path(args.figure) if args.figure else Path(args.out).with_name(Path(args.out).stem + "_fit.png")
    from . import plots
    title = f"{args.preset.replace('_', ' ')}, {drug_text}"
    print(f"figure: {plots.save_figure(figure_of_fit(result.fit, title=title), path)}")
    return 0


def _clearance(args):
    times, conc = _traces.read_trace_csv(args.trace)
    print(f"mcsyn electrode clearance: {args.trace}, ejection at {args.ejection_time_s:g} s")
    _print_clearance(_electrode.clearance_metrics(times, conc, args.ejection_time_s))
    return 0


def _bolus(args):
    from . import library
    from .tissue import deterministic as _det
    cal = _mm.EVOKED_CALIBRATIONS["serotonergic"]
    transport = _det.FieldTransport(
        diffusion_um2_per_s=library.raw("transmitters")["serotonin"]["diffusion_um2_per_ms"] * 1e3,
        tortuosity=1.6, volume_fraction=0.2, vmax_uM_per_s=cal["vmax_uM_per_s"],
        km_uM=_det.competitive_km_uM(cal["km_uM"], args.inhibitor_uM, args.ki_uM))
    duration = _electrode.require_positive("duration", args.duration, high=3600.0)
    fine = np.linspace(0.0, duration, int(duration * 200) + 1)
    bolus = _det.pressure_ejected_bolus(args.amount_pmol, args.volume_nl, args.distance_um, transport, fine)
    seen = _electrode.electrode_response(fine, bolus.at_electrode_uM, units="uM", method=args.method,
                                         **_overrides(args))
    note = (f"mcsyn electrode bolus: {args.amount_pmol:g} pmol 5-HT in {args.volume_nl:g} nL at "
            f"{args.distance_um:g} um, SERT Vmax {transport.vmax_uM_per_s:g} uM/s, Km {transport.km_uM:.4g} uM "
            f"(blocker {args.inhibitor_uM:g} uM, Ki {args.ki_uM:g} uM); electrode {args.method}; ejection at 0 s")
    out = _traces.write_trace_csv(args.out, seen.times_s, seen.concentration_uM, comment=note)
    print(f"{note}\ntrace: {out}")
    _print_clearance(_electrode.clearance_metrics(seen.times_s, seen.concentration_uM, 0.0))
    return 0


def _print_clearance(m):
    for label, value, unit in (("baseline", m.baseline_uM, "µM"), ("amplitude", m.amplitude_uM, "µM"),
                               ("rise time (ejection to peak)", m.time_to_peak_s, "s"),
                               ("T20 (peak to 20% decline)", m.t20_s, "s"), ("T60", m.t60_s, "s"),
                               ("T80 (peak to 80% decline)", m.t80_s, "s"),
                               ("clearance rate (T20-T60)", m.clearance_rate_uM_per_s, "µM/s")):
        print(f"  {label:30s} {value:10.4g} {unit}")


# ---------------------------------------------------------------------------------------------
# figures (matplotlib is imported here, not at start-up: ``mcsyn --help`` must stay quick)

def _stim_marks(ax, stims, y):
    ax.plot(stims, np.full(len(stims), y), linestyle="none", marker="|", markersize=7, color="#D55E00")
    ax.annotate(f"stimulation ({len(stims)} pulse{'s' if len(stims) > 1 else ''})", (stims[-1], y),
                xytext=(6, -3), textcoords="offset points", fontsize=7.5, color="#D55E00")


def figure_of_fit(fit: _mm.MMFit, title=""):
    """Trace (µM vs s) with the fitted model, the electrode-filtered curve and the stimulus marks,
    and the estimates with their intervals, in the style of the voltammetry papers."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(5.2, 3.4))
    ax = fig.add_subplot()
    ax.plot(fit.times_s, fit.data_uM, "o", markersize=3.2, color="#000000", label="recorded samples")
    shown = fit.fine_times_s >= fit.times_s[0] - 0.5 / fit.electrode.sample_rate_hz
    ax.plot(fit.fine_times_s[shown], fit.fine_model_uM[shown], "--", color="#56B4E9", linewidth=1.0,
            label="fitted concentration")
    ax.plot(fit.fine_times_s[shown], fit.fine_uM[shown], "-", color="#0072B2",
            label="fitted model through the electrode")
    top = max(float(np.max(fit.data_uM)), float(np.max(fit.fine_model_uM)))
    _stim_marks(ax, fit.stim_times_s, -0.08 * top)
    lines = []
    for name, label in (("release_uM", "[DA]p"), ("vmax_uM_per_s", "Vmax"), ("km_uM", "Km")):
        unit = "µM/s" if name == "vmax_uM_per_s" else "µM"
        if name in fit.fixed:
            lines.append(f"{label} = {fit.fixed[name]:.3g} {unit} (fixed)")
        else:
            lo, hi = fit.intervals[name]
            lines.append(f"{label} = {fit.estimates[name]:.3g} {unit} [{lo:.3g}, {hi:.3g}]")
    lines.append(f"{fit.level * 100:g}% CI, {fit.ci_method}")
    ax.text(0.98, 0.96, "\n".join(lines), transform=ax.transAxes, ha="right", va="top", fontsize=7.5,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#bbbbbb"})
    ax.set_xlabel("Time (s)")
    ax.set_ylabel("Concentration (µM)")
    ax.set_title(f"Evoked release and uptake{': ' + title if title else ''} ({fit.electrode.name}, "
                 f"{fit.electrode.sample_rate_hz:g} Hz)")
    ax.set_ylim(-0.15 * top, 1.12 * top)
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.7), frameon=False, fontsize=7.5)
    return fig


def figure_of_trace(trace: _mm.EvokedTrace, title=""):
    """A simulated trace: the true concentration and the electrode's samples."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(5.2, 3.4))
    ax = fig.add_subplot()
    ax.plot(trace.fine_times_s, trace.fine_uM, "-", color="#56B4E9", label="concentration at the electrode")
    ax.plot(trace.times_s, trace.concentration_uM, "o-", markersize=3.2, color="#000000", linewidth=0.8,
            label="electrode samples")
    top = float(np.max(trace.fine_uM))
    _stim_marks(ax, trace.stim_times_s, -0.08 * top)
    ax.set_xlabel("Time (s)")
    ax.set_ylabel("Concentration (µM)")
    ax.set_title(f"Simulated evoked trace{': ' + title if title else ''}")
    ax.set_ylim(-0.15 * top, 1.12 * top)
    ax.legend(loc="upper right", frameon=False)
    return fig
