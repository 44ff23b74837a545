"""What a patch-clamp rig would record: the postsynaptic current of a run, in pA.

A run counts receptors per state (columns ``"<group>:<state>"`` of
:func:`mcsyn.simulate.series_columns`). Under a :class:`VoltageClamp` each open channel of a
ligand-gated receptor passes a current ``γ · B(V) · (V − E_rev)``: ``γ`` is the single-channel
conductance of its open state (``conductance_pS`` of the library entry), ``E_rev`` its reversal
potential and ``B(V)`` the fraction of channels not blocked by extracellular Mg²⁺ (NMDA receptors;
1 for the others). So per site group

    <group>:current_pA(t) = Σ_open states n_state(t) · ε_state · γ_state · B(V) · (V − E_rev) · 1e-3

(pS · mV = fA; 1e-3 turns fA into pA), and ``current_pA`` is the sum over groups. Inward currents
are negative (the usual sign of a voltage-clamp record). ``ε_state`` is the state's activation
weight (:meth:`mcsyn.schemes.KineticScheme.activation_weights`): 1 for the receptor's own open
states; an agonist-bound open state (:class:`mcsyn.mechanisms.Agonist`) conducts at the
receptor's conductance times the drug's efficacy.

The Mg²⁺ block is the equilibrium block of Jahr & Stevens 1990 (J Neurosci 10:3178),
``B(V) = 1 / (1 + [Mg²⁺]o / k0 · exp(−a · V))``, constants in the NMDA library entry (k0 = 3.57 mM,
a = 0.062 /mV). Taken as instantaneous: the gating of the kinetic schemes does not depend on V, so
one run's open counts serve every holding potential (:func:`iv_curve`).

G-protein-coupled receptors (no ``ionotropic = true`` in the library) pass no current and are left
out. Which library entry a site group is follows from its scheme's name (the library sets it to
the entry's name); ``receptors={label: entry or None}`` overrides that for custom schemes.

Functions: :func:`mg_block`, :func:`channels`, :func:`current_columns`, :func:`current_metrics`,
:func:`fit_decay`, :func:`run_current_metrics`, :func:`iv_curve`, :func:`ensemble_currents`,
:func:`ensemble_current_metrics`, :func:`amplitude_statistics`, :func:`plot_current`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import library
from .errors import ModelError
from .units import parse_quantity

HOLDING_LIMIT_MV = 150.0          # commands beyond it are refused, not clipped
REVERSAL_LIMIT_MV = 200.0
TEMPERATURE_RANGE_C = (0.0, 45.0)
PA_PER_PS_MV = 1e-3               # pS × mV = fA = 1e-3 pA
PC_PER_PA_MS = 1e-3               # pA × ms = fC = 1e-3 pC
DECAY_FIT_START_FRACTION = 0.8
DECAY_FIT_MIN_POINTS = 4


@dataclass(frozen=True)
class VoltageClamp:
    """A voltage clamp: holding potential, external [Mg²⁺] and (optionally) the recording temperature.

    Parameters
    ----------
    holding_potential_mV : float or str
        Command potential, within ±150 mV (``-70`` or ``"-70 mV"``).
    external_mg_mM : float or str
        Extracellular Mg²⁺ (``1.0`` or ``"1 mM"``); 0 for a Mg²⁺-free bath.
    temperature_c : float, optional
        Recording temperature, 0-45 °C. Recorded with the results only: rates and conductances are
        those of their sources and are not rescaled.
    reversal_potential_mV : dict, optional
        Library receptor name -> reversal potential for this recording, e.g. ``{"GABA_A": -60}``
        when the pipette [Cl⁻] sets E_Cl; kept as sorted (name, mV) pairs.
    """

    holding_potential_mV: float = -70.0
    external_mg_mM: float = 1.0
    temperature_c: float | None = None
    reversal_potential_mV: tuple = field(default=())

    def __post_init__(self):
        v = parse_quantity(self.holding_potential_mV, "mV", "clamp.holding_potential_mV", allow_negative=True)
        if abs(v) > HOLDING_LIMIT_MV:
            raise ModelError("clamp.holding_potential_mV", self.holding_potential_mV,
                             f"must be within ±{HOLDING_LIMIT_MV:g} mV")
        mg = parse_quantity(self.external_mg_mM, "mM", "clamp.external_mg_mM")
        temp = self.temperature_c
        if temp is not None:
            if isinstance(temp, bool) or not isinstance(temp, (int, float)) or not math.isfinite(temp) \
                    or not TEMPERATURE_RANGE_C[0] <= temp <= TEMPERATURE_RANGE_C[1]:
                raise ModelError("clamp.temperature_c", temp, "must be a number of °C in [0, 45], or None")
            temp = float(temp)
        object.__setattr__(self, "holding_potential_mV", v)
        object.__setattr__(self, "external_mg_mM", mg)
        object.__setattr__(self, "temperature_c", temp)
        object.__setattr__(self, "reversal_potential_mV", self._reversals(self.reversal_potential_mV))

    @staticmethod
    def _reversals(given) -> tuple:
        items = given.items() if isinstance(given, dict) else given
        try:
            items = list(items)
        except TypeError:
            raise ModelError("clamp.reversal_potential_mV", given, "must map receptor names to mV") from None
        out = {}
        for pair in items:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ModelError("clamp.reversal_potential_mV", given, "must map receptor names to mV")
            name, value = pair
            where = f"clamp.reversal_potential_mV.{name}"
            canon = library.canonical("receptors", name, where)
            e = parse_quantity(value, "mV", where, allow_negative=True)
            if abs(e) > REVERSAL_LIMIT_MV:
                raise ModelError(where, value, f"must be within ±{REVERSAL_LIMIT_MV:g} mV")
            out[canon] = e
        return tuple(sorted(out.items()))

    def reversal_for(self, entry: str) -> float | None:
        """The reversal potential this clamp sets for library receptor ``entry`` (None: the library's)."""
        return dict(self.reversal_potential_mV).get(entry)


def mg_block(v_mV, external_mg_mM, k0_mM: float, slope_per_mV: float):
    """Fraction of channels not blocked by Mg²⁺ (Jahr & Stevens 1990, J Neurosci 10:3178):
    ``1 / (1 + [Mg]/k0 · exp(−slope · V))``; works on arrays of ``v_mV``."""
    return 1.0 / (1.0 + (external_mg_mM / k0_mM) * np.exp(-slope_per_mV * np.asarray(v_mV, dtype=float)))


@dataclass(frozen=True)
class Channel:
    """One site group's channel under a clamp: conductance per open state, reversal, Mg²⁺ block."""

    group: str
    entry: str
    conductance_pS: dict
    reversal_potential_mV: float
    block: float

    def driving_force_mV(self, v_mV: float) -> float:
        return v_mV - self.reversal_potential_mV


def _receptor_for(grp, receptors):
    """The library receptor of site group ``grp`` (None: it passes no current)."""
    label = grp.label
    if receptors is not None and label in receptors:
        given = receptors[label]
        if given is None or isinstance(given, library.Receptor):
            return given
        return library.receptor(given, f"receptors[{label!r}]")
    name = grp.scheme.name
    try:
        return library.receptor(name, f"sites[{label!r}].scheme")
    except library.UnknownNameError:
        raise ModelError(f"sites[{label!r}].scheme", name,
                         "has open states but names no library receptor; pass "
                         f"receptors={{{label!r}: 'entry'}} (or None to leave it out of the clamp)") from None


def _state_efficacy(scheme) -> dict:
    # a scheme read back from a stored result (mcsyn.export) may predate state_efficacy
    return dict(getattr(scheme, "state_efficacy", None) or {})


def _with_drug_states(table: dict, scheme, where: str) -> dict:
    """``table`` (open state -> pS) with the drug-bound open states of agonists
    (:mod:`mcsyn.mechanisms`) at the receptor's conductance, which must then be a single level."""
    drug_states = [s for s in scheme.open_states if s not in table and s in _state_efficacy(scheme)]
    if drug_states:
        levels = set(table.values())
        if len(levels) != 1:
            raise ModelError(f"{where}.conductance_pS", table or None,
                             f"the agonist-bound open state(s) {drug_states} conduct at the receptor's "
                             "conductance, which needs one level for every open state")
        table.update(dict.fromkeys(drug_states, levels.pop()))
    return table


def channels(compiled_model, clamp: VoltageClamp, receptors: dict | None = None) -> list[Channel]:
    """The ligand-gated channels of a compiled model (or of a SynapseModel) under ``clamp``, one per
    site group.

    Raises ModelError for a model with no ionotropic receptor, and for an ionotropic receptor
    whose library entry lacks a conductance for an open state or a reversal potential."""
    if not isinstance(clamp, VoltageClamp):
        raise ModelError("clamp", clamp, "must be a mcsyn.electrophysiology.VoltageClamp")
    model = getattr(compiled_model, "model", compiled_model)
    out = []
    for grp in model.sites:
        if not grp.scheme.open_states:
            continue
        rec = _receptor_for(grp, receptors)
        if rec is None or not rec.ionotropic:
            continue
        where = f"receptors.{rec.name}"
        table = _with_drug_states(dict(rec.conductance_pS), grp.scheme, where)
        missing = [s for s in grp.scheme.open_states if s not in table]
        if missing:
            raise ModelError(f"{where}.conductance_pS", table or None,
                             f"the clamp needs a single-channel conductance for open state(s) {missing} "
                             f"of site group {grp.label!r}")
        e_rev = clamp.reversal_for(rec.name)
        e_rev = rec.reversal_potential_mV if e_rev is None else e_rev
        if e_rev is None:
            raise ModelError(f"{where}.reversal_potential_mV", None,
                             f"the clamp needs a reversal potential for site group {grp.label!r} "
                             "(in the library entry or VoltageClamp.reversal_potential_mV)")
        block = 1.0
        if rec.mg_block_k0_mM is not None:
            block = float(mg_block(clamp.holding_potential_mV, clamp.external_mg_mM,
                                   rec.mg_block_k0_mM, rec.mg_block_slope_per_mV))
        weight = _state_efficacy(grp.scheme)        # as KineticScheme.activation_weights
        out.append(Channel(grp.label, rec.name, {s: table[s] * weight.get(s, 1.0) for s in grp.scheme.open_states},
                           e_rev, block))
    if not out:
        groups = [g.label for g in model.sites]
        raise ModelError("clamp", clamp, f"the model has no ionotropic receptor (site groups {groups}); "
                                         "a voltage clamp records ligand-gated channels only")
    return out


def current_columns(compiled_model, columns, clamp: VoltageClamp, receptors: dict | None = None,
                    channel_list: list | None = None) -> dict:
    """Current columns of one run (or of stacked runs) from its named columns.

    ``columns`` maps names to arrays as :func:`mcsyn.simulate.series_columns` returns them (any
    shape, e.g. (n_runs, n_samples) for an ensemble). Returns ``"<group>:current_pA"`` per
    ligand-gated site group and ``"current_pA"``, their sum. ``channel_list`` (:func:`channels` of
    this model and clamp, e.g. ``CompiledModel.channels``) spares the library look-ups per run."""
    v = clamp.holding_potential_mV
    out, total = {}, None
    for ch in channel_list if channel_list is not None else channels(compiled_model, clamp, receptors):
        g_pS = 0.0
        for state, pS in ch.conductance_pS.items():
            name = f"{ch.group}:{state}"
            if name not in columns:
                raise ModelError("columns", sorted(columns)[:8], f"has no column {name!r} (a run's series columns)")
            g_pS = g_pS + np.asarray(columns[name], dtype=float) * pS
        current = g_pS * ch.block * ch.driving_force_mV(v) * PA_PER_PS_MV
        out[f"{ch.group}:current_pA"] = current
        total = current if total is None else total + current
    out["current_pA"] = total
    return out


# ======================================================================================================
# waveform metrics

def _waveform(times_ms, current_pA):
    t = np.asarray(times_ms, dtype=float)
    i = np.asarray(current_pA, dtype=float)
    if t.ndim != 1 or len(t) < 2:
        raise ModelError("times_ms", f"shape {t.shape}", "must be one-dimensional with at least 2 samples")
    if i.shape != t.shape:
        raise ModelError("current_pA", f"shape {i.shape}", f"must have the shape of times_ms {t.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0)):
        raise ModelError("times_ms", t[:4], "must be finite and strictly increasing")
    if not np.all(np.isfinite(i)):
        raise ModelError("current_pA", i[~np.isfinite(i)][:4], "must be finite")
    return t, i


def _crossing_ms(t, y, level, last):
    """Time at which ``y`` first reaches ``level`` at or before index ``last`` (linear interpolation),
    or NaN when it starts there already."""
    j = int(np.argmax(y[:last + 1] >= level))
    if j == 0:
        return float("nan")
    return float(t[j - 1] + (level - y[j - 1]) / (y[j] - y[j - 1]) * (t[j] - t[j - 1]))


@dataclass(frozen=True)
class DecayFit:
    """A single-exponential fit ``A · exp(−(t − t0)/τ)`` of a current's falling phase.

    ``reason`` is empty when the fit succeeded; otherwise ``tau_ms`` is NaN and ``reason`` says why."""

    tau_ms: float
    amplitude_pA: float
    start_ms: float
    n_points: int
    reason: str = ""


def fit_decay(times_ms, current_pA, start_fraction: float = DECAY_FIT_START_FRACTION) -> DecayFit:
    """Fit the decay of a current from its peak: a single exponential to zero, by least squares
    (the amplitude solved linearly for each τ, τ by a bounded search over log τ), over the samples from the first one after the peak at which
    the current has fallen to ``start_fraction`` (0.8) of the peak to the end of the record.

    Starting below the peak skips the rounded top, where channels still open and a single
    exponential does not hold. The fit fails (NaN and a reason) with fewer than 4 samples in the
    window, when the search does not converge, or when τ exceeds 10× the window (no measurable decay).
    """
    t, i = _waveform(times_ms, current_pA)
    nan = float("nan")
    k = int(np.argmax(np.abs(i)))
    peak = float(i[k])
    if peak == 0.0:
        return DecayFit(nan, 0.0, float(t[k]), 0, "no current")
    y = i * math.copysign(1.0, peak)
    below = np.flatnonzero(y[k:] <= start_fraction * abs(peak))
    if len(below) == 0:
        return DecayFit(nan, peak, float(t[k]), 0, f"the current never falls to {start_fraction:g} of its peak")
    s = k + int(below[0])
    tw, yw = t[s:] - t[s], y[s:]
    if len(tw) < DECAY_FIT_MIN_POINTS:
        return DecayFit(nan, peak, float(t[s]), len(tw), f"fewer than {DECAY_FIT_MIN_POINTS} samples in the decay")
    from scipy.optimize import minimize_scalar   # scipy.optimize: start-up cost, load on use

    def amplitude(tau):
        # for a given τ the best amplitude is linear (variable projection), so least squares over
        # (A, τ) is a search over τ alone: the same fit as a two-parameter solver, at a fraction of
        # its cost per run
        e = np.exp(-tw / tau)
        return max(float(yw @ e) / float(e @ e), 0.0), e

    def residual(log_tau):
        a, e = amplitude(math.exp(log_tau))
        r = yw - a * e
        return float(r @ r)

    step = float(np.min(np.diff(tw))) if len(tw) > 1 else 1.0
    lo, hi = math.log(step / 100.0), math.log(100.0 * float(tw[-1]))
    res = minimize_scalar(residual, bounds=(lo, hi), method="bounded", options={"xatol": 1e-9})
    tau = math.exp(res.x)
    a, _ = amplitude(tau)
    if not (res.success and math.isfinite(tau) and a > 0):
        return DecayFit(nan, peak, float(t[s]), len(tw), f"the least-squares search failed: {res.message}")
    if tau > 10.0 * tw[-1]:
        return DecayFit(nan, peak, float(t[s]), len(tw), "no measurable decay within the record (τ > 10× the window)")
    return DecayFit(float(tau), float(a) * math.copysign(1.0, peak), float(t[s]), len(tw))


def current_metrics(times_ms, current_pA) -> dict:
    """Metrics of one current trace (pA over ms), every unit in its name.

    ``peak_pA`` the signed current of largest magnitude (negative for an inward EPSC),
    ``time_to_peak_ms``, ``rise_time_10_90_ms`` (10 % to 90 % of the peak on the rising phase,
    linear interpolation between samples; NaN when the trace starts above 10 %), ``decay_tau_ms``
    (:func:`fit_decay`; NaN when it cannot fit — ``fit_decay`` gives the reason) and ``charge_pC``
    (trapezoid integral of the current, signed)."""
    t, i = _waveform(times_ms, current_pA)
    k = int(np.argmax(np.abs(i)))
    peak = float(i[k])
    nan = float("nan")
    out = {"peak_pA": peak, "time_to_peak_ms": float(t[k]), "rise_time_10_90_ms": nan,
           "decay_tau_ms": nan, "charge_pC": float(np.trapezoid(i, t)) * PC_PER_PA_MS}
    if peak == 0.0:
        return out
    y = i * math.copysign(1.0, peak)
    t10 = _crossing_ms(t, y, 0.1 * abs(peak), k)
    t90 = _crossing_ms(t, y, 0.9 * abs(peak), k)
    out["rise_time_10_90_ms"] = t90 - t10
    out["decay_tau_ms"] = fit_decay(t, i).tau_ms
    return out


def run_current_metrics(compiled_model, columns, clamp: VoltageClamp, receptors: dict | None = None,
                        currents: dict | None = None) -> dict:
    """Per-run current metrics for :func:`mcsyn.simulate.run_metrics`: ``"current:<metric>"`` for the
    total current and ``"<group>:current:<metric>"`` per ligand-gated group (metrics of
    :func:`current_metrics`). ``currents`` (from :func:`current_columns`) saves recomputing them."""
    if currents is None:
        currents = current_columns(compiled_model, columns, clamp, receptors)
    t = compiled_model.sample_times_ms
    out = {}
    for name, current in currents.items():
        prefix = "current" if name == "current_pA" else name[:-len("_pA")]
        out.update({f"{prefix}:{k}": v for k, v in current_metrics(t, current).items()})
    return out


# ======================================================================================================
# I-V relation, ensembles, figure

def iv_curve(compiled_model, columns, holding_potentials_mV, external_mg_mM=1.0,
             receptors: dict | None = None):
    """Peak current against holding potential (a pandas DataFrame, one row per potential).

    The gating does not depend on V (see the module notes), so the same open counts ``columns``
    (one run's, or an ensemble's mean series) serve every potential; the NMDA Mg²⁺ block makes its
    I-V bend (negative slope below about −30 mV in 1 mM Mg²⁺). Columns: ``holding_potential_mV``,
    ``peak_current_pA`` and ``"<group>:peak_current_pA"`` (signed currents of largest magnitude)."""
    import pandas as pd   # pandas: start-up cost, load on use
    rows = []
    for v in holding_potentials_mV:
        clamp = VoltageClamp(v, external_mg_mM)
        row = {"holding_potential_mV": clamp.holding_potential_mV}
        for name, current in current_columns(compiled_model, columns, clamp, receptors).items():
            c = np.asarray(current, dtype=float)
            row[f"{name[:-len('current_pA')]}peak_current_pA"] = float(c[np.argmax(np.abs(c))])
        rows.append(row)
    return pd.DataFrame(rows)


def ensemble_currents(ens, clamp: VoltageClamp, receptors: dict | None = None) -> dict:
    """Currents of every run of a :class:`mcsyn.simulate.Ensemble`: name -> (n_runs, n_samples) pA."""
    columns = {name: ens.series[:, :, j] for j, name in enumerate(ens.columns)}
    return current_columns(ens.model, columns, clamp, receptors)


def ensemble_current_metrics(ens, clamp: VoltageClamp, receptors: dict | None = None):
    """One row of :func:`run_current_metrics` per run of an ensemble (a pandas DataFrame)."""
    import pandas as pd   # pandas: start-up cost, load on use
    currents = ensemble_currents(ens, clamp, receptors)
    n_runs = ens.series.shape[0]
    rows = [{"run": r, **run_current_metrics(ens.model, None, clamp, currents={k: v[r] for k, v in currents.items()})}
            for r in range(n_runs)]
    return pd.DataFrame(rows)


def amplitude_statistics(peak_pA, bins: int | str = "auto") -> dict:
    """Amplitude statistics across runs of signed peak currents.

    ``n``, ``mean_pA``, ``sd_pA`` (ddof 1), ``cv`` (sd / |mean|), ``cv_se`` (its large-sample
    standard error for normal amplitudes, CV/√(2n) · √(1 + 2 CV²)), ``quantiles_pA`` (5, 25, 50,
    75, 95 %), and the amplitude distribution as ``histogram_counts`` over ``histogram_edges_pA``."""
    a = np.asarray(peak_pA, dtype=float).ravel()
    if len(a) < 2 or not np.all(np.isfinite(a)):
        raise ModelError("peak_pA", a[:4], "needs at least 2 finite amplitudes")
    mean, sd = float(a.mean()), float(a.std(ddof=1))
    cv = sd / abs(mean) if mean != 0 else float("nan")
    counts, edges = np.histogram(a, bins=bins)
    return {"n": len(a), "mean_pA": mean, "sd_pA": sd, "cv": cv,
            "cv_se": cv / math.sqrt(2 * len(a)) * math.sqrt(1 + 2 * cv * cv),
            "quantiles_pA": dict(zip((0.05, 0.25, 0.5, 0.75, 0.95), np.quantile(a, (0.05, 0.25, 0.5, 0.75, 0.95)))),
            "histogram_counts": counts, "histogram_edges_pA": edges}


def _current_label(name: str) -> str:
    return "Total" if name == "current_pA" else name[:-len(":current_pA")]


def _signed(x: float) -> str:
    return f"{x:g}".replace("-", "\u2212")          # a typographic minus, as on the axes


def _clamp_text(clamp: VoltageClamp | None) -> str:
    if clamp is None:
        return ""
    text = f"$V_h$ = {_signed(clamp.holding_potential_mV)} mV, [Mg$^{{2+}}$]$_o$ = {clamp.external_mg_mM:g} mM"
    return text + (f", {clamp.temperature_c:g} °C" if clamp.temperature_c is not None else "")


def plot_current(times_ms, currents, clamp: VoltageClamp | None = None, confidence: float = 0.95,
                 title: str | None = None, width_in: float = 3.5):
    """Mean current across runs with a confidence band of the mean (Student t, ``confidence``).

    ``currents``: an (n_runs, n_samples) array in pA, or the dict :func:`ensemble_currents`
    returns (each group in colour, the total dashed black on top). Title, clamp conditions and
    legend sit above the axes, so they never cover a trace. Returns a matplotlib Figure (save it
    with :func:`mcsyn.plots.save_figure`)."""
    from scipy import stats   # scipy.stats and matplotlib: start-up cost, load on use
    from matplotlib.figure import Figure
    from .plots import OKABE_ITO, _style
    if not 0 < confidence < 1:
        raise ModelError("confidence", confidence, "must be in (0, 1)")
    traces = currents if isinstance(currents, dict) else {"current_pA": currents}
    t = np.asarray(times_ms, dtype=float)
    groups = [k for k in traces if k != "current_pA"]
    n_runs = 0
    with _style():
        fig = Figure(figsize=(width_in, 0.75 * width_in))
        ax = fig.add_subplot()
        for j, name in enumerate(groups + (["current_pA"] if "current_pA" in traces else [])):
            x = np.atleast_2d(np.asarray(traces[name], dtype=float))
            if x.shape[1] != len(t):
                raise ModelError(f"currents[{name!r}]", f"shape {x.shape}", f"needs {len(t)} samples per run")
            n_runs, mean = x.shape[0], x.mean(axis=0)
            total = name == "current_pA"
            colour = "black" if total else OKABE_ITO[1 + j % (len(OKABE_ITO) - 1)]
            style = {"ls": (0, (4, 2)), "lw": 1.1} if total and groups else {"lw": 1.3}
            ax.plot(t, mean, color=colour, label=_current_label(name), zorder=3 + total, **style)
            if n_runs > 1:
                half = stats.t.ppf(0.5 + confidence / 2, n_runs - 1) * x.std(axis=0, ddof=1) / math.sqrt(n_runs)
                ax.fill_between(t, mean - half, mean + half, color="0.55" if total else colour,
                                alpha=0.2 if total else 0.3, lw=0, zorder=2)
        ax.axhline(0.0, color="0.6", lw=0.6, zorder=1)
        ax.set_xlabel("Time (ms)")
        ax.set_ylabel("Current (pA)")
        ax.set_xlim(t[0], t[-1])
        band = (f"lines: mean of {n_runs} runs; bands: {confidence:.0%} CI of the mean" if n_runs > 1
                else "one run")
        legend_pt = 0
        if groups:                        # one trace needs no legend: the subtitle says what it is
            ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=len(traces), frameon=False,
                      borderaxespad=0, handlelength=2.2, columnspacing=1.2)
            legend_pt = 13
        lines = [s for s in (_clamp_text(clamp), band) if s]
        ax.annotate("\n".join(lines), (0, 1), xycoords="axes fraction", xytext=(0, 3 + legend_pt),
                    textcoords="offset points", fontsize=7, color="0.3", va="bottom", linespacing=1.3)
        ax.annotate(title or "Voltage-clamp current", (0, 1), xycoords="axes fraction",
                    xytext=(0, 6 + legend_pt + 9.5 * len(lines)), textcoords="offset points", fontsize=9.5, va="bottom")
        fig.tight_layout()
    return fig
