"""How fast can any decoder read the benchmark's 12-megapixel JPEG at 1/8 scale?

A JPEG decoded by DCT scaling skips most of the inverse transform, but the
entropy-coded data (2.5 MB here) still has to be Huffman-decoded, serially for a
baseline JPEG without restart markers. That is the floor under the end-to-end
time of a 12 MP upload, whatever the server does around it.

Times Pillow (what the app uses) and, where they are installed, simplejpeg,
OpenCV and libvips; none of them is a project dependency:

    .venv/bin/pip install simplejpeg opencv-python-headless pyvips pyvips-binary
    .venv/bin/python -m bench.jpeg_floor
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bench.common import percentiles, timed
from classifier.intake import decode_image, draft_size
from tests import images

DRAFT = draft_size((224, 224))  # what the app asks the decoder for: (width, height)


def decoders() -> dict[str, Callable[[bytes], object]]:
    found: dict[str, Callable[[bytes], object]] = {
        "Pillow (the app's decode_image)": lambda data: decode_image(data, draft_size=DRAFT)}
    try:
        import simplejpeg

        found["simplejpeg"] = lambda data: simplejpeg.decode_jpeg(
            data, min_width=DRAFT[0], min_height=DRAFT[1])
    except ImportError:
        pass
    try:
        import cv2

        cv2.setNumThreads(1)
        found["OpenCV IMREAD_REDUCED_COLOR_8"] = lambda data: cv2.imdecode(
            np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_COLOR_8)
    except ImportError:
        pass
    try:
        import pyvips

        found["libvips shrink 8"] = lambda data: pyvips.Image.jpegload_buffer(
            data, shrink=8).numpy()
    except (ImportError, OSError):
        pass
    return found


def run(repeats: int = 30) -> dict:
    data = images.jpeg(4000, 3000, seed=2)  # the photo bench/http_load.py sends
    found = decoders()
    for decode in found.values():  # warm-up
        decode(data)
    samples: dict[str, list[float]] = {name: [] for name in found}
    # Round-robin, one decode each in turn, so the machine's drift hits every decoder alike.
    for _ in range(repeats):
        for name, decode in found.items():
            samples[name] += timed(lambda i, f=decode: f(data), repeats=1, warmup=0)
    rows = [{"decoder": name, **percentiles(times)} for name, times in samples.items()]
    return {"photo_bytes": len(data), "rows": rows}


def markdown(result: dict) -> str:
    lines = [f"12 MP JPEG ({result['photo_bytes'] / 1e6:.2f} MB) decoded at 1/8 scale, one thread.",
             "", "| decoder | p50 ms | p90 ms |", "|---|---:|---:|"]
    lines += [f"| {r['decoder']} | {r['p50_ms']} | {r['p90_ms']} |" for r in result["rows"]]
    return "\n".join(lines)


if __name__ == "__main__":
    from bench.common import report

    report("jpeg_floor", run(), markdown)
