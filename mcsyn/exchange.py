"""Exchange of molecules between the slab and the homogenised volume at the slab's rim.

A slab molecule that steps beyond the rim (or whose Brownian bridge touches it) leaves into the
volume's **mouth shell** beside the rim; a volume molecule in the mouth shell enters the slab with
a per-coarse-step probability set by detailed balance, at a depth below the rim drawn from the
time reversal of an exit. The kernel does the moves; this module sizes the shell and computes the
tables, once per model.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from . import geometry
from .errors import ModelError

# Entry chance per coarse step of a volume molecule in the mouth shell, for the fastest species
MOUTH_ENTER_PROBABILITY = 0.5


@functools.lru_cache(maxsize=256)
def rim_exit_profile(sigma_over_radius: float, n_quantiles: int) -> tuple:
    """How molecules leave a disk's rim in one fine step, from a uniform density.

    Returns ``(fraction, depth_quantiles)``: the number that leave per unit density and height,
    relative to the planar-edge value 2πRσ√(2/π) (the rim's curvature makes it a few per cent
    smaller than 1), and ``n_quantiles`` quantiles (at 0, 1/(n − 1), ..., 1; the kernel's table
    length, compile.ENTRY_DEPTH_QUANTILES) of the start depth below the rim of those that leave,
    in units of σ. An entering molecule is placed at such a depth: the time reversal of an exit,
    which keeps a uniform density stationary.

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
    quantiles = np.interp(np.linspace(0.0, 1.0, n_quantiles), cumulative / cumulative[-1], depth)
    return float(fraction), tuple(quantiles)


def mouth_shell(model, sigma_fine, steps_per_coarse, n_quantiles):
    """Mouth shell (r_mouth, mouth_cos), per-species entry probabilities per coarse step, and
    per-species quantiles of the depth below the rim at which an entering molecule is placed
    (zeros where the rim does not open onto a volume).

    Detailed balance at equal free concentration C in slab and volume: a slab molecule at depth
    d below the rim leaves within a fine step with chance 2Φ(−d/σ) (planar rim), so
    C h 2π R_rim σ √(2/π) molecules leave per fine step (times ``rim_exit_profile``'s fraction
    for the rim's curvature); the volume holds α C V_mouth molecules
    in the mouth shell. Entering with probability q = K h 2π R_rim σ √(2/π) / (α V_mouth) per
    coarse step of K fine steps returns as many as leave. The shell (thickness δ = s R_var, polar
    band |cos θ| < s) is sized so that q is MOUTH_ENTER_PROBABILITY for the fastest species.
    """
    g = model.geometry
    sigma_fine = np.asarray(sigma_fine, dtype=float)
    if geometry.rim_action(g) != "volume":
        return 0.0, 0.0, np.zeros(len(sigma_fine)), np.zeros((len(sigma_fine), n_quantiles))
    rim = geometry.rim_radius_um(g)
    profiles = [rim_exit_profile(round(float(sig) / rim, 12), n_quantiles) for sig in sigma_fine]
    curvature = np.array([frac for frac, _ in profiles])
    entry_depth = np.minimum(np.array([q for _, q in profiles]) * sigma_fine[:, None], rim)
    leave_per_conc = steps_per_coarse * g.cleft_height_um * 2 * math.pi * rim \
        * sigma_fine * math.sqrt(2 / math.pi) * curvature / g.volume_fraction     # µm³ of tissue
    need = float(leave_per_conc.max()) / MOUTH_ENTER_PROBABILITY
    ri, r_domain = geometry.volume_radii_um(g)      # r_domain: the half side of a periodic box

    def shell_volume(s):
        return 4.0 / 3.0 * math.pi * ri ** 3 * ((1.0 + s) ** 3 - 1.0) * s

    from scipy.optimize import brentq      # here, not at the top: `import mcsyn` stays free of scipy
    s = 1.0 if shell_volume(1.0) <= need else brentq(lambda x: shell_volume(x) - need, 1e-9, 1.0)
    r_mouth = ri * (1.0 + s)
    if not model.volume_enters_cleft:
        return min(r_mouth, 0.5 * (ri + r_domain)), s, np.zeros(len(sigma_fine)), entry_depth
    if shell_volume(1.0) < need:
        t = model.timing
        k_max = math.floor(steps_per_coarse * shell_volume(1.0) / need)     # need grows with K
        fix = (f"use timing.dt_volume_us <= {k_max * t.dt_fine_us:g}" if k_max >= 1 else
               f"use a larger geometry.varicosity_radius_um")
        raise ModelError("timing.dt_volume_us", t.dt_volume_us,
                         f"is too long for the exchange between the cleft and the volume: the "
                         f"varicosity (radius {ri} µm) has too little room beside the cleft's mouth for "
                         f"the molecules that leave the cleft in one volume step; {fix}, or set "
                         f"geometry.volume_enters_cleft = false")
    if r_mouth > 0.5 * (ri + r_domain):
        if geometry.periodic(g):
            raise ModelError("geometry.box_side_um", g.box_side_um,
                             f"must be at least {2 * (2 * r_mouth - ri):.3g} µm so that the cleft's mouth region "
                             f"(out to {r_mouth:.3g} µm) fills at most half of the way to the box's faces")
        raise ModelError("geometry.domain_radius_um", g.domain_radius_um,
                         f"must be at least {2 * r_mouth - ri:.3g} µm so that the cleft's mouth region "
                         f"(out to {r_mouth:.3g} µm) fills at most half of the extracellular shell")
    return r_mouth, s, leave_per_conc / shell_volume(s), entry_depth
