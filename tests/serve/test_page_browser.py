"""The service's page in a real browser (headless Chromium driven by Playwright): a stored
image's neighbours appear as thumbnails with labels and the query time; choosing another m
searches again; an uploaded image is searched too. Skipped, with the reason, where Chromium or
Playwright is absent (`make browser` installs Chromium; Playwright is a test dependency)."""

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")

FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _result(page) -> dict:
    page.wait_for_function("document.body.dataset.result !== undefined", timeout=30_000)
    return json.loads(page.evaluate("document.body.dataset.result"))


def test_the_page_shows_neighbours_of_a_stored_and_an_uploaded_image(server, tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(f"{server.url}/?id=5&dim=4&k=8")
        shown = _result(page)
        assert shown["query"] == {"id": 5} and shown["dim"] == 4 and shown["thumbnails"] == 8
        thumbnails = page.locator("#hits img")
        assert thumbnails.count() == 8
        # every thumbnail loaded from /items/{id}/image
        loaded = "[...document.querySelectorAll('#hits img')]"
        page.wait_for_function(f"{loaded}.every(i => i.complete && i.naturalWidth > 0)")
        assert "ms" in page.text_content("#status")

        page.evaluate("delete document.body.dataset.result")
        page.select_option("#dim", "2")
        assert _result(page)["dim"] == 2

        page.evaluate("delete document.body.dataset.result")
        page.check("#funnel")
        page.click("#go")
        assert _result(page)["funnel"] == [2, 4]

        buffer = io.BytesIO()
        Image.fromarray(np.eye(8, dtype=np.uint8) * 255, "L").save(buffer, format="PNG")
        page.evaluate("delete document.body.dataset.result")
        page.set_input_files(
            "#upload",
            files=[{"name": "q.png", "mimeType": "image/png", "buffer": buffer.getvalue()}],
        )
        assert _result(page)["query"] == {"upload": True}

        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # a bad upload is shown as the service's message, not a blank page
        page.set_input_files(
            "#upload", files=[{"name": "bad.png", "mimeType": "image/png", "buffer": b"nope"}]
        )
        page.wait_for_function("document.body.dataset.error !== undefined")
        assert "image: " in page.text_content("#error")
        browser.close()
