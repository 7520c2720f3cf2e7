"""Direct dense and sparse convolution on batch-innermost activations.

Layout: activations are float32 ``(C, H, W, N)``, C-contiguous, the batch
``N`` innermost. Weights stay OCHW ``(O, C, KH, KW)``. With the batch
innermost, an output row ``Y[o, y, :, :]`` and the input run one kernel tap
reads, ``X[c, y*sy + ky*dy - py, kx*dx - px + (0..Wo), :]`` (stride 1), are
each one contiguous run of ``Wo*N`` floats. A kept weight is therefore one
long vectorised multiply-add over that run: no im2col copy (whose 25x
inflation dominated thin layers), no padded copy of X, and a pruned weight
costs nothing at all. The kernels see the arrays flat (see ``direct_rows``).

Kept weights are stored compressed (``compress``): per output ``o`` and
kernel row ``ky`` a run of entries ``(c, ky, kx, value)``. Since the input
row ``y*sy + ky*dy - py`` rises with ``ky``, the entries one output row needs
form one contiguous run of that list, which ``direct_rows.gather_run`` walks
four kept weights at a time. The input gradient uses the transposed form
(``compress_transposed``: per input channel ``c`` the entries ``(o, ky,
kx)``) in gather form, each (channel, row) of ``dX`` owned by one parallel
item, so there are no write races. The weight gradient is one dot product
per kept weight, parallel over outputs.

A dense convolution is the same loops over a structure that keeps every
weight (``compress(w)``, 40-900 us for LeNet's convs): a cell keeps it and
refreshes only the values (``gather_values``, O(nnz)). A kernel that covers
its whole unpadded input (LeNet's conv3) leaves one output column, rows of
only N floats: that is a (K, N) product where BLAS and
``sparse.csr_matmul_trusted`` win (``tests/test_kernels_direct_fc``).
"""

from typing import NamedTuple

import numba
import numpy as np

from n2prune.kernels.direct_rows import dot_run, gather_run, scatter1
from n2prune.kernels.im2col import _valid_span, check_out, conv_out_size, pair
from n2prune.kernels.sparse import PARALLEL_MIN_FMAS
from n2prune.kernels.twins import serial_and_parallel


class KeptWeights(NamedTuple):
    """The kept weights of an OCHW tensor, grouped by ``(major, ky)``.

    ``major`` is the output ``o`` (``compress``) or the input channel ``c``
    (``compress_transposed``); ``minor`` is the other one. Entries of
    ``(major, ky)`` are ``ptr[major*KH + ky]:ptr[major*KH + ky + 1]``, in
    ``(minor, kx)`` order. ``flat`` is each entry's index in the raveled
    weight, ``values`` its value (float32, refreshed by ``gather_values``).
    """

    shape: tuple
    ptr: np.ndarray
    minor: np.ndarray
    ky: np.ndarray
    kx: np.ndarray
    flat: np.ndarray
    values: np.ndarray


def _compress(w, mask, transposed):
    w = np.asarray(w)
    mask = np.ones(w.shape, bool) if mask is None else np.asarray(mask) != 0
    if w.ndim != 4 or mask.ndim != 4:
        raise ValueError(f"w and mask must be 4-D (O, C, KH, KW), got {w.shape} and "
                         f"{mask.shape}")
    try:
        mask = np.broadcast_to(mask, w.shape)
    except ValueError:
        raise ValueError(f"mask {mask.shape} does not broadcast to w {w.shape}") from None
    _, c_count, kh, kw = w.shape
    # Sort order (major, ky, minor, kx): the runs described in KeptWeights.
    order = (1, 2, 0, 3) if transposed else (0, 2, 1, 3)
    major, ky, minor, kx = np.nonzero(mask.transpose(order))
    o, c = (minor, major) if transposed else (major, minor)
    flat = ((o * c_count + c) * kh + ky) * kw + kx
    counts = np.bincount(major * kh + ky, minlength=w.shape[order[0]] * kh)
    ptr = np.zeros(counts.shape[0] + 1, np.int32)
    np.cumsum(counts, out=ptr[1:])
    values = np.ascontiguousarray(w.reshape(-1)[flat], dtype=np.float32)
    return KeptWeights(w.shape, ptr, minor.astype(np.int32), ky.astype(np.int32),
                       kx.astype(np.int32), flat, values)


def compress(w, mask=None):
    """Kept weights of ``w`` (O, C, KH, KW) where ``mask`` is nonzero (all when
    None), grouped per output: the forward and weight-gradient form.

    ``mask`` broadcasts to ``w``: an (O, C, 1, 1) mapping table (N2D2's
    Mapping, grouped or depthwise convolution as a block-diagonal table)
    keeps whole kernels, so those need no kernel of their own.
    """
    return _compress(w, mask, transposed=False)


def compress_transposed(w, mask=None):
    """Kept weights grouped per input channel: the input-gradient form."""
    return _compress(w, mask, transposed=True)


def gather_values(kept, w):
    """``kept`` with its values re-read from dense ``w`` (once per step)."""
    values = np.ascontiguousarray(np.asarray(w).reshape(-1)[kept.flat], dtype=np.float32)
    return kept._replace(values=values)


def scatter_values(kept, values, shape=None):
    """A dense float32 array of ``shape`` (default ``kept.shape``, OCHW) holding
    ``values`` at the kept positions (``kept.flat`` indexes that array raveled)."""
    shape = kept.shape if shape is None else tuple(shape)
    dense = np.zeros(int(np.prod(shape)), np.float32)
    dense[kept.flat] = values
    return dense.reshape(shape)


@numba.njit(cache=True, inline="always")
def _run(ptr, seg, first, count):
    """Entries of kernel rows ``[first, first + count)`` in segment ``seg``."""
    return ptr[seg + first], ptr[seg + first + count]


@numba.njit(fastmath=True, cache=True)
def conv_row(x, kept, geo, bias, relu, out, ob, o, oy):
    """Output row ``(o, oy)`` into ``out[ob:ob + Wo*N]``: bias, kept taps, ReLU.

    ``x`` and ``out`` are flat, ``kept`` the tuple ``(ptr, minor, ky, kx,
    values)`` and ``geo`` the tuple of ``geometry_tuple``.
    """
    ptr, minor, ky, kx, vals = kept
    kh, sy, sx, py, px, dly, dlx, height, width, _, wo, n = geo
    row = out[ob:ob + wo * n]
    row[:] = bias[o]
    k0, k1 = _valid_span(oy * sy - py, dly, height, kh)
    p0, p1 = _run(ptr, o * kh, k0, k1 - k0)
    g = (oy * sy - py, dly, -px, dlx, sx, width, wo, n, height * width * n)
    gather_run(out, ob, x, minor, ky, kx, vals, p0, p1, g)
    if relu:
        # Written as a product: LLVM turned max() or a ternary into masked
        # stores (vmaskmovps), slow on AMD; this compiles to vmaxps.
        zero = row.dtype.type(0)
        for q in range(row.shape[0]):
            v = row[q]
            row[q] = v * row.dtype.type(v > zero)


@serial_and_parallel
def _forward(x, kept, geo, bias, relu, y):
    o_count, ho, row = (kept[0].shape[0] - 1) // geo[0], geo[9], geo[10] * geo[11]
    for item in numba.prange(o_count * ho):
        conv_row(x, kept, geo, bias, relu, y, item * row, item // ho, item % ho)


@numba.njit(fastmath=True, cache=True)
def _input_grad_item(dy, kept_t, geo, dx, item):
    """Input row ``(c, iy) = divmod(item, H)`` of ``dx``, gathered from ``dy``."""
    ptr, minor, ky, kx, vals = kept_t
    kh, sy, sx, py, px, dly, dlx, height, width, ho, wo, n = geo
    c, iy = item // height, item % height
    ob, plane = item * width * n, ho * wo * n
    dx[ob:ob + width * n] = 0
    seg = c * kh
    if sy == 1 and sx == 1:
        # oy = iy + py - ky*dly falls in [0, Ho) for one contiguous ky range.
        k0 = max(0, (iy + py - ho + dly) // dly)
        k1 = min(kh, (iy + py) // dly + 1)
        if k0 < k1:
            p0, p1 = _run(ptr, seg, k0, k1 - k0)
            g = (iy + py, -dly, px, -dlx, 1, wo, width, n, plane)
            gather_run(dx, ob, dy, minor, ky, kx, vals, p0, p1, g)
        return
    for k in range(kh):
        num = iy + py - k * dly
        if num < 0 or num % sy != 0 or num // sy >= ho:
            continue
        p0, p1 = _run(ptr, seg, k, 1)
        if sx == 1:
            g = (num // sy, 0, px, -dlx, 1, wo, width, n, plane)
            gather_run(dx, ob, dy, minor, ky, kx, vals, p0, p1, g)
            continue
        # Column stride > 1: each tap feeds every sx-th column of the row.
        for p in range(p0, p1):
            off = kx[p] * dlx - px
            lo, hi = _valid_span(off, sx, width, wo)
            scatter1(dx, ob, dy, minor[p] * plane + num // sy * wo * n, off, vals[p], lo, hi,
                     sx, n)


@serial_and_parallel
def _input_grad(dy, kept_t, geo, dx):
    for item in numba.prange(dx.shape[0] // (geo[8] * geo[11])):
        _input_grad_item(dy, kept_t, geo, dx, item)


@numba.njit(fastmath=True, cache=True)
def _weight_grad_item(x, dy, kept, geo, dw, o):
    """``dw`` of the kept weights of output ``o``: one dot product each."""
    ptr, minor, ky, kx = kept
    kh, sy, sx, py, px, dly, dlx, height, width, ho, wo, n = geo
    seg = o * kh
    dw[ptr[seg]:ptr[seg + kh]] = 0
    for oy in range(ho):
        k0, k1 = _valid_span(oy * sy - py, dly, height, kh)
        p0, p1 = _run(ptr, seg, k0, k1 - k0)
        g = (oy * sy - py, dly, -px, dlx, sx, width, wo, n, height * width * n)
        dot_run(dy, (o * ho + oy) * wo * n, x, minor, ky, kx, dw, p0, p1, g)


@serial_and_parallel
def _weight_grad(x, dy, kept, geo, dw):
    for o in numba.prange((kept[0].shape[0] - 1) // geo[0]):
        _weight_grad_item(x, dy, kept, geo, dw, o)


def as_f32(a, name, ndim):
    a = np.asarray(a)
    if a.dtype != np.float32 or a.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D float32 array, got {a.ndim}-D {a.dtype}")
    return np.ascontiguousarray(a)


def kernel_geometry(input_hw, kernel_hw, stride, padding, dilation):
    """Int pairs ``stride, padding, dilation`` and the output ``(Ho, Wo)``."""
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    dilation = pair(dilation, "dilation")
    out_hw = tuple(conv_out_size(input_hw[a], kernel_hw[a], stride[a], padding[a],
                                 dilation[a]) for a in (0, 1))
    return stride, padding, dilation, out_hw


def geometry_tuple(kh, stride, padding, dilation, in_hw, out_hw, n):
    """The kernels' int tuple ``(kh, sy, sx, py, px, dy, dx, H, W, Ho, Wo, N)``
    (H, W of the convolution's input, Ho, Wo of its output)."""
    return (kh, *stride, *padding, *dilation, *in_hw, *out_hw, n)


def use_parallel_fmas(fmas):
    # A parallel region costs tens of us to wake (OMP_WAIT_POLICY=PASSIVE).
    return fmas >= PARALLEL_MIN_FMAS and numba.get_num_threads() > 1


def sparse_conv_forward(x, kept, stride=1, padding=0, dilation=1, bias=None, relu=False,
                        out=None):
    """``Y = conv(X, W*mask) (+ bias) (then ReLU)`` on batch-innermost arrays.

    ``x`` is (C, H, W, N) float32, ``kept`` from ``compress(w, mask)``; returns
    ``y`` (O, Ho, Wo, N), N2D2's output size. ``stride``, ``padding`` (zero,
    symmetric) and ``dilation`` are ints or (h, w) pairs. ``out`` is
    overwritten when given.
    """
    x = as_f32(x, "x", 4)
    o_count, c_count, kh, kw = kept.shape
    if x.shape[0] != c_count:
        raise ValueError(f"x has {x.shape[0]} channels, the weights take {c_count}")
    stride, padding, dilation, (ho, wo) = kernel_geometry(x.shape[1:3], (kh, kw), stride,
                                                          padding, dilation)
    n = x.shape[3]
    y = check_out(out, (o_count, ho, wo, n), np.float32)
    bias = np.zeros(o_count, np.float32) if bias is None else as_f32(bias, "bias", 1)
    geo = geometry_tuple(kh, stride, padding, dilation, x.shape[1:3], (ho, wo), n)
    arrays = (kept.ptr, kept.minor, kept.ky, kept.kx, kept.values)
    fmas = kept.values.size * ho * wo * n
    run = _forward.pick(use_parallel_fmas(fmas))
    run(x.reshape(-1), arrays, geo, bias, bool(relu), y.reshape(-1))
    return y


def sparse_conv_input_grad(dy, kept_t, input_hw, stride=1, padding=0, dilation=1, out=None):
    """``dX`` (C, H, W, N) of ``sparse_conv_forward`` from ``dy`` (O, Ho, Wo, N).

    ``kept_t`` comes from ``compress_transposed(w, mask)``; ``input_hw`` is
    ``(H, W)`` of the forward input (several sizes give one output size).
    """
    dy = as_f32(dy, "dy", 4)
    o_count, c_count, kh, kw = kept_t.shape
    input_hw = tuple(int(s) for s in input_hw)
    stride, padding, dilation, out_hw = kernel_geometry(input_hw, (kh, kw), stride,
                                                        padding, dilation)
    if dy.shape[:3] != (o_count, *out_hw):
        raise ValueError(f"dy has shape {dy.shape}, expected ({o_count}, {out_hw[0]}, "
                         f"{out_hw[1]}, N)")
    n = dy.shape[3]
    dx = check_out(out, (c_count, *input_hw, n), np.float32)
    geo = geometry_tuple(kh, stride, padding, dilation, input_hw, out_hw, n)
    arrays = (kept_t.ptr, kept_t.minor, kept_t.ky, kept_t.kx, kept_t.values)
    fmas = kept_t.values.size * out_hw[0] * out_hw[1] * n
    run = _input_grad.pick(use_parallel_fmas(fmas))
    run(dy.reshape(-1), arrays, geo, dx.reshape(-1))
    return dx


def sparse_conv_weight_grad(x, dy, kept, stride=1, padding=0, dilation=1, out=None):
    """``dW`` at the kept positions only, in ``kept``'s entry order (nnz,).

    ``dW[o, c, ky, kx] = sum_{oy, ox, n} dy[o, oy, ox, n] *
    x[c, oy*sy + ky*dy - py, ox*sx + kx*dx - px, n]`` (zero padding).
    """
    x, dy = as_f32(x, "x", 4), as_f32(dy, "dy", 4)
    o_count, c_count, kh, kw = kept.shape
    stride, padding, dilation, out_hw = kernel_geometry(x.shape[1:3], (kh, kw), stride,
                                                        padding, dilation)
    n = x.shape[3]
    if x.shape[0] != c_count or dy.shape != (o_count, *out_hw, n):
        raise ValueError(f"x {x.shape} and dy {dy.shape} do not fit weights {kept.shape}")
    dw = check_out(out, kept.values.shape, np.float32)
    geo = geometry_tuple(kh, stride, padding, dilation, x.shape[1:3], out_hw, n)
    fmas = kept.values.size * out_hw[0] * out_hw[1] * n
    run = _weight_grad.pick(use_parallel_fmas(fmas))
    run(x.reshape(-1), dy.reshape(-1), (kept.ptr, kept.minor, kept.ky, kept.kx), geo, dw)
    return dw
