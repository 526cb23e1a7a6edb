"""Deployment: serving never loads TensorFlow, gunicorn serves with our config,
and the Procfile / WSGI entries point at the app."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from classifier.settings import PROJECT_ROOT
from tests import images
from tests.servers import gunicorn


def test_serving_does_not_import_tensorflow():
    code = ("import sys, app, wsgi; "
            "heavy = [m for m in ('tensorflow', 'keras', 'sklearn', 'matplotlib') if m in sys.modules]; "
            "assert not heavy, heavy; assert wsgi.application is app.app")
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True, timeout=60)


def test_procfile_runs_gunicorn_on_the_app():
    assert (PROJECT_ROOT / "Procfile").read_text().strip() == "web: gunicorn app:app"


@pytest.mark.slow
def test_gunicorn_serves_with_our_config():
    with gunicorn(capture_output=True) as server:
        server.wait_ready(workers=2, timeout=30)
        answer = requests.post(server.base + "/api/v1/classify",
                               files={"image": ("a.jpg", images.jpeg(), "image/jpeg")}, timeout=10)
        assert answer.status_code == 200
        assert answer.json()["results"][0]["label"] in ("hotdog", "not_hotdog")
        assert answer.headers["X-Frame-Options"] == "DENY"
    output = server.process.stdout.read()
    assert "Using worker: gthread" in output  # our gunicorn.conf.py was used
