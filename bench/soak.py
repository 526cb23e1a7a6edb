"""Soak and fault test: gunicorn on loopback under steady load with some bad input,
one worker killed with SIGKILL half-way through.

    python -m bench.soak --seconds 60                   # the full run
    python -m bench.soak --seconds 10 --json out.json   # the short run the tests do

Passes (exit 0) when:
- no request ever gets a 5xx, and every request gets the status its input calls for
  (200 for photos, the documented 4xx for bad input);
- the master replaces the killed worker;
- the only failed requests are ones in flight on the killed worker when it died:
  each on a connection opened before the kill, and at most one per client (each
  client keeps one connection, with one request on it at a time, and opens a new
  one after a failure: every request on that new connection must succeed);
- the surviving worker's memory grows by at most 10 % from the end of the warm-up to
  the end. The worker is killed 30 % into the run and the warm-up lasts until half-way,
  so the baseline is taken after the survivor has carried the whole load on all its
  threads: growth from then on is what a leak would show.
It only talks to 127.0.0.1, stops by itself, and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from tests import images  # code-made test images, shared with the test suite
from tests.servers import gunicorn


@dataclass
class Outcome:
    client: int
    connected: float  # when the client's current connection (session) was opened
    started: float
    finished: float
    expected: int
    status: int | None  # None: the connection failed


def request_mix() -> list[tuple[str, bytes, int]]:
    """(name, body, expected status): 90 % photos, 10 % bad input."""
    good = [(f"photo{i}.jpg", images.jpeg(320 + 40 * i, 240 + 30 * i, seed=i), 200)
            for i in range(9)]
    good[4] = ("alpha.png", images.png(300, 200, mode="RGBA"), 200)
    bad = [("notes.jpg", b"plain text, not a photo", 415),
           ("cut.jpg", images.truncated(images.jpeg()), 422),
           ("bomb.png", images.png_bomb(), 422),
           ("empty.jpg", b"", 400)]
    mix = []
    for i in range(40):  # 36 good + 4 bad, interleaved
        mix.append(bad[i // 10] if i % 10 == 9 else good[i % len(good)])
    return mix


KILL_AT = 0.3  # fractions of the run
WARM_UP_UNTIL = 0.5


def wait_until_dead(process: psutil.Process, timeout: float = 10) -> float:
    """The moment a killed process is gone (a zombie has already closed its sockets)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.001)
    return time.monotonic()


def client(base: str, mix, stop: threading.Event, outcomes: list, number: int) -> None:
    session, connected = requests.Session(), time.monotonic()
    i = 7 * number  # each client starts at a different place in the mix
    while not stop.is_set():
        name, body, expected = mix[i % len(mix)]
        i += 1
        started = time.monotonic()
        try:
            response = session.post(base + "/api/v1/classify",
                                    files={"image": (name, body, "image/jpeg")}, timeout=30)
            status = response.status_code
        except requests.RequestException:
            status = None
        outcomes.append(Outcome(number, connected, started, time.monotonic(), expected, status))
        if status is None:  # the connection is dead: carry on with a new one
            session, connected = requests.Session(), time.monotonic()


def run(seconds: float, concurrency: int, workers: int, threads: int) -> dict:
    env = {"GUNICORN_THREADS": str(threads), "GUNICORN_MAX_REQUESTS": "0"}
    with gunicorn(workers=workers, env=env) as server:
        server.wait_ready(workers)
        base = server.base
        victim, survivor = server.workers()[0], server.workers()[-1]
        mix = request_mix()
        outcomes: list[Outcome] = []
        stop = threading.Event()
        clients = [threading.Thread(target=client, args=(base, mix, stop, outcomes, n))
                   for n in range(concurrency)]
        begun = time.monotonic()
        for thread in clients:
            thread.start()
        time.sleep(KILL_AT * seconds)
        killed_at = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)
        died_at = wait_until_dead(victim)
        replaced_at = server.wait_replaced(victim.pid, workers, timeout=10)
        respawned = None if replaced_at is None else replaced_at - killed_at
        # The survivor now carries every connection, so all its threads (and their
        # allocator arenas) are in use: from here on its memory should stay flat.
        time.sleep(max(0.0, begun + WARM_UP_UNTIL * seconds - time.monotonic()))
        rss_start = survivor.memory_info().rss
        time.sleep(max(0.0, begun + seconds - time.monotonic()))
        stop.set()
        for thread in clients:
            thread.join()
        rss_end = survivor.memory_info().rss

    failed = [o for o in outcomes if o.status is None or o.status >= 500]
    wrong = [o for o in outcomes if o.status is not None and o.status < 500
             and o.status != o.expected]
    # On the victim: sent on a connection opened before it died. (Its start time may
    # fall after the death: a busy client learns of a closed connection only when it
    # next uses it.)
    in_flight_at_kill = [o for o in failed if o.connected <= died_at]
    latencies = sorted(o.finished - o.started for o in outcomes if o.status == 200)
    summary = {
        "requests": len(outcomes),
        "requests_per_s": round(len(outcomes) / seconds, 1),
        "bad_input_requests": sum(o.expected != 200 for o in outcomes),
        "status_5xx": sum(o.status is not None and o.status >= 500 for o in outcomes),
        "connection_failures": sum(o.status is None for o in outcomes),
        "unexpected_status": len(wrong),
        "failed_after_worker_died": len(failed) - len(in_flight_at_kill),
        "worker_respawned_after_s": None if respawned is None else round(respawned, 2),
        "survivor_rss_mb": [round(rss_start / 2**20, 1), round(rss_end / 2**20, 1)],
        "survivor_rss_growth": round(rss_end / rss_start - 1, 4),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1) if latencies else None,
    }
    checks = {
        "no 5xx": summary["status_5xx"] == 0,
        "every status as documented": not wrong,
        "killed worker respawned": respawned is not None,
        "only in-flight requests of the killed worker failed":
            len(failed) == len(in_flight_at_kill)
            and len({o.client for o in failed}) == len(failed),
        "survivor RSS growth <= 10 %": summary["survivor_rss_growth"] <= 0.10,
    }
    summary["checks"] = checks
    summary["passed"] = all(checks.values())
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    summary = run(args.seconds, args.concurrency, args.workers, args.threads)
    for key, value in summary.items():
        if key != "checks":
            print(f"{key:>28}: {value}")
    for name, ok in summary["checks"].items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
