"""The API inventory: templates refined across the case, HAR and logs lined up, exposure flagged."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest
from click.testing import CliRunner
from harfiles import CUSTOMER, dumps, entry, har, headers

from forensics import api
from forensics import inventory as inv
from forensics.cli import main
from forensics.schema import conform

API = "https://api.example.com"
CODES = ["A7F3K2", "B8G4L3", "C9H5M4", "D1J6N5", "E2K7P6", "F3L8Q7"]


def refined(paths: list[str]) -> dict[str, str]:
    return dict(inv.refine_endpoints(pl.Series(paths)).iter_rows())


# --------------------------------------------------------------------------------------------------
# Refinement


def test_account_codes_become_a_placeholder_words_stay():
    paths = [f"/api/v1/customers/{c}" for c in CODES[:5]]
    paths += ["/api/v1/customers/search", "/api/v1/customers/me", "/api/v1/customers/B8G4L3/orders"]
    assert refined(paths) == {
        **{f"/api/v1/customers/{c}": "/api/v1/customers/{id}" for c in CODES[:5]},
        "/api/v1/customers/B8G4L3/orders": "/api/v1/customers/{id}/orders",
    }


def test_few_values_stay_literal():
    assert inv.MIN_DISTINCT == 5
    assert refined([f"/api/v1/customers/{c}" for c in CODES[:4]]) == {}
    assert refined(["/api/v1/x", "/api/v2/x", "/api/v3/x"]) == {}


def test_first_segment_is_never_replaced():
    assert refined([f"/{c}" for c in CODES] + [f"/{c}/profile" for c in CODES]) == {}


def test_words_need_many_siblings():
    resources = ["orders", "plans", "devices", "invoices", "payments", "lines", "usage", "offers"]
    assert refined([f"/api/{r}" for r in resources]) == {}
    users = [f"/users/{name}" for name in (f"user{chr(97 + i % 26)}{chr(97 + i // 26)}x" for i in range(60))]
    users = [u.replace("0", "") for u in users]
    assert all(not any(ch.isdigit() for ch in u) for u in users)
    assert set(refined(users).values()) == {"/users/{id}"}


def test_positions_refine_under_refined_prefixes():
    paths = [f"/v1/accounts/{a}/lines/L{a[:2]}{n}X" for a in CODES for n in "QRSTU"]
    assert set(refined(paths).values()) == {"/v1/accounts/{id}/lines/{id}"}


def test_existing_placeholders_are_kept():
    paths = ["/api/v1/items/{id}", "/api/v1/items/{uuid}", "/api/v1/items/{id}/x"]
    assert refined(paths) == {}


# --------------------------------------------------------------------------------------------------
# The pure inventory over inline frames


def _events(rows: list[dict]) -> pl.LazyFrame:
    base = {
        "ts": datetime(2023, 1, 5, tzinfo=UTC),
        "source_format": "har",
        "source_file": "a.har",
        "method": "GET",
    }
    return conform(pl.DataFrame([{**base, **r} for r in rows])).lazy()


def test_inventory_rows_have_known_values():
    ev = _events(
        [
            {
                "host": "h",
                "endpoint": "/a",
                "status": 200,
                "auth": "none",
                "pii_kinds": ["email"],
                "bytes_out": 10,
            },
            {
                "host": "h",
                "endpoint": "/a",
                "status": 404,
                "auth": "bearer",
                "pii_kinds": [],
                "bytes_out": 30,
            },
            {
                "host": "h",
                "endpoint": "/a",
                "status": 503,
                "auth": None,
                "pii_kinds": None,
                "bytes_out": None,
            },
            {
                "host": "h",
                "endpoint": "/b",
                "status": 401,
                "auth": "none",
                "pii_kinds": ["email"],
                "bytes_out": 5,
            },
            {"host": "h", "endpoint": "/c", "status": 200, "auth": "none", "pii_kinds": ["ip", "jwt"]},
            {
                "host": "h",
                "endpoint": "/d",
                "status": 0,
                "auth": "cookie",
                "pii_kinds": ["phone"],
                "bytes_out": 7,
            },
        ]
    )
    table, mapping = inv.build_inventory(ev, reference_files=["a.har"])
    assert mapping.height == 0
    assert table.schema == pl.Schema(inv.INVENTORY_SCHEMA)
    assert table.get_column("endpoint").to_list() == ["/a", "/b", "/c", "/d"]
    a = table.row(0, named=True)
    assert (a["hits"], a["reference_hits"], a["status_2xx"], a["status_4xx"], a["status_5xx"]) == (
        3,
        3,
        1,
        1,
        1,
    )
    assert (a["auth_kinds"], a["pii_kinds"], a["pii_hits"], a["median_bytes_out"]) == (
        ["bearer", "none"],
        ["email"],
        1,
        20.0,
    )
    assert table.get_column("returns_pii_without_auth").to_list() == [True, False, False, False]
    d = table.row(3, named=True)
    assert (d["status_other"], d["sources"]) == (1, ["har"])


def test_empty_events_give_an_empty_inventory():
    table, mapping = inv.build_inventory(pl.DataFrame(schema=conform(pl.DataFrame()).schema).lazy())
    assert table.height == 0 and table.schema == pl.Schema(inv.INVENTORY_SCHEMA)
    assert mapping.height == 0


# --------------------------------------------------------------------------------------------------
# A case: a HAR capture (reference) and nginx logs of the same API


def _nginx(codes: list[str], second: int = 0) -> str:
    return "".join(
        f'198.51.100.7 - - [05/Jan/2023:11:00:{second + i:02d} +0000] "GET /api/v1/customers/{c} HTTP/1.1" '
        f'200 512 "-" "python-requests/2.31"\n'
        for i, c in enumerate(codes)
    )


@pytest.fixture
def case(ingest_files):
    capture = har(
        entry(f"{API}/api/v1/customers/A7F3K2", body=CUSTOMER, body_size=420),
        entry(
            f"{API}/api/v1/accounts/me",
            request_headers=headers(("Authorization", "Bearer abcdefghijklmnop")),
            body={"email": "me@example.com", "firstName": "Jane", "lastName": "Doe"},
        ),
        entry(f"{API}/api/v1/plans", body={"plans": [{"name": "Unlimited", "price": 70}]}),
        entry(f"{API}/api/v1/orders/991", status=401, body={"error": "login", "help": "help@example.com"}),
    )
    ingest_files({"capture.har": dumps(capture)})
    # The logs come in separately, read as nginx whatever other formats claim.
    return ingest_files({"gw/access.log": _nginx(CODES[1:])}, format="nginx")


def test_inventory_flags_exactly_the_unauthenticated_personal_data_endpoint(case):
    table = api.inventory(case.case_dir)
    flagged = table.filter(pl.col("returns_pii_without_auth"))
    assert flagged.select("method", "host", "endpoint").rows() == [
        ("GET", "api.example.com", "/api/v1/customers/{id}")
    ]
    row = flagged.row(0, named=True)
    assert (row["hits"], row["reference_hits"], row["unhosted_hits"]) == (6, 1, 5)
    assert row["sources"] == ["har", "nginx"]
    assert row["pii_kinds"] == ["account", "address", "email", "name", "phone"]
    assert row["auth_kinds"] == ["none"]
    assert (row["status_2xx"], row["clients"]) == (6, 1)
    assert row["median_bytes_out"] == 512.0
    assert table.height == 4  # customers/{id}, accounts/me, plans, orders/{id}
    assert (case.case_dir / inv.INVENTORY_FILE).is_file() and (case.case_dir / inv.MAP_FILE).is_file()


def test_apply_inventory_lines_up_har_and_logs(case):
    events = inv.apply_inventory(case.case.scan_events(include_reference=True), case.case).collect()
    customers = events.filter(pl.col("path").str.starts_with("/api/v1/customers/"))
    assert customers.get_column("endpoint").unique().to_list() == ["/api/v1/customers/{id}"]
    assert customers.get_column("inventory_host").unique().to_list() == ["api.example.com"]
    nginx = customers.filter(pl.col("source_format") == "nginx")
    assert nginx.height == 5 and nginx.get_column("host").null_count() == 5
    assert events.height == case.case.scan_events(include_reference=True).collect().height


def test_inventory_is_rebuilt_when_the_case_grows(case, ingest_files):
    before, _ = inv.load_inventory(case.case)
    assert before.filter(pl.col("endpoint") == "/api/v1/customers/{id}").get_column("hits").to_list() == [6]
    ingest_files({"gw/access.log.1": _nginx(["G4M9R8", "H5N1S9"], second=30)}, format="nginx")
    after, _ = inv.load_inventory(case.case)
    assert after.filter(pl.col("endpoint") == "/api/v1/customers/{id}").get_column("hits").to_list() == [8]


def test_sql_sees_the_inventory(case):
    api.inventory(case.case_dir)
    frame = api.query(case.case_dir, "SELECT endpoint, hits FROM inventory WHERE returns_pii_without_auth")
    assert frame.rows() == [("/api/v1/customers/{id}", 6)]


def test_inventory_command(case):
    result = CliRunner().invoke(main, ["inventory", "--case", str(case.case_dir)])
    assert result.exit_code == 0, result.output
    assert "API inventory: 4 endpoints, 1 return personal data without authentication" in result.output
    assert "YES" in result.output and f"Written: {case.case_dir / inv.INVENTORY_FILE}" in result.output
    log = [json.loads(line) for line in (case.case_dir / "log.jsonl").read_text().splitlines()]
    assert log[-1]["command"] == "inventory"


def test_terminal_table_puts_exposure_first(case):
    table = inv.inventory_table(api.inventory(case.case_dir))
    first = table.row(0, named=True)
    assert first["endpoint"] == "GET /api/v1/customers/{id}"
    assert (first["host"], first["hits"], first["sources"], first["PII, no auth"]) == (
        "api.example.com",
        6,
        "har,nginx",
        "YES",
    )
    assert first["2xx/3xx/4xx/5xx"] == "6/0/0/0"
    assert table.get_column("PII, no auth").to_list() == ["YES", "", "", ""]


def test_inventory_command_on_a_missing_case(tmp_path):
    result = CliRunner().invoke(main, ["inventory", "--case", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "not a case directory" in result.output
