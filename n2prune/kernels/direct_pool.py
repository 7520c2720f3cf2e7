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
from n2prune.kernels.direct_rows import u64
from n2prune.kernels.im2col import _valid_span, as_float_array, check_out
from n2prune.kernels.twins import serial_and_parallel


@numba.njit(fastmath=True, cache=True, inline="always")
def _take_max(y, yb, arg, x, xb, t, first, n):
    """``y, arg = x, t`` where ``x > y`` (everywhere when ``first``), over n."""
    yb, xb = u64(yb), u64(xb)
    for q in range(u64(n)):
        v, best = x[xb + q], y[yb + q]
        better = first or v > best
        y[yb + q] = v if better else best
        arg[yb + q] = t if better else arg[yb + q]


@numba.njit(fastmath=True, cache=True, inline="always")
def _max4(y, yb, arg, x, b0, b1, b2, b3, t0, t1, t2, t3, n):
    """Four taps at once, y and arg written once: read-modify-write of y (as
    in ``_take_max``) compiled to masked stores, slow on AMD (2x2 windows)."""
    yb, b0, b1, b2, b3 = u64(yb), u64(b0), u64(b1), u64(b2), u64(b3)
    for q in range(u64(n)):
        best, a = x[b0 + q], t0
        v = x[b1 + q]
        best, a = (v, t1) if v > best else (best, a)
        v = x[b2 + q]
        best, a = (v, t2) if v > best else (best, a)
        v = x[b3 + q]
        best, a = (v, t3) if v > best else (best, a)
        y[yb + q] = best
        arg[yb + q] = a


@numba.njit(fastmath=True, cache=True, _nrt=False)
def _pool_row(x, xb, row0, height, pool, y, arg, yb, oy, wo, n):
    """Pooled row ``oy`` into ``y``/``arg`` at ``yb`` (Wo*N floats).

    Input row ``r`` of the plane (``height`` rows of ``W*N``) starts at
    ``x[xb + (r - row0)*W*N]``: the fused kernel passes only the rows it made.
    """
    ph, pw, sy, sx, py, px, width = pool
    k0, k1 = _valid_span(oy * sy - py, 1, height, ph)
    for ox in range(wo):
        ob = yb + ox * n
        j0, j1 = _valid_span(ox * sx - px, 1, width, pw)
        if k0 >= k1 or j0 >= j1:
            y[ob:ob + n] = 0
            arg[ob:ob + n] = -1
            continue
        rb = xb + (oy * sy - py - row0) * width * n + (ox * sx - px) * n
        if k1 - k0 == 2 and j1 - j0 == 2:
            r0, r1 = rb + k0 * width * n + j0 * n, rb + (k0 + 1) * width * n + j0 * n
            t0 = k0 * pw + j0
            _max4(y, ob, arg, x, r0, r0 + n, r1, r1 + n, t0, t0 + 1, t0 + pw, t0 + pw + 1, n)
            continue
        for ky in range(k0, k1):
            rb = xb + (oy * sy - py + ky - row0) * width * n
            for kx in range(j0, j1):
                _take_max(y, ob, arg, x, rb + (ox * sx - px + kx) * n, ky * pw + kx,
                          ky == k0 and kx == j0, n)


@serial_and_parallel
def _forward(x, pool, y, arg, height, ho, wo, n):
    for item in numba.prange(y.shape[0] // (wo * n)):
        c, oy = item // ho, item % ho
        _pool_row(x, c * height * pool[6] * n, 0, height, pool, y, arg, item * wo * n, oy,
                  wo, n)


@numba.njit(fastmath=True, cache=True, inline="always")
def _route(dx, xb, dy, yb, arg, t, n):
    """``dx += dy`` where the argmax is tap ``t``. A product, not a select:
    LLVM turned the select into masked stores, slow on AMD (an infinite dy
    would spread NaN over its window; finite gradients route exactly)."""
    xb, yb = u64(xb), u64(yb)
    for q in range(u64(n)):
        dx[xb + q] += dy[yb + q] * dx.dtype.type(arg[yb + q] == t)


@numba.njit(fastmath=True, cache=True, _nrt=False)
def _backward_item(dy, arg, pool, dx, item, height, ho, wo, n):
    """Input row ``(c, iy) = divmod(item, H)`` of ``dx``, gathered from ``dy``."""
    ph, pw, sy, sx, py, px, width = pool
    c, iy = item // height, item % height
    xb = item * width * n
    dx[xb:xb + width * n] = 0
    # Windows covering row iy: oy*sy - py + ky = iy with 0 <= ky < ph.
    for oy in range(max(0, (iy + py - ph + sy) // sy), min(ho, (iy + py) // sy + 1)):
        ky = iy + py - oy * sy
        for ox in range(wo):
            yb = ((c * ho + oy) * wo + ox) * n
            j0, j1 = _valid_span(ox * sx - px, 1, width, pw)
            for kx in range(j0, j1):
                _route(dx, xb + (ox * sx - px + kx) * n, dy, yb, arg, ky * pw + kx, n)


@serial_and_parallel
def _backward(dy, arg, pool, dx, height, ho, wo, n):
    for item in numba.prange(dx.shape[0] // (pool[6] * n)):
        _backward_item(dy, arg, pool, dx, item, height, ho, wo, n)


@numba.njit(fastmath=True, cache=True)
def _fused_item(x, kept, geo, bias, pool, y, arg, item, hp, wp, rows):
    """Pooled row ``(o, oy) = divmod(item, Hp)``: its conv rows (into the
    thread's scratch ``rows``), then their max."""
    ph, sy, py = pool[0], pool[2], pool[4]
    conv_h, conv_w, n = geo[9], geo[10], geo[11]
    o, oy = item // hp, item % hp
    k0, k1 = _valid_span(oy * sy - py, 1, conv_h, ph)
    row0 = oy * sy - py + k0
    for k in range(k1 - k0):
        conv_row(x, kept, geo, bias, True, rows, k * conv_w * n, o, row0 + k)
    _pool_row(rows, 0, row0, conv_h, pool, y, arg, item * wp * n, oy, wp, n)


@serial_and_parallel
def _fused(x, kept, geo, bias, pool, y, arg, hp, wp, scratch):
    # The items in one contiguous chunk per scratch row block, a chunk per
    # thread: an allocation per item inside the parallel loop cost more than
    # the convolution at 90% sparsity. (Not numba.get_thread_id(): compiled
    # serial and read from the cache, it crashes a process whose thread
    # pool has not started yet.)
    items, chunks = y.shape[0] // (wp * geo[11]), scratch.shape[0]
    for chunk in numba.prange(chunks):
        for item in range(chunk * items // chunks, (chunk + 1) * items // chunks):
            _fused_item(x, kept, geo, bias, pool, y, arg, item, hp, wp, scratch[chunk])


def pool_geometry(input_hw, pool, stride, padding):
    """``(ph, pw, sy, sx, py, px, W)`` and the pooled ``(Hp, Wp)``, N2D2's size."""
    pool = tuple(int(k) for k in np.broadcast_to(pool, 2))
    stride, padding, _, out_hw = kernel_geometry(input_hw, pool, stride, padding, 1)
    return (*pool, *stride, *padding, int(input_hw[1])), out_hw


def max_pool_forward(x, pool, stride, padding=0, out=None):
    """Window max of ``x`` (C, H, W, N) float32/64: ``(y, argmax)``, (C, Hp, Wp, N).

    ``argmax`` is int32, the tap ``ky*PW + kx`` (see the module docstring).
    ``out`` is an optional ``(y, argmax)`` pair to overwrite.
    """
    x = as_float_array(x, "x")
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (C, H, W, N), got {x.shape}")
    geo, out_hw = pool_geometry(x.shape[1:3], pool, stride, padding)
    c, n = x.shape[0], x.shape[3]
    y_out, arg_out = (None, None) if out is None else out
    y = check_out(y_out, (c, *out_hw, n), x.dtype)
    arg = check_out(arg_out, y.shape, np.int32)
    run = _forward.pick(use_parallel_fmas(x.size))
    run(x.reshape(-1), geo, y.reshape(-1), arg.reshape(-1), x.shape[1], *out_hw, n)
    return y, arg


def max_pool_backward(dy, argmax, input_hw, pool, stride, padding=0, out=None):
    """``dx`` (C, H, W, N): each ``dy`` routed to its window's argmax input;
    overlapping windows add up."""
    dy = as_float_array(dy, "dy")
    argmax = np.ascontiguousarray(argmax, dtype=np.int32)
    input_hw = tuple(int(s) for s in input_hw)
    geo, out_hw = pool_geometry(input_hw, pool, stride, padding)
    c, n = dy.shape[0], dy.shape[3]
    if argmax.shape != dy.shape or dy.shape[1:3] != out_hw:
        raise ValueError(f"dy {dy.shape} and argmax {argmax.shape} must be "
                         f"(C, {out_hw[0]}, {out_hw[1]}, N)")
    dx = check_out(out, (c, *input_hw, n), dy.dtype)
    run = _backward.pick(use_parallel_fmas(dx.size))
    run(dy.reshape(-1), argmax.reshape(-1), geo, dx.reshape(-1), input_hw[0], *out_hw, n)
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
    geo = geometry_tuple(kh, stride, padding, dilation, x.shape[1:3], conv_hw, n)
    arrays = (kept.ptr, kept.minor, kept.ky, kept.kx, kept.values)
    fmas = kept.values.size * conv_hw[0] * conv_hw[1] * n
    parallel = use_parallel_fmas(fmas)
    chunks = numba.get_num_threads() if parallel else 1
    scratch = np.empty((chunks, max(pool_geo[0], 1) * conv_hw[1] * n), np.float32)
    run = _fused.pick(parallel)
    run(x.reshape(-1), arrays, geo, bias, pool_geo, y.reshape(-1), arg.reshape(-1), *out_hw,
        scratch)
    return y, arg
