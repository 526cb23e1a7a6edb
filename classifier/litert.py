"""The LiteRT adapter: a `.tflite` file run by LiteRT's interpreter (never full
TensorFlow), with its input and output conversions worked out once.

A `Runner` is one interpreter: uint8 RGB pixels in, class scores (and, for networks
exported by `training.export`, the last feature map before pooling) out, whatever the
file's quantisation. A LiteRT interpreter is not safe to use from two threads at once,
so a `Network` holds a small pool of runners that calls borrow in turn.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from classifier.fair_pool import FairPool


class Network:
    """A `.tflite` file loaded into a pool of interpreters that calls borrow in turn."""

    def __init__(self, path: str | Path, *, pool_size: int = 1, num_threads: int = 1,
                 runners: Sequence[Runner] = ()):
        self.path = Path(path)
        runners = [*runners, *(Runner(self.path, num_threads)
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


class Runner:
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
