"""One self-contained HTML file per study: the Markdown report with every figure embedded as a
data URI and inline CSS, so it opens offline, from e-mail or a CI artefact, with nothing beside it.

Markdown -> HTML is the maintained ``markdown`` package (tables, and Markdown inside the
``<details markdown="1">`` blocks that fold long tables); only image embedding and the page shell
are ours.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import markdown

from repvae.files import write_text

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; display: block; margin: 1em 0; }
code, pre { background: #f5f5f5; padding: 0.1em 0.3em; }
details { margin: 1em 0; }
summary { cursor: pointer; font-weight: 600; }
"""

_IMG = re.compile(r'<img alt="([^"]*)" src="([^"]+)" ?/?>')


def _embed(match: re.Match, base: Path) -> str:
    alt, src = match.group(1), match.group(2)
    path = (base / html.unescape(src)).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: figure referenced by the report is missing")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{alt}" src="data:image/png;base64,{data}">'


def markdown_to_html(markdown_path: Path, html_path: Path | None = None) -> Path:
    """Render ``results.md`` (and the PNGs it links) into one standalone ``.html`` file."""
    text = markdown_path.read_text()
    body = markdown.markdown(text, extensions=["tables", "fenced_code", "md_in_html"])
    body = _IMG.sub(lambda m: _embed(m, markdown_path.parent), body)
    title = next((line[2:] for line in text.splitlines() if line.startswith("# ")), "repvae report")
    page = (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )
    html_path = html_path or markdown_path.with_suffix(".html")
    write_text(html_path, page)
    return html_path
