"""``n2prune``: train, test and check N2D2-style INI models.

User mistakes (bad INI, missing file, shape mismatch, NaN) print one line and
exit with code 2; ``--debug`` shows the traceback. Ctrl-C during training
saves a snapshot and exits with 130.
"""

import argparse
import logging
import sys
import time

from n2prune import __version__
from n2prune.errors import UserError, escape_text
from n2prune.io.formats import EXPORT_FORMATS, export_help

log = logging.getLogger("n2prune")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2), like every other user error."""

    def error(self, message):
        self.exit(2, f"error: {escape_text(message)} (see {self.prog} --help)\n")


def _whole_number(minimum):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    parse.__name__ = "whole number"
    return parse


def _common(parser):
    parser.add_argument("model", help="the network's INI file")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="override an INI key (repeatable)")
    parser.add_argument("--set-file", action=_SetFile, metavar="FILE",
                        help="every key of an INI file as a --set, in its place on the line "
                             "(e.g. the budget.ini of sensitivity)")
    parser.add_argument("--seed", type=_whole_number(0), default=None,
                        help="random seed, 0 or more (default 1)")
    parser.add_argument("--strict", action="store_true", help="unknown INI keys are errors")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--max-memory", type=_memory, default=None, metavar="SIZE",
                        help="refuse a network whose training would need more than SIZE "
                             "(e.g. 8G, 512M; default: half the physical memory)")


class _SetFile(argparse.Action):
    """``--set-file FILE``: the file's keys join ``--set``'s list where the option stands."""

    def __call__(self, parser, namespace, path, option_string=None):
        from n2prune.ini.overrides import file_overrides
        try:
            found = file_overrides(path)
        except UserError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        namespace.overrides = [*namespace.overrides, *found]


def _fraction(text):
    """An argparse type: a number in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def _ratios(text):
    """An argparse type: comma-separated fractions in (0, 1), sorted, no repeats."""
    return sorted({_fraction(part) for part in text.split(",")})


def _memory(text):
    from n2prune.graph.sizes import parse_memory
    try:
        return parse_memory(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def make_parser():
    parser = _Parser(prog="n2prune", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"n2prune {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True)
    train = verbs.add_parser("train", help="train a model on its database")
    _common(train)
    train.add_argument("--epochs", type=_whole_number(1), default=None, help="epochs to train (default 10)")
    train.add_argument("--steps", type=_whole_number(1), default=None,
                       help="stop after this many batches in total (a short run)")
    train.add_argument("--out", default=None, help="run folder (default runs/<model>)")
    train.add_argument("--log-every", type=_whole_number(1), default=100, help="steps between log lines")
    train.add_argument("--snapshot-every", type=_whole_number(0), default=None, metavar="STEPS",
                       help="steps between snapshots, besides epoch ends and Ctrl-C "
                            "(default 500; 0: epoch ends only)")
    train.add_argument("--resume", metavar="RUN", default=None, help="continue the run in RUN")
    train.add_argument("--weights", metavar="DIR", default=None,
                       help="start from these weights (run folder, .npz or N2D2 folder)")
    train.add_argument("--distributed", action="store_true",
                       help="insist on data-parallel training over MPI (mpirun -n K; on by "
                            "itself when mpirun starts several ranks); needs n2prune[mpi]")
    _iterations(train)
    test = verbs.add_parser("test", help="measure accuracy on the test set")
    _common(test)
    for verb in (train, test):
        _kernel(verb)
    _trained_weights(test)
    check = verbs.add_parser("check", help="parse a model and print its cell graph")
    _common(check)
    check.add_argument("--json", action="store_true",
                       help="machine-readable output (params and MACs: dense, effective, shrunk)")
    inspect = verbs.add_parser("inspect", help="per-cell sparsity and masks of a run")
    inspect.add_argument("run", help="a run folder written by n2prune train")
    inspect.add_argument("--cell", default=None, help="per-output-channel sparsity of one cell")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.add_argument("--check", action="store_true",
                         help="verify each mask follows its QWeight.Pattern (exit 1 if not)")
    inspect.add_argument("--plot", action="store_true",
                         help="write sparsity.png and masks/<cell>.png into the run folder")
    inspect.add_argument("--debug", action="store_true", help="show tracebacks")
    shrink = verbs.add_parser("shrink", help="remove a run's pruned channels: a smaller model")
    shrink.add_argument("run", help="a run folder whose cells pruned channels (Pattern=Channel)")
    shrink.add_argument("--out", default=None, help="folder of the shrunk model (default RUN/shrunk)")
    shrink.add_argument("--debug", action="store_true", help="show tracebacks")
    export = verbs.add_parser("export", help="write a run's network in another format")
    export.add_argument("run", help="a run folder written by n2prune train (or n2prune shrink)")
    export.add_argument("--format", choices=tuple(EXPORT_FORMATS), required=True,
                        help=export_help())
    export.add_argument("--out", default=None, help="file or folder to write")
    export.add_argument("--fold-batchnorm", action="store_true",
                        help="onnx: fold each BatchNorm into the Conv, Deconv or Fc before it "
                             "where that is exact (default: kept as BatchNormalization nodes)")
    export.add_argument("--debug", action="store_true", help="show tracebacks")
    report = verbs.add_parser("report", help="one HTML page about a run: curves, sparsity, "
                                             "masks, costs, INI (no network needed to view it)")
    report.add_argument("run", help="a run folder written by n2prune train")
    report.add_argument("--out", default=None, help="the HTML file (default RUN/report.html)")
    report.add_argument("--debug", action="store_true", help="show tracebacks")
    _sensitivity(verbs)
    _infer(verbs)
    return parser


def _iterations(train):
    train.add_argument("--iterations", type=_whole_number(1), default=None, metavar="K",
                       help="prune -> fine-tune K rounds from --weights, raising the channel-"
                            "pruning cells toward their QWeight.Threshold in equal steps")
    train.add_argument("--finetune-epochs", type=_whole_number(1), default=1, metavar="E",
                       help="epochs of each --iterations round (default 1)")


def _infer(verbs):
    verb = verbs.add_parser("infer", help="classify images, .npy arrays or IDX files "
                                          "with trained weights")
    _common(verb)
    _trained_weights(verb)
    verb.add_argument("inputs", nargs="+", metavar="INPUT",
                      help="image file (PGM/PPM; PNG, JPEG... with Pillow), .npy array "
                           "(HxW, HxWxC, NxHxW or NxHxWxC) or IDX file")
    verb.add_argument("--top", type=_whole_number(1), default=3, metavar="K",
                      help="classes shown per image (default 3)")
    verb.add_argument("--repeat", type=_whole_number(1), default=5, metavar="R",
                      help="timed batch-1 calls; the latency is their median (default 5)")
    verb.add_argument("--json", action="store_true", help="machine-readable output")
    _kernel(verb)


def _trained_weights(verb):
    verb.add_argument("--weights", metavar="RUN", required=True,
                      help="the trained weights (run folder, .npz or N2D2 folder)")


def _kernel(verb):
    verb.add_argument("--kernel", choices=("auto", "dense", "sparse"), default=None,
                      help="GEMMs of pruned cells: dense BLAS, skip kernels, or chosen "
                           "per cell from its sparsity (default: QWeight.Kernel, Auto)")


def _sensitivity(verbs):
    verb = verbs.add_parser("sensitivity", help="accuracy of each cell (channel group) "
                                                "pruned alone; a per-cell budget")
    _common(verb)
    _trained_weights(verb)
    verb.add_argument("--ratios", type=_ratios, default=None, metavar="R,R,...",
                      help="pruning ratios to measure (default 0.1,0.2,...,0.9,0.95)")
    verb.add_argument("--out", default=None, help="folder of the results (default RUN/sensitivity)")
    verb.add_argument("--unstructured", action="store_true",
                      help="prune single weights by magnitude, per cell, instead of channels")
    verb.add_argument("--exclude", type=lambda t: [n for n in t.split(",") if n], default=[],
                      metavar="CELL,...", help="cells never pruned")
    target = verb.add_mutually_exclusive_group()
    target.add_argument("--target-macs", type=_fraction, default=None, metavar="F",
                        help="choose per-group ratios keeping at most F of the dense MACs; "
                             "writes budget.ini")
    target.add_argument("--target-params", type=_fraction, default=None, metavar="F",
                        help="the same for parameters")


class _StderrHandler(logging.Handler):
    """Notices and warnings on whatever ``sys.stderr`` is now, one line each."""

    def emit(self, record):
        prefix = "warning: " if record.levelno >= logging.WARNING else ""
        # Messages quote INI text: escape it, line by line (a \r would hide the prefix).
        lines = record.getMessage().split("\n")
        print(prefix + "\n".join(escape_text(line) for line in lines), file=sys.stderr)


def _setup_logging():
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        log.addHandler(_StderrHandler())
    log.setLevel(logging.INFO)


def main(argv=None):
    """Run one verb; returns the exit code (argparse's own exits included)."""
    try:
        args = make_parser().parse_args(argv)
    except SystemExit as parsed:  # --help, --version, or a one-line usage error
        return parsed.code
    _setup_logging()
    from n2prune import commands
    try:
        return getattr(commands, f"run_{args.verb}")(args)
    except UserError as exc:
        if args.debug:
            raise
        # UserError escapes its message already; str() of a subclass may not.
        print(f"error: {escape_text(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        return 130


def entry_point():
    started = time.perf_counter()
    code = main()
    log.debug("n2prune finished in %.1fs", time.perf_counter() - started)
    sys.exit(code)


if __name__ == "__main__":
    entry_point()
