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
from n2prune.io.deployed import pruning_facts
from n2prune.io.onnx_cells import EXPORTERS, Graph, linear_activation

OPSET = 17
INSTALL_HINT = "pip install 'n2prune[onnx]'"


def require_onnx():
    """The ``onnx`` module, or a one-line UserError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise UserError(f"ONNX export needs the onnx package: {INSTALL_HINT}") from None
    return onnx


def _output_cell(network):
    return network.metric_target.cell if network.metric_target else network.cells[-1].name


def _provider(network):
    """The name the cells give the stimuli provider: the one input no cell makes."""
    names = {n for inputs in network.inputs.values() for n in inputs} - network.by_name.keys()
    if len(names) != 1:
        raise UserError(f"ONNX export needs one stimuli provider, found {sorted(names)}")
    return names.pop()


def batchnorm_folds(network):
    """``{producer: (scale, shift)}`` of each BatchNorm that can fold into the Conv,
    Deconv or Fc before it: that cell feeds only the BatchNorm, with no activation."""
    consumers = {}
    for name, inputs in network.inputs.items():
        for source in inputs:
            consumers.setdefault(source, []).append(name)
    folds = {}
    for cell in network.cells:
        sources = network.inputs[cell.name]
        if cell.type_name != "BatchNorm" or len(sources) != 1:
            continue
        producer = network.by_name.get(sources[0])
        if (producer is None or producer.type_name not in ("Conv", "Deconv", "Fc")
                or consumers[producer.name] != [cell.name]
                or not linear_activation(producer.activation)):
            continue
        scale = cell.scale.value / np.sqrt(cell.variance.astype(np.float64) + cell.epsilon)
        folds[producer.name] = (scale, cell.bias.value - cell.mean * scale)
    return folds


def network_to_onnx(network, fold_batchnorm=False):
    """The ``onnx.ModelProto`` of ``network`` (its current, masked weights); with
    ``fold_batchnorm``, BatchNorms folded into the cells before them where exact."""
    onnx = require_onnx()
    provider = _provider(network)
    g = Graph(onnx, batchnorm_folds(network) if fold_batchnorm else {})
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


def write_onnx(network, out, _run, fold_batchnorm=False):
    """``export --format onnx``: the model at ``out``; the line the verb prints."""
    model = export_onnx(network, out, fold_batchnorm)
    kept = sum(n.op_type == "BatchNormalization" for n in model.graph.node)
    kept = f", {kept} BatchNorm kept" if kept else ""
    return f"wrote {out} (ONNX opset 17, {len(model.graph.node)} nodes{kept})"


def export_onnx(network, path, fold_batchnorm=False):
    """``network`` written as the ONNX file ``path`` (checked by ``onnx.checker``)."""
    onnx = require_onnx()
    model = network_to_onnx(network, fold_batchnorm)
    onnx.checker.check_model(model, full_check=True)
    with atomic_open(path, "wb") as handle:
        handle.write(model.SerializeToString())
    return model
