"""Fully connected layer (N2D2 ``Type=Fc``) on (C, H, W, N) activations.

One weight matrix ``(nb_outputs, C_k*H_k*W_k)`` per input ``k``, whose
column ``(c*H + y)*W + x`` is the input feature at channel c, pixel (y, x)
(N2D2's order). The contributions of all inputs are summed. The output has
a 1x1 plane: ``(nb_outputs, 1, 1, N)``. With the batch innermost, the input
is already the feature-major ``(C*H*W, N)`` matrix: no copy either way.
"""

import math

import numpy as np

from n2prune.cells import fillers
from n2prune.cells.activations import resolve
from n2prune.cells.base import Param
from n2prune.cells.registry import (
    ACTIVATION,
    CELL_TYPES,
    FILLER_KEYS,
    NB_OUTPUTS,
    WEIGHT_PARAMETERS,
    check_inputs,
    key_names,
    set_grad,
    shape_error,
)
from n2prune.cells.weighted import WeightCell
from n2prune.kernels import (
    matmul,
    matmul_nt,
    matmul_tn,
)
from n2prune.registry import BOOL, Key


def features(x):
    """``x`` (C, H, W, N) as the feature-major ``(C*H*W, N)`` matrix (a view)."""
    return np.ascontiguousarray(x).reshape(-1, x.shape[3])


# N2D2's epsilon under the root of a weight row's norm (FcCell_Frame::propagate).
NORM_EPSILON = 1e-6
NORMALIZE = Key("Normalize", "normalize", BOOL,
                "ConfigSection parameter; 1: each output's weights are rescaled to unit L2 norm "
                "before every forward pass")


@CELL_TYPES.register("Fc", NB_OUTPUTS, *FILLER_KEYS, ACTIVATION, *WEIGHT_PARAMETERS, NORMALIZE)
class Fc(WeightCell):
    """``y = sum_k W_k @ features(x_k) + b``, then the activation.

    Fillers default to N2D2's Normal(0, 0.05), with the fans of
    ``fillers.fc_fans`` (fan-in C_k*H_k*W_k, fan-out nb_outputs), drawing
    from ``rng``, the ``numpy.random.Generator`` of the run.

    ``normalize`` (N2D2's ``Normalize=1``, cosine-similarity outputs as in
    AM-Softmax) rescales, in place before every forward pass, each output's
    weights (its row across all input tensors) to unit L2 norm,
    ``w / sqrt(sum w^2 + 1e-6)``. As in N2D2's FcCell_Frame this is a
    projection of the stored weights, not part of the differentiated
    function: the weight gradient is that of ``W @ x`` at the projected ``W``.
    """

    config_keys = key_names((*WEIGHT_PARAMETERS, NORMALIZE))

    def __init__(self, name, input_shapes, nb_outputs, no_bias=False, weights_filler=None,
                 bias_filler=None, activation=None, normalize=False, *, rng):
        super().__init__(name, input_shapes)
        self.nb_outputs = int(nb_outputs)
        if self.nb_outputs < 1:
            raise shape_error(name, f"NbOutputs must be >= 1, got {self.nb_outputs}")
        if not self.input_shapes:
            raise shape_error(name, "the cell has no input")
        self.output_shape = (self.nb_outputs, 1, 1)
        weights_filler = weights_filler or fillers.DEFAULT_WEIGHTS_FILLER
        self.weights = []
        for k, shape in enumerate(self.input_shapes):
            size = math.prod(shape)
            value = weights_filler.fill((self.nb_outputs, size),
                                        *fillers.fc_fans(size, self.nb_outputs), rng)
            self.weights.append(Param(f"{name}.weights[{k}]", value, "weights"))
        self.bias = None
        if not no_bias:
            filler = bias_filler or fillers.DEFAULT_BIAS_FILLER
            value = filler.fill((self.nb_outputs,), *fillers.fc_bias_fans(self.nb_outputs), rng)
            self.bias = Param(f"{name}.biases", value, "biases")
        self.activation = resolve(activation)
        self.normalize = bool(normalize)
        self._features = None

    def normalize_weights(self):
        """Rescale each output's weights (across all tensors) to unit L2 norm, in place."""
        sum_sq = sum(np.einsum("ok,ok->o", p.value, p.value, dtype=np.float64)
                     for p in self.weights)
        scale = 1.0 / np.sqrt(sum_sq + NORM_EPSILON)
        for param in self.weights:
            param.value *= scale.astype(param.value.dtype)[:, None]
            param.changed()

    def forward(self, xs, train):
        """``xs``: one (C_k, H_k, W_k, N) array per input; returns (O, 1, 1, N)."""
        check_inputs(self.name, xs, self.input_shapes)
        if self.normalize:
            self.normalize_weights()
        y, feats = None, []
        for k, x in enumerate(xs):
            f = features(x)  # (K, N)
            sparse = self.sparse_weights_for(k, f.shape[1]) if f.dtype == np.float32 else None
            if sparse is not None:
                part = sparse.forward(self.weights[k].value, f, self.weights_key(k))
            else:
                w = self.effective_weights(k).astype(x.dtype, copy=False)
                part = matmul(w, f)  # (O, N)
            y = part if y is None else np.add(y, part, out=y)
            feats.append(f)
        self._features = feats if train else None
        y = y.reshape(self.nb_outputs, 1, 1, -1)
        return self.activate(y)

    def backward(self, dy):
        if self._features is None:
            raise RuntimeError(f"[{self.name}] backward needs a forward with train=True first")
        dy = self.deactivate(dy)
        dy2 = dy.reshape(self.nb_outputs, -1)  # (O, N)
        dxs = []
        for k, f in enumerate(self._features):
            sparse = self.sparse_weights(k) if f.dtype == np.float32 else None
            wanted = self.wants_input_grad(k)
            if sparse is not None:
                set_grad(self.weights[k], sparse.weight_grad(dy2, f))
                df = (sparse.input_grad(self.weights[k].value, dy2, self.weights_key(k))
                      if wanted else None)
            else:
                w = self.effective_weights(k).astype(dy.dtype, copy=False)
                set_grad(self.weights[k], self.mask_weight_grad(k, matmul_nt(dy2, f)))
                df = matmul_tn(w, dy2) if wanted else None  # (C*H*W, N)
            if df is None:
                dxs.append(None)
                continue
            dxs.append(df.reshape(*self.input_shapes[k], -1))
        return dxs

    def macs_per_sample(self):
        return sum(self.nb_outputs * math.prod(s) for s in self.input_shapes)
