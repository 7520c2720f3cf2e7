"""im2col / col2im against a slicing reference, the adjoint identity, and N2D2 sizes."""


import numpy as np
import pytest
from kernel_modes import ELEMENTS, force_mode
from layout import chwn

from n2prune.kernels.im2col import col2im, conv_out_size, im2col

# (C, N, H, W, kernel, stride, padding, dilation)
CASES = [
    (3, 2, 7, 9, (3, 3), (1, 1), (0, 0), (1, 1)),
    (2, 3, 9, 7, (3, 2), (2, 2), (1, 1), (1, 1)),     # odd sizes, stride 2
    (1, 1, 5, 6, (5, 5), (1, 1), (2, 2), (1, 1)),     # padding 2, N = C = 1
    (2, 2, 11, 10, (3, 3), (1, 2), (1, 0), (2, 2)),   # dilation 2
    (4, 3, 5, 5, (1, 1), (1, 1), (0, 0), (1, 1)),     # 1x1
    (2, 2, 6, 7, (1, 1), (2, 3), (2, 1), (1, 1)),     # 1x1 with all-padding columns
    (3, 2, 5, 5, (5, 5), (1, 1), (0, 0), (1, 1)),     # kernel == input
    (1, 1, 8, 8, (3, 3), (2, 2), (1, 1), (1, 1)),     # N = C = 1
    (2, 3, 13, 12, (4, 3), (3, 2), (2, 1), (2, 3)),   # everything at once
]


# Parallel drivers are thin loops over the same per-item functions, and each
# costs seconds to compile: they are run in float32 (the production dtype)
# only, the item functions in both dtypes.
DTYPE_MODES = [(np.float64, "serial"), (np.float32, "serial"), (np.float32, "parallel")]


@pytest.fixture
def mode(request, monkeypatch):
    """Force the serial or the parallel driver (``request.param``)."""
    return force_mode(monkeypatch, request.param, ELEMENTS)


def reference_im2col(x, kernel, stride, padding, dilation):
    """Float64 loops over (c, ky, kx) on an explicitly zero-padded (C, H, W, N)
    input; columns in (oy, ox, n) order."""
    (kh, kw), (sy, sx), (py, px), (dy, dx) = kernel, stride, padding, dilation
    c_count, h, w, n_count = x.shape
    oh = (h + 2 * py - dy * (kh - 1) - 1) // sy + 1
    ow = (w + 2 * px - dx * (kw - 1) - 1) // sx + 1
    xp = np.pad(x.astype(np.float64), ((0, 0), (py, py), (px, px), (0, 0)))
    cols = np.empty((c_count * kh * kw, oh * ow * n_count))
    for c in range(c_count):
        for ky in range(kh):
            for kx in range(kw):
                patch = xp[c, ky * dy:ky * dy + sy * (oh - 1) + 1:sy,
                           kx * dx:kx * dx + sx * (ow - 1) + 1:sx, :]
                cols[(c * kh + ky) * kw + kx] = patch.reshape(-1)
    return cols


def reference_col2im(cols, shape, kernel, stride, padding, dilation):
    """Scatter-add of every column entry back to its (padded) source pixel;
    ``shape`` is (C, H, W, N)."""
    (kh, kw), (sy, sx), (py, px), (dy, dx) = kernel, stride, padding, dilation
    c_count, h, w, n_count = shape
    oh = (h + 2 * py - dy * (kh - 1) - 1) // sy + 1
    ow = (w + 2 * px - dx * (kw - 1) - 1) // sx + 1
    xp = np.zeros((c_count, h + 2 * py, w + 2 * px, n_count))
    for c in range(c_count):
        for ky in range(kh):
            for kx in range(kw):
                row = cols[(c * kh + ky) * kw + kx].reshape(oh, ow, n_count)
                xp[c, ky * dy:ky * dy + sy * (oh - 1) + 1:sy,
                   kx * dx:kx * dx + sx * (ow - 1) + 1:sx, :] += row
    return xp[:, py:py + h, px:px + w, :]


def test_column_order_is_oy_ox_n():
    # x[c, y, x, n] = 100*y + 10*x + n: a 2x2 kernel on a 3x3 input, 2 samples.
    y_, x_, n_ = np.meshgrid(np.arange(3), np.arange(3), np.arange(2), indexing="ij")
    x = (100 * y_ + 10 * x_ + n_)[None].astype(np.float64)
    cols = im2col(x, 2, 1, 0, 1)
    assert cols.shape == (4, 2 * 2 * 2)
    # Row 0 is tap (0, 0): column (oy*2 + ox)*2 + n reads x[0, oy, ox, n].
    np.testing.assert_array_equal(cols[0], [0, 1, 10, 11, 100, 101, 110, 111])
    # Row 3 is tap (1, 1).
    np.testing.assert_array_equal(cols[3], [110, 111, 120, 121, 210, 211, 220, 221])


def test_kernel_covering_the_input_is_a_view():
    # One output pixel, no padding: cols is x as a (C*H*W, N) matrix, no copy.
    x = chwn(np.random.default_rng(7).standard_normal((3, 2, 5, 5)))
    cols = im2col(x, (5, 5), 1, 0, 1)
    assert cols.shape == (75, 2) and np.shares_memory(cols, x)
    np.testing.assert_array_equal(cols, reference_im2col(x, (5, 5), (1, 1), (0, 0), (1, 1)))


def test_conv_out_size_hand_computed():
    assert conv_out_size(32, 5, 1, 0, 1) == 28
    assert conv_out_size(28, 2, 2, 0, 1) == 14
    assert conv_out_size(7, 3, 2, 1, 1) == 4       # (7 + 2 - 3 + 2) // 2
    assert conv_out_size(10, 3, 1, 0, 2) == 6      # dilated extent 5
    assert conv_out_size(5, 2, 2, 0, 1) == 2       # last row dropped (floor)
    assert conv_out_size(1, 3, 1, 1, 1) == 1


@pytest.mark.parametrize("args", [(3, 5, 1, 0, 1), (5, 3, 1, 0, 3),
                                  (5, 3, 0, 0, 1), (5, 0, 1, 0, 1)])
def test_conv_out_size_rejects_kernels_that_do_not_fit(args):
    with pytest.raises(ValueError):
        conv_out_size(*args)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("dtype", "mode"), DTYPE_MODES, indirect=["mode"])
def test_im2col_matches_reference(case, dtype, mode):
    c, n, h, w, *geometry = case
    x = chwn(np.random.default_rng(1).standard_normal((c, n, h, w)).astype(dtype))
    cols = im2col(x, *geometry)
    assert cols.dtype == dtype
    np.testing.assert_array_equal(cols, reference_im2col(x, *geometry))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("dtype", "mode"), DTYPE_MODES, indirect=["mode"])
def test_col2im_matches_reference(case, dtype, mode):
    c, n, h, w, *geometry = case
    rows = im2col(np.zeros((c, h, w, n)), *geometry).shape
    cols = np.random.default_rng(2).standard_normal(rows).astype(dtype)
    dx = col2im(cols, (c, h, w, n), *geometry)
    assert dx.shape == (c, h, w, n)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(dx, reference_col2im(cols, (c, h, w, n), *geometry),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("case", CASES)
def test_col2im_is_the_adjoint_of_im2col(case):
    c, n, h, w, *geometry = case
    rng = np.random.default_rng(3)
    x = chwn(rng.standard_normal((c, n, h, w)))
    cols = rng.standard_normal(im2col(x, *geometry).shape)
    lhs = np.vdot(im2col(x, *geometry), cols)
    rhs = np.vdot(x, col2im(cols, x.shape, *geometry))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_random_geometries_match_reference():
    rng = np.random.default_rng(4)
    for _ in range(30):
        kernel = tuple(rng.integers(1, 5, 2))
        dilation = tuple(rng.integers(1, 3, 2))
        stride = tuple(rng.integers(1, 4, 2))
        padding = tuple(rng.integers(0, 3, 2))
        extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        h, w = (int(e + rng.integers(0, 6)) for e in extent)
        x = chwn(rng.standard_normal((int(rng.integers(1, 4)), int(rng.integers(1, 4)), h, w)))
        geometry = (kernel, stride, padding, dilation)
        np.testing.assert_array_equal(im2col(x, *geometry), reference_im2col(x, *geometry))
        cols = rng.standard_normal(im2col(x, *geometry).shape)
        np.testing.assert_allclose(col2im(cols, x.shape, *geometry),
                                   reference_col2im(cols, x.shape, *geometry), atol=1e-12)


@pytest.mark.parametrize("mode", ["serial", "parallel"], indirect=True)
def test_outputs_passed_in_are_fully_overwritten(mode):
    c, n, h, w, *geometry = CASES[-1]
    x = chwn(np.random.default_rng(5).standard_normal((c, n, h, w)).astype(np.float32))
    expected = reference_im2col(x, *geometry)
    cols = np.full(expected.shape, np.nan, dtype=np.float32)
    assert im2col(x, *geometry, out=cols) is cols
    np.testing.assert_array_equal(cols, expected)
    dx = np.full(x.shape, np.nan, dtype=np.float32)
    assert col2im(cols, x.shape, *geometry, out=dx) is dx
    np.testing.assert_allclose(dx, reference_col2im(expected, x.shape, *geometry), rtol=1e-5)


def test_int_geometry_means_both_axes():
    x = chwn(np.random.default_rng(6).standard_normal((2, 2, 6, 6)))
    np.testing.assert_array_equal(im2col(x, 3, 2, 1, 1),
                                  im2col(x, (3, 3), (2, 2), (1, 1), (1, 1)))


def test_bad_arguments_raise_value_error():
    x = np.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError):
        im2col(x, (5, 5), 1, 0, 1)
    with pytest.raises(ValueError):
        im2col(x.astype(np.int32), 3, 1, 0, 1)
    with pytest.raises(ValueError):
        col2im(np.zeros((9, 5)), x.shape, 3, 1, 0, 1)
    with pytest.raises(ValueError):
        im2col(x, 3, 1, 0, 1, out=np.empty((9, 4), dtype=np.float32))
