"""Inference engine: TFLite models run by the LiteRT runtime (never full TensorFlow).

A model directory ships its network in several variants (int8 and float16), because
which is faster depends on the CPU: int8 wins where the CPU has VNNI instructions and
loses on plain AVX2. `Model.from_directory` times each variant for a moment at load
and serves the faster one (unless a setting names one), and says which and why in
`Model.runtime`; `classifier.variant_memory` keeps that verdict for later starts on
the same CPU.

A `Model` runs a `Network`: one `.tflite` file in a small pool of interpreters (a
LiteRT interpreter is not safe to use from two threads at once, so each call
borrows one). The network contains its preprocessing (pixel scaling), so callers
only hand over uint8 RGB pixels from `classifier.intake`. Networks exported by
`training.export` have a second output, the last feature map before pooling, which
`classifier.explain` turns into a class-activation map; it is read only when asked
for.

Two models whose cards give the same feature-extractor fingerprint (a head trained
on a frozen base, and that base's own ImageNet model) compute the same feature map.
`ModelRegistry` then loads the network once: the second model is its own dense
layer (`head.npz`) on the first one's feature map, which saves an interpreter's
memory and, for `model=all`, a whole inference.

A head may also read other networks' pooled feature maps beside its own network's
(the card's `files.extra_features`: the photo type reads the hot dog network's, which
learned food, rooms, people and pets as "not a hot dog"). Each is a copy of that
network's file in the model directory; the registry runs the loaded network instead
when its file is byte-identical, so the extra costs neither memory nor, for
`model=all`, an inference.
"""

from __future__ import annotations

import hashlib
import logging
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from classifier import card as model_card
from classifier.decode_cost import DecodeBudget
from classifier.digits import load_digit
from classifier.explain import head_weights
from classifier.fair_pool import FairPool
from classifier.intake import DEFAULT_MAX_PIXELS, fit_to_input, load_pixels
from classifier.process_memory import release_free_memory
from classifier.variant_memory import VariantMemory

log = logging.getLogger(__name__)

#: Timed invocations per variant at load, after one warm-up, taken in turns: enough
#: to tell a 10 % difference apart, short enough to keep start-up well under a second.
TIMING_RUNS = 7
#: How much faster a later variant must be to be served instead of the first one
#: (the smallest file, and the least memory: a float16 file costs a worker about twice
#: its int8 twin's memory, as LiteRT unpacks it to float32).
CLEARLY_FASTER = 0.10
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


class Network:
    """A `.tflite` file loaded into a pool of interpreters that calls borrow in turn."""

    def __init__(self, path: str | Path, *, pool_size: int = 1, num_threads: int = 1,
                 runners: Sequence[_Runner] = ()):
        self.path = Path(path)
        runners = [*runners, *(_Runner(self.path, num_threads)
                               for _ in range(max(1, pool_size) - len(runners)))]
        self._pool = FairPool(runners)
        first = runners[0]
        self.input_size, self.channels = first.input_size, first.channels  # (width, height)
        self.num_classes, self.has_features = first.num_classes, first.has_features
        blank = np.zeros((self.input_size[1], self.input_size[0], self.channels), np.uint8)
        for runner in runners:  # warm-up: the first invoke allocates and is slow
            runner.run(blank)

    def run(self, batch: Sequence[np.ndarray], *, features: bool = False
            ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """(scores, feature map or None) for each image, on one borrowed interpreter."""
        with self._pool.borrowed() as runner:
            return [(runner.run(pixels), runner.features() if features else None)
                    for pixels in batch]


class Model:
    """One classifier: a network plus the class names it predicts. Its scores are the
    network's own, or, with `head` (kernel, bias), a dense layer applied here to the
    pooled feature map of a network it shares with another model, followed by those of
    the `extras` networks (on the same pixels) when it reads more than one."""

    def __init__(self, tflite_path: str | Path, labels: Sequence[str], *,
                 name: str = "model", version: str = "0", card: dict | None = None,
                 runtime: dict | None = None, pool_size: int = 1, num_threads: int = 1,
                 max_pixels: int = DEFAULT_MAX_PIXELS, network: Network | None = None,
                 head: tuple[np.ndarray, np.ndarray] | None = None,
                 extras: Sequence[Network] = ()):
        self.path = Path(tflite_path)
        self.labels = list(labels)
        self.name, self.version = name, version
        self.card = card or {}
        self.runtime = runtime or {"file": self.path.name, "timings_ms": {},
                                   "reason": "the only file given"}
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
        path = directory / runtime["file"]
        network = Network(path, pool_size=pool_size, num_threads=num_threads, runners=[runner])
        extras = extra_networks(directory, card, loaded, pool_size=pool_size, num_threads=num_threads)
        if extras:
            options["head"] = head_weights(directory / card["files"]["head"])
            describe_extras(runtime, extras, directory)
        model = cls(path, card["classes"], name=card["name"], version=card["version"], card=card,
                    runtime=runtime, network=network, extras=extras, **options)
        log.info("model %s %s: serving %s (%s)", model.name, model.version,
                 runtime["file"], runtime["reason"])
        return model

    @classmethod
    def on_features_of(cls, lender: Model, directory: Path, card: dict,
                       loaded: Sequence[Network] = ()) -> Model:
        """The model in `directory` as its own dense head on `lender`'s network, whose
        feature extractor is the same (see `lends_features_to`), and on its extra
        feature networks (from `loaded` when there)."""
        variant = lender.runtime["variant"]
        runtime = {"variant": variant, "file": os.path.relpath(lender.network.path, directory),
                   "timings_ms": {}, "features_of": lender.name,
                   "reason": f"its feature extractor is {lender.name}'s (the same fingerprint in "
                             f"both cards): its dense head runs on the feature map of "
                             f"{lender.name}'s {variant} network, one interpreter for both"}
        extras = extra_networks(directory, card, loaded)
        if extras:
            describe_extras(runtime, extras, directory)
        model = cls(directory / card["files"]["variants"][variant], card["classes"],
                    name=card["name"], version=card["version"], card=card, runtime=runtime,
                    network=lender.network, head=head_weights(directory / card["files"]["head"]),
                    max_pixels=lender.max_pixels, extras=extras)
        log.info("model %s %s: %s", model.name, model.version, runtime["reason"])
        return model

    def lends_features_to(self, card: dict) -> bool:
        """Whether the model described by `card` can run on this model's network: the
        same feature extractor, served here in a float variant that `card`'s model ships
        too (an int8 network's feature map depends on its own calibration)."""
        fingerprint = self.card.get("architecture", {}).get("feature_extractor")
        return (self.head is None and self.has_features and fingerprint is not None
                and fingerprint == card.get("architecture", {}).get("feature_extractor")
                and self.runtime.get("variant") in FLOAT_VARIANTS
                and self.runtime["variant"] in card["files"]["variants"] and "head" in card["files"])

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
        if self.head is None:
            probabilities = network_scores
        else:
            kernel, bias = self.head
            logits = feature_map.mean(axis=(0, 1)) @ kernel + bias
            probabilities = np.exp(logits - logits.max())
            probabilities /= probabilities.sum()
        scores = {label: round(float(p), 6) for label, p in zip(self.labels, probabilities, strict=True)}
        top = sorted(scores.items(), key=lambda item: item[1], reverse=True)
        return Prediction(label=top[0][0], scores=scores, top=top,
                          features=feature_map if keep_features else None)

    @property
    def not_sure_below(self) -> float:
        """Top scores under this are "not sure" (chosen on validation data by training;
        0 when the card states none)."""
        return self.card.get("not_sure_below", {}).get("confidence", 0.0)

    @property
    def head_file(self) -> Path:
        """The dense weights that turn the feature map into class-activation maps."""
        return self.path.parent / self.card["files"]["head"]

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
                     features: bool = False) -> dict[str, Prediction]:
    """Each model's prediction on its input (by model name), running every network
    once however many of the models read it."""
    outputs = {}
    for model in models:
        for network in model.networks:
            if id(network) not in outputs:
                readers = [m for m in models if any(n is network for n in m.networks)]
                wants_features = features or any(m.head is not None for m in readers)
                outputs[id(network)] = network.run([inputs[model.name]], features=wants_features)[0]
    return {model.name: model.prediction([outputs[id(n)] for n in model.networks],
                                         keep_features=features)
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


def describe_extras(runtime: dict, extras: Sequence[Network], directory: Path) -> None:
    """Say in a model's `runtime` which files its extra features come from (a path
    into another model's folder when that loaded network is shared)."""
    runtime["extra_features"] = [os.path.relpath(n.path, directory) for n in extras]
    runtime["reason"] += ("; its head also reads the feature map of "
                          + ", ".join(runtime["extra_features"]))


def file_digest(path: Path) -> str:
    """SHA-256 of a file, remembered for as long as its size and time stamp stay."""
    stat = path.stat()
    return _digest(path.resolve(), stat.st_size, stat.st_mtime_ns)


@cache
def _digest(path: Path, size: int, mtime_ns: int) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def choose_variant(directory: Path, files: dict[str, str], wanted: str,
                   num_threads: int = 1, memory: VariantMemory | None = None
                   ) -> tuple[dict, _Runner]:
    """Which of a model's files to serve: `wanted` if the directory has it, else the
    fastest, timed here (or remembered in `memory` from an earlier start on this CPU).
    Returns the `runtime` description (file, variant, timings_ms, reason) that the
    startup log and /api/v1/models show, and an interpreter already loaded with that
    file."""
    if wanted in files:
        return ({"variant": wanted, "file": files[wanted], "timings_ms": {},
                 "reason": f"the {wanted} variant was asked for by a setting"},
                _Runner(directory / files[wanted], num_threads))
    if wanted != "auto":
        log.warning("%s has no %s variant (it has %s); choosing by speed instead",
                    directory.name, wanted, ", ".join(files))
    if len(files) == 1:
        (name, file), = files.items()
        return ({"variant": name, "file": file, "timings_ms": {},
                 "reason": "the only variant shipped (the model card says why)"},
                _Runner(directory / file, num_threads))
    if memory is None:
        return _fastest(directory, files, num_threads)
    with memory.locked():  # workers starting together: one measures, the others read
        runtime = memory.recall(directory, files)
        if runtime is not None:
            return runtime, _Runner(directory / runtime["file"], num_threads)
        runtime, runner = _fastest(directory, files, num_threads)
        memory.remember(directory, files, runtime)
        return runtime, runner


def _fastest(directory: Path, files: dict[str, str], num_threads: int) -> tuple[dict, _Runner]:
    """Time every variant here; the runtime description and the chosen interpreter."""
    runners = {name: _Runner(directory / file, num_threads) for name, file in files.items()}
    timings = _median_times(runners)
    # The first variant listed (the smallest file, which also takes the least memory)
    # unless another is clearly faster: timings a few per cent apart are noise, and a
    # choice that flips between restarts would make the same photo's scores differ from
    # one run to the next.
    first = chosen = next(iter(timings))
    for name, ms in timings.items():
        if ms < timings[chosen] / (1 + CLEARLY_FASTER):
            chosen = name
    measured = ", ".join(f"{name} {ms:.2f} ms" for name, ms in timings.items())
    verdict = (f"{chosen} is more than {CLEARLY_FASTER:.0%} faster than {first}" if chosen != first
               else f"none is more than {CLEARLY_FASTER:.0%} faster than {first}, the smallest")
    reason = f"on this CPU {measured} (median of one-image runs timed at start-up): {verdict}"
    return ({"variant": chosen, "file": files[chosen], "timings_ms": timings, "reason": reason},
            runners[chosen])


def _median_times(runners: dict[str, _Runner]) -> dict[str, float]:
    """Median milliseconds of one inference per runner, taking turns between them so
    that a change in the machine's speed meanwhile (another worker starting up) hits
    every variant alike."""
    first = next(iter(runners.values()))
    pixels = np.random.default_rng(0).integers(0, 256, (*first.input_size[::-1], first.channels),
                                                np.uint8)
    for runner in runners.values():
        runner.run(pixels)  # the first invoke allocates
    timings = median_ms_in_turns({name: (lambda r=runner: r.run(pixels))
                                  for name, runner in runners.items()}, TIMING_RUNS)
    return {name: round(ms, 3) for name, ms in timings.items()}


def median_ms_in_turns(calls: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median milliseconds of each call, `runs` times each, taking turns so that a drift
    in the machine's speed meanwhile hits every call alike."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


class _Runner:
    """One interpreter with its input/output conversions worked out once."""

    def __init__(self, path: Path, num_threads: int):
        # From the path, LiteRT maps the file: its pages are shared by every
        # interpreter and process instead of copied onto each heap.
        self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        (inp,) = self.interpreter.get_input_details()
        outputs = {len(out["shape"]): out for out in self.interpreter.get_output_details()}
        _, height, width, channels = inp["shape"]
        if channels not in (1, 3):
            raise ValueError("the model must take RGB or greyscale input")
        self.input_size, self.channels = (int(width), int(height)), int(channels)
        self.num_classes = int(outputs[2]["shape"][-1])
        self._input_index, self._input_dtype = inp["index"], inp["dtype"]
        self._input_scale, self._input_zero = inp["quantization"]
        self._scores = _Output(outputs[2])
        self._features = _Output(outputs[4]) if 4 in outputs else None
        self.has_features = self._features is not None
        # A uint8 input quantised with scale ~1 and zero point 0 *is* the raw pixel
        # value (our int8 export calibrates on 0-255 photos): fed without arithmetic.
        # The tolerance is far below one grey level at 255.
        self._pixels_pass_through = (self._input_dtype == np.uint8 and self._input_zero == 0
                                     and abs(self._input_scale - 1.0) < 1e-3)

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities for one image."""
        self.interpreter.set_tensor(self._input_index, self._to_input(pixels)[np.newaxis])
        self.interpreter.invoke()
        return self._scores.read(self.interpreter)

    def features(self) -> np.ndarray:
        """The last feature map of the image `run` saw last (float32, H x W x C)."""
        if self._features is None:
            raise ValueError("this network has no feature-map output (retrain it to get one)")
        return self._features.read(self.interpreter)

    def _to_input(self, pixels: np.ndarray) -> np.ndarray:
        if self._pixels_pass_through:
            return np.ascontiguousarray(pixels, dtype=np.uint8)
        if self._input_dtype in (np.int8, np.uint8):
            info = np.iinfo(self._input_dtype)
            quantised = np.rint(pixels / self._input_scale + self._input_zero)
            return np.clip(quantised, info.min, info.max).astype(self._input_dtype)
        return pixels.astype(self._input_dtype)


class _Output:
    """An output tensor, dequantised to float32 when the network is quantised."""

    def __init__(self, details: dict):
        self.index = details["index"]
        self.scale, self.zero = details["quantization"]
        self.quantised = details["dtype"] in (np.int8, np.uint8)

    def read(self, interpreter: Interpreter) -> np.ndarray:
        raw = interpreter.get_tensor(self.index)[0]
        if self.quantised:
            return (raw.astype(np.float32) - self.zero) * self.scale
        return raw.astype(np.float32, copy=False)


def default_pool_size(threads: int) -> int:
    """Interpreters per model: as many as inferences can really run at once, i.e. the
    cores this process may use, at most one per worker thread. Each interpreter holds
    its own packed copy of the weights, so more would cost memory and gain nothing."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(threads, cores or 1))


class ModelRegistry:
    """Every model directory under one folder, by name."""

    def __init__(self, models: dict[str, Model], default: str):
        if default not in models:
            raise LookupError(f"default model {default!r} not found; have {sorted(models)}")
        self.models, self.default = models, default

    @classmethod
    def from_folder(cls, folder: str | Path, default: str, **options) -> ModelRegistry:
        folder = Path(folder)
        models: dict[str, Model] = {}
        cards = {directory: model_card.load(directory)
                 for directory in sorted(p for p in folder.iterdir() if model_card.exists(p))}
        # Models reading other networks' features load last, so those networks are there.
        for directory, card in sorted(cards.items(),
                                      key=lambda item: bool(item[1]["files"].get("extra_features"))):
            loaded = [m.network for m in models.values()]
            lender = next((m for m in models.values() if m.lends_features_to(card)), None)
            model = (Model.on_features_of(lender, directory, card, loaded) if lender
                     else Model.from_directory(directory, loaded=loaded, **options))
            models[model.name] = model
        release_free_memory()
        return cls(models, default)

    def get(self, name: str | None) -> Model:
        """The named model, or the default; raises `KeyError` for an unknown name."""
        return self.models[name or self.default]

    def names(self) -> list[str]:
        return list(self.models)
