"""The second reference point: the forty-line LiteRT app a tutorial would write.

It already drops Keras for the float32 `.tflite` file, but keeps the tutorial's
habits: a full-size decode, Pillow's default resize, float32 pixels, one shared
interpreter behind a lock. Same network, API path and answer shape as ours,
served by gunicorn the same way. The issue's "for scale" figures describe an app
like this one; measuring it in the same run shows what the bars mean for the
photos this benchmark sends. Lives here, never in the app.
"""

from __future__ import annotations

import io
import os
import threading

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from flask import Flask, jsonify, request
from PIL import Image

#: Set by bench/http_load.py: the shipped network exported as float32 TFLite.
MODEL_PATH = os.environ["BENCH_FLOAT32_TFLITE"]
LABELS = ["hotdog", "not_hotdog"]

interpreter = Interpreter(model_path=MODEL_PATH)
interpreter.allocate_tensors()
input_index = interpreter.get_input_details()[0]["index"]
# Our exported networks also output their last feature map (for explanations): the
# scores are the 2-D output.
output_index = next(out["index"] for out in interpreter.get_output_details()
                    if len(out["shape"]) == 2)
lock = threading.Lock()  # one interpreter cannot run two requests at once
app = Flask(__name__)


@app.post("/api/v1/classify")
def classify():
    image = Image.open(io.BytesIO(request.files["image"].read())).convert("RGB")
    x = np.asarray(image.resize((224, 224)), np.float32)[np.newaxis]
    with lock:
        interpreter.set_tensor(input_index, x)
        interpreter.invoke()
        scores = interpreter.get_tensor(output_index)[0]
    return jsonify(results=[{"label": LABELS[int(scores.argmax())],
                             "scores": dict(zip(LABELS, map(float, scores), strict=True))}])


@app.get("/readyz")
def ready():
    return jsonify(status="ready")
