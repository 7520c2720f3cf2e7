"""TI's ``PrunerModule`` (edgeai-torchmodelopt ``xmodelopt.pruning``, v1) around an n2prune Network.

As TI's, the wrapper is the model: ``model = PrunerModule(net, ...)``, then
``model.train()`` at the start of each epoch (its epoch counter advances and
the masks of that epoch are set), ``model(x)`` in the loop, ``model.eval()``
to validate; the ``eval()`` after the last epoch bakes the hard masks into
the weights and sets ``sparsity``. The masks live in ``PruneCell`` quantizers
on the Conv cells, each with a TI schedule of ``prune.ti_epochs`` counting
``train()`` calls: no pruning logic lives here, only TI's choice of cells
and arguments. docs/pruning-facades.rst lists every argument.
"""

import logging

import numpy as np

from n2prune.cells import Conv, Fc
from n2prune.compat import as_rng, attach_quantizers, network_of
from n2prune.prune import ti_epochs
from n2prune.prune.channels import (
    refresh_removed_channels,
    resolve_channels,
    zero_removed_channels,
)
from n2prune.prune.criteria import bn_out_scale
from n2prune.prune.pruned_cells import feeding_batchnorm

log = logging.getLogger("n2prune")

PRUNING_TYPES = ("channel", "n2m", "prunechannelunstructured", "unstructured")
# TI's channel pruning leaves convs with at most this many outputs alone.
CHANNEL_MIN_OUTPUTS = 32


class PrunerModule:
    """TI's ``PrunerModule(module, pruning_ratio, total_epochs, ...)`` wrapping ``module``.

    ``module``: a Network or a ``Model``. TI's arguments keep TI's names and
    defaults; ``init_train_ep`` and ``global_pruning`` (the names of TI's
    older README) are accepted for ``pruning_init_train_ep`` and
    ``pruning_global``. ``pruning_class`` is 'blend', 'sigmoid',
    'incremental' or a ``ti_epochs.TISchedule`` subclass (your own class).
    n2prune's opt-in fixes: ``knee='v2'`` (TI's later knee, e0 added back),
    ``clamp_incremental`` (the ramp stops at r), ``rescore`` (scores taken
    from the weights at each epoch, not once at construction as TI).
    ``seed``: int or ``numpy.random.Generator`` for the masks' set-up.

    Raises RuntimeError (ratio 0 or missing, no epochs, n2m without
    ``pruning_m``), NotImplementedError (n2m with global pruning, or with
    sigmoid: TI's branch fails) as TI; ValueError for a ratio above 1, an
    unknown class or knee, or a cell that already has a quantizer.
    """

    def __init__(self, module, pruning_ratio=None, total_epochs=None, pruning_class="blend",
                 p=2.0, copy_args=(), pruning_global=False, pruning_type="channel",
                 pruning_init_train_ep=5, pruning_m=None, *, init_train_ep=None,
                 global_pruning=None, knee="ti", clamp_incremental=False, rescore=False, seed=0):
        self.module = network_of(module)
        self.init_train_ep = _alias(pruning_init_train_ep, init_train_ep, 5,
                                    "pruning_init_train_ep", "init_train_ep")
        self.global_pruning = _alias(pruning_global, global_pruning, False,
                                     "pruning_global", "global_pruning")
        _check_required(pruning_ratio, total_epochs)
        self.pruning_ratio, self.total_epochs, self.p = pruning_ratio, total_epochs, p
        self.epoch_count, self.sparsity, self.training = 0, 0, True
        self.pruning_class = _pruning_class(pruning_class)
        pruning_type = _pruning_type(pruning_type)
        self.channel_pruning = pruning_type == "channel"
        self.n2m_pruning = pruning_type == "n2m"
        self.prunechannelunstructured = pruning_type == "prunechannelunstructured"
        self.m = _check_n2m(pruning_type, pruning_m, self.global_pruning, self.pruning_class)
        for name in copy_args:
            setattr(self, name, getattr(self.module, name))
        if knee not in ti_epochs.KNEES:
            raise ValueError(f"knee must be one of {', '.join(map(repr, ti_epochs.KNEES))}, "
                             f"got {knee!r}")
        self.knee = ti_epochs.KNEES[knee](total_epochs, self.init_train_ep)
        ratios = self._layer_ratios(pruning_type)
        kwargs = {name: self._cell_kwargs(name, ratio, pruning_type, clamp_incremental, rescore)
                  for name, ratio in ratios.items()}
        self.pruned_cells = list(kwargs)
        if not kwargs:
            log.warning("no Conv cell TI would prune with pruning_type=%r (depthwise and 1-input "
                        "convs, and for channel pruning convs with at most %d outputs, stay "
                        "dense): the network trains dense, as with TI", pruning_type,
                        CHANNEL_MIN_OUTPUTS)
        self.quantizers = attach_quantizers(self.module, kwargs, as_rng(seed), 0)

    # -- what TI's torch.nn.Module does ----------------------------------------
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, x, *args, **kwargs):
        """The network's ``forward(x, train)``, in training mode between ``train()`` and
        ``eval()``. A removed channel's bias and BatchNorm are zeroed first, as TI's
        parametrisation masks them at every forward."""
        if self.channel_pruning and self.training:
            zero_removed_channels(self.module)
        return self.module.forward(x, self.training, *args, **kwargs)

    def train(self, mode=True):
        """TI's ``train()``: with ``mode``, the next epoch and its masks; the ``eval()``
        (``mode`` False) ending epoch ``total_epochs`` bakes the hard masks in."""
        self.training = bool(mode)
        if mode:
            self.epoch_count += 1
            for q in self.quantizers.values():
                q.update(1)  # one fire per train() call: the fire index is the epoch
            if self.channel_pruning:
                resolve_channels(self.module, [self.module.cell(n) for n in self.pruned_cells])
        elif self.epoch_count == self.total_epochs:
            self._bake()
        return self

    def eval(self):
        return self.train(False)

    def __getattr__(self, name):
        # The rest is the network's, as a torch wrapper reaches its submodule's parameters.
        if name == "module":
            raise AttributeError(name)
        return getattr(self.module, name)

    def calculate_sparsity(self):
        """TI's: ``sparsity`` = zero fraction of the stored parameters of every cell but Fc
        (Conv weights and biases, BatchNorm scales and shifts...). Returns self."""
        values = [p.value for c in self.module.cells if not isinstance(c, Fc) for p in c.params()]
        total = sum(v.size for v in values)
        self.sparsity = sum(v.size - np.count_nonzero(v) for v in values) / total if total else 0
        return self

    def _bake(self):
        """Binary masks (soft values >= 0.5 kept), removed channels zeroed, ``w *= mask``."""
        for q in self.quantizers.values():
            q.harden(0.5)
        if self.channel_pruning:
            refresh_removed_channels(self.module)
            zero_removed_channels(self.module)
        for q in self.quantizers.values():
            q.finalize()
        for name in self.pruned_cells:
            for param in self.module.cell(name).weights:
                param.changed()
        self.calculate_sparsity()
        log.info("The final sparsity of the network is %s", self.sparsity)

    # -- TI's choices ------------------------------------------------------------
    def _layer_ratios(self, pruning_type):
        """``{cell: ratio}`` of the convs TI prunes; ``pruning_ratio`` becomes TI's per-layer
        dict under global pruning (computed once, from the weights as they are)."""
        convs = [c for c in self.module.cells if isinstance(c, Conv)]
        if self.global_pruning:
            ratios = self._global_ratios(convs)
            self.pruning_ratio = dict(ratios)
        else:
            ratios = {c.name: float(self.pruning_ratio) for c in convs}
        chosen = {}
        for cell in convs:
            ratio = ratios.get(cell.name, 0.0)
            size = sum(w.size for w in cell.weight_arrays())
            if int(ratio * size) > 0 and ti_prunes(cell, pruning_type, self.pruning_class):
                chosen[cell.name] = ratio
        return chosen

    def _global_ratios(self, convs):
        if self.channel_pruning:
            selected = [c for c in convs if not depthwise_like(c)
                        and c.nb_outputs > CHANNEL_MIN_OUTPUTS]
            scores = [self._net_weights(c, channel=False)[0] for c in selected]
            ratios = ti_epochs.global_channel_ratios(scores, self.pruning_ratio)
            return dict(zip([c.name for c in selected], ratios))
        weights = [None if depthwise_like(c) else
                   np.concatenate([w.reshape(-1) for w in c.weight_arrays()]) for c in convs]
        return dict(zip([c.name for c in convs], ti_epochs.global_ratios(weights, self.pruning_ratio)))

    def _net_weights(self, cell, channel):
        bn = feeding_batchnorm(self.module, cell.name)
        scale = None if bn is None else bn_out_scale(bn.scale.value, bn.variance, bn.epsilon)
        return [ti_epochs.ti_scores(w, scale, channel) for w in cell.weight_arrays()]

    def _cell_kwargs(self, name, ratio, pruning_type, clamp, rescore):
        cls = self.pruning_class
        schedule = cls(ratio, self.total_epochs, self.init_train_ep, self.knee, self.p, clamp)
        for epoch in range(1, self.total_epochs + 1):
            schedule.ratio_at(epoch)  # TI's failures (incremental) now, not mid-training
        cell = self.module.cell(name)
        kwargs = {"prune_mode": "Gradual", "pattern": ti_pattern(pruning_type, cls),
                  "criterion": TIScores(self, cell, rescore), "schedule": schedule,
                  "threshold": min(1.0, ratio), "stepsize": 1, "hard_zero": False}
        if pruning_type == "n2m":
            kwargs.update(m=int(self.m), n=0)
        return kwargs


class TIScores:
    """A cell's TI scores (``ti_epochs.ti_scores``) as a PruneCell criterion: taken once,
    when the model is wrapped (TI's ``net_weights``), or at each epoch with ``rescore``."""

    def __init__(self, pruner, cell, rescore):
        self.pruner, self.cell, self.channel_only = pruner, cell, pruner.channel_pruning
        self.frozen = None if rescore else pruner._net_weights(cell, self.channel_only)

    def __call__(self, w, context):
        if self.frozen is not None:
            return self.frozen[context.index]
        return self.pruner._net_weights(self.cell, self.channel_only)[context.index]

    def __repr__(self):
        return "TI-FPGMMedian" if self.channel_only else "TI-Magnitude"


def ti_pattern(pruning_type, cls):
    """QWeight.Pattern of TI's ``pruning_type`` for pruning class ``cls``: only TI's blend has a
    per-row branch, so sigmoid and incremental prune 'prunechannelunstructured' unstructured."""
    if pruning_type == "prunechannelunstructured":
        return "RowBalanced" if issubclass(cls, ti_epochs.Blend) else "Unstructured"
    return {"channel": "Channel", "n2m": "NMFlatRatio", "unstructured": "Unstructured"}[pruning_type]


def depthwise_like(cell):
    """TI's ``weight.shape[1] == 1``: a depthwise conv, and a conv reading 1 channel."""
    return (any(w.shape[1] == 1 for w in cell.weight_arrays())
            or any(c.per_group == 1 for c in cell.connections))


def ti_prunes(cell, pruning_type, cls):
    """TI v1's per-layer skips: blend and sigmoid leave depthwise-like convs dense (any
    type) and, for channel pruning, convs with <= 32 outputs; incremental leaves every
    conv with <= 32 outputs dense and depthwise-like ones for the element-wise types."""
    small = cell.nb_outputs <= CHANNEL_MIN_OUTPUTS
    if issubclass(cls, ti_epochs.Incremental):
        return not small and not (depthwise_like(cell) and pruning_type != "channel")
    return not depthwise_like(cell) and not (small and pruning_type == "channel")


def _alias(value, alias, default, name, alias_name):
    """TI's argument ``name``, or its older README's ``alias_name`` when that is given."""
    if alias is None:
        return value
    if value != default and value != alias:
        raise TypeError(f"{name}={value!r} and {alias_name}={alias!r}: give one of them")
    return alias


def _check_required(pruning_ratio, total_epochs):
    if pruning_ratio == 0:
        raise RuntimeError("pruning ratio of 0 is not supported , try turning off pruning and "
                           "trying again")
    if not (pruning_ratio and total_epochs):
        raise RuntimeError("pruning ratio and total epochs are necessary to be provided")
    if not 0 < pruning_ratio <= 1:
        raise ValueError(f"pruning_ratio must be in (0, 1], got {pruning_ratio}")


def _pruning_class(pruning_class):
    if isinstance(pruning_class, type) and issubclass(pruning_class, ti_epochs.TISchedule):
        return pruning_class
    if pruning_class not in ti_epochs.PRUNING_CLASSES:
        raise ValueError(f"pruning_class must be one of "
                         f"{', '.join(map(repr, ti_epochs.PRUNING_CLASSES))} or a "
                         f"ti_epochs.TISchedule subclass, got {pruning_class!r}")
    return ti_epochs.PRUNING_CLASSES[pruning_class]


def _pruning_type(pruning_type):
    if pruning_type not in PRUNING_TYPES:
        log.warning("pruning_type=%r is not one of %s: pruned as 'unstructured', as TI does",
                    pruning_type, ", ".join(PRUNING_TYPES))
        return "unstructured"
    return pruning_type


def _check_n2m(pruning_type, pruning_m, global_pruning, cls):
    if pruning_type != "n2m":
        return None
    if pruning_m is None:
        raise RuntimeError("The value of m should be provided in case of n:m pruning")
    if global_pruning:
        raise NotImplementedError("Cannot do both global pruning along with n2m pruning")
    if issubclass(cls, ti_epochs.Sigmoid):
        raise NotImplementedError("TI's sigmoid class with n2m references an undefined tensor "
                                  "(it fails at epoch init_train_ep + 1): use 'blend'")
    if int(pruning_m) != pruning_m or pruning_m < 1:
        raise ValueError(f"pruning_m must be a whole number >= 1, got {pruning_m}")
    return int(pruning_m)
