"""What the page and the API share: which model(s) a request means, and running them."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from flask import current_app, g, request
from PIL import Image

from classifier.decode_cost import DecodeBudget
from classifier.engine import Model, ModelRegistry, Prediction, predict_together
from classifier.explain import explanation
from classifier.intake import ImageError, decode_image, draft_size
from webapp import metrics, tokens
from webapp.errors import RequestError
from webapp.uploads import Upload

EXTENSION = "classifier"
ALL_MODELS = "all"
#: Classes shown per answer when the request does not say: every class of a small
#: model, the five best of a large one.
DEFAULT_TOP_K = 5
#: The most classes an answer can list: every class of the largest model (ImageNet's 1000).
MAX_TOP_K = 1000
PREVIEW_SIZE = (480, 480)


@dataclass
class Answer:
    """One photo's predictions, and the pixels each model saw, by model name."""

    upload: Upload
    predictions: dict[str, Prediction]
    inputs: dict[str, np.ndarray]

    @cached_property
    def digest(self) -> str:
        """The photo's SHA-256: what feedback tokens refer to."""
        return tokens.photo_hash(self.upload.data)

    def answer(self, model: Model, top_k: int | None) -> dict:
        """A model's answer as the API and the pages give it: the best classes, a token
        for feedback on it and, when the prediction kept its feature map, an explanation."""
        prediction = self.predictions[model.name]
        answer = prediction.as_dict(default_top_k(model, top_k))
        answer["not_sure"] = prediction.top[0][1] < model.not_sure_below
        answer["feedback_token"] = tokens.sign(model, prediction, self.digest)
        if prediction.features is not None:
            answer["explanation"] = explanation(prediction.features, model.head_file,
                                                model.labels.index(prediction.label), prediction.label)
        return answer


def registry() -> ModelRegistry:
    return current_app.extensions[EXTENSION]


def requested_field(name: str) -> str | None:
    """A setting from the query string, or from the form of a multipart upload."""
    return request.args.get(name) or (
        request.form.get(name) if request.mimetype == "multipart/form-data" else None)


def models_for_request() -> list[Model]:
    """The model named by the `model` field, every model for `all`, else the default."""
    name = requested_field("model")
    reg = registry()
    if name == ALL_MODELS:  # every model that looks at photos (not the digit reader)
        return [m for m in map(reg.get, reg.names()) if not m.reads_digits]
    try:
        return [reg.get(name)]
    except KeyError:
        raise RequestError(400, "unknown_model", f"There is no model called {_quoted(name)}; "
                           f"available: {', '.join(reg.names())} (or {ALL_MODELS}).") from None


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


def default_top_k(model: Model, top_k: int | None) -> int:
    return top_k or min(DEFAULT_TOP_K, len(model.labels))


def explain_requested() -> bool:
    return requested_field("explain") == "true"


def decode_budget() -> DecodeBudget:
    """The decoding work this request may still spend, shared by all its photos."""
    if "decode_budget" not in g:
        g.decode_budget = DecodeBudget(current_app.config["MAX_DECODE_WORK"])
    return g.decode_budget


def classify_uploads(models: list[Model], uploads: list[Upload], *,
                     explain: bool = False) -> list[Answer]:
    """Predict every upload with every model, decoding each photo once; the first bad
    photo fails the request, naming the file when there are several. With `explain`,
    predictions keep the feature map their explanation is drawn from."""
    answers = []
    for upload in uploads:
        try:
            answers.append(Answer(upload, *predict_all(models, upload.data, explain, decode_budget())))
        except ImageError as exc:
            if len(uploads) > 1:
                exc.message = f"{upload.filename}: {exc.message}"
            raise
    return answers


def predict_all(models: list[Model], data: bytes, explain: bool, budget: DecodeBudget
                ) -> tuple[dict[str, Prediction], dict[str, np.ndarray]]:
    if len(models) == 1:
        inputs = {models[0].name: models[0].load(data, budget)}
    else:
        # One decode, at a scale that serves the largest input; each model resizes from it.
        largest = max((m.input_size for m in models), key=lambda size: size[0] * size[1])
        image = decode_image(data, max_pixels=current_app.config["MAX_IMAGE_PIXELS"],
                             draft_size=draft_size(largest), budget=budget)
        inputs = {model.name: model.prepare(image) for model in models}
    predictions = predict_together(models, inputs, features=explain)
    for name, prediction in predictions.items():
        metrics.predicted(name, prediction.label)
    return predictions, inputs


def preview_data_uri(data: bytes) -> str:
    """A small JPEG of an upload (upright, at most PREVIEW_SIZE), inline in a page or an
    answer: what a browser that cannot show the format (HEIC) displays instead."""
    image = decode_image(data, max_pixels=current_app.config["MAX_IMAGE_PIXELS"],
                         draft_size=PREVIEW_SIZE, budget=decode_budget())
    image.thumbnail(PREVIEW_SIZE)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def input_data_uri(pixels: np.ndarray) -> str:
    """The pixels a model saw, as a PNG data URI (for the drawing page's preview)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
