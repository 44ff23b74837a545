"""What is random per run and drawn in Python: site positions and initial states, release times and
sizes, from the run's own ``SeedSequence`` (a child of it, apart from the kernel's stream).

The order of the draws is part of the reproducibility contract (``tests/test_golden.py``): sites
group by group in the model's order, then releases in the model's order, then the trains', and last
the trains with short-term plasticity (which vesicles each stimulus releases, then their molecules),
and last the random release positions of the releases that ask for one. With closed-loop feedback
the trains draw a vesicle for every release site at every stimulus (after the single releases) and
the kernel decides which of them happen.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import _engine
from .errors import ModelError

if TYPE_CHECKING:                     # annotations only; compile imports this module
    from .compile import CompiledModel

PLACEMENT_SPAWN_KEY = 0x6D63  # keeps per-run placement draws apart from the kernel's stream


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
    inject_gate: np.ndarray | None = None    # closed-loop feedback: per group, its stimulus (-1: not gated)
    inject_slot: np.ndarray | None = None    # per group: its release site at that stimulus


def int32_array(values):
    return np.ascontiguousarray(values, dtype=np.int32)


def float64_array(values):
    return np.ascontiguousarray(values, dtype=np.float64)


def placement_generator(seed_sequence: np.random.SeedSequence) -> np.random.Generator:
    child = np.random.SeedSequence(seed_sequence.entropy,
                                   spawn_key=tuple(seed_sequence.spawn_key) + (PLACEMENT_SPAWN_KEY,),
                                   pool_size=seed_sequence.pool_size)
    return np.random.Generator(np.random.PCG64(child))


def draw_run(cm: CompiledModel, seed_sequence: np.random.SeedSequence) -> KernelRun:
    rng = placement_generator(seed_sequence)
    membrane, volume = _draw_sites(cm, rng)
    inject = _draw_releases(cm, rng)
    extra = cm.model.draw_injections(cm, rng)      # last of all: other models draw what they drew before
    if extra is not None:
        inject = _merged_injections(inject, _ungated(extra))
    i32, f64 = int32_array, float64_array
    return KernelRun(n_sites=len(membrane[0]), site_type=i32(membrane[0]), site_state=i32(membrane[1]),
                     site_plane=np.ascontiguousarray(membrane[2], dtype=np.int8), site_x_um=f64(membrane[3]),
                     site_y_um=f64(membrane[4]), n_volume_rows=len(volume[0]), volume_type=i32(volume[0]),
                     volume_state=i32(volume[1]), volume_voxel=i32(volume[2]), volume_count=i32(volume[3]),
                     n_inject=len(inject[0]), inject_time_us=f64(inject[0]),
                     inject_count=np.ascontiguousarray(inject[1], dtype=np.int64), inject_x_um=f64(inject[2]),
                     inject_y_um=f64(inject[3]), inject_z_um=f64(inject[4]), inject_species=i32(inject[5]),
                     inject_volume=np.ascontiguousarray(inject[6], dtype=np.int8),
                     inject_gate=i32(inject[7]), inject_slot=i32(inject[8]))


def _ungated(extra):
    """A :meth:`~mcsyn.model.SynapseModel.draw_injections` schedule (its seven documented columns)
    with the closed-loop columns added: no feedback gate (-1), slot 0."""
    n = len(extra[0])
    return list(extra) + [np.full(n, -1), np.zeros(n)]


def _merged_injections(a, b):
    """Two injection schedules (column lists) as one, sorted by time (stable: ``a`` first)."""
    columns = [np.concatenate([np.asarray(x, dtype=float), np.asarray(y, dtype=float)]) for x, y in zip(a, b, strict=True)]
    order = np.argsort(columns[0], kind="stable")
    return [c[order] for c in columns]


def probability_classes(probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The voxels' placement probabilities as (class per voxel (int32), probability per class):
    a grid has few distinct shares of the shell (54 on the presets' 36,312 voxels), and the
    kernel's site draw keeps one table per class."""
    values, voxel_class = np.unique(probability, return_inverse=True)
    return voxel_class.astype(np.int32).ravel(), values.astype(np.float64)


def volume_site_counts(cm: CompiledModel, total: int, rng) -> np.ndarray:
    """``total`` sites over the support voxels, multinomial with the voxels' probabilities, drawn in
    the kernel (``_engine.volume_site_counts``) from 4 words of the placement stream."""
    return _engine.volume_site_counts(total, cm.voxel_class, cm.class_probability,
                                      rng.bit_generator.random_raw(4))


def _draw_sites(cm: CompiledModel, rng):
    """Membrane sites as (type, state, plane, x, y) columns; volume sites as
    (type, state, voxel, count) rows: each site lands in a voxel with probability proportional
    to the voxel's share of the extracellular shell (uniform placement at voxel resolution).
    A volume group's split over its initial states is drawn from the placement stream, then each
    state's voxels by :func:`volume_site_counts`."""
    model = cm.model
    used = {}                   # per membrane plane: the tiles already taken
    membrane = [[] for _ in range(5)]
    volume = [[] for _ in range(4)]
    n = cm.kernel.n_tile
    for ti, grp in enumerate(model.sites):
        count = cm.site_count(grp)
        first, states = cm.group_states[ti]
        probs = np.array([grp.initial_state_fractions.get(s, 0.0) for s in states])
        probs[0] += 1.0 - probs.sum()
        if grp.location == "volume":
            per_state = rng.multinomial(count, probs) if grp.initial_state_fractions else [count]
            for j, n_state in enumerate(per_state):
                if n_state == 0:
                    continue
                per_voxel = rng.multinomial(n_state, cm.voxel_probability)
                hit = np.flatnonzero(per_voxel)
                for col, vals in zip(volume, (np.full(len(hit), ti, dtype=np.int32),
                                              np.full(len(hit), first + j, dtype=np.int32),
                                              cm.voxel_support[hit].astype(np.int32), per_voxel[hit])):
                    col.append(vals)
            continue
        plane = cm.group_plane[ti]
        taken = used.setdefault(plane, set())
        tiles = _place_on_tiles(cm, grp, count, taken, rng)
        taken.update(tiles.tolist())
        ix, iy = np.divmod(tiles, n)
        x = -cm.grid_half_um + (ix + 0.5) * model.tile_um
        y = -cm.grid_half_um + (iy + 0.5) * model.tile_um
        if grp.initial_state_fractions:
            st = first + rng.choice(len(states), size=count, p=probs)
        else:
            st = np.full(count, first)
        for col, vals in zip(membrane, (np.full(count, ti), st, np.full(count, plane), x, y)):
            col.append(np.asarray(vals))

    def stack(cols):
        return [np.concatenate(c) if c else np.zeros(0) for c in cols]
    return stack(membrane), stack(volume)


def _place_on_tiles(cm: CompiledModel, grp, count, used, rng):
    n = cm.kernel.n_tile
    tile_um = cm.model.tile_um
    lab = f"sites[{grp.label!r}]"
    cand = cm.candidate_tiles(grp.location)
    if grp.arrangement == "coordinates":
        c = np.asarray(grp.coordinates_um, dtype=float)
        ix = np.floor((c[:, 0] + cm.grid_half_um) / tile_um).astype(np.int64)
        iy = np.floor((c[:, 1] + cm.grid_half_um) / tile_um).astype(np.int64)
        tiles = ix * n + iy
        ok = (ix >= 0) & (iy >= 0) & (ix < n) & (iy < n)
        if not ok.all() or not np.isin(tiles, cand).all():
            raise ModelError(f"{lab}.coordinates_um", c[~(ok & np.isin(tiles, cand))][:3].tolist(),
                             f"coordinates must lie in the {grp.location} region")
        if len(np.unique(tiles)) != len(tiles) or used.intersection(tiles.tolist()):
            raise ModelError(f"{lab}.coordinates_um", "duplicates",
                             f"two sites fall on one {tile_um} µm tile; space them further apart")
        return tiles
    free = cand if not used else cand[~np.isin(cand, np.fromiter(used, dtype=np.int64))]
    if grp.arrangement == "clustered":
        centres = free[rng.integers(0, len(free), size=grp.n_clusters)]
        cx, cy = np.divmod(centres, n)
        fx, fy = np.divmod(free, n)
        near = np.zeros(len(free), dtype=bool)
        rt = grp.cluster_radius_um / tile_um
        for a, b in zip(cx, cy):
            near |= (fx - a) ** 2 + (fy - b) ** 2 <= rt ** 2
        free = free[near]
    if count > len(free):
        raise ModelError(f"{lab}", count,
                         f"{count} sites do not fit on the {len(free)} free {tile_um} µm tiles of "
                         f"the {grp.arrangement} {grp.location} region; lower the density or tile_um")
    return rng.choice(free, size=count, replace=False)


def _draw_releases(cm: CompiledModel, rng):
    """Injection groups as columns (time, count, x, y, z, species, into-volume, feedback gate,
    feedback slot), sorted by time (stable, so simultaneous groups keep the order of the
    releases). An instant release is one group; a fusion pore's molecules each get their own
    time, hence their own group.

    Trains with short-term plasticity are drawn last, after every other release (so adding one
    leaves the draws of the rest of the model as they were): first which vesicles each stimulus
    releases (:func:`_plastic_train_releases`), then their molecules. Random release positions
    (``Release.random_position_radius_um``) are drawn last of all, in the order of the groups."""
    model = cm.model
    closed_loop = cm.feedback_stimuli is not None
    releases = list(model.releases)
    for tr in model.trains:
        if tr.plasticity is None and not closed_loop:
            releases.extend(tr.releases())
    drawn = [(rel, grp, -1, 0) for rel in releases if (grp := _release_group(cm, rel, rng)) is not None]
    for tr in model.trains:
        if tr.plasticity is not None and not closed_loop:
            drawn.extend((rel, grp, -1, 0) for rel in _plastic_train_releases(tr, rng)
                         if (grp := _release_group(cm, rel, rng)) is not None)
    if closed_loop:
        drawn.extend(_candidate_vesicles(cm, rng))
    groups = [_at_random_position(rel, grp, rng) + (gate, slot) for rel, grp, gate, slot in drawn]
    if not groups:
        return [np.zeros(0)] * 9
    times = np.concatenate([grp[0] for grp in groups])
    columns = [times, np.concatenate([grp[1] for grp in groups])]
    for k in range(2, 9):
        columns.append(np.concatenate([np.full(len(grp[0]), grp[k]) for grp in groups]))
    order = np.argsort(times, kind="stable")
    return [c[order] for c in columns]


def _candidate_vesicles(cm: CompiledModel, rng) -> list:
    """Closed-loop feedback: at every stimulus of every train, the vesicle of each release site
    with its molecules, as (release, group, stimulus, site). The kernel decides at the stimulus
    how many sites release (``ext/feedback.pxi``) and injects the groups of sites 0..released-1;
    the sites' vesicles are drawn alike, so which ones release does not matter."""
    out = []
    for gate, (i, k) in enumerate(cm.feedback_stimuli):
        tr = cm.model.trains[i]
        rel = tr.vesicle_at(float(tr.stimulus_times_ms()[k]), 1.0)
        for slot in range(tr.plasticity.n_sites if tr.plasticity else 1):
            grp = _release_group(cm, rel, rng)
            if grp is not None:
                out.append((rel, grp, gate, slot))
    return out


def _release_group(cm: CompiledModel, rel, rng):
    """(times, counts, x, y, z, species, into-volume) of one release, or None when it does not
    happen (its probability) or releases nothing."""
    g = cm.model.geometry
    if rel.probability < 1.0 and rng.random() >= rel.probability:
        return None
    n = _molecule_count(rel, rng)
    if n <= 0:
        return None
    t0 = rel.time_ms * 1000.0
    if rel.pore_tau_ms > 0:
        times = t0 + rng.exponential(rel.pore_tau_ms * 1000.0, size=n)
        times = times[times <= cm.model.timing.duration_ms * 1000.0]
        counts = np.ones(len(times), dtype=np.int64)
    else:
        times, counts = np.array([t0]), np.array([n], dtype=np.int64)
    sp = cm.species_index[rel.species] if rel.species else 0
    if rel.into == "volume":
        pos = rel.position_um if rel.position_um is not None else (g.varicosity_radius_um * (1 + 1e-9), 0.0, 0.0)
        xyz, vol = (pos[0], pos[1], pos[2]), 1
    else:
        pos = rel.position_um if rel.position_um is not None else (0.0, 0.0)
        xyz, vol = (pos[0], pos[1], g.cleft_height_um * (1.0 - 1e-9)), 0
    return (times, counts, *xyz, sp, vol)


def _at_random_position(rel, grp, rng):
    """The group moved to a release position drawn uniformly over the disk of
    ``rel.random_position_radius_um`` (r = R√u, θ = 2πv). Drawn after every other draw of the run,
    so that models without random positions draw exactly what they drew before."""
    radius = rel.random_position_radius_um
    if radius == 0:
        return grp
    r, theta = radius * np.sqrt(rng.random()), 2.0 * np.pi * rng.random()
    return (grp[0], grp[1], r * np.cos(theta), r * np.sin(theta), *grp[4:])


def plastic_train_vesicles(train, rng) -> np.ndarray:
    """Vesicles released at each stimulus of a train with short-term plasticity, drawn with the
    stochastic Tsodyks–Markram scheme (:class:`mcsyn.model.ShortTermPlasticity`): per stimulus,
    Binomial(filled sites, u_n) releases, then Binomial(empty sites, 1 − exp(−Δt/τ_rec)) refills."""
    stp = train.plasticity
    u = train.stimulus_probability
    stay_empty, facil = stp.carry_over(train.interval_ms)
    filled, u_n = stp.n_sites, u
    out = np.zeros(train.n_stimuli, dtype=np.int64)
    for k in range(train.n_stimuli):
        out[k] = rng.binomial(filled, u_n)
        filled -= out[k]
        if k + 1 < train.n_stimuli:
            filled += rng.binomial(stp.n_sites - filled, 1.0 - stay_empty)
            u_n = u + u_n * (1.0 - u) * facil
    return out


def _plastic_train_releases(train, rng) -> list:
    """The vesicles a plastic train releases in this run, as Releases that happen for sure."""
    counts = plastic_train_vesicles(train, rng)
    return [train.vesicle_at(float(t), 1.0) for t, n in zip(train.stimulus_times_ms(), counts) for _ in range(n)]


def _molecule_count(rel, rng) -> int:
    """The number of molecules one fusion releases (fixed, Poisson or gamma around the mean)."""
    if rel.molecule_distribution == "poisson":
        return int(rng.poisson(rel.molecules))
    if rel.quantal_cv > 0 or rel.molecule_distribution == "gamma":
        cv = rel.quantal_cv
        return int(round(rng.gamma(1.0 / cv ** 2, rel.molecules * cv ** 2))) if cv > 0 else int(round(rel.molecules))
    return int(round(rel.molecules))
