"""Train the handwritten-digit model from MNIST.

    python -m training.digits --out models/digits

1. **Data.** MNIST's 60,000 training digits (../shared/datasets/digits/mnist.npz),
   5,000 of them kept aside for validation. Each training digit is used as it is
   and in `--copies` altered copies of the kinds people produce when they draw on
   a canvas or photograph paper: thicker or thinner strokes, a small rotation and
   slant, a different size and place in a larger picture, dark ink on white. Every
   picture, altered or not, then goes through `classifier.digits.mnist_form` - the
   server's own intake - so training sees exactly what serving will.
2. **Model.** A small CNN: three stages of 3x3 convolutions with batch
   normalisation (one of 16 filters, two of 32, two of 64), then global average
   pooling and a dense softmax over the ten digits (feature map -> pooling -> dense,
   so explanations work as for the photo models). About 0.07 M weights.
3. **Training.** Adam with a cosine-decayed learning rate and label smoothing. The
   altered copies are the augmentation: random shifts and rotations on top of them in
   the input pipeline made each epoch 1.5-2x slower and training over ten minutes.
4. **Export and evaluation.** float32 / float16 / int8 like every model here, with
   the accuracy on MNIST's 10,000 test digits sent as 28x28 PNGs through the
   intake, and on the same digits drawn the way a canvas sends them (280x280, dark
   on white, thicker strokes, off-centre); the files kept follow the ship rule of
   every model (`training.export.shippable_variants`).
5. **Model card.** Written by `training.card`, like every model's.
"""

from __future__ import annotations

import argparse
import io
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image, ImageFilter

from classifier import card as model_card
from classifier.calibration import logits_of, scaled
from classifier.digits import SIZE, load_digit, mnist_form
from classifier.intake import DEFAULT_MAX_PIXELS
from classifier.model import Model
from classifier.settings import machine_description, shared_dir
from training import card as training_card
from training import evaluate, export

log = logging.getLogger("training.digits")
CLASSES = [str(d) for d in range(10)]
CREDIT = ("MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges "
          "(CC BY-SA 3.0)")
CANVAS = 280  # the drawing page's canvas, in CSS pixels
#: Filters of the three convolution stages: small enough to train in minutes on two
#: cores, large enough for MNIST (a wider 32-64-128 network took over 4 min an epoch).
FILTERS = (16, 32, 64)
#: 3x3 convolutions per stage. One at full resolution: a second one there cost a
#: quarter of the network's arithmetic, and the time, for no measurable accuracy.
CONVOLUTIONS = (1, 2, 2)
#: Digits per task when pictures are made on every core.
CHUNK = 5000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.digits", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--data", type=Path, help="mnist.npz (default: ../shared/datasets/digits/mnist.npz)")
    p.add_argument("--copies", type=int, default=1, help="altered copies of each training digit")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--validation", type=int, default=5000, help="training digits kept for validation")
    p.add_argument("--limit", type=int, help="use only this many training and test digits (smoke tests)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--work-dir", type=Path, help="where every variant is kept (default: build/NAME)")
    p.add_argument("--answer-accuracy", type=float, default=0.995,
                   help="how often the verdicts given must be expected to be right: under the "
                        "level this sets, answers are \"not sure\" (classifier.calibration)")
    p.add_argument("--calibrate-only", action="store_true",
                   help="train nothing: calibrate the files already in --out again, on the "
                        "validation digits of the run that made them (the same --seed)")
    args = p.parse_args(argv)
    args.data = args.data or shared_dir() / "datasets" / "digits" / "mnist.npz"
    args.work_dir = args.work_dir or Path("build") / args.out.name
    return args


# == 1. Data ====================================================================

def drawn(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An MNIST digit redrawn the way a person might: stroke width, rotation, slant,
    size and place in a larger picture, and dark ink on white paper half the time.
    Worked at twice MNIST's scale, where a 3x3 or 5x5 filter thins or thickens a
    stroke by half or one MNIST pixel."""
    big = Image.fromarray(digit).resize((2 * SIZE, 2 * SIZE), Image.Resampling.BILINEAR)
    stroke = int(rng.integers(-1, 3))  # -1 thinner, 0 as drawn, 1-2 thicker
    if stroke:
        size = 2 * abs(stroke) + 1
        big = big.filter(ImageFilter.MaxFilter(size) if stroke > 0 else ImageFilter.MinFilter(size))
    shear = rng.uniform(-0.25, 0.25)
    big = big.transform(big.size, Image.Transform.AFFINE,
                        (1, shear, -shear * big.size[1] / 2, 0, 1, 0), Image.Resampling.BILINEAR)
    big = big.rotate(rng.uniform(-15, 15), Image.Resampling.BILINEAR)
    canvas = Image.new("L", (round(big.size[0] * rng.uniform(1.0, 1.6)),) * 2, 0)
    room = canvas.size[0] - big.size[0]
    canvas.paste(big, (int(rng.integers(0, room + 1)), int(rng.integers(0, room + 1))))
    pixels = np.asarray(canvas, dtype=np.float32)
    if rng.random() < 0.5:
        pixels = 255 - pixels
    return pixels


def prepare(digits: np.ndarray, labels: np.ndarray, copies: int, seed: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Every digit through the serving intake, plus `copies` redrawn ones each, with
    their labels."""
    pictures = np.concatenate(on_every_core(_prepare_chunk, digits, seed, copies))
    chunks = range(0, len(digits), CHUNK)
    repeated = np.concatenate([np.tile(labels[i:i + CHUNK], copies + 1) for i in chunks])
    return pictures, repeated


def on_every_core(function, digits: np.ndarray, seed: int, *extra) -> list:
    """`function(chunk, *extra, rng)` for chunks of `digits` on every CPU core, in
    order. Each chunk has its own generator seeded from `seed`, so a run gives the same
    pictures on any number of cores."""
    starts = range(0, len(digits), CHUNK)
    seeds = np.random.SeedSequence(seed).spawn(len(starts))
    columns = [[digits[i:i + CHUNK] for i in starts], *([value] * len(starts) for value in extra),
               seeds]
    # Spawned, not forked: this process has TensorFlow's threads running by now.
    with ProcessPoolExecutor(os.cpu_count(), mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(function, *columns))


def _prepare_chunk(digits: np.ndarray, copies: int, seed: np.random.SeedSequence) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = [mnist_form(d.astype(np.float32)) for d in digits]
    for _ in range(copies):
        out += [mnist_form(drawn(d, rng)) for d in digits]
    return np.stack(out)


def _test_chunk(digits: np.ndarray, seed: np.random.SeedSequence) -> dict[str, np.ndarray]:
    """Test digits as the server reads them: sent as 28x28 PNGs, and drawn on a canvas."""
    rng = np.random.default_rng(seed)
    sent = {"png": [as_png(d) for d in digits], "canvas": [as_canvas(d, rng) for d in digits]}
    return {kind: np.stack([load_digit(data, max_pixels=DEFAULT_MAX_PIXELS) for data in files])
            for kind, files in sent.items()}


def as_canvas(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A test digit as the drawing page sends it: 280x280 PNG, dark strokes on white,
    thicker than MNIST's, somewhere off-centre."""
    size = round(CANVAS * rng.uniform(0.45, 0.7))
    big = Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR)
    big = max_filter(big, int(rng.choice([3, 5, 7])))
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    room = CANVAS - size
    canvas.paste(big, (int(rng.integers(0, room + 1)), int(rng.integers(0, room + 1))))
    canvas = Image.eval(canvas, lambda v: 255 - v).convert("RGB")
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG", compress_level=1)  # the pixels are the same at any level; 1 is quickest
    return buffer.getvalue()


def max_filter(image: Image.Image, size: int) -> Image.Image:
    """Pillow's ImageFilter.MaxFilter(size) (the edges repeated outwards), pixel for
    pixel, as the maxima of shifted rows, then of shifted columns: a tenth of its time."""
    reach = size // 2
    padded = np.pad(np.asarray(image), reach, mode="edge")
    height, width = padded.shape[0] - 2 * reach, padded.shape[1] - 2 * reach
    rows = padded[:height].copy()
    for shift in range(1, size):
        np.maximum(rows, padded[shift:shift + height], out=rows)
    out = rows[:, :width].copy()
    for shift in range(1, size):
        np.maximum(out, rows[:, shift:shift + width], out=out)
    return Image.fromarray(out)


def as_png(digit: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, "PNG")
    return buffer.getvalue()


def load_mnist(args: argparse.Namespace, rng: np.random.Generator, *, training: bool = True):
    """MNIST's digits as the intake makes them: (training pictures, labels) with the
    altered copies (None without `training`), (validation pictures, labels) kept aside
    from the training digits, and the raw (test digits, labels), which `test_pictures`
    sends as files."""
    with np.load(args.data) as mnist:
        x_train, y_train = mnist["x_train"][:args.limit], mnist["y_train"][:args.limit]
        x_test, y_test = mnist["x_test"][:args.limit], mnist["y_test"][:args.limit]
    order = rng.permutation(len(x_train))
    val_index, train_index = order[:args.validation], order[args.validation:]
    train = None
    if training:
        log.info("preparing %d training digits and %d altered copies each", len(train_index), args.copies)
        train = prepare(x_train[train_index], y_train[train_index], args.copies, args.seed)
    validation = prepare(x_train[val_index], y_train[val_index], 0, args.seed)
    return train, validation, (x_test, y_test)


# == 2. Model ===================================================================

def build_model(seed: int):
    import keras

    layers = keras.layers
    digit = keras.Input((SIZE, SIZE, 1), name="pixels")  # float 0-255
    x = layers.Rescaling(1 / 255, name="to_0_1")(digit)
    for stage, (filters, convs) in enumerate(zip(FILTERS, CONVOLUTIONS, strict=True)):
        for conv in range(convs):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                              name=f"s{stage}_conv{conv}")(x)
            x = layers.BatchNormalization(name=f"s{stage}_bn{conv}")(x)
            x = layers.ReLU(name=f"s{stage}_relu{conv}")(x)
        if stage < 2:
            x = layers.MaxPooling2D(name=f"s{stage}_pool")(x)
    x = layers.Identity(name=export.FEATURES_LAYER)(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.2, seed=seed, name="dropout")(x)
    scores = layers.Dense(len(CLASSES), activation="softmax", name="scores")(x)
    return keras.Model(digit, scores, name="digits")


# == 3. Training ================================================================

def fit(model, train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray],
        args: argparse.Namespace) -> None:
    """Adam with a cosine-decayed learning rate and light label smoothing, for
    `--epochs` epochs."""
    import keras
    import tensorflow as tf

    (train_x, train_y), (val_x, val_y) = train, validation
    train_ds = (tf.data.Dataset.from_tensor_slices((train_x, train_y))
                .shuffle(len(train_y), seed=args.seed).batch(args.batch_size)
                .map(lambda x, y: (tf.cast(x, tf.float32),
                                   tf.one_hot(y, len(CLASSES))),
                     num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
    val_ds = tf.data.Dataset.from_tensor_slices(
        (val_x.astype(np.float32), tf.one_hot(val_y, len(CLASSES)))).batch(512)
    steps = args.epochs * -(-len(train_y) // args.batch_size)
    model.compile(optimizer=keras.optimizers.Adam(
                      keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.05),
                  metrics=["accuracy"])
    model.fit(train_ds, validation_data=val_ds, epochs=args.epochs,
              verbose=1 if sys.stdout.isatty() else 2)


# == 4. Export and evaluation through the intake ================================

def test_pictures(digits: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The test digits as the server reads them, both ways they reach it: `png`
    (28x28 files) and `canvas` (drawn on the page)."""
    parts = on_every_core(_test_chunk, digits, seed)
    return {kind: np.concatenate([part[kind] for part in parts]) for kind in ("png", "canvas")}


def compare_variants(paths: dict[str, Path], pictures: dict[str, np.ndarray],
                     labels: np.ndarray) -> tuple[list[dict], dict[str, dict[str, np.ndarray]]]:
    """The card's variants table (accuracy on the PNG test digits), and each
    variant's scores on both kinds of test picture."""
    variants, scores = [], {}
    for name, path in paths.items():
        engine = Model(path, CLASSES, name=name)
        scores[name] = {kind: evaluate.predict_pixels(engine, px) for kind, px in pictures.items()}
        variants.append(evaluate.variant_row(engine, path, pictures["png"],
                                             (scores[name]["png"].argmax(1) == labels).mean(),
                                             "MNIST test digits as 28x28 PNGs"))
        log.info("%-8s canvas-style accuracy %.4f", name,
                 (scores[name]["canvas"].argmax(1) == labels).mean())
    return variants, scores


def measure(paths: dict[str, Path], scores: dict[str, np.ndarray], labels: np.ndarray,
            validation: tuple[np.ndarray, np.ndarray], args: argparse.Namespace) -> dict:
    """The card's results for the shipped files at `paths` (by variant, the first the
    card's; `scores`: its raw scores on the test pictures): each file's calibration and
    "not sure" level, read off validation (`classifier.calibration`); then metrics of
    the first file's calibrated scores on validation and on both kinds of test picture,
    and the test plots."""
    val_x, val_y = validation
    held_out = f"{len(val_y):,} MNIST training digits kept aside"
    engines = {variant: Model(path, CLASSES) for variant, path in paths.items()}
    calibrated = evaluate.calibration_card(
        {variant: (evaluate.held_out_logits(engine, val_x), val_y) for variant, engine in engines.items()},
        args.answer_accuracy, "MNIST training digits kept aside")
    first = calibrated["variants"][next(iter(paths))]

    def score(raw: np.ndarray, truth: np.ndarray, name: str) -> tuple[dict, np.ndarray]:
        probabilities = scaled(logits_of(raw), first["temperature"])
        return evaluate.score(probabilities, truth, [], CLASSES, name,
                              not_sure_below=first["not_sure_below"]), probabilities

    validation_result, _ = score(evaluate.predict_pixels(next(iter(engines.values())), val_x),
                                 val_y, held_out)
    test_result, test_scores = score(scores["png"], labels,
                                     "MNIST test digits, each sent as a 28x28 PNG through the intake")
    canvas_result, _ = score(scores["canvas"], labels,
                             "MNIST test digits drawn as a canvas sends them: 280x280, dark "
                             "on white, thicker strokes, off-centre")
    metrics = {"validation": validation_result, "test": test_result, "canvas": canvas_result}
    plots = evaluate.save_plots(test_result, test_scores, labels, [], args.out, mistakes=False)
    return {"metrics": metrics, "plots": {plot.stem: plot.name for plot in plots},
            "calibration": calibrated}


# == 5. Model card ==============================================================

def describe(args: argparse.Namespace, argv: Sequence[str], model, files: dict,
             variants: list[dict], results: dict, labels: dict[str, np.ndarray],
             training_seconds: float) -> dict:
    """The model card of this run (`training.card.build`); `labels` are the training
    and validation pictures' labels, counted on the card."""
    return training_card.build(
        name=args.out.name, title="Which digit is it?",
        description="Reads one handwritten digit, drawn on the page or photographed on paper.",
        classes=CLASSES, files=files,
        input={"width": SIZE, "height": SIZE, "channels": 1, "dtype": "uint8", "color": "L",
               "kind": "digit",
               "resize": "classifier.digits: ink found against the paper (either polarity), "
                         "cropped to its bounding box, fitted into 20x20 keeping the aspect "
                         "ratio, centred by centre of mass in 28x28 (MNIST's form)",
               "preprocessing": "inside the network: x / 255"},
        architecture={"summary": f"small CNN: 3 stages of {CONVOLUTIONS} 3x3 convolutions "
                                 f"of {FILTERS} filters with batch normalisation, global "
                                 "average pooling, dense softmax over 10 digits",
                      "feature_map": list(model.get_layer(export.FEATURES_LAYER).output.shape[1:])},
        base_weights={"source": "none: trained from scratch", "attribution": CREDIT},
        training={"data": {split: _counts(y) for split, y in labels.items()},
                  "settings": {k: v for k, v in sorted(vars(args).items())
                               if k not in ("out", "data", "work_dir")},
                  "epochs_run": {"train": args.epochs},
                  "duration_s": round(training_seconds, 1),
                  "machine": machine_description()},
        variants=variants, reproduce=training_card.reproduce_command("training.digits", argv),
        **results)


# == The run ====================================================================

def main(argv: Sequence[str] | None = None) -> int:
    """One run, the steps in the order of the sections above."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.calibrate_only:
        return recalibrate(args, argv)
    started = time.monotonic()
    import keras

    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train, validation, (test_digits, test_labels) = load_mnist(args, rng)
    model = build_model(args.seed)
    fit(model, train, validation, args)
    training_seconds = time.monotonic() - started

    calibration = train[0][rng.permutation(len(train[0]))[:300]]
    paths = export.export_variants(export.with_feature_map(model), calibration, args.work_dir)
    variants, scores = compare_variants(paths, test_pictures(test_digits, args.seed + 1), test_labels)
    shipped = export.shippable_variants(variants)
    files = export.write_model_dir(args.out, paths, shipped, variants, CLASSES,
                                   model.get_layer("scores").get_weights())
    results = measure({variant: args.out / file for variant, file in files["variants"].items()},
                      scores[shipped[0]], test_labels, validation, args)

    written = describe(args, argv, model, files, variants, results,
                       {"train": train[1], "validation": validation[1]}, training_seconds)
    model_card.write(args.out, written)
    print(training_card.summary(written))
    log.info("done in %.1f min", (time.monotonic() - started) / 60)
    return 0


def recalibrate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """`--calibrate-only`: the shipped files' calibration and every figure that depends
    on it, measured again; refused unless the validation digits rebuilt from `--seed`
    give the card's validation confusion matrix (they are then the training run's)."""
    card = model_card.load(args.out)
    _, validation, (test_digits, test_labels) = load_mnist(args, np.random.default_rng(args.seed),
                                                           training=False)
    paths = {variant: args.out / file for variant, file in card["files"]["variants"].items()}
    first = Model(next(iter(paths.values())), CLASSES)
    scores = {kind: evaluate.predict_pixels(first, pictures) for kind, pictures
              in test_pictures(test_digits, args.seed + 1).items()}
    results = measure(paths, scores, test_labels, validation, args)
    recorded = card["metrics"]["validation"]["confusion_matrix"]
    if results["metrics"]["validation"]["confusion_matrix"] != recorded:
        log.error("these validation digits are not the training run's: give its --seed and --validation")
        return 1
    card.pop("not_sure_below", None)  # the uncalibrated level it replaces
    card.update(results)
    card["reproduce"] = training_card.with_command(
        card["reproduce"], training_card.reproduce_command("training.digits", argv), "--calibrate-only")
    model_card.write(args.out, card)
    print(training_card.summary(card))
    return 0


def _counts(labels: np.ndarray) -> dict:
    per_class = {d: int(n) for d, n in zip(CLASSES, np.bincount(labels, minlength=10), strict=True)}
    return {"total": len(labels), "per_class": per_class, "per_source": {"mnist": len(labels)}}


if __name__ == "__main__":
    sys.exit(main())
