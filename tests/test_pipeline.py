"""The whole training pipeline on a tiny dataset this test makes itself:
train -> export -> load -> predict -> evaluate, with three classes to show that
nothing assumes two. Uses the real MobileNetV2 base weights from ../shared."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classifier import card as model_card
from classifier.model import Model
from classifier.settings import default_base_weights, shared_dir
from tests.conftest import SHIPPED_MODELS, require_shared
from training import card as training_card
from training import dataset, evaluate

pytestmark = pytest.mark.slow

CLASSES = ["checks", "dots", "stripes"]
IMAGE_SIZE = 96  # small and fast; the pipeline is the same at 224
TITLE = "Checks, dots or stripes? It's the pattern"  # spaces and a quote, for the shell


def pattern(kind: str, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A textured picture whose texture, not colour, tells the class apart."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    period = rng.uniform(8, 16)
    if kind == "stripes":
        mask = np.sin(2 * np.pi * y / period + rng.uniform(0, 6)) > 0
    elif kind == "checks":
        mask = ((x // period).astype(int) + (y // period).astype(int)) % 2 == 0
    else:  # dots
        mask = (np.sin(2 * np.pi * x / period) * np.sin(2 * np.pi * y / period)) > 0.5
    dark, light = rng.integers(0, 100, 3), rng.integers(155, 256, 3)
    pixels = np.where(mask[..., None], light, dark) + rng.normal(0, 8, (height, width, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def make_photos(folder: Path, per_class: int, seed: int, corrupt: int = 0) -> None:
    """Pictures of three textures in mixed sizes and formats, with file-name sources."""
    rng = np.random.default_rng(seed)
    for name in CLASSES:
        target = folder / name
        target.mkdir(parents=True)
        for i in range(per_class):
            width, height = (int(v) for v in rng.integers(60, 200, 2))
            suffix = ("jpg", "png", "webp")[i % 3]
            source = "cam" if i % 2 else "web"
            Image.fromarray(pattern(name, width, height, rng)).save(
                target / f"{source}_{i}.{suffix}", **({"quality": 95} if suffix != "png" else {}))
        for i in range(corrupt):
            (target / f"broken_{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")


def train_colours(root: Path) -> tuple[Path, Path, Path]:
    """The three-texture model trained once a session (tests/conftest.py's `colours_run`:
    this module checks it, tests/test_feedback_loop.py starts its loop from a copy)."""
    require_shared("weights", "mobilenet_v2")
    from training import train

    make_photos(root / "train", per_class=14, seed=1, corrupt=1)
    make_photos(root / "test", per_class=6, seed=2)
    out, work = root / "models" / "colours", root / "work"
    assert train.main(training_arguments(root, out, work)) == 0
    return root, out, work


@pytest.fixture()
def run(colours_run):
    return colours_run


def training_arguments(root: Path, out: Path, work: Path) -> list[str]:
    return [
        str(root / "train"), "--out", str(out), "--work-dir", str(work), "--title", TITLE,
        "--base-weights", str(default_base_weights()), "--image-size", str(IMAGE_SIZE),
        "--fine-tune-epochs", "1",
        "--fine-tune-blocks", "1", "--batch-size", "8", "--val-fraction", "0.25",
        "--holdout", "cam_*", "--holdout-fraction", "0.2", "--calibration-images", "16",
        "--test-dir", str(root / "test"), "--subset", "web=web_*", "--seed", "3"]


def test_model_directory_is_complete(run):
    _, out, _ = run
    assert {p.name for p in out.iterdir()} == {
        "model_int8.tflite", "model_float16.tflite", "labels.txt", "head.npz",
        "model_card.json", "MODEL_CARD.md", "confusion_matrix.png"}  # no ROC for 3 classes
    assert model_card.load(out)["plots"] == {"confusion_matrix": "confusion_matrix.png"}
    assert (out / "labels.txt").read_text().split() == CLASSES


def test_card_matches_schema_and_describes_the_run(run):
    _, out, _ = run
    card = model_card.load(out)
    model_card.validate(card)
    assert card["classes"] == CLASSES
    assert card["input"]["width"] == IMAGE_SIZE
    assert {v["name"] for v in card["variants"]} == {"float32", "float16", "int8"}
    assert card["files"]["variants"] == {"int8": "model_int8.tflite",
                                         "float16": "model_float16.tflite"}
    assert {v["name"]: v.get("file") for v in card["variants"]} == {
        "float32": None, "float16": "model_float16.tflite", "int8": "model_int8.tflite"}
    assert card["metrics_variant"] == "int8"
    assert card["base_weights"]["base"] == "mobilenet_v2"
    assert card["architecture"]["feature_map"] == [3, 3, 1280]  # 96 px / 32
    assert card["training"]["settings"]["unreadable_photos_skipped"] == 3  # one a class
    per_source = card["training"]["data"]["train"]["per_source"]
    assert set(per_source) == {"cam", "web"}  # file-name prefixes, never paths
    assert card["training"]["data"]["holdout"]["total"] > 0
    assert set(card["metrics"]) == {"validation", "holdout", "test"}
    assert {v["answers"] for v in card["calibration"]["variants"].values()} == {
        card["metrics"]["validation"]["n"]}  # fine-tuned: its level rests on validation
    assert "web" in card["metrics"]["test"]["subsets"]
    assert "# Model card: colours" in (out / "MODEL_CARD.md").read_text()
    assert "intended_use" not in card and "## Limitations" not in (out / "MODEL_CARD.md").read_text()


def test_the_cards_command_pastes_back_into_a_shell(run):
    """The reproduce command, split as a shell would, gives back the run's very
    arguments (a title with spaces and a quote stays one argument), with the paths of
    this machine's ../shared written as ../shared."""
    root, out, work = run
    words = shlex.split(model_card.load(out)["reproduce"])
    assert words[:3] == ["python", "-m", "training.train"]
    relative = [word.replace(str(shared_dir()), "../shared")
                for word in training_arguments(root, out, work)]
    assert words[3:] == relative
    assert TITLE in words and "../shared/weights/" in words[words.index("--base-weights") + 1]


def test_reproduce_command_quotes_what_a_shell_would_split():
    argv = ["my photos/", "--title", "Is it a hot dog?", "--holdout", "seefood_*",
            "--note", "pizza's crust", "--add", f"food={shared_dir()}/datasets/a b/*"]
    command = training_card.reproduce_command("training.train", argv)
    assert shlex.split(command) == ["python", "-m", "training.train", *argv[:-1],
                                    "food=../shared/datasets/a b/*"]


def test_the_card_says_what_the_model_is_for_and_where_it_falls_short(run, tmp_path, monkeypatch):
    """A model's training/cards/NAME.md goes into its card: `intended_use` and
    `limitations` in the JSON, and in MODEL_CARD.md as two sections between "At a
    glance" and the results. `python -m training.card` puts it into a card already
    written, changing nothing else."""
    import shutil

    _, out, _ = run
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "colours.md").write_text(
        "# colours\n\nFor whoever edits this file.\n\n"
        "## Intended use\n\nTells checks, dots and stripes\napart, in test pictures.\n\n"
        "## Limitations\n\n- Knows three patterns,\n  nothing else.\n- Never saw a photo.\n")
    monkeypatch.setattr(training_card, "NOTES_DIR", notes)
    model_dir = tmp_path / "colours"
    shutil.copytree(out, model_dir)
    before = model_card.load(model_dir)

    assert training_card.main([str(model_dir)]) == 0
    after = model_card.load(model_dir)
    model_card.validate(after)
    assert after["intended_use"] == "Tells checks, dots and stripes apart, in test pictures."
    assert after["limitations"] == ["Knows three patterns, nothing else.", "Never saw a photo."]
    assert list(after).index("intended_use") == list(after).index("description") + 1
    assert {k: v for k, v in after.items() if k not in ("intended_use", "limitations")} == before
    markdown = (model_dir / model_card.MARKDOWN_FILE).read_text()
    assert markdown.index("## At a glance") < markdown.index("## Intended use") \
        < markdown.index("## Limitations") < markdown.index("## Results")
    assert "Tells checks, dots and stripes apart, in test pictures.\n" in markdown
    assert "- Knows three patterns, nothing else.\n- Never saw a photo.\n" in markdown
    # Without the two sections, the Markdown is classifier.card's rendering as it was.
    assert markdown.replace(
        "## Intended use\n\nTells checks, dots and stripes apart, in test pictures.\n\n"
        "## Limitations\n\n- Knows three patterns, nothing else.\n- Never saw a photo.\n\n",
        "") == (out / model_card.MARKDOWN_FILE).read_text()

    (notes / "colours.md").write_text("## Intended use\n\nOne.\n\nTwo.\n\n## Limitations\n\n- A.\n")
    with pytest.raises(ValueError, match="one paragraph"):
        training_card.main([str(model_dir)])
    (notes / "colours.md").write_text("## Intended use\n\nOne.\n\n## Limitations\n\nA.\n")
    with pytest.raises(ValueError, match="'- ' item"):
        training_card.main([str(model_dir)])
    (notes / "colours.md").unlink()
    assert training_card.main([str(model_dir)]) == 2


def test_one_ship_rule_for_every_model():
    """int8 and float16 ship when within the allowed loss of the reference on the whole
    set and on every subset; float32 only when neither does; a reference other than
    float32 (ImageNet's Keras model) works the same way."""
    from training.export import shippable_variants

    def row(name, accuracy, uploads):
        return {"name": name, "accuracy": accuracy, "subsets": {"uploads": uploads}}

    rows = [row("float32", 0.95, 0.90), row("float16", 0.95, 0.90), row("int8", 0.953, 0.894)]
    assert shippable_variants(rows, 0.005) == ["float16"]  # int8 gained overall, lost on uploads
    assert shippable_variants(rows, 0.01) == ["int8", "float16"]
    rows[1] = row("float16", 0.90, 0.90)
    assert shippable_variants(rows, 0.005) == ["float32"]
    agreement = [{"name": "float32", "accuracy": 0.999}, {"name": "float16", "accuracy": 0.998},
                 {"name": "int8", "accuracy": 0.91}]
    assert shippable_variants(agreement, 1 - 0.97, {"accuracy": 1.0}) == ["float16"]
    assert shippable_variants(agreement, 1 - 0.9995, {"accuracy": 1.0}) == []


def test_the_model_learned_the_task(run):
    _, out, _ = run
    test = model_card.load(out)["metrics"]["test"]
    assert test["n"] == 18
    assert test["accuracy"] >= 0.9, test["confusion_matrix"]


def test_tflite_matches_keras_on_the_same_photos(run):
    """Serving path (bytes -> engine) against the Keras model on training's loader:
    proves that preprocessing is identical and the export faithful."""
    import keras

    root, out, work = run
    keras_model = keras.models.load_model(work / "model.keras")
    files = dataset.image_files(root / "test")
    examples = [dataset.Example(p, 0) for p in files]
    pixels, _, _, skipped = dataset.load_arrays(examples, (IMAGE_SIZE, IMAGE_SIZE))
    assert not skipped
    expected = keras_model.predict(pixels.astype(np.float32), verbose=0)
    # (largest, mean) absolute score difference allowed: float32 is the same arithmetic;
    # float16 rounds weights; int8 (calibrated here on only 16 pictures) quantises everything.
    tolerances = {"float32": (1e-4, 1e-5), "float16": (0.03, 2e-3), "int8": (0.15, 0.02)}
    for variant, (largest, mean) in tolerances.items():
        engine = Model(work / f"model_{variant}.tflite", CLASSES)
        got = np.array([[engine.predict_bytes(f.read_bytes()).scores[c] for c in CLASSES]
                        for f in files])
        difference = np.abs(got - expected)
        assert difference.max() <= largest and difference.mean() <= mean, (variant, difference)
    shipped = Model.from_directory(out)
    assert shipped.predict_bytes(files[0].read_bytes()).label == CLASSES[
        int(expected[0].argmax())]


def test_evaluate_cli_writes_report_and_plots(run, tmp_path, capsys):
    root, out, _ = run
    code = evaluate.main([str(out), str(root / "test"), "--out", str(tmp_path),
                          "--subset", "web=web_*"])
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["n"] == 18 and 0 <= report["accuracy"] <= 1
    assert len(report["per_class"]) == 3 and "roc_auc" not in report  # AUC is for 2 classes
    assert len(report["mistakes"]) == round(18 * (1 - report["accuracy"]))
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000
    assert "accuracy" in capsys.readouterr().out


def test_evaluate_can_map_folders_and_record_in_the_card(run, tmp_path):
    _, out, _ = run
    folder = tmp_path / "renamed"
    make_photos(folder, per_class=3, seed=9)
    for name in ("checks", "dots"):
        for f in (folder / name).iterdir():
            f.unlink()
        (folder / name).rmdir()
    (folder / "stripes").rename(folder / "lines")
    code = evaluate.main([str(out), str(folder), "--label-map", "lines=stripes",
                          "--record", "lines_check", "--note", "renamed folder"])
    assert code == 0
    recorded = model_card.load(out)["metrics"]["lines_check"]
    assert recorded["n"] == 3 and recorded["note"] == "renamed folder"
    model_card.validate(model_card.load(out))


def test_bad_data_folders_get_clear_errors(tmp_path, caplog):
    from training import train

    one_class = tmp_path / "one"
    (one_class / "only").mkdir(parents=True)
    Image.new("RGB", (10, 10)).save(one_class / "only" / "a.png")
    assert train.main([str(one_class), "--out", str(tmp_path / "m")]) == 2
    assert "at least two class sub-folders" in caplog.text

    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "b").mkdir()
    Image.new("RGB", (10, 10)).save(empty / "a" / "x.png")
    assert train.main([str(empty), "--out", str(tmp_path / "m")]) == 2
    assert "class 'b'" in caplog.text and "has no images" in caplog.text


def test_split_is_stratified_and_seeded():
    examples = [dataset.Example(Path(f"class{label}/{src}_{i}.jpg"), label)
                for label in (0, 1) for src in ("a", "b") for i in range(20)]
    kept, taken = dataset.split_off(examples, 0.25, seed=5)
    again = dataset.split_off(examples, 0.25, seed=5)
    assert (kept, taken) == again
    assert len(taken) == 20
    for label in (0, 1):
        for src in ("a", "b"):
            assert sum(e.label == label and e.source == src for e in taken) == 5


def test_only_matching_keeps_the_named_sources():
    examples = [dataset.Example(Path(f"{src}_{i}.jpg"), 0) for src in ("dtu_food", "seefood")
                for i in range(3)]
    assert [e.source for e in dataset.only_matching(examples, ["dtu_*"])] == ["dtu_food"] * 3
    assert dataset.only_matching(examples, []) == examples


def test_source_balance_lifts_small_sources_and_keeps_classes_balanced():
    from training.train import balanced_class_weights, sample_weights

    labels = np.array([0] * 90 + [0] * 10 + [1] * 50)
    sources = ["big"] * 90 + ["small"] * 10 + ["other"] * 50
    class_weights = balanced_class_weights(labels, 2)
    plain = sample_weights(labels, sources, class_weights, 0.0)
    assert np.allclose(plain, class_weights[labels])
    for balance, small_share in ((0.5, 0.25), (1.0, 0.5)):  # sqrt(10) / (sqrt(90) + sqrt(10))
        weights = sample_weights(labels, sources, class_weights, balance)
        assert weights[labels == 0].sum() == pytest.approx(weights[labels == 1].sum())
        assert weights[90:100].sum() / weights[:100].sum() == pytest.approx(small_share)
        assert len(set(weights[:90].round(6))) == 1  # equal within a source


def test_mixup_blends_photos_labels_and_weights_alike_and_is_seeded():
    from training.train import make_dataset

    values = np.array([0, 200, 100, 50, 30, 250], np.float32)
    pixels = np.stack([np.full((4, 4, 3), v, np.uint8) for v in values])
    labels, weights = np.array([0, 1, 0, 1, 1, 0]), np.arange(1, 7, dtype=np.float32)

    def batches(mixup, seed=1):  # no augmentation, so no shuffle: batches of 3 in order
        return [tuple(t.numpy() for t in batch) for batch in
                make_dataset(pixels, labels, 2, 3, weights=weights, mixup=mixup, seed=seed)]

    plain = batches(0.0)
    assert np.array_equal(np.concatenate([b[0][:, 0, 0, 0] for b in plain]), values)
    mixed = batches(0.4)
    for (x, y, w), first in zip(mixed, (0, 3), strict=True):
        own = slice(first, first + 3)
        # Photo i is blended with photo 2 - i of its batch; the middle one with itself.
        partner_values, own_values = values[own][::-1], values[own]
        mix = (x[[0, 2], 0, 0, 0] - partner_values[[0, 2]]) / \
            (own_values[[0, 2]] - partner_values[[0, 2]])
        onehot = np.eye(2)[labels[own]]
        assert np.allclose(y[[0, 2]], mix[:, None] * onehot[[0, 2]]
                           + (1 - mix[:, None]) * onehot[::-1][[0, 2]], atol=1e-4)
        assert np.allclose(w[[0, 2]], mix * weights[own][[0, 2]]
                           + (1 - mix) * weights[own][::-1][[0, 2]], atol=1e-4)
        assert ((mix >= 0) & (mix <= 1)).all() and not np.allclose(mix, 1)
        assert np.allclose(y.sum(axis=1), 1)
    again = batches(0.4)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(mixed, again, strict=True))


def test_add_photos_takes_folders_globs_and_new_classes(tmp_path):
    make_photos(tmp_path, per_class=4, seed=4)
    classes, examples = ["checks", "dots"], []
    dataset.add_photos(examples, classes, [f"dots={tmp_path / 'dots'}",
                                           f"stripes={tmp_path / 'stripes' / 'cam_*'}"],
                       new_classes=True)
    assert classes == ["checks", "dots", "stripes"]
    assert [e.label for e in examples] == [1, 1, 1, 1, 2, 2]
    assert all(e.path.name.startswith("cam_") for e in examples[4:])
    with pytest.raises(dataset.DataError, match="not one of the classes"):
        dataset.add_photos([], classes, [f"pets={tmp_path / 'dots'}"], new_classes=False)
    with pytest.raises(dataset.DataError, match="no images"):
        dataset.add_photos([], classes, [f"dots={tmp_path / 'dots' / 'nothing_*'}"],
                           new_classes=False)


def test_sources_are_file_name_prefixes_without_ids():
    names = {"dtu_food_(12).jpg": "dtu_food", "seefood_3.jpg": "seefood",
             "vnmenu2_0bc5a91.jpg": "vnmenu2", "michelin_112d46c5aeab.jpg": "michelin",
             "my_photo.jpg": "my_photo", "1234.jpg": "unknown"}
    assert {name: dataset.source_of(Path(name)) for name in names} == names


def test_digits_training_writes_a_servable_model(tmp_path):
    """The digits command end to end on 600 MNIST digits, one epoch: files, a card that
    passes the schema, and a model the engine serves."""
    from training import digits

    require_shared("datasets", "digits", "mnist.npz")
    out = tmp_path / "digits"
    assert digits.main(["--out", str(out), "--limit", "600", "--validation", "100",
                        "--epochs", "1", "--work-dir", str(tmp_path / "work")]) == 0
    written = model_card.load(out)
    model_card.validate(written)
    assert written["input"]["kind"] == "digit" and written["classes"] == [str(d) for d in range(10)]
    assert shlex.split(written["reproduce"]) == [
        "python", "-m", "training.digits", "--out", str(out), "--limit", "600", "--validation",
        "100", "--epochs", "1", "--work-dir", str(tmp_path / "work")]
    # training/cards/digits.md: what the digits model is for and where it falls short.
    assert written["intended_use"] and written["limitations"]
    assert "## Limitations" in (out / model_card.MARKDOWN_FILE).read_text()
    model = Model.from_directory(out)
    assert model.input_size == (28, 28) and model.channels == 1


def test_calibrate_reads_the_not_sure_level_off_the_training_runs_validation_split(run, tmp_path):
    """A card without calibration (trained before it existed) gets back the very
    temperatures, levels and "not sure" figures training gave it, from the training
    arguments alone; other arguments, which make another validation split, are refused
    and leave the card alone."""
    import shutil

    from training import calibrate

    root, out, work = run
    model_dir = tmp_path / "colours"
    shutil.copytree(out, model_dir)
    trained = model_card.load(model_dir)
    assert set(trained["calibration"]["variants"]) == set(trained["files"]["variants"])
    splits = ("validation", "holdout", "test")  # those calibrate measures again
    assert all("not_sure" in trained["metrics"][split] for split in splits)
    card = dict(trained, metrics={split: {k: v for k, v in result.items()
                                          if k != "not_sure" or split not in splits}
                                  for split, result in trained["metrics"].items()})
    del card["calibration"]
    model_card.write(model_dir, card)

    other_split = [*training_arguments(root, model_dir, work), "--val-fraction", "0.5"]
    assert calibrate.main(other_split) == 1
    assert "calibration" not in model_card.load(model_dir)

    assert calibrate.main(training_arguments(root, model_dir, work)) == 0
    calibrated = model_card.load(model_dir)
    assert calibrated["calibration"] == trained["calibration"]
    assert calibrated["metrics"] == trained["metrics"]
    assert "**Not sure:**" in (model_dir / model_card.MARKDOWN_FILE).read_text()
    assert calibrated["reproduce"].splitlines() == [
        trained["reproduce"], training_card.reproduce_command(
            "training.calibrate", training_arguments(root, model_dir, work))]


def test_a_head_can_read_another_models_network_too(run, tmp_path):
    """--extra-features: the probe reads the base's pooled features and those of
    another model's served network. The directory ships a copy of that file, the card
    says where it came from, and the server runs the loaded network when the file is
    the same."""
    import shutil

    from classifier.registry import ModelRegistry
    from training import calibrate, train

    root, out, _ = run
    zoo = tmp_path / "models"
    shutil.copytree(out, zoo / "colours")
    extra = zoo / "colours" / "model_int8.tflite"
    arguments = [*training_arguments(root, zoo / "textures", tmp_path / "work"),
                 "--fine-tune-blocks", "0", "--extra-features", str(extra)]
    assert train.main(arguments) == 0
    directory = zoo / "textures"
    card = model_card.load(directory)
    model_card.validate(card)
    assert card["files"]["extra_features"] == ["features_colours.tflite"]
    assert (directory / "features_colours.tflite").read_bytes() == extra.read_bytes()
    assert card["architecture"]["extra_features"][0]["network"].startswith("the colours model's network")
    assert set(card["training"]["settings"]["probe_validation_log_loss"]) == {
        "base features only", "with the extra features"}
    with np.load(directory / "head.npz") as head:
        assert head["kernel"].shape == (2 * 1280, len(CLASSES))
    assert card["metrics"]["test"]["accuracy"] >= 0.9, card["metrics"]["test"]["confusion_matrix"]
    # Its base stayed frozen, so its "not sure" level rests on every training photo too,
    # each answered out of fold by probes refitted without it (the fine-tuned model's
    # on validation alone: test_card_matches_schema_and_describes_the_run), and
    # training.calibrate finds the same level again from the same arguments.
    answers = (card["metrics"]["validation"]["n"]
               + train.OUT_OF_FOLD_SPLITS * card["training"]["data"]["train"]["total"])
    assert {v["answers"] for v in card["calibration"]["variants"].values()} == {answers}
    assert "training photos answered out of fold" in card["calibration"]["held_out"]
    assert calibrate.main(arguments) == 0
    assert model_card.load(directory)["calibration"] == card["calibration"]
    registry = ModelRegistry.from_folder(zoo, "colours", variant="int8")
    assert registry.get("textures").extras == [registry.get("colours").network]

    with pytest.raises(SystemExit):  # a fine-tuned base's head could not be exported with them
        train.parse_args([*arguments, "--fine-tune-blocks", "1"])
    other_size = [*arguments[:-1], str(SHIPPED_MODELS / "hotdog" / "model_int8.tflite")]  # 224 px, not 96
    assert train.main(other_size) == 2
