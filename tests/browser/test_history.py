"""History: this browser's earlier answers survive a reload, and clear."""

from __future__ import annotations

import json

import pytest

from .helpers import PHOTO_MODELS, first_answer, page_of, photo_file, shot, wait_until

pytestmark = pytest.mark.slow


def test_history_survives_a_reload_and_clears(context, server, tmp_path):
    page = page_of(context)
    page.goto(server + "/")
    page.set_input_files("#image-input", str(photo_file(tmp_path)))
    first_answer(page)
    page.reload()
    items = page.locator("#history-list li")
    items.first.wait_for(timeout=5_000)
    assert items.count() >= 1 and page.locator("#history-list img").first.get_attribute("src")
    page.click("#clear-history")
    assert items.count() == 0 and not page.locator("#history").is_visible()
    page.reload()
    assert page.locator("#history-list li").count() == 0


def test_history_keeps_the_verdict_not_the_explanation(context, server, tmp_path):
    """The answer now carries its heat map; the history (localStorage, a few MB at most)
    keeps the verdict and a thumbnail only."""
    page = page_of(context)
    page.goto(server + "/")
    page.set_input_files("#image-input", str(photo_file(tmp_path)))
    first_answer(page)
    page.locator("#history-list li").first.wait_for(timeout=5_000)
    stored = page.evaluate("JSON.parse(localStorage.getItem('nothotdog.history'))")
    assert len(stored) == 1 and stored[0]["model"] == "hotdog"
    assert stored[0]["label"] in ("hotdog", "not_hotdog") and "explanation" not in stored[0]
    assert stored[0]["thumb"].startswith("data:image/jpeg")


def test_everything_at_once_is_one_entry_with_every_models_verdict(context, server, tmp_path):
    """Issue #31: the history kept "Everything at once" as the hot dog model's verdict
    alone, under "Is it a hot dog?". It is one entry, under the choice's name, with
    every photo model's verdict, each beside its model's title, also after a reload."""
    page = page_of(context)
    page.goto(server + "/")
    page.click("#model-all + label")
    page.set_input_files("#image-input", str(photo_file(tmp_path)))
    wait_until(page, f"document.querySelectorAll('#results .answer').length === {len(PHOTO_MODELS)}")
    page.locator("#history-list li.history-item").first.wait_for(timeout=5_000)
    shown = dict(page.locator("#results .answer").evaluate_all(
        "nodes => nodes.map(n => [n.dataset.model, n.querySelector('.verdict').textContent])"))
    stored = page.evaluate("JSON.parse(localStorage.getItem('nothotdog.history'))")
    assert len(stored) == 1 and stored[0]["model"] == "all" and stored[0]["title"] == "Everything at once"
    assert [v["model"] for v in stored[0]["verdicts"]] == list(shown)
    assert sorted(shown) == sorted(PHOTO_MODELS)
    assert "explanation" not in json.dumps(stored) and stored[0]["thumb"].startswith("data:image/jpeg")
    page.reload()
    items = page.locator("#history-list li.history-item")
    items.first.wait_for(timeout=5_000)
    assert items.count() == 1
    lines = items.first.locator(".verdicts li").all_inner_texts()
    assert len(lines) == len(PHOTO_MODELS)
    for model, line in zip(shown, lines, strict=True):
        title = page.locator(f"#model-{model}").get_attribute("data-title")
        verdict = shown[model]
        assert line.startswith(title) and (line.endswith(verdict) or verdict.startswith("Not sure")), line
    assert items.first.inner_text().count("Everything at once") == 1
    shot(page, "history-everything-at-once")
