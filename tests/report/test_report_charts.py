"""Charts: every one drawn, a real non-blank PNG, and its numbers adding up to the findings'."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
from matplotlib import image as mpimg

from forensics.report import charts
from forensics.report import data as rdata

EXPECTED = {
    "exfiltration_per_day.png",
    "cumulative_records.png",
    "id_walk_A1.png",
    "top_clients.png",
    "activity_A1.png",
    "coverage.png",
}


def _looks_like_a_chart(path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(path)
    h, w = pixels.shape[:2]
    assert w >= 1000 and h >= 400, (path.name, w, h)
    rgb = pixels[..., :3]
    # Not blank: plenty of non-white pixels, and more than two colours (text, data, shading).
    assert (rgb.min(axis=2) < 0.9).mean() > 0.02, path.name
    assert len(np.unique((rgb * 8).astype(int).reshape(-1, 3), axis=0)) > 8, path.name


def test_every_chart_is_drawn_and_readable(sample_case, hard_case, injected_case):
    for built in (sample_case, hard_case, injected_case):
        names = {p.name for p in (built.case / "charts").glob("*.png")}
        assert names == EXPECTED, (built.case, names)
        for name in names:
            _looks_like_a_chart(built.case / "charts" / name)


def test_chart_numbers_add_up_to_the_findings(sample_case, hard_case):
    for built in (sample_case, hard_case):
        d = rdata.load(built.case)
        window = next(f for f in built.doc["findings"] if f["kind"] == "exfiltration_window")
        actor = d.main_actors()[0]
        assert actor["id"] == window["actor"]["id"]
        returned, requested = charts.cumulative(d, actor)
        assert returned.get_column("cum")[-1] == window["distinct_objects"]
        assert requested.get_column("cum")[-1] == window["objects_requested"]
        daily = charts.taken_per_day(d, actor)
        assert daily.height == (d.last_ts.date() - d.first_ts.date()).days + 1
        assert int(daily.get_column("bytes").sum()) == window["bytes"]
        # No re-reads in these scenarios, so the per-day records add up to the total.
        assert int(daily.get_column("records").sum()) == window["distinct_objects"]
        assert d.finding_events(window).height == window["requests"]


def test_charts_follow_the_case(injected_case, tmp_path):
    """One address: the id walk colours it; a stale chart of a former actor is removed."""
    d = rdata.load(injected_case.case)
    (tmp_path / "id_walk_A9.png").write_bytes(b"old")
    drawn = charts.draw_all(d, tmp_path)
    assert not (tmp_path / "id_walk_A9.png").exists()
    assert {c.path.name for c in drawn} == EXPECTED
    assert all(c.title and c.caption for c in drawn)


def test_aggregates_scale(sample_case):
    """Charts plot aggregates: a million-event frame draws about as fast as the sample."""
    d = rdata.load(sample_case.case)
    big = pl.concat([d.events] * 34)  # ~1M events
    rng = np.random.default_rng(0)
    big = big.with_columns(
        (pl.col("ts") + pl.Series(rng.integers(0, 3_600_000_000, big.height)).cast(pl.Duration("us"))).alias(
            "ts"
        )
    )
    d.events = big
    d._finding_events.clear()
    start = time.perf_counter()
    actor = d.main_actors()[0]
    charts.top_clients(d, sample_case.case / "charts")
    charts.id_walk(d, sample_case.case / "charts", 0, actor)
    charts.activity_heatmap(d, sample_case.case / "charts", 0, actor)
    assert time.perf_counter() - start < 20
    charts.draw_all(rdata.load(sample_case.case), sample_case.case / "charts")  # put the real ones back
