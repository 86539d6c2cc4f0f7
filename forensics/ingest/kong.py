"""Kong Gateway logs of the file-log plugin (and what http-log, tcp-log, udp-log, syslog send): JSON lines.

Kong's log serializer writes one JSON object per request (Kong plugin docs, "Log format")::

    {"started_at": 1666449742317, "client_ip": "10.244.1.0",
     "request": {"method": "GET", "uri": "/book-store/books", "url": "http://api.example:80/book-store/books",
                 "size": 155, "querystring": {}, "headers": {"host": "…", "user-agent": "…", …}},
     "response": {"status": 200, "size": 417, "headers": {…}},
     "latencies": {"request": 44, "kong": 41, "proxy": 3},
     "consumer": {"id": "…", "username": "…", "custom_id": "…"}, "authenticated_entity": {"id": "…"},
     "route": {"name": "…", …}, "service": {"name": "…", …}, "upstream_uri": "/books", "tries": […]}

Kong 0.x wrote ``request.request_uri`` (the full URL) instead of ``url``, an ``api`` object instead of
route and service, sizes as strings and ``/`` escaped as ``\\/`` (plain JSON: the decoder reads both).
A header sent twice is logged as a list of values (joined with ", " here).

Mapping to the event schema:

* ``ts`` = ``started_at`` (epoch milliseconds, when Kong received the request).
* ``client_ip``: ``client_ip`` is nginx's ``$remote_addr`` as Kong saw it, after Kong's own
  ``trusted_ips``/``real_ip_header`` handling when configured. It is taken as the peer and the logged
  ``X-Forwarded-For`` request header is resolved with this project's policy (:mod:`forensics.clients`):
  behind a load balancer that Kong does not trust, the client is still found; when Kong already
  resolved the real address (a public peer), the header is ignored.
* ``method``; ``scheme``, ``host``, ``path``, ``query`` from ``request.url`` (else ``request_uri``, else
  ``uri`` with the ``host`` header).
* ``status`` = ``response.status``; ``bytes_out`` = ``response.size`` and ``bytes_in`` =
  ``request.size`` (both with headers, as Kong counts them); ``duration_ms`` = ``latencies.request``.
* ``principal``: the consumer (``username``, else ``custom_id``, else ``id``), else the
  ``authenticated_entity`` (the credential's id, not the secret). Request headers that carry secrets
  (``authorization``, ``apikey``/``x-api-key``/``api-key``, ``cookie``) go through the credential
  columns: they become fingerprints (the principal when there is no consumer) and an ``auth`` kind, and
  are never stored; reject texts are masked the same way. A request whose headers are logged without any
  credential, by no consumer, is ``auth = none``.
* ``user_agent``, ``referer`` from the request headers; ``request_id`` = the ``x-kong-request-id``
  response header, else the request's ``x-request-id``, else ``request.id`` (Kong ≥ 3.5).
* ``extra``: ``route``, ``service`` (names, else ids), ``api`` (0.x), ``upstream_uri``,
  ``upstream_status``, ``latency_kong``, ``latency_proxy``, ``consumer_id``, ``workspace``, ``source``
  (who answered: upstream or Kong itself).
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from . import _records as R
from .base import Detection, FileContext, Ingestor, empty_reject_rows, reject_frame, sniff_lines
from .reader import EvidenceFile

#: Request headers read (Kong logs header names in lower case).
_REQUEST_HEADERS = (
    "authorization",
    "apikey",
    "x-api-key",
    "api-key",
    "cookie",
    "user-agent",
    "referer",
    "x-forwarded-for",
    "host",
    "x-request-id",
)
_ENTITY = pl.Struct({"id": pl.String, "name": pl.String})

#: The fields read from each line; everything else (bodies, tries, plugin data) is skipped.
DTYPE = pl.Struct(
    {
        "started_at": pl.String,
        "client_ip": pl.String,
        "request": pl.Struct(
            {
                "method": pl.String,
                "uri": pl.String,
                "url": pl.String,
                "request_uri": pl.String,
                "size": pl.String,
                "id": pl.String,
                "headers": pl.Struct({h: pl.String for h in _REQUEST_HEADERS}),
            }
        ),
        "response": pl.Struct(
            {
                "status": pl.String,
                "size": pl.String,
                "headers": pl.Struct({"x-kong-request-id": pl.String}),
            }
        ),
        "latencies": pl.Struct({"request": pl.String, "kong": pl.String, "proxy": pl.String}),
        "consumer": pl.Struct({"id": pl.String, "username": pl.String, "custom_id": pl.String}),
        "authenticated_entity": pl.Struct({"id": pl.String, "consumer_id": pl.String}),
        "route": _ENTITY,
        "service": _ENTITY,
        "api": _ENTITY,
        "upstream_uri": pl.String,
        "upstream_status": pl.String,
        "workspace_name": pl.String,
        "source": pl.String,
    }
)

_SCHEME_RE = r"^\s*(\S+)"


def parse_kong(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines (``line``, ``source_line``, ``_idx``) → (intermediate event columns, reject rows)."""
    frame = R.strip_container_prefix(frame)
    frame, rejects = R.drop_blank(frame)
    is_json = pl.col("line").str.strip_chars_start().str.starts_with("{")
    other = frame.filter(~is_json)
    if other.height:
        rejects.append(reject_frame(other, "not a Kong JSON log line"))
    decoded, bad = R.decode_objects(frame.filter(is_json), DTYPE)
    if bad.height:
        rejects.append(bad)
    own = R.field("request").is_not_null() & R.field("started_at").is_not_null()
    decoded = decoded.with_columns(own.fill_null(False).alias("_own"))
    foreign = decoded.filter(~pl.col("_own"))
    if foreign.height:
        rejects.append(reject_frame(foreign, "JSON object without Kong log keys (started_at, request)"))
    rows = decoded.filter(pl.col("_own")).with_columns(R.epoch_millis(R.field("started_at")).alias("ts"))
    bad_ts = rows.filter(pl.col("ts").is_null())
    if bad_ts.height:
        rejects.append(reject_frame(bad_ts, "unparseable timestamp (started_at)"))
        rows = rows.filter(pl.col("ts").is_not_null())
    return _events(rows), pl.concat(rejects, how="vertical_relaxed") if rejects else empty_reject_rows()


def _events(rows: pl.DataFrame) -> pl.DataFrame:
    hdr = "request.headers."
    authz = R.text(R.field(hdr + "authorization"))
    api_key = pl.coalesce([R.text(R.field(hdr + h)) for h in ("apikey", "x-api-key", "api-key")])
    cookie = R.text(R.field(hdr + "cookie"))
    consumer = pl.coalesce(
        R.text(R.field("consumer.username")),
        R.text(R.field("consumer.custom_id")),
        R.text(R.field("consumer.id")),
        R.text(R.field("authenticated_entity.consumer_id")),
        R.text(R.field("authenticated_entity.id")),
    )
    target = pl.coalesce(
        R.text(R.field("request.url")), R.text(R.field("request.request_uri")), R.text(R.field("request.uri"))
    )
    scheme = authz.str.extract(_SCHEME_RE, 1).str.to_lowercase()
    auth = (
        pl.when(authz.is_not_null())
        .then(pl.when(scheme.is_in(["bearer", "basic"])).then(scheme).otherwise(pl.lit("unknown")))
        .when(api_key.is_not_null())
        .then(pl.lit("apikey"))
        .when(consumer.is_not_null())
        .then(pl.lit("unknown"))  # authenticated by a plugin whose credential is not in the headers
        .otherwise(R.no_credential(R.field("request.headers").is_not_null(), [cookie], target))
    )
    extra = R.json_object(
        {
            "route": pl.coalesce(R.text(R.field("route.name")), R.text(R.field("route.id"))),
            "service": pl.coalesce(R.text(R.field("service.name")), R.text(R.field("service.id"))),
            "api": pl.coalesce(R.text(R.field("api.name")), R.text(R.field("api.id"))),
            "upstream_uri": R.text(R.field("upstream_uri")),
            "upstream_status": R.text(R.field("upstream_status")),
            "latency_kong": R.field("latencies.kong").cast(pl.Float64, strict=False),
            "latency_proxy": R.field("latencies.proxy").cast(pl.Float64, strict=False),
            "consumer_id": R.text(R.field("consumer.id")),
            "workspace": R.text(R.field("workspace_name")),
            "source": R.text(R.field("source")),
        }
    )
    return rows.select(
        *[c for c in ("source_line", "source_file", "_file_observer") if c in rows.columns],
        "ts",
        R.text(R.field("client_ip")).alias("remote_addr"),
        R.text(R.field(hdr + "x-forwarded-for")).alias("xff"),
        consumer.alias("principal"),
        auth.alias("auth"),
        authz.alias("authorization"),
        api_key.alias("api_key"),
        cookie.alias("cookie"),
        R.text(R.field("request.method")).alias("method"),
        R.text(R.field(hdr + "host")).alias("host"),
        target.alias("target"),
        R.field("response.status").cast(pl.Int16, strict=False).alias("status"),
        R.number(R.field("response.size")).alias("bytes_out"),
        R.number(R.field("request.size")).alias("bytes_in"),
        R.field("latencies.request").cast(pl.Float64, strict=False).alias("duration_ms"),
        R.text(R.field(hdr + "user-agent")).alias("user_agent"),
        R.text(R.field(hdr + "referer")).alias("referer"),
        pl.coalesce(
            R.text(R.field("response.headers.x-kong-request-id")),
            R.text(R.field(hdr + "x-request-id")),
            R.text(R.field("request.id")),
        ).alias("request_id"),
        extra.alias("extra"),
    )


def _is_kong(line: str) -> bool:
    obj = R.head_object(line.strip())
    return (
        obj is not None
        and isinstance(obj.get("request"), dict)
        and isinstance(obj.get("response"), dict)
        and "started_at" in obj
        and ("latencies" in obj or "client_ip" in obj)
    )


class KongIngestor(Ingestor):
    name = "kong"
    description = "Kong Gateway request logs (file-log, http-log, tcp-log… JSON lines), 0.x to 3.x"
    recognised_by = "JSON lines with started_at, request{…}, response{…} and latencies or client_ip"
    line_based = False  # reject texts are masked with knowledge of the JSON header keys
    invalid_utf8 = "replace"

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        body = sniff_lines(lines)[:50]
        head = "\n".join(body)
        if '"started_at"' not in head or '"request"' not in head:  # cheap literal check
            return None
        ok = sum(1 for ln in body if _is_kong(R.strip_prefix_text(ln)))
        if not ok:
            return None
        conf = 0.97 * ok / len(body)
        return Detection(self.name, round(conf, 3), f"{ok}/{len(body)} head lines are Kong log objects")

    def parse(self, frame: pl.DataFrame, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
        return parse_kong(frame)

    def read_document(
        self, evidence: EvidenceFile, ctx: FileContext
    ) -> Iterator[tuple[pl.DataFrame, pl.DataFrame, int]]:
        yield from R.read_lines(evidence, ctx, self.parse, self.name)


__all__ = ["KongIngestor", "parse_kong"]
