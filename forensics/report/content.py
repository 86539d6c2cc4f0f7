"""What the report says, once: sections of plain blocks that html.py and markdown.py render.

Every text here is plain text, never markup: the renderers escape all of it (``html_text`` in HTML,
``md_text`` in Markdown), so a user agent or a path from the evidence can only ever appear as text. The
two reports therefore carry the same content, and the escaping lives in exactly one place per format.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from .. import __version__
from ..findings import OVERVIEW_COLUMNS, overview_row
from .charts import Chart
from .data import ReportData, headline, parse_ts
from .timeline import DESCRIPTIONS, Entry

#: People's words for the personal-data kinds of :mod:`forensics.pii`.
PII_WORDS = {
    "name": "names",
    "email": "e-mail addresses",
    "phone": "phone numbers",
    "address": "postal addresses",
    "dob": "dates of birth",
    "ssn": "social security numbers",
    "card": "payment card numbers",
    "account": "account numbers",
    "ip": "IP addresses",
    "jwt": "access tokens (JWT)",
}
#: Addresses listed in full up to this many; beyond, the first ones and the rest folded away.
ADDRESSES_SHOWN = 12
#: Input files listed one by one up to this many (an S3 dump can hold far more; manifest.json has them all).
MAX_LISTED_INPUTS = 10_000


# --------------------------------------------------------------------------------------------------
# Blocks


@dataclass
class P:
    text: str
    style: str = ""  # "", "lead", "note", "warn"


@dataclass
class Cards:
    items: list[tuple[str, str, str]]  # (key, value, label)


@dataclass
class KV:
    rows: list[tuple[str, str]]


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    numeric: tuple[int, ...] = ()
    mono: tuple[int, ...] = ()
    caption: str = ""


@dataclass
class Code:
    text: str


@dataclass
class Bullets:
    items: list[str]
    mono: bool = False


@dataclass
class Figure:
    chart: Chart


@dataclass
class Details:
    summary: str
    blocks: list[Any]


@dataclass
class Sub:
    """A titled sub-part (a finding, an actor): a level-3 heading and its blocks."""

    anchor: str
    title: str
    blocks: list[Any]
    tag: str = ""  # e.g. the severity, for styling


@dataclass
class Section:
    anchor: str
    title: str
    blocks: list[Any] = field(default_factory=list)


@dataclass
class Report:
    title: str
    meta: list[str]
    sections: list[Section]
    facts: dict[str, Any]  # the headline numbers (for the CLI and tests)


# --------------------------------------------------------------------------------------------------
def fmt_ts(value: Any) -> str:
    t = parse_ts(value) if isinstance(value, str) else value
    return f"{t:%Y-%m-%d %H:%M:%S} UTC" if isinstance(t, datetime) else "—"


def fmt_bytes(n: Any) -> str:
    if n is None:
        return "—"
    n = float(n)
    for scale, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,.0f} bytes"


def fmt_num(n: Any) -> str:
    if n is None:
        return "—"
    if isinstance(n, bool):
        return "yes" if n else "no"
    if isinstance(n, int):
        return f"{n:,}"
    if isinstance(n, float):
        return f"{n:,.4g}" if abs(n) < 1000 else f"{n:,.0f}"
    return str(n)


def fmt_value(v: Any) -> str:
    """An evidence value as one line of text (lists joined, dicts as k=v)."""
    if v is None:
        return "—"
    if isinstance(v, dict):
        return "; ".join(f"{k}={fmt_value(x)}" for k, x in v.items()) or "—"
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt_value(x) for x in v) or "—"
    return fmt_num(v)


def pii_words(kinds: list[str]) -> str:
    order = list(PII_WORDS)
    words = [
        PII_WORDS.get(k, k) for k in sorted(kinds, key=lambda k: (order.index(k) if k in order else 99, k))
    ]
    if not words:
        return "no personal data kinds known for the endpoint"
    return ", ".join(words[:-1]) + (" and " if len(words) > 1 else "") + words[-1]


def endpoint_text(f: dict[str, Any]) -> str:
    host = f.get("host") or ""
    return f"{f.get('method') or '?'} {host}{f.get('endpoint') or ''}".strip()


def _addresses(ips: list[str]) -> list[Any]:
    if len(ips) <= ADDRESSES_SHOWN:
        return [P(", ".join(ips))]
    return [
        P(", ".join(ips[:ADDRESSES_SHOWN]) + f", … ({len(ips) - ADDRESSES_SHOWN:,} more)"),
        Details(f"All {len(ips):,} addresses", [Bullets([", ".join(ips)], mono=True)]),
    ]


# --------------------------------------------------------------------------------------------------
def build(data: ReportData, entries: list[Entry], charts: list[Chart]) -> Report:
    doc = data.doc
    case = doc.get("case", {})
    head = headline(doc)
    gaps = data.coverage_gaps()
    meta = [
        f"Case {data.case_dir}",
        f"Evidence {fmt_ts(case.get('first_ts'))} → {fmt_ts(case.get('last_ts'))}",
        f"{case.get('events', 0):,} traffic events (de-duplicated across observers) from "
        f"{len(data.manifest.get('inputs', [])):,} input files",
        f"forensics {doc.get('tool_version', __version__)}, configuration sha256 {doc.get('config_sha256', '')[:16]}…",
    ]
    sections = [
        _summary(data, head, gaps),
        Section("charts", "Charts", [Figure(c) for c in charts] or [P("No charts: the case has no events.")]),
        _findings(data),
        _cleared(data),
        _timeline(entries),
        _inventory(data),
        _inputs(data),
        _unparsed(data),
        _coverage(data, gaps),
        _method(data),
    ]
    return Report("API breach forensics report", meta, sections, facts=head or {})


def _window_gaps(head: dict[str, Any], gaps: pl.DataFrame) -> pl.DataFrame:
    if gaps.height == 0 or not head.get("start") or not head.get("end"):
        return gaps.head(0)
    return gaps.filter((pl.col("end") > head["start"]) & (pl.col("start") < head["end"]))


def _summary(data: ReportData, head: dict[str, Any] | None, gaps: pl.DataFrame) -> Section:
    s = Section("summary", "Executive summary")
    findings = data.findings
    if head is None:
        kinds = sorted({f["kind"] for f in findings})
        if not data.doc["case"].get("events"):
            verdict = (  # no verdict without evidence: 0 traffic events were analysed
                "Nothing was analysed: the case holds no traffic events (only rejects or reference sources "
                "such as HAR captures, which count as traffic with --role traffic). "
            )
        else:
            verdict = (
                "No exfiltration was found: no client took records in a sustained window or walked ids. "
            )
        s.blocks.append(
            P(
                verdict
                + (f"{len(findings)} other finding(s): {', '.join(kinds)}." if findings else "No findings."),
                "lead",
            )
        )
        s.blocks.append(_evidence_facts(data))
        return s
    cens = head["censored"]
    inside = _window_gaps(head, gaps)
    if cens.get("start") or cens.get("end"):
        sides = " and ".join(w for w, c in (("start", cens.get("start")), ("end", cens.get("end"))) if c)
        censored = (
            f"Yes, at the {sides}: the window touches the "
            + ("first" if cens.get("start") else "last")
            + " available evidence, so the taking may have begun earlier or gone on later than shown."
        )
    else:
        first, last = data.first_ts, data.last_ts
        before = (head["start"] - first).days if first else None
        after = (last - head["end"]).days if last else None
        censored = (
            f"No: the evidence covers {before} day(s) before the window and {after} day(s) after it"
            + (", with no coverage gap inside it." if inside.height == 0 else ".")
        )
    if inside.height:
        hours = int(inside.get_column("hours").sum())
        blind = inside.filter(pl.col("covered_by").list.len() == 0)
        censored += (
            f" Warning: {inside.height} coverage gap(s) ({hours} h in total) fall inside the window; "
            + (
                f"{blind.height} of them no other source covers: requests then are not in the evidence and not counted."
                if blind.height
                else "other sources logged those hours, so their copies of the requests are counted."
            )
        )
    who = f"{head['actor_id']}, one actor using {head['addresses']:,} address(es)"
    actor = next((a for a in data.actors() if a["id"] == head["actor_id"]), None)
    agents = data.user_agents(actor).drop_nulls("user_agent") if actor else None
    if agents is not None and agents.height:
        top = agents.row(0, named=True)
        who += (
            f" and {agents.height:,} user agent(s) (most used, in {top['requests'] / agents['requests'].sum():.0%} "
            f"of its requests: {top['user_agent']})"
        )
    if head["principals"]:
        who += f"; credentials seen: {', '.join(head['principals'][:5])}"
    else:
        who += "; no credentials"
    verb = "took" if head["kind"] == "exfiltration_window" else "walked ids and received"
    s.blocks.append(
        P(
            f"{head['actor_id']} {verb} {head['records']:,} records ({pii_words(head['pii_kinds'])}) "
            f"through {head['method']} {head['endpoint']} from {fmt_ts(head['start'])} to {fmt_ts(head['end'])}, "
            f"using {head['addresses']:,} addresses.",
            "lead",
        )
    )
    s.blocks.append(
        Cards(
            [
                ("records", f"{head['records']:,}", "records taken"),
                ("addresses", f"{head['addresses']:,}", "actor addresses"),
                (
                    "window",
                    f"{head['start']:%Y-%m-%d} → {head['end']:%Y-%m-%d}",
                    f"window, UTC ({head['days']} days)",
                ),
                ("endpoint", f"{head['method']} {head['endpoint']}", "endpoint"),
            ]
        )
    )
    s.blocks.append(
        KV(
            [
                ("Who", who),
                ("What data", pii_words(head["pii_kinds"]).capitalize()),
                (
                    "How many records",
                    f"{head['records']:,} distinct records returned with data"
                    + (
                        f", of {head['objects_requested']:,} ids requested"
                        if head.get("objects_requested")
                        else ""
                    )
                    + f"; {head['requests']:,} requests, {fmt_bytes(head['bytes'])} sent",
                ),
                ("From", fmt_ts(head["start"]) + " (first request of the window)"),
                ("To", fmt_ts(head["end"]) + " (last request of the window)"),
                ("Through", f"{head['method']} {head['host'] or ''}{head['endpoint']}"),
                ("Window censored by missing evidence?", censored),
                ("Finding", f"{head['finding_id']} ({head['kind'].replace('_', ' ')})"),
            ]
        )
    )
    if head["other_actors"]:
        s.blocks.append(
            P(f"Other actors that took records: {', '.join(head['other_actors'])} (see Findings).", "warn")
        )
    s.blocks.append(_evidence_facts(data))
    return s


def _evidence_facts(data: ReportData) -> P:
    counts: dict[str, int] = {}
    for f in data.findings:
        counts[f["kind"]] = counts.get(f["kind"], 0) + 1
    listing = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()) or "none"
    lo, hi, outside = data.charted_period()
    stray = (
        f" {outside:,} event(s) lie far outside the main period ({lo:%Y-%m-%d} to {hi:%Y-%m-%d}) and are "
        "left out of the per-day charts: check the clocks of their sources."
        if outside and lo and hi
        else ""
    )
    return P(
        f"Findings: {listing}. Cleared after examination: {len(data.doc.get('cleared', []))} client(s). "
        "Every number traces back to source files and lines: see each finding's query and sample references."
        + stray,
        "note",
    )


def _findings(data: ReportData) -> Section:
    s = Section("findings", "Findings")
    if not data.findings:
        s.blocks.append(P("No findings."))
        return s
    s.blocks.append(
        Table(
            list(OVERVIEW_COLUMNS),
            [[v or "—" for v in overview_row(f)] for f in data.findings],
            numeric=(7, 8),
        )
    )
    for f in data.findings:
        blocks: list[Any] = [P(f["summary"], "lead")]
        rows = [
            ("Kind", f"{f['kind'].replace('_', ' ')} (severity {f['severity']}, score {f['score']})"),
            ("Endpoint", endpoint_text(f) if f.get("endpoint") or f.get("method") else "—"),
            (
                "Start (UTC)",
                fmt_ts(f["start"])
                + (" — censored: the evidence begins here" if f["censored"].get("start") else ""),
            ),
            (
                "End (UTC)",
                fmt_ts(f["end"])
                + (" — censored: the evidence ends here" if f["censored"].get("end") else ""),
            ),
            ("Requests", fmt_num(f["requests"])),
            ("Bytes sent", fmt_bytes(f["bytes"])),
        ]
        if f.get("distinct_objects") is not None:
            rows.append(("Records returned with data", fmt_num(f["distinct_objects"])))
        if f.get("objects_requested") is not None:
            rows.append(("Ids requested", fmt_num(f["objects_requested"])))
        if f.get("pii_kinds"):
            rows.append(("Personal data", pii_words(f["pii_kinds"])))
        a = f.get("actor")
        if a:
            rows.append(("Actor", f"{a['id']}: {len(a['client_ips']):,} address(es)"))
            rows.append(("User agents (up to 10, as in findings.json)", " | ".join(a["user_agents"]) or "—"))
            rows.append(("Principals", ", ".join(a["principals"]) or "none (no credentials)"))
        blocks.append(KV(rows))
        if a:
            blocks.append(
                Details(f"Addresses of {a['id']} ({len(a['client_ips']):,})", _addresses(a["client_ips"]))
            )
        ev = f.get("evidence", {})
        blocks.append(
            Table(
                ["evidence", "value"],
                [[k, fmt_value(v)] for k, v in ev.items() if k not in ("criteria", "sample_refs")],
                caption="The numbers behind the verdict",
            )
        )
        if ev.get("criteria"):
            blocks.append(
                Table(
                    ["threshold", "value"],
                    [[k, fmt_value(v)] for k, v in ev["criteria"].items()],
                    caption="Thresholds in force (from the configuration)",
                )
            )
        if ev.get("sample_refs"):
            blocks.append(P("Sample source lines (file:line):", "note"))
            blocks.append(Bullets(list(ev["sample_refs"]), mono=True))
        blocks.append(
            P(
                "Reproducing query (polars SQL over the case's events; run it with "
                f'forensics query --case {data.case_dir} "QUERY", or see forensics explain --case '
                f"{data.case_dir} {f['id']}):",
                "note",
            )
        )
        blocks.append(Code(f["query"]))
        s.blocks.append(Sub(f["id"], f"{f['id']} · {f['kind'].replace('_', ' ')}", blocks, tag=f["severity"]))
    return s


def _cleared(data: ReportData) -> Section:
    s = Section("cleared", "Cleared after examination")
    cleared = data.doc.get("cleared", [])
    s.blocks.append(
        P(
            "Heavy or unusual clients that were examined and not flagged, and why. Counsel will ask about them.",
            "note",
        )
    )
    if not cleared:
        s.blocks.append(P("None."))
        return s
    s.blocks.append(
        Table(
            ["actor", "addresses", "user agents", "principals", "why", "numbers"],
            [
                [
                    c["actor"]["id"],
                    ", ".join(c["actor"]["client_ips"][:ADDRESSES_SHOWN])
                    + (" …" if len(c["actor"]["client_ips"]) > ADDRESSES_SHOWN else ""),
                    " | ".join(c["actor"]["user_agents"][:3]) or "—",
                    ", ".join(c["actor"]["principals"][:3]) or "—",
                    c["why"],
                    fmt_value(c.get("numbers") or {}),
                ]
                for c in sorted(
                    cleared, key=lambda c: int(c["actor"]["id"][1:]) if c["actor"]["id"][1:].isdigit() else 0
                )
            ],
        )
    )
    return s


def _timeline(entries: list[Entry]) -> Section:
    s = Section("timeline", "Timeline")
    s.blocks.append(
        P(
            "All times UTC. The same entries are in timeline.jsonl (importable into Timesketch), timeline.csv "
            "and timeline.md.",
            "note",
        )
    )
    s.blocks.append(
        Table(
            ["time (UTC)", "event", "actor", "finding", "what happened"],
            [
                [
                    f"{e.ts:%Y-%m-%d %H:%M:%S}",
                    DESCRIPTIONS[e.kind],
                    e.actor_id or "",
                    e.finding_id or "",
                    e.message,
                ]
                for e in entries
            ],
        )
    )
    return s


def _inventory(data: ReportData) -> Section:
    s = Section("inventory", "Exposed endpoints")
    inv = data.inventory
    if inv.height == 0:
        s.blocks.append(P("No inventory in the case (run `forensics inventory`)."))
        return s
    exposed = inv.filter((pl.col("pii_kinds").list.len() > 0) | pl.col("returns_pii_without_auth")).sort(
        ["returns_pii_without_auth", "hits", "endpoint"], descending=[True, True, False]
    )
    s.blocks.append(
        P(
            f"{exposed.height} of the case's {inv.height} endpoints return personal data; "
            f"{int(inv.get_column('returns_pii_without_auth').sum())} return it without authentication "
            "(as shown by the reference captures).",
            "note",
        )
    )
    s.blocks.append(
        Table(
            [
                "endpoint",
                "host",
                "personal data",
                "auth seen",
                "PII without auth",
                "hits",
                "clients",
                "2xx/3xx/4xx/5xx",
                "median bytes",
                "first seen",
                "last seen",
                "sources",
            ],
            [
                [
                    f"{r['method'] or '?'} {r['endpoint'] or '?'}",
                    r["host"] or "—",
                    ", ".join(r["pii_kinds"] or []),
                    ", ".join(r["auth_kinds"] or []) or "—",
                    "YES" if r["returns_pii_without_auth"] else "no",
                    fmt_num(r["hits"]),
                    fmt_num(r["clients"]),
                    f"{r['status_2xx']}/{r['status_3xx']}/{r['status_4xx']}/{r['status_5xx']}",
                    fmt_num(round(r["median_bytes_out"])) if r["median_bytes_out"] is not None else "—",
                    fmt_ts(r["first_seen"]).removesuffix(" UTC"),
                    fmt_ts(r["last_seen"]).removesuffix(" UTC"),
                    ", ".join(r["sources"] or []),
                ]
                for r in exposed.iter_rows(named=True)
            ],
            numeric=(5, 6, 8),
        )
    )
    return s


def _inputs(data: ReportData) -> Section:
    s = Section("inputs", "Inputs and their hashes")
    inputs = sorted(data.manifest.get("inputs", []), key=lambda e: e.get("path", ""))
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for e in inputs:
        groups.setdefault((e.get("format") or "—", e.get("role") or "—", e.get("status") or "—"), []).append(
            e
        )
    s.blocks.append(
        P(
            "Every input file as recorded in manifest.json, with the sha256 of the file as received (the "
            "manifest also holds the sha256 of each file's decompressed content). The evidence was opened "
            "read-only; the hashes prove it is unchanged.",
            "note",
        )
    )
    s.blocks.append(
        Table(
            ["format", "role", "status", "files", "bytes", "lines read", "events", "rejected"],
            [
                [
                    fmt_,
                    role,
                    status,
                    fmt_num(len(es)),
                    fmt_bytes(sum(e.get("bytes") or 0 for e in es)),
                    fmt_num(sum(e.get("lines_read") or 0 for e in es)),
                    fmt_num(sum(e.get("rows") or 0 for e in es)),
                    fmt_num(sum(e.get("rejected") or 0 for e in es)),
                ]
                for (fmt_, role, status), es in sorted(groups.items())
            ],
            numeric=(3, 4, 5, 6, 7),
        )
    )
    folders: dict[str, list[dict[str, Any]]] = {}
    for e in inputs:
        folders.setdefault(str(Path(e.get("path", "")).parent), []).append(e)
    s.blocks.append(
        Table(
            [
                "folder",
                "files",
                "bytes",
                "lines read",
                "events",
                "rejected",
                "sha256 of its sha256sum listing",
            ],
            [
                [
                    folder,
                    fmt_num(len(es)),
                    fmt_bytes(sum(e.get("bytes") or 0 for e in es)),
                    fmt_num(sum(e.get("lines_read") or 0 for e in es)),
                    fmt_num(sum(e.get("rows") or 0 for e in es)),
                    fmt_num(sum(e.get("rejected") or 0 for e in es)),
                    listing_digest(es),
                ]
                for folder, es in sorted(folders.items())
            ],
            numeric=(1, 2, 3, 4, 5),
            mono=(0, 6),
            caption="Per folder; the digest is the sha256 of the lines `<sha256>  <path>` of its files in path "
            "order, i.e. of what `sha256sum` prints for them from the evidence root",
        )
    )
    if len(inputs) <= MAX_LISTED_INPUTS:
        s.blocks.append(
            Details(
                f"All {len(inputs):,} input files with their sha256",
                [
                    Table(
                        ["path", "format", "status", "lines", "events", "rejected", "sha256"],
                        [
                            [
                                e.get("path"),
                                e.get("format") or "—",
                                e.get("status"),
                                fmt_num(e.get("lines_read")),
                                fmt_num(e.get("rows")),
                                fmt_num(e.get("rejected")),
                                e.get("sha256") or "—",
                            ]
                            for e in inputs
                        ],
                        numeric=(3, 4, 5),
                        mono=(0, 6),
                    )
                ],
            )
        )
    else:
        s.blocks.append(
            P(
                f"{len(inputs):,} input files are too many to list here; each one's hashes are in manifest.json, "
                "and the per-folder digests above let the list be checked against it.",
                "note",
            )
        )
    return s


def listing_digest(entries: list[dict[str, Any]]) -> str:
    """sha256 of ``<sha256>  <path>`` lines in path order (what ``sha256sum`` prints for the files)."""
    text = "".join(
        f"{e.get('sha256') or ''}  {e.get('path') or ''}\n"
        for e in sorted(entries, key=lambda e: e.get("path") or "")
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _unparsed(data: ReportData) -> Section:
    s = Section("unparsed", "What could not be parsed")
    inputs = data.manifest.get("inputs", [])
    parsed = [e for e in inputs if e.get("status") in ("ingested", "partial")]
    lines = sum(e.get("lines_read") or 0 for e in parsed)
    rows = sum(e.get("rows") or 0 for e in parsed)
    rejected = sum(e.get("rejected") or 0 for e in parsed)
    check = "they add up" if rows + rejected == lines else "MISMATCH"
    s.blocks.append(
        P(
            f"Lines read {lines:,} = events {rows:,} + rejected {rejected:,} ({check}). Every rejected line is "
            "kept in the case's rejects/ with its file, line number, byte offset, sha256 and reason.",
            "note",
        )
    )
    if data.rejects.height:
        s.blocks.append(
            Table(
                ["format", "reason", "lines", "files"],
                [
                    [r["source_format"] or "—", r["reason"], fmt_num(r["lines"]), fmt_num(r["files"])]
                    for r in data.rejects.iter_rows(named=True)
                ],
                numeric=(2, 3),
                caption="Rejected lines by reason",
            )
        )
    else:
        s.blocks.append(P("No rejected lines."))
    odd = [e for e in inputs if e.get("status") not in ("ingested",)]
    if odd:
        s.blocks.append(
            Table(
                ["file", "status", "why"],
                [
                    [
                        e.get("path"),
                        e.get("status"),
                        e.get("error")
                        or (f"duplicate of {e['duplicate_of']}" if e.get("duplicate_of") else "")
                        or "; ".join(e.get("notes") or [])
                        or "—",
                    ]
                    for e in sorted(odd, key=lambda e: (e.get("status") or "", e.get("path") or ""))
                ],
                mono=(0,),
                caption="Files not (fully) parsed: unknown format, errors, partial reads, duplicates, empty",
            )
        )
    else:
        s.blocks.append(P("Every input file was recognised and read to the end."))
    return s


def _coverage(data: ReportData, gaps: pl.DataFrame) -> Section:
    s = Section("coverage", "Coverage of the evidence")
    s.blocks.append(
        Table(
            ["source", "observer", "role", "files", "events", "first event (UTC)", "last event (UTC)"],
            [
                [
                    r["source_format"],
                    r["observer"],
                    r["role"],
                    fmt_num(r["files"]),
                    fmt_num(r["events"]),
                    fmt_ts(r["first_ts"]).removesuffix(" UTC"),
                    fmt_ts(r["last_ts"]).removesuffix(" UTC"),
                ]
                for r in data.observers.iter_rows(named=True)
            ],
            numeric=(3, 4),
            caption="What each observer logged (all events, before de-duplication)",
        )
    )
    if gaps.height:
        s.blocks.append(
            Table(
                [
                    "source",
                    "observer",
                    "from (UTC)",
                    "to (UTC)",
                    "hours",
                    "events expected",
                    "logged meanwhile by",
                ],
                [
                    [
                        g["source_format"],
                        g["observer"],
                        fmt_ts(g["start"]).removesuffix(" UTC"),
                        fmt_ts(g["end"]).removesuffix(" UTC"),
                        fmt_num(g["hours"]),
                        fmt_num(round(g["expected_events"])),
                        ", ".join(g["covered_by"]) or "no other source",
                    ]
                    for g in gaps.iter_rows(named=True)
                ],
                numeric=(4, 5),
                caption="Coverage gaps: hours an observer logged nothing although it was expected to log plenty",
            )
        )
        s.blocks.append(
            P(
                "Requests in a gap are missing from the evidence unless another observer logged them; a window "
                "that overlaps a gap no other source covers may be undercounted.",
                "warn",
            )
        )
    else:
        s.blocks.append(
            P(
                "No coverage gaps: no observer was silent for hours in which it normally logs plenty "
                "(quiet hours of a small gateway are not gaps).",
                "note",
            )
        )
    obs = data.doc.get("case", {}).get("observers") or {}
    if obs:
        s.blocks.append(
            P(
                f"De-duplication across observers: {obs.get('origin_events', 0):,} origin events (gateways) "
                f"against {obs.get('edge_events', 0):,} edge events (balancers); {obs.get('matched', 0):,} matched "
                f"({obs.get('matched_by_request_id', 0):,} by request id) and counted once; estimated clock skew "
                f"{obs.get('clock_skew_seconds')} s (origin minus edge).",
                "note",
            )
        )
    return s


def _method(data: ReportData) -> Section:
    rng = data.doc.get("case", {}).get("reporting_range") or {}
    limited = any(rng.values())
    return Section(
        "method",
        "How this report was made",
        [
            P(
                "The raw evidence was parsed into one event store (manifest.json lists every input with its "
                "hashes; rejects/ keeps every line that did not parse). The analysis (findings.json) runs "
                "pure passes over the events: requests seen by both a balancer and a gateway are counted once; "
                "actors link the addresses of one operation; windows are exact to the first and last request. "
                "This report re-reads the events only to date and draw the findings; each finding's query "
                "reproduces its events with `forensics query`."
            ),
            P(
                "Reporting range: "
                + (
                    f"limited to {rng.get('since') or 'the start'} → {rng.get('until') or 'the end'}; windows cut "
                    "by it are marked censored."
                    if limited
                    else "the whole evidence."
                ),
                "note",
            ),
        ],
    )
