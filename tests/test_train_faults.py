"""Training that goes wrong: NaN, divergence, and run folders that cannot be written.

Each case must end in exit code 2 and one line on stderr, never a traceback.
"""

import errno
import os
import warnings

import numpy as np
import pytest
from networks import DROPOUT_MLP
from runs import train, write_ini

from n2prune import cli
from n2prune.io.checkpoint import load_snapshot
from n2prune.solvers.sgd import SGD
from n2prune.train import runfolder
from n2prune.train.model import Model


@pytest.fixture
def tiny_ini(tmp_path):
    return write_ini(tmp_path, "tiny.ini", DROPOUT_MLP)


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if not line.startswith("run folder ")]
    assert len(errors) == 1 and errors[0].startswith("error: "), err
    return errors[0]


# -- NaN and divergence ------------------------------------------------------

def test_nan_stops_with_the_cell_and_no_numpy_warning(tmp_path, capsys):
    ini = write_ini(tmp_path, "nan.ini", DROPOUT_MLP.replace("LearningRate=0.2", "LearningRate=1e6"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning would end the test here
        assert train(ini, tmp_path / "run", "--steps", "30", "--snapshot-every", "0") == 2
    line = one_error_line(capsys)
    assert "step 5 (epoch 1): loss became nan, [fc2] has non-finite outputs" in line
    assert "no snapshot was saved yet" in line and "kept" not in line
    assert not (tmp_path / "run" / "snapshot.npz").exists()


def test_nan_names_the_snapshot_it_keeps(tmp_path, capsys):
    ini = write_ini(tmp_path, "nan.ini", DROPOUT_MLP.replace("LearningRate=0.2", "LearningRate=1e6"))
    assert train(ini, tmp_path / "run", "--steps", "30", "--snapshot-every", "2") == 2
    line = one_error_line(capsys)
    kept = int(line.split("the snapshot of step ")[1].split()[0])
    model = Model(ini)
    meta, _ = load_snapshot(tmp_path / "run" / "snapshot.npz", model.network)
    assert meta["state"]["step"] == kept
    assert all(np.isfinite(p.value).all() for p in model.network.params())


def test_divergence_with_clamped_weights_stops(tmp_path, capsys):
    """Clamping=-1:1 keeps the loss finite at chance level: the window rule stops it."""
    text = DROPOUT_MLP.replace("LearningRate=0.2", "LearningRate=1e6\nSolvers.Clamping=-1:1")
    ini = write_ini(tmp_path, "div.ini", text)
    assert train(ini, tmp_path / "run", "--steps", "150") == 2
    line = one_error_line(capsys)
    assert "step 50 (epoch 3): loss diverged" in line
    assert "weights grew most" in line and "[fc" in line
    # the snapshots of steps 24 and 48 were skipped: the loss was already wild
    assert "the snapshot of step 0 " in line
    assert not (tmp_path / "run" / "summary.json").exists()


# -- the run folder ------------------------------------------------------------

def test_out_onto_an_existing_file(tiny_ini, tmp_path, capsys):
    target = tmp_path / "afile"
    target.write_text("keep me\n")
    assert train(tiny_ini, target, "--steps", "2") == 2
    assert "not a folder" in one_error_line(capsys)
    assert target.read_text() == "keep me\n"


def test_out_with_a_300_character_name(tiny_ini, tmp_path, capsys):
    assert train(tiny_ini, tmp_path / ("x" * 300), "--steps", "2") == 2
    assert "name too long" in one_error_line(capsys)


def test_out_onto_a_folder_that_is_not_a_run(tiny_ini, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "metrics.csv").write_text("my own numbers\n")
    assert train(tiny_ini, folder, "--steps", "2") == 2
    assert "not a run folder" in one_error_line(capsys)
    assert (folder / "metrics.csv").read_text() == "my own numbers\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(tiny_ini, tmp_path, capsys):
    tmp_path.joinpath("ro").mkdir()
    tmp_path.joinpath("ro").chmod(0o555)
    assert train(tiny_ini, tmp_path / "ro" / "run", "--steps", "2") == 2
    assert "writable" in one_error_line(capsys)


def test_out_on_a_read_only_file_system(tiny_ini, tmp_path, capsys, monkeypatch):
    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(runfolder, "open", read_only, raising=False)
    assert train(tiny_ini, tmp_path / "run", "--steps", "2") == 2
    line = one_error_line(capsys)
    assert "Read-only file system" in line and "writable --out" in line


def fill_disk_at(monkeypatch, call):
    """From the ``call``-th solver update on, every fsync and log append finds the disk full."""
    full = [False]
    calls = [0]
    original_update, original_fsync = SGD.update, os.fsync

    def update(self, *args):
        calls[0] += 1
        full[0] = full[0] or calls[0] >= call
        return original_update(self, *args)

    def fsync(fd):
        if full[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original_fsync(fd)

    monkeypatch.setattr(SGD, "update", update)
    monkeypatch.setattr(os, "fsync", fsync)
    return full


def test_full_disk_keeps_the_last_snapshot(tiny_ini, tmp_path, capsys, monkeypatch):
    full = fill_disk_at(monkeypatch, 4 * 14 + 1)   # during step 15
    run = tmp_path / "run"
    assert train(tiny_ini, run, "--steps", "30", "--snapshot-every", "10") == 2
    line = one_error_line(capsys)
    assert "snapshot.npz: cannot write (No space left on device; free some disk space)" in line
    assert "the snapshot of step 10" in line and "--resume" in line
    assert not list(run.glob(".*.tmp"))
    full[0] = False
    monkeypatch.undo()
    assert cli.main(["train", str(tiny_ini), "--resume", str(run), "--steps", "30"]) == 0


def test_full_disk_while_logging(tiny_ini, tmp_path, capsys, monkeypatch):
    real_open = open

    def full_open(path, mode="r", *args, **kwargs):
        if "a" in mode and str(path).endswith("metrics.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(runfolder, "open", full_open, raising=False)
    assert train(tiny_ini, tmp_path / "run", "--steps", "30") == 2
    line = one_error_line(capsys)
    assert "metrics.csv: cannot write" in line and "the snapshot of step 0" in line


def test_orphan_temporaries_are_removed_on_resume(tiny_ini, tmp_path):
    run = tmp_path / "run"
    assert train(tiny_ini, run, "--steps", "2") == 0
    orphans = [run / ".snapshot.npz.k2j4_x9a.tmp", run / "weights" / ".fc1_weights.syntxt.abcdefgh.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half a snapshot")
    keep = run / "notes.tmp"
    keep.write_text("not ours")
    assert cli.main(["train", str(tiny_ini), "--resume", str(run), "--steps", "3"]) == 0
    assert not any(orphan.exists() for orphan in orphans)
    assert keep.exists()


def test_run_folder_files_follow_the_umask(tiny_ini, tmp_path):
    old = os.umask(0o027)
    try:
        assert train(tiny_ini, tmp_path / "run", "--steps", "3") == 0
    finally:
        os.umask(old)
    modes = {p.relative_to(tmp_path): p.stat().st_mode & 0o777
             for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert set(modes.values()) == {0o640}, modes


def test_negative_snapshot_every_is_refused(tiny_ini, tmp_path, capsys):
    assert train(tiny_ini, tmp_path / "run", "--snapshot-every", "-1") == 2
    assert "--snapshot-every" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_resume_without_metrics_csv_starts_a_new_one(tiny_ini, tmp_path):
    run = tmp_path / "run"
    assert train(tiny_ini, run, "--steps", "2") == 0
    (run / "metrics.csv").unlink()
    assert cli.main(["train", str(tiny_ini), "--resume", str(run), "--steps", "12",
                     "--log-every", "10"]) == 0
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,loss") and rows[1].startswith("10,")
