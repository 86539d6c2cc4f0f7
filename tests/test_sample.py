"""`forensics sample`: deterministic, realistic evidence whose truth.json agrees with what the ingestors read.

Scenarios are small (``--scale 0.05``, 10 days) so the whole module runs in seconds; the ALB and HAR
checks run when those ingestors are registered and skip with the reason otherwise.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from forensics import api
from forensics.case import Case
from forensics.cli import main
from forensics.errors import ForensicsError
from forensics.ingest import all_format_names
from forensics.sample import generate
from forensics.sample.render import rotation_times

SMALL = {"scale": 0.05, "days": 10}


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _read(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()


def _needs(name: str) -> None:
    if name not in all_format_names():
        pytest.skip(f"the {name!r} ingestor is not registered yet")


@pytest.fixture(scope="module", params=["standard", "hard"])
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A small scenario of each profile: every test below runs on both."""
    out = tmp_path_factory.mktemp("sample") / "evidence"
    if request.param == "hard":
        result = generate(out, seed=12, scale=0.1, days=10, profile="hard")
    else:
        result = generate(out, seed=11, **SMALL)
    return out, result.truth


@pytest.fixture(scope="module")
def ingested(
    scenario: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Case, dict, dict]:
    out, truth = scenario
    case_dir = tmp_path_factory.mktemp("case") / "case"
    api.ingest([str(out)], case_dir, workers=1)
    case = Case.open(case_dir)
    return case, case.load_manifest(), truth


def _events(case: Case, fmt: str) -> pl.DataFrame:
    return (
        case.scan_events(include_reference=True)
        .filter(pl.col("source_format").cast(pl.String) == fmt)
        .collect()
    )


# --------------------------------------------------------------------------------------------------
# Determinism


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", seed=5, **SMALL)
    b = generate(tmp_path / "b", seed=5, **SMALL)
    ha, hb = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    assert len(ha) == a.files > 100
    assert ha == hb
    assert a.truth == b.truth


def test_formats_are_independent(tmp_path: Path) -> None:
    generate(tmp_path / "all", seed=5, **SMALL)
    generate(tmp_path / "ng", seed=5, formats="nginx", **SMALL)
    every, nginx = _hashes(tmp_path / "all"), _hashes(tmp_path / "ng")
    assert {k: v for k, v in every.items() if k.startswith("gw")} == {
        k: v for k, v in nginx.items() if k.startswith("gw")
    }


def test_two_seeds_two_scenarios(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", seed=5, **SMALL).truth
    b = generate(tmp_path / "b", seed=6, **SMALL).truth
    ta, tb = a["attackers"][0], b["attackers"][0]
    assert ta["first_request"] != tb["first_request"]
    assert set(ta["addresses"]).isdisjoint(tb["addresses"]) or ta["addresses"] != tb["addresses"]
    assert a["requests"] != b["requests"]
    assert _hashes(tmp_path / "a")["gw1/access.log"] != _hashes(tmp_path / "b")["gw1/access.log"]


# --------------------------------------------------------------------------------------------------
# The files against truth.json


def test_layout_and_line_counts(scenario: tuple[Path, dict]) -> None:
    out, truth = scenario
    alb = sorted((out / "AWSLogs").rglob("*.log.gz"))
    assert len(alb) == truth["formats"]["alb"]["files"]
    name = re.compile(
        r"^210987654321_elasticloadbalancing_us-west-2_app\.api-prod\.7f3a9c1d2e4b5a60_"
        r"(\d{8}T\d{4}Z)_(10\.0\.\d+\.\d+)_[a-z0-9]{8}\.log\.gz$"
    )
    lines = 0
    for path in alb[:: max(1, len(alb) // 40)]:
        m = name.match(path.name)
        assert m, path.name
        end = datetime.strptime(m.group(1), "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
        assert path.parent.relative_to(
            out / "AWSLogs/210987654321/elasticloadbalancing/us-west-2"
        ).as_posix() == (end.strftime("%Y/%m/%d"))
        assert path.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0
        for line in _read(path).splitlines():
            fields = re.findall(r'"[^"]*"|\S+', line)
            assert len(fields) == 29, line
            assert fields[0] in ("h2", "https")
            ts = datetime.strptime(fields[1], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            assert 0 < (end - ts).total_seconds() <= 300  # inside the file's 5 minutes
            assert fields[2] == "app/api-prod/7f3a9c1d2e4b5a60"
            assert fields[12].startswith('"') and " https://api.magentel.example:443/" in fields[12]
            assert re.fullmatch(r'"Root=1-[0-9a-f]{8}-[0-9a-f]{24}"', fields[17])
            assert fields[9] == fields[8]  # the gateway's status is the client's
    lines = sum(len(_read(p).splitlines()) for p in alb)
    assert lines == truth["formats"]["alb"]["lines"] == truth["requests"]
    for gw, info in truth["formats"]["nginx"]["gateways"].items():
        names = sorted(p.name for p in (out / gw).iterdir())
        assert names[:2] == ["access.log", "access.log.1"]
        assert all(re.fullmatch(r"access\.log\.\d+\.gz", n) for n in names[2:])
        for rel, count in info["files"].items():
            assert len(_read(out / rel).splitlines()) == count
    assert truth["formats"]["nginx"]["lines"] == truth["requests"] + 3


def test_nginx_clock_crosses_dst(scenario: tuple[Path, dict]) -> None:
    out, truth = scenario
    assert truth["timezone"] == "America/Los_Angeles"
    text = "".join(_read(p) for p in sorted((out / "gw1").iterdir()))
    assert " -0700]" in text and " -0800]" in text  # 6 Nov 2022: PDT → PST
    # Rotation happens at 06:25 local: on both sides of the change that is 13:25 and 14:25 UTC.
    rot = rotation_times(1667260800 * 10**6, 1667260800 * 10**6 + 10 * 86400 * 10**6)
    hours = {datetime.fromtimestamp(r / 1e6, UTC).strftime("%H:%M") for r in rot}
    assert hours == {"13:25", "14:25"}


def test_attack_is_placed_relative_to_the_window(tmp_path: Path) -> None:
    truth = generate(tmp_path / "x", seed=3, scale=0.05, start="2023-03-01", days=35, formats="nginx").truth
    a = truth["attackers"][0]
    assert a["first_request"].startswith("2023-03-13")  # 24/70 of the way in, like 25 Nov 2022
    assert truth["window"] == {
        "start": "2023-03-01T00:00:00.000000Z",
        "end": "2023-04-05T00:00:00.000000Z",
        "days": 35,
    }
    assert not (tmp_path / "x" / "AWSLogs").exists() and not (tmp_path / "x" / "har").exists()
    default = generate(tmp_path / "y", seed=3, scale=0.02, formats="nginx").truth["attackers"][0]
    assert default["first_request"].startswith("2022-11-25") and default["last_request"].startswith(
        "2023-01-05"
    )


# --------------------------------------------------------------------------------------------------
# Ingest


def test_every_file_ingests_with_only_the_planted_rejects(ingested: tuple[Case, dict, dict]) -> None:
    case, manifest, truth = ingested
    planted = {
        (m["file"], m["line"]) for m in truth["formats"]["nginx"]["malformed"] if m["expected"] == "reject"
    }
    by_path = {e["path"].split("/", 1)[1]: e for e in manifest["inputs"]}
    assert by_path["truth.json"]["status"] == "unknown"
    for rel, entry in by_path.items():
        if rel == "truth.json":
            continue
        if entry["format"] is None and not rel.startswith("gw"):
            continue  # a format whose ingestor is not registered yet (checked in its own test)
        assert entry["status"] == "ingested", (rel, entry)
        expected = sum(1 for f, _ in planted if f == rel)
        assert entry["rejected"] == expected, rel
    rejects = case.scan_rejects().collect()
    got = {(r["source_file"].split("/", 1)[1], r["source_line"]) for r in rejects.iter_rows(named=True)}
    assert got == planted
    assert rejects.get_column("reason").to_list() == ["truncated line: a quoted field is never closed"]


def test_nginx_yields_the_truth(ingested: tuple[Case, dict, dict]) -> None:
    case, _manifest, truth = ingested
    ng = _events(case, "nginx")
    assert ng.height == truth["formats"]["nginx"]["events"] == truth["requests"] + 2
    # The planted TLS handshake and empty request are events with the raw request kept.
    odd = ng.filter(pl.col("method").is_null())
    assert odd.height == 2
    raw = odd.get_column("request").to_list()
    assert sum(1 for r in raw if r and r.startswith("\\x16\\x03\\x01")) == 1  # the binary, escaped as logged
    assert sum(1 for r in raw if not r) == 1  # `""`: nothing to keep
    assert set(odd.get_column("status").to_list()) == {400}
    a = truth["attackers"][0]
    mine = ng.filter(pl.col("client_ip").is_in(a["addresses"]))
    assert mine.height == a["requests"]
    on = mine.filter(pl.col("endpoint") == a["endpoint"])
    assert on.get_column("path").n_unique() == a["records_requested"]
    ok = on.filter((pl.col("status") == 200) & (pl.col("bytes_out") > 0))
    assert ok.get_column("path").n_unique() == a["records_returned"]
    # Forged X-Forwarded-For never becomes the client; the ALB node is the peer.
    assert not set(ng.get_column("client_ip").to_list()) & set(a["forged_xff"])
    assert set(mine.get_column("peer_ip").to_list()) <= {"10.0.1.37", "10.0.2.152"}
    # nginx logs whole seconds of Los Angeles time: the first request is the truth's, to the second.
    first = mine.get_column("ts").min()
    assert first.strftime("%Y-%m-%dT%H:%M:%S") == a["first_request"][:19]
    last = mine.get_column("ts").max()
    assert last.strftime("%Y-%m-%dT%H:%M:%S") == a["last_request"][:19]


def test_benign_clients_in_truth_match_the_events(ingested: tuple[Case, dict, dict]) -> None:
    case, _manifest, truth = ingested
    ng = _events(case, "nginx")
    benign = {b["id"]: b for b in truth["benign"]}
    assert {"partner", "batch_job", "carrier_nat", "scanner_paths", "scanner_ids", "app_team"} <= set(benign)
    attackers = set(truth["attackers"][0]["addresses"])
    for b in benign.values():
        assert not attackers & set(b["addresses"]), b["id"]
        if "requests" in b:
            got = ng.filter(pl.col("client_ip").is_in(b["addresses"])).height
            assert got == b["requests"], b["id"]
    # The partner is the heaviest client on every day without the batch job.
    partner = benign["partner"]["addresses"]
    daily = ng.group_by(pl.col("ts").dt.date().alias("d"), "client_ip").agg(pl.len().alias("n"))
    top = daily.sort(["d", "n"], descending=[False, True]).group_by("d", maintain_order=True).first()
    batch_days = {r["first_request"][:10] for r in benign["batch_job"]["runs"]}
    for row in top.iter_rows(named=True):
        if row["d"].isoformat() not in batch_days:
            assert row["client_ip"] in partner, row
    # Carrier NAT: one address, many customers, each reading their own id.
    for nat in benign["carrier_nat"]["per_address"]:
        assert nat["customers"] > 5
    # On any day, an attacker address is no heavier than the heaviest NAT address.
    a = truth["attackers"][0]
    if truth["profile"] == "standard":
        nat_max = max(n["daily_requests"]["max"] for n in benign["carrier_nat"]["per_address"])
        assert 0 < a["daily_requests_per_address"]["max"] <= nat_max
    # The partner's key is fingerprinted into the principal, never kept in clear.
    p = ng.filter(pl.col("client_ip").is_in(partner))
    assert p.get_column("principal").n_unique() == 1
    assert not p.get_column("query").str.contains("pk_live_").any()


def test_alb_and_nginx_read_the_same_requests(ingested: tuple[Case, dict, dict]) -> None:
    _needs("alb")
    case, manifest, truth = ingested
    alb = _events(case, "alb")
    ng = _events(case, "nginx").filter(pl.col("client_ip") != "10.0.9.14")  # the planted, gateway-only lines
    assert alb.height == ng.height == truth["requests"] == truth["formats"]["alb"]["events"]
    alb_files = [e for e in manifest["inputs"] if e["format"] == "alb"]
    assert len(alb_files) == truth["formats"]["alb"]["files"]
    assert sum(e["rejected"] for e in alb_files) == 0
    per = lambda f: f.group_by("client_ip").agg(pl.len()).sort("client_ip")  # noqa: E731
    assert per(alb).equals(per(ng))
    # Request by request, to the second: the gateways' Los Angeles clock (across 6 Nov) reads as UTC.
    cols = [pl.col("ts").dt.truncate("1s"), "client_ip", "method", "path", "status"]
    assert alb.select(cols).sort(pl.all()).equals(ng.select(cols).sort(pl.all()))
    a = truth["attackers"][0]
    mine = alb.filter(pl.col("client_ip").is_in(a["addresses"]))
    assert mine.get_column("ts").min().strftime("%Y-%m-%dT%H:%M:%S.%fZ") == a["first_request"]
    assert mine.get_column("ts").max().strftime("%Y-%m-%dT%H:%M:%S.%fZ") == a["last_request"]
    ng_first = ng.filter(pl.col("client_ip").is_in(a["addresses"])).get_column("ts").min()
    assert mine.get_column("ts").min().replace(microsecond=0) == ng_first  # DST-crossing clock, same second
    on = mine.filter(pl.col("endpoint") == a["endpoint"])
    assert on.get_column("path").n_unique() == a["records_requested"]
    assert set(alb.get_column("request_id").drop_nulls().str.slice(0, 7).to_list()) == {"Root=1-"}


def test_har_capture(ingested: tuple[Case, dict, dict], scenario: tuple[Path, dict]) -> None:
    out, truth = scenario
    doc = json.loads((out / "har/app-team-repro.har").read_text())
    entries = doc["log"]["entries"]
    assert doc["log"]["version"] == "1.2" and len(entries) == truth["formats"]["har"]["entries"] == 7
    anonymous = [
        e
        for e in entries
        if not any(h["name"] in ("authorization", "cookie") for h in e["request"]["headers"])
        and e["request"]["url"].split("/api/v1/", 1)[1].startswith("customers/")
    ]
    leak = json.loads(
        next(e for e in anonymous if e["response"]["status"] == 200)["response"]["content"]["text"]
    )
    assert {"firstName", "lastName", "email", "phone", "billingAddress", "accountNumber"} <= set(leak)
    assert any("password" in (e["request"].get("postData") or {}).get("text", "") for e in entries)
    _needs("har")
    case, manifest, _ = ingested
    entry = next(e for e in manifest["inputs"] if e["path"].endswith(".har"))
    assert (entry["format"], entry["role"], entry["rows"], entry["rejected"]) == ("har", "reference", 7, 0)
    har = _events(case, "har")
    assert har.height == 7
    # The same calls are in the gateway logs, from the app team's office, with the same body sizes.
    team = next(b for b in truth["benign"] if b["id"] == "app_team")
    ng = _events(case, "nginx").filter(pl.col("client_ip").is_in(team["addresses"]))
    assert sorted(ng.get_column("bytes_out").to_list()) == sorted(
        len(e["response"]["content"]["text"].encode()) for e in entries
    )


# --------------------------------------------------------------------------------------------------
# The hard profile


def test_hard_profile(tmp_path: Path) -> None:
    truth = generate(tmp_path / "h", seed=4, scale=0.3, days=30, profile="hard", formats="nginx").truth
    a = truth["attackers"][0]
    assert truth["profile"] == "hard"
    assert a["id_order"] in ("block_shuffle", "list")
    assert len(a["addresses"]) >= 100
    assert a["daily_requests_per_address"]["median"] <= 5
    assert len(a["user_agents"]) >= 5 and all(u.startswith("Mozilla/5.0") for u in a["user_agents"])
    assert set(a["endpoints"]) >= {
        "GET /api/v1/customers/{id}",
        "POST /api/v1/auth/login",
        "GET /api/v1/catalog/plans",
    }
    assert a["endpoint_requests"] > a["records_requested"]  # retries
    assert a["pauses"]
    staff = next(b for b in truth["benign"] if b["id"] == "staff")
    assert len(staff["addresses"]) == 3 and staff["ids_read_twice"] > 0
    assert (
        staff["first_request"][:10] == truth["window"]["start"][:10]
        or staff["first_request"][:10] <= "2022-11-03"
    )
    assert staff["records_requested"] > a["records_requested"] / 10


# --------------------------------------------------------------------------------------------------
# The command


def test_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "ev"
    args = ["sample", str(out), "--scale", "0.02", "--days", "5", "--seed", "9"]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "requests/s" in res.output and (out / "truth.json").exists()
    res = runner.invoke(main, args)
    assert res.exit_code == 1
    assert "is not empty" in res.output and "--force" in res.output
    (out / "keep.txt").write_text("not ours")
    res = runner.invoke(main, [*args, "--force", "--hard", "--formats", "nginx"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "truth.json").read_text())["profile"] == "hard"
    assert not (out / "AWSLogs").exists() and (out / "keep.txt").exists()
    res = runner.invoke(main, ["sample", str(tmp_path / "z"), "--formats", "csv"])
    assert res.exit_code == 1 and "alb,nginx,har" in res.output


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ForensicsError):
        generate(tmp_path / "a", start="yesterday")
    with pytest.raises(ForensicsError):
        generate(tmp_path / "b", scale=0)
    with pytest.raises(ForensicsError):
        generate(tmp_path / "c", profile="sneaky")
