"""The baseline the tutorials build: Keras `model.predict` inside a Flask view.

Same network (the architecture of the shipped model), same API path and answer
shape, served by gunicorn the same way, so the HTTP benchmark compares like with
like. Lives here, never in the app.
"""

from __future__ import annotations

import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from flask import Flask, jsonify, request
from PIL import Image

from bench.inference import _keras_model

LABELS = ["hotdog", "not_hotdog"]
model, _ = _keras_model()
app = Flask(__name__)


@app.post("/api/v1/classify")
def classify():
    image = Image.open(io.BytesIO(request.files["image"].read())).convert("RGB")
    x = np.asarray(image.resize((224, 224)), np.float32)[np.newaxis]
    scores = model.predict(x, verbose=0)[0]
    return jsonify(results=[{"label": LABELS[int(scores.argmax())],
                             "scores": dict(zip(LABELS, map(float, scores), strict=True))}])


@app.get("/readyz")
def ready():
    return jsonify(status="ready")
