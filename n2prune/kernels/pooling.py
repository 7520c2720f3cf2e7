"""Per-channel max and average pooling on CNHW activations.

Windows are ``pool = (PH, PW)`` with ``stride`` and symmetric ``padding``
(int pairs or ints). The output size is N2D2's ``floor((in + 2p - k + s) / s)``
so a window can overhang the input only through the padding, which is never
read (it counts neither as a value nor in an average).

Each kernel works one ``(c, n)`` plane at a time, in parallel over planes
when the input is large enough (``use_parallel``). A 2x2 window whose
rows are both inside the input takes a row-wise fast path with the window
unrolled (the common LeNet/VGG case; measured 2-3x faster than the generic
per-window loop, whose tiny runtime-bounded loops dominate otherwise).
"""

import numba
import numpy as np

from n2prune.kernels.im2col import (
    as_float_array,
    check_out,
    conv_geometry,
    use_parallel,
)


def _pool_geometry(input_shape, pool, stride, padding):
    """``(ph, pw, sy, sx, py, px, oh, ow)`` as one int tuple for the kernels."""
    pool, stride, padding, _, (oh, ow) = conv_geometry(
        input_shape, pool, stride, padding, (1, 1))
    return (*pool, *stride, *padding, oh, ow)


@numba.njit(cache=True, inline="always")
def _clip(o, stride, pad, pool, size):
    """Window origin of output o and its in-bounds taps ``[k0, k1)`` on one axis."""
    origin = o * stride - pad
    return origin, max(0, -origin), min(pool, size - origin)


@numba.njit(cache=True, inline="always")
def _interior(stride, pad, pool, size, out_size):
    """Outputs ``[lo, hi)`` whose window lies wholly inside the input on one axis."""
    lo = (pad + stride - 1) // stride
    hi = min(out_size, (size - pool + pad) // stride + 1)
    return lo, max(lo, hi)


@numba.njit(cache=True, inline="always")
def _border(i, lo, hi):
    """The i-th output of a row outside the fast-path range ``[lo, hi)``."""
    return i if i < lo else i + hi - lo


@numba.njit(cache=True, inline="always")
def _window_max(src, width, y0, x0, ky0, ky1, kx0, kx1):
    """Max and flat index over rows ``y0+[ky0,ky1)``, cols ``x0+[kx0,kx1)`` of
    the flattened plane ``src``; strict ``>`` keeps the first max."""
    arg = (y0 + ky0) * width + x0 + kx0
    best = src[arg]
    for ky in range(ky0, ky1):
        row = (y0 + ky) * width + x0
        for kx in range(kx0, kx1):
            v = src[row + kx]
            better = v > best
            best = v if better else best
            arg = row + kx if better else arg
    return best, arg


@numba.njit(cache=True, inline="always")
def _max_row_2x2(top, bottom, best, arg, sx, top_index, width):
    """2x2 windows at columns ``i*sx`` of rows ``top``/``bottom`` (sliced so the
    first window starts at 0; ``top_index`` is the flat index of ``top[0]``)."""
    for i in range(best.shape[0]):
        j = i * sx
        v0, v1, v2, v3 = top[j], top[j + 1], bottom[j], bottom[j + 1]
        m = max(max(v0, v1), max(v2, v3))
        # Selects from the last tap back so the first max in window order wins.
        a = top_index + width + j + (0 if v2 == m else 1)
        a = top_index + j + 1 if v1 == m else a
        best[i] = m
        arg[i] = top_index + j if v0 == m else a


@numba.njit(cache=True, inline="always")
def _max_output(src, geometry, oy, ox, height, width):
    ph, pw, sy, sx, py, px = geometry[:6]
    y0, ky0, ky1 = _clip(oy, sy, py, ph, height)
    x0, kx0, kx1 = _clip(ox, sx, px, pw, width)
    if ky0 >= ky1 or kx0 >= kx1:
        return src.dtype.type(0), -1       # wholly in the padding: 0, as N2D2
    return _window_max(src, width, y0, x0, ky0, ky1, kx0, kx1)


@numba.njit(fastmath=True, cache=True)
def _max_forward_plane(x, geometry, y, argmax):
    """One plane: ``x`` (H, W) -> ``y``, ``argmax`` (OH, OW)."""
    ph, pw, sy, sx, py, px, oh, ow = geometry
    height, width = x.shape
    src = x.reshape(height * width)
    for oy in range(oh):
        best, arg = y[oy], argmax[oy]
        y0, ky0, ky1 = _clip(oy, sy, py, ph, height)
        lo, hi = 0, 0
        if ph == 2 and pw == 2 and ky0 == 0 and ky1 == 2:
            lo, hi = _interior(sx, px, pw, width, ow)
            j0 = lo * sx - px
            _max_row_2x2(x[y0, j0:], x[y0 + 1, j0:], best[lo:hi], arg[lo:hi], sx,
                         y0 * width + j0, width)
        for i in range(ow - (hi - lo)):
            ox = _border(i, lo, hi)
            best[ox], arg[ox] = _max_output(src, geometry, oy, ox, height, width)


@numba.njit(fastmath=True, cache=True)
def _max_backward_plane(dy, argmax, dx):
    """One plane: scatter-add ``dy`` (OH, OW) into ``dx`` (H, W) at argmax."""
    dst = dx.reshape(dx.size)
    grad = dy.reshape(dy.size)
    arg = argmax.reshape(argmax.size)
    dst[:] = 0
    for q in range(grad.shape[0]):
        if arg[q] >= 0:
            dst[arg[q]] += grad[q]


@numba.njit(fastmath=True, cache=True)
def _avg_forward_plane(x, geometry, y):
    """One plane: ``x`` (H, W) -> window means ``y`` (OH, OW)."""
    ph, pw, sy, sx, py, px, oh, ow = geometry
    height, width = x.shape
    quarter = x.dtype.type(0.25)   # typed, so float32 stays float32
    for oy in range(oh):
        out = y[oy]
        y0, ky0, ky1 = _clip(oy, sy, py, ph, height)
        lo, hi = 0, 0
        if ph == 2 and pw == 2 and ky0 == 0 and ky1 == 2:
            lo, hi = _interior(sx, px, pw, width, ow)
            top, bottom = x[y0, lo * sx - px:], x[y0 + 1, lo * sx - px:]
            seg = out[lo:hi]
            for i in range(hi - lo):
                j = i * sx
                seg[i] = (top[j] + top[j + 1] + bottom[j] + bottom[j + 1]) * quarter
        for i in range(ow - (hi - lo)):
            ox = _border(i, lo, hi)
            x0, kx0, kx1 = _clip(ox, sx, px, pw, width)
            total = x.dtype.type(0)
            for ky in range(ky0, ky1):
                for kx in range(kx0, kx1):
                    total += x[y0 + ky, x0 + kx]
            count = max(ky1 - ky0, 0) * max(kx1 - kx0, 0)
            out[ox] = total / count if count > 0 else 0


@numba.njit(fastmath=True, cache=True)
def _avg_backward_plane(dy, geometry, dx):
    """One plane: spread ``dy`` (OH, OW) evenly over the windows in ``dx`` (H, W)."""
    ph, pw, sy, sx, py, px, oh, ow = geometry
    height, width = dx.shape
    dx[:, :] = 0
    quarter = dx.dtype.type(0.25)
    for oy in range(oh):
        grad = dy[oy]
        y0, ky0, ky1 = _clip(oy, sy, py, ph, height)
        lo, hi = 0, 0
        if ph == 2 and pw == 2 and ky0 == 0 and ky1 == 2:
            lo, hi = _interior(sx, px, pw, width, ow)
            top, bottom = dx[y0, lo * sx - px:], dx[y0 + 1, lo * sx - px:]
            seg = grad[lo:hi]
            for i in range(hi - lo):
                j = i * sx
                g = seg[i] * quarter
                top[j] += g
                top[j + 1] += g
                bottom[j] += g
                bottom[j + 1] += g
        for i in range(ow - (hi - lo)):
            ox = _border(i, lo, hi)
            x0, kx0, kx1 = _clip(ox, sx, px, pw, width)
            count = max(ky1 - ky0, 0) * max(kx1 - kx0, 0)
            g = grad[ox] / count if count > 0 else 0
            for ky in range(ky0, ky1):
                for kx in range(kx0, kx1):
                    dx[y0 + ky, x0 + kx] += g


# Drivers: one (c, n) plane per item, parallel or serial (see use_parallel).


@numba.njit(parallel=True, cache=True)
def _max_forward_parallel(x, geometry, y, argmax):
    for item in numba.prange(x.shape[0] * x.shape[1]):
        c, n = item // x.shape[1], item % x.shape[1]
        _max_forward_plane(x[c, n], geometry, y[c, n], argmax[c, n])


@numba.njit(cache=True)
def _max_forward_serial(x, geometry, y, argmax):
    for item in range(x.shape[0] * x.shape[1]):
        c, n = item // x.shape[1], item % x.shape[1]
        _max_forward_plane(x[c, n], geometry, y[c, n], argmax[c, n])


@numba.njit(parallel=True, cache=True)
def _max_backward_parallel(dy, argmax, dx):
    for item in numba.prange(dx.shape[0] * dx.shape[1]):
        c, n = item // dx.shape[1], item % dx.shape[1]
        _max_backward_plane(dy[c, n], argmax[c, n], dx[c, n])


@numba.njit(cache=True)
def _max_backward_serial(dy, argmax, dx):
    for item in range(dx.shape[0] * dx.shape[1]):
        c, n = item // dx.shape[1], item % dx.shape[1]
        _max_backward_plane(dy[c, n], argmax[c, n], dx[c, n])


@numba.njit(parallel=True, cache=True)
def _avg_forward_parallel(x, geometry, y):
    for item in numba.prange(x.shape[0] * x.shape[1]):
        c, n = item // x.shape[1], item % x.shape[1]
        _avg_forward_plane(x[c, n], geometry, y[c, n])


@numba.njit(cache=True)
def _avg_forward_serial(x, geometry, y):
    for item in range(x.shape[0] * x.shape[1]):
        c, n = item // x.shape[1], item % x.shape[1]
        _avg_forward_plane(x[c, n], geometry, y[c, n])


@numba.njit(parallel=True, cache=True)
def _avg_backward_parallel(dy, geometry, dx):
    for item in numba.prange(dx.shape[0] * dx.shape[1]):
        c, n = item // dx.shape[1], item % dx.shape[1]
        _avg_backward_plane(dy[c, n], geometry, dx[c, n])


@numba.njit(cache=True)
def _avg_backward_serial(dy, geometry, dx):
    for item in range(dx.shape[0] * dx.shape[1]):
        c, n = item // dx.shape[1], item % dx.shape[1]
        _avg_backward_plane(dy[c, n], geometry, dx[c, n])


def _output_shape(input_shape, geometry):
    return (*input_shape[:2], geometry[6], geometry[7])


def max_pool_forward(x, pool, stride, padding, out=None):
    """Max over each window of CNHW ``x``; returns ``(y, argmax)``.

    ``y`` is ``(C, N, OH, OW)``; ``argmax`` (int32, same shape) is the flat
    index ``iy*W + ix`` of the max within its input plane ``x[c, n]``. Ties go
    to the first element in row-major window order; padding never wins. A
    window lying wholly in the padding gives ``y = 0`` and ``argmax = -1``
    (N2D2's PoolCell_Frame does the same). ``out`` is an optional
    ``(y, argmax)`` pair to overwrite.
    """
    x = as_float_array(x, "x")
    geometry = _pool_geometry(x.shape, pool, stride, padding)
    shape = _output_shape(x.shape, geometry)
    y_out, arg_out = (None, None) if out is None else out
    y = check_out(y_out, shape, x.dtype)
    argmax = check_out(arg_out, shape, np.int32)
    run = _max_forward_parallel if use_parallel(x.size) else _max_forward_serial
    run(x, geometry, y, argmax)
    return y, argmax


def max_pool_backward(dy, argmax, input_shape, out=None):
    """Route ``dy`` to the argmax inputs; overlapping windows add up.

    ``dy`` and ``argmax`` are ``(C, N, OH, OW)``; returns ``dx`` of
    ``input_shape`` ``(C, N, H, W)`` (``out`` is overwritten if given).
    """
    dy = as_float_array(dy, "dy")
    argmax = np.ascontiguousarray(argmax, dtype=np.int32)
    input_shape = tuple(int(s) for s in input_shape)
    if argmax.shape != dy.shape or dy.shape[:2] != input_shape[:2]:
        raise ValueError(f"dy {dy.shape}, argmax {argmax.shape} and input "
                         f"{input_shape} do not match")
    dx = check_out(out, input_shape, dy.dtype)
    run = _max_backward_parallel if use_parallel(dx.size) else _max_backward_serial
    run(dy, argmax, dx)
    return dx


def avg_pool_forward(x, pool, stride, padding, out=None):
    """Mean over each window of CNHW ``x``, returns ``y`` ``(C, N, OH, OW)``.

    The sum is divided by the number of **in-bounds** elements of the window
    (padding is not counted, N2D2's ``countIncludePadding=false``); without
    padding that is ``PH*PW``. A window wholly in the padding gives 0.
    """
    x = as_float_array(x, "x")
    geometry = _pool_geometry(x.shape, pool, stride, padding)
    y = check_out(out, _output_shape(x.shape, geometry), x.dtype)
    run = _avg_forward_parallel if use_parallel(x.size) else _avg_forward_serial
    run(x, geometry, y)
    return y


def avg_pool_backward(dy, input_shape, pool, stride, padding, out=None):
    """Adjoint of ``avg_pool_forward``: each ``dy`` is spread evenly over the
    in-bounds inputs of its window. Returns ``dx`` of ``input_shape``."""
    dy = as_float_array(dy, "dy")
    input_shape = tuple(int(s) for s in input_shape)
    geometry = _pool_geometry(input_shape, pool, stride, padding)
    if dy.shape != _output_shape(input_shape, geometry):
        raise ValueError(f"dy has shape {dy.shape}, expected "
                         f"{_output_shape(input_shape, geometry)}")
    dx = check_out(out, input_shape, dy.dtype)
    run = _avg_backward_parallel if use_parallel(dx.size) else _avg_backward_serial
    run(dy, geometry, dx)
    return dx
