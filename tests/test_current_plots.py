"""The voltage-clamp figure (mcsyn.current_plots) and its place in ``mcsyn plot``: drawn for a result
recorded under --clamp, with labelled axes and units, the mean trace equal to the stored mean, and
left out for a result without currents."""
import numpy as np
import pytest

from mcsyn import cli, current_plots, storage

GLU = ["glutamatergic", "--set", "timing.duration_ms=2", "--no-progress"]


@pytest.fixture(scope="module")
def clamp_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("clamp") / "result"
    assert cli.main(["run", *GLU, "--runs", "12", "--clamp", "-70mV", "--mg", "1mM", "--out", str(out)]) == 0
    return storage.load_result(out)


def test_plot_writes_the_current_figure_for_a_clamp_result(clamp_result, tmp_path, capsys):
    assert cli.main(["plot", str(clamp_result.path), "--to", str(tmp_path)]) == 0
    assert "currents.png" in capsys.readouterr().out
    assert (tmp_path / "currents.png").stat().st_size > 10_000


def test_no_current_figure_without_a_clamp(tmp_path, capsys):
    out = tmp_path / "result"
    assert cli.main(["run", *GLU, "--runs", "3", "--out", str(out)]) == 0
    result = storage.load_result(out)
    assert not current_plots.has_currents(result)
    assert cli.main(["plot", str(out), "--to", str(tmp_path / "plots")]) == 0
    assert not (tmp_path / "plots" / "currents.png").exists()
    with pytest.raises(KeyError, match="--clamp"):
        current_plots.plot_currents(result)


def test_current_figure_labels_units_mean_and_peaks(clamp_result):
    fig = current_plots.plot_currents(clamp_result)
    mean_ax, hist_ax = fig.axes
    assert mean_ax.get_xlabel() == "Time (ms)" and mean_ax.get_ylabel() == "Current (pA)"
    assert hist_ax.get_xlabel() == "Peak current (pA)" and hist_ax.get_ylabel() == "Runs"
    tc = clamp_result.timecourse
    total = tc[tc["observable"] == "current_pA"].sort_values("time_ms")["mean"].to_numpy()
    drawn = {line.get_label(): line.get_ydata() for line in mean_ax.get_lines()}
    np.testing.assert_allclose(drawn["total"], total)            # one condition: groups and the total
    assert {"AMPA", "NMDA"} <= set(drawn)
    peaks = clamp_result.metrics["current:peak_pA"].to_numpy()
    assert np.all(peaks < 0)                                     # inward currents at -70 mV
    counts, edges = current_plots.peak_histograms(clamp_result.metrics, ["control"])["control"]
    assert counts.sum() == len(peaks) and edges[0] <= peaks.min() and edges[-1] >= peaks.max()
    assert 3 <= len(counts) <= len(peaks)                        # sensible bins for 12 runs
    caption = fig.legends[0].get_title().get_text()
    assert "\u221270 mV" in caption and "1 mM" in caption and "12 runs" in caption


def test_current_figure_refuses_unknown_conditions(clamp_result):
    with pytest.raises(KeyError, match="nonsense"):
        current_plots.plot_currents(clamp_result, conditions=["nonsense"])
