"""Build the compiled kernel in ``ext/`` into ``mcsyn._engine``.

``MCSYN_CYTHON_DEBUG=1`` turns bounds, wraparound and initialisation checks back on;
``MCSYN_ANNOTATE=1`` writes Cython's HTML annotation next to the sources.
"""
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("MCSYN_CYTHON_DEBUG") == "1"

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "nonecheck": False,
    "cdivision": True,
    "cpow": True,
}

engine = Extension(
    "mcsyn._engine",
    ["ext/_engine.pyx"],
    include_dirs=[np.get_include(), "ext"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    # -O3 lets gcc keep the ziggurat tables and the walker state in registers; -fno-trapping-math
    # lets it turn floating-point selects into branch-free code (it changes no computed value,
    # unlike -ffast-math, which would reassociate and break reproducibility); no -march=native
    # so that a built wheel runs on any x86-64: the AVX2 and AVX-512 paths (ext/mcsyn_simd.h) carry
    # their own target attributes and are chosen at run time. -ffp-contract=off: where a path may
    # use FMA instructions, no product and sum may fuse, or the paths would round differently.
    extra_compile_args=["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
    if os.name != "nt" else [],
)

setup(
    ext_modules=cythonize(
        [engine],
        compiler_directives=directives,
        # the .pxd declarations and the .pxi parts that _engine.pyx cimports and includes
        include_path=["ext"],
        annotate=os.environ.get("MCSYN_ANNOTATE") == "1",
    )
)
