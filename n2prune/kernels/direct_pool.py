"""Max pooling on batch-innermost activations (C, H, W, N), and conv+ReLU+pool.

With the batch innermost, a window's tap is a run of ``N`` contiguous floats,
so the max, its argmax and the backward routing are compare-and-select
vector loops over the batch, with no per-sample branch.

``argmax`` (int32, the output's shape) is the tap index ``ky*PW + kx`` within
the window, first maximum in row-major window order; -1 (and output 0, as
N2D2's PoolCell_Frame) for a window lying wholly in the padding. The
backward pass is in gather form, one input row per parallel item: each item
reads every window covering its row and keeps the taps that point at it, so
overlapping windows need no atomic adds.

``conv_relu_max_pool`` fuses a direct convolution, ReLU and max pooling:
the conv rows a pooled row needs are computed into a scratch buffer and
pooled while in cache, and the conv output is never stored. Since
``max(relu(a), relu(b)) = relu(max(a, b))``, its backward is
``max_pool_backward`` of ``dP * (P > 0)``.
"""

import numba
import numpy as np

from n2prune.kernels.direct_conv import (
    as_f32,
    conv_row,
    geometry_tuple,
    kernel_geometry,
    use_parallel_fmas,
)
from n2prune.kernels.im2col import _valid_span, check_out


@numba.njit(fastmath=True, cache=True)
def _take_max(best, arg, v, t, first):
    """``best, arg = v, t`` where ``v > best`` (everywhere when ``first``)."""
    for q in range(best.shape[0]):
        better = first or v[q] > best[q]
        best[q] = v[q] if better else best[q]
        arg[q] = t if better else arg[q]


@numba.njit(fastmath=True, cache=True)
def _pool_row(src, row0, height, pool, out, arg, oy, n):
    """Pooled row ``oy`` into ``out``/``arg`` (Wo*N) from rows ``src`` (., W*N)
    holding input rows ``row0, row0 + 1, ...`` of an input ``height`` tall."""
    ph, pw, sy, sx, py, px = pool
    width = src.shape[1] // n
    k0, k1 = _valid_span(oy * sy - py, 1, height, ph)
    for ox in range(out.shape[0] // n):
        best, where = out[ox * n:(ox + 1) * n], arg[ox * n:(ox + 1) * n]
        j0, j1 = _valid_span(ox * sx - px, 1, width, pw)
        if k0 >= k1 or j0 >= j1:
            best[:] = 0
            where[:] = -1
            continue
        for ky in range(k0, k1):
            row = src[oy * sy - py + ky - row0]
            for kx in range(j0, j1):
                ix = ox * sx - px + kx
                _take_max(best, where, row[ix * n:(ix + 1) * n], ky * pw + kx,
                          ky == k0 and kx == j0)


@numba.njit(parallel=True, cache=True)
def _forward_parallel(x, pool, y, arg, n):
    for item in numba.prange(y.shape[0] * y.shape[1]):
        c, oy = item // y.shape[1], item % y.shape[1]
        _pool_row(x[c], 0, x.shape[1], pool, y[c, oy], arg[c, oy], oy, n)


@numba.njit(cache=True)
def _forward_serial(x, pool, y, arg, n):
    for item in range(y.shape[0] * y.shape[1]):
        c, oy = item // y.shape[1], item % y.shape[1]
        _pool_row(x[c], 0, x.shape[1], pool, y[c, oy], arg[c, oy], oy, n)


@numba.njit(fastmath=True, cache=True)
def _route(out, g, a, t):
    """``out += g`` where the argmax ``a`` is tap ``t``: a select, no branch."""
    zero = out.dtype.type(0)
    for q in range(out.shape[0]):
        out[q] += g[q] if a[q] == t else zero


@numba.njit(fastmath=True, cache=True)
def _backward_item(dy, arg, pool, dx, item, n):
    """Input row ``(c, iy) = divmod(item, H)`` of ``dx``, gathered from ``dy``."""
    ph, pw, sy, sx, py, px = pool
    c, iy = item // dx.shape[1], item % dx.shape[1]
    out = dx[c, iy]
    out[:] = 0
    width, ho, wo = out.shape[0] // n, dy.shape[1], dy.shape[2] // n
    # Windows covering row iy: oy*sy - py + ky = iy with 0 <= ky < ph.
    for oy in range(max(0, (iy + py - ph + sy) // sy), min(ho, (iy + py) // sy + 1)):
        ky = iy + py - oy * sy
        g, a = dy[c, oy], arg[c, oy]
        for ox in range(wo):
            j0, j1 = _valid_span(ox * sx - px, 1, width, pw)
            for kx in range(j0, j1):
                ix = ox * sx - px + kx
                _route(out[ix * n:(ix + 1) * n], g[ox * n:(ox + 1) * n],
                       a[ox * n:(ox + 1) * n], ky * pw + kx)


@numba.njit(parallel=True, cache=True)
def _backward_parallel(dy, arg, pool, dx, n):
    for item in numba.prange(dx.shape[0] * dx.shape[1]):
        _backward_item(dy, arg, pool, dx, item, n)


@numba.njit(cache=True)
def _backward_serial(dy, arg, pool, dx, n):
    for item in range(dx.shape[0] * dx.shape[1]):
        _backward_item(dy, arg, pool, dx, item, n)


@numba.njit(fastmath=True, cache=True)
def _fused_item(x, kept, geo, bias, pool, conv_hw, y, arg, item):
    """Pooled row ``(o, oy) = divmod(item, Hp)``: its conv rows, then their max."""
    ph, sy, py = pool[0], pool[2], pool[4]
    n = geo[9]
    o, oy = item // y.shape[1], item % y.shape[1]
    k0, k1 = _valid_span(oy * sy - py, 1, conv_hw[0], ph)
    rows = np.empty((max(k1 - k0, 1), conv_hw[1] * n), np.float32)
    row0 = oy * sy - py + k0
    for k in range(k1 - k0):
        conv_row(x, kept, geo, bias, True, rows[k], o, row0 + k)
    _pool_row(rows, row0, conv_hw[0], pool, y[o, oy], arg[o, oy], oy, n)


@numba.njit(parallel=True, cache=True)
def _fused_parallel(x, kept, geo, bias, pool, conv_hw, y, arg):
    for item in numba.prange(y.shape[0] * y.shape[1]):
        _fused_item(x, kept, geo, bias, pool, conv_hw, y, arg, item)


@numba.njit(cache=True)
def _fused_serial(x, kept, geo, bias, pool, conv_hw, y, arg):
    for item in range(y.shape[0] * y.shape[1]):
        _fused_item(x, kept, geo, bias, pool, conv_hw, y, arg, item)


def pool_geometry(input_hw, pool, stride, padding):
    """``(ph, pw, sy, sx, py, px)`` and the pooled ``(Hp, Wp)``, N2D2's size."""
    pool = tuple(int(k) for k in np.broadcast_to(pool, 2))
    stride, padding, _, out_hw = kernel_geometry(input_hw, pool, stride, padding, 1)
    return (*pool, *stride, *padding), out_hw


def max_pool_forward(x, pool, stride, padding=0, out=None):
    """Window max of ``x`` (C, H, W, N) float32: ``(y, argmax)``, (C, Hp, Wp, N).

    ``argmax`` is int32, the tap ``ky*PW + kx`` (see the module docstring).
    ``out`` is an optional ``(y, argmax)`` pair to overwrite.
    """
    x = as_f32(x, "x", 4)
    geo, out_hw = pool_geometry(x.shape[1:3], pool, stride, padding)
    c, n = x.shape[0], x.shape[3]
    y_out, arg_out = (None, None) if out is None else out
    y = check_out(y_out, (c, *out_hw, n), np.float32)
    arg = check_out(arg_out, y.shape, np.int32)
    rows = (c, out_hw[0], out_hw[1] * n)
    run = _forward_parallel if use_parallel_fmas(x.size) else _forward_serial
    run(x.reshape(c, x.shape[1], -1), geo, y.reshape(rows), arg.reshape(rows), n)
    return y, arg


def max_pool_backward(dy, argmax, input_hw, pool, stride, padding=0, out=None):
    """``dx`` (C, H, W, N): each ``dy`` routed to its window's argmax input;
    overlapping windows add up."""
    dy = as_f32(dy, "dy", 4)
    argmax = np.ascontiguousarray(argmax, dtype=np.int32)
    input_hw = tuple(int(s) for s in input_hw)
    geo, out_hw = pool_geometry(input_hw, pool, stride, padding)
    c, n = dy.shape[0], dy.shape[3]
    if argmax.shape != dy.shape or dy.shape[1:3] != out_hw:
        raise ValueError(f"dy {dy.shape} and argmax {argmax.shape} must be "
                         f"(C, {out_hw[0]}, {out_hw[1]}, N)")
    dx = check_out(out, (c, *input_hw, n), np.float32)
    rows = (c, out_hw[0], out_hw[1] * n)
    run = _backward_parallel if use_parallel_fmas(dx.size) else _backward_serial
    run(dy.reshape(rows), argmax.reshape(rows), geo, dx.reshape(c, input_hw[0], -1), n)
    return dx


def conv_relu_max_pool(x, kept, conv, pool, bias=None, out=None):
    """``max_pool(relu(sparse_conv_forward(x, kept, **conv) + bias), **pool)``.

    ``conv`` holds ``stride``, ``padding``, ``dilation`` of the convolution,
    ``pool`` the ``pool``, ``stride``, ``padding`` of the pooling (dicts).
    Returns ``(y, argmax)`` as ``max_pool_forward`` does on the conv output.
    """
    x = as_f32(x, "x", 4)
    o_count, c_count, kh, kw = kept.shape
    if x.shape[0] != c_count:
        raise ValueError(f"x has {x.shape[0]} channels, the weights take {c_count}")
    stride, padding, dilation, conv_hw = kernel_geometry(
        x.shape[1:3], (kh, kw), conv.get("stride", 1), conv.get("padding", 0),
        conv.get("dilation", 1))
    pool_geo, out_hw = pool_geometry(conv_hw, pool["pool"], pool.get("stride", 1),
                                     pool.get("padding", 0))
    n = x.shape[3]
    y_out, arg_out = (None, None) if out is None else out
    y = check_out(y_out, (o_count, *out_hw, n), np.float32)
    arg = check_out(arg_out, y.shape, np.int32)
    bias = np.zeros(o_count, np.float32) if bias is None else as_f32(bias, "bias", 1)
    geo = geometry_tuple(kh, stride, padding, dilation, x.shape[1:3], n)
    arrays = (kept.ptr, kept.minor, kept.ky, kept.kx, kept.values)
    fmas = kept.values.size * conv_hw[0] * conv_hw[1] * n
    run = _fused_parallel if use_parallel_fmas(fmas) else _fused_serial
    rows = (o_count, out_hw[0], out_hw[1] * n)
    run(x.reshape(c_count, x.shape[1], -1), arrays, geo, bias, pool_geo, conv_hw,
        y.reshape(rows), arg.reshape(rows))
    return y, arg
