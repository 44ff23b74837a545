"""Tissue: release-site fields in a periodic box of extracellular space (volume transmission).

* :mod:`~mcsyn.tissue.field`: :class:`TissueField` (varicosities, neurons, firing, release),
  :class:`Detector` regions, :class:`Stimulation`, and :class:`TissueModel`, a
  :class:`~mcsyn.SynapseModel` that ``compile_model``, ``run_one`` and
  :func:`mcsyn.ensemble.run_ensemble` accept as they are;
* :mod:`~mcsyn.tissue.presets`: dorsal and ventral striatal dopamine and a serotonergic field
  (``mcsyn/data/tissue.toml``), :func:`build_field`;
* :mod:`~mcsyn.tissue.observe`: one run with its voxel snapshots (:func:`run_field`), the tonic
  level, the distribution of the concentration over space and time, receptor occupancy over time
  (:func:`occupancy_summary`) and over space and time (:func:`occupancy_distribution`);
* the analysis of what an electrode records: :mod:`~mcsyn.tissue.electrode` (adsorption response,
  FSCV / amperometry / chronoamperometry sampling, clearance metrics), :mod:`~mcsyn.tissue.mm_fit`
  (the Michaelis–Menten model of evoked traces and its fit with confidence intervals),
  :mod:`~mcsyn.tissue.deterministic` (the reaction–diffusion mean field of the same sources, by
  finite differences) and :mod:`~mcsyn.tissue.traces` (a user's trace from CSV);
  ``mcsyn electrode`` on the command line.
"""
from .field import Detector, Firing, Stimulation, TissueField, TissueModel
from .observe import (FieldRun, concentration_distribution, occupancy_distribution, occupancy_summary, run_field,
                      tonic_level_nM)
from .presets import build as build_field, names as field_names, tissue_model

__all__ = ["Detector", "Firing", "Stimulation", "TissueField", "TissueModel", "FieldRun", "run_field",
           "tonic_level_nM", "concentration_distribution", "occupancy_distribution", "occupancy_summary",
           "build_field", "field_names", "tissue_model"]
