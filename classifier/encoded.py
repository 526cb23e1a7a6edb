"""Pictures written out: the one place a PIL image becomes file bytes or a data URI
(previews, heat layers, contact-sheet thumbnails, photos kept with consent)."""

from __future__ import annotations

import base64
import io

from PIL import Image


def image_bytes(image: Image.Image, fmt: str, **options) -> bytes:
    """`image` encoded as `fmt` (Pillow's name: "JPEG", "PNG"), with Pillow's options."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def data_uri(image: Image.Image, fmt: str, **options) -> str:
    """`image` as a data: URI, for a page or a JSON answer to show inline."""
    encoded = base64.b64encode(image_bytes(image, fmt, **options)).decode("ascii")
    return f"data:image/{fmt.lower()};base64,{encoded}"
