"""End-to-end HTTP benchmark: gunicorn on loopback under wrk, our app against the
naive Keras-in-Flask baseline (bench/naive_app.py) and a tutorial-style LiteRT
app (bench/tutorial_litert_app.py), all served the same way.

Measures, for each server:
- cold start: process start -> first successful classification;
- RSS of each worker after 100 requests;
- latency at concurrency 1 for a 512-px JPEG and a 12-megapixel JPEG;
- requests/s, p50 / p99 and errors at concurrency 1, 4 and 16 for a fixed mix;
- our app's compute ceiling: the CPU time one mix request costs inside the WSGI
  app (no server, no socket, no load generator), and the requests/s the machine's
  cores could serve at that cost. It says how much of the gap to a throughput
  target the server could still close, and how much no server can;
- the physical ceiling: the same for the mix's floor, each photo's decode plus the hot
  dog network's inference in-process (bench/body.py's floor), nothing else, and the
  share of it each server reached at concurrency 16.
wrk (Debian's package) generates the load with bench/wrk_multipart.lua.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests
from werkzeug.test import EnvironBuilder

from bench.common import ROOT
from bench.inference import tflite_files
from tests import images
from tests.servers import Server, gunicorn

BOUNDARY = "notHotdogBench7f3a"
WRK_SCRIPT = ROOT / "bench" / "wrk_multipart.lua"
#: The naive baseline comes last. "bare WSGI, our model" is no app anyone would ship: the
#: hot dog model's `predict_bytes` behind a bare WSGI callable (bench/echo_app.py), the
#: most any app served this way can do with that model.
SERVERS = {"ours": "app:app", "bare WSGI, our model": "bench.echo_app:bare_model",
           "tutorial LiteRT float32": "bench.tutorial_litert_app:app",
           "naive Keras-in-Flask": "bench.naive_app:app"}


def multipart(name: str, data: bytes) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; "
            f"filename=\"{name}\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() + data + \
        f"\r\n--{BOUNDARY}--\r\n".encode()


def bodies(folder: Path) -> dict[str, list[Path]]:
    """Request bodies on disk for wrk: single kinds, and the fixed mix."""
    photos = {"512px": [("p512.jpg", images.jpeg(512, 384, seed=1))],
              "12mp": [("p12mp.jpg", images.jpeg(4000, 3000, seed=2))],
              "mix": [(f"m{i}.jpg", images.jpeg(w, h, seed=10 + i)) for i, (w, h) in
                      enumerate([(512, 384), (640, 480), (320, 240), (1024, 768), (800, 600)])]
              + [("alpha.png", images.png(400, 300, mode="RGBA"))]}
    files: dict[str, list[Path]] = {}
    for kind, items in photos.items():
        files[kind] = []
        for name, data in items:
            path = folder / f"{kind}-{name}.body"
            path.write_bytes(multipart(name, data))
            files[kind].append(path)
    return files


def first_answer(server: Server, body: bytes) -> float:
    """Seconds from process start to the first 200 from /api/v1/classify."""
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    while time.monotonic() - server.started < 120:
        if server.process.poll() is not None:
            raise RuntimeError("server exited during start-up")
        try:
            if requests.post(server.base + "/api/v1/classify", data=body, headers=headers,
                             timeout=30).status_code == 200:
                return time.monotonic() - server.started
        except requests.ConnectionError:
            time.sleep(0.005)
    raise RuntimeError("no answer within 120 s")


def wrk(base: str, files: list[Path], connections: int, seconds: int) -> dict:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
               "-s", str(WRK_SCRIPT), base, "--", *map(str, files)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> dict:
    def ms(value: str, unit: str) -> float:
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    latency = {f"p{q}_ms": round(ms(v, u), 2) for q, v, u in
               re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)}
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "requests": int(re.search(r"(\d+) requests in", output).group(1)),
            **latency, "errors": errors + (int(non_2xx.group(1)) if non_2xx else 0)}


def measure_server(name: str, target: str, files: dict[str, list[Path]], seconds: int,
                   workers: int, env: dict[str, str]) -> dict:
    # No recycling: neither after a count of requests nor by memory (the naive Keras app
    # holds more than gunicorn.conf.py's limit for ours, and would be replaced after
    # every request).
    recycling = {"GUNICORN_MAX_REQUESTS": "0", "NOTHOTDOG_MAX_WORKER_RSS_MB": "inf"}
    with gunicorn(target, workers=workers, env={**recycling, **env}) as server:
        cold = first_answer(server, files["512px"][0].read_bytes())
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        for i in range(100):
            body = files["mix"][i % len(files["mix"])].read_bytes()
            requests.post(server.base + "/api/v1/classify", data=body, headers=headers, timeout=30)
        rss = [round(w.memory_info().rss / 2**20, 1) for w in server.workers()]
        result = {"server": name, "cold_start_s": round(cold, 3), "rss_mb_per_worker": rss,
                  "single": {}, "load": {}}
        for kind in ("512px", "12mp"):
            result["single"][kind] = wrk(server.base, files[kind], 1, seconds)
        for connections in (1, 4, 16):
            result["load"][str(connections)] = wrk(server.base, files["mix"], connections, seconds)
        return result


def app_cpu_ms(files: list[Path], rounds: int = 100) -> float:
    """CPU ms one request of the mix costs inside our WSGI app, averaged over `rounds`
    passes. Environs are built before the clock starts, so only the app is timed."""
    from app import create_app

    app = create_app()
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    payloads = [path.read_bytes() for path in files]

    def environs(passes: int) -> list[dict]:
        return [EnvironBuilder(path="/api/v1/classify", method="POST", data=body,
                               content_type=content_type).get_environ()
                for _ in range(passes) for body in payloads]

    def call(environ: dict) -> None:
        status = []
        b"".join(app(environ, lambda code, headers, exc_info=None: status.append(code)))
        if not status[0].startswith("200"):
            raise RuntimeError(f"in-process request failed: {status[0]}")

    for environ in environs(3):  # warm-up
        call(environ)
    batch = environs(rounds)
    start = time.process_time()
    for environ in batch:
        call(environ)
    return (time.process_time() - start) * 1000 / len(batch)


def floor_ms(files: list[Path]) -> float:
    """Mean floor of a mix request: each photo's decode + inference, in-process."""
    from app import create_app
    from bench.body import in_process
    from webapp.classify import registry

    app = create_app()
    with app.app_context():
        model = registry().models["hotdog"]
    floors = [in_process(multipart_photo(path.read_bytes()), model)["floor_ms"] for path in files]
    return sum(floors) / len(floors)


def multipart_photo(body: bytes) -> bytes:
    """The photo inside one of `bodies`' request bodies."""
    start = body.index(b"\r\n\r\n") + 4
    return body[start:body.rindex(f"\r\n--{BOUNDARY}--".encode())]


def run(seconds: int = int(os.environ.get("BENCH_SECONDS", "10")), workers: int = 2) -> dict:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk (bench/run.sh does it)")
    env = {"BENCH_FLOAT32_TFLITE": str(tflite_files()["float32"])}
    with tempfile.TemporaryDirectory() as folder:
        files = bodies(Path(folder))
        servers = [measure_server(name, target, files, seconds, workers, env)
                   for name, target in SERVERS.items()]
        cpu_ms = app_cpu_ms(files["mix"])
        mix_floor_ms = floor_ms(files["mix"])
    naive_rps = servers[-1]["load"]["16"]["requests_per_s"]
    for server in servers:
        server["throughput_ratio_c16"] = round(server["load"]["16"]["requests_per_s"] /
                                               naive_rps, 1)
    cores = len(os.sched_getaffinity(0))
    ceiling = {"app_cpu_ms_per_request": round(cpu_ms, 2), "cores": cores,
               "requests_per_s": round(cores * 1000 / cpu_ms, 1)}
    ceiling["reached_at_c16"] = round(servers[0]["load"]["16"]["requests_per_s"] /
                                      ceiling["requests_per_s"], 2)
    physical = {"floor_ms_per_request": round(mix_floor_ms, 2),
                "requests_per_s": round(cores * 1000 / mix_floor_ms, 1)}
    for server in servers:
        server["physical_share_c16"] = round(server["load"]["16"]["requests_per_s"] /
                                             physical["requests_per_s"], 2)
    return {"workers": workers, "seconds_per_run": seconds, "servers": servers,
            "compute_ceiling": ceiling, "physical_ceiling": physical}


def markdown(result: dict) -> str:
    lines = [f"gunicorn, {result['workers']} gthread workers, wrk for "
             f"{result['seconds_per_run']} s per row, loopback.", "",
             "| server | cold start | RSS/worker after 100 req | 512-px p50 | 12 MP p50 |",
             "|---|---:|---:|---:|---:|"]
    for s in result["servers"]:
        lines.append(f"| {s['server']} | {s['cold_start_s']} s | "
                     f"{', '.join(f'{r} MB' for r in s['rss_mb_per_worker'])} | "
                     f"{s['single']['512px']['p50_ms']} ms | {s['single']['12mp']['p50_ms']} ms |")
    lines += ["", "| server | concurrency | requests/s | p50 ms | p99 ms | errors |",
              "|---|---:|---:|---:|---:|---:|"]
    for s in result["servers"]:
        for connections, row in s["load"].items():
            lines.append(f"| {s['server']} | {connections} | {row['requests_per_s']} | "
                         f"{row.get('p50_ms')} | {row.get('p99_ms')} | {row['errors']} |")
    ratios = ", ".join(f"{s['server']} {s['throughput_ratio_c16']}x"
                       for s in result["servers"][:-1])
    lines.append(f"\nRequests/s at concurrency 16 against the naive baseline's: {ratios}.")
    c = result["compute_ceiling"]
    lines.append(f"\nCompute ceiling: one request of the mix costs our app {c['app_cpu_ms_per_request']} "
                 f"ms of CPU in-process (no server, socket or load generator), so {c['cores']} "
                 f"cores could serve at most {c['requests_per_s']} requests/s; "
                 f"{result['servers'][0]['server']} reached {c['reached_at_c16']:.0%} of that "
                 "at concurrency 16, with wrk on the same cores.")
    p = result["physical_ceiling"]
    shares = ", ".join(f"{s['server']} {s['physical_share_c16']:.0%}" for s in result["servers"])
    lines.append(f"\nPhysical ceiling: the mix's floor (decode + inference in-process, nothing "
                 f"else) is {p['floor_ms_per_request']} ms a request, {p['requests_per_s']} "
                 f"requests/s on {c['cores']} cores. Share of it reached at concurrency 16: "
                 f"{shares}.")
    return "\n".join(lines)


if __name__ == "__main__":
    from bench.common import report

    report("http_load", run(), markdown)
