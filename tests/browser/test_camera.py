"""The live camera (Chromium's fake one): a photo, live mode that never sends a second
request before the first is answered, and the file picker when the camera is refused."""

from __future__ import annotations

import time

import pytest

from .helpers import first_answer, page_of, received_jpeg, shot, wait_until

pytestmark = pytest.mark.slow


def test_live_camera_takes_a_photo_and_keeps_asking(context, server, uploads):
    context.grant_permissions(["camera"])
    page = page_of(context)
    in_flight, most = [0], [0]

    def started(request):
        if "/api/v1/classify" in request.url:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])

    def ended(request):
        if "/api/v1/classify" in request.url:
            in_flight[0] -= 1

    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    page.goto(server + "/")
    assert page.locator("#camera-open").is_visible() and not page.locator("#camera-input").is_visible()
    page.click("#camera-open")
    page.locator("#camera-panel").wait_for(state="visible", timeout=10_000)
    wait_until(page, "document.getElementById('camera-video').videoWidth > 0", 10)
    page.click("#camera-shoot")
    first_answer(page)
    # A frame larger than the page's shrinking bound goes at the server's decoding scale.
    video = page.evaluate("[document.getElementById('camera-video').videoWidth, "
                          "document.getElementById('camera-video').videoHeight]")
    floor = int(page.get_attribute("#upload-form", "data-decode-floor"))
    divisor = max([1] + [s for s in (2, 4, 8) if max(video) > 1040 and min(video) / s >= floor])
    assert received_jpeg(uploads).size == tuple(-(-side // divisor) for side in video)
    page.click("#camera-live-mode")
    page.locator("#results .live .answer").wait_for(timeout=20_000)
    time.sleep(3)  # a few live rounds
    page.click("#camera-close")
    assert most[0] == 1  # never a second request before the first was answered
    assert page.locator("#results .live .result").count() == 1  # one card, updated in place
    shot(page, "camera")


def test_camera_refused_falls_back_to_the_file_picker(context, server):
    page = page_of(context)  # camera permission not granted: denied
    page.add_init_script("navigator.mediaDevices.getUserMedia = () => "
                         "Promise.reject(new DOMException('denied', 'NotAllowedError'))")
    page.goto(server + "/")
    page.click("#camera-open")
    message = page.locator("#form-message .alert")
    message.wait_for(timeout=5_000)
    assert "camera was not allowed" in message.inner_text()
    assert page.locator("#camera-input").is_visible()
