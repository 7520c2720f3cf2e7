"""Runs on real MNIST: a floor well above chance, and exact resumption."""

import json
import signal

import numpy as np
import pytest
from networks import DROPOUT_MLP, gradual_iter_nonstruct
from paths import N2D2_MODELS
from runs import arrays_of, assert_same_weights, train, write_ini

from n2prune import cli
from n2prune.commands import load_masked_weights
from n2prune.train.loop import Trainer
from n2prune.train.model import Model


@pytest.fixture
def tiny_ini(tmp_path):
    return write_ini(tmp_path, "tiny.ini", DROPOUT_MLP)


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
    assert_same_weights(tmp_path / "straight", tmp_path / "split")


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
    assert_same_weights(tmp_path / "straight", tmp_path / "cut")


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


# -- Ctrl-C at the three points where a step is half done ------------------
# A real Ctrl-C is a SIGINT: raise_signal delivers one at the chosen call, as
# a user pressing the keys at that moment would. Each run stops at step 30.

STEPS = ["--steps", "30"]


def straight_run(ini, tmp_path):
    out = tmp_path / "straight"
    if not out.exists():
        assert train(ini, out, *STEPS) == 0
    return out


def resume(ini, run):
    return cli.main(["train", str(ini), "--resume", str(run), "--log-every", "10", *STEPS])


def step_rows(run):
    """Steps of metrics.csv's rows and of train.log's step lines."""
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    log = [line.split()[1] for line in (run / "train.log").read_text().splitlines()
           if line.startswith("step ")]
    return [r.split(",")[0] for r in rows], log


def interrupt_then_resume(ini, tmp_path, monkeypatch, target, name, make_wrapper):
    straight = straight_run(ini, tmp_path)
    original = getattr(target, name)
    monkeypatch.setattr(target, name, make_wrapper(original))
    cut = tmp_path / "cut"
    assert train(ini, cut, *STEPS) == 130
    monkeypatch.setattr(target, name, original)
    assert resume(ini, cut) == 0
    assert_same_weights(straight, cut)
    assert step_rows(cut) == step_rows(straight)  # no replayed step is logged twice


def nth_call(n, action):
    """A wrapper factory: call the original, then ``action()`` at its n-th call."""
    def make(original):
        calls = [0]

        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            calls[0] += 1
            if calls[0] == n:
                action()
            return result
        return wrapper
    return make


def sigint():
    signal.raise_signal(signal.SIGINT)


def test_ctrl_c_after_dropout_drew_its_mask(tiny_ini, tmp_path, monkeypatch):
    from n2prune.cells.dropout import Dropout

    # Validation passes at the epoch end call forward too, with train=False.
    def make(original):
        calls = [0]

        def forward(self, xs, train):
            out = original(self, xs, train)
            calls[0] += train
            if train and calls[0] == 28:
                sigint()
            return out
        return forward

    interrupt_then_resume(tiny_ini, tmp_path, monkeypatch, Dropout, "forward", make)


def test_ctrl_c_inside_the_solver_step(tiny_ini, tmp_path, monkeypatch):
    from n2prune.solvers.sgd import SGD
    # Four params (fc1, fc2 weights and biases): call 4*27+2 is halfway through step 28.
    interrupt_then_resume(tiny_ini, tmp_path, monkeypatch, SGD, "update", nth_call(110, sigint))


def test_ctrl_c_when_the_epoch_order_was_drawn(tiny_ini, tmp_path, monkeypatch):
    # The second call draws epoch 2's order (the first step of an epoch).
    interrupt_then_resume(tiny_ini, tmp_path, monkeypatch, Trainer, "epoch_batches",
                          nth_call(2, sigint))


def test_second_ctrl_c_inside_a_step_keeps_the_last_snapshot(tiny_ini, tmp_path, monkeypatch,
                                                             capsys):
    """A KeyboardInterrupt that does not wait (a second Ctrl-C) keeps the snapshot
    of step 10 (--snapshot-every 5), taken before the first epoch end."""
    from n2prune.solvers.sgd import SGD

    def hard():
        raise KeyboardInterrupt

    straight = straight_run(tiny_ini, tmp_path)
    original = SGD.update
    monkeypatch.setattr(SGD, "update", nth_call(4 * 11 + 2, hard)(original))
    cut = tmp_path / "cut"
    assert train(tiny_ini, cut, *STEPS, "--snapshot-every", "5") == 130
    assert "interrupted inside step 12: the snapshot of step 10" in capsys.readouterr().out
    monkeypatch.setattr(SGD, "update", original)
    assert resume(tiny_ini, cut) == 0
    assert_same_weights(straight, cut)
    assert step_rows(cut) == step_rows(straight)


def test_run_killed_before_its_first_epoch_end_resumes(tiny_ini, tmp_path, monkeypatch):
    """A kill runs no handler: what is left is the periodic snapshot."""
    from n2prune.solvers.sgd import SGD

    def killed():
        raise SystemExit("killed")

    straight = straight_run(tiny_ini, tmp_path)
    original = SGD.update
    monkeypatch.setattr(SGD, "update", nth_call(4 * 14 + 1, killed)(original))
    cut = tmp_path / "cut"
    with pytest.raises(SystemExit):
        train(tiny_ini, cut, *STEPS, "--snapshot-every", "7")
    monkeypatch.setattr(SGD, "update", original)
    assert resume(tiny_ini, cut) == 0
    assert_same_weights(straight, cut)
    assert step_rows(cut) == step_rows(straight)


def test_a_snapshot_of_the_previous_quantizer_layout_resumes(tmp_path):
    """Before the prune schedule was composed, snapshots named the fire index ``fires``
    and the schedule start ``ramp_start``, and kept ``threshold`` and ``version``."""
    ini = write_ini(tmp_path, "pruned.ini", DROPOUT_MLP.replace(
        "WeightsFiller=HeFiller\n", "WeightsFiller=HeFiller\nQWeight=Prune\n"
        + gradual_iter_nonstruct(0.2, 0.2, 0.8, 1536)))
    train(ini, tmp_path / "straight", "--epochs", "2")
    train(ini, tmp_path / "old", "--epochs", "1")
    snapshot = tmp_path / "old" / "snapshot.npz"
    arrays = arrays_of(snapshot)
    renamed = {"fire_index": "fires", "schedule_start": "ramp_start"}
    old = {"/".join([*k.split("/")[:-1], renamed.get(k.split("/")[-1], k.split("/")[-1])]): v
           for k, v in arrays.items()}
    old.update({"quant/fc1/threshold": np.float32(arrays["quant/fc1/target"]),
                "quant/fc1/version": np.int64(7)})
    assert "quant/fc1/fires" in old and "quant/fc1/fire_index" not in old
    np.savez(snapshot, **old)
    assert cli.main(["train", str(ini), "--resume", str(tmp_path / "old"), "--epochs", "2"]) == 0
    assert_same_weights(tmp_path / "straight", tmp_path / "old")


def test_weights_without_masks_get_masks_from_those_weights(tiny_ini, tmp_path):
    """``test --weights`` of a dense run on a pruned model: the masks follow the loaded
    weights, not the random initialisation the model was built with."""
    train(tiny_ini, tmp_path / "dense", "--epochs", "1")
    pruned = write_ini(tmp_path, "pruned.ini", DROPOUT_MLP.replace(
        "WeightsFiller=HeFiller\n", "WeightsFiller=HeFiller\nQWeight=Prune\n"
        "QWeight.PruningMode=Static\nQWeight.Pattern=Unstructured\nQWeight.Threshold=0.5\n"))
    model = Model(pruned, seed=1, need_data=False)
    load_masked_weights(model, tmp_path / "dense")
    fc1 = model.network.cell("fc1")
    w, mask = fc1.weights[0].value, fc1.quantizer.mask(0)
    assert np.abs(w[mask == 0]).max() <= np.abs(w[mask == 1]).min()
