"""Mask algorithms of N2D2's Prune quantizer ("pruning fillers"), as pure functions.

Each takes the current weights and mask of one tensor and returns the new
0/1 mask (uint8, same shape). Registered by name so that the quantizer looks
them up from ``QWeight.PruningFiller`` and later methods plug in beside them.
"""

import math

import numpy as np

PRUNING_FILLERS = {}


def register_filler(name):
    def decorate(fn):
        PRUNING_FILLERS[name] = fn
        return fn
    return decorate


@register_filler("None")
def keep_mask(weights, mask, threshold, delta, rng):
    """No pruning filler: the mask stays as it is."""
    return mask


def _fraction_reached(count, size, threshold):
    # N2D2 compares (float)count / size < threshold in float32.
    return np.float32(count) / np.float32(size) >= np.float32(threshold)


@register_filler("IterNonStruct")
def iter_nonstruct(weights, mask, threshold, delta, rng=None):
    """N2D2's IterNonStruct: prune |W| <= j*delta for the smallest j reaching ``threshold``.

    As ``update_masks_iter_nonstruct``: j starts at 1 for any threshold > 0
    (the count at j = 0 is never tested), the fraction of pruned weights
    reaches at least ``threshold`` (overshooting to the next multiple of the
    *absolute* step ``delta``), exact zeros count, and the mask is rebuilt
    from scratch, so a weight that grew can come back. ``threshold`` 0 masks
    exactly the zero weights. Computed in float32 like N2D2, but by sorting
    once instead of recounting for every j.
    """
    if threshold > 1:
        raise ValueError(f"threshold {threshold} above 1 can never be reached")
    magnitudes = np.abs(np.asarray(weights, dtype=np.float32)).ravel()
    j = _smallest_step(np.sort(magnitudes), np.float32(threshold), np.float32(delta))
    limit = np.float32(delta) * np.float32(j)
    return (np.abs(np.asarray(weights, dtype=np.float32)) > limit).astype(np.uint8)


def _smallest_step(sorted_magnitudes, threshold, delta):
    size = sorted_magnitudes.size
    if threshold <= 0:
        return 0
    needed = next(c for c in range(int(threshold * size) - 1, size + 1)
                  if c >= 0 and _fraction_reached(c, size, threshold))
    if needed == 0:
        return 1
    target = sorted_magnitudes[needed - 1]  # |W| of the needed-th smallest weight
    if delta <= 0:
        if target > 0:
            raise ValueError(f"Delta=0 cannot prune {threshold:.3g} of the weights: only "
                             "exact zeros would ever be pruned")
        return 1
    j = max(1, math.ceil(float(target) / float(delta)))
    step = np.float32(delta)
    while j > 1 and step * np.float32(j - 1) >= target:  # float32, like N2D2's delta*iter
        j -= 1
    while step * np.float32(j) < target:
        j += 1
    return j


@register_filler("Random")
def random_fill(weights, mask, threshold, delta=None, rng=None):
    """N2D2's Random: add zeros at random until ``ceil(threshold * N)`` are pruned.

    Cumulative (never un-prunes) and blind to the weights. Each draw is
    uniform over the *closed* range [0, N] (N2D2's ``randUniform(0, N)``);
    from there it walks to the next unpruned entry, and draws again if it ran
    off the end, which slightly favours entries after pruned runs.
    """
    flat = np.array(mask, dtype=np.uint8).ravel()
    size = flat.size
    to_add = max(0, math.ceil(np.float32(threshold) * size) - int(size - flat.sum()))
    for _ in range(to_add):
        while True:
            i = int(rng.integers(0, size + 1))
            while i < size and flat[i] == 0:
                i += 1
            if i < size:
                flat[i] = 0
                break
    return flat.reshape(np.shape(mask))
