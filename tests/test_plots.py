"""Figures and their labels: human labels with units, integer bins, the bands the caption names,
doses as written, the default panels, p-values in tables."""
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from scipy import stats as sps

from mcsyn import labels, plots, presets, simulate
from mcsyn.stats import format_p_value

SMALL = {"timing.duration_ms": 20, "geometry.domain_radius_um": 3.0, "release.molecules": 1000}


@pytest.fixture(scope="module")
def serotonergic_metrics():
    """The metric keys of one small serotonergic run (with a drug, so blocked fractions exist)."""
    model = presets.build("serotonergic", drugs={"escitalopram": "80%SERT"}, **SMALL)
    return simulate.run_one(model, seed=1).metrics


# ------------------------------------------------------------------------------------- labels

def test_every_metric_of_a_run_has_a_human_label_with_a_unit(serotonergic_metrics):
    for key in serotonergic_metrics:
        label = labels.metric_label(key)
        assert "_" not in label, (key, label)                         # no raw keys
        assert ":bound:" not in label and ":open:" not in label, label
        assert label.endswith(")"), (key, label)                      # every label carries a unit
    assert labels.metric_label("5-HT1A:bound:peak") == "5-HT1A: peak bound transmitter (molecules)"
    assert labels.metric_label("clearance_half_time_ms") == "clearance half-time (ms)"
    assert labels.metric_label("SERT:sites") == "SERT: sites (count)"


def test_fractions_are_in_percent_never_in_sites():
    for key in ("SERT:blocked_fraction", "SERT:blocked_fraction_mean", "5-HT1A:occupancy_fraction:peak",
                "5-HT1A:occupancy_fraction:mean"):
        assert labels.metric_label(key).endswith("(% of sites)")
        assert labels.metric_scale(key) == 100
    assert labels.metric_label("fraction_taken_up") == "taken up (% of released)"
    assert labels.metric_scale("taken_up") == 1


def test_current_metrics_and_unknown_keys():
    assert labels.metric_label("current:peak_pA") == "peak total current (pA)"
    assert labels.metric_label("current:decay_tau_ms") == "total current: decay time constant (ms)"
    assert labels.metric_label("AMPA:current:charge_pC") == "AMPA: charge (pC)"
    assert labels.metric_label("my_thing_ms") == "my thing (ms)"


def test_observable_titles_and_units():
    assert labels.observable_parts("SERT:bound") == ("SERT: bound transmitter", "molecules")
    assert labels.observable_parts("AMPA:open") == ("AMPA: open", "sites")
    assert labels.observable_parts("free_volume") == ("Free in the extracellular space", "molecules")
    assert labels.observable_unit("current_pA") == "pA"


def test_doses_are_written_with_three_significant_digits():
    assert labels.format_dose(3.16227766e-6) == "3.16 µM"
    assert labels.format_dose(3.16227766e-8) == "31.6 nM"
    assert labels.format_dose(9.9996e-7) == "1 µM"          # the rounded value moves up a unit
    assert labels.format_dose(1e-9) == "1 nM"
    table = pd.DataFrame({"condition": ["control", "escitalopram 3.162 nM", "a + b"],
                          "drug": ["control", "escitalopram", "a + b"], "dose_M": [0.0, 3.16227766e-9, np.nan]})
    assert labels.condition_labels(table, list(table["condition"])) == {
        "control": "control", "escitalopram 3.162 nM": "escitalopram 3.16 nM", "a + b": "a + b"}


def test_p_values_are_never_printed_as_zero():
    assert format_p_value(0.0) == "< 1e-16"
    assert format_p_value(3e-300) == "< 1e-16"
    assert format_p_value(3.14159e-5) == "3.1e-05"
    assert format_p_value(float("nan")) == "nan"


# ------------------------------------------------------------------------------------- histograms

def test_integer_valued_metrics_are_binned_on_integers():
    rng = np.random.default_rng(0)
    samples = [rng.poisson(300, 40).astype(float), rng.poisson(1300, 40).astype(float)]
    edges = plots._shared_edges(samples)
    widths = np.diff(edges)
    assert np.all(widths == widths[0]) and widths[0] == round(widths[0]) and widths[0] >= 1
    assert np.all(edges - np.floor(edges) == 0.5)                    # edges on half-integers
    small = [np.array([3.0, 4, 4, 7, 9])]
    assert np.array_equal(plots._shared_edges(small), np.arange(2.5, 10.5))
    own = plots.sample_edges(rng.poisson(5000, 50).astype(float))
    assert np.all(np.diff(own) == np.diff(own)[0]) and np.all(own - np.floor(own) == 0.5)
    assert plots.sample_edges(rng.normal(size=20)) == "auto"


def _metrics_table():
    rng = np.random.default_rng(1)
    rows = []
    for cond, dose in (("control", 0.0), ("escitalopram 4.4 nM", 4.4e-9)):
        for i in range(20):
            rows.append({"condition": cond, "drug": "control" if dose == 0 else "escitalopram", "dose_M": dose,
                         "run": i, "seed": 0, "taken_up": int(rng.poisson(300 if dose else 1300)),
                         "clearance_half_time_ms": rng.normal(40, 1), "fraction_taken_up": rng.uniform(0.05, 0.3),
                         "SERT:occupancy_fraction:peak": rng.uniform(0, 0.002), "SERT:sites": 361560,
                         "5-HT1A:open:peak": int(rng.poisson(5)), "5-HT1A:sites": 25225,
                         "5-HT1A:occupancy_fraction:peak": rng.uniform(0.003, 0.006)})
    return pd.DataFrame(rows)


def test_histograms_have_human_labels_and_percent_axes():
    m = _metrics_table()
    fig = plots.plot_histograms(m)
    shown = [ax for ax in fig.axes if ax.get_visible() and ax.get_xlabel()]
    assert shown
    for ax in shown:
        assert "_" not in ax.get_xlabel() and ax.get_xlabel().replace("\n", " ").endswith(")")
    occupancy = next(ax for ax in shown if "5-HT1A: peak occupancy" in ax.get_xlabel().replace("\n", " "))
    assert occupancy.get_xlim()[1] > 0.5          # in percent: 0.3-0.6 %, not 0.003-0.006
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["control", "escitalopram 4.4 nM"]


def test_default_histogram_panels_answer_the_question():
    chosen = plots.default_plot_metrics(_metrics_table())
    assert chosen[:2] == ["clearance_half_time_ms", "fraction_taken_up"]
    assert "5-HT1A:occupancy_fraction:peak" in chosen and "SERT:occupancy_fraction:peak" in chosen
    assert not any(c.endswith(":sites") for c in chosen)             # constant: not a histogram


# ------------------------------------------------------------------------------------- time courses

def _timecourse(quantiles=(0.05, 0.25, 0.75, 0.95), n=10):
    t = np.arange(0.0, 50.0, 1.0)
    rows = []
    for cond, k in (("control", 1.0), ("drug", 0.5)):
        for obs, base in (("free", 1000 * np.exp(-t / 10)), ("free_volume", 1000 * np.exp(-t / 10)),
                          ("bound", 50 * (1 - np.exp(-t / 5))), ("SERT:bound", 40 * k * (1 - np.exp(-t / 5))),
                          ("5-HT1A:bound", 10 * (1 - np.exp(-t / 5))), ("taken_up", 300 * k * (1 - np.exp(-t / 20))),
                          ("released", np.full_like(t, 1000.0))):
            sd = 0.1 * base + 1
            d = {"condition": cond, "observable": obs, "time_ms": t, "n": n, "mean": base, "sd": sd,
                 "sem": sd / math.sqrt(n), "median": base}
            for q in quantiles:
                d[f"q{100 * q:g}"] = base + sps.norm.ppf(q) * sd
            rows.append(pd.DataFrame(d))
    return pd.concat(rows, ignore_index=True)


def _bands(fig):
    return sum(isinstance(c, PolyCollection) for ax in fig.axes for c in ax.collections)


def test_default_panels_show_the_receptors_and_drop_duplicates():
    obs = plots.default_plot_observables(_timecourse())
    assert obs[0] == "free"
    assert "SERT:bound" in obs and "5-HT1A:bound" in obs
    assert "free_volume" not in obs                 # the same series as free
    assert "bound" not in obs and "released" not in obs


def test_custom_quantiles_draw_the_band_the_caption_names():
    tc = _timecourse(quantiles=(0.1, 0.9))
    fig = plots.plot_timecourse(tc, observables=["free", "taken_up"])
    caption = fig.legends[0].get_title().get_text()
    assert "10–90 %" in caption and "25–75" not in caption
    assert _bands(fig) == 2 * 2                     # one band per condition and panel
    fig = plots.plot_timecourse(_timecourse(), observables=["free"])
    assert "25–75 % and 5–95 %" in fig.legends[0].get_title().get_text()
    assert _bands(fig) == 2 * 2                     # inner and outer band, two conditions
    with pytest.raises(KeyError, match="q25"):
        plots.plot_timecourse(tc, observables=["free"], inner=("q25", "q75"))


def test_confidence_band_of_the_mean_is_t_times_the_standard_error():
    tc = _timecourse(n=10)
    fig = plots.plot_timecourse(tc, observables=["free"], bands="ci")
    assert "95 % CI of the mean" in fig.legends[0].get_title().get_text()
    line, specs, _ = plots._band_spec(tc, "ci", "median", None, None, 0.95)
    assert line == "mean"
    d = tc[(tc["condition"] == "control") & (tc["observable"] == "free")]
    half = sps.t.ppf(0.975, 9) * d["sem"]
    np.testing.assert_allclose(specs[0][1](d) - d["mean"], half, rtol=1e-12)
    np.testing.assert_allclose(d["mean"] - specs[0][0](d), half, rtol=1e-12)
    with pytest.raises(ValueError, match="bands"):
        plots.plot_timecourse(tc, bands="iqr")


def test_time_course_axes_have_units_and_a_per_site_axis():
    class Result:
        timecourse = _timecourse()
        metrics = _metrics_table()
    fig = plots.plot_timecourse(Result(), observables=["free", "SERT:bound"])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["Free transmitter", "SERT: bound transmitter"]
    ylabels = [a.get_ylabel() for ax in fig.axes for a in (ax, *ax.child_axes) if a.get_ylabel()]
    assert "molecules" in ylabels and any("% of 361,560 sites" in y for y in ylabels)


# ------------------------------------------------------------------------------------- dose-response

def test_dose_response_ticks_are_written_as_doses():
    rng = np.random.default_rng(2)
    doses = [0.0] + list(np.logspace(-9, -7, 5))
    rows = [{"condition": f"c{d}", "drug": "escitalopram" if d else "control", "dose_M": d, "run": i, "seed": 0,
             "fraction_taken_up": 0.25 / (1 + d / 1.3e-9) + rng.normal(0, 0.003)} for d in doses for i in range(8)]
    fig = plots.plot_dose_response(pd.DataFrame(rows), "fraction_taken_up")
    fig.canvas.draw()
    ax = fig.axes[1]
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "3.16 nM" in ticks and "100 nM" in ticks
    assert fig.axes[0].get_ylabel() == "taken up (% of released)"
    assert fig.axes[0].get_ylim()[1] > 20            # percent
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "IC50" in legend and "nM" in legend
    assert not ax.texts                               # no annotation inside the axes


def test_occupancies_of_few_sites_are_binned_on_their_lattice():
    rng = np.random.default_rng(3)
    k = rng.integers(9, 16, 30)
    m = pd.DataFrame({"condition": "c", "run": range(30), "seed": 0, "NMDA:sites": 20,
                      "NMDA:occupancy_fraction:peak": k / 20})
    step = plots._lattice_step(m, "NMDA:occupancy_fraction:peak")
    assert step == pytest.approx(5.0)                               # percent per site
    edges = plots._shared_edges([m["NMDA:occupancy_fraction:peak"].to_numpy() * 100], step=step)
    np.testing.assert_allclose(edges, np.arange(k.min() - 0.5, k.max() + 1.5) * 5.0)
    m["NMDA:occupancy_fraction:peak"] += 1e-3                       # off the lattice: no lattice bins
    assert plots._lattice_step(m, "NMDA:occupancy_fraction:peak") is None
