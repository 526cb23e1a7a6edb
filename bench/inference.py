"""Inference benchmark: one image at a time through the shipped network as TFLite
(float32, float16, int8; 1 and 2 threads) against the same network in Keras
(`model.predict`, a direct call, a `tf.function`). Reports p50 / p90 / p99 ms.

Also the shipped int8 file fed 1, 2, 4 and 8 images per invoke (its input resized to
that batch), one thread: the per-image cost says whether batching the requests that
wait for an interpreter under load would serve more of them.

The TFLite variants and Keras model come from `build/hotdog/` when `make model-hotdog`
has run; otherwise the same architecture (the base the card names) is rebuilt from
the base weights in ../shared and exported here (timings depend on the architecture,
not on the trained values), and the shipped int8 file is used as it is.
"""

from __future__ import annotations

import os
from argparse import Namespace
from pathlib import Path

import numpy as np

from bench.common import ROOT, percentiles, timed

WORK_DIR = ROOT / "build" / "hotdog"
SHIPPED = ROOT / "models" / "hotdog"


def _sample_pixels(count: int = 16) -> np.ndarray:
    from tests import images

    return np.stack([images.photo_array(224, 224, seed=i) for i in range(count)])


def _keras_model():
    import keras

    if (WORK_DIR / "model.keras").is_file():
        return keras.models.load_model(WORK_DIR / "model.keras"), "build/hotdog/model.keras"
    from classifier.card import load
    from training.bases import BASES
    from training.train import build_model

    card = load(SHIPPED)
    base = BASES[card["base_weights"]["base"]]
    args = Namespace(base=base.name, base_weights=str(base.default_weights()),
                     image_size=card["input"]["width"], dropout=0.2, seed=0, name="hotdog")
    model, _ = build_model(len(card["classes"]), args)
    return model, "same architecture rebuilt from the base weights"


def tflite_files(keras_model=None) -> dict[str, Path]:
    """The network as TFLite float32, float16 and int8 (see the module docstring)."""
    files = {v: WORK_DIR / f"model_{v}.tflite" for v in ("float32", "float16", "int8")}
    if all(p.is_file() for p in files.values()):
        return files
    from training.export import to_tflite

    if keras_model is None:
        keras_model = _keras_model()[0]

    out = ROOT / "bench" / "results" / "tmp"
    out.mkdir(parents=True, exist_ok=True)
    for variant in ("float32", "float16"):
        files[variant] = out / f"model_{variant}.tflite"
        files[variant].write_bytes(to_tflite(keras_model, variant))
    from classifier.card import load

    files["int8"] = SHIPPED / load(SHIPPED)["files"]["variants"]["int8"]
    return files


def run(repeats: int = 300) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from classifier.model import Model

    pixels = _sample_pixels()
    keras_model, keras_source = _keras_model()
    files = tflite_files(keras_model)
    rows = []
    for variant, path in files.items():
        for threads in (1, 2):
            model = Model(path, ["hotdog", "not_hotdog"], num_threads=threads)
            samples = timed(lambda i, model=model: model.predict_pixels(pixels[i % len(pixels)]),
                            repeats)
            rows.append({"engine": f"TFLite {variant}", "threads": threads,
                         "size_mb": round(path.stat().st_size / 1e6, 2), **percentiles(samples)})

    def batch(i):
        return pixels[i % len(pixels)][np.newaxis].astype(np.float32)

    infer = tf.function(lambda x: keras_model(x, training=False), jit_compile=False)
    keras_ways = {
        "Keras model.predict": lambda i: keras_model.predict(batch(i), verbose=0),
        "Keras direct call": lambda i: keras_model(batch(i), training=False),
        "Keras tf.function": lambda i: infer(tf.constant(batch(i))),
    }
    for name, call in keras_ways.items():
        samples = timed(call, max(30, repeats // 5))
        rows.append({"engine": name, "threads": "all", "size_mb": None, **percentiles(samples)})

    rows += batched(files["int8"], pixels, repeats)

    int8_1 = next(r for r in rows if r["engine"] == "TFLite int8" and r["threads"] == 1)
    predict = next(r for r in rows if r["engine"] == "Keras model.predict")
    return {"rows": rows, "keras_source": keras_source,
            "int8_1thread_p50_ms": int8_1["p50_ms"],
            "speedup_vs_keras_predict": round(predict["p50_ms"] / int8_1["p50_ms"], 1)}


BATCH_SIZES = (1, 2, 4, 8)


def batched(path: Path, pixels: np.ndarray, repeats: int) -> list[dict]:
    """Per-image ms of one invoke on `size` images, for each of `BATCH_SIZES`."""
    from ai_edge_litert.interpreter import Interpreter

    rows = []
    for size in BATCH_SIZES:
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        (inp,) = interpreter.get_input_details()
        interpreter.resize_tensor_input(inp["index"], [size, *inp["shape"][1:]])
        interpreter.allocate_tensors()
        inputs = pixels[:size].astype(inp["dtype"])

        def invoke(_, interpreter=interpreter, index=inp["index"], inputs=inputs):
            interpreter.set_tensor(index, inputs)
            interpreter.invoke()

        samples = [ms / size for ms in timed(invoke, max(30, repeats // size))]
        rows.append({"engine": f"TFLite int8, {size} per invoke (ms per image)", "threads": 1,
                     "size_mb": None, **percentiles(samples)})
    return rows


def markdown(result: dict) -> str:
    lines = ["| engine | threads | size | p50 ms | p90 ms | p99 ms |", "|---|---|---:|---:|---:|---:|"]
    for r in result["rows"]:
        size = f"{r['size_mb']} MB" if r["size_mb"] else ""
        lines.append(f"| {r['engine']} | {r['threads']} | {size} | {r['p50_ms']} | "
                     f"{r['p90_ms']} | {r['p99_ms']} |")
    lines.append(f"\nint8, 1 thread is **{result['speedup_vs_keras_predict']}x** faster than "
                 f"Keras `model.predict` (p50). Keras model: {result['keras_source']}.")
    return "\n".join(lines)


if __name__ == "__main__":
    from bench.common import report

    report("inference", run(), markdown)
