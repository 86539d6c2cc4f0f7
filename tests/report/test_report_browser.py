"""report.html in a real browser (headless Chromium): the page a responder opens.

Skipped outside CI when Chromium is missing; in CI (``CI`` set) a missing browser fails the test.
"""

from __future__ import annotations

import numpy as np
from matplotlib import image as mpimg
from payloads import IMG_PATH, SCRIPT_UA
from test_report_html import check_summary, parse, png_size

TITLE = "API breach forensics report"


def test_sample_report_renders(sample_case, chromium, tmp_path):
    dom = chromium.dump_dom(sample_case.case / "report.html")
    page = parse(dom)
    assert page.title == TITLE
    check_summary(page, sample_case.doc)  # the numbers on the page are the findings'
    assert len(page.images) == 6
    for img in page.images:
        w, h = png_size(img["src"])  # the DOM after load still holds decodable PNGs
        assert w >= 1000 and h >= 400
    shot = chromium.screenshot(sample_case.case / "report.html", tmp_path / "report.png")
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (4000, 1400)
    ink = pixels.min(axis=2) < 0.85
    assert ink.mean() > 0.05  # text, cards and charts, not a blank page
    red = (pixels[..., 0] > 0.6) & (pixels[..., 1] < 0.35) & (pixels[..., 2] < 0.35)
    assert red.sum() > 5_000  # the charts' bars and the cards' borders were painted
    rows_with_ink = np.flatnonzero(ink.any(axis=1))
    assert rows_with_ink.max() > 3_000  # the page goes on past the summary: the images took their space


def test_injected_script_does_not_run(injected_case, chromium):
    dom = chromium.dump_dom(injected_case.case / "report.html")
    page = parse(dom)
    assert page.title == TITLE  # document.title='pwned' never ran
    assert page.scripts == 0 and not page.handlers  # no <script>, no <img onerror>
    text = " ".join(page.text)
    assert SCRIPT_UA in text and IMG_PATH in text  # both shown as text
    assert "&lt;script&gt;document.title" in dom
