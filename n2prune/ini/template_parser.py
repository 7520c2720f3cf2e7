"""Template text -> nodes -> rendered pieces, as N2D2's ``TemplateParser``.

A template is cut at ``{% ... %}`` directives; the text between them holds
``{{VAR}}`` substitutions. Every node keeps its (file, line), so the rendered
text can say where each of its lines was written. Errors are IniErrors at
``file:line`` followed by ``via`` (`` (included from ...)``).
"""

from pathlib import Path

from n2prune.errors import IniError
from n2prune.registry import closest

MAX_TEMPLATE_BYTES = 16 * 2 ** 20
# N2D2 has no limit; a mistyped range(0, 1e9) would otherwise hang.
MAX_LOOP = 100_000


def read_template(path, where):
    """The text of template file ``path``; an IniError at ``where`` if it cannot be read."""
    try:
        if Path(path).exists() and not Path(path).is_file():  # /dev/zero, a FIFO: never ends
            raise IniError(f"template file {path} is not a regular file", where)
        if Path(path).stat().st_size > MAX_TEMPLATE_BYTES:
            raise IniError(f"template file {path} is larger than "
                           f"{MAX_TEMPLATE_BYTES >> 20} MiB", where)
        data = Path(path).read_bytes()
    except OSError as error:
        raise IniError(f"cannot read template file {path}: {error.strerror}", where) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def split_keep_newline(text):
    """``text`` cut after each ``\\n`` only (``str.splitlines`` also cuts at ``\\r``...)."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


# -- parsing --------------------------------------------------------------

def parse(text, file, via, including=()):
    """The nodes of template ``text`` (of ``file``): Text, Var, If, Set, For.

    ``including`` are the resolved template files being included, to refuse
    an ``{% include %}`` loop.
    """
    parser = _Parser(via, including)
    for token in _tokens(text, file, via):
        parser.feed(token)
    return parser.finish()


class _Directive:
    """A ``{% word args %}``; args split at spaces, ``(``, ``)`` and ``,`` as N2D2."""

    def __init__(self, control, origin):
        self.origin = origin
        self.args = [arg for arg in _split_any(control, " (),") if arg]


def _split_any(text, separators):
    for separator in separators[1:]:
        text = text.replace(separator, separators[0])
    return text.split(separators[0])


def _tokens(text, file, via):
    """Text, Var and _Directive tokens of ``text``, in order."""
    tokens, pos, line = [], 0, 1
    while True:
        start = text.find("{%", pos)
        code = text[pos:] if start < 0 else text[pos:start]
        tokens += _code_tokens(code, file, line, via)
        line += code.count("\n")
        if start < 0:
            return tokens
        end = text.find("%}", start + 2)
        if end < 0:
            raise IniError("'{%' without a closing '%}'", f"{file}:{line}{via}")
        directive = _Directive(text[start + 2:end], (file, line))
        if not directive.args:
            raise IniError("empty '{% %}'", f"{file}:{line}{via}")
        tokens.append(directive)
        line += text.count("\n", start, end)
        pos = end + 2


def _code_tokens(code, file, line, via):
    """Text pieces (one line at most each) and Var nodes of a stretch between directives."""
    tokens, pos = [], 0
    while True:
        start = code.find("{{", pos)
        text = code[pos:] if start < 0 else code[pos:start]
        for part in split_keep_newline(text):
            tokens.append(Text(part, (file, line)))
            line += part.endswith("\n")
        if start < 0:
            return tokens
        end = code.find("}}", start + 2)
        if end < 0:
            raise IniError("'{{' without a closing '}}'", f"{file}:{line}{via}")
        tokens.append(Var(code[start + 2:end], (file, line)))
        line += code.count("\n", start, end)
        pos = end + 2


class _Parser:
    """Builds the node tree from tokens; ``open`` holds the If/Set/For not yet closed."""

    def __init__(self, via, including):
        self.via = via
        self.including = list(including)
        self.root = []
        self.open = []

    def where(self, origin):
        return f"{origin[0]}:{origin[1]}{self.via}"

    def body(self):
        return self.open[-1].body if self.open else self.root

    def feed(self, token):
        if not isinstance(token, _Directive):
            self.body().append(token)
            return
        handler = _HANDLERS.get(token.args[0])
        if handler is None:
            known = ", ".join(sorted(_HANDLERS))
            raise IniError(f"unknown template directive {{% {token.args[0]} %}} (known: {known})",
                           self.where(token.origin))
        handler(self, token)

    def finish(self):
        if self.open:
            node = self.open[-1]
            raise IniError(f"{{% {node.keyword} %}} is never closed by {{% {node.closer} %}}",
                           self.where(node.origin))
        return self.root

    def push(self, node):
        self.body().append(node)
        self.open.append(node)

    def close(self, token, kind):
        """Pop the innermost open node, which must be a ``kind``; ``token`` closes it."""
        if len(token.args) > 1:
            raise IniError(f"{{% {token.args[0]} %}} takes no argument", self.where(token.origin))
        if not self.open or not isinstance(self.open[-1], kind):
            raise IniError(f"{{% {token.args[0]} %}} without an open {{% {kind.keyword} %}}",
                           self.where(token.origin))
        return self.open.pop()

    def fail(self, message, token):
        raise IniError(message, self.where(token.origin))


def _if(parser, token):
    args = token.args
    if len(args) not in (3, 4) or args[2] not in _TESTS:
        parser.fail("write {% if VAR exists %}, {% if VAR not_exists %}, "
                    "{% if VAR == value %} or {% if VAR != value %}", token)
    parser.push(If(args[1], args[2], args[3] if len(args) == 4 else "", token.origin))


def _else(parser, token):
    # N2D2 turns {% else %} into a second if with the opposite test, evaluated
    # when reached: if the first branch {% set %}s the tested variable, both
    # branches may be rendered. Kept. N2D2 also accepts an {% else %} after an
    # {% endif %} (and a second {% else %}); refused here.
    node = parser.close(token, If)
    if node.is_else:
        parser.fail("a second {% else %} for the same {% if %}", token)
    parser.push(If(node.name, _NEGATION[node.op], node.value, token.origin, is_else=True))


def _set(parser, token):
    if len(token.args) != 2:
        parser.fail("write {% set VAR %}text{% endset %}", token)
    parser.push(Set(token.args[1], token.origin))


def _for(parser, token):
    args = token.args
    if len(args) not in (5, 6) or args[2] != "in" or args[3] != "range":
        # N2D2 silently ignores a third range() argument: refused here.
        parser.fail("write {% for VAR in range(stop) %} or range(start, stop)", token)
    parser.push(For(args[1], args[4], args[5] if len(args) == 6 else None, token.origin))


def _include(parser, token):
    if len(token.args) != 2:
        parser.fail("write {% include FILE %}", token)
    # As N2D2 (a plain ifstream), the path is taken from the working
    # directory, not from the template's folder; nothing is expanded in it.
    path = Path(token.args[1])
    where = parser.where(token.origin)
    resolved = path.resolve()
    if resolved in parser.including:
        raise IniError(f"include loop: {path} is already being included", where)
    text = read_template(path, where)
    parser.body().extend(parse(text, str(path), parser.via, parser.including + [resolved]))


def _unsupported_block(parser, token):
    # N2D2's {% block %} iterates over VAR[0].x, VAR[1].x... that only its
    # C++ code generators define; an INI section cannot.
    parser.fail("{% block %} is not supported in INI templates", token)


def _closer(kind):
    return lambda parser, token: parser.close(token, kind)


class Text:
    def __init__(self, text, origin):
        self.text = text
        self.origin = origin

    def render(self, context, out):
        out.append((self.text, self.origin))


class Var:
    def __init__(self, name, origin):
        self.name = name
        self.origin = origin

    def render(self, context, out):
        out.append((context.get(self.name, self.origin), self.origin))


_TESTS = {
    "exists": lambda actual, value: actual is not None,
    "not_exists": lambda actual, value: actual is None,
    "==": lambda actual, value: actual == value,
    "!=": lambda actual, value: actual != value,
}
_NEGATION = {"exists": "not_exists", "not_exists": "exists", "==": "!=", "!=": "=="}


class If:
    keyword, closer = "if", "endif"

    def __init__(self, name, op, value, origin, is_else=False):
        self.name, self.op, self.value = name, op, value
        self.origin = origin
        self.is_else = is_else
        self.body = []

    def render(self, context, out):
        if self.op in ("==", "!="):
            actual = context.get(self.name, self.origin)  # undefined: an error, as N2D2
        else:
            actual = context.lookup(self.name)
        if _TESTS[self.op](actual, self.value):
            context.render(self.body, out)


class Set:
    keyword, closer = "set", "endset"

    def __init__(self, name, origin):
        self.name = name
        self.origin = origin
        self.body = []

    def render(self, context, out):
        """Set the variable (for the rest of the template) to the body's text."""
        inner = []
        context.render(self.body, inner)
        context.params[self.name] = "".join(text for text, _ in inner)


class For:
    keyword, closer = "for", "endfor"

    def __init__(self, name, start, stop, origin):
        self.name, self.start, self.stop = name, start, stop
        self.origin = origin
        self.body = []

    def render(self, context, out):
        """As N2D2: the loop variable must be new; it counts as a double printed like C++."""
        if self.name in context.params:
            raise IniError(f"loop variable {self.name} already exists", context.where(self.origin))
        start = self._bound(context, self.start)
        stop = self._bound(context, self.stop) if self.stop is not None else None
        if stop is None:
            start, stop = 0.0, start
        if stop - start > MAX_LOOP:
            raise IniError(f"loop of more than {MAX_LOOP} turns", context.where(self.origin))
        value = start
        while value < stop:
            context.params[self.name] = f"{value:g}"
            context.render(self.body, out)
            value += 1
        context.params.pop(self.name, None)

    def _bound(self, context, text):
        """A range bound: the variable of that name if any, else the text itself."""
        found = context.lookup(text)
        try:
            return float(found if found is not None else text)
        except ValueError:
            raise IniError(f"unreadable loop range value {found or text!r}",
                           context.where(self.origin)) from None


_HANDLERS = {
    "if": _if, "else": _else, "endif": _closer(If),
    "set": _set, "endset": _closer(Set),
    "for": _for, "endfor": _closer(For),
    "include": _include,
    "block": _unsupported_block, "endblock": _unsupported_block,
}


class Context:
    """The variables of one rendering, and the names it read (to mark those keys used)."""

    def __init__(self, params, via):
        self.params = params
        self.via = via
        self.read = set()

    def where(self, origin):
        return f"{origin[0]}:{origin[1]}{self.via}"

    def render(self, nodes, out):
        for node in nodes:
            node.render(self, out)

    def lookup(self, name):
        """The variable's text, or None if undefined."""
        if name in self.params:
            self.read.add(name)
            return self.params[name]
        return None

    def get(self, name, origin):
        """The variable's text; an error naming close names if it is undefined."""
        found = self.lookup(name)
        if found is None:
            hint = closest(name, list(self.params))
            extra = f"did you mean {hint}? " if hint else ""
            known = ", ".join(sorted(self.params))
            raise IniError(f"undefined template variable {name!r}; {extra}defined: {known}",
                           self.where(origin))
        return found
