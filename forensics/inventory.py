"""The API inventory: every (method, host, endpoint template) of the case, and what it exposes.

One row per endpoint: hits (and how many from reference sources such as HAR captures), first and last
seen, the sources that saw it, the status mix, the authentication kinds and personal-data kinds seen,
the median response size, and ``returns_pii_without_auth``: some response carried personal data
(a kind of :data:`EXPOSURE_KINDS` in ``pii_kinds``, status below 400) to a request that carried no
credential at all (``auth == "none"``, which only sources that show every request header can say,
HAR today).

**Templates refined across the case.** At ingest each path gets a rule-based template (numbers,
UUIDs, long hex → placeholders; :mod:`forensics.endpoints`). Identifiers such as account codes
(``A7F3K2``) escape those rules; they are recognised here by their *number*: for each segment position,
keyed by the (already refined) segments before it, the distinct values seen across the whole case are
counted. A position with at least :data:`MIN_DISTINCT` distinct identifier-like values (any value with
a digit, or without a lower-case letter) becomes ``{id}`` for those values; word-like values
(``search``, ``me``, ``orders``) stay literal unless there are :data:`MIN_DISTINCT_WORDS` of them. The
first segment is never replaced (``/{id}`` would merge unrelated APIs), nor is anything deeper than
:data:`MAX_DEPTH` segments. Positions are pooled across methods and hosts: a HAR capture names its
host, a ``combined`` access log does not, and the same API must line up in both
(``/api/v1/customers/A7F3K2`` from a HAR and ``/api/v1/customers/B8G4L3`` from nginx both become
``/api/v1/customers/{id}``).

The mapping (ingest template → refined template) is written next to the inventory
(``inventory_map.parquet``, changed templates only) and applied by :func:`apply_inventory`, which the
analysis passes use so that every source speaks of the same endpoints. Events without a host (a
``combined`` log) are attributed to the host of the same (method, refined endpoint) when exactly one
host serves it in the case (column ``unhosted_hits`` counts them; :func:`apply_inventory` exposes the
attribution as ``inventory_host``).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import polars as pl

from .case import Case

#: A segment position becomes ``{id}`` when it holds at least this many distinct identifier-like values
#: (values with a digit, or without a lower-case letter: ``12345``, ``A7F3K2``, ``USA``). Lower finds
#: ids in smaller cases but may merge a few literal siblings (``v1``..``v5``).
MIN_DISTINCT = 5
#: Word-like values (only letters and ``._~-``, some lower case: ``search``, ``orders``, ``alice``)
#: need this many distinct siblings: an API's resource names are words, and there are rarely 50.
MIN_DISTINCT_WORDS = 50
#: Segments deeper than this are left as they are (bounds the work on pathological paths).
MAX_DEPTH = 16
#: Endpoints with more events than this get their median response size from a deterministic sample of
#: about this many events (an exact median holds every value in memory).
MEDIAN_SAMPLE = 200_000
#: Distinct clients and principals per endpoint are counted exactly up to this many; beyond, the count
#: is a HyperLogLog estimate (within a few percent).
EXACT_DISTINCT = 100_000
#: What a refined position becomes (the rule templates use the same placeholder for numbers).
PLACEHOLDER = "{id}"
#: A response counts for ``returns_pii_without_auth`` when its status is below this (or unknown):
#: error pages that echo a support address are not an exposure.
PII_STATUS_BELOW = 400
#: Personal-data kinds that raise ``returns_pii_without_auth``. IP addresses (in every page footer
#: and telemetry call) and JWTs (a credential leak, not a record) are listed in ``pii_kinds`` but do
#: not raise it on their own.
EXPOSURE_KINDS: tuple[str, ...] = ("name", "email", "phone", "address", "dob", "ssn", "card", "account")

INVENTORY_FILE = "inventory.parquet"
MAP_FILE = "inventory_map.parquet"
_META_KEY = "forensics.inventory"


def thresholds() -> dict[str, Any]:
    """The thresholds in effect (recorded with the inventory; a later config file will set them)."""
    return {
        "min_distinct": MIN_DISTINCT,
        "min_distinct_words": MIN_DISTINCT_WORDS,
        "max_depth": MAX_DEPTH,
        "pii_status_below": PII_STATUS_BELOW,
        "exposure_kinds": list(EXPOSURE_KINDS),
    }


# --------------------------------------------------------------------------------------------------
# Refinement


def refine_endpoints(endpoints: pl.Series) -> pl.DataFrame:
    """Ingest templates → refined templates, for the templates that change (columns endpoint, refined).

    Vectorised over the distinct templates: one group-by per segment depth.
    """
    eps = endpoints.cast(pl.String).drop_nulls().unique().sort()
    empty = pl.DataFrame(schema={"endpoint": pl.String, "refined": pl.String})
    if eps.len() == 0:
        return empty
    df = pl.DataFrame({"endpoint": eps}).with_columns(pl.col("endpoint").str.split("/").alias("segs"))
    deepest = int(df.get_column("segs").list.len().max() or 0)
    segs = pl.col("segs")
    for pos in range(2, min(deepest, MAX_DEPTH + 1)):  # segs[0] is "" (leading "/"), segs[1] the first
        val = segs.list.get(pos, null_on_oob=True)
        cls = (
            pl.when(val.is_null() | (val == "") | val.str.contains(r"^\{[A-Za-z_]+\}$"))
            .then(pl.lit("keep"))
            .when(val.str.contains(r"^[A-Za-z._~-]+$") & val.str.contains(r"[a-z]"))
            .then(pl.lit("word"))
            .otherwise(pl.lit("id"))
        )
        df = df.with_columns(
            segs.list.head(pos).list.join("/").alias("_key"), val.alias("_val"), cls.alias("_cls")
        )
        stats = df.group_by("_key").agg(
            pl.col("_val").filter(pl.col("_cls") == "id").n_unique().alias("_ids"),
            pl.col("_val").filter(pl.col("_cls") == "word").n_unique().alias("_words"),
        )
        df = df.join(stats, on="_key", how="left")
        variable = ((pl.col("_cls") == "id") & (pl.col("_ids") >= MIN_DISTINCT)) | (
            (pl.col("_cls") == "word") & (pl.col("_words") >= MIN_DISTINCT_WORDS)
        )
        replaced = pl.concat_list(
            segs.list.head(pos), pl.lit([PLACEHOLDER], dtype=pl.List(pl.String)), segs.list.slice(pos + 1)
        )
        df = df.with_columns(pl.when(variable).then(replaced).otherwise(segs).alias("segs")).drop(
            "_key", "_val", "_cls", "_ids", "_words"
        )
    out = df.select("endpoint", segs.list.join("/").alias("refined")).filter(
        pl.col("refined") != pl.col("endpoint")
    )
    return out.sort("endpoint") if out.height else empty


def refine(
    events: pl.LazyFrame, mapping: pl.DataFrame, inventory: pl.DataFrame | None = None
) -> pl.LazyFrame:
    """Apply a refinement mapping (and, given the inventory, the host attribution) to events.

    ``endpoint`` becomes the refined template; with ``inventory``, ``inventory_host`` is added: the
    event's host, or for an event without one the single host that serves its (method, endpoint).
    Pure: the analysis passes call it through :func:`apply_inventory`.
    """
    lf = events
    if mapping.height:
        lf = (
            lf.join(
                mapping.lazy().rename({"refined": "_refined"}),
                on="endpoint",
                how="left",
                maintain_order="left",
            )
            .with_columns(pl.coalesce("_refined", "endpoint").alias("endpoint"))
            .drop("_refined")
        )
    if inventory is not None:
        hosts = _single_hosts(inventory.lazy())
        lf = (
            lf.join(hosts, on=["method", "endpoint"], how="left", maintain_order="left")
            .with_columns(pl.coalesce(pl.col("host"), pl.col("_host")).alias("inventory_host"))
            .drop("_host")
        )
    return lf


def _single_hosts(lf: pl.LazyFrame) -> pl.LazyFrame:
    """(method, endpoint, _host) where exactly one host serves the (method, endpoint)."""
    return (
        lf.filter(pl.col("host").is_not_null())
        .group_by("method", "endpoint")
        .agg(pl.col("host").unique().alias("_hosts"))
        .filter(pl.col("_hosts").list.len() == 1)
        .select("method", "endpoint", pl.col("_hosts").list.first().alias("_host"))
    )


# --------------------------------------------------------------------------------------------------
# The inventory (pure)

INVENTORY_SCHEMA: dict[str, pl.DataType] = {
    "method": pl.String(),
    "host": pl.String(),
    "endpoint": pl.String(),
    "hits": pl.UInt32(),
    "reference_hits": pl.UInt32(),
    "first_seen": pl.Datetime("us", "UTC"),
    "last_seen": pl.Datetime("us", "UTC"),
    "sources": pl.List(pl.String()),
    "status_2xx": pl.UInt32(),
    "status_3xx": pl.UInt32(),
    "status_4xx": pl.UInt32(),
    "status_5xx": pl.UInt32(),
    "status_other": pl.UInt32(),
    "auth_kinds": pl.List(pl.String()),
    "pii_kinds": pl.List(pl.String()),
    "pii_hits": pl.UInt32(),
    "median_bytes_out": pl.Float64(),
    "clients": pl.UInt32(),
    "principals": pl.UInt32(),
    "unhosted_hits": pl.UInt32(),
    "returns_pii_without_auth": pl.Boolean(),
}


def build_inventory(
    events: pl.LazyFrame, reference_files: list[str] | tuple[str, ...] = ()
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(inventory, mapping) from all the case's events. Pure; sorted by host, endpoint, method.

    ``reference_files`` (source_file values of reference sources) only feeds ``reference_hits``.
    """
    ev = events.select(
        pl.col("method").cast(pl.String),
        pl.col("host").cast(pl.String),
        pl.col("endpoint").cast(pl.String),
        "ts",
        pl.col("source_format"),
        pl.col("source_file").cast(pl.String).is_in(list(reference_files)).alias("_reference"),
        pl.col("status").cast(pl.Int32),
        pl.col("auth").cast(pl.String),
        "pii_kinds",
        "bytes_out",
        "source_line",
        pl.col("client_ip").cast(pl.String),
        pl.col("principal").cast(pl.String),
    )
    mapping = refine_endpoints(ev.select("endpoint").unique().collect().get_column("endpoint"))
    ev = refine(ev, mapping)
    ev = ev.join(_single_hosts(ev), on=["method", "endpoint"], how="left").with_columns(
        pl.coalesce("host", "_host").alias("host"),
        (pl.col("host").is_null() & pl.col("_host").is_not_null()).alias("_unhosted"),
    )
    status = pl.col("status")
    keys = ["method", "host", "endpoint"]

    def count(cond: pl.Expr) -> pl.Expr:
        return cond.fill_null(False).sum().cast(pl.UInt32)

    # Memory stays bounded on tens of millions of events: the per-event aggregations stream; distinct
    # clients/principals are counted from the distinct (endpoint, client) pairs; the personal-data
    # columns are only read where a body was scanned; the median is taken on a deterministic sample
    # of at most about MEDIAN_SAMPLE events per endpoint.
    main = (
        ev.group_by(keys)
        .agg(
            pl.len().cast(pl.UInt32).alias("hits"),
            count(pl.col("_reference")).alias("reference_hits"),
            pl.col("ts").min().alias("first_seen"),
            pl.col("ts").max().alias("last_seen"),
            count(status.is_between(200, 299)).alias("status_2xx"),
            count(status.is_between(300, 399)).alias("status_3xx"),
            count(status.is_between(400, 499)).alias("status_4xx"),
            count(status.is_between(500, 599)).alias("status_5xx"),
            count(status.is_null() | ~status.is_between(200, 599)).alias("status_other"),
            count(pl.col("_unhosted")).alias("unhosted_hits"),
        )
        .collect(engine="streaming")
    )

    def distinct(column: str, name: str) -> pl.DataFrame:
        # Exact on endpoints with up to EXACT_DISTINCT distinct values, a HyperLogLog estimate beyond
        # (an exact count of millions of addresses holds them all in memory).
        approx = (
            ev.group_by(keys)
            .agg(pl.col(column).approx_n_unique().cast(pl.UInt32).alias(name))
            .collect(engine="streaming")
        )
        small = approx.filter(pl.col(name) <= EXACT_DISTINCT).select(keys)
        exact = (
            ev.join(small.lazy(), on=keys, how="semi", nulls_equal=True)
            .select(*keys, column)
            .drop_nulls(column)
            .unique()
            .group_by(keys)
            .agg(pl.len().cast(pl.UInt32).alias(name))
            .collect(engine="streaming")
        )
        return approx.join(exact, on=keys, how="left", nulls_equal=True, suffix="_exact").select(
            *keys,
            pl.coalesce(f"{name}_exact", pl.when(pl.col(name) > EXACT_DISTINCT).then(name))
            .fill_null(0)
            .alias(name),
        )

    def kinds(column: str, name: str) -> pl.DataFrame:
        # A list per endpoint from the few distinct (endpoint, value) pairs: list aggregations over
        # every event would hold them all in memory.
        return (
            ev.select(*keys, pl.col(column).cast(pl.String))
            .drop_nulls(column)
            .unique()
            .collect(engine="streaming")
            .group_by(keys)
            .agg(pl.col(column).sort().alias(name))
        )

    scanned = ev.filter(pl.col("pii_kinds").is_not_null())
    personal = pl.col("pii_kinds").list.eval(pl.element().is_in(list(EXPOSURE_KINDS))).list.any()
    exposed = personal & (pl.col("auth") == "none") & (status.is_null() | (status < PII_STATUS_BELOW))
    pii = (
        scanned.group_by(keys)
        .agg(
            pl.col("pii_kinds")
            .list.explode(keep_nulls=False, empty_as_null=False)
            .drop_nulls()
            .unique()
            .sort(),
            count(pl.col("pii_kinds").list.len() > 0).alias("pii_hits"),
            exposed.fill_null(False).any().alias("returns_pii_without_auth"),
        )
        .collect(engine="streaming")
    )
    step = max(1, int(main.get_column("hits").max() or 0) // MEDIAN_SAMPLE)
    sample = pl.col("source_line").hash(seed=3) % step == 0 if step > 1 else pl.lit(True)
    big = main.filter(pl.col("hits") > MEDIAN_SAMPLE).select(*keys, pl.lit(True).alias("_big"))
    medians = (
        ev.join(big.lazy(), on=keys, how="left", nulls_equal=True)
        .filter(pl.col("_big").is_null() | sample)
        .group_by(keys)
        .agg(pl.col("bytes_out").median().alias("median_bytes_out"))
        .collect(engine="streaming")
    )
    inv = main
    parts = (
        kinds("source_format", "sources"),
        kinds("auth", "auth_kinds"),
        distinct("client_ip", "clients"),
        distinct("principal", "principals"),
        pii,
        medians,
    )
    for part in parts:
        inv = inv.join(part, on=keys, how="left", nulls_equal=True)
    inv = inv.with_columns(
        pl.col("sources").fill_null([]),
        pl.col("auth_kinds").fill_null([]),
        pl.col("clients").fill_null(0),
        pl.col("principals").fill_null(0),
        pl.col("pii_hits").fill_null(0),
        pl.col("pii_kinds").fill_null([]),
        pl.col("returns_pii_without_auth").fill_null(False),
    ).sort(["host", "endpoint", "method"], nulls_last=True)
    inv = inv.select([pl.col(c).cast(t) for c, t in INVENTORY_SCHEMA.items()])
    return inv, mapping


# --------------------------------------------------------------------------------------------------
# The case directory


def _signature(case: Case) -> str:
    """What the inventory was built from: the event parts and the roles of the inputs."""
    manifest = case.load_manifest()
    parts = sorted(p["path"] for p in manifest.get("parts", []) if p.get("kind") == "events")
    roles = sorted(f"{e.get('path')}\t{e.get('role')}" for e in manifest.get("inputs", []))
    payload = json.dumps({"parts": parts, "roles": roles, "thresholds": thresholds()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _write(frame: pl.DataFrame, path: os.PathLike[str] | str, signature: str) -> None:
    tmp = f"{path}.tmp"
    frame.write_parquet(tmp, compression="zstd", statistics=True, metadata={_META_KEY: signature})
    os.replace(tmp, path)


def write_inventory(case: Case) -> pl.DataFrame:
    """Build the inventory over every event of the case (reference included) and write
    inventory.parquet and inventory_map.parquet (each written to a temporary name, then renamed)."""
    signature = _signature(case)
    inventory, mapping = build_inventory(
        case.scan_events(include_reference=True), reference_files=case.reference_files()
    )
    _write(mapping, case.path / MAP_FILE, signature)
    _write(inventory, case.path / INVENTORY_FILE, signature)
    return inventory


def _fresh(path: os.PathLike[str] | str, signature: str) -> bool:
    try:
        return pl.read_parquet_metadata(path).get(_META_KEY) == signature
    except (OSError, pl.exceptions.PolarsError):
        return False


def load_inventory(case: Case) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(inventory, mapping) of the case, rebuilt (and rewritten) when missing or older than the events."""
    signature = _signature(case)
    inv_path, map_path = case.path / INVENTORY_FILE, case.path / MAP_FILE
    if not (_fresh(inv_path, signature) and _fresh(map_path, signature)):
        write_inventory(case)
    return pl.read_parquet(inv_path, glob=False), pl.read_parquet(map_path, glob=False)


def fresh_mapping(case: Case) -> pl.DataFrame | None:
    """The case's template refinement when it is up to date with the events (never builds it): what
    ``forensics query`` applies, so a finding's ``endpoint = '…'`` matches the events it counted."""
    map_path = case.path / MAP_FILE
    if not _fresh(map_path, _signature(case)):
        return None
    return pl.read_parquet(map_path, glob=False)


def apply_inventory(events_lf: pl.LazyFrame, case: Case) -> pl.LazyFrame:
    """Events with ``endpoint`` refined across the case, plus ``inventory_host`` (see :func:`refine`).

    What the analysis passes call, so that HAR captures and logs of the same endpoint line up. The
    inventory is built first when it is missing or stale.
    """
    inventory, mapping = load_inventory(case)
    return refine(events_lf, mapping, inventory)


def inventory_table(inventory: pl.DataFrame) -> pl.DataFrame:
    """The inventory as the terminal shows it: exposed endpoints first, then by hits; lists joined."""
    if inventory.height == 0:
        return pl.DataFrame(schema={c: pl.String for c in ("endpoint", "host", "hits")})
    mix = pl.format("{}/{}/{}/{}", *(pl.col(f"status_{k}xx") for k in "2345"))
    return inventory.sort(
        ["returns_pii_without_auth", "hits", "host", "endpoint", "method"],
        descending=[True, True, False, False, False],
        nulls_last=True,
    ).select(
        pl.concat_str(pl.col("method").fill_null("?"), pl.lit(" "), pl.col("endpoint").fill_null("?")).alias(
            "endpoint"
        ),
        pl.col("host").fill_null("?"),
        "hits",
        mix.alias("2xx/3xx/4xx/5xx"),
        pl.col("sources").list.join(",").alias("sources"),
        pl.col("auth_kinds").list.join(",").alias("auth"),
        pl.col("pii_kinds").list.join(",").alias("personal data"),
        pl.col("median_bytes_out").round(0).cast(pl.Int64).alias("median bytes"),
        pl.when(pl.col("returns_pii_without_auth"))
        .then(pl.lit("YES"))
        .otherwise(pl.lit(""))
        .alias("PII, no auth"),
    )


__all__ = [
    "EXPOSURE_KINDS",
    "INVENTORY_FILE",
    "INVENTORY_SCHEMA",
    "MAP_FILE",
    "MAX_DEPTH",
    "MIN_DISTINCT",
    "MIN_DISTINCT_WORDS",
    "PII_STATUS_BELOW",
    "PLACEHOLDER",
    "apply_inventory",
    "build_inventory",
    "inventory_table",
    "load_inventory",
    "refine",
    "refine_endpoints",
    "thresholds",
    "write_inventory",
]
