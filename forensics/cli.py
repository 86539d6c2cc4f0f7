"""The command line: a thin click layer over :mod:`forensics.api`.

Errors a user can cause end with one line and a hint on stderr and a non-zero exit, never a traceback.
Values from the evidence are passed through :func:`forensics.safe.terminal` before they are printed.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from . import __version__, api
from .errors import ForensicsError
from .safe import terminal

err = Console(stderr=True, highlight=False, soft_wrap=True)
# Tables keep a readable width when the output goes to a file or a pipe (rich would assume 80 columns).
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 140)


def shown(text: object, limit: int = 200) -> str:
    """:func:`terminal` for text inside rich markup: its ``[`` cannot open a style (nor break the print)."""
    from rich.markup import escape

    return escape(terminal(text, limit))


class Group(click.Group):
    """Turns errors into one line + hint (exit 1); unexpected ones into a short internal-error line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ForensicsError as exc:
            err.print(f"[bold red]Error:[/] {shown(exc.message, 2000)}", markup=True)
            if exc.hint:
                err.print(f"[dim]Hint:[/] {shown(exc.hint, 2000)}", markup=True)
            sys.exit(1)
        except (
            click.ClickException,
            click.exceptions.Exit,
            click.exceptions.Abort,
            SystemExit,
            KeyboardInterrupt,
        ):
            raise
        except MemoryError:
            err.print("[bold red]Error:[/] out of memory", markup=True)
            sys.exit(1)
        except Exception as exc:
            if os.environ.get("FORENSICS_DEBUG"):
                raise
            err.print(f"[bold red]Internal error:[/] {type(exc).__name__}: {shown(exc, 500)}", markup=True)
            err.print(
                "[dim]Hint:[/] rerun with FORENSICS_DEBUG=1 for the traceback, and report it", markup=True
            )
            sys.exit(70)


def _not_empty(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """An empty path is the current directory: usually an unset shell variable, never meant."""
    if value == "":
        raise ForensicsError("--case is empty", hint="give the case directory (an unset shell variable?)")
    return value


def case_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--case",
        "case_dir",
        required=True,
        type=click.Path(file_okay=False),
        callback=_not_empty,
        help="The case directory.",
    )(f)


def _log(case_dir: str, command: str, **args: Any) -> None:
    """Append to the log of an existing case: a mistyped --case, or an evidence directory, gets nothing."""
    from .case import Case

    Case.open(case_dir).log_command(command, args)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="forensics")
def main() -> None:
    """Offline breach forensics for API traffic.

    Ingest HAR captures, nginx/Apache and cloud load-balancer logs into one Parquet event store, find
    enumeration and exfiltration, and report.

    \b
    Example:
      forensics ingest evidence/ --case case/
      forensics query --case case/ "SELECT client_ip, count(*) n FROM events GROUP BY 1 ORDER BY n DESC LIMIT 5"
    """


# --------------------------------------------------------------------------------------------------
def ingest_options(f: Callable[..., Any]) -> Callable[..., Any]:
    decorators = [
        click.argument("sources", nargs=-1, required=True),
        case_option,
        click.option(
            "--format",
            "fmt",
            metavar="NAME",
            help="Skip detection: an ingestor or preset name (see `forensics formats`).",
        ),
        click.option(
            "--log-format", metavar="STRING", help="An nginx log_format or Apache LogFormat string."
        ),
        click.option(
            "--trusted-proxy",
            "trusted_proxy",
            multiple=True,
            metavar="CIDR",
            help="A proxy/balancer range whose X-Forwarded-For is believed (private ranges always are).",
        ),
        click.option("--tz", metavar="ZONE", help="Zone of sources that write local time without an offset."),
        click.option(
            "--role",
            type=click.Choice(["traffic", "reference"]),
            help="Count these sources as traffic or as reference (HAR default: reference).",
        ),
        click.option(
            "--workers", type=click.IntRange(min=1), default=None, help="Worker processes (default: up to 2)."
        ),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def run_ingest(
    sources: tuple[str, ...],
    case_dir: str,
    fmt: str | None,
    log_format: str | None,
    trusted_proxy: tuple[str, ...],
    tz: str | None,
    role: str | None,
    workers: int | None,
) -> Any:
    from pathlib import Path

    from .case import Case
    from .ingest.driver import check_case_location, resolve_sources

    # Everything is checked before the first write: a refused command leaves no directory behind.
    if any(src == "" for src in sources):
        raise ForensicsError(
            "an empty source was given", hint="name files, directories or globs (an unset shell variable?)"
        )
    api.check_ingest_options(format=fmt, log_format=log_format, trusted_proxies=trusted_proxy, tz=tz)
    check_case_location(Path(case_dir), sources)
    resolved = resolve_sources(sources)  # listed once: the driver reads this listing
    Case(case_dir).log_command(
        "ingest",
        {
            "sources": list(sources),
            "format": fmt,
            "log_format": log_format,
            "trusted_proxy": list(trusted_proxy),
            "tz": tz,
            "role": role,
        },
    )
    progress = Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        TextColumn("{task.fields[files]} files"),
        TextColumn("{task.fields[lines]:,} lines"),
        TextColumn("{task.fields[mb]:.1f}/{task.fields[mbtotal]:.1f} MB"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    state = {"task": None, "lines": 0, "bytes": 0, "files": 0}

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "plan":
            state["task"] = progress.add_task(
                "ingest",
                total=max(1, data["bytes"]),
                files=f"0/{data['files']}",
                lines=0,
                mb=0.0,
                mbtotal=data["bytes"] / 1e6,
            )
            state["nfiles"] = data["files"]
        elif kind == "lines":
            state["lines"] += data["lines"]
            state["bytes"] += data["bytes"]
            progress.update(state["task"], lines=state["lines"], mb=state["bytes"] / 1e6)
        elif kind == "unit":
            state["files"] += data["files"]
            state["lines_done"] = state.get("lines_done", 0) + data["lines"]
            state["lines"] = max(state["lines"], state["lines_done"])
            state["bytes_done"] = state.get("bytes_done", 0) + data["bytes"]
            progress.update(
                state["task"],
                completed=state["bytes_done"],
                files=f"{state['files']}/{state['nfiles']}",
                lines=state["lines"],
                mb=max(state["bytes"], state["bytes_done"]) / 1e6,
            )

    with progress:
        report = api.ingest(
            list(sources),
            case_dir,
            format=fmt,
            log_format=log_format,
            trusted_proxies=trusted_proxy,
            tz=tz,
            role=role,
            workers=workers,
            on_event=on_event,
            resolved=resolved,
        )
    print_ingest_report(report)
    check_something_read(report)
    return report


def check_something_read(report: Any) -> None:
    """Every input unknown or unreadable is a failed ingest, not a quiet success with 0 events."""
    t = report.totals()
    status = t["status"]
    read = sum(status.get(s, 0) for s in ("ingested", "partial", "duplicate")) + t["already_in_case"]
    unknown, errors = status.get("unknown", 0), status.get("error", 0)
    if read or not (unknown or errors):
        return
    empty = f", {status['empty']} empty" if status.get("empty") else ""
    raise ForensicsError(
        f"no input could be read: {unknown} unknown, {errors} error(s){empty}",
        hint="name the format with --format NAME (see `forensics formats`) or --log-format STRING",
    )


def print_ingest_report(report: Any) -> None:
    t = report.totals()
    table = Table(title="Ingested", title_justify="left")
    for col in ("format", "files", "lines", "events", "rejected"):
        table.add_column(col, justify="right" if col != "format" else "left")
    for name, v in sorted(t["formats"].items()):
        table.add_row(name, f"{v['files']:,}", f"{v['lines']:,}", f"{v['rows']:,}", f"{v['rejected']:,}")
    table.add_row(
        "[bold]total", "", f"[bold]{t['lines']:,}", f"[bold]{t['rows']:,}", f"[bold]{t['rejected']:,}"
    )
    out.print(table)
    check = "ok" if t["rows"] + t["rejected"] == t["lines"] else "MISMATCH"
    out.print(f"events + rejected = lines read: {t['rows']:,} + {t['rejected']:,} = {t['lines']:,} ({check})")
    status = t["status"]
    if t["already_in_case"]:
        out.print(f"{t['already_in_case']} file(s) already in the case: skipped")
    for f in report.files:
        if f.status in ("unknown", "error", "partial", "duplicate", "empty", "skipped"):
            detail = f.error or (f"duplicate of {f.duplicate_of}" if f.duplicate_of else "; ".join(f.notes))
            out.print(f"  {f.status:9} {shown(f.path, 120)}  {shown(detail, 200)}")
    if status.get("unknown"):
        out.print(
            f"{status['unknown']} file(s) in no known format: listed in manifest.json, not parsed "
            "(try --format or --log-format)"
        )


@main.command()
@ingest_options
def ingest(**kwargs: Any) -> None:
    """Read evidence files, directories or globs into the case's event store.

    \b
    Example:
      forensics ingest /evidence/nginx /evidence/AWSLogs --case case/
      forensics ingest access.log* --case case/ --log-format '$remote_addr [$time_local] "$request" $status'
    """
    run_ingest(**kwargs)


# --------------------------------------------------------------------------------------------------
@main.command()
@case_option
@click.argument("sql")
@click.option(
    "--output", "-o", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@click.option(
    "--limit", type=click.IntRange(min=0), default=50, show_default=True, help="Rows shown in table mode."
)
def query(case_dir: str, sql: str, output: str, limit: int) -> None:
    """Ad-hoc polars SQL over the case: tables events, all_events, rejects (and inventory).

    \b
    Example:
      forensics query --case case/ "SELECT endpoint, count(*) AS n FROM events GROUP BY endpoint ORDER BY n DESC"
    """
    frame = api.query(case_dir, sql)
    _log(case_dir, "query", sql=sql)
    if output == "csv":
        from .safe import neutralize_csv

        text = neutralize_csv(_plain(frame)).write_csv()
        # On a terminal the cells are shown, not kept: escape sequences and bidi overrides stay inert.
        sys.stdout.write(terminal(text, len(text) + 1, lines=True) if sys.stdout.isatty() else text)
    elif output == "json":
        sys.stdout.write(frame.write_ndjson())
    else:
        print_frame(frame, limit=limit)


def _plain(frame: Any) -> Any:
    import polars as pl

    return frame.with_columns(
        [pl.col(c).cast(pl.String) for c, d in frame.schema.items() if d == pl.Categorical]
    )


def print_frame(frame: Any, limit: int = 50, title: str | None = None) -> None:
    table = Table(title=title, title_justify="left")
    for name in frame.columns:
        table.add_column(name, overflow="fold")
    for row in frame.head(limit).iter_rows():
        table.add_row(*[Text(terminal(v, 80)) if v is not None else "" for v in row])
    out.print(table)
    if frame.height > limit:
        out.print(f"({frame.height:,} rows, {limit} shown)")


# --------------------------------------------------------------------------------------------------
@main.command()
def formats() -> None:
    """List every format that can be read, and how each is recognised."""
    from .ingest import INGESTORS, preset_names

    table = Table(title="Formats", title_justify="left")
    table.add_column("name")
    table.add_column("reads")
    table.add_column("recognised by")
    table.add_column("role")
    for ing in INGESTORS:
        table.add_row(ing.name, Text(ing.description), Text(ing.recognised_by), ing.default_role)
    out.print(table)
    presets = sorted(k for k in preset_names() if ":" in k)
    out.print("Presets (--format NAME): " + ", ".join(presets))
    out.print("Any nginx log_format or Apache LogFormat string: --log-format STRING")


# --------------------------------------------------------------------------------------------------
def print_summary(case_dir: str) -> dict[str, Any]:
    s = api.summary(case_dir)
    out.print(f"[bold]Case[/] {shown(s['case'])}: {s['events']:,} traffic events from {s['inputs']} input(s)")
    if s["first_ts"] is not None:
        out.print(f"Time range (UTC): {s['first_ts']:%Y-%m-%d %H:%M:%S} → {s['last_ts']:%Y-%m-%d %H:%M:%S}")
    out.print(f"Lines read {s['lines']:,}; rejected {s['rejected']:,}; distinct clients {s['clients']:,}")
    if s["reference_files"]:
        out.print(f"Reference sources (not counted as traffic): {len(s['reference_files'])}")
    print_frame(s["by_source"], title="Sources")
    print_frame(s["top_clients"], title="Top clients")
    print_frame(s["top_endpoints"], title="Top endpoints")
    return s


@main.command()
@case_option
def summary(case_dir: str) -> None:
    """Sources, time range, top clients and top endpoints of a case."""
    print_summary(case_dir)


@main.command()
@case_option
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, help="Rows shown.")
def inventory(case_dir: str, limit: int) -> None:
    """Endpoint inventory → inventory.parquet (+ a table): one row per (method, host, endpoint template).

    HAR captures and logs together, templates refined across the case: hits, sources, status mix,
    authentication and personal-data kinds, median response size. Endpoints that return personal
    data without authentication come first.

    \b
    Example:
      forensics inventory --case case/
    """
    from .inventory import INVENTORY_FILE, inventory_table

    frame = api.inventory(case_dir)
    _log(case_dir, "inventory", limit=limit)
    exposed = int(frame.get_column("returns_pii_without_auth").sum()) if frame.height else 0
    print_frame(
        inventory_table(frame),
        limit=limit,
        title=f"API inventory: {frame.height:,} endpoints, {exposed} return personal data without authentication",
    )
    out.print(f"Written: {shown(os.path.join(case_dir, INVENTORY_FILE))}")


@main.command()
@ingest_options
def investigate(**kwargs: Any) -> None:
    """Run every stage on the evidence: ingest, inventory, analyze and report; end with the headline.

    \b
    Example:
      forensics investigate sample_logs/ --case case/
    """
    case_dir = kwargs["case_dir"]
    run_ingest(**kwargs)
    s = print_summary(case_dir)
    if not s["events"]:
        # Analysing nothing would end in "no exfiltration found": a verdict the evidence cannot give.
        raise ForensicsError(
            "no traffic events were ingested: nothing to investigate",
            hint="HAR captures count as reference: add --role traffic to analyse them"
            if s["reference_files"]
            else "check the summary above: name the format with --format NAME or --log-format STRING",
        )
    with err.status("inventory: endpoints across the case"):
        frame = api.inventory(case_dir)
    _log(case_dir, "inventory")
    exposed = int(frame.get_column("returns_pii_without_auth").sum()) if frame.height else 0
    out.print(f"Inventory: {frame.height:,} endpoints, {exposed} return personal data without authentication")
    run_analyze(case_dir, None, None, None, (), ())
    run_report(case_dir)


# --------------------------------------------------------------------------------------------------
@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same bytes.")
@click.option(
    "--scale", type=float, default=1.0, show_default=True, help="1.0 is a few MB; 10 is ~10x requests."
)
@click.option(
    "--start", metavar="DATE", default="2022-11-01", show_default=True, help="First day of evidence (UTC)."
)
@click.option("--days", type=int, default=70, show_default=True, help="Days of evidence.")
@click.option("--formats", default="alb,nginx,har", show_default=True, help="Which evidence to write.")
@click.option(
    "--profile",
    type=click.Choice(["standard", "hard"]),
    default="standard",
    show_default=True,
    help="hard: an evasive attacker, and customer-service staff reading many customers.",
)
@click.option("--hard", is_flag=True, help="Shorthand for --profile hard.")
@click.option("--force", is_flag=True, help="Replace a previous sample in OUT_DIR.")
def sample(
    out_dir: str,
    seed: int,
    scale: float,
    start: str,
    days: int,
    formats: str,
    profile: str,
    hard: bool,
    force: bool,
) -> None:
    """Write a realistic synthetic API breach as raw evidence, with the truth in truth.json.

    A T-Mobile-like case: an ALB S3 tree, rotated nginx logs of two gateways (server clock in
    Los Angeles time, across the DST change), the app team's HAR capture, and truth.json (the
    attacker's addresses, first and last request, records taken; the benign heavy clients).

    \b
    Example:
      forensics sample /tmp/evidence --seed 7 && forensics investigate /tmp/evidence --case /tmp/case
      forensics sample /tmp/hard --hard --scale 0.2 --days 30
    """
    result = api.sample(
        out_dir,
        seed=seed,
        scale=scale,
        start=start,
        days=days,
        formats=formats,
        profile="hard" if hard else profile,
        force=force,
    )
    t = result.truth
    table = Table(title=f"Sample written to {shown(out_dir, 200)}", title_justify="left")
    for col in ("format", "files", "lines", "events expected", "rejects expected"):
        table.add_column(col, justify="left" if col == "format" else "right")
    for name, f in sorted(t["formats"].items()):
        files = f.get("files", 1) if name != "nginx" else sum(len(g["files"]) for g in f["gateways"].values())
        lines = f.get("lines", f.get("entries", 0))
        table.add_row(
            name, f"{files:,}", f"{lines:,}", f"{f.get('events', lines):,}", f"{f.get('rejects', 0):,}"
        )
    out.print(table)
    for a in t["attackers"]:
        out.print(
            f"attacker ({t['profile']}): {len(a['addresses']):,} addresses, {a['first_request']} → "
            f"{a['last_request']}, {a['records_returned']:,} of {a['records_requested']:,} records requested "
            f"returned via {a['method']} {a['endpoint']}"
        )
    seconds = sum(result.timings.values())
    out.print(
        f"{result.requests:,} requests, {result.files:,} files, {result.bytes / 1e6:.1f} MB in {seconds:.1f} s "
        f"({result.requests / max(seconds, 1e-9):,.0f} requests/s); truth: {shown(out_dir, 200)}/truth.json"
    )


# --------------------------------------------------------------------------------------------------
def analyze_options(f: Callable[..., Any]) -> Callable[..., Any]:
    decorators = [
        click.option(
            "--config", "config_path", type=click.Path(dir_okay=False), help="TOML thresholds/allowlists."
        ),
        click.option("--since", metavar="TIME", help="Report only what happened from TIME (UTC, ISO 8601)."),
        click.option("--until", metavar="TIME", help="Report only what happened until TIME (UTC, ISO 8601)."),
        click.option(
            "--client", "clients", multiple=True, metavar="IP", help="Report only findings about IP."
        ),
        click.option(
            "--endpoint",
            "endpoints",
            multiple=True,
            metavar="TEMPLATE",
            help="Report only findings on this endpoint template.",
        ),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def run_analyze(
    case_dir: str,
    config_path: str | None,
    since: str | None,
    until: str | None,
    clients: tuple[str, ...],
    endpoints: tuple[str, ...],
) -> Any:
    from .analyze import analyze as do_analyze

    api.check_analyze_options(case_dir, config_path=config_path, since=since, until=until, clients=clients)
    _log(
        case_dir,
        "analyze",
        config=config_path,
        since=since,
        until=until,
        clients=list(clients),
        endpoints=list(endpoints),
    )
    with err.status("analyze: running the passes"):
        result = do_analyze(
            case_dir, config_path, since, until, list(clients) or None, list(endpoints) or None
        )
    print_findings(result.document)
    out.print(
        f"Wrote {result.paths['findings']}, {result.paths['affected_records'].name}, "
        f"{result.paths['iocs'].name}"
    )
    return result


def print_findings(doc: dict[str, Any]) -> None:
    from .findings import OVERVIEW_COLUMNS, overview_row

    table = Table(title=f"Findings ({len(doc['findings'])})", title_justify="left")
    for col in OVERVIEW_COLUMNS:
        table.add_column(
            col,
            overflow="fold" if col == "endpoint" else "ellipsis",
            no_wrap=col != "endpoint",
            min_width=36 if col == "endpoint" else None,
            justify="right" if col in ("requests", "records") else "left",
        )
    for f in doc["findings"]:
        table.add_row(*[Text(terminal(v, 80)) for v in overview_row(f)])
    out.print(table)
    if doc["cleared"]:
        out.print(f"Cleared after examination: {len(doc['cleared'])} client(s) (see findings.json → cleared)")


@main.command()
@case_option
@analyze_options
def analyze(case_dir: str, **kwargs: Any) -> None:
    """Run the analytic passes: findings.json, affected_records.csv, iocs.csv.

    \b
    Example:
      forensics analyze --case case/ --since 2022-11-01 --config thresholds.toml
    """
    run_analyze(case_dir, **kwargs)


@main.command()
@case_option
@click.argument("finding_id")
def explain(case_dir: str, finding_id: str) -> None:
    """Why a finding exists: criteria, values, thresholds, sample raw lines.

    \b
    Example:
      forensics explain --case case/ F0001
    """
    from .analyze import explain as do_explain

    info = do_explain(case_dir, finding_id)
    f = info["finding"]
    out.print(Text(f"{f['id']} {f['kind']} ({f['severity']}, score {f['score']})", style="bold"))
    out.print(Text(terminal(f["summary"], 1000)))
    if f["actor"]:
        a = f["actor"]
        out.print(
            Text(
                f"actor {a['id']}: {', '.join(terminal(x, 60) for x in a['client_ips'][:20])}"
                + (" …" if len(a["client_ips"]) > 20 else "")
            )
        )
    out.print(
        Text(
            f"window (UTC): {f['start']} → {f['end']}; censored: start={f['censored']['start']}, "
            f"end={f['censored']['end']}"
        )
    )
    table = Table(title="Evidence", title_justify="left")
    table.add_column("value")
    table.add_column("number")
    for k, v in f["evidence"].items():
        if k in ("criteria", "sample_refs"):
            continue
        table.add_row(k, Text(terminal(v, 200)))
    out.print(table)
    crit = Table(title="Criteria (thresholds from the configuration)", title_justify="left")
    crit.add_column("threshold")
    crit.add_column("value")
    for k, v in (f["evidence"].get("criteria") or {}).items():
        crit.add_row(k, str(v))
    out.print(crit)
    # Paths in the query come from the evidence: quoted for the shell, so pasting the line runs only the query.
    reproduce = shlex.join(["forensics", "query", "--case", case_dir, f["query"]])
    out.print(Text("Reproduce: " + terminal(reproduce, 100_000)))
    for s in info["samples"]:
        line = s["line"] if s["line"] is not None else "(evidence file not reachable)"
        out.print(Text(f"{terminal(s['ref'], 200)}: {terminal(line, 400)}"))
    _log(case_dir, "explain", finding=finding_id)


def run_report(case_dir: str) -> dict[str, Any]:
    """Write the report with progress on stderr; print what was written and the headline, report.html last."""
    from .report.data import headline

    _log(case_dir, "report")
    with err.status("report: reading the case") as status:
        paths = api.report(case_dir, on_step=lambda step: status.update(f"report: {step}"))
    charts = [p for k, p in paths.items() if k.startswith("chart_")]
    out.print(
        Text(
            f"Wrote {terminal(paths['timeline_md'].parent)}: timeline.md, timeline.csv, timeline.jsonl, "
            f"{len(charts)} chart(s) in charts/, report.md"
        )
    )
    from .findings import read

    print_headline(headline(read(paths["report_html"].parent / "findings.json")))
    out.print(Text(f"Report: {terminal(paths['report_html'].resolve(), 1000)}"))
    return paths


def print_headline(head: dict[str, Any] | None) -> None:
    """The case in four lines: records taken, actor addresses, window, endpoint."""
    if head is None:
        out.print(Text("Headline: no exfiltration found (no sustained taking of records, no id walk)"))
        return
    cens = [side for side in ("start", "end") if head["censored"].get(side)]
    out.print(
        Text(
            f"Records taken: {head['records']:,} ({', '.join(head['pii_kinds']) or 'no personal data kinds known'}) "
            f"by {head['actor_id']}",
            style="bold",
        )
    )
    out.print(Text(f"Actor addresses: {head['addresses']:,}"))
    out.print(
        Text(
            f"Window (UTC): {head['start']:%Y-%m-%d %H:%M:%S} → {head['end']:%Y-%m-%d %H:%M:%S} ({head['days']} days"
            + (f"; censored at the {' and '.join(cens)} by the evidence" if cens else "")
            + ")"
        )
    )
    out.print(
        Text(
            f"Endpoint: {terminal(head['method'])} {terminal((head['host'] or '') + (head['endpoint'] or ''))}"
        )
    )


@main.command()
@case_option
def report(case_dir: str) -> None:
    """Timeline, charts and the report: timeline.*, charts/*.png, report.html, report.md.

    report.html is one self-contained file (charts embedded, no script, no network): the executive
    summary, findings with evidence and queries, the cleared list, the timeline, exposed endpoints,
    inputs with hashes, what could not be parsed, and coverage gaps.

    \b
    Example:
      forensics report --case case/
    """
    run_report(case_dir)


@main.command()
@click.option("--defaults", is_flag=True, required=True, help="Print the default thresholds as TOML.")
def config(defaults: bool) -> None:
    """Print the analysis configuration's defaults (every threshold and allowlist) as TOML.

    \b
    Example:
      forensics config --defaults > thresholds.toml
    """
    from .config import defaults_toml

    sys.stdout.write(defaults_toml())
