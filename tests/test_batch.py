"""python -m classifier.batch: sources, bad files, formats, resume after Ctrl-C, Ray."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest

from classifier.batch import cli, local
from classifier.service import classify
from classifier.settings import PROJECT_ROOT
from tests import images
from tests.conftest import SHIPPED_MODELS

BAD = {"empty.jpg": ("", "empty_file"), "broken.jpg": ("truncated", "corrupt_image"),
       "notes.txt": ("text", "unsupported_media_type"), "bomb.png": ("bomb", "image_too_large")}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A folder of photos with bad files mixed in, an archive of each kind and a list."""
    root = tmp_path_factory.mktemp("batch")
    photos = root / "photos"
    (photos / "nested").mkdir(parents=True)
    for i in range(5):
        (photos / f"p{i}.jpg").write_bytes(images.jpeg(200 + 10 * i, 150, seed=i))
    (photos / "nested" / "deep.png").write_bytes(images.png(90, 60))
    (photos / ".hidden.jpg").write_bytes(images.jpeg())
    contents = {"": b"", "truncated": images.truncated(images.jpeg()),
                "text": b"just some notes", "bomb": images.png_bomb()}
    for name, (kind, _) in BAD.items():
        (photos / name).write_bytes(contents[kind])
    with zipfile.ZipFile(root / "more.zip", "w") as archive:
        archive.writestr("a/z1.jpg", images.jpeg(seed=11))
        archive.writestr("z2.jpg", images.jpeg(seed=12))
    with tarfile.open(root / "more.tar.gz", "w:gz") as archive:
        data = images.jpeg(seed=13)
        info = tarfile.TarInfo("t1.jpg")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    (root / "list.txt").write_text("# two photos, one missing\nphotos/p0.jpg\nphotos/gone.jpg\n")
    return root


def run_batch(*args) -> int:
    return cli.main([*map(str, args), "--models-dir", str(SHIPPED_MODELS), "--workers", "2"])


def read_rows(path):
    if path.suffix == ".csv":
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def test_every_file_gets_a_row_and_bad_ones_their_api_code(mixed, tmp_path, capsys):
    out = tmp_path / "out.csv"
    code = run_batch(mixed / "photos", mixed / "more.zip", mixed / "more.tar.gz",
                     mixed / "list.txt", "--out", out, "--model", "hotdog")
    assert code == 0
    rows = {r["path"]: r for r in read_rows(out)}
    photos = mixed / "photos"
    expected = {str(photos / f"p{i}.jpg") for i in range(5)} | {str(photos / "nested" / "deep.png")}
    expected |= {str(photos / name) for name in BAD}
    expected |= {f"{mixed / 'more.zip'}!a/z1.jpg", f"{mixed / 'more.zip'}!z2.jpg",
                 f"{mixed / 'more.tar.gz'}!t1.jpg", str(photos / "gone.jpg")}
    assert set(rows) == expected  # p0 once although listed twice; hidden file skipped
    for name, (_, code_expected) in BAD.items():
        row = rows[str(photos / name)]
        assert row["error"] == code_expected and row["error_message"] and row["label"] == ""
    assert rows[str(photos / "gone.jpg")]["error"] == "unreadable_file"
    good = [r for r in rows.values() if not r["error"]]
    assert len(good) == 9
    for row in good:
        assert row["label"] in ("hotdog", "not_hotdog") and row["model"] == "hotdog"
        assert float(row["score"]) == float(row[f"score_{row['label']}"]) >= 0.5
    summary = capsys.readouterr().err
    assert "failed" in summary and "5" in summary.split("failed")[1].split("\n")[0]


def test_rows_are_the_classification_services_answers(mixed, tmp_path):
    """The same answer as the API's for the same bytes: label, scores and not_sure."""
    out = tmp_path / "out.jsonl"
    photo = mixed / "photos" / "p3.jpg"
    assert run_batch(photo, "--out", out, "--variant", "int8") == 0
    (row,) = read_rows(out)
    model = local.load_model(SHIPPED_MODELS, "hotdog", "int8")
    answer = classify([model], photo.read_bytes())["hotdog"].as_dict()
    assert row["label"] == answer["label"]
    assert row["score_hotdog"] == answer["scores"]["hotdog"]
    assert row["not_sure"] is answer["not_sure"]


def test_a_file_that_trips_an_unexpected_error_gets_its_row_and_the_run_goes_on(mixed, monkeypatch, caplog):
    """A decoder's own bug on one odd file (Pillow's EXIF rewrite raised AttributeError
    once) must cost that file's row, not the run."""
    model = local.load_model(SHIPPED_MODELS, "hotdog", "int8")
    reader = local.Reader(10**7)
    photos = sorted((mixed / "photos").glob("p*.jpg"))[:2]

    def fragile(models, data, **options):
        if data == photos[0].read_bytes():
            raise AttributeError("'IFDRational' object has no attribute 'encode'")
        return classify(models, data, **options)

    monkeypatch.setattr(local, "classify", fragile)
    rows = [local.classify_item(model, reader, local.Item(str(photo))) for photo in photos]
    assert rows[0]["error"] == "internal_error" and "AttributeError" in rows[0]["error_message"]
    assert rows[1]["error"] == "" and rows[1]["label"] in model.labels
    assert "unexpected error" in caplog.text


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_interrupted_run_resumes_to_the_same_output(mixed, tmp_path, monkeypatch, suffix):
    sources = [mixed / "photos", mixed / "more.zip", "--variant", "int8"]
    full = tmp_path / f"full{suffix}"
    assert run_batch(*sources, "--out", full) == 0
    original = local.run

    def interrupted_run(*args, **kwargs):
        chunks = original(*args, **kwargs)
        yield next(chunks)
        raise KeyboardInterrupt

    monkeypatch.setattr(local, "CHUNK", 4)
    monkeypatch.setattr(local, "run", interrupted_run)
    partial = tmp_path / f"partial{suffix}"
    assert run_batch(*sources, "--out", partial) == 130
    assert len(read_rows(partial)) == 4  # a valid file with what was done
    monkeypatch.setattr(local, "run", original)
    assert run_batch(*sources, "--out", partial, "--resume") == 0
    assert read_rows(partial) == read_rows(full)


@pytest.mark.slow
def test_ctrl_c_then_resume_gives_the_uninterrupted_output(tmp_path):
    """The real thing: SIGINT to the command half-way, then --resume."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        (folder / f"{i:03d}.jpg").write_bytes(images.jpeg(160, 120, seed=i))
    command = [sys.executable, "-m", "classifier.batch", str(folder), "--models-dir",
               str(SHIPPED_MODELS), "--workers", "2", "--variant", "int8"]
    full, partial = tmp_path / "full.csv", tmp_path / "partial.csv"
    subprocess.run([*command, "--out", str(full)], check=True, cwd=PROJECT_ROOT,
                   capture_output=True)
    process = subprocess.Popen([*command, "--out", str(partial)], cwd=PROJECT_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not partial.exists() or partial.stat().st_size < 2000):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    done = len(read_rows(partial))
    assert 0 < done < 300
    assert b"--resume" in err
    resumed = subprocess.run([*command, "--out", str(partial), "--resume"], cwd=PROJECT_ROOT,
                             capture_output=True)
    assert resumed.returncode == 0
    assert f"{done} already in".encode() in resumed.stderr
    assert partial.read_bytes() == full.read_bytes()


def test_review_sheet_shows_the_least_confident(mixed, tmp_path):
    sheet = tmp_path / "review.html"
    assert run_batch(mixed / "photos", "--out", tmp_path / "o.csv", "--review", sheet,
                     "--review-count", "3") == 0
    page = sheet.read_text()
    assert page.count("<figure>") == 3 and page.count("data:image/jpeg;base64,") == 3
    scores = [r for r in read_rows(tmp_path / "o.csv") if not r["error"]]
    least = min(scores, key=lambda r: float(r["score"]))
    assert least["path"] in page


def test_bad_arguments_are_clear(mixed, tmp_path, capsys):
    assert run_batch(mixed / "nowhere", "--out", tmp_path / "o.csv") == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert run_batch(mixed / "photos", "--out", tmp_path / "o.xlsx") == 2
    assert "must end in" in capsys.readouterr().err
    assert run_batch(mixed / "photos", "--out", tmp_path / "o.csv", "--model", "nope") == 2


@pytest.mark.slow
def test_ray_engine_gives_the_local_engines_rows(mixed, tmp_path):
    sources = [mixed / "photos", mixed / "more.zip", mixed / "list.txt", "--variant", "int8"]
    local_out, ray_out = tmp_path / "local.csv", tmp_path / "ray.csv"
    assert run_batch(*sources, "--out", local_out) == 0
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    assert run_batch(*sources, "--out", ray_out, "--engine", "ray") == 0
    assert read_rows(ray_out) == read_rows(local_out)
