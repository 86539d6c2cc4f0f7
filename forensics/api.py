"""The library API: what the CLI calls, and what notebooks and other tools use directly."""

from __future__ import annotations

import os
import re
from typing import Any

import polars as pl

from .case import Case
from .errors import ForensicsError
from .ingest.base import IngestOptions
from .ingest.driver import IngestReport
from .ingest.driver import ingest as _ingest


def ingest(
    sources: list[str],
    case_dir: str | os.PathLike[str],
    *,
    format: str | None = None,
    log_format: str | None = None,
    trusted_proxies: tuple[str, ...] = (),
    tz: str | None = None,
    role: str | None = None,
    workers: int | None = None,
    on_event: Any = None,
    resolved: Any = None,
) -> IngestReport:
    """Ingest evidence files/directories/globs into the case at ``case_dir`` (``resolved``: the
    sources already listed by :func:`~forensics.ingest.driver.resolve_sources`)."""
    check_ingest_options(format=format, log_format=log_format, trusted_proxies=trusted_proxies, tz=tz)
    options = IngestOptions(
        format=format, log_format=log_format, trusted_proxies=tuple(trusted_proxies), tz=tz, role=role
    )
    return _ingest(sources, case_dir, options, workers=workers, on_event=on_event, resolved=resolved)


def check_ingest_options(
    *,
    format: str | None = None,
    log_format: str | None = None,
    trusted_proxies: tuple[str, ...] = (),
    tz: str | None = None,
) -> None:
    """Refuse bad ingest options before anything is written (the CLI calls this before logging).

    An empty value is refused, not ignored: it is usually an unset shell variable."""
    for option, value in (("--format", format), ("--log-format", log_format), ("--tz", tz)):
        if value is not None and not value.strip():
            raise ForensicsError(
                f"{option} is empty", hint=f"give a value or leave {option} out (an unset shell variable?)"
            )
    if tz is not None:
        _check_tz(tz)
    if trusted_proxies:
        from .clients import parse_networks

        try:
            parse_networks(trusted_proxies)
        except ValueError as exc:
            raise ForensicsError(str(exc), hint="--trusted-proxy takes CIDR ranges like 10.0.0.0/8") from None
    if log_format:
        from .ingest.logformat import compile_format

        try:
            compile_format(log_format)
        except ValueError as exc:
            raise ForensicsError(
                f"--log-format: {exc}", hint="pass the string between the quotes of the config line"
            ) from None
    if format:
        from .ingest import get, preset_names

        if format not in preset_names():
            get(format)


def _check_tz(tz: str) -> None:
    try:
        pl.Series(["2020-01-01 00:00:00"]).str.to_datetime().dt.replace_time_zone(tz)
    except Exception:
        raise ForensicsError(
            f"unknown time zone {tz!r}", hint="use an IANA name such as America/New_York"
        ) from None


def open_case(case_dir: str | os.PathLike[str]) -> Case:
    return Case.open(case_dir)


def sql_context(case: Case) -> pl.SQLContext:
    """Tables for ad-hoc SQL: ``events`` (traffic), ``all_events`` (with reference sources), ``rejects``.

    ``endpoint`` is the template refined across the case once the inventory is built (what the analysis
    counts by), so a finding's query returns exactly the events it counts."""
    from .inventory import fresh_mapping, refine

    mapping = fresh_mapping(case)

    def events(include_reference: bool) -> pl.LazyFrame:
        lf = case.scan_events(include_reference=include_reference)
        return _text_categoricals(refine(lf, mapping) if mapping is not None else lf)

    ctx = pl.SQLContext()
    ctx.register("events", events(False))
    ctx.register("all_events", events(True))
    ctx.register("rejects", _text_categoricals(case.scan_rejects()))
    inventory = case.path / "inventory.parquet"
    if inventory.exists():
        ctx.register("inventory", pl.scan_parquet(inventory, glob=False))
    return ctx


def inventory(case_dir: str | os.PathLike[str]) -> pl.DataFrame:
    """Build the API inventory over every event (reference sources included) → inventory.parquet."""
    from .inventory import write_inventory

    return write_inventory(Case.open(case_dir))


def _text_categoricals(lf: pl.LazyFrame) -> pl.LazyFrame:
    """SQL users compare and LIKE source_file, observer, …: present categoricals as text (lazily)."""
    schema = lf.collect_schema()
    cats = [n for n, d in schema.items() if isinstance(d, pl.Categorical)]
    return lf.with_columns([pl.col(n).cast(pl.String) for n in cats]) if cats else lf


def query(case_dir: str | os.PathLike[str], sql: str) -> pl.DataFrame:
    """Run polars SQL over the case: one read-only statement (SELECT, WITH, SHOW, EXPLAIN)."""
    case = Case.open(case_dir)
    _check_read_only(sql)
    try:
        return sql_context(case).execute(sql, eager=True)
    except (
        pl.exceptions.SQLInterfaceError,
        pl.exceptions.SQLSyntaxError,
        pl.exceptions.ColumnNotFoundError,
        pl.exceptions.InvalidOperationError,
        pl.exceptions.ComputeError,
        pl.exceptions.SchemaError,
    ) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ForensicsError(
            f"query failed: {first}", hint="tables: events, all_events, rejects (and inventory)"
        ) from None


#: First words of the statements ``query`` runs; polars would also run DROP TABLE, CREATE TABLE … and
#: answer with an empty frame, which reads as "no rows" (it changes only the in-memory context).
_READ_ONLY_STATEMENTS = ("SELECT", "WITH", "SHOW", "EXPLAIN", "DESCRIBE", "VALUES", "TABLE")
_SQL_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.S)


def _check_read_only(sql: str) -> None:
    """Refuse statements that are not queries, with the word that was given."""
    body = _SQL_COMMENTS.sub("", sql).lstrip("( \t\r\n")
    word = re.match(r"[A-Za-z_]*", body)
    first = word.group(0).upper() if word else ""
    if first not in _READ_ONLY_STATEMENTS:
        shown = first or (body[:20] if body else "an empty query")
        raise ForensicsError(
            f"query failed: only SELECT queries are run, not {shown}",
            hint='e.g. "SELECT client_ip, count(*) AS n FROM events GROUP BY 1" (tables: events, all_events, '
            "rejects, inventory)",
        )


def check_analyze_options(
    case_dir: str | os.PathLike[str],
    *,
    config_path: str | os.PathLike[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    clients: tuple[str, ...] | list[str] = (),
) -> None:
    """Refuse analyze options that would silently report nothing (and overwrite findings.json with it).

    ``--until`` before ``--since`` is an empty range; a ``--client`` that is not an address seen in the
    case's traffic can match no finding."""
    import ipaddress

    from . import config as config_mod
    from .analyze import _parse_time

    case = Case.open(case_dir)
    config_mod.load(config_path)
    for option, value in (("--since", since), ("--until", until)):
        if value is not None and not value.strip():
            raise ForensicsError(f"{option} is empty", hint=f"give an ISO 8601 time or leave {option} out")
    since_t, until_t = _parse_time(since), _parse_time(until)
    if since_t is not None and until_t is not None and until_t < since_t:
        raise ForensicsError(
            f"--until {until} is before --since {since}", hint="give the earlier time to --since"
        )
    if not clients:
        return
    wanted = list(dict.fromkeys(clients))
    seen = set(
        case.scan_events()
        .select(pl.col("client_ip").cast(pl.String))
        .filter(pl.col("client_ip").is_in(pl.Series(wanted, dtype=pl.String).implode()))
        .unique()
        .collect()
        .get_column("client_ip")
        .to_list()
    )
    for value in wanted:
        if value in seen:
            continue
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ForensicsError(
                f"--client {value!r} is not an IP address",
                hint="give a client address as it appears in the events, e.g. 203.0.113.9",
            ) from None
        raise ForensicsError(
            f"--client {value} does not appear in the case's traffic",
            hint='list the clients with `forensics query --case DIR "SELECT DISTINCT client_ip FROM events"`',
        )


def summary(case_dir: str | os.PathLike[str], top: int = 5) -> dict[str, Any]:
    """Sources, time range, top clients and top endpoints of a case (the traffic events)."""
    case = Case.open(case_dir)
    manifest = case.load_manifest()
    lf = case.scan_events()
    totals = (
        lf.select(
            pl.len().alias("events"),
            pl.col("ts").min().alias("first"),
            pl.col("ts").max().alias("last"),
            pl.col("client_ip").n_unique().alias("clients"),
        )
        .collect()
        .row(0, named=True)
    )
    by_source = (
        lf.group_by(pl.col("source_format").cast(pl.String))
        .agg(pl.len().alias("events"), pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last"))
        .sort("source_format")
        .collect()
    )
    top_clients = (
        lf.group_by("client_ip")
        .agg(pl.len().alias("requests"), pl.col("bytes_out").sum().alias("bytes_out"))
        .sort(["requests", "client_ip"], descending=[True, False])
        .head(top)
        .collect()
    )
    top_endpoints = (
        lf.group_by("method", "endpoint")
        .agg(pl.len().alias("requests"), pl.col("client_ip").n_unique().alias("clients"))
        .sort(["requests", "endpoint"], descending=[True, False])
        .head(top)
        .collect()
    )
    inputs = manifest["inputs"]
    status: dict[str, int] = {}
    for e in inputs:
        status[e["status"]] = status.get(e["status"], 0) + 1
    return {
        "case": str(case.path),
        "events": totals["events"],
        "first_ts": totals["first"],
        "last_ts": totals["last"],
        "clients": totals["clients"],
        "inputs": len(inputs),
        "input_status": status,
        "lines": sum(e["lines_read"] for e in inputs if e["status"] in ("ingested", "partial")),
        "rejected": sum(e["rejected"] for e in inputs if e["status"] in ("ingested", "partial")),
        "by_source": by_source,
        "top_clients": top_clients,
        "top_endpoints": top_endpoints,
        "reference_files": case.reference_files(manifest),
    }


def report(case_dir: str | os.PathLike[str], on_step: Any = None) -> dict[str, Any]:
    """Write the timeline, charts, report.html and report.md of an analysed case; {name: path} written."""
    from .report import build_report

    return build_report(case_dir, on_step=on_step)


def sample(
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 1,
    scale: float = 1.0,
    start: Any = None,
    days: int = 70,
    formats: str | list[str] | None = None,
    profile: str = "standard",
    force: bool = False,
) -> Any:
    """Write a synthetic T-Mobile-like breach as raw evidence plus truth.json (see :mod:`forensics.sample`)."""
    from .sample import generate

    return generate(
        out_dir, seed=seed, scale=scale, start=start, days=days, formats=formats, profile=profile, force=force
    )
