"""Pieces shared by the AWS ingestors (ALB, Classic ELB, CloudFront, API Gateway).

Kept apart from :mod:`.base` so the AWS formats can evolve together; every helper is a polars
expression or a whole-column operation, never a loop per line.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

import numpy as np
import polars as pl
import pyarrow as pa

from .base import empty_reject_rows, reject_frame

#: Characters a decoded value may not contain to be shown decoded (control characters): the encoded
#: form is then kept, as it is the exact record and safe to display.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def null_dash(expr: pl.Expr) -> pl.Expr:
    """``-`` and empty mean "no value" in every AWS log (FORMATS.md): null."""
    return pl.when(~expr.is_in(["-", ""])).then(expr)  # keeps the input's name


def with_host_port(
    frame: pl.DataFrame, column: str, host: str, port: str, brackets: bool = True
) -> pl.DataFrame:
    """``host:port`` in ``column`` → ``host`` and ``port`` columns, split on the LAST colon (FORMATS.md:
    AWS balancers always write the port, so a bare IPv6 client's last group is its port); ``[v6]:port``
    loses its brackets unless ``brackets=False`` (a Host value). ``-`` gives nulls; odd addresses
    (``170.01.01.02``) keep their text. Sources whose port is optional use
    :func:`._records.split_address`. One-group extract and a slice: cheaper than a two-group regex."""
    value = null_dash(pl.col(column))
    frame = frame.with_columns(value.str.extract(r":(\d{1,5})$", 1).alias("_hp_port"))
    cut = value.str.len_chars().cast(pl.Int64) - pl.col("_hp_port").str.len_chars().cast(pl.Int64) - 1
    frame = frame.with_columns(
        pl.when(pl.col("_hp_port").is_null()).then(value).otherwise(value.str.slice(0, cut)).alias(host),
        pl.col("_hp_port").cast(pl.Int32, strict=False).alias(port),
    ).drop("_hp_port")
    if brackets:
        h = pl.col(host)
        frame = frame.with_columns(
            pl.when(h.str.starts_with("[") & h.str.ends_with("]"))
            .then(h.str.slice(1, h.str.len_chars().cast(pl.Int64) - 2))
            .otherwise(h)
            .alias(host)
        )
    return frame


#: The request line: method off the left, protocol off the right, the URL between may hold spaces.
_REQUEST_RE = (
    r"^(?P<method>[A-Za-z][A-Za-z0-9_-]*) "  # GET, POST, … (ALB writes "-" for unreadable requests)
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://"  # http | https | ws | wss
    r"(?:[^/?#@\s]*@)?"  # userinfo ("user:password@"): dropped, a secret and never the host
    r"(?P<host>\[[0-9A-Fa-f:.]*\]|[^/?#:\[\]]*)"  # host name or address; IPv6 in brackets
    r"(?::(?P<port>\d+))?"  # ALB always writes the port
    r"(?P<path>[^?]*?)"  # the path, spaces included (SpaceInUri)
    r"(?:\?(?P<query>.*?))?"  # the query string, without "?"
    r" (?P<protocol>HTTP/[0-9.]+)$"  # HTTP/1.1, HTTP/2.0
)


def _fields(expr: pl.Expr, names: list[str]) -> pl.Expr:
    """A struct (from split_exact/splitn) renamed so that it can be unnested into named columns."""
    return expr.struct.rename_fields(names)


def split_request(rows: pl.DataFrame, column: str) -> pl.DataFrame:
    """``METHOD scheme://host:port/path?query HTTP/x`` → method, scheme, host, _port, path, query,
    protocol; what does not read that way keeps its raw text in ``request_line`` for finalize().

    The common case (exactly three space-separated parts) is cut with ``split_exact``/``splitn``,
    several times cheaper than a capture regex; a URI with spaces (SpaceInUri) goes through
    :data:`_REQUEST_RE`, which splits the method off the left and the protocol off the right. Each
    stage is materialised once (eager polars does not share common subexpressions).
    """
    rows = rows.with_columns(
        _fields(
            null_dash(pl.col(column)).str.split_exact(" ", 3), ["method", "_url", "protocol", "_more"]
        ).alias("_s")
    ).unnest("_s")
    rows = rows.with_columns(
        _fields(pl.col("_url").str.splitn("://", 2), ["scheme", "_after"]).alias("_s")
    ).unnest("_s")
    rows = rows.with_columns(
        _fields(pl.col("_after").str.splitn("/", 2), ["_authority", "_path_query"]).alias("_s")
    ).unnest("_s")
    rows = rows.with_columns(
        _fields(pl.col("_path_query").str.splitn("?", 2), ["path", "query"]).alias("_s"),
        (
            pl.col("_more").is_null()
            & pl.col("protocol").str.starts_with("HTTP/")
            & pl.col("method").str.contains(r"^[A-Za-z][A-Za-z0-9_-]*$")
            & pl.col("_after").is_not_null()
            & ~pl.col("_authority").str.contains(r"[?#@]")  # userinfo: the regex drops it
        )
        .fill_null(False)
        .alias("_fast"),
    ).unnest("_s")
    rows = rows.with_columns(
        pl.col("scheme").str.to_lowercase(), (pl.lit("/") + pl.col("path")).fill_null("/").alias("path")
    ).drop("_url", "_more", "_after", "_path_query")
    if "request_line" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, pl.String).alias("request_line"))
    fast = rows.get_column("_fast")
    if not fast.all():
        # The few other rows: the regex on those alone, scattered back in place (filtering and
        # re-concatenating the wide frame would copy every column of every row).
        idx = (~fast).arg_true()
        rq = pl.col("_rq").struct
        readable = rq.field("method").is_not_null()
        path = rq.field("path")
        slow = rows.select(
            pl.col(column).gather(idx).str.extract_groups(_REQUEST_RE).alias("_rq"),
            pl.col(column).gather(idx).alias("_raw"),
        ).select(
            rq.field("method").alias("method"),
            rq.field("scheme").str.to_lowercase().alias("scheme"),
            pl.when(readable)
            .then(pl.concat_str([rq.field("host"), pl.lit(":") + rq.field("port")], ignore_nulls=True))
            .alias("_authority"),
            pl.when(readable).then(pl.when(path == "").then(pl.lit("/")).otherwise(path)).alias("path"),
            rq.field("query").alias("query"),
            rq.field("protocol").alias("protocol"),
            # Not "METHOD URL HTTP/x": finalize() reads what it can (a relative target) or keeps it raw.
            pl.when(~readable).then(null_dash(pl.col("_raw"))).alias("request_line"),
        )
        rows = rows.with_columns(
            rows.get_column(name).cast(slow.schema[name]).scatter(idx, slow.get_column(name))
            for name in slow.columns
        )
    rows = with_host_port(rows, "_authority", "host", "_port", brackets=False)
    return rows.drop("_authority", "_fast")


def seconds_ms(expr: pl.Expr) -> pl.Expr:
    """A time in seconds (text) → milliseconds; ``-1`` ("not recorded") and ``-`` → null."""
    value = expr.cast(pl.Float64, strict=False)
    return pl.when(value >= 0).then(value * 1000.0)


def lines_as_csv(lines: pl.Series) -> bytes:
    """The lines joined by newlines as one byte string, for polars' CSV reader.

    ``str.join`` builds the text in one pass (measured here: 0.2 s per 1M ALB lines, a third of
    appending a newline to each line); the one string is then handed over as bytes.
    """
    arr = lines.str.join("\n").to_arrow(compat_level=pl.CompatLevel.oldest())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)
    start, end = int(offsets[arr.offset]), int(offsets[arr.offset + 1])
    return memoryview(arr.buffers()[2])[start:end].tobytes() + b"\n"


#: Trailing fields beyond the documented ones that a line may carry and still be read.
EXTRA_FIELDS = 64


def split_fields(
    lines: pl.DataFrame, n_fields: int, skip: tuple[int, ...] = (), raw: bytes | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Space-separated lines with ``"``-quoted fields → (rows with ``c0``…, rejects); row i is line i.

    polars' CSV reader splits (``separator=" "``, ``quote_char='"'``): exact for AWS balancer logs,
    which write a quote inside a quoted field as ``\\x22``, and the fastest splitter measured. Missing
    trailing fields are null, extra ones are dropped; fields in ``skip`` are not materialised. ``raw``,
    when given, is the same lines as bytes (read directly, no re-join).
    """
    # Room for fields AWS may add after the documented ones (FORMATS.md: accept extra trailing fields):
    # the reader sizes its rows on the first line and refuses one wider than the schema; unread here.
    schema = {f"c{i}": pl.String for i in range(n_fields + EXTRA_FIELDS)}
    columns = [i for i in range(n_fields) if i not in skip]

    def read(frame: pl.DataFrame) -> pl.DataFrame:
        # The batch's own bytes when they are exactly these lines (no copy, no re-join).
        source = raw if raw is not None and frame is lines else lines_as_csv(frame.get_column("line"))
        return pl.read_csv(
            source,
            columns=columns,
            has_header=False,
            separator=" ",
            quote_char='"',
            schema=schema,
            missing_columns="insert",
            truncate_ragged_lines=True,
            empty_string_is_null=False,
            infer_schema=False,
        )

    def attempt(frame: pl.DataFrame) -> pl.DataFrame | None:
        try:
            fields = read(frame)
        except (pl.exceptions.ComputeError, pl.exceptions.SchemaError):  # unquotable field, far too many
            return None
        return fields if fields.height == frame.height else None

    # The fast path: one read. An unclosed quote would make the reader run on into the next line
    # (a row-count mismatch) or fail; the last line of the batch cannot show either, so it is checked.
    odd = pl.col("line").str.count_matches('"', literal=True) % 2 == 1
    last_odd = lines.tail(1).select(odd).item() if lines.height else False
    fields = attempt(lines) if not last_odd else None
    rejects = []
    if fields is None:
        # The slow path, for the rare batch with a damaged line: find the lines and read the rest.
        reason = (
            pl.when(odd)
            .then(pl.lit("truncated line: a quoted field is never closed"))
            .when(~pl.col("line").str.contains(_WELL_QUOTED))
            .then(pl.lit("malformed line: a quote inside an unquoted field or after a closing quote"))
        )
        lines = lines.with_columns(reason.alias("_why"))
        bad = lines.filter(pl.col("_why").is_not_null())
        if bad.height:
            rejects.append(reject_frame(bad, pl.col("_why")))
        lines = lines.filter(pl.col("_why").is_null()).drop("_why")
        fields = attempt(lines) if lines.height else None
        if fields is None:
            fields = pl.DataFrame(schema={f"c{i}": pl.String for i in columns})
        if fields.height != lines.height:  # should not happen: reject the batch rather than misalign
            rejects.append(reject_frame(lines, "could not split the fields of this batch"))
            lines, fields = lines.clear(), pl.DataFrame(schema={f"c{i}": pl.String for i in columns})
    out = pl.concat([lines.drop("line"), fields], how="horizontal")
    return out, (pl.concat(rejects) if rejects else empty_reject_rows())


#: A line whose fields are each unquoted (no quote) or wholly quoted: what the CSV reader splits exactly.
_WELL_QUOTED = r'^(?:[^ "]*|"[^"]*")(?: (?:[^ "]*|"[^"]*"))*$'


def json_object(fields: dict[str, pl.Expr]) -> pl.Expr:
    """``extra``: one JSON object per row (keys in a fixed order, nulls kept as null)."""
    return pl.struct([e.alias(k) for k, e in fields.items()]).struct.json_encode()


def _percent_decode(value: str) -> str:
    try:
        text = unquote_to_bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return value
    return value if _CONTROL_RE.search(text) else text


def percent_decode_once(values: pl.Series) -> pl.Series:
    """Remove ONE layer of ``%XX`` encoding (CloudFront's own), so values equal what other sources log.

    ``%2520`` → ``%20``, ``Mozilla/5.0%20(X11)`` → ``Mozilla/5.0 (X11)``; ``+`` is not a space here.
    Vectorised selection; the distinct encoded values are decoded once each. A value whose decoded
    bytes are not UTF-8 text, or contain control characters, is kept encoded.
    """
    hit = values.str.contains("%", literal=True).fill_null(False)
    if not hit.any():
        return values
    uniq = values.filter(hit).unique()
    mapping = {v: _percent_decode(v) for v in uniq.to_list()}
    return values.replace_strict(mapping, default=values, return_dtype=pl.String)


__all__ = [
    "json_object",
    "lines_as_csv",
    "null_dash",
    "percent_decode_once",
    "seconds_ms",
    "split_fields",
    "split_request",
    "with_host_port",
]


# --------------------------------------------------------------------------------------------------
# The kinds of line one S3 tree can hold: each parser keeps its own and rejects the others by name.

_ISO_UTC = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z"
#: An ALB access-log line: request type, then the ISO time.
ALB_LINE = r"^(?:https?|h2|grpcs|wss?) " + _ISO_UTC + " "
#: A Network Load Balancer TLS access-log line: type "tls", log version, time without a zone.
NLB_LINE = r"^tls \d+\.\d+ \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}"
#: An ALB connection-log line: time, client IP, client port, listener port (no type, no balancer).
CONN_LINE = r"^" + _ISO_UTC + r" [0-9A-Fa-f:.]+ \d+ \d+ "
#: A Classic ELB access-log line: time, balancer name, client:port.
CLB_LINE = r"^" + _ISO_UTC + r" [^ ]+ [^ ]+:\d+ "

#: (kind, regex, name) in the order a line is tested; the connection log before Classic ELB (both
#: start with a time; the connection log's client and ports are separate fields).
LINE_KINDS: tuple[tuple[str, str, str], ...] = (
    ("alb", ALB_LINE, "ALB access-log line"),
    ("nlb", NLB_LINE, "NLB access-log line"),
    ("conn", CONN_LINE, "ALB connection-log line"),
    ("elb_classic", CLB_LINE, "Classic ELB access-log line"),
)


def keep_own_lines(
    frame: pl.DataFrame, own: str, label: str
) -> tuple[pl.DataFrame, list[pl.DataFrame], bool]:
    """(the lines of kind ``own``, rejects for the others with their kind as reason, whether every line
    was ``own``). ``label`` names the format in "does not match the … format"."""
    own_re = next(rx for kind, rx, _ in LINE_KINDS if kind == own)
    frame = frame.with_columns(pl.col("line").str.contains(own_re).alias("_own"))
    other = frame.filter(~pl.col("_own"))
    if other.height == 0:
        return frame.drop("_own"), [], True
    line = pl.col("line")
    reason = pl.when(line.str.strip_chars() == "").then(pl.lit("blank line"))
    for kind, rx, name in LINE_KINDS:
        if kind != own:
            suffix = "" if kind == "conn" else f", not {label}"
            reason = reason.when(line.str.contains(rx)).then(pl.lit(name + suffix))
    reason = reason.otherwise(pl.lit(f"does not match the {label} access-log format"))
    return frame.filter(pl.col("_own")).drop("_own"), [reject_frame(other, reason)], False


def reject_malformed(
    rows: pl.DataFrame,
    rejects: list[pl.DataFrame],
    last_field: pl.Expr,
    byte_counts: tuple[str, str],
    min_fields: int,
    fmt: str,
) -> pl.DataFrame:
    """Keep the rows with a timestamp, all fields (the last expected one is present) and numeric byte
    counts; the others become rejects with the first reason that applies."""
    ts_ok = pl.col("ts").is_not_null()
    long_enough = last_field.is_not_null() & (last_field != "")  # "" = missing field
    numbers = pl.col(byte_counts[0]).is_not_null() & pl.col(byte_counts[1]).is_not_null()
    ok = ts_ok & long_enough & numbers
    bad = rows.filter(~ok)
    if bad.height:
        reason = (
            pl.when(~ts_ok)
            .then(pl.lit("unparseable timestamp"))
            .when(~long_enough)
            .then(pl.lit(f"truncated line: fewer than {min_fields} fields"))
            .otherwise(pl.lit(f"does not match the {fmt} access-log format (byte counts are not numbers)"))
        )
        rejects.append(reject_frame(bad, reason))
        rows = rows.filter(ok)
    return rows


def balancer_event_columns(
    rows: pl.DataFrame,
    *,
    elb: str,
    status: str,
    sent: str,
    received: str,
    timings: tuple[str, str, str],
    user_agent: str,
) -> list[pl.Expr | str]:
    """The event columns ALB and Classic ELB lines share, from their split fields.

    ``sent``/``received`` are integer columns (-1, "not recorded", is never a size); ``timings`` the three
    processing times in ms (null when not recorded): the duration is their sum only when all three are
    known. Client, request and URL columns come from :func:`with_host_port` and :func:`split_request`.
    """
    first, second, third = (pl.col(t) for t in timings)
    return [
        *[c for c in ("source_line", "source_file", "_file_observer") if c in rows.columns],
        "ts",
        pl.col(elb).alias("observer"),
        "client_ip",
        "client_port",
        "method",
        "scheme",
        "host",
        "path",
        "query",
        "protocol",
        "request_line",
        pl.col(status).cast(pl.Int16, strict=False).alias("status"),
        pl.when(pl.col(sent) >= 0).then(pl.col(sent)).alias("bytes_out"),
        pl.when(pl.col(received) >= 0).then(pl.col(received)).alias("bytes_in"),
        pl.when(first.is_not_null() & second.is_not_null() & third.is_not_null())
        .then((first + second + third).round(3))
        .alias("duration_ms"),
        null_dash(pl.col(user_agent)).alias("user_agent"),
    ]
