"""Conformance of the cloud and proxy ingestors over the shared reference material (skipped when absent).

* Every file under samples/{gcp_lb,azure_appgw,kong,envoy,traefik,caddy} is auto-detected as its format;
  events + rejects = lines read (records, for a JSON document); the only rejects are lines that are not
  access-log records at all, each with its own reason; a few known values per sample.
* Peer vectors (peer_vectors/{azure_appgw,caddy,envoy,traefik}.jsonl) compared field by field, each vector
  in its own file and auto-detected. Where this project's documented policy differs from the peer, the
  expected value is transformed by the policy and the test names it (POLICIES).
* Negative vectors (haproxy, s3_access, *_error): recognised as unknown or rejected with a reason, never
  read as events by these ingestors.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from casecheck import assert_samples_ingested, ingested, line_count

from forensics.case import Case

#: Sample directory → the ingestor expected for every file in it.
SAMPLE_FORMATS = {
    "gcp_lb": "gcp_lb",
    "azure_appgw": "azure_appgw",
    "kong": "kong",
    "envoy": "envoy",
    "traefik": "traefik",
    "caddy": "caddy",
}

#: Reasons a line of these samples may be rejected for: none of them is an access-log record.
ALLOWED_REJECT_REASONS = {
    "gcp_lb": ("no timestamp",),  # an entry pasted into code without its timestamp
    "azure_appgw": (),
    "kong": (),
    "envoy": (),
    "traefik": ("blank line", "does not match the Traefik common log format"),  # a plugin's DEBUG line
    "caddy": ("blank line", "not an access-log entry ("),  # Caddy's startup and handler noise
}


def _records_in(raw: bytes, variant: str | None) -> int:
    """Lines of a line file; records of a JSON document (``"key":-`` numbers repaired to parse it)."""
    if variant == "document":
        doc = json.loads(re.sub(rb'(":\s*)-(\s*[,}\]])', rb"\1null\2", raw))
        return len(doc["records"] if isinstance(doc, dict) and "records" in doc else doc)
    return line_count(raw)


@pytest.mark.parametrize("subdir", sorted(SAMPLE_FORMATS))
def test_samples_are_detected_and_counts_add_up(shared_samples, tmp_path, subdir):
    case = ingested(shared_samples / subdir, tmp_path / "case")
    entries = assert_samples_ingested(case, shared_samples / subdir, SAMPLE_FORMATS[subdir], _records_in)
    for e in entries:
        assert e["rows"] > 0, e["path"]
    for reason in case.scan_rejects().collect().get_column("reason").to_list():
        assert ALLOWED_REJECT_REASONS[subdir] and reason.startswith(ALLOWED_REJECT_REASONS[subdir]), reason
    events = case.scan_events().collect()
    assert events.height == sum(e["rows"] for e in entries)
    assert events.get_column("ts").null_count() == 0
    assert (
        events.get_column("method").null_count()
        == events.filter(events["extra"].str.contains('"tcp":true')).height
    )


def _rows(case: Case) -> dict[tuple[str, int], dict]:
    return {
        (r["source_file"].rsplit("/", 1)[-1], r["source_line"]): r
        for r in case.scan_events().collect().iter_rows(named=True)
    }


def test_sample_known_rows(shared_samples, tmp_path):
    rows: dict[tuple[str, int], dict] = {}
    for subdir in SAMPLE_FORMATS:
        rows |= _rows(ingested(shared_samples / subdir, tmp_path / subdir))
    # GCP: a real GKE ingress entry (wave.com, 2023)
    wave = rows[("real_world_excerpts_from_code.jsonl", 1)]
    assert wave["ts"].isoformat() == "2023-04-21T15:59:24.827008+00:00"
    assert (wave["client_ip"], wave["method"], wave["host"], wave["path"]) == (
        "41.82.183.143",
        "POST",
        "sn.mmapp.wave.com",
        "/graphql",
    )
    assert (wave["status"], wave["bytes_in"], wave["bytes_out"], wave["duration_ms"]) == (
        200,
        522,
        1750,
        248.406,
    )
    assert wave["observer"] == "k8s-fws-default-money-srv-web-ingress--142669370e5711a1"
    assert wave["request_id"] == "4ebc71f1def9274798cac4e8960d0095"
    # GCP: remoteIp with a port (elastic fixture)
    assert rows[("elastic_integrations_test-load-balancer.jsonl", 2)]["client_port"] == 9989
    # Azure: the real v1 record whose clientPort is "-" (invalid JSON, repaired)
    puma = rows[("pastebin_JMcWEWnz_invalid_json_records.json", 1)]
    assert (puma["observer"], puma["client_ip"], puma["client_port"]) == (
        "PUMAPRODAG",
        "191.232.191.225",
        None,
    )
    assert (puma["path"], puma["query"], puma["status"], puma["duration_ms"]) == (
        "/scripts/Version2/main.js",
        None,  # only the gateway's own parameters were in requestQuery
        200,
        205.0,
    )
    # Kong 0.11 (real): a session cookie is a fingerprint, never the value
    kong = rows[("kong_real_world_excerpts.jsonl", 1)]
    assert kong["auth"] == "cookie" and kong["principal"].startswith("fp:")
    assert (kong["path"], kong["bytes_in"], kong["bytes_out"], kong["duration_ms"]) == (
        "/api/v1/healthcheck",
        423,
        271,
        33.0,
    )
    # Envoy: a TCP proxy line is an event without method, path or status
    tcp = rows[("elastic_integrations_test-log.log", 1)]
    assert (tcp["method"], tcp["path"], tcp["status"], tcp["bytes_out"]) == (None, None, None, 254)
    # Traefik: a router chain, and "-" status and size
    chain = rows[("crowdsec_traefik_clf.log", 7)]
    assert (
        json.loads(chain["extra"])["router"]
        == "root@docker -> intermediate1@docker -> intermediate2@docker -> leaf@docker"
    )
    dash = rows[("crowdsec_traefik_clf.log", 5)]
    assert (dash["status"], dash["bytes_out"]) == (None, None)
    # Caddy (real, docker compose): a redacted cookie keeps only its kind
    caddy = rows[("lnav_caddy_log_0_docker.log", 16)]
    assert (caddy["client_ip"], caddy["auth"], caddy["principal"], caddy["status"]) == (
        "172.19.0.1",
        "cookie",
        None,
        304,
    )
    assert rows[("crowdsec_caddy-logs.log", 10)]["principal"] == "Bob"


# --------------------------------------------------------------------------------------------------
# Peer vectors

#: Where this project's documented policy (DESIGN.md, peer_vectors/README.md) differs from a peer.
POLICIES = {
    "dash-null": "'-' and empty values are null (peers that keep '-' literally differ)",
    "client": "client is the right-most untrusted X-Forwarded-For address behind a trusted peer; "
    "an untrusted peer's X-Forwarded-For is ignored (peers take the raw peer or the last XFF entry)",
}

#: (format, request id or path in the line) → the client under this project's policy, where the peer's differs.
CLIENT_POLICY = {
    # Envoy JSON: peer 10.42.0.1 (trusted), XFF "192.168.1.100, 10.42.0.1": every address is private,
    # so the left-most is the client (the peer reports the raw peer address).
    ("envoy", "multi-ip-v4-test-id"): "192.168.1.100",
    ("envoy", "multi-ip-v6-test-id"): "fd00:1234:5678::5a24",
    # Traefik JSON: ClientAddr 172.71.122.85 is public, so its X-Forwarded-For (ClientHost
    # "192.168.1.100,10.0.0.50") is not trusted (the peer takes the last XFF entry).
    ("traefik", "/_matrix/client/v3/sync"): "172.71.122.85",
}


def _vectors(peer_vectors: Path, fmt: str) -> list[dict]:
    return [json.loads(ln) for ln in (peer_vectors / f"{fmt}.jsonl").read_text().splitlines() if ln.strip()]


def _ts(row: dict, precision: str | None) -> str:
    ts: datetime = row["ts"]
    if precision == "ms":
        return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _actual(row: dict, key: str, vector: dict):
    if key == "ts_utc":
        return _ts(row, vector.get("ts_precision"))
    if key == "target":
        return row["path"] + (f"?{row['query']}" if row["query"] is not None else "")
    if key == "http_version":
        return row["protocol"].removeprefix("HTTP/") if row["protocol"] else None
    if key == "user":
        return row["principal"]
    return row[key]


def _expected(fmt: str, key: str, value, vector: dict, used: set[str]):
    if key == "http_version" and isinstance(value, str):
        return value.removeprefix("HTTP/")
    if value == "-" or (value == "" and key in ("referer", "user_agent", "user")):
        used.add("dash-null")
        return None
    if key == "client_ip":
        for (f, mark), ours in CLIENT_POLICY.items():
            if f == fmt and mark in vector["line"] and ours != value:
                used.add("client")
                return ours
    return value


def _per_vector_file(case: Case) -> tuple[dict[str, dict], dict[str, dict], dict[str, str]]:
    """By vector file name: its manifest entry, its event, its reject reason."""
    entries = {Path(e["path"]).name: e for e in case.load_manifest()["inputs"]}
    rows = {k[0]: v for k, v in _rows(case).items()}
    rejects = {
        r["source_file"].rsplit("/", 1)[-1]: r["reason"]
        for r in case.scan_rejects().collect().iter_rows(named=True)
    }
    return entries, rows, rejects


def _run_vectors(peer_vectors: Path, tmp_path: Path, fmt: str) -> tuple[list[dict], Case]:
    vectors = _vectors(peer_vectors, fmt)
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for i, v in enumerate(vectors):
        (evidence / f"v{i:03d}.log").write_text(v["line"] + "\n")
    return vectors, ingested(evidence, tmp_path / "case")


@pytest.mark.parametrize("fmt", ["azure_appgw", "caddy", "envoy", "traefik"])
def test_peer_vectors_field_by_field(peer_vectors, tmp_path, fmt):
    vectors, case = _run_vectors(peer_vectors, tmp_path, fmt)
    entries, rows, rejects = _per_vector_file(case)
    used: set[str] = set()
    checked = 0
    for i, v in enumerate(vectors):
        name = f"v{i:03d}.log"
        if not v["valid"]:
            # a line the peer rejects: unknown on its own, or a reject with a reason; never an event
            assert name not in rows, v["line"]
            assert entries[name]["status"] == "unknown" or rejects.get(name), v["line"]
            continue
        assert name in rows, f"valid line did not become an event: {v['line'][:160]}"
        row = rows[name]
        assert row["source_format"] == fmt and entries[name]["format"] == fmt
        for key, value in v["expect"].items():
            if key == "ts_raw":
                continue
            want = _expected(fmt, key, value, v, used)
            got = _actual(row, key, v)
            assert got == want, f"{key}: {got!r} != {want!r} ({v['source']}: {v['line'][:160]})"
            checked += 1
    assert checked >= {"azure_appgw": 10, "caddy": 50, "envoy": 50, "traefik": 100}[fmt]
    assert used <= set(POLICIES)
    # the policies that must have been applied (the vectors contain the cases)
    assert {"azure_appgw": set(), "caddy": set(), "envoy": {"client"}, "traefik": {"client", "dash-null"}}[
        fmt
    ] <= used


def test_azure_peer_vector_extra_fields(peer_vectors, tmp_path):
    vectors, case = _run_vectors(peer_vectors, tmp_path, "azure_appgw")
    row = _rows(case)[("v000.log", 1)]
    want = vectors[0]["expect_extra"]
    extra = json.loads(row["extra"])
    assert row["duration_ms"] == want["time_taken"] * 1000  # v2: seconds
    assert (extra["server_routed"], extra["server_status"]) == (want["server_routed"], want["server_status"])
    assert extra["server_response_latency"] == float(want["server_response_latency"])
    assert (row["host"], extra["ssl_protocol"], extra["waf_mode"]) == (
        want["original_request_host"],
        want["ssl_protocol"],
        want["waf_mode"],
    )
    assert (row["request_id"], extra["instance"]) == (
        want["transaction_identifier"],
        want["instance_identifier"],
    )


#: Negative examples: not access logs of any format this project reads.
NEGATIVE = ["haproxy", "s3_access", "apache_error", "nginx_error"]


@pytest.mark.parametrize("fmt", NEGATIVE)
def test_negative_vectors_are_unknown_or_rejected(peer_vectors, tmp_path, fmt):
    vectors, case = _run_vectors(peer_vectors, tmp_path, fmt)
    entries, rows, rejects = _per_vector_file(case)
    for i, v in enumerate(vectors):
        name = f"v{i:03d}.log"
        e = entries[name]
        assert e["format"] not in SAMPLE_FORMATS.values(), (e["format"], v["line"])
        if name in rows:
            # The one exception, by nginx's documented policy (forensics.ingest.logformat): an nginx
            # error.log line that names a client and a request is read as that request, not misread:
            # its values are the ones the peer states.
            assert fmt == "nginx_error" and rows[name]["source_format"] == "nginx", v["line"]
            row = rows[name]
            assert (row["client_ip"], row["method"], row["path"]) == (
                v["expect"]["client_ip"],
                v["expect"]["method"],
                v["expect"]["target"],
            )
            continue
        assert e["status"] == "unknown" or (e["rejected"] == e["lines_read"] and rejects.get(name)), v["line"]
