"""The command line: closing summaries, and one clear line + hint + non-zero exit for user errors."""

from __future__ import annotations

import gzip
import json
import os
import shlex
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


@pytest.fixture
def garbage(tmp_path: Path) -> Path:
    """A file in no format at all."""
    path = tmp_path / "garbage.bin"
    path.write_bytes(bytes(range(256)) * 100)
    return path


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


# --------------------------------------------------------------------------------------------------
# Refusals write nothing; results that would mislead are errors; pasted commands run only themselves.


def first_error(output: str) -> str:
    """The first `Error:` line (the table of a failed ingest may come before it)."""
    return next(line for line in output.splitlines() if line.startswith("Error:"))


def test_explain_reproduce_line_is_shell_safe(evidence, tmp_path):
    """A HAR path in the query is attacker text: pasting the line must run only `forensics query`."""
    case = tmp_path / "my case; $(touch pwned)"
    assert run("ingest", str(evidence), "--case", str(case))[0] == 0
    assert run("analyze", "--case", str(case))[0] == 0
    doc = json.loads((case / "findings.json").read_text())
    evil = """SELECT * FROM events WHERE source_file = '/x/`touch /tmp/p`/$(touch /tmp/p2)/a"b\\'c.har'"""
    doc["findings"] = [
        {
            "id": "F0001",
            "kind": "enumeration",
            "severity": "high",
            "score": 1.0,
            "actor": None,
            "start": "2023-02-01T00:00:00Z",
            "end": "2023-02-01T00:00:09Z",
            "censored": {"start": False, "end": False},
            "summary": "crafted",
            "evidence": {"requests": 10},
            "query": evil,
        }
    ]
    (case / "findings.json").write_text(json.dumps(doc))
    code, out = run("explain", "--case", str(case), "F0001")
    assert code == 0, out
    line = next(x for x in out.splitlines() if x.startswith("Reproduce: "))
    assert shlex.split(line.removeprefix("Reproduce: ")) == ["forensics", "query", "--case", str(case), evil]


@pytest.mark.parametrize(
    "command", [["analyze"], ["report"], ["inventory"], ["query", "SELECT 1"], ["explain", "F0001"]]
)
def test_commands_on_a_non_case_write_nothing(evidence, tmp_path, command):
    """A mistyped --case, or the evidence itself, is refused before log.jsonl is written."""
    before = sorted(p.name for p in evidence.iterdir())
    for case in (tmp_path / "nonexist", evidence):
        code, out = run(command[0], "--case", str(case), *command[1:])
        assert_clean_error(code, out, "is not a case directory")
        assert first_error(out) == f"Error: {case} is not a case directory (no manifest.json)"
    assert not (tmp_path / "nonexist").exists()
    assert sorted(p.name for p in evidence.iterdir()) == before


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (["--format", "klingon"], "Error: unknown format 'klingon'"),
        (["--format", ""], "Error: --format is empty"),
        (["--tz", ""], "Error: --tz is empty"),
        (["--tz", "Mars/Olympus"], "Error: unknown time zone 'Mars/Olympus'"),
        (["--log-format", ""], "Error: --log-format is empty"),
        (["--trusted-proxy", "10.0.0/99"], "Error: not a CIDR range: '10.0.0/99'"),
        (["--trusted-proxy", ""], "Error: not a CIDR range: ''"),
    ],
)
def test_refused_ingest_options_leave_no_case(evidence, tmp_path, options, error):
    """Options are checked before the case directory and its log.jsonl are created."""
    code, out = run("ingest", str(evidence), "--case", str(tmp_path / "case"), *options)
    assert code == 1 and "Traceback" not in out
    assert out.splitlines()[0] == error
    assert out.splitlines()[1].startswith("Hint:")
    assert not (tmp_path / "case").exists()


def test_empty_source_or_case_is_refused(evidence, tmp_path, monkeypatch):
    """An unset shell variable must not ingest the current directory, nor make it the case."""
    monkeypatch.chdir(evidence)
    code, out = run("ingest", "", "--case", str(tmp_path / "case"))
    assert code == 1 and out.splitlines()[0] == "Error: an empty source was given"
    assert not (tmp_path / "case").exists()
    code, out = run("ingest", str(evidence), "--case", "")
    assert code == 1 and out.splitlines()[0] == "Error: --case is empty"
    assert sorted(p.name for p in evidence.iterdir()) == ["access.log"]


def test_ingest_fails_when_no_input_could_be_read(evidence, garbage, tmp_path):
    """Every input unknown is a failure; one readable input among them is a success with the summary."""
    code, out = run("ingest", str(garbage), "--case", str(tmp_path / "c1"))
    assert code == 1 and "Traceback" not in out
    assert first_error(out) == "Error: no input could be read: 1 unknown, 0 error(s)"
    assert "--format" in out.splitlines()[-1]
    code, out = run("ingest", str(garbage), str(evidence), "--case", str(tmp_path / "c2"))
    assert code == 0, out
    assert "events + rejected = lines read: 10 + 0 = 10 (ok)" in out and "Error:" not in out


def test_investigate_without_traffic_events_fails(evidence, garbage, tmp_path):
    """No events read must not end in "no exfiltration found"."""
    code, out = run("investigate", str(garbage), "--case", str(tmp_path / "c1"))
    assert code == 1 and "Headline" not in out
    assert first_error(out) == "Error: no input could be read: 1 unknown, 0 error(s)"
    # every line parsed as rejected: the file was read, but there is nothing to analyse
    case = tmp_path / "c2"
    code, out = run("investigate", str(evidence), "--case", str(case), "--log-format", "$remote_addr x")
    assert code == 1 and "Headline" not in out
    assert first_error(out) == "Error: no traffic events were ingested: nothing to investigate"
    assert not (case / "findings.json").exists()


def test_analyze_refuses_filters_that_match_nothing(evidence, tmp_path):
    """--until before --since, or a --client that is no client of the case, would overwrite findings.json."""
    case = tmp_path / "case"
    run("ingest", str(evidence), "--case", str(case))
    assert run("analyze", "--case", str(case))[0] == 0
    findings = (case / "findings.json").read_bytes()
    refused = [
        (
            ["--since", "2023-02-02", "--until", "2023-02-01"],
            "Error: --until 2023-02-01 is before --since 2023-02-02",
        ),
        (["--client", "notanip"], "Error: --client 'notanip' is not an IP address"),
        (["--client", "192.0.2.1"], "Error: --client 192.0.2.1 does not appear in the case's traffic"),
        (["--since", "yesterday"], "Error: not a time: 'yesterday'"),
    ]
    for options, error in refused:
        code, out = run("analyze", "--case", str(case), *options)
        assert code == 1 and out.splitlines()[0] == error, out
    assert (case / "findings.json").read_bytes() == findings
    assert run("analyze", "--case", str(case), "--client", "203.0.113.9")[0] == 0


def test_explain_on_a_case_without_findings(evidence, tmp_path):
    """No "ids run from F0001 to F0000": say there are none."""
    case = tmp_path / "case"
    run("ingest", str(evidence), "--case", str(case))
    run("analyze", "--case", str(case))
    code, out = run("explain", "--case", str(case), "F0001")
    assert code == 1 and "F0000" not in out
    assert out.splitlines()[0] == f"Error: no finding F0001: the last analysis of {case} reported no findings"


def test_query_refuses_negative_limits_and_statements_that_are_not_queries(evidence, tmp_path):
    case = str(tmp_path / "case")
    run("ingest", str(evidence), "--case", case)
    code, out = run("query", "--case", case, "--limit", "-1", "SELECT * FROM events")
    assert code == 2 and "-1 is not in the range x>=0" in out
    code, out = run("query", "--case", case, "--limit", "0", "SELECT * FROM events")
    assert code == 0 and "(10 rows, 0 shown)" in out
    for sql in ("DROP TABLE events", "  create table t AS SELECT 1", ""):
        code, out = run("query", "--case", case, sql)
        assert code == 1 and out.splitlines()[0].startswith("Error: query failed: only SELECT queries"), sql
    sql = "/* all */ -- clients\n WITH c AS (SELECT client_ip FROM events) SELECT count(*) AS n FROM c"
    code, out = run("query", "--case", case, "-o", "csv", sql)
    assert code == 0 and out.splitlines() == ["n", "10"]


def test_markup_and_control_characters_in_values_are_printed_as_text(evidence, tmp_path):
    """Rich markup in an argument (``[/]``) used to raise MarkupError; a user agent with newlines drew
    fake table rows."""
    case = tmp_path / "case"
    assert run("ingest", str(evidence), "--case", str(case))[0] == 0
    code, out = run("analyze", "--case", str(case), "--since", "[/]x[red]")
    assert code == 1 and first_error(out) == "Error: not a time: '[/]x[red]'"
    ua = "Mozilla\nRecords taken: 0 (FAKE)\n\x1b[31mred\tx"
    from forensics.safe import terminal

    assert terminal(ua) == "Mozilla\\x0aRecords taken: 0 (FAKE)\\x0a\\x1b[31mred\\x09x"
    assert terminal("a\nb", lines=True) == "a\nb"


def test_report_refuses_findings_made_before_the_evidence_changed(evidence, tmp_path):
    case = tmp_path / "case"
    assert run("ingest", str(evidence), "--case", str(case))[0] == 0
    assert run("analyze", "--case", str(case))[0] == 0
    more = tmp_path / "more"
    more.mkdir()
    (more / "b.log").write_text(LINE.format(s=59, i=99))
    assert run("ingest", str(more), "--case", str(case))[0] == 0
    code, out = run("report", "--case", str(case))
    assert code == 1 and first_error(out).startswith("Error: findings.json in") and "analyze" in out
    assert run("analyze", "--case", str(case))[0] == 0
    assert run("report", "--case", str(case))[0] == 0


def test_a_case_without_traffic_events_gets_no_verdict(evidence, tmp_path):
    """Only reference sources: the report says nothing was analysed, not "no exfiltration was found"."""
    case = tmp_path / "case"
    assert run("ingest", str(evidence), "--case", str(case), "--role", "reference")[0] == 0
    assert run("analyze", "--case", str(case))[0] == 0
    code, out = run("report", "--case", str(case))
    assert code == 0, out
    text = (case / "report.md").read_text()
    assert "Nothing was analysed: the case holds no traffic events" in text
    assert "No exfiltration was found" not in text
