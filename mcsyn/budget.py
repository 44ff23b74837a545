"""How much work and memory one run of a compiled model needs, estimated before it starts.

A run's cost is dominated by two loops of the kernel: stepping free molecules and firing site
reactions. :func:`estimate` bounds both from the compiled model alone:

* **molecule-steps**: every released molecule is stepped from its release time to the end of the
  run at the fine step (an upper bound: molecules in the homogenised volume take coarse steps,
  and bound, taken-up, degraded or escaped molecules take none), each step costing one more unit
  per membrane plane it crosses (1 + σ/h: a step longer than the cleft is high is unfolded
  through every image plane); molecules released into a volume that never lets them into the
  cleft (``volume_enters_cleft`` false) take only the coarse step, one per ``dt_volume_us``.
  Efflux adds its expected molecules (sites × efflux rate × duration), stepped for the whole run.
* **site events**: expected first-order reactions, sites × their fastest exit rate × duration.
* **memory**: the output samples (time series and per-state counts, int64), the molecule pools
  (x, y, z, clock, species: 36 bytes each), a fusion pore's injection rows (one per molecule), the
  site arrays, tile maps and voxel grid.

The rule (:func:`check`): a run whose ``work = molecule_steps + site_events`` exceeds ``max_steps``
(default :data:`DEFAULT_MAX_STEPS` = 1e11, many minutes of one core: the kernel steps a few
times 10⁸ molecules per second) is refused with a :class:`~mcsyn.ModelError` that names the
estimate and how to raise the limit (``max_steps=`` on ``run_one``/``run``, ``--max-steps`` on the
command line; ``max_steps=None`` switches the work limit off). Memory above
:data:`MAX_MEMORY_BYTES` (8 GiB) is always refused: no setting makes such a run fit. A run above
:data:`REPORT_STEPS` (1e10, tens of seconds) prints its estimate to stderr before it starts.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from .errors import ModelError

DEFAULT_MAX_STEPS = 1e11
REPORT_STEPS = 1e10
MAX_MEMORY_BYTES = 8 * 2 ** 30

_SERIES_COLUMNS = 10        # the kernel's time-series columns (released, free_cleft, ...)
_BYTES_PER_MOLECULE = 36    # x, y, z, clock (double) and species (int32)
_BYTES_PER_INJECTION = 49   # time, x, y, z (double), count (int64), species (int32), into-volume (int8)
_BYTES_PER_SITE = 48        # type, state, voxel, heap slots (int32), x, y, next time (double), plane


@dataclass(frozen=True)
class WorkEstimate:
    """Upper-bound cost of one run (see the module docstring)."""

    molecules: float
    molecule_steps: float
    site_events: float
    memory_bytes: float

    @property
    def work(self) -> float:
        return self.molecule_steps + self.site_events

    def describe(self) -> str:
        return (f"{self.molecules:.3g} molecules, <= {self.molecule_steps:.3g} molecule-steps, "
                f"~{self.site_events:.3g} site events, {self.memory_bytes / 2 ** 20:.3g} MiB")


def _released(model):
    """(mean molecules, mean molecules × ms left in the run, where they are released) of every
    release and train."""
    duration_ms = model.timing.duration_ms
    for rel in model.releases:
        mean = rel.molecules * rel.probability
        yield mean, mean * (duration_ms - rel.time_ms), rel.into
    for train in model.trains:            # summed in closed form: stimulus k at start + k × period
        n, period_ms = train.n_stimuli, 1000.0 / train.frequency_hz
        mean = train.vesicle.molecules * train.vesicle.probability * train.release_probability
        ms_left = n * (duration_ms - train.start_ms) - period_ms * n * (n - 1) / 2.0
        yield n * mean, mean * ms_left, train.vesicle.into


def estimate(cm) -> WorkEstimate:
    """The :class:`WorkEstimate` of one run of the compiled model ``cm``."""
    model, k = cm.model, cm.kernel
    duration_ms = model.timing.duration_ms
    crossings = 1.0 + float(np.max(k.sigma_fine_um)) / k.h_um
    steps_per_ms = 1000.0 / model.timing.dt_fine_us * crossings
    volume_steps_per_ms = steps_per_ms if model.volume_enters_cleft else 1000.0 / cm.dt_coarse_us
    molecules, molecule_steps = 0.0, 0.0
    for mean, molecule_ms, into in _released(model):
        molecules += mean
        molecule_steps += molecule_ms * (volume_steps_per_ms if into == "volume" else steps_per_ms)
    site_events, n_sites = 0.0, 0
    for grp in model.sites:
        count = cm.site_count(grp)
        n_sites += count
        rates = [t.rate for t in grp.scheme.transitions if t.kind != "bind"]
        efflux = sum(t.rate for t in grp.scheme.transitions if t.kind == "efflux")
        site_events += count * max(rates, default=0.0) * duration_ms * 1e-3
        effluxed = count * efflux * duration_ms * 1e-3
        molecules += effluxed
        molecule_steps += effluxed * duration_ms * steps_per_ms
    # a fusion pore's molecules each get an injection row (7 columns) before the run starts
    pore = sum(r.molecules for r in model.releases if r.pore_tau_ms > 0) + sum(
        t.n_stimuli * t.vesicle.molecules for t in model.trains if t.vesicle.pore_tau_ms > 0)
    memory = (k.n_samples * (_SERIES_COLUMNS + max(k.n_states, 1)) * 8
              + molecules * _BYTES_PER_MOLECULE + pore * _BYTES_PER_INJECTION + n_sites * _BYTES_PER_SITE
              + 2 * k.n_tile ** 2 * 5 + k.n_vox ** 3 * 8 * (2 + max(k.n_types, 1)))
    return WorkEstimate(molecules, molecule_steps, site_events, float(memory))


def check(cm, max_steps=DEFAULT_MAX_STEPS, n_runs: int = 1, report=True) -> WorkEstimate:
    """Refuse a run of ``cm`` above the work or memory limit (module docstring); print the estimate
    of a long one to stderr when ``report``. Returns the estimate."""
    est = estimate(cm)
    if not est.memory_bytes <= MAX_MEMORY_BYTES:
        raise ModelError("run memory", f"{est.memory_bytes / 2 ** 30:.3g} GiB",
                         f"one run may hold at most {MAX_MEMORY_BYTES / 2 ** 30:g} GiB ({est.describe()}); "
                         f"lower the molecules, the site densities or the samples (timing.sample_interval_us)")
    if max_steps is not None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, (int, float)) or not max_steps > 0:
            raise ModelError("max_steps", max_steps, "must be a number > 0 (or None: no work limit)")
        if not est.work <= max_steps:
            raise ModelError("run work", f"{est.work:.3g} molecule-steps + events",
                             f"above the limit max_steps = {max_steps:.3g} per run ({est.describe()}); "
                             f"shorten timing.duration_ms, raise timing.dt_fine_us or release fewer molecules, "
                             f"or raise the limit: max_steps= on run_one/run/run_ensemble, --max-steps on "
                             f"the command line (None: no limit)")
    if report and est.work > REPORT_STEPS and math.isfinite(est.work):
        runs = f" per run, {n_runs} runs" if n_runs > 1 else ""
        print(f"mcsyn: estimated work {est.work:.3g} molecule-steps{runs} ({est.describe()})", file=sys.stderr)
    return est
