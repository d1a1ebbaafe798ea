"""A self-contained ``report.html`` for a run: every image embedded, no network needed.

A report is a list of sections; each section is a title and HTML. The page has no scripts
and no external resources, so it opens anywhere and can be mailed to a colleague.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 14px; } td, th { padding: .25em .8em; border-bottom: 1px solid #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 13px; }
img.px { image-rendering: pixelated; } pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: 13px; }
"""


def png_tag(png: bytes, alt: str, pixelated: bool = False, width: int | None = None) -> str:
    data = base64.b64encode(png).decode("ascii")
    cls = ' class="px"' if pixelated else ""
    w = f' width="{width}"' if width else ""
    return f'<img{cls}{w} alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def figure(png: bytes, caption: str, pixelated: bool = False, width: int | None = None) -> str:
    return f"<figure>{png_tag(png, caption, pixelated, width)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def table(rows: list[tuple], header: tuple | None = None) -> str:
    def cell(v, tag="td"):
        if isinstance(v, float):
            return f'<{tag} class="num">{v:.4g}</{tag}>'
        if isinstance(v, int) and not isinstance(v, bool):
            return f'<{tag} class="num">{v}</{tag}>'
        return f"<{tag}>{html.escape(str(v))}</{tag}>"

    head = "<tr>" + "".join(cell(h, "th") for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


@dataclass
class Report:
    title: str
    sections: list[tuple[str, str]] = field(default_factory=list)

    def add(self, title: str, body_html: str) -> None:
        self.sections.append((title, body_html))

    def render(self) -> str:
        parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>",
                 f"<style>{STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>"]
        for title, body in self.sections:
            slug = "".join(c if c.isalnum() else "-" for c in title.lower())
            parts.append(f"<section id='{slug}'><h2>{html.escape(title)}</h2>{body}</section>")
        parts.append("</body></html>")
        return "\n".join(parts)
