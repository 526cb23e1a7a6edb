"""Image intake: untrusted bytes in, a model-ready RGB pixel array out.

Training and serving both read photos through `load_pixels`, so the pixels the
network learned from and the pixels it is asked about are produced by exactly
the same code. Everything a phone or a hostile client can send is handled here:
EXIF rotation, transparency, palette / greyscale / CMYK / 16-bit modes, the first
frame of animations, huge photos (decoded at reduced scale) and decompression
bombs (refused before any pixel is decoded).

Every decode is bounded before it starts: its cost is estimated from the file's
header and taken from a budget (`classifier.decode_cost`). Memory is bounded too: a
large photo is reduced to what the network needs right after decoding, before any
conversion copies it, and 16-bit pixels are scaled without float64 copies.
"""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from classifier.decode_cost import JPEG_FORMATS, DecodeBudget, decode_work, refuse_costly_structure
from classifier.image_errors import CorruptImage, EmptyImage, ImageError, ImageTooLarge, UnsupportedImage
from classifier.tiff_structure import ORIENTATION_TAG, exif_orientation

try:  # Phones send HEIC; the plugin is optional so training machines need not have it.
    from pillow_heif import register_heif_opener

    register_heif_opener()
    _HEIF_FORMATS = ("HEIF",)
except ImportError:  # pragma: no cover - pillow-heif is in requirements.txt
    _HEIF_FORMATS = ()

#: Pillow format names we agree to parse. Restricting `Image.open` to these keeps
#: exotic decoders (EPS runs Ghostscript, for one) away from user input.
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", *_HEIF_FORMATS)
#: File name endings of those formats: what a folder of photos is taken to hold
#: (batch sources, training folders).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif"})

#: Default ceiling on width x height: a 36-megapixel camera photo passes, a
#: 30 000 x 30 000 "bomb" (900 MP) is refused before decoding.
DEFAULT_MAX_PIXELS = 40_000_000
#: Longest side accepted, whatever the pixel count. Decoding, reducing and resizing
#: cost by the long side as well as by the pixels (Pillow keeps a pointer a row, and a
#: photo too thin to box-reduce is shrunk by a filter as wide as the shrink): a 1-bit
#: PNG of 1 x 40,000,000 pixels, 78 KB, took 2.2 s and 760 MB, one of 100 x 400,000
#: 0.4 s, while 800 x 50,000 took 0.09 s and 40 MB (2-core AMD EPYC). Phone panoramas
#: are under 20,000 px long.
MAX_SIDE = 50_000

# Never silently accept half an image; a truncated upload is an error.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# We enforce our own, lower pixel limit before decoding; keep Pillow's as a backstop.
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS * 2

_WHITE = (255, 255, 255)

#: How far below the input size a JPEG may be decoded by DCT scaling. Scaling in
#: the decoder is a good-quality downscale and nearly free, while Pillow's resize
#: costs in proportion to the pixels it reads: a 512 x 384 photo decoded at half
#: scale (256 x 192) and stretched the last 15 % is about twice as cheap as a full
#: decode plus a 2.3x downscale, and the network's verdicts stay the same (checked
#: on enlarged test photos in tests/test_shipped_model.py).
DRAFT_SLACK = 0.85

#: Photos above this many pixels that the decoder cannot scale (every format but JPEG)
#: are box-reduced right after decoding, to the smallest size the caller needs. Below
#: it a photo costs at most a few MB, and the exact pixels of the plain path are kept
#: (the digit model's canvas drawings, 280 px, were measured that way).
REDUCE_ABOVE_PIXELS = 2_000_000

def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                 draft_size: tuple[int, int] | None = None,
                 budget: DecodeBudget | None = None) -> Image.Image:
    """Decode `data` into an upright 8-bit RGB image.

    With `draft_size`, a large photo comes back reduced to no less than that size
    (JPEGs by DCT scaling in the decoder, others right after decoding), which makes
    a 12-megapixel photo several times cheaper to read and bounds its memory. The
    decoding work is taken from `budget` (a fresh per-file one if None) before any
    pixel is decoded. Raises an `ImageError` subclass for anything that is not a
    usable photo.
    """
    if not data:
        raise EmptyImage("The file is empty (0 bytes).")
    refuse_costly_structure(data)
    try:
        with warnings.catch_warnings():
            # Pillow warns once per odd tag of a damaged file, with the tag in the text:
            # a client's file must not write what it likes into our log.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            width, height = image.size
            if width < 1 or height < 1:
                raise CorruptImage("The image has no pixels.")
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"The image is {width}x{height} pixels; the limit is "
                    f"{max_pixels / 1e6:.0f} megapixels.")
            if max(width, height) > MAX_SIDE:
                raise ImageTooLarge(
                    f"The image is {width}x{height} pixels; no side may be longer than "
                    f"{MAX_SIDE:,} pixels.")
            (budget or DecodeBudget()).spend(decode_work(image, data), data)
            if draft_size and image.format in JPEG_FORMATS:
                image.draft("RGB", draft_size)
            image.load()  # decodes the first frame only
            if draft_size:
                image = _reduced(image, draft_size)
            return _to_rgb(_upright(image))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise UnsupportedImage(
            "This is not an image in a supported format "
            f"({', '.join(ACCEPTED_FORMATS)}).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge("The image is too large to decode safely.") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError,
            AttributeError, RuntimeError, struct.error, ZeroDivisionError, MemoryError) as exc:
        # RuntimeError: pillow-heif's, for a HEIC whose boxes disagree about its size.
        # Pillow's decoders signal damaged data with a zoo of exception types.
        raise CorruptImage(f"The image data is damaged or truncated ({_short(exc)}).") from None


def _upright(image: Image.Image) -> Image.Image:
    """The photo turned as its EXIF orientation says. Read here, not by Pillow's
    exif_transpose, which parses every tag of the EXIF block and writes it back: a few
    KB of odd tags cost it seconds, or raised exceptions of its own (found in a review)."""
    method = _TRANSPOSE.get(orientation(image))
    return image.transpose(method) if method is not None else image


#: What each EXIF orientation (2-8) asks for, as Pillow's exif_transpose does it.
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def orientation(image: Image.Image) -> int:
    """The EXIF orientation of an opened photo (1, upright, when it has none): a TIFF's
    own tag (parsed when it was opened), else the Orientation entry of the EXIF block's
    first directory, looked up in at most MAX_DIRECTORY_ENTRIES entries."""
    if image.format == "TIFF":
        value = image.tag_v2.get(ORIENTATION_TAG, 1)
        return value if isinstance(value, int) else 1
    block = image.info.get("exif")
    return exif_orientation(block) if isinstance(block, bytes) else 1


def fit_to_input(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Resize the whole photo (no crop, so an off-centre hot dog stays in view)
    to the network's input size; returns uint8 pixels shaped (height, width, 3)."""
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def load_pixels(data: bytes, size: tuple[int, int], *, max_pixels: int = DEFAULT_MAX_PIXELS,
                budget: DecodeBudget | None = None) -> np.ndarray:
    """Untrusted bytes -> uint8 array of shape (height, width, 3) ready for the model."""
    image = decode_image(data, max_pixels=max_pixels, draft_size=draft_size(size), budget=budget)
    return fit_to_input(image, size)


def draft_size(size: tuple[int, int]) -> tuple[int, int]:
    """The smallest size a JPEG may be DCT-scaled to for a network input of `size`."""
    return max(1, round(size[0] * DRAFT_SLACK)), max(1, round(size[1] * DRAFT_SLACK))


def _reduced(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A large decoded photo box-reduced by the largest whole factor that keeps it at
    least `size`: what a JPEG's DCT scaling does in its decoder, for the other formats.
    Modes whose values cannot be averaged are converted first (palette indices, bits)."""
    width, height = image.size
    factor = min(width // size[0], height // size[1])
    if factor < 2 or width * height <= REDUCE_ABOVE_PIXELS:
        return image
    if image.mode == "1":
        image = image.convert("L")
    elif image.mode in ("P", "PA"):
        image = image.convert("RGBA")
    elif image.mode.startswith("I;16"):
        return _reduced_in_bands(image, factor)
    return image.reduce(factor)


#: Rows of output a 16-bit photo is reduced in at a time (`_reduced_in_bands`).
BAND_ROWS = 16


def _reduced_in_bands(image: Image.Image, factor: int) -> Image.Image:
    """A 16-bit greyscale photo box-reduced by `factor`, converted to 32 bits (which
    `reduce` needs) a band of rows at a time: converted whole, a 40-megapixel one (a
    92 KB PNG) held 160 MB more than its own 80."""
    width, height = image.size
    band = BAND_ROWS * factor
    reduced = Image.new("I", (-(-width // factor), -(-height // factor)))
    for top in range(0, height, band):
        part = image.crop((0, top, width, min(top + band, height))).convert("I").reduce(factor)
        reduced.paste(part, (0, top // factor))
    reduced.info = image.info  # its EXIF orientation, read after reduction
    return reduced


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode in ("I", "F"):
        image = _high_depth_to_8bit(image)
        mode = image.mode
    if (mode == "P" and "transparency" in image.info) or mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, _WHITE)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")  # 1, L, P, CMYK, YCbCr, LAB, HSV


def _high_depth_to_8bit(image: Image.Image) -> Image.Image:
    """16-bit / 32-bit greyscale to 8-bit by scaling, not clipping (Pillow clips), in
    Pillow's own 32-bit modes: no float64 copy of a 35-megapixel photo."""
    if image.mode.startswith("I;16"):
        image = image.convert("I")  # point() scales only I and F images
    _, high = image.getextrema()
    if image.mode == "F" and high <= 1.0:
        scale = 255.0
    elif high > 255:
        scale = 1 / 257  # 65535 -> 255
    else:
        scale = 1.0
    # + 0.5: the conversion to 8 bits truncates, so this rounds to the nearest level.
    return image.point(lambda value: value * scale + 0.5).convert("L")


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."
