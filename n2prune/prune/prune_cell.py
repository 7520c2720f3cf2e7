"""``QWeight=Prune``: N2D2's PruneQuantizerCell, one object per pruned cell.

It keeps a reference to the cell's weight tensors (one per cell input,
updated in place by the solver) and owns one 0/1 uint8 mask per tensor, the
current threshold and the Gradual schedule. Cells call ``effective_weights``
in their passes and ``mask_gradient`` on their weight gradients; the trainer
calls ``after_update`` then ``update`` after each solver step.
``compute_mask`` is the single seam every pruning method goes through
(style.md point 5).
"""

import numpy as np

from n2prune.prune import criteria, schedules
from n2prune.prune.mask_methods import PRUNING_FILLERS
from n2prune.prune.options import PruneOptions

PRUNING_MODES = ("Identity", "Static", "Gradual")
KERNELS = ("Auto", "Dense", "Sparse")


class PruneCell:
    """Prune quantizer with N2D2's parameters and defaults (``n2d2.quantizer.PruneCell``).

    ``prune_mode``: Identity (masks from init with threshold 0, then frozen),
    Static (pruned once to ``threshold`` at init) or Gradual (from ``start``,
    ``+gamma`` every ``stepsize`` stimuli, up to ``threshold``).
    ``prune_filler``: a name of ``PRUNING_FILLERS`` (None, Random,
    IterNonStruct). ``threshold``/``start``/``gamma`` are fractions of each
    tensor's weights; ``delta`` is an absolute magnitude (IterNonStruct);
    ``stepsize`` counts stimuli, 0 meaning the ``log_period`` given to
    ``initialize``. ``hard_zero`` (n2prune's addition) sets masked weights to
    0 after each update instead of keeping their full-precision values.
    ``kernel`` (n2prune's): Auto lets the cell choose dense BLAS or the skip
    kernels from its sparsity; Dense or Sparse forces one.

    As N2D2, the current threshold is a float32 shared by all tensors.
    n2prune's other keyword arguments (pattern, criterion, schedule, scope,
    ...) are ``options.PruneOptions``; with ``pattern`` the current
    threshold is the target sparsity the pattern's mask meets.
    """

    def __init__(self, prune_mode="Identity", prune_filler="Random", threshold=0.2, delta=0.001,
                 start=0.1, stepsize=0, gamma=0.05, hard_zero=False, kernel="Auto", **options):
        _check_choice("prune_mode", prune_mode, PRUNING_MODES)
        _check_choice("kernel", kernel, KERNELS)
        _check_choice("prune_filler", prune_filler, tuple(PRUNING_FILLERS))
        for name, value in (("threshold", threshold), ("start", start)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be a fraction in [0, 1], got {value}")
        for name, value in (("delta", delta), ("gamma", gamma)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if int(stepsize) != stepsize or stepsize < 0:
            raise ValueError(f"stepsize must be a whole number of stimuli >= 0, got {stepsize}")
        self.prune_mode, self.prune_filler = prune_mode, prune_filler
        self.threshold, self.delta, self.start = float(threshold), float(delta), float(start)
        self.stepsize, self.gamma, self.hard_zero = int(stepsize), float(gamma), bool(hard_zero)
        self.kernel = kernel
        self.options = PruneOptions(**options)
        self.rule = self.options.rule
        self.weights, self.masks, self.rng = [], [], None
        self.current_threshold = np.float32(0)
        self.period, self.counter, self.version = 0, 0, 0
        self.fires, self.delay_left, self.ramp_start = 0, 0, 0.0
        # The pattern's target in float64: a float32 19/36 of 4,608 weights
        # would round to one weight more than the schedule asked for.
        self.target = 0.0
        # Per tensor: float32 soft masks while a Blend/Sigmoid schedule is
        # before its knee (else None); global-scope targets (else None);
        # Σ|w·g| for the Taylor criterion; the BatchNorm cell fed by this one.
        self.soft, self.tensor_targets, self.saliency = None, None, None
        self.batchnorm, self.pending_global = None, False
        self._buffers = []
        self._masked = None  # (mask key, flat masked positions per tensor), see after_update

    # -- life cycle -------------------------------------------------------
    def initialize(self, weights, rng, log_period=0):
        """Attach ``weights`` (list of arrays, kept by reference) and compute the masks.

        Called after the weight filler and after any imported weights. As
        N2D2: masks start at ones; unless the filler is None the current
        threshold is 0 (Identity), ``threshold`` (Static) or ``start``
        (Gradual) and every mask is computed. ``log_period`` (stimuli per
        epoch) is the Gradual period when ``stepsize`` is 0, as N2D2's
        ``-log-epoch`` default; with both 0 Gradual fires after every batch,
        as in N2D2's Python API. ``rng`` is a ``numpy.random.Generator``.
        """
        self.weights, self.rng = list(weights), rng
        if self.rule is not None:
            for w in self.weights:
                self.rule.check_shape(w.shape)
        self.masks = [np.ones(w.shape, dtype=np.uint8) for w in self.weights]
        self._buffers = [None] * len(self.weights)
        self.period, self.counter = self.stepsize or int(log_period), 0
        self.fires, self.delay_left = 0, self.options.schedule_delay
        self.soft, self.tensor_targets = None, None
        self.saliency = [np.zeros(w.shape) for w in self.weights] if self._taylor else None
        self.current_threshold = np.float32(0)
        self.ramp_start = (schedules.restored_start(self.weights)
                           if self.options.restore_sparsity else self.start)
        if self.options.fix_sparsity:
            self.masks = [schedules.locked_mask(w) for w in self.weights]
            self.target = self.sparsity()
            self.current_threshold = np.float32(self.target)
        elif self.prune_filler != "None" or self.rule is not None:
            self.target = self._initial_target()
            self.current_threshold = np.float32(self.target)
            self.masks = [self.compute_mask(k) for k in range(len(self.weights))]
        self.version += 1
        self.after_update(self.weights)

    def _initial_target(self):
        if self.prune_mode == "Identity":
            return 0.0
        if self.prune_mode == "Static":
            return self.threshold
        if self.options.schedule in schedules.SOFT_SCHEDULES:
            return 0.0  # TI: no pruning during the warm-up
        return self.ramp_start

    def compute_mask(self, k):
        """The seam: the filler's mask of tensor ``k`` at the current threshold.

        Gets the current weights and mask of tensor ``k`` (cumulative fillers
        build on the mask); returns a new uint8 mask of the weights' shape.
        """
        if self.rule is None:
            fill = PRUNING_FILLERS[self.prune_filler]
            return fill(self.weights[k], self.masks[k], self.current_threshold, self.delta,
                        self.rng)
        target = self.target
        if self.tensor_targets is not None:
            target = self.tensor_targets[k]
        return self.rule.mask(self.scores(k), target)

    def scores(self, k):
        """Criterion scores of tensor ``k``; masked entries score 0 for monotone ramps.

        Zhu & Gupta's ramps (and Moffett's) never revive a pruned weight;
        N2D2's Gamma steps and TI's soft schedules rescore the dense weights.
        """
        context = criteria.ScoreContext(rng=self.rng)
        if self.saliency is not None:
            context.saliency = self.saliency[k]
        if self.batchnorm is not None:
            bn = self.batchnorm
            context.gamma = bn.scale.value
            context.out_scale = criteria.bn_out_scale(bn.scale.value, bn.variance, bn.epsilon)
        scores = self.rule.scores(self.weights[k], context)
        if self.options.is_ramp and self.options.schedule not in schedules.SOFT_SCHEDULES:
            scores = scores * self.masks[k]
        return scores

    def recompute_masks(self):
        """Every mask from ``compute_mask``; bumps ``version`` if any changed."""
        masks = [self.compute_mask(k) for k in range(len(self.weights))]
        if any(not np.array_equal(new, old) for new, old in zip(masks, self.masks)):
            self.version += 1
        self.masks = masks

    def update(self, batch_size):
        """After a solver step; True when Gradual mode changed the target ("Update masks").

        As N2D2's Scheduler: ``batch_size`` stimuli are added to a counter;
        reaching the period subtracts it (the remainder is carried) and fires.
        ``schedule_delay`` stimuli are consumed first (Moffett's
        ``pretrain_step``). At a fire, Gamma (N2D2) raises the current
        threshold by ``gamma`` (float32, capped at ``threshold``); a ramp sets
        it to its value at fire k (``schedules``) for k up to K =
        ``schedule_length // period``. Identity, Static and ``fix_sparsity``
        never change masks.
        """
        if self.prune_mode != "Gradual" or self.options.fix_sparsity:
            return False
        self.counter += int(batch_size)
        if self.delay_left:
            consumed = min(self.delay_left, self.counter)
            self.delay_left -= consumed
            self.counter -= consumed
        if self.delay_left or self.counter < self.period:
            return False
        self.counter -= self.period
        return self._ramp_fire() if self.options.is_ramp else self._gamma_fire()

    def _gamma_fire(self):
        cap = np.float32(self.threshold)
        if not self.current_threshold < cap:
            return False
        self.current_threshold = min(self.current_threshold + np.float32(self.gamma), cap)
        self.target = float(self.current_threshold)
        self.refresh_masks()
        return True

    @property
    def total_fires(self):
        """K: fires over which a ramp runs (``schedule_length`` / period, at least 1)."""
        return max(1, self.options.schedule_length // max(1, self.period))

    def _ramp_fire(self):
        total = self.total_fires
        if self.fires >= total:
            return False
        self.fires += 1
        name = self.options.schedule
        if name in schedules.SOFT_SCHEDULES:
            target = self.threshold  # TI: the final fraction from the first fire on
        else:
            target = schedules.SCHEDULES[name](self.fires, total, self.ramp_start,
                                               self.threshold)
        self.current_threshold, self.target = np.float32(target), float(target)
        self.refresh_masks()
        return True

    def refresh_masks(self):
        """Masks at the current target, soft masks, and hard zeros of what they dropped.

        A global-scope member defers to its group (``prune.pruned_cells``), which
        sets ``tensor_targets`` for every member and calls this again.
        """
        if self.options.scope == "Global" and self.tensor_targets is None:
            self.pending_global = True
            return
        self.recompute_masks()
        self._update_soft()
        if self.saliency is not None:
            for saliency in self.saliency:
                saliency.fill(0)
        # Weights the solver no longer touches (skip kernels) are zeroed once here.
        self.after_update(self.weights)

    def _update_soft(self):
        """TI's Blend/Sigmoid: pruned entries scaled by a soft value until the knee."""
        name, total = self.options.schedule, self.total_fires
        if name not in schedules.SOFT_SCHEDULES or self.fires >= total:
            changed, self.soft = self.soft is not None, None
        elif name == "Blend":
            alpha = np.float32(schedules.blend_alpha(self.fires, total))
            self.soft = [m + alpha * (1 - m).astype(np.float32) for m in self.masks]
            changed = True
        else:
            self.soft = [self._sigmoid_soft(k, total) for k in range(len(self.masks))]
            changed = True
        if changed:
            self.version += 1

    def _sigmoid_soft(self, k, total):
        scores, mask = self.scores(k), self.masks[k]
        if mask.all():
            return np.ones(mask.shape, dtype=np.float32)
        # Every pruned entry strictly below the threshold, every kept one at 1.
        threshold = np.nextafter(scores[mask == 0].max(), np.inf)
        soft = schedules.sigmoid_soft_mask(scores, threshold, self.fires, total)
        return np.where(mask == 1, np.float32(1), soft).astype(np.float32)

    @property
    def needs_dense(self):
        """Soft masks or the Taylor criterion need every weight's product or gradient."""
        return self.soft is not None or self._taylor

    @property
    def _taylor(self):
        return self.rule is not None and self.rule.criterion == "Taylor"

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

    # -- what cells call ---------------------------------------------------
    def effective_weights(self, k, w):
        """``w * mask_k`` (N2D2's pruned weights), written into a buffer reused per tensor.

        The returned array is overwritten by the next call for the same ``k``.
        """
        buffer = self._buffers[k]
        if buffer is None or buffer.shape != w.shape or buffer.dtype != w.dtype:
            buffer = self._buffers[k] = np.empty_like(w)
        return np.multiply(w, self._mask_values(k), out=buffer)

    def mask_gradient(self, k, grad):
        """``grad *= mask_k`` in place (masked weights get no update); returns ``grad``.

        With soft masks the gradient is scaled by the soft value, as TI's
        parametrisation does. The Taylor criterion sums |w·g| first.
        """
        if self.saliency is not None:
            criteria.accumulate_saliency(self.saliency[k], self.weights[k], grad)
        return np.multiply(grad, self._mask_values(k), out=grad)

    def _mask_values(self, k):
        return self.masks[k] if self.soft is None else self.soft[k]

    # -- N2D2's Python API -------------------------------------------------
    def get_pruned_masks(self, k):
        return self.masks[k]

    def get_quantized_weights(self, k):
        return self.weights[k] * self.masks[k]

    def get_current_threshold(self):
        return float(self.current_threshold)

    # -- measures and state -------------------------------------------------
    @property
    def next_update_in(self):
        """Stimuli before the next Gradual fire, or None when masks will not change any more."""
        if self.prune_mode != "Gradual" or self.options.fix_sparsity:
            return None
        if self.options.is_ramp:
            if self.fires >= self.total_fires:
                return None
            return self.delay_left + max(0, self.period - self.counter)
        if not self.current_threshold < np.float32(self.threshold):
            return None
        return max(0, self.period - self.counter)

    def sparsity(self, k=None):
        """Fraction of zeros in mask ``k``, or in all masks together."""
        masks = self.masks if k is None else [self.masks[k]]
        total = sum(m.size for m in masks)
        return 1.0 - sum(np.count_nonzero(m) for m in masks) / total if total else 0.0

    def set_masks(self, masks):
        """Masks read from files (one per tensor, flat order allowed).

        As N2D2's import, the current threshold becomes the measured zero
        fraction (float32); N2D2 reads only tensor 0, n2prune all of them.
        """
        self.masks = self._checked_masks(masks)
        zeros = sum(m.size - np.count_nonzero(m) for m in self.masks)
        total = sum(m.size for m in self.masks)
        self.current_threshold = np.float32(zeros) / np.float32(total) if total else np.float32(0)
        self.target = float(self.current_threshold)
        self.version += 1

    def state(self):
        """Arrays and scalars to checkpoint: masks (and soft masks), threshold, counters."""
        state = {f"mask{k}": m for k, m in enumerate(self.masks)}
        state.update({f"soft{k}": m for k, m in enumerate(self.soft or [])})
        state.update(threshold=self.current_threshold, counter=self.counter, version=self.version,
                     fires=self.fires, delay_left=self.delay_left, ramp_start=self.ramp_start,
                     target=self.target)
        return state

    def load_state(self, state):
        """Restore ``state()`` output (after ``initialize`` attached the weights)."""
        self.masks = self._checked_masks([state[f"mask{k}"] for k in range(len(self.weights))])
        self.current_threshold = np.float32(state["threshold"])
        self.counter = int(state["counter"])
        # Checkpoints written before ramps existed lack these: no fire, no delay.
        self.fires = int(state.get("fires", 0))
        self.delay_left = int(state.get("delay_left", 0))
        self.ramp_start = float(state.get("ramp_start", self.ramp_start))
        self.target = float(state.get("target", self.current_threshold))
        soft = [state[f"soft{k}"] for k in range(len(self.weights)) if f"soft{k}" in state]
        self.soft = [np.asarray(m, dtype=np.float32) for m in soft] or None
        # Strictly newer than both, so whatever was built from the old masks is rebuilt.
        self.version = max(self.version, int(state["version"])) + 1

    def _checked_masks(self, masks):
        if len(masks) != len(self.weights):
            raise ValueError(f"{len(masks)} masks for {len(self.weights)} weight tensors")
        checked = []
        for k, (mask, w) in enumerate(zip(masks, self.weights)):
            mask = np.asarray(mask)
            if mask.size != w.size or not np.isin(mask, (0, 1)).all():
                raise ValueError(f"mask {k} must hold {w.size} values 0 or 1 (weights {w.shape})")
            checked.append(mask.astype(np.uint8).reshape(w.shape))
        return checked


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
