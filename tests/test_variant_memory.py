"""classifier.variants' VariantMemory: the first start on a CPU times a model's variants, later
starts serve what it chose, and anything that could change the verdict times again."""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest

from classifier import variants
from classifier.model import Model
from classifier.variants import VariantMemory
from tests.conftest import SHIPPED_MODELS

#: A small shipped model with an int8 and a float16 file.
TWO_FILES = "digits"


@pytest.fixture
def directory(tmp_path):
    return shutil.copytree(SHIPPED_MODELS / TWO_FILES, tmp_path / TWO_FILES)


@pytest.fixture
def memory(tmp_path):
    return VariantMemory(tmp_path / "instance" / "variant-choices.json")


@pytest.fixture
def timings_taken(monkeypatch):
    """How many times variants were timed."""
    calls = []
    measure = variants._median_times

    def counted(runners):
        calls.append(sorted(runners))
        return measure(runners)

    monkeypatch.setattr(variants, "_median_times", counted)
    return calls


def test_a_later_start_serves_what_the_first_measured(directory, memory, timings_taken):
    first = Model.from_directory(directory, memory=memory)
    assert timings_taken == [["float16", "int8"]] and memory.path.is_file()
    again = Model.from_directory(directory, memory=memory)
    assert len(timings_taken) == 1  # not timed again
    assert again.runtime.variant == first.runtime.variant
    assert again.runtime.timings_ms == first.runtime.timings_ms
    assert again.path == first.path
    assert again.runtime.reason.startswith("remembered from a start-up on ")
    assert first.runtime.reason in again.runtime.reason
    # The remembered model predicts like the measured one.
    pixels = first.blank_input()
    assert again.predict_pixels(pixels).scores == first.predict_pixels(pixels).scores


def test_a_changed_file_is_timed_again(directory, memory, timings_taken):
    Model.from_directory(directory, memory=memory)
    int8 = directory / json.loads((directory / "model_card.json").read_text())["files"]["variants"]["int8"]
    stat = int8.stat()
    os.utime(int8, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a retrained file
    reloaded = Model.from_directory(directory, memory=memory)
    assert len(timings_taken) == 2 and "remembered" not in reloaded.runtime.reason
    Model.from_directory(directory, memory=memory)
    assert len(timings_taken) == 2  # and that new measurement is the one remembered


def test_another_cpu_is_timed_again(directory, memory, timings_taken, monkeypatch):
    Model.from_directory(directory, memory=memory)
    monkeypatch.setattr("classifier.variants._cpu", lambda: "model name: another CPU")
    Model.from_directory(directory, memory=memory)
    assert len(timings_taken) == 2


def test_a_damaged_file_is_measured_again_and_rewritten(directory, memory, timings_taken):
    memory.path.parent.mkdir(parents=True)
    memory.path.write_text("{not json", encoding="utf-8")
    Model.from_directory(directory, memory=memory)
    assert len(timings_taken) == 1
    assert str(directory.resolve()) in json.loads(memory.path.read_text(encoding="utf-8"))


def test_workers_starting_together_measure_once_and_agree(directory, memory, timings_taken):
    """Two loaders at once (as two gunicorn workers): the lock makes one measure and
    the other read its verdict, so both serve the same file."""
    served, errors = [], []

    def load():
        try:
            served.append(Model.from_directory(directory, memory=VariantMemory(memory.path)).path)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(served) == 2
    assert len(timings_taken) == 1 and served[0] == served[1]


def test_a_forced_variant_or_a_single_file_needs_no_memory(directory, memory, timings_taken):
    forced = Model.from_directory(directory, variant="int8", memory=memory)
    assert forced.runtime.variant == "int8"
    assert not timings_taken and not memory.path.exists()


@pytest.mark.parametrize("entry", [
    "a string", ["a", "list"], {"signature": "matches"},
    {"signature": "matches", "runtime": ["not", "fields"], "measured": "today"},
    {"signature": "matches", "runtime": {"variant": "int8", "file": "x", "unknown": 1}, "measured": "today"},
    {"signature": "matches", "runtime": {"variant": "int8", "file": "../elsewhere.tflite",
                                         "reason": "r"}, "measured": "today"},
])
def test_an_entry_of_the_wrong_shape_is_measured_again(directory, memory, timings_taken, entry):
    """A hand-edited or damaged entry (valid JSON, wrong shape) for this very model
    must not stop the start-up, nor make it serve a file the card does not name."""
    files = json.loads((directory / "model_card.json").read_text())["files"]["variants"]
    if isinstance(entry, dict) and entry.get("signature") == "matches":
        entry = {**entry, "signature": variants.signature(directory, files)}
    memory.path.parent.mkdir(parents=True)
    memory.path.write_text(json.dumps({str(directory.resolve()): entry}), encoding="utf-8")
    model = Model.from_directory(directory, memory=memory)
    assert len(timings_taken) == 1 and model.path.parent == directory
    assert model.runtime.file in files.values() and "remembered" not in model.runtime.reason
