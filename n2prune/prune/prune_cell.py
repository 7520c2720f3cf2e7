"""``QWeight=Prune``: N2D2's PruneQuantizerCell, one object per pruned cell, composed.

A ``PruneCell`` keeps a reference to the cell's weight tensors (one per cell
input, updated in place by the solver) and owns the state: one 0/1 uint8
mask per tensor (and TI's soft masks), the current ``target``, the
``StimuliClock``, the fire index and ``version``. It composes three parts,
as ``torch.nn.utils.prune`` (style.md points 5 and 6):

- a schedule (``schedules``): ``target(k)``, the fraction to prune after fire k;
- a criterion (``criteria``): scores of a tensor's weights;
- a mask method (``mask_methods``): ``compute_mask(scores, default_mask, target)``.

Every mask comes from a ``compute_mask``: at ``initialize``, at each fire,
at the per-tensor targets a global scope hands back (``refresh_masks``),
FixSparsity's (``LockedMask``) and loaded ones (``GivenMask``). Cells use
``effective_weights``, ``mask_gradient``, ``mask(k)``, ``kernel_choice``,
``solver_positions`` and ``version``; the trainer calls ``after_update``
then ``update`` after each solver step.
"""

import dataclasses
import logging

import numpy as np

from n2prune.errors import SettingError
from n2prune.notices import notice_unused
from n2prune.prune import criteria, mask_methods, patterns
from n2prune.prune.clock import StimuliClock
from n2prune.prune.options import (
    PruneOptions,
    check_choice,
    check_fraction,
    checked_params,
    member,
    whole,
)
from n2prune.prune.pattern_base import PatternParams
from n2prune.prune.saved_masks import SavedMasks
from n2prune.prune.schedules import SCHEDULES, Frozen, restored_start

PRUNING_MODES = ("Identity", "Static", "Gradual")
KERNELS = ("Auto", "Dense", "Sparse")
PATTERN_SIZES = tuple(f.name for f in dataclasses.fields(PatternParams))
# N2D2's PruneCell inherits these from its quantizer base class and does not use them.
N2D2_UNUSED = {"range": 255, "quant_mode": "Default", "model": "Frame", "datatype": "float"}

log = logging.getLogger("n2prune")


class PruneCell(SavedMasks):
    """Prune quantizer with N2D2's parameters and defaults (``n2d2.quantizer.PruneCell``).

    ``prune_mode``: Identity (masks from init with target 0, then frozen),
    Static (pruned once to ``threshold`` at init) or Gradual (from ``start``,
    ``+gamma`` every ``stepsize`` stimuli, up to ``threshold``).
    ``prune_filler``: a name of ``PRUNING_FILLERS`` (None, Random,
    IterNonStruct). ``threshold`` (the final fraction), ``start`` and
    ``gamma`` are fractions of each tensor's weights; ``delta`` is a
    magnitude step (IterNonStruct); ``stepsize`` counts stimuli, 0 meaning
    the ``log_period`` given to ``initialize``. ``hard_zero`` (n2prune's)
    sets masked weights to 0 after each update instead of keeping their
    full-precision values. ``kernel`` (n2prune's): Auto lets the cell choose
    dense BLAS or the skip kernels from its sparsity; Dense or Sparse forces one.

    n2prune's other keyword arguments are ``options.PruneOptions`` (pattern,
    criterion, schedule, scope...) and ``PatternParams`` (the pattern's
    sizes). ``target`` is the fraction the masks meet (float64, shared by
    all tensors); N2D2's current threshold is its float32
    (``get_current_threshold``). N2D2's ``range``, ``quant_mode``, ``model``
    and ``datatype`` are accepted, unused (as by N2D2's PruneCell), noticed when set.
    """

    def __init__(self, prune_mode="Identity", prune_filler="Random", threshold=0.2, delta=0.001,
                 start=0.1, stepsize=0, gamma=0.05, hard_zero=False, kernel="Auto", range=255,
                 quant_mode="Default", model="Frame", datatype="float", **options):
        notice_unused(log, "PruneCell", {"range": range, "quant_mode": quant_mode, "model": model,
                                         "datatype": datatype}, N2D2_UNUSED,
                      "N2D2's PruneCell does not use it; n2prune runs on the CPU")
        self.prune_mode = check_choice("prune_mode", "QWeight.PruningMode", prune_mode,
                                       PRUNING_MODES)
        member("prune_filler", mask_methods.PRUNING_FILLERS, prune_filler)
        for name, value in (("threshold", threshold), ("start", start)):
            check_fraction(name, value)
        for name, value in (("delta", delta), ("gamma", gamma)):
            if not value >= 0:
                raise SettingError(name, f"{name} must be >= 0, got {value}")
        self.prune_filler, self.stepsize = prune_filler, whole("stepsize", stepsize, 0)
        self.threshold, self.delta, self.start = float(threshold), float(delta), float(start)
        self.gamma, self.hard_zero, self.kernel = float(gamma), bool(hard_zero), kernel
        sizes = {name: options.pop(name) for name in PATTERN_SIZES if name in options}
        self.params = checked_params(PatternParams(**sizes))
        self.options = PruneOptions(**options)
        # The state, from ``initialize`` on.
        self.weights, self.masks, self.soft = [], [], None
        self.method = self.schedule = self.clock = self.rng = None
        self.fire_index, self.target, self.version = 0, 0.0, 0
        # Σ|w·g| per tensor for the Taylor criterion; the BatchNorm cell fed by this one.
        self.saliency, self.batchnorm = None, None
        self._buffers = []
        self._masked = None  # (mask key, flat masked positions per tensor), see after_update

    @property
    def kernel(self):
        """``QWeight.Kernel`` as set (``--kernel`` may change it); cells read ``kernel_choice``."""
        return self._kernel

    @kernel.setter
    def kernel(self, kernel):
        self._kernel = check_choice("kernel", "QWeight.Kernel", kernel, KERNELS)

    # -- life cycle -------------------------------------------------------
    def check_shapes(self, shapes):
        """Raises PatternError (a SettingError) when the pattern cannot apply to these shapes."""
        if self.options.pattern is not None:
            for shape in shapes:
                patterns.validate(self.options.pattern, shape, self.params)

    def initialize(self, weights, rng, log_period=0):
        """Attach ``weights`` (list of arrays, kept by reference) and compute the masks.

        Called once the weights are filled or imported. As N2D2: masks start
        at ones; unless the filler is None the target is 0 (Identity),
        ``threshold`` (Static) or ``start`` (Gradual) and every mask is
        computed. ``log_period`` (stimuli per epoch) is the Gradual period
        when ``stepsize`` is 0, as N2D2's ``-log-epoch`` default; with both 0
        Gradual fires after every batch, as N2D2's Python API. ``rng`` (a
        ``numpy.random.Generator``) feeds Random and the Random criterion. A
        Global-scope cell leaves its masks to its group (``pruned_cells``).
        """
        self.weights, self.rng = list(weights), rng
        self.check_shapes([w.shape for w in self.weights])
        self.method = self._mask_method(rng)
        self.masks = [np.ones(w.shape, dtype=np.uint8) for w in self.weights]
        self._buffers = [None] * len(self.weights)
        self.soft, self.fire_index = None, 0
        self.saliency = [np.zeros(w.shape) for w in self.weights] if self._taylor else None
        period = self.stepsize or int(log_period)
        moving = self.prune_mode == "Gradual" and not self.options.fix_sparsity
        self.clock = StimuliClock(period, self.options.schedule_delay) if moving else None
        self.schedule = self._schedule(self._initial_start())
        self.target = self.schedule.target(0)
        if self.options.scope == "Layer" and not self._keeps_masks:
            self.masks = self._computed_masks([self.target] * len(self.weights))
        if self.options.fix_sparsity:
            self.target = self.sparsity()
            self.schedule = Frozen(self.target)
        self.version += 1
        self.after_update(self.weights)

    @property
    def _keeps_masks(self):
        """N2D2's filler None: no mask computed, the threshold starts at 0."""
        return (self.prune_filler == "None" and self.options.pattern is None
                and not self.options.fix_sparsity)

    def _initial_start(self):
        if self.prune_mode == "Identity" or self._keeps_masks:
            return 0.0
        if self.prune_mode == "Static":
            return self.threshold
        return restored_start(self.weights) if self.options.restore_sparsity else self.start

    def _schedule(self, start):
        """Gradual's named schedule from ``start`` (a schedule object as given); Identity,
        Static and FixSparsity: Frozen."""
        if self.clock is None:
            return Frozen(start)
        if not isinstance(self.options.schedule, str):
            return self.options.schedule
        period = self.clock.period
        total = max(1, self.options.schedule_length // max(1, period))
        return SCHEDULES[self.options.schedule](start, self.threshold, total, self.gamma)

    def _mask_method(self, rng):
        if self.options.fix_sparsity:
            return mask_methods.LockedMask()
        if self.options.pattern is not None:
            return mask_methods.PatternMask(self.options.pattern, self.params)
        return mask_methods.build_method(mask_methods.PRUNING_FILLERS[self.prune_filler],
                                         delta=self.delta, rng=rng)

    def update(self, batch_size):
        """After a solver step; True when a fire changed the target ("Update masks").

        ``batch_size`` stimuli tick the clock; when it fires and the schedule
        has a fire after the current one, the target becomes the schedule's
        at the next fire and the masks are recomputed (a Global-scope cell's
        by its group). Identity, Static and FixSparsity have no clock.
        """
        if self.clock is None or not self.clock.tick(batch_size):
            return False
        if not self.schedule.fires_after(self.fire_index):
            return False
        self.fire_index += 1
        self.target = self.schedule.target(self.fire_index)
        if self.options.scope == "Layer" and self.options.pattern != "Channel":
            self.refresh_masks()  # else the cell's channel or global group decides
        return True

    # -- the seam -----------------------------------------------------------
    def scores(self, k):
        """Criterion scores of tensor ``k`` (float64); under a monotone schedule (the
        ramps) pruned entries score 0, so the new mask stays within the current one."""
        context = criteria.ScoreContext(rng=self.rng, index=k)
        if self.saliency is not None:
            context.saliency = self.saliency[k]
        if self.batchnorm is not None:
            bn = self.batchnorm
            context.gamma = bn.scale.value
            context.out_scale = criteria.bn_out_scale(bn.scale.value, bn.variance, bn.epsilon)
        # FixSparsity locks the zeros of the weights whatever the criterion.
        criterion = "Magnitude" if self.options.fix_sparsity else self.options.criterion
        scores = criteria.score(criterion, self.weights[k], context)
        if self.schedule.monotone and self.method.composes:
            scores = scores * self.masks[k]
        return scores

    def _computed_masks(self, targets):
        return [self.method.compute_mask(self.scores(k), self.masks[k], target)
                for k, target in enumerate(targets)]

    def refresh_masks(self, targets=None):
        """Masks at ``targets`` (one fraction per tensor; default: ``target`` for all),
        then soft masks, and hard zeros of what they dropped. A global scope's
        group calls this with each tensor's share of the pooled target."""
        targets = [self.target] * len(self.weights) if targets is None else list(targets)
        self._install(self._computed_masks(targets))

    def keep_channels(self, keep):
        """Masks keeping the output channels where ``keep`` (bool, one per output) is
        True in every tensor: a channel group's decision (``prune.channels``), given
        through the seam as ``GivenMask``s."""
        given = [np.broadcast_to(keep.reshape(-1, *[1] * (w.ndim - 1)), w.shape) for w in self.weights]
        self._install([mask_methods.GivenMask(g.astype(np.uint8)).compute_mask(None, m, self.target)
                       for g, m in zip(given, self.masks)])

    def _install(self, masks):
        if any(not np.array_equal(new, old) for new, old in zip(masks, self.masks)):
            self.version += 1
        self.masks = masks
        self._update_soft()
        if self.saliency is not None:
            for saliency in self.saliency:
                saliency.fill(0)
        # Weights the solver no longer touches (skip kernels) are zeroed once here.
        self.after_update(self.weights)

    def _update_soft(self):
        """TI's Blend/Sigmoid: pruned entries scaled by a soft value until the knee."""
        soft = [self.schedule.soft_mask(self.fire_index, mask, lambda k=k: self.scores(k))
                for k, mask in enumerate(self.masks)]
        soft = None if all(s is None for s in soft) else soft
        if soft is not None or self.soft is not None:
            self.version += 1
        self.soft = soft

    def harden(self, cutoff=0.5):
        """Soft masks become hard: kept where the soft value is >= ``cutoff`` (TI's
        ``binary_mask`` at its last ``eval()``); no-op without soft masks."""
        if self.soft is None:
            return
        self.masks = [(s >= cutoff).astype(np.uint8) for s in self.soft]
        self.soft = None
        self.version += 1
        self.after_update(self.weights)

    def finalize(self):
        """Bake the masks into the weights (``w *= mask``, as torch's ``prune.remove``); the
        masks stay, so ``W * M`` and whatever cells derived from it are unchanged."""
        for w, mask in zip(self.weights, self.masks):
            w *= mask

    # -- what cells call ---------------------------------------------------
    def mask(self, k):
        """The 0/1 uint8 mask of tensor ``k`` (the weights' shape)."""
        self._require_masks()
        return self.masks[k]

    @property
    def needs_dense(self):
        """Soft masks or the Taylor criterion need every weight's product or gradient."""
        return self.soft is not None or self._taylor

    @property
    def _taylor(self):
        return self.options.pattern is not None and self.options.criterion == "Taylor"

    @property
    def kernel_choice(self):
        """Dense, Sparse or Auto: ``kernel``, except Dense while ``needs_dense``."""
        return "Dense" if self.needs_dense else self.kernel

    def solver_positions(self, operator):
        """Flat positions the solver may update when ``operator`` (a skip or direct
        kernel operator, None for dense) serves the tensor: with ``hard_zero`` only
        its kept positions (masked weights stay 0), else every one (None), as N2D2."""
        if not self.hard_zero or operator is None:
            return None
        return operator.flat_positions()

    def effective_weights(self, k, w):
        """``w * mask_k`` (N2D2's pruned weights), written into a buffer reused per tensor.

        The returned array is overwritten by the next call for the same ``k``.
        """
        values, buffer = self._mask_values(k), self._buffers[k]
        if buffer is None or buffer.shape != w.shape or buffer.dtype != w.dtype:
            buffer = self._buffers[k] = np.empty_like(w)
        return np.multiply(w, values, out=buffer)

    def mask_gradient(self, k, grad):
        """``grad *= mask_k`` in place (masked weights get no update); returns ``grad``.

        With soft masks the gradient is scaled by the soft value, as TI's
        parametrisation does. The Taylor criterion sums |w·g| first.
        """
        if self.saliency is not None:
            criteria.accumulate_saliency(self.saliency[k], self.weights[k], grad)
        return np.multiply(grad, self._mask_values(k), out=grad)

    def _mask_values(self, k):
        """The values weights are multiplied by: the mask, or the soft mask."""
        self._require_masks()
        return self.masks[k] if self.soft is None else self.soft[k]

    def _require_masks(self):
        if not self.masks:
            raise RuntimeError("the masks are not computed yet: initialize(weights, rng) first "
                               "(prune.pruned_cells.initialize_masks for a network)")

    def after_update(self, weights):
        """With ``hard_zero``, set masked entries of ``weights`` (list of arrays) to 0 in place.

        N2D2 keeps the full-precision values of masked weights; n2prune's
        ``hard_zero`` removes them, so decay or momentum cannot revive them.
        A ``None`` entry is skipped: its solver only updates unmasked weights.
        """
        if self.hard_zero and self.soft is None:  # soft-masked weights keep training
            for w, masked in zip(weights, self._masked_positions()):
                if w is not None:
                    w.reshape(-1)[masked] = 0

    def _masked_positions(self):
        """Flat indices of every tensor's masked entries, kept per mask version:
        a boolean ``w[mask == 0] = 0`` each step cost 8x more (300x784 at 50%)."""
        key = (self.version, [id(m) for m in self.masks])
        if self._masked is None or self._masked[0] != key:
            self._masked = (key, [np.flatnonzero(m == 0) for m in self.masks])
        return self._masked[1]

    # -- N2D2's Python API -------------------------------------------------
    def get_pruned_masks(self, k):
        return self.masks[k]

    def get_quantized_weights(self, k):
        return self.weights[k] * self.masks[k]

    def get_current_threshold(self):
        """N2D2's current threshold: ``target`` as the float32 N2D2 keeps it."""
        return float(np.float32(self.target))

    # -- measures and state -------------------------------------------------
    @property
    def next_update_in(self):
        """Stimuli before the next fire, or None when masks will not change any more."""
        if self.clock is None or not self.schedule.fires_after(self.fire_index):
            return None
        return self.clock.stimuli_to_fire()

    def sparsity(self, k=None):
        """Fraction of zeros in mask ``k``, or in all masks together."""
        masks = self.masks if k is None else [self.masks[k]]
        total = sum(m.size for m in masks)
        return 1.0 - sum(np.count_nonzero(m) for m in masks) / total if total else 0.0

    def violations(self, k):
        """Lines where mask ``k`` breaks the declared pattern ([] without a pattern)."""
        if self.options.pattern is None:
            return []
        return patterns.check_mask(self.options.pattern, self.masks[k], self.params)
