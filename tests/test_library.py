"""The built-in library: every entry cited and with units, lookups, variants, unit parsing."""
import math

import pytest

from mcsyn import ModelError, library
from mcsyn.library import UnknownNameError
from mcsyn.units import parse_quantity, unit_for_field


def test_every_library_entry_has_units_and_a_source():
    assert library.audit() == []
    for kind in library.KINDS:
        for name, entry in library.raw(kind).items():
            assert entry["source"].strip(), f"{kind}.{name}"


@pytest.mark.parametrize("kind, required", [
    ("transmitters", ["serotonin", "dopamine", "norepinephrine", "glutamate", "GABA", "acetylcholine"]),
    ("transporters", ["SERT", "DAT", "NET", "EAAT2", "GLAST", "GAT1"]),
    ("receptors", ["AMPA", "NMDA", "GABA_A", "nAChR", "D1", "D2", "5-HT1A", "5-HT1B", "5-HT2A",
                   "alpha1", "alpha2", "beta1"]),
    ("enzymes", ["AChE", "COMT"]),
    ("drugs", ["fluoxetine", "sertraline", "paroxetine", "citalopram", "escitalopram", "fluvoxamine",
               "venlafaxine", "desvenlafaxine", "duloxetine", "milnacipran", "bupropion", "cocaine",
               "methylphenidate", "amphetamine", "tranylcypromine"]),
])
def test_library_holds_the_entries_of_the_issue(kind, required):
    assert set(required) <= set(library.names(kind))
    get = {"transmitters": library.transmitter, "transporters": library.transporter, "receptors": library.receptor,
           "enzymes": library.enzyme, "drugs": library.drug}[kind]
    for name in required:
        entry = get(name)
        assert entry.source


def test_transmitters_have_diffusion_content_and_release_profile():
    for name in library.names("transmitters"):
        t = library.transmitter(name)
        assert t.diffusion_um2_per_ms > 0 and t.molecules_per_vesicle >= 1
        assert 0 < t.fraction_released <= 1
        assert t.release_profile in ("instantaneous", "exponential_pore")
        for key in ("diffusion_um2_per_ms", "molecules_per_vesicle", "fraction_released", "release_profile"):
            assert t.sources.get(key), f"{name}.{key} has no per-field source"


def test_drugs_have_class_positive_ki_at_library_targets():
    classes = {library.drug(n).drug_class for n in library.names("drugs")}
    assert {"SSRI", "SNRI", "NDRI", "MAOI", "releaser"} <= classes
    for name in library.names("drugs"):
        d = library.drug(name)
        assert d.targets(), name
        for target, ki in d.targets().items():
            assert ki > 0 and math.isfinite(ki)
            if target != "MAO":
                library.site_entry(target)       # every target is a library transporter or receptor
    assert library.drug("fluoxetine").ki_M["SERT"] == pytest.approx(0.81e-9)
    assert library.drug("fluoxetine").off_targets_M["5-HT2C"] == pytest.approx(81e-9)
    assert library.drug("cocaine").koff_per_s > 0


def test_dat_cycle_reproduces_the_bulk_km_and_turnover():
    dat = library.transporter("DAT")
    assert dat.km_M == pytest.approx(0.2e-6, rel=1e-9)           # Michael et al. 2005
    assert dat.kcat_per_s == pytest.approx(4.0 / 3.0, rel=1e-6)   # Kaya 2018 cycle
    t = dat.ecs_concentration_for_vmax(dat.vmax_M_per_s["dorsal_striatum"])
    assert t == pytest.approx(3.0e-6, rel=1e-6)
    # low-concentration clearance = Vmax/Km
    assert dat.clearance_rate_per_s(t) == pytest.approx(4.0e-6 / 0.2e-6, rel=1e-6)


@pytest.mark.parametrize("name", ["DAT", "SERT", "NET"])
def test_monoamine_transporters_reproduce_their_library_km(name):
    raw = library.raw("transporters")[name]
    km = parse_quantity(raw["km"], "M", name)
    t = library.transporter(name)
    assert t.km_M == pytest.approx(km, rel=1e-9)
    assert t.koff_per_s >= 0
    assert t.vmax_M_per_s


def test_conflicting_sources_are_selectable_variants():
    default, alt = library.drug("venlafaxine"), library.drug("venlafaxine@bymaster2001")
    assert default.ki_M["SERT"] == pytest.approx(8.9e-9)
    assert alt.ki_M["SERT"] == pytest.approx(82e-9)
    assert "Bymaster" in alt.source and alt.label == "venlafaxine@bymaster2001"
    assert library.transmitter("dopamine@kaya2018").diffusion_um2_per_ms == pytest.approx(0.40)
    assert library.transmitter("dopamine").diffusion_um2_per_ms == pytest.approx(0.763)
    content = library.transmitter("dopamine@omiatek2013")
    assert content.molecules_per_vesicle == 33000
    assert content.released_molecules == pytest.approx(3000, rel=0.01)


def test_aliases_and_case_are_accepted():
    assert library.transmitter("5-HT").name == "serotonin"
    assert library.transporter("glt-1").name == "EAAT2"
    assert library.receptor("gabaa").name == "GABA_A"
    assert library.site_entry("acetylcholinesterase").name == "AChE"


@pytest.mark.parametrize("lookup, name, suggestion", [
    (library.transmitter, "serotnin", "serotonin"),
    (library.receptor, "D3", "D2"),
    (library.transporter, "SERTT", "SERT"),
    (library.drug, "fluoxetin", "fluoxetine"),
    (library.drug, "venlafaxine@bymaster", "bymaster2001"),
    (library.site_entry, "AMPPA", "AMPA"),
])
def test_unknown_names_list_the_closest(lookup, name, suggestion):
    with pytest.raises(UnknownNameError) as info:
        lookup(name)
    assert f"did you mean '{suggestion}'" in str(info.value) or repr(suggestion) in str(info.value)
    assert isinstance(info.value, ModelError)


def test_parse_quantity_units_and_errors():
    assert parse_quantity("50 nM", "M", "drugs.x") == pytest.approx(5e-8)
    assert parse_quantity("0.2 uM", "M", "drugs.x") == pytest.approx(2e-7)
    assert parse_quantity("0.2 µM", "M", "drugs.x") == pytest.approx(2e-7)
    assert parse_quantity(3e-9, "M", "drugs.x") == 3e-9
    assert parse_quantity("763 um^2/s", "um^2/ms", "d") == pytest.approx(0.763)
    assert parse_quantity("4 uM/s", "M/s", "vmax") == pytest.approx(4e-6)
    with pytest.raises(ModelError, match=r"drugs\.fluoxetine.*time.*concentration"):
        parse_quantity("5 ms", "M", "drugs.fluoxetine")
    with pytest.raises(ModelError, match=r"drugs\.fluoxetine.*no units"):
        parse_quantity("5", "M", "drugs.fluoxetine")
    with pytest.raises(ModelError, match="negative"):
        parse_quantity("-5 nM", "M", "drugs.fluoxetine")
    with pytest.raises(ModelError, match="does not parse"):
        parse_quantity("5 blorps", "M", "drugs.fluoxetine")
    assert unit_for_field("geometry.cleft_radius_um") == "um"
    assert unit_for_field("koff_per_s") == "1/s"
    assert unit_for_field("kon_per_M_per_s") == "1/M/s"
    assert unit_for_field("volume_fraction") is None


def test_transporter_cycle_algebra_has_one_home():
    from mcsyn.schemes import TransporterCycle, transporter_cycle_rates
    dat = library.transporter("DAT")
    cycle = transporter_cycle_rates(dat.scheme())
    assert cycle == dat.cycle == (dat.kon_per_M_per_s, dat.koff_per_s, dat.translocation_per_s, dat.return_per_s,
                                  "Ti", "dopamine")
    kon, koff, ktr, kret = cycle[:4]                      # still unpacks like the old tuple
    assert cycle.km_M == pytest.approx((koff + ktr) / kon * kret / (ktr + kret), rel=1e-15)
    assert cycle.koff_for_km(cycle.km_M) == pytest.approx(koff, rel=1e-9)
    assert TransporterCycle(kon, 0.0, ktr, kret).km_M == pytest.approx(cycle.smallest_km_M, rel=1e-15)
    assert cycle.koff_for_km(0.5 * cycle.smallest_km_M) < 0
    assert cycle.clearance_rate_per_s(3e-6) == pytest.approx(kon * 3e-6 * cycle.uptake_probability, rel=1e-12)
    assert transporter_cycle_rates(library.receptor("D2").scheme()) is None


def test_every_citation_lives_in_the_project():
    """A clone is self-contained: no file cites the reference notes outside the repository, every
    entry and variant names its source, every per-field citation is non-empty, and REFERENCES.md
    (the list of all sources, with the legend of the tags) is there."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    outside = ("parameters" + ".md", "shared" + "/reference")        # split so this file does not match
    files = [root / "README.md", root / "REFERENCES.md"]
    for folder in ("mcsyn", "tests"):
        files += [p for p in (root / folder).rglob("*")
                  if p.is_file() and p.suffix in (".py", ".toml", ".md", ".txt", ".pyx", ".pxd", ".cfg")]
    this_file = Path(__file__).resolve()
    offenders = [f"{p.relative_to(root)}: {word}" for p in files if p.resolve() != this_file
                 for word in outside if word in p.read_text(encoding="utf-8")]
    assert offenders == []
    references = (root / "REFERENCES.md").read_text(encoding="utf-8")
    for tag in ("[V]", "[V2]", "[V3]", "[D]", "[U]", "ASSUMED"):
        assert tag in references
    for kind in library.KINDS:
        for name, entry in library.raw(kind).items():
            assert str(entry.get("source", "")).strip(), f"{kind}.{name}"
            for variant, v in entry.get("variants", {}).items():
                assert str(v.get("source", "")).strip(), f"{kind}.{name}.variants.{variant}"
            for field, citation in entry.get("sources", {}).items():
                assert isinstance(citation, str) and citation.strip(), f"{kind}.{name}.sources.{field}"
