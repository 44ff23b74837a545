"""Type stub of the compiled kernel ``mcsyn._engine`` (sources in ``ext/``)."""
from typing import Any, Final

import numpy as np
import numpy.typing as npt

OUTSIDE_CLOSED: Final[int]
OUTSIDE_OPEN: Final[int]
OUTSIDE_BAND: Final[int]
OUTSIDE_VOLUME: Final[int]
EXIT_PLAIN: Final[int]
EXIT_UNBIND: Final[int]
EXIT_UPTAKE: Final[int]
EXIT_DEGRADE: Final[int]
EXIT_EFFLUX: Final[int]
PLANE_POST: Final[int]
PLANE_PRE: Final[int]
PLANE_VOLUME: Final[int]
PLANE_AGGREGATE: Final[int]
STATUS_OK: Final[int]
STATUS_NO_MEMORY: Final[int]
STATUS_SHARED_TILE: Final[int]
STATUS_INTERRUPTED: Final[int]
SERIES_RELEASED: Final[int]
SERIES_FREE_CLEFT: Final[int]
SERIES_FREE_BAND: Final[int]
SERIES_FREE_VOLUME: Final[int]
SERIES_BOUND: Final[int]
SERIES_TAKEN_UP: Final[int]
SERIES_ESCAPED: Final[int]
SERIES_DEGRADED: Final[int]
SERIES_EFFLUXED: Final[int]
SERIES_BINDING_EVENTS: Final[int]
N_SERIES: Final[int]
ENTRY_DEPTH_QUANTILES: Final[int]
NORMAL_BLOCK: Final[int]
CHUNK: Final[int]
SORT_EVERY: Final[int]
SORT_CELL_TILES: Final[int]

SERIES_COLUMNS: Final[tuple[str, ...]]

class PreparedModel:
    """A kernel model checked once, with its derived tables (from :func:`prepare`)."""

    @property
    def kernel_model(self) -> Any: ...      # mcsyn.compile.KernelModel
    def __reduce__(self) -> tuple[Any, tuple[Any]]: ...

def prepare(model: Any) -> PreparedModel: ...
def simulate(
    model: PreparedModel | Any,            # or mcsyn.compile.KernelModel, prepared for this run
    run: Any,                              # mcsyn.compile.KernelRun
    seed_words: npt.ArrayLike,
    keep_positions: bool = False,
) -> dict[str, np.ndarray]: ...
# keys: series, states; feedback_activation, feedback_vesicles (closed-loop feedback); probes
# (detector regions); voxel_snapshots, voxel_occupied, voxel_sites (voxel snapshots on); the
# positions with keep_positions
class RunStopped(KeyboardInterrupt):
    """A kernel run ended early because :func:`stop_runs` was in force."""

def stop_runs() -> None: ...
def release_runs() -> None: ...
def runs_in_progress() -> int: ...
def standard_normals(seed_words: npt.ArrayLike, n: int, bulk: bool = True) -> npt.NDArray[np.float64]: ...
def volume_site_counts(total: int, voxel_class: npt.NDArray[np.int32], class_probability: npt.NDArray[np.float64],
                       seed_words: npt.ArrayLike) -> npt.NDArray[np.int32]: ...
def uniforms(seed_words: npt.ArrayLike, n: int) -> npt.NDArray[np.float64]: ...
def supported_isas() -> tuple[str, ...]: ...
def current_isa() -> str: ...
def set_isa(name: str) -> None: ...
def _set_voxel_coding(min_voxels: int = ..., code_limit: int = ..., keep: int | None = ...) -> None: ...   # tests only
