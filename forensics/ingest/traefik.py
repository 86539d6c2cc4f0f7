"""Traefik access logs (v1, v2, v3): the Traefik common log format and JSON.

Traefik's own CLF (``accessLog.format = common``, the default) is CLF with Traefik's fields appended::

    <ClientHost> - <ClientUsername> [<StartUTC>] "<RequestMethod> <RequestPath> <RequestProtocol>"
    <status> <size> "<Referer>" "<User-Agent>" <RequestCount> "<RouterName>" "<ServiceURL>" <Duration>ms

``status``/``size`` are ``-`` when there was no response (v1 and v2 write the origin's, v3 the
downstream's), the router is a chain for nested routers (``root@file -> leaf@file``), and the
trailing ``<n>ms`` with the quoted router and server is what tells these lines from an nginx or Apache
combined line (which :mod:`.nginx` and :mod:`.apache` also accept leniently, with less confidence).

JSON (``format = json``) has one object per request with ``StartUTC``, ``Duration`` (nanoseconds),
``ClientAddr``, ``ClientHost``, ``ClientPort``, ``ClientUsername``, ``RequestMethod``, ``RequestPath``,
``RequestProtocol``, ``RequestHost``, ``RequestScheme``, ``DownstreamStatus``, ``DownstreamContentSize``,
``RequestContentSize``, ``OriginStatus``, … and, for v2/v3, ``RouterName``/``ServiceName``/``ServiceAddr``
(v1: ``FrontendName``/``BackendName``/``BackendAddr``). Kept headers appear as ``request_<Name>``.
Traefik's other log lines in the stream (plugin output, its own JSON log) are rejected with a reason.

Client policy (Traefik's ``accesslog`` middleware): ``ClientAddr`` is the peer (``ip:port``), and
``ClientHost`` is the peer's address *unless the request had an X-Forwarded-For header*, which then
replaces it as sent (possibly a list such as ``192.168.1.100,10.0.0.50``). So in JSON the peer is
``ClientAddr`` and ``ClientHost`` (when it differs) is X-Forwarded-For, resolved by this project's policy
(:mod:`forensics.clients`: behind a trusted peer, the right-most untrusted address). The CLF line has only
``ClientHost``: it is read as an X-Forwarded-For chain without a peer (a single address is the client).

Other mapping: ``ts`` = ``StartUTC`` (CLF: its formatted value, with offset); ``status`` =
``DownstreamStatus`` (what the client got); ``bytes_out`` = ``DownstreamContentSize``; ``bytes_in`` =
``RequestContentSize``; ``duration_ms`` = ``Duration`` / 10⁶ (CLF: the ``<n>ms`` field, whole ms);
``principal`` = ``ClientUsername``; credentials in kept headers (``request_Authorization``,
``request_Cookie``, ``request_X-Api-Key``) become fingerprints unless Traefik redacted them;
``request_id`` = ``request_X-Request-Id``; ``extra``: router, service, service address or URL,
entry point, origin status, retries, request count, TLS version.
"""

from __future__ import annotations

import re

import polars as pl

from . import _records as R
from ._time import parse_clf_time, parse_iso_time
from .base import (
    Detection,
    FileContext,
    Ingestor,
    detect_by_line_kind,
    empty_reject_rows,
    reject_frame,
    sniff_lines,
)

_QUOTED = r'"(?:[^"\\]|\\.)*"'
#: Traefik's common log format, one named fragment per field.
CLF_RE = (
    r"^(?P<client>.+?)"  # ClientHost: the peer's address, or the X-Forwarded-For header as sent
    r" - (?P<user>\S+)"  # ClientUsername (URL user info, or a JWT subject) or -
    r" \[(?P<time>[^\]]+)\]"  # StartUTC as 02/Jan/2006:15:04:05 -0700
    r' "(?P<request>[^"]*)"'  # RequestMethod RequestPath RequestProtocol
    r" (?P<status>\d+|-)"  # OriginStatus (v1, v2) / DownstreamStatus (v3), - when none
    r" (?P<size>\d+|-)"  # OriginContentSize / DownstreamContentSize
    rf" (?P<referer>{_QUOTED}|-)"  # request_Referer
    rf" (?P<ua>{_QUOTED}|-)"  # request_User-Agent
    r" (?P<count>\d+|-)"  # RequestCount since Traefik started
    rf" (?P<router>{_QUOTED}|-)"  # RouterName (v1: FrontendName); a chain "a -> b" for nested routers
    rf" (?P<server>{_QUOTED}|-)"  # ServiceURL (v1: BackendURL)
    r" (?P<duration>\d+)ms\s*$"  # Duration in whole milliseconds
)
_CLF = re.compile(CLF_RE)

_HEADERS = (
    "request_User-Agent",
    "request_Referer",
    "request_Authorization",
    "request_Cookie",
    "request_X-Api-Key",
    "request_X-Request-Id",
)
_KEYS = (
    "ClientAddr",
    "ClientHost",
    "ClientPort",
    "ClientUsername",
    "DownstreamContentSize",
    "DownstreamStatus",
    "Duration",
    "OriginStatus",
    "RequestAddr",
    "RequestContentSize",
    "RequestCount",
    "RequestHost",
    "RequestMethod",
    "RequestPath",
    "RequestProtocol",
    "RequestScheme",
    "RetryAttempts",
    "RouterName",
    "ServiceName",
    "ServiceAddr",
    "FrontendName",
    "BackendName",
    "BackendAddr",
    "StartUTC",
    "StartLocal",
    "time",
    "level",
    "msg",
    "entryPointName",
    "TLSVersion",
)
#: The fields read from a JSON line (``ServiceURL``/``BackendURL`` are objects in some versions: not read).
DTYPE = pl.Struct({k: pl.String for k in (*_KEYS, *_HEADERS)})
_REDACTED = ("REDACTED", "")


def _unquote(expr: pl.Expr) -> pl.Expr:
    """A quoted CLF field without its quotes (escapes are undone by finalize); ``-`` → null."""
    return R.text(expr.str.strip_prefix('"').str.strip_suffix('"'))


def _clf_events(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    names = list(_CLF.groupindex)
    groups = frame.select(pl.col("line").str.extract_groups(CLF_RE).struct.rename_fields(names)).unnest(
        "line"
    )
    rows = frame.hstack(groups)
    matched = rows.filter(pl.col("client").is_not_null())
    rest = rows.filter(pl.col("client").is_null())
    rejects = [reject_frame(rest, "does not match the Traefik common log format")] if rest.height else []
    extra = R.json_object(
        {
            "router": _unquote(pl.col("router")),
            "service_url": _unquote(pl.col("server")),
            "request_count": pl.col("count").cast(pl.Int64, strict=False),
        }
    )
    events = matched.select(
        *[c for c in ("source_line", "source_file", "_file_observer", "_idx") if c in matched.columns],
        parse_clf_time(pl.col("time")).alias("ts"),
        # No peer address in Traefik's CLF: the client field is resolved as a chain.
        R.text(pl.col("client")).alias("xff"),
        R.text(pl.col("user")).alias("principal"),
        R.text(pl.col("request")).alias("request_line"),
        pl.col("status").cast(pl.Int16, strict=False).alias("status"),
        pl.col("size").cast(pl.Int64, strict=False).alias("bytes_out"),
        pl.col("duration").cast(pl.Float64, strict=False).alias("duration_ms"),
        _unquote(pl.col("referer")).alias("referer"),
        _unquote(pl.col("ua")).alias("user_agent"),
        extra.alias("extra"),
    )
    return events, pl.concat(rejects) if rejects else empty_reject_rows()


def _credential(name: str) -> pl.Expr:
    value = R.text(R.field(name))
    return pl.when(~value.is_in(list(_REDACTED))).then(value)


def _json_events(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    decoded, bad = R.decode_objects(frame, DTYPE)
    rejects = [bad] if bad.height else []
    access = R.field("RequestMethod").is_not_null() | R.field("RequestPath").is_not_null()
    decoded = decoded.with_columns(access.fill_null(False).alias("_access"))
    other = decoded.filter(~pl.col("_access"))
    if other.height:
        reason = (
            pl.when(R.field("msg").is_not_null() | R.field("level").is_not_null())
            .then(pl.lit("not an access-log entry (Traefik log message)"))
            .otherwise(pl.lit("JSON object without Traefik access-log keys"))
        )
        rejects.append(reject_frame(other, reason))
    rows = decoded.filter(pl.col("_access"))
    rows = rows.with_columns(R.text(R.field("ClientAddr")).alias("_addr"))
    rows = R.split_address(rows, "_addr", "_peer", "_peer_port")
    host = R.text(R.field("ClientHost"))
    # ClientHost differs from the peer's address only when Traefik replaced it by X-Forwarded-For.
    xff = pl.when(pl.col("_peer").is_not_null() & (host != pl.col("_peer"))).then(host)
    peer = pl.coalesce(pl.col("_peer"), host)
    duration = R.field("Duration").cast(pl.Float64, strict=False) / 1e6
    extra = R.json_object(
        {
            "router": pl.coalesce(R.text(R.field("RouterName")), R.text(R.field("FrontendName"))),
            "service": pl.coalesce(R.text(R.field("ServiceName")), R.text(R.field("BackendName"))),
            "service_addr": pl.coalesce(R.text(R.field("ServiceAddr")), R.text(R.field("BackendAddr"))),
            "entry_point": R.text(R.field("entryPointName")),
            "origin_status": R.text(R.field("OriginStatus")).cast(pl.Int64, strict=False),
            "retry_attempts": R.field("RetryAttempts").cast(pl.Int64, strict=False),
            "request_count": R.field("RequestCount").cast(pl.Int64, strict=False),
            "tls_version": R.text(R.field("TLSVersion")),
            "x_forwarded_for": xff,
        }
    )
    ts = pl.coalesce(
        parse_iso_time(R.field("StartUTC")),
        parse_iso_time(R.field("StartLocal")),
        parse_iso_time(R.field("time")),
    )
    events = rows.select(
        *[c for c in ("source_line", "source_file", "_file_observer", "_idx") if c in rows.columns],
        ts.alias("ts"),
        peer.alias("remote_addr"),
        xff.alias("xff"),
        pl.when(xff.is_null())
        .then(pl.coalesce(pl.col("_peer_port"), R.field("ClientPort").cast(pl.Int32, strict=False)))
        .alias("client_port"),
        # the client's port also when the chain is not believed (finalize: the client is the peer)
        pl.coalesce(pl.col("_peer_port"), R.field("ClientPort").cast(pl.Int32, strict=False)).alias(
            "_peer_port"
        ),
        R.text(R.field("ClientUsername")).alias("principal"),
        _credential("request_Authorization").alias("authorization"),
        _credential("request_X-Api-Key").alias("api_key"),
        _credential("request_Cookie").alias("cookie"),
        R.text(R.field("RequestMethod")).alias("method"),
        R.text(R.field("RequestScheme")).alias("scheme"),
        pl.coalesce(R.text(R.field("RequestHost")), R.text(R.field("RequestAddr"))).alias("host"),
        R.text(R.field("RequestPath")).alias("target"),
        R.text(R.field("RequestProtocol")).alias("protocol"),
        pl.coalesce(
            R.field("DownstreamStatus").cast(pl.Int16, strict=False),
            R.field("OriginStatus").cast(pl.Int16, strict=False),
        ).alias("status"),
        R.number(R.field("DownstreamContentSize")).alias("bytes_out"),
        R.number(R.field("RequestContentSize")).alias("bytes_in"),
        pl.when(duration >= 0).then(duration).alias("duration_ms"),
        R.text(R.field("request_User-Agent")).alias("user_agent"),
        R.text(R.field("request_Referer")).alias("referer"),
        R.text(R.field("request_X-Request-Id")).alias("request_id"),
        extra.alias("extra"),
    )
    return events, pl.concat(rejects, how="vertical_relaxed") if rejects else empty_reject_rows()


def parse_traefik(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines (``line``, ``source_line``, ``_idx``…) → (intermediate event columns, reject rows)."""
    frame = R.strip_container_prefix(frame)
    frame, rejects = R.drop_blank(frame)
    is_json = pl.col("line").str.strip_chars_start().str.starts_with("{")
    parts = []
    for part, parser in ((frame.filter(is_json), _json_events), (frame.filter(~is_json), _clf_events)):
        if part.height:
            ev, rej = parser(part)
            parts.append(ev)
            if rej.height:
                rejects.append(rej)
    events = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()
    if events.height:
        bad_ts = events.filter(pl.col("ts").is_null())
        if bad_ts.height:
            rejects.append(reject_frame(bad_ts, "unparseable timestamp"))
            events = events.filter(pl.col("ts").is_not_null())
    rej = pl.concat(rejects, how="vertical_relaxed") if rejects else empty_reject_rows()
    return events.drop("_idx", strict=False), rej


def _kind(line: str) -> str | None:
    """ "clf", "json" (an access-log line) or None, for one head line."""
    line = line.strip()
    if _CLF.match(line):
        return "clf"
    obj = R.head_object(line)
    if (
        obj is not None
        and "ClientAddr" in obj
        and "RequestMethod" in obj
        and ("DownstreamStatus" in obj or "OriginStatus" in obj)
    ):
        return "json"
    return None


class TraefikIngestor(Ingestor):
    name = "traefik"
    description = "Traefik access logs (v1-v3): the Traefik common log format and JSON"
    recognised_by = (
        'CLF lines ending in <count> "<router>" "<server>" <n>ms, or JSON lines with ClientAddr, '
        "RequestMethod and DownstreamStatus/OriginStatus"
    )
    invalid_utf8 = "replace"

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        body = sniff_lines(lines)[:100]
        head = "\n".join(body)
        if '"ClientAddr"' not in head and "ms" not in head:  # cheap literal check
            return None
        return detect_by_line_kind(
            self.name, body, lambda ln: _kind(R.strip_prefix_text(ln)), "Traefik access-log lines"
        )

    def parse(self, frame: pl.DataFrame, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
        return parse_traefik(frame)


__all__ = ["CLF_RE", "TraefikIngestor", "parse_traefik"]
