"""The database: what people tell us about the answers they got.

SQLAlchemy models with Alembic migrations (Flask-Migrate, `migrations/`). A SQLite
file in the instance folder by default, so `make run` needs no database server;
PostgreSQL (or any SQLAlchemy URL) through DATABASE_URL.
"""

from __future__ import annotations

import datetime as dt

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, Boolean, DateTime, Integer, LargeBinary, String, func
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

    @property
    def label(self) -> str:
        """What the photo shows, according to the person: the verdict or their correction."""
        return self.verdict if self.correct else self.correction

    def as_dict(self) -> dict:
        return {"id": self.id, "model": self.model_name, "model_version": self.model_version,
                "verdict": self.verdict, "correct": self.correct, "correction": self.correction,
                "photo_stored": self.has_photo, "status": self.status,
                "created_at": self.created_at.isoformat() if self.created_at else None}


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
