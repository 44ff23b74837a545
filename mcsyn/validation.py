"""``mcsyn validate``: quantitative checks of the engine against closed-form results and published data.

Every check is a function registered with :func:`register`; it returns one or more rows
(:class:`Check`) with the expected value, the measured value, the tolerance and a verdict:

* **physics checks** compare the Monte Carlo engine with an exact result (mean squared
  displacement, first-passage times, the Gaussian kernel of a point release in the homogenised
  extracellular space, binding rates, mass-action equilibria, Michaelis–Menten kinetics). Their
  tolerance is statistical: ``k`` standard errors (``k = 5`` unless a row says otherwise), with the
  standard error derived from the variance of the estimator and stated in the row. Seeds are
  fixed, so a verdict is reproducible; a physics error of a few percent moves the statistic by
  many standard errors.
* **published results** compare a preset with a number from the literature
  (``/work/shared/reference/parameters.md`` §7). Their tolerance is the literature range, and the
  row names the source. A failing published-result check is information about the model (its
  geometry and parameters), not necessarily an engine error; the row's note says what drives it.

``run_validation(quick=True)`` runs the subset marked quick (seconds; used by the test suite);
``run_validation()`` runs everything (a few minutes on two cores). ``write_report`` writes
``validation.csv`` and ``validation.md``; ``validate_command`` is what ``mcsyn validate`` calls and
returns the exit status (0: no check failed; 1: at least one failed). Checks that need the
pharmacology layer (:mod:`mcsyn.presets`, :mod:`mcsyn.drugs`) import it lazily and report
``skip`` when it is not available.

Where the checks find the engine's approximations (see each row's note):

* membrane hits are looked up at the crossing point of the *unreflected* straight step, so sites
  on tiles within a step length of a reflecting rim get fewer hits (``binding.rate_near_rim``), and
  the radial mirror at a curved reflecting rim leaves the outermost ~10 nm slightly depleted at
  dt = 1 µs (``diffusion.rim_uniformity``); sites on the PSD, away from the rim, are unaffected;
* volume sites are well mixed within a voxel; the radial reaction–diffusion comparison
  (``transporters.saturation``) measures what that costs near a point release;
* the Michaelis–Menten check runs the preset's DAT cycle on membrane sites in a closed slab with
  long steps (the only geometry where the concentration can be clamped for seconds), not through the
  volume's voxel hazards; ``transporters.linear_clearance`` covers the volume path;
* published-result checks use the presets as they are: their geometry (a 20 nm glial band for
  spillover, a 10 µm absorbing domain around one varicosity) decides as much as the physics.
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import optimize, special
from scipy.integrate import solve_ivp

from .compile import AVOGADRO_PER_MOL, UM3_PER_L, compile_model, kon_um3_per_s
from .model import Degradation, Geometry, Release, SiteGroup, Species, SynapseModel, Timing
from .schemes import one_site_receptor
from .simulate import run, run_one

Z = 5.0                         # standard errors allowed in a statistical check
D_GLU = 0.33                    # µm²/ms, glutamate (parameters.md §2)
D_DA = 0.763                    # µm²/ms, dopamine, free, 37 °C
MOLECULES_PER_M_UM3 = AVOGADRO_PER_MOL / UM3_PER_L   # molecules per µm³ at 1 M

COLUMNS = ["check", "category", "expected", "measured", "unit", "tolerance", "verdict", "se", "lower", "upper",
           "citation", "note", "wall_s", "quick"]
VERDICTS = ("pass", "fail", "skip")


# ======================================================================================================
# rows

@dataclass
class Check:
    """One row of the validation table.

    ``expected`` and ``measured`` are numbers in ``unit``; ``tolerance`` says in words what was
    allowed (``±5 SE = ...`` or a literature range); ``lower``/``upper`` are the bounds that decided
    the verdict (NaN where open); ``se`` is the standard error of ``measured`` where one exists.
    """

    name: str
    category: str
    expected: float
    measured: float
    tolerance: str
    verdict: str
    citation: str = ""
    note: str = ""
    unit: str = ""
    se: float = float("nan")
    lower: float = float("nan")
    upper: float = float("nan")
    wall_s: float = float("nan")
    quick: bool = False

    def as_row(self) -> dict:
        d = asdict(self)
        d["check"] = d.pop("name")
        return {c: d[c] for c in COLUMNS}


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def stat_check(name, category, expected, measured, se, unit="", how="", k=Z, citation="", note="") -> Check:
    """Pass when |measured − expected| <= k·SE."""
    ok = _finite(measured) and _finite(se) and abs(measured - expected) <= k * se
    tol = f"±{k:g} SE = ±{k * se:.3g} {unit}".rstrip() + (f" (SE: {how})" if how else "")
    return Check(name, category, float(expected), float(measured), tol, "pass" if ok else "fail", citation, note,
                 unit, float(se), expected - k * se, expected + k * se)


def range_check(name, category, measured, lower, upper, unit="", expected=None, se=float("nan"), citation="",
                note="", what="literature range") -> Check:
    """Pass when lower <= measured <= upper (either bound may be None: open)."""
    lo = -math.inf if lower is None else lower
    hi = math.inf if upper is None else upper
    ok = _finite(measured) and lo <= measured <= hi
    if lower is None:
        tol = f"{what}: < {hi:.4g} {unit}".rstrip()
    elif upper is None:
        tol = f"{what}: > {lo:.4g} {unit}".rstrip()
    else:
        tol = f"{what}: [{lo:.4g}, {hi:.4g}] {unit}".rstrip()
    if expected is None:
        expected = (lo + hi) / 2 if math.isfinite(lo) and math.isfinite(hi) else (hi if math.isfinite(hi) else lo)
    return Check(name, category, float(expected), float(measured), tol, "pass" if ok else "fail", citation, note,
                 unit, float(se), float(lo) if math.isfinite(lo) else float("nan"),
                 float(hi) if math.isfinite(hi) else float("nan"))


class SkipCheck(Exception):
    """Raised by a check whose prerequisites (a module, a preset, a drug) are not available."""


# ======================================================================================================
# registry

@dataclass(frozen=True)
class CheckSpec:
    name: str
    category: str
    func: Callable
    quick: bool
    needs: tuple
    description: str


REGISTRY: list[CheckSpec] = []


def register(name: str, category: str, quick: bool = False, needs: tuple = ()):
    """Decorator: add a check function ``f(ctx) -> list[Check]`` to the registry.

    ``quick`` marks it as part of the ``--quick`` subset; ``needs`` lists optional modules
    (``"presets"``, ``"drugs"``) whose absence turns the check into a ``skip`` row.
    """
    def deco(func):
        doc = " ".join((func.__doc__ or "").strip().split("\n\n")[0].split())
        REGISTRY.append(CheckSpec(name, category, func, quick, tuple(needs), doc))
        return func
    return deco


@dataclass
class Context:
    quick: bool = False
    workers: int = 2

    def n(self, quick_value, full_value):
        """Sample size for the current mode."""
        return quick_value if self.quick else full_value


def _module(name: str):
    """Import ``mcsyn.<name>`` lazily; raise SkipCheck when it is missing or broken."""
    try:
        return importlib.import_module(f"mcsyn.{name}")
    except Exception as exc:  # noqa: BLE001 - a half-written module may raise anything
        raise SkipCheck(f"mcsyn.{name} is not available ({exc.__class__.__name__}: {exc})") from None


def _require(mod, *attrs):
    for a in attrs:
        if not hasattr(mod, a):
            raise SkipCheck(f"{mod.__name__}.{a} is not available yet")


# ======================================================================================================
# helpers

def _slab_model(outside="closed", radius=0.2, molecules=2000, duration_ms=1.0, dt_us=1.0, sample_us=10.0,
                sites=(), psd=None, h=0.02, d=D_GLU, species="glutamate", releases=None, tile_um=0.01):
    geometry = Geometry(cleft_height_um=h, cleft_radius_um=radius,
                        psd_radius_um=psd if psd is not None else radius / 2, outside=outside)
    return SynapseModel(species=[Species(species, d)], geometry=geometry, sites=list(sites),
                        releases=releases if releases is not None else [Release(0.0, molecules)],
                        timing=Timing(duration_ms=duration_ms, dt_fine_us=dt_us, dt_volume_us=dt_us,
                                      sample_interval_us=sample_us), tile_um=tile_um)


def _point_volume_model(n, duration_ms, d=D_DA, alpha=0.21, tortuosity=1.54, domain_um=10.0, dt_volume_us=10.0,
                        sample_us=100.0, degradation_per_s=0.0, species="dopamine"):
    """A homogenised ECS around a 1 nm varicosity (a point source at the origin)."""
    geometry = Geometry(outside="volume", varicosity_radius_um=0.001, domain_radius_um=domain_um,
                        volume_fraction=alpha, tortuosity=tortuosity, cleft_radius_um=0.2, psd_radius_um=0.1)
    deg = [Degradation(degradation_per_s, region="volume")] if degradation_per_s > 0 else []
    return SynapseModel(species=[Species(species, d)], geometry=geometry, degradation=deg,
                        releases=[Release(0.0, n, into="volume", position_um=(0.001001, 0.0, 0.0))],
                        timing=Timing(duration_ms=duration_ms, dt_fine_us=1.0, dt_volume_us=dt_volume_us,
                                      sample_interval_us=sample_us))


def _positions(model, seed, n_runs, key, workers):
    """Final positions (``key``: "slab_positions" or "volume_positions") of ``n_runs`` runs."""
    cm = compile_model(model) if isinstance(model, SynapseModel) else model

    def one(i):
        return run_one(cm, seed=seed, run_index=i, keep_positions=True).positions[key]

    if workers > 1 and n_runs > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, range(n_runs)))
    return [one(i) for i in range(n_runs)]


def exit_time_moments(escaped, n, times_ms, dt_ms):
    """Mean and variance of the exit time from the survival curve (escapes are recorded at the end
    of their step: subtract half a step)."""
    survival = 1.0 - escaped / n
    mean = np.trapezoid(survival, times_ms) - dt_ms / 2
    second = 2 * np.trapezoid(times_ms * survival, times_ms)
    return mean, second - mean ** 2


def mass_action_mean_bound(n_molecules, n_sites, kon, koff, volume_um3):
    """Exact equilibrium mean of bound complexes for A + R ⇌ AR with small numbers:
    P(b+1)/P(b) = a (N − b)(S − b)/(b + 1), a = kon/(N_A V koff)."""
    a = kon_um3_per_s(kon) / (volume_um3 * koff)
    b = np.arange(min(n_molecules, n_sites) + 1)
    log_ratio = np.log(a) + np.log(n_molecules - b[:-1]) + np.log(n_sites - b[:-1]) - np.log(b[:-1] + 1)
    logp = np.concatenate([[0.0], np.cumsum(log_ratio)])
    p = np.exp(logp - logp.max())
    p /= p.sum()
    return float((b * p).sum())


def _gaussian_ball_fraction(r, var_per_axis):
    """P(|X| < r) for a 3-D isotropic Gaussian with variance ``var_per_axis`` per axis."""
    r = np.asarray(r, dtype=float)
    s = np.sqrt(2.0 * var_per_axis)
    x = r / s
    return special.erf(x) - 2.0 * x / np.sqrt(np.pi) * np.exp(-x * x)


def _ratio_of_sums(num, den):
    """R = Σnum/Σden over runs and its standard error (delta method over runs)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    n = len(num)
    r = num.sum() / den.sum()
    if n < 2:
        return r, float("nan")
    resid = num - r * den
    se = math.sqrt(resid.var(ddof=1) / n) / den.mean()
    return r, se


def _clearance_terms(ens, model):
    """Per run: (uptakes incl. the bound molecules that will be translocated, ∫free dt in s) for
    transporter cycles; their ratio is the first-order uptake rate (see drugs.clearance_rate_estimate)."""
    from .drugs import _cycle_rates  # the pharmacology layer owns the cycle parser
    t_s = ens.times_ms * 1e-3
    cols = ens.columns
    free = ens.series[:, :, cols.index("free")]
    integral = np.trapezoid(free, t_s, axis=1)
    taken = ens.series[:, -1, cols.index("taken_up")].astype(float)
    pending = np.zeros(len(taken))
    for g in model.sites:
        rates = _cycle_rates(g.scheme)
        col = f"{g.label}:bound"
        if rates is None or col not in cols:
            continue
        kon, koff, ktr, kret = rates[:4]
        pending += ens.series[:, -1, cols.index(col)] * ktr / (koff + ktr)
    return taken + pending, integral


def _parse(value, unit):
    from .units import parse_quantity
    return parse_quantity(value, unit, "validation")


def _sunflower(n, radius):
    k = np.arange(n) + 0.5
    r = np.sqrt(k / n) * radius
    th = k * 2.399963229728653
    return list(zip(r * np.cos(th), r * np.sin(th)))


# ======================================================================================================
# free diffusion

@register("diffusion.msd_slab", "free diffusion", quick=True)
def check_msd_slab(ctx):
    """Mean squared displacement per lateral axis in the cleft slab equals 2Dt (D = 0.33 µm²/ms,
    t = 1 ms, closed cleft of radius 10 µm so that the rim is never reached)."""
    t_ms, n = 1.0, ctx.n(50000, 200000)
    m = _slab_model(radius=10.0, molecules=n, duration_ms=t_ms, sample_us=100.0)
    pos = run_one(m, seed=11, keep_positions=True).positions["slab_positions"]
    expected = 2 * D_GLU * t_ms
    se = math.sqrt(2.0) * expected / math.sqrt(len(pos))
    return [stat_check(f"diffusion.msd_slab.{ax}", "free diffusion", expected, float(np.mean(pos[:, i] ** 2)), se,
                       "µm²", "sd of x² is √2·σ² for a Gaussian, / √N",
                       note=f"N = {len(pos)} molecules, dt = 1 µs, D = {D_GLU} µm²/ms, t = {t_ms} ms")
            for i, ax in enumerate("xy")]


@register("diffusion.msd_volume", "free diffusion", quick=True)
def check_msd_volume(ctx):
    """Mean squared displacement per axis in the homogenised ECS equals 2D*t with D* = D/λ²
    (D = 0.763 µm²/ms, λ = 1.54, t = 2 ms, coarse volume steps of 10 µs)."""
    t_ms, n, lam = 2.0, ctx.n(50000, 200000), 1.54
    m = _point_volume_model(n, t_ms, tortuosity=lam)
    pos = run_one(m, seed=12, keep_positions=True).positions["volume_positions"]
    d_star = D_DA / lam ** 2
    expected = 2 * d_star * t_ms
    se = math.sqrt(2.0) * expected / math.sqrt(len(pos))
    return [stat_check(f"diffusion.msd_volume.{ax}", "free diffusion", expected, float(np.mean(pos[:, i] ** 2)), se,
                       "µm²", "√2·σ²/√N", note=f"N = {len(pos)} (escaped: {n - len(pos)}), D* = {d_star:.4f} µm²/ms")
            for i, ax in enumerate("xyz")]


@register("diffusion.slab_uniformity", "free diffusion", quick=True)
def check_slab_uniformity(ctx):
    """Molecules fill the 20 nm slab uniformly across its height (reflection by folding): a
    chi-square over 20 bins of z stays below its mean + 5 sd."""
    n = ctx.n(20000, 100000)
    m = _slab_model(radius=10.0, molecules=n, duration_ms=0.2, sample_us=100.0)
    z = run_one(m, seed=13, keep_positions=True).positions["slab_positions"][:, 2]
    bins = 20
    counts, _ = np.histogram(z, bins=bins, range=(0, 0.02))
    exp = len(z) / bins
    chi2 = float(np.sum((counts - exp) ** 2 / exp))
    df = bins - 1
    limit = df + Z * math.sqrt(2 * df)
    inside = bool(z.min() >= 0 and z.max() <= 0.02)
    ok = chi2 <= limit and inside
    return [Check("diffusion.slab_uniformity", "free diffusion", float(df), chi2,
                  f"chi² <= df + {Z:g}·√(2 df) = {limit:.1f} (chi² with {df} df: mean {df}, sd √{2 * df})",
                  "pass" if ok else "fail", "", f"N = {len(z)}, 20 bins over h = 20 nm; all z in [0, h]: {inside}",
                  "chi²", math.sqrt(2 * df), float("nan"), limit)]


# ======================================================================================================
# first passage

@register("first_passage.disk", "first passage", quick=True)
def check_exit_disk(ctx):
    """Mean exit time from the centre of a disk with an absorbing rim (open cleft, R = 0.2 µm)
    equals R²/4D."""
    radius, dt_us = 0.2, 0.1
    tau = radius ** 2 / (4 * D_GLU)
    n = ctx.n(20000, 50000)
    m = _slab_model(outside="open", radius=radius, molecules=n, duration_ms=round(12 * tau, 3), dt_us=dt_us,
                    sample_us=dt_us)
    m.releases[0].position_um = (0.0, 0.0)
    r = run_one(m, seed=14)
    esc = r.series["escaped"].to_numpy()
    mean, var = exit_time_moments(esc, n, r.series.index.to_numpy(), dt_us * 1e-3)
    se = math.sqrt(var / n)
    return [stat_check("first_passage.disk", "first passage", tau * 1e3, mean * 1e3, se * 1e3, "µs",
                       "sd of the exit time / √N", note=f"N = {n}, dt = {dt_us} µs, escaped by the end: {esc[-1]}")]


@register("first_passage.sphere", "first passage", quick=True)
def check_exit_sphere(ctx):
    """Mean exit time from the centre of an absorbing sphere (R = 2 µm, homogenised volume with
    α = 1, λ = 1) equals R²/6D."""
    radius = 2.0
    tau = radius ** 2 / (6 * D_GLU)
    n = ctx.n(10000, 30000)
    m = _point_volume_model(n, round(10 * tau, 2), d=D_GLU, alpha=1.0, tortuosity=1.0, domain_um=radius,
                            sample_us=10.0, species="glutamate")
    r = run_one(m, seed=15)
    esc = r.series["escaped"].to_numpy()
    mean, var = exit_time_moments(esc, n, r.series.index.to_numpy(), 0.010)
    se = math.sqrt(var / n)
    return [stat_check("first_passage.sphere", "first passage", tau, mean, se, "ms", "sd of the exit time / √N",
                       note=f"N = {n}, volume step 10 µs, escaped by the end: {esc[-1]}")]


# ======================================================================================================
# point release into the homogenised ECS

def _shell_concentrations(pos, edges, alpha):
    r = np.linalg.norm(pos, axis=1)
    counts, _ = np.histogram(r, bins=edges)
    vol_ecs = alpha * 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return counts, vol_ecs


@register("ecs.point_release", "extracellular space", quick=True)
def check_point_release(ctx):
    """Point release into a homogenised ECS (α = 0.21, λ = 1.54) against the analytic
    C(r,t) = N e^{−r²/4D*t} e^{−kt} / [α N_A (4πD*t)^{3/2}], averaged over radial shells, without
    and with first-order removal (k = 200 s⁻¹); plus the surviving fraction e^{−kt}."""
    alpha, lam, t_ms = 0.21, 1.54, 2.0
    d_star = D_DA / lam ** 2
    n = ctx.n(20000, 100000)
    edges = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 4.5])
    report = [(1, 2), (2, 3), (3, 4)]          # shells [0.5,1], [1,2], [2,3] µm
    rows = []
    for k_per_s, seed in ((0.0, 21), (200.0, 22)):
        m = _point_volume_model(n, t_ms, alpha=alpha, tortuosity=lam, degradation_per_s=k_per_s)
        pos = run_one(m, seed=seed, keep_positions=True).positions["volume_positions"]
        counts, vol_ecs = _shell_concentrations(pos, edges, alpha)
        survive = math.exp(-k_per_s * t_ms * 1e-3)
        frac = np.diff(_gaussian_ball_fraction(edges, 2 * d_star * t_ms))
        p = survive * frac                    # probability that a released molecule is in the shell
        tag = "uptake" if k_per_s else "free"
        to_uM = 1e6 / (MOLECULES_PER_M_UM3 * vol_ecs)
        for a, b in report:
            i = a
            exp_c = n * p[i] * to_uM[i]
            se = math.sqrt(n * p[i] * (1 - p[i])) * to_uM[i]
            rows.append(stat_check(
                f"ecs.point_release.{tag}.r{edges[a]:g}-{edges[b]:g}um", "extracellular space", exp_c,
                counts[i] * to_uM[i], se, "µM", "binomial count in the shell",
                note=f"shell-averaged ECS concentration at t = {t_ms} ms, N = {n}, D* = {d_star:.4f} µm²/ms, "
                     f"k = {k_per_s:g} s⁻¹"))
        if k_per_s:
            f_meas = len(pos) / n
            se = math.sqrt(survive * (1 - survive) / n)
            rows.append(stat_check("ecs.point_release.uptake.surviving_fraction", "extracellular space", survive,
                                   f_meas, se, "", "binomial", note=f"e^(−kt), k = {k_per_s:g} s⁻¹, t = {t_ms} ms"))
    return rows


# ======================================================================================================
# binding

def _receptor_group(kon, koff, count, location="postsynaptic", species="glutamate"):
    return SiteGroup(one_site_receptor("R", species, kon, koff), location, count=count)


def _binding_rate_rows(name, m, seed, location, t_start, n_runs, workers, note):
    kon = m.sites[0].scheme.transitions[0].rate
    ens = run(m, n_runs=n_runs, seed=seed, workers=workers)
    t = ens.times_ms
    w = t >= t_start
    volume = m.geometry.cleft_volume_um3
    rate = kon_um3_per_s(kon) * 1e-3 / volume       # per molecule per site per ms
    cols = ens.columns
    free = ens.series[:, w, cols.index("free")]
    sites = ens.series[:, w, cols.index(f"R@{location}:R")]
    events = ens.series[:, w, cols.index("binding_events")]
    expected = float(sum(np.trapezoid(rate * free[i] * sites[i], t[w]) for i in range(n_runs)))
    observed = float((events[:, -1] - events[:, 0]).sum())
    return stat_check(name, "binding", 1.0, observed / expected, math.sqrt(expected) / expected, "",
                      "binding events are Poisson given the trajectory: √expected/expected",
                      note=f"observed/expected binding events = {observed:.0f}/{expected:.1f}; {note}")


@register("binding.rate_vs_kon", "binding", quick=True)
def check_binding_rate(ctx):
    """Binding events counted in a well-mixed closed cleft equal ∫ kon·C_free·S_free dt (kon = 10⁷
    M⁻¹ s⁻¹, 100 sites on the PSD, fast unbinding) for dt = 1 µs and dt = 0.25 µs."""
    rows = []
    for dt_us, seed in ((1.0, 31), (0.25, 32)) if not ctx.quick else ((1.0, 31),):
        m = _slab_model(radius=0.2, molecules=1000, duration_ms=2.5, dt_us=dt_us, sample_us=5.0,
                        sites=[_receptor_group(1e7, 1e5, 100)], psd=0.15)
        rows.append(_binding_rate_rows(f"binding.rate_vs_kon.dt{dt_us:g}us", m, seed, "postsynaptic", 0.5,
                                       ctx.n(2, 4), ctx.workers, f"dt = {dt_us} µs, sites on the PSD (r < 0.15 µm)"))
    return rows


def _tile_inside_fraction(radius, tile, sub=16):
    """Mean fraction of a candidate tile's area (tiles whose centre lies inside ``radius``) that lies
    inside the disk: the share of hits a uniformly placed site can receive."""
    n = int(math.ceil(2 * radius / tile))
    c = -0.5 * n * tile + (np.arange(n) + 0.5) * tile
    x, y = np.meshgrid(c, c, indexing="ij")
    cand = x ** 2 + y ** 2 < radius ** 2
    off = (np.arange(sub) + 0.5) / sub * tile - tile / 2
    inside = np.zeros_like(x)
    for dx in off:
        for dy in off:
            inside += (x + dx) ** 2 + (y + dy) ** 2 < radius ** 2
    return float((inside[cand] / sub ** 2).mean())


@register("binding.rate_near_rim", "binding")
def check_binding_rate_rim(ctx):
    """As binding.rate_vs_kon, but with the sites spread over the whole presynaptic face of a
    closed cleft, up to its reflecting rim (R = 0.3 µm, dt = 1 µs): probes membrane hits by steps
    that also reflect off the rim. The expected ratio is the mean share of a rim tile's area that
    lies inside the cleft (tiles are kept when their centre is inside)."""
    r = 0.3
    area = math.pi * r * r
    m = _slab_model(radius=r, molecules=0, duration_ms=4.0, dt_us=1.0, sample_us=10.0,
                    sites=[_receptor_group(1e7, 1e5, int(1000 * area), "presynaptic")], psd=r / 2,
                    releases=[Release(0.0, int(3000 * area) // 64, position_um=p) for p in _sunflower(64, r * 0.999)])
    row = _binding_rate_rows("binding.rate_near_rim", m, 33, "presynaptic", 0.8, 32, ctx.workers,
                             f"{int(1000 * area)} sites over the presynaptic face r < {r} µm (to the rim), dt = 1 µs; "
                             "binding.rate_vs_kon keeps its sites on the PSD, away from the rim")
    geo = _tile_inside_fraction(r, m.tile_um)
    return [stat_check(row.name, row.category, geo, row.measured, row.se, "", row.tolerance.split("(SE: ")[-1][:-1],
                       note=row.note + f"; expected = mean inside share of the candidate tiles ({geo:.4f})")]


@register("diffusion.rim_uniformity", "free diffusion")
def check_rim_uniformity(ctx):
    """At equilibrium a closed cleft (R = 0.3 µm, dt = 1 µs, reflecting rim) holds its molecules
    uniformly up to the rim: the fraction found in the outermost 10 nm annulus equals its share of
    the area."""
    r, w = 0.3, 0.01
    n_runs, n_per = 8, 50000
    m = _slab_model(radius=r, molecules=0, duration_ms=0.5, dt_us=1.0, sample_us=100.0, psd=r / 2,
                    releases=[Release(0.0, n_per // 64, position_um=p) for p in _sunflower(64, r * 0.999)])
    pos = np.concatenate(_positions(m, 37, n_runs, "slab_positions", ctx.workers))
    rr = np.hypot(pos[:, 0], pos[:, 1])
    p = 1 - ((r - w) / r) ** 2
    f = float(np.mean(rr >= r - w))
    inner = float(np.mean((rr >= r - 3 * w) & (rr < r - 2 * w)))
    p_inner = ((r - 2 * w) ** 2 - (r - 3 * w) ** 2) / r ** 2
    return [stat_check("diffusion.rim_uniformity", "free diffusion", 1.0, f / p, math.sqrt(p * (1 - p) / len(rr)) / p,
                       "", "binomial",
                       note=f"density in r > {r - w:g} µm relative to uniform, {len(rr)} molecules after 0.5 ms "
                            f"(σ = {math.sqrt(2 * D_GLU * 1e-3) * 1e3:.0f} nm per step); the annulus 20–30 nm inside "
                            f"the rim holds {inner / p_inner:.4f} of uniform")]


def closed_tissue_cell(molecules=3000, duration_ms=20.0, dt_volume_us=4.0, domain_um=0.6, varicosity_um=0.25,
                       release_into="cleft", volume_enters_cleft=None) -> SynapseModel:
    """A cleft opening onto a closed cell of tissue (reflecting sphere): nothing leaves, so the
    molecules settle at equal free concentration in cleft and extracellular space."""
    g = Geometry(outside="volume", varicosity_radius_um=varicosity_um, domain_radius_um=domain_um,
                 domain_boundary="reflecting", volume_enters_cleft=volume_enters_cleft)
    return SynapseModel(species=[Species("glutamate", D_GLU)], geometry=g,
                        releases=[Release(0.0, molecules, into=release_into)],
                        timing=Timing(duration_ms=duration_ms, dt_fine_us=1.0, dt_volume_us=dt_volume_us,
                                      sample_interval_us=100.0))


def cleft_share_at_equilibrium(g: Geometry) -> float:
    """V_cleft / (V_cleft + α V_shell): the cleft's share of the molecules in a closed cell."""
    v_ecs = g.volume_fraction * 4.0 / 3.0 * math.pi * (g.domain_radius_um ** 3 - g.varicosity_radius_um ** 3)
    return g.cleft_volume_um3 / (g.cleft_volume_um3 + v_ecs)


def cleft_share_per_run(ens, after_ms=5.0):
    """Each run's time-averaged share of free molecules in the cleft after ``after_ms``."""
    late = ens.times_ms > after_ms
    cleft = ens.series[:, late, ens.columns.index("free_cleft")].sum(axis=1)
    return cleft / (cleft + ens.series[:, late, ens.columns.index("free_volume")].sum(axis=1))


@register("ecs.cleft_volume_exchange", "ecs")
def check_cleft_volume_exchange(ctx):
    """A cleft opening onto a closed cell of tissue (varicosity 0.25 µm, reflecting sphere 0.6 µm,
    α 0.21) holds V_cleft / (V_cleft + α V_shell) of the molecules once mixed: molecules leave the
    cleft's rim into the volume and return through it at equal concentrations (detailed balance
    of the exchange)."""
    m = closed_tissue_cell()
    n_runs = ctx.n(8, 16)
    share = cleft_share_per_run(run(m, n_runs=n_runs, seed=36, workers=ctx.workers)) * 100
    return [stat_check("ecs.cleft_volume_exchange", "ecs", cleft_share_at_equilibrium(m.geometry) * 100,
                       float(share.mean()),
                       float(share.std(ddof=1) / math.sqrt(n_runs)), "%", f"sd of the per-run share / √{n_runs}",
                       note="time average over 5–20 ms of 3000 molecules released into the cleft; 4 µs volume steps")]


@register("binding.mass_action", "binding", quick=True)
def check_mass_action(ctx):
    """Reversible binding A + R ⇌ AR in a closed cleft (200 molecules, 100 sites, kon = 10⁷ M⁻¹ s⁻¹,
    koff = 10³ s⁻¹) settles at the exact small-number mass-action mean (detailed balance of the
    unbinding placement)."""
    kon, koff, n_mol, n_sites = 1e7, 1e3, 200, 100
    m = _slab_model(radius=0.2, molecules=n_mol, duration_ms=8.0, sample_us=50.0,
                    sites=[_receptor_group(kon, koff, n_sites)], psd=0.15)
    expected = mass_action_mean_bound(n_mol, n_sites, kon, koff, m.geometry.cleft_volume_um3)
    n_runs = ctx.n(12, 24)
    ens = run(m, n_runs=n_runs, seed=34, workers=ctx.workers)
    bound = ens.series[:, ens.times_ms >= 2.0, ens.columns.index("bound")]
    per_run = bound.mean(axis=1)
    se = per_run.std(ddof=1) / math.sqrt(n_runs)
    off = mass_action_mean_bound(n_mol, n_sites, 0.9 * kon, koff, m.geometry.cleft_volume_um3)
    return [stat_check("binding.mass_action", "binding", expected, float(per_run.mean()), se, "complexes",
                       f"sd of the per-run time average / √{n_runs}",
                       note=f"time average over 2–8 ms; a 10 % lower kon would give {off:.2f}")]


@register("binding.clamped_occupancy", "binding", quick=True)
def check_clamped_occupancy(ctx):
    """With the ligand clamped (2000 molecules in a closed cleft, 10 sites), the fraction of sites
    bound equals C/(C + K_D), C the time-averaged free concentration, K_D = koff/kon."""
    kon, n_mol, n_sites = 1e7, 2000, 10
    m0 = _slab_model(radius=0.2, molecules=n_mol, duration_ms=3.0, sample_us=10.0, psd=0.15)
    volume = m0.geometry.cleft_volume_um3
    c_nominal = n_mol / (MOLECULES_PER_M_UM3 * volume)
    rows = []
    ratios = (1.0,) if ctx.quick else (1.0, 1 / 3)
    for j, kd_over_c in enumerate(ratios):
        koff = kon * c_nominal * kd_over_c
        m = _slab_model(radius=0.2, molecules=n_mol, duration_ms=3.0, sample_us=10.0, psd=0.15,
                        sites=[_receptor_group(kon, koff, n_sites)])
        n_runs = ctx.n(8, 16)
        ens = run(m, n_runs=n_runs, seed=35 + j, workers=ctx.workers)
        w = ens.times_ms >= 0.3
        frac = ens.series[:, w, ens.columns.index("bound")].mean(axis=1) / n_sites
        c = ens.series[:, w, ens.columns.index("free")].mean(axis=1) / (MOLECULES_PER_M_UM3 * volume)
        kd = koff / kon
        expected_each = c / (c + kd)
        diff = frac - expected_each
        se = diff.std(ddof=1) / math.sqrt(n_runs)
        rows.append(stat_check(f"binding.clamped_occupancy.KD{kd * 1e3:.3g}mM", "binding",
                               float(expected_each.mean()), float(frac.mean()), se, "",
                               f"sd over {n_runs} runs of (measured − C/(C+K_D)) / √n",
                               note=f"C_free = {c.mean() * 1e3:.3f} mM, K_D = {kd * 1e3:.3g} mM, "
                                    f"{n_sites} sites, time average over 0.3–3 ms"))
    return rows


# ======================================================================================================
# transporters

def _preset_transporter(presets, preset, label):
    """(model, site group, (kon, koff, ktr, kret, Ti state)) of a preset's transporter group."""
    from .drugs import _cycle_rates
    model = presets.build(preset)
    groups = [g for g in model.sites if g.label == label]
    if not groups:
        raise SkipCheck(f"preset {preset!r} has no site group {label!r}")
    rates = _cycle_rates(groups[0].scheme)
    if rates is None:
        raise SkipCheck(f"preset {preset!r} group {label!r} is not a transporter cycle")
    return model, groups[0], rates


def _bulk_targets(presets, preset, label, model, group, rates):
    """(Vmax in M/s of ECS, Km in M, transporter concentration in M of ECS) claimed by the preset."""
    kon, koff, ktr, kret = rates[:4]
    kcat = ktr * kret / (ktr + kret)
    km = (koff + ktr) / kon * kret / (ktr + kret)
    t_ecs = group.density_per_um3 / (MOLECULES_PER_M_UM3 * model.geometry.volume_fraction)
    spec = presets.spec(preset)
    site = spec.get("sites", {}).get(label, {})
    vmax = _parse(site["vmax"], "M/s") if "vmax" in site else kcat * t_ecs
    return vmax, km, t_ecs, kcat


@register("transporters.michaelis_menten", "transporters", needs=("presets",))
def check_michaelis_menten(ctx):
    """Bulk Michaelis–Menten constants of the dorsal-striatal DAT recovered from the engine: the
    preset's DAT cycle runs at clamped dopamine concentrations (0.25–16 Km; a closed slab with
    many molecules and few carriers, carriers started near their steady state); a weighted fit of
    v = Vmax·S/(Km + S) to the per-carrier uptake rate, scaled by the preset's ECS carrier
    concentration, gives Km and Vmax."""
    presets = _module("presets")
    _require(presets, "build", "spec")
    preset = "dopaminergic_striatal"
    model, group, rates = _preset_transporter(presets, preset, "DAT")
    kon, koff, ktr, kret, ti = rates[:5]
    species = model.species[0]
    vmax, km, t_ecs, kcat = _bulk_targets(presets, preset, "DAT", model, group, rates)
    d = species.diffusion_um2_per_ms
    levels = (0.25, 1.0, 4.0) if ctx.quick else (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    n_mol = ctx.n(3000, 5000)
    target_uptakes = ctx.n(300, 500)
    burn_ms, window_ms = 250.0, 1500.0
    s_meas, v_meas, v_se, notes = [], [], [], []
    for j, rel in enumerate(levels):
        s = rel * km
        volume = n_mol / (s * MOLECULES_PER_M_UM3)
        radius = (volume / (0.3 * math.pi)) ** (1 / 3)          # slab of height 0.3 R
        h = 0.3 * radius
        sigma_max = min(radius / 5.0, h / 1.5)
        dt_us = max(x for x in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)
                    if math.sqrt(2 * d * x * 1e-3) <= sigma_max)
        f = s / (s + km)
        n_sites = int(round(target_uptakes / (kcat * f * window_ms * 1e-3)))
        # start the carriers near their steady state at S: T : TS : Ti = (koff + ktr)/(kon S) : 1 : ktr/kret
        a = kon * s
        w_t, w_ts, w_ti = (koff + ktr) / a, 1.0, ktr / kret
        init = {ti: w_ti / (w_t + w_ts + w_ti)}
        tile = 0.02
        sg = SiteGroup(group.scheme, "postsynaptic", count=n_sites, initial_state_fractions=init, name="DAT")
        rels = [Release(0.0, n_mol // 16, species=species.name, position_um=p) for p in _sunflower(16, 0.95 * radius)]
        m = SynapseModel(species=[species],
                         geometry=Geometry(cleft_height_um=h, cleft_radius_um=radius, psd_radius_um=radius / 2,
                                           outside="closed"),
                         sites=[sg], releases=rels, tile_um=tile,
                         timing=Timing(duration_ms=burn_ms + window_ms, dt_fine_us=float(dt_us),
                                       dt_volume_us=float(dt_us), sample_interval_us=5000.0))
        n_runs = 2
        ens = run(m, n_runs=n_runs, seed=41 + j, workers=ctx.workers)
        w = ens.times_ms >= burn_ms
        up = ens.series[:, w, ens.columns.index("taken_up")]
        uptakes = float((up[:, -1] - up[:, 0]).sum())
        real_volume = math.pi * radius ** 2 * h
        free = ens.series[:, w, ens.columns.index("free")].mean()
        s_meas.append(free / (MOLECULES_PER_M_UM3 * real_volume))
        site_seconds = n_runs * n_sites * window_ms * 1e-3
        v_meas.append(uptakes / site_seconds)
        v_se.append(math.sqrt(max(uptakes, 1.0)) / site_seconds)
        notes.append(f"{rel:g}Km: S = {s_meas[-1] * 1e6:.3g} µM, v = {v_meas[-1]:.3f} ± {v_se[-1]:.3f} s⁻¹/carrier")
    s_meas, v_meas, v_se = map(np.asarray, (s_meas, v_meas, v_se))
    popt, pcov = optimize.curve_fit(lambda x, k, K: k * x / (K + x), s_meas, v_meas, p0=(kcat, km), sigma=v_se,
                                    absolute_sigma=True)
    perr = np.sqrt(np.diag(pcov))
    resid = (v_meas - popt[0] * s_meas / (popt[1] + s_meas)) / v_se
    fit = (f"weighted fit: k_cat = {popt[0]:.4g} ± {perr[0]:.2g} s⁻¹ (cycle: {kcat:.4g}); chi²/df = "
           f"{np.sum(resid ** 2):.1f}/{len(levels) - 2}; {'; '.join(notes)}")
    how = "fit covariance from Poisson counts of uptakes (conservative: a multi-step cycle has Fano factor < 1)"
    src = "parameters.md §3b/§9.5; preset dopaminergic_striatal (Vmax Dreyer toolbox, Km Michael et al. 2005)"
    return [stat_check("transporters.michaelis_menten.Km", "transporters", km * 1e6, popt[1] * 1e6, perr[1] * 1e6,
                       "µM", how, citation=src, note=fit),
            stat_check("transporters.michaelis_menten.Vmax", "transporters", vmax * 1e6, popt[0] * t_ecs * 1e6,
                       perr[0] * t_ecs * 1e6, "µM/s", how + "; × [T]_ECS of the preset",
                       citation=src, note=f"[T]_ECS = {t_ecs * 1e6:.3f} µM from the preset's density "
                                          f"{group.density_per_um3:.1f} per µm³ of tissue, α = {model.geometry.volume_fraction}")]


@register("transporters.linear_clearance", "transporters", quick=True, needs=("presets",))
def check_linear_clearance(ctx):
    """In its own homogenised volume (voxel hazards, coarse steps) the dorsal-striatal preset clears
    a small release (100 molecules, linear regime) at the first-order rate Vmax/Km = 20 s⁻¹ that
    it is calibrated to: uptakes (plus bound molecules that will be translocated) / ∫free dt."""
    presets = _module("presets")
    _require(presets, "build", "spec")
    preset = "dopaminergic_striatal"
    base, group, rates = _preset_transporter(presets, preset, "DAT")
    vmax, km, t_ecs, kcat = _bulk_targets(presets, preset, "DAT", base, group, rates)
    model = presets.build(preset, **{"release.molecules": 100, "timing.duration_ms": 100.0})
    n_runs = ctx.n(48, 96)
    ens = run(model, n_runs=n_runs, seed=51, workers=ctx.workers)
    num, den = _clearance_terms(ens, model)
    k_hat = num.sum() / den.sum()
    se = math.sqrt(num.sum()) / den.sum()
    return [stat_check("transporters.linear_clearance", "transporters", vmax / km, k_hat, se, "s⁻¹",
                       "uptakes are Poisson given the free trajectory: √U/∫free",
                       citation="preset dopaminergic_striatal calibration (parameters.md §9.5)",
                       note=f"{n_runs} runs of 100 molecules, {num.sum():.0f} uptakes; Vmax/Km = "
                            f"{vmax * 1e6:.3g} µM/s / {km * 1e6:.3g} µM")]


def _radial_pde(model, n0, t_end_ms, t0_ms=0.02, dr_fine=0.02, r_fine=2.0, dr_coarse=0.1):
    """Deterministic reaction–diffusion (mean-field) solution of a point release of ``n0``
    molecules at the centre of a model with ``outside="volume"``: radial finite volumes, D* = D/λ²,
    absorbing at R_domain, every volume site group's scheme as local mass action (binding at
    kon·c_ECS per free site), first-order degradation in the volume. Starts from the free Gaussian
    at ``t0_ms``. Returns (times, taken_up, degraded, free) totals."""
    g = model.geometry
    sp = model.species[0]
    alpha = g.volume_fraction
    d_star = sp.diffusion_um2_per_ms / g.tortuosity ** 2
    big_r = g.domain_radius_um
    edges = np.unique(np.concatenate([np.arange(0.0, min(r_fine, big_r), dr_fine),
                                      np.arange(min(r_fine, big_r), big_r, dr_coarse), [big_r]]))
    centres = 0.5 * (edges[1:] + edges[:-1])
    vol = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    area = 4.0 * np.pi * edges[1:-1] ** 2
    gap = np.diff(centres)
    nc = len(centres)
    shell = 4.0 / 3.0 * np.pi * (big_r ** 3 - g.varicosity_radius_um ** 3)
    cm = compile_model(model)
    # per group: indices of its states in the local vector, density, transitions
    layout, reactions = [], []
    k_state = 1
    for (first, names), grp in zip(cm.group_states, model.sites):
        if grp.location != "volume":
            continue
        density = cm.site_count(grp) / shell
        idx = {s: k_state + j for j, s in enumerate(names)}
        fr = np.array([grp.initial_state_fractions.get(s, 0.0) for s in names])
        fr[0] += 1.0 - fr.sum()
        layout.append((idx, density, fr))
        for tr in grp.scheme.transitions:
            k = kon_um3_per_s(tr.rate) * 1e-3 if tr.kind == "bind" else tr.rate * 1e-3
            reactions.append((tr.kind, idx[tr.source], idx[tr.target], k))
        k_state += len(names)
    i_up, i_deg = k_state, k_state + 1
    nv = k_state + 2
    kdeg = sum(dg.rate_per_s * 1e-3 for dg in model.degradation
               if dg.region in ("volume", "all") and dg.species in (None, sp.name))
    y0 = np.zeros((nc, nv))
    frac = np.diff(_gaussian_ball_fraction(edges, 2 * d_star * t0_ms))
    y0[:, 0] = n0 * frac / vol
    for idx, density, fr in layout:
        for (s, i), f in zip(idx.items(), fr):
            y0[:, i] = density * f

    def rhs(t, y):
        y = y.reshape(nc, nv)
        dy = np.zeros_like(y)
        u = y[:, 0]
        flux = d_star * area * (u[:-1] - u[1:]) / gap
        dy[:-1, 0] -= flux / vol[:-1]
        dy[1:, 0] += flux / vol[1:]
        dy[-1, 0] -= d_star * 4 * np.pi * big_r ** 2 * u[-1] / (big_r - centres[-1]) / vol[-1]
        c = u / alpha
        for kind, src, dst, k in reactions:
            rate = k * c * y[:, src] if kind == "bind" else k * y[:, src]
            dy[:, src] -= rate
            dy[:, dst] += rate
            if kind == "bind":
                dy[:, 0] -= rate
            elif kind in ("unbind", "efflux"):
                dy[:, 0] += rate
            elif kind == "uptake":
                dy[:, i_up] += rate
            elif kind == "degrade":
                dy[:, i_deg] += rate
        if kdeg:
            dy[:, 0] -= kdeg * u
            dy[:, i_deg] += kdeg * u
        return dy.ravel()

    t_eval = np.linspace(t0_ms, t_end_ms, 201)
    sol = solve_ivp(rhs, (t0_ms, t_end_ms), y0.ravel(), method="LSODA", t_eval=t_eval, lband=nv, uband=nv,
                    rtol=1e-7, atol=1e-9)
    if not sol.success:
        raise RuntimeError(f"reaction–diffusion solution failed: {sol.message}")
    y = sol.y.reshape(nc, nv, -1)
    totals = lambda i: np.einsum("c,ct->t", vol, y[:, i, :])  # noqa: E731
    return sol.t, totals(i_up), totals(i_deg), totals(0)


@register("transporters.saturation", "transporters", needs=("presets",))
def check_saturation(ctx):
    """Transporters saturate at high release: in the dorsal-striatal preset (point release at the
    centre of a 1 nm varicosity) the fraction of a release taken up within 50 ms falls from a
    300-molecule to a 300,000-molecule release (about a hundred vesicles at once), by the amount a deterministic reaction–diffusion
    solution of the same scheme predicts (DAT, D1, D2 and non-DAT removal as local mass action)."""
    presets = _module("presets")
    _require(presets, "build")
    t_end = 50.0
    over = {"geometry.varicosity_radius_um": 0.001, "timing.duration_ms": t_end, "release.position_um": [0.0011, 0, 0]}
    rows, fr = [], {}
    for label, n0, n_runs, seed in (("low", 300, ctx.n(24, 48), 61), ("high", 300000, 3, 62)):
        model = presets.build("dopaminergic_striatal", **{**over, "release.molecules": n0})
        ens = run(model, n_runs=n_runs, seed=seed, workers=ctx.workers)
        f = ens.series[:, -1, ens.columns.index("taken_up")] / n0
        t, up, deg, free = _radial_pde(model, n0, t_end)
        pde = float(up[-1] / n0)
        se = f.std(ddof=1) / math.sqrt(n_runs)
        fr[label] = (float(f.mean()), se, pde)
        rows.append(stat_check(f"transporters.saturation.{label}_release", "transporters", pde, float(f.mean()), se,
                               "", f"sd of the per-run fraction / √{n_runs}",
                               note=f"fraction of {n0} molecules taken up within {t_end:g} ms; expected from the "
                                    f"radial reaction–diffusion solution"))
    (lo, lo_se, lo_pde), (hi, hi_se, hi_pde) = fr["low"], fr["high"]
    ratio = hi / lo
    se = ratio * math.sqrt((lo_se / lo) ** 2 + (hi_se / hi) ** 2)
    row = stat_check("transporters.saturation.ratio", "transporters", hi_pde / lo_pde, ratio, se, "",
                     "relative SEs in quadrature",
                     note=f"taken-up fraction high/low release; a linear (unsaturable) uptake would give 1; "
                          f"saturation shown: {ratio + Z * se < 1}")
    if not ratio + Z * se < 1:
        row.verdict = "fail"
    rows.append(row)
    return rows


# ======================================================================================================
# drugs

def _sert_states_at_zero(presets, drugs_, seed):
    """Fraction of SERT sites in each drug state at t = 0 of one run, and the number of sites."""
    m = presets.build("serotonergic", drugs=drugs_, **{"timing.duration_ms": 0.1, "timing.dt_volume_us": 100.0,
                                                      "timing.sample_interval_us": 100.0})
    s = run_one(m, seed=seed).series
    grp = [g for g in m.sites if g.label == "SERT"][0]
    cols = [f"SERT:{st}" for st in grp.scheme.states]
    n = float(s[cols].iloc[0].sum())
    out = {st: float(s[f"SERT:{st}"].iloc[0]) / n for st in grp.scheme.states}
    return out, n, m


@register("drugs.competitive_occupancy", "drugs", quick=True, needs=("presets", "drugs"))
def check_competitive_occupancy(ctx):
    """Equilibrium SERT occupancy in the serotonergic preset equals the competitive formula
    θ_i = (C_i/K_i)/(1 + Σ_j C_j/K_j): fluoxetine alone at the concentration for 80 % (from
    drugs.concentration_for_occupancy), and a fluoxetine + paroxetine mixture. Each site is drawn
    blocked per run; the measured fraction is over the preset's ~3.6·10⁵ SERT sites."""
    presets, drugs = _module("presets"), _module("drugs")
    _require(drugs, "concentration_for_occupancy")
    from . import library
    ki_f = library.drug("fluoxetine").ki_M["SERT"]
    ki_p = library.drug("paroxetine").ki_M["SERT"]
    c80 = drugs.concentration_for_occupancy("fluoxetine", "SERT", 0.8)
    rows = []
    occ, n, _ = _sert_states_at_zero(presets, {"fluoxetine": c80}, 71)
    theta = (c80 / ki_f) / (1 + c80 / ki_f)
    rows.append(stat_check("drugs.competitive_occupancy.fluoxetine80", "drugs", theta, occ["blocked:fluoxetine"],
                           math.sqrt(theta * (1 - theta) / n), "", "binomial over sites",
                           citation="parameters.md §5 (θ = C/(C+K_i))",
                           note=f"C = {c80 * 1e9:.3g} nM (K_i {ki_f * 1e9:.3g} nM), {n:.0f} SERT sites"))
    cf, cp = 2e-9, 0.3e-9
    denom = 1 + cf / ki_f + cp / ki_p
    occ, n, _ = _sert_states_at_zero(presets, {"fluoxetine": cf, "paroxetine": cp}, 72)
    for drug, c, ki in (("fluoxetine", cf, ki_f), ("paroxetine", cp, ki_p)):
        th = (c / ki) / denom
        rows.append(stat_check(f"drugs.competitive_occupancy.mixture.{drug}", "drugs", th, occ[f"blocked:{drug}"],
                               math.sqrt(th * (1 - th) / n), "", "binomial over sites",
                               citation="parameters.md §5 (competitive occupancy)",
                               note=f"fluoxetine {cf * 1e9:g} nM + paroxetine {cp * 1e9:g} nM"))
    return rows


def _clearance_ratio(presets, drugs_, theta_seed, n_runs, molecules, workers, duration_ms=300.0, **extra):
    m = presets.build("serotonergic", drugs=drugs_, **{"release.molecules": molecules,
                                                        "timing.duration_ms": duration_ms, **extra})
    ens = run(m, n_runs=n_runs, seed=theta_seed, workers=workers)
    num, den = _clearance_terms(ens, m)
    return num.sum() / den.sum(), math.sqrt(num.sum()) / den.sum(), ens, m


@register("drugs.clearance_slowing", "drugs", quick=True, needs=("presets", "drugs"))
def check_clearance_slowing(ctx):
    """In the linear regime (2000 molecules into the serotonergic preset's volume) a competitive
    SERT blocker at occupancy θ slows the uptake clearance rate by 1/(1 − θ) (fluoxetine at the
    concentrations for θ = 0.5, 0.8, 0.9)."""
    presets, drugs = _module("presets"), _module("drugs")
    _require(drugs, "concentration_for_occupancy")
    k0, se0, _, _ = _clearance_ratio(presets, None, 81, ctx.n(6, 12), 2000, ctx.workers)
    rows = []
    for j, theta in enumerate((0.8,) if ctx.quick else (0.5, 0.8, 0.9)):
        c = drugs.concentration_for_occupancy("fluoxetine", "SERT", theta)
        k, se, _, _ = _clearance_ratio(presets, {"fluoxetine": c}, 82 + j,
                                       ctx.n(12, int(round(12 / (1 - theta) / 2.5))), 2000, ctx.workers)
        ratio = k0 / k
        rse = ratio * math.sqrt((se0 / k0) ** 2 + (se / k) ** 2)
        rows.append(stat_check(f"drugs.clearance_slowing.theta{theta:g}", "drugs", 1 / (1 - theta), ratio, rse, "×",
                               "Poisson uptake counts, relative SEs in quadrature",
                               citation="parameters.md §5 (1/(1−θ) in the linear regime)",
                               note=f"k̂(control) = {k0:.3f} ± {se0:.3f} s⁻¹, k̂(θ) = {k:.3f} ± {se:.3f} s⁻¹; "
                                    f"fluoxetine {c * 1e9:.3g} nM"))
    return rows


# ======================================================================================================
# published results

CLEMENTS = "Clements 1996, TINS 19:163 (parameters.md §7 G1)"
BARBOUR = "Barbour 2001, J Neurosci 21:7969; neighbour at ~465 nm, Rusakov & Kullmann 1998 (parameters.md §7 G5)"
RICE_CRAGG = "Rice & Cragg 2008, Brain Res Rev 58:303 (parameters.md §7 D1)"
DAWS = "Daws et al. 2003 (SERT reserve; parameters.md §7 S4)"
MEYER = "Meyer et al. 2004, Am J Psychiatry 161:826; Meyer et al. 2001, 158:1843 (parameters.md §5c, §7 S4)"


@register("published.clements_peak", "published", quick=True, needs=("presets",))
def check_clements_peak(ctx):
    """Peak glutamate averaged over the PSD (r < R_psd, all heights) after one vesicle in the
    glutamatergic preset lies in the 1–5 mM of Clements 1996 (earliest sample, 2 µs)."""
    presets = _module("presets")
    _require(presets, "build")
    times = (0.002, 0.01, 0.02)
    model0 = presets.build("glutamatergic")
    g = model0.geometry
    n0 = model0.releases[0].molecules
    peaks = []
    for j, t in enumerate(times):
        m = presets.build("glutamatergic", **{"timing.duration_ms": t, "timing.sample_interval_us": 1.0})
        pos = _positions(m, 91 + j, ctx.n(4, 8), "slab_positions", ctx.workers)
        c = [np.sum(np.hypot(p[:, 0], p[:, 1]) < g.psd_radius_um) / (MOLECULES_PER_M_UM3 * np.pi
                                                                        * g.psd_radius_um ** 2 * g.cleft_height_um)
             for p in pos]
        peaks.append((float(np.mean(c)), float(np.std(c, ddof=1) / math.sqrt(len(c)))))
    i = int(np.argmax([p[0] for p in peaks]))
    a, h = g.psd_radius_um, g.cleft_height_um
    d = model0.species[0].diffusion_um2_per_ms
    analytic = [n0 / (MOLECULES_PER_M_UM3 * np.pi * a * a * h) * (1 - math.exp(-a * a / (4 * d * t))) for t in times]
    return [range_check("published.clements_peak", "published", peaks[i][0] * 1e3, 1.0, 5.0, "mM", se=peaks[i][1] * 1e3,
                        citation=CLEMENTS,
                        note="mean [Glu] over the PSD at t = " + ", ".join(f"{t * 1e3:g} µs: {p[0] * 1e3:.2f} mM"
                                                                          for t, p in zip(times, peaks))
                             + "; free-slab analytic N/(N_A π a² h)(1 − e^{−a²/4Dt}): "
                             + ", ".join(f"{x * 1e3:.2f}" for x in analytic)
                             + f" mM; the cleft-average peak is N/V_cleft = "
                               f"{n0 / (MOLECULES_PER_M_UM3 * g.cleft_volume_um3) * 1e3:.2f} mM at release")]


@register("published.clements_biphasic", "published", needs=("presets",))
def check_clements_biphasic(ctx):
    """The cleft glutamate transient of the glutamatergic preset decays biphasically with
    τ ≈ 100 µs and ≈ 2 ms (Clements 1996): a two-exponential fit of the mean cleft [Glu] over
    0.01–5 ms; accepted within a factor of 2 of each time constant."""
    presets = _module("presets")
    _require(presets, "build")
    model = presets.build("glutamatergic")
    n_runs = ctx.n(4, 8)
    ens = run(model, n_runs=n_runs, seed=95, workers=ctx.workers)
    t = ens.times_ms
    c = ens.series[:, :, ens.columns.index("free_cleft")].mean(axis=0) / (
        MOLECULES_PER_M_UM3 * model.geometry.cleft_volume_um3) * 1e3     # mM
    w = (t >= 0.01) & (c > 0)
    tt, cc = t[w], c[w]

    def two(x, a1, k1, a2, k2):
        return a1 * np.exp(-x * k1) + a2 * np.exp(-x * k2)

    sigma = 0.02 * cc + 1e-3          # relative weights: the slow tail counts as much as the peak
    p, cov = optimize.curve_fit(two, tt, cc, p0=(cc[0], 10.0, cc[0] * 0.1, 0.5), sigma=sigma, maxfev=20000,
                                bounds=([0, 0, 0, 0], [np.inf, np.inf, np.inf, np.inf]))
    (a1, k1, a2, k2) = p
    if k1 < k2:
        a1, k1, a2, k2 = a2, k2, a1, k1
    tau_f, tau_s = 1e3 / k1, 1.0 / k2
    at = "; ".join(f"{x:g} ms {c[np.argmin(abs(t - x))] * 1e3:.3g} µM" for x in (0.1, 0.5, 1.0, 2.0, 5.0))
    note = (f"mean cleft [Glu]: {at}; fit A_fast = {a1:.3g} mM, τ_fast = {tau_f:.3g} µs, A_slow = {a2:.3g} mM, τ_slow = {tau_s:.3g} ms; "
            f"slow fraction of the amplitude {a2 / (a1 + a2):.3f}; {n_runs} runs, glial band reflecting at "
            f"{model.geometry.band_outer_radius_um} µm")
    return [range_check("published.clements_biphasic.tau_fast", "published", tau_f, 50.0, 200.0, "µs", expected=100.0,
                        citation=CLEMENTS, note=note, what="≈100 µs within a factor of 2"),
            range_check("published.clements_biphasic.tau_slow", "published", tau_s, 1.0, 4.0, "ms", expected=2.0,
                        citation=CLEMENTS, note=note, what="≈2 ms within a factor of 2")]


@register("published.barbour_spillover", "published", needs=("presets",))
def check_barbour(ctx):
    """Spillover to a neighbouring synapse: the glutamatergic preset with an open neuropil (band to
    1 µm, absorbing edge) and a second patch of AMPA receptors (as many as the own PSD, on a disk of
    R_psd) centred 465 nm away on the band membrane; the peak of the mean number of open receptors
    there is < 5 % of the synapse's own (Barbour 2001)."""
    presets = _module("presets")
    _require(presets, "build")
    model = presets.build("glutamatergic", **{"geometry.band_outer_radius_um": 1.0,
                                             "geometry.band_outer_boundary": "absorbing",
                                             "timing.duration_ms": 3.0})
    own = [grp for grp in model.sites if grp.scheme.name == "AMPA" and grp.location == "postsynaptic"]
    if not own:
        raise SkipCheck("the glutamatergic preset has no postsynaptic AMPA group")
    own = own[0]
    cm = compile_model(model)
    n_rec = cm.site_count(own)
    tile = model.tile_um
    n_tile = cm.kernel.n_tile
    centres = -cm.grid_half_um + (np.arange(n_tile) + 0.5) * tile
    xx, yy = np.meshgrid(centres, centres, indexing="ij")
    cx, a = 0.465, model.geometry.psd_radius_um
    inside = np.flatnonzero(((xx - cx) ** 2 + yy ** 2 < a * a).ravel())
    pick = np.random.default_rng(2001).choice(inside, size=n_rec, replace=False)
    coords = np.column_stack([xx.ravel()[pick], yy.ravel()[pick]])
    neighbour = SiteGroup(own.scheme, "band_postsynaptic", arrangement="coordinates", coordinates_um=coords,
                          name="AMPA_neighbour")
    sites = list(model.sites)
    first_band = min([i for i, grp in enumerate(sites) if grp.location == "band_postsynaptic"] or [len(sites)])
    sites.insert(first_band, neighbour)      # placed before the band transporters so that they avoid its tiles
    import dataclasses
    m = dataclasses.replace(model, sites=sites)
    n_runs = ctx.n(6, 16)
    ens = run(m, n_runs=n_runs, seed=97, workers=ctx.workers)
    o_own = ens.series[:, :, ens.columns.index(f"{own.label}:open")]
    o_nb = ens.series[:, :, ens.columns.index("AMPA_neighbour:open")]
    i_own, i_nb = int(np.argmax(o_own.mean(0))), int(np.argmax(o_nb.mean(0)))
    ratio = o_nb.mean(0)[i_nb] / o_own.mean(0)[i_own]
    se = ratio * math.sqrt((o_nb[:, i_nb].std(ddof=1) / max(o_nb[:, i_nb].mean(), 1e-12)) ** 2
                           + (o_own[:, i_own].std(ddof=1) / o_own[:, i_own].mean()) ** 2) / math.sqrt(n_runs)
    return [range_check("published.barbour_spillover", "published", ratio * 100, None, 5.0, "%", expected=5.0,
                        se=se * 100, citation=BARBOUR,
                        note=f"peak mean open AMPA: own {o_own.mean(0)[i_own]:.2f} at {ens.times_ms[i_own]:.2f} ms, "
                             f"neighbour {o_nb.mean(0)[i_nb]:.3f} at {ens.times_ms[i_nb]:.2f} ms ({n_rec} receptors "
                             f"each); {n_runs} runs. The band is a 20 nm sheet (2-D spread), so it overestimates the "
                             "concentration reaching a neighbour compared with 3-D neuropil")]


@register("published.rice_cragg_peak", "published", needs=("presets",))
def check_rice_cragg(ctx):
    """Dopamine uptake does not change the peak [DA] within 1 µm of a release site (Rice & Cragg
    2008): in the dorsal-striatal preset, the peak over time (0.25, 0.5, 1 ms) of the mean [DA]
    in the shell 0.75–1 µm from the release point, with DAT versus without; accepted within ±5 %."""
    presets = _module("presets")
    _require(presets, "build")
    times = (0.25, 0.5, 1.0)
    over = {"timing.dt_volume_us": 10.0, "timing.sample_interval_us": 10.0, "geometry.domain_radius_um": 5.0}
    n_runs = ctx.n(6, 16)
    peak, notes = {}, []
    for arm, extra in (("DAT", {}), ("no DAT", {"sites.DAT.enabled": False})):
        means = []
        for j, t in enumerate(times):
            m = presets.build("dopaminergic_striatal", **{**over, **extra, "timing.duration_ms": t})
            src = np.asarray(m.releases[0].position_um if m.releases[0].position_um is not None
                             else (m.geometry.varicosity_radius_um * (1 + 1e-9), 0.0, 0.0))
            pos = _positions(m, 101 + j, n_runs, "volume_positions", ctx.workers)
            counts = np.array([np.sum((lambda d: (d >= 0.75) & (d < 1.0))(np.linalg.norm(p - src, axis=1)))
                               for p in pos], dtype=float)
            means.append((counts.mean(), counts.std(ddof=1) / math.sqrt(n_runs)))
        i = int(np.argmax([x[0] for x in means]))
        peak[arm] = means[i]
        notes.append(f"{arm}: " + ", ".join(f"{t:g} ms {x[0]:.0f}" for t, x in zip(times, means)))
    (a, sa), (b, sb) = peak["DAT"], peak["no DAT"]
    ratio = a / b
    se = ratio * math.sqrt((sa / a) ** 2 + (sb / b) ** 2)
    return [range_check("published.rice_cragg_peak", "published", ratio, 0.95, 1.05, "", expected=1.0, se=se,
                        citation=RICE_CRAGG, what="no effect of uptake: ratio within ±5 %",
                        note="peak molecules in the shell per run, " + "; ".join(notes)
                             + f"; {n_runs} runs of the preset's 3000 molecules; domain 5 µm, 10 µs volume steps")]


@register("published.daws_sert_reserve", "published", needs=("presets", "drugs"))
def check_daws(ctx):
    """Serotonin clearance stays nearly flat until > 80–90 % SERT loss (Daws et al. 2003): in the
    serotonergic preset (SERT density scaled by chronic adaptation), the half-time of free 5-HT after
    one release relative to control is ≤ 1.25 at 50 % and 80 % loss ("flat") and ≥ 1.25 at 95 %
    loss ("slows")."""
    presets = _module("presets")
    _require(presets, "build")
    losses = (0.0, 0.5, 0.8, 0.9, 0.95)
    n_runs = ctx.n(4, 8)
    res = {}
    for j, loss in enumerate(losses):
        adapt = {"transporter_expression": {"SERT": 1.0 - loss}} if loss else None
        m = presets.build("serotonergic", adaptation=adapt)
        ens = run(m, n_runs=n_runs, seed=111 + j, workers=ctx.workers)
        th = ens.metrics["clearance_half_time_ms"].to_numpy(dtype=float)
        num, den = _clearance_terms(ens, m)
        res[loss] = (float(np.nanmean(th)), float(np.nanstd(th, ddof=1) / math.sqrt(n_runs)),
                     num.sum() / den.sum())
    t0, s0, k0 = res[0.0]
    summary = "; ".join(f"{int(l * 100)} % loss: t½ {res[l][0]:.1f} ms, uptake rate {res[l][2]:.2f} s⁻¹"
                        for l in losses)
    rows = []
    for loss, lo, hi, what in ((0.5, None, 1.25, "flat"), (0.8, None, 1.25, "flat"), (0.95, 1.25, None, "slows")):
        t, s, _ = res[loss]
        r = t / t0
        se = r * math.sqrt((s / t) ** 2 + (s0 / t0) ** 2)
        rows.append(range_check(f"published.daws_sert_reserve.loss{int(loss * 100)}", "published", r, lo, hi, "×",
                                expected=1.0 if what == "flat" else 1.25, se=se, citation=DAWS,
                                what=f"clearance {what}",
                                note=f"t½ of free 5-HT relative to control; {summary}. The free 5-HT of one "
                                     "varicosity also leaves the 10 µm domain by diffusion (absorbing edge), which "
                                     "sets t½ as much as uptake does"))
    return rows


@register("published.meyer_occupancy", "published", quick=True, needs=("presets", "drugs"))
def check_meyer(ctx):
    """≈ 80 % SERT occupancy at a clinical SSRI concentration (Meyer 2004; 77–85 %, Meyer 2001):
    the serotonergic preset with fluoxetine at the clinical free brain concentration of
    parameters.md §5c (≈ 3 nM), the measured fraction of SERT blocked, and the resulting slowing of
    uptake clearance (the preset's own 5000-molecule release) against 1/(1 − θ) for θ in 77–85 %."""
    presets, drugs = _module("presets"), _module("drugs")
    c = 3e-9
    occ, n, _ = _sert_states_at_zero(presets, {"fluoxetine": c}, 121)
    theta = occ["blocked:fluoxetine"]
    rows = [range_check("published.meyer_occupancy.theta", "published", theta * 100, 77.0, 85.0, "%", expected=80.0,
                        se=math.sqrt(theta * (1 - theta) / n) * 100, citation=MEYER,
                        note="fluoxetine 3 nM free (parameters.md §5c: the clinical free concentration is "
                             "back-calculated as ≈ 4·K_i from the 80 % occupancy itself, so this checks the drug → "
                             "preset → per-run occupancy pipeline rather than pharmacokinetics)")]
    if not ctx.quick:
        n_runs = 6
        k0, se0, e0, m0 = _clearance_ratio(presets, None, 122, n_runs, 5000, ctx.workers, duration_ms=300.0)
        k1, se1, e1, m1 = _clearance_ratio(presets, {"fluoxetine": c}, 123, 2 * n_runs, 5000, ctx.workers,
                                           duration_ms=300.0)
        ratio = k0 / k1
        rse = ratio * math.sqrt((se0 / k0) ** 2 + (se1 / k1) ** 2)
        t0 = np.nanmean(e0.metrics["clearance_half_time_ms"])
        t1 = np.nanmean(e1.metrics["clearance_half_time_ms"])
        rows.append(range_check("published.meyer_occupancy.clearance_slowing", "published", ratio, 1 / (1 - 0.77),
                                1 / (1 - 0.85), "×", expected=5.0, se=rse, citation=MEYER,
                                what="1/(1 − θ) for θ in [77, 85] %",
                                note=f"uptake clearance rate control {k0:.3f} s⁻¹ vs fluoxetine {k1:.3f} s⁻¹; "
                                     f"t½ of free 5-HT {t0:.1f} → {t1:.1f} ms ({t1 / t0:.2f}×; the slice FSCV decay "
                                     "slows 2–3× under full SERT block, parameters.md §7 S1)"))
    return rows


# ======================================================================================================
# running and reporting

def checks(quick: bool = False) -> list[CheckSpec]:
    """The registered checks of a mode (quick: the subset marked quick)."""
    return [c for c in REGISTRY if c.quick or not quick]


def run_validation(quick: bool = False, workers: int | None = None, progress: bool = True,
                   only: list[str] | None = None) -> pd.DataFrame:
    """Run the checks (all, or the quick subset; ``only`` filters by name prefix) and return the
    table: one row per check result with the columns of :data:`COLUMNS`."""
    if workers is None:
        workers = os.cpu_count() or 1
    ctx = Context(quick=quick, workers=max(1, int(workers)))
    selected = [c for c in checks(quick) if not only or any(c.name.startswith(p) for p in only)]
    rows = []
    t_all = time.perf_counter()
    for i, spec in enumerate(selected, 1):
        if progress:
            print(f"[{i}/{len(selected)}] {spec.name} ...", end="", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            for mod in spec.needs:
                _module(mod)
            out = spec.func(ctx)
        except SkipCheck as exc:
            out = [Check(spec.name, spec.category, float("nan"), float("nan"), "", "skip", note=str(exc))]
        except Exception as exc:  # noqa: BLE001 - a check that crashes is a failed check
            tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
            out = [Check(spec.name, spec.category, float("nan"), float("nan"), "", "fail",
                         note=f"the check raised {tb}")]
        wall = time.perf_counter() - t0
        for row in out:
            row.wall_s = wall
            row.quick = spec.quick
        rows.extend(out)
        if progress:
            verdicts = ", ".join(r.verdict for r in out)
            print(f" {verdicts} ({wall:.1f} s)", file=sys.stderr, flush=True)
    df = pd.DataFrame([r.as_row() for r in rows], columns=COLUMNS)
    df.attrs["wall_s"] = time.perf_counter() - t_all
    df.attrs["mode"] = "quick" if quick else "full"
    return df


def _fmt(x, digits=4):
    if isinstance(x, str):
        return x
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(xf):
        return ""
    return f"{xf:.{digits}g}"


def format_table(df: pd.DataFrame, width: int = 60) -> str:
    """A plain-text table (check, expected, measured, unit, tolerance, verdict) for the terminal."""
    cols = ["check", "expected", "measured", "unit", "tolerance", "verdict"]
    body = [[str(r["check"]), _fmt(r["expected"]), _fmt(r["measured"]), str(r["unit"] or ""),
             (str(r["tolerance"])[:width] + ("…" if len(str(r["tolerance"])) > width else "")), str(r["verdict"])]
            for _, r in df.iterrows()]
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(b, widths)) for b in body]
    return "\n".join(out)


def summary_line(df: pd.DataFrame) -> str:
    counts = {v: int((df["verdict"] == v).sum()) for v in VERDICTS}
    wall = df.attrs.get("wall_s", float(df["wall_s"].drop_duplicates().sum()))
    return (f"{len(df)} results: {counts['pass']} pass, {counts['fail']} fail, {counts['skip']} skip "
            f"({df.attrs.get('mode', '')} run, {wall:.1f} s)")


def _md_escape(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def write_report(df: pd.DataFrame, out_dir) -> tuple[Path, Path]:
    """Write ``validation.csv`` (every column) and ``validation.md`` (a table, then each check's
    citation and note) into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "validation.csv", out / "validation.md"
    df.to_csv(csv_path, index=False)
    lines = ["# mcsyn validation report", "",
             f"{summary_line(df)}. Generated {time.strftime('%Y-%m-%d %H:%M:%S')} by `mcsyn validate"
             f"{' --quick' if df.attrs.get('mode') == 'quick' else ''}`.", "",
             "Statistical checks allow ±5 standard errors of the estimator (stated per row); published results "
             "are compared with the literature range. Seeds are fixed.", "",
             "| check | category | expected | measured | unit | tolerance | verdict | wall (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in df.iterrows():
        verdict = f"**{r['verdict']}**" if r["verdict"] == "fail" else r["verdict"]
        lines.append("| " + " | ".join(_md_escape(v) for v in (
            r["check"], r["category"], _fmt(r["expected"]), _fmt(r["measured"]), r["unit"] or "", r["tolerance"],
            verdict, _fmt(r["wall_s"], 3))) + " |")
    lines += ["", "## Notes and citations", ""]
    for _, r in df.iterrows():
        text = []
        if r["citation"]:
            text.append(f"*{_md_escape(r['citation'])}*")
        if r["note"]:
            text.append(_md_escape(r["note"]))
        if text:
            lines.append(f"- **{_md_escape(r['check'])}** ({r['verdict']}): " + " — ".join(text))
    lines += ["", "## What each check means", ""]
    for spec in REGISTRY:
        lines.append(f"- **{spec.name}**{' (quick)' if spec.quick else ''}: {_md_escape(spec.description)}")
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path, md_path


def validate_command(args) -> int:
    """Entry point of ``mcsyn validate``: run, print the table, write the report, and return the
    exit status (0 when no check failed, 1 otherwise). ``args`` has ``quick`` (bool), ``out``
    (directory; default ``mcsyn-validation``) and ``workers`` (int or None)."""
    quick = bool(getattr(args, "quick", False))
    out = getattr(args, "out", None) or "mcsyn-validation"
    workers = getattr(args, "workers", None)
    only = getattr(args, "only", None)
    df = run_validation(quick=quick, workers=workers, progress=not getattr(args, "no_progress", False), only=only)
    print(format_table(df))
    print()
    print(summary_line(df))
    csv_path, md_path = write_report(df, out)
    print(f"report: {csv_path} and {md_path}")
    failed = df.loc[df["verdict"] == "fail", "check"].tolist()
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``mcsyn validate`` (for the CLI to reuse)."""
    parser.add_argument("--quick", action="store_true", help="run the quick subset (seconds)")
    parser.add_argument("--out", default="mcsyn-validation", metavar="DIR",
                        help="directory for validation.csv and validation.md")
    parser.add_argument("--workers", type=int, default=None, help="threads per ensemble (default: all cores)")
    parser.add_argument("--only", nargs="*", default=None, metavar="PREFIX", help="run only checks with these prefixes")
    return parser


def main(argv=None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="mcsyn validate", description=__doc__.split("\n\n")[0]))
    return validate_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
