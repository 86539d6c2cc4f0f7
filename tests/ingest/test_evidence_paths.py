"""What the command line names: folders, links, special files, globs, and inputs read again later."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forensics import api
from forensics.errors import ForensicsError
from forensics.ingest import driver

LINE = '203.0.113.9 - - [01/Feb/2023:00:00:0{i} +0000] "GET /api/v1/me HTTP/1.1" 200 10 "-" "curl/8"\n'
PIPES = "203.0.113.9|2023-02-01T00:00:0{i}+00:00|GET|/api/v1/customers/{i}|200\n"
PIPE_FORMAT = "$remote_addr|$time_iso8601|$request_method|$request_uri|$status"


def test_an_unknown_file_is_read_again_with_the_format_given_later(tmp_path, ingest_files):
    """The hint for an unknown file is "try --log-format": that retry must not be skipped as known."""
    first = ingest_files({"custom.log": "".join(PIPES.format(i=i) for i in range(3))})
    assert first.entry("custom.log")["status"] == "unknown"
    report = api.ingest([str(tmp_path / "evidence")], first.case_dir, workers=1, log_format=PIPE_FORMAT)
    assert report.skipped_known == []
    entry = first.entry("custom.log")  # one entry: the new one replaced the unknown one
    assert (entry["status"], entry["lines_read"], entry["rows"]) == ("ingested", 3, 3)
    assert first.events().get_column("path").to_list() == [f"/api/v1/customers/{i}" for i in range(3)]
    # and once read, it is known: a third run adds nothing
    again = api.ingest([str(tmp_path / "evidence")], first.case_dir, workers=1, log_format=PIPE_FORMAT)
    assert again.skipped_known == ["evidence/custom.log"] and first.events().height == 3


def test_links_and_special_files_in_a_folder_are_reported_not_read(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "access.log").write_text(LINE.format(i=1))
    outside = tmp_path / "outside.log"
    outside.write_text(LINE.format(i=2))
    (evidence / "link.log").symlink_to(outside)
    os.mkfifo(evidence / "pipe")
    case = tmp_path / "case"
    report = api.ingest([str(evidence)], case, workers=1)
    by_path = {f.path.removeprefix("evidence/"): f for f in report.files}
    assert by_path["access.log"].status == "ingested"
    assert by_path["link.log"].status == "skipped" and "not followed" in by_path["link.log"].notes[0]
    assert by_path["pipe"].status == "skipped" and "not a regular file" in by_path["pipe"].notes[0]
    inputs = api.open_case(case).load_manifest()["inputs"]
    assert sorted((e["path"], e["status"]) for e in inputs) == [
        ("evidence/access.log", "ingested"),
        ("evidence/link.log", "skipped"),
        ("evidence/pipe", "skipped"),
    ]
    # said once: a second run does not list them again
    api.ingest([str(evidence)], case, workers=1)
    assert len(api.open_case(case).load_manifest()["inputs"]) == 3


def test_a_folder_that_cannot_be_listed_is_an_error_entry(tmp_path, monkeypatch) -> None:
    evidence = tmp_path / "evidence"
    (evidence / "locked").mkdir(parents=True)
    (evidence / "access.log").write_text(LINE.format(i=1))
    real = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(driver.os, "scandir", scandir)
    report = api.ingest([str(evidence)], tmp_path / "case", workers=1)
    by_path = {f.path.removeprefix("evidence/"): f for f in report.files}
    assert by_path["access.log"].status == "ingested"
    assert by_path["locked"].status == "error"
    assert by_path["locked"].error == "cannot list this folder: Permission denied"


def test_a_glob_naming_the_folder_that_holds_the_case_is_refused(tmp_path, monkeypatch) -> None:
    (tmp_path / "ev4").mkdir()
    (tmp_path / "ev4" / "access.log").write_text(LINE.format(i=1))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ForensicsError, match="inside the evidence"):
        driver.check_case_location(Path("ev4/case"), ["ev[4]"])
    # a glob of files next to the case is fine
    driver.check_case_location(Path("case"), ["ev4/*.log", "*.log"])


def test_a_glob_over_the_folder_that_would_hold_the_case_is_refused(tmp_path, monkeypatch) -> None:
    """``ev/*`` with ``--case ev/case``: the case does not exist yet, so nothing matches it, but the
    case would be written inside the evidence folder."""
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "access.log").write_text(LINE.format(i=1))
    monkeypatch.chdir(tmp_path)
    for pattern in ("ev/*", "ev/**/*", str(tmp_path / "ev" / "*")):
        with pytest.raises(ForensicsError, match="inside the evidence"):
            driver.check_case_location(Path("ev/case"), [pattern])
    assert not (tmp_path / "ev" / "case").exists()
