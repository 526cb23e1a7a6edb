"""Hostile uploads against a real gunicorn worker: what each one costs.

Every file is built here to cost a worker seconds of CPU or gigabytes of memory if
decoded naively (a JPEG repeating one scan, a 35 MP 16-bit PNG in 200 KB, a 36 MP
1-bit PNG in 16 KB, millions of empty PNG chunks or JPEG segments, huge smooth
pictures in a few hundred KB, EXIF and TIFF directories of countless entries, tiny
files declaring huge canvases, ...) and forms built to cost memory (20 MB URL-encoded
or JSON bodies, multipart bodies of near boundaries), next to legitimate photos at the documented
limits. For each: the answer, its wall time, and the worker's peak memory (VmHWM) and
resident memory after it. The baseline is a
12 MP phone JPEG sent to the same worker in the same run.

A second table checks `classifier.decode_cost`'s per-format weights on this CPU:
milliseconds per megapixel of each format, and the weight they imply against PNG.

    python -m bench.hostile
"""

from __future__ import annotations

import io
import statistics
import time

import requests
from PIL import Image

from bench.common import report
from classifier import decode_cost
from classifier.intake import load_pixels
from tests import images
from tests.servers import gunicorn, peak_rss_mb

REPEATS = 3


def big_photo(width: int, height: int, fmt: str, mode: str = "RGB", **options) -> bytes:
    """A photo-like picture (gradients and sensor noise): as costly to decode as a real one."""
    return images.encode(Image.fromarray(images.photo_array(width, height)).convert(mode), fmt, **options)


def scan_heavy_jpeg() -> bytes:
    """40 MP, progressive, with as many scans as a JPEG may hold, in 250 KB."""
    scans_in_file = 6  # a progressive greyscale JPEG as Pillow writes it
    return images.jpeg_scan_bomb(7300, 5475, repeats=decode_cost.MAX_JPEG_SCANS - scans_in_file)


def cases() -> list[tuple[str, str, list[bytes]]]:
    """(name, model, photos of one request)."""
    grey16, scan_bomb = images.png_16bit_grey(5000, 7000), images.jpeg_scan_bomb()
    phone = images.jpeg(4000, 3000)
    return [
        ("scan bomb: 5000x5000 JPEG, a scan repeated 500x", "hotdog", [scan_bomb]),
        ("16 scan bombs in one request", "hotdog", [scan_bomb] * 16),
        ("40 MP JPEG of 100 scans (the most accepted) in 250 KB", "hotdog", [scan_heavy_jpeg()]),
        ("35 MP 16-bit grey PNG", "hotdog", [grey16]),
        ("35 MP 16-bit grey PNG, model=all", "all", [grey16]),
        ("16 x 35 MP 16-bit grey PNG in one request", "hotdog", [grey16] * 16),
        ("36 MP 1-bit PNG to the digit reader", "digits", [images.png_1bit(6000, 6000)]),
        ("1-bit PNG of 1 x 40 M pixels (a strip)", "hotdog", [images.thin_png(1, 40_000_000)]),
        ("16 such strips in one request", "hotdog", [images.thin_png(1, 40_000_000)] * 16),
        ("1-bit PNG of 800 x 50,000 (the longest side accepted)", "hotdog",
         [images.thin_png(800, 50_000)]),
        ("PNG of 1.5 M empty chunks", "hotdog", [images.png_chunk_flood(1_500_000)]),
        ("JPEG of 4 M empty comment segments", "hotdog", [images.jpeg_segment_flood(4_000_000)]),
        ("GIF of 5 M empty extensions", "hotdog", [images.gif_extension_flood(5_000_000)]),
        ("smooth 40 MP PNG", "hotdog", [images.smooth_png(7300, 5475)]),
        ("smooth 40 MP PNG with alpha", "hotdog", [images.smooth_png(7300, 5475, "RGBA")]),
        ("5 x smooth 40 MP PNG with alpha", "hotdog", [images.smooth_png(7300, 5475, "RGBA")] * 5),
        ("16 x smooth 12 MP PNG", "hotdog", [images.smooth_png(4000, 3000)] * 16),
        ("JPEG with an oddly typed EXIF tag, orientation 6", "hotdog", [images.jpeg_with_odd_exif()]),
        ("PNG whose EXIF holds 65,000 entries", "hotdog", [images.exif_flood(65_000)]),
        ("TIFF whose directory holds 65,000 entries", "hotdog", [images.tiff_directory_flood(65_000)]),
        ("run-length BMP of 50,000 x 800", "hotdog", [images.rle_bmp(50_000, 800)]),
        ("MPO: the scan bomb with a multi-picture segment", "hotdog", [images.mpo_scan_bomb()]),
        ("GIF declaring a 5900 x 5900 screen", "hotdog", [images.gif_declaring_a_screen(5900, 5900)]),
        ("animated WebP declaring a 5400 x 5400 canvas", "hotdog",
         [images.animated_webp_declaring_a_canvas(5400, 5400)]),
        ("40 MP 16-bit grey PNG", "hotdog", [images.png_16bit_grey(6300, 6300)]),
        ("legitimate: 12 MP HEIC", "hotdog", [big_photo(4000, 3000, "HEIF", quality=80)]),
        ("legitimate: 6 x 12 MP JPEG in one request (18 MB)", "hotdog", [phone] * 6),
    ]


def body_cases() -> list[tuple[str, str, str, bytes]]:
    """(name, path, content type, body): forms and JSON built to cost memory or time."""
    near = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
    return [
        ("20 MB URL-encoded field of %41", "/admin/login", "application/x-www-form-urlencoded",
         b"token=" + b"%41" * 6_900_000),
        ("20 MB of empty URL-encoded fields", "/feedback", "application/x-www-form-urlencoded",
         b"a=&" * 6_900_000),
        ("18 MB JSON of [{},{},...]", "/api/v1/feedback", "application/json",
         b"[" + b"{}," * 6_000_000 + b"{}]"),
        ("21 MB multipart of near boundaries", "/api/v1/classify", "multipart/form-data; boundary=b",
         near + b"\r\n--b-" * 3_495_000 + b"\r\n--b--\r\n"),
    ]


def send_body(base: str, path: str, content_type: str, body: bytes) -> tuple[int, str, float]:
    started = time.perf_counter()
    response = requests.post(base + path, data=body, timeout=120,
                             headers={"Content-Type": content_type, "Accept": "application/json"})
    elapsed = time.perf_counter() - started
    code = response.json().get("error", {}).get("code", "") if response.status_code != 200 else ""
    return response.status_code, code, elapsed


def send(base: str, model: str, photos: list[bytes]) -> tuple[int, str, float]:
    started = time.perf_counter()
    response = requests.post(f"{base}/api/v1/classify?model={model}",
                             files=[("image", (f"p{i}", photo)) for i, photo in enumerate(photos)],
                             timeout=120)
    elapsed = time.perf_counter() - started
    code = response.json().get("error", {}).get("code", "") if response.status_code != 200 else ""
    return response.status_code, code, elapsed


def against_a_worker() -> dict:
    phone = images.jpeg(4000, 3000)
    rows = []
    with gunicorn(workers=1, env={"GUNICORN_THREADS": "1"}) as server:
        server.wait_ready(workers=1)
        (worker,) = server.workers()
        for model in ("all", "digits"):  # every network has run once: later growth is decoding's
            send(server.base, model, [images.jpeg()])
        baseline = statistics.median(send(server.base, "hotdog", [phone])[2] for _ in range(REPEATS))
        requests_ = [(name, sum(map(len, photos)), lambda model=model, photos=photos:
                      send(server.base, model, photos)) for name, model, photos in cases()]
        requests_ += [(name, len(body), lambda path=path, kind=kind, body=body:
                       send_body(server.base, path, kind, body)) for name, path, kind, body in body_cases()]
        for name, size, request in requests_:
            status, code, seconds = request()
            rows.append({"case": name, "bytes": size, "status": status, "code": code,
                         "seconds": round(seconds, 3), "x_baseline": round(seconds / baseline, 1),
                         "peak_mb": round(peak_rss_mb(worker.pid)),
                         "rss_after_mb": round(worker.memory_info().rss / 2**20)})
            print(rows[-1], flush=True)
    return {"baseline_12mp_jpeg_s": round(baseline, 3), "rows": rows}


def format_weights() -> list[dict]:
    """ms per megapixel of each format, decoded as the server does, and the weight
    that implies against PNG next to the one decode_cost uses."""
    photos = {"PNG": big_photo(4000, 3000, "PNG", compress_level=1),
              **{f"PNG {mode}": big_photo(4000, 3000, "PNG", mode, compress_level=1)
                 for mode in ("RGBA", "P", "L", "1")},
              "PNG I;16": images.encode(Image.fromarray(
                  images.photo_array(4000, 3000)[:, :, 0].astype("uint16") * 257), "PNG", compress_level=1),
              "TIFF": big_photo(4000, 3000, "TIFF", compression="tiff_lzw"),
              "GIF": big_photo(4000, 3000, "GIF"), "WEBP": big_photo(4000, 3000, "WEBP"),
              "BMP": big_photo(4000, 3000, "BMP"), "HEIF": big_photo(4000, 3000, "HEIF", quality=80),
              "JPEG": big_photo(4000, 3000, "JPEG", quality=90),
              "JPEG progressive": big_photo(4000, 3000, "JPEG", quality=90, progressive=True)}
    ms_per_mp = {}
    for name, data in photos.items():
        samples = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            load_pixels(data, (224, 224))
            samples.append((time.perf_counter() - started) * 1000 / 12)
        ms_per_mp[name] = min(samples)
    rows = []
    for name, ms in ms_per_mp.items():
        with Image.open(io.BytesIO(photos[name])) as opened:
            used = decode_cost.decode_work(opened, photos[name]) / 12
        rows.append({"format": name, "ms_per_mp": round(ms, 2),
                     "measured_weight": round(ms / ms_per_mp["PNG"], 3), "weight_used": round(used, 3)})
    return rows


def to_markdown(result: dict) -> str:
    lines = [f"One gunicorn worker, one thread. Baseline: a 12 MP phone JPEG, "
             f"{result['baseline_12mp_jpeg_s']} s (median of {REPEATS}).", "",
             "| request | bytes | answer | s | x baseline | worker peak MB | RSS after MB |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for r in result["rows"]:
        answer = f"{r['status']} {r['code']}".strip()
        lines.append(f"| {r['case']} | {r['bytes']:,} | {answer} | {r['seconds']} | {r['x_baseline']} "
                     f"| {r['peak_mb']} | {r['rss_after_mb']} |")
    lines += ["", "Decoding work per megapixel, in-process (12 MP photos, best of 3):", "",
              "| format | ms / MP | weight measured (PNG = 1) | weight used |", "|---|---:|---:|---:|"]
    lines += [f"| {r['format']} | {r['ms_per_mp']} | {r['measured_weight']} | {r['weight_used']} |"
              for r in result["weights"]]
    return "\n".join(lines)


def main() -> None:
    result = against_a_worker()
    result["weights"] = format_weights()
    report("hostile", result, to_markdown)


if __name__ == "__main__":
    main()
