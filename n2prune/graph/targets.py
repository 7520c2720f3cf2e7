"""Targets: what a ``[<cell>.Target]`` section attaches to a cell (N2D2's TargetScore).

The output gradient is N2D2's ``target - output`` error with the sign of a
loss gradient, divided by the batch size (N2D2 divides the summed gradient
by the batch in its solver; we do it once here). A ``Softmax`` with
``WithLoss=1`` turns this into the softmax cross-entropy gradient
``(p - onehot) / N``; the reported loss is then the cross-entropy, otherwise
half the squared error.
"""

import numpy as np


class Target:
    def __init__(self, cell, target_value=1.0, default_value=0.0, top_n=1):
        self.cell = cell
        self.target_value = float(target_value)
        self.default_value = float(default_value)
        self.top_n = int(top_n)

    def encode(self, labels, nb_outputs, dtype):
        """The (K, N) target matrix of ``labels``."""
        t = np.full((nb_outputs, len(labels)), self.default_value, dtype=dtype)
        t[labels, np.arange(len(labels))] = self.target_value
        return t

    def loss(self, cell, out, labels):
        """``(batch-mean loss, d loss / d out, number correct)`` for ``out`` (K, H, W, N)."""
        if out.shape[1:3] != (1, 1):
            raise ValueError(f"target [{self.cell}] must output 1x1 maps, got {out.shape[1:3]}")
        scores = out[:, 0, 0, :]
        n = scores.shape[1]
        t = self.encode(labels, scores.shape[0], scores.dtype)
        grad = (scores - t) / n
        if getattr(cell, "with_loss", False):
            picked = scores[labels, np.arange(n)]
            loss = float(-np.mean(np.log(np.maximum(picked, 1e-30))))
        else:
            loss = float(0.5 * np.sum((scores - t) ** 2) / n)
        return loss, grad.reshape(out.shape), self.correct(scores, labels)

    def correct(self, scores, labels):
        """Samples whose label is among the ``top_n`` best scores."""
        if self.top_n == 1:
            return int(np.sum(np.argmax(scores, axis=0) == labels))
        top = np.argsort(-scores, axis=0)[: self.top_n]
        return int(np.sum(np.any(top == labels[None, :], axis=0)))
