"""The HTML report in a real browser (headless Chromium): every figure loads offline, the tables
render (the long one folded until opened), and a screenshot is saved. Skipped, with the reason,
where Chromium is absent; .ci/run installs it."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from repvae.plots.figures import accuracy_vs_latent, latent_scatter
from repvae.report.html import markdown_to_html
from repvae.report.study import collapsed
from repvae.report.tables import markdown_table

CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)"
)

HARNESS = """<!doctype html><html><body>
<iframe id="r" src="results.html" width="1200" height="900"></iframe>
<script>
document.getElementById("r").onload = () => {
  const d = document.getElementById("r").contentDocument;
  const images = [...d.images];
  const loaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  const folded = [...d.querySelectorAll("details")];
  const report = {images: images.length, loaded: loaded,
                  tables: d.querySelectorAll("table").length, title: d.title,
                  folded: folded.filter(e => !e.open && e.querySelector("table")).length,
                  shown: [...d.querySelectorAll("table")].filter(t => t.checkVisibility()).length};
  document.body.setAttribute("data-report", JSON.stringify(report));
};
</script></body></html>"""


def _chromium(tmp_path: Path, *args: str) -> str:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    done = subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


def _small_report(folder: Path) -> Path:
    rows = [
        {"method": m, "latent": n, "kind": "map", "accuracy": a, "std": 0.01}
        for m, base in (("VAE", 0.9), ("InfoVAE", 0.92))
        for n, a in ((2, base - 0.3), (8, base), (16, base + 0.05))
    ]
    accuracy_vs_latent(rows, folder / "accuracy.png")
    rng = np.random.default_rng(0)
    latent_scatter(rng.normal(size=(300, 2)), rng.integers(0, 10, 300), folder / "latent.png")
    table = markdown_table(rows, ["method", "latent", "accuracy"])
    every = collapsed("every run", table)  # folded: shown when the reader opens it
    (folder / "results.md").write_text(
        f"# A study\n\n{table}\n\n![accuracy](accuracy.png)\n\n![latent](latent.png)\n\n"
        f"## Every run\n\n{every}\n"
    )
    return markdown_to_html(folder / "results.md")


def _rendered(tmp_path: Path) -> dict:
    """What the browser saw of ``tmp_path/results.html``: images, images loaded, tables, title."""
    (tmp_path / "harness.html").write_text(HARNESS)
    harness = (tmp_path / "harness.html").as_uri()
    flags = ["--allow-file-access-from-files", "--virtual-time-budget=10000", "--dump-dom"]
    dom = _chromium(tmp_path, *flags, harness)
    found = re.search(r'data-report="([^"]+)"', dom)
    assert found, dom[:500]
    return json.loads(found.group(1).replace("&quot;", '"'))


def test_report_renders_offline_with_every_image(tmp_path):
    page = _small_report(tmp_path)
    assert _rendered(tmp_path) == {
        "images": 2,
        "loaded": 2,
        "tables": 2,
        "title": "A study",
        "folded": 1,
        "shown": 1,
    }

    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000

    # The check can fail: a damaged embedded figure is seen as not loaded.
    html = page.read_text()
    last = html.rindex("base64,") + len("base64,")
    page.write_text(html[:last] + "AAAA" + html[last + 200 :])
    assert _rendered(tmp_path)["loaded"] == 1
