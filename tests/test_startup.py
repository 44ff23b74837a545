"""``import mcsyn`` stays light: the heavy libraries load only when something needs them.

Checked in a fresh interpreter (``sys.modules`` of this test process already holds everything),
so the result does not depend on what other tests imported; nothing here is timed.
"""
import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "scipy", "matplotlib", "pyarrow", "pint", "dask", "distributed", "tqdm")


@pytest.fixture
def loaded_after(child_env, tmp_path):
    """``loaded_after(code)``: top-level names of the modules in ``sys.modules`` after running ``code``
    in a fresh Python that imports the same mcsyn as this test process, from a neutral folder."""
    def run(code: str) -> set[str]:
        probe = code + "\nimport json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
        proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=child_env, capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        return set(json.loads(proc.stdout.splitlines()[-1]))
    return run


def test_import_mcsyn_loads_no_heavy_library(loaded_after):
    loaded = loaded_after("import mcsyn")
    assert "mcsyn" in loaded
    assert not loaded & set(HEAVY), f"`import mcsyn` imported {sorted(loaded & set(HEAVY))}"


@pytest.mark.parametrize("name", ["config", "drugs", "presets"])
def test_lazy_submodules_still_load_on_attribute_access(name, loaded_after):
    code = f"import mcsyn; assert mcsyn.{name}.__name__ == 'mcsyn.{name}'"
    loaded_after(code)   # an AttributeError or ImportError in the child fails the test


def test_lazy_names_stay_importable_from_the_package(loaded_after):
    code = ("from mcsyn import presets, drugs, config, run_ensemble, sweep, load_result, EnsembleResult\n"
            "import mcsyn\n"
            "assert {'presets', 'drugs', 'config', 'run_ensemble'} <= set(dir(mcsyn))\n"
            "assert all(hasattr(mcsyn, n) for n in mcsyn.__all__)")
    loaded_after(code)


def test_run_one_series_is_still_a_dataframe():
    import pandas as pd

    import mcsyn
    model = mcsyn.presets.build("glutamatergic", **{"timing.duration_ms": 1.0})
    assert isinstance(mcsyn.run_one(model).series, pd.DataFrame)


def test_a_default_run_loads_no_pint_or_scipy(loaded_after):
    """The glutamatergic preset's library entries are plain numbers, which need no unit registry."""
    loaded = loaded_after("import mcsyn; mcsyn.run_one(mcsyn.presets.build('glutamatergic'))")
    assert "pandas" in loaded          # run_one(...).series is a DataFrame
    assert not loaded & {"pint", "scipy", "matplotlib", "dask"}, sorted(loaded & {"pint", "scipy", "matplotlib", "dask"})
