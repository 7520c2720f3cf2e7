"""What every cell promises to the network that runs it.

Activations are float32 arrays (channel, height, width, batch), the batch
innermost and contiguous: a row of a channel is one run of W*N floats, which
the direct convolution and pooling kernels stream and vectorise over. A cell
receives one array per input (``Input=a,b`` gives two) and returns one.
"""

import numpy as np

from n2prune.cells.registry import CELL_TYPES


class Param:
    """A trainable array, its gradient and the solver role that updates it.

    ``role`` is ``"weights"`` or ``"biases"``: N2D2 gives each role its own
    solver (``WeightsSolver.*`` / ``BiasSolver.*``). ``grad`` is the gradient
    of the **batch-mean** loss, written by the cell's ``backward``.

    ``version`` counts in-place writes of ``value``: a pruned cell keeps what
    it derives from the weights (``W*M``, the skip kernels' kept values) until
    it changes, so inference does not redo it per call. The solver, the
    checkpoint and N2D2-file loaders call ``changed()``; so must any other
    code that writes ``value`` in place.
    """

    def __init__(self, name, value, role):
        self.name = name
        self.value = np.ascontiguousarray(value, dtype=np.float32)
        self.grad = np.zeros_like(self.value)
        self.role = role
        # Flat positions the solver may change (None: all). Set by a pruned
        # cell with HardZero on the skip kernels, so masked weights stay 0.
        self.active = None
        self.version = 0

    def changed(self):
        """Record an in-place write of ``value`` (derived copies are rebuilt)."""
        self.version += 1


class Cell:
    """Base class: a named node with inputs, an output shape and gradients.

    Subclasses set ``self.output_shape`` (C, H, W) in ``__init__`` from
    ``input_shapes`` (a list of (C, H, W)) and implement ``forward`` and
    ``backward``. ``forward(xs, train)`` caches what ``backward(dy)`` needs;
    ``backward`` returns one gradient per input (``None`` where the input is
    the stimuli provider and no gradient is wanted).
    """

    # INI names of the keys N2D2 reads only from a ConfigSection (the cell
    # type's *parameters*, e.g. ``NoBias``); the other keys are the section's.
    config_keys = ()

    @property
    def file_stem(self):
        """The cell's name as one file name: an imported ONNX tensor name such as
        ``conv2/conv`` (or a hostile ``../x``) must not make a path."""
        return self.name.replace("/", "_").replace("\\", "_")

    # Per input: whether ``backward`` must compute its gradient (the network
    # clears it for the stimuli provider). None means every input's.
    input_grad_wanted = None
    # True for a cell whose training forward needs the batch labels (TargetBias):
    # the network calls ``forward(xs, train, labels)`` on it.
    takes_labels = False

    def __init__(self, name, input_shapes):
        self.name = name
        self.input_shapes = [tuple(s) for s in input_shapes]
        self.output_shape = None

    @property
    def type_name(self):
        """The ``Type=`` name this class (or the registered class it extends) is filed under."""
        for klass in type(self).__mro__:
            for name, registered in CELL_TYPES.items():
                if registered is klass:
                    return name
        raise LookupError(f"{type(self).__name__} is not a registered cell type")

    def wants_input_grad(self, k):
        return self.input_grad_wanted is None or self.input_grad_wanted[k]

    def params(self):
        """The trainable ``Param`` objects, weights first."""
        return []

    def forward(self, xs, train):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def macs_per_sample(self):
        """Multiply-accumulates for one sample's forward pass."""
        return 0

    def state(self):
        """Arrays to checkpoint besides ``params`` (e.g. BatchNorm statistics)."""
        return {}

    def load_state(self, arrays):
        for key, value in arrays.items():
            getattr(self, key)[...] = value
