"""A model: a network (or a dense head on another model's network) plus the class
names it predicts, loaded from a directory written by `training.train`.

The network contains its preprocessing (pixel scaling), so callers only hand over
uint8 RGB pixels from `classifier.intake`. Which of the directory's files it serves is
`classifier.variants`' choice; running it is `classifier.litert`'s.

Two models whose cards give the same feature-extractor fingerprint (a head trained
on a frozen base, and that base's own ImageNet model) compute the same feature map:
the second model can then be its own dense layer (`head.npz`) on the first one's
feature map (`Model.on_features_of`, used by `classifier.registry`), which saves an
interpreter's memory and, for several models at once, a whole inference.

A head may also read other networks' pooled feature maps beside its own network's
(the card's `files.extra_features`: the photo type reads the hot dog network's, which
learned food, rooms, people and pets as "not a hot dog"). Each is a copy of that
network's file in the model directory; a loaded network is used instead when its file
is byte-identical, so the extra costs neither memory nor, for several models, an
inference.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from classifier import card as model_card
from classifier.calibration import logits_of, scaled
from classifier.decode_cost import DecodeBudget
from classifier.digits import load_digit
from classifier.explain import head_weights
from classifier.intake import DEFAULT_MAX_PIXELS, fit_to_input, load_pixels
from classifier.litert import Network
from classifier.variants import Runtime, VariantMemory, choose_variant

log = logging.getLogger(__name__)

#: Variants whose feature map is the float network's, and so can be shared.
FLOAT_VARIANTS = ("float16", "float32")


@dataclass(frozen=True)
class Prediction:
    """Scores for every class, best first in `top`; `features` is the last feature
    map (height x width x channels) when it was asked for."""

    label: str
    scores: dict[str, float]
    top: list[tuple[str, float]] = field(repr=False)
    features: np.ndarray | None = field(default=None, repr=False, compare=False)

    def as_dict(self, top_k: int | None = None) -> dict:
        """The answer as the API gives it: the `top_k` best classes (all if None),
        by name in `scores` and ranked in `top`."""
        top = self.top if top_k is None else self.top[:top_k]
        return {"label": self.label, "scores": dict(top),
                "top": [{"label": name, "score": score} for name, score in top]}


class Model:
    """One classifier: a network plus the class names it predicts. Its scores are the
    network's own, or, with `head` (kernel, bias), a dense layer applied here to the
    pooled feature map of a network it shares with another model, followed by those of
    the `extras` networks (on the same pixels) when it reads more than one."""

    def __init__(self, tflite_path: str | Path, labels: Sequence[str], *,
                 name: str = "model", version: str = "0", card: dict | None = None,
                 runtime: Runtime | None = None, pool_size: int = 1, num_threads: int = 1,
                 max_pixels: int = DEFAULT_MAX_PIXELS, network: Network | None = None,
                 head: tuple[np.ndarray, np.ndarray] | None = None,
                 extras: Sequence[Network] = ()):
        self.path = Path(tflite_path)
        self.labels = list(labels)
        self.name, self.version = name, version
        self.card = card or {}
        self.runtime = runtime or Runtime("given", self.path.name, "the only file given")
        self.max_pixels = max_pixels
        self.network = network or Network(self.path, pool_size=pool_size, num_threads=num_threads)
        self.head, self.extras = head, list(extras)
        self.input_size, self.channels = self.network.input_size, self.network.channels
        self.has_features = self.network.has_features
        classes = head[0].shape[1] if head else self.network.num_classes
        if classes != len(self.labels):
            raise ValueError(f"{self.path} predicts {classes} classes but "
                             f"{len(self.labels)} labels were given")
        for extra in self.extras:
            if head is None or not extra.has_features or extra.input_size != self.input_size:
                raise ValueError(f"{extra.path} cannot add features to {self.path}: it needs a "
                                 "head, a feature-map output and the same input size")

    @property
    def networks(self) -> list[Network]:
        """Every network a prediction runs: its own, then the extras."""
        return [self.network, *self.extras]

    @classmethod
    def from_directory(cls, directory: str | Path, *, variant: str = "auto",
                       num_threads: int = 1, pool_size: int = 1,
                       memory: VariantMemory | None = None, loaded: Sequence[Network] = (),
                       **options) -> Model:
        """Load a model directory as written by `training.train`, serving the variant
        named by `variant`, or with "auto" the one that runs fastest here (as
        remembered in `memory`, if given, from an earlier start on this CPU). Its
        extra feature networks are taken from `loaded` when there (see `extra_networks`)."""
        directory = Path(directory)
        card = model_card.load(directory)
        runtime, runner = choose_variant(directory, card["files"]["variants"], variant,
                                         num_threads, memory)
        path = directory / runtime.file
        network = Network(path, pool_size=pool_size, num_threads=num_threads, runners=[runner])
        extras = extra_networks(directory, card, loaded, pool_size=pool_size, num_threads=num_threads)
        # A network whose own scores are not the card's classes is another model's
        # (a model made on the server: `classifier.made_models`): its head answers.
        if extras or network.num_classes != len(card["classes"]):
            options["head"] = head_weights(directory / card["files"]["head"])
        if extras:
            runtime = runtime.reading_extras(extra_files(extras, directory))
        model = cls(path, card["classes"], name=card["name"], version=card["version"], card=card,
                    runtime=runtime, network=network, extras=extras, **options)
        log.info("model %s %s: serving %s (%s)", model.name, model.version,
                 runtime.file, runtime.reason)
        return model

    @classmethod
    def on_features_of(cls, lender: Model, directory: Path, card: dict,
                       loaded: Sequence[Network] = ()) -> Model:
        """The model in `directory` as its own dense head on `lender`'s network, whose
        feature extractor is the same (see `lends_features_to`), and on its extra
        feature networks (from `loaded` when there)."""
        variant = lender.runtime.variant
        runtime = Runtime(variant, os.path.relpath(lender.network.path, directory), features_of=lender.name,
                          reason=f"its feature extractor is {lender.name}'s (the same fingerprint in "
                                 f"both cards): its dense head runs on the feature map of "
                                 f"{lender.name}'s {variant} network, one interpreter for both")
        extras = extra_networks(directory, card, loaded)
        if extras:
            runtime = runtime.reading_extras(extra_files(extras, directory))
        model = cls(directory / card["files"]["variants"][variant], card["classes"],
                    name=card["name"], version=card["version"], card=card, runtime=runtime,
                    network=lender.network, head=head_weights(directory / card["files"]["head"]),
                    max_pixels=lender.max_pixels, extras=extras)
        log.info("model %s %s: %s", model.name, model.version, runtime.reason)
        return model

    def lends_features_to(self, card: dict) -> bool:
        """Whether the model described by `card` can run on this model's network: the
        same feature extractor, served here in a float variant that `card`'s model ships
        too (an int8 network's feature map depends on its own calibration)."""
        fingerprint = self.card.get("architecture", {}).get("feature_extractor")
        return (self.head is None and self.has_features and fingerprint is not None
                and fingerprint == card.get("architecture", {}).get("feature_extractor")
                and self.runtime.variant in FLOAT_VARIANTS
                and self.runtime.variant in card["files"]["variants"] and "head" in card["files"])

    # -- inference ---------------------------------------------------------

    def predict_pixels(self, pixels: np.ndarray, *, features: bool = False) -> Prediction:
        """Classify one uint8 array shaped (height, width, 3) at the input size."""
        return self.predict_batch([pixels], features=features)[0]

    def predict_bytes(self, data: bytes, *, features: bool = False) -> Prediction:
        """Classify an encoded image (JPEG, PNG, ...); raises `intake.ImageError`."""
        return self.predict_pixels(self.load(data), features=features)

    def predict_batch(self, images: Sequence[bytes | np.ndarray], *, features: bool = False
                      ) -> list[Prediction]:
        """Classify several images with one borrowed interpreter per network."""
        batch = [self.load(item) if isinstance(item, (bytes, bytearray)) else item
                 for item in images]
        runs = [network.run(batch, features=features or self.head is not None)
                for network in self.networks]
        return [self.prediction([run[i] for run in runs], keep_features=features)
                for i in range(len(batch))]

    def prediction(self, outputs: Sequence[tuple[np.ndarray, np.ndarray | None]], *,
                   keep_features: bool = False) -> Prediction:
        """This model's prediction from one run of each of its `networks` (scores and
        feature map, in that order; see `predict_together`). With extras, the feature
        map is theirs stacked on its network's, channel after channel, which is what
        the head reads (and what a class-activation map needs)."""
        network_scores, feature_map = outputs[0]
        if self.extras:
            feature_map = np.concatenate([maps for _, maps in outputs], axis=-1)
        temperature = self.calibration.get("temperature", 1.0)
        if self.head is None:
            probabilities = (network_scores if temperature == 1.0
                             else scaled(logits_of(network_scores), temperature))
        else:
            kernel, bias = self.head
            probabilities = scaled(feature_map.mean(axis=(0, 1)) @ kernel + bias, temperature)
        scores = {label: round(float(p), 6) for label, p in zip(self.labels, probabilities, strict=True)}
        top = sorted(scores.items(), key=lambda item: item[1], reverse=True)
        return Prediction(label=top[0][0], scores=scores, top=top,
                          features=feature_map if keep_features else None)

    @property
    def calibration(self) -> dict:
        """The served file's temperature and "not sure" level (`classifier.calibration`),
        from the card; {} (scores as the network gives them, never "not sure") if none."""
        return self.card.get("calibration", {}).get("variants", {}).get(self.runtime.variant, {})

    @property
    def not_sure_below(self) -> float:
        """Top (calibrated) scores under this are "not sure"."""
        return self.calibration.get("not_sure_below", 0.0)

    @cached_property
    def dense_kernel(self) -> np.ndarray:
        """The dense weights (features x classes) that turn the feature map into
        class-activation maps: the head's, or for a network that answers itself the copy
        of its last layer in its directory's head file, read once for this model (a made
        model removed and made again under its name is a new Model, with its own)."""
        if self.head is not None:
            return self.head[0]
        return head_weights(self.path.parent / self.card["files"]["head"])[0]

    @property
    def reads_digits(self) -> bool:
        """A digit model reads one handwritten digit (`classifier.digits`), not a photo."""
        return self.card.get("input", {}).get("kind") == "digit"

    def load(self, data: bytes, budget: DecodeBudget | None = None) -> np.ndarray:
        """Decode an upload into model-ready pixels (`classifier.intake` for photos,
        `classifier.digits` for a digit model), spending `budget` (see `intake.DecodeBudget`)."""
        if self.reads_digits:
            return load_digit(data, max_pixels=self.max_pixels, budget=budget)
        return load_pixels(data, self.input_size, max_pixels=self.max_pixels, budget=budget)

    def prepare(self, image: Image.Image) -> np.ndarray:
        """Model-ready pixels from a photo decoded once for several models."""
        return fit_to_input(image, self.input_size)

    def blank_input(self) -> np.ndarray:
        """An all-black image at the input size (for warm-up and readiness checks)."""
        return np.zeros((self.input_size[1], self.input_size[0], self.channels), np.uint8)

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "title": self.card.get("title", self.name)}


def predict_together(models: Sequence[Model], inputs: dict[str, np.ndarray], *,
                     features: Collection[str] = ()) -> dict[str, Prediction]:
    """Each model's prediction on its input (by model name), running every network
    once however many of the models read it; the models named in `features` keep the
    feature map their explanation is drawn from."""
    outputs = {}
    for model in models:
        for network in model.networks:
            if id(network) not in outputs:
                readers = [m for m in models if any(n is network for n in m.networks)]
                wants_features = any(m.name in features or m.head is not None for m in readers)
                outputs[id(network)] = network.run([inputs[model.name]], features=wants_features)[0]
    return {model.name: model.prediction([outputs[id(n)] for n in model.networks],
                                         keep_features=model.name in features)
            for model in models}


def extra_networks(directory: Path, card: dict, loaded: Sequence[Network] = (), *,
                   pool_size: int = 1, num_threads: int = 1) -> list[Network]:
    """The networks whose pooled feature maps a model's head reads after its own
    network's (the card's `files.extra_features`, files in its directory): a `loaded`
    network whose file is byte-identical, else that file loaded here."""
    networks = []
    for file in card["files"].get("extra_features", []):
        path = directory / file
        # Sizes first: only a file of the same size is worth hashing at start-up.
        twin = next((n for n in loaded if n.path.stat().st_size == path.stat().st_size
                     and file_digest(n.path) == file_digest(path)), None)
        networks.append(twin or Network(path, pool_size=pool_size, num_threads=num_threads))
    return networks


def extra_files(extras: Sequence[Network], directory: Path) -> list[str]:
    """Which files a model's extra features come from, relative to its directory (a path
    into another model's folder when that loaded network is shared)."""
    return [os.path.relpath(n.path, directory) for n in extras]


def file_digest(path: Path) -> str:
    """SHA-256 of a file, remembered for as long as its size and time stamp stay."""
    stat = path.stat()
    return _digest(path.resolve(), stat.st_size, stat.st_mtime_ns)


@cache
def _digest(path: Path, size: int, mtime_ns: int) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
