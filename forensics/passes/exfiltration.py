"""Exfiltration windows: from when to when an actor took records, and how many.

For each linked actor (:mod:`.actors`) the daily series of requests, records returned (distinct ids
answered 2xx with a body) and bytes on its record endpoint is built from de-duplicated events. A window is
the maximal stretch of activity that tolerates pauses of up to ``max_pause_days`` quiet days; it is exact to
the first and last request. Each window with enough records is a finding with:

* days active, days in the window, the longest pause;
* records per day (median, max) and regularity (1 − coefficient of variation of daily requests);
* the share of the id space taken (distinct ids requested / the id range seen on the endpoint);
* persistence (days active / days in the window) and a low-and-slow score that rises with persistence,
  regularity, duration, and with how small each address's daily volume is next to its peers';
* ``censored``: the window touches the first or last available evidence, so it may have started earlier
  or ended later than the logs show.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from ..findings import Finding
from . import Context, censored, event_query, ok_with_body, sample_refs
from .actors import Linked, record_events, same_method


def run(prepared: pl.LazyFrame, ctx: Context, actors: list[Linked], dedup: dict[str, Any]) -> list[Finding]:
    cfg = ctx.config["exfiltration"]
    refs_n = ctx.config["report"]["sample_refs"]
    out: list[Finding] = []
    if not actors:
        return out
    rec_all = record_events(prepared)
    peer_daily = (
        prepared.group_by("client", pl.col("ts").dt.date().alias("day"))
        .len()
        .select(pl.col("len").quantile(0.99))
    ).collect().item() or 1.0
    for actor in actors:
        members = pl.Series(actor.clients, dtype=pl.String).implode()
        family = rec_all.filter((pl.col("base") == actor.base) & same_method(actor.method))
        id_range = (
            family.select(
                pl.col("object_id").cast(pl.Int64, strict=False).min().alias("lo"),
                pl.col("object_id").cast(pl.Int64, strict=False).max().alias("hi"),
            )
            .collect()
            .row(0)
        )
        ev = family.filter(pl.col("client").is_in(members)).sort("ts", "source_file", "source_line").collect()
        if ev.height == 0:
            continue
        ev = ev.with_columns(pl.col("ts").dt.date().alias("day"), ok_with_body().alias("ok"))
        days = (
            ev.group_by("day")
            .agg(
                pl.len().alias("requests"),
                pl.col("object_id").filter(pl.col("ok")).n_unique().alias("records"),
                pl.col("bytes_out").sum().alias("bytes"),
            )
            .sort("day")
        )
        for window_days in _windows(days.get_column("day").to_list(), cfg["max_pause_days"]):
            lo_day, hi_day = window_days[0], window_days[-1]
            w = ev.filter(pl.col("day").is_between(lo_day, hi_day))
            returned = w.filter(pl.col("ok")).get_column("object_id").n_unique()
            if returned < cfg["min_records"]:
                continue
            out.append(
                _finding(
                    actor,
                    w,
                    days.filter(pl.col("day").is_between(lo_day, hi_day)),
                    returned,
                    id_range,
                    peer_daily,
                    ctx,
                    dedup,
                    refs_n,
                )
            )
    return out


def _windows(active: list[Any], max_pause: int) -> list[list[Any]]:
    """Split sorted active days where more than ``max_pause`` quiet days pass."""
    out: list[list[Any]] = []
    for d in active:
        if out and (d - out[-1][-1]).days - 1 <= max_pause:
            out[-1].append(d)
        else:
            out.append([d])
    return out


def _finding(
    actor: Linked,
    w: pl.DataFrame,
    days: pl.DataFrame,
    returned: int,
    id_range: tuple,
    peer_daily: float,
    ctx: Context,
    dedup: dict[str, Any],
    refs_n: int,
) -> Finding:
    cfg = ctx.config["exfiltration"]
    start: datetime = w.get_column("ts").min()
    end: datetime = w.get_column("ts").max()
    day_list = days.get_column("day").to_list()
    span = (day_list[-1] - day_list[0]).days + 1
    pauses = [(b - a).days - 1 for a, b in zip(day_list, day_list[1:], strict=False)]
    req = days.get_column("requests")
    mean = float(req.mean() or 0)
    cv = float(req.std() or 0) / mean if mean else 1.0
    regularity = max(0.0, 1.0 - min(1.0, cv))
    persistence = len(day_list) / span
    requested = w.get_column("object_id").n_unique()
    lo, hi = id_range
    id_share = requested / (hi - lo + 1) if lo is not None and hi is not None and hi > lo else 0.0
    per_address_day = w.group_by("client", "day").len().get_column("len").max() or 0
    lowness = max(0.0, 1.0 - min(1.0, per_address_day / max(peer_daily, 1.0)))
    low_and_slow = round((persistence + regularity + min(1.0, span / 14) + lowness) / 4, 4)
    pii = (ctx.pii or {}).get((actor.method or "", actor.base), {})
    pii_kinds = sorted(pii.get("pii_kinds", []))
    severity = "medium"
    if pii_kinds and returned >= cfg["critical_records"]:
        severity = "critical"
    elif pii_kinds or returned >= cfg["critical_records"]:
        severity = "high"
    observers = sorted(set(w.get_column("observer").cast(pl.String).to_list()))
    endpoints = sorted(set(w.get_column("endpoint").cast(pl.String).to_list()))
    cens = censored(start, end, ctx)
    score = round(min(1.0, 0.5 * min(1.0, returned / cfg["critical_records"]) + 0.5 * low_and_slow), 4)
    summary = (
        f"{len(actor.clients)} address(es) took {returned:,} records through {actor.method} {actor.base} "
        f"from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC ({len(day_list)} active days"
        + (f", pauses up to {max(pauses)} days" if pauses and max(pauses) > 0 else "")
        + ")"
        + (
            "; the evidence or reporting range begins less than a day before it: earlier activity may be missing"
            if cens["start"]
            else ""
        )
        + (
            "; the evidence or reporting range ends less than a day after it: later activity may be missing"
            if cens["end"]
            else ""
        )
        + "."
    )
    return Finding(
        kind="exfiltration_window",
        severity=severity,
        score=score,
        actor=None,
        method=actor.method,
        host=w.get_column("host").drop_nulls().cast(pl.String).mode().sort().first()
        if w.get_column("host").drop_nulls().len()
        else None,
        endpoint=actor.base,
        start=start,
        end=end,
        requests=w.height,
        bytes=int(w.get_column("bytes_out").sum() or 0),
        summary=summary,
        evidence={
            "days_active": len(day_list),
            "days_in_window": span,
            "longest_pause_days": max(pauses) if pauses else 0,
            "daily_records_median": float(days.get_column("records").median() or 0),
            "daily_records_max": int(days.get_column("records").max() or 0),
            "regularity": regularity,
            "id_space_share": id_share,
            "persistence": persistence,
            "low_and_slow_score": low_and_slow,
            "addresses": len(actor.clients),
            "observers": observers,
            "clock_skew_seconds": dedup.get("clock_skew_seconds"),
            "linking": actor.signals,
            "criteria": {k: cfg[k] for k in ("max_pause_days", "min_records")}
            | {k: ctx.config["actors"][k] for k in ctx.config["actors"]},
            "sample_refs": sample_refs(w, refs_n),
        },
        query=event_query(actor.clients, actor.method, endpoints, start, end),
        censored=cens,
        distinct_objects=returned,
        objects_requested=requested,
        pii_kinds=pii_kinds,
        clients=list(actor.clients),
    )
