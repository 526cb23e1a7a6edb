"""Every model directory under one folder, loaded once per process, by name.

Models load in an order that lets them share: a model whose feature extractor is a
loaded model's (the same fingerprint in both cards) becomes a dense head on that
model's network, and models reading other networks' features load last, so those
networks are there to be reused (`classifier.model`). Models made on the server
(`classifier.made_models`) load last, as heads on the network they were made on, and
each worker picks up those made or removed while it runs (`ModelRegistry.refresh`).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from classifier import card as model_card
from classifier.model import Model
from classifier.process_memory import release_free_memory

log = logging.getLogger(__name__)

#: How often a worker looks for models made or removed meanwhile (`refresh`).
REFRESH_SECONDS = 1.0
#: The name that asks for every model that looks at photos (not the digit reader).
EVERY_MODEL = "all"


class ModelRegistry:
    """Every model directory under one folder, by name. Models made on the server
    (`classifier.made_models`) come and go while it runs: `refresh` picks them up."""

    def __init__(self, models: dict[str, Model], default: str, folder: Path | None = None,
                 options: dict | None = None):
        if default not in models:
            raise LookupError(f"default model {default!r} not found; have {sorted(models)}")
        self.models, self.default = models, default
        self.folder, self.options = folder, options or {}
        self._seen = self._folder_stamp()
        self._checked = time.monotonic()
        self._refreshing = threading.Lock()

    @classmethod
    def from_folder(cls, folder: str | Path, default: str, **options) -> ModelRegistry:
        folder = Path(folder)
        models: dict[str, Model] = {}
        # Made models load last, as heads on the shipped networks they were made on;
        # models reading other networks' features load after those networks.
        for directory, card in sorted(_cards(folder).items(), key=lambda item: (
                model_card.is_made_here(item[1]), bool(item[1]["files"].get("extra_features")))):
            if model_card.is_made_here(card):
                _load_made(directory, card, models, options)
            else:  # a shipped model that cannot load is a broken release: fail loudly
                model = _load(directory, card, models, options)
                models[model.name] = model
        release_free_memory()
        return cls(models, default, folder, options)

    def refresh(self, every: float = REFRESH_SECONDS) -> None:
        """Load the made models added to the folder and drop those removed, at most once
        per `every` seconds, and only when the folder changed (renaming a model in or
        out changes its time stamp). The model dict is swapped whole, so a request
        reading it meanwhile sees the old one or the new one. Threads of one worker
        check one at a time; the others go on with the models they have."""
        now = time.monotonic()
        if self.folder is None or now - self._checked < every or not self._refreshing.acquire(False):
            return
        try:
            self._checked = now
            stamp = self._folder_stamp()
            if stamp != self._seen:
                self.models = self._rescanned()
                self._seen = stamp
        finally:
            self._refreshing.release()

    def _rescanned(self) -> dict[str, Model]:
        made = {directory: card for directory, card in _cards(self.folder, while_serving=True).items()
                if model_card.is_made_here(card)}
        models = {name: model for name, model in self.models.items()
                  if not model_card.is_made_here(model.card)}
        for directory, card in sorted(made.items()):
            current = self.models.get(card["name"])
            if current is not None and current.version == card["version"]:
                models[card["name"]] = current
            elif card["name"] not in models:
                _load_made(directory, card, models, self.options)
        return models

    def _folder_stamp(self) -> int | None:
        try:
            return self.folder.stat().st_mtime_ns if self.folder else None
        except OSError:
            return None

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


def _load_made(directory: Path, card: dict, models: dict[str, Model], options: dict) -> None:
    """Add the made model in `directory` to `models`, or pass over it with a log line: one
    removed while loading (next time), or damaged (a file cut short by a crash), must not
    stop the server from starting or fail every request's refresh."""
    try:
        models[card["name"]] = _load(directory, card, models, options)
    except Exception as exc:  # any damage: numpy, zip, JSON or missing keys
        log.warning("could not load the made model in %s: %s: %s", directory, type(exc).__name__, exc)


def _cards(folder: Path, *, while_serving: bool = False) -> dict[Path, dict]:
    """Each model directory's card; hidden folders (a model being made or removed)
    aside. `while_serving`, a card that cannot be read (its model removed meanwhile)
    is passed over instead of failing."""
    cards = {}
    for directory in sorted(folder.iterdir()):
        if directory.name.startswith(".") or not model_card.exists(directory):
            continue
        try:
            cards[directory] = model_card.load(directory)
        except (OSError, ValueError):
            if not while_serving:
                raise
            log.warning("passing over %s: its card cannot be read", directory)
    return cards


def _load(directory: Path, card: dict, models: dict[str, Model], options: dict) -> Model:
    """A model, as a head on a loaded model's network when it can be (`Model.lends_features_to`).
    Its extra feature networks are any loaded model's, extras included: models made on
    the hot dog network before it was retrained share one copy of the old one."""
    loaded = list({id(n): n for m in models.values() for n in m.networks}.values())
    lender = next((m for m in models.values() if m.lends_features_to(card)), None)
    return (Model.on_features_of(lender, directory, card, loaded) if lender
            else Model.from_directory(directory, loaded=loaded, **options))
