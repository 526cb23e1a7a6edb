"""The bad-input suite: everything a careless or hostile client can send, generated
by code, sent through the JSON API (multipart and raw body) and the HTML form.

Every case gets its documented status: a JSON error from the API, a friendly
message on the page, and never a 5xx.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests import images

OK, BAD_REQUEST, TOO_LARGE, UNSUPPORTED, UNPROCESSABLE = 200, 400, 413, 415, 422

# name -> (bytes, filename, content type, expected status or set of statuses)
CASES = {
    "zero bytes": (b"", "photo.jpg", "image/jpeg", BAD_REQUEST),
    "text": (b"just some text\n" * 20, "photo.jpg", "image/jpeg", UNSUPPORTED),
    "html": (b"<!doctype html><html><script>alert(1)</script></html>", "photo.png",
             "image/png", UNSUPPORTED),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            b'<rect width="10" height="10"/></svg>', "photo.svg", "image/svg+xml", UNSUPPORTED),
    "pdf": (b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "photo.jpg", "image/jpeg",
            UNSUPPORTED),
    "zip": (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 60, "photo.jpg", "image/jpeg",
            UNSUPPORTED),
    "truncated jpeg": (images.truncated(images.jpeg()), "t.jpg", "image/jpeg", UNPROCESSABLE),
    "truncated png": (images.truncated(images.png()), "t.png", "image/png", UNPROCESSABLE),
    "truncated gif": (images.truncated(images.in_format("GIF"), 0.3), "t.gif", "image/gif",
                      UNPROCESSABLE),
    "truncated webp": (images.truncated(images.in_format("WEBP"), 0.5), "t.webp", "image/webp",
                       UNPROCESSABLE),
    # Flipped bits may leave a decodable (if odd-looking) picture or a broken one.
    "bit-flipped jpeg": (images.bit_flipped(images.jpeg()), "f.jpg", "image/jpeg",
                         {OK, UNPROCESSABLE}),
    "bit-flipped png": (images.bit_flipped(images.png()), "f.png", "image/png",
                        {OK, UNPROCESSABLE}),
    "bit-flipped gif": (images.bit_flipped(images.in_format("GIF")), "f.gif", "image/gif",
                        {OK, UNPROCESSABLE}),
    "bit-flipped webp": (images.bit_flipped(images.in_format("WEBP")), "f.webp", "image/webp",
                         {OK, UNPROCESSABLE}),
    "decompression bomb": (images.png_bomb(), "bomb.png", "image/png", UNPROCESSABLE),
    "1x1": (images.png(1, 1), "dot.png", "image/png", OK),
    "1x10000": (images.png(1, 10_000), "tall.png", "image/png", OK),
    "10000x1": (images.png(10_000, 1), "wide.png", "image/png", OK),
    "16-bit png": (images.png_16bit_grey(), "deep.png", "image/png", OK),
    "1-bit png": (images.png(mode="1"), "bw.png", "image/png", OK),
    "cmyk jpeg": (images.cmyk_jpeg(), "cmyk.jpg", "image/jpeg", OK),
    "LA png": (images.la_png(), "la.png", "image/png", OK),
    "P with transparency": (images.palette_with_transparency(), "p.png", "image/png", OK),
    "animated gif": (images.animated("GIF"), "anim.gif", "image/gif", OK),
    "animated webp": (images.animated("WEBP"), "anim.webp", "image/webp", OK),
    "heic": (images.in_format("HEIF"), "phone.heic", "image/heic", OK),
}

FILENAMES = {
    "very long": "a" * 5000 + ".jpg",
    "unicode": "hôt-dög 🌭 写真.jpg",
    "path traversal": "../../../../etc/passwd",
    "windows path": "C:\\Users\\x\\..\\..\\secret.jpg",
    "control characters": "evil\t\x07\u202egpj.exe",
}


def expected(status) -> set[int]:
    return status if isinstance(status, set) else {status}


@pytest.mark.parametrize("name", CASES)
def test_api_multipart(client, name):
    data, filename, content_type, status = CASES[name]
    response = client.post("/api/v1/classify", content_type="multipart/form-data",
                           data={"image": (io.BytesIO(data), filename, content_type)})
    assert response.status_code in expected(status), response.get_data(as_text=True)[:300]
    assert response.is_json
    body = response.get_json()
    if response.status_code == OK:
        assert body["results"][0]["label"] in ("hotdog", "not_hotdog")
    else:
        assert body["error"]["code"] and body["error"]["message"]


@pytest.mark.parametrize("name", CASES)
def test_api_raw_body(client, name):
    data, _, content_type, status = CASES[name]
    response = client.post("/api/v1/classify", data=data, content_type=content_type)
    assert response.status_code in expected(status)
    assert response.is_json


@pytest.mark.parametrize("name", CASES)
def test_html_form(client, name):
    data, filename, content_type, status = CASES[name]
    response = client.post("/", content_type="multipart/form-data",
                           data={"image": (io.BytesIO(data), filename, content_type)})
    assert response.status_code in expected(status)
    page = response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    if response.status_code == OK:
        assert '<section class="answer" data-model="hotdog" data-label="' in page
    else:
        assert 'class="alert alert-danger"' in page  # the message, shown on the upload page
        assert "Traceback" not in page


@pytest.mark.parametrize("label", FILENAMES)
def test_hostile_file_names_are_only_echoed_safely(client, label):
    response = client.post("/api/v1/classify", content_type="multipart/form-data",
                           data={"image": (io.BytesIO(images.jpeg()), FILENAMES[label])})
    assert response.status_code == OK
    shown = response.get_json()["results"][0]["filename"]
    assert "/" not in shown and "\\" not in shown
    assert all(ch.isprintable() and ch != "\u202e" for ch in shown)
    assert 0 < len(shown) <= 100


def test_line_breaks_in_a_file_name_break_the_body_and_get_400(client):
    response = client.post("/api/v1/classify", content_type="multipart/form-data",
                           data={"image": (io.BytesIO(images.jpeg()), "a\r\nX-Injected: 1.jpg")})
    assert response.status_code == BAD_REQUEST and response.is_json


def test_hostile_file_name_is_escaped_on_the_page(client):
    response = client.post("/", content_type="multipart/form-data",
                           data={"image": (io.BytesIO(images.jpeg()), "<script>x</script>.jpg")})
    assert response.status_code == OK
    assert "<script>x</script>" not in response.get_data(as_text=True)


@pytest.mark.parametrize("body", [
    b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\n",
    b"this is not multipart at all",
    b"--BOUNDARY\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--BOUNDARY--\r\n",
    b"--WRONG\r\n\r\n--WRONG--",
])
def test_malformed_multipart_bodies(client, body):
    for path in ("/api/v1/classify", "/"):
        response = client.post(path, data=body,
                               content_type="multipart/form-data; boundary=BOUNDARY")
        assert response.status_code == BAD_REQUEST, (path, response.status_code)


def test_multipart_without_boundary(client):
    response = client.post("/api/v1/classify", data=b"x", content_type="multipart/form-data")
    assert response.status_code == BAD_REQUEST and response.is_json


def test_oversized_upload_is_413_on_api_and_page(app, client):
    too_big = b"\x00" * (app.config["MAX_CONTENT_LENGTH"] + 10)
    api = client.post("/api/v1/classify", data={"image": (io.BytesIO(too_big), "big.jpg")})
    assert api.status_code == TOO_LARGE and api.get_json()["error"]["code"] == "payload_too_large"
    raw = client.post("/api/v1/classify", data=too_big, content_type="image/jpeg")
    assert raw.status_code == TOO_LARGE
    page = client.post("/", data={"image": (io.BytesIO(too_big), "big.jpg")},
                       headers={"Accept": "text/html"})
    assert page.status_code == TOO_LARGE and "limit" in page.get_data(as_text=True)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_rotated_phone_photo_gets_the_upright_verdict(client, orientation):
    upright = Image.fromarray(images.photo_array(320, 240, seed=7))
    reference = client.post("/api/v1/classify", data=images.with_orientation(upright, 1),
                            content_type="image/jpeg").get_json()["results"][0]
    rotated = client.post("/api/v1/classify", data=images.with_orientation(upright, orientation),
                          content_type="image/jpeg").get_json()["results"][0]
    assert rotated["label"] == reference["label"]
    for label, score in reference["scores"].items():
        assert rotated["scores"][label] == pytest.approx(score, abs=0.05)
