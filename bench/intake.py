"""Intake benchmark: bytes -> model-ready pixels for the uploads people send.

Photos are made here: a 512-px JPEG, a 12-megapixel (4000x3000) JPEG and a PNG
with alpha. The baseline is the tutorial way: `Image.open(...).convert("RGB")`
at full size, then resize.
"""

from __future__ import annotations

import io

from PIL import Image

from bench.common import percentiles, timed
from classifier.intake import load_pixels
from tests import images

SIZE = (224, 224)


def photos() -> dict[str, bytes]:
    return {"512-px JPEG": images.jpeg(512, 384, quality=90),
            "12 MP JPEG": images.jpeg(4000, 3000, quality=90),
            "PNG with alpha (800x600)": images.png(800, 600, mode="RGBA")}


def naive(data: bytes):
    return Image.open(io.BytesIO(data)).convert("RGB").resize(SIZE, Image.Resampling.BILINEAR)


def run(repeats: int = 60) -> dict:
    rows = []
    for name, data in photos().items():
        ours = percentiles(timed(lambda i, data=data: load_pixels(data, SIZE), repeats))
        base = percentiles(timed(lambda i, data=data: naive(data), max(10, repeats // 3)))
        rows.append({"photo": name, "bytes": len(data), "ours": ours, "naive": base,
                     "speedup": round(base["p50_ms"] / ours["p50_ms"], 1)})
    return {"rows": rows}


def markdown(result: dict) -> str:
    lines = ["| photo | size | ours p50 / p99 ms | naive p50 ms | speed-up |",
             "|---|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['photo']} | {r['bytes'] / 1e6:.2f} MB | {r['ours']['p50_ms']} / "
                     f"{r['ours']['p99_ms']} | {r['naive']['p50_ms']} | {r['speedup']}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    from bench.common import report

    report("intake", run(), markdown)
