"""The training loop: epochs of shuffled batches, SGD updates, logs and snapshots.

State that decides the future of a run (weights, solver state, both random
generators, the current epoch's order and the position in it) is written to
``snapshot.npz`` at every epoch end and on Ctrl-C, so that ``--resume``
continues bit-for-bit as if the run had never stopped.
"""

import math
import time

import numpy as np

from n2prune.errors import UserError
from n2prune.io.checkpoint import load_snapshot, save_snapshot
from n2prune.prune.network import drain_kernel_notes, step_quantizers
from n2prune.train.evaluate import accuracy
from n2prune.train.progress import Progress


class RunState:
    """Where a run stands; saved in the snapshot's ``meta``."""

    def __init__(self, epochs):
        self.epochs = epochs
        self.epoch = 0          # epochs completed
        self.batch = 0          # batches done in the current epoch
        self.step = 0           # batches done in total
        self.best_val = None
        self.best_epoch = None
        self.seconds = 0.0
        self.samples = 0

    def to_meta(self):
        return dict(vars(self))

    @classmethod
    def from_meta(cls, meta, epochs):
        state = cls(epochs)
        for key, value in meta.items():
            if key in vars(state) and key != "epochs":
                setattr(state, key, value)
        return state


class Trainer:
    def __init__(self, model, run, epochs, log_every=100, seed=0, max_steps=None):
        self.model = model
        self.max_steps = max_steps
        self.net = model.network
        self.run = run
        self.state = RunState(epochs)
        self.log_every = max(1, log_every)
        self.batch_size = model.provider.batch_size
        self.data_rng = np.random.default_rng([seed, 1])
        self.order = None
        self.progress = None

    # -- snapshots -------------------------------------------------------
    def snapshot(self):
        meta = {"state": self.state.to_meta(),
                "data_rng": self.data_rng.bit_generator.state,
                "cell_rng": self.model.rng.bit_generator.state}
        extra = {"epoch_order": self.order} if self.order is not None else {}
        save_snapshot(self.run.file("snapshot.npz"), self.net, meta, extra)

    def resume(self):
        meta, arrays = load_snapshot(self.run.file("snapshot.npz"), self.net, self.model.epoch_size)
        self.state = RunState.from_meta(meta["state"], self.state.epochs)
        self.data_rng.bit_generator.state = meta["data_rng"]
        self.model.rng.bit_generator.state = meta["cell_rng"]
        self.order = arrays.get("epoch_order")

    # -- one step --------------------------------------------------------
    def learning_rate(self):
        for weights_solver, _ in self.net.solvers.values():
            return weights_solver.current_learning_rate(self.batch_size)
        return 0.0

    def train_step(self, images, labels, indices):
        x = self.model.provider.batch(images, indices, self.data_rng)
        self.net.forward(x, train=True)
        loss, correct = self.net.loss_and_backward(labels[indices])
        if not math.isfinite(loss):
            raise UserError(f"loss became {loss} at step {self.state.step + 1} (epoch "
                            f"{self.state.epoch + 1}): lower the learning rate or check the "
                            "inputs; the last epoch's snapshot is kept")
        self.net.apply_solvers(len(indices))
        for cell in step_quantizers(self.net, len(indices)):
            self.progress.line(f"[{cell.name}] Update masks: threshold "
                               f"{cell.quantizer.get_current_threshold():.4g}, "
                               f"sparsity {cell.quantizer.sparsity():.4f}")
        for note in drain_kernel_notes(self.net):
            self.progress.line(note)
        return loss, correct

    # -- epochs ----------------------------------------------------------
    def epoch_batches(self, n):
        if self.order is None or self.state.batch == 0:
            self.order = self.data_rng.permutation(n)
        starts = range(self.state.batch * self.batch_size, n, self.batch_size)
        return [self.order[s:s + self.batch_size] for s in starts]

    def out_of_steps(self):
        return self.max_steps is not None and self.state.step >= self.max_steps

    def run_epoch(self, images, labels):
        """One epoch (or what is left of it); False if ``max_steps`` cut it short."""
        started = time.perf_counter()
        for indices in self.epoch_batches(len(labels)):
            if self.out_of_steps():
                self.state.seconds += time.perf_counter() - started
                return False
            loss, correct = self.train_step(images, labels, indices)
            self.state.batch += 1
            self.state.step += 1
            self.state.samples += len(indices)
            self.progress.batch(self.state, loss, correct, len(indices), self.learning_rate())
        self.state.seconds += time.perf_counter() - started
        self.state.epoch += 1
        self.state.batch = 0
        self.end_epoch()
        return True

    def end_epoch(self):
        val = None
        if self.model.partition_size("validation"):
            val = accuracy(self.net, self.model, "validation")
            if self.state.best_val is None or val > self.state.best_val:
                self.state.best_val, self.state.best_epoch = val, self.state.epoch
                self.run.save_weights(self.net, "weights_validation")
        self.progress.epoch_end(self.state, val, self.learning_rate())
        self.snapshot()

    def train(self, resume=False):
        if resume:
            self.resume()
        images, labels = self.model.stimuli("learn")
        steps_per_epoch = math.ceil(len(labels) / self.batch_size)
        total = steps_per_epoch * self.state.epochs
        if self.max_steps is not None:
            total = min(total, self.max_steps)
        self.progress = Progress(self.run, self.log_every, total, steps_per_epoch, self.net)
        try:
            while self.state.epoch < self.state.epochs and self.run_epoch(images, labels):
                pass
        except KeyboardInterrupt:
            self.snapshot()
            self.progress.close()
            self.progress.line(f"interrupted at step {self.state.step}: snapshot saved; "
                               f"continue with --resume {self.run.path}")
            raise
        self.progress.close()
        return self.finish()

    def finish(self):
        if self.state.batch:  # stopped inside an epoch by --steps: keep a snapshot too
            self.snapshot()
        self.run.save_weights(self.net, "weights")
        test = accuracy(self.net, self.model, "test")
        summary = {
            "test_accuracy": test,
            "best_validation_accuracy": self.state.best_val,
            "best_validation_epoch": self.state.best_epoch,
            "epochs": self.state.epoch,
            "steps": self.state.step,
            "train_seconds": round(self.state.seconds, 3),
            "samples_per_second": round(self.state.samples / max(self.state.seconds, 1e-9), 1),
        }
        self.run.write_json("summary.json", summary)
        self.progress.line(f"test accuracy {test:.4f} on {self.model.partition_size('test')} "
                           f"images; run folder {self.run.path}")
        return summary
