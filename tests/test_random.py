"""The kernel's own generator (xoshiro256++ + 256-layer ziggurat) against the normal distribution.

Every statistic is compared with its exact expectation and a tolerance of 5 standard errors
computed from the known variance of the statistic; p-value tests use a threshold of 1e-5.
"""
import numpy as np
import pytest
from scipy import stats

from mcsyn import _engine

N = 2_000_000
Z = 5.0


def seed(k):
    return np.random.SeedSequence(k).generate_state(4, np.uint64)


@pytest.fixture(scope="module", params=[True, False], ids=["bulk", "single"])
def normals(request):
    return _engine.standard_normals(seed(20261123), N, bulk=request.param)


def test_moments(normals):
    x = normals
    n = len(x)
    assert abs(x.mean()) < Z * np.sqrt(1 / n)
    assert abs(np.mean(x ** 2) - 1) < Z * np.sqrt(2 / n)          # Var(x²) = 2
    assert abs(np.mean(x ** 3)) < Z * np.sqrt(15 / n)             # E x⁶ = 15
    assert abs(np.mean(x ** 4) - 3) < Z * np.sqrt(96 / n)         # Var(x⁴) = 105 − 9


def test_distribution_shape(normals):
    assert stats.kstest(normals, "norm").pvalue > 1e-5
    edges = stats.norm.ppf(np.linspace(0, 1, 201))
    counts, _ = np.histogram(normals, bins=edges)
    assert stats.chisquare(counts).pvalue > 1e-5


@pytest.mark.parametrize("cut", [3.0, 3.6541528853610088, 4.0, 4.5])
def test_tails(normals, cut):
    # beyond R = 3.654 every draw comes from the ziggurat's exponential-rejection tail; 3.0 lies in
    # the narrow outer layers, where the wedge test decides a larger share of draws
    p = 2 * stats.norm.sf(cut)
    k = np.count_nonzero(np.abs(normals) > cut)
    assert abs(k - N * p) < Z * np.sqrt(N * p * (1 - p))


def test_sign_and_layer_independent(normals):
    # sign and abscissa come from bits 8-31 of a draw, the layer from bits 0-7; neighbours from
    # neighbouring halves of one 64-bit output
    x = normals
    for lag in (1, 2, 3):
        r = np.corrcoef(x[:-lag], x[lag:])[0, 1]
        assert abs(r) < Z / np.sqrt(len(x))
    r = np.corrcoef(np.abs(x[:-1]), np.abs(x[1:]))[0, 1]
    assert abs(r) < Z / np.sqrt(len(x))


def test_uniforms():
    u = _engine.uniforms(seed(7), N)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < Z * np.sqrt(1 / 12 / N)
    assert stats.kstest(u, "uniform").pvalue > 1e-5


def test_streams_reproducible_and_distinct():
    a = _engine.standard_normals(seed(1), 1000)
    assert np.array_equal(a, _engine.standard_normals(seed(1), 1000))
    assert not np.array_equal(a, _engine.standard_normals(seed(2), 1000))


def test_seed_shape_checked():
    with pytest.raises(ValueError, match="4 uint64"):
        _engine.standard_normals(np.zeros(3, dtype=np.uint64), 10)
