"""Class-activation maps: where in the photo the network saw the class it chose.

Every model here ends in global average pooling and one dense layer, so a class's
score is the average over the last feature map's cells of (features . class
weights): the map of that dot product, cell by cell, is exactly how much each
part of the photo added to the verdict (Zhou et al., 2016). Computed in NumPy from
the feature map the network already outputs and the dense weights saved beside it
(`head.npz`); drawn as a translucent heat layer the page lays over the photo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from classifier.encoded import data_uri

#: Side of the heat layer sent to the browser, which stretches it over the photo:
#: enough for a smooth gradient, small enough to encode in about a millisecond.
LAYER_SIZE = 112
#: Opacity of the hottest part of the layer (0-255); cool parts fade to transparent.
MAX_ALPHA = 170


def head_weights(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The dense layer in a model directory's head file: kernel (features x classes), bias."""
    with np.load(path) as head:
        return head["kernel"].astype(np.float32), head["bias"].astype(np.float32)


def activation_map(features: np.ndarray, kernel: np.ndarray, class_index: int) -> np.ndarray:
    """(height x width) contribution of each cell to the class's score, scaled to 0-1
    (0 where it counts against the class)."""
    contribution = features @ kernel[:, class_index]
    contribution = np.maximum(contribution, 0)
    peak = float(contribution.max())
    return contribution / peak if peak > 0 else contribution


def heat_layer(grid: np.ndarray, size: int = LAYER_SIZE) -> Image.Image:
    """The map as an RGBA picture: a blue-to-red colour scale whose opacity follows
    the activation, so the photo shows through where the class was not seen."""
    smooth = Image.fromarray(grid.astype(np.float32), "F").resize((size, size), Image.Resampling.BILINEAR)
    values = np.clip(np.asarray(smooth), 0, 1)
    colours = _COLOUR_SCALE[np.rint(values * 255).astype(np.uint8)]
    alpha = np.rint(values * MAX_ALPHA).astype(np.uint8)[..., None]
    return Image.fromarray(np.concatenate([colours, alpha], axis=-1), "RGBA")


def explanation(features: np.ndarray, kernel: np.ndarray, class_index: int, label: str, *,
                overlay: bool = True) -> dict:
    """What the API adds with explain=true: the grid of values and the heat layer
    (`overlay`: False leaves the layer to the caller, who draws it from the grid, as
    the upload page does; it is most of an explanation's cost). `kernel` is the model's
    dense layer (features x classes)."""
    grid = activation_map(features, kernel, class_index)
    answer = {"label": label, "grid": np.round(grid, 3).tolist()}
    if overlay:
        answer["overlay"] = data_uri(heat_layer(grid), "PNG", compress_level=1)
    return answer


def _colour_scale() -> np.ndarray:
    """256 RGB colours from dark blue through cyan, yellow to red (a 'jet'-like scale,
    written out here so serving needs no plotting library)."""
    x = np.linspace(0, 1, 256)
    red = np.clip(1.5 - np.abs(4 * x - 3), 0, 1)
    green = np.clip(1.5 - np.abs(4 * x - 2), 0, 1)
    blue = np.clip(1.5 - np.abs(4 * x - 1), 0, 1)
    return np.rint(np.stack([red, green, blue], axis=1) * 255).astype(np.uint8)


_COLOUR_SCALE = _colour_scale()
