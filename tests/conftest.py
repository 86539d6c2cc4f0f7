"""Shared fixtures: a case from inline text, and the shared reference samples (skipped when absent)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from forensics import api
from forensics.case import Case

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_samples() -> Path:
    path = SHARED / "samples"
    if not path.is_dir():
        pytest.skip("../shared/samples not present")
    return path


@pytest.fixture(scope="session")
def peer_vectors() -> Path:
    path = SHARED / "peer_vectors"
    if not path.is_dir():
        pytest.skip("../shared/peer_vectors not present")
    return path


class Ingested:
    """A case built from files written by a test."""

    def __init__(self, case_dir: Path, report: object) -> None:
        self.case_dir = case_dir
        self.case = Case.open(case_dir)
        self.report = report

    @property
    def manifest(self) -> dict:
        return self.case.load_manifest()

    def events(self, include_reference: bool = True) -> pl.DataFrame:
        return (
            self.case.scan_events(include_reference=include_reference)
            .sort("source_file", "source_line")
            .collect()
        )

    def rejects(self) -> pl.DataFrame:
        return self.case.scan_rejects().sort("source_file", "source_line").collect()

    def reasons_by_line(self) -> dict[int, str]:
        """Line number → reject reason (cases of one evidence file)."""
        rej = self.rejects()
        return dict(
            zip(rej.get_column("source_line").to_list(), rej.get_column("reason").to_list(), strict=True)
        )

    def entry(self, name: str) -> dict:
        hits = [e for e in self.manifest["inputs"] if e["path"].endswith(name)]
        assert len(hits) == 1, [e["path"] for e in self.manifest["inputs"]]
        return hits[0]


@pytest.fixture
def ingest_files(tmp_path: Path) -> Callable[..., Ingested]:
    """Write {name: text|bytes} under an evidence dir and ingest it: ``ingest_files({...}, format=...)``."""

    def run(files: dict[str, str | bytes], case: str = "case", **options: object) -> Ingested:
        evidence = tmp_path / "evidence"
        for name, content in files.items():
            path = evidence / name
            path.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            if name.endswith(".gz") and not data.startswith(b"\x1f\x8b"):
                data = gzip.compress(data)
            path.write_bytes(data)
        case_dir = tmp_path / case
        report = api.ingest([str(evidence)], case_dir, workers=1, **options)  # type: ignore[arg-type]
        return Ingested(case_dir, report)

    return run


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
