"""AWS Application Load Balancer access logs.

One gzip file per load-balancer node per 5 minutes, in the S3 layout
``AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/<account>_elasticloadbalancing_<region>_app.<name>.<id>_<end>_<node-ip>_<random>.log.gz``:
an investigation means tens of thousands of small files, so the parse is one vectorised call over
the lines of many files at once.

A line is space separated; some fields are double-quoted, and ALB writes a ``"`` inside them as
``\\x22`` (nginx-style escaping, undone by :func:`.base.finalize`), so a quoted field never contains a
quote. That makes polars' CSV reader (``separator=" "``, ``quote_char='"'``) an exact field splitter,
and the fastest one measured here (about 2.4x a capture-group regex; DESIGN.md). The fields, in
order (AWS "Access log entries"; new fields are appended over the years, so any prefix of 17 or more
fields is a valid line, and anything after field 33 is ignored): see :data:`FIELDS`.

Mapping to the event schema:

* ``ts`` is the leading ``time`` field (when the ALB generated the response, UTC, microseconds);
  ``request_creation_time`` is kept in ``extra``.
* ``client:port`` is the immediate peer of the balancer (a CDN edge or a proxy, if one is in front):
  ALB logs no X-Forwarded-For, so it is the client, private address or not, and it goes straight to
  ``client_ip`` (no trusted-proxy resolution) with ``client_port``.
* ``status`` is ``elb_status_code`` (what the client got); the target's status goes to ``extra``.
* ``bytes_in`` = ``received_bytes``, ``bytes_out`` = ``sent_bytes`` (both include the headers).
* ``duration_ms`` = (request_processing_time + target_processing_time + response_processing_time)
  x 1000, only when none of them is ``-1`` ("not recorded"): the time the balancer spent on the
  request end to end, comparable with nginx's ``$request_time``; null rather than a partial sum.
* ``request_id`` = ``trace_id`` (``X-Amzn-Trace-Id``), which links the request to the target's logs.
* ``observer`` = the ``elb`` field (``app/<name>/<id>``), per row.
* ``extra`` (one JSON object): type, URL port, target, target status, target processing time, TLS
  cipher and protocol, SNI ``domain_name``, ``request_creation_time``, ``actions_executed`` and
  ``conn_trace_id`` on every line; redirect URL, error reason, desync classification and reason, the
  transform fields, and the target lists when they differ from target/target status, only on the
  lines that have them (they are ``-`` on almost every line; half the bytes per event).
  ``target_group_arn``, ``chosen_cert_arn`` and ``matched_rule_priority`` describe the listener's
  configuration, not the request, and are not carried (the last two are not even materialised).
* The request ``METHOD scheme://host:port/uri HTTP/x`` gives method, scheme, host (without the
  port, which goes to ``extra``), path, query and protocol; the URI may contain spaces, so the method
  is split off the left and the protocol off the right. A request that does not read that way
  (``"- http://host:80-/ "``, binary) keeps its raw text in ``request`` and is still an event.

Lines of other AWS logs that share the S3 tree are recognised and rejected with their own reason,
never misparsed: NLB TLS access-log lines (``tls 2.0 …``), ALB connection-log lines
(``<time> <client-ip> <client-port> <listener-port> …``) and Classic ELB lines.
"""

from __future__ import annotations

import re

import polars as pl

from ..secrets import mask_series
from . import _aws
from .base import Detection, FileContext, Ingestor, empty_reject_rows, on_distinct, sniff_lines

#: The fields of an ALB access-log line, in order; the column name used while parsing is ``c<index>``.
FIELDS: tuple[str, ...] = (
    "type",  # 1 http | https | h2 | grpcs | ws | wss
    "time",  # 2 when the response was generated, ISO 8601 UTC with microseconds → ts
    "elb",  # 3 app/<name>/<id> → observer
    "client",  # 4 client:port, the immediate peer → client_ip, client_port
    "target",  # 5 target:port, or - (WAF block, Lambda, no target)
    "request_processing_time",  # 6 seconds, -1 when not recorded
    "target_processing_time",  # 7 seconds, -1
    "response_processing_time",  # 8 seconds, -1
    "elb_status_code",  # 9 → status
    "target_status_code",  # 10 or -
    "received_bytes",  # 11 request size incl. headers → bytes_in
    "sent_bytes",  # 12 response size incl. headers → bytes_out
    "request",  # 13 "METHOD scheme://host:port/uri HTTP/x"
    "user_agent",  # 14 "…" (truncated at 8 KB by ALB)
    "ssl_cipher",  # 15 - on plain HTTP listeners
    "ssl_protocol",  # 16
    "target_group_arn",  # 17 the minimum a line has
    "trace_id",  # 18 "Root=1-…" X-Amzn-Trace-Id → request_id
    "domain_name",  # 19 "SNI name" or "-"
    "chosen_cert_arn",  # 20 "arn…" or "session-reused" or "-"
    "matched_rule_priority",  # 21 0 = default rule, -1 = evaluation error
    "request_creation_time",  # 22 when the request was received (ISO 8601)
    "actions_executed",  # 23 "waf,forward", "fixed-response", …
    "redirect_url",  # 24 "…" or "-"
    "error_reason",  # 25 "AuthInvalidCookie", "LambdaUnhandled", … or "-"
    "target_port_list",  # 26 "ip:port …" (unquoted in old examples)
    "target_status_code_list",  # 27 "200 …" (unquoted in old examples)
    "classification",  # 28 desync mitigation: Acceptable | Ambiguous | Severe | -
    "classification_reason",  # 29 "SpaceInUri", "BadContentLength", …
    "conn_trace_id",  # 30 TID_… links to the connection log
    "transformed_host",  # 31 host after a URL/host-header rewrite
    "transformed_uri",  # 32
    "request_transform_status",  # 33
)
MIN_FIELDS = 17
#: Fields not carried into the events (per-listener configuration, the same on every line of a
#: balancer), so not even materialised by the reader: chosen_cert_arn, matched_rule_priority.
_NOT_READ = (19, 20)

_COL = {name: f"c{i}" for i, name in enumerate(FIELDS)}

# --------------------------------------------------------------------------------------------------
# Recognising lines (str.contains: matching is several times cheaper than capturing).

ALB_LINE, NLB_LINE, CONN_LINE, CLB_LINE = _aws.ALB_LINE, _aws.NLB_LINE, _aws.CONN_LINE, _aws.CLB_LINE

#: The first 17 fields of an ALB line (trial parse for detection; the parse itself splits with the
#: CSV reader): type, time, elb, client:port, target:port, three timings, two status codes, two byte
#: counts, "request", "user_agent", ssl_cipher, ssl_protocol, target_group_arn.
_TRIAL = re.compile(
    r"^(?:https?|h2|grpcs|wss?) \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z [^ ]+ [^ ]+ [^ ]+ "
    r'-?[\d.]+ -?[\d.]+ -?[\d.]+ (?:\d{3}|-) (?:\d{3}|-) -?\d+ -?\d+ "[^"]*" "[^"]*" [^ ]+ [^ ]+ [^ ]+'
)
_NLB = re.compile(NLB_LINE)
_CONN = re.compile(CONN_LINE)
SNIFF_LINES = 50

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"


def _col(name: str) -> pl.Expr:
    return pl.col(_COL[name])


#: extra keys every line carries (null when the line says "-").
_EXTRA_COMMON = (
    "type",
    "port",
    "target",
    "target_status_code",
    "target_processing_time",
    "ssl_cipher",
    "ssl_protocol",
    "domain_name",
    "request_creation_time",
    "actions_executed",
    "conn_trace_id",
)
#: extra keys written only by the lines that have a value for one of them ("-" almost always).
_EXTRA_RARE = (
    "redirect_url",
    "error_reason",
    "target_port_list",  # only when it differs from target (it normally repeats it)
    "target_status_code_list",  # only when it differs from target_status_code
    "classification",
    "classification_reason",
    "transformed_host",
    "transformed_uri",
    "request_transform_status",
)

#: The rare extra fields that may hold text the client sent (masked by the parser itself).
_EXTRA_CLIENT_TEXT = ("redirect_url", "transformed_host", "transformed_uri")


def parse_alb(frame: pl.DataFrame, raw: bytes | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines (``line``, ``source_line``, ``_idx``, maybe ``source_file``…) → (events, rejects).

    ``raw``: the same lines as bytes, when the caller has them (read by the CSV reader directly)."""
    lines, rejects, all_alb = _aws.keep_own_lines(frame, "alb", "ALB")
    if lines.height == 0:
        return pl.DataFrame(), pl.concat(rejects) if rejects else empty_reject_rows()
    rows, rej = _aws.split_fields(lines, len(FIELDS), skip=_NOT_READ, raw=raw if all_alb else None)
    if rej.height:
        rejects.append(rej)

    dash = _aws.null_dash
    rows = rows.with_columns(
        _col("time").str.to_datetime(_TIME_FORMAT, time_unit="us", time_zone="UTC", strict=False).alias("ts"),
        _col("received_bytes").cast(pl.Int64, strict=False).alias("bytes_in"),
        _col("sent_bytes").cast(pl.Int64, strict=False).alias("bytes_out"),
    )
    rows = _aws.reject_malformed(
        rows, rejects, _col("target_group_arn"), ("bytes_in", "bytes_out"), MIN_FIELDS, "ALB"
    )
    rows = rows.with_columns(
        _aws.seconds_ms(_col("request_processing_time")).alias("_rpt"),
        _aws.seconds_ms(_col("target_processing_time")).alias("_tpt"),
        _aws.seconds_ms(_col("response_processing_time")).alias("_spt"),
        *[
            dash(_col(k)).alias(f"x_{k}")
            for k in _EXTRA_COMMON
            if k not in ("port", "target_processing_time")
        ],
        *[dash(_col(k)).alias(f"x_{k}") for k in _EXTRA_RARE],
    )
    # ``extra`` is masked here, field by field: of its fields only these carry client text (the SNI
    # name, and URLs and hosts built from the request); the rest are AWS's own values.
    rows = rows.with_columns(
        on_distinct(rows.get_column("x_domain_name"), mask_series),
        *[mask_series(rows.get_column(f"x_{k}")) for k in _EXTRA_CLIENT_TEXT],
    )
    rows = _aws.with_host_port(rows, _COL["client"], "client_ip", "client_port")
    rows = _aws.split_request(rows, _COL["request"])
    rows = rows.with_columns(
        pl.when(pl.col("x_target_port_list") != pl.col("x_target").fill_null("-")).then(
            pl.col("x_target_port_list")
        ),
        pl.when(pl.col("x_target_status_code_list") != pl.col("x_target_status_code").fill_null("-")).then(
            pl.col("x_target_status_code_list")
        ),
        pl.col("_port").cast(pl.Int32, strict=False).alias("x_port"),
        (pl.col("_tpt") / 1000.0).round(6).alias("x_target_processing_time"),
    )
    rows = rows.with_columns(
        pl.any_horizontal([pl.col(f"x_{k}").is_not_null() for k in _EXTRA_RARE]).alias("_rare")
    )
    columns = [
        *_aws.balancer_event_columns(
            rows,
            elb=_COL["elb"],
            status=_COL["elb_status_code"],
            sent="bytes_out",
            received="bytes_in",
            timings=("_rpt", "_tpt", "_spt"),
            user_agent=_COL["user_agent"],
        ),
        dash(_col("trace_id")).alias("request_id"),
    ]

    def extra(keys: tuple[str, ...]) -> pl.Expr:
        return _aws.json_object({k: pl.col(f"x_{k}") for k in keys}).alias("extra")

    # Lines with a rare field write all keys; the others only the common ones (half the bytes).
    events = rows.select(*columns, extra(_EXTRA_COMMON))
    rare = rows.get_column("_rare")
    if rare.any():
        idx = rare.arg_true()
        full = rows[idx].select(extra(_EXTRA_COMMON + _EXTRA_RARE)).get_column("extra")
        events = events.with_columns(events.get_column("extra").scatter(idx, full))
    return events, pl.concat(rejects) if rejects else empty_reject_rows()


class AlbIngestor(Ingestor):
    name = "alb"
    description = "AWS Application Load Balancer access logs (every field version, 17 to 33 fields)"
    recognised_by = (
        "lines starting '<http|https|h2|grpcs|ws|wss> <ISO time>Z app/…'; trial parse of the head lines; "
        "NLB and connection-log lines in the same tree are recognised and rejected"
    )

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        body = sniff_lines(lines)[:SNIFF_LINES]
        # Cheap literal check first: an ALB, NLB or connection-log line starts the file.
        if not body or not body[0].startswith(("http", "h2 ", "grpcs ", "ws", "tls ", "20")):
            return None
        # Trial parse of the head: the 17 fields every ALB line has (a Python regex per line: detection
        # runs once per file, and ten thousand small files must not pay a vectorised parse each).
        ok = sum(1 for ln in body if _TRIAL.match(ln))
        # NLB and connection-log lines are the same S3 tree's: claimed (and rejected with their
        # reason) rather than left "unknown", but never ahead of a format that parses them.
        kin = sum(1 for ln in body if _NLB.match(ln) or _CONN.match(ln))
        if ok == 0 and kin == 0:
            return None
        conf = 0.9 * ok / len(body) + 0.45 * kin / len(body)
        if ok and " app/" in body[0][:120]:
            conf += 0.05
        if "elasticloadbalancing" in path and "_app." in path:
            conf += 0.04
        how = f"{ok}/{len(body)} head lines parse as ALB access-log lines"
        if kin:
            how += f" ({kin} NLB/connection-log lines, rejected)"
        return Detection(self.name, round(min(conf, 1.0), 3), how, params={}, variant="access")

    premasked = frozenset({"extra"})

    def parse(self, frame: pl.DataFrame, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
        return parse_alb(frame, ctx.raw)


__all__ = ["ALB_LINE", "CONN_LINE", "FIELDS", "NLB_LINE", "AlbIngestor", "parse_alb"]
