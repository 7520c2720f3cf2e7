"""The command line: exit codes, one-line errors, overrides, check output."""

import subprocess
import sys
from pathlib import Path

import pytest
from paths import MODELS_INI

from n2prune import cli

LENET = str(MODELS_INI / "lenet.ini")
LENET_TEXT = Path(LENET).read_text()


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "n2prune", *args], capture_output=True, text=True, check=False,
                          timeout=300)


def test_check_prints_graph_and_totals(capsys):
    assert cli.main(["check", LENET]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["cell", "type", "inputs", "output", "CxHxW", "params", "MACs",
                              "effective", "MACs", "shrunk", "MACs"]
    conv2 = next(line for line in out if line.startswith("conv2"))
    # 60 of 96 kernel pairs connected: 1500 live weights x 10x10 outputs.
    assert conv2.split()[1:] == ["Conv", "pool1", "16x10x10", "2400", "150000", "150000",
                                 "150000"]
    assert out[-2].split() == ["total", "61470", "332824", "332824", "(100.0%)", "332824",
                               "(100.0%)"]
    assert out[-1].startswith("N2D2 counts 60,570 synapses")


def test_set_override_changes_the_network(capsys):
    assert cli.main(["check", LENET, "--set", "fc1.NbOutputs=50"]) == 0
    fc1 = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("fc1 "))
    assert fc1.split()[1:4] == ["Fc", "conv3", "50x1x1"]
    assert fc1.split()[4:] == ["6000", "6000", "6000", "6000"]


def test_bad_value_is_one_line_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text(LENET_TEXT.replace("NbOutputs=6", "NbOutputs=six"))
    result = run_cli("check", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bad.ini:" in lines[0] and "[conv1] NbOutputs" in lines[0] and "six" in lines[0]
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text(LENET_TEXT.replace("Type=Conv\nKernelDims=5 5\nNbOutputs=6", "Type=Convv\nKernelDims=5 5\nNbOutputs=6"))
    result = run_cli("check", str(bad), "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr
    plain = run_cli("check", str(bad))
    assert plain.returncode == 2 and "unknown Type=Convv" in plain.stderr and "did you mean Conv?" in plain.stderr


def test_unknown_key_warns_and_strict_refuses(tmp_path, capsys):
    typo = tmp_path / "typo.ini"
    typo.write_text(LENET_TEXT.replace("KernelDims=5 5\nNbOutputs=6", "KernelDims=5 5\nKernelDim=5 5\nNbOutputs=6"))
    assert cli.main(["check", str(typo)]) == 0
    err = capsys.readouterr().err
    assert "typo.ini:" in err and "KernelDim" in err and "did you mean KernelDims?" in err
    assert cli.main(["check", str(typo), "--strict"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--strict" in err[0]


@pytest.mark.parametrize("args, message", [
    (["check", "nosuch.ini"], "nosuch.ini: no such INI file"),
    (["test", LENET, "--weights", "nosuch_run"], "nosuch_run"),
])
def test_missing_files_exit_2(args, message, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_expression_never_runs_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ini"
    evil.write_text(LENET_TEXT.replace(
        "NbOutputs=16", f"NbOutputs=$(__import__('os').system('touch {marker}'))"))
    result = run_cli("check", str(evil))
    assert result.returncode == 2 and "evil.ini:" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("args, named", [
    (["train", LENET, "--epochs", "0"], "--epochs"),
    (["train", LENET, "--epochs", "-5"], "--epochs"),
    (["train", LENET, "--steps", "0"], "--steps"),
    (["train", LENET, "--log-every", "0"], "--log-every"),
    (["train", LENET, "--seed", "-1"], "--seed"),
    (["check", LENET, "--seed", "1.5"], "--seed"),
    (["check"], "model"),
])
def test_bad_arguments_are_one_line_before_any_work(args, named, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and named in err[0], err
    assert not (tmp_path / "runs").exists()


def test_override_errors_name_which_set(capsys):
    assert cli.main(["check", LENET, "--set", "sp.BatchSize=64", "--set", "sp.BatchSize=0"]) == 2
    assert capsys.readouterr().err.startswith("error: --set:2 [sp] BatchSize: ")


@pytest.mark.parametrize("override, where", [
    ("sp.Transformation_1.Width=0", "--set:1 [sp.Transformation_1] Width"),
    ("fc2.NbOutputs=5", "lenet.ini:100 [softmax] NbOutputs"),  # fewer outputs than classes
])
def test_sizes_that_used_to_end_in_a_traceback(override, where, capsys):
    assert cli.main(["check", LENET, "--set", override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and where in err[0], err


@pytest.mark.parametrize("file_last, outputs", [(True, "30x1x1"), (False, "50x1x1")])
def test_set_file_keys_apply_in_place_among_set(file_last, outputs, tmp_path, capsys):
    keys = tmp_path / "keys.ini"
    keys.write_text("; a budget-style override file\n[fc1]\nNbOutputs=30\n")
    options = ["--set", "fc1.NbOutputs=50", "--set-file", str(keys)]
    assert cli.main(["check", LENET, *(options if file_last else options[2:] + options[:2])]) == 0
    fc1 = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("fc1 "))
    assert fc1.split()[3] == outputs


def test_set_file_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.ini"
    bad.write_text("[fc1]\nNbOutputs=30\n[fc1]\nNbOutputs=20\n")
    for path, named in ((tmp_path / "none.ini", "none.ini"), (bad, "bad.ini:3")):
        assert cli.main(["check", LENET, "--set-file", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--set-file" in err[0] and named in err[0], err
