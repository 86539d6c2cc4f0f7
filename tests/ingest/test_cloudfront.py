"""AWS CloudFront standard logs: known values for every rule of forensics.ingest.cloudfront."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from forensics.ingest.cloudfront import FIELDS

VERSION = "#Version: 1.0"
HEADER = "#Fields: " + " ".join(FIELDS)
NAME = "cf/E2K2LNL5N3WR51.2023-01-05-16.a1b2c3d4.gz"


def row(**over: str) -> str:
    """A 33-field line; fields replaced by their W3C name."""
    values = {
        "date": "2023-01-05",
        "time": "16:40:12",
        "x-edge-location": "LAX50-C1",
        "sc-bytes": "1873",
        "c-ip": "198.51.100.23",
        "cs-method": "GET",
        "cs(Host)": "d111111abcdef8.cloudfront.net",
        "cs-uri-stem": "/api/v1/customers/1234",
        "sc-status": "200",
        "cs(Referer)": "-",
        "cs(User-Agent)": "Mozilla/5.0%20(X11;%20Linux%20x86_64)%20Firefox/108.0",
        "cs-uri-query": "fields=name,email",
        "cs(Cookie)": "-",
        "x-edge-result-type": "Miss",
        "x-edge-request-id": "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
        "x-host-header": "api.example.com",
        "cs-protocol": "https",
        "cs-bytes": "512",
        "time-taken": "0.045",
        "x-forwarded-for": "-",
        "ssl-protocol": "TLSv1.3",
        "ssl-cipher": "TLS_AES_128_GCM_SHA256",
        "x-edge-response-result-type": "Miss",
        "cs-protocol-version": "HTTP/2.0",
        "fle-status": "-",
        "fle-encrypted-fields": "-",
        "c-port": "51234",
        "time-to-first-byte": "0.040",
        "x-edge-detailed-result-type": "Miss",
        "sc-content-type": "application/json;%20charset=utf-8",
        "sc-content-len": "1500",
        "sc-range-start": "-",
        "sc-range-end": "-",
    }
    values.update(over)
    return "\t".join(values.values())


def lines(*items: str) -> str:
    return "".join(i + "\n" for i in items)


def test_full_row_has_known_values(ingest_files):
    case = ingest_files({NAME: lines(VERSION, HEADER, row())})
    ev = case.events()
    assert ev.height == 1
    r = ev.row(0, named=True)
    assert r["source_format"] == "cloudfront" and r["source_line"] == 3
    assert r["ts"] == datetime(2023, 1, 5, 16, 40, 12, tzinfo=UTC)
    assert r["observer"] == "E2K2LNL5N3WR51"  # the distribution, from the file name
    assert (r["client_ip"], r["client_port"], r["peer_ip"]) == ("198.51.100.23", 51234, None)
    assert (r["method"], r["scheme"], r["host"]) == ("GET", "https", "api.example.com")
    assert (r["path"], r["query"], r["protocol"]) == (
        "/api/v1/customers/1234",
        "fields=name,email",
        "HTTP/2.0",
    )
    assert r["endpoint"] == "/api/v1/customers/{id}"
    assert (r["status"], r["bytes_out"], r["bytes_in"], r["duration_ms"]) == (200, 1873, 512, 45.0)
    assert r["user_agent"] == "Mozilla/5.0 (X11; Linux x86_64) Firefox/108.0"  # CloudFront's %20 removed
    assert r["referer"] is None and r["principal"] is None
    assert r["request_id"] == "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ=="
    extra = json.loads(r["extra"])
    assert extra["x-edge-location"] == "LAX50-C1" and extra["cs(Host)"] == "d111111abcdef8.cloudfront.net"
    assert (
        extra["sc-content-type"] == "application/json; charset=utf-8"
        and extra["time-to-first-byte"] == "0.040"
    )
    rej = case.rejects()  # the two header lines: counted, each with its reason
    assert rej.get_column("source_line").to_list() == [1, 2]
    assert set(rej.get_column("reason")) == {"W3C header line (#Version/#Fields), not a request"}
    entry = case.entry("E2K2LNL5N3WR51.2023-01-05-16.a1b2c3d4.gz")
    assert entry["rows"] + entry["rejected"] == entry["lines_read"] == 3


def test_encoding_layer_removed_once_status_000_and_cookie_fingerprinted(ingest_files):
    items = [
        row(**{"cs-uri-stem": "/files/a%2520b.pdf", "cs-uri-query": "q=caf%25C3%25A9&x=1"}),
        row(**{"cs(User-Agent)": "Mozilla/5.0%2520(Windows%2520NT%25206.1)"}),  # logged twice-encoded
        row(**{"sc-status": "000", "sc-bytes": "0", "time-taken": "0.001"}),
        row(**{"cs(Cookie)": "session=abc123;%20theme=dark", "cs(Referer)": "https://example.com/a%20b"}),
        row(**{"cs(User-Agent)": "curl%5Cx41"}),  # the client sent a literal backslash
        row(**{"cs(User-Agent)": "caf%C3%A9%20bot"}),
    ]
    ev = ingest_files({NAME: lines(VERSION, HEADER, *items)}).events()
    r = ev.to_dicts()
    assert r[0]["path"] == "/files/a%20b.pdf" and r[0]["query"] == "q=caf%C3%A9&x=1"
    assert r[1]["user_agent"] == "Mozilla/5.0%20(Windows%20NT%206.1)"
    assert r[2]["status"] == 0 and r[2]["bytes_out"] == 0  # 000: the viewer left before a response
    assert r[3]["referer"] == "https://example.com/a b"
    assert r[3]["auth"] == "cookie" and r[3]["principal"].startswith("fp:")
    assert "abc123" not in json.dumps(r[3], default=str)
    assert r[4]["user_agent"] == "curl\\x41"  # exactly what was sent, not unescaped a second time
    assert r[5]["user_agent"] == "café bot"


def test_headers_per_file_repeated_mid_file_older_layouts_and_no_header(ingest_files):
    old_fields = FIELDS[:23]  # a pre-2019 file: 23 fields
    old_header = "#Fields: " + " ".join(old_fields)
    old_row = "\t".join(row(**{"c-ip": "203.0.113.5"}).split("\t")[:23])
    # a custom order: a header declares it, and the columns follow the header
    custom = ("date", "time", "c-ip", "cs-method", "cs-uri-stem", "sc-status", "x-edge-location", "c-country")
    custom_row = "\t".join(
        ["2023-01-05", "16:41:00", "192.0.2.9", "DELETE", "/api/v1/x", "204", "FRA56-P1", "DE"]
    )
    concatenated = lines(
        VERSION, old_header, old_row, VERSION, HEADER, row(), "#Fields: " + " ".join(custom), custom_row
    )
    headerless = lines(row(**{"c-ip": "192.0.2.77"}), row(**{"time": "16:39:00"}))  # rows not in time order
    case = ingest_files({NAME: concatenated, "cf/copy-without-header.log": headerless})
    ev = case.events()
    by = {(r["source_file"].rsplit("/", 1)[-1], r["source_line"]): r for r in ev.iter_rows(named=True)}
    cat = "E2K2LNL5N3WR51.2023-01-05-16.a1b2c3d4.gz"
    assert (
        by[(cat, 3)]["client_ip"] == "203.0.113.5" and by[(cat, 3)]["client_port"] is None
    )  # no c-port then
    assert by[(cat, 6)]["client_port"] == 51234 and by[(cat, 6)]["protocol"] == "HTTP/2.0"
    c = by[(cat, 8)]
    assert (c["method"], c["path"], c["status"], c["client_ip"]) == ("DELETE", "/api/v1/x", 204, "192.0.2.9")
    assert json.loads(c["extra"]) == {"x-edge-location": "FRA56-P1", "c-country": "DE"}
    h1, h2 = by[("copy-without-header.log", 1)], by[("copy-without-header.log", 2)]
    assert h1["client_ip"] == "192.0.2.77" and h1["user_agent"].startswith("Mozilla/5.0 (X11")
    assert h2["ts"] == datetime(2023, 1, 5, 16, 39, tzinfo=UTC)
    # no distribution in the file name: the distribution's own cloudfront.net name
    assert h1["observer"] == "d111111abcdef8.cloudfront.net"


def test_client_is_c_ip_and_x_forwarded_for_only_behind_a_trusted_proxy(ingest_files):
    items = [
        row(**{"x-forwarded-for": "192.0.2.200"}),  # public c-ip: the viewer; its XFF claim is not believed
        row(**{"c-ip": "203.0.113.50", "x-forwarded-for": "198.51.100.99,%20192.0.2.1"}),
    ]
    plain = ingest_files({NAME: lines(VERSION, HEADER, *items)}, case="c1").events()
    assert plain.get_column("client_ip").to_list() == ["198.51.100.23", "203.0.113.50"]
    # the user says 203.0.113.0/24 is their own egress proxy: the right-most untrusted XFF entry
    trusted = ingest_files(
        {NAME: lines(VERSION, HEADER, *items)}, case="c2", trusted_proxies=("203.0.113.0/24",)
    )
    ev = trusted.events()
    assert ev.get_column("client_ip").to_list() == ["198.51.100.23", "192.0.2.1"]
    assert ev.get_column("peer_ip").to_list() == [None, "203.0.113.50"]


def test_malformed_lines_are_rejects_with_reasons(ingest_files):
    short = "2023-01-05\t16:40:12\tLAX50-C1\t100\t198.51.100.23"
    bad_date = row(date="2023-02-30")
    text = lines(VERSION, HEADER, row(), short, bad_date, "", row())
    case = ingest_files({NAME: text})
    entry = case.entry("E2K2LNL5N3WR51.2023-01-05-16.a1b2c3d4.gz")
    assert (entry["lines_read"], entry["rows"], entry["rejected"]) == (7, 2, 5)
    reasons = case.reasons_by_line()
    assert reasons[4] == "does not match the CloudFront standard-log layout (date, time, c-ip, cs-method)"
    assert reasons[5] == "does not match the CloudFront standard-log layout (date, time, c-ip, cs-method)"
    assert reasons[6] == "blank line"
