"""Abnormal per-client volume: requests and bytes per client and day against robust baselines.

Two baselines, both needed for a flag:

* the client's own history: median and spread (inter-quartile range / 1.349, floored at 10% of the median)
  of its previous active days (up to 28), giving a robust z-score; a steady heavy client (a partner) has a
  high median and a small z, a sudden change has a large one. A client first seen after the first day of
  evidence has no history; it is judged on the peers alone;
* its peers: the day's volume must also exceed a high quantile of all client-days, so a small client
  doubling its tiny traffic is not an anomaly.

The heaviest clients examined and not flagged are returned for the ``cleared`` list, with their numbers.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl

from ..findings import Finding
from . import Context, censored, event_query, sample_refs


def daily(prepared: pl.LazyFrame) -> pl.LazyFrame:
    return (
        prepared.group_by("client", pl.col("ts").dt.date().alias("day"))
        .agg(pl.len().alias("requests"), pl.col("bytes_out").sum().alias("bytes"))
        .sort("client", "day")
    )


def baselines(days: pl.LazyFrame, first_day: date | None) -> pl.LazyFrame:
    prior = pl.col("requests").shift(1)
    over = "client"
    out = days.with_columns(
        prior.rolling_median(window_size=28, min_samples=1).over(over).alias("own_median"),
        prior.rolling_quantile(0.25, window_size=28, min_samples=1).over(over).alias("_q25"),
        prior.rolling_quantile(0.75, window_size=28, min_samples=1).over(over).alias("_q75"),
        pl.int_range(pl.len()).over(over).alias("history_days"),
        pl.col("day").min().over(over).alias("first_day"),
    )
    spread = pl.max_horizontal(
        (pl.col("_q75") - pl.col("_q25")) / 1.349, pl.col("own_median") * 0.1, pl.lit(1.0)
    )
    out = out.with_columns(spread.alias("own_mad")).with_columns(
        ((pl.col("requests") - pl.col("own_median")) / pl.col("own_mad")).alias("robust_z")
    )
    established = pl.lit(first_day).is_not_null() & (pl.col("first_day") == pl.lit(first_day))
    return out.with_columns(established.alias("seen_from_start")).drop("_q25", "_q75")


def run(prepared: pl.LazyFrame, ctx: Context) -> tuple[list[Finding], pl.DataFrame]:
    """(findings, per-client summary of the heaviest clients, for cleared)."""
    cfg = ctx.config["volume"]
    first_day = ctx.first_ts.date() if ctx.first_ts else None
    days = daily(prepared).collect()
    if days.height == 0:
        return [], days
    peer_q = float(days.get_column("requests").quantile(cfg["peer_quantile"]) or 0)
    # Only clients that reach the peer threshold on some day can be flagged, and only the heaviest are
    # listed as cleared: baselines for those, not for millions of one-day customers.
    totals = days.group_by("client").agg(pl.col("requests").sum().alias("_total"))
    heavy_ids = totals.sort(["_total", "client"], descending=[True, False]).head(cfg["heavy_clients"])
    loud = days.filter(pl.col("requests") >= max(peer_q, cfg["min_requests"])).select("client").unique()
    keep = pl.concat([heavy_ids.select("client"), loud]).unique()
    days = days.join(keep, on="client", how="semi")
    table = baselines(days.lazy(), first_day).collect()
    table = table.with_columns(pl.lit(peer_q).alias("peer_quantile_value"))
    with_history = (pl.col("history_days") >= 1) & (pl.col("robust_z") >= cfg["mad_k"])
    new_client = (pl.col("history_days") == 0) & ~pl.col("seen_from_start")
    flagged = table.filter(
        (pl.col("requests") >= cfg["min_requests"])
        & (pl.col("requests") >= peer_q)
        & (with_history | new_client)
    )
    findings = []
    refs_n = ctx.config["report"]["sample_refs"]
    for (client,), days in flagged.group_by("client", maintain_order=True):
        peak = days.sort(["robust_z", "requests"], descending=True, nulls_last=True).row(0, named=True)
        start_day, end_day = days.get_column("day").min(), days.get_column("day").max()
        start = datetime.combine(start_day, datetime.min.time()).replace(tzinfo=ctx.first_ts.tzinfo)
        end = datetime.combine(end_day, datetime.min.time()).replace(tzinfo=ctx.first_ts.tzinfo) + timedelta(
            days=1, microseconds=-1
        )
        events = (
            prepared.filter((pl.col("client") == client) & pl.col("ts").is_between(start, end))
            .select("ts", "source_file", "source_line", "bytes_out")
            .sort("ts", "source_file", "source_line")
            .collect()
        )
        if events.height == 0:
            continue
        start, end = events.get_column("ts").min(), events.get_column("ts").max()
        z = peak["robust_z"]
        z_text = (
            f"{z:.1f} robust SD above its own median of {peak['own_median']:.0f}"
            if peak["history_days"]
            else ("a new client")
        )
        findings.append(
            Finding(
                kind="volume_anomaly",
                severity="high" if (peak["history_days"] and z >= 3 * cfg["mad_k"]) else "medium",
                score=round(
                    min(1.0, (z if peak["history_days"] else cfg["mad_k"]) / (4 * cfg["mad_k"]) + 0.25), 4
                ),
                actor=None,
                method=None,
                host=None,
                endpoint=None,
                start=start,
                end=end,
                requests=events.height,
                bytes=int(events.get_column("bytes_out").sum() or 0),
                summary=(
                    f"{client} sent {peak['requests']:,} requests on {peak['day']:%Y-%m-%d}, {z_text}; "
                    f"{days.height} unusual day(s)."
                ),
                evidence={
                    "day": peak["day"].isoformat(),
                    "requests": peak["requests"],
                    "bytes": peak["bytes"],
                    "own_median": peak["own_median"],
                    "own_mad": peak["own_mad"],
                    "robust_z": z,
                    "peer_quantile_value": peer_q,
                    "history_days": peak["history_days"],
                    "criteria": {
                        k: cfg[k] for k in ("mad_k", "peer_quantile", "min_requests", "min_history_days")
                    },
                    "sample_refs": sample_refs(events, refs_n),
                },
                query=event_query([client], start=start, end=end),
                censored=censored(start, end, ctx, slack_hours=0),
                clients=[client],
            )
        )
    heavy = (
        table.group_by("client")
        .agg(
            pl.col("requests").sum().alias("requests"),
            pl.col("bytes").sum().alias("bytes"),
            pl.len().alias("days_active"),
            pl.col("requests").median().alias("daily_median"),
            pl.col("robust_z").max().alias("max_robust_z"),
            pl.col("day").min().alias("first_day"),
            pl.col("day").max().alias("last_day"),
        )
        .sort(["requests", "client"], descending=[True, False])
        .head(cfg["heavy_clients"])
    )
    return findings, heavy
