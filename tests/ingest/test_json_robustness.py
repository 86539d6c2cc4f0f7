"""JSON-record readers against hostile records: one odd line is an event or a reject with its reason,
never the end of the run, and no credential it carries appears anywhere in the case or on the console."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from casecheck import assert_nowhere
from click.testing import CliRunner

from forensics.cli import main
from forensics.ingest import _records as R

BEARER = "xyzBEARERSECRET0123456789"
API_KEY = "SECRET123456"
DEEP = "[" * 5000 + "]" * 5000
SECRETS = (BEARER, API_KEY)


def _caddy(i: int, **over: object) -> str:
    """One Caddy access-log line carrying credentials (request ``i``); top-level keys replaced by name."""
    record: dict[str, object] = {
        "level": "info",
        "ts": 1673274572.5 + i,
        "logger": "http.log.access",
        "msg": "handled request",
        "request": {
            "remote_ip": f"198.51.100.{i + 1}",
            "remote_port": "5555",
            "proto": "HTTP/1.1",
            "method": "GET",
            "host": "api.example",
            "uri": f"/api/x/{i}?api_key={API_KEY}",
            "headers": {"User-Agent": ["curl/8"], "Authorization": [f"Bearer {BEARER}"]},
        },
        "duration": 0.01,
        "size": 100,
        "status": 200,
    }
    record.update(over)
    return json.dumps(record)


def _caddy_raw(i: int, key: str, raw: str) -> str:
    """A Caddy line whose top-level ``key`` holds ``raw`` as written (not valid JSON, or odd JSON)."""
    return _caddy(i, **{key: "@RAW@"}).replace('"@RAW@"', raw)


def _nginx(i: int, **over: object) -> str:
    """One nginx ``escape=json`` line carrying credentials (request ``i``)."""
    record: dict[str, object] = {
        "time_local": f"09/Jan/2023:06:29:{i:02d} -0800",
        "remote_addr": f"198.51.100.{i + 1}",
        "request": f"GET /api/x/{i}?api_key={API_KEY} HTTP/1.1",
        "status": 200,
        "body_bytes_sent": 10,
        "http_user_agent": "ua",
        "http_authorization": f"Bearer {BEARER}",
    }
    record.update(over)
    return json.dumps(record)


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def _counts(case, name: str) -> tuple[int, int, int]:
    entry = case.entry(name)
    assert entry["rows"] + entry["rejected"] == entry["lines_read"]
    return entry["lines_read"], entry["rows"], entry["rejected"]


# --------------------------------------------------------------------------------------------------
# Deep nesting: Python's parser raises RecursionError, polars stops at depth 1024


def test_caddy_deeply_nested_line_late_in_file_is_one_reject(ingest_files):
    """The deep line falls back to Python parsing, which used to raise RecursionError and end the run."""
    lines = [_caddy(i) for i in range(4)] + [_caddy_raw(4, "extra", DEEP)] + [_caddy(5)]
    case = ingest_files({"caddy.log": _text(lines)})
    assert case.entry("caddy.log")["format"] == "caddy"
    assert _counts(case, "caddy.log") == (6, 5, 1)
    assert case.reasons_by_line() == {5: "JSON nested too deeply"}
    ev = case.events()
    assert ev.get_column("source_line").to_list() == [1, 2, 3, 4, 6]
    assert ev.get_column("path").to_list() == [f"/api/x/{i}" for i in (0, 1, 2, 3, 5)]
    assert ev.get_column("status").to_list() == [200] * 5
    assert_nowhere(case.case_dir, SECRETS)


def test_caddy_deeply_nested_line_in_the_detection_head_is_one_reject(ingest_files):
    """Detection reads the head lines with Python's parser too: a deep one there must not end the run."""
    lines = [_caddy(0), '{"a":' * 3000 + "1" + "}" * 3000, _caddy(2)]
    case = ingest_files({"caddy.log": _text(lines)})
    assert case.entry("caddy.log")["format"] == "caddy"
    assert _counts(case, "caddy.log") == (3, 2, 1)
    assert case.reasons_by_line() == {2: "JSON nested too deeply"}
    assert case.events().get_column("path").to_list() == ["/api/x/0", "/api/x/2"]


def test_nginx_json_deeply_nested_line_is_one_reject(ingest_files):
    lines = [_nginx(i) for i in range(3)]
    lines.insert(1, _nginx(9)[:-1] + f', "http_x_deep": {DEEP}}}')
    case = ingest_files({"access.log": _text(lines)})
    assert case.entry("access.log")["format"] == "nginx_json"
    assert _counts(case, "access.log") == (4, 3, 1)
    assert case.reasons_by_line() == {2: "JSON nested too deeply"}
    ev = case.events()
    assert ev.get_column("path").to_list() == ["/api/x/0", "/api/x/1", "/api/x/2"]
    assert ev.get_column("status").to_list() == [200, 200, 200]
    assert_nowhere(case.case_dir, SECRETS)


# --------------------------------------------------------------------------------------------------
# Numbers polars cannot hold: read as their text, so a numeric column gets null


def test_caddy_nan_infinity_and_huge_numbers_are_read_as_text(ingest_files):
    """``NaN``/``Infinity``/``1e400`` used to be written back as NaN/Infinity, which polars refuses."""
    odd = ["NaN", "Infinity", "-Infinity", "1e400", "9" * 60, "9" * 5000]
    lines = [_caddy(0)] + [_caddy_raw(i + 1, "size", raw) for i, raw in enumerate(odd)]
    lines.append(_caddy_raw(len(odd) + 1, "ts", "1e400"))  # a timestamp no float holds
    case = ingest_files({"caddy.log": _text(lines)})
    n = len(lines)
    assert _counts(case, "caddy.log") == (n, n - 1, 1)
    assert case.reasons_by_line() == {n: "unparseable timestamp"}
    ev = case.events()
    assert ev.get_column("source_line").to_list() == list(range(1, n))
    assert ev.get_column("bytes_out").to_list() == [100] + [None] * len(odd)
    assert ev.get_column("status").to_list() == [200] * (n - 1)
    assert ev.get_column("path").to_list() == [f"/api/x/{i}" for i in range(n - 1)]
    assert_nowhere(case.case_dir, SECRETS)


def test_load_json_reads_non_finite_and_long_numbers_as_text_and_never_raises():
    """The per-record reader behind every JSON ingestor's fallback: one value or one reason, no raise."""
    assert R.load_json('{"a": NaN, "b": -Infinity, "c": 1e400, "d": 0.5, "e": 12}') == (
        {"a": "NaN", "b": "-Infinity", "c": "1e400", "d": 0.5, "e": 12},
        None,
    )
    assert R.load_json('{"n": ' + "9" * 5000 + "}") == ({"n": "9" * 5000}, None)
    assert R.load_json('{"a": "1", "a": "2"}') == ({"a": "1"}, None)  # first wins, as in polars
    assert R.load_json(DEEP) == (None, "JSON nested too deeply")
    assert R.load_json('{"a": "\\q"}') == (None, "invalid JSON")
    assert R.head_object('{"a":' * 3000 + "1" + "}" * 3000) is None


def test_decode_objects_fallback_survives_every_odd_record():
    """Each record that fails the vectorised decode is projected or rejected on its own."""
    dtype = pl.Struct({"a": pl.String, "h": pl.List(pl.String), "s": pl.Struct({"x": pl.String})})
    records = [
        '{"a": "ok"}',
        '{"a": NaN}',
        '{"a": 1e400}',
        '{"a": ' + "9" * 5000 + "}",
        '{"a": "first", "a": "second"}',
        '{"a": "\\ud800x"}',
        '{"a": "\\q"}',
        '{"a": ' + DEEP + "}",
        '{"a": {"auth": "Bearer tok"}}',
        '{"a": [1, 2], "h": "one", "s": "flat"}',
        "[1, 2]",
        '{"a": "x"} trailing',
    ]
    frame = pl.DataFrame(
        {
            "line": records,
            "source_line": pl.Series(range(1, len(records) + 1), dtype=pl.UInt64),
            "_idx": pl.Series(range(len(records)), dtype=pl.UInt32),
        }
    )
    out, rej = R.decode_objects(frame, dtype)
    assert dict(zip(rej["source_line"].to_list(), rej["reason"].to_list(), strict=True)) == {
        7: "invalid JSON",
        8: "JSON nested too deeply",
        11: "not a JSON object",
        12: "invalid JSON",
    }
    got = dict(zip(out["source_line"].to_list(), out["_j"].to_list(), strict=True))
    assert [got[i]["a"] for i in (1, 2, 3, 4, 5, 6)] == ["ok", "NaN", "1e400", "9" * 5000, "first", "\ufffdx"]
    assert json.loads(got[9]["a"]) == {"auth": "Bearer tok"}  # an object where text is expected
    assert got[10] == {"a": "1, 2", "h": ["one"], "s": None}


# --------------------------------------------------------------------------------------------------
# Values of an odd JSON type in nginx escape=json


def test_nginx_json_object_and_list_values_are_kept_as_masked_text(ingest_files):
    """polars used to abort the run with an error text that printed the credential in clear."""
    lines = [_nginx(i) for i in range(4)]
    lines[1] = _nginx(1, http_user_agent={"nested": "obj", "auth": f"Bearer {BEARER}"})
    xff = ["203.0.113.7", "10.0.0.1"]  # behind two private hops: the client is the public address
    lines[2] = _nginx(2, status=[1, 2], remote_addr="10.0.0.5", http_x_forwarded_for=xff)
    case = ingest_files({"access.log": _text(lines)})
    assert case.entry("access.log")["format"] == "nginx_json"
    assert _counts(case, "access.log") == (4, 4, 0)
    ev = case.events()
    assert ev.get_column("path").to_list() == ["/api/x/0", "/api/x/1", "/api/x/2", "/api/x/3"]
    assert ev.get_column("status").to_list() == [200, 200, None, 200]  # "1, 2" is not a status
    ua = ev["user_agent"][1]
    assert ua.startswith('{"nested": "obj", "auth": "fp:') and BEARER not in ua
    assert ev["client_ip"][2] == "203.0.113.7"  # the list joined as "a, b", like a repeated header
    assert_nowhere(case.case_dir, SECRETS)


def test_nginx_json_forced_on_a_caddy_log_rejects_with_reasons(ingest_files):
    """A forced format that does not fit gives rejects with a reason, not an abort."""
    lines = [_caddy(0), _caddy_raw(1, "size", "NaN"), _caddy(2)]
    case = ingest_files({"caddy.log": _text(lines)}, format="nginx_json")
    lines_read, rows, rejected = _counts(case, "caddy.log")
    assert (lines_read, rows + rejected) == (3, 3)
    assert all(r for r in case.reasons_by_line().values())
    assert_nowhere(case.case_dir, SECRETS)


# --------------------------------------------------------------------------------------------------
# JSON documents (one array of records), and the command line


def test_document_with_a_record_too_deep_to_write_again_rejects_only_it(ingest_files):
    """Records of a document are re-serialised one by one; a deep one used to raise RecursionError."""
    entry = {
        "httpRequest": {"requestMethod": "GET", "requestUrl": "https://api.example/r", "status": 200},
        "resource": {"type": "http_load_balancer"},
        "timestamp": "2023-01-05T17:20:12Z",
    }
    good = json.dumps(entry, indent=2)
    deep = json.dumps(entry)[:-1] + f', "x": {DEEP}}}'
    # the deep record after the detection head (gcp_lb's sniff reads head lines with json.loads)
    doc = "[\n" + ",\n".join([good] * 8 + [deep, good]) + "\n]\n"
    case = ingest_files({"gcloud.json": doc})
    assert (case.entry("gcloud.json")["format"], case.entry("gcloud.json")["variant"]) == (
        "gcp_lb",
        "document",
    )
    assert _counts(case, "gcloud.json") == (10, 9, 1)
    assert case.reasons_by_line() == {9: "JSON nested too deeply"}
    assert case.events().get_column("source_line").to_list() == [1, 2, 3, 4, 5, 6, 7, 8, 10]


def test_cli_ingest_of_hostile_json_lines_exits_0_with_no_secret_in_output(tmp_path):
    """The reviewer's reproduction: every one of these files used to end with exit 70."""
    files = {
        "caddy_deep.log": [_caddy(0), _caddy_raw(1, "extra", DEEP), _caddy(2)],
        "caddy_nan.log": [_caddy(0), _caddy_raw(1, "size", "NaN"), _caddy_raw(2, "size", "1e400")],
        "nj_obj.log": [_nginx(0), _nginx(1, http_user_agent={"auth": f"Bearer {BEARER}"}), _nginx(2)],
        "nj_list.log": [_nginx(0), _nginx(1, status=[1, 2]), _nginx(2)],
    }
    runner = CliRunner()
    for name, lines in files.items():
        path = tmp_path / name
        path.write_text(_text(lines))
        case_dir = tmp_path / f"case_{name}"
        result = runner.invoke(main, ["ingest", str(path), "--case", str(case_dir)])
        assert result.exit_code == 0, (name, result.output)
        assert "Internal error" not in result.output and "Traceback" not in result.output
        assert "= 3 (ok)" in result.output, result.output
        assert_nowhere(case_dir, SECRETS, result.output, result.stderr)
    forced = runner.invoke(
        main,
        ["ingest", str(tmp_path / "caddy_nan.log"), "--case", str(tmp_path / "f"), "--format", "nginx_json"],
    )
    assert forced.exit_code == 0, forced.output
    assert_nowhere(tmp_path / "f", SECRETS, forced.output, forced.stderr)


def test_deep_records_in_gcp_azure_and_api_gateway_lines_are_rejects(ingest_files):
    """Every JSON-lines reader reads single records through one never-raising parser."""
    from tests.ingest.test_azure_appgw import _v2
    from tests.ingest.test_gcp_lb import _entry

    data = Path(__file__).resolve().parents[1] / "data" / "apigw" / "json_preset.jsonl"
    apigw = data.read_text().splitlines()
    deep = '{"a":' * 5000 + "1" + "}" * 5000  # an object: past the readers' cheap "{" checks
    gcp = [json.dumps(_entry()), deep, json.dumps(_entry())]
    azure = [json.dumps(_v2()), deep, json.dumps(_v2())]
    case = ingest_files(
        {
            "gcs/requests/2023/01/05/17:00:00_17:59:59_S0.json": "\n".join(gcp) + "\n",
            "insights-logs-applicationgatewayaccesslog/y=2023/PT1H.json": "\n".join(azure) + "\n",
            "apigw/access.jsonl": "\n".join([apigw[0], deep, *apigw[1:]]) + "\n",
        }
    )
    for name, rows in (("S0.json", 2), ("PT1H.json", 2), ("access.jsonl", 3)):  # as without the deep line
        entry = case.entry(name)
        assert (entry["status"], entry["rows"]) == ("ingested", rows), name
        assert entry["rows"] + entry["rejected"] == entry["lines_read"], name
    second = case.rejects().filter(pl.col("source_line") == 2).get_column("reason").to_list()
    assert len(second) == 3 and "JSON nested too deeply" in second


def test_a_nesting_bomb_in_a_json_document_is_bounded(tmp_path):
    """ijson keeps the path of every open level: 100,000 levels took gigabytes. The document stops at
    the bomb (an error for the file, with where), in bounded memory and time."""
    import resource
    import subprocess
    import sys

    from tests.ingest.test_gcp_lb import _entry

    bomb = "[" * 100_000 + "]" * 100_000
    doc = tmp_path / "gcp.json"
    doc.write_text('{"entries": [' + json.dumps(_entry()) + "," + bomb + "]}")

    def limit() -> None:  # a regression fails with "out of memory" instead of taking the machine
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "forensics",
            "ingest",
            str(doc),
            "--case",
            str(tmp_path / "case"),
            "--format",
            "gcp_lb",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
    )
    assert "JSON nested deeper than 6000 levels at byte" in run.stdout, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    entry = json.loads((tmp_path / "case" / "manifest.json").read_text())["inputs"][0]
    assert entry["status"] == "error" and entry["sha256"]  # the whole file was still hashed
