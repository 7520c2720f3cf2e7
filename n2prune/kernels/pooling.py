"""Per-channel average pooling on batch-innermost activations (C, H, W, N).

Windows are ``pool = (PH, PW)`` with ``stride`` and symmetric ``padding``
(int pairs or ints). The output size is N2D2's ``floor((in + 2p - k + s) / s)``
so a window can overhang the input only through the padding, which is never
read (it counts neither as a value nor in an average). With the batch
innermost each tap is a run of N floats, so the sums vectorise over the
batch. Max pooling lives in ``direct_pool``.
"""

import numba

from n2prune.kernels.im2col import (
    as_float_array,
    check_out,
    conv_geometry,
    use_parallel,
)
from n2prune.kernels.twins import serial_and_parallel


def _pool_geometry(input_shape, pool, stride, padding):
    """``(ph, pw, sy, sx, py, px, oh, ow)`` as one int tuple for the kernels."""
    pool, stride, padding, _, (oh, ow) = conv_geometry(
        input_shape, pool, stride, padding, (1, 1))
    return (*pool, *stride, *padding, oh, ow)


def _output_shape(input_shape, geometry):
    return (input_shape[0], geometry[6], geometry[7], input_shape[3])


@numba.njit(cache=True, inline="always")
def _window(o, stride, pad, pool, size):
    """In-bounds input span ``[i0, i1)`` of window ``o`` along one axis."""
    start = o * stride - pad
    return max(start, 0), min(start + pool, size)


@numba.njit(fastmath=True, cache=True)
def _avg_forward_channel(x, geometry, y, c):
    ph, pw, sy, sx, py, px, oh, ow = geometry
    height, width, n = x.shape[1], x.shape[2], x.shape[3]
    src, dst = x[c], y[c]
    for oy in range(oh):
        y0, y1 = _window(oy, sy, py, ph, height)
        for ox in range(ow):
            x0, x1 = _window(ox, sx, px, pw, width)
            out = dst[oy, ox]
            out[:] = 0
            count = max(y1 - y0, 0) * max(x1 - x0, 0)
            if count == 0:
                continue
            for iy in range(y0, y1):
                for ix in range(x0, x1):
                    run = src[iy, ix]
                    for i in range(n):
                        out[i] += run[i]
            scale = x.dtype.type(1.0 / count)
            for i in range(n):
                out[i] *= scale


@numba.njit(fastmath=True, cache=True)
def _avg_backward_channel(dy, geometry, dx, c):
    ph, pw, sy, sx, py, px, oh, ow = geometry
    height, width, n = dx.shape[1], dx.shape[2], dx.shape[3]
    src, dst = dy[c], dx[c]
    dst[:] = 0
    for oy in range(oh):
        y0, y1 = _window(oy, sy, py, ph, height)
        for ox in range(ow):
            x0, x1 = _window(ox, sx, px, pw, width)
            count = max(y1 - y0, 0) * max(x1 - x0, 0)
            if count == 0:
                continue
            scale = dy.dtype.type(1.0 / count)
            grad = src[oy, ox]
            for iy in range(y0, y1):
                for ix in range(x0, x1):
                    run = dst[iy, ix]
                    for i in range(n):
                        run[i] += grad[i] * scale


@serial_and_parallel
def _avg_forward(x, geometry, y):
    for c in numba.prange(x.shape[0]):
        _avg_forward_channel(x, geometry, y, c)


@serial_and_parallel
def _avg_backward(dy, geometry, dx):
    for c in numba.prange(dx.shape[0]):
        _avg_backward_channel(dy, geometry, dx, c)


def avg_pool_forward(x, pool, stride, padding, out=None):
    """Mean over each window of ``x`` (C, H, W, N); returns ``y`` (C, OH, OW, N).

    The sum is divided by the number of **in-bounds** elements of the window
    (padding is not counted, N2D2's ``countIncludePadding=false``); without
    padding that is ``PH*PW``. A window wholly in the padding gives 0.
    """
    x = as_float_array(x, "x")
    geometry = _pool_geometry(x.shape, pool, stride, padding)
    y = check_out(out, _output_shape(x.shape, geometry), x.dtype)
    run = _avg_forward.pick(use_parallel(x.size))
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
    run = _avg_backward.pick(use_parallel(dx.size))
    run(dy, geometry, dx)
    return dx
