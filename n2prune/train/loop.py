"""The training loop: epochs of shuffled batches, SGD updates, logs and snapshots.

State that decides the future of a run (weights, solver state, both random
generators, the current epoch's order and the position in it) is written to
``snapshot.npz`` every ``snapshot_every`` steps, at every epoch end and on
Ctrl-C, so that ``--resume`` continues bit-for-bit as if the run had never
stopped. Snapshots are only taken between steps (Ctrl-C waits for the step
to end, see ``interrupt.py``), where that state is whole.
"""

import math
import time

import numpy as np

from n2prune.errors import UserError
from n2prune.io.checkpoint import load_snapshot, save_snapshot
from n2prune.prune.channels import refresh_removed_channels
from n2prune.prune.pruned_cells import drain_kernel_notes, step_quantizers
from n2prune.train.evaluate import evaluate
from n2prune.train.health import check_loss, looks_diverging, nonfinite_cell
from n2prune.train.interrupt import DeferredInterrupt
from n2prune.train.progress import Progress
from n2prune.train.runfolder import RunWriteError, writing

DEFAULT_SNAPSHOT_EVERY = 500


class RunState:
    """Where a run stands; saved in the snapshot's ``meta``."""

    def __init__(self, epochs):
        self.epochs = epochs
        self.epoch = 0          # epochs completed
        self.batch = 0          # batches done in the current epoch
        self.step = 0           # batches done in total
        self.order_epoch = -1   # the epoch the drawn order belongs to
        self.best_val = None
        self.best_epoch = None
        self.seconds = 0.0
        self.samples = 0
        self.loss_ref = None    # divergence watch, see health.py
        self.recent_losses = []
        self.weight_rms = None

    def to_meta(self):
        return dict(vars(self))

    @classmethod
    def from_meta(cls, meta, epochs):
        state = cls(epochs)
        for key, value in meta.items():
            if key in vars(state) and key != "epochs":
                setattr(state, key, value)
        if "order_epoch" not in meta:  # older snapshots: the order was redrawn at batch 0
            state.order_epoch = state.epoch if state.batch else -1
        return state


class Trainer:
    def __init__(self, model, run, epochs, log_every=100, seed=0, max_steps=None,
                 snapshot_every=DEFAULT_SNAPSHOT_EVERY):
        self.model = model
        self.max_steps = max_steps
        self.snapshot_every = snapshot_every
        self.net = model.network
        self.run = run
        self.state = RunState(epochs)
        self.log_every = max(1, log_every)
        self.batch_size = model.provider.batch_size
        self.data_rng = np.random.default_rng([seed, 1])
        self.order = None
        self.progress = None
        self.interrupt = DeferredInterrupt()
        self.snapshot_step = None   # step of the snapshot on disk, None if there is none
        self.whole = True           # False while a step or an epoch end is half done

    # -- snapshots -------------------------------------------------------
    def snapshot(self):
        """Write the state, unless it looks broken: a good snapshot is worth more."""
        problem = nonfinite_cell(self.net)
        if problem:
            raise self.failure(problem)
        if looks_diverging(self.state):
            return
        self.save_snapshot()
        self.snapshot_step = self.state.step

    def save_snapshot(self):
        path = self.run.file("snapshot.npz")
        with writing(path):
            save_snapshot(path, self.net, *self.snapshot_content())

    def snapshot_content(self):
        """``(meta, extra arrays)`` of a snapshot of the run as it stands."""
        meta = {"state": self.state.to_meta(),
                "data_rng": self.data_rng.bit_generator.state,
                "cell_rng": self.model.rng.bit_generator.state,
                "appended_sizes": self.run.appended_sizes()}
        return meta, {"epoch_order": self.order} if self.order is not None else {}

    def restore(self, meta, arrays):
        """Take the run state of a snapshot whose arrays the network has loaded."""
        refresh_removed_channels(self.net)
        self.state = RunState.from_meta(meta["state"], self.state.epochs)
        self.data_rng.bit_generator.state = meta["data_rng"]
        self.model.rng.bit_generator.state = meta["cell_rng"]
        self.order = arrays.get("epoch_order")

    def resume(self, extra_fields=()):
        meta, arrays = load_snapshot(self.run.file("snapshot.npz"), self.net, self.model.epoch_size)
        self.restore(meta, arrays)
        self.snapshot_step = self.state.step
        self.run.rewind(meta.get("appended_sizes"), extra_fields,
                        self.net.metric_target.metric.column)
        self.run.log(f"resumed at step {self.state.step} from {self.run.file('snapshot.npz')}")

    def snapshot_note(self):
        if self.snapshot_step is None:
            return "no snapshot was saved yet"
        return f"the snapshot of step {self.snapshot_step} in {self.run.file('snapshot.npz')} is kept"

    def failure(self, problem, step=None):
        step = self.state.step if step is None else step
        return UserError(f"step {step} (epoch {self.state.epoch + 1}): {problem}; lower the "
                         f"learning rate or check the inputs; {self.snapshot_note()}")

    # -- one step --------------------------------------------------------
    def learning_rate(self):
        for weights_solver, _ in self.net.solvers.values():
            return weights_solver.current_learning_rate(self.batch_size)
        return 0.0

    def train_step(self, images, labels, indices):
        x = self.model.provider.batch(images, indices, self.data_rng, "learn")
        # Overflows are expected when a run blows up; check_loss reports them
        # as one line with the cell, so numpy's warnings would only be noise.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.net.forward(x, train=True, labels=labels[indices])
            loss, score = self.net.loss_and_backward(labels[indices])
            problem = check_loss(self.state, self.net, loss, labels[indices])
            if problem:
                raise self.failure(problem, self.state.step + 1)
            self.net.apply_solvers(len(indices))
        self.update_masks(len(indices))
        return loss, score

    def update_masks(self, batch_size):
        """N2D2's quantizer updates after the solver step; returns the cells whose masks changed."""
        changed = step_quantizers(self.net, batch_size)
        for cell in changed:
            self.progress.line(f"[{cell.name}] Update masks: threshold "
                               f"{cell.quantizer.get_current_threshold():.4g}, "
                               f"sparsity {cell.quantizer.sparsity():.4f}")
        for note in drain_kernel_notes(self.net):
            self.progress.line(note)
        return changed

    # -- epochs ----------------------------------------------------------
    def epoch_batches(self, n):
        # The order is drawn once per epoch and saved with it, so a snapshot
        # taken right after the draw resumes with that same order.
        if self.order is None or self.state.order_epoch != self.state.epoch:
            self.order = self.data_rng.permutation(n)
            self.state.order_epoch = self.state.epoch
        starts = range(self.state.batch * self.batch_size, n, self.batch_size)
        return [self.order[s:s + self.batch_size] for s in starts]

    def out_of_steps(self):
        return self.max_steps is not None and self.state.step >= self.max_steps

    def stop_requested(self):
        """Ctrl-C was pressed (the loop stops at the next step boundary)."""
        return self.interrupt.requested

    def between_steps(self):
        """True if the loop must stop here; takes the periodic snapshot otherwise."""
        if self.out_of_steps() or self.stop_requested():
            return True
        if (self.snapshot_every and self.state.step % self.snapshot_every == 0
                and self.state.step != self.snapshot_step):
            self.snapshot()
        return False

    def run_epoch(self, images, labels):
        """One epoch (or what is left of it); False if cut short (``--steps``, Ctrl-C)."""
        started = time.perf_counter()
        for indices in self.epoch_batches(len(labels)):
            if self.between_steps():
                self.state.seconds += time.perf_counter() - started
                return False
            self.whole = False
            loss, score = self.train_step(images, labels, indices)
            self.state.batch += 1
            self.state.step += 1
            self.state.samples += len(indices)
            self.whole = True
            self.progress.batch(self.state, loss, score, len(indices), self.learning_rate())
        self.state.seconds += time.perf_counter() - started
        self.whole = False
        self.state.epoch += 1
        self.state.batch = 0
        self.end_epoch()
        self.whole = True
        return True

    def end_epoch(self):
        val = None
        if self.model.partition_size("validation"):
            val = self.evaluate("validation")
            if self.net.metric_target.metric.better(val, self.state.best_val):
                self.state.best_val, self.state.best_epoch = val, self.state.epoch
                self.run.save_weights(self.net, "weights_validation")
        self.progress.epoch_end(self.state, val, self.learning_rate())
        self.snapshot()

    def train(self):
        """Train from where the run stands (call ``resume`` first to continue a run)."""
        images, labels = self.model.stimuli("learn")
        steps_per_epoch = math.ceil(len(labels) / self.batch_size)
        total = steps_per_epoch * self.state.epochs
        if self.max_steps is not None:
            total = min(total, self.max_steps)
        self.progress = Progress(self.run, self.log_every, total, steps_per_epoch, self.net)
        try:
            with self.interrupt:
                self.run_epochs(images, labels)
            # Past the last step nothing is half done: Ctrl-C may stop at once.
            return self.finish()
        except KeyboardInterrupt:
            self.interrupted()
            raise
        except RunWriteError as exc:
            raise RunWriteError(f"{exc}; {self.snapshot_note()}, continue it with "
                                f"--resume {self.run.path}") from None
        finally:
            self.progress.close()

    def summary_extra(self):
        """More entries for ``summary.json``."""
        return {}

    def evaluate(self, part):
        """The metric over partition ``part`` (None if it is empty)."""
        return evaluate(self.net, self.model, part)

    def run_epochs(self, images, labels):
        while self.state.epoch < self.state.epochs and self.run_epoch(images, labels):
            pass
        if self.stop_requested():
            raise KeyboardInterrupt

    def interrupted(self):
        """Ctrl-C: save the state if it is whole, else keep the last snapshot."""
        self.progress.close()
        if self.whole:
            self.snapshot()
            where, note = f"at step {self.state.step}", "snapshot saved"
        else:
            where, note = f"inside step {self.state.step + 1}", self.snapshot_note()
        self.progress.line(f"interrupted {where}: {note}; continue with --resume {self.run.path}")

    def finish(self):
        if self.state.step != self.snapshot_step:  # stopped inside an epoch: keep a snapshot too
            self.snapshot()
        self.run.save_weights(self.net, "weights")
        test = self.evaluate("test")
        metric = self.net.metric_target.metric
        summary = {
            f"test_{metric.key}": test,
            f"best_validation_{metric.key}": self.state.best_val,
            "best_validation_epoch": self.state.best_epoch,
            "epochs": self.state.epoch,
            "steps": self.state.step,
            "train_seconds": round(self.state.seconds, 3),
            "samples_per_second": round(self.state.samples / max(self.state.seconds, 1e-9), 1),
            **self.summary_extra(),
        }
        self.run.write_json("summary.json", summary)
        self.progress.line(f"test {metric.title} {metric.format(test)} on {self.model.partition_size('test')} "
                           f"images; run folder {self.run.path}")
        return summary
