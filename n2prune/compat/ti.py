"""TI's ``PrunerModule`` (edgeai-torchmodelopt ``xmodelopt.pruning``) over an n2prune Network.

TI wraps a torch module and re-parametrises its Conv weights at every
``model.train()`` (edgeai-torchmodelopt's ``xmodelopt/pruning``). Here the same
arguments configure ``PruneCell`` quantizers on the network's Conv cells,
which count stimuli themselves: step them with ``step_quantizers`` after
each solver step, as any n2prune network. No pruning logic lives here.
"""

from n2prune.cells import Conv
from n2prune.compat import as_rng, attach_quantizers, ini_values, masks_sparsity
from n2prune.prune import patterns
from n2prune.prune.schedules import ti_knee

# pruning_class -> QWeight.Schedule
PRUNING_CLASSES = {"blend": "Blend", "sigmoid": "Sigmoid", "incremental": "Incremental"}
# pruning_type -> QWeight.Pattern
PRUNING_TYPES = {"channel": "Channel", "n2m": "NMFlat",
                 "prunechannelunstructured": "RowBalanced", "unstructured": "Unstructured"}
# TI's channel pruning leaves convs with at most this many outputs alone (v1 utils).
CHANNEL_MIN_OUTPUTS = 32
# TI caps each layer's ratio under global pruning (get_layer_pruning_ratio[_channel]).
GLOBAL_CAPS = {"channel": 0.8}
GLOBAL_CAP = 0.7


class PrunerModule:
    """TI's ``PrunerModule(model, pruning_ratio, total_epochs, ...)`` on ``network``.

    ``pruning_ratio``: the pruned fraction at the end (0 < r <= 1; TI
    rejects 0). ``total_epochs`` E and ``init_train_ep`` e0: dense warm-up
    for e0 epochs, then one mask update per epoch up to the knee
    ``ti_knee(E, e0)`` (TI's knee with its missing ``+ e0`` restored).
    ``epoch_size``: stimuli per epoch (the quantizers count stimuli, not
    ``train()`` calls). ``pruning_m``: M of ``n2m`` (required there).
    ``seed``: int or ``numpy.random.Generator`` for ``initialize_masks``.

    Raises ValueError for an unknown class or type, a ratio outside (0, 1],
    ``n2m`` without ``pruning_m``, a global ratio above TI's per-layer cap
    or no Conv cell to prune; NotImplementedError for ``n2m`` with
    ``global_pruning``, as TI.

    Attributes: ``pruned_cells`` (names, network order), ``quantizers``
    (``{name: PruneCell}``), ``knee`` (epoch whose masks are final in TI).
    """

    def __init__(self, network, pruning_ratio, total_epochs, init_train_ep=5,
                 pruning_class="blend", pruning_type="channel", global_pruning=False,
                 pruning_m=None, *, epoch_size, seed=0):
        kwargs = ti_kwargs(pruning_ratio, total_epochs, init_train_ep, pruning_class,
                           pruning_type, global_pruning, pruning_m, epoch_size)
        self.network = network
        self.knee = ti_knee(total_epochs, init_train_ep)
        self.pruned_cells = ti_cells(network, pruning_type)
        if not self.pruned_cells:
            rule = f" with more than {CHANNEL_MIN_OUTPUTS} outputs" if pruning_type == "channel" else ""
            raise ValueError(f"no Conv cell{rule} to prune with pruning_type={pruning_type!r}")
        self._kwargs = {name: dict(kwargs) for name in self.pruned_cells}
        self.quantizers = attach_quantizers(network, self._kwargs, as_rng(seed), epoch_size)

    def sparsity(self):
        """Fraction of zeros over the masks of every pruned cell together.

        Before the knee, Blend and Sigmoid scale the pruned entries by a soft
        value; the masks already hold the pattern those entries form.
        """
        return masks_sparsity(self.quantizers.values())

    def ini_keys(self):
        """``{cell: {"QWeight": "Prune", "QWeight.X": "value"}}``: the same pruning in INI."""
        return {name: ini_values(kwargs) for name, kwargs in self._kwargs.items()}


def ti_kwargs(pruning_ratio, total_epochs, init_train_ep, pruning_class, pruning_type,
              global_pruning, pruning_m, epoch_size):
    """PruneCell keyword arguments for TI's arguments (validated; see ``PrunerModule``)."""
    _check_choice("pruning_class", pruning_class, PRUNING_CLASSES)
    _check_choice("pruning_type", pruning_type, PRUNING_TYPES)
    if not 0 < pruning_ratio <= 1:
        raise ValueError(f"pruning_ratio must be in (0, 1] (TI rejects 0), got {pruning_ratio}")
    if int(epoch_size) != epoch_size or epoch_size < 1:
        raise ValueError(f"epoch_size must be a whole number of stimuli >= 1, got {epoch_size}")
    if pruning_type == "n2m" and global_pruning:
        raise NotImplementedError("n2m pruning with global_pruning is not implemented (as TI)")
    knee = ti_knee(total_epochs, init_train_ep)  # checks both are whole numbers
    epoch_size, init_train_ep = int(epoch_size), int(init_train_ep)
    kwargs = {
        "prune_mode": "Gradual", "pattern": PRUNING_TYPES[pruning_type],
        "criterion": "FPGM" if pruning_type == "channel" else "Magnitude",
        "schedule": PRUNING_CLASSES[pruning_class], "start": 0.0,
        "threshold": float(pruning_ratio), "stepsize": epoch_size,
        "schedule_delay": init_train_ep * epoch_size,
        "schedule_length": (knee - init_train_ep) * epoch_size,
        # Pruned weights are zeros once the soft masks are gone, as TI bakes them in.
        "hard_zero": True,
    }
    if pruning_type == "n2m":
        kwargs.update(n=n2m_kept(pruning_ratio, pruning_m), m=int(pruning_m))
    if global_pruning:
        cap = GLOBAL_CAPS.get(pruning_type, GLOBAL_CAP)
        if pruning_ratio > cap:
            raise ValueError(f"global pruning_ratio {pruning_ratio} is above TI's per-layer cap "
                             f"{cap} for {pruning_type!r}: no layer may prune more")
        kwargs.update(scope="Global", max_sparsity=cap)
    return kwargs


def n2m_kept(pruning_ratio, pruning_m):
    """N kept of every M = ``pruning_m`` for TI's n2m: ⌊(1 − r)·M⌋ (``patterns.kept_count``).

    TI's "41:64" names the pruned count: r = 41/64 keeps N = 23 of 64.
    Any r > 0 prunes at least one of every M (⌈r·M⌉ pruned).
    """
    if pruning_m is None:
        raise ValueError("pruning_type='n2m' needs pruning_m (M, e.g. 64)")
    if int(pruning_m) != pruning_m or pruning_m < 1:
        raise ValueError(f"pruning_m must be a whole number >= 1, got {pruning_m}")
    return patterns.kept_count(int(pruning_m), pruning_ratio)


def ti_cells(network, pruning_type):
    """Names of the cells TI v1 prunes, in network order.

    Every Conv except depthwise ones (TI lets them inherit their producer's
    channels); for ``channel`` only Convs with more than 32 outputs. Fc
    cells stay dense (TI v1 prunes no Linear).
    """
    names = []
    for cell in network.cells:
        if not isinstance(cell, Conv) or any(c.kind == "depthwise" for c in cell.connections):
            continue
        if pruning_type == "channel" and cell.nb_outputs <= CHANNEL_MIN_OUTPUTS:
            continue
        names.append(cell.name)
    return names


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
