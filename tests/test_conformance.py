"""Conformance over the shared reference material (read from ../shared at test time, skipped when absent).

* Every sample file of a format the project reads ingests without an exception; events + rejects =
  lines; rejects are only lines that do not fit the format at all, each with a reason.
* Peer vectors: raw lines with the values independent parsers' own test suites expect, compared field
  by field; where this project's documented policy differs, the comparison applies the policy and the
  test names it (POLICIES below).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from casecheck import assert_samples_ingested, ingested

from forensics import api
from forensics.case import Case

#: Sample directory → the ingestor expected for every file in it (formats of the foundation).
SAMPLE_FORMATS = {
    "nginx": "nginx",
    "apache": "apache",
    "nginx_json": "nginx_json",
}

#: Reasons a line of a real access log may be rejected for.
ALLOWED_REJECT_REASONS = ("truncated line", "nginx error.log line", "Apache error_log line", "blank line")


@pytest.mark.parametrize("subdir", sorted(SAMPLE_FORMATS))
def test_samples_ingest_and_counts_add_up(shared_samples, tmp_path, subdir):
    case = ingested(shared_samples / subdir, tmp_path / "case")
    entries = assert_samples_ingested(case, shared_samples / subdir, SAMPLE_FORMATS[subdir])
    rejects = case.scan_rejects().collect()
    for reason in rejects.get_column("reason").to_list():
        assert reason.startswith(ALLOWED_REJECT_REASONS), reason
    events = case.scan_events().collect()
    assert events.height == sum(e["rows"] for e in entries)
    assert events.get_column("ts").null_count() == 0


def test_nginx_samples_known_rows(shared_samples, tmp_path):
    case = ingested(shared_samples / "nginx", tmp_path / "case")
    ev = case.scan_events().collect()
    by = {(r["source_file"].rsplit("/", 1)[-1], r["source_line"]): r for r in ev.iter_rows(named=True)}
    # The real zanbil.ir log (+0330): first line, converted to UTC; Persian path percent-encoding kept.
    z = by[("lnav_shop_access_log_zanbil.log", 1)]
    assert z["ts"].isoformat() == "2019-01-22T00:26:14+00:00"
    assert z["client_ip"] == "54.36.149.41" and z["status"] == 200 and z["bytes_out"] == 30577
    assert z["path"].startswith("/filter/27|13%20%D9%85")
    # Binary sent to the HTTP port is an event with the raw request kept (evidence of scanning).
    gh0st = by[("crowdsec_nginx-http-malformed.log", 2)]
    assert gh0st["method"] is None and gh0st["status"] == 400 and gh0st["request"].startswith("Gh0st\\xAD")
    # Empty request "" (beats fixture): an event with no method/path.
    empty = by[("elastic_beats_nginx_test.log", 7)]
    assert empty["status"] == 400 and empty["method"] is None and empty["path"] is None
    assert empty["request"] == ""  # what the client sent: nothing (kept, unlike a "-")
    # X-Forwarded-For list in place of $remote_addr: right-most untrusted, else the left-most.
    assert by[("elastic_beats_nginx_test.log", 3)]["client_ip"] == "85.181.35.98"
    assert by[("elastic_beats_nginx_test.log", 1)]["client_ip"] == "10.0.0.2"
    # Nginx Proxy Manager "proxy" format (a preset): client from [Client …], host and scheme from the line.
    npm = by[("crowdsec_nginx-proxy-manager-logs.log", 7)]
    assert (npm["client_ip"], npm["host"], npm["scheme"], npm["path"], npm["status"]) == (
        "192.168.1.100",
        "example.com",
        "https",
        "/api/users",
        200,
    )


def test_escape_json_sample_masks_the_password(shared_samples, tmp_path):
    case = ingested(shared_samples / "nginx_json", tmp_path / "case")
    ev = case.scan_events().collect()
    extras = " ".join(x for x in ev.get_column("extra").to_list() if x)
    assert "password_1234" not in extras and "password=fp:" in extras


# --------------------------------------------------------------------------------------------------
# Peer vectors

#: Where this project's documented policy (DESIGN.md, peer_vectors/README.md) differs from a peer.
POLICIES = {
    "dash-null": "'-' and empty values are null (peers that keep '-' literally differ)",
    "unescape": "nginx/Apache backslash escapes are undone when the result is text (peers keep them)",
    "client": "client is the right-most untrusted X-Forwarded-For address behind a trusted peer",
}


def _vectors(peer_vectors: Path, fmt: str) -> list[dict]:
    return [
        json.loads(line) for line in (peer_vectors / f"{fmt}.jsonl").read_text().splitlines() if line.strip()
    ]


def _expected(key: str, value, policies_used: set[str]):
    if value == "-" and key in ("user", "referer", "user_agent"):
        policies_used.add("dash-null")
        return None
    if value == "" and key in ("referer", "user_agent"):
        policies_used.add("dash-null")
        return None
    if isinstance(value, str) and "\\" in value and key in ("target", "user_agent", "referer"):
        policies_used.add("unescape")
        return value.replace('\\"', '"').replace("\\\\", "\\")
    return value


def _actual(row: dict, key: str):
    if key == "ts_utc":
        return row["ts"].strftime("%Y-%m-%dT%H:%M:%SZ")
    if key == "user":
        return row["principal"]
    if key == "target":
        return row["path"] + ("?" + row["query"] if row["query"] is not None else "")
    if key == "http_version":
        return row["protocol"].removeprefix("HTTP/") if row["protocol"] else None
    if key == "request":
        if row["request"] is not None:
            return row["request"]
        target = _actual(row, "target")
        return " ".join(p for p in (row["method"], target, row["protocol"]) if p)
    return row[key]


@pytest.mark.parametrize("fmt", ["nginx", "apache"])
def test_peer_vectors_field_by_field(peer_vectors, tmp_path, fmt):
    vectors = _vectors(peer_vectors, fmt)
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for i, v in enumerate(vectors):
        # One file per vector, forced to the vector's format (a single line is too little to detect on).
        (evidence / f"v{i:03d}.log").write_text(v["line"] + "\n")
    api.ingest([str(evidence)], tmp_path / "case", format=fmt, workers=1)
    case = Case.open(tmp_path / "case")
    events = case.scan_events().collect()
    rows = {r["source_file"].rsplit("/", 1)[-1]: r for r in events.iter_rows(named=True)}
    rejected = set(case.scan_rejects().collect().get_column("source_file").cast(pl.String).to_list())
    policies_used: set[str] = set()
    checked = 0
    for i, v in enumerate(vectors):
        name = f"v{i:03d}.log"
        if not v["valid"]:
            assert f"evidence/{name}" in rejected, v["line"]
            continue
        assert name in rows, f"valid line did not become an event: {v['line']}"
        for key, value in v["expect"].items():
            if key in ("ts_raw",):
                continue
            want = _expected(key, value, policies_used)
            got = _actual(rows[name], key)
            assert got == want, f"{key}: {got!r} != {want!r} ({v['source']}: {v['line']})"
            checked += 1
    assert checked > 50
    assert policies_used <= set(POLICIES)
