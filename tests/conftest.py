"""Shared fixtures: the Flask `app` / `client` / `runner`, and access to ../shared.

Tests that need ../shared data fail in CI when it is missing (CI always has it)
and skip elsewhere with the reason.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest
from pytest_postgresql import factories

from classifier.settings import PROJECT_ROOT, shared_dir
from webapp import create_app
from webapp.db import upgrade_database

SHIPPED_MODELS = PROJECT_ROOT / "models"


def ci_or_skip(message: str) -> NoReturn:
    """Something a test needs is missing: in CI, which installs everything, that is a
    failure; on a developer's machine the test skips and says why."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_shared(*parts: str) -> Path:
    """Path to something under ../shared, or fail (CI) / skip (elsewhere) if absent."""
    path = shared_dir().joinpath(*parts)
    if not path.exists():
        ci_or_skip(f"{path} is missing: ../shared (or $NOTHOTDOG_SHARED) must hold the "
                   "datasets and weights")
    return path


def close_database(app) -> None:
    """Give back an app's database connections when a test is done with it (a
    PostgreSQL schema cannot be dropped while they are open)."""
    from webapp.db import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    """The app on the shipped models, as `gunicorn app:app` would build it, with its
    database (SQLite, migrated as `flask db upgrade` does) in a temporary folder."""
    database = tmp_path_factory.mktemp("db") / "nothotdog.sqlite"
    app = create_app({"TESTING": True, "MODELS_DIR": SHIPPED_MODELS,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"})
    upgrade_database(app)  # the real migrations, as `flask db upgrade` runs them
    yield app


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def runner(app):
    return app.test_cli_runner()


# -- databases for the feedback suite: SQLite, and a real PostgreSQL server ----------

postgresql_proc = factories.postgresql_proc(executable=str(PROJECT_ROOT / "tests" / "pg_ctl_as_postgres"))


@pytest.fixture(scope="session")
def postgresql_url(request):
    """A PostgreSQL server started for this test session (Debian's postgresql, see
    tests/pg_ctl_as_postgres). In CI a server that cannot start fails the tests."""
    if not shutil.which("runuser") or not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        ci_or_skip("PostgreSQL is not installed (make test installs it as root)")
    server = request.getfixturevalue("postgresql_proc")
    # The maintenance database: each test empties its schema (see database_url).
    return f"postgresql+psycopg://{server.user}@{server.host}:{server.port}/postgres"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Each database the feedback suite runs against, empty for every test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'feedback.sqlite'}"
    url = request.getfixturevalue("postgresql_url")
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:  # a fresh schema, as `flask db upgrade` finds it
        connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    engine.dispose()
    return url
