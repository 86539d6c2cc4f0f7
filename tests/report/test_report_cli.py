"""The README's main job ends by printing the headline and where the report is; `forensics report`."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from forensics.cli import main


def test_investigate_ends_with_the_headline_and_the_report(sample_case):
    lines = [line for line in sample_case.output.splitlines() if line.strip()]
    attacker = sample_case.truth["attackers"][0]
    window = next(f for f in sample_case.doc["findings"] if f["kind"] == "exfiltration_window")
    assert lines[-1] == f"Report: {(sample_case.case / 'report.html').resolve()}"
    assert lines[-5] == (
        f"Records taken: {attacker['records_returned']:,} (account, address, email, name, phone) by "
        f"{window['actor']['id']}"
    )
    assert lines[-4] == f"Actor addresses: {len(attacker['addresses'])}"
    start, end = (attacker[k][:19].replace("T", " ") for k in ("first_request", "last_request"))
    assert lines[-3] == f"Window (UTC): {start} → {end} (42 days)"
    assert lines[-2] == f"Endpoint: {attacker['method']} {attacker['host']}{attacker['endpoint']}"
    assert (sample_case.case / "report.html").is_file()


def test_investigate_runs_every_stage_with_progress(sample_case):
    log = [json.loads(x) for x in (sample_case.case / "log.jsonl").read_text().splitlines()]
    assert [r["command"] for r in log] == ["ingest", "inventory", "analyze", "report"]
    out = sample_case.output
    assert "events + rejected = lines read" in out and "Findings (" in out and "Inventory:" in out


def test_report_command(sample_case):
    result = CliRunner().invoke(main, ["report", "--case", str(sample_case.case)])
    assert result.exit_code == 0, result.output
    assert (
        result.output.rstrip().splitlines()[-1] == f"Report: {(sample_case.case / 'report.html').resolve()}"
    )
    assert re.search(r"6 chart\(s\) in charts/", result.output)


def test_report_needs_an_analysed_case(tmp_path: Path):
    result = CliRunner().invoke(main, ["report", "--case", str(tmp_path / "nope")])
    assert (
        result.exit_code == 1 and "not a case directory" in result.output and "Traceback" not in result.output
    )
    case = tmp_path / "case"
    case.mkdir()
    (case / "manifest.json").write_text(
        json.dumps({"schema": "forensics.manifest/1", "inputs": [], "parts": []}), encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["report", "--case", str(case)])
    assert result.exit_code == 1 and "no findings" in result.output and "forensics analyze" in result.output


def test_a_case_without_exfiltration_still_reports(tmp_path: Path):
    evidence = tmp_path / "ev"
    evidence.mkdir()
    line = '198.51.100.{c} - - [01/Feb/2023:00:{m:02d}:00 +0000] "GET /api/v1/plans HTTP/1.1" 200 10 "-" "app/1"\n'
    (evidence / "access.log").write_text(
        "".join(line.format(c=c, m=m) for c in range(1, 6) for m in range(30))
    )
    result = CliRunner().invoke(main, ["investigate", str(evidence), "--case", str(tmp_path / "case")])
    assert result.exit_code == 0, result.output
    lines = result.output.rstrip().splitlines()
    assert lines[-2].startswith("Headline: no exfiltration found")
    assert lines[-1].startswith("Report: ")
    html = (tmp_path / "case" / "report.html").read_text(encoding="utf-8")
    assert "No exfiltration was found" in html
