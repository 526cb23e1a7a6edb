"""Accessibility: no serious or critical axe-core violations on the pages people use."""

from __future__ import annotations

import pytest

from .helpers import first_answer, page_of, photo_file

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("path", ["/", "/draw", "/models/hotdog", "/api/docs"])
def test_no_serious_accessibility_violations(context, server, tmp_path, path):
    from axe_playwright_python.sync_playwright import Axe

    page = page_of(context)
    page.goto(server + path)
    if path == "/":  # with an answer on it, the richest state of the page
        page.set_input_files("#image-input", str(photo_file(tmp_path)))
        first_answer(page)
    options = None
    if path == "/api/docs":  # our page around it; Swagger UI's own styling is not ours to fix
        page.locator(".opblock").first.wait_for(timeout=15_000)
        options = {"exclude": [["#swagger-ui"]]}
    results = Axe().run(page, context=options)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in serious]
