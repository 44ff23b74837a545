"""``mcsyn validate``: quantitative checks of the engine against closed-form results and published data.

Every check is a function registered with :func:`register`; it returns one or more rows
(:class:`Check`) with the expected value, the measured value, the tolerance and a verdict:

* **physics checks** (:mod:`.physics`) compare the Monte Carlo engine with an exact result (mean
  squared displacement, first-passage times, the Gaussian kernel of a point release in the
  homogenised extracellular space, binding rates, mass-action equilibria). Their tolerance is
  statistical: ``k`` standard errors (``k = 5`` unless a row says otherwise), with the standard
  error derived from the variance of the estimator and stated in the row. Seeds are fixed, so a
  verdict is reproducible; a physics error of a few percent moves the statistic by many standard
  errors.
* **pharmacology checks** (:mod:`.pharmacology`) hold the presets' transporters and drugs to
  their own claims (Michaelis–Menten constants, first-order clearance, saturation, competitive
  occupancy, the 1/(1 − θ) slowing of clearance), with statistical tolerances as above.
* **published results** (:mod:`.published`) compare a preset with a number from the literature.
  Their tolerance is the literature range, and the row names the primary source (the presets'
  data entries in ``mcsyn/data/*.toml`` cite theirs). A failing published-result check is
  information about the model (its geometry and parameters), not necessarily an engine error;
  the row's note says what drives it.

``run_validation(quick=True)`` runs the subset marked quick (seconds; used by the test suite);
``run_validation()`` runs everything (about a minute on two cores). ``write_report`` writes
``validation.csv`` and ``validation.md``; ``validate_command`` is what ``mcsyn validate`` calls and
returns the exit status (0: no check failed; 1: at least one failed). A check that raises is a
failed row carrying the exception. A row with the verdict ``discrepancy`` documents a known
disagreement with a published result and states its reason; it is reported and is not a failure.

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

Layout: :mod:`.framework` (rows, registry, runner), :mod:`.scenarios` (models and estimators
shared with the tests), :mod:`.physics`, :mod:`.pharmacology`, :mod:`.published` (the checks, in
report order) and :mod:`.report` (table, files, command line).
"""
from . import framework, scenarios
from . import physics, pharmacology, published, dosing  # noqa: E402,I001  (importing registers the checks, in this order)
from . import report
from .framework import COLUMNS, REGISTRY, VERDICTS, Z, Check, CheckSpec, Context, checks, range_check, register, \
    run_validation, stat_check
from .report import add_arguments, format_table, main, summary_line, validate_command, write_report
from .scenarios import (D_DA, D_GLU, MOLECULES_PER_M_UM3, cleft_share_at_equilibrium, cleft_share_per_run,
                        closed_tissue_cell, exit_time_moments, mass_action_mean_bound)

__all__ = ["COLUMNS", "REGISTRY", "VERDICTS", "Z", "Check", "CheckSpec", "Context", "checks", "range_check",
           "register", "run_validation", "stat_check", "add_arguments", "format_table", "main", "summary_line",
           "validate_command", "write_report", "D_DA", "D_GLU", "MOLECULES_PER_M_UM3", "cleft_share_at_equilibrium",
           "cleft_share_per_run", "closed_tissue_cell", "exit_time_moments", "mass_action_mean_bound",
           "framework", "scenarios", "physics", "pharmacology", "published", "report"]
