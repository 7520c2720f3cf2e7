"""N2D2's Python API: the seed's PruneCell example runs on an n2prune Network as written."""

import inspect
import logging
import math

import numpy as np
import pytest
from compat_net import BATCH, ini_text
from layout import chwn

import n2prune as n2d2  # N2D2's module path, the one change the example needs
import n2prune.cells
import n2prune.quantizer
from n2prune.graph.builder import build_network
from n2prune.ini import parse_ini_text
from n2prune.prune.pruned_cells import step_quantizers

DATASET_SIZE = 2 * BATCH  # stimuli per epoch: two batches


def network():
    net, _provider, _ctx = build_network(parse_ini_text(ini_text()), seed=7)
    return net


def train(model, epochs, after_epoch=None):
    data = np.random.default_rng(21)
    for _ in range(epochs):
        for _ in range(DATASET_SIZE // BATCH):
            model.forward(chwn(data.random((1, BATCH, 12, 12), dtype=np.float32)), train=True)
            model.loss_and_backward(data.integers(0, 10, BATCH))
            model.apply_solvers(BATCH)
            step_quantizers(model, BATCH)
        if after_epoch:
            after_epoch(model)


def n2d2_iter_nonstruct(weights, threshold, delta):
    """N2D2's IterNonStruct loop as its C++ writes it: raise j until |w| <= j·delta covers it."""
    magnitudes = np.abs(weights).astype(np.float32)
    j = 0
    while True:
        j += 1
        pruned = magnitudes <= np.float32(delta) * np.float32(j)
        if np.float32(pruned.sum()) / np.float32(pruned.size) >= np.float32(threshold):
            return (~pruned).astype(np.uint8)


def test_the_seed_example_runs_as_written():
    model = network()

    for cell in model:
        ### Add Pruning ###
        if isinstance(cell, n2d2.cells.Conv) or isinstance(cell, n2d2.cells.Fc):  # noqa: SIM101
            cell.quantizer = n2d2.quantizer.PruneCell(prune_mode="Static", threshold=0.3, prune_filler="IterNonStruct")

    weights = {c.name: c.weights[0].value.copy() for c in model if c.params()}
    train(model, 1)  # the masks are computed as the cells first run, as N2D2 does
    for name in ("conv1", "conv2", "fc"):
        q = model[name].quantizer
        np.testing.assert_array_equal(q.get_pruned_masks(0), n2d2_iter_nonstruct(weights[name], 0.3, 0.001))
        assert q.get_current_threshold() == np.float32(0.3)
        np.testing.assert_array_equal(q.get_quantized_weights(0), model[name].weights[0].value * q.get_pruned_masks(0))
    assert len(model) == 4 and model[0] is model["conv1"]


def test_gradual_thresholds_step_every_two_epochs():
    model = network()
    for cell in model:
        if isinstance(cell, n2d2.cells.Conv) or isinstance(cell, n2d2.cells.Fc):  # noqa: SIM101
            cell.quantizer = n2d2.quantizer.PruneCell(prune_mode="Gradual", threshold=0.3, stepsize=2*DATASET_SIZE)
    seen = []
    train(model, 10, lambda m: seen.append(m["conv2"].quantizer.get_current_threshold()))
    # start 0.1, + gamma 0.05 (float32) every 2·DATASET_SIZE stimuli, up to 0.3.
    steps = [np.float32(0.1)]
    while steps[-1] < np.float32(0.3):
        steps.append(min(steps[-1] + np.float32(0.05), np.float32(0.3)))
    assert seen == [float(steps[min(e // 2, len(steps) - 1)]) for e in range(1, 11)]
    assert steps[1:] == [np.float32(0.15), np.float32(0.2), np.float32(0.25), np.float32(0.3)]
    mask = model["conv2"].quantizer.get_pruned_masks(0)  # Random: ⌈0.3·N⌉ zeros
    assert mask.size - np.count_nonzero(mask) == math.ceil(np.float32(0.3) * np.float32(mask.size))


def test_range_and_quant_mode_are_accepted_with_a_notice(caplog):
    with caplog.at_level(logging.INFO, logger="n2prune"):
        for _ in range(2):
            q = n2d2.quantizer.PruneCell(prune_mode="Static", threshold=0.5, range=15,
                                         quant_mode="Symmetric", model="Frame_CUDA")
    assert caplog.text.count("PruneCell(range=15) is accepted and ignored") == 1
    assert "quant_mode='Symmetric'" in caplog.text and "model='Frame_CUDA'" in caplog.text
    assert q.threshold == 0.5


# n2d2.quantizer.PruneCell's parameters (its docstring and convention converter, with the
# C++ defaults of PruneQuantizerCell and QuantizerCell) and its Quantizer base's model, datatype.
N2D2_API = {"prune_mode": "Identity", "prune_filler": "Random", "threshold": 0.2, "delta": 0.001,
            "start": 0.1, "stepsize": 0, "gamma": 0.05, "quant_mode": "Default", "range": 255,
            "model": "Frame", "datatype": "float"}


def test_the_signature_holds_n2d2s_api():
    params = inspect.signature(n2d2.quantizer.PruneCell).parameters
    assert {name: params[name].default for name in N2D2_API} == N2D2_API
    for getter in ("get_pruned_masks", "get_quantized_weights", "get_current_threshold"):
        assert callable(getattr(n2d2.quantizer.PruneCell, getter))


def test_a_network_made_by_hand_takes_quantizers_too():
    model = network()
    model.rng = None  # no run generator: seed 0
    model["fc"].quantizer = n2d2.quantizer.PruneCell(prune_mode="Static", threshold=0.5,
                                                     prune_filler="Random")
    train(model, 1)
    assert model["fc"].quantizer.sparsity() == pytest.approx(0.5)
