"""TOML configuration of a synapse + drugs, built in Python or read from a file.

A configuration starts from a preset (or from nothing, with a complete specification) and
overrides any field; physical quantities may carry units::

    preset = "serotonergic"
    mode = "equilibrium"            # or "kinetic" (drugs bind during the run) / "acute" (start drug-free)

    [drugs]
    fluoxetine = "3.2 nM"           # free concentration; numbers without units are in M
    # escitalopram = "80%SERT"      # or the concentration that alone occupies 80 % of SERT

    [adaptation]                    # chronic adaptation: explicit factors
    autoreceptor_gain = 0.5
    transporter_expression = { SERT = 0.7 }

    [geometry]
    domain_radius_um = "8 um"

    [timing]
    duration_ms = 200

    [sites.SERT]
    vmax = "1.2 uM/s"

    [custom_drugs.mydrug]           # a drug that is not in the library
    class = "SSRI"
    ki = { SERT = "5 nM" }
    source = "my lab"

The sections and keys are those of :mod:`mcsyn.spec` (``transmitter``, ``geometry``,
``timing``, ``numerics``, ``release``, ``train``, ``sites.<label>``, ``degradation.<label>``,
``autoreceptor``) plus ``preset``, ``mode``, ``drugs``, ``adaptation`` and ``custom_drugs``. Unknown
keys (typos) are errors naming the key and the closest valid keys.

Round trip: ``load(save(cfg))`` equals ``cfg`` and builds the same model. :meth:`SynapseConfig.resolved`
gives the complete configuration (the preset merged with the overrides); a built model carries it
as ``model.config`` so that saved results can include it (:func:`dumps`).
"""
from __future__ import annotations

import copy
import os
import tomllib

import tomli_w
from dataclasses import dataclass, field

from . import library, spec as _spec
from .adaptation import Adaptation
from .build import build_from_spec
from .drug_schedule import DrugSchedule
from .errors import ModelError
from .library import Drug, suggest
from .mechanisms import MODES

CONFIG_KEYS = ("preset", "mode", "drugs", "adaptation", "custom_drugs")
ALL_KEYS = CONFIG_KEYS + tuple(k for k in _spec.TOP_KEYS if k not in ("aliases",))


def _normalise(value):
    """Tuples to lists, Drug, Adaptation and DrugSchedule objects to dicts, recursively (TOML has no tuples)."""
    if isinstance(value, Drug):
        return value.to_dict()
    if isinstance(value, Adaptation):
        return _normalise(value.to_dict())
    if isinstance(value, DrugSchedule):
        return value.to_config()
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value


@dataclass
class SynapseConfig:
    """A synapse + drugs description.

    Parameters
    ----------
    preset : str or None
        Built-in preset to start from (:func:`mcsyn.presets.names`); None for a complete
        specification in ``overrides``.
    mode : str
        Drug mode: ``"equilibrium"``, ``"kinetic"`` or ``"acute"`` (:mod:`mcsyn.drugs`).
    drugs : dict
        ``{drug name: concentration}`` (``"50 nM"``, ``"80%SERT"``; numbers are in M), or a
        concentration that changes during the run (:mod:`mcsyn.drug_schedule`).
    adaptation : dict
        Chronic adaptation factors (:class:`mcsyn.drugs.Adaptation` fields).
    custom_drugs : dict
        ``{name: {class, mechanism, ki, ...}}``: drugs defined here (``drugs.toml`` format).
    overrides : dict
        Sections of the specification that override the preset (nested dicts).
    """

    preset: str | None = None
    mode: str = "equilibrium"
    drugs: dict = field(default_factory=dict)
    adaptation: dict = field(default_factory=dict)
    custom_drugs: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)

    def __post_init__(self):
        self.drugs = _normalise(self.drugs or {})
        self.adaptation = _normalise(self.adaptation or {})
        self.custom_drugs = _normalise(self.custom_drugs or {})
        self.overrides = _normalise(_spec.undot(self.overrides or {}))

    # ------------------------------------------------------------------ checking
    def check(self):
        """Raise on anything invalid that can be seen without building (keys, names, mode)."""
        if self.preset is not None:
            _spec.canonical_name(self.preset)
        if self.mode not in MODES:
            suggest(self.mode, MODES, "drug mode", "mode")
        for key in ("drugs", "adaptation", "custom_drugs"):
            if not isinstance(getattr(self, key), dict):
                raise ModelError(key, getattr(self, key), "must be a table")
        _spec.check_spec(self.overrides)
        Adaptation.from_value(self.adaptation)
        for name, d in self.custom_drugs.items():
            if not isinstance(d, dict):
                raise ModelError(f"custom_drugs.{name}", d, "must be a table in the drugs.toml format")
            Drug.from_dict(name, d, f"custom_drugs.{name}")
        return self

    # ------------------------------------------------------------------ specification and model
    def spec(self) -> dict:
        """The complete specification: the preset with the overrides merged in."""
        self.check()
        base = _spec.spec(self.preset) if self.preset is not None else {}
        return _spec.merge(base, self.overrides)

    def resolved(self) -> "SynapseConfig":
        """The complete configuration: the preset merged in (``preset = None``), the library values
        it uses written out (:func:`mcsyn.spec.materialise`) and every library drug it uses
        copied into ``custom_drugs``, so that it builds the same model on its own."""
        s = _spec.materialise(self.spec())
        for k in ("description", "source", "sources"):
            s.pop(k, None)
        custom = copy.deepcopy(self.custom_drugs)
        for name in self.drugs:
            if name not in custom:
                custom[name] = _normalise(library.drug(name, f"drugs.{name}").to_dict())
        return SynapseConfig(None, self.mode, _normalise(self.drugs), _normalise(self.adaptation), custom, s)

    def build(self):
        """The :class:`~mcsyn.SynapseModel` (validated; carries ``.pharmacology`` and ``.config``)."""
        s = self.spec()
        custom = {name: Drug.from_dict(name, d, f"custom_drugs.{name}") for name, d in self.custom_drugs.items()}
        model = build_from_spec(s, self.drugs, self.mode, self.adaptation, custom)
        model.config = self.resolved()     # after the build has checked every value resolved() reads
        return model

    # ------------------------------------------------------------------ dict form
    def to_dict(self) -> dict:
        d = {}
        if self.preset is not None:
            d["preset"] = self.preset
        d["mode"] = self.mode
        for key in ("drugs", "adaptation", "custom_drugs"):
            if getattr(self, key):
                d[key] = _normalise(getattr(self, key))
        for key, value in self.overrides.items():
            d[key] = _normalise(value)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SynapseConfig":
        if not isinstance(d, dict):
            raise ModelError("configuration", d, "must be a table")
        for key in d:
            if key not in ALL_KEYS:
                suggest(key, ALL_KEYS, "configuration key", key)
        overrides = {k: v for k, v in d.items() if k not in CONFIG_KEYS}
        preset = d.get("preset")
        if preset is not None and not isinstance(preset, str):
            raise ModelError("preset", preset, "must be a preset name")
        cfg = cls(preset=preset, mode=d.get("mode", "equilibrium"), drugs=d.get("drugs", {}),
                  adaptation=d.get("adaptation", {}), custom_drugs=d.get("custom_drugs", {}), overrides=overrides)
        return cfg.check()


# ======================================================================================================
# reading and writing

def loads(text: str, source: str = "<string>") -> SynapseConfig:
    """Parse a TOML configuration string."""
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(source, "TOML", f"does not parse: {exc}") from None
    return SynapseConfig.from_dict(d)


def load(path) -> SynapseConfig:
    """Read a TOML configuration file."""
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(os.fspath(path), f"byte {data[exc.start:exc.start + 1]!r} at offset {exc.start}",
                         "a configuration file must be UTF-8 text (TOML)") from None
    return loads(text, os.fspath(path))


def to_toml(d: dict, header: str | None = None) -> str:
    """A TOML document (written by tomli_w) for a nested dict of strings, numbers, booleans, lists
    and tables, with ``header`` as leading comment lines."""
    try:
        body = tomli_w.dumps(d)
    except TypeError as err:
        raise ModelError("configuration value", d, f"must hold only strings, numbers, booleans, lists and "
                                                   f"tables ({err})") from None
    comments = "".join(f"# {line}\n" for line in (header or "").splitlines())
    return comments + body


def dumps(config: SynapseConfig, resolved: bool = False) -> str:
    """The configuration as TOML (``resolved=True``: with the preset merged in)."""
    cfg = config.resolved() if resolved else config
    head = "mcsyn synapse configuration" + (" (resolved: preset merged in)" if resolved else "")
    return to_toml(cfg.to_dict(), head)


def save(config: SynapseConfig, path, resolved: bool = False):
    """Write ``config`` to ``path`` as TOML."""
    text = dumps(config, resolved)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path
