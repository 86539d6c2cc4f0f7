"""Actors: the addresses whose requests belong to one operation.

An attacker that rotates through tens of hosting addresses, or hundreds of residential ones with a few
requests each, looks ordinary address by address. What gives the operation away is what its requests
share, on a record endpoint ``E`` (the part of an endpoint template up to its first id placeholder,
``/api/v1/customers/{id}``):

* **sessionless record reading**: the client reads records of ``E`` but never their sub-resources
  (``/customers/{id}/plan``, ``…/usage``) the way the app's session flow does, and never reads the same
  record twice successfully (a customer re-reads their own; retries after errors are not re-reads);
* **one walk**: on a given day the walkers' ids fall into one narrow band of the id space (ids in order,
  or shuffled within blocks), so clustering the day's ids by gaps puts the addresses of one walk together;
* **shared request shape and time**: walkers that share a user agent and are active in the same period
  belong to the same stream (this also links a walk that works from an unordered list of ids);
* a client reading with its own credential (a partner's API key) is not a walker;
* single-request addresses (no successful login or token call of their own) join an actor when their one
  read has one of the actor's user agents, within the actor's band of that day (and near its hours) or
  its active period; a user agent that many ordinary readers share (the app's own) counts only with
  the band.

Legitimate traffic that also touches many ids does not qualify: customer-service staff open the plan and
usage of the customers they read and re-open some; carrier NAT addresses re-read their customers' own
records; partners use their own endpoints; scanners' short, refused id runs are scanning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from . import Context, ok_with_body

BASE_RE = r"^(.*?\{[a-z]+\})"
SESSION_RE = r"(?i)/(?:auth|login|logon|signin|sign-in|session|sessions|token|refresh|oauth2?)(?:/|$)"


@dataclass
class Linked:
    """An operation: its record endpoint, member addresses, and the signals that linked them."""

    key: str  # deterministic: endpoint + first address
    base: str  # record endpoint template
    method: str
    clients: list[str]
    signals: dict[str, int] = field(default_factory=dict)  # edges by signal
    first: datetime | None = None
    last: datetime | None = None


def record_events(prepared: pl.LazyFrame) -> pl.LazyFrame:
    """Requests with an id in the path, with their record endpoint (``base``) and whether they are a
    sub-resource of it."""
    ev = prepared.filter(pl.col("object_id").is_not_null() & (pl.col("id_slot") == "path"))
    base = pl.col("endpoint").cast(pl.String).str.extract(BASE_RE)
    return ev.with_columns(base.alias("base")).with_columns(
        (pl.col("endpoint").cast(pl.String) != pl.col("base")).alias("is_sub")
    )


def reader_profiles(prepared: pl.LazyFrame, ctx: Context) -> pl.DataFrame:
    """Per client × record endpoint: how it reads records (see the module docstring)."""
    cfg = ctx.config["actors"]
    rec = record_events(prepared)
    main = ~pl.col("is_sub")
    ok = main & ok_with_body()
    # One pass per client × record endpoint. "Ids with sub-resource reads" counts the distinct ids of
    # the sub-resource requests (the app reads plan/usage of the record it just read).
    prof = (
        rec.group_by("client", "method", "base")
        .agg(
            pl.col("object_id").filter(main).n_unique().alias("ids"),
            pl.col("object_id").filter(pl.col("is_sub")).n_unique().alias("ids_with_sub"),
            (pl.col("object_id").filter(ok).unique_counts() >= 2).sum().alias("ids_reread"),
            pl.col("object_id").filter(ok).n_unique().alias("ids_returned"),
            main.sum().alias("requests"),
            (main & pl.col("status").is_in([401, 403, 404, 429])).sum().alias("refused"),
            (main & pl.col("principal").is_not_null()).sum().alias("authenticated"),
            pl.col("ts").filter(main).min().alias("first"),
            pl.col("ts").filter(main).max().alias("last"),
        )
        .filter(pl.col("requests") > 0)
        .collect()
    )
    if prof.height == 0:
        return prof
    sessionless = (pl.col("ids_with_sub") / pl.col("ids") <= cfg["max_subresource_share"]) & (
        pl.col("ids_reread") / pl.col("ids") <= cfg["max_reread_share"]
    )
    scan = ctx.config["scanning"]
    probe = (
        (pl.col("refused") / pl.col("requests") >= scan["probe_min_refused_share"])
        & ((pl.col("last") - pl.col("first")) <= pl.duration(days=1))
        & (pl.col("ids") >= scan["probe_min_ids"])
    )
    # A client that reads with its own credential (a partner's API key) reads as itself: not a walker.
    anonymous = pl.col("authenticated") / pl.col("requests") < 0.5
    candidate = sessionless & anonymous & ~probe
    prof = prof.with_columns(
        (candidate & (pl.col("ids") >= 2)).alias("walker"),
        (candidate & (pl.col("ids") == 1)).alias("_single"),
    )
    keys = ["client", "method", "base"]
    flagged = prof.filter(pl.col("walker") | pl.col("_single")).select(keys)
    # Evidence of an app session (a successful login/refresh/token call), for the candidates only.
    sessions = (
        prepared.join(flagged.select("client").unique().lazy(), on="client", how="semi")
        .filter(
            pl.col("status").is_between(200, 299)
            & pl.col("endpoint").cast(pl.String).str.contains(SESSION_RE)
        )
        .group_by("client")
        .agg(pl.len().alias("session_calls"))
        .collect()
    )
    agents = (
        rec.filter(main)
        .join(flagged.lazy(), on=keys, how="semi", nulls_equal=True)
        .group_by(keys)
        .agg(pl.col("user_agent").cast(pl.String).drop_nulls().unique().sort().alias("user_agents"))
        .collect()
    )
    prof = (
        prof.join(sessions, on="client", how="left")
        .join(agents, on=keys, how="left", nulls_equal=True)
        .with_columns(pl.col("session_calls").fill_null(0), pl.col("user_agents").fill_null([]))
    )
    return prof.with_columns((pl.col("_single") & (pl.col("session_calls") == 0)).alias("single")).drop(
        "_single"
    )


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        return True


def link(prepared: pl.LazyFrame, ctx: Context) -> tuple[list[Linked], pl.DataFrame]:
    """Actors on record endpoints (walk operations), and the reader profiles they were built from."""
    cfg = ctx.config["actors"]
    prof = reader_profiles(prepared, ctx)
    if prof.height == 0:
        return [], prof
    linked: list[Linked] = []
    common = _common_agents(prepared, prof, cfg["common_agent_clients"])
    for (method, base), group in prof.filter(pl.col("walker") | pl.col("single")).group_by(
        "method", "base", maintain_order=False
    ):
        walkers = group.filter(pl.col("walker"))
        if walkers.height == 0:
            continue
        members = set(group.get_column("client").to_list())
        rec = (
            record_events(prepared)
            .filter((pl.col("base") == base) & same_method(method) & ~pl.col("is_sub"))
            .filter(pl.col("client").is_in(pl.Series(sorted(members), dtype=pl.String).implode()))
            .select("client", "ts", "object_id", pl.col("user_agent").cast(pl.String))
            .collect()
        )
        walker_set = set(walkers.get_column("client").to_list())
        uf = _Union()
        signals = {"band": 0, "agent_and_time": 0, "single_band": 0, "single_agent": 0}
        for c in walker_set:
            uf.find(c)
        _band_edges(rec, walker_set, uf, signals, cfg)
        _agent_edges(walkers, uf, signals, cfg)
        comps: dict[str, set[str]] = {}
        for c in walker_set:
            comps.setdefault(uf.find(c), set()).add(c)
        # Singles: their one read lands in a component's band, or has its user agent within its span.
        singles = group.filter(pl.col("single"))
        _attach_singles(rec, singles, comps, uf, signals, cfg, common.get((method, base), set()))
        comps = {}
        for c in walker_set | set(singles.get_column("client").to_list()):
            root = uf.find(c)
            if root in {uf.find(w) for w in walker_set}:
                comps.setdefault(root, set()).add(c)
        for clients in comps.values():
            sub = rec.filter(pl.col("client").is_in(pl.Series(sorted(clients), dtype=pl.String).implode()))
            if sub.get_column("object_id").n_unique() < ctx.config["enumeration"]["min_distinct_objects"]:
                continue
            ordered = sorted(clients)
            linked.append(
                Linked(
                    key=f"{method} {base} {ordered[0]}",
                    base=base,
                    method=method,
                    clients=ordered,
                    signals=dict(signals),
                    first=sub.get_column("ts").min(),
                    last=sub.get_column("ts").max(),
                )
            )
    return sorted(linked, key=lambda a: a.key), prof


def same_method(method: str | None) -> pl.Expr:
    return pl.col("method").is_null() if method is None else (pl.col("method") == method)


def _band_edges(
    rec: pl.DataFrame, walkers: set[str], uf: _Union, signals: dict[str, int], cfg: dict[str, Any]
) -> None:
    """Per day, cluster the walkers' numeric ids by gaps; addresses in one cluster walk together."""
    nums = (
        rec.filter(pl.col("client").is_in(pl.Series(sorted(walkers), dtype=pl.String).implode()))
        .with_columns(
            pl.col("object_id").cast(pl.Int64, strict=False).alias("n"), pl.col("ts").dt.date().alias("day")
        )
        .drop_nulls("n")
    )
    if nums.height == 0:
        return
    nums = nums.sort("day", "n").with_columns(
        (
            (pl.col("n").diff().over("day").fill_null(cfg["band_gap"] + 1) > cfg["band_gap"])
            .cum_sum()
            .over("day")
        ).alias("cluster")
    )
    clusters = (
        nums.group_by("day", "cluster")
        .agg(pl.col("client").unique().sort(), pl.len().alias("n"))
        .filter(pl.col("client").list.len() >= 2)
    )
    for members in clusters.get_column("client").to_list():
        first = members[0]
        for other in members[1:]:
            if uf.union(first, other):
                signals["band"] += 1


def _agent_edges(walkers: pl.DataFrame, uf: _Union, signals: dict[str, int], cfg: dict[str, Any]) -> None:
    """Walkers with a user agent in common, active within ``agent_gap_hours`` of each other."""
    rows = (
        walkers.select("client", "first", "last", "user_agents")
        .explode("user_agents")
        .drop_nulls("user_agents")
    )
    for (_ua,), group in rows.group_by("user_agents", maintain_order=False):
        g = group.sort("first", "client")
        clients, firsts, lasts = g["client"].to_list(), g["first"].to_list(), g["last"].to_list()
        reach = None
        prev = None
        for c, f, l_ in zip(clients, firsts, lasts, strict=True):
            near = (
                prev is not None
                and reach is not None
                and f <= reach + timedelta(hours=cfg["agent_gap_hours"])
            )
            if near and uf.union(prev, c):
                signals["agent_and_time"] += 1
            if reach is None or l_ > reach:
                reach, prev = l_, c


def _common_agents(prepared: pl.LazyFrame, prof: pl.DataFrame, least: int) -> dict[tuple[Any, Any], set[str]]:
    """Per (method, record endpoint): the user agents of at least ``least`` ordinary readers (neither
    walkers nor single reads: customers in the app's session flow). Sharing one of those says nothing."""
    ordinary = prof.filter(~pl.col("walker") & ~pl.col("single")).select("client", "method", "base")
    if ordinary.height == 0:
        return {}
    counts = (
        record_events(prepared)
        .filter(~pl.col("is_sub"))
        .join(ordinary.lazy(), on=["client", "method", "base"], how="semi", nulls_equal=True)
        .drop_nulls("user_agent")  # no user agent is no shared one
        .group_by("method", "base", pl.col("user_agent").cast(pl.String))
        .agg(pl.col("client").n_unique().alias("n"))
        .filter(pl.col("n") >= least)
        .collect()
    )
    out: dict[tuple[Any, Any], set[str]] = {}
    for method, base, agent, _n in counts.iter_rows():
        out.setdefault((method, base), set()).add(agent)
    return out


def _attach_singles(
    rec: pl.DataFrame,
    singles: pl.DataFrame,
    comps: dict[str, set[str]],
    uf: _Union,
    signals: dict[str, int],
    cfg: dict[str, Any],
    common: set[str],
) -> None:
    if singles.height == 0 or not comps:
        return
    single_ids = set(singles.get_column("client").to_list())
    ev = rec.with_columns(
        pl.col("object_id").cast(pl.Int64, strict=False).alias("n"), pl.col("ts").dt.date().alias("day")
    )
    comp_of = {c: root for root, cs in comps.items() for c in cs}
    walk = ev.filter(
        pl.col("client").is_in(pl.Series(sorted(comp_of), dtype=pl.String).implode())
    ).with_columns(pl.col("client").replace_strict(comp_of, return_dtype=pl.String).alias("comp"))
    bands = (
        walk.drop_nulls("n")
        .group_by("comp", "day")
        .agg(
            pl.col("n").quantile(0.02).alias("lo"),
            pl.col("n").quantile(0.98).alias("hi"),
            pl.col("ts").min().alias("from"),
            pl.col("ts").max().alias("to"),
        )
    )
    near = pl.duration(hours=cfg["band_slack_hours"])
    spans = walk.group_by("comp", "user_agent").agg(
        pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last")
    )
    one = ev.filter(pl.col("client").is_in(pl.Series(sorted(single_ids), dtype=pl.String).implode()))
    # A single read joins through the band only with one of the component's user agents too.
    agents = walk.select("comp", "user_agent").unique()
    in_band = (
        one.join(bands, on="day", how="inner")
        .filter(
            pl.col("n").is_between(pl.col("lo"), pl.col("hi"))
            & pl.col("ts").is_between(pl.col("from") - near, pl.col("to") + near)
        )
        .join(agents, on=["comp", "user_agent"], how="inner")
    )
    for c, comp in in_band.select("client", "comp").unique().sort("client", "comp").iter_rows():
        if uf.union(comp, c):
            signals["single_band"] += 1
    slack = pl.duration(hours=cfg["agent_gap_hours"])
    by_agent = (
        one.filter(~pl.col("user_agent").is_in(pl.Series(sorted(common), dtype=pl.String).implode()))
        .join(spans, on="user_agent", how="inner")
        .filter(pl.col("ts").is_between(pl.col("first") - slack, pl.col("last") + slack))
    )
    for c, comp in by_agent.select("client", "comp").unique().sort("client", "comp").iter_rows():
        if uf.find(c) == c and uf.union(comp, c):
            signals["single_agent"] += 1
