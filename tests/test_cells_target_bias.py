"""TargetBias: N2D2's training-only margin on the labelled class, identity in inference."""

import functools

import numpy as np
import pytest
from gradcheck import check_cell

from n2prune.cells import TargetBias
from n2prune.errors import IniError, ShapeError
from n2prune.graph.builder import build_network
from n2prune.graph.targets import LabelTarget
from n2prune.ini import load_ini
from n2prune.prune.channel_graph import ChannelGraph


def test_training_adds_the_bias_to_the_labelled_class_above_minus_bias():
    x = np.array([[0.9, 0.2, 0.5],    # class 0
                  [0.1, 0.8, 0.30],   # class 1
                  [0.4, 0.34, 0.36]], dtype=np.float32).reshape(3, 1, 1, 3)
    labels = np.array([0, 2, 2])
    y = TargetBias("m", [(3, 1, 1)], 3, bias=-0.35).forward([x], True, labels)
    expected = x.copy()
    expected[0, 0, 0, 0] -= 0.35      # 0.9 > 0.35: biased
    # sample 1: its class-2 input 0.34 is not above 0.35: unchanged
    expected[2, 0, 0, 2] -= 0.35      # 0.36 > 0.35: biased
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-7)
    assert y.dtype == np.float32


def test_a_positive_bias_applies_where_the_input_is_above_its_opposite():
    x = np.array([-0.5, -0.1, 0.2, 3.0]).reshape(1, 1, 1, 4)
    y = TargetBias("m", [(1, 1, 1)], 1, bias=0.3).forward([x], True, np.zeros(4, int))
    np.testing.assert_allclose(y.ravel(), [-0.5, 0.2, 0.5, 3.3])


def test_every_pixel_of_the_labelled_channel_is_biased():
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 2, (4, 2, 3, 5))
    labels = np.array([3, 0, 1, 1, 2])
    y = TargetBias("m", [(4, 2, 3)], 4, bias=0.5).forward([x], True, labels)
    delta = y - x
    for n, label in enumerate(labels):
        np.testing.assert_allclose(delta[label, :, :, n], 0.5)
        assert not np.delete(delta[:, :, :, n], label, axis=0).any()


def test_inference_is_the_identity_and_needs_no_labels():
    x = np.random.default_rng(1).standard_normal((3, 1, 1, 4)).astype(np.float32)
    cell = TargetBias("m", [(3, 1, 1)], 3, bias=-0.35)
    assert cell.forward([x], False) is x
    assert cell.forward([x], False, np.zeros(4, int)) is x


def test_training_without_labels_or_with_bad_ones_is_refused():
    cell = TargetBias("m", [(3, 1, 1)], 3, bias=-0.35)
    x = np.zeros((3, 1, 1, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"\[m\] TargetBias needs the batch labels"):
        cell.forward([x], True)
    with pytest.raises(ValueError, match="2 class indices below 3"):
        cell.forward([x], True, np.array([0, 3]))
    with pytest.raises(ValueError, match="2 class indices below 3"):
        cell.forward([x], True, np.array([0, 1, 2]))


def test_gradient():
    rng = np.random.default_rng(2)
    # Inputs away from the threshold -bias = 0.35, where the output jumps.
    x = rng.uniform(0.5, 1.0, (5, 2, 2, 4)) * rng.choice([-1, 1], (5, 2, 2, 4))
    cell = TargetBias("m", [(5, 2, 2)], 5, bias=-0.35)
    cell.forward = functools.partial(cell.forward, labels=np.array([4, 0, 2, 2]))
    dxs = check_cell(cell, [x], rng)
    assert len(dxs) == 1


def test_shape_refusals():
    with pytest.raises(ShapeError, match="exactly one input"):
        TargetBias("m", [(3, 1, 1), (3, 1, 1)], 6, bias=-0.35)
    with pytest.raises(ShapeError, match="NbOutputs=4 must equal"):
        TargetBias("m", [(3, 1, 1)], 4, bias=-0.35)


NET = """[sp]
SizeX=6
SizeY=6
BatchSize=4
[fc]
Input=sp
Type=Fc
NbOutputs=5
[m]
Input=fc
Type=TargetBias
NbOutputs=5
Bias=-0.35
{target}
[s]
Input=m
Type=Softmax
NbOutputs=5
WithLoss=1
[s.Target]
"""


def build(tmp_path, target="[m.Target]\nType=Target"):
    path = tmp_path / "m.ini"
    path.write_text(NET.format(target=target))
    return build_network(load_ini(path), 0, 10)[0], path


def test_a_target_bias_needs_its_own_target(tmp_path):
    with pytest.raises(IniError, match=r"m.ini:9 \[m\]: TargetBias reads the labels of its "
                                       r"target; add a \[m.Target\] section with Type=Target"):
        build(tmp_path, target="")


def test_the_network_gives_it_the_labels_and_its_target_adds_no_loss(tmp_path):
    net, _ = build(tmp_path)
    assert isinstance(net.targets[0], LabelTarget) and net.targets[0].metric is None
    assert net.metric_target.cell == "s"
    rng = np.random.default_rng(3)
    x = rng.random((1, 6, 6, 4), dtype=np.float32)
    labels = np.array([1, 4, 0, 1])
    net.forward(x, train=True, labels=labels)
    margin = net.outputs["m"] - net.outputs["fc"]
    raised = net.outputs["fc"][labels, 0, 0, np.arange(4)] > 0.35
    np.testing.assert_allclose(margin[labels, 0, 0, np.arange(4)], np.where(raised, -0.35, 0))
    loss, correct = net.loss_and_backward(labels)
    probs = net.outputs["s"][labels, 0, 0, np.arange(4)]
    assert loss == pytest.approx(-np.mean(np.log(probs)), rel=1e-5)  # the softmax's loss alone
    assert correct == int(np.sum(net.outputs["s"][:, 0, 0].argmax(axis=0) == labels))
    with pytest.raises(ValueError, match="needs the batch labels"):
        net.forward(x, train=True)
    assert net.forward(x, train=False) is net.outputs["s"]  # inference: no labels needed


def test_channel_pruning_keeps_the_classes(tmp_path):
    net, _ = build(tmp_path)
    graph = ChannelGraph(net)
    tied = [unit for unit in graph.units if unit.of("m")]
    assert len(tied) == 5
    assert all(unit.locked and unit.of("fc") == unit.of("m") for unit in tied)
    assert graph.group_of("fc") is None
