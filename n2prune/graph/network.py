"""The layer graph: cells in build order, wired by name, with targets and a loss.

Activations inside are (C, H, W, N), the batch innermost; ``predict`` takes
and returns batch-first arrays.
"""

import numpy as np

from n2prune.cells.fusion import fuse_conv_max_pool
from n2prune.graph.targets import ScoreTarget, Target
from n2prune.prune.pruned_cells import add_penalties, initialize_masks, pruned_cells

PROVIDER = "sp"


class Network:
    """Cells in topological (N2D2 level) order.

    ``inputs[name]`` lists the names a cell reads (``"sp"`` is the stimuli
    provider). ``targets`` are the cells a loss is attached to (``Target``
    objects, or cell names for TargetScores); ``metric_target`` is the first
    that scores the network (accuracy, or mean squared error of a data target).

    As N2D2's Python ``Sequence``, a network iterates over its cells (``for
    cell in net``), ``net[i]`` and ``net["conv1"]`` give one, and a quantizer
    assigned by hand (``cell.quantizer = PruneCell(...)``) gets its masks at
    the next ``forward``, from ``rng`` and ``log_period`` (the build sets them
    to the run's generator and the stimuli per epoch; ``default_rng(0)`` and 0
    for a network made by hand).
    """

    def __init__(self, cells, inputs, input_shape, targets):
        self.cells = list(cells)
        self.by_name = {c.name: c for c in self.cells}
        self.inputs = {name: list(names) for name, names in inputs.items()}
        self.input_shape = tuple(input_shape)
        self.targets = [t if isinstance(t, Target) else ScoreTarget(t) for t in targets]
        # None only for a bare graph (no target: it cannot train); the builder refuses that.
        self.metric_target = next((t for t in self.targets if t.metric is not None), None)
        self.outputs = {}
        self.solvers = {}  # cell name -> (weights solver, bias solver)
        # Cell name -> indices of its output channels a channel group removed
        # (``prune.channels``): kept at exactly 0, dropped by ``shrink``.
        self.removed_channels = {}
        self.rng, self.log_period = None, 0
        # Nobody reads the gradient of the stimuli: the first Conv skips its
        # col2im and input-gradient GEMM, a third of LeNet's backward pass.
        for cell in self.cells:
            cell.input_grad_wanted = [name != PROVIDER for name in self.inputs[cell.name]]
        self.fused = fuse_conv_max_pool(self.cells, self.inputs, {t.cell for t in self.targets})

    def apply_solvers(self, batch_size):
        """One solver step for every param: weights and biases each by their role's solver.

        Gradient penalties of the pruned cells (network slimming) come first.
        """
        add_penalties(self)
        for cell in self.cells:
            if cell.name in self.solvers:
                weights_solver, bias_solver = self.solvers[cell.name]
                for param in cell.params():
                    solver = weights_solver if param.role == "weights" else bias_solver
                    solver.update(param, batch_size)

    def cell(self, name):
        return self.by_name[name]

    def __iter__(self):
        return iter(self.cells)

    def __len__(self):
        return len(self.cells)

    def __getitem__(self, item):
        return self.by_name[item] if isinstance(item, str) else self.cells[item]

    def params(self):
        return [p for c in self.cells for p in c.params()]

    def named_parameters(self):
        """``(name, array)`` of every param (``conv1.weights[0]``, ``conv1.biases``), as
        torch's ``Module.named_parameters`` that pruning tools' examples loop over."""
        return [(p.name, p.value) for p in self.params()]

    def initialize_quantizers(self):
        """Masks of the quantizers attached since the last call (N2D2 initialises a
        quantizer with its cell); the others keep theirs."""
        fresh = [c for c in pruned_cells(self) if not c.quantizer.masks]
        if fresh:
            rng = self.rng if self.rng is not None else np.random.default_rng(0)
            initialize_masks(self, rng, self.log_period, cells=fresh)

    def forward(self, x, train=False, labels=None):
        """Run every cell on ``x`` (C, H, W, N); returns the metric target's output
        (the last cell's in a network without targets).

        ``labels`` (N,) go to the cells that take them (TargetBias), which
        need them to train.
        """
        self.initialize_quantizers()
        self.outputs = {PROVIDER: x}
        for cell in self.cells:
            xs = [self.outputs[name] for name in self.inputs[cell.name]]
            if cell.takes_labels:
                self.outputs[cell.name] = cell.forward(xs, train, labels)
            else:
                self.outputs[cell.name] = cell.forward(xs, train)
        last = self.metric_target.cell if self.metric_target else self.cells[-1].name
        return self.outputs[last]

    def loss_and_backward(self, labels):
        """Loss of the last forward against ``labels`` (N,), then every gradient.

        Returns ``(loss, score)``: the batch-mean loss summed over targets and
        the metric target's score summed over the batch (the number of samples
        classified right, or the sum of their mean squared errors).
        """
        grads = {}
        loss, score = 0.0, None
        for target in self.targets:
            out = self.outputs[target.cell]
            t_loss, grad, t_score = target.loss(self.by_name[target.cell], out, labels,
                                                self.outputs[PROVIDER])
            loss += t_loss
            if grad is not None:
                grads[target.cell] = grads.get(target.cell, 0) + grad
            if target is self.metric_target:
                score = t_score
        self.backward(grads)
        return loss, score

    def backward(self, grads):
        """Propagate output gradients ``{cell: dY}`` back through the graph."""
        for cell in reversed(self.cells):
            dy = grads.pop(cell.name, None)
            if dy is None:
                continue
            dxs = cell.backward(dy)
            for name, dx in zip(self.inputs[cell.name], dxs):
                if name == PROVIDER or dx is None:
                    continue
                grads[name] = dx if name not in grads else grads[name] + dx

    def predict(self, x, batch_size=1000):
        """Class scores for batch-first input ``x`` (N, C, H, W) or (N, H, W)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            x = x[:, None]
        outs = []
        for start in range(0, len(x), batch_size):
            chunk = np.ascontiguousarray(x[start:start + batch_size].transpose(1, 2, 3, 0))
            y = self.forward(chunk, train=False)
            outs.append(y.reshape(-1, y.shape[3]).T)
        return np.concatenate(outs)

    def macs_per_sample(self):
        return sum(c.macs_per_sample() for c in self.cells)

    def nb_params(self):
        return sum(p.value.size for p in self.params())
