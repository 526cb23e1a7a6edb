"""Keras -> TFLite export in the three variants we compare: float32, float16, int8.

The int8 variant is full-integer: weights and activations are quantised, the
ranges calibrated on real training photos, and it takes raw uint8 pixels so the
server feeds decoded images straight in. Its output stays float32, so class
scores need no dequantising by callers.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import tensorflow as tf

VARIANTS = ("float32", "float16", "int8")


def to_tflite(model: tf.keras.Model, variant: str,
              calibration_pixels: np.ndarray | None = None) -> bytes:
    """Convert `model` to a TFLite flatbuffer. `calibration_pixels` (uint8,
    N x H x W x 3) is required for int8 and ignored otherwise."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        if calibration_pixels is None or not len(calibration_pixels):
            raise ValueError("int8 export needs calibration photos")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _calibration_batches(calibration_pixels)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
    return converter.convert()


def _calibration_batches(pixels: np.ndarray) -> Iterator[list[np.ndarray]]:
    for image in pixels:
        yield [image[np.newaxis].astype(np.float32)]
