"""Azure Application Gateway access logs: known values for every rule of forensics.ingest.azure_appgw."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from forensics.ingest.azure_appgw import AzureAppGatewayIngestor

RESOURCE = (
    "/SUBSCRIPTIONS/23103928-B2CF-472A-8CDB-0146E2849129/RESOURCEGROUPS/PROD/PROVIDERS/"
    "MICROSOFT.NETWORK/APPLICATIONGATEWAYS/API-GW-PROD"
)


def _v2(**props: object) -> dict:
    """A v2 access record (the documented example's shape); properties replaced by name."""
    properties = {
        "instanceId": "appgw_2",
        "clientIP": "203.0.113.9",
        "clientPort": 45057,
        "httpMethod": "GET",
        "originalRequestUriWithArgs": "/api/v1/customers/1234?fields=name",
        "requestUri": "/api/v1/customers/1234",
        "requestQuery": "fields=name",
        "userAgent": "okhttp/4.9.3",
        "httpStatus": 200,
        "httpVersion": "HTTP/1.1",
        "receivedBytes": 512,
        "sentBytes": 1873,
        "clientResponseTime": 0,
        "timeTaken": 0.048,
        "WAFEvaluationTime": "0.000",
        "WAFMode": "Detection",
        "transactionId": "592d1649f75a8d480a3c4dc6a975309d",
        "sslEnabled": "on",
        "sslCipher": "ECDHE-RSA-AES256-GCM-SHA384",
        "sslProtocol": "TLSv1.2",
        "serverRouted": "10.1.0.3:443",
        "serverStatus": "200",
        "serverResponseLatency": "0.044",
        "upstreamSourcePort": "21564",
        "originalHost": "api.example.com",
        "host": "api.example.com",
        "error_info": "ERRORINFO_NO_ERROR",
    }
    properties.update(props)
    return {
        "timeStamp": "2023-01-05T17:20:12+00:00",
        "resourceId": RESOURCE,
        "listenerName": "https-listener",
        "ruleName": "api-rule",
        "backendPoolName": "crm-pool",
        "backendSettingName": "crm-https",
        "operationName": "ApplicationGatewayAccess",
        "category": "ApplicationGatewayAccessLog",
        "properties": properties,
    }


V1 = {
    "resourceId": RESOURCE,
    "operationName": "ApplicationGatewayAccess",
    "time": "2017-04-26T19:27:38Z",
    "category": "ApplicationGatewayAccessLog",
    "properties": {
        "instanceId": "ApplicationGatewayRole_IN_0",
        "clientIP": "191.96.249.97",
        "clientPort": 46886,
        "httpMethod": "GET",
        "requestUri": "/phpmyadmin/scripts/setup.php",
        "requestQuery": "X-AzureApplicationGateway-CACHE-HIT=0&SERVER-ROUTED=10.4.0.4&"
        "X-AzureApplicationGateway-LOG-ID=874f1f0f-6807-41c9-b7bc-f3cfa74aa0b1&SERVER-STATUS=404&lang=en",
        "userAgent": "-",
        "httpStatus": 404,
        "httpVersion": "HTTP/1.0",
        "receivedBytes": 65,
        "sentBytes": 553,
        "timeTaken": 205,
        "sslEnabled": "off",
        "host": "www.contoso.com",
        "originalHost": "www.contoso.com",
    },
}
FIREWALL = {
    "timeStamp": "2023-01-05T17:20:12+00:00",
    "resourceId": RESOURCE,
    "operationName": "ApplicationGatewayFirewall",
    "category": "ApplicationGatewayFirewallLog",
    "properties": {
        "instanceId": "appgw_2",
        "clientIp": "203.0.113.9",
        "clientPort": "",
        "requestUri": "/",
        "ruleSetType": "OWASP_CRS",
        "ruleSetVersion": "3.0.0",
        "ruleId": "920350",
        "message": "Host header is a numeric IP address",
        "action": "Matched",
        "details": {"message": "Warning.", "data": "20.110.30.194:80", "file": "rules/x.conf", "line": "791"},
        "hostname": "20.110.30.194:80",
        "transactionId": "592d1649f75a8d480a3c4dc6a975309d",
    },
}


def test_v2_record_has_known_values(ingest_files):
    case = ingest_files({"PT1H.json": json.dumps(_v2()) + "\n"})
    row = case.events().row(0, named=True)
    assert row["ts"] == datetime(2023, 1, 5, 17, 20, 12, tzinfo=UTC)
    assert (row["source_format"], row["observer"]) == ("azure_appgw", "API-GW-PROD")
    assert (row["client_ip"], row["client_port"], row["peer_ip"]) == ("203.0.113.9", 45057, None)
    assert (row["method"], row["host"], row["path"], row["query"], row["protocol"]) == (
        "GET",
        "api.example.com",
        "/api/v1/customers/1234",
        "fields=name",
        "HTTP/1.1",
    )
    assert (row["status"], row["bytes_in"], row["bytes_out"]) == (200, 512, 1873)
    assert row["duration_ms"] == 48.0  # v2 timeTaken is in seconds
    assert (row["user_agent"], row["request_id"]) == ("okhttp/4.9.3", "592d1649f75a8d480a3c4dc6a975309d")
    assert json.loads(row["extra"]) == {
        "sku": "v2",
        "time_taken": 0.048,
        "instance": "appgw_2",
        "listener": "https-listener",
        "rule": "api-rule",
        "backend_pool": "crm-pool",
        "server_routed": "10.1.0.3:443",
        "server_status": "200",
        "server_response_latency": 0.044,
        "error_info": "ERRORINFO_NO_ERROR",
        "waf_mode": "Detection",
        "ssl_enabled": "on",
        "ssl_protocol": "TLSv1.2",
    }


def test_v1_record_milliseconds_and_gateway_query_parameters(ingest_files):
    ev = ingest_files({"v1.json": json.dumps(V1) + "\n"}).events()
    row = ev.row(0, named=True)
    assert row["duration_ms"] == 205.0  # v1 timeTaken is in milliseconds
    # the gateway's own parameters leave the query; the client's stay
    assert (row["path"], row["query"], row["user_agent"]) == (
        "/phpmyadmin/scripts/setup.php",
        "lang=en",
        None,
    )
    extra = json.loads(row["extra"])
    assert (extra["sku"], extra["server_routed"], extra["server_status"]) == ("v1", "10.4.0.4", "404")
    assert extra["log_id"] == "874f1f0f-6807-41c9-b7bc-f3cfa74aa0b1"


def test_rewritten_uri_dash_numbers_firewall_records_and_rejects_add_up(ingest_files):
    rewritten = _v2(
        originalRequestUriWithArgs="/old/path?x=1", requestUri="/new/path", host="backend.internal"
    )
    dash = json.dumps(_v2()).replace('"clientPort": 45057', '"clientPort": -')
    lines = [
        json.dumps(rewritten),
        dash,
        json.dumps(FIREWALL),
        json.dumps({**_v2(), "category": "ApplicationGatewayPerformanceLog"}),
        json.dumps({"time": "2023-01-05T17:20:12Z", "category": "NetworkSecurityGroupEvent"}),
        json.dumps(_v2())[:120],
        "",
        json.dumps({**_v2(), "timeStamp": "not a time"}),
    ]
    case = ingest_files({"mixed.json": "\n".join(lines) + "\n"})
    entry = case.entry("mixed.json")
    assert (entry["format"], entry["variant"]) == ("azure_appgw", "lines")
    assert (entry["lines_read"], entry["rows"], entry["rejected"]) == (8, 2, 6)
    assert case.reasons_by_line() == {
        3: "Application Gateway firewall-log record (a WAF rule match), not a request",
        4: "Application Gateway performance-log record, not a request",
        5: "not an Application Gateway access-log record (category NetworkSecurityGroupEvent)",
        6: "invalid JSON",
        7: "blank line",
        8: "unparseable timestamp",
    }
    ev = case.events()
    first, second = ev.row(0, named=True), ev.row(1, named=True)
    assert (first["path"], first["query"], first["host"]) == ("/old/path", "x=1", "api.example.com")
    assert json.loads(first["extra"])["request_uri"] == "/new/path"
    assert json.loads(first["extra"])["backend_host"] == "backend.internal"
    assert (second["client_ip"], second["client_port"], second["status"]) == ("203.0.113.9", None, 200)


def test_records_documents_are_streamed_and_repaired(ingest_files):
    blob = json.dumps({"records": [_v2(), V1, FIREWALL]}, indent=2).replace(
        '"clientPort": 45057', '"clientPort": -'
    )
    two_blobs = json.dumps({"records": [_v2()]}) + "\n" + json.dumps({"records": [V1]}) + "\n"
    case = ingest_files({"blob.json": blob, "eventhub.json": two_blobs})
    blob_entry = case.entry("blob.json")
    assert (blob_entry["variant"], blob_entry["lines_read"], blob_entry["rows"], blob_entry["rejected"]) == (
        "document",
        3,
        2,
        1,
    )
    assert any("read as null" in n for n in blob_entry["notes"])
    hub = case.entry("eventhub.json")
    assert (hub["variant"], hub["lines_read"], hub["rows"]) == ("document", 2, 2)
    rej = case.rejects().row(0, named=True)
    assert rej["source_line"] == 3 and rej["reason"].startswith("Application Gateway firewall-log record")
    assert '"ruleId":"920350"' in rej["text"]  # the record stays reviewable in the rejects
    ev = case.events()
    blob_rows = ev.filter(ev.get_column("source_file").cast(str).str.ends_with("blob.json"))
    assert blob_rows.get_column("client_port").to_list() == [None, 46886]
    assert blob_rows.get_column("source_line").to_list() == [1, 2]


def test_sniff():
    ing = AzureAppGatewayIngestor()
    found = ing.sniff([json.dumps(_v2())], "PT1H.json")
    assert found is not None and found.confidence >= 0.95 and found.params == {"mode": "lines"}
    found = ing.sniff(["{", '"records":', "[", "{", '"operationName": "ApplicationGatewayAccess",'], "x.json")
    assert found is not None and found.params == {"mode": "document"}
    found = ing.sniff([json.dumps({"records": [_v2()]})], "x.json")
    assert found is not None and found.params == {"mode": "document"}
    assert ing.sniff(['{"time": "2023-01-05T17:20:12Z", "category": "Other"}'], "x.json") is None
