"""N2D2's mask algorithms on tensors small enough to check by eye, and against N2D2's loop."""

import math

import numpy as np
import pytest

from n2prune.errors import UserError
from n2prune.prune.mask_methods import (
    PRUNING_FILLERS,
    iter_nonstruct,
    random_fill,
)

# |W| <= 0.1: 0.05, 0.0, 0.09 (3 of 10); <= 0.2: also 0.12, 0.18, 0.15 (6 of 10).
W = np.array([0.05, -0.12, 0.0, 0.31, -0.18, 0.26, 0.09, -0.4, 0.15, 0.22], dtype=np.float32)
ONES = np.ones(10, dtype=np.uint8)


def n2d2_iter_nonstruct(w, t, delta):
    """``update_masks_iter_nonstruct`` line by line, in float32 as in the C++."""
    magnitudes, t, delta = np.abs(w.astype(np.float32)), np.float32(t), np.float32(delta)
    count, j = 0, 0
    while np.float32(count) / np.float32(w.size) < t:
        j += 1
        count = np.count_nonzero(magnitudes <= delta * np.float32(j))
    return np.where(magnitudes <= delta * np.float32(j), 0, 1).astype(np.uint8)


def zeros(mask):
    return int(np.count_nonzero(mask == 0))


def test_reaches_threshold_exactly_with_exact_zeros_counted():
    np.testing.assert_array_equal(iter_nonstruct(W, 0.3, 0.1), [0, 1, 0, 1, 1, 1, 0, 1, 1, 1])


def test_overshoots_to_the_next_delta_multiple():
    # 0.1 prunes 0.05, 0.09 (0.2 < 0.3); 0.2 adds 0.12, 0.18: 0.4 achieved.
    w = np.array([0.05, -0.12, 0.31, -0.18, 0.26, 0.09, -0.4, 0.5, 0.35, 0.27], dtype=np.float32)
    mask = iter_nonstruct(w, 0.3, 0.1)
    np.testing.assert_array_equal(mask, [0, 0, 1, 0, 1, 0, 1, 1, 1, 1])
    assert zeros(mask) == 4


def test_threshold_zero_masks_exactly_the_zeros():
    np.testing.assert_array_equal(iter_nonstruct(W, 0.0, 0.1), [1, 1, 0, 1, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(iter_nonstruct(W, 0.0, 0.0), [1, 1, 0, 1, 1, 1, 1, 1, 1, 1])


def test_a_positive_threshold_always_takes_one_step():
    # The zero alone gives 0.1, but N2D2 tests the fraction only after j = 1.
    np.testing.assert_array_equal(iter_nonstruct(W, 0.1, 0.1), [0, 1, 0, 1, 1, 1, 0, 1, 1, 1])


def test_float32_step_and_fraction_as_n2d2():
    # 0.1f * 3 is exactly float32(0.3), so that weight goes at j = 3 (in double 0.1*3 < 0.3f
    # and j = 4 would also prune 0.35).
    w = np.array([0.3, 0.25, 0.05, 0.15, 0.35, 0.6, 0.7, 0.8, 0.9, 1.0], dtype=np.float32)
    np.testing.assert_array_equal(iter_nonstruct(w, 0.4, 0.1), [0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    # float32(0.30000001) == float32(0.3): 3/10 already reaches it (in double it would not).
    assert zeros(iter_nonstruct(W, 0.30000001, 0.1)) == 3


def test_recomputed_from_scratch_so_a_grown_weight_returns():
    grown = W.copy()
    grown[0] = 0.5
    mask = iter_nonstruct(grown, 0.3, 0.1)
    assert iter_nonstruct(W, 0.3, 0.1)[0] == 0 and mask[0] == 1
    assert zeros(mask) == 5  # now only 2 under 0.1: j = 2 prunes 5


def test_keeps_shape_and_prunes_everything_at_one():
    w = W.reshape(2, 5)
    mask = iter_nonstruct(w, 1.0, 0.1)
    assert mask.shape == (2, 5) and mask.dtype == np.uint8 and not mask.any()


@pytest.mark.parametrize("seed", range(6))
def test_matches_n2d2_loop_on_random_tensors(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 2000))
    w = (rng.standard_normal(size) * rng.uniform(0.05, 0.5)).astype(np.float32)
    w[rng.random(size) < 0.05] = 0
    for delta in (1e-3, 0.01, 0.1):
        # Weights on exact multiples of delta, computed in float64 then rounded: boundary ties.
        ties = (rng.integers(-50, 50, size) * delta).astype(np.float32)
        for t in (0.0, 0.01, 0.05, 0.3, 1 / 3, 0.5, 0.7, 0.9, 0.99, 1.0):
            for weights in (w, ties):
                np.testing.assert_array_equal(iter_nonstruct(weights, t, delta),
                                              n2d2_iter_nonstruct(weights, t, delta))


def test_thresholds_n2d2_would_never_reach_are_errors():
    with pytest.raises(ValueError, match="above 1"):
        iter_nonstruct(W, 1.5, 0.1)
    with pytest.raises(ValueError, match="only exact zeros"):
        iter_nonstruct(W, 0.5, 0.0)
    with pytest.raises(UserError, match="Delta=1e-12"):  # j would overflow N2D2's unsigned int
        iter_nonstruct(W, 0.5, 1e-12)
    assert zeros(iter_nonstruct(W, 0.1, 0.0)) == 1  # Delta 0 is fine while zeros suffice


def test_a_nan_weight_is_never_counted_and_stays_kept():
    w = W.copy()
    w[3] = np.nan
    assert iter_nonstruct(w, 0.3, 0.1)[3] == 1
    with pytest.raises(ValueError):
        iter_nonstruct(w, 1.0, 0.1)


def test_random_reaches_ceil_and_is_cumulative():
    rng = np.random.default_rng(7)
    first = random_fill(ONES, 0.35, rng)
    assert zeros(first) == math.ceil(0.35 * 10) == 4
    second = random_fill(first, 0.5, rng)
    assert zeros(second) == 5 and np.all(second[first == 0] == 0)  # never un-prunes
    np.testing.assert_array_equal(random_fill(second, 0.2, rng), second)  # already past 0.2
    np.testing.assert_array_equal(random_fill(ONES, 0.0, rng), ONES)
    assert ONES.all() and zeros(first) == 4  # inputs untouched


def test_random_ceil_is_float32_and_reaches_all():
    # float32(0.3) * 10 rounds to exactly 3.0f: ceil gives 3, not 4.
    assert zeros(random_fill(ONES, 0.3, np.random.default_rng(0))) == 3
    assert zeros(random_fill(ONES, 1.0, np.random.default_rng(0))) == 10
    big = random_fill(np.ones((40, 50), dtype=np.uint8), 0.73, np.random.default_rng(1))
    assert big.shape == (40, 50) and big.dtype == np.uint8 and zeros(big) == 1460


def test_random_is_deterministic_per_seed():
    a = random_fill(ONES, 0.5, np.random.default_rng(3))
    b = random_fill(ONES, 0.5, np.random.default_rng(3))
    c = random_fill(np.ones(1000, dtype=np.uint8), 0.5, np.random.default_rng(3))
    d = random_fill(np.ones(1000, dtype=np.uint8), 0.5, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(c, d)


class ScriptedRng:
    """Hands out given draws; records the ranges asked for."""

    def __init__(self, draws):
        self.draws, self.ranges = list(draws), []

    def integers(self, low, high, size):
        assert len(self.draws) >= size, "more draws than scripted"
        self.ranges.append((low, high))
        taken, self.draws = self.draws[:size], self.draws[size:]
        return np.array(taken)


def test_random_draws_in_closed_range_walks_forward_and_retries_past_the_end():
    mask = np.array([1, 0, 0, 1, 1, 0], dtype=np.uint8)  # 3 zeros; t = 0.75: ceil(4.5) = 5
    rng = ScriptedRng([1, 5, 6, 0])
    # Draw 1 walks over the zeros at 1, 2 and prunes 3; draw 5 walks off the end: retry;
    # draw 6 = N is already off the end: retry; draw 0 prunes 0.
    np.testing.assert_array_equal(random_fill(mask, 0.75, rng), [0, 0, 0, 0, 1, 0])
    assert rng.ranges == [(0, 7)] * 3 and not rng.draws


def test_registry_holds_n2d2s_fillers_as_mask_methods():
    assert list(PRUNING_FILLERS) == ["None", "Random", "IterNonStruct"]
    rng = np.random.default_rng(0)
    scores = np.abs(W).astype(np.float64)  # the Magnitude criterion's
    iter_method = PRUNING_FILLERS["IterNonStruct"](0.1)
    np.testing.assert_array_equal(iter_method.compute_mask(scores, ONES, 0.3),
                                  iter_nonstruct(W, 0.3, 0.1))
    assert PRUNING_FILLERS["None"]().compute_mask(scores, ONES, 0.9) is ONES
    half = np.array([0, 1] * (W.size // 2), dtype=np.uint8)
    grown = PRUNING_FILLERS["Random"](rng).compute_mask(scores, half, 0.7)
    assert zeros(grown) == 7 and not grown[half == 0].any()  # cumulative on the default mask
    with pytest.raises(ValueError, match="unknown QWeight.PruningFiller=IterNonstruct; did you "
                                         "mean IterNonStruct"):
        PRUNING_FILLERS.lookup("IterNonstruct")
