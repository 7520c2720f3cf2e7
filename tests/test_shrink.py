"""``n2prune shrink``: the removed channels leave the model, and nothing else changes."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
from channel_net import channel_net_text, random_batch
from runs import arrays_of

from n2prune import cli
from n2prune.errors import UserError
from n2prune.ini import parse_ini_text
from n2prune.ini.dump import dumps
from n2prune.inspect import load_run
from n2prune.io.checkpoint import load_network_arrays, network_arrays
from n2prune.prune.channels import zero_removed_channels
from n2prune.shrink import shrink_run
from n2prune.train.model import Model


def pruned_run(tmp_path, **kwargs):
    """A run folder of the channel network (``run_folder``), its BatchNorm statistics set."""
    return run_folder(tmp_path, channel_net_text(**kwargs), {"bn": 8})


def run_folder(tmp_path, text, batchnorms=()):
    """A run folder (config.ini, weights.npz) of INI ``text``, its channels decided and
    every parameter made non-zero where it is kept, so a leak would show."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.ini").write_text(dumps(parse_ini_text(text)))
    network = Model(run / "config.ini", need_data=False).network
    rng = np.random.default_rng(1)
    for cell in network.cells:
        for param in cell.params():
            param.value += rng.uniform(0.1, 0.5, param.value.shape).astype(np.float32)
            param.changed()
    for name, size in dict(batchnorms).items():
        network.cell(name).mean[:] = rng.uniform(-0.2, 0.2, size)
        network.cell(name).variance[:] = rng.uniform(0.5, 2.0, size)
    zero_removed_channels(network)
    np.savez(run / "weights.npz", **network_arrays(network))
    return run


def test_shrink_removes_the_channels_and_keeps_the_outputs(tmp_path):
    run = pruned_run(tmp_path)
    assert cli.main(["shrink", str(run)]) == 0
    masked, _ = load_run(run)
    shrunk = Model(run / "shrunk" / "model.ini", need_data=False).network
    cli_arrays = arrays_of(run / "shrunk" / "weights.npz")
    load_network_arrays(shrunk, cli_arrays, "shrunk")
    shapes = {c.name: c.output_shape[0] for c in shrunk.cells}
    assert shapes == {"c1": 4, "dw": 4, "pw": 4, "bn": 4, "add": 4, "c3": 2, "cat": 3,
                      "pool": 3, "fc": 10}
    assert [w.value.shape for w in shrunk.cell("cat").weights] == [(3, 4, 3, 3), (3, 2, 3, 3)]
    assert shrunk.cell("fc").weights[0].value.shape == (10, 3 * 4 * 4)
    assert shrunk.cell("dw").connections[0].kind == "depthwise"
    x = random_batch(masked)
    np.testing.assert_allclose(shrunk.forward(x), masked.forward(x), rtol=1e-5, atol=1e-5)
    text = (run / "shrunk" / "model.ini").read_text()
    assert "; [cat] NbOutputs 6 -> 3 (removed output channels" in text
    assert "; (shrink) QWeight.Pattern=Channel" in text
    assert (run / "shrunk" / "weights" / "cat_weights.syntxt").is_file()


def test_fewer_macs_after_shrinking(tmp_path):
    run = pruned_run(tmp_path)
    shrink_run(run)
    masked, _ = load_run(run)
    shrunk = Model(run / "shrunk" / "model.ini", need_data=False).network
    before = sum(c.macs_per_sample() for c in masked.cells)
    after = sum(c.macs_per_sample() for c in shrunk.cells)
    assert after < 0.45 * before  # about half the channels, on both sides of most convs


def test_a_run_without_removed_channels_is_refused(tmp_path):
    run = pruned_run(tmp_path, threshold=0.0)
    with pytest.raises(UserError, match="no channel was removed"):
        shrink_run(run)


def test_an_existing_output_folder_is_not_overwritten(tmp_path):
    run = pruned_run(tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("mine")
    assert cli.main(["shrink", str(run), "--out", str(tmp_path / "taken")]) == 2
    assert (tmp_path / "taken" / "x").read_text() == "mine"


N2D2_MULTIBRANCH = "tests/tests_data/mnist_multibranch_model/model.ini"


def test_n2d2s_multibranch_network_prunes_shrinks_and_reloads(tmp_path):
    """N2D2's own multi-branch test network (three branches concatenated into conv4, a
    residual sum at elemwise7), read from an N2D2 checkout (``$N2D2_CHECKOUT``)."""
    source = Path(os.environ.get("N2D2_CHECKOUT", "")) / N2D2_MULTIBRANCH
    if not os.environ.get("N2D2_CHECKOUT") or not source.is_file():
        pytest.skip(f"set N2D2_CHECKOUT to an N2D2 checkout holding {N2D2_MULTIBRANCH}")
    keys = "QWeight=Prune\nQWeight.PruningMode=Static\nQWeight.Pattern=Channel\nQWeight.Threshold=0.5\n"
    text = re.sub(r"(\[conv(?!9)[^\]]*\]\n)", lambda m: m.group(1) + keys, source.read_text())
    run = run_folder(tmp_path, text)
    out, notes, difference = shrink_run(run)
    assert difference <= 1e-5 and "[elemwise7] NbOutputs 10 -> 5" in " ".join(notes)
    masked, _ = load_run(run)
    shrunk = Model(out / "model.ini", need_data=False).network
    load_network_arrays(shrunk, arrays_of(out / "weights.npz"), out)
    x = random_batch(masked)
    np.testing.assert_allclose(shrunk.forward(x), masked.forward(x), rtol=1e-5, atol=1e-5)
    assert shrunk.macs_per_sample() < 0.3 * masked.macs_per_sample()


DECONV_NET = """
[sp]
SizeX=6
SizeY=6
BatchSize=4

[c1]
Input=sp
Type=Conv
KernelDims=3 3
Stride=2
NbOutputs=6
ActivationFunction=Rectifier
{prune}

[up]
Input=c1
Type=Deconv
KernelDims=3 3
Stride=2
NbOutputs=8
Mapping(c1)={mapping}
ActivationFunction=Rectifier
{prune}

[norm]
Input=up
Type=Normalize
NbOutputs=8
Norm=L2

[c2]
Input=norm
Type=Conv
KernelDims=3 3
NbOutputs=4

[fc]
Input=c2
Type=Fc
NbOutputs=10

[fc.Target]
"""


def test_a_deconv_producer_and_consumer_through_normalize_shrinks(tmp_path):
    """A Deconv removes its output channels (axis 0 of its OCHW weights) and loses the
    input channels its producer removed (axis 1, and its mapping's rows); Normalize
    passes the removed channels through, so the outputs do not change."""
    mapping = " ".join(["1 1 0 1 1 1 0 1"] * 5 + ["0 1 1 1 1 0 1 1"])
    prune = "QWeight=Prune\nQWeight.PruningMode=Static\nQWeight.Pattern=Channel\nQWeight.Threshold=0.5"
    run = run_folder(tmp_path, DECONV_NET.format(prune=prune, mapping=mapping))
    masked, _ = load_run(run)
    assert len(masked.removed_channels["up"]) == 4
    np.testing.assert_array_equal(masked.removed_channels["norm"], masked.removed_channels["up"])
    out, _notes, difference = shrink_run(run)
    assert difference <= 1e-5
    shrunk = Model(out / "model.ini", need_data=False).network
    load_network_arrays(shrunk, arrays_of(out / "weights.npz"), "shrunk")
    assert shrunk.cell("up").weights[0].value.shape == (4, 3, 3, 3)
    assert shrunk.cell("norm").output_shape == (4, 5, 5)  # 6 -> 2 -> (2 - 1)*2 + 3
    assert shrunk.cell("c2").weights[0].value.shape == (4, 4, 3, 3)
    x = random_batch(masked)
    np.testing.assert_allclose(shrunk.forward(x), masked.forward(x), rtol=1e-5, atol=1e-5)
    table = np.array(mapping.split(), dtype=int).reshape(6, 8)
    kept_in, kept_out = (np.setdiff1d(np.arange(n), masked.removed_channels[name])
                         for name, n in (("c1", 6), ("up", 8)))
    np.testing.assert_array_equal(shrunk.cell("up").connections[0].mask[:, :, 0, 0].T,
                                  table[kept_in][:, kept_out])
    assert "[up] mapping tables cut to the kept channels" in (out / "model.ini").read_text()
