"""compat.moffett: Moffett's Prune configures the same quantizers as its INI keys."""

import compat_net
import numpy as np
import pytest
from compat_net import BATCH, ini_text

from n2prune.cells import Conv, Fc
from n2prune.compat import Prune
from n2prune.compat.moffett import bank_for
from n2prune.graph.builder import build_network
from n2prune.ini import parse_ini_text
from n2prune.prune.patterns import kept_count
from n2prune.prune.pruned_cells import initialize_masks, step_quantizers

SEED = 5
# conv1: 1 input (dropped by balance='fix'); conv2: 8 inputs (bank 8);
# fc: 64·4·4 = 1024 inputs (Moffett's 64 x 8 interleaved banks).
TARGETS = {"conv1": 0.5, "conv2": 0.75, "fc": 0.9}
# Updates after 2 + 2k calls for k = 1..4 (K = 8 // 2).
STEPS = {"pretrain_step": 2, "sparse_step": 8, "frequency": 2}


def network(keys=None):
    net, _provider, ctx = build_network(parse_ini_text(ini_text(keys)), seed=SEED)
    return net, ctx


def train(net, steps, after_step):
    compat_net.train(net, steps, after_step, seed=13)


@pytest.mark.parametrize("balance, steps", [("fix", 12), ("fix", 7), ("none", 12)])
def test_facade_trains_as_its_ini_keys(balance, steps):
    facade_net, _ctx = network()
    prune = Prune(facade_net, prune_dict=TARGETS, balance=balance, batch_size=BATCH, seed=SEED,
                  **STEPS)
    ini_net, ctx = network(prune.ini_keys())
    initialize_masks(ini_net, ctx.rng, 0)
    train(facade_net, steps, prune.prune)
    train(ini_net, steps, lambda: step_quantizers(ini_net, BATCH))
    assert prune.step == steps
    for pa, pb in zip(facade_net.params(), ini_net.params(), strict=True):
        np.testing.assert_array_equal(pa.value, pb.value)
    for name, q in prune.quantizers.items():
        other = ini_net.cell(name).quantizer
        assert q.target == other.target
        assert all(np.array_equal(a, b) for a, b in zip(q.masks, other.masks, strict=True))
    assert prune.check() == {name: [] for name in prune.pruned_cells}


def test_thresholds_follow_the_cubic_at_the_frequency():
    net, _ctx = network()
    prune = Prune(net, prune_dict={"conv2": 0.75, "fc": 0.9}, balance="none", batch_size=BATCH,
                  pretrain_step=3, sparse_step=10, frequency=3)
    total = 10 // 3
    for t in range(1, 20):
        prune.prune()
        k = min(total, (t - 3) // 3) if t > 3 else 0
        for name, final in (("conv2", 0.75), ("fc", 0.9)):
            q = prune.quantizers[name]
            expected = final + (0.0 - final) * (1 - k / total) ** 3
            assert q.get_current_threshold() == pytest.approx(expected, rel=1e-6), (t, name)
            # Unstructured keeps ⌊(1 − s)·n⌋ of the whole tensor.
            size = q.masks[0].size
            kept = kept_count(size, expected)  # float64 target: no float32 round-up
            assert q.sparsity() == pytest.approx((size - kept) / size, abs=1e-12)


def test_bank_choice():
    net, _ctx = network()
    assert bank_for(net.cell("conv2")) == (8, 1)
    assert bank_for(net.cell("fc")) == (64, 8)  # 1024 inputs: 512-input blocks of 8 sub-banks
    assert bank_for(Fc("f", [(768, 1, 1)], 4, rng=np.random.default_rng(0))) == (64, 1)  # not a multiple of 512
    assert bank_for(Conv("c", [(96, 4, 4)], 4, (3, 3), rng=np.random.default_rng(0))) == (48, 1)  # largest divisor <= 64
    assert bank_for(Conv("c", [(512, 2, 2)], 4, (1, 1), rng=np.random.default_rng(0))) == (64, 8)  # 1x1 conv, as Fc
    assert bank_for(Conv("c", [(512, 4, 4)], 4, (3, 3), rng=np.random.default_rng(0))) == (64, 1)
    assert bank_for(Conv("c", [(6, 4, 4)], 4, (3, 3), rng=np.random.default_rng(0))) == (6, 1)


def test_ini_keys_and_dropped_first_conv():
    net, _ctx = network()
    prune = Prune(net, prune_dict=TARGETS, batch_size=BATCH, **STEPS)
    assert prune.dropped == ["conv1"] and prune.pruned_cells == ["conv2", "fc"]
    assert net.cell("conv1").quantizer is None
    keys = prune.ini_keys()
    assert keys["fc"] == {
        "QWeight": "Prune", "QWeight.PruningMode": "Gradual", "QWeight.Pattern": "Bank",
        "QWeight.Criterion": "Magnitude", "QWeight.Schedule": "Cubic",
        "QWeight.StartThreshold": "0.0", "QWeight.StepSizeThreshold": "16",
        "QWeight.ScheduleDelay": "16", "QWeight.ScheduleLength": "64",
        "QWeight.RestoreSparsity": "0", "QWeight.FixSparsity": "0", "QWeight.HardZero": "1",
        "QWeight.Threshold": "0.9", "QWeight.BankSize": "64", "QWeight.BankInterleave": "8"}
    assert keys["conv2"]["QWeight.BankSize"] == "8"
    net, _ctx = network()
    assert Prune(net, prune_dict=TARGETS, balance="none", batch_size=BATCH,
                 **STEPS).pruned_cells == ["conv1", "conv2", "fc"]


@pytest.mark.parametrize("args, match", [
    ({"prune_dict": {"conv3": 0.5}}, "'conv3', not Conv or Fc cells.*known: conv1, conv2, fc"),
    ({"prune_dict": {"softmax": 0.5}}, "'softmax', not Conv or Fc"),
    ({"prune_dict": None}, "prune_dict is required"),
    ({"balance": "fpga"}, "balance must be"),
    ({"sparse_step": 1}, "never update the masks"),
    ({"frequency": 0}, "frequency must be"),
])
def test_rejected_arguments(args, match):
    net, _ctx = network()
    with pytest.raises(ValueError, match=match):
        Prune(net, batch_size=BATCH, **{**STEPS, "prune_dict": TARGETS, **args})


def test_sparsity_and_check_against_the_masks():
    net, _ctx = network()
    prune = Prune(net, prune_dict=TARGETS, batch_size=BATCH, **STEPS)
    train(net, 10, prune.prune)
    layers, total = prune.sparsity()
    masks = {name: q.masks[0] for name, q in prune.quantizers.items()}
    for name, mask in masks.items():
        assert layers[name] == np.count_nonzero(mask == 0) / mask.size
        # HardZero: the stored weights are zero wherever the mask is.
        assert not net.cell(name).weights[0].value[mask == 0].any()
    zeros = sum(np.count_nonzero(m == 0) for m in masks.values())
    assert total == zeros / sum(m.size for m in masks.values())
    assert layers["fc"] == pytest.approx(0.9, abs=0.01)
    q = prune.quantizers["conv2"]
    q.masks[0][0, :, 0, 0] = 1  # one row of a bank keeps every input: not deployable
    assert prune.check()["conv2"] and prune.check()["fc"] == []


def test_fix_sparsity_keeps_the_loaded_zeros():
    net, _ctx = network()
    w = net.cell("conv2").weights[0].value
    w[:, :4] = 0  # half of every bank's inputs, as a loaded pruned model
    prune = Prune(net, prune_dict={"conv2": 0.9}, fix_sparsity=True, batch_size=BATCH)
    train(net, 4, prune.prune)
    assert prune.sparsity()[0]["conv2"] == 0.5
    assert prune.check() == {"conv2": []}


def test_restore_sparsity_starts_the_ramp_at_the_loaded_zeros():
    net, _ctx = network()
    net.cell("conv2").weights[0].value[:, :4] = 0  # half pruned already
    prune = Prune(net, prune_dict={"conv2": 0.9}, restore_sparsity=True, balance="none",
                  sparse_step=4, frequency=2, batch_size=BATCH)
    q = prune.quantizers["conv2"]
    assert q.get_current_threshold() == 0.5 and q.sparsity() == 0.5
    prune.prune()
    prune.prune()  # k = 1 of K = 2
    assert q.get_current_threshold() == pytest.approx(0.9 + (0.5 - 0.9) * 0.5 ** 3)
