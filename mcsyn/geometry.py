"""The synapse's space: the cleft, what lies outside it, and the questions code asks about both.

The **cleft** has membranes at z = 0 (postsynaptic) and z = h (presynaptic) over r < R_cleft. Its
**outside** is one of the kinds in :data:`OUTSIDE`:

* ``"closed"``: the cleft rim reflects (a sealed cleft);
* ``"open"``: the rim absorbs; a molecule reaching it counts as escaped;
* ``"band"``: the slab continues to R_outer between glial/neighbouring membranes that can carry their
  own sites; at R_outer the boundary absorbs (escaped) or reflects (``band_outer_boundary``);
* ``"volume"``: a homogenised extracellular space (volume fraction α, tortuosity λ, D* = D/λ²)
  around a reflecting varicosity of radius R_var, out to a sphere R_domain that absorbs (the
  molecule counts as escaped) or reflects (``domain_boundary = "reflecting"``: a closed cell of
  tissue). The cleft rim opens onto the varicosity surface: molecules leave the cleft into the
  volume and, with ``volume_enters_cleft``, volume molecules at the cleft's mouth enter it again,
  so that cleft and surrounding space exchange both ways (:mod:`mcsyn.exchange`). By default
  (None) that holds when the model uses the cleft (releases into it or has sites on its
  membranes); a volume-transmission varicosity without either has no cleft to enter. Release may
  also go straight into the volume (volume transmission).
* ``"periodic"``: the same homogenised extracellular space around the same varicosity, but its
  domain is a cube of side ``box_side_um`` (L) centred on the varicosity with periodic
  boundaries: a molecule leaving one face enters at the opposite one, so nothing escapes and the
  box stands for one cell of an unbounded tissue (:mod:`mcsyn.tissue` builds release-site fields
  on it). Everything else (the cleft, its exchange with the volume, volume sites) is as with
  ``"volume"``; the kernel keeps each molecule's count of crossed images, so that unwrapped
  displacements can be measured (``keep_positions`` returns them as ``volume_images``).

Each kind is one row of behaviours (:class:`OutsideKind`). The rest of the package asks these
functions (``rim_radius_um``, ``rim_action``, ``compartments``, ``escapes``, region areas and tile
masks, ...) instead of comparing ``Geometry.outside`` with strings, so that a new kind is a new row
here plus its rule in :mod:`mcsyn.exchange` and :mod:`mcsyn.meanfield`.

The **slab** is the part of space between the two membrane planes: the cleft, and with a band the
band too. Its lateral edge, the **rim**, is at :func:`rim_radius_um`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ModelError, require_choice, require_positive

# every length lies between an atom's size and a centimetre: outside, a step is unfolded through
# more image planes than a run can afford, or the grids overflow
MIN_LENGTH_UM, MAX_LENGTH_UM = 1e-4, 1e4

OUTSIDE_KINDS = ("closed", "open", "band", "volume", "periodic")
DOMAIN_SHAPES = ("sphere", "periodic_box")   # the volume's outer edge: a sphere R_domain, or a periodic cube
SITE_LOCATIONS = ("postsynaptic", "presynaptic", "band_postsynaptic", "band_presynaptic", "volume")
COMPARTMENTS = ("cleft", "band", "volume")
RIM_ACTIONS = ("reflect", "absorb", "volume")    # what the slab's rim does to a molecule reaching it
DEGRADATION_REGIONS = COMPARTMENTS + ("all",)
BOUNDARY_ACTION = {"absorbing": "absorb", "reflecting": "reflect"}

# Which membrane plane (z = 0 "post", z = h "pre") or the volume a site location lies on, and the
# compartment whose free molecules its sites see. compile.LOCATION_PLANE holds the kernel's codes.
LOCATION_PLANE_NAME = {"postsynaptic": "post", "presynaptic": "pre", "band_postsynaptic": "post",
                       "band_presynaptic": "pre", "volume": "volume"}
LOCATION_COMPARTMENT = {"postsynaptic": "cleft", "presynaptic": "cleft", "band_postsynaptic": "band",
                        "band_presynaptic": "band", "volume": "volume"}

VOXEL_SUBSAMPLES = 4      # sub-samples per voxel axis when measuring a voxel's share of the shell


@dataclass(frozen=True)
class OutsideKind:
    """The behaviours of one outside kind.

    ``compartments`` are the well-mixed regions that exist (the cleft always); ``beyond_cleft``
    is the compartment a molecule enters when it leaves the cleft (None: it is reflected or
    escapes there); ``rim`` is what the slab's rim does (one of RIM_ACTIONS), None where a
    geometry field decides it (``rim_field``, read through BOUNDARY_ACTION); ``domain`` is the
    volume's outer edge (one of DOMAIN_SHAPES; meaningful only where the volume exists)."""

    name: str
    compartments: tuple
    beyond_cleft: str | None
    rim: str | None
    rim_field: str | None = None
    domain: str = "sphere"


OUTSIDE = {
    "closed": OutsideKind("closed", ("cleft",), None, "reflect"),
    "open": OutsideKind("open", ("cleft",), None, "absorb"),
    "band": OutsideKind("band", ("cleft", "band"), "band", None, rim_field="band_outer_boundary"),
    "volume": OutsideKind("volume", ("cleft", "volume"), "volume", "volume"),
    "periodic": OutsideKind("periodic", ("cleft", "volume"), "volume", "volume", domain="periodic_box"),
}
assert tuple(OUTSIDE) == OUTSIDE_KINDS


def require_length(field, value):
    """A length in µm within [MIN_LENGTH_UM, MAX_LENGTH_UM]."""
    x = require_positive(field, value, high=MAX_LENGTH_UM)
    if x < MIN_LENGTH_UM:
        raise ModelError(field, value, f"must be a length in [{MIN_LENGTH_UM:g}, {MAX_LENGTH_UM:g}] µm")
    return x


@dataclass
class Geometry:
    """Cleft and extracellular space. See the module docstring for the outside kinds."""

    cleft_height_um: float = 0.020
    cleft_radius_um: float = 0.20
    psd_radius_um: float = 0.15
    outside: str = "band"
    band_outer_radius_um: float = 1.0
    band_outer_boundary: str = "absorbing"
    varicosity_radius_um: float = 0.25
    domain_radius_um: float = 5.0
    volume_fraction: float = 0.21
    tortuosity: float = 1.54
    domain_boundary: str = "absorbing"
    volume_enters_cleft: bool | None = None
    box_side_um: float = 20.0

    def validate(self):
        require_length("geometry.cleft_height_um", self.cleft_height_um)
        require_length("geometry.cleft_radius_um", self.cleft_radius_um)
        require_length("geometry.psd_radius_um", self.psd_radius_um)
        if self.psd_radius_um > self.cleft_radius_um:
            raise ModelError("geometry.psd_radius_um", self.psd_radius_um,
                             f"must be <= geometry.cleft_radius_um = {self.cleft_radius_um}")
        require_choice("geometry.outside", self.outside, OUTSIDE_KINDS)
        if "band" in compartments(self):
            self._validate_band()
        if "volume" in compartments(self):
            self._validate_volume()

    def _validate_band(self):
        require_length("geometry.band_outer_radius_um", self.band_outer_radius_um)
        if self.band_outer_radius_um <= self.cleft_radius_um:
            raise ModelError("geometry.band_outer_radius_um", self.band_outer_radius_um,
                             f"must be > geometry.cleft_radius_um = {self.cleft_radius_um}")
        require_choice("geometry.band_outer_boundary", self.band_outer_boundary, tuple(BOUNDARY_ACTION))

    def _validate_volume(self):
        require_length("geometry.varicosity_radius_um", self.varicosity_radius_um)
        if periodic(self):
            require_length("geometry.box_side_um", self.box_side_um)
            if self.box_side_um <= 2.0 * self.varicosity_radius_um:
                raise ModelError("geometry.box_side_um", self.box_side_um,
                                 f"must be > 2 × geometry.varicosity_radius_um = {2 * self.varicosity_radius_um}")
        else:
            require_length("geometry.domain_radius_um", self.domain_radius_um)
            if self.domain_radius_um <= self.varicosity_radius_um:
                raise ModelError("geometry.domain_radius_um", self.domain_radius_um,
                                 f"must be > geometry.varicosity_radius_um = {self.varicosity_radius_um}")
        require_positive("geometry.volume_fraction", self.volume_fraction)
        if self.volume_fraction > 1:
            raise ModelError("geometry.volume_fraction", self.volume_fraction, "must be in (0, 1]")
        require_positive("geometry.tortuosity", self.tortuosity)
        if not periodic(self):
            require_choice("geometry.domain_boundary", self.domain_boundary, tuple(BOUNDARY_ACTION))
        if self.volume_enters_cleft is not None and not isinstance(self.volume_enters_cleft, (bool, np.bool_)):
            raise ModelError("geometry.volume_enters_cleft", self.volume_enters_cleft,
                             "must be true, false or None (true when the model uses the cleft)")
        if self.tortuosity < 1:
            raise ModelError("geometry.tortuosity", self.tortuosity, "must be >= 1 (D* = D/λ² <= D)")

    @property
    def slab_radius_um(self) -> float:
        return rim_radius_um(self)

    @property
    def cleft_volume_um3(self) -> float:
        return cleft_volume_um3(self)


# ======================================================================================================
# Behaviours of the outside kind

def kind(g: Geometry) -> OutsideKind:
    return OUTSIDE[g.outside]


def compartments(g: Geometry) -> tuple:
    """The compartments that exist: ("cleft",), ("cleft", "band") or ("cleft", "volume")."""
    return kind(g).compartments


def has_volume(g: Geometry) -> bool:
    """Whether there is a homogenised volume (a coarse time step, volume sites and releases)."""
    return "volume" in compartments(g)


def beyond_cleft(g: Geometry) -> str | None:
    """The compartment a molecule leaving the cleft enters, or None (reflected or escaped)."""
    return kind(g).beyond_cleft


def rim_radius_um(g: Geometry) -> float:
    """The slab's outer edge: R_outer with a band, else R_cleft."""
    return g.band_outer_radius_um if "band" in compartments(g) else g.cleft_radius_um


def rim_action(g: Geometry) -> str:
    """What the slab's rim does to a molecule reaching it: "reflect", "absorb" (escaped) or
    "volume" (it opens onto the volume)."""
    k = kind(g)
    return k.rim if k.rim is not None else BOUNDARY_ACTION[getattr(g, k.rim_field)]


def periodic(g: Geometry) -> bool:
    """Whether the volume is a periodic box (nothing leaves it; see the module docstring)."""
    return has_volume(g) and kind(g).domain == "periodic_box"


def domain_absorbs(g: Geometry) -> bool:
    return has_volume(g) and not periodic(g) and g.domain_boundary == "absorbing"


def domain_reflects(g: Geometry) -> bool:
    return has_volume(g) and not periodic(g) and g.domain_boundary == "reflecting"


def escapes(g: Geometry) -> bool:
    """Whether any molecule can escape: through an absorbing rim or an absorbing domain edge."""
    return rim_action(g) == "absorb" or domain_absorbs(g)


def volume_radii_um(g: Geometry) -> tuple:
    """(R_var, R_domain) of the extracellular shell, (0, 0) without a volume; in a periodic box
    R_domain is the half side L/2 (the kernel's domain is then the cube |x|, |y|, |z| < L/2)."""
    if not has_volume(g):
        return (0.0, 0.0)
    return (g.varicosity_radius_um, 0.5 * g.box_side_um if periodic(g) else g.domain_radius_um)


def in_volume(g: Geometry, xyz) -> bool:
    """Whether the point ``xyz`` (µm) lies in the extracellular volume: outside the varicosity and
    inside the domain (the sphere, or the periodic box |x|, |y|, |z| < L/2)."""
    xyz = np.asarray(xyz, dtype=float)
    r_var, r_out = volume_radii_um(g)
    if np.linalg.norm(xyz) < r_var:
        return False
    return bool(np.all(np.abs(xyz) < r_out)) if periodic(g) else bool(np.linalg.norm(xyz) < r_out)


def site_locations(g: Geometry) -> tuple:
    """The site locations this geometry has room for."""
    return tuple(loc for loc in SITE_LOCATIONS if LOCATION_COMPARTMENT[loc] in compartments(g))


def degradation_regions(g: Geometry) -> tuple:
    return compartments(g) + ("all",)


def check_location(g: Geometry, field: str, location: str, what_needs: str):
    """Raise ModelError unless ``location`` (a site location, or a release's "cleft" or "volume")
    exists in ``g``; ``what_needs`` starts the message ("band sites need")."""
    compartment = LOCATION_COMPARTMENT.get(location, location)
    if compartment not in compartments(g):
        needed = " or ".join(repr(k.name) for k in OUTSIDE.values() if compartment in k.compartments)
        raise ModelError(field, location, f"{what_needs} geometry.outside = {needed}")


# ======================================================================================================
# Sizes of regions and compartments

# membrane regions as annuli (inner, outer radius) on their plane
_MEMBRANE_ANNULUS_UM = {
    "postsynaptic": lambda g: (0.0, g.psd_radius_um),
    "presynaptic": lambda g: (0.0, g.cleft_radius_um),
    "band_postsynaptic": lambda g: (g.cleft_radius_um, g.band_outer_radius_um),
    "band_presynaptic": lambda g: (g.cleft_radius_um, g.band_outer_radius_um),
}

# compartment volumes: the volume compartment counts extracellular space only (α × tissue)
_COMPARTMENT_VOLUME_UM3 = {
    "cleft": lambda g: math.pi * g.cleft_radius_um ** 2 * g.cleft_height_um,
    "band": lambda g: math.pi * (g.band_outer_radius_um ** 2 - g.cleft_radius_um ** 2) * g.cleft_height_um,
    "volume": lambda g: (g.volume_fraction * shell_volume_um3(g) if periodic(g) else
                         g.volume_fraction * 4.0 / 3.0 * math.pi * (g.domain_radius_um ** 3
                                                                    - g.varicosity_radius_um ** 3)),
}


def cleft_volume_um3(g: Geometry) -> float:
    return _COMPARTMENT_VOLUME_UM3["cleft"](g)


def compartment_volumes_um3(g: Geometry) -> dict:
    """Free volume of every compartment in COMPARTMENTS (0 where it does not exist)."""
    present = compartments(g)
    return {c: (_COMPARTMENT_VOLUME_UM3[c](g) if c in present else 0.0) for c in COMPARTMENTS}


def region_area_um2(g: Geometry, location: str) -> float:
    """Membrane area of a site location's region."""
    r_in, r_out = _MEMBRANE_ANNULUS_UM[location](g)
    return math.pi * (r_out ** 2 - r_in ** 2)


def shell_volume_um3(g: Geometry) -> float:
    """Tissue volume of the extracellular shell R_var <= r < R_domain, or of the periodic box less
    the varicosity (volume sites are per µm³ of it)."""
    if periodic(g):
        return g.box_side_um ** 3 - 4.0 / 3.0 * math.pi * g.varicosity_radius_um ** 3
    return 4.0 / 3.0 * math.pi * (g.domain_radius_um ** 3 - g.varicosity_radius_um ** 3)


def site_count(g: Geometry, grp) -> int:
    """Number of sites a group places (fixed across runs)."""
    if grp.arrangement == "coordinates":
        return len(grp.coordinates_um)
    if grp.count is not None:
        return int(grp.count)
    if grp.location == "volume":
        return int(round(grp.density_per_um3 * shell_volume_um3(g)))
    return int(round(grp.density_per_um2 * region_area_um2(g, grp.location)))


# ======================================================================================================
# Tile and voxel grids

def tiles_per_side(g: Geometry, tile_um: float) -> int:
    """Tiles across the slab, with one spare tile beyond the rim on each side: the kernel then
    maps any crossing inside the rim to a tile without a range test (the grid's lattice is the
    same as without them)."""
    return int(math.ceil(2.0 * rim_radius_um(g) / tile_um)) + 2


def candidate_tiles(g: Geometry, location: str, n_tile: int, tile_um: float, grid_half_um: float) -> np.ndarray:
    """Flat indices of the tiles whose centres lie in a membrane location's region."""
    centres = -grid_half_um + (np.arange(n_tile) + 0.5) * tile_um
    r2 = centres[:, None] ** 2 + centres[None, :] ** 2
    r_in, r_out = _MEMBRANE_ANNULUS_UM[location](g)
    mask = (r2 >= r_in ** 2) & (r2 < r_out ** 2)
    return np.flatnonzero(mask.ravel())


def voxels_per_side(g: Geometry, voxel_um: float) -> int:
    """Voxels across the domain's bounding cube; a periodic box must be a whole number of voxels
    wide (a partial voxel at one face would be glued to a whole one at the other)."""
    if periodic(g):
        n = round(g.box_side_um / voxel_um)
        if n < 1 or abs(n * voxel_um - g.box_side_um) > 1e-9 * g.box_side_um:
            raise ModelError("voxel_um", voxel_um, f"must divide geometry.box_side_um = {g.box_side_um} "
                             f"into a whole number of voxels (e.g. {g.box_side_um / max(n, 1):.6g})")
        return int(n)
    return int(math.ceil(2.0 * g.domain_radius_um / voxel_um))


def voxel_shell_fractions(n_vox, voxel, r_in, r_out):
    """Fraction of each voxel inside the extracellular shell r_in <= r < r_out, by sub-voxel
    sampling (flattened in the kernel's voxel order)."""
    sub = VOXEL_SUBSAMPLES
    edges = -r_out + (np.arange(n_vox * sub) + 0.5) * (voxel / sub)
    r2_axis = edges ** 2
    frac = np.zeros((n_vox, n_vox, n_vox))
    # accumulate in slabs along x to keep memory at n_vox² * sub²
    yz = (r2_axis[:, None] + r2_axis[None, :])
    for ix in range(n_vox * sub):
        r2 = r2_axis[ix] + yz
        inside = (r2 >= r_in ** 2) & (r2 < r_out ** 2)
        frac[ix // sub] += inside.reshape(n_vox, sub, n_vox, sub).sum(axis=(1, 3))
    return (frac / sub ** 3).ravel()


@dataclass
class VoxelGrid:
    """The volume's voxels: ``weight`` (1 / shell fraction, the kernel's concentration factor),
    ``support`` (voxels holding some shell) and ``probability`` (where a uniformly placed site
    lands among them)."""

    n_vox: int
    weight: np.ndarray
    support: np.ndarray
    probability: np.ndarray


def no_voxels() -> VoxelGrid:
    """The one-voxel placeholder of a model without volume sites."""
    return VoxelGrid(n_vox=1, weight=np.ones(1), support=np.zeros(1, dtype=np.int64), probability=np.ones(1))


def voxel_box_fractions(n_vox, voxel, r_in):
    """Fraction of each voxel of a periodic box of n_vox voxels a side outside the varicosity
    r < r_in at its centre (sub-voxel sampling near it, 1 elsewhere)."""
    half = 0.5 * n_vox * voxel
    reach = int(math.ceil(r_in / voxel)) + 1          # voxels around the centre the varicosity can touch
    lo, hi = max(n_vox // 2 - reach, 0), min(n_vox // 2 + reach, n_vox)
    frac = np.ones((n_vox, n_vox, n_vox))
    sub = VOXEL_SUBSAMPLES
    axis = -half + (np.arange(lo * sub, hi * sub) + 0.5) * (voxel / sub)
    r2 = axis[:, None, None] ** 2 + axis[None, :, None] ** 2 + axis[None, None, :] ** 2
    m = hi - lo
    outside = (r2 >= r_in ** 2).reshape(m, sub, m, sub, m, sub).sum(axis=(1, 3, 5))
    frac[lo:hi, lo:hi, lo:hi] = outside / sub ** 3
    return frac.ravel()


def voxel_grid(g: Geometry, voxel_um: float, n_vox: int) -> VoxelGrid:
    if periodic(g):
        shell_fraction = voxel_box_fractions(n_vox, voxel_um, g.varicosity_radius_um)
    else:
        shell_fraction = voxel_shell_fractions(n_vox, voxel_um, g.varicosity_radius_um, g.domain_radius_um)
    # a voxel that holds any shell holds at least half a sub-sample of it
    floor = 0.5 / VOXEL_SUBSAMPLES ** 3
    weight = np.where(shell_fraction > 0, 1.0 / np.maximum(shell_fraction, floor), 0.0)
    support = np.flatnonzero(shell_fraction > 0)
    return VoxelGrid(n_vox=n_vox, weight=weight, support=support,
                     probability=shell_fraction[support] / shell_fraction.sum())
