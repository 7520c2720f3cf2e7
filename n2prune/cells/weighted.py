"""What Conv and Fc share: weight tensors (one per input), a bias, a quantizer.

The quantizer (``QWeight=``, e.g. ``n2prune.quantizer.PruneCell``) is the one
seam through which pruning reaches a cell: the forward and backward passes use
``effective_weights(k)`` (``W_k * M_k``), the solver sees the gradient through
``mask_weight_grad(k, grad)`` (``dW_k * M_k``), as N2D2's ConvCell_Frame does.
"""

import numpy as np

from n2prune.cells.base import Cell


class WeightCell(Cell):
    """A cell with ``self.weights`` (list of Param) and ``self.bias`` (Param or None)."""

    _quantizer = None

    @property
    def quantizer(self):
        return self._quantizer

    @quantizer.setter
    def quantizer(self, quantizer):
        """Attach a quantizer; its masks are computed at once from the current weights.

        (A training run recomputes them with the run's generator and epoch
        length before the first step.)
        """
        self._quantizer = quantizer
        if quantizer is not None:
            quantizer.initialize(self.weight_arrays(), np.random.default_rng(0))

    def effective_weights(self, k):
        """The weights the forward pass uses: ``W_k``, or ``W_k * M_k`` when pruned."""
        w = self.weights[k].value
        return w if self.quantizer is None else self.quantizer.effective_weights(k, w)

    def mask_weight_grad(self, k, grad):
        """The gradient the solver sees for ``weights[k]``: masked entries get none."""
        return grad if self.quantizer is None else self.quantizer.mask_gradient(k, grad)

    def params(self):
        return self.weights + ([self.bias] if self.bias is not None else [])

    def weight_arrays(self):
        return [p.value for p in self.weights]
