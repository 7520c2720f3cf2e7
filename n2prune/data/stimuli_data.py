"""Statistics of the stimuli, as N2D2's ``StimuliData``: range, mean, std, mean image.

N2D2 computes them over the partitions a ``[sp.StimuliData-X]`` section's
``ApplyTo`` names, on each stimulus as the transformations declared before
that section leave it, and publishes them as keys later sections read
(``[sp.StimuliData-X]_GlobalValue.mean``...). The values follow N2D2's
``StimuliData::generate``:

* a partition with no transformation yet gives its raw pixels (0..255 for
  uint8, ``readRawData``); otherwise uint8 results are divided by 255 (the
  ``Tensor<float>`` conversion of ``readStimulus``) and float ones are kept;
* ``min_value``, ``max_value``, ``mean`` and ``std_dev`` are over every value
  of every stimulus and channel at once (no per-channel statistics), the
  standard deviation with the ``n - 1`` denominator;
* ``mean_data`` / ``std_dev_data`` (N2D2's ``MeanData`` / ``StdDevData``) are
  the per-pixel mean and standard deviation images, ``(H, W, C)`` float64.

``StimuliStats.save`` / ``load`` keep them in a run folder, so a resumed or
tested run reuses the numbers it trained with.
"""

import dataclasses

import numpy as np

from n2prune.errors import DataError
from n2prune.io.atomic import atomic_open

CHUNK = 1024  # stimuli transformed at once


@dataclasses.dataclass
class StimuliStats:
    """What N2D2's StimuliData publishes, over ``count`` stimuli."""

    count: int
    min_value: float
    max_value: float
    mean: float
    std_dev: float
    mean_data: np.ndarray = None
    std_dev_data: np.ndarray = None

    def save(self, path):
        """Write to ``path`` (an ``.npz``), atomically."""
        arrays = {"scalars": np.array([self.count, self.min_value, self.max_value,
                                       self.mean, self.std_dev], dtype=np.float64)}
        for name in ("mean_data", "std_dev_data"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, path):
        """The statistics saved at ``path``; ``DataError`` if it is not such a file."""
        try:
            with np.load(path, allow_pickle=False) as arrays:
                scalars = arrays["scalars"]
                images = {name: arrays[name] for name in ("mean_data", "std_dev_data")
                          if name in arrays}
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path}: unreadable stimuli statistics ({exc}); delete the file "
                            "to compute them again") from None
        if scalars.shape != (5,):
            raise DataError(f"{path}: not a stimuli statistics file; delete it to compute "
                            "them again")
        count, low, high, mean, std = scalars.tolist()
        return cls(int(count), low, high, mean, std, **images)


def placeholder_stats(shape):
    """Statistics standing in when there are no data (``check``): an identity
    normalisation (mean 0, std 1, range [0, 1]) and zero/one images of ``shape``."""
    return StimuliStats(0, 0.0, 1.0, 0.0, 1.0, np.zeros(shape), np.ones(shape))


def stimuli_values(images, transforms, rng, chunk=CHUNK):
    """Chunks of float64 (N, H, W, C) values of ``images`` as N2D2's StimuliData sees them.

    ``transforms`` run in order on each chunk (random ones draw from ``rng``);
    without any, the raw pixels; a uint8 result is divided by 255.
    """
    for start in range(0, len(images), chunk):
        batch = images[start:start + chunk]
        raw = not transforms
        for transform in transforms:
            batch = transform.apply(batch, rng)
        values = batch.astype(np.float64)
        if batch.dtype == np.uint8 and not raw:
            values /= 255.0
        yield values if values.ndim == 4 else values[..., np.newaxis]


def compute_stats(chunks, mean_data=False, std_dev_data=False):
    """``StimuliStats`` of the values in ``chunks`` (see ``stimuli_values``).

    Chunk results are merged with Chan's pairwise formulas, which give the
    same numbers as N2D2's per-stimulus Welford sums (up to rounding).
    """
    count, total_mean, total_m2, low, high = 0, 0.0, 0.0, np.inf, -np.inf
    images, n_images, shape, stimuli = None, 0, None, 0
    for values in chunks:
        if not values.size:
            continue
        n, mean = values.size, float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        delta = mean - total_mean
        total_mean += delta * n / (count + n)
        total_m2 += m2 + delta * delta * count * n / (count + n)
        count += n
        stimuli += len(values)
        low, high = min(low, float(values.min())), max(high, float(values.max()))
        if mean_data or std_dev_data:
            images, n_images = _merge_images(images, n_images, values)
            shape = values.shape[1:]
    if count == 0:
        raise DataError("no stimuli to compute statistics on (the partitions are empty)")
    std = float(np.sqrt(total_m2 / (count - 1))) if count > 1 else 0.0
    stats = StimuliStats(stimuli, low, high, total_mean, std)
    if images is not None:
        mean_image, m2_image = images
        stats.mean_data = mean_image.reshape(shape) if mean_data else None
        if std_dev_data:
            stats.std_dev_data = np.sqrt(m2_image / max(n_images - 1, 1)).reshape(shape)
    return stats


def _merge_images(images, n_images, values):
    """Per-pixel (mean, M2) of ``n_images`` stimuli merged with a chunk's."""
    n = len(values)
    mean = values.mean(axis=0)
    m2 = ((values - mean) ** 2).sum(axis=0)
    if images is None:
        return (mean, m2), n
    old_mean, old_m2 = images
    delta = mean - old_mean
    total = n_images + n
    return (old_mean + delta * n / total, old_m2 + m2 + delta ** 2 * n_images * n / total), total
