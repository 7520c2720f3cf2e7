"""``metrics.csv`` read back for the report: numbers per row, checked, and the
series the charts draw from them.

The training loop writes one row per log line (loss, score, the validation
score of the last epoch end, learning rate, per-cell sparsity) and one row
per epoch end (no loss: the fresh validation score). The epoch-end rows are
the validation curve; the log rows the training curves.
"""

import csv
import dataclasses
import math

from n2prune.errors import UserError
from n2prune.train.runfolder import RunFolder

HINT = "restore the file from a copy, or train the run again"
SPARSITY = "sparsity_"


@dataclasses.dataclass
class Metrics:
    """The rows of ``metrics.csv`` (``{column: float or None}``) and what its header says."""

    fields: list
    rows: list

    @property
    def metric(self):
        """The score column (``acc``, ``mse``), the one with a ``val_`` twin; None if none."""
        return next((f for f in self.fields if f"val_{f}" in self.fields), None)

    @property
    def sparsity_cells(self):
        """The cells whose sparsity has a column, in header order."""
        return [f[len(SPARSITY):] for f in self.fields if f.startswith(SPARSITY)]

    def log_rows(self):
        return [r for r in self.rows if r.get("loss") is not None]

    def epoch_rows(self):
        return [r for r in self.rows if r.get("loss") is None]

    def series(self, column, rows=None):
        """``(steps, values)`` of ``column`` over ``rows`` (default all), one point per
        step (the last row of a step wins), rows without a finite value left out."""
        points = {}
        for row in self.rows if rows is None else rows:
            value = row.get(column)
            if value is not None and math.isfinite(value):
                points[row["step"]] = value
        steps = sorted(points)
        return steps, [points[s] for s in steps]

    def epoch_marks(self):
        """``(step, epoch)`` of each epoch end."""
        return [(r["step"], r["epoch"]) for r in self.epoch_rows() if r.get("epoch") is not None]


def read_metrics(run):
    """``metrics.csv`` of run folder ``run``; a UserError names the line of a bad value."""
    folder = RunFolder(run)
    fields = folder.metrics_fields()
    path = folder.file("metrics.csv")
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            for values in reader:
                if values:
                    rows.append(_row(path, reader.line_num, fields, values))
    except (OSError, ValueError, csv.Error) as exc:
        raise UserError(f"{path}: unreadable ({' '.join(str(exc).split())[:100]}); {HINT}") \
            from None
    return Metrics(fields, rows)


def _row(path, line, fields, values):
    if len(values) != len(fields):
        raise UserError(f"{path}:{line}: {len(values)} values for {len(fields)} columns; {HINT}")
    row = {}
    for field, text in zip(fields, values):
        try:
            row[field] = float(text) if text.strip() else None
        except ValueError:
            raise UserError(f"{path}:{line}: {field} is {text[:40]!r}, not a number; {HINT}") \
                from None
    if row.get("step") is None or not math.isfinite(row["step"]):
        raise UserError(f"{path}:{line}: the row has no step; {HINT}")
    return row
