"""Shared fixtures: the Flask `app` / `client` / `runner`, and access to ../shared.

Tests that need ../shared data fail in CI when it is missing (CI always has it)
and skip elsewhere with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from classifier.settings import PROJECT_ROOT, shared_dir
from webapp import create_app

SHIPPED_MODELS = PROJECT_ROOT / "models"


def require_shared(*parts: str) -> Path:
    """Path to something under ../shared, or fail (CI) / skip (elsewhere) if absent."""
    path = shared_dir().joinpath(*parts)
    if not path.exists():
        message = (f"{path} is missing: ../shared (or $NOTHOTDOG_SHARED) must hold the "
                   "datasets and weights")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def app():
    """The app on the shipped models, as `gunicorn app:app` would build it."""
    app = create_app({"TESTING": True, "MODELS_DIR": SHIPPED_MODELS})
    yield app


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def runner(app):
    return app.test_cli_runner()
