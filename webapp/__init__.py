"""Not Hotdog's web service: the upload page, the JSON API, feedback and its review."""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
from pathlib import Path

from flask import Flask
from flask_bootstrap import Bootstrap5
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from classifier import made_models
from classifier.litert import default_pool_size
from classifier.process_memory import return_large_blocks_when_freed
from classifier.registry import ModelRegistry
from classifier.settings import PROJECT_ROOT
from classifier.variants import VariantMemory
from webapp import (
    admin,
    api,
    cli,
    errors,
    feedback,
    made,
    make_page,
    metrics,
    openapi,
    pages,
    present,
    security,
)
from webapp.classify import EXTENSION
from webapp.config import Config
from webapp.db import db, enable_migrations, protect_sqlite_file
from webapp.uploads import InMemoryRequest


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory: configuration, the models (loaded once, warmed up), the
    database, routes."""
    app = Flask(__name__, template_folder=str(PROJECT_ROOT / "templates"),
                static_folder=str(PROJECT_ROOT / "static"),
                instance_path=str(PROJECT_ROOT / "instance"))
    app.config.from_object(Config)
    if test_config:
        app.config.update(test_config)
    # Non-file form fields may be as large as the whole upload limit allows.
    app.config["MAX_FORM_MEMORY_SIZE"] = app.config["MAX_CONTENT_LENGTH"]
    app.request_class = InMemoryRequest
    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO)
    if app.config["TRUSTED_PROXIES"]:
        # The client's address and scheme as the proxies saw them: limits count real
        # clients, and Secure cookies and CSRF checks see HTTPS.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"],
                                x_proto=app.config["TRUSTED_PROXIES"])
    instance = private_folder(Path(app.instance_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = (app.config["SQLALCHEMY_DATABASE_URI"]
                                             or f"sqlite:///{instance / 'nothotdog.sqlite'}")
    protect_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"], instance)
    app.config["SECRET_KEY"] = app.config["SECRET_KEY"] or instance_secret(instance)

    for leftover in made_models.clear_leftovers(Path(app.config["MODELS_DIR"])):
        app.logger.warning("removed %s, left by a worker that died making or removing a model",
                           leftover)
    registry = ModelRegistry.from_folder(
        app.config["MODELS_DIR"], app.config["DEFAULT_MODEL"],
        pool_size=(app.config["INTERPRETERS_PER_MODEL"]
                   or default_pool_size(app.config["WORKER_THREADS"])),
        num_threads=app.config["INFERENCE_THREADS"], variant=app.config["MODEL_VARIANT"],
        max_pixels=app.config["MAX_IMAGE_PIXELS"],
        memory=VariantMemory(instance / "variant-choices.json") if app.config["REMEMBER_VARIANTS"]
        else None)
    app.extensions[EXTENSION] = registry
    # A worker lives long: a large photo's pages go back to the system once it is answered.
    return_large_blocks_when_freed()

    db.init_app(app)
    if os.environ.get("FLASK_RUN_FROM_CLI") == "true":  # set by the `flask` command
        enable_migrations(app)
    csrf = CSRFProtect(app)
    feedback.limiter.init_app(app)
    Bootstrap5(app)
    present.register(app)
    for blueprint in (pages.bp, api.bp, api.health, openapi.bp, openapi.swagger_ui, feedback.api,
                      feedback.page, admin.bp, cli.bp, make_page.bp):
        app.register_blueprint(blueprint)
    # API clients send no CSRF token (they hold no session to forge); the anonymous
    # upload form and a visitor's training change nothing on the server. Feedback,
    # admin forms and keeping a model need one.
    made.register(app)
    for exempt in (api.bp, made.bp, feedback.api, pages.classify_form, make_page.train,
                   make_page.try_it):
        csrf.exempt(exempt)
    metrics.register(app, registry)
    errors.register(app)
    security.register(app)
    return app


def private_folder(folder: Path) -> Path:
    """The instance folder, readable by its owner only: it holds the secret key and,
    by default, the database of shared photos."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(folder.stat().st_mode) != 0o700:
        folder.chmod(0o700)
    return folder


def instance_secret(instance: Path) -> str:
    """A secret key made once and kept in the instance folder (readable by its owner
    only), so every worker and every restart signs with the same one."""
    path = instance / "secret_key"
    if not path.exists():
        # Written aside, then linked into place: another worker starting at the same
        # moment either wins the link (and we read its key) or finds nothing half-written.
        draft = instance / f".secret_key.{os.getpid()}"
        with draft.open("w", encoding="ascii") as file:
            file.write(secrets.token_hex(32))
            file.flush()
            os.fsync(file.fileno())  # never an empty key file after a power cut
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text(encoding="ascii", errors="replace").strip()
    if not re.fullmatch(r"[0-9a-f]{64}", key):
        # An empty or cut-off key would sign tokens and sessions anyone could forge.
        raise RuntimeError(f"{path} holds no secret key (64 hex digits): it is damaged. Remove "
                           "it and start again (tokens and admin sessions signed with the old "
                           "key end), or set NOTHOTDOG_SECRET_KEY.")
    return key
