"""Enumeration: one client walking the objects behind one endpoint.

Per client × (method, host, endpoint with its id slot) the pass measures what distinguishes walking from
using: how many distinct ids, how rarely any is asked for twice (a customer re-reads their own record; a
walker never does), how ordered the walk is (share of small id strides in time order, coverage of the
id range), how many misses (404s of guessed ids), and how much of the client's traffic the endpoint
takes (a walker's mix is narrow; an app user's session spans login, plan, usage, …).

A walk that is mostly refused and short (a scanner trying a run of ids) is scanning, not enumeration:
it is left to :mod:`.scanning`.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ..findings import Finding
from . import (
    Context,
    censored,
    event_query,
    ok_with_body,
    query_slot_filter,
    raw_endpoints,
    same,
    sample_refs,
)

REFUSED = [401, 403, 404, 405, 410, 429]
# The host is not part of the key: observers differ in what they log of it (nginx `main` logs none).
GROUP = ["client", "method", "endpoint_key"]


def walk_stats(prepared: pl.LazyFrame, stride: int, min_ids: int = 1) -> pl.LazyFrame:
    """One row per client × endpoint with an id slot: the numbers enumeration is judged on.

    Only groups with at least ``min_ids`` distinct ids get the full statistics (a cheap first pass
    finds them): millions of customers reading their own record are not worth sorting by time.
    """
    with_ids = prepared.filter(pl.col("object_id").is_not_null())
    if min_ids > 1:
        candidates = (
            with_ids.group_by(GROUP)
            .agg(pl.col("object_id").n_unique().alias("_n"))
            .filter(pl.col("_n") >= min_ids)
            .drop("_n")
        )
        with_ids = with_ids.join(candidates, on=GROUP, how="semi", nulls_equal=True)
    num = pl.col("object_id").cast(pl.Int64, strict=False)
    in_order = num.sort_by("ts", "source_file", "source_line")
    diffs = in_order.diff().abs()
    stats = with_ids.group_by(GROUP).agg(
        pl.len().alias("requests"),
        pl.col("object_id").n_unique().alias("distinct_objects"),
        pl.col("object_id").filter(ok_with_body()).n_unique().alias("objects_returned"),
        (pl.col("object_id").unique_counts() > 1).sum().alias("repeated_objects"),
        (pl.col("status") == 404).sum().alias("misses"),
        pl.col("status").is_in(REFUSED).sum().alias("refused"),
        pl.col("ts").min().alias("start"),
        pl.col("ts").max().alias("end"),
        pl.col("bytes_out").sum().alias("bytes"),
        pl.col("id_slot").first().alias("id_slot"),
        pl.col("host").drop_nulls().mode().sort().first().alias("host"),
        ((diffs > 0) & (diffs <= stride)).sum().alias("small_strides"),
        diffs.is_not_null().sum().alias("strides"),
        num.min().alias("id_min"),
        num.max().alias("id_max"),
        num.drop_nulls().n_unique().alias("numeric_ids"),
        pl.col("user_agent").drop_nulls().unique().head(5).alias("user_agents"),
        pl.col("principal").drop_nulls().unique().head(5).alias("principals"),
    )
    totals = prepared.group_by("client").agg(pl.len().alias("client_requests"))
    return stats.join(totals, on="client", how="left").with_columns(
        (pl.col("repeated_objects") / pl.col("distinct_objects")).alias("repeat_share"),
        (pl.col("requests") / pl.col("distinct_objects")).alias("requests_per_object"),
        pl.when(pl.col("strides") > 0)
        .then(pl.col("small_strides") / pl.col("strides"))
        .otherwise(0.0)
        .alias("sequential_share"),
        pl.when(pl.col("numeric_ids") > 1)
        .then(pl.col("numeric_ids") / (pl.col("id_max") - pl.col("id_min") + 1))
        .otherwise(0.0)
        .alias("coverage"),
        (pl.col("misses") / pl.col("requests")).alias("miss_share"),
        (pl.col("refused") / pl.col("requests")).alias("refused_share"),
        (pl.col("requests") / pl.col("client_requests")).alias("endpoint_share"),
    )


def is_probe(cfg_scan: dict[str, Any]) -> pl.Expr:
    """A short, mostly refused run of ids: a scanner's probe, reported as scanning."""
    return (
        (pl.col("refused_share") >= cfg_scan["probe_min_refused_share"])
        & (pl.col("requests") <= cfg_scan["probe_max_requests"])
        & ((pl.col("end") - pl.col("start")) <= pl.duration(days=1))
    )


def criteria(cfg: dict[str, Any]) -> pl.Expr:
    patterned = (
        (pl.col("sequential_share") >= cfg["min_sequential_share"])
        | (pl.col("coverage") >= cfg["min_coverage"])
        | (pl.col("miss_share") >= cfg["min_miss_share"])
    )
    return (
        (pl.col("distinct_objects") >= cfg["min_distinct_objects"])
        & (pl.col("repeat_share") <= cfg["max_repeat_share"])
        & patterned
        & (pl.col("endpoint_share") >= cfg["min_endpoint_share"])
    )


def longest_run(ids: list[int], stride: int) -> int:
    """Longest stretch of consecutive requests whose ids step by at most ``stride`` (in time order)."""
    best = cur = 1 if ids else 0
    for a, b in zip(ids, ids[1:], strict=False):
        cur = cur + 1 if 0 < abs(b - a) <= stride else 1
        best = max(best, cur)
    return best


def score(row: dict[str, Any], cfg: dict[str, Any]) -> float:
    size = min(1.0, row["distinct_objects"] / (20 * cfg["min_distinct_objects"]))
    pattern = max(
        row["sequential_share"],
        min(1.0, row["coverage"] / max(cfg["min_coverage"], 1e-9)) * 0.8,
        row["miss_share"] * 0.8,
    )
    return round(
        0.35 * size + 0.35 * pattern + 0.15 * (1 - row["repeat_share"]) + 0.15 * row["endpoint_share"], 4
    )


def run(prepared: pl.LazyFrame, ctx: Context) -> tuple[list[Finding], pl.DataFrame]:
    """Enumeration findings, and the walk statistics of every client × endpoint (for cleared/scanning)."""
    cfg = ctx.config["enumeration"]
    min_ids = min(cfg["min_distinct_objects"], ctx.config["scanning"]["probe_min_ids"])
    stats = walk_stats(prepared, cfg["sequential_stride"], min_ids).collect()
    if stats.height == 0:
        return [], stats
    stats = stats.with_columns(
        is_probe(ctx.config["scanning"]).alias("probe"), criteria(cfg).alias("flagged")
    )
    flagged = stats.filter(pl.col("flagged") & ~pl.col("probe")).sort(GROUP)
    findings = []
    refs_n = ctx.config["report"]["sample_refs"]
    for row in flagged.iter_rows(named=True):
        detail = (
            prepared.filter(
                (pl.col("client") == row["client"])
                & (pl.col("endpoint_key") == row["endpoint_key"])
                & pl.col("object_id").is_not_null()
                & same("method", row["method"])
            )
            .sort("ts", "source_file", "source_line")
            .select("ts", "source_file", "source_line", "object_id")
            .collect()
        )
        nums = detail.get_column("object_id").cast(pl.Int64, strict=False).drop_nulls().to_list()
        pii = (ctx.pii or {}).get((row["method"] or "", row["endpoint_key"].split("?", 1)[0]), {})
        pii_kinds = sorted(pii.get("pii_kinds", []))
        sev = "medium"
        if pii_kinds and row["objects_returned"] >= cfg["critical_records"]:
            sev = "critical"
        elif pii_kinds or row["objects_returned"] >= cfg["critical_records"]:
            sev = "high"
        refs = sample_refs(detail, refs_n)
        evidence = {
            "distinct_objects": row["distinct_objects"],
            "objects_returned": row["objects_returned"],
            "requests_per_object": row["requests_per_object"],
            "repeat_share": row["repeat_share"],
            "sequential_share": row["sequential_share"],
            "longest_run": longest_run(nums, cfg["sequential_stride"]),
            "coverage": row["coverage"],
            "id_min": row["id_min"],
            "id_max": row["id_max"],
            "miss_share": row["miss_share"],
            "endpoint_share": row["endpoint_share"],
            "id_slot": row["id_slot"],
            "criteria": {
                k: cfg[k]
                for k in (
                    "min_distinct_objects",
                    "max_repeat_share",
                    "sequential_stride",
                    "min_sequential_share",
                    "min_coverage",
                    "min_miss_share",
                    "min_endpoint_share",
                )
            },
            "sample_refs": refs,
        }
        summary = (
            f"{ctx.label(row['client'])} walked {row['distinct_objects']:,} ids of {row['method']} {row['endpoint_key']} "
            f"({row['objects_returned']:,} returned data), {row['sequential_share']:.0%} in sequence, "
            f"{row['repeat_share']:.0%} re-read, between {row['start']:%Y-%m-%d} and {row['end']:%Y-%m-%d}."
        )
        findings.append(
            Finding(
                kind="enumeration",
                severity=sev,
                score=score(row, cfg),
                actor=None,
                method=row["method"],
                host=row["host"],
                endpoint=row["endpoint_key"],
                start=row["start"],
                end=row["end"],
                requests=row["requests"],
                bytes=row["bytes"] or 0,
                summary=summary,
                evidence=evidence,
                query=event_query(
                    ctx.addresses(row["client"]),
                    row["method"],
                    raw_endpoints(row["endpoint_key"]),
                    row["start"],
                    row["end"],
                    query_slot_filter(row["endpoint_key"]),
                ),
                censored=censored(row["start"], row["end"], ctx),
                distinct_objects=row["objects_returned"],
                objects_requested=row["distinct_objects"],
                pii_kinds=pii_kinds,
                clients=ctx.addresses(row["client"]),
            )
        )
    return findings, stats
