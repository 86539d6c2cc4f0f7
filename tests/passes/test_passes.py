"""Each pass on tiny inline frames where the truth is obvious, including empty input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from forensics import config
from forensics.findings import EVIDENCE_KEYS
from forensics.passes import (
    Context,
    actors,
    dedup,
    enumeration,
    exfiltration,
    exposure,
    prepare,
    scanning,
    volume,
)
from forensics.schema import conform, empty_events

T0 = datetime(2022, 11, 1, tzinfo=UTC)


def events(rows: list[dict]) -> pl.LazyFrame:
    """Rows with defaults for what a test does not care about; endpoint templated like ingest does."""
    from forensics.endpoints import template_paths

    base = {
        "source_format": "nginx",
        "observer": "gw",
        "source_file": "a.log",
        "method": "GET",
        "status": 200,
        "bytes_out": 900,
    }
    full = [{**base, "source_line": i + 1, **r} for i, r in enumerate(rows)]
    frame = pl.DataFrame(full, infer_schema_length=None)
    frame = frame.with_columns(template_paths(frame.get_column("path")).alias("endpoint"))
    if "query" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("query"))
    return conform(frame).lazy()


def ctx_for(lf: pl.LazyFrame, pii: dict | None = None) -> Context:
    lo, hi = lf.select(pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi")).collect().row(0)
    return Context(config.defaults(), lo, hi, pii=pii)


def walk(
    client: str, ids: range, start: datetime, step: timedelta, path: str = "/api/v1/customers/{}", **extra
) -> list[dict]:
    return [
        {"ts": start + k * step, "client_ip": client, "path": path.format(i), **extra}
        for k, i in enumerate(ids)
    ]


def customer(client: str, own: int, days: int) -> list[dict]:
    rows = []
    for d in range(days):
        t = T0 + timedelta(days=d, hours=9)
        rows += [
            {"ts": t, "client_ip": client, "path": "/api/v1/auth/login", "method": "POST"},
            {"ts": t + timedelta(seconds=5), "client_ip": client, "path": f"/api/v1/customers/{own}"},
            {"ts": t + timedelta(seconds=9), "client_ip": client, "path": f"/api/v1/customers/{own}/plan"},
        ]
    return rows


@pytest.mark.parametrize(
    "run",
    [
        lambda lf, c: enumeration.run(prepare(lf, c.config), c)[0],
        lambda lf, c: scanning.run(prepare(lf, c.config), c, None),
        lambda lf, c: volume.run(prepare(lf, c.config), c)[0],
        lambda lf, c: exposure.run(prepare(lf, c.config), c),
        lambda lf, c: actors.link(prepare(lf, c.config), c)[0],
        lambda lf, c: exfiltration.run(prepare(lf, c.config), c, [], {}),
    ],
)
def test_every_pass_accepts_empty_input(run):
    lf = empty_events().lazy()
    assert run(lf, Context(config.defaults(), None, None)) == []


def test_enumeration_flags_the_walk_not_the_customers():
    rows = walk("203.0.113.66", range(5000, 5300), T0 + timedelta(days=3), timedelta(minutes=3))
    for c in range(20):
        rows += customer(f"198.51.100.{c}", 7000 + c * 37, days=10)
    lf = events(rows)
    ctx = ctx_for(lf)
    found, stats = enumeration.run(prepare(lf, ctx.config), ctx)
    assert [f.clients for f in found] == [["203.0.113.66"]]
    f = found[0]
    assert f.endpoint == "/api/v1/customers/{id}" and f.method == "GET"
    assert (f.objects_requested, f.distinct_objects, f.requests) == (300, 300, 300)
    assert f.evidence["sequential_share"] == 1.0 and f.evidence["repeat_share"] == 0.0
    assert f.evidence["longest_run"] == 300 and f.evidence["coverage"] == 1.0
    assert set(f.evidence) == set(EVIDENCE_KEYS["enumeration"])
    assert "client_ip = '203.0.113.66'" in f.query and "endpoint = '/api/v1/customers/{id}'" in f.query


def test_enumeration_of_a_query_parameter_slot():
    rows = walk("203.0.113.67", range(100, 200), T0, timedelta(minutes=1), path="/api/v1/customer")
    rows = [{**r, "query": f"customerId={100 + k:06d}&fields=all"} for k, r in enumerate(rows)]
    lf = events(rows)
    ctx = ctx_for(lf)
    found, _ = enumeration.run(prepare(lf, ctx.config), ctx)
    assert len(found) == 1
    assert found[0].endpoint == "/api/v1/customer?customerId={id}"
    assert found[0].evidence["id_slot"] == "query:customerId"
    assert found[0].evidence["id_min"] == 100  # leading zeros normalised away


def test_nat_address_reading_its_customers_own_records_is_not_enumeration():
    rows = []
    for c in range(120):  # 120 customers behind one address, each reading their own record three times
        for d in range(3):
            t = T0 + timedelta(days=d, minutes=c)
            rows += [
                {"ts": t, "client_ip": "100.64.0.1", "path": f"/api/v1/customers/{9000 + c * 13}"},
                {"ts": t, "client_ip": "100.64.0.1", "path": f"/api/v1/customers/{9000 + c * 13}/plan"},
            ]
    lf = events(rows)
    ctx = ctx_for(lf)
    found, stats = enumeration.run(prepare(lf, ctx.config), ctx)
    assert found == []
    row = stats.filter(pl.col("endpoint_key") == "/api/v1/customers/{id}").row(0, named=True)
    assert row["distinct_objects"] == 120 and row["repeat_share"] == 1.0


def test_scanning_path_burst_and_refused_id_probe():
    probes = [
        f"/{p}"
        for p in (
            ".env",
            ".git/config",
            "wp-login.php",
            "admin",
            "phpmyadmin",
            "server-status",
            "actuator/env",
            "config.json",
            ".aws/credentials",
            "backup.sql",
            "debug",
            "console",
            "api/swagger.json",
            ".DS_Store",
            "cgi-bin/test",
            "shell.php",
            "xmlrpc.php",
            "vendor/phpunit",
            "solr/admin",
            "manager/html",
            "login.action",
            "owa",
        )
    ]
    rows = [
        {"ts": T0 + timedelta(seconds=i), "client_ip": "192.0.2.9", "path": p, "status": 404}
        for i, p in enumerate(probes)
    ]
    rows += walk("192.0.2.10", range(1, 40), T0 + timedelta(hours=5), timedelta(seconds=20), status=404)
    lf = events(rows)
    ctx = ctx_for(lf)
    prep = prepare(lf, ctx.config)
    _, stats = enumeration.run(prep, ctx)
    found = scanning.run(
        prep, ctx, stats.with_columns(enumeration.is_probe(ctx.config["scanning"]).alias("probe"))
    )
    patterns = {(f.clients[0], f.evidence["pattern"]) for f in found}
    assert patterns == {("192.0.2.9", "path_burst"), ("192.0.2.10", "id_probe")}
    burst = next(f for f in found if f.evidence["pattern"] == "path_burst")
    assert burst.evidence["distinct_paths"] == len(probes) and burst.evidence["error_share"] == 1.0


def test_volume_steady_partner_is_not_an_anomaly_a_sudden_change_is():
    rows = []
    for d in range(20):
        day = T0 + timedelta(days=d)
        rows += [
            {"ts": day + timedelta(seconds=40 * i), "client_ip": "198.51.100.200", "path": "/partner/status"}
            for i in range(1500)
        ]
        n = 20 if d != 15 else 4000  # a client that suddenly sends 200 times its usual volume
        rows += [
            {"ts": day + timedelta(seconds=10 * i), "client_ip": "198.51.100.201", "path": "/api/v1/x"}
            for i in range(n)
        ]
        rows += [
            {"ts": day + timedelta(hours=h), "client_ip": f"198.51.100.{h}", "path": "/api/v1/y"}
            for h in range(20)
        ]
    lf = events(rows)
    ctx = ctx_for(lf)
    found, heavy = volume.run(prepare(lf, ctx.config), ctx)
    assert [f.clients for f in found] == [["198.51.100.201"]]
    assert found[0].evidence["day"] == (T0 + timedelta(days=15)).date().isoformat()
    assert found[0].evidence["requests"] == 4000
    assert "198.51.100.200" in heavy.get_column("client").to_list()


def test_exposure_names_the_unauthenticated_personal_data_endpoint():
    lf = events(walk("203.0.113.1", range(10), T0, timedelta(minutes=1)))
    pii = {
        ("GET", "/api/v1/customers/{id}"): {
            "pii_kinds": ["email", "name"],
            "auth_kinds": ["none"],
            "sources": ["app.har"],
            "unauthenticated": True,
        }
    }
    ctx = ctx_for(lf, pii)
    found = exposure.run(prepare(lf, ctx.config), ctx)
    assert sorted(f.kind for f in found) == ["sensitive_exposure", "unauthenticated_access"]
    assert all(f.pii_kinds == ["email", "name"] and f.requests == 10 for f in found)


def test_dedup_counts_a_request_seen_by_balancer_and_gateway_once():
    edge = walk("203.0.113.5", range(50), T0, timedelta(seconds=30), source_format="alb", observer="lb")
    origin = [
        {
            **r,
            "source_format": "nginx",
            "observer": "gw",
            "source_file": "gw.log",
            "ts": (r["ts"] + timedelta(seconds=3)).replace(microsecond=0),
        }
        for r in edge
    ]
    lf = events(
        edge
        + origin
        + [{"ts": T0, "client_ip": "203.0.113.6", "path": "/only-gateway", "source_format": "nginx"}]
    )
    kept, report = dedup.deduplicate(lf)
    out = kept.collect()
    assert out.height == 51
    assert report.matched == 50 and report.clock_skew_seconds == pytest.approx(3.0, abs=0.5)


def test_dedup_pairs_two_identical_requests_in_one_second_one_to_one():
    """The gateway stamps both at the same second: both are nearest to the first balancer copy."""
    first = {"ts": T0 + timedelta(milliseconds=349), "client_ip": "198.18.0.9", "path": "/api/v1/customers/7"}
    second = {**first, "ts": T0 + timedelta(milliseconds=611)}
    edge = [{**r, "source_format": "alb", "observer": "lb"} for r in (first, second)]
    origin = [
        {**r, "source_format": "nginx", "observer": "gw", "source_file": "gw.log", "ts": T0}
        for r in (first, second)
    ]
    others = walk("203.0.113.5", range(40), T0, timedelta(seconds=30), source_format="alb", observer="lb")
    copies = [{**r, "source_format": "nginx", "observer": "gw", "source_file": "gw.log"} for r in others]
    kept, report = dedup.deduplicate(events(edge + origin + others + copies))
    assert kept.collect().height == 42 and report.matched == 42


def test_actors_link_an_interleaved_walk_and_leave_staff_alone():
    rows = []
    pool = [f"198.18.0.{i}" for i in range(30)]
    for k, i in enumerate(range(20000, 23000)):  # one walk, addresses taking turns, 10 days
        rows.append(
            {
                "ts": T0 + timedelta(minutes=5 * k),
                "client_ip": pool[k % 30],
                "path": f"/api/v1/customers/{i}",
                "user_agent": "python-requests/2.28",
            }
        )
    for d in range(10):  # staff: random customers with their plan, some re-opened
        for j in range(60):
            cid = 10000 + (d * 7919 + j * 104729) % 30000
            t = T0 + timedelta(days=d, hours=9, minutes=j)
            rows += [
                {
                    "ts": t,
                    "client_ip": "10.1.1.1",
                    "path": f"/api/v1/customers/{cid}",
                    "user_agent": "Chrome",
                },
                {
                    "ts": t,
                    "client_ip": "10.1.1.1",
                    "path": f"/api/v1/customers/{cid}/plan",
                    "user_agent": "Chrome",
                },
            ]
    lf = events(rows)
    ctx = ctx_for(lf)
    prep = prepare(lf, ctx.config)
    linked, profiles = actors.link(prep, ctx)
    assert len(linked) == 1 and linked[0].clients == sorted(pool)
    assert linked[0].base == "/api/v1/customers/{id}"
    staff = profiles.filter(pl.col("client") == "10.1.1.1").row(0, named=True)
    assert not staff["walker"]
    windows = exfiltration.run(prep, ctx, linked, {"clock_skew_seconds": None})
    assert len(windows) == 1
    w = windows[0]
    assert (w.distinct_objects, w.objects_requested) == (3000, 3000)
    assert w.start == T0 and w.end == T0 + timedelta(minutes=5 * 2999)
    assert w.censored == {"start": True, "end": True}  # the walk spans all the evidence there is


@pytest.mark.parametrize("some_without_agent", [False, True])
def test_single_reads_with_the_apps_own_user_agent_are_not_linked(some_without_agent):
    """300 app users share the app's user agent with the attacker: half read their own record once, half
    in the app's flow. Only the walker is the actor; no single read joins by user agent alone, nor by
    the band far from the walk's hours."""
    app = "MyApp/5.1 (iPhone)"
    rows = walk("203.0.113.9", range(20000, 22000), T0 + timedelta(days=3, hours=2), timedelta(seconds=2))
    rows = [{**r, "user_agent": app} for r in rows]
    for i in range(300):
        client, own = f"198.51.{i // 200}.{i % 200 + 1}", 20000 + (i * 7) % 2000 if i % 50 == 0 else 40000 + i
        t = T0 + timedelta(days=i % 7, hours=(i * 5) % 24)
        agent = None if some_without_agent and i % 4 == 3 else app  # "-" in the log: no user agent
        rows.append({"ts": t, "client_ip": client, "path": f"/api/v1/customers/{own}", "user_agent": agent})
        if i % 2:  # the app's session flow: plan and usage too, on several days
            for d in range(3):
                for sub in ("", "/plan", "/usage"):
                    rows.append(
                        {
                            "ts": t + timedelta(days=d, minutes=1),
                            "client_ip": client,
                            "path": f"/api/v1/customers/{own}{sub}",
                            "user_agent": agent,
                        }
                    )
    lf = events(sorted(rows, key=lambda r: r["ts"]))
    ctx = ctx_for(lf)
    linked, _profiles = actors.link(prepare(lf, ctx.config), ctx)
    assert [a.clients for a in linked] == [["203.0.113.9"]]


def test_exfiltration_window_tolerates_pauses_and_splits_long_silences():
    rows = walk("203.0.113.9", range(1000, 1100), T0, timedelta(hours=1))  # days 0-4
    rows += walk(
        "203.0.113.9", range(1100, 1200), T0 + timedelta(days=9), timedelta(hours=1)
    )  # after 4 quiet days
    rows += walk(
        "203.0.113.9", range(1200, 1300), T0 + timedelta(days=40), timedelta(hours=1)
    )  # a month later
    rows += [{"ts": T0 + timedelta(days=60), "client_ip": "198.51.100.1", "path": "/"}]
    lf = events(rows)
    ctx = ctx_for(lf)
    linked = [actors.Linked("k", "/api/v1/customers/{id}", "GET", ["203.0.113.9"])]
    found = exfiltration.run(prepare(lf, ctx.config), ctx, linked, {})
    assert [(f.distinct_objects, f.evidence["longest_pause_days"]) for f in found] == [(200, 4), (100, 0)]
    assert found[0].censored == {"start": True, "end": False}
