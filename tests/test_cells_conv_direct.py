"""Conv's direct kernels against its im2col path, pruned, mapped and dense."""

import numpy as np
import pytest

from n2prune.cells import Conv, direct_weights
from n2prune.prune.prune_cell import PruneCell

# (C, H, W, N, O, kernel, stride, padding, dilation)
GEOMETRIES = [
    (1, 12, 12, 9, 6, (5, 5), (1, 1), (0, 0), (1, 1)),    # LeNet conv1-like
    (6, 9, 8, 8, 16, (3, 3), (2, 1), (1, 2), (1, 1)),     # strides, padding
    (3, 11, 10, 10, 4, (3, 2), (1, 2), (2, 1), (2, 1)),   # dilation
]


def run(cell, x, dy):
    y = cell.forward([x], train=True)
    dx = cell.backward(dy)[0]
    return y, dx, cell.weights[0].grad.copy(), cell.bias.grad.copy()


def pair_of_cells(geometry, mapping=None, sparsity=0.0):
    c, h, w, _batch, o, kernel, stride, padding, dilation = geometry
    cells = []
    for _ in range(2):
        cell = Conv("c", [(c, h, w)], o, kernel, stride, padding, dilation,
                    mappings=None if mapping is None else [mapping],
                    rng=np.random.default_rng(3))
        if sparsity:
            cell.quantizer = PruneCell(prune_mode="Static", prune_filler="IterNonStruct",
                                       threshold=sparsity, delta=1e-4, hard_zero=True)
            cell.quantizer.initialize(cell.weight_arrays(), np.random.default_rng(0))
        cells.append(cell)
    return cells


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("variant", ["dense", "mapped", "pruned"])
def test_direct_matches_im2col(geometry, variant, monkeypatch):
    rng = np.random.default_rng(0)
    c, h, w, n, o = geometry[:5]
    mapping = (rng.random((c, o)) < 0.6).astype(np.int8) if variant == "mapped" else None
    direct, im2col = pair_of_cells(geometry, mapping, 0.8 if variant == "pruned" else 0.0)
    x = rng.standard_normal((c, h, w, n)).astype(np.float32)
    y = direct.forward([x], train=False)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    got = run(direct, x, dy)
    assert direct._direct_weights(0, x) is not None
    monkeypatch.setattr(direct_weights, "DIRECT_MAX_DENSE_OUTPUTS", 0)
    monkeypatch.setattr(direct_weights, "DIRECT_MIN_SPARSITY", 2.0)
    want = run(im2col, x, dy)
    assert im2col._direct_weights(0, x) is None
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)
    if variant == "pruned":
        masked = direct.quantizer.mask(0) == 0
        assert masked.mean() > 0.7
        assert not direct.weights[0].grad[masked].any()


def test_full_input_kernel_is_a_gemm_on_a_view():
    cell = Conv("c", [(4, 5, 5)], 8, (5, 5), rng=np.random.default_rng(0))
    x = np.random.default_rng(0).standard_normal((4, 5, 5, 8)).astype(np.float32)
    assert cell._direct_weights(0, x) is None
    want = np.einsum("ocij,cijn->on", cell.weights[0].value, x)[:, None, None, :]
    want += cell.bias.value[:, None, None, None]
    np.testing.assert_allclose(cell.forward([x], train=False), want, rtol=1e-5, atol=1e-5)


def test_small_batches_take_im2col():
    cell = Conv("c", [(1, 8, 8)], 4, (3, 3), rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    assert cell._direct_weights(0, np.zeros((1, 8, 8, 8), np.float32)) is not None
    x = rng.standard_normal((1, 8, 8, 1)).astype(np.float32)
    assert cell._direct_weights(0, x) is None
    wide = np.repeat(x, 8, axis=3)  # the same sample 8 times: the direct kernels
    np.testing.assert_allclose(cell.forward([wide], False)[..., :1], cell.forward([x], False),
                               rtol=1e-5, atol=1e-6)
