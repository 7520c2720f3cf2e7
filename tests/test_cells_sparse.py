"""Pruned cells on the skip kernels equal the dense masked path (float32 tolerance).

Forward, input gradient and weight gradient per cell; then whole training
runs (N2D2-exact and HardZero) with ``Kernel=Sparse`` against
``Kernel=Dense``; then the Auto choice and its log.
"""

import numpy as np
import pytest
from layout import chwn
from networks import classifier_tail, gradual_iter_nonstruct

from n2prune import cli
from n2prune.cells import Conv, Fc
from n2prune.graph.builder import build_network
from n2prune.ini import parse_ini_text
from n2prune.prune.pruned_cells import (
    drain_kernel_notes,
    initialize_masks,
    set_kernel,
    step_quantizers,
)
from n2prune.quantizer import PruneCell

# LeNet's partial connection table (inputs x outputs), cut to 4 x 6.
MAPPING = np.array([[1, 0, 0, 1, 1, 0], [1, 1, 0, 0, 1, 1], [0, 1, 1, 0, 0, 1],
                    [0, 0, 1, 1, 1, 1]])


def pruned(kernel, threshold=0.85, hard_zero=False):
    return PruneCell(prune_mode="Static", prune_filler="IterNonStruct", threshold=threshold,
                     kernel=kernel, hard_zero=hard_zero)


def attach(cell, quantizer):
    """``cell.quantizer = quantizer`` with its masks computed (as ``initialize_masks``)."""
    cell.quantizer = quantizer
    quantizer.initialize(cell.weight_arrays(), np.random.default_rng(0))


def make_cell(kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "fc":
        return Fc("fc", [(3, 5, 5)], 37, rng=rng)
    mappings = [MAPPING] if kind == "conv-mapping" else None
    return Conv("conv", [(4, 9, 9)], 6, kernel=3, padding=1, stride=(1, 2), mappings=mappings,
                rng=rng)


def run_cell(cell, x, dy):
    y = cell.forward([x], train=True).copy()
    dx = cell.backward(dy)[0]
    return y, dx, cell.weights[0].grad.copy()


@pytest.mark.parametrize("kernel", ["Dense", "Sparse"])
def test_derived_weights_are_kept_until_the_weights_change(kernel, monkeypatch):
    """W*M and the kept values are built once per weight version, then rebuilt."""
    from n2prune.cells import sparse_weights
    calls = []
    real_gather = sparse_weights.gather_rows
    monkeypatch.setattr(sparse_weights, "gather_rows", lambda *a, **k: calls.append(1)
                        or real_gather(*a, **k))
    cell = make_cell("fc", 5)
    attach(cell, pruned(kernel))
    x = chwn(np.random.default_rng(6).standard_normal((3, 4, 5, 5), dtype=np.float32))
    first = cell.forward([x], train=False).copy()
    np.testing.assert_array_equal(cell.forward([x], train=False), first)
    cell.weights[0].value *= 2
    cell.weights[0].changed()
    bias = cell.bias.value[:, None, None, None]
    np.testing.assert_allclose(cell.forward([x], train=False), 2 * first - bias, rtol=1e-5,
                               atol=1e-5)
    assert len(calls) == (2 if kernel == "Sparse" else 0)


@pytest.mark.parametrize(("threshold", "batch", "skip"),
                         [(0.85, 1, False), (0.85, 4, True), (0.97, 1, True)])
def test_auto_keeps_batch_one_on_blas_below_the_gemv_crossover(threshold, batch, skip,
                                                                monkeypatch):
    from n2prune.cells import sparse_weights
    calls = []
    real_gather = sparse_weights.gather_rows
    monkeypatch.setattr(sparse_weights, "gather_rows", lambda *a, **k: calls.append(1)
                        or real_gather(*a, **k))
    cell, reference = make_cell("fc", 7), make_cell("fc", 7)
    attach(cell, pruned("Auto", threshold))
    attach(reference, pruned("Dense", threshold))
    x = chwn(np.random.default_rng(8).standard_normal((3, batch, 5, 5), dtype=np.float32))
    np.testing.assert_allclose(cell.forward([x], train=False),
                               reference.forward([x], train=False), rtol=1e-4, atol=1e-5)
    assert bool(calls) == skip


@pytest.mark.parametrize("kind", ["fc", "conv", "conv-mapping"])
@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.85, 1.0])
def test_cell_passes_match_the_dense_masked_path(kind, threshold):
    dense, sparse = make_cell(kind, 3), make_cell(kind, 3)
    attach(dense, pruned("Dense", threshold))
    attach(sparse, pruned("Sparse", threshold))
    rng = np.random.default_rng(4)
    x = chwn(rng.standard_normal((dense.input_shapes[0][0], 5, *dense.input_shapes[0][1:]),
                                 dtype=np.float32))
    dy = chwn(rng.standard_normal((dense.nb_outputs, 5, *dense.output_shape[1:]),
                                  dtype=np.float32))
    for got, want in zip(run_cell(sparse, x, dy), run_cell(dense, x, dy)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert sparse.sparse_weights(0) is not None and dense.sparse_weights(0) is None


NETWORK = """
[sp]
SizeX=12
SizeY=12
BatchSize=16

[conv1]
Input=sp
Type=Conv
KernelDims=3 3
NbOutputs=8
ActivationFunction=Rectifier
QWeight=Prune
ConfigSection=solver,prune

[fc1]
Input=conv1
Type=Fc
NbOutputs=20
ActivationFunction=Rectifier
QWeight=Prune
ConfigSection=solver,prune
""" + classifier_tail() + """

[prune]
""" + gradual_iter_nonstruct(0.6, 0.2, 0.95, 48) + """
[solver]
Solvers.LearningRate=0.05
Solvers.Momentum=0.9
Solvers.Decay=0.001
Solvers.Clamping=-1:1
"""


def train_network(kernel, hard_zero, steps=12):
    ini = parse_ini_text(NETWORK.replace("QWeight.StepSizeThreshold=48",
                                      f"QWeight.StepSizeThreshold=48\nQWeight.HardZero={int(hard_zero)}"))
    net, _provider, ctx = build_network(ini, seed=5, epoch_size=48)
    initialize_masks(net, ctx.rng, 48)
    set_kernel(net, kernel)
    data = np.random.default_rng(8)
    for _ in range(steps):
        net.forward(chwn(data.random((1, 16, 12, 12), dtype=np.float32)), train=True)
        net.loss_and_backward(data.integers(0, 4, 16))
        net.apply_solvers(16)
        step_quantizers(net, 16)
    return net


@pytest.mark.parametrize("hard_zero", [False, True])
def test_training_on_skip_kernels_matches_dense(hard_zero):
    dense, sparse = train_network("Dense", hard_zero), train_network("Sparse", hard_zero)
    for a, b in zip(dense.params(), sparse.params()):
        np.testing.assert_allclose(b.value, a.value, rtol=1e-4, atol=1e-5, err_msg=a.name)
    for name in ("conv1", "fc1"):
        qa, qb = dense.cell(name).quantizer, sparse.cell(name).quantizer
        assert qa.get_current_threshold() == pytest.approx(0.95)
        np.testing.assert_array_equal(qa.masks[0], qb.masks[0])
        if hard_zero:  # masked weights are exactly 0 and the solver skipped them
            assert not sparse.cell(name).weights[0].value[qb.masks[0] == 0].any()
            assert sparse.cell(name).weights[0].active is not None


def test_auto_choice_follows_sparsity_and_is_noted_once():
    net = train_network("Auto", False, steps=1)
    notes = drain_kernel_notes(net)
    # At 0.6: fc1 (20 outputs) stays below the 0.7 crossover, thin conv1 (8) does not.
    assert any(n.startswith("[fc1] weights[0]: dense BLAS at sparsity 0.60") for n in notes)
    assert any(n.startswith("[conv1] weights[0]: direct kernels") for n in notes)
    assert drain_kernel_notes(net) == []
    net = train_network("Auto", False, steps=4)  # the threshold reached 0.8 at step 3
    assert any(n.startswith("[fc1] weights[0]: skip kernels at sparsity 0.80")
               for n in drain_kernel_notes(net))
    forced = train_network("Dense", False, steps=1)
    assert all("dense BLAS" in n for n in drain_kernel_notes(forced))


def test_kernel_key_is_validated(tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text(NETWORK.replace("QWeight.Threshold=0.95", "QWeight.Threshold=0.95\nQWeight.Kernel=Fast"))
    assert cli.main(["check", str(ini)]) == 2


def test_predict_runs_the_skip_kernels():
    net = train_network("Sparse", False, steps=4)
    x = np.random.default_rng(1).random((3, 12, 12), dtype=np.float32)
    sparse_scores = net.predict(x, batch_size=1)  # batch 1: the GEMV path
    assert net.cell("fc1").sparse_weights(0) is not None
    set_kernel(net, "Dense")
    np.testing.assert_allclose(sparse_scores, net.predict(x), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kernel", ["Dense", "Sparse"])
def test_the_stimuli_gradient_is_not_computed(kernel):
    net = train_network(kernel, False, steps=1)
    conv1 = net.cell("conv1")
    assert conv1.input_grad_wanted == [False] and net.cell("fc1").input_grad_wanted == [True]
    x = chwn(np.random.default_rng(2).random((1, 4, 12, 12), dtype=np.float32))
    conv1.forward([x], train=True)
    dy = np.ones((8, 10, 10, 4), dtype=np.float32)
    assert conv1.backward(dy) == [None]
    grad = conv1.weights[0].grad.copy()
    conv1.input_grad_wanted = None  # as a cell outside a network: every gradient
    assert conv1.backward(dy)[0].shape == x.shape
    np.testing.assert_array_equal(conv1.weights[0].grad, grad)


FC_NETWORK = """
[sp]
SizeX=4
SizeY=3
BatchSize=8

[fc1]
Input=sp
Type=Fc
NbOutputs=10
ActivationFunction=Rectifier
ConfigSection=solver
""" + classifier_tail() + """

[solver]
NoBias=1
WeightsSolver.LearningRate=0.5
WeightsSolver.Momentum=0.9
WeightsSolver.Decay=0.01
Solvers.Clamping=-0.4:0.4
"""


def reference_step(ws, vs, masks, x, labels):
    """Dense numpy: loss of ``W * M``, gradients masked, N2D2's SGD, masked weights zeroed."""
    h = np.maximum(x @ (ws[0] * masks[0]).T, 0)
    z = h @ (ws[1] * masks[1]).T
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(labels)), labels]).mean()
    dz = (p - np.eye(4)[labels]) / len(labels)
    dh = (dz @ (ws[1] * masks[1])) * (h > 0)
    grads = [dh.T @ x * masks[0], dz.T @ h * masks[1]]
    for w, v, g, m in zip(ws, vs, grads, masks):
        v[...] = 0.9 * v - 0.5 * g - 0.01 * 0.5 * w
        w[...] = np.clip(w + v, -0.4, 0.4) * m
    return loss


@pytest.mark.parametrize("kernel", ["Dense", "Sparse"])
def test_training_with_set_masks_matches_a_dense_masked_reference(kernel):
    # The setup of benchmarks/recipe_vs_torch.py --sparsity: masks given, not computed.
    net, _provider, ctx = build_network(parse_ini_text(FC_NETWORK), seed=3, epoch_size=8)
    rng = np.random.default_rng(4)
    masks = [(rng.random(c.weights[0].value.shape) > 0.7).astype(np.uint8)
             for c in (net.cell("fc1"), net.cell("fc2"))]
    cells = [net.cell("fc1"), net.cell("fc2")]
    for cell in cells:
        cell.quantizer = PruneCell(prune_mode="Static", prune_filler="None", hard_zero=True,
                                   kernel=kernel)
    initialize_masks(net, ctx.rng, 8, cells=cells)
    for cell, mask in zip(cells, masks):
        cell.quantizer.set_masks([mask])
        cell.quantizer.after_update(cell.weight_arrays())
    ws = [c.weights[0].value.astype(np.float64) for c in cells]
    vs = [np.zeros_like(w) for w in ws]
    for _ in range(6):
        x = rng.random((1, 8, 3, 4), dtype=np.float32)
        labels = rng.integers(0, 4, 8)
        net.forward(chwn(x), train=True)
        loss, _ = net.loss_and_backward(labels)
        net.apply_solvers(8)
        step_quantizers(net, 8)
        assert loss == pytest.approx(reference_step(ws, vs, masks, x[0].reshape(8, 12), labels),
                                     rel=1e-5)
    for cell, w, mask in zip(cells, ws, masks):
        assert (cell.sparse_weights(0) is not None) == (kernel == "Sparse")
        np.testing.assert_allclose(cell.weights[0].value, w, rtol=1e-4, atol=1e-6)
        assert not cell.weights[0].value[mask == 0].any()
