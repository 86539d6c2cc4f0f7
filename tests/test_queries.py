"""Every finding's query returns exactly the events it counts, on evidence the passes refine."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from forensics import api
from forensics.analyze import analyze

LINE = '{ip} - - [{t}] "GET {path} HTTP/1.1" 200 500 "-" "curl/8" "-"\n'


def _t(minutes: float) -> str:
    return (datetime(2023, 1, 4, 10, tzinfo=UTC) + timedelta(minutes=minutes)).strftime(
        "%d/%b/%Y:%H:%M:%S +0000"
    )


def test_queries_match_counts_when_the_inventory_refines_the_templates(ingest_files):
    """Walked base64 tokens and negative ids are single ingest templates; the inventory folds them into
    ``{id}``, and the query (run by `forensics query`) must see the same endpoint the passes counted."""
    lines = []
    for i in range(300):  # base64("cust:<i>"): each its own endpoint at ingest
        token = base64.b64encode(f"cust:{i}".encode()).decode()
        lines.append(LINE.format(ip="203.0.113.3", t=_t(i), path=f"/api/v1/tokens/{token}"))
    for i in range(-150, 150):  # negative ids keep their "-" at ingest
        lines.append(LINE.format(ip="203.0.113.5", t=_t(400 + (i + 150)), path=f"/api/v1/customers/{i}"))
    for i in range(60):  # customers reading their own record now and then
        lines.append(LINE.format(ip=f"198.51.100.{i + 1}", t=_t(7 * i), path=f"/api/v1/customers/{5000 + i}"))
    case = ingest_files({"access.log": "".join(sorted(lines, key=lambda ln: ln.split("[")[1]))})
    doc = analyze(case.case_dir).document
    walked = {ip for f in doc["findings"] if f["actor"] for ip in f["actor"]["client_ips"]}
    assert {"203.0.113.3", "203.0.113.5"} <= walked
    for f in doc["findings"]:
        if f["kind"] in ("exfiltration_window", "enumeration", "scanning", "volume_anomaly"):
            assert api.query(case.case_dir, f["query"]).height == f["requests"], (f["id"], f["query"][:160])


def test_non_address_clients_are_not_ip_indicators_and_one_day_clients_are_not_called_steady(ingest_files):
    """A walker logged as ``unknown`` (a proxy that hides the peer) is an indicator of type client; a
    client seen on one day has no baseline of its own, so it is not "heavy but steady"."""
    import csv

    lines = [LINE.format(ip="unknown", t=_t(i), path=f"/api/v1/customers/{1000 + i}") for i in range(400)]
    lines += [LINE.format(ip="198.51.100.9", t=_t(i), path="/api/v1/catalog") for i in range(300)]
    case = ingest_files({"access.log": "".join(sorted(lines, key=lambda ln: ln.split("[")[1]))})
    doc = analyze(case.case_dir).document
    assert any(f["actor"] and f["actor"]["client_ips"] == ["unknown"] for f in doc["findings"])
    with open(case.case_dir / "iocs.csv", newline="") as fh:
        types = {r["value"]: r["type"] for r in csv.DictReader(fh)}
    assert types["unknown"] == "client"
    whys = {c["actor"]["client_ips"][0]: c["why"] for c in doc["cleared"]}
    assert whys["198.51.100.9"].startswith("examined for volume: 300 requests on 1 active day(s)")


def test_events_with_stray_clocks_are_left_out_of_the_charts_and_said(ingest_files):
    """Two events at 1970 and 2099 among a month of traffic: the per-day charts keep the month."""
    from forensics.report.data import load

    lines = [
        LINE.format(ip=f"198.51.100.{i % 200 + 1}", t=_t(40 * i), path=f"/api/v1/customers/{5000 + i % 300}")
        for i in range(1200)
    ]
    lines += [
        LINE.format(ip="192.0.2.1", t="01/Jan/1970:00:00:01 +0000", path="/x"),
        LINE.format(ip="192.0.2.1", t="01/Jan/2099:00:00:01 +0000", path="/x"),
    ]
    case = ingest_files({"access.log": "".join(lines)})
    analyze(case.case_dir)
    data = load(case.case_dir)
    lo, hi, outside = data.charted_period()
    assert outside == 2 and lo.year == hi.year == 2023
    api.report(case.case_dir)
    text = (case.case_dir / "report.md").read_text()
    assert f"2 event(s) lie far outside the main period ({lo:%Y-%m-%d} to {hi:%Y-%m-%d})" in text
    assert lo.date().isoformat() == "2023-01-04" and hi.date().isoformat() == "2023-02-06"
