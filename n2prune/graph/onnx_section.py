"""``Type=ONNX``: a section importing an ONNX graph as cells, as N2D2's DeepNetGenerator::

    [onnx]
    Input=sp
    Type=ONNX
    File=${N2D2_MODELS}/ONNX/resnet-18-v1/resnet18v1.onnx

The nodes become cells named after their output tensors (``graph/onnx_graph``);
each is written into the INI as a generated section (its Input, Type and
shape keys, never dumped: reading the file again makes them) and built by
the builder like any cell. The user's file reaches them by name, as in
N2D2: ``Input=<tensor>`` in a later cell, ``[<tensor>.Target]``, and a
section ``[<tensor>]`` for what N2D2 reads there (ConfigSection, solvers,
fillers, ``QWeight=Prune``); ``[<onnx>:Conv_def]`` (``Fc_def``,
``Pool_def``, ``BatchNorm_def``, ``Dropout_def``) for the cells of that type
with no section of their own. Weights come from the file (``ONNX_init=0``:
from the fillers), loaded as each cell is built, before any pruning mask.
"""

import dataclasses
import logging

from n2prune.errors import IniError, SettingError, UserError
from n2prune.graph import onnx_ops, onnx_pointwise  # noqa: F401  (they fill OPS)
from n2prune.graph.config import UNSUPPORTED_PREFIXES
from n2prune.graph.keys import construct, read_keys
from n2prune.graph.onnx_graph import Tensor, Translation, Unsupported
from n2prune.graph.stimuli import PROVIDER_SECTIONS, written_refs
from n2prune.ini import expand_env_path, values
from n2prune.io.onnx_import import read_onnx
from n2prune.registry import BOOL, STR, Key, KeyTable, unknown_message

log = logging.getLogger("n2prune")

# N2D2's "<onnx section>:<Type>_def" sections: keys for the cells of that type.
DEF_TYPES = ("Conv", "Fc", "Pool", "BatchNorm", "Dropout")


@dataclasses.dataclass(frozen=True)
class OnnxSettings:
    """The keys of a ``Type=ONNX`` section (N2D2's names and defaults)."""

    file: str
    ignore: str = None
    ignore_input_size: bool = False
    onnx_init: bool = True
    transpose: bool = False
    cntk: bool = False

    def __post_init__(self):
        if self.transpose:
            raise SettingError("transpose", "Transpose=1 (N2D2's swap of height and width for "
                               "graphs exported by TensorFlow) is not supported")
        if self.cntk:
            raise SettingError("cntk", "CNTK=1 (N2D2's merge of CNTK's bias additions into "
                               "the cells) is not supported")


ONNX_KEYS = KeyTable((
    Key("File", "file", STR, "the .onnx model; environment variables are expanded, a relative "
        "path is taken from the INI file's folder"),
    Key("Ignore", "ignore", STR, "space-separated first outputs of nodes to leave out"),
    Key("IgnoreInputSize", "ignore_input_size", BOOL,
        "1: no warning when the graph's declared input size is not the provider's"),
    Key("ONNX_init", "onnx_init", BOOL, "0: the cells start from their fillers, not the file's weights"),
    Key("Transpose", "transpose", BOOL, "N2D2's height/width swap; only 0 is supported"),
    Key("CNTK", "cntk", BOOL, "N2D2's merge of CNTK bias additions; only 0 is supported"),
), sources=(OnnxSettings,))


class Imports:
    """What the ``Type=ONNX`` sections of a file made: ``sections`` (the builder skips
    them), ``aliases`` (``{tensor: cell}``: other names of cells' outputs) and the
    arrays ``load`` puts in each cell as it is built."""

    def __init__(self):
        self.sections = set()
        self.aliases = {}
        self._specs = {}  # cell -> (CellSpec, where, load the arrays?)

    def add(self, spec, where, load):
        """Cell ``spec`` is imported; ``load``: its arrays go into the built cell."""
        self._specs[spec.name] = (spec, where, load)

    def load(self, cell):
        """Put the file's weights (biases, BatchNorm statistics) in ``cell`` if it is imported."""
        spec, where, init = self._specs.get(cell.name, (None, None, False))
        if not init or not spec.arrays:
            return
        arrays, spec.arrays = spec.arrays, {}  # the file's copy is not kept past the build
        if spec.type == "BatchNorm":
            _put(cell, cell.scale, arrays["scales"], where)
            _put(cell, cell.bias, arrays["biases"], where)
            cell.mean[...], cell.variance[...] = arrays["means"], arrays["variances"]
            return
        for param, array in zip(cell.weights, arrays["weights"], strict=True):
            _put(cell, param, array, where)
        if "biases" in arrays and cell.bias is None:
            log.info("notice: %s: [%s] has NoBias=1; the biases of the ONNX file are ignored "
                     "(as N2D2)", where, cell.name)
        elif "biases" in arrays:
            _put(cell, cell.bias, arrays["biases"], where)


def _put(cell, param, array, where):
    if param.value.shape != array.shape:
        raise IniError(f"[{cell.name}] the ONNX file holds {param.name} of shape {array.shape}, "
                       f"the cell's is {param.value.shape} (its inputs differ from the graph's)",
                       where)
    param.value[...] = array
    param.changed()


def import_onnx(ini, ctx, provider_shape):
    """Expand every ``Type=ONNX`` cell section of ``ini`` into generated cell sections.

    ``ctx``: the builder's ``BuildContext`` (known keys, preset ConfigSection
    parameters); ``provider_shape``: the stimuli's (C, H, W).
    """
    imports = Imports()
    for sec in ini.sections():
        if sec.has("Input") and sec.has("Type") and \
                ini.read(sec.name, "Type", values.as_str) == "ONNX":
            _import_section(ini, ctx, sec.name, provider_shape, imports)
    return imports


def _import_section(ini, ctx, name, provider_shape, imports):
    reader = ctx.reader(name)
    reader.known.update(("Input", "Type"))
    kwargs, located = read_keys(ini, written_refs(reader, ONNX_KEYS), ONNX_KEYS,
                                required_at=(name, "Type"))
    settings = construct(OnnxSettings, kwargs, located, ini.where(name, "Type"))
    file_where, written = ini.where(name, "File"), ini.section(name).entry("File")
    path = expand_env_path(settings.file, ini.path.parent if ini.path else None).absolute()
    try:
        graph = read_onnx(path)
    except UserError as exc:
        raise IniError(str(exc), file_where) from None
    inputs = _graph_inputs(ini, name, graph, provider_shape, settings)
    try:
        translation = Translation(graph, inputs, _ignored(ini, name, settings, graph)).run()
    except Unsupported as exc:
        raise IniError(f"{path}: {exc}", file_where) from None
    _write_sections(ini, ctx, name, translation, (written.file, written.line, written.via), path)
    for spec in translation.cells.values():
        imports.add(spec, f"{file_where} ({spec.node})", settings.onnx_init)
    _add_aliases(ini, translation, imports)
    imports.sections.add(name)
    # The run folder's config.ini is read from elsewhere: it names the file absolutely.
    ini.inject(name, "File", str(path))


def _ignored(ini, name, settings, graph):
    """The ``Ignore=`` names, each the first output of a node of ``graph``."""
    ignore = (settings.ignore or "").split()
    outputs = [node.outputs[0] for node in graph.nodes]
    for node_name in ignore:
        if node_name not in outputs:
            raise IniError(unknown_message(f"node output {node_name}", node_name, outputs),
                           ini.where(name, "Ignore"))
    return ignore


def _graph_inputs(ini, name, graph, provider_shape, settings):
    """``{graph input: Tensor}``: the graph's data inputs read the ``Input=`` names in order."""
    names = ini.value(name, "Input").split(",")
    where = ini.where(name, "Input")
    if len(names) != len(graph.inputs):
        raise IniError(f"{len(names)} input(s) for the {len(graph.inputs)} data input(s) of "
                       f"{graph.path} ({', '.join(n for n, _ in graph.inputs)})", where)
    tensors = {}
    for ini_name, (onnx_name, dims) in zip(names, graph.inputs):
        declared = tuple(dims[1:]) if len(dims) == 4 and None not in dims[1:] else None
        if ini_name in PROVIDER_SECTIONS:
            if declared not in (None, tuple(provider_shape)) and not settings.ignore_input_size:
                log.warning("%s: %s declares input %s as %s, the provider gives %s (set "
                            "IgnoreInputSize=1 to silence this)", where, graph.path.name,
                            onnx_name, "x".join(map(str, declared)),
                            "x".join(map(str, provider_shape)))
            tensors[onnx_name] = Tensor(ini_name, tuple(provider_shape), 2 if len(dims) == 2 else 4)
        elif not (ini.has_section(ini_name) and ini.section(ini_name).has("Input")):
            raise IniError(f"{ini_name!r} is neither a cell nor the stimuli provider", where)
        elif declared is None:
            raise IniError(f"{graph.path.name} declares input {onnx_name} with dims {dims}; read "
                           f"from [{ini_name}], it needs a fixed (N, C, H, W)", where)
        else:
            tensors[onnx_name] = Tensor(ini_name, declared)
    return tensors


def _write_sections(ini, ctx, name, translation, where, path):
    """One generated section per cell (or keys added to the user's section of that name)."""
    after = name
    for spec in translation.cells.values():
        loc = (where[0], where[1], f"{where[2]} (ONNX {spec.node})")
        if not ini.has_section(spec.name):
            parent = f"{name}:{spec.type}_def"
            parents = [parent] if spec.type in DEF_TYPES and ini.has_section(parent) else []
            ini.add_generated_section(spec.name, parents, after, loc)
            after = spec.name
        elif ini.section(spec.name).generated:
            raise IniError(f"[{spec.name}] comes from another ONNX import too ({spec.node} of "
                           f"[{name}] makes it): the graphs' tensor names collide",
                           ini.section(spec.name).location)
        elif ini.section(spec.name).has("Input"):
            raise IniError(f"[{spec.name}] is also a cell of the ONNX graph of [{name}] "
                           f"({spec.node}); give the INI cell another name",
                           ini.section(spec.name).location)
        generated = {"Input": ",".join(spec.inputs), "Type": spec.type, **spec.keys, **spec.params}
        written = _activation_sections(ini, spec.name, [
            alias for alias, cell in translation.activations.items() if cell == spec.name])
        if written or ini.section(spec.name).has("ActivationFunction"):
            generated = {k: v for k, v in generated.items() if not _is_activation(k)}
        for key, value in generated.items():
            if ini.section(spec.name).has(key):
                raise IniError(f"{key} is set by the ONNX graph ({spec.node} of {path}); "
                               "remove it", ini.where(spec.name, key))
            ini.generate(spec.name, key, value, loc)
        if not ini.section(spec.name).has("ActivationFunction"):
            for key, (text, where_written) in written.items():
                ini.generate(spec.name, key, text, where_written)
        ctx.preset_params[spec.name] = {param: (spec.name, param) for param in spec.params}


def _is_activation(key):
    return key == "ActivationFunction" or key.startswith("ActivationFunction.")


def _activation_sections(ini, cell, names):
    """``{key: (text, (file, line, via))}`` of the ``ActivationFunction`` keys of the
    sections named after activation nodes fused into ``cell`` (later wins): as N2D2,
    they replace the graph's activation. Other keys there are refused."""
    found = {}
    for name in names:
        if not ini.has_section(name) or ini.section(name).has("Input"):
            continue
        for key in ini.section(name):
            if key.startswith("$"):
                continue
            if not _is_activation(key):
                why = UNSUPPORTED_PREFIXES.get(key.split(".")[0])
                raise IniError(why or f"this activation is fused into cell [{cell}], which "
                               f"reads only ActivationFunction keys here; write {key} in "
                               f"[{cell}]", ini.where(name, key))
            entry = ini.section(name).entry(key)
            found[key] = (ini.value(name, key), (entry.file, entry.line, entry.via))
    return found


def _add_aliases(ini, translation, imports):
    """Other names of the cells' outputs, for ``Input=`` and ``[<name>.Target]``; a
    section of that name for keys would be read by no cell: refused."""
    for alias, cell in translation.aliases().items():
        if ini.has_section(alias) and (ini.section(alias).has("Input")
                                       or alias in translation.activations):
            continue  # an INI cell of that name, or the section of a fused activation
        if ini.has_section(alias):
            raise IniError(f"[{alias}] names tensor {alias} of the ONNX graph, which is the output "
                           f"of cell [{cell}] (an activation or a view fused into it); write its "
                           f"keys in [{cell}]", ini.section(alias).location)
        if alias not in PROVIDER_SECTIONS:
            imports.aliases[alias] = cell

