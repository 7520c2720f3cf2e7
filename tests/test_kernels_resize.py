"""Bilinear resize kernel: bit-identical to the numpy expression it replaced."""

import numpy as np
import pytest

from n2prune.data.transforms import linear_table
from n2prune.kernels.resize import resize_bilinear


def numpy_resize(images, rows, cols):
    """The float32 numpy expression (rows, then columns; uint8 rounded half up)."""
    (y0, y1, wy), (x0, x1, wx) = rows, cols
    data = images.astype(np.float32)
    wy, wx = wy[:, None, None], wx[:, None]
    rows_ = data[:, y0] * (1 - wy) + data[:, y1] * wy
    out = rows_[:, :, x0] * (1 - wx) + rows_[:, :, x1] * wx
    if images.dtype == np.uint8:
        return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("src, dst", [((28, 28), (32, 32)), ((28, 20), (13, 41)), ((5, 7), (5, 7)),
                                      ((1, 9), (4, 2))])
def test_matches_numpy_bit_for_bit(dtype, src, dst):
    rng = np.random.default_rng(0)
    shape = (9, *src, 3)
    images = (rng.integers(0, 256, shape) if dtype == np.uint8 else rng.random(shape) * 300 - 20)
    images = images.astype(dtype)
    rows, cols = linear_table(src[0], dst[0]), linear_table(src[1], dst[1])
    out = resize_bilinear(images, rows, cols)
    assert out.dtype == (np.uint8 if dtype == np.uint8 else np.float32)
    np.testing.assert_array_equal(out, numpy_resize(images, rows, cols))


@pytest.mark.parametrize("dtype, divisor", [(np.uint8, 255), (np.float32, 1), (np.float64, 1)])
def test_batch_gather_matches_numpy(dtype, divisor):
    from n2prune.kernels.gather import gather_batch
    rng = np.random.default_rng(1)
    cached = (rng.random((20, 5, 7, 3)) * 255).astype(dtype)
    indices = rng.permutation(20)[:9]
    # (B, H, W, C) rows to (C, H, W, B), the batch innermost.
    expected = (cached[indices].astype(np.float32) / np.float32(divisor)).transpose(3, 1, 2, 0)
    batch = gather_batch(cached, indices, divisor)
    assert batch.shape == (3, 5, 7, 9) and batch.dtype == np.float32
    assert batch.flags.c_contiguous
    np.testing.assert_array_equal(batch, expected)
    with pytest.raises(IndexError):
        gather_batch(cached, [20], divisor)
