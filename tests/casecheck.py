"""Assertions about a whole case directory, shared by the tests of every reader."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl


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
