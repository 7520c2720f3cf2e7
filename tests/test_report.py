"""``n2prune report``: one self-contained HTML page, readable without JavaScript,
checked against the run folder it was written from and in a real browser."""

import base64
import csv
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from browser import Chromium
from html_page import Parsed, points
from runs import train, write_ini

from n2prune import cli
from n2prune.inspect import load_run
from n2prune.prune.costs import cell_costs
from n2prune.report.collect import KEPT, PRUNED, mask_states

ARTEFACTS = Path(__file__).parent / "artefacts"
ODD = 'out<i>&"q"'  # a cell name that is also markup

# Two Fc cells on MNIST: fc1 prunes whole channels (so shrink has work), the
# output cell is pruned gradually (its sparsity climbs, epoch by epoch).
TINY = """
[database]
Type=MNIST_IDX_Database
Validation=0.9

[sp]
SizeX=28
SizeY=28
BatchSize=256

[fc1]
Input=sp
Type=Fc
NbOutputs=32
ActivationFunction=Rectifier
WeightsFiller=HeFiller
ConfigSection=common.config
QWeight=Prune
QWeight.PruningMode=Static
QWeight.Pattern=Channel
QWeight.Threshold=0.25

[{out}]
Input=fc1
Type=Fc
NbOutputs=10
ConfigSection=common.config
QWeight=Prune
QWeight.PruningMode=Gradual
QWeight.PruningFiller=IterNonStruct
QWeight.StartThreshold=0.1
QWeight.GammaThreshold=0.2
QWeight.Threshold=0.7
QWeight.StepSizeThreshold=3000

[softmax]
Input={out}
Type=Softmax
NbOutputs=10
WithLoss=1

[softmax.Target]

[common.config]
Solvers.LearningRate=0.2
Solvers.Momentum=0.9
Solvers.LearningRatePolicy=StepDecay
Solvers.LearningRateStepSize=[sp]_EpochSize
Solvers.LearningRateDecay=0.5
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two epochs of 24 steps logged every 5, then shrunk: a finished run folder."""
    folder = tmp_path_factory.mktemp("report")
    ini = write_ini(folder, "tiny.ini", TINY.format(out="fc2"))
    assert train(ini, folder / "run", "--epochs", "2", log_every=5) == 0
    assert cli.main(["shrink", str(folder / "run")]) == 0
    return folder / "run"


@pytest.fixture(scope="module")
def page(run):
    assert cli.main(["report", str(run)]) == 0
    return run / "report.html"


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory):
    """Six steps, no epoch end, a cell and an INI file named with markup characters."""
    folder = tmp_path_factory.mktemp("odd")
    ini = write_ini(folder, "a<b>&c.ini", TINY.format(out=ODD))
    assert train(ini, folder / "run", "--steps", "6", log_every=2) == 0
    return folder / "run"


def metrics_rows(run):
    with open(run / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def by_step(rows, column):
    """``{step: value}`` of the rows where ``column`` has a value."""
    return {int(r["step"]): float(r[column]) for r in rows if r[column]}


def test_the_curves_have_one_point_per_metrics_row(run, page):
    parsed, rows = Parsed(page.read_text()), metrics_rows(run)
    logs = [r for r in rows if r["loss"]]
    epoch_ends = [r for r in rows if not r["loss"]]
    expected = {"training loss": by_step(logs, "loss"), "training accuracy": by_step(logs, "acc"),
                "validation accuracy": by_step(epoch_ends, "val_acc"),
                "learning rate": by_step(rows, "lr"), "fc1": by_step(rows, "sparsity_fc1"),
                "fc2": by_step(rows, "sparsity_fc2")}
    assert len(expected["validation accuracy"]) == 2 and len(expected["training loss"]) >= 10
    for label, values in expected.items():
        line = parsed.line(label)
        assert len(points(line)) == len(values), label
        assert [int(x) for x in line["data-x"].split()] == sorted(values), label
        shown = [float(v.rstrip("%")) / (100 if v.endswith("%") else 1)
                 for v in line["data-v"].split()]
        assert shown == pytest.approx([values[s] for s in sorted(values)], rel=2e-3, abs=6e-4)
    # Higher values are drawn higher (smaller y); later steps further right.
    loss = points(parsed.line("training loss"))
    values = [v for _, v in sorted(expected["training loss"].items())]
    assert np.argmin([y for _, y in loss]) == np.argmax(values)
    assert [x for x, _ in loss] == sorted(x for x, _ in loss)


def test_the_page_has_every_section_and_the_runs_numbers(run, page):
    parsed = Parsed(page.read_text())
    assert {"facts", "training", "sparsity", "costs", "masks", "config"} <= parsed.ids
    assert len(parsed.charts) == 4  # loss, accuracy, learning rate, sparsity
    facts = parsed.facts()
    summary = json.loads((run / "summary.json").read_text())
    assert facts["test accuracy"] == f"{summary['test_accuracy']:.4f}"
    assert facts["steps"] == "48" and facts["epochs"] == "2 of 2" and facts["seed"] == "1"
    assert facts["weights shown"] == "weights.npz"
    assert "".join(parsed.pre) == (run / "config.ini").read_text()


def test_the_cost_table_is_prune_costs_with_the_shrunk_model(run, page):
    table = Parsed(page.read_text()).table("costs")
    assert table[0] == ["cell", "type", "params dense", "params effective", "params shrunk",
                        "MACs dense", "MACs effective", "MACs shrunk"]
    network, _ = load_run(run)
    shrunk = {r["cell"]: r for r in cell_costs(load_run(run / "shrunk")[0])}
    for costs, row in zip(cell_costs(network), table[1:]):
        name = costs["cell"]
        assert row == [name, costs["type"], f"{costs['params_dense']:,}",
                       f"{costs['params_effective']:,}", f"{shrunk[name]['params_dense']:,}",
                       f"{costs['macs_dense']:,}", f"{costs['macs_effective']:,}",
                       f"{shrunk[name]['macs_dense']:,}"]
    assert shrunk["fc1"]["params_dense"] < costs_of(network, "fc1")["params_dense"]
    assert table[-1][0] == "total"


def costs_of(network, name):
    return next(r for r in cell_costs(network) if r["cell"] == name)


def test_each_mask_picture_is_the_cells_mask(run, page):
    network, _ = load_run(run)
    imgs = Parsed(page.read_text()).imgs
    assert len(imgs) == 2
    image = pytest.importorskip("PIL.Image")
    for img, name in zip(imgs, ("fc1", "fc2")):
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        picture = np.array(image.open(io.BytesIO(base64.b64decode(img["src"][len(prefix):]))))
        states = mask_states(network.cell(name))
        assert picture.shape == states.shape
        np.testing.assert_array_equal(picture == 254, states == KEPT)
    # fc1 prunes whole output channels: its rows are all kept or all pruned.
    fc1 = mask_states(network.cell("fc1"))
    assert set(fc1.min(axis=1) == fc1.max(axis=1)) == {True} and (fc1 == PRUNED).any()


def test_the_page_reads_without_javascript(page):
    text = page.read_text()
    bare = re.sub(r"<script\b.*?</script>", "", text, flags=re.DOTALL)
    assert "<script" not in bare and len(bare) < len(text)
    parsed = Parsed(bare)
    assert len(parsed.charts) == 4 and len(parsed.polylines) == 6 and len(parsed.imgs) == 2
    total = parsed.table("costs")[-1]
    assert total[0] == "total" and all(re.fullmatch(r"[\d,]+( \([\d.]+%\))?", v) for v in total[2:])
    assert "[fc1]" in "".join(parsed.pre)


def test_the_page_needs_no_other_file_and_no_network(page):
    text = page.read_text()
    parsed = Parsed(text)
    assert "http://" not in text and "https://" not in text
    assert all(not s.get("src") for s in parsed.scripts) and len(parsed.scripts) == 1
    assert all(r.startswith(("data:image/png;base64,", "#")) for r in parsed.resources)
    assert "<link" not in text and "@import" not in text and "url(" not in text


def test_file_text_is_escaped(odd_run, tmp_path):
    out = tmp_path / "odd.html"
    assert cli.main(["report", str(odd_run), "--out", str(out)]) == 0
    text = out.read_text()
    assert ODD not in text and "a<b>&c" not in text
    assert "out&lt;i&gt;&amp;&quot;q&quot;" in text
    parsed = Parsed(text)
    assert parsed.line(ODD)["data-label"] == ODD  # the sparsity curve, from metrics.csv's header
    assert [ODD, "Fc"] == parsed.table("costs")[2][:2]
    assert "a<b>&c.ini" in "".join(parsed.pre)


def test_a_run_without_epoch_end_has_no_validation_curve(odd_run, tmp_path):
    out = tmp_path / "odd.html"
    assert cli.main(["report", str(odd_run), "--out", str(out)]) == 0
    parsed = Parsed(out.read_text())
    assert len(points(parsed.line("training loss"))) == 3  # steps 2, 4, 6
    assert not [p for p in parsed.polylines if p["data-label"] == "validation accuracy"]


def copy_run(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("shrunk", "report.html"))
    return copy


def test_few_rows_and_an_unfinished_run(run, tmp_path):
    copy = copy_run(run, tmp_path)
    lines = (copy / "metrics.csv").read_text().splitlines()
    (copy / "metrics.csv").write_text(lines[0] + "\n" + lines[1] + "\n")
    (copy / "summary.json").unlink()
    (copy / "weights.npz").unlink()
    assert cli.main(["report", str(copy)]) == 0
    parsed = Parsed((copy / "report.html").read_text())
    assert len(points(parsed.line("training loss"))) == 1
    assert (copy / "report.html").read_text().count('class="dot"') >= 4  # a lone point shows
    facts = parsed.facts()
    assert facts["weights shown"] == "snapshot.npz" and facts["finished"] == "not yet"
    (copy / "metrics.csv").write_text(lines[0] + "\n")
    assert cli.main(["report", str(copy)]) == 0
    assert not Parsed((copy / "report.html").read_text()).polylines


@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / "metrics.csv").write_text("step,epoch,loss\n5,0.2,abc\n"),
     "metrics.csv:2: loss is 'abc', not a number"),
    (lambda r: (r / "metrics.csv").write_text("step,epoch,loss\n5,0.2\n"),
     "metrics.csv:2: 2 values for 3 columns"),
    (lambda r: (r / "metrics.csv").write_text(""), "metrics.csv: has no header line"),
    (lambda r: (r / "metrics.csv").write_bytes(b"step,loss\n\xff\xfe,1\n"), "metrics.csv: unreadable"),
    (lambda r: (r / "metrics.csv").unlink(), "metrics.csv: missing"),
    (lambda r: (r / "summary.json").write_text("[1, 2"), "summary.json: not a JSON object"),
    (lambda r: (r / "run.json").unlink(), "not a run folder (no run.json)"),
])
def test_a_damaged_run_is_one_line(run, tmp_path, capsys, damage, message):
    copy = copy_run(run, tmp_path)
    damage(copy)
    assert cli.main(["report", str(copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (copy / "report.html").exists()


def test_a_missing_run_or_unwritable_out_is_one_line(run, tmp_path, capsys):
    assert cli.main(["report", str(tmp_path / "nosuch")]) == 2
    assert "nosuch: no such run folder" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert cli.main(["report", str(run), "--out", str(tmp_path / "file" / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write" in err[0]


# Dispatches a mouse move over the first chart; what its read-out then says.
HOVER = """(function () {
  var svg = document.querySelector("svg.chart"), box = svg.getBoundingClientRect();
  svg.dispatchEvent(new MouseEvent("mousemove", {clientX: box.left + box.width * 0.6,
                                                 clientY: box.top + box.height / 2}));
  return JSON.stringify({box: [box.left, box.top, box.right, box.bottom],
                         readout: document.querySelector("figure.plot .readout").textContent});
})()"""


def chart_pixels(page, box):
    """The screenshot's pixels inside ``box`` (CSS pixels, device scale 1) as (N, 3)."""
    image = pytest.importorskip("PIL.Image")
    shot = image.open(io.BytesIO(page.screenshot)).convert("RGB")
    return np.array(shot.crop(tuple(round(v) for v in box))).reshape(-1, 3)


@pytest.mark.chromium
def test_chromium_shows_the_curves_without_errors(page):
    ARTEFACTS.mkdir(exist_ok=True)
    with Chromium() as browser:
        shown = browser.load(page.as_uri(), evaluate=HOVER)
        quiet = browser.load(page.as_uri(), javascript=False, evaluate=HOVER)
    for name, loaded in (("report.png", shown), ("report-nojs.png", quiet)):
        (ARTEFACTS / name).write_bytes(loaded.screenshot)
        print(f"screenshot: {ARTEFACTS / name}")
    assert shown.errors == [] and quiet.errors == []
    assert {u.split(":")[0] for u in shown.requests} == {"file", "data"}
    assert shown.requests[0] == page.as_uri()
    hover, still = json.loads(shown.value), json.loads(quiet.value)
    assert hover["readout"].startswith("step ") and "training loss" in hover["readout"]
    assert still["readout"] == ""  # no script ran
    for loaded, seen in ((shown, hover), (quiet, still)):
        pixels = chart_pixels(loaded, seen["box"])
        loss_blue = (np.abs(pixels.astype(int) - (0x44, 0x77, 0xAA)).sum(axis=1) < 40).sum()
        assert loss_blue > 200  # the loss curve is drawn, in its colour
        assert (pixels.min(axis=1) < 200).mean() > 0.01  # and axes, grid, labels
        assert len(np.unique(pixels, axis=0)) > 20


@pytest.mark.chromium
def test_the_browser_check_catches_a_broken_page(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><html><body><p>x</p><img src="missing.png">'
                      '<script>console.error("oops"); undefinedFunction();</script></body></html>')
    with Chromium() as browser:
        errors = browser.load(broken.as_uri()).errors
    assert any("oops" in e for e in errors)
    assert any("undefinedFunction is not defined" in e for e in errors)
    assert any("ERR_FILE_NOT_FOUND" in e and "missing.png" in e for e in errors)
