"""What a ``PruneCell`` keeps across runs: masks read from files, and its checkpoint.

A mixin of ``prune_cell.PruneCell``: the methods read and set the cell's
``masks``, ``soft``, ``target``, ``schedule``, ``fire_index`` and ``clock``.
"""

import numpy as np

from n2prune.prune import mask_methods


class SavedMasks:
    """``set_masks`` (N2D2's weight files), ``state`` / ``load_state`` (snapshots)."""

    def set_masks(self, masks):
        """Masks read from files (one per tensor, flat order allowed).

        As N2D2's import, the target becomes the measured zero fraction
        (float32); N2D2 reads only tensor 0, n2prune all of them. Gamma goes
        on from there, a ramp from its own start.
        """
        self._load_masks(masks)
        zeros = sum(m.size - np.count_nonzero(m) for m in self.masks)
        total = sum(m.size for m in self.masks)
        self.target = float(np.float32(zeros) / np.float32(total)) if total else 0.0
        self.schedule, self.fire_index = self.schedule.restarted(self.target, self.fire_index)

    def state(self):
        """Arrays and scalars to checkpoint: masks (and soft masks), target, schedule, clock."""
        state = {f"mask{k}": m for k, m in enumerate(self.masks)}
        state.update({f"soft{k}": m for k, m in enumerate(self.soft or [])})
        counter, delay_left = (0, 0) if self.clock is None else (self.clock.counter,
                                                                 self.clock.delay_left)
        state.update(target=self.target, schedule_start=self.schedule.start,
                     fire_index=self.fire_index, counter=counter, delay_left=delay_left)
        return state

    def load_state(self, state):
        """Restore ``state()`` output (after ``initialize`` attached the weights)."""
        self._load_masks([state[f"mask{k}"] for k in range(len(self.weights))])
        self.target = float(state["target"])
        self.fire_index = int(state["fire_index"])
        self.schedule = self._schedule(float(state["schedule_start"]))
        if self.clock is not None:
            self.clock.counter = int(state["counter"])
            self.clock.delay_left = int(state["delay_left"])
        soft = [state[f"soft{k}"] for k in range(len(self.weights)) if f"soft{k}" in state]
        self.soft = [np.asarray(m, dtype=np.float32) for m in soft] or None

    def _load_masks(self, masks):
        """Given masks through the seam (``GivenMask``); whatever was built from the
        old masks is rebuilt (``version``)."""
        given = mask_methods.checked_masks(masks, self.weights)
        self.masks = [mask_methods.GivenMask(mask).compute_mask(None, default, self.target)
                      for mask, default in zip(given, self.masks)]
        self.version += 1
