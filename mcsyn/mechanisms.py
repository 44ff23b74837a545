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

    def check_targets(self, ki_M: dict, where: str, given):
        for target in self.required_targets:
            if target not in ki_M:
                raise ModelError(f"{where}.ki", given, f"{self.description} needs ki.{target}")

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
        s = site.scheme
        state = f"blocked:{label}"
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


def mechanism(name: str) -> Mechanism:
    """The registered mechanism ``name`` (KeyError if there is none; the library checks names)."""
    return REGISTRY[name]
