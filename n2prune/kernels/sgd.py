"""N2D2's SGD step in one pass, over every element or only listed positions.

Per element, in the array's precision and in numpy's order of operations
(no fastmath, so no fused multiply-add changes the rounding)::

    v = momentum * v + coef * g + alpha * w
    w = clamp(w + v, lo, hi)

``sgd_step_at`` touches only the flat ``positions`` (the unpruned weights
of a ``HardZero`` cell on the skip kernels): the rest of ``w`` and ``v``
is left as it is.
"""

import numba
import numpy as np

from n2prune.kernels.im2col import use_parallel

_BLOCK = 16384


@numba.njit(cache=True, inline="always")
def _one(w, v, g, j, coef, momentum, alpha, lo, hi):
    vj = momentum * v[j] + coef * g[j] + alpha * w[j]
    v[j] = vj
    w[j] = min(max(w[j] + vj, lo), hi)


@numba.njit(cache=True)
def _step_range(w, v, g, first, last, coef, momentum, alpha, lo, hi):
    for j in range(first, last):
        _one(w, v, g, j, coef, momentum, alpha, lo, hi)


@numba.njit(parallel=True, cache=True)
def _step_parallel(w, v, g, coef, momentum, alpha, lo, hi):
    size = w.shape[0]
    for b in numba.prange(-(-size // _BLOCK)):
        _step_range(w, v, g, b * _BLOCK, min(size, (b + 1) * _BLOCK), coef, momentum, alpha,
                    lo, hi)


@numba.njit(cache=True)
def _step_at(w, v, g, positions, coef, momentum, alpha, lo, hi):
    for p in range(positions.shape[0]):
        _one(w, v, g, positions[p], coef, momentum, alpha, lo, hi)


def _scalars(w, coef, momentum, alpha, lo, hi):
    kind = w.dtype.type
    return (kind(coef), kind(momentum), kind(alpha),
            kind(-np.inf if lo is None else lo), kind(np.inf if hi is None else hi))


def _flat(name, a, size, dtype):
    if a.dtype != dtype or a.size != size or not a.flags.c_contiguous:
        raise ValueError(f"{name} must be a C-contiguous {dtype} array of {size} elements")
    return a.reshape(-1)


def sgd_step(w, v, g, coef, momentum, alpha, lo=None, hi=None):
    """The step above on every element of ``w``, ``v`` (in place) from ``g``."""
    w_flat = _flat("w", w, w.size, w.dtype)
    v_flat, g_flat = _flat("v", v, w.size, w.dtype), _flat("g", g, w.size, w.dtype)
    scalars = _scalars(w, coef, momentum, alpha, lo, hi)
    if use_parallel(w.size):
        _step_parallel(w_flat, v_flat, g_flat, *scalars)
    else:
        _step_range(w_flat, v_flat, g_flat, 0, w.size, *scalars)


def sgd_step_at(w, v, g, positions, coef, momentum, alpha, lo=None, hi=None):
    """The step above only at flat ``positions`` (int32/int64) of ``w``, ``v``."""
    w_flat = _flat("w", w, w.size, w.dtype)
    v_flat, g_flat = _flat("v", v, w.size, w.dtype), _flat("g", g, w.size, w.dtype)
    _step_at(w_flat, v_flat, g_flat, positions, *_scalars(w, coef, momentum, alpha, lo, hi))
