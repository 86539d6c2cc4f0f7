"""One request seen by two observers is one request.

A load balancer (ALB, ELB, CloudFront, …: the *edge*) and the gateway behind it (nginx, Apache, …: the
*origin*) both log every request that passes through. Counting both would double every volume. The
origin's events are matched to the edge's:

1. on trace / request ids when both sides logged the same one;
2. otherwise on (client, method, path, query, status) and time: a first, wide as-of join on a sample estimates
   the clock skew between the two observers (the median offset of the matches), a second one pairs
   events within a tight tolerance around that skew, one to one.

Matched origin events are dropped from the analysis (they stay in the event store); the edge's copy is
kept. Unmatched events on either side are kept: they are requests only one observer saw. The estimated
skew and the match counts are reported.

Memory stays small on tens of millions of events: the matching key is hashed into one integer, so the
joins move (row id, time, key hash) triples, never strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

EDGE_FORMATS = ("alb", "elb_classic", "cloudfront", "gcp_lb", "azure_appgw", "apigw")
#: What two observers agree on for one request (the query string too: paged requests share a path).
KEY = ["client_ip", "method", "path", "query", "status"]


@dataclass
class DedupReport:
    edge_events: int = 0
    origin_events: int = 0
    matched: int = 0
    matched_by_id: int = 0
    clock_skew_seconds: float | None = None  # origin time minus edge time, median over matches

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


def _is_edge() -> pl.Expr:
    return pl.col("source_format").cast(pl.String).is_in(list(EDGE_FORMATS))


def deduplicate(
    events: pl.LazyFrame, wide_seconds: float = 300.0, tight_seconds: float = 2.0
) -> tuple[pl.LazyFrame, DedupReport]:
    """Events without the origin-side copies of requests the edge also logged."""
    report = DedupReport()
    counts = events.group_by(_is_edge().alias("edge")).len().collect()
    by_tier = {row[0]: row[1] for row in counts.iter_rows()}
    report.edge_events, report.origin_events = by_tier.get(True, 0), by_tier.get(False, 0)
    if not report.edge_events or not report.origin_events:
        return events, report

    ev = events.with_row_index("_rid")
    keyed = ev.select(
        "_rid",
        _is_edge().alias("_edge"),
        pl.col("ts"),
        pl.struct([pl.col(k).cast(pl.String) for k in KEY]).hash(seed=17).alias("_key"),
        pl.col("request_id"),
    ).collect()
    edge = keyed.filter(pl.col("_edge")).drop("_edge")
    origin = keyed.filter(~pl.col("_edge")).drop("_edge")
    del keyed

    matched: list[pl.Series] = []
    # 1. shared request / trace ids
    if (
        origin.get_column("request_id").null_count() < origin.height
        and edge.get_column("request_id").null_count() < edge.height
    ):
        by_id = (
            origin.drop_nulls("request_id")
            .join(
                edge.drop_nulls("request_id").select("request_id", pl.col("_rid").alias("_edge_rid")),
                on="request_id",
                how="inner",
            )
            .unique(subset=["_edge_rid"], keep="first")
        )
        report.matched_by_id = by_id.height
        if by_id.height:
            matched.append(by_id.get_column("_rid"))
            origin = origin.join(by_id.select("_rid"), on="_rid", how="anti")
            edge = edge.join(by_id.select(pl.col("_edge_rid").alias("_rid")), on="_rid", how="anti")
    edge = edge.drop("request_id").sort("ts")
    origin = origin.drop("request_id").sort("ts")

    # 2. time + key, with the clock skew estimated first
    skew = _skew(origin, edge, wide_seconds)
    report.clock_skew_seconds = skew
    pairs = _pair(origin, edge, skew or 0.0, tight_seconds)
    if pairs.len():
        matched.append(pairs)
    if not matched:
        return events, report
    drop = pl.concat(matched).unique().to_frame("_rid")
    report.matched = drop.height
    kept = ev.join(drop.lazy(), on="_rid", how="anti").drop("_rid")
    return kept, report


def _skew(origin: pl.DataFrame, edge: pl.DataFrame, wide_seconds: float) -> float | None:
    """Median (origin − edge) time offset over nearest same-key pairs within a wide tolerance."""
    sample = origin if origin.height <= 200_000 else origin.sample(200_000, seed=0).sort("ts")
    joined = sample.join_asof(
        edge.select("ts", "_key", pl.col("ts").alias("_edge_ts")),
        on="ts",
        by="_key",
        strategy="nearest",
        tolerance=f"{int(wide_seconds)}s",
        check_sortedness=False,  # sorted by ts above; polars cannot verify it per 'by' group
    )
    diffs = joined.drop_nulls("_edge_ts").select(
        ((pl.col("ts") - pl.col("_edge_ts")).dt.total_microseconds() / 1e6).alias("d")
    )
    if diffs.height == 0:
        return None
    return float(diffs.get_column("d").median())


#: Pairing rounds between gateway and balancer copies (a round per identical request in one second).
PAIR_ROUNDS = 4


def _pair(origin: pl.DataFrame, edge: pl.DataFrame, skew: float, tight_seconds: float) -> pl.Series:
    """Origin row ids paired one-to-one with an edge event of the same key within the tolerance."""
    left = origin.with_columns(pl.col("ts") - pl.duration(microseconds=int(skew * 1e6))) if skew else origin
    right = edge.select("ts", "_key", pl.col("_rid").alias("_edge_rid"))
    paired: list[pl.Series] = []
    # One edge event pairs with at most one origin event. Two identical requests in the same second
    # (the gateway logs whole seconds) are both nearest to one edge event: the one left over is paired
    # again, with the edge events still free, in the next round.
    for _ in range(PAIR_ROUNDS):
        joined = left.join_asof(
            right,
            on="ts",
            by="_key",
            strategy="nearest",
            tolerance=f"{int(tight_seconds * 1e6)}us",
            check_sortedness=False,
        ).drop_nulls("_edge_rid")
        once = joined.unique(subset=["_edge_rid"], keep="first", maintain_order=True)
        paired.append(once.get_column("_rid"))
        if once.height == joined.height:
            break
        left = left.filter(~pl.col("_rid").is_in(once.get_column("_rid").implode()))
        right = right.filter(~pl.col("_edge_rid").is_in(once.get_column("_edge_rid").implode()))
    return pl.concat(paired)
