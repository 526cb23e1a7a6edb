"""The soak and fault script's short run: load with bad input, one worker SIGKILLed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from classifier.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


def test_short_soak_with_a_killed_worker(tmp_path):
    summary_file = tmp_path / "soak.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--seconds", "10", "--concurrency", "6",
         "--json", str(summary_file)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180)
    assert summary_file.exists(), completed.stdout + completed.stderr
    summary = json.loads(summary_file.read_text())
    assert summary["checks"] == {name: True for name in summary["checks"]}, completed.stdout
    assert summary["requests"] > 100 and summary["bad_input_requests"] > 0
    assert summary["status_5xx"] == 0
    assert completed.returncode == 0
