"""report.html: one self-contained file (inline CSS, charts as data: URIs, no script, no network).

Every text of the report goes through :func:`forensics.safe.html_text` here and nowhere else; the only
markup is this module's own. A Content-Security-Policy that allows no script and no network load is set
as well, so that even a mistake in escaping could not run anything or call anywhere.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from ..safe import html_text as e
from .content import KV, Bullets, Cards, Code, Details, Figure, P, Report, Section, Sub, Table

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

CSS = """
:root { --ink:#1c2833; --muted:#5d6d7e; --line:#d5d8dc; --bg:#fbfcfc; --red:#c0392b; --amber:#d68910;
        --blue:#2e86c1; --green:#1e8449; }
* { box-sizing: border-box; }
body { font: 15px/1.5 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: #fff;
       margin: 0; }
header, main, footer { max-width: 1280px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; border-bottom: 3px solid var(--ink); }
h1 { font-size: 28px; margin: 0 0 6px; }
h2 { font-size: 21px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 17px; margin: 26px 0 8px; }
.meta { color: var(--muted); font-size: 13px; margin: 0 0 4px; }
nav { margin: 10px 0 14px; font-size: 13px; }
nav a { margin-right: 14px; color: var(--blue); text-decoration: none; }
p.lead { font-size: 17px; font-weight: 600; }
p.note { color: var(--muted); font-size: 13px; }
p.warn { color: var(--red); font-weight: 600; }
.cards { display: grid; grid-template-columns: 1fr 1fr 1.7fr 2fr; gap: 12px; margin: 14px 0 18px; }
.card { border: 1px solid var(--line); border-top: 5px solid var(--red); border-radius: 6px; padding: 12px 14px;
        background: var(--bg); }
.card .num { display: block; font-size: 22px; font-weight: 700; overflow-wrap: anywhere; }
.card .lbl { display: block; color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 14px; font-size: 13px; }
caption { text-align: left; color: var(--muted); font-size: 13px; padding: 4px 0; caption-side: top; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #eef1f3; font-weight: 600; }
tbody tr:nth-child(even) td { background: #f8f9f9; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.mono, .mono { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 12px; }
table.kv th { width: 26%; background: #f4f6f7; }
pre { background: #f4f6f7; border: 1px solid var(--line); border-radius: 4px; padding: 10px 12px; font-size: 12px;
      white-space: pre-wrap; overflow-wrap: anywhere; }
figure { margin: 18px 0 28px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 13px; }
figcaption b { color: var(--ink); }
details { margin: 6px 0 12px; }
summary { cursor: pointer; color: var(--blue); }
article.finding { border-left: 5px solid var(--line); padding: 2px 0 4px 16px; margin: 18px 0; }
article.critical { border-left-color: var(--red); }
article.high { border-left-color: var(--amber); }
article.medium { border-left-color: var(--blue); }
article.low { border-left-color: var(--green); }
.badge { display: inline-block; font-size: 12px; font-weight: 700; color: #fff; border-radius: 3px; padding: 1px 7px;
         margin-left: 8px; vertical-align: middle; background: var(--muted); text-transform: uppercase; }
.badge.critical { background: var(--red); } .badge.high { background: var(--amber); }
.badge.medium { background: var(--blue); } .badge.low { background: var(--green); }
ul.mono li { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 12px; overflow-wrap: anywhere; }
footer { color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); margin-top: 40px; padding: 12px 24px; }
@media print { details { display: block; } figure, article.finding { break-inside: avoid; } }
"""


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _block(b: Any) -> str:
    if isinstance(b, P):
        cls = f' class="{e(b.style)}"' if b.style else ""
        return f"<p{cls}>{e(b.text)}</p>"
    if isinstance(b, Cards):
        cards = "".join(
            f'<div class="card"><span class="num" data-key="{e(k)}">{e(v)}</span>'
            f'<span class="lbl">{e(label)}</span></div>'
            for k, v, label in b.items
        )
        return f'<div class="cards">{cards}</div>'
    if isinstance(b, KV):
        rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in b.rows)
        return f'<table class="kv"><tbody>{rows}</tbody></table>'
    if isinstance(b, Table):
        head = "".join(f"<th>{e(c)}</th>" for c in b.columns)

        def cell(i: int, v: Any) -> str:
            cls = "num" if i in b.numeric else "mono" if i in b.mono else ""
            return f'<td class="{cls}">{e(v)}</td>' if cls else f"<td>{e(v)}</td>"

        body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>" for r in b.rows)
        cap = f"<caption>{e(b.caption)}</caption>" if b.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(b, Code):
        return f"<pre><code>{e(b.text)}</code></pre>"
    if isinstance(b, Bullets):
        cls = ' class="mono"' if b.mono else ""
        return f"<ul{cls}>" + "".join(f"<li>{e(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Figure):
        c = b.chart
        return (
            f'<figure id="chart-{e(c.name)}"><img src="{data_uri(c.path)}" alt="{e(c.title)}" '
            f'data-chart="{e(c.name)}"><figcaption><b>{e(c.title)}.</b> {e(c.caption)} '
            f"(charts/{e(c.path.name)})</figcaption></figure>"
        )
    if isinstance(b, Details):
        return f"<details><summary>{e(b.summary)}</summary>{''.join(_block(x) for x in b.blocks)}</details>"
    if isinstance(b, Sub):
        badge = f'<span class="badge {e(b.tag)}">{e(b.tag)}</span>' if b.tag else ""
        inner = "".join(_block(x) for x in b.blocks)
        return f'<article class="finding {e(b.tag)}" id="{e(b.anchor)}"><h3>{e(b.title)}{badge}</h3>{inner}</article>'
    raise TypeError(f"unknown block {type(b).__name__}")


def _section(s: Section) -> str:
    return (
        f'<section id="{e(s.anchor)}"><h2>{e(s.title)}</h2>{"".join(_block(b) for b in s.blocks)}</section>'
    )


def render(report: Report) -> str:
    nav = "".join(f'<a href="#{e(s.anchor)}">{e(s.title)}</a>' for s in report.sections)
    meta = "".join(f'<p class="meta">{e(m)}</p>' for m in report.meta)
    body = "\n".join(_section(s) for s in report.sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{e(report.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{e(report.title)}</h1>{meta}<nav>{nav}</nav></header>\n"
        f"<main>\n{body}\n</main>\n"
        "<footer>Generated by forensics from findings.json, the case's events and manifest.json. "
        "No script, no network: this file is complete on its own.</footer>\n"
        "</body>\n</html>\n"
    )


def write(report: Report, path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render(report), encoding="utf-8")
    tmp.replace(path)
    return path
