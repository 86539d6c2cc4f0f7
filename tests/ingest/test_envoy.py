"""Envoy access logs (default text, Istio text, JSON): known values for every rule of forensics.ingest.envoy."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from forensics.ingest.envoy import EnvoyIngestor

DEFAULT = (
    '[2023-01-05T17:20:12.123Z] "GET /api/v1/customers/1234?fields=name HTTP/1.1" 200 - 512 1873 48 45 '
    '"203.0.113.9,10.0.0.7" "okhttp/4.9.3" "c219f6da-2b7f-483e-9ced-ec323d9330a9" "api.example.com" '
    '"10.1.0.3:8080"'
)
ISTIO = (
    '[2023-01-05T17:20:12.123Z] "POST /login HTTP/2" 401 - via_upstream - "-" 120 33 7 6 "-" "curl/8.5.0" '
    '"5e1c3f1a-0000-4000-8000-000000000001" "auth.example.com" "10.1.0.4:8080" '
    "outbound|8080||auth.default.svc.cluster.local 10.1.0.9:40000 10.1.0.9:8443 198.51.100.23:41234 "
    "auth.example.com default"
)


def _json(**over: object) -> str:
    record = {
        ":authority": "api.example.com",
        "bytes_received": 512,
        "bytes_sent": 1873,
        "downstream_local_address": "10.42.0.77:10443",
        "downstream_remote_address": "10.0.0.7:59292",
        "duration": 48,
        "method": "GET",
        "protocol": "HTTP/2",
        "response_code": 200,
        "response_code_details": "via_upstream",
        "response_flags": "-",
        "route_name": "httproute/app/api/rule/0",
        "start_time": "2023-01-05T17:20:12.123Z",
        "upstream_cluster": "httproute/app/api/rule/0",
        "upstream_host": "10.1.0.3:8080",
        "user-agent": "okhttp/4.9.3",
        "x-envoy-origin-path": "/api/v1/customers/1234?fields=name",
        "x-envoy-upstream-service-time": None,
        "x-forwarded-for": "203.0.113.9",
        "x-request-id": "req-1",
    }
    record.update(over)
    return json.dumps(record)


def test_default_format_line_has_known_values(ingest_files):
    case = ingest_files({"envoy/access.log": DEFAULT + "\n"})
    row = case.events().row(0, named=True)
    assert row["ts"] == datetime(2023, 1, 5, 17, 20, 12, 123000, tzinfo=UTC)
    assert row["source_format"] == "envoy"
    # no peer in the default format: X-Forwarded-For alone, right-most untrusted address
    assert (row["client_ip"], row["peer_ip"], row["client_port"]) == ("203.0.113.9", "10.0.0.7", None)
    assert (row["method"], row["host"], row["path"], row["query"], row["protocol"]) == (
        "GET",
        "api.example.com",
        "/api/v1/customers/1234",
        "fields=name",
        "HTTP/1.1",
    )
    assert (row["status"], row["bytes_in"], row["bytes_out"], row["duration_ms"]) == (200, 512, 1873, 48.0)
    assert (row["user_agent"], row["request_id"]) == ("okhttp/4.9.3", "c219f6da-2b7f-483e-9ced-ec323d9330a9")
    assert json.loads(row["extra"]) == {"upstream_service_time_ms": 45.0, "upstream_host": "10.1.0.3:8080"}


def test_istio_text_and_json_lines_use_the_logged_peer(ingest_files):
    lines = [
        ISTIO,
        _json(),
        _json(**{"x-forwarded-for": None, "downstream_remote_address": "[2001:db8::5]:40000"}),
        # Istio's JSON keys
        json.dumps(
            {
                "start_time": "2023-01-05T17:20:13.000Z",
                "method": "GET",
                "path": "/health",
                "protocol": "HTTP/1.1",
                "response_code": 200,
                "response_flags": "-",
                "authority": "svc",
                "user_agent": "kube-probe/1.29",
                "request_id": "r-2",
                "downstream_remote_address": "10.1.0.1:5000",
                "upstream_cluster": "inbound|8080||",
                "bytes_received": 0,
                "bytes_sent": 2,
                "duration": 1,
            }
        ),
    ]
    ev = ingest_files({"mesh.log": "\n".join(lines) + "\n"}).events()
    assert ev.select("client_ip", "peer_ip", "client_port", "method", "path", "status", "host").rows() == [
        ("198.51.100.23", None, 41234, "POST", "/login", 401, "auth.example.com"),
        ("203.0.113.9", "10.0.0.7", None, "GET", "/api/v1/customers/1234", 200, "api.example.com"),
        ("2001:db8::5", None, 40000, "GET", "/api/v1/customers/1234", 200, "api.example.com"),
        ("10.1.0.1", None, 5000, "GET", "/health", 200, "svc"),
    ]
    istio = json.loads(ev.row(0, named=True)["extra"])
    assert istio["upstream_cluster"] == "outbound|8080||auth.default.svc.cluster.local"
    assert istio["response_code_details"] == "via_upstream" and istio["route"] == "default"
    assert istio["sni"] == "auth.example.com" and istio["downstream_local_address"] == "10.1.0.9:8443"
    assert ev.row(3, named=True)["request_id"] == "r-2"


def test_tcp_lines_prefixes_and_rejects_add_up(ingest_files):
    lines = [
        '[2019-04-08T16:50:12.533Z] "- - -" 0 - 87 254 4 - "-" "-" "-" "-" "172.27.0.2:80"',
        "2025-01-01T00:00:00.000000000Z stdout F " + DEFAULT,
        "ACCESS " + DEFAULT,
        "2025-01-01T00:00:00.000000000+01:00 stderr F " + _json(),
        "[2023-01-05 17:20:12] envoy startup: listener added",
        "",
        '[not-a-time] "GET / HTTP/1.1" 200 - 0 0 1 - "-" "-" "-" "-" "-"',
        _json()[:90],
        '{"level": "info", "msg": "some other json"}',
        "plain text noise",
    ]
    case = ingest_files({"envoy.log": "\n".join(lines) + "\n"})
    entry = case.entry("envoy.log")
    assert entry["format"] == "envoy"
    assert (entry["lines_read"], entry["rows"], entry["rejected"]) == (10, 4, 6)
    ev = case.events()
    tcp = ev.row(0, named=True)
    assert (tcp["method"], tcp["path"], tcp["status"], tcp["request"]) == (None, None, None, None)
    assert (tcp["bytes_in"], tcp["bytes_out"], tcp["duration_ms"]) == (87, 254, 4.0)
    assert json.loads(tcp["extra"]) == {"upstream_host": "172.27.0.2:80", "tcp": True}
    assert ev.get_column("client_ip").to_list() == [None, "203.0.113.9", "203.0.113.9", "203.0.113.9"]
    assert case.reasons_by_line() == {
        5: "does not match an Envoy access-log format",
        6: "blank line",
        7: "unparseable timestamp",
        8: "invalid JSON",
        9: "JSON object without Envoy access-log keys (start_time, response_code)",
        10: "not an Envoy access-log line",
    }


def test_sniff_variants():
    ing = EnvoyIngestor()
    assert ing.sniff([DEFAULT], "a.log").variant == "text"
    assert ing.sniff([ISTIO], "a.log").variant == "istio"
    assert ing.sniff([_json()], "a.log").variant == "json"
    found = ing.sniff(["2025-01-01T00:00:00.000000000Z stdout F " + DEFAULT], "a.log")
    assert found is not None and found.confidence >= 0.95
    assert ing.sniff(['{"start_time": "x", "status": 200}'], "a.log") is None
    nginx = '203.0.113.9 - - [05/Jan/2023:18:20:12 +0100] "GET / HTTP/1.1" 200 10 "-" "curl/8"'
    assert ing.sniff([nginx], "a.log") is None
