"""The formats of ``n2prune export RUN --format F``: a run's network for another tool.

One row per format: the file (or folder) written when ``--out`` is not given,
the help text, and the writer, imported only when its format is asked for
(ONNX needs the optional ``onnx`` package). A writer takes the loaded network,
the output path and the run folder, and returns the line ``export`` prints;
``needs``, when given, raises the install hint of a missing optional package;
``options`` names the command-line options the writer takes as keywords.
"""

from collections import namedtuple
from importlib import import_module

from n2prune.errors import UserError

ExportFormat = namedtuple("ExportFormat", "default_out help writer needs options",
                          defaults=(None, ()))

EXPORT_FORMATS = {
    "onnx": ExportFormat("model.onnx", "ONNX opset 17, masked weights as exact zeros "
                         "(needs pip install 'n2prune[onnx]')",
                         "n2prune.io.onnx_export:write_onnx", "n2prune.io.onnx_export:require_onnx",
                         ("fold_batchnorm",)),
    "npz": ExportFormat("model.npz", "plain numpy arrays named as the ONNX initializers, "
                        "masks and a JSON description of the cells",
                        "n2prune.io.npz_export:write_npz"),
    "n2d2": ExportFormat("n2d2", "a folder N2D2 runs: model.ini and weights/*.syntxt",
                         "n2prune.io.n2d2_export:write_n2d2"),
    "c": ExportFormat("c", "C99 header and source for microcontrollers, n2prune_model.h/.c "
                      "(weights dense, bitmask or CSR, whichever is smallest per tensor)",
                      "n2prune.io.c_export:write_c"),
}

# Every option a format may take (cli.py declares them on the export verb).
EXPORT_OPTIONS = tuple(sorted({name for fmt in EXPORT_FORMATS.values() for name in fmt.options}))


def function(spec):
    module, function = spec.split(":")
    return getattr(import_module(module), function)


def export_help():
    return "; ".join(f"{name}: {fmt.help} (default RUN/{fmt.default_out})"
                     for name, fmt in EXPORT_FORMATS.items())


def check_options(args, fmt):
    """A format-specific option given for another format is an error, not ignored."""
    for name in EXPORT_OPTIONS:
        if getattr(args, name) and name not in fmt.options:
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} applies to --format "
                            f"{', '.join(k for k, f in EXPORT_FORMATS.items() if name in f.options)}"
                            f", not {args.format}")
