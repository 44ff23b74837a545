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

import functools
import math
from dataclasses import dataclass

import numpy as np

from . import _engine
from .errors import ModelError
from .model import SynapseModel

AVOGADRO_PER_MOL = 6.02214076e23
UM3_PER_L = 1e15

OUTSIDE_CODES = {"closed": _engine.OUTSIDE_CLOSED, "open": _engine.OUTSIDE_OPEN, "band": _engine.OUTSIDE_BAND,
                 "volume": _engine.OUTSIDE_VOLUME}
EXIT_CODES = {"first_order": _engine.EXIT_PLAIN, "unbind": _engine.EXIT_UNBIND, "uptake": _engine.EXIT_UPTAKE,
              "degrade": _engine.EXIT_DEGRADE, "efflux": _engine.EXIT_EFFLUX}
PLANE_POST, PLANE_PRE, PLANE_VOLUME = _engine.PLANE_POST, _engine.PLANE_PRE, _engine.PLANE_VOLUME
LOCATION_PLANE = {"postsynaptic": PLANE_POST, "presynaptic": PLANE_PRE,
                  "band_postsynaptic": PLANE_POST, "band_presynaptic": PLANE_PRE, "volume": PLANE_VOLUME}

MAX_TILES_PER_SIDE = 4096
MAX_VOXELS = 4_000_000
PLACEMENT_SPAWN_KEY = 0x6D63  # keeps per-run placement draws apart from the kernel's stream


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


@functools.lru_cache(maxsize=256)
def rim_exit_profile(sigma_over_radius: float) -> tuple:
    """How molecules leave a disk's rim in one fine step, from a uniform density.

    Returns ``(fraction, depth_quantiles)``: the number that leave per unit density and height,
    relative to the planar-edge value 2πRσ√(2/π) (the rim's curvature makes it a few per cent
    smaller than 1), and ENTRY_DEPTH_QUANTILES quantiles (at 0, 1/256, ..., 1) of the start depth
    below the rim of those that leave, in units of σ. An entering molecule is placed at such a
    depth: the time reversal of an exit, which keeps a uniform density stationary.

    Integrates the kernel's own exit rule (end beyond the rim, or the Brownian-bridge chance
    exp(−2 d₀ d₁/σ²) for an end inside it, no edge test for ends deeper than 4σ) over start radii
    (a 0.035σ grid) and steps (a 0.1σ grid; halving both changes the fraction by < 1e-4).
    """
    radius = 1.0 / sigma_over_radius          # in units of σ
    depth = np.linspace(0.0, min(7.0, radius), 201)
    grid = np.arange(-6.0, 6.0 + 1e-9, 0.1)
    dx, dy = np.meshgrid(grid, grid, indexing="ij")
    step_weights = np.exp(-0.5 * (dx * dx + dy * dy))
    step_weights /= step_weights.sum()
    quiet = max(radius - 4.0, 0.0) ** 2
    density = np.empty_like(depth)            # leaving chance x circumference at each start depth
    for k, d in enumerate(depth):
        r0 = radius - d
        r = np.hypot(r0 + dx, dy)
        leave = np.where(r >= radius, 1.0, np.where(r * r >= quiet, np.exp(-2.0 * d * (radius - r)), 0.0))
        density[k] = 2.0 * math.pi * r0 * float(np.sum(leave * step_weights))
    cumulative = np.concatenate(([0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(depth))))
    fraction = cumulative[-1] / (2.0 * math.pi * radius * math.sqrt(2.0 / math.pi))
    quantiles = np.interp(np.linspace(0.0, 1.0, ENTRY_DEPTH_QUANTILES), cumulative / cumulative[-1], depth)
    return float(fraction), tuple(quantiles)


@dataclass
class KernelModel:
    """Run-independent kernel input (µm, µs). Field names are the kernel's contract."""

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


@dataclass
class KernelRun:
    """Per-run kernel input (µm, µs): membrane sites one by one, volume sites as counts per
    (type, initial state, voxel), and the injection schedule as groups of ``inject_count``
    molecules that enter together at one time and place (a vesicle's instant release is one
    group, so a million molecules cost one row, not a million)."""

    n_sites: int
    site_type: np.ndarray
    site_state: np.ndarray
    site_plane: np.ndarray
    site_x_um: np.ndarray
    site_y_um: np.ndarray
    n_volume_rows: int
    volume_type: np.ndarray
    volume_state: np.ndarray
    volume_voxel: np.ndarray
    volume_count: np.ndarray
    n_inject: int
    inject_time_us: np.ndarray
    inject_count: np.ndarray
    inject_x_um: np.ndarray
    inject_y_um: np.ndarray
    inject_z_um: np.ndarray
    inject_species: np.ndarray
    inject_volume: np.ndarray


def _i32(values):
    return np.ascontiguousarray(values, dtype=np.int32)


def _f64(values):
    return np.ascontiguousarray(values, dtype=np.float64)


class CompiledModel:
    """A validated model with its kernel arrays and the tables that name kernel outputs."""

    def __init__(self, model: SynapseModel):
        model.validate()
        self.model = model
        g = model.geometry
        t = model.timing
        self.species_index = {s.name: i for i, s in enumerate(model.species)}
        n_species = len(model.species)
        has_volume = g.outside == "volume"
        k = int(round(t.dt_volume_us / t.dt_fine_us)) if has_volume else 1
        dt_coarse = t.dt_fine_us * k
        n_coarse = t.duration_ms * 1000.0 / dt_coarse
        if abs(n_coarse - round(n_coarse)) > 1e-6 * max(1.0, n_coarse):
            what = "timing.dt_volume_us" if has_volume else "timing.dt_fine_us"
            raise ModelError("timing.duration_ms", t.duration_ms, f"must be a whole multiple of {what} = {dt_coarse} µs")
        n_coarse = int(round(n_coarse))
        sample_every = int(round(t.sample_interval_us / t.dt_fine_us))
        n_fine = n_coarse * k
        if n_fine % sample_every:
            raise ModelError("timing.duration_ms", t.duration_ms,
                             f"must be a whole multiple of timing.sample_interval_us = {t.sample_interval_us} µs")

        # ---- species: step sizes and degradation hazards
        d = np.array([s.diffusion_um2_per_ms for s in model.species])        # µm²/ms
        sigma_fine = np.sqrt(2.0 * d * t.dt_fine_us * 1e-3)
        limit = g.cleft_radius_um / 5.0
        for s, sig in zip(model.species, sigma_fine):
            if sig > limit:
                dt_max = limit ** 2 / (2.0 * s.diffusion_um2_per_ms * 1e-3)
                raise ModelError("timing.dt_fine_us", t.dt_fine_us,
                                 f"the step of {s.name} (σ = {sig * 1000:.1f} nm) is too large for a cleft of radius "
                                 f"{g.cleft_radius_um} µm (σ must be <= R_cleft/5); use dt_fine_us <= {dt_max:.3g}")
        if has_volume:
            d_star = d / g.tortuosity ** 2
            sigma_volume = np.sqrt(2.0 * d_star * dt_coarse * 1e-3)
            shell = g.domain_radius_um - g.varicosity_radius_um
            for s, sig, ds in zip(model.species, sigma_volume, d_star):
                if sig > shell / 10.0:
                    dt_max = (shell / 10.0) ** 2 / (2.0 * ds * 1e-3)
                    raise ModelError("timing.dt_volume_us", t.dt_volume_us,
                                     f"the volume step of {s.name} (σ = {sig:.3g} µm) is too large for the "
                                     f"extracellular shell ({shell:.3g} µm thick); use dt_volume_us <= {dt_max:.3g}")
        else:
            sigma_volume = np.zeros(n_species)
        r_mouth, mouth_cos, enter_probability, entry_depth = self._mouth_shell(sigma_fine, k) if has_volume \
            else (0.0, 0.0, np.zeros(n_species), np.zeros((n_species, ENTRY_DEPTH_QUANTILES)))
        haz = {region: np.zeros(n_species) for region in ("cleft", "band", "volume")}
        for deg in model.degradation:
            targets = [self.species_index[deg.species]] if deg.species else range(n_species)
            regions = ("cleft", "band", "volume") if deg.region == "all" else (deg.region,)
            for region in regions:
                dt_us = dt_coarse if region == "volume" else t.dt_fine_us
                for i in targets:
                    haz[region][i] += deg.rate_per_s * dt_us * 1e-6

        # ---- schemes: one kernel type per site group
        state_type, state_ligands, state_labels, open_flags = [], [], [], []
        type_ground, type_volume_index = [], []
        bind_rows, exit_rows = [], []
        n_vol_types = 0
        self.group_states = []          # per group: (first global index, scheme states)
        for ti, grp in enumerate(model.sites):
            sch = grp.scheme
            first = len(state_type)
            idx = {name: first + j for j, name in enumerate(sch.states)}
            lig = sch.ligands()
            is_volume = grp.location == "volume"
            type_volume_index.append(n_vol_types if is_volume else -1)
            n_vol_types += is_volume
            type_ground.append(first)
            self.group_states.append((first, list(sch.states)))
            for name in sch.states:
                state_type.append(ti)
                state_ligands.append(lig[name])
                state_labels.append(f"{grp.label}:{name}")
                open_flags.append(name in sch.open_states)
            for tr in sch.transitions:
                src, dst = idx[tr.source], idx[tr.target]
                if tr.kind == "bind":
                    sp = self.species_index[tr.species]
                    if is_volume:
                        value = None   # filled in once the voxel volume is known
                    else:
                        value = per_hit_probability(tr.rate, model.tile_um, t.dt_fine_us,
                                                    model.species[sp].diffusion_um2_per_ms)
                    bind_rows.append((src, dst, sp, value, tr.rate, grp, tr))
                else:
                    sp = self.species_index[tr.species] if tr.species else 0
                    exit_rows.append((src, dst, EXIT_CODES[tr.kind], sp, tr.rate * 1e-6))
        n_states = len(state_type)

        # per-hit probabilities must stay <= 1, summed over the bindings a hit can trigger
        sums = {}
        for src, dst, sp, value, kon, grp, tr in bind_rows:
            if value is not None:
                sums.setdefault((src, sp), []).append((value, grp, tr))
        for (src, sp), items in sums.items():
            total = sum(v for v, _, _ in items)
            if total > 1.0:
                grp, tr = items[0][1], items[0][2]
                dt_max = t.dt_fine_us / total ** 2
                raise ModelError("timing.dt_fine_us", t.dt_fine_us,
                                 f"gives a per-hit binding probability of {total:.3g} > 1 for "
                                 f"{grp.label} state {tr.source!r} (kon {tr.rate:.3g} M⁻¹s⁻¹, tile {model.tile_um} µm); "
                                 f"use dt_fine_us <= {dt_max:.3g} or a larger tile_um")

        # ---- tiles (membrane sites) and voxels (volume sites)
        has_membrane = any(grp.location != "volume" for grp in model.sites)
        slab_r = g.slab_radius_um
        # one spare tile beyond the rim on each side: the kernel then maps any crossing inside the
        # rim to a tile without a range test (the grid's lattice is the same as without them)
        n_tile = int(math.ceil(2.0 * slab_r / model.tile_um)) + 2 if has_membrane else 1
        if n_tile > MAX_TILES_PER_SIDE:
            raise ModelError("tile_um", model.tile_um,
                             f"gives {n_tile} tiles across the {2 * slab_r} µm slab (limit {MAX_TILES_PER_SIDE}); "
                             f"use tile_um >= {2 * slab_r / MAX_TILES_PER_SIDE:.3g}")
        self.grid_half_um = 0.5 * n_tile * model.tile_um
        if n_vol_types:
            n_vox = int(math.ceil(2.0 * g.domain_radius_um / model.voxel_um))
            if n_vox ** 3 > MAX_VOXELS:
                raise ModelError("voxel_um", model.voxel_um,
                                 f"gives {n_vox ** 3} voxels (limit {MAX_VOXELS}); use voxel_um >= "
                                 f"{2 * g.domain_radius_um / MAX_VOXELS ** (1 / 3):.3g}")
            shell_fraction = self._voxel_shell_fractions(n_vox, model.voxel_um, g.varicosity_radius_um,
                                                         g.domain_radius_um)
            # a voxel that holds any shell holds at least half a sub-sample of it
            floor = 0.5 / self.VOXEL_SUBSAMPLES ** 3
            voxel_weight = np.where(shell_fraction > 0, 1.0 / np.maximum(shell_fraction, floor), 0.0)
            # voxels holding some shell, and where a uniformly placed site lands among them
            self.voxel_support = np.flatnonzero(shell_fraction > 0)
            self.voxel_probability = shell_fraction[self.voxel_support] / shell_fraction.sum()
            v_vox_l = model.voxel_um ** 3 / UM3_PER_L
        else:
            n_vox = 1
            voxel_weight = np.ones(1)
            self.voxel_support = np.zeros(1, dtype=np.int64)
            self.voxel_probability = np.ones(1)
            v_vox_l = 1.0

        bind_rows.sort(key=lambda row: row[0])
        exit_rows.sort(key=lambda row: row[0])
        bind_start = np.zeros(n_states + 1, dtype=np.int32)
        exit_start = np.zeros(n_states + 1, dtype=np.int32)
        for row in bind_rows:
            bind_start[row[0] + 1] += 1
        for row in exit_rows:
            exit_start[row[0] + 1] += 1
        bind_values = []
        for src, dst, sp, value, kon, grp, tr in bind_rows:
            if value is None:
                # hazard per coarse step for one free site in a voxel of extracellular fraction α
                value = kon * dt_coarse * 1e-6 / (AVOGADRO_PER_MOL * g.volume_fraction * v_vox_l)
            bind_values.append(value)

        self.state_labels = state_labels
        self.state_open = np.array(open_flags, dtype=bool)
        self.state_ligands = np.array(state_ligands, dtype=np.int64)
        self.dt_coarse_us = dt_coarse
        self.kernel = KernelModel(
            h_um=g.cleft_height_um, r_cleft_um=g.cleft_radius_um,
            r_outer_um=g.band_outer_radius_um if g.outside == "band" else g.cleft_radius_um,
            r_inner_um=g.varicosity_radius_um if has_volume else 0.0,
            r_domain_um=g.domain_radius_um if has_volume else 0.0,
            outside=OUTSIDE_CODES[g.outside], outer_absorbing=int(g.band_outer_boundary == "absorbing"),
            domain_reflects=int(has_volume and g.domain_boundary == "reflecting"), r_mouth_um=r_mouth,
            mouth_cos=mouth_cos, enter_probability=_f64(enter_probability),
            entry_depth_um=_f64(entry_depth).ravel(),
            dt_fine_us=t.dt_fine_us, steps_per_coarse=k, n_coarse=n_coarse, sample_every=sample_every,
            n_samples=n_fine // sample_every + 1, tile_um=model.tile_um, n_tile=n_tile,
            voxel_um=model.voxel_um, n_vox=n_vox, n_species=n_species, n_states=n_states,
            n_types=len(model.sites), sigma_fine_um=_f64(sigma_fine), sigma_volume_um=_f64(sigma_volume),
            hazard_cleft=_f64(haz["cleft"]), hazard_band=_f64(haz["band"]), hazard_volume=_f64(haz["volume"]),
            state_type=_i32(state_type), state_ligands=_i32(state_ligands), bind_start=_i32(np.cumsum(bind_start)),
            bind_to=_i32([r[1] for r in bind_rows]), bind_species=_i32([r[2] for r in bind_rows]),
            bind_value=_f64(bind_values), exit_start=_i32(np.cumsum(exit_start)),
            exit_to=_i32([r[1] for r in exit_rows]), exit_kind=_i32([r[2] for r in exit_rows]),
            exit_species=_i32([r[3] for r in exit_rows]), exit_rate_per_us=_f64([r[4] for r in exit_rows]),
            type_volume_index=_i32(type_volume_index), type_ground=_i32(type_ground),
            voxel_weight=_f64(voxel_weight),
        )
        self.sample_times_ms = np.arange(self.kernel.n_samples) * t.sample_interval_us * 1e-3
        self._tile_candidates = {}
        self._check_site_room()

    # Entry chance per coarse step of a volume molecule in the mouth shell, for the fastest species
    MOUTH_ENTER_PROBABILITY = 0.5

    def _mouth_shell(self, sigma_fine, steps_per_coarse):
        """Mouth shell (r_mouth, mouth_cos), per-species entry probabilities per coarse step, and
        per-species quantiles of the depth below the rim at which an entering molecule is placed.

        Detailed balance at equal free concentration C in cleft and volume: a slab molecule at depth
        d below the rim leaves within a fine step with chance 2Φ(−d/σ) (planar rim), so
        C h 2π R_rim σ √(2/π) molecules leave per fine step (times ``rim_exit_profile``'s fraction
        for the rim's curvature); the volume holds α C V_mouth molecules
        in the mouth shell. Entering with probability q = K h 2π R_rim σ √(2/π) / (α V_mouth) per
        coarse step of K fine steps returns as many as leave. The shell (thickness δ = s R_var, polar
        band |cos θ| < s) is sized so that q is MOUTH_ENTER_PROBABILITY for the fastest species.
        """
        g = self.model.geometry
        sigma_fine = np.asarray(sigma_fine, dtype=float)
        profiles = [rim_exit_profile(round(float(sig) / g.cleft_radius_um, 12)) for sig in sigma_fine]
        curvature = np.array([frac for frac, _ in profiles])
        entry_depth = np.minimum(np.array([q for _, q in profiles]) * sigma_fine[:, None], g.cleft_radius_um)
        leave_per_conc = steps_per_coarse * g.cleft_height_um * 2 * math.pi * g.cleft_radius_um \
            * sigma_fine * math.sqrt(2 / math.pi) * curvature / g.volume_fraction     # µm³ of tissue
        need = float(leave_per_conc.max()) / self.MOUTH_ENTER_PROBABILITY
        ri = g.varicosity_radius_um

        def shell_volume(s):
            return 4.0 / 3.0 * math.pi * ri ** 3 * ((1.0 + s) ** 3 - 1.0) * s

        from scipy.optimize import brentq      # here, not at the top: `import mcsyn` stays free of scipy
        s = 1.0 if shell_volume(1.0) <= need else brentq(lambda x: shell_volume(x) - need, 1e-9, 1.0)
        r_mouth = ri * (1.0 + s)
        if not self.model.volume_enters_cleft:
            return min(r_mouth, 0.5 * (ri + g.domain_radius_um)), s, np.zeros(len(sigma_fine)), entry_depth
        if shell_volume(1.0) < need:
            t = self.model.timing
            k_max = math.floor(steps_per_coarse * shell_volume(1.0) / need)     # need grows with K
            fix = (f"use timing.dt_volume_us <= {k_max * t.dt_fine_us:g}" if k_max >= 1 else
                   f"use a larger geometry.varicosity_radius_um")
            raise ModelError("timing.dt_volume_us", t.dt_volume_us,
                             f"is too long for the exchange between the cleft and the volume: the "
                             f"varicosity (radius {ri} µm) has too little room beside the cleft's mouth for "
                             f"the molecules that leave the cleft in one volume step; {fix}, or set "
                             f"geometry.volume_enters_cleft = false")
        if r_mouth > 0.5 * (ri + g.domain_radius_um):
            raise ModelError("geometry.domain_radius_um", g.domain_radius_um,
                             f"must be at least {2 * r_mouth - ri:.3g} µm so that the cleft's mouth region "
                             f"(out to {r_mouth:.3g} µm) fills at most half of the extracellular shell")
        return r_mouth, s, leave_per_conc / shell_volume(s), entry_depth

    def _check_site_room(self):
        # before any run: every membrane region must have a tile for each of its sites
        demand = {}
        for grp in self.model.sites:
            if grp.location == "volume" or grp.arrangement == "coordinates":
                continue
            region = grp.location
            demand[region] = demand.get(region, 0) + self.site_count(grp)
            room = len(self._candidate_tiles(region))
            if demand[region] > room:
                raise ModelError(f"sites[{grp.label!r}]", self.site_count(grp),
                                 f"{demand[region]} sites in the {region} region do not fit on its {room} "
                                 f"tiles of {self.model.tile_um} µm; lower the density or tile_um")

    # ------------------------------------------------------------------ geometry helpers
    VOXEL_SUBSAMPLES = 4

    @classmethod
    def _voxel_shell_fractions(cls, n_vox, voxel, r_in, r_out):
        """Fraction of each voxel inside the extracellular shell r_in <= r < r_out, by sub-voxel
        sampling (flattened in the kernel's voxel order)."""
        sub = cls.VOXEL_SUBSAMPLES
        edges = -r_out + (np.arange(n_vox * sub) + 0.5) * (voxel / sub)
        r2_axis = edges ** 2
        frac = np.zeros((n_vox, n_vox, n_vox))
        # accumulate in slabs along x to keep memory at n_vox² * sub²
        yz = (r2_axis[:, None] + r2_axis[None, :])
        for ix in range(n_vox * sub):
            r2 = r2_axis[ix] + yz
            inside = (r2 >= r_in ** 2) & (r2 < r_out ** 2)
            frac[ix // sub] += inside.reshape(n_vox, sub, n_vox, sub).sum(axis=(1, 3))
        return (frac / sub ** 3).ravel()

    def _candidate_tiles(self, location):
        if location not in self._tile_candidates:
            g = self.model.geometry
            n = self.kernel.n_tile
            centres = -self.grid_half_um + (np.arange(n) + 0.5) * self.model.tile_um
            r2 = centres[:, None] ** 2 + centres[None, :] ** 2
            if location == "postsynaptic":
                mask = r2 < g.psd_radius_um ** 2
            elif location == "presynaptic":
                mask = r2 < g.cleft_radius_um ** 2
            else:
                mask = (r2 >= g.cleft_radius_um ** 2) & (r2 < g.band_outer_radius_um ** 2)
            self._tile_candidates[location] = np.flatnonzero(mask.ravel())
        return self._tile_candidates[location]

    def _region_area_um2(self, location):
        g = self.model.geometry
        if location == "postsynaptic":
            return math.pi * g.psd_radius_um ** 2
        if location == "presynaptic":
            return math.pi * g.cleft_radius_um ** 2
        return math.pi * (g.band_outer_radius_um ** 2 - g.cleft_radius_um ** 2)

    def _shell_volume_um3(self):
        g = self.model.geometry
        return 4.0 / 3.0 * math.pi * (g.domain_radius_um ** 3 - g.varicosity_radius_um ** 3)

    def site_count(self, grp) -> int:
        """Number of sites a group places (fixed across runs)."""
        if grp.arrangement == "coordinates":
            return len(grp.coordinates_um)
        if grp.count is not None:
            return int(grp.count)
        if grp.location == "volume":
            return int(round(grp.density_per_um3 * self._shell_volume_um3()))
        return int(round(grp.density_per_um2 * self._region_area_um2(grp.location)))

    # ------------------------------------------------------------------ per run
    @staticmethod
    def placement_generator(seed_sequence: np.random.SeedSequence) -> np.random.Generator:
        child = np.random.SeedSequence(seed_sequence.entropy,
                                       spawn_key=tuple(seed_sequence.spawn_key) + (PLACEMENT_SPAWN_KEY,),
                                       pool_size=seed_sequence.pool_size)
        return np.random.Generator(np.random.PCG64(child))

    def draw_run(self, seed_sequence: np.random.SeedSequence) -> KernelRun:
        rng = self.placement_generator(seed_sequence)
        membrane, volume = self._draw_sites(rng)
        inject = self._draw_releases(rng)
        return KernelRun(n_sites=len(membrane[0]), site_type=_i32(membrane[0]), site_state=_i32(membrane[1]),
                         site_plane=np.ascontiguousarray(membrane[2], dtype=np.int8), site_x_um=_f64(membrane[3]),
                         site_y_um=_f64(membrane[4]), n_volume_rows=len(volume[0]), volume_type=_i32(volume[0]),
                         volume_state=_i32(volume[1]), volume_voxel=_i32(volume[2]), volume_count=_i32(volume[3]),
                         n_inject=len(inject[0]), inject_time_us=_f64(inject[0]),
                         inject_count=np.ascontiguousarray(inject[1], dtype=np.int64), inject_x_um=_f64(inject[2]),
                         inject_y_um=_f64(inject[3]), inject_z_um=_f64(inject[4]), inject_species=_i32(inject[5]),
                         inject_volume=np.ascontiguousarray(inject[6], dtype=np.int8))

    def _draw_sites(self, rng):
        """Membrane sites as (type, state, plane, x, y) columns; volume sites as
        (type, state, voxel, count) rows: each site lands in a voxel with probability proportional
        to the voxel's share of the extracellular shell (uniform placement at voxel resolution)."""
        model = self.model
        used = {PLANE_POST: set(), PLANE_PRE: set()}
        membrane = [[] for _ in range(5)]
        volume = [[] for _ in range(4)]
        n = self.kernel.n_tile
        for ti, grp in enumerate(model.sites):
            count = self.site_count(grp)
            first, states = self.group_states[ti]
            probs = np.array([grp.initial_state_fractions.get(s, 0.0) for s in states])
            probs[0] += 1.0 - probs.sum()
            if grp.location == "volume":
                per_state = rng.multinomial(count, probs) if grp.initial_state_fractions else [count]
                for j, n_state in enumerate(per_state):
                    if n_state == 0:
                        continue
                    per_voxel = rng.multinomial(n_state, self.voxel_probability)
                    hit = np.flatnonzero(per_voxel)
                    for col, vals in zip(volume, (np.full(len(hit), ti), np.full(len(hit), first + j),
                                                  self.voxel_support[hit], per_voxel[hit])):
                        col.append(vals)
                continue
            plane = LOCATION_PLANE[grp.location]
            tiles = self._place_on_tiles(grp, count, used[plane], rng)
            used[plane].update(tiles.tolist())
            ix, iy = np.divmod(tiles, n)
            x = -self.grid_half_um + (ix + 0.5) * model.tile_um
            y = -self.grid_half_um + (iy + 0.5) * model.tile_um
            if grp.initial_state_fractions:
                st = first + rng.choice(len(states), size=count, p=probs)
            else:
                st = np.full(count, first)
            for col, vals in zip(membrane, (np.full(count, ti), st, np.full(count, plane), x, y)):
                col.append(np.asarray(vals))

        def stack(cols):
            return [np.concatenate(c) if c else np.zeros(0) for c in cols]
        return stack(membrane), stack(volume)

    def _place_on_tiles(self, grp, count, used, rng):
        n = self.kernel.n_tile
        lab = f"sites[{grp.label!r}]"
        cand = self._candidate_tiles(grp.location)
        if grp.arrangement == "coordinates":
            c = np.asarray(grp.coordinates_um, dtype=float)
            ix = np.floor((c[:, 0] + self.grid_half_um) / self.model.tile_um).astype(np.int64)
            iy = np.floor((c[:, 1] + self.grid_half_um) / self.model.tile_um).astype(np.int64)
            tiles = ix * n + iy
            ok = (ix >= 0) & (iy >= 0) & (ix < n) & (iy < n)
            if not ok.all() or not np.isin(tiles, cand).all():
                raise ModelError(f"{lab}.coordinates_um", c[~(ok & np.isin(tiles, cand))][:3].tolist(),
                                 f"coordinates must lie in the {grp.location} region")
            if len(np.unique(tiles)) != len(tiles) or used.intersection(tiles.tolist()):
                raise ModelError(f"{lab}.coordinates_um", "duplicates",
                                 f"two sites fall on one {self.model.tile_um} µm tile; space them further apart")
            return tiles
        free = cand if not used else cand[~np.isin(cand, np.fromiter(used, dtype=np.int64))]
        if grp.arrangement == "clustered":
            centres = free[rng.integers(0, len(free), size=grp.n_clusters)]
            cx, cy = np.divmod(centres, n)
            fx, fy = np.divmod(free, n)
            near = np.zeros(len(free), dtype=bool)
            rt = grp.cluster_radius_um / self.model.tile_um
            for a, b in zip(cx, cy):
                near |= (fx - a) ** 2 + (fy - b) ** 2 <= rt ** 2
            free = free[near]
        if count > len(free):
            raise ModelError(f"{lab}", count,
                             f"{count} sites do not fit on the {len(free)} free {self.model.tile_um} µm tiles of "
                             f"the {grp.arrangement} {grp.location} region; lower the density or tile_um")
        return rng.choice(free, size=count, replace=False)

    def _draw_releases(self, rng):
        """Injection groups as columns (time, count, x, y, z, species, into-volume), sorted by
        time (stable, so simultaneous groups keep the order of the releases). An instant release
        is one group; a fusion pore's molecules each get their own time, hence their own group."""
        model = self.model
        g = model.geometry
        releases = list(model.releases)
        for tr in model.trains:
            releases.extend(tr.releases())
        groups = []
        duration_us = model.timing.duration_ms * 1000.0
        for rel in releases:
            if rel.probability < 1.0 and rng.random() >= rel.probability:
                continue
            if rel.molecule_distribution == "poisson":
                n = int(rng.poisson(rel.molecules))
            elif rel.quantal_cv > 0 or rel.molecule_distribution == "gamma":
                cv = rel.quantal_cv
                n = int(round(rng.gamma(1.0 / cv ** 2, rel.molecules * cv ** 2))) if cv > 0 else int(round(rel.molecules))
            else:
                n = int(round(rel.molecules))
            if n <= 0:
                continue
            t0 = rel.time_ms * 1000.0
            if rel.pore_tau_ms > 0:
                times = t0 + rng.exponential(rel.pore_tau_ms * 1000.0, size=n)
                times = times[times <= duration_us]
                counts = np.ones(len(times), dtype=np.int64)
            else:
                times, counts = np.array([t0]), np.array([n], dtype=np.int64)
            sp = self.species_index[rel.species] if rel.species else 0
            if rel.into == "volume":
                pos = rel.position_um if rel.position_um is not None else (g.varicosity_radius_um * (1 + 1e-9), 0.0, 0.0)
                xyz, vol = (pos[0], pos[1], pos[2]), 1
            else:
                pos = rel.position_um if rel.position_um is not None else (0.0, 0.0)
                xyz, vol = (pos[0], pos[1], g.cleft_height_um * (1.0 - 1e-9)), 0
            groups.append((times, counts, *xyz, sp, vol))
        if not groups:
            return [np.zeros(0)] * 7
        times = np.concatenate([grp[0] for grp in groups])
        columns = [times, np.concatenate([grp[1] for grp in groups])]
        for k in range(2, 7):
            columns.append(np.concatenate([np.full(len(grp[0]), grp[k]) for grp in groups]))
        order = np.argsort(times, kind="stable")
        return [c[order] for c in columns]


def compile_model(model: SynapseModel) -> CompiledModel:
    """Validate ``model`` and build its kernel arrays."""
    return CompiledModel(model)
