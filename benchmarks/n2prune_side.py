"""What the benchmarks need from n2prune: models, masks, steps, a timed recipe run.

Also describes a model to the PyTorch reference (``torch_lenet.py``) as
plain data (``layer_spec``, ``solver_spec``), so that both sides build the
same layers and solver from the same INI without torch importing n2prune.
"""

import time
from pathlib import Path

import numpy as np

from n2prune.cells import Conv, Dropout, Fc, Pool, Softmax, WeightCell
from n2prune.prune.prune_cell import PruneCell
from n2prune.prune.pruned_cells import initialize_masks, pruned_cells, step_quantizers
from n2prune.train.loop import Trainer
from n2prune.train.model import Model
from n2prune.train.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"LeNet-5": ROOT / "models_ini" / "lenet.ini",
          "LeNet-300-100": ROOT / "models_ini" / "lenet_300_100.ini"}


def weighted_cells(net):
    return [cell for cell in net.cells if isinstance(cell, WeightCell)]


def prune_every_weighted_cell(net, sparsity):
    """``QWeight=Prune`` (Static, IterNonStruct, HardZero) on every Conv and Fc."""
    for cell in weighted_cells(net):
        cell.quantizer = PruneCell(prune_mode="Static", prune_filler="IterNonStruct",
                                   threshold=sparsity, delta=1e-4, hard_zero=True)
    initialize_masks(net, np.random.default_rng(0), log_period=0)


def random_masks(net, sparsity, seed):
    """``{cell name: [uint8 mask per weight tensor]}``, exactly ``round(sparsity * size)`` zeros each."""
    rng = np.random.default_rng(seed)
    masks = {}
    for cell in weighted_cells(net):
        masks[cell.name] = []
        for w in cell.weight_arrays():
            flat = np.ones(w.size, dtype=np.uint8)
            flat[rng.permutation(w.size)[:round(sparsity * w.size)]] = 0
            masks[cell.name].append(flat.reshape(w.shape))
    return masks


def set_masks(net, masks):
    """Static ``QWeight=Prune`` with HardZero on every cell of ``masks``, with exactly these masks."""
    cells = [net.cell(name) for name in masks]
    for cell in cells:
        cell.quantizer = PruneCell(prune_mode="Static", prune_filler="None", hard_zero=True)
    initialize_masks(net, np.random.default_rng(0), log_period=0, cells=cells)
    for cell in cells:
        cell.quantizer.set_masks(masks[cell.name])
        cell.quantizer.after_update(cell.weight_arrays())


def torch_masks(net, masks):
    """The masks PyTorch needs: prune mask (if any) times a Conv mapping's connection mask."""
    out = {}
    for cell in weighted_cells(net):
        mask = masks[cell.name][0] if cell.name in masks else np.ones(cell.weights[0].value.shape)
        conn = getattr(cell, "connections", [None])[0]
        if conn is not None and conn.mask is not None:
            mask = mask * conn.mask
        if not mask.all():
            out[cell.name] = mask.astype(np.float32)
    return out


def initial_weights(net):
    """``{cell name: float32 weights}`` of every Conv and Fc, for the PyTorch side to start from.

    Under 90% random masks LeNet-5's output starts near zero (each layer keeps
    a tenth of its fan-in), and how long SGD sits at loss ln(10) depends on
    the start: with lenet.ini seed 1, n2prune reaches 21% after 2 epochs
    from its own draw and 83% from torch's He draw (whose fc2 scale also
    differs: the INI gives fc2 no filler). Same weights make sides comparable.
    """
    return {cell.name: cell.weights[0].value.copy() for cell in weighted_cells(net)}


def layer_spec(net):
    """The network as a list of plain dicts for ``torch_lenet.build``; a chain of cells only."""
    spec = []
    for cell in net.cells:
        if len(cell.input_shapes) != 1:
            raise ValueError(f"[{cell.name}]: the PyTorch reference only builds chains")
        spec.append(_cell_spec(cell))
    return [s for s in spec if s is not None]


def _cell_spec(cell):
    relu = type(getattr(cell, "activation", None)).__name__ == "Rectifier"
    if isinstance(cell, Conv):
        return {"type": "conv", "name": cell.name, "in": cell.input_shapes[0][0],
                "out": cell.nb_outputs, "kernel": cell.kernel, "stride": cell.stride,
                "padding": cell.padding, "bias": cell.bias is not None, "relu": relu}
    if isinstance(cell, Fc):
        return {"type": "fc", "name": cell.name, "in": int(np.prod(cell.input_shapes[0])),
                "out": cell.nb_outputs, "bias": cell.bias is not None, "relu": relu}
    if isinstance(cell, Pool) and cell.pooling == "Max" and cell.identity:
        return {"type": "maxpool", "kernel": cell.pool, "stride": cell.stride}
    if isinstance(cell, Dropout):
        return {"type": "dropout", "p": cell.dropout}
    if isinstance(cell, Softmax):
        return None  # the loss is PyTorch's cross-entropy on the logits
    raise ValueError(f"[{cell.name}] {cell.type_name}: not in the PyTorch reference")


def solver_spec(model):
    """SGD settings of the first weighted cell (the recipes share one config section)."""
    weights, bias = next(iter(model.network.solvers.values()))
    per_epoch = weights.schedule.decay if weights.policy == "StepDecay" else 1.0
    if weights.policy not in ("None", "StepDecay") or (
            weights.policy == "StepDecay" and weights.schedule.step_size != model.epoch_size):
        raise ValueError(f"learning rate policy {weights.policy}: only StepDecay per epoch")
    lo, hi = weights.clamp_lo, weights.clamp_hi
    return {"lr": weights.learning_rate, "momentum": weights.momentum,
            "decay": weights.decay, "bias_lr": bias.learning_rate if bias else 0.0,
            "bias_decay": bias.decay if bias else 0.0, "lr_decay_per_epoch": per_epoch,
            "clamp": None if lo is None and hi is None else [lo, hi],
            "batch": model.provider.batch_size}


def describe(ini, overrides=(), seed=1):
    """What the PyTorch side needs to build and train the model, as JSON-able data."""
    model = Model(ini, overrides=list(overrides), seed=seed, need_data=False)
    return {"spec": layer_spec(model.network), "solver": solver_spec(model),
            "input_shape": list(model.network.input_shape)}


def n2prune_step_fn(ini, batch, sparsity=0.0, masks=None, overrides=()):
    """One training step (forward, backward, SGD, mask bookkeeping) on a random batch."""
    model = Model(ini, overrides=[f"sp.BatchSize={batch}", *overrides], seed=1, need_data=False)
    net = model.network
    if masks is not None:
        set_masks(net, masks)
    elif sparsity:
        prune_every_weighted_cell(net, sparsity)
    c, h, w = net.input_shape
    rng = np.random.default_rng(0)
    x = rng.random((c, h, w, batch), dtype=np.float32)
    labels = rng.integers(0, 10, batch)

    def step():
        net.forward(x, train=True)
        net.loss_and_backward(labels)
        net.apply_solvers(batch)
        step_quantizers(net, batch)
    return step


def limit_partitions(model, limit):
    """Keep the first ``limit`` images of each partition: a quick check, not a measurement."""
    for part in ("learn", "validation", "test"):
        images, labels = model.stimuli(part)
        model._cache[part] = (images[:limit], labels[:limit])


class TimedTrainer(Trainer):
    """Notes when each epoch (its validation and end-of-epoch writes included) ended."""

    def end_epoch(self):
        super().end_epoch()
        self.epoch_ends.append(time.perf_counter())


def train_recipe(ini, run_dir, epochs, seed, masks=None, limit=None):
    """Train as ``n2prune train`` does; seconds per epoch including validation, and accuracy."""
    model = Model(ini, seed=seed)
    if masks is not None:
        set_masks(model.network, masks)
    return train_recipe_model(model, run_dir, epochs, seed, limit)


def train_recipe_model(model, run_dir, epochs, seed, limit=None):
    """``train_recipe`` on a model already built (and pruned)."""
    for part in ("learn", "validation", "test"):  # data preparation is not timed
        model.stimuli(part)
    if limit:
        limit_partitions(model, limit)
    run = RunFolder(run_dir)
    run.create(model.ini.dumps(), {"model": str(model.path), "seed": seed, "epochs": epochs},
               [f"sparsity_{c.name}" for c in pruned_cells(model.network)])
    trainer = TimedTrainer(model, run, epochs, log_every=10**9, seed=seed, snapshot_every=0)
    trainer.epoch_ends = [time.perf_counter()]
    summary = trainer.train()
    ends = trainer.epoch_ends
    per_epoch = (ends[-1] - ends[0]) / epochs
    learn = len(model.stimuli("learn")[1])
    return {"s/epoch": per_epoch, "last epoch s": ends[-1] - ends[-2],
            "samples/s": learn / per_epoch,
            "steps s/epoch": summary["train_seconds"] / epochs,
            "test acc": summary["test_accuracy"],
            "val acc": summary["best_validation_accuracy"] or 0.0}
