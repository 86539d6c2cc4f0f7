"""``forensics sample``: a realistic synthetic API breach, written as raw evidence, with the truth known.

The scenario reproduces the T-Mobile API breach (abuse from 25 Nov 2022 to the detection on 5 Jan 2023)
on a fictional carrier's API, ``api.magentel.example``: months of app customers (many behind carrier
NAT), a B2B partner, a monthly batch job, scanners, and an attacker walking customer ids through
``GET /api/v1/customers/{id}``, which answers without credentials. The ``hard`` profile makes the
attacker evasive and adds customer-service staff who legitimately read many customers a day.

Written as it would be handed over (see DESIGN.md and FORMATS.md)::

    OUT_DIR/
      AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/…log.gz   the ALB's S3 tree
      gw1/access.log  access.log.1  access.log.2.gz …                      nginx gateways (main format)
      gw2/…
      har/app-team-repro.har                                                the app team's capture
      truth.json                                                            what really happened

Every request is rendered into every format, so the ALB tree and the nginx logs hold the same
requests; only the three planted malformed nginx lines differ (documented in truth.json). The same
seed gives the same bytes; nothing reads the clock.

truth.json (``forensics.sample.truth/1``; sorted keys; times are the balancer's ``time`` of a request,
UTC, ``2022-11-25T18:11:39.165915Z``; nginx has the same instant in whole seconds of local time):

* ``seed``, ``profile``, ``scale``, ``window`` {start, end, days}, ``timezone`` (the gateways' clock),
  ``generator`` (tool version), ``requests`` (requests in the window = ALB events).
* ``attackers[]``: ``id``, ``kind``, ``addresses`` (every address used), ``first_request``,
  ``last_request``, ``method``, ``host``, ``endpoint`` (``/api/v1/customers/{id}``),
  ``records_requested`` (distinct ids asked for on it), ``records_returned`` (distinct ids answered 200
  with a body), ``requests`` (all of the attacker's), ``endpoint_requests``, ``endpoint_bytes``,
  ``endpoints`` (requests per ``METHOD template``), ``id_order`` (sequential | block_shuffle | list),
  ``user_agents``, ``forged_xff`` (what it put in X-Forwarded-For; never its address), ``pauses``,
  ``daily_requests_per_address`` {max, median}, ``credentials``.
* ``benign[]``: the heavy or unusual clients that are not the attacker: ``partner`` (api_key query
  parameter), ``batch_job`` (``runs``), ``carrier_nat`` (``per_address``: customers, requests, daily),
  ``scanner_paths``, ``scanner_ids``, ``app_team`` (the HAR session), and ``staff`` in the hard
  profile; each with ``addresses``, ``requests``, ``first_request``, ``last_request``, ``endpoints``,
  ``user_agents`` and its own numbers.
* ``customers`` (count, requests, addresses, …) and ``customer_ids`` {first, last, existing}.
* ``formats``: ``alb`` {files, lines, events, rejects}; ``nginx`` {gateways: {gw1: {files: {path:
  lines}, lines}}, lines, events, rejects, malformed: [{file, line, kind, expected: event|reject,
  text, time}]}; ``har`` {file, entries, role}. ``events``/``rejects`` are what an ingest must yield.
* ``infrastructure``: host, ALB (account, region, elb, nodes), gateways, nginx log_format, rotation.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ForensicsError
from . import actors, har, render, truth
from .scenario import CUSTOMER, PROFILES, REF_DAYS, REF_START, Params

FORMATS = ("alb", "nginx", "har")
HAR_FILE = "har/app-team-repro.har"
#: What a sample writes at the top of OUT_DIR (and what --force replaces).
OUTPUTS = ("AWSLogs", "gw1", "gw2", "har", "truth.json")


@dataclass
class SampleResult:
    """What was written, and how long it took (seconds per stage; not part of the evidence)."""

    out_dir: Path
    truth: dict[str, Any]
    files: int
    bytes: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return int(self.truth["requests"])


def parse_formats(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"alb,nginx"`` → the formats to write, in a fixed order (the output must not depend on typing order)."""
    if value is None:
        return FORMATS
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [v.strip().lower() for v in items if v.strip()]
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise ForensicsError(
            f"unknown sample format(s): {', '.join(bad) or '(none)'}",
            hint=f"choose among {','.join(FORMATS)}",
        )
    return tuple(n for n in FORMATS if n in names)


def _prepare(out: Path, force: bool) -> None:
    """Refuse a non-empty OUT_DIR; with --force, remove only what a sample writes (never a stranger's files)."""
    if out.exists() and not out.is_dir():
        raise ForensicsError(f"{out} exists and is not a directory", hint="give a directory path")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ForensicsError(
                f"{out} is not empty", hint="choose an empty directory, or pass --force to replace a sample"
            )
        for name in OUTPUTS:
            path = out / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def generate(
    out_dir: str | Path,
    *,
    seed: int = 1,
    scale: float = 1.0,
    start: date | datetime | str | None = None,
    days: int = REF_DAYS,
    formats: str | Sequence[str] | None = None,
    profile: str = "standard",
    force: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> SampleResult:
    """Write a synthetic breach case into ``out_dir`` and return its truth."""
    fmts = parse_formats(formats)
    if profile not in PROFILES:
        raise ForensicsError(f"unknown profile {profile!r}", hint=f"choose among {', '.join(PROFILES)}")
    if not (scale > 0) or scale > 1000:
        raise ForensicsError(f"--scale must be > 0 and <= 1000 (got {scale})", hint="1.0 is a few MB")
    if days < 2 or days > 400:
        raise ForensicsError(f"--days must be between 2 and 400 (got {days})", hint="the default is 70")
    if seed < 0 or seed >= 2**63:
        raise ForensicsError(f"--seed must be a non-negative integer (got {seed})")
    params = Params(seed=seed, scale=float(scale), start=_start(start), days=int(days), profile=profile)
    out = Path(out_dir)
    _prepare(out, force)
    stage = on_stage or (lambda name: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    stage("traffic")
    world = actors.new_world(params)
    blocks = actors.reserve_blocks(world)
    r = world.rng["har"]
    walk = world.db.base + world.walk_start + np.arange(world.planned_attack)
    victims = walk[world.db.has(walk)]
    victim = int(victims[r.integers(0, len(victims))]) if len(victims) else int(world.db.existing[0])
    entries, har_doc = har.build(r, world.db, params.start_us, params.end_us, world.attack_end_us, victim)
    catalog = next(len(e.body) for e in entries if e.ep == actors.CATALOG)
    world.catalog = (catalog - 131, catalog)
    actors.customers(world, blocks)
    actors.partner(world, blocks)
    actors.batch_job(world, blocks)
    actors.scanners(world, blocks)
    if profile == "hard":
        actors.attacker_hard(world, blocks)
        actors.staff(world, blocks)
    else:
        actors.attacker_standard(world, blocks)
    actors.app_team(world, blocks, entries)
    nodes = render.node_count(scale)
    table = world.traffic.assemble(world.rng["assemble"], params.start_us, params.end_us, nodes)
    lap("generate")

    stage("render")
    frame = render.request_frame(table)
    look = render.Lookups.of(world.addresses.table, world.traffic.uas.table)
    sink = render.FileSink(out)
    written: dict[str, render.Written] = {}
    # One stream per format: the files of a format do not depend on which other formats are written.
    if "alb" in fmts:
        written["alb"] = render.write_alb(sink, frame, look, world.rng["render"])
    if "nginx" in fmts:
        written["nginx"] = render.write_nginx(
            sink, frame, look, params.start_us, params.end_us, world.rng["nginx"]
        )
    har_file = None
    if "har" in fmts:
        har_file = HAR_FILE
        written["har"] = render.write_har(sink, har_doc, HAR_FILE)
    lap("render")
    nbytes = sink.close()
    lap("write")

    stage("truth")
    doc = truth.build(world, table, written, har_file, len(entries), nodes)
    render.write_json(out / "truth.json", doc)
    files = sum(len(w.files) for w in written.values()) + 1
    lap("truth")
    return SampleResult(
        out_dir=out,
        truth=doc,
        files=files,
        bytes=nbytes + (out / "truth.json").stat().st_size,
        timings=timings,
    )


def _start(value: date | datetime | str | None) -> datetime:
    """The first day of evidence as UTC midnight (a date, or ``YYYY-MM-DD``)."""
    if value is None:
        return REF_START
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise ForensicsError(f"--start: not a date: {value!r}", hint="use YYYY-MM-DD") from None
    if isinstance(value, datetime):
        value = value.date()
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


__all__ = ["CUSTOMER", "FORMATS", "SampleResult", "generate", "parse_formats"]
