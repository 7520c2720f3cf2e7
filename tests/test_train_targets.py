"""Training on MNIST with a data target (auto-encoder) and with an AM-Softmax margin (TargetBias).

Small networks of our own train a few steps through the CLI; with
``$N2D2_CHECKOUT`` set, N2D2's own two model files build and train too.
"""

import csv
import json
import math
import os
from pathlib import Path

import pytest
from runs import train, write_ini

from n2prune import cli

N2D2_CHECKOUT = os.environ.get("N2D2_CHECKOUT")

AUTOENCODER = """[sp]
SizeX=28
SizeY=28
BatchSize=32
[database]
Type=MNIST_IDX_Database
Validation=0.1
[enc]
Input=sp
Type=Conv
KernelDims=4 4
Stride=2
NbOutputs=8
ActivationFunction=Rectifier
WeightsFiller=HeFiller
ConfigSection=common.config
[dec]
Input=enc
Type=Deconv
KernelDims=4 4
Stride=2
NbOutputs=1
WeightsFiller=HeFiller
ConfigSection=common.config
[dec.Target]
DataAsTarget=1
[common.config]
WeightsSolver.LearningRate=0.5
Solvers.Momentum=0.9
"""

AM_SOFTMAX = """[sp]
SizeX=28
SizeY=28
BatchSize=32
[fc1]
Input=sp
Type=Fc
NbOutputs=64
ActivationFunction=Rectifier
WeightsFiller=HeFiller
ConfigSection=common.config
[fc1.norm]
Input=fc1
Type=Normalize
NbOutputs=64
Norm=L2
[fc2]
Input=fc1.norm
Type=Fc
NbOutputs=10
WeightsFiller=XavierFiller
ConfigSection=common.config,fc2.config
[fc2.config]
Normalize=1
[margin]
Input=fc2
Type=TargetBias
NbOutputs=10
Bias=-0.35
[margin.Target]
Type=Target
[scale]
Input=margin
Type=ElemWise
NbOutputs=10
Operation=Sum
Weights=30.0
[softmax]
Input=scale
Type=Softmax
NbOutputs=10
WithLoss=1
[softmax.Target]
[common.config]
NoBias=1
WeightsSolver.LearningRate=0.01
WeightsSolver.Momentum=0.9
"""


def metrics(run):
    with open(run / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_an_autoencoder_trains_and_reports_its_mean_squared_error(tmp_path, capsys):
    ini, run = write_ini(tmp_path, "ae.ini", AUTOENCODER), tmp_path / "run"
    assert train(ini, run, "--steps", "40") == 0
    summary = json.loads((run / "summary.json").read_text())
    assert "test_accuracy" not in summary and summary["steps"] == 40
    rows = metrics(run)
    assert list(rows[0])[:6] == ["step", "epoch", "loss", "mse", "val_mse", "lr"]
    first, last = float(rows[0]["mse"]), float(rows[-1]["mse"])
    # MNIST digits are ~0.1 mean squared pixel: the reconstruction must do better than black
    assert last < first and summary["test_mse"] < 0.08
    printed = capsys.readouterr().out
    assert f"test mean squared error {summary['test_mse']:.5f} on 10000 images" in printed
    assert " mse " in printed and " acc " not in printed
    assert cli.main(["test", str(ini), "--weights", str(run)]) == 0
    assert f"test mean squared error {summary['test_mse']:.5f}" in capsys.readouterr().out
    assert cli.main(["sensitivity", str(ini), "--weights", str(run)]) == 2
    assert ("n2prune sensitivity ranks by accuracy; [dec]'s target measures the mean squared "
            "error (DataAsTarget=1)") in capsys.readouterr().err


def test_an_am_softmax_margin_trains_on_mnist(tmp_path):
    ini, run = write_ini(tmp_path, "am.ini", AM_SOFTMAX), tmp_path / "run"
    assert train(ini, run, "--steps", "60") == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.7  # chance is 0.1
    assert list(metrics(run)[0])[3] == "acc"


@pytest.mark.skipif(not N2D2_CHECKOUT, reason="set N2D2_CHECKOUT to a checkout of N2D2")
@pytest.mark.parametrize("name, overrides, key, bound", [
    # MaxIterations=$(... / ...) evaluates to a float N2D2 reads as an integer: given here
    ("mnist-autoencoder.ini", ["--set", "common.config.Solvers.MaxIterations=22500"],
     "test_mse", 0.2),
    ("mnist24_16c4s2_24c5s2_150_10_AM-Softmax.ini", [], "test_accuracy", 0.3),
])
def test_n2d2s_own_files_build_and_train(tmp_path, monkeypatch, name, overrides, key, bound):
    models = Path(N2D2_CHECKOUT) / "models"
    monkeypatch.chdir(models)
    monkeypatch.delenv("N2D2_DATA", raising=False)  # the bundled MNIST
    assert cli.main(["check", name, *overrides]) == 0
    run = tmp_path / "run"
    assert train(models / name, run, "--steps", "20", *overrides) == 0
    value = json.loads((run / "summary.json").read_text())[key]
    assert math.isfinite(value)
    assert value < bound if key == "test_mse" else value > bound
