"""The report as blocks (headings with anchors, paragraphs, lists, tables, figures), rendered to
Markdown and to one self-contained HTML page, and the tidy rows of ``results.csv``.

Text is plain: a paragraph or list item is a string or a sequence of spans, where a span is a
string, :class:`Code` (a command, shown as code) or :class:`Link` (to a heading's anchor). Every
string, wherever it comes from, is escaped for the format it is written in (control characters
shown as ``\\xNN`` first, :func:`ticketlab.text.visible`); anchors are made here, of
``[a-z0-9-]`` only.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from ticketlab.study.safepath import StudyFolder
from ticketlab.text import csv_cell, visible

#: Folder (in the study folder) of the report's PNGs.
FIGURE_DIR = "report_figures"
#: Resolution of the report's figures: a figure of W inches is W * DPI pixels wide, shown at that size.
DPI = 100
#: Columns of ``results.csv``.
COLUMNS = (
    "section", "model", "dataset", "density", "method_a", "method_b", "seed_a", "seed_b", "label_a", "label_b",
    "layer", "metric", "value", "expected", "lift", "z", "p", "spread", "spread_lo", "spread_hi", "n", "note",
)


@dataclass(frozen=True)
class Code:
    """A command or a name shown as code."""

    text: str


@dataclass(frozen=True)
class Link:
    """``text`` linking to the heading with ``anchor`` (made by :meth:`Document.heading`)."""

    text: str
    anchor: str


Span = Union[str, Code, Link]
Inline = Union[str, Sequence[Span]]


# ------------------------------------------------------------------------------ numbers as text
def num(x: Any, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits; ``n/a`` for None and non-finite numbers."""
    if x is None or (isinstance(x, (float, np.floating)) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.{digits}g}"


def pnum(p: Any) -> str:
    """A p-value for the text: two digits; below 1e-300 (where the normal tail underflows, or has
    lost its precision) as "under 1e-300"."""
    if isinstance(p, (float, np.floating)) and 0.0 <= p < 1e-300:
        return "under 1e-300"
    return num(p, 2)


def spread(mean: float, lo: float, hi: float, n: int | None = None) -> str:
    """``mean [lo–hi]`` (and ``(n=…)``)."""
    if not math.isfinite(mean):
        return "n/a"
    out = f"{num(mean)} [{num(lo)}–{num(hi)}]"
    return out if n is None else f"{out} (n={n})"


def seconds(s: float | None) -> str:
    """A duration: ``0.4 s``, ``12 s``, ``4 min 12 s``, ``1 h 03 min``."""
    if s is None or not math.isfinite(s):
        return "n/a"
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    m, sec = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-")[:40] or "x"


def _spans(body: Inline) -> list[Span]:
    return [body] if isinstance(body, str) else list(body)


# ------------------------------------------------------------------------------ the document
class Document:
    """Blocks of the report (rendered to Markdown and HTML), its figures and its CSV rows."""

    def __init__(self, folder: StudyFolder) -> None:
        self.blocks: list[tuple[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.figures: dict[str, Path] = {}
        self.folder = folder
        self._anchors: set[str] = set()

    def heading(self, level: int, text: str, anchor: str | None = None) -> str:
        """Add a heading; returns its anchor (unique in the document)."""
        base = re.sub(r"[^a-z0-9]+", "-", (anchor or text).lower()).strip("-")[:60] or "section"
        name, i = base, 2
        while name in self._anchors:
            name, i = f"{base}-{i}", i + 1
        self._anchors.add(name)
        self.blocks.append(("h", (level, text, name)))
        return name

    def para(self, body: Inline) -> None:
        self.blocks.append(("p", _spans(body)))

    def bullets(self, items: Sequence[Inline], css: str | None = None) -> None:
        if items:
            self.blocks.append(("ul", ([_spans(i) for i in items], css)))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if rows:
            self.blocks.append(("table", (list(header), [list(r) for r in rows])))

    def insert_bullets(self, at: int, items: Sequence[Inline], css: str | None = None) -> None:
        """Bullets at block position ``at`` (``len(doc.blocks)`` when the place was reached): for text
        that is written before the numbers it reports have been computed."""
        if items:
            self.blocks.insert(at, ("ul", ([_spans(i) for i in items], css)))

    def contents(self, levels: tuple[int, ...] = (2, 3)) -> None:
        """A table of contents of the headings of ``levels`` after this point (filled in when rendered)."""
        self.blocks.append(("toc", levels))

    def figure(self, fig: Any, stem: str, caption: str) -> None:
        from ticketlab.metrics._plot import save_figure

        name = f"{len(self.figures) + 1:02d}-{_slug(stem)}.png"
        self.folder.folder(FIGURE_DIR, create=True)
        path = save_figure(fig, self.folder.writable(f"{FIGURE_DIR}/{name}"), dpi=DPI)
        self.figures[name] = path
        self.blocks.append(("fig", (f"{FIGURE_DIR}/{name}", path, caption)))

    def row(self, **kw: Any) -> None:
        self.rows.append(kw)

    def _toc(self, levels: tuple[int, ...]) -> list[tuple[int, str, str]]:
        """(level, text, anchor) of the headings of ``levels`` after the table of contents."""
        start = next((i for i, (kind, _) in enumerate(self.blocks) if kind == "toc"), 0)
        return [(b[0], b[1], b[2]) for kind, b in self.blocks[start:] if kind == "h" and b[0] in levels]

    # ---------------------------------------------------------------- Markdown
    def markdown(self) -> str:
        def esc(s: Any) -> str:
            s = html.escape(visible(str(s)), quote=False)
            return re.sub(r"([\\`*_\[\]|#<>])", r"\\\1", s)

        def code(s: str) -> str:
            s = visible(s)
            fence = "`" * (max((len(r) for r in re.findall(r"`+", s)), default=0) + 1)
            pad = " " if s.startswith("`") or s.endswith("`") else ""
            return f"{fence}{pad}{s}{pad}{fence}"

        def inline(spans: list[Span]) -> str:
            out = []
            for s in spans:
                if isinstance(s, Code):
                    out.append(code(s.text))
                elif isinstance(s, Link):
                    out.append(f"[{esc(s.text)}](#{s.anchor})")
                else:
                    out.append(esc(s))
            return "".join(out)

        out = []
        for kind, body in self.blocks:
            if kind == "h":
                out.append(f'<a id="{body[2]}"></a>\n\n' + "#" * body[0] + " " + esc(body[1]))
            elif kind == "p":
                out.append(inline(body))
            elif kind == "ul":
                out.append("\n".join("- " + inline(item) for item in body[0]))
            elif kind == "toc":
                top = min(body)
                out.append("\n".join("  " * (level - top) + f"- [{esc(text)}](#{anchor})"
                                     for level, text, anchor in self._toc(body)))
            elif kind == "table":
                header, rows = body
                lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
                lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
                out.append("\n".join(lines))
            else:
                rel, _, caption = body
                out.append(f"![{esc(caption)}]({rel})\n\n*{esc(caption)}*")
        return "\n\n".join(out) + "\n"

    # ---------------------------------------------------------------- HTML
    def html(self, title: str) -> str:
        def e(s: Any) -> str:  # control characters (ESC, ...) shown as \xNN, then HTML-escaped
            return html.escape(visible(s))

        def inline(spans: list[Span]) -> str:
            out = []
            for s in spans:
                if isinstance(s, Code):
                    out.append(f"<code>{e(s.text)}</code>")
                elif isinstance(s, Link):
                    out.append(f'<a href="#{s.anchor}">{e(s.text)}</a>')
                else:
                    out.append(e(s))
            return "".join(out)

        parts = [
            "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            # no script, no external resource: only inline style and data: images
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            'img-src data:; style-src \'unsafe-inline\'">',
            f"<title>{e(title)}</title>",
            "<style>body{font-family:system-ui,sans-serif;max-width:1260px;margin:1.5em auto;padding:0 1em;"
            "line-height:1.45;color:#222}h1{margin-bottom:.3em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;"
            "margin-top:2em}table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #bbb;"
            "padding:3px 7px;text-align:left;vertical-align:top}th{background:#eee}tbody tr:nth-child(even){"
            "background:#fafafa}figure{margin:1.2em 0}img{max-width:100%;height:auto}figcaption{font-size:90%;"
            "color:#444;max-width:1100px}code{background:#f3f3f3;padding:0 .25em;border-radius:3px}"
            "ul.findings{background:#f5f8fc;border:1px solid #cdd9e8;border-radius:4px;padding:.8em 1em .8em 2.2em}"
            "ul.findings li{margin:.35em 0}nav ul{margin:.2em 0}td:first-child{white-space:nowrap}"
            "div.wide{overflow-x:auto;max-width:100%}</style>",
            "</head>", "<body>",
        ]
        for kind, body in self.blocks:
            if kind == "h":
                parts.append(f'<h{body[0]} id="{body[2]}">{e(body[1])}</h{body[0]}>')
            elif kind == "p":
                parts.append(f"<p>{inline(body)}</p>")
            elif kind == "ul":
                items, css = body
                parts.append(f'<ul class="{css}">' if css else "<ul>")
                parts += [f"<li>{inline(item)}</li>" for item in items]
                parts.append("</ul>")
            elif kind == "toc":
                parts.append("<nav>" + _html_toc(self._toc(body), e) + "</nav>")
            elif kind == "table":
                header, rows = body
                cells = "".join(f"<th>{e(h)}</th>" for h in header)
                parts.append(f'<div class="wide"><table><thead><tr>{cells}</tr></thead><tbody>')
                parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
                parts.append("</tbody></table></div>")
            else:
                _, path, caption = body
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(caption)}">'
                             f"<figcaption>{e(caption)}</figcaption></figure>")
        parts += ["</body>", "</html>"]
        return "\n".join(parts) + "\n"

    # ---------------------------------------------------------------- CSV
    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="raise")
        w.writeheader()
        for r in self.rows:
            w.writerow({k: csv_cell(_clean(r.get(k))) for k in COLUMNS})
        return buf.getvalue()


def _html_toc(items: list[tuple[int, str, str]], e: Any) -> str:
    """Nested ``<ul>`` of (level, text, anchor)."""
    out, depth = [], 0
    top = min((level for level, _, _ in items), default=0)
    for level, text, anchor in items:
        want = level - top + 1
        while depth < want:
            out.append("<ul>")
            depth += 1
        while depth > want:
            out.append("</ul>")
            depth -= 1
        out.append(f'<li><a href="#{anchor}">{e(text)}</a></li>')
    out += ["</ul>"] * depth
    return "".join(out)


def _clean(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return repr(float(v)) if math.isfinite(v) else ""
    if isinstance(v, (np.integer, np.bool_)):
        return v.item()
    return "" if v is None else v
