"""Autoreceptor feedback (5-HT1A/1B, D2, α2) on release probabilities: open loop (computed before
a run) or closed loop (drawn by the kernel from the activation realised in the run).

Closed loop (:class:`ClosedLoopFeedback`, ``SynapseModel.feedback``)
---------------------------------------------------------------------------------
The autoreceptor is a site group of the model (e.g. the D2 sites of a dopaminergic preset); its
active fraction is f(t) = Σ_s w_s n_s(t)/N over its N sites, with the weights of
:func:`activation_weights` (1 for every state holding transmitter, 0 for empty or drug-blocked
sites). The second-messenger step is a first-order filter, τ da/dt = f − a, with a(0) = f(0)
(the tonic state the run starts in has acted for long), and stimulus k of a train releases each
filled release site's vesicle with

    p_k = u_k · (1 − g · a(t_k − d))

(u_k: the train's U, or the Tsodyks–Markram u_n with plasticity; g: gain; d: delay; a(t) = a(0)
for t < 0). The kernel draws the vesicles at the stimulus, Binomial(filled sites, p_k), with its
own stream; recovery and facilitation then go on as in :func:`mcsyn.placement.plastic_train_vesicles`
(facilitation follows u_n, not p_k: the autoreceptor scales release, not the residual calcium that
facilitates — an assumption). g, τ and d are ASSUMED: no source gives them for one varicosity. For
orders of magnitude: in mouse striatum in vivo, D2 autoinhibition after a 4-pulse 15 Hz burst was
maximal 150–300 ms after the burst and gone within 600 ms, and single pulses did not inhibit
(Benoit-Marand, Borrelli & Gonon 2001, J Neurosci 21:9134, abstract [V]); the D2-receptor IPSC of
midbrain dopamine neurons, a G-protein-gated K⁺ current, outlasts the dopamine transient, its time
course set by the G-protein signalling (Beckstead et al. 2004, Neuron 42:939, and
Ford, Phillips & Williams 2009, J Neurosci 29:13344, abstracts [V]; their rise and decay times
were not read). Gain 0 compiles to the model without feedback (the same draws, bit for bit).

Open loop (:func:`apply_autoreceptor`)
--------------------------------------
Feedback is computed *before* the run from expected values (a mean-field rule, not the realised
releases of a run). Tonic occupancy from an ambient transmitter concentration S₀ seen by the
autoreceptor: o₀ = S/(S + K_D) with S = S₀/r, where r = Σ k_g(1 − θ_g)/Σ k_g is the fraction of
transporter clearance left unblocked (k_g: clearance rate of volume transporter group g; θ_g: its
equilibrium fraction blocked or held in a substrate cycle) — the steady state of constant tonic
release with first-order clearance. Phasic occupancy before stimulus k:

    o_k = 1 − (1 − o₀)·exp(−q Σ_{j<k} p_j e^{−(t_k − t_j)/τ}),

with q the occupancy added per expected release (``occupancy_per_release``) and τ (``tau_ms``) its
decay time. The release probability of stimulus k is p_k = p·(1 − g·o_k), with gain g (a single
release outside a train gets p·(1 − g·o₀)); trains become one Release per stimulus. The preset
defaults keep g = 0 (off) because no source read gives a value for it: the user states gain, τ and q.
"""
from __future__ import annotations

import dataclasses
import math

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import library
from .errors import ModelError, require_fraction, require_nonnegative

if TYPE_CHECKING:                     # annotations only; model imports this module
    from .model import SynapseModel



@dataclass
class ClosedLoopFeedback:
    """Closed-loop autoreceptor feedback on every train of the model (single releases keep their
    probability): the release probability of each stimulus follows the activation of the site
    group ``group`` realised in the run (:mod:`mcsyn.autoreceptor` has the transfer and its
    sources). ``gain`` g is in [0, 1]; ``tau_ms`` (the second-messenger filter, 0: none) and
    ``delay_ms`` are >= 0. No source gives g, τ or the delay for one varicosity: ASSUMED, stated by
    the user; gain 0 is the model without feedback."""

    group: str
    gain: float
    tau_ms: float
    delay_ms: float = 0.0

    def validate(self, model, label="feedback"):
        require_fraction(f"{label}.gain", self.gain)
        require_nonnegative(f"{label}.tau_ms", self.tau_ms)
        require_nonnegative(f"{label}.delay_ms", self.delay_ms)
        labels = [g.label for g in model.sites]
        if self.group not in labels:
            raise ModelError(f"{label}.group", self.group, f"must name the autoreceptor's site group; the model has {labels}")
        if not model.trains:
            raise ModelError(label, self.group, "acts on the release of trains; the model has none")


def activation_weights(scheme) -> dict[str, float]:
    """Per state of an autoreceptor's scheme, its weight in the active fraction: 1 for the states
    holding transmitter, the efficacy ε for a drug-bound agonist state
    (:attr:`~mcsyn.schemes.KineticScheme.state_efficacy`), 0 (left out) for the rest."""
    ligands = scheme.ligands()
    weights = {state: 1.0 for state in scheme.states if ligands[state] > 0}
    for state, efficacy in scheme.state_efficacy.items():
        if efficacy > 0:
            weights[state] = float(efficacy)
        else:
            weights.pop(state, None)
    return weights


def tonic_autoreceptor_occupancy(ambient_M: float, kd_M: float, unblocked_clearance_fraction: float = 1.0) -> float:
    """o₀ = S/(S + K_D) with S = ambient/r (r: fraction of transporter clearance left unblocked)."""
    if not kd_M > 0:
        raise ModelError("autoreceptor K_D", kd_M, "must be > 0")
    if ambient_M <= 0:
        return 0.0
    r = max(float(unblocked_clearance_fraction), 1e-12)
    s = ambient_M / r
    return s / (s + kd_M)


def unblocked_clearance_fraction(clearances, unavailable_fraction: dict) -> float:
    """r = Σ k_g(1 − θ_g)/Σ k_g over ``clearances`` ``[(group label, k_g in s⁻¹)]``, with θ_g the
    group's ``unavailable_fraction`` (blocked or in a substrate cycle); 1 without transporters."""
    total = sum(k for _, k in clearances)
    if not total > 0:
        return 1.0
    return sum(k * (1.0 - unavailable_fraction.get(label, 0.0)) for label, k in clearances) / total


def feedback_probabilities(times_ms, base_probability: float, gain: float, tau_ms: float,
                           occupancy_per_release: float, tonic_occupancy: float = 0.0) -> list[float]:
    """Release probability of each stimulus under open-loop autoreceptor feedback (module docstring):
    p_k = p·(1 − g·o_k), o_k = 1 − (1 − o₀)·exp(−q Σ_{j<k} p_j e^{−(t_k − t_j)/τ})."""
    if not 0 <= gain <= 1:
        raise ModelError("autoreceptor.gain", gain, "must be in [0, 1] (fractional reduction at full occupancy)")
    if not tau_ms > 0:
        raise ModelError("autoreceptor.tau_ms", tau_ms, "must be > 0")
    if occupancy_per_release < 0:
        raise ModelError("autoreceptor.occupancy_per_release", occupancy_per_release, "must be >= 0")
    probs = []
    for k, tk in enumerate(times_ms):
        drive = sum(pj * math.exp(-(tk - tj) / tau_ms) for tj, pj in zip(times_ms[:k], probs))
        o = 1.0 - (1.0 - tonic_occupancy) * math.exp(-occupancy_per_release * drive)
        probs.append(base_probability * (1.0 - gain * o))
    return probs


def apply_autoreceptor(model: SynapseModel, receptor: str, gain: float, tau_ms: float, occupancy_per_release: float,
                       ambient_M: float = 0.0, unblocked_clearance_fraction: float = 1.0,
                       affinity_factor: float = 1.0) -> SynapseModel:
    """A copy of ``model`` whose releases and trains carry autoreceptor-lowered release
    probabilities. Trains are expanded into single releases (one per stimulus) with their own
    probabilities. ``receptor`` is a library receptor (its K_D, divided by ``affinity_factor``, sets
    the tonic occupancy)."""
    rec = library.receptor(receptor, "autoreceptor.receptor")
    if rec.kd_M is None:
        raise ModelError("autoreceptor.receptor", receptor, "must be a one-site receptor with a K_D")
    if not rec.autoreceptor:
        autos = [n for n in library.names("receptors") if library.receptor(n).autoreceptor]
        raise ModelError("autoreceptor.receptor", receptor, f"is not a presynaptic autoreceptor; use one of {autos}")
    if gain == 0:
        return model
    if any(tr.plasticity is not None for tr in model.trains):
        raise ModelError("autoreceptor.gain", gain, "autoreceptor feedback does not yet combine with a train's "
                         "short-term plasticity (n_release_sites, tau_recovery_ms); set one of them off")
    o0 = tonic_autoreceptor_occupancy(ambient_M, rec.kd_M / affinity_factor, unblocked_clearance_fraction)
    releases = [dataclasses.replace(r, probability=r.probability * (1.0 - gain * o0)) for r in model.releases]
    for tr in model.trains:
        singles = list(tr.releases())
        times = [r.time_ms for r in singles]
        probs = feedback_probabilities(times, tr.release_probability * tr.vesicle.probability, gain, tau_ms,
                                       occupancy_per_release, o0)
        releases += [dataclasses.replace(r, probability=p) for r, p in zip(singles, probs)]
    return dataclasses.replace(model, releases=releases, trains=[])
