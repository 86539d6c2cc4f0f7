"""Scanning: probing for what exists, as opposed to taking what is there.

Two patterns, per client:

* ``path_burst``: within a window (default one hour) many distinct path templates (endpoints), mostly
  answered with errors
  (``/.env``, ``/wp-login.php``, ``/.git/config``, …);
* ``id_probe``: a short run of object ids on one endpoint, mostly refused (401/403/404): trying ids,
  not walking records. These come from the enumeration statistics (:mod:`.enumeration`).

Consecutive flagged windows of one client are one finding.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from ..findings import Finding
from . import Context, censored, event_query, query_slot_filter, raw_endpoints, sample_refs


def run(prepared: pl.LazyFrame, ctx: Context, walk_stats: pl.DataFrame | None) -> list[Finding]:
    cfg = ctx.config["scanning"]
    refs_n = ctx.config["report"]["sample_refs"]
    window = f"{cfg['window_minutes']}m"
    windows = (
        prepared.with_columns(pl.col("ts").dt.truncate(window).alias("window"))
        .group_by("client", "window")
        .agg(
            pl.len().alias("requests"),
            # Distinct path *templates*: an id probe is many paths but one endpoint.
            pl.col("endpoint").n_unique().alias("distinct_paths"),
            (pl.col("status") >= 400).mean().alias("error_share"),
            pl.col("ts").min().alias("start"),
            pl.col("ts").max().alias("end"),
            pl.col("bytes_out").sum().alias("bytes"),
        )
        .filter(
            (pl.col("distinct_paths") >= cfg["min_distinct_paths"])
            & (pl.col("error_share") >= cfg["min_error_share"])
        )
        .sort("client", "window")
        .collect()
    )
    findings: list[Finding] = []
    gap = timedelta(minutes=cfg["window_minutes"])
    for client, group in windows.group_by("client", maintain_order=True):
        runs: list[list[dict]] = []
        for row in group.iter_rows(named=True):
            if runs and row["window"] - runs[-1][-1]["window"] <= gap:
                runs[-1].append(row)
            else:
                runs.append([row])
        for run_ in runs:
            start, end = run_[0]["start"], run_[-1]["end"]
            events = (
                prepared.filter((pl.col("client") == client[0]) & pl.col("ts").is_between(start, end))
                .select(
                    "ts",
                    "source_file",
                    "source_line",
                    pl.col("endpoint").cast(pl.String),
                    "status",
                    "bytes_out",
                )
                .sort("ts", "source_file", "source_line")
                .collect()
            )
            top = (
                events.group_by("endpoint").len().sort(["len", "endpoint"], descending=[True, False]).head(5)
            )
            findings.append(
                Finding(
                    kind="scanning",
                    severity="low",
                    score=round(
                        min(1.0, events.get_column("endpoint").n_unique() / (5 * cfg["min_distinct_paths"])),
                        4,
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
                        f"{client[0]} probed {events.get_column('endpoint').n_unique():,} distinct paths in "
                        f"{(end - start).total_seconds() / 60:.0f} minutes, "
                        f"{(events.get_column('status') >= 400).mean():.0%} answered with errors."
                    ),
                    evidence={
                        "pattern": "path_burst",
                        "window_start": start,
                        "window_end": end,
                        "distinct_paths": events.get_column("endpoint").n_unique(),
                        "error_share": float((events.get_column("status") >= 400).mean() or 0),
                        "refused_share": None,
                        "distinct_ids": None,
                        "top_paths": top.get_column("endpoint").to_list(),
                        "criteria": {
                            k: cfg[k] for k in ("window_minutes", "min_distinct_paths", "min_error_share")
                        },
                        "sample_refs": sample_refs(events, refs_n),
                    },
                    query=event_query([client[0]], start=start, end=end),
                    censored=censored(start, end, ctx, slack_hours=0),
                    clients=[client[0]],
                )
            )
    findings.extend(_id_probes(prepared, ctx, walk_stats))
    return findings


def _id_probes(prepared: pl.LazyFrame, ctx: Context, stats: pl.DataFrame | None) -> list[Finding]:
    cfg = ctx.config["scanning"]
    if stats is None or stats.height == 0 or "probe" not in stats.columns:
        return []
    probes = stats.filter(pl.col("probe") & (pl.col("distinct_objects") >= cfg["probe_min_ids"])).sort(
        "client", "endpoint_key", "start"
    )
    out = []
    for row in probes.iter_rows(named=True):
        out.append(
            Finding(
                kind="scanning",
                severity="low",
                score=round(min(1.0, 0.5 + row["refused_share"] / 2), 4),
                actor=None,
                method=row["method"],
                host=row["host"],
                endpoint=row["endpoint_key"],
                start=row["start"],
                end=row["end"],
                requests=row["requests"],
                bytes=int(row["bytes"] or 0),
                summary=(
                    f"{row['client']} tried {row['distinct_objects']:,} ids of {row['method']} {row['endpoint_key']} "
                    f"within {(row['end'] - row['start']).total_seconds() / 60:.0f} minutes; "
                    f"{row['refused_share']:.0%} were refused."
                ),
                evidence={
                    "pattern": "id_probe",
                    "window_start": row["start"],
                    "window_end": row["end"],
                    "distinct_paths": None,
                    "error_share": None,
                    "refused_share": row["refused_share"],
                    "distinct_ids": row["distinct_objects"],
                    "top_paths": [],
                    "criteria": {
                        k: cfg[k] for k in ("probe_min_ids", "probe_max_requests", "probe_min_refused_share")
                    },
                    "sample_refs": [],
                },
                query=event_query(
                    [row["client"]],
                    row["method"],
                    raw_endpoints(row["endpoint_key"]),
                    row["start"],
                    row["end"],
                    query_slot_filter(row["endpoint_key"]),
                ),
                censored=censored(row["start"], row["end"], ctx, slack_hours=0),
                distinct_objects=row["objects_returned"],
                objects_requested=row["distinct_objects"],
                clients=[row["client"]],
            )
        )
    return out
