"""``[database]``, the stimuli provider ``[sp]`` and its transformation sections."""

import math
import re

from n2prune import data
from n2prune.errors import IniError, UserError
from n2prune.graph.reader import SectionReader
from n2prune.ini import did_you_mean, expand_env_path, values

_float, _uint, _bool = values.as_float, values.as_uint, values.as_bool
_operator = values.enum("Plus", "Minus", "Multiplies", "Divides")

# N2D2 transformation type -> (n2prune class name, {N2D2 key: (kwarg, reader, default)}).
TRANSFORM_KEYS = {
    "RescaleTransformation": ("Rescale", {
        "Width": ("width", _uint, None), "Height": ("height", _uint, None),
        "KeepAspectRatio": ("keep_aspect_ratio", _bool, False),
        "ResizeToFit": ("resize_to_fit", _bool, True),
    }),
    "PadCropTransformation": ("PadCrop", {
        "Width": ("width", _uint, None), "Height": ("height", _uint, None),
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
        sec = ini.section(section)
        raise IniError(f"{sec.file}:{sec.line} [{section}]: {exc}") from None


def read_transforms(ini, sp_name, known_keys):
    """Transformations of the provider in file order: (cached, on-the-fly)."""
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
        target.append(_transform(ini, sec.name, known))
    return cached, on_the_fly


def build_provider(ini, known_keys):
    """The ``StimuliProvider`` described by ``[sp]`` and its transformations."""
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
                                    transforms=cached, on_the_fly=on_the_fly)
    return name, provider


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
