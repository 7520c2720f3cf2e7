"""TI's PrunerModule schedules, epoch by epoch (edgeai-torchmodelopt v1, ``xmodelopt/pruning``).

TI counts ``train()`` calls: the e-th call (epoch e, 1-based) computes the
masks epoch e trains with; before the first call the model is dense. With
E = ``total_epochs``, e0 = ``init_train_ep``, r = ``pruning_ratio`` and K
the knee:

- knee ``"ti"`` (TI v1): K = ⌊2(E − e0)/3⌋, e0 not added back (E=30, e0=5:
  16). ``"v2"``, TI's own later fix: K = min(E − 1, max(e0 + 1, e0 + ⌊2(E − e0)/3⌋)) (21).
- blend: r pruned from epoch e0 + 1, the pruned entries scaled by
  α = |e − K|^p / (K − e0)^p while e <= K, 0 after (TI's parabola for p = 2).
- sigmoid: r pruned from epoch e0 + 1, the pruned entries scaled by TI's
  hardsigmoid of their offset score (``sigmoid_values``); no knee.
- incremental: hard masks pruning r·(e − e0)/(K − e0), not clamped: past K it
  grows beyond r (``clamp=True`` stops it at r).

Each class is a schedule object for ``PruneCell`` (``schedules``' protocol,
fire index k = the epoch): ``target(k)`` is the fraction pruned during epoch
k, ``soft_mask`` the values of the pruned entries. Users may subclass
``TISchedule``, as TI lets them write their own pruning class.
"""

import numpy as np

from n2prune.prune import criteria
from n2prune.prune.schedules import ScheduleError


def knee_v1(total_epochs, init_train_ep):
    """TI v1's knee ⌊2(E − e0)/3⌋ (it forgets to add e0 back: 16 for E=30, e0=5)."""
    return (total_epochs - init_train_ep) * 2 // 3


def knee_v2(total_epochs, init_train_ep):
    """TI v2's knee: e0 + ⌊2(E − e0)/3⌋ kept within [e0 + 1, E − 1] (21 for E=30, e0=5)."""
    return min(total_epochs - 1, max(init_train_ep + 1, knee_v1(total_epochs, init_train_ep)
                                     + init_train_ep))


KNEES = {"ti": knee_v1, "v2": knee_v2}


class TISchedule:
    """One cell's TI schedule: ``ratio`` r, ``total_epochs`` E, ``init_train_ep`` e0,
    ``knee`` K (an epoch), ``p`` (blend's power), ``clamp`` (incremental stops at r).

    Subclasses give ``ratio_at(e)`` (default: r after the warm-up) and
    ``values(e, mask, scores)`` (float32 mask values, None when hard).
    """

    monotone, soft = False, True

    def __init__(self, ratio, total_epochs, init_train_ep, knee, p=2.0, clamp=False):
        self.ratio, self.total_epochs, self.init_train_ep = float(ratio), total_epochs, init_train_ep
        self.knee, self.p, self.clamp, self.start = knee, float(p), bool(clamp), 0.0

    def ratio_at(self, epoch):
        return 0.0 if epoch <= self.init_train_ep else self.ratio

    def values(self, epoch, mask, scores):
        return None

    # -- PruneCell's schedule protocol (k = epoch) -------------------------
    def target(self, k):
        return self.ratio_at(k)

    def fires_after(self, k):
        return True  # every train() call computes the masks again, as TI

    def restarted(self, target, k):
        return self, k

    def soft_mask(self, k, mask, scores):
        if k <= self.init_train_ep or mask.all():
            return None
        return self.values(k, mask, scores)


class Blend(TISchedule):
    """TI's BlendPruningParametrization: pruned entries scaled by ``blend_alpha``."""

    def values(self, epoch, mask, scores):
        alpha = blend_alpha(epoch, self.init_train_ep, self.knee, self.p)
        if alpha == 0:
            return None
        return mask + np.float32(alpha) * (1 - mask).astype(np.float32)


class Sigmoid(TISchedule):
    """TI's SigmoidPruningParametrization: pruned entries scaled by ``sigmoid_values``."""

    def values(self, epoch, mask, scores):
        values = sigmoid_values(scores(), mask, epoch, self.init_train_ep, self.total_epochs)
        return None if not values[mask == 0].any() else values


class Incremental(TISchedule):
    """TI's IncrementalPruningParametrization: hard masks, ``incremental_ratio``."""

    soft = False

    def ratio_at(self, epoch):
        return incremental_ratio(epoch, self.ratio, self.init_train_ep, self.knee, self.clamp)


PRUNING_CLASSES = {"blend": Blend, "sigmoid": Sigmoid, "incremental": Incremental}


def blend_alpha(epoch, init_train_ep, knee, p=2.0):
    """Value of the pruned entries in epoch ``epoch``: 1 while e <= e0, |e − K|^p/(K − e0)^p
    while e0 < e <= K, 0 after K."""
    if epoch <= init_train_ep:
        return 1.0
    if epoch > knee:
        return 0.0
    return abs(epoch - knee) ** p / (knee - init_train_ep) ** p


def incremental_ratio(epoch, ratio, init_train_ep, knee, clamp=False):
    """Fraction pruned in epoch ``epoch``: 0 while e <= e0, then r·(e − e0)/(K − e0).

    TI does not clamp it (``clamp`` stops it at r). Raises ScheduleError
    where TI fails: K <= e0 (a division by zero or a negative ratio) or a
    ratio reaching 1 (TI's top-k of nothing).
    """
    if epoch <= init_train_ep:
        return 0.0
    if knee <= init_train_ep:
        raise ScheduleError(f"TI's incremental ramp divides by knee - init_train_ep = "
                            f"{knee} - {init_train_ep} <= 0 (TI fails at epoch "
                            f"{init_train_ep + 1}); use knee='v2'")
    value = ratio * (epoch - init_train_ep) / (knee - init_train_ep)
    if clamp:
        return min(value, ratio)
    if value >= 1:
        raise ScheduleError(f"TI's unclamped incremental ramp reaches {value:.3g} >= 1 at epoch "
                            f"{epoch} (TI fails there); use clamp_incremental=True")
    return value


def sigmoid_values(scores, mask, epoch, init_train_ep, total_epochs):
    """TI's sigmoid soft mask (float32, ``scores``' shape): 1 for kept entries (``mask`` 1).

    The cut-off t is halfway between the lowest kept and the highest pruned
    score; with σ = (e − e0)/E, x = (s − t)·σ/m + 3 with m the largest
    |s − t| after trimming 0.01 % of the values at each end (TI's
    ``extrema``), then x ± 8σ (minus below 3, plus from 3), and the value is
    hardsigmoid(x) = clip((x + 3)/6, 0, 1). Pruned entries reach 0 around
    σ ≈ 3/4.
    """
    scores = np.asarray(scores, dtype=np.float64)
    cutoff = (scores[mask == 1].min() + scores[mask == 0].max()) / 2
    offset = scores - cutoff
    spread = (epoch - init_train_ep) / total_epochs
    low, high = extrema(offset, 0.01)
    x = offset * spread / max(abs(low), abs(high)) + 3.0
    x = x + np.where(x < 3.0, -8.0 * spread, 8.0 * spread)
    return np.clip((x + 3.0) / 6.0, 0.0, 1.0).astype(np.float32)


def extrema(values, shrink_percent):
    """TI's ``extrema(range_shrink_percentile)``: min and max of ``values`` after dropping
    the histogram bins (256 over the range) that hold under ``shrink_percent`` % of the
    values at each end."""
    low, high = float(values.min()), float(values.max())
    if high == low:
        return low, high
    scale = 255.0 / (high - low)
    bins = np.bincount(np.rint((values.reshape(-1) - low) * scale).astype(np.int64))
    percent = bins * 100.0 / bins.sum()
    left = np.flatnonzero(np.cumsum(percent) < shrink_percent)
    right = np.flatnonzero(np.cumsum(percent[::-1]) < shrink_percent)
    first = left[-1] if left.size else 0
    last = len(bins) - 1 - (right[-1] if right.size else 0)
    return max(low, first / scale + low), min(high, last / scale + low)


# -- what TI scores, and its global ratios (computed once, when the model is wrapped) --

def ti_scores(w, out_scale, channel):
    """TI's ``net_weights`` of one Conv weight tensor (float64, ``w``'s shape).

    |w'| with w' folded with the next BatchNorm (``out_scale`` = γ/√(var+ε),
    or None without one), as ``get_bn_adjusted_weight``; for channel pruning
    the distance of each |w'[o]| to the median filter (criterion ``FPGMMedian``).
    """
    context = criteria.ScoreContext(out_scale=out_scale)
    if channel:
        return criteria.score("FPGMMedian", w, context)
    if out_scale is None:
        return np.abs(np.asarray(w, dtype=np.float64))
    return criteria.score("BNFolded", w, context)


def global_ratios(weights, ratio, cap=0.7):
    """TI v1's ``get_layer_pruning_ratio``: one ratio per Conv (weights in network order).

    The ⌊r·n⌋ smallest |w| of all the tensors together (None entries, depthwise
    convs, take no part and get 0) are counted per tensor, walking the tensors
    in order. TI counts with an off-by-one: each boundary is the position of
    the first index past the tensor minus one, and a tensor before any such
    index gets all of them; a ratio >= ``cap`` is cut to ``cap``.
    """
    pooled = [w.reshape(-1) for w in weights if w is not None]
    values = np.abs(np.concatenate(pooled)) if pooled else np.zeros(0)
    chosen = np.sort(np.argsort(values, kind="stable")[:int(ratio * values.size)])
    ratios, total, done = [], 0, 0
    for w in weights:
        if w is None:
            ratios.append(0.0)
            continue
        total += w.size
        position = int(np.searchsorted(chosen, total))
        upto = position - 1 if position < chosen.size else chosen.size
        upto = chosen.size if upto < 0 else upto
        ratios.append(min((upto - done) / w.size, cap))
        done = upto
    return ratios


def global_channel_ratios(scores, ratio, cap=0.8):
    """TI v1's ``get_layer_pruning_ratio_channel`` on each Conv's |w'| (``scores``, in order):
    each tensor's values z-scored (unbiased std), the ⌊r·n⌋ smallest |z| of all counted per
    tensor as ``global_ratios`` does, each ratio capped at ``cap``."""
    z = [(s - s.mean()) / s.std(ddof=1) for s in scores]
    return global_ratios(z, ratio, cap)
