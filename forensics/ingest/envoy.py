"""Envoy access logs: the default text format, Istio's text format, and JSON (``json_format``).

Envoy's default format (Envoy docs, "Access logging", "Default format string")::

    [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
    %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%
    "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"

``START_TIME`` is UTC with milliseconds, durations are milliseconds, ``-`` is "no value". TCP proxy lines
write ``"- - -" 0``: they are events with no method, path or status (``extra.tcp``). Istio's default text
format inserts ``%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%"``
after the flags and appends ``%UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS%
%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%``; extra trailing fields are accepted
after either layout. JSON lines (``json_format``: Envoy Gateway's keys ``start_time``, ``method``,
``x-envoy-origin-path``, ``response_code``, ``downstream_remote_address``, ``x-forwarded-for``, ``:authority``…,
or Istio's ``path``, ``authority``, ``request_id``, ``user_agent``…) are read by key (:data:`JSON_KEYS`).
Lines may carry a container-runtime prefix (``2025-01-01T00:00:00.000000000Z stdout F ``) or Ambassador's
``ACCESS ``; both are stripped. The runtime's own time is not the request's and is not used.

Client policy. The default format has no peer address: the client comes from X-Forwarded-For alone,
handed to :mod:`forensics.clients` as a chain without a peer (a single address is the client; in a list,
the right-most address that is not a trusted proxy). Where the peer is logged
(``%DOWNSTREAM_REMOTE_ADDRESS%`` in Istio's format, ``downstream_remote_address`` in JSON) it is the peer
and X-Forwarded-For is trusted only behind it, as for nginx.

Other mapping: ``status`` = response code; ``bytes_in`` = bytes received (request body), ``bytes_out`` =
bytes sent (response body); ``duration_ms`` = duration; ``host`` = ``:authority``; ``request_id`` =
``x-request-id``; ``extra``: response flags and code details, upstream service time, upstream host and
cluster, route name, SNI, downstream local address, ``tcp``.
"""

from __future__ import annotations

import re

import polars as pl

from . import _records as R
from ._time import parse_iso_time
from .base import (
    Detection,
    FileContext,
    Ingestor,
    detect_by_line_kind,
    empty_reject_rows,
    reject_frame,
    sniff_lines,
)

_Q = r'"([^"]*)"'
#: The head every text layout shares: [START_TIME] "request" RESPONSE_CODE RESPONSE_FLAGS.
_HEAD = (
    r"^\[(?P<start>[^\]]+)\]"  # %START_TIME%
    r' "(?P<request>[^"]*)"'  # "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
    r" (?P<code>\d+|-)"  # %RESPONSE_CODE%
    r" (?P<flags>\S+)"  # %RESPONSE_FLAGS%
)
_COUNTS = (
    r" (?P<rx>\d+|-)"  # %BYTES_RECEIVED%
    r" (?P<tx>\d+|-)"  # %BYTES_SENT%
    r" (?P<duration>\d+|-)"  # %DURATION%
    r" (?P<ust>\S+)"  # %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%
    rf" {_Q.replace('(', '(?P<xff>', 1)}"  # "%REQ(X-FORWARDED-FOR)%"
    rf" {_Q.replace('(', '(?P<ua>', 1)}"  # "%REQ(USER-AGENT)%"
    rf" {_Q.replace('(', '(?P<rid>', 1)}"  # "%REQ(X-REQUEST-ID)%"
    rf" {_Q.replace('(', '(?P<authority>', 1)}"  # "%REQ(:AUTHORITY)%"
    rf" {_Q.replace('(', '(?P<upstream>', 1)}"  # "%UPSTREAM_HOST%"
)
#: Envoy's default format (extra trailing fields allowed).
DEFAULT_RE = _HEAD + _COUNTS + r"(?: .*)?$"
#: Istio's default text format (extra trailing fields allowed).
ISTIO_RE = (
    _HEAD
    + r" (?P<details>\S+)"  # %RESPONSE_CODE_DETAILS%
    + r" (?P<termination>\S+)"  # %CONNECTION_TERMINATION_DETAILS%
    + r' "(?P<failure>[^"]*)"'  # "%UPSTREAM_TRANSPORT_FAILURE_REASON%"
    + _COUNTS
    + r" (?P<cluster>\S+)"  # %UPSTREAM_CLUSTER%
    + r" (?P<ulocal>\S+)"  # %UPSTREAM_LOCAL_ADDRESS%
    + r" (?P<dlocal>\S+)"  # %DOWNSTREAM_LOCAL_ADDRESS%
    + r" (?P<dremote>\S+)"  # %DOWNSTREAM_REMOTE_ADDRESS% (the peer)
    + r" (?P<sni>\S+)"  # %REQUESTED_SERVER_NAME%
    + r" (?P<route>\S+)"  # %ROUTE_NAME%
    + r"(?: .*)?$"
)
_TEXT_RES = (re.compile(ISTIO_RE), re.compile(DEFAULT_RE))
_AMBASSADOR = r"^ACCESS "

#: Canonical field → the JSON keys that may hold it (Envoy Gateway, Istio, common hand-written formats).
JSON_KEYS: dict[str, tuple[str, ...]] = {
    "start": ("start_time", "startTime", "timestamp", "@timestamp", "time"),
    "method": ("method", ":method", "request_method"),
    "path": ("x-envoy-origin-path", "x-envoy-original-path", "path", ":path", "request_path", "uri"),
    "protocol": ("protocol",),
    "code": ("response_code", "status", "status_code"),
    "flags": ("response_flags",),
    "details": ("response_code_details",),
    "rx": ("bytes_received",),
    "tx": ("bytes_sent",),
    "duration": ("duration",),
    "ust": ("x-envoy-upstream-service-time", "upstream_service_time"),
    "xff": ("x-forwarded-for", "x_forwarded_for", "forwarded_for"),
    "ua": ("user-agent", "user_agent"),
    "rid": ("x-request-id", "request_id", "x_request_id"),
    "authority": (":authority", "authority", "host"),
    "upstream": ("upstream_host",),
    "cluster": ("upstream_cluster",),
    "dremote": ("downstream_remote_address",),
    "dlocal": ("downstream_local_address",),
    "route": ("route_name",),
    "sni": ("requested_server_name",),
    "authorization": ("authorization",),
    "cookie": ("cookie",),
    "api_key": ("x-api-key", "apikey"),
}
JSON_DTYPE = pl.Struct({k: pl.String for keys in JSON_KEYS.values() for k in keys})


def _json_field(canon: str) -> pl.Expr:
    return pl.coalesce([R.text(R.field(k)) for k in JSON_KEYS[canon]])


def _text_events(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    outs = []
    rest = frame
    for rx in _TEXT_RES:
        if rest.height == 0:
            break
        names = list(rx.groupindex)
        groups = rest.select(pl.col("line").str.extract_groups(rx.pattern).struct.rename_fields(names))
        rows = rest.hstack(groups.unnest("line"))
        outs.append(rows.filter(pl.col("start").is_not_null()))
        rest = rest.filter(rows.get_column("start").is_null())
    rejects = [reject_frame(rest, "does not match an Envoy access-log format")] if rest.height else []
    rows = pl.concat(outs, how="diagonal_relaxed")
    for c in ("details", "termination", "failure", "cluster", "ulocal", "dlocal", "dremote", "sni", "route"):
        if c not in rows.columns:
            rows = rows.with_columns(pl.lit(None, pl.String).alias(c))
    rows = rows.with_columns(R.text(pl.col("dremote")).alias("_dremote"))
    events = _events(rows, {c: R.text(pl.col(c)) for c in _CANON})
    return events, pl.concat(rejects) if rejects else empty_reject_rows()


#: The canonical fields every layout yields (null where a layout has none).
_CANON = (
    "start",
    "request",
    "code",
    "flags",
    "details",
    "rx",
    "tx",
    "duration",
    "ust",
    "xff",
    "ua",
    "rid",
    "authority",
    "upstream",
    "cluster",
    "dlocal",
    "route",
    "sni",
)


def _json_events(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    decoded, bad = R.decode_objects(frame, JSON_DTYPE)
    rejects = [bad] if bad.height else []
    own = _json_field("start").is_not_null() & (
        _json_field("code").is_not_null() | _json_field("method").is_not_null()
    )
    decoded = decoded.with_columns(own.fill_null(False).alias("_own"))
    other = decoded.filter(~pl.col("_own"))
    if other.height:
        reason = "JSON object without Envoy access-log keys (start_time, response_code)"
        rejects.append(reject_frame(other, reason))
    rows = decoded.filter(pl.col("_own")).with_columns(_json_field("dremote").alias("_dremote"))
    fields = {c: _json_field(c) for c in _CANON if c in JSON_KEYS}
    fields |= {
        c: _json_field(c) for c in ("method", "path", "protocol", "authorization", "cookie", "api_key")
    }
    rejects_all = pl.concat(rejects, how="vertical_relaxed") if rejects else empty_reject_rows()
    return _events(rows, fields), rejects_all


def _events(rows: pl.DataFrame, f: dict[str, pl.Expr]) -> pl.DataFrame:
    """Canonical field expressions → intermediate event columns (shared by the text and JSON layouts).

    A text line has the request line (``request``: split by finalize); a JSON line has ``method``,
    ``path`` and ``protocol`` apart. ``"- - -"`` (or no method and no path) is a TCP connection.
    """
    rows = R.split_address(rows, "_dremote", "_peer", "_peer_port")
    none = pl.lit(None, pl.String)
    if "request" in f:
        tcp = (f["request"] == "- - -").fill_null(False)
        request = [pl.when(~tcp).then(f["request"]).alias("request_line")]
    else:
        tcp = (f["method"].is_null() & f["path"].is_null()).fill_null(False)
        request = [f["method"].alias("method"), f["path"].alias("target"), f["protocol"].alias("protocol")]
    xff = f["xff"]
    extra = R.json_object(
        {
            "response_flags": f["flags"],
            "response_code_details": f.get("details", none),
            "upstream_service_time_ms": f["ust"].cast(pl.Float64, strict=False),
            "upstream_host": f["upstream"],
            "upstream_cluster": f.get("cluster", none),
            "route": f.get("route", none),
            "sni": f.get("sni", none),
            "downstream_local_address": f.get("dlocal", none),
            "tcp": pl.when(tcp).then(pl.lit(True)),
        }
    )
    code = f["code"].cast(pl.Int16, strict=False)
    creds = [f[c].alias(c) for c in ("authorization", "cookie", "api_key") if c in f]
    return rows.select(
        *[c for c in ("source_line", "source_file", "_file_observer", "_idx") if c in rows.columns],
        parse_iso_time(f["start"]).alias("ts"),
        # A row without a peer address (Envoy's default format) is resolved from its chain alone.
        pl.col("_peer").alias("remote_addr"),
        xff.alias("xff"),
        pl.when(xff.is_null() | (xff == pl.col("_peer"))).then(pl.col("_peer_port")).alias("client_port"),
        pl.col("_peer_port").alias("_peer_port"),  # the client's port when the chain is not believed
        *request,
        pl.when(~tcp | (code != 0)).then(code).alias("status"),
        R.number(f["rx"]).alias("bytes_in"),
        R.number(f["tx"]).alias("bytes_out"),
        f["duration"].cast(pl.Float64, strict=False).alias("duration_ms"),
        f["ua"].alias("user_agent"),
        f["rid"].alias("request_id"),
        f["authority"].alias("host"),
        *creds,
        extra.alias("extra"),
    )


def parse_envoy(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines (``line``, ``source_line``, ``_idx``…) → (intermediate event columns, reject rows)."""
    frame = R.strip_container_prefix(frame)
    frame = frame.with_columns(pl.col("line").str.replace(_AMBASSADOR, ""))
    frame, rejects = R.drop_blank(frame)
    first = pl.col("line").str.strip_chars_start().str.slice(0, 1)
    parts = []
    for part, parser in (
        (frame.filter(first == "{"), _json_events),
        (frame.filter(first == "["), _text_events),
    ):
        if part.height:
            ev, rej = parser(part)
            parts.append(ev)
            if rej.height:
                rejects.append(rej)
    other = frame.filter(~first.is_in(["{", "["]))
    if other.height:
        rejects.append(reject_frame(other, "not an Envoy access-log line"))
    events = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()
    if events.height:
        bad_ts = events.filter(pl.col("ts").is_null())
        if bad_ts.height:
            rejects.append(reject_frame(bad_ts, "unparseable timestamp"))
            events = events.filter(pl.col("ts").is_not_null())
    rej = pl.concat(rejects, how="vertical_relaxed") if rejects else empty_reject_rows()
    return events.drop("_idx", strict=False), rej


def _kind(line: str) -> str | None:
    """ "text", "istio", "json" (an Envoy access-log line) or None, for one head line."""
    line = re.sub(_AMBASSADOR, "", R.strip_prefix_text(line).strip())
    if line.startswith("["):
        if _TEXT_RES[0].match(line):
            return "istio"
        return "text" if _TEXT_RES[1].match(line) else None
    obj = R.head_object(line)
    if obj is None:
        return None
    keys = set(obj)
    has_start = bool(keys & set(JSON_KEYS["start"][:2]))
    envoyish = keys & {
        "response_flags",
        "x-envoy-origin-path",
        "upstream_cluster",
        "downstream_remote_address",
    }
    return "json" if has_start and "response_code" in keys and envoyish else None


class EnvoyIngestor(Ingestor):
    name = "envoy"
    description = "Envoy access logs: default text format, Istio's text format, JSON (Envoy Gateway, Istio)"
    recognised_by = (
        '[START_TIME] "request" code flags … lines (default or Istio layout), or JSON lines with '
        "start_time, response_code and Envoy keys; container-runtime and Ambassador prefixes allowed"
    )
    invalid_utf8 = "replace"

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        body = sniff_lines(lines)[:100]
        head = "\n".join(body)
        if "start_time" not in head and '] "' not in head:  # cheap literal check
            return None
        return detect_by_line_kind(self.name, body, _kind, "Envoy access-log lines")

    def parse(self, frame: pl.DataFrame, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
        return parse_envoy(frame)


__all__ = ["DEFAULT_RE", "ISTIO_RE", "JSON_KEYS", "EnvoyIngestor", "parse_envoy"]
