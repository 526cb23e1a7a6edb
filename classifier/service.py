"""Classifying a photo: the one path every caller takes (the API, the pages, batch).

`classify` decodes the photo once, at a scale that serves every model asked, runs
each network once however many of the models read it, and returns each model's
`Answer`: its scores, whether it is sure, and, for the models asked to explain,
where in the photo it saw its answer. Callers only parse requests and write answers.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from classifier.decode_cost import DecodeBudget
from classifier.explain import explanation
from classifier.intake import decode_image, draft_size
from classifier.model import Model, Prediction, predict_together

#: Classes an answer lists when the caller does not say: every class of a small
#: model, the five best of a large one.
DEFAULT_TOP_K = 5
#: The most classes an answer can list: every class of the largest model (ImageNet's 1000).
MAX_TOP_K = 1000


@dataclass(frozen=True)
class Answer:
    """One model's answer about one photo. `not_sure` when its best score is under
    the level its card states; `explanation` (a class-activation map) when asked for;
    `pixels` are what the model saw."""

    model: Model
    prediction: Prediction
    pixels: np.ndarray
    explanation: dict | None = None

    @property
    def label(self) -> str:
        return self.prediction.label

    @property
    def not_sure(self) -> bool:
        return self.prediction.top[0][1] < self.model.not_sure_below

    def as_dict(self, top_k: int | None = None) -> dict:
        """The answer as the API gives it: the `top_k` best classes (by default every
        class up to DEFAULT_TOP_K), not_sure, and the explanation if there is one."""
        answer = self.prediction.as_dict(top_k or min(DEFAULT_TOP_K, len(self.model.labels)))
        answer["not_sure"] = self.not_sure
        if self.explanation is not None:
            answer["explanation"] = self.explanation
        return answer


def classify(models: Sequence[Model], data: bytes, *, explain: Collection[str] = (),
             overlays: bool = True, budget: DecodeBudget | None = None) -> dict[str, Answer]:
    """Every model's answer about the photo in `data`, by model name; the models named
    in `explain` also say where they saw it (with a heat layer to show, unless not
    `overlays`). Raises `intake.ImageError` for a file that is not a usable photo;
    `budget` is the request's decoding budget."""
    return _answers(models, model_inputs(models, data, budget), explain, overlays)


def classify_and_show(models: Sequence[Model], data: bytes, show_size: tuple[int, int], *,
                      explain: Collection[str] = (), overlays: bool = True,
                      budget: DecodeBudget | None = None) -> tuple[dict[str, Answer], Image.Image]:
    """`classify`, for a caller that also shows the photo (a preview of `show_size`):
    one decode, at a scale that serves that size too, which every model reads from as
    several models read from one. Returns the answers and the decoded photo (upright,
    RGB, at least `show_size` where the photo is that large). Photo models only: the
    digit reader decodes its own way (`Model.load`)."""
    if any(model.reads_digits for model in models):
        raise ValueError("the digit reader decodes a photo its own way")
    image = decoded(models, data, budget, also=show_size)
    inputs = {model.name: model.prepare(image) for model in models}
    return _answers(models, inputs, explain, overlays), image


def model_inputs(models: Sequence[Model], data: bytes, budget: DecodeBudget | None
                 ) -> dict[str, np.ndarray]:
    """Each model's pixels from one decode. One model reads the photo its own way (the
    digit reader finds the digit; a photo model decodes at its own scale, exactly as
    in training); several decode once at a scale that serves the largest input, and
    each resizes from that."""
    if len(models) == 1:
        (model,) = models
        return {model.name: model.load(data, budget)}
    image = decoded(models, data, budget)
    return {model.name: model.prepare(image) for model in models}


def decoded(models: Sequence[Model], data: bytes, budget: DecodeBudget | None, *,
            also: tuple[int, int] | None = None) -> Image.Image:
    """The photo decoded once at a scale that serves every model's input (and `also`)."""
    sizes = [draft_size(model.input_size) for model in models] + ([also] if also else [])
    return decode_image(data, max_pixels=max(m.max_pixels for m in models),
                        draft_size=max(sizes, key=lambda size: size[0] * size[1]), budget=budget)


def _answers(models: Sequence[Model], inputs: dict[str, np.ndarray], explain: Collection[str],
             overlays: bool) -> dict[str, Answer]:
    predictions = predict_together(models, inputs, features=set(explain))
    return {model.name: Answer(model, predictions[model.name], inputs[model.name],
                               _explanation(model, predictions[model.name], overlays)
                               if model.name in explain else None)
            for model in models}


def _explanation(model: Model, prediction: Prediction, overlay: bool) -> dict:
    return explanation(prediction.features, model.dense_kernel,
                       model.labels.index(prediction.label), prediction.label, overlay=overlay)
