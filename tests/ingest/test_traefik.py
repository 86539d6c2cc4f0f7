"""Traefik access logs (CLF and JSON): known values for every rule of forensics.ingest.traefik."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from forensics.ingest import IngestOptions, detect
from forensics.ingest.traefik import TraefikIngestor
from forensics.secrets import fingerprint

CLF = (
    '203.0.113.9 - alice [05/Jan/2023:18:20:12 +0100] "GET /api/v1/customers/1234?fields=name HTTP/2.0" '
    '200 1873 "https://app.example.com/" "okhttp/4.9.3" 4242 "api@docker -> customers@docker" '
    '"http://10.1.0.3:8080" 48ms'
)


def _json(**over: object) -> str:
    record = {
        "ClientAddr": "10.0.0.7:51234",
        "ClientHost": "203.0.113.9",
        "ClientPort": "51234",
        "ClientUsername": "-",
        "DownstreamContentSize": 1873,
        "DownstreamStatus": 200,
        "Duration": 48123456,
        "OriginContentSize": 1873,
        "OriginDuration": 47000000,
        "OriginStatus": 200,
        "Overhead": 1123456,
        "RequestAddr": "api.example.com",
        "RequestContentSize": 512,
        "RequestCount": 4242,
        "RequestHost": "api.example.com",
        "RequestMethod": "POST",
        "RequestPath": "/api/v1/customers/1234?fields=name",
        "RequestPort": "-",
        "RequestProtocol": "HTTP/1.1",
        "RequestScheme": "https",
        "RetryAttempts": 0,
        "RouterName": "api@docker",
        "ServiceAddr": "10.1.0.3:8080",
        "ServiceName": "customers@docker",
        "ServiceURL": {"Scheme": "http", "Host": "10.1.0.3:8080"},
        "StartLocal": "2023-01-05T18:20:12.123456789+01:00",
        "StartUTC": "2023-01-05T17:20:12.123456789Z",
        "TLSVersion": "1.3",
        "entryPointName": "websecure",
        "level": "info",
        "msg": "",
        "request_User-Agent": "okhttp/4.9.3",
        "request_X-Request-Id": "req-1",
        "time": "2023-01-05T18:20:12+01:00",
    }
    record.update(over)
    return json.dumps(record)


def test_clf_line_has_known_values(ingest_files):
    case = ingest_files({"traefik/access.log": CLF + "\n"})
    row = case.events().row(0, named=True)
    assert row["ts"] == datetime(2023, 1, 5, 17, 20, 12, tzinfo=UTC)
    assert row["source_format"] == "traefik"
    assert (row["client_ip"], row["peer_ip"], row["principal"]) == ("203.0.113.9", None, "alice")
    assert (row["method"], row["path"], row["query"], row["protocol"]) == (
        "GET",
        "/api/v1/customers/1234",
        "fields=name",
        "HTTP/2.0",
    )
    assert (row["status"], row["bytes_out"], row["duration_ms"]) == (200, 1873, 48.0)
    assert (row["user_agent"], row["referer"]) == ("okhttp/4.9.3", "https://app.example.com/")
    assert json.loads(row["extra"]) == {
        "router": "api@docker -> customers@docker",
        "service_url": "http://10.1.0.3:8080",
        "request_count": 4242,
    }
    assert case.entry("access.log")["variant"] == "clf"


def test_json_line_has_known_values(ingest_files):
    case = ingest_files({"traefik/access.json": _json() + "\n"})
    row = case.events().row(0, named=True)
    assert row["ts"] == datetime(2023, 1, 5, 17, 20, 12, 123456, tzinfo=UTC)
    # ClientAddr is the peer (private); ClientHost differs, so it is X-Forwarded-For: the client
    assert (row["client_ip"], row["peer_ip"], row["client_port"]) == ("203.0.113.9", "10.0.0.7", None)
    assert (row["method"], row["scheme"], row["host"]) == ("POST", "https", "api.example.com")
    assert (row["path"], row["query"], row["protocol"]) == (
        "/api/v1/customers/1234",
        "fields=name",
        "HTTP/1.1",
    )
    assert (row["status"], row["bytes_out"], row["bytes_in"]) == (200, 1873, 512)
    assert row["duration_ms"] == 48.123456  # Duration is in nanoseconds
    assert (row["user_agent"], row["request_id"], row["principal"]) == ("okhttp/4.9.3", "req-1", None)
    assert json.loads(row["extra"]) == {
        "router": "api@docker",
        "service": "customers@docker",
        "service_addr": "10.1.0.3:8080",
        "entry_point": "websecure",
        "origin_status": 200,
        "retry_attempts": 0,
        "request_count": 4242,
        "tls_version": "1.3",
        "x_forwarded_for": "203.0.113.9",
    }


def test_clients_peers_and_traefik_v1_keys(ingest_files):
    lines = [
        _json(ClientHost="10.0.0.7"),  # no X-Forwarded-For: the peer is the client, with its port
        _json(ClientAddr="198.51.100.1:443", ClientHost="192.168.1.100,10.0.0.50"),  # untrusted peer
        _json(ClientAddr="[2001:db8::5]:8443", ClientHost="2001:db8::5", ClientPort="8443"),
        # Traefik 1.x: frontends and backends, no RouterName/ServiceName
        _json(
            RouterName=None,
            ServiceName=None,
            ServiceAddr=None,
            FrontendName="frontend-api",
            BackendName="backend-api",
        ),
        '198.51.100.7, 10.0.0.2 - - [05/Jan/2023:17:20:12 +0000] "GET / HTTP/1.1" - - "-" "-" 1 "-" "-" 0ms',
    ]
    ev = ingest_files({"t.log": "\n".join(lines) + "\n"}).events()
    assert ev.select("client_ip", "peer_ip", "client_port").rows() == [
        ("10.0.0.7", None, 51234),
        ("198.51.100.1", None, 443),  # X-Forwarded-For from an untrusted peer is ignored: its own port
        ("2001:db8::5", None, 8443),
        ("203.0.113.9", "10.0.0.7", None),
        ("198.51.100.7", "10.0.0.2", None),  # CLF: ClientHost was a chain; right-most untrusted
    ]
    assert json.loads(ev.row(3, named=True)["extra"])["router"] == "frontend-api"
    last = ev.row(4, named=True)
    assert (last["status"], last["bytes_out"], last["user_agent"], last["referer"]) == (
        None,
        None,
        None,
        None,
    )


def test_rows_and_rejects_add_up_with_reasons(ingest_files):
    lines = [
        CLF,
        "DEBUG: CrowdsecBouncerTraefikPlugin: 2025/09/05 13:53:40 handleStreamCache:updated",
        _json(),
        '{"level":"info","msg":"Configuration loaded from flags.","time":"2023-01-05T17:20:12Z"}',
        _json()[:100],
        "",
        _json(StartUTC="never", StartLocal=None, time=None),
        CLF.replace("[05/Jan/2023:18:20:12 +0100]", "[05/Foo/2023:18:20:12 +0100]"),
    ]
    case = ingest_files({"mixed.log": "\n".join(lines) + "\n"})
    entry = case.entry("mixed.log")
    assert entry["format"] == "traefik"
    assert (entry["lines_read"], entry["rows"], entry["rejected"]) == (8, 2, 6)
    assert case.reasons_by_line() == {
        2: "does not match the Traefik common log format",
        4: "not an access-log entry (Traefik log message)",
        5: "invalid JSON",
        6: "blank line",
        7: "unparseable timestamp",
        8: "unparseable timestamp",
    }


def test_kept_headers_are_fingerprinted_unless_redacted(ingest_files):
    lines = [
        _json(**{"request_Authorization": "Bearer abc.def.ghi-planted"}),
        _json(**{"request_Authorization": "REDACTED"}),
    ]
    ev = ingest_files({"h.log": "\n".join(lines) + "\n"}).events()
    assert ev.select("auth", "principal").rows() == [
        ("bearer", fingerprint("abc.def.ghi-planted")),
        (None, None),
    ]


def test_traefik_clf_wins_detection_over_nginx_and_apache():
    lines = [CLF] * 5
    found = detect(lines, "logs/nginx/access.log", IngestOptions())  # even with "nginx" in the path
    assert found is not None and found.ingestor == "traefik" and found.variant == "clf"
    combined = '203.0.113.9 - - [05/Jan/2023:18:20:12 +0100] "GET / HTTP/1.1" 200 10 "-" "curl/8"'
    assert TraefikIngestor().sniff([combined] * 5, "access.log") is None
    assert detect([combined] * 5, "access.log", IngestOptions()).ingestor in ("nginx", "apache")
