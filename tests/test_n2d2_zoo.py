"""N2D2's own model zoo (a checkout given by ``$N2D2_CHECKOUT``): what builds, what is
refused and why, one training step each, and cifar-10.ini trained end to end.

The files are read in place from the checkout, never copied into the project;
without ``N2D2_CHECKOUT`` every test here skips.
"""

import importlib.util
import re

import pytest
from paths import ROOT, n2d2_checkout
from runs import train
from test_data_cifar import make_cifar10

CHECKOUT, MISSING = n2d2_checkout()
pytestmark = pytest.mark.skipif(CHECKOUT is None, reason=MISSING or "")


def _zoo():
    spec = importlib.util.spec_from_file_location("n2d2_zoo", ROOT / "benchmarks" / "n2d2_zoo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Refusals by feature: each refused file's one line must name one of these.
REFUSED_FEATURES = {
    "spiking": r"spiking models",
    "quantizers": r"SAT quantization-aware training|LSQ quantization|stimuli provider parameters",
    # The zoo's ONNX files import models N2D2's tools download; the checkout has none.
    "ONNX model not downloaded": r"ONNX file not found",
    "detection": r"detection cells|detection and matching targets|a target needs a cell with 1x1",
    "not a network": r"missing \[sp\] section",
    "other N2D2 cells": r"cells are not supported by n2prune",
    # VGG16.ini's BiasFiller=ConstantFiller has no Value, which N2D2's getProperty requires too.
    "refused by N2D2 too": r"\[fc7\] BiasFiller: missing required key Value",
}


@pytest.fixture(scope="module")
def survey():
    zoo = _zoo()
    return {row["file"]: row for row in (zoo.survey_one(ini, CHECKOUT)
                                         for ini in zoo.ini_files(CHECKOUT))}


def test_every_file_builds_or_is_refused_naming_a_feature(survey):
    unexplained = {name: row["error"] for name, row in survey.items() if not row["builds"]
                   and not any(re.search(p, row["error"]) for p in REFUSED_FEATURES.values())}
    assert not unexplained


def test_the_zoo_builds(survey):
    expected = {name for name in survey if re.search(EXPECTED_BUILDS, name)}
    assert expected and all(survey[name]["builds"] for name in expected), [
        (name, survey[name].get("error")) for name in expected if not survey[name]["builds"]]


# What the issue lists, as the files of N2D2's checkout name them (ResNet-18-BN.ini
# has no [sp] section and VGG16.ini a filler without its Value: N2D2 refuses both).
EXPECTED_BUILDS = (r"(ResNet-(11|18|34|50|50-BN)\.ini|MobileNet_v[12](_batchnorm)?(_grayscale)?\.ini"
                   r"|SqueezeNet_v1\.[01]\.ini|GoogleNet\.ini|cifar-10\.ini|GTSRB.*\.ini"
                   r"|mnist-autoencoder\.ini|AM-Softmax\.ini|mnist_multibranch_model/model(_CUDA|_wo_softmax)*\.ini)$")


def test_each_built_file_runs_one_training_step(survey):
    zoo = _zoo()
    failed = {name: zoo._step(CHECKOUT / name, CHECKOUT, 64) for name in survey
              if re.search(EXPECTED_BUILDS, name)}
    assert all(outcome.startswith("ok") for outcome in failed.values()), failed


def test_resnet_18_reports_n2d2s_count(survey):
    """11,684,008: N2D2's rule (connected Conv and Fc weights plus biases)."""
    assert survey["models/ResNet-18.ini"]["params"] == 11_684_008


def test_cifar10_ini_trains_end_to_end_on_a_generated_cifar_folder(tmp_path):
    make_cifar10(tmp_path / "cifar", per_batch=64, nb_test=64)
    ini = CHECKOUT / "models" / "cifar-10.ini"
    assert train(ini, tmp_path / "run", "--epochs", "1", "--set",
                 f"database.DataPath={tmp_path / 'cifar'}", "--set", "sp.BatchSize=16") == 0
    assert (tmp_path / "run" / "stimuli_data").is_dir()
    assert "test accuracy" in (tmp_path / "run" / "train.log").read_text()
