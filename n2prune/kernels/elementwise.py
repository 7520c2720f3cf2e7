"""Activations and per-channel bias on CNHW arrays, fused where a pass is saved.

The rectifier follows N2D2's ``RectifierActivation_Frame``: ``y = x`` for
``x > 0`` else ``leak_slope * x``, then capped at ``clipping`` when
``clipping > 0``. ``leak_slope`` is assumed ``>= 0`` (so that the sign of
the output tells the branch, which the backward pass relies on).

Flat kernels split the array into ``_BLOCK``-element blocks, one block per
parallel item, and loop from 0 over a slice so that LLVM vectorises.
"""

import numba
import numpy as np

from n2prune.kernels.im2col import as_float_array, check_out

_BLOCK = 16384
_SUM_RUN = 512


@numba.njit(cache=True, inline="always")
def _rectifier_grad(g, y, leak, cap, zero):
    """Gradient through the rectifier, from its output ``y``: 0 at the clip.
    ``zero`` is typed (a bare 0 would promote float32 math to float64)."""
    return g * leak if y <= 0 else (g if y < cap else zero)


@numba.njit(parallel=True, fastmath=True, cache=True)
def _relu_forward_kernel(x, leak, cap, y):
    size = x.shape[0]
    for b in numba.prange((size + _BLOCK - 1) // _BLOCK):
        src = x[b * _BLOCK:min(size, (b + 1) * _BLOCK)]
        dst = y[b * _BLOCK:min(size, (b + 1) * _BLOCK)]
        for i in range(src.shape[0]):
            v = src[i]
            dst[i] = min(v, cap) if v > 0 else leak * v


@numba.njit(parallel=True, fastmath=True, cache=True)
def _relu_backward_kernel(dy, y, leak, cap, dx):
    size = dy.shape[0]
    for b in numba.prange((size + _BLOCK - 1) // _BLOCK):
        grad = dy[b * _BLOCK:min(size, (b + 1) * _BLOCK)]
        out = y[b * _BLOCK:min(size, (b + 1) * _BLOCK)]
        dst = dx[b * _BLOCK:min(size, (b + 1) * _BLOCK)]
        zero = dy.dtype.type(0)
        for i in range(grad.shape[0]):
            dst[i] = _rectifier_grad(grad[i], out[i], leak, cap, zero)


@numba.njit(parallel=True, fastmath=True, cache=True)
def _bias_relu_kernel(y, bias, leak, cap, apply_relu):
    """In place on ``y`` (C, M): ``y[c] += bias[c]``, then the rectifier."""
    n_channels, size = y.shape
    n_blocks = (size + _BLOCK - 1) // _BLOCK
    for item in numba.prange(n_channels * n_blocks):
        c = item // n_blocks
        b = item - c * n_blocks
        row = y[c, b * _BLOCK:min(size, (b + 1) * _BLOCK)]
        shift = bias[c]
        if apply_relu:
            for i in range(row.shape[0]):
                v = row[i] + shift
                row[i] = min(v, cap) if v > 0 else leak * v
        else:
            for i in range(row.shape[0]):
                row[i] += shift


@numba.njit(cache=True)
def _masked_sum(grad, out, leak, cap, apply_relu, dst):
    """Sum of ``grad`` (1-D), or of its rectifier gradient, also written to
    ``dst``, in the array's dtype so that the loop vectorises."""
    zero = grad.dtype.type(0)
    acc = zero
    if apply_relu:
        for i in range(grad.shape[0]):
            g = _rectifier_grad(grad[i], out[i], leak, cap, zero)
            dst[i] = g
            acc += g
    else:
        for i in range(grad.shape[0]):
            acc += grad[i]
    return acc


@numba.njit(parallel=True, fastmath=True, cache=True)
def _bias_grad_kernel(dy, y, leak, cap, apply_relu, dx, db):
    """``db[c] = sum(dx[c])``; with ``apply_relu`` dx is the rectifier's
    gradient (written to ``dx``), otherwise dx is ``dy`` itself (not written).

    Runs of ``_SUM_RUN`` elements are summed in the array's dtype (each SIMD
    lane adds a few dozen values), the runs in float64: float32 batches of
    a million values keep ~1e-7 relative accuracy."""
    n_channels, size = dy.shape
    n_blocks = (size + _BLOCK - 1) // _BLOCK
    partial = np.empty(n_channels * n_blocks, dtype=np.float64)
    for item in numba.prange(n_channels * n_blocks):
        c = item // n_blocks
        b = item - c * n_blocks
        acc = 0.0
        for start in range(b * _BLOCK, min(size, (b + 1) * _BLOCK), _SUM_RUN):
            stop = min(size, start + _SUM_RUN, (b + 1) * _BLOCK)
            acc += _masked_sum(dy[c, start:stop], y[c, start:stop], leak, cap,
                               apply_relu, dx[c, start:stop])
        partial[item] = acc
    # A plain loop: under parallel=True an array ``.sum()`` would become a
    # parallel region of its own, launched once per channel.
    for c in range(n_channels):
        total = 0.0
        for b in range(n_blocks):
            total += partial[c * n_blocks + b]
        db[c] = total


def _rectifier_scalars(leak_slope, clipping, dtype):
    """``(leak, cap)`` in the array's dtype, so float32 math stays float32.

    No clipping is a cap at the largest finite value, not inf: fastmath lets
    LLVM assume that no value is infinite."""
    cap = clipping if clipping > 0 else np.finfo(dtype).max
    return dtype.type(leak_slope), dtype.type(cap)


def _channel_rows(a, name):
    """``a`` (C, N[, H, W]) as a (C, M) view; it must already be C-contiguous."""
    if a.ndim not in (2, 4):
        raise ValueError(f"{name} must be (C, N) or (C, N, H, W), got {a.shape}")
    if not a.flags.c_contiguous or a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be a C-contiguous float32/float64 array")
    return a.reshape(a.shape[0], -1)


def relu_forward(x, leak_slope=0.0, clipping=0.0, out=None):
    """N2D2 Rectifier of any-shape ``x``; ``out`` may be ``x`` (in place)."""
    x = as_float_array(x, "x")
    y = check_out(out, x.shape, x.dtype)
    leak, cap = _rectifier_scalars(leak_slope, clipping, x.dtype)
    _relu_forward_kernel(x.reshape(-1), leak, cap, y.reshape(-1))
    return y


def relu_backward(dy, y, leak_slope=0.0, clipping=0.0, out=None):
    """Rectifier gradient from its **output** ``y``: ``dx = dy * d``.

    ``d`` is 1 where ``y > 0`` (and ``y < clipping`` when ``clipping > 0``),
    0 where the output sits at the clip, ``leak_slope`` where ``y <= 0``.
    ``out`` may be ``dy`` (in place).
    """
    dy = as_float_array(dy, "dy")
    y = np.ascontiguousarray(y, dtype=dy.dtype)
    if y.shape != dy.shape:
        raise ValueError(f"dy {dy.shape} and y {y.shape} differ in shape")
    dx = check_out(out, dy.shape, dy.dtype)
    leak, cap = _rectifier_scalars(leak_slope, clipping, dy.dtype)
    _relu_backward_kernel(dy.reshape(-1), y.reshape(-1), leak, cap, dx.reshape(-1))
    return dx


def add_bias_cnhw(y, bias):
    """In place: ``y[c] += bias[c]`` for C-contiguous ``y`` (C, N, H, W) or (C, N)."""
    rows = _channel_rows(y, "y")
    bias = np.ascontiguousarray(bias, dtype=y.dtype).reshape(-1)
    if bias.shape[0] != y.shape[0]:
        raise ValueError(f"bias has {bias.shape[0]} values for {y.shape[0]} channels")
    leak, cap = _rectifier_scalars(0.0, 0.0, y.dtype)
    _bias_relu_kernel(rows, bias, leak, cap, False)
    return y


def add_bias_relu_cnhw(y, bias, leak_slope=0.0, clipping=0.0):
    """In place, one pass: ``y = relu_forward(y + bias[c])`` (conv/fc epilogue)."""
    rows = _channel_rows(y, "y")
    bias = np.ascontiguousarray(bias, dtype=y.dtype).reshape(-1)
    if bias.shape[0] != y.shape[0]:
        raise ValueError(f"bias has {bias.shape[0]} values for {y.shape[0]} channels")
    leak, cap = _rectifier_scalars(leak_slope, clipping, y.dtype)
    _bias_relu_kernel(rows, bias, leak, cap, True)
    return y


def bias_grad_cnhw(dy):
    """Per-channel sum of ``dy`` (C, N, H, W) or (C, N): the bias gradient (C,)."""
    dy = as_float_array(dy, "dy")
    rows = _channel_rows(dy, "dy")
    db = np.empty(dy.shape[0], dtype=dy.dtype)
    leak, cap = _rectifier_scalars(0.0, 0.0, dy.dtype)
    _bias_grad_kernel(rows, rows, leak, cap, False, rows, db)
    return db


def relu_backward_bias_grad(dy, y, leak_slope=0.0, clipping=0.0, out=None):
    """One pass: ``dx = relu_backward(dy, y, ...)`` and ``db = bias_grad_cnhw(dx)``.

    ``y`` is the rectifier output (C, N[, H, W]); returns ``(dx, db)``.
    ``out`` may be ``dy`` (in place).
    """
    dy = as_float_array(dy, "dy")
    y = np.ascontiguousarray(y, dtype=dy.dtype)
    if y.shape != dy.shape:
        raise ValueError(f"dy {dy.shape} and y {y.shape} differ in shape")
    dx = check_out(out, dy.shape, dy.dtype)
    db = np.empty(dy.shape[0], dtype=dy.dtype)
    leak, cap = _rectifier_scalars(leak_slope, clipping, dy.dtype)
    _bias_grad_kernel(_channel_rows(dy, "dy"), _channel_rows(y, "y"), leak, cap,
                      True, _channel_rows(dx, "out"), db)
    return dx, db
