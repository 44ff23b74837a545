"""``import mcsyn`` stays light: the heavy libraries load only when something needs them.

Checked in a fresh interpreter (``sys.modules`` of this test process already holds everything),
so the result does not depend on what other tests imported; nothing here is timed.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HEAVY = ("pandas", "scipy", "matplotlib", "pyarrow", "pint", "dask", "distributed", "tqdm")


def _loaded_after(code: str) -> set[str]:
    """Top-level names of the modules in ``sys.modules`` after running ``code`` in a fresh Python
    that imports the same mcsyn as this test process (in CI the installed package: the checkout's
    source tree has no compiled kernel), started in a neutral folder so the checkout cannot shadow it."""
    import mcsyn
    here = str(Path(mcsyn.__file__).resolve().parent.parent)
    probe = code + "\nimport json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory() as neutral:
        proc = subprocess.run([sys.executable, "-c", probe], cwd=neutral, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


def test_import_mcsyn_loads_no_heavy_library():
    loaded = _loaded_after("import mcsyn")
    assert "mcsyn" in loaded
    assert not loaded & set(HEAVY), f"`import mcsyn` imported {sorted(loaded & set(HEAVY))}"


@pytest.mark.parametrize("name", ["config", "drugs", "presets"])
def test_lazy_submodules_still_load_on_attribute_access(name):
    code = f"import mcsyn; assert mcsyn.{name}.__name__ == 'mcsyn.{name}'"
    _loaded_after(code)   # an AttributeError or ImportError in the child fails the test


def test_lazy_names_stay_importable_from_the_package():
    code = ("from mcsyn import presets, drugs, config, run_ensemble, sweep, load_result, EnsembleResult\n"
            "import mcsyn\n"
            "assert {'presets', 'drugs', 'config', 'run_ensemble'} <= set(dir(mcsyn))\n"
            "assert all(hasattr(mcsyn, n) for n in mcsyn.__all__)")
    _loaded_after(code)


def test_run_one_series_is_still_a_dataframe():
    import pandas as pd

    import mcsyn
    model = mcsyn.presets.build("glutamatergic", **{"timing.duration_ms": 1.0})
    assert isinstance(mcsyn.run_one(model).series, pd.DataFrame)


def test_a_default_run_loads_no_pint_or_scipy():
    """The glutamatergic preset's library entries are plain numbers, which need no unit registry."""
    loaded = _loaded_after("import mcsyn; mcsyn.run_one(mcsyn.presets.build('glutamatergic'))")
    assert "pandas" in loaded          # run_one(...).series is a DataFrame
    assert not loaded & {"pint", "scipy", "matplotlib", "dask"}, sorted(loaded & {"pint", "scipy", "matplotlib", "dask"})
