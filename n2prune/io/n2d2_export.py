"""``export --format n2d2``: a folder N2D2 runs as it is.

``model.ini`` is the run's resolved INI (overrides applied, values
evaluated; a shrunk run's smaller ``model.ini``) and ``weights/`` holds the
cells' ``.syntxt`` files as N2D2's ``-w`` option reads them, masks
included, so ``n2d2 OUT/model.ini -test -w OUT/weights`` tests the run and
``-export CPP`` generates N2D2's own device code from it.
"""

from n2prune.errors import UserError
from n2prune.io.atomic import atomic_write_text
from n2prune.io.syntxt import export_network

CONFIG_NAMES = ("config.ini", "model.ini")  # a training run's, a shrunk run's


def write_n2d2(network, out, run):
    config = next((run / name for name in CONFIG_NAMES if (run / name).is_file()), None)
    if config is None:
        raise UserError(f"{run}: no config.ini or model.ini to export")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; --format n2d2 writes a folder")
    atomic_write_text(out / "model.ini", config.read_text(encoding="utf-8"))
    export_network(network, out / "weights")
    return (f"wrote {out / 'model.ini'} and {out / 'weights'}/ "
            f"(N2D2: n2d2 {out / 'model.ini'} -test -w {out / 'weights'})")
