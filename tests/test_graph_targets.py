"""Targets: TargetScore, N2D2's base Target, and DataAsTarget=1 (the stimuli as the target)."""

import numpy as np
import pytest

from n2prune.cells import Normalize
from n2prune.errors import IniError, ShapeError
from n2prune.graph.builder import build_network
from n2prune.graph.targets import ACCURACY, MSE, DataTarget, LabelTarget, ScoreTarget
from n2prune.ini import load_ini

EPS = 1e-6


def _weights_by_hand(t):
    """N2D2's ``applyLossDistribWeighted(20, -1, 1)`` weights, one value at a time."""
    bins = [min(19, max(0, int(np.floor(19 * (v + 1) / 2 + 0.5)))) for v in t.ravel()]
    counts = {b: bins.count(b) for b in bins}
    return np.array([1.0 / counts[b] for b in bins]).reshape(t.shape)


def test_data_target_weights_count_the_target_values_of_the_batch_per_bin():
    t = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 0.5, 0.52, -3.0]).reshape(1, 2, 2, 2)
    weights = DataTarget("d").weights(t)
    np.testing.assert_allclose(weights, _weights_by_hand(t))
    # 0.5 and 0.52 share a bin (14), -3 is clamped into bin 0 alone
    np.testing.assert_allclose(weights.ravel(), [1 / 3, 1 / 3, 1 / 3, 1 / 2, 1 / 2, 1 / 2, 1 / 2, 1])


def test_data_target_loss_gradient_and_score():
    rng = np.random.default_rng(0)
    stimuli = np.round(rng.random((2, 3, 3, 4)) * 4) / 4  # few distinct values: shared bins
    out = rng.random((2, 3, 3, 4))
    loss, grad, score = DataTarget("d").loss(None, out, None, stimuli)
    w = _weights_by_hand(stimuli)
    assert loss == pytest.approx(np.sum(w * (out - stimuli) ** 2) / 2 / 4, rel=1e-12)
    np.testing.assert_allclose(grad, w * (out - stimuli) / 4, rtol=1e-12)
    assert score == pytest.approx(np.sum(np.mean((out - stimuli) ** 2, axis=(0, 1, 2))))
    # the gradient is the loss's, by finite differences
    for index in [(0, 0, 0, 0), (1, 2, 1, 3), (0, 1, 2, 2)]:
        up, down = out.copy(), out.copy()
        up[index] += EPS
        down[index] -= EPS
        numeric = (DataTarget("d").loss(None, up, None, stimuli)[0]
                   - DataTarget("d").loss(None, down, None, stimuli)[0]) / (2 * EPS)
        assert grad[index] == pytest.approx(numeric, rel=1e-5)


def test_data_target_refuses_an_output_of_another_shape():
    with pytest.raises(ShapeError, match=r"DataAsTarget=1 compares \[d\]'s outputs with the "
                                         r"stimuli: \[d\] gives 1x4x4x2, the stimuli are 1x5x5x2"):
        DataTarget("d").loss(None, np.zeros((1, 4, 4, 2)), None, np.zeros((1, 5, 5, 2)))


def test_label_target_has_no_score_a_score_target_counts_the_correct():
    out = np.array([[0.9, 0.1], [0.1, 0.8]]).reshape(2, 1, 1, 2)
    labels = np.array([0, 0])
    cell = Normalize("c", [(2, 1, 1)], 2, norm="L2")
    plain = LabelTarget("c").loss(cell, out, labels, None)
    scored = ScoreTarget("c").loss(cell, out, labels, None)
    assert plain[2] is None and scored[2] == 1
    assert plain[0] == scored[0] == pytest.approx(0.5 * (0.01 + 0.01 + 0.81 + 0.64) / 2)
    np.testing.assert_allclose(plain[1], scored[1])
    assert LabelTarget.metric is None and ScoreTarget.metric is ACCURACY
    assert DataTarget.metric is MSE and not MSE.higher_is_better


NET = """[sp]
SizeX=6
SizeY=6
BatchSize=2
[conv]
Input=sp
Type=Conv
KernelDims=3 3
NbOutputs=3
[out]
Input=conv
Type=Deconv
KernelDims={kernel} {kernel}
NbOutputs=1
[out.Target]
DataAsTarget=1
{more}
"""


def build(tmp_path, kernel=3, more=""):
    path = tmp_path / "m.ini"
    path.write_text(NET.format(kernel=kernel, more=more))
    return build_network(load_ini(path), 0, 10)[0]


def test_an_autoencoder_is_scored_by_its_mean_squared_error(tmp_path):
    net = build(tmp_path)
    assert isinstance(net.metric_target, DataTarget) and net.metric_target.cell == "out"
    x = np.random.default_rng(1).random((1, 6, 6, 2), dtype=np.float32)
    net.forward(x, train=True)
    loss, score = net.loss_and_backward(np.zeros(2, dtype=int))
    expected = DataTarget("out").loss(None, net.outputs["out"], None, x)
    assert loss == pytest.approx(expected[0]) and score == pytest.approx(expected[2])
    assert np.abs(net.cell("conv").params()[0].grad).sum() > 0


def test_a_data_target_of_another_shape_is_one_line_at_its_key(tmp_path):
    with pytest.raises(ShapeError, match=r"m.ini:16 \[out.Target\] DataAsTarget: DataAsTarget=1 "
                                         r"compares \[out\]'s outputs with the stimuli: \[out\] "
                                         r"gives 1x5x5, the stimuli are 1x6x6; make the cell"):
        build(tmp_path, kernel=2)


def test_only_base_targets_is_refused(tmp_path):
    path = tmp_path / "c.ini"
    path.write_text("[sp]\nSizeX=2\nSizeY=2\n[fc]\nInput=sp\nType=Fc\nNbOutputs=3\n"
                    "[fc.Target]\nType=Target\n")
    with pytest.raises(IniError, match=r"c.ini:8 \[fc.Target\]: no target scores the network "
                                       r"\(Type=Target does not\); make one a TargetScore"):
        build_network(load_ini(path), 0, 10)


def test_the_best_validation_is_the_highest_accuracy_or_the_lowest_error():
    assert ACCURACY.better(0.9, None) and ACCURACY.better(0.9, 0.8) and not ACCURACY.better(0.7, 0.8)
    assert MSE.better(0.02, None) and MSE.better(0.02, 0.03) and not MSE.better(0.04, 0.03)
    assert ACCURACY.format(0.91234) == "0.9123" and MSE.format(0.012345) == "0.01235"
    assert MSE.format(None) == "-"
