"""Image files to uint8 arrays in OpenCV's layout: (H, W) grey, (H, W, 3) BGR, (H, W, 4) BGRA.

As N2D2's ``ImageDataFile`` (``cv::imread(..., IMREAD_UNCHANGED)``): grey
images keep one channel, colour images come in BGR order, an alpha channel
is kept. Binary PGM/PPM (``P5``/``P6``, 8-bit: GTSRB's format) are read
here; every other format goes through Pillow, an optional extra imported
only when such a file is read. ``image_shape`` reads only a file's header.
"""

import pathlib

import numpy as np

from n2prune.errors import DataError

# N2D2's ImageDataFile extensions (the formats OpenCV reads), lower case.
IMAGE_EXTENSIONS = ("bmp", "dib", "jpeg", "jpg", "jpe", "jp2", "png", "pbm", "pgm", "ppm",
                    "sr", "ras", "tiff", "tif")
_NETPBM_CHANNELS = {b"P5": 1, b"P6": 3}
PILLOW_HINT = "pip install 'n2prune[images]'"


def _pillow(path):
    """The PIL.Image module, or a DataError naming the file and the install line."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"{path}: reading this image format needs Pillow: {PILLOW_HINT}") from None
    return Image


def _netpbm_header(data, path):
    """``(height, width, channels, offset of the pixels)`` of a binary PGM/PPM."""
    fields, pos = [], 2
    while len(fields) < 3:
        while pos < len(data) and (data[pos:pos + 1].isspace() or data[pos:pos + 1] == b"#"):
            if data[pos:pos + 1] == b"#":  # a comment runs to the end of its line
                end = data.find(b"\n", pos)
                pos = len(data) if end < 0 else end
            pos += 1
        start = pos
        while pos < len(data) and data[pos:pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise DataError(f"{path}: malformed PGM/PPM header")
        fields.append(int(data[start:pos]))
    width, height, maxval = fields
    if maxval > 255 or width < 1 or height < 1:
        raise DataError(f"{path}: PGM/PPM of {width}x{height} with maximum {maxval}; only "
                        "8-bit images (maximum <= 255) of at least 1x1 are supported")
    return height, width, _NETPBM_CHANNELS[data[:2]], pos + 1


def _read_netpbm(path, data):
    height, width, channels, offset = _netpbm_header(data, path)
    size = height * width * channels
    if len(data) < offset + size:
        raise DataError(f"{path}: truncated image ({len(data) - offset} of {size} pixel bytes)")
    pixels = np.frombuffer(data, np.uint8, size, offset)
    if channels == 1:
        return pixels.reshape(height, width).copy()
    return pixels.reshape(height, width, 3)[..., ::-1].copy()  # RGB on disk, BGR in memory


def _from_pillow(image, path):
    """uint8 (H, W[, C]) of an opened Pillow image, channels as OpenCV gives them."""
    if image.mode in ("1", "L"):
        return np.asarray(image.convert("L"), dtype=np.uint8)
    if image.mode in ("I;16", "I;16B", "I", "F"):
        raise DataError(f"{path}: {image.mode} images (more than 8 bits) are not supported")
    alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    pixels = np.asarray(image.convert("RGBA" if alpha else "RGB"), dtype=np.uint8)
    order = [2, 1, 0, 3] if alpha else [2, 1, 0]
    return np.ascontiguousarray(pixels[..., order])


def read_image(path):
    """uint8 (H, W) or (H, W, C) BGR[A] pixels of the image file ``path``."""
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read the image: {error.strerror}") from None
    if data[:2] in _NETPBM_CHANNELS:
        return _read_netpbm(path, data)
    image_module = _pillow(path)
    try:
        with image_module.open(path) as image:
            return _from_pillow(image, path)
    except (OSError, ValueError, SyntaxError) as error:  # Pillow's ways to say "not an image"
        raise DataError(f"{path}: unreadable image ({error})") from None


def image_shape(path):
    """``(H, W)`` or ``(H, W, C)`` of ``read_image(path)``, from the header alone."""
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as file:
            head = file.read(4096)  # a header with long comments still fits
    except OSError as error:
        raise DataError(f"{path}: cannot read the image: {error.strerror}") from None
    if head[:2] in _NETPBM_CHANNELS:
        height, width, channels, _ = _netpbm_header(head, path)
        return (height, width) if channels == 1 else (height, width, channels)
    image_module = _pillow(path)
    try:
        with image_module.open(path) as image:
            width, height = image.size
            mode, info = image.mode, image.info
    except (OSError, ValueError, SyntaxError) as error:
        raise DataError(f"{path}: unreadable image ({error})") from None
    if mode in ("1", "L"):
        return (height, width)
    alpha = mode in ("RGBA", "LA", "PA") or "transparency" in info
    return (height, width, 4 if alpha else 3)


def write_ppm(path, image):
    """Write uint8 (H, W) or (H, W, 3) BGR pixels as binary PGM/PPM (for tests and tools)."""
    image = np.asarray(image, dtype=np.uint8)
    magic = b"P5" if image.ndim == 2 else b"P6"
    pixels = image if image.ndim == 2 else image[..., ::-1]
    header = b"%s\n%d %d\n255\n" % (magic, image.shape[1], image.shape[0])
    pathlib.Path(path).write_bytes(header + np.ascontiguousarray(pixels).tobytes())
