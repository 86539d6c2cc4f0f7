"""Caddy 2 access logs: JSON lines written by the ``http.log.access`` logger.

One JSON object a line (Caddy docs, "log" directive and ``http.handlers`` logging)::

    {"level":"info","ts":1693840791.7564995,"logger":"http.log.access","msg":"handled request",
     "request":{"remote_ip":"172.17.0.1","remote_port":"44790","client_ip":"127.0.0.1","proto":"HTTP/1.0",
                "method":"GET","host":"127.0.0.1:8080","uri":"/","headers":{"User-Agent":["curl/7.74.0"],…},
                "tls":{…}},
     "bytes_read":0,"user_id":"","duration":0.000002701,"size":0,"status":0,"resp_headers":{…}}

Caddy writes its other logs to the same stream (startup, TLS maintenance, reverse-proxy debug lines):
those lines are rejected with their own reason, ``not an access-log entry (logger …)``. Lines of
``docker compose logs`` (``caddy  | {…}``) and of container runtimes are read without their prefix.

Mapping to the event schema:

* ``ts`` = ``ts``, epoch seconds (read exactly from its digits); an ISO 8601 ``ts`` (a custom
  ``time_format``) is read too.
* ``client_ip`` = ``request.client_ip``: Caddy's own view of the client, already resolved through the
  ``trusted_proxies`` of its configuration (Caddy ≥ 2.7); it is not resolved again here. ``peer_ip`` =
  ``request.remote_ip`` when it differs. Older Caddy logs only ``remote_ip``/``remote_port`` (≥ 2.5) or
  ``remote_addr`` (``ip:port``, before): that address is then the client. ``client_port`` is the
  peer's port, kept when the client is the peer. An ``X-Forwarded-For`` header goes to
  ``extra.x_forwarded_for``.
* ``method``, ``host`` (the Host header, port removed by normalisation), ``path``/``query`` from
  ``uri``, ``protocol`` = ``proto``, ``scheme`` = https when the request carries ``tls``, else http.
* ``status``; ``bytes_out`` = ``size`` (response body); ``bytes_in`` = ``bytes_read`` (request body);
  ``duration_ms`` = ``duration`` (seconds; a Go duration string such as ``"1.5ms"`` is read too).
* ``user_agent``, ``referer``, ``request_id`` (``X-Request-Id``) from the logged request headers.
* ``principal`` = ``user_id`` (set by Caddy's authentication handlers, basic auth in practice).
  Credentials in the logged headers (``Authorization``, ``Cookie``, API-key headers) become
  fingerprints through the credential columns and are never stored. Caddy ≥ 2.6 writes them as
  ``REDACTED`` (and some versions as an empty list): then the kind of credential is kept (``unknown``
  for an Authorization header, ``cookie``) with no principal, because one placeholder shared by every
  client must not link them.
* ``extra``: ``logger`` (names the site's log, ``http.log.access.log0``), ``level``, ``tls_version``,
  ``tls_server_name``, ``x_forwarded_for``.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from . import _records as R
from ._time import parse_iso_time
from .base import Detection, FileContext, Ingestor, empty_reject_rows, reject_frame, sniff_lines
from .reader import EvidenceFile

_HEADERS = (
    "User-Agent",
    "Referer",
    "Authorization",
    "Cookie",
    "X-Api-Key",
    "Api-Key",
    "Apikey",
    "X-Request-Id",
)
_HEADERS += ("X-Forwarded-For",)
_TLS = ("version", "server_name", "proto", "cipher_suite", "resumed")

#: The fields read from each line; everything else is skipped by the decoder.
DTYPE = pl.Struct(
    {
        "level": pl.String,
        "ts": pl.String,
        "logger": pl.String,
        "msg": pl.String,
        "request": pl.Struct(
            {
                "remote_ip": pl.String,
                "remote_port": pl.String,
                "remote_addr": pl.String,
                "client_ip": pl.String,
                "proto": pl.String,
                "method": pl.String,
                "host": pl.String,
                "uri": pl.String,
                "headers": pl.Struct({h: pl.List(pl.String) for h in _HEADERS}),
                "tls": pl.Struct({k: pl.String for k in _TLS}),
            }
        ),
        "bytes_read": pl.String,
        "user_id": pl.String,
        "duration": pl.String,
        "size": pl.String,
        "status": pl.String,
    }
)

ACCESS_LOGGER = "http.log.access"
#: Values Caddy writes in place of a credential it does not log.
_WITHHELD = ("REDACTED", "")
_GO_DURATION = r"^([0-9.]+)(ns|us|µs|ms|s|m|h)$"
_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


def _duration_ms(expr: pl.Expr) -> pl.Expr:
    """``duration`` in seconds (a number), or a Go duration string (``duration_format``) → ms."""
    seconds = expr.cast(pl.Float64, strict=False) * 1000.0
    value = expr.str.extract(_GO_DURATION, 1).cast(pl.Float64, strict=False)
    unit = expr.str.extract(_GO_DURATION, 2).replace_strict(_UNIT_MS, default=None, return_dtype=pl.Float64)
    return pl.coalesce(seconds, value * unit).round(6)


def _credential(header: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(the value when it is a real credential, whether the header was present but withheld)."""
    value = header.list.join(", ")
    present = header.is_not_null()
    withheld = present & (header.list.len() == 0) | value.is_in(list(_WITHHELD))
    return pl.when(present & ~withheld).then(value), withheld.fill_null(False)


def parse_caddy(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines (``line``, ``source_line``, ``_idx``) → (intermediate event columns, reject rows)."""
    frame = R.strip_container_prefix(frame)
    frame, rejects = R.drop_blank(frame)
    is_json = pl.col("line").str.strip_chars_start().str.starts_with("{")
    other = frame.filter(~is_json)
    if other.height:
        rejects.append(reject_frame(other, "not a Caddy JSON log line"))
    decoded, bad = R.decode_objects(frame.filter(is_json), DTYPE)
    if bad.height:
        rejects.append(bad)
    logger = R.field("logger")
    access = logger.str.starts_with(ACCESS_LOGGER).fill_null(False) & R.field("request").is_not_null()
    decoded = decoded.with_columns(access.alias("_access"))
    noise = decoded.filter(~pl.col("_access"))
    if noise.height:
        reason = (
            pl.when(R.field("logger").is_not_null())
            .then(pl.format("not an access-log entry (logger {})", R.field("logger")))
            .otherwise(pl.lit("not an access-log entry (no logger)"))
        )
        rejects.append(reject_frame(noise, reason))
    rows = decoded.filter(pl.col("_access"))
    ts = R.field("ts")
    numeric = ts.str.contains(r"^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$").fill_null(False)
    rows = rows.with_columns(
        pl.when(numeric).then(R.epoch_seconds(ts)).otherwise(parse_iso_time(ts)).alias("ts")
    )
    bad_ts = rows.filter(pl.col("ts").is_null())
    if bad_ts.height:
        rejects.append(reject_frame(bad_ts, "unparseable timestamp"))
        rows = rows.filter(pl.col("ts").is_not_null())
    events = _events(rows)
    return events, pl.concat(rejects, how="vertical_relaxed") if rejects else empty_reject_rows()


def _events(rows: pl.DataFrame) -> pl.DataFrame:
    req = "request."
    hdr = "request.headers."
    rows = rows.with_columns(
        R.text(R.field(req + "remote_ip")).alias("_remote_ip"),
        R.text(R.field(req + "remote_port")).alias("_remote_port"),
        R.text(R.field(req + "remote_addr")).alias("_remote_addr"),
        R.text(R.field(req + "client_ip")).alias("_client_ip"),
    )
    # Caddy < 2.5 wrote "remote_addr": "ip:port".
    rows = R.split_address(rows, "_remote_addr", "_old_ip", "_old_port")
    peer = pl.coalesce("_remote_ip", "_old_ip")
    peer_port = pl.coalesce(pl.col("_remote_port").cast(pl.Int32, strict=False), pl.col("_old_port"))
    client = pl.coalesce("_client_ip", peer)
    authz, authz_withheld = _credential(R.field(hdr + "Authorization"))
    cookie, cookie_withheld = _credential(R.field(hdr + "Cookie"))
    api_keys = [_credential(R.field(hdr + h))[0] for h in ("X-Api-Key", "Api-Key", "Apikey")]
    user = R.text(R.field("user_id"))
    uri = R.text(R.field(req + "uri"))
    auth = (
        pl.when(user.is_not_null())
        .then(pl.lit(None, pl.String))  # finalize: a user name is basic authentication
        .when(authz_withheld)
        .then(pl.lit("unknown"))
        .when(cookie_withheld & authz.is_null())
        .then(pl.lit("cookie"))
        .otherwise(
            R.no_credential(
                R.field(req + "headers").is_not_null() & ~authz_withheld & ~cookie_withheld,
                [authz, cookie, *api_keys],
                uri,
            )
        )
    )
    tls = R.field("request.tls")
    extra = R.json_object(
        {
            "logger": R.field("logger"),
            "level": R.field("level"),
            "tls_version": R.field("request.tls.version"),
            "tls_server_name": R.text(R.field("request.tls.server_name")),
            "x_forwarded_for": R.first_header(R.field(hdr + "X-Forwarded-For")),
        }
    )
    return rows.select(
        *[c for c in ("source_line", "source_file", "_file_observer") if c in rows.columns],
        "ts",
        client.alias("client_ip"),
        pl.when(peer != client).then(peer).alias("peer_ip"),
        pl.when(peer == client).then(peer_port).alias("client_port"),
        user.alias("principal"),
        auth.alias("auth"),
        authz.alias("authorization"),
        pl.coalesce(api_keys).alias("api_key"),
        cookie.alias("cookie"),
        R.text(R.field(req + "method")).alias("method"),
        pl.when(tls.is_not_null()).then(pl.lit("https")).otherwise(pl.lit("http")).alias("scheme"),
        R.text(R.field(req + "host")).alias("host"),
        uri.alias("target"),
        R.text(R.field(req + "proto")).alias("protocol"),
        R.field("status").cast(pl.Int16, strict=False).alias("status"),
        R.number(R.field("size")).alias("bytes_out"),
        R.number(R.field("bytes_read")).alias("bytes_in"),
        _duration_ms(R.field("duration")).alias("duration_ms"),
        R.first_header(R.field(hdr + "User-Agent")).alias("user_agent"),
        R.first_header(R.field(hdr + "Referer")).alias("referer"),
        R.first_header(R.field(hdr + "X-Request-Id")).alias("request_id"),
        extra.alias("extra"),
    )


def _kind(line: str) -> str | None:
    """ "access", "caddy" (another Caddy log line) or None, for one head line."""
    obj = R.head_object(R.strip_prefix_text(line).strip())
    if obj is None or "ts" not in obj or "msg" not in obj:
        return None
    logger = obj.get("logger")
    request = obj.get("request")
    is_access = isinstance(logger, str) and logger.startswith(ACCESS_LOGGER) and isinstance(request, dict)
    if is_access and "method" in request and ("uri" in request or "host" in request):
        return "access"
    return "caddy" if "level" in obj else None


class CaddyIngestor(Ingestor):
    name = "caddy"
    description = "Caddy 2 access logs (JSON lines of the http.log.access logger, other Caddy lines rejected)"
    recognised_by = (
        "JSON lines with ts, level, msg, where http.log.access lines carry request{method, uri}; "
        "docker compose and container-runtime prefixes allowed"
    )
    line_based = False  # reject texts are masked with knowledge of the JSON header keys
    invalid_utf8 = "replace"

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        body = sniff_lines(lines)[:100]
        head = "\n".join(body)
        if '"ts"' not in head or '"msg"' not in head:  # cheap literal check
            return None
        kinds = [_kind(ln) for ln in body]
        access = kinds.count("access")
        ours = access + kinds.count("caddy")
        if access:
            conf = 0.6 + 0.38 * ours / len(body)
            how = f"{access}/{len(body)} head lines are Caddy access-log entries ({ours} Caddy lines)"
        elif ours >= max(3, len(body) // 2) and '"logger"' in head:
            conf, how = 0.5, f"{ours}/{len(body)} head lines are Caddy log lines (no access entry yet)"
        else:
            return None
        return Detection(self.name, round(conf, 3), how, variant="json")

    def parse(self, frame: pl.DataFrame, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
        return parse_caddy(frame)

    def read_document(
        self, evidence: EvidenceFile, ctx: FileContext
    ) -> Iterator[tuple[pl.DataFrame, pl.DataFrame, int]]:
        yield from R.read_lines(evidence, ctx, self.parse, self.name)


__all__ = ["CaddyIngestor", "parse_caddy"]
