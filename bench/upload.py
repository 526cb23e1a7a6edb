"""Phone photos through the page, in Debian's Chromium: what shrinking big photos in
the browser before upload buys.

Measures, in one run against the app on loopback:
- bytes sent for a 12-megapixel JPEG, against the file's size (target: 5 % at most);
- time from choosing a photo to its verdict on the page, 12 MP against a 512-px photo,
  best of five each (target: at most 1.5x);
- the same 12 MP photo on an emulated 1.6 Mbit/s uplink (Chrome DevTools protocol),
  shrinking on and off (target: at least 10x sooner with it).
"""

from __future__ import annotations

import time

from bench.common import ROOT, report
from classifier.settings import machine_description
from tests import images
from tests.browser.helpers import CHROMIUM_ARGS, ReceivedUploads, serve, twelve_megapixels, wait_until

UPLINK_BITS = 1.6e6
ROUNDS = 5


def time_to_answer(page, path, uploads: ReceivedUploads) -> tuple[float, int]:
    """Seconds from choosing the photo to its verdict on the page, and the bytes the
    server received."""
    count = page.locator("#results .answer").count()
    started = time.monotonic()
    page.set_input_files("#image-input", str(path))
    wait_until(page, f"document.querySelectorAll('#results .answer').length > {count}", 180)
    return time.monotonic() - started, len(uploads.bodies[-1])


def main() -> None:
    from playwright.sync_api import sync_playwright

    from webapp import create_app

    work = ROOT / "bench" / "results" / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    big, small = work / "phone-12mp.jpg", work / "photo-512.jpg"
    big.write_bytes(twelve_megapixels())
    small.write_bytes(images.jpeg(512, 384))
    uploads = ReceivedUploads(create_app({"TESTING": True}))
    httpd, base = serve(uploads)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(base + "/")
        time_to_answer(page, small, uploads)  # warm-up: scripts, interpreters, caches
        small_runs = [time_to_answer(page, small, uploads)[0] for _ in range(ROUNDS)]
        big_runs = [time_to_answer(page, big, uploads) for _ in range(ROUNDS)]
        page.close()
        slow = {}
        for mode in ("on", "off"):
            context = browser.new_context()
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.emulateNetworkConditions", {
                "offline": False, "latency": 40, "downloadThroughput": 10e6 / 8,
                "uploadThroughput": UPLINK_BITS / 8})
            page.goto(base + ("/" if mode == "on" else "/?shrink=off"))
            slow[mode] = time_to_answer(page, big, uploads)[0]
            context.close()
        browser.close()
    httpd.shutdown()
    best_small, best_big = min(small_runs), min(t for t, _ in big_runs)
    sent = big_runs[-1][1]
    result = {"cpu": machine_description(), "file_bytes": big.stat().st_size, "sent_bytes": sent,
              "sent_share": round(sent / big.stat().st_size, 4),
              "seconds_512px": round(best_small, 3), "seconds_12mp": round(best_big, 3),
              "ratio_12mp_to_512px": round(best_big / best_small, 2),
              "uplink_mbit": UPLINK_BITS / 1e6,
              "slow_uplink_seconds": {k: round(v, 2) for k, v in slow.items()},
              "slow_uplink_speedup": round(slow["off"] / slow["on"], 1)}
    report("upload", result, to_markdown)


def to_markdown(result: dict) -> str:
    return "\n".join([
        "Debian's Chromium, headless, on the same machine as the server", "",
        f"- 12 MP JPEG of {result['file_bytes'] / 1e6:.1f} MB: sent **{result['sent_bytes'] / 1e3:.0f} KB "
        f"= {100 * result['sent_share']:.1f} %** of the file (target <= 5 %)",
        f"- choosing to verdict, best of {ROUNDS}: 512-px photo {result['seconds_512px']:.2f} s, 12 MP "
        f"{result['seconds_12mp']:.2f} s = **{result['ratio_12mp_to_512px']:.2f}x** (target <= 1.5x)",
        f"- on a {result['uplink_mbit']} Mbit/s uplink: {result['slow_uplink_seconds']['on']:.1f} s shrunk, "
        f"{result['slow_uplink_seconds']['off']:.1f} s as it is: **{result['slow_uplink_speedup']:.1f}x** "
        "sooner (target >= 10x)"])


if __name__ == "__main__":
    main()
