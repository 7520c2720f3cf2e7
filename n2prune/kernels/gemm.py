"""Dense GEMM through numpy's BLAS, so cells never call ``np.dot`` directly.

The transposed variants pass a transposed *view* to ``np.matmul``; numpy
hands it to BLAS as a transpose flag, so no copy of the operand is made.
"""

import numpy as np


def matmul(a, b, out=None):
    """``a @ b`` for 2-D ``a`` (m, k) and ``b`` (k, n); ``out`` (m, n) optional."""
    return np.matmul(a, b, out=out)


def matmul_tn(a, b, out=None):
    """``a.T @ b`` for ``a`` (k, m) and ``b`` (k, n), e.g. ``dX = W.T @ dY``."""
    return np.matmul(a.T, b, out=out)


def matmul_nt(a, b, out=None):
    """``a @ b.T`` for ``a`` (m, k) and ``b`` (n, k), e.g. ``dW = dY @ cols.T``."""
    return np.matmul(a, b.T, out=out)
