"""Caddy access logs: known values for every rule of forensics.ingest.caddy."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from casecheck import assert_nowhere

from forensics.ingest.caddy import CaddyIngestor
from forensics.secrets import fingerprint


def _access(**over: object) -> str:
    """One access-log line; ``request`` keys and top-level keys replaced by name."""
    request = {
        "remote_ip": "10.0.0.5",
        "remote_port": "51234",
        "client_ip": "203.0.113.9",
        "proto": "HTTP/2.0",
        "method": "GET",
        "host": "api.example.com:443",
        "uri": "/api/v1/customers/1234?fields=name",
        "headers": {
            "User-Agent": ["okhttp/4.9.3"],
            "Referer": ["https://app.example.com/"],
            "X-Forwarded-For": ["203.0.113.9"],
            "X-Request-Id": ["req-1"],
        },
        "tls": {
            "resumed": False,
            "version": 772,
            "cipher_suite": 4865,
            "proto": "h2",
            "server_name": "api.example.com",
        },
    }
    request.update(over.pop("request", {}))  # type: ignore[arg-type]
    record = {
        "level": "info",
        "ts": 1672939212.1234567,
        "logger": "http.log.access.log0",
        "msg": "handled request",
        "request": request,
        "bytes_read": 12,
        "user_id": "",
        "duration": 0.048,
        "size": 1873,
        "status": 200,
        "resp_headers": {"Server": ["Caddy"]},
    }
    record.update(over)
    return json.dumps(record)


def test_access_line_has_known_values(ingest_files):
    case = ingest_files({"caddy/access.log": _access() + "\n"})
    row = case.events().row(0, named=True)
    assert row["ts"] == datetime(2023, 1, 5, 17, 20, 12, 123456, tzinfo=UTC)  # digits cut, not rounded
    assert row["source_format"] == "caddy" and row["source_line"] == 1
    # Caddy's client_ip (already resolved through its trusted_proxies) is the client; remote_ip the peer
    assert (row["client_ip"], row["peer_ip"], row["client_port"]) == ("203.0.113.9", "10.0.0.5", None)
    assert (row["method"], row["scheme"], row["host"]) == ("GET", "https", "api.example.com")
    assert (row["path"], row["query"], row["protocol"]) == (
        "/api/v1/customers/1234",
        "fields=name",
        "HTTP/2.0",
    )
    assert row["endpoint"] == "/api/v1/customers/{id}"
    assert (row["status"], row["bytes_out"], row["bytes_in"], row["duration_ms"]) == (200, 1873, 12, 48.0)
    assert (row["user_agent"], row["referer"], row["request_id"]) == (
        "okhttp/4.9.3",
        "https://app.example.com/",
        "req-1",
    )
    assert row["auth"] == "none" and row["principal"] is None  # every header logged, no credential
    extra = json.loads(row["extra"])
    assert extra == {
        "logger": "http.log.access.log0",
        "level": "info",
        "tls_version": "772",
        "tls_server_name": "api.example.com",
        "x_forwarded_for": "203.0.113.9",
    }


def test_noise_lines_compose_prefix_and_malformed_records(ingest_files):
    lines = [
        'caddy  | {"level":"info","ts":1672939200.5,"msg":"using config from file","file":"/etc/caddy/Caddyfile"}',
        'caddy  | {"level":"info","ts":1672939200.6,"logger":"tls","msg":"finished cleaning storage units"}',
        "caddy  | " + _access(),
        "caddy  | " + _access()[:120],  # cut inside a record
        "",
        "caddy  | " + _access(ts="yesterday"),
        "caddy  | " + _access(request={"method": "POST", "uri": "/login"}),
        "caddy  | not json at all",
    ]
    case = ingest_files({"compose.log": "\n".join(lines) + "\n"})
    entry = case.entry("compose.log")
    assert entry["format"] == "caddy"
    assert (entry["lines_read"], entry["rows"], entry["rejected"]) == (8, 2, 6)
    reasons = dict(
        zip(*case.rejects().select("source_line", "reason").to_dict(as_series=False).values(), strict=True)
    )
    assert reasons == {
        1: "not an access-log entry (no logger)",
        2: "not an access-log entry (logger tls)",
        4: "invalid JSON",
        5: "blank line",
        6: "unparseable timestamp",
        8: "not a Caddy JSON log line",
    }
    assert case.events().get_column("method").to_list() == ["GET", "POST"]


def test_older_caddy_remote_addr_and_string_durations(ingest_files):
    old = {"remote_ip": None, "remote_port": None, "client_ip": None, "remote_addr": "198.51.100.4:5555"}
    lines = [
        _access(request=old, duration="1.5ms"),
        _access(request={"remote_ip": "2001:db8::9", "client_ip": "2001:db8::9"}),
    ]
    ev = ingest_files({"a.log": "\n".join(lines) + "\n"}).events()
    assert ev.select("client_ip", "peer_ip", "client_port", "duration_ms").rows() == [
        ("198.51.100.4", None, 5555, 1.5),
        ("2001:db8::9", None, 51234, 48.0),
    ]


def test_credentials_are_fingerprints_and_redacted_ones_keep_only_their_kind(ingest_files, tmp_path):
    token = "Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.Zm9vYmFyYmF6"
    secret_key = "k-live-SUPERSECRET-42"
    headers = {"User-Agent": ["curl/8"]}
    lines = [
        _access(request={"headers": {**headers, "Authorization": [token]}}),
        _access(request={"headers": {**headers, "X-Api-Key": [secret_key]}}),
        _access(request={"headers": {**headers, "Cookie": ["REDACTED"]}}),
        _access(request={"headers": {**headers, "Authorization": []}}, status=401),
        _access(request={"headers": {**headers, "Authorization": ["REDACTED"]}}, user_id="Bob"),
        # a malformed record carrying the secrets: its reject text is masked too
        _access(request={"headers": {"X-Api-Key": [secret_key], "Authorization": [token]}})[:-30],
    ]
    case = ingest_files({"creds.log": "\n".join(lines) + "\n"})
    ev = case.events()
    assert ev.select("auth", "principal").rows() == [
        ("bearer", fingerprint(token.split(" ", 1)[1])),
        ("apikey", fingerprint(secret_key)),
        ("cookie", None),  # Caddy's placeholder is shared by every client: never a principal
        ("unknown", None),
        ("basic", "Bob"),
    ]
    assert case.rejects().get_column("reason").to_list() == ["invalid JSON"]
    assert_nowhere(case.case_dir, [token.split(" ", 1)[1], secret_key])


def test_sniff_claims_access_logs_and_caddy_noise_but_not_other_json():
    ing = CaddyIngestor()
    found = ing.sniff([_access()], "access.log")
    assert found is not None and found.confidence >= 0.95
    noise = ['{"level":"info","ts":1.5,"logger":"admin","msg":"admin endpoint started"}'] * 4
    found = ing.sniff(noise, "caddy.log")
    assert found is not None and 0.4 <= found.confidence < 0.6
    assert ing.sniff(['{"ts": 1, "msg": "x"}'], "x.log") is None
    assert (
        ing.sniff(['{"time":"2023-01-01T00:00:00Z","status":200,"request":"GET / HTTP/1.1"}'], "x.log")
        is None
    )
