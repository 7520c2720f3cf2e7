"""QWeight=Prune on a Deconv, from an INI file: it trains, and masked weights stay 0
(``HardZero=1``: the stored weights themselves, not only ``W * M``)."""

import numpy as np
import pytest
from networks import mnist_input, softmax_loss
from runs import arrays_of, trained_run

NET = mnist_input(32) + """
[down]
Input=sp
Type=Conv
KernelDims=3 3
Stride=2
NbOutputs=8
ActivationFunction=Rectifier
WeightsFiller=HeFiller
ConfigSection=common.config

; 13x13 -> (13 - 1)*2 + 3 = 27x27
[up]
Input=down
Type=Deconv
KernelDims=3 3
Stride=2
NbOutputs=8
ActivationFunction=Rectifier
WeightsFiller=HeFiller
ConfigSection=common.config,prune.config
QWeight=Prune

[pool]
Input=up
Type=Pool
PoolDims=3 3
Stride=3
NbOutputs=8
Pooling=Max
Mapping.ChannelsPerGroup=1

[fc2]
Input=pool
Type=Fc
NbOutputs=10
ConfigSection=common.config
""" + softmax_loss("fc2") + """
[prune.config]
QWeight.PruningMode=Static
QWeight.Threshold=0.6
QWeight.HardZero=1
{extra}

[common.config]
Solvers.LearningRate=0.05
Solvers.Momentum=0.9
"""


@pytest.mark.parametrize("extra, kernels", [
    ("", "direct kernels"),                   # float32, batch 32: Conv's direct kernels
    ("QWeight.Kernel=Dense", None),           # im2col + GEMM on W * M
    ("QWeight.Pattern=Channel", "direct kernels"),
], ids=["unstructured", "dense-kernel", "channel"])
def test_a_pruned_deconv_trains_and_its_masked_weights_stay_zero(tmp_path, extra, kernels):
    _, run = trained_run(tmp_path, "deconv.ini", NET.format(extra=extra), "--steps", "30")
    arrays = arrays_of(run / "weights.npz")
    weights, mask = arrays["param/up.weights[0]"], arrays["quant/up/mask0"]
    assert weights.shape == mask.shape == (8, 8, 3, 3)
    assert 1 - mask.mean() == pytest.approx(0.6, abs=0.07)
    assert not weights[mask == 0].any()
    assert np.count_nonzero(weights[mask == 1]) == mask.sum()
    if "Channel" in extra:  # whole output channels: axis 0 of the OCHW weights
        rows = mask.reshape(8, -1)
        assert set(rows.min(axis=1)) == set(rows.max(axis=1)) == {0, 1}
        assert not arrays["param/up.biases"][rows.max(axis=1) == 0].any()
    log = (run / "train.log").read_text()
    assert (f"[up] weights[0]: {kernels}" in log) == (kernels is not None)
    losses = [float(line.split(" loss ")[1].split()[0]) for line in log.splitlines() if " loss " in line]
    assert losses[-1] < losses[0] - 0.5, losses
    lines = (run / "weights" / "up_weights.syntxt").read_text().splitlines()
    assert len(lines) == 8 and {len(line.split()) for line in lines} == {8 * 9}
