"""Conformance of the AWS ingestors over the shared reference material (skipped when ../shared is absent).

* Every file under samples/{alb,elb_classic,cloudfront} is detected as its format, counts add up
  (events + rejects = lines), and the only rejects are lines of other AWS logs in the same tree, each
  with its own reason. The project's own API Gateway files (tests/data/apigw) are detected too.
* Peer vectors (peer_vectors/{alb,elb,cloudfront}.jsonl) compared field by field, each vector in its
  own file and auto-detected. Where this project's documented policy differs from the peer, the
  expected value is transformed by the policy and the test names it (POLICIES).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import polars as pl
import pytest
from casecheck import assert_samples_ingested, ingested

from forensics import api
from forensics.case import Case

DATA = Path(__file__).resolve().parent / "data"

#: Sample directory → the ingestor expected for every file in it.
SAMPLE_FORMATS = {"alb": "alb", "elb_classic": "elb_classic", "cloudfront": "cloudfront"}

#: Reasons a line of a real AWS log tree may be rejected for (lines of other logs, headers).
ALLOWED_REJECT_REASONS = (
    "NLB access-log line, not ALB",
    "ALB connection-log line",
    "W3C header line",
    "blank line",
)


@pytest.mark.parametrize("subdir", sorted(SAMPLE_FORMATS))
def test_aws_samples_are_detected_and_counts_add_up(shared_samples, tmp_path, subdir):
    case = ingested(shared_samples / subdir, tmp_path / "case")
    entries = assert_samples_ingested(case, shared_samples / subdir, SAMPLE_FORMATS[subdir])
    for reason in case.scan_rejects().collect().get_column("reason").to_list():
        assert reason.startswith(ALLOWED_REJECT_REASONS), reason
    events = case.scan_events().collect()
    assert events.height == sum(e["rows"] for e in entries) > 0
    assert events.get_column("ts").null_count() == 0
    assert events.get_column("client_ip").null_count() == 0


def test_alb_sample_tree_rejects_nlb_and_connection_lines_by_name(shared_samples, tmp_path):
    case = ingested(shared_samples / "alb", tmp_path / "case")
    rej = case.scan_rejects().collect()
    mine = rej.filter(
        pl.col("source_file").cast(pl.String).str.ends_with("elastic_integrations_test-alb.log")
    )
    by_line = dict(
        zip(mine.get_column("source_line").to_list(), mine.get_column("reason").to_list(), strict=True)
    )
    assert by_line == {
        3: "NLB access-log line, not ALB",
        4: "NLB access-log line, not ALB",
        5: "NLB access-log line, not ALB",
        6: "NLB access-log line, not ALB",
        7: "ALB connection-log line",
        8: "ALB connection-log line",
        9: "ALB connection-log line",
    }
    ev = case.scan_events().collect()
    malformed = ev.filter(
        pl.col("source_file").cast(pl.String).str.ends_with("elastic_integrations_test-alb.log")
        & (pl.col("source_line") == 10)
    ).row(0, named=True)
    # '"- http://host:80-/ "': an event with the raw request kept, no method or path.
    assert malformed["request"] == "- http://internal-service-alb.example.com:80-/ "
    assert malformed["method"] is None and malformed["path"] is None and malformed["status"] == 200


def test_apigw_files_are_detected(tmp_path):
    case = ingested(DATA / "apigw", tmp_path / "case")
    variants = {Path(e["path"]).name: (e["format"], e["variant"]) for e in case.load_manifest()["inputs"]}
    assert variants == {
        "clf_preset.log": ("apigw", "clf"),
        "json_preset.jsonl": ("apigw", "json"),
        "cloudwatch_envelopes.jsonl": ("apigw", "envelope"),
        "cloudwatch_document.json": ("apigw", "document"),
        "firehose_concatenated.gz": ("apigw", "document"),
    }


# --------------------------------------------------------------------------------------------------
# Peer vectors

#: Where this project's documented policy (DESIGN.md, peer_vectors/README.md) differs from a peer.
POLICIES = {
    "dash-null": "'-' and empty values are null (peers that keep '-' literally differ)",
    "cloudfront-decode-once": "CloudFront's own URL-encoding layer is removed once (peers keep it)",
    "nlb-rejected": "NLB TLS access-log lines in an ALB tree are rejected with their own reason, not events",
    "clb-in-alb-file": "Classic ELB lines are read by the elb_classic ingestor (peer parses them as ALB)",
}


def _vectors(peer_vectors: Path, fmt: str) -> list[dict]:
    return [json.loads(ln) for ln in (peer_vectors / f"{fmt}.jsonl").read_text().splitlines() if ln.strip()]


def _url(row: dict) -> str:
    port = json.loads(row["extra"]).get("port")
    url = f"{row['scheme']}://{row['host']}" + (f":{port}" if port is not None else "") + row["path"]
    return url + (f"?{row['query']}" if row["query"] is not None else "")


def _actual(row: dict, key: str):
    if key == "ts_utc":
        fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if row["ts"].microsecond else "%Y-%m-%dT%H:%M:%SZ"
        return row["ts"].strftime(fmt)
    if key == "target":
        return row["path"] + (f"?{row['query']}" if row["query"] is not None else "")
    if key == "http_version":
        return row["protocol"].removeprefix("HTTP/") if row["protocol"] else None
    if key == "url":
        return _url(row)
    if key == "request":
        return (
            row["request"] if row["request"] is not None else f"{row['method']} {_url(row)} {row['protocol']}"
        )
    return row[key]


def _expected(fmt: str, key: str, value, used: set[str]):
    if key == "ts_utc" and value.endswith("Z") and "." not in value:
        return value
    if key == "http_version" and isinstance(value, str):
        return value.removeprefix("HTTP/")
    if value == "-" or (value == "" and key in ("referer", "user_agent")):
        used.add("dash-null")
        return None
    if fmt == "cloudfront" and key in ("user_agent", "path", "query", "referer") and isinstance(value, str):
        decoded = unquote(value)
        if decoded != value:
            used.add("cloudfront-decode-once")
        return decoded
    return value


def _run_vectors(peer_vectors: Path, tmp_path: Path, fmt: str) -> tuple[list[dict], dict, dict, set[str]]:
    vectors = _vectors(peer_vectors, fmt)
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for i, v in enumerate(vectors):
        (evidence / f"v{i:03d}.log").write_text(v["line"] + "\n")
    api.ingest([str(evidence)], tmp_path / "case", workers=1)
    case = Case.open(tmp_path / "case")
    rows = {
        r["source_file"].rsplit("/", 1)[-1]: r for r in case.scan_events().collect().iter_rows(named=True)
    }
    rejects = {
        r["source_file"].rsplit("/", 1)[-1]: r["reason"]
        for r in case.scan_rejects().collect().iter_rows(named=True)
    }
    return vectors, rows, rejects, set()


@pytest.mark.parametrize("fmt", ["alb", "elb", "cloudfront"])
def test_aws_peer_vectors_field_by_field(peer_vectors, tmp_path, fmt):
    vectors, rows, rejects, used = _run_vectors(peer_vectors, tmp_path, fmt)
    checked = 0
    for i, v in enumerate(vectors):
        name = f"v{i:03d}.log"
        if v["line"].startswith("tls "):  # an NLB line: a valid line to the peer, not an ALB request here
            assert rejects.get(name) == "NLB access-log line, not ALB", v["line"]
            used.add("nlb-rejected")
            continue
        if not v["valid"]:
            assert name in rejects, v["line"]
            continue
        assert name in rows, f"valid line did not become an event: {v['line']}"
        row = rows[name]
        want_format = {"alb": "alb", "elb": "elb_classic", "cloudfront": "cloudfront"}[fmt]
        if fmt == "alb" and v["line"][:4].isdigit():
            want_format = "elb_classic"  # plaso's ELB test file mixes Classic ELB lines in
            used.add("clb-in-alb-file")
        assert row["source_format"] == want_format, v["line"]
        for key, value in v["expect"].items():
            if key == "ts_raw":
                continue
            want = _expected(fmt, key, value, used)
            got = _actual(row, key)
            assert got == want, f"{key}: {got!r} != {want!r} ({v['source']}: {v['line'][:120]})"
            checked += 1
    assert checked >= {"alb": 100, "elb": 20, "cloudfront": 40}[fmt]
    assert used <= set(POLICIES)
    # the policies that must have been applied (the vectors contain the cases)
    assert {
        "alb": {"nlb-rejected", "clb-in-alb-file"},
        "elb": set(),
        "cloudfront": {"dash-null", "cloudfront-decode-once"},
    }[fmt] <= used
