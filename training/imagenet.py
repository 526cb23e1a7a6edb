"""Package a general 1000-class ImageNet classifier as a served model (no training).

    python -m training.imagenet --out models/imagenet [--base efficientnet_lite0]

1. **Network.** The base with its own ImageNet head (EfficientNet-Lite0 by default,
   or MobileNetV2), from the weights files in ../shared. A softmax turns the head's
   logits into scores, and the last feature map is a second output, as for every
   model here, so explanations work the same way.
2. **Classes.** Human-readable names from Keras's `imagenet_class_index.json`
   ("Egyptian_cat" -> "Egyptian cat"); the two names ImageNet uses twice ("crane",
   "maillot") keep their WordNet ids to stay apart.
3. **Export.** TFLite float32, float16 and int8 (calibrated on photos of every
   training split in ../shared), each compared with the Keras float model: top-1
   agreement on every test photo of ../shared (there are no ImageNet labels for
   them), and for scale, how often `hotdog` is the top-1 / top-5 answer on the hot
   dog test photos. int8 and float16 are shipped when they agree as well as the
   `--min-agreement` asks (the ship rule of every model,
   `training.export.shippable_variants`); the server runs the faster.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from classifier import card as model_card
from classifier.model import Model
from classifier.settings import machine_description, shared_dir
from training import card as training_card
from training import dataset, evaluate, export
from training.bases import BASES

log = logging.getLogger("training.imagenet")

#: The full-model weights file (with the ImageNet head) of each base that has one.
FULL_WEIGHTS = {
    "efficientnet_lite0": "efficientnet_lite/efficientnet_lite0_224.keras",
    "mobilenet_v2": "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
}
#: The layers that hold each base's last feature map and its ImageNet head.
FEATURE_LAYER = {"efficientnet_lite0": "re_lu_32", "mobilenet_v2": "out_relu"}
HEAD_LAYER = "predictions"
CLASS_INDEX = "mobilenet_v2/imagenet_class_index.json"
TRAIN_SPLITS = ("hotdog/train", "pizza/train", "phototype/train")
TEST_SPLITS = ("hotdog/test", "pizza/test", "phototype/test")
#: What a file is compared with: the Keras model it was exported from, which agrees with
#: itself on every photo (the ship rule's reference; these photos have no ImageNet labels).
KERAS_MODEL = {"name": "keras", "accuracy": 1.0}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.imagenet", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--base", choices=sorted(FULL_WEIGHTS), default="efficientnet_lite0")
    p.add_argument("--calibration-images", type=int, default=400,
                   help="training photos (of every set, evenly) that calibrate int8 ranges")
    p.add_argument("--min-agreement", type=float, default=0.97,
                   help="smallest top-1 agreement with the Keras model a shipped variant may have")
    p.add_argument("--work-dir", type=Path, help="where every variant is kept (default: build/NAME)")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    args.work_dir = args.work_dir or Path("build") / args.out.name
    return args


def class_names(index_file: Path) -> list[str]:
    """ImageNet's 1000 class names, readable and unique."""
    index = json.loads(index_file.read_text(encoding="utf-8"))
    entries = [index[str(i)] for i in range(len(index))]
    repeated = {name for name, n in Counter(name for _, name in entries).items() if n > 1}
    return [name.replace("_", " ") + (f" ({wnid})" if name in repeated else "")
            for wnid, name in entries]


def build(base: str):
    """pixels 0-255 -> (softmax scores, last feature map), and the ImageNet head."""
    import keras

    weights = shared_dir() / "weights" / FULL_WEIGHTS[base]
    if base == "mobilenet_v2":
        pixels = keras.Input((224, 224, 3), name="pixels")
        scaled = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_minus1_plus1")(pixels)
        full = keras.applications.MobileNetV2(input_tensor=scaled, weights=str(weights))
    else:
        full = keras.models.load_model(weights)
    head = full.get_layer(HEAD_LAYER)
    scores = full.output
    if head.get_config().get("activation") != "softmax":  # Lite0's head gives logits
        scores = keras.layers.Softmax(name="scores")(scores)
    network = keras.Model(full.inputs, [scores, full.get_layer(FEATURE_LAYER[base]).output],
                          name="imagenet")
    return network, head


def photos(splits: Sequence[str]) -> list[dataset.Example]:
    root = shared_dir() / "datasets"
    return [dataset.Example(path, 0) for split in splits
            for path in dataset.image_files(root / split)]


def hotdog_rate(scores: np.ndarray, classes: list[str], k: int) -> float:
    hotdog = classes.index("hotdog")
    return float((np.argsort(-scores, axis=1)[:, :k] == hotdog).any(axis=1).mean())


def compare_variants(paths: dict[str, Path], classes: list[str], pixels: np.ndarray,
                     reference: np.ndarray) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The card's variants table, each file's "accuracy" being its top-1 agreement with
    the Keras model's answers (`reference`) on the test photos, and each file's scores."""
    variants, scores = [], {}
    for name, path in paths.items():
        engine = Model(path, classes, name=name)
        scores[name] = evaluate.predict_pixels(engine, pixels)
        variants.append(evaluate.variant_row(engine, path, pixels,
                                             (scores[name].argmax(axis=1) == reference).mean(),
                                             "top-1 agreement with the Keras float model"))
    return variants, scores


def measure(agreement: float, scores: np.ndarray, hotdogs: np.ndarray, classes: list[str]) -> dict:
    """The card's metrics for the shipped file: its agreement with the Keras model and,
    for scale, how often it names the hot dog test photos `hotdog` (`scores`: its
    scores on the test photos, `hotdogs`: which of them are hot dogs)."""
    on_hotdogs = {"dataset": "hotdog/test/hotdog", "n": int(hotdogs.sum())}
    return {
        "keras_agreement": {
            "dataset": ", ".join(TEST_SPLITS), "n": len(hotdogs), "accuracy": agreement,
            "note": "top-1 agreement with the Keras float model (these photos have no "
                    "ImageNet labels)"},
        "hotdog_top1": {
            **on_hotdogs, "accuracy": hotdog_rate(scores[hotdogs], classes, 1),
            "note": "share of the hot dog test photos whose top-1 class is hotdog"},
        "hotdog_top5": {
            **on_hotdogs, "accuracy": hotdog_rate(scores[hotdogs], classes, 5),
            "note": "share of the hot dog test photos with hotdog among the top 5"},
    }


def describe(args: argparse.Namespace, argv: Sequence[str], network, classes: list[str],
             files: dict, variants: list[dict], metrics: dict,
             calibration: list[dataset.Example], seconds: float) -> dict:
    """The model card (`training.card.build`); `calibration` are the photos that set
    the int8 ranges, the only data this model saw."""
    base = BASES[args.base]
    return training_card.build(
        name=args.out.name, title="What is in the photo? (ImageNet)",
        description="Names what a photo shows among ImageNet's 1000 everyday classes "
                    "(animals, objects, foods, places), with its five best guesses.",
        classes=classes, files=files,
        input=training_card.photo_input((network.input_shape[2], network.input_shape[1]),
                                        base.preprocessing),
        architecture={"summary": f"{base.title} with its ImageNet head (global average "
                                 "pooling, dense, softmax over 1000 classes); no retraining",
                      "feature_map": list(network.outputs[1].shape[1:]),
                      "feature_extractor": export.feature_extractor_fingerprint(
                          network, FEATURE_LAYER[args.base])},
        base_weights={"base": base.name, "source": Path(FULL_WEIGHTS[args.base]).name,
                      "attribution": base.attribution},
        training={"data": {"calibration": dataset.counts(calibration, ["photo"])},
                  "settings": {"calibration_images": args.calibration_images,
                               "min_agreement": args.min_agreement, "seed": args.seed},
                  "epochs_run": {}, "duration_s": round(seconds, 1),
                  "machine": machine_description()},
        metrics=metrics, variants=variants,
        reproduce=training_card.reproduce_command("training.imagenet", argv))


def main(argv: Sequence[str] | None = None) -> int:
    """The packaging, step by step."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    started = time.monotonic()
    classes = class_names(shared_dir() / "weights" / CLASS_INDEX)
    network, head = build(args.base)
    size = (network.input_shape[2], network.input_shape[1])

    # Calibration photos: an even share of every training split.
    rng = np.random.default_rng(args.seed)
    pool = photos(TRAIN_SPLITS)
    chosen = [pool[i] for i in sorted(rng.permutation(len(pool))[:args.calibration_images])]
    calibration, *_ = dataset.load_arrays(chosen, size)

    # The reference: the Keras float model's answers on every test photo.
    test_x, _, tests, _ = dataset.load_arrays(photos(TEST_SPLITS), size)
    reference = network.predict(test_x.astype(np.float32), batch_size=32, verbose=0)[0].argmax(axis=1)
    hotdogs = np.array(["hotdog/test/hotdog" in str(e.path) for e in tests])

    paths = export.export_variants(network, calibration, args.work_dir)
    variants, scores = compare_variants(paths, classes, test_x, reference)
    shipped = export.shippable_variants(variants, 1 - args.min_agreement, KERAS_MODEL)
    if not shipped:
        log.error("no variant agrees with the Keras model on %.0f %% of the photos",
                  100 * args.min_agreement)
        return 1
    files = export.write_model_dir(args.out, paths, shipped, variants, classes, head.get_weights())
    first = next(v for v in variants if v["name"] == shipped[0])
    metrics = measure(first["accuracy"], scores[shipped[0]], hotdogs, classes)

    written = describe(args, argv, network, classes, files, variants, metrics, chosen,
                       time.monotonic() - started)
    model_card.write(args.out, written)
    print(training_card.summary(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
