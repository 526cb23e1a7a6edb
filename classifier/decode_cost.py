"""What decoding a photo will cost, known before a pixel is decoded, and the budget a
request spends it from.

A file's header tells its size, format and mode and, for a JPEG, how many scans it
holds; together they fix the decoder's work. `decode_work` estimates it in megapixels
of PNG decoding, and a `DecodeBudget` (one per request, or per file where nothing
groups files) refuses a photo that would overspend it. What a budget allows grows with
the bytes sent: a real photo carries about its pixels' worth of data, so a small upload
of a huge smooth picture cannot hold a worker for seconds, while a large one still may
(it cost its sender the bandwidth). Files whose structure alone would be slow to walk
(millions of empty chunks) are refused before Pillow opens them.
"""

from __future__ import annotations

import struct

import numpy as np
from PIL import Image

from classifier import tiff_structure
from classifier.image_errors import DecodingTooCostly, UnsupportedImage

#: The most scans a JPEG may hold. libjpeg's progressive script, which
#: Pillow uses, has 10 for colour and 6 for greyscale (counted in tests/images.py's
#: files), and a hundred leaves room for scripts ten times longer. Every scan is a pass
#: over the whole photo, so a file of a few KB that repeats a scan a thousand times
#: costs seconds; it is refused from a byte count before decoding.
MAX_JPEG_SCANS = 100

#: Pillow reads a file's structure (JPEG segments, PNG chunks, GIF extension blocks)
#: in Python, at about 0.2 us a byte when the blocks are tiny: 20 MB of empty blocks
#: would cost 4 s before the first pixel. Real files have a few dozen segments before
#: a JPEG's image data, a PNG's chunks are kilobytes each, and a GIF has a handful of
#: extensions; more than these caps is refused up front.
MAX_STRUCTURE_BLOCKS = {"JPEG": 1_000, "PNG": 20_000, "GIF": 1_000,
                        "TIFF": tiff_structure.MAX_DIRECTORY_ENTRIES}
#: Pillow's names for JPEG files: an MPO (a JPEG with a multi-picture segment, as some
#: cameras write) decodes its first picture as a JPEG, and costs as one.
JPEG_FORMATS = ("JPEG", "MPO")

#: Decoding work per megapixel, relative to PNG (1.0), by format: what the limits below
#: are counted in. Measured by `python -m bench.hostile` (bench/results/hostile.md):
#: a baseline JPEG decoded at reduced DCT scale costs a tenth of a PNG of the same size,
#: each scan of a progressive JPEG about a 25th; HEIC (HEVC) four PNGs.
DECODE_WORK_PER_MEGAPIXEL = {"PNG": 1.0, "TIFF": 1.0, "GIF": 0.7, "WEBP": 0.75, "BMP": 0.25,
                             "HEIF": 4.0}
JPEG_WORK_PER_MEGAPIXEL = 0.1
JPEG_WORK_PER_SCAN_MEGAPIXEL = 0.04
#: The same weights by mode, relative to RGB: decoding costs about in proportion to the
#: bytes a pixel holds, transparency more. Measured on 12 MP PNGs at zlib's default and
#: fastest compression (bench.hostile): RGBA 1.3-1.9x, palette 0.45-0.8x, 16-bit grey
#: 0.43-0.67x, 8-bit grey 0.31-0.32x, 1-bit 0.08-0.09x; each weight is the higher end or
#: above. Not applied to JPEG, whose cost its scans give, nor to GIF, whose weight was
#: measured on palettes.
MODE_WORK = {"RGBA": 2.0, "RGBa": 2.0, "PA": 2.0, "LA": 1.0, "La": 1.0, "P": 0.8,
             "I;16": 0.7, "I;16B": 0.7, "I;16L": 0.7, "L": 0.35, "1": 0.1}
#: GIFs and animated WebPs are decoded onto a canvas of their whole size and turned into
#: RGBA, whatever their first frame covers: a 68-byte GIF declaring a 5900 x 5900 screen
#: held 303 MB, a 138-byte WebP declaring a 5400 x 5400 canvas 486 MB. They are weighed
#: as RGBA (for their memory as much as their time), so that a small file cannot
#: declare such a canvas.
CANVAS_WORK = MODE_WORK["RGBA"]
#: Decoding work one request may spend (one file, where nothing groups files): about
#: 4 s on a 2-core AMD EPYC of 2026. 16 phone JPEGs of 12 MP cost 19, one 40 MP PNG 40,
#: one 12 MP HEIC 48; a request beyond it gets `decoding_too_costly`.
DEFAULT_DECODE_WORK = 200
#: ...and only as much of it as the bytes sent allow: any upload may spend
#: `FREE_DECODE_WORK` (0.3-0.5 s), and `DECODE_WORK_PER_MEGABYTE` more for each MB. A
#: 12 MP phone HEIC (1-3 MB) needs 48 and gets 75-175; a phone JPEG needs 1-5. A smooth
#: 40 MP PNG of 170 KB (40-80 units: 1 s) or five in one request (4 s) are refused.
FREE_DECODE_WORK = 25
DECODE_WORK_PER_MEGABYTE = 50


class DecodeBudget:
    """The decoding work a request may spend (see `decode_work`): at most `work`, and
    no more than its photos' bytes allow (`allowed`), or, given `sent`, the bytes the
    client sent for all of them (a zip's size, not what its photos unpack to). Shared by
    every decode of the request's photos, so 16 photos cannot cost 16 times the limit. A
    photo decoded again in the same request (for its preview) is charged once: its bytes
    are recognised by identity, as they stay alive with the request."""

    def __init__(self, work: float = DEFAULT_DECODE_WORK, *, sent: int | None = None):
        self.limit = work
        self.sent = sent
        self.spent = 0.0
        self.received = 0  # bytes of the photos paid for
        self._paid: set[int] = set()

    def allowed(self, received: int) -> float:
        """The work photos of `received` bytes in all may cost (`sent`'s, if given)."""
        sent = received if self.sent is None else self.sent
        return min(self.limit, FREE_DECODE_WORK + DECODE_WORK_PER_MEGABYTE * sent / 1e6)

    def spend(self, work: float, data: bytes) -> None:
        if id(data) in self._paid:
            return
        if work > self.allowed(len(data)):
            basis, size = (("a file of its size", len(data)) if self.sent is None
                           else ("the bytes sent", self.sent))
            raise DecodingTooCostly(
                f"This photo would take too long to decode for {basis} ({work:.0f} units of "
                f"work; {size / 1e3:,.0f} KB may cost {self.allowed(len(data)):.0f}): send it "
                "with fewer pixels, or as a JPEG.")
        if self.spent + work > self.allowed(self.received + len(data)):
            raise DecodingTooCostly(
                "The photos in this request together would take too long to decode: "
                "send fewer at once.")
        self.spent += work
        self.received += len(data)
        self._paid.add(id(data))


def decode_work(image: Image.Image, data: bytes) -> float:
    """What decoding `image` (opened, not yet loaded, from `data`) will cost, in
    megapixels of RGB PNG decoding (`DECODE_WORK_PER_MEGAPIXEL`, `MODE_WORK`). A JPEG costs by its
    scans, counted from its bytes: in entropy-coded data 0xFF is always followed by
    0x00, so each b"\\xff\\xda" is a start-of-scan marker (or, harmlessly, data in a
    metadata segment, which only over-counts)."""
    megapixels = image.size[0] * image.size[1] / 1e6
    if image.format == "BMP" and image.tile and image.tile[0][0] != "raw":
        # Pillow decodes run-length BMPs in Python: 4 KB of them took 5 s.
        raise UnsupportedImage("Compressed (run-length) BMP files are not accepted: send the "
                               "photo as a PNG or JPEG.")
    if image.format == "GIF" or (image.format == "WEBP" and getattr(image, "is_animated", False)):
        return megapixels * DECODE_WORK_PER_MEGAPIXEL[image.format] * CANVAS_WORK
    if image.format not in JPEG_FORMATS:
        return (megapixels * DECODE_WORK_PER_MEGAPIXEL.get(image.format, 1.0)
                * MODE_WORK.get(image.mode, 1.0))
    scans = count_pairs(data, 0xFF, 0xDA)
    if scans > MAX_JPEG_SCANS:
        raise DecodingTooCostly(
            f"This JPEG holds {scans} scans; no camera or encoder writes more than "
            f"{MAX_JPEG_SCANS}, and each one costs a pass over the whole photo.")
    return megapixels * max(JPEG_WORK_PER_MEGAPIXEL, scans * JPEG_WORK_PER_SCAN_MEGAPIXEL)


def count_pairs(data: bytes, first: int, second: int) -> int:
    """How often the byte `first` is followed by `second` in `data`: compared as arrays,
    0.3 ms for a 2.7 MB phone photo where bytes.count takes 2.3 ms (2-core AMD EPYC)."""
    octets = np.frombuffer(data, np.uint8)
    return int(np.count_nonzero((octets[:-1] == first) & (octets[1:] == second)))


def refuse_costly_structure(data: bytes) -> None:
    """Count the blocks Pillow would walk in Python before the pixels, stopping at the
    cap: a few microseconds for any real photo. Damage is left to the decoder to report."""
    kind, blocks = _structure_blocks(data)
    if kind and blocks > MAX_STRUCTURE_BLOCKS[kind]:
        raise DecodingTooCostly(
            f"This {kind} file is split into more than {MAX_STRUCTURE_BLOCKS[kind]} blocks "
            "before or around its pixels; no camera or editor writes that many.")


def _structure_blocks(data: bytes) -> tuple[str | None, int]:
    """(format, blocks counted up to one past its cap) for JPEG, PNG and GIF; for a TIFF,
    the entries of its first directory, which Pillow parses when it opens the file."""
    if data.startswith(b"\xff\xd8"):  # JPEG: segments up to the first scan
        return "JPEG", _count_blocks(data, 2, MAX_STRUCTURE_BLOCKS["JPEG"], _next_jpeg_segment)
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG", _count_blocks(data, 8, MAX_STRUCTURE_BLOCKS["PNG"], _next_png_chunk)
    if data.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):  # TIFF: its first directory
        return "TIFF", tiff_structure.directory_entries(data)
    if data.startswith((b"GIF87a", b"GIF89a")) and len(data) >= 13:
        palette = 3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0
        return "GIF", _count_blocks(data, 13 + palette, MAX_STRUCTURE_BLOCKS["GIF"], _next_gif_extension)
    return None, 0


def _count_blocks(data: bytes, offset: int, cap: int, step) -> int:
    count = 0
    while offset is not None and count <= cap:
        offset = step(data, offset)
        count += 1
    return count


def _next_jpeg_segment(data: bytes, i: int) -> int | None:
    """The offset after the segment at `i`, or None at the first scan or the end."""
    while i < len(data) and data[i] == 0xFF and i + 1 < len(data) and data[i + 1] == 0xFF:
        i += 1  # fill bytes
    if i + 4 > len(data) or data[i] != 0xFF or data[i + 1] in (0xDA, 0xD9):
        return None
    if 0xD0 <= data[i + 1] <= 0xD7 or data[i + 1] == 0x01:  # markers without a length
        return i + 2
    return i + 2 + struct.unpack_from(">H", data, i + 2)[0]


def _next_png_chunk(data: bytes, i: int) -> int | None:
    if i + 8 > len(data) or data[i + 4:i + 8] == b"IEND":
        return None
    return i + 12 + struct.unpack_from(">I", data, i)[0]


def _next_gif_extension(data: bytes, i: int) -> int | None:
    """The offset after the extension block at `i`, or None at the image (or the end)."""
    if i + 2 > len(data) or data[i] != 0x21:
        return None
    i += 2
    while i < len(data) and data[i]:  # sub-blocks, each led by its length
        i += 1 + data[i]
    return i + 1
