"""N2D2's mask algorithms on tensors small enough to check by eye."""

import math

import numpy as np
import pytest

from n2prune.prune.fillers import iter_nonstruct, random_fill

W = np.array([0.05, -0.12, 0.0, 0.31, -0.18, 0.26, 0.09, -0.4, 0.15, 0.22], dtype=np.float32)
ONES = np.ones(10, dtype=np.uint8)


def reference_iter_nonstruct(w, t, delta):
    """N2D2's loop, literally (float32 comparisons)."""
    w = np.abs(w.astype(np.float32))
    count, j = 0, 0
    while np.float32(count) / np.float32(w.size) < np.float32(t):
        j += 1
        count = int(np.sum(w <= np.float32(delta) * np.float32(j)))
    return (w > np.float32(delta) * np.float32(j)).astype(np.uint8)


def test_reaches_threshold_exactly_with_zeros_counted():
    # |W| <= 0.1: 0.05, 0.0, 0.09 -> 3/10 = 0.3 (the exact zero counts)
    np.testing.assert_array_equal(iter_nonstruct(W, ONES, 0.3, 0.1), [0, 1, 0, 1, 1, 1, 0, 1, 1, 1])


def test_overshoots_to_the_next_delta_multiple():
    # 0.4 is not reachable at 0.1 (3 weights); at 0.2 six weights go: 0.6 pruned
    mask = iter_nonstruct(W, ONES, 0.4, 0.1)
    np.testing.assert_array_equal(mask, [0, 0, 0, 1, 0, 1, 0, 1, 0, 1])
    assert 1 - mask.mean() == pytest.approx(0.6)


def test_threshold_zero_masks_only_exact_zeros():
    np.testing.assert_array_equal(iter_nonstruct(W, ONES, 0.0, 0.1), [1, 1, 0, 1, 1, 1, 1, 1, 1, 1])


def test_positive_threshold_starts_at_the_first_step():
    # One zero already gives 0.1, but N2D2 never tests j = 0 when t > 0: j = 1.
    np.testing.assert_array_equal(iter_nonstruct(W, ONES, 0.1, 0.1), [0, 1, 0, 1, 1, 1, 0, 1, 1, 1])


def test_recomputed_from_scratch_so_a_grown_weight_returns():
    pruned = iter_nonstruct(W, ONES, 0.3, 0.1)
    grown = W.copy()
    grown[0] = 0.5
    mask = iter_nonstruct(grown, pruned, 0.3, 0.1)
    assert pruned[0] == 0 and mask[0] == 1
    assert 1 - mask.mean() >= 0.3


@pytest.mark.parametrize("seed", range(6))
def test_matches_n2d2_loop_on_random_tensors(seed):
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal(rng.integers(1, 3000)) * rng.uniform(0.01, 1)).astype(np.float32)
    w[rng.random(w.size) < 0.05] = 0
    for t in (0.0, 0.05, 0.33, 0.5, 0.9, 0.99, 1.0):
        for delta in (1e-4, 1e-3, 0.01):
            np.testing.assert_array_equal(iter_nonstruct(w, None, t, delta),
                                          reference_iter_nonstruct(w, t, delta))


def test_impossible_thresholds_are_errors():
    with pytest.raises(ValueError, match="above 1"):
        iter_nonstruct(W, ONES, 1.5, 0.1)
    with pytest.raises(ValueError, match="Delta=0"):
        iter_nonstruct(W, ONES, 0.5, 0.0)


def test_random_reaches_ceil_and_is_cumulative():
    rng = np.random.default_rng(7)
    first = random_fill(W, ONES, 0.35, None, rng)
    assert int((first == 0).sum()) == math.ceil(0.35 * 10) == 4
    second = random_fill(W, first, 0.5, None, rng)
    assert int((second == 0).sum()) == 5
    assert np.all(second[first == 0] == 0)  # never un-prunes
    assert np.array_equal(random_fill(W, second, 0.2, None, rng), second)  # already past 0.2
    assert np.array_equal(random_fill(W, ONES, 0.0, None, rng), ONES)


def test_random_is_deterministic_per_seed_and_ignores_weights():
    a = random_fill(W, ONES, 0.5, None, np.random.default_rng(3))
    b = random_fill(-W * 100, ONES, 0.5, None, np.random.default_rng(3))
    c = random_fill(W, ONES, 0.5, None, np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
