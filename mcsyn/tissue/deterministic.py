"""Deterministic reaction-diffusion solution of a tissue field: the mean-field cross-check.

The extracellular space is homogenised (Nicholson & Syková 1998): molecules diffuse with the
effective coefficient ``D* = D / λ²`` and a molecule released into tissue of volume ``V`` raises
the extracellular concentration by ``1 / (N_A α V)``. The box is periodic, of side ``L``, cut into
``n³`` cubic cells; the Laplacian is the standard 7-point second difference (a sparse matrix).
Removal is Michaelis-Menten uptake ``Vmax C / (Km + C)`` (Vmax in µM of extracellular
concentration per second, as voltammetry reports it: Wightman & Zimmerman 1990) plus a
first-order term ``k C``. The system is integrated by ``scipy.integrate.solve_ivp`` from one
release event to the next; an instantaneous release adds its molecules to the cell that holds its
position. The default is the explicit RK45: the grid's stiffness (fastest rate ~12 D*/h², ~4,000 /s
for dopamine on 1 µm cells) is moderate, while a sparse LU of a periodic 3-D grid fills in badly
(BDF with the sparse Jacobian took 50 s where RK45 takes 0.1 s on a 20³ grid, 0.1 s simulated);
``method="BDF"`` or ``"Radau"`` (with that Jacobian) remain available for coarse grids and long times.

Where the particle picture's mean field is exact (first-order removal, or concentrations far below
Km), the ensemble mean of the stochastic field must agree with this solution within statistical
error; with Michaelis-Menten uptake near saturation the mean field is an approximation.

The mean field of a release-site field: :func:`tonic_sources` turns tonically firing varicosities
into steady sources (``f p q`` molecules per second each), :func:`stimulated_releases` an
electrical train into releases of ``p q`` at every site within a radius of the stimulating
electrode; :func:`tonic_level_uM` and :func:`clearance_half_time_s` read the tonic level and the
evoked clearance off a solution, for the comparison with the ensemble mean of the particle field.

Closed forms used to check the solver (``tests/test_tissue_analysis.py``):

* one instantaneous point source in a periodic box with first-order removal: the Gaussian image
  sum :func:`point_source_periodic_uM` (cell-averaged, so that it compares with a grid);
* constant uniform release ``R`` with Michaelis-Menten uptake: ``C* = Km R / (Vmax - R)``, and with
  a first-order term too the positive root of :func:`steady_state_uM`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.integrate import solve_ivp
from scipy.special import erf

from ..errors import ModelError, require_choice, require_count, require_nonnegative, require_positive, require_real

AVOGADRO_PER_MOL = 6.02214076e23
UM3_IN_LITRES = 1e-15


def molecules_to_uM(n_molecules, tissue_volume_um3, volume_fraction):
    """Extracellular concentration (µM) of ``n_molecules`` spread over ``tissue_volume_um3`` of
    tissue whose extracellular volume fraction is ``volume_fraction``."""
    litres = volume_fraction * tissue_volume_um3 * UM3_IN_LITRES
    return np.asarray(n_molecules, dtype=float) / AVOGADRO_PER_MOL / litres * 1e6


def competitive_km_uM(km_uM, inhibitor_uM, ki_uM):
    """Apparent Km under a competitive inhibitor: ``Km (1 + [I]/Ki)``, Vmax unchanged (the
    textbook competitive case; cocaine acts so on striatal DA uptake, Greco & Garris 2003)."""
    return require_positive("km_uM", km_uM) * (1.0 + require_nonnegative("inhibitor_uM", inhibitor_uM)
                                                / require_positive("ki_uM", ki_uM))


def steady_state_uM(release_uM_per_s, vmax_uM_per_s, km_uM, k_removal_per_s=0.0):
    """Steady concentration under a constant uniform source ``R``: the positive root of
    ``R = Vmax C / (Km + C) + k C``. Without first-order removal it is ``Km R / (Vmax - R)``, which
    exists only for ``R < Vmax`` (ModelError otherwise: the level grows without bound)."""
    r = require_nonnegative("release_uM_per_s", release_uM_per_s)
    vmax = require_nonnegative("vmax_uM_per_s", vmax_uM_per_s)
    km = require_positive("km_uM", km_uM)
    k = require_nonnegative("k_removal_per_s", k_removal_per_s)
    if k == 0.0:
        if r >= vmax:
            raise ModelError("release_uM_per_s", r, f"must be below vmax_uM_per_s = {vmax:g} for a steady state "
                                                    "without first-order removal")
        return km * r / (vmax - r)
    # k C² + (k Km + Vmax - R) C - R Km = 0
    b = k * km + vmax - r
    return (-b + math.sqrt(b * b + 4.0 * k * r * km)) / (2.0 * k)


@dataclass(frozen=True)
class FieldTransport:
    """How the extracellular space moves and removes transmitter (one set for the whole box)."""
    diffusion_um2_per_s: float        # free diffusion coefficient D
    tortuosity: float = 1.6           # λ (Nicholson & Syková 1998)
    volume_fraction: float = 0.2      # α (Nicholson & Syková 1998)
    vmax_uM_per_s: float = 0.0        # uptake Vmax, µM of extracellular concentration per s
    km_uM: float = 0.2                # uptake Km
    k_removal_per_s: float = 0.0      # first-order removal (diffusion out of the slab, enzymes, ...)

    def __post_init__(self):
        require_positive("transport.diffusion_um2_per_s", self.diffusion_um2_per_s)
        if require_positive("transport.tortuosity", self.tortuosity) < 1.0:
            raise ModelError("transport.tortuosity", self.tortuosity, "must be >= 1")
        if not 0.0 < require_positive("transport.volume_fraction", self.volume_fraction) <= 1.0:
            raise ModelError("transport.volume_fraction", self.volume_fraction, "must be in (0, 1]")
        require_nonnegative("transport.vmax_uM_per_s", self.vmax_uM_per_s)
        require_positive("transport.km_uM", self.km_uM)
        require_nonnegative("transport.k_removal_per_s", self.k_removal_per_s)

    @property
    def effective_diffusion_um2_per_s(self) -> float:
        return self.diffusion_um2_per_s / self.tortuosity ** 2


@dataclass(frozen=True)
class FieldSources:
    """Where transmitter enters: instantaneous releases (times, positions, molecules), steady point
    sources (positions, molecules per second: the mean of a Poisson-firing varicosity) and a uniform
    source in µM/s (tonic release spread evenly, or reversed transport)."""
    release_times_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    release_positions_um: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    release_molecules: np.ndarray = field(default_factory=lambda: np.zeros(0))
    steady_positions_um: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    steady_molecules_per_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    uniform_uM_per_s: float = 0.0


@dataclass(frozen=True)
class SphereDetector:
    """A detector region: the cells whose centres lie within ``radius_um`` of ``center_um``
    (periodic distance)."""
    center_um: tuple
    radius_um: float


@dataclass
class FieldSolution:
    times_s: np.ndarray
    box_mean_uM: np.ndarray
    detector_uM: dict
    final_field_uM: np.ndarray
    cell_um: float


def periodic_laplacian(n_cells: int, cell_um: float) -> sp.csr_matrix:
    """The 7-point Laplacian of an ``n³`` periodic grid (cells in C order), per µm²."""
    one_d = sp.diags([np.ones(n_cells - 1), -2.0 * np.ones(n_cells), np.ones(n_cells - 1)], [-1, 0, 1],
                     format="lil")
    one_d[0, n_cells - 1] += 1.0
    one_d[n_cells - 1, 0] += 1.0
    one_d = one_d.tocsr()
    eye = sp.identity(n_cells, format="csr")
    lap = (sp.kron(sp.kron(one_d, eye), eye) + sp.kron(sp.kron(eye, one_d), eye)
           + sp.kron(sp.kron(eye, eye), one_d))
    return (lap / cell_um ** 2).tocsr()


def _cell_index(positions_um, box_um, n_cells, what):
    pos = np.asarray(positions_um, dtype=float).reshape(-1, 3)
    if not np.all(np.isfinite(pos)) or np.any(pos < 0.0) or np.any(pos >= box_um):
        bad = int(np.flatnonzero(~np.all(np.isfinite(pos) & (pos >= 0.0) & (pos < box_um), axis=1))[0])
        raise ModelError(f"{what}[{bad}]", tuple(pos[bad]), f"must lie inside the box [0, {box_um:g}) µm")
    ijk = np.floor(pos / (box_um / n_cells)).astype(int) % n_cells
    return np.ravel_multi_index(ijk.T, (n_cells,) * 3)


def detector_mask(detector: SphereDetector, box_um: float, n_cells: int, name="detector") -> np.ndarray:
    """Boolean mask (flattened, C order) of the cells a :class:`SphereDetector` covers."""
    center = np.asarray(detector.center_um, dtype=float)
    if center.shape != (3,) or np.any(center < 0.0) or np.any(center >= box_um):
        raise ModelError(f"{name}.center_um", detector.center_um, f"must be a point inside the box [0, {box_um:g}) µm")
    radius = require_positive(f"{name}.radius_um", detector.radius_um, high=box_um / 2.0)
    h = box_um / n_cells
    axis = (np.arange(n_cells) + 0.5) * h
    grids = np.meshgrid(axis, axis, axis, indexing="ij")
    dist2 = np.zeros_like(grids[0])
    for g, c in zip(grids, center):
        d = np.abs(g - c)
        dist2 += np.minimum(d, box_um - d) ** 2
    mask = (dist2 <= radius ** 2).ravel()
    if not mask.any():
        raise ModelError(f"{name}.radius_um", radius, f"must reach at least one cell centre (cells are {h:g} µm)")
    return mask


def _check_sources(src: FieldSources):
    times = np.asarray(src.release_times_s, dtype=float).ravel()
    amounts = np.asarray(src.release_molecules, dtype=float).ravel()
    if times.size != amounts.size or np.asarray(src.release_positions_um).reshape(-1, 3).shape[0] != times.size:
        raise ModelError("sources.release_times_s", times.size,
                         "must have as many entries as release_positions_um rows and release_molecules")
    if np.any(~np.isfinite(times)) or np.any(times < 0.0):
        raise ModelError("sources.release_times_s", times, "must be finite times >= 0 s")
    if np.any(~np.isfinite(amounts)) or np.any(amounts < 0.0):
        raise ModelError("sources.release_molecules", amounts, "must be finite amounts >= 0")
    rates = np.asarray(src.steady_molecules_per_s, dtype=float).ravel()
    if np.asarray(src.steady_positions_um).reshape(-1, 3).shape[0] != rates.size or np.any(rates < 0.0):
        raise ModelError("sources.steady_molecules_per_s", rates,
                         "must be rates >= 0, one per steady_positions_um row")
    require_nonnegative("sources.uniform_uM_per_s", src.uniform_uM_per_s)
    return times, amounts, rates


def solve_field(box_um, n_cells, transport: FieldTransport, sources: FieldSources, t_eval_s,
                detectors=None, initial_uM=0.0, rtol=1e-6, atol_uM=1e-9, method="RK45") -> FieldSolution:
    """Integrate the field on an ``n_cells³`` periodic grid over ``t_eval_s`` (sorted, >= 0).

    ``detectors`` maps names to :class:`SphereDetector`; the solution holds each detector's mean
    concentration and the box mean (µM) at every time of ``t_eval_s``. A release at exactly an
    output time is counted as having happened (the output is right-continuous). ``initial_uM`` is a
    uniform starting level (e.g. :func:`steady_state_uM` for a tonic baseline).
    """
    box_um = require_positive("box_um", box_um)
    require_choice("method", method, ("RK45", "RK23", "DOP853", "BDF", "Radau"))
    n = require_count("n_cells", n_cells, low=3, high=64)
    t_eval = np.asarray(t_eval_s, dtype=float).ravel()
    if t_eval.size == 0 or np.any(~np.isfinite(t_eval)) or t_eval[0] < 0 or np.any(np.diff(t_eval) <= 0):
        raise ModelError("t_eval_s", t_eval_s, "must be increasing finite times >= 0 s")
    times, amounts, rates = _check_sources(sources)
    h = box_um / n
    cell_volume_um3 = h ** 3
    per_molecule_uM = float(molecules_to_uM(1.0, cell_volume_um3, transport.volume_fraction))
    masks = {name: detector_mask(d, box_um, n, name=f"detectors[{name!r}]") for name, d in (detectors or {}).items()}
    source = np.full(n ** 3, float(sources.uniform_uM_per_s))
    if rates.size:
        np.add.at(source, _cell_index(sources.steady_positions_um, box_um, n, "sources.steady_positions_um"),
                  rates * per_molecule_uM)
    release_cells = _cell_index(sources.release_positions_um, box_um, n, "sources.release_positions_um") \
        if times.size else np.zeros(0, dtype=int)

    operator = (transport.effective_diffusion_um2_per_s * periodic_laplacian(n, h)
                - transport.k_removal_per_s * sp.identity(n ** 3, format="csr")).tocsr()
    vmax, km = transport.vmax_uM_per_s, transport.km_uM

    def rhs(_t, c):
        return operator @ c - vmax * c / (km + c) + source

    if method in ("BDF", "Radau"):
        extra = {"jac": lambda _t, c: (operator - sp.diags(vmax * km / (km + c) ** 2)).tocsc()}
    else:
        extra = {}

    state = np.full(n ** 3, require_nonnegative("initial_uM", initial_uM))
    out = np.empty((t_eval.size, len(masks) + 1))
    order = np.argsort(times, kind="stable")
    times, release_cells, amounts = times[order], release_cells[order], amounts[order]
    breaks = np.unique(times[times <= t_eval[-1]])
    t_now, k_out, k_rel = 0.0, 0, 0
    for t_stop in list(breaks) + [None]:
        seg_end = t_eval[-1] if t_stop is None else t_stop
        last = t_stop is None
        wanted = t_eval[(t_eval >= t_now) & ((t_eval <= seg_end) if last else (t_eval < seg_end))]
        if seg_end > t_now:
            # the segment end is evaluated too: a release happens there, and it is the next start
            points = wanted if last else np.append(wanted, seg_end)
            sol = solve_ivp(rhs, (t_now, seg_end), state, method=method, t_eval=points, rtol=rtol,
                            atol=atol_uM, **extra)
            if not sol.success:
                raise RuntimeError(f"field integration failed near t = {t_now:g}-{seg_end:g} s: {sol.message}")
            state = sol.y[:, -1].copy()
            for column in sol.y.T[:wanted.size]:
                out[k_out] = _summaries(column, masks)
                k_out += 1
        else:
            for _ in wanted:
                out[k_out] = _summaries(state, masks)
                k_out += 1
        if last:
            break
        while k_rel < times.size and times[k_rel] == t_stop:
            state[release_cells[k_rel]] += amounts[k_rel] * per_molecule_uM
            k_rel += 1
        t_now = t_stop
    return FieldSolution(times_s=t_eval, box_mean_uM=out[:, 0],
                         detector_uM={name: out[:, i + 1] for i, name in enumerate(masks)},
                         final_field_uM=state.reshape((n,) * 3), cell_um=h)


def _summaries(column, masks):
    return [column.mean()] + [column[m].mean() for m in masks.values()]


def tonic_sources(site_positions_um, firing_rate_hz, release_probability, molecules_per_release) -> FieldSources:
    """The mean field of tonic Poisson firing: each site a steady source of ``f × p × q``
    molecules per second (e.g. 4 Hz, p = 0.06, q = 3000: Dreyer et al. 2010 via Kaya et al. 2018)."""
    sites = np.asarray(site_positions_um, dtype=float).reshape(-1, 3)
    rate = (require_nonnegative("firing_rate_hz", firing_rate_hz)
            * require_real("release_probability", release_probability, 0.0, 1.0, "a probability in [0, 1]")
            * require_nonnegative("molecules_per_release", molecules_per_release))
    return FieldSources(steady_positions_um=sites, steady_molecules_per_s=np.full(sites.shape[0], rate))


def stimulated_releases(site_positions_um, box_um, stim_center_um, stim_radius_um, pulse_times_s,
                        molecules_per_release, release_probability=1.0):
    """The mean-field releases of an electrical train: every site within ``stim_radius_um`` of the
    stimulating electrode (periodic distance) releases ``p × q`` molecules at every pulse, the
    expectation of a release with probability ``p`` of ``q`` molecules."""
    sites = np.asarray(site_positions_um, dtype=float).reshape(-1, 3)
    center = np.asarray(stim_center_um, dtype=float)
    if center.shape != (3,) or np.any(center < 0.0) or np.any(center >= box_um):
        raise ModelError("stim_center_um", stim_center_um, f"must be a point inside the box [0, {box_um:g}) µm")
    radius = require_positive("stim_radius_um", stim_radius_um, high=box_um / 2.0)
    d = np.abs(sites - center)
    recruited = sites[np.sum(np.minimum(d, box_um - d) ** 2, axis=1) <= radius ** 2]
    pulses = np.asarray(pulse_times_s, dtype=float).ravel()
    amount = require_nonnegative("molecules_per_release", molecules_per_release) * \
        require_real("release_probability", release_probability, 0.0, 1.0, "a probability in [0, 1]")
    return FieldSources(release_times_s=np.repeat(pulses, recruited.shape[0]),
                        release_positions_um=np.tile(recruited, (pulses.size, 1)),
                        release_molecules=np.full(pulses.size * recruited.shape[0], amount))


def tonic_level_uM(solution: FieldSolution, after_s, detector=None) -> float:
    """The time mean of the box (or a detector's) mean concentration over output times >= ``after_s``
    (once the start-up transient has passed)."""
    series = solution.box_mean_uM if detector is None else solution.detector_uM[detector]
    keep = solution.times_s >= after_s
    if keep.sum() < 2:
        raise ModelError("after_s", after_s,
                         f"must leave at least two output times (the last is {solution.times_s[-1]:g} s)")
    return float(np.trapezoid(series[keep], solution.times_s[keep]) / np.ptp(solution.times_s[keep]))


def clearance_half_time_s(times_s, series_uM, release_time_s) -> float:
    """Time from the peak after ``release_time_s`` until the excess over the pre-release level falls
    to half (linear interpolation; NaN when the series ends first)."""
    t, y = np.asarray(times_s, dtype=float), np.asarray(series_uM, dtype=float)
    before = y[t < release_time_s]
    base = float(before[-1]) if before.size else 0.0
    after = np.flatnonzero(t >= release_time_s)
    if after.size < 2:
        raise ModelError("release_time_s", release_time_s, "must leave at least two output times after it")
    i = int(after[np.argmax(y[after])])
    half = base + 0.5 * (y[i] - base)
    below = np.flatnonzero(y[i:] <= half)
    if below.size == 0:
        return math.nan
    j = i + int(below[0])
    return float(t[j - 1] + (y[j - 1] - half) / (y[j - 1] - y[j]) * (t[j] - t[j - 1]) - t[i])


def point_source_periodic_uM(n_molecules, source_um, box_um, n_cells, transport: FieldTransport, t_s,
                             n_images=None) -> np.ndarray:
    """Closed form: the cell averages (µM, an ``n³`` array) of one instantaneous point release at
    ``source_um`` after ``t_s`` in a periodic box with first-order removal (no MM uptake): the 3-D
    Gaussian of variance ``2 D* t`` per axis, summed over ``2 n_images + 1`` images per axis,
    times ``exp(-k t)``. By default enough images are summed to hold the Gaussian to 8 σ."""
    t = require_positive("t_s", t_s)
    h = box_um / n_cells
    sigma = math.sqrt(2.0 * transport.effective_diffusion_um2_per_s * t)
    if n_images is None:
        n_images = int(math.ceil(8.0 * sigma / box_um)) + 1
    edges = np.arange(n_cells + 1) * h
    factors = []
    for x0 in np.asarray(source_um, dtype=float):
        mass = np.zeros(n_cells)
        for image in range(-n_images, n_images + 1):
            z = (edges - x0 - image * box_um) / (sigma * math.sqrt(2.0))
            mass += 0.5 * np.diff(erf(z))
        factors.append(mass)
    fraction = np.einsum("i,j,k->ijk", *factors)
    return molecules_to_uM(n_molecules, h ** 3, transport.volume_fraction) * fraction \
        * math.exp(-transport.k_removal_per_s * t)


# ---------------------------------------------------------------------------------------------
# a pressure-ejected bolus at a distance from the electrode (spherical symmetry, no box)

PMOL_PER_NL_IN_UM = 1e3       # 1 pmol / nL = 1 mM
UM3_PER_NL = 1e6


@dataclass
class BolusSolution:
    times_s: np.ndarray
    at_electrode_uM: np.ndarray
    radius_of_bolus_um: float
    remaining_molecules_fraction: np.ndarray    # in the modelled sphere, of the ejected amount


def pressure_ejected_bolus(amount_pmol, ejection_volume_nl, distance_um, transport: FieldTransport, t_eval_s,
                           n_shells=400, outer_radius_um=None, rtol=1e-7) -> BolusSolution:
    """Concentration at ``distance_um`` from a pressure-ejected bolus (the chronoamperometry
    method of the serotonin clearance studies: Daws et al. 1997, J Neurosci Methods 78:139 [V abs]).

    The ejected volume fills extracellular space, so at ``t = 0`` the bolus is a tissue sphere of
    radius ``(3 V / (4 π α))^(1/3)`` at the pipette concentration ``amount / V``. It spreads by
    ``D*`` with Michaelis-Menten and first-order removal, solved on ``n_shells`` spherical shells
    (finite volumes, mass-conserving) out to ``outer_radius_um`` (default: the distance plus six
    diffusion lengths of the last time), where the concentration is held at zero.
    """
    amount = require_positive("amount_pmol", amount_pmol)
    volume_nl = require_positive("ejection_volume_nl", ejection_volume_nl)
    distance = require_positive("distance_um", distance_um)
    t_eval = np.asarray(t_eval_s, dtype=float).ravel()
    if t_eval.size == 0 or t_eval[0] < 0 or np.any(np.diff(t_eval) <= 0) or not np.all(np.isfinite(t_eval)):
        raise ModelError("t_eval_s", t_eval_s, "must be increasing finite times >= 0 s")
    d_eff = transport.effective_diffusion_um2_per_s
    r0 = (3.0 * volume_nl * UM3_PER_NL / (4.0 * math.pi * transport.volume_fraction)) ** (1.0 / 3.0)
    outer = outer_radius_um or (max(distance, r0) + 6.0 * math.sqrt(2.0 * d_eff * max(t_eval[-1], 1e-6)))
    if require_positive("outer_radius_um", outer) <= max(distance, r0):
        raise ModelError("outer_radius_um", outer,
                         f"must exceed the distance and the bolus radius ({max(distance, r0):g} µm)")
    n = require_count("n_shells", n_shells, low=20, high=100_000)
    edges = np.linspace(0.0, outer, n + 1)
    volumes = 4.0 / 3.0 * math.pi * np.diff(edges ** 3)
    h = edges[1]
    conductance = d_eff * 4.0 * math.pi * edges[1:] ** 2 / h       # per face, outwards; the last to C = 0
    upper = conductance[:-1] / volumes[:-1]                         # flux i+1 -> i
    lower = conductance[:-1] / volumes[1:]                          # flux i -> i+1
    diag = -(conductance / volumes) - np.r_[0.0, conductance[:-1]] / volumes
    operator = sp.diags([lower, diag - transport.k_removal_per_s, upper], [-1, 0, 1], format="csr")
    vmax, km = transport.vmax_uM_per_s, transport.km_uM
    inside = np.clip((np.minimum(edges[1:], r0) ** 3 - np.minimum(edges[:-1], r0) ** 3)
                     / np.diff(edges ** 3), 0.0, 1.0)
    c0 = inside * amount / volume_nl * PMOL_PER_NL_IN_UM
    sol = solve_ivp(lambda _t, c: operator @ c - vmax * c / (km + c), (0.0, t_eval[-1]), c0, method="BDF",
                    t_eval=t_eval, rtol=rtol, atol=1e-9,
                    jac=lambda _t, c: (operator - sp.diags(vmax * km / (km + c) ** 2)).tocsc())
    if not sol.success:
        raise RuntimeError(f"bolus integration failed: {sol.message}")
    centres = 0.5 * (edges[1:] + edges[:-1])
    at_electrode = np.array([np.interp(distance, centres, column) for column in sol.y.T])
    remaining = (volumes @ sol.y) / (volumes @ c0)
    return BolusSolution(t_eval, at_electrode, r0, remaining)


def uniform_sphere_release_uM(r_um, t_s, radius_um, c0_uM, transport: FieldTransport) -> np.ndarray:
    """Closed form (Crank, *The Mathematics of Diffusion*, 1975, eq. 3.8 [U]: recalled): a sphere of
    radius ``a`` at ``c0`` spreading in an infinite medium, times ``exp(-k t)`` for first-order
    removal (no MM uptake). With ``s = 2 sqrt(D* t)``:
    ``C = c0/2 [erf((a-r)/s) + erf((a+r)/s)] - c0 s / (2 r sqrt(π)) [e^-((a-r)/s)² - e^-((a+r)/s)²]``.
    """
    r = np.asarray(r_um, dtype=float)
    s = 2.0 * math.sqrt(transport.effective_diffusion_um2_per_s * require_positive("t_s", t_s))
    a = radius_um
    c = 0.5 * (erf((a - r) / s) + erf((a + r) / s)) \
        - s / (2.0 * r * math.sqrt(math.pi)) * (np.exp(-((a - r) / s) ** 2) - np.exp(-((a + r) / s) ** 2))
    return c0_uM * c * math.exp(-transport.k_removal_per_s * t_s)
