"""AWS Classic Load Balancer (ELB) access logs.

Plain ``.log`` files (not compressed by AWS), one per node per interval, in
``AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/<account>_elasticloadbalancing_<region>_<name>_<end>_<ip>_<random>.log``.
A line is space separated with two (older lines) or more double-quoted fields; see :data:`FIELDS`
(AWS "Access log entries" for Classic Load Balancers). Lines written before the 2015 additions end
after ``"request"`` (12 fields); any extra trailing field is ignored.

Mapping to the event schema (as for ALB, :mod:`.alb`):

* ``ts`` is ``timestamp``, which for a Classic Load Balancer is when the request was *received*
  (ALB's leading field is when the response was sent).
* ``client:port`` is the immediate peer → ``client_ip``, ``client_port`` (no X-Forwarded-For in the
  log). Odd addresses such as ``170.01.01.02`` (leading zeros, as anonymised in real samples) are kept
  as written: the text is the evidence.
* TCP and SSL listeners log ``"- - - "`` for the request, ``-`` for both status codes and ``"-"`` for
  the user agent: the event is a connection with its byte counts; ``request`` stays null and
  ``extra.listener`` says ``tcp``.
* ``duration_ms`` = (request + backend + response processing time) x 1000 when none is ``-1``.
* ``observer`` = the load balancer name.
"""

from __future__ import annotations

import re

import polars as pl

from . import _aws
from .base import Detection, FileContext, Ingestor, empty_reject_rows, sniff_lines

#: The fields of a Classic ELB access-log line, in order; parse columns are ``c<index>``.
FIELDS: tuple[str, ...] = (
    "timestamp",  # 1 when the request was received, ISO 8601 UTC, microseconds → ts
    "elb",  # 2 load balancer name → observer
    "client",  # 3 client:port → client_ip, client_port
    "backend",  # 4 backend:port, or - when no instance took the request
    "request_processing_time",  # 5 seconds, -1 when not recorded
    "backend_processing_time",  # 6 seconds, -1
    "response_processing_time",  # 7 seconds, -1
    "elb_status_code",  # 8 → status; - on TCP listeners
    "backend_status_code",  # 9 or -
    "received_bytes",  # 10 → bytes_in
    "sent_bytes",  # 11 → bytes_out
    "request",  # 12 "METHOD scheme://host:port/uri HTTP/x", "- - - " on TCP listeners
    "user_agent",  # 13 "…" (since 2015)
    "ssl_cipher",  # 14 - unless an HTTPS/SSL listener
    "ssl_protocol",  # 15
)
MIN_FIELDS = 12

_COL = {name: f"c{i}" for i, name in enumerate(FIELDS)}
CLB_LINE = _aws.CLB_LINE
#: What a TCP or SSL listener writes in place of the request.
TCP_REQUEST = "- - - "
#: The 12 fields every Classic ELB line has (trial parse for detection): timestamp, elb, client:port,
#: backend:port, three timings, two status codes, two byte counts, "request".
_TRIAL = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z [^ ]+ [^ ]+:\d+ [^ ]+ "
    r'-?[\d.]+ -?[\d.]+ -?[\d.]+ (?:\d{3}|-) (?:\d{3}|-) -?\d+ -?\d+ "[^"]*"'
)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"


def _col(name: str) -> pl.Expr:
    return pl.col(_COL[name])


def parse_elb(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines (``line``, ``source_line``, ``_idx``, maybe ``source_file``…) → (events, rejects)."""
    lines, rejects, _ = _aws.keep_own_lines(frame, "elb_classic", "Classic ELB")
    if lines.height == 0:
        return pl.DataFrame(), pl.concat(rejects) if rejects else empty_reject_rows()
    rows, rej = _aws.split_fields(lines, len(FIELDS))
    if rej.height:
        rejects.append(rej)

    rows = rows.with_columns(
        _col("timestamp")
        .str.to_datetime(_TIME_FORMAT, time_unit="us", time_zone="UTC", strict=False)
        .alias("ts"),
        _col("received_bytes").cast(pl.Int64, strict=False).alias("_rx"),
        _col("sent_bytes").cast(pl.Int64, strict=False).alias("_tx"),
    )
    rows = _aws.reject_malformed(rows, rejects, _col("request"), ("_rx", "_tx"), MIN_FIELDS, "Classic ELB")

    dash = _aws.null_dash
    tcp = _col("request") == TCP_REQUEST
    rows = rows.with_columns(
        _aws.seconds_ms(_col("request_processing_time")).alias("_rpt"),
        _aws.seconds_ms(_col("backend_processing_time")).alias("_bpt"),
        _aws.seconds_ms(_col("response_processing_time")).alias("_spt"),
        tcp.alias("_tcp"),
        pl.when(~tcp).then(_col("request")).alias("_request"),
    )
    rows = _aws.with_host_port(rows, _COL["client"], "client_ip", "client_port")
    rows = _aws.split_request(rows, "_request")
    events = rows.select(
        *_aws.balancer_event_columns(
            rows,
            elb=_COL["elb"],
            status=_COL["elb_status_code"],
            sent="_tx",
            received="_rx",
            timings=("_rpt", "_bpt", "_spt"),
            user_agent=_COL["user_agent"],
        ),
        _aws.json_object(
            {
                "listener": pl.when(pl.col("_tcp")).then(pl.lit("tcp")),
                "port": pl.col("_port").cast(pl.Int32, strict=False),
                "backend": dash(_col("backend")),
                "backend_status_code": dash(_col("backend_status_code")),
                "backend_processing_time": (pl.col("_bpt") / 1000.0).round(6),
                "ssl_cipher": dash(_col("ssl_cipher")),
                "ssl_protocol": dash(_col("ssl_protocol")),
            }
        ).alias("extra"),
    )
    return events, pl.concat(rejects) if rejects else empty_reject_rows()


class ElbClassicIngestor(Ingestor):
    name = "elb_classic"
    description = "AWS Classic Load Balancer (ELB) access logs (12-15 fields, HTTP/HTTPS/TCP/SSL listeners)"
    recognised_by = (
        "lines starting '<ISO time>Z <name> <ip>:<port> <ip>:<port>|-'; trial parse of the head lines"
    )

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        body = sniff_lines(lines)[:50]
        if not body or not body[0][:4].isdigit():  # cheap literal check: an ISO date starts the line
            return None
        ok = sum(1 for ln in body if _TRIAL.match(ln))  # trial parse of the 12 fields every line has
        if ok == 0:
            return None
        return Detection(
            self.name,
            round(0.95 * ok / len(body), 3),
            f"{ok}/{len(body)} head lines parse as Classic ELB access-log lines",
            params={},
            variant="access",
        )

    def parse(self, frame: pl.DataFrame, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
        return parse_elb(frame)


__all__ = ["CLB_LINE", "FIELDS", "ElbClassicIngestor", "parse_elb"]
