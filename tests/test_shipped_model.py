"""The models the app serves: their files, their cards, and their accuracy on ../shared.

Every figure checked here is recomputed from the committed files and the photos in
../shared (these tests fail in CI when ../shared is missing). The floors are the
product's bars where a model reaches them, and otherwise the shipped model's measured
level, so that a new model version cannot ship worse than this one.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from classifier import card as model_card
from classifier import intake
from classifier.digits import load_digit
from classifier.model import Model, predict_together
from classifier.registry import ModelRegistry
from classifier.settings import PROJECT_ROOT
from tests.conftest import SHIPPED_MODELS, require_shared
from training import card as training_card
from training.evaluate import evaluate_folder, predict_pixels

SHIPPED = ("hotdog", "pizza", "phototype", "imagenet", "digits")
MB = 1024 * 1024
# The hot dog model's bar is 6 MB and the drawn digits' 1 MB; 10 MB keeps the others
# (the 1000-class ImageNet model is the largest) a size a repository can carry.
MAX_FILE_BYTES = {"hotdog": 6 * MB, "digits": 1 * MB}
# All test hot dogs against the food negatives only: the case real users send.
FOOD_SUBSET = {"food": ["dtu_hotdog_*", "dtu_chilidog_*", "dtu_frankfurter_*", "dtu_food_*"]}


def shipped_model(name: str) -> Model:
    """The variant the card's metrics were measured on (the other shipped file is held
    to the same accuracy within half a point by test_quantisation_decides_what_ships)."""
    directory = SHIPPED_MODELS / name
    return Model.from_directory(directory, variant=model_card.load(directory)["metrics_variant"])


def assert_card_reports(name: str, metric: str, measured: dict) -> None:
    recorded = model_card.load(SHIPPED_MODELS / name)["metrics"][metric]
    assert recorded["n"] == measured["n"]
    assert recorded["accuracy"] == pytest.approx(measured["accuracy"], abs=1e-9)
    if "confusion_matrix" in measured:
        assert recorded["confusion_matrix"] == measured["confusion_matrix"]
    assert recorded.get("not_sure") == measured.get("not_sure")


def assert_not_sure(result: dict, *, at_most: float, right_at_least: float) -> None:
    """How often the served model says "not sure" on these photos (scores calibrated and
    the level applied as the API does: `test_the_api_says_not_sure_as_measured`), and how
    often the verdicts it does give are right."""
    assert result["not_sure"]["not_sure_share"] <= at_most
    assert result["not_sure"]["given_accuracy"] >= right_at_least


# -- every model: files and card ---------------------------------------------------

def test_the_zoo_is_complete():
    assert sorted(p.name for p in SHIPPED_MODELS.iterdir() if model_card.exists(p)) == sorted(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_files_and_card(name):
    directory = SHIPPED_MODELS / name
    card = model_card.load(directory)
    model_card.validate(card)
    assert card["name"] == name
    assert (directory / "labels.txt").read_text(encoding="utf-8").splitlines() == card["classes"]
    assert (directory / model_card.MARKDOWN_FILE).read_text(encoding="utf-8").startswith("# ")
    assert (directory / card["files"]["head"]).is_file()
    # Both an int8 and a float16 file are measured; each ships when it keeps the model's
    # accuracy (test_no_file_ships_that_lost_accuracy), and at least one always does.
    assert {"float32", "float16", "int8"} <= {v["name"] for v in card["variants"]}
    assert card["files"]["variants"] and set(card["files"]["variants"]) <= {"int8", "float16"}
    for variant, file in card["files"]["variants"].items():
        assert (directory / file).stat().st_size <= MAX_FILE_BYTES.get(name, 10 * MB)
        listed = next(v for v in card["variants"] if v["name"] == variant)
        assert listed["file"] == file and listed["size_bytes"] == (directory / file).stat().st_size
    for plot in card.get("plots", {}).values():
        assert (directory / plot).is_file()
    # A copy of another model's network that the head reads: still that very file (a
    # retrained hot dog model means `make model-phototype` must run again).
    for extra in card["architecture"].get("extra_features", []):
        assert extra["file"] in card["files"]["extra_features"]
        assert (directory / extra["file"]).read_bytes() == (PROJECT_ROOT / extra["from"]).read_bytes()
    assert card["base_weights"]["attribution"]
    assert "python -m " in card["reproduce"]  # the command that made it
    # What it is for and where it falls short, as training/cards/NAME.md says now
    # (`python -m training.card models/NAME` after editing it), and a MODEL_CARD.md
    # that is this very card rendered.
    assert {key: card[key] for key in ("intended_use", "limitations")} == training_card.notes(name)
    assert (directory / model_card.MARKDOWN_FILE).read_text(encoding="utf-8") == \
        model_card.to_markdown(card)
    text = json.dumps(card)
    assert "/work/" not in text and "/home/" not in text and "/tmp/" not in text


@pytest.mark.parametrize("name", SHIPPED)
def test_no_file_ships_that_lost_accuracy(name):
    """A smaller file ships only if it stays within half a point of float32's accuracy,
    on the whole test set and on each subset the card reports (for imagenet: if its
    top-1 agrees with the Keras model on 97 % of the photos, the card's
    `min_agreement`). Models trained by the current pipeline ship every file that
    does; the hot dog model of 22 Nov kept only its int8 file."""
    card = model_card.load(SHIPPED_MODELS / name)
    variants = {v["name"]: v for v in card["variants"]}
    reference = variants["float32"]

    def good(variant: dict) -> bool:
        if name == "imagenet":
            return variant["accuracy"] >= card["training"]["settings"]["min_agreement"] == 0.97
        pairs = [(variant["accuracy"], reference["accuracy"]),
                 *((variant["subsets"][subset], value)
                   for subset, value in reference.get("subsets", {}).items())]
        return all(got >= wanted - 0.005 for got, wanted in pairs)

    for variant in ("int8", "float16"):
        shipped = variant in card["files"]["variants"]
        assert good(variants[variant]) or not shipped, variant
        if name != "hotdog":
            assert shipped == good(variants[variant]), variant


@pytest.mark.parametrize("name", SHIPPED)
def test_card_figures_are_those_of_the_file_it_names(name):
    """The card's results are of its `metrics_variant`, a file it ships: the accuracy
    the variants table gives that file is one of the results (the set the variants
    were compared on), and no other variant's accuracy is."""
    card = model_card.load(SHIPPED_MODELS / name)
    assert card["metrics_variant"] in card["files"]["variants"]
    accuracy = {v["name"]: v["accuracy"] for v in card["variants"]}
    results = [result["accuracy"] for result in card["metrics"].values()]
    assert any(value == pytest.approx(accuracy[card["metrics_variant"]], abs=1e-9) for value in results)
    for variant, value in accuracy.items():
        if value != accuracy[card["metrics_variant"]] and variant != "float32":
            assert not any(got == pytest.approx(value, abs=1e-9) for got in results), variant


@pytest.mark.parametrize("name", [n for n in SHIPPED if "confusion_matrix" in
                                  model_card.load(SHIPPED_MODELS / n).get("plots", {})])
def test_card_confusion_matrix_plot_has_words_that_fit(name):
    """The plot is drawn from the matrix the card stores (training.card --plots draws
    it again without retraining), its class names in words, every text inside the
    picture: no title cut at both ends."""
    from training.evaluate import confusion_matrix_figure, plotted_split

    card = model_card.load(SHIPPED_MODELS / name)
    figure = confusion_matrix_figure(card["metrics"][plotted_split(card["metrics"])])
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    texts = [text for text in figure.findobj(lambda artist: hasattr(artist, "get_text"))
             if text.get_text() and text.get_visible()]
    assert any("accuracy" in text.get_text() for text in texts)
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= figure.bbox.x1 and box.y1 <= figure.bbox.y1, \
            text.get_text()
        assert "_" not in text.get_text(), text.get_text()
    with Image.open(SHIPPED_MODELS / name / card["plots"]["confusion_matrix"]) as shipped:
        assert shipped.size == (round(figure.get_figwidth() * 120), round(figure.get_figheight() * 120))


# -- hotdog ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hotdog_test_result():
    folder = require_shared("datasets", "hotdog", "test")
    result, *_ = evaluate_folder(shipped_model("hotdog"), folder, subsets=FOOD_SUBSET)
    return result


def test_hotdog_accuracy_on_the_test_split(hotdog_test_result):
    """The measured level of the shipped model, 95.7 % (the bar of 97 % is not reached
    yet: docs/hotdog-journal.md)."""
    assert hotdog_test_result["n"] == 1818
    assert hotdog_test_result["accuracy"] >= 0.955
    assert_card_reports("hotdog", "test", hotdog_test_result)
    # The verdicts given meet the bar of 98 %; "not sure" is the measured 10.45 % (the
    # bar of 10 % is not met: docs/not-sure.md).
    assert_not_sure(hotdog_test_result, at_most=0.105, right_at_least=0.98)


def test_hotdog_against_other_food(hotdog_test_result):
    food = hotdog_test_result["subsets"]["food"]
    assert food["n"] == 855 + 265
    assert food["accuracy"] >= 0.93


def test_other_dishes_are_not_hot_dogs():
    """Food-101 dishes from the pizza set's test split (never trained on)."""
    folder = require_shared("datasets", "pizza", "test")
    result, *_ = evaluate_folder(shipped_model("hotdog"), folder,
                                 label_map={"pizza": "not_hotdog", "not_pizza": "not_hotdog"})
    assert result["n"] == 413
    assert result["accuracy"] >= 0.97
    assert_card_reports("hotdog", "food101_negatives", result)


def test_reduced_scale_jpeg_decoding_keeps_the_verdicts():
    """Intake lets a JPEG decode by DCT scaling to a little under the input size
    (intake.DRAFT_SLACK). Photos enlarged 1.8x land right in that case (half scale is
    0.9x the input); their verdicts must match those from a decode at full input size."""
    folder = require_shared("datasets", "hotdog", "test")
    model = shipped_model("hotdog")
    size = model.input_size
    photos = sorted(folder.glob("*/*.jpg"))[::3]
    agree = correct_reduced = correct_full = 0
    for path in photos:
        with Image.open(path) as photo:
            enlarged = photo.convert("RGB").resize(
                (round(photo.width * 1.8), round(photo.height * 1.8)), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        enlarged.save(buffer, "JPEG", quality=90)
        data = buffer.getvalue()
        reduced = model.predict_pixels(intake.load_pixels(data, size)).label
        full = model.predict_pixels(intake.fit_to_input(
            intake.decode_image(data, draft_size=size), size)).label
        agree += reduced == full
        correct_reduced += reduced == path.parent.name
        correct_full += full == path.parent.name
    assert len(photos) == 606
    assert agree / len(photos) >= 0.98
    assert abs(correct_reduced - correct_full) / len(photos) <= 0.01


# -- pizza -------------------------------------------------------------------------

def test_pizza_accuracy_on_its_test_split():
    folder = require_shared("datasets", "pizza", "test")
    result, *_ = evaluate_folder(shipped_model("pizza"), folder)
    assert result["n"] == 413
    assert result["accuracy"] >= 0.963  # measured; the bar of 97.0 % is not reached yet
    assert_card_reports("pizza", "test", result)
    assert_not_sure(result, at_most=0.10, right_at_least=0.985)  # the bars


def test_the_api_says_not_sure_as_measured(app, client):
    """Every fourth pizza test photo through the JSON API: each answer's scores are the
    served file's calibrated ones and "not sure" is said exactly under its level, so the
    card's "not sure" figures (measured by training.evaluate) are the API's."""
    from webapp.classify import registry

    folder = require_shared("datasets", "pizza", "test")
    photos = sorted(folder.glob("*/*.jpg"))[::4]
    with app.app_context():
        served = registry().models["pizza"]
    assert served.calibration and 0.5 < served.not_sure_below < 1
    said = []
    for start in range(0, len(photos), 16):
        batch = photos[start:start + 16]
        response = client.post("/api/v1/classify?model=pizza",
                               data={"image": [(io.BytesIO(p.read_bytes()), p.name) for p in batch]})
        assert response.status_code == 200
        for path, answer in zip(batch, response.get_json()["results"], strict=True):
            expected = served.predict_pixels(intake.load_pixels(path.read_bytes(), served.input_size))
            assert answer["scores"] == pytest.approx(expected.scores, abs=1e-6)
            assert answer["not_sure"] is (expected.top[0][1] < served.not_sure_below)
            said.append(answer["not_sure"])
    assert len(said) == 104 and 0 < sum(said) < len(said)


# -- phototype ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def phototype_test_result():
    """phototype/test with the hot dog set's dtu_* test photos of each kind, as the
    model was evaluated when it was trained (see the Makefile)."""
    folder = require_shared("datasets", "phototype", "test")
    negatives = require_shared("datasets", "hotdog", "test", "not_hotdog")
    add = [f"{kind}={negatives}/dtu_{prefix}_*" for kind, prefix in
           (("food", "food"), ("ambience", "furniture"), ("people", "people"), ("pets", "pets"))]
    result, *_ = evaluate_folder(shipped_model("phototype"), folder, add=add,
                                 subsets={"uploads": ["yelp_*"]})
    return result


def test_phototype_accuracy_and_recall_of_every_class(phototype_test_result):
    assert phototype_test_result["n"] == 1125
    assert phototype_test_result["accuracy"] >= 0.97
    for name, row in phototype_test_result["per_class"].items():
        assert row["recall"] >= 0.93, name
    assert_card_reports("phototype", "test", phototype_test_result)
    # "Not sure" meets the bar of 10 % (9.2 %, the level resting on every training photo
    # answered out of fold); the verdicts given are the measured 98.83 % right (the bar
    # of 99 % is missed by two photos: docs/not-sure.md).
    assert_not_sure(phototype_test_result, at_most=0.10, right_at_least=0.988)


def test_phototype_on_real_review_site_uploads(phototype_test_result):
    uploads = phototype_test_result["subsets"]["uploads"]
    assert uploads["n"] == 80
    assert uploads["accuracy"] >= 0.95


def test_phototype_runs_as_a_head_on_the_imagenet_and_hotdog_networks():
    """The photo-type model is a probe on EfficientNet-Lite0's frozen features, which
    are the ImageNet model's too (the same fingerprint in both cards), and on the hot
    dog network's (its folder holds a byte-identical copy of that file): the server
    loads each network once, and the photo-type answers equal those of its own files."""
    folder = require_shared("datasets", "phototype", "test")
    registry = ModelRegistry.from_folder(SHIPPED_MODELS, "hotdog")
    phototype, imagenet, hotdog = (registry.get(name) for name in ("phototype", "imagenet", "hotdog"))
    assert phototype.network is imagenet.network
    assert phototype.runtime.features_of == "imagenet"
    assert phototype.extras == [hotdog.network]
    assert phototype.runtime.extra_features == ("../hotdog/model_int8.tflite",)
    own = Model.from_directory(SHIPPED_MODELS / "phototype", variant=phototype.runtime.variant)
    assert own.network is not imagenet.network and own.extras[0] is not hotdog.network
    photos = sorted(folder.rglob("*.jpg"))[::4]
    assert len(photos) >= 35
    for photo in photos:
        pixels = intake.load_pixels(photo.read_bytes(), own.input_size)
        shared, alone = phototype.predict_pixels(pixels), own.predict_pixels(pixels)
        assert shared.label == alone.label, photo.name
        assert max(abs(shared.scores[c] - alone.scores[c]) for c in own.labels) < 2e-3, photo.name
    # Asked together, the shared network runs once and still answers for both.
    pixels = intake.load_pixels(photos[0].read_bytes(), own.input_size)
    models = [imagenet, phototype, hotdog]
    together = predict_together(models, {model.name: pixels for model in models})
    for model in models:
        assert together[model.name].scores == model.predict_pixels(pixels).scores


# -- imagenet ----------------------------------------------------------------------

def test_imagenet_agrees_with_its_keras_model():
    """The shipped file's top-1 against the Keras float network it was exported from,
    on every third test photo of ../shared (they have no ImageNet labels)."""
    from training import dataset
    from training.imagenet import TEST_SPLITS, build, photos

    require_shared("weights")
    card = model_card.load(SHIPPED_MODELS / "imagenet")
    network, _ = build(card["base_weights"]["base"])
    model = shipped_model("imagenet")
    chosen = photos(TEST_SPLITS)[::3]
    pixels, *_ = dataset.load_arrays(chosen, model.input_size)
    reference = network.predict(pixels.astype(np.float32), batch_size=32, verbose=0)[0]
    agreement = (predict_pixels(model, pixels).argmax(1) == reference.argmax(1)).mean()
    assert len(pixels) >= 700
    assert agreement >= 0.97


def test_imagenet_names_a_hot_dog():
    folder = require_shared("datasets", "hotdog", "test", "hotdog")
    model = shipped_model("imagenet")
    photos = sorted(p for p in folder.iterdir() if p.name.startswith("dtu_hotdog_"))[:60]
    top5 = [model.predict_pixels(intake.load_pixels(p.read_bytes(), model.input_size)).top[:5]
            for p in photos]
    assert np.mean(["hotdog" in [label for label, _ in best] for best in top5]) >= 0.8


# -- digits ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist_test():
    path = require_shared("datasets", "digits", "mnist.npz")
    with np.load(path) as mnist:
        return mnist["x_test"], mnist["y_test"]


def digit_accuracy(pictures: list[bytes], labels: np.ndarray) -> float:
    model = shipped_model("digits")
    pixels = np.stack([load_digit(p, max_pixels=intake.DEFAULT_MAX_PIXELS) for p in pictures])
    return float((predict_pixels(model, pixels).argmax(1) == labels).mean())


def test_digits_read_mnist_test_pngs(client, mnist_test):
    """All 10,000 MNIST test digits, each sent as a 28x28 PNG to the JSON API (16 to a
    request, the API's limit)."""
    from training.digits import as_png

    digits, labels = mnist_test
    answers = []
    for start in range(0, len(digits), 16):
        files = [(io.BytesIO(as_png(d)), f"{start + i}.png") for i, d in enumerate(digits[start:start + 16])]
        response = client.post("/api/v1/classify?model=digits", data={"image": files})
        assert response.status_code == 200
        answers += [(int(r["label"]), r["not_sure"]) for r in response.get_json()["results"]]
    assert len(answers) == 10_000
    said, not_sure = np.array([label for label, _ in answers]), np.array([unsure for _, unsure in answers])
    accuracy = float((said == labels).mean())
    assert accuracy >= 0.992
    # "Not sure" on a few close calls only; the verdicts given meet the card's 99.5 %.
    assert not_sure.mean() <= 0.01
    assert (said == labels)[~not_sure].mean() >= 0.995
    # The card's figure was measured on the same PNGs, with the variant its metrics name.
    card = model_card.load(SHIPPED_MODELS / "digits")
    served = next(v for v in card["variants"] if v.get("file") and v["name"] == card["metrics_variant"])
    assert card["metrics"]["test"]["accuracy"] == pytest.approx(served["accuracy"], abs=1e-9)


def test_digits_read_canvas_drawings(mnist_test):
    """The same digits as the drawing page sends them: large, thick, dark on white,
    off-centre. A different random placement from the card's run."""
    from training.digits import as_canvas

    digits, labels = mnist_test
    rng = np.random.default_rng(7)
    assert digit_accuracy([as_canvas(d, rng) for d in digits[::2]], labels[::2]) >= 0.985
