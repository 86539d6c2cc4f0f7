"""Google Cloud load-balancer request logs: known values for every rule of forensics.ingest.gcp_lb."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from forensics.ingest.gcp_lb import GcpLoadBalancerIngestor


def _entry(**over: object) -> dict:
    http = {
        "requestMethod": "GET",
        "requestUrl": "https://api.example.com/api/v1/customers/1234?fields=name",
        "requestSize": "512",
        "status": 200,
        "responseSize": "1873",
        "userAgent": "okhttp/4.9.3",
        "remoteIp": "203.0.113.9:51234",
        "serverIp": "10.56.35.14",
        "referer": "https://app.example.com/",
        "latency": "0.048123s",
        "protocol": "HTTP/2.0",
        "cacheLookup": True,
        "cacheHit": False,
    }
    http.update(over.pop("http", {}))  # type: ignore[arg-type]
    entry = {
        "insertId": "1oek5rg3l3fxj7",
        "jsonPayload": {
            "@type": "type.googleapis.com/google.cloud.loadbalancing.type.LoadBalancerLogEntry",
            "statusDetails": "response_sent_by_backend",
            "enforcedSecurityPolicy": {
                "name": "edge-policy",
                "priority": 1000,
                "configuredAction": "ALLOW",
                "outcome": "ACCEPT",
            },
            "cacheDecision": ["RESPONSE_HAS_CACHE_CONTROL"],
        },
        "httpRequest": http,
        "resource": {
            "type": "http_load_balancer",
            "labels": {
                "forwarding_rule_name": "api-https-rule",
                "url_map_name": "api-map",
                "backend_service_name": "crm-backend",
                "target_proxy_name": "api-proxy",
                "project_id": "acme-prod",
                "zone": "global",
            },
        },
        "timestamp": "2023-01-05T17:20:12.123456789Z",
        "severity": "INFO",
        "logName": "projects/acme-prod/logs/requests",
        "trace": "projects/acme-prod/traces/4ebc71f1def9274798cac4e8960d0095",
        "spanId": "7a91e0b25edf30e0",
        "receiveTimestamp": "2023-01-05T17:20:13.588272510Z",
    }
    entry.update(over)
    return entry


def _lines(*entries: dict) -> str:
    return "".join(json.dumps(e) + "\n" for e in entries)


def test_entry_has_known_values(ingest_files):
    case = ingest_files({"gcs/requests/2023/01/05/17:00:00_17:59:59_S0.json": _lines(_entry())})
    row = case.events().row(0, named=True)
    assert row["ts"] == datetime(2023, 1, 5, 17, 20, 12, 123456, tzinfo=UTC)
    assert (row["source_format"], row["observer"]) == ("gcp_lb", "api-https-rule")
    assert (row["client_ip"], row["client_port"], row["peer_ip"]) == ("203.0.113.9", 51234, None)
    assert (row["method"], row["scheme"], row["host"]) == ("GET", "https", "api.example.com")
    assert (row["path"], row["query"], row["protocol"]) == (
        "/api/v1/customers/1234",
        "fields=name",
        "HTTP/2.0",
    )
    assert (row["status"], row["bytes_in"], row["bytes_out"], row["duration_ms"]) == (200, 512, 1873, 48.123)
    assert (row["user_agent"], row["referer"]) == ("okhttp/4.9.3", "https://app.example.com/")
    assert row["request_id"] == "4ebc71f1def9274798cac4e8960d0095"
    assert json.loads(row["extra"]) == {
        "resource_type": "http_load_balancer",
        "project_id": "acme-prod",
        "backend_service": "crm-backend",
        "url_map": "api-map",
        "status_details": "response_sent_by_backend",
        "security_policy": "edge-policy",
        "security_outcome": "ACCEPT",
        "security_action": "ALLOW",
        "security_priority": 1000,
        "cache_hit": False,
        "cache_lookup": True,
        "server_ip": "10.56.35.14",
        "span_id": "7a91e0b25edf30e0",
    }


def test_snake_case_export_ipv6_and_observer_fallbacks(ingest_files):
    snake = {
        "http_request": {
            "request_method": "POST",
            "request_url": "https://api.example.com/login",
            "request_size": "198",
            "status": 401,
            "response_size": "1355",
            "user_agent": "python-requests/2.25.1",
            "remote_ip": "2001:db8::8329",
            "latency": "0.025376s",
            "referer": "",
        },
        "json_payload": {"statusDetails": "response_sent_by_backend"},
        "log_name": "projects/acme-prod/logs/requests",
        "resource": {
            "type": "http_load_balancer",
            "labels": {"url_map_name": "", "backend_service_name": "be"},
        },
        "severity": 200,
        "timestamp": "2021-09-10T22:28:32.701888Z",
        "trace": "projects/acme-prod/traces/0474a1e41cfb053be0fd9c422bc292ff",
    }
    no_labels = _entry(resource={"type": "http_load_balancer"}, http={"remoteIp": "[2001:db8::1]:443"})
    ev = ingest_files({"export.json": _lines(snake, no_labels)}).events()
    assert ev.select(
        "observer", "client_ip", "client_port", "method", "status", "duration_ms", "referer"
    ).rows() == [
        ("be", "2001:db8::8329", None, "POST", 401, 25.376, None),  # a bare IPv6 keeps its last group
        (
            "projects/acme-prod/logs/requests",
            "2001:db8::1",
            443,
            "GET",
            200,
            48.123,
            "https://app.example.com/",
        ),
    ]


def test_rows_and_rejects_add_up_with_reasons(ingest_files):
    other = {"timestamp": "2023-01-05T17:20:12Z", "resource": {"type": "gce_instance"}, "textPayload": "boot"}
    late = _entry()
    del late["timestamp"]
    neither = _entry()
    del neither["timestamp"], neither["receiveTimestamp"]
    text = _lines(_entry(), other, late, neither) + json.dumps(_entry())[:150] + "\n\nnot json\n"
    case = ingest_files({"requests.json": text})
    entry = case.entry("requests.json")
    assert (entry["format"], entry["variant"]) == ("gcp_lb", "lines")
    assert (entry["lines_read"], entry["rows"], entry["rejected"]) == (7, 2, 5)
    assert case.reasons_by_line() == {
        2: "Cloud Logging entry without httpRequest (resource.type gce_instance)",
        4: "no timestamp (timestamp, receiveTimestamp)",
        5: "invalid JSON",
        6: "blank line",
        7: "not a Cloud Logging JSON entry",
    }
    received = case.events().row(1, named=True)
    assert received["ts"] == datetime(2023, 1, 5, 17, 20, 13, 588272, tzinfo=UTC)
    assert json.loads(received["extra"])["ts_source"] == "receiveTimestamp"


def test_json_array_and_entries_documents_are_streamed(ingest_files):
    entries = [_entry(http={"requestUrl": f"https://api.example.com/r/{i}"}) for i in range(3)]
    array = json.dumps(entries, indent=2)  # gcloud logging read --format=json
    api = json.dumps({"entries": entries[:2], "nextPageToken": "abc"}, indent=1)  # entries.list
    case = ingest_files({"gcloud.json": array, "api.json": api})
    for name, n in (("gcloud.json", 3), ("api.json", 2)):
        entry = case.entry(name)
        assert (entry["format"], entry["variant"]) == ("gcp_lb", "document")
        assert (entry["lines_read"], entry["rows"], entry["rejected"]) == (n, n, 0)
    ev = case.events().filter(case.events().get_column("source_file").cast(str).str.ends_with("gcloud.json"))
    assert ev.get_column("path").to_list() == ["/r/0", "/r/1", "/r/2"]
    assert ev.get_column("source_line").to_list() == [1, 2, 3]  # the entry's ordinal in the document


def test_broken_document_keeps_the_entries_before_the_damage(ingest_files):
    text = json.dumps([_entry(), _entry()])[:-200]
    case = ingest_files({"cut.json": text})
    entry = case.entry("cut.json")
    assert entry["status"] == "partial" and entry["rows"] == 1 and "invalid JSON" in entry["error"]


def test_sniff():
    ing = GcpLoadBalancerIngestor()
    found = ing.sniff([json.dumps(_entry())], "x.json")
    assert found is not None and found.confidence >= 0.95 and found.params == {"mode": "lines"}
    cloud_run = dict(_entry(), resource={"type": "cloud_run_revision"}, jsonPayload=None)
    found = ing.sniff([json.dumps(cloud_run)], "x.json")
    assert found is not None and found.confidence < 0.7  # an httpRequest entry, not a load balancer
    found = ing.sniff(["[", "  {", '    "httpRequest": {', '      "requestUrl": "https://x/"'], "x.json")
    assert found is not None and found.params == {"mode": "document"}
    assert ing.sniff(['{"timestamp": "2023-01-05T17:20:12Z", "textPayload": "x"}'], "x.json") is None
