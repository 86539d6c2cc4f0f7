"""The one findings model, findings.json (contract ``forensics.findings/1``), and explain.

Every pass returns :class:`Finding` objects; this module numbers them deterministically, writes them in
one fixed layout, reads them back, and explains them. No wall-clock time goes into findings.json: the
same evidence and configuration give the same bytes.

``evidence`` has fixed keys per kind (:data:`EVIDENCE_KEYS`), so readers can rely on them:

* ``enumeration``: the numbers behind the verdict on one client × endpoint walk: distinct ids, requests
  per id, how sequential (share of small strides, longest run, coverage of the id range), share of 404s,
  how narrow the client's endpoint mix is, whether it ever re-reads an id.
* ``scanning``: distinct paths and error share in the busiest window, or the refused id probes.
* ``volume_anomaly``: the client-day's requests and bytes against the client's own baseline (median, MAD,
  robust z) and the peers' quantile.
* ``sensitive_exposure`` / ``unauthenticated_access``: what the reference captures showed the endpoint
  returns (PII kinds, auth kinds) and the log traffic to it.
* ``exfiltration_window``: the actor's sustained window (days active, pauses, daily records, regularity,
  share of the id space, low-and-slow score), the observers and their clock skew.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import __version__

SCHEMA = "forensics.findings/1"

KINDS = (
    "exfiltration_window",
    "enumeration",
    "unauthenticated_access",
    "sensitive_exposure",
    "volume_anomaly",
    "scanning",
)
SEVERITIES = ("critical", "high", "medium", "low")

_EXPOSURE_KEYS = (
    "pii_kinds",
    "auth_kinds",
    "reference_sources",
    "log_requests",
    "log_clients",
    "status_mix",
    "criteria",
    "sample_refs",
)

EVIDENCE_KEYS: dict[str, tuple[str, ...]] = {
    "enumeration": (
        "distinct_objects",
        "objects_returned",
        "requests_per_object",
        "repeat_share",
        "sequential_share",
        "longest_run",
        "coverage",
        "id_min",
        "id_max",
        "miss_share",
        "endpoint_share",
        "id_slot",
        "criteria",
        "sample_refs",
    ),
    "scanning": (
        "pattern",
        "window_start",
        "window_end",
        "distinct_paths",
        "error_share",
        "refused_share",
        "distinct_ids",
        "top_paths",
        "criteria",
        "sample_refs",
    ),
    "volume_anomaly": (
        "day",
        "requests",
        "bytes",
        "own_median",
        "own_mad",
        "robust_z",
        "peer_quantile_value",
        "history_days",
        "criteria",
        "sample_refs",
    ),
    "sensitive_exposure": _EXPOSURE_KEYS,
    "unauthenticated_access": _EXPOSURE_KEYS,
    "exfiltration_window": (
        "days_active",
        "days_in_window",
        "longest_pause_days",
        "daily_records_median",
        "daily_records_max",
        "regularity",
        "id_space_share",
        "persistence",
        "low_and_slow_score",
        "addresses",
        "observers",
        "clock_skew_seconds",
        "linking",
        "criteria",
        "sample_refs",
    ),
}


@dataclass
class Actor:
    id: str
    client_ips: list[str] = field(default_factory=list)
    principals: list[str] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)


@dataclass
class Finding:
    kind: str
    severity: str
    score: float
    actor: Actor | None
    method: str | None
    host: str | None
    endpoint: str | None
    start: datetime | None
    end: datetime | None
    requests: int
    bytes: int
    summary: str
    evidence: dict[str, Any]
    query: str
    censored: dict[str, bool] = field(default_factory=lambda: {"start": False, "end": False})
    distinct_objects: int | None = None
    objects_requested: int | None = None
    pii_kinds: list[str] = field(default_factory=list)
    id: str = ""
    clients: list[str] = field(default_factory=list)  # who it is about (linked into the actor; not written)

    def sort_key(self) -> tuple:
        return (
            KINDS.index(self.kind),
            SEVERITIES.index(self.severity),
            -round(self.score, 4),
            iso(self.start) or "",
            self.actor.id if self.actor else "",
            self.endpoint or "",
            self.method or "",
        )

    def to_json(self) -> dict[str, Any]:
        keys = EVIDENCE_KEYS[self.kind]
        unknown = set(self.evidence) - set(keys)
        if unknown:
            raise ValueError(f"{self.kind} evidence has undocumented keys: {sorted(unknown)}")
        return {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity,
            "score": round(float(self.score), 4),
            "actor": asdict(self.actor) if self.actor else None,
            "method": self.method,
            "host": self.host,
            "endpoint": self.endpoint,
            "start": iso(self.start),
            "end": iso(self.end),
            "censored": dict(self.censored),
            "requests": int(self.requests),
            "bytes": int(self.bytes),
            "distinct_objects": self.distinct_objects,
            "objects_requested": self.objects_requested,
            "pii_kinds": sorted(self.pii_kinds),
            "summary": self.summary,
            "evidence": {k: _plain(self.evidence.get(k)) for k in keys},
            "query": self.query,
        }


@dataclass
class Cleared:
    """A heavy or unusual client that was examined and not flagged, and why."""

    actor: Actor
    why: str
    numbers: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"actor": asdict(self.actor), "why": self.why, "numbers": _plain(self.numbers)}


def iso(value: datetime | None) -> str | None:
    """UTC timestamps in findings: ISO 8601 with ``Z``; microseconds only when present."""
    if value is None:
        return None
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def _plain(value: Any) -> Any:
    """JSON-safe, deterministic values: rounded floats, ISO times, sorted sets."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    return value


#: The one-line view of a finding (terminal table and report overview): column names.
OVERVIEW_COLUMNS = (
    "id",
    "kind",
    "severity",
    "actor",
    "endpoint",
    "start (UTC)",
    "end (UTC)",
    "requests",
    "records",
)


def overview_row(f: dict[str, Any]) -> list[str]:
    """One finding of findings.json as the overview table shows it (plain text; escape where rendered)."""
    actor = f.get("actor")

    def minute(ts: str | None) -> str:
        return (ts or "")[:16].replace("T", " ")

    return [
        f["id"],
        f["kind"].replace("_", " "),
        f["severity"],
        f"{actor['id']} ({len(actor['client_ips']):,} addr.)" if actor else "",
        f"{f.get('method') or ''} {f.get('endpoint') or ''}".strip(),
        minute(f.get("start")),
        minute(f.get("end")),
        f"{f['requests']:,}",
        f"{f['distinct_objects']:,}" if f.get("distinct_objects") is not None else "",
    ]


def number(findings: list[Finding]) -> list[Finding]:
    """Deterministic order and ids: same evidence + config → same ids, same order."""
    ordered = sorted(findings, key=Finding.sort_key)
    for i, f in enumerate(ordered, 1):
        f.id = f"F{i:04d}"
    return ordered


def document(
    findings: list[Finding],
    cleared: list[Cleared],
    config: dict[str, Any],
    config_sha256: str,
    case: dict[str, Any],
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool_version": __version__,
        "config": config,
        "config_sha256": config_sha256,
        "case": _plain(case),
        "findings": [f.to_json() for f in findings],
        "cleared": [c.to_json() for c in sorted(cleared, key=lambda c: (c.actor.id, c.why))],
    }


def write(path: Path, doc: dict[str, Any]) -> None:
    """findings.json: fixed key order, two-space indent, UTF-8, trailing newline; atomic."""
    from .case import write_json_atomic

    write_json_atomic(path, doc)


def read(path: Path) -> dict[str, Any]:
    from .errors import ForensicsError

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ForensicsError(
            f"no findings in {Path(path).parent}", hint="run `forensics analyze --case DIR`"
        ) from None
    if doc.get("schema") != SCHEMA:
        raise ForensicsError(f"{path}: not a {SCHEMA} document")
    return doc


def validate(doc: dict[str, Any]) -> list[str]:
    """Problems with a findings document against the contract (empty when it conforms)."""
    problems = []
    for key in ("schema", "tool_version", "config", "config_sha256", "case", "findings", "cleared"):
        if key not in doc:
            problems.append(f"missing top-level key {key}")
    ids = set()
    for f in doc.get("findings", []):
        fid = f.get("id", "?")
        if fid in ids:
            problems.append(f"duplicate id {fid}")
        ids.add(fid)
        if f.get("kind") not in KINDS:
            problems.append(f"{fid}: unknown kind {f.get('kind')}")
        if f.get("severity") not in SEVERITIES:
            problems.append(f"{fid}: unknown severity {f.get('severity')}")
        if not 0 <= f.get("score", -1) <= 1:
            problems.append(f"{fid}: score outside 0..1")
        for k in ("start", "end"):
            v = f.get(k)
            if v is not None and not (isinstance(v, str) and v.endswith("Z")):
                problems.append(f"{fid}: {k} is not UTC ISO 8601")
        if set(f.get("evidence", {})) != set(EVIDENCE_KEYS.get(f.get("kind"), ())):
            problems.append(f"{fid}: evidence keys differ from the documented ones")
        for k in ("censored", "requests", "bytes", "summary", "query", "actor", "pii_kinds"):
            if k not in f:
                problems.append(f"{fid}: missing {k}")
    return problems
