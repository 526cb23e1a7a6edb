"""History: this browser's earlier answers survive a reload, and clear."""

from __future__ import annotations

import pytest

from .helpers import first_answer, page_of, photo_file

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
