"""One outer loop, compiled serial and parallel.

A kernel's outer loop is written once, over ``numba.prange``, and compiled
twice: with ``parallel=True`` and without (where ``prange`` is a plain
``range``). Both run the same item code, so they give bit-identical results,
and the caller picks one per call from the amount of work (waking the
thread pool costs more than a small loop).

The serial compilation is made from a copy of the function under its own
qualified name: numba's on-disk cache names an entry by file, qualified
name and line, not by the compile flags, so one function compiled twice
would read back the other compilation's machine code.
"""

import types
from collections.abc import Callable
from typing import NamedTuple

import numba


class Twins(NamedTuple):
    """The two compilations of one loop."""

    serial: Callable
    parallel: Callable

    def pick(self, parallel):
        """The parallel compilation when ``parallel`` is true, else the serial one."""
        return self.parallel if parallel else self.serial


def serial_and_parallel(loop):
    """Decorator: ``loop`` (an outer loop over ``numba.prange``) as ``Twins``."""
    copy = types.FunctionType(loop.__code__, loop.__globals__, f"{loop.__name__}_serial",
                              loop.__defaults__, loop.__closure__)
    copy.__qualname__ = f"{loop.__qualname__}_serial"
    return Twins(numba.njit(cache=True)(copy), numba.njit(parallel=True, cache=True)(loop))
