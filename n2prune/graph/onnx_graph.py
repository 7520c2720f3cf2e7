"""An ONNX graph as cell specs, as N2D2's ``DeepNetGenerator::ONNX_processGraph``.

A node that computes something becomes a cell named after the node's first
output tensor (N2D2's naming: the Gemm node writing ``resnetv15_dense0_fwd``
is the cell ``[resnetv15_dense0_fwd]``). A node that only renames or
reshapes a tensor (Identity, Flatten, a Reshape keeping the layout...) makes
an *alias* of the cell it reads. An activation node (Relu, Sigmoid, Clip...)
is fused into the cell that makes its input, as N2D2 does, when that cell
has no activation yet and nothing else reads its output; its output is then
an alias of that cell. Otherwise it becomes an Activation cell (N2D2 would
fuse it anyway, or stop). The op translators are in ``graph/onnx_ops.py``.

Shapes are followed as the cells see them, (C, H, W) per sample. An ONNX
tensor is that map (rank 4) or its flattened (N, C*H*W) view (rank 2, after
Flatten or Gemm); spatial ops refuse the flattened view of a map.
"""

import dataclasses
import math

import numpy as np

from n2prune.cells import CELL_TYPES

# Ops that only rename or reshape a tensor: their output is the same data.
REDIRECTS = frozenset(("Identity", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Cast"))

OPS = {}
"""``{op_type: translator(translation, node)}``, filled by ``@op`` in graph/onnx_ops*.py."""


def op(*names):
    """Register a translator under the ONNX op types ``names``."""
    def register(function):
        for name in names:
            OPS[name] = function
        return function
    return register


def number(value):
    """A float as INI text that reads back to the same float32."""
    return repr(float(value))


class Unsupported(Exception):
    """A node n2prune cannot translate: ``str()`` names the node, its op and why."""

    def __init__(self, node, message):
        super().__init__(f"{node.label}: {message}")


@dataclasses.dataclass(frozen=True)
class Tensor:
    """An ONNX tensor on our side: the output of ``cell`` (or of an INI input of the
    graph), whose (C, H, W) is ``shape``, seen by ONNX with ``rank`` 4 or 2.

    A concatenation of flattened maps is no cell's output: its ``parts`` are the
    flattened Tensors, which only an Fc (Gemm) reads, as one input each.
    """

    cell: str
    shape: tuple
    rank: int = 4
    parts: tuple = ()

    @property
    def flat(self):
        """True for the flattened view of a map with more than one pixel."""
        return self.rank == 2 and tuple(self.shape[1:]) != (1, 1)

    @property
    def dims(self):
        """The per-sample dims ONNX sees: (C, H, W), or (C*H*W,) flattened."""
        return tuple(self.shape) if self.rank == 4 else (math.prod(self.shape),)


@dataclasses.dataclass
class CellSpec:
    """One cell to build: its section's keys (INI names), its ConfigSection
    parameters (``NoBias``...) and the arrays the file holds for it."""

    name: str
    type: str
    inputs: list
    shape: tuple
    keys: dict
    params: dict
    arrays: dict
    node: str


class Translation:
    """The cells and aliases of one graph, built node by node.

    ``inputs``: ``{graph input name: Tensor}`` (what feeds the graph);
    ``ignore``: first-output names of the nodes to leave out (N2D2's ``Ignore=``).
    """

    def __init__(self, graph, inputs, ignore=()):
        self.graph = graph
        self.tensors = dict(inputs)
        self.cells = {}
        self.heads = {}  # cell -> the tensor holding its output now (after fused activations)
        self.activations = {}  # output of an activation node fused into a cell -> the cell
        self.ignore = set(ignore)
        self.ignored = set()
        self.index = -1
        self.readers = {}
        for index, node in enumerate(graph.nodes):
            if node.outputs[0] not in self.ignore:
                for name in node.inputs:
                    self.readers.setdefault(name, []).append(index)

    def run(self, ops=None):
        """Translate every node with ``ops`` (default ``OPS``)."""
        ops = OPS if ops is None else ops
        for index, node in enumerate(self.graph.nodes):
            self.index = index
            if node.outputs[0] in self.ignore or (
                    node.op in REDIRECTS and node.inputs[0] in self.ignored):
                self.ignored.update(node.outputs)
                continue
            if node.domain not in ("", "ai.onnx") or node.op not in ops:
                raise Unsupported(node, f"operator {node.domain + '.' if node.domain else ''}"
                                  f"{node.op} is not supported; supported: {', '.join(sorted(ops))}")
            try:
                ops[node.op](self, node)
            except (IndexError, KeyError, TypeError, ValueError) as exc:
                # A node its op's spec does not allow (no input, a list for an int...).
                raise Unsupported(node, f"malformed node ({type(exc).__name__}: {exc})") from None
        return self

    # -- reading a node's inputs ------------------------------------------

    def tensor(self, node, name, parts=False):
        """The ``Tensor`` of data input ``name`` of ``node``; a concatenation of flattened
        maps only if ``parts`` (the reader takes its parts as inputs)."""
        if name in self.tensors:
            if self.tensors[name].parts and not parts:
                raise Unsupported(node, f"reads {name}, a concatenation of flattened maps; "
                                  "only Gemm and MatMul read it")
            return self.tensors[name]
        if name in self.ignored:
            raise Unsupported(node, f"reads {name}, which Ignore= leaves out")
        if name in self.graph.constants:
            raise Unsupported(node, f"reads the constant {name} where n2prune needs data")
        raise Unsupported(node, f"reads {name}, which no node makes")

    def spatial(self, node, name):
        """``tensor`` of a map: a flattened view is refused (its layout is not a map's)."""
        x = self.tensor(node, name)
        if x.flat:
            raise Unsupported(node, f"reads {name}, the flattened view of a "
                              f"{'x'.join(map(str, x.shape))} map; only Gemm and MatMul read it")
        return x

    def const(self, node, index):
        """The constant input ``index`` of ``node`` (None when absent); data is refused."""
        if index >= len(node.inputs) or not node.inputs[index]:
            return None
        name = node.inputs[index]
        if name not in self.graph.constants:
            raise Unsupported(node, f"input {index} ({name}) must be a constant (an initializer)")
        return self.graph.constants[name]

    def weight(self, node, index, ndim):
        """Constant input ``index`` as float32, required, of ``ndim`` dimensions."""
        value = self.const(node, index)
        if value is None:
            raise Unsupported(node, f"input {index} is missing")
        if value.dtype.kind not in "fiu" or value.ndim != ndim:
            raise Unsupported(node, f"input {index} ({node.inputs[index]}) should be a "
                              f"{ndim}-D numeric tensor, got {value.dtype} {value.shape}")
        return np.asarray(value, dtype=np.float32)

    def scalar(self, node, index):
        """Constant input ``index`` as one float (None when absent)."""
        value = self.const(node, index)
        if value is None:
            return None
        if value.size != 1:
            raise Unsupported(node, f"input {index} should hold one value, not {value.shape}")
        return float(value.reshape(-1)[0])

    def is_read(self, name):
        return bool(self.readers.get(name)) or name in self.graph.outputs

    # -- making cells and aliases ------------------------------------------

    def add_cell(self, node, type_name, inputs, shape, keys, params=None, arrays=None,
                 name=None, rank=4):
        """A cell of ``type_name`` reading ``inputs`` (Tensors), output (C, H, W) ``shape``;
        its output is the tensor ``name`` (default: the node's first output)."""
        name = name or node.outputs[0]
        if not name or "," in name or ".Target" in name or name in self.tensors:
            raise Unsupported(node, f"its output name {name!r} cannot name a cell (empty, "
                              "holding a comma or .Target, or taken)")
        self.cells[name] = CellSpec(name, type_name, [x.cell for x in inputs], tuple(shape),
                                    {"NbOutputs": shape[0], **keys}, dict(params or {}),
                                    dict(arrays or {}), node.label)
        self.heads[name] = name
        self.tensors[name] = Tensor(name, tuple(shape), rank)
        return self.tensors[name]

    def alias(self, node, x, rank=None):
        """The node's output is ``x``'s data (in ``rank``, default ``x``'s)."""
        self.tensors[node.outputs[0]] = dataclasses.replace(x, rank=rank or x.rank)

    def activate(self, node, function, settings=None):
        """An activation node: fused into the cell of its input when N2D2 would and
        the result is the same, else an Activation cell."""
        keys = {"ActivationFunction": function,
                **{f"ActivationFunction.{k}": v for k, v in (settings or {}).items()}}
        x = self.tensor(node, node.inputs[0])
        spec = self.fusable(x)
        if spec is None:
            self.add_cell(node, "Activation", [x], x.shape, keys, rank=x.rank)
            return
        spec.keys.update(keys)
        self.take_over(node, spec, x)

    def fusable(self, x):
        """The spec of the cell making ``x`` if an activation may go into it: it takes
        one and has none yet, and this node is the only reader of its output."""
        spec = self.cells.get(x.cell)
        if spec is None or "ActivationFunction" in spec.keys:
            return None
        if "ActivationFunction" not in CELL_TYPES[spec.type].key_table:
            return None
        return spec if self.sole_reader(self.heads[spec.name]) else None

    def take_over(self, node, spec, x):
        """The node's output becomes the cell's output (an activation went into it)."""
        self.heads[spec.name] = node.outputs[0]
        self.activations[node.outputs[0]] = spec.name
        self.alias(node, x)

    def sole_reader(self, tensor):
        """True if the current node is the only one reading the data of ``tensor``
        (through renaming nodes), and that data is no output of the graph."""
        found, stack = set(), [tensor]
        while stack:
            name = stack.pop()
            if name in self.graph.outputs:
                return False
            for index in self.readers.get(name, ()):
                node = self.graph.nodes[index]
                if node.op in REDIRECTS:
                    stack.append(node.outputs[0])
                else:
                    found.add(index)
        return found == {self.index}

    def aliases(self):
        """``{tensor name: cell}`` of the tensors that are another name for a cell's output."""
        return {name: t.cell for name, t in self.tensors.items()
                if t.cell in self.cells and name != t.cell}
