"""``n2prune export RUN --format F``: a run's network written for another tool.

One row per format: the file (or folder) written when ``--out`` is not given,
the help text, and the writer, imported only when its format is asked for
(ONNX needs the optional ``onnx`` package). A writer takes the loaded network,
the output path and the run folder, and returns the line ``export`` prints;
``needs``, when given, raises the install hint of a missing optional package.
"""

from collections import namedtuple
from importlib import import_module
from pathlib import Path

ExportFormat = namedtuple("ExportFormat", "default_out help writer needs", defaults=(None,))

EXPORT_FORMATS = {
    "onnx": ExportFormat("model.onnx", "ONNX opset 17, masked weights as exact zeros "
                         "(needs pip install 'n2prune[onnx]')",
                         "n2prune.io.onnx_export:write_onnx", "n2prune.io.onnx_export:require_onnx"),
    "c": ExportFormat("c", "C99 header and source for microcontrollers, n2prune_model.h/.c "
                      "(weights dense, bitmask or CSR, whichever is smallest per tensor)",
                      "n2prune.io.c_export:write_c"),
}


def _function(spec):
    module, function = spec.split(":")
    return getattr(import_module(module), function)


def export_help():
    return "; ".join(f"{name}: {fmt.help} (default RUN/{fmt.default_out})"
                     for name, fmt in EXPORT_FORMATS.items())


def run_export(args):
    from n2prune.inspect import load_run
    fmt = EXPORT_FORMATS[args.format]
    if fmt.needs:
        _function(fmt.needs)()  # a missing package is the first thing to say, before loading
    write = _function(fmt.writer)
    network, _weights = load_run(args.run)
    out = Path(args.out) if args.out else Path(args.run) / fmt.default_out
    print(write(network, out, Path(args.run)))
    return 0
