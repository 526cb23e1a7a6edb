"""Real gunicorn servers on loopback, for tests and the bench/ scripts."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from classifier.settings import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    base: str
    started: float  # time.monotonic() just before the process was started

    def workers(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children()

    def wait_ready(self, workers: int | None = None, timeout: float = 60) -> None:
        """Until /readyz answers 200 (and, if given, that many workers are up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                if (requests.get(self.base + "/readyz", timeout=2).status_code == 200
                        and (workers is None or len(self.workers()) == workers)):
                    return
            except (requests.ConnectionError, requests.Timeout):  # not listening, or still loading
                pass
            time.sleep(0.02)
        raise RuntimeError(f"gunicorn not ready after {timeout} s")

    def wait_replaced(self, pid: int, workers: int, timeout: float = 10) -> float | None:
        """Until the master runs `workers` workers again, none of them `pid`: the
        time.monotonic() when it did, or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = [worker.pid for worker in self.workers()]
            if pid not in pids and len(pids) == workers:
                return time.monotonic()
            time.sleep(0.05)
        return None


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory so far (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    return int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 1024


@contextmanager
def gunicorn(target: str = "app:app", *, workers: int = 2, env: dict | None = None,
             capture_output: bool = False, log: Path | None = None) -> Iterator[Server]:
    """Start `gunicorn TARGET` with our gunicorn.conf.py on a free loopback port;
    stopped (SIGTERM, then SIGKILL) on leaving the block. Its output is discarded,
    readable from `process.stdout` (capture_output) or written to the file `log`."""
    port = free_port()
    environment = {**os.environ, "WEB_CONCURRENCY": str(workers), "TF_CPP_MIN_LOG_LEVEL": "2",
                   **(env or {})}
    log_file = open(log, "w") if log else None  # noqa: SIM115 - closed when the server stops
    output = subprocess.PIPE if capture_output else log_file or subprocess.DEVNULL
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", target, "-c", str(PROJECT_ROOT / "gunicorn.conf.py"),
         "--bind", f"127.0.0.1:{port}"], cwd=PROJECT_ROOT, env=environment,
        stdout=output, stderr=subprocess.STDOUT if capture_output or log_file else subprocess.DEVNULL,
        text=True)
    try:
        yield Server(process, f"http://127.0.0.1:{port}", started)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log_file:
            log_file.close()
