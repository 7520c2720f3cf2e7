"""compat.ti: TI's PrunerModule as TI's users call it, against TI's own numbers."""

import inspect
import logging
import types
from pathlib import Path

import numpy as np
import pytest
from compat_net import BATCH, SECTIONS, ini_text
from layout import chwn

import n2prune.compat
from n2prune.compat import PrunerModule
from n2prune.graph.builder import build_network
from n2prune.ini import parse_ini_text
from n2prune.prune import ti_epochs
from n2prune.prune.schedules import ScheduleError

SEED = 3
# TI's own names as the seed README writes them (``from edgeai_torchtoolkit import xmodelopt``).
xmodelopt = types.SimpleNamespace(pruning=n2prune.compat)


def network(keys=None, text=None):
    net, _provider, _ctx = build_network(parse_ini_text(text or ini_text(keys)), seed=SEED)
    return net


def run_epochs(model, epochs, each_epoch=None, data_seed=11):
    """TI's loop: ``train()``, one batch through ``model(x)``, ``eval()``, per epoch."""
    data = np.random.default_rng(data_seed)
    for _ in range(epochs):
        model.train()
        if each_epoch:
            each_epoch(model)
        model(chwn(data.random((1, BATCH, 12, 12), dtype=np.float32)))
        model.loss_and_backward(data.integers(0, 10, BATCH))
        model.apply_solvers(BATCH)
        model.eval()


def pruned_values(q):
    """The value pruned entries are multiplied by this epoch (1 dense, 0 hard)."""
    if q.masks[0].all():
        return 1.0
    return 0.0 if q.soft is None else float(np.unique(q.soft[0][q.masks[0] == 0]).item())


def test_the_readme_example_prunes_on_tis_schedule():
    model = network()
    args = types.SimpleNamespace(pruning_ratio=0.5, epochs=30, init_train_ep=5,
                                 pruning_class="blend", pruning_type="channel",
                                 global_pruning=False)
    model = xmodelopt.pruning.PrunerModule(model, pruning_ratio=args.pruning_ratio, total_epochs=args.epochs,
                            init_train_ep = args.init_train_ep, pruning_class=args.pruning_class,
                            pruning_type=args.pruning_type, global_pruning=args.global_pruning)
    assert model.knee == 16  # TI: ⌊2(30 - 5)/3⌋, e0 not added back
    assert model.pruned_cells == ["conv2"]  # conv1: 8 outputs <= 32
    q = model.quantizers["conv2"]
    seen = []

    def record(m):
        cell = m.module.cell("conv2")
        # What the forward pass of this epoch uses: W·(soft) mask.
        expected = cell.weights[0].value * (q.masks[0] if q.soft is None else q.soft[0])
        np.testing.assert_array_equal(cell.effective_weights(0), expected)
        seen.append((m.epoch_count, pruned_values(q)))

    run_epochs(model, 30, record)
    alphas = dict(seen)
    assert all(alphas[e] == 1.0 for e in range(1, 6))  # dense warm-up, no mask at all
    for e in range(6, 16):  # α = (16 - e)²/11², in the epoch TI computes it for
        assert alphas[e] == pytest.approx(((16 - e) / 11) ** 2, rel=1e-6), e
    assert all(alphas[e] == 0.0 for e in range(16, 31))  # hard from the knee on
    # The eval() ending epoch 30 bakes the masks: half the channels are zero, bias included.
    w = model.module.cell("conv2").weights[0].value
    removed = ~w.reshape(64, -1).any(axis=1)
    assert removed.sum() == 32
    assert not model.module.cell("conv2").bias.value[removed].any()
    values = [p.value for c in model.module.cells if c.name != "fc" for p in c.params()]
    zeros = sum(v.size - np.count_nonzero(v) for v in values)
    assert model.sparsity == zeros / sum(v.size for v in values) > 0.4


def test_blend_power_p_and_tis_own_argument_names():
    net = network()
    model = PrunerModule(net, 0.5, 10, "blend", 3.0, ["input_shape"], False, "unstructured", 2,
                         None)
    assert vars(model)["input_shape"] == net.input_shape  # copied, as TI's copy_args
    assert model.knee == 5 and model.pruned_cells == ["conv2"]  # conv1 reads 1 channel
    seen = []
    run_epochs(model, 4, lambda m: seen.append(pruned_values(m.quantizers["conv2"])))
    assert seen == [1.0, 1.0, pytest.approx((2 / 3) ** 3), pytest.approx((1 / 3) ** 3)]
    assert model.quantizers["conv2"].sparsity() == pytest.approx(0.5, abs=1e-3)


def test_knee_v2_is_an_opt_in():
    model = PrunerModule(network(), 0.5, 30, pruning_init_train_ep=5, knee="v2")
    assert model.knee == 21


def test_six_epochs_with_the_default_warm_up_are_tis_too():
    model = PrunerModule(network(), 0.5, total_epochs=6, pruning_type="unstructured")
    assert model.knee == 0  # TI: ⌊2·1/3⌋: no blend at all, hard from epoch 6
    seen = []
    run_epochs(model, 6, lambda m: seen.append(pruned_values(m.quantizers["conv2"])))
    assert seen == [1.0] * 5 + [0.0]


def test_incremental_ramps_past_the_knee_unless_clamped():
    ratios = []
    model = PrunerModule(network(), 0.3, 30, "incremental", pruning_type="unstructured")
    run_epochs(model, 30, lambda m: ratios.append(m.quantizers["conv2"].sparsity()))
    expected = [0.0] * 5 + [0.3 * (e - 5) / 11 for e in range(6, 31)]  # 0.3·25/11 at 30
    np.testing.assert_allclose(ratios, expected, atol=1 / 4608)
    clamped = PrunerModule(network(), 0.3, 30, "incremental", pruning_type="unstructured",
                           clamp_incremental=True)
    run_epochs(clamped, 20)
    assert clamped.quantizers["conv2"].sparsity() == pytest.approx(0.3, abs=1 / 4608)
    with pytest.raises(ScheduleError, match="at epoch 27"):  # 0.5·22/11: TI fails there
        PrunerModule(network(), 0.5, 30, "incremental", pruning_type="unstructured")


BN_NET = """
[sp]
SizeX=12
SizeY=12
BatchSize=8
[conv1]
Input=sp
Type=Conv
KernelDims=3 3
NbOutputs=40
ActivationFunction=Linear
WeightsFiller=HeFiller
ConfigSection=solver
[bn1]
Input=conv1
Type=BatchNorm
NbOutputs=40
ActivationFunction=Rectifier
[conv2]
Input=bn1
Type=Conv
KernelDims=3 3
NbOutputs=40
ActivationFunction=Linear
WeightsFiller=HeFiller
ConfigSection=solver
[bn2]
Input=conv2
Type=BatchNorm
NbOutputs=40
ActivationFunction=Rectifier
""" + "\n".join(f"[{s}]\n" + "\n".join(SECTIONS[s]) for s in ("fc", "softmax", "softmax.Target", "solver")).replace("Input=conv2", "Input=bn2")


def test_channels_ranked_by_distance_to_the_median_of_bn_folded_filters():
    net = network(text=BN_NET)
    bn = net.cell("bn2")
    bn.scale.value[:] = np.linspace(0.1, 4, 40, dtype=np.float32)
    bn.variance[:] = np.linspace(2, 0.5, 40, dtype=np.float32)
    w = net.cell("conv2").weights[0].value.astype(np.float64)
    folded = np.abs(w.reshape(40, -1) * (bn.scale.value / np.sqrt(bn.variance + bn.epsilon))[:, None])
    model = PrunerModule(net, 0.25, 10, pruning_init_train_ep=0)  # scored now, as TI
    assert model.pruned_cells == ["conv2"]  # conv1 (40 outputs too) reads 1 channel
    run_epochs(model, 1)
    median = np.sort(folded, axis=0)[19]  # torch's lower median of 40 filters
    distance = np.linalg.norm(folded - median, axis=1)
    kept = model.quantizers["conv2"].masks[0].reshape(40, -1).any(axis=1)
    assert kept.sum() == 30 and set(np.argsort(-distance)[:30]) == set(np.flatnonzero(kept))
    # Epoch 1 of 6 to the knee blends the pruned channels: scaled, not removed, so their
    # BatchNorm still passes them on.
    assert net.removed_channels == {} and bn.scale.value[~kept].all()


def test_scores_are_taken_when_the_model_is_wrapped():
    masks = {}
    for rescore in (False, True):
        net = network()
        model = PrunerModule(net, 0.5, 10, pruning_type="unstructured", pruning_init_train_ep=1,
                             rescore=rescore)
        w = net.cell("conv2").weights[0].value
        strongest = np.unravel_index(np.argmax(np.abs(w)), w.shape)
        w[strongest] = 0  # after wrapping: TI still ranks it by its old magnitude
        run_epochs(model, 2)
        masks[rescore] = model.quantizers["conv2"].masks[0][strongest]
    assert masks == {False: 1, True: 0}


def test_the_first_conv_reading_one_channel_stays_dense():
    for pruning_type, m in (("unstructured", None), ("n2m", 8), ("prunechannelunstructured", None)):
        model = PrunerModule(network(), 0.5, 10, pruning_type=pruning_type, pruning_m=m)
        assert model.pruned_cells == ["conv2"], pruning_type


def test_n2m_keeps_tis_count_per_chunk():
    model = PrunerModule(network(), 41 / 64, 10, pruning_type="n2m", pruning_m=64,
                         pruning_init_train_ep=1)
    run_epochs(model, 2)
    chunks = model.quantizers["conv2"].masks[0].reshape(-1, 64)
    assert (chunks.sum(axis=1) == 23).all()


def test_global_pruning_uses_tis_per_layer_ratios():
    net = network()
    model = PrunerModule(net, 0.5, 10, pruning_type="unstructured", pruning_global=True)
    weights = [None, net.cell("conv2").weights[0].value.reshape(-1)]  # conv1: 1 input
    expected = ti_epochs.global_ratios(weights, 0.5)
    assert model.pruning_ratio == {"conv1": 0.0, "conv2": expected[1]}
    assert model.quantizers["conv2"].schedule.ratio == expected[1]


@pytest.mark.parametrize("args, error, match", [
    ({"pruning_ratio": 0}, RuntimeError, "pruning ratio of 0"),
    ({"total_epochs": None}, RuntimeError, "necessary to be provided"),
    ({"pruning_type": "n2m"}, RuntimeError, "value of m"),
    ({"pruning_type": "n2m", "pruning_m": 4, "pruning_global": True}, NotImplementedError, "global"),
    ({"pruning_type": "n2m", "pruning_m": 4, "pruning_class": "sigmoid"}, NotImplementedError,
     "undefined tensor"),
    ({"pruning_class": "cubic"}, ValueError, "pruning_class must be one of"),
    ({"pruning_ratio": 1.5}, ValueError, r"\(0, 1\]"),
    ({"knee": "v3"}, ValueError, "knee must be"),
    ({"pruning_init_train_ep": 3, "init_train_ep": 4}, TypeError, "give one of them"),
])
def test_refused_arguments(args, error, match):
    with pytest.raises(error, match=match):
        PrunerModule(network(), **{"pruning_ratio": 0.5, "total_epochs": 10, **args})


def test_an_unknown_type_is_unstructured_as_ti(caplog):
    with caplog.at_level(logging.WARNING, logger="n2prune"):
        model = PrunerModule(network(), 0.5, 10, pruning_type="block")
    assert "as TI does" in caplog.text and model.pruned_cells == ["conv2"]
    assert model.quantizers["conv2"].options.pattern == "Unstructured"


def test_a_pruning_class_of_your_own():
    class Halves(ti_epochs.Blend):
        def values(self, epoch, mask, scores):
            return mask + np.float32(0.5) * (1 - mask).astype(np.float32)

    model = PrunerModule(network(), 0.5, 10, Halves, pruning_type="unstructured",
                         pruning_init_train_ep=1)
    run_epochs(model, 3)
    assert pruned_values(model.quantizers["conv2"]) == 0.5


# TI v1's PrunerModule signature (edgeai-torchmodelopt xmodelopt/pruning/pruner_module.py),
# then the names of its older README, accepted too.
TI_API = [("module", inspect.Parameter.empty), ("pruning_ratio", None), ("total_epochs", None),
          ("pruning_class", "blend"), ("p", 2.0), ("copy_args", []), ("pruning_global", False),
          ("pruning_type", "channel"), ("pruning_init_train_ep", 5), ("pruning_m", None)]
README_NAMES = ["init_train_ep", "global_pruning"]


def test_the_signature_holds_tis_api():
    params = inspect.signature(PrunerModule).parameters
    assert list(params)[:len(TI_API)] == [name for name, _ in TI_API]  # TI's positional order
    for name, default in TI_API:
        got = params[name].default
        assert (list(got) if isinstance(got, tuple) else got) == default, name
    assert set(README_NAMES) <= set(params)


def test_the_docs_table_lists_every_argument():
    text = (Path(__file__).resolve().parents[1] / "docs" / "pruning-facades.rst").read_text(
        encoding="utf-8")
    table = text[text.index("TI: ``PrunerModule``"):text.index("Moffett: ``Prune``")]
    missing = [n for n in [n for n, _ in TI_API] + README_NAMES + ["knee", "clamp_incremental",
               "rescore", "seed"] if f"``{n}``" not in table]
    assert not missing


def test_a_cell_with_a_quantizer_is_refused_and_no_prunable_conv_warns(caplog):
    with pytest.raises(ValueError, match="conv2 already have a quantizer"):
        PrunerModule(network({"conv2": {"QWeight": "Prune"}}), 0.5, 10)
    narrow, _provider, _ctx = build_network(parse_ini_text(ini_text(nb_outputs=32)), seed=SEED)
    with caplog.at_level(logging.WARNING, logger="n2prune"):
        model = PrunerModule(narrow, 0.5, 4)  # channel pruning: 8 and 32 outputs, <= 32
    assert model.pruned_cells == [] and "trains dense, as with TI" in caplog.text
    run_epochs(model, 4)
    assert model.sparsity == model.calculate_sparsity().sparsity
