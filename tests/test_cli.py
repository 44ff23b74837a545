"""The command line: every subcommand end to end on small runs, and argparse-style errors."""
import subprocess
import sys

import pandas as pd
import pytest

from mcsyn import cli, cli_tables, storage
from mcsyn import ensemble as E
from cli_support import run, usage_error

# a serotonergic synapse shrunk to a few ms per run
SMALL = ["--set", "timing.duration_ms=30", "--set", "geometry.domain_radius_um=3", "--set", "release.molecules=1000",
         "--no-progress"]


def test_presets_and_drugs(capsys):
    status, out, _ = run(["presets"], capsys)
    assert status == 0 and "serotonergic" in out and "glutamatergic" in out
    status, out, _ = run(["drugs"], capsys)
    assert status == 0 and "escitalopram" in out and "SSRI" in out


def test_python_dash_m_and_version(tmp_path, child_env):
    # run in a neutral folder: "python -m" puts the working directory first on sys.path, and in a
    # fresh checkout that is the source tree, without the compiled kernel
    env = child_env
    p = subprocess.run([sys.executable, "-m", "mcsyn", "--version"], capture_output=True, text=True, env=env,
                       timeout=60, cwd=tmp_path)
    assert p.returncode == 0 and p.stdout.startswith("mcsyn ")
    p = subprocess.run([sys.executable, "-m", "mcsyn", "run"], capture_output=True, text=True, env=env, timeout=60,
                       cwd=tmp_path)
    assert p.returncode == 2 and "usage: mcsyn run" in p.stderr and "required" in p.stderr


def test_run_summary_compare_and_plot(tmp_path, capsys):
    both, ctrl = tmp_path / "both", tmp_path / "ctrl"
    status, out, _ = run(["run", "serotonergic", "--drug", "escitalopram=80%SERT", "--control", "--runs", "6",
                          "--seed", "3", "--workers", "2", "--out", str(both), *SMALL], capsys)
    assert status == 0
    assert "12 runs of 2 condition(s)" in out and "fraction_taken_up" in out and "Against 'control'" in out
    result = storage.load_result(both)
    assert result.condition_names == ["control", "escitalopram 4.4 nM"]
    assert result.metadata["seed"] == 3

    status, out, _ = run(["summary", str(both), "--metric", "taken_up", "--csv", str(tmp_path / "s.csv")], capsys)
    assert status == 0 and "taken_up" in out and "peak_free" not in out
    assert set(pd.read_csv(tmp_path / "s.csv")["metric"]) > {"taken_up", "peak_free"}

    status, _, _ = run(["run", "serotonergic", "--runs", "6", "--seed", "3", "--out", str(ctrl), *SMALL], capsys)
    assert status == 0
    # the same condition name in both results: the folder names tell them apart
    status, out, _ = run(["compare", str(ctrl), str(both), "--metric", "taken_up"], capsys)
    assert status == 0 and "ctrl: control" in out and "both: escitalopram 4.4 nM" in out

    status, out, _ = run(["plot", str(both), "--format", "svg"], capsys)
    assert status == 0
    for name in ("timecourse.svg", "histograms.svg"):
        assert (both / "plots" / name).read_text().lstrip().startswith("<?xml")
    status, out, _ = run(["plot", str(both), "--to", str(tmp_path / "figs"), "--observable", "SERT:bound"], capsys)
    assert (tmp_path / "figs" / "timecourse.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_a_toml_configuration_with_a_drug(tmp_path, capsys):
    from mcsyn import config
    path = tmp_path / "my_synapse.toml"
    config.save(config.SynapseConfig(preset="serotonergic", drugs={"fluoxetine": "1 nM"},
                                     overrides={"timing": {"duration_ms": 20}, "geometry": {"domain_radius_um": 3.0},
                                                "release": {"molecules": 1000}}), path)
    status, out, err = run(["run", str(path), "--drug", "escitalopram=2nM", "--runs", "3", "--out",
                            str(tmp_path / "r"), "--no-progress"], capsys)
    assert status == 0, err
    result = storage.load_result(tmp_path / "r")
    assert result.condition_names == ["fluoxetine 1 nM + escitalopram 2 nM"]
    assert result.metrics[["fluoxetine_M", "escitalopram_M"]].iloc[0].tolist() == pytest.approx([1e-9, 2e-9])
    saved_drugs = result.config["conditions"][0]["config"]["drugs"]
    assert saved_drugs == pytest.approx({"fluoxetine": 1e-9, "escitalopram": 2e-9})


def test_sweep_fits_a_hill_curve_and_plots_it(tmp_path, capsys):
    out_dir = tmp_path / "sweep"
    status, out, err = run(["sweep", "serotonergic", "--drug", "escitalopram", "--range", "0.1nM:1uM:5",
                            "--runs", "8", "--metric", "SERT:bound:peak", "--out", str(out_dir), *SMALL], capsys)
    assert status == 0, err
    assert "IC50 =" in out and "Hill coefficient" in out
    assert (out_dir / "plots" / "dose_response_SERT_bound_peak.png").is_file()
    fits = pd.read_csv(out_dir / "hill_fits.csv")
    assert fits["kind"].tolist() == ["IC50"]
    assert storage.load_result(out_dir).metrics["dose_M"].nunique() == 6


def test_resume_and_existing_output(tmp_path, capsys):
    out_dir = tmp_path / "r"
    seen = []

    def stop(done, total):
        seen.append(done)
        if len(seen) == 2:
            raise KeyboardInterrupt

    conds = E.make_conditions("serotonergic", **{"timing.duration_ms": 30, "geometry.domain_radius_um": 3,
                                                 "release.molecules": 1000})
    with pytest.raises(E.EnsembleInterrupted):
        E.run_ensemble(conds, n_runs=8, seed=1, batch_size=2, workers=1, out=out_dir, callback=stop)
    err = usage_error(["run", "serotonergic", "--runs", "8", "--seed", "1", "--out", str(out_dir), *SMALL], capsys)
    assert "exists and is not empty" in err and "--resume" in err
    status, out, _ = run(["run", "serotonergic", "--runs", "8", "--seed", "1", "--out", str(out_dir), "--resume",
                          *SMALL], capsys)
    assert status == 0 and "8 runs of 1 condition(s)" in out
    fresh = E.run_ensemble(conds, n_runs=8, seed=1, workers=2)
    for name, frame in fresh.tables().items():
        pd.testing.assert_frame_equal(storage.load_result(out_dir).tables()[name], frame, check_exact=True)


def test_failed_runs_exit_1_and_name_their_seeds(tmp_path, capsys, fail_runs):
    fail_runs({2}, FloatingPointError, "injected")
    status, out, err = run(["run", "serotonergic", "--runs", "4", "--out", str(tmp_path / "f"), *SMALL], capsys)
    assert status == 1
    assert "run 2 (seed" in err and "FloatingPointError: injected" in err and "resume" in err
    assert "3 runs of 1 condition(s)" in out


@pytest.mark.parametrize("argv, message", [
    (["run", "serotonergic", "--out", "X", "--runs", "0"], "--runs: '0' must be >= 1"),
    (["run", "serotonergic", "--out", "X", "--runs", "many"], "is not an integer"),
    (["run", "serotonergic"], "the following arguments are required: --out"),
    (["run", "serotonergic", "--out", "X", "--drug", "fluoxetine"], "NAME=CONCENTRATION"),
    (["run", "serotonergic", "--out", "X", "--drug", "fluoxetin=1nM"], "unknown drug"),
    (["run", "serotonergic", "--out", "X", "--drug", "fluoxetine=5 ms"], "concentration"),
    (["run", "serotonergic", "--out", "X", "--drug", "fluoxetine=120%SERT"], "occupancy"),
    (["run", "serotonergic", "--out", "X", "--resume", "--overwrite"], "not allowed with argument"),
    (["run", "no_such_preset", "--out", "X"], "neither a preset"),
    (["run", "serotonergic", "--out", "X", "--control"], "--control needs"),
    (["run", "serotonergic", "--out", "X", "--set", "geometry.cleft_radius=1"], "cleft_radius"),
    (["run", "serotonergic", "--out", "X", "--set", "timing.duration_ms=-5"], "timing.duration_ms"),
    (["run", "serotonergic", "--out", "X", "--observable", "nope"], "do not exist"),
    (["sweep", "serotonergic", "--drug", "fluoxetine", "--out", "X"], "one of the arguments --doses --range"),
    (["sweep", "serotonergic", "--drug", "fluoxetine", "--range", "1nM:1uM", "--out", "X"], "LOW:HIGH:N"),
    (["sweep", "serotonergic", "--drug", "fluoxetine", "--doses", "1nM,2nM", "--out", "X"], "at least 3"),
    (["summary", "NOWHERE"], "not an mcsyn result directory"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_give_argparse_errors(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = usage_error(argv, capsys)
    assert "usage: mcsyn" in err
    assert message in err
    assert not (tmp_path / "X").exists()


def test_demo(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    status, out, err = run(["demo", "--runs", "3", "--out", str(out_dir), "--no-progress"], capsys)
    assert status == 0
    assert "escitalopram" in out and "80% SERT occupancy" in out and "Summary" in out and "Against 'control'" in out
    assert "in a 30 µm periodic tissue box, 1000 ms" in out.splitlines()[0]
    summary = out[out.index("Summary"):out.index("Against 'control'")]
    assert all(m in summary for m in ("clearance_half_time_ms", "fraction_taken_up", "fraction_escaped"))
    assert "estimated work" not in err
    assert (out_dir / "plots" / "timecourse.png").is_file() and (out_dir / "plots" / "histograms.png").is_file()
    err = usage_error(["demo", "--runs", "3", "--out", str(out_dir)], capsys)
    assert "--overwrite" in err


def test_drugs_name_shows_ki_occupancy_concentrations_variants_and_clinical_data(capsys):
    status, out, _ = run(["drugs", "escitalopram", "--occupancy", "80", "--occupancy", "50"], capsys)
    assert status == 0
    assert "SSRI" in out and "Owens" in out and "free conc. for 80 %" in out
    sert = next(line for line in out.splitlines() if line.strip().startswith("SERT"))
    assert "1.1 nM" in sert and "4.4 nM" in sert                     # Ki and 4·Ki at 80 %
    status, out, _ = run(["drugs", "venlafaxine"], capsys)
    assert "venlafaxine@bymaster2001" in out and "Bymaster" in out and "82 nM" in out
    status, out, _ = run(["drugs", "paroxetine"], capsys)
    # Meyer et al. 2001: 83 % SERT at 20 mg/day -> Ki·0.83/0.17 = 0.635 nM in this model
    assert "Meyer et al. 2001" in out and "83%" in out and "635 pM" in out
    err = usage_error(["drugs", "escitalopram", "--occupancy", "100"], capsys)
    assert "between 0 and 100" in err
    err = usage_error(["drugs", "escitalopramm"], capsys)
    assert "did you mean 'escitalopram'" in err


def test_run_with_one_run_prints_the_summary(tmp_path, capsys):
    status, out, err = run(["run", "serotonergic", "--runs", "1", "--out", str(tmp_path / "one"), *SMALL], capsys)
    assert status == 0, err
    assert "clearance_half_time_ms" in out and "Sites per run: SERT" in out
    status, out, _ = run(["plot", str(tmp_path / "one"), "--to", str(tmp_path / "p")], capsys)
    assert status == 0 and "no metric varies" in out and (tmp_path / "p" / "timecourse.png").is_file()


def test_plot_with_custom_quantiles_and_mean_bands(tmp_path, capsys):
    out_dir = tmp_path / "q"
    status, _, err = run(["run", "serotonergic", "--runs", "4", "--quantiles", "0.1,0.9", "--out", str(out_dir),
                          *SMALL], capsys)
    assert status == 0, err
    for bands in ("quantiles", "ci"):
        status, out, _ = run(["plot", str(out_dir), "--bands", bands, "--to", str(tmp_path / bands)], capsys)
        assert status == 0 and (tmp_path / bands / "timecourse.png").is_file()


def test_concentrations_need_units_and_the_help_says_so(capsys):
    err = usage_error(["run", "serotonergic", "--out", "X", "--drug", "escitalopram=2.5e-8"], capsys)
    assert "has no units" in err
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    help_text = capsys.readouterr().out
    assert "2.5e-8M" in help_text and "(default: None)" not in help_text and "(default: [])" not in help_text
    for command in ("summary", "demo", "plot", "drugs"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = capsys.readouterr().out
        assert "%%" not in text and "(default: None)" not in text and ") (default:" not in text, command


def test_p_values_in_tables_are_never_zero():
    table = pd.DataFrame({"metric": ["x", "y"], "p_mannwhitney": [0.0, 0.031], "p_ks": [1e-20, 0.5]})
    text = cli_tables.format_table(table)
    assert "< 1e-16" in text and "0.031" in text and " 0\n" not in text + "\n"


def test_a_work_limit_and_settings_given_twice_are_refused_before_any_run(tmp_path, capsys):
    err = usage_error(["run", "glutamatergic", "--runs", "2", "--max-steps", "1e3", "--out", str(tmp_path / "a")],
                      capsys)
    assert "max_steps" in err and not (tmp_path / "a" / "runs").exists()
    err = usage_error(["run", "glutamatergic", "--set", "timing.duration_ms=2", "--set", "timing.duration_ms=3",
                       "--out", str(tmp_path / "b")], capsys)
    assert "timing.duration_ms" in err and "twice" in err
    err = usage_error(["run", "glutamatergic", "--max-steps", "-1", "--out", str(tmp_path / "c")], capsys)
    assert "--max-steps" in err
