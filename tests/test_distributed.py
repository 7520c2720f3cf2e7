"""Data-parallel training over MPI (n2prune/train/distributed.py, world.py).

The ``mpi`` tests start ``mpirun --oversubscribe -n 2`` (tests/mpirun.py) and
compare with a run in one process: masks to the bit, weights to float32
rounding (the gradient of a batch is summed in another order). The others
need no MPI: a ``DistributedTrainer`` over ``OneProcess`` is a job of one rank.
"""

import json
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from mpirun import TIMEOUT, command, environment, mpirun, rank_pid
from networks import classifier_tail, fc, mnist_input
from paths import MODELS_INI
from runs import arrays_of, train, write_ini

from n2prune import cli
from n2prune.errors import UserError
from n2prune.io.checkpoint import network_arrays
from n2prune.launch import LOCAL_SIZE_VARIABLES, WORLD_SIZE_VARIABLES
from n2prune.train.distributed import (
    AgreedError,
    DistributedTrainer,
    GradientBuffer,
    SilentRun,
)
from n2prune.train.loop import Trainer
from n2prune.train.model import Model
from n2prune.train.runfolder import RunFolder
from n2prune.train.world import OneProcess

GRADUAL = MODELS_INI / "lenet_prune_gradual.ini"
# 32 images a step and a mask update every 10 steps: the 8 updates 10% -> 90% in 100 steps.
GRADUAL_SET = ("sp.BatchSize=32", "prune.config.QWeight.StepSizeThreshold=320")
STEPS = 100
# Global scope over three Fc cells (Unstructured pattern, Cubic, HardZero): 6 updates in
# 60 steps to 92%, where fc1 and fc2 move to the skip kernels.
GLOBAL = MODELS_INI / "lenet_300_100_global_cubic.ini"
GLOBAL_SET = ("sp.BatchSize=32", "prune.config.QWeight.StepSizeThreshold=320",
              "prune.config.QWeight.ScheduleLength=1920")
# float32 rounding of the summed gradients leaves 1e-6 after 100 steps (2026-12-03).
WEIGHTS_TOLERANCE = 2e-5


def settings(*overrides):
    return [arg for o in overrides for arg in ("--set", o)]


def train_args(ini, run, steps, overrides, *extra):
    return ["train", ini, "--out", run, "--steps", steps, "--log-every", 10,
            *settings(*overrides), *extra]


def update_lines(run):
    """The "Update masks" lines of a run's log: cell, threshold and sparsity of each update."""
    return [ln for ln in (run / "train.log").read_text().splitlines() if "Update masks" in ln]


def assert_same_run(one, distributed):
    """Snapshots of the two runs: masks and counters equal to the bit, floats to rounding."""
    a, b = arrays_of(one / "snapshot.npz"), arrays_of(distributed / "snapshot.npz")
    assert a.keys() == b.keys()
    meta_a, meta_b = (json.loads(str(arrays.pop("meta"))) for arrays in (a, b))
    for key in ("data_rng", "cell_rng"):
        assert meta_a[key] == meta_b[key], key
    assert meta_a["state"]["step"] == meta_b["state"]["step"]
    for key in a:
        if a[key].dtype.kind != "f" or key.startswith("quant/"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=WEIGHTS_TOLERANCE, err_msg=key)
    assert update_lines(one) == update_lines(distributed)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """``lenet_prune_gradual.ini``, 100 steps of 32 in this process."""
    run = tmp_path_factory.mktemp("one") / "run"
    assert train(GRADUAL, run, "--steps", str(STEPS), *settings(*GRADUAL_SET)) == 0
    assert len(update_lines(run)) == 8 * 5  # 8 updates of 5 cells
    return run


@pytest.mark.mpi
def test_two_ranks_train_as_one_process(one_process, tmp_path):
    run = tmp_path / "run"
    done = mpirun(2, *train_args(GRADUAL, run, STEPS, GRADUAL_SET))
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_run(one_process, run)
    # Rank 0 alone prints and writes: each line once.
    assert done.stdout.count(f"step {STEPS}/{STEPS} ") == 1
    assert (run / "train.log").read_text().count("test accuracy") == 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["ranks"] == 2 and summary["steps"] == STEPS
    assert 0 <= summary["allreduce_seconds"] <= summary["train_seconds"]


@pytest.mark.mpi
def test_resume_with_another_number_of_ranks(one_process, tmp_path):
    run = tmp_path / "run"
    first = mpirun(2, *train_args(GRADUAL, run, STEPS // 2, GRADUAL_SET))
    assert first.returncode == 0, first.stderr[-3000:]
    then = mpirun(1, "train", GRADUAL, "--resume", run, "--steps", STEPS, "--log-every", 10,
                  "--distributed")
    assert then.returncode == 0, then.stderr[-3000:]
    assert f"resumed at step {STEPS // 2}" in (run / "train.log").read_text()
    assert_same_run(one_process, run)


@pytest.mark.mpi
def test_global_scope_and_skip_kernels_as_one_process(tmp_path):
    assert train(GLOBAL, tmp_path / "one", "--steps", "60", *settings(*GLOBAL_SET)) == 0
    done = mpirun(2, *train_args(GLOBAL, tmp_path / "two", 60, GLOBAL_SET))
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_run(tmp_path / "one", tmp_path / "two")
    log = (tmp_path / "two" / "train.log").read_text()
    assert "skip kernels" in log and len(update_lines(tmp_path / "two")) == 6 * 3


# A Conv pruned while it trains, then BatchNorm and Dropout: what each rank
# computes from its own shard (statistics, dropout draws) must still leave
# the same copy everywhere (checked at every mask update and at the end).
BATCHNORM_DROPOUT = mnist_input(64) + """
[conv1]
Input=sp
Type=Conv
KernelDims=5 5
NbOutputs=4
Stride=2
NoBias=1
QWeight=Prune
ConfigSection=solver
QWeight.PruningMode=Gradual
QWeight.PruningFiller=IterNonStruct
QWeight.Threshold=0.5
QWeight.StepSizeThreshold=640

[bn1]
Input=conv1
Type=BatchNorm
NbOutputs=4
ActivationFunction=Rectifier
ConfigSection=solver

[drop]
Input=bn1
Type=Dropout
NbOutputs=4
""" + classifier_tail("drop", 10) + """
[solver]
Solvers.LearningRate=0.05
Solvers.Momentum=0.9
"""


@pytest.mark.mpi
def test_batchnorm_and_dropout_stay_identical_on_every_rank(tmp_path, capsys):
    ini, run = write_ini(tmp_path, "bn.ini", BATCHNORM_DROPOUT), tmp_path / "run"
    done = mpirun(2, "train", ini, "--out", run, "--epochs", 1)  # 94 steps, then validation
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(update_lines(run)) == 8
    assert np.abs(arrays_of(run / "snapshot.npz")["cell/bn1/mean"]).min() > 0  # they moved
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_validation_epoch"] == 1 and (run / "weights_validation.npz").is_file()
    # The ranks' shares of the test set add up to what one process measures.
    capsys.readouterr()
    assert cli.main(["test", str(ini), "--weights", str(run)]) == 0
    assert f"test accuracy {summary['test_accuracy']:.4f} on 10000 images" in capsys.readouterr().out


@pytest.mark.mpi
def test_a_killed_rank_stops_the_other_and_its_snapshot_resumes(tmp_path):
    run = tmp_path / "run"
    args = train_args(GRADUAL, run, 100_000, GRADUAL_SET, "--snapshot-every", 10)
    job = subprocess.Popen(command(2, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, text=True, env=environment())
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (run / "snapshot.npz").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        rank_1 = rank_pid(job, 1)
        assert rank_1 is not None and job.poll() is None
        subprocess.run(["kill", "-KILL", str(rank_1)], check=True)
        _, err = job.communicate(timeout=60)  # no hang: rank 0 stops too
    finally:
        job.kill()
    assert job.returncode != 0
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, err
    assert errors[0].startswith("error: rank 0 of 2 stopped by mpirun"), errors
    step = int(re.search(r"the snapshot of step (\d+) in ", errors[0])[1])
    again = mpirun(2, "train", GRADUAL, "--resume", run, "--steps", step + 10)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((run / "summary.json").read_text())["steps"] == step + 10


def _without_mpi_environment():
    return {k: v for k, v in environment().items()
            if k not in WORLD_SIZE_VARIABLES + LOCAL_SIZE_VARIABLES}


def test_distributed_without_mpirun_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "n2prune", "train", GRADUAL, "--distributed",
                           "--out", tmp_path / "run"], capture_output=True, text=True,
                          env=_without_mpi_environment(), timeout=TIMEOUT, check=False)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        ("error: --distributed: this process was not started by mpirun (no MPI environment); "
         "start it as mpirun -n K n2prune train ...")]
    assert not (tmp_path / "run").exists()


def test_mpirun_without_mpi4py_is_one_line(tmp_path):
    hide = "import sys; sys.modules['mpi4py'] = None; from n2prune.cli import main; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", hide, "train", GRADUAL, "--out", tmp_path / "run"],
                          capture_output=True, text=True, timeout=TIMEOUT, check=False,
                          env={**_without_mpi_environment(), "OMPI_COMM_WORLD_SIZE": "2"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        ("error: mpirun started 2 ranks, but distributed training needs mpi4py: "
         "pip install 'n2prune[mpi]'")]


def _model(*overrides, ini=GRADUAL):
    return Model(ini, list(overrides), seed=1)


def _train(trainer_class, folder, *args):
    model = _model(*GRADUAL_SET)
    run = RunFolder(folder)
    run.create(model.ini.dumps(), {}, metric_column=model.network.metric_target.metric.column)
    trainer_class(*args, model, run, 1, max_steps=30).train()
    return network_arrays(model.network)


def test_one_rank_trains_bit_for_bit_as_one_process(tmp_path):
    plain = _train(Trainer, tmp_path / "plain")
    alone = _train(DistributedTrainer, tmp_path / "alone", OneProcess())
    assert plain.keys() == alone.keys()
    for key in plain:
        np.testing.assert_array_equal(plain[key], alone[key], err_msg=key)


class Drifted(OneProcess):
    """Rank 0 of two, where rank 1's masks of one cell came out otherwise."""

    size = 2

    def __init__(self, cell):
        self.cell = cell

    def allgather(self, obj):
        other = [list(sums) for sums in obj]
        other[self.cell][0] ^= 1
        return [obj, other]


def test_masks_that_differ_between_ranks_are_named(tmp_path):
    model = _model()
    conv2 = [c.name for c in model.network.cells].index("conv2")
    trainer = DistributedTrainer(Drifted(conv2), model, SilentRun(tmp_path), 1)
    with pytest.raises(AgreedError, match=r"^\[conv2\] masks differ between rank 0 and rank 1 "
                                          r"after the mask update of step 10 \(crc32 "):
        trainer.check_copies("after the mask update of step 10")


def test_taylor_criterion_is_refused(tmp_path):
    ini = write_ini(tmp_path, "taylor.ini", mnist_input(32) + fc("fc1", "sp", 16, "solver", """\
QWeight=Prune
QWeight.PruningMode=Gradual
QWeight.Pattern=Unstructured
QWeight.Criterion=Taylor
""") + classifier_tail("fc1", 10) + "\n[solver]\nSolvers.LearningRate=0.01\n")
    with pytest.raises(UserError, match=r"^\[fc1\] QWeight.Criterion=Taylor sums"):
        DistributedTrainer(OneProcess(), _model(ini=ini), SilentRun(tmp_path), 1)


class Gathered(OneProcess):
    """Keeps each buffer an Allreduce would send."""

    def __init__(self):
        self.sent = []

    def allreduce(self, buffer):
        self.sent.append(buffer.copy())


def _gradients(model, images, labels, rows):
    net = model.network
    net.forward(model.provider.batch(images, rows, None, "learn"), train=True)
    net.loss_and_backward(labels[rows])
    return {p.name: p.grad.copy() for p in net.params()}


def test_shards_scaled_by_their_share_sum_to_the_batch_gradient():
    model = _model()
    images, labels = model.stimuli("learn")
    rows = np.arange(10)
    whole = _gradients(model, images, labels, rows)
    buffer, world = GradientBuffer(model.network), Gathered()
    for shard in np.array_split(rows, 3):  # 4, 3 and 3 images
        buffer.begin()
        _gradients(model, images, labels, shard)
        buffer.reduce(world, len(shard) / len(rows), (0.0, 0.0, 0.0, 0.0))
    summed = np.sum(world.sent, axis=0)  # what the Allreduce of three ranks would give
    start = 0
    for param in buffer.params:
        size = param.value.size
        np.testing.assert_allclose(summed[start:start + size].reshape(param.value.shape),
                                   whole[param.name], rtol=1e-4, atol=1e-6, err_msg=param.name)
        start += size
