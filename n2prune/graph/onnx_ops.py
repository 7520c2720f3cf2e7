"""ONNX operators that make cells with a window or weights, as N2D2's ONNX import.

Each translator reads one node through the ``Translation`` (``graph/onnx_graph``)
and adds a cell spec: section keys with N2D2's names, ConfigSection
parameters, the arrays to load. What a translator cannot express exactly is
``Unsupported``, one line naming the node: n2prune never builds a network
that computes something else than the file (N2D2 approximates a few cases,
docs/ini-reference.rst lists them). Activations, arithmetic and views are in
``graph/onnx_pointwise.py``.
"""

import dataclasses
import math

import numpy as np

from n2prune.graph.onnx_graph import Unsupported, number, op
from n2prune.graph.onnx_shapes import (
    dense_group_weights,
    pad_first,
    pairs,
    window_out,
    window_pads,
)


def _attr(node, name, default=None):
    return node.attrs.get(name, default)


@op("Conv")
def conv(t, node):
    x = t.spatial(node, node.inputs[0])
    w = t.weight(node, 1, ndim=4)
    bias = t.const(node, 2)
    nb_outputs, per_group, kh, kw = w.shape
    group = _attr(node, "group", 1)
    if per_group * group != x.shape[0] or nb_outputs % group:
        raise Unsupported(node, f"weights {w.shape} with group={group} do not fit "
                          f"{x.shape[0]} input channels")
    kernel = tuple(_attr(node, "kernel_shape", (kh, kw)))
    if kernel != (kh, kw):
        raise Unsupported(node, f"kernel_shape {kernel} differs from the weights' {(kh, kw)}")
    stride, dilation = pairs(node, "strides"), pairs(node, "dilations")
    pads = window_pads(node, x.shape[1:], kernel, stride, dilation)
    x, padding = pad_first(t, node, x, pads)
    keys = {"KernelDims": f"{kw} {kh}", "StrideDims": f"{stride[1]} {stride[0]}",
            "PaddingDims": f"{padding[1]} {padding[0]}",
            "DilationDims": f"{dilation[1]} {dilation[0]}"}
    if group > 1:
        keys["Mapping.NbGroups"] = group
    arrays = {"weights": [dense_group_weights(w, group, x.shape[0])]}
    if bias is not None:
        arrays["biases"] = np.asarray(bias, np.float32).reshape(-1)
    plane = window_out(node, x.shape[1:], kernel, stride, padding * 2, dilation)
    t.add_cell(node, "Conv", [x], (nb_outputs, *plane), keys,
               {"NoBias": int(bias is None)}, arrays)


def _pool_cell(t, node, x, window, stride, padding, pooling, rank=4):
    keys = {"PoolDims": f"{window[1]} {window[0]}", "StrideDims": f"{stride[1]} {stride[0]}",
            "PaddingDims": f"{padding[1]} {padding[0]}", "Pooling": pooling,
            "Mapping.ChannelsPerGroup": 1}
    plane = window_out(node, x.shape[1:], window, stride, padding * 2)
    t.add_cell(node, "Pool", [x], (x.shape[0], *plane), keys, rank=rank)


@op("MaxPool", "AveragePool")
def pool(t, node):
    x = t.spatial(node, node.inputs[0])
    if len(node.outputs) > 1 and t.is_read(node.outputs[1]):
        raise Unsupported(node, "its Indices output is read; n2prune has no such output")
    if "kernel_shape" not in node.attrs:
        raise Unsupported(node, "kernel_shape is missing")
    window, stride = tuple(_attr(node, "kernel_shape")), pairs(node, "strides")
    if pairs(node, "dilations") != (1, 1):
        raise Unsupported(node, "dilated pooling is not supported")
    pads = window_pads(node, x.shape[1:], window, stride, (1, 1))
    if _attr(node, "ceil_mode", 0) and window_out(node, x.shape[1:], window, stride, pads) \
            != window_out(node, x.shape[1:], window, stride, pads, ceil=True):
        raise Unsupported(node, "ceil_mode=1 gives a larger output here; n2prune rounds down")
    average = node.op == "AveragePool"
    if average and any(pads) and not _attr(node, "count_include_pad", 0):
        raise Unsupported(node, "count_include_pad=0 with padding: n2prune's average divides "
                          "by the whole window, padding included (as N2D2)")
    if not average and pads[:2] != pads[2:]:
        raise Unsupported(node, f"asymmetric padding {pads}: zeros added before a max "
                          "pooling would change its result")
    x, padding = pad_first(t, node, x, pads)
    _pool_cell(t, node, x, window, stride, padding, "Average" if average else "Max")


@op("GlobalAveragePool", "GlobalMaxPool")
def global_pool(t, node):
    x = t.spatial(node, node.inputs[0])
    pooling = "Average" if node.op == "GlobalAveragePool" else "Max"
    _pool_cell(t, node, x, x.shape[1:], (1, 1), (0, 0), pooling)


@op("ReduceMean", "ReduceMax")
def reduce(t, node):
    x = t.spatial(node, node.inputs[0])
    axes = _attr(node, "axes")
    if axes is None and len(node.inputs) > 1:
        axes = t.const(node, 1)
    rank = x.rank
    if axes is None or sorted(int(a) % rank for a in axes) != [2, 3] or rank != 4:
        raise Unsupported(node, f"axes {None if axes is None else list(axes)}: only the "
                          "spatial axes 2, 3 of a 4-D tensor reduce as a pooling")
    pooling = "Average" if node.op == "ReduceMean" else "Max"
    _pool_cell(t, node, x, x.shape[1:], (1, 1), (0, 0), pooling,
               rank=4 if _attr(node, "keepdims", 1) else 2)


@op("BatchNormalization")
def batchnorm(t, node):
    x = t.spatial(node, node.inputs[0])
    if _attr(node, "training_mode", 0) or not _attr(node, "spatial", 1):
        raise Unsupported(node, "only inference-mode, spatial batch normalisation is supported")
    arrays = {key: t.weight(node, k, ndim=1) for k, key in
              enumerate(("scales", "biases", "means", "variances"), 1)}
    if any(a.shape != (x.shape[0],) for a in arrays.values()):
        raise Unsupported(node, f"its parameters do not hold one value per channel ({x.shape[0]})")
    # ONNX weighs the running statistics by momentum; N2D2's MovingAverageMomentum
    # weighs the batch (N2D2 copies the ONNX value over; we convert it).
    params = {"Epsilon": number(_attr(node, "epsilon", 1e-5)),
              "MovingAverageMomentum": number(1.0 - _attr(node, "momentum", 0.9))}
    t.add_cell(node, "BatchNorm", [x], x.shape, {}, params, arrays, rank=x.rank)


@op("Gemm", "MatMul")
def gemm(t, node):
    x = t.tensor(node, node.inputs[0], parts=True)
    w = t.weight(node, 1, ndim=2)
    if node.op == "MatMul" and x.rank != 2:
        raise Unsupported(node, "only a MatMul of a 2-D tensor by a constant matrix is an Fc cell")
    if _attr(node, "transA", 0):
        raise Unsupported(node, "transA=1 is not supported")
    w = (w if _attr(node, "transB", 0) else w.T) * np.float32(_attr(node, "alpha", 1.0))
    inputs = x.parts or (x,)
    sizes = [math.prod(p.shape) for p in inputs]
    if w.shape[1] != sum(sizes):
        raise Unsupported(node, f"weights for {w.shape[1]} inputs; its input has {sum(sizes)}")
    arrays = {"weights": np.split(w, np.cumsum(sizes)[:-1], axis=1)}
    bias = t.const(node, 2) if node.op == "Gemm" else None
    if bias is not None:
        if bias.size not in (1, w.shape[0]):
            raise Unsupported(node, f"a bias of shape {bias.shape} for {w.shape[0]} outputs")
        bias = np.broadcast_to(np.asarray(bias, np.float32).reshape(-1), (w.shape[0],))
        arrays["biases"] = bias * np.float32(_attr(node, "beta", 1.0))
    t.add_cell(node, "Fc", inputs, (w.shape[0], 1, 1), {}, {"NoBias": int(bias is None)},
               arrays, rank=2)


@op("Concat")
def concat(t, node):
    xs = [t.tensor(node, name, parts=True) for name in node.inputs]
    rank = xs[0].rank
    if any(x.rank != rank for x in xs) or _attr(node, "axis") % rank != 1:
        raise Unsupported(node, "only a concatenation along the channels (or features) is supported")
    if any(x.flat or x.parts for x in xs):
        # Flattened maps, end to end: the inputs of the Fc that reads them.
        parts = tuple(p for x in xs for p in (x.parts or (x,)))
        size = sum(math.prod(p.shape) for p in parts)
        t.tensors[node.outputs[0]] = dataclasses.replace(xs[0], cell=None, shape=(size, 1, 1),
                                                         parts=parts)
        return
    if len({x.shape[1:] for x in xs}) != 1:
        raise Unsupported(node, "its inputs differ in height x width")
    # As N2D2: an Activation cell (identity) reading the inputs, which concatenates them.
    channels = sum(x.shape[0] for x in xs)
    t.add_cell(node, "Activation", xs, (channels, *xs[0].shape[1:]), {}, rank=rank)


@op("Softmax")
def softmax(t, node):
    x = t.spatial(node, node.inputs[0])
    axis = _attr(node, "axis", -1 if t.graph.opset >= 13 else 1) % x.rank
    # Before opset 13 Softmax normalises the flattened dims from ``axis`` on.
    if axis != 1 or (t.graph.opset < 13 and x.shape[1:] != (1, 1)):
        raise Unsupported(node, f"axis {axis} of a rank-{x.rank} tensor: n2prune's Softmax "
                          "normalises over the channels of each pixel")
    t.add_cell(node, "Softmax", [x], x.shape, {"WithLoss": 1}, rank=x.rank)


@op("Dropout")
def dropout(t, node):
    x = t.tensor(node, node.inputs[0])
    if len(node.outputs) > 1 and t.is_read(node.outputs[1]):
        raise Unsupported(node, "its mask output is read; n2prune has no such output")
    ratio = t.scalar(node, 1) if len(node.inputs) > 1 else None
    ratio = _attr(node, "ratio", 0.5) if ratio is None else ratio
    t.add_cell(node, "Dropout", [x], x.shape, {}, {"Dropout": number(ratio)}, rank=x.rank)


@op("Pad")
def pad(t, node):
    x = t.spatial(node, node.inputs[0])
    pads = _attr(node, "pads") if t.graph.opset < 11 else t.const(node, 1)
    value = _attr(node, "value", 0.0) if t.graph.opset < 11 else (t.scalar(node, 2) or 0.0)
    if _attr(node, "mode", "constant") != "constant" or value != 0.0 or len(node.inputs) > 3:
        raise Unsupported(node, "only a zero padding of the whole tensor (mode constant, "
                          "value 0, no axes) is supported")
    pads = [int(p) for p in (pads if pads is not None else ())]
    if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
        raise Unsupported(node, f"pads {pads}: only height and width of a 4-D tensor pad")
    keys = {"TopPadding": pads[2], "BottomPadding": pads[6], "LeftPadding": pads[3],
            "RightPadding": pads[7]}
    shape = (x.shape[0], x.shape[1] + pads[2] + pads[6], x.shape[2] + pads[3] + pads[7])
    t.add_cell(node, "Padding", [x], shape, keys)
