"""``QWeight=Prune``: N2D2's PruneQuantizerCell, one object per pruned cell.

It owns one 0/1 mask per weight tensor (one per cell input), the current
threshold and the Gradual schedule. The cell calls ``effective_weights`` in
its passes and ``mask_gradient`` on its weight gradients; the trainer calls
``update`` after each solver step. ``compute_mask`` is the single seam every
pruning method goes through (style.md point 5).
"""

import numpy as np

from n2prune.prune.fillers import PRUNING_FILLERS

PRUNING_MODES = ("Identity", "Static", "Gradual")


class PruneCell:
    """Prune quantizer with N2D2's parameters and defaults (``n2d2.quantizer.PruneCell``).

    ``prune_mode``: Identity (masks only from init, threshold 0), Static (pruned
    once to ``threshold`` at init) or Gradual (from ``start``, ``+gamma`` every
    ``stepsize`` stimuli, up to ``threshold``). ``prune_filler``: None, Random
    or IterNonStruct. ``hard_zero`` (n2prune's addition) zeroes masked weights
    after each update instead of keeping their full-precision values.
    """

    def __init__(self, prune_mode="Identity", prune_filler="Random", threshold=0.2, delta=0.001,
                 start=0.1, stepsize=0, gamma=0.05, hard_zero=False):
        _check_choice("prune_mode", prune_mode, PRUNING_MODES)
        _check_choice("prune_filler", prune_filler, tuple(PRUNING_FILLERS))
        for name, value in (("threshold", threshold), ("start", start)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a fraction in [0, 1], got {value}")
        for name, value in (("delta", delta), ("gamma", gamma), ("stepsize", stepsize)):
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        self.prune_mode, self.prune_filler = prune_mode, prune_filler
        self.threshold, self.delta, self.start = float(threshold), float(delta), float(start)
        self.stepsize, self.gamma, self.hard_zero = int(stepsize), float(gamma), bool(hard_zero)
        self.weights, self.masks = [], []
        self.current_threshold = 0.0
        self.period, self.counter, self.version = 0, 0, 0
        self.rng = None

    # -- life cycle -------------------------------------------------------
    def initialize(self, weights, rng, log_period=0):
        """Masks from the current ``weights`` (list of arrays, kept by reference).

        Called after the weight filler and after any imported weights. As
        N2D2: masks start at ones; unless the filler is None the threshold is
        0 (Identity), ``threshold`` (Static) or ``start`` (Gradual) and every
        mask is computed. ``log_period`` (stimuli per epoch) is the Gradual
        period when ``stepsize`` is 0, as N2D2's ``-log-epoch`` default.
        """
        self.weights, self.rng = list(weights), rng
        self.masks = [np.ones(w.shape, dtype=np.uint8) for w in self.weights]
        self.period = self.stepsize or int(log_period)
        self.counter = 0
        if self.prune_filler != "None":
            start = {"Identity": 0.0, "Static": self.threshold, "Gradual": self.start}
            self.current_threshold = float(np.float32(start[self.prune_mode]))
            self.recompute_masks()
        self.after_update(self.weights)

    def compute_mask(self, k):
        """The seam: the mask of tensor ``k`` for the current threshold."""
        fill = PRUNING_FILLERS[self.prune_filler]
        return fill(self.weights[k], self.masks[k], self.current_threshold, self.delta, self.rng)

    def recompute_masks(self):
        self.masks = [self.compute_mask(k) for k in range(len(self.weights))]
        self.version += 1

    def update(self, batch_size):
        """After a solver step; True when Gradual mode recomputed the masks.

        As N2D2's Scheduler: ``batch_size`` stimuli are added to a counter;
        reaching the period subtracts it (the remainder is carried) and fires.
        A fire below ``threshold`` raises the current threshold by ``gamma``
        (capped) and recomputes every mask; once there, nothing changes.
        """
        if self.prune_mode != "Gradual" or self.period <= 0:
            return False
        self.counter += int(batch_size)
        if self.counter < self.period:
            return False
        self.counter -= self.period
        if not self.below_target():
            return False
        # float32 like N2D2's mCurrentThreshold: 0.1 + 8 x 0.1 lands exactly on
        # 0.9f, where float64 would stop just short and fire once more.
        raised = np.float32(self.current_threshold) + np.float32(self.gamma)
        self.current_threshold = float(min(raised, np.float32(self.threshold)))
        self.recompute_masks()
        return True

    def below_target(self):
        return np.float32(self.current_threshold) < np.float32(self.threshold)

    def after_update(self, weights):
        """With ``hard_zero``, masked weights are set to 0 (N2D2 keeps them)."""
        if self.hard_zero:
            for w, m in zip(weights, self.masks):
                w *= m

    # -- what cells call ---------------------------------------------------
    def effective_weights(self, k, w):
        return w * self.masks[k]

    def mask_gradient(self, k, grad):
        grad *= self.masks[k]
        return grad

    # -- N2D2's Python API -------------------------------------------------
    def get_pruned_masks(self, k):
        return self.masks[k]

    def get_quantized_weights(self, k):
        return self.weights[k] * self.masks[k]

    def get_current_threshold(self):
        return self.current_threshold

    # -- measures and state -------------------------------------------------
    @property
    def next_update_in(self):
        """Stimuli before the next Gradual fire, or None when masks are final."""
        if self.prune_mode != "Gradual" or self.period <= 0 or not self.below_target():
            return None
        return self.period - self.counter

    def sparsity(self, k=None):
        masks = self.masks if k is None else [self.masks[k]]
        total = sum(m.size for m in masks)
        return 1.0 - sum(int(m.sum()) for m in masks) / total if total else 0.0

    def set_masks(self, masks):
        """Masks read from files; the threshold becomes their zero fraction (as N2D2)."""
        self.masks = [np.asarray(m, dtype=np.uint8).reshape(w.shape) for m, w in zip(masks, self.weights)]
        self.current_threshold = self.sparsity()
        self.version += 1

    def state(self):
        state = {f"mask{k}": m for k, m in enumerate(self.masks)}
        state.update(threshold=self.current_threshold, counter=self.counter, version=self.version)
        return state

    def load_state(self, state):
        self.masks = [np.asarray(state[f"mask{k}"], dtype=np.uint8) for k in range(len(self.weights))]
        self.current_threshold = float(state["threshold"])
        self.counter, self.version = int(state["counter"]), int(state["version"]) + 1


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
