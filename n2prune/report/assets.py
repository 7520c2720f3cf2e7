"""The report's style sheet and its one optional script, inlined into every page.

The page is whole without the script (SVG charts with tooltips, HTML tables);
the script only adds a read-out of every series at the step under the mouse.
"""

CSS = """
:root { --ink: #1d2433; --muted: #5b6476; --line: #d9dee7; --paper: #ffffff; --band: #f4f6fa;
        --accent: #2f5d9a; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
       sans-serif; color: var(--ink); background: var(--band); }
header { background: var(--ink); color: #fff; padding: 18px 32px 14px; }
header h1 { margin: 0; font-size: 22px; font-weight: 600; }
header h1 span { font-weight: 400; color: #b9c6dc; }
header p { margin: 4px 0 0; color: #b9c6dc; font-size: 13px; word-break: break-all; }
nav { padding: 8px 32px; background: #e8ecf3; border-bottom: 1px solid var(--line);
      font-size: 13px; }
nav a { color: var(--accent); margin-right: 16px; text-decoration: none; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 24px 32px; }
section { background: var(--paper); border: 1px solid var(--line); border-radius: 8px;
          padding: 14px 20px 18px; margin: 16px 0; }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 14px 0 4px; color: var(--ink); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 14px; }
.card { flex: 1 1 150px; background: var(--band); border-radius: 6px; padding: 8px 12px; }
.card b { display: block; font-size: 21px; font-weight: 600; }
.card small { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 10px; border-bottom: 1px solid var(--line); text-align: left; }
th { background: var(--band); font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; border-top: 2px solid var(--ink); }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr));
           gap: 0 24px; align-items: start; }
table.facts { width: 100%; }
table.facts td { word-break: break-all; }
table.facts th { background: none; color: var(--muted); font-weight: 400; width: 190px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 12px; }
figure { margin: 0; }
figcaption { font-size: 13px; color: var(--muted); }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart .grid { stroke: #e6e9ef; }
svg.chart .axis, svg.chart .tickmark { stroke: #8a93a3; }
svg.chart .mark { stroke: #b9c0cc; stroke-dasharray: 2 3; }
svg.chart text { font-size: 11px; fill: var(--muted); }
svg.chart text.title { font-size: 12px; fill: var(--ink); }
svg.chart .series { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
svg.chart .guide { stroke: #6b7385; stroke-width: 1; visibility: hidden; }
.legend { list-style: none; padding: 0; margin: 4px 0 0; font-size: 12px; display: flex;
          flex-wrap: wrap; gap: 4px 14px; }
.legend svg { vertical-align: middle; margin-right: 4px; }
.readout { min-height: 1.4em; font-size: 12px; color: var(--ink); font-variant-numeric: tabular-nums; }
.masks { display: flex; flex-wrap: wrap; gap: 10px 28px; }
.masks figure { max-width: 100%; }
.masks figure > div { overflow-x: auto; }
.masks img { image-rendering: pixelated; border: 1px solid var(--line); display: block; }
.swatch { display: inline-block; width: 11px; height: 11px; border: 1px solid #aab;
          vertical-align: middle; margin: 0 4px 0 10px; }
pre.ini { background: var(--band); padding: 10px 12px; font-size: 12px; max-height: 520px;
          overflow: auto; border-radius: 6px; }
.note { color: var(--muted); font-size: 13px; }
footer { text-align: center; color: var(--muted); font-size: 12px; padding-bottom: 24px; }
"""

# Hover read-out: the value of every series of a chart at the step nearest the mouse.
SCRIPT = """
(function () {
  "use strict";
  function nearest(line, x) {
    var best = -1, points = line.points;
    for (var i = 0; i < points.numberOfItems; i++) {
      if (best < 0 || Math.abs(points.getItem(i).x - x) < Math.abs(points.getItem(best).x - x)) {
        best = i;
      }
    }
    return best;
  }
  document.querySelectorAll("figure.plot").forEach(function (figure) {
    var svg = figure.querySelector("svg.chart"), out = figure.querySelector(".readout");
    var guide = svg && svg.querySelector(".guide");
    var lines = svg ? Array.prototype.slice.call(svg.querySelectorAll("polyline[data-x]")) : [];
    if (!out || !guide || !lines.length) { return; }
    svg.addEventListener("mousemove", function (event) {
      var matrix = svg.getScreenCTM();
      if (!matrix) { return; }
      var p = svg.createSVGPoint();
      p.x = event.clientX; p.y = event.clientY;
      var x = p.matrixTransform(matrix.inverse()).x, at = null, px = 0;
      lines.forEach(function (line) {
        var i = nearest(line, x), point = line.points.getItem(i);
        if (at === null || Math.abs(point.x - x) < Math.abs(px - x)) {
          at = line.dataset.x.split(" ")[i]; px = point.x;
        }
      });
      var parts = ["step " + at];
      lines.forEach(function (line) {
        var i = line.dataset.x.split(" ").indexOf(at);
        if (i >= 0) { parts.push(line.dataset.label + " " + line.dataset.v.split(" ")[i]); }
      });
      out.textContent = parts.join(" \\u00b7 ");
      guide.setAttribute("x1", px); guide.setAttribute("x2", px);
      guide.style.visibility = "visible";
    });
    svg.addEventListener("mouseleave", function () {
      guide.style.visibility = "hidden";
      out.textContent = "";
    });
  });
})();
"""
