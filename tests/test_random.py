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


# ---------------------------------------------------------------------------------------------
# The block fill's lane generators: NORMAL_LANES xoshiro256++ states, lane l the serial state
# advanced by l + 1 jumps of 2^128 steps; raw word i of a block from lane i % NORMAL_LANES, draw j
# of a block the 32-bit half j (low half first).

LANES = _engine.NORMAL_LANES
MASK64 = (1 << 64) - 1
# Blackman & Vigna's published jump polynomial for xoshiro256 (2^128 steps), as in mcsyn_random.h
JUMP = (0x180EC6D33CFD0ABA, 0xD5A61266F0C9392C, 0xA9582618E03FC9AA, 0x39ABDC4529B1661C)


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK64


def _advance(s):
    """One xoshiro256++ state transition of the list s (in place)."""
    t = (s[1] << 17) & MASK64
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)


def _next(s):
    result = (_rotl((s[0] + s[3]) & MASK64, 23) + s[0]) & MASK64
    _advance(s)
    return result


def _jump(s):
    acc = [0, 0, 0, 0]
    for word in JUMP:
        for b in range(64):
            if word >> b & 1:
                acc = [a ^ x for a, x in zip(acc, s)]
            _advance(s)
    return acc


def test_lane_words_are_jumped_xoshiro_streams_interleaved():
    words = seed(99)
    state, lanes = [int(w) for w in words], []
    for _ in range(LANES):
        state = _jump(state)
        lanes.append(list(state))
    rows = 6
    expected = [_next(lanes[i % LANES]) for i in range(rows * LANES)]
    assert [int(w) for w in _engine.lane_words(words, rows)] == expected


def test_jump_polynomial_advances_2_to_the_128_steps():
    # the transition is linear over GF(2)^256: square its matrix 128 times and apply it to a state
    def bits(s):
        return np.array([(s[k // 64] >> (k % 64)) & 1 for k in range(256)], dtype=np.float64)

    transition = np.empty((256, 256))
    for j in range(256):
        basis = [0, 0, 0, 0]
        basis[j // 64] = 1 << (j % 64)
        _advance(basis)
        transition[:, j] = bits(basis)
    power = transition
    for _ in range(128):
        power = (power @ power) % 2        # entries <= 256: exact in float64
    state = [int(w) for w in seed(3)]
    assert np.array_equal((power @ bits(state)) % 2, bits(_jump(list(state))))


def test_block_draws_are_the_halves_of_the_lane_words_in_order():
    # an accepted draw u (~98.5 %) gives fl(t w[layer]), t = (u as int32 >> 7) | 1, layer = u & 255:
    # within each layer one w (found within two ulps of some x / t) must reproduce every accepted
    # normal exactly; any other order of the halves would leave almost none reproduced
    words, n = seed(5), 4095
    raw = _engine.lane_words(words, -(-n // (2 * LANES))).view(np.uint32)[:n]
    x = _engine.standard_normals(words, n)
    t = ((raw.view(np.int32) >> 7) | 1).astype(np.float64)
    layer = raw & 255
    reproduced = 0
    for k in np.unique(layer):
        xk, tk = x[layer == k], t[layer == k]
        candidates = (xk / tk)[:, None] + np.arange(-2, 3) * np.spacing(xk / tk)[:, None]
        reproduced += max(np.count_nonzero(tk * w == xk) for w in candidates.ravel())
    assert reproduced > 0.97 * n


@pytest.fixture(scope="module")
def lane_normals():
    """Bulk normals as (row, lane, half): the first 255 rows of each 4,095-normal block."""
    n_blocks = N // _engine.NORMAL_BLOCK
    x = _engine.standard_normals(seed(20261124), n_blocks * _engine.NORMAL_BLOCK)
    rows = _engine.NORMAL_BLOCK // (2 * LANES)
    return x.reshape(n_blocks, -1)[:, :rows * 2 * LANES].reshape(-1, LANES, 2)


def test_each_lane_is_standard_normal(lane_normals):
    for lane in range(LANES):
        x = lane_normals[:, lane, :].ravel()
        n = len(x)
        assert abs(x.mean()) < Z * np.sqrt(1 / n), lane
        assert abs(np.mean(x ** 2) - 1) < Z * np.sqrt(2 / n), lane
        assert abs(np.mean(x ** 3)) < Z * np.sqrt(15 / n), lane
        assert abs(np.mean(x ** 4) - 3) < Z * np.sqrt(96 / n), lane
        assert stats.kstest(x, "norm").pvalue > 1e-5, lane


def test_lanes_uncorrelated_across_and_along(lane_normals):
    x = lane_normals
    n_rows = len(x)
    for a in range(LANES):
        # the two halves of one word, and one half at lags of one and two rows along a lane
        assert abs(np.corrcoef(x[:, a, 0], x[:, a, 1])[0, 1]) < Z / np.sqrt(n_rows)
        for lag in (1, 2):
            assert abs(np.corrcoef(x[:-lag, a, 0], x[lag:, a, 0])[0, 1]) < Z / np.sqrt(n_rows - lag)
        for b in range(a + 1, LANES):
            # the same row of two lanes (drawn in the same step of the lockstep), values and sizes
            for half in (0, 1):
                assert abs(np.corrcoef(x[:, a, half], x[:, b, half])[0, 1]) < Z / np.sqrt(n_rows), (a, b)
                r = np.corrcoef(np.abs(x[:, a, half]), np.abs(x[:, b, half]))[0, 1]
                assert abs(r) < Z / np.sqrt(n_rows), (a, b)


def test_lane_normals_independent_of_the_serial_stream():
    # the serial stream (bulk=False) starts where lane 0 stands 2^128 steps earlier
    a = _engine.standard_normals(seed(31), N)
    b = _engine.standard_normals(seed(31), N, bulk=False)
    assert abs(np.corrcoef(a, b)[0, 1]) < Z / np.sqrt(N)
    assert abs(np.corrcoef(np.abs(a), np.abs(b))[0, 1]) < Z / np.sqrt(N)
