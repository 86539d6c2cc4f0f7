"""report.html and report.md: self-contained, complete, escaped, deterministic; every CSV neutralised."""

from __future__ import annotations

import base64
import csv
import hashlib
import re
from html.parser import HTMLParser

from payloads import FORMULA_UA, IMG_PATH, SCRIPT_UA

from forensics.report import build_report
from forensics.safe import html_text

SECTIONS = [
    "summary",
    "charts",
    "findings",
    "cleared",
    "timeline",
    "inventory",
    "inputs",
    "unparsed",
    "coverage",
]


class Page(HTMLParser):
    """What a test needs from a report: title, summary cards, images, sections, scripts, handlers, text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.cards: dict[str, str] = {}
        self.images: list[dict[str, str]] = []
        self.sections: list[str] = []
        self.scripts = 0
        self.handlers: list[str] = []
        self.text: list[str] = []
        self.csp = ""
        self._in: list[str] = []
        self._card: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._in.append(tag)
        if tag == "script":
            self.scripts += 1
        self.handlers += [k for k in a if k.startswith("on")]
        if tag == "img":
            self.images.append(a)
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy":
            self.csp = a.get("content") or ""
        if tag == "section":
            self.sections.append(a.get("id", ""))
        if tag == "span" and "data-key" in a:
            self._card = a["data-key"]
            self.cards[self._card] = ""

    def handle_endtag(self, tag):
        if self._in and self._in[-1] == tag:
            self._in.pop()
        if tag == "span":
            self._card = None

    def handle_data(self, data):
        if self._in and self._in[-1] == "title":
            self.title += data
        if self._card:
            self.cards[self._card] += data
        self.text.append(data)


def parse(html: str) -> Page:
    p = Page()
    p.feed(html)
    return p


def png_size(uri: str) -> tuple[int, int]:
    assert uri.startswith("data:image/png;base64,")
    raw = base64.b64decode(uri.split(",", 1)[1], validate=True)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR"
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


def check_summary(page: Page, doc: dict) -> None:
    window = next(f for f in doc["findings"] if f["kind"] == "exfiltration_window")
    assert page.cards["records"] == f"{window['distinct_objects']:,}"
    assert page.cards["addresses"] == f"{len(window['actor']['client_ips']):,}"
    assert page.cards["window"] == f"{window['start'][:10]} → {window['end'][:10]}"
    assert page.cards["endpoint"] == f"{window['method']} {window['endpoint']}"


def test_report_html_is_self_contained_and_complete(sample_case):
    html = (sample_case.case / "report.html").read_text(encoding="utf-8")
    page = parse(html)
    assert page.title == "API breach forensics report"
    assert [s for s in page.sections if s != "method"] == SECTIONS
    check_summary(page, sample_case.doc)
    assert page.scripts == 0 and not page.handlers
    assert "default-src 'none'" in page.csp and "img-src data:" in page.csp
    # No network: nothing refers to another resource; every image is inline and a real PNG.
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!data:|#)""", html)
    charts = sorted(p.name for p in (sample_case.case / "charts").glob("*.png"))
    assert len(page.images) == len(charts) == 6
    for img in page.images:
        w, h = png_size(img["src"])
        assert w >= 1000 and h >= 400
    text = " ".join(page.text)
    attacker = sample_case.truth["attackers"][0]
    assert attacker["first_request"][:19].replace("T", " ") in text
    assert attacker["last_request"][:19].replace("T", " ") in text
    for f in sample_case.doc["findings"]:
        assert f["query"] in text and f["summary"] in text
    for c in sample_case.doc["cleared"]:
        assert c["why"] in text
    # Inputs with their hashes, the rejected line, the unknown file, censoring.
    assert "sample_logs/har/app-team-repro.har" in text
    assert "289849155ec3bbe38d0a2a62ddf888dbc5e8d089ab79a18af0d3510cbb8231f9" in text
    assert "truncated line: a quoted field is never closed" in text
    assert "sample_logs/truth.json" in text
    assert "No: the evidence covers 24 day(s) before the window and 4 day(s) after it" in text


def test_report_md_has_the_same_content(sample_case):
    md = (sample_case.case / "report.md").read_text(encoding="utf-8")
    html = parse((sample_case.case / "report.html").read_text(encoding="utf-8"))
    for name in (p.name for p in (sample_case.case / "charts").glob("*.png")):
        assert f"(charts/{name})" in md
    for title in (
        "Executive summary",
        "Findings",
        "Cleared after examination",
        "Timeline",
        "Exposed endpoints",
    ):
        assert f"## {title}" in md
    assert f"| {html.cards['records']} | {html.cards['addresses']} |" in md
    assert md.count("```text\nSELECT * FROM events") == len(sample_case.doc["findings"])


def test_same_case_same_report(sample_case):
    def digest() -> dict[str, str]:
        names = ["report.html", "report.md", "timeline.jsonl", "timeline.csv", "timeline.md"]
        names += [f"charts/{p.name}" for p in (sample_case.case / "charts").glob("*.png")]
        return {n: hashlib.sha256((sample_case.case / n).read_bytes()).hexdigest() for n in sorted(names)}

    before = digest()
    paths = build_report(sample_case.case)
    assert digest() == before
    assert paths["report_html"] == sample_case.case / "report.html"


def test_attacker_text_is_escaped(injected_case):
    html = (injected_case.case / "report.html").read_text(encoding="utf-8")
    page = parse(html)
    assert page.scripts == 0 and not page.handlers
    assert "<script>document" not in html and "<img src=x" not in html
    assert html_text(SCRIPT_UA) in html and html_text(IMG_PATH) in html
    text = " ".join(page.text)
    assert SCRIPT_UA in text and IMG_PATH in text  # shown as text
    md = (injected_case.case / "report.md").read_text(encoding="utf-8")
    assert "<script" not in md and "<img" not in md
    assert "&lt;script&gt;document.title\\=" not in md  # '=' needs no escape; the payload reads back whole
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in md
    assert "&lt;img src=x onerror=document.title=&#x27;pwned2&#x27;&gt;" in md


def _formula(cell: str) -> bool:
    return bool(re.match(r"^[=+\-@\t\r]", cell)) and not re.match(
        r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$", cell
    )


def test_every_csv_is_neutralised(injected_case):
    written = sorted(p.name for p in injected_case.case.glob("*.csv"))
    assert written == ["affected_records.csv", "iocs.csv", "timeline.csv"]
    for name in written:
        with open(injected_case.case / name, newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                assert not any(_formula(c) for c in row), (name, row)
    for name in ("timeline.csv", "iocs.csv"):
        with open(injected_case.case / name, newline="", encoding="utf-8") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        assert "'" + FORMULA_UA in cells, name


def test_markdown_escaping_keeps_evidence_inert():
    from forensics.report.markdown import md_code, md_text

    cell = md_text("a | b [x](http://evil.example) *bold* <b>\nnext")
    assert cell == "a \\| b \\[x\\](http://evil.example) \\*bold\\* &lt;b&gt; next"
    block = md_code("SELECT '```' FROM events")
    fence = block.splitlines()[0].removesuffix("text")
    assert len(fence) == 4 and block.endswith("\n" + fence)
