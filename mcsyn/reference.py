"""A slow, plain-numpy reference implementation of mcsyn's physics, for checking the kernel.

This module is written to be *read*. It re-implements, from the physical description and without
importing the compiled kernel or ``mcsyn.compile``, what one run of the Cython kernel does, so that
tests can compare the two statistically (``tests/test_reference.py``). It is vectorised over
molecules (one numpy operation per rule per time step) and is therefore far slower than the kernel;
use it with a few thousand molecules and a few thousand steps.

Units: lengths in µm, times in µs, diffusion coefficients *given* in µm²/ms (the model's unit)
and converted here with D[µm²/µs] = D[µm²/ms] / 1000, first-order rates given in s⁻¹, binding rate
constants in M⁻¹ s⁻¹.

The slab (cleft)
----------------
Free molecules live in 0 <= z <= h between the postsynaptic membrane (z = 0) and the presynaptic
membrane (z = h). Each time step Δt every free molecule takes a straight Gaussian step with per-axis
standard deviation σ = sqrt(2 D Δt). In z both membranes reflect: the end point is folded back into
[0, h] (mirror images of the slab at z = k h, k integer). Laterally the cleft ends at r = R:

* ``rim="closed"``: the rim reflects specularly: the part of the straight lateral step beyond the
  point where it leaves the disk is mirrored in the rim's tangent there (see
  :func:`reflect_specularly`). A membrane crossing that falls beyond the rim is taken at its radial
  mirror image r -> 2R - r;
* ``rim="open"``: the rim absorbs. A molecule whose end point has r >= R escapes; one whose start and
  end points are both inside escapes with the Brownian-bridge probability exp(-2 d0 d1 / σ²), where
  d0, d1 are the distances of the two points to the rim (a planar approximation of the chance that
  the continuous path touched the rim during the step).

Membrane sites sit on a square grid of tiles of side ``tile`` covering [-G, G]² (G = half the grid
width); a site occupies the whole tile it sits on. Seen in the unfolded slab, a step from z0 to
z0 + dz crosses the image planes z = k h lying between the two points; each crossing is one *hit*
on the postsynaptic (k even) or presynaptic (k odd) membrane, at the lateral point where the
straight step crosses that plane. Hits are processed in order along the step. A hit on a tile whose
site can bind the molecule binds it with the per-hit probability

    p = k_on / (N_A · tile²) · sqrt(π Δt / D)          (see :func:`per_hit_probability`)

which makes the mean binding rate of a site exposed to a uniform concentration c equal to k_on c
(up to the O(p) loss when one site is hit more than once in a step).
A bound molecule leaves the free pool; the rest of its step is ignored.

Site kinetics follow a :class:`mcsyn.schemes.KineticScheme`. First-order exits from a state (unbind,
uptake, degrade, first_order, efflux) are taken here with the per-step probability
1 - exp(-K Δt) (K = total exit rate of the state) at every step boundary after the state was
entered, the branch then chosen in proportion to the rates. A binding happens at the time the step
crosses the membrane, t_n + f Δt (f the fraction of the step before the crossing), so the first
check, at the boundary that ends the binding step, uses the rest of the step only:
1 - exp(-K (1 - f) Δt). (The kernel instead draws an exact exponential waiting time from the
crossing time and executes it at the first boundary at or after it; for R + A <-> AR the two agree in
distribution. After a first-order transition the kernel starts the next waiting time at the exact
event time, between boundaries, and may run two transitions at one boundary; here the next check is
one boundary later with a whole step: an O(K Δt) difference for multi-state schemes.)
A released molecule (unbind, efflux) is placed by the time reversal of a hit, which keeps detailed
balance with the per-hit binding probability. Among uniformly spread molecules, those whose step
crosses the membrane at the site's tile cross it uniformly over the tile, started a uniform fraction
f of the step away from it, and have |Δz| with density ∝ |Δz| φ(Δz / σ) (a Rayleigh law: the
chance to cross grows with |Δz|). So, with f ~ U(0, 1), (u1, u2) uniform on the tile around the
site's centre (x_s, y_s), n1, n2 ~ N(0, 1) and ρ = sqrt(-2 ln U) (Rayleigh), the molecule reappears
at (x_s + u1 - f σ n1, y_s + u2 - f σ n2, f σ ρ) for a postsynaptic site (z = h - f σ ρ for a
presynaptic one), folded into the slab and mirrored radially at the rim if beyond it. It then takes
its first step in the same time step.

Order of operations per time step t_n = n Δt (the kernel's order): site transitions due at t_n ->
sample the counters (every ``sample_every`` steps) -> for every free molecule: first-order removal
(``removal_per_s``), step, membrane hits, fold, rim.
After the last step, transitions due at the end are made and a last sample is taken.

With these conventions a one-site receptor's bound/free odds at equilibrium are k_on c / k_off: a free
site binds with probability k_on c Δt per step, with the crossing fraction f uniform on (0, 1), so the
chance to stay bound through the rest of the binding step, E[exp(-k_off (1 - f) Δt)], is exactly
(1 - exp(-k_off Δt)) / (k_off Δt), which cancels the discretisation of the unbinding.

Known differences from the kernel, all O(Δt) or rarer than one in 10⁴ steps: molecules hitting the
same site in one step are processed in crossing-rank order (all first crossings of all molecules,
then all second crossings, ...) instead of molecule by molecule; the kernel skips the bridge test for
end points more than 4σ inside the rim; multi-state schemes as described above.

The homogenised volume
----------------------
:func:`simulate_volume`: free diffusion with D* = D / λ² (λ the tortuosity) in the spherical shell
R_inner < |x| < R_domain. The inner sphere (the presynaptic varicosity) reflects radially,
|x| -> 2 R_inner - |x|; the outer sphere absorbs (escaped), with the same bridge correction as the
open rim. Optional first-order removal (e.g. enzymatic degradation) with rate k per molecule.

Not covered here: the band geometry, molecules passing from the cleft rim into the volume, volume
sites, several species, release schedules other than one burst at t = 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

AVOGADRO_PER_MOL = 6.02214076e23
UM3_PER_LITRE = 1e15

# kinds of first-order exits from a site state
_EXIT_KINDS = ("unbind", "first_order", "uptake", "degrade", "efflux")


# ==================================================================================================
# unit conversions and the binding probability

def kon_um3_per_us(kon_per_M_per_s: float) -> float:
    """k_on in M⁻¹ s⁻¹ -> µm³ per molecule per µs (1 L = 1e15 µm³, 1 s = 1e6 µs)."""
    return kon_per_M_per_s * UM3_PER_LITRE / AVOGADRO_PER_MOL * 1e-6


def per_hit_probability(kon_per_M_per_s: float, tile_um: float, dt_us: float,
                        diffusion_um2_per_ms: float) -> float:
    """Binding probability for one hit on the tile of a site that can bind.

    Next to a flat membrane at uniform concentration c (molecules/µm³), straight Gaussian steps
    cross each µm² of membrane c · E[max(-Δz, 0)] = c · sqrt(D Δt / π) times per step. A site
    should bind k_on c Δt molecules per step, and it receives the hits on its tile (area tile²),
    so p = k_on Δt / (tile² sqrt(D Δt / π)) = k_on / tile² · sqrt(π Δt / D). Computed in µm and µs.
    """
    d_um2_per_us = diffusion_um2_per_ms / 1000.0
    return kon_um3_per_us(kon_per_M_per_s) * dt_us / (tile_um ** 2 * math.sqrt(d_um2_per_us * dt_us / math.pi))


# ==================================================================================================
# geometry rules

def fold_into_slab(z, h):
    """Mirror z into [0, h]: reflecting walls at 0 and h are the images of the slab with period 2h."""
    z = np.mod(z, 2.0 * h)
    return np.where(z > h, 2.0 * h - z, z)


def reflect_radially(x, y, radius):
    """Reflect points with r >= radius to r' = 2 radius - r, keeping their direction (x, y)/r."""
    r = np.hypot(x, y)
    outside = r >= radius
    scale = np.ones_like(r)
    scale[outside] = (2.0 * radius - r[outside]) / r[outside]
    return x * scale, y * scale


def reflect_specularly(x0, y0, x, y, radius):
    """Reflect lateral steps (x0, y0) -> (x, y) that end at r >= radius like light in a mirror: the
    part of the step beyond the point where it leaves the disk is mirrored in the rim's tangent
    there. (Mirroring the end point radially instead depletes the outermost half σ of a curved rim
    by ~5 %, so a uniform density would not stay uniform.) A step that would still end outside
    (only possible for steps longer than the disk) falls back to the radial mirror, clipped at 0.
    """
    x, y = np.array(x, dtype=float), np.array(y, dtype=float)
    out = np.hypot(x, y) >= radius
    if not out.any():
        return x, y
    px, py = x0[out], y0[out]
    dx, dy = x[out] - px, y[out] - py
    a = dx * dx + dy * dy
    b = px * dx + py * dy
    c = px * px + py * py - radius ** 2
    disc = b * b - a * c
    ok = (a > 0) & (disc >= 0)
    t = np.ones_like(a)
    t[ok] = (-b[ok] + np.sqrt(disc[ok])) / a[ok]          # where the step leaves the disk
    cx, cy = px + t * dx, py + t * dy
    rc = np.hypot(cx, cy)
    nx, ny = cx / rc, cy / rc                              # outward normal there
    wx, wy = x[out] - cx, y[out] - cy                      # the part of the step beyond the rim
    dot = wx * nx + wy * ny
    rx, ry = cx + wx - 2.0 * dot * nx, cy + wy - 2.0 * dot * ny
    r = np.hypot(rx, ry)
    again = r >= radius
    scale = np.maximum(0.0, (2.0 * radius - r[again]) / r[again])
    rx[again] *= scale
    ry[again] *= scale
    x[out], y[out] = rx, ry
    return x, y


def bridge_hit_probability(d0, d1, sigma):
    """Chance that a Brownian path from distance d0 to d1 inside a flat absorbing wall touched the
    wall during a step with per-axis sd ``sigma``: exp(-2 d0 d1 / σ²) (1 if either point is out)."""
    d0 = np.asarray(d0, dtype=float)
    d1 = np.asarray(d1, dtype=float)
    inside = (d0 > 0) & (d1 > 0)
    return np.where(inside, np.exp(-2.0 * np.clip(d0, 0, None) * np.clip(d1, 0, None) / sigma ** 2), 1.0)


def plane_crossings(z0, dz, h):
    """The image planes z = k h that a straight step from z0 to z0 + dz crosses, in order.

    Returns ``(k_first, n_cross, direction)``: the first plane index crossed, the number of planes
    crossed and +1/-1 for the step's direction; the j-th crossing is plane k_first + j · direction.
    Upward steps cross the planes with z0 < k h <= z0 + dz, downward steps those with
    z0 + dz <= k h < z0.
    """
    z1 = z0 + dz
    up = dz > 0
    k_first = np.where(up, np.floor(z0 / h) + 1, np.ceil(z0 / h) - 1).astype(np.int64)
    k_last = np.where(up, np.floor(z1 / h), np.ceil(z1 / h)).astype(np.int64)
    direction = np.where(up, 1, -1)
    n_cross = np.maximum((k_last - k_first) * direction + 1, 0)
    return k_first, n_cross, direction


# ==================================================================================================
# kinetic schemes as small tables

@dataclass
class SchemeTables:
    """A single-species kinetic scheme as arrays over its states (state 0 is the ground state).

    ``bind_p[s, j]`` is the per-hit probability of the j-th binding transition from state s (0 for
    padding) and ``bind_to[s, j]`` its target; ``exit_rate[s, j]`` (per µs), ``exit_to[s, j]`` and
    ``exit_kind[s, j]`` (index into ``_EXIT_KINDS``) describe the first-order exits.
    """

    states: list
    ligands: np.ndarray
    bind_p: np.ndarray
    bind_to: np.ndarray
    exit_rate: np.ndarray
    exit_to: np.ndarray
    exit_kind: np.ndarray

    @property
    def exit_total(self):
        return self.exit_rate.sum(axis=1)


def scheme_tables(scheme, dt_us: float, tile_um: float, diffusion_um2_per_ms: float) -> SchemeTables:
    """Tables of a :class:`mcsyn.schemes.KineticScheme` (one transmitter species) for one time step."""
    if len(scheme.species()) > 1:
        raise ValueError(f"the reference handles one transmitter species; {scheme.name} uses {scheme.species()}")
    states = list(scheme.states)
    index = {s: i for i, s in enumerate(states)}
    lig = scheme.ligands()
    binds = [[] for _ in states]
    exits = [[] for _ in states]
    for tr in scheme.transitions:
        src, dst = index[tr.source], index[tr.target]
        if tr.kind == "bind":
            binds[src].append((per_hit_probability(tr.rate, tile_um, dt_us, diffusion_um2_per_ms), dst))
        else:
            exits[src].append((tr.rate * 1e-6, dst, _EXIT_KINDS.index(tr.kind)))
    nb = max(1, max(len(b) for b in binds))
    ne = max(1, max(len(e) for e in exits))
    n = len(states)
    t = SchemeTables(states, np.array([lig[s] for s in states]), np.zeros((n, nb)), np.zeros((n, nb), int),
                     np.zeros((n, ne)), np.zeros((n, ne), int), np.zeros((n, ne), int))
    for s in range(n):
        for j, (p, dst) in enumerate(binds[s]):
            t.bind_p[s, j], t.bind_to[s, j] = p, dst
        for j, (rate, dst, kind) in enumerate(exits[s]):
            t.exit_rate[s, j], t.exit_to[s, j], t.exit_kind[s, j] = rate, dst, kind
    if np.any(t.bind_p.sum(axis=1) > 1.0):
        raise ValueError("per-hit binding probability > 1: use a smaller dt_us or a larger tile_um")
    return t


def one_site_tables(kon_per_M_per_s, koff_per_s, dt_us, tile_um, diffusion_um2_per_ms) -> SchemeTables:
    """R + A <-> AR without building a scheme object: state 0 = R (free), state 1 = AR (bound)."""
    p = per_hit_probability(kon_per_M_per_s, tile_um, dt_us, diffusion_um2_per_ms)
    if p > 1.0:
        raise ValueError(f"per-hit binding probability {p:.3g} > 1")
    return SchemeTables(["R", "AR"], np.array([0, 1]), np.array([[p], [0.0]]), np.array([[1], [0]]),
                        np.array([[0.0], [koff_per_s * 1e-6]]), np.array([[0], [0]]), np.array([[0], [0]]))


def _choose(weights, u):
    """Row-wise choice: the first column j with u < cumsum(weights)[j], or -1 if there is none."""
    cum = np.cumsum(weights, axis=1)
    hit = u[:, None] < cum
    return np.where(hit.any(axis=1), hit.argmax(axis=1), -1)


# ==================================================================================================
# results

@dataclass
class Result:
    """Counters sampled every ``sample_every`` steps, and the state at the end of the run.

    ``series`` maps a name to an int array over ``times_ms``: ``released``, ``free``, ``bound``
    (bound molecules, i.e. sum of ligands over sites), ``escaped``, ``taken_up``, ``degraded``
    (first-order removal of free molecules plus degrade exits of sites), ``binding_events``, and
    for runs with sites ``state:<name>``, the number of sites in each scheme state.
    ``positions`` (n_free, 3) are the final positions of free molecules, ``site_state`` the final
    state indices of the sites and ``escape_times_us`` the end time of the step in which each
    escape happened.
    """

    times_ms: np.ndarray
    series: dict
    positions: np.ndarray
    site_state: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    escape_times_us: np.ndarray = field(default_factory=lambda: np.zeros(0))


class _Counters:
    BASIC = ("released", "free", "bound", "escaped", "taken_up", "degraded", "binding_events")

    def __init__(self, extra=()):
        self.NAMES = self.BASIC + tuple(extra)
        self.values = dict.fromkeys(self.NAMES, 0)
        self.rows = []
        self.times = []

    def __getitem__(self, k):
        return self.values[k]

    def __setitem__(self, k, v):
        self.values[k] = v

    def sample(self, t_us):
        self.times.append(t_us * 1e-3)
        self.rows.append([self.values[k] for k in self.NAMES])

    def series(self):
        a = np.array(self.rows, dtype=np.int64).reshape(-1, len(self.NAMES))
        return np.array(self.times), {k: a[:, j] for j, k in enumerate(self.NAMES)}


def _start_positions(n, start_xyz, default):
    pos = np.asarray(default if start_xyz is None else start_xyz, dtype=float)
    if pos.ndim == 1:
        pos = np.broadcast_to(pos, (n, 3))
    if pos.shape != (n, 3):
        raise ValueError(f"start_xyz must be (3,) or ({n}, 3), got {pos.shape}")
    return pos[:, 0].copy(), pos[:, 1].copy(), pos[:, 2].copy()


# ==================================================================================================
# the slab

def _remove_first_order(rng, removal_p, count, x, y, z):
    """Each free molecule is removed (counted as degraded) with probability removal_p this step."""
    if removal_p <= 0:
        return x, y, z
    keep = rng.random(len(x)) >= removal_p
    count["degraded"] += int(np.sum(~keep))
    return x[keep], y[keep], z[keep]


class _SlabSites:
    """The membrane sites of one slab run (positions, the tile map that finds the site under a hit,
    scheme states) and what they do: bind, make first-order exits, place the molecules they free."""

    def __init__(self, sites_xy, site_plane, tile_um, grid_half_um):
        sxy = np.zeros((0, 2)) if sites_xy is None else np.asarray(sites_xy, dtype=float).reshape(-1, 2)
        self.x, self.y = sxy[:, 0], sxy[:, 1]
        self.n = len(sxy)
        self.plane = np.zeros(self.n, int) if site_plane is None else np.asarray(site_plane, int)
        self.tables = None          # SchemeTables, set by simulate_slab
        self.tile = tile_um
        self.G = grid_half_um
        self.n_tile = int(round(2.0 * grid_half_um / tile_um))
        self.tile_map = np.full((2, self.n_tile, self.n_tile), -1, dtype=np.int64)   # [plane, ix, iy] -> site
        if self.n:
            ix = np.floor((self.x + self.G) / tile_um).astype(int)
            iy = np.floor((self.y + self.G) / tile_um).astype(int)
            if np.any((ix < 0) | (iy < 0) | (ix >= self.n_tile) | (iy >= self.n_tile)):
                raise ValueError("a site lies outside the tile grid")
            if np.any(self.tile_map[self.plane, ix, iy] >= 0) or len(set(zip(self.plane, ix, iy))) != self.n:
                raise ValueError("two sites share a tile")
            self.tile_map[self.plane, ix, iy] = np.arange(self.n)
        self.state = np.zeros(self.n, dtype=np.int64)
        # fraction of the current step left after each site's last binding (1 for sites that did not
        # bind during this step): its first exit check covers only that part of the step
        self.step_left = np.ones(self.n)

    def under(self, plane, x, y):
        """Index of the site on the tile under (x, y) of ``plane`` (0 post, 1 pre), or -1."""
        ix = np.floor((x + self.G) / self.tile).astype(np.int64)
        iy = np.floor((y + self.G) / self.tile).astype(np.int64)
        ok = (ix >= 0) & (iy >= 0) & (ix < self.n_tile) & (iy < self.n_tile)
        out = np.full(len(x), -1, dtype=np.int64)
        out[ok] = self.tile_map[plane[ok], ix[ok], iy[ok]]
        return out

    def place_released(self, rng, sites, sigma, h, R):
        """Positions for molecules released by ``sites``: the time reversal of a hit."""
        m = len(sites)
        f = rng.random(m)                                        # fraction of the step before the hit
        ux, uy = rng.uniform(-0.5 * self.tile, 0.5 * self.tile, (2, m))  # hit point on the tile
        n1, n2 = rng.standard_normal((2, m))                     # lateral step components
        rho = np.sqrt(-2.0 * np.log1p(-rng.random(m)))           # |Δz| / σ, Rayleigh
        px = self.x[sites] + ux - f * sigma * n1
        py = self.y[sites] + uy - f * sigma * n2
        dz = f * sigma * rho
        pz = np.where(self.plane[sites] == 0, dz, h - dz)
        px, py = reflect_radially(px, py, R)
        return px, py, fold_into_slab(pz, h)

    def transitions(self, rng, dt, count):
        """First-order exits of the sites due at this step boundary; returns the sites that set a
        molecule free (unbind and efflux exits)."""
        tables, state = self.tables, self.state
        busy = np.flatnonzero(tables.exit_total[state] > 0)
        leave = busy[rng.random(len(busy)) < -np.expm1(-tables.exit_total[state[busy]] * dt * self.step_left[busy])]
        if len(leave) == 0:
            return np.zeros(0, int)
        s = state[leave]
        j = _choose(tables.exit_rate[s], rng.random(len(leave)) * tables.exit_total[s])
        j = np.where(j < 0, 0, j)   # guards the u = total edge
        kind = tables.exit_kind[s, j]
        state[leave] = tables.exit_to[s, j]
        count["taken_up"] += int(np.sum(kind == _EXIT_KINDS.index("uptake")))
        count["degraded"] += int(np.sum(kind == _EXIT_KINDS.index("degrade")))
        count["released"] += int(np.sum(kind == _EXIT_KINDS.index("efflux")))
        emit = (kind == _EXIT_KINDS.index("unbind")) | (kind == _EXIT_KINDS.index("efflux"))
        return leave[emit]

    def try_bind(self, rng, mol, sites, frac):
        """Each molecule ``mol[i]`` hits site ``sites[i]`` at fraction ``frac[i]`` of its step;
        returns the mask of those that bind. A site takes one hit at a time (later hits see its
        new state)."""
        tables, state = self.tables, self.state
        bound = np.zeros(len(mol), dtype=bool)
        todo = np.ones(len(mol), dtype=bool)
        while todo.any():
            # one hit per site per pass, in random order among molecules hitting the same site
            order = rng.permutation(np.flatnonzero(todo))
            _, first = np.unique(sites[order], return_index=True)
            now = order[first]
            todo[now] = False
            s = sites[now]
            st = state[s]
            j = _choose(tables.bind_p[st], rng.random(len(now)))
            ok = j >= 0
            state[s[ok]] = tables.bind_to[st[ok], j[ok]]
            self.step_left[s[ok]] = 1.0 - frac[now[ok]]
            bound[now[ok]] = True
        return bound

    def count_states(self, count):
        count["bound"] = int(self.tables.ligands[self.state].sum())
        for i, name in enumerate(self.tables.states):
            count[f"state:{name}"] = int(np.sum(self.state == i))


def _membrane_hits(rng, sites, x, y, z, dx, dy, dz, alive, h, R, rim, count):
    """Bind molecules whose step (dx, dy, dz) from (x, y, z) hits a site, crossing by crossing in
    order along the step; a molecule that binds is no longer ``alive`` (its step ends there)."""
    k_first, n_cross, direction = plane_crossings(z, dz, h)
    for j in range(int(n_cross.max(initial=0))):
        mol = np.flatnonzero(alive & (n_cross > j))
        k = k_first[mol] + j * direction[mol]
        f = (k * h - z[mol]) / dz[mol]
        cx, cy = x[mol] + f * dx[mol], y[mol] + f * dy[mol]
        if rim == "closed":       # the step is reflected at the rim: so is its crossing
            cx, cy = reflect_radially(cx, cy, R)
        site = sites.under(np.mod(k, 2), cx, cy)
        hit = site >= 0
        if not hit.any():
            continue
        mol, site = mol[hit], site[hit]
        bound = sites.try_bind(rng, mol, site, f[hit])
        alive[mol[bound]] = False
        count["binding_events"] += int(bound.sum())


def _absorb_at_open_rim(rng, x0, y0, x, y, alive, R, sigma, count, escape_times, t_end):
    """Mask of the molecules whose step left the disk or, by the bridge rule, touched its rim; those
    still free escape (bound ones stopped at their site before the rim)."""
    r0, r1 = np.hypot(x0, y0), np.hypot(x, y)
    crossed = rng.random(len(x)) < bridge_hit_probability(R - r0, R - r1, sigma)
    leaving = alive & crossed
    count["escaped"] += int(leaving.sum())
    escape_times.extend([t_end] * int(leaving.sum()))
    return crossed


def simulate_slab(n_molecules: int, diffusion_um2_per_ms: float, *, n_steps: int, dt_us: float = 1.0,
                  h_um: float = 0.02, radius_um: float = 0.2, rim: str = "closed", start_xyz=None,
                  sites_xy=None, site_plane=None, scheme=None, kon_per_M_per_s: float | None = None,
                  koff_per_s: float = 0.0, tile_um: float = 0.01, grid_half_um: float | None = None,
                  removal_per_s: float = 0.0, sample_every: int = 1, rng=None, seed=None) -> Result:
    """Simulate ``n_molecules`` released at t = 0 into the slab; see the module docstring.

    Parameters
    ----------
    n_molecules : molecules released at t = 0 at ``start_xyz`` (µm; (3,) or (n, 3); default
        (0, 0, h (1 - 1e-9)), just under the presynaptic membrane, as the kernel releases them).
    diffusion_um2_per_ms : D in µm²/ms.
    n_steps, dt_us : number and length (µs) of time steps.
    h_um, radius_um : cleft height and radius (µm).
    rim : ``"closed"`` (reflecting) or ``"open"`` (absorbing, counted as escaped).
    sites_xy : (m, 2) lateral site positions in µm (tile centres), or None for no sites.
    site_plane : (m,) 0 for postsynaptic (z = 0, default), 1 for presynaptic (z = h).
    scheme : a :class:`mcsyn.schemes.KineticScheme`; or give ``kon_per_M_per_s`` (M⁻¹ s⁻¹) and
        ``koff_per_s`` (s⁻¹) for the one-site receptor R + A <-> AR.
    tile_um : tile side (µm); ``grid_half_um`` is G, the tile grid covers [-G, G]² (default:
        the kernel's, G = ceil(2 R / tile) · tile / 2).
    removal_per_s : first-order removal rate of free molecules (counted as degraded), s⁻¹.
    sample_every : sample the counters every this many steps (and at the end).
    rng / seed : a numpy Generator, or a seed for a new one.
    """
    if rim not in ("closed", "open"):
        raise ValueError(f"rim must be 'closed' or 'open', got {rim!r}")
    rng = rng if rng is not None else np.random.default_rng(seed)
    h, R, dt = h_um, radius_um, dt_us
    sigma = math.sqrt(2.0 * diffusion_um2_per_ms / 1000.0 * dt)          # µm per axis per step
    removal_p = -math.expm1(-removal_per_s * 1e-6 * dt)
    if grid_half_um is None:
        grid_half_um = 0.5 * math.ceil(2.0 * R / tile_um) * tile_um
    sites = _SlabSites(sites_xy, site_plane, tile_um, grid_half_um)
    tables = None
    if scheme is not None:
        tables = scheme_tables(scheme, dt, tile_um, diffusion_um2_per_ms)
    elif sites.n:
        if kon_per_M_per_s is None:
            raise ValueError("sites need a scheme or kon_per_M_per_s")
        tables = one_site_tables(kon_per_M_per_s, koff_per_s, dt, tile_um, diffusion_um2_per_ms)
    sites.tables = tables

    x, y, z = _start_positions(n_molecules, start_xyz, (0.0, 0.0, h * (1.0 - 1e-9)))
    count = _Counters([] if tables is None else [f"state:{name}" for name in tables.states])
    count["released"] = n_molecules
    escape_times = []
    for step in range(n_steps + 1):
        t = step * dt
        # -- site transitions due at t (none at t = 0: nothing has been in a state for a step yet)
        if step > 0 and tables is not None:
            emitted = sites.transitions(rng, dt, count)
            sites.step_left[:] = 1.0
            if len(emitted):
                px, py, pz = sites.place_released(rng, emitted, sigma, h, R)
                x, y, z = np.concatenate([x, px]), np.concatenate([y, py]), np.concatenate([z, pz])
        count["free"] = len(x)
        if tables is not None:
            sites.count_states(count)
        if step % sample_every == 0 or step == n_steps:
            count.sample(t)
        if step == n_steps:
            break

        x, y, z = _remove_first_order(rng, removal_p, count, x, y, z)
        dx, dy, dz = sigma * rng.standard_normal((3, len(x)))        # the Gaussian step
        alive = np.ones(len(x), dtype=bool)
        if sites.n:
            _membrane_hits(rng, sites, x, y, z, dx, dy, dz, alive, h, R, rim, count)
        x0, y0 = x, y
        x, y, z = x + dx, y + dy, fold_into_slab(z + dz, h)
        if rim == "closed":
            x, y = reflect_specularly(x0, y0, x, y, R)
        else:
            alive &= ~_absorb_at_open_rim(rng, x0, y0, x, y, alive, R, sigma, count, escape_times, t + dt)
        x, y, z = x[alive], y[alive], z[alive]

    times, series = count.series()
    return Result(times, series, np.column_stack([x, y, z]), sites.state.copy(), np.array(escape_times))


# ==================================================================================================
# the homogenised volume

def simulate_volume(n_molecules: int, diffusion_um2_per_ms: float, *, n_steps: int, dt_us: float = 10.0,
                    tortuosity: float = 1.0, inner_radius_um: float = 0.25, domain_radius_um: float = 5.0,
                    start_xyz=None, removal_per_s: float = 0.0, sample_every: int = 1,
                    rng=None, seed=None) -> Result:
    """Free diffusion in the shell R_inner < |x| < R_domain with D* = D / λ².

    Each step: first-order removal with probability 1 - exp(-k Δt) (counted as degraded), a
    Gaussian step with per-axis sd sqrt(2 D* Δt), escape if the end point is at or beyond the outer
    sphere or, by the bridge rule, if the path may have touched it, then radial reflection at the
    inner sphere. ``start_xyz`` defaults to just outside the inner sphere on the x axis.
    """
    rng = rng if rng is not None else np.random.default_rng(seed)
    dt = dt_us
    d_star = diffusion_um2_per_ms / tortuosity ** 2 / 1000.0             # µm²/µs
    sigma = math.sqrt(2.0 * d_star * dt)
    removal_p = -math.expm1(-removal_per_s * 1e-6 * dt)
    a, b = inner_radius_um, domain_radius_um
    x, y, z = _start_positions(n_molecules, start_xyz, (a * (1.0 + 1e-9), 0.0, 0.0))
    count = _Counters()
    count["released"] = n_molecules
    escape_times = []
    for step in range(n_steps + 1):
        t = step * dt
        count["free"] = len(x)
        if step % sample_every == 0 or step == n_steps:
            count.sample(t)
        if step == n_steps:
            break
        x, y, z = _remove_first_order(rng, removal_p, count, x, y, z)
        r0 = np.sqrt(x * x + y * y + z * z)
        x = x + sigma * rng.standard_normal(len(x))
        y = y + sigma * rng.standard_normal(len(y))
        z = z + sigma * rng.standard_normal(len(z))
        r1 = np.sqrt(x * x + y * y + z * z)
        out = rng.random(len(x)) < bridge_hit_probability(b - r0, b - r1, sigma)
        count["escaped"] += int(out.sum())
        escape_times.extend([t + dt] * int(out.sum()))
        x, y, z, r1 = x[~out], y[~out], z[~out], r1[~out]
        inside = r1 < a
        scale = np.ones_like(r1)
        scale[inside] = (2.0 * a - r1[inside]) / r1[inside]
        x, y, z = x * scale, y * scale, z * scale
    times, series = count.series()
    return Result(times, series, np.column_stack([x, y, z]), np.zeros(0, int), np.array(escape_times))
