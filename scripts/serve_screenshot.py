"""A screenshot of the service's page searching a store, in headless Chromium (Playwright).

    python scripts/serve_screenshot.py STORE OUT.png [--id 7] [--dim 16] [--funnel]

Starts `repvae serve STORE` on a free loopback port, opens the page at ``/?id=ID&dim=M``, waits
for the neighbours and their thumbnails, and saves the page.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--id", type=int, default=7)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("-k", type=int, default=12)
    parser.add_argument("--funnel", action="store_true")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "repvae.cli", "serve", str(args.store), "--port", str(port)]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            funnel = "&funnel=1" if args.funnel else ""
            page.goto(f"{url}/?id={args.id}&dim={args.dim}&k={args.k}{funnel}")
            page.wait_for_function("document.body.dataset.result !== undefined")
            page.wait_for_function(
                "[...document.querySelectorAll('#hits img')]"
                ".every(i => i.complete && i.naturalWidth > 0)"
            )
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            print(page.text_content("#status"))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
