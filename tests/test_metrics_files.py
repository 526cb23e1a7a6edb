"""A dead worker's metrics files are folded into archive files (`webapp.metrics`): the
sums /metrics shows stay the same, and the folder stops growing with every worker."""

from __future__ import annotations

import os
import subprocess
import sys

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.parser import text_string_to_metric_families

from classifier.settings import PROJECT_ROOT
from webapp.metrics import fold_dead_workers

#: A worker's life in brief: predictions, feedback and request times, in its own process.
WORKER = """
import os
from webapp import metrics
print(os.getpid())
for n in range({n}):
    metrics.predicted("hotdog", "hotdog" if n % 3 else "not_hotdog")
    metrics.REQUEST_SECONDS.labels("/api/v1/classify", "POST", "200").observe(0.003 * n)
metrics.feedback_received("pizza", True)
"""


PREDICTIONS, REQUESTS = "nothotdog_predictions_total", "nothotdog_request_seconds_count"


def worker(folder, n: int) -> int:
    """Run a worker process to its end; its process id."""
    process = subprocess.run([sys.executable, "-c", WORKER.format(n=n)], cwd=PROJECT_ROOT,
                             env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)},
                             check=True, timeout=60, capture_output=True, text=True)
    return int(process.stdout)


def scraped(folder) -> dict[tuple, float]:
    """What /metrics would show, sample by sample (the order of lines is the files')."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(folder))
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for sample in family.samples}


def test_folding_keeps_every_sum_and_drops_the_dead_workers_files(tmp_path):
    first, second = worker(tmp_path, 7), worker(tmp_path, 12)
    before = scraped(tmp_path)
    assert before[PREDICTIONS, (("label", "hotdog"), ("model", "hotdog"))] == 12  # 4 + 8
    assert before[REQUESTS, (("method", "POST"), ("route", "/api/v1/classify"), ("status", "200"))] == 19

    assert fold_dead_workers(str(tmp_path)) == sorted([first, second])
    assert scraped(tmp_path) == before
    assert sorted(name for name in os.listdir(tmp_path) if name.endswith(".db")) == [
        "counter_archive.db", "histogram_archive.db"]

    third = worker(tmp_path, 5)  # a replacement, which dies too: added to the archive
    with_third = scraped(tmp_path)
    assert fold_dead_workers(str(tmp_path)) == [third]
    assert scraped(tmp_path) == with_third != before
    assert with_third["nothotdog_feedback_total", (("correct", "true"), ("model", "pizza"))] == 3


def test_a_live_workers_files_are_left_alone(tmp_path):
    (tmp_path / f"counter_{os.getpid()}.db").write_bytes(b"")  # this process: alive
    assert fold_dead_workers(str(tmp_path)) == []
    assert (tmp_path / f"counter_{os.getpid()}.db").exists()
