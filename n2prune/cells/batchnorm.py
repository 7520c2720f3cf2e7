"""Batch normalisation (N2D2 ``Type=BatchNorm``), per channel of (C, H, W, N) activations.

As N2D2's BatchNormCell_Frame:

* train: normalise with the batch mean and **biased** variance over
  (N, H, W), then update the running statistics with
  ``running = m * batch + (1 - m) * running`` where ``m`` is
  ``moving_average_momentum`` and the variance term is the **unbiased**
  batch variance (``* M / (M - 1)``, M = N*H*W): cuDNN's
  ``exponentialAverageFactor`` convention;
* test, or ``moving_average_momentum == 0`` (frozen statistics): normalise
  with the running mean and variance;
* running mean and variance start at **0** (not 1), as N2D2.

Several inputs are concatenated along channels.
"""

import numpy as np

from n2prune.cells.activations import resolve
from n2prune.cells.base import Cell, Param
from n2prune.cells.channels import (
    check_channel_outputs,
    concat_channels,
    split_channels,
)
from n2prune.cells.registry import (
    ACTIVATION,
    CELL_TYPES,
    NB_OUTPUTS,
    key_names,
    set_grad,
)
from n2prune.errors import SettingError
from n2prune.kernels import add_bias_channels
from n2prune.registry import FLOAT, Key

PARAMETERS = (
    Key("Epsilon", "epsilon", FLOAT, "ConfigSection parameter; added to the variance before its square root"),
    Key("MovingAverageMomentum", "moving_average_momentum", FLOAT,
        "ConfigSection parameter; weight of the batch in the running statistics, in [0, 1); "
        "0: frozen statistics"),
)


@CELL_TYPES.register("BatchNorm", NB_OUTPUTS, ACTIVATION, *PARAMETERS)
class BatchNorm(Cell):
    """``y = scale * (x - mean) / sqrt(var + epsilon) + bias`` per channel.

    Params: ``<name>.scales`` (role ``"weights"``, init 1) and
    ``<name>.biases`` (role ``"biases"``, init 0), each ``(C,)``.
    ``state()``: ``mean`` and ``variance``, the running statistics ``(C,)``.
    """

    config_keys = key_names(PARAMETERS)

    def __init__(self, name, input_shapes, nb_outputs, epsilon=1e-5,
                 moving_average_momentum=0.1, activation=None):
        super().__init__(name, input_shapes)
        self.output_shape = check_channel_outputs(name, self.input_shapes, nb_outputs)
        if not 0.0 <= moving_average_momentum < 1.0:
            raise SettingError("moving_average_momentum", f"[{name}] MovingAverageMomentum must be in [0, 1), "
                            f"got {moving_average_momentum}")
        channels = self.output_shape[0]
        self.epsilon = float(epsilon)
        self.momentum = float(moving_average_momentum)
        self.scale = Param(f"{name}.scales", np.ones(channels), "weights")
        self.bias = Param(f"{name}.biases", np.zeros(channels), "biases")
        self.mean = np.zeros(channels, dtype=np.float32)
        self.variance = np.zeros(channels, dtype=np.float32)
        self.activation = resolve(activation)
        self._cache = None

    def params(self):
        return [self.scale, self.bias]

    def state(self):
        return {"mean": self.mean, "variance": self.variance}

    def forward(self, xs, train):
        x = concat_channels(xs)
        rows = x.reshape(x.shape[0], -1)
        if not train:
            return self._infer(rows).reshape(x.shape)
        use_batch = self.momentum > 0
        if use_batch:
            mean, var = rows.mean(axis=1), rows.var(axis=1)
            self._update_running(mean, var, rows.shape[1])
        else:  # frozen statistics
            mean, var = self.mean.astype(x.dtype), self.variance.astype(x.dtype)
        inv_std = 1.0 / np.sqrt(var + x.dtype.type(self.epsilon))
        normalized = (rows - mean[:, None]) * inv_std[:, None]
        scale, bias = (p.value.astype(x.dtype, copy=False) for p in (self.scale, self.bias))
        y = scale[:, None] * normalized + bias[:, None]
        self._cache = (normalized, inv_std, use_batch)
        return self.activation.forward(y.reshape(x.shape))

    def _infer(self, rows):
        """The running statistics folded into one scale and shift per channel:
        two passes over ``rows`` (C, M) instead of five (inference is the
        shrunk network's hot path: 9 of its 50 ms were bn1)."""
        self._cache = None
        inv_std = 1.0 / np.sqrt(self.variance.astype(np.float64) + self.epsilon)
        scale = self.scale.value * inv_std
        shift = self.bias.value - self.mean * scale
        y = np.multiply(rows, scale.astype(rows.dtype)[:, None])
        if hasattr(self.activation, "forward_with_bias"):
            return self.activation.forward_with_bias(y, shift)
        return self.activation.forward(add_bias_channels(y, shift))

    def _update_running(self, mean, var, count):
        unbiased = var * (count / (count - 1)) if count > 1 else var
        m = self.momentum
        self.mean[...] = m * mean + (1 - m) * self.mean
        self.variance[...] = m * unbiased + (1 - m) * self.variance

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError(f"[{self.name}] backward needs a forward with train=True first")
        normalized, inv_std, use_batch = self._cache
        dy = self.activation.backward(dy)
        shape = dy.shape
        dy = dy.reshape(shape[0], -1)
        set_grad(self.bias, dy.sum(axis=1))
        set_grad(self.scale, (dy * normalized).sum(axis=1))
        d_norm = dy * self.scale.value.astype(dy.dtype, copy=False)[:, None]
        if use_batch:
            # The batch mean and variance depend on x too: the usual BN backward.
            d_norm = (d_norm - d_norm.mean(axis=1, keepdims=True)
                      - normalized * (d_norm * normalized).mean(axis=1, keepdims=True))
        dx = (d_norm * inv_std[:, None]).reshape(shape)
        return split_channels(dx, self.input_shapes)

    def macs_per_sample(self):
        channels, height, width = self.output_shape
        return channels * height * width
