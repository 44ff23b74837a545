"""Turn a validated :class:`~mcsyn.model.SynapseModel` into the kernel's plain arrays.

Two steps: :func:`compile_model` does everything that is the same for every run (unit conversion,
per-hit probabilities, state tables, the checks that depend on the time step), and
:meth:`CompiledModel.draw_run` draws what is random per run (site positions, initial states,
release times and sizes) from the run's own ``SeedSequence``.

Membrane binding: a molecule whose step crosses a membrane hits the tile under the crossing point;
if a site occupies that tile it binds with probability (MCell, Kerr et al. 2008, one-sided surface)

    p = k_on / (N_A · A_tile) · sqrt(π Δt / D).

Derivation: next to a flat wall at uniform concentration C, the number of straight Gaussian steps
(per-axis sd σ = sqrt(2DΔt)) crossing unit area per step is C·E[max(−Δz, 0)] = C·sqrt(DΔt/π).
The wanted number of reactions per unit area per step is k_on C ρ Δt (ρ sites per area), and a
fraction ρ A_tile of crossings land on a site's tile, so p = k_on Δt / (A_tile sqrt(DΔt/π)).
In the slab every crossing of an image plane z = k h of the unfolded step is a hit, which keeps the
hit rate exact for steps longer than the cleft is high. The result holds as long as p <= 1.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from . import _engine, autoreceptor, electrophysiology, exchange, geometry, placement, rate_schedule
from .errors import ModelError
from .model import SynapseModel
from .placement import KernelRun, float64_array as _f64, int32_array as _i32  # noqa: F401  (KernelRun re-exported)

AVOGADRO_PER_MOL = 6.02214076e23
UM3_PER_L = 1e15

OUTSIDE_CODES = {"closed": _engine.OUTSIDE_CLOSED, "open": _engine.OUTSIDE_OPEN, "band": _engine.OUTSIDE_BAND,
                 "volume": _engine.OUTSIDE_VOLUME}
PROBE_CODES = {"sphere": _engine.PROBE_SPHERE, "cylinder": _engine.PROBE_CYLINDER}
EXIT_CODES = {"first_order": _engine.EXIT_PLAIN, "unbind": _engine.EXIT_UNBIND, "uptake": _engine.EXIT_UPTAKE,
              "degrade": _engine.EXIT_DEGRADE, "efflux": _engine.EXIT_EFFLUX}
PLANE_POST, PLANE_PRE, PLANE_VOLUME = _engine.PLANE_POST, _engine.PLANE_PRE, _engine.PLANE_VOLUME
PLANE_CODES = {"post": PLANE_POST, "pre": PLANE_PRE, "volume": PLANE_VOLUME}
LOCATION_PLANE = {loc: PLANE_CODES[plane] for loc, plane in geometry.LOCATION_PLANE_NAME.items()}

MAX_TILES_PER_SIDE = 4096
MAX_VOXELS = 4_000_000
MAX_SAMPLES = 10_000_000        # output samples of one run (each a row of int64 counts)
MAX_SITES = 50_000_000          # membrane sites of one run, all groups (each holds a record; ids are int32)
MAX_VOLUME_SITES = 2_000_000_000   # volume sites of one run: counts per voxel until bound (int32 rows, int64 totals)
MAX_BINDING_CODES = 255         # distinct per-hit binding probabilities of the first species (a byte per tile)


def kon_um3_per_s(kon_per_M_per_s: float) -> float:
    """Convert a second-order rate constant from M⁻¹ s⁻¹ to µm³ molecule⁻¹ s⁻¹."""
    return kon_per_M_per_s * UM3_PER_L / AVOGADRO_PER_MOL


def per_hit_probability(kon_per_M_per_s: float, tile_um: float, dt_us: float, diffusion_um2_per_ms: float) -> float:
    """Binding probability per hit on an occupied tile (see module docstring)."""
    dt_s = dt_us * 1e-6
    d_um2_per_s = diffusion_um2_per_ms * 1e3
    return kon_um3_per_s(kon_per_M_per_s) / tile_um ** 2 * math.sqrt(math.pi * dt_s / d_um2_per_s)


def molar(count, volume_um3):
    """Concentration in M of ``count`` molecules in ``volume_um3``."""
    return np.asarray(count) / (AVOGADRO_PER_MOL * volume_um3 / UM3_PER_L)


ENTRY_DEPTH_QUANTILES = _engine.ENTRY_DEPTH_QUANTILES  # table length of the inverse CDF of a molecule's depth when it enters the slab


def rim_exit_profile(sigma_over_radius: float) -> tuple:
    """:func:`mcsyn.exchange.rim_exit_profile` with the kernel's table length."""
    return exchange.rim_exit_profile(sigma_over_radius, ENTRY_DEPTH_QUANTILES)


@dataclass
class KernelModel:
    """Run-independent kernel input (µm, µs). Field names are the kernel's contract.

    Glossary: public name (model) → field here → field of the kernel's ``Sim`` (``_engine.pyx``).

    * ``Geometry.cleft_height_um`` → ``h_um`` → ``s.h``
    * ``Geometry.cleft_radius_um`` → ``r_cleft_um`` → ``s.r_cleft``
    * ``geometry.rim_radius_um(g)`` (``band_outer_radius_um`` with a band, else
      ``cleft_radius_um``) → ``r_outer_um`` → ``s.r_outer``; the kernel re-derives ``s.rim`` from
      the kind, which always equals ``s.r_outer``
    * ``Geometry.varicosity_radius_um`` / ``domain_radius_um`` → ``r_inner_um`` / ``r_domain_um``
      (0 without a volume) → ``s.r_inner`` / ``s.r_domain``
    * ``Geometry.outside`` → ``outside`` (``OUTSIDE_CODES``) → ``s.outside``
    * ``Geometry.band_outer_boundary`` → ``outer_absorbing`` → ``s.outer_absorbing``
    * ``Geometry.domain_boundary`` → ``domain_reflects`` → ``s.domain_reflects``
    * ``Geometry.outside == "periodic"`` → ``domain_periodic`` → ``s.domain_periodic`` (and
      ``r_domain_um`` is then half of ``Geometry.box_side_um``)
    * ``SynapseModel.detector_regions()`` → ``probe_*`` → ``s.probe_*`` (counts at every sample)
    * ``SynapseModel.voxel_snapshot_every(...)`` → ``snapshot_every`` → ``s.snapshot_every``
    * ``exchange.mouth_shell(...)`` → ``r_mouth_um``, ``mouth_cos``, ``enter_probability``,
      ``entry_depth_um`` → ``s.r_mouth``, ``s.mouth_cos``, ...
    * ``Timing.dt_fine_us`` → ``dt_fine_us`` → ``s.dt_fine``; ``s.dt_coarse`` is
      ``dt_fine × steps_per_coarse``
    * ``SynapseModel.tile_um`` / ``voxel_um`` → ``tile_um`` / ``voxel_um`` → ``s.tile`` / ``s.voxel``
    """

    h_um: float
    r_cleft_um: float
    r_outer_um: float
    r_inner_um: float
    r_domain_um: float
    outside: int
    outer_absorbing: int
    domain_reflects: int
    r_mouth_um: float
    mouth_cos: float
    enter_probability: np.ndarray
    entry_depth_um: np.ndarray
    dt_fine_us: float
    steps_per_coarse: int
    n_coarse: int
    sample_every: int
    n_samples: int
    tile_um: float
    n_tile: int
    voxel_um: float
    n_vox: int
    n_species: int
    n_states: int
    n_types: int
    sigma_fine_um: np.ndarray
    sigma_volume_um: np.ndarray
    hazard_cleft: np.ndarray
    hazard_band: np.ndarray
    hazard_volume: np.ndarray
    state_type: np.ndarray
    state_ligands: np.ndarray
    bind_start: np.ndarray
    bind_to: np.ndarray
    bind_species: np.ndarray
    bind_value: np.ndarray
    exit_start: np.ndarray
    exit_to: np.ndarray
    exit_kind: np.ndarray
    exit_species: np.ndarray
    exit_rate_per_us: np.ndarray
    type_volume_index: np.ndarray
    type_ground: np.ndarray
    voxel_weight: np.ndarray
    # time-stamped rate changes (SynapseModel.rate_schedules): none by default
    rate_change_time_us: np.ndarray = dataclasses.field(default_factory=lambda: _f64([]))
    rate_change_exit: np.ndarray = dataclasses.field(default_factory=lambda: _i32([]))
    rate_change_per_us: np.ndarray = dataclasses.field(default_factory=lambda: _f64([]))
    # closed-loop feedback (``SynapseModel.feedback``, ``ext/feedback.pxi``); none: off
    feedback_stimulus_time_us: np.ndarray | None = None     # every train's stimuli, merged by time
    feedback_read_time_us: np.ndarray | None = None         # the same minus the delay
    feedback_stimulus_train: np.ndarray | None = None
    feedback_train_sites: np.ndarray | None = None          # per train: release sites
    feedback_train_u: np.ndarray | None = None              # per train: U
    feedback_train_stay_empty: np.ndarray | None = None     # per train: exp(-interval/tau_recovery)
    feedback_train_facilitation: np.ndarray | None = None   # per train: exp(-interval/tau_facilitation)
    feedback_states: np.ndarray | None = None               # global indices of the group's active states
    feedback_weights: np.ndarray | None = None              # their activation weights
    feedback_gain: float = 0.0
    feedback_decay: float = 0.0                             # exp(-dt_fine/tau) per fine step
    feedback_inv_sites: float = 0.0
    domain_periodic: int = 0
    probe_shape: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    probe_centre_um: np.ndarray = field(default_factory=lambda: np.zeros(0))
    probe_radius_um: np.ndarray = field(default_factory=lambda: np.zeros(0))
    probe_half_length_um: np.ndarray = field(default_factory=lambda: np.zeros(0))
    snapshot_every: int = 0


class CompiledModel:
    """A validated model with its kernel arrays and the tables that name kernel outputs."""

    def __init__(self, model: SynapseModel):
        model.validate()
        self.model = model
        g, t = model.geometry, model.timing
        self.species_index = {s.name: i for i, s in enumerate(model.species)}
        steps = _step_counts(t, g)
        sigma_fine, sigma_volume = _species_steps(model, steps.dt_coarse_us)
        r_mouth, mouth_cos, enter_probability, entry_depth = exchange.mouth_shell(
            model, sigma_fine, steps.per_coarse, ENTRY_DEPTH_QUANTILES)
        hazard = _degradation_hazards(model, self.species_index, t.dt_fine_us, steps.dt_coarse_us)
        rows = _scheme_rows(model, self.species_index)
        n_tile, self.grid_half_um = _tile_grid(model)
        snapshot_every = model.voxel_snapshot_every(t.sample_interval_us)
        voxels = _voxel_grid(model, rows.n_volume_types or snapshot_every)
        voxel_litres = model.voxel_um ** 3 / UM3_PER_L if rows.n_volume_types else 1.0
        tables = _transition_tables(rows, steps.dt_coarse_us, g.volume_fraction, voxel_litres)
        self.group_states = rows.group_states       # per group: (first global index, scheme states)
        self.group_plane = [LOCATION_PLANE[grp.location] for grp in model.sites]
        self.state_labels = rows.state_labels
        self.state_open = np.array(rows.open_flags, dtype=bool)
        self.state_ligands = np.array(rows.state_ligands, dtype=np.int64)
        self.dt_coarse_us = steps.dt_coarse_us
        self.voxel_support, self.voxel_probability = voxels.support, voxels.probability
        self.voxel_class, self.class_probability = placement.probability_classes(voxels.probability)
        r_inner, r_domain = geometry.volume_radii_um(g)
        self.kernel = KernelModel(
            h_um=g.cleft_height_um, r_cleft_um=g.cleft_radius_um, r_outer_um=geometry.rim_radius_um(g),
            r_inner_um=r_inner, r_domain_um=r_domain,
            # a periodic box is the kernel's volume with domain_periodic set
            outside=OUTSIDE_CODES["volume" if geometry.periodic(g) else g.outside], outer_absorbing=int(g.band_outer_boundary == "absorbing"),
            domain_reflects=int(geometry.domain_reflects(g)), domain_periodic=int(geometry.periodic(g)),
            r_mouth_um=r_mouth, mouth_cos=mouth_cos, enter_probability=_f64(enter_probability),
            entry_depth_um=_f64(entry_depth).ravel(),
            dt_fine_us=t.dt_fine_us, steps_per_coarse=steps.per_coarse, n_coarse=steps.n_coarse,
            sample_every=steps.sample_every, n_samples=steps.n_fine // steps.sample_every + 1,
            tile_um=model.tile_um, n_tile=n_tile, voxel_um=model.voxel_um, n_vox=voxels.n_vox,
            n_species=len(model.species), n_states=len(rows.state_type), n_types=len(model.sites),
            sigma_fine_um=_f64(sigma_fine), sigma_volume_um=_f64(sigma_volume),
            hazard_cleft=_f64(hazard["cleft"]), hazard_band=_f64(hazard["band"]),
            hazard_volume=_f64(hazard["volume"]), state_type=_i32(rows.state_type),
            state_ligands=_i32(rows.state_ligands), **tables,
            type_volume_index=_i32(rows.type_volume_index), type_ground=_i32(rows.type_ground),
            voxel_weight=_f64(voxels.weight), **self._feedback_tables(),
            **rate_schedule.kernel_rate_changes(model, rows.group_states, tables, _engine.EXIT_PLAIN),
            snapshot_every=snapshot_every, **_probe_arrays(model),
        )
        # a detector's count over its extracellular volume (α × region volume), in nM
        self.detector_names = [d.name for d in model.detector_regions()]
        self.detector_nM_per_molecule = [1e9 * float(molar(1, g.volume_fraction * d.volume_um3()))
                                         for d in model.detector_regions()]
        self.sample_times_ms = np.arange(self.kernel.n_samples) * t.sample_interval_us * 1e-3
        self._tile_candidates = {}
        self._check_site_room()
        self.channels = electrophysiology.channels(self, model.clamp) if model.clamp is not None else []

    def _feedback_tables(self) -> dict:
        """The kernel's closed-loop feedback tables, and ``feedback_stimuli``: per kernel stimulus,
        (train index, stimulus index in the train), or None without feedback (gain 0 included:
        that model draws exactly as one without feedback)."""
        fb, model = self.model.feedback, self.model
        self.feedback_stimuli = None
        if fb is None or fb.gain == 0:
            return {}
        gi = [g.label for g in model.sites].index(fb.group)
        grp, (first, states) = model.sites[gi], self.group_states[gi]
        n_sites = self.site_count(grp)
        if n_sites == 0:
            raise ModelError("feedback.group", fb.group, "the autoreceptor group places no sites")
        weights = autoreceptor.activation_weights(grp.scheme)
        stim = [(float(t), i, k) for i, tr in enumerate(model.trains) for k, t in enumerate(tr.stimulus_times_ms())]
        stim.sort(key=lambda row: row[0])     # stable: simultaneous stimuli keep the trains' order
        self.feedback_stimuli = [(i, k) for _, i, k in stim]
        times_us = np.array([t * 1000.0 for t, _, _ in stim])
        carry = [tr.plasticity.carry_over(tr.interval_ms) if tr.plasticity else (0.0, 0.0) for tr in model.trains]
        dt_us = model.timing.dt_fine_us
        return dict(
            feedback_stimulus_time_us=_f64(times_us),
            feedback_read_time_us=_f64(np.maximum(times_us - fb.delay_ms * 1000.0, 0.0)),
            feedback_stimulus_train=_i32([i for _, i, _ in stim]),
            feedback_train_sites=_i32([tr.plasticity.n_sites if tr.plasticity else 1 for tr in model.trains]),
            feedback_train_u=_f64([tr.stimulus_probability for tr in model.trains]),
            feedback_train_stay_empty=_f64([c[0] for c in carry]),
            feedback_train_facilitation=_f64([c[1] for c in carry]),
            feedback_states=_i32([first + states.index(name) for name in weights]),
            feedback_weights=_f64(list(weights.values())),
            feedback_gain=float(fb.gain),
            feedback_decay=math.exp(-dt_us / (fb.tau_ms * 1000.0)) if fb.tau_ms > 0 else 0.0,
            feedback_inv_sites=1.0 / n_sites)

    def _check_site_room(self):
        # before any run: every membrane region must have a tile for each of its sites
        counts = [self.site_count(grp) for grp in self.model.sites]
        for in_volume, limit, where in ((False, MAX_SITES, "membrane"), (True, MAX_VOLUME_SITES, "volume")):
            group_counts = [(c, grp) for c, grp in zip(counts, self.model.sites) if (grp.location == "volume") == in_volume]
            if sum(c for c, _ in group_counts) > limit:
                c, grp = max(group_counts, key=lambda cg: cg[0])
                raise ModelError(f"sites[{grp.label!r}]", c, f"the model places {sum(n for n, _ in group_counts)} "
                                 f"{where} sites (limit {limit:g} per run); lower the density or count")
        demand = {}
        for grp in self.model.sites:
            if grp.location == "volume" or grp.arrangement == "coordinates":
                continue
            region = grp.location
            demand[region] = demand.get(region, 0) + self.site_count(grp)
            room = len(self.candidate_tiles(region))
            if demand[region] > room:
                raise ModelError(f"sites[{grp.label!r}]", self.site_count(grp),
                                 f"{demand[region]} sites in the {region} region do not fit on its {room} "
                                 f"tiles of {self.model.tile_um} µm; lower the density or tile_um")

    def candidate_tiles(self, location):
        """Flat indices of the tiles of a membrane location's region (cached)."""
        if location not in self._tile_candidates:
            self._tile_candidates[location] = geometry.candidate_tiles(
                self.model.geometry, location, self.kernel.n_tile, self.model.tile_um, self.grid_half_um)
        return self._tile_candidates[location]

    def site_count(self, grp) -> int:
        """Number of sites a group places (fixed across runs)."""
        return geometry.site_count(self.model.geometry, grp)

    def draw_run(self, seed_sequence: np.random.SeedSequence) -> KernelRun:
        """The per-run kernel input (:func:`mcsyn.placement.draw_run`)."""
        return placement.draw_run(self, seed_sequence)


# ======================================================================================================
# The steps of CompiledModel.__init__

@dataclass
class _StepCounts:
    per_coarse: int         # fine steps per coarse (volume) step
    dt_coarse_us: float
    n_coarse: int
    sample_every: int       # fine steps per output sample
    n_fine: int


def _step_counts(t, g) -> _StepCounts:
    has_volume = geometry.has_volume(g)
    k = int(round(t.dt_volume_us / t.dt_fine_us)) if has_volume else 1
    dt_coarse = t.dt_fine_us * k
    n_coarse = t.duration_ms * 1000.0 / dt_coarse
    if abs(n_coarse - round(n_coarse)) > 1e-6 * max(1.0, n_coarse):
        what = "timing.dt_volume_us" if has_volume else "timing.dt_fine_us"
        raise ModelError("timing.duration_ms", t.duration_ms, f"must be a whole multiple of {what} = {dt_coarse} µs")
    n_coarse = int(round(n_coarse))
    if n_coarse < 1:
        what = "timing.dt_volume_us" if has_volume else "timing.dt_fine_us"
        raise ModelError("timing.duration_ms", t.duration_ms, f"must be at least one step ({what} = {dt_coarse} µs)")
    sample_every = int(round(t.sample_interval_us / t.dt_fine_us))
    n_fine = n_coarse * k
    if n_fine % sample_every:
        raise ModelError("timing.duration_ms", t.duration_ms,
                         f"must be a whole multiple of timing.sample_interval_us = {t.sample_interval_us} µs")
    if n_fine // sample_every + 1 > MAX_SAMPLES:
        raise ModelError("timing.sample_interval_us", t.sample_interval_us,
                         f"gives {n_fine // sample_every + 1} samples (limit {MAX_SAMPLES:g}); use "
                         f"sample_interval_us >= {t.duration_ms * 1000.0 / (MAX_SAMPLES - 1):.3g}")
    return _StepCounts(k, dt_coarse, n_coarse, sample_every, n_fine)


def _species_steps(model, dt_coarse):
    """Per-species step sd in the slab (fine step) and in the volume (coarse step, D* = D/λ²), with
    the checks that each is small against the cleft radius and the extracellular shell."""
    g, t = model.geometry, model.timing
    d = np.array([s.diffusion_um2_per_ms for s in model.species])        # µm²/ms
    sigma_fine = np.sqrt(2.0 * d * t.dt_fine_us * 1e-3)
    limit = g.cleft_radius_um / 5.0
    for s, sig in zip(model.species, sigma_fine):
        if sig > limit:
            dt_max = limit ** 2 / (2.0 * s.diffusion_um2_per_ms * 1e-3)
            raise ModelError("timing.dt_fine_us", t.dt_fine_us,
                             f"the step of {s.name} (σ = {sig * 1000:.1f} nm) is too large for a cleft of radius "
                             f"{g.cleft_radius_um} µm (σ must be <= R_cleft/5); use dt_fine_us <= {dt_max:.3g}")
    if not geometry.has_volume(g):
        return sigma_fine, np.zeros(len(model.species))
    d_star = d / g.tortuosity ** 2
    sigma_volume = np.sqrt(2.0 * d_star * dt_coarse * 1e-3)
    r_inner, r_domain = geometry.volume_radii_um(g)
    shell = r_domain - r_inner
    for s, sig, ds in zip(model.species, sigma_volume, d_star):
        if sig > shell / 10.0:
            dt_max = (shell / 10.0) ** 2 / (2.0 * ds * 1e-3)
            raise ModelError("timing.dt_volume_us", t.dt_volume_us,
                             f"the volume step of {s.name} (σ = {sig:.3g} µm) is too large for the "
                             f"extracellular shell ({shell:.3g} µm thick); use dt_volume_us <= {dt_max:.3g}")
    return sigma_fine, sigma_volume


def _degradation_hazards(model, species_index, dt_fine, dt_coarse) -> dict:
    """Per-region, per-species chance of destruction per step (a fine step in the slab regions, a
    coarse step in the volume)."""
    n_species = len(model.species)
    haz = {region: np.zeros(n_species) for region in geometry.COMPARTMENTS}
    for deg in model.degradation:
        targets = [species_index[deg.species]] if deg.species else range(n_species)
        regions = geometry.COMPARTMENTS if deg.region == "all" else (deg.region,)
        for region in regions:
            dt_us = dt_coarse if region == "volume" else dt_fine
            for i in targets:
                haz[region][i] += deg.rate_per_s * dt_us * 1e-6
    return haz


@dataclass
class _SchemeRows:
    state_type: list
    state_ligands: list
    state_labels: list
    open_flags: list
    type_ground: list
    type_volume_index: list
    bind_rows: list         # (source, target, species, per-hit probability or None for volume, kon, group, transition)
    exit_rows: list         # (source, target, exit code, species, rate per µs)
    n_volume_types: int
    group_states: list


def _scheme_rows(model, species_index) -> _SchemeRows:
    """One kernel type per site group: global state tables and the bind and exit transitions."""
    t = model.timing
    rows = _SchemeRows([], [], [], [], [], [], [], [], 0, [])
    for ti, grp in enumerate(model.sites):
        sch = grp.scheme
        first = len(rows.state_type)
        idx = {name: first + j for j, name in enumerate(sch.states)}
        lig = sch.ligands()
        is_volume = grp.location == "volume"
        rows.type_volume_index.append(rows.n_volume_types if is_volume else -1)
        rows.n_volume_types += is_volume
        rows.type_ground.append(first)
        rows.group_states.append((first, list(sch.states)))
        for name in sch.states:
            rows.state_type.append(ti)
            rows.state_ligands.append(lig[name])
            rows.state_labels.append(f"{grp.label}:{name}")
            rows.open_flags.append(name in sch.open_states)
        for tr in sch.transitions:
            src, dst = idx[tr.source], idx[tr.target]
            if tr.kind == "bind":
                sp = species_index[tr.species]
                if is_volume:
                    value = None   # filled in once the voxel volume is known
                else:
                    value = per_hit_probability(tr.rate, model.tile_um, t.dt_fine_us,
                                                model.species[sp].diffusion_um2_per_ms)
                rows.bind_rows.append((src, dst, sp, value, tr.rate, grp, tr))
            else:
                sp = species_index[tr.species] if tr.species else 0
                rows.exit_rows.append((src, dst, EXIT_CODES[tr.kind], sp, tr.rate * 1e-6))
    _check_hit_probabilities(model, rows.bind_rows)
    return rows


def _check_hit_probabilities(model, bind_rows):
    # per-hit probabilities must stay <= 1, summed over the bindings a hit can trigger
    t = model.timing
    sums = {}
    for src, dst, sp, value, kon, grp, tr in bind_rows:
        if value is not None:
            sums.setdefault((src, sp), []).append((value, grp, tr))
    distinct = {sum(v for v, _, _ in items) for (src, sp), items in sums.items() if sp == 0}
    if len(distinct - {0.0}) > MAX_BINDING_CODES:
        raise ModelError("sites", len(distinct), f"the model's membrane states have {len(distinct)} distinct per-hit "
                         f"binding probabilities of {model.species[0].name}; the kernel holds {MAX_BINDING_CODES}")
    for (src, sp), items in sums.items():
        total = sum(v for v, _, _ in items)
        if total > 1.0:
            grp, tr = items[0][1], items[0][2]
            dt_max = t.dt_fine_us / total ** 2
            raise ModelError("timing.dt_fine_us", t.dt_fine_us,
                             f"gives a per-hit binding probability of {total:.3g} > 1 for "
                             f"{grp.label} state {tr.source!r} (kon {tr.rate:.3g} M⁻¹s⁻¹, tile {model.tile_um} µm); "
                             f"use dt_fine_us <= {dt_max:.3g} or a larger tile_um")


def _tile_grid(model):
    """(tiles per side, half width in µm) of the membrane tile grid; one tile without membrane sites."""
    has_membrane = any(grp.location != "volume" for grp in model.sites)
    g = model.geometry
    n_tile = geometry.tiles_per_side(g, model.tile_um) if has_membrane else 1
    if n_tile > MAX_TILES_PER_SIDE:
        slab_r = geometry.rim_radius_um(g)
        raise ModelError("tile_um", model.tile_um,
                         f"gives {n_tile} tiles across the {2 * slab_r} µm slab (limit {MAX_TILES_PER_SIDE}); "
                         f"use tile_um >= {2 * slab_r / MAX_TILES_PER_SIDE:.3g}")
    return n_tile, 0.5 * n_tile * model.tile_um


def _voxel_grid(model, n_volume_types) -> geometry.VoxelGrid:
    if not n_volume_types:
        return geometry.no_voxels()
    g = model.geometry
    n_vox = geometry.voxels_per_side(g, model.voxel_um)
    if n_vox ** 3 > MAX_VOXELS or n_vox ** 3 * n_volume_types > 2 ** 31 - 2:
        raise ModelError("voxel_um", model.voxel_um,
                         f"gives {n_vox ** 3} voxels (limit {MAX_VOXELS}); use voxel_um >= "
                         f"{2 * geometry.volume_radii_um(g)[1] / MAX_VOXELS ** (1 / 3):.3g}")
    grid = geometry.voxel_grid(g, model.voxel_um, n_vox)
    if not len(grid.support):
        raise ModelError("voxel_um", model.voxel_um, f"is too coarse for the extracellular shell "
                         f"{g.varicosity_radius_um}-{g.domain_radius_um} µm (no voxel samples it); use a smaller voxel_um")
    return grid


def _probe_arrays(model) -> dict:
    """The kernel's detector-region arrays from ``model.detector_regions()`` (objects with
    ``shape`` "sphere" or "cylinder", ``centre_um``, ``radius_um`` and ``length_um``; a
    cylinder's axis is z)."""
    regions = model.detector_regions()
    return dict(probe_shape=_i32([PROBE_CODES[d.shape] for d in regions]),
                probe_centre_um=_f64([c for d in regions for c in d.centre_um]),
                probe_radius_um=_f64([d.radius_um for d in regions]),
                probe_half_length_um=_f64([0.5 * d.length_um if d.shape == "cylinder" else 0.0 for d in regions]))


def _transition_tables(rows: _SchemeRows, dt_coarse, volume_fraction, voxel_litres) -> dict:
    """The kernel's bind and exit tables (CSR by source state). A volume binding's value is the
    hazard per coarse step for one free site in a voxel of extracellular fraction α."""
    n_states = len(rows.state_type)
    bind_rows = sorted(rows.bind_rows, key=lambda row: row[0])
    exit_rows = sorted(rows.exit_rows, key=lambda row: row[0])
    bind_start = np.zeros(n_states + 1, dtype=np.int32)
    exit_start = np.zeros(n_states + 1, dtype=np.int32)
    for row in bind_rows:
        bind_start[row[0] + 1] += 1
    for row in exit_rows:
        exit_start[row[0] + 1] += 1
    bind_values = [kon * dt_coarse * 1e-6 / (AVOGADRO_PER_MOL * volume_fraction * voxel_litres)
                   if value is None else value for src, dst, sp, value, kon, grp, tr in bind_rows]
    return dict(bind_start=_i32(np.cumsum(bind_start)), bind_to=_i32([r[1] for r in bind_rows]),
                bind_species=_i32([r[2] for r in bind_rows]), bind_value=_f64(bind_values),
                exit_start=_i32(np.cumsum(exit_start)), exit_to=_i32([r[1] for r in exit_rows]),
                exit_kind=_i32([r[2] for r in exit_rows]), exit_species=_i32([r[3] for r in exit_rows]),
                exit_rate_per_us=_f64([r[4] for r in exit_rows]))


def compile_model(model: SynapseModel) -> CompiledModel:
    """Validate ``model`` and build its kernel arrays."""
    return CompiledModel(model)
