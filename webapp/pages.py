"""The pages people use. The upload page works without JavaScript (form POST -> result
page); with JavaScript, static/js/app.js takes over and talks to the JSON API instead.
Each model also has a page of its own that shows its model card."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request, send_from_directory

from classifier import card as model_card
from classifier.intake import ImageError, draft_size
from classifier.model import Model
from classifier.registry import EVERY_MODEL
from webapp import present, tokens
from webapp.classify import (
    PhotoAnswers,
    classify_uploads,
    models_for_request,
    registry,
    top_k_for_request,
)
from webapp.errors import RequestError
from webapp.feedback import data_uri_bytes
from webapp.uploads import uploads_from_request

bp = Blueprint("pages", __name__)

def choices() -> list[dict]:
    """The models as the page offers them: by purpose, the default first."""
    reg = registry()
    names = [reg.default] + [n for n in reg.names() if n != reg.default]
    return [{"name": n, "title": reg.get(n).card["title"], "classes": len(reg.get(n).labels),
             "description": reg.get(n).card["description"]} for n in names]


def decode_floor() -> int:
    """The shortest side the server decodes a JPEG at for the largest photo model
    (`classifier.intake.draft_size`): the page shrinks big photos to that scale."""
    reg = registry()
    return max((min(draft_size(model.input_size)) for model in map(reg.get, reg.names())
                if not model.reads_digits), default=0)


def render_index(status: int = 200, error_code: str | None = None):
    chosen = request.values.get("model") or registry().default
    if chosen != EVERY_MODEL and chosen not in registry().names():
        chosen = registry().default
    messages = {code: present.for_people(code) for code in present.PEOPLE_MESSAGES}
    messages["unknown"] = present.GENERIC_MESSAGE
    return render_template("index.html", choices=choices(), chosen=chosen,
                           all_models=EVERY_MODEL, messages=messages, decode_floor=decode_floor(),
                           error=error_code and present.for_people(error_code)), status


@bp.get("/")
def index():
    return render_index()


@bp.post("/")
def classify_form():
    """The no-JavaScript path: classify, then show each photo with every answer."""
    try:
        models, top_k = models_for_request().models, top_k_for_request()
        # The page carries the explanation it shows (the first model's): its "Why?"
        # switch works without a script.
        answers = classify_uploads(models, uploads_from_request(), explain=[models[0].name],
                                   previews=True)
    except (RequestError, ImageError) as exc:
        return render_index(exc.status, exc.code)
    shown = [shown_photo(answer, models, top_k) for answer in answers]
    return render_template("result.html", results=shown, models=models)


def shown_photo(answer: PhotoAnswers, models: list[Model], top_k: int | None) -> dict:
    """One photo on the result page: its preview and every model's answer. The page's
    feedback form sends that preview back when the person shares the photo, so each
    answer's token also vouches for the preview's hash."""
    preview = answer.preview
    preview_digest = tokens.photo_hash(data_uri_bytes(preview))
    answers = []
    for model in models:
        item = answer.answer(model, top_k)
        item["feedback_token"] = tokens.with_preview(item["feedback_token"], preview_digest)
        answers.append({"model": model, **item})
    return {"filename": answer.upload.filename, "preview": preview, "answers": answers}


@bp.get("/draw")
def draw():
    """Draw a digit on a canvas; the page needs JavaScript and says so without it."""
    digit_models = [m for m in map(registry().get, registry().names()) if m.reads_digits]
    if not digit_models:
        abort(404)
    return render_template("draw.html", model=digit_models[0])


@bp.get("/models/<name>")
def model_page(name: str):
    model = registry().models.get(name) or abort(404)
    not_sure = (model_card.not_sure_words(model.card, model.runtime.variant)
                if model.card.get("calibration") else None)
    return render_template("model.html", model=model, card=model.card, not_sure=not_sure)


@bp.get("/models/<name>/<filename>.png")
def model_plot(name: str, filename: str):
    """An evaluation plot listed in the model's card (nothing else in its folder)."""
    model = registry().models.get(name) or abort(404)
    if f"{filename}.png" not in model.card.get("plots", {}).values():
        abort(404)
    return send_from_directory(model.path.parent, f"{filename}.png", max_age=3600)


@bp.get("/api/docs")
def api_docs():
    from webapp.openapi import spec_for

    return render_template("api_docs.html", spec=spec_for(current_app))
