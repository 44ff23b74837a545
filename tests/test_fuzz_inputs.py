"""Bad input gives a clear error or a valid run, never anything else.

Random but type-plausible configurations reach every entry point: preset overrides
(``presets.build``), TOML text and files (``config.loads`` / ``config.load``), the command line's
``--set`` path (parser + the conditions it builds, without running) and models built by hand in
Python. Each must end in a :class:`mcsyn.ModelError`, or in a model that

* runs (under a small work budget, :mod:`mcsyn.budget`: a refusal is a ModelError too),
* conserves molecules at every sample and ends with finite outputs and positions,
* and whose saved configuration (``model.config``) loads again into the same model.

The number of examples per entry point is small here (``FUZZ_EXAMPLES``, derandomised so that CI
is deterministic); ``MCSYN_FUZZ_EXAMPLES=10000`` runs the long search.
"""
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mcsyn
from mcsyn import config, presets, spec
from mcsyn.errors import ModelError
from mcsyn.storage import to_plain

FUZZ_EXAMPLES = int(os.environ.get("MCSYN_FUZZ_EXAMPLES", "120"))
FUZZ_MAX_STEPS = 3e6        # work budget of one fuzzed run (molecule-steps + site events)
SETTINGS = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))

PRESETS = presets.names()
PRESET_SPECS = {name: spec.spec(name) for name in PRESETS}
# a short run for every preset: 200 µs is a whole number of every preset's steps and samples
SHORT = {"timing.duration_ms": 0.2, "timing.sample_interval_us": 100.0, "train.enabled": False}

# ======================================================================================================
# values

UNIT_TEXTS = ["0.2 um", "250 nm", "5 ms", "20 /s", "1e7 /M/s", "50 nM", "0.3 um^2/ms", "800 /um^2", "1.2 uM/s",
              "10**10**10 um", "1e400 nM", "nan um", "inf ms", "-3 um", "5", "50 %", "um", "", "  ", "2 um um",
              "(1+", "1e-30 um", "1e30 ms", "3 furlongs", "1/0 um", "2**2000 um", "0x10 um", "1_000 nm", "1 um" * 50,
              "5 kg", "80%SERT", "True", "[1, 2]", "{}", "é µm", "1e9 mM"]
EXTREME_NUMBERS = [0, -1, 1, 2, 0.5, -0.0, 1e-9, 1e-300, 5e-324, 1e9, 1e10, 1e12, 1e308, 10 ** 20, 2 ** 63, 10 ** 400,
                   float("inf"), -float("inf"), float("nan")]

numbers = st.one_of(st.sampled_from(EXTREME_NUMBERS), st.integers(-10, 10 ** 6),
                    st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 100))
scalars = st.one_of(numbers, st.booleans(), st.sampled_from(UNIT_TEXTS), st.text(max_size=12))
wild = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                    max_leaves=6)


def scaled(value):
    """Values near a valid one: scaled, negated, or as text with its unit."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return st.just(value)
    return st.sampled_from([1, 0.5, 2, 0.1, 10, 0, 1e3, -1]).map(lambda f: type(value)(value * f))


def near(value):
    """Three times in four a value near the preset's (when it has one), else a wild one."""
    plain = st.one_of(st.floats(0, 1e3), st.integers(0, 100), st.sampled_from(UNIT_TEXTS), st.booleans())
    close = plain if value is None else scaled(value)
    return st.sampled_from(["near", "near", "near", "wild"]).flatmap(lambda c: close if c == "near" else wild)


# ======================================================================================================
# checking an outcome

def check_valid(model):
    """A model the Python layer accepted: it compiles and runs (or is refused with a ModelError),
    conserves molecules, ends finite, and its configuration round-trips to the same model."""
    if getattr(model, "config", None) is not None:
        text = config.dumps(model.config)
        again = config.loads(text).build()
        assert to_plain(again) == to_plain(model), "the saved configuration builds another model"
    try:
        cm = mcsyn.compile_model(model)
        result = mcsyn.run_one(cm, seed=3, keep_positions=True, max_steps=FUZZ_MAX_STEPS)
    except ModelError:
        return "refused"
    s = result.series
    assert np.isfinite(s.to_numpy(dtype=float)).all()
    kept = s[["free", "bound", "taken_up", "escaped", "degraded"]].sum(axis=1)     # efflux counts as released
    np.testing.assert_array_equal(s["released"].to_numpy(), kept.to_numpy())
    for key in ("slab_positions", "volume_positions"):
        assert np.isfinite(np.asarray(result.positions[key], dtype=float)).all(), key
    for key, value in result.metrics.items():
        assert not isinstance(value, float) or math.isfinite(value) or "half_time" in key or "fraction" in key \
            or "blocked" in key or "current" in key, (key, value)
    return "ran"


def outcome(make):
    try:
        model = make()
    except ModelError:
        return "error"
    return check_valid(model)


# ======================================================================================================
# preset overrides

@st.composite
def overrides(draw):
    name = draw(st.sampled_from(PRESETS))
    s = PRESET_SPECS[name]
    over = dict(SHORT) if draw(st.booleans()) or draw(st.booleans()) else {}
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["section", "site", "section", "site", "section", "site", "degradation",
                                      "whole", "typo"]))
        if where == "section":
            sec = draw(st.sampled_from(sorted(spec.SECTIONS)))
            key = draw(st.sampled_from(spec.SECTIONS[sec]))
            current = s.get(sec, {}).get(key)
            over[f"{sec}.{key}"] = draw(near(current))
        elif where == "site" and s.get("sites"):
            label = draw(st.sampled_from(sorted(s["sites"])))
            key = draw(st.sampled_from(spec.SITE_KEYS))
            current = s["sites"][label].get(key)
            over[f"sites.{label}.{key}"] = draw(near(current))
        elif where == "degradation":
            label = draw(st.sampled_from(sorted(s.get("degradation", {})) + ["new"]))
            over[f"degradation.{label}.{draw(st.sampled_from(spec.DEGRADATION_KEYS))}"] = draw(wild)
        elif where == "whole":
            over[draw(st.sampled_from(["sites", "degradation", "geometry", "timing", "release", "train",
                                       "transmitter", "clamp"]))] = draw(wild)
        else:
            over[draw(st.text(min_size=1, max_size=8))] = draw(wild)
    return name, over


@SETTINGS
@given(overrides())
def test_preset_overrides(case):
    name, over = case
    outcome(lambda: presets.build(name, **over))


# ======================================================================================================
# TOML text and files

ADAPTATIONS = [{"autoreceptor_gain": 0.5}, {"transporter_expression": {"SERT": 0.7}},
               {"receptor_density": {"D2": 1.5}, "receptor_affinity": {"D2": 2.0}}]
CUSTOM_DRUG = {"class": "releaser", "mechanism": "substrate", "ki": {"DAT": "0.6 uM", "SERT": "30 uM"},
               "koff_per_s": 10.0, "translocation_per_s": 20.0, "efflux_per_s": 0.2, "source": "fuzz"}


@st.composite
def toml_documents(draw):
    name, over = draw(overrides())
    doc = {}
    for key, value in over.items():          # nested by hand: a TOML document has each key once
        *parents, last = key.split(".")
        node = doc
        for p in parents:
            node = node[p] if isinstance(node.get(p), dict) else node.setdefault(p, {})
            if not isinstance(node, dict):
                break
        else:
            node[last] = value
    if draw(st.booleans()):
        doc["preset"] = name
    else:
        doc = {**draw(st.sampled_from([PRESET_SPECS[n] for n in PRESETS])), **doc}
        doc.pop("aliases", None)
    if draw(st.booleans()):
        doc["drugs"] = draw(st.dictionaries(st.sampled_from(["cocaine", "fluoxetine", "escitalopram", "nope"]),
                                            st.one_of(st.sampled_from(["50 nM", "80%SERT", "1 uM", "-1 nM"]), wild),
                                            max_size=2))
    if draw(st.booleans()):
        doc["mode"] = draw(st.one_of(st.sampled_from(["equilibrium", "kinetic", "acute"]), wild))
    if draw(st.booleans()):
        doc["adaptation"] = {key: draw(near(value)) for key, value in draw(st.sampled_from(ADAPTATIONS)).items()}
    if draw(st.booleans()):
        drug = {key: draw(near(value)) if draw(st.booleans()) else value for key, value in CUSTOM_DRUG.items()}
        doc["custom_drugs"] = {"mydrug": drug}
        doc["drugs"] = {"mydrug": draw(st.sampled_from(["10 nM", "50%DAT", "1 uM", 1e-7]))}
    return doc


def _to_toml(doc):
    import tomli_w
    try:
        return tomli_w.dumps(doc)
    except (TypeError, ValueError):
        return None          # not expressible in TOML (non-string keys, mixed arrays...)


def toml_outcome(doc, how, folder):
    text = _to_toml(doc)
    if text is None:
        return "not TOML"
    if how == "text":
        return outcome(lambda: config.loads(text).build())
    path = folder / "c.toml"
    data = text.encode("utf-8")
    if how == "latin-1":
        data = ("# caf\xe9 \u00b5m\n" + text).encode("latin-1", errors="replace")
    elif how == "garbled":
        data = data[: len(data) // 2] + b"\xff\xfe\x00" + data[len(data) // 2:]
    path.write_bytes(data)
    return outcome(lambda: config.load(path).build())


@SETTINGS
@given(doc=toml_documents(), how=st.sampled_from(["text", "file", "latin-1", "garbled"]))
def test_toml_configurations(doc, how, tmp_path_factory):
    toml_outcome(doc, how, tmp_path_factory.mktemp("cfg"))


# ======================================================================================================
# the command line (parser and conditions, not the run)

def _setting_text(value):
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return str(value)


CLAMPS = st.one_of(st.none(), st.sampled_from(["-70", "-70mV", "0 mV", "1e308", "nan", "x"]))


def command_line_outcome(case, clamp):
    from mcsyn import cli
    from mcsyn.ensemble import make_conditions
    name, over = case
    argv = ["run", name, "--out", "/nonexistent/fuzz"]
    for key, value in over.items():
        if isinstance(value, (dict, list)):
            continue
        argv += ["--set", f"{key}={_setting_text(value)}"]
    if clamp is not None:
        argv += [f"--clamp={clamp}"]
    try:
        args = cli.build_parser().parse_args(argv)
    except SystemExit:
        return "usage"              # argparse refused it, with its own message
    settings_ = dict(args.settings) | cli._clamp_settings(args)

    def make():
        (cond,) = make_conditions(args.target, mode=args.mode, **settings_)
        return cond.model
    return outcome(make)


@SETTINGS
@given(overrides(), CLAMPS)
def test_command_line_settings(case, clamp):
    command_line_outcome(case, clamp)


# ======================================================================================================
# models built by hand

SCHEMES = [lambda: mcsyn.ampa_jonas1993(), lambda: mcsyn.transporter_cycle("T", "glutamate", 1e7, 100, 50, 5),
           lambda: mcsyn.enzyme_site("E", "glutamate", 1e7, 10, 1e4),
           lambda: mcsyn.one_site_receptor("R", "glutamate", 1e7, 100)]


HAND_FIELDS = ("outside", "cleft_height_um", "cleft_radius_um", "psd_radius_um", "domain_radius_um",
               "volume_enters_cleft", "location", "amount", "arrangement", "n_clusters", "cluster_radius_um",
               "initial_state_fractions", "time_ms", "molecules", "position_um", "into", "pore_tau_ms", "quantal_cv",
               "molecule_distribution", "probability", "rate_per_s", "region", "duration_ms", "dt_fine_us",
               "dt_volume_us", "sample_interval_us", "name", "diffusion_um2_per_ms", "tile_um", "voxel_um")


@st.composite
def hand_models(draw):
    """A model built from the dataclasses, with up to two fields (by name) wild or extreme."""
    bad = draw(st.sets(st.sampled_from(HAND_FIELDS), max_size=2))

    def f(name, plausible):
        return draw(st.one_of(wild, st.sampled_from(EXTREME_NUMBERS)) if name in bad else plausible)

    outside = f("outside", st.sampled_from(mcsyn.model.OUTSIDE_KINDS))
    geometry = mcsyn.Geometry(outside=outside, cleft_height_um=f("cleft_height_um", st.floats(0.01, 0.04)),
                              cleft_radius_um=f("cleft_radius_um", st.floats(0.15, 0.4)),
                              psd_radius_um=f("psd_radius_um", st.floats(0.02, 0.15)),
                              domain_radius_um=f("domain_radius_um", st.floats(1.0, 3.0)),
                              volume_enters_cleft=f("volume_enters_cleft", st.sampled_from([None, True, False])))
    locations = [loc for loc in mcsyn.model.SITE_LOCATIONS
                 if outside not in mcsyn.model.OUTSIDE_KINDS or
                 mcsyn.geometry.LOCATION_COMPARTMENT[loc] in mcsyn.geometry.OUTSIDE[outside].compartments]
    sites = []
    for _ in range(draw(st.integers(0, 2))):
        loc = f("location", st.sampled_from(locations))
        how = draw(st.sampled_from(["count", "density_per_um3" if loc == "volume" else "density_per_um2",
                                    "coordinates_um"]))
        kw = {how: f("amount", st.integers(0, 50) if how == "count" else st.floats(0, 500))}
        if how == "coordinates_um":
            kw = {"arrangement": "coordinates",
                  "coordinates_um": f("amount", st.lists(st.tuples(st.floats(-0.1, 0.1), st.floats(-0.1, 0.1)),
                                                         max_size=4))}
        elif draw(st.booleans()):
            kw.update(arrangement=f("arrangement", st.sampled_from(["clustered", "uniform"])),
                      n_clusters=f("n_clusters", st.integers(1, 3)),
                      cluster_radius_um=f("cluster_radius_um", st.floats(0.01, 0.1)))
        if draw(st.booleans()):
            kw["initial_state_fractions"] = f("initial_state_fractions", st.dictionaries(
                st.sampled_from(["C0", "free", "E", "x"]), st.floats(0, 0.5), max_size=2))
        scheme = draw(st.sampled_from(SCHEMES[1:] if loc == "volume" else SCHEMES))()
        sites.append(mcsyn.SiteGroup(scheme, loc, name=f"g{len(sites)}", **kw))
    into = "volume" if outside == "volume" and draw(st.booleans()) else "cleft"
    position = st.tuples(st.floats(0.3, 0.5), st.floats(0, 0.1), st.floats(0, 0.1)) if into == "volume" else \
        st.tuples(st.floats(-0.1, 0.1), st.floats(-0.1, 0.1))
    releases = [mcsyn.Release(time_ms=f("time_ms", st.floats(0, 0.1)), molecules=f("molecules", st.integers(1, 3000)),
                              position_um=f("position_um", st.one_of(st.none(), position)),
                              into=f("into", st.just(into)), pore_tau_ms=f("pore_tau_ms", st.sampled_from([0.0, 0.02])),
                              quantal_cv=f("quantal_cv", st.sampled_from([0.0, 0.3])),
                              molecule_distribution=f("molecule_distribution",
                                                      st.sampled_from(["fixed", "poisson", "gamma"])),
                              probability=f("probability", st.floats(0, 1)))
                for _ in range(draw(st.integers(1, 2)))]
    degradation = [mcsyn.Degradation(f("rate_per_s", st.floats(0, 500)), f("region", st.sampled_from(["all", "cleft"])))
                   for _ in range(draw(st.integers(0, 1)))]
    timing = mcsyn.Timing(duration_ms=f("duration_ms", st.sampled_from([0.1, 0.2])),
                          dt_fine_us=f("dt_fine_us", st.sampled_from([1.0, 0.5])),
                          dt_volume_us=f("dt_volume_us", st.sampled_from([10.0, 5.0])),
                          sample_interval_us=f("sample_interval_us", st.sampled_from([10.0, 20.0])))
    species = [mcsyn.Species(f("name", st.just("glutamate")), f("diffusion_um2_per_ms", st.floats(0.1, 0.8)))]
    return dict(species=species, geometry=geometry, sites=sites, releases=releases, degradation=degradation,
                timing=timing, tile_um=f("tile_um", st.sampled_from([0.01, 0.02])),
                voxel_um=f("voxel_um", st.sampled_from([0.25, 0.5])))


@SETTINGS
@given(hand_models())
def test_models_built_by_hand(fields):
    outcome(lambda: mcsyn.SynapseModel(**fields).validate())


# ======================================================================================================
# the classes the fuzzing found, one example each

@pytest.mark.parametrize("overrides", [
    {"sites.AMPA.entry": {"a": 1}}, {"degradation": 5}, {"sites": 5}, {"geometry.cleft_radius_um": "wide"},
    {"timing.duration_ms": float("inf")}, {"timing.duration_ms": 1e308}, {"sites.AMPA.count": 10 ** 30},
    {"release.molecules": 1e308}, {"geometry.cleft_radius_um": "10**10**10 um"},
    {"timing.dt_fine_us": 1e-9}, {"timing.sample_interval_us": 1e-300}, {"timing.duration_ms": 1e-7},
    {"timing.duration_ms": 1e6, "timing.sample_interval_us": 1.0}, {"sites.AMPA.count": 3e9},
    {"sites.AMPA.density_per_um2": 1e14}, {"release.molecules": 1e9}, {"timing.duration_ms": "5 ms ** 2"},
    {"geometry": {"cleft_radius_um": 0.3}, "geometry.cleft_radius_um": 0.25}, {"release.quantal_cv": 1e-300},
    {"release.position_um": [float("nan"), 0.0]}, {"release.position_um": ["a", "b"]},
    {"sites.AMPA.entry": 5}, {"release": 5}, {"sites.AMPA": "AMPA"}, {"release.enabled": "yes"},
])
def test_known_bad_overrides_are_model_errors(overrides):
    with pytest.raises(ModelError):
        mcsyn.run_one(presets.build("glutamatergic", **overrides))


def test_dt_fine_below_a_picosecond_is_refused_by_the_model_and_small_ones_by_the_budget():
    with pytest.raises(ModelError, match="timing.dt_fine_us"):
        presets.build("glutamatergic", **{"timing.dt_fine_us": 1e-9})
    m = presets.build("glutamatergic", **{"timing.dt_fine_us": 1e-4, "timing.dt_volume_us": 1.0})
    with pytest.raises(ModelError, match="max_steps"):
        mcsyn.run_one(m)


def test_a_model_changed_after_its_build_has_no_configuration():
    m = presets.build("glutamatergic")
    assert m.config is not None
    m.timing.duration_ms = 1.0          # the saved configuration would build the 5 ms model
    assert m.config is None
    m2 = presets.build("glutamatergic", name="mine")      # "name" is an override, not build's argument
    assert m2.name == "mine" and config.loads(config.dumps(m2.config)).build().name == "mine"


def test_non_utf8_file_is_a_model_error_naming_it(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_bytes(b'preset = "glutamatergic"\n# caf\xe9\n')
    with pytest.raises(ModelError, match="bad.toml"):
        config.load(path)


def test_nan_release_position_is_refused():
    m = mcsyn.SynapseModel(releases=[mcsyn.Release(position_um=(float("nan"), 0.0))])
    with pytest.raises(ModelError, match=r"releases\[0\].position_um"):
        m.validate()
