"""A big plain-text log is parsed as byte ranges by several workers and recorded as one file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from forensics import api
from forensics.case import Case
from forensics.ingest import driver
from forensics.ingest.base import IngestOptions
from forensics.ingest.unit import FileTask


def _line(i: int) -> str:
    return (
        f"10.0.0.{i % 7 + 1} - - [01/Feb/2023:00:{i // 60 % 60:02d}:{i % 60:02d} +0000] "
        f'"GET /api/v1/customers/{100000 + i} HTTP/1.1" 200 {i % 900 + 10} "-" "curl/8" "198.51.100.{i % 200}"\n'
    )


@pytest.fixture
def big_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """About 700 kB of nginx `main` lines with a BOM, a reject in the second half and no final newline;
    split points shrunk so that it is cut into four ranges."""
    n = 6000
    lines = [_line(i) for i in range(n)]
    lines[4500] = '10.0.0.9 - - [01/Feb/2023:01:00:00 +0000] "GET /cut-short HTTP/1.1" 200\n'
    text = "\ufeff" + "".join(lines)
    path = tmp_path / "evidence" / "access.log"
    path.parent.mkdir()
    path.write_bytes(text.encode().rstrip(b"\n"))
    monkeypatch.setattr(driver, "SPLIT_MIN_BYTES", 100_000)
    monkeypatch.setattr(driver, "RANGE_BYTES", 150_000)
    return path


def test_split_points_fall_after_newlines(big_log: Path):
    data = big_log.read_bytes()
    task = FileTask(str(big_log), "access.log", "access.log", len(data))
    cuts = driver.split_points(task, IngestOptions(), n_workers=2)
    ranges = 2 * -(-len(data) // (2 * 150_000))  # a multiple of the worker count, each ≤ RANGE_BYTES
    assert cuts is not None and len(cuts) == ranges - 1 >= 3
    assert all(data[c - 1 : c] == b"\n" for c in cuts)
    assert cuts == sorted(set(cuts))
    # a compressed or single-worker run streams the file whole
    assert driver.split_points(task, IngestOptions(), n_workers=1) is None


def test_ranges_ingest_as_one_file(big_log: Path, tmp_path: Path):
    data = big_log.read_bytes()
    report = api.ingest([str(big_log.parent)], tmp_path / "case", workers=2)
    assert len(report.files) == 1
    case = Case.open(tmp_path / "case")
    (entry,) = case.load_manifest()["inputs"]
    assert entry["sha256"] == entry["content_sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["bytes"] == len(data)
    assert (entry["lines_read"], entry["rows"], entry["rejected"]) == (6000, 5999, 1)
    ev = case.scan_events().sort("source_line").collect()
    # line numbers are the file's, continuous across the ranges
    assert ev.get_column("source_line").to_list() == [i for i in range(1, 6001) if i != 4501]
    last = ev.row(-1, named=True)
    assert last["path"] == "/api/v1/customers/105999" and last["client_ip"] == "198.51.100.199"
    assert ev.filter(pl.col("source_line") == 1)["path"][0] == "/api/v1/customers/100000"  # BOM gone
    rej = case.scan_rejects().collect().row(0, named=True)
    assert rej["source_line"] == 4501
    # the byte offset is the file's: the reject's bytes are found there
    start = rej["byte_offset"]
    assert data[start : start + 40].startswith(b"10.0.0.9 - - [01/Feb/2023:01:00:00")
    assert entry["first_ts"] == "2023-02-01T00:00:00.000000Z"


def test_a_split_copy_is_a_duplicate(big_log: Path, tmp_path: Path):
    copy = big_log.parent / "copy" / "access.log"
    copy.parent.mkdir()
    copy.write_bytes(big_log.read_bytes())
    api.ingest([str(big_log.parent)], tmp_path / "case", workers=2)
    case = Case.open(tmp_path / "case")
    statuses = sorted(e["status"] for e in case.load_manifest()["inputs"])
    assert statuses == ["duplicate", "ingested"]
    assert case.scan_events().select(pl.len()).collect().item() == 5999


def test_progress_counts_each_line_and_byte_once(big_log: Path, tmp_path: Path):
    seen = {"files": 0, "bytes": 0, "lines": 0}

    def on_event(kind: str, data: dict) -> None:
        if kind == "unit":
            for key in seen:
                seen[key] += data[key]

    api.ingest([str(big_log.parent)], tmp_path / "case", workers=2, on_event=on_event)
    assert seen == {"files": 1, "bytes": big_log.stat().st_size, "lines": 6000}
