"""Drug mechanisms: one small class each, and the registry that the library and the drug layer read.

A mechanism declares the ``drugs.toml`` fields it uses and requires, checks a drug, and acts:

* :meth:`Mechanism.act_on_site` edits one site group's scheme and initial state fractions (for
  drugs with a Ki at the group's library entry); a :class:`SiteEdit` holds the group while the
  drugs acting on it are applied;
* :meth:`Mechanism.act_on_model` changes the model as a whole (vesicle content, ...).

Both record what they did in a :class:`DrugEffects`, from which :func:`mcsyn.drugs.apply_drugs`
writes the :class:`~mcsyn.drugs.PharmacologyReport`. A new mechanism is one class here (decorated
with :func:`register`) plus its data in ``mcsyn/data/drugs.toml``; the library's ``MECHANISMS`` and
the required-field rules of :meth:`mcsyn.library.Drug.from_dict` come from :data:`REGISTRY`.

Modes (``mode`` of :func:`~mcsyn.drugs.apply_drugs`): ``"equilibrium"`` (sites start at the
drugs' equilibrium and blocked sites stay blocked), ``"kinetic"`` (drugs with ``koff_per_s`` bind
and unbind during the run, starting at equilibrium), ``"acute"`` (as kinetic, starting drug-free).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

from .errors import ModelError
from .schemes import KineticScheme, TransporterCycle, stationary

MODES = ("equilibrium", "kinetic", "acute")
MONOAMINES = ("dopamine", "serotonin", "norepinephrine")
TABLE_FIELDS = ("efficacy",)      # drugs.toml tables (target -> value) that only some mechanisms take


def target_ki(drug, target: str) -> float | None:
    """The drug's Ki (M) at ``target`` (a library name; case and ``@variant`` ignored), or None."""
    base = target.partition("@")[0]
    for t, k in drug.targets().items():
        if t.lower() == base.lower():
            return k
    return None


@dataclass
class DrugEffects:
    """What the mechanisms did, collected over all site groups and the model."""

    acted: set = field(default_factory=set)            # drug labels that changed something
    no_effect: dict = field(default_factory=dict)      # {drug label: warning text}, in order
    equilibrium_only: set = field(default_factory=set)
    occupancy: dict = field(default_factory=dict)
    substrate_states: dict = field(default_factory=dict)
    unavailable_fraction: dict = field(default_factory=dict)
    vesicle_content_factor: float = 1.0


@dataclass
class SiteEdit:
    """One site group while the drugs acting on it are applied: a copy of its scheme, its initial
    fractions, the competitive occupancy θ of every acting drug, and the drug-bound states that
    relax together (the transporter's drug cycle, solved for its stationary distribution)."""

    label: str                         # the site group's label
    target: str                        # library name of the group's entry (the drugs' target)
    scheme: KineticScheme
    initial: dict
    preset_initial_total: float        # sum of the group's own initial fractions, before drugs
    mode: str
    cycle: TransporterCycle | None
    occupancy: dict
    effects: DrugEffects
    fixed_total: float = 0.0           # fraction held blocked for the whole run
    reversible: dict = field(default_factory=dict)     # {blocked state: (on_per_s, off_per_s)}
    cycle_states: list = field(default_factory=list)   # drug-bound states of substrate cycles
    cycle_rates: dict = field(default_factory=dict)    # {(from, to): rate} of those cycles
    substrate_states: dict | None = None
    unavailable: float = 0.0

    def ki(self, drug) -> float:
        return target_ki(drug, self.target)

    def add_cycle_state(self, state: str, rates: dict, return_per_s: float):
        """A drug-bound state of the transporter cycle, its ``{(from, to): rate}`` and an extra rate
        back from the inward-facing state to the ground state (efflux)."""
        ti, ground = self.cycle.inward_state, self.scheme.ground
        if not self.cycle_rates:
            self.cycle_rates[(ti, ground)] = self.cycle.return_per_s
        self.cycle_states.append(state)
        self.cycle_rates.update(rates)
        self.cycle_rates[(ti, ground)] = self.cycle_rates.get((ti, ground), 0.0) + return_per_s

    def finish(self) -> tuple[KineticScheme, dict]:
        """The edited scheme and initial fractions; fills :attr:`substrate_states` and
        :attr:`unavailable`."""
        if not self.cycle_states:
            self.unavailable = float(sum(self.occupancy.values()))
            return self.scheme, self.initial
        # stationary distribution of the drug cycle (kinetic blockers included), ignoring the few
        # transmitter molecules: the equilibrium the sites start in, or relax to ("acute")
        ground = self.scheme.ground
        states = [ground, self.cycle.inward_state] + self.cycle_states
        rates = dict(self.cycle_rates)
        for state, (on, off) in self.reversible.items():
            states.append(state)
            rates[(ground, state)] = on
            rates[(state, ground)] = off
            self.initial.pop(state, None)
        pi = stationary(states, rates)
        rest = 1.0 - self.fixed_total - self.preset_initial_total
        self.substrate_states = {st: float(rest * p) for st, p in pi.items() if st != ground}
        self.unavailable = self.fixed_total + sum(self.substrate_states.values())
        if self.mode != "acute":
            for st, p in self.substrate_states.items():
                if p > 0:
                    self.initial[st] = float(self.initial.get(st, 0.0) + p)
        return self.scheme, self.initial


def _and(words) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


class Mechanism:
    """Base class: the fields a mechanism uses, its checks, and its actions (no-ops here)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""            # as in "<description> needs ki.MAO"
    fields: ClassVar[tuple] = ()               # drugs.toml keys only this mechanism uses
    required_fields: ClassVar[tuple] = ()      # Drug attributes that must be given
    required_targets: ClassVar[tuple] = ()     # keys that must be in ``ki``
    acts_on_sites: ClassVar[bool] = False      # binds the site groups of the targets in ``ki``/``off_targets``
    ki_kind: ClassVar[str] = "transporters"    # the library kind the targets in ``ki`` name
    table_fields: ClassVar[tuple] = ()         # entries of TABLE_FIELDS this mechanism reads

    def check_targets(self, ki_M: dict, where: str, given):
        for target in self.required_targets:
            if target not in ki_M:
                raise ModelError(f"{where}.ki", given, f"{self.description} needs ki.{target}")

    def parse_tables(self, given: dict, where: str, ki_M: dict, canonical_target) -> dict:
        """The Drug fields read from this mechanism's tables (``table_fields``), checked; a table
        that the mechanism does not read is refused. ``canonical_target(name, field)`` is the
        library's name of a target in ``ki``."""
        for key in TABLE_FIELDS:
            if key in given and key not in self.table_fields:
                raise ModelError(f"{where}.{key}", given[key], f"{self.description} takes no {key} "
                                 f"(only {_and(m.description for m in REGISTRY.values() if key in m.table_fields)})")
        return {}

    def check(self, drug, where: str, given: dict):
        if any(getattr(drug, f) is None for f in self.required_fields):
            raise ModelError(where, drug.name, f"{self.description} needs {_and(self.required_fields)}")

    def act_on_site(self, site: SiteEdit, label: str, drug, concentration_M: float):
        """Edit ``site`` for ``drug`` at ``concentration_M`` (only called when ``acts_on_sites``)."""

    def act_on_model(self, model, doses: dict, effects: DrugEffects):
        """The model with the drugs ``{label: Dose}`` of this mechanism applied to it as a whole."""
        return model


REGISTRY: dict[str, Mechanism] = {}


def register(cls):
    """Class decorator: add one instance of a :class:`Mechanism` subclass to :data:`REGISTRY`.
    The order of registration is the order in which mechanisms act on a site group."""
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"mechanism {cls.__name__} needs a new, non-empty name (got {cls.name!r})")
    REGISTRY[cls.name] = cls()
    return cls


@register
class Blocker(Mechanism):
    """Competitive blocker (SSRIs, SNRIs, bupropion, cocaine, methylphenidate; also receptor
    off-targets such as fluoxetine at 5-HT2C). At equilibrium the fraction of a target blocked by
    drug *i* is the competitive occupancy θ_i = (C_i/K_i)/(1 + Σ_j C_j/K_j [+ S/Km]), over all drugs
    *j* that bind the target (and the ambient transmitter S with the transporter's Km, when given).
    Blocking is a site state ``"blocked:<drug>"`` reachable only from the empty ground state; a
    blocked site binds no transmitter.

    ``"equilibrium"``: each site starts blocked with probability θ_i (drawn per run) and stays
    blocked (drug binding is slow next to one synaptic event: ASSUMED, no rates read). Kinetic modes: a
    drug with ``koff_per_s`` binds at kon·C (kon = koff/Ki) and unbinds at koff; one without keeps
    its equilibrium block (with a warning).
    """

    name = "blocker"
    description = "a blocker"
    acts_on_sites = True

    def act_on_site(self, site, label, drug, concentration_M):
        bind_from_ground(site, f"blocked:{label}", label, drug, concentration_M)


def bind_from_ground(site: SiteEdit, state: str, label: str, drug, concentration_M: float):
    """Add the drug-bound ``state`` to ``site``, reached from the ground state only: in
    ``"equilibrium"`` mode (or without ``koff_per_s``) held for the whole run, each site starting
    in it with probability θ; otherwise bound at kon·C (kon = koff/Ki) and released at koff."""
    s = site.scheme
    theta = site.occupancy[label]
    s.add_state(state)
    if site.mode != "equilibrium" and drug.koff_per_s is not None:
        kon_c = drug.koff_per_s / site.ki(drug) * concentration_M
        s.first_order(s.ground, state, kon_c).first_order(state, s.ground, drug.koff_per_s)
        site.reversible[state] = (kon_c, drug.koff_per_s)
        if site.mode == "kinetic" and theta > 0:
            site.initial[state] = theta
        return
    if site.mode != "equilibrium":
        site.effects.equilibrium_only.add(label)
    if theta > 0:
        site.initial[state] = theta
    site.fixed_total += theta


@register
class Substrate(Mechanism):
    """Substrate / releaser (amphetamine). On each target transporter (a
    :func:`~mcsyn.transporter_cycle`: T, TS, Ti) the drug adds a state ``"bound:<drug>"``:
    T → bound at kon·C (kon = koff/Ki), bound → T at koff (competes with transmitter for T),
    bound → Ti at ``translocation_per_s`` (the drug is transported; it is not a model species, so
    this is a first-order step), and an ``efflux`` exit Ti → T at ``efflux_per_s``: an
    inward-facing carrier returns carrying a cytosolic transmitter molecule out (reverse
    transport). The kernel counts each such molecule as released and as ``effluxed``, so
    conservation holds. In ``"equilibrium"``/``"kinetic"`` modes the transporter states start at
    the stationary distribution of the drug's cycle; in ``"acute"`` mode drug-free.
    """

    name = "substrate"
    description = "a substrate (releaser)"
    fields = ("translocation_per_s", "efflux_per_s")
    required_fields = ("koff_per_s", "translocation_per_s", "efflux_per_s")
    acts_on_sites = True

    def act_on_site(self, site, label, drug, concentration_M):
        if site.cycle is None:
            raise ModelError(f"sites[{site.label!r}].scheme", site.scheme.name,
                             "a substrate drug needs a transporter cycle (T, TS, Ti) to act on")
        s, ti = site.scheme, site.cycle.inward_state
        state = f"bound:{label}"
        s.add_state(state)
        kon_c = drug.koff_per_s / site.ki(drug) * concentration_M
        s.first_order(s.ground, state, kon_c).first_order(state, s.ground, drug.koff_per_s)
        s.first_order(state, ti, drug.translocation_per_s)
        s.efflux(ti, s.ground, site.cycle.species, drug.efflux_per_s)
        site.add_cycle_state(state, {(s.ground, state): kon_c, (state, s.ground): drug.koff_per_s,
                                     (state, ti): drug.translocation_per_s}, drug.efflux_per_s)


@register
class MaoInhibitor(Mechanism):
    """MAO inhibitor (tranylcypromine). MAO is intracellular: the drug multiplies the vesicle
    content (molecules per release, including an explicit ``release.molecules``) by
    1 + (f_max − 1)·C/(C + Ki_MAO), for monoamine transmitters only, and changes nothing about
    extracellular clearance."""

    name = "mao_inhibitor"
    description = "an MAO inhibitor"
    fields = ("vesicle_content_factor_max",)
    required_targets = ("MAO",)

    def check(self, drug, where, given):
        if drug.vesicle_content_factor_max is None or drug.vesicle_content_factor_max < 1:
            raise ModelError(f"{where}.vesicle_content_factor_max", given.get("vesicle_content_factor_max"),
                             f"{self.description} needs a vesicle_content_factor_max >= 1")

    @staticmethod
    def content_factor(drug, concentration_M: float) -> float:
        k = drug.ki_M["MAO"]
        return 1.0 + (drug.vesicle_content_factor_max - 1.0) * concentration_M / (concentration_M + k)

    def act_on_model(self, model, doses, effects):
        species = set(model.species_names)
        if not species & set(MONOAMINES):
            for label in doses:
                effects.no_effect[label] = (f"drug {label!r} (MAO inhibitor) has no effect: the synapse's "
                                            f"transmitter {sorted(species)} is not a monoamine")
            return model
        factor = 1.0
        for drug, c in doses.values():
            factor *= self.content_factor(drug, c)
        effects.acted.update(doses)
        effects.vesicle_content_factor *= factor
        if factor == 1.0:
            return model

        def is_monoamine(release):
            return (release.species or model.species_names[0]) in MONOAMINES

        releases = [dataclasses.replace(r, molecules=r.molecules * factor) if is_monoamine(r) else r
                    for r in model.releases]
        trains = [dataclasses.replace(t, vesicle=dataclasses.replace(t.vesicle, molecules=t.vesicle.molecules * factor))
                  if is_monoamine(t.vesicle) else t for t in model.trains]
        return dataclasses.replace(model, releases=releases, trains=trains)


class ReceptorLigand(Mechanism):
    """Base of the receptor ligands: the targets in ``ki`` are library receptors, and the drug binds
    the receptor's ground (empty) state in competition with the transmitter, as a blocker does
    (:func:`bind_from_ground`; occupancy θ_i = (C_i/K_i)/(1 + Σ_j C_j/K_j) over the drugs at the
    receptor). One drug-bound state per drug stands for the whole receptor: a drug at one site of a
    multi-site receptor (AMPA, NMDA, nAChR) keeps the transmitter off all of them (ASSUMED: the
    schemes have no states with drug and transmitter bound together)."""

    acts_on_sites = True
    ki_kind = "receptors"

    def check(self, drug, where, given):
        super().check(drug, where, given)
        if drug.off_targets_M:
            raise ModelError(f"{where}.off_targets", given.get("off_targets"),
                             f"{self.description} lists every receptor it binds in ki (give an agonist "
                             "efficacy 0 at a receptor it blocks)")


@register
class Antagonist(ReceptorLigand):
    """Competitive (neutral) antagonist at receptors (raclopride at D2, WAY-100635 at 5-HT1A): a
    state ``"blocked:<drug>"`` that binds no transmitter and never activates (efficacy 0)."""

    name = "antagonist"
    description = "a receptor antagonist"

    def act_on_site(self, site, label, drug, concentration_M):
        bind_from_ground(site, f"blocked:{label}", label, drug, concentration_M)


@register
class InverseAgonist(Antagonist):
    """Inverse agonist: it lowers a receptor's constitutive (agonist-free) activity. The schemes of
    mcsyn have none (an empty receptor is inactive), so here an inverse agonist acts exactly as a
    neutral antagonist; its class says what it is, and nothing of its negative efficacy is
    modelled."""

    name = "inverse_agonist"
    description = "an inverse agonist (acting as an antagonist: the schemes have no constitutive activity)"


@register
class Agonist(ReceptorLigand):
    """Full or partial agonist at receptors (8-OH-DPAT at 5-HT1A; aripiprazole at D2). A drug-bound
    state ``"agonist:<drug>"`` reached from the ground state, with the drug's efficacy ε ∈ [0, 1] at
    that receptor as its activation weight (:meth:`KineticScheme.set_efficacy`): ε = 1 a full
    agonist, 0 < ε < 1 a partial one, ε = 0 an antagonist. A state with ε > 0 is an open (active)
    state: at an ionotropic receptor it conducts ε times the receptor's single-channel conductance
    on average (a partial agonist's channel taken as flickering faster than the sampling, ASSUMED;
    the extra noise of that flicker is not modelled), at a G-protein-coupled receptor it counts ε of
    a fully active receptor. So alone an agonist activates ε·θ of the sites, and with the
    transmitter it takes θ of the sites away from it: the competitive partial-agonist response.

    Efficacy is relative to the transmitter at that receptor, in a system without receptor reserve
    (the schemes have no signal amplification): use the source's value measured without spare
    receptors. The ``<group>:open`` series counts receptors in any active state, unweighted; the
    weighted activation is :func:`mcsyn.drugs.activation` (and the current under a clamp)."""

    name = "agonist"
    description = "a receptor agonist"
    table_fields = ("efficacy",)

    def parse_tables(self, given, where, ki_M, canonical_target):
        table = given.get("efficacy")
        if not isinstance(table, dict) or not table:
            raise ModelError(f"{where}.efficacy", table, "an agonist needs a table receptor = efficacy in [0, 1] "
                             "(1: full agonist; between 0 and 1: partial agonist), one per receptor in ki")
        out = {}
        for target, value in table.items():
            f = f"{where}.efficacy.{target}"
            name = canonical_target(target, f)
            if name not in ki_M:
                raise ModelError(f, value, f"the drug has no Ki at {name}; its receptors in ki: {sorted(ki_M)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ModelError(f, value, "an efficacy must be a number in [0, 1] (1: full agonist)")
            out[name] = float(value)
        missing = sorted(set(ki_M) - set(out))
        if missing:
            raise ModelError(f"{where}.efficacy", table, f"gives no efficacy for {missing} (in ki)")
        return {"efficacy": out}

    def act_on_site(self, site, label, drug, concentration_M):
        state = f"agonist:{label}"
        bind_from_ground(site, state, label, drug, concentration_M)
        site.scheme.set_efficacy(state, drug.efficacy[site.target])


def mechanism(name: str) -> Mechanism:
    """The registered mechanism ``name`` (KeyError if there is none; the library checks names)."""
    return REGISTRY[name]
