"""``n2prune export RUN --format onnx``: the ONNX model passes onnx's full check and
onnxruntime gives n2prune's outputs on the whole MNIST test set."""

import numpy as np
import pytest
from networks import EVERY_C_CELL, EXPORT_NET_HEAD
from paths import MODELS_INI
from runs import train

from n2prune import cli
from n2prune.data.mnist import MnistIdxDatabase
from n2prune.inspect import load_run

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

MNIST_TEST_SIZE = 10000
ORT_BATCH = 1000  # onnxruntime's buffers for 10,000 images at once are needlessly large


@pytest.fixture(scope="module")
def mnist_test():
    """The whole official MNIST test set, scaled to [0, 1]."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("N2D2_DATA", raising=False)
        images = MnistIdxDatabase(validation=0.0, seed=0).images("test")
    assert len(images) == MNIST_TEST_SIZE
    return images.astype(np.float32) / 255.0


def _inputs(images, shape):
    """The MNIST images placed in the centre of the network's (C, H, W) input."""
    channels, height, width = shape
    top, left = (height - 28) // 2, (width - 28) // 2
    x = np.zeros((len(images), channels, height, width), np.float32)
    x[:, :, top:top + 28, left:left + 28] = images[:, None]
    return x


def _exported(tmp_path, ini_text, name, steps=20, *options):
    ini = tmp_path / name
    ini.write_text(ini_text)
    run, out = tmp_path / "run", tmp_path / "out" / "net.onnx"
    assert train(ini, run, "--steps", str(steps)) == 0
    assert cli.main(["export", str(run), "--format", "onnx", "--out", str(out), *options]) == 0
    network, _ = load_run(run)
    return network, onnx.load(str(out)), out


def _check_outputs(network, model, path, x):
    """onnx's full check passes; onnxruntime's outputs on NCHW ``x`` are n2prune's."""
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    expected = network.predict(x)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["sp"]
    got = np.concatenate([session.run(None, {"sp": x[i:i + ORT_BATCH]})[0]
                          for i in range(0, len(x), ORT_BATCH)]).reshape(len(x), -1)
    # rtol: float32 rounding of outputs far above 1 (the shrink test's raw scores)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-6)
    assert np.array_equal(got.argmax(1), expected.argmax(1))
    assert expected.std() > 0  # a network whose outputs vary: the comparison means something


def _initializers(model):
    return {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}


def test_lenet_outputs_equal(tmp_path, mnist_test):
    network, model, path = _exported(tmp_path, (MODELS_INI / "lenet.ini").read_text(), "lenet.ini")
    _check_outputs(network, model, path, _inputs(mnist_test, network.input_shape))
    names = {n.name for n in model.graph.node}
    assert {"conv1/conv", "pool1", "fc1/gemm", "softmax"} <= names | {model.graph.output[0].name}
    inits = _initializers(model)
    # conv2's LeNet mapping table: kernels of unconnected channels are exact zeros.
    mapping = network.cell("conv2").connections[0].mask[:, :, 0, 0]
    assert not inits["conv2.weights"][mapping == 0].any()
    assert inits["conv2.weights"][mapping != 0].any()


def test_pruned_lenet_keeps_exact_zeros_and_facts(tmp_path, mnist_test):
    text = (MODELS_INI / "lenet_2of4.ini").read_text()
    text = text.replace("QWeight.ScheduleDelay=$([sp]_EpochSize * 3)", "QWeight.ScheduleDelay=5")
    text = text.replace("QWeight.StepSizeThreshold=[sp]_EpochSize", "QWeight.StepSizeThreshold=5")
    network, model, path = _exported(tmp_path, text, "lenet_2of4.ini")
    _check_outputs(network, model, path, _inputs(mnist_test, network.input_shape))
    inits, meta = _initializers(model), {p.key: p.value for p in model.metadata_props}
    pruned = [c for c in network.cells if getattr(c, "quantizer", None) is not None]
    assert pruned
    for cell in pruned:
        exported = inits[f"{cell.name}.weights"]
        effective = np.asarray(cell.effective_weights(0))
        np.testing.assert_array_equal(exported, effective)
        mask = cell.quantizer.mask(0)
        assert np.mean(mask == 0) >= 0.3 and not exported[mask == 0].any(), cell.name
        assert np.signbit(exported[mask == 0]).sum() == 0  # +0.0: exact zeros, not -0.0
        zeros = float(np.mean(exported == 0))
        assert meta[f"{cell.name}.pattern"] == "NM"
        assert (meta[f"{cell.name}.n"], meta[f"{cell.name}.m"]) == ("2", "4")
        assert float(meta[f"{cell.name}.sparsity"]) == pytest.approx(zeros, abs=1e-6)


def test_mobile_residual_outputs_equal_batchnorm_kept_or_folded(tmp_path, mnist_test):
    text = (MODELS_INI / "mobile_residual.ini").read_text()
    network, model, path = _exported(tmp_path, text, "mobile_residual.ini")
    x = _inputs(mnist_test, network.input_shape)
    _check_outputs(network, model, path, x)
    ops = {n.name: n for n in model.graph.node}
    group = next(a.i for a in ops["dw2/conv"].attribute if a.name == "group")
    assert group == 16  # depthwise as a grouped convolution, not dense zeros
    assert ops["bn1/bn"].op_type == "BatchNormalization"
    assert ops["add2/sum"].op_type == "Sum"
    folded_path = tmp_path / "folded.onnx"
    assert cli.main(["export", str(tmp_path / "run"), "--format", "onnx", "--fold-batchnorm",
                     "--out", str(folded_path)]) == 0
    folded = onnx.load(str(folded_path))
    _check_outputs(network, folded, folded_path, x)
    # Every BatchNorm follows a Conv with no activation that feeds only it: all fold.
    assert not [n for n in folded.graph.node if n.op_type == "BatchNormalization"]
    assert len(folded.graph.node) < len(model.graph.node)


def test_gradually_pruned_lenet_outputs_equal(tmp_path, mnist_test):
    text = (MODELS_INI / "lenet_prune_gradual.ini").read_text()
    text = text.replace("QWeight.StepSizeThreshold=[sp]_EpochSize", "QWeight.StepSizeThreshold=4")
    network, model, path = _exported(tmp_path, text, "lenet_prune_gradual.ini", 30)
    _check_outputs(network, model, path, _inputs(mnist_test, network.input_shape))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["conv2.pattern"] == "N2D2 IterNonStruct"
    assert float(meta["conv2.sparsity"]) >= 0.5  # the schedule did prune
    assert not _initializers(model)["conv2.weights"][network.cell("conv2").quantizer.mask(0) == 0].any()


def test_shrunk_lenet_outputs_equal(tmp_path, mnist_test):
    text = (MODELS_INI / "lenet_channels.ini").read_text()
    text = text.replace("QWeight.StepSizeThreshold=$([sp]BatchSize * 100)",
                        "QWeight.StepSizeThreshold=$([sp]BatchSize * 5)")
    text = text.replace("QWeight.ScheduleLength=$([sp]_EpochSize * 5)",
                        "QWeight.ScheduleLength=$([sp]BatchSize * 20)")
    ini = tmp_path / "lenet_channels.ini"
    ini.write_text(text)
    assert train(ini, tmp_path / "run", "--steps", "30") == 0
    assert cli.main(["shrink", str(tmp_path / "run")]) == 0
    out = tmp_path / "shrunk.onnx"
    assert cli.main(["export", str(tmp_path / "run" / "shrunk"), "--format", "onnx",
                     "--out", str(out)]) == 0
    masked, _ = load_run(tmp_path / "run")
    model = onnx.load(str(out))
    _check_outputs(masked, model, out, _inputs(mnist_test, masked.input_shape))
    dense = masked.cell("conv2").weights[0].value.shape[0]
    assert _initializers(model)["conv2.weights"].shape[0] < dense  # really smaller


EMPTY_MAX_POOL = """
[database]
Type=MNIST_IDX_Database

[sp]
SizeX=28
SizeY=28
BatchSize=8

[conv]
Input=sp
Type=Conv
KernelDims=5 5
NbOutputs=2

[pool]
Input=conv
Type=Pool
PoolDims=2 2
StrideDims=2 2
Pooling=Max
NbOutputs=2
Mapping(conv)=\\
1 0 \\
1 0

[fc]
Input=pool
Type=Fc
NbOutputs=10

[softmax]
Input=fc
Type=Softmax
NbOutputs=10
WithLoss=1

[softmax.Target]
"""


def test_what_has_no_export_is_one_line(tmp_path, capsys):
    ini = tmp_path / "m.ini"
    ini.write_text(EMPTY_MAX_POOL)
    assert train(ini, tmp_path / "run", "--steps", "1") == 0
    capsys.readouterr()
    assert cli.main(["export", str(tmp_path / "run"), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[pool]" in err and "no mapped channel" in err
    assert not (tmp_path / "run" / "model.onnx").exists()


def test_missing_onnx_is_one_line(tmp_path, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    assert cli.main(["export", str(tmp_path), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'n2prune[onnx]'" in err


EVERY_MAPPED_CELL = EXPORT_NET_HEAD + """[c2]
Input=pad
Type=Conv
KernelDims=3 3
PaddingDims=1 1
NbOutputs=4
ActivationFunction=Tanh
ActivationFunction.Alpha=0.7

[c3]
Input=c1,c2
Type=Conv
KernelDims=3 3
PaddingDims=1 1
NbOutputs=6
Mapping(c1)=\\
1 0 0 1 1 0 \\
0 1 0 0 1 1 \\
0 0 1 1 0 1 \\
1 1 1 0 0 0
ActivationFunction=Logistic

[bn]
Input=c3
Type=BatchNorm
NbOutputs=6
ActivationFunction=Softplus

[sum]
Input=bn,c3
Type=ElemWise
NbOutputs=6
Operation=Sum
Weights=0.5 -2
ActivationFunction=Swish

[max]
Input=bn,c3
Type=ElemWise
NbOutputs=6
Operation=Max

[prod]
Input=sum,max
Type=ElemWise
NbOutputs=6
Operation=Prod

[drop]
Input=prod
Type=Dropout
NbOutputs=6

[pool]
Input=drop
Type=Pool
PoolDims=3 2
StrideDims=2 2
PaddingDims=1 1
Pooling=Average
NbOutputs=6
Mapping.Size=1

[sat]
Input=pool
Type=Activation
NbOutputs=6
ActivationFunction=Saturation
ActivationFunction.Threshold=0.3

[gmax]
Input=sat
Type=Pool
PoolDims=6 7
Pooling=Max
NbOutputs=6
Mapping.Size=1

[fc]
Input=sat,gmax
Type=Fc
NbOutputs=10
ActivationFunction=Linear
ActivationFunction.Clipping=2

[softmax]
Input=fc
Type=Softmax
NbOutputs=10
WithLoss=1

[softmax.Target]
"""


# ElemWise operations the C export refuses (the rest: networks.EVERY_C_CELL).
# (ONNX ops that Type=ONNX does not read back: Abs, Sqrt, Where, Gather.)
ABS_AND_EUCLIDEAN = """
[database]
Type=MNIST_IDX_Database

[sp]
SizeX=9
SizeY=8
BatchSize=4

[c]
Input=sp
Type=Conv
KernelDims=3 3
PaddingDims=1 1
NbOutputs=6
ActivationFunction=Tanh

[abs]
Input=c,c
Type=ElemWise
NbOutputs=6
Operation=AbsSum
Weights=0.5 2

[euclid]
Input=abs,c
Type=ElemWise
NbOutputs=6
Operation=EuclideanSum
Weights=1.5 -1
Shifts=0.5 0.25

[prod]
Input=euclid,abs
Type=ElemWise
NbOutputs=6
Operation=Prod
Weights=3 3

[fc]
Input=prod
Type=Fc
NbOutputs=10

[softmax]
Input=fc
Type=Softmax
NbOutputs=10
WithLoss=1

[softmax.Target]
"""


def test_every_mapped_cell_on_random_inputs(tmp_path):
    from n2prune.io.onnx_export import export_onnx
    from n2prune.train.model import Model
    ini = tmp_path / "all.ini"
    ini.write_text(EVERY_MAPPED_CELL)
    network = Model(ini, need_data=False).network
    rng = np.random.default_rng(0)
    bn = network.cell("bn")
    bn.mean[...] = rng.normal(size=6)
    bn.variance[...] = rng.uniform(0.5, 2, size=6)
    bn.scale.value[...] = rng.normal(size=6)
    bn.scale.changed()
    model = export_onnx(network, tmp_path / "all.onnx")
    x = rng.uniform(-1, 1, size=(64, *network.input_shape)).astype(np.float32)
    _check_outputs(network, model, tmp_path / "all.onnx", x)
    ops = {n.name: n.op_type for n in model.graph.node}
    expected = {"pad": "Pad", "c3/concat": "Concat", "c3/conv": "Conv", "sum/sum": "Sum",
                "max/max": "Max", "prod/prod1": "Mul", "drop": "Identity",
                "pool/pool": "AveragePool", "gmax/pool": "MaxPool", "fc/concat": "Concat",
                "fc/gemm": "Gemm", "softmax": "Softmax"}
    assert {name: ops.get(name) for name in expected} == expected
    # c1's irregular mapping into c3: dense weights, unconnected kernels zero.
    w = _initializers(model)["c3.weights"]
    assert w.shape == (6, 8, 3, 3)
    mapping = network.cell("c3").connections[0].mask[:, :, 0, 0]
    assert not w[:, :4][mapping == 0].any() and w[:, :4][mapping != 0].all()


def test_shrunk_model_exports_with_the_runs_outputs(tmp_path):
    from test_shrink import pruned_run
    run = pruned_run(tmp_path)
    assert cli.main(["shrink", str(run)]) == 0
    out = tmp_path / "shrunk.onnx"
    assert cli.main(["export", str(run / "shrunk"), "--format", "onnx", "--out", str(out)]) == 0
    masked, _ = load_run(run)
    x = np.random.default_rng(0).standard_normal((16, *masked.input_shape)).astype(np.float32)
    model = onnx.load(str(out))
    _check_outputs(masked, model, out, x)  # the masked run's outputs, from the smaller model
    assert _initializers(model)["fc.weights"].shape == (10, 3 * 4 * 4)


DECONV_NORMALIZE = """
[database]
Type=MNIST_IDX_Database

[sp]
SizeX=7
SizeY=6
BatchSize=4

[conv]
Input=sp
Type=Conv
KernelDims=3 3
NbOutputs=5
ActivationFunction=Rectifier

[deconv]
Input=conv
Type=Deconv
KernelDims=4 3
StrideDims=2 2
PaddingDims=1 1
NbOutputs=6
ActivationFunction=Linear

[bn]
Input=deconv
Type=BatchNorm
NbOutputs=6
ActivationFunction=Tanh

[norm]
Input=bn
Type=Normalize
NbOutputs=6
Norm=L2

[fc]
Input=norm
Type=Fc
NbOutputs=10
ActivationFunction=Linear
ConfigSection=fc.config

[fc.config]
Normalize=1

[softmax]
Input=fc
Type=Softmax
NbOutputs=10
WithLoss=1

[softmax.Target]
"""


@pytest.mark.parametrize("fold", [False, True], ids=["kept", "folded"])
def test_deconv_normalize_and_normalized_fc(tmp_path, fold):
    from n2prune.io.onnx_export import export_onnx
    from n2prune.train.model import Model
    ini = tmp_path / "deconv.ini"
    ini.write_text(DECONV_NORMALIZE)
    network = Model(ini, need_data=False).network
    rng = np.random.default_rng(0)
    bn = network.cell("bn")
    bn.mean[...] = rng.normal(size=6)
    bn.variance[...] = rng.uniform(0.5, 2, size=6)
    fc = network.cell("fc")
    fc.weights[0].value *= 3  # rows far from unit norm: the export must normalize them
    fc.weights[0].changed()
    model = export_onnx(network, tmp_path / "d.onnx", fold_batchnorm=fold)
    x = rng.uniform(-1, 1, size=(64, *network.input_shape)).astype(np.float32)
    _check_outputs(network, model, tmp_path / "d.onnx", x)
    ops = [n.op_type for n in model.graph.node]
    assert "ConvTranspose" in ops and "ReduceSum" in ops
    assert ("BatchNormalization" in ops) != fold
    # N2D2's plane, (in - 1) * stride + kernel - 2 * padding: 3 x 4 kernels (KernelDims=4 3).
    assert network.cell("deconv").output_shape[1:] == (7, 10)


def test_fold_batchnorm_is_refused_for_other_formats(tmp_path, capsys):
    code = cli.main(["export", str(tmp_path), "--format", "npz", "--fold-batchnorm"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--fold-batchnorm applies to --format onnx" in err


@pytest.mark.parametrize("text", [EVERY_C_CELL, ABS_AND_EUCLIDEAN], ids=["c_cells", "abs"])
def test_coefficients_channel_mappings_and_softmax_groups(tmp_path, text):
    from n2prune.io.onnx_export import export_onnx
    from n2prune.train.model import Model
    ini = tmp_path / "more.ini"
    ini.write_text(text)
    network = Model(ini, need_data=False).network
    model = export_onnx(network, tmp_path / "more.onnx")
    x = np.random.default_rng(2).uniform(-1, 1, size=(64, *network.input_shape))
    _check_outputs(network, model, tmp_path / "more.onnx", x.astype(np.float32))
    ops = {n.name: n.op_type for n in model.graph.node}
    expected = ({"sum.0/shifted": "Add", "csum.1/scaled": "Mul", "pool/channels": "Conv",
                 "mpool/channels": "ReduceMax", "softmax/softmax": "Softmax"}
                if text is EVERY_C_CELL else
                {"abs/abs0": "Abs", "euclid/sqrt": "Sqrt", "prod/prod1": "Mul"})
    assert {name: ops.get(name) for name in expected} == expected
    assert not any(name.startswith("prod.") for name in ops)  # Prod ignores its Weights
