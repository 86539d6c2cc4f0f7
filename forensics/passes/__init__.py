"""Analytic passes: pure functions over the events LazyFrame.

Each pass takes prepared events (:func:`prepare`) and the configuration and returns findings (and, where
it examined clients without flagging them, cleared entries). :mod:`forensics.analyze` runs them, links
actors, numbers the findings and writes the outputs.

Prepared events carry, beyond the schema:

* ``client``: the identity a per-client pass judges (the resolved client address);
* ``object_id``: the object a request is about, from the first id placeholder of the endpoint template
  (``/customers/{id}/usage`` → the customer id) or an id-like query parameter (``?customerId=123``),
  normalised (numeric ids without leading zeros, percent-encoding removed, hex lower-cased);
* ``id_slot``: where it came from (``path`` or ``query:<name>``), and ``endpoint_key``: the endpoint, with
  ``?name={id}`` appended for query slots, so a walk over ``/customer?customerId=…`` is one endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

OK_STATUS = (200, 299)


@dataclass
class Context:
    """What every pass may read besides the events."""

    config: dict[str, Any]
    first_ts: datetime | None  # first and last event of the whole evidence (for censoring)
    last_ts: datetime | None
    since: datetime | None = None  # the reporting range (baselines always use everything)
    until: datetime | None = None
    pii: dict[tuple[str, str], dict[str, Any]] | None = None  # (method, endpoint) → inventory facts
    members: dict[str, list[str]] | None = None  # linked actor key → its addresses (see .actors)

    def addresses(self, client: str) -> list[str]:
        """The addresses behind a ``client`` value (an address, or a linked actor's key)."""
        return list((self.members or {}).get(client, [client]))

    def label(self, client: str) -> str:
        members = (self.members or {}).get(client)
        return f"{len(members)} linked addresses" if members else client


def _query_name_pattern(config: dict[str, Any]) -> str:
    pattern = config["objects"]["query_id_params"]
    flags = ""
    if pattern.startswith("(?i)"):
        flags, pattern = "(?i)", pattern[4:]
    pattern = pattern.removeprefix("^").removesuffix("$")
    return flags + r"(?:^|&)(" + pattern + r")=([A-Za-z0-9._%@+-]{1,64})(?:&|$)"


def prepare(events: pl.LazyFrame, config: dict[str, Any]) -> pl.LazyFrame:
    """Add ``client``, ``object_id``, ``id_slot`` and ``endpoint_key`` (see the module docstring)."""
    ep_segs = pl.col("endpoint").str.split("/")
    is_slot = ep_segs.list.eval(pl.element().str.starts_with("{"))
    slot = is_slot.list.arg_max()
    path_obj = (
        pl.when(is_slot.list.any())
        .then(pl.col("path").str.split("/").list.get(slot, null_on_oob=True))
        .otherwise(None)
    )
    query = pl.col("query").str.extract_groups(_query_name_pattern(config))
    q_name = query.struct.field("1")
    q_val = query.struct.field("2")
    raw_obj = pl.coalesce(path_obj, q_val)
    lf = events.with_columns(
        pl.col("client_ip").alias("client"),
        raw_obj.alias("_obj"),
        pl.when(path_obj.is_not_null())
        .then(pl.lit("path"))
        .when(q_val.is_not_null())
        .then(pl.lit("query:") + q_name)
        .alias("id_slot"),
        pl.when(path_obj.is_null() & q_val.is_not_null())
        .then(pl.col("endpoint") + pl.lit("?") + q_name + pl.lit("={id}"))
        .otherwise(pl.col("endpoint"))
        .alias("endpoint_key"),
    )
    lf = lf.with_columns(normalise_ids(pl.col("_obj")).alias("object_id")).drop("_obj")
    return lf.select(PREPARED_COLUMNS).with_columns([pl.col(c).cast(pl.Categorical) for c in CATEGORICAL])


#: What the passes read; repeated strings as categoricals keep tens of millions of events in memory.
#: (``client`` is ``client_ip``; :func:`sql_view` puts the name back for the findings' queries.)
PREPARED_COLUMNS = [
    "ts",
    "source_format",
    "observer",
    "source_file",
    "source_line",
    "client",
    "principal",
    "method",
    "host",
    "query",
    "endpoint",
    "endpoint_key",
    "status",
    "bytes_out",
    "user_agent",
    "object_id",
    "id_slot",
]
CATEGORICAL = ["method", "host", "endpoint", "endpoint_key", "id_slot", "user_agent", "principal"]


def sql_view(prepared: pl.LazyFrame) -> pl.LazyFrame:
    """Prepared events under the event schema's names, for running a finding's ``query`` on them."""
    return prepared.with_columns(pl.col("client").alias("client_ip"))


def materialize(prepared: pl.LazyFrame) -> pl.LazyFrame:
    """Collect once, so every pass and every finding's detail query reads memory, not the whole pipeline."""
    return prepared.collect().lazy()


def normalise_ids(expr: pl.Expr) -> pl.Expr:
    """``000123`` → ``123``; ``%41B`` → ``AB``; hex and UUIDs lower-cased: one object, one spelling."""
    decoded = (
        pl.when(expr.str.contains("%", literal=True))
        .then(expr.str.replace_all("%2[dD]", "-").str.replace_all("%40", "@").str.replace_all("%5[fF]", "_"))
        .otherwise(expr)
    )
    numeric = decoded.str.contains(r"^\d+$")
    stripped = decoded.str.strip_chars_start("0")
    return (
        pl.when(numeric)
        .then(pl.when(stripped == "").then(pl.lit("0")).otherwise(stripped))
        .when(decoded.str.contains(r"^[0-9A-Fa-f-]{16,}$"))
        .then(decoded.str.to_lowercase())
        .otherwise(decoded)
    )


def same(column: str, value: Any) -> pl.Expr:
    """Equality that treats null as a value (a group key may be null)."""
    return pl.col(column).is_null() if value is None else (pl.col(column) == value)


def censored(
    start: datetime | None, end: datetime | None, ctx: Context, slack_hours: float = 24
) -> dict[str, bool]:
    """Whether a finding's window touches the first or last available evidence (or the reporting range):
    then what happened before or after is not in the evidence."""
    from datetime import timedelta

    slack = timedelta(hours=slack_hours)
    lo = max(t for t in (ctx.first_ts, ctx.since) if t is not None) if (ctx.first_ts or ctx.since) else None
    hi = min(t for t in (ctx.last_ts, ctx.until) if t is not None) if (ctx.last_ts or ctx.until) else None
    return {
        "start": bool(start is not None and lo is not None and start - lo <= slack),
        "end": bool(end is not None and hi is not None and hi - end <= slack),
    }


def ok_with_body() -> pl.Expr:
    """A response that returned data: 2xx and a non-empty body (unknown size counts as data)."""
    return pl.col("status").is_between(*OK_STATUS) & (pl.col("bytes_out").fill_null(1) > 0)


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_in(column: str, values: list[str]) -> str:
    if len(values) == 1:
        return f"{column} = {sql_str(values[0])}"
    return f"{column} IN ({', '.join(sql_str(v) for v in sorted(values))})"


def event_query(
    clients: list[str] | None = None,
    method: str | None = None,
    endpoints: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    extra: list[str] | None = None,
) -> str:
    """The polars SQL that returns every event behind a finding (run it with `forensics query`)."""
    from ..findings import iso

    where = []
    if clients:
        where.append(sql_in("client_ip", clients))
    if method:
        where.append(f"method = {sql_str(method)}")
    if endpoints:
        where.append(sql_in("endpoint", endpoints))
    if start is not None:
        where.append(ts_from_sql(start))
    if end is not None:
        where.append(f"ts <= '{iso(end)}'")
    where.extend(extra or [])
    clause = " AND ".join(where) if where else "TRUE"
    return f"SELECT * FROM events WHERE {clause} ORDER BY ts, source_file, source_line"


def ts_from_sql(start: datetime, exact: bool = False) -> str:
    """The query's lower time bound: the start's whole second unless ``exact``. Sources that log whole
    seconds (nginx, Apache) stamp their copy of the first request up to a second before the balancer's
    microsecond time; the query must return that copy too."""
    from ..findings import iso

    return f"ts >= '{iso(start if exact else start.replace(microsecond=0))}'"


def raw_endpoints(endpoint_key: str) -> list[str]:
    """The ``endpoint`` values behind an ``endpoint_key`` (query slots add ``?name={id}``)."""
    return [endpoint_key.split("?", 1)[0]]


def query_slot_filter(endpoint_key: str) -> list[str]:
    """Extra SQL conditions for a query-slot endpoint key."""
    if "?" not in endpoint_key:
        return []
    name = endpoint_key.split("?", 1)[1].split("=", 1)[0]
    return [f"query LIKE {sql_str('%' + name + '=%')}"]


def sample_refs(frame: pl.DataFrame, n: int) -> list[str]:
    """The first ``n`` events' provenance, ``source_file:source_line``."""
    if frame.height == 0:
        return []
    rows = frame.sort("ts", "source_file", "source_line").head(n)
    return [
        f"{f}:{line}"
        for f, line in zip(rows["source_file"].cast(pl.String), rows["source_line"], strict=True)
    ]
