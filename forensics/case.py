"""The case directory: manifest, command log, event and reject parts.

Crash safety: parts are written under a temporary name, renamed into place, and only then listed in
manifest.json, which is itself replaced atomically. Readers use the parts the manifest lists, so a
crash at any point leaves no half case: unlisted parts and ``*.tmp`` files are orphans, removed by the
next command that opens the case for writing.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from . import __version__
from .errors import ForensicsError
from .schema import EVENT_SCHEMA, REJECT_SCHEMA, empty_events, empty_rejects

MANIFEST_SCHEMA = "forensics.manifest/1"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def versions() -> dict[str, str]:
    return {
        "tool_version": __version__,
        "polars_version": pl.__version__,
        "python_version": platform.python_version(),
    }


class Case:
    """One investigation's directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.manifest_path = self.path / "manifest.json"
        self.log_path = self.path / "log.jsonl"
        self.events_dir = self.path / "events"
        self.rejects_dir = self.path / "rejects"

    # ----------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> Case:
        case = cls(path)
        if case.path.exists() and not case.path.is_dir():
            raise ForensicsError(
                f"case path {case.path} exists and is not a directory", hint="choose another --case"
            )
        case.path.mkdir(parents=True, exist_ok=True)
        case.events_dir.mkdir(exist_ok=True)
        case.rejects_dir.mkdir(exist_ok=True)
        if not case.manifest_path.exists():
            case.save_manifest(case.new_manifest())
        case.remove_orphans()
        return case

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Case:
        case = cls(path)
        if not case.manifest_path.is_file():
            raise ForensicsError(
                f"{case.path} is not a case directory (no manifest.json)",
                hint="create one with `forensics ingest SOURCES… --case DIR`",
            )
        return case

    # ----------------------------------------------------------------------------------------------
    def new_manifest(self) -> dict[str, Any]:
        return {
            "schema": MANIFEST_SCHEMA,
            **versions(),
            "created": now_iso(),
            "updated": now_iso(),
            "inputs": [],
            "parts": [],
        }

    def load_manifest(self) -> dict[str, Any]:
        try:
            with open(self.manifest_path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return self.new_manifest()
        except ValueError as exc:
            raise ForensicsError(
                f"{self.manifest_path} is not valid JSON: {exc}", hint="the case is damaged"
            ) from exc
        if data.get("schema") != MANIFEST_SCHEMA:
            raise ForensicsError(f"{self.manifest_path}: unknown manifest schema {data.get('schema')!r}")
        return data

    def save_manifest(self, manifest: dict[str, Any]) -> None:
        manifest = dict(manifest)
        manifest.update(versions())
        manifest["updated"] = now_iso()
        manifest["inputs"] = sorted(
            manifest.get("inputs", []), key=lambda e: (e.get("path", ""), e.get("sha256", ""))
        )
        manifest["parts"] = sorted(manifest.get("parts", []), key=lambda p: p["path"])
        write_json_atomic(self.manifest_path, manifest)

    def log_command(self, command: str, args: dict[str, Any]) -> None:
        """Append one line to log.jsonl: what ran, with which arguments and versions, when."""
        record = {
            "time": now_iso(),
            "command": command,
            "args": args,
            **versions(),
            "argv": sys.argv[1:],
            "user": _user(),
            "cwd": os.getcwd(),
        }
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str, sort_keys=True) + "\n")

    # ----------------------------------------------------------------------------------------------
    def remove_orphans(self) -> list[Path]:
        """Delete temporary files and parts no manifest entry lists (left by a crash)."""
        listed = {p["path"] for p in self.load_manifest().get("parts", [])}
        removed = []
        for base in (self.events_dir, self.rejects_dir):
            if not base.exists():
                continue
            for f in base.rglob("*"):
                if not f.is_file():
                    continue
                rel = f.relative_to(self.path).as_posix()
                if f.name.endswith(".tmp") or (f.suffix == ".parquet" and rel not in listed):
                    f.unlink()
                    removed.append(f)
            for d in sorted((p for p in base.rglob("*") if p.is_dir()), reverse=True):
                with contextlib.suppress(OSError):
                    d.rmdir()
        return removed

    def evidence_digest(self, manifest: dict[str, Any] | None = None) -> str:
        """A fingerprint of what the event store holds (each input's path, content hash, status and
        rows): an analysis records it, and a report refuses findings made from other evidence."""
        manifest = manifest or self.load_manifest()
        items = sorted(
            (e["path"], e.get("content_sha256") or e.get("sha256") or "", e.get("status"), e.get("rows", 0))
            for e in manifest["inputs"]
        )
        return hashlib.sha256(json.dumps(items).encode()).hexdigest()

    def reference_files(self, manifest: dict[str, Any] | None = None) -> list[str]:
        manifest = manifest or self.load_manifest()
        return sorted(
            {e["path"] for e in manifest["inputs"] if e.get("role") == "reference" and e.get("rows")}
        )

    def part_paths(self, kind: str = "events") -> list[Path]:
        manifest = self.load_manifest()
        return [self.path / p["path"] for p in manifest.get("parts", []) if p["kind"] == kind]

    def scan_events(self, include_reference: bool = False) -> pl.LazyFrame:
        """All events of the case (traffic only unless ``include_reference``), as one lazy frame."""
        parts = self.part_paths("events")
        if not parts:
            return empty_events().lazy()
        lf = pl.scan_parquet(parts, hive_partitioning=False, schema=EVENT_SCHEMA, glob=False)
        if not include_reference:
            ref = self.reference_files()
            if ref:
                lf = lf.filter(~pl.col("source_file").cast(pl.String).is_in(ref))
        return lf

    def scan_rejects(self) -> pl.LazyFrame:
        parts = self.part_paths("rejects")
        if not parts:
            return empty_rejects().lazy()
        return pl.scan_parquet(parts, hive_partitioning=False, schema=REJECT_SCHEMA, glob=False)


def dumps(data: Any) -> bytes:
    """JSON as the case writes it: two-space indent, UTF-8, keys in the order given, trailing newline.
    orjson, because the manifest of an S3 tree holds tens of thousands of entries and is rewritten
    after every unit of work."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE, default=str)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(dumps(data))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
