"""benchmarks/accuracy.py: the mean ± sample std of its table, and one short run through it."""

import importlib.util
import json
import statistics
from pathlib import Path

import pytest
from paths import MODELS_INI

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("accuracy", ROOT / "benchmarks" / "accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mean_and_sample_std():
    mean, std = _script().mean_std([99.25, 99.12, 99.07])
    assert mean == pytest.approx(99.14667, abs=1e-5)
    assert std == pytest.approx(statistics.stdev([99.25, 99.12, 99.07]))
    assert std == pytest.approx(0.0929, abs=1e-4)  # n - 1, not the population's 0.0759
    assert _script().mean_std([98.5]) == (98.5, 0.0)


def test_two_seeds_of_a_pruned_recipe_give_one_row(tmp_path, capsys):
    accuracy = _script()
    out = tmp_path / "rows.json"
    rows = accuracy.main([str(MODELS_INI / "lenet_300_100_95.ini"), "--seeds", "1", "2",
                          "--steps", "2", "--out", str(tmp_path / "runs"), "--json", str(out)])
    assert [row["recipe"] for row in rows] == ["lenet_300_100_95.ini"]
    row = rows[0]
    assert [run["seed"] for run in row["runs"]] == [1, 2]
    tests = [run["test"] for run in row["runs"]]
    assert row["test_mean"] == pytest.approx(statistics.mean(tests))
    assert row["test_min"] <= row["test_mean"] <= row["test_max"]
    for run in row["runs"]:  # the numbers are the run folders' own
        summary = json.loads((tmp_path / "runs" / f"lenet_300_100_95_s{run['seed']}"
                              / "summary.json").read_text())
        assert run["test"] == pytest.approx(100 * summary["test_accuracy"])
        assert 0 <= run["sparsity"] < 0.95 and run["seconds"] > 0
    assert json.loads(out.read_text()) == rows
    assert "lenet_300_100_95.ini" in capsys.readouterr().out
