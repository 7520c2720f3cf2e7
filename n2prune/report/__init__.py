"""``n2prune report RUN``: one self-contained HTML page about a training run.

The run's facts, its loss, score and learning-rate curves, the sparsity of
each pruned cell over time, a picture of each mask, the parameters and MACs
of each cell (dense, effective, shrunk) and the resolved INI. Curves are
inline SVG and masks inline PNG, drawn here with numpy and the standard
library: the page needs no other file, no network and no JavaScript (a small
inline script only adds a hover read-out).

``collect`` reads the run folder, ``metrics`` its metrics.csv, ``charts``,
``svg``, ``masks`` and ``png`` draw, ``page`` writes the HTML.
"""

from pathlib import Path

from n2prune.io.atomic import atomic_open
from n2prune.report.collect import collect
from n2prune.report.page import render
from n2prune.train.runfolder import writing

DEFAULT_NAME = "report.html"


def write_report(run, out=None):
    """Write the report of run folder ``run`` to ``out`` (default ``RUN/report.html``);
    returns the path written."""
    page = render(collect(run))
    out = Path(out) if out else Path(run) / DEFAULT_NAME
    with writing(out), atomic_open(out, "wb") as handle:
        handle.write(page.encode("utf-8"))
    return out


def run_report(args):
    print(f"wrote {write_report(args.run, args.out)}")
    return 0
