"""Kinetic schemes: the small Markov chains that every receptor, transporter and enzyme site follows.

A scheme has named states; its first state is the ground state (empty, unbound). Transitions are
of six kinds:

``bind``        a free transmitter molecule that hits the site binds (second order, kon in M⁻¹ s⁻¹)
``unbind``      a bound molecule is released next to the site (first order, s⁻¹)
``first_order`` a change of conformation with no molecule gained or lost (s⁻¹)
``uptake``      the bound molecule is translocated into the cell: counted as taken up (s⁻¹)
``degrade``     the bound molecule is destroyed by the site, e.g. acetylcholinesterase (s⁻¹)
``efflux``      the site emits a new transmitter molecule (reverse transport), counted as released (s⁻¹)

Each state holds a fixed number of bound molecules ("ligands"), derived from the transitions:
binding adds one, unbinding/uptake/degradation remove one, the rest keep the count. A scheme whose
transitions disagree about a state's count is rejected. Competing first-order exits from a state are
drawn exactly: an exponential waiting time with the total rate, then a branch in proportion to rates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .errors import ModelError, require_nonnegative

KINDS = ("bind", "unbind", "first_order", "uptake", "degrade", "efflux")
_LIGAND_CHANGE = {"bind": 1, "unbind": -1, "first_order": 0, "uptake": -1, "degrade": -1, "efflux": 0}


@dataclass(frozen=True)
class Transition:
    """One arrow of a scheme. ``rate`` is in M⁻¹ s⁻¹ for ``bind``, s⁻¹ otherwise."""

    source: str
    target: str
    kind: str
    rate: float
    species: str | None = None


@dataclass
class KineticScheme:
    """States and transitions of one site type.

    Parameters
    ----------
    name : str
        Label used in outputs (e.g. ``"AMPA"``).
    states : list of str
        State names; the first is the ground (empty) state.
    open_states : tuple of str
        States counted as "open" (conducting) in outputs.
    source : str
        Where the rates come from.
    state_efficacy : dict
        Activation weight ε ∈ [0, 1] of states whose weight is not the default (1 for an open
        state, 0 for any other): the drug-bound states of agonists (:mod:`mcsyn.mechanisms`). An
        open state with ε < 1 conducts ε·γ on average (ionotropic receptors) or counts ε of a
        fully active receptor (G-protein-coupled ones). :meth:`activation_weights` gives the
        weight of every state; currents (:mod:`mcsyn.electrophysiology`) and autoreceptor
        activation read it.
    """

    name: str
    states: list[str]
    open_states: tuple[str, ...] = ()
    source: str = ""
    transitions: list[Transition] = field(default_factory=list)
    state_efficacy: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.states:
            raise ModelError(f"scheme {self.name!r}.states", self.states, "needs at least one state")
        if len(set(self.states)) != len(self.states):
            raise ModelError(f"scheme {self.name!r}.states", self.states, "state names must be unique")
        for s in self.open_states:
            self._check_state("open_states", s)
        for s, e in dict(self.state_efficacy).items():
            self._check_efficacy(s, e)

    # ------------------------------------------------------------------ building
    def _check_state(self, what, state):
        if state not in self.states:
            raise ModelError(f"scheme {self.name!r}.{what}", state,
                             f"must be one of the scheme's states {self.states}")

    def _check_efficacy(self, state, efficacy):
        self._check_state("state_efficacy", state)
        if isinstance(efficacy, bool) or not isinstance(efficacy, (int, float)) or not 0.0 <= efficacy <= 1.0:
            raise ModelError(f"scheme {self.name!r}.state_efficacy.{state}", efficacy, "must be a number in [0, 1]")

    def set_efficacy(self, state: str, efficacy: float) -> "KineticScheme":
        """Give ``state`` the activation weight ``efficacy`` (in [0, 1]); a state with a weight
        above 0 becomes an open (active) state, one with weight 0 stops being one."""
        self._check_efficacy(state, efficacy)
        self.state_efficacy[state] = float(efficacy)
        opened = [s for s in self.open_states if s != state] + ([state] if efficacy > 0 else [])
        self.open_states = tuple(s for s in self.states if s in opened)
        return self

    def add_state(self, state: str) -> "KineticScheme":
        if state in self.states:
            raise ModelError(f"scheme {self.name!r}.states", state, "already exists")
        self.states.append(state)
        return self

    def _add(self, source, target, kind, rate, species=None):
        self._check_state("transition source", source)
        self._check_state("transition target", target)
        if source == target:
            raise ModelError(f"scheme {self.name!r} transition", (source, target), "source and target must differ")
        unit = "kon_per_M_per_s" if kind == "bind" else "rate_per_s"
        rate = require_nonnegative(f"scheme {self.name!r} {source}->{target} {unit}", rate)
        if kind in ("bind", "unbind", "efflux") and not species:
            raise ModelError(f"scheme {self.name!r} {source}->{target} species", species,
                             f"a {kind} transition must name the transmitter species")
        self.transitions.append(Transition(source, target, kind, rate, species))
        return self

    def bind(self, source, target, species, kon_per_M_per_s):
        """A hit by a free ``species`` molecule moves the site from ``source`` to ``target``."""
        return self._add(source, target, "bind", kon_per_M_per_s, species)

    def unbind(self, source, target, species, koff_per_s):
        """First-order release of one bound ``species`` molecule next to the site."""
        return self._add(source, target, "unbind", koff_per_s, species)

    def first_order(self, source, target, rate_per_s):
        """Conformational change (desensitisation, opening, drug block) at ``rate_per_s``."""
        return self._add(source, target, "first_order", rate_per_s)

    def uptake(self, source, target, rate_per_s):
        """Translocation: the bound molecule is removed (counted as taken up)."""
        return self._add(source, target, "uptake", rate_per_s)

    def degrade(self, source, target, rate_per_s):
        """Enzymatic turnover: the bound molecule is destroyed (counted as degraded)."""
        return self._add(source, target, "degrade", rate_per_s)

    def efflux(self, source, target, species, rate_per_s):
        """Reverse transport: the site emits a new ``species`` molecule (counted as released)."""
        return self._add(source, target, "efflux", rate_per_s, species)

    def copy(self, name=None) -> "KineticScheme":
        return KineticScheme(name or self.name, list(self.states), tuple(self.open_states),
                             self.source, list(self.transitions), dict(self.state_efficacy))

    # ------------------------------------------------------------------ derived
    @property
    def ground(self) -> str:
        return self.states[0]

    def activation_weights(self) -> dict[str, float]:
        """``{state: ε}`` for every state that activates the receptor (ε > 0): 1 for an open state
        unless :attr:`state_efficacy` says otherwise (drug-bound states of partial agonists)."""
        out = {}
        for s in self.open_states:
            e = float(self.state_efficacy.get(s, 1.0))
            if e > 0:
                out[s] = e
        return out

    def species(self) -> set[str]:
        return {t.species for t in self.transitions if t.species}

    def ligands(self) -> dict[str, int]:
        """Bound molecules held in each state, derived from the transitions (ground state: 0)."""
        count = {self.states[0]: 0}
        changed = True
        while changed:
            changed = False
            for t in self.transitions:
                delta = _LIGAND_CHANGE[t.kind]
                for a, b, d in ((t.source, t.target, delta), (t.target, t.source, -delta)):
                    if a in count:
                        expect = count[a] + d
                        if b not in count:
                            count[b] = expect
                            changed = True
                        elif count[b] != expect:
                            raise ModelError(
                                f"scheme {self.name!r} transition {t.source}->{t.target} ({t.kind})",
                                t.rate,
                                f"implies {b!r} holds {expect} bound molecules, but other transitions "
                                f"give {count[b]}; binding adds one, unbind/uptake/degrade remove one")
        for s in self.states:
            count.setdefault(s, 0)
        for s, n in count.items():
            if n < 0:
                raise ModelError(f"scheme {self.name!r} state {s!r}", n,
                                 "transitions remove more molecules than were bound")
        return count


# ======================================================================================================
# Built-in schemes (rates with their sources; the references are listed in REFERENCES.md)

def ampa_jonas1993(species: str = "glutamate") -> KineticScheme:
    """Two-site AMPA receptor with desensitisation (Jonas, Major & Sakmann 1993, J Physiol 472:615).

    Rates as used by Franks, Stevens & Sejnowski 2003 (read from the GENESIS script
    ``make_AMPA_m_stevens`` [V2]; Jonas 1993 itself not read). Room-temperature rates. C0..C2 closed with 0..2
    glutamate, O open, C3/C4 desensitised with 1/2 bound, C5 desensitised from O.
    """
    s = KineticScheme("AMPA", ["C0", "C1", "C2", "O", "C3", "C4", "C5"], open_states=("O",),
                      source="Jonas, Major & Sakmann 1993 J Physiol 472:615; rates via Franks et al. 2003")
    s.bind("C0", "C1", species, 4.59e6).unbind("C1", "C0", species, 4.26e3)
    s.bind("C1", "C2", species, 2.84e7).unbind("C2", "C1", species, 3.26e3)
    s.first_order("C2", "O", 4.24e3).first_order("O", "C2", 900.0)
    s.first_order("C1", "C3", 2.89e3).first_order("C3", "C1", 39.2)
    s.bind("C3", "C4", species, 1.27e6).unbind("C4", "C3", species, 45.7)
    s.first_order("C2", "C4", 172.0).first_order("C4", "C2", 0.727)
    s.first_order("C4", "C5", 16.8).first_order("C5", "C4", 190.4)
    s.first_order("O", "C5", 17.7).first_order("C5", "O", 4.0)
    return s


def one_site_receptor(name: str, species: str, kon_per_M_per_s: float, koff_per_s: float,
                      source: str = "", active_is_open: bool = True) -> KineticScheme:
    """A single binding site (GPCR-like: 5-HT, D1, D2, adrenergic). The bound state counts as "open"
    (active) when ``active_is_open``."""
    s = KineticScheme(name, ["R", "AR"], open_states=("AR",) if active_is_open else (), source=source)
    s.bind("R", "AR", species, kon_per_M_per_s).unbind("AR", "R", species, koff_per_s)
    return s


def transporter_cycle(name: str, species: str, kon_per_M_per_s: float, koff_per_s: float,
                      translocation_per_s: float, return_per_s: float, source: str = "") -> KineticScheme:
    """Outward-facing empty ``T`` binds a molecule (``TS``), which either unbinds or is translocated
    (``uptake``: removed, counted as taken up), leaving an inward-facing empty carrier ``Ti`` that
    returns slowly to ``T``. The slow return is what makes transporters saturate.

    Steady state: turnover k_cat = k_tr k_ret / (k_tr + k_ret) and
    Km = (koff + k_tr) / kon * k_ret / (k_tr + k_ret); low-concentration clearance kon [T].
    """
    s = KineticScheme(name, ["T", "TS", "Ti"], source=source)
    s.bind("T", "TS", species, kon_per_M_per_s).unbind("TS", "T", species, koff_per_s)
    s.uptake("TS", "Ti", translocation_per_s).first_order("Ti", "T", return_per_s)
    return s


def enzyme_site(name: str, species: str, kon_per_M_per_s: float, koff_per_s: float, kcat_per_s: float,
                source: str = "") -> KineticScheme:
    """Membrane enzyme (acetylcholinesterase-like): E + S <-> ES -> E, the substrate destroyed."""
    s = KineticScheme(name, ["E", "ES"], source=source)
    s.bind("E", "ES", species, kon_per_M_per_s).unbind("ES", "E", species, koff_per_s)
    s.degrade("ES", "E", kcat_per_s)
    return s


def with_blocked_state(scheme: KineticScheme, block_per_s: float, unblock_per_s: float,
                       state: str = "blocked", name: str | None = None) -> KineticScheme:
    """A copy of ``scheme`` with a drug-bound state reachable from the ground state.

    ``block_per_s`` is the pseudo-first-order drug binding rate (kon_drug × concentration) and
    ``unblock_per_s`` the drug's koff. A blocked site binds no transmitter.
    """
    s = scheme.copy(name)
    s.add_state(state)
    s.first_order(s.ground, state, block_per_s).first_order(state, s.ground, unblock_per_s)
    return s


# ======================================================================================================
# transporter-cycle algebra and small-chain stationary distributions

class TransporterCycle(NamedTuple):
    """The rates of a :func:`transporter_cycle` (T ⇌ TS → Ti → T) and the bulk values they give.

    A tuple, so that ``kon, koff, ktr, kret = cycle[:4]`` keeps working where the rates were a
    plain tuple. ``inward_state`` and ``species`` are the Ti state's name and the transported
    species when the cycle was read from a scheme (:func:`transporter_cycle_rates`).
    """

    kon_per_M_per_s: float
    koff_per_s: float
    translocation_per_s: float
    return_per_s: float
    inward_state: str = "Ti"
    species: str | None = None

    @property
    def kcat_per_s(self) -> float:
        """Turnover k_cat = k_tr k_ret / (k_tr + k_ret)."""
        return self.translocation_per_s * self.return_per_s / (self.translocation_per_s + self.return_per_s)

    @property
    def km_M(self) -> float:
        """Km = (koff + k_tr)/kon · k_ret/(k_tr + k_ret)."""
        ktr, kret = self.translocation_per_s, self.return_per_s
        return (self.koff_per_s + ktr) / self.kon_per_M_per_s * kret / (ktr + kret)

    @property
    def smallest_km_M(self) -> float:
        """The Km with koff = 0: k_tr/kon · k_ret/(k_tr + k_ret); no koff reaches below it."""
        ktr, kret = self.translocation_per_s, self.return_per_s
        return ktr / self.kon_per_M_per_s * kret / (ktr + kret)

    @property
    def uptake_probability(self) -> float:
        """Chance that a bound molecule is translocated rather than released: k_tr/(koff + k_tr)."""
        return self.translocation_per_s / (self.koff_per_s + self.translocation_per_s)

    def koff_for_km(self, km_M: float) -> float:
        """The koff that gives ``km_M`` with this cycle's kon, k_tr and k_ret (the Km formula solved
        for koff: Km·kon·(k_tr + k_ret)/k_ret − k_tr; negative below :attr:`smallest_km_M`)."""
        ktr, kret = self.translocation_per_s, self.return_per_s
        return km_M * self.kon_per_M_per_s * (ktr + kret) / kret - ktr

    def ecs_concentration_for_vmax(self, vmax_M_per_s: float) -> float:
        """Transporter concentration (M of extracellular fluid) giving bulk ``vmax``: Vmax/k_cat."""
        return vmax_M_per_s / self.kcat_per_s

    def clearance_rate_per_s(self, transporter_M: float) -> float:
        """Low-concentration first-order clearance kon [T] k_tr/(koff + k_tr) = Vmax/Km."""
        ktr = self.translocation_per_s
        return self.kon_per_M_per_s * transporter_M * ktr / (self.koff_per_s + ktr)


def transporter_cycle_rates(scheme: KineticScheme) -> TransporterCycle | None:
    """The :class:`TransporterCycle` of a transporter_cycle-shaped scheme (one bind from the ground
    state, its unbind and uptake, a first-order return to the ground state), else None."""
    g = scheme.ground
    binds = [t for t in scheme.transitions if t.kind == "bind" and t.source == g]
    if len(binds) != 1:
        return None
    ts = binds[0].target
    unb = [t for t in scheme.transitions if t.kind == "unbind" and t.source == ts and t.target == g]
    upt = [t for t in scheme.transitions if t.kind == "uptake" and t.source == ts]
    if len(unb) != 1 or len(upt) != 1:
        return None
    ti = upt[0].target
    ret = [t for t in scheme.transitions if t.kind == "first_order" and t.source == ti and t.target == g]
    if len(ret) != 1:
        return None
    return TransporterCycle(binds[0].rate, unb[0].rate, upt[0].rate, ret[0].rate, ti, binds[0].species)


def stationary(states, rates) -> dict:
    """Stationary distribution ``{state: probability}`` of a small continuous-time chain given as
    ``{(from, to): rate}`` (least squares on Qᵀπ = 0, Σπ = 1)."""
    n = len(states)
    idx = {s: i for i, s in enumerate(states)}
    q = np.zeros((n, n))
    for (a, b), r in rates.items():
        q[idx[a], idx[b]] += r
        q[idx[a], idx[a]] -= r
    m = np.vstack([q.T, np.ones(n)])
    rhs = np.zeros(n + 1)
    rhs[-1] = 1.0
    p, *_ = np.linalg.lstsq(m, rhs, rcond=None)
    p = np.clip(p, 0.0, None)
    return dict(zip(states, p / p.sum()))
