"""Train an image classifier by transfer learning from an ImageNet network.

    python -m training.train DATA_DIR --out models/NAME [options]

DATA_DIR holds one sub-folder of photos per class; any number of classes >= 2
works. `main`, at the end, is the run's table of contents: one call per step, each
step a function of the section of the same number below.

1. **Settings.** The command line (`--help` lists every option).
2. **Data.** Photos are read through `classifier.intake` (the server's own
   intake), so training and serving see identical pixels. Extra folders can be
   added to a class (`--add not_hotdog=DIR`), reviewed mistakes dropped
   (`--exclude FILE`), a seeded share of some photos held out untouched as an
   independent check (`--holdout GLOB`), and a stratified, seeded validation
   split taken (or an explicit `--val-dir`).
3. **Model.** The ImageNet features of a base network (`--base`: MobileNetV2,
   EfficientNet-Lite0 or Lite2, weights from a local file; see `training.bases`)
   under global average pooling and a dense softmax head. Pixel scaling lives
   inside the model, so the exported file takes plain 0-255 RGB and no caller
   re-implements preprocessing.
4. **Phase 1: linear probe.** The base is frozen; the head is solved exactly as
   an L2-regularised logistic regression of its pooled features (every photo and
   its mirror image), class-weighted when the classes are unbalanced
   (`--source-balance` also lets small sources within a class weigh more), the
   strength chosen on validation.
5. **Phase 2: fine-tuning.** The top blocks of the base learn too, on augmented
   photos (flips, rotation, zoom, brightness, contrast, optionally mixup), at a low
   learning rate (cosine decay), with every BatchNormalization layer kept frozen (its
   statistics were estimated on ImageNet and small batches would wreck them).
   It stops early on validation loss and keeps the best weights.
6. **Export.** TFLite float32, float16 and full-integer int8 (calibrated on
   training photos), each with the last feature map as a second output (for
   class-activation maps); every variant is evaluated and timed, and the ship rule
   every model follows (`training.export.shippable_variants`) picks the files the
   model directory gets.
7. **Evaluation.** The first shipped file, run as the server runs it, on the
   validation, held-out and test photos; the "not sure" level from validation (and,
   for a linear probe, every training photo answered out of fold).
8. **Model card.** `model_card.json` and `MODEL_CARD.md` (`training.card`):
   classes, input, what the model is for and where it falls short
   (`training/cards/NAME.md`), metrics of the shipped file, data counts, settings
   and this exact command.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

import numpy as np

from classifier import card as model_card
from classifier.calibration import FOLDS, logits_of, scaled, stratified_folds
from classifier.head_training import pooled_features
from classifier.litert import Network
from classifier.model import Model
from classifier.settings import PROJECT_ROOT, machine_description, shared_dir
from training import card as training_card
from training import dataset, evaluate, export
from training.bases import BASES, unfreeze_top_blocks
from training.dataset import DataError, Example

log = logging.getLogger("training.train")

VALIDATION = "validation split of the training data"


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
    exporting.add_argument("--max-quantisation-loss", type=float,
                           default=export.MAX_QUANTISATION_LOSS,
                        help="largest accuracy loss against float32 a shipped variant may have")
    exporting.add_argument("--answer-accuracy", type=float, default=0.98,
                           help="how often the verdicts given must be expected to be right: "
                                "under the level this sets, answers are \"not sure\" "
                                "(classifier.calibration)")
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


def make_deterministic(seed: int) -> None:
    """Same arguments, same model: Python, NumPy, TensorFlow and Keras seeded, and
    TensorFlow's kernels made deterministic, so that the command a card records
    rebuilds the model it describes."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


# == 2. Data ===================================================================

@dataclass
class Splits:
    """The photos of a run, split before any is read: `excluded` names the photos
    `--exclude` left out, `corrections` counts the corrected photos added."""
    classes: list[str]
    train: list[Example]
    validation: list[Example]
    holdout: list[Example]
    excluded: list[str]
    corrections: int = 0


def gather(args: argparse.Namespace) -> Splits:
    """Find the photos the arguments name and split them, reading none: the order of
    the steps (exclusions, then the held-out share, then validation, corrections last
    so they are never split off) is what a seed reproduces."""
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


@dataclass
class Photos:
    """One split in memory: pixels at the model's input size, labels, and the
    examples they came from (unreadable photos left out, and counted). `name` is
    what the card calls the split."""
    name: str
    pixels: np.ndarray
    labels: np.ndarray
    examples: list[Example]
    skipped: int

    @property
    def sources(self) -> list[str]:
        return [e.source for e in self.examples]


def read(examples: Sequence[Example], size: tuple[int, int], name: str) -> Photos:
    """Decode a split through the serving intake, with a progress bar."""
    from tqdm import tqdm

    pixels, labels, kept, skipped = dataset.load_arrays(
        examples, size, lambda xs: tqdm(xs, desc=f"reading {name}", unit="photo"))
    if skipped:
        log.warning("%s: skipped %d unreadable photos", name, len(skipped))
    return Photos(name, pixels, labels, kept, len(skipped))


def read_test_photos(args: argparse.Namespace, classes: list[str]) -> Photos | None:
    """The labelled test photos (`--test-dir` and `--test-add`), if any: the variants
    are compared on them and the card reports them."""
    if not args.test_dir:
        return None
    examples = dataset.scan_labelled(args.test_dir, classes)
    dataset.add_photos(examples, classes, args.test_add, new_classes=False)
    name = " + ".join(dataset.describe_location(Path(where), shared_dir())
                      for where in [args.test_dir, *(item.partition("=")[2] for item in args.test_add)])
    return read(examples, input_size(args), name)


def input_size(args: argparse.Namespace) -> tuple[int, int]:
    """The square input of the network, as (width, height)."""
    return args.image_size, args.image_size


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


# == 4. Phase 1: a linear probe on the frozen base ==============================

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


def fit_head(model, train: Photos, validation: Photos, weights: np.ndarray,
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

    log.info("phase 1: a linear probe on the frozen base's features")
    pooled = keras.Model(model.input, model.get_layer("pool").output)

    def base_features(pixels):
        return np.concatenate([pooled.predict_on_batch(pixels[i:i + 64].astype(np.float32))
                               for i in range(0, len(pixels), 64)])

    def extra_features(pixels):
        return [np.stack([maps.mean(axis=(0, 1)) for _, maps in network.run(pixels, features=True)])
                for network in extras]

    # Each photo as it is and mirrored: (features of the base, features of the extras).
    mirrored = train.pixels[:, :, ::-1]
    features = [(base_features(p), extra_features(p)) for p in (train.pixels, mirrored)]
    val = (base_features(validation.pixels), extra_features(validation.pixels))
    y, w = np.concatenate([train.labels, train.labels]), np.concatenate([weights, weights])

    def best_probe(with_extras: bool):
        def stack(base, others):
            return np.concatenate([base, *(others if with_extras else [])], axis=1)
        x = np.concatenate([stack(*part) for part in features])
        return _best_probe(x, y, w, stack(*val), validation.labels, strengths)

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
    from sklearn.metrics import log_loss

    fits = []
    for c in strengths:
        probe, head = fit_probe(x, y, weights, c)
        loss = log_loss(val_y, probe.predict_proba(val_x), labels=probe.classes_)
        log.info("probe C=%g: validation log-loss %.4f", c, loss)
        fits.append((loss, c, head))
    loss, c, head = min(fits, key=lambda fit: fit[0])
    return round(float(loss), 4), c, head


def fit_probe(x, y, weights, c: float):
    """The logistic regression of strength `c` (the fitted scikit-learn model) and its
    dense head, [kernel, bias], with one logit per class."""
    from sklearn.linear_model import LogisticRegression

    probe = LogisticRegression(C=c, max_iter=3000).fit(x, y, sample_weight=weights)
    coef, intercept = probe.coef_, probe.intercept_
    if coef.shape[0] == 1:  # two classes: one logit difference, split over both outputs
        coef, intercept = np.concatenate([-coef, coef]) / 2, np.array([-intercept[0], intercept[0]]) / 2
    return probe, [coef.T.astype(np.float32), intercept.astype(np.float32)]


# == 5. Phase 2: fine-tuning the top blocks =====================================

def fine_tune(model, base, train: Photos, validation: Photos, weights: np.ndarray,
              args: argparse.Namespace) -> int:
    """Phase 2: the top `--fine-tune-blocks` blocks of the base learn with the head, on
    augmented photos. A cosine decay lets the start move the newly trainable blocks
    and the end settle. Returns the epochs run (0 when phase 2 is off)."""
    if args.fine_tune_blocks <= 0 or args.fine_tune_epochs <= 0:
        return 0
    learning = unfreeze_top_blocks(base, BASES[args.base], args.fine_tune_blocks)
    log.info("phase 2: fine-tuning the top %d blocks (%d layers learn)",
             args.fine_tune_blocks, learning)
    num_classes = model.output_shape[-1]
    train_ds = make_dataset(train.pixels, train.labels, num_classes, args.batch_size,
                            weights=weights, augment=augmenter(args.seed),
                            mixup=args.mixup, seed=args.seed)
    val_ds = make_dataset(validation.pixels, validation.labels, num_classes, 2 * args.batch_size)
    steps_per_epoch = -(-len(train.labels) // args.batch_size)
    return fit(model, train_ds, val_ds, epochs=args.fine_tune_epochs,
               learning_rate=args.fine_tune_lr, decay_steps=args.fine_tune_epochs * steps_per_epoch,
               args=args)


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


def fit(model, train_ds, val_ds, *, epochs: int, learning_rate: float, decay_steps: int,
        args: argparse.Namespace) -> int:
    """Compile and fit with early stopping, the learning rate following a cosine from
    `learning_rate` to 0 over `decay_steps`; returns the number of epochs run."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing),
                  metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience,
                                         restore_best_weights=True)
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=[stop],
                        verbose=1 if sys.stdout.isatty() else 2)
    return len(history.history["loss"])


@dataclass
class Learned:
    """What phases 1 and 2 made, as the export and the card need it."""
    model: object  # the Keras model
    probe: dict
    extras: list[Network]
    class_weights: np.ndarray
    fine_tune_epochs: int

    @property
    def reads(self) -> dict:
        """How the served model reads its network: the file's own scores, or, with
        extra networks, the probe's head on all their features."""
        return {"head": self.probe["head"], "extras": self.extras} if self.extras else {}

    @property
    def head(self) -> list[np.ndarray]:
        """The dense head the model directory ships (kernel, bias), for heat maps."""
        return self.probe["head"] if self.extras else self.model.get_layer("scores").get_weights()


# == 6. Export =================================================================

def export_model(model, train: Photos, args: argparse.Namespace) -> dict[str, Path]:
    """Every TFLite variant in the work folder, int8's ranges calibrated on a seeded
    sample of training photos; the Keras model is kept there too, as the reference
    the exported files are checked against."""
    args.work_dir.mkdir(parents=True, exist_ok=True)
    model.save(args.work_dir / "model.keras")
    rng = np.random.default_rng(args.seed)
    calibration = train.pixels[rng.permutation(len(train.pixels))[:args.calibration_images]]
    return export.export_variants(export.with_feature_map(model), calibration, args.work_dir)


def compare_variants(paths: dict[str, Path], classes: list[str], photos: Photos,
                     subsets: dict[str, list[str]], reads: dict) -> list[dict]:
    """The card's variants table: each exported file's accuracy on `photos`, on each
    subset of them too, and its speed here, run as the server would run it
    (`reads`: `Learned.reads`)."""
    in_subset = {name: np.array([dataset.matches(patterns)(e) for e in photos.examples])
                 for name, patterns in subsets.items()}
    rows = []
    for variant, path in paths.items():
        engine = Model(path, classes, name=variant, **reads)
        correct = evaluate.predict_pixels(engine, photos.pixels).argmax(1) == photos.labels
        rows.append(evaluate.variant_row(
            engine, path, photos.pixels, correct.mean(), photos.name,
            subsets={name: float(correct[chosen].mean())
                     for name, chosen in in_subset.items() if chosen.any()}))
    return rows


def ship(paths: dict[str, Path], variants: list[dict], classes: list[str], learned: Learned,
         args: argparse.Namespace) -> dict:
    """Fill the model directory with the variants the ship rule keeps, the labels, the
    head and the extra networks; returns the card's `files`."""
    shipped = export.shippable_variants(variants, args.max_quantisation_loss)
    log.info("shipping %s", " and ".join(shipped))
    return export.write_model_dir(args.out, paths, shipped, variants, classes, learned.head,
                                  args.extra_features)


# == 7. Evaluation =============================================================

def read_holdout(splits: Splits, args: argparse.Namespace) -> Photos | None:
    """The photos `--holdout` kept out of training and validation, if any."""
    if not splits.holdout:
        return None
    return read(splits.holdout, input_size(args),
                f"held-out {', '.join(args.holdout)} training photos (never trained on)")


def measure(files: dict, learned: Learned, classes: list[str],
            splits: dict[str, Photos | None], args: argparse.Namespace, train: Photos) -> dict:
    """The card's results, all from the first shipped file, run as the server runs it:
    each file's calibration and "not sure" level, read off validation (and `train`,
    out of fold, when the base stayed frozen), never off the photos whose figures the
    card reports (`calibrate`); then, with the first file's
    calibrated scores, metrics on each split given (validation, holdout, test; subsets
    on all but the held-out photos) and the plots of the test photos (else of validation)."""
    engines = {variant: Model(args.out / file, classes, name=args.name, **learned.reads)
               for variant, file in files["variants"].items()}
    frozen_base = learned.fine_tune_epochs == 0
    # Each file's raw answers to validation, computed once: calibration fits on them,
    # and the first file's are its validation metrics' too.
    raw = {variant: evaluate.held_out_logits(engine, splits["validation"].pixels)
           for variant, engine in engines.items()}
    calibrated = calibrate(engines, splits["validation"], args,
                           train if frozen_base else None, learned.probe["c"], raw)
    first_variant, engine = next(iter(engines.items()))
    first = calibrated["variants"][first_variant]
    subsets = evaluate.parse_subsets(args.subset)
    metrics, scores = {}, {}
    for split, photos in splits.items():
        if photos is not None:
            logits = (raw[first_variant] if split == "validation"
                      else logits_of(evaluate.predict_pixels(engine, photos.pixels)))
            scores[split] = scaled(logits, first["temperature"])
            metrics[split] = evaluate.score(scores[split], photos.labels, photos.examples, classes,
                                            photos.name, None if split == "holdout" else subsets,
                                            first["not_sure_below"])
    shown = evaluate.plotted_split(metrics)
    plots = evaluate.save_plots(metrics[shown], scores[shown], splits[shown].labels,
                                splits[shown].examples, args.out, mistakes=False)
    return {"metrics": metrics, "plots": {path.stem: path.name for path in plots},
            "calibration": calibrated}


def calibrate(engines: dict[str, Model], validation: Photos, args: argparse.Namespace,
              train: Photos | None = None, probe_c: float | None = None,
              validation_logits: dict[str, np.ndarray] | None = None) -> dict:
    """Each shipped file's temperature and "not sure" level for `--answer-accuracy`,
    fitted on its raw answers to held-out photos (`classifier.calibration`): the
    validation split, and, given the training photos and the probe's strength
    `probe_c` of a model whose base stayed frozen, every training photo answered out
    of fold (`out_of_fold_logits`). Why: a validation split of a couple of hundred
    photos sets a level on its own few dozen least sure answers, and it may happen to
    be harder or easier than the photos the model meets; a linear head refits in
    seconds, so the level can rest on every labelled photo, as it does for a model made
    on the server (`classifier.head_training`). A fine-tuned base cannot be refitted
    five times in a training run; its level rests on validation alone.
    `validation_logits`: the files' raw answers to validation, if already computed."""
    known = validation_logits or {}
    answers = {variant: (known[variant] if variant in known
                         else evaluate.held_out_logits(engine, validation.pixels), validation.labels)
               for variant, engine in engines.items()}
    held_out = validation.name
    if train is not None and probe_c is not None:
        classes = len(next(iter(engines.values())).labels)
        weights = sample_weights(train.labels, train.sources,
                                 balanced_class_weights(train.labels, classes), args.source_balance)
        for variant, engine in engines.items():
            extra_logits, extra_labels = out_of_fold_logits(engine, train, weights, probe_c)
            logits, labels = answers[variant]
            answers[variant] = (np.concatenate([logits, extra_logits]),
                                np.concatenate([labels, extra_labels]))
        held_out += (f" and its {len(train.labels):,} training photos answered out of fold "
                     f"({OUT_OF_FOLD_SPLITS} times each, by probes fitted like the shipped head "
                     f"without them)")
    return evaluate.calibration_card(answers, args.answer_accuracy, held_out)


#: Times the training photos are split into folds and answered out of fold, each time
#: split differently: one split's level moved the photo type's "not sure" share on its
#: test photos between 9.2 and 10.2 % with the split's seed (docs/not-sure.md); every
#: photo answered once per split and all the answers pooled, the level no longer rests
#: on one draw.
OUT_OF_FOLD_SPLITS = 5


def out_of_fold_logits(engine: Model, train: Photos, weights: np.ndarray, c: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(logits, labels) of the training photos, each answered by linear probes that never
    saw it: `OUT_OF_FOLD_SPLITS` times, the photos in `calibration.FOLDS` stratified folds,
    and for each fold a probe fitted as phase 1 fits the head (strength `c`, `weights`,
    each photo and its mirror) on the others, on the pooled features `engine`'s file
    gives (its own network's, then any extra networks'), answering the fold's photos
    unmirrored, as the server does. Fewer folds when a class has fewer than
    `FOLDS` photos; none at all (no answers) when one has a single photo."""
    folds = min(FOLDS, int(np.bincount(train.labels, minlength=len(engine.labels)).min()))
    if folds < 2:
        return np.empty((0, len(engine.labels)), np.float32), np.empty(0, train.labels.dtype)
    features = np.concatenate([pooled_features(engine.networks, train.pixels[i:i + 64])
                               for i in range(0, len(train.pixels), 64)])
    answers = []
    for split in range(OUT_OF_FOLD_SPLITS):
        fold_of = stratified_folds(train.labels, folds, seed=split)
        logits = np.empty((len(train.labels), len(engine.labels)), np.float32)
        for fold in range(folds):
            held = fold_of == fold
            rest = features[~held]  # (photos, 2, channels): each and its mirror
            _, (kernel, bias) = fit_probe(rest.reshape(-1, rest.shape[-1]),
                                          np.repeat(train.labels[~held], 2),
                                          np.repeat(weights[~held], 2), c)
            logits[held] = features[held, 0] @ kernel + bias
        answers.append(logits)
    return np.concatenate(answers), np.tile(train.labels, OUT_OF_FOLD_SPLITS)


# == 8. Model card =============================================================

#: Arguments the card does not list as settings: folders of this machine, and what the
#: card says elsewhere (its name, title, data, the command itself).
NOT_SETTINGS = frozenset({
    "out", "work_dir", "data_dir", "val_dir", "test_dir", "test_add", "corrections",
    "extra_features", "add", "exclude", "base_weights", "description", "name", "title",
    "subset", "only"})


def describe(args: argparse.Namespace, argv: Sequence[str], splits: Splits,
             photos: dict[str, Photos | None], learned: Learned, training_seconds: float,
             files: dict, variants: list[dict], results: dict) -> dict:
    """The model card of this run (`training.card.build`): `photos` are the splits
    trained, validated and held out; `training_seconds` the time up to the end of
    phase 2; `results` what `measure` found."""
    spec = BASES[args.base]
    return training_card.build(
        name=args.name, title=args.title or " / ".join(splits.classes),
        description=args.description, classes=splits.classes, files=files,
        input=training_card.photo_input(input_size(args), spec.preprocessing),
        architecture=architecture(learned, files, args),
        base_weights={"base": spec.name, "source": Path(args.base_weights).name,
                      "attribution": spec.attribution},
        training={"data": {split: dataset.counts(p.examples, splits.classes)
                           for split, p in photos.items() if p is not None},
                  "excluded": splits.excluded,
                  "settings": settings(args, splits, photos, learned),
                  "epochs_run": {"fine_tune": learned.fine_tune_epochs},
                  "duration_s": round(training_seconds, 1), "machine": machine_description()},
        variants=variants, reproduce=training_card.reproduce_command("training.train", argv),
        **results)


def architecture(learned: Learned, files: dict, args: argparse.Namespace) -> dict:
    """The card's `architecture`: the network in words, its feature map, the
    fingerprint that lets the server share the base with another model, and where
    each extra network came from."""
    spec, model = BASES[args.base], learned.model
    described = {
        "summary": f"{spec.title} ImageNet features at {args.image_size} px"
                   + "".join(f" and those of {describe_network(path)}" for path in args.extra_features)
                   + f", global average pooling, dropout {args.dropout}, dense softmax over "
                   f"{model.output_shape[-1]} classes",
        "feature_map": list(model.get_layer(export.FEATURES_LAYER).output.shape[1:]),
        "feature_extractor": export.feature_extractor_fingerprint(model)}
    if learned.extras:
        described["extra_features"] = [
            {"file": name, "from": os.path.relpath(path.resolve(), PROJECT_ROOT),
             "network": describe_network(path)}
            for name, path in zip(files["extra_features"], args.extra_features, strict=True)]
    return described


def describe_network(path: Path) -> str:
    """"the hotdog model's network (version V)", from the card beside a .tflite file."""
    folder = path.resolve().parent
    if not model_card.exists(folder):
        return f"the network {path.name}"
    other = model_card.load(folder)
    return f"the {other['name']} model's network (version {other['version']}, {path.name})"


def settings(args: argparse.Namespace, splits: Splits, photos: dict[str, Photos | None],
             learned: Learned) -> dict:
    """The card's training settings: every option that shapes the model, then what
    the run chose or found (the probe's strength, corrections used, photos skipped,
    class weights)."""
    chosen = {key: value for key, value in sorted(vars(args).items()) if key not in NOT_SETTINGS}
    chosen["probe_c"] = learned.probe["c"]
    if learned.extras:
        chosen["probe_validation_log_loss"] = {
            "base features only": learned.probe["base_only_validation_log_loss"],
            "with the extra features": learned.probe["validation_log_loss"]}
    chosen["corrections_used"] = splits.corrections
    chosen["trained_only_on"] = args.only or "all photos"
    chosen["unreadable_photos_skipped"] = photos["train"].skipped + photos["validation"].skipped
    chosen["class_weights"] = {c: round(float(w), 4)
                               for c, w in zip(splits.classes, learned.class_weights, strict=True)}
    return chosen


# == The run ===================================================================

def main(argv: Sequence[str] | None = None) -> int:
    """One training run, the steps in the order of the sections above."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    started = time.monotonic()
    make_deterministic(args.seed)
    try:  # 2-3: a wrong folder, file or option fails here, before any photo is read
        splits = gather(args)
        model, base = build_model(len(splits.classes), args)
        extras = extra_networks(args.extra_features, model)
    except DataError as exc:
        log.error("%s", exc)
        return 2
    train = read(splits.train, input_size(args), "training photos")
    validation = read(splits.validation, input_size(args), VALIDATION)

    # 4-5: both phases weigh the training photos alike
    class_weights = balanced_class_weights(train.labels, len(splits.classes))
    weights = sample_weights(train.labels, train.sources, class_weights, args.source_balance)
    probe = fit_head(model, train, validation, weights, args.probe_c, extras)
    fine_tune_epochs = fine_tune(model, base, train, validation, weights, args)
    learned = Learned(model, probe, extras, class_weights, fine_tune_epochs)
    training_seconds = time.monotonic() - started

    # 6: compared on the test photos when there are any, else on validation
    paths = export_model(model, train, args)
    test = read_test_photos(args, splits.classes)
    variants = compare_variants(paths, splits.classes, test or validation,
                                evaluate.parse_subsets(args.subset), learned.reads)
    files = ship(paths, variants, splits.classes, learned, args)

    # 7-8: the card reports the shipped file, run as the server runs it
    holdout = read_holdout(splits, args)
    results = measure(files, learned, splits.classes,
                      {"validation": validation, "holdout": holdout, "test": test}, args, train)

    written = describe(args, argv, splits, {"train": train, "validation": validation,
                                            "holdout": holdout},
                       learned, training_seconds, files, variants, results)
    model_card.write(args.out, written)
    print(training_card.summary(written))
    log.info("done in %.1f min; wrote %s", (time.monotonic() - started) / 60, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
