"""Global pruning thresholds with caps, z-scores and the default exclusions, checked by hand."""

import numpy as np
import pytest

from n2prune.prune.scope import default_exclusions, global_sparsities, zscore

# Pooled in order: 0.05 (B), 0.1 (A), 0.2 (B), 0.3 (A), 0.4 (B), 0.5 (A), 0.6 (B)...
A = np.array([0.1, 0.5, 0.9, 0.3])
B = np.array([[0.2, 0.4, 0.6], [0.8, 1.0, 0.05]])

# Every score of SMALL is below every score of LARGE.
SMALL = np.linspace(0.01, 0.10, 10)
LARGE = np.linspace(1.0, 1.9, 10)


@pytest.mark.parametrize("target, expected", [
    (0.0, [0.0, 0.0]),
    (0.3, [1 / 4, 2 / 6]),   # 0.05 B, 0.1 A, 0.2 B
    (0.5, [2 / 4, 3 / 6]),   # ... 0.3 A, 0.4 B
    (0.7, [3 / 4, 4 / 6]),   # ... 0.5 A, 0.6 B
    (1.0, [1.0, 1.0]),
])
def test_one_threshold_across_cells(target, expected):
    assert global_sparsities([A, B], target) == pytest.approx(expected)


def test_capped_cell_leaves_the_rest_to_the_others():
    assert global_sparsities([SMALL, LARGE], 0.5) == [1.0, 0.0]
    # SMALL may lose only 7 of 10, so LARGE gives the 3 others: its smallest.
    assert global_sparsities([SMALL, LARGE], 0.5, max_caps=[0.7, 1.0]) == [0.7, 0.3]
    # A floor works the same way round.
    assert global_sparsities([SMALL, LARGE], 0.5, min_caps=[0.0, 0.2]) == [0.8, 0.2]


def test_unreachable_caps_raise_with_the_reachable_range():
    with pytest.raises(ValueError, match="0.9 is out of reach.* allow 0 to 0.5 "):
        global_sparsities([A, B], 0.9, max_caps=[0.5, 0.5])
    with pytest.raises(ValueError, match="allow 0.6 to 1 "):
        global_sparsities([SMALL, LARGE], 0.3, min_caps=[0.6, 0.6])
    with pytest.raises(ValueError, match="fc1: no count of its 2 weights"):
        global_sparsities([np.ones(2)], 0.5, min_caps=[0.3], max_caps=[0.4], names=["fc1"])


def test_bad_fractions_and_lengths_raise():
    with pytest.raises(ValueError, match="target 1.5"):
        global_sparsities([A], 1.5)
    with pytest.raises(ValueError, match="fc2 MaxSparsity -0.1"):
        global_sparsities([A, B], 0.5, max_caps=[1.0, -0.1], names=["fc1", "fc2"])
    with pytest.raises(ValueError, match="2 cells but 1 min caps"):
        global_sparsities([A, B], 0.5, min_caps=[0.0])


def test_ties_follow_cell_then_flat_order():
    assert global_sparsities([np.ones(2), np.ones(2)], 0.5) == [1.0, 0.0]
    assert global_sparsities([np.ones(4)], 0.5) == [0.5]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("binding", [False, True])
def test_counts_are_integers_and_add_up_to_the_target(seed, binding):
    rng = np.random.default_rng(seed)
    cells = [rng.random(shape) for shape in [(6, 1, 5, 5), (16, 6, 5, 5), (120, 400), (84, 120), (10, 84)]]
    sizes = np.array([c.size for c in cells])
    # fc1's 48,000 weights alone keep every target below 0.766 reachable.
    caps = np.array([0.3, 0.5, 1.0, 0.4, 0.6]) if binding else rng.uniform(0.7, 1.0, len(cells))
    for target in (0.1, 0.37, 0.5, 0.65):
        got = np.array(global_sparsities(cells, target, max_caps=caps))
        counts = got * sizes
        np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
        counts = np.round(counts).astype(int)
        assert np.all(counts <= np.floor(caps * sizes + 1e-9))
        assert abs(counts.sum() - target * sizes.sum()) <= 0.5
        # One threshold: whatever is pruned anywhere scores no more than what
        # a cell below its cap keeps.
        ordered = [np.sort(c, axis=None) for c in cells]
        pruned = max(o[:n].max(initial=0) for o, n in zip(ordered, counts))
        free = counts < np.floor(caps * sizes + 1e-9)
        assert free.any()
        assert pruned <= min(o[n:].min(initial=1) for o, n, f in zip(ordered, counts, free) if f)


def test_empty_and_zero_size_cells():
    assert global_sparsities([], 0.5) == []
    assert global_sparsities([np.zeros((0, 3)), A], 0.5) == [0.0, 0.5]


def test_zscore():
    np.testing.assert_allclose(zscore([1.0, 2.0, 3.0]), np.array([-1, 0, 1]) * np.sqrt(1.5))
    np.testing.assert_array_equal(zscore([0.1, 0.1, 0.1]), [0.0, 0.0, 0.0])
    assert zscore([]).shape == (0,)


LENET = ["conv1", "pool1", "conv2", "pool2", "conv3", "fc1", "fc2", "softmax"]
LENET_TYPES = ["Conv", "Pool", "Conv", "Pool", "Conv", "Fc", "Fc", "Softmax"]


def test_default_exclusions_first_conv_and_last_fc():
    assert default_exclusions(LENET, LENET_TYPES) == {"conv1", "fc2"}
    assert default_exclusions(LENET, dict(zip(LENET, LENET_TYPES))) == {"conv1", "fc2"}
    assert default_exclusions(["fc1", "fc2", "fc3", "softmax"], ["Fc", "Fc", "Fc", "Softmax"]) == {"fc3"}
    assert default_exclusions(["pool1"], ["Pool"]) == set()
    with pytest.raises(ValueError, match="2 cell names but 1 types"):
        default_exclusions(["a", "b"], ["Conv"])
