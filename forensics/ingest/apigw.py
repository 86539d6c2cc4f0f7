"""AWS API Gateway access logs (REST and HTTP APIs), as exported from CloudWatch Logs.

An access log is whatever ``$context`` template the API owner chose (AWS "Access logging for REST
APIs", "Variables for access logging"). Read here:

* the console's **CLF** preset, with or without the newer ``$context.extendedRequestId`` at the end
  and with or without the space before the quote the current preset lacks::

    $context.identity.sourceIp $context.identity.caller $context.identity.user [$context.requestTime]
    "$context.httpMethod $context.resourcePath $context.protocol" $context.status $context.responseLength
    $context.requestId

* the console's **JSON** preset (``requestId, ip, caller, user, requestTime, httpMethod, resourcePath,
  status, protocol, responseLength``, all strings) and the common extras of custom JSON templates
  (:data:`KEYS`: ``path``, ``domainName``, ``identity.apiKeyId``, ``authorizer.principalId``,
  ``integrationLatency``, ``responseLatency``, ``userAgent``, …; flat dotted keys or nested objects);
  other keys go to ``extra``;
* **CloudWatch Logs envelopes** (``{"messageType":"DATA_MESSAGE", …, "logEvents":[{"id","timestamp",
  "message"}]}``, what a subscription filter delivers through Firehose to S3): one per line, or as a
  JSON document (pretty-printed, concatenated ``}{`` without newlines, an array of them, or the
  ``{"events": [...]}`` of ``aws logs filter-log-events``). Each ``logEvents[].message`` is one access-log
  record; ``CONTROL_MESSAGE`` health checks are rejected with their reason;
* lines of a CloudWatch **export to S3** (``<ISO time> <message>``).

Line files are read line by line (one record a line; an envelope line yields its records); JSON
documents are streamed with ijson, record by record, never loaded whole. Counts are of records:
events + rejects = records read. A record's ``source_line`` is its line; in a JSON document, the
record's ordinal (the document has no useful lines).

Mapping to the event schema:

* ``ts`` = ``requestTime`` (CLF time with offset) or ``requestTimeEpoch`` (ms); else the CloudWatch
  event timestamp (when the record was ingested, a little later).
* ``client_ip`` = ``identity.sourceIp``, the address API Gateway saw (for edge-optimized APIs AWS
  fills it with the viewer's address); no X-Forwarded-For resolution.
* ``principal``: ``authorizer.principalId`` (a Lambda/Cognito authorizer's principal), else the IAM
  ``identity.user``/``caller``, else ``identity.apiKeyId`` (auth ``apikey``; the key *id*, not a
  secret). A logged API key value (``identity.apiKey``) is fingerprinted, never stored.
* ``path`` = ``$context.path`` when logged; the presets only log ``resourcePath``, the resource
  *template* (``/customers/{id}``): then it is the path, object ids are not in the log, and
  ``extra.resourcePath`` says so.
* ``status``, ``bytes_out`` = ``responseLength``, ``protocol``, ``request_id`` = ``requestId``,
  ``duration_ms`` = ``responseLatency`` (else ``integrationLatency``), ``host`` = ``domainName``,
  ``observer`` = ``apiId[/stage]`` when logged, else the CloudWatch log group, else the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import ijson
import polars as pl

from ..errors import InputReadError
from . import _aws
from ._records import (
    DOCUMENT_MAX_DEPTH,
    BlockStream,
    ValueBuilder,
    head_object,
    line_reject_rows,
    load_json,
    record_reject_rows,
)
from ._time import CLF_TIME
from .base import (
    Detection,
    FileContext,
    Ingestor,
    detect_by_line_kind,
    empty_reject_rows,
    reject_frame,
    sniff_lines,
)
from .reader import EvidenceFile, iter_line_chunks, prefetch

# --------------------------------------------------------------------------------------------------
# The CLF preset, one named fragment per $context variable.
CLF_RE = (
    r'^(?P<ip>[^ "\[\]]+) '  # $context.identity.sourceIp
    r'(?P<caller>[^ "]+) '  # $context.identity.caller (IAM principal that signed the request) or -
    r'(?P<user>[^ "]+) '  # $context.identity.user (IAM principal to authorise) or -
    r"\[(?P<requestTime>\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] ?"  # [$context.requestTime]
    r'"(?P<httpMethod>[A-Z]+) (?P<resourcePath>[^"]*?) (?P<protocol>[^ "]+)" '  # "method resource protocol"
    r"(?P<status>\d{3}|-) "  # $context.status
    r"(?P<responseLength>\d+|-) "  # $context.responseLength
    r"(?P<requestId>[0-9A-Za-z][0-9A-Za-z_=+/-]*)"  # $context.requestId (a UUID; never quoted)
    r"(?: (?P<extendedRequestId>[0-9A-Za-z][0-9A-Za-z_=+/-]*))?$"  # $context.extendedRequestId (newer preset)
)
_CLF = re.compile(CLF_RE)

#: A CloudWatch Logs export-to-S3 line: the event's ingestion time, a space, the message.
_EXPORT_PREFIX = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z "
_EXPORT = re.compile(_EXPORT_PREFIX)

#: Canonical field → the keys a JSON template may use for it (flattened with dots).
KEYS: dict[str, tuple[str, ...]] = {
    "requestId": ("requestId", "requestID", "request_id"),
    "extendedRequestId": ("extendedRequestId",),
    "ip": ("ip", "sourceIp", "identity.sourceIp", "sourceIP", "clientIp"),
    "caller": ("caller", "identity.caller"),
    "user": ("user", "identity.user", "identity.userArn", "userArn"),
    "requestTime": ("requestTime",),
    "requestTimeEpoch": ("requestTimeEpoch",),
    "httpMethod": ("httpMethod", "http.method", "method"),
    "resourcePath": ("resourcePath",),
    "path": ("path", "http.path"),
    "status": ("status", "statusCode"),
    "protocol": ("protocol", "http.protocol"),
    "responseLength": ("responseLength",),
    "apiKeyId": ("apiKeyId", "identity.apiKeyId"),
    "apiKey": ("apiKey", "identity.apiKey"),  # the key itself: fingerprinted
    "principalId": ("authorizer.principalId", "principalId"),
    "domainName": ("domainName",),
    "userAgent": ("userAgent", "identity.userAgent"),
    "responseLatency": ("responseLatency",),
    "integrationLatency": ("integrationLatency", "integration.latency"),
    "apiId": ("apiId",),
    "stage": ("stage",),
}
_ALIAS = {alias: canon for canon, aliases in KEYS.items() for alias in aliases}
_CONTROL_REASON = "CloudWatch Logs control message, not an access-log record"
DOCUMENT_BATCH = 50_000


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return None if v in ("-", "") else v
    return json.dumps(v) if isinstance(v, list | dict) else str(v)


def _is_envelope(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("logEvents"), list)


# --------------------------------------------------------------------------------------------------
# Records → event columns (vectorised where the record is text, per record where it is JSON).


def _expand(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines → records: export prefixes stripped, envelope lines expanded into their messages.

    Returns (records with ``message``, ``_cw_ms``, ``_log_group``, ``_idx``, ``source_line``, …; rejects).
    """
    line = pl.col("line")
    frame = frame.with_columns(
        line.str.extract(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z) ", 1)
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC", strict=False)
        .alias("_cw_ts"),
        line.str.replace(_EXPORT_PREFIX, "").alias("message"),
    ).drop("line")
    rejects = []
    blank = frame.filter(pl.col("message").str.strip_chars() == "")
    if blank.height:
        rejects.append(reject_frame(blank, "blank line"))
    frame = frame.filter(pl.col("message").str.strip_chars() != "")
    is_env = pl.col("message").str.contains('"logEvents"', literal=True) & pl.col("message").str.starts_with(
        "{"
    )
    plain = frame.filter(~is_env).with_columns(pl.lit(None, pl.String).alias("_log_group"))
    env = frame.filter(is_env)
    if env.height == 0:
        return plain, pl.concat(rejects) if rejects else empty_reject_rows()
    meta = [c for c in env.columns if c not in ("message", "_cw_ts")]
    rows: dict[str, list[Any]] = {c: [] for c in [*meta, "message", "_cw_ts", "_log_group"]}
    bad: list[tuple[int, int, str]] = []
    for rec in env.iter_rows(named=True):
        obj, why = load_json(rec["message"])
        if why is not None:
            bad.append((rec["_idx"], rec["source_line"], why))
            continue
        if not _is_envelope(obj):
            bad.append((rec["_idx"], rec["source_line"], "JSON object without API Gateway access-log keys"))
            continue
        control = obj.get("messageType") == "CONTROL_MESSAGE"
        for ev in obj["logEvents"]:
            msg = ev.get("message") if isinstance(ev, dict) else None
            if control or not isinstance(msg, str):
                bad.append(
                    (
                        rec["_idx"],
                        rec["source_line"],
                        _CONTROL_REASON if control else "log event without a message",
                    )
                )
                continue
            for c in meta:
                rows[c].append(rec[c])
            rows["message"].append(msg)
            stamp = ev.get("timestamp")
            rows["_cw_ts"].append(int(stamp) * 1000 if isinstance(stamp, int | float) else None)
            rows["_log_group"].append(obj.get("logGroup"))
    if bad:
        rejects.append(
            pl.DataFrame(
                {
                    "_idx": pl.Series([b[0] for b in bad], dtype=pl.UInt32),
                    "source_line": pl.Series([b[1] for b in bad], dtype=pl.UInt64),
                    "reason": [b[2] for b in bad],
                }
            )
        )
    expanded = pl.DataFrame(
        {k: v for k, v in rows.items() if k != "_cw_ts"},
        schema={**{c: env.schema[c] for c in meta}, "message": pl.String, "_log_group": pl.String},
    ).with_columns(
        pl.Series("_cw_ts", rows["_cw_ts"], dtype=pl.Int64)
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC")
    )
    records = pl.concat([plain, expanded.select(plain.columns)], how="vertical_relaxed")
    return records, pl.concat(rejects) if rejects else empty_reject_rows()


def _json_records(records: pl.DataFrame) -> tuple[pl.DataFrame, list[tuple[int, int, str]]]:
    """JSON access-log records → canonical string columns (+ ``_extra``); bad ones as (idx, line, reason).

    Per record with the C JSON decoder: templates are user-defined (nested objects, unquoted numbers),
    which a fixed-schema vectorised decode would reject wholesale.
    """
    canon: dict[str, list[Any]] = {k: [] for k in KEYS}
    extra: list[str | None] = []
    keep: list[bool] = []
    bad: list[tuple[int, int, str]] = []
    for idx, line_no, msg in records.select("_idx", "source_line", "message").iter_rows():
        obj, why = load_json(msg)
        if why is not None:
            bad.append((idx, line_no, why))
            keep.append(False)
            continue
        if not isinstance(obj, dict):
            bad.append((idx, line_no, "not a JSON object"))
            keep.append(False)
            continue
        flat = _flatten(obj)
        if not any(k in flat for k in (*KEYS["requestId"], *KEYS["extendedRequestId"])):
            bad.append((idx, line_no, "JSON object without API Gateway access-log keys (requestId)"))
            keep.append(False)
            continue
        keep.append(True)
        seen: dict[str, Any] = {}
        rest: dict[str, Any] = {}
        for k, v in flat.items():
            c = _ALIAS.get(k)
            if c is not None and c not in seen:
                seen[c] = v
            else:
                rest[k] = v
        for c in canon:
            canon[c].append(_text(seen.get(c)))
        rest = {k: v for k, v in rest.items() if v not in ("-", "", None)}
        extra.append(json.dumps(rest, ensure_ascii=False) if rest else None)
    kept = records.filter(pl.Series(keep, dtype=pl.Boolean)) if records.height else records
    cols = pl.DataFrame(
        {k: pl.Series(v, dtype=pl.String) for k, v in canon.items()}
        | {"_extra": pl.Series(extra, dtype=pl.String)}
    )
    return pl.concat([kept, cols], how="horizontal"), bad


def _clf_records(records: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """CLF-preset records → canonical string columns; lines that are not the preset → rejects."""
    rec = records.with_columns(pl.col("message").str.extract_groups(CLF_RE).alias("_g"))
    ok = pl.col("_g").struct.field("requestId").is_not_null()
    bad = rec.filter(~ok)
    rej = reject_frame(bad, "does not match the API Gateway CLF preset or a JSON access-log record")
    rec = rec.filter(ok).unnest("_g")
    rec = rec.with_columns(
        *[pl.col(c).pipe(_aws.null_dash) for c in _CLF.groupindex],
        pl.lit(None, pl.String).alias("_extra"),
    )
    return rec, rej


def parse_records(records: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Records (``message``, ``source_line``, ``_idx``, ``_cw_ts``, ``_log_group``…) → (events, rejects)."""
    is_json = pl.col("message").str.starts_with("{")
    clf, clf_rej = _clf_records(records.filter(~is_json))
    js, bad = _json_records(records.filter(is_json))
    rejects = [clf_rej] if clf_rej.height else []
    if bad:
        rejects.append(
            pl.DataFrame(
                {
                    "_idx": pl.Series([b[0] for b in bad], dtype=pl.UInt32),
                    "source_line": pl.Series([b[1] for b in bad], dtype=pl.UInt64),
                    "reason": [b[2] for b in bad],
                }
            )
        )
    rows = pl.concat([clf, js], how="diagonal_relaxed")
    for c in [*KEYS, "_extra"]:
        if c not in rows.columns:
            rows = rows.with_columns(pl.lit(None, pl.String).alias(c))
    epoch = pl.col("requestTimeEpoch").cast(pl.Int64, strict=False)
    rows = rows.with_columns(
        pl.coalesce(
            pl.col("requestTime")
            .str.to_datetime(CLF_TIME, time_unit="us", strict=False)
            .dt.convert_time_zone("UTC"),
            pl.from_epoch(epoch, time_unit="ms").dt.cast_time_unit("us").dt.replace_time_zone("UTC"),
            pl.col("_cw_ts"),
        ).alias("ts"),
    )
    bad_ts = rows.filter(pl.col("ts").is_null())
    if bad_ts.height:
        rejects.append(reject_frame(bad_ts, "unparseable timestamp"))
        rows = rows.filter(pl.col("ts").is_not_null())
    principal = pl.coalesce("principalId", "user", "caller", "apiKeyId")
    auth = (
        pl.when(
            pl.col("principalId").is_not_null()
            | pl.col("user").is_not_null()
            | pl.col("caller").is_not_null()
        )
        .then(pl.lit("unknown"))
        .when(pl.col("apiKeyId").is_not_null())
        .then(pl.lit("apikey"))
    )
    observer = pl.when(pl.col("apiId").is_not_null()).then(
        pl.concat_str([pl.col("apiId"), pl.lit("/") + pl.col("stage")], ignore_nulls=True)
    )
    extra = _aws.json_object(
        {
            "resourcePath": pl.col("resourcePath"),
            "extendedRequestId": pl.col("extendedRequestId"),
            "caller": pl.col("caller"),
            "user": pl.col("user"),
            "apiKeyId": pl.col("apiKeyId"),
            "principalId": pl.col("principalId"),
            "integrationLatency": pl.col("integrationLatency"),
            "logGroup": pl.col("_log_group"),
        }
    )
    # The template's other keys are merged into the same object.
    extra = (
        pl.when(pl.col("_extra").is_not_null())
        .then(
            pl.concat_str([extra.str.strip_suffix("}"), pl.lit(","), pl.col("_extra").str.strip_prefix("{")])
        )
        .otherwise(extra)
    )
    path = pl.coalesce("path", "resourcePath")
    events = rows.select(
        *[c for c in ("source_line", "source_file", "_file_observer") if c in rows.columns],
        "ts",
        pl.coalesce(observer, pl.col("_log_group")).alias("observer"),
        pl.col("ip").alias("client_ip"),
        principal.alias("principal"),
        auth.alias("auth"),
        pl.col("apiKey").alias("api_key"),
        pl.col("httpMethod").alias("method"),
        pl.col("domainName").alias("host"),
        path.str.splitn("?", 2).struct.field("field_0").alias("path"),
        path.str.splitn("?", 2).struct.field("field_1").alias("query"),
        pl.col("protocol"),
        pl.col("status").cast(pl.Int16, strict=False).alias("status"),
        pl.col("responseLength").cast(pl.Int64, strict=False).alias("bytes_out"),
        pl.coalesce(
            pl.col("responseLatency").cast(pl.Float64, strict=False),
            pl.col("integrationLatency").cast(pl.Float64, strict=False),
        ).alias("duration_ms"),
        pl.col("userAgent").alias("user_agent"),
        pl.col("requestId").alias("request_id"),
        extra.alias("extra"),
    )
    return events, pl.concat(rejects, how="diagonal_relaxed") if rejects else empty_reject_rows()


def parse_apigw(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines (``line``, ``source_line``, ``_idx``…) → (events, rejects)."""
    records, rej = _expand(frame)
    events, rej2 = parse_records(records)
    parts = [r for r in (rej, rej2) if r.height]
    return events, pl.concat(parts, how="diagonal_relaxed") if parts else empty_reject_rows()


# --------------------------------------------------------------------------------------------------
# Detection


def _record_kind(text: str) -> str | None:
    """ "clf", "json" or "envelope" when ``text`` is an API Gateway access-log record (or envelope)."""
    text = _EXPORT.sub("", text, count=1)
    if _CLF.match(text):
        return "clf"
    obj = head_object(text)
    if obj is None:
        return None
    if _is_envelope(obj):
        msgs = [e.get("message") for e in obj["logEvents"] if isinstance(e, dict)]
        return "envelope" if any(isinstance(m, str) and _record_kind(m) for m in msgs[:5]) else None
    flat = _flatten(obj)
    if any(k in flat for k in KEYS["requestId"]) and any(
        k in flat for k in (*KEYS["httpMethod"], *KEYS["status"], *KEYS["ip"])
    ):
        return "json"
    return None


class ApiGatewayIngestor(Ingestor):
    name = "apigw"
    description = (
        "AWS API Gateway access logs: CLF and JSON presets, custom JSON, CloudWatch Logs envelopes/exports"
    )
    recognised_by = (
        "head lines that are the CLF preset ending in a requestId, JSON objects with requestId and "
        "httpMethod/status/ip, or CloudWatch envelopes ('logEvents') whose messages are those"
    )
    line_based = False
    invalid_utf8 = "replace"

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        body = sniff_lines(lines)[:50]
        if not body:
            return None
        first = body[0].lstrip()
        if not (first[:1] in "{[" or first[:1].isdigit() or first[:1] in "abcdefABCDEF:"):
            return None  # cheap literal check: JSON, an address or an export timestamp starts the file
        lines_claim = detect_by_line_kind(
            self.name, body, _record_kind, "API Gateway access-log records", 0.92, {"mode": "lines"}
        )
        if lines_claim is not None:
            return lines_claim
        # A JSON document (pretty-printed or concatenated envelopes, filter-log-events output).
        head = "\n".join(body)
        wrapped = first[:1] in "{[" and ('"logEvents"' in head or '"events"' in head) and '"message"' in head
        if wrapped and ("requestId" in head or re.search(r'\] ?\\?"[A-Z]+ ', head)):
            return Detection(
                self.name,
                0.9,
                "a CloudWatch Logs JSON document whose messages are API Gateway access-log records",
                params={"mode": "document"},
                variant="document",
            )
        return None

    def parse(self, frame: pl.DataFrame, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
        return parse_apigw(frame)

    def read_document(
        self, evidence: EvidenceFile, ctx: FileContext
    ) -> Iterator[tuple[pl.DataFrame, pl.DataFrame, int]]:
        if ctx.detection.params.get("mode") == "document":
            yield from self._read_json_document(evidence, ctx)
            return
        chunks = prefetch(
            iter_line_chunks(evidence.blocks(), max_line=ctx.options.max_line, invalid="replace")
        )
        for chunk in chunks:
            frame = chunk.frame()
            too_long = list(chunk.too_long)
            rejects = []
            if too_long:
                long_rows = frame.filter(pl.col("_idx").is_in(too_long))
                rejects.append(
                    reject_frame(long_rows, f"line longer than {ctx.options.max_line} bytes").with_columns(
                        pl.col("_idx").cast(pl.UInt32)
                    )
                )
                frame = frame.filter(~pl.col("_idx").is_in(too_long))
            events, rej = parse_apigw(frame) if frame.height else (pl.DataFrame(), empty_reject_rows())
            if rej.height:
                rejects.append(rej.select("_idx", "source_line", "reason"))
            rej_rows = line_reject_rows(
                pl.concat(rejects) if rejects else empty_reject_rows(), chunk, ctx, self.name
            )
            yield events, rej_rows, events.height + rej_rows.height

    def _read_json_document(
        self, evidence: EvidenceFile, ctx: FileContext
    ) -> Iterator[tuple[pl.DataFrame, pl.DataFrame, int]]:
        stream = BlockStream(evidence.blocks(), max_depth=DOCUMENT_MAX_DEPTH)
        batch: list[tuple[str | None, int | None, str | None, str | None]] = []
        ordinal = 0
        error: str | None = None
        try:
            for message, stamp, group, control in _log_events(stream):
                batch.append((message, stamp, group, control))
                if len(batch) >= DOCUMENT_BATCH:
                    yield self._document_batch(batch, ordinal, ctx)
                    ordinal += len(batch)
                    batch = []
        except (ijson.JSONError, ValueError) as exc:
            error = f"invalid JSON after {ordinal + len(batch)} records: {str(exc).splitlines()[0][:200]}"
        if batch:
            yield self._document_batch(batch, ordinal, ctx)
        stream.drain()
        if stream.error is not None:
            raise stream.error
        if error is not None:
            raise InputReadError(error)

    def _document_batch(
        self,
        batch: list[tuple[str | None, int | None, str | None, str | None]],
        ordinal: int,
        ctx: FileContext,
    ) -> tuple[pl.DataFrame, pl.DataFrame, int]:
        n = len(batch)
        records = pl.DataFrame(
            {
                "message": pl.Series([b[0] for b in batch], dtype=pl.String),
                "source_line": pl.int_range(ordinal + 1, ordinal + n + 1, dtype=pl.UInt64, eager=True),
                "_idx": pl.int_range(0, n, dtype=pl.UInt32, eager=True),
                "_cw_ts": pl.Series([b[1] for b in batch], dtype=pl.Int64)
                .cast(pl.Datetime("ms"))
                .dt.cast_time_unit("us")
                .dt.replace_time_zone("UTC"),
                "_log_group": pl.Series([b[2] for b in batch], dtype=pl.String),
            }
        )
        special = [(i, b[3]) for i, b in enumerate(batch) if b[3] is not None or b[0] is None]
        rejects = []
        if special:
            idx = [i for i, _ in special]
            rejects.append(
                records.filter(pl.col("_idx").is_in(idx)).select(
                    "_idx",
                    "source_line",
                    pl.Series(
                        "reason", [r or "log event without a message" for _, r in special], dtype=pl.String
                    ),
                )
            )
            records = records.filter(~pl.col("_idx").is_in(idx))
        events, rej = parse_records(records) if records.height else (pl.DataFrame(), empty_reject_rows())
        if rej.height:
            rejects.append(rej.select("_idx", "source_line", "reason"))
        texts = [b[0] if b[0] is not None else "" for b in batch]
        rej_all = pl.concat(rejects) if rejects else empty_reject_rows()
        rows = record_reject_rows(rej_all, texts, ctx, self.name)
        return events, rows, n


# --------------------------------------------------------------------------------------------------
# Streaming a JSON document: the log events, whatever the wrapping.


#: Where log events sit: an envelope (or concatenated envelopes), an array of envelopes, the
#: ``events`` of ``aws logs filter-log-events``/``get-log-events`` output.
_EVENT_PREFIXES = {"logEvents.item", "item.logEvents.item", "events.item"}


def _log_events(stream: BlockStream) -> Iterator[tuple[str | None, int | None, str | None, str | None]]:
    """(message, timestamp ms, log group, reject reason) per log event of the document(s)."""
    group: str | None = None
    control = False
    builder: ValueBuilder | None = None
    for prefix, event, value in ijson.parse(stream, multiple_values=True, use_float=True):
        if builder is not None:
            if builder.add(event, value):
                ev, builder = builder.value, None
                if isinstance(ev, dict):
                    msg = ev.get("message")
                    stamp = ev.get("timestamp")
                    yield (
                        msg if isinstance(msg, str) else None,
                        int(stamp) if isinstance(stamp, int | float) else None,
                        group,
                        _CONTROL_REASON if control else None,
                    )
            continue
        if prefix in ("logGroup", "item.logGroup") and event == "string":
            group = value
        elif prefix in ("messageType", "item.messageType") and event == "string":
            control = value == "CONTROL_MESSAGE"
        elif prefix in _EVENT_PREFIXES and event == "start_map":
            builder = ValueBuilder(event, value)
        elif prefix == "" and event == "start_map":
            group, control = None, False  # a new top-level envelope


__all__ = ["CLF_RE", "KEYS", "ApiGatewayIngestor", "parse_apigw", "parse_records"]
