"""The kernel's draw of volume sites per voxel (``_engine.volume_site_counts``, ext/site_counts.pxi):
Poisson counts per voxel corrected to the total must be multinomial(N, p) exactly.

Checked against the multinomial's own probabilities (every outcome of a small case, where the
correction adds or removes sites in most draws), against its moments at the presets' scale and
with means of millions per voxel (the tables' windowed range), against the binomial marginal of
one voxel, and that the total always comes out exact for random inputs (hypothesis). Fixed seeds;
bounds are 5 standard errors, or a chi-square p-value of 1e-6 (5 SE of a normal)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from mcsyn import _engine, placement


def draw(total, voxel_class, class_probability, seed):
    words = np.random.SeedSequence(seed).generate_state(4, np.uint64)
    return _engine.volume_site_counts(total, np.asarray(voxel_class, dtype=np.int32),
                                      np.asarray(class_probability, dtype=np.float64), words)


def many(total, voxel_class, class_probability, runs, seed=0):
    return np.array([draw(total, voxel_class, class_probability, (seed, i)) for i in range(runs)])


def multinomial_pmf(n, p):
    """{outcome: probability} of every way n sites fall into len(p) voxels."""
    out = {}
    for cut in itertools.combinations(range(n + len(p) - 1), len(p) - 1):
        counts = np.diff((-1,) + cut + (n + len(p) - 1,)) - 1
        out[tuple(counts)] = math.exp(stats.multinomial.logpmf(counts, n, p))
    return out


@pytest.mark.parametrize("total, voxel_class, class_probability", [
    (4, [0, 1, 2], [0.5, 0.3, 0.2]),          # S ~ Poisson(4): sites added or taken away in most draws
    (6, [0, 0, 1, 1], [1.0, 3.0]),            # unnormalised classes of two voxels each
    (5, [0, 1, 0], [0.7, 0.0]),               # a voxel that can hold nothing
])
def test_small_cases_follow_the_multinomial_exactly(total, voxel_class, class_probability):
    weights = np.asarray(class_probability)[voxel_class]
    p = weights / weights.sum()
    pmf = multinomial_pmf(total, p)
    runs = 40_000
    drawn = many(total, voxel_class, class_probability, runs)
    assert np.all(drawn.sum(axis=1) == total)
    seen = {}
    for row in map(tuple, drawn):
        seen[row] = seen.get(row, 0) + 1
    assert set(seen) <= {k for k, v in pmf.items() if v > 0}
    # outcomes expected fewer than 5 times join the least likely common one
    common = sorted((k for k, v in pmf.items() if v * runs >= 5), key=pmf.get, reverse=True)
    observed = np.array([seen.get(k, 0) for k in common])
    expected = np.array([pmf[k] for k in common]) * runs
    observed[-1] += runs - observed.sum()
    expected[-1] += runs - expected.sum()
    assert stats.chisquare(observed, expected).pvalue > 1e-6


def test_moments_at_the_presets_scale():
    # 2,000 voxels in two classes, 50,000 sites (25 per voxel, as SERT in the serotonergic preset)
    voxel_class = np.r_[np.zeros(1500, int), np.ones(500, int)]
    class_probability = np.array([1.0, 0.4])
    p = class_probability[voxel_class] / class_probability[voxel_class].sum()
    total, runs = 50_000, 300
    drawn = many(total, voxel_class, class_probability, runs, seed=1)
    assert np.all(drawn.sum(axis=1) == total)
    # the second class's total: binomial(N, P2)
    big = p[1500:].sum()
    second = drawn[:, 1500:].sum(axis=1)
    assert abs(second.mean() - total * big) < 5 * math.sqrt(total * big * (1 - big) / runs)
    assert abs(second.var(ddof=1) / (total * big * (1 - big)) - 1) < 5 * math.sqrt(2 / (runs - 1))
    # per voxel: mean N p_i, and the pooled variance N p_i (1 - p_i) (voxels are nearly independent)
    for cls in (slice(0, 1500), slice(1500, 2000)):
        counts, pi = drawn[:, cls], p[cls][0]
        var = total * pi * (1 - pi)
        assert abs(counts.mean() - total * pi) < 5 * math.sqrt(var / counts.size)
        assert abs(counts.var(axis=0, ddof=1).mean() / var - 1) < 5 * math.sqrt(2 / (runs - 1) / counts.shape[1])
    # neighbouring voxels anticorrelate as the multinomial's -N p_i p_j: near zero, not positive
    cov = np.mean([np.cov(drawn[:, i], drawn[:, i + 1])[0, 1] for i in range(0, 1400, 2)])
    expected_cov = -total * p[0] * p[1]
    assert abs(cov - expected_cov) < 5 * math.sqrt(var ** 2 / (runs - 1) / 700)


def test_one_voxel_is_binomial():
    voxel_class = np.arange(50) % 3
    class_probability = np.array([1.0, 2.0, 0.5])
    p = class_probability[voxel_class] / class_probability[voxel_class].sum()
    total, runs = 100, 20_000
    one = many(total, voxel_class, class_probability, runs, seed=2)[:, 1]
    support = np.arange(total + 1)
    pmf = stats.binom.pmf(support, total, p[1])
    keep = pmf * runs > 5
    observed = np.array([np.sum(one == k) for k in support[keep]] + [np.sum(~np.isin(one, support[keep]))])
    expected = np.r_[pmf[keep], 1 - pmf[keep].sum()] * runs
    assert stats.chisquare(observed, expected).pvalue > 1e-6


def test_means_of_millions_per_voxel():
    # Poisson means ~3e6 per voxel: the tables cover a window of the mean +- 10 sqrt(mean) + 20
    total, runs = 10_000_000, 400
    class_probability = np.array([1.0, 1.5, 0.5])
    p = class_probability / class_probability.sum()
    drawn = many(total, [0, 1, 2], class_probability, runs, seed=3)
    assert np.all(drawn.sum(axis=1) == total)
    for i in range(3):
        var = total * p[i] * (1 - p[i])
        assert abs(drawn[:, i].mean() - total * p[i]) < 5 * math.sqrt(var / runs)
        assert abs(drawn[:, i].var(ddof=1) / var - 1) < 5 * math.sqrt(2 / (runs - 1))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(total=st.integers(0, 200_000),
       weights=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=6),
       n_voxels=st.integers(1, 300), seed=st.integers(0, 2 ** 32 - 1))
def test_the_total_is_exact_for_random_inputs(total, weights, n_voxels, seed):
    voxel_class = np.random.default_rng(seed).integers(0, len(weights), n_voxels)
    held = np.asarray(weights)[voxel_class]
    if total and held.sum() == 0:
        with pytest.raises(ValueError, match="positive probability"):
            draw(total, voxel_class, weights, seed)
        return
    if total and total * held.max() / held.sum() > 2 ** 30:
        return
    counts = draw(total, voxel_class, weights, seed)
    assert counts.sum() == total and counts.min() >= 0
    assert np.all(counts[held == 0] == 0)
    assert np.array_equal(counts, draw(total, voxel_class, weights, seed))     # a seed is one draw


@pytest.mark.parametrize("args, match", [
    ((-1, [0], [1.0]), "total must be >= 0"),
    ((5, [0, 2], [1.0, 1.0]), "voxel_class must lie in 0..1"),
    ((5, [0, -1], [1.0, 1.0]), "voxel_class must lie in 0..1"),
    ((5, [0], [np.nan]), "finite and >= 0"),
    ((5, [0], [-0.5]), "finite and >= 0"),
    ((5, [0, 0], [0.0]), "positive probability"),
    ((2 ** 31, [0], [1.0]), "more than 2\\*\\*30 sites into one voxel"),
])
def test_bad_input_is_refused(args, match):
    with pytest.raises(ValueError, match=match):
        draw(*args, seed=0)
    with pytest.raises(ValueError, match="seed_words must hold 4"):
        _engine.volume_site_counts(1, np.zeros(1, np.int32), np.ones(1), np.zeros(3, np.uint64))


def test_probability_classes_rebuild_the_voxel_probabilities():
    probability = np.array([0.1, 0.3, 0.1, 0.2, 0.3])
    voxel_class, class_probability = placement.probability_classes(probability)
    assert voxel_class.dtype == np.int32 and len(class_probability) == 3
    assert np.array_equal(class_probability[voxel_class], probability)
