"""The report's figures from ``metrics.csv``: loss, score, learning rate, sparsity.

Every figure is an inline SVG (``svg.line_chart``), an HTML legend and an
empty read-out line the optional script fills on hover.
"""

from html import escape

from n2prune.graph.targets import ACCURACY, MSE
from n2prune.report.svg import Axis, Series, line_chart

# Paul Tol's colour-blind safe "bright" and "muted" schemes, one after the other.
COLOURS = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377",
           "#332288", "#117733", "#999933", "#882255", "#44AA99", "#DDCC77")
TITLES = {m.column: m.title for m in (ACCURACY, MSE)}
STEP = Axis("step", value=lambda v: f"{v:g}", low=0)


def _percent(v):
    return f"{v:.1%}"


def _percent_ticks(v):
    return f"{v:.0%}"


def figure(title, svg, series, note=""):
    """A ``<figure>``: the chart, its legend and read-out, a caption."""
    legend = "".join(f"<li>{_key(s)}{escape(s.label)}</li>" for s in series)
    note = f' <span class="note">{escape(note)}</span>' if note else ""
    return (f'<figure class="plot"><figcaption><b>{escape(title)}</b>{note}</figcaption>\n{svg}\n'
            f'<ul class="legend">{legend}</ul><div class="readout"></div></figure>')


def _key(s):
    dash = ' stroke-dasharray="5 3"' if s.dashed else ""
    return (f'<svg width="24" height="10" aria-hidden="true"><line x1="1" y1="5" x2="23" y2="5" '
            f'stroke="{s.colour}" stroke-width="2.5"{dash}/></svg>')


def _chart(title, series, y_axis, marks, empty):
    """A figure, or a note when no series has a point (a run stopped before its first log)."""
    series = [s for s in series if s.xs]
    if not series:
        return f'<figure class="plot"><figcaption><b>{escape(title)}</b></figcaption>' \
               f'<p class="note">{escape(empty)}</p></figure>'
    svg = line_chart(series, STEP, y_axis, marks, label=f"{title} against training step")
    return figure(title, svg, series)


def training_figures(metrics):
    """Loss, score (train and validation) and learning rate, against the step."""
    marks = [(step, f"ep {epoch:g}") for step, epoch in metrics.epoch_marks()]
    logs = metrics.log_rows()
    figures = [_chart("Loss", [Series("training loss", *metrics.series("loss", logs), COLOURS[0])],
                      Axis("loss", low=0), marks, "no log line yet")]
    column = metrics.metric
    if column:
        name = TITLES.get(column, column)
        score = [Series(f"training {name}", *metrics.series(column, logs), COLOURS[0]),
                 Series(f"validation {name}", *metrics.series(f"val_{column}",
                                                              metrics.epoch_rows()),
                        COLOURS[1], dashed=True)]
        figures.append(_chart(name.capitalize(), score, Axis(name), marks,
                              "no log line or epoch end yet"))
    lr = Series("learning rate", *metrics.series("lr"), COLOURS[2])
    figures.append(_chart("Learning rate", [lr], Axis("learning rate", low=0), marks,
                          "no log line yet"))
    return figures


def sparsity_figure(metrics):
    """The fraction of each pruned cell's weights its masks zero, against the step."""
    cells = metrics.sparsity_cells
    if not cells:
        return '<p class="note">No pruned cell: metrics.csv has no sparsity column.</p>'
    series = [Series(name, *metrics.series(f"sparsity_{name}"), COLOURS[i % len(COLOURS)],
                     dashed=i >= len(COLOURS))
              for i, name in enumerate(cells)]
    marks = [(step, f"ep {epoch:g}") for step, epoch in metrics.epoch_marks()]
    axis = Axis("sparsity (weights pruned)", ticks=_percent_ticks, value=_percent, low=0, high=1)
    return _chart("Sparsity per cell", series, axis, marks, "no log line yet")
