"""Max pooling and fused conv+ReLU+pool on (C, H, W, N) against float64 loops."""


import numpy as np
import pytest
from kernel_modes import DIRECT_FMAS, MODES, force_mode

from n2prune.kernels.direct_conv import compress, sparse_conv_forward
from n2prune.kernels.direct_pool import (
    conv_relu_max_pool,
    max_pool_backward,
    max_pool_forward,
)

# (C, H, W, N, pool, stride, padding)
CASES = [
    (3, 8, 8, 7, (2, 2), (2, 2), (0, 0)),      # LeNet-style
    (2, 9, 7, 1, (3, 3), (2, 2), (1, 1)),      # batch 1, odd, overlapping, padded
    (1, 7, 6, 7, (3, 2), (1, 1), (0, 0)),      # stride 1
    (2, 7, 9, 3, (5, 4), (2, 3), (2, 2)),      # padding 2
    (1, 4, 4, 7, (2, 2), (2, 2), (2, 2)),      # windows wholly in padding
]


@pytest.fixture(params=MODES)
def mode(request, monkeypatch):
    # direct_pool decides through direct_conv.use_parallel_fmas.
    return force_mode(monkeypatch, request.param, DIRECT_FMAS)


def reference(x, pool, stride, padding, dy=None):
    """float64 ``(y, argmax, dx)`` by explicit windows (first max wins)."""
    c_count, h, w, n = x.shape
    (ph, pw), (sy, sx), (py, px) = pool, stride, padding
    oh, ow = (h + 2 * py - ph + sy) // sy, (w + 2 * px - pw + sx) // sx
    y, arg = np.zeros((c_count, oh, ow, n)), np.full((c_count, oh, ow, n), -1)
    dx = np.zeros(x.shape)
    for c, oy, ox, k in np.ndindex(c_count, oh, ow, n):
        best = None
        for ky, kx in np.ndindex(ph, pw):
            iy, ix = oy * sy - py + ky, ox * sx - px + kx
            if 0 <= iy < h and 0 <= ix < w and (best is None or x[c, iy, ix, k] > best[0]):
                best = (x[c, iy, ix, k], ky * pw + kx, iy, ix)
        if best is not None:
            y[c, oy, ox, k], arg[c, oy, ox, k] = best[:2]
            if dy is not None:
                dx[c, best[2], best[3], k] += dy[c, oy, ox, k]
    return y, arg, dx


@pytest.mark.parametrize("case", CASES)
def test_max_pool_matches_reference(case, mode):
    c, h, w, n, pool, stride, padding = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x = rng.standard_normal((c, h, w, n)).astype(np.float32)
    y_shape = reference(x[:, :, :, :1], pool, stride, padding)[0].shape[:3] + (n,)
    dy = rng.standard_normal(y_shape).astype(np.float32)
    y_ref, arg_ref, dx_ref = reference(x, pool, stride, padding, dy)
    out = (np.full(y_shape, np.nan, np.float32), np.full(y_shape, 7, np.int32))
    y, arg = max_pool_forward(x, pool, stride, padding, out=out)
    np.testing.assert_array_equal(y, y_ref.astype(np.float32))
    np.testing.assert_array_equal(arg, arg_ref)
    dx = max_pool_backward(dy, arg, (h, w), pool, stride, padding,
                           out=np.full(x.shape, np.nan, np.float32))
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-6, atol=1e-6)


def test_ties_go_to_the_first_tap():
    x = np.zeros((1, 4, 4, 3), np.float32)
    y, arg = max_pool_forward(x, 2, 2)
    assert np.all(arg == 0) and np.all(y == 0)


@pytest.mark.parametrize("sparsity", [0.0, 0.9, 1.0])
@pytest.mark.parametrize("conv, pool", [
    ({}, {"pool": 2, "stride": 2}),
    ({"stride": 2, "padding": 1}, {"pool": (3, 2), "stride": (2, 1), "padding": (1, 0)}),
])
def test_fused_conv_relu_pool_is_the_composition(conv, pool, sparsity, mode):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 13, 12, 7)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    kept = compress(w, rng.random(w.shape) >= sparsity)
    bias = rng.standard_normal(5).astype(np.float32)
    conv_y = sparse_conv_forward(x, kept, **conv, bias=bias, relu=True)
    y_ref, arg_ref = max_pool_forward(conv_y, pool["pool"], pool["stride"],
                                      pool.get("padding", 0))
    y, arg = conv_relu_max_pool(x, kept, conv, pool, bias=bias)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)


def test_bad_operands_are_refused():
    y, arg = max_pool_forward(np.ones((1, 4, 4, 2), np.float32), 2, 2)
    with pytest.raises(ValueError, match="must be"):
        max_pool_backward(y[:, :1], arg, (4, 4), 2, 2)
    with pytest.raises(ValueError, match="does not fit"):
        max_pool_forward(np.ones((1, 1, 4, 2), np.float32), 2, 2)
