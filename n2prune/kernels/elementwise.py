"""Activations and per-channel bias on channel-major arrays (C, ...), fused where a pass is saved.

The rectifier follows N2D2's ``RectifierActivation_Frame``: ``y = x`` for
``x > 0`` else ``leak_slope * x``, then capped at ``clipping`` when
``clipping > 0``. ``leak_slope`` is assumed ``>= 0`` (so that the sign of
the output tells the branch, which the backward pass relies on).

Each kernel is a serial function on 1-D slices (looping from 0, so that LLVM
vectorises), run over ``_BLOCK``-element blocks by a loop compiled serial and
parallel (``twins``); the parallel one when the array is large enough
(``use_parallel``). The bias gradient keeps a serial loop of its own (see
``_bias_grad_serial``).
"""

import numba
import numpy as np

from n2prune.kernels.im2col import as_float_array, check_out, use_parallel
from n2prune.kernels.twins import serial_and_parallel

_BLOCK = 16384
_SUM_RUN = 512


@numba.njit(cache=True, inline="always")
def _rectifier_grad(g, y, leak, cap, zero):
    """Gradient through the rectifier, from its output ``y``: 0 at the clip.
    ``zero`` is typed (a bare 0 would promote float32 math to float64)."""
    return g * leak if y <= 0 else (g if y < cap else zero)


@numba.njit(fastmath=True, cache=True)
def _relu_forward_block(x, leak, cap, y):
    for i in range(x.shape[0]):
        v = x[i]
        y[i] = min(v, cap) if v > 0 else leak * v


@numba.njit(fastmath=True, cache=True)
def _relu_backward_block(dy, y, leak, cap, dx):
    zero = dy.dtype.type(0)
    for i in range(dy.shape[0]):
        dx[i] = _rectifier_grad(dy[i], y[i], leak, cap, zero)


@serial_and_parallel
def _relu_forward(x, leak, cap, y):
    for b in numba.prange(-(-x.shape[0] // _BLOCK)):
        block = slice(b * _BLOCK, (b + 1) * _BLOCK)
        _relu_forward_block(x[block], leak, cap, y[block])


@serial_and_parallel
def _relu_backward(dy, y, leak, cap, dx):
    for b in numba.prange(-(-dy.shape[0] // _BLOCK)):
        block = slice(b * _BLOCK, (b + 1) * _BLOCK)
        _relu_backward_block(dy[block], y[block], leak, cap, dx[block])


@numba.njit(fastmath=True, cache=True)
def _bias_relu_row(row, shift, leak, cap, apply_relu):
    """In place on the 1-D ``row``: add ``shift``, then the rectifier."""
    if apply_relu:
        for i in range(row.shape[0]):
            v = row[i] + shift
            row[i] = min(v, cap) if v > 0 else leak * v
    else:
        for i in range(row.shape[0]):
            row[i] += shift


@serial_and_parallel
def _bias_relu(y, bias, leak, cap, apply_relu):
    """``y`` (C, M) in place; items are (channel, block)."""
    n_blocks = -(-y.shape[1] // _BLOCK)
    for item in numba.prange(y.shape[0] * n_blocks):
        c, b = item // n_blocks, item % n_blocks
        _bias_relu_row(y[c, b * _BLOCK:(b + 1) * _BLOCK], bias[c], leak, cap, apply_relu)


@numba.njit(fastmath=True, cache=True)
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


@numba.njit(cache=True)
def _row_sum(dy, y, leak, cap, apply_relu, dx, start, stop):
    """float64 sum of ``dy[start:stop]`` (or its rectifier gradient, written
    to ``dx``) in runs of ``_SUM_RUN``: each run is summed in the array's
    dtype (each SIMD lane adds a few dozen values), the runs in float64, so
    float32 sums over a million values keep ~1e-7 relative accuracy."""
    acc = 0.0
    for a in range(start, stop, _SUM_RUN):
        b = min(stop, a + _SUM_RUN)
        acc += _masked_sum(dy[a:b], y[a:b], leak, cap, apply_relu, dx[a:b])
    return acc


@numba.njit(parallel=True, cache=True)
def _bias_grad_parallel(dy, y, leak, cap, apply_relu, dx, db):
    """``db[c] = sum(dx[c])`` for (C, M) arrays; with ``apply_relu`` dx is the
    rectifier's gradient (written to ``dx``), otherwise ``dy`` itself."""
    n_channels, size = dy.shape
    n_blocks = -(-size // _BLOCK)
    partial = np.empty(n_channels * n_blocks, dtype=np.float64)
    for item in numba.prange(n_channels * n_blocks):
        c, b = item // n_blocks, item % n_blocks
        partial[item] = _row_sum(dy[c], y[c], leak, cap, apply_relu, dx[c],
                                 b * _BLOCK, min(size, (b + 1) * _BLOCK))
    # A plain loop: under parallel=True an array ``.sum()`` would become a
    # parallel region of its own, launched once per channel.
    for c in range(n_channels):
        total = 0.0
        for b in range(n_blocks):
            total += partial[c * n_blocks + b]
        db[c] = total


# Not a compilation of the loop above: summing a channel in one run, as
# this does, rounds differently from adding per-block partial sums, and
# one-thread results are kept as they were.
@numba.njit(cache=True)
def _bias_grad_serial(dy, y, leak, cap, apply_relu, dx, db):
    for c in range(dy.shape[0]):
        db[c] = _row_sum(dy[c], y[c], leak, cap, apply_relu, dx[c], 0, dy.shape[1])


# Looked up once: np.finfo costs microseconds per call, a batch-1 Fc's budget.
_LARGEST = {np.dtype(t): np.finfo(t).max for t in (np.float32, np.float64)}


def _rectifier_scalars(leak_slope, clipping, dtype):
    """``(leak, cap)`` in the array's dtype, so float32 math stays float32.

    No clipping is a cap at the largest finite value, not inf: fastmath lets
    LLVM assume that no value is infinite."""
    cap = clipping if clipping > 0 else _LARGEST[np.dtype(dtype)]
    return dtype.type(leak_slope), dtype.type(cap)


def _channel_rows(a, name):
    """``a`` (C, ...) as a (C, M) view; it must already be C-contiguous."""
    if a.ndim not in (2, 4):
        raise ValueError(f"{name} must be (C, N) or (C, H, W, N), got {a.shape}")
    if not a.flags.c_contiguous or a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be a C-contiguous float32/float64 array")
    return a.reshape(a.shape[0], -1)


def _rectifier_grad_arrays(dy, y, out):
    """``dy``, the rectifier output ``y`` (of dy's shape and dtype) and ``dx``."""
    dy = as_float_array(dy, "dy")
    y = np.ascontiguousarray(y, dtype=dy.dtype)
    if y.shape != dy.shape:
        raise ValueError(f"dy {dy.shape} and y {y.shape} differ in shape")
    return dy, y, check_out(out, dy.shape, dy.dtype)


def relu_forward(x, leak_slope=0.0, clipping=0.0, out=None):
    """N2D2 Rectifier of any-shape ``x``; ``out`` may be ``x`` (in place)."""
    x = as_float_array(x, "x")
    y = check_out(out, x.shape, x.dtype)
    leak, cap = _rectifier_scalars(leak_slope, clipping, x.dtype)
    run = _relu_forward.pick(use_parallel(x.size))
    run(x.reshape(-1), leak, cap, y.reshape(-1))
    return y


def relu_backward(dy, y, leak_slope=0.0, clipping=0.0, out=None):
    """Rectifier gradient from its **output** ``y``: ``dx = dy * d``.

    ``d`` is 1 where ``y > 0`` (and ``y < clipping`` when ``clipping > 0``),
    0 where the output sits at the clip, ``leak_slope`` where ``y <= 0``.
    ``out`` may be ``dy`` (in place).
    """
    dy, y, dx = _rectifier_grad_arrays(dy, y, out)
    leak, cap = _rectifier_scalars(leak_slope, clipping, dy.dtype)
    run = _relu_backward.pick(use_parallel(dy.size))
    run(dy.reshape(-1), y.reshape(-1), leak, cap, dx.reshape(-1))
    return dx


def _add_bias(y, bias, leak_slope, clipping, apply_relu):
    rows = _channel_rows(y, "y")
    bias = np.ascontiguousarray(bias, dtype=y.dtype).reshape(-1)
    if bias.shape[0] != y.shape[0]:
        raise ValueError(f"bias has {bias.shape[0]} values for {y.shape[0]} channels")
    leak, cap = _rectifier_scalars(leak_slope, clipping, y.dtype)
    _bias_relu.pick(use_parallel(y.size))(rows, bias, leak, cap, apply_relu)
    return y


def add_bias_channels(y, bias):
    """In place: ``y[c] += bias[c]`` for C-contiguous ``y`` (C, H, W, N) or (C, N)."""
    return _add_bias(y, bias, 0.0, 0.0, False)


def add_bias_relu_channels(y, bias, leak_slope=0.0, clipping=0.0):
    """In place, one pass: ``y = relu_forward(y + bias[c])`` (conv/fc epilogue)."""
    return _add_bias(y, bias, leak_slope, clipping, True)


def bias_grad_channels(dy):
    """Per-channel sum of ``dy`` (C, H, W, N) or (C, N): the bias gradient (C,)."""
    dy = as_float_array(dy, "dy")
    rows = _channel_rows(dy, "dy")
    db = np.empty(dy.shape[0], dtype=dy.dtype)
    leak, cap = _rectifier_scalars(0.0, 0.0, dy.dtype)
    run = _bias_grad_parallel if use_parallel(dy.size) else _bias_grad_serial
    run(rows, rows, leak, cap, False, rows, db)
    return db


def relu_backward_bias_grad(dy, y, leak_slope=0.0, clipping=0.0, out=None):
    """One pass: ``dx = relu_backward(dy, y, ...)`` and ``db = bias_grad_channels(dx)``.

    ``y`` is the rectifier output (C, [H, W,] N); returns ``(dx, db)``.
    ``out`` may be ``dy`` (in place).
    """
    dy, y, dx = _rectifier_grad_arrays(dy, y, out)
    db = np.empty(dy.shape[0], dtype=dy.dtype)
    leak, cap = _rectifier_scalars(leak_slope, clipping, dy.dtype)
    run = _bias_grad_parallel if use_parallel(dy.size) else _bias_grad_serial
    run(_channel_rows(dy, "dy"), _channel_rows(y, "y"), leak, cap, True,
        _channel_rows(dx, "out"), db)
    return dx, db
