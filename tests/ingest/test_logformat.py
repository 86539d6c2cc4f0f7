"""--log-format: real-world nginx log_format and Apache LogFormat strings, compiled into the one parser."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from forensics.ingest.logformat import compile_format, dialect_of


def _row(ingest_files, fmt: str, line: str, **opts) -> dict:
    case = ingest_files({"custom/access.log": line + "\n"}, log_format=fmt, **opts)
    ev = case.events()
    assert ev.height == 1, case.rejects()
    return ev.row(0, named=True)


def test_dialect_is_told_apart_by_syntax():
    assert dialect_of('$remote_addr [$time_local] "$request"') == "nginx"
    assert dialect_of('%h %l %u %t "%r" %>s %b') == "apache"
    with pytest.raises(ValueError):
        dialect_of("no variables at all")


def test_config_lines_can_be_pasted_whole():
    nginx = compile_format(
        "log_format main '$remote_addr - $remote_user [$time_local] \"$request\" '\n"
        "                '$status $body_bytes_sent';"
    )
    assert nginx.field_names == [
        "remote_addr",
        "remote_user",
        "time_local",
        "request",
        "status",
        "body_bytes_sent",
    ]
    apache = compile_format('LogFormat "%h %l %u %t \\"%r\\" %>s %b" common')
    assert apache.dialect == "apache" and apache.field_names[-1] == "body_bytes_sent"


# 1. nginx blog "Using NGINX Logging for Application Performance Monitoring" (upstream timings).
NGINX_APM = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" '
    '"$http_user_agent" rt=$request_time uct="$upstream_connect_time" uht="$upstream_header_time" '
    'urt="$upstream_response_time"'
)


def test_nginx_upstream_timing_format(ingest_files):
    line = (
        '198.51.100.7 - - [05/Jan/2023:10:00:00 +0000] "GET /api/v1/customers/42 HTTP/1.1" 200 1234 "-" '
        '"okhttp/4.9" rt=0.250 uct="0.001" uht="0.200" urt="0.100, 0.050 : 0.048"'
    )
    row = _row(ingest_files, NGINX_APM, line)
    assert row["ts"] == datetime(2023, 1, 5, 10, 0, tzinfo=UTC)
    assert (row["client_ip"], row["path"], row["status"], row["bytes_out"]) == (
        "198.51.100.7",
        "/api/v1/customers/42",
        200,
        1234,
    )
    assert row["duration_ms"] == pytest.approx(250.0)
    extra = json.loads(row["extra"])
    assert extra["upstream_response_time"] == "0.100, 0.050 : 0.048"
    assert extra["upstream_response_ms"] == pytest.approx(198.0)
    assert extra["upstream_connect_time"] == "0.001"


# 2. A "timed_combined" format common for GoAccess users, with $time_iso8601, $host, $request_length.
NGINX_TIMED = (
    '$remote_addr - $remote_user [$time_iso8601] "$request" $status $bytes_sent "$http_referer" '
    '"$http_user_agent" $request_length $request_time $host "$http_x_forwarded_for" $pipe'
)


def test_nginx_iso_time_host_and_lengths(ingest_files):
    line = (
        '10.0.0.9 - bob [2023-01-05T02:00:00-08:00] "POST /api/v1/login HTTP/2.0" 302 512 "-" "curl/8" '
        '730 0.004 API.Example.com:443 "203.0.113.5" .'
    )
    row = _row(ingest_files, NGINX_TIMED, line)
    assert row["ts"] == datetime(2023, 1, 5, 10, 0, tzinfo=UTC)
    assert row["client_ip"] == "203.0.113.5" and row["peer_ip"] == "10.0.0.9"
    assert row["principal"] == "bob" and row["auth"] == "basic"
    assert (row["method"], row["protocol"], row["host"]) == ("POST", "HTTP/2.0", "api.example.com")
    assert (row["bytes_out"], row["bytes_in"]) == (512, 730)
    assert json.loads(row["extra"]) == {"pipe": "."}


# 3. nginx with $msec, $request_id and a request header and cookie.
NGINX_MSEC = (
    '$msec $remote_addr "$request_method $request_uri $server_protocol" $status $body_bytes_sent '
    '$request_id "$http_authorization" "$cookie_session"'
)


def test_nginx_msec_split_request_and_credentials(ingest_files):
    token = "tok-abcdefghijklmnop-0123"
    line = (
        f'1672912800.123 198.51.100.8 "GET /api/v1/customers/7?fields=all HTTP/1.1" 200 99 '
        f'7f3a0c "Bearer {token}" "sess-zzzzzzzzzz"'
    )
    case = ingest_files({"custom/access.log": line + "\n"}, log_format=NGINX_MSEC)
    row = case.events().row(0, named=True)
    assert row["ts"] == datetime(2023, 1, 5, 10, 0, 0, 123000, tzinfo=UTC)
    assert (row["path"], row["query"], row["request_id"]) == ("/api/v1/customers/7", "fields=all", "7f3a0c")
    assert row["auth"] == "bearer" and row["principal"].startswith("fp:")
    assert token not in json.dumps(case.events().to_dicts(), default=str)
    assert "sess-zzzzzzzzzz" not in (row["extra"] or "")


# 4. Apache combinedio (mod_logio): %I and %O.
APACHE_COMBINEDIO = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %I %O'


def test_apache_combinedio(ingest_files):
    line = (
        '203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
        '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)" 310 2587'
    )
    row = _row(ingest_files, APACHE_COMBINEDIO, line)
    assert row["ts"] == datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC)
    assert (row["bytes_out"], row["bytes_in"]) == (2326, 310)
    assert row["referer"] == "http://www.example.com/start.html"
    assert row["source_format"] == "apache"


# 5. Apache behind a proxy: the XFF header in place of %h, %D microseconds, %v virtual host.
APACHE_XFF = '%{X-Forwarded-For}i %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D %v'


def test_apache_xff_in_place_of_host_and_microseconds(ingest_files):
    line = (
        '6.6.6.6, 198.51.100.77 - - [05/Jan/2023:10:00:00 +0000] "GET /x HTTP/1.1" 404 - "-" "-" 1500 '
        "www.example.org"
    )
    fmt = APACHE_XFF
    case = ingest_files({"custom/access.log": line + "\n"}, log_format=fmt)
    row = case.events().row(0, named=True)
    # An unquoted X-Forwarded-For may hold a list ("a, b"): the compiled pattern allows it.
    assert row["client_ip"] == "198.51.100.77"
    assert row["duration_ms"] == pytest.approx(1.5)
    assert row["bytes_out"] is None  # %b writes "-" for an empty body
    assert row["host"] == "www.example.org"


# 6. Apache with a custom strftime time and no offset: --tz applies, with the DST rule.
APACHE_LOCALTIME = '%h [%{%Y-%m-%d %H:%M:%S}t] "%r" %>s %O %T'


def test_apache_local_time_with_tz_and_dst(ingest_files):
    lines = (
        '198.51.100.1 [2022-11-06 01:30:00] "GET /a HTTP/1.1" 200 10 0\n'  # ambiguous: EDT taken
        '198.51.100.1 [2022-03-13 02:30:00] "GET /b HTTP/1.1" 200 10 2\n'  # non-existent
    )
    case = ingest_files({"custom/access.log": lines}, log_format=APACHE_LOCALTIME, tz="America/New_York")
    ev = case.events()
    assert ev.get_column("ts").to_list() == [
        datetime(2022, 11, 6, 5, 30, tzinfo=UTC),  # 01:30 EDT, the first pass through the hour
        datetime(2022, 3, 13, 7, 30, tzinfo=UTC),  # 02:30 read with EST, the offset before the jump
    ]
    assert ev.get_column("duration_ms").to_list() == [0.0, 2000.0]
    entry = case.entry("custom/access.log")
    assert (entry["dst_ambiguous"], entry["dst_nonexistent"]) == (1, 1)
    assert "local times without offset read in America/New_York" in entry["notes"]


def test_unknown_variable_is_kept_as_text(ingest_files):
    fmt = '$remote_addr [$time_local] "$request" $status $my_custom_thing'
    row = _row(
        ingest_files, fmt, '198.51.100.2 [05/Jan/2023:10:00:00 +0000] "GET / HTTP/1.1" 200 hello-world'
    )
    assert json.loads(row["extra"]) == {"my_custom_thing": "hello-world"}


def test_dash_in_numeric_positions(ingest_files):
    fmt = (
        '$remote_addr [$time_local] "$request" $status $body_bytes_sent $request_time $upstream_response_time'
    )
    lines = (
        '198.51.100.3 [05/Jan/2023:10:00:00 +0000] "GET / HTTP/1.1" - - - -\n'
        '198.51.100.3 [05/Jan/2023:10:00:01 +0000] "GET / HTTP/1.1" 499 0 0.001 -\n'
    )
    ev = ingest_files({"custom/access.log": lines}, log_format=fmt).events()
    assert ev.get_column("status").to_list() == [None, 499]
    assert ev.get_column("bytes_out").to_list() == [None, 0]
    assert ev.get_column("duration_ms").to_list() == [None, 1.0]


def test_lines_not_in_the_format_are_rejects(ingest_files):
    fmt = '$remote_addr [$time_local] "$request" $status'
    lines = '198.51.100.3 [05/Jan/2023:10:00:00 +0000] "GET / HTTP/1.1" 200\nsomething else entirely\n'
    case = ingest_files({"custom/access.log": lines}, log_format=fmt)
    assert case.events().height == 1
    rej = case.rejects()
    assert rej.height == 1 and rej["reason"][0].startswith("does not match") and rej["source_line"][0] == 2


def test_npm_sample_ingests_with_its_preset_and_zero_rejects(shared_samples, ingest_files):
    data = (shared_samples / "nginx" / "crowdsec_nginx-proxy-manager-logs.log").read_bytes()
    case = ingest_files({"npm/proxy-host-1_access.log": data}, format="npm")
    entry = case.entry("proxy-host-1_access.log")
    assert entry["rejected"] == 0 and entry["rows"] == entry["lines_read"] == 14
    ev = case.events()
    # the failed basic-auth line of the error log is an event: the client and the request it refused
    err = ev.filter(ev["source_line"] == 5).row(0, named=True)
    assert (err["client_ip"], err["method"], err["path"], err["host"]) == (
        "1.2.3.4",
        "GET",
        "/",
        "openresty.local",
    )
    assert json.loads(err["extra"])["error_message"] == 'user "toto": password mismatch'


@pytest.mark.parametrize(
    "fmt",
    [
        '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" '
        '"$http_user_agent" "$http_x_forwarded_for" $request_time $upstream_response_time $host',
        '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"',
        '[$time_local] "$request_method $uri" "$args" $status',
    ],
)
def test_quote_segments_capture_what_the_whole_line_regex_captures(fmt):
    """The split-on-quotes fast path is an optimisation: per line, it must match exactly when the
    whole-line regex does and capture the same values; lines it cannot split go to that regex."""
    import polars as pl

    from forensics.ingest._clf import _extract, _extract_split

    compiled = compile_format(fmt)
    assert compiled.segments
    lines = [
        '1.2.3.4 - - [01/Feb/2023:00:00:00 +0000] "GET /a?b=1 HTTP/1.1" 200 5 "-" "curl/8" "9.9.9.9, 10.0.0.1" '
        "0.012 0.010, 0.002 : 0.001 api.example.com",
        '1.2.3.4 - "bob" [01/Feb/2023:00:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "c" "-" 0.1 - h',  # extra quotes
        '1.2.3.4 - - [01/Feb/2023:00:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "c" "-" 0.1 0.2 : 0.3 h',
        '1.2.3.4 - - [01/Feb/2023:00:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "c" "-" 0.1 0.2 h extra',
        '1.2.3.4 - - [01/Feb/2023:00:00:00 +0000] "" 400 0 "-" "-" "-" 0.000 - _',
        '1.2.3.4 - - [01/Feb/2023:00:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "c"',  # too few quotes
        '5.6.7.8 - frank [10/Oct/2000:13:55:36 -0700] "GET /x HTTP/1.0" 200 2326 "http://r/" "Mozilla/4.08"',
        '5.6.7.8 - - [10/Oct/2000:13:55:36 -0700] "GET /\\"q\\" HTTP/1.0" 200 2326 "-" "M \\"x\\""',  # \"
        '[01/Feb/2023:00:00:00 +0000] "POST /login" "user=a&x=1" 302',
        '[01/Feb/2023:00:00:00 +0000] "POST /login" "" 302',
        '[01/Feb/2023:00:00:00 +0000] "POST" "" 302',
        "",
        'garbage "with" "quotes" "in" it',
    ]
    frame = pl.DataFrame({"line": lines, "_idx": pl.int_range(0, len(lines), dtype=pl.UInt32, eager=True)})
    split, rest = _extract_split(frame, compiled)
    whole, _ = _extract(rest, compiled.regex, compiled.field_names)
    via_split = pl.concat([split, whole]).sort("_idx")
    direct, _ = _extract(frame, compiled.regex, compiled.field_names)
    assert via_split.height >= 2 and split.height >= 1  # each format parses some lines, by the split
    assert via_split.to_dicts() == direct.sort("_idx").to_dicts()


def test_seconds_become_milliseconds_without_float_noise():
    import polars as pl

    from forensics.ingest.logformat import _list_total_ms, _seconds_to_ms

    got = pl.select(
        _seconds_to_ms(pl.lit("1.005")).alias("a"), _list_total_ms(pl.lit("0.001, 0.002 : 0.003")).alias("b")
    ).row(0)
    assert got == (1005.0, 6.0)
