"""Not Hotdog's web service: the upload page and the JSON API, in one Flask app."""

from __future__ import annotations

import logging

from flask import Flask
from flask_bootstrap import Bootstrap5

from classifier.engine import ModelRegistry
from classifier.settings import PROJECT_ROOT
from webapp import api, errors, openapi, pages, security
from webapp.classify import EXTENSION
from webapp.config import Config
from webapp.uploads import InMemoryRequest


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory: configuration, the models (loaded once, warmed up), routes."""
    app = Flask(__name__, template_folder=str(PROJECT_ROOT / "templates"),
                static_folder=str(PROJECT_ROOT / "static"))
    app.config.from_object(Config)
    if test_config:
        app.config.update(test_config)
    # Non-file form fields may be as large as the whole upload limit allows.
    app.config["MAX_FORM_MEMORY_SIZE"] = app.config["MAX_CONTENT_LENGTH"]
    app.request_class = InMemoryRequest
    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO)

    app.extensions[EXTENSION] = ModelRegistry.from_folder(
        app.config["MODELS_DIR"], app.config["DEFAULT_MODEL"],
        pool_size=app.config["INTERPRETERS_PER_MODEL"],
        num_threads=app.config["INFERENCE_THREADS"],
        max_pixels=app.config["MAX_IMAGE_PIXELS"])

    Bootstrap5(app)
    app.jinja_env.filters["verdict"] = verdict
    app.jinja_env.filters["percent"] = lambda score: round(100 * score)
    for blueprint in (pages.bp, api.bp, api.health, openapi.bp):
        app.register_blueprint(blueprint)
    errors.register(app)
    security.register(app)
    return app


def verdict(label: str) -> str:
    """'hotdog' -> 'Hotdog!', 'not_hotdog' -> 'Not hotdog!'."""
    return label.replace("_", " ").capitalize() + "!"
