"""The same pruned network, built in Python and from an INI file, trains identically."""

import numpy as np
import pytest
from layout import chwn
from networks import classifier_tail, gradual_iter_nonstruct

from n2prune.cells import Fc, Softmax
from n2prune.cells.activations import Rectifier
from n2prune.cells.fillers import HeFiller
from n2prune.graph.builder import build_network
from n2prune.graph.network import Network
from n2prune.ini import parse_ini_text
from n2prune.prune.pruned_cells import initialize_masks, step_quantizers
from n2prune.quantizer import PruneCell
from n2prune.solvers import SGD

INI = """
[sp]
SizeX=8
SizeY=8
BatchSize=16

[fc1]
Input=sp
Type=Fc
NbOutputs=12
ActivationFunction=Rectifier
WeightsFiller=HeFiller
QWeight=Prune
""" + gradual_iter_nonstruct(0.2, 0.2, 0.6, 32) + """ConfigSection=solver
""" + classifier_tail() + """

[solver]
Solvers.LearningRate=0.1
Solvers.Momentum=0.9
"""


def python_network(seed):
    rng = np.random.default_rng(seed)
    fc1 = Fc("fc1", [(1, 8, 8)], 12, weights_filler=HeFiller(), activation=Rectifier(), rng=rng)
    fc2 = Fc("fc2", [(12, 1, 1)], 4, rng=rng)
    softmax = Softmax("softmax", [(4, 1, 1)], 4, with_loss=True)
    net = Network([fc1, fc2, softmax], {"fc1": ["sp"], "fc2": ["fc1"], "softmax": ["fc2"]},
                  (1, 8, 8), ["softmax"])
    fc1.quantizer = PruneCell(prune_mode="Gradual", prune_filler="IterNonStruct", start=0.2,
                              gamma=0.2, threshold=0.6, stepsize=32)
    for cell in (fc1, fc2):
        net.solvers[cell.name] = (SGD(learning_rate=0.1, momentum=0.9), SGD(learning_rate=0.1, momentum=0.9))
    initialize_masks(net, rng, log_period=0)
    return net


def ini_network(seed):
    net, _provider, ctx = build_network(parse_ini_text(INI), seed=seed, epoch_size=64)
    initialize_masks(net, ctx.rng, 64)
    return net


def train(net, steps=8):
    data = np.random.default_rng(42)
    thresholds = []
    for _ in range(steps):
        x = chwn(data.random((1, 16, 8, 8), dtype=np.float32))
        net.forward(x, train=True)
        net.loss_and_backward(data.integers(0, 4, 16))
        net.apply_solvers(16)
        step_quantizers(net, 16)
        thresholds.append(net.cell("fc1").quantizer.get_current_threshold())
    return thresholds


def test_python_and_ini_networks_train_to_identical_weights():
    a, b = python_network(9), ini_network(9)
    thresholds = train(a)
    assert thresholds == train(b)
    assert thresholds == pytest.approx([0.2, 0.4, 0.4, 0.6, 0.6, 0.6, 0.6, 0.6])
    for pa, pb in zip(a.params(), b.params()):
        assert pa.name == pb.name
        np.testing.assert_array_equal(pa.value, pb.value)
    q = a.cell("fc1").quantizer
    np.testing.assert_array_equal(q.get_pruned_masks(0), b.cell("fc1").quantizer.get_pruned_masks(0))
    assert 0.6 <= q.sparsity() < 0.7
