"""Train an image classifier by transfer learning from an ImageNet network.

    python -m training.train DATA_DIR --out models/NAME [options]

DATA_DIR holds one sub-folder of photos per class; any number of classes >= 2
works. The run reads top to bottom like this:

1. **Data.** Photos are read through `classifier.intake` (the server's own
   intake), so training and serving see identical pixels. Extra folders can be
   added to a class (`--add not_hotdog=DIR`), reviewed mistakes dropped
   (`--exclude FILE`), a seeded share of some photos held out untouched as an
   independent check (`--holdout GLOB`), and a stratified, seeded validation
   split taken (or an explicit `--val-dir`).
2. **Model.** The ImageNet features of a base network (`--base`: MobileNetV2,
   EfficientNet-Lite0 or Lite2, weights from a local file; see `training.bases`)
   under global average pooling and a dense softmax head. Pixel scaling lives
   inside the model, so the exported file takes plain 0-255 RGB and no caller
   re-implements preprocessing.
3. **Phase 1: linear probe.** The base is frozen; the head is solved exactly as
   an L2-regularised logistic regression of its pooled features (every photo and
   its mirror image), class-weighted when the classes are unbalanced
   (`--source-balance` also lets small sources within a class weigh more), the
   strength chosen on validation.
4. **Phase 2: fine-tuning.** The top blocks of the base learn too, on augmented
   photos (flips, rotation, zoom, brightness, contrast, optionally mixup), at a low
   learning rate (cosine decay), with every BatchNormalization layer kept frozen (its
   statistics were estimated on ImageNet and small batches would wreck them).
   It stops early on validation loss and keeps the best weights.
5. **Export.** TFLite float32, float16 and full-integer int8 (calibrated on
   training photos), each with the last feature map as a second output (for
   class-activation maps); every variant is evaluated and timed. int8 and float16
   are shipped when within `--max-quantisation-loss` of float32 accuracy: which
   is faster depends on the CPU, so the server times them at load.
6. **Model card.** `model_card.json` and `MODEL_CARD.md`: classes, input,
   metrics of the shipped file, data counts, settings and this exact command.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

import numpy as np

from classifier import card as model_card
from classifier.litert import Network
from classifier.model import Model
from classifier.settings import PROJECT_ROOT, machine_description, shared_dir
from training import dataset, evaluate, export
from training.bases import BASES, unfreeze_top_blocks
from training.dataset import DataError, Example

log = logging.getLogger("training.train")

# What a model directory ships: int8 is fastest on CPUs with VNNI, float on plain AVX2;
# float16 storage halves the float file and runs as float32.
SHIPPED_VARIANTS = ("int8", "float16")


# == 1. Settings ===============================================================

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.train",
                                description="Transfer-learn an image classifier.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("data_dir", type=Path, help="one sub-folder of photos per class")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--name", help="model name (default: the --out folder's name)")
    p.add_argument("--title", help="a few words saying what the model tells, shown to people "
                                   "(default: the classes)")
    p.add_argument("--description", default="An image classifier.",
                   help="one sentence for the model card and the page")
    data = p.add_argument_group("data")
    data.add_argument("--add", nargs="*", default=[], metavar="CLASS=PATH",
                      help="add the photos of a folder, or of a glob like DIR/dtu_food_*, "
                           "to CLASS (a new class if DATA_DIR has no such folder)")
    data.add_argument("--corrections", type=Path, metavar="DIR",
                      help="photos people corrected (`flask feedback export`), one sub-folder "
                           "per class: always trained on, never split off")
    data.add_argument("--only", nargs="*", default=[], metavar="GLOB",
                      help="train only on photos whose names match these patterns")
    data.add_argument("--exclude", type=Path, help="file of photo names to leave out")
    data.add_argument("--val-dir", type=Path, help="explicit validation folder")
    data.add_argument("--val-fraction", type=float, default=0.15,
                      help="share of training photos used for validation")
    data.add_argument("--holdout", nargs="*", default=[], metavar="GLOB",
                      help="hold out a share of the photos matching these names")
    data.add_argument("--holdout-fraction", type=float, default=0.3)
    data.add_argument("--test-dir", type=Path, help="labelled test folder for the card")
    data.add_argument("--test-add", nargs="*", default=[], metavar="CLASS=PATH",
                      help="add these photos to the test set (like --add)")
    data.add_argument("--subset", nargs="*", default=[], metavar="NAME=GLOB[,GLOB]",
                      help="also report test accuracy on these file-name subsets")
    model = p.add_argument_group("model")
    model.add_argument("--base", choices=sorted(BASES), default="mobilenet_v2",
                       help="the ImageNet network to start from")
    model.add_argument("--base-weights",
                       help="the base's no-top weights file (default: the one in "
                            "../shared/weights); 'random' starts MobileNetV2 untrained "
                            "(smoke tests)")
    model.add_argument("--image-size", type=int,
                       help="square input size (default: the base's own)")
    model.add_argument("--dropout", type=float, default=0.3)
    model.add_argument("--extra-features", type=Path, nargs="*", default=[], metavar="TFLITE",
                       help="served networks (another model's .tflite, same input size) whose "
                            "pooled last feature map the head reads beside the base's; "
                            "needs --fine-tune-blocks 0")
    fit = p.add_argument_group("training")
    fit.add_argument("--batch-size", type=int, default=32)
    fit.add_argument("--probe-c", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
                     help="inverse L2 strengths tried for the phase-1 linear probe; the one "
                          "with the lowest validation log-loss is kept")
    fit.add_argument("--fine-tune-epochs", type=int, default=8)
    fit.add_argument("--fine-tune-blocks", type=int, default=10,
                     help="how many of the base's top blocks learn in phase 2 "
                          "(MobileNetV2 and Lite0 have 16, Lite2 21; 0 skips phase 2)")
    fit.add_argument("--fine-tune-lr", type=float, default=1e-4,
                     help="starting learning rate of phase 2 (cosine decay to 0)")
    fit.add_argument("--label-smoothing", type=float, default=0.1)
    fit.add_argument("--mixup", type=float, default=0.0,
                     help="blend training photos pairwise, Beta(this, this) weights; 0 is off")
    fit.add_argument("--source-balance", type=float, default=0.0,
                     help="within a class, a source (file-name prefix) of n photos weighs "
                          "n ** (1 - this): 0 as they come, 0.5 square-root, 1 all alike")
    fit.add_argument("--patience", type=int, default=3, help="early-stopping patience")
    fit.add_argument("--seed", type=int, default=42)
    exporting = p.add_argument_group("export")
    exporting.add_argument("--calibration-images", type=int, default=200,
                        help="training photos used to calibrate int8 ranges")
    exporting.add_argument("--max-quantisation-loss", type=float, default=0.005,
                        help="largest accuracy loss against float32 a shipped variant may have")
    exporting.add_argument("--work-dir", type=Path,
                        help="where every variant and the Keras model are kept "
                             "(default: build/NAME)")
    args = p.parse_args(argv)
    if args.extra_features and args.fine_tune_blocks > 0:
        p.error("--extra-features needs --fine-tune-blocks 0: the head of a fine-tuned "
                "base could not be exported with the other networks' features")
    args.name = args.name or args.out.name
    base = BASES[args.base]
    args.image_size = args.image_size or base.image_size
    args.base_weights = args.base_weights or str(base.default_weights())
    args.work_dir = args.work_dir or PROJECT_ROOT / "build" / args.name
    return args


# == 2. Data ===================================================================

@dataclass
class Splits:
    classes: list[str]
    train: list[Example]
    validation: list[Example]
    holdout: list[Example]
    excluded: list[str]
    corrections: int = 0


def gather(args: argparse.Namespace) -> Splits:
    classes, examples = dataset.scan_classes(args.data_dir)
    dataset.add_photos(examples, classes, args.add, new_classes=True)
    examples = dataset.only_matching(examples, args.only)
    excluded = []
    if args.exclude:
        names = dataset.read_name_list(args.exclude)
        excluded = sorted(e.path.name for e in examples if e.path.name in names)
        examples = [e for e in examples if e.path.name not in names]
    examples, holdout = dataset.split_off(examples, args.holdout_fraction if args.holdout else 0,
                                          args.seed, dataset.matches(args.holdout))
    if args.val_dir:
        validation = dataset.scan_labelled(args.val_dir, classes)
    else:
        examples, validation = dataset.split_off(examples, args.val_fraction, args.seed + 1)
    corrections = []
    if args.corrections:
        folders = sorted(p for p in args.corrections.iterdir() if p.is_dir())
        dataset.add_photos(corrections, classes, [f"{f.name}={f}" for f in folders],
                           new_classes=False)
        examples += corrections
    for index, name in enumerate(classes):
        if not any(e.label == index for e in examples):
            raise DataError(f"class {name!r} has no training photos left after the splits")
    if not validation:
        raise DataError("the validation split is empty; add photos or raise --val-fraction")
    return Splits(classes, examples, validation, holdout, excluded, len(corrections))


def read(examples: Sequence[Example], size: tuple[int, int], what: str):
    from tqdm import tqdm

    pixels, labels, kept, skipped = dataset.load_arrays(
        examples, size, lambda xs: tqdm(xs, desc=f"reading {what}", unit="photo"))
    if skipped:
        log.warning("%s: skipped %d unreadable photos", what, len(skipped))
    return pixels, labels, kept, len(skipped)


# == 3. Model ==================================================================

def build_model(num_classes: int, args: argparse.Namespace):
    import keras

    weights = {"random": None}.get(args.base_weights, args.base_weights)
    if weights is not None and not Path(weights).is_file():
        raise DataError(f"base weights not found: {weights} (set --base-weights or "
                        "NOTHOTDOG_SHARED)")
    base = BASES[args.base].build(args.image_size, weights)
    base.trainable = False
    pixels = keras.Input((args.image_size, args.image_size, 3), name="pixels")  # float 0-255 RGB
    x = base(pixels, training=False)  # BatchNorm stays in inference mode, even when fine-tuning
    x = keras.layers.Identity(name=export.FEATURES_LAYER)(x)  # named, for the feature-map output
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(args.dropout, seed=args.seed, name="dropout")(x)
    scores = keras.layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(pixels, scores, name=args.name), base


def augmenter(seed: int):
    """Photo-level changes a real photo could plausibly have; values in 0-255."""
    import keras

    layers = keras.layers
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(0.06, fill_mode="reflect", seed=seed + 1),   # about +-20 degrees
        layers.RandomZoom((-0.25, 0.05), fill_mode="reflect", seed=seed + 2),  # mostly zoom in
        layers.RandomBrightness(0.2, value_range=(0, 255), seed=seed + 3),
        layers.RandomContrast(0.2, seed=seed + 4),
    ], name="augment")


def make_dataset(pixels, labels, num_classes, batch_size, *, weights=None,
                 augment=None, mixup=0.0, seed=0):
    """Batches of (float pixels, one-hot labels, weights). `augment` changes each photo;
    `mixup` > 0 blends each batch with itself reversed, lam ~ Beta(mixup, mixup)."""
    import tensorflow as tf

    weights = np.ones(len(labels), np.float32) if weights is None else weights
    ds = tf.data.Dataset.from_tensor_slices((pixels, labels, weights))
    if augment is not None:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).enumerate()

    def prepare(batch, xyw):
        x, y, w = xyw
        x = tf.cast(x, tf.float32)
        if augment is not None:
            x = tf.clip_by_value(augment(x, training=True), 0.0, 255.0)
        y = tf.one_hot(y, num_classes)
        if mixup > 0:
            x, y, w = blend(batch, x, y, w)
        return x, y, w

    def blend(batch, x, y, w):
        # Beta(a, a) as a ratio of two gammas, seeded by the batch's position so the run
        # stays deterministic (the shuffle still pairs different photos every epoch).
        shape = tf.shape(x)[:1]
        key = tf.cast(batch, tf.int32)
        g1 = tf.random.stateless_gamma(shape, seed=tf.stack([seed, key]), alpha=mixup)
        g2 = tf.random.stateless_gamma(shape, seed=tf.stack([seed + 1, key]), alpha=mixup)
        lam = g1 / (g1 + g2)
        return (lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[::-1],
                lam[:, None] * y + (1 - lam[:, None]) * y[::-1],
                lam * w + (1 - lam) * w[::-1])

    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=True).prefetch(tf.data.AUTOTUNE)


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Weights so every class counts as much as the others overall."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return len(labels) / (num_classes * np.maximum(counts, 1))


def sample_weights(labels: np.ndarray, sources: Sequence[str], class_weights: np.ndarray,
                   source_balance: float) -> np.ndarray:
    """Per-photo weights: the class weight, and within each class a share that lets
    small sources count more (`--source-balance`). A class's total weight is kept, so
    the classes stay balanced against each other. Why: one kind of photo that the
    test of real use is full of can be a small folder in the training data (a few
    dozen bare-sausage photos beside hundreds of chili dogs) and barely move the model."""
    weights = class_weights[labels].astype(np.float64)
    if source_balance:
        groups = list(zip(labels.tolist(), sources, strict=True))
        sizes = Counter(groups)
        share = np.array([sizes[group] ** -source_balance for group in groups])
        for label in np.unique(labels):
            mine = labels == label
            share[mine] *= mine.sum() / share[mine].sum()
        weights *= share
    return weights.astype(np.float32)


def fit_head(model, train_x, train_y, sample_weight, val_x, val_y,
             strengths: Sequence[float], extras: Sequence[Network] = ()) -> dict:
    """Phase 1 as a linear probe: the head becomes the L2-regularised logistic regression
    of the base's pooled features (each photo as it is and mirrored), solved exactly,
    the strength chosen by validation log-loss. Why not train the head by gradient
    descent: a probe gets the best head the frozen features allow in seconds instead
    of epochs, and fine-tuning that starts from a good head moves the pretrained
    features less (LP-FT, Kumar et al. 2022), which keeps them general.

    With `extras`, a second probe reads their pooled feature maps after the base's:
    that one is the model's head (returned as `head`, kernel and bias), while the
    Keras model keeps the base-only probe, so its exported file still classifies alone."""
    import keras

    pooled = keras.Model(model.input, model.get_layer("pool").output)

    def base_features(pixels):
        return np.concatenate([pooled.predict_on_batch(pixels[i:i + 64].astype(np.float32))
                               for i in range(0, len(pixels), 64)])

    def extra_features(pixels):
        return [np.stack([maps.mean(axis=(0, 1)) for _, maps in network.run(pixels, features=True)])
                for network in extras]

    # Each photo as it is and mirrored: (features of the base, features of the extras).
    mirrored = train_x[:, :, ::-1]
    train = [(base_features(p), extra_features(p)) for p in (train_x, mirrored)]
    val = (base_features(val_x), extra_features(val_x))
    y, w = np.concatenate([train_y, train_y]), np.concatenate([sample_weight, sample_weight])

    def best_probe(with_extras: bool):
        def stack(base, others):
            return np.concatenate([base, *(others if with_extras else [])], axis=1)
        x = np.concatenate([stack(*part) for part in train])
        return _best_probe(x, y, w, stack(*val), val_y, strengths)

    loss, c, head = best_probe(with_extras=False)
    model.get_layer("scores").set_weights(head)
    result = {"c": c, "validation_log_loss": loss, "head": head}
    if extras:
        log.info("the same probe on the base's features and those of %s",
                 ", ".join(str(network.path) for network in extras))
        loss, c, head = best_probe(with_extras=True)
        result = {"c": c, "validation_log_loss": loss, "head": head,
                  "base_only_validation_log_loss": result["validation_log_loss"]}
    return result


def _best_probe(x, y, weights, val_x, val_y, strengths: Sequence[float]):
    """(validation log-loss, C, [kernel, bias]) of the best logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    fits = []
    for c in strengths:
        probe = LogisticRegression(C=c, max_iter=3000).fit(x, y, sample_weight=weights)
        loss = log_loss(val_y, probe.predict_proba(val_x), labels=probe.classes_)
        log.info("probe C=%g: validation log-loss %.4f", c, loss)
        fits.append((loss, c, probe))
    loss, c, probe = min(fits, key=lambda fit: fit[0])
    coef, intercept = probe.coef_, probe.intercept_
    if coef.shape[0] == 1:  # two classes: one logit difference, split over both outputs
        coef, intercept = np.concatenate([-coef, coef]) / 2, np.array([-intercept[0], intercept[0]]) / 2
    return round(float(loss), 4), c, [coef.T.astype(np.float32), intercept.astype(np.float32)]


def extra_networks(paths: Sequence[Path], model) -> list[Network]:
    """The `--extra-features` networks, checked against the base: the same input size,
    and a feature map on the same grid (the class-activation map adds them up cell by
    cell)."""
    grid = tuple(model.get_layer(export.FEATURES_LAYER).output.shape[1:3])
    size = tuple(model.input.shape[1:3])
    networks = []
    for path in paths:
        if not path.is_file():
            raise DataError(f"--extra-features: no such file {path}")
        network = Network(path)
        maps = (network.run([np.zeros((*size, 3), np.uint8)], features=True)[0][1]
                if network.has_features and network.input_size[::-1] == size else None)
        if maps is None or maps.shape[:2] != grid:
            raise DataError(f"--extra-features: {path} must take {size[1]}x{size[0]} photos and give "
                            f"a {grid[0]}x{grid[1]} feature map, as the base does")
        networks.append(network)
    return networks


def fit(model, train_ds, val_ds, *, epochs: int, learning_rate: float, args,
        decay_steps: int | None = None) -> int:
    """Compile and fit with early stopping; returns the number of epochs run.
    With `decay_steps`, the learning rate follows a cosine from `learning_rate` to 0."""
    import keras

    if epochs <= 0:
        return 0
    if decay_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing),
                  metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience,
                                         restore_best_weights=True)
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=[stop],
                        verbose=1 if sys.stdout.isatty() else 2)
    return len(history.history["loss"])


# == 4. Export and evaluation ==================================================

def compare_variants(paths: dict[str, Path], classes, pixels, labels, examples,
                     evaluated_on: str, subsets: dict[str, list[str]], **reads) -> list[dict]:
    """Each exported variant's accuracy on the given photos, on each subset of them
    too, and its speed here (`reads`: the head and extras of `served_model`)."""
    in_subset = {name: np.array([dataset.matches(patterns)(e) for e in examples])
                 for name, patterns in subsets.items()}
    rows = []
    for variant, path in paths.items():
        model = Model(path, classes, name=variant, **reads)
        probabilities = evaluate.predict_pixels(model, pixels)
        correct = probabilities.argmax(1) == labels
        rows.append({"name": variant, "size_bytes": path.stat().st_size,
                     "accuracy": float(correct.mean()), "evaluated_on": evaluated_on,
                     "subsets": {name: float(correct[chosen].mean())
                                 for name, chosen in in_subset.items() if chosen.any()},
                     "latency_ms_p50": round(evaluate.median_latency_ms(model, pixels), 3)})
        log.info("%-8s %6.2f MB  accuracy %.4f %s p50 %.2f ms", variant, rows[-1]["size_bytes"] / 1e6,
                 rows[-1]["accuracy"], rows[-1]["subsets"], rows[-1]["latency_ms_p50"])
    return rows


def shippable_variants(rows: list[dict], max_loss: float) -> list[str]:
    """The variants served from the model directory: int8 and float16 (which one runs
    is decided per CPU at load), each only if it is within `max_loss` of float32's
    accuracy on the whole set and on each subset (the uploads a model exists for must
    not pay for a gain elsewhere). float32 itself stays in the work folder as the
    reference."""
    reference = next(r for r in rows if r["name"] == "float32")

    def holds_up(row: dict) -> bool:
        pairs = [(row["accuracy"], reference["accuracy"]),
                 *((row["subsets"][name], value) for name, value in reference["subsets"].items())]
        return all(got >= wanted - max_loss - 1e-12 for got, wanted in pairs)

    good = [r["name"] for r in rows if holds_up(r)]
    return [name for name in SHIPPED_VARIANTS if name in good] or ["float32"]


def describe_network(path: Path) -> str:
    """"the hotdog model's network (version V)", from the card beside a .tflite file."""
    folder = path.resolve().parent
    if not model_card.exists(folder):
        return f"the network {path.name}"
    card = model_card.load(folder)
    return f"the {card['name']} model's network (version {card['version']}, {path.name})"


def reproduce_command(argv: Sequence[str], module: str = "training.train") -> str:
    """This run's command line, with machine-specific paths made relative."""
    shared = {str(shared_dir().resolve()), str(shared_dir())}
    words = []
    for word in argv:
        for prefix in sorted(shared, key=len, reverse=True):
            word = word.replace(prefix, "../shared")
        words.append(word.replace(str(PROJECT_ROOT) + os.sep, ""))
    return f"python -m {module} " + " ".join(shlex.quote(w) for w in words)


# == 5. The run ================================================================

def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    started = time.monotonic()

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()

    try:
        splits = gather(args)
    except DataError as exc:
        log.error("%s", exc)
        return 2
    classes, size = splits.classes, (args.image_size, args.image_size)
    spec = BASES[args.base]
    train_x, train_y, splits.train, skipped_train = read(splits.train, size, "training photos")
    val_x, val_y, splits.validation, skipped_val = read(splits.validation, size, "validation photos")
    log.info("classes %s; training %s; validation %s", classes,
             np.bincount(train_y, minlength=len(classes)).tolist(),
             np.bincount(val_y, minlength=len(classes)).tolist())

    weights = balanced_class_weights(train_y, len(classes))
    sample_weight = sample_weights(train_y, [e.source for e in splits.train], weights,
                                   args.source_balance)
    train_ds = make_dataset(train_x, train_y, len(classes), args.batch_size,
                            weights=sample_weight, augment=augmenter(args.seed),
                            mixup=args.mixup, seed=args.seed)
    val_ds = make_dataset(val_x, val_y, len(classes), 2 * args.batch_size)

    try:
        model, base = build_model(len(classes), args)
    except DataError as exc:
        log.error("%s", exc)
        return 2
    log.info("phase 1: a linear probe on the frozen base's features")
    try:
        extras = extra_networks(args.extra_features, model)
    except DataError as exc:
        log.error("%s", exc)
        return 2
    probe = fit_head(model, train_x, train_y, sample_weight, val_x, val_y, args.probe_c, extras)
    # How the served model reads its network: the file's own scores, or with extra
    # networks the probe's head on all their features.
    reads = {"head": probe["head"], "extras": extras} if extras else {}
    fine_epochs = 0
    if args.fine_tune_blocks > 0 and args.fine_tune_epochs > 0:
        learning = unfreeze_top_blocks(base, spec, args.fine_tune_blocks)
        log.info("phase 2: fine-tuning the top %d blocks (%d layers learn)",
                 args.fine_tune_blocks, learning)
        # A cosine decay lets the start move the newly trainable blocks and the end settle.
        steps_per_epoch = -(-len(train_y) // args.batch_size)
        fine_epochs = fit(model, train_ds, val_ds, epochs=args.fine_tune_epochs,
                          learning_rate=args.fine_tune_lr, args=args,
                          decay_steps=args.fine_tune_epochs * steps_per_epoch)
    train_seconds = time.monotonic() - started
    args.work_dir.mkdir(parents=True, exist_ok=True)
    model.save(args.work_dir / "model.keras")

    # Export every variant; compare them on the test photos when given, else validation.
    rng = np.random.default_rng(args.seed)
    calibration = train_x[rng.permutation(len(train_x))[:args.calibration_images]]
    paths = export.export_variants(export.with_feature_map(model), calibration, args.work_dir)
    if args.test_dir:
        test_examples = dataset.scan_labelled(args.test_dir, classes)
        dataset.add_photos(test_examples, classes, args.test_add, new_classes=False)
        test_x, test_y, test_examples, _ = read(test_examples, size, "test photos")
        compare_on = (test_x, test_y, test_examples, " + ".join(
            dataset.describe_location(Path(where), shared_dir())
            for where in [args.test_dir, *(item.partition("=")[2] for item in args.test_add)]))
    else:
        compare_on = (val_x, val_y, splits.validation, "validation split")
    variants = compare_variants(paths, classes, *compare_on, evaluate.parse_subsets(args.subset),
                                **reads)
    shipped = shippable_variants(variants, args.max_quantisation_loss)
    log.info("shipping %s", " and ".join(shipped))

    files = export.write_model_dir(args.out, paths, shipped, variants, classes,
                                   reads.get("head") or model.get_layer("scores").get_weights(),
                                   args.extra_features)
    # The card's metrics describe the first shipped variant; the variants table has both.
    engine = Model(args.out / files["variants"][shipped[0]], classes, name=args.name, **reads)
    subsets = evaluate.parse_subsets(args.subset)
    val_scores = evaluate.predict_pixels(engine, val_x)
    metrics = {"validation": evaluate.score(val_scores, val_y, splits.validation, classes,
                                            "validation split of the training data", subsets)}
    if splits.holdout:
        hold_x, hold_y, splits.holdout, _ = read(splits.holdout, size, "held-out photos")
        metrics["holdout"] = evaluate.score(
            evaluate.predict_pixels(engine, hold_x), hold_y, splits.holdout, classes,
            f"held-out {', '.join(args.holdout)} training photos (never trained on)")
    # The plots shown with the card: on the test set when there is one.
    plotted = ("validation", val_scores, val_y, splits.validation)
    if args.test_dir:
        test_x, test_y, test_examples, name = compare_on
        test_scores = evaluate.predict_pixels(engine, test_x)
        metrics["test"] = evaluate.score(test_scores, test_y, test_examples, classes, name, subsets)
        plotted = ("test", test_scores, test_y, test_examples)
    split, scores, truth, shown = plotted
    plots = {path.stem: path.name for path in evaluate.save_plots(
        metrics[split], scores, truth, shown, args.out, mistakes=False)}

    data_counts = {"train": dataset.counts(splits.train, classes),
                   "validation": dataset.counts(splits.validation, classes)}
    if splits.holdout:
        data_counts["holdout"] = dataset.counts(splits.holdout, classes)
    settings = {key: value for key, value in sorted(vars(args).items())
                if key not in ("out", "work_dir", "data_dir", "val_dir", "test_dir", "test_add",
                               "corrections", "extra_features",
                               "add", "exclude", "base_weights", "description", "name", "title", "subset",
                               "only")}
    settings["probe_c"] = probe["c"]
    if extras:
        settings["probe_validation_log_loss"] = {
            "base features only": probe["base_only_validation_log_loss"],
            "with the extra features": probe["validation_log_loss"]}
    settings["corrections_used"] = splits.corrections
    settings["trained_only_on"] = args.only or "all photos"
    settings["unreadable_photos_skipped"] = skipped_train + skipped_val
    settings["class_weights"] = {c: round(float(w), 4) for c, w in zip(classes, weights, strict=True)}
    card = {
        "schema_version": 1,
        "name": args.name,
        "title": args.title or " / ".join(classes),
        "version": model_card.new_version(),
        "description": args.description,
        "classes": classes,
        "files": files,
        "input": {"width": args.image_size, "height": args.image_size, "channels": 3,
                  "dtype": "uint8", "color": "RGB",
                  "resize": "EXIF orientation applied, transparency composited on white, "
                            "the whole photo resized (bilinear, no crop) by classifier.intake",
                  "preprocessing": spec.preprocessing},
        "architecture": {
            "summary": f"{spec.title} ImageNet features at {args.image_size} px"
                       + "".join(f" and those of {describe_network(path)}" for path in args.extra_features)
                       + f", global average pooling, dropout {args.dropout}, dense softmax over "
                       f"{len(classes)} classes",
            "feature_map": list(model.get_layer(export.FEATURES_LAYER).output.shape[1:]),
            "feature_extractor": export.feature_extractor_fingerprint(model),
            **({"extra_features": [
                {"file": name, "from": os.path.relpath(path.resolve(), PROJECT_ROOT),
                 "network": describe_network(path)}
                for name, path in zip(files["extra_features"], args.extra_features, strict=True)]}
               if extras else {})},
        "base_weights": {"base": spec.name, "source": Path(args.base_weights).name,
                         "attribution": spec.attribution},
        "training": {"data": data_counts, "excluded": splits.excluded, "settings": settings,
                     "epochs_run": {"fine_tune": fine_epochs},
                     "duration_s": round(train_seconds, 1),
                     "machine": machine_description()},
        "metrics": metrics,
        "metrics_variant": shipped[0],
        "not_sure_below": evaluate.not_sure_below(val_scores, val_y),
        "plots": plots,
        "variants": variants,
        "reproduce": reproduce_command(argv),
    }
    model_card.write(args.out, card)
    print(model_card.to_markdown(card).split("## Training")[0])
    log.info("done in %.1f min; wrote %s", (time.monotonic() - started) / 60, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
