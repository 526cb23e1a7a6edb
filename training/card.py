"""Model cards as the training commands write them: one builder for every model.

`classifier.card` reads, checks and renders cards, and serving needs it without
TensorFlow; this module is where `training.train`, `training.digits` and
`training.imagenet` make them, so that every card has the same fields in the same
order, says what its model is for and where it falls short, and ends with the
command that made it, quoted so that it can be pasted into a shell.

A model's intended use and limitations are written by people, in
`training/cards/NAME.md` (NAME: the model's folder name): a `## Intended use`
paragraph and a `## Limitations` list. The card carries them as
`intended_use` (a string) and `limitations` (a list of strings), and MODEL_CARD.md
shows them right after "At a glance", before any figure. After editing such a file:

    python -m training.card models/hotdog [models/pizza ...]

copies it into each card and renders MODEL_CARD.md again; nothing is retrained.
With `--plots` it also draws each card's confusion-matrix plot again, from the
matrix the card stores (`training.evaluate.redraw_plots`), after the plotting code
changed.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from classifier import card as model_card
from classifier.settings import PROJECT_ROOT, shared_dir

log = logging.getLogger("training.card")

NOTES_DIR = Path(__file__).with_name("cards")
INTENDED_USE, LIMITATIONS = "## Intended use", "## Limitations"


# == Building a card ============================================================

def build(*, name: str, title: str, description: str, classes: list[str], files: dict,
          input: dict, architecture: dict, base_weights: dict, training: dict,
          metrics: dict, variants: list[dict], reproduce: str,
          calibration: dict | None = None, plots: dict | None = None) -> dict:
    """A model card, its fields in the order every card has them, with the model's
    intended use and limitations from training/cards/NAME.md. Its metrics describe the
    first shipped file (`files["variants"]` keeps the ship rule's order: int8 first)."""
    card = {"schema_version": 1, "name": name, "title": title,
            "version": model_card.new_version(), "description": description,
            **notes(name),
            "classes": classes, "files": files, "input": input, "architecture": architecture,
            "base_weights": base_weights, "training": training, "metrics": metrics,
            "metrics_variant": next(iter(files["variants"])),
            "calibration": calibration, "plots": plots,
            "variants": variants, "reproduce": reproduce}
    return {key: value for key, value in card.items() if value is not None}


def photo_input(size: tuple[int, int], preprocessing: str) -> dict:
    """The card's `input` for a photo model: what `classifier.intake` makes of any
    upload, which is what training read too."""
    return {"width": size[0], "height": size[1], "channels": 3, "dtype": "uint8",
            "color": "RGB",
            "resize": "EXIF orientation applied, transparency composited on white, "
                      "the whole photo resized (bilinear, no crop) by classifier.intake",
            "preprocessing": preprocessing}


def reproduce_command(module: str, argv: Sequence[str]) -> str:
    """The command line of this run as one can paste it: every argument quoted for a
    POSIX shell, and this machine's paths written the way the Makefile gives them
    (`../shared/...`, project files relative to the project), so the card reads the
    same wherever it was trained."""
    shared = sorted({str(shared_dir().resolve()), str(shared_dir())}, key=len, reverse=True)
    words = []
    for word in argv:
        for prefix in shared:
            word = word.replace(prefix, "../shared")
        words.append(word.replace(str(PROJECT_ROOT) + os.sep, ""))
    return shlex.join(["python", "-m", module, *words])


# == Intended use and limitations ===============================================

def with_command(reproduce: str, command: str, marker: str) -> str:
    """A card's `reproduce` with `command` last, in place of an earlier line holding
    `marker` (the same step run again)."""
    return "\n".join([*(line for line in reproduce.splitlines() if marker not in line), command])


def notes(name: str) -> dict:
    """The card's `intended_use` and `limitations` for model `name`, from
    training/cards/NAME.md; none if there is no such file (a model of one's own may go
    without, and the run says so)."""
    path = NOTES_DIR / f"{name}.md"
    if not path.is_file():
        log.warning("no %s: the card will not say what the model is for or where it "
                    "falls short", os.path.relpath(path, PROJECT_ROOT))
        return {}
    return read_notes(path)


def read_notes(path: Path) -> dict:
    """Parse a notes file: a `## Intended use` paragraph, then a `## Limitations` list of
    `- ` items (wrapped lines indented). Lines before the first section speak to
    whoever edits the file and stay out of the card. Raises ValueError when the file
    has another shape, so a typo cannot drop a limitation unnoticed."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line.strip(), [])
        elif current is not None:
            current.append(line)
    if list(sections) != [INTENDED_USE, LIMITATIONS]:
        raise ValueError(f"{path}: needs the sections '{INTENDED_USE}' and '{LIMITATIONS}', "
                         f"in that order and no others (found {list(sections)})")
    paragraphs = [p for p in re.split(r"\n\s*\n", "\n".join(sections[INTENDED_USE])) if p.strip()]
    if len(paragraphs) != 1:
        raise ValueError(f"{path}: the intended use is one paragraph")
    items: list[str] = []
    for line in sections[LIMITATIONS]:
        if line.startswith("- "):
            items.append(line[2:].strip())
        elif line.startswith(" ") and items and line.strip():
            items[-1] += " " + line.strip()
        elif line.strip():
            raise ValueError(f"{path}: each limitation is a '- ' item, continued on indented "
                             f"lines; not {line!r}")
    if not items:
        raise ValueError(f"{path}: no limitations listed")
    return {"intended_use": " ".join(paragraphs[0].split()), "limitations": items}


def with_notes(card: dict, written: dict) -> dict:
    """`card` with `written` (its intended use and limitations) in their place, right
    after the description, as `build` puts them."""
    placed = {}
    for key, value in card.items():
        if key not in written:
            placed[key] = value
        if key == "description":
            placed.update(written)
    return placed


# == Writing ====================================================================

def summary(card: dict) -> str:
    """The card up to its training details: what a training run prints when it ends."""
    return model_card.to_markdown(card).split("## Training")[0]


# == Refreshing shipped cards ===================================================

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.card",
        description="Copy each model's training/cards/NAME.md into its card and render "
                    "MODEL_CARD.md again, without retraining.")
    parser.add_argument("model_dirs", type=Path, nargs="+", metavar="MODEL_DIR")
    parser.add_argument("--plots", action="store_true",
                        help="also draw each card's confusion matrix plot again from the matrix "
                             "it stores (the ROC curve needs every photo's score: it stays)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    for directory in args.model_dirs:
        card = model_card.load(directory)
        found = notes(card["name"])
        if not found:
            return 2
        model_card.write(directory, with_notes(card, found))
        log.info("%s: its intended use and %d limitations, from training/cards/%s.md",
                 directory, len(found["limitations"]), card["name"])
        if args.plots:
            from training.evaluate import redraw_plots  # matplotlib: only when asked

            for path in redraw_plots(directory):
                log.info("%s: drawn again from the card's confusion matrix", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
