"""Models made on the server ("your own model in a minute"): training a head for
photos by class, installing it as a served model (through the API at once, or kept
from the Make a model page later), and removing one.

A made model is a model directory like any other, served by `classifier.registry`:
a dense head (`head.npz`, fitted by `classifier.head_training`) on the base model's
network and on the networks of its `extras` (the hot dog model's: its features read
after the base's, as the shipped photo type reads them), a card valid against the
schema (classes, photo counts, the estimated accuracy, and under `made` when and by
whom), labels and the network files, hard-linked to the base's and the extras' (no
disk space, and byte-identical, so the registry runs the networks it has loaded for
it; retraining a model replaces its files, `training.export`, so the links keep the
bytes the head was fitted on, and the registry loads those as it does the photo
type's own copy). A model is built in a hidden folder inside the models folder
and renamed into place in one step: every worker sees all of it or nothing, a taken
name fails the rename, and nothing half-made is ever served. Removing renames it out
of sight before deleting it. Shipped models (cards without `made`) cannot be removed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classifier import calibration
from classifier import card as model_card
from classifier.decode_cost import DecodeBudget
from classifier.head_training import (
    ANSWER_ACCURACY,
    L2_PENALTY,
    STEPS,
    Estimate,
    Head,
    cross_validate,
    fit,
    pooled_features,
)
from classifier.image_errors import ImageError
from classifier.intake import load_pixels
from classifier.model import Model
from classifier.photo_archive import Photo
from classifier.process_memory import release_free_memory
from classifier.registry import EVERY_MODEL
from classifier.settings import machine_description

#: A model's name, as the card schema allows it, short enough for a URL and a button.
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_TITLE = 60
#: Hidden folders (the registry skips them) for a model being built or removed.
BUILDING, REMOVING = ".making-", ".removing-"
#: A model is built in seconds: a folder still being built after this long was left by
#: a worker that died midway (killed for its memory, or the machine stopped).
ABANDONED_AFTER_S = 3600


class NameTaken(ValueError):
    """A model of that name is already served."""


class NotMadeHere(ValueError):
    """A shipped model: it can be retrained, not removed through the API."""


def check_name(name: str, title: str) -> None:
    """Raises ValueError with the reason when `name` or `title` cannot be used."""
    if not NAME.fullmatch(name) or name == EVERY_MODEL:
        raise ValueError(f"A model's name is 1 to 40 lower-case letters, digits, '-' or '_', "
                         f"starting with a letter or digit (and not {EVERY_MODEL!r}).")
    check_title(title)


def check_title(title: str) -> None:
    """A title is shown to every visitor once kept and written into its card: one line
    of printable characters (no line breaks, no right-to-left overrides)."""
    if not 0 < len(title.strip()) <= MAX_TITLE or not title.isprintable():
        raise ValueError(f"A model's title is 1 to {MAX_TITLE} printable characters on one line.")


@dataclass(frozen=True)
class Trained:
    """A head fitted for photos by class, with what its card says about them: the
    photos per class, the cross-validation estimate, the photos' names (for the ones
    it got wrong) and how long it took. Enough to install it as a model later."""

    per_class: dict[str, int]
    head: Head
    estimate: Estimate
    names: list[str]
    duration_s: float
    #: The models whose networks' pooled features the head reads after the base's.
    extras: tuple[Model, ...] = ()

    @property
    def classes(self) -> list[str]:
        return list(self.per_class)


def train(base: Model, photos: dict[str, list[Photo]], budget: DecodeBudget,
          extras: Sequence[Model] = ()) -> Trained:
    """Fit a head on `base`'s network, and on those of `extras` (models running their
    own network, at `base`'s input size), for `photos` (by class). Raises `ImageError`
    for a photo that cannot be read (its message starts with the photo's name)."""
    started = time.perf_counter()
    classes = list(photos)
    items = [(index, photo) for index, label in enumerate(classes) for photo in photos[label]]
    pixels = [_pixels(photo, base, budget) for _, photo in items]
    features = pooled_features([base.network, *(extra.network for extra in extras)], pixels)
    labels = np.array([index for index, _ in items])
    estimate = cross_validate(features, labels, classes)
    head = fit(features, labels, len(classes))
    # The photos' pixels and feature maps are garbage now: their pages go back to the
    # system, so a worker that made a model keeps only its head.
    del pixels, features
    release_free_memory()
    return Trained({label: len(members) for label, members in photos.items()}, head, estimate,
                   [photo.name for _, photo in items], time.perf_counter() - started, tuple(extras))


def make(models_dir: Path, base: Model, *, name: str, title: str, description: str,
         photos: dict[str, list[Photo]], made_by: str, budget: DecodeBudget,
         extras: Sequence[Model] = ()) -> dict:
    """`train` a head for `photos` and `install` it; returns the card. Raises NameTaken,
    or `ImageError` for a photo that cannot be read."""
    check_name(name, title)
    if (models_dir / name).exists():
        raise NameTaken(name)
    return install(models_dir, base, train(base, photos, budget, extras), name=name, title=title,
                   description=description, made_by=made_by, via="POST /api/v1/models")


def install(models_dir: Path, base: Model, trained: Trained, *, name: str, title: str,
            description: str, made_by: str, via: str) -> dict:
    """Put a trained head in place as the model `name` under `models_dir`, built aside
    and renamed in; returns its card. Raises NameTaken."""
    check_name(name, title)
    card = _card(models_dir, base, trained, name=name, title=title, description=description,
                 made_by=made_by, via=via)
    draft = models_dir / f"{BUILDING}{name}-{secrets.token_hex(4)}"
    try:
        draft.mkdir()
        np.savez(draft / "head.npz", kernel=trained.head.kernel, bias=trained.head.bias)
        (draft / "labels.txt").write_text("\n".join(trained.classes) + "\n", encoding="utf-8")
        _link_or_copy(base.network.path, draft / card["files"]["variants"][base.runtime.variant])
        for extra, file in zip(trained.extras, card["files"].get("extra_features", []), strict=True):
            _link_or_copy(extra.network.path, draft / file)
        (draft / model_card.CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        (draft / model_card.MARKDOWN_FILE).write_text(model_card.to_markdown(card), encoding="utf-8")
        # Made on a server, not for the repository: git ignores the whole folder.
        (draft / ".gitignore").write_text("*\n", encoding="utf-8")
        try:
            draft.rename(models_dir / name)  # fails if the name was taken meanwhile
        except OSError:
            raise NameTaken(name) from None
    finally:
        shutil.rmtree(draft, ignore_errors=True)
    return card


def remove(models_dir: Path, name: str) -> None:
    """Remove a made model's directory. Raises KeyError for no such model, NotMadeHere
    for a shipped one."""
    directory = models_dir / name
    if not NAME.fullmatch(name) or not model_card.exists(directory):
        raise KeyError(name)
    if not model_card.is_made_here(model_card.load(directory)):
        raise NotMadeHere(name)
    hidden = models_dir / f"{REMOVING}{name}-{secrets.token_hex(4)}"
    try:
        directory.rename(hidden)  # gone for every worker at once
    except FileNotFoundError:  # removed by another request meanwhile
        raise KeyError(name) from None
    shutil.rmtree(hidden, ignore_errors=True)  # what a crash leaves, `clear_leftovers` takes


def clear_leftovers(models_dir: Path) -> list[str]:
    """Delete what a worker that died while making or removing a model left in the
    models folder: every folder being removed (out of sight already), and folders
    being built for over ABANDONED_AFTER_S (younger ones may be another worker's work
    in progress). Returns their names. Run at start-up; hidden folders are never served."""
    now, cleared = time.time(), []
    for folder in models_dir.iterdir():
        if folder.is_symlink() or not folder.is_dir():
            continue
        try:
            abandoned = folder.name.startswith(REMOVING) or (
                folder.name.startswith(BUILDING) and now - folder.stat().st_mtime > ABANDONED_AFTER_S)
        except OSError:  # cleared by another worker starting at the same time
            continue
        if abandoned:
            shutil.rmtree(folder, ignore_errors=True)
            cleared.append(folder.name)
    return cleared


def _pixels(photo: Photo, base: Model, budget: DecodeBudget) -> np.ndarray:
    try:
        return load_pixels(photo.data, base.input_size, max_pixels=base.max_pixels, budget=budget)
    except ImageError as exc:
        exc.message = f"{photo.name}: {exc.message}"
        raise


def replace_with_copy(source: Path, target: Path) -> None:
    """Copy `source` to `target` as a new file, written beside it and renamed over it,
    as training ships a model's files (`training.export`): a made model's hard link to
    the old file keeps the bytes its head was fitted on. (Writing into the file, as
    `cp` does, would change the network under every made model's head.)"""
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link shares the base's file (no space, and the same bytes even if the base
    is later retrained, as training replaces a model's files rather than writing into
    them); a copy where links cannot be made (another file system)."""
    try:
        os.link(source.resolve(), target)
    except OSError:
        shutil.copyfile(source, target)


def calibration_card(base: Model, estimate: Estimate) -> dict:
    """A made model's `calibration` in its card (`classifier.calibration`): fitted on
    the cross-validated answers, for the network it runs on."""
    return {"target": ANSWER_ACCURACY, "rule": calibration.rule(ANSWER_ACCURACY),
            "held_out": "photos it was made from, each held out once (cross-validation)",
            "variants": {base.runtime.variant: estimate.calibration}}


def _latency(model: Model) -> float:
    """Milliseconds an inference of `model`'s served file takes: its card's, else as timed here."""
    variant = model.runtime.variant
    return next((v["latency_ms_p50"] for v in model.card.get("variants", []) if v["name"] == variant),
                None) or model.runtime.timings_ms.get(variant) or 1.0


def _card(models_dir: Path, base: Model, trained: Trained, *, name: str, title: str,
          description: str, made_by: str, via: str) -> dict:
    """The model card: the schema's fields, from the base's card where they are its."""
    classes, per_class, estimate = trained.classes, trained.per_class, trained.estimate
    total = sum(per_class.values())
    variant, base_card = base.runtime.variant, base.card
    network_file = base.network.path.name
    # Asked alone, it runs its extras' networks too.
    latency = round(sum(_latency(model) for model in (base, *trained.extras)), 3)
    made_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    evaluated_on = (f"the {total} photos it was made from, each held out once "
                    f"({estimate.folds}-fold cross-validation, stratified)")
    extras = [{"file": f"features_{extra.name}.tflite",
               "from": os.path.relpath(extra.network.path, models_dir.parent),
               "network": f"the {extra.name} model's network (version {extra.version}, "
                          f"{extra.network.path.name})"} for extra in trained.extras]
    files = {"labels": "labels.txt", "head": "head.npz", "variants": {variant: network_file}}
    if extras:
        files["extra_features"] = [extra["file"] for extra in extras]
    return {
        "schema_version": 1, "name": name, "title": title.strip(),
        # When it was made, and a random part: a model removed and made again under
        # its name within the second is another version to every worker (which reloads
        # a model whose version changed) and to its feedback.
        "version": f"{model_card.new_version()}.{secrets.token_hex(3)}",
        "description": description.strip() or
        f"Made on this server from {total} photos: tells {', '.join(classes)} apart.",
        "classes": classes,
        "files": files,
        "input": base_card["input"],
        "architecture": {
            "summary": f"{base.name}'s network ({base_card['architecture']['summary']})"
                       + "".join(f" and {extra['network']}" for extra in extras)
                       + (", their feature maps pooled by the mean and stacked" if extras
                          else ", its feature map pooled by the mean")
                       + f", then a dense softmax over {len(classes)} classes fitted on the server in NumPy",
            **{key: base_card["architecture"][key] for key in ("feature_map", "feature_extractor")
               if key in base_card["architecture"]},
            **({"extra_features": extras} if extras else {})},
        "base_weights": {**base_card["base_weights"], "base": base.name},
        "training": {
            "data": {"train": {"total": total, "per_class": per_class, "per_source": {"upload": total}}},
            "settings": {"base_model": f"{base.name} {base.version} ({variant})",
                         **({"extra_features": [f"{extra.name} {extra.version} ({extra.runtime.variant})"
                                                for extra in trained.extras]} if extras else {}),
                         "method": "multinomial logistic regression on the pooled features "
                                   "(classifier.head_training)",
                         "l2_penalty": L2_PENALTY, "gradient_steps": STEPS,
                         "mirrored_copies": True, "cross_validation_folds": estimate.folds},
            "epochs_run": {}, "duration_s": round(trained.duration_s, 2), "machine": machine_description()},
        "metrics": {"cross_validation": {
            "dataset": evaluated_on, "n": total, "accuracy": estimate.accuracy,
            "note": "an estimate from few photos: expect other photos to score somewhat lower",
            "confusion_matrix": {"labels": classes, "matrix": estimate.confusion},
            "not_sure": {key: estimate.calibration[key] for key in ("not_sure_share", "given_accuracy")},
            "wrong": [{"photo": trained.names[index], "class": given, "predicted": predicted, "score": score}
                      for index, given, predicted, score in estimate.wrong]}},
        "metrics_variant": variant,
        "calibration": calibration_card(base, estimate),
        "variants": [{"name": variant, "file": network_file, "size_bytes": base.network.path.stat().st_size,
                      "accuracy": estimate.accuracy, "evaluated_on": evaluated_on,
                      "latency_ms_p50": latency}],
        "reproduce": f"curl -u admin:PASSWORD -F name={name} -F title=... -F archive=@photos.zip "
                     "SERVER/api/v1/models (one folder of photos per class); for more accuracy, "
                     "python -m training.train PHOTOS/ --out models/NAME --base efficientnet_lite0",
        "made": {"by": made_by, "at": made_at.isoformat().replace("+00:00", "Z"),
                 "photos": total, "via": via},
    }
