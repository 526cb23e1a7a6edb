"""Test images made by code: every mode, format and flaw the service must cope with.

Nothing here is copied from elsewhere; each function returns encoded bytes.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

RNG_SEED = 1234


def photo_array(width: int = 320, height: int = 240, seed: int = RNG_SEED) -> np.ndarray:
    """A smooth, photo-like RGB array (gradients plus a little noise), not flat colour."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 128 + 100 * np.sin(x / max(width, 1) * 3.1 + seed)
    g = 128 + 100 * np.cos(y / max(height, 1) * 2.3)
    b = 128 + 80 * np.sin((x + y) / max(width + height, 1) * 5.0)
    pixels = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, (height, width, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg(width: int = 320, height: int = 240, seed: int = RNG_SEED, quality: int = 90) -> bytes:
    return encode(Image.fromarray(photo_array(width, height, seed)), "JPEG", quality=quality)


def png(width: int = 320, height: int = 240, mode: str = "RGB") -> bytes:
    return encode(Image.fromarray(photo_array(width, height)).convert(mode), "PNG")


def in_format(fmt: str, width: int = 200, height: int = 150) -> bytes:
    """The same photo in any Pillow-writable format (JPEG, PNG, GIF, WEBP, BMP, TIFF, HEIF)."""
    image = Image.fromarray(photo_array(width, height))
    if fmt == "HEIF":
        from pillow_heif import register_heif_opener

        register_heif_opener()
    return encode(image, fmt)


def smooth_png(width: int, height: int, mode: str = "RGB") -> bytes:
    """Noiseless ramps: a 40 MP PNG in 50-170 KB (a real photo's would not fit 20 MB)."""
    ramp = Image.linear_gradient("L").resize((width, height))
    channels = (ramp, ramp.transpose(Image.Transpose.ROTATE_180), Image.new("L", (width, height), 90))
    return encode(Image.merge("RGB", channels).convert(mode), "PNG")


def png_16bit_grey(width: int = 64, height: int = 48) -> bytes:
    """Rows that ramp from black to full white; at 35 MP a PNG of about 200 KB."""
    ramp = np.linspace(0, 65535, width).astype(np.uint16)
    return encode(Image.fromarray(np.ascontiguousarray(np.broadcast_to(ramp, (height, width)))), "PNG")


def cmyk_jpeg(width: int = 120, height: int = 90) -> bytes:
    return encode(Image.fromarray(photo_array(width, height)).convert("CMYK"), "JPEG")


def palette_with_transparency(width: int = 80, height: int = 60) -> bytes:
    image = Image.fromarray(photo_array(width, height)).convert("P", palette=Image.Palette.ADAPTIVE)
    return encode(image, "PNG", transparency=0)


def la_png(width: int = 80, height: int = 60) -> bytes:
    grey = Image.fromarray(photo_array(width, height)).convert("L")
    alpha = Image.linear_gradient("L").resize((width, height))
    return encode(Image.merge("LA", (grey, alpha)), "PNG")


def rgba_transparent_png(width: int = 40, height: int = 30) -> bytes:
    return encode(Image.new("RGBA", (width, height), (255, 0, 0, 0)), "PNG")


def animated(fmt: str = "GIF", frames: int = 3, width: int = 64, height: int = 48) -> bytes:
    images = [Image.fromarray(photo_array(width, height, seed=i)) for i in range(frames)]
    return encode(images[0], fmt, save_all=True, append_images=images[1:], duration=100, loop=0)


def with_orientation(image: Image.Image, orientation: int, fmt: str = "JPEG") -> bytes:
    """Store `image` transformed so that a viewer honouring EXIF `orientation`
    shows the original upright image again: what a phone camera writes (a TIFF
    keeps the tag in its own directory, the others in an EXIF block)."""
    inverse = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
               6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_270}[orientation]
    stored = image if inverse is None else image.transpose(inverse)
    if fmt == "TIFF":
        return encode(stored, "TIFF", tiffinfo={0x0112: orientation})
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, fmt, quality=95, exif=exif.tobytes())


def png_chunk(kind: bytes, data: bytes) -> bytes:
    checksum = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid PNG header declaring width x height greyscale pixels, with a tiny
    compressed body: a few KB that would decode to ~900 MB."""
    chunk = png_chunk
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * width
    compressor = zlib.compressobj(9)
    body = compressor.compress(row * 64) + compressor.flush()  # only the first rows
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) +
            chunk(b"IEND", b""))


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[:max(1, int(len(data) * keep))]


def bit_flipped(data: bytes, flips: int = 40, seed: int = RNG_SEED, skip: int = 20) -> bytes:
    """Flip random bits after the first `skip` bytes (so the format is still recognised)."""
    rng = np.random.default_rng(seed)
    damaged = bytearray(data)
    for position in rng.integers(skip, len(data), flips):
        damaged[position] ^= 1 << int(rng.integers(0, 8))
    return bytes(damaged)



# -- hostile files: small uploads that would cost seconds or gigabytes to decode -----

def _segments(jpeg_data: bytes) -> list[tuple[int, int]]:
    """(offset, marker) of each JPEG segment after SOI, entropy-coded data skipped."""
    segments, i = [], 2
    while True:
        marker = jpeg_data[i + 1]
        segments.append((i, marker))
        if marker == 0xD9:  # end of image
            return segments
        i += 2 + struct.unpack(">H", jpeg_data[i + 2:i + 4])[0]
        if marker == 0xDA:  # a scan's data runs to the next marker (0xFF00 and RSTn are data)
            while not (jpeg_data[i] == 0xFF and jpeg_data[i + 1] not in (0, *range(0xD0, 0xD8))):
                i += 1


def jpeg_scan_bomb(width: int = 5000, height: int = 5000, repeats: int = 500) -> bytes:
    """A progressive greyscale JPEG whose second scan (64 bytes) is repeated `repeats`
    times: a few hundred KB, each repeat a pass over every block of the photo."""
    data = encode(Image.linear_gradient("L").resize((width, height)), "JPEG", progressive=True)
    segments = _segments(data)
    scans = [offset for offset, marker in segments if marker == 0xDA]
    end = segments[-1][0]
    return data[:end] + data[scans[1]:scans[2]] * repeats + data[end:]


def png_1bit(width: int = 6000, height: int = 6000) -> bytes:
    """A blank 1-bit PNG: a few KB for 36 megapixels."""
    return encode(Image.new("1", (width, height), 1), "PNG")


def thin_png(width: int, height: int) -> bytes:
    """A complete blank 1-bit PNG of any shape, compressed row by row without Pillow
    (which keeps a pointer a row: a strip 1 pixel wide and 40 M tall would take it 300 MB
    to make). 1 x 40,000,000 is 78 KB."""
    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter byte "none", then white pixels
    rows_per_piece = max(1, 2**20 // len(row))
    compressor, pieces = zlib.compressobj(9), []
    for first in range(0, height, rows_per_piece):
        pieces.append(compressor.compress(row * min(rows_per_piece, height - first)))
    pieces.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"".join(pieces)) +
            png_chunk(b"IEND", b""))


def png_chunk_flood(chunks: int) -> bytes:
    """A 64x64 PNG header followed by `chunks` empty chunks (12 bytes each)."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"abCd", b"") * chunks


def jpeg_segment_flood(segments: int) -> bytes:
    """A small JPEG with `segments` empty comment segments (4 bytes each) before its image."""
    photo = jpeg(64, 48)
    return photo[:2] + b"\xff\xfe\x00\x02" * segments + photo[2:]


def gif_extension_flood(extensions: int) -> bytes:
    """A small GIF with `extensions` empty comment extensions (3 bytes each) before its image."""
    photo = encode(Image.linear_gradient("L").resize((64, 48)), "GIF")
    flags = photo[10]
    start = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # after the global palette
    return photo[:start] + b"\x21\xfe\x00" * extensions + photo[start:]


def exif_directory(entries: list[tuple[int, int, int, bytes]], data: bytes = b"") -> bytes:
    """A little-endian TIFF structure (an EXIF block) of one directory: each entry
    (tag, type, count, 4 bytes of value or offset), then `data` (at offset 14 + 12 n)."""
    body = b"".join(struct.pack("<HHI", tag, kind, count) + value for tag, kind, count, value in entries)
    return b"II*\x00" + struct.pack("<IH", 8, len(entries)) + body + b"\x00\x00\x00\x00" + data


def jpeg_with_odd_exif(orientation: int = 6) -> bytes:
    """A JPEG turned by its orientation, whose EXIF also types Artist as a fraction:
    Pillow's exif_transpose raised rewriting such a block."""
    entries = [(0x0112, 3, 1, struct.pack("<HH", orientation, 0)),
               (0x013B, 5, 1, struct.pack("<I", 8 + 2 + 2 * 12 + 4))]  # RATIONAL, at the data
    block = exif_directory(entries, struct.pack("<II", 1, 3))
    return encode(Image.fromarray(photo_array(64, 48)), "JPEG", exif=b"Exif\x00\x00" + block)


def exif_flood(entries: int, fmt: str = "PNG") -> bytes:
    """A tiny photo whose EXIF block holds `entries` bogus entries after an orientation
    of 6: 12 bytes each, which Pillow parsed (and warned about) one by one."""
    flood = [(0x0112, 3, 1, struct.pack("<HH", 6, 0))] + [
        (0x1000 + n % 60000, 4, 1, struct.pack("<I", n)) for n in range(entries)]
    return encode(Image.fromarray(photo_array(16, 8)), fmt, exif=b"Exif\x00\x00" + exif_directory(flood))


def tiff_directory_flood(entries: int) -> bytes:
    """An 8x8 TIFF whose directory holds `entries` bogus entries beside its own."""
    data = bytearray(encode(Image.new("L", (8, 8)), "TIFF"))
    offset = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, offset)[0]
    own = [bytes(data[offset + 2 + 12 * i:offset + 14 + 12 * i]) for i in range(count)]
    bogus = [struct.pack("<HHII", 40000 + n % 25000, 4, 1, n) for n in range(entries)]
    directory = sorted(own + bogus, key=lambda entry: struct.unpack_from("<H", entry)[0])
    struct.pack_into("<I", data, 4, len(data))
    return bytes(data) + struct.pack("<H", len(directory)) + b"".join(directory) + b"\x00" * 4


def rle_bmp(width: int, height: int) -> bytes:
    """An 8-bit run-length BMP whose every row is one pixel and an end of line: a few
    KB for a wide picture, which Pillow's BMP decoder pads pixel by pixel in Python."""
    rows = b"\x01\x00\x00\x00" * height + b"\x00\x01"
    palette = b"\x00\x00\x00\x00" + b"\xff\xff\xff\x00" * 255
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(rows), 2835, 2835, 256, 0)
    offset = 14 + len(info) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset) + info + palette + rows


def mpo_scan_bomb(width: int = 5000, height: int = 5000, repeats: int = 500) -> bytes:
    """`jpeg_scan_bomb` with a multi-picture (MPF) segment, as some cameras write:
    Pillow then names it MPO, not JPEG."""
    frame = Image.new("L", (8, 8))
    mpo = encode(frame, "MPO", save_all=True, append_images=[frame.copy()])
    offset, _ = next((at, marker) for at, marker in _segments(mpo)
                     if marker == 0xE2 and mpo[at + 4:at + 8] == b"MPF\x00")
    segment = mpo[offset:offset + 2 + struct.unpack_from(">H", mpo, offset + 2)[0]]
    bomb = jpeg_scan_bomb(width, height, repeats)
    return bomb[:2] + segment + bomb[2:]


def heic_claiming_another_size(side: int = 64) -> bytes:
    """A HEIC whose image-size box says 16 x 16 while its picture is `side` pixels a side."""
    data = bytearray(encode(Image.fromarray(photo_array(side, side)), "HEIF", quality=50))
    at = data.find(b"ispe")
    struct.pack_into(">II", data, at + 8, 16, 16)
    return bytes(data)


def gif_declaring_a_screen(width: int, height: int) -> bytes:
    """A 16 x 16 GIF whose header declares a `width` x `height` screen: tens of bytes."""
    data = bytearray(encode(Image.new("P", (16, 16), 1), "GIF"))
    struct.pack_into("<HH", data, 6, width, height)
    return bytes(data)


def animated_webp_declaring_a_canvas(width: int, height: int) -> bytes:
    """An animated WebP of two 16 x 16 frames on a declared `width` x `height` canvas."""
    frames = [Image.new("RGB", (16, 16), (40 * i, 0, 0)) for i in range(2)]
    data = bytearray(encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True))
    at = data.find(b"VP8X")
    data[at + 12:at + 15] = (width - 1).to_bytes(3, "little")
    data[at + 15:at + 18] = (height - 1).to_bytes(3, "little")
    return bytes(data)
