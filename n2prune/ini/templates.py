"""N2D2 INI templates: a ``[name@file.tpl]`` section is followed by the sections its template writes.

Semantics follow N2D2's ``TemplateParser`` (``src/utils/TemplateParser.cpp``)
and ``IniParser::loadTplIni``:

* the section ``[name]`` itself stays, with its keys; the template is rendered
  with those keys (own and inherited, evaluated) as variables, plus
  ``SECTION_NAME`` (``name``) and ``SECTION_FILE_NAME`` (the template's path);
* ``{{VAR}}`` is replaced by the variable's text (the name is not trimmed);
* ``{% if VAR exists %}``, ``not_exists``, ``== value``, ``!= value``,
  ``{% else %}``, ``{% endif %}``; ``{% set VAR %}text{% endset %}`` sets a
  variable for the rest of the template; ``{% for i in range(a, b) %}`` ...
  ``{% endfor %}``; ``{% include file %}``;
* the rendered text is then read as INI: its sections follow ``[name]``, and
  lines before its first header go to the global section.

The template is rendered before it is read as INI, so ``{{...}}`` and
``{% ... %}`` act inside ``;`` comments too, as in N2D2. Each rendered line
keeps the template file and line it came from (``Source``).
"""

from n2prune.errors import IniError
from n2prune.ini.template_parser import (
    Context,
    parse,
    read_template,
    split_keep_newline,
)

# Far deeper than any real model; a template that writes sections using
# itself would otherwise recurse until Python gives up.
MAX_NESTING = 16


class Source:
    """Where lexed INI text comes from: the INI file, or a template rendered for a section.

    ``includers`` are ``file:line [name@file.tpl]`` of the including headers,
    innermost first; ``origins[n - 1]`` is the (file, line) of rendered line n.
    """

    def __init__(self, file, includers=(), origins=None, templates=()):
        self.file = file
        self.includers = list(includers)
        self.origins = origins
        self.templates = list(templates)

    @property
    def via(self):
        if not self.includers:
            return ""
        return f" (included from {', from '.join(self.includers)})"

    def locate(self, number):
        """(file, line) of lexed line ``number``."""
        if not self.origins:
            return self.file, number
        # The lexer also names the empty line after a final newline.
        return self.origins[min(number, len(self.origins)) - 1]

    def where(self, number):
        file, line = self.locate(number)
        return f"{file}:{line}{self.via}"

    def included(self, path, number, header):
        """The Source of template ``path`` included by the header ``[header]`` at line ``number``."""
        where = f"{self.where(number)} [{header}]"
        resolved = path.resolve()
        if resolved in self.templates:
            raise IniError(f"include loop: {path} is already being included", where)
        if len(self.templates) >= MAX_NESTING:
            raise IniError(f"templates nested more than {MAX_NESTING} deep", where)
        file, line = self.locate(number)
        return Source(str(path), [f"{file}:{line} [{header}]"] + self.includers,
                      templates=self.templates + [resolved])


def split_template_name(name, where):
    """``"conv2.1@x.tpl"`` -> ``("conv2.1", "x.tpl")``; a plain name -> ``(name, None)``.

    As N2D2, the name is split at ``@`` dropping empty parts (``a@@b`` is a
    template). N2D2 keeps a name of one or three parts as a plain section
    name; that is refused here, as surely a mistake.
    """
    if "@" not in name:
        return name, None
    parts = [part for part in name.split("@") if part]
    if len(parts) != 2:
        raise IniError(f"malformed template section [{name}]: write [name@file.tpl]", where)
    return parts[0], parts[1]


def render_file(path, params, source, where):
    """Render template ``path``: (INI text, origins of its lines, names of the variables read).

    ``params`` maps variable names to text; ``source`` (the template's
    Source) names lines in errors; ``where`` is the including header, blamed
    when the file cannot be read.
    """
    nodes = parse(read_template(path, where), str(path), source.via, source.templates)
    context = Context(dict(params), source.via)
    pieces = []
    context.render(nodes, pieces)
    text, origins = rendered_lines(pieces)
    return text, origins, context.read


def rendered_lines(pieces):
    """Join rendered ``(text, (file, line))`` pieces: (text, origin of each line).

    A line's origin is that of its first non-blank piece (a line made of
    ``{{INPUT}}`` comes from where ``{{INPUT}}`` is written).
    """
    lines, origins = [], []
    current, first, solid = [], None, None
    for text, origin in pieces:
        for part in split_keep_newline(text):
            current.append(part)
            first = first or origin
            if solid is None and part.strip():
                solid = origin
            if part.endswith("\n"):
                lines.append("".join(current))
                origins.append(solid or first)
                current, first, solid = [], None, None
    if current:
        lines.append("".join(current))
        origins.append(solid or first)
    return "".join(lines), origins
