"""The JSON API and health routes through Flask's test client."""

from __future__ import annotations

import io

import pytest
import requests

from tests import images


def upload(*files, field="image"):
    return {field: [(io.BytesIO(data), name) for name, data in files]}


def as_browsers_send(name: str, data: bytes) -> dict:
    """A one-file form encoded as browsers and `requests` encode it (the test client
    leaves out the empty line between an empty file's headers and the boundary)."""
    form = requests.Request("POST", "http://localhost/", files={"image": (name, data)}).prepare()
    return {"data": form.body, "content_type": form.headers["Content-Type"]}


def test_classify_one_photo(client):
    response = client.post("/api/v1/classify", data=upload(("dog.jpg", images.jpeg())))
    assert response.status_code == 200
    body = response.get_json()
    assert body["model"]["name"] == "hotdog" and body["model"]["version"]
    assert body["elapsed_ms"] >= 0
    (result,) = body["results"]
    assert result["filename"] == "dog.jpg"
    assert result["label"] in ("hotdog", "not_hotdog")
    assert set(result["scores"]) == {"hotdog", "not_hotdog"}
    assert result["top"][0]["label"] == result["label"]


def test_classify_several_photos_keeps_their_order(client):
    files = [(f"p{i}.jpg", images.jpeg(seed=i)) for i in range(3)]
    response = client.post("/api/v1/classify", data=upload(*files))
    assert response.status_code == 200
    assert [r["filename"] for r in response.get_json()["results"]] == ["p0.jpg", "p1.jpg", "p2.jpg"]


def test_raw_body_upload(client):
    data = images.jpeg()
    raw = client.post("/api/v1/classify", data=data, content_type="image/jpeg").get_json()
    form = client.post("/api/v1/classify", data=upload(("a.jpg", data))).get_json()
    assert raw["results"][0]["scores"] == form["results"][0]["scores"]
    assert raw["results"][0]["filename"] == "upload"


def test_model_can_be_named(client):
    ok = client.post("/api/v1/classify?model=hotdog", data=upload(("a.jpg", images.jpeg())))
    assert ok.status_code == 200
    bad = client.post("/api/v1/classify?model=nope", data=upload(("a.jpg", images.jpeg())))
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "unknown_model"


@pytest.mark.parametrize("kwargs, status, code", [
    (as_browsers_send("a.jpg", b""), 400, "empty_file"),
    ({"data": upload(("a.jpg", b""))}, 400, "empty_file"),
    ({"data": upload(("a.jpg", images.jpeg()), field="photo")}, 400, "missing_image"),
    ({"data": {}}, 415, "unsupported_media_type"),
    ({"data": "hello", "content_type": "text/plain"}, 415, "unsupported_media_type"),
    ({"data": upload(("a.jpg", b"not an image"))}, 415, "unsupported_media_type"),
    ({"data": upload(("a.jpg", images.truncated(images.jpeg())))}, 422, "corrupt_image"),
    ({"data": upload(("a.png", images.png_bomb()))}, 422, "image_too_large"),
])
def test_errors_are_json_with_the_documented_status(client, kwargs, status, code):
    response = client.post("/api/v1/classify", **kwargs)
    assert response.status_code == status
    assert response.is_json
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["message"]


def test_bad_file_among_several_is_named(client):
    response = client.post("/api/v1/classify",
                           data=upload(("good.jpg", images.jpeg()), ("bad.jpg", b"junk")))
    assert response.status_code == 415
    assert response.get_json()["error"]["message"].startswith("bad.jpg: ")


def test_too_many_files(app, client):
    limit = app.config["MAX_FILES_PER_REQUEST"]
    files = [(f"{i}.jpg", images.jpeg(32, 32)) for i in range(limit + 1)]
    response = client.post("/api/v1/classify", data=upload(*files))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "too_many_files"


def test_more_form_parts_than_the_parser_takes_is_too_many_files(app, client):
    parts = app.config["MAX_FORM_PARTS"]
    files = [(f"{i}.jpg", images.jpeg(8, 8)) for i in range(parts + 1)]
    response = client.post("/api/v1/classify", data=upload(*files))
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "too_many_files" and str(parts) in error["message"]


def test_upload_over_the_limit_is_413(app, client):
    too_big = b"\xff" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post("/api/v1/classify", data=upload(("big.jpg", too_big)))
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"


def test_wrong_method_and_unknown_path_answer_json_under_api(client):
    assert client.get("/api/v1/classify").get_json()["error"]["code"] == "method_not_allowed"
    missing = client.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_models_lists_the_cards_and_what_runs(client):
    body = client.get("/api/v1/models").get_json()
    assert body["default"] == "hotdog"
    assert {"hotdog", "pizza", "phototype", "imagenet", "digits"} <= {m["name"] for m in body["models"]}
    for entry in body["models"]:
        assert entry["title"] and entry["description"] and "metrics" in entry
        runtime, variants = entry["runtime"], entry["files"]["variants"]
        assert runtime["reason"] and runtime["variant"] in variants
        if "features_of" in runtime:  # a head on another model's network: that model's file
            lender = runtime["features_of"]
            assert runtime["file"] == f"../{lender}/{variants[runtime['variant']]}"
            assert runtime["timings_ms"] == {}
        else:
            assert runtime["file"] == variants[runtime["variant"]]
            # Timed at start-up whenever there is a choice to make.
            assert set(runtime["timings_ms"]) == (set(variants) if len(variants) > 1 else set())
    (card,) = [c for c in body["models"] if c["name"] == "hotdog"]
    assert card["classes"] == ["hotdog", "not_hotdog"]
    (phototype,) = [c for c in body["models"] if c["name"] == "phototype"]
    assert phototype["runtime"]["extra_features"] == ["../hotdog/model_int8.tflite"]
    # The answer is the one the OpenAPI document describes.
    import jsonschema

    components = client.get("/api/v1/openapi.json").get_json()["components"]
    jsonschema.validate(body, {"$ref": "#/components/schemas/ModelList", "components": components})


def test_top_k_limits_the_classes_returned(client):
    photo = images.jpeg()
    default = client.post("/api/v1/classify?model=imagenet", data=photo,
                          content_type="image/jpeg").get_json()["results"][0]
    assert len(default["top"]) == 5 and len(default["scores"]) == 5
    assert [t["score"] for t in default["top"]] == sorted(default["scores"].values(), reverse=True)
    three = client.post("/api/v1/classify?model=imagenet&top_k=3", data=photo,
                        content_type="image/jpeg").get_json()["results"][0]
    assert three["top"] == default["top"][:3]
    binary = client.post("/api/v1/classify?top_k=1", data=upload(("a.jpg", photo))).get_json()
    assert len(binary["results"][0]["top"]) == 1
    for bad in ("0", "-2", "many"):
        response = client.post(f"/api/v1/classify?top_k={bad}", data=upload(("a.jpg", photo)))
        assert response.status_code == 400 and "top_k" in response.get_json()["error"]["message"]


def test_all_models_answer_for_each_photo_with_one_decode_and_one_run_per_network(app, client, monkeypatch):
    """model=all with explanations: one decode per photo, each network run once per
    photo however many models read it."""
    from classifier import service
    from classifier.litert import Network

    decodes, runs = [], []
    original_decode, original_run = service.decode_image, Network.run
    monkeypatch.setattr(service, "decode_image",
                        lambda *a, **k: decodes.append(1) or original_decode(*a, **k))
    monkeypatch.setattr(Network, "run", lambda self, *a, **k: runs.append(1) or original_run(self, *a, **k))
    files = [(f"p{i}.jpg", images.jpeg(seed=i)) for i in range(2)]
    body = client.post("/api/v1/classify?model=all&explain=true", data=upload(*files)).get_json()
    names = [m["name"] for m in body["models"]]
    assert set(names) == {"hotdog", "pizza", "phototype", "imagenet"}  # photo models only
    assert len(decodes) == 2  # one per photo, not one per photo and model
    models = app.extensions["classifier"].photo_models()
    networks = {id(network) for model in models for network in model.networks}
    assert len(networks) < sum(len(model.networks) for model in models)  # some are shared
    assert len(runs) == 2 * len(networks)
    assert all("explanation" in answer for result in body["results"] for answer in result["models"].values())
    for result, (filename, data) in zip(body["results"], files, strict=True):
        assert result["filename"] == filename and set(result["models"]) == set(names)
        alone = client.post("/api/v1/classify?model=pizza", data=data,
                            content_type="image/jpeg").get_json()["results"][0]
        assert result["models"]["pizza"]["label"] == alone["label"]
        assert result["models"]["pizza"]["scores"] == pytest.approx(alone["scores"], abs=0.02)


def test_explanations_come_with_a_heat_layer_or_as_the_grid_alone(client):
    photo = images.jpeg()
    answers = {explain: client.post(f"/api/v1/classify?model=all&explain={explain}", data=photo,
                                    content_type="image/jpeg").get_json()["results"][0]["models"]
               for explain in ("true", "grid", "yes")}
    for name, answer in answers["true"].items():
        grid_only = answers["grid"][name]["explanation"]
        assert answer["explanation"]["overlay"].startswith("data:image/png;base64,")
        assert "overlay" not in grid_only
        assert grid_only == {k: v for k, v in answer["explanation"].items() if k != "overlay"}
        assert "explanation" not in answers["yes"][name]


@pytest.mark.parametrize("model", ["hotdog", "all"])
def test_a_preview_comes_from_the_decode_the_answers_read(client, monkeypatch, model):
    """preview=true, which the page asks for a photo the browser cannot show (HEIC): the
    photo upright, at most 480 px, as a JPEG, for one model or all, from one decode."""
    import base64

    from PIL import Image

    from classifier import intake, service
    from webapp import classify

    decodes = []
    original = intake.decode_image
    for module in (intake, service, classify):
        monkeypatch.setattr(module, "decode_image", lambda *a, **k: decodes.append(1) or original(*a, **k))
    photo = images.in_format("HEIF", 1200, 900)
    response = client.post(f"/api/v1/classify?model={model}&preview=true", data=photo,
                           content_type="image/heic")
    assert response.status_code == 200
    preview = response.get_json()["results"][0]["preview"]
    assert preview.startswith("data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(preview.split(",", 1)[1]))).size == (480, 360)
    assert len(decodes) == 1


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and "hotdog" in ready.get_json()["models"]


def test_readiness_reports_a_broken_model_without_its_error(app, client, monkeypatch):
    model = app.extensions["classifier"].get("hotdog")

    def broken(pixels):
        raise RuntimeError("interpreter gone at /internal/path")

    monkeypatch.setitem(app.config, "READY_CHECK_SECONDS", 0)
    monkeypatch.setattr(model, "predict_pixels", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert list(response.get_json()["failures"]) == ["hotdog"]
    assert "/internal/path" not in response.get_data(as_text=True)


def test_readiness_runs_the_models_at_most_once_a_period(app, client, monkeypatch):
    """Anyone may ask /readyz; each check runs every model (30-45 ms of CPU)."""
    model, runs = app.extensions["classifier"].get("hotdog"), []
    predict = model.predict_pixels
    monkeypatch.setattr(model, "predict_pixels", lambda pixels: runs.append(1) or predict(pixels))
    monkeypatch.setitem(app.config, "READY_CHECK_SECONDS", 0)
    assert client.get("/readyz").status_code == 200 and len(runs) == 1
    monkeypatch.setitem(app.config, "READY_CHECK_SECONDS", 60)
    assert [client.get("/readyz").status_code for _ in range(5)] == [200] * 5
    assert len(runs) == 1


def test_openapi_document_describes_the_api(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert {"/api/v1/classify", "/api/v1/models", "/healthz", "/readyz"} <= set(spec["paths"])
    responses = spec["paths"]["/api/v1/classify"]["post"]["responses"]
    assert {"200", "400", "413", "415", "422"} <= set(map(str, responses))
    from openapi_spec_validator import validate

    validate(spec)


def test_api_docs_page_serves_swagger_ui_locally(client):
    page = client.get("/api/docs").get_data(as_text=True)
    assert 'data-spec="/api/v1/openapi.json"' in page
    for asset in ("/api/docs/swagger-ui/swagger-ui-bundle.js", "/api/docs/swagger-ui/swagger-ui.css",
                  "/static/js/api-docs.js"):
        assert asset in page and client.get(asset).status_code == 200
    spec = client.get("/api/v1/openapi.json").get_json()
    body = spec["paths"]["/api/v1/classify"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/*", "application/octet-stream"} <= set(body)
    assert "/api/v1/feedback" in spec["paths"]


def test_security_headers_on_every_response(client):
    for response in (client.get("/"), client.get("/healthz"), client.get("/api/v1/nothing")):
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
    # HTTPS only, on HTTPS responses only: a development server on plain HTTP stays reachable.
    assert "Strict-Transport-Security" not in client.get("/").headers
    assert client.get("/", base_url="https://localhost").headers["Strict-Transport-Security"] == \
        "max-age=31536000"


def test_uploads_are_never_spooled_to_disk(app, monkeypatch):
    """Werkzeug would write parts over 500 KB to a temporary file; ours stay in memory."""
    import tempfile

    from webapp.uploads import InMemoryRequest

    assert app.request_class is InMemoryRequest

    def no_disk(*args, **kwargs):
        raise AssertionError("an upload went to a temporary file")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, no_disk)
    big = images.jpeg(4000, 3000)
    assert len(big) > 500_000
    form = as_browsers_send("big.jpg", big)
    # With an empty file as a part of headers only, which python-multipart refuses, the
    # form is read by Werkzeug's parser, which would spool the big one.
    boundary = form["content_type"].split("boundary=")[1]
    closing = f"--{boundary}--\r\n".encode()
    headers_only = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                    f'filename="empty.jpg"\r\n').encode() + b"\r\n" + closing
    with_headers_only = {**form, "data": form["data"].replace(closing, headers_only)}
    for body in (form, with_headers_only):
        with app.test_request_context("/api/v1/classify", method="POST", **body) as context:
            stored = context.request.files.getlist("image")[0]
            assert isinstance(stored.stream, io.BytesIO) and stored.read() == big


def test_forms_python_multipart_refuses_are_read_as_rfc_2046_allows(client):
    """A preamble before the first boundary line (one of its lines may begin like the
    boundary), and an empty file as a part of headers only (the empty_file case above)."""
    form = as_browsers_send("dog.jpg", images.jpeg())
    boundary = form["content_type"].split("boundary=")[1].encode()
    for preamble in (b"This is a multipart message.\r\n",
                     b"A line like a boundary:\r\n--" + boundary + b"-not-it\r\n"):
        response = client.post("/api/v1/classify", content_type=form["content_type"],
                               data=preamble + form["data"])
        assert response.status_code == 200, preamble
        assert response.get_json()["results"][0]["filename"] == "dog.jpg"


def test_several_models_side_by_side(tmp_path):
    """Every model directory is served; requests pick one by name, the page offers a choice."""
    import json
    import shutil

    from tests.conftest import SHIPPED_MODELS
    from webapp import create_app

    shutil.copytree(SHIPPED_MODELS / "hotdog", tmp_path / "hotdog")
    shutil.copytree(SHIPPED_MODELS / "hotdog", tmp_path / "second")
    card_path = tmp_path / "second" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["name"] = "second"
    card_path.write_text(json.dumps(card))
    client = create_app({"TESTING": True, "MODELS_DIR": tmp_path}).test_client()

    names = [c["name"] for c in client.get("/api/v1/models").get_json()["models"]]
    assert names == ["hotdog", "second"]
    answer = client.post("/api/v1/classify?model=second", data=images.jpeg(),
                         content_type="image/jpeg").get_json()
    assert answer["model"]["name"] == "second"
    page = client.get("/").get_data(as_text=True)
    assert 'id="model-second"' in page and 'id="model-hotdog"' in page
    chosen = client.post("/", data={"model": "second", "image": (io.BytesIO(images.jpeg()), "a.jpg")})
    assert 'data-model="second"' in chosen.get_data(as_text=True)


def test_the_secret_key_file_is_made_once_and_a_damaged_one_stops_the_start(tmp_path):
    """An empty or cut-off key (a crash while it was written) would sign tokens and
    sessions anyone could forge: the app refuses to start on it."""
    from webapp import instance_secret

    key = instance_secret(tmp_path)
    assert len(key) == 64 and instance_secret(tmp_path) == key
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    for damaged in ("", "ab", key[:40]):
        (tmp_path / "secret_key").write_text(damaged)
        with pytest.raises(RuntimeError, match="holds no secret key"):
            instance_secret(tmp_path)
