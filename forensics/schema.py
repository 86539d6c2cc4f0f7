"""The event and reject schemas: the only definition of what every ingestor yields.

Every ingestor produces a frame with any subset of these columns; :func:`conform` adds the missing
ones as nulls, casts, and orders them, so the event store has exactly one shape whatever the source.
"""

from __future__ import annotations

import polars as pl

#: One normalised request. Documented column by column in DESIGN.md ("Event schema").
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),
    "source_format": pl.Categorical(),
    "observer": pl.Categorical(),
    "source_file": pl.Categorical(),
    "source_line": pl.UInt64(),
    "client_ip": pl.String(),
    "peer_ip": pl.String(),
    "client_port": pl.Int32(),
    "principal": pl.String(),
    "auth": pl.Categorical(),
    "method": pl.String(),
    "scheme": pl.String(),
    "host": pl.String(),
    "path": pl.String(),
    "query": pl.String(),
    "protocol": pl.String(),
    "request": pl.String(),
    "endpoint": pl.String(),
    "status": pl.Int16(),
    "bytes_out": pl.Int64(),
    "bytes_in": pl.Int64(),
    "duration_ms": pl.Float64(),
    "user_agent": pl.String(),
    "referer": pl.String(),
    "request_id": pl.String(),
    "pii_kinds": pl.List(pl.String()),
    "extra": pl.String(),
}

EVENT_COLUMNS: list[str] = list(EVENT_SCHEMA)

#: Authentication kinds an event can carry (``auth`` column); null means the source does not say.
AUTH_KINDS = ("none", "basic", "bearer", "apikey", "cookie", "unknown")

#: One line that did not parse. ``text`` is masked (credentials fingerprinted) and truncated.
REJECT_SCHEMA: dict[str, pl.DataType] = {
    "source_file": pl.Categorical(),
    "source_format": pl.Categorical(),
    "source_line": pl.UInt64(),
    "byte_offset": pl.UInt64(),
    "line_sha256": pl.String(),
    "reason": pl.String(),
    "text": pl.String(),
}

#: Column added to the event files on disk for hive partitioning (UTC day).
PARTITION_COLUMN = "date"

#: Longest excerpt of a rejected line kept in rejects/ (the sha256 covers the whole line).
REJECT_TEXT_MAX = 2000


def _conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    if frame.width == 0 or frame.height == 0:
        # Selecting literals from a frame without columns would yield one row of nulls.
        return pl.DataFrame(schema=schema) if frame.width == 0 else frame.head(0).pipe(_conform_cols, schema)
    return _conform_cols(frame, schema)


def _conform_cols(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    exprs = []
    for name, dtype in schema.items():
        if name in frame.columns:
            col = pl.col(name)
            exprs.append(col if frame.schema[name] == dtype else col.cast(dtype))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(exprs)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """Return ``frame`` with exactly the event columns, in order, with their types."""
    return _conform(frame, EVENT_SCHEMA)


def conform_rejects(frame: pl.DataFrame) -> pl.DataFrame:
    """Return ``frame`` with exactly the reject columns, in order, with their types."""
    return _conform(frame, REJECT_SCHEMA)


def empty_events() -> pl.DataFrame:
    """An event frame with no rows: what every pass must accept."""
    return pl.DataFrame(schema=EVENT_SCHEMA)


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_SCHEMA)
