"""mcsyn: stochastic Monte Carlo simulation of one synapse, molecule by molecule."""
import importlib.util as _importlib_util

if _importlib_util.find_spec(f"{__name__}._engine") is None:
    # Python started inside the checkout imports the source tree, which has no compiled kernel,
    # instead of the installed package; without this the first import fails as a "circular import"
    raise ImportError(
        f"mcsyn's compiled kernel (mcsyn._engine) is not built in {__path__[0]}: this is the source "
        "tree, and it shadows any installed mcsyn when Python starts in the checkout. Run "
        "`pip install -e .` in the checkout (for notebooks and scripts run from it), or start Python "
        "outside the checkout to use the installed package.")
from .compile import CompiledModel, compile_model, per_hit_probability
from .electrophysiology import VoltageClamp
from .errors import ModelError
from .model import (ClosedLoopFeedback, Degradation, Geometry, RateSchedule, Release, ShortTermPlasticity,
                    SiteGroup, Species, StimulusTrain, SynapseModel, Timing)
from .schemes import (KineticScheme, ampa_jonas1993, enzyme_site, one_site_receptor, transporter_cycle,
                      with_blocked_state)
from .simulate import Ensemble, RunResult, run, run_one, run_seed_sequence
from . import electrophysiology, library, units  # noqa: E402  (loaded by compile anyway)

# Start-up cost: load these on first use (PEP 562) so that ``import mcsyn`` stays quick. The
# ensemble layer pulls in pandas, scipy.stats and pyarrow; the pharmacology layer (config, drugs,
# presets, with build, spec, adaptation and tomli_w under them) is needed only to build a model
# from the library. ``mcsyn.presets`` and ``from mcsyn import presets`` work as before.
_LAZY = {"EnsembleResult": "ensemble", "dose_series": "ensemble", "make_conditions": "ensemble",
         "run_ensemble": "ensemble", "sweep": "ensemble", "load_result": "storage",
         "DrugSchedule": "drug_schedule"}
_LAZY_SUBMODULES = ("config", "drugs", "presets")


def __getattr__(name):
    import importlib
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'mcsyn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_SUBMODULES))

__version__ = "0.1.0"

__all__ = [
    "ClosedLoopFeedback", "CompiledModel", "Degradation", "Ensemble", "Geometry", "KineticScheme", "ModelError", "Release",
    "RunResult", "ShortTermPlasticity", "SiteGroup", "Species", "StimulusTrain", "SynapseModel", "Timing", "VoltageClamp", "ampa_jonas1993",
    "compile_model", "enzyme_site", "one_site_receptor", "per_hit_probability", "run", "run_one",
    "run_seed_sequence", "transporter_cycle", "with_blocked_state", "EnsembleResult", "dose_series",
    "make_conditions", "run_ensemble", "sweep", "load_result", "RateSchedule", "DrugSchedule",
]
