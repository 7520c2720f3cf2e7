"""ONNX activations, arithmetic and views -> fused activations, ElemWise cells, aliases.

As N2D2's ONNX import: Relu, LeakyRelu, Sigmoid, Tanh, Softplus and Clip set
the activation of the cell that makes their input; Add, Sum, Sub, Mul and Max
of tensors are ElemWise cells; a constant operand (one value, or one per
channel) becomes an ElemWise cell's weights and shifts; an added zero is
dropped. Identity, Cast, Flatten, Reshape, Squeeze and Unsqueeze rename the
tensor when the layout stays the cells' (a flattened map, or a map restored).
Beyond N2D2: ``Max(x, 0)`` is a ReLU and ``Min`` of a ReLU's output and a
constant is its ``Clipping`` (how n2prune's export writes a clipped ReLU).
"""

import math

import numpy as np

from n2prune.graph.onnx_graph import Unsupported, number, op

# ONNX TensorProto data types a Cast may go to and keep a float tensor.
FLOAT_TYPES = {1: "FLOAT", 10: "FLOAT16", 11: "DOUBLE", 16: "BFLOAT16"}
# Two or more tensors -> the ElemWise Operation.
OPERATIONS = {"Add": "Sum", "Sum": "Sum", "Sub": "Sum", "Mul": "Prod", "Max": "Max"}


@op("Relu")
def relu(t, node):
    t.activate(node, "Rectifier")


@op("LeakyRelu")
def leaky_relu(t, node):
    t.activate(node, "Rectifier", {"LeakSlope": number(node.attrs.get("alpha", 0.01))})


@op("Sigmoid", "Tanh", "Softplus")
def smooth(t, node):
    t.activate(node, {"Sigmoid": "Logistic"}.get(node.op, node.op))


@op("Clip")
def clip(t, node):
    if t.graph.opset < 11:
        low, high = node.attrs.get("min"), node.attrs.get("max")
    else:
        low, high = t.scalar(node, 1), t.scalar(node, 2)
    if low is None and high is None:
        t.alias(node, t.tensor(node, node.inputs[0]))
    elif low == 0.0 and (high is None or high > 0):
        t.activate(node, "Rectifier", {} if high is None else {"Clipping": number(high)})
    elif high is not None and high > 0 and low == -high:
        t.activate(node, "Linear", {"Clipping": number(high)})
    else:
        # N2D2 drops a Clip of [-a, b] and makes [-inf, b] a clipped ReLU: other functions.
        raise Unsupported(node, f"min={low}, max={high}: only [0, max] (a clipped ReLU) and "
                          "[-max, max] (a clipped Linear) are activations")


@op("Add", "Sum", "Sub", "Mul", "Div", "Max", "Min")
def elementwise(t, node):
    names = [name for name in node.inputs if name]
    constants = [name for name in names if name in t.graph.constants]
    if not constants:
        _of_tensors(t, node, [t.tensor(node, name) for name in names])
        return
    if len(names) != 2 or len(constants) != 1:
        raise Unsupported(node, "a constant operand needs exactly one data operand")
    first = names[0] in t.graph.constants
    x = t.tensor(node, names[1] if first else names[0])
    _with_constant(t, node, x, np.asarray(t.graph.constants[constants[0]], np.float64), first)


def _of_tensors(t, node, xs):
    if node.op not in OPERATIONS:
        raise Unsupported(node, f"{node.op} of two tensors has no cell (ElemWise adds, "
                          "multiplies or takes the maximum)")
    if len({(x.shape, x.rank) for x in xs}) != 1:
        raise Unsupported(node, "its operands differ in shape; broadcasting is not supported")
    keys = {"Operation": OPERATIONS[node.op]}
    if node.op == "Sub":
        keys["Weights"] = "1 -1"
    t.add_cell(node, "ElemWise", xs, xs[0].shape, keys, rank=xs[0].rank)


def _with_constant(t, node, x, value, first):
    if node.op in ("Min", "Max"):
        _bound(t, node, x, value)
        return
    if node.op == "Add" and not value.any():
        t.alias(node, x)  # as N2D2: adding zeros is no cell
        return
    if node.op == "Div" and first:
        raise Unsupported(node, "a constant divided by a tensor has no cell")
    values = channel_values(node, value, x)
    weights, shifts = {
        "Add": (1.0, values), "Sum": (1.0, values), "Mul": (values, 0.0), "Div": (1.0 / values, 0.0),
        "Sub": (-1.0, values) if first else (1.0, -values)}[node.op]
    keys = {"Operation": "Sum", "Weights": _vector(np.broadcast_to(weights, values.shape)),
            "Shifts": _vector(np.broadcast_to(shifts, values.shape))}
    if values.size > 1:
        keys["CoeffMode"] = "PerChannel"
    t.add_cell(node, "ElemWise", [x], x.shape, keys, rank=x.rank)


def _vector(values):
    return " ".join(number(v) for v in values)


def channel_values(node, value, x):
    """A constant operand as 1 value, or one per channel of ``x``; else Unsupported."""
    if value.size == 1:
        return value.reshape(1)
    channels = x.shape[0]
    per_channel = ((channels, 1, 1), (1, channels, 1, 1)) if x.rank == 4 else \
        ((channels,), (1, channels))
    if x.flat or value.shape not in per_channel:
        raise Unsupported(node, f"a constant of shape {value.shape}: only one value, or one "
                          "per channel, broadcasts in a cell")
    return value.reshape(-1)


def _bound(t, node, x, value):
    """``Max(x, 0)`` is a ReLU; ``Min`` of a ReLU's output and ``c > 0`` its clipping."""
    c = float(value.reshape(-1)[0]) if value.size == 1 else None
    if node.op == "Max" and c == 0.0:
        t.activate(node, "Rectifier")
        return
    spec = t.cells.get(x.cell)
    if (node.op == "Min" and c is not None and c > 0 and spec is not None
            and spec.keys.get("ActivationFunction") == "Rectifier"
            and "ActivationFunction.Clipping" not in spec.keys
            and t.sole_reader(t.heads[spec.name])):
        spec.keys["ActivationFunction.Clipping"] = number(c)
        t.take_over(node, spec, x)
        return
    raise Unsupported(node, f"{node.op} with a constant: only Max(x, 0) (a ReLU) and Min(relu, "
                      "c > 0) (a clipped ReLU) have a cell")


@op("Identity")
def identity(t, node):
    t.alias(node, t.tensor(node, node.inputs[0]))


@op("Cast")
def cast(t, node):
    if node.attrs.get("to") not in FLOAT_TYPES:
        raise Unsupported(node, "a Cast to a type other than a float changes the values")
    t.alias(node, t.tensor(node, node.inputs[0]))


@op("Flatten")
def flatten(t, node):
    x = t.tensor(node, node.inputs[0])
    if node.attrs.get("axis", 1) % (x.rank + 1) != 1:
        raise Unsupported(node, "only a Flatten keeping the batch (axis=1) is supported")
    _view(t, node, x, (math.prod(x.shape),))


@op("Reshape")
def reshape(t, node):
    x = t.tensor(node, node.inputs[0])
    shape = t.const(node, 1) if len(node.inputs) > 1 else node.attrs.get("shape")
    if shape is None:
        raise Unsupported(node, "a computed shape is not supported")
    dims = [int(d) for d in np.asarray(shape).reshape(-1)]
    source = (None, *x.dims)
    dims = [source[i] if d == 0 and i < len(source) else d for i, d in enumerate(dims)]
    per_sample = dims[1:]
    if -1 in per_sample:
        known = math.prod(d for d in per_sample if d != -1)
        per_sample[per_sample.index(-1)] = math.prod(x.shape) // known if known else -1
    _view(t, node, x, tuple(per_sample))


@op("Squeeze", "Unsqueeze")
def squeeze(t, node):
    x = t.tensor(node, node.inputs[0])
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1:
        axes = t.const(node, 1)
    dims = [None, *x.dims]
    if node.op == "Squeeze":
        axes = {a % len(dims) for a in axes} if axes is not None else \
            {i for i, d in enumerate(dims) if d == 1}
        if 0 in axes or any(dims[a] != 1 for a in axes):
            raise Unsupported(node, f"axes {sorted(axes)}: only dims of size 1 after the batch")
        dims = [d for i, d in enumerate(dims) if i not in axes]
    else:
        if axes is None:
            raise Unsupported(node, "axes are missing")
        for a in sorted(a % (len(dims) + len(axes)) for a in axes):
            dims.insert(a, 1)
        if dims[0] is not None:
            raise Unsupported(node, "a new axis before the batch is not supported")
    _view(t, node, x, tuple(dims[1:]))


def _view(t, node, x, dims):
    """The node's output is ``x`` seen with per-sample ``dims``, when the layout stays ours."""
    if math.prod(dims) != math.prod(x.shape) or min(dims, default=1) < 1:
        raise Unsupported(node, f"{x.dims} cannot be seen as {dims}")
    if dims == tuple(x.shape) or (len(dims) == 3 and dims[1:] == (1, 1) == x.shape[1:]):
        t.alias(node, x, rank=4)
    elif len(dims) == 1:
        t.alias(node, x, rank=2)
    else:
        raise Unsupported(node, f"{x.dims} seen as {dims}: only flattening a map, or giving "
                          "it back its own (C, H, W), keeps the cells' layout")
