"""``Type=ONNX``: an ONNX graph imported as cells gives onnxruntime's outputs, our own
exports come back with the same outputs, imported cells prune and train, and bad
files or graphs are refused in one line."""

import numpy as np
import pytest
from paths import MODELS_INI
from runs import train
from test_io_onnx_export import EVERY_MAPPED_CELL, _exported

from n2prune import cli
from n2prune.errors import UserError
from n2prune.graph.builder import build_network
from n2prune.ini import load_ini
from n2prune.inspect import load_run
from n2prune.io.onnx_export import export_onnx
from n2prune.io.onnx_import import MAX_ONNX_BYTES
from n2prune.train.model import Model

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
helper, numpy_helper, TP = onnx.helper, onnx.numpy_helper, onnx.TensorProto


def _const(rng, name, shape, low=None, high=None):
    value = rng.normal(0, 0.3, shape) if low is None else rng.uniform(low, high, shape)
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def _save(path, nodes, inits, shape, output, rank=2, opset=17):
    """An ONNX model of ``nodes`` on an NCHW input ``x`` of per-sample ``shape``, checked;
    ``output`` of ``rank`` dims."""
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TP.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info(output, TP.FLOAT, ["N"] + [None] * (rank - 1))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset >= 15 else 4
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _ini(tmp_path, onnx_file, shape, target, extra=""):
    channels, height, width = shape
    path = tmp_path / "model.ini"
    path.write_text(f"[sp]\nSizeX={width}\nSizeY={height}\nNbChannels={channels}\nBatchSize=4\n\n"
                    f"[onnx]\nInput=sp\nType=ONNX\nFile={onnx_file}\n{extra}\n"
                    f"[{target}.Target]\n")
    return path


def _runtime(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0].reshape(len(x), -1)


def _same_as_runtime(tmp_path, onnx_file, shape, target, extra=""):
    """The imported network; its outputs on random inputs are onnxruntime's."""
    network, _, _ = build_network(load_ini(_ini(tmp_path, onnx_file, shape, target, extra)))
    x = np.random.default_rng(1).uniform(-1, 1, (6, *shape)).astype(np.float32)
    expected = _runtime(onnx_file, x)
    np.testing.assert_allclose(network.predict(x), expected, atol=1e-4, rtol=1e-5)
    assert expected.std() > 0
    return network


def _residual(path):
    """Conv+Relu, BatchNorm, grouped Conv, residual Add+Relu, Concat, MaxPool, Gemm, Softmax."""
    rng = np.random.default_rng(0)
    inits = [_const(rng, "w1", (8, 3, 3, 3)), _const(rng, "b1", (8,)),
             _const(rng, "s", (8,), 0.5, 1.5), _const(rng, "bb", (8,)), _const(rng, "m", (8,)),
             _const(rng, "v", (8,), 0.5, 2), _const(rng, "w2", (8, 4, 3, 3)),
             _const(rng, "wf", (10, 16 * 6 * 6)), _const(rng, "bf", (10,))]
    node = helper.make_node
    nodes = [node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             node("Relu", ["c1"], ["r1"]),
             node("BatchNormalization", ["r1", "s", "bb", "m", "v"], ["bn"], epsilon=1e-3),
             node("Conv", ["bn", "w2"], ["c2"], pads=[1, 1, 1, 1], group=2),
             node("Add", ["c2", "bn"], ["add"]), node("Relu", ["add"], ["r2"]),
             node("Concat", ["r2", "bn"], ["cat"], axis=1),
             node("MaxPool", ["cat"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             node("Flatten", ["p"], ["f"]), node("Gemm", ["f", "wf", "bf"], ["fc"], transB=1),
             node("Softmax", ["fc"], ["prob"], axis=1)]
    return _save(path, nodes, inits, (3, 12, 12), "prob")


def test_a_residual_graph_gives_onnxruntimes_outputs(tmp_path):
    path = _residual(tmp_path / "res.onnx")
    network = _same_as_runtime(tmp_path, path, (3, 12, 12), "prob")
    cells = {c.name: (c.type_name, type(getattr(c, "activation", None)).__name__)
             for c in network.cells}
    # N2D2's naming and fusion: a cell per computing node, named after its output;
    # each Relu inside the cell before it; Concat an Activation cell.
    assert cells == {"c1": ("Conv", "Rectifier"), "bn": ("BatchNorm", "Linear"),
                     "c2": ("Conv", "Linear"), "add": ("ElemWise", "Rectifier"),
                     "cat": ("Activation", "Linear"), "p": ("Pool", "Linear"),
                     "fc": ("Fc", "Linear"), "prob": ("Softmax", "NoneType")}
    assert network.inputs["cat"] == ["add", "bn"]
    w1 = numpy_helper.to_array(onnx.load(str(path)).graph.initializer[0])
    np.testing.assert_array_equal(network.cell("c1").weights[0].value, w1)  # the file's weights
    assert network.cell("c2").connections[0].kind == "grouped"
    bn = network.cell("bn")  # ONNX's momentum 0.9 weighs the running statistics
    assert (bn.epsilon, bn.momentum) == pytest.approx((1e-3, 0.1))


def _variety(path):
    """Asymmetric and SAME padding, depthwise conv, clipped ReLU, average pooling with its
    padding counted, a shared Relu input, LeakyRelu, Swish, scalar and per-channel
    constants, Sub and Max of tensors, Pad, global pooling, MatMul and views."""
    rng = np.random.default_rng(2)
    node = helper.make_node
    inits = [_const(rng, "w1", (6, 2, 3, 3)), _const(rng, "wd", (6, 1, 3, 3)),
             _const(rng, "ch", (1, 6, 1, 1), 0.5, 2), numpy_helper.from_array(np.float32(0.5), "half"),
             numpy_helper.from_array(np.float32(0), "zero"), numpy_helper.from_array(np.float32(6), "six"),
             numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 0, 2], np.int64), "pads"),
             _const(rng, "wm", (6, 5)), numpy_helper.from_array(np.array([0, -1], np.int64), "flat"),
             _const(rng, "bias", (5,))]
    nodes = [node("Conv", ["x", "w1"], ["c1"], pads=[0, 1, 1, 0]),
             node("Clip", ["c1", "zero", "six"], ["r6"]),
             node("Conv", ["r6", "wd"], ["dw"], auto_pad="SAME_UPPER", strides=[2, 2], group=6),
             node("Relu", ["dw"], ["shared"]),  # dw is read twice: a cell of its own
             node("Sub", ["dw", "shared"], ["neg"]),
             node("LeakyRelu", ["neg"], ["leaky"], alpha=0.2),
             node("Sigmoid", ["leaky"], ["sig"]), node("Mul", ["leaky", "sig"], ["swish"]),
             node("Mul", ["swish", "ch"], ["scaled"]), node("Add", ["scaled", "half"], ["shifted"]),
             node("Max", ["shifted", "shared"], ["mx"]),
             node("Pad", ["mx", "pads"], ["padded"]),
             node("AveragePool", ["padded"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                  count_include_pad=1),
             node("Tanh", ["ap"], ["th"]), node("GlobalAveragePool", ["th"], ["gap"]),
             node("Reshape", ["gap", "flat"], ["v"]), node("MatMul", ["v", "wm"], ["mm"]),
             node("Add", ["mm", "bias"], ["out"]), node("Softplus", ["out"], ["sp_out"])]
    return _save(path, nodes, inits, (2, 9, 10), "sp_out")


def test_padding_pooling_activations_and_constants_give_onnxruntimes_outputs(tmp_path):
    network = _same_as_runtime(tmp_path, _variety(tmp_path / "v.onnx"), (2, 9, 10), "out")
    types = {c.name: c.type_name for c in network.cells}
    assert types["c1_padding"] == "Padding" and types["shared"] == "Activation"
    assert types["sig"] == "Activation"  # leaky is read twice: Sigmoid cannot go into it
    assert network.cell("c1").activation.clipping == 6.0
    assert network.cell("dw").connections[0].kind == "depthwise"
    assert network.cell("out").coeff_mode == "PerChannel"  # MatMul's bias, one per output


def _scalars(**values):
    return [numpy_helper.from_array(np.asarray(v, np.float32 if isinstance(v, float) else np.int64), k)
            for k, v in values.items()]


def test_constants_reductions_and_views_give_onnxruntimes_outputs(tmp_path):
    """Div and Sub by constants, Max(x, 0), a per-pixel Softmax, Dropout, Cast, ReduceMean
    without its kept dims, Unsqueeze and Squeeze back."""
    rng = np.random.default_rng(4)
    node = helper.make_node
    inits = [*_scalars(two=2.0, one=1.0, zero=0.0, ratio=0.3, axes=[2, 3]),
             _const(rng, "w", (4, 3))]
    nodes = [node("Div", ["x", "two"], ["d"]), node("Sub", ["one", "d"], ["s"]),
             node("Max", ["s", "zero"], ["m"]), node("Softmax", ["m"], ["sm"], axis=1),
             node("Dropout", ["sm", "ratio"], ["dr"]), node("Cast", ["dr"], ["c"], to=TP.FLOAT),
             node("ReduceMean", ["c"], ["r"], axes=[2, 3], keepdims=0),
             node("Unsqueeze", ["r", "axes"], ["u"]), node("Squeeze", ["u", "axes"], ["q"]),
             node("Gemm", ["q", "w"], ["out"], transB=1)]
    path = _save(tmp_path / "c.onnx", nodes, inits, (3, 5, 5), "out")
    network = _same_as_runtime(tmp_path, path, (3, 5, 5), "out")
    assert [c.type_name for c in network.cells] == [
        "ElemWise", "ElemWise", "Softmax", "Dropout", "Pool", "Fc"]
    assert type(network.cell("s").activation).__name__ == "Rectifier"  # Max(s, 0)
    assert network.cell("dr").dropout == pytest.approx(0.3)


def test_an_opset_9_graph_reads_its_attributes(tmp_path):
    """Before opsets 11-13, Pad's pads, Clip's bounds and Dropout's ratio are attributes
    and Softmax normalises the flattened dims."""
    rng = np.random.default_rng(5)
    node = helper.make_node
    inits = [_const(rng, "w", (4, 2, 3, 3)), _const(rng, "s", (4,), 0.5, 1.5),
             _const(rng, "b", (4,)), _const(rng, "m", (4,)), _const(rng, "v", (4,), 0.5, 2),
             _const(rng, "wf", (5, 4 * 3 * 3)), _const(rng, "bf", (1, 5))]
    nodes = [node("Pad", ["x"], ["p"], pads=[0, 0, 1, 1, 0, 0, 1, 1]),
             node("Conv", ["p", "w"], ["c"]), node("Clip", ["c"], ["r"], min=0.0, max=0.5),
             node("BatchNormalization", ["r", "s", "b", "m", "v"], ["bn"]),
             node("Dropout", ["bn"], ["d"], ratio=0.2),
             node("MaxPool", ["d"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
             node("Flatten", ["mp"], ["f"]), node("Gemm", ["f", "wf", "bf"], ["fc"], transB=1, beta=0.5),
             node("Softmax", ["fc"], ["prob"])]
    path = _save(tmp_path / "o9.onnx", nodes, inits, (2, 6, 6), "prob", opset=9)
    network = _same_as_runtime(tmp_path, path, (2, 6, 6), "prob")
    assert network.cell("c").activation.clipping == 0.5
    assert network.cell("d").dropout == pytest.approx(0.2)


def test_our_export_of_every_mapped_cell_comes_back_with_its_outputs(tmp_path):
    ini = tmp_path / "all.ini"
    ini.write_text(EVERY_MAPPED_CELL)
    network = Model(ini, need_data=False).network
    rng = np.random.default_rng(0)
    bn = network.cell("bn")
    bn.mean[...], bn.variance[...] = rng.normal(size=6), rng.uniform(0.5, 2, size=6)
    export_onnx(network, tmp_path / "all.onnx")
    imported = _same_as_runtime(tmp_path, tmp_path / "all.onnx", network.input_shape, "softmax")
    x = rng.uniform(-1, 1, (32, *network.input_shape)).astype(np.float32)
    np.testing.assert_allclose(imported.predict(x), network.predict(x), atol=1e-6)
    # Our export's LeakyRelu + Min and Tanh's scaling come back as one activation each.
    relu = imported.cell("c1/conv").activation
    assert (relu.leak_slope, relu.clipping) == pytest.approx((0.1, 0.5))
    assert imported.inputs["fc/gemm"] == ["pool/pool", "gmax/pool"]  # Flatten+Concat: two inputs


@pytest.mark.parametrize("model", ["lenet.ini", "mobile_residual.ini"])
def test_a_trained_export_imports_and_exports_again_with_the_same_outputs(tmp_path, model):
    network, _, path = _exported(tmp_path, (MODELS_INI / model).read_text(), model, steps=3)
    imported, _, _ = build_network(load_ini(_ini(tmp_path, path, network.input_shape, "softmax")))
    x = np.random.default_rng(0).uniform(0, 1, (64, *network.input_shape)).astype(np.float32)
    expected = network.predict(x)
    np.testing.assert_allclose(imported.predict(x), expected, atol=1e-6)
    export_onnx(imported, tmp_path / "again.onnx")
    np.testing.assert_allclose(_runtime(tmp_path / "again.onnx", x), expected, atol=1e-5)


def _mnist_net(path):
    rng = np.random.default_rng(3)
    node = helper.make_node
    inits = [_const(rng, "w1", (6, 1, 5, 5)), _const(rng, "b1", (6,)),
             _const(rng, "w2", (12, 6, 5, 5), -0.2, 0.2), _const(rng, "wf", (12 * 4 * 4, 10))]
    nodes = [node("Conv", ["x", "w1", "b1"], ["conv1"]), node("Relu", ["conv1"], ["relu1"]),
             node("MaxPool", ["relu1"], ["pool1"], kernel_shape=[2, 2], strides=[2, 2]),
             node("Conv", ["pool1", "w2"], ["conv2"]), node("Relu", ["conv2"], ["relu2"]),
             node("MaxPool", ["relu2"], ["pool2"], kernel_shape=[2, 2], strides=[2, 2]),
             node("Flatten", ["pool2"], ["flat"]), node("MatMul", ["flat", "wf"], ["fc"]),
             node("Softmax", ["fc"], ["prob"])]
    return _save(path, nodes, inits, (1, 28, 28), "prob")


PRUNED = """
[database]
Type=MNIST_IDX_Database
Validation=0.1

[sp]
SizeX=28
SizeY=28
BatchSize=32

[onnx]
Input=sp
Type=ONNX
File=mnist.onnx

[onnx:Conv_def]
ConfigSection=solver.config

; conv2 is an ONNX node's output: this section gives the imported cell its keys.
[conv2]
QWeight=Prune
QWeight.PruningMode=Static
QWeight.PruningFiller=IterNonStruct
QWeight.Threshold=0.5
ConfigSection=solver.config

[prob.Target]

[solver.config]
Solvers.LearningRate=0.05
Solvers.Momentum=0.9
"""


def test_an_imported_conv_prunes_while_it_trains_and_exports_again(tmp_path):
    _mnist_net(tmp_path / "mnist.onnx")
    ini = tmp_path / "pruned.ini"
    ini.write_text(PRUNED)
    run = tmp_path / "run"
    assert train(ini, run, "--steps", "4") == 0
    config = (run / "config.ini").read_text()
    assert "[conv2]" in config and "KernelDims" not in config  # generated keys are not dumped
    assert f"File={tmp_path / 'mnist.onnx'}" in config
    network, _ = load_run(run)  # rebuilt from config.ini: the ONNX file read again
    conv2, conv1 = network.cell("conv2"), network.cell("conv1")
    mask = conv2.quantizer.mask(0)
    assert np.mean(mask == 0) == pytest.approx(0.5, abs=0.01)
    assert not conv2.effective_weights(0)[mask == 0].any()
    assert getattr(conv1, "quantizer", None) is None
    w1, _, w2, _ = (numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "mnist.onnx")).graph.initializer)
    assert not np.array_equal(conv1.weights[0].value, w1)  # it trained, from the file's weights
    # The static mask was drawn on the file's weights: it drops their smallest half.
    assert np.abs(w2[mask == 0]).max() <= np.abs(w2[mask != 0]).min()
    out = tmp_path / "again.onnx"
    assert cli.main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    x = np.random.default_rng(0).uniform(0, 1, (16, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(_runtime(out, x), network.predict(x), atol=1e-5)


def test_ignore_transfer_inputs_aliases_and_def_sections(tmp_path):
    """N2D2's transfer-learning file: the last node ignored, a new Fc reading a tensor of
    the graph (``Input=onnx,<tensor>``), ``[onnx:Conv_def]`` keys, ``ONNX_init=0``."""
    path = _mnist_net(tmp_path / "mnist.onnx")
    extra = ("Ignore=fc prob\nONNX_init=0\n[onnx:Conv_def]\nWeightsFiller=ConstantFiller\n"
             "WeightsFiller.Value=0.25\n[head]\nInput=onnx,flat\nType=Fc\nNbOutputs=3\n")
    network, _, _ = build_network(load_ini(_ini(tmp_path, path, (1, 28, 28), "head", extra)))
    assert [c.name for c in network.cells] == ["conv1", "pool1", "conv2", "pool2", "head"]
    assert network.inputs["head"] == ["pool2"]  # flat: an alias of pool2's output
    assert np.all(network.cell("conv2").weights[0].value == 0.25)


@pytest.mark.parametrize("ignore", [0, 1])
def test_an_input_size_other_than_the_graphs_is_a_warning_unless_ignored(tmp_path, caplog, ignore):
    rng = np.random.default_rng(6)
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["y"])]
    path = _save(tmp_path / "g.onnx", nodes, [_const(rng, "w", (3, 4))], (3, 12, 12), "y")
    ini = _ini(tmp_path, path, (3, 16, 16), "y", f"IgnoreInputSize={ignore}\n")
    network, _, _ = build_network(load_ini(ini))
    assert network.cell("g").output_shape == (3, 1, 1)  # the provider's 16x16, pooled
    warned = [r.message for r in caplog.records if "declares input x as 3x12x12" in r.message]
    assert len(warned) == 1 - ignore


def _error(tmp_path, capsys, text):
    """The one line ``n2prune check`` prints (exit 2) for the INI ``text``."""
    ini = tmp_path / "bad.ini"
    ini.write_text(text)
    capsys.readouterr()
    assert cli.main(["check", str(ini)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


HEAD = "[sp]\nSizeX=12\nSizeY=12\nNbChannels=3\n[onnx]\nInput=sp\nType=ONNX\nFile=model.onnx\n"


@pytest.mark.parametrize("content,expected", [
    (None, "ONNX file not found: {dir}/model.onnx"),
    (b"", "the ONNX file is empty"),
    (b"\x0b\xad\xf0\x0d" * 64, "not an ONNX model"),
])
def test_a_missing_or_corrupt_file_is_one_line(tmp_path, capsys, content, expected):
    if content is not None:
        (tmp_path / "model.onnx").write_bytes(content)
    err = _error(tmp_path, capsys, HEAD + "[prob.Target]\n")
    assert "bad.ini:8 [onnx] File: " in err and expected.format(dir=tmp_path) in err


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path, capsys):
    with open(tmp_path / "model.onnx", "wb") as handle:
        handle.truncate(MAX_ONNX_BYTES + 1)  # sparse: nothing is written
    assert "larger than the 1 GiB" in _error(tmp_path, capsys, HEAD + "[prob.Target]\n")


def test_an_unsupported_node_names_itself_its_op_and_the_file(tmp_path, capsys):
    node = helper.make_node("LRN", ["x"], ["norm"], name="lrn0", size=3)
    _save(tmp_path / "model.onnx", [node], [], (3, 12, 12), "norm", rank=4)
    err = _error(tmp_path, capsys, HEAD + "[norm.Target]\n")
    assert (f"bad.ini:8 [onnx] File: {tmp_path / 'model.onnx'}: node 'lrn0' (LRN): operator LRN "
            "is not supported; supported: Add, AveragePool") in err


@pytest.mark.parametrize("extra,expected", [
    ("Transpose=1\n", "[onnx] Transpose: Transpose=1 (N2D2's swap of height and width"),
    ("CNTK=1\n", "[onnx] CNTK: CNTK=1"),
    ("Ignore=nothere\n", "[onnx] Ignore: unknown node output nothere"),
    ("[r1]\nQWeight=Prune\n", "[r1] QWeight: this activation is fused into cell [c1], which"),
    ("[r1]\nQAct=LSQ\n", "[r1] QAct: activation quantization (QAct) is not supported"),
    ("[f]\nQWeight=Prune\n", "[f] names tensor f of the ONNX graph, which is the output of cell [p]"),
    ("[c1]\nKernelDims=5 5\n", "[c1] KernelDims: KernelDims is set by the ONNX graph"),
    ("[bn]\nInput=sp\nType=Pool\n", "[bn] is also a cell of the ONNX graph of [onnx]"),
    ("[late]\nInput=onnx\nType=Fc\nNbOutputs=2\n", "[late] Input: names only the ONNX import"),
])
def test_bad_keys_around_an_import_are_one_line(tmp_path, capsys, extra, expected):
    _residual(tmp_path / "model.onnx")
    assert expected in _error(tmp_path, capsys, HEAD + extra + "[prob.Target]\n")


def test_the_section_of_a_fused_activation_replaces_it_as_in_n2d2(tmp_path):
    path = _residual(tmp_path / "res.onnx")
    extra = "[r2]\nActivationFunction=Rectifier\nActivationFunction.LeakSlope=0.25\n"
    network, _, _ = build_network(load_ini(_ini(tmp_path, path, (3, 12, 12), "prob", extra)))
    assert network.cell("add").activation.leak_slope == 0.25  # r2: the Relu fused into add
    assert network.cell("c1").activation.leak_slope == 0.0


def test_a_malformed_node_is_one_line(tmp_path):
    graph = helper.make_graph([helper.make_node("Relu", [], ["r"], name="bare")], "t",
                              [helper.make_tensor_value_info("x", TP.FLOAT, ["N", 3, 12, 12])],
                              [helper.make_tensor_value_info("r", TP.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "bare.onnx"))  # no checker: it would refuse the node
    with pytest.raises(UserError, match=r"node 'bare' \(Relu\): malformed node \(IndexError"):
        build_network(load_ini(_ini(tmp_path, tmp_path / "bare.onnx", (3, 12, 12), "r")))


def test_a_flattened_map_read_by_a_per_channel_op_is_refused(tmp_path):
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Relu", ["f"], ["r"]),
             helper.make_node("Softmax", ["r"], ["s"], axis=1)]
    path = _save(tmp_path / "f.onnx", nodes, [], (2, 3, 3), "s")
    with pytest.raises(UserError, match=r"node 's' \(Softmax\): reads r, the flattened view"):
        build_network(load_ini(_ini(tmp_path, path, (2, 3, 3), "s")))
