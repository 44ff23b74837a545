"""Export an ensemble's mean synaptic conductance to network simulators: NEURON and Brian2.

``mcsyn export neuron|brian2 RESULT_DIR --condition NAME`` (or :func:`to_neuron` /
:func:`to_brian2`) writes one file a network modeller pastes into a model: it plays, after each
release event, the ensemble-mean conductance of every ligand-gated site group of a clamped run.

What is played. The mean conductance per ligand-gated site group, from the time course's mean
open counts (:mod:`mcsyn.electrophysiology` gives each open state its single-channel conductance):

    g_group(t) = Σ_open states mean n_state(t) · γ_state                      (pS; the file: µS or nS)

read from ``<group>:<state>`` per open state when the result stored them, else from
``<group>:open`` × γ when the group's open states share one γ. Not from the stored mean current
``<group>:current_pA``: counts are stored exactly, currents to the femtoampere
(:func:`mcsyn.ensemble.observables.trace_scale`), and the conductance does not depend on the
holding potential the result was recorded at. The result must have been run under a voltage clamp
(``mcsyn run ... --clamp -70mV``): the clamp fixes the reversal potentials and [Mg²⁺]o recorded.
The table holds the conductance *without* the Mg²⁺ block; the exported synapse applies the same
Jahr & Stevens block (same k0, slope and [Mg²⁺]o, all editable parameters) at the cell's own
membrane potential, so an NMDA synapse stays voltage-dependent in the network and at the
holding potential V_h plays mcsyn's current ``g · B(V_h) · (V_h − E_rev)``. (The gating of
mcsyn's schemes does not depend on V, so the unblocked conductance is the same at every V.)

Time. The table starts at the model's release, sampled on the time course's uniform grid, linearly
interpolated in between, and is zero before the first and after the last sample: the waveform is
truncated at the end of mcsyn's record (the header gives the last value as a fraction of the
peak). Each release event restarts the waveform; a second event before the first has ended
replaces it (no summation), as the ensemble simulated one release. The mean includes the runs in
which a probabilistic release failed. Results of trains or of several releases per run are
refused: their time course is not the response to one release.

NEURON: a POINT_PROCESS ``.mod`` file whose conductance tables are hard-coded C arrays in a
VERBATIM block, looked up by a small C function. Chosen over FUNCTION_TABLE (its data must be
loaded from hoc in every session, and it holds the end values beyond the table instead of
falling to zero) and over ``Vector.play`` (it drives a variable along the simulation clock and
cannot restart at each event): the one file is the whole synapse, with no set-up code. Units:
g in µS, v and E in mV, i in nA (NONSPECIFIC_CURRENT, positive outward). ``NET_RECEIVE(weight)``
restarts the waveform scaled by the weight: a NetCon weight of 1 plays the mean (NEURON's
default weight is 0).

Brian2: a Python module with the tables (nS), the reversal potentials, the equations (membrane
current ``I_mcsyn``, positive outward, to subtract in ``dv/dt``) and ``on_pre``; its
``namespace(dt)`` builds the ``TimedArray`` objects, resampled by linear interpolation to the
simulation's ``dt`` (a TimedArray holds each value for one of its steps).

Every file starts with its provenance: mcsyn versions, result directory, condition, runs, seeds,
clamp and units. Values are written with Python's ``repr`` (shortest round-trip form), so a
parsed table equals the computed one bit for bit.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import __version__, library
from .electrophysiology import VoltageClamp, channels
from .errors import ModelError

TARGETS = ("neuron", "brian2")
US_PER_PS = 1e-6
NS_PER_PS = 1e-3
GRID_RELATIVE_TOLERANCE = 1e-6     # the time course's grid counts as uniform within this fraction of a step
_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]+")


@dataclass(frozen=True)
class GroupConductance:
    """One ligand-gated site group's mean conductance, without its Mg²⁺ block."""

    group: str
    identifier: str                 # the group's name in the generated code
    entry: str                      # its library receptor
    reversal_potential_mV: float
    block_at_holding: float         # B(V_h) the clamp applied
    mg_block_k0_mM: float | None    # Jahr & Stevens constants (None: no block)
    mg_block_slope_per_mV: float | None
    g_pS: np.ndarray

    @property
    def g_uS(self) -> np.ndarray:
        """What the NEURON table holds."""
        return self.g_pS * US_PER_PS

    @property
    def g_nS(self) -> np.ndarray:
        """What the Brian2 table holds."""
        return self.g_pS * NS_PER_PS


@dataclass(frozen=True)
class Waveform:
    """What an export plays after one release: the mean conductance per group on a uniform grid."""

    condition: str
    model_name: str
    start_ms: float                 # time of the first sample after the release
    step_ms: float
    groups: tuple
    clamp: VoltageClamp
    n_runs: int
    condition_seed: int
    ensemble_seed: object
    release_time_ms: float
    release_probability: float
    result_dir: str
    result_version: str

    @property
    def n_samples(self) -> int:
        return len(self.groups[0].g_pS)


# ======================================================================================================
# from a result to the waveform

def _load(result):
    if isinstance(result, (str, Path)):
        from .storage import load_result   # pandas/pyarrow: start-up cost, load on use
        return load_result(result)
    return result


def _condition_name(result, condition) -> str:
    names = [str(n) for n in result.conditions["condition"]]
    if condition is None:
        if len(names) == 1:
            return names[0]
        raise ModelError("condition", None, f"the result has several conditions; name one of {names}")
    if condition not in names:
        raise ModelError("condition", condition, f"must be a condition of the result: one of {names}")
    return condition


def _config_entry(result, condition: str) -> dict:
    for entry in (result.config or {}).get("conditions", []):
        if entry.get("name") == condition:
            return entry
    raise ModelError(f"config.conditions[{condition!r}]", None,
                     "the result's config.toml must record the condition's model (results of mcsyn run or "
                     "run_ensemble do)")


def _field(obj, name, default=None):
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def _model_view(model) -> SimpleNamespace:
    """The parts of a condition's model the export needs, from a SynapseModel or its stored form
    (config.toml holds the model as plain tables): site groups (label, scheme name, open states),
    clamp, releases and trains."""
    sites = []
    groups = list(_field(model, "sites", []))
    plain = [_field(grp, "name") or _field(_field(grp, "scheme"), "name") for grp in groups]
    for grp in groups:
        scheme = _field(grp, "scheme")
        # as mcsyn.model.site_labels: the name, else the scheme's name, with @location where shared
        label = _field(grp, "name") or (_field(scheme, "name") if plain.count(_field(scheme, "name")) == 1
                                        else f"{_field(scheme, 'name')}@{_field(grp, 'location')}")
        sites.append(SimpleNamespace(label=label, scheme=SimpleNamespace(
            name=_field(scheme, "name"), open_states=list(_field(scheme, "open_states", [])),
            state_efficacy=dict(_field(scheme, "state_efficacy", None) or {}))))
    clamp = _field(model, "clamp")
    if isinstance(clamp, dict):
        clamp = VoltageClamp(clamp["holding_potential_mV"], clamp.get("external_mg_mM", 1.0),
                             clamp.get("temperature_c"), [tuple(p) for p in clamp.get("reversal_potential_mV", [])])
    return SimpleNamespace(sites=sites, clamp=clamp, name=str(_field(model, "name", "synapse")),
                           releases=list(_field(model, "releases", [])), trains=list(_field(model, "trains", [])))


def _single_release(model: SimpleNamespace, condition: str):
    if model.trains or len(model.releases) != 1:
        raise ModelError(f"conditions[{condition!r}].model.releases",
                         f"{len(model.releases)} release(s), {len(model.trains)} train(s)",
                         "the export plays the response to one release: the model must have exactly one "
                         "release and no train")
    rel = model.releases[0]
    return float(_field(rel, "time_ms", 0.0)), float(_field(rel, "probability", 1.0))


def _identifier(text: str) -> str:
    ident = _IDENTIFIER.sub("_", text).strip("_") or "group"
    return ident if not ident[0].isdigit() else "g" + ident


def _series(tc, condition: str, observable: str):
    rows = tc[(tc["condition"] == condition) & (tc["observable"] == observable)].sort_values("time_ms")
    if rows.empty:
        return None
    return rows["time_ms"].to_numpy(dtype=float), rows["mean"].to_numpy(dtype=float)


def _open_conductance_pS(tc, condition: str, ch):
    """Times and the mean conductance of channel ``ch`` (pS) from the mean open counts."""
    per_state = {s: _series(tc, condition, f"{ch.group}:{s}") for s in ch.conductance_pS}
    if all(v is not None for v in per_state.values()):
        times = next(iter(per_state.values()))[0]
        return times, sum(per_state[s][1] * pS for s, pS in ch.conductance_pS.items())
    single = set(ch.conductance_pS.values())
    total = _series(tc, condition, f"{ch.group}:open")
    if len(single) == 1 and total is not None:
        return total[0], total[1] * single.pop()
    observed = sorted(set(tc.loc[tc["condition"] == condition, "observable"]))
    wanted = [f"{ch.group}:{s}" for s in ch.conductance_pS]
    raise ModelError(f"result.timecourse[{condition!r}]", observed,
                     f"needs the open counts of group {ch.group!r}: {wanted}"
                     + (f" or {ch.group + ':open'!r}" if len(single) == 1 else "")
                     + " (mcsyn run ... --observable NAME)")


def _grid(times_ms: np.ndarray, release_ms: float, condition: str):
    """The samples at and after the release, and their uniform step."""
    keep = times_ms >= release_ms
    t = times_ms[keep]
    if len(t) < 2:
        raise ModelError(f"result.timecourse[{condition!r}].time_ms", times_ms[-2:],
                         f"needs at least 2 samples at or after the release at {release_ms:g} ms")
    step = (t[-1] - t[0]) / (len(t) - 1)
    if not np.all(np.abs(np.diff(t) - step) <= GRID_RELATIVE_TOLERANCE * step):
        raise ModelError(f"result.timecourse[{condition!r}].time_ms", t[:4], "must be a uniform grid")
    return keep, float(t[0] - release_ms), float(step)


def conductance_waveform(result, condition: str | None = None) -> Waveform:
    """The mean conductance per ligand-gated group of ``condition`` of ``result`` (an
    EnsembleResult or a result directory), as the exports play it (see the module notes)."""
    result = _load(result)
    condition = _condition_name(result, condition)
    model = _model_view(_config_entry(result, condition).get("model", {}))
    if model.clamp is None:
        raise ModelError(f"conditions[{condition!r}].model.clamp", None,
                         "export needs a result run under a voltage clamp (mcsyn run CONFIG --clamp -70mV ...)")
    release_ms, probability = _single_release(model, condition)
    groups, idents = [], set()
    for ch in channels(model, model.clamp):
        times, g_pS = _open_conductance_pS(result.timecourse, condition, ch)
        keep, start_ms, step_ms = _grid(times, release_ms, condition)
        ident = _identifier(ch.group)
        if ident in idents:
            raise ModelError("sites", ch.group, f"names the same code identifier {ident!r} as another group")
        idents.add(ident)
        rec = library.receptor(ch.entry, f"sites[{ch.group!r}]")
        groups.append(GroupConductance(ch.group, ident, ch.entry, ch.reversal_potential_mV, ch.block,
                                       rec.mg_block_k0_mM, rec.mg_block_slope_per_mV, g_pS[keep]))
    row = result.conditions[result.conditions["condition"] == condition].iloc[0]
    return Waveform(condition, model.name, start_ms, step_ms, tuple(groups), model.clamp, int(row["n_ok"]),
                    int(row["seed"]), result.metadata.get("seed"), release_ms, probability,
                    str(result.path) if result.path is not None else "(in memory)",
                    str(result.metadata.get("mcsyn_version", "?")))


# ======================================================================================================
# writing the files

def _numbers(values, per_line: int = 6) -> str:
    items = [repr(float(x) + 0.0) for x in values]   # + 0.0: no -0.0
    return ",\n".join("    " + ", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line))


def _provenance(w: Waveform, target: str) -> list:
    c = w.clamp
    lines = [f"mcsyn export {target}: ensemble-mean synaptic conductance, played after each release event",
             f"exported by mcsyn {__version__}; result written by mcsyn {w.result_version}",
             f"result directory: {w.result_dir}",
             f"model: {w.model_name}; condition: {w.condition}; runs averaged: {w.n_runs}",
             f"seeds: ensemble {w.ensemble_seed}, condition {w.condition_seed}",
             f"recorded under a clamp at {c.holding_potential_mV:g} mV, [Mg2+]o {c.external_mg_mM:g} mM; "
             f"release at {w.release_time_ms:g} ms (probability {w.release_probability:g}, failures averaged in)",
             f"table: {w.n_samples} samples every {w.step_ms:g} ms from {w.start_ms:g} ms after the release, "
             "linear interpolation, zero outside",
             "conductance = sum over open states of mean open count x single-channel conductance, without the "
             "Mg2+ block; the block is applied at the cell's own v"]
    for g in w.groups:
        peak = float(np.max(np.abs(g.g_uS))) if g.g_uS.size else 0.0
        last = abs(float(g.g_uS[-1])) / peak if peak > 0 else 0.0
        block = (f"Mg2+ block k0 {g.mg_block_k0_mM:g} mM, slope {g.mg_block_slope_per_mV:g} /mV"
                 if g.mg_block_k0_mM is not None else "no Mg2+ block")
        lines.append(f"group {g.group} ({g.entry}): E_rev {g.reversal_potential_mV:g} mV, {block}, "
                     f"peak {peak * 1e3:.6g} nS, last sample {last:.3g} of the peak")
    return lines


def default_name(w: Waveform) -> str:
    """The generated mechanism's name: ``mcsyn_<model>_<condition>`` as an identifier."""
    return _identifier(f"mcsyn_{w.model_name}_{w.condition}")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise ModelError("name", name, "must be an identifier: a letter, then letters, digits or _")
    return name


def _out_path(out_dir, filename: str) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ModelError("out_dir", str(out), "must be a directory (or not exist yet)")
    out.mkdir(parents=True, exist_ok=True)
    return out / filename


def _nmodl_parameters(w: Waveform) -> tuple:
    """The RANGE names and the PARAMETER lines of the point process: E_rev per group, Mg2+ block."""
    ranges = ", ".join(f"e_{g.identifier}, g_{g.identifier}, i_{g.identifier}" for g in w.groups)
    params = "\n".join(f"    e_{g.identifier} = {g.reversal_potential_mV!r} (mV)" for g in w.groups)
    blocks = [g for g in w.groups if g.mg_block_k0_mM is not None]
    if blocks:
        params += f"\n    mg_mM = {w.clamp.external_mg_mM!r} (mM)  : external Mg2+ of the block"
        ranges += ", mg_mM"
    for g in blocks:
        params += (f"\n    k0_{g.identifier} = {g.mg_block_k0_mM!r} (mM)  : Jahr & Stevens 1990, J Neurosci 10:3178"
                   f"\n    slope_{g.identifier} = {g.mg_block_slope_per_mV!r} (/mV)")
    return ranges, params


def _nmodl_tables(w: Waveform) -> str:
    """The VERBATIM block: the conductance tables (µS) as C arrays and their lookup."""
    tables = "\n".join(f"static const double mcsyn_g_{g.identifier}[MCSYN_N] = {{ /* uS */\n{_numbers(g.g_uS)}\n}};"
                       for g in w.groups)
    return f"""VERBATIM
#define MCSYN_N {w.n_samples}
static const double mcsyn_start_ms = {w.start_ms!r};
static const double mcsyn_step_ms = {w.step_ms!r};
{tables}
/* linear interpolation in a table; zero before its first and after its last sample */
static double mcsyn_lookup(const double* g, double x) {{
    double u = (x - mcsyn_start_ms) / mcsyn_step_ms;
    int k;
    if (!(u >= 0.0) || u > (MCSYN_N - 1) + 1e-9) return 0.0;   /* 1e-9: t's rounding at the end */
    k = (int) u;
    if (k >= MCSYN_N - 1) return g[MCSYN_N - 1];
    return g[k] + (u - k) * (g[k + 1] - g[k]);
}}
ENDVERBATIM
"""


def neuron_source(w: Waveform, name: str) -> str:
    """The NMODL text of the point process ``name`` playing ``w``."""
    head = "\n".join(": " + line for line in _provenance(w, "neuron"))
    ranges, params = _nmodl_parameters(w)
    assigned = "\n".join(f"    g_{g.identifier} (uS)\n    i_{g.identifier} (nA)" for g in w.groups)
    body, functions = [], []
    for g in w.groups:
        x = g.identifier
        block = f" * mgblock_{x}(v)" if g.mg_block_k0_mM is not None else ""
        body.append(f"    g_{x} = scale * table_{x}(t - t_release)\n    i_{x} = g_{x}{block} * (v - e_{x})")
        functions.append(f"FUNCTION table_{x}(x (ms)) (uS) {{\nVERBATIM\n"
                         f"    _ltable_{x} = mcsyn_lookup(mcsyn_g_{x}, _lx);\nENDVERBATIM\n}}\n")
        if block:
            functions.append(f"FUNCTION mgblock_{x}(v (mV)) {{\n"
                             f"    mgblock_{x} = 1 / (1 + mg_mM / k0_{x} * exp(-slope_{x} * v))\n}}\n")
    total = " + ".join(f"i_{g.identifier}" for g in w.groups)
    return f"""{head}
:
: Use: syn = h.{name}(sec(0.5)); nc = h.NetCon(source, syn); nc.weight[0] = 1  (weight scales the waveform;
: NEURON's default weight 0 plays nothing). Each event restarts the waveform (no summation).

NEURON {{
    THREADSAFE  : the tables are read-only
    POINT_PROCESS {name}
    RANGE {ranges}
    RANGE scale, t_release
    NONSPECIFIC_CURRENT i
}}

UNITS {{
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
    (mM) = (milli/liter)
}}

{_nmodl_tables(w)}
PARAMETER {{
{params}
}}

ASSIGNED {{
    v (mV)
    i (nA)
{assigned}
    scale (1)
    t_release (ms)
}}

INITIAL {{
    scale = 0
    t_release = -1e9
}}

BREAKPOINT {{
{chr(10).join(body)}
    i = {total}
}}

{chr(10).join(functions)}
NET_RECEIVE(weight) {{
    t_release = t
    scale = weight
}}
"""


def brian2_source(w: Waveform, name: str) -> str:
    """The Python text of a Brian2 module playing ``w``."""
    head = "\n".join(_provenance(w, "brian2"))
    arrays = "\n".join(f"G_{g.identifier}_NS = np.array([  # conductance of {g.group}, nS\n"
                       f"{_numbers(g.g_nS)}\n])" for g in w.groups)
    consts, eqs, tables = [], [], []
    for g in w.groups:
        x = g.identifier
        consts.append(f"E_{x} = {g.reversal_potential_mV!r} * mV")
        block = ""
        if g.mg_block_k0_mM is not None:
            consts.append(f"K0_{x} = {g.mg_block_k0_mM!r} * mM  # Jahr & Stevens 1990, J Neurosci 10:3178")
            consts.append(f"SLOPE_{x} = {g.mg_block_slope_per_mV!r}  # per mV")
            block = f" / (1 + MG / K0_{x} * exp(-SLOPE_{x} * v / mV))"
        eqs.append(f"I_{x} = w_mcsyn * g_{x}_table(clip(t - t_release, 0*ms, TABLE_END)){block} * (v - E_{x}) : amp")
        tables.append(f"        'g_{x}_table': _timed(G_{x}_NS, dt),")
    names = [f"        {c.split(' = ')[0]!r}: {c.split(' = ')[0]}," for c in consts]
    if any(g.mg_block_k0_mM is not None for g in w.groups):
        names.append("        'MG': MG,")
    mg = f"MG = {w.clamp.external_mg_mM!r} * mM  # external Mg2+ of the block\n" \
        if any(g.mg_block_k0_mM is not None for g in w.groups) else ""
    total = " + ".join(f"I_{g.identifier}" for g in w.groups)
    return f'''"""{head}

Use: add EQUATIONS to a NeuronGroup whose membrane potential is ``v`` (I_mcsyn is a membrane
current, positive outward: dv/dt = (... - I_mcsyn) / C), set ``group.t_release = NO_RELEASE`` and
``group.w_mcsyn = 1`` (it scales the waveform), give Synapses(..., on_pre=ON_PRE) and run with
``namespace=namespace(defaultclock.dt)`` merged into the run's namespace. Each release restarts the
waveform (no summation); t_release belongs to the postsynaptic neuron, so every synapse onto it
restarts the same waveform.
"""
import numpy as np
from brian2 import TimedArray, clip, exp, mM, ms, mV, nS, second

START_MS = {w.start_ms!r}  # first sample, after the release
STEP_MS = {w.step_ms!r}
{arrays}
{chr(10).join(consts)}
{mg}NO_RELEASE = -1e9 * second

EQUATIONS = """
I_mcsyn = {total} : amp
{chr(10).join(eqs)}
t_release : second
w_mcsyn : 1
"""
ON_PRE = "t_release_post = t"


def _timed(g_nS, dt):
    """A TimedArray of g on the simulation's step (linear interpolation), zero outside the table."""
    step_ms = float(dt / ms)
    n = int(np.ceil((START_MS + STEP_MS * (len(g_nS) - 1)) / step_ms)) + 2
    t_ms = np.arange(n) * step_ms
    table_ms = START_MS + STEP_MS * np.arange(len(g_nS))
    values = np.interp(t_ms, table_ms, g_nS, left=0.0, right=0.0)
    return TimedArray(values * nS, dt=dt)


def namespace(dt):
    """The names EQUATIONS uses besides the group's own: TimedArrays on step ``dt`` and constants."""
    n = int(np.ceil((START_MS + STEP_MS * ({w.n_samples} - 1)) / float(dt / ms))) + 1
    return {{
{chr(10).join(tables)}
        'TABLE_END': n * dt,
{chr(10).join(names)}
    }}
'''


def to_neuron(result, condition: str | None, out_dir, name: str | None = None) -> Path:
    """Write ``<name>.mod``, a NEURON point process playing the mean conductance of ``condition``
    of ``result`` (an EnsembleResult or a result directory) into ``out_dir``. Returns its path."""
    w = conductance_waveform(result, condition)
    name = _check_name(name or default_name(w))
    path = _out_path(out_dir, f"{name}.mod")
    path.write_text(neuron_source(w, name), encoding="utf-8")
    return path


def to_brian2(result, condition: str | None, out_dir, name: str | None = None) -> Path:
    """Write ``<name>.py``, a Brian2 module (tables, equations, TimedArrays) playing the mean
    conductance of ``condition`` of ``result`` into ``out_dir``. Returns its path."""
    w = conductance_waveform(result, condition)
    name = _check_name(name or default_name(w))
    path = _out_path(out_dir, f"{name}.py")
    path.write_text(brian2_source(w, name), encoding="utf-8")
    return path


def export(target: str, result, condition: str | None, out_dir, name: str | None = None) -> Path:
    """Write the file of ``target`` (``"neuron"`` or ``"brian2"``); see :func:`to_neuron`."""
    writers = {"neuron": to_neuron, "brian2": to_brian2}
    if target not in writers:
        raise ModelError("target", target, f"must be one of {', '.join(TARGETS)}")
    return writers[target](result, condition, out_dir, name)


# ======================================================================================================
# command line

def command(args) -> int:
    """``mcsyn export``: write the file and say where it is."""
    if not Path(args.dir).is_dir():
        raise FileNotFoundError(f"{args.dir}: no such result directory")
    path = export(args.target, args.dir, args.condition, args.out, args.name)
    print(f"wrote {path}")
    return 0


def add_command(sub):
    """Register ``mcsyn export`` on the subparsers ``sub``; returns the command function."""
    p = sub.add_parser("export", help="write the mean conductance for NEURON or Brian2",
                       description="Write a NEURON point process (.mod) or a Brian2 module (.py) that plays the "
                                   "ensemble-mean conductance of a clamped result after each release event.")
    p.add_argument("target", metavar="neuron|brian2", help="the simulator: " + ", ".join(TARGETS))
    p.add_argument("dir", metavar="RESULT_DIR", help="a result of mcsyn run ... --clamp MV")
    p.add_argument("--condition", default=None, metavar="NAME", help="the condition (default: the only one)")
    p.add_argument("--out", default=".", metavar="DIR", help="where to write (default: the current directory)")
    p.add_argument("--name", default=None, help="mechanism/module name (default: mcsyn_<model>_<condition>)")
    return command
