"""TOML configuration: round trip, resolved configurations, Python construction, bad input."""
import pytest

from mcsyn import ModelError, config, presets
from mcsyn.config import SynapseConfig

# the example mixes kinetic and equilibrium-only drugs and warns about it
pytestmark = pytest.mark.filterwarnings("ignore::mcsyn.drugs.PharmacologyWarning")

EXAMPLE = """
preset = "serotonergic"
mode = "kinetic"

[drugs]
fluoxetine = "3.2 nM"
"venlafaxine@bymaster2001" = "40 nM"
my_ssri = "2 nM"

[adaptation]
autoreceptor_gain = 0.5
transporter_expression = { SERT = 0.7 }
receptor_affinity = { "5-HT1B" = 2.0 }

[custom_drugs.my_ssri]
class = "SSRI"
ki = { SERT = "1 nM", NET = "1 uM" }
source = "test"

[transmitter]
ambient = "5 nM"

[geometry]
domain_radius_um = "6 um"

[timing]
duration_ms = 200

[train]
enabled = true
n_stimuli = 4
frequency_hz = 20
release_probability = 0.4

[autoreceptor]
gain = 0.4
occupancy_per_release = 0.2

[sites.SERT]
vmax = "1.2 uM/s"

[sites."5-HT2A"]
enabled = false
"""


def test_round_trip_load_save_load(tmp_path):
    p = tmp_path / "a.toml"
    p.write_text(EXAMPLE)
    a = config.load(p)
    config.save(a, tmp_path / "b.toml")
    b = config.load(tmp_path / "b.toml")
    assert a == b
    assert a.build() == b.build()
    assert config.dumps(b) == config.dumps(a)


def test_the_same_object_built_in_python():
    cfg = SynapseConfig(
        preset="serotonergic", mode="kinetic",
        drugs={"fluoxetine": "3.2 nM", "venlafaxine@bymaster2001": "40 nM", "my_ssri": "2 nM"},
        adaptation={"autoreceptor_gain": 0.5, "transporter_expression": {"SERT": 0.7},
                    "receptor_affinity": {"5-HT1B": 2.0}},
        custom_drugs={"my_ssri": {"class": "SSRI", "ki": {"SERT": "1 nM", "NET": "1 uM"}, "source": "test"}},
        overrides={"transmitter.ambient": "5 nM", "geometry": {"domain_radius_um": "6 um"},
                   "timing": {"duration_ms": 200},
                   "train": {"enabled": True, "n_stimuli": 4, "frequency_hz": 20, "release_probability": 0.4},
                   "autoreceptor": {"gain": 0.4, "occupancy_per_release": 0.2},
                   "sites": {"SERT": {"vmax": "1.2 uM/s"}, "5-HT2A": {"enabled": False}}})
    assert cfg == config.loads(EXAMPLE)
    model = cfg.build()
    assert model.geometry.domain_radius_um == 6.0
    assert [g.label for g in model.sites] == ["SERT", "5-HT1A"]
    assert len(model.releases) == 5                   # single release + 4 stimuli with feedback
    same = presets.build("serotonergic", drugs=cfg.drugs, mode="kinetic", adaptation=cfg.adaptation,
                         custom_drugs=cfg.custom_drugs, **cfg.overrides)
    assert same == model


def test_resolved_configuration_is_complete_and_builds_the_same_model(tmp_path):
    cfg = config.loads(EXAMPLE)
    model = cfg.build()
    full = model.config                                 # a built model carries its resolved config
    assert full.preset is None and full == cfg.resolved()
    assert full.overrides["transmitter"]["diffusion_um2_per_ms"] == pytest.approx(0.763)
    assert "fluoxetine" in full.custom_drugs            # library drugs copied in
    text = config.dumps(cfg, resolved=True)
    again = config.loads(text)
    assert again == full
    assert again.build() == model
    config.save(again, tmp_path / "r.toml")
    assert config.load(tmp_path / "r.toml").build() == model


def test_every_preset_round_trips():
    for name in presets.names():
        cfg = SynapseConfig(preset=name)
        assert config.loads(config.dumps(cfg)).build() == cfg.build()
        assert config.loads(config.dumps(cfg, resolved=True)).build() == cfg.build()


@pytest.mark.parametrize("text, field, suggestion", [
    ('preset = "serotonergic"\ndrugz = {}\n', "drugz", "drugs"),
    ('preset = "serotonergic"\n[geometry]\ndomain_radius = 5\n', "geometry.domain_radius", "domain_radius_um"),
    ('preset = "serotonergic"\n[sites.SERT]\nvmaxx = "1 uM/s"\n', "sites.SERT.vmaxx", "vmax"),
    ('preset = "serotonergic"\n[adaptation]\ntransporter_expresion = {SERT = 0.5}\n',
     "adaptation.transporter_expresion", "transporter_expression"),
    ('preset = "serotonergik"\n', "preset", "serotonergic"),
    ('preset = "serotonergic"\nmode = "kinetc"\n', "mode", "kinetic"),
    ('preset = "serotonergic"\n[custom_drugs.x]\nkii = { SERT = "1 nM" }\n', "custom_drugs.x.kii", "ki"),
])
def test_unknown_keys_and_names_are_errors_with_the_closest_valid_names(text, field, suggestion):
    with pytest.raises(ModelError) as info:
        config.loads(text)
    msg = str(info.value)
    assert msg.startswith(field) and repr(suggestion) in msg


@pytest.mark.parametrize("text, field", [
    ('preset = "serotonergic"\n[drugs]\nfluoxetine = "5 ms"\n', "drugs.fluoxetine"),
    ('preset = "serotonergic"\n[drugs]\nfluoxetine = "-5 nM"\n', "drugs.fluoxetine"),
    ('preset = "serotonergic"\n[drugs]\nfluoxetine = -5e-9\n', "drugs.fluoxetine"),
    ('preset = "serotonergic"\n[geometry]\ndomain_radius_um = "5 nM"\n', "geometry.domain_radius_um"),
    ('preset = "serotonergic"\n[timing]\nduration_ms = "1 um"\n', "timing.duration_ms"),
    ('preset = "serotonergic"\n[drugs]\nx = "1 nM"\n[custom_drugs.x]\nki = { SERT = "0 nM" }\n', "custom_drugs.x.ki.SERT"),
    ('preset = "serotonergic"\n[drugs]\nfluoxetin = "1 nM"\n', "drugs.fluoxetin"),
])
def test_bad_values_name_the_field_before_any_run(text, field):
    with pytest.raises(ModelError) as info:
        config.loads(text).build()
    assert str(info.value).startswith(field)


def test_toml_syntax_errors_are_reported():
    with pytest.raises(ModelError, match="does not parse"):
        config.loads("preset = \n")


def test_config_and_the_builder_do_not_import_presets():
    """presets is the public face on top of config, spec and build: none of those imports it back."""
    import ast
    import pathlib

    import mcsyn
    root = pathlib.Path(mcsyn.__file__).parent
    for name in ("config", "spec", "build", "drugs", "mechanisms", "adaptation", "autoreceptor", "library"):
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1
                    for a in n.names} | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "presets" not in imported, name


def test_values_of_the_wrong_type_name_their_dotted_path():
    cases = {'[sites.AMPA]\nentry = { a = 1 }': "sites.AMPA.entry", "degradation = 5": "degradation",
             "sites = 5": "sites", '[geometry]\ncleft_radius_um = "wide"': "geometry.cleft_radius_um",
             "[geometry]\ncleft_radius_um = [1, 2]": "geometry.cleft_radius_um",
             '[release]\nenabled = "yes"': "release.enabled", "[timing]\nduration_ms = inf": "timing.duration_ms",
             '[geometry]\ncleft_radius_um = "10**10**10 um"': "geometry.cleft_radius_um"}
    for body, field in cases.items():
        with pytest.raises(ModelError, match=field.replace(".", r"\.")):
            config.loads(f'preset = "glutamatergic"\n{body}\n').build()


def test_a_key_given_twice_is_refused():
    with pytest.raises(ModelError, match="given twice"):
        presets.build("glutamatergic", geometry={"cleft_radius_um": 0.3}, **{"geometry.cleft_radius_um": 0.25})
