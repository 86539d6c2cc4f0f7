"""HAR captures: known values for every rule forensics/ingest/har.py documents."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from harfiles import CUSTOMER, CUSTOMER_VALUES, dumps, entry, har, headers

from forensics.ingest import IngestOptions, detect
from forensics.ingest import har as har_module
from forensics.ingest.har import HarIngestor
from forensics.secrets import fingerprint

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJlLXNlY3JldA"
API = "https://api.example.com"


def ts(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def extra(row: dict) -> dict:
    return json.loads(row["extra"]) if row["extra"] else {}


def one(ingest_files, e: dict, **options) -> dict:
    case = ingest_files({"capture.har": dumps(har(e))}, **options)
    ev = case.events()
    assert ev.height == 1, case.manifest["inputs"]
    return ev.row(0, named=True)


# --------------------------------------------------------------------------------------------------
# One entry → one event


def test_authenticated_entry_has_known_values(ingest_files):
    e = entry(
        f"{API}/api/v1/accounts/me?fields=name,plan#top",
        method="get",
        started="2023-01-05T03:00:00.250-07:00",
        time=45.5,
        http_version="h2",
        request_headers=headers(
            ("Authorization", f"Bearer {JWT}"),
            ("User-Agent", "MyApp/1.0 (iPhone)"),
            ("Referer", "https://app.example.com/home"),
        ),
        response_headers=headers(("X-Request-Id", "req-42"), ("Content-Type", "application/json")),
        body={"plan": "Unlimited"},
        body_size=321,
        request_body_size=0,
    )
    case = ingest_files({"capture.har": dumps(har(e))})
    row = case.events().row(0, named=True)
    assert row["ts"] == ts(2023, 1, 5, 10, 0, 0, 250000)
    assert (row["method"], row["scheme"], row["host"]) == ("GET", "https", "api.example.com")
    assert (row["path"], row["query"]) == ("/api/v1/accounts/me", "fields=name,plan")
    assert row["endpoint"] == "/api/v1/accounts/me"
    assert row["protocol"] == "HTTP/2.0"
    assert (row["status"], row["bytes_out"], row["bytes_in"], row["duration_ms"]) == (200, 321, 0, 45.5)
    assert row["user_agent"] == "MyApp/1.0 (iPhone)"
    assert row["referer"] == "https://app.example.com/home"
    assert row["request_id"] == "req-42"
    assert (row["auth"], row["principal"]) == ("bearer", fingerprint(JWT))
    assert row["client_ip"] is None and row["peer_ip"] is None
    assert row["pii_kinds"] == []  # scanned, nothing personal
    assert extra(row) == {"server_ip": "203.0.113.80", "mime": "application/json", "content_size": 21}
    assert (row["source_format"], row["source_file"], row["source_line"]) == (
        "har",
        "evidence/capture.har",
        1,
    )
    entry_ = case.entry("capture.har")
    assert (entry_["format"], entry_["variant"], entry_["role"]) == ("har", "1.2", "reference")
    assert (entry_["lines_read"], entry_["rows"], entry_["rejected"]) == (1, 1, 0)
    assert entry_["first_ts"].startswith("2023-01-05T10:00:00.25")


def test_har_is_reference_unless_role_traffic(ingest_files):
    doc = dumps(har(entry(f"{API}/a")))
    case = ingest_files({"a.har": doc})
    assert case.case.scan_events().collect().height == 0
    assert case.case.scan_events(include_reference=True).collect().height == 1
    traffic = ingest_files({"a.har": doc}, case="case2", role="traffic")
    assert traffic.entry("a.har")["role"] == "traffic"
    assert traffic.case.scan_events().collect().height == 1


@pytest.mark.parametrize(
    ("request_headers", "cookies", "url", "auth", "principal"),
    [
        ([("x-api-key", "k-123456")], None, "/a", "apikey", fingerprint("k-123456")),
        ([("X-Auth-Token", "tok-9")], None, "/a", "apikey", fingerprint("tok-9")),
        ([], None, "/a?api_key=qk-77&x=1", "apikey", fingerprint("qk-77")),
        ([], None, "/a?page=2&session=s-99", "apikey", fingerprint("s-99")),
        ([], None, "/a?page=2&keyword=x", "none", None),
        (
            [("Authorization", "Basic " + base64.b64encode(b"alice:pw-secret").decode())],
            None,
            "/a",
            "basic",
            "alice",
        ),
        (
            [("Cookie", "_ga=GA1.2.3; SESSIONID=abc123secret")],
            [{"name": "_ga", "value": "GA1.2.3"}, {"name": "SESSIONID", "value": "abc123secret"}],
            "/a",
            "cookie",
            fingerprint("SESSIONID=abc123secret"),
        ),
        ([("Cookie", "sid=zz-top; theme=dark")], None, "/a", "cookie", fingerprint("sid=zz-top")),
        ([("Cookie", "_ga=GA1.2.3; _gid=GA1.4")], None, "/a", "none", None),
        ([("Accept", "application/json")], None, "/a", "none", None),
        ([("Authorization", "")], None, "/a", "none", None),
    ],
    ids=[
        "x-api-key",
        "x-auth-token",
        "query",
        "query-session",
        "query-not-a-credential",
        "basic",
        "session-cookie",
        "cookie-header",
        "tracking",
        "none",
        "empty",
    ],
)
def test_auth_kinds(ingest_files, request_headers, cookies, url, auth, principal):
    row = one(ingest_files, entry(API + url, request_headers=headers(*request_headers), cookies=cookies))
    assert (row["auth"], row["principal"]) == (auth, principal)


def test_credential_in_the_url_is_basic_auth_and_the_password_is_dropped(ingest_files):
    row = one(ingest_files, entry("https://bob:hunter2@api.example.com/x"))
    assert (row["host"], row["auth"], row["principal"]) == ("api.example.com", "basic", "bob")


def test_unauthenticated_personal_data(ingest_files):
    row = one(ingest_files, entry(f"{API}/api/v1/customers/A7F3K2", body=CUSTOMER))
    assert row["auth"] == "none" and row["principal"] is None
    assert row["pii_kinds"] == ["name", "email", "phone", "address", "account"]
    assert extra(row)["pii"] == {"name": 1, "email": 1, "phone": 1, "address": 1, "account": 1}


def test_base64_body_is_decoded_for_the_scan(ingest_files):
    row = one(ingest_files, entry(f"{API}/c", body=CUSTOMER, base64_body=True))
    assert row["pii_kinds"] == ["name", "email", "phone", "address", "account"]


def test_binary_and_script_bodies_are_not_scanned(ingest_files):
    png = entry(f"{API}/logo.png", body="iVBORw0KGgo=", mime="image/png", base64_body=False)
    js = entry(f"{API}/app.js", body='var email = "a@b.com";', mime="application/javascript")
    ev = ingest_files({"c.har": dumps(har(png, js))}).events()
    assert ev.get_column("pii_kinds").to_list() == [None, None]


def test_bom_version_11_status_0_and_minus_one_sizes(ingest_files):
    e = entry(
        f"{API}/blocked",
        status=0,
        time=-1,
        http_version="",
        body_size=-1,
        content_size=-1,
        request_body_size=-1,
    )
    case = ingest_files({"old.har": dumps(har(e, version="1.1"), bom=True, indent=2)})
    row = case.events().row(0, named=True)
    assert row["status"] == 0
    assert (row["bytes_out"], row["bytes_in"], row["duration_ms"], row["protocol"]) == (
        None,
        None,
        None,
        None,
    )
    assert case.entry("old.har")["variant"] == "1.1"


def test_body_size_falls_back_to_content_size_and_post_data_length(ingest_files):
    e = entry(
        f"{API}/p",
        method="POST",
        body_size=-1,
        content_size=2048,
        request_body_size=-1,
        post_text='{"a":"é"}',
    )
    row = one(ingest_files, e)
    assert (row["bytes_out"], row["bytes_in"]) == (2048, 10)


def test_http2_pseudo_headers_and_lowercase_names(ingest_files):
    e = entry(
        f"{API}/api/v1/items/42?page=2",
        http_version="http/2.0",
        request_headers=headers(
            (":authority", "api.example.com"),
            (":method", "GET"),
            (":path", "/api/v1/items/42?page=2"),
            (":scheme", "https"),
            ("authorization", f"bearer {JWT}"),
            ("user-agent", "curl/8.4"),
        ),
    )
    row = one(ingest_files, e)
    assert (row["path"], row["query"], row["endpoint"]) == (
        "/api/v1/items/42",
        "page=2",
        "/api/v1/items/{id}",
    )
    assert (row["protocol"], row["auth"], row["user_agent"]) == ("HTTP/2.0", "bearer", "curl/8.4")


@pytest.mark.parametrize(
    ("version", "protocol", "raw"),
    [
        ("HTTP/1.1", "HTTP/1.1", None),
        ("http/1.1", "HTTP/1.1", None),
        ("h2", "HTTP/2.0", None),
        ("HTTP/2", "HTTP/2.0", None),
        ("h3", "HTTP/3.0", None),
        ("h3-29", "HTTP/3.0", "h3-29"),
        ("spdy/3.1", "SPDY/3.1", "spdy/3.1"),
        ("", None, None),
        ("unknown", None, None),
    ],
)
def test_http_versions(ingest_files, version, protocol, raw):
    row = one(ingest_files, entry(f"{API}/v", http_version=version))
    assert row["protocol"] == protocol
    assert extra(row).get("http_version") == raw


def test_websocket_entry(ingest_files):
    received = json.dumps({"event": "profile", "email": "ws.user@example.org"})
    messages = [
        {"type": "send", "time": 1.0, "opcode": 1, "data": '{"op":"subscribe"}'},
        {"type": "receive", "time": 1.1, "opcode": 1, "data": received},
    ]
    e = entry(
        "wss://ws.example.com/socket?channel=7",
        status=101,
        body=None,
        extra={"_resourceType": "websocket", "_webSocketMessages": messages},
    )
    row = one(ingest_files, e)
    assert (row["scheme"], row["host"], row["path"], row["status"]) == (
        "wss",
        "ws.example.com",
        "/socket",
        101,
    )
    assert extra(row)["ws"] == {"messages": 2, "sent": 1, "received": 1, "received_bytes": len(received)}
    assert row["pii_kinds"] == ["email"]


def test_data_url_keeps_the_url_in_request(ingest_files):
    row = one(ingest_files, entry("data:image/png;base64,iVBORw0KGgo=", mime="image/png"))
    assert (row["scheme"], row["host"], row["path"], row["endpoint"]) == ("data", None, None, None)
    assert row["request"] == "data:image/png;base64,iVBORw0KGgo="


def test_started_without_offset_uses_tz(ingest_files):
    e = entry(f"{API}/t", started="2023-01-05T10:00:00")
    case = ingest_files({"t.har": dumps(har(e))})
    assert case.events().row(0, named=True)["ts"] == ts(2023, 1, 5, 10)
    assert any("without offset read as UTC" in n for n in case.entry("t.har")["notes"])
    ny = ingest_files({"t.har": dumps(har(e))}, case="ny", tz="America/New_York")
    assert ny.events().row(0, named=True)["ts"] == ts(2023, 1, 5, 15)


# --------------------------------------------------------------------------------------------------
# Files: compression, one line, batches


def test_single_line_multi_megabyte_gzip_capture(ingest_files):
    big = "x" * 200_000
    entries = [entry(f"{API}/api/v1/orders/{i}", body={"note": big}) for i in range(1, 31)]
    doc = dumps(har(*entries))
    assert b"\n" not in doc and len(doc) > 6_000_000
    case = ingest_files({"one-line.har.gz": gzip.compress(doc)})
    e = case.entry("one-line.har.gz")
    assert (e["format"], e["compression"], e["rows"], e["lines_read"]) == ("har", "gzip", 30, 30)
    assert e["content_sha256"] == hashlib.sha256(doc).hexdigest()
    assert case.events().get_column("endpoint").unique().to_list() == ["/api/v1/orders/{id}"]


def test_batches_keep_entry_numbers(ingest_files, monkeypatch):
    monkeypatch.setattr(har_module, "BATCH_ENTRIES", 2)
    entries = [entry(f"{API}/n/{i}") for i in range(1, 6)]
    entries[2]["startedDateTime"] = "yesterday"
    case = ingest_files({"b.har": dumps(har(*entries))})
    assert case.events().get_column("source_line").to_list() == [1, 2, 4, 5]
    assert case.rejects().get_column("source_line").to_list() == [3]
    assert case.entry("b.har")["lines_read"] == 5


# --------------------------------------------------------------------------------------------------
# Bad entries and broken JSON never cost the rest


def test_bad_entries_are_rejects_with_reason_and_sha(ingest_files):
    bad_date = entry(f"{API}/d", started="not a date")
    no_url = {"startedDateTime": "2023-01-05T10:00:00Z", "request": {"method": "GET"}, "response": {}}
    doc = har(entry(f"{API}/ok"), bad_date, no_url, 42, entry(f"{API}/ok2"))
    case = ingest_files({"bad.har": dumps(doc)})
    rej = case.rejects()
    assert rej.get_column("source_line").to_list() == [2, 3, 4]
    assert rej.get_column("reason").to_list() == [
        "unreadable startedDateTime",
        "no request.url",
        "entry is not an object (int)",
    ]
    compact = [json.dumps(x, ensure_ascii=False, separators=(",", ":")) for x in (bad_date, no_url, 42)]
    assert rej.get_column("line_sha256").to_list() == [
        hashlib.sha256(c.encode()).hexdigest() for c in compact
    ]
    assert rej.get_column("byte_offset").to_list() == [None, None, None]
    assert case.events().get_column("source_line").to_list() == [1, 5]
    e = case.entry("bad.har")
    assert (e["status"], e["lines_read"], e["rows"], e["rejected"]) == ("ingested", 5, 2, 3)


def _numbered(n: int, pad: int = 0) -> bytes:
    entries = [
        entry(
            f"{API}/api/v1/n/{i}",
            started=f"2023-01-05T10:{i // 60:02d}:{i % 60:02d}.000Z",
            body={"p": "y" * pad},
        )
        for i in range(1, n + 1)
    ]
    return dumps(har(*entries))


def _start(doc: bytes, i: int) -> int:
    return doc.index(b'{"startedDateTime": "2023-01-05T10:%02d:%02d.000Z"' % (i // 60, i % 60))


def test_broken_entry_is_one_reject_and_the_rest_is_read(ingest_files):
    doc = _numbered(6)
    at = _start(doc, 3)
    broken = doc[:at] + doc[at:].replace(b'"time": 12.5', b'"time": 12.5,,', 1)
    case = ingest_files({"broken.har": broken})
    assert case.events().get_column("source_line").to_list() == [1, 2, 4, 5, 6]
    rej = case.rejects().row(0, named=True)
    assert rej["source_line"] == 3
    assert rej["byte_offset"] == at
    assert rej["line_sha256"] == hashlib.sha256(broken[at : _start(broken, 4)]).hexdigest()
    assert rej["reason"].startswith("invalid JSON: parse error")
    assert rej["text"].startswith('{"startedDateTime": "2023-01-05T10:00:03.000Z", "time": 12.5,,')
    e = case.entry("broken.har")
    assert (e["status"], e["lines_read"], e["rows"], e["rejected"]) == ("ingested", 6, 5, 1)


def test_missing_comma_between_entries(ingest_files):
    doc = _numbered(5)
    at = _start(doc, 4)
    broken = doc[: at - 2] + b" " + doc[at:]  # "}, {" → "} {"
    case = ingest_files({"comma.har": broken})
    assert case.events().get_column("source_line").to_list() == [1, 2, 3, 5]
    assert case.rejects().get_column("source_line").to_list() == [4]
    assert case.rejects().row(0, named=True)["byte_offset"] == at - 1


def test_truncated_capture_is_partial_with_everything_before_kept(ingest_files):
    doc = _numbered(10)
    cut = doc[: _start(doc, 8) + 40]
    case = ingest_files({"cut.har": cut})
    e = case.entry("cut.har")
    assert e["status"] == "partial"
    assert "invalid JSON after 7 entries" in e["error"]
    assert (e["rows"], e["rejected"], e["lines_read"]) == (7, 1, 8)
    rej = case.rejects().row(0, named=True)
    assert (rej["source_line"], rej["byte_offset"]) == (8, _start(doc, 8))
    assert rej["reason"].endswith("(document ends here) (40 bytes skipped)")


def test_corrupt_gzip_keeps_the_entries_before_the_damage(ingest_files):
    doc = _numbered(400, pad=200)
    packed = gzip.compress(doc)
    case = ingest_files({"cut.har.gz": packed[: len(packed) * 2 // 3]})
    e = case.entry("cut.har.gz")
    assert e["status"] == "partial" and "corrupt or truncated gzip" in e["error"]
    assert e["rows"] > 0 and e["rows"] + e["rejected"] == e["lines_read"]
    assert case.events().get_column("source_line").to_list() == list(range(1, e["rows"] + 1))
    assert e["sha256"] == hashlib.sha256(packed[: len(packed) * 2 // 3]).hexdigest()


def test_not_json_at_all_is_an_error(ingest_files):
    case = ingest_files({"x.har": b'{"log": {"version": "1.2", "entries": [ not json ]}}'})
    e = case.entry("x.har")
    assert (e["status"], e["rows"], e["rejected"]) == ("error", 0, 0)
    assert e["error"].startswith("invalid JSON after 0 entries")


def test_invalid_utf8_costs_nothing(ingest_files):
    doc = _numbered(3).replace(b"/api/v1/n/2", b"/api/v1/n/\xff2")
    case = ingest_files({"u.har": doc})
    assert case.events().get_column("path").to_list() == ["/api/v1/n/1", "/api/v1/n/\ufffd2", "/api/v1/n/3"]
    assert any("invalid UTF-8" in n for n in case.entry("u.har")["notes"])


def test_resync_across_windows(ingest_files, monkeypatch):
    # Small buffers: the damage is far behind the parser's read position and outside the kept window.
    for name, value in {
        "READ_BLOCK": 512,
        "PARSE_BUFFER": 256,
        "TRIAL_BUFFER": 64,
        "RESYNC_BACK": 2048,
    }.items():
        monkeypatch.setattr(har_module, name, value)
    doc = _numbered(200, pad=300)
    broken = doc
    for i in (20, 120, 121):
        at = _start(broken, i)
        broken = broken[:at] + broken[at:].replace(b'"method": "GET"', b'"method": GET', 1)
    case = ingest_files({"many.har": broken})
    assert case.rejects().get_column("source_line").to_list() == [20, 120, 121]
    lines = case.events().get_column("source_line").to_list()
    assert lines == [i for i in range(1, 201) if i not in (20, 120, 121)]
    assert case.events().get_column("path").to_list() == [f"/api/v1/n/{i}" for i in lines]


def test_concatenated_captures(ingest_files):
    a = dumps(har(entry(f"{API}/a1"), entry(f"{API}/a2")))
    b = dumps(har(entry(f"{API}/b1", started="2023-01-06T00:00:00Z")))
    case = ingest_files({"two.har": a + b"\n" + b})
    assert case.events().get_column("path").to_list() == ["/a1", "/a2", "/b1"]
    assert case.entry("two.har")["rejected"] == 0


# --------------------------------------------------------------------------------------------------
# Detection


def test_sniff():
    ing = HarIngestor()
    full = ing.sniff(['{"log": {"version": "1.2", "creator": {"name": "WebInspector"', "x"], "a.har")
    assert full is not None and (full.confidence, full.variant) == (0.95, "1.2")
    pretty = ing.sniff(["{", '  "log": {', '    "version": "1.1",'], "a")
    assert pretty is not None and (pretty.confidence, pretty.variant) == (0.95, "1.1")
    cut = ing.sniff(['{"log": {'], "a")
    assert cut is not None and cut.confidence == 0.8
    assert ing.sniff(['{"records": [{"time": "x"}]}'], "a") is None
    assert (
        ing.sniff(['10.0.0.1 - - [01/Feb/2023:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"'], "a") is None
    )


def test_detection_picks_har_and_not_for_json_lines():
    har_head = dumps(har(entry(f"{API}/a")), indent=2).decode().splitlines()
    found = detect(har_head, "x.har", IngestOptions())
    assert found is not None and found.ingestor == "har"
    json_lines = ['{"time_local":"01/Feb/2023:00:00:00 +0000","request":"GET / HTTP/1.1","status":"200"}'] * 3
    found = detect(json_lines, "access.json", IngestOptions())
    assert found is not None and found.ingestor == "nginx_json"


def test_formats_command_lists_har_as_reference():
    from click.testing import CliRunner

    from forensics.cli import main

    result = CliRunner().invoke(main, ["formats"])
    assert result.exit_code == 0
    assert "har" in result.output and "reference" in result.output


# --------------------------------------------------------------------------------------------------
# Secrets and personal data never reach the case directory

SECRET = "s3cr3t-HAR-token-planted-9000"


def _case_text(case_dir: Path) -> str:
    """Every file of the case as text, Parquet cells decoded (they are compressed on disk)."""
    chunks = []
    for f in sorted(case_dir.rglob("*")):
        if not f.is_file():
            continue
        if f.suffix == ".parquet":
            frame = pl.read_parquet(f)
            cells = [
                pl.col(c).list.join("|") if isinstance(t, pl.List) else pl.col(c).cast(pl.String)
                for c, t in frame.schema.items()
            ]
            chunks.append(frame.select(cells).write_csv())
        else:
            chunks.append(f.read_bytes().decode("utf-8", "replace"))
    return "\n".join(chunks)


def test_planted_secrets_and_personal_data_are_absent_from_the_whole_case(ingest_files):
    def secret_entry(path: str, **kw) -> dict:
        return entry(
            f"https://u:{SECRET}@api.example.com{path}?access_token={SECRET}&page=1",
            request_headers=headers(
                ("Authorization", f"Bearer {SECRET}"),
                ("Cookie", f"session={SECRET}; _ga=1"),
                ("x-api-key", SECRET),
                ("Referer", f"https://app.example.com/cb?token={SECRET}"),
            ),
            cookies=[{"name": "session", "value": SECRET}],
            response_headers=headers(("Set-Cookie", f"session={SECRET}; HttpOnly")),
            post_text=json.dumps({"password": SECRET}),
            body={**CUSTOMER, "token": SECRET},
            **kw,
        )

    good = secret_entry("/api/v1/customers/A7F3K2")
    bad = secret_entry("/api/v1/customers/B8G4L3", started="garbage")  # a reject with everything in it
    doc = dumps(har(good, bad, secret_entry("/api/v1/customers/C9H5M4"), secret_entry("/api/v1/x")))
    at = _start_of(doc, 3)
    broken = doc[:at] + doc[at:].replace(b'"method": "GET"', b'"method": GET', 1)  # a broken stretch
    case = ingest_files({"secrets.har": broken})
    assert case.entry("secrets.har")["rows"] == 2 and case.entry("secrets.har")["rejected"] == 2
    from forensics import api

    api.inventory(case.case_dir)
    text = _case_text(case.case_dir)
    assert SECRET not in text
    for value in CUSTOMER_VALUES:
        assert value not in text, value
    assert fingerprint(SECRET) in text
    ev = case.events()
    assert ev.get_column("auth").to_list() == ["bearer", "bearer"]
    assert ev.get_column("principal").to_list() == [fingerprint(SECRET)] * 2


def _start_of(doc: bytes, n: int) -> int:
    """Offset of the n-th entry (1-based) of a document written by dumps()."""
    pos = doc.index(b'"entries": [') + len(b'"entries": [')
    for _ in range(n - 1):
        pos = doc.index(b', {"startedDateTime"', pos) + 2
    return pos
