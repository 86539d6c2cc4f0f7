"""One request seen by two observers is one request.

A load balancer (ALB, ELB, CloudFront, …: the *edge*) and the gateway behind it (nginx, Apache, …: the
*origin*) both log every request that passes through. Counting both would double every volume. The
origin's events are matched to the edge's:

1. on trace / request ids when both sides logged the same one;
2. otherwise on (client, method, path, status) and time: a first, wide as-of join estimates the clock
   skew between the two observers (the median offset of the matches), a second one pairs events within
   a tight tolerance around that skew.

Matched origin events are dropped from the analysis (they stay in the event store); the edge's copy is
kept. Unmatched events on either side are kept: they are requests only one observer saw. The estimated
skew and the match counts are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

EDGE_FORMATS = ("alb", "elb_classic", "cloudfront", "gcp_lb", "azure_appgw", "apigw")
KEY = ["client_ip", "method", "path", "status"]


@dataclass
class DedupReport:
    edge_events: int = 0
    origin_events: int = 0
    matched: int = 0
    matched_by_id: int = 0
    clock_skew_seconds: float | None = None  # origin time minus edge time, median over matches
    pairs: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "edge_events": self.edge_events,
            "origin_events": self.origin_events,
            "matched": self.matched,
            "matched_by_request_id": self.matched_by_id,
            "clock_skew_seconds": None
            if self.clock_skew_seconds is None
            else round(self.clock_skew_seconds, 3),
        }


def deduplicate(
    events: pl.LazyFrame, wide_seconds: float = 300.0, tight_seconds: float = 2.0
) -> tuple[pl.LazyFrame, DedupReport]:
    """Events without the origin-side copies of requests the edge also logged."""
    report = DedupReport()
    tier = pl.col("source_format").cast(pl.String).is_in(list(EDGE_FORMATS))
    counts = events.group_by(tier.alias("edge")).len().collect()
    by_tier = {row[0]: row[1] for row in counts.iter_rows()}
    report.edge_events, report.origin_events = by_tier.get(True, 0), by_tier.get(False, 0)
    if not report.edge_events or not report.origin_events:
        return events, report

    ev = events.with_row_index("_rid")
    cols = ["_rid", "ts", "request_id", *KEY]
    edge = ev.filter(tier).select(cols).collect()
    origin = ev.filter(~tier).select(cols).collect()

    # 1. shared request / trace ids
    by_id = origin.filter(pl.col("request_id").is_not_null()).join(
        edge.filter(pl.col("request_id").is_not_null()).select(
            "request_id", pl.col("_rid").alias("_edge_rid")
        ),
        on="request_id",
        how="inner",
    )
    matched_origin = set(by_id.get_column("_rid").to_list()) if by_id.height else set()
    report.matched_by_id = len(matched_origin)
    if matched_origin:
        origin = origin.filter(
            ~pl.col("_rid").is_in(pl.Series(list(matched_origin), dtype=pl.UInt32).implode())
        )
        edge = edge.filter(~pl.col("_rid").is_in(by_id.get_column("_edge_rid").implode()))

    # 2. time + key, with the clock skew estimated first
    skew = _skew(origin, edge, wide_seconds)
    report.clock_skew_seconds = skew
    pairs = _pair(origin, edge, skew or 0.0, tight_seconds)
    matched_origin |= set(pairs.get_column("_rid").to_list())
    report.matched = len(matched_origin)
    if not matched_origin:
        return events, report
    drop = pl.Series(sorted(matched_origin), dtype=pl.UInt32)
    kept = ev.filter(~pl.col("_rid").is_in(drop.implode())).drop("_rid")
    return kept, report


def _prep(frame: pl.DataFrame, shift_seconds: float = 0.0) -> pl.DataFrame:
    out = frame.with_columns(pl.col(k).fill_null(-1 if k == "status" else "") for k in KEY)
    if shift_seconds:
        out = out.with_columns(pl.col("ts") - pl.duration(microseconds=int(shift_seconds * 1e6)))
    return out.sort("ts")


def _skew(origin: pl.DataFrame, edge: pl.DataFrame, wide_seconds: float) -> float | None:
    """Median (origin − edge) time offset over nearest same-key pairs within a wide tolerance."""
    sample = origin if origin.height <= 200_000 else origin.sample(200_000, seed=0)
    joined = _prep(sample).join_asof(
        _prep(edge).select("ts", *KEY, pl.col("ts").alias("_edge_ts")),
        on="ts",
        by=KEY,
        strategy="nearest",
        tolerance=f"{int(wide_seconds)}s",
        check_sortedness=False,  # sorted by ts above; polars cannot verify it per 'by' group
    )
    diffs = joined.filter(pl.col("_edge_ts").is_not_null()).select(
        ((pl.col("ts") - pl.col("_edge_ts")).dt.total_microseconds() / 1e6).alias("d")
    )
    if diffs.height == 0:
        return None
    return float(diffs.get_column("d").median())


def _pair(origin: pl.DataFrame, edge: pl.DataFrame, skew: float, tight_seconds: float) -> pl.DataFrame:
    """Origin events paired one-to-one with an edge event of the same key within the tolerance."""
    left = _prep(origin, skew)
    right = _prep(edge).select("ts", *KEY, pl.col("_rid").alias("_edge_rid"))
    joined = left.join_asof(
        right,
        on="ts",
        by=KEY,
        strategy="nearest",
        tolerance=f"{int(tight_seconds * 1e6)}us",
        check_sortedness=False,
    ).filter(pl.col("_edge_rid").is_not_null())
    # One edge event pairs with at most one origin event (two identical requests in the same second).
    return joined.unique(subset=["_edge_rid"], keep="first", maintain_order=True).select("_rid", "_edge_rid")
