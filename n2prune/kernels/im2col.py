"""im2col / col2im for batch-innermost ``(C, H, W, N)`` activations.

``cols = im2col(x, ...)`` has shape ``(C*KH*KW, OH*OW*N)``: row
``r = (c*KH + ky)*KW + kx`` (the order of an OCHW weight row), column
``q = (oy*OW + ox)*N + n`` (the order of a ``(H, W, N)`` output channel),
so ``W.reshape(O, -1) @ cols`` is directly the ``(O, OH, OW, N)`` output.
With the batch innermost, each (row, oy) of ``cols`` is a copy of whole
input runs of N floats (of ``(hi - lo)*N`` floats at unit x-stride), and a
kernel covering its whole unpadded input needs no copy at all.
"""

import numba
import numpy as np

from n2prune.kernels.twins import serial_and_parallel

# Argument checks shared by the kernel modules.


def pair(value, name):
    """``(h, w)`` ints from an int or a 2-sequence."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        h, w = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}") from None
    return int(h), int(w)


def as_float_array(a, name):
    """``a`` as a C-contiguous float32/float64 array (no copy when it already is)."""
    a = np.asarray(a)
    if a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {a.dtype}")
    return np.ascontiguousarray(a)


def check_out(out, shape, dtype):
    """A fresh ``np.empty`` array, or ``out`` after checking it can be written."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if out.shape != tuple(shape) or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(
            f"out must be a C-contiguous {np.dtype(dtype).name} array of shape "
            f"{tuple(shape)}, got {out.dtype.name} {out.shape}")
    return out


def conv_out_size(size, kernel, stride, padding, dilation):
    """Output length along one axis, N2D2's formula.

    ``floor((size + 2*padding - (dilation*(kernel-1) + 1) + stride) / stride)``.
    Raises ``ValueError`` when the (dilated) kernel does not fit, i.e. < 1.
    """
    if min(kernel, stride, dilation) < 1 or padding < 0:
        raise ValueError(f"invalid kernel {kernel}, stride {stride}, dilation "
                         f"{dilation} or padding {padding}")
    extent = dilation * (kernel - 1) + 1
    out = (size + 2 * padding - extent + stride) // stride
    if out < 1:
        raise ValueError(
            f"kernel {kernel} (dilation {dilation}, stride {stride}, padding "
            f"{padding}) does not fit an input of size {size}")
    return out


def conv_geometry(input_shape, kernel, stride, padding, dilation):
    """Validated ``(kernel, stride, padding, dilation, (OH, OW))`` as int pairs."""
    if len(input_shape) != 4:
        raise ValueError(f"expected a (C, H, W, N) shape, got {input_shape}")
    kernel, stride = pair(kernel, "kernel"), pair(stride, "stride")
    padding, dilation = pair(padding, "padding"), pair(dilation, "dilation")
    out = tuple(conv_out_size(input_shape[1 + a], kernel[a], stride[a],
                              padding[a], dilation[a]) for a in (0, 1))
    return kernel, stride, padding, dilation, out


@numba.njit(cache=True, inline="always")
def _valid_span(offset, stride, size, out_size):
    """Outputs ``[lo, hi)`` whose input index ``o*stride + offset`` is in ``[0, size)``."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = 0
    if size - 1 - offset >= 0:
        hi = (size - 1 - offset) // stride + 1
    hi = min(hi, out_size)
    return lo, max(lo, hi)


# Below this many elements, kernels run serially (see ``use_parallel``).
PARALLEL_MIN_ELEMENTS = 1 << 20


@numba.njit(fastmath=True, cache=True)
def _im2col_row(x, geometry, cols, r):
    """Row ``r = (c, ky, kx)`` of ``cols``: one run per output row ``oy``."""
    kh, kw, sy, sx, py, px, dy, dx, oh, ow = geometry
    height, width, n = x.shape[1], x.shape[2], x.shape[3]
    c, k = r // (kh * kw), r % (kh * kw)
    ky, kx = k // kw, k % kw
    src = x[c].reshape(height * width * n)
    dst = cols[r]
    zero = x.dtype.type(0)   # typed: a bare 0 would promote to float64
    lo, hi = _valid_span(kx * dx - px, sx, width, ow)
    for oy in range(oh):
        row = dst[oy * ow * n:(oy + 1) * ow * n]
        iy = oy * sy - py + ky * dy
        if iy < 0 or iy >= height:
            row[:] = zero
            continue
        row[:lo * n] = zero
        row[hi * n:] = zero
        base = iy * width * n
        if sx == 1:
            ix = lo - px + kx * dx
            row[lo * n:hi * n] = src[base + ix * n:base + (ix + hi - lo) * n]
        else:
            for ox in range(lo, hi):
                ix = ox * sx - px + kx * dx
                row[ox * n:(ox + 1) * n] = src[base + ix * n:base + (ix + 1) * n]


@serial_and_parallel
def _im2col(x, geometry, cols):
    for r in numba.prange(cols.shape[0]):
        _im2col_row(x, geometry, cols, r)


@numba.njit(fastmath=True, cache=True)
def _col2im_channel(cols, geometry, dx_out, c):
    """Channel ``c`` of the gradient: every tap's rows added back, so a
    parallel item owns its channel and nothing races."""
    kh, kw, sy, sx, py, px, dy, dx, oh, ow = geometry
    height, width, n = dx_out.shape[1], dx_out.shape[2], dx_out.shape[3]
    dst = dx_out[c].reshape(height * width * n)
    dst[:] = 0
    for k in range(kh * kw):
        ky, kx = k // kw, k % kw
        src = cols[c * kh * kw + k]
        lo, hi = _valid_span(kx * dx - px, sx, width, ow)
        for oy in range(oh):
            iy = oy * sy - py + ky * dy
            if iy < 0 or iy >= height or hi <= lo:
                continue
            base = iy * width * n
            for ox in range(lo, hi):
                ix = ox * sx - px + kx * dx
                d = dst[base + ix * n:base + (ix + 1) * n]
                s = src[(oy * ow + ox) * n:(oy * ow + ox + 1) * n]
                for i in range(n):
                    d[i] += s[i]


@serial_and_parallel
def _col2im(cols, geometry, dx_out):
    for c in numba.prange(dx_out.shape[0]):
        _col2im_channel(cols, geometry, dx_out, c)


def use_parallel(elements):
    """Whether work touching ``elements`` array elements should run in parallel.

    With ``OMP_WAIT_POLICY=PASSIVE`` (set in ``kernels/__init__``) waking the
    sleeping worker costs 10-20 us, and on the 2-vCPU reference machine a
    serial loop won for memory-bound work up to ~1M elements."""
    return elements >= PARALLEL_MIN_ELEMENTS and numba.get_num_threads() > 1


def _geometry_tuple(kernel, stride, padding, dilation, out):
    """One homogeneous int tuple, so numba compiles a single signature."""
    return (*kernel, *stride, *padding, *dilation, *out)


def covers_input(input_hw, kernel, padding):
    """Whether an unpadded kernel covers its whole input: one output pixel, and
    im2col is a view of the input (the convolution is a plain GEMM)."""
    return tuple(pair(kernel, "kernel")) == tuple(input_hw) and not any(
        pair(padding, "padding"))


def im2col(x, kernel, stride, padding, dilation, out=None):
    """Unfold ``x`` (C, H, W, N) into ``cols`` of shape ``(C*KH*KW, OH*OW*N)``.

    ``cols[(c*KH + ky)*KW + kx, (oy*OW + ox)*N + n] =
    x[c, oy*sy - py + ky*dy, ox*sx - px + kx*dx, n]``, or 0 where that index
    falls in the (symmetric, zero) padding. ``kernel``, ``stride``,
    ``padding``, ``dilation`` are ``(h, w)`` int pairs (an int means both).
    ``out``, if given, must be C-contiguous of that shape and x's dtype; it
    is fully overwritten and returned. A kernel that covers its whole
    unpadded input (one output pixel) returns a view of ``x`` when no
    ``out`` is given.
    """
    x = as_float_array(x, "x")
    kernel, stride, padding, dilation, (oh, ow) = conv_geometry(
        x.shape, kernel, stride, padding, dilation)
    c_count, n_count = x.shape[0], x.shape[3]
    shape = (c_count * kernel[0] * kernel[1], oh * ow * n_count)
    if out is None and covers_input(x.shape[1:3], kernel, padding):
        return x.reshape(shape)
    cols = check_out(out, shape, x.dtype)
    geometry = _geometry_tuple(kernel, stride, padding, dilation, (oh, ow))
    run = _im2col.pick(use_parallel(cols.size))
    run(x, geometry, cols)
    return cols


def col2im(cols, input_shape, kernel, stride, padding, dilation, out=None):
    """Fold ``cols`` back to a ``(C, H, W, N)`` gradient: the adjoint of im2col.

    Every column entry is added to the input pixel it was copied from
    (overlapping windows accumulate; entries that came from padding are
    dropped), so ``<im2col(x), c> == <x, col2im(c)>``. ``out``, if given, is
    overwritten (not accumulated into) and returned.
    """
    cols = as_float_array(cols, "cols")
    input_shape = tuple(int(s) for s in input_shape)
    kernel, stride, padding, dilation, (oh, ow) = conv_geometry(
        input_shape, kernel, stride, padding, dilation)
    c_count, n_count = input_shape[0], input_shape[3]
    expected = (c_count * kernel[0] * kernel[1], oh * ow * n_count)
    if cols.shape != expected:
        raise ValueError(f"cols has shape {cols.shape}, expected {expected}")
    dx = check_out(out, input_shape, cols.dtype)
    geometry = _geometry_tuple(kernel, stride, padding, dilation, (oh, ow))
    run = _col2im.pick(use_parallel(cols.size) and c_count > 1)
    run(cols, geometry, dx)
    return dx
