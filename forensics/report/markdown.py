"""report.md: the report as Markdown, with the same content as report.html (charts referenced as files
in charts/, next to it).

Markdown renderers pass raw HTML through and turn brackets into links, so evidence text is made inert by
:func:`md_text` (HTML-escaped with :func:`forensics.safe.html_text`, Markdown punctuation backslash-escaped)
and code by :func:`md_code` (a fence longer than any backtick run inside it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..safe import html_text, terminal
from .content import KV, Bullets, Cards, Code, Details, Figure, P, Report, Section, Sub, Table

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def md_text(value: object, limit: int = 4000) -> str:
    """Evidence text made inert in Markdown: one line, Markdown punctuation backslash-escaped (no links,
    emphasis or table cells from a user agent), then HTML-escaped (renderers pass raw HTML through)."""
    s = terminal(value, limit, lines=True).replace("\n", " ").replace("\t", " ")
    return html_text(_MD_SPECIAL.sub(r"\\\1", s))


def md_code(text: str) -> str:
    """A fenced code block whose fence no backtick run in ``text`` can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{terminal(text, 100_000, lines=True)}\n{fence}"


def _table(columns: list[str], rows: list[list[Any]], numeric: tuple[int, ...] = ()) -> list[str]:
    head = "| " + " | ".join(md_text(c) for c in columns) + " |"
    rule = "|" + "|".join("---:" if i in numeric else "---" for i in range(len(columns))) + "|"
    body = ["| " + " | ".join(md_text(v) for v in r) + " |" for r in rows]
    return [head, rule, *body]


def _block(b: Any, level: int = 3) -> list[str]:
    if isinstance(b, P):
        text = md_text(b.text)
        if b.style == "lead":
            text = f"**{text}**"
        elif b.style == "warn":
            text = f"**Warning:** {text}"
        elif b.style == "note":
            text = f"_{text}_"
        return [text, ""]
    if isinstance(b, Cards):
        return [*_table([label for _k, _v, label in b.items], [[v for _k, v, _l in b.items]]), ""]
    if isinstance(b, KV):
        return [
            "| | |",
            "|---|---|",
            *[f"| **{md_text(k)}** | {md_text(v)} |" for k, v in b.rows],
            "",
        ]
    if isinstance(b, Table):
        cap = [f"_{md_text(b.caption)}_", ""] if b.caption else []
        return [*cap, *_table(b.columns, b.rows, b.numeric), ""]
    if isinstance(b, Code):
        return [md_code(b.text), ""]
    if isinstance(b, Bullets):
        return [*(f"- {md_text(i)}" for i in b.items), ""]
    if isinstance(b, Figure):
        c = b.chart
        return [
            f"![{md_text(c.title)}](charts/{c.path.name})",
            "",
            f"_{md_text(c.title)}. {md_text(c.caption)}_",
            "",
        ]
    if isinstance(b, Details):
        out = [f"**{md_text(b.summary)}**", ""]
        for x in b.blocks:
            out += _block(x, level)
        return out
    if isinstance(b, Sub):
        tag = f" ({md_text(b.tag)})" if b.tag else ""
        out = [f"{'#' * level} {md_text(b.title)}{tag}", ""]
        for x in b.blocks:
            out += _block(x, level + 1)
        return out
    raise TypeError(f"unknown block {type(b).__name__}")


def _section(s: Section) -> list[str]:
    out = [f"## {md_text(s.title)}", ""]
    for b in s.blocks:
        out += _block(b)
    return out


def render(report: Report) -> str:
    lines = [f"# {md_text(report.title)}", ""]
    lines += [f"_{md_text(m)}_  " for m in report.meta]
    lines.append("")
    lines.append("Contents: " + " · ".join(md_text(s.title) for s in report.sections))
    lines.append("")
    for s in report.sections:
        lines += _section(s)
    return "\n".join(lines).rstrip("\n") + "\n"


def write(report: Report, path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render(report), encoding="utf-8")
    tmp.replace(path)
    return path
