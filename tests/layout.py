"""Tests' layout helpers: n2prune's activations are (C, H, W, N), the batch innermost.

Several references are written on (C, N, H, W) arrays (one sample plane per
``[c, n]``); these convert between the two without changing any value.
"""

import numpy as np


def chwn(x):
    """A (C, N, H, W) array as a C-contiguous (C, H, W, N) one."""
    return np.ascontiguousarray(np.asarray(x).transpose(0, 2, 3, 1))


def cnhw(x):
    """A (C, H, W, N) array as a C-contiguous (C, N, H, W) one."""
    return np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2))
