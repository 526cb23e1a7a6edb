"""Feedback and admin sessions under attack (issue #33): one-use, expiring feedback
tokens, the no-JavaScript form's photo check, bodies that are not what the API asks
for, admin sessions that logging out or a new password really end, the login
back-off, and a database file only its owner can read. Where the database matters,
on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import base64
import io
import json
import re
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itsdangerous.timed import TimestampSigner

from tests import images
from tests.conftest import SHIPPED_MODELS, close_database
from tests.test_feedback import FROM_SITE, HTTPS, PASSWORD, classify, csrf_token, on_site, rows
from webapp import create_app
from webapp.db import AdminSession, db, enable_migrations, upgrade_database
from webapp.feedback import limiter

SECRET = "test secret"


def make_app(database_url: str, **settings) -> object:
    """An app on the shipped models and the given database (migrated), as one of
    several hosts sharing that database and the secret key would be."""
    app = create_app({"TESTING": True, "MODELS_DIR": SHIPPED_MODELS, "SQLALCHEMY_DATABASE_URI": database_url,
                      "ADMIN_PASSWORD": PASSWORD, "SECRET_KEY": SECRET,
                      "FEEDBACK_RATE_LIMIT": "1000 per minute", **settings})
    upgrade_database(app)
    return app


@pytest.fixture()
def hosts(database_url):
    """Builds apps on one database; the first call's app is `hosts()`'s usual answer."""
    built = []

    def build(**settings):
        built.append(make_app(database_url, **settings))
        limiter.reset()  # one limiter per process: counts from other tests must not carry over
        return built[-1]

    yield build
    for app in built:
        close_database(app)


@pytest.fixture()
def sqlite_app(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'feedback.sqlite'}", ADMIN_LOGIN_BACKOFF_SECONDS=1,
                   ADMIN_LOGIN_BACKOFF_MAX_SECONDS=2)
    limiter.reset()
    yield app
    close_database(app)


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


def result_page_form(web) -> dict:
    """The hidden fields of the no-JavaScript result page's feedback form."""
    page = on_site(web, "POST", "/", data={"image": (io.BytesIO(images.jpeg(seed=11)), "lunch.jpg")}
                   ).get_data(as_text=True)
    form = re.search(r'<form method="post" action="/feedback".*?</form>', page, re.S).group(0)
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


# -- one use per token -------------------------------------------------------------

def test_a_token_is_taken_once_by_the_api(hosts):
    app = hosts()
    web = app.test_client()
    token = classify(web, images.jpeg())["feedback_token"]
    assert web.post("/api/v1/feedback", json={"token": token, "correct": True}).status_code == 201
    again = web.post("/api/v1/feedback", json={"token": token, "correct": False})
    assert again.status_code == 409 and error_code(again) == "token_used"
    assert "already sent" in again.get_json()["error"]["message"]
    assert len(rows(app)) == 1


def test_a_token_is_taken_once_by_the_form(hosts):
    app = hosts()
    web = app.test_client()
    fields = {**result_page_form(web), "correct": "true"}
    assert on_site(web, "POST", "/feedback", data=fields).status_code == 201
    again = on_site(web, "POST", "/feedback", data=fields)
    assert again.status_code == 409 and "already told us" in again.get_data(as_text=True)
    assert len(rows(app)) == 1


def test_hosts_sharing_the_database_take_a_token_once_even_at_the_same_moment(hosts):
    """Two hosts, four requests each, all with one token at once: the unique token id
    in the database lets exactly one through, with no check-then-insert race."""
    apps = [hosts(), hosts()]
    token = classify(apps[0].test_client(), images.jpeg())["feedback_token"]
    start, codes = threading.Barrier(8), []

    def send(app):
        web = app.test_client()
        start.wait()
        codes.append(web.post("/api/v1/feedback", json={"token": token, "correct": True}).status_code)

    threads = [threading.Thread(target=send, args=(apps[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [201] + [409] * 7
    assert len(rows(apps[0])) == 1


# -- expiry ------------------------------------------------------------------------

def signed_hours_ago(web, monkeypatch, hours: float) -> str:
    """A token as the server signed it `hours` ago (the signer's clock turned back)."""
    with monkeypatch.context() as patch:
        past = int(time.time() - hours * 3600)
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: past)
        return classify(web, images.jpeg())["feedback_token"]


def test_a_token_expires_after_the_configured_hours(hosts, monkeypatch):
    web = hosts().test_client()
    stale = web.post("/api/v1/feedback", json={"token": signed_hours_ago(web, monkeypatch, 25),
                                               "correct": True})
    assert stale.status_code == 410 and error_code(stale) == "token_expired"
    assert "more than 24 hours old" in stale.get_json()["error"]["message"]
    fresh = web.post("/api/v1/feedback", json={"token": signed_hours_ago(web, monkeypatch, 23),
                                               "correct": True})
    assert fresh.status_code == 201
    ahead = web.post("/api/v1/feedback", json={"token": signed_hours_ago(web, monkeypatch, -0.01),
                                               "correct": True})
    assert ahead.status_code == 201  # from a host whose clock runs half a minute fast
    shorter = hosts(FEEDBACK_TOKEN_HOURS=1).test_client()
    assert shorter.post("/api/v1/feedback", json={"token": signed_hours_ago(shorter, monkeypatch, 2),
                                                  "correct": True}).status_code == 410


# -- the form's photo ----------------------------------------------------------------

def test_the_form_keeps_only_the_preview_of_the_photo_answered(hosts):
    app = hosts()
    web = app.test_client()
    fields = {**result_page_form(web), "correct": "false", "consent": "on"}
    foreign = "data:image/jpeg;base64," + base64.b64encode(images.jpeg(seed=99)).decode("ascii")
    refused = on_site(web, "POST", "/feedback", data={**fields, "preview": foreign})
    assert refused.status_code == 400 and "not the photo" in refused.get_data(as_text=True)
    assert rows(app) == []
    kept = on_site(web, "POST", "/feedback", data=fields)  # the page's own preview
    assert kept.status_code == 201
    (entry,) = rows(app)
    assert entry.has_photo


def test_the_api_refuses_a_photo_the_token_does_not_vouch_for(hosts):
    app = hosts()
    web = app.test_client()
    token = classify(web, images.jpeg(seed=1))["feedback_token"]
    response = web.post("/api/v1/feedback", data={"token": token, "correct": "true", "consent": "true",
                                                  "image": (io.BytesIO(images.jpeg(seed=2)), "x.jpg")})
    assert response.status_code == 400 and error_code(response) == "wrong_photo"
    assert rows(app) == []


# -- bodies and fields -----------------------------------------------------------------

@pytest.mark.parametrize("body", ["[]", '"x"', "1", "null", "true", '[{"correct": true}]',
                                  "[" * 8_000 + "]" * 8_000, "{not json"])  # deeper than the parser goes
def test_a_body_that_is_not_a_json_object_is_400(sqlite_app, body):
    response = sqlite_app.test_client().post("/api/v1/feedback", data=body,
                                             content_type="application/json")
    assert response.status_code == 400 and error_code(response) == "bad_request"
    assert response.get_json()["error"]["message"].startswith("Send the feedback as a JSON object")


@pytest.mark.parametrize("fields, code, words", [
    ({"token": 12345}, "bad_token", "feedback_token"),
    ({"token": "x" * 5000}, "bad_token", "feedback_token"),
    ({"token": "caf\u00e9.\ud800"}, "bad_token", "feedback_token"),
    ({"correct": "maybe"}, "bad_request", "correct must be true or false"),
    ({"correct": [True]}, "bad_request", "correct must be true or false"),
    ({"correct": None}, "bad_request", "correct must be true or false"),
    ({"correct": False, "correction": ["menu"]}, "bad_correction", "one of"),
    ({"correct": False, "correction": "cat"}, "bad_correction", "one of"),
    ({"consent": {"yes": 1}}, "bad_request", "consent must be true or false"),
    ({"consent": True}, "missing_image", "field 'image'"),
])
def test_every_field_is_checked_with_a_clear_400(sqlite_app, fields, code, words):
    web = sqlite_app.test_client()
    body = {"token": classify(web, images.jpeg(), model="phototype")["feedback_token"],
            "correct": True, **fields}
    response = web.post("/api/v1/feedback", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400 and error_code(response) == code
    assert words in response.get_json()["error"]["message"]
    assert rows(sqlite_app) == []


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_json_value_gives_a_5xx(sqlite_app, data):
    web = sqlite_app.test_client()
    token = classify(web, images.jpeg(), model="phototype")["feedback_token"]
    # Objects near a valid body as often as anything else, so that some reach the database.
    field = JSON_VALUES | st.sampled_from(["menu", "true", "on", ""])
    body = data.draw(JSON_VALUES | st.fixed_dictionaries(
        {"token": st.just(token) | JSON_VALUES, "correct": st.booleans() | field},
        optional={"correction": field, "consent": field}))
    response = web.post("/api/v1/feedback", data=json.dumps(body), content_type="application/json")
    assert response.status_code < 500, (body, response.get_data(as_text=True))


# -- admin sessions ------------------------------------------------------------------

def log_in(web, address: str = "127.0.0.1", password: str = PASSWORD):
    """A login attempt from `address`; returns the response."""
    token = csrf_token(web)
    return on_site(web, "POST", "/admin/login", data={"csrf_token": token, "password": password},
                   environ_base={"REMOTE_ADDR": address})


def with_cookie(app, cookie: str):
    """A new browser holding a copy of someone's session cookie."""
    web = app.test_client()
    web.set_cookie("session", cookie, domain="localhost", secure=True)
    return web


def admin_page_status(web) -> int:
    return on_site(web, "GET", "/admin/").status_code


def test_logging_out_ends_the_session_for_every_copy_of_the_cookie(hosts):
    app = hosts()
    web = app.test_client()
    assert log_in(web).status_code == 302
    copied = web.get_cookie("session", domain="localhost").value
    assert admin_page_status(with_cookie(app, copied)) == 200  # the copy works while logged in
    token = csrf_token(web, "/admin/")
    assert on_site(web, "POST", "/admin/logout", data={"csrf_token": token}).status_code == 302
    replayed = with_cookie(app, copied)
    assert admin_page_status(replayed) == 302
    assert on_site(replayed, "GET", "/admin/").headers["Location"].startswith("/admin/login")
    forms_token = csrf_token(replayed)  # even with a valid CSRF token, no change goes through
    assert on_site(replayed, "POST", "/admin/feedback/1",
                   data={"status": "accepted", "csrf_token": forms_token}).status_code == 401


@pytest.mark.parametrize("target, location", [
    ("/admin/?status=new", "/admin/?status=new"),
    ("/admin%0d%0aX-Evil:%201", "/admin/"),  # a line break would split the header: was a 500
    ("/admin/%5c%5cevil.example", "/admin/"),
    ("//evil.example/admin", "/admin/"),
    ("/administrator", "/admin/"),
])
def test_after_login_only_an_admin_path_is_followed(sqlite_app, target, location):
    web = sqlite_app.test_client()
    token = csrf_token(web)
    response = on_site(web, "POST", f"/admin/login?next={target}",
                       data={"csrf_token": token, "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == location


def test_a_new_password_ends_every_session_on_every_host(hosts):
    first = hosts()
    web = first.test_client()
    assert log_in(web).status_code == 302
    cookie = web.get_cookie("session", domain="localhost").value
    assert admin_page_status(with_cookie(hosts(), cookie)) == 200  # another host, same password
    changed = hosts(ADMIN_PASSWORD="a brand new passphrase")  # restarted with a new password
    assert admin_page_status(with_cookie(changed, cookie)) == 302
    fresh = changed.test_client()
    assert log_in(fresh, password="a brand new passphrase").status_code == 302
    assert admin_page_status(fresh) == 200
    with changed.app_context():  # the new login cleared the rows of the old password
        assert db.session.scalar(sqlalchemy.select(sqlalchemy.func.count()).select_from(AdminSession)) == 1


def test_a_session_ends_at_its_expiry_whatever_the_cookie_says(hosts):
    app = hosts()
    web = app.test_client()
    assert log_in(web).status_code == 302
    with app.app_context():
        db.session.execute(sqlalchemy.update(AdminSession).values(expires_at=sqlalchemy.func.now()))
        db.session.commit()
    assert admin_page_status(web) == 302


# -- login back-off --------------------------------------------------------------------

def test_wrong_passwords_back_off_one_address_only(sqlite_app):
    web = sqlite_app.test_client()
    assert log_in(web, "10.0.0.1", "guess").status_code == 401
    waiting = log_in(web, "10.0.0.1")  # even the right password waits its turn
    assert waiting.status_code == 429 and waiting.headers["Retry-After"] == "1"
    assert "try again in 1 seconds" in waiting.get_data(as_text=True)
    assert log_in(sqlite_app.test_client(), "10.0.0.2").status_code == 302  # another address
    time.sleep(1.05)
    assert log_in(web, "10.0.0.1").status_code == 302


def test_the_wait_doubles_per_failure_up_to_the_maximum(sqlite_app):
    web = sqlite_app.test_client()
    waits = []
    for _ in range(3):
        assert log_in(web, "10.0.0.3", "guess").status_code == 401
        waits.append(int(log_in(web, "10.0.0.3", "guess").headers["Retry-After"]))
        time.sleep(waits[-1] + 0.05)
    assert waits == [1, 2, 2]  # 1 s, doubled, capped at the 2 s maximum set for the test


def test_right_passwords_never_count(sqlite_app):
    web = sqlite_app.test_client()
    assert [log_in(web, "10.0.0.4").status_code for _ in range(12)] == [302] * 12


@pytest.mark.parametrize("proxies, second_client", [(1, 302), (0, 429)])
def test_behind_trusted_proxies_the_back_off_counts_real_clients(tmp_path, proxies, second_client):
    app = make_app(f"sqlite:///{tmp_path / 'db.sqlite'}", TRUSTED_PROXIES=proxies)
    limiter.reset()
    web = app.test_client()

    def via_proxy(client: str, password: str) -> int:
        token = csrf_token(web)
        return web.post("/admin/login", data={"csrf_token": token, "password": password},
                        headers={**FROM_SITE, "X-Forwarded-For": client, "X-Forwarded-Proto": "https"},
                        base_url=HTTPS, environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code

    assert via_proxy("203.0.113.5", "guess") == 401
    assert via_proxy("203.0.113.5", PASSWORD) == 429
    assert via_proxy("203.0.113.6", PASSWORD) == second_client
    close_database(app)


# -- the database file ---------------------------------------------------------------

def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_file_and_the_instance_folder_are_private(tmp_path):
    new = tmp_path / "new.sqlite"
    app = make_app(f"sqlite:///{new}")
    assert mode(new) == 0o600 and mode(Path(app.instance_path)) == 0o700
    with sqlite3.connect(new) as connection:  # SQLite's own files take the database's mode
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("INSERT INTO admin_sessions VALUES ('x', '2026-01-01', '2026-01-01', 'y')")
        assert mode(tmp_path / "new.sqlite-wal") == 0o600
    connection.close()
    old = tmp_path / "old.sqlite"
    old.touch(mode=0o644)
    old.chmod(0o644)
    make_app(f"sqlite:///{old}")
    assert mode(old) == 0o600


# -- the migration ---------------------------------------------------------------------

def test_the_migration_upgrades_a_database_that_holds_feedback(database_url):
    app = create_app({"TESTING": True, "MODELS_DIR": SHIPPED_MODELS, "SECRET_KEY": SECRET,
                      "SQLALCHEMY_DATABASE_URI": database_url})
    enable_migrations(app)
    from flask_migrate import upgrade

    insert = sqlalchemy.text(
        "INSERT INTO feedback (model_name, model_version, verdict, scores, correct, photo_sha256, "
        "has_photo, status) VALUES ('hotdog', '1', 'hotdog', '{}', true, :digest, false, 'new')")
    with app.app_context():
        upgrade(revision="7f44b301060e")  # the schema before this change, with feedback in it
        for digest in ("a" * 64, "b" * 64):
            db.session.execute(insert, {"digest": digest})
        db.session.commit()
        upgrade()
        assert [e.token_id for e in rows(app)] == [None, None]
    web = app.test_client()
    token = classify(web, images.jpeg())["feedback_token"]
    assert web.post("/api/v1/feedback", json={"token": token, "correct": True}).status_code == 201
    assert web.post("/api/v1/feedback", json={"token": token, "correct": True}).status_code == 409
    close_database(app)


def test_the_api_document_names_the_new_answers(sqlite_app):
    spec = sqlite_app.test_client().get("/api/v1/openapi.json").get_json()
    assert {"201", "400", "409", "410", "429"} <= set(spec["paths"]["/api/v1/feedback"]["post"]["responses"])


def test_a_rate_limit_store_that_stops_answering_costs_no_500(tmp_path):
    """Redis down: feedback is still taken (counted in memory meanwhile), and the admin
    login, whose back-off lives there, answers 503 rather than an internal error."""
    database = f"sqlite:///{tmp_path / 'feedback.sqlite'}"
    app = make_app(database, RATELIMIT_STORAGE_URI="redis://127.0.0.1:9")  # nothing listens
    try:
        web = app.test_client()
        answer = classify(web, images.jpeg(seed=11))
        response = web.post("/api/v1/feedback", json={"token": answer["feedback_token"], "correct": True})
        assert response.status_code == 201
        assert log_in(web).status_code == 503
    finally:
        make_app(database)  # the limiter is one per process: back to memory for the tests after
