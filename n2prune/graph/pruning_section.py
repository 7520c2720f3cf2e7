"""``[Pruning]``: ``QWeight=Prune`` for many cells at once (docs/pruning-scope.rst).

A network-level section, not a cell (it has no ``Input=``)::

    [Pruning]
    Cells=*                 ; every Conv and Fc (default), or cell names
    Exclude=Auto            ; Auto: the first Conv and the last Fc; None
    QWeight.Pattern=NM      ; any QWeight.* key, as in a cell section

Each selected cell prunes with these keys, as if it said ``QWeight=Prune``;
its own ``QWeight.*`` keys (cell section or ConfigSection) win. Excluding
the first conv and the classifier by default follows TinyNN's
``skip_last_fc`` and the advice of Torch-Pruning's maintainers.
"""

from n2prune.errors import IniError
from n2prune.ini import values
from n2prune.prune.scope import default_exclusions
from n2prune.registry import unknown_message

SECTION = "Pruning"
PRUNABLE_TYPES = ("Conv", "Fc")
QWEIGHT = "QWeight."


def pruning_section_refs(ini, ctx, cells):
    """``{cell name: {QWeight key: (section, key)}}`` of the cells ``[Pruning]`` selects."""
    if not ini.has_section(SECTION):
        return {}
    reader = ctx.reader(SECTION)
    refs = {}
    for key in ini.section(SECTION):
        if key.startswith(QWEIGHT):
            reader.known.add(key)
            refs[key[len(QWEIGHT):]] = (SECTION, key)
    return {name: dict(refs) for name in _selected(ini, reader, cells)}


def _selected(ini, reader, cells):
    """Names of the cells ``Cells=`` and ``Exclude=`` select, in build order."""
    types = {c.name: c.type_name for c in cells}
    prunable = [c.name for c in cells if c.type_name in PRUNABLE_TYPES]
    chosen = reader.get("Cells", values.as_str, "*").split()
    exclude = reader.get("Exclude", values.enum("Auto", "None"), "Auto")
    if chosen == ["*"]:
        excluded = default_exclusions(list(types), [types[n] for n in types]) \
            if exclude == "Auto" else set()
        return [n for n in prunable if n not in excluded]
    for name in chosen:
        if name not in types:
            raise IniError(unknown_message(f"cell {name}", name, prunable), reader.where("Cells"))
        if types[name] not in PRUNABLE_TYPES:
            raise IniError(f"{reader.where('Cells')}: [{name}] is a {types[name]} cell; only "
                           f"{' and '.join(PRUNABLE_TYPES)} cells have weights to prune")
    return [n for n in prunable if n in chosen]
