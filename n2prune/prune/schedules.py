"""Pruning schedules: how much to prune, and when, as pure functions (style.md point 6).

Time model. Masks are recomputed at *fires*. Fire ``k = 0`` is the
initialisation (before any fire); fires ``k = 1, 2, ...`` happen every
``period`` stimuli after a ``delay`` (``fire_count``); the ramp runs over
``total = K >= 1`` fires. Moffett's ``Prune``: K = floor(sparse_step /
frequency), k = floor((t - pretrain_step) / frequency); TI's PrunerModule:
one fire per epoch after ``init_train_ep`` warm-up epochs.

Every sparsity schedule in ``SCHEDULES`` has the signature
``fn(k, total, start, final) -> float``: the target pruned fraction after
fire ``k``, exactly ``start`` for ``k <= 0`` and exactly ``final`` for
``k >= total``. N2D2's own Gradual mode is not closed form (it adds gamma in
float32 at each fire), so it is ``gamma_steps``, outside the registry.
TI's soft masks (``blend_alpha``, ``sigmoid_soft_mask``) give mask values,
not fractions: with them the pruned fraction is ``final`` from the start.
"""

import functools
import math

import numpy as np

from n2prune.errors import UserError

SCHEDULES = {}

# Names of QWeight.Schedule that are not fraction schedules of SCHEDULES.
GAMMA = "Gamma"  # N2D2's Gradual behaviour, the default: gamma_steps
SOFT_SCHEDULES = ("Blend", "Sigmoid")  # TI's soft masks: blend_alpha, sigmoid_soft_mask


class ScheduleError(UserError, ValueError):
    """A schedule parameter outside its range (a one-line message naming it)."""


def register_schedule(name):
    """Decorator: make ``fn(k, total, start, final) -> float`` the schedule ``name``.

    The wrapper checks the arguments and returns exactly ``start`` for
    ``k <= 0`` and exactly ``final`` for ``k >= total``, so ``fn`` only sees
    progress ``0 < k < total``.
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
        SCHEDULES[name] = schedule
        return schedule
    return decorate


def schedule_names():
    """Every valid ``QWeight.Schedule`` value, the default (Gamma) first."""
    return (GAMMA, *SCHEDULES, *SOFT_SCHEDULES)


def get_schedule(name):
    """The fraction schedule ``name`` of ``SCHEDULES``; ScheduleError listing the known ones."""
    try:
        return SCHEDULES[name]
    except KeyError:
        known = ", ".join(SCHEDULES)
        raise ScheduleError(f"unknown Schedule={name}; fraction schedules: {known}") from None


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
    ``QWeight.Schedule=Gamma`` (the default) is this schedule, driven by
    ``QWeight.StartThreshold``, ``QWeight.GammaThreshold`` and
    ``QWeight.StepSizeThreshold``.
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
    e0=5: 16 instead of 21, see ``ti_knee_original``). Raises ScheduleError
    when the knee is not after e0 (fewer than 2 epochs after the warm-up).
    The ramp runs over ``ti_knee(E, e0) - e0`` fires.
    """
    _check_epochs(total_epochs, init_train_ep)
    knee = init_train_ep + (2 * (total_epochs - init_train_ep)) // 3
    if knee <= init_train_ep:
        raise ScheduleError(f"total_epochs={total_epochs} leaves no epoch to prune after "
                            f"init_train_ep={init_train_ep}; need at least {init_train_ep + 2}")
    return knee


def ti_knee_original(total_epochs, init_train_ep):
    """TI's knee as its code computes it, floor(2(E - e0)/3): for documentation and tests.

    It may be at or before e0 (E=10, e0=5 gives 3), where TI's schedules
    are meaningless.
    """
    _check_epochs(total_epochs, init_train_ep)
    return (2 * (total_epochs - init_train_ep)) // 3


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


def sigmoid_soft_mask(scores, threshold, k, total):
    """TI's sigmoid soft mask, cleaned up: a float32 array of values in [0, 1], shaped as ``scores``.

    ``scores`` are importances (e.g. |w|, any real values); entries with
    ``score >= threshold`` are kept and get 1 at every k. For an entry below
    the threshold, with progress p = clip(k/total, 0, 1) and its distance
    below the threshold normalised by the lowest score,
    d = (threshold - score)/(threshold - min(scores)) in (0, 1],

        mask = hardsigmoid(3 - 6·p·(1 + d)) = clip(1 - p·(1 + d), 0, 1),

    with hardsigmoid(x) = clip((x + 3)/6, 0, 1). So the mask is 1 at k = 0,
    does not increase with k, is smaller for smaller scores (once p > 0),
    and is exactly 0 for every pruned entry by the knee: the lowest score
    reaches 0 at p = 1/2, scores just below the threshold at p = 1.
    TI's own form, x = (|s| - t)·σ_e/max|s| + 3 ± 8·σ_e with
    σ_e = (e - e0)/E, reaches 0 near 3/4 of the epochs, not at its knee, and
    references an undefined tensor with n2m.
    """
    _check_total(total)
    scores = np.asarray(scores, dtype=np.float64)
    below = scores < threshold
    mask = np.ones(scores.shape, dtype=np.float32)
    if not below.any():
        return mask
    p = min(max(k / total, 0.0), 1.0)
    d = (threshold - scores[below]) / (threshold - scores.min())
    x = 3.0 - 6.0 * p * (1.0 + d)
    mask[below] = np.clip((x + 3.0) / 6.0, 0.0, 1.0)
    return mask


def binary_from_soft(soft):
    """TI's final binarisation: uint8 mask, 1 where ``soft >= 0.5``."""
    return (np.asarray(soft) >= 0.5).astype(np.uint8)


# -- restore and freeze (Moffett restore_sparsity / fix_sparsity, INC pattern_lock) --

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


def locked_mask(weights):
    """uint8 mask of ``weights``' shape, 1 where weight != 0: the pattern FixSparsity keeps.

    Moffett's ``fix_sparsity`` and INC's ``pattern_lock`` freeze the zeros
    of the loaded weights and never recompute the mask.
    """
    return (np.asarray(weights) != 0).astype(np.uint8)


# -- when --------------------------------------------------------------------

def fire_count(stimuli_seen, delay, period):
    """Fires (int >= 0) that happened after ``stimuli_seen`` stimuli.

    0 while ``stimuli_seen <= delay``, then floor((stimuli_seen - delay)/period):
    Moffett updates when t > pretrain_step and (t - pretrain_step) is a
    multiple of frequency. ``delay`` and ``period`` are in stimuli,
    ``period >= 1``. The count is not capped: schedules clamp k >= total.
    """
    _check_count("stimuli_seen", stimuli_seen)
    _check_count("delay", delay)
    if int(period) != period or period < 1:
        raise ScheduleError(f"period must be a whole number of stimuli >= 1, got {period}")
    if stimuli_seen <= delay:
        return 0
    return int((stimuli_seen - delay) // period)


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
