"""Evaluate a model directory on a folder of labelled photos.

    python -m training.evaluate models/hotdog ../shared/datasets/hotdog/test \\
        --subset "food=dtu_hotdog_*,dtu_chilidog_*,dtu_frankfurter_*,dtu_food_*" --out build/eval

Runs the model exactly as the server does (LiteRT, same intake) and reports
accuracy, per-class precision / recall / F1, the confusion matrix, ROC AUC for
two classes, results per file-name source and per named subset, and every
misclassified file with its scores. Writes `report.json` and, with --out, PNG
plots: confusion matrix, ROC curve and a contact sheet of the worst mistakes.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import textwrap
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from classifier import calibration
from classifier import card as model_card
from classifier.model import Model
from classifier.settings import shared_dir
from training import dataset
from training.dataset import Example

log = logging.getLogger(__name__)


# -- predicting --------------------------------------------------------------

def predict_pixels(model: Model, pixels: np.ndarray) -> np.ndarray:
    """Class probabilities (N x classes) for uint8 pixels already at the input size."""
    return np.array([[p.scores[label] for label in model.labels]
                     for p in model.predict_batch(list(pixels))], np.float32)


def median_latency_ms(model: Model, pixels: np.ndarray, repeats: int = 50) -> float:
    """Median wall time of one single-image inference, after the engine's warm-up."""
    timings = []
    for i in range(repeats):
        image = pixels[i % len(pixels)]
        start = time.perf_counter()
        model.predict_pixels(image)
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def variant_row(engine: Model, path: Path, pixels: np.ndarray, accuracy: float,
                evaluated_on: str, **extra) -> dict:
    """One row of the card's variants table: the file's size, its accuracy (and any
    `extra` figures, such as subsets) and its median latency here, on `pixels`."""
    row = {"name": engine.name, "size_bytes": path.stat().st_size,
           "accuracy": float(accuracy), "evaluated_on": evaluated_on, **extra,
           "latency_ms_p50": round(median_latency_ms(engine, pixels), 3)}
    log.info("%-8s %6.2f MB  accuracy %.4f  p50 %.2f ms", row["name"], row["size_bytes"] / 1e6,
             row["accuracy"], row["latency_ms_p50"])
    return row


# -- scoring -----------------------------------------------------------------

def score(probabilities: np.ndarray, labels: np.ndarray, examples: Sequence[Example],
          classes: Sequence[str], dataset_name: str,
          subsets: dict[str, list[str]] | None = None, not_sure_below: float | None = None
          ) -> dict:
    """Model-card-shaped metrics for predictions on a labelled set; with the model's
    `not_sure_below`, also how often it is "not sure" and how right its verdicts are
    (the probabilities calibrated as the server gives them)."""
    from sklearn.metrics import (
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    predicted = probabilities.argmax(axis=1)
    correct = predicted == labels
    indices = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=indices, zero_division=0)
    result = {
        "dataset": dataset_name,
        "n": len(labels),
        "accuracy": float(correct.mean()),
        "per_class": {classes[i]: {"precision": float(precision[i]), "recall": float(recall[i]),
                                   "f1": float(f1[i]), "support": int(support[i])}
                      for i in indices},
        "confusion_matrix": {"labels": list(classes),
                             "matrix": confusion_matrix(labels, predicted, labels=indices).tolist()},
    }
    if not_sure_below is not None:
        result["not_sure"] = calibration.not_sure_figures(probabilities, labels, not_sure_below)
    if len(classes) == 2 and len(set(labels.tolist())) == 2:
        result["roc_auc"] = float(roc_auc_score(labels, probabilities[:, 1]))
    if examples:
        by_source: dict[str, list[bool]] = defaultdict(list)
        for example, ok in zip(examples, correct, strict=True):
            by_source[example.source].append(bool(ok))
        result["by_source"] = {source: {"n": len(oks), "accuracy": sum(oks) / len(oks)}
                               for source, oks in sorted(by_source.items())}
    if subsets:
        result["subsets"] = {}
        for name, patterns in subsets.items():
            in_subset = dataset.matches(patterns)
            chosen = np.array([in_subset(e) for e in examples])
            if chosen.any():
                result["subsets"][name] = {
                    "n": int(chosen.sum()), "accuracy": float(correct[chosen].mean()),
                    "note": "files matching " + ", ".join(patterns)}
    return result


def held_out_logits(model: Model, pixels: np.ndarray) -> np.ndarray:
    """`model`'s logits (up to a constant per photo) for held-out `pixels`, what
    `calibration_card` fits on; `model` loaded without a card, so that it scores raw."""
    return calibration.logits_of(predict_pixels(model, pixels))


def calibration_card(answers: dict[str, tuple[np.ndarray, np.ndarray]], target: float,
                     held_out: str) -> dict:
    """The card's `calibration` (`classifier.calibration`): for each file (by variant)
    a temperature and a "not sure" level for `target`, fitted on its answers to
    held-out photos, given as (logits, true labels)."""
    variants = {variant: calibration.calibrate(logits, labels, target).as_card()
                for variant, (logits, labels) in answers.items()}
    return {"target": target, "rule": calibration.rule(target),
            "held_out": held_out, "variants": variants}


def find_mistakes(probabilities: np.ndarray, labels: np.ndarray, examples: Sequence[Example],
             classes: Sequence[str]) -> list[dict]:
    """Misclassified files, most confidently wrong first."""
    wrong = np.flatnonzero(probabilities.argmax(axis=1) != labels)
    rows = [{"file": examples[i].path.name, "true": classes[labels[i]],
             "predicted": classes[int(probabilities[i].argmax())],
             "scores": {c: round(float(p), 4) for c, p in zip(classes, probabilities[i], strict=True)},
             "true_score": float(probabilities[i, labels[i]])} for i in wrong]
    return sorted(rows, key=lambda row: row["true_score"])


# -- plots -------------------------------------------------------------------

#: The metric whose confusion matrix a card's plot shows: the test photos, else validation
#: (training.train and training.digits draw it; `redraw_plots` draws it again).
PLOTTED_SPLITS = ("test", "validation")
#: Characters per line of a plot's title in a 5-inch figure (at 11 points, with room to spare).
TITLE_WIDTH = 52


def plotted_split(metrics: dict) -> str:
    """Which of a card's metrics its confusion-matrix plot shows."""
    return next(split for split in PLOTTED_SPLITS if split in metrics)


def plot_title(result: dict, width: int = TITLE_WIDTH) -> str:
    """A plot's title, on as many lines as it needs to fit `width` characters: the
    data (several folders named by the first and their count), then the accuracy."""
    folders = result["dataset"].split(" + ")
    data = folders[0] + (f" and {len(folders) - 1} more folders" if len(folders) > 1 else "")
    accuracy = f"accuracy {100 * result['accuracy']:.2f} % on {result['n']:,} images"
    return textwrap.fill(data + ":", width, break_on_hyphens=False) + "\n" + accuracy


def confusion_matrix_figure(result: dict):
    """The confusion matrix of a card-shaped `result` (its `confusion_matrix`, `dataset`,
    `n` and `accuracy`) as a matplotlib figure, sized to its classes, with its class
    names in words and a title that fits. Needs nothing but the result, so a shipped
    card's plot can be drawn again (`redraw_plots`)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = [label.replace("_", " ") for label in result["confusion_matrix"]["labels"]]
    side = max(5.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(side, side - 0.5))
    ConfusionMatrixDisplay(np.array(result["confusion_matrix"]["matrix"]), display_labels=labels).plot(
        ax=ax, colorbar=False, cmap="Blues",
        text_kw={"fontsize": 10 if len(labels) <= 5 else 9})
    ax.set_xlabel("answer")
    ax.set_ylabel("true class")
    ax.set_title(plot_title(result, int(TITLE_WIDTH * side / 5)), fontsize=11)
    fig.tight_layout()
    return fig


def save_plots(result: dict, probabilities: np.ndarray, labels: np.ndarray,
               examples: Sequence[Example], out_dir: Path, *, mistakes: bool = True
               ) -> list[Path]:
    """Confusion matrix, ROC curve (two classes) and, with `mistakes`, a contact sheet
    of the worst mistakes (photos from the data set: never for a model directory)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt
    from sklearn.metrics import RocCurveDisplay

    written = [out_dir / "confusion_matrix.png"]
    fig = confusion_matrix_figure(result)
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)

    if "roc_auc" in result:
        fig, ax = plt.subplots(figsize=(5, 4.5))
        RocCurveDisplay.from_predictions(labels, probabilities[:, 1], ax=ax,
                                         name=result["confusion_matrix"]["labels"][1])
        ax.set_title(f"ROC, AUC {result['roc_auc']:.4f}")
        fig.tight_layout()
        written.append(out_dir / "roc_curve.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)

    wrong = find_mistakes(probabilities, labels, examples,
                          result["confusion_matrix"]["labels"]) if mistakes else []
    if wrong:
        written.append(out_dir / "worst_mistakes.png")
        _contact_sheet(wrong[:24], {e.path.name: e.path for e in examples}, written[-1])
    return written


def redraw_plots(model_dir: Path) -> list[Path]:
    """Draw a model directory's confusion-matrix plot again from the matrix its card
    stores (no photo, no model run): after the plotting code changes, shipped cards
    get the new drawing without retraining. The ROC curve needs every photo's score,
    which no card keeps, so it stays as it was drawn. Returns the files written."""
    import matplotlib.pyplot as plt

    card = model_card.load(model_dir)
    written = []
    if "confusion_matrix" in card.get("plots", {}):
        fig = confusion_matrix_figure(card["metrics"][plotted_split(card["metrics"])])
        written.append(Path(model_dir) / card["plots"]["confusion_matrix"])
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    return written


def _contact_sheet(rows: list[dict], paths: dict[str, Path], out: Path,
                   columns: int = 6, cell: int = 180) -> None:
    from PIL import Image, ImageDraw

    sheet_rows = (len(rows) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell, sheet_rows * (cell + 30)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, row in enumerate(rows):
        x, y = (i % columns) * cell, (i // columns) * (cell + 30)
        with Image.open(paths[row["file"]]) as photo:
            photo = photo.convert("RGB")
            photo.thumbnail((cell - 6, cell - 6))
            sheet.paste(photo, (x + 3, y + 3))
        draw.text((x + 3, y + cell - 2), f"true {row['true']} ({row['true_score']:.2f})", fill="black")
        draw.text((x + 3, y + cell + 12), row["file"][:28], fill="gray")
    sheet.save(out)


# -- command line -------------------------------------------------------------

def parse_mapping(items: Sequence[str], what: str) -> dict[str, str]:
    """['a=b', ...] -> {'a': 'b'}; used for --label-map and --subset."""
    mapping = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise SystemExit(f"{what} takes NAME=VALUE, got {item!r}")
        mapping[key] = value
    return mapping


def parse_subsets(items: Sequence[str]) -> dict[str, list[str]]:
    return {name: value.split(",") for name, value in parse_mapping(items, "--subset").items()}


def evaluate_folder(model: Model, data_dir: Path, *, label_map: dict[str, str] | None = None,
                    subsets: dict[str, list[str]] | None = None, only: Sequence[str] = (),
                    add: Sequence[str] = (),
                    progress=iter) -> tuple[dict, np.ndarray, np.ndarray, list[Example]]:
    examples = dataset.scan_labelled(data_dir, model.labels, label_map)
    dataset.add_photos(examples, list(model.labels), add, new_classes=False)
    if only:
        examples = dataset.only_matching(examples, only)
        if not examples:
            raise dataset.DataError(f"no photo in {data_dir} matches {', '.join(only)}")
    pixels, labels, examples, skipped = dataset.load_arrays(examples, model.input_size, progress)
    if skipped:
        log.warning("%d unreadable files skipped", len(skipped))
    probabilities = predict_pixels(model, pixels)
    name = dataset.describe_location(data_dir, shared_dir())
    if add:
        name += "".join(" + " + dataset.describe_location(Path(item.partition("=")[2]), shared_dir())
                        for item in add)
    if only:
        name += f" ({', '.join(only)} only)"
    level = model.not_sure_below if model.calibration else None
    return (score(probabilities, labels, examples, model.labels, name, subsets, level),
            probabilities, labels, examples)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("data_dir", type=Path, help="one sub-folder per class")
    parser.add_argument("--label-map", nargs="*", default=[], metavar="FOLDER=CLASS",
                        help="treat a sub-folder as one of the model's classes")
    parser.add_argument("--subset", nargs="*", default=[], metavar="NAME=GLOB[,GLOB]",
                        help="also report accuracy on the files matching these name patterns")
    parser.add_argument("--only", nargs="*", default=[], metavar="GLOB",
                        help="evaluate only the photos whose names match these patterns")
    parser.add_argument("--out", type=Path, help="folder for report.json and the plots")
    parser.add_argument("--record", metavar="NAME",
                        help="also record the result in the model card's metrics as NAME")
    parser.add_argument("--note", help="a note on the data, kept with a --record result")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from tqdm import tqdm

    model = Model.from_directory(args.model_dir)
    try:
        result, probabilities, labels, examples = evaluate_folder(
            model, args.data_dir, label_map=parse_mapping(args.label_map, "--label-map"),
            subsets=parse_subsets(args.subset), only=args.only,
            progress=lambda xs: tqdm(xs, desc="reading"))
    except dataset.DataError as exc:
        parser.error(str(exc))
    report = {"model": model.describe(), **result,
              "mistakes": find_mistakes(probabilities, labels, examples, model.labels)}
    print(f"{result['dataset']}: accuracy {100 * result['accuracy']:.2f} % on {result['n']} images")
    for name, sub in result.get("subsets", {}).items():
        print(f"  subset {name}: {100 * sub['accuracy']:.2f} % on {sub['n']}")
    if "roc_auc" in result:
        print(f"  ROC AUC {result['roc_auc']:.4f}")
    print("  confusion matrix (rows true):", result["confusion_matrix"]["matrix"])
    print(f"  {len(report['mistakes'])} mistakes")
    if args.record:
        card = model_card.load(args.model_dir)
        card["metrics"][args.record] = {**result, **({"note": args.note} if args.note else {})}
        model_card.write(args.model_dir, card)
        print(f"recorded as {args.record!r} in {args.model_dir / model_card.CARD_FILE}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        written = save_plots(result, probabilities, labels, examples, args.out)
        print("wrote", ", ".join(str(p) for p in [args.out / "report.json", *written]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
