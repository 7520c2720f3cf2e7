"""PruneCell: modes, the Gradual schedule, state, and the Python API."""

import numpy as np
import pytest

from n2prune.quantizer import PruneCell

W = np.array([0.05, -0.12, 0.0, 0.31, -0.18, 0.26, 0.09, -0.4, 0.15, 0.22], dtype=np.float32)


def test_defaults_are_n2d2s():
    q = PruneCell()
    assert (q.prune_mode, q.prune_filler, q.threshold, q.delta, q.start, q.stepsize, q.gamma) == \
        ("Identity", "Random", 0.2, 0.001, 0.1, 0, 0.05)


def test_gradual_fires_every_stepsize_stimuli_with_remainder_carried():
    q = PruneCell("Gradual", "IterNonStruct", threshold=0.2, delta=0.01, start=0.1, stepsize=250, gamma=0.05)
    q.initialize([W.copy()], np.random.default_rng(0))
    assert q.get_current_threshold() == pytest.approx(0.1)
    fired, thresholds, versions = [], [], [q.version]
    for batch in range(1, 11):
        if q.update(100):  # counter 100 200 300>50 150 250>0 100 200 300>50 150 250>0
            fired.append(batch)
            thresholds.append(round(q.get_current_threshold(), 6))
        versions.append(q.version)
    assert fired == [3, 5]  # the 3rd fire (batch 8) finds the threshold at its cap
    assert thresholds == [0.15, 0.2]
    assert versions == [1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 3]  # masks change only on fires


def test_gradual_threshold_adds_in_float32_like_n2d2():
    # In float64 0.1 + 8 x 0.1 stops just below 0.9 and fires a ninth time.
    q = PruneCell("Gradual", "Random", threshold=0.9, start=0.1, gamma=0.1, stepsize=1)
    q.initialize([W.copy()], np.random.default_rng(0))
    assert sum(q.update(1) for _ in range(12)) == 8
    assert np.float32(q.get_current_threshold()) == np.float32(0.9)


def test_gradual_uses_the_epoch_when_stepsize_is_zero():
    q = PruneCell("Gradual", "Random", threshold=0.5, start=0.1, gamma=0.1)
    q.initialize([W.copy()], np.random.default_rng(0), log_period=1000)
    assert [q.update(500) for _ in range(4)] == [False, True, False, True]
    assert q.next_update_in == 1000


@pytest.mark.parametrize("mode", ["Identity", "Static"])
def test_identity_and_static_masks_are_frozen(mode):
    q = PruneCell(mode, "IterNonStruct", threshold=0.3, delta=0.1)
    w = W.copy()
    q.initialize([w], np.random.default_rng(0))
    before = q.get_pruned_masks(0).copy()
    w[:] = 1.0
    assert not any(q.update(1000) for _ in range(5))
    np.testing.assert_array_equal(q.get_pruned_masks(0), before)
    expected_zeros = 1 if mode == "Identity" else 3  # Identity: threshold 0 masks exact zeros
    assert int((before == 0).sum()) == expected_zeros
    assert q.next_update_in is None


def test_filler_none_keeps_all_ones():
    q = PruneCell("Static", "None", threshold=0.9)
    q.initialize([W.copy()], np.random.default_rng(0))
    assert q.get_pruned_masks(0).all() and q.get_current_threshold() == 0.0


def test_python_api_masks_weights_and_gradients():
    q = PruneCell("Static", "IterNonStruct", threshold=0.3, delta=0.1)
    w = W.copy()
    q.initialize([w], np.random.default_rng(0))
    np.testing.assert_array_equal(q.get_quantized_weights(0), w * q.get_pruned_masks(0))
    np.testing.assert_array_equal(q.effective_weights(0, w), w * q.get_pruned_masks(0))
    grad = np.ones(10, dtype=np.float32)
    np.testing.assert_array_equal(q.mask_gradient(0, grad), q.get_pruned_masks(0))
    assert np.count_nonzero(w) == 9  # full-precision weights kept, as N2D2


def test_hard_zero_zeroes_masked_weights():
    q = PruneCell("Static", "IterNonStruct", threshold=0.3, delta=0.1, hard_zero=True)
    w = W.copy()
    q.initialize([w], np.random.default_rng(0))
    assert np.count_nonzero(w) == 7


def test_one_mask_per_tensor_and_state_round_trip():
    q = PruneCell("Gradual", "Random", threshold=0.6, start=0.2, gamma=0.2, stepsize=10)
    q.initialize([W.copy(), W[:4].copy()], np.random.default_rng(0))
    q.update(15)
    other = PruneCell("Gradual", "Random", threshold=0.6, start=0.2, gamma=0.2, stepsize=10)
    other.initialize([W.copy(), W[:4].copy()], np.random.default_rng(1))
    other.load_state(q.state())
    for k in range(2):
        np.testing.assert_array_equal(other.get_pruned_masks(k), q.get_pruned_masks(k))
    assert other.get_current_threshold() == q.get_current_threshold() and other.counter == 5


@pytest.mark.parametrize("kwargs, message", [
    ({"prune_mode": "gradual"}, "prune_mode must be one of"),
    ({"prune_filler": "Magic"}, "prune_filler must be one of"),
    ({"threshold": 1.2}, "threshold must be a fraction"),
    ({"delta": -1}, "delta must not be negative"),
    ({"start": -0.1}, "start must be a fraction"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PruneCell(**kwargs)
