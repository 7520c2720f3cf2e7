"""The data path's last step: a batch of cached images to the network's layout.

``cached`` is (N, H, W, C), uint8 or float32; ``indices`` pick the batch's
rows. The result is float32 CNHW (C, B, H, W), each value divided by
``divisor`` (255 for uint8 images: a division, not a multiplication by
1/255, so values stay bit-identical to numpy's ``x / 255``). One pass
replaces numpy's gather, cast, divide and transpose, each a copy of the batch.
"""

import numba
import numpy as np


@numba.njit(parallel=True, cache=True)
def _gather_cnhw(cached, indices, divisor, out):
    for b in numba.prange(indices.shape[0]):
        image = cached[indices[b]]
        for c in range(image.shape[2]):
            plane = out[c, b]
            for y in range(image.shape[0]):
                for x in range(image.shape[1]):
                    plane[y, x] = np.float32(image[y, x, c]) / divisor


def gather_batch_cnhw(cached, indices, divisor):
    """float32 (C, B, H, W) from rows ``indices`` of ``cached`` (N, H, W, C), over ``divisor``."""
    n, height, width, channels = cached.shape
    indices = np.asarray(indices, dtype=np.intp)
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise IndexError(f"batch indices outside 0..{n - 1}")
    out = np.empty((channels, len(indices), height, width), np.float32)
    _gather_cnhw(np.ascontiguousarray(cached), indices, np.float32(divisor), out)
    return out
