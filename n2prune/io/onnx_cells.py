"""The ONNX nodes of each n2prune cell, for ``io/onnx_export``.

Each exporter takes the graph being built, the cell and the names of its
input tensors, adds the nodes computing the cell, and returns the name of
its output tensor, which is the cell's name.
"""

import numpy as np

from n2prune.cells.normalize import EPSILON as NORMALIZE_EPSILON
from n2prune.errors import UserError
from n2prune.io.deployed import conv_weights, fc_weights


class Graph:
    """Nodes and initializers collected while walking the cells.

    ``folds`` maps a Conv, Deconv or Fc cell to the per-output ``(scale, shift)``
    of the BatchNorm folded into it: its weights and bias come out scaled and
    shifted, and the BatchNorm cell keeps only its activation.
    """

    def __init__(self, onnx, folds):
        self.onnx, self.helper = onnx, onnx.helper
        self.nodes, self.initializers = [], []
        self.folds = folds

    def weights(self, cell, w):
        """``w`` (outputs on axis 0) with a folded BatchNorm's scale applied."""
        if cell.name not in self.folds:
            return w
        scale = self.folds[cell.name][0]
        return (w * scale.reshape(-1, *[1] * (w.ndim - 1))).astype(np.float32)

    def bias(self, cell):
        """The cell's biases as float32 (a folded BatchNorm's shift added), or None."""
        bias = None if cell.bias is None else cell.bias.value.astype(np.float64)
        if cell.name in self.folds:
            scale, shift = self.folds[cell.name]
            bias = shift if bias is None else bias * scale + shift
        return None if bias is None else bias.astype(np.float32)

    def const(self, name, array):
        array = np.ascontiguousarray(array)
        if array.dtype.kind == "f":
            array = array + array.dtype.type(0)  # -0.0 (a masked negative weight) as +0.0
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op, inputs, output, name=None, **attrs):
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=name or output, **attrs))
        return output


def _activation(g, act, x, out):
    """Nodes of ``act`` from tensor ``x`` to tensor ``out``."""
    kind = type(act).__name__
    if kind == "Linear":
        if not act.clipping:
            return g.node("Identity", [x], out)
        return _clip(g, x, out, -act.clipping, act.clipping)
    if kind == "Saturation":
        return _clip(g, x, out, -act.threshold, act.threshold)
    if kind == "Rectifier":
        return _rectifier(g, act, x, out)
    if kind in ("Tanh", "TanhLeCun"):
        if act.alpha != 1.0:
            x = g.node("Mul", [x, g.const(f"{out}.alpha", np.float32(act.alpha))], f"{out}/scaled")
        return g.node("Tanh", [x], out)
    if kind in ("Logistic", "LogisticWithLoss"):
        return g.node("Sigmoid", [x], out)
    if kind == "Softplus":
        return g.node("Softplus", [x], out)
    if kind == "Swish":
        s = g.node("Sigmoid", [x], f"{out}/sigmoid")
        return g.node("Mul", [x, s], out)
    raise UserError(f"[{out}] activation {kind} has no ONNX export")


def _clip(g, x, out, low, high):
    lo, hi = g.const(f"{out}.min", np.float32(low)), g.const(f"{out}.max", np.float32(high))
    return g.node("Clip", [x, lo, hi], out)


def _rectifier(g, act, x, out):
    relu_out = out if not act.clipping else f"{out}/relu"
    if act.leak_slope:
        g.node("LeakyRelu", [x], relu_out, alpha=float(act.leak_slope))
    else:
        g.node("Relu", [x], relu_out)
    if act.clipping:
        hi = g.const(f"{out}.max", np.float32(act.clipping))
        g.node("Min", [relu_out, hi], out)
    return out


def _joined(g, cell, xs):
    """One tensor of the cell's inputs, concatenated along the channels."""
    if len(xs) == 1:
        return xs[0]
    return g.node("Concat", xs, f"{cell.name}/concat", axis=1)


def _group_layout(cell):
    """``(groups, compact weights)`` when one input's mapping is block-diagonal
    with equal blocks in order; None otherwise (dense weights then)."""
    if len(cell.connections) != 1 or cell.connections[0].groups is None:
        return None
    conn, w = cell.connections[0], conv_weights(cell)[0]
    groups = conn.groups
    n = len(groups)
    per_out = cell.nb_outputs // n
    for g, (chans, outs) in enumerate(groups):
        if (outs.start, outs.stop) != (g * per_out, (g + 1) * per_out):
            return None
        if chans.stop - chans.start != conn.per_group:
            return None
    compact = np.concatenate([w[outs, chans] for chans, outs in groups])
    return n, compact


def _conv(g, cell, xs):
    layout = _group_layout(cell)
    if layout is not None:
        group, w = layout
    else:
        group, w = 1, np.concatenate(conv_weights(cell), axis=1)
    inputs = [_joined(g, cell, xs), g.const(f"{cell.name}.weights", g.weights(cell, w))]
    bias = g.bias(cell)
    if bias is not None:
        inputs.append(g.const(f"{cell.name}.biases", bias))
    (ph, pw) = cell.padding
    y = g.node("Conv", inputs, f"{cell.name}/conv", name=f"{cell.name}/conv",
               kernel_shape=list(cell.kernel), strides=list(cell.stride),
               pads=[ph, pw, ph, pw], dilations=list(cell.dilation), group=group)
    return _activation(g, cell.activation, y, cell.name)


def _fc(g, cell, xs):
    flat = [g.node("Flatten", [x], f"{cell.name}/flatten{k}", axis=1) for k, x in enumerate(xs)]
    x = flat[0] if len(flat) == 1 else g.node("Concat", flat, f"{cell.name}/concat", axis=1)
    inputs = [x, g.const(f"{cell.name}.weights", g.weights(cell, fc_weights(cell)))]
    bias = g.bias(cell)
    if bias is not None:
        inputs.append(g.const(f"{cell.name}.biases", bias))
    y = g.node("Gemm", inputs, f"{cell.name}/gemm", transB=1)
    shape = g.const(f"{cell.name}.shape", np.array([0, cell.nb_outputs, 1, 1], np.int64))
    y = g.node("Reshape", [y, shape], f"{cell.name}/nchw")
    return _activation(g, cell.activation, y, cell.name)


def _deconv(g, cell, xs):
    # ONNX's ConvTranspose scatters x[c] through W[c, o]: our (O, C, KH, KW) swapped.
    w = g.weights(cell, np.concatenate(conv_weights(cell), axis=1)).transpose(1, 0, 2, 3)
    inputs = [_joined(g, cell, xs), g.const(f"{cell.name}.weights", w)]
    bias = g.bias(cell)
    if bias is not None:
        inputs.append(g.const(f"{cell.name}.biases", bias))
    (ph, pw) = cell.padding
    y = g.node("ConvTranspose", inputs, f"{cell.name}/deconv", kernel_shape=list(cell.kernel),
               strides=list(cell.stride), pads=[ph, pw, ph, pw],
               dilations=list(cell.dilation))
    return _activation(g, cell.activation, y, cell.name)


def _normalize(g, cell, xs):
    n, x = cell.name, xs[0]
    axes = g.const(f"{n}.axes", np.array([1], np.int64))
    squares = g.node("Mul", [x, x], f"{n}/squares")
    total = g.node("ReduceSum", [squares, axes], f"{n}/sum", keepdims=1)
    total = g.node("Add", [total, g.const(f"{n}.epsilon", np.float32(NORMALIZE_EPSILON))],
                   f"{n}/plus_epsilon")
    return g.node("Div", [x, g.node("Sqrt", [total], f"{n}/norm")], n)


def _pool_channels(g, cell, x):
    """The mapped channels of each output reduced to one map (max or mean), as the cell
    does before pooling: a masked ReduceMax, or a 1x1 Conv of 1/count weights."""
    n, channels = cell.name, cell.mapping.shape[0]
    counts = [len(src) for src in cell.sources]
    if cell.pooling == "Max":
        if 0 in counts:
            raise UserError(f"[{n}] Pool: an output with no mapped channel (0 in n2prune) "
                            "has no ONNX export for Max pooling")
        mask = np.zeros((channels, len(cell.sources), 1, 1), bool)
        for j, src in enumerate(cell.sources):
            mask[src, j] = True
        axes = g.const(f"{n}.channel_axis", np.array([2], np.int64))
        x = g.node("Unsqueeze", [x, axes], f"{n}/unsqueezed")
        x = g.node("Where", [g.const(f"{n}.mapping", mask), x,
                            g.const(f"{n}.lowest", np.float32(-np.inf))], f"{n}/mapped")
        return g.node("ReduceMax", [x], f"{n}/channels", axes=[1], keepdims=0)
    mean = np.zeros((len(cell.sources), channels, 1, 1), np.float32)
    for j, src in enumerate(cell.sources):
        mean[j, src] = 1.0 / len(src) if len(src) else 0.0
    return g.node("Conv", [x, g.const(f"{n}.channel_mean", mean)], f"{n}/channels",
                  kernel_shape=[1, 1])


def _pool(g, cell, xs):
    (ph, pw) = cell.padding
    attrs = {"kernel_shape": list(cell.pool), "strides": list(cell.stride),
             "pads": [ph, pw, ph, pw]}
    x = _joined(g, cell, xs)
    if not cell.identity:
        x = _pool_channels(g, cell, x)
    if cell.pooling == "Max":
        y = g.node("MaxPool", [x], f"{cell.name}/pool", **attrs)
    else:
        # N2D2 divides by the whole window, padding included.
        y = g.node("AveragePool", [x], f"{cell.name}/pool", count_include_pad=1, **attrs)
    if not cell.identity and len(cell.sources) != cell.nb_outputs:  # one map for all outputs
        index = g.const(f"{cell.name}.output_map", cell.output_map.astype(np.int64))
        y = g.node("Gather", [y, index], f"{cell.name}/outputs", axis=1)
    return _activation(g, cell.activation, y, cell.name)


def _batchnorm(g, cell, xs):
    n = cell.name
    if xs[0] in g.folds:
        return _activation(g, cell.activation, xs[0], n)
    inputs = [_joined(g, cell, xs)] + [
        g.const(f"{n}.{key}", np.asarray(value, np.float32)) for key, value in
        (("scales", cell.scale.value), ("biases", cell.bias.value),
         ("means", cell.mean), ("variances", cell.variance))]
    y = g.node("BatchNormalization", inputs, f"{n}/bn", epsilon=float(cell.epsilon))
    return _activation(g, cell.activation, y, n)


def _scaled(g, name, x, w, s):
    """``x * w + s`` with the multiplication or addition left out where it is 1 or 0;
    ``w`` and ``s`` a scalar or one value per channel (as ``ElemWise.per_input``)."""
    w, s = np.asarray(w, np.float32).reshape(-1, 1, 1), np.asarray(s, np.float32).reshape(-1, 1, 1)
    if np.any(w != 1):
        x = g.node("Mul", [x, g.const(f"{name}.coefficient", _squeezed(w))], f"{name}/scaled")
    if np.any(s != 0):
        x = g.node("Add", [x, g.const(f"{name}.shift", _squeezed(s))], f"{name}/shifted")
    return x


def _squeezed(values):
    """One value as a scalar, per-channel values as ``(C, 1, 1)`` (NCHW broadcast)."""
    return values.reshape(()) if values.size == 1 else values


def _elemwise_terms(g, cell, xs):
    """The tensors the cell's operation sums (or multiplies, or takes the max of)."""
    n, op, f32 = cell.name, cell.operation, np.dtype(np.float32)
    w, s = cell.per_input(cell.coefficients, f32), cell.per_input(cell.shifts, f32)
    if op == "Sum":
        return [_scaled(g, f"{n}.{k}", x, w[k], s[k]) for k, x in enumerate(xs)]
    if op == "AbsSum":
        return [_scaled(g, f"{n}.{k}", g.node("Abs", [x], f"{n}/abs{k}"), w[k], 0)
                for k, x in enumerate(xs)]
    if op == "EuclideanSum":
        return [_scaled(g, f"{n}.{k}", g.node("Mul", [x, x], f"{n}/square{k}"),
                        np.square(w[k]), np.square(s[k])) for k, x in enumerate(xs)]
    return list(xs)  # Prod and Max use no coefficients, as N2D2's


def _elemwise(g, cell, xs):
    n, op = cell.name, cell.operation
    terms = _elemwise_terms(g, cell, xs)
    if op == "Prod":  # ONNX's Mul takes two inputs: a chain
        y = terms[0]
        for k, term in enumerate(terms[1:], 1):
            y = g.node("Mul", [y, term], f"{n}/prod{k}")
    elif op == "Max":
        y = g.node("Max", terms, f"{n}/max")
    else:
        y = g.node("Sum", terms, f"{n}/sum")
        if op == "EuclideanSum":
            y = g.node("Sqrt", [y], f"{n}/sqrt")
    return _activation(g, cell.activation, y, n)


def _padding(g, cell, xs):
    (in_rows, out_rows), (in_cols, out_cols) = cell.rows, cell.cols
    _, height, width = cell.input_shapes[0]
    top = out_rows.start - in_rows.start
    left = out_cols.start - in_cols.start
    bottom = cell.output_shape[1] - height - top
    right = cell.output_shape[2] - width - left
    pads = g.const(f"{cell.name}.pads", np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))
    return g.node("Pad", [_joined(g, cell, xs), pads], cell.name)


def _softmax(g, cell, xs):
    n, channels = cell.name, cell.output_shape[0]
    if cell.group_size == channels:
        return g.node("Softmax", [xs[0]], n, axis=1)
    # Consecutive groups of channels: (N, groups, size, H, W), softmax over the size.
    _, height, width = cell.output_shape
    grouped = g.const(f"{n}.grouped", np.array([0, channels // cell.group_size,
                                               cell.group_size, height, width], np.int64))
    y = g.node("Reshape", [xs[0], grouped], f"{n}/grouped")
    y = g.node("Softmax", [y], f"{n}/softmax", axis=2)
    flat = g.const(f"{n}.shape", np.array([0, channels, height, width], np.int64))
    return g.node("Reshape", [y, flat], n)


def _dropout(g, cell, xs):
    return g.node("Identity", [_joined(g, cell, xs)], cell.name)


def _target_bias(g, cell, xs):
    return g.node("Identity", [xs[0]], cell.name)  # a training-time margin only


def _activation_cell(g, cell, xs):
    return _activation(g, cell.activation, _joined(g, cell, xs), cell.name)


EXPORTERS = {"Conv": _conv, "Deconv": _deconv, "Fc": _fc, "Normalize": _normalize,
             "Pool": _pool, "BatchNorm": _batchnorm, "ElemWise": _elemwise,
             "Padding": _padding, "Softmax": _softmax, "Dropout": _dropout,
             "Activation": _activation_cell, "TargetBias": _target_bias}


def linear_activation(activation):
    """True for an identity activation: Linear with no clipping."""
    return type(activation).__name__ == "Linear" and not activation.clipping
