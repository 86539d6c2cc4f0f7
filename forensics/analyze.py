"""``forensics analyze``: run the passes over a case and write findings.json, affected_records.csv, iocs.csv.

Baselines always use all the evidence; ``since``/``until``/``clients``/``endpoints`` only limit what is
reported. A finding cut by the reporting range keeps the part inside it (its numbers recounted there)
and is marked censored on that side. Allowlisted clients are examined like any other and reported in
``cleared``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from . import config as config_mod
from . import findings as fmodel
from .case import Case
from .findings import Actor, Cleared, Finding
from .passes import (
    Context,
    actors,
    enumeration,
    exfiltration,
    exposure,
    materialize,
    ok_with_body,
    prepare,
    sample_refs,
    scanning,
    sql_view,
    ts_from_sql,
    volume,
)
from .passes.dedup import deduplicate
from .safe import write_csv


@dataclass
class AnalyzeResult:
    document: dict[str, Any]
    findings: list[Finding]
    cleared: list[Cleared]
    paths: dict[str, Path]


def load_pii(case: Case) -> dict[tuple[str, str], dict[str, Any]]:
    """(method, endpoint) → what the inventory knows the endpoint returns (empty without an inventory)."""
    path = case.path / "inventory.parquet"
    if not path.exists():
        return {}
    inv = pl.read_parquet(path, glob=False)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in inv.iter_rows(named=True):
        kinds = row.get("pii_kinds") or []
        if not kinds:
            continue
        key = (row.get("method") or "", row.get("endpoint") or "")
        facts = out.setdefault(
            key,
            {
                "pii_kinds": set(),
                "auth_kinds": set(),
                "sources": set(),
                "unauthenticated": False,
                "host": row.get("host"),
            },
        )
        facts["pii_kinds"].update(kinds)
        facts["auth_kinds"].update(row.get("auth_kinds") or [])
        facts["sources"].update(row.get("sources") or [])
        facts["unauthenticated"] = facts["unauthenticated"] or bool(row.get("returns_pii_without_auth"))
    return {
        k: {
            **v,
            "pii_kinds": sorted(v["pii_kinds"]),
            "auth_kinds": sorted(v["auth_kinds"]),
            "sources": sorted(v["sources"]),
        }
        for k, v in out.items()
    }


def _traffic(case: Case) -> pl.LazyFrame:
    events = case.scan_events()
    try:
        from .inventory import apply_inventory  # refined templates, when the case has an inventory
    except ImportError:  # pragma: no cover - the inventory module ships with the package
        return events
    return apply_inventory(events, case)


def _allowlisted(
    client: str, principals: list[str], user_agents: list[str], cfg: dict[str, Any]
) -> str | None:
    allow = cfg["allowlist"]
    if client in allow["clients"]:
        return f"allowlisted client {client}"
    try:
        ip = ipaddress.ip_address(client)
        for cidr in allow["cidrs"]:
            if ip in ipaddress.ip_network(cidr, strict=False):
                return f"allowlisted range {cidr}"
    except ValueError:
        pass
    for p in principals:
        if p in allow["principals"]:
            return f"allowlisted principal {p}"
    for pattern in allow["user_agents"]:
        if any(re.search(pattern, ua or "") for ua in user_agents):
            return f"allowlisted user agent /{pattern}/"
    return None


def _identities(prepared: pl.LazyFrame, clients: list[str]) -> dict[str, dict[str, list[str]]]:
    """Principals and the most frequent user agents of each client."""
    if not clients:
        return {}
    sub = prepared.filter(pl.col("client").is_in(pl.Series(clients, dtype=pl.String).implode()))
    uas = (
        sub.group_by("client", "user_agent")
        .len()
        .sort(["client", "len", "user_agent"], descending=[False, True, False], nulls_last=True)
        .group_by("client", maintain_order=True)
        .agg(pl.col("user_agent").drop_nulls().head(5))
        .collect()
    )
    prin = sub.group_by("client").agg(pl.col("principal").drop_nulls().unique().sort().head(20)).collect()
    out: dict[str, dict[str, list[str]]] = {c: {"user_agents": [], "principals": []} for c in clients}
    for c, ua in uas.iter_rows():
        out[c]["user_agents"] = list(ua)
    for c, p in prin.iter_rows():
        out[c]["principals"] = list(p)
    return out


def _parse_time(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    from .errors import ForensicsError

    try:
        series = pl.Series([value]).str.to_datetime(time_unit="us", time_zone="UTC")
    except Exception:
        raise ForensicsError(
            f"not a time: {value!r}", hint="use ISO 8601, e.g. 2022-11-25 or 2022-11-25T10:00:00Z"
        ) from None
    return series[0]


def analyze(
    case_dir: str | Path,
    config_path: str | Path | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    clients: list[str] | None = None,
    endpoints: list[str] | None = None,
) -> AnalyzeResult:
    case = Case.open(case_dir)
    cfg = config_mod.load(config_path)
    events, dedup_report = deduplicate(_traffic(case))
    prepared = materialize(prepare(events, cfg))
    bounds = prepared.select(
        pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi"), pl.len().alias("n")
    ).collect()
    first_ts, last_ts, n_events = bounds.row(0)
    since_t, until_t = _parse_time(since), _parse_time(until)
    ctx = Context(cfg, first_ts, last_ts, since_t, until_t, load_pii(case))

    found: list[Finding] = []
    linked, _profiles = actors.link(prepared, ctx)
    ctx.members = {a.key: a.clients for a in linked}
    member_of = {c: a.key for a in linked for c in a.clients}
    found += exfiltration.run(prepared, ctx, linked, dedup_report.as_dict())
    # Enumeration judges a linked actor's addresses together, as the one client they are.
    as_actors = prepared.with_columns(pl.col("client").replace(member_of)) if member_of else prepared
    enum_findings, walks = enumeration.run(as_actors, ctx)
    found += enum_findings
    found += scanning.run(
        prepared, ctx, walks.filter(~pl.col("client").is_in(list(ctx.members))) if walks.height else walks
    )
    vol_findings, heavy = volume.run(prepared, ctx)
    found += vol_findings
    found += exposure.run(prepared, ctx)

    flagged_clients = sorted({c for f in found for c in f.clients})
    heavy_clients = heavy.get_column("client").to_list() if heavy.height else []
    walkers = [c for c in _walkers_examined(walks, cfg) if c not in ctx.members]
    idents = _identities(prepared, sorted(set(flagged_clients) | set(heavy_clients) | set(walkers)))

    # Allowlists apply retroactively: the client's findings become a cleared entry.
    cleared: list[Cleared] = []
    kept: list[Finding] = []
    allowed: dict[str, str] = {}
    for c in flagged_clients:
        why = _allowlisted(
            c, idents.get(c, {}).get("principals", []), idents.get(c, {}).get("user_agents", []), cfg
        )
        if why:
            allowed[c] = why
    for f in found:
        if f.clients and all(c in allowed for c in f.clients):
            continue
        kept.append(f)

    kept = _report_filter(kept, prepared, ctx, clients, endpoints)
    numbered = fmodel.number(kept)
    actor_of = _assign_actors(numbered, idents, [a.clients for a in linked])
    cleared = _cleared(heavy, walks, walkers, allowed, flagged_clients, numbered, idents, actor_of, cfg)

    sources = (
        prepared.group_by(pl.col("source_format").cast(pl.String))
        .agg(pl.len().alias("events"))
        .sort("source_format")
        .collect()
    )
    case_info = {
        "events": n_events,
        "first_ts": fmodel.iso(first_ts),
        "last_ts": fmodel.iso(last_ts),
        "sources": {k: v for k, v in sources.iter_rows()},
        "reporting_range": {"since": fmodel.iso(since_t), "until": fmodel.iso(until_t)},
        "observers": dedup_report.as_dict(),
        "evidence_sha256": case.evidence_digest(),
    }
    doc = fmodel.document(numbered, cleared, cfg, config_mod.digest(cfg), case_info)
    paths = {
        "findings": case.path / "findings.json",
        "affected_records": case.path / "affected_records.csv",
        "iocs": case.path / "iocs.csv",
    }
    fmodel.write(paths["findings"], doc)
    write_csv(affected_records(prepared, numbered, ctx), str(paths["affected_records"]))
    write_csv(iocs(prepared, numbered), str(paths["iocs"]))
    return AnalyzeResult(doc, numbered, cleared, paths)


def _walkers_examined(walks: pl.DataFrame, cfg: dict[str, Any]) -> list[str]:
    """Clients that touched many distinct objects but were not flagged (NAT, staff, partners)."""
    if walks.height == 0:
        return []
    many = walks.filter(
        (pl.col("distinct_objects") >= cfg["enumeration"]["min_distinct_objects"]) & ~pl.col("flagged")
    )
    return sorted(set(many.get_column("client").to_list()))


def _report_filter(
    found: list[Finding],
    prepared: pl.LazyFrame,
    ctx: Context,
    clients: list[str] | None,
    endpoints: list[str] | None,
) -> list[Finding]:
    """Apply --client/--endpoint/--since/--until to what is reported (never to the baselines)."""
    out = []
    for f in found:
        if clients and not (set(f.clients) & set(clients)):
            continue
        if endpoints and f.endpoint not in endpoints and (f.endpoint or "").split("?", 1)[0] not in endpoints:
            continue
        if ctx.since is None and ctx.until is None:
            out.append(f)
            continue
        if f.start is None or f.end is None:
            out.append(f)
            continue
        if (ctx.since and f.end < ctx.since) or (ctx.until and f.start > ctx.until):
            continue
        if (ctx.since and f.start < ctx.since) or (ctx.until and f.end > ctx.until):
            _clip(f, prepared, ctx)
        out.append(f)
    return out


def _clip(f: Finding, prepared: pl.LazyFrame, ctx: Context) -> None:
    """Recount a finding inside the reporting range and mark the cut side censored."""
    lo = max(f.start, ctx.since) if ctx.since else f.start
    hi = min(f.end, ctx.until) if ctx.until else f.end
    cut_start, cut_end = lo != f.start, hi != f.end
    sql = f.query.replace(ts_from_sql(f.start), ts_from_sql(lo, exact=cut_start)).replace(
        f"ts <= '{fmodel.iso(f.end)}'", f"ts <= '{fmodel.iso(hi)}'"
    )
    ctx_sql = pl.SQLContext(events=sql_view(prepared))
    inside = ctx_sql.execute(sql, eager=True)
    f.query = sql
    f.start = inside.get_column("ts").min() if inside.height else lo
    f.end = inside.get_column("ts").max() if inside.height else hi
    f.requests = inside.height
    f.bytes = int(inside.get_column("bytes_out").sum() or 0) if inside.height else 0
    if f.objects_requested is not None:
        f.objects_requested = inside.get_column("object_id").drop_nulls().n_unique()
        f.distinct_objects = inside.filter(ok_with_body()).get_column("object_id").drop_nulls().n_unique()
    f.censored = {"start": f.censored["start"] or cut_start, "end": f.censored["end"] or cut_end}
    if "sample_refs" in f.evidence:  # provenance from inside the range, like every other figure
        f.evidence["sample_refs"] = sample_refs(inside, ctx.config["report"]["sample_refs"])
    records = f" and {f.distinct_objects:,} records" if f.distinct_objects is not None else ""
    f.summary += (
        f" Within the reporting range: {f.requests:,} requests{records}"
        + (f" from {f.start:%Y-%m-%d %H:%M} to {f.end:%Y-%m-%d %H:%M} UTC" if inside.height else "")
        + "; the description above and the other evidence figures cover the whole window."
    )


def _is_address(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _assign_actors(
    numbered: list[Finding], idents: dict[str, dict[str, list[str]]], groups: list[list[str]]
) -> dict[str, str]:
    """A1, A2, … in order of first appearance in the numbered findings. The addresses of a linked
    operation share one actor id; every other address is an actor of its own."""
    group_of = {c: i for i, g in enumerate(groups) for c in g}
    actor_of: dict[str, str] = {}
    n = 0
    for f in numbered:
        for c in f.clients:
            if c in actor_of:
                continue
            n += 1
            if c in group_of:
                for m in groups[group_of[c]]:
                    actor_of[m] = f"A{n}"
            else:
                actor_of[c] = f"A{n}"
    for f in numbered:
        if not f.clients:
            continue
        ids = sorted({actor_of[c] for c in f.clients})
        members = sorted(c for c in actor_of if actor_of[c] in ids)
        f.actor = Actor(
            id=ids[0],
            client_ips=members,
            principals=sorted({p for c in members for p in idents.get(c, {}).get("principals", [])}),
            user_agents=sorted({u for c in members for u in idents.get(c, {}).get("user_agents", [])})[:10],
        )
    return actor_of


def _cleared(
    heavy: pl.DataFrame,
    walks: pl.DataFrame,
    walkers: list[str],
    allowed: dict[str, str],
    flagged: list[str],
    numbered: list[Finding],
    idents: dict[str, dict[str, list[str]]],
    actor_of: dict[str, str],
    cfg: dict[str, Any],
) -> list[Cleared]:
    reported = {c for f in numbered for c in f.clients}
    entries: dict[str, Cleared] = {}
    next_id = 1 + max((int(v[1:]) for v in actor_of.values()), default=0)

    def actor(c: str) -> Actor:
        nonlocal next_id
        if c not in actor_of:
            actor_of[c] = f"A{next_id}"
            next_id += 1
        i = idents.get(c, {"principals": [], "user_agents": []})
        return Actor(actor_of[c], [c], i["principals"], i["user_agents"])

    for c, why in sorted(allowed.items()):
        entries[c] = Cleared(actor(c), why, {})
    for row in heavy.iter_rows(named=True) if heavy.height else []:
        c = row["client"]
        if c in reported or c in entries:
            continue
        z = row["max_robust_z"]
        if z is None:  # too few active days for a baseline of its own: say so, never "steady"
            why = (
                f"examined for volume: {row['requests']:,} requests on {row['days_active']} active day(s), "
                "too few days for a baseline of its own; below the peer threshold"
            )
        elif z < cfg["volume"]["mad_k"]:
            why = (
                f"heavy but steady: {row['days_active']} active days from {row['first_day']} to "
                f"{row['last_day']}, daily median {row['daily_median']:.0f} requests, never more than "
                f"{z:.1f} robust SD above its own baseline"
            )
        else:
            why = "heavy; its unusual days did not pass the peer threshold"
        entries[c] = Cleared(
            actor(c),
            why,
            {
                k: row[k]
                for k in (
                    "requests",
                    "bytes",
                    "days_active",
                    "daily_median",
                    "max_robust_z",
                    "first_day",
                    "last_day",
                )
            },
        )
    if walks.height:
        for c in walkers:
            if c in reported or c in entries:
                continue
            rows = walks.filter(pl.col("client") == c).sort("distinct_objects", descending=True)
            r = rows.row(0, named=True)
            reasons = []
            e = cfg["enumeration"]
            if r["repeat_share"] > e["max_repeat_share"]:
                reasons.append(f"re-reads ids ({r['repeat_share']:.0%} of its ids more than once)")
            if r["endpoint_share"] < e["min_endpoint_share"]:
                reasons.append(
                    f"broad endpoint mix ({r['endpoint_share']:.0%} of its requests on this endpoint)"
                )
            if (
                r["sequential_share"] < e["min_sequential_share"]
                and r["coverage"] < e["min_coverage"]
                and r["miss_share"] < e["min_miss_share"]
            ):
                reasons.append("no walk pattern (ids neither in sequence, dense, nor guessed)")
            why = (
                f"many distinct ids on {r['method']} {r['endpoint_key']} ({r['distinct_objects']:,}) but "
                + "; ".join(reasons or ["below the enumeration thresholds"])
            )
            entries[c] = Cleared(
                actor(c),
                why,
                {
                    k: r[k]
                    for k in (
                        "distinct_objects",
                        "requests",
                        "repeat_share",
                        "sequential_share",
                        "coverage",
                        "miss_share",
                        "endpoint_share",
                    )
                },
            )
    return list(entries.values())


def affected_records(prepared: pl.LazyFrame, numbered: list[Finding], ctx: Context) -> pl.DataFrame:
    """Each object id an actor received data for (2xx with a body): first/last access, actor, data kinds."""
    frames = []
    for f in numbered:
        if f.kind not in ("enumeration", "exfiltration_window") or f.actor is None:
            continue
        endpoint = (f.endpoint or "").split("?", 1)[0]
        sub = (
            prepared.filter(
                pl.col("client").is_in(pl.Series(f.actor.client_ips, dtype=pl.String).implode())
                & (pl.col("endpoint_key") == f.endpoint)
                & pl.col("object_id").is_not_null()
                & ok_with_body()
                & pl.col("ts").is_between(f.start, f.end)
            )
            .group_by("object_id")
            .agg(
                pl.col("ts").min().alias("first_access"),
                pl.col("ts").max().alias("last_access"),
                pl.len().alias("requests"),
            )
            .with_columns(
                pl.lit(f.actor.id).alias("actor_id"),
                pl.lit(f.id).alias("finding_id"),
                pl.lit(f.method).alias("method"),
                pl.lit(endpoint).alias("endpoint"),
                pl.lit(";".join(f.pii_kinds)).alias("data_kinds"),
            )
            .collect()
        )
        frames.append(sub)
    cols = [
        "object_id",
        "first_access",
        "last_access",
        "requests",
        "actor_id",
        "finding_id",
        "method",
        "endpoint",
        "data_kinds",
    ]
    if not frames:
        return pl.DataFrame(schema={c: pl.String for c in cols})
    out = pl.concat(frames).unique(
        subset=["object_id", "actor_id", "endpoint"], keep="first", maintain_order=True
    )
    numeric = out.get_column("object_id").cast(pl.Int64, strict=False)
    out = (
        out.with_columns(numeric.alias("_n"))
        .sort(["actor_id", "_n", "object_id"], nulls_last=True)
        .drop("_n")
    )
    return out.select(cols).with_columns(
        pl.col("first_access").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
        pl.col("last_access").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
    )


def iocs(prepared: pl.LazyFrame, numbered: list[Finding]) -> pl.DataFrame:
    """Indicators per actor: addresses, user agents, principals, and the time range, one per row."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for f in numbered:
        if f.actor is None or f.kind not in (
            "enumeration",
            "exfiltration_window",
            "scanning",
            "volume_anomaly",
        ):
            continue
        a = f.actor
        stats = (
            prepared.filter(pl.col("client").is_in(pl.Series(a.client_ips, dtype=pl.String).implode()))
            .group_by("client")
            .agg(pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last"), pl.len().alias("n"))
            .collect()
        )
        for c, first, last, n in stats.iter_rows():
            # A logged client that is not an address (``unknown``, a host name) is no IP indicator.
            rows[(a.id, "ip" if _is_address(c) else "client", c)] = {
                "first_seen": first,
                "last_seen": last,
                "requests": n,
            }
        for ua in a.user_agents:
            rows.setdefault(
                (a.id, "user_agent", ua), {"first_seen": None, "last_seen": None, "requests": None}
            )
        for p in a.principals:
            rows.setdefault((a.id, "principal", p), {"first_seen": None, "last_seen": None, "requests": None})
        key = (a.id, "time_range", f"{fmodel.iso(f.start)}/{fmodel.iso(f.end)}")
        rows.setdefault(key, {"first_seen": f.start, "last_seen": f.end, "requests": f.requests})
    data = [
        {
            "actor_id": k[0],
            "type": k[1],
            "value": k[2],
            "first_seen": fmodel.iso(v["first_seen"]),
            "last_seen": fmodel.iso(v["last_seen"]),
            "requests": v["requests"],
        }
        for k, v in sorted(rows.items())
    ]
    schema = {
        "actor_id": pl.String,
        "type": pl.String,
        "value": pl.String,
        "first_seen": pl.String,
        "last_seen": pl.String,
        "requests": pl.Int64,
    }
    return pl.DataFrame(data, schema=schema)


def explain(case_dir: str | Path, finding_id: str) -> dict[str, Any]:
    """Why a finding exists: its criteria, values, thresholds, and sample raw lines from the evidence."""
    from .errors import ForensicsError

    case = Case.open(case_dir)
    doc = fmodel.read(case.path / "findings.json")
    if not doc["findings"]:
        raise ForensicsError(
            f"no finding {finding_id}: the last analysis of {case_dir} reported no findings",
            hint="`forensics analyze --case DIR` writes them (without --client/--since/--until filters: all)",
        )
    match = [f for f in doc["findings"] if f["id"] == finding_id]
    if not match:
        raise ForensicsError(
            f"no finding {finding_id} in {case.path}/findings.json",
            hint=f"ids run from F0001 to F{len(doc['findings']):04d}",
        )
    f = match[0]
    manifest = case.load_manifest()
    roots = {e["path"]: e.get("abs_path") for e in manifest["inputs"]}
    samples = []
    for ref in f["evidence"].get("sample_refs") or []:
        path, _, line = ref.rpartition(":")
        samples.append({"ref": ref, "line": _raw_line(roots.get(path), int(line))})
    return {"finding": f, "samples": samples, "config_sha256": doc["config_sha256"]}


def _raw_line(abs_path: str | None, line_no: int) -> str | None:
    """The original line from the evidence, credentials masked (None when the file is not reachable)."""
    from .ingest.reader import EvidenceFile
    from .secrets import mask_text

    if not abs_path or not Path(abs_path).exists():
        return None
    seen = 0
    carry = b""
    for block in EvidenceFile(abs_path).blocks():
        data = carry + block
        lines = data.split(b"\n")
        carry = lines.pop()
        if seen + len(lines) >= line_no:
            return mask_text(
                lines[line_no - seen - 1].rstrip(b"\r").decode("utf-8", "backslashreplace")[:2000]
            )
        seen += len(lines)
    if seen + 1 == line_no and carry:
        return mask_text(carry.decode("utf-8", "backslashreplace")[:2000])
    return None
