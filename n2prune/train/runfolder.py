"""The run folder: every file a training run leaves behind.

::

    runs/<model>/
      config.ini            the resolved INI (overrides applied, values evaluated)
      run.json              model path, seed, overrides, epochs: what --resume reuses
      train.log             the lines printed while training
      metrics.csv           one row per log line and per epoch end
      summary.json          test_accuracy (test_mse...), best validation one, epochs, timing
      snapshot.npz          weights, solver and RNG state, position (atomic)
      weights.npz, weights/                 final weights (npz and N2D2 files)
      weights_validation.npz, weights_validation/   best-validation weights
      stimuli_data/<section>.npz             StimuliData statistics, reused on resume and test

Every write goes through ``writing``: an ``OSError`` (full disk, read-only
folder) becomes a ``RunWriteError`` that names the file and what to do.
"""

import contextlib
import csv
import errno
import json
import os
from pathlib import Path

import numpy as np

from n2prune.errors import UserError
from n2prune.io.atomic import atomic_open, atomic_write_text, remove_orphan_temps
from n2prune.io.checkpoint import network_arrays
from n2prune.io.syntxt import export_network

STIMULI_DATA = "stimuli_data"
METRICS_FIELDS = ("step", "epoch", "loss", "acc", "val_acc", "lr", "seconds", "samples_per_s")


def metrics_header(column, extra_fields=()):
    """The columns of ``metrics.csv`` for a network scored by ``column`` (``acc``, ``mse``)."""
    named = {"acc": column, "val_acc": f"val_{column}"}
    return tuple(named.get(f, f) for f in METRICS_FIELDS) + tuple(extra_fields)

# Files that grow line by line; a snapshot records their sizes so that a
# resume cuts off the lines of the steps it replays.
APPENDED = ("train.log", "metrics.csv")

_HINTS = {errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some disk space",
          errno.EROFS: "choose a writable --out", errno.EACCES: "choose a writable --out",
          errno.EPERM: "choose a writable --out", errno.ENAMETOOLONG: "choose a shorter --out"}


class RunWriteError(UserError):
    """A file of the run folder could not be written (the message names it)."""


def _reason(exc):
    hint = _HINTS.get(exc.errno, "check the folder")
    return f"{exc.strerror or exc}; {hint}"


@contextlib.contextmanager
def writing(path):
    """Turn an ``OSError`` while writing ``path`` into a one-line ``RunWriteError``."""
    try:
        yield
    except OSError as exc:
        raise RunWriteError(f"{path}: cannot write ({_reason(exc)})") from None


RUN_JSON_HINT = "the run cannot be resumed: start a new run (or restore run.json from a copy)"


def _short(exc, limit=100):
    return " ".join(str(exc).split())[:limit]


def _run_info_problem(info):
    """What is wrong with a ``run.json`` object, or None (the types ``create`` writes)."""
    if not isinstance(info, dict):
        return "not a JSON object"
    missing = [k for k in ("model", "seed", "overrides", "epochs") if k not in info]
    if missing:
        return f"lacks {', '.join(missing)}"
    if not isinstance(info["seed"], int) or isinstance(info["seed"], bool) or info["seed"] < 0:
        return f"seed must be a whole number >= 0, found {_json_short(info['seed'])}"
    epochs = info["epochs"]
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        return f"epochs must be a whole number >= 1, found {_json_short(epochs)}"
    if not isinstance(info["overrides"], list) or \
            not all(isinstance(o, str) for o in info["overrides"]):
        return "overrides must be a list of SECTION.KEY=VALUE strings"
    if not isinstance(info["model"], str):
        return "model must be the INI file's path"
    return None


def _json_short(value, limit=40):
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def new_run_dir(model_path, out=None):
    """``out`` if given, else the first free ``runs/<stem>[-N]``."""
    if out:
        return Path(out)
    stem = Path(model_path).stem
    candidate, n = Path("runs") / stem, 1
    while candidate.exists():
        n += 1
        candidate = Path("runs") / f"{stem}-{n}"
    return candidate


class RunFolder:
    def __init__(self, path):
        self.path = Path(path)

    def file(self, name):
        return self.path / name

    def _refuse_foreign(self):
        """A new run may not mix its files with another run's or with unrelated files."""
        if self.file("snapshot.npz").exists():
            raise UserError(f"{self.path}: holds a run already; continue it with --resume {self.path} "
                            "or choose another --out")
        if self.path.is_dir() and not self.file("run.json").exists() and any(self.path.iterdir()):
            raise UserError(f"{self.path}: not empty and not a run folder (no run.json); "
                            "choose an empty or new --out")

    def prepare(self):
        """Create the folder, prove it is writable and drop temporaries of a killed write."""
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{self.path}: exists and is not a folder; choose another --out")
        probe = self.file(f".write-probe-{os.getpid()}")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with open(probe, "w") as handle:
                handle.write("n2prune\n")
            probe.unlink()
        except OSError as exc:
            raise RunWriteError(f"{self.path}: cannot write a run folder here "
                                f"({_reason(exc)})") from None
        remove_orphan_temps(self.path)

    def create(self, config_text, run_info, extra_fields=(), metric_column="acc"):
        try:
            self._refuse_foreign()
        except OSError as exc:  # a path that cannot even be listed
            raise RunWriteError(f"{self.path}: cannot use as a run folder ({_reason(exc)})") from None
        self.prepare()
        with writing(self.path):
            atomic_write_text(self.file("config.ini"), config_text)
            self.write_json("run.json", run_info)
            self.file("train.log").write_text("")
            self._write_header(metrics_header(metric_column, extra_fields))

    def _write_header(self, fields):
        with open(self.file("metrics.csv"), "w", newline="") as handle:
            csv.writer(handle).writerow(fields)

    def run_info(self):
        """``run.json``, checked: what ``--resume`` trusts to rebuild the run."""
        path = self.file("run.json")
        try:
            info = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"{self.path}: not a run folder (no run.json)") from None
        except (OSError, ValueError, RecursionError) as exc:
            raise UserError(f"{path}: unreadable ({_short(exc)}); {RUN_JSON_HINT}") from None
        problem = _run_info_problem(info)
        if problem:
            raise UserError(f"{path}: {problem}; {RUN_JSON_HINT}")
        return info

    def appended_sizes(self):
        """Bytes in ``train.log`` and ``metrics.csv`` now (kept in each snapshot)."""
        return {name: self.file(name).stat().st_size
                for name in APPENDED if self.file(name).exists()}

    def rewind(self, sizes, extra_fields=(), metric_column="acc"):
        """Cut the appended files back to a snapshot's ``sizes``: a resume replays
        nothing, so their lines after the snapshot would be repeated."""
        with writing(self.path):
            if not self.file("metrics.csv").exists():
                self._write_header(metrics_header(metric_column, extra_fields))
            for name, size in (sizes or {}).items():
                path = self.file(name)
                if name in APPENDED and path.exists() and path.stat().st_size > size:
                    os.truncate(path, size)

    def write_json(self, name, obj):
        with writing(self.file(name)):
            atomic_write_text(self.file(name), json.dumps(obj, indent=2, sort_keys=True) + "\n")

    def log(self, line):
        with writing(self.file("train.log")), open(self.file("train.log"), "a") as handle:
            handle.write(line + "\n")

    def metrics_fields(self):
        """The columns of ``metrics.csv``, as its header says (runs may add some)."""
        path = self.file("metrics.csv")
        try:
            with open(path, newline="") as handle:
                fields = next(csv.reader(handle), None)
        except FileNotFoundError:
            raise UserError(f"{path}: missing; the run folder is incomplete: "
                            "start a new run, or restore the file from a copy") from None
        except (OSError, ValueError, csv.Error) as exc:
            raise UserError(f"{path}: unreadable ({_short(exc)})") from None
        if not fields or "step" not in fields:
            raise UserError(f"{path}: has no header line (step,epoch,...); "
                            "start a new run, or restore the file from a copy")
        return fields

    def metrics_row(self, row):
        fields = self.metrics_fields()
        path = self.file("metrics.csv")
        with writing(path), open(path, "a", newline="") as handle:
            csv.writer(handle).writerow([row.get(k, "") for k in fields])

    def save_weights(self, network, name):
        """``<name>.npz`` and the N2D2 folder ``<name>/``."""
        arrays = network_arrays(network)
        with writing(self.file(f"{name}.npz")), atomic_open(self.file(f"{name}.npz"), "wb") as handle:
            np.savez(handle, **arrays)
        with writing(self.file(name)):
            export_network(network, self.file(name))
