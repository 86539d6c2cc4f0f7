"""Kong file-log / http-log request logs: known values for every rule of forensics.ingest.kong."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
from casecheck import assert_nowhere

from forensics.ingest.kong import KongIngestor
from forensics.secrets import fingerprint

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlLXBsYW50ZWQ"
API_KEY = "planted-apikey-0123456789"
COOKIE = "sess=planted-cookie-value-xyz"


def _record(**over: object) -> dict:
    """A Kong 3.x log object; top-level keys replaced by name, ``headers`` merged into the request's."""
    headers = {
        "host": "api.example.com",
        "user-agent": "okhttp/4.9.3",
        "referer": "https://app.example.com/",
        "x-forwarded-for": "203.0.113.9, 10.0.0.7",
        "accept": "*/*",
    }
    headers.update(over.pop("headers", {}))  # type: ignore[arg-type]
    record = {
        "started_at": 1672939212123,
        "client_ip": "10.0.0.7",
        "request": {
            "method": "GET",
            "uri": "/api/v1/customers/1234?fields=name",
            "url": "https://api.example.com:443/api/v1/customers/1234?fields=name",
            "size": 512,
            "querystring": {"fields": "name"},
            "headers": headers,
        },
        "response": {
            "status": 200,
            "size": 1873,
            "headers": {"x-kong-request-id": "2f6946328ffc4946b8c9120704a4a155"},
        },
        "latencies": {"request": 48, "kong": 3, "proxy": 45},
        "route": {"name": "customers", "id": "r-1", "paths": ["/api"]},
        "service": {"name": "crm", "id": "s-1", "host": "crm.internal"},
        "upstream_uri": "/customers/1234?fields=name",
        "workspace_name": "default",
        "source": "upstream",
        "tries": [{"ip": "10.1.0.3", "port": 8080, "balancer_latency": 0}],
    }
    record.update(over)
    return record


def _line(**over: object) -> str:
    return json.dumps(_record(**over))


def test_record_has_known_values(ingest_files):
    case = ingest_files({"kong/file.log": _line(consumer={"id": "c-1", "username": "partner-app"}) + "\n"})
    row = case.events().row(0, named=True)
    assert row["ts"] == datetime(2023, 1, 5, 17, 20, 12, 123000, tzinfo=UTC)
    assert row["source_format"] == "kong" and row["source_line"] == 1
    # client_ip (Kong's $remote_addr) is a private balancer: X-Forwarded-For resolves the client
    assert (row["client_ip"], row["peer_ip"]) == ("203.0.113.9", "10.0.0.7")
    assert (row["method"], row["scheme"], row["host"]) == ("GET", "https", "api.example.com")
    assert (row["path"], row["query"], row["endpoint"]) == (
        "/api/v1/customers/1234",
        "fields=name",
        "/api/v1/customers/{id}",
    )
    assert (row["status"], row["bytes_out"], row["bytes_in"], row["duration_ms"]) == (200, 1873, 512, 48.0)
    assert (row["user_agent"], row["referer"]) == ("okhttp/4.9.3", "https://app.example.com/")
    assert row["request_id"] == "2f6946328ffc4946b8c9120704a4a155"
    assert (row["principal"], row["auth"]) == ("partner-app", "unknown")  # a consumer, no visible credential
    assert json.loads(row["extra"]) == {
        "route": "customers",
        "service": "crm",
        "upstream_uri": "/customers/1234?fields=name",
        "latency_kong": 3.0,
        "latency_proxy": 45.0,
        "consumer_id": "c-1",
        "workspace": "default",
        "source": "upstream",
    }


def test_kong_0x_record_sizes_as_strings_escaped_slashes():
    # Kong 0.11 (the shape of the shared real sample): request_uri, api object, sizes as strings, \/.
    line = (
        '{"api":{"name":"myapi","uris":["\\/api\\/v1"]},"request":{"querystring":{},"size":"423",'
        '"uri":"\\/api\\/v1\\/healthcheck","request_uri":"http:\\/\\/server1:8000\\/api\\/v1\\/healthcheck",'
        '"method":"GET","headers":{"user-agent":"PostmanRuntime\\/3.0.11","host":"server1"}},'
        '"client_ip":"172.17.0.1","latencies":{"request":33,"kong":33,"proxy":0},'
        '"response":{"headers":{"via":"kong\\/0.11.0"},"status":200,"size":"271"},"started_at":1509202924971}'
    )
    from forensics.ingest.kong import parse_kong

    frame = pl.DataFrame(
        {
            "line": [line],
            "source_line": pl.Series([1], dtype=pl.UInt64),
            "_idx": pl.Series([0], dtype=pl.UInt32),
        }
    )
    events, rejects = parse_kong(frame)
    assert rejects.height == 0
    row = events.row(0, named=True)
    assert row["target"] == "http://server1:8000/api/v1/healthcheck"
    assert (row["bytes_in"], row["bytes_out"], row["user_agent"]) == (423, 271, "PostmanRuntime/3.0.11")
    assert json.loads(row["extra"])["api"] == "myapi"
    assert row["auth"] == "none"


def test_rows_and_rejects_add_up_with_reasons(ingest_files):
    repeated = _record()
    repeated["request"]["headers"]["accept"] = ["a/b", "c/d"]  # a header sent twice: a list
    repeated["request"]["headers"]["cookie"] = ["a=1", "b=2"]
    lines = [
        _line(),
        json.dumps(repeated),
        _line()[:200],
        "",
        '{"message": "not a kong record", "level": "info"}',
        _line(started_at="soon"),
        "2023/01/05 17:20:12 [warn] 1#0: an nginx error-log line in the same stream",
    ]
    case = ingest_files({"kong.log": "\n".join(lines) + "\n"})
    entry = case.entry("kong.log")
    assert entry["format"] == "kong"
    assert (entry["lines_read"], entry["rows"], entry["rejected"]) == (7, 2, 5)
    assert case.reasons_by_line() == {
        3: "invalid JSON",
        4: "blank line",
        5: "JSON object without Kong log keys (started_at, request)",
        6: "unparseable timestamp (started_at)",
        7: "not a Kong JSON log line",
    }
    second = case.events().row(1, named=True)
    assert second["principal"] == fingerprint("a=1, b=2") and second["auth"] == "cookie"


def test_planted_credentials_never_appear_in_clear(ingest_files):
    lines = [
        _line(headers={"authorization": f"Bearer {TOKEN}"}),
        _line(headers={"apikey": API_KEY}, consumer={"username": "partner-app"}),
        _line(headers={"cookie": COOKIE}),
        _line(headers={"x-api-key": API_KEY}),
        # malformed records carrying every secret: their reject texts are masked as well
        _line(headers={"authorization": f"Bearer {TOKEN}", "apikey": API_KEY, "cookie": COOKIE})[:-40],
        '{"request":{"headers":{"apikey":"' + API_KEY,
    ]
    case = ingest_files({"kong.log": "\n".join(lines) + "\n"})
    ev = case.events()
    assert ev.select("auth", "principal").rows() == [
        ("bearer", fingerprint(TOKEN)),
        ("apikey", "partner-app"),  # the consumer names the caller; the key stays a fingerprint nowhere
        ("cookie", fingerprint(COOKIE)),
        ("apikey", fingerprint(API_KEY)),
    ]
    assert case.rejects().height == 2
    texts = " ".join(case.rejects().get_column("text").to_list())
    assert fingerprint(API_KEY) in texts
    assert_nowhere(case.case_dir, [TOKEN, API_KEY, "planted-cookie-value"])


def test_sniff():
    ing = KongIngestor()
    found = ing.sniff([_line(), _line()], "file.log")
    assert found is not None and found.confidence >= 0.95
    assert ing.sniff(['{"started_at": 1, "request": "GET / HTTP/1.1"}'], "x.log") is None
    assert (
        ing.sniff(['{"time":"2023-01-01T00:00:00Z","status":200,"request":"GET / HTTP/1.1"}'], "x.log")
        is None
    )
