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

from n2prune.prune.fillers import PRUNING_FILLERS

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
    """

    def __init__(self, prune_mode="Identity", prune_filler="Random", threshold=0.2, delta=0.001,
                 start=0.1, stepsize=0, gamma=0.05, hard_zero=False, kernel="Auto"):
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
        self.weights, self.masks, self.rng = [], [], None
        self.current_threshold = np.float32(0)
        self.period, self.counter, self.version = 0, 0, 0
        self._buffers = []

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
        self.masks = [np.ones(w.shape, dtype=np.uint8) for w in self.weights]
        self._buffers = [None] * len(self.weights)
        self.period, self.counter = self.stepsize or int(log_period), 0
        self.current_threshold = np.float32(0)
        if self.prune_filler != "None":
            start = {"Identity": 0.0, "Static": self.threshold, "Gradual": self.start}
            self.current_threshold = np.float32(start[self.prune_mode])
            self.masks = [self.compute_mask(k) for k in range(len(self.weights))]
        self.version += 1
        self.after_update(self.weights)

    def compute_mask(self, k):
        """The seam: the filler's mask of tensor ``k`` at the current threshold.

        Gets the current weights and mask of tensor ``k`` (cumulative fillers
        build on the mask); returns a new uint8 mask of the weights' shape.
        """
        fill = PRUNING_FILLERS[self.prune_filler]
        return fill(self.weights[k], self.masks[k], self.current_threshold, self.delta, self.rng)

    def recompute_masks(self):
        """Every mask from ``compute_mask``; bumps ``version`` if any changed."""
        masks = [self.compute_mask(k) for k in range(len(self.weights))]
        if any(not np.array_equal(new, old) for new, old in zip(masks, self.masks)):
            self.version += 1
        self.masks = masks

    def update(self, batch_size):
        """After a solver step; True when Gradual mode raised the threshold ("Update masks").

        As N2D2's Scheduler: ``batch_size`` stimuli are added to a counter;
        reaching the period subtracts it (the remainder is carried) and fires.
        A fire below ``threshold`` raises the current threshold by ``gamma``
        (float32, capped at ``threshold``) and recomputes every mask; once
        there, fires change nothing. Identity and Static never change masks.
        """
        if self.prune_mode != "Gradual":
            return False
        self.counter += int(batch_size)
        if self.counter < self.period:
            return False
        self.counter -= self.period
        cap = np.float32(self.threshold)
        if not self.current_threshold < cap:
            return False
        self.current_threshold = min(self.current_threshold + np.float32(self.gamma), cap)
        self.recompute_masks()
        # Weights the solver no longer touches (skip kernels) are zeroed once here.
        self.after_update(self.weights)
        return True

    def after_update(self, weights):
        """With ``hard_zero``, set masked entries of ``weights`` (list of arrays) to 0 in place.

        N2D2 keeps the full-precision values of masked weights; n2prune's
        ``hard_zero`` removes them, so decay or momentum cannot revive them.
        A ``None`` entry is skipped: its solver only updates unmasked weights.
        """
        if self.hard_zero:
            for w, mask in zip(weights, self.masks):
                if w is not None:
                    w[mask == 0] = 0

    # -- what cells call ---------------------------------------------------
    def effective_weights(self, k, w):
        """``w * mask_k`` (N2D2's pruned weights), written into a buffer reused per tensor.

        The returned array is overwritten by the next call for the same ``k``.
        """
        buffer = self._buffers[k]
        if buffer is None or buffer.shape != w.shape or buffer.dtype != w.dtype:
            buffer = self._buffers[k] = np.empty_like(w)
        return np.multiply(w, self.masks[k], out=buffer)

    def mask_gradient(self, k, grad):
        """``grad *= mask_k`` in place (masked weights get no update); returns ``grad``."""
        return np.multiply(grad, self.masks[k], out=grad)

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
        if self.prune_mode != "Gradual" or not self.current_threshold < np.float32(self.threshold):
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
        self.version += 1

    def state(self):
        """Arrays and scalars to checkpoint: ``mask<k>``, threshold, counter, version."""
        state = {f"mask{k}": m for k, m in enumerate(self.masks)}
        state.update(threshold=self.current_threshold, counter=self.counter, version=self.version)
        return state

    def load_state(self, state):
        """Restore ``state()`` output (after ``initialize`` attached the weights)."""
        self.masks = self._checked_masks([state[f"mask{k}"] for k in range(len(self.weights))])
        self.current_threshold = np.float32(state["threshold"])
        self.counter = int(state["counter"])
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
