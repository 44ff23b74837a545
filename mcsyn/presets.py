"""Synapse presets that run by name, with drugs, chronic adaptation and overrides of any field.

>>> import mcsyn.presets as presets
>>> model = presets.build("dopaminergic", drugs={"cocaine": "0.5 uM"})        # doctest: +SKIP
>>> model = presets.build("serotonergic", drugs={"escitalopram": "80%SERT"})  # doctest: +SKIP
>>> model = presets.build("glutamatergic", geometry={"cleft_radius_um": "250 nm"})  # doctest: +SKIP

A preset is a *specification* (``mcsyn/data/presets.toml``) in the configuration format of
:mod:`mcsyn.config`; the schema, the merging of overrides and the catalogue lookups are in
:mod:`mcsyn.spec`, the builder (and how volume transporters are calibrated) in :mod:`mcsyn.build`.
This module is their public face: :func:`names`, :func:`exists`, :func:`describe`, :func:`spec`
and :func:`build`. Overrides are merged into the preset (nested dicts, or dotted keys such as
``"geometry.cleft_radius_um"``); quantities may be numbers in the unit their key names or strings
with units (``"250 nm"``). Unknown keys are errors that name the key and list the closest valid
ones.

The returned model carries ``model.pharmacology`` (a :class:`~mcsyn.drugs.PharmacologyReport`) and
``model.config`` (the full resolved :class:`~mcsyn.config.SynapseConfig`, for saving with results).
"""
from __future__ import annotations

from .adaptation import Adaptation
from .build import _section, _site_group, _transporter_clearance, _value, build_from_spec  # noqa: F401
from .config import SynapseConfig
from .model import SynapseModel
from .spec import (DEGRADATION_KEYS, DENSITY_KEYS, META_KEYS, SECTIONS, SITE_KEYS, TOP_KEYS,  # noqa: F401
                   _deep_merge, _undot, canonical_name, check_spec, describe, exists, materialise, merge, names,
                   spec, undot)


def build(name: str, /, drugs: dict | None = None, mode: str = "equilibrium", adaptation=None,
          custom_drugs: dict | None = None, **overrides) -> SynapseModel:
    """Build preset ``name`` with ``drugs`` (``{name: "50 nM" | "80%SERT" | number in M}``), a drug
    ``mode`` (``"equilibrium"``, ``"kinetic"``, ``"acute"``), chronic ``adaptation``
    (:class:`~mcsyn.adaptation.Adaptation` or dict) and overrides of any field, as section dicts
    (``geometry={"cleft_radius_um": 0.25}``) or dotted keys (``**{"timing.duration_ms": 50}``).

    Returns a validated :class:`~mcsyn.SynapseModel` carrying ``.pharmacology`` and ``.config``.
    """
    cfg = SynapseConfig(preset=name, mode=mode, drugs=drugs or {},
                        adaptation=Adaptation.from_value(adaptation).to_dict(),
                        custom_drugs=custom_drugs or {}, overrides=undot(overrides))
    return cfg.build()
