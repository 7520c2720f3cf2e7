"""compat.ti: TI's PrunerModule configures the same quantizers as its INI keys."""

import compat_net
import numpy as np
import pytest
from compat_net import BATCH, ini_text

from n2prune.compat import PrunerModule
from n2prune.compat.ti import n2m_kept, ti_kwargs
from n2prune.graph.builder import build_network
from n2prune.ini import parse_ini_text
from n2prune.prune.pruned_cells import initialize_masks, step_quantizers

EPOCH, SEED = 16, 3  # two batches per epoch
# conv1: 8 outputs (too few for TI's channel pruning); conv2: 64 > 32; fc: never (TI v1).
# E=8, e0=2: knee 2 + 4 = 6, so 4 fires, at the end of epochs 3..6 (steps 6, 8, 10, 12).
TI_ARGS = {"total_epochs": 8, "init_train_ep": 2, "epoch_size": EPOCH}


def network(keys=None, nb_outputs=64):
    net, _provider, ctx = build_network(parse_ini_text(ini_text(keys, nb_outputs)), seed=SEED,
                                        epoch_size=EPOCH)
    return net, ctx


def train(net, steps):
    compat_net.train(net, steps, lambda: step_quantizers(net, BATCH), seed=11)


def assert_same_training(a, b):
    for pa, pb in zip(a.params(), b.params(), strict=True):
        assert pa.name == pb.name
        np.testing.assert_array_equal(pa.value, pb.value)
    for ca, cb in zip(a.cells, b.cells, strict=True):
        qa, qb = getattr(ca, "quantizer", None), getattr(cb, "quantizer", None)
        assert (qa is None) == (qb is None), ca.name
        if qa is not None:
            assert qa.target == qb.target
            for ma, mb in zip(qa.masks, qb.masks, strict=True):
                assert np.array_equal(ma, mb)


@pytest.mark.parametrize("ratio, pruning_class, pruning_type, global_pruning, m, steps", [
    (0.5, "blend", "channel", False, None, 14),
    (0.5, "blend", "channel", False, None, 9),  # mid-ramp: soft masks
    (0.375, "incremental", "n2m", False, 8, 14),
    (0.5, "blend", "prunechannelunstructured", False, None, 14),
    (0.6, "sigmoid", "unstructured", True, None, 14),
])
def test_facade_trains_as_its_ini_keys(ratio, pruning_class, pruning_type, global_pruning, m,
                                       steps):
    facade_net, _ctx = network()
    pruner = PrunerModule(facade_net, ratio, pruning_class=pruning_class,
                          pruning_type=pruning_type, global_pruning=global_pruning, pruning_m=m,
                          seed=SEED, **TI_ARGS)
    ini_net, ctx = network(pruner.ini_keys())
    initialize_masks(ini_net, ctx.rng, EPOCH)
    train(facade_net, steps)
    train(ini_net, steps)
    assert_same_training(facade_net, ini_net)
    soft = [c.quantizer.soft for c in ini_net.cells if getattr(c, "quantizer", None)]
    assert all(s is not None for s in soft) == (steps < 12)
    if steps >= 12 and not global_pruning:  # past the knee: the final pattern, hard
        # RowBalanced prunes ⌈r·9⌉ of conv1's 9-weight rows: 0.5 becomes 0.5009.
        assert pruner.sparsity() == pytest.approx(ratio, abs=1e-3)


def test_cells_chosen_as_ti():
    net, _ctx = network()
    assert PrunerModule(net, 0.5, seed=SEED, **TI_ARGS).pruned_cells == ["conv2"]
    net, _ctx = network()
    pruner = PrunerModule(net, 0.5, pruning_type="unstructured", **TI_ARGS)
    assert pruner.pruned_cells == ["conv1", "conv2"]  # Fc stays dense
    assert set(pruner.quantizers) == {"conv1", "conv2"}
    assert net.cell("fc").quantizer is None
    net, _ctx = network(nb_outputs=32)
    with pytest.raises(ValueError, match="more than 32 outputs"):
        PrunerModule(net, 0.5, **TI_ARGS)


def test_ini_keys_of_channel_blend():
    net, _ctx = network()
    keys = PrunerModule(net, 0.3, **TI_ARGS).ini_keys()
    assert keys == {"conv2": {
        "QWeight": "Prune", "QWeight.PruningMode": "Gradual", "QWeight.Pattern": "Channel",
        "QWeight.Criterion": "FPGM", "QWeight.Schedule": "Blend",
        "QWeight.StartThreshold": "0.0", "QWeight.Threshold": "0.3",
        "QWeight.StepSizeThreshold": "16", "QWeight.ScheduleDelay": "32",
        "QWeight.ScheduleLength": "64", "QWeight.HardZero": "1"}}


def test_n2m_ratio_gives_kept_n_of_m():
    assert n2m_kept(41 / 64, 64) == 23  # TI's "41:64" prunes 41 of 64
    assert n2m_kept(0.5, 4) == 2
    assert n2m_kept(0.3, 4) == 2  # ⌊0.7·4⌋ kept, as TI
    kwargs = ti_kwargs(0.75, 8, 2, "blend", "n2m", False, 16, EPOCH)
    assert (kwargs["pattern"], kwargs["n"], kwargs["m"]) == ("NMFlat", 4, 16)
    assert n2m_kept(0.1, 4) == 3


def test_global_pruning_caps_as_ti():
    kwargs = ti_kwargs(0.5, 8, 2, "blend", "channel", True, None, EPOCH)
    assert (kwargs["scope"], kwargs["max_sparsity"]) == ("Global", 0.8)
    kwargs = ti_kwargs(0.5, 8, 2, "blend", "unstructured", True, None, EPOCH)
    assert kwargs["max_sparsity"] == 0.7
    with pytest.raises(ValueError, match="per-layer cap 0.7"):
        ti_kwargs(0.75, 8, 2, "blend", "unstructured", True, None, EPOCH)


@pytest.mark.parametrize("args, error, match", [
    ({"pruning_ratio": 0}, ValueError, "TI rejects 0"),
    ({"pruning_type": "n2m", "global_pruning": True, "pruning_m": 4}, NotImplementedError, "n2m"),
    ({"pruning_type": "n2m"}, ValueError, "needs pruning_m"),
    ({"pruning_class": "cubic"}, ValueError, "pruning_class must be one of"),
    ({"pruning_type": "block"}, ValueError, "pruning_type must be one of"),
    ({"total_epochs": 3}, ValueError, "no epoch to prune"),
])
def test_rejected_arguments(args, error, match):
    net, _ctx = network()
    with pytest.raises(error, match=match):
        PrunerModule(net, **{"pruning_ratio": 0.5, **TI_ARGS, **args})


def test_sparsity_counts_the_masks():
    net, _ctx = network()
    pruner = PrunerModule(net, 0.5, pruning_type="unstructured", **TI_ARGS)
    train(net, 12)
    masks = [m for q in pruner.quantizers.values() for m in q.masks]
    zeros = sum(np.count_nonzero(m == 0) for m in masks)
    assert pruner.sparsity() == zeros / sum(m.size for m in masks)
    assert pruner.sparsity() == pytest.approx(0.5, abs=0.01)


def test_a_cell_with_a_quantizer_is_refused():
    net, _ctx = network({"conv2": {"QWeight": "Prune"}})
    with pytest.raises(ValueError, match="conv2 already have a quantizer"):
        PrunerModule(net, 0.5, **TI_ARGS)
