"""models_ini/residual_fashion.ini holds the structures channel pruning must see through.

The network is built without its data (as ``check`` does) and its objects are
inspected: a residual ElemWise Sum whose two branches leave one cell, a
concatenation (a Conv reading two cells), and a depthwise Conv followed by a
pointwise 1x1 Conv. A few SGD steps then learn one batch of Fashion-MNIST
(skipped when it is not installed). tests/test_recipes.py runs the recipe
through ``check``, ``train --steps``, ``test`` and ``inspect``, as every recipe.
"""

import numpy as np
import pytest
from paths import MODELS_INI

from n2prune.cells.batchnorm import BatchNorm
from n2prune.cells.conv import Conv
from n2prune.cells.elemwise import ElemWise
from n2prune.graph.builder import build_network, unknown_keys
from n2prune.ini import load_ini
from n2prune.train.model import Model

RECIPE = MODELS_INI / "residual_fashion.ini"
STEPS = 10


@pytest.fixture(scope="module")
def built():
    ini = load_ini(RECIPE)
    network, _provider, ctx = build_network(ini, seed=0, epoch_size=1)
    return network, unknown_keys(ini, ctx)


def ancestors(network, name):
    """Every cell ``name`` reads, directly or not (``"sp"`` included)."""
    seen, todo = set(), list(network.inputs.get(name, []))
    while todo:
        parent = todo.pop()
        if parent not in seen:
            seen.add(parent)
            todo.extend(network.inputs.get(parent, []))
    return seen


def channels(network, name):
    return network.input_shape[0] if name == "sp" else network.cell(name).output_shape[0]


def test_every_key_is_read_and_the_sizes_stay_small(built):
    network, unknown = built
    assert unknown == []
    assert network.input_shape == (1, 28, 28)
    assert [t.cell for t in network.targets] == ["softmax"]
    assert network.cell("softmax").output_shape == (10, 1, 1)
    # The epoch budget of the header comment (about a minute on 2 cores)
    # holds for this size: keep it when editing the recipe.
    assert network.macs_per_sample() < 10_000_000


def test_a_residual_sum_joins_two_branches_of_one_cell(built):
    network, _ = built
    sums = [c for c in network.cells if isinstance(c, ElemWise) and c.operation == "Sum"]
    residual = []
    for cell in sums:
        a, b = network.inputs[cell.name]
        if a in ancestors(network, b) or b in ancestors(network, a):
            residual.append(cell.name)
        assert network.cell(a).output_shape == network.cell(b).output_shape == cell.output_shape
    assert residual == ["add2"]
    assert network.inputs["add2"] == ["bn2b", "pool1"]


def test_a_cell_concatenates_two_inputs(built):
    network, _ = built
    joined = [c for c in network.cells
              if len(network.inputs[c.name]) >= 2 and not isinstance(c, ElemWise)]
    assert [c.name for c in joined] == ["conv4"]
    conv4 = network.cell("conv4")
    assert network.inputs["conv4"] == ["add2", "bn3b"]
    # One weight tensor per input, each over that input's channels.
    assert [w.value.shape[1] for w in conv4.weights] == [
        channels(network, n) for n in network.inputs["conv4"]] == [32, 32]
    assert [c.kind for c in conv4.connections] == ["dense", "dense"]


def test_a_depthwise_conv_is_followed_by_a_pointwise_conv(built):
    network, _ = built
    depthwise = [c for c in network.cells if isinstance(c, Conv)
                 and any(k.kind == "depthwise" for k in c.connections)]
    assert [c.name for c in depthwise] == ["dw3"]
    dw3 = network.cell("dw3")
    [source] = network.inputs["dw3"]
    assert dw3.nb_outputs == channels(network, source) == 32
    assert dw3.kernel == (3, 3)
    # Through its BatchNorm, the next cell is a 1x1 Conv over all channels.
    readers = [c for c in network.cells if "dw3" in network.inputs[c.name]]
    assert [type(c) for c in readers] == [BatchNorm]
    [pointwise] = [c for c in network.cells if readers[0].name in network.inputs[c.name]]
    assert isinstance(pointwise, Conv) and pointwise.kernel == (1, 1)
    assert [k.kind for k in pointwise.connections] == ["dense"]


@pytest.mark.fashion_mnist
def test_one_batch_is_learned_through_every_branch():
    """A few SGD steps on one batch of Fashion-MNIST: every weight tensor gets a
    gradient (both of conv4's inputs, the depthwise kernels only on their own
    channel), and the loss falls. In-process, without the CLI's evaluation of
    the 10,000 test images, so it stays within a few seconds."""
    model = Model(RECIPE, seed=1)
    network = model.network
    images, labels = model.stimuli("learn")
    indices = np.arange(model.provider.batch_size)
    x = model.provider.batch(images, indices, None, "learn")
    losses = []
    for step in range(STEPS):
        network.forward(x, train=True)
        loss, _correct = network.loss_and_backward(labels[indices])
        losses.append(loss)
        if step == 0:
            for param in network.params():
                assert np.any(param.grad != 0), param.name
            dw = network.cell("dw3").weights[0].grad
            off_diagonal = ~np.eye(dw.shape[0], dtype=bool)
            assert not np.any(dw[off_diagonal])
        network.apply_solvers(len(indices))
    # From seed 1: 2.29 falling at every step to 1.69 after 10 steps.
    assert np.all(np.diff(losses) < 0)
    assert losses[-1] < 0.85 * losses[0]
