"""PruneCell: modes, the Gradual schedule, masks in the passes, state, and N2D2's Python API."""

from typing import ClassVar

import numpy as np
import pytest

from n2prune.errors import SettingError, UserError
from n2prune.prune.mask_methods import PRUNING_FILLERS, random_fill
from n2prune.quantizer import PruneCell

W = np.array([0.05, -0.12, 0.0, 0.31, -0.18, 0.26, 0.09, -0.4, 0.15, 0.22], dtype=np.float32)
# 20 distinct magnitudes 0.01 .. 0.20: with Delta 0.001, a threshold t prunes the 20*t smallest.
RAMP = (np.arange(1, 21) * 0.01 * np.where(np.arange(20) % 2, -1, 1)).astype(np.float32)[::-1].copy()


def zeros(mask):
    return int(np.count_nonzero(mask == 0))


def started(*args, weights=None, log_period=0, seed=0, **kwargs):
    q = PruneCell(*args, **kwargs)
    q.initialize([W.copy()] if weights is None else weights, np.random.default_rng(seed),
                 log_period)
    return q


def test_defaults_are_n2d2s():
    q = PruneCell()
    assert (q.prune_mode, q.prune_filler, q.threshold, q.delta, q.start, q.stepsize, q.gamma,
            q.hard_zero) == ("Identity", "Random", 0.2, 0.001, 0.1, 0, 0.05, False)


def test_gradual_fires_every_stepsize_stimuli_with_the_remainder_carried():
    q = started("Gradual", "IterNonStruct", weights=[RAMP.copy()], threshold=0.35, delta=0.001,
                start=0.1, stepsize=250, gamma=0.1)
    assert q.get_current_threshold() == pytest.approx(0.1) and zeros(q.masks[0]) == 2
    fired, thresholds, pruned, versions = [], [], [], [q.version]
    for batch in range(1, 11):
        # counter: 100 200 300-250=50 150 250-250=0 100 200 300-250=50 150 250-250=0
        if q.update(100):
            fired.append(batch)
            thresholds.append(q.get_current_threshold())
            pruned.append(zeros(q.masks[0]))
        versions.append(q.version)
    assert fired == [3, 5, 8]  # the fire at batch 10 finds the threshold at its cap
    assert thresholds == pytest.approx([0.2, 0.3, 0.35])
    assert thresholds[-1] == np.float32(0.35)  # capped exactly, in float32 like N2D2
    assert pruned == [4, 6, 7]
    v = versions[0]
    assert versions == [v, v, v, v + 1, v + 1, v + 2, v + 2, v + 2, v + 3, v + 3, v + 3]
    assert q.clock.counter == 0 and q.next_update_in is None


def test_gradual_recomputes_from_the_current_weights():
    w = RAMP.copy()
    q = started("Gradual", "IterNonStruct", weights=[w], threshold=0.2, start=0.1, gamma=0.1,
                stepsize=10)
    smallest = int(np.argmin(np.abs(w)))
    assert q.masks[0][smallest] == 0
    w[smallest] = 1.0  # the solver grew it in place: the next fire brings it back
    assert q.update(10)
    assert q.masks[0][smallest] == 1 and zeros(q.masks[0]) == 4


def test_next_update_in_counts_stimuli_to_the_next_fire():
    q = started("Gradual", "Random", threshold=0.5, stepsize=250)
    assert q.next_update_in == 250
    q.update(100)
    assert q.next_update_in == 150


def test_stepsize_zero_uses_the_log_period():
    q = started("Gradual", "Random", threshold=0.5, start=0.1, gamma=0.1, log_period=1000)
    assert [q.update(500) for _ in range(4)] == [False, True, False, True]
    assert q.next_update_in == 1000


def test_no_period_at_all_fires_every_batch_as_n2d2s_python_api():
    q = started("Gradual", "Random", threshold=0.3, start=0.1, gamma=0.1)
    assert [q.update(16) for _ in range(3)] == [True, True, False]
    assert zeros(q.masks[0]) == 3


def test_gradual_random_is_cumulative_across_fires():
    q = started("Gradual", "Random", threshold=0.6, start=0.2, gamma=0.2, stepsize=1)
    before = q.get_pruned_masks(0).copy()
    q.update(1)
    assert zeros(before) == 2 and zeros(q.masks[0]) == 4 and np.all(q.masks[0][before == 0] == 0)


@pytest.mark.parametrize("mode, expected_zeros", [("Identity", 1), ("Static", 3)])
def test_identity_and_static_masks_are_frozen(mode, expected_zeros):
    w = W.copy()
    q = started(mode, "IterNonStruct", weights=[w], threshold=0.3, delta=0.1)
    before, version = q.get_pruned_masks(0).copy(), q.version
    w[:] = 1.0
    assert not any(q.update(1000) for _ in range(5))
    np.testing.assert_array_equal(q.get_pruned_masks(0), before)
    assert q.version == version and q.next_update_in is None
    # Identity runs IterNonStruct at threshold 0: exactly the zero weight is masked.
    assert zeros(before) == expected_zeros and before[2] == 0


def test_identity_random_prunes_nothing_and_static_random_prunes_ceil():
    assert zeros(started("Identity", "Random", threshold=0.5).masks[0]) == 0
    assert zeros(started("Static", "Random", threshold=0.25).masks[0]) == 3


def test_filler_none_keeps_all_ones_even_when_gradual_fires():
    q = started("Gradual", "None", threshold=0.9, stepsize=1)
    assert q.get_current_threshold() == 0.0 and q.get_pruned_masks(0).all()
    version = q.version
    assert q.update(1)  # N2D2 raises the threshold and prints "Update masks"
    assert q.get_current_threshold() == pytest.approx(0.05)
    assert q.get_pruned_masks(0).all() and q.version == version


def test_one_mask_per_tensor_at_a_shared_threshold():
    q = started("Static", "IterNonStruct", weights=[W.copy(), RAMP.reshape(4, 5).copy()],
                threshold=0.3, delta=0.1)
    assert q.masks[1].shape == (4, 5) and q.masks[1].dtype == np.uint8
    assert zeros(q.masks[0]) == 3 and zeros(q.masks[1]) == 10  # |W| <= 0.1: half of RAMP
    assert q.sparsity(0) == pytest.approx(0.3) and q.sparsity() == pytest.approx(13 / 30)


def test_masks_in_the_passes_and_n2d2s_python_api():
    w = W.copy()
    q = started("Static", "IterNonStruct", weights=[w], threshold=0.3, delta=0.1)
    mask = q.get_pruned_masks(0)
    np.testing.assert_array_equal(mask, [0, 1, 0, 1, 1, 1, 0, 1, 1, 1])
    np.testing.assert_array_equal(q.get_quantized_weights(0), w * mask)
    first = q.effective_weights(0, w)
    np.testing.assert_array_equal(first, w * mask)
    w += 1.0  # the solver's in-place update: the same buffer now holds the new product
    assert q.effective_weights(0, w) is first
    np.testing.assert_array_equal(first, w * mask)
    grad = np.full(10, 2.0, dtype=np.float32)
    assert q.mask_gradient(0, grad) is grad
    np.testing.assert_array_equal(grad, 2.0 * mask)
    assert np.count_nonzero(w) == 10  # full-precision weights are kept, as N2D2


def test_hard_zero_zeroes_masked_weights():
    w = W.copy()
    q = started("Static", "IterNonStruct", weights=[w], threshold=0.3, delta=0.1, hard_zero=True)
    np.testing.assert_array_equal(w, W * q.masks[0])
    w[0] = -0.7  # e.g. momentum moved a masked weight
    q.after_update([w])
    assert w[0] == 0 and not np.signbit(w[0])


def test_state_round_trip():
    weights = [W.copy(), W[:4].copy()]
    q = started("Gradual", "Random", weights=weights, threshold=0.6, start=0.2, gamma=0.2,
                stepsize=10)
    q.update(15)
    state = {key: np.asarray(value) for key, value in q.state().items()}  # as a checkpoint
    other = started("Gradual", "Random", weights=[w.copy() for w in weights], threshold=0.6,
                    start=0.2, gamma=0.2, stepsize=10, seed=1)
    other.load_state(state)
    for k in range(2):
        np.testing.assert_array_equal(other.get_pruned_masks(k), q.get_pruned_masks(k))
    assert other.get_current_threshold() == q.get_current_threshold() == pytest.approx(0.4)
    assert other.clock.counter == 5
    assert other.update(5) and other.get_current_threshold() == pytest.approx(0.6)


def test_set_masks_takes_the_measured_zero_fraction():
    q = started("Gradual", "IterNonStruct", threshold=0.5, start=0.1, stepsize=1)
    version = q.version
    q.set_masks([[1, 0, 0, 1, 1, 1, 1, 1, 0, 1]])
    assert q.get_current_threshold() == np.float32(0.3) and q.version == version + 1
    assert q.update(1) and q.get_current_threshold() == pytest.approx(0.35)
    with pytest.raises(ValueError, match="0 or 1"):
        q.set_masks([[2] * 10])
    with pytest.raises(ValueError, match="2 masks for 1 weight tensors"):
        q.set_masks([[1] * 10, [1] * 10])
    with pytest.raises(ValueError, match="must hold 10 values"):
        q.load_state({"mask0": np.ones(3), "threshold": 0.5, "counter": 0, "version": 0})


def test_unreachable_iter_nonstruct_threshold_is_a_user_error():
    with pytest.raises(UserError, match="Delta=0"):
        started("Static", "IterNonStruct", threshold=0.5, delta=0.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"prune_mode": "gradual"}, ("unknown QWeight.PruningMode=gradual; did you mean Gradual\\? "
                                 "known: Identity, Static, Gradual")),
    ({"prune_filler": "Magic"}, ("unknown QWeight.PruningFiller=Magic; known: None, Random, "
                                 "IterNonStruct")),
    ({"kernel": "Skip"}, "unknown QWeight.Kernel=Skip; known: Auto, Dense, Sparse"),
    ({"threshold": 1.2}, "threshold must be a fraction"),
    ({"threshold": float("nan")}, "threshold must be a fraction"),
    ({"start": -0.1}, "start must be a fraction"),
    ({"delta": -1}, "delta must be >= 0"),
    ({"gamma": -0.05}, "gamma must be >= 0"),
    ({"stepsize": -1}, "stepsize must be"),
    ({"stepsize": 2.5}, "stepsize must be"),
    ({"fix_sparsity": True, "scope": "Global", "pattern": "NM"}, "cannot share a Global"),
    ({"bank_size": 0}, "bank_size must be a whole number >= 1"),
    ({"n": 5, "pattern": "NM"}, "N=5 > M=4"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(SettingError, match=message) as error:
        PruneCell(**kwargs)
    assert error.value.setting == next(iter(kwargs))  # the keyword, for the INI key's line


class RecordingHalf:
    """A mask method: keeps the highest-scored half of the default mask's kept entries."""

    composes = False
    calls: ClassVar[list] = []  # (scores, default_mask, target) of every call

    def __init__(self, delta):  # given only what it names (delta, rng)
        self.delta = delta

    def compute_mask(self, scores, default_mask, target):
        RecordingHalf.calls.append((scores.copy(), default_mask.copy(), target))
        kept = np.flatnonzero(default_mask)
        best = kept[np.argsort(-scores[kept], kind="stable")[:(kept.size + 1) // 2]]
        mask = np.zeros_like(default_mask)
        mask[best] = 1
        return mask


def test_a_registered_mask_method_is_the_one_seam():
    PRUNING_FILLERS.add("TestHalf", RecordingHalf)
    RecordingHalf.calls.clear()
    try:
        q = started("Gradual", "TestHalf", threshold=0.6, start=0.2, gamma=0.2, delta=0.5,
                    stepsize=1)
        assert q.method.delta == 0.5
        scores, default, target = RecordingHalf.calls[0]
        np.testing.assert_array_equal(scores, np.abs(W).astype(np.float64))  # Magnitude
        assert default.all() and target == 0.2
        np.testing.assert_array_equal(q.mask(0), [0, 0, 0, 1, 1, 1, 0, 1, 0, 1])  # top 5 |W|
        first = q.mask(0).copy()
        assert q.update(1)
        scores, default, target = RecordingHalf.calls[-1]
        np.testing.assert_array_equal(default, first)  # the current mask is the default mask
        assert target == q.target == float(np.float32(0.2) + np.float32(0.2))
        assert q.sparsity() == pytest.approx(0.7)  # half of the 5 kept, rounded up, stay
    finally:
        del PRUNING_FILLERS["TestHalf"]


def test_finalize_bakes_the_masks_into_the_weights():
    w = W.copy()
    q = started("Static", "IterNonStruct", weights=[w], threshold=0.3, delta=0.1)
    mask, before = q.mask(0).copy(), q.effective_weights(0, w).copy()
    q.finalize()
    np.testing.assert_array_equal(w, W * mask)
    assert np.count_nonzero(w) == 7 and np.array_equal(q.mask(0), mask)
    np.testing.assert_array_equal(q.effective_weights(0, w), before)


def test_a_global_cell_fires_but_takes_its_targets_from_its_group():
    ramp = {"pattern": "Unstructured", "schedule": "OneShot", "scope": "Global", "start": 0.0,
            "threshold": 0.8, "stepsize": 10}
    q = started("Gradual", weights=[RAMP.reshape(4, 5).copy(), W.reshape(2, 5).copy()], **ramp)
    assert q.sparsity() == 0.0 and q.get_current_threshold() == 0.0
    assert q.update(10) and q.target == 0.8
    assert q.sparsity() == 0.0  # nothing recomputed: the group decides
    scores = [q.scores(k) for k in range(2)]  # what the group pools
    np.testing.assert_array_equal(scores[1], np.abs(W).reshape(2, 5))
    q.refresh_masks([0.5, 0.9])  # the targets the group hands back
    assert (q.sparsity(0), q.sparsity(1)) == (0.5, 0.9)
    assert q.mask(0).ravel()[np.argsort(np.abs(RAMP))[:10]].sum() == 0  # the 10 smallest went


def test_masks_are_computed_once_with_the_generator_passed_down():
    from n2prune.cells import Fc
    cell = Fc("fc", [(4, 1, 1)], 5, rng=np.random.default_rng(1))
    cell.quantizer = q = PruneCell(prune_mode="Static", prune_filler="Random", threshold=0.5)
    with pytest.raises(RuntimeError, match="not computed yet"):
        cell.effective_weights(0)  # attaching computes nothing
    q.initialize(cell.weight_arrays(), np.random.default_rng(7))
    expected = random_fill(np.ones((5, 4), np.uint8), 0.5, np.random.default_rng(7))
    np.testing.assert_array_equal(q.mask(0), expected)
    np.testing.assert_array_equal(cell.effective_weights(0), cell.weights[0].value * expected)


def test_kernel_choice_and_solver_positions():
    class Operator:
        def flat_positions(self):
            return np.array([1, 3])
    q = started("Static", "IterNonStruct", threshold=0.3, delta=0.1, kernel="Sparse")
    assert q.kernel_choice == "Sparse" and q.solver_positions(Operator()) is None  # N2D2
    q.soft = [np.ones(10, np.float32)]  # TI's soft masks need every product
    assert q.kernel_choice == "Dense"
    hard = started("Static", "IterNonStruct", threshold=0.3, delta=0.1, hard_zero=True)
    assert hard.solver_positions(Operator()).tolist() == [1, 3]
    assert hard.solver_positions(None) is None
