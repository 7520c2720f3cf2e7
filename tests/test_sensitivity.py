"""``n2prune sensitivity``: each group pruned alone, the curves, the budget file it writes."""

import csv
import json

import numpy as np
import pytest
from runs import arrays_of, train, write_ini
from test_prune_channel_training import CHANNELS, RESIDUAL

from n2prune import cli
from n2prune.commands import load_weights
from n2prune.ini import load_ini
from n2prune.prune.channels import kept_units
from n2prune.prune.costs import cell_costs, totals
from n2prune.prune.pruned_cells import initialize_masks
from n2prune.train.evaluate import accuracy
from n2prune.train.model import Model

# The residual pair (c1, c2 meet at the add) then a plain conv c3: two channel groups.
DENSE = RESIDUAL.replace(CHANNELS, "").replace("[fc2]\nInput=add", """[c3]
Input=add
Type=Conv
KernelDims=3 3
NbOutputs=8
ActivationFunction=Rectifier
ConfigSection=solver

[fc2]
Input=c3""")
# The run trains on 3% of MNIST; sensitivity measures on 3,000 held-out images.
SMALL_VALIDATION = ["--set", "database.Validation=0.05"]


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dense")
    ini = write_ini(folder, "dense.ini", DENSE)
    assert train(ini, folder / "run", "--epochs", "1") == 0
    return ini, folder / "run"


def sensitivity(ini, run, out, *extra):
    return cli.main(["sensitivity", str(ini), "--weights", str(run), "--out", str(out),
                     *SMALL_VALIDATION, *extra])


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def pruned_alone(ini, run, cell, ratio):
    """The validation accuracy and shrunk MACs of ``cell`` channel-pruned at ``ratio``
    in a model built as training would build it."""
    keys = ["QWeight=Prune", "QWeight.PruningMode=Static", "QWeight.Pattern=Channel",
            f"QWeight.Threshold={ratio}"]
    model = Model(ini, [SMALL_VALIDATION[1]] + [f"{cell}.{k}" for k in keys], seed=1)
    load_weights(model.network, run)
    initialize_masks(model.network, model.rng, model.epoch_size)
    return accuracy(model.network, model, "validation"), totals(cell_costs(model.network))


def test_each_group_is_measured_alone_as_training_would_prune_it(dense_run, tmp_path, capsys):
    ini, run = dense_run
    assert sensitivity(ini, run, tmp_path / "s", "--ratios", "0.5,0.25") == 0
    out = capsys.readouterr().out
    assert "c1+c2" in out and "validation accuracy" in out
    rows = read_rows(tmp_path / "s" / "sensitivity.csv")
    assert [(r["group"], r["ratio"]) for r in rows] == [
        ("c1+c2", "0.25"), ("c1+c2", "0.5"), ("c3", "0.25"), ("c3", "0.5")]
    baselines = {round(float(r["accuracy"]) + float(r["accuracy_drop"]), 5) for r in rows}
    assert len(baselines) == 1
    # c3 is measured after c1+c2: equal to a fresh model only if c1+c2 was restored.
    acc, total = pruned_alone(ini, run, "c3", 0.5)
    assert float(rows[3]["accuracy"]) == pytest.approx(acc, abs=1e-6)
    assert int(rows[3]["macs_shrunk"]) == total["macs_shrunk"] < total["macs_dense"]
    assert float(rows[1]["macs_shrunk_fraction"]) < float(rows[0]["macs_shrunk_fraction"]) < 1
    assert (tmp_path / "s" / "sensitivity.png").stat().st_size > 0


def removed_count(weights, name):
    w, mask = weights[f"param/{name}.weights[0]"], weights[f"quant/{name}/mask0"]
    return int((~mask.reshape(w.shape[0], -1).any(axis=1)).sum())


def test_the_budget_file_meets_the_target_when_training_loads_it(dense_run, tmp_path, capsys):
    ini, run = dense_run
    assert sensitivity(ini, run, tmp_path / "s", "--ratios", "0.25,0.5,0.75",
                       "--target-macs", "0.5") == 0
    assert "predicted" in capsys.readouterr().out
    budget = load_ini(tmp_path / "s" / "budget.ini")
    chosen = {s.name: float(s.raw("QWeight.Threshold")) for s in budget.sections()}
    assert chosen and chosen.get("c1") == chosen.get("c2")  # one decision for the pair
    assert train(ini, tmp_path / "ft", "--weights", str(run), "--steps", "1",
                 "--set-file", str(tmp_path / "s" / "budget.ini")) == 0
    weights = arrays_of(tmp_path / "ft" / "weights.npz")
    for cell, ratio in chosen.items():
        assert removed_count(weights, cell) == 8 - kept_units(8, ratio, 1), cell
    capsys.readouterr()
    assert cli.main(["inspect", str(tmp_path / "ft"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["macs_shrunk_ratio"] <= 0.5


def test_unstructured_measures_every_weight_cell_without_a_picture_when_no_matplotlib(
        dense_run, tmp_path, capsys, monkeypatch):
    ini, run = dense_run
    monkeypatch.setattr("n2prune.sensitivity.importlib.util.find_spec", lambda name: None)
    assert sensitivity(ini, run, tmp_path / "s", "--unstructured", "--ratios", "0.9",
                       "--target-params", "0.3") == 0
    assert "pip install 'n2prune[plot]'" in capsys.readouterr().err
    rows = read_rows(tmp_path / "s" / "sensitivity.csv")
    assert [r["group"] for r in rows] == ["c1", "c2", "c3", "fc2"]
    assert "macs_effective" in rows[0] and not (tmp_path / "s" / "sensitivity.png").exists()
    # fc2 holds most parameters: 90% of it alone brings the network under 30%.
    text = (tmp_path / "s" / "budget.ini").read_text()
    assert "[fc2]" in text and "QWeight.Pattern=Unstructured" in text


@pytest.mark.parametrize("extra, message", [
    (["--set", "database.Validation=0"], "Validation=0"),
    (["--exclude", "c9"], "--exclude c9: no such cell"),
    (["--exclude", "c1,c3"], "nothing to analyse"),
    (["--ratios", "0.5,1"], "--ratios"),
])
def test_refusals_are_one_line(dense_run, tmp_path, capsys, extra, message):
    ini, run = dense_run
    assert sensitivity(ini, run, tmp_path / "s", *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_the_weights_are_restored_after_each_point(dense_run):
    from n2prune.sensitivity import Analysis, measure
    ini, run = dense_run
    args = cli.make_parser().parse_args(["sensitivity", str(ini), "--weights", str(run),
                                         *SMALL_VALIDATION])
    analysis = Analysis(args, 1, load_weights)
    before = {k: v.copy() for k, v in analysis.saved.items()}
    x = np.random.default_rng(0).standard_normal((*analysis.network.input_shape, 4)).astype(np.float32)
    expected = analysis.network.forward(x).copy()
    measure(analysis, [0.5])
    np.testing.assert_array_equal(analysis.network.forward(x), expected)
    assert not analysis.network.removed_channels
    for key, value in before.items():
        np.testing.assert_array_equal(analysis.saved[key], value, err_msg=key)


def test_a_cell_pruned_in_the_ini_keeps_its_channels_at_every_point(tmp_path, capsys):
    from n2prune.sensitivity import Analysis
    static = "QWeight=Prune\nQWeight.PruningMode=Static\nQWeight.Pattern=Channel\nQWeight.Threshold=0.5\n"
    ini = write_ini(tmp_path, "c3.ini", DENSE.replace("[fc2]", static + "\n[fc2]"))
    assert train(ini, tmp_path / "run", "--steps", "5") == 0
    # Masked weights keep their values (N2D2): make the removed channels' the largest.
    arrays = arrays_of(tmp_path / "run" / "weights.npz")
    gone = arrays["quant/c3/mask0"].reshape(8, -1).any(axis=1) == 0
    arrays["param/c3.weights[0]"][gone] = 100
    np.savez(tmp_path / "run" / "weights.npz", **arrays)
    args = cli.make_parser().parse_args(["sensitivity", str(ini), "--weights",
                                         str(tmp_path / "run"), *SMALL_VALIDATION])
    analysis = Analysis(args, 1, load_weights)
    assert analysis.groups == [("c1", "c2")] and "c3 left out" in capsys.readouterr().err
    removed = analysis.network.removed_channels["c3"].copy()
    np.testing.assert_array_equal(removed, np.flatnonzero(gone))
    for ratio in (0.25, 0.75):
        analysis.prune({("c1", "c2"): ratio})
        np.testing.assert_array_equal(analysis.network.removed_channels["c3"], removed)
        analysis.restore()
