"""A model loaded from an INI file: the parsed file, its database and its network."""

import logging
from pathlib import Path

import numpy as np

from n2prune.data.stimuli_data import StimuliStats, compute_stats, stimuli_values
from n2prune.errors import CellError, IniError, UserError
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
    StimuliData sections are computed from the data (with ``need_data``;
    placeholders otherwise), or read from ``stimuli_cache/<section>.npz``
    when a run saved them there (``save_stimuli_data``).
    """

    def __init__(self, ini_path, overrides=(), seed=0, strict=False, need_data=True,
                 max_memory=None, stimuli_cache=None):
        self.path = Path(ini_path)
        # load_ini sees the name as given: Path("") would be the current folder.
        self.ini = load_ini(ini_path, overrides)
        self.seed = seed
        db_keys = {}
        self.database = self._database(need_data, db_keys)
        epoch_size = self.partition_size("learn") if self.database else 1
        self.stimuli_cache = Path(stimuli_cache) if stimuli_cache else None
        self._reused = set()
        source = self._stimuli_stats if need_data and self.database else None
        # Without a database, [sp]_EpochSize is a stand-in (None to the build).
        self.network, self.provider, ctx = build_network(
            self.ini, seed, epoch_size if self.database else None, max_memory, self._images(),
            source)
        self.stimuli_stats = ctx.stimuli_stats
        ctx.known_keys.update(db_keys)
        self.rng = ctx.rng
        self.budget = ctx.budget  # the training-memory estimate, per cell
        self.epoch_size = epoch_size
        self._check_classes()
        self._initialize_masks()
        self._report_unknown(unknown_keys(self.ini, ctx), strict)
        self._cache = {}

    def _initialize_masks(self):
        """``initialize_masks``; a cell it refuses is named by file:line where it has a section."""
        try:
            initialize_masks(self.network, self.rng, self.epoch_size)
        except CellError as exc:
            if not self.ini.has_section(exc.cell):
                raise
            raise IniError(exc.message, self.ini.where(exc.cell, exc.key)) from None

    def _check_classes(self):
        """Each label target's cell scores every class of the database (labels index its outputs)."""
        for target in self.network.targets if self.database else ():
            if not target.uses_labels:
                continue
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

    def _stimuli_stats(self, section, transforms, mean_data, std_dev_data):
        """The statistics of a StimuliData section over ``transforms = {partition:
        transforms so far}``: from the cache when it holds them for as many stimuli."""
        path = self.stimuli_cache / f"{section}.npz" if self.stimuli_cache else None
        count = sum(self.partition_size(part) for part in transforms)
        if path is not None and path.is_file():
            stats = StimuliStats.load(path)
            if stats.count == count and (stats.mean_data is not None or not mean_data) and \
                    (stats.std_dev_data is not None or not std_dev_data):
                log.info("[%s] statistics of %d stimuli read from %s", section, count, path)
                self._reused.add(section)
                return stats
            log.info("notice: %s does not match the data (%d stimuli); computing again",
                     path, count)
        rng = np.random.default_rng([self.seed, 2])
        chunks = (values for part, steps in transforms.items()
                  for values in stimuli_values(self.database.images(part), steps, rng))
        stats = compute_stats(chunks, mean_data, std_dev_data)
        log.info("[%s] %d stimuli: values in [%g, %g], mean %g, std. dev. %g", section,
                 stats.count, stats.min_value, stats.max_value, stats.mean, stats.std_dev)
        return stats

    def save_stimuli_data(self, folder):
        """Write the statistics not read from ``folder`` into ``folder/<section>.npz``."""
        folder = Path(folder)
        for section, stats in self.stimuli_stats.items():
            if section not in self._reused or folder != self.stimuli_cache:
                stats.save(folder / f"{section}.npz")

    def partition_size(self, part):
        return len(self.database.labels(part))

    def stimuli(self, part):
        """``(cached images, labels)`` of a partition, transformed once, uint8 kept."""
        if part not in self._cache:
            images = self.database.images(part)
            self._cache[part] = (self.provider.prepare(images, part), self.database.labels(part))
        return self._cache[part]
