"""What the page and the API share: which models a request asks for, and its photos'
answers from the classification service (`classifier.service`), each with a token
for feedback on it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from flask import current_app, g, request
from PIL import Image

from classifier.decode_cost import DecodeBudget
from classifier.encoded import data_uri
from classifier.intake import ImageError, decode_image
from classifier.model import Model
from classifier.registry import EVERY_MODEL, ModelRegistry
from classifier.service import MAX_TOP_K, Answer, classify, classify_and_show
from webapp import metrics, tokens
from webapp.errors import RequestError
from webapp.uploads import Upload

EXTENSION = "classifier"
PREVIEW_SIZE = (480, 480)


@dataclass(frozen=True)
class Choice:
    """The models a request asks for; `every` when it asked for all of them."""

    models: list[Model]
    every: bool


@dataclass
class PhotoAnswers:
    """One uploaded photo and each model's answer about it, by model name, and its
    preview (a data URI) when it was asked for."""

    upload: Upload
    answers: dict[str, Answer]
    preview: str | None = None

    @cached_property
    def digest(self) -> str:
        """The photo's SHA-256: what feedback tokens refer to."""
        return tokens.photo_hash(self.upload.data)

    def answer(self, model: Model, top_k: int | None) -> dict:
        """A model's answer as the API and the pages give it, with a token for feedback."""
        answer = self.answers[model.name]
        return {**answer.as_dict(top_k),
                "feedback_token": tokens.sign(model, answer.prediction, self.digest)}


def registry() -> ModelRegistry:
    return current_app.extensions[EXTENSION]


def requested_field(name: str) -> str | None:
    """A setting from the query string, or from the form of a multipart upload."""
    return request.args.get(name) or (
        request.form.get(name) if request.mimetype == "multipart/form-data" else None)


def models_for_request() -> Choice:
    """The model named by the `model` field, every photo model for `all`, else the default."""
    name = requested_field("model")
    try:
        return Choice(registry().chosen(name), every=name == EVERY_MODEL)
    except KeyError:
        raise RequestError(400, "unknown_model", f"There is no model called {_quoted(name)}; "
                           f"available: {', '.join(registry().names())} (or {EVERY_MODEL}).") from None


def top_k_for_request() -> int | None:
    """`top_k` from the request (None: the default for each model)."""
    value = requested_field("top_k")
    if value is None:
        return None
    # isdigit() alone admits "²" and other Unicode digits, which int() refuses; the
    # length check keeps int() from parsing thousands of digits.
    if not (value.isascii() and value.isdigit() and len(value) <= 4 and 1 <= int(value) <= MAX_TOP_K):
        raise RequestError(400, "bad_request",
                           f"top_k must be a whole number from 1 to {MAX_TOP_K}, not {_quoted(value)}.")
    return int(value)


def _quoted(value: str, limit: int = 40) -> str:
    """A client's value, quoted for an error message and cut short: a 20 MB form field
    must not come back in the answer."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


#: Values of `explain`: the grid of values and its heat layer, or the grid alone (the
#: upload page draws the layer itself: encoding it is most of an explanation's cost).
EXPLAIN_WITH_OVERLAY, EXPLAIN_GRID = "true", "grid"


def explain_requested() -> str | None:
    """EXPLAIN_WITH_OVERLAY or EXPLAIN_GRID, as the request asks; None otherwise."""
    value = requested_field("explain")
    return value if value in (EXPLAIN_WITH_OVERLAY, EXPLAIN_GRID) else None


def decode_budget() -> DecodeBudget:
    """The decoding work this request may still spend, shared by all its photos."""
    if "decode_budget" not in g:
        g.decode_budget = DecodeBudget(current_app.config["MAX_DECODE_WORK"])
    return g.decode_budget


def classify_uploads(models: list[Model], uploads: list[Upload], *, explain: Collection[str] = (),
                     overlays: bool = True, previews: bool = False) -> list[PhotoAnswers]:
    """Every model's answer about every upload (`classifier.service.classify`: one
    decode, each network once); the models named in `explain` also say where they saw
    it (with heat layers, unless not `overlays`); with `previews`, each photo's preview
    from the same decode. The first bad photo fails the request, naming the file when
    there are several."""
    photos = []
    for upload in uploads:
        try:
            photos.append(_photo_answers(models, upload, explain, overlays, previews))
        except ImageError as exc:
            if len(uploads) > 1:
                exc.message = f"{upload.filename}: {exc.message}"
            raise
        for name, answer in photos[-1].answers.items():
            metrics.predicted(name, answer.label)
    return photos


def _photo_answers(models: list[Model], upload: Upload, explain: Collection[str], overlays: bool,
                   preview: bool) -> PhotoAnswers:
    options = {"explain": explain, "overlays": overlays, "budget": decode_budget()}
    if preview and not any(model.reads_digits for model in models):
        # One decode for the answers and the preview: a phone's HEIC costs a full decode
        # however small the picture asked for (0.46 s of CPU for 2 MB, and as much again
        # for its preview).
        answers, image = classify_and_show(models, upload.data, PREVIEW_SIZE, **options)
        return PhotoAnswers(upload, answers, preview_of(image))
    # The digit reader decodes its own way: its preview is a decode of its own.
    return PhotoAnswers(upload, classify(models, upload.data, **options),
                        preview_data_uri(upload.data) if preview else None)


def preview_data_uri(data: bytes) -> str:
    """A small JPEG of an upload (upright, at most PREVIEW_SIZE), inline in a page or an
    answer: what a browser that cannot show the format (HEIC) displays instead."""
    return preview_of(decode_image(data, max_pixels=current_app.config["MAX_IMAGE_PIXELS"],
                                   draft_size=PREVIEW_SIZE, budget=decode_budget()))


def preview_of(image: Image.Image) -> str:
    """`preview_data_uri` of a photo already decoded (upright RGB); shrinks it in place."""
    image.thumbnail(PREVIEW_SIZE)
    return data_uri(image, "JPEG", quality=85)


def input_data_uri(pixels: np.ndarray) -> str:
    """The pixels a model saw, as a PNG data URI (for the drawing page's preview)."""
    return data_uri(Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels), "PNG")
