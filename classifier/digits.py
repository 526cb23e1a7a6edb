"""Digit intake: any picture of one handwritten digit -> a 28x28 image the way MNIST
made its digits.

MNIST's digits are light strokes on black, the digit's bounding box scaled to fit
20x20 pixels keeping its aspect ratio (anti-aliased), then placed in a 28x28
frame so that its centre of mass is at the centre. A digit drawn on a white
canvas or photographed on paper looks nothing like that until it gets the same
treatment, so both training (`training.digits`) and serving use this module.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from classifier.decode_cost import DecodeBudget
from classifier.intake import ImageError, decode_image

SIZE = 28          # MNIST's frame
BOX = 20           # the box MNIST fits each digit's bounding box into
#: Longest side of a picture read as a digit: the drawing canvas is 280 px, and a photo
#: of a digit needs no more than this to keep its strokes.
MAX_SIDE = 1024
#: Below this contrast between ink and paper (0-255), the picture holds no digit.
MIN_CONTRAST = 40
#: Ink is what differs from the paper by more than this share of the contrast:
#: low enough to keep faint pencil, high enough to drop paper texture and JPEG noise.
INK_THRESHOLD = 0.35


class NoDigit(ImageError):
    code = "no_digit"
    status = 422


def load_digit(data: bytes, *, max_pixels: int, budget: DecodeBudget | None = None) -> np.ndarray:
    """Untrusted bytes -> uint8 array (28, 28, 1), light digit on black."""
    image = decode_image(data, max_pixels=max_pixels, draft_size=(4 * SIZE, 4 * SIZE), budget=budget)
    # A strip (223 x 50,000) is too thin for the decoder's reduction by whole factors:
    # shrunk here, keeping its shape, before the float copies below (they held 309 MB).
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    return mnist_form(np.asarray(image.convert("L"), dtype=np.float32))


def mnist_form(grey: np.ndarray) -> np.ndarray:
    """A greyscale picture of one digit (any size, either polarity) in MNIST's form."""
    ink = _ink(grey)
    rows, cols = np.flatnonzero((ink > 0).any(axis=1)), np.flatnonzero((ink > 0).any(axis=0))
    if not len(rows):
        raise NoDigit("No digit found: the picture is blank. Draw or photograph one digit.")
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    height, width = ink.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Reduce in two steps: a box filter keeps thin strokes from vanishing, then an
    # anti-aliased resize to the final size, as MNIST's own scaling did.
    picture = Image.fromarray(np.clip(ink, 0, 255).astype(np.uint8))
    if max(height, width) > 4 * BOX:
        picture = picture.reduce(max(1, max(height, width) // (2 * BOX)))
    digit = np.asarray(picture.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    frame = np.zeros((SIZE, SIZE), np.float32)
    total = digit.sum()
    if total <= 0:
        raise NoDigit("No digit found: the strokes are too faint.")
    ys, xs = np.mgrid[0:digit.shape[0], 0:digit.shape[1]]
    centre_y, centre_x = (ys * digit).sum() / total, (xs * digit).sum() / total
    top = round(SIZE / 2 - centre_y - 0.5)
    left = round(SIZE / 2 - centre_x - 0.5)
    top = min(max(top, 0), SIZE - digit.shape[0])
    left = min(max(left, 0), SIZE - digit.shape[1])
    frame[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)[:, :, np.newaxis]


def _ink(grey: np.ndarray) -> np.ndarray:
    """The strokes as light-on-dark 0-255, whatever the polarity of the picture.

    The paper is the picture's most common brightness (its border, mostly), the ink
    whatever departs from it: dark ink on white paper and chalk on a board alike."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = float(np.median(border))
    distance = np.abs(grey - paper)
    contrast = float(np.percentile(distance, 99.5))
    if contrast < MIN_CONTRAST:
        raise NoDigit("No digit found: the picture is blank or too faint. "
                      "Draw or photograph one digit.")
    ink = np.clip((distance - INK_THRESHOLD * contrast) / ((1 - INK_THRESHOLD) * contrast), 0, 1)
    return ink * 255
