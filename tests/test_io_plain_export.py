"""``n2prune export --format npz|n2d2``: the deployed tensors as plain arrays, and a
folder N2D2 reads (model.ini + weights/) that n2prune reads back to the same outputs."""

import json

import numpy as np
import pytest
from paths import MODELS_INI
from runs import train

from n2prune import cli
from n2prune.inspect import load_run
from n2prune.train.model import Model


@pytest.fixture(scope="module")
def pruned_run(tmp_path_factory):
    """A LeNet trained 12 steps with 2:4 masks on conv2, conv3, fc1 (lenet_2of4.ini)."""
    folder = tmp_path_factory.mktemp("run")
    text = (MODELS_INI / "lenet_2of4.ini").read_text()
    text = text.replace("QWeight.ScheduleDelay=$([sp]_EpochSize * 3)", "QWeight.ScheduleDelay=5")
    text = text.replace("QWeight.StepSizeThreshold=[sp]_EpochSize", "QWeight.StepSizeThreshold=5")
    (folder / "lenet_2of4.ini").write_text(text)
    assert train(folder / "lenet_2of4.ini", folder / "run", "--steps", "12") == 0
    return folder / "run"


def test_npz_holds_the_deployed_tensors(pruned_run, tmp_path):
    out = tmp_path / "net.npz"
    assert cli.main(["export", str(pruned_run), "--format", "npz", "--out", str(out)]) == 0
    network, _ = load_run(pruned_run)
    with np.load(out) as npz:  # no allow_pickle: plain arrays and one string
        arrays = {key: npz[key] for key in npz.files}
    description = json.loads(str(arrays.pop("network")))
    assert [c["name"] for c in description["cells"]] == [c.name for c in network.cells]
    conv2 = network.cell("conv2")
    mask = conv2.quantizer.mask(0)
    np.testing.assert_array_equal(arrays["conv2.mask"], mask)
    np.testing.assert_array_equal(arrays["conv2.weights"], conv2.effective_weights(0)
                                  * conv2.connections[0].mask)
    assert not arrays["conv2.weights"][mask == 0].any() and np.mean(mask == 0) >= 0.3
    facts = next(c for c in description["cells"] if c["name"] == "conv2")["pruning"]
    assert (facts["pattern"], facts["n"], facts["m"]) == ("NM", "2", "4")
    assert "conv1.mask" not in arrays  # conv1 is not pruned
    assert arrays["conv1.weights"].shape == network.cell("conv1").weights[0].value.shape
    assert arrays["fc1.weights"].shape[1] == np.prod(network.cell("conv3").output_shape)


def test_npz_names_are_the_onnx_initializers(pruned_run, tmp_path):
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    assert cli.main(["export", str(pruned_run), "--format", "npz", "--out",
                     str(tmp_path / "a.npz")]) == 0
    assert cli.main(["export", str(pruned_run), "--format", "onnx", "--out",
                     str(tmp_path / "a.onnx")]) == 0
    inits = {t.name: onnx.numpy_helper.to_array(t)
             for t in onnx.load(str(tmp_path / "a.onnx")).graph.initializer}
    with np.load(tmp_path / "a.npz") as npz:
        shared = [k for k in npz.files if k in inits]
        assert {k for k in npz.files if not k.endswith(".mask")} - {"network"} == set(shared)
        for key in shared:
            np.testing.assert_array_equal(npz[key], inits[key], err_msg=key)


def test_n2d2_folder_reads_back_to_the_same_outputs(pruned_run, tmp_path):
    out = tmp_path / "n2d2"
    assert cli.main(["export", str(pruned_run), "--format", "n2d2", "--out", str(out)]) == 0
    assert (out / "model.ini").read_text() == (pruned_run / "config.ini").read_text()
    assert (out / "weights" / "conv2_masks.syntxt").is_file()
    network, _ = load_run(pruned_run)
    from n2prune.commands import load_weights
    model = Model(out / "model.ini", need_data=False)
    assert "conv2" in load_weights(model.network, out / "weights")  # masks came with it
    x = np.random.default_rng(1).standard_normal((8, *network.input_shape)).astype(np.float32)
    np.testing.assert_allclose(model.network.predict(x), network.predict(x), atol=1e-6)


def test_n2d2_refuses_a_file_as_its_folder(pruned_run, tmp_path, capsys):
    (tmp_path / "taken").write_text("mine")
    code = cli.main(["export", str(pruned_run), "--format", "n2d2", "--out",
                     str(tmp_path / "taken")])
    assert code == 2 and (tmp_path / "taken").read_text() == "mine"
    assert "is not a folder" in capsys.readouterr().err
