"""Activation functions (N2D2 ``ActivationFunction=``), each a tiny forward/backward pair.

Formulas follow N2D2's ``include/Activation/*Activation_Frame.hpp``. Every
object works on arrays of any shape and dtype: ``forward(x)`` returns ``y``
and caches what ``backward(dy)`` needs, which returns ``dx``. One object
serves one cell (the cache holds one batch).
"""

import numpy as np

from n2prune.errors import non_negative
from n2prune.kernels import (
    add_bias_relu_channels,
    relu_backward,
    relu_backward_bias_grad,
    relu_forward,
)
from n2prune.registry import FLOAT, Key, Registry

ACTIVATIONS = Registry("ActivationFunction")


def _sigmoid(x):
    # exp of a non-positive number only, so large |x| neither overflows nor warns.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


@ACTIVATIONS.register(
    "Rectifier",
    Key("LeakSlope", "leak_slope", FLOAT, "slope of the negative part (>= 0)"),
    Key("Clipping", "clipping", FLOAT, "upper bound of the output; 0: none"),
)
class Rectifier:
    """``x`` if ``x > 0`` else ``leak_slope * x``; capped at ``clipping`` if ``> 0``."""

    maps_zero_to_zero = True  # a removed (zero) channel stays zero

    def __init__(self, leak_slope=0.0, clipping=0.0):
        # The backward pass reads the branch from the sign of the output.
        self.leak_slope = non_negative("leak_slope", leak_slope, "Rectifier LeakSlope")
        self.clipping = float(clipping)

    def forward(self, x):
        self.y = relu_forward(x, self.leak_slope, self.clipping)
        return self.y

    def backward(self, dy):
        return relu_backward(dy, self.y, self.leak_slope, self.clipping)

    def forward_with_bias(self, y, bias):
        """In place, one pass: ``y + bias[c]`` then the rectifier (a cell's epilogue)."""
        self.y = add_bias_relu_channels(y, bias, self.leak_slope, self.clipping)
        return self.y

    def backward_with_bias(self, dy):
        """``(dx, bias gradient)`` in one pass over ``dy``."""
        return relu_backward_bias_grad(dy, self.y, self.leak_slope, self.clipping)


@ACTIVATIONS.register(
    "Linear", Key("Clipping", "clipping", FLOAT, "output clamped to [-Clipping, Clipping]; 0: none"))
class Linear:
    """Identity, clamped to ``[-clipping, clipping]`` when ``clipping != 0``.

    ``Linear()`` is also what a cell uses when no activation is given.
    """

    maps_zero_to_zero = True  # a removed (zero) channel stays zero

    def __init__(self, clipping=0.0):
        self.clipping = abs(float(clipping))

    def forward(self, x):
        if not self.clipping:
            return x
        self.y = np.clip(x, -self.clipping, self.clipping)
        return self.y

    def backward(self, dy):
        if not self.clipping:
            return dy
        # As N2D2: the gradient stops where the output sits on a bound.
        return dy * (np.abs(self.y) < self.clipping)


@ACTIVATIONS.register(
    "Saturation", Key("Threshold", "threshold", FLOAT, "output clamped to [-Threshold, Threshold]"))
class Saturation:
    """``x`` clamped to ``[-threshold, threshold]``."""

    maps_zero_to_zero = True  # a removed (zero) channel stays zero

    def __init__(self, threshold=1.0):
        self.threshold = abs(float(threshold))

    def forward(self, x):
        self.y = np.clip(x, -self.threshold, self.threshold)
        return self.y

    def backward(self, dy):
        return dy * (np.abs(self.y) < self.threshold)


@ACTIVATIONS.register("Tanh", Key("Alpha", "alpha", FLOAT, "slope: tanh(Alpha * x)"))
class Tanh:
    """``tanh(alpha * x)``."""

    maps_zero_to_zero = True  # a removed (zero) channel stays zero

    def __init__(self, alpha=1.0):
        self.alpha = float(alpha)

    def forward(self, x):
        self.y = np.tanh(x * x.dtype.type(self.alpha)) if self.alpha != 1.0 else np.tanh(x)
        return self.y

    def backward(self, dy):
        return dy * (self.alpha * (1 - self.y * self.y))


@ACTIVATIONS.register("TanhLeCun")
class TanhLeCun(Tanh):
    """N2D2's TanhLeCun: ``tanh(alpha * x)`` with ``alpha = 1.7159 * 2/3``.

    N2D2 (TanhActivationGenerator) sets only the slope, without LeCun's outer
    1.7159 factor; we do the same.
    """

    ALPHA = 1.7159 * (2.0 / 3.0)

    def __init__(self):
        super().__init__(self.ALPHA)


@ACTIVATIONS.register("Logistic")
class Logistic:
    """``1 / (1 + exp(-x))``."""

    maps_zero_to_zero = False  # a removed (zero) channel stays zero

    with_loss = False

    def forward(self, x):
        self.y = _sigmoid(x)
        return self.y

    def backward(self, dy):
        if self.with_loss:
            return dy
        return dy * (self.y * (1 - self.y))


@ACTIVATIONS.register("LogisticWithLoss")
class LogisticWithLoss(Logistic):
    """Logistic whose backward passes ``dy`` through unchanged.

    As N2D2: the loss gradient it receives already is ``y - target``, the
    combined sigmoid + cross-entropy gradient.
    """

    with_loss = True


@ACTIVATIONS.register("Softplus")
class Softplus:
    """``log(1 + exp(x))``; its derivative ``sigmoid(x) = 1 - exp(-y)``."""

    maps_zero_to_zero = False  # a removed (zero) channel stays zero

    def forward(self, x):
        self.y = np.logaddexp(x.dtype.type(0), x)
        return self.y

    def backward(self, dy):
        return dy * -np.expm1(-self.y)


@ACTIVATIONS.register("Swish")
class Swish:
    """``x * sigmoid(x)``; derivative ``s + y * (1 - s)``."""

    maps_zero_to_zero = True  # a removed (zero) channel stays zero

    def forward(self, x):
        self.sigmoid = _sigmoid(x)
        self.y = x * self.sigmoid
        return self.y

    def backward(self, dy):
        return dy * (self.sigmoid + self.y * (1 - self.sigmoid))


def resolve(activation):
    """``activation`` itself, or a no-op ``Linear()`` for ``None``."""
    return Linear() if activation is None else activation
