"""What every part of the report reads, loaded once from the case.

The report never re-derives a verdict: findings come from findings.json as written by ``analyze``. It
only reads the events again to draw and date them, and reads them the way the analysis did, so a chart
never contradicts a finding:

* endpoints refined across the case (:func:`forensics.inventory.apply_inventory`), so ``/customers/{id}``
  in a chart is the finding's endpoint;
* the origin copies of requests the edge also logged dropped (:func:`forensics.passes.dedup.deduplicate`),
  so nothing is counted twice;
* object ids taken from the endpoint the way the passes take them (:func:`forensics.passes.prepare`);
* a finding's own events selected by running its reproducing query (``finding["query"]``), so the
  records of a chart add up to the finding's numbers.

Evidence coverage is the exception: it counts every event of every observer (reference captures
included, marked as such), because the question there is what each source recorded, not what happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from .. import findings as fmodel
from ..case import Case
from ..config import DEFAULTS
from ..errors import ForensicsError
from ..inventory import INVENTORY_FILE, apply_inventory
from ..passes import PREPARED_COLUMNS, prepare
from ..passes.dedup import deduplicate
from ..schema import EVENT_COLUMNS as EVENT_SCHEMA_ORDER

#: Columns of the de-duplicated events the report keeps in memory (repeated strings as categoricals).
EVENT_COLUMNS = [
    "ts",
    "source_format",
    "observer",
    "source_file",
    "source_line",
    "client",
    "client_ip",
    "principal",
    "method",
    "host",
    "path",
    "query",
    "endpoint",
    "endpoint_key",
    "status",
    "bytes_out",
    "user_agent",
    "object_id",
    "id_slot",
]

#: Kinds of finding that are about an actor's own requests (the rest are about endpoints).
ACTOR_KINDS = ("exfiltration_window", "enumeration", "volume_anomaly", "scanning")

#: A run of empty hours at an observer is a coverage gap when at least this many events were expected
#: in it (the observer's median count for each hour of the day, summed over the run): quiet nights at a
#: small gateway are not gaps, one silent hour at a balancer that always logs is.
GAP_MIN_EXPECTED_EVENTS = 20.0


@dataclass
class ReportData:
    """A case as the report sees it (see the module docstring)."""

    case_dir: Path
    doc: dict[str, Any]
    manifest: dict[str, Any]
    events: pl.DataFrame
    hourly: pl.DataFrame
    observers: pl.DataFrame
    inventory: pl.DataFrame
    rejects: pl.DataFrame
    _finding_events: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------------------------------------
    @property
    def findings(self) -> list[dict[str, Any]]:
        return list(self.doc.get("findings", []))

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["kind"] in kinds]

    def actors(self) -> list[dict[str, Any]]:
        """The actors of the findings, in order of first appearance (A1 first), with their findings."""
        out: dict[str, dict[str, Any]] = {}
        for f in self.findings:
            a = f.get("actor")
            if not a:
                continue
            entry = out.setdefault(a["id"], {**a, "findings": []})
            entry["findings"].append(f)
            for key in ("client_ips", "principals", "user_agents"):
                entry[key] = sorted(set(entry[key]) | set(a.get(key) or []))
        return list(out.values())

    def main_actors(self) -> list[dict[str, Any]]:
        """Actors that took records (an exfiltration window or an enumeration): the story of the case."""
        return [
            a
            for a in self.actors()
            if any(f["kind"] in ("exfiltration_window", "enumeration") for f in a["findings"])
        ]

    # ----------------------------------------------------------------------------------------------
    def finding_events(self, f: dict[str, Any]) -> pl.DataFrame:
        """The events behind a finding: its reproducing query over the report's events.

        When the query selects nothing although the finding counts requests (a query that cannot be
        run here), the finding's actor, method, endpoint and time range select them instead.
        """
        if f["id"] in self._finding_events:
            return self._finding_events[f["id"]]
        out: pl.DataFrame | None = None
        try:
            out = pl.SQLContext(events=self._sql_view()).execute(f["query"], eager=True)
        except (pl.exceptions.PolarsError, ValueError):
            out = None
        if (out is None or out.height == 0) and f.get("requests"):
            out = self._fallback(f)
        out = (out if out is not None else self.events.head(0)).select(
            [pl.col(c).cast(self.events.schema[c]) for c in self.events.columns]
        )
        self._finding_events[f["id"]] = out
        return out

    def _sql_view(self) -> pl.LazyFrame:
        """The events under the event schema's names and types, for the findings' queries."""
        cats = [n for n, d in self.events.schema.items() if isinstance(d, pl.Categorical)]
        return self.events.lazy().with_columns([pl.col(n).cast(pl.String) for n in cats])

    def _fallback(self, f: dict[str, Any]) -> pl.DataFrame:
        cond = pl.lit(True)
        if f.get("actor"):
            cond &= pl.col("client").is_in(pl.Series(f["actor"]["client_ips"], dtype=pl.String).implode())
        if f.get("method"):
            cond &= pl.col("method").cast(pl.String) == f["method"]
        if f.get("endpoint"):
            cond &= (pl.col("endpoint_key").cast(pl.String) == f["endpoint"]) | (
                pl.col("endpoint").cast(pl.String) == f["endpoint"]
            )
        if f.get("start"):
            cond &= pl.col("ts") >= parse_ts(f["start"])
        if f.get("end"):
            cond &= pl.col("ts") <= parse_ts(f["end"])
        return self.events.filter(cond)

    def actor_events(self, actor: dict[str, Any]) -> pl.DataFrame:
        """Every request of an actor's addresses (all endpoints), in time order."""
        ips = pl.Series(actor["client_ips"], dtype=pl.String).implode()
        return self.events.filter(pl.col("client").is_in(ips))

    def user_agents(self, actor: dict[str, Any]) -> pl.DataFrame:
        """The actor's user agents by how often it used them (user_agent, requests): all of them, where
        findings.json lists at most ten, alphabetically."""
        return (
            self.actor_events(actor)
            .group_by(pl.col("user_agent").cast(pl.String))
            .agg(pl.len().alias("requests"))
            .sort(["requests", "user_agent"], descending=[True, False], nulls_last=True)
        )

    # ----------------------------------------------------------------------------------------------
    @property
    def first_ts(self) -> datetime | None:
        return parse_ts(self.doc.get("case", {}).get("first_ts"))

    @property
    def last_ts(self) -> datetime | None:
        return parse_ts(self.doc.get("case", {}).get("last_ts"))

    def charted_period(self) -> tuple[datetime | None, datetime | None, int]:
        """(first, last, events left out): the period the per-day charts show. A few events years away
        from the rest (a server clock at 1970, a typo'd 2099) would flatten every chart to nothing:
        when the 0.1%–99.9% span of the events is far shorter than the whole span, the charts keep
        that core (and every finding's window) and the report says how many events fall outside."""
        lo, hi = self.first_ts, self.last_ts
        ts = self.events.get_column("ts") if "ts" in self.events.columns else None
        if lo is None or hi is None or ts is None or ts.len() < 1000:
            return lo, hi, 0
        micros = ts.dt.epoch("us")
        core_lo = datetime.fromtimestamp(float(micros.quantile(0.001, "lower") or 0) / 1e6, tz=UTC)
        core_hi = datetime.fromtimestamp(float(micros.quantile(0.999, "higher") or 0) / 1e6, tz=UTC)
        if (hi - lo) <= 3 * (core_hi - core_lo) + timedelta(days=30):
            return lo, hi, 0
        for f in self.findings:  # a finding's window is always charted
            start, end = parse_ts(f.get("start")), parse_ts(f.get("end"))
            core_lo = min(core_lo, start) if start else core_lo
            core_hi = max(core_hi, end) if end else core_hi
        outside = int(((ts < core_lo) | (ts > core_hi)).sum())
        return core_lo, core_hi, outside

    def coverage_gaps(self) -> pl.DataFrame:
        """Coverage gaps of the traffic observers (see :func:`coverage_gaps`), with ``covered_by``: the
        other traffic observers that did log events in the gap (their copies of the requests are counted)."""
        traffic = self.hourly.filter(pl.col("role") == "traffic")
        gaps = coverage_gaps(traffic)
        covered = []
        for g in gaps.iter_rows(named=True):
            others = (
                traffic.filter(
                    (pl.col("observer") != g["observer"])
                    & (pl.col("hour") >= g["start"])
                    & (pl.col("hour") < g["end"])
                )
                .get_column("observer")
                .unique()
                .sort()
                .to_list()
            )
            covered.append(others)
        return gaps.with_columns(pl.Series("covered_by", covered, dtype=pl.List(pl.String)))


def parse_ts(text: str | None) -> datetime | None:
    """findings.json times (ISO 8601, ``Z``) as aware UTC datetimes."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def load(case_dir: str | Path) -> ReportData:
    """Read findings.json, the manifest, the inventory, the rejects and the events of a case."""
    case = Case.open(case_dir)
    doc = fmodel.read(case.path / "findings.json")
    manifest = case.load_manifest()
    recorded = doc["case"].get("evidence_sha256")
    if recorded is not None and recorded != case.evidence_digest(manifest):
        raise ForensicsError(
            f"findings.json in {case_dir} was written before the evidence last changed",
            hint="run `forensics analyze --case DIR` again (investigate does both)",
        )
    config = doc.get("config") or DEFAULTS
    inv_path = case.path / INVENTORY_FILE
    traffic = case.scan_events()
    if inv_path.exists():
        traffic = apply_inventory(traffic, case)
    deduped, _report = deduplicate(traffic)
    events = _prepared_events(deduped, config)
    reference = case.reference_files(manifest)
    everything = case.scan_events(include_reference=True)
    role = (
        pl.when(pl.col("source_file").cast(pl.String).is_in(reference))
        .then(pl.lit("reference"))
        .otherwise(pl.lit("traffic"))
        .alias("role")
    )
    hourly = (
        everything.group_by(
            pl.col("source_format").cast(pl.String),
            pl.col("observer").cast(pl.String),
            role,
            pl.col("ts").dt.truncate("1h").alias("hour"),
        )
        .agg(pl.len().alias("events"))
        .sort("source_format", "observer", "role", "hour")
        .collect()
    )
    observers = (
        everything.group_by(pl.col("source_format").cast(pl.String), pl.col("observer").cast(pl.String), role)
        .agg(
            pl.len().alias("events"),
            pl.col("ts").min().alias("first_ts"),
            pl.col("ts").max().alias("last_ts"),
            pl.col("source_file").n_unique().alias("files"),
        )
        .sort("role", "source_format", "observer", descending=[True, False, False])
        .collect()
    )
    inventory = pl.read_parquet(inv_path, glob=False) if inv_path.exists() else pl.DataFrame()
    rejects = (
        case.scan_rejects()
        .group_by(pl.col("source_format").cast(pl.String), pl.col("reason"))
        .agg(pl.len().alias("lines"), pl.col("source_file").n_unique().alias("files"))
        .sort(["lines", "source_format", "reason"], descending=[True, False, False])
        .collect()
    )
    return ReportData(case.path, doc, manifest, events, hourly, observers, inventory, rejects)


def _prepared_events(deduped: pl.LazyFrame, config: dict[str, Any]) -> pl.DataFrame:
    """The de-duplicated events with the passes' ``client``, ``object_id``, ``endpoint_key``, ``id_slot``,
    and the raw columns the report shows besides (``path``): collected once, then prepared row by row, so
    the report does not depend on which columns the passes choose to keep."""
    derived = {"client", "object_id", "endpoint_key", "id_slot"}
    available = set(deduped.collect_schema().names())
    raw = [c for c in EVENT_SCHEMA_ORDER if c in available and c not in derived]
    wanted = (
        set(PREPARED_COLUMNS) - derived
        | {"client_ip", "path", "query", "endpoint"}
        | set(EVENT_COLUMNS) - derived
    )
    raw = [c for c in raw if c in wanted]
    frame = deduped.select(raw).collect()
    prepared = prepare(frame.lazy(), config).collect()
    extra = [c for c in raw if c not in prepared.columns]
    out = pl.concat([prepared, frame.select(extra)], how="horizontal") if extra else prepared
    if "client_ip" not in out.columns:
        out = out.with_columns(pl.col("client").alias("client_ip"))
    return (
        out.select(EVENT_COLUMNS)
        .with_columns(
            [pl.col(c).cast(pl.Categorical) for c in ("client", "source_format", "observer", "source_file")]
        )
        .sort("ts", "source_file", "source_line")
    )


def coverage_gaps(hourly: pl.DataFrame, min_expected: float = GAP_MIN_EXPECTED_EVENTS) -> pl.DataFrame:
    """Runs of hours in which an observer logged nothing although it was expected to log plenty.

    ``hourly`` has one row per (source_format, observer, hour) with ``events``. The hours considered run
    from the first to the last hour of all observers together, so an observer that starts late or stops
    early has a gap at that end. The expectation for an empty hour is the observer's median count for
    that hour of the day over the days it was active; a run is a gap when the expectations of its hours
    add up to at least ``min_expected`` events. Returns source_format, observer, start, end (exclusive),
    hours, expected_events.
    """
    schema = {
        "source_format": pl.String,
        "observer": pl.String,
        "start": pl.Datetime("us", "UTC"),
        "end": pl.Datetime("us", "UTC"),
        "hours": pl.Int64,
        "expected_events": pl.Float64,
    }
    if hourly.height == 0:
        return pl.DataFrame(schema=schema)
    lo, hi = hourly.get_column("hour").min(), hourly.get_column("hour").max()
    grid = pl.datetime_range(lo, hi, "1h", eager=True, time_zone="UTC").alias("hour").to_frame()
    rows = []
    for (fmt, obs), g in hourly.group_by("source_format", "observer", maintain_order=True):
        days = g.get_column("hour").dt.date().unique()
        first_day, last_day = days.min(), days.max()
        full = grid.join(g.select("hour", "events"), on="hour", how="left").with_columns(
            pl.col("events").fill_null(0)
        )
        # Median per hour of day over the observer's own active days (zeros included).
        own = full.filter(pl.col("hour").dt.date().is_between(first_day, last_day))
        rate = own.group_by(pl.col("hour").dt.hour().alias("hod")).agg(
            pl.col("events").median().alias("rate")
        )
        full = full.with_columns(pl.col("hour").dt.hour().alias("hod")).join(rate, on="hod", how="left")
        full = full.with_columns(pl.col("rate").fill_null(0.0)).sort("hour")
        empty = full.get_column("events") == 0
        run = (empty != empty.shift(1)).fill_null(True).cum_sum().alias("run")
        runs = (
            full.with_columns(run, empty.alias("empty"))
            .filter(pl.col("empty"))
            .group_by("run")
            .agg(
                pl.col("hour").min().alias("start"),
                (pl.col("hour").max() + timedelta(hours=1)).alias("end"),
                pl.len().cast(pl.Int64).alias("hours"),
                pl.col("rate").sum().alias("expected_events"),
            )
            .filter(pl.col("expected_events") >= min_expected)
            .sort("start")
        )
        for r in runs.iter_rows(named=True):
            rows.append({"source_format": fmt, "observer": obs, **{k: r[k] for k in schema if k in r}})
    return pl.DataFrame(rows, schema=schema).sort("start", "source_format", "observer")


def headline(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The case in one line: the leading finding that took records (an exfiltration window, else an
    enumeration), as the CLI, report.html and report.md state it. None when nothing was taken."""
    taken = [f for f in doc.get("findings", []) if f["kind"] == "exfiltration_window"] or [
        f for f in doc.get("findings", []) if f["kind"] == "enumeration"
    ]
    if not taken:
        return None
    f = taken[0]
    actor = f.get("actor") or {"id": None, "client_ips": [], "user_agents": [], "principals": []}
    start, end = parse_ts(f["start"]), parse_ts(f["end"])
    same_actor = [g for g in taken if (g.get("actor") or {}).get("id") == actor["id"]]
    return {
        "finding_id": f["id"],
        "kind": f["kind"],
        "actor_id": actor["id"],
        "addresses": len(actor["client_ips"]),
        "user_agents": list(actor.get("user_agents") or []),
        "principals": list(actor.get("principals") or []),
        "records": f["distinct_objects"] or 0,
        "objects_requested": f.get("objects_requested"),
        "requests": f["requests"],
        "bytes": f["bytes"],
        "pii_kinds": list(f.get("pii_kinds") or []),
        "method": f.get("method"),
        "host": f.get("host"),
        "endpoint": f.get("endpoint"),
        "start": start,
        "end": end,
        "days": (end.date() - start.date()).days + 1 if start and end else None,
        "censored": dict(f.get("censored") or {}),
        "windows": len(same_actor),
        "other_actors": sorted(
            {(g.get("actor") or {}).get("id") for g in taken} - {actor["id"], None},
            key=lambda a: int(a[1:]) if a[1:].isdigit() else 0,
        ),
    }
