"""compat.tinynn: TinyNN's OneShotChannelPruner decides and shrinks as its INI keys do."""

import json
import logging

import numpy as np
import pytest
from channel_net import channel_net_text
from paths import MODELS_INI
from runs import arrays_of

from n2prune.cells import BatchNorm
from n2prune.compat import OneShotChannelPruner
from n2prune.errors import UserError
from n2prune.io.checkpoint import load_network_arrays, network_arrays
from n2prune.prune.channels import zero_removed_channels
from n2prune.prune.costs import cell_costs, totals
from n2prune.shrink import shrink_run
from n2prune.train.model import Model

DENSE = channel_net_text(pruned=())
RESIDUAL = (MODELS_INI / "mobile_residual.ini").read_text()
INPUTS = {"channel": (1, 1, 8, 8), "residual": (1, 1, 28, 28)}
TEXTS = {"channel": DENSE, "residual": RESIDUAL}


def model(folder, text, keys=None):
    """The Model of ``text`` written in ``folder`` with ``{cell: {key: value}}`` added."""
    lines = []
    for line in text.splitlines():
        lines.append(line)
        name = line[1:].split("]")[0] if line.startswith("[") else None
        lines += [f"{k}={v}" for k, v in (keys or {}).get(name, {}).items()]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.ini").write_text("\n".join(lines) + "\n")
    return Model(folder / "model.ini", need_data=False)


def pruner(tmp_path, config, net="channel", text=None):
    return OneShotChannelPruner(model(tmp_path / "facade", text or TEXTS[net]),
                                np.zeros(INPUTS[net], dtype=np.float32), config)


def perturb(network):
    """Every parameter moved off its init (biases, BatchNorm shifts), so a leak would show;
    weights by little, so the outputs stay far from a saturated Softmax."""
    rng = np.random.default_rng(1)
    for param in network.params():
        step = 1.0 if param.value.ndim == 1 else 0.05
        param.value += step * rng.uniform(0.1, 0.5, param.value.shape).astype(np.float32)
        param.changed()
    for cell in network.cells:  # statistics of a trained BatchNorm (they start at 0)
        if isinstance(cell, BatchNorm):
            cell.mean[:] = rng.uniform(-0.2, 0.2, cell.mean.shape)
            cell.variance[:] = rng.uniform(0.5, 2.0, cell.variance.shape)


def hand_keys(cells, criterion, threshold=0.5):
    """The ``QWeight`` keys a user would write for TinyNN's settings, by hand."""
    keys = {"QWeight": "Prune", "QWeight.PruningMode": "Static", "QWeight.Pattern": "Channel",
            "QWeight.Criterion": criterion, "QWeight.Threshold": str(threshold)}
    return {name: keys for name in cells}


@pytest.mark.parametrize("net, metrics, criterion", [
    ("channel", "l1_norm", "L1"), ("channel", "l2_norm", "L2"), ("channel", "fpgm", "FPGM"),
    ("channel", "random", "Random"), ("residual", "l2_norm", "L2"), ("residual", "fpgm", "FPGM"),
])
def test_facade_and_ini_give_the_same_network(tmp_path, net, metrics, criterion):
    facade = pruner(tmp_path, {"sparsity": 0.5, "metrics": metrics}, net)
    cells = ("c1", "c3", "pw", "cat") if net == "channel" else ("conv1", "pw2", "conv3")
    assert facade.ini_keys() == hand_keys(cells, criterion)
    ini = model(tmp_path / "ini", TEXTS[net], hand_keys(cells, criterion))
    for cell in ini.network.cells:
        quantizer = getattr(cell, "quantizer", None)
        if quantizer is not None:
            for ours, theirs in zip(facade.quantizers[cell.name].masks, quantizer.masks, strict=True):
                np.testing.assert_array_equal(ours, theirs)
    assert facade.network.removed_channels.keys() == ini.network.removed_channels.keys()
    for name, channels in ini.network.removed_channels.items():
        np.testing.assert_array_equal(facade.network.removed_channels[name], channels)
    # The INI side shrinks as a run folder through `n2prune shrink`.
    perturb(facade.network)
    perturb(ini.network)
    zero_removed_channels(ini.network)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.ini").write_text(ini.ini.dumps())
    np.savez(run / "weights.npz", **network_arrays(ini.network))
    shrink_run(run)
    theirs = arrays_of(run / "shrunk" / "weights.npz")
    ours = network_arrays(facade.prune())
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        np.testing.assert_array_equal(ours[key], value, err_msg=key)


def test_shrunk_network_gives_the_masked_outputs_and_fewer_macs(tmp_path):
    facade = pruner(tmp_path, {"sparsity": 0.5, "metrics": "l2_norm"}, "residual")
    perturb(facade.network)
    masked = facade.network
    dense = facade.calc_flops()
    assert dense == masked.macs_per_sample() == 354688
    shrunk_macs = totals(cell_costs(masked))["macs_shrunk"]
    shrunk = facade.prune()
    assert facade.masked_network is masked and facade.network is shrunk
    assert facade.calc_flops() == shrunk_macs == shrunk.macs_per_sample()
    # A quarter where both sides of a conv lose half their channels; conv1 reads one channel.
    assert facade.calc_flops() < 0.31 * dense
    x = np.random.default_rng(5).standard_normal((6, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(shrunk.predict(x), masked.predict(x), rtol=1e-5, atol=1e-5)
    assert [w.value.shape for w in shrunk.cell("conv3").weights] == [(16, 8, 3, 3)]


def test_prune_logs_each_shrunk_cell(tmp_path, caplog):
    facade = pruner(tmp_path, {"sparsity": 0.5, "metrics": "l1_norm"})
    with caplog.at_level(logging.INFO, logger="n2prune"):
        facade.prune()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["c1: 8 -> 4", "c3: 4 -> 2", "dw: 8 -> 4", "pw: 8 -> 4", "bn: 8 -> 4",
                     "add: 8 -> 4", "cat: 6 -> 3", "pool: 6 -> 3"]
    with pytest.raises(UserError, match="already called"):
        facade.prune()


def test_prune_writes_a_model_that_loads(tmp_path):
    facade = pruner(tmp_path, {"sparsity": 0.5, "metrics": "fpgm"})
    perturb(facade.network)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("mine")
    with pytest.raises(UserError, match="taken: exists and is not empty"):
        facade.prune(tmp_path / "taken")
    assert facade.masked_network is None and (tmp_path / "taken" / "x").read_text() == "mine"
    shrunk = facade.prune(tmp_path / "out")
    assert facade.ini_text == (tmp_path / "out" / "model.ini").read_text()
    text = (tmp_path / "out" / "model.ini").read_text()
    assert "; [cat] NbOutputs 6 -> 3 (removed output channels" in text
    reloaded = Model(tmp_path / "out" / "model.ini", need_data=False).network
    load_network_arrays(reloaded, arrays_of(tmp_path / "out" / "weights.npz"), "out")
    x = np.random.default_rng(2).standard_normal((4, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(reloaded.predict(x), shrunk.predict(x))
    assert (tmp_path / "out" / "weights" / "cat_weights.syntxt").is_file()


def test_generate_config_round_trips(tmp_path):
    config = {"sparsity": {"default": 0.5, "c3": 0.25}, "metrics": "l2_norm",
              "exclude_ops": ["pool"]}
    first = pruner(tmp_path, config)
    assert first.sparsity == {"c1": 0.5, "c3": 0.25, "pw": 0.5, "cat": 0.0}
    first.generate_config(tmp_path / "pruner.json")
    written = json.loads((tmp_path / "pruner.json").read_text())
    assert written == {"sparsity": {"default": 0.5, "c1": 0.5, "c3": 0.25, "pw": 0.5, "cat": 0.0},
                       "metrics": "l2_norm", "skip_last_fc": True, "exclude_ops": ["pool"]}
    again = OneShotChannelPruner(model(tmp_path / "again", DENSE), np.zeros(INPUTS["channel"]),
                                 str(tmp_path / "pruner.json"))
    assert again.sparsity == first.sparsity and again.ini_keys() == first.ini_keys()
    assert len(again.network.removed_channels["c3"]) == 1  # 3 of 4 kept: ⌊0.75·4⌋
    assert "cat" not in again.network.removed_channels


def test_exclude_ops_leaves_a_whole_group_alone(tmp_path):
    facade = pruner(tmp_path, {"sparsity": 0.5, "metrics": "l2_norm", "exclude_ops": ["bn"]})
    assert facade.sparsity == {"c1": 0.0, "c3": 0.5, "pw": 0.0, "cat": 0.5}
    assert set(facade.network.removed_channels) == {"c3", "cat", "pool"}


def test_skip_last_fc_as_tinynn(tmp_path):
    text = DENSE + "\n[aux]\nInput=pool\nType=Fc\nNbOutputs=6\n"  # an Fc no target reads
    kept = pruner(tmp_path / "a", {"sparsity": 0.5, "metrics": "l2_norm"}, text=text)
    assert kept.sparsity["aux"] == 0.0 and "aux" not in kept.network.removed_channels
    config = {"sparsity": 0.5, "metrics": "l2_norm", "skip_last_fc": False}
    pruned = pruner(tmp_path / "b", config, text=text)
    assert len(pruned.network.removed_channels["aux"]) == 3
    named = pruner(tmp_path / "c", {"sparsity": {"default": 0.5, "aux": 0.5}, "metrics": "l2_norm"},
                   text=text)
    assert named.sparsity["aux"] == 0.5  # a named last Fc is pruned


@pytest.mark.parametrize("config, match", [
    ({"sparsty": 0.5, "metrics": "l2_norm"},
     "unknown key 'sparsty' in the OneShotChannelPruner config; did you mean sparsity"),
    ({"sparsity": 0.5, "metrics": "l3_norm"},
     "unknown metrics 'l3_norm' .*known: l1_norm, l2_norm, fpgm, random"),
    ({"sparsity": 0.5}, "needs 'metrics'"),
    ({"sparsity": 1.0, "metrics": "fpgm"}, r"sparsity must be a number in \[0, 1\)"),
    ({"sparsity": "half", "metrics": "fpgm"}, "sparsity must be a number"),
    ({"sparsity": {"c1": 0.5}, "metrics": "fpgm"}, "needs a 'default' key"),
    ({"sparsity": {"default": 0.5, "dw": 0.5}, "metrics": "fpgm"},
     "unknown sparsity cell 'dw' in the .*known: c1, c3, pw, cat, fc"),
    ({"sparsity": {"default": 0.5, "fc": 0.5}, "metrics": "fpgm"}, "none of fc's channels"),
    ({"sparsity": {"default": 0.5, "pw": 0.25}, "metrics": "fpgm"},
     "must share one sparsity .*: c1=0.5, pw=0.25"),
    ({"sparsity": 0.5, "metrics": "fpgm", "skip_last_fc": "yes"}, "skip_last_fc must be"),
    ({"sparsity": 0.5, "metrics": "fpgm", "exclude_ops": "bn"}, "exclude_ops must be a list"),
    ({"sparsity": 0.5, "metrics": "fpgm", "exclude_ops": ["poll"]},
     "unknown exclude_ops cell 'poll' in the OneShotChannelPruner config; did you mean pool"),
])
def test_rejected_configs(tmp_path, config, match):
    with pytest.raises(UserError, match=match):
        pruner(tmp_path, config)


def test_rejected_inputs(tmp_path):
    config = {"sparsity": 0.5, "metrics": "fpgm"}
    with pytest.raises(UserError, match=r"shape \(1, 3, 8, 8\); the network reads batch-first "
                                        r"\(N, 1, 8, 8\)"):
        OneShotChannelPruner(model(tmp_path / "a", DENSE), np.zeros((1, 3, 8, 8)), config)
    with pytest.raises(TypeError, match="takes a Model"):
        OneShotChannelPruner(model(tmp_path / "b", DENSE).network, np.zeros((1, 1, 8, 8)), config)
    (tmp_path / "pruner.yaml").write_text("sparsity: 0.5\nmetrics: fpgm\n")
    with pytest.raises(UserError, match="pruner.yaml:1: not JSON"):
        pruner(tmp_path, str(tmp_path / "pruner.yaml"))
    with pytest.raises(UserError, match="c1, c3, pw, cat already prune channels"):
        pruner(tmp_path, config, text=channel_net_text())
