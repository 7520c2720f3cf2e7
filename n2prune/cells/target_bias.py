"""A bias on the labelled class while training (N2D2 ``Type=TargetBias``): AM-Softmax's margin.

In training, N2D2's ``TargetBiasCell_Frame`` adds ``Bias`` to the outputs of
the class each sample is labelled with, wherever that input is above
``-Bias``; every other output is its input. In inference the cell is the
identity. With ``Bias=-0.35`` on cosine scores (a normalised Fc) this is the
additive margin of AM-Softmax: the labelled class must win by 0.35.

The labels come from the target section N2D2 requires on this cell (its
``Target`` writes them where the cell reads them); the network passes them
to ``forward`` since ``takes_labels`` is set. The offset does not depend on
the input (away from the threshold), so the gradient passes through
unchanged, as N2D2's ``backPropagate``.
"""

import numpy as np

from n2prune.cells.base import Cell
from n2prune.cells.channels import check_channel_outputs
from n2prune.cells.registry import CELL_TYPES, NB_OUTPUTS, shape_error
from n2prune.registry import FLOAT, Key


@CELL_TYPES.register(
    "TargetBias", NB_OUTPUTS,
    Key("Bias", "bias", FLOAT, "added, in training, to the labelled class's outputs above -Bias"),
)
class TargetBias(Cell):
    """``y = x + bias`` on the labelled class where ``x > -bias`` (training); ``y = x`` (inference)."""

    takes_labels = True

    def __init__(self, name, input_shapes, nb_outputs, bias):
        super().__init__(name, input_shapes)
        if len(self.input_shapes) != 1:
            raise shape_error(name, "TargetBias takes exactly one input (as N2D2's)")
        self.output_shape = check_channel_outputs(name, self.input_shapes, nb_outputs)
        self.bias = float(bias)

    def forward(self, xs, train, labels=None):
        """``labels`` (N,) class indices: the output channel of each sample that gets the bias."""
        x = xs[0]
        if not train:
            return x
        if labels is None:
            raise ValueError(f"[{self.name}] TargetBias needs the batch labels to train")
        labels = np.asarray(labels)
        if labels.shape != (x.shape[3],) or labels.min() < 0 or labels.max() >= x.shape[0]:
            raise ValueError(f"[{self.name}] labels must be {x.shape[3]} class indices below "
                             f"{x.shape[0]}, got shape {labels.shape}")
        samples = np.arange(x.shape[3])
        picked = x[labels, :, :, samples]  # (N, H, W): each sample's labelled channel
        y = x.copy()
        y[labels, :, :, samples] = np.where(picked > -self.bias, picked + self.bias, picked)
        return y

    def backward(self, dy):
        return [dy]
