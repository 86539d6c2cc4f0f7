"""The incident timeline: what happened when, from the findings, the events and the manifest.

Entries, each with a UTC time, a kind and a one-sentence message:

* per actor that took records: the first request (any endpoint), the first enumeration, the start of each
  exfiltration window, its peak day, every pause inside it (quiet days), days on which the address pool
  or the user agents change markedly, the end of the window, and the last request;
* scanning and volume-anomaly findings, at their start;
* exposure findings (an endpoint that returns personal data, without authentication), at the first
  logged request to the endpoint;
* the evidence's own coverage: the first and last event of every observer, and the coverage gaps.

Written three ways: timeline.jsonl (one JSON object a line, importable into Timesketch as is: ``message``,
``datetime`` ISO 8601 with ``+00:00``, ``timestamp`` in microseconds, ``timestamp_desc``, plus our fields),
timeline.csv (the same columns, formula-like cells neutralised) and timeline.md (for people).
Chronological; ties broken by a fixed order of kinds, then actor and finding; no wall-clock time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from ..passes import ok_with_body
from ..safe import write_csv
from .data import ReportData, parse_ts

#: Tie-break order for entries at the same instant (evidence bounds outermost).
ORDER = (
    "evidence_start",
    "exposure",
    "first_request",
    "first_enumeration",
    "window_start",
    "address_pool_change",
    "user_agent_change",
    "pause",
    "peak_day",
    "volume_anomaly",
    "scanning",
    "window_end",
    "last_request",
    "coverage_gap",
    "evidence_end",
)
DESCRIPTIONS = {
    "evidence_start": "First event in evidence",
    "evidence_end": "Last event in evidence",
    "coverage_gap": "Coverage gap start",
    "exposure": "First logged request to exposed endpoint",
    "first_request": "First request",
    "first_enumeration": "Enumeration start",
    "window_start": "Exfiltration window start",
    "window_end": "Exfiltration window end",
    "peak_day": "Peak day",
    "pause": "Pause start",
    "address_pool_change": "Address pool change",
    "user_agent_change": "User agent change",
    "last_request": "Last request",
    "scanning": "Scanning start",
    "volume_anomaly": "Volume anomaly day",
}
#: A day's distinct addresses (or user agents) at least this many times its recent median, or at most
#: its inverse, is a marked change of the pool (with :data:`POOL_MIN_DELTA` addresses more or fewer).
POOL_RATIO = 2.0
POOL_MIN_DELTA = 5
#: A user-agent set is a marked change when its overlap with the recent days' set (Jaccard) is below this
#: and at least :data:`AGENT_MIN_NEW` agents are new.
AGENT_MAX_OVERLAP = 0.5
AGENT_MIN_NEW = 3
#: Recent = this many previous active days.
RECENT_DAYS = 3
#: A network (/24, /48) first seen after the first day is named when it carries this share of the requests.
NETWORK_MIN_SHARE = 0.1

FIELDS = [
    "datetime",
    "timestamp",
    "timestamp_desc",
    "message",
    "kind",
    "finding_id",
    "finding_kind",
    "actor_id",
    "client_ip",
    "user_agent",
    "method",
    "endpoint",
    "source_format",
    "observer",
    "records",
    "requests",
    "bytes",
    "end",
]


@dataclass(frozen=True)
class Entry:
    ts: datetime
    kind: str
    message: str
    finding_id: str | None = None
    finding_kind: str | None = None
    actor_id: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    method: str | None = None
    endpoint: str | None = None
    source_format: str | None = None
    observer: str | None = None
    records: int | None = None
    requests: int | None = None
    bytes: int | None = None
    end: datetime | None = None

    def sort_key(self) -> tuple:
        return (
            self.ts,
            ORDER.index(self.kind),
            _actor_num(self.actor_id),
            self.finding_id or "",
            self.observer or "",
            self.message,
        )

    def record(self) -> dict[str, Any]:
        """The entry as a Timesketch event: the three required fields first, then ours (nulls dropped)."""
        d = asdict(self)
        out: dict[str, Any] = {
            "message": self.message,
            "datetime": ts_iso(self.ts),
            "timestamp": _micros(self.ts),
            "timestamp_desc": DESCRIPTIONS[self.kind],
        }
        for k in FIELDS:
            if k in out or k not in d or d[k] is None:
                continue
            out[k] = ts_iso(d[k]) if isinstance(d[k], datetime) else d[k]
        return out


def ts_iso(ts: datetime) -> str:
    """ISO 8601 in UTC with an explicit ``+00:00`` offset and microseconds (Timesketch's example form)."""
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def _micros(ts: datetime) -> int:
    delta = ts.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _actor_num(actor_id: str | None) -> int:
    return int(actor_id[1:]) if actor_id and actor_id[1:].isdigit() else 0


def _when(d: Any) -> str:
    return f"{d:%Y-%m-%d %H:%M:%S} UTC" if isinstance(d, datetime) else str(d)


def _day_start(d: Any) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


# --------------------------------------------------------------------------------------------------
def build(data: ReportData) -> list[Entry]:
    """Every timeline entry of the case, in order."""
    entries: list[Entry] = []
    entries += _coverage(data)
    entries += _exposures(data)
    for actor in data.main_actors():
        entries += _actor_story(data, actor)
    entries += _other_findings(data)
    return sorted(entries, key=Entry.sort_key)


def _coverage(data: ReportData) -> list[Entry]:
    out = []
    for r in data.observers.iter_rows(named=True):
        ref = " (reference capture)" if r["role"] == "reference" else ""
        common = {"source_format": r["source_format"], "observer": r["observer"], "requests": r["events"]}
        out.append(
            Entry(
                r["first_ts"],
                "evidence_start",
                f"Evidence begins: first of {r['events']:,} events logged by {r['source_format']} "
                f"observer {r['observer']}{ref}",
                **common,
            )
        )
        out.append(
            Entry(
                r["last_ts"],
                "evidence_end",
                f"Evidence ends: last event logged by {r['source_format']} observer {r['observer']}{ref}",
                **common,
            )
        )
    for g in data.coverage_gaps().iter_rows(named=True):
        out.append(
            Entry(
                g["start"],
                "coverage_gap",
                f"Coverage gap: {g['source_format']} observer {g['observer']} logged nothing for "
                f"{g['hours']} h until {_when(g['end'])} (about {g['expected_events']:,.0f} events expected; "
                + (
                    f"logged meanwhile by {', '.join(g['covered_by'])})"
                    if g["covered_by"]
                    else "no other source logged it)"
                ),
                source_format=g["source_format"],
                observer=g["observer"],
                end=g["end"],
            )
        )
    return out


def _exposures(data: ReportData) -> list[Entry]:
    out = []
    for f in data.of_kind("unauthenticated_access", "sensitive_exposure"):
        start = parse_ts(f["start"])
        if start is None:
            continue
        out.append(
            Entry(
                start,
                "exposure",
                f"{f['id']} ({f['kind'].replace('_', ' ')}): {f['summary']}",
                finding_id=f["id"],
                finding_kind=f["kind"],
                method=f.get("method"),
                endpoint=f.get("endpoint"),
                requests=f["requests"],
                bytes=f["bytes"],
                end=parse_ts(f["end"]),
            )
        )
    return out


def _other_findings(data: ReportData) -> list[Entry]:
    out = []
    for f in data.of_kind("scanning", "volume_anomaly"):
        start = parse_ts(f["start"])
        if start is None:
            continue
        actor = f.get("actor") or {}
        ips = actor.get("client_ips") or []
        out.append(
            Entry(
                start,
                f["kind"],
                f"{f['id']} ({f['kind'].replace('_', ' ')}, {f['severity']}): {f['summary']}",
                finding_id=f["id"],
                finding_kind=f["kind"],
                actor_id=actor.get("id"),
                client_ip=ips[0] if len(ips) == 1 else None,
                user_agent=(actor.get("user_agents") or [None])[0],
                method=f.get("method"),
                endpoint=f.get("endpoint"),
                requests=f["requests"],
                bytes=f["bytes"],
                end=parse_ts(f["end"]),
            )
        )
    return out


def _actor_story(data: ReportData, actor: dict[str, Any]) -> list[Entry]:
    aid = actor["id"]
    n_addr = len(actor["client_ips"])
    who = f"{aid} ({n_addr} address{'es' if n_addr != 1 else ''})"
    ev = data.actor_events(actor)
    out: list[Entry] = []
    if ev.height:
        first, last = ev.row(0, named=True), ev.row(ev.height - 1, named=True)
        for row, kind, word in ((first, "first_request", "First"), (last, "last_request", "Last")):
            out.append(
                Entry(
                    row["ts"],
                    kind,
                    f"{word} request of {who}: {row['method'] or '?'} {row['path'] or row['endpoint'] or '?'} "
                    f"from {row['client']} (status {row['status']}, user agent {row['user_agent'] or '-'})",
                    actor_id=aid,
                    client_ip=str(row["client"]),
                    user_agent=row["user_agent"],
                    method=row["method"],
                    endpoint=row["endpoint"],
                    source_format=str(row["source_format"]),
                    observer=str(row["observer"]),
                )
            )
        out += _pool_changes(ev, aid, who)
    for f in actor["findings"]:
        start, end = parse_ts(f["start"]), parse_ts(f["end"])
        common = {
            "finding_id": f["id"],
            "finding_kind": f["kind"],
            "actor_id": aid,
            "method": f.get("method"),
            "endpoint": f.get("endpoint"),
        }
        target = f"{f.get('method') or ''} {f.get('endpoint') or ''}".strip()
        if f["kind"] == "enumeration" and start:
            ev_f = data.finding_events(f)
            first_ip = str(ev_f.get_column("client")[0]) if ev_f.height else None
            out.append(
                Entry(
                    start,
                    "first_enumeration",
                    f"{f['id']}: {who} starts walking ids of {target}: {f['summary']}",
                    client_ip=first_ip,
                    records=f.get("distinct_objects"),
                    requests=f["requests"],
                    bytes=f["bytes"],
                    end=end,
                    **common,
                )
            )
        if f["kind"] != "exfiltration_window" or not start or not end:
            continue
        cens = f.get("censored") or {}
        out.append(
            Entry(
                start,
                "window_start",
                f"{f['id']}: exfiltration window of {who} through {target} begins"
                + (
                    " (the evidence begins inside the window: it may have started earlier)"
                    if cens.get("start")
                    else ""
                )
                + f"; {f['distinct_objects'] or 0:,} records in total until {_when(end)}",
                records=f.get("distinct_objects"),
                requests=f["requests"],
                bytes=f["bytes"],
                end=end,
                **common,
            )
        )
        out.append(
            Entry(
                end,
                "window_end",
                f"{f['id']}: exfiltration window of {who} ends"
                + (" (the evidence ends inside the window: it may have gone on)" if cens.get("end") else "")
                + f"; {f['distinct_objects'] or 0:,} records, {f['requests']:,} requests since {_when(start)}",
                records=f.get("distinct_objects"),
                requests=f["requests"],
                bytes=f["bytes"],
                **common,
            )
        )
        out += _window_days(data.finding_events(f), who, common)
    return out


def daily_series(events: pl.DataFrame) -> pl.DataFrame:
    """Per UTC day: requests, records returned (distinct object ids answered with data), bytes."""
    return (
        events.with_columns(ok_with_body().alias("_ok"))
        .group_by(pl.col("ts").dt.date().alias("day"))
        .agg(
            pl.len().alias("requests"),
            pl.col("object_id").filter(pl.col("_ok")).n_unique().alias("records"),
            pl.col("bytes_out").sum().alias("bytes"),
            pl.col("ts").min().alias("first"),
            pl.col("ts").max().alias("last"),
        )
        .sort("day")
    )


def _window_days(ev: pl.DataFrame, who: str, common: dict[str, Any]) -> list[Entry]:
    """The peak day and the pauses (quiet days) of one exfiltration window."""
    days = daily_series(ev)
    if days.height == 0:
        return []
    out = []
    peak = days.sort(["records", "day"], descending=[True, False]).row(0, named=True)
    # Stamped at the day's first request of the window, not at midnight (before the evidence began).
    first_that_day = ev.filter(pl.col("ts").dt.date() == peak["day"]).get_column("ts").min()
    out.append(
        Entry(
            first_that_day if first_that_day is not None else _day_start(peak["day"]),
            "peak_day",
            f"Peak day of {who}: {peak['records']:,} records in {peak['requests']:,} requests on {peak['day']} "
            f"(median {days.get_column('records').median() or 0:,.0f} a day over {days.height} active days)",
            records=peak["records"],
            requests=peak["requests"],
            bytes=peak["bytes"],
            end=_day_start(peak["day"]) + timedelta(days=1),
            **common,
        )
    )
    rows = days.to_dicts()
    for a, b in zip(rows, rows[1:], strict=False):
        quiet = (b["day"] - a["day"]).days - 1
        if quiet < 1:
            continue
        out.append(
            Entry(
                a["last"],
                "pause",
                f"Pause of {who}: no requests for {quiet} day{'s' if quiet != 1 else ''} "
                f"(last request {_when(a['last'])}, resumes {_when(b['first'])})",
                end=b["first"],
                **common,
            )
        )
    return out


def _network(col: str = "client") -> pl.Expr:
    """The /24 (IPv4) or /48 (IPv6) of an address: the unit a hosting or residential pool is bought in."""
    ip = pl.col(col).cast(pl.String)
    v4 = ip.str.extract(r"^(\d+\.\d+\.\d+)\.\d+$")
    v6 = ip.str.extract(r"^([0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f]*)").str.to_lowercase()
    return pl.when(v4.is_not_null()).then(v4 + ".0/24").otherwise(v6 + "::/48").fill_null(ip)


def _pool_changes(ev: pl.DataFrame, aid: str, who: str) -> list[Entry]:
    """Days where the actor's address pool or user agents change markedly (see the module constants)."""
    days = (
        ev.with_columns(pl.col("ts").dt.date().alias("day"), _network().alias("net"))
        .group_by("day")
        .agg(
            pl.col("client").cast(pl.String).n_unique().alias("addresses"),
            pl.col("user_agent").drop_nulls().unique().sort().alias("agents"),
            pl.col("net").unique().sort().alias("nets"),
            pl.col("ts").min().alias("first"),
            pl.len().alias("requests"),
        )
        .sort("day")
        .to_dicts()
    )
    out: list[Entry] = []
    # A change starts a new baseline, and the next change needs RECENT_DAYS days of it: one entry per
    # change, not one per day. A change must hold on the next active day too (a one-day dip is not one).
    pool_base = agent_base = 0

    def pool_change(i: int, base: int) -> tuple[str, int] | None:
        recent = days[max(base, i - RECENT_DAYS) : i]
        typical = sorted(r["addresses"] for r in recent)[len(recent) // 2]
        word = None
        for j in (i, i + 1):
            if j >= len(days):
                break
            n = days[j]["addresses"]
            if abs(n - typical) < POOL_MIN_DELTA or not (
                n >= POOL_RATIO * typical or n * POOL_RATIO <= typical
            ):
                return None
            w = "grows" if n > typical else "shrinks"
            if word not in (None, w):
                return None
            word = w
        return (word, typical) if word else None

    def agent_change(i: int, base: int) -> tuple[set[str], float] | None:
        seen = set().union(*(set(r["agents"]) for r in days[max(base, i - RECENT_DAYS) : i]))
        result = None
        for j in (i, i + 1):
            if j >= len(days):
                break
            now = set(days[j]["agents"])
            if not now or not seen:
                return None
            overlap = len(now & seen) / len(now | seen)
            if overlap >= AGENT_MAX_OVERLAP or len(now - seen) < AGENT_MIN_NEW:
                return None
            result = result or (now - seen, overlap)
        return result

    for i, d in enumerate(days):
        if i == 0:
            continue
        if pool_base == 0 or i - pool_base >= RECENT_DAYS:
            found = pool_change(i, pool_base)
            if found:
                word, typical = found
                pool_base = i
                out.append(
                    Entry(
                        d["first"],
                        "address_pool_change",
                        f"Address pool of {who} {word}: {d['addresses']} addresses on {d['day']} "
                        f"against about {typical} a day on the previous active days",
                        actor_id=aid,
                    )
                )
        if agent_base == 0 or i - agent_base >= RECENT_DAYS:
            changed = agent_change(i, agent_base)
            if changed:
                new, overlap = sorted(changed[0]), changed[1]
                agent_base = i
                out.append(
                    Entry(
                        d["first"],
                        "user_agent_change",
                        f"User agents of {who} change on {d['day']}: {len(d['agents'])} in use, {len(new)} new "
                        f"(overlap {overlap:.0%} with the previous active days), e.g. {new[0]}",
                        actor_id=aid,
                        user_agent=new[0],
                    )
                )
    # A network that later carries a good share of the requests, first used after the first day.
    total = ev.height
    nets = (
        ev.with_columns(_network().alias("net"))
        .group_by("net")
        .agg(pl.len().alias("n"), pl.col("ts").min().alias("first"), pl.col("client").first().alias("ip"))
        .filter(pl.col("n") >= NETWORK_MIN_SHARE * total)
        .sort("first", "net")
    )
    first_day = ev.get_column("ts").min().date() if total else None
    for r in nets.iter_rows(named=True):
        if r["first"].date() == first_day:
            continue
        out.append(
            Entry(
                r["first"],
                "address_pool_change",
                f"{who} starts using network {r['net']} ({r['n'] / total:.0%} of its requests from then on)",
                actor_id=aid,
                client_ip=str(r["ip"]),
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
def write(entries: list[Entry], out_dir: Path, title: str = "Incident timeline") -> dict[str, Path]:
    """timeline.jsonl, timeline.csv and timeline.md in ``out_dir``."""
    from .markdown import md_text

    out_dir = Path(out_dir)
    paths = {
        "timeline_jsonl": out_dir / "timeline.jsonl",
        "timeline_csv": out_dir / "timeline.csv",
        "timeline_md": out_dir / "timeline.md",
    }
    records = [e.record() for e in entries]
    _atomic_text(
        paths["timeline_jsonl"],
        "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in records),
    )
    frame = pl.DataFrame(
        [{k: r.get(k) for k in FIELDS} for r in records],
        schema={
            k: (pl.Int64 if k in ("timestamp", "records", "requests", "bytes") else pl.String) for k in FIELDS
        },
    )
    tmp = paths["timeline_csv"].with_name("timeline.csv.tmp")
    write_csv(frame, str(tmp))
    tmp.replace(paths["timeline_csv"])
    lines = [
        f"# {title}",
        "",
        "All times UTC. Generated from findings.json, the events and the manifest.",
        "",
    ]
    lines += markdown_table(entries, md_text)
    _atomic_text(paths["timeline_md"], "\n".join(lines) + "\n")
    return paths


def markdown_table(entries: list[Entry], esc: Any) -> list[str]:
    """The timeline as a Markdown table (``esc`` makes evidence text inert)."""
    lines = ["| Time (UTC) | Event | Actor | Finding | What happened |", "|---|---|---|---|---|"]
    for e in entries:
        lines.append(
            f"| {e.ts:%Y-%m-%d %H:%M:%S} | {DESCRIPTIONS[e.kind]} | {esc(e.actor_id or '')} | "
            f"{esc(e.finding_id or '')} | {esc(e.message)} |"
        )
    return lines


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
