"""The report page as a browser with JavaScript off sees it, parsed with the standard library."""

from html.parser import HTMLParser


class Parsed(HTMLParser):
    """What a browser with JavaScript off has: everything but the script's text."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.ids, self.charts, self.polylines, self.imgs = set(), [], [], []
        self.tables, self.pre, self.scripts, self.resources = [], [], [], []
        self.table_classes = []
        self._in_script, self._cell, self._in_pre = False, None, False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self._in_script = True
            self.scripts.append(attrs)
            return
        self.ids.update([attrs["id"]] if "id" in attrs else [])
        self.resources += [attrs[k] for k in ("src", "href") if k in attrs]
        if tag == "svg" and attrs.get("class") == "chart":
            self.charts.append(attrs)
        elif tag == "polyline":
            self.polylines.append(attrs)
        elif tag == "img":
            self.imgs.append(attrs)
        elif tag == "table":
            self.tables.append([])
            self.table_classes.append(attrs.get("class"))
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "pre":
            self._in_pre = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        elif tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "pre":
            self._in_pre = False

    def handle_data(self, data):
        if self._in_script:
            return
        if self._cell is not None:
            self._cell.append(data)
        if self._in_pre:
            self.pre.append(data)

    def line(self, label):
        return next(p for p in self.polylines if p["data-label"] == label)

    def table(self, kind):
        """The rows of the table of class ``kind``."""
        return self.tables[self.table_classes.index(kind)]

    def facts(self):
        return dict(row for table, kind in zip(self.tables, self.table_classes)
                    if kind == "facts" for row in table)


def points(polyline):
    return [tuple(map(float, p.split(","))) for p in polyline["points"].split()]
