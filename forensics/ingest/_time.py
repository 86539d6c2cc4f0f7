"""Timestamps → UTC, with one documented rule for local times that have no offset.

Sources that write an offset (``$time_local``, ``%t``, ISO 8601 with ``Z``/``+hh:mm``) are converted
row by row, so a log that crosses a DST change, or files from servers in different zones, all land
in UTC exactly.

Sources that write local time without an offset need ``--tz ZONE``. At DST changes two cases exist:

* **ambiguous** (the repeated hour when clocks go back): the *earlier* instant (still on summer time)
  is taken, as the log is written in order and the first pass through the hour comes first;
* **non-existent** (the skipped hour when clocks go forward): the time is read with the offset in
  force just *before* the change, which is what a clock that had not yet jumped would have meant
  (equivalently: shifted forward by the DST delta, as pandas' ``shift_forward``).

Both are counted, and the counts go into the manifest entry of the file.
"""

from __future__ import annotations

import polars as pl

CLF_TIME = "%d/%b/%Y:%H:%M:%S %z"
UTC = pl.Datetime("us", "UTC")


def parse_clf_time(expr: pl.Expr) -> pl.Expr:
    """``10/Oct/2000:13:55:36 -0700`` → UTC; unparseable → null (the caller rejects the line)."""
    return expr.str.to_datetime(CLF_TIME, time_unit="us", strict=False, cache=True).dt.convert_time_zone(
        "UTC"
    )


def parse_iso_time(expr: pl.Expr) -> pl.Expr:
    """ISO 8601 / RFC 3339 with ``Z`` or an offset and optional fraction → UTC."""
    return (
        expr.str.replace(r"Z$", "+00:00")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", strict=False, cache=True)
        .dt.convert_time_zone("UTC")
    )


def parse_epoch_seconds(expr: pl.Expr) -> pl.Expr:
    """``1672531200.123`` (nginx ``$msec``, Caddy ``ts``) → UTC."""
    micros = (expr.cast(pl.Float64, strict=False) * 1_000_000).round(0).cast(pl.Int64)
    return pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC")


def localize(naive: pl.Series, tz: str) -> tuple[pl.Series, pl.Series, pl.Series]:
    """Naive local wall-clock times in ``tz`` → (UTC, ambiguous flags, non-existent flags), by the DST rule."""
    first = naive.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    latest = naive.dt.replace_time_zone(tz, ambiguous="latest", non_existent="null")
    ambiguous = ((first != latest) & first.is_not_null()).fill_null(False)
    gap = (first.is_null() & naive.is_not_null()).fill_null(False)
    if gap.any():
        idx = gap.arg_true()
        # The offset in force before the jump: localise one hour earlier, then add the hour back.
        before = naive.gather(idx).dt.offset_by("-1h")
        shifted = before.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null").dt.offset_by(
            "1h"
        )
        first = first.scatter(idx, shifted)
    return first.dt.convert_time_zone("UTC"), ambiguous.alias("ambiguous"), gap.alias("nonexistent")
