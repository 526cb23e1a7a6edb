"""Uploads built to cost a worker seconds of CPU or gigabytes of memory, fields built to
crash it, and requests built to grow /metrics: each gets a clear 4xx (or a verdict)
and the service stays up. Every hostile file is made here, in a few hundred KB.

The time and memory each one costs a real gunicorn worker are measured by
`python -m bench.hostile`; the test with a real server below holds the memory bar."""

from __future__ import annotations

import base64
import http.client
import io
import re
import socket
import urllib.parse

import numpy as np
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from classifier import decode_cost, intake
from classifier.decode_cost import DecodeBudget, decode_work
from classifier.image_errors import DecodingTooCostly
from tests import images
from tests.servers import gunicorn, peak_rss_mb

JPEG = {"Content-Type": "image/jpeg"}


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


def assert_too_costly(response, words: str) -> None:
    """A 422 decoding_too_costly whose message says `words`."""
    assert response.status_code == 422
    assert error_code(response) == "decoding_too_costly"
    assert words in response.get_json()["error"]["message"]


def send(client, *photos: bytes, query: str = ""):
    files = [(io.BytesIO(photo), f"photo{i}.png") for i, photo in enumerate(photos)]
    return client.post("/api/v1/classify" + query, data={"image": files},
                       content_type="multipart/form-data")


# -- decoding within a budget ---------------------------------------------------------

def test_a_jpeg_repeating_a_scan_is_refused_before_decoding(client):
    bomb = images.jpeg_scan_bomb(repeats=500)
    assert len(bomb) < 200_000
    response = send(client, bomb)
    assert_too_costly(response, "scans")


def test_a_progressive_jpeg_as_encoders_write_it_is_classified(client):
    photo = images.encode(Image.fromarray(images.photo_array(1600, 1200)), "JPEG", progressive=True)
    assert send(client, photo).status_code == 200


@pytest.mark.parametrize(("kind", "data"), [
    ("JPEG", images.jpeg_segment_flood(5_000)),
    ("PNG", images.png_chunk_flood(30_000)),
    ("GIF", images.gif_extension_flood(5_000)),
])
def test_files_of_countless_tiny_blocks_are_refused_before_pillow_walks_them(client, kind, data):
    response = client.post("/api/v1/classify", data=data, headers={"Content-Type": "image/" + kind.lower()})
    assert_too_costly(response, kind)


def test_a_35_megapixel_16_bit_png_is_classified_and_16_of_them_are_refused_as_one_request(client):
    grey16 = images.png_16bit_grey(5000, 7000)
    assert len(grey16) < 300_000
    assert send(client, grey16).status_code == 200
    response = send(client, *[grey16] * 16)
    assert_too_costly(response, "together")


def test_a_small_file_of_a_huge_smooth_picture_is_refused_for_its_size(client):
    """20 MP of ramps with transparency in 100 KB: 40 units of work (most of a second),
    which a file of a real photo's megabytes may cost, and this one may not."""
    smooth = images.smooth_png(5000, 4000, "RGBA")
    assert len(smooth) < 150_000
    response = send(client, smooth)
    assert_too_costly(response, "for a file of its size")


def test_a_strip_of_a_picture_is_refused_before_decoding_and_the_longest_side_allowed_is_read(client):
    """A 1-bit PNG 1 pixel by 40 million (78 KB; 40 MP, within the pixel limit and a few
    units of work) cost 2.2 s and 760 MB to decode and shrink, and 16 fit in one request:
    a side longer than `intake.MAX_SIDE` is refused from the header."""
    for width, height in [(1, 40_000_000), (40_000_000, 1)]:
        strip = images.thin_png(width, height)
        assert len(strip) < 100_000
        response = send(client, strip, strip)
        assert response.status_code == 422 and error_code(response) == "image_too_large"
        assert "no side may be longer than 50,000 pixels" in response.get_json()["error"]["message"]
    longest = images.thin_png(800, intake.MAX_SIDE)
    assert send(client, longest, query="?model=all").status_code == 200


def test_small_files_that_together_would_cost_seconds_are_refused_as_one_request(client):
    """Each 12 MP of ramps (40 KB) may be decoded; sixteen in 700 KB cost 2.2 s before."""
    smooth = images.smooth_png(4000, 3000)
    assert send(client, smooth).status_code == 200
    assert_too_costly(send(client, *[smooth] * 4), "together")


def test_what_a_budget_allows_grows_with_the_bytes_sent():
    budget = DecodeBudget(200)
    assert budget.allowed(0) == decode_cost.FREE_DECODE_WORK
    assert budget.allowed(1_000_000) == decode_cost.FREE_DECODE_WORK + decode_cost.DECODE_WORK_PER_MEGABYTE
    assert budget.allowed(10**9) == 200
    heic_12_mp = 12 * decode_cost.DECODE_WORK_PER_MEGAPIXEL["HEIF"]
    DecodeBudget(200).spend(heic_12_mp, bytes(1_000_000))  # a phone's HEIC: 1-3 MB
    with pytest.raises(DecodingTooCostly, match="for a file of its size"):
        DecodeBudget(200).spend(heic_12_mp, bytes(100_000))
    zipped = DecodeBudget(200, sent=100_000)  # a zip's size, whatever its photos unpack to
    with pytest.raises(DecodingTooCostly, match="for the bytes sent"):
        zipped.spend(heic_12_mp, bytes(1_000_000))


def test_a_huge_blank_1_bit_png_sent_to_the_digit_reader_is_a_clear_no_digit(client):
    response = client.post("/api/v1/classify?model=digits", data=images.png_1bit(6000, 6000),
                           headers={"Content-Type": "image/png"})
    assert response.status_code == 422
    assert error_code(response) == "no_digit"


def test_the_budget_is_shared_by_a_request_and_charges_a_photo_once():
    budget = DecodeBudget(10)
    photo, other = b"one photo", b"another"
    budget.spend(6, photo)
    budget.spend(6, photo)  # decoded again for its preview: already paid
    with pytest.raises(DecodingTooCostly, match="together"):
        budget.spend(6, other)
    with pytest.raises(DecodingTooCostly, match="This photo"):
        DecodeBudget(10).spend(11, other)


def test_decode_work_follows_format_size_and_scans():
    def opened(data: bytes) -> tuple[Image.Image, bytes]:
        return Image.open(io.BytesIO(data)), data

    base = Image.fromarray(images.photo_array(1000, 1000))
    png = decode_work(*opened(images.encode(base, "PNG")))
    baseline = decode_work(*opened(images.encode(base, "JPEG")))
    progressive = decode_work(*opened(images.encode(base, "JPEG", progressive=True)))
    assert png == pytest.approx(1.0)
    assert decode_work(*opened(images.encode(base.convert("RGBA"), "PNG"))) == pytest.approx(2.0)
    assert decode_work(*opened(images.encode(base.convert("L"), "PNG"))) < png
    assert baseline == pytest.approx(decode_cost.JPEG_WORK_PER_MEGAPIXEL)
    assert baseline < progressive < png


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "1", "I;16", "L"])
def test_large_photos_reduced_after_decoding_keep_their_look(mode):
    """A big PNG is box-reduced before any conversion; the model's pixels stay those of a
    plain full-size conversion and resize, within a few grey levels on average."""
    picture = Image.fromarray(images.photo_array(1800, 1350))
    plain = picture.convert("L" if mode in ("1", "I;16", "L") else "RGB")
    if mode == "I;16":
        picture = Image.fromarray(np.asarray(plain, np.uint16) * 257)
    elif mode == "P":
        picture = plain = picture.convert("P", palette=Image.Palette.ADAPTIVE)
    elif mode == "1":
        picture = plain = picture.convert("1")
    else:
        picture = picture.convert(mode)
        plain = picture
    ours = intake.load_pixels(images.encode(picture, "PNG"), (224, 224)).astype(np.float32)
    reference = plain.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
    assert ours.shape == (224, 224, 3)
    # Dithered 1-bit pixels average differently in a box than under a bilinear kernel.
    assert np.abs(ours - np.asarray(reference, np.float32)).mean() < (12 if mode == "1" else 2.5)


def test_16_bit_levels_are_scaled_to_the_nearest_8_bit_level():
    levels = np.array([[0, 128, 129, 256, 257, 385, 386, 65535]], np.uint16)
    image = intake.decode_image(images.encode(Image.fromarray(levels), "PNG"))
    assert np.asarray(image)[0, :, 0].tolist() == [0, 0, 1, 1, 1, 1, 2, 255]


# -- fields and bodies ----------------------------------------------------------------

@pytest.mark.parametrize("top_k", ["²", "9" * 5000, "0", "-1", "1001", " 2", "1.5", "", "٣"])
def test_a_bad_top_k_is_a_400_that_does_not_echo_it_whole(client, top_k):
    response = client.post("/api/v1/classify?" + urllib.parse.urlencode({"top_k": top_k}),
                           data=images.jpeg(), headers=JPEG)
    if top_k == "":  # an empty value is no value: the default
        assert response.status_code == 200
        return
    assert response.status_code == 400, top_k
    assert len(response.get_json()["error"]["message"]) < 200


@settings(max_examples=60, deadline=None)
@given(top_k=st.text(max_size=30), model=st.text(max_size=30))
def test_no_top_k_or_model_value_gives_a_5xx(app, top_k, model):
    query = urllib.parse.urlencode({"top_k": top_k, "model": model})
    response = app.test_client().post("/api/v1/classify?" + query, data=images.jpeg(80, 60), headers=JPEG)
    assert response.status_code < 500


def test_a_huge_model_name_is_not_echoed_back(client):
    response = client.post("/api/v1/classify?model=" + "x" * 20_000, data=images.jpeg(), headers=JPEG)
    assert response.status_code == 400
    assert len(response.get_json()["error"]["message"]) < 300


def chunked(client, body: bytes, content_type: str, path: str = "/api/v1/classify"):
    """A body as gunicorn hands a chunked one over: no Content-Length, input terminated."""
    return client.post(path, input_stream=io.BytesIO(body),
                       headers={"Content-Type": content_type, "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})


def test_a_chunked_body_over_the_limit_is_413_raw_or_multipart(app, client):
    over = b"\xff" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    assert chunked(client, over, "image/jpeg").status_code == 413
    form = client.application.test_request_context(
        method="POST", data={"image": (io.BytesIO(over), "a.jpg")}).request
    body, content_type = form.get_data(), form.content_type
    response = chunked(client, body, content_type)
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"


def test_a_chunked_body_within_the_limit_is_classified(client):
    response = chunked(client, images.jpeg(), "image/jpeg")
    assert response.status_code == 200
    assert response.get_json()["results"][0]["label"]


# -- metadata and formats that Pillow handles slowly, or not at all -------------------

def test_an_odd_exif_block_costs_no_500_and_its_orientation_is_applied(client):
    """Pillow's exif_transpose rewrote every tag and raised on an oddly typed one."""
    response = send(client, images.jpeg_with_odd_exif(orientation=6), query="?preview=true")
    assert response.status_code == 200, response.get_json()
    preview = Image.open(io.BytesIO(base64.b64decode(
        response.get_json()["results"][0]["preview"].split(",", 1)[1])))
    assert preview.size[1] > preview.size[0]  # 64 x 48 stored, turned upright: taller than wide


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "JPEG"])
def test_a_flood_of_exif_entries_is_not_parsed(recwarn, fmt):
    """65,000 bogus entries cost Pillow 0.5 s and a warning each (13 MB of log); only the
    orientation is looked up, in the first entries."""
    flood = images.exif_flood(65_000 if fmt != "JPEG" else 5_000, fmt)  # a JPEG's EXIF is 64 KB at most
    decoded = intake.decode_image(flood)
    assert decoded.size == (8, 16)  # stored 16 x 8 with orientation 6: turned
    assert not [w for w in recwarn if "PIL" in w.filename]


def test_a_tiff_directory_of_countless_entries_is_refused_before_pillow_reads_it(client):
    assert_too_costly(send(client, images.tiff_directory_flood(65_000)), "blocks")
    assert send(client, images.tiff_directory_flood(100)).status_code == 200


def test_a_run_length_bmp_is_refused_before_pillow_decodes_it_in_python(client):
    response = send(client, images.rle_bmp(50_000, 800))  # 4 KB: about 5 s to decode
    assert response.status_code == 415 and "run-length" in response.get_json()["error"]["message"]
    assert send(client, images.in_format("BMP")).status_code == 200


def test_an_mpo_is_priced_like_the_jpeg_it_is(client):
    """A JPEG with a multi-picture segment is an MPO to Pillow: its scans went uncounted."""
    assert_too_costly(send(client, images.mpo_scan_bomb()), "scans")


@pytest.mark.parametrize("data", [images.gif_declaring_a_screen(5900, 5900),
                                  images.animated_webp_declaring_a_canvas(5400, 5400)])
def test_a_tiny_file_declaring_a_huge_canvas_is_refused_before_decoding(client, data):
    """GIFs and animated WebPs are decoded onto the whole canvas, in RGBA: 68 and 138
    bytes held 303 and 486 MB."""
    assert len(data) < 200
    assert_too_costly(send(client, data), "for a file of its size")
    assert send(client, images.animated("WEBP")).status_code == 200
    assert send(client, images.animated("GIF")).status_code == 200


def test_a_heic_whose_boxes_disagree_about_its_size_is_a_clear_4xx(client):
    response = send(client, images.heic_claiming_another_size())
    assert response.status_code == 422 and error_code(response) == "corrupt_image"


# -- forms built to cost memory or time ------------------------------------------------

@pytest.mark.parametrize("path", ["/make/classify", "/admin/login", "/feedback"])
@pytest.mark.parametrize("body", [b"token=" + b"%41" * 6_900_000,  # held 1.6 GB decoded
                                  b"a=&" * 100])  # more fields than any form of the site
def test_a_url_encoded_form_is_bounded_before_it_is_decoded(client, path, body):
    for response in (client.post(path, data=body, content_type="application/x-www-form-urlencoded",
                                 headers={"Accept": "application/json"}),
                     chunked(client, body, "application/x-www-form-urlencoded", path)):
        assert response.status_code == 413
        assert b"at most 512 KB" in response.data


def test_a_json_body_is_bounded_before_it_is_parsed(client):
    """20 MB of `[{},{},...]` held 0.5 GB parsed; feedback in JSON is a few fields."""
    response = client.post("/api/v1/feedback", data=b"[" + b"{}," * 6_000_000 + b"{}]",
                           content_type="application/json")
    assert response.status_code == 413 and error_code(response) == "payload_too_large"
    assert client.post("/api/v1/feedback", json={"token": "x", "correct": True}).status_code == 400


def test_a_multipart_body_of_near_boundaries_is_refused_before_it_is_split(client):
    """Each line that begins like the boundary costs python-multipart a slow path: 20 MB
    of them took 5 s with a one-character boundary."""
    head = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
    response = client.post("/api/v1/classify", data=head + b"\r\n--b-" * 3_495_000 + b"\r\n--b--\r\n",
                           content_type="multipart/form-data; boundary=b")
    assert response.status_code == 400 and error_code(response) == "bad_request"
    assert "begin like its boundary" in response.get_json()["error"]["message"]


# -- metrics --------------------------------------------------------------------------

def test_invented_methods_and_paths_make_no_new_series(client):
    client.get("/metrics")  # the scrape's own series exist from then on
    before = client.get("/metrics").get_data(as_text=True).splitlines()
    for i in range(15):
        client.open(f"/invented/{i}", method=f"QWERTY{i}")
        client.open("/api/v1/classify", method=f"BREW{i}")
        client.get(f"/no/such/page/{i}")
    after = client.get("/metrics").get_data(as_text=True).splitlines()
    assert len(after) - len(before) <= 10
    text = "\n".join(after)
    assert not re.search(r"QWERTY|BREW|invented|no/such", text)
    assert 'nothotdog_unrouted_requests_total{status="405"}' in text


# -- a real gunicorn worker ----------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    with gunicorn(workers=1) as running:
        running.wait_ready(workers=1)
        yield running


def test_a_chunked_upload_over_the_limit_is_413_from_gunicorn(server):
    host, port = urllib.parse.urlsplit(server.base).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    piece = b"\xff" * (1024 * 1024)
    connection.request("POST", "/api/v1/classify", body=iter([piece] * 21),
                       headers={"Content-Type": "image/jpeg"}, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413
    assert b"payload_too_large" in response.read()


def test_a_body_shorter_than_its_content_length_is_400_raw_or_multipart(server):
    """A client that announces more than it sends and stops: the body is read whole
    before it is parsed, and what arrived is neither parsed as a damaged photo nor a 500."""
    host, port = urllib.parse.urlsplit(server.base).netloc.split(":")
    form = requests.Request("POST", server.base, files={"image": ("a.jpg", images.jpeg())}).prepare()
    for body, content_type in ((images.jpeg(), "image/jpeg"), (form.body, form.headers["Content-Type"])):
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(f"POST /api/v1/classify HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                         + body[:len(body) // 2])
            sock.shutdown(socket.SHUT_WR)  # sends no more, still reads the answer
            answer = b"".join(iter(lambda: sock.recv(65536), b""))
        assert answer.startswith(b"HTTP/1.1 400 "), (content_type, answer[:200])
        assert b'"bad_request"' in answer and b"ended before the size it announced" in answer


def test_hostile_uploads_leave_a_worker_within_its_memory_and_serving(server):
    """Every hostile file of the issue, then 16 in one request: 4xx or verdicts, the
    worker's peak RSS (VmHWM) under 700 MB, and it still answers."""
    hostile = {"scan bomb": images.jpeg_scan_bomb(), "16-bit PNG": images.png_16bit_grey(5000, 7000),
               "1-bit PNG": images.png_1bit(6000, 6000)}
    for name, data in hostile.items():
        for model in ("hotdog", "digits", "all"):
            response = requests.post(f"{server.base}/api/v1/classify?model={model}",
                                     files=[("image", ("x.png", data))], timeout=60)
            assert response.status_code < 500, (name, model, response.text)
    for data in hostile.values():
        response = requests.post(f"{server.base}/api/v1/classify",
                                 files=[("image", ("x.png", data))] * 16, timeout=60)
        assert response.status_code == 422
    (worker,) = server.workers()
    assert peak_rss_mb(worker.pid) <= 700
    assert requests.post(f"{server.base}/api/v1/classify", data=images.jpeg(),
                         headers=JPEG, timeout=30).status_code == 200
