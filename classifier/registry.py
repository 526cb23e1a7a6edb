"""Every model directory under one folder, loaded once per process, by name.

Models load in an order that lets them share: a model whose feature extractor is a
loaded model's (the same fingerprint in both cards) becomes a dense head on that
model's network, and models reading other networks' features load last, so those
networks are there to be reused (`classifier.model`).
"""

from __future__ import annotations

from pathlib import Path

from classifier import card as model_card
from classifier.model import Model
from classifier.process_memory import release_free_memory

#: The name that asks for every model that looks at photos (not the digit reader).
EVERY_MODEL = "all"


class ModelRegistry:
    """Every model directory under one folder, by name."""

    def __init__(self, models: dict[str, Model], default: str):
        if default not in models:
            raise LookupError(f"default model {default!r} not found; have {sorted(models)}")
        self.models, self.default = models, default

    @classmethod
    def from_folder(cls, folder: str | Path, default: str, **options) -> ModelRegistry:
        folder = Path(folder)
        models: dict[str, Model] = {}
        cards = {directory: model_card.load(directory)
                 for directory in sorted(p for p in folder.iterdir() if model_card.exists(p))}
        # Models reading other networks' features load last, so those networks are there.
        for directory, card in sorted(cards.items(),
                                      key=lambda item: bool(item[1]["files"].get("extra_features"))):
            loaded = [m.network for m in models.values()]
            lender = next((m for m in models.values() if m.lends_features_to(card)), None)
            model = (Model.on_features_of(lender, directory, card, loaded) if lender
                     else Model.from_directory(directory, loaded=loaded, **options))
            models[model.name] = model
        release_free_memory()
        return cls(models, default)

    def get(self, name: str | None) -> Model:
        """The named model, or the default; raises `KeyError` for an unknown name."""
        return self.models[name or self.default]

    def names(self) -> list[str]:
        return list(self.models)

    def photo_models(self) -> list[Model]:
        """Every model that looks at photos (the digit reader reads one digit)."""
        return [model for model in self.models.values() if not model.reads_digits]

    def chosen(self, name: str | None) -> list[Model]:
        """The models a request's `model` names: one by name, the default for none,
        every photo model for `EVERY_MODEL`; raises `KeyError` for an unknown name."""
        return self.photo_models() if name == EVERY_MODEL else [self.get(name)]
