"""The report: timeline, charts, report.html and report.md, from a case that has been analysed.

One entry point, :func:`build_report`. It reads findings.json (the verdicts), the events (to date and draw
them, read exactly as the analysis read them) and the manifest, and writes into the case directory::

    timeline.jsonl  timeline.csv  timeline.md  charts/*.png  report.html  report.md

Nothing in the outputs depends on the wall clock: the same case gives the same files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import charts as charts_mod
from . import content, data, html, markdown, timeline


def build_report(case_dir: str | Path, on_step: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Write the timeline, the charts, report.html and report.md; return {name: path} of what was written.

    ``on_step`` is told what is being done next (for progress on a terminal).
    """
    step = on_step or (lambda _s: None)
    step("reading the case")
    case = data.load(case_dir)
    step("building the timeline")
    entries = timeline.build(case)
    paths = timeline.write(entries, case.case_dir)
    step("drawing the charts")
    drawn = charts_mod.draw_all(case, case.case_dir / "charts")
    for c in drawn:
        paths[f"chart_{c.name}"] = c.path
    step("writing report.html and report.md")
    report = content.build(case, entries, drawn)
    paths["report_md"] = markdown.write(report, case.case_dir / "report.md")
    paths["report_html"] = html.write(report, case.case_dir / "report.html")
    return paths


__all__ = ["build_report"]
