"""Every recipe shipped in models_ini/ runs end to end on its real data.

For each file: ``check``, a few training steps, ``test --weights`` on the run
folder and on its N2D2 weight files (the same accuracy: the text files hold
every float32 exactly), and ``inspect`` as text, JSON and pictures.
"""

import json
import re

import numpy as np
import pytest
from paths import MODELS_INI

from n2prune import cli
from n2prune.io.syntxt import import_network
from n2prune.train.model import Model

STEPS = 3
FASHION = {"lenet_fashion.ini", "residual_fashion.ini", "residual_fashion_channels.ini"}
RECIPES = [pytest.param(p.name, marks=[pytest.mark.fashion_mnist] if p.name in FASHION else [])
           for p in sorted(MODELS_INI.glob("*.ini"))]


def test_the_recipes_are_found():
    """An empty glob would leave the parametrized tests below nothing to run."""
    assert len(RECIPES) >= 10


def _test_accuracy(capsys, model, weights):
    capsys.readouterr()
    assert cli.main(["test", str(model), "--weights", str(weights)]) == 0
    return float(re.search(r"test accuracy (\S+)", capsys.readouterr().out)[1])


def _inspect(capsys, run, *flags):
    capsys.readouterr()
    assert cli.main(["inspect", str(run), *flags]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_checks_trains_tests_inspects_and_round_trips(recipe, tmp_path, capsys):
    model, run = MODELS_INI / recipe, tmp_path / "run"
    assert cli.main(["check", str(model)]) == 0
    assert "total" in capsys.readouterr().out
    assert cli.main(["train", str(model), "--steps", str(STEPS), "--out", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == STEPS

    from_npz = _test_accuracy(capsys, model, run)
    assert from_npz == pytest.approx(summary["test_accuracy"], abs=1e-4)
    assert _test_accuracy(capsys, model, run / "weights") == from_npz

    report = json.loads(_inspect(capsys, run, "--json"))
    assert report["cells"] and report["total"]["params"] > 0
    table = _inspect(capsys, run)
    assert all(row["cell"] in table for row in report["cells"])
    _inspect(capsys, run, "--plot")
    for picture in [run / "sparsity.png"] + [run / "masks" / f"{r['cell']}.png"
                                             for r in report["cells"]]:
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("recipe", ["mobile_residual.ini", "lenet_2of4.ini"])
def test_n2d2_files_restore_every_array(recipe, tmp_path):
    """ElemWise, BatchNorm and pruned cells: N2D2 export then import gives the same arrays."""
    model, run = MODELS_INI / recipe, tmp_path / "run"
    assert cli.main(["train", str(model), "--steps", "2", "--out", str(run)]) == 0
    with np.load(run / "weights.npz") as npz:
        saved = {k: npz[k] for k in npz.files}
    network = Model(model, need_data=False).network
    import_network(network, run / "weights")
    for param in network.params():
        np.testing.assert_array_equal(param.value, saved[f"param/{param.name}"])
    for cell in network.cells:
        for key, value in cell.state().items():
            np.testing.assert_array_equal(value, saved[f"cell/{cell.name}/{key}"])
