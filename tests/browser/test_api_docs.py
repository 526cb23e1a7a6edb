"""The interactive API docs (Swagger UI, served from this site under its CSP)."""

from __future__ import annotations

import pytest

from .helpers import page_of, photo_file

pytestmark = pytest.mark.slow


def test_api_docs_try_it_out_classifies_a_photo(context, server, tmp_path):
    errors = []
    page = page_of(context, errors)
    page.goto(server + "/api/docs")
    block = page.locator(".opblock-post", has_text="/api/v1/classify")
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    block.locator("input[type=file]").set_input_files(str(photo_file(tmp_path)))
    block.locator("button.execute").click()
    body = block.locator(".responses-wrapper .highlight-code").first
    body.wait_for(timeout=20_000)
    assert '"label"' in body.inner_text()
    assert "application/octet-stream" in page.content()
    assert "`" not in block.locator(".opblock-description-wrapper").first.inner_text()  # Markdown rendered
    assert not [e for e in errors if "Content Security Policy" in e], errors
