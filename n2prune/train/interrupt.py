"""Ctrl-C that waits for the end of the training step.

A step changes many things one after the other: the epoch order and the
data generator (at an epoch's first step), Dropout's generator, every
weight and solver slot, the quantizers' masks. A ``KeyboardInterrupt`` in
the middle of that leaves a state that matches no step counter, so a
snapshot taken then would not resume bit for bit. While ``DeferredInterrupt``
is active, the first SIGINT only sets ``requested``; the loop checks it
between steps, where the state is whole. A second SIGINT raises at once
(the user insists); the loop then keeps the previous snapshot.
"""

import signal
import threading


class DeferredInterrupt:
    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        # Signal handlers can only be installed from the main thread; elsewhere
        # no SIGINT reaches the loop anyway.
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False
