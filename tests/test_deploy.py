"""Deployment: serving never loads TensorFlow, gunicorn serves with our config,
and the Procfile / WSGI entries point at the app."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys

import psutil
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
    """gunicorn serves; the release phase migrates the feedback database first."""
    processes = dict(line.split(": ", 1) for line in
                     (PROJECT_ROOT / "Procfile").read_text().strip().splitlines())
    assert processes == {"web": "gunicorn app:app", "release": "flask --app app db upgrade"}


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
    assert "Using worker: FairThreadWorker" in output  # our gunicorn.conf.py was used


@pytest.mark.slow
def test_a_worker_is_replaced_when_its_memory_grows_not_after_a_count_of_requests(tmp_path):
    """Every worker holds more than 50 MB, so each one serves a request and is replaced;
    under the default limit 30 requests leave the same workers. A replaced worker's
    counts stay in /metrics, its metrics files go; a metrics folder the server made
    goes when it stops."""
    photo = images.jpeg()

    def classify(server):
        answer = requests.post(server.base + "/api/v1/classify",
                               files={"image": ("a.jpg", photo, "image/jpeg")}, timeout=30)
        assert answer.status_code == 200

    metrics = tmp_path / "metrics"
    with gunicorn(workers=1, env={"NOTHOTDOG_MAX_WORKER_RSS_MB": "50",
                                  "PROMETHEUS_MULTIPROC_DIR": str(metrics)}, capture_output=True) as server:
        server.wait_ready(workers=1, timeout=30)
        first = server.workers()[0].pid
        classify(server)
        assert server.wait_replaced(first, workers=1, timeout=30) is not None
        server.wait_ready(workers=1, timeout=30)
        classify(server)  # the replacement answers
        assert server.wait_replaced(server.workers()[0].pid, workers=1, timeout=30) is not None
        server.wait_ready(workers=1, timeout=30)
        shown = requests.get(server.base + "/metrics", timeout=10).text
        assert re.search(r'nothotdog_predictions_total\{label="[a-z_]+",model="hotdog"\} 2\.0', shown)
        assert not list(metrics.glob(f"*_{first}.db")) and (metrics / "counter_archive.db").is_file()
    assert "NOTHOTDOG_MAX_WORKER_RSS_MB): replacing it" in server.process.stdout.read()

    with gunicorn(workers=1, env={"TMPDIR": str(tmp_path)}) as server:
        server.wait_ready(workers=1, timeout=30)
        assert len(list(tmp_path.glob("nothotdog-metrics-*"))) == 1
        before = [worker.pid for worker in server.workers()]
        for _ in range(30):
            classify(server)
        assert [worker.pid for worker in server.workers()] == before
    assert not list(tmp_path.glob("nothotdog-metrics-*"))


def _cores_of(server) -> list[set[int]]:
    return [set(os.sched_getaffinity(worker.pid)) for worker in server.workers()]


needs_two_cores = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="pinning workers to cores needs Linux and at least 2 usable cores")


@pytest.mark.slow
@needs_two_cores
def test_pinned_workers_get_a_core_each_and_a_replacement_takes_the_freed_one():
    usable = set(os.sched_getaffinity(0))
    with gunicorn(env={"GUNICORN_PIN_WORKERS": "1"}) as server:
        server.wait_ready(workers=2, timeout=30)
        first, second = _cores_of(server)
        assert len(first) == len(second) == 1 and first != second and first | second <= usable

        # Kill the worker on the higher core: a replacement must not just take the first.
        victim = max(server.workers(), key=lambda w: min(os.sched_getaffinity(w.pid)))
        victim.send_signal(signal.SIGKILL)
        assert server.wait_replaced(victim.pid, workers=2, timeout=30) is not None, "no replacement"
        server.wait_ready(workers=2, timeout=30)
        # The replacement took the killed worker's core: still one worker per core.
        assert sorted(map(sorted, _cores_of(server))) == sorted(map(sorted, [first, second]))


@pytest.mark.slow
@needs_two_cores
def test_unpinned_workers_may_run_on_every_core():
    with gunicorn(env={"GUNICORN_PIN_WORKERS": "0"}) as server:
        server.wait_ready(workers=2, timeout=30)
        assert _cores_of(server) == [set(os.sched_getaffinity(0))] * 2


@pytest.mark.slow
def test_a_worker_keeps_alive_only_its_share_of_connections():
    """Eight keep-alive clients on two workers of two threads: after every answer,
    neither worker holds more than half its threads; clients it closed reconnect (stock
    gthread keeps whatever it accepted, often all eight on one worker)."""
    clients = [http.client.HTTPConnection("127.0.0.1", timeout=10) for _ in range(8)]
    with gunicorn(workers=2, env={"GUNICORN_THREADS": "2", "GUNICORN_PIN_WORKERS": "0"}) as server:
        server.wait_ready(workers=2, timeout=30)
        port = int(server.base.rsplit(":", 1)[1])
        for client in clients:
            client.port = port
        for _ in range(5):
            for client in clients:
                client.request("GET", "/readyz")
                response = client.getresponse()
                response.read()
                assert response.status == 200
        held = {worker.pid: sum(1 for c in worker.net_connections("tcp")
                                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port)
                for worker in server.workers()}
    for client in clients:
        client.close()
    assert len(held) == 2 and max(held.values()) <= 1, held
