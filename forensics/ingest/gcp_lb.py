"""Google Cloud external Application Load Balancer request logs, as exported from Cloud Logging.

Each request is a Cloud Logging ``LogEntry`` (Cloud Load Balancing docs, "Logging and monitoring";
Cloud Logging ``LogEntry`` and ``HttpRequest`` reference)::

    {"timestamp": "2023-04-21T15:59:24.827008Z", "receiveTimestamp": "…", "logName": "projects/P/logs/requests",
     "trace": "projects/P/traces/4ebc71f1def9274798cac4e8960d0095", "spanId": "…", "insertId": "…",
     "httpRequest": {"requestMethod": "POST", "requestUrl": "https://sn.example.com/graphql", "requestSize": "522",
                     "status": 200, "responseSize": "1750", "userAgent": "…", "remoteIp": "41.82.183.143",
                     "serverIp": "10.56.35.14", "referer": "…", "latency": "0.248406s", "protocol": "HTTP/1.1",
                     "cacheHit": true, "cacheLookup": true},
     "resource": {"type": "http_load_balancer", "labels": {"forwarding_rule_name": "…", "url_map_name": "…",
                  "backend_service_name": "…", "target_proxy_name": "…", "project_id": "…", "zone": "global"}},
     "jsonPayload": {"@type": "type.googleapis.com/google.cloud.loadbalancing.type.LoadBalancerLogEntry",
                     "statusDetails": "response_sent_by_backend", "enforcedSecurityPolicy": {…}, "cacheId": "…"}}

The same entries come as JSON lines (a Cloud Storage sink writes one entry a line; Pub/Sub and
Logs Explorer downloads too), in snake_case from BigQuery-style exports (``http_request.remote_ip``,
``json_payload``, ``log_name``), or as one JSON document: a JSON array (``gcloud logging read
--format=json``) or ``{"entries": [...]}`` (the ``entries.list`` API response). Documents are streamed
with ijson, entry by entry; a document's ``source_line`` is the entry's ordinal.

Mapping to the event schema:

* ``ts`` = ``timestamp`` (when the load balancer logged the request; RFC 3339 with nanoseconds, kept to
  the microsecond). An entry without it falls back to ``receiveTimestamp`` (a little later; said in
  ``extra.ts_source``); one with neither is a reject.
* ``client_ip`` = ``remoteIp`` (the client as the Google front end saw it; documented to carry a port
  sometimes: split off into ``client_port``, IPv6 kept whole). It is not an X-Forwarded-For resolution.
* ``method``, ``scheme``/``host``/``path``/``query`` from the absolute ``requestUrl``, ``protocol``,
  ``status``, ``bytes_in`` = ``requestSize``, ``bytes_out`` = ``responseSize`` (int64 written as strings),
  ``duration_ms`` = ``latency`` ("0.248406s"), ``user_agent``, ``referer``.
* ``request_id`` = the trace id of ``trace`` (``projects/P/traces/<id>``: the id only, which is what a
  backend sees in ``X-Cloud-Trace-Context`` and can log).
* ``observer`` = the load balancer from ``resource.labels``: ``forwarding_rule_name``, else
  ``url_map_name``, else ``backend_service_name``, else ``target_proxy_name``; else ``logName``.
* ``extra``: ``resource_type``, ``project_id``, ``backend_service``, ``url_map``, ``status_details``,
  ``security_policy`` / ``security_outcome`` / ``security_action`` / ``security_priority`` (Cloud Armor's
  ``enforcedSecurityPolicy``), ``cache_hit``, ``cache_lookup``, ``cache_id``, ``server_ip``, ``span_id``,
  ``ts_source``.

Entries without an ``httpRequest`` (other Cloud Logging records in the same export) are rejected with
their own reason. Entries of other resource types that carry an ``httpRequest`` (regional and internal
load balancers, Cloud Run, App Engine) share the schema and are read the same way; ``resource_type``
says which.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import polars as pl

from . import _records as R
from ._time import parse_iso_time
from .base import Detection, FileContext, Ingestor, empty_reject_rows, reject_frame, sniff_lines
from .reader import EvidenceFile

#: ``httpRequest`` field → its snake_case name in BigQuery-style exports.
_HTTP = {
    "requestMethod": "request_method",
    "requestUrl": "request_url",
    "requestSize": "request_size",
    "status": "status",
    "responseSize": "response_size",
    "userAgent": "user_agent",
    "remoteIp": "remote_ip",
    "serverIp": "server_ip",
    "referer": "referer",
    "latency": "latency",
    "protocol": "protocol",
    "cacheHit": "cache_hit",
    "cacheLookup": "cache_lookup",
}
_LABELS = (
    "forwarding_rule_name",
    "url_map_name",
    "backend_service_name",
    "target_proxy_name",
    "project_id",
    "zone",
    "region",
)
_POLICY = pl.Struct(
    {"name": pl.String, "outcome": pl.String, "configuredAction": pl.String, "priority": pl.String}
)
_PAYLOAD = {
    "@type": pl.String,
    "statusDetails": pl.String,
    "status_details": pl.String,
    "cacheId": pl.String,
    "enforcedSecurityPolicy": _POLICY,
}

#: The fields read from each entry (camelCase and snake_case exports); everything else is skipped.
DTYPE = pl.Struct(
    {
        "timestamp": pl.String,
        "receiveTimestamp": pl.String,
        "receive_timestamp": pl.String,
        "trace": pl.String,
        "spanId": pl.String,
        "span_id": pl.String,
        "logName": pl.String,
        "log_name": pl.String,
        "httpRequest": pl.Struct({k: pl.String for k in _HTTP}),
        "http_request": pl.Struct({v: pl.String for v in _HTTP.values()}),
        "resource": pl.Struct({"type": pl.String, "labels": pl.Struct({k: pl.String for k in _LABELS})}),
        "jsonPayload": pl.Struct(_PAYLOAD),
        "json_payload": pl.Struct(_PAYLOAD),
    }
)

#: Resource types of the load balancers whose request logs these are.
LB_RESOURCE_TYPES = ("http_load_balancer", "http_external_regional_lb_rule", "internal_http_lb_rule")


def _http(name: str) -> pl.Expr:
    """An ``httpRequest`` field, from either spelling of the export."""
    return pl.coalesce(R.text(R.field(f"httpRequest.{name}")), R.text(R.field(f"http_request.{_HTTP[name]}")))


def _payload(camel: str, snake: str | None = None) -> pl.Expr:
    exprs = [R.field(f"jsonPayload.{camel}"), R.field(f"json_payload.{camel}")]
    if snake:
        exprs.append(R.field(f"json_payload.{snake}"))
    return pl.coalesce(exprs)


def parse_gcp(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Entries as JSON lines (``line``, ``source_line``, ``_idx``) → (intermediate event columns, rejects)."""
    frame, rejects = R.drop_blank(frame)
    is_json = pl.col("line").str.strip_chars_start().str.starts_with("{")
    other = frame.filter(~is_json)
    if other.height:
        rejects.append(reject_frame(other, "not a Cloud Logging JSON entry"))
    decoded, bad = R.decode_objects(frame.filter(is_json), DTYPE)
    if bad.height:
        rejects.append(bad)
    has_request = R.field("httpRequest").is_not_null() | R.field("http_request").is_not_null()
    decoded = decoded.with_columns(has_request.fill_null(False).alias("_req"))
    no_request = decoded.filter(~pl.col("_req"))
    if no_request.height:
        rtype = R.field("resource.type")
        reason = (
            pl.when(rtype.is_not_null())
            .then(pl.format("Cloud Logging entry without httpRequest (resource.type {})", rtype))
            .otherwise(pl.lit("JSON object without Cloud Logging httpRequest"))
        )
        rejects.append(reject_frame(no_request, reason))
    rows = decoded.filter(pl.col("_req"))
    logged = parse_iso_time(R.field("timestamp"))
    received = parse_iso_time(pl.coalesce(R.field("receiveTimestamp"), R.field("receive_timestamp")))
    rows = rows.with_columns(
        pl.coalesce(logged, received).alias("ts"),
        pl.when(logged.is_null() & received.is_not_null())
        .then(pl.lit("receiveTimestamp"))
        .alias("_ts_source"),
    )
    no_ts = rows.filter(pl.col("ts").is_null())
    if no_ts.height:
        rejects.append(reject_frame(no_ts, "no timestamp (timestamp, receiveTimestamp)"))
        rows = rows.filter(pl.col("ts").is_not_null())
    return _events(rows), pl.concat(rejects, how="vertical_relaxed") if rejects else empty_reject_rows()


def _events(rows: pl.DataFrame) -> pl.DataFrame:
    rows = rows.with_columns(_http("remoteIp").alias("_remote"))
    rows = R.split_address(rows, "_remote", "_client", "_client_port")
    label = {k: R.text(R.field(f"resource.labels.{k}")) for k in _LABELS}
    latency = (_http("latency").str.strip_suffix("s").cast(pl.Float64, strict=False) * 1000.0).round(6)
    policy = "enforcedSecurityPolicy."
    extra = R.json_object(
        {
            "resource_type": R.text(R.field("resource.type")),
            "project_id": label["project_id"],
            "backend_service": label["backend_service_name"],
            "url_map": label["url_map_name"],
            "status_details": R.text(_payload("statusDetails", "status_details")),
            "security_policy": R.text(_payload(policy + "name")),
            "security_outcome": R.text(_payload(policy + "outcome")),
            "security_action": R.text(_payload(policy + "configuredAction")),
            "security_priority": _payload(policy + "priority").cast(pl.Int64, strict=False),
            "cache_hit": _http("cacheHit") == "true",
            "cache_lookup": _http("cacheLookup") == "true",
            "cache_id": R.text(_payload("cacheId")),
            "server_ip": _http("serverIp"),
            "span_id": pl.coalesce(R.text(R.field("spanId")), R.text(R.field("span_id"))),
            "ts_source": pl.col("_ts_source"),
        }
    )
    observer = pl.coalesce(
        label["forwarding_rule_name"],
        label["url_map_name"],
        label["backend_service_name"],
        label["target_proxy_name"],
        pl.coalesce(R.text(R.field("logName")), R.text(R.field("log_name"))),
    )
    trace = R.text(R.field("trace"))
    return rows.select(
        *[c for c in ("source_line", "source_file", "_file_observer") if c in rows.columns],
        "ts",
        observer.alias("observer"),
        pl.col("_client").alias("client_ip"),
        pl.col("_client_port").alias("client_port"),
        _http("requestMethod").alias("method"),
        _http("requestUrl").alias("target"),
        _http("protocol").alias("protocol"),
        _http("status").cast(pl.Int16, strict=False).alias("status"),
        R.number(_http("requestSize")).alias("bytes_in"),
        R.number(_http("responseSize")).alias("bytes_out"),
        pl.when(latency >= 0).then(latency).alias("duration_ms"),
        _http("userAgent").alias("user_agent"),
        _http("referer").alias("referer"),
        pl.coalesce(trace.str.extract(r"/traces/([^/]+)$", 1), trace).alias("request_id"),
        extra.alias("extra"),
    )


# --------------------------------------------------------------------------------------------------
# Detection


_LB_MARK = re.compile(r"LoadBalancerLogEntry|" + "|".join(LB_RESOURCE_TYPES))


def _entry_kind(obj: object) -> str | None:
    """ "lb" (a load-balancer request entry), "http" (another entry with httpRequest) or None."""
    if not isinstance(obj, dict):
        return None
    request = obj.get("httpRequest", obj.get("http_request"))
    if not isinstance(request, dict) or not (
        {"requestUrl", "request_url", "requestMethod", "request_method"} & set(request)
    ):
        return None
    resource = obj.get("resource")
    payload = obj.get("jsonPayload", obj.get("json_payload"))
    marks = json.dumps([resource, (payload or {}).get("@type") if isinstance(payload, dict) else None])
    return "lb" if _LB_MARK.search(marks) else "http"


class GcpLoadBalancerIngestor(Ingestor):
    name = "gcp_lb"
    description = (
        "Google Cloud Application Load Balancer request logs (Cloud Logging entries: JSON lines, "
        "snake_case exports, JSON arrays, {entries: [...]})"
    )
    recognised_by = (
        "Cloud Logging entries with httpRequest{requestUrl, …} and a load-balancer resource type or "
        'LoadBalancerLogEntry payload; one a line, or a JSON array / {"entries": [...]} document'
    )
    line_based = False  # a file may be one JSON document
    invalid_utf8 = "replace"

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        body = sniff_lines(lines)[:50]
        head = "\n".join(body)
        if '"httpRequest"' not in head and '"http_request"' not in head:  # cheap literal check
            return None
        kinds = []
        for ln in body:
            obj, why = R.load_json(ln)
            if why is not None:
                kinds.append(None)
                continue
            if isinstance(obj, dict) and isinstance(obj.get("entries"), list):
                return self._document('an {"entries": [...]} document of Cloud Logging entries', head)
            kinds.append(_entry_kind(obj))
        ok = sum(1 for k in kinds if k)
        if ok:
            lb = kinds.count("lb")
            conf = (0.97 if lb else 0.6) * ok / len(body)
            how = (
                f"{ok}/{len(body)} head lines are Cloud Logging entries with httpRequest ({lb} load balancer)"
            )
            return Detection(self.name, round(conf, 3), how, params={"mode": "lines"}, variant="lines")
        if head.lstrip()[:1] in "[{":
            return self._document("a JSON document of Cloud Logging entries", head)
        return None

    def _document(self, how: str, head: str) -> Detection | None:
        if not _LB_MARK.search(head) and "requestUrl" not in head and "request_url" not in head:
            return None
        conf = 0.95 if _LB_MARK.search(head) else 0.6
        return Detection(self.name, conf, how, params={"mode": "document"}, variant="document")

    def parse(self, frame: pl.DataFrame, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
        return parse_gcp(frame)

    def read_document(
        self, evidence: EvidenceFile, ctx: FileContext
    ) -> Iterator[tuple[pl.DataFrame, pl.DataFrame, int]]:
        if ctx.detection.params.get("mode") == "document":
            yield from R.read_records(evidence, ctx, self.parse, self.name, list_keys=("entries",))
        else:
            yield from R.read_lines(evidence, ctx, self.parse, self.name)


__all__ = ["LB_RESOURCE_TYPES", "GcpLoadBalancerIngestor", "parse_gcp"]
