"""How good a model made in a minute is (classifier.head_training), on real photos.

For each task, three random draws of a few training photos per class; each head is
fitted as the server fits it and scored on other photos of the same dataset (at most
TEST_PER_CLASS a class, the same for every draw, never among the training photos).
Also prints each draw's cross-validation estimate, which the server reports, beside
the accuracy it estimates. Needs ../shared (or $NOTHOTDOG_SHARED).

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
from classifier.intake import load_pixels
from classifier.model import Model
from classifier.settings import machine_description, shared_dir

TEST_PER_CLASS = 150
DRAWS = 3
#: (task, training photos a class, {class: (train folder, test folder, file pattern)}).
TASKS = [
    ("hot dog / not hot dog, real food photos (Seefood)", 20, {
        "hotdog": ("hotdog/train/hotdog", "hotdog/train/hotdog", "seefood_*"),
        "not_hotdog": ("hotdog/train/not_hotdog", "hotdog/train/not_hotdog", "seefood_*")}),
    ("hot dog / not hot dog, DTU photos: hot dogs, chili dogs, frankfurters / other food", 20, {
        "hotdog": ("hotdog/train/hotdog", "hotdog/test/hotdog", "dtu_*"),
        "not_hotdog": ("hotdog/train/not_hotdog", "hotdog/test/not_hotdog", "dtu_food_*")}),
    ("review-site uploads: food / ambience", 15, {
        "food": ("phototype/train/food", "phototype/test/food", "*"),
        "ambience": ("phototype/train/ambience", "phototype/test/ambience", "*")}),
]


def photos(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if fnmatch.fnmatch(p.name, pattern))


def features(model: Model, paths: list[Path]) -> np.ndarray:
    pixels = [load_pixels(p.read_bytes(), model.input_size) for p in paths]
    return pooled_features(model.network, pixels)


def main() -> int:
    datasets = shared_dir() / "datasets"
    if not datasets.is_dir():
        print(f"{datasets} is missing", file=sys.stderr)
        return 1
    model = Model.from_directory(ROOT / "models" / "imagenet")
    rng = np.random.default_rng(2026)
    print(f"# Models made in a minute, on {machine_description()}\n")
    for task, per_class, classes in TASKS:
        names = list(classes)
        test_x, test_y, tested = [], [], set()
        for index, (_, test, pattern) in enumerate(classes.values()):
            pool = photos(datasets / test, pattern)
            chosen = [pool[i] for i in sorted(rng.choice(len(pool), min(TEST_PER_CLASS, len(pool)),
                                                         replace=False))]
            tested.update(chosen)
            test_x.append(features(model, chosen)[:, 0])
            test_y += [index] * len(chosen)
        test_x, test_y = np.concatenate(test_x), np.array(test_y)
        scores = []
        for draw in range(DRAWS):
            train_paths, labels = [], []
            for index, (train, _, pattern) in enumerate(classes.values()):
                pool = [p for p in photos(datasets / train, pattern) if p not in tested]
                train_paths += [pool[i] for i in rng.choice(len(pool), per_class, replace=False)]
                labels += [index] * per_class
            started = time.perf_counter()
            train_x, labels = features(model, train_paths), np.array(labels)
            featured = time.perf_counter()
            estimate = cross_validate(train_x, labels, names)
            head = fit(train_x, labels, len(names))
            done = time.perf_counter()
            accuracy = float(np.mean(head.probabilities(test_x).argmax(axis=1) == test_y))
            scores.append(accuracy)
            print(f"{task}, draw {draw + 1}: {accuracy:.1%} on {len(test_y)} test photos "
                  f"(cross-validation said {estimate.accuracy:.1%}); features of "
                  f"{len(labels)} photos {featured - started:.1f} s, fit + CV {done - featured:.2f} s")
        print(f"**{task}: {np.mean(scores):.1%} mean of {DRAWS} draws of {per_class} photos a class**\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
