"""Element-wise combination of same-shaped inputs (N2D2 ``Type=ElemWise``).

Operations, as N2D2's ElemWiseCell_Frame, with ``w_k``, ``s_k`` the
coefficients of input ``k``::

    Sum           y = sum_k (w_k * x_k + s_k)
    AbsSum        y = sum_k w_k * |x_k|                (d|x|/dx = 1 at x = 0)
    EuclideanSum  y = sqrt(sum_k (w_k^2 * x_k^2 + s_k^2))  (gradient 0 where y = 0)
    Prod          y = prod_k x_k                       (no coefficients)
    Max           y = max_k x_k                        (first input wins ties)

``coefficients`` (N2D2's ``Weights``, default 1) and ``shifts`` (default 0) hold one value per input
(``coeff_mode`` ``"PerInput"`` and, as N2D2's CPU cell, ``"PerLayer"``) or
one per channel (``"PerChannel"``). Shorter lists are padded with the
defaults, as N2D2 does. In ``PerChannel`` mode only Sum uses the
per-channel values (``w[c]`` for every input); AbsSum and EuclideanSum read
the k-th entry of the list, again as N2D2.
"""

import numpy as np

from n2prune.cells.activations import resolve
from n2prune.cells.base import Cell
from n2prune.cells.registry import ACTIVATION, CELL_TYPES, NB_OUTPUTS, shape_error
from n2prune.errors import SettingError, UserError
from n2prune.registry import FLOAT, Key, choice, unknown_message, vector

COEFF_MODES = ("PerLayer", "PerInput", "PerChannel")


def _sum(xs, w, s):
    return sum(wk * x + sk for x, wk, sk in zip(xs, w, s)), None


def _sum_grad(dy, xs, w, cache):
    return [wk * dy for wk in w]


def _abs_sum(xs, w, s):
    return sum(wk * np.abs(x) for x, wk in zip(xs, w)), None


def _abs_sum_grad(dy, xs, w, cache):
    return [wk * np.where(x >= 0, dy, -dy) for x, wk in zip(xs, w)]


def _euclidean_sum(xs, w, s):
    y = np.sqrt(sum(wk * wk * x * x + sk * sk for x, wk, sk in zip(xs, w, s)))
    return y, y


def _euclidean_sum_grad(dy, xs, w, y):
    ratio = np.divide(dy, y, out=np.zeros_like(y), where=y != 0)
    return [wk * wk * x * ratio for x, wk in zip(xs, w)]


def _prod(xs, w, s):
    y = xs[0].copy()
    for x in xs[1:]:
        y *= x
    return y, None


def _prod_grad(dy, xs, w, cache):
    # Products of the other inputs, not y / x_k, so that zeros are fine.
    grads = []
    for k in range(len(xs)):
        g = dy.copy()
        for i, x in enumerate(xs):
            if i != k:
                g *= x
        grads.append(g)
    return grads


def _max(xs, w, s):
    stacked = np.stack(xs)
    arg = np.argmax(stacked, axis=0)  # the first maximum: N2D2's strict ">"
    return np.take_along_axis(stacked, arg[None], axis=0)[0], arg


def _max_grad(dy, xs, w, arg):
    return [np.where(arg == k, dy, 0).astype(dy.dtype) for k in range(len(xs))]


OPERATIONS = {
    "Sum": (_sum, _sum_grad),
    "AbsSum": (_abs_sum, _abs_sum_grad),
    "EuclideanSum": (_euclidean_sum, _euclidean_sum_grad),
    "Prod": (_prod, _prod_grad),
    "Max": (_max, _max_grad),
}


@CELL_TYPES.register(
    "ElemWise", NB_OUTPUTS,
    Key("Operation", "operation", choice(tuple(OPERATIONS)), "how the inputs combine (see above)"),
    Key("Weights", "coefficients", vector(FLOAT), "coefficient w of each input (or channel); default 1"),
    Key("Shifts", "shifts", vector(FLOAT), "shift s of each input (or channel); default 0"),
    Key("CoeffMode", "coeff_mode", choice(COEFF_MODES), "one coefficient per layer, input or channel"),
    ACTIVATION,
)
class ElemWise(Cell):
    """Combines inputs of identical shape (C, H, W) into one of that shape."""

    def __init__(self, name, input_shapes, nb_outputs, operation, coefficients=None,
                 shifts=None, coeff_mode="PerInput", activation=None):
        super().__init__(name, input_shapes)
        if operation not in OPERATIONS:
            message = unknown_message(f"operation {operation!r}", operation, list(OPERATIONS))
            raise SettingError("operation", f"[{name}] {message}")
        if coeff_mode not in COEFF_MODES:
            message = unknown_message(f"coeff mode {coeff_mode!r}", coeff_mode, COEFF_MODES)
            raise SettingError("coeff_mode", f"[{name}] {message}")
        if not self.input_shapes or len(set(self.input_shapes)) != 1:
            raise shape_error(name, "ElemWise inputs must all have the same shape, got "
                              + ", ".join("x".join(map(str, s)) for s in self.input_shapes))
        self.output_shape = self.input_shapes[0]
        if nb_outputs != self.output_shape[0]:
            raise shape_error(name, f"NbOutputs={nb_outputs} must equal the number of "
                              f"channels of each input ({self.output_shape[0]})")
        self.operation, self.coeff_mode = operation, coeff_mode
        self.coefficients = self._coefficients(coefficients, 1.0)
        self.shifts = self._coefficients(shifts, 0.0)
        self.activation = resolve(activation)
        self._cache = None

    def _coefficients(self, values, default):
        """N2D2's resize: one value per input (or per channel), padded with ``default``."""
        n_inputs = len(self.input_shapes)
        size = n_inputs * self.output_shape[0] if self.coeff_mode == "PerChannel" else n_inputs
        values = [] if values is None else [float(v) for v in values]
        if len(values) > size:
            raise UserError(f"[{self.name}] {len(values)} coefficients given, at most {size} "
                            f"expected ({self.coeff_mode})")
        return np.array(values + [default] * (size - len(values)))

    def per_input(self, coeffs, dtype):
        """Coefficient of each input: a scalar, or (C, 1, 1, 1) for Sum per channel."""
        if self.coeff_mode == "PerChannel" and self.operation == "Sum":
            per_channel = coeffs[:self.output_shape[0]].astype(dtype)[:, None, None, None]
            return [per_channel] * len(self.input_shapes)
        return [dtype.type(c) for c in coeffs[:len(self.input_shapes)]]

    def forward(self, xs, train):
        dtype = xs[0].dtype
        w, s = self.per_input(self.coefficients, dtype), self.per_input(self.shifts, dtype)
        y, extra = OPERATIONS[self.operation][0](xs, w, s)
        self._cache = (xs, w, extra) if train else None
        return self.activation.forward(np.asarray(y, dtype=dtype))

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError(f"[{self.name}] backward needs a forward with train=True first")
        xs, w, extra = self._cache
        dy = self.activation.backward(dy)
        return OPERATIONS[self.operation][1](dy, xs, w, extra)

    def macs_per_sample(self):
        channels, height, width = self.output_shape
        return len(self.input_shapes) * channels * height * width
