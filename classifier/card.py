"""Model cards: the JSON that travels with every model directory.

`model_card.json` is what the engine reads (class names, file names, input
size) and what people read (how the model was trained and how well it does);
`MODEL_CARD.md` is the same facts rendered for humans. Its shape is fixed by
`model_card.schema.json` beside this file.
"""

from __future__ import annotations

import json
from pathlib import Path

CARD_FILE = "model_card.json"
MARKDOWN_FILE = "MODEL_CARD.md"
SCHEMA_FILE = Path(__file__).with_name("model_card.schema.json")

# What the engine needs from a card; the full schema is checked by `validate`.
_REQUIRED = ("name", "title", "version", "classes", "files", "input")


def new_version() -> str:
    """A model version: when it was made, to the second (two trainings on one day differ)."""
    import datetime as dt

    return dt.datetime.now().strftime("%Y-%m-%d.%H%M%S")


def exists(directory: Path) -> bool:
    return (Path(directory) / CARD_FILE).is_file()


def is_made_here(card: dict) -> bool:
    """Whether the card is a model made on the server (`classifier.made_models`), which
    the server may add and remove while it runs, rather than a shipped one."""
    return "made" in card


def load(directory: str | Path) -> dict:
    """Read a model directory's card; raises ValueError if it lacks what serving needs."""
    path = Path(directory) / CARD_FILE
    card = json.loads(path.read_text(encoding="utf-8"))
    missing = [key for key in _REQUIRED if key not in card]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}")
    return card


def validate(card: dict) -> None:
    """Check a card against the full JSON schema (raises jsonschema.ValidationError)."""
    import jsonschema  # a development dependency: serving only needs `load`

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.validate(card, schema)


def write(directory: str | Path, card: dict) -> None:
    """Write the card as JSON and as Markdown, after checking it against the schema."""
    validate(card)
    directory = Path(directory)
    (directory / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (directory / MARKDOWN_FILE).write_text(to_markdown(card), encoding="utf-8")


def describe_classes(classes: list[str], shown: int = 12) -> str:
    if len(classes) <= shown:
        return ", ".join(classes)
    return f"{len(classes)} classes ({', '.join(classes[:5])}, ...; all in labels.txt)"


def sentence(words: str) -> str:
    """`words` ending as a sentence does: "Is it a pizza?" stays, "Pizza" gets its full stop."""
    return words if words.endswith((".", "?", "!")) else words + "."


def to_markdown(card: dict) -> str:
    """Render the card for people: the facts first, then how to reproduce them."""
    inp, training, metrics = card["input"], card["training"], card["metrics"]
    lines = [
        f"# Model card: {card['name']} (version {card['version']})", "",
        f"**{sentence(card['title'])}** {card['description']}", "",
        "## At a glance", "",
        f"- **Classes:** {describe_classes(card['classes'])}",
        f"- **Input:** {inp['width']}x{inp['height']} RGB, {inp['dtype']} pixels 0-255; "
        f"{inp['resize']}",
        f"- **Preprocessing:** {inp['preprocessing']}",
        f"- **Network:** {card['architecture']['summary']}",
        "- **Shipped files:** " + ", ".join(
            f"`{file}` ({name})" for name, file in card["files"]["variants"].items())
        + "; the server times them at start-up and runs the faster on its CPU",
        *(f"- **Also read:** `{extra['file']}`, a copy of `{extra['from']}`, "
          f"{extra['network']}: the head reads its features too"
          for extra in card["architecture"].get("extra_features", [])),
        f"- **Results below:** the {card['metrics_variant']} variant; the variants table "
        "compares them all",
    ]
    calibrated = card.get("calibration")
    if calibrated:
        lines.append(f"- **Not sure:** {not_sure_words(card)}")
    if "intended_use" in card:  # what a model is for comes before how well it does it
        lines += ["", "## Intended use", "", card["intended_use"], "", "## Limitations", "",
                  *(f"- {item}" for item in card["limitations"])]
    lines += [
        "",
        "## Results", "",
        "| evaluation set | images | accuracy | not sure | verdicts given right | notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, result in metrics.items():
        unsure = result.get("not_sure")
        shares = (f"{100 * unsure['not_sure_share']:.1f} % | {100 * unsure['given_accuracy']:.2f} %"
                  if unsure else " | ")
        lines.append(f"| {name}: {result['dataset']} | {result['n']} | "
                     f"{100 * result['accuracy']:.2f} % | {shares} | {result.get('note', '')} |")
        for subset, sub in result.get("subsets", {}).items():
            lines.append(f"| &nbsp;&nbsp;subset {subset} | {sub['n']} | "
                         f"{100 * sub['accuracy']:.2f} % | | | {sub.get('note', '')} |")
    for name, result in metrics.items():
        if "confusion_matrix" not in result:
            continue
        labels = result["confusion_matrix"]["labels"]
        lines += ["", f"**Confusion matrix, {name}** (rows: true class, columns: predicted)", "",
                  "| | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for label, row in zip(labels, result["confusion_matrix"]["matrix"], strict=True):
            lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
        per_class = result.get("per_class", {})
        if per_class:
            lines += ["", "| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
            for label, stats in per_class.items():
                lines.append(f"| {label} | {stats['precision']:.3f} | {stats['recall']:.3f} | "
                             f"{stats['f1']:.3f} | {stats['support']} |")
        if "roc_auc" in result:
            lines += ["", f"ROC AUC: {result['roc_auc']:.4f}"]
    lines += ["", "## Export variants", "",
              "Every variant evaluated on the same images; median single-thread latency "
              "measured with the LiteRT runtime on the training machine.", "",
              "| variant | size | accuracy | p50 latency | shipped |", "|---|---:|---:|---:|---|"]
    for variant in card["variants"]:
        shipped = f"`{variant['file']}`" if "file" in variant else ""
        lines.append(f"| {variant['name']} | {variant['size_bytes'] / 1e6:.2f} MB | "
                     f"{100 * variant['accuracy']:.2f} % ({variant['evaluated_on']}) | "
                     f"{variant['latency_ms_p50']:.2f} ms | {shipped} |")
    lines += ["", "## Training", ""]
    for split, counts in training["data"].items():
        per_class = ", ".join(f"{k} {v}" for k, v in counts["per_class"].items())
        per_source = ", ".join(f"{k} {v}" for k, v in counts["per_source"].items())
        lines.append(f"- **{split}** ({counts['total']}): {per_class}. By source: {per_source}.")
    if training.get("excluded"):
        lines.append(f"- Excluded by review: {', '.join(training['excluded'])}")
    lines += ["", "Settings:", ""]
    lines += [f"- `{key}`: {value}" for key, value in training["settings"].items()]
    lines += ["", f"Epochs run: {training['epochs_run']}. "
              f"Wall time: {training['duration_s'] / 60:.1f} min on {training['machine']}.",
              "", "## Base weights", "", card["base_weights"]["attribution"], "",
              "## Reproduce", "", "```", card["reproduce"], "```", ""]
    return "\n".join(lines)


def not_sure_words(card: dict, variant: str | None = None) -> str:
    """The card's "not sure" rule in plain words, with its level for `variant` (the
    card's metrics variant by default) and how it did on the photos the card names."""
    calibrated = card["calibration"]
    variant = variant if variant in calibrated["variants"] else card["metrics_variant"]
    figures = calibrated["variants"][variant]
    words = [f"we give a verdict only when we expect at least {100 * calibrated['target']:g} % of "
             f"such verdicts to be right: under a score of {100 * figures['not_sure_below']:.0f} % "
             f"(the {variant} file's) the answer is \"not sure\", with the best guess beside it.",
             f"Scores are calibrated (temperature {figures['temperature']:.2f}, fitted on the "
             f"{figures['answers']:,} answers to the {calibrated['held_out'].removeprefix('the ')}), "
             "so that a score of 90 % is right about 9 times in 10; "
             f"there, {100 * figures['not_sure_share']:.1f} % of the answers were \"not sure\" and "
             f"{100 * figures['given_accuracy']:.2f} % of the verdicts given were right."]
    test = card["metrics"].get("test", {}).get("not_sure")
    if test and variant == card["metrics_variant"]:
        words.append(f"On the test photos: {100 * test['not_sure_share']:.1f} % \"not sure\", "
                     f"{100 * test['given_accuracy']:.2f} % of the verdicts given right.")
    return sentence(" ".join(words))
