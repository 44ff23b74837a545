"""One contract for every outside kind and boundary (in the manner of SciPy's ``QMCEngineTests``).

``GeometryContract`` holds the tests; each subclass only supplies its geometry (small, so that a
run takes well under a second). The contract:

* conservation at every sample: released = free + bound + taken_up + escaped + degraded (efflux
  counts as released, so ``effluxed`` is inside ``released``), with free = free_cleft +
  free_band + free_volume, cumulative counters never decreasing;
* nothing escapes where the kind has no absorbing boundary, and something does where it has one;
* reflection: a closed cell keeps every molecule free, and the positions a run keeps
  (``keep_positions=True``) lie inside the domain, as many as the counts say;
* exchange: molecules spread over the whole domain; where the volume enters the cleft they come
  back to it, at the equilibrium share (V_cleft / (V_cleft + α V_shell), binomial tolerance);
  without re-entry the cleft only empties, and a volume release never reaches it;
* the same seed gives the same result whatever the batching (``mcsyn.run`` on 1 or 2 workers,
  and a run alone);
* every output is finite (``clearance_half_time_ms`` is NaN exactly when free never halved).

Statistical checks use Z = 5 standard errors of a binomial count, with fixed seeds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import mcsyn

Z = 5.0
D_GLU = 0.33              # µm²/ms
MOLECULES = 2000
CONSERVED = ["free", "bound", "taken_up", "escaped", "degraded"]
VOLUME_KINDS = ("volume", "periodic")
CUMULATIVE = ["released", "taken_up", "escaped", "degraded", "effluxed", "binding_events"]


def reversing_transporter():
    """A transporter cycle whose inward-facing carrier also runs backwards (efflux), so that the
    bookkeeping of released-by-efflux molecules is exercised too."""
    scheme = mcsyn.transporter_cycle("EAAT", "glutamate", 1e7, 100.0, 2000.0, 500.0)
    return scheme.efflux("Ti", "T", "glutamate", 300.0)


class GeometryContract:
    """The tests every geometry passes. Subclasses define :meth:`geometry`."""

    duration_ms = 2.0            # long enough for the domain to mix (checked by the share test)
    dt_volume_us = 4.0

    def geometry(self) -> mcsyn.Geometry:
        raise NotImplementedError

    # ---- what follows from the geometry
    @property
    def absorbing(self) -> bool:
        g = self.geometry()
        return (g.outside == "open" or (g.outside == "band" and g.band_outer_boundary == "absorbing")
                or (g.outside == "volume" and g.domain_boundary == "absorbing"))

    def inside_slab(self, xyz) -> np.ndarray:
        g = self.geometry()
        r = np.hypot(xyz[:, 0], xyz[:, 1])
        return (xyz[:, 2] >= 0) & (xyz[:, 2] <= g.cleft_height_um) & (r <= g.slab_radius_um)

    def inside_volume(self, xyz) -> np.ndarray:
        g = self.geometry()
        r = np.linalg.norm(xyz, axis=1)
        if g.outside == "periodic":
            return (r >= g.varicosity_radius_um) & (np.abs(xyz) <= 0.5 * g.box_side_um).all(axis=1)
        return (r >= g.varicosity_radius_um) & (r <= g.domain_radius_um)

    def expected_cleft_share(self, model):
        """The cleft's share of the free molecules once a reflecting domain has mixed (None where
        molecules escape)."""
        g = self.geometry()
        if self.absorbing:
            return None
        if g.outside == "closed":
            return 1.0
        if g.outside == "band":
            return (g.cleft_radius_um / g.band_outer_radius_um) ** 2
        if not model.volume_enters_cleft:
            return 0.0
        varicosity = 4.0 / 3.0 * math.pi * g.varicosity_radius_um ** 3
        domain = g.box_side_um ** 3 if g.outside == "periodic" else 4.0 / 3.0 * math.pi * g.domain_radius_um ** 3
        v_ecs = g.volume_fraction * (domain - varicosity)
        return g.cleft_volume_um3 / (g.cleft_volume_um3 + v_ecs)

    # ---- the models
    def bare_model(self, into="cleft", molecules=MOLECULES) -> mcsyn.SynapseModel:
        """Free diffusion only: one burst, no sites, no degradation."""
        return mcsyn.SynapseModel(
            species=[mcsyn.Species("glutamate", D_GLU)], geometry=self.geometry(),
            releases=[mcsyn.Release(0.0, molecules, into=into)],
            timing=mcsyn.Timing(duration_ms=self.duration_ms, dt_fine_us=1.0, dt_volume_us=self.dt_volume_us,
                                sample_interval_us=50.0))

    def reactive_model(self) -> mcsyn.SynapseModel:
        """Every way a molecule can be counted: receptors, transporters that take up and efflux, an
        enzyme, first-order degradation, and sites wherever the geometry has room for them."""
        m = self.bare_model()
        g = m.geometry
        m.sites = [mcsyn.SiteGroup(mcsyn.ampa_jonas1993(), "postsynaptic", count=40),
                   mcsyn.SiteGroup(reversing_transporter(), "presynaptic", count=40),
                   mcsyn.SiteGroup(mcsyn.enzyme_site("esterase", "glutamate", 1e7, 100.0, 3000.0),
                                   "presynaptic", count=20)]
        if g.outside == "band":
            m.sites.append(mcsyn.SiteGroup(mcsyn.transporter_cycle("EAAT", "glutamate", 1e7, 100.0, 50.0, 20.0),
                                           "band_postsynaptic", density_per_um2=1000))
        if g.outside in VOLUME_KINDS:
            m.sites.append(mcsyn.SiteGroup(mcsyn.transporter_cycle("EAAT", "glutamate", 1e7, 100.0, 50.0, 20.0),
                                           "volume", density_per_um3=300))
        m.degradation = [mcsyn.Degradation(300.0, "all")]
        m.releases = [mcsyn.Release(0.0, MOLECULES), mcsyn.Release(0.2, MOLECULES // 2, pore_tau_ms=0.1)]
        if g.outside in VOLUME_KINDS:
            m.releases.append(mcsyn.Release(0.2, MOLECULES // 2, into="volume"))
        return m

    def injected(self, model) -> int:
        return sum(int(r.molecules) for r in model.releases)

    # ---- the contract
    def test_conservation_at_every_sample(self):
        model = self.reactive_model()
        for run_index in range(2):
            s = mcsyn.run_one(model, seed=101, run_index=run_index).series
            np.testing.assert_array_equal(s["released"], s[CONSERVED].sum(axis=1))
            np.testing.assert_array_equal(s["free"], s[["free_cleft", "free_band", "free_volume"]].sum(axis=1))
            np.testing.assert_array_equal(s["released"] - s["effluxed"] <= self.injected(model), True)
            # the fusion pore (τ 0.1 ms from 0.2 ms) has let out all but e^-18 of its molecules by the end
            assert s["released"].iloc[-1] - s["effluxed"].iloc[-1] == self.injected(model)
            for name in CUMULATIVE:
                assert (np.diff(s[name].to_numpy()) >= 0).all(), name
            assert (s[CONSERVED + ["free_cleft", "free_band", "free_volume"]] >= 0).all().all()
            # the bookkeeping is exercised, not vacuous
            for name in ("bound", "taken_up", "degraded", "effluxed", "binding_events"):
                assert s[name].max() > 0, name

    def test_escape_only_through_an_absorbing_boundary(self):
        for model in (self.bare_model(), self.reactive_model()):
            escaped = mcsyn.run_one(model, seed=102).series["escaped"]
            if self.absorbing:
                assert escaped.iloc[-1] > 0
            else:
                assert (escaped == 0).all()

    def test_a_closed_cell_keeps_every_molecule(self):
        if self.absorbing:
            pytest.skip("the domain has an absorbing boundary")
        s = mcsyn.run_one(self.bare_model(), seed=103).series
        assert (s["free"] == MOLECULES).all()
        assert (s["released"] == MOLECULES).all()

    @pytest.mark.parametrize("into", ["cleft", "volume"])
    def test_kept_positions_lie_inside_the_domain(self, into):
        if into == "volume" and self.geometry().outside not in VOLUME_KINDS:
            pytest.skip("no volume to release into")
        model = self.bare_model(into=into)
        for run_index in range(2):
            one = mcsyn.run_one(model, seed=104, run_index=run_index, keep_positions=True)
            slab, volume = one.positions["slab_positions"], one.positions["volume_positions"]
            last = one.series.iloc[-1]
            assert len(slab) == last["free_cleft"] + last["free_band"]
            assert len(volume) == last["free_volume"]
            assert len(one.positions["slab_species"]) == len(slab)
            assert self.inside_slab(slab).all(), slab[~self.inside_slab(slab)]
            assert self.inside_volume(volume).all(), volume[~self.inside_volume(volume)]
            if not self.absorbing:
                assert len(slab) + len(volume) == MOLECULES

    def test_molecules_fill_the_domain_at_the_equilibrium_share(self):
        # each run's cleft share averaged over the second half of the run (mixed by then); the
        # tolerance is Z standard errors of the mean over runs, from their spread
        model = self.bare_model()
        share = self.expected_cleft_share(model)
        if share is None:
            pytest.skip("molecules escape: no equilibrium")
        n_runs = 6
        ens = mcsyn.run(model, n_runs=n_runs, seed=105, workers=2)
        late = ens.times_ms >= 0.5 * self.duration_ms
        per_run = ens.series[:, late, ens.columns.index("free_cleft")].mean(axis=1) / MOLECULES
        if share in (0.0, 1.0):
            assert (per_run == share).all(), per_run
            return
        se = per_run.std(ddof=1) / math.sqrt(n_runs)
        assert abs(per_run.mean() - share) <= Z * se, (per_run.mean(), share, se)
        assert Z * se < 0.1 * share            # resolves a 10 % error of the share

    def test_exchange_between_cleft_and_outside(self):
        g = self.geometry()
        s = mcsyn.run_one(self.bare_model(), seed=106).series
        assert s["free_cleft"].iloc[0] == MOLECULES
        if g.outside != "band":
            assert (s["free_band"] == 0).all()
        if g.outside not in VOLUME_KINDS:
            assert (s["free_volume"] == 0).all()
            return
        assert s["free_volume"].max() > 0
        late_cleft = s["free_cleft"].iloc[len(s) // 2:]
        if self.bare_model().volume_enters_cleft:
            # molecules come back: always some in a closed cell, at times where the domain absorbs
            assert late_cleft.min() > 0 if not self.absorbing else late_cleft.max() > 0
        else:
            assert (np.diff(s["free_cleft"].to_numpy()) <= 0).all()   # the cleft only empties
            assert s["free_cleft"].iloc[-1] == 0
        volume_release = self.bare_model(into="volume")
        v = mcsyn.run_one(volume_release, seed=107).series
        if volume_release.volume_enters_cleft:
            assert v["free_cleft"].max() > 0
        else:
            assert (v["free_cleft"] == 0).all()

    def test_same_seed_same_result_whatever_the_batching(self):
        model = self.reactive_model()
        a = mcsyn.run(model, n_runs=3, seed=108, workers=1)
        b = mcsyn.run(model, n_runs=3, seed=108, workers=2)
        np.testing.assert_array_equal(a.series, b.series)
        assert a.columns == b.columns
        assert a.metrics.equals(b.metrics)
        alone = mcsyn.run_one(model, seed=108, run_index=2).series
        np.testing.assert_array_equal(a.series[2], alone[a.columns].to_numpy())
        other = mcsyn.run(model, n_runs=1, seed=109, workers=1)
        assert not np.array_equal(a.series[0], other.series[0])

    def test_outputs_are_finite(self):
        for model in (self.bare_model(), self.reactive_model()):
            one = mcsyn.run_one(model, seed=110)
            assert np.isfinite(one.series.to_numpy(dtype=float)).all()
            free = one.series["free"].to_numpy()
            peak = int(np.argmax(free))
            halved = bool((free[peak:] <= 0.5 * free[peak]).any())
            for name, value in one.metrics.items():
                if name == "clearance_half_time_ms":
                    assert np.isfinite(value) == halved, (value, halved)
                else:
                    assert np.isfinite(value), (name, value)


# ---------------------------------------------------------------------------------------------
# the geometries

def cleft(**kw) -> mcsyn.Geometry:
    return mcsyn.Geometry(cleft_height_um=0.02, cleft_radius_um=0.2, psd_radius_um=0.15, **kw)


class TestClosed(GeometryContract):
    def geometry(self):
        return cleft(outside="closed")


class TestOpen(GeometryContract):
    def geometry(self):
        return cleft(outside="open")


class TestBandAbsorbing(GeometryContract):
    def geometry(self):
        return cleft(outside="band", band_outer_radius_um=0.5, band_outer_boundary="absorbing")


class TestBandReflecting(GeometryContract):
    def geometry(self):
        return cleft(outside="band", band_outer_radius_um=0.5, band_outer_boundary="reflecting")


class TestVolumeAbsorbing(GeometryContract):
    def geometry(self):
        return cleft(outside="volume", varicosity_radius_um=0.25, domain_radius_um=0.8,
                     domain_boundary="absorbing")


class TestVolumeReflecting(GeometryContract):
    duration_ms = 4.0                # the shell mixes within ~1 ms

    def geometry(self):
        return cleft(outside="volume", varicosity_radius_um=0.25, domain_radius_um=0.6,
                     domain_boundary="reflecting")


class TestVolumeWithoutReentry(GeometryContract):
    def geometry(self):
        return cleft(outside="volume", varicosity_radius_um=0.25, domain_radius_um=0.6,
                     domain_boundary="reflecting", volume_enters_cleft=False)


class TestPeriodic(GeometryContract):
    duration_ms = 8.0                # the box mixes within ~1 ms; the cleft's share is then averaged over 4 ms
    dt_volume_us = 2.0               # the volume step must stay below a tenth of the 0.25 µm between varicosity and faces

    def geometry(self):
        return cleft(outside="periodic", varicosity_radius_um=0.25, box_side_um=1.0)


class TestPeriodicWithoutReentry(GeometryContract):
    dt_volume_us = 2.0

    def geometry(self):
        return cleft(outside="periodic", varicosity_radius_um=0.25, box_side_um=1.0, volume_enters_cleft=False)
