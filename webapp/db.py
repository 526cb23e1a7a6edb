"""The database: what people tell us about the answers they got.

SQLAlchemy models with Alembic migrations (Flask-Migrate, `migrations/`). A SQLite
file in the instance folder by default, so `make run` needs no database server;
PostgreSQL (or any SQLAlchemy URL) through DATABASE_URL.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, Boolean, DateTime, Integer, LargeBinary, String, func, make_url
from sqlalchemy.orm import Mapped, mapped_column

from classifier.settings import PROJECT_ROOT

MIGRATIONS = PROJECT_ROOT / "migrations"

db = SQLAlchemy()

STATUSES = ("new", "accepted", "rejected")


class Feedback(db.Model):
    """One person's judgement of one answer. Without their consent only the verdict,
    scores, correction, model version and a hash of the photo are kept; with it, the
    photo too, re-encoded so that no EXIF data (location!) survives."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    model_name: Mapped[str] = mapped_column(String(64), index=True)
    model_version: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(128), index=True)
    scores: Mapped[dict] = mapped_column(JSON)
    correct: Mapped[bool] = mapped_column(Boolean)
    correction: Mapped[str | None] = mapped_column(String(128), index=True)
    photo_sha256: Mapped[str] = mapped_column(String(64), index=True)
    has_photo: Mapped[bool] = mapped_column(Boolean, default=False)
    photo_jpeg: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    #: The random id of the token the feedback came with: unique, so the database itself
    #: refuses a token's second use, whichever worker or host receives it. NULL for
    #: feedback stored before tokens had ids.
    token_id: Mapped[str | None] = mapped_column(String(32), unique=True, index=True)

    @property
    def label(self) -> str:
        """What the photo shows, according to the person: the verdict or their correction."""
        return self.verdict if self.correct else self.correction

    def as_dict(self) -> dict:
        return {"id": self.id, "model": self.model_name, "model_version": self.model_version,
                "verdict": self.verdict, "correct": self.correct, "correction": self.correction,
                "photo_stored": self.has_photo, "status": self.status,
                "created_at": self.created_at.isoformat() if self.created_at else None}


class AdminSession(db.Model):
    """A logged-in admin, kept here rather than only in the signed cookie, so that
    logging out ends the session for every copy of the cookie, on every host. The
    cookie holds a random secret; this table only its hash."""

    __tablename__ = "admin_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: A fixed end: an admin session lasts at most PERMANENT_SESSION_LIFETIME from login.
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: HMAC of the admin password when the session began: a new password ends it.
    password_hmac: Mapped[str] = mapped_column(String(64))


def protect_sqlite_file(uri: str, instance: Path) -> None:
    """Make a SQLite database file readable by its owner only (it holds the photos people
    shared): created with mode 0600 before SQLAlchemy first opens it, or tightened if it
    exists. SQLite gives the -journal and -wal files beside it the database's own mode.
    A relative path is in the instance folder, as Flask-SQLAlchemy reads it."""
    url = make_url(uri)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = instance / url.database  # an absolute database path replaces the folder
    os.close(os.open(path, os.O_CREAT | os.O_RDONLY, 0o600))  # no truncation if it exists
    if stat.S_IMODE(path.stat().st_mode) != 0o600:
        path.chmod(0o600)


def enable_migrations(app: Flask) -> None:
    """Alembic, through Flask-Migrate: the `flask db` commands. Only the command line and
    `upgrade_database` need it; a serving worker that never imports Alembic starts about
    a quarter of a second sooner and 11 MB lighter."""
    from flask_migrate import Migrate

    Migrate(app, db, directory=str(MIGRATIONS))


def upgrade_database(app: Flask) -> None:
    """Create or migrate the schema to the newest revision, as `flask db upgrade` does."""
    from flask_migrate import upgrade

    enable_migrations(app)
    with app.app_context():
        upgrade()
