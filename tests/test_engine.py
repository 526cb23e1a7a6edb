"""The engine on the shipped model: predictions, batches, threads, variants, registry."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest

from classifier.intake import CorruptImage
from classifier.model import Model
from classifier.registry import ModelRegistry
from classifier.variants import CLEARLY_FASTER
from tests import images
from tests.conftest import SHIPPED_MODELS

#: A shipped model with both an int8 and a float16 file (the hot dog model ships int8 only).
TWO_FILES = "pizza"


@pytest.fixture(scope="module")
def model():
    return Model.from_directory(SHIPPED_MODELS / "hotdog", pool_size=4)


@pytest.fixture(scope="module")
def two_files():
    return Model.from_directory(SHIPPED_MODELS / TWO_FILES)


def test_prediction_has_a_score_for_every_class(model):
    prediction = model.predict_bytes(images.jpeg())
    assert set(prediction.scores) == {"hotdog", "not_hotdog"}
    assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=0.02)
    assert prediction.label == max(prediction.scores, key=prediction.scores.get)
    assert prediction.top[0][0] == prediction.label
    assert prediction.as_dict(top_k=1)["top"] == [{"label": prediction.label,
                                                    "score": prediction.scores[prediction.label]}]


def test_model_reads_its_input_size_from_the_file(model):
    assert model.input_size == (model.card["input"]["width"], model.card["input"]["height"])


def test_batch_equals_one_by_one(model):
    photos = [images.jpeg(seed=s) for s in range(5)]
    assert model.predict_batch(photos) == [model.predict_bytes(p) for p in photos]


def test_bad_bytes_raise_intake_errors(model):
    with pytest.raises(CorruptImage):
        model.predict_bytes(images.truncated(images.jpeg()))


def test_threads_get_exactly_the_sequential_results(model):
    photos = [images.jpeg(160 + 7 * s, 120 + 5 * s, seed=s) for s in range(10)]
    expected = [model.predict_bytes(p) for p in photos]
    results: dict[tuple[int, int], object] = {}
    errors = []

    def worker(thread: int) -> None:
        try:
            for i in range(50):
                results[(thread, i)] = model.predict_bytes(photos[(thread + i) % len(photos)])
        except Exception as exc:  # collected and reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 400
    for (thread, i), prediction in results.items():
        assert prediction == expected[(thread + i) % len(photos)]


def test_label_count_must_match_the_network(model):
    with pytest.raises(ValueError, match="predicts 2 classes"):
        Model(model.path, ["only_one"])


def test_the_faster_variant_is_served_and_says_why(two_files):
    runtime = two_files.runtime
    files = two_files.card["files"]["variants"]
    assert set(runtime.timings_ms) == set(files) == {"int8", "float16"}
    assert all(ms > 0 for ms in runtime.timings_ms.values())
    timings = runtime.timings_ms
    # int8 (listed first) unless float16 is clearly (10 %) faster: never a clearly slower one.
    expected = "float16" if timings["float16"] < timings["int8"] / (1 + CLEARLY_FASTER) else "int8"
    assert runtime.variant == expected and runtime.file == files[expected]
    assert timings[runtime.variant] <= (1 + CLEARLY_FASTER) * min(timings.values())
    assert two_files.path.name == runtime.file
    assert "timed at start-up" in runtime.reason and expected in runtime.reason


def test_a_setting_can_force_a_variant(two_files):
    for variant in ("int8", "float16"):
        forced = Model.from_directory(SHIPPED_MODELS / TWO_FILES, variant=variant)
        assert forced.runtime.variant == variant
        assert forced.path.name == two_files.card["files"]["variants"][variant]
        assert forced.runtime.timings_ms == {}
    fallback = Model.from_directory(SHIPPED_MODELS / TWO_FILES, variant="float64")
    assert set(fallback.runtime.timings_ms) == {"int8", "float16"}


def test_both_variants_agree_on_photos(two_files):
    """The int8 file is a faithful quantisation of the float one."""
    int8 = Model.from_directory(SHIPPED_MODELS / TWO_FILES, variant="int8")
    float16 = Model.from_directory(SHIPPED_MODELS / TWO_FILES, variant="float16")
    photos = [images.photo_array(*two_files.input_size, seed=s) for s in range(8)]
    for pixels in photos:
        a, b = int8.predict_pixels(pixels), float16.predict_pixels(pixels)
        assert abs(a.scores["pizza"] - b.scores["pizza"]) < 0.15


def test_feature_map_only_when_asked(model):
    pixels = images.photo_array(*model.input_size, seed=3)
    plain = model.predict_pixels(pixels)
    explained = model.predict_pixels(pixels, features=True)
    assert plain.features is None
    assert explained.features.shape == tuple(model.card["architecture"]["feature_map"])
    assert explained.features.dtype == np.float32 and explained.features.max() > 0
    assert explained.scores == plain.scores


def test_registry_finds_models_and_rejects_unknown_names():
    registry = ModelRegistry.from_folder(SHIPPED_MODELS, "hotdog")
    assert "hotdog" in registry.names()
    assert registry.get(None) is registry.get("hotdog")
    with pytest.raises(KeyError):
        registry.get("no_such_model")
    with pytest.raises(LookupError):
        ModelRegistry.from_folder(SHIPPED_MODELS, "no_such_default")


def test_blank_input_matches_the_input_size(model):
    blank = model.blank_input()
    assert blank.shape == (model.input_size[1], model.input_size[0], 3) and not blank.any()
    assert np.isclose(sum(model.predict_pixels(blank).scores.values()), 1.0, atol=0.02)


def copy_models(names, folder):
    for name in names:
        shutil.copytree(SHIPPED_MODELS / name, folder / name)
    return folder


def test_models_with_one_feature_extractor_share_its_network(tmp_path):
    """phototype is a probe on imagenet's frozen base: one network serves both, and a
    photo's answers through it are those of the model's own file."""
    registry = ModelRegistry.from_folder(copy_models(["imagenet", "phototype"], tmp_path), "imagenet")
    imagenet, phototype = registry.get("imagenet"), registry.get("phototype")
    assert phototype.network is imagenet.network and phototype.head is not None
    assert phototype.runtime.features_of == "imagenet"
    own = Model.from_directory(tmp_path / "phototype", variant=phototype.runtime.variant)
    pixels = own.load(images.jpeg(640, 480, seed=5))
    shared, alone = phototype.predict_pixels(pixels, features=True), own.predict_pixels(pixels)
    assert shared.label == alone.label
    assert all(abs(shared.scores[c] - alone.scores[c]) < 2e-3 for c in own.labels)
    # imagenet's feature map, and after it the hot dog network's, which the head reads too
    assert shared.features.shape[:2] == tuple(phototype.card["architecture"]["feature_map"][:2])
    assert shared.features.shape[2] == phototype.head[0].shape[0] == 2 * 1280


def test_no_sharing_with_another_feature_extractor(tmp_path):
    folder = copy_models(["imagenet", "phototype"], tmp_path)
    card_file = folder / "phototype" / "model_card.json"
    card = json.loads(card_file.read_text())
    card["architecture"]["feature_extractor"] = "sha256:" + "0" * 64
    card_file.write_text(json.dumps(card))
    registry = ModelRegistry.from_folder(folder, "imagenet")
    assert registry.get("phototype").network is not registry.get("imagenet").network
    assert registry.get("phototype").runtime.features_of is None


def test_a_head_reads_the_features_of_a_loaded_network_when_its_file_is_the_same(tmp_path):
    """phototype's head also reads the hot dog network's features: the registry runs
    the loaded hot dog network for it; without the hot dog model, its own copy of the
    file gives the very same answers; a hot dog file that differs is not used."""
    photo = images.jpeg(640, 480, seed=7)
    shared = ModelRegistry.from_folder(copy_models(["hotdog", "imagenet", "phototype"], tmp_path / "a"),
                                       "hotdog")
    assert shared.get("phototype").extras == [shared.get("hotdog").network]
    alone = ModelRegistry.from_folder(copy_models(["imagenet", "phototype"], tmp_path / "b"), "imagenet")
    (extra,) = alone.get("phototype").extras
    assert extra.path == tmp_path / "b" / "phototype" / "features_hotdog.tflite"
    assert alone.get("phototype").predict_bytes(photo) == shared.get("phototype").predict_bytes(photo)

    other = copy_models(["hotdog", "imagenet", "phototype"], tmp_path / "c")
    shutil.copyfile(SHIPPED_MODELS / TWO_FILES / "model_int8.tflite", other / "hotdog" / "model_int8.tflite")
    retrained = ModelRegistry.from_folder(other, "hotdog")
    assert retrained.get("phototype").extras[0] is not retrained.get("hotdog").network
    assert retrained.get("phototype").predict_bytes(photo) == shared.get("phototype").predict_bytes(photo)


def test_head_over_several_networks_reads_their_pooled_maps_side_by_side(tmp_path):
    """The scores are the head on [own pooled map, extra pooled map], and the feature
    map kept for explanations is both maps stacked channel after channel."""
    phototype = Model.from_directory(copy_models(["phototype"], tmp_path) / "phototype", variant="float16")
    pixels = phototype.load(images.jpeg(500, 400, seed=8))
    prediction = phototype.predict_pixels(pixels, features=True)
    (_, own), = phototype.network.run([pixels], features=True)
    (_, extra), = phototype.extras[0].run([pixels], features=True)
    assert np.array_equal(prediction.features, np.concatenate([own, extra], axis=-1))
    kernel, bias = phototype.head
    # Scores are calibrated by the card's temperature (classifier.calibration).
    logits = (prediction.features.mean(axis=(0, 1)) @ kernel + bias) / phototype.calibration["temperature"]
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert [prediction.scores[c] for c in phototype.labels] == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="needs a head"):
        Model(phototype.path, phototype.labels, extras=phototype.extras)


def test_an_int8_network_lends_no_features(tmp_path):
    """An int8 network's feature map depends on its own calibration: a model with the
    same fingerprint still gets its own network. (The pizza model, loaded first under
    another folder name and made to claim imagenet's feature extractor, serves int8.)"""
    shutil.copytree(SHIPPED_MODELS / "pizza", tmp_path / "a_pizza")
    copy_models(["imagenet"], tmp_path)
    card_file = tmp_path / "a_pizza" / "model_card.json"
    card = json.loads(card_file.read_text())
    imagenet_card = json.loads((tmp_path / "imagenet" / "model_card.json").read_text())
    card["architecture"]["feature_extractor"] = imagenet_card["architecture"]["feature_extractor"]
    card_file.write_text(json.dumps(card))
    registry = ModelRegistry.from_folder(tmp_path, "imagenet", variant="int8")
    assert registry.get("pizza").runtime.variant == "int8"
    assert registry.get("imagenet").network is not registry.get("pizza").network
    assert registry.get("imagenet").head is None
