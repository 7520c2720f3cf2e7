"""The prune quantizer with n2prune's patterns, criteria and ramp schedules.

Each behaviour against its formula: fire times and targets, monotone masks,
TI's soft masks, fix/restore, Taylor saliency, BatchNorm criteria and the
slimming penalty, global scope with caps, checkpoint state.
"""

import numpy as np
import pytest

from n2prune.cells import BatchNorm, Conv, Fc
from n2prune.errors import UserError
from n2prune.prune import patterns, schedules
from n2prune.prune.pruned_cells import add_penalties, initialize_masks, step_quantizers
from n2prune.quantizer import PruneCell


def fc(seed, outputs=12, inputs=(4, 2, 2)):
    return Fc("fc", [inputs], outputs, rng=np.random.default_rng(seed))


def ramp(**kwargs):
    options = {"prune_mode": "Gradual", "pattern": "Unstructured", "schedule": "Cubic",
               "start": 0.0, "threshold": 0.8, "stepsize": 10, "schedule_length": 50}
    return PruneCell(**{**options, **kwargs})


def attach(cell, quantizer):
    """``cell.quantizer = quantizer`` with its masks computed; returns the quantizer."""
    cell.quantizer = quantizer
    quantizer.initialize(cell.weight_arrays(), np.random.default_rng(0))
    return quantizer


def test_ramp_fires_after_the_delay_at_each_period_with_the_formula():
    cell = fc(0)
    q = attach(cell, ramp(schedule_delay=20))
    seen, targets = 0, []
    for _ in range(16):
        q.update(5)
        seen += 5
        targets.append((seen, q.get_current_threshold()))
    # Fires at 20 + 10 k stimuli (k = 1..5), i.e. after 30, 40, ..., 70 stimuli.
    expected = {20 + 10 * k: schedules.cubic(k, 5, 0.0, 0.8) for k in range(1, 6)}
    for seen, target in targets:
        fired = [t for s, t in expected.items() if s <= seen]
        assert target == pytest.approx(fired[-1] if fired else 0.0, abs=1e-7)
    size = q.masks[0].size
    assert q.masks[0].size - q.masks[0].sum() == size - patterns.kept_count(size, 0.8)


def test_ramp_masks_are_monotone():
    cell = fc(1)
    q = attach(cell, ramp(schedule="Linear"))
    previous = q.masks[0].copy()
    rng = np.random.default_rng(2)
    for _ in range(5):
        cell.weights[0].value += rng.standard_normal(cell.weights[0].value.shape,
                                                     dtype=np.float32)
        q.update(10)
        assert not (q.masks[0] & ~previous.astype(bool)).any()  # nothing revived
        previous = q.masks[0].copy()


def test_blend_scales_pruned_weights_by_alpha_until_the_knee():
    cell = fc(3)
    q = attach(cell, ramp(schedule="Blend", threshold=0.5, schedule_length=30))
    assert q.soft is None and q.sparsity() == 0.0  # warm-up: nothing pruned
    w = cell.weights[0].value
    for k in (1, 2):
        q.update(10)
        alpha = np.float32(schedules.blend_alpha(k, 3))
        expected = w * np.where(q.masks[0] == 1, 1, alpha)
        np.testing.assert_allclose(cell.effective_weights(0), expected, rtol=1e-6)
        assert q.needs_dense and cell.sparse_weights(0) is None
    q.update(10)  # the knee: hard masks
    assert q.soft is None and q.sparsity() == pytest.approx(0.5)
    np.testing.assert_array_equal(cell.effective_weights(0), w * q.masks[0])


def test_sigmoid_soft_masks_fall_to_zero_at_the_knee():
    cell = fc(4)
    q = attach(cell, ramp(schedule="Sigmoid", threshold=0.5, schedule_length=20))
    q.update(10)
    soft, mask = q.soft[0], q.masks[0]
    assert (soft[mask == 1] == 1).all() and (soft[mask == 0] <= 1).all()
    assert (soft[mask == 0] < 1).any()
    q.update(10)
    assert q.soft is None


def test_fix_sparsity_locks_the_zeros_and_restore_starts_from_them():
    cell = fc(5)
    w = cell.weights[0].value
    w[:, :4] = 0
    q = attach(cell, ramp(fix_sparsity=True))
    np.testing.assert_array_equal(q.masks[0], (w != 0).astype(np.uint8))
    assert not any(q.update(10) for _ in range(10))
    r = attach(cell, ramp(restore_sparsity=True, schedule="Linear"))
    assert r.schedule.start == pytest.approx(4 / 16)
    assert r.sparsity() == pytest.approx(4 / 16)


def test_taylor_sums_w_times_g_and_keeps_the_largest():
    cell = fc(6)
    q = attach(cell, ramp(criterion="Taylor", schedule="OneShot", threshold=0.5))
    grad = np.random.default_rng(7).standard_normal(cell.weights[0].value.shape)
    grad = grad.astype(np.float32)
    q.mask_gradient(0, grad.copy())
    q.mask_gradient(0, grad.copy())
    saliency = 2 * np.abs(cell.weights[0].value * grad)
    q.update(10)
    expected = patterns.make_mask("Unstructured", saliency, 0.5)
    np.testing.assert_array_equal(q.masks[0], expected)
    assert cell.sparse_weights(0) is None  # Taylor needs every gradient: dense


def bn_net(criterion="BNFolded", penalty=0.0):
    """conv -> BatchNorm, the conv pruned by channel with a BN criterion."""
    from n2prune.graph.network import Network
    conv = Conv("conv", [(2, 6, 6)], 4, kernel=3, rng=np.random.default_rng(8))
    bn = BatchNorm("bn", [(4, 4, 4)], 4)
    bn.scale.value[...] = [0.1, -2.0, 0.5, 3.0]
    bn.variance[...] = [1.0, 4.0, 0.25, 1.0]
    network = Network([conv, bn], {"conv": ["sp"], "bn": ["conv"]}, (2, 6, 6), [])
    quantizer = PruneCell(prune_mode="Static", pattern="Channel", criterion=criterion,
                          threshold=0.5, gamma_penalty=penalty)
    quantizer.batchnorm = bn  # the INI builder does this from the graph
    conv.quantizer = quantizer
    initialize_masks(network, np.random.default_rng(0), log_period=0)
    return network, conv, bn


def test_bn_gamma_prunes_the_channels_with_the_smallest_scale():
    _, conv, _ = bn_net("BNGamma")
    kept = conv.quantizer.masks[0].reshape(4, -1).all(axis=1)
    np.testing.assert_array_equal(kept, [False, True, False, True])


def test_slimming_penalty_adds_lambda_sign_gamma():
    network, _, bn = bn_net("BNGamma", penalty=1e-2)
    bn.scale.grad[...] = 0
    add_penalties(network)
    np.testing.assert_allclose(bn.scale.grad, 1e-2 * np.sign(bn.scale.value))


def test_bn_criterion_without_a_batchnorm_names_the_cell():
    from n2prune.graph.network import Network
    conv = Conv("conv", [(2, 6, 6)], 4, kernel=3, rng=np.random.default_rng(8))
    conv.quantizer = PruneCell(prune_mode="Static", pattern="Channel", criterion="Magnitude",
                               threshold=0.5, gamma_penalty=1e-3)
    network = Network([conv], {"conv": ["sp"]}, (2, 6, 6), [])
    with pytest.raises(UserError, match=r"\[conv\] QWeight.GammaPenalty needs a BatchNorm"):
        initialize_masks(network, np.random.default_rng(0), log_period=0)


def global_net(caps=(1.0, 1.0)):
    from n2prune.graph.network import Network
    a, b = fc(9, 20), Fc("b", [(20, 1, 1)], 6, rng=np.random.default_rng(10))
    network = Network([a, b], {"fc": ["sp"], "b": ["fc"]}, (4, 2, 2), [])
    for cell, cap in zip((a, b), caps):
        cell.quantizer = ramp(scope="Global", schedule="OneShot", max_sparsity=cap)
    initialize_masks(network, np.random.default_rng(0), log_period=10)
    return network, a, b


def test_global_scope_prunes_the_smallest_across_cells():
    network, a, b = global_net()
    step_quantizers(network, 10)
    pooled = np.concatenate([np.abs(a.weights[0].value).ravel(), np.abs(b.weights[0].value).ravel()])
    nb_pruned = pooled.size - patterns.kept_count(pooled.size, 0.8)
    limit = np.sort(pooled)[nb_pruned - 1]  # the largest pruned magnitude
    for cell in (a, b):
        kept = cell.quantizer.masks[0] == 1
        assert (np.abs(cell.weights[0].value)[kept] > limit).all()
    total = sum(c.quantizer.masks[0].size for c in (a, b))
    pruned = sum(c.quantizer.masks[0].size - c.quantizer.masks[0].sum() for c in (a, b))
    assert pruned == total - patterns.kept_count(total, 0.8)


def test_global_caps_hold_and_the_other_cell_absorbs():
    network, a, b = global_net(caps=(1.0, 0.5))
    step_quantizers(network, 10)
    assert b.quantizer.sparsity() <= 0.5
    total = a.quantizer.masks[0].size + b.quantizer.masks[0].size
    pruned = sum(c.quantizer.masks[0].size - c.quantizer.masks[0].sum() for c in (a, b))
    assert pruned == total - patterns.kept_count(total, 0.8)


def test_state_round_trip_keeps_fires_and_soft_masks():
    cell = fc(11)
    q = attach(cell, ramp(schedule="Blend", threshold=0.5, schedule_delay=10))
    for _ in range(3):
        q.update(10)
    state = {k: np.asarray(v) for k, v in q.state().items()}
    other = fc(11)
    r = attach(other, ramp(schedule="Blend", threshold=0.5, schedule_delay=10))
    r.load_state(state)
    assert (r.fire_index, r.clock.delay_left) == (q.fire_index, q.clock.delay_left)
    np.testing.assert_array_equal(r.soft[0], q.soft[0])
