"""QWeight=Prune end to end: INI keys, Gradual schedule in a real run, files, inspect."""

import csv
import json
import re
import sys

import numpy as np
import pytest
from layout import chwn
from networks import classifier_tail, fc, gradual_iter_nonstruct, mnist_input
from runs import trained_run

from n2prune import cli
from n2prune.errors import IniError
from n2prune.train.model import Model

# 6,000 learn images (Validation=0.9): an epoch is 30 steps of 200.
GRADUAL = mnist_input(200) + fc("fc1", "sp", 64, "common.config,prune.config", """\
QWeight=Prune
ActivationFunction=Rectifier
WeightsFiller=HeFiller
""") + classifier_tail("fc1", 10, "common.config,prune.config", keys="QWeight=Prune\n") + """
[prune.config]
""" + gradual_iter_nonstruct(0.1, 0.2, 0.5, "[sp]_EpochSize") + """
[common.config]
Solvers.LearningRate=0.1
Solvers.Momentum=0.9
"""


@pytest.fixture(scope="module")
def gradual_run(tmp_path_factory):
    _, run = trained_run(tmp_path_factory.mktemp("gradual"), "gradual.ini", GRADUAL,
                         "--epochs", "3", log_every=30)
    return run


def update_events(run):
    """``(cell, threshold, sparsity)`` of each "Update masks" line of the log."""
    log = (run / "train.log").read_text()
    return [(cell, float(t), float(s)) for cell, t, s in
            re.findall(r"\[(fc\d)\] Update masks: threshold ([0-9.]+), sparsity ([0-9.]+)", log)]


def test_gradual_threshold_sequence_in_the_log(gradual_run):
    events = update_events(gradual_run)
    # One fire per epoch (StepSizeThreshold = 6000 stimuli = 30 steps of 200):
    # 0.1 at init, 0.3 after epoch 1, 0.5 after epoch 2, then capped: no third update.
    assert [(c, t) for c, t, _ in events] == [("fc1", 0.3), ("fc2", 0.3), ("fc1", 0.5), ("fc2", 0.5)]
    for _cell, threshold, sparsity in events:
        assert threshold <= sparsity < threshold + 0.05  # IterNonStruct overshoot


def test_final_masks_are_those_of_the_last_update(gradual_run):
    """No update after epoch 2: the saved masks, metrics.csv's last row and the
    log's last update give one sparsity per cell."""
    last = {cell: sparsity for cell, _, sparsity in update_events(gradual_run)}
    with open(gradual_run / "metrics.csv") as handle:
        final_row = list(csv.DictReader(handle))[-1]
    with np.load(gradual_run / "weights.npz") as npz:
        for cell, size in (("fc1", 784 * 64), ("fc2", 64 * 10)):
            mask = npz[f"quant/{cell}/mask0"]
            assert mask.size == size and set(np.unique(mask)) == {0, 1}
            sparsity = 1 - mask.mean()
            assert sparsity == pytest.approx(last[cell], abs=5e-5)      # logged with 4 digits
            assert float(final_row[f"sparsity_{cell}"]) == pytest.approx(sparsity, abs=5e-7)
    summary = json.loads((gradual_run / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.85


def test_mask_files_exported_in_n2d2_layout(gradual_run):
    lines = (gradual_run / "weights" / "fc2_masks.syntxt").read_text().splitlines()
    assert len(lines) == 10 and all(len(line.split()) == 64 for line in lines)
    assert set(" ".join(lines).split()) <= {"0", "1"}
    quant = (gradual_run / "weights" / "fc2_quant_weights.syntxt").read_text().split()
    full = (gradual_run / "weights" / "fc2_weights.syntxt").read_text().split()
    masks = " ".join(lines).split()
    assert len(quant) == len(full) == 640
    assert all(float(q) == 0.0 for q, m in zip(quant, masks) if m == "0")
    assert any(float(f) != 0.0 for f, m in zip(full, masks) if m == "0")  # N2D2 keeps them


def test_inspect_table_and_json(gradual_run, capsys):
    assert cli.main(["inspect", str(gradual_run)]) == 0
    out = capsys.readouterr().out.splitlines()
    fc1 = next(line for line in out if line.startswith("fc1 "))
    assert "Gradual" in fc1 and "IterNonStruct" in fc1 and "64x784" in fc1
    assert cli.main(["inspect", str(gradual_run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    cells = {c["cell"]: c for c in report["cells"]}
    assert cells["fc2"]["threshold"] == pytest.approx(0.5)
    with np.load(gradual_run / "weights.npz") as npz:
        kept = {cell: (npz[f"param/{cell}.weights[0]"] * npz[f"quant/{cell}/mask0"]) != 0
                for cell in ("fc1", "fc2")}
    kept = {cell: k.reshape(k.shape[0], -1) for cell, k in kept.items()}   # per output
    assert cells["fc1"]["sparsity"] == pytest.approx(1 - kept["fc1"].mean())
    assert cli.main(["inspect", str(gradual_run), "--cell", "fc2", "--json"]) == 0
    outputs = json.loads(capsys.readouterr().out)["outputs"]
    assert [o["output"] for o in outputs] == list(range(10))
    assert [o["sparsity"] for o in outputs] == pytest.approx(1 - kept["fc2"].mean(axis=1))


def test_weights_import_restores_every_mask(gradual_run, tmp_path):
    model = Model(gradual_run / "config.ini", seed=5, need_data=False)
    from n2prune.commands import load_weights
    restored = load_weights(model.network, gradual_run / "weights")
    assert restored == {"fc1", "fc2"}
    with np.load(gradual_run / "weights.npz") as npz:
        np.testing.assert_array_equal(model.network.cell("fc1").quantizer.get_pruned_masks(0),
                                      npz["quant/fc1/mask0"])


@pytest.mark.parametrize("line, message", [
    ("QWeight.Threshold=1.5", "Threshold"),
    ("QWeight.Delta=-0.1", "Delta"),
    ("QWeight.PruningMode=gradual", "expected one of"),
    ("QWeight.Treshold=0.5", "did you mean QWeight.Threshold"),
])
def test_bad_prune_keys_name_file_and_line(tmp_path, line, message):
    ini = tmp_path / "bad.ini"
    ini.write_text(GRADUAL.replace("QWeight.Threshold=0.5", line))
    with pytest.raises(IniError, match=message) as info:
        Model(ini, need_data=False)
    assert re.match(r".*bad\.ini:\d+ ", str(info.value))


def test_prune_on_a_pool_is_refused(tmp_path):
    ini = tmp_path / "pool.ini"
    ini.write_text(GRADUAL.replace("[softmax]\nInput=fc2", "[softmax]\nQWeight=Prune\nInput=fc2"))
    with pytest.raises(IniError, match="pool.ini:\\d+ \\[softmax\\] QWeight"):
        Model(ini, need_data=False)


def test_pruned_round_trip_through_n2d2_files_gives_identical_outputs(gradual_run, tmp_path):
    from n2prune.commands import load_weights
    from n2prune.io.syntxt import export_network
    a = Model(gradual_run / "config.ini", seed=1, need_data=False)
    load_weights(a.network, gradual_run / "weights.npz")
    export_network(a.network, tmp_path)
    b = Model(gradual_run / "config.ini", seed=2, need_data=False)
    assert load_weights(b.network, tmp_path) == {"fc1", "fc2"}
    x = chwn(np.random.default_rng(0).random((1, 8, 28, 28), dtype=np.float32))
    np.testing.assert_array_equal(a.network.forward(x), b.network.forward(x))
    assert b.network.cell("fc1").quantizer.get_current_threshold() == \
        pytest.approx(a.network.cell("fc1").quantizer.sparsity())


def test_range_and_quantmode_are_accepted_with_a_notice(tmp_path, caplog):
    ini = tmp_path / "range.ini"
    ini.write_text(GRADUAL.replace("QWeight.Threshold=0.5", "QWeight.Threshold=0.5\nQWeight.Range=255"))
    with caplog.at_level("INFO", logger="n2prune"):
        Model(ini, need_data=False)
    assert any("QWeight.Range" in r.getMessage() and "ignored" in r.getMessage() for r in caplog.records)


def test_inspect_plot_writes_pictures(gradual_run, capsys):
    assert cli.main(["inspect", str(gradual_run), "--plot"]) == 0
    assert (gradual_run / "sparsity.png").stat().st_size > 1000
    assert (gradual_run / "masks" / "fc1.png").is_file()


def test_inspect_plot_without_matplotlib_gives_the_install_hint(gradual_run, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" fail
    assert cli.main(["inspect", str(gradual_run), "--plot"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: plots need matplotlib: pip install 'n2prune[plot]'"]


def test_test_verb_gives_the_same_accuracy_on_either_kernel(gradual_run, capsys):
    """``n2prune test --kernel``: the skip kernels and dense BLAS agree on the test set."""
    ini = str(gradual_run.parent / "gradual.ini")
    printed = []
    for kernel in ("sparse", "dense"):
        assert cli.main(["test", ini, "--weights", str(gradual_run), "--kernel", kernel]) == 0
        printed.append(capsys.readouterr().out.strip())
    assert printed[0] == printed[1] and printed[0].startswith("test accuracy 0.")
