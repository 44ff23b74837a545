"""The description of one synapse that a run simulates.

Units at this surface: lengths in µm (``*_um``), times in ms (``*_ms``) or µs (``*_us``),
diffusion coefficients in µm²/ms, rates in s⁻¹, binding rate constants in M⁻¹ s⁻¹, densities
per µm² of membrane or per µm³ of tissue. Every field name carries its unit.

Geometry (all optional parts default to a glutamatergic-like cleft) lives in :mod:`mcsyn.geometry`,
with the outside kinds and what each of them means; :class:`Geometry` is re-exported here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import pickle
from dataclasses import dataclass, field

import numpy as np

from . import geometry as geo
from .autoreceptor import ClosedLoopFeedback  # noqa: F401  (re-exported)
from .electrophysiology import VoltageClamp, channels
from .errors import (MAX_DURATION_MS, MIN_STEP_US, ModelError, require_choice, require_count, require_fraction,
                     require_nonnegative, require_positive)
from .geometry import OUTSIDE_KINDS, SITE_LOCATIONS, Geometry  # noqa: F401  (re-exported)
from .rate_schedule import RateSchedule, validate_all as _validate_rate_schedules  # noqa: F401  (re-exported)
from .schemes import KineticScheme

ARRANGEMENTS = ("uniform", "clustered", "coordinates")
MAX_COUNT_SITES = 10 ** 9
MAX_CLUSTERS = 1000        # placing each cluster scans the region's free tiles once per run
MAX_STIMULI = 10 ** 6      # fusions of one train (each is drawn in Python per run)


def _float_array(value):
    """``value`` as a float array, or None when it is not numbers (strings, ragged lists, tables)."""
    if isinstance(value, (str, bytes, dict)):
        return None
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError, OverflowError):
        return None


@dataclass
class Species:
    """A diffusing transmitter: ``diffusion_um2_per_ms`` is the free diffusion coefficient
    (in the volume it is divided by the tortuosity squared)."""

    name: str
    diffusion_um2_per_ms: float

    def validate(self):
        if not isinstance(self.name, str) or not self.name:
            raise ModelError("species.name", self.name, "must be a non-empty string")
        require_positive(f"species[{self.name!r}].diffusion_um2_per_ms", self.diffusion_um2_per_ms)


@dataclass
class SiteGroup:
    """Sites of one kinetic scheme at one location.

    Parameters
    ----------
    scheme : KineticScheme
    location : str
        ``"postsynaptic"`` (the PSD disk r < R_psd on z = 0), ``"presynaptic"`` (z = h, r < R_cleft),
        ``"band_postsynaptic"`` / ``"band_presynaptic"`` (the band membranes R_cleft <= r < R_outer),
        or ``"volume"`` (homogenised ECS, per µm³ of tissue).
    density_per_um2 : float, optional
        Membrane sites per µm²; the number placed is round(density × area).
    density_per_um3 : float, optional
        Volume sites per µm³ of tissue (volume location only).
    count : int, optional
        Exact number of sites instead of a density.
    arrangement : str
        ``"uniform"`` (uniformly at random per run), ``"clustered"`` (uniform within
        ``n_clusters`` disks of ``cluster_radius_um`` placed at random per run), or
        ``"coordinates"`` (``coordinates_um``, an (n, 2) array, fixed).
    initial_state_fractions : dict, optional
        Fraction of sites starting in each state (e.g. a drug-blocked fraction); the rest start in
        the ground state. Each run draws the states at random with these probabilities.
    """

    scheme: KineticScheme
    location: str
    density_per_um2: float | None = None
    density_per_um3: float | None = None
    count: int | None = None
    arrangement: str = "uniform"
    n_clusters: int = 1
    cluster_radius_um: float = 0.05
    coordinates_um: np.ndarray | None = None
    initial_state_fractions: dict = field(default_factory=dict)
    name: str | None = None

    @property
    def label(self) -> str:
        """The group's name in metrics and columns (``AMPA:bound:peak``): ``name`` if given, else
        the scheme's name. A model names an unnamed group ``scheme@location`` where two of its
        groups would share a label (:func:`site_labels`)."""
        return self.name or getattr(self.scheme, "name", None)

    def validate(self, geometry: Geometry, species_names):
        lab = f"sites[{self.label!r}]"
        if not isinstance(self.scheme, KineticScheme):
            raise ModelError(f"{lab}.scheme", self.scheme, "must be a KineticScheme")
        require_choice(f"{lab}.location", self.location, SITE_LOCATIONS)
        require_choice(f"{lab}.arrangement", self.arrangement, ARRANGEMENTS)
        for sp in self.scheme.species():
            if sp not in species_names:
                raise ModelError(f"{lab}.scheme species", sp,
                                 f"must be one of the model's species {sorted(species_names)}")
        self.scheme.ligands()
        geo.check_location(geometry, f"{lab}.location", self.location,
                           f"{geo.LOCATION_COMPARTMENT[self.location]} sites need")
        if self.location == "volume":
            if self.arrangement != "uniform":
                raise ModelError(f"{lab}.arrangement", self.arrangement, "volume sites are placed 'uniform'")
            if self.density_per_um2 is not None:
                raise ModelError(f"{lab}.density_per_um2", self.density_per_um2,
                                 "volume sites take density_per_um3 (per µm³ of tissue) or count")
            for t in self.scheme.transitions:
                if t.kind == "bind" and t.source != self.scheme.ground:
                    raise ModelError(f"{lab}.scheme transition {t.source}->{t.target}", t.kind,
                                     "volume sites may bind transmitter only from their ground state")
        elif self.density_per_um3 is not None:
            raise ModelError(f"{lab}.density_per_um3", self.density_per_um3,
                             "membrane sites take density_per_um2 or count")
        given = [x is not None for x in (self.density_per_um2, self.density_per_um3, self.count)]
        if self.arrangement == "coordinates":
            if self.coordinates_um is None:
                raise ModelError(f"{lab}.coordinates_um", None, "arrangement 'coordinates' needs an (n, 2) array")
            c = _float_array(self.coordinates_um)
            if c is None or c.ndim != 2 or c.shape[1] != 2 or not np.all(np.isfinite(c)) or len(c) > MAX_COUNT_SITES:
                raise ModelError(f"{lab}.coordinates_um", getattr(c, "shape", self.coordinates_um),
                                 "must be a finite (n, 2) array of µm")
        elif sum(given) != 1:
            raise ModelError(lab, "density/count", "give exactly one of density_per_um2, density_per_um3, count")
        if self.density_per_um2 is not None:
            require_nonnegative(f"{lab}.density_per_um2", self.density_per_um2)
        if self.density_per_um3 is not None:
            require_nonnegative(f"{lab}.density_per_um3", self.density_per_um3)
        if self.count is not None:
            require_count(f"{lab}.count", self.count)
        if self.arrangement == "clustered":
            require_count(f"{lab}.n_clusters", self.n_clusters, low=1, high=MAX_CLUSTERS)
            geo.require_length(f"{lab}.cluster_radius_um", self.cluster_radius_um)
        if not isinstance(self.initial_state_fractions, dict):
            raise ModelError(f"{lab}.initial_state_fractions", self.initial_state_fractions,
                             "must be a dict {state: fraction}")
        total = 0.0
        for state, frac in self.initial_state_fractions.items():
            if state not in self.scheme.states:
                raise ModelError(f"{lab}.initial_state_fractions", state,
                                 f"must name states of {self.scheme.name}: {self.scheme.states}")
            require_nonnegative(f"{lab}.initial_state_fractions[{state!r}]", frac)
            if self.scheme.ligands()[state] != 0:
                raise ModelError(f"{lab}.initial_state_fractions", state,
                                 "initial states must hold no transmitter (conservation)")
            total += frac
        if total > 1 + 1e-12:
            raise ModelError(f"{lab}.initial_state_fractions", self.initial_state_fractions,
                             "fractions must add up to at most 1")


MAX_RELEASED = 1e9        # molecules of one fusion (the errors module's count bound)
# a gamma quantum has shape 1/cv²: below MIN_QUANTAL_CV it is a fixed quantum in all but name
MIN_QUANTAL_CV, MAX_QUANTAL_CV = 1e-6, 10.0


@dataclass
class Release:
    """One vesicle fusion.

    ``molecules`` is the mean number released; ``quantal_cv`` > 0 draws it from a gamma distribution
    with that coefficient of variation (rounded), or ``molecule_distribution="poisson"``.
    ``pore_tau_ms`` > 0 releases the molecules through a fusion pore with exponential time course.
    ``position_um`` is (x, y) on the presynaptic membrane for cleft release, or (x, y, z) in the
    volume for ``into="volume"`` (default: on the varicosity surface).
    ``probability`` is the chance that this fusion happens at all (per run).
    ``random_position_radius_um`` > 0 draws the (x, y) of a cleft release per run, uniformly over
    the disk of that radius around the cleft axis (a miniature's release site anywhere on the active
    zone; :mod:`mcsyn.variability`); it excludes ``position_um``. 0: the position is fixed.
    """

    time_ms: float = 0.0
    molecules: float = 3000
    species: str | None = None
    position_um: tuple | None = None
    into: str = "cleft"
    pore_tau_ms: float = 0.0
    quantal_cv: float = 0.0
    molecule_distribution: str = "fixed"
    probability: float = 1.0
    random_position_radius_um: float = 0.0

    def validate(self, geometry: Geometry, species_names, duration_ms, label="release"):
        require_nonnegative(f"{label}.time_ms", self.time_ms)
        if self.time_ms > duration_ms:
            raise ModelError(f"{label}.time_ms", self.time_ms, f"must be within the run (<= {duration_ms} ms)")
        require_positive(f"{label}.molecules", self.molecules, high=MAX_RELEASED)
        if self.molecules < 1:
            raise ModelError(f"{label}.molecules", self.molecules, "must release at least one molecule")
        if self.species is not None and self.species not in species_names:
            raise ModelError(f"{label}.species", self.species, f"must be one of {sorted(species_names)}")
        require_choice(f"{label}.into", self.into, ("cleft", "volume"))
        geo.check_location(geometry, f"{label}.into", self.into, f"release into the {self.into} needs")
        require_nonnegative(f"{label}.pore_tau_ms", self.pore_tau_ms)
        require_nonnegative(f"{label}.quantal_cv", self.quantal_cv, high=MAX_QUANTAL_CV)
        if 0 < self.quantal_cv < MIN_QUANTAL_CV:
            raise ModelError(f"{label}.quantal_cv", self.quantal_cv,
                             f"must be 0 (a fixed quantum) or in [{MIN_QUANTAL_CV:g}, {MAX_QUANTAL_CV:g}]")
        require_choice(f"{label}.molecule_distribution", self.molecule_distribution, ("fixed", "poisson", "gamma"))
        require_fraction(f"{label}.probability", self.probability)
        self._validate_random_position(geometry, label)
        if self.position_um is not None:
            pos = _float_array(self.position_um)
            if pos is None or pos.ndim != 1 or not np.all(np.isfinite(pos)):
                raise ModelError(f"{label}.position_um", self.position_um, "must be finite coordinates in µm")
            if self.into == "cleft":
                if pos.shape != (2,) or np.hypot(*pos) >= geometry.cleft_radius_um:
                    raise ModelError(f"{label}.position_um", self.position_um,
                                     f"must be (x, y) inside the cleft (r < {geometry.cleft_radius_um} µm)")
            else:
                if pos.shape != (3,) or not geo.in_volume(geometry, pos):
                    raise ModelError(f"{label}.position_um", self.position_um,
                                     "must be (x, y, z) in the volume, between the varicosity and domain radii")

    def _validate_random_position(self, geometry: Geometry, label):
        radius = self.random_position_radius_um
        where = f"{label}.random_position_radius_um"
        require_nonnegative(where, radius)
        if radius == 0:
            return
        if self.into != "cleft":
            raise ModelError(where, radius, "a random release position is drawn on the presynaptic membrane: "
                                            "needs into = 'cleft'")
        if self.position_um is not None:
            raise ModelError(where, radius, f"excludes a fixed position_um ({self.position_um}); give one of them")
        if radius >= geometry.cleft_radius_um:
            raise ModelError(where, radius, f"must be < the cleft radius ({geometry.cleft_radius_um} µm)")


@dataclass
class ShortTermPlasticity:
    """Depression and facilitation of a train's release: the stochastic Tsodyks–Markram scheme.

    The train's active zone has ``n_sites`` release sites, each holding at most one release-ready
    vesicle (Fuhrmann, Segev, Markram & Tsodyks 2002, J Neurophysiol 87:140, the stochastic form of
    Tsodyks & Markram 1997, PNAS 94:719). All sites are filled when the train starts. At stimulus
    n each filled site releases its vesicle with probability u_n; an empty site is refilled with
    probability 1 − exp(−Δt/τ_rec) over an interval Δt. Facilitation raises u after every stimulus:

        u_1 = U,   u_{n+1} = U + u_n (1 − U) exp(−Δt/τ_facil)

    where U is the train's per-stimulus release probability (``release_probability`` ×
    ``vesicle.probability``), so one value means one thing. ``tau_facilitation_ms = 0`` turns
    facilitation off (u_n = U); ``tau_recovery_ms = 0`` refills every site before the next
    stimulus. The fraction of filled sites R_n then follows

        R_1 = 1,   R_{n+1} = 1 − (1 − R_n (1 − u_n)) exp(−Δt/τ_rec),

    and the vesicles released at stimulus n are Binomial(n_sites, u_n R_n) marginally
    (:meth:`expected_release`); the run's draws are made in :mod:`mcsyn.placement`. In a
    configuration the ``[train]`` keys ``n_release_sites``, ``tau_recovery_ms`` and
    ``tau_facilitation_ms`` set it. No built-in values: see the presets' ``sources.train``.
    """

    n_sites: int
    tau_recovery_ms: float
    tau_facilitation_ms: float = 0.0

    def validate(self, label="plasticity"):
        if isinstance(self.n_sites, bool) or not isinstance(self.n_sites, (int, np.integer)) or self.n_sites < 1:
            raise ModelError(f"{label}.n_sites", self.n_sites, "must be an integer >= 1 (release sites)")
        require_nonnegative(f"{label}.tau_recovery_ms", self.tau_recovery_ms)
        require_nonnegative(f"{label}.tau_facilitation_ms", self.tau_facilitation_ms)

    def carry_over(self, interval_ms: float) -> tuple[float, float]:
        """(exp(−Δt/τ_rec), exp(−Δt/τ_facil)) over one inter-stimulus interval (0 for τ = 0)."""
        def kept(tau):
            return float(np.exp(-interval_ms / tau)) if tau > 0 else 0.0
        return kept(self.tau_recovery_ms), kept(self.tau_facilitation_ms)

    def expected_release(self, n_stimuli: int, interval_ms: float, u: float):
        """(u_n, R_n) per stimulus from the closed-form recursion above (numpy arrays); the mean
        number of vesicles released at stimulus n is ``n_sites * u_n * R_n``."""
        stay_empty, facil = self.carry_over(interval_ms)
        u_n, r_n = np.empty(n_stimuli), np.empty(n_stimuli)
        uu, rr = u, 1.0
        for k in range(n_stimuli):
            u_n[k], r_n[k] = uu, rr
            rr = 1.0 - (1.0 - rr * (1.0 - uu)) * stay_empty
            uu = u + uu * (1.0 - u) * facil
        return u_n, r_n


@dataclass
class StimulusTrain:
    """A train of stimuli; each releases ``vesicle`` with probability ``release_probability``.

    With ``plasticity`` (a :class:`ShortTermPlasticity`) the release depresses and facilitates
    along the train: ``n_sites`` vesicles are ready at the start, ``release_probability`` (times
    ``vesicle.probability``) is the scheme's U, and each stimulus releases 0..n_sites vesicles."""

    start_ms: float = 0.0
    n_stimuli: int = 10
    frequency_hz: float = 20.0
    release_probability: float = 0.3
    vesicle: Release = field(default_factory=Release)
    plasticity: ShortTermPlasticity | None = None

    @property
    def interval_ms(self) -> float:
        return 1000.0 / self.frequency_hz

    @property
    def stimulus_probability(self) -> float:
        """The chance that one stimulus releases the vesicle (the plasticity scheme's U)."""
        return self.release_probability * self.vesicle.probability

    def stimulus_times_ms(self) -> np.ndarray:
        return self.start_ms + np.arange(self.n_stimuli) * self.interval_ms

    def validate(self, geometry, species_names, duration_ms, label="train"):
        require_nonnegative(f"{label}.start_ms", self.start_ms)
        if not isinstance(self.n_stimuli, (int, np.integer)) or self.n_stimuli < 1:
            raise ModelError(f"{label}.n_stimuli", self.n_stimuli, "must be an integer >= 1")
        require_positive(f"{label}.frequency_hz", self.frequency_hz)
        if not (0 <= self.release_probability <= 1):
            raise ModelError(f"{label}.release_probability", self.release_probability, "must be in [0, 1]")
        last = self.start_ms + (self.n_stimuli - 1) * 1000.0 / self.frequency_hz
        if last > duration_ms:
            raise ModelError(f"{label}.n_stimuli", self.n_stimuli,
                             f"the last stimulus at {last} ms falls after the run ends ({duration_ms} ms)")
        self.vesicle.validate(geometry, species_names, duration_ms, f"{label}.vesicle")
        if self.plasticity is not None:
            if not isinstance(self.plasticity, ShortTermPlasticity):
                raise ModelError(f"{label}.plasticity", self.plasticity,
                                 "must be a mcsyn.model.ShortTermPlasticity or None (no depression or facilitation)")
            self.plasticity.validate(f"{label}.plasticity")

    def expected_vesicles(self) -> np.ndarray:
        """Mean vesicles released per stimulus (U per stimulus without plasticity)."""
        if self.plasticity is None:
            return np.full(self.n_stimuli, self.stimulus_probability)
        u_n, r_n = self.plasticity.expected_release(self.n_stimuli, self.interval_ms, self.stimulus_probability)
        return self.plasticity.n_sites * u_n * r_n

    def releases(self):
        """One Release per stimulus with the train's probability. With plasticity: per stimulus,
        one Release per site with the site's marginal probability u_n R_n, so that each stimulus's
        release has its exact distribution and mean (what the mean-field model needs); the
        correlations along the train exist only in the per-run draws (:mod:`mcsyn.placement`)."""
        if self.plasticity is None:
            per_site, copies = np.full(self.n_stimuli, self.stimulus_probability), 1
        else:
            u_n, r_n = self.plasticity.expected_release(self.n_stimuli, self.interval_ms, self.stimulus_probability)
            per_site, copies = u_n * r_n, self.plasticity.n_sites
        for t, p in zip(self.stimulus_times_ms(), per_site):
            for _ in range(copies):
                yield self.vesicle_at(float(t), float(p))

    def vesicle_at(self, time_ms: float, probability: float) -> Release:
        """The train's vesicle released at ``time_ms`` with ``probability``."""
        v = self.vesicle
        return Release(time_ms=time_ms, molecules=v.molecules, species=v.species, position_um=v.position_um,
                       into=v.into, pore_tau_ms=v.pore_tau_ms, quantal_cv=v.quantal_cv,
                       molecule_distribution=v.molecule_distribution, probability=probability,
                       random_position_radius_um=v.random_position_radius_um)


@dataclass
class Degradation:
    """First-order destruction of free ``species`` in a region (COMT-like sink), ``rate_per_s``."""

    rate_per_s: float
    region: str = "all"
    species: str | None = None

    def validate(self, geometry, species_names, label="degradation"):
        require_nonnegative(f"{label}.rate_per_s", self.rate_per_s)
        require_choice(f"{label}.region", self.region, geo.DEGRADATION_REGIONS)
        if self.region not in geo.degradation_regions(geometry):
            raise ModelError(f"{label}.region", self.region,
                             f"geometry.outside = {geometry.outside!r} has only the regions "
                             f"{', '.join(repr(r) for r in geo.degradation_regions(geometry))}")
        if self.species is not None and self.species not in species_names:
            raise ModelError(f"{label}.species", self.species, f"must be one of {sorted(species_names)}")


@dataclass
class Timing:
    """Time stepping.

    ``dt_fine_us`` is the step for molecules in the slab (cleft and band), where membranes and
    sites are within a step; ``dt_volume_us`` (a whole multiple of it) is the step in the homogenised
    volume. ``sample_interval_us`` sets the output time resolution (a multiple of ``dt_fine_us``).
    """

    duration_ms: float = 5.0
    dt_fine_us: float = 1.0
    dt_volume_us: float = 10.0
    sample_interval_us: float = 10.0

    def validate(self, uses_volume=True):
        require_positive("timing.duration_ms", self.duration_ms, high=MAX_DURATION_MS)
        for name in ("dt_fine_us", "dt_volume_us", "sample_interval_us"):
            require_positive(f"timing.{name}", getattr(self, name))
            if getattr(self, name) < MIN_STEP_US:
                raise ModelError(f"timing.{name}", getattr(self, name), f"must be >= {MIN_STEP_US:g} µs")
        k = self.dt_volume_us / self.dt_fine_us
        if uses_volume and (abs(k - round(k)) > 1e-9 or round(k) < 1):
            raise ModelError("timing.dt_volume_us", self.dt_volume_us,
                             f"must be a whole multiple of timing.dt_fine_us = {self.dt_fine_us}")
        m = self.sample_interval_us / self.dt_fine_us
        if abs(m - round(m)) > 1e-9 or round(m) < 1:
            raise ModelError("timing.sample_interval_us", self.sample_interval_us,
                             f"must be a whole multiple of timing.dt_fine_us = {self.dt_fine_us}")


def site_labels(sites) -> list:
    """The labels of a model's site groups, by one rule: a group's ``name`` if given; else its
    scheme's name, as presets name theirs (``AMPA``), unless another group of the model would carry
    that label too, then ``scheme@location`` (``AMPA@postsynaptic``, ``AMPA@band_postsynaptic``).
    Labels that still coincide are refused by :meth:`SynapseModel.validate`. Items that are not
    site groups get None (validation reports them)."""
    def plain(g):
        return g.name or g.scheme.name
    def labelled(g):
        return (isinstance(g, SiteGroup) and isinstance(g.scheme, KineticScheme) and isinstance(g.scheme.name, str)
                and (g.name is None or isinstance(g.name, str)))
    groups = [g if labelled(g) else None for g in sites]
    count = {}
    for g in groups:
        if g is not None:
            count[plain(g)] = count.get(plain(g), 0) + 1
    return [None if g is None else g.name or (g.scheme.name if count[g.scheme.name] == 1
                                               else f"{g.scheme.name}@{g.location}")
            for g in groups]


@dataclass
class SynapseModel:
    """Everything one run needs. Build it in Python or from a configuration (``mcsyn.config``)."""

    species: list = field(default_factory=lambda: [Species("glutamate", 0.33)])
    geometry: Geometry = field(default_factory=Geometry)
    sites: list = field(default_factory=list)
    releases: list = field(default_factory=lambda: [Release()])
    trains: list = field(default_factory=list)
    degradation: list = field(default_factory=list)
    timing: Timing = field(default_factory=Timing)
    tile_um: float = 0.01
    voxel_um: float = 0.25
    name: str = "synapse"
    clamp: VoltageClamp | None = None
    rate_schedules: list = field(default_factory=list)     # RateSchedule: first-order rates that change in the run
    feedback: ClosedLoopFeedback | None = None

    def __post_init__(self):
        self._name_shared_site_groups()

    def _name_shared_site_groups(self):
        # an unnamed site group whose scheme name another group shares is named scheme@location
        # (site_labels), at construction and again at validation (sites set or appended later); a
        # copy is named, so a group given to several models is never changed
        if isinstance(self.sites, list):
            for i, (g, label) in enumerate(zip(self.sites, site_labels(self.sites))):
                if label is not None and label != g.label:
                    self.sites[i] = dataclasses.replace(g, name=label)

    @property
    def config(self):
        """The resolved :class:`~mcsyn.config.SynapseConfig` the model was built from, or None: built
        in Python, or changed since it was built (its configuration would now build another model)."""
        cfg = self.__dict__.get("_config")
        if cfg is None or self.__dict__.get("_config_fingerprint") != self.fingerprint():
            return None
        return cfg

    @config.setter
    def config(self, value):
        self.__dict__["_config"] = value
        self.__dict__["_config_fingerprint"] = None if value is None else self.fingerprint()

    def fingerprint(self) -> str:
        """A digest of every field (exact: floats and arrays by their bytes), to tell whether two
        models, or one model before and after a change, are the same."""
        parts = [getattr(self, f.name) for f in dataclasses.fields(self)]
        return hashlib.sha256(pickle.dumps(parts, protocol=4)).hexdigest()

    # Hooks for models that draw their own releases per run and ask the kernel for more outputs
    # (mcsyn.tissue.TissueModel); a plain synapse has none of them.
    def detector_regions(self) -> list:
        """Regions whose free volume molecules the kernel counts at every sample (objects with
        ``name``, ``shape`` "sphere"/"cylinder", ``centre_um``, ``radius_um``, ``length_um``)."""
        return []

    def voxel_snapshot_every(self, sample_interval_us: float) -> int:
        """Samples between snapshots of the free volume molecules per voxel (0: none)."""
        return 0

    def draw_injections(self, cm, rng):
        """Extra injection groups of one run, drawn from its placement generator after every other
        draw, as columns (time µs, count, x, y, z, species, into-volume), or None."""
        return None

    def draws_injections(self) -> bool:
        """Whether :meth:`draw_injections` can release molecules (the model then needs no Release)."""
        return False

    @property
    def species_names(self):
        return [s.name for s in self.species]

    @property
    def volume_enters_cleft(self) -> bool:
        """Whether volume molecules enter the cleft (geometry.volume_enters_cleft, or by default
        whether the model releases into the cleft or has sites on its membranes)."""
        g = self.geometry
        if not geo.has_volume(g):
            return False
        if g.volume_enters_cleft is not None:
            return bool(g.volume_enters_cleft)
        return (any(r.into == "cleft" for r in self.releases)
                or any(t.vesicle.into == "cleft" for t in self.trains)
                or any(grp.location in ("postsynaptic", "presynaptic") for grp in self.sites))

    def _check_parts(self):
        """Every part is of its class (a dict or a number in place of a part is a clear error)."""
        for name, cls in (("geometry", Geometry), ("timing", Timing)):
            if not isinstance(getattr(self, name), cls):
                raise ModelError(name, getattr(self, name), f"must be a mcsyn.{cls.__name__}")
        for name, cls in (("species", Species), ("sites", SiteGroup), ("releases", Release),
                          ("trains", StimulusTrain), ("degradation", Degradation)):
            parts = getattr(self, name)
            if not isinstance(parts, (list, tuple)):
                raise ModelError(name, parts, f"must be a list of mcsyn.{cls.__name__}")
            for i, part in enumerate(parts):
                if not isinstance(part, cls):
                    raise ModelError(f"{name}[{i}]", part, f"must be a mcsyn.{cls.__name__}")
        if not isinstance(self.name, str):
            raise ModelError("name", self.name, "must be a string")

    def validate(self):
        self._check_parts()
        if not self.species:
            raise ModelError("species", self.species, "the model needs at least one transmitter species")
        for s in self.species:
            s.validate()
        names = self.species_names
        if len(set(names)) != len(names):
            raise ModelError("species", names, "species names must be unique")
        self.geometry.validate()
        self.timing.validate(uses_volume=geo.has_volume(self.geometry))
        geo.require_length("tile_um", self.tile_um)
        geo.require_length("voxel_um", self.voxel_um)
        if self.tile_um > self.geometry.psd_radius_um / 2:
            raise ModelError("tile_um", self.tile_um,
                             f"must be <= half the PSD radius ({self.geometry.psd_radius_um / 2} µm)")
        self._name_shared_site_groups()
        labels = [g.label for g in self.sites]
        if len(set(labels)) != len(labels):
            raise ModelError("sites", labels, "site groups need distinct labels: set SiteGroup.name (an unnamed "
                             "group is labelled by its scheme, or scheme@location where that is shared)")
        for g in self.sites:
            g.validate(self.geometry, names)
        if not self.releases and not self.trains and not self.draws_injections() and not any(
                t.kind == "efflux" for g in self.sites for t in g.scheme.transitions):
            raise ModelError("releases", self.releases, "the model releases no molecules (add a Release or a train)")
        for i, r in enumerate(self.releases):
            r.validate(self.geometry, names, self.timing.duration_ms, f"releases[{i}]")
        for i, tr in enumerate(self.trains):
            if isinstance(tr, StimulusTrain):       # a train of more fusions than a count may hold is refused first
                require_count(f"trains[{i}].n_stimuli", tr.n_stimuli, low=1, high=MAX_STIMULI)
            tr.validate(self.geometry, names, self.timing.duration_ms, f"trains[{i}]")
        for i, d in enumerate(self.degradation):
            d.validate(self.geometry, names, f"degradation[{i}]")
        if self.clamp is not None:
            if not isinstance(self.clamp, VoltageClamp):
                raise ModelError("clamp", self.clamp, "must be a mcsyn.VoltageClamp or None (no recording)")
            channels(self, self.clamp)   # every recorded receptor has a conductance and a reversal
        _validate_rate_schedules(self)
        if self.feedback is not None:
            if not isinstance(self.feedback, ClosedLoopFeedback):
                raise ModelError("feedback", self.feedback, "must be a mcsyn.model.ClosedLoopFeedback or None")
            self.feedback.validate(self)
        return self
