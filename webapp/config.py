"""Configuration read from the environment, with defaults that run out of the box."""

from __future__ import annotations

import os
from pathlib import Path

from classifier.intake import DEFAULT_MAX_PIXELS
from classifier.settings import PROJECT_ROOT


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


class Config:
    #: Folder of model directories (each with a model_card.json).
    MODELS_DIR = Path(os.environ.get("NOTHOTDOG_MODELS_DIR", PROJECT_ROOT / "models"))
    #: The model used when a request names none.
    DEFAULT_MODEL = os.environ.get("NOTHOTDOG_DEFAULT_MODEL", "hotdog")
    #: Largest request body, in bytes; bigger uploads get 413. 20 MB fits any phone photo.
    MAX_CONTENT_LENGTH = _int("NOTHOTDOG_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
    #: Photos above this many pixels (width x height) are refused before decoding.
    MAX_IMAGE_PIXELS = _int("NOTHOTDOG_MAX_PIXELS", DEFAULT_MAX_PIXELS)
    #: Most photos accepted in one request.
    MAX_FILES_PER_REQUEST = _int("NOTHOTDOG_MAX_FILES", 16)
    #: Interpreters per model: one per worker thread means no thread ever waits for one.
    INTERPRETERS_PER_MODEL = _int("NOTHOTDOG_INTERPRETERS", _int("GUNICORN_THREADS", 4))
    #: Threads inside one inference; 1 lets worker processes use the cores in parallel.
    INFERENCE_THREADS = _int("NOTHOTDOG_INFERENCE_THREADS", 1)
    # A form has one field per photo plus the model name; more parts is not our page.
    MAX_FORM_PARTS = 64
    # Bootstrap's CSS and JS come from this server, never a CDN.
    BOOTSTRAP_SERVE_LOCAL = True
