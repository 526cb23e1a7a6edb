"""The loop: people's corrections -> export -> retraining -> a new version served, with
no request failing while the server switches to it."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest
import requests
import sqlalchemy
from PIL import Image

from classifier import card as model_card
from tests import images
from tests.conftest import SHIPPED_MODELS
from tests.servers import gunicorn
from tests.test_pipeline import CLASSES, IMAGE_SIZE, make_photos

pytestmark = pytest.mark.slow


def train(data_dir, out, work, *extra) -> None:
    from classifier.settings import default_base_weights
    from training import train as trainer

    assert trainer.main([str(data_dir), "--out", str(out), "--work-dir", str(work),
                         "--base-weights", str(default_base_weights()), "--image-size",
                         str(IMAGE_SIZE), "--fine-tune-epochs", "1", "--fine-tune-blocks", "1",
                         "--batch-size", "8", "--val-fraction", "0.25", "--calibration-images",
                         "16", "--seed", "3", *map(str, extra)]) == 0


def vertical_stripes(seed: int) -> bytes:
    """A texture the first model never saw: stripes running up and down."""
    rng = np.random.default_rng(seed)
    x = np.mgrid[0:120, 0:160][1].astype(np.float32)
    mask = np.sin(2 * np.pi * x / rng.uniform(8, 16)) > 0
    pixels = np.where(mask[..., None], rng.integers(155, 256, 3), rng.integers(0, 100, 3))
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_corrections_flow_into_the_next_version(tmp_path, colours_run):
    """The first version is tests/test_pipeline.py's model of three textures (trained
    once a session, on the same photos), copied: this test retrains it."""
    from webapp import create_app
    from webapp.db import Feedback, db, upgrade_database

    make_photos(tmp_path / "train", per_class=14, seed=1)
    models = tmp_path / "models"
    shutil.copytree(colours_run[1], models / "colours")
    first_version = model_card.load(models / "colours")["version"]
    settings = {"TESTING": True, "MODELS_DIR": models, "DEFAULT_MODEL": "colours",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite'}",
                "SECRET_KEY": "loop", "FEEDBACK_RATE_LIMIT": "1000 per minute"}
    app = create_app(settings)
    upgrade_database(app)  # the real migrations, as `flask db upgrade` runs them
    client = app.test_client()
    photos = [vertical_stripes(seed) for seed in range(8)]
    before = [client.post("/api/v1/classify", data=p, content_type="image/png").get_json()["results"][0]
              for p in photos]
    # People say these are all of one class the model does not answer for most of them.
    said = min(CLASSES, key=lambda c: sum(b["label"] == c for b in before))
    for photo, answer in zip(photos, before, strict=True):
        response = client.post("/api/v1/feedback", data={
            "token": answer["feedback_token"], "correct": str(answer["label"] == said).lower(),
            "correction": said, "consent": "true", "image": (io.BytesIO(photo), "p.png")})
        assert response.status_code == 201
    with app.app_context():
        for entry in db.session.scalars(sqlalchemy.select(Feedback)):
            entry.status = "accepted"  # what the admin page's Accept button does
        db.session.commit()
    exported = app.test_cli_runner().invoke(args=["feedback", "export", str(tmp_path / "corrections")])
    assert exported.exit_code == 0 and "8 photos written" in exported.output

    train(tmp_path / "train", models / "colours", tmp_path / "work2",
          "--corrections", tmp_path / "corrections" / "colours")
    card = model_card.load(models / "colours")
    assert card["training"]["settings"]["corrections_used"] == 8
    assert card["version"] != first_version
    served = create_app(settings).test_client()  # what a restarted worker loads
    after = [served.post("/api/v1/classify", data=p, content_type="image/png").get_json()
             for p in photos]
    assert {a["model"]["version"] for a in after} == {card["version"]}
    right_before = sum(b["label"] == said for b in before)
    right_after = sum(a["results"][0]["label"] == said for a in after)
    assert right_after >= 7 > right_before, (right_before, right_after)


def test_a_new_version_is_served_without_dropping_a_request(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(SHIPPED_MODELS / "hotdog", models / "hotdog")
    newer = tmp_path / "newer"
    shutil.copytree(SHIPPED_MODELS / "hotdog", newer)
    card = json.loads((newer / "model_card.json").read_text())
    card["version"] = "next"
    (newer / "model_card.json").write_text(json.dumps(card))
    photo = images.jpeg()
    seen, stop = [], threading.Event()
    with gunicorn(env={"NOTHOTDOG_MODELS_DIR": str(models), "WEB_CONCURRENCY": "2"}) as server:
        server.wait_ready(workers=2, timeout=60)

        def keep_asking():
            session = requests.Session()
            while not stop.is_set():
                try:
                    answer = session.post(server.base + "/api/v1/classify", data=photo,
                                          headers={"Content-Type": "image/jpeg"}, timeout=30)
                    seen.append((answer.status_code, answer.json()["model"]["version"]))
                except requests.RequestException as exc:
                    seen.append((type(exc).__name__, None))

        clients = [threading.Thread(target=keep_asking) for _ in range(4)]
        for client in clients:
            client.start()
        time.sleep(2)
        # Deploy: put the new version in place (one rename), then ask gunicorn for a
        # graceful reload: new workers load it, old ones finish what they hold.
        os.replace(models / "hotdog", tmp_path / "retired")
        os.replace(newer, models / "hotdog")
        os.kill(server.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (seen and seen[-1][1] == "next"
                                                   and all(v == "next" for _, v in seen[-20:])):
            time.sleep(0.2)
        stop.set()
        for client in clients:
            client.join()
    statuses = {status for status, _ in seen}
    versions = [version for _, version in seen]
    assert statuses == {200}, statuses
    assert versions[0] != "next" and versions[-1] == "next"
    assert len(seen) > 50
