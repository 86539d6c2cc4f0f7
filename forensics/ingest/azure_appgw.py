"""Azure Application Gateway access logs (v1 and v2 SKUs), as Azure Monitor diagnostic settings write them.

Each request is one record (Application Gateway docs, "Diagnostic logs", access log)::

    {"time": "2017-04-26T19:27:38Z", "resourceId": "/SUBSCRIPTIONS/…/APPLICATIONGATEWAYS/<name>",
     "operationName": "ApplicationGatewayAccess", "category": "ApplicationGatewayAccessLog",
     "properties": {"instanceId": "…", "clientIP": "…", "clientPort": 46886, "httpMethod": "GET",
                    "requestUri": "/…", "requestQuery": "…", "userAgent": "…", "httpStatus": 404,
                    "httpVersion": "HTTP/1.0", "receivedBytes": 65, "sentBytes": 553, "timeTaken": 205,
                    "sslEnabled": "off", "host": "…", "originalHost": "…", …}}

v2 records add ``timeStamp`` (in place of ``time``), ``listenerName``, ``ruleName``, ``backendPoolName``
and, in ``properties``, ``originalRequestUriWithArgs``, ``transactionId``, ``clientResponseTime``,
``serverRouted``, ``serverStatus``, ``serverResponseLatency``, ``WAFMode``, ``error_info``, …

Delivery: a storage account's ``PT1H.json`` blobs hold one record a line (JSON lines), Event Hubs and
older blobs ``{"records": [...]}`` documents (pretty-printed or not, possibly several in a file):
lines are read with one vectorised decode per batch, documents are streamed with ijson, record by
record (a document's ``source_line`` is the record's ordinal). Real records can be invalid JSON: a
number that was empty is written ``"clientPort":-``; it is read as null, in lines and documents alike.

Firewall-log records (``ApplicationGatewayFirewallLog``, one per WAF rule that matched, so several for
one request) and performance-log records may share a destination with the access log. They are not
requests: each is rejected with its own reason (the masked record stays in the rejects, rule id and
all), so a request is never counted twice.

Mapping to the event schema:

* ``ts`` = ``time`` (v1) / ``timeStamp`` (v2) / ``timestamp``.
* ``client_ip``, ``client_port`` = ``clientIP``, ``clientPort``: "the immediate client of Application
  Gateway"; the gateway logs no X-Forwarded-For, so a proxy in front is the client here.
* ``path``/``query``: ``originalRequestUriWithArgs`` (v2: the URL as the client sent it, before any
  rewrite) when present; else ``requestUri`` with ``requestQuery``, from which the parameters the v1
  gateway adds itself (``X-AzureApplicationGateway-CACHE-HIT``, ``…-LOG-ID``, ``SERVER-ROUTED``,
  ``SERVER-STATUS``) are removed and kept in ``extra``. A rewritten ``requestUri`` goes to ``extra``.
* ``host`` = ``originalHost`` (the client's Host), else ``host`` (the host sent to the backend, which a
  rewrite may change); ``protocol`` = ``httpVersion``; ``status`` = ``httpStatus``; ``bytes_in`` =
  ``receivedBytes``; ``bytes_out`` = ``sentBytes``; ``user_agent`` (``+`` for spaces in v1 is kept as
  written); ``request_id`` = ``transactionId``.
* ``duration_ms`` from ``timeTaken``. The unit differs by SKU (docs): **v2 writes seconds** (``0.034``),
  **v1 milliseconds** (``205``). A record is taken as v2 when it carries any v2-only field
  (``timeStamp``, ``originalRequestUriWithArgs``, ``transactionId``, ``serverRouted``,
  ``serverResponseLatency``, ``clientResponseTime``, ``WAFMode``) or an ``appgw_<n>`` instance id, or
  when ``timeTaken`` has a fraction; otherwise as v1. ``extra.sku`` says which was assumed and
  ``extra.time_taken`` keeps the value as written.
* ``observer`` = the gateway's name, the last segment of ``resourceId`` after ``APPLICATIONGATEWAYS/``.
* ``extra``: ``sku``, ``time_taken``, ``instance``, ``listener``, ``rule``, ``backend_pool``,
  ``server_routed``, ``server_status``, ``server_response_latency``, ``error_info``, ``waf_mode``,
  ``ssl_enabled`` (TLS towards the backend pool, not the client's scheme), ``ssl_protocol``,
  ``backend_host``, ``request_uri`` (when rewritten), ``log_id``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import polars as pl

from . import _records as R
from ._time import parse_iso_time
from .base import Detection, FileContext, Ingestor, empty_reject_rows, reject_frame, sniff_lines
from .reader import EvidenceFile

_PROPERTIES = (
    "instanceId",
    "clientIP",
    "clientPort",
    "httpMethod",
    "requestUri",
    "originalRequestUriWithArgs",
    "requestQuery",
    "userAgent",
    "httpStatus",
    "httpVersion",
    "receivedBytes",
    "sentBytes",
    "timeTaken",
    "clientResponseTime",
    "WAFMode",
    "transactionId",
    "sslEnabled",
    "sslProtocol",
    "serverRouted",
    "serverStatus",
    "serverResponseLatency",
    "host",
    "originalHost",
    "error_info",
)
#: The fields read from each record; everything else is skipped by the decoder.
DTYPE = pl.Struct(
    {
        "time": pl.String,
        "timeStamp": pl.String,
        "timestamp": pl.String,
        "resourceId": pl.String,
        "operationName": pl.String,
        "category": pl.String,
        "listenerName": pl.String,
        "ruleName": pl.String,
        "backendPoolName": pl.String,
        "properties": pl.Struct({k: pl.String for k in _PROPERTIES}),
    }
)

ACCESS = "ApplicationGatewayAccessLog"
#: Categories that share the destination and are not requests.
OTHER_CATEGORIES = {
    "ApplicationGatewayFirewallLog": "Application Gateway firewall-log record (a WAF rule match), not a request",
    "ApplicationGatewayPerformanceLog": "Application Gateway performance-log record, not a request",
}
#: The v1 gateway's own parameters in ``requestQuery`` (its docs list them as part of the field).
_GATEWAY_PARAM = r"(?i)(?:^|&)(?:X-AzureApplicationGateway-[^=&]*|SERVER-ROUTED|SERVER-STATUS)=[^&]*"
_V2_FIELDS = (
    "originalRequestUriWithArgs",
    "transactionId",
    "serverRouted",
    "serverResponseLatency",
    "clientResponseTime",
    "WAFMode",
)


def _prop(name: str) -> pl.Expr:
    return R.text(R.field(f"properties.{name}"))


def _query_param(query: pl.Expr, name: str) -> pl.Expr:
    return query.str.extract(rf"(?i)(?:^|&){re.escape(name)}=([^&]*)", 1)


def parse_appgw(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Records as JSON lines (``line``, ``source_line``, ``_idx``) → (intermediate event columns, rejects)."""
    frame, rejects = R.drop_blank(frame)
    is_json = pl.col("line").str.strip_chars_start().str.starts_with("{")
    other = frame.filter(~is_json)
    if other.height:
        rejects.append(reject_frame(other, "not an Azure diagnostic-log JSON record"))
    frame = frame.filter(is_json).with_columns(pl.col("line").str.replace_all(R.DASH_NUMBER, r'":null$1'))
    decoded, bad = R.decode_objects(frame, DTYPE)
    if bad.height:
        rejects.append(bad)
    category = R.field("category")
    access = (category == ACCESS) | (
        category.is_null() & (R.field("operationName") == "ApplicationGatewayAccess")
    )
    decoded = decoded.with_columns(access.fill_null(False).alias("_access"))
    not_access = decoded.filter(~pl.col("_access"))
    if not_access.height:
        reason = pl.coalesce(
            category.replace_strict(OTHER_CATEGORIES, default=None, return_dtype=pl.String),
            pl.format("not an Application Gateway access-log record (category {})", category),
            pl.lit("JSON object without an Application Gateway access-log category"),
        )
        rejects.append(reject_frame(not_access, reason))
    rows = decoded.filter(pl.col("_access")).with_columns(
        parse_iso_time(pl.coalesce(R.field("time"), R.field("timeStamp"), R.field("timestamp"))).alias("ts")
    )
    bad_ts = rows.filter(pl.col("ts").is_null())
    if bad_ts.height:
        rejects.append(reject_frame(bad_ts, "unparseable timestamp"))
        rows = rows.filter(pl.col("ts").is_not_null())
    return _events(rows), pl.concat(rejects, how="vertical_relaxed") if rejects else empty_reject_rows()


def _events(rows: pl.DataFrame) -> pl.DataFrame:
    query = _prop("requestQuery")
    own_query = R.text(
        query.str.replace_all(_GATEWAY_PARAM, "").str.strip_chars_start("&")
    )  # the client's part of a v1 requestQuery
    uri = _prop("requestUri")
    original = _prop("originalRequestUriWithArgs")
    target = pl.coalesce(
        original,
        pl.when(own_query.is_not_null()).then(uri + pl.lit("?") + own_query).otherwise(uri),
    )
    taken = _prop("timeTaken")
    v2 = (
        R.field("timeStamp").is_not_null()
        | pl.any_horizontal([_prop(k).is_not_null() for k in _V2_FIELDS])
        | _prop("instanceId").str.starts_with("appgw_").fill_null(False)
        | taken.str.contains(".", literal=True).fill_null(False)
    )
    seconds = taken.cast(pl.Float64, strict=False)
    duration = pl.when(v2).then((seconds * 1000.0).round(6)).otherwise(seconds)
    host = _prop("host")
    extra = R.json_object(
        {
            "sku": pl.when(v2).then(pl.lit("v2")).otherwise(pl.lit("v1")),
            "time_taken": seconds,
            "instance": _prop("instanceId"),
            "listener": R.text(R.field("listenerName")),
            "rule": R.text(R.field("ruleName")),
            "backend_pool": R.text(R.field("backendPoolName")),
            "server_routed": pl.coalesce(_prop("serverRouted"), R.text(_query_param(query, "SERVER-ROUTED"))),
            "server_status": pl.coalesce(_prop("serverStatus"), R.text(_query_param(query, "SERVER-STATUS"))),
            "server_response_latency": _prop("serverResponseLatency").cast(pl.Float64, strict=False),
            "log_id": R.text(_query_param(query, "X-AzureApplicationGateway-LOG-ID")),
            "error_info": _prop("error_info"),
            "waf_mode": _prop("WAFMode"),
            "ssl_enabled": _prop("sslEnabled"),
            "ssl_protocol": _prop("sslProtocol"),
            "backend_host": pl.when(host != _prop("originalHost")).then(host),
            "request_uri": pl.when(original.is_not_null() & (uri != original.str.replace(r"\?.*$", ""))).then(
                uri
            ),
        }
    )
    observer = R.field("resourceId").str.extract(r"(?i)/APPLICATIONGATEWAYS/([^/]+)", 1)
    return rows.select(
        *[c for c in ("source_line", "source_file", "_file_observer") if c in rows.columns],
        "ts",
        pl.coalesce(observer, R.text(R.field("resourceId"))).alias("observer"),
        _prop("clientIP").alias("client_ip"),
        _prop("clientPort").cast(pl.Int32, strict=False).alias("client_port"),
        _prop("httpMethod").alias("method"),
        pl.coalesce(_prop("originalHost"), host).alias("host"),
        target.alias("target"),
        _prop("httpVersion").alias("protocol"),
        _prop("httpStatus").cast(pl.Int16, strict=False).alias("status"),
        R.number(_prop("receivedBytes")).alias("bytes_in"),
        R.number(_prop("sentBytes")).alias("bytes_out"),
        pl.when(duration >= 0).then(duration).alias("duration_ms"),
        _prop("userAgent").alias("user_agent"),
        _prop("transactionId").alias("request_id"),
        extra.alias("extra"),
    )


# --------------------------------------------------------------------------------------------------
# Detection


def _record(line: str) -> dict | None:
    obj, _why = R.load_json(re.sub(R.DASH_NUMBER, r'":null\1', line))
    return obj if isinstance(obj, dict) else None


def _is_appgw(obj: dict) -> bool:
    return str(obj.get("category", "")).startswith("ApplicationGateway") or str(
        obj.get("operationName", "")
    ).startswith("ApplicationGateway")


class AzureAppGatewayIngestor(Ingestor):
    name = "azure_appgw"
    description = (
        'Azure Application Gateway access logs, v1 and v2 (JSON lines or {"records": [...]} documents)'
    )
    recognised_by = (
        "records with category ApplicationGatewayAccessLog / operationName ApplicationGatewayAccess, one "
        'a line, or a {"records": [...]} document (invalid "key":- numbers tolerated)'
    )
    line_based = False  # a file may be one JSON document
    invalid_utf8 = "replace"

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        body = sniff_lines(lines)[:50]
        head = "\n".join(body)
        if "ApplicationGateway" not in head:  # cheap literal check
            return None
        records = [_record(ln) for ln in body]
        if records[0] is not None and isinstance(records[0].get("records"), list):
            return self._document('{"records": [...]} documents, one a line')
        ok = sum(1 for r in records if r is not None and _is_appgw(r))
        if ok:
            access = sum(1 for r in records if r is not None and r.get("category") == ACCESS)
            conf = 0.97 * ok / len(body)
            how = f"{ok}/{len(body)} head lines are Application Gateway records ({access} access)"
            return Detection(self.name, round(conf, 3), how, params={"mode": "lines"}, variant="lines")
        if head.lstrip()[:1] in "[{" and re.search(r'"(?:ApplicationGatewayAccess|records)"', head):
            return self._document('a {"records": [...]} document')
        return None

    def _document(self, how: str) -> Detection:
        return Detection(self.name, 0.95, how, params={"mode": "document"}, variant="document")

    def parse(self, frame: pl.DataFrame, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
        return parse_appgw(frame)

    def read_document(
        self, evidence: EvidenceFile, ctx: FileContext
    ) -> Iterator[tuple[pl.DataFrame, pl.DataFrame, int]]:
        if ctx.detection.params.get("mode") == "document":
            yield from R.read_records(
                evidence, ctx, self.parse, self.name, list_keys=("records",), repair=True
            )
        else:
            yield from R.read_lines(evidence, ctx, self.parse, self.name)


__all__ = ["AzureAppGatewayIngestor", "parse_appgw"]
