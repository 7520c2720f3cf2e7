"""The data path's last step: a batch of cached images to the network's layout.

``cached`` is (N, H, W, C), uint8 or float32; ``indices`` pick the batch's
rows. The result is float32 (C, H, W, B), the batch innermost, each value
divided by ``divisor`` (255 for uint8 images: a division, not a
multiplication by 1/255, so values stay bit-identical to numpy's
``x / 255``). One pass replaces numpy's gather, cast, divide and
transpose, each a copy of the batch.
"""

import numba
import numpy as np


@numba.njit(parallel=True, cache=True)
def _gather_chwn_table(cached, indices, table, out):
    channels, height, width, batch = out.shape
    for item in numba.prange(channels * height):
        c, y = item // height, item % height
        row = out[c, y]
        for x in range(width):
            dst = row[x]
            for b in range(batch):
                dst[b] = table[cached[indices[b], y, x, c]]


def gather_batch(cached, indices, divisor):
    """float32 (C, H, W, B) from rows ``indices`` of ``cached`` (N, H, W, C), over ``divisor``."""
    n, height, width, channels = cached.shape
    indices = np.asarray(indices, dtype=np.intp)
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise IndexError(f"batch indices outside 0..{n - 1}")
    out = np.empty((channels, height, width, len(indices)), np.float32)
    if cached.dtype != np.uint8:  # float caches (transformed data) are rare: numpy
        batch = np.asarray(cached[indices], dtype=np.float32) / np.float32(divisor)
        out[...] = batch.transpose(3, 1, 2, 0)
        return out
    # The 256 quotients, computed as the division would: a load, not a divide.
    table = np.arange(256, dtype=np.float32) / np.float32(divisor)
    _gather_chwn_table(np.ascontiguousarray(cached), indices, table, out)
    return out
