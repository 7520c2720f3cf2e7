"""Conv + ReLU + max Pool fused: same outputs and gradients as the two cells apart."""

import numpy as np
import pytest
from layout import chwn

from n2prune.cells import Conv, Pool
from n2prune.cells.activations import Rectifier
from n2prune.cells.fusion import fuse_conv_max_pool
from n2prune.prune.prune_cell import PruneCell


def pair(sparsity, pool_stride=2, relu=True):
    conv = Conv("conv", [(3, 12, 12)], 8, (3, 3), padding=(1, 1),
                activation=Rectifier() if relu else None, rng=np.random.default_rng(2))
    if sparsity:
        conv.quantizer = PruneCell(prune_mode="Static", prune_filler="IterNonStruct",
                                   threshold=sparsity, delta=1e-4, hard_zero=True)
        conv.quantizer.initialize(conv.weight_arrays(), np.random.default_rng(0))
    pool = Pool("pool", [conv.output_shape], 8, (2, 2), (pool_stride, pool_stride),
                mappings=[np.eye(8, dtype=np.int8)], pooling="Max")
    return conv, pool


def step(conv, pool, x, dy):
    y = pool.forward([conv.forward([x], True)], True)
    dx = conv.backward(pool.backward(dy)[0])[0]
    return y, dx, conv.weights[0].grad.copy(), conv.bias.grad.copy()


@pytest.mark.parametrize("sparsity", [0.0, 0.8])
@pytest.mark.parametrize("pool_stride", [2, 1])
def test_fused_pair_matches_the_cells_apart(sparsity, pool_stride):
    rng = np.random.default_rng(0)
    x = chwn(rng.standard_normal((3, 9, 12, 12)).astype(np.float32))
    apart = pair(sparsity, pool_stride)
    fused = pair(sparsity, pool_stride)
    assert fuse_conv_max_pool(list(fused), {"conv": ["sp"], "pool": ["conv"]}, set()) == [
        ("conv", "pool")]
    y = step(*apart, x, np.zeros((8, *apart[1].output_shape[1:], 9), np.float32))[0]
    dy = rng.standard_normal(y.shape).astype(np.float32)
    want, got = step(*apart, x, dy), step(*fused, x, dy)
    assert fused[0].fusion.pooled and apart[0].fusion is None
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


def test_only_qualifying_pairs_fuse():
    conv, pool = pair(0.0, relu=False)
    assert fuse_conv_max_pool([conv, pool], {"conv": ["sp"], "pool": ["conv"]}, set()) == []
    conv, pool = pair(0.0)
    inputs = {"conv": ["sp"], "pool": ["conv"], "other": ["conv"]}  # a second reader
    assert fuse_conv_max_pool([conv, pool], inputs, set()) == []
    assert fuse_conv_max_pool([conv, pool], {"conv": ["sp"], "pool": ["conv"]}, {"conv"}) == []
    conv.forward([np.zeros((3, 12, 12, 8), np.float32)], False)
    assert conv.fusion is None


def test_float64_cells_do_not_fuse_at_run_time():
    conv, pool = pair(0.0)
    fuse_conv_max_pool([conv, pool], {"conv": ["sp"], "pool": ["conv"]}, set())
    y = conv.forward([np.ones((3, 12, 12, 2))], False)
    assert not conv.fusion.pooled and y.shape == (8, 12, 12, 2)
    assert pool.forward([y], False).shape == (8, 6, 6, 2)
