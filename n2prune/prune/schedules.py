"""Pruning schedules: how much to prune, and when (style.md point 6).

Time model. Masks are recomputed at *fires*. Fire ``k = 0`` is the
initialisation; fires ``k = 1, 2, ...`` happen when the ``clock.StimuliClock``
(N2D2's Scheduler: every ``period`` stimuli after a ``delay``) ticks and the
schedule still has a fire after ``k``; a ramp runs over ``total = K >= 1``
fires. Moffett's ``Prune``: K = floor(sparse_step / frequency); TI's
PrunerModule: one fire per epoch after ``init_train_ep`` warm-up epochs.

``SCHEDULES`` (a ``Registry``) maps ``QWeight.Schedule`` names to schedule
classes built as ``cls(start, final, total, gamma)``; an instance is pure:
``target(k)`` is the pruned fraction after fire ``k``, exactly ``start`` at
``k <= 0``. N2D2's ``Gamma`` steps in float32 (``gamma_steps``); the ramps
are closed forms ``formula(k, total, start, final)`` (``@register_schedule``),
exactly ``final`` for ``k >= total``; TI's ``Blend`` and ``Sigmoid`` prune
``final`` from the first fire on and give soft mask values until the knee.
"""

import functools
import math

import numpy as np

from n2prune.errors import UserError
from n2prune.registry import Registry

SCHEDULES = Registry("QWeight.Schedule")


class ScheduleError(UserError, ValueError):
    """A schedule parameter outside its range (a one-line message naming it)."""


class Gamma:
    """N2D2's Gradual: from ``start``, ``+gamma`` (float32) at each fire up to ``final``.

    The default ``QWeight.Schedule``, driven by ``QWeight.StartThreshold``,
    ``QWeight.GammaThreshold`` and ``QWeight.StepSizeThreshold``. It rescores
    the dense weights at each fire (``monotone`` False), as N2D2. ``total``
    is unused: it fires while its target is below ``final``.
    """

    monotone, soft = False, False

    def __init__(self, start, final, total, gamma):
        self.start, self.final, self.gamma = float(start), float(final), float(gamma)
        self._reached = (0, np.float32(start))  # (k, target): later k step on from here

    def target(self, k):
        if k <= 0:
            return self.start
        done, value = self._reached
        if k < done:
            done, value = 0, np.float32(self.start)
        value = gamma_steps(k - done, value, self.gamma, self.final)
        self._reached = (k, value)
        return float(value)

    def fires_after(self, k):
        """N2D2 raises its threshold (the target) while it is below ``final`` (float32)."""
        return np.float32(self.target(k)) < np.float32(self.final)

    def restarted(self, target, k):
        """``(schedule, k)`` going on from loaded masks pruning ``target``: N2D2 adds
        gamma to the threshold it imported."""
        return Gamma(target, self.final, 0, self.gamma), 0

    def soft_mask(self, k, mask, scores):
        return None


class Ramp:
    """A closed-form ramp ``formula(k, total, start, final)`` over ``total`` fires.

    Zhu & Gupta's ramps (and Moffett's) never revive a pruned weight:
    ``monotone`` asks the quantizer to score pruned weights 0.
    """

    monotone, soft = True, False
    formula = None  # set per registered ramp

    def __init__(self, start, final, total, gamma):
        _check_ramp(total, start, final)
        self.start, self.final, self.total = float(start), float(final), int(total)

    def target(self, k):
        return self.formula(k, self.total, self.start, self.final)

    def fires_after(self, k):
        return k < self.total

    def restarted(self, target, k):
        """A ramp goes on from its own start: loaded masks do not move it."""
        return self, k

    def soft_mask(self, k, mask, scores):
        return None


def register_schedule(name):
    """Decorator: make ``fn(k, total, start, final) -> float`` the ramp ``name``.

    The wrapper (returned, and the registered class's ``formula``) checks the
    arguments and returns exactly ``start`` for ``k <= 0`` and exactly
    ``final`` for ``k >= total``, so ``fn`` only sees progress ``0 < k < total``.
    """
    def decorate(fn):
        @functools.wraps(fn)
        def schedule(k, total, start, final):
            _check_ramp(total, start, final)
            if k <= 0:
                return float(start)
            if k >= total:
                return float(final)
            return float(fn(k, total, float(start), float(final)))
        SCHEDULES.add(name, type(name, (Ramp,), {"formula": staticmethod(schedule),
                                                 "__doc__": fn.__doc__}))
        return schedule
    return decorate


SCHEDULES.add("Gamma", Gamma)


class Frozen:
    """Identity, Static and FixSparsity: one target (``start``), never a fire."""

    monotone, soft = False, False

    def __init__(self, start):
        self.start = float(start)

    def target(self, k):
        return self.start

    def fires_after(self, k):
        return False

    def restarted(self, target, k):
        return Frozen(target), k

    def soft_mask(self, k, mask, scores):
        return None


# -- fraction schedules: fn(k, total, start, final) -------------------------

@register_schedule("OneShot")
def one_shot(k, total, start, final):
    """``start`` at init, ``final`` from the first fire on (prune once; ``total`` unused)."""
    return final


@register_schedule("Linear")
def linear(k, total, start, final):
    """s = start + (final - start)·p, p = k / total (SparseML linear, Torch-Pruning iterative)."""
    return start + (final - start) * (k / total)


@register_schedule("Cubic")
def cubic(k, total, start, final):
    """s = final + (start - final)·(1 - p)³ (Zhu & Gupta AGP, Moffett): fast early, slow late."""
    return final + (start - final) * (1.0 - k / total) ** 3


@register_schedule("Exp")
def exponential(k, total, start, final):
    """s = 1 - (1 - start)·((1 - final)/(1 - start))^p (Intel Neural Compressor's default).

    The density 1 - s shrinks by the same ratio at every fire. ``start == 1``
    (nothing left, no ratio) gives 1 until ``k >= total`` gives ``final``.
    """
    if start == 1.0:
        return 1.0
    return 1.0 - (1.0 - start) * ((1.0 - final) / (1.0 - start)) ** (k / total)


@register_schedule("Cos")
def cosine(k, total, start, final):
    """s = start + (final - start)·(1 - cos(π·p/2)) (Intel Neural Compressor's cos)."""
    return start + (final - start) * (1.0 - math.cos(math.pi * (k / total) / 2.0))


@register_schedule("Cube")
def cube(k, total, start, final):
    """s = start + (final - start)·p³ (Intel Neural Compressor's cube): slow start, fast end.

    Not Zhu & Gupta's cubic, which is its mirror image (``Cubic``).
    """
    return start + (final - start) * (k / total) ** 3


@register_schedule("Incremental")
def incremental(k, total, start, final):
    """TI's incremental: a linear ramp from ``start`` to ``final`` over ``total`` fires.

    TI ramps r_e = r·(e - e0)/(K - e0) and never clamps it, so past the knee
    K the pruned fraction keeps growing beyond r (E=30, e0=5, TI's K=16:
    25/11·r at epoch 30). Here it stops at ``final``, which makes it
    ``Linear`` with ``total`` = fires to the knee (``ti_knee(E, e0) - e0``).
    """
    return start + (final - start) * (k / total)


# -- N2D2's Gradual mode ----------------------------------------------------

def gamma_steps(k, start, gamma, final):
    """N2D2's Gradual threshold after ``k`` fires, a ``numpy.float32`` fraction in [0, 1].

    As N2D2's ``PruneQuantizerCell_Frame::update``: the threshold starts at
    float32(``start``) and each fire, while it is below float32(``final``),
    adds float32(``gamma``) in float32 and caps it at ``final``. The sum is
    iterated, not multiplied, because float32 rounding makes the two differ.
    ``start > final`` stays at ``start`` (N2D2 only raises it). Costs
    min(k, fires to reach ``final``) float32 additions.
    ``Gamma.target`` is this stepping.
    """
    _check_fraction("start", start)
    _check_fraction("final", final)
    if not gamma >= 0:
        raise ScheduleError(f"gamma must be >= 0, got {gamma}")
    _check_count("k", k)
    t, step, cap = np.float32(start), np.float32(gamma), np.float32(final)
    for _ in range(int(k)):
        if not t < cap:
            break
        raised = min(t + step, cap)
        if raised == t:
            break  # gamma is below float32 resolution at t: N2D2 would stay here for ever
        t = raised
    return t


# -- TI's soft masks (PrunerModule, one fire per epoch) ---------------------

def ti_knee(total_epochs, init_train_ep):
    """The epoch (1-based) where TI's soft masks become hard: e0 + floor(2(E - e0)/3).

    TI's code computes floor(2(E - e0)/3) and forgets to add e0 back (E=30,
    e0=5: 16 instead of 21; E=10, e0=5: 3, before its own warm-up ends). Raises ScheduleError
    when the knee is not after e0 (fewer than 2 epochs after the warm-up).
    The ramp runs over ``ti_knee(E, e0) - e0`` fires.
    """
    _check_epochs(total_epochs, init_train_ep)
    knee = init_train_ep + (2 * (total_epochs - init_train_ep)) // 3
    if knee <= init_train_ep:
        raise ScheduleError(f"total_epochs={total_epochs} leaves no epoch to prune after "
                            f"init_train_ep={init_train_ep}; need at least {init_train_ep + 2}")
    return knee


def blend_alpha(k, total):
    """Mask value (in [0, 1]) of the pruned entries after ``k`` fires of TI's blend.

    ``k`` counts fires since the warm-up ended, ``total`` the fires to the
    knee. α = (1 - k/total)²: 1 at k <= 0, a parabola down to exactly 0 at
    k >= total. TI writes it α = (e - K)²/(K - e0)² with e the epoch.
    """
    _check_total(total)
    if k <= 0:
        return 1.0
    if k >= total:
        return 0.0
    return (1.0 - k / total) ** 2


def sigmoid_soft_mask(scores, cutoff, k, total):
    """TI's sigmoid soft mask, cleaned up: a float32 array of values in [0, 1], shaped as ``scores``.

    ``scores`` are importances (e.g. |w|, any real values); entries with
    ``score >= cutoff`` are kept and get 1 at every k. For an entry below
    the cutoff, with progress p = clip(k/total, 0, 1) and its distance
    below the cutoff normalised by the lowest score,
    d = (cutoff - score)/(cutoff - min(scores)) in (0, 1],

        mask = hardsigmoid(3 - 6·p·(1 + d)) = clip(1 - p·(1 + d), 0, 1),

    with hardsigmoid(x) = clip((x + 3)/6, 0, 1). So the mask is 1 at k = 0,
    does not increase with k, is smaller for smaller scores (once p > 0),
    and is exactly 0 for every pruned entry by the knee: the lowest score
    reaches 0 at p = 1/2, scores just below the cutoff at p = 1.
    TI's own form, x = (|s| - t)·σ_e/max|s| + 3 ± 8·σ_e with
    σ_e = (e - e0)/E, reaches 0 near 3/4 of the epochs, not at its knee, and
    references an undefined tensor with n2m.
    """
    _check_total(total)
    scores = np.asarray(scores, dtype=np.float64)
    below = scores < cutoff
    mask = np.ones(scores.shape, dtype=np.float32)
    if not below.any():
        return mask
    p = min(max(k / total, 0.0), 1.0)
    d = (cutoff - scores[below]) / (cutoff - scores.min())
    x = 3.0 - 6.0 * p * (1.0 + d)
    mask[below] = np.clip((x + 3.0) / 6.0, 0.0, 1.0)
    return mask


class Blend:
    """TI's blend: ``final`` pruned from the first fire on (0 in the warm-up, whatever
    ``start``); until the knee (``total`` fires) a pruned weight is scaled by
    α = ``blend_alpha(k, total)`` instead of 0. Rescores the dense weights."""

    monotone, soft = False, True

    def __init__(self, start, final, total, gamma):
        _check_total(total)
        _check_fraction("final", final)
        self.start, self.final, self.total = 0.0, float(final), int(total)

    def target(self, k):
        return 0.0 if k <= 0 else self.final

    def fires_after(self, k):
        return k < self.total

    def restarted(self, target, k):
        return self, k

    def soft_mask(self, k, mask, scores):
        """float32 mask values after fire ``k`` (``mask`` the hard one), None from the knee."""
        if k >= self.total:
            return None
        alpha = np.float32(blend_alpha(k, self.total))
        return mask + alpha * (1 - mask).astype(np.float32)


class Sigmoid(Blend):
    """TI's sigmoid: as ``Blend``, the pruned weights scaled by ``sigmoid_soft_mask``."""

    def soft_mask(self, k, mask, scores):
        """``scores()`` gives the criterion's scores of the tensor."""
        if k >= self.total:
            return None
        values = scores()
        if mask.all():
            return np.ones(mask.shape, dtype=np.float32)
        # Every pruned entry strictly below the score cut-off, every kept one at 1.
        cutoff = np.nextafter(values[mask == 0].max(), np.inf)
        soft = sigmoid_soft_mask(values, cutoff, k, self.total)
        return np.where(mask == 1, np.float32(1), soft).astype(np.float32)


SCHEDULES.add("Blend", Blend)
SCHEDULES.add("Sigmoid", Sigmoid)


# -- restore (Moffett restore_sparsity) -----------------------------------------

def restored_start(weights_list):
    """Fraction in [0, 1] of exact zeros over all arrays of ``weights_list``: s_0 for RestoreSparsity.

    As Moffett's ``restore_sparsity``: a model loaded already pruned starts
    its schedule at the sparsity it has. No elements at all gives 0.
    """
    arrays = [np.asarray(w) for w in weights_list]
    total = sum(a.size for a in arrays)
    if total == 0:
        return 0.0
    return sum(a.size - np.count_nonzero(a) for a in arrays) / total


# -- checks --------------------------------------------------------------------

def _check_fraction(name, value):
    if not 0 <= value <= 1:
        raise ScheduleError(f"{name} must be a fraction in [0, 1], got {value}")


def _check_total(total):
    if int(total) != total or total < 1:
        raise ScheduleError(f"total must be a whole number of fires >= 1, got {total}")


def _check_ramp(total, start, final):
    _check_total(total)
    _check_fraction("start", start)
    _check_fraction("final", final)


def _check_count(name, value):
    if int(value) != value or value < 0:
        raise ScheduleError(f"{name} must be a whole number >= 0, got {value}")


def _check_epochs(total_epochs, init_train_ep):
    _check_count("init_train_ep", init_train_ep)
    if int(total_epochs) != total_epochs or total_epochs < 1:
        raise ScheduleError(f"total_epochs must be a whole number >= 1, got {total_epochs}")
