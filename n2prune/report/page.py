"""The report as one HTML page: no file beside it, no network, no script needed.

Everything read from the run folder (cell names, paths, the INI text) is
HTML-escaped here or in the figure modules before it reaches the page.
"""

import datetime
from html import escape

from n2prune import __version__
from n2prune.report.assets import CSS, SCRIPT
from n2prune.report.charts import sparsity_figure, training_figures
from n2prune.report.masks import mask_figure, mask_legend

SECTIONS = (("facts", "Run"), ("training", "Training"), ("sparsity", "Sparsity"),
            ("costs", "Parameters and MACs"), ("masks", "Masks"), ("config", "Resolved INI"))


def render(data):
    """The page of ``data`` (``collect.RunData``), as text."""
    name = escape(data.path.resolve().name)
    body = {"facts": _facts(data), "training": _training(data),
            "sparsity": _sparsity(data), "costs": _costs(data),
            "masks": _masks(data),
            "config": f'<pre class="ini">{escape(data.config_text)}</pre>'}
    nav = "".join(f'<a href="#{key}">{title}</a>' for key, title in SECTIONS)
    sections = "\n".join(f'<section id="{key}"><h2>{title}</h2>\n{body[key]}\n</section>'
                         for key, title in SECTIONS)
    written = datetime.datetime.now().astimezone().isoformat(sep=" ", timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>n2prune report: {name}</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>n2prune report <span>{name}</span></h1>
<p>{escape(str(data.info["model"]))}</p></header>
<nav>{nav}</nav>
<main>
{sections}
</main>
<footer>written by n2prune {escape(__version__)} on {written} from {escape(str(data.path))}</footer>
<script>{SCRIPT}</script>
</body>
</html>
"""


def _count(value):
    return f"{value:,}"


def _seconds(value):
    minutes, seconds = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else \
        f"{minutes} min {seconds:02d} s" if minutes else f"{value:.1f} s"


def _value(value):
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"
    return "-" if value is None else str(value)


def _summary_facts(summary):
    """``(label, text)`` of summary.json: scores first, then the rest as they come."""
    facts = []
    for key, value in summary.items():
        if key.startswith("test_"):
            facts.insert(0, (f"test {key[5:]}", _value(value)))
        elif key.startswith("best_validation_") and key != "best_validation_epoch":
            epoch = summary.get("best_validation_epoch")
            at = f" (epoch {epoch})" if epoch is not None else ""
            facts.append((f"best validation {key[16:]}", _value(value) + at))
        elif key == "train_seconds" and isinstance(value, (int, float)):
            facts.append(("training time", _seconds(value)))
        elif key == "samples_per_second" and isinstance(value, (int, float)):
            facts.append(("samples per second", f"{value:,.1f}"))
        elif key not in ("best_validation_epoch", "epochs", "steps"):
            facts.append((key.replace("_", " "), _value(value)))
    return facts


def _cards(data):
    """The headline numbers, large."""
    total, summary = data.total, data.summary
    cards = [(_value(v), k.replace("_", " ")) for k, v in summary.items() if k.startswith("test_")]
    if not summary:
        cards.append(("unfinished", "no summary.json yet"))
    cards += [(f"{1 - total['params_effective_ratio']:.1%}", "of the parameters are zero weights"),
              (f"{total['macs_effective_ratio']:.1%}", "of the dense MACs remain (effective)")]
    if isinstance(summary.get("samples_per_second"), (int, float)):
        cards.append((f"{summary['samples_per_second']:,.1f}", "samples per second (training)"))
    return '<div class="cards">' + "".join(
        f'<div class="card"><b>{escape(v)}</b><small>{escape(k)}</small></div>'
        for v, k in cards) + "</div>"


def _facts(data):
    """Headline cards, then two tables: how the run was made, what it gave."""
    info, summary, metrics = data.info, data.summary, data.metrics
    last_step = max((int(r["step"]) for r in metrics.rows), default=0)
    made = [("run folder", str(data.path)), ("model", str(info["model"])),
            ("overrides", ", ".join(info["overrides"]) or "none"), ("seed", str(info["seed"])),
            ("started", data.started or "-"), ("finished", data.finished or "not yet"),
            ("weights shown", data.weights.name)]
    gave = [("epochs", f"{summary.get('epochs', '-')} of {info['epochs']}"),
            ("steps", str(summary.get("steps", last_step))), *_summary_facts(summary),
            ("metrics.csv", f"{len(metrics.rows)} rows")]
    tables = "".join('<table class="facts">' + "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts) + "</table>"
        for facts in (made, gave))
    return f'{_cards(data)}<div class="columns">{tables}</div>'


def _training(data):
    note = ""
    if len(data.metrics.log_rows()) < 2:
        note = ('<p class="note">Few points: metrics.csv gets a row every --log-every steps '
                "and at each epoch end.</p>")
    return f'{note}<div class="charts">{"".join(training_figures(data.metrics))}</div>'


def _sparsity(data):
    """The sparsity curves beside a table of where each pruned cell ended."""
    rows = "".join(
        f'<tr><td>{escape(r["cell"])}</td><td>{escape(str(r["mode"]))}</td>'
        f'<td>{escape(str(r["filler"]))}</td><td class="n">{_threshold(r)}</td>'
        f'<td class="n">{r["mask_sparsity"]:.1%}</td></tr>' for r in data.pruned)
    table = ('<table class="pruning"><tr><th>cell</th><th>mode</th><th>masks by</th><th class="n">threshold</th>'
             f'<th class="n">pruned</th></tr>{rows}</table>') if rows else ""
    return f'<div class="charts">{sparsity_figure(data.metrics)}<div>{table}</div></div>'


def _threshold(row):
    return "-" if row["threshold"] is None else f"{row['threshold']:.4g}"


def _costs(data):
    """Per cell: parameters and MACs dense, effective and, if known, shrunk."""
    shrunk, heading = data.shrunk, "shrunk"
    predicted = any(r["macs_shrunk"] != r["macs_dense"] or r["params_shrunk"] != r["params_dense"]
                    for r in data.costs)
    if shrunk is None and predicted:
        shrunk = {r["cell"]: (r["params_shrunk"], r["macs_shrunk"]) for r in data.costs}
        heading = "after shrink"
    kinds = ("dense", "effective") + ((heading,) if shrunk is not None else ())
    head = "".join(f'<th class="n">{what} {k}</th>' for what in ("params", "MACs") for k in kinds)
    rows = [_cost_row(r, shrunk) for r in data.costs]
    rows.append(_total_row(data.total, shrunk))
    return (f'<table class="costs"><tr><th>cell</th><th>type</th>{head}</tr>{"".join(rows)}'
            f"</table>{_costs_note(data, shrunk, heading)}")


def _cost_row(r, shrunk):
    params = [r["params_dense"], r["params_effective"]]
    macs = [r["macs_dense"], r["macs_effective"]]
    if shrunk is not None:
        params.append(shrunk[r["cell"]][0] if r["cell"] in shrunk else None)
        macs.append(shrunk[r["cell"]][1] if r["cell"] in shrunk else None)
    cells = "".join(f'<td class="n">{"-" if v is None else _count(v)}</td>' for v in params + macs)
    return f'<tr><td>{escape(r["cell"])}</td><td>{escape(r["type"])}</td>{cells}</tr>'


def _total_row(total, shrunk):
    def with_ratio(value, dense):
        return f"{_count(value)} ({value / dense:.1%})" if dense else _count(value)
    values = []
    for what in ("params", "macs"):
        dense = total[f"{what}_dense"]
        values += [_count(dense), with_ratio(total[f"{what}_effective"], dense)]
        if shrunk is not None:
            values.append(with_ratio(sum(v[0 if what == "params" else 1]
                                         for v in shrunk.values()), dense))
    cells = "".join(f'<td class="n">{v}</td>' for v in values)
    return f'<tr class="total"><td>total</td><td></td>{cells}</tr>'


def _costs_note(data, shrunk, heading):
    text = ("MACs per sample (one multiply-add; FLOPs are about twice as many). Effective: "
            "only the weights their masks keep.")
    if shrunk is not None and heading == "shrunk":
        text += f" Shrunk: the model n2prune shrink wrote in {data.path / 'shrunk'}."
    elif shrunk is not None:
        text += (" After shrink: what n2prune shrink would keep (removed channels cut), "
                 "predicted; run it to get the smaller model.")
    return f'<p class="note">{escape(text)}</p>'


def _masks(data):
    if not data.pruned:
        return '<p class="note">No cell of this run is pruned (no QWeight=Prune).</p>'
    figures = "".join(mask_figure(row, data.masks[row["cell"]]) for row in data.pruned)
    return (f'<p class="note">Outputs down, inputs across (input channel, then kernel row and '
            f'column). {mask_legend()}</p><div class="masks">{figures}</div>')
