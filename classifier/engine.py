"""Inference engine: a TFLite model run by the LiteRT runtime (never full TensorFlow).

A `Model` owns a small pool of interpreters. A LiteRT interpreter is not safe to
use from two threads at once, so each call borrows one from the pool; with one
interpreter per worker thread, gunicorn's `gthread` workers never wait on each
other. The network itself contains its preprocessing (pixel scaling), so callers
only hand over uint8 RGB pixels from `classifier.intake`.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from classifier import card as model_card
from classifier.intake import DEFAULT_MAX_PIXELS, load_pixels


@dataclass(frozen=True)
class Prediction:
    """Scores for every class, best first in `top`."""

    label: str
    scores: dict[str, float]
    top: list[tuple[str, float]] = field(repr=False)

    def as_dict(self, top_k: int | None = None) -> dict:
        top = self.top if top_k is None else self.top[:top_k]
        return {"label": self.label, "scores": self.scores,
                "top": [{"label": name, "score": score} for name, score in top]}


class Model:
    """One classifier: a `.tflite` file plus the class names it predicts."""

    def __init__(self, tflite_path: str | Path, labels: Sequence[str], *,
                 name: str = "model", version: str = "0", card: dict | None = None,
                 pool_size: int = 1, num_threads: int = 1,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        self.path = Path(tflite_path)
        self.labels = list(labels)
        self.name, self.version = name, version
        self.card = card or {}
        self.max_pixels = max_pixels
        content = self.path.read_bytes()  # read once, shared by every interpreter
        self._pool: queue.SimpleQueue[_Runner] = queue.SimpleQueue()
        runners = [_Runner(content, num_threads) for _ in range(max(1, pool_size))]
        for runner in runners:
            self._pool.put(runner)
        first = runners[0]
        self.input_size = first.input_size  # (width, height)
        if first.num_classes != len(self.labels):
            raise ValueError(f"{self.path} predicts {first.num_classes} classes but "
                             f"{len(self.labels)} labels were given")
        for runner in runners:  # warm-up: the first invoke allocates and is slow
            runner.run(self.blank_input())

    @classmethod
    def from_directory(cls, directory: str | Path, **options) -> Model:
        """Load a model directory as written by `training.train`."""
        directory = Path(directory)
        card = model_card.load(directory)
        return cls(directory / card["files"]["model"], card["classes"],
                   name=card["name"], version=card["version"], card=card, **options)

    # -- inference ---------------------------------------------------------

    def predict_pixels(self, pixels: np.ndarray) -> Prediction:
        """Classify one uint8 array shaped (height, width, 3) at the input size."""
        with self._runner() as runner:
            probabilities = runner.run(pixels)
        return self._prediction(probabilities)

    def predict_bytes(self, data: bytes) -> Prediction:
        """Classify an encoded image (JPEG, PNG, ...); raises `intake.ImageError`."""
        return self.predict_pixels(self.load(data))

    def predict_batch(self, images: Sequence[bytes | np.ndarray]) -> list[Prediction]:
        """Classify several images with one borrowed interpreter."""
        batch = [self.load(item) if isinstance(item, (bytes, bytearray)) else item
                 for item in images]
        with self._runner() as runner:
            return [self._prediction(runner.run(pixels)) for pixels in batch]

    def load(self, data: bytes) -> np.ndarray:
        """Decode an upload into model-ready pixels (see `classifier.intake`)."""
        return load_pixels(data, self.input_size, max_pixels=self.max_pixels)

    def blank_input(self) -> np.ndarray:
        """An all-black image at the input size (for warm-up and readiness checks)."""
        return np.zeros((self.input_size[1], self.input_size[0], 3), np.uint8)

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version}

    # -- internals ---------------------------------------------------------

    @contextmanager
    def _runner(self) -> Iterator[_Runner]:
        runner = self._pool.get()
        try:
            yield runner
        finally:
            self._pool.put(runner)

    def _prediction(self, probabilities: np.ndarray) -> Prediction:
        scores = {label: round(float(p), 6) for label, p in zip(self.labels, probabilities, strict=True)}
        top = sorted(scores.items(), key=lambda item: item[1], reverse=True)
        return Prediction(label=top[0][0], scores=scores, top=top)


class _Runner:
    """One interpreter with its input/output conversions worked out once."""

    def __init__(self, content: bytes, num_threads: int):
        self.interpreter = Interpreter(model_content=content, num_threads=num_threads)
        self.interpreter.allocate_tensors()
        (inp,) = self.interpreter.get_input_details()
        (out,) = self.interpreter.get_output_details()
        _, height, width, channels = inp["shape"]
        if channels != 3:
            raise ValueError("the model must take RGB input")
        self.input_size = (int(width), int(height))
        self.num_classes = int(out["shape"][-1])
        self._input_index, self._input_dtype = inp["index"], inp["dtype"]
        self._input_scale, self._input_zero = inp["quantization"]
        self._output_index = out["index"]
        self._output_scale, self._output_zero = out["quantization"]
        self._output_quantized = out["dtype"] in (np.int8, np.uint8)
        # A uint8 input quantised with scale ~1 and zero point 0 *is* the raw pixel
        # value (our int8 export calibrates on 0-255 photos): fed without arithmetic.
        # The tolerance is far below one grey level at 255.
        self._pixels_pass_through = (self._input_dtype == np.uint8 and self._input_zero == 0
                                     and abs(self._input_scale - 1.0) < 1e-3)

    def run(self, pixels: np.ndarray) -> np.ndarray:
        tensor = self._to_input(pixels)[np.newaxis]
        self.interpreter.set_tensor(self._input_index, tensor)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._output_index)[0]
        if self._output_quantized:
            return (raw.astype(np.float32) - self._output_zero) * self._output_scale
        return raw.astype(np.float32, copy=False)

    def _to_input(self, pixels: np.ndarray) -> np.ndarray:
        if self._pixels_pass_through:
            return np.ascontiguousarray(pixels, dtype=np.uint8)
        if self._input_dtype in (np.int8, np.uint8):
            info = np.iinfo(self._input_dtype)
            quantised = np.rint(pixels / self._input_scale + self._input_zero)
            return np.clip(quantised, info.min, info.max).astype(self._input_dtype)
        return pixels.astype(self._input_dtype)


class ModelRegistry:
    """Every model directory under one folder, by name."""

    def __init__(self, models: dict[str, Model], default: str):
        if default not in models:
            raise LookupError(f"default model {default!r} not found; have {sorted(models)}")
        self.models, self.default = models, default

    @classmethod
    def from_folder(cls, folder: str | Path, default: str, **options) -> ModelRegistry:
        folder = Path(folder)
        models = {}
        for directory in sorted(p for p in folder.iterdir() if model_card.exists(p)):
            model = Model.from_directory(directory, **options)
            models[model.name] = model
        return cls(models, default)

    def get(self, name: str | None) -> Model:
        """The named model, or the default; raises `KeyError` for an unknown name."""
        return self.models[name or self.default]

    def names(self) -> list[str]:
        return list(self.models)
