"""Site-group labels: hand-built models name metrics as presets do (``AMPA:…``); the location is
added only where two groups of one model would share a label; the export's reading of a stored
model applies the same rule."""
import pytest

import mcsyn
from mcsyn import serialize
from mcsyn.export import _model_view
from mcsyn.model import site_labels


def model(*groups):
    return mcsyn.SynapseModel(geometry=mcsyn.Geometry(outside="band"), sites=list(groups),
                              timing=mcsyn.Timing(duration_ms=0.2), releases=[mcsyn.Release(molecules=300)])


def ampa(where, **kw):
    return mcsyn.SiteGroup(mcsyn.ampa_jonas1993(), where, count=5, **kw)


def test_an_unnamed_group_is_labelled_by_its_scheme_like_a_preset():
    r = mcsyn.run_one(model(ampa("postsynaptic")), seed=1)
    assert "AMPA:bound:peak" in r.metrics and "AMPA:occupancy_fraction:peak" in r.metrics
    assert not any("@" in key for key in r.metrics)
    preset = mcsyn.run_one(mcsyn.presets.build("glutamatergic", **{"timing.duration_ms": 0.2}), seed=1)
    assert "AMPA:bound:peak" in preset.metrics


def test_the_location_is_added_only_where_two_groups_would_share_a_label():
    post, band = ampa("postsynaptic"), ampa("band_postsynaptic")
    other = mcsyn.SiteGroup(mcsyn.one_site_receptor("R", "glutamate", 1e7, 1e3), "presynaptic", count=5)
    m = model(post, band, other)
    assert [g.label for g in m.sites] == ["AMPA@postsynaptic", "AMPA@band_postsynaptic", "R"]
    assert post.name is None and band.name is None      # the caller's groups are not changed
    r = mcsyn.run_one(m, seed=2)
    assert "AMPA@postsynaptic:bound:peak" in r.metrics and "AMPA@band_postsynaptic:bound:peak" in r.metrics
    # a named group takes its label; an unnamed one that would share it gets the location
    assert site_labels([ampa("postsynaptic", name="AMPA"), ampa("band_postsynaptic")]) == \
        ["AMPA", "AMPA@band_postsynaptic"]
    assert site_labels([ampa("postsynaptic", name="fast"), ampa("band_postsynaptic")]) == ["fast", "AMPA"]
    # the same group alone in another model keeps the plain label
    alone = model(post)
    assert [g.label for g in alone.sites] == ["AMPA"]
    # groups set or appended after construction are labelled by the same rule when the model is checked
    alone.sites.append(band)
    assert [g.label for g in alone.validate().sites] == ["AMPA@postsynaptic", "AMPA@band_postsynaptic"]


def test_labels_that_still_coincide_are_refused():
    with pytest.raises(mcsyn.ModelError, match="distinct labels"):
        model(ampa("postsynaptic"), ampa("postsynaptic")).validate()


def test_the_export_reads_a_stored_model_with_the_same_labels():
    m = model(ampa("postsynaptic"), ampa("band_postsynaptic"), mcsyn.SiteGroup(
        mcsyn.one_site_receptor("R", "glutamate", 1e7, 1e3), "presynaptic", count=5))
    plain = serialize.to_plain(m)
    assert [s.label for s in _model_view(plain).sites] == [g.label for g in m.sites]
    # the export reads stored models as plain tables, names left out as a hand-built model has them
    for entry in plain["sites"]:
        entry.pop("name", None)
    assert [s.label for s in _model_view(plain).sites] == [g.label for g in m.sites]
