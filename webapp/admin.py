"""Admin pages under /admin: review the feedback people sent, accept or reject it.

One password (NOTHOTDOG_ADMIN_PASSWORD), compared in constant time; a session
cookie (HTTP-only, SameSite, Secure by default) marks a logged-in admin; every
form carries a CSRF token (Flask-WTF); login attempts are rate-limited."""

from __future__ import annotations

import hmac
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
from sqlalchemy import select

from webapp.db import STATUSES, Feedback, db
from webapp.feedback import limiter

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE_SIZE = 50


def login_required(view):
    @wraps(view)
    def guarded(*args, **kwargs):
        if not session.get("admin"):
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


def _digest(text: str) -> bytes:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).digest()


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login():
    enabled = bool(current_app.config["ADMIN_PASSWORD"])
    if request.method == "POST":
        if password_matches(request.form.get("password", "")):
            session.clear()
            session["admin"] = True
            session.permanent = True
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/admin") else url_for("admin.feedback_list"))
        flash("That password is not right." if enabled else
              "The admin pages are switched off: set NOTHOTDOG_ADMIN_PASSWORD to use them.")
        return render_template("admin/login.html", enabled=enabled), 401
    return render_template("admin/login.html", enabled=enabled)


@bp.post("/logout")
@login_required
def logout():
    session.clear()
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
    back = request.form.get("back", "")
    return redirect(back if back.startswith("/admin") else url_for("admin.feedback_list"))
