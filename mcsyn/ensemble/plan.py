"""What an ensemble will run: the compiled conditions, what is stored of each, their seeds, and the
settings a resumed ensemble must match."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass


from ..compile import compile_model
from ..serialize import to_plain
from ..simulate import site_totals
from .conditions import condition_seed
from .observables import layout


@dataclass
class Plan:
    conditions: list      # Condition
    compiled: list        # CompiledModel, one per condition
    layouts: list         # observables.Layout, one per condition
    seeds: list           # condition_seed of each condition
    n_runs: int
    quantiles: tuple
    settings: dict        # what metadata.json records and a resumed ensemble must match
    config: dict          # what config.toml records

    def trace_shapes(self) -> dict:
        """Condition index -> (observables, runs, times) of its stored traces."""
        return {ci: (lay.shape[0], self.n_runs, lay.shape[1]) for ci, lay in enumerate(self.layouts)}


def make_plan(conditions, n_runs: int, seed: int, observables, quantiles: tuple, time_points, keep_traces) -> Plan:
    """Compile every condition (which validates every model before any run) and settle its layout."""
    compiled = [compile_model(c.model) for c in conditions]
    layouts = [layout(cm, c.name, observables, time_points) for c, cm in zip(conditions, compiled)]
    seeds = [condition_seed(seed, c.name) for c in conditions]
    ensemble = {"n_runs": n_runs, "seed": seed, "quantiles": list(quantiles), "time_points": time_points,
                "keep_traces": bool(keep_traces)}
    settings = {**ensemble,
                "conditions": [{"name": c.name, "seed": s, "labels": to_plain(c.labels), "drugs": to_plain(c.drugs),
                                "model_sha256": _model_fingerprint(c.model), "observables": lay.observables,
                                "times_ms": lay.times_ms.tolist(), "site_totals": site_totals(cm)}
                               for c, s, lay, cm in zip(conditions, seeds, layouts, compiled)]}
    config = {"ensemble": dict(ensemble),
              "conditions": [{"name": c.name, "seed": s, "labels": c.labels, "drugs": c.drugs, "source": c.source,
                              "observables": lay.observables, **_resolved_description(c.model)}
                             for c, s, lay in zip(conditions, seeds, layouts)]}
    return Plan(conditions, compiled, layouts, seeds, n_runs, quantiles, settings, config)


def _resolved_description(model) -> dict:
    """What config.toml records of a condition's model: its resolved synapse configuration
    (:class:`mcsyn.config.SynapseConfig`, loadable with ``SynapseConfig.from_dict``) when it was
    built from a preset or configuration, and always the complete model as simulated."""
    out = {}
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "to_dict"):
        out["config"] = cfg.to_dict()
    out["model"] = model
    return out


def _model_fingerprint(model) -> str:
    """What a resume compares: the model's plain form without the fields left at their defaults, so
    that a field added to the model later (a clamp, a train's plasticity) does not make every stored
    result look like another model."""
    plain = to_plain(model, skip_defaults=True)
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()

