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


@pytest.fixture(scope="session")
def colours_run(tmp_path_factory):
    """(root, model directory, work folder) of tests/test_pipeline.py's model of three
    textures, trained once for every test that needs a small trained model (their files
    run in one xdist worker: SAME_WORKER below)."""
    from tests.test_pipeline import train_colours

    return train_colours(tmp_path_factory.mktemp("pipeline"))


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def runner(app):
    return app.test_cli_runner()


# -- parallel workers (pytest-xdist: `-n 2` in pyproject.toml) ----------------------

#: Test files whose tests share a session fixture that is costly to make: all of them
#: run in one worker, which makes it once (the model of three textures, `colours_run`).
SAME_WORKER = {"tests/test_pipeline.py": "colours", "tests/test_feedback_loop.py": "colours"}


def pytest_xdist_make_scheduler(config, log):
    """xdist's loadgroup scheduling, each test on whichever worker is free, except that
    the files of SAME_WORKER go together. (An `xdist_group` mark would say the same, but
    xdist 3.8 marks node ids in a way pytest 9.2 ignores, so it groups nothing.)"""
    from xdist.scheduler import LoadGroupScheduling

    class Scheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return SAME_WORKER.get(nodeid.split("::", 1)[0]) or super()._split_scope(nodeid)

    return Scheduling(config, log)


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
