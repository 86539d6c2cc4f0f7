"""AWS API Gateway access logs: the console presets, custom JSON and CloudWatch Logs exports.

The files in tests/data/apigw are written from the AWS docs ("Access logging for REST APIs": the CLF
and JSON presets; "Variables for access logging": the $context variables; CloudWatch Logs
subscription-filter envelopes as Firehose delivers them).
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "apigw"


def _files(*names: str) -> dict[str, bytes]:
    return {f"apigw/{n}": (DATA / n).read_bytes() for n in names}


def test_clf_preset_row_has_known_values(ingest_files):
    case = ingest_files(_files("clf_preset.log"))
    ev = case.events()
    r = ev.row(0, named=True)
    assert r["source_format"] == "apigw"
    assert r["ts"] == datetime(2023, 1, 5, 16, 40, 12, tzinfo=UTC)
    assert (r["client_ip"], r["peer_ip"], r["principal"]) == ("198.51.100.23", None, None)
    assert (r["method"], r["path"], r["query"], r["protocol"]) == ("GET", "/customers/{id}", None, "HTTP/1.1")
    assert (r["status"], r["bytes_out"], r["duration_ms"]) == (200, 1532, None)
    assert r["request_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert json.loads(r["extra"])["resourcePath"] == "/customers/{id}"
    # the current console preset: no space before the quote, extendedRequestId at the end
    r2 = ev.row(1, named=True)
    assert r2["bytes_out"] == 1498 and json.loads(r2["extra"])["extendedRequestId"] == "HgTqJF3OoAMEbqw="
    entry = case.entry("clf_preset.log")
    assert (entry["format"], entry["variant"]) == ("apigw", "clf")
    assert (entry["lines_read"], entry["rows"], entry["rejected"]) == (4, 3, 1)
    rej = case.rejects().row(0, named=True)
    assert rej["source_line"] == 4 and rej["reason"].startswith("does not match the API Gateway CLF preset")


def test_json_preset_custom_keys_and_principals(ingest_files):
    case = ingest_files(_files("json_preset.jsonl"))
    rows = case.events().to_dicts()
    assert len(rows) == 3
    preset, custom, nested = rows
    assert preset["ts"] == datetime(2022, 11, 25, 10, 14, 3, tzinfo=UTC)
    assert (preset["client_ip"], preset["method"], preset["status"], preset["bytes_out"]) == (
        "198.51.100.23",
        "GET",
        200,
        1532,
    )
    assert preset["principal"] is None and preset["auth"] is None  # caller/user "-"
    # $context.path (the real path, object ids included) wins over the resource template
    assert (custom["path"], custom["endpoint"], custom["host"]) == (
        "/prod/customers/40877",
        "/prod/customers/{id}",
        "api.example.com",
    )
    assert (custom["principal"], custom["auth"]) == ("k3y1d0001", "apikey")  # identity.apiKeyId
    assert custom["duration_ms"] == 41.0 and custom["user_agent"] == "okhttp/4.9.3"
    assert custom["observer"] == "a1b2c3d4e5/prod"
    assert json.loads(custom["extra"])["integrationLatency"] == "38"
    # nested authorizer object and an unquoted number: still read
    assert (nested["principal"], nested["auth"], nested["status"]) == ("user-7731", "unknown", 200)
    rej = case.rejects().row(0, named=True)
    assert (rej["source_line"], rej["reason"]) == (4, "invalid JSON")
    entry = case.entry("json_preset.jsonl")
    assert entry["rows"] + entry["rejected"] == entry["lines_read"] == 4


def test_cloudwatch_envelopes_per_line_document_and_firehose_objects(ingest_files):
    case = ingest_files(
        _files("cloudwatch_envelopes.jsonl", "cloudwatch_document.json", "firehose_concatenated.gz")
    )
    ev = case.events()
    by_file: dict[str, list[dict]] = {}
    for r in ev.iter_rows(named=True):
        by_file.setdefault(r["source_file"].rsplit("/", 1)[-1], []).append(r)
    lines = by_file["cloudwatch_envelopes.jsonl"]
    assert [r["request_id"][:8] for r in lines] == ["5f0a2b3c", "6f0a2b3c", "7f0a2b3c"]
    assert [r["source_line"] for r in lines] == [1, 1, 2]  # two records from the first envelope line
    first = lines[0]
    assert (first["path"], first["principal"], first["auth"], first["status"]) == (
        "/prod/customers/12345",
        "partnerkey01",
        "apikey",
        200,
    )
    assert first["observer"] == "API-Gateway-Access-Logs_a1b2c3d4e5/prod"  # the log group
    assert lines[2]["client_ip"] == "192.0.2.45" and lines[2]["method"] == "GET"  # a CLF message
    doc = by_file["cloudwatch_document.json"]
    assert [r["source_line"] for r in doc] == [1, 2]  # record ordinals in a JSON document
    assert doc[1]["status"] == 404
    fh = by_file["firehose_concatenated.gz"]
    assert len(fh) == 3
    manifest = {Path(e["path"]).name: e for e in case.manifest["inputs"]}
    for name, (read, rows, rejected) in {
        "cloudwatch_envelopes.jsonl": (4, 3, 1),
        "cloudwatch_document.json": (2, 2, 0),
        "firehose_concatenated.gz": (4, 3, 1),
    }.items():
        e = manifest[name]
        assert (e["lines_read"], e["rows"], e["rejected"]) == (read, rows, rejected), name
    reasons = set(case.rejects().get_column("reason"))
    assert reasons == {"CloudWatch Logs control message, not an access-log record"}


def test_api_key_values_are_fingerprinted_and_export_prefixes_read(ingest_files):
    rec = {
        "requestId": "9f0a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8",
        "ip": "192.0.2.10",
        "requestTime": "05/Jan/2023:16:40:12 +0000",
        "httpMethod": "GET",
        "path": "/prod/customers/1?api_key=SECRETSECRET",
        "status": "200",
        "identity.apiKey": "SECRETKEYVALUE123",
    }
    export = "2023-01-05T16:40:13.020Z " + json.dumps(rec)
    good = json.dumps({"id": "1", "timestamp": 1672936812000, "message": json.dumps(rec)})
    broken_doc = gzip.compress(
        (
            '{"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[' + good + ',{"id":"2","timestamp":1,'
        ).encode()
    )
    case = ingest_files({"exp/000000": export + "\n", "doc/broken.json.gz": broken_doc})
    ev = case.events()
    r = ev.row(0, named=True)
    assert (r["ts"], r["path"]) == (datetime(2023, 1, 5, 16, 40, 12, tzinfo=UTC), "/prod/customers/1")
    assert r["principal"].startswith("fp:") and r["auth"] == "apikey"
    dump = json.dumps(ev.to_dicts(), default=str)
    assert "SECRETKEYVALUE123" not in dump and "SECRETSECRET" not in dump
    # a JSON document cut short: the records before the damage are kept, the file is "partial"
    broken = case.entry("broken.json.gz")
    assert broken["status"] == "partial" and broken["rows"] == 1 and "invalid JSON" in broken["error"]


def test_combined_log_lines_are_not_taken_for_the_clf_preset():
    from forensics.ingest import IngestOptions, detect

    nginx = '203.0.113.9 - - [01/Feb/2023:00:00:01 +0000] "GET /a HTTP/1.1" 200 10 "-" "curl/8"'
    assert detect([nginx] * 3, "access.log", IngestOptions()).ingestor == "nginx"
    apigw = '203.0.113.9 - - [01/Feb/2023:00:00:01 +0000] "GET /a HTTP/1.1" 200 10 c6af9ac6-7b61-11e6-9a41-93e8deadbeef'
    assert detect([apigw] * 3, "access.log", IngestOptions()).ingestor == "apigw"
