"""Max/average pooling on (C, H, W, N) against float64 loop references, ties,
padding, adjoints.

Average pooling is ``n2prune.kernels.pooling``; max pooling is
``n2prune.kernels.direct_pool``, whose argmax is the tap ``ky*PW + kx`` within
the window (-1 for a window wholly in the padding).
"""


import numpy as np
import pytest
from kernel_modes import DIRECT_FMAS, ELEMENTS, force_mode
from layout import chwn

from n2prune.kernels.direct_pool import max_pool_backward, max_pool_forward
from n2prune.kernels.pooling import avg_pool_backward, avg_pool_forward

# (C, N, H, W, pool, stride, padding); inputs are drawn as (C, N, H, W) and
# passed on as (C, H, W, N).
CASES = [
    (3, 2, 8, 8, (2, 2), (2, 2), (0, 0)),      # LeNet-style
    (2, 3, 9, 7, (3, 3), (2, 2), (1, 1)),      # odd sizes, overlapping, padding 1
    (1, 1, 7, 6, (3, 2), (1, 1), (0, 0)),      # stride 1 (N2D2's default), N = C = 1
    (2, 2, 5, 5, (5, 5), (1, 1), (0, 0)),      # pool == input
    (2, 2, 6, 5, (1, 1), (2, 1), (0, 0)),      # 1x1
    (2, 2, 7, 9, (5, 4), (2, 3), (2, 2)),      # padding 2
    (1, 2, 4, 4, (2, 2), (2, 2), (2, 2)),      # windows wholly in padding
    (2, 2, 7, 9, (2, 2), (1, 1), (1, 1)),      # 2x2 windows, overlapping, padded
    (1, 3, 6, 7, (2, 2), (2, 3), (0, 1)),      # 2x2 windows, padded columns only
    (2, 2, 7, 8, (3, 3), (2, 2), (1, 1)),      # 3x3 windows clipped to 2x2 at the border
]


# Parallel drivers are thin loops over the same per-item functions, and each
# costs seconds to compile: they are run in float32 (the production dtype)
# only, the item functions in both dtypes.
DTYPE_MODES = [(np.float64, "serial"), (np.float32, "serial"), (np.float32, "parallel")]


@pytest.fixture
def mode(request, monkeypatch):
    """Force the serial or the parallel driver (``request.param``) of both kernels:
    average pooling decides through im2col.use_parallel, max pooling through
    direct_conv.use_parallel_fmas."""
    return force_mode(monkeypatch, request.param, ELEMENTS, DIRECT_FMAS)


def _x(case, rng, dtype=np.float64):
    """Random (C, H, W, N) input of a case (drawn as (C, N, H, W))."""
    c, n, h, w = case[:4]
    return chwn(rng.standard_normal((c, n, h, w)).astype(dtype))


def windows(shape, pool, stride, padding):
    """Yield (c, n, oy, ox, [(tap, iy, ix) in-bounds, row-major]) for every
    window of a (C, H, W, N) ``shape``; ``tap = ky*PW + kx``."""
    c_count, h, w, n_count = shape
    (ph, pw), (sy, sx), (py, px) = pool, stride, padding
    oh = (h + 2 * py - ph + sy) // sy
    ow = (w + 2 * px - pw + sx) // sx
    for c in range(c_count):
        for n in range(n_count):
            for oy in range(oh):
                for ox in range(ow):
                    cells = [(ky * pw + kx, oy * sy - py + ky, ox * sx - px + kx)
                             for ky in range(ph) for kx in range(pw)]
                    cells = [(t, iy, ix) for t, iy, ix in cells if 0 <= iy < h and 0 <= ix < w]
                    yield c, n, oy, ox, cells


def output_shape(shape, pool, stride, padding):
    return (shape[0], *((shape[1 + a] + 2 * padding[a] - pool[a] + stride[a]) // stride[a]
                        for a in (0, 1)), shape[3])


def tap_source(arg, pool, stride, padding):
    """Input ``(iy, ix)`` of each argmax tap (meaningless where ``arg`` is -1)."""
    _, oh, ow, _ = arg.shape
    (pw, (sy, sx), (py, px)) = pool[1], stride, padding
    oy = np.arange(oh)[None, :, None, None]
    ox = np.arange(ow)[None, None, :, None]
    return oy * sy - py + arg // pw, ox * sx - px + arg % pw


def reference_max(x, pool, stride, padding):
    y = np.zeros(output_shape(x.shape, pool, stride, padding))
    arg = np.full(y.shape, -1, dtype=np.int32)
    for c, n, oy, ox, cells in windows(x.shape, pool, stride, padding):
        if cells:
            values = [x[c, iy, ix, n] for _, iy, ix in cells]
            tap, iy, ix = cells[int(np.argmax(values))]   # np.argmax: first max wins
            y[c, oy, ox, n] = x[c, iy, ix, n]
            arg[c, oy, ox, n] = tap
    return y, arg


def reference_avg(x, pool, stride, padding):
    y = np.zeros(output_shape(x.shape, pool, stride, padding))
    for c, n, oy, ox, cells in windows(x.shape, pool, stride, padding):
        if cells:
            y[c, oy, ox, n] = np.mean([x[c, iy, ix, n] for _, iy, ix in cells])
    return y


def reference_avg_backward(dy, shape, pool, stride, padding):
    dx = np.zeros(shape)
    for c, n, oy, ox, cells in windows(shape, pool, stride, padding):
        for _, iy, ix in cells:
            dx[c, iy, ix, n] += dy[c, oy, ox, n] / len(cells)
    return dx


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("dtype", "mode"), DTYPE_MODES, indirect=["mode"])
def test_max_pool_forward_matches_reference(case, dtype, mode):
    geometry = case[4:]
    x = _x(case, np.random.default_rng(1), dtype)
    y, arg = max_pool_forward(x, *geometry)
    ref_y, ref_arg = reference_max(x, *geometry)
    assert y.dtype == dtype and arg.dtype == np.int32
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(arg, ref_arg)


def test_max_pool_first_max_wins_on_ties_and_padding_never_wins():
    # Integer-valued input with many ties; all-negative so padding (0) would win.
    rng = np.random.default_rng(2)
    x = chwn(-rng.integers(1, 3, size=(2, 3, 7, 7)).astype(np.float64))
    for geometry in [((2, 2), (2, 2), (0, 0)), ((2, 2), (1, 1), (1, 1)),
                     ((3, 3), (1, 1), (1, 1)), ((3, 2), (2, 1), (2, 1))]:
        y, arg = max_pool_forward(x, *geometry)
        ref_y, ref_arg = reference_max(x, *geometry)
        np.testing.assert_array_equal(arg, ref_arg)
        np.testing.assert_array_equal(y, ref_y)
    assert (y < 0).all()


def test_max_pool_hand_computed():
    x = np.array([[1, 5, 5, 0],
                  [2, 3, 4, 7],
                  [9, 9, 0, 1],
                  [8, 9, 2, 2]], dtype=np.float32).reshape(1, 4, 4, 1)
    y, arg = max_pool_forward(x, 2, 2, 0)
    np.testing.assert_array_equal(y[0, :, :, 0], [[5, 7], [9, 2]])
    # Taps ky*2 + kx; the tie of 9s goes to the first in row-major order.
    np.testing.assert_array_equal(arg[0, :, :, 0], [[1, 3], [0, 2]])
    dx = max_pool_backward(np.ones_like(y), arg, (4, 4), 2, 2, 0)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 1, 0, 0], [0, 0, 0, 1],
                                                   [1, 0, 0, 0], [0, 0, 1, 0]])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("dtype", "mode"), DTYPE_MODES, indirect=["mode"])
def test_max_pool_backward_scatter_adds(case, dtype, mode):
    c, n, h, w, *geometry = case
    rng = np.random.default_rng(3)
    x = chwn(rng.integers(0, 3, size=(c, n, h, w)).astype(dtype))   # ties + overlaps
    _, arg = max_pool_forward(x, *geometry)
    dy = rng.standard_normal(arg.shape).astype(dtype)
    src_y, src_x = tap_source(arg, *geometry)
    ref = np.zeros(x.shape)
    for (ci, oy, ox, ni), a in np.ndenumerate(arg):
        if a >= 0:
            ref[ci, src_y[ci, oy, ox, ni], src_x[ci, oy, ox, ni], ni] += dy[ci, oy, ox, ni]
    dx = max_pool_backward(dy, arg, (h, w), *geometry)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("dtype", "mode"), DTYPE_MODES, indirect=["mode"])
def test_avg_pool_matches_reference(case, dtype, mode):
    geometry = case[4:]
    rng = np.random.default_rng(4)
    x = _x(case, rng, dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    y = avg_pool_forward(x, *geometry)
    np.testing.assert_allclose(y, reference_avg(x, *geometry), rtol=tol, atol=tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(avg_pool_backward(dy, x.shape, *geometry),
                               reference_avg_backward(dy, x.shape, *geometry),
                               rtol=tol, atol=tol)


def test_avg_pool_divides_by_in_bounds_count():
    x = np.ones((1, 3, 3, 1))
    y = avg_pool_forward(x, 2, 2, 1)
    np.testing.assert_array_equal(y[0, :, :, 0], np.ones((2, 2)))   # not 1/4 at the corner
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    assert avg_pool_forward(x, 2, 2, 1)[0, 0, 0, 0] == 0.0
    assert avg_pool_forward(x, 2, 2, 1)[0, 1, 1, 0] == (4 + 5 + 7 + 8) / 4


@pytest.mark.parametrize("case", CASES)
def test_pool_backwards_are_adjoints(case):
    c, n, h, w, *geometry = case
    rng = np.random.default_rng(5)
    x, v = (chwn(a) for a in rng.standard_normal((2, c, n, h, w)))
    y = avg_pool_forward(x, *geometry)
    dy = rng.standard_normal(y.shape)
    assert np.isclose(np.vdot(y, dy), np.vdot(x, avg_pool_backward(dy, x.shape, *geometry)),
                      rtol=1e-10, atol=1e-12)
    # Max pooling is linear for a fixed argmax: y = gather(x), dx = scatter(dy).
    _, arg = max_pool_forward(x, *geometry)
    src_y, src_x = tap_source(arg, *geometry)
    inside = arg >= 0
    ci, _, _, ni = np.indices(arg.shape)
    gathered = np.where(inside, v[ci, np.where(inside, src_y, 0), np.where(inside, src_x, 0),
                                  ni], 0)
    assert np.isclose(np.vdot(gathered, dy),
                      np.vdot(v, max_pool_backward(dy, arg, (h, w), *geometry)),
                      rtol=1e-10, atol=1e-12)


def test_random_geometries_match_reference():
    rng = np.random.default_rng(7)
    for _ in range(25):
        pool = tuple(int(p) for p in rng.integers(1, 4, 2))
        stride = tuple(int(s) for s in rng.integers(1, 4, 2))
        padding = tuple(int(rng.integers(0, p + 1)) for p in pool)
        h, w = (int(p + rng.integers(0, 6)) for p in pool)
        x = rng.integers(-2, 3, size=(int(rng.integers(1, 3)), int(rng.integers(1, 3)), h, w))
        x = chwn(x.astype(np.float64))  # small integers: plenty of ties
        y, arg = max_pool_forward(x, pool, stride, padding)
        ref_y, ref_arg = reference_max(x, pool, stride, padding)
        np.testing.assert_array_equal(arg, ref_arg)
        np.testing.assert_array_equal(y, ref_y)
        np.testing.assert_allclose(avg_pool_forward(x, pool, stride, padding),
                                   reference_avg(x, pool, stride, padding), atol=1e-12)
        np.testing.assert_allclose(avg_pool_backward(y, x.shape, pool, stride, padding),
                                   reference_avg_backward(y, x.shape, pool, stride, padding),
                                   atol=1e-12)
        dx = max_pool_backward(y, arg, x.shape[1:3], pool, stride, padding)
        src_y, src_x = tap_source(arg, pool, stride, padding)
        ref_dx = np.zeros(x.shape)
        for (ci, oy, ox, ni), a in np.ndenumerate(arg):
            if a >= 0:
                ref_dx[ci, src_y[ci, oy, ox, ni], src_x[ci, oy, ox, ni], ni] += y[ci, oy, ox, ni]
        np.testing.assert_allclose(dx, ref_dx, atol=1e-12)


@pytest.mark.parametrize("mode", ["serial", "parallel"], indirect=True)
def test_outputs_passed_in_are_fully_overwritten(mode):
    geometry = CASES[1][4:]
    x = _x(CASES[1], np.random.default_rng(6), np.float32)
    hw = x.shape[1:3]
    ref_y, ref_arg = max_pool_forward(x, *geometry)
    y = np.full(ref_y.shape, np.nan, dtype=np.float32)
    arg = np.full(ref_y.shape, -7, dtype=np.int32)
    assert max_pool_forward(x, *geometry, out=(y, arg))[0] is y
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(arg, ref_arg)
    dx = np.full(x.shape, np.nan, dtype=np.float32)
    assert max_pool_backward(y, arg, hw, *geometry, out=dx) is dx
    np.testing.assert_array_equal(dx, max_pool_backward(y, arg, hw, *geometry))
    y[...] = np.nan
    assert avg_pool_forward(x, *geometry, out=y) is y
    np.testing.assert_array_equal(y, avg_pool_forward(x, *geometry))
    dx[...] = np.nan
    assert avg_pool_backward(y, x.shape, *geometry, out=dx) is dx
    np.testing.assert_array_equal(dx, avg_pool_backward(y, x.shape, *geometry))


def test_shape_mismatch_raises_value_error():
    x = np.zeros((1, 4, 4, 2))
    y, arg = max_pool_forward(x, 2, 2, 0)
    with pytest.raises(ValueError):
        max_pool_backward(y, arg[:, :1], (4, 4), 2, 2, 0)   # argmax shape != dy shape
    with pytest.raises(ValueError):
        max_pool_backward(y, arg, (6, 6), 2, 2, 0)          # dy does not pool from 6x6
    with pytest.raises(ValueError):
        avg_pool_backward(y, (1, 6, 6, 2), 2, 2, 0)
    with pytest.raises(ValueError):
        max_pool_forward(x, 5, 1, 0)
    with pytest.raises(ValueError):
        avg_pool_forward(x, 5, 1, 0)
