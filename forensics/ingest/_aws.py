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

#: Characters a decoded value may not contain to be shown decoded (control characters): the encoded
#: form is then kept, as it is the exact record and safe to display.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def null_dash(expr: pl.Expr) -> pl.Expr:
    """``-`` and empty mean "no value" in every AWS log (FORMATS.md): null."""
    return pl.when(expr.is_in(["-", ""])).then(None).otherwise(expr)


def split_host_port(expr: pl.Expr, brackets: bool = True) -> tuple[pl.Expr, pl.Expr]:
    """``host:port`` → (host, port), split on the LAST colon; ``[v6]:port`` loses its brackets.

    ``-`` gives nulls. An address without a port (``170.01.01.02``) keeps its text as the host, odd
    or not: evidence is kept as written. ``brackets=False`` keeps ``[v6]`` as written (a Host value).
    Cut with a one-group extract and a slice: several times cheaper than a two-group regex.
    """
    value = null_dash(expr)
    port = value.str.extract(r":(\d{1,5})$", 1)
    cut = value.str.len_chars().cast(pl.Int64) - port.str.len_chars().cast(pl.Int64) - 1
    host = pl.when(port.is_null()).then(value).otherwise(value.str.slice(0, cut))
    if brackets:
        host = (
            pl.when(host.str.starts_with("[") & host.str.ends_with("]"))
            .then(host.str.slice(1, host.str.len_chars().cast(pl.Int64) - 2))
            .otherwise(host)
        )
    return host, port.cast(pl.Int32, strict=False)


def with_host_port(
    frame: pl.DataFrame, column: str, host: str, port: str, brackets: bool = True
) -> pl.DataFrame:
    """:func:`split_host_port` of ``column`` into ``host`` and ``port``, each stage computed once."""
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


def seconds_ms(expr: pl.Expr) -> pl.Expr:
    """A time in seconds (text) → milliseconds; ``-1`` ("not recorded") and ``-`` → null."""
    value = expr.cast(pl.Float64, strict=False)
    return pl.when(value >= 0).then(value * 1000.0)


def lines_as_csv(lines: pl.Series) -> bytes:
    """The lines as one newline-terminated byte string, for polars' CSV reader (no copy per line)."""
    arr = (lines + "\n").to_arrow(compat_level=pl.CompatLevel.oldest())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)
    start, end = int(offsets[arr.offset]), int(offsets[arr.offset + len(arr)])
    return memoryview(arr.buffers()[2])[start:end].tobytes()


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
    "split_host_port",
    "with_host_port",
]
