"""AWS Classic Load Balancer access logs: known values for every rule of forensics.ingest.elb."""

from __future__ import annotations

import json
from datetime import UTC, datetime

HTTP = (
    "2020-06-14T17:46:13.846261Z my-clb-1 170.01.01.02:43382 172.31.25.183:5000 0.000033 0.003499 0.000026 "
    '404 404 29 232 "POST http://3.130.59.54:80/boaform/admin/formLogin?x=1 HTTP/1.1" '
    '"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:71.0) Gecko/20100101 Firefox/71.0" - -'
)
TCP = (
    "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.001069 0.000028 0.000041 "
    '- - 82 305 "- - - " "-" - -'
)
SSL = (
    "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.001065 0.000015 0.000023 "
    '- - -1 -1 "- - - " "-" ECDHE-ECDSA-AES128-GCM-SHA256 TLSv1.2'
)
OLD = (  # before 2015: the line ends after the request (12 fields)
    "2015-04-10T08:11:09.865823Z us-west-1-production-media 49.150.87.133:55128 - -1 -1 -1 408 - 1294336 0 "
    '"PUT https://media.example.com:443/videos/F4_M-T4X0MM6Hvy1PFHesw HTTP/1.1"'
)


def test_http_line_has_known_values(ingest_files):
    case = ingest_files({"elb/my-clb-1.log": HTTP + "\n"})
    row = case.events().row(0, named=True)
    assert row["source_format"] == "elb_classic"
    assert row["ts"] == datetime(2020, 6, 14, 17, 46, 13, 846261, tzinfo=UTC)  # when the request was received
    assert row["observer"] == "my-clb-1"
    # leading zeros as written (an anonymised address): kept as text, never dropped
    assert (row["client_ip"], row["client_port"], row["peer_ip"]) == ("170.01.01.02", 43382, None)
    assert (row["method"], row["scheme"], row["host"]) == ("POST", "http", "3.130.59.54")
    assert (row["path"], row["query"], row["protocol"]) == ("/boaform/admin/formLogin", "x=1", "HTTP/1.1")
    assert (row["status"], row["bytes_in"], row["bytes_out"]) == (404, 29, 232)
    assert row["duration_ms"] == 3.558  # (0.000033 + 0.003499 + 0.000026) s
    assert row["user_agent"].startswith("Mozilla/5.0 (X11; Ubuntu")
    extra = json.loads(row["extra"])
    assert extra["backend"] == "172.31.25.183:5000" and extra["backend_status_code"] == "404"
    assert extra["port"] == 80 and extra["ssl_cipher"] is None and extra["listener"] is None
    entry = case.entry("my-clb-1.log")
    assert entry["format"] == "elb_classic" and entry["rows"] == 1 and entry["rejected"] == 0


def test_tcp_ssl_and_old_lines(ingest_files):
    ev = ingest_files({"elb.log": "\n".join([TCP, SSL, OLD])}).events()  # last line without newline
    tcp, ssl, old = ev.to_dicts()
    # a TCP/SSL listener line is a connection: byte counts, no request, no status
    assert tcp["request"] is None and tcp["method"] is None and tcp["status"] is None
    assert (tcp["bytes_in"], tcp["bytes_out"]) == (82, 305)
    assert json.loads(tcp["extra"])["listener"] == "tcp"
    assert (ssl["bytes_in"], ssl["bytes_out"]) == (None, None)  # -1: not recorded
    assert json.loads(ssl["extra"])["ssl_protocol"] == "TLSv1.2"
    assert old["duration_ms"] is None and old["status"] == 408 and old["user_agent"] is None
    assert (old["bytes_in"], old["bytes_out"], old["path"]) == (1294336, 0, "/videos/F4_M-T4X0MM6Hvy1PFHesw")
    assert json.loads(old["extra"])["backend"] is None


def test_rows_plus_rejects_equal_lines_and_malformed_lines_have_reasons(ingest_files):
    alb = HTTP.replace("2020-06-14T17:46:13.846261Z my-clb-1", "http 2020-06-14T17:46:13.846261Z app/x/1")
    truncated = HTTP[:180]
    short = "2020-06-14T17:46:13.846261Z my-clb-1 170.01.01.02:43382 - 0.1 0.1 0.1 200 200 1"
    lines = [HTTP, truncated, HTTP, short, alb, "", HTTP]
    case = ingest_files({"elb.log": "".join(ln + "\n" for ln in lines)})
    entry = case.entry("elb.log")
    assert (entry["lines_read"], entry["rows"], entry["rejected"]) == (7, 3, 4)
    assert case.reasons_by_line() == {
        2: "truncated line: a quoted field is never closed",
        4: "truncated line: fewer than 12 fields",
        5: "ALB access-log line, not Classic ELB",
        6: "blank line",
    }
