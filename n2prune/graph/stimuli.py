"""``[database]``, the stimuli provider ``[sp]`` and its transformation sections."""

import math
import re

from n2prune import data
from n2prune.data.provider import PREPARE_CHUNK
from n2prune.errors import IniError, UserError
from n2prune.graph import sizes
from n2prune.graph.reader import SectionReader
from n2prune.ini import did_you_mean, expand_env_path, values

_float, _uint, _bool = values.as_float, values.as_uint, values.as_bool
_operator = values.enum("Plus", "Minus", "Multiplies", "Divides")

# N2D2 transformation type -> (n2prune class name, {N2D2 key: (kwarg, reader, default)}).
TRANSFORM_KEYS = {
    "RescaleTransformation": ("Rescale", {
        "Width": ("width", values.as_size, None), "Height": ("height", values.as_size, None),
        "KeepAspectRatio": ("keep_aspect_ratio", _bool, False),
        "ResizeToFit": ("resize_to_fit", _bool, True),
    }),
    "PadCropTransformation": ("PadCrop", {
        "Width": ("width", values.as_size, None), "Height": ("height", values.as_size, None),
    }),
    "RangeAffineTransformation": ("RangeAffine", {
        "FirstOperator": ("first_operator", _operator, None),
        "FirstValue": ("first_value", _float, None),
        "SecondOperator": ("second_operator", _operator, None),
        "SecondValue": ("second_value", _float, 0.0),
    }),
    "ChannelExtractionTransformation": ("ChannelExtraction", {
        "CSChannel": ("channel", values.as_str, None),
    }),
    "FlipTransformation": ("Flip", {
        "HorizontalFlip": ("horizontal", _bool, False),
        "VerticalFlip": ("vertical", _bool, False),
        "RandomHorizontalFlip": ("random_horizontal", _bool, False),
        "RandomVerticalFlip": ("random_vertical", _bool, False),
    }),
}
REQUIRED = {"Width", "Height", "FirstOperator", "FirstValue", "CSChannel"}

PROVIDER_SECTIONS = ("sp", "cenv", "env")
_TRANSFORM_RE = re.compile(r"^(?P<sp>sp|cenv|env)\.(?P<kind>OnTheFly)?Transformation")
_UNSUPPORTED_RE = re.compile(r"^(sp|cenv|env)\.(Channel|Channels|StimuliData|Adversarial)")


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


def read_size(reader):
    """(channels, height, width) from ``Size=W H [D] C`` or ``SizeX/SizeY/NbChannels``."""
    if reader.has("Size"):
        dims = reader.get("Size", values.vector(_uint))
        if len(dims) not in (2, 3):
            raise reader.error("Size", "expected 'width height [channels]' (no depth: 2-D only)")
        size, keys = (dims[2] if len(dims) == 3 else 1, dims[1], dims[0]), ("Size",) * 3
    else:
        size = (reader.get("NbChannels", _uint, 1), reader.get("SizeY", _uint), reader.get("SizeX", _uint))
        keys = ("NbChannels", "SizeY", "SizeX")
    for value, key in zip(size, keys):
        if value == 0:
            raise reader.error(key, "stimuli sizes must be at least 1")
    return size


def _transform(ini, section, known):
    reader = SectionReader(ini, section, known)
    type_name = reader.get("Type", values.as_str)
    if type_name not in TRANSFORM_KEYS:
        hint = did_you_mean(type_name, list(TRANSFORM_KEYS))
        extra = f"did you mean {hint}? " if hint else ""
        raise reader.error("Type", f"unknown transformation {type_name} "
                           f"({extra}known: {', '.join(TRANSFORM_KEYS)})")
    apply_to = reader.get("ApplyTo", values.as_str, "All")
    if apply_to != "All":
        raise reader.error("ApplyTo", "only ApplyTo=All is supported")
    class_name, table = TRANSFORM_KEYS[type_name]
    kwargs = {}
    for key, (py_name, fn, default) in table.items():
        value = reader.get(key, fn) if key in REQUIRED else reader.get(key, fn, default)
        if value is not None:
            kwargs[py_name] = value
    try:
        return data.TRANSFORMS[class_name](**kwargs)
    except (UserError, ValueError) as exc:
        raise IniError(f"{ini_where(ini, section)}: {exc}") from None


def read_transforms(ini, sp_name, known_keys):
    """Transformations of the provider in file order: (cached, on-the-fly).

    Each list holds ``(section name, transform)`` pairs.
    """
    cached, on_the_fly = [], []
    for sec in ini.sections():
        if _UNSUPPORTED_RE.match(sec.name) and sec.name.split(".", 1)[0] == sp_name:
            raise IniError(f"{sec.file}:{sec.line} [{sec.name}]: this kind of provider "
                           "section is not supported (only Transformation / OnTheFlyTransformation)")
        match = _TRANSFORM_RE.match(sec.name)
        if not match or match["sp"] != sp_name:
            continue
        known = known_keys.setdefault(sec.name, set())
        target = on_the_fly if match["kind"] else cached
        target.append((sec.name, _transform(ini, sec.name, known)))
    return cached, on_the_fly


def build_provider(ini, known_keys, max_memory=None, images=None):
    """The ``StimuliProvider`` described by ``[sp]`` and its transformations.

    Returns ``(section name, provider, budget)``: a ``MemoryBudget`` of
    ``max_memory`` bytes already charged with the data path (see
    ``charge_stimuli``; ``images`` is passed on to it).
    """
    name = provider_section(ini)
    reader = SectionReader(ini, name, known_keys.setdefault(name, set()))
    channels, height, width = read_size(reader)
    batch_size = reader.get("BatchSize", _uint, 1)
    if batch_size == 0:
        raise reader.error("BatchSize", "must be at least 1")
    reader.ignore("CompositeStimuli", "CachePath")
    if reader.has("ConfigSection"):
        raise reader.error("ConfigSection", "stimuli provider parameters (quantization...) "
                           "are not supported")
    cached, on_the_fly = read_transforms(ini, name, known_keys)
    provider = data.StimuliProvider(size=(height, width, channels), batch_size=batch_size,
                                    transforms=[t for _, t in cached],
                                    on_the_fly=[t for _, t in on_the_fly])
    budget = sizes.MemoryBudget(max_memory, batch_size)
    charge_stimuli(reader, provider, cached + on_the_fly, budget, images)
    return name, provider, budget


def charge_stimuli(reader, provider, steps, budget, images=None):
    """Charge the input batch and the data path, before any image is transformed.

    ``steps`` are the ``(section, transform)`` pairs in the order they run;
    ``images`` is ``(count, shape)`` of the database's images (all
    partitions), or None when there is no database (``check``): then the
    images are taken to be of the ``[sp]`` size, a full chunk of them.
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
    (the database's and the cache of the leading cacheable transformations)."""
    count, shape = images if images else (0, provider.size)
    shape = tuple(shape) + (1,) * (3 - len(shape))  # (H, W) grey images have one channel
    held, peak = count * math.prod(shape), None
    for section, transform in steps:
        try:
            out = transform.output_shape(shape)
        except UserError as exc:
            raise IniError(f"{ini_where(ini, section)}: {exc}") from None
        cached = any(transform is t for t in provider.cached)
        in_flight = min(PREPARE_CHUNK, count or PREPARE_CHUNK) if cached else provider.batch_size
        nbytes = sizes.transform_bytes(in_flight, shape, out)
        if peak is None or nbytes > peak[0]:
            peak = (nbytes, section, in_flight, out)
        held += count * math.prod(out) if provider.cached and transform is provider.cached[-1] else 0
        shape = out
    nbytes, section, in_flight, out = peak
    key = "Width" if out[1] >= out[0] else "Height"
    key = key if ini.section(section).has(key) else "Type"  # a transformation without sizes
    budget.charge("data", nbytes + held, ini.where(section, key),
                  f"{in_flight} images of {out[1]}x{out[0]}x{out[2]} in float32 at once, "
                  f"{sizes.format_bytes(held)} of uint8 images held")


def ini_where(ini, section):
    sec = ini.section(section)
    return f"{sec.file}:{sec.line} [{section}]"


def read_database(ini, known_keys, seed):
    """The database of ``[database]`` (MNIST when the section is absent)."""
    if not ini.has_section("database"):
        return data.DATABASES["MNIST_IDX_Database"](data_path=None, validation=0.0, seed=seed)
    reader = SectionReader(ini, "database", known_keys.setdefault("database", set()))
    type_name = reader.get("Type", values.as_str)
    validation = reader.get("Validation", _float, 0.0)
    if not 0.0 <= validation < 1.0:
        raise reader.error("Validation", f"expected a fraction in [0, 1), got {validation}")
    random_partitioning = reader.get("RandomPartitioning", _bool, True)
    if reader.has("Learn") and not math.isclose(reader.get("Learn", _float), 1.0 - validation):
        raise reader.error("Learn", "only Learn = 1 - Validation is supported")
    data_path = None
    if reader.has("DataPath"):
        data_path = expand_env_path(reader.get("DataPath", values.as_str), ini.path.parent)
    if type_name not in data.DATABASES:
        raise reader.error("Type", f"database {type_name} is not supported "
                           f"(known: {', '.join(data.DATABASES)})")
    # The data layer knows no INI: its errors get the line of the key that led there.
    key = "DataPath" if data_path is not None else "Type"
    try:
        return data.DATABASES[type_name](data_path=data_path, validation=validation, seed=seed,
                                         random_partitioning=random_partitioning)
    except OSError as error:  # a name too long, a loop of links...
        raise reader.error(key, f"cannot read the data: {error.strerror}") from None
    except UserError as error:
        raise reader.error(key, str(error)) from None
