"""The run folder: every file a training run leaves behind.

::

    runs/<model>/
      config.ini            the resolved INI (overrides applied, values evaluated)
      run.json              model path, seed, overrides, epochs: what --resume reuses
      train.log             the lines printed while training
      metrics.csv           one row per log line and per epoch end
      summary.json          test_accuracy, best validation accuracy, epochs, timing
      snapshot.npz          weights, solver and RNG state, position (atomic)
      weights.npz, weights/                 final weights (npz and N2D2 files)
      weights_validation.npz, weights_validation/   best-validation weights
"""

import csv
import json
from pathlib import Path

import numpy as np

from n2prune.errors import UserError
from n2prune.io.atomic import atomic_open, atomic_write_text
from n2prune.io.checkpoint import network_arrays
from n2prune.io.syntxt import export_network

METRICS_FIELDS = ("step", "epoch", "loss", "acc", "val_acc", "lr", "seconds", "samples_per_s")


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

    def create(self, config_text, run_info, extra_fields=()):
        if self.file("snapshot.npz").exists():
            raise UserError(f"{self.path}: holds a run already; continue it with --resume {self.path} "
                            "or choose another --out")
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.file("config.ini"), config_text)
        self.write_json("run.json", run_info)
        with open(self.file("metrics.csv"), "w", newline="") as handle:
            csv.writer(handle).writerow(METRICS_FIELDS + tuple(extra_fields))

    def run_info(self):
        try:
            return json.loads(self.file("run.json").read_text())
        except FileNotFoundError:
            raise UserError(f"{self.path}: not a run folder (no run.json)") from None

    def write_json(self, name, obj):
        atomic_write_text(self.file(name), json.dumps(obj, indent=2, sort_keys=True) + "\n")

    def log(self, line):
        with open(self.file("train.log"), "a") as handle:
            handle.write(line + "\n")

    def metrics_fields(self):
        """The columns of ``metrics.csv``, as its header says (runs may add some)."""
        with open(self.file("metrics.csv"), newline="") as handle:
            return next(csv.reader(handle))

    def metrics_row(self, row):
        fields = self.metrics_fields()
        with open(self.file("metrics.csv"), "a", newline="") as handle:
            csv.writer(handle).writerow([row.get(k, "") for k in fields])

    def save_weights(self, network, name):
        """``<name>.npz`` and the N2D2 folder ``<name>/``."""
        arrays = network_arrays(network)
        with atomic_open(self.file(f"{name}.npz"), "wb") as handle:
            np.savez(handle, **arrays)
        export_network(network, self.file(name))
