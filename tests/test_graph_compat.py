"""Every N2D2 model file in shared/n2d2_models/ either builds and runs, or is refused in one line.

The files are read in place (never copied). A refusal must be a ``UserError``
whose single-line message starts with ``<file>:<line>``, where that line of
the file holds the key that is not supported, and says what it is.
"""

import re
import subprocess
import sys

import numpy as np
import pytest
from layout import chwn
from paths import N2D2_MODEL_FILES, N2D2_MODELS

from n2prune.errors import UserError
from n2prune.train.model import Model

MODELS = N2D2_MODELS
pytestmark = pytest.mark.n2d2_models

# file -> number of outputs of the target cell (the network builds and runs)
BUILDS = {
    "LeNet.ini": 10,
    "mnist24_16c4s2_24c5s2_150_10.ini": 10,
    "GTSRB29_32c4s1_32mp2_48c5s1_48mp3_200_43.ini": 43,  # GTSRB database unsupported
    "tests_mnist_model_model.ini": 10,
    "tests_mnist_model_model_wo_softmax.ini": 10,
}
# file -> (text of the offending line, regex the message must match)
REFUSED = {
    "LeNet_Spike.ini": ("DefaultModel=Transcode_CUDA", r"spiking model"),
    "LeNet_quant.ini": ("ConfigSection=sp.config", r"\[sp\] ConfigSection: .*quantization"),
    "tests_mnist_model_LeNet-bn-SAT.ini": ("QWeight=SAT", r"QWeight: SAT quantization-aware training .* not supported"),
}


def test_every_shipped_file_has_an_expected_outcome():
    assert sorted([*BUILDS, *REFUSED]) == sorted(N2D2_MODEL_FILES)
    assert sorted(p.name for p in MODELS.glob("*.ini")) == sorted(N2D2_MODEL_FILES)


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_file_builds_and_runs_forward(name):
    model = Model(MODELS / name, need_data=False)
    network = model.network
    height, width, channels = model.provider.size
    assert network.input_shape == (channels, height, width)
    x = chwn(np.random.default_rng(0).random((channels, 2, height, width), dtype=np.float32))
    y = network.forward(x, train=False)
    assert y.shape == (BUILDS[name], 1, 1, 2)
    assert np.all(np.isfinite(y))
    assert network.cell(network.targets[0].cell).output_shape == (BUILDS[name], 1, 1)


def test_missing_database_still_builds_the_network(tmp_path, monkeypatch):
    monkeypatch.setenv("N2D2_DATA", str(tmp_path))
    model = Model(MODELS / "GTSRB29_32c4s1_32mp2_48c5s1_48mp3_200_43.ini", need_data=False)
    assert model.database is None
    with pytest.raises(UserError, match=r"\[database\] Type: .*GTSRB folder not found; get "):
        Model(MODELS / "GTSRB29_32c4s1_32mp2_48c5s1_48mp3_200_43.ini", need_data=True)
    unknown = Model(MODELS / "GTSRB29_32c4s1_32mp2_48c5s1_48mp3_200_43.ini",
                    ["database.Type=GTSRB_Database"], need_data=False)
    assert unknown.database is None


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_file_is_refused_in_one_line_at_the_offending_line(name):
    path = MODELS / name
    with pytest.raises(UserError) as info:
        Model(path, need_data=False)
    message = str(info.value)
    assert "\n" not in message
    match = re.match(rf"{re.escape(str(path))}:(\d+) ", message)
    assert match, message
    line_text, what = REFUSED[name]
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    assert lines[int(match[1]) - 1].strip() == line_text
    assert re.search(what, message), message


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "n2prune", *args], cwd=cwd, check=False,
                          capture_output=True, text=True, timeout=120)


def test_check_prints_the_graph_and_its_total(tmp_path):
    result = run_cli("check", str(MODELS / "LeNet.ini"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    # 6*25 + 60 kernels*25 stored as 16*6*25 + 120*16*25 + 84*120 + 10*84, no biases
    assert lines[-2].split()[:2] == ["total", "61470"]
    assert lines[-1].startswith("N2D2 counts 60,570 synapses")  # its connected weights
    assert any(line.split()[:2] == ["conv2", "Conv"] for line in lines)


def test_check_refuses_a_spiking_model_in_one_line(tmp_path):
    result = run_cli("check", str(MODELS / "LeNet_Spike.ini"), cwd=tmp_path)
    assert result.returncode == 2
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "LeNet_Spike.ini:24" in errors[0] and "spiking" in errors[0]
