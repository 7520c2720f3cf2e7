"""Mask methods: scores and the default mask -> the new mask, the one seam of pruning.

As ``torch.nn.utils.prune``'s ``compute_mask``, every method is an object
with ``compute_mask(scores, default_mask, target) -> new mask``: ``scores``
(float64, the weights' shape, higher = keep) come from the criterion,
``default_mask`` is the tensor's current mask and ``target`` the fraction
the schedule asks for. A mask is a uint8 array of 0 (pruned) and 1 (kept)
with the weights' shape, read in flat (C) order; a method never modifies
its inputs.

N2D2's pruning fillers (``PRUNING_FILLERS``, the ``QWeight.PruningFiller``
names, built by ``build_method``) follow ``PruneQuantizer_Frame_Kernels.cpp``:
``iter_nonstruct`` (scores |W|) and ``random_fill``. ``PatternMask`` serves
every ``QWeight.Pattern``; ``LockedMask`` is ``QWeight.FixSparsity``;
``GivenMask`` installs masks read from files or checkpoints.
"""

import math

import numpy as np

from n2prune.errors import UserError
from n2prune.prune import patterns
from n2prune.registry import Registry, signature_parameters

# N2D2 counts Delta steps in an ``unsigned int``: past this the loop wraps around forever.
MAX_STEP = 2**32 - 1

PRUNING_FILLERS = Registry("QWeight.PruningFiller")


class UnreachableThreshold(UserError, ValueError):
    """A pruning target N2D2's loop would never reach (it would hang)."""


def iter_nonstruct(weights, threshold, delta):
    """N2D2's IterNonStruct: mask 0 where ``|W| <= j * delta`` for the smallest j reaching ``threshold``.

    ``threshold`` is the fraction to prune (the quantizer's current target).

    ``delta`` is an absolute magnitude step; the pruned fraction is at least
    ``threshold`` and overshoots to the next multiple of ``delta``. Exact
    zeros count toward it. The mask is rebuilt from the weights alone, so a
    weight that grew comes back. As in N2D2, j starts at 1 whenever
    ``threshold > 0`` (the fraction is tested only after the first step), and
    ``threshold == 0`` gives j = 0: exactly the zero weights are masked.

    Same float32 arithmetic as N2D2 (``(float)count / size < threshold``,
    ``delta * (float)j``), but found by sorting once and two bisections
    instead of recounting for every j. Raises ``UnreachableThreshold`` where
    N2D2 would loop forever (threshold > 1, Delta too small or 0, NaN).
    """
    magnitudes = np.abs(np.asarray(weights))
    limit = _step_limit(np.sort(magnitudes, axis=None), threshold, delta)
    # not (|w| <= limit), rather than |w| > limit, so a NaN weight stays kept as in N2D2.
    return np.logical_not(magnitudes <= limit).astype(np.uint8)


def _step_limit(sorted_magnitudes, threshold, delta):
    """The float32 ``delta * j`` N2D2's loop stops at, for the flat sorted |W|."""
    size, threshold, delta = sorted_magnitudes.size, np.float32(threshold), np.float32(delta)
    if threshold > 1:
        raise UnreachableThreshold(f"threshold {threshold:g} above 1 can never be reached")
    if size == 0 or not threshold > 0:
        return np.float32(0)
    # Smallest count whose float32 fraction reaches the threshold (count = size always does).
    needed = bisect_first(1, size, lambda c: np.float32(c) / np.float32(size) >= threshold)
    target = sorted_magnitudes[needed - 1]  # the needed-th smallest |W| must be <= limit
    if not delta * np.float32(MAX_STEP) >= target:
        raise UnreachableThreshold(
            f"Delta={delta:g} cannot prune {threshold:g} of these weights: that needs "
            f"|W| <= {target:g}" + (" but only exact zeros are ever pruned" if delta == 0 else ""))
    # delta * float(j) is non-decreasing in j, so bisection finds N2D2's j exactly.
    step = bisect_first(1, MAX_STEP, lambda j: delta * np.float32(j) >= target)
    return delta * np.float32(step)


def bisect_first(low, high, reached):
    """Smallest integer in [low, high] where the non-decreasing ``reached`` is true (true at high)."""
    while low < high:
        middle = (low + high) // 2
        if reached(middle):
            high = middle
        else:
            low = middle + 1
    return low


def random_fill(mask, threshold, rng):
    """N2D2's Random: add zeros at random until ``ceil(threshold * N)`` entries are pruned.

    Cumulative: existing zeros count and are never undone; the weights play
    no part. Each draw ``i`` is uniform over the *closed* range [0, N]
    (N2D2's ``Random::randUniform(0, N)``); from there it walks forward to the
    first unpruned entry and prunes it, or draws again if it ran off the end.
    This favours entries that follow pruned runs, as N2D2 does. Returns a new
    uint8 mask; ``rng`` is a ``numpy.random.Generator``.
    """
    if np.float32(threshold) > 1:
        raise UnreachableThreshold(f"threshold {threshold:g} above 1 can never be reached")
    flat = np.array(mask, dtype=np.uint8).ravel()
    size = flat.size
    # N2D2: (int)std::ceil(threshold * masks.size()) in float32.
    wanted = math.ceil(np.float32(threshold) * np.float32(size))
    to_add = max(0, wanted - int(size - np.count_nonzero(flat)))
    next_kept = _NextKept(flat)
    while to_add > 0:
        for start in rng.integers(0, size + 1, size=to_add).tolist():
            i = next_kept.find(start)
            if i < size:
                flat[i] = 0
                next_kept.prune(i)
                to_add -= 1
    return flat.reshape(np.shape(mask))


class _NextKept:
    """First kept index >= i in a 0/1 mask, with path compression.

    The same answer as N2D2's ``while (masks(i) == 0) ++i`` walk, without
    re-walking the same pruned runs on every draw (a "next free slot"
    union-find). ``find`` returns N when the walk runs off the end.
    """

    def __init__(self, flat):
        index = np.arange(flat.size + 1)
        index[:-1] += flat == 0  # a pruned entry points to its right neighbour
        self.parent = index.tolist()

    def find(self, i):
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def prune(self, i):
        self.parent[i] = i + 1


def build_method(cls, **available):
    """An instance of mask method ``cls`` given what the quantizer has (``delta``,
    ``rng``): each method's constructor names only the parameters it uses."""
    return cls(**{name: available[name] for name in signature_parameters(cls)})


class MaskMethod:
    """What every mask method shares: ``compute_mask(scores, default_mask, target)``
    (each subclass's) and ``composes``.

    ``composes``: under a monotone schedule (the ramps) the quantizer scores
    pruned weights 0, so the new mask stays within the default mask. N2D2's
    fillers keep their own rule (IterNonStruct rescoring the dense weights,
    Random cumulative through ``default_mask``).
    """

    composes = False



@PRUNING_FILLERS.register("None")
class KeepMask(MaskMethod):
    """N2D2's None: the default mask as it is."""

    def compute_mask(self, scores, default_mask, target):
        return default_mask


@PRUNING_FILLERS.register("Random")
class RandomFill(MaskMethod):
    """N2D2's Random (``random_fill``), cumulative on the default mask; ``rng`` draws."""

    def __init__(self, rng):
        self.rng = rng

    def compute_mask(self, scores, default_mask, target):
        return random_fill(default_mask, target, self.rng)


@PRUNING_FILLERS.register("IterNonStruct")
class IterNonStruct(MaskMethod):
    """N2D2's IterNonStruct (``iter_nonstruct``) on scores |W|, in magnitude steps ``delta``."""

    def __init__(self, delta):
        self.delta = delta

    def compute_mask(self, scores, default_mask, target):
        return iter_nonstruct(scores, target, self.delta)


class PatternMask(MaskMethod):
    """``QWeight.Pattern``: ``patterns.make_mask(pattern, scores, target, params)``.

    A fixed-ratio pattern (N:M: N and M fix the density) applies once the
    target is above 0, so a ramp's start keeps every weight.
    """

    composes = True

    def __init__(self, pattern, params):
        self.pattern, self.params = patterns.PATTERNS.lookup(pattern), params

    def compute_mask(self, scores, default_mask, target):
        if self.pattern.fixed_ratio and not target > 0:
            return np.ones(scores.shape, dtype=np.uint8)
        return self.pattern.make(scores, float(target), self.params)


class GivenMask(MaskMethod):
    """A mask decided elsewhere (read from files or a checkpoint, as torch's
    ``custom_from_mask``, or a channel group's rows); it replaces the default mask
    (N2D2's import does not combine them)."""

    def __init__(self, mask):
        self.mask = mask

    def compute_mask(self, scores, default_mask, target):
        return self.mask


def checked_masks(masks, weights):
    """Given masks as uint8 arrays of their tensors' shapes (flat order allowed);
    a ValueError when one has the wrong size or values other than 0 and 1."""
    if len(masks) != len(weights):
        raise ValueError(f"{len(masks)} masks for {len(weights)} weight tensors")
    checked = []
    for k, (mask, w) in enumerate(zip(masks, weights)):
        mask = np.asarray(mask)
        if mask.size != w.size or not np.isin(mask, (0, 1)).all():
            raise ValueError(f"mask {k} must hold {w.size} values 0 or 1 (weights {w.shape})")
        checked.append(mask.astype(np.uint8).reshape(w.shape))
    return checked


class LockedMask(MaskMethod):
    """``QWeight.FixSparsity``: keep the weights that are not exactly 0 (scores |W|).

    Moffett's ``fix_sparsity`` and INC's ``pattern_lock`` freeze the zeros
    of the loaded weights; the quantizer computes this mask once.
    """

    def compute_mask(self, scores, default_mask, target):
        return (np.asarray(scores) != 0).astype(np.uint8)
