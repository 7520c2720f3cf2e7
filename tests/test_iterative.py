"""``n2prune train --iterations K``: prune -> fine-tune rounds toward each cell's threshold."""

import csv
import json

import numpy as np
import pytest
from runs import arrays_of, train, write_ini
from test_prune_channel_training import CHANNELS, RESIDUAL
from test_sensitivity import removed_count

from n2prune import cli


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dense")
    ini = write_ini(folder, "dense.ini", RESIDUAL.replace(CHANNELS, ""))
    assert train(ini, folder / "run", "--epochs", "1") == 0
    return folder / "run"


def removed_rows(run, name):
    weights = arrays_of(run / "weights.npz")
    w, mask = weights[f"param/{name}.weights[0]"], weights[f"quant/{name}/mask0"]
    return set(np.flatnonzero(~mask.reshape(w.shape[0], -1).any(axis=1)))


def test_each_round_raises_the_target_and_keeps_what_went_before(dense_run, tmp_path, capsys):
    # c1 and c2 prune their shared channels to QWeight.Threshold=0.5 (4 of 8) in 2 rounds.
    ini = write_ini(tmp_path, "res.ini", RESIDUAL)
    assert train(ini, tmp_path / "it", "--weights", str(dense_run), "--iterations", "2",
                 "--steps", "3") == 0
    assert "macs_shrunk" in capsys.readouterr().out
    first, second = tmp_path / "it" / "round1", tmp_path / "it" / "round2"
    assert [len(removed_rows(first, "c1")), len(removed_rows(second, "c1"))] == [2, 4]
    assert removed_rows(first, "c1") < removed_rows(second, "c1") == removed_rows(second, "c2")
    assert removed_count(arrays_of(second / "weights.npz"), "c2") == 4
    overrides = json.loads((second / "run.json").read_text())["overrides"]
    assert overrides == ["c1.QWeight.PruningMode=Static", "c1.QWeight.Threshold=0.5",
                         "c2.QWeight.PruningMode=Static", "c2.QWeight.Threshold=0.5"]
    with open(tmp_path / "it" / "iterations.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["round"], r["fraction"], r["thresholds"]) for r in rows] == [
        ("1", "0.5", "c1=0.25 c2=0.25"), ("2", "1", "c1=0.5 c2=0.5")]
    assert int(rows[1]["macs_shrunk"]) < int(rows[0]["macs_shrunk"])
    summary = json.loads((second / "summary.json").read_text())
    assert float(rows[1]["test_accuracy"]) == round(summary["test_accuracy"], 4)


def test_a_round_resumes_as_an_ordinary_run(dense_run, tmp_path):
    ini = write_ini(tmp_path, "res.ini", RESIDUAL)
    assert train(ini, tmp_path / "it", "--weights", str(dense_run), "--iterations", "1",
                 "--steps", "2") == 0
    assert cli.main(["train", str(ini), "--resume", str(tmp_path / "it" / "round1"),
                     "--steps", "4"]) == 0
    assert json.loads((tmp_path / "it" / "round1" / "summary.json").read_text())["steps"] == 4
    assert len(removed_rows(tmp_path / "it" / "round1", "c1")) == 4


@pytest.mark.parametrize("text, extra, message", [
    (RESIDUAL, ["--epochs", "2"], "drop --epochs"),
    (RESIDUAL, ["--resume", "x"], "--resume OUT/roundK"),
    (RESIDUAL.replace(CHANNELS, ""), [], "no cell has QWeight=Prune"),
])
def test_refusals_are_one_line_and_write_nothing(dense_run, tmp_path, capsys, text, extra, message):
    ini = write_ini(tmp_path, "res.ini", text)
    assert train(ini, tmp_path / "it", "--weights", str(dense_run), "--iterations", "2",
                 *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "it").exists()
