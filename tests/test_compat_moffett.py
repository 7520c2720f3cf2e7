"""compat.moffett: Moffett's Prune as its users call it, against Moffett's own numbers."""

import inspect
import logging
from pathlib import Path

import compat_net
import numpy as np
import pytest
from compat_net import BATCH, ini_text
from layout import chwn

from n2prune.compat import Prune
from n2prune.graph.builder import build_network
from n2prune.ini import parse_ini_text
from n2prune.prune.pruned_cells import initialize_masks, step_quantizers

SEED = 5


def network(keys=None):
    net, _provider, _ctx = build_network(parse_ini_text(ini_text(keys)), seed=SEED)
    return net


class Batches:
    """One stream of random batches, so a run can be cut in two and resumed."""

    def __init__(self, seed=13):
        self.data = np.random.default_rng(seed)

    def train(self, net, steps, after_step):
        for _ in range(steps):
            net.forward(chwn(self.data.random((1, BATCH, 12, 12), dtype=np.float32)), train=True)
            net.loss_and_backward(self.data.integers(0, 10, BATCH))
            net.apply_solvers(BATCH)  # optimizer.step()
            after_step()


def moffett_sparsity(size, s_final, k, total):
    """Moffett's zero fraction after update k: keep int(size·(1 - s_k)), s_k cubic from 0."""
    s_k = s_final + (0.0 - s_final) * (1.0 - k / total) ** 3
    return 1 - int(size * (1.0 - s_k)) / size


def test_the_readme_example():
    model = network()
    step, epoch = 13, 8  # batches per epoch, epochs
    # use a dictionary to setup pruning configuration
    prune_dict = {}
    for k, v in model.named_parameters():
        prune_dict[k] = 0.95

    # define the pruning specs (the README's missing comma after prune_dict restored)
    prune = Prune(
        model = model,
        pretrain_step = 0,
        sparse_step = step * 8,
        frequency = 100,
        prune_dict = prune_dict,
        balance = 'fix')
    before = prune.check()

    batches, rates = Batches(), []
    for idx in range(epoch):
        batches.train(model, step, prune.prune)
        # check the sparsity of each layer during pruning
        layer_sparse_rate, total_sparse_rate = prune.sparsity()
        rates.append(total_sparse_rate)
    # K = 104 // 100 = 1 update, at call 100 (epoch 8), straight to 0.95.
    assert rates[:7] == [0.0] * 7 and rates[7] > 0.8
    assert set(layer_sparse_rate) == set(prune_dict)
    assert layer_sparse_rate["fc.biases"] == 1.0  # int(10·0.05) = 0 kept
    # fc (10 x 1024) keeps int(10240·0.05) = 512: 256 per 512-input block, 32 per sub-bank
    # of 64 interleaved inputs, ⌈32/10⌉ = 4 per row.
    fc = model.cell("fc").weights[0].value
    for bank in range(8):
        assert (np.count_nonzero(fc[:, bank:512:8], axis=1) == 4).all()
    # Before any pruning only conv1 qualifies: with 1 input, each of its 72 (o, y, x) rows
    # holds one weight and may keep ⌈int(72·0.05)/72⌉ = 1 (nor does Moffett prune it).
    assert before == ({name: name == "conv1.weights[0]" for name in prune_dict}, False)
    assert layer_sparse_rate["conv1.weights[0]"] == 0.0
    assert prune.check() == ({name: True for name in prune_dict}, True)


def test_sparsity_follows_the_cubic_at_each_update():
    net = network()
    prune = Prune(net, 3, 10, 3, {"conv2.weight": 0.9, "fc": 0.75}, balance="none")
    sizes = {"conv2.weight": 64 * 8 * 9, "fc": 10 * 1024}
    finals = {"conv2.weight": 0.9, "fc": 0.75}
    seen = []
    Batches().train(net, 14, lambda: (prune.prune(), seen.append(prune.sparsity()[0])))
    for t, layers in enumerate(seen, start=1):
        k = min(3, (t - 3) // 3) if t > 3 else 0  # updates at t = 6, 9, 12; K = 10 // 3
        for name, size in sizes.items():
            assert layers[name] == pytest.approx(moffett_sparsity(size, finals[name], k, 3),
                                                 abs=1e-12), (t, name)


def test_sparse_step_below_frequency_prunes_nothing():
    net = network()
    prune = Prune(net, 0, 1, 2, {"conv2": 0.9})
    Batches().train(net, 6, prune.prune)
    assert prune.sparsity() == ({"conv2": 0.0}, 0.0)
    assert prune.check()[1] is False


def resumable(net, **kwargs):
    return Prune(net, 2, 12, 3, {"conv2.weight": 0.8, "conv2.bias": 0.5, "fc.weights[0]": 0.9},
                 **kwargs)


def test_current_step_and_mask_resume_a_run(tmp_path):
    whole = network()
    prune = resumable(whole)
    Batches().train(whole, 16, prune.prune)
    cut, batches = network(), Batches()
    first = resumable(cut)
    batches.train(cut, 7, first.prune)
    np.savez(tmp_path / "masks.npz", **first.masks())
    for cell in cut.cells:  # a new process: the model loaded, no pruner on it yet
        cell.quantizer = None
    second = resumable(cut, current_step=7, mask=str(tmp_path / "masks.npz"))
    batches.train(cut, 9, second.prune)
    assert second.step == prune.step == 16
    for a, b in zip(whole.params(), cut.params(), strict=True):
        np.testing.assert_array_equal(a.value, b.value)
    assert all(np.array_equal(prune.masks()[n], m) for n, m in second.masks().items())


def test_fixed_mask_freezes_the_masks():
    net = network()
    mask = (np.random.default_rng(0).random((64, 8, 3, 3)) > 0.7).astype(np.uint8)
    prune = Prune(net, 0, 10, 2, {"conv2.weight": 0.9}, fixed_mask={"conv2.weight": mask})
    Batches().train(net, 8, prune.prune)
    w = net.cell("conv2").weights[0].value
    np.testing.assert_array_equal(w != 0, mask == 1)
    assert prune.sparsity()[0]["conv2.weight"] == 1 - mask.mean()


def test_restore_sparsity_starts_the_cubic_at_the_loaded_zeros():
    net = network()
    net.cell("conv2").weights[0].value[:, :4] = 0  # half pruned already
    prune = Prune(net, 0, 4, 2, {"conv2": 0.9}, restore_sparsity=True, balance="none")
    q = prune.quantizers["conv2"]
    assert q.get_current_threshold() == 0.5 and q.sparsity() == 0.5
    Batches().train(net, 2, prune.prune)  # k = 1 of K = 2, from s_0 = 0.5
    assert prune.sparsity()[0]["conv2"] == 1 - int(4608 * (1 - (0.9 + (0.5 - 0.9) * 0.5 ** 3))) / 4608


def test_fix_sparsity_keeps_the_loaded_zeros():
    net = network()
    net.cell("conv2").weights[0].value[:, :4] = 0
    prune = Prune(net, prune_dict={"conv2": 0.9}, fix_sparsity=True)
    Batches().train(net, 4, prune.prune)
    assert prune.sparsity()[0]["conv2"] == 0.5


def test_prune_steps_only_its_own_quantizers():
    net = network({"conv1": {"QWeight": "Prune", "QWeight.PruningMode": "Gradual",
                             "QWeight.StepSizeThreshold": "1000"}})
    initialize_masks(net, np.random.default_rng(0), 1000)
    prune = Prune(net, 0, 4, 2, {"fc": 0.5})
    Batches().train(net, 3, prune.prune)
    assert net.cell("conv1").quantizer.clock.counter == 0  # the INI's, untouched
    assert prune.quantizers["fc"].clock.counter == 1


def test_names_of_parameters_and_cells(caplog):
    net = network()
    with caplog.at_level(logging.WARNING, logger="n2prune"):
        prune = Prune(net, 0, 2, 1, {"conv2.weight": 0.5, "conv2.bias": 0.5, "fc": 0.5,
                                     "conv9.weight": 0.5}, balance="none")
    assert "'conv9.weight'" in caplog.text  # ignored, as Moffett ignores it
    assert prune.pruned_cells == ["conv2", "fc"]
    Batches().train(net, 2, prune.prune)
    assert np.count_nonzero(net.cell("conv2").bias.value) == 32
    with pytest.raises(ValueError, match="twice"):
        Prune(network(), prune_dict={"conv2": 0.5, "conv2.weights[0]": 0.5})


def test_devices_and_their_drops(caplog):
    net = network()
    with caplog.at_level(logging.INFO, logger="n2prune"):
        fpga = Prune(net, 0, 2, 1, {"conv1.weight": 0.5, "conv2.weight": 0.5},
                     deploy_device="fpga", prune_device="cuda:1")
        Prune(network(), 0, 2, 1, {"conv2": 0.5}, prune_device="cuda:1")
    assert fpga.dropped == ["conv1.weight"]  # 1 input < 4, as Moffett drops it
    assert fpga.quantizers["conv2.weight"].options.pattern == "MoffettFPGA"
    assert caplog.text.count("prune_device='cuda:1' has no effect") == 1
    asic = Prune(network(), 0, 2, 1, {"conv2": 0.5}, group_size=4)
    assert asic.quantizers["conv2"].params.bank_size == 4


def test_ini_keys_give_the_same_training():
    targets = {"conv2": 0.75, "fc": 0.9}
    facade_net = network()
    prune = Prune(facade_net, 2, 8, 2, targets)
    ini_net, _provider, ctx = build_network(parse_ini_text(ini_text(prune.ini_keys(BATCH))),
                                            seed=SEED)
    initialize_masks(ini_net, ctx.rng, 0)
    compat_net.train(facade_net, 12, prune.prune, seed=13)
    compat_net.train(ini_net, 12, lambda: step_quantizers(ini_net, BATCH), seed=13)
    for a, b in zip(facade_net.params(), ini_net.params(), strict=True):
        np.testing.assert_array_equal(a.value, b.value)
    with pytest.raises(ValueError, match="bias"):
        Prune(network(), prune_dict={"conv2.bias": 0.5}).ini_keys()


# pruningTools2's documented Prune (its positional order), then its Python version's additions.
MOFFETT_API = [("model", inspect.Parameter.empty), ("pretrain_step", 0), ("sparse_step", 0),
               ("frequency", 100), ("prune_dict", {}), ("restore_sparsity", False),
               ("fix_sparsity", False), ("balance", "fix"), ("prune_device", "default")]
PYTHON_VERSION = [("current_step", 0), ("deploy_device", None), ("group_size", 64),
                  ("fixed_mask", None), ("mask", None)]


def test_the_signature_holds_moffetts_api():
    params = inspect.signature(Prune).parameters
    assert list(params)[:len(MOFFETT_API)] == [name for name, _ in MOFFETT_API]
    for name, default in MOFFETT_API + PYTHON_VERSION:
        assert params[name].default == default, name


def test_the_docs_table_lists_every_argument():
    text = (Path(__file__).resolve().parents[1] / "docs" / "pruning-facades.rst").read_text(
        encoding="utf-8")
    table = text[text.index("Moffett: ``Prune``"):text.index("TinyNN: ``OneShotChannelPruner``")]
    names = [n for n, _ in MOFFETT_API + PYTHON_VERSION] + ["seed"]
    assert not [n for n in names if f"``{n}``" not in table]
