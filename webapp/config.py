"""Configuration read from the environment, with defaults that run out of the box."""

from __future__ import annotations

import os
from pathlib import Path

from classifier.decode_cost import DEFAULT_DECODE_WORK
from classifier.intake import DEFAULT_MAX_PIXELS
from classifier.settings import MAX_UPLOAD_BYTES, PROJECT_ROOT


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def _database_url(url: str | None) -> str | None:
    """Hosts hand out postgres:// URLs; SQLAlchemy wants a driver named (psycopg 3)."""
    if url and url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url or None


class Config:
    #: Folder of model directories (each with a model_card.json).
    MODELS_DIR = Path(os.environ.get("NOTHOTDOG_MODELS_DIR", PROJECT_ROOT / "models"))
    #: The model used when a request names none.
    DEFAULT_MODEL = os.environ.get("NOTHOTDOG_DEFAULT_MODEL", "hotdog")
    #: Largest request body, in bytes; bigger uploads get 413. 20 MB fits any phone photo.
    MAX_CONTENT_LENGTH = MAX_UPLOAD_BYTES
    #: Photos above this many pixels (width x height) are refused before decoding.
    MAX_IMAGE_PIXELS = _int("NOTHOTDOG_MAX_PIXELS", DEFAULT_MAX_PIXELS)
    #: Decoding work one request may spend, in megapixels of PNG (classifier.decode_cost:
    #: a 12 MP phone JPEG costs 1.2, a 40 MP PNG 40); beyond it: 422.
    MAX_DECODE_WORK = _int("NOTHOTDOG_MAX_DECODE_WORK", DEFAULT_DECODE_WORK)
    #: Most photos accepted in one request.
    MAX_FILES_PER_REQUEST = _int("NOTHOTDOG_MAX_FILES", 16)
    #: Interpreters per model; 0 means one per core this process may use (at most one
    #: per worker thread): more cannot run at once, and each holds its own weights.
    INTERPRETERS_PER_MODEL = _int("NOTHOTDOG_INTERPRETERS", 0)
    #: gunicorn's threads per worker (gunicorn.conf.py reads the same variable).
    WORKER_THREADS = _int("GUNICORN_THREADS", 4)
    #: Which file of each model to serve: "auto" times the variants at start-up and
    #: serves the faster; "int8" or "float16" forces one.
    MODEL_VARIANT = os.environ.get("NOTHOTDOG_MODEL_VARIANT", "auto")
    #: With "auto", keep the timings in the instance folder (variant-choices.json) and
    #: serve what the first start on this CPU measured instead of timing at every start
    #: (faster start-ups, the same variant after a restart); "0" times at every start.
    REMEMBER_VARIANTS = os.environ.get("NOTHOTDOG_REMEMBER_VARIANTS", "1") != "0"
    #: Threads inside one inference; 1 lets worker processes use the cores in parallel.
    INFERENCE_THREADS = _int("NOTHOTDOG_INFERENCE_THREADS", 1)
    # A form has one field per photo plus the model name; more parts is not our page.
    MAX_FORM_PARTS = 64
    # Bootstrap's CSS and JS come from this server, never a CDN.
    BOOTSTRAP_SERVE_LOCAL = True

    # -- models made on the server (webapp.made) --------------------------------
    #: The model whose network the made models are heads on (its feature map, pooled).
    MADE_MODELS_BASE = os.environ.get("NOTHOTDOG_MADE_MODELS_BASE", "imagenet")
    #: Models whose networks' pooled features the made models' heads also read, comma-
    #: separated (those served, running their own network at the base's input size; none:
    #: ""): the hot dog network adds 2-6 points (bench/results/made_model.md).
    MADE_MODELS_EXTRA_FEATURES = tuple(name.strip() for name in os.environ.get(
        "NOTHOTDOG_MADE_MODELS_EXTRA_FEATURES", "hotdog").split(",") if name.strip())
    #: Decoding work the photos of one model to make may spend (classifier.decode_cost):
    #: 200 phone JPEGs of 12 MP (240), or 30 PNGs of 10 MP.
    MADE_MODEL_DECODE_WORK = _int("NOTHOTDOG_MADE_MODEL_DECODE_WORK", 300)
    #: Models a visitor may train on the Make a model page (Flask-Limiter syntax).
    MADE_MODEL_RATE_LIMIT = os.environ.get("NOTHOTDOG_MADE_MODEL_LIMIT", "4 per minute;60 per day")
    #: A host trains one model at a time; a request waits this long for its turn (120
    #: small photos took 3.6 s on a 2-core AMD EPYC), then gets a 503 to retry.
    MADE_MODEL_WAIT_SECONDS = 8.0
    #: How long a visitor's model (a signed token their browser keeps) can be tried and kept.
    MADE_HEAD_TOKEN_HOURS = _int("NOTHOTDOG_MADE_HEAD_TOKEN_HOURS", 24)

    # -- feedback, its database and the admin pages -----------------------------
    #: Any SQLAlchemy URL (postgresql+psycopg://...); None: a SQLite file in the
    #: instance folder (set in create_app, which knows where that is).
    SQLALCHEMY_DATABASE_URI = _database_url(os.environ.get("DATABASE_URL"))
    #: Signs sessions and prediction tokens. None: one made once and kept in the
    #: instance folder, so every worker and restart shares it.
    SECRET_KEY = os.environ.get("NOTHOTDOG_SECRET_KEY") or None
    #: The admin pages' password; unset, nobody can log in.
    ADMIN_PASSWORD = os.environ.get("NOTHOTDOG_ADMIN_PASSWORD", "")
    #: Session cookies only over HTTPS (browsers make an exception for localhost).
    SESSION_COOKIE_SECURE = os.environ.get("NOTHOTDOG_SECURE_COOKIES", "1") != "0"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    #: An admin session ends this long after login at the latest (webapp.admin).
    PERMANENT_SESSION_LIFETIME = 8 * 3600
    #: After a wrong admin password, the client's address waits this many seconds before
    #: its next try, doubled at each further failure up to the maximum (webapp.admin).
    ADMIN_LOGIN_BACKOFF_SECONDS = 1
    ADMIN_LOGIN_BACKOFF_MAX_SECONDS = 60
    #: Seconds a worker reuses its /readyz answer (each check runs every model).
    READY_CHECK_SECONDS = float(os.environ.get("NOTHOTDOG_READY_CHECK_SECONDS", "1"))
    #: Reverse proxies in front of the app (0: none). Each adds an X-Forwarded-For entry;
    #: trusting exactly that many makes rate limits count real clients, not the proxy.
    TRUSTED_PROXIES = _int("NOTHOTDOG_TRUSTED_PROXIES", 0)
    #: Feedback a client may send (Flask-Limiter syntax), and where counts are kept:
    #: memory per worker by default, shared by all with redis://...
    FEEDBACK_RATE_LIMIT = os.environ.get("NOTHOTDOG_FEEDBACK_LIMIT", "10 per minute;100 per day")
    RATELIMIT_STORAGE_URI = os.environ.get("NOTHOTDOG_RATELIMIT_STORAGE", "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    #: If that storage (Redis) stops answering, count in each worker's memory meanwhile
    #: rather than failing every feedback request.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    #: How long an answer's feedback token is taken (each only once).
    FEEDBACK_TOKEN_HOURS = _int("NOTHOTDOG_FEEDBACK_TOKEN_HOURS", 24)
    #: Longest side of a photo kept with consent (re-encoded: no EXIF survives).
    FEEDBACK_PHOTO_SIZE = 1024
    #: Shared photos awaiting review the database holds at most (each at most about
    #: 1 MB, usually 100-300 KB): past it, feedback is kept without its photo until
    #: moderators review some or `flask feedback prune` deletes old ones. Clients are
    #: rate-limited, but many clients together must not fill the disk.
    FEEDBACK_PHOTOS_AWAITING_REVIEW = _int("NOTHOTDOG_FEEDBACK_PHOTO_LIMIT", 5000)
