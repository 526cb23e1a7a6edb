"""Keras -> TFLite export in the three variants we compare: float32, float16, int8.

The exported network has two outputs: the class scores, and the last feature map
before global average pooling, which the server reads only to draw a
class-activation map (`classifier.explain`); computing it costs nothing extra, as
the scores are made from it anyway.

The int8 variant is full-integer: weights and activations are quantised, the
ranges calibrated on real training photos, and it takes raw uint8 pixels so the
server feeds decoded images straight in. Its outputs stay int8 (the engine
dequantises them), so no extra operations run at the end of the network.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where used: training.digits' spawned workers never need it
    import tensorflow as tf

from classifier.made_models import replace_with_copy

log = logging.getLogger(__name__)

VARIANTS = ("float32", "float16", "int8")
FEATURES_LAYER = "features"  # the base network's last feature map, as named by train
#: What a model directory ships, in this order: int8 is fastest on CPUs with VNNI, float16
#: on plain AVX2 (stored at half the size, it runs as float32); the server times both.
SHIPPED_VARIANTS = ("int8", "float16")
#: How much accuracy a shipped variant may lose against float32: half a point.
MAX_QUANTISATION_LOSS = 0.005


def with_feature_map(model: tf.keras.Model) -> tf.keras.Model:
    """The same network, with the last feature map as a second output."""
    import keras

    return keras.Model(model.inputs, [model.outputs[0], model.get_layer(FEATURES_LAYER).output],
                       name=model.name)


def feature_extractor_fingerprint(model: tf.keras.Model, feature_layer: str = FEATURES_LAYER) -> str:
    """SHA-256 of everything that makes `model`'s feature map: its input size and the
    weights of every layer up to `feature_layer`, in order. Two models with the same
    fingerprint compute the same feature map from the same pixels, so the server can
    run that part once for both (`classifier.registry.ModelRegistry`)."""
    import hashlib

    import keras

    extractor = keras.Model(model.inputs, model.get_layer(feature_layer).output)
    digest = hashlib.sha256(repr(tuple(extractor.input_shape)).encode())
    for weights in extractor.get_weights():
        digest.update(np.ascontiguousarray(weights, dtype=np.float32).tobytes())
    return "sha256:" + digest.hexdigest()


def to_tflite(model: tf.keras.Model, variant: str,
              calibration_pixels: np.ndarray | None = None, saved_model: Path | None = None) -> bytes:
    """Convert `model` to a TFLite flatbuffer. `calibration_pixels` (uint8,
    N x H x W x 3) is required for int8 and ignored otherwise. `saved_model`: the
    model already written by `save_for_conversion`, which the converter would
    otherwise write again for each variant."""
    import tensorflow as tf

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    converter = (tf.lite.TFLiteConverter.from_saved_model(str(saved_model)) if saved_model
                 else tf.lite.TFLiteConverter.from_keras_model(model))
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
        converter.inference_output_type = tf.int8
    return converter.convert()


def export_variants(model: tf.keras.Model, calibration_pixels: np.ndarray,
                    work_dir: Path) -> dict[str, Path]:
    """Every variant of `model` as `work_dir/model_VARIANT.tflite`."""
    work_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    with tempfile.TemporaryDirectory() as saved:
        saved_model = save_for_conversion(model, Path(saved))
        for variant in VARIANTS:
            log.info("exporting %s", variant)
            paths[variant] = work_dir / f"model_{variant}.tflite"
            paths[variant].write_bytes(to_tflite(model, variant, calibration_pixels, saved_model))
    return paths


def save_for_conversion(model: tf.keras.Model, directory: Path) -> Path | None:
    """`model` as the SavedModel that TFLiteConverter.from_keras_model writes for each
    conversion (its Keras 3 path: the inference call, training=False, as the default
    signature), written once for every variant: writing it is about half of each
    conversion's time (4 of 8 s for MobileNetV2 at 96 px on 2 cores). The files
    converted from it differ from the converter's own only in the byte of their
    conversion metadata naming the source format. None (convert from the Keras model)
    for a model that is not a functional one."""
    import functools

    import keras
    import tensorflow as tf

    if not isinstance(model, keras.src.models.Functional | keras.src.models.Sequential):
        return None
    archive = keras.export.ExportArchive()
    archive.track(model)
    signature = [tf.TensorSpec(tensor.shape, dtype=tensor.dtype, name=tensor.name)
                 for tensor in model.inputs]
    archive.add_endpoint("serve", functools.partial(model.__call__, training=False),
                         [signature] if len(signature) > 1 else signature)
    archive.write_out(str(directory), verbose=False)
    return directory


def shippable_variants(rows: Sequence[dict], max_loss: float = MAX_QUANTISATION_LOSS,
                       reference: dict | None = None) -> list[str]:
    """The variants a model directory ships, the rule every model follows: int8 and
    float16, each only if it is within `max_loss` of the reference on the whole set and
    on each subset (the uploads a model exists for must not pay for a gain elsewhere);
    if neither holds up, float32 alone. `rows` are the card's variants table; the
    reference is float32's row unless given (the ImageNet model, which has no labels,
    compares each file with the Keras model it came from). Empty when not even float32
    holds up: a broken export, or a reference no file can meet."""
    reference = reference or next(r for r in rows if r["name"] == "float32")

    def holds_up(row: dict) -> bool:
        pairs = [(row["accuracy"], reference["accuracy"]),
                 *((row["subsets"][name], value)
                   for name, value in reference.get("subsets", {}).items())]
        return all(got >= wanted - max_loss - 1e-12 for got, wanted in pairs)

    good = [r["name"] for r in rows if holds_up(r)]
    shipped = [name for name in SHIPPED_VARIANTS if name in good]
    return shipped or (["float32"] if "float32" in good else [])


def ship(paths: dict[str, Path], variants: list[str], out: Path) -> dict[str, str]:
    """Copy the chosen variants into the model directory; returns the card's
    `files.variants` (variant -> file name)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for variant in variants:
        files[variant] = paths[variant].name
        replace_with_copy(paths[variant], out / files[variant])
    return files


def write_model_dir(out: Path, paths: dict[str, Path], shipped: list[str], variants: list[dict],
                    classes: list[str], head: Sequence[np.ndarray],
                    extra_features: Sequence[Path] = ()) -> dict:
    """Fill a model directory: the shipped variants (in the order given), labels.txt,
    the dense head (kernel, bias) and a copy of each network whose features the head
    reads beside its own (`extra_features`, as `features_FOLDER.tflite`, FOLDER being
    the model directory the network came from); marks each shipped row of `variants`
    with its file. Returns the card's `files`."""
    files = {"labels": "labels.txt", "head": "head.npz", "variants": ship(paths, shipped, out)}
    for row in variants:
        if row["name"] in shipped:
            row["file"] = files["variants"][row["name"]]
    (out / files["labels"]).write_text("\n".join(classes) + "\n", encoding="utf-8")
    save_head(*head, out / files["head"])
    if extra_features:
        files["extra_features"] = [f"features_{path.resolve().parent.name}.tflite"
                                   for path in extra_features]
        for path, name in zip(extra_features, files["extra_features"], strict=True):
            replace_with_copy(path, out / name)
    return files


def save_head(kernel: np.ndarray, bias: np.ndarray, path: Path) -> None:
    """A dense layer's weights (features x classes) and bias, which turn the feature
    map into per-class activation maps. float16 is ample for a picture."""
    np.savez_compressed(path, kernel=kernel.astype(np.float16), bias=bias.astype(np.float16))


def _calibration_batches(pixels: np.ndarray) -> Iterator[list[np.ndarray]]:
    for image in pixels:
        yield [image[np.newaxis].astype(np.float32)]
