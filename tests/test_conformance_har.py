"""Conformance over the shared HAR samples (real browser and proxy exports; skipped when absent).

Every file ingests as HAR, as reference; entries + rejects = the entries of the file, counted here
independently with the json module.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from forensics import api
from forensics.case import Case


def _entries(path: Path) -> int:
    with open(path, encoding="utf-8-sig") as fh:
        return len(json.load(fh)["log"]["entries"])


def test_every_har_sample_ingests_and_counts_add_up(shared_samples, tmp_path):
    src = shared_samples / "har"
    api.ingest([str(src)], tmp_path / "case", workers=1)
    case = Case.open(tmp_path / "case")
    inputs = case.load_manifest()["inputs"]
    files = sorted(p for p in src.iterdir() if p.is_file())
    assert len(inputs) == len(files)
    for e in inputs:
        expected = _entries(src / Path(e["path"]).name)
        assert (e["status"], e["format"], e["role"]) == ("ingested", "har", "reference"), e
        assert e["variant"] in ("1.1", "1.2"), e["path"]
        assert e["rows"] + e["rejected"] == e["lines_read"] == expected, e["path"]
        assert e["rejected"] == 0, e["path"]  # real exports: every entry is readable
    events = case.scan_events(include_reference=True).collect()
    assert events.height == sum(e["rows"] for e in inputs)
    assert case.scan_events().collect().height == 0  # reference, not traffic
    assert events.get_column("ts").null_count() == 0
    assert events.get_column("method").null_count() == 0
    assert events.get_column("auth").null_count() == 0
    assert set(events.get_column("auth").cast(pl.String).unique().to_list()) <= {
        "none",
        "basic",
        "bearer",
        "apikey",
        "cookie",
        "unknown",
    }
    # Every entry's URL is accounted for: http(s)/ws(s) entries have a host and a path.
    web = events.filter(pl.col("scheme").is_in(["http", "https", "ws", "wss"]))
    assert web.get_column("host").null_count() == 0 and web.get_column("path").null_count() == 0


def test_bom_and_websocket_samples(shared_samples, tmp_path):
    src = shared_samples / "har"
    api.ingest(
        [str(src / "mitmproxy_with-bom.har"), str(src / "mitmproxy_flows_websocket.har")], tmp_path / "c"
    )
    case = Case.open(tmp_path / "c")
    events = case.scan_events(include_reference=True).sort("source_file", "source_line").collect()
    ws = events.filter(pl.col("source_file").cast(pl.String).str.ends_with("websocket.har"))
    assert ws.height == 3
    assert ws.get_column("status").to_list() == [101, 101, 101]
    assert all(json.loads(x)["ws"]["messages"] >= 1 for x in ws.get_column("extra").to_list())
    bom = events.filter(pl.col("source_file").cast(pl.String).str.ends_with("with-bom.har"))
    assert bom.height == 1
