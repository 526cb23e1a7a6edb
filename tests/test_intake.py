"""classifier.intake: every kind of upload becomes upright RGB, or a specific error."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from classifier import intake
from classifier.intake import (
    CorruptImage,
    EmptyImage,
    ImageError,
    ImageTooLarge,
    UnsupportedImage,
    decode_image,
    load_pixels,
)
from tests import images

SIZE = (224, 224)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "HEIF"])
def test_every_accepted_format_decodes_to_rgb(fmt):
    image = decode_image(images.in_format(fmt))
    assert image.mode == "RGB" and image.size == (200, 150)


@pytest.mark.parametrize("make, expected_mode_before", [
    (images.png_16bit_grey, "I;16"),
    (images.cmyk_jpeg, "CMYK"),
    (images.palette_with_transparency, "P"),
    (images.la_png, "LA"),
    (lambda: images.png(mode="1"), "1"),
    (lambda: images.png(mode="L"), "L"),
    (lambda: images.png(mode="RGBA"), "RGBA"),
])
def test_odd_modes_become_rgb(make, expected_mode_before):
    data = make()
    with Image.open(io.BytesIO(data)) as raw:
        assert raw.mode.startswith(expected_mode_before[:1])
    assert decode_image(data).mode == "RGB"


def test_16bit_grey_is_scaled_not_clipped():
    pixels = np.asarray(decode_image(images.png_16bit_grey()))
    # A ramp from 0 to 65535 must cover the whole 8-bit range smoothly, not saturate.
    assert pixels.min() == 0 and pixels.max() == 255
    assert 100 < np.median(pixels) < 155


def test_transparency_is_composited_on_white():
    pixels = np.asarray(decode_image(images.rgba_transparent_png()))
    assert (pixels == 255).all()  # fully transparent red -> white, not red or black


def test_animation_uses_the_first_frame():
    for fmt in ("GIF", "WEBP"):
        first = np.asarray(decode_image(images.in_format(fmt, 64, 48)), np.int16)
        animated = np.asarray(decode_image(images.animated(fmt)), np.int16)
        expected = np.asarray(decode_image(images.encode(
            Image.fromarray(images.photo_array(64, 48, seed=0)), fmt)), np.int16)
        assert animated.shape == first.shape
        assert np.abs(animated - expected).mean() < 8, fmt


def test_a_large_16_bit_photo_reduced_before_turning_is_still_turned():
    """Reduced in bands, a 16-bit photo must keep the EXIF block its turn is read from."""
    stored = Image.fromarray((np.arange(2400 * 1200, dtype=np.uint32).reshape(1200, 2400) % 65536)
                             .astype(np.uint16))  # 2400 wide, 1200 tall
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_image(images.encode(stored, "PNG", exif=exif.tobytes()), draft_size=(190, 190))
    assert decoded.size[1] > decoded.size[0]


def test_an_orientation_stored_as_a_long_is_read():
    entries = [(0x0112, 4, 1, struct.pack("<I", 6))]
    block = b"Exif\x00\x00" + images.exif_directory(entries)
    decoded = decode_image(images.encode(Image.fromarray(images.photo_array(64, 32)), "JPEG", exif=block))
    assert decoded.size == (32, 64)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "HEIF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation, fmt):
    upright = Image.fromarray(images.photo_array(160, 90))
    decoded = decode_image(images.with_orientation(upright, orientation, fmt))
    assert decoded.size == upright.size
    difference = np.abs(np.asarray(decoded, np.int16) - np.asarray(upright, np.int16)).mean()
    assert difference < 6, f"orientation {orientation} not undone (mean diff {difference:.1f})"


def test_large_jpeg_is_decoded_at_reduced_scale_but_still_covers_the_input():
    data = images.jpeg(4000, 3000)
    image = decode_image(data, draft_size=SIZE)
    assert SIZE[0] <= image.size[0] <= 4000 // 4  # DCT scaling kicked in
    assert load_pixels(data, SIZE).shape == (224, 224, 3)


def test_pixels_are_uint8_at_the_input_size():
    pixels = load_pixels(images.png(1, 10_000), SIZE)
    assert pixels.dtype == np.uint8 and pixels.shape == (224, 224, 3)


@pytest.mark.parametrize("data, error", [
    (b"", EmptyImage),
    (b"hello, world", UnsupportedImage),
    (b"<html><body>hi</body></html>", UnsupportedImage),
    (b'<svg xmlns="http://www.w3.org/2000/svg"/>', UnsupportedImage),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", UnsupportedImage),
    (b"PK\x03\x04" + b"\x00" * 40, UnsupportedImage),
    (images.truncated(images.jpeg()), CorruptImage),
    (images.truncated(images.png()), CorruptImage),
    (images.png_bomb(), ImageTooLarge),
    (images.thin_png(1, intake.MAX_SIDE + 1), ImageTooLarge),
    (images.thin_png(intake.MAX_SIDE + 1, 1), ImageTooLarge),
])
def test_bad_input_raises_a_specific_error(data, error):
    with pytest.raises(error) as info:
        load_pixels(data, SIZE)
    assert info.value.message and info.value.status in (400, 415, 422)


def test_pixel_limit_is_configurable():
    with pytest.raises(ImageTooLarge):
        decode_image(images.jpeg(400, 300), max_pixels=100_000)
    assert decode_image(images.jpeg(400, 300), max_pixels=120_000).size == (400, 300)


def test_exotic_formats_are_not_even_tried():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
    with pytest.raises(UnsupportedImage):
        decode_image(eps)
    assert "EPS" not in intake.ACCEPTED_FORMATS


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_any_bytes_give_pixels_or_a_documented_error(data):
    try:
        pixels = load_pixels(data, SIZE)
    except ImageError as exc:
        assert exc.status in (400, 415, 422) and exc.code
    else:
        assert pixels.shape == (224, 224, 3)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"]),
       st.integers(0, 2**32 - 1), st.integers(1, 60), st.floats(0.05, 1.0))
def test_damaged_real_images_give_pixels_or_a_documented_error(fmt, seed, flips, keep):
    data = images.truncated(images.bit_flipped(images.in_format(fmt, 48, 32), flips, seed), keep)
    try:
        pixels = load_pixels(data, SIZE)
    except ImageError as exc:
        assert exc.status in (400, 415, 422)
    else:
        assert pixels.shape == (224, 224, 3)
