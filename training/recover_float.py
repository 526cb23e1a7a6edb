"""Give a MobileNetV2 model whose float file was lost a float16 file again, from its int8 file.

    python -m training.recover_float models/hotdog --test-dir ../shared/datasets/hotdog/test

Why: the hot dog model of 22 Nov 2026 shipped only its int8 file, and on CPUs without
AVX-512 VNNI int8 runs slower than float (`classifier.engine` times both at start-up
and serves the faster, which needs both). Retraining gave a weaker model, so this
rebuilds the float network from the int8 file itself:

1. Every convolution's int8 weights are dequantised with their per-channel scales;
   the converter folded each BatchNormalization into the convolution before it, so
   the bias it left (int32, scaled) becomes that BatchNormalization's offset, its
   other statistics set to the identity.
2. They fill the same Keras network `training.train` builds (MobileNetV2, pooling,
   dense head), which `training.export` turns into float32 and float16 files.
3. The int8 file and the new ones are compared on the test photos. float16 joins
   the model directory, and the card's variants table, only if it stays within
   `--max-quantisation-loss` of the int8 file's accuracy, on the whole set and on
   each subset: the model the card describes must not get worse where it runs.

The rebuilt float network is the int8 network without the rounding of its
activations, so its answers differ from the int8 file's only where a photo was a
close call.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from classifier import card as model_card
from classifier.settings import PROJECT_ROOT, shared_dir
from training import dataset, evaluate

log = logging.getLogger("training.recover_float")

WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def dequantised_layers(int8_file: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(op name, float kernel, float bias) of every weighted operation, in graph order,
    kernels in TFLite's layout: [out, h, w, in] for convolutions, [1, h, w, channels]
    for depthwise ones, [out, in] for the dense layer."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Without the XNNPACK delegate, which would take the weights over and free them.
    interpreter = Interpreter(str(int8_file),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    details = {t["index"]: t for t in interpreter.get_tensor_details()}

    def dequantised(index: int) -> np.ndarray:
        quantisation = details[index]["quantization_parameters"]
        values = interpreter.get_tensor(index).astype(np.float32)
        scales, zero_points = quantisation["scales"], quantisation["zero_points"]
        shape = [1] * values.ndim
        if values.ndim:
            shape[quantisation["quantized_dimension"]] = -1
        return (values - zero_points.reshape(shape)) * scales.reshape(shape)

    return [(op["op_name"], dequantised(op["inputs"][1]), dequantised(op["inputs"][2]))
            for op in interpreter._get_ops_details() if op["op_name"] in WEIGHTED_OPS]


def rebuild(int8_file: Path, classes: Sequence[str], name: str, image_size: int):
    """The float Keras model of `int8_file` (a MobileNetV2 model made by training.train)."""
    import keras

    from training.train import build_model

    settings = argparse.Namespace(base="mobilenet_v2", base_weights="random", image_size=image_size,
                                  dropout=0.0, seed=0, name=name)
    model, base = build_model(len(classes), settings)
    layers = dequantised_layers(int8_file)
    convolutions = [layer for layer in base.layers
                    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    if len(layers) != len(convolutions) + 1 or layers[-1][0] != "FULLY_CONNECTED":
        raise ValueError(f"{int8_file} is not a MobileNetV2 classifier made by training.train "
                         f"({len(layers)} weighted operations for {len(convolutions)} convolutions)")
    names = [layer.name for layer in base.layers]
    for (op, kernel, bias), layer in zip(layers, convolutions, strict=False):
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        if depthwise != (op == "DEPTHWISE_CONV_2D"):
            raise ValueError(f"{int8_file}: {op} where MobileNetV2 has {layer.name}")
        # [out, h, w, in] -> [h, w, in, out]; depthwise [1, h, w, c] -> [h, w, c, 1]
        layer.set_weights([np.transpose(kernel, (1, 2, 3, 0))])
        norm = base.layers[names.index(layer.name) + 1]
        identity_variance = np.full_like(bias, 1.0 - norm.epsilon)  # sqrt(var + eps) == 1
        norm.set_weights([np.ones_like(bias), bias, np.zeros_like(bias), identity_variance])
    _, kernel, bias = layers[-1]
    model.get_layer("scores").set_weights([kernel.T, bias])
    return model


def holds_up(candidate: dict, reference: dict, max_loss: float) -> bool:
    pairs = [(candidate["accuracy"], reference["accuracy"]),
             *((candidate["subsets"][subset], value)
               for subset, value in reference["subsets"].items())]
    return all(got >= wanted - max_loss - 1e-12 for got, wanted in pairs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.recover_float",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--test-dir", type=Path, required=True,
                        help="labelled photos the variants are compared on")
    parser.add_argument("--subset", nargs="*", default=[], metavar="NAME=GLOB[,GLOB]",
                        help="also compare on these file-name subsets")
    parser.add_argument("--max-quantisation-loss", type=float, default=0.005,
                        help="largest accuracy loss against the int8 file float16 may have")
    parser.add_argument("--work-dir", type=Path,
                        help="where the rebuilt variants are kept (default: build/NAME-recovered)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    from training import export
    from training.train import compare_variants, reproduce_command

    card = model_card.load(args.model_dir)
    if card["base_weights"]["base"] != "mobilenet_v2" or "int8" not in card["files"]["variants"]:
        parser.error(f"{args.model_dir} is not a MobileNetV2 model with an int8 file")
    int8_file = args.model_dir / card["files"]["variants"]["int8"]
    work_dir = args.work_dir or PROJECT_ROOT / "build" / f"{card['name']}-recovered"
    work_dir.mkdir(parents=True, exist_ok=True)

    model = rebuild(int8_file, card["classes"], card["name"], card["input"]["width"])
    paths = {"int8": work_dir / "model_int8.tflite"}
    paths["int8"].write_bytes(int8_file.read_bytes())
    for variant in ("float32", "float16"):
        paths[variant] = work_dir / f"model_{variant}.tflite"
        paths[variant].write_bytes(export.to_tflite(export.with_feature_map(model), variant))

    classes, size = card["classes"], (card["input"]["width"], card["input"]["height"])
    examples = dataset.scan_labelled(args.test_dir, classes)
    pixels, labels, examples, _ = dataset.load_arrays(examples, size)
    rows = compare_variants(paths, classes, pixels, labels, examples,
                            dataset.describe_location(args.test_dir, shared_dir()),
                            evaluate.parse_subsets(args.subset))
    by_name = {row["name"]: row for row in rows}
    shipped = dict(card["files"]["variants"])
    if holds_up(by_name["float16"], by_name["int8"], args.max_quantisation_loss):
        shipped["float16"] = paths["float16"].name
        (args.model_dir / shipped["float16"]).write_bytes(paths["float16"].read_bytes())
        log.info("float16 keeps the int8 file's accuracy: added to %s", args.model_dir)
    else:
        log.warning("float16 lost accuracy against the int8 file: not added")
    for row in rows:
        if row["name"] in shipped:
            row["file"] = shipped[row["name"]]
    card["files"]["variants"] = shipped
    card["variants"] = rows
    note = ("; its float files rebuilt from the int8 file's dequantised weights "
            "(training.recover_float)")
    if note not in card["architecture"]["summary"]:
        card["architecture"]["summary"] += note
    command = reproduce_command(list(sys.argv[1:] if argv is None else argv),
                                module="training.recover_float")
    card["reproduce"] = card["reproduce"].split("\n")[0] + "\n" + command
    model_card.write(args.model_dir, card)
    return 0


if __name__ == "__main__":
    sys.exit(main())
