"""The timeline: Timesketch-ready JSONL, chronological UTC, entries that match the truth of the scenarios."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta

import polars as pl

from forensics.report import data as rdata
from forensics.report import timeline
from forensics.report.data import coverage_gaps


def _lines(case) -> list[dict]:
    return [json.loads(line) for line in (case / "timeline.jsonl").read_text(encoding="utf-8").splitlines()]


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_jsonl_is_timesketch_ready_chronological_utc(sample_case):
    rows = _lines(sample_case.case)
    assert len(rows) > 10
    times = []
    for r in rows:
        assert {"message", "datetime", "timestamp_desc"} <= set(r), r
        assert r["message"] and r["timestamp_desc"]
        t = datetime.fromisoformat(r["datetime"])
        assert t.utcoffset() == timedelta(0) and r["datetime"].endswith("+00:00")
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        assert r["timestamp"] == (t - epoch) // timedelta(microseconds=1)
        times.append(t)
    assert times == sorted(times)


def test_actor_story_matches_the_truth(sample_case):
    rows = _lines(sample_case.case)
    attacker = sample_case.truth["attackers"][0]
    window = next(f for f in sample_case.doc["findings"] if f["kind"] == "exfiltration_window")
    by_kind: dict[str, list[dict]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(r)
    first, last = by_kind["first_request"][0], by_kind["last_request"][0]
    assert _iso(first["datetime"]) == _iso(attacker["first_request"])
    assert _iso(last["datetime"]) == _iso(attacker["last_request"])
    assert first["client_ip"] in attacker["addresses"] and first["actor_id"] == window["actor"]["id"]
    assert first["user_agent"] == attacker["user_agents"][0]
    start, end = by_kind["window_start"][0], by_kind["window_end"][0]
    assert _iso(start["datetime"]) == _iso(window["start"]) and _iso(end["datetime"]) == _iso(window["end"])
    assert start["records"] == window["distinct_objects"] == attacker["records_returned"]
    assert start["finding_id"] == window["id"]
    assert by_kind["first_enumeration"][0]["finding_kind"] == "enumeration"
    assert "pause" not in by_kind  # the standard attacker never pauses
    # The peak day is the day with the most records of the window.
    events = rdata.load(sample_case.case)
    daily = timeline.daily_series(events.finding_events(window))
    peak = by_kind["peak_day"][0]
    assert peak["records"] == daily.get_column("records").max()
    assert _iso(peak["datetime"]).date() == daily.sort("records", descending=True).get_column("day")[0]
    # Evidence bounds per observer, and the scanners as they were found.
    observers = {r["observer"] for r in by_kind["evidence_start"]}
    assert observers == {
        "app/api-prod/7f3a9c1d2e4b5a60",
        "sample_logs/gw1/access.log",
        "sample_logs/gw2/access.log",
        "sample_logs/har/app-team-repro.har",
    }
    assert _iso(by_kind["evidence_start"][0]["datetime"]) <= _iso(sample_case.doc["case"]["first_ts"])
    scans = {f["id"] for f in sample_case.doc["findings"] if f["kind"] == "scanning"}
    assert {r["finding_id"] for r in by_kind["scanning"]} == scans
    assert {r["finding_id"] for r in by_kind["exposure"]} == {
        f["id"]
        for f in sample_case.doc["findings"]
        if f["kind"] in ("sensitive_exposure", "unauthenticated_access")
    }


def test_csv_and_markdown_carry_the_same_entries(sample_case):
    rows = _lines(sample_case.case)
    with open(sample_case.case / "timeline.csv", newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert [r["datetime"] for r in table] == [r["datetime"] for r in rows]
    assert [r["message"] for r in table] == [r["message"] for r in rows]
    md = (sample_case.case / "timeline.md").read_text(encoding="utf-8")
    assert md.count("\n| 20") == len(rows)


def test_hard_scenario_pause_and_pool_change(hard_case):
    rows = _lines(hard_case.case)
    attacker = hard_case.truth["attackers"][0]
    pauses = [r for r in rows if r["kind"] == "pause"]
    assert len(pauses) == len(attacker["pauses"]) == 1
    p, truth = pauses[0], attacker["pauses"][0]
    assert _iso(p["datetime"]).date() == date.fromisoformat(truth["first_day"]) - timedelta(days=1)
    assert _iso(p["end"]).date() == date.fromisoformat(truth["last_day"]) + timedelta(days=1)
    # The residential pool ramps up a few days in: one entry for the change, not one per day after it.
    grows = [r for r in rows if r["kind"] == "address_pool_change" and "grows" in r["message"]]
    assert len(grows) == 1
    ua = [r for r in rows if r["kind"] == "user_agent_change"]
    assert len(ua) <= 2 and all(r["user_agent"] in attacker["user_agents"] for r in ua)


def test_pool_changes_on_an_inline_frame():
    t0 = datetime(2023, 3, 1, tzinfo=UTC)
    rows = []
    for day, n in enumerate([4, 4, 4, 30, 32, 31]):
        for i in range(n):
            rows.append(
                {"ts": t0 + timedelta(days=day, minutes=i), "client": f"203.0.113.{i}", "user_agent": "ua"}
            )
    ev = pl.DataFrame(
        rows, schema={"ts": pl.Datetime("us", "UTC"), "client": pl.String, "user_agent": pl.String}
    )
    entries = timeline._pool_changes(ev, "A1", "A1")
    assert [(e.kind, e.ts.date()) for e in entries] == [("address_pool_change", date(2023, 3, 4))]
    assert "grows: 30 addresses" in entries[0].message


def test_coverage_gaps_are_unexpected_silences_only():
    hours = pl.datetime_range(
        datetime(2023, 1, 1, tzinfo=UTC),
        datetime(2023, 1, 10, 23, tzinfo=UTC),
        "1h",
        eager=True,
        time_zone="UTC",
    )
    frames = []
    hole = (datetime(2023, 1, 5, 6, tzinfo=UTC), datetime(2023, 1, 5, 12, tzinfo=UTC))
    for h in hours:
        if not hole[0] <= h < hole[1]:
            frames.append(("alb", "balancer", h, 30))
        if h.hour % 3 == 0:  # a small gateway: quiet most hours, never a gap
            frames.append(("nginx", "gw", h, 1))
        if h >= datetime(2023, 1, 3, tzinfo=UTC):  # starts two days late
            frames.append(("nginx", "late", h, 12))
    hourly = pl.DataFrame(
        frames,
        schema={
            "source_format": pl.String,
            "observer": pl.String,
            "hour": pl.Datetime("us", "UTC"),
            "events": pl.Int64,
        },
        orient="row",
    )
    gaps = coverage_gaps(hourly)
    got = [(g["observer"], g["start"], g["hours"]) for g in gaps.iter_rows(named=True)]
    assert got == [("late", datetime(2023, 1, 1, tzinfo=UTC), 48), ("balancer", hole[0], 6)]
    assert gaps.filter(pl.col("observer") == "balancer").get_column("expected_events")[0] == 180


def test_a_lost_day_of_balancer_logs_is_a_gap_the_gateways_cover(hard_case):
    gaps = [r for r in _lines(hard_case.case) if r["kind"] == "coverage_gap"]
    assert [(g["observer"], g["datetime"], g["end"]) for g in gaps] == [
        (
            "app/api-prod/7f3a9c1d2e4b5a60",
            "2022-12-20T00:00:00.000000+00:00",
            "2022-12-21T00:00:00.000000+00:00",
        )
    ]
    assert "logged meanwhile by" in gaps[0]["message"] and "gw1/access.log" in gaps[0]["message"]
    html = (hard_case.case / "report.html").read_text(encoding="utf-8")
    assert (
        "1 coverage gap(s) (24 h in total) fall inside the window; other sources logged those hours" in html
    )
