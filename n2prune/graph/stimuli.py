"""``[database]``, the stimuli provider ``[sp]`` and its transformation sections.

A database and a transformation are named by ``Type=`` in the ``DATABASES``
and ``TRANSFORMATIONS`` registries, and their keys read against the key
table of the member; ``[sp]``'s keys are ``PROVIDER_KEYS``. Keys none of
them declare are left to the unknown-key report (a warning, or an error
with ``--strict``).
"""

import math
import re

from n2prune import data
from n2prune.data.imagelist import describe_sizes
from n2prune.data.provider import (
    APPLY_TO,
    PARTITIONS,
    PREPARE_CHUNK,
    chunk_size,
    shapes_through,
)
from n2prune.errors import DataError, IniError, SettingError, UserError
from n2prune.graph import sizes
from n2prune.graph.keys import construct, place, read_keys
from n2prune.graph.reader import SectionReader
from n2prune.graph.stimuli_data import read_stimuli_data
from n2prune.ini import expand_env_path, values
from n2prune.registry import BOOL, SIZE, STR, Key, KeyTable, UnknownName, vector


def provider_settings(size_x=None, size_y=None, nb_channels=1, size=None, batch_size=1,
                      composite_stimuli=False, cache_path=None):
    """``((height, width, channels), batch_size)`` of ``[sp]``, as N2D2's StimuliProvider.

    ``size`` is N2D2's ``Size=W H [C]``, written instead of the three others;
    ``composite_stimuli`` and ``cache_path`` are accepted and change nothing.
    """
    if size is not None:
        if len(size) not in (2, 3):
            raise SettingError("size", "expected 'width height [channels]' (no depth: 2-D only)")
        return (size[1], size[0], size[2] if len(size) == 3 else 1), batch_size
    for setting, value in (("size_y", size_y), ("size_x", size_x)):
        if value is None:
            raise SettingError(setting, "missing required key (or write Size=W H [C])")
    return (size_y, size_x, nb_channels), batch_size


PROVIDER_KEYS = KeyTable((
    Key("SizeX", "size_x", SIZE, "input width after the transformations (required without Size)"),
    Key("SizeY", "size_y", SIZE, "input height after the transformations (required without Size)"),
    Key("NbChannels", "nb_channels", SIZE, "input channels"),
    Key("Size", "size", vector(SIZE), "``W H`` or ``W H C``, instead of the three above (no depth)"),
    Key("BatchSize", "batch_size", SIZE, "stimuli per batch"),
    Key("CompositeStimuli", "composite_stimuli", BOOL, "accepted, no effect"),
    Key("CachePath", "cache_path", STR, "accepted, no effect"),
), sources=(provider_settings,))
# ``Size`` wins over the separate sizes, which are then reported as not used.
_SEPARATE_SIZES = ("SizeX", "SizeY", "NbChannels")

PROVIDER_SECTIONS = ("sp", "cenv", "env")
# N2D2's StimuliProviderGenerator: the kind is the name before "Transformation".
_TRANSFORM_RE = re.compile(r"^(?P<sp>sp|cenv|env)\.(?P<channel>Channels?)?(?P<fly>OnTheFly)?"
                           r"Transformation")
_STIMULI_DATA_RE = re.compile(r"^(?P<sp>sp|cenv|env)\.StimuliData")
_UNSUPPORTED_RE = re.compile(r"^(sp|cenv|env)\.Adversarial")


def provider_section(ini):
    """The stimuli provider's section: ``[cenv]``, else ``[env]``, else ``[sp]``, as N2D2.

    An ``[env]`` is N2D2's spiking Environment, which with a Frame model is an
    ordinary stimuli provider; its spike-coding parameters are refused.
    """
    for name in ("cenv", "env", "sp"):
        if ini.has_section(name):
            return name
    raise IniError("missing [sp] section (the stimuli provider); add one, "
                   "e.g. [sp] with Size=28 28 1", ini.end_where())


def written_refs(reader, table):
    """``{name: (section, name)}`` of the keys of ``table`` written in the reader's
    section; every key of the table is declared, for the unknown-key report."""
    return {key.name: (reader.section, key.name) for key in table if reader.has(key.name)}


def read_provider(reader):
    """``((height, width, channels), batch_size)`` from the provider section's keys."""
    refs = written_refs(reader, PROVIDER_KEYS)
    if "Size" in refs:
        for name in _SEPARATE_SIZES:
            refs.pop(name, None)
    kwargs, located = read_keys(reader.ini, refs, PROVIDER_KEYS)
    # An unwritten key a setting blames is reported at its section's line.
    where = {key.attr: reader.where(key.name) for key in PROVIDER_KEYS} | located
    return construct(provider_settings, kwargs, where, reader.where("Size"))


def _transform(ini, section, known, image_values):
    """``(transform, partitions)`` of a transformation section."""
    reader = SectionReader(ini, section, known)
    name = reader.get("Type", values.as_str)
    transformation = data.TRANSFORMATIONS.lookup(name, place(ini, section, "Type"))
    apply_to = reader.get("ApplyTo", values.enum(*APPLY_TO), "All")
    table = transformation.key_table
    kwargs, located = read_keys(ini, written_refs(reader, table), table,
                                required_at=(section, "Type"))
    if transformation is data.Affine:
        for attr in ("first_value", "second_value"):
            if attr in kwargs:
                kwargs[attr] = _image_value(ini, kwargs[attr], image_values)
    return construct(transformation, kwargs, located, ini_where(ini, section)), APPLY_TO[apply_to]


def _image_value(ini, text, image_values):
    """An AffineTransformation value: an image a StimuliData section computed, or a
    file (relative to the INI file's folder)."""
    if text in image_values:
        return image_values[text]
    return expand_env_path(text, ini.path.parent)


def read_transforms(ini, sp_name, known_keys, size, stats_source=None):
    """Transformations of the provider in file order: (cached, on-the-fly, channels).

    The first two lists hold ``(section name, transform, partitions)``
    triples; ``channels`` holds, per stimulus channel, a ``(cached,
    on_the_fly)`` pair of such lists (``_add_channel_step``).
    ``[sp.StimuliData*]`` sections are computed where they stand
    (``graph.stimuli_data``), from ``stats_source`` or, without one,
    placeholders for stimuli of ``size``. Returns ``(cached, on_the_fly,
    channels, stats)``, ``stats`` the ``{section: StimuliStats}`` computed.
    """
    cached, on_the_fly, channels, stats, image_values = [], [], [], {}, {}

    def steps(part):
        return [t for _, t, parts in cached + on_the_fly if part in parts]

    for sec in ini.sections():
        if sec.name.split(".", 1)[0] != sp_name:
            continue
        if _UNSUPPORTED_RE.match(sec.name):
            raise IniError(f"{sec.location} [{sec.name}]: adversarial attacks are not "
                           "supported by n2prune (remove the section)")
        known = known_keys.setdefault(sec.name, set())
        if _STIMULI_DATA_RE.match(sec.name):
            stats[sec.name] = read_stimuli_data(ini, sec.name, known, steps, stats_source,
                                                size, image_values)
        elif found := _TRANSFORM_RE.match(sec.name):
            step = (sec.name, *_transform(ini, sec.name, known, image_values))
            if found["channel"]:
                _add_channel_step(SectionReader(ini, sec.name, known), found, step, channels)
            else:
                (on_the_fly if found["fly"] else cached).append(step)
    return cached, on_the_fly, channels, stats


def _add_channel_step(reader, kind, step, channels):
    """File a ``Channel*`` / ``Channels*`` transformation ``step`` as N2D2's StimuliProvider.

    ``ChannelTransformation`` without ``Channel=`` opens a new channel with
    it (channels are numbered from 0 in file order); with ``Channel=N`` it
    joins channel N's pipeline. ``ChannelsTransformation`` joins every
    channel opened so far. ``OnTheFly`` puts it among the channel's per-batch
    steps, which run after all of its cached ones.
    """
    slot = 1 if kind["fly"] else 0
    if kind["channel"] == "Channels":
        if not channels:
            raise IniError(f"{ini_where(reader.ini, reader.section)}: no channel to apply it to; "
                           "channels are opened by the ChannelTransformation sections without "
                           "Channel= written before it")
        for pipeline in channels:
            pipeline[slot].append(step)
        return
    if not reader.has("Channel"):
        channels.append(([], []))
        channels[-1][slot].append(step)
        return
    index = reader.get("Channel", values.as_uint)
    if index >= len(channels):
        opened = f"0 to {len(channels) - 1}" if channels else "none yet"
        raise reader.error("Channel", f"channel {index} does not exist (opened so far: "
                           f"{opened}); a ChannelTransformation without Channel= opens the next")
    channels[index][slot].append(step)


def build_provider(ini, known_keys, max_memory=None, images=None, stats_source=None):
    """The ``StimuliProvider`` described by ``[sp]`` and its transformations.

    Returns ``(section name, provider, budget, stats)``: a ``MemoryBudget``
    of ``max_memory`` bytes already charged with the data path (see
    ``charge_stimuli``; ``images`` is passed on to it), and the StimuliData
    statistics (``read_transforms``; ``stats_source`` is passed on to it).
    """
    name = provider_section(ini)
    reader = SectionReader(ini, name, known_keys.setdefault(name, set()))
    (height, width, channels), batch_size = read_provider(reader)
    if reader.has("ConfigSection"):
        raise reader.error("ConfigSection", "stimuli provider parameters (quantization...) "
                           "are not supported")
    cached, on_the_fly, pipelines, stats = read_transforms(
        ini, name, known_keys, (height, width, channels), stats_source)
    # As N2D2, channel pipelines make the stimulus: one channel each, NbChannels aside.
    size = (height, width, len(pipelines) or channels)
    provider = data.StimuliProvider(size=size, batch_size=batch_size,
                                    transforms=[(t, p) for _, t, p in cached],
                                    on_the_fly=[(t, p) for _, t, p in on_the_fly],
                                    channels=[([(t, p) for _, t, p in fixed],
                                               [(t, p) for _, t, p in fly])
                                              for fixed, fly in pipelines])
    budget = sizes.MemoryBudget(max_memory, batch_size)
    steps = [(s, t) for s, t, _ in cached + on_the_fly]
    charge_stimuli(reader, provider, steps, budget, images)
    check_sizes(reader, provider, steps, images)
    return name, provider, budget, stats


def charge_stimuli(reader, provider, steps, budget, images=None):
    """Charge the input batch and the data path, before any image is transformed.

    ``steps`` are the ``(section, transform)`` pairs in the order they run;
    ``images`` is the database's ``data.ImageInfo`` (all partitions), or
    None when there is no database (``check``): then the images are taken
    to be of the ``[sp]`` size, a full chunk of them.
    """
    height, width, channels = provider.size
    size_key = "Size" if reader.has("Size") else ("SizeX" if width >= height else "SizeY")
    key = "BatchSize" if provider.batch_size > max(height, width) else size_key
    budget.charge(reader.section, sizes.cell_bytes(0, (channels, height, width), provider.batch_size),
                  reader.where(key), f"input batches of {provider.batch_size} "
                  f"{width}x{height}x{channels} stimuli")
    if steps:
        _charge_transforms(reader.ini, provider, steps, budget, images)


def _charge_transforms(ini, provider, steps, budget, images):
    """The largest transformation in flight, plus the images held in memory
    (the database's and the cache of the leading cacheable transformations),
    for the partition whose transformations (``ApplyTo``) need the most."""
    count, shape = images[:2] if images else (0, provider.size)
    shape = tuple(shape) + (1,) * (3 - len(shape))  # (H, W) grey images have one channel
    # Image files are decoded chunk by chunk (or batch by batch), never all held.
    resident = not images or images.resident
    charges = []
    for part in PARTITIONS:
        mine = _steps_of(provider, part, steps)
        if mine:
            charges.append(_partition_charge(ini, provider, part, mine, count, shape, resident))
    if not charges:
        return
    nbytes, held, section, in_flight, out = max(charges, key=lambda c: c[0] + c[1])
    key = "Width" if out[1] >= out[0] else "Height"
    key = key if ini.section(section).has(key) else "Type"  # a transformation without sizes
    budget.charge("data", nbytes + held, ini.where(section, key),
                  f"{in_flight} images of {out[1]}x{out[0]}x{out[2]} in float32 at once, "
                  f"{sizes.format_bytes(held)} of uint8 images held")


def _steps_of(provider, part, steps):
    """The ``(section, transform)`` pairs of ``steps`` partition ``part`` runs (``ApplyTo``)."""
    return [(s, t) for s, t in steps if any(t is x for x in provider.steps(part))]


def _partition_charge(ini, provider, part, steps, count, shape, resident):
    """``(peak bytes, held bytes, section, images in flight, output shape)`` of one
    partition's ``steps``, for ``count`` images of ``shape`` (held in memory when
    ``resident``)."""
    cached = provider.pipeline(part)[0]
    chunk = min(chunk_size(shapes_through(cached, shape)), count or PREPARE_CHUNK)
    held, peak = count * math.prod(shape) if resident else 0, None
    for section, transform in steps:
        try:
            out = transform.output_shape(shape)
        except UserError as exc:
            raise IniError(f"{ini_where(ini, section)}: {exc}") from None
        is_cached = any(transform is t for t in cached)
        in_flight = chunk if is_cached else provider.batch_size
        nbytes = sizes.transform_bytes(in_flight, shape, out)
        if peak is None or nbytes > peak[0]:
            peak = (nbytes, section, in_flight, out)
        held += count * math.prod(out) if cached and transform is cached[-1] else 0
        shape = out
    return peak[0], held, *peak[1:]


def _walk_shapes(ini, steps, shape):
    """The (H, W, C) output of the transformations ``steps`` for an input of ``shape``."""
    shape = tuple(shape) + (1,) * (3 - len(shape))
    for section, transform in steps:
        try:
            shape = transform.output_shape(shape)
        except UserError as exc:
            raise IniError(f"{ini_where(ini, section)}: {exc}") from None
    return tuple(shape)


def check_sizes(reader, provider, steps, images):
    """Images that differ in size must come out of each partition's transformations
    one size.

    Only for image files (``images.resident`` false). When the
    transformations give one size whatever the input (Rescale, PadCrop), no
    file is opened; otherwise every image's header is read and images of
    several sizes left several sizes are an error at the provider's line.
    """
    if not images or images.resident:
        return
    first = tuple(images.shape) + (1,) * (3 - len(images.shape))
    other = (first[0] + 7, first[1] + 5, first[2])
    varying = [mine for mine in (_steps_of(provider, part, steps) for part in PARTITIONS)
               if _walk_shapes(reader.ini, mine, first) != _walk_shapes(reader.ini, mine, other)]
    if not varying:
        return
    seen = images.sizes()
    for mine in varying:
        if len({_walk_shapes(reader.ini, mine, shape) for shape in seen}) > 1:
            raise IniError(f"{ini_where(reader.ini, reader.section)}: the images of the database "
                           f"are of {len(seen)} sizes ({describe_sizes(seen)}) and the "
                           "transformations do not make them one size; add a "
                           "RescaleTransformation or PadCropTransformation")


def ini_where(ini, section):
    sec = ini.section(section)
    return f"{sec.location} [{section}]"


def read_database(ini, known_keys, seed):
    """The database of ``[database]`` (MNIST when the section is absent)."""
    if not ini.has_section("database"):
        return data.DATABASES["MNIST_IDX_Database"](seed=seed)
    reader = SectionReader(ini, "database", known_keys.setdefault("database", set()))
    name = reader.get("Type", values.as_str)
    try:
        database = data.DATABASES.lookup(name, place(ini, "database", "Type"))
    except UnknownName:
        # ``check`` goes on without a database: the keys of one we lack are not judged.
        reader.ignore(*ini.section("database"))
        raise
    table = database.key_table
    kwargs, located = read_keys(ini, written_refs(reader, table), table,
                                required_at=("database", "Type"))
    for path_key in ("data_path", "label_path"):
        if path_key in kwargs:
            kwargs[path_key] = expand_env_path(kwargs[path_key], ini.path.parent)
    # The data layer knows no INI: its errors get the line of the key that led there.
    where = located.get("data_path", reader.where("Type"))
    try:
        return construct(database, {**kwargs, "seed": seed}, located, where)
    except OSError as error:  # a name too long, a loop of links...
        raise IniError(f"cannot read the data: {error.strerror}", where) from None
    except DataError as error:
        raise IniError(str(error), where) from None
