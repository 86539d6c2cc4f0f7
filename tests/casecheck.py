"""Assertions about a whole case directory, shared by the tests of every reader."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import polars as pl

from forensics import api
from forensics.case import Case


def assert_nowhere(case_dir: Path, secrets: Iterable[str], *texts: str) -> None:
    """No secret in any text cell of any Parquet file, in any other file of the case, nor in ``texts``
    (what the command printed)."""
    secrets = list(secrets)
    for path in case_dir.rglob("*"):
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            for name, dtype in frame.schema.items():
                if dtype in (pl.String, pl.Categorical):
                    values = " ".join(v for v in frame.get_column(name).cast(pl.String).to_list() if v)
                    assert not any(s in values for s in secrets), (path, name)
        elif path.is_file():
            text = path.read_bytes().decode("utf-8", "replace")
            assert not any(s in text for s in secrets), path
    for text in texts:
        assert not any(s in text for s in secrets), text


def ingested(src: Path, case_dir: Path) -> Case:
    """``src`` ingested into a new case in this process (one worker: reproducible), and the case."""
    api.ingest([str(src)], case_dir, workers=1)
    return Case.open(case_dir)


def line_count(raw: bytes) -> int:
    """Lines of a file as ingest counts them: the last one may lack its newline."""
    return raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)


def assert_samples_ingested(
    case: Case, folder: Path, fmt: str, records_in: Callable[[bytes, str | None], int] | None = None
) -> list[dict]:
    """Every file of ``folder`` is a manifest entry ingested as ``fmt``, with all its records read
    (``records_in(raw, variant)``, lines by default) and rows + rejected = lines read. The entries."""
    entries = case.load_manifest()["inputs"]
    assert len(entries) == len(list(folder.iterdir()))
    for e in entries:
        assert e["status"] == "ingested", e
        assert e["format"] == fmt, e["path"]
        raw = (folder / Path(e["path"]).name).read_bytes()
        expected = records_in(raw, e["variant"]) if records_in else line_count(raw)
        assert e["lines_read"] == expected, e["path"]
        assert e["rows"] + e["rejected"] == e["lines_read"], e["path"]
    return entries
