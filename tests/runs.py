"""Training runs for tests: an INI file written out, ``n2prune train`` run in-process."""

import numpy as np

from n2prune import cli


def write_ini(folder, name, text):
    """``text`` saved as ``folder/name``; returns its path."""
    path = folder / name
    path.write_text(text)
    return path


def train(ini, out, *extra, log_every=10):
    """The exit code of ``n2prune train ini --out out`` with the options ``extra``."""
    return cli.main(["train", str(ini), "--out", str(out), "--log-every", str(log_every), *extra])


def trained_run(folder, name, text, *extra, log_every=10):
    """``(ini, run)``: ``text`` saved as ``folder/name``, trained into ``folder/run``."""
    ini, run = write_ini(folder, name, text), folder / "run"
    assert train(ini, run, *extra, log_every=log_every) == 0
    return ini, run


def arrays_of(path):
    """Every array of the npz file ``path``, by name."""
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def assert_same_weights(a, b):
    """Run folders ``a`` and ``b`` saved the same arrays, to the bit."""
    wa, wb = arrays_of(a / "weights.npz"), arrays_of(b / "weights.npz")
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)
