"""mcsyn: stochastic Monte Carlo simulation of one synapse, molecule by molecule."""
from .compile import CompiledModel, compile_model, per_hit_probability
from .errors import ModelError
from .model import (Degradation, Geometry, Release, SiteGroup, Species, StimulusTrain, SynapseModel,
                    Timing)
from .schemes import (KineticScheme, ampa_jonas1993, enzyme_site, one_site_receptor, transporter_cycle,
                      with_blocked_state)
from .simulate import Ensemble, RunResult, run, run_one, run_seed_sequence
from . import config, drugs, library, presets, units  # noqa: E402  (the pharmacology layer)
from .ensemble import (EnsembleResult, dose_series, make_conditions, run_ensemble,  # noqa: E402
                       sweep)
from .storage import load_result  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "CompiledModel", "Degradation", "Ensemble", "Geometry", "KineticScheme", "ModelError", "Release",
    "RunResult", "SiteGroup", "Species", "StimulusTrain", "SynapseModel", "Timing", "ampa_jonas1993",
    "compile_model", "enzyme_site", "one_site_receptor", "per_hit_probability", "run", "run_one",
    "run_seed_sequence", "transporter_cycle", "with_blocked_state", "EnsembleResult", "dose_series",
    "make_conditions", "run_ensemble", "sweep", "load_result",
]
