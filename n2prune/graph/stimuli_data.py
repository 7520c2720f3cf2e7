"""``[sp.StimuliData-X]`` sections: data statistics that later sections read.

As N2D2's StimuliDataGenerator, a StimuliData section is handled where it
stands in the file: its statistics are those of the stimuli of the
partitions its ``ApplyTo`` names (default ``All``), through the
transformations declared before it (``data.stimuli_data``). They are then
set as keys of the section, which later sections reference::

    [sp.StimuliData-normalize]_GlobalValue.mean     (also .stdDev, .minVal, .maxVal)
    [sp.StimuliData-normalize]_MeanData             (with MeanData=1; also _StdDevData)

The numbers are written as N2D2's ``IniParser::setProperty`` writes them
(6 significant digits), ``_MeanData`` as N2D2's file name
``sp.StimuliData-X/meanData.bin``, which an ``AffineTransformation`` value
resolves to the computed image (``image_values``) instead of a file.
"""

from n2prune.data.provider import APPLY_TO
from n2prune.data.stimuli_data import placeholder_stats
from n2prune.graph.keys import construct, read_keys
from n2prune.registry import BOOL, Key, KeyTable, choice

_IMAGE_FILES = {"mean_data": "meanData.bin", "std_dev_data": "stdDevData.bin"}


def stimuli_data_settings(apply_to="All", mean_data=False, std_dev_data=False,
                          log_size_range=False, log_value_range=False):
    """The settings of a StimuliData section, as a dict of its keywords."""
    return {"partitions": APPLY_TO[apply_to], "mean_data": mean_data,
            "std_dev_data": std_dev_data}


STIMULI_DATA_KEYS = KeyTable((
    Key("ApplyTo", "apply_to", choice(tuple(APPLY_TO)), "the partitions the statistics are over"),
    Key("MeanData", "mean_data", BOOL, "also compute the per-pixel mean image (``_MeanData``)"),
    Key("StdDevData", "std_dev_data", BOOL,
        "also compute the per-pixel standard deviation image (``_StdDevData``)"),
    Key("LogSizeRange", "log_size_range", BOOL, "accepted, no effect (N2D2 plots sizes)"),
    Key("LogValueRange", "log_value_range", BOOL, "accepted, no effect (N2D2 plots values)"),
), sources=(stimuli_data_settings,))


def read_stimuli_data(ini, section, known, steps, source, start_shape, image_values):
    """Compute (or take from ``source``) the statistics of ``section`` and set its keys.

    ``steps(part)`` gives the transforms declared so far for partition
    ``part``; ``source(section, {part: transforms}, mean_data=, std_dev_data=)``
    returns a ``StimuliStats`` (``Model`` computes or loads them); without a
    source (no data: ``check``) placeholders of the shape the transforms give
    ``start_shape`` stand in. Computed images are added to ``image_values``.
    """
    known.update(STIMULI_DATA_KEYS.names())
    refs = {key.name: (section, key.name) for key in STIMULI_DATA_KEYS
            if ini.section(section).has(key.name)}
    kwargs, located = read_keys(ini, refs, STIMULI_DATA_KEYS)
    settings = construct(stimuli_data_settings, kwargs, located, ini.where(section, "ApplyTo"))
    by_part = {part: steps(part) for part in settings["partitions"]}
    if source is None:
        shape = start_shape
        for transform in by_part[settings["partitions"][0]]:
            shape = transform.output_shape(shape)
        stats = placeholder_stats(shape)
    else:
        stats = source(section, by_part, mean_data=settings["mean_data"],
                       std_dev_data=settings["std_dev_data"])
    for name, value in (("minVal", stats.min_value), ("maxVal", stats.max_value),
                        ("mean", stats.mean), ("stdDev", stats.std_dev)):
        ini.inject(section, f"_GlobalValue.{name}", f"{value:#.6g}")
    for attr, file_name in _IMAGE_FILES.items():
        image = getattr(stats, attr)
        if settings[attr] and image is not None:
            key = "_MeanData" if attr == "mean_data" else "_StdDevData"
            ini.inject(section, key, f"{section}/{file_name}")
            image_values[f"{section}/{file_name}"] = image
    return stats
