"""Channel pruning while training: coupled cells stay coupled, and a run resumes to the bit."""

import json

import numpy as np
import pytest
from networks import mnist_input, softmax_loss
from runs import arrays_of, assert_same_weights, train, write_ini

from n2prune import cli

CHANNELS = """QWeight=Prune
QWeight.PruningMode=Gradual
QWeight.Pattern=Channel
QWeight.StartThreshold=0.25
QWeight.GammaThreshold=0.25
QWeight.Threshold=0.5
QWeight.StepSizeThreshold=640
"""

# c1 and c2 meet at the residual add: one set of 8 channels, decided together.
RESIDUAL = mnist_input(64, validation=0.97) + f"""
[c1]
Input=sp
Type=Conv
KernelDims=3 3
Stride=2
NbOutputs=8
ConfigSection=solver
{CHANNELS}
[bn1]
Input=c1
Type=BatchNorm
NbOutputs=8
ActivationFunction=Rectifier
ConfigSection=solver

[c2]
Input=bn1
Type=Conv
KernelDims=3 3
Padding=1
NbOutputs=8
ConfigSection=solver
{CHANNELS}
[bn2]
Input=c2
Type=BatchNorm
NbOutputs=8
ConfigSection=solver

[add]
Input=bn2,bn1
Type=ElemWise
NbOutputs=8
Operation=Sum
ActivationFunction=Rectifier

[fc2]
Input=add
Type=Fc
NbOutputs=10
ConfigSection=solver
""" + softmax_loss() + """
[solver]
Solvers.LearningRate=0.05
Solvers.Momentum=0.9
"""


def removed_rows(weights, name):
    w = weights[f"param/{name}.weights[0]"]
    mask = weights[f"quant/{name}/mask0"]
    return np.flatnonzero(~mask.reshape(w.shape[0], -1).any(axis=1))


def test_coupled_cells_prune_the_same_channels_and_they_stay_zero(tmp_path):
    ini = write_ini(tmp_path, "res.ini", RESIDUAL)
    assert train(ini, tmp_path / "run", "--epochs", "1") == 0
    weights = arrays_of(tmp_path / "run" / "weights.npz")
    removed = removed_rows(weights, "c1")
    assert len(removed) == 4  # 50% of 8, reached after 3 fires
    np.testing.assert_array_equal(removed_rows(weights, "c2"), removed)
    for name in ("param/c1.biases", "param/c2.biases", "param/bn1.scales", "param/bn1.biases",
                 "param/bn2.scales", "param/bn2.biases"):
        assert not weights[name][removed].any(), name


def test_a_channel_pruned_run_resumes_to_the_bit(tmp_path):
    ini = write_ini(tmp_path, "res.ini", RESIDUAL)
    train(ini, tmp_path / "straight", "--epochs", "2")
    train(ini, tmp_path / "split", "--epochs", "1")
    assert cli.main(["train", str(ini), "--resume", str(tmp_path / "split"), "--epochs", "2"]) == 0
    assert_same_weights(tmp_path / "straight", tmp_path / "split")


def test_the_shrunk_run_scores_the_same_and_trains_on_its_own(tmp_path, capsys):
    ini = write_ini(tmp_path, "res.ini", RESIDUAL)
    train(ini, tmp_path / "run", "--epochs", "1")
    assert cli.main(["shrink", str(tmp_path / "run"), "--out", str(tmp_path / "small")]) == 0
    capsys.readouterr()
    scores = []
    for model, weights in ((tmp_path / "run" / "config.ini", tmp_path / "run"),
                           (tmp_path / "small" / "model.ini", tmp_path / "small")):
        assert cli.main(["test", str(model), "--weights", str(weights)]) == 0
        scores.append(capsys.readouterr().out)
    assert scores[0] == scores[1] and "test accuracy" in scores[0]
    small = tmp_path / "small" / "model.ini"
    assert train(small, tmp_path / "again", "--steps", "5", "--weights", str(tmp_path / "small")) == 0
    weights = arrays_of(tmp_path / "again" / "weights.npz")
    assert weights["param/c1.weights[0]"].shape == (4, 1, 3, 3)
    assert not any(k.startswith("quant/") for k in weights)


def test_inspect_counts_the_shrunk_macs_the_shrunk_model_has(tmp_path, capsys):
    ini = write_ini(tmp_path, "res.ini", RESIDUAL)
    train(ini, tmp_path / "run", "--epochs", "1")
    capsys.readouterr()
    assert cli.main(["inspect", str(tmp_path / "run"), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)["total"]["macs_shrunk"]
    assert cli.main(["shrink", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert cli.main(["check", str(tmp_path / "run" / "shrunk" / "model.ini"), "--json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    assert total["macs_dense"] == total["macs_shrunk"] == predicted


@pytest.fixture(scope="module")
def shrunk_residual(tmp_path_factory):
    """The residual network channel-pruned for an epoch, then shrunk: its folder."""
    folder = tmp_path_factory.mktemp("shrunk_residual")
    ini = write_ini(folder, "res.ini", RESIDUAL)
    assert train(ini, folder / "run", "--epochs", "1") == 0
    assert cli.main(["shrink", str(folder / "run"), "--out", str(folder / "small")]) == 0
    return folder / "small"


# Each pattern at 50%, exact on the shrunk shapes (c2 4x4x3x3, fc2 10x784).
WEIGHT_PATTERNS = {
    "NM": (".Pattern=NM",),
    "Unstructured": (".Pattern=Unstructured",),
    "Bank": (".Pattern=Bank", ".BankSize=4"),
}


@pytest.mark.parametrize("pattern", sorted(WEIGHT_PATTERNS))
def test_shrunk_then_pruned_weights_with_the_skip_kernels(shrunk_residual, tmp_path, capsys,
                                                          pattern):
    """Channels first, then unstructured, N:M or bank masks on what remains: the two
    compose, the run reloads to the same score, and the MACs add up."""
    keys = ("=Prune", ".PruningMode=Static", ".Threshold=0.5", ".Kernel=Sparse",
            *WEIGHT_PATTERNS[pattern])
    pruned = [f"--set={cell}.QWeight{key}" for cell in ("c2", "fc2") for key in keys]
    run = tmp_path / "pruned"
    assert train(shrunk_residual / "model.ini", run, "--steps", "10",
                 "--weights", str(shrunk_residual), *pruned) == 0
    assert "skip kernels at sparsity 0.500" in (run / "train.log").read_text()
    capsys.readouterr()
    assert cli.main(["test", str(run / "config.ini"), "--weights", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert f"test accuracy {summary['test_accuracy']:.4f}" in capsys.readouterr().out
    assert cli.main(["inspect", str(run), "--json", "--check"]) == 0
    report = json.loads(capsys.readouterr().out.split("\ncheck [")[0])
    cells = {c["cell"]: c for c in report["cells"]}
    assert cells["c2"]["macs_effective"] * 2 == cells["c2"]["macs_dense"]
    assert cells["fc2"]["macs_effective"] * 2 == cells["fc2"]["macs_dense"]
    assert report["total"]["macs_shrunk"] == report["total"]["macs_dense"]  # nothing left to cut
