"""A network as an ONNX model (opset 17), through the optional ``onnx`` package.

Tensors inside n2prune are (C, H, W, N); ONNX's are NCHW, so the model takes
an NCHW float input named after the stimuli provider and each cell's output
is the tensor named after its INI section. Initializers are named
``<cell>.weights`` / ``<cell>.biases`` / ... and hold the weights the forward
pass uses: a pruned cell's masked weights are exact zeros. Per-cell pruning
facts go into ``metadata_props`` as ``<cell>.pattern`` / ``<cell>.sparsity``.
"""

import numpy as np

from n2prune.errors import UserError
from n2prune.io.atomic import atomic_open

OPSET = 17
INSTALL_HINT = "pip install 'n2prune[onnx]'"


def require_onnx():
    """The ``onnx`` module, or a one-line UserError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise UserError(f"ONNX export needs the onnx package: {INSTALL_HINT}") from None
    return onnx


class _Graph:
    """Nodes and initializers collected while walking the cells."""

    def __init__(self, onnx):
        self.onnx, self.helper = onnx, onnx.helper
        self.nodes, self.initializers = [], []

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


def _conv_weights(cell):
    """Per input: the effective weights, unconnected kernels zero."""
    tensors = []
    for k, conn in enumerate(cell.connections):
        w = np.array(cell.effective_weights(k), dtype=np.float32)
        if conn.mask is not None:
            w *= conn.mask
        if conn.groups is not None:
            keep = np.zeros(w.shape[:2], dtype=bool)
            for chans, outs in conn.groups:
                keep[outs, chans] = True
            w *= keep[:, :, None, None]
        tensors.append(w)
    return tensors


def _group_layout(cell):
    """``(groups, compact weights)`` when one input's mapping is block-diagonal
    with equal blocks in order; None otherwise (dense weights then)."""
    if len(cell.connections) != 1 or cell.connections[0].groups is None:
        return None
    conn, w = cell.connections[0], _conv_weights(cell)[0]
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
        group, w = 1, np.concatenate(_conv_weights(cell), axis=1)
    inputs = [_joined(g, cell, xs), g.const(f"{cell.name}.weights", w)]
    if cell.bias is not None:
        inputs.append(g.const(f"{cell.name}.biases", cell.bias.value.astype(np.float32)))
    (ph, pw) = cell.padding
    y = g.node("Conv", inputs, f"{cell.name}/conv", name=f"{cell.name}/conv",
               kernel_shape=list(cell.kernel), strides=list(cell.stride),
               pads=[ph, pw, ph, pw], dilations=list(cell.dilation), group=group)
    return _activation(g, cell.activation, y, cell.name)


def _fc(g, cell, xs):
    if cell.normalize:
        raise UserError(f"[{cell.name}] Fc with Normalize=1 has no ONNX export yet")
    flat = [g.node("Flatten", [x], f"{cell.name}/flatten{k}", axis=1) for k, x in enumerate(xs)]
    x = flat[0] if len(flat) == 1 else g.node("Concat", flat, f"{cell.name}/concat", axis=1)
    w = np.concatenate([np.asarray(cell.effective_weights(k), np.float32)
                        for k in range(len(cell.weights))], axis=1)
    inputs = [x, g.const(f"{cell.name}.weights", w)]
    if cell.bias is not None:
        inputs.append(g.const(f"{cell.name}.biases", cell.bias.value.astype(np.float32)))
    y = g.node("Gemm", inputs, f"{cell.name}/gemm", transB=1)
    shape = g.const(f"{cell.name}.shape", np.array([0, cell.nb_outputs, 1, 1], np.int64))
    y = g.node("Reshape", [y, shape], f"{cell.name}/nchw")
    return _activation(g, cell.activation, y, cell.name)


def _pool(g, cell, xs):
    if not cell.identity:
        raise UserError(f"[{cell.name}] Pool: only a one-channel-per-output mapping has an "
                        "ONNX export")
    (ph, pw) = cell.padding
    attrs = {"kernel_shape": list(cell.pool), "strides": list(cell.stride),
             "pads": [ph, pw, ph, pw]}
    x = _joined(g, cell, xs)
    if cell.pooling == "Max":
        y = g.node("MaxPool", [x], f"{cell.name}/pool", **attrs)
    else:
        # N2D2 divides by the whole window, padding included.
        y = g.node("AveragePool", [x], f"{cell.name}/pool", count_include_pad=1, **attrs)
    return _activation(g, cell.activation, y, cell.name)


def _batchnorm(g, cell, xs):
    n = cell.name
    inputs = [_joined(g, cell, xs)] + [
        g.const(f"{n}.{key}", np.asarray(value, np.float32)) for key, value in
        (("scales", cell.scale.value), ("biases", cell.bias.value),
         ("means", cell.mean), ("variances", cell.variance))]
    y = g.node("BatchNormalization", inputs, f"{n}/bn", epsilon=float(cell.epsilon))
    return _activation(g, cell.activation, y, n)


def _elemwise(g, cell, xs):
    n, op = cell.name, cell.operation
    simple = cell.coeff_mode != "PerChannel" and not cell.shifts.any()
    if op not in ("Sum", "Prod", "Max") or not simple or (
            op != "Sum" and not np.all(cell.coefficients == 1.0)):
        raise UserError(f"[{n}] ElemWise Operation={op} with these coefficients/shifts has "
                        "no ONNX export (Sum, Prod, Max with plain coefficients only)")
    terms = list(xs)
    if op == "Sum":
        for k, c in enumerate(cell.coefficients[:len(xs)]):
            if c != 1.0:
                coeff = g.const(f"{n}.coefficient{k}", np.float32(c))
                terms[k] = g.node("Mul", [xs[k], coeff], f"{n}/scaled{k}")
    if op == "Prod":  # ONNX's Mul takes two inputs: a chain, the last one the cell's
        y = terms[0]
        for k, term in enumerate(terms[1:], 1):
            last = k == len(terms) - 1 and type(cell.activation).__name__ == "Linear" \
                and not cell.activation.clipping
            y = g.node("Mul", [y, term], n if last else f"{n}/prod{k}")
        if y == n:
            return y
    else:
        y = g.node(op, terms, f"{n}/{op.lower()}")
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
    if cell.group_size != cell.output_shape[0]:
        raise UserError(f"[{cell.name}] Softmax over groups of channels has no ONNX export")
    return g.node("Softmax", [xs[0]], cell.name, axis=1)


def _dropout(g, cell, xs):
    return g.node("Identity", [_joined(g, cell, xs)], cell.name)


def _activation_cell(g, cell, xs):
    return _activation(g, cell.activation, _joined(g, cell, xs), cell.name)


EXPORTERS = {"Conv": _conv, "Fc": _fc, "Pool": _pool, "BatchNorm": _batchnorm,
             "ElemWise": _elemwise, "Padding": _padding, "Softmax": _softmax,
             "Dropout": _dropout, "Activation": _activation_cell}


def pruning_facts(cell):
    """``{key: text}`` of one pruned cell's facts for ``metadata_props``."""
    q = getattr(cell, "quantizer", None)
    if q is None:
        return {}
    weights = [np.asarray(cell.effective_weights(k)) for k in range(len(cell.weights))]
    total = sum(w.size for w in weights)
    zeros = total - sum(int(np.count_nonzero(w)) for w in weights)
    facts = {"sparsity": f"{zeros / total:.6f}" if total else "0", "mode": str(q.prune_mode)}
    pattern = q.options.pattern
    facts["pattern"] = pattern if pattern is not None else f"N2D2 {q.prune_filler}"
    params = q.params
    for key in ("n", "m", "bank_size", "bank_interleave", "block_outputs", "block_inputs"):
        value = getattr(params, key, None)
        if pattern is not None and value is not None:
            facts[key] = str(value)
    return facts


def _output_cell(network):
    return network.metric_target.cell if network.metric_target else network.cells[-1].name


def _provider(network):
    """The name the cells give the stimuli provider: the one input no cell makes."""
    names = {n for inputs in network.inputs.values() for n in inputs} - network.by_name.keys()
    if len(names) != 1:
        raise UserError(f"ONNX export needs one stimuli provider, found {sorted(names)}")
    return names.pop()


def network_to_onnx(network):
    """The ``onnx.ModelProto`` of ``network`` (its current, masked weights)."""
    onnx = require_onnx()
    provider = _provider(network)
    g = _Graph(onnx)
    for cell in network.cells:
        export = EXPORTERS.get(cell.type_name)
        if export is None:
            raise UserError(f"[{cell.name}] cell type {cell.type_name} has no ONNX export")
        export(g, cell, list(network.inputs[cell.name]))
    helper, tp = onnx.helper, onnx.TensorProto
    channels, height, width = network.input_shape
    source = helper.make_tensor_value_info(provider, tp.FLOAT, ["N", channels, height, width])
    last = _output_cell(network)
    shape = network.by_name[last].output_shape
    result = helper.make_tensor_value_info(last, tp.FLOAT, ["N", *shape])
    graph = helper.make_graph(g.nodes, "n2prune", [source], [result], g.initializers)
    model = helper.make_model(graph, producer_name="n2prune",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # the IR of opset 17: runtimes older than onnx's default read it
    for cell in network.cells:
        for key, value in pruning_facts(cell).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = f"{cell.name}.{key}", value
    return model


def write_onnx(network, out, _run):
    """``export --format onnx``: the model at ``out``; the line the verb prints."""
    model = export_onnx(network, out)
    return f"wrote {out} (ONNX opset 17, {len(model.graph.node)} nodes)"


def export_onnx(network, path):
    """``network`` written as the ONNX file ``path`` (checked by ``onnx.checker``)."""
    onnx = require_onnx()
    model = network_to_onnx(network)
    onnx.checker.check_model(model, full_check=True)
    with atomic_open(path, "wb") as handle:
        handle.write(model.SerializeToString())
    return model
