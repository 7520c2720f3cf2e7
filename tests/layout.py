"""Tests' layout helper: n2prune's activations are (C, H, W, N), the batch innermost.

Many tests draw their random inputs as (C, N, H, W), one sample plane per
``[c, n]`` (as they did before the layout changed, so the same seeds give the
same values); ``chwn`` hands them to n2prune without changing any value.
"""

import numpy as np


def chwn(x):
    """A (C, N, H, W) array as a C-contiguous (C, H, W, N) one."""
    return np.ascontiguousarray(np.asarray(x).transpose(0, 2, 3, 1))
