"""Feedback, its database (SQLite and a real PostgreSQL server), the admin pages,
rate limits, the export command and /metrics."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pytest
import sqlalchemy
from PIL import Image

from tests import images
from tests.conftest import SHIPPED_MODELS, close_database
from webapp import create_app
from webapp.db import Feedback, db, upgrade_database

HTTPS = "https://localhost"  # session cookies are Secure: the client must look like HTTPS
# Over HTTPS, Flask-WTF also wants the Referer a browser sends for a same-site form.
FROM_SITE = {"Referer": HTTPS + "/"}
PASSWORD = "correct horse battery staple"


@pytest.fixture()
def feedback_app(database_url, tmp_path):
    app = create_app({"TESTING": True, "MODELS_DIR": SHIPPED_MODELS,
                      "SQLALCHEMY_DATABASE_URI": database_url, "ADMIN_PASSWORD": PASSWORD,
                      "FEEDBACK_RATE_LIMIT": "5 per minute", "SECRET_KEY": "test secret"})
    upgrade_database(app)  # the real migrations, as `flask db upgrade` runs them
    from webapp.feedback import limiter

    limiter.reset()  # one limiter per process: counts from other tests must not carry over
    yield app
    close_database(app)


@pytest.fixture()
def web(feedback_app):
    return feedback_app.test_client()


def on_site(web, method: str, path: str, **options):
    """A request as a browser on this site sends it over HTTPS."""
    return web.open(path, method=method, base_url=HTTPS, headers=FROM_SITE, **options)


def csrf_token(web, path: str = "/admin/login") -> str:
    page = on_site(web, "GET", path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def photo_with_location() -> bytes:
    """A JPEG carrying GPS coordinates in its EXIF data."""
    image = Image.fromarray(images.photo_array(320, 240, seed=7))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}  # GPSInfo
    exif[0x010F] = "PhoneMaker"
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, exif=exif)
    return buffer.getvalue()


def classify(web, data: bytes, model: str = "hotdog") -> dict:
    response = web.post(f"/api/v1/classify?model={model}", data=data, content_type="image/jpeg")
    assert response.status_code == 200
    return response.get_json()["results"][0]


def rows(app) -> list[Feedback]:
    with app.app_context():
        return list(db.session.scalars(sqlalchemy.select(Feedback).order_by(Feedback.id)))


def test_feedback_is_stored_and_read_back(feedback_app, web):
    data = images.jpeg(seed=3)
    answer, again = classify(web, data), classify(web, data)  # a token is taken once
    response = web.post("/api/v1/feedback", json={"token": answer["feedback_token"], "correct": True})
    assert response.status_code == 201 and response.get_json()["photo_stored"] is False
    wrong = web.post("/api/v1/feedback", json={"token": again["feedback_token"], "correct": False})
    assert wrong.status_code == 201
    first, second = rows(feedback_app)
    assert (first.model_name, first.verdict, first.correct, first.correction) == (
        "hotdog", answer["label"], True, None)
    assert first.scores == pytest.approx(answer["scores"])
    assert first.model_version == feedback_app.extensions["classifier"].get("hotdog").version
    import hashlib

    assert first.photo_sha256 == hashlib.sha256(data).hexdigest()
    other = next(label for label in ("hotdog", "not_hotdog") if label != answer["label"])
    assert (second.correct, second.correction, second.label) == (False, other, other)
    assert first.status == second.status == "new"


def test_without_consent_no_photo_bytes_are_stored_anywhere(feedback_app, web, database_url, tmp_path):
    data = images.jpeg(640, 480, seed=21)
    answer = classify(web, data)
    response = web.post("/api/v1/feedback", data={
        "token": answer["feedback_token"], "correct": "false", "consent": "false",
        "image": (io.BytesIO(data), "mine.jpg")})
    assert response.status_code == 201 and response.get_json()["photo_stored"] is False
    (entry,) = rows(feedback_app)
    assert entry.has_photo is False
    with feedback_app.app_context():
        stored = db.session.execute(sqlalchemy.text("SELECT photo_jpeg FROM feedback")).scalar_one()
    assert stored is None
    # No file the app can write to holds any stretch of the photo.
    probe = data[len(data) // 2: len(data) // 2 + 64]
    places = [Path(feedback_app.instance_path), tmp_path]
    for place in places:
        for file in (p for p in place.rglob("*") if p.is_file()):
            assert probe not in file.read_bytes(), file


def test_with_consent_the_photo_is_kept_without_its_exif(feedback_app, web):
    data = photo_with_location()
    assert Image.open(io.BytesIO(data)).getexif().get(0x8825)  # the GPS block is there
    answer = classify(web, data)
    response = web.post("/api/v1/feedback", data={
        "token": answer["feedback_token"], "correct": "true", "consent": "true",
        "image": (io.BytesIO(data), "mine.jpg")})
    assert response.status_code == 201 and response.get_json()["photo_stored"] is True
    with feedback_app.app_context():
        entry = db.session.scalars(sqlalchemy.select(Feedback)).one()
        kept = Image.open(io.BytesIO(entry.photo_jpeg))
        assert entry.has_photo and kept.size == (320, 240)
        assert not kept.getexif() and "exif" not in kept.info and b"PhoneMaker" not in entry.photo_jpeg


def share(web, data: bytes) -> tuple[dict, object]:
    """Classify a photo and send "right" with it shared: the answer, and the response."""
    answer = classify(web, data)
    return answer, web.post("/api/v1/feedback", data={
        "token": answer["feedback_token"], "correct": "true", "consent": "true",
        "image": (io.BytesIO(data), "mine.jpg")})


def test_shared_photos_awaiting_review_are_capped(feedback_app, web):
    """Many clients, each within its rate limit, must not fill the disk: past the cap the
    feedback is kept and its photo is not, and the answer says so."""
    feedback_app.config["FEEDBACK_PHOTOS_AWAITING_REVIEW"] = 2
    assert [share(web, images.jpeg(seed=seed))[1].status_code for seed in (1, 2)] == [201, 201]
    _, full = share(web, images.jpeg(seed=3))
    assert full.status_code == 201 and full.get_json()["photo_stored"] is False
    assert "as many shared photos as we can review" in full.get_json()["photo_note"]
    with feedback_app.app_context():  # a moderator's review makes room
        db.session.get(Feedback, 1).status = "accepted"
        db.session.commit()
    assert share(web, images.jpeg(seed=4))[1].status_code == 201
    assert [entry.has_photo for entry in rows(feedback_app)] == [True, True, False, True]


def test_prune_deletes_the_photos_no_one_will_use(feedback_app):
    now = dt.datetime.now(dt.UTC)
    entries = [("new", 100), ("new", 5), ("rejected", 1), ("accepted", 400), ("new", 400)]
    with feedback_app.app_context():
        for index, (status, age_days) in enumerate(entries):
            db.session.add(Feedback(
                model_name="hotdog", model_version="1", verdict="hotdog", scores={"hotdog": 1.0},
                correct=True, photo_sha256=f"{index:064x}", has_photo=index != 4,
                photo_jpeg=images.jpeg(seed=index) if index != 4 else None, status=status,
                token_id=f"t{index}", created_at=now - dt.timedelta(days=age_days)))
        db.session.commit()
    result = feedback_app.test_cli_runner().invoke(args=["feedback", "prune", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "1 rejected entries and 1 entries unreviewed for over 30 days" in result.output
    kept = rows(feedback_app)
    assert [entry.has_photo for entry in kept] == [False, True, False, True, False]
    with feedback_app.app_context():
        stored = db.session.scalars(sqlalchemy.select(Feedback.photo_jpeg).order_by(Feedback.id)).all()
    assert [photo is not None for photo in stored] == [False, True, False, True, False]
    assert len(kept) == 5  # the feedback itself stays


@pytest.mark.parametrize("change, code", [
    (lambda f: f.update(token=f["token"][:-3] + "abc"), "bad_token"),
    (lambda f: f.update(correct="perhaps"), "bad_request"),
    (lambda f: f.update(consent="true"), "missing_image"),
])
def test_bad_feedback_is_refused_clearly(web, change, code):
    fields = {"token": classify(web, images.jpeg())["feedback_token"], "correct": "false"}
    change(fields)
    response = web.post("/api/v1/feedback", data=fields)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == code


def test_consent_needs_the_photo_that_was_answered(web):
    answer = classify(web, images.jpeg(seed=1))
    response = web.post("/api/v1/feedback", data={
        "token": answer["feedback_token"], "correct": "true", "consent": "true",
        "image": (io.BytesIO(images.jpeg(seed=2)), "other.jpg")})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "wrong_photo"


def test_a_many_class_model_needs_the_right_class_named(web):
    token = classify(web, images.jpeg(), model="phototype")["feedback_token"]
    vague = web.post("/api/v1/feedback", json={"token": token, "correct": False})
    assert vague.status_code == 400 and vague.get_json()["error"]["code"] == "bad_correction"
    unknown = web.post("/api/v1/feedback", json={"token": token, "correct": False, "correction": "cat"})
    assert unknown.status_code == 400
    named = web.post("/api/v1/feedback", json={"token": token, "correct": False, "correction": "menu"})
    assert named.status_code == 201


def test_feedback_past_the_limit_is_429_never_5xx(web):
    token = classify(web, images.jpeg())["feedback_token"]
    codes = [web.post("/api/v1/feedback", json={"token": token, "correct": True}).status_code
             for _ in range(8)]
    assert codes[:5] == [201] + [409] * 4 and set(codes[5:]) == {429}  # refused uses count too
    limited = web.post("/api/v1/feedback", json={"token": token, "correct": True})
    assert limited.get_json()["error"]["code"] == "too_many_requests"


def test_the_api_and_the_form_share_one_feedback_limit(web):
    """Counted per route, a client had twice the configured rate."""
    form = {"token": "x", "csrf_token": csrf_token(web)}
    codes = [web.post("/api/v1/feedback", json={"token": "x", "correct": True}).status_code
             if n % 2 else on_site(web, "POST", "/feedback", data=form).status_code
             for n in range(6)]
    assert codes[:5] == [400] * 5 and codes[5] == 429


def test_ipv6_clients_count_by_their_64_network(web):
    """An IPv6 client may use any address of the /64 its provider gives it: a limit
    counted per address would be 2^64 limits. IPv4 counts per address, mapped or not."""
    def sent(address: str) -> int:
        return web.post("/api/v1/feedback", json={"token": "x", "correct": True},
                        environ_base={"REMOTE_ADDR": address}).status_code

    assert [sent(f"2001:db8:1:2::{n:x}") for n in range(1, 7)] == [400] * 5 + [429]
    assert sent("2001:db8:1:2:ffff:ffff:ffff:ffff") == 429
    assert sent("2001:db8:1:3::1") == 400  # the next /64: another client
    assert [sent(address) for address in ["192.0.2.7"] * 5 + ["::ffff:192.0.2.7"]] == [400] * 5 + [429]
    assert sent("192.0.2.8") == 400


def test_the_page_form_works_without_javascript(feedback_app, web):
    page = on_site(web, "POST", "/", data={"image": (io.BytesIO(images.jpeg()), "lunch.jpg")}
                   ).get_data(as_text=True)
    form = re.search(r'<form method="post" action="/feedback".*?</form>', page, re.S).group(0)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    assert {"csrf_token", "token", "preview"} <= set(fields)
    thanks = on_site(web, "POST", "/feedback", data={**fields, "correct": "false", "consent": "on"})
    assert thanks.status_code == 201 and "Thank you" in thanks.get_data(as_text=True)
    (entry,) = rows(feedback_app)
    assert entry.has_photo and entry.correct is False
    no_csrf = on_site(web, "POST", "/feedback", data={"token": fields["token"], "correct": "true"})
    assert no_csrf.status_code == 400


# -- admin ------------------------------------------------------------------

ADMIN_ROUTES = [("GET", "/admin/"), ("GET", "/admin/?status=new"), ("GET", "/admin/feedback/1/photo"),
                ("POST", "/admin/feedback/1"), ("POST", "/admin/logout")]


def log_in(web) -> str:
    """Log in; returns a CSRF token of the new session (logging in starts a fresh
    session, so the login form's token no longer counts)."""
    token = csrf_token(web)
    response = on_site(web, "POST", "/admin/login", data={"csrf_token": token, "password": PASSWORD})
    assert response.status_code == 302
    return csrf_token(web, "/admin/")


@pytest.mark.parametrize("method, path", ADMIN_ROUTES)
def test_every_admin_route_needs_a_login(web, method, path):
    data = {"csrf_token": csrf_token(web), "status": "accepted"} if method == "POST" else None
    response = on_site(web, method, path, data=data)
    assert response.status_code in (302, 401)
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/admin/login")


def test_wrong_password_and_missing_csrf_are_refused(web):
    token = csrf_token(web)
    wrong = on_site(web, "POST", "/admin/login", data={"csrf_token": token, "password": "guess"})
    assert wrong.status_code == 401 and "not right" in wrong.get_data(as_text=True)
    no_token = on_site(web, "POST", "/admin/login", data={"password": PASSWORD})
    assert no_token.status_code == 400
    assert on_site(web, "GET", "/admin/").status_code == 302  # still not logged in


def test_session_cookie_is_secure_and_http_only(web):
    log_in(web)
    cookie = web.get_cookie("session", domain="localhost")
    assert cookie.secure and cookie.http_only and cookie.same_site == "Lax"


def test_admin_reviews_filters_and_decides(feedback_app, web):
    hot = classify(web, images.jpeg(seed=4))
    web.post("/api/v1/feedback", data={"token": hot["feedback_token"], "correct": "false", "consent": "true",
                                       "image": (io.BytesIO(images.jpeg(seed=4)), "a.jpg")})
    kind = classify(web, images.jpeg(seed=5), model="phototype")
    web.post("/api/v1/feedback",
             json={"token": kind["feedback_token"], "correct": False, "correction": "menu"})
    token = log_in(web)

    def listed(query=""):
        return on_site(web, "GET", "/admin/" + query).get_data(as_text=True).count('action="/admin/feedback/')

    page = on_site(web, "GET", "/admin/").get_data(as_text=True)
    assert listed() == 2 and page.count('class="admin-thumb"') == 1  # only the photo shared
    assert on_site(web, "GET", "/admin/feedback/1/photo").mimetype == "image/jpeg"
    assert on_site(web, "GET", "/admin/feedback/2/photo").status_code == 404
    assert listed("?model=phototype") == 1 and listed("?label=menu") == 1
    refused = on_site(web, "POST", "/admin/feedback/1", data={"status": "accepted"})
    assert refused.status_code == 400  # no CSRF token
    decided = on_site(web, "POST", "/admin/feedback/1", data={
        "status": "accepted", "csrf_token": token, "back": "https://evil.example/"})
    assert decided.status_code == 302 and decided.headers["Location"] == "/admin/"
    assert [e.status for e in rows(feedback_app)] == ["accepted", "new"]
    assert listed("?status=accepted") == 1


def test_export_never_writes_outside_its_folder(feedback_app, tmp_path):
    """A class named like a path (allowed for models made before 6 Dec 2026) must not
    lead a photo out of the export folder."""
    with feedback_app.app_context():
        for index, label in enumerate(["../../escaped", "..", "fine"]):
            db.session.add(Feedback(
                model_name="made", model_version="1", verdict="other", scores={"other": 1.0},
                correct=False, correction=label, photo_sha256=f"{index:064x}", has_photo=True,
                photo_jpeg=images.jpeg(seed=index), status="accepted", token_id=f"e{index}"))
        db.session.commit()
    out = tmp_path / "a" / "out"
    result = feedback_app.test_cli_runner().invoke(args=["feedback", "export", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jpg")) == [
        "a/out/made/fine/feedback_3.jpg"]
    assert result.output.count("is not a folder name") == 2


def test_export_writes_accepted_photos_by_class(feedback_app, web, tmp_path):
    for seed in range(3):
        data = images.jpeg(seed=30 + seed)
        answer = classify(web, data)
        web.post("/api/v1/feedback", data={"token": answer["feedback_token"], "correct": "false",
                                           "consent": str(seed < 2).lower(),
                                           "image": (io.BytesIO(data), "a.jpg")})
    with feedback_app.app_context():
        for entry in db.session.scalars(sqlalchemy.select(Feedback)):
            entry.status = "accepted" if entry.id != 2 else "rejected"
        db.session.commit()
    result = feedback_app.test_cli_runner().invoke(args=["feedback", "export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.jpg"))
    (entry,) = [e for e in rows(feedback_app) if e.id == 1]
    assert written == [f"hotdog/{entry.label}/feedback_1.jpg"]
    assert "1 accepted entries had no photo" in result.output


def test_metrics_count_requests_predictions_and_feedback(web):
    answer = classify(web, images.jpeg())
    web.post("/api/v1/feedback", json={"token": answer["feedback_token"], "correct": True})
    text = web.get("/metrics").get_data(as_text=True)
    label = re.escape(answer["label"])
    assert re.search(rf'nothotdog_predictions_total\{{label="{label}",model="hotdog"\}} [1-9]', text)
    assert re.search(r'nothotdog_feedback_total\{correct="true",model="hotdog"\} [1-9]', text)
    assert 'nothotdog_request_seconds_count{method="POST",route="/api/v1/classify",status="200"}' in text
    assert re.search(r'nothotdog_model_info\{file="model_(int8|float16)\.tflite",model="hotdog",'
                     r'version="[^"]+"\} 1', text)
