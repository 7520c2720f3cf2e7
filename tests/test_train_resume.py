"""Runs on real MNIST: a floor well above chance, and exact resumption."""

import json

import numpy as np
import pytest
from paths import N2D2_MODELS

from n2prune import cli
from n2prune.train.loop import Trainer

# 6,000 learn images (Validation=0.9) keep an epoch at 24 steps of 256.
TINY = """
[database]
Type=MNIST_IDX_Database
Validation=0.9

[sp]
SizeX=28
SizeY=28
BatchSize=256

[fc1]
Input=sp
Type=Fc
NbOutputs=32
ActivationFunction=Rectifier
WeightsFiller=HeFiller
ConfigSection=common.config

[drop]
Input=fc1
Type=Dropout
NbOutputs=32

[fc2]
Input=drop
Type=Fc
NbOutputs=10
ConfigSection=common.config

[softmax]
Input=fc2
Type=Softmax
NbOutputs=10
WithLoss=1

[softmax.Target]

[common.config]
Solvers.LearningRate=0.2
Solvers.Momentum=0.9
WeightsSolver.Decay=0.0005
Solvers.LearningRatePolicy=StepDecay
Solvers.LearningRateStepSize=[sp]_EpochSize
Solvers.LearningRateDecay=0.9
"""


@pytest.fixture
def tiny_ini(tmp_path):
    path = tmp_path / "tiny.ini"
    path.write_text(TINY)
    return path


def weights(run):
    with np.load(run / "weights.npz") as npz:
        return {k: npz[k] for k in npz.files}


def train(ini, out, *extra):
    return cli.main(["train", str(ini), "--out", str(out), "--log-every", "10", *extra])


def test_tiny_run_learns_and_writes_run_folder(tiny_ini, tmp_path):
    run = tmp_path / "run"
    assert train(tiny_ini, run, "--epochs", "2") == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.85  # official 10k test set; chance is 0.1
    assert summary["epochs"] == 2 and summary["steps"] == 48
    assert 0.85 < summary["best_validation_accuracy"] <= 1.0
    for name in ("config.ini", "run.json", "train.log", "metrics.csv", "snapshot.npz",
                 "weights/fc1_weights.syntxt", "weights/fc1_biases.syntxt",
                 "weights_validation/fc2_weights.syntxt", "weights_validation.npz"):
        assert (run / name).is_file(), name
    log = (run / "train.log").read_text()
    assert "step 10/48 ep 0.42 loss" in log and "samples/s" in log
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,loss,acc,val_acc,lr")
    assert len(rows) >= 1 + 4


def test_resume_at_epoch_end_gives_identical_weights(tiny_ini, tmp_path):
    train(tiny_ini, tmp_path / "straight", "--epochs", "2")
    train(tiny_ini, tmp_path / "split", "--epochs", "1")
    assert train(tiny_ini, tmp_path / "unused", "--resume", str(tmp_path / "split"), "--epochs", "2") == 0
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_ctrl_c_saves_snapshot_and_resume_matches(tiny_ini, tmp_path, monkeypatch):
    train(tiny_ini, tmp_path / "straight", "--epochs", "2")
    original = Trainer.train_step

    def interrupted(self, *args):
        if self.state.step == 30:  # inside the second epoch
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(Trainer, "train_step", interrupted)
    assert train(tiny_ini, tmp_path / "cut", "--epochs", "2") == 130
    assert (tmp_path / "cut" / "snapshot.npz").is_file()
    assert not (tmp_path / "cut" / "summary.json").exists()
    monkeypatch.setattr(Trainer, "train_step", original)
    assert cli.main(["train", str(tiny_ini), "--resume", str(tmp_path / "cut")]) == 0
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "cut")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_existing_run_folder_is_not_overwritten(tiny_ini, tmp_path, capsys):
    train(tiny_ini, tmp_path / "run", "--steps", "2")
    capsys.readouterr()
    assert train(tiny_ini, tmp_path / "run", "--steps", "2") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume" in err[0]


@pytest.mark.n2d2_models
def test_lenet_short_run_on_real_mnist(tmp_path):
    """N2D2's own LeNet.ini, unmodified, for 40 steps of 128 images."""
    run = tmp_path / "lenet"
    assert cli.main(["train", str(N2D2_MODELS / "LeNet.ini"), "--steps", "40",
                     "--out", str(run), "--log-every", "20"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 40
    assert summary["test_accuracy"] > 0.80
