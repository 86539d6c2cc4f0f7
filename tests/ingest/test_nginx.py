"""nginx access logs: known values for every rule the foundation promises."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import polars as pl
import pytest

from forensics.ingest.driver import rotation_base

MAIN = (
    '10.0.0.5 - - [{t}] "GET /api/v1/customers/{i}?fields=name HTTP/1.1" 200 {b} "-" "okhttp/4.9.0" "{xff}"\n'
)


def ts(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_main_format_row_has_known_values(ingest_files):
    line = MAIN.format(t="05/Jan/2023:16:40:12 -0500", i=1234, b=512, xff="203.0.113.7")
    case = ingest_files({"gw/access.log": line})
    ev = case.events()
    assert ev.height == 1
    row = ev.row(0, named=True)
    assert row["ts"] == ts(2023, 1, 5, 21, 40, 12)
    assert row["client_ip"] == "203.0.113.7"
    assert row["peer_ip"] == "10.0.0.5"
    assert row["method"] == "GET"
    assert row["path"] == "/api/v1/customers/1234"
    assert row["query"] == "fields=name"
    assert row["protocol"] == "HTTP/1.1"
    assert row["endpoint"] == "/api/v1/customers/{id}"
    assert row["status"] == 200
    assert row["bytes_out"] == 512
    assert row["user_agent"] == "okhttp/4.9.0"
    assert row["referer"] is None
    assert row["source_format"] == "nginx"
    assert row["source_file"] == "evidence/gw/access.log"
    assert row["observer"] == "evidence/gw/access.log"
    assert row["source_line"] == 1
    entry = case.entry("gw/access.log")
    assert entry["variant"] == "main"
    assert entry["lines_read"] == 1 and entry["rows"] == 1 and entry["rejected"] == 0


def test_utc_across_dst_change_uses_each_lines_offset(ingest_files):
    # US Eastern: clocks go back at 02:00 EDT on 6 Nov 2022; the log writes 01:30 twice, offsets differ.
    lines = "".join(
        MAIN.format(t=t, i=i, b=1, xff="-")
        for i, t in enumerate(
            ["06/Nov/2022:01:30:00 -0400", "06/Nov/2022:01:10:00 -0500", "06/Nov/2022:01:30:00 -0500"]
        )
    )
    ev = ingest_files({"access.log": lines}).events()
    assert ev.get_column("ts").to_list() == [
        ts(2022, 11, 6, 5, 30),
        ts(2022, 11, 6, 6, 10),
        ts(2022, 11, 6, 6, 30),
    ]


def test_dash_is_null_and_numbers_parse(ingest_files):
    line = '198.51.100.1 - - [01/Feb/2023:00:00:00 +0000] "POST /login HTTP/1.1" 302 - "-" "-"\n'
    row = ingest_files({"access.log": line}).events().row(0, named=True)
    assert row["bytes_out"] is None
    assert row["user_agent"] is None and row["referer"] is None and row["principal"] is None
    assert row["status"] == 302


def test_x_forwarded_for_resolution(ingest_files):
    lines = "".join(
        [
            # behind the balancer: client is the XFF address
            MAIN.format(t="01/Feb/2023:00:00:01 +0000", i=1, b=1, xff="198.51.100.20"),
            # the client forged the left part; the balancer appended what it saw (right-most untrusted)
            MAIN.format(t="01/Feb/2023:00:00:02 +0000", i=2, b=1, xff="1.1.1.1, 198.51.100.21"),
            # an inner proxy hop (private) after the client
            MAIN.format(t="01/Feb/2023:00:00:03 +0000", i=3, b=1, xff="198.51.100.22, 10.1.2.3"),
            # IPv6 client
            MAIN.format(t="01/Feb/2023:00:00:04 +0000", i=4, b=1, xff="2001:db8::1"),
            # a public peer: its XFF is not believed
            '203.0.113.50 - - [01/Feb/2023:00:00:05 +0000] "GET / HTTP/1.1" 200 1 "-" "x" "9.9.9.9"\n',
            # IPv6 peer, private (ULA) → trusted proxy
            'fd00::1 - - [01/Feb/2023:00:00:06 +0000] "GET / HTTP/1.1" 200 1 "-" "x" "[2001:db8::2]:4711"\n',
        ]
    )
    ev = ingest_files({"access.log": lines}).events()
    assert ev.get_column("client_ip").to_list() == [
        "198.51.100.20",
        "198.51.100.21",
        "198.51.100.22",
        "2001:db8::1",
        "203.0.113.50",
        "2001:db8::2",
    ]
    assert ev.get_column("peer_ip").to_list() == [
        "10.0.0.5",
        "10.0.0.5",
        "10.0.0.5",
        "10.0.0.5",
        None,
        "fd00::1",
    ]


def test_trusted_proxy_option_extends_the_trust(ingest_files):
    line = '192.0.2.10 - - [01/Feb/2023:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "x" "198.51.100.9"\n'
    assert ingest_files({"a.log": line}, case="c1").events()["client_ip"][0] == "192.0.2.10"
    trusted = ingest_files({"a.log": line}, case="c2", trusted_proxies=("192.0.2.0/24",)).events()
    assert trusted["client_ip"][0] == "198.51.100.9"
    assert trusted["peer_ip"][0] == "192.0.2.10"


def test_hex_escapes_are_undone_when_text_and_kept_when_binary(ingest_files):
    lines = (
        '198.51.100.1 - - [01/Feb/2023:00:00:00 +0000] "GET /caf\\xC3\\xA9 HTTP/1.1" 200 5 "-" '
        '"Caf\\xC3\\xA9 \\x22quoted\\x22"\n'
        '198.51.100.1 - - [01/Feb/2023:00:00:01 +0000] "\\x16\\x03\\x01\\x00t\\x01" 400 157 "-" "-"\n'
    )
    ev = ingest_files({"access.log": lines}).events()
    assert ev["user_agent"][0] == 'Café "quoted"'
    assert ev["path"][0] == "/café"
    # A TLS handshake sent to the HTTP port: an event, raw request kept as logged, no method/path.
    assert ev["request"][1] == "\\x16\\x03\\x01\\x00t\\x01"
    assert ev["method"][1] is None and ev["path"][1] is None and ev["status"][1] == 400


def test_rotated_gzip_set_and_last_line_without_newline(ingest_files):
    a = MAIN.format(t="01/Feb/2023:00:00:00 +0000", i=1, b=1, xff="-")
    b = MAIN.format(t="02/Feb/2023:00:00:00 +0000", i=2, b=1, xff="-")
    c = MAIN.format(t="03/Feb/2023:00:00:00 +0000", i=3, b=1, xff="-").rstrip("\n")
    case = ingest_files({"gw/access.log.2.gz": a, "gw/access.log.1": b, "gw/access.log": c})
    ev = case.events()
    assert sorted(ev.get_column("path").to_list()) == [
        "/api/v1/customers/1",
        "/api/v1/customers/2",
        "/api/v1/customers/3",
    ]
    assert set(ev.get_column("observer").cast(pl.String)) == {"evidence/gw/access.log"}
    assert case.entry("access.log.2.gz")["compression"] == "gzip"
    # events are partitioned by UTC day
    days = sorted(p.parent.name for p in case.case.part_paths("events"))
    assert days == ["date=2023-02-01", "date=2023-02-02", "date=2023-02-03"]


def test_reingest_is_idempotent_and_a_compressed_copy_adds_nothing(ingest_files, tmp_path):
    from forensics import api

    text = "".join(MAIN.format(t=f"01/Feb/2023:00:00:0{i} +0000", i=i, b=1, xff="-") for i in range(5))
    case = ingest_files({"access.log.1": text})
    assert case.events().height == 5
    # the same evidence again
    api.ingest([str(tmp_path / "evidence")], case.case_dir, workers=1)
    assert case.events().height == 5
    # logrotate compressed the same content under a new name
    (tmp_path / "evidence" / "access.log.1.gz").write_bytes(gzip.compress(text.encode()))
    report = api.ingest([str(tmp_path / "evidence")], case.case_dir, workers=1)
    assert case.events().height == 5
    dup = case.entry("access.log.1.gz")
    assert dup["status"] == "duplicate" and dup["duplicate_of"] == "evidence/access.log.1"
    assert dup["rows"] == 0
    assert [f.status for f in report.files] == ["duplicate"]
    # new content is added to the existing case
    (tmp_path / "evidence" / "access.log").write_text(
        MAIN.format(t="02/Feb/2023:00:00:00 +0000", i=9, b=1, xff="-")
    )
    api.ingest([str(tmp_path / "evidence")], case.case_dir, workers=1)
    assert case.events().height == 6


def test_corrupt_gzip_keeps_what_was_readable_and_the_others(ingest_files):
    good = MAIN.format(t="01/Feb/2023:00:00:00 +0000", i=1, b=1, xff="-")
    big = "".join(MAIN.format(t="01/Feb/2023:00:00:00 +0000", i=i, b=1, xff="-") for i in range(20000))
    blob = gzip.compress(big.encode())
    case = ingest_files({"ok.log": good, "broken.log.gz": blob[: len(blob) // 2]})
    broken = case.entry("broken.log.gz")
    assert broken["status"] == "partial"
    assert "corrupt or truncated gzip" in broken["error"]
    assert broken["rows"] > 0 and broken["rows"] + broken["rejected"] == broken["lines_read"]
    assert case.entry("ok.log")["status"] == "ingested"
    assert case.events().filter(pl.col("source_file") == "evidence/ok.log").height == 1


def test_apache_escapes_and_vhost_prefix(ingest_files):
    lines = (
        'www.example.com:443 192.0.2.1 - alice [28/Feb/2013:12:00:00 +0900] "GET /a\\"b HTTP/1.1" 200 777 '
        '"ref \\\\ x" "agent \\"q\\""\n'
    )
    row = ingest_files({"apache2/access.log": lines}).events().row(0, named=True)
    assert row["source_format"] == "apache"
    assert row["host"] == "www.example.com"
    assert row["principal"] == "alice" and row["auth"] == "basic"
    assert row["path"] == '/a"b'
    assert row["referer"] == "ref \\ x"
    assert row["user_agent"] == 'agent "q"'
    assert row["ts"] == ts(2013, 2, 28, 3, 0, 0)


def test_escape_json_survives_raw_bytes_and_dash_numbers(ingest_files):
    lines = (
        b'{"time_local":"22/Apr/2024:17:56:07 +0000","remote_addr":"203.0.113.1","request":"GET /a HTTP/1.1",'
        b'"status":"200","body_bytes_sent":"12","upstream_response_time":-,"http_user_agent":"caf\xe9"}\n'
        b'{"time_local":"22/Apr/2024:17:56:08 +0000","remote_addr":"203.0.113.2","request":"GET /b HTTP/1.1",'
        b'"status":"404","body_bytes_sent":"0","upstream_response_time":"0.002","http_user_agent":"x"}\n'
        b'{"time_local":"22/Apr/2024:17:56:09 +0000", this is not json\n'
    )
    case = ingest_files({"json/access.log": lines})
    ev = case.events()
    assert ev.get_column("client_ip").to_list() == ["203.0.113.1", "203.0.113.2"]
    assert ev["user_agent"][0] == "caf\ufffd"
    assert ev["status"].to_list() == [200, 404]
    rej = case.rejects()
    assert rej.height == 1 and rej["reason"][0] == "invalid JSON" and rej["source_line"][0] == 3
    entry = case.entry("json/access.log")
    assert entry["format"] == "nginx_json" and entry["invalid_utf8_lines"] == 1


def test_rejects_have_reason_offset_and_sha(ingest_files):
    import hashlib

    good = MAIN.format(t="01/Feb/2023:00:00:00 +0000", i=1, b=1, xff="-")
    truncated = (
        '198.51.100.1 - - [01/Feb/2023:00:00:01 +0000] "GET /x HTTP/1.1" 200 1 "-" "Mozilla/5.0 (compat'
    )
    error = '2023/02/01 00:00:02 [error] 31#31: *46 open() failed, client: 1.2.3.4, request: "GET / HTTP/1.1"'
    text = good + truncated + "\n" + error + "\n" + good * 3
    case = ingest_files({"access.log": text})
    rej = case.rejects()
    assert rej.get_column("source_line").to_list() == [2, 3]
    assert rej["reason"][0].startswith("truncated line")
    assert rej["reason"][1].startswith("nginx error.log line")
    assert rej["byte_offset"][0] == len(good)
    assert rej["line_sha256"][0] == hashlib.sha256(truncated.encode()).hexdigest()
    assert rej["text"][1] == error


def test_every_compression_is_read_by_its_magic_bytes(ingest_files):
    import bz2
    import lzma

    import zstandard

    line = MAIN.format(t="01/Feb/2023:00:00:00 +0000", i=7, b=1, xff="-").encode()
    case = ingest_files(
        {
            "a.log.bz2": bz2.compress(line),
            "b.log.zst": zstandard.ZstdCompressor().compress(line.replace(b"/7?", b"/8?")),
            "c.log.xz": lzma.compress(line.replace(b"/7?", b"/9?")),
            "renamed-gzip.log": gzip.compress(line.replace(b"/7?", b"/6?")),
        }
    )
    entries = {e["path"].rsplit("/", 1)[-1]: e for e in case.manifest["inputs"]}
    assert {k: v["compression"] for k, v in entries.items()} == {
        "a.log.bz2": "bzip2",
        "b.log.zst": "zstd",
        "c.log.xz": "xz",
        "renamed-gzip.log": "gzip",
    }
    assert all(e["rows"] == 1 and e["content_bytes"] == len(line) for e in entries.values())
    assert sorted(case.events().get_column("path").to_list()) == [
        f"/api/v1/customers/{i}" for i in (6, 7, 8, 9)
    ]


def test_byte_order_mark_is_not_part_of_the_first_line(ingest_files):
    text = MAIN.format(t="01/Feb/2023:00:00:00 +0000", i=1, b=1, xff="-") * 2
    case = ingest_files({"bom.log": "\ufeff" + text, "bom.log.gz": "\ufeff" + text.replace("/1?", "/2?")})
    ev = case.events()
    assert set(ev.get_column("client_ip").to_list()) == {"10.0.0.5"}
    assert all(e["rows"] == 2 and e["rejected"] == 0 for e in case.manifest["inputs"])


def test_byte_order_mark_in_a_streamed_file(tmp_path):
    from forensics.ingest.reader import iter_line_chunks

    data = b"\xef\xbb\xbfabc\ndef\n"
    chunks = list(iter_line_chunks(iter([data[:5], data[5:]])))
    lines = [ln for c in chunks for ln in c.lines.to_list()]
    offsets = [int(o) for c in chunks for o in c.offsets]
    assert lines == ["abc", "def"] and offsets == [3, 7]


@pytest.mark.parametrize(
    ("path", "base"),
    [
        ("gw1/access.log", "gw1/access.log"),
        ("gw1/access.log.1", "gw1/access.log"),
        ("gw1/access.log.2.gz", "gw1/access.log"),
        ("gw1/access.log-20221125", "gw1/access.log"),
        ("gw1/access.log-2022112512.zst", "gw1/access.log"),
        ("logs/2022", "logs/2022"),  # a name of digits only is not a rotation number
        ("v1.2/api.log.xz", "v1.2/api.log"),
        (
            "AWSLogs/1/elasticloadbalancing/us-east-1/2022/11/25/1_elasticloadbalancing_us-east-1_app.api.50dc"
            "_20221125T0005Z_10.0.1.17_2et2e1mx.log.gz",
            "AWSLogs/1/elasticloadbalancing/us-east-1/2022/11/25/1_elasticloadbalancing_us-east-1_app.api.50dc"
            "_20221125T0005Z_10.0.1.17_2et2e1mx.log",
        ),
    ],
)
def test_rotation_base_names_the_logrotate_set(path: str, base: str) -> None:
    assert rotation_base(path) == base


def test_detection_never_runs_the_lenient_patterns_on_a_bracket_bomb(monkeypatch):
    """The lenient patterns' lazy prefix is quadratic in Python's regex engine on a line of brackets
    (a 200 kB line took 47 s): detection tries them on head lines up to LENIENT_SNIFF_MAX only."""
    from forensics.ingest import INGESTORS, _clf

    tried: list[int] = []
    match = _clf._match

    def spy(regex: str, line: str) -> bool:
        if regex in (_clf.LENIENT.regex, _clf.LENIENT_RAW.regex):
            tried.append(len(line))
        return match(regex, line)

    monkeypatch.setattr(_clf, "_match", spy)
    bomb = '{"time_local":"05/Jan/2023:16:40:12 +0000","ua":' + "[" * 100_000 + "]" * 100_000 + "}"
    short = '{"time_local":"05/Jan/2023:16:40:12 +0000","ua":' + "[" * 10 + "]" * 10 + "}"
    for ing in INGESTORS:
        ing.sniff([bomb, short], "access.log")
    assert tried and max(tried) <= _clf.LENIENT_SNIFF_MAX  # the short line was tried, the bomb never
