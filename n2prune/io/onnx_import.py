"""An ONNX model file read into plain Python: nodes, constants, inputs (``onnx`` package).

What the graph layer needs of an ``.onnx`` file, with no INI and no cell in
sight: the nodes in file order (ONNX requires a topological order) with
their attributes as Python values, the constant tensors (initializers and
``Constant`` nodes) as numpy arrays, the data inputs with their declared
shapes, and the opset. N2D2's ``DeepNetGenerator::generateFromONNX`` reads
the same. The file is checked before it is parsed: a missing, empty,
oversized or unparsable file is a one-line ``UserError`` naming it.
"""

import dataclasses
from pathlib import Path

from n2prune.errors import UserError
from n2prune.io.onnx_export import INSTALL_HINT

# N2D2's bound (its protobuf CodedInputStream's SetTotalBytesLimit(1073741824)):
# a larger file is refused before a byte of it is read.
MAX_ONNX_BYTES = 1 << 30


def require_onnx():
    """The ``onnx`` module, or a one-line UserError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise UserError(f"reading an ONNX model needs the onnx package: {INSTALL_HINT}") from None
    return onnx


@dataclasses.dataclass
class OnnxNode:
    """One node: ``op`` (its op_type), ``inputs`` ("" for an omitted optional input),
    ``outputs``, ``attrs`` ``{name: int | float | str | list | numpy array}``."""

    op: str
    name: str
    inputs: list
    outputs: list
    attrs: dict
    domain: str = ""

    @property
    def label(self):
        """How messages name the node: its name, else its first output, and its op."""
        return f"node {self.name or self.outputs[0]!r} ({self.op})"


@dataclasses.dataclass
class OnnxGraph:
    """A model's main graph. ``inputs``: ``[(name, dims)]`` of the data inputs (the
    initializers left out), a dim None when symbolic; ``constants``: ``{name: array}``."""

    path: Path
    opset: int
    nodes: list
    constants: dict
    inputs: list
    outputs: list


def _check_file(path):
    try:
        if not path.exists():
            raise UserError(f"ONNX file not found: {path}")
        if not path.is_file():
            raise UserError(f"{path}: not a regular file (an ONNX model is one .onnx file)")
        size = path.stat().st_size
    except OSError as error:
        raise UserError(f"{path}: cannot read the ONNX file: {error.strerror}") from None
    if size == 0:
        raise UserError(f"{path}: the ONNX file is empty")
    if size > MAX_ONNX_BYTES:
        raise UserError(f"{path}: {size / 2 ** 30:.1f} GiB, larger than the {MAX_ONNX_BYTES >> 30} "
                        "GiB an ONNX model may be (as N2D2); not read")


def read_onnx(path):
    """The ``OnnxGraph`` of the ``.onnx`` file at ``path``."""
    path = Path(path)
    _check_file(path)
    onnx = require_onnx()
    from google.protobuf.message import DecodeError
    try:
        model = onnx.ModelProto.FromString(path.read_bytes())
    except (DecodeError, RuntimeError, ValueError) as error:
        raise UserError(f"{path}: not an ONNX model (cannot parse it: {error})") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read the ONNX file: {error.strerror}") from None
    if model.ir_version < 1 or not model.graph.node:
        # Protobuf accepts many byte strings as an (empty) message.
        raise UserError(f"{path}: not an ONNX model (no IR version or no node)")
    return _graph(onnx, model, path)


def _graph(onnx, model, path):
    graph = model.graph
    constants = {t.name: _array(onnx, t, path) for t in graph.initializer}
    nodes = []
    for proto in graph.node:
        if not proto.output or not proto.output[0]:
            raise UserError(f"{path}: node {proto.name!r} ({proto.op_type}) has no output")
        attrs = {a.name: _attribute(onnx, a, path) for a in proto.attribute}
        if proto.op_type == "Constant" and proto.domain in ("", "ai.onnx") and "value" in attrs:
            constants[proto.output[0]] = attrs["value"]
            continue
        nodes.append(OnnxNode(proto.op_type, proto.name, list(proto.input), list(proto.output),
                              attrs, proto.domain))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    inputs = [(v.name, _dims(v)) for v in graph.input if v.name not in constants]
    return OnnxGraph(path, opset, nodes, constants, inputs, [v.name for v in graph.output])


def _array(onnx, tensor, path):
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        raise UserError(f"{path}: tensor {tensor.name!r} is stored in an external data file, "
                        "which is not supported; save the model as one file")
    try:
        return onnx.numpy_helper.to_array(tensor)
    except (ValueError, TypeError) as error:
        raise UserError(f"{path}: tensor {tensor.name!r} cannot be read: {error}") from None


def _attribute(onnx, attribute, path):
    """An attribute as a Python value: bytes decoded, tensors as arrays."""
    value = onnx.helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, onnx.TensorProto):
        return _array(onnx, value, path)
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8", "replace") for v in value]
    return value


def _dims(value_info):
    shape = value_info.type.tensor_type.shape
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in shape.dim)
