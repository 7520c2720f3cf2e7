"""A model loaded from an INI file: the parsed file, its database and its network."""

import logging
from pathlib import Path

from n2prune.errors import IniError, UserError
from n2prune.graph.builder import build_network, unknown_keys
from n2prune.graph.stimuli import read_database
from n2prune.ini import load_ini
from n2prune.prune.pruned_cells import initialize_masks

log = logging.getLogger("n2prune")


class Model:
    """Everything ``train``, ``test`` and ``check`` need from ``MODEL.ini``.

    ``need_data=False`` (``check``) builds the network even when the database
    is missing or unsupported, with a notice instead of an error.
    ``max_memory`` (bytes) bounds the training-memory estimate made before
    anything is allocated (``graph.sizes``); None means half the machine's RAM.
    """

    def __init__(self, ini_path, overrides=(), seed=0, strict=False, need_data=True,
                 max_memory=None):
        self.path = Path(ini_path)
        # load_ini sees the name as given: Path("") would be the current folder.
        self.ini = load_ini(ini_path, overrides)
        self.seed = seed
        db_keys = {}
        self.database = self._database(need_data, db_keys)
        epoch_size = self.partition_size("learn") if self.database else 1
        self.network, self.provider, ctx = build_network(self.ini, seed, epoch_size, max_memory,
                                                         self._images())
        ctx.known_keys.update(db_keys)
        self.rng = ctx.rng
        self.budget = ctx.budget  # the training-memory estimate, per cell
        self.epoch_size = epoch_size
        self._check_classes()
        initialize_masks(self.network, self.rng, epoch_size)
        self._report_unknown(unknown_keys(self.ini, ctx), strict)
        self._cache = {}

    def _check_classes(self):
        """Each target cell scores every class of the database (labels index its outputs)."""
        for target in self.network.targets if self.database else ():
            outputs = self.network.cell(target.cell).output_shape[0]
            if outputs < self.database.nb_classes:
                raise IniError(f"{self.ini.where(target.cell, 'NbOutputs')}: the target cell has "
                               f"{outputs} outputs, the database {self.database.nb_classes} "
                               f"classes; give it at least {self.database.nb_classes}")

    def _database(self, need_data, known_keys):
        try:
            return read_database(self.ini, known_keys, self.seed)
        except UserError as exc:
            if need_data:
                raise
            log.info("notice: %s (the network is still checked)", exc)
            return None

    def _images(self):
        """The database's ``data.ImageInfo``, for the memory estimate (no image decoded)."""
        if self.database is None:
            return None
        return self.database.image_info()

    def _report_unknown(self, messages, strict):
        for message in messages:
            if strict:
                raise IniError(message + " (--strict)")
            log.warning("%s", message)

    def partition_size(self, part):
        return len(self.database.labels(part))

    def stimuli(self, part):
        """``(cached images, labels)`` of a partition, transformed once, uint8 kept."""
        if part not in self._cache:
            images = self.database.images(part)
            self._cache[part] = (self.provider.prepare(images), self.database.labels(part))
        return self._cache[part]
