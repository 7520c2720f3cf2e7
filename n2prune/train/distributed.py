"""Data-parallel training: K ranks share every batch and keep identical copies of the run.

As Horovod and PyTorch's DistributedDataParallel, with N2D2's pruning kept exact:

* at the start rank 0 broadcasts its whole state, what a snapshot holds
  (weights, masks, solver and quantizer state, both random generators,
  the epoch's order), so every rank starts from it (``sync``);
* every rank draws the same epoch order and takes a disjoint shard of each
  global batch (``numpy.array_split``: sizes differ by one at most; the
  INI's ``BatchSize`` stays the global batch);
* one Allreduce per step of one flat float32 buffer (``GradientBuffer``):
  each gradient of the shard's mean loss scaled by ``shard / batch``, so the
  sum is the gradient of the batch's mean loss, and the same for the
  changes of the cells' running statistics (BatchNorm), the loss, the
  score, the loss of guessing and the Ctrl-C flag;
* every rank then runs the same solver step on the same numbers, so the
  weights stay identical and every mask update (Gradual, IterNonStruct, the
  patterns, the global scope, the skip kernels' choices) is computed from
  the same weights: a checksum of every cell's masks, weights and running
  statistics is compared across ranks at the start, after each mask update
  and at the end (``check_copies``);
* validation and test batches are dealt out to the ranks and their scores
  summed (``evaluate``);
* Dropout and random on-the-fly transformations draw from a generator per
  rank and step, ``(seed, 3, step, rank)``: the run's own generators stay
  identical on every rank, so a Random mask draws the same numbers.

What differs from one process: the gradient is summed in another order
(float32 rounding), BatchNorm normalises each shard by its own statistics
(its running variance is the mean of the shards'), and Dropout and random
transformations draw other numbers. The Taylor criterion, which sums
|w·g| over each rank's own gradients, is refused.
"""

import itertools
import logging
import math
import time
import zlib

import numpy as np

from n2prune.cells.dropout import Dropout
from n2prune.errors import UserError
from n2prune.io.checkpoint import restore_arrays, snapshot_arrays
from n2prune.prune.pruned_cells import pruned_cells
from n2prune.train.evaluate import evaluate
from n2prune.train.health import chance_loss, check_loss
from n2prune.train.loop import Trainer
from n2prune.train.runfolder import RunFolder

log = logging.getLogger("n2prune")

# What each step adds after the gradients and the cells' state changes.
SCALARS = ("loss", "score", "chance", "stop")
SILENT_ERRSTATE = {"over": "ignore", "invalid": "ignore", "divide": "ignore"}


class AgreedError(UserError):
    """An error every rank raises at the same point: rank 0 alone prints it."""


class AgreedInterrupt(KeyboardInterrupt):
    """Ctrl-C seen by some rank, agreed on by all at the same step."""


class SilentRun(RunFolder):
    """The run folder as ranks other than 0 see it: named in messages, never written."""

    def create(self, *args, **kwargs):
        pass

    def prepare(self):
        pass

    def rewind(self, *args, **kwargs):
        pass

    def write_json(self, name, obj):
        pass

    def log(self, line):
        pass

    def metrics_row(self, row):
        pass

    def save_weights(self, network, name):
        pass

    def appended_sizes(self):
        return {}


def _float_state(cell):
    """The cell's floating-point state arrays (running statistics), by key."""
    return {k: v for k, v in cell.state().items() if np.asarray(v).dtype.kind == "f"}


class GradientBuffer:
    """One flat float32 array per run: every trained param's gradient, the changes of
    the cells' float state during the step, then ``SCALARS``."""

    def __init__(self, network):
        self.params = [p for c in network.cells if c.name in network.solvers for p in c.params()]
        self.cells = [c for c in network.cells if _float_state(c)]
        sizes = [p.value.size for p in self.params]
        sizes += [np.size(v) for c in self.cells for v in _float_state(c).values()]
        self.flat = np.zeros(sum(sizes) + len(SCALARS), np.float32)
        bounds = np.cumsum([0, *sizes])
        self.views = [self.flat[a:b] for a, b in itertools.pairwise(bounds)]
        self.before = []

    def begin(self):
        """Remember the cells' state before the step (its change is what is summed)."""
        self.before = [np.array(v, np.float32) for c in self.cells for v in _float_state(c).values()]

    def reduce(self, world, share, scalars):
        """Pack this rank's part (``share`` = its fraction of the batch, 0 for an empty
        shard), sum over the ranks, unpack; returns the summed ``scalars``."""
        share = np.float32(share)
        grads, states = self.views[:len(self.params)], self.views[len(self.params):]
        for param, view in zip(self.params, grads):
            if share:
                np.multiply(param.grad.reshape(-1), share, out=view)
            else:  # an empty shard: its params hold the last step's gradients
                view.fill(0)
        current = [v for c in self.cells for v in _float_state(c).values()]
        for value, before, view in zip(current, self.before, states):
            np.subtract(np.reshape(value, -1), before.reshape(-1), out=view)
            view *= share
        self.flat[-len(SCALARS):] = scalars
        world.allreduce(self.flat)
        for param, view in zip(self.params, grads):
            param.grad = view.reshape(param.value.shape)
        for value, before, view in zip(current, self.before, states):
            value[...] = (before.reshape(-1) + view).reshape(np.shape(value))
        return [float(v) for v in self.flat[-len(SCALARS):]]


def refuse_rank_local(network):
    """``UserError`` for a cell whose pruning reads per-rank gradients (Taylor)."""
    for cell in pruned_cells(network):
        if cell.quantizer.saliency is not None:
            raise UserError(f"[{cell.name}] QWeight.Criterion=Taylor sums |w·g| over each "
                            "rank's own gradients, so the ranks' masks would differ: train "
                            "it in one process, or choose another criterion")


def _crc(arrays):
    crc = 0
    for array in arrays:
        crc = zlib.crc32(np.ascontiguousarray(array).data, crc)
    return crc


# What ``copy_sums`` sums per cell, as messages name it.
COPY_PARTS = ("masks", "weights", "running statistics")


def copy_sums(network):
    """Per cell, crc32 of its ``COPY_PARTS``: what must be equal on every rank."""
    pruned = {c.name: c.quantizer for c in pruned_cells(network)}
    sums = []
    for cell in network.cells:
        q = pruned.get(cell.name)
        masks = [*q.masks, *(q.soft or [])] if q is not None else []
        sums.append((_crc(masks), _crc(p.value for p in cell.params()),
                     _crc(cell.state().values())))
    return sums


def random_per_batch(provider, part):
    """Whether partition ``part``'s batches draw random numbers (transformations)."""
    steps = provider.pipeline(part)[1] + [t for s in provider.channel_steps(part) for t in s]
    return any(t.random for t in steps)


class DistributedTrainer(Trainer):
    """``Trainer`` whose steps are shared by the ranks of ``world`` (``world.MpiWorld``;
    ``world.OneProcess`` runs it alone, as one rank)."""

    def __init__(self, world, model, run, epochs, log_every=100, seed=0, **kwargs):
        super().__init__(model, run, epochs, log_every, seed, **kwargs)
        refuse_rank_local(self.net)
        self.world, self.seed = world, seed
        self.buffer = GradientBuffer(self.net)
        self.dropouts = [c for c in self.net.cells if isinstance(c, Dropout)]
        self.agreed_stop = False
        self.allreduce_seconds = 0.0
        world.note = self.snapshot_note  # what a rank stopped by mpirun says

    # -- the same state everywhere ----------------------------------------
    def sync(self):
        """Every rank takes rank 0's state (its fresh, loaded or resumed run)."""
        payload = None
        if self.world.is_root:
            payload = (snapshot_arrays(self.net, *self.snapshot_content()), self.snapshot_step)
        arrays, step = self.world.bcast(payload)
        if not self.world.is_root:
            meta, arrays = restore_arrays(self.net, arrays, "rank 0's state", self.model.epoch_size)
            self.restore(meta, arrays)
            self.snapshot_step = step
        self.check_copies("at the start")

    def check_copies(self, when):
        """``AgreedError`` naming the first cell whose masks, weights or running
        statistics differ from rank 0's: the ranks' copies must never drift apart."""
        everyone = self.world.allgather(copy_sums(self.net))
        for rank, theirs in enumerate(everyone[1:], 1):
            for cell, ours, other in zip(self.net.cells, everyone[0], theirs):
                for part, a, b in zip(COPY_PARTS, ours, other):
                    if a != b:
                        raise AgreedError(
                            f"[{cell.name}] {part} differ between rank 0 and rank {rank} {when} "
                            f"(crc32 {a:08x} vs {b:08x}): the ranks' copies drifted apart; "
                            f"{self.snapshot_note()}")

    def failure(self, problem, step=None):
        # Losses and weights are the same on every rank: so is every failure.
        return AgreedError(str(super().failure(problem, step)))

    # -- one step ---------------------------------------------------------
    def train_step(self, images, labels, indices):
        shard = np.array_split(indices, self.world.size)[self.world.rank]
        self.buffer.begin()
        loss = score = chance = 0.0
        if len(shard):
            loss, score, chance = self.shard_step(images, labels, shard)
        started = time.perf_counter()
        loss, score, chance, stop = self.buffer.reduce(
            self.world, len(shard) / len(indices),
            (loss * len(shard) / len(indices), score, chance * len(shard) / len(indices),
             float(self.interrupt.requested)))
        self.allreduce_seconds += time.perf_counter() - started
        self.agreed_stop = stop > 0
        with np.errstate(**SILENT_ERRSTATE):
            problem = check_loss(self.state, self.net, loss, labels[indices], chance)
            if problem:
                raise self.failure(problem, self.state.step + 1)
            self.net.apply_solvers(len(indices))
        self.update_masks(len(indices))
        return loss, score

    def shard_step(self, images, labels, shard):
        """Forward and backward on this rank's ``shard``: ``(loss, score, loss of guessing)``."""
        rng = np.random.default_rng([self.seed, 3, self.state.step, self.world.rank])
        for cell in self.dropouts:
            cell.rng = rng
        x = self.model.provider.batch(images, shard, rng, "learn")
        with np.errstate(**SILENT_ERRSTATE):
            self.net.forward(x, train=True, labels=labels[shard])
            loss, score = self.net.loss_and_backward(labels[shard])
            chance = chance_loss(self.net, labels[shard]) if self.state.loss_ref is None else 0.0
        return loss, score, chance

    def update_masks(self, batch_size):
        changed = super().update_masks(batch_size)
        if changed:
            self.check_copies(f"after the mask update of step {self.state.step + 1}")
        return changed

    # -- the loop's hooks ---------------------------------------------------
    def stop_requested(self):
        return self.agreed_stop

    def run_epochs(self, images, labels):
        try:
            super().run_epochs(images, labels)
        except KeyboardInterrupt:
            if self.agreed_stop:
                raise AgreedInterrupt from None
            raise

    def save_snapshot(self):
        if self.world.is_root:
            super().save_snapshot()

    def resume(self, extra_fields=()):
        self.world.root(super().resume, extra_fields)

    def evaluate(self, part):
        if random_per_batch(self.model.provider, part):
            return super().evaluate(part)  # every rank draws the one-process numbers
        return evaluate(self.net, self.model, part, ranks=self.world)

    def finish(self):
        self.check_copies("at the end")
        return super().finish()

    def summary_extra(self):
        mean = self.world.sum(self.allreduce_seconds) / self.world.size
        return {"ranks": self.world.size, "allreduce_seconds": round(mean, 3)}

    def train(self):
        self.sync()
        log.info("distributed: %d ranks, global batch %d in shards of up to %d",
                 self.world.size, self.batch_size, math.ceil(self.batch_size / self.world.size))
        return super().train()
