"""How good a model made in a minute is (classifier.head_training), on real photos, and
which networks' pooled features its head should read.

For each task, random draws of a few training photos per class; each head is fitted as
the server fits it (its cross-validation estimate, which the server reports, is printed
beside the accuracy it estimates) and scored on other photos of the same dataset. Every
feature set is fitted on the same draws and scored on the same test photos:

- `lite0`: the imagenet model's network (EfficientNet-Lite0) alone;
- `lite0+hotdog`: and the hot dog model's network (MobileNetV2), as the server does;
- `lite0+hotdog+pizza`: and the pizza model's too;
- `lite0+hotdog, crop`: as the server, with a centre crop (80 % of each side) of every
  training photo, and its mirror, as more training examples.

The hot dog network was trained on most of ../shared's hot dog photos, and its features
would flatter any photo it has seen, so every photo here, trained on or tested, is one
it never trained on: the seefood photos its training run held out or kept for
validation (the splits rebuilt from the command of its card: `hot_dog_network_unseen`),
and DTU photos of `hotdog/test`. The pizza network saw only `pizza/`; neither saw the
review-site photos. Needs ../shared (or $NOTHOTDOG_SHARED).

    .venv/bin/python -m bench.made_model
"""

from __future__ import annotations

import fnmatch
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT
from classifier.head_training import cross_validate, fit, pooled_features
from classifier.intake import decode_image, draft_size, fit_to_input, load_pixels
from classifier.model import Model
from classifier.settings import machine_description, shared_dir
from training import dataset

#: Draws a task's figure is the mean of; `STEADY_DRAWS` more say how steady a gap is.
DRAWS, STEADY_DRAWS = 3, 20
TEST_PER_CLASS = 150
#: Feature sets: (name, networks by model name, training views: whole, mirror, crop, crop mirror).
FEATURE_SETS = [
    ("lite0", ["imagenet"], (0, 1)),
    ("lite0+hotdog", ["imagenet", "hotdog"], (0, 1)),
    ("lite0+hotdog+pizza", ["imagenet", "hotdog", "pizza"], (0, 1)),
    ("lite0+hotdog, crop", ["imagenet", "hotdog"], (0, 1, 2, 3)),
]
SERVED = "lite0+hotdog"
CROP = 0.8


def photos(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if fnmatch.fnmatch(p.name, pattern))


def hot_dog_network_unseen(datasets: Path, card: dict) -> list[dataset.Example]:
    """The seefood photos the shipped hot dog network never trained on: its run's held-out
    and validation splits, rebuilt as `training.train` made them for the command of the
    card (models/hotdog: commit 925ffb8's `make model`), checked against the card's counts."""
    settings, counts = card["training"]["settings"], card["training"]["data"]
    classes, examples = dataset.scan_classes(datasets / "hotdog" / "train")
    dataset.add_photos(examples, classes, [f"not_hotdog={datasets / 'pizza' / 'train'}"], new_classes=False)
    excluded = dataset.read_name_list(ROOT / "training" / "exclusions" / "hotdog.txt")
    examples = [e for e in examples if e.path.name not in excluded]
    examples, holdout = dataset.split_off(examples, settings["holdout_fraction"], settings["seed"],
                                          dataset.matches(settings["holdout"]))
    examples, validation = dataset.split_off(examples, settings["val_fraction"], settings["seed"] + 1)
    if (len(examples), len(validation), len(holdout)) != tuple(
            counts[split]["total"] for split in ("train", "validation", "holdout")):
        raise SystemExit("the hot dog network's splits could not be rebuilt: ../shared changed?")
    return [e for e in holdout + validation if fnmatch.fnmatch(e.path.name, "seefood_*")]


class Features:
    """Pooled features of photos, by network, of four views (whole, mirror, centre crop,
    its mirror), each computed once."""

    def __init__(self, models: dict[str, Model]):
        self.models, self.cache = models, {}

    def __call__(self, paths: list[Path], networks: list[str], views: tuple[int, ...]) -> np.ndarray:
        """Shape (photos, views, channels of each network in turn)."""
        missing = [p for p in dict.fromkeys(paths) if p not in self.cache]
        for path in missing:
            image = decode_image(path.read_bytes(), draft_size=draft_size(self.models["imagenet"].input_size))
            width, height = image.size
            crop = image.crop(((width - round(width * CROP)) // 2, (height - round(height * CROP)) // 2,
                               (width + round(width * CROP)) // 2, (height + round(height * CROP)) // 2))
            whole, cropped = (fit_to_input(i, self.models["imagenet"].input_size) for i in (image, crop))
            self.cache[path] = {name: pooled_features([model.network], [whole, cropped]).reshape(4, -1)
                                for name, model in self.models.items()}
        return np.stack([np.concatenate([self.cache[p][n][list(views)] for n in networks], axis=-1)
                         for p in paths])


def tasks(datasets: Path, hotdog_card: dict, rng: np.random.Generator):
    """(task, photos a class, draws of (training paths, labels, test paths, labels))."""
    unseen = hot_dog_network_unseen(datasets, hotdog_card)
    seefood = {label: sorted(e.path for e in unseen if e.label == index)
               for index, label in enumerate(("hotdog", "not_hotdog"))}
    dtu = {"hotdog": photos(datasets / "hotdog/test/hotdog", "dtu_*"),
           "not_hotdog": photos(datasets / "hotdog/test/not_hotdog", "dtu_food_*")}
    dtu_test = {label: sorted(rng.choice(pool, TEST_PER_CLASS, replace=False)) for label, pool in dtu.items()}
    phototype = {label: photos(datasets / "phototype/train" / label, "*") for label in ("food", "ambience")}
    phototype_test = {label: photos(datasets / "phototype/test" / label, "*") for label in phototype}
    return [
        ("hot dog / not hot dog, real food photos (Seefood) the hot dog network never trained on", 20,
         _draws(rng, seefood, None, 20)),
        ("hot dog / not hot dog, DTU photos of hotdog/test: hot dogs, chili dogs, frankfurters / "
         "other food", 20, _draws(rng, {label: [p for p in pool if p not in dtu_test[label]]
                                        for label, pool in dtu.items()}, dtu_test, 20)),
        ("review-site uploads: food / ambience", 15, _draws(rng, phototype, phototype_test, 15)),
    ]


def _draws(rng, pool: dict[str, list[Path]], test: dict[str, list[Path]] | None, per_class: int):
    """`STEADY_DRAWS` draws of `per_class` training photos a class from `pool`, each with
    `test` as its test photos, or (None) the rest of `pool`."""
    draws = []
    for _ in range(STEADY_DRAWS):
        chosen = {label: sorted(rng.choice(paths, per_class, replace=False)) for label, paths in pool.items()}
        tested = test or {label: [p for p in paths if p not in chosen[label]]
                          for label, paths in pool.items()}
        draws.append(tuple(x for split in (chosen, tested) for x in (
            [p for paths in split.values() for p in paths],
            np.array([index for index, paths in enumerate(split.values()) for _ in paths]))))
    return draws


def main() -> int:
    datasets = shared_dir() / "datasets"
    if not datasets.is_dir():
        print(f"{datasets} is missing", file=sys.stderr)
        return 1
    models = {name: Model.from_directory(ROOT / "models" / name) for name in ("imagenet", "hotdog", "pizza")}
    features = Features(models)
    rng = np.random.default_rng(2026)
    print(f"# Models made in a minute, on {machine_description()}\n")
    print("Networks: " + ", ".join(f"{name} `{model.runtime.file}`" for name, model in models.items())
          + f". The server's heads read {SERVED}. Each draw: the accuracy on the test photos "
          "(the cross-validation estimate the server would report, in brackets).\n")
    for task, per_class, draws in tasks(datasets, models["hotdog"].card, rng):
        print(f"## {task}: {per_class} photos a class, tested on {len(draws[0][3])} others\n")
        print(f"| features | {' | '.join(f'draw {n}' for n in range(1, DRAWS + 1))} | mean of {DRAWS} "
              f"| mean of {STEADY_DRAWS} | against lite0, same {STEADY_DRAWS} draws |")
        print("|---|" + "---:|" * (DRAWS + 3))
        scores = {}
        for name, networks, views in FEATURE_SETS:
            scores[name], cells = [], []
            for number, (train_paths, labels, test_paths, test_labels) in enumerate(draws, 1):
                train_x = features(train_paths, networks, views)
                answers = fit(train_x, labels, 2).probabilities(features(test_paths, networks, (0,))[:, 0])
                scores[name].append(float(np.mean(answers.argmax(axis=1) == test_labels)))
                if number <= DRAWS:
                    estimate = cross_validate(train_x, labels, ["a", "b"])
                    cells.append(f"{scores[name][-1]:.1%} ({estimate.accuracy:.1%})")
            gap = np.array(scores[name]) - scores["lite0"]
            against = (f"{gap.mean():+.1%} ± {gap.std() / np.sqrt(len(gap)):.1%}, worse in "
                       f"{np.sum(gap < 0)}" if name != "lite0" else "")
            print(f"| {name} | {' | '.join(cells)} | **{np.mean(scores[name][:DRAWS]):.1%}** | "
                  f"{np.mean(scores[name]):.1%} | {against} |")
        print()
        train_paths, labels = draws[0][0], draws[0][1]
        for name, networks, _ in FEATURE_SETS[:2]:
            started = time.perf_counter()
            pixels = [load_pixels(p.read_bytes(), models["imagenet"].input_size) for p in train_paths]
            train_x = pooled_features([models[n].network for n in networks], pixels)
            featured = time.perf_counter()
            cross_validate(train_x, labels, ["a", "b"])
            fit(train_x, labels, 2)
            fitted = time.perf_counter()
            print(f"- {name}, as the server does it: {len(labels)} photos decoded and their features "
                  f"{featured - started:.1f} s, fit + cross-validation {fitted - featured:.2f} s")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
