"""A release-site field: many varicosities releasing into one periodic box of tissue.

A :class:`TissueField` places ``round(density × L³)`` varicosities uniformly in a periodic box of
side L (``Geometry(outside="periodic")``), gives each to one of ``n_neurons`` neurons, and lets
every neuron fire (:class:`Firing`: Poisson tonic firing, or Poisson bursts of spikes); at each
spike of its neuron a varicosity releases one quantum with ``release_probability``. A
:class:`Stimulation` adds pulses that recruit every varicosity within a radius of a point.
Transporters, receptors and first-order removal are the volume sites and degradation of the
:class:`TissueModel` itself (homogeneous in the box).

:class:`TissueModel` is a :class:`~mcsyn.SynapseModel` (so ``compile_model``, ``run_one`` and the
ensemble backends take it as they are) whose releases are drawn per run, from the run's own
placement generator: varicosity positions (fixed across runs when ``layout_seed`` is set),
neuron membership, spike times and which varicosities release. Each release is one volume
injection of a quantum at its varicosity.

Observables (the kernel counts them; :mod:`mcsyn.tissue.observe` turns them into concentrations):

* ``<detector>:molecules``: free molecules inside each :class:`Detector` region (a sphere, or a
  cylinder with its axis along z), at every sample; ``<detector>:concentration_nM`` is that count
  over the region's extracellular volume (α × region volume);
* voxel snapshots: free molecules per voxel every ``snapshot_interval_ms`` (``run_field``), for
  the distribution of the concentration over space and time, and at the same times the sites of
  each volume group holding transmitter per voxel, for the distribution of receptor occupancy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field as dc_field

import numpy as np

from .. import geometry
from ..errors import ModelError, require_choice, require_count, require_fraction, require_positive
from ..model import SynapseModel

AVOGADRO_PER_MOL = 6.02214076e23
UM3_PER_L = 1e15
MAX_VARICOSITIES = 2_000_000       # the release schedule of a run is drawn in Python from these
MAX_SNAPSHOT_BYTES = 512 * 2 ** 20  # voxel snapshots of one run
DETECTOR_SHAPES = ("sphere", "cylinder")
FIRING_PATTERNS = ("tonic", "burst")


@dataclass
class Detector:
    """A region whose free molecules are counted at every sample: a sphere (centre, radius) or
    a cylinder (centre, radius, length) with its axis along z. Positions in the box's frame
    (|x|, |y|, |z| < L/2); the region must be smaller than the box so that it does not meet
    its own periodic image."""

    name: str
    shape: str = "sphere"
    centre_um: tuple = (0.0, 0.0, 0.0)
    radius_um: float = 1.0
    length_um: float = 0.0

    def volume_um3(self) -> float:
        """Tissue volume of the region (its extracellular share is α times this)."""
        if self.shape == "sphere":
            return 4.0 / 3.0 * math.pi * self.radius_um ** 3
        return math.pi * self.radius_um ** 2 * self.length_um

    def validate(self, box_side_um: float, path: str):
        if not isinstance(self.name, str) or not self.name or ":" in self.name:
            raise ModelError(f"{path}.name", self.name, "must be a non-empty name without ':'")
        require_choice(f"{path}.shape", self.shape, DETECTOR_SHAPES)
        centre = np.asarray(self.centre_um, dtype=float)
        half = 0.5 * box_side_um
        if centre.shape != (3,) or not np.all(np.isfinite(centre)) or np.any(np.abs(centre) >= half):
            raise ModelError(f"{path}.centre_um", self.centre_um,
                             f"must be (x, y, z) inside the box, |x|, |y|, |z| < {half:g} µm (field.box_side_um / 2)")
        require_positive(f"{path}.radius_um", self.radius_um)
        if self.radius_um > half:
            raise ModelError(f"{path}.radius_um", self.radius_um,
                             f"must be <= {half:g} µm (half the box side): a larger region meets its periodic image")
        if self.shape == "cylinder":
            require_positive(f"{path}.length_um", self.length_um)
            if self.length_um > box_side_um:
                raise ModelError(f"{path}.length_um", self.length_um,
                                 f"must be <= the box side {box_side_um:g} µm")


@dataclass
class Firing:
    """How each neuron fires: ``"tonic"`` (a Poisson train at ``rate_hz``) or ``"burst"``
    (bursts starting as a Poisson train at ``burst_rate_hz``, each ``spikes_per_burst`` spikes
    ``1 / intraburst_hz`` apart). Neurons fire independently."""

    pattern: str = "tonic"
    rate_hz: float = 4.0
    burst_rate_hz: float = 1.0
    spikes_per_burst: int = 4
    intraburst_hz: float = 20.0

    def validate(self, path: str):
        require_choice(f"{path}.pattern", self.pattern, FIRING_PATTERNS)
        if self.pattern == "tonic":
            require_positive(f"{path}.rate_hz", self.rate_hz, high=1000.0)
        else:
            require_positive(f"{path}.burst_rate_hz", self.burst_rate_hz, high=100.0)
            require_count(f"{path}.spikes_per_burst", self.spikes_per_burst, low=1, high=100)
            require_positive(f"{path}.intraburst_hz", self.intraburst_hz, high=1000.0)

    def spike_times_ms(self, duration_ms: float, rng) -> np.ndarray:
        """One neuron's spike times in [0, duration_ms)."""
        if self.pattern == "tonic":
            n = rng.poisson(self.rate_hz * duration_ms * 1e-3)
            return np.sort(rng.uniform(0.0, duration_ms, n))
        n = rng.poisson(self.burst_rate_hz * duration_ms * 1e-3)
        onsets = np.sort(rng.uniform(0.0, duration_ms, n))
        spikes = (onsets[:, None] + np.arange(self.spikes_per_burst)[None, :] * (1e3 / self.intraburst_hz)).ravel()
        return np.sort(spikes[spikes < duration_ms])


@dataclass
class Stimulation:
    """Electrical stimulation: at each of ``times_ms`` every varicosity within ``radius_um`` of
    ``centre_um`` (nearest periodic image) releases a quantum with ``release_probability``."""

    times_ms: tuple = (0.0,)
    centre_um: tuple = (0.0, 0.0, 0.0)
    radius_um: float = 5.0
    release_probability: float = 0.06

    def validate(self, box_side_um: float, duration_ms: float, path: str):
        half = 0.5 * box_side_um
        require_positive(f"{path}.radius_um", self.radius_um)
        if self.radius_um > half:
            raise ModelError(f"{path}.radius_um", self.radius_um,
                             f"must be <= {half:g} µm (half of field.box_side_um = {box_side_um:g}): a larger "
                             f"stimulated ball would recruit varicosities through its own periodic image")
        centre = np.asarray(self.centre_um, dtype=float)
        if centre.shape != (3,) or not np.all(np.isfinite(centre)) or np.any(np.abs(centre) >= half):
            raise ModelError(f"{path}.centre_um", self.centre_um, f"must be (x, y, z) with |x|, |y|, |z| < {half:g} µm")
        times = np.asarray(self.times_ms, dtype=float)
        if times.ndim != 1 or not len(times) or np.any(~np.isfinite(times)) or np.any(times < 0) \
                or np.any(times > duration_ms):
            raise ModelError(f"{path}.times_ms", self.times_ms, f"must be times in [0, {duration_ms:g}] ms")
        require_fraction(f"{path}.release_probability", self.release_probability)


@dataclass
class TissueField:
    """The release sites of a tissue box (see the module docstring). ``species`` names the
    released transmitter (None: the model's first species)."""

    box_side_um: float = 30.0
    varicosity_density_per_um3: float = 0.104
    varicosity_radius_um: float = 0.2
    n_neurons: int = 100
    firing: Firing = dc_field(default_factory=Firing)
    release_probability: float = 0.06
    quantum_molecules: float = 3000.0
    quantum_distribution: str = "fixed"
    species: str | None = None
    detectors: list = dc_field(default_factory=list)
    stimulation: Stimulation | None = None
    snapshot_interval_ms: float | None = None
    layout_seed: int | None = None

    def n_varicosities(self) -> int:
        return int(round(self.varicosity_density_per_um3 * self.box_side_um ** 3))

    def validate(self, model: SynapseModel):
        """Raise ModelError (paths ``field.…``) for anything a run could not do."""
        g = model.geometry
        if not geometry.periodic(g):
            raise ModelError("geometry.outside", g.outside, "a tissue field needs geometry.outside = 'periodic'")
        if g.box_side_um != self.box_side_um:
            raise ModelError("field.box_side_um", self.box_side_um,
                             f"must equal geometry.box_side_um = {g.box_side_um} (build it with mcsyn.tissue.tissue_model)")
        require_positive("field.varicosity_density_per_um3", self.varicosity_density_per_um3)
        require_positive("field.varicosity_radius_um", self.varicosity_radius_um)
        self._validate_room(g)
        require_count("field.n_neurons", self.n_neurons, low=1, high=max(self.n_varicosities(), 1))
        if not isinstance(self.firing, Firing):
            raise ModelError("field.firing", self.firing, "must be a mcsyn.tissue.Firing")
        self.firing.validate("field.firing")
        require_fraction("field.release_probability", self.release_probability)
        require_positive("field.quantum_molecules", self.quantum_molecules, high=1e7)
        require_choice("field.quantum_distribution", self.quantum_distribution, ("fixed", "poisson"))
        if self.species is not None and self.species not in model.species_names:
            raise ModelError("field.species", self.species, f"must be one of the model's species {model.species_names}")
        names = [d.name for d in self.detectors]
        if len(set(names)) != len(names):
            raise ModelError("field.detectors", names, "detector names must be distinct")
        for d in self.detectors:
            if not isinstance(d, Detector):
                raise ModelError("field.detectors", d, "must be mcsyn.tissue.Detector regions")
            d.validate(self.box_side_um, f"field.detectors[{d.name!r}]")
        if self.stimulation is not None:
            self.stimulation.validate(self.box_side_um, model.timing.duration_ms, "field.stimulation")
        self._validate_snapshots(model)

    def _validate_room(self, g):
        n = self.n_varicosities()
        if n < 1:
            raise ModelError("field.varicosity_density_per_um3", self.varicosity_density_per_um3,
                             f"places no varicosity in a {self.box_side_um:g} µm box; raise the density or the box")
        # the varicosities are cellular space: together they must fit in the box's non-extracellular share
        room = (1.0 - g.volume_fraction) * self.box_side_um ** 3
        taken = n * 4.0 / 3.0 * math.pi * self.varicosity_radius_um ** 3
        if taken > room or n > MAX_VARICOSITIES:
            raise ModelError("field.varicosity_density_per_um3", self.varicosity_density_per_um3,
                             f"gives {n} varicosities of radius {self.varicosity_radius_um} µm ({taken:.3g} µm³), more "
                             f"than fit in the box's cellular volume (1 - α) L³ = {room:.3g} µm³ (and at most "
                             f"{MAX_VARICOSITIES}); lower the density or the varicosity radius")

    def _validate_snapshots(self, model):
        if self.snapshot_interval_ms is None:
            return
        require_positive("field.snapshot_interval_ms", self.snapshot_interval_ms)
        sample_ms = model.timing.sample_interval_us * 1e-3
        k = self.snapshot_interval_ms / sample_ms
        if abs(k - round(k)) > 1e-9 or round(k) < 1:
            raise ModelError("field.snapshot_interval_ms", self.snapshot_interval_ms,
                             f"must be a whole multiple of timing.sample_interval_us = {model.timing.sample_interval_us} µs")
        n_snap = int(model.timing.duration_ms / self.snapshot_interval_ms) + 1
        n_vox = geometry.voxels_per_side(model.geometry, model.voxel_um)
        # one int32 grid of free molecules and one of occupied sites per volume site group
        grids = 1 + sum(grp.location == "volume" for grp in model.sites)
        size = n_snap * n_vox ** 3 * 4 * grids
        if size > MAX_SNAPSHOT_BYTES:
            raise ModelError("field.snapshot_interval_ms", self.snapshot_interval_ms,
                             f"gives {n_snap} snapshots of {grids} grids of {n_vox ** 3} voxels "
                             f"({size / 2 ** 20:.0f} MiB, limit "
                             f"{MAX_SNAPSHOT_BYTES / 2 ** 20:.0f} MiB); take them less often or use a larger voxel_um")

    # ---- per-run draws
    def layout(self, rng) -> tuple:
        """(positions (n, 3) µm, neuron of each varicosity): uniform in the box, neurons uniform."""
        n, half = self.n_varicosities(), 0.5 * self.box_side_um
        xyz = rng.uniform(-half, half, size=(n, 3))
        return xyz, rng.integers(0, self.n_neurons, size=n)

    def release_events(self, duration_ms: float, rng, layout=None) -> tuple:
        """(times ms, varicosity index) of every release of one run, in time order."""
        xyz, neuron = layout if layout is not None else self.layout(rng)
        times, which = [], []
        members = np.argsort(neuron, kind="stable")
        bounds = np.searchsorted(neuron[members], np.arange(self.n_neurons + 1))
        for j in range(self.n_neurons):
            own = members[bounds[j]:bounds[j + 1]]
            spikes = self.firing.spike_times_ms(duration_ms, rng)
            if not len(own) or not len(spikes):
                continue
            hit = rng.random((len(own), len(spikes))) < self.release_probability
            v, s = np.nonzero(hit)
            times.append(spikes[s])
            which.append(own[v])
        if self.stimulation is not None:
            st = self.stimulation
            d = xyz - np.asarray(st.centre_um, dtype=float)
            d -= self.box_side_um * np.round(d / self.box_side_um)
            near = np.flatnonzero((d ** 2).sum(axis=1) < st.radius_um ** 2)
            for t in st.times_ms:
                fired = near[rng.random(len(near)) < st.release_probability]
                times.append(np.full(len(fired), float(t)))
                which.append(fired)
        if not times:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        t, w = np.concatenate(times), np.concatenate(which)
        order = np.argsort(t, kind="stable")
        return t[order], w[order]


@dataclass
class TissueModel(SynapseModel):
    """A :class:`~mcsyn.SynapseModel` in a periodic box whose releases come from ``field``."""

    field: TissueField = dc_field(default_factory=TissueField)

    def validate(self):
        if not isinstance(self.field, TissueField):
            raise ModelError("field", self.field, "must be a mcsyn.tissue.TissueField")
        super().validate()
        self.field.validate(self)
        return self

    def draws_injections(self) -> bool:
        return True

    def detector_regions(self) -> list:
        return list(self.field.detectors)

    def voxel_snapshot_every(self, sample_interval_us: float) -> int:
        f = self.field
        return 0 if f.snapshot_interval_ms is None else int(round(f.snapshot_interval_ms * 1e3 / sample_interval_us))

    def draw_injections(self, cm, rng):
        f = self.field
        layout = f.layout(np.random.default_rng(f.layout_seed)) if f.layout_seed is not None else f.layout(rng)
        xyz = _off_the_centre(layout[0], self.geometry.varicosity_radius_um)
        t_ms, which = f.release_events(self.timing.duration_ms, rng, (xyz, layout[1]))
        n = len(t_ms)
        if f.quantum_distribution == "poisson":
            counts = rng.poisson(f.quantum_molecules, size=n)
        else:
            counts = np.full(n, int(round(f.quantum_molecules)))
        sp = cm.species_index[f.species] if f.species else 0
        p = xyz[which]
        return [t_ms * 1000.0, counts, p[:, 0], p[:, 1], p[:, 2], np.full(n, sp), np.ones(n)]

    def detector(self, name: str) -> Detector:
        for d in self.field.detectors:
            if d.name == name:
                return d
        raise KeyError(f"no detector {name!r}; detectors: {[d.name for d in self.field.detectors]}")

    def nM_per_molecule(self, volume_um3: float) -> float:
        """Concentration (nM) of one molecule in the extracellular share of ``volume_um3`` of tissue."""
        return 1e9 * UM3_PER_L / (AVOGADRO_PER_MOL * self.geometry.volume_fraction * volume_um3)


def _off_the_centre(xyz, r_centre):
    # the box's centre holds the kernel's (tiny) reflecting sphere; a site inside it moves just out
    r = np.linalg.norm(xyz, axis=1)
    inside = r < r_centre * 1.01
    if inside.any():
        xyz = xyz.copy()
        xyz[inside] = [r_centre * 1.01, 0.0, 0.0]
    return xyz
