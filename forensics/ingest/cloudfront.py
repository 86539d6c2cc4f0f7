"""AWS CloudFront standard logs (access logs delivered to S3, W3C extended format).

Files are ``<prefix>/<DistributionID>.YYYY-MM-DD-HH.<unique>.gz``; each starts with ``#Version: 1.0``
and ``#Fields: …`` and has one TAB-separated line per viewer request, *not* in time order. The
columns come from the ``#Fields`` header that precedes a line in the same file: older files have
fewer fields, files concatenated by hand repeat the headers mid-file, and some copies come without
any header, in which case the current 33-field layout (:data:`FIELDS`) is assumed when the line's
field count fits (at least :data:`MIN_FIELDS`; fields after the 33rd are ignored).

CloudFront URL-encodes field values itself (spaces, control and non-ASCII bytes, ``%`` and
``<>"#{}|\\^~[]`'``): that layer is removed ONCE, so values equal what other sources log for the same
request (``Mozilla/5.0%20(X11)`` → ``Mozilla/5.0 (X11)``, a path logged as ``/a%2520b`` → ``/a%20b``,
which is what the client sent). A decoded backslash is written ``\\x5C`` (nginx's escape), which
:func:`.base.finalize` turns back into ``\\``, so a client's literal ``\\x41`` stays ``\\x41``.

Mapping to the event schema:

* ``ts`` = ``date`` + ``time`` (UTC; when the edge finished the response).
* The client is ``c-ip``, the viewer's address as the edge saw it, with ``client_port`` = ``c-port``.
  ``x-forwarded-for`` (what a proxy in front of the viewer claims) goes to the intermediate ``xff``
  column and is resolved by the project's one rule (:mod:`forensics.clients`): it is believed only
  when ``c-ip`` itself is a trusted proxy (``--trusted-proxy``, private ranges), and then the
  right-most untrusted address is the client. A public ``c-ip`` — the normal case — is the client.
* ``status`` = ``sc-status``; ``000`` (the viewer closed the connection before a response) is kept as
  0, not null: the log does state that no response was sent.
* ``bytes_out`` = ``sc-bytes``, ``bytes_in`` = ``cs-bytes`` (both with headers);
  ``duration_ms`` = ``time-taken`` x 1000.
* ``host`` = ``x-host-header`` (the Host the viewer asked for; ``cs(Host)`` when absent),
  ``scheme`` = ``cs-protocol``, ``protocol`` = ``cs-protocol-version``.
* ``request_id`` = ``x-edge-request-id``; the ``cs(Cookie)`` value, when logged, is fingerprinted
  into ``principal`` (auth ``cookie``) and never stored in clear.
* ``observer`` = the distribution ID from the file name, else ``cs(Host)`` (the distribution's own
  ``*.cloudfront.net`` name, one per distribution; ``x-host-header`` is one of possibly several
  alternate names and is chosen by the viewer).
* Every other field goes to ``extra`` under its W3C name (edge location, result types, TLS, content
  type and length, time to first byte, ranges, fields newer than this module).
"""

from __future__ import annotations

import re

import polars as pl

from . import _aws
from .base import Detection, FileContext, Ingestor, empty_reject_rows, reject_frame, sniff_lines

#: The current standard-log layout (33 fields), the one assumed for lines without a header.
FIELDS: tuple[str, ...] = (
    "date",  # 1 YYYY-MM-DD (UTC)
    "time",  # 2 hh:mm:ss (UTC), when the edge finished responding → ts
    "x-edge-location",  # 3 edge POP, e.g. LAX1
    "sc-bytes",  # 4 bytes served incl. headers → bytes_out
    "c-ip",  # 5 viewer address → client_ip
    "cs-method",  # 6 → method
    "cs(Host)",  # 7 the distribution's *.cloudfront.net name
    "cs-uri-stem",  # 8 path → path (CloudFront-encoded)
    "sc-status",  # 9 → status (000: viewer closed the connection first)
    "cs(Referer)",  # 10 → referer
    "cs(User-Agent)",  # 11 → user_agent
    "cs-uri-query",  # 12 → query
    "cs(Cookie)",  # 13 → fingerprinted into principal
    "x-edge-result-type",  # 14 Hit, Miss, Error, …
    "x-edge-request-id",  # 15 → request_id
    "x-host-header",  # 16 the Host the viewer sent → host
    "cs-protocol",  # 17 http, https, ws, wss → scheme
    "cs-bytes",  # 18 request bytes incl. headers → bytes_in
    "time-taken",  # 19 seconds → duration_ms
    "x-forwarded-for",  # 20 what a proxy in front of the viewer says
    "ssl-protocol",  # 21
    "ssl-cipher",  # 22
    "x-edge-response-result-type",  # 23
    "cs-protocol-version",  # 24 HTTP/2.0 → protocol
    "fle-status",  # 25 field-level encryption
    "fle-encrypted-fields",  # 26
    "c-port",  # 27 → client_port
    "time-to-first-byte",  # 28 seconds
    "x-edge-detailed-result-type",  # 29
    "sc-content-type",  # 30
    "sc-content-len",  # 31
    "sc-range-start",  # 32
    "sc-range-end",  # 33
)
#: The fewest fields a headerless line may have to be read with :data:`FIELDS` (up to cs-uri-query).
MIN_FIELDS = 12

#: Fields that become event (or intermediate) columns; every other field goes to ``extra``.
_COLUMNS = {
    "c-ip": "remote_addr",
    "c-port": "client_port",
    "cs-method": "method",
    "cs-uri-stem": "path",
    "cs-uri-query": "query",
    "sc-status": "status",
    "cs(Referer)": "referer",
    "cs(User-Agent)": "user_agent",
    "cs(Cookie)": "cookie",
    "x-edge-request-id": "request_id",
    "x-host-header": "host",
    "cs-protocol": "scheme",
    "cs-bytes": "bytes_in",
    "sc-bytes": "bytes_out",
    "time-taken": "duration_ms",
    "x-forwarded-for": "xff",
    "cs-protocol-version": "protocol",
}
#: Text columns that finalize() unescapes nginx-style: a decoded backslash is written \x5C for them.
_BACKSLASH_AS_ESCAPE = {"path", "query", "referer", "user_agent", "host"}

_DATA_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}\t\d{2}:\d{2}:\d{2}\t")
#: ``<DistributionID>.YYYY-MM-DD-HH.<unique>[.gz]`` at the end of the path.
_FILE_NAME = r"(?:^|/)([A-Z0-9]{8,20})\.\d{4}-\d{2}-\d{2}-\d{2}\.[0-9A-Za-z]+(?:\.gz)?$"
_HEADER_REASON = "W3C header line (#Version/#Fields), not a request"


def _names(header: str) -> tuple[str, ...]:
    """``#Fields: date time …`` → ("date", "time", …)."""
    return tuple(header.split(":", 1)[1].split())


def _layouts(frame: pl.DataFrame, carry: dict[str, tuple[str, ...]]) -> tuple[pl.DataFrame, list]:
    """Give each line the index of its layout: the last ``#Fields`` before it in its file, else what
    an earlier chunk of the file declared (``carry``), else the headerless default (index 0)."""
    frame = frame.with_columns(
        pl.col("line").str.starts_with("#Fields:").cum_sum().over("source_file").alias("_hdr")
    )
    headers = (
        frame.filter(pl.col("line").str.starts_with("#Fields:"))
        .select("source_file", "_hdr", "line")
        .iter_rows()
    )
    layouts: list[tuple[str, ...] | None] = [None]  # 0: no header known
    keys: dict[tuple[str, int], int] = {}
    for src, hdr, line in headers:
        keys[(src, hdr)] = len(layouts)
        layouts.append(_names(line))
    first_line = frame.group_by("source_file").agg(pl.col("source_line").min()).iter_rows()
    for src, first in first_line:
        if first > 1 and src in carry:  # a later chunk of a file whose header came before
            keys[(src, 0)] = len(layouts)
            layouts.append(carry[src])
    table = pl.DataFrame(
        {
            "source_file": [k[0] for k in keys],
            "_hdr": pl.Series([k[1] for k in keys], dtype=frame.schema["_hdr"]),
            "_layout": [v for v in keys.values()],
        },
        schema={"source_file": pl.String, "_hdr": frame.schema["_hdr"], "_layout": pl.Int64},
    )
    frame = frame.join(table, on=["source_file", "_hdr"], how="left", maintain_order="left")
    frame = frame.with_columns(pl.col("_layout").fill_null(0))
    # What the next chunk of each file inherits.
    for src, layout in frame.group_by("source_file").agg(pl.col("_layout").last()).iter_rows():
        if layouts[layout] is not None:
            carry[src] = layouts[layout]
    return frame, layouts


def _decode(values: pl.Series, escape_backslash: bool) -> pl.Series:
    """CloudFront's layer off; for columns finalize() unescapes, a decoded ``\\`` is written ``\\x5C``."""
    decoded = _aws.percent_decode_once(values)
    if escape_backslash:
        encoded = (
            values.str.contains("%5C", literal=True) | values.str.contains("%5c", literal=True)
        ).fill_null(False)
        if encoded.any():
            decoded = pl.select(
                pl.when(encoded).then(decoded.str.replace_all("\\", "\\x5C", literal=True)).otherwise(decoded)
            ).to_series()
    return decoded


def _events(rows: pl.DataFrame, names: tuple[str, ...]) -> pl.DataFrame:
    """Rows of one layout (``_f``: the list of TAB-separated values) → event columns."""
    idx = {n: i for i, n in enumerate(names)}

    def field(name: str) -> pl.Expr:
        if name not in idx:
            return pl.lit(None, pl.String)
        return _aws.null_dash(pl.col("_f").list.get(idx[name], null_on_oob=True))

    extra_names = [n for n in names if n not in _COLUMNS and n not in ("date", "time")]
    out = rows.select(
        *[c for c in ("_idx", "source_line", "source_file", "_file_observer") if c in rows.columns],
        pl.concat_str([field("date"), field("time")], separator=" ")
        .str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", time_zone="UTC", strict=False)
        .alias("ts"),
        *[field(name).alias(target) for name, target in _COLUMNS.items()],
        *[field(n).alias(f"x:{n}") for n in extra_names],
    )
    text = [
        "path",
        "query",
        "referer",
        "user_agent",
        "cookie",
        "xff",
        "host",
        *[f"x:{n}" for n in extra_names],
    ]
    out = out.with_columns([_decode(out.get_column(c), c in _BACKSLASH_AS_ESCAPE).alias(c) for c in text])
    extra = {n: pl.col(f"x:{n}") for n in extra_names}
    return out.with_columns(
        pl.col("x:cs(Host)").alias("_cs_host")
        if "cs(Host)" in idx
        else pl.lit(None, pl.String).alias("_cs_host"),
        (_aws.json_object(extra) if extra else pl.lit(None, pl.String)).alias("extra"),
    ).drop([f"x:{n}" for n in extra_names])


def parse_cloudfront(
    frame: pl.DataFrame, source_file: str, carry: dict[str, tuple[str, ...]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines (``line``, ``source_line``, ``_idx``, maybe ``source_file``…) → (events, rejects)."""
    if "source_file" not in frame.columns:
        frame = frame.with_columns(pl.lit(source_file).alias("source_file"))
    frame = frame.with_columns(pl.col("source_file").cast(pl.String))
    for src in frame.filter(pl.col("source_line") == 1).get_column("source_file").to_list():
        carry.pop(src, None)  # a file starting again (same path ingested anew) inherits nothing
    frame, layouts = _layouts(frame, carry)
    line = pl.col("line")
    blank = line.str.strip_chars() == ""
    header = line.str.starts_with("#")
    rejects = []
    other = frame.filter(blank | header)
    if other.height:
        rejects.append(
            reject_frame(other, pl.when(blank).then(pl.lit("blank line")).otherwise(pl.lit(_HEADER_REASON)))
        )
    rows = frame.filter(~blank & ~header).with_columns(line.str.split("\t").alias("_f"))
    parts = []
    for layout_id in rows.get_column("_layout").unique().sort().to_list():
        part = rows.filter(pl.col("_layout") == layout_id)
        names = layouts[layout_id]
        if names is None:  # no header: the current layout, when the field count fits
            fits = pl.col("_f").list.len() >= MIN_FIELDS
            short = part.filter(~fits)
            if short.height:
                rejects.append(
                    reject_frame(short, f"no #Fields header and fewer than {MIN_FIELDS} TAB-separated fields")
                )
            part = part.filter(fits)
            names = FIELDS
        if part.height:
            parts.append(_events(part, names))
    if not parts:
        return pl.DataFrame(), pl.concat(rejects) if rejects else empty_reject_rows()
    events = pl.concat(parts, how="diagonal_relaxed")
    ok = pl.col("ts").is_not_null() & pl.col("remote_addr").is_not_null() & pl.col("method").is_not_null()
    bad = events.filter(~ok)
    if bad.height:
        rejects.append(
            reject_frame(
                bad, "does not match the CloudFront standard-log layout (date, time, c-ip, cs-method)"
            )
        )
        events = events.filter(ok)
    distribution = pl.col("source_file").str.extract(_FILE_NAME, 1)
    events = events.with_columns(
        pl.coalesce(distribution, pl.col("_cs_host")).alias("observer"),
        pl.coalesce(pl.col("host"), pl.col("_cs_host")).alias("host"),
        pl.col("client_port").cast(pl.Int32, strict=False),
        pl.col("status").cast(pl.Int16, strict=False),
        pl.col("bytes_out").cast(pl.Int64, strict=False),
        pl.col("bytes_in").cast(pl.Int64, strict=False),
        (pl.col("duration_ms").cast(pl.Float64, strict=False) * 1000.0).round(3),
        pl.col("scheme").str.to_lowercase(),
    ).drop("_cs_host", "_idx")
    return events, pl.concat(rejects) if rejects else empty_reject_rows()


class CloudFrontIngestor(Ingestor):
    name = "cloudfront"
    description = "AWS CloudFront standard logs (W3C, TAB-separated; columns from each #Fields header)"
    recognised_by = "'#Version: 1.0' / '#Fields: date time x-edge-location …' headers or TAB lines 'YYYY-MM-DD<TAB>hh:mm:ss<TAB>…'"

    def __init__(self) -> None:
        # The #Fields layout each file declared, for the next chunk of a big file (source_file → names).
        self._carry: dict[str, tuple[str, ...]] = {}

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        body = sniff_lines(lines)[:50]
        if not body or not (body[0].startswith("#") or "\t" in body[0]):  # cheap literal check
            return None
        names = FIELDS
        header = data = ok = 0
        for ln in body:
            if ln.startswith("#Fields:"):
                names = _names(ln)
                header += 1
            elif ln.startswith("#"):
                header += 1
            else:
                data += 1
                ok += _trial(ln, names)
        if ok == 0 and not (
            header and any("x-edge-location" in ln for ln in body if ln.startswith("#Fields:"))
        ):
            return None
        conf = 0.95 * ok / data if data else 0.9
        if re.search(_FILE_NAME, path):
            conf = min(1.0, conf + 0.04)
        how = f"{ok}/{data} head lines parse as CloudFront standard-log lines" + (
            f" ({header} header lines)" if header else " (no header: current 33-field layout)"
        )
        return Detection(self.name, round(conf, 3), how, params={}, variant="standard")

    def parse(self, frame: pl.DataFrame, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
        if len(self._carry) > 100_000:  # bounded: only a big file's next chunk needs its entry
            self._carry.clear()
        return parse_cloudfront(frame, ctx.source_file, self._carry)


def _trial(line: str, names: tuple[str, ...]) -> bool:
    """Does a data line read as a CloudFront request under ``names``?"""
    if not _DATA_LINE.match(line):
        return False
    values = line.split("\t")
    at = {n: i for i, n in enumerate(names)}
    if len(values) < min(len(names), MIN_FIELDS):
        return False
    try:
        ip = values[at["c-ip"]]
        method = values[at["cs-method"]]
        status = values[at["sc-status"]]
    except (KeyError, IndexError):
        return False
    return bool(re.match(r"^[0-9A-Fa-f:.]+$", ip) and method.isalpha() and status.isdigit())


__all__ = ["FIELDS", "CloudFrontIngestor", "parse_cloudfront"]
