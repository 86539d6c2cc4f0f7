"""The command line: closing summaries, and one clear line + hint + non-zero exit for user errors."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from forensics.cli import main

LINE = '203.0.113.9 - - [01/Feb/2023:00:00:{s:02d} +0000] "GET /api/v1/customers/{i} HTTP/1.1" 200 10 "-" "curl/8"\n'


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    ev = tmp_path / "evidence"
    ev.mkdir()
    (ev / "access.log").write_text("".join(LINE.format(s=i, i=i) for i in range(10)))
    return ev


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def assert_clean_error(code: int, output: str, needle: str) -> None:
    assert code != 0
    assert "Traceback" not in output
    assert needle in output, output
    assert "Error:" in output


def test_ingest_prints_counts_that_add_up(evidence, tmp_path):
    code, out = run("ingest", str(evidence), "--case", str(tmp_path / "case"))
    assert code == 0, out
    assert "events + rejected = lines read: 10 + 0 = 10 (ok)" in out
    log = [json.loads(x) for x in (tmp_path / "case" / "log.jsonl").read_text().splitlines()]
    assert log[0]["command"] == "ingest" and log[0]["args"]["sources"] == [str(evidence)]


def test_missing_source_is_one_clear_line(tmp_path):
    code, out = run("ingest", str(tmp_path / "nope.log"), "--case", str(tmp_path / "case"))
    assert_clean_error(code, out, "no such file or directory")
    assert "Hint:" in out
    assert not (tmp_path / "case").exists()


def test_unknown_format_name(evidence, tmp_path):
    code, out = run("ingest", str(evidence), "--case", str(tmp_path / "case"), "--format", "klingon")
    assert_clean_error(code, out, "unknown format 'klingon'")


def test_case_inside_evidence_is_refused(evidence):
    code, out = run("ingest", str(evidence), "--case", str(evidence / "case"))
    assert_clean_error(code, out, "inside the evidence")
    assert not (evidence / "case").exists()


def test_bad_options(evidence, tmp_path):
    code, out = run("ingest", str(evidence), "--case", str(tmp_path / "c"), "--tz", "Mars/Olympus")
    assert_clean_error(code, out, "unknown time zone")
    code, out = run("ingest", str(evidence), "--case", str(tmp_path / "c"), "--trusted-proxy", "10.0.0/99")
    assert_clean_error(code, out, "not a CIDR range")


def test_garbage_corrupt_and_huge_inputs_are_reported_not_fatal(evidence, tmp_path):
    (evidence / "random.bin").write_bytes(os.urandom(200_000))
    blob = gzip.compress(("".join(LINE.format(s=i % 60, i=i) for i in range(30000))).encode())
    (evidence / "broken.log.gz").write_bytes(blob[: len(blob) // 3])
    (evidence / "huge.log").write_text(
        LINE.format(s=1, i=1) * 5 + "x" * (3 * 1024 * 1024) + "\n" + LINE.format(s=2, i=2)
    )
    code, out = run("ingest", str(evidence), "--case", str(tmp_path / "case"))
    assert code == 0, out
    assert "Traceback" not in out
    manifest = json.loads((tmp_path / "case" / "manifest.json").read_text())
    by = {Path(e["path"]).name: e for e in manifest["inputs"]}
    assert by["random.bin"]["status"] == "unknown"
    assert by["broken.log.gz"]["status"] == "partial" and "corrupt" in by["broken.log.gz"]["error"]
    huge = by["huge.log"]
    assert huge["lines_read"] == 7 and huge["rows"] == 6 and huge["rejected"] == 1
    assert "unknown" in out and "partial" in out


def test_query_and_errors(evidence, tmp_path):
    run("ingest", str(evidence), "--case", str(tmp_path / "case"))
    code, out = run(
        "query",
        "--case",
        str(tmp_path / "case"),
        "-o",
        "csv",
        "SELECT client_ip, count(*) AS n FROM events GROUP BY client_ip",
    )
    assert code == 0 and out.splitlines() == ["client_ip,n", "203.0.113.9,10"]
    code, out = run("query", "--case", str(tmp_path / "case"), "SELEC nonsense")
    assert_clean_error(code, out, "query failed")
    code, out = run("query", "--case", str(tmp_path / "nocase"), "SELECT 1")
    assert_clean_error(code, out, "is not a case directory")


def test_formats_lists_every_ingestor():
    from forensics.ingest import INGESTORS

    code, out = run("formats")
    assert code == 0
    for ing in INGESTORS:
        assert ing.name in out


def test_every_command_has_help_with_text():
    for name, cmd in main.commands.items():
        code, out = run(name, "--help")
        assert code == 0, name
        assert (cmd.help or "").strip(), f"{name} has no help text"
