"""Admin pages under /admin: review the feedback people sent, accept or reject it.

One password (NOTHOTDOG_ADMIN_PASSWORD), compared in constant time; every form
carries a CSRF token (Flask-WTF). A login is a row in the database (`AdminSession`),
named by a random secret in the session cookie (HTTP-only, SameSite, Secure by
default): the cookie alone proves nothing once its row is gone. So logging out ends
the session for every copy of the cookie, a new password ends every session (each row
holds an HMAC of the password it began with), and a session ends 8 hours after login
at the latest, on whichever host the next request reaches."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
import time
from functools import wraps

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from itsdangerous.encoding import want_bytes
from sqlalchemy import delete, select

from webapp.clients import client_key
from webapp.db import STATUSES, AdminSession, Feedback, db
from webapp.feedback import limiter

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE_SIZE = 50
#: Wrong passwords from an address are counted for this long (from the first one).
FAILURES_COUNTED_FOR = 3600


def login_required(view):
    @wraps(view)
    def guarded(*args, **kwargs):
        if not logged_in():
            if request.method == "GET":
                return redirect(url_for("admin.login", next=request.full_path))
            abort(401)
        return view(*args, **kwargs)
    return guarded


def password_matches(given: str) -> bool:
    expected = current_app.config["ADMIN_PASSWORD"]
    # compare_digest on equal-length digests: the time taken says nothing about the password.
    return bool(expected) and hmac.compare_digest(
        _digest(given), _digest(expected))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- sessions kept in the database ----------------------------------------------

def _password_hmac() -> str:
    """The current password, keyed with the secret key: a database reader learns nothing
    from it, and it changes with the password."""
    return hmac.new(want_bytes(current_app.config["SECRET_KEY"]),
                    b"admin password:" + current_app.config["ADMIN_PASSWORD"].encode("utf-8"),
                    hashlib.sha256).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def start_session() -> None:
    """A new admin session: its row, and its secret in a fresh cookie. Rows that have
    expired or belong to an old password are cleared on the way."""
    secret = secrets.token_urlsafe(32)
    now, fingerprint = _now(), _password_hmac()
    db.session.execute(delete(AdminSession).where(
        (AdminSession.expires_at <= now) | (AdminSession.password_hmac != fingerprint)))
    db.session.add(AdminSession(id_sha256=_digest(secret), password_hmac=fingerprint,
                                expires_at=now + current_app.permanent_session_lifetime))
    db.session.commit()
    session.clear()
    session["admin_session"] = secret
    session.permanent = True


def logged_in() -> bool:
    """Whether the cookie names a session that exists, has not expired and began with
    the current password."""
    secret = session.get("admin_session")
    if not isinstance(secret, str) or not current_app.config["ADMIN_PASSWORD"]:
        return False
    row = db.session.scalar(select(AdminSession).where(
        AdminSession.id_sha256 == _digest(secret), AdminSession.expires_at > _now()))
    return row is not None and hmac.compare_digest(row.password_hmac, _password_hmac())


def end_session() -> None:
    secret = session.get("admin_session")
    if isinstance(secret, str):
        db.session.execute(delete(AdminSession).where(AdminSession.id_sha256 == _digest(secret)))
        db.session.commit()
    session.clear()


# -- login back-off (see `login`) ----------------------------------------------------

def _backoff_keys() -> tuple[str, str]:
    address = client_key()
    return f"admin-login/wait/{address}", f"admin-login/failures/{address}"


def claim_attempt() -> int:
    """0 when this address may try a password now (and no other attempt from it may
    until this one is judged), else the seconds it must still wait. The claim is one
    atomic increment, so parallel guesses from one address get one try between them.
    The login form and the API's HTTP Basic auth (`webapp.made`) share the count."""
    wait_key, failures_key = _backoff_keys()
    config = current_app.config
    failures = limiter.storage.get(failures_key)
    delay = min(config["ADMIN_LOGIN_BACKOFF_MAX_SECONDS"],
                config["ADMIN_LOGIN_BACKOFF_SECONDS"] * 2 ** failures)
    if limiter.storage.incr(wait_key, delay) == 1:
        return 0  # the wait this sets up holds only if the password turns out wrong
    return max(1, math.ceil(limiter.storage.get_expiry(wait_key) - time.time()))


def attempt_judged(right: bool) -> None:
    wait_key, failures_key = _backoff_keys()
    if right:
        limiter.storage.clear(wait_key)
        limiter.storage.clear(failures_key)
    else:
        limiter.storage.incr(failures_key, FAILURES_COUNTED_FOR)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form. Only wrong passwords slow an address down: after its n-th in a
    row (within FAILURES_COUNTED_FOR) it waits ADMIN_LOGIN_BACKOFF_SECONDS x 2^(n-1), at
    most ADMIN_LOGIN_BACKOFF_MAX_SECONDS, answered 429 with Retry-After until then; a
    right password clears the count. There is no fixed quota to spend, so nobody can
    wall the admin out for long.

    The trade-off: the count is per address, and whoever shares an address with an
    attacker (the same NAT, or a proxy without NOTHOTDOG_TRUSTED_PROXIES) shares the
    wait. An attacker who keeps guessing from there can keep the real admin waiting,
    at most a minute at a time, and gets about one guess a minute in exchange; other
    addresses are never slowed. Counts live in the rate limiter's storage
    (NOTHOTDOG_RATELIMIT_STORAGE): per worker with memory://, shared with Redis."""
    enabled = bool(current_app.config["ADMIN_PASSWORD"])
    if request.method == "POST":
        try:
            wait = claim_attempt()
        except limiter.storage.base_exceptions:  # Redis is down: no back-off, so no guessing
            current_app.logger.exception("the login back-off's storage is unavailable")
            flash("Logging in is not possible right now; please try again in a minute.")
            return render_template("admin/login.html", enabled=enabled), 503
        if wait:
            flash(f"Too many wrong passwords from your address: try again in {wait} seconds.")
            return render_template("admin/login.html", enabled=enabled), 429, {"Retry-After": str(wait)}
        right = password_matches(request.form.get("password", ""))
        attempt_judged(right)
        if right:
            start_session()
            return redirect(_admin_path(request.args.get("next", "")))
        flash("That password is not right." if enabled else
              "The admin pages are switched off: set NOTHOTDOG_ADMIN_PASSWORD to use them.")
        return render_template("admin/login.html", enabled=enabled), 401
    return render_template("admin/login.html", enabled=enabled)


@bp.post("/logout")
@login_required
def logout():
    end_session()
    return redirect(url_for("admin.login"))


@bp.get("/")
@login_required
def feedback_list():
    filters = {key: request.args.get(key, "") for key in ("model", "label", "status")}
    query = select(Feedback).order_by(Feedback.created_at.desc(), Feedback.id.desc())
    if filters["model"]:
        query = query.where(Feedback.model_name == filters["model"])
    if filters["status"] in STATUSES:
        query = query.where(Feedback.status == filters["status"])
    if filters["label"]:
        query = query.where((Feedback.correction == filters["label"]) |
                            ((Feedback.correction.is_(None)) & (Feedback.verdict == filters["label"])))
    page = db.paginate(query, per_page=PAGE_SIZE, error_out=False)
    models = db.session.scalars(select(Feedback.model_name).distinct().order_by(Feedback.model_name))
    return render_template("admin/feedback.html", page=page, filters=filters,
                           models=list(models), statuses=STATUSES)


@bp.get("/feedback/<int:entry_id>/photo")
@login_required
def photo(entry_id: int):
    entry = db.get_or_404(Feedback, entry_id)
    if not entry.has_photo:
        abort(404)
    return Response(entry.photo_jpeg, mimetype="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})


@bp.post("/feedback/<int:entry_id>")
@login_required
def decide(entry_id: int):
    entry = db.get_or_404(Feedback, entry_id)
    status = request.form.get("status")
    if status not in STATUSES:
        abort(400)
    entry.status = status
    db.session.commit()
    flash(f"Feedback {entry.id} marked {status}.")
    return redirect(_admin_path(request.form.get("back", "")))


def _admin_path(target: str) -> str:
    """`target` if it is a path of the admin pages (printable, no backslash: a CR LF
    would split the Location header), else the feedback list."""
    if _ADMIN_PATH.fullmatch(target):
        return target
    return url_for("admin.feedback_list")


_ADMIN_PATH = re.compile(r"/admin(/[\x21-\x5b\x5d-\x7e]*)?")
