"""Ingest's unit of work: a batch of files → Parquet parts + per-file stats. A pure function.

The unit holds no global state and writes only temporary part files inside the case directory; the
driver decides what becomes part of the case. The same function runs in-process, in a spawn-based
process pool, or could run on a cluster for evidence that outgrows one machine.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..clients import trusted_networks
from ..errors import InputReadError
from ..schema import PARTITION_COLUMN, REJECT_TEXT_MAX, conform_rejects, empty_rejects
from ..secrets import mask_text
from . import detect, get
from .base import Detection, FileContext, IngestOptions, Ingestor, finalize
from .reader import EvidenceFile, LineChunk, head_lines, iter_line_chunks, prefetch

FLUSH_ROWS = 1_000_000

Progress = Callable[[int, int], None]  # (lines, bytes) since the last call


@dataclass(frozen=True)
class FileTask:
    abs_path: str
    rel_path: str  # as recorded in the manifest (source_file)
    observer: str
    size: int


@dataclass(frozen=True)
class UnitTask:
    unit_id: str
    case_dir: str
    files: tuple[FileTask, ...]
    options: IngestOptions


@dataclass
class FileResult:
    """One manifest entry (see DESIGN.md, "The case directory")."""

    path: str
    observer: str
    status: str = "ingested"  # ingested | partial | unknown | error | empty | duplicate
    format: str | None = None
    variant: str | None = None
    detected_by: str | None = None
    confidence: float | None = None
    role: str | None = None
    sha256: str = ""
    content_sha256: str = ""
    bytes: int = 0
    content_bytes: int = 0
    compression: str | None = None
    lines_read: int = 0
    rows: int = 0
    rejected: int = 0
    first_ts: str | None = None
    last_ts: str | None = None
    invalid_utf8_lines: int = 0
    dst_ambiguous: int = 0
    dst_nonexistent: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    duplicate_of: str | None = None

    def entry(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PartInfo:
    path: str  # final path relative to the case directory
    tmp: str  # temporary path relative to the case directory
    kind: str  # events | rejects
    rows: int
    files: list[str]


@dataclass
class UnitResult:
    unit_id: str
    files: list[FileResult]
    parts: list[PartInfo]


class PartWriter:
    """Buffers frames and writes day-partitioned Parquet parts under temporary names, in a thread."""

    def __init__(self, case_dir: str, prefix: str, flush_rows: int = FLUSH_ROWS) -> None:
        self.case_dir = Path(case_dir)
        self.prefix = prefix
        self.flush_rows = flush_rows
        self.events: list[pl.DataFrame] = []
        self.rejects: list[pl.DataFrame] = []
        self.buffered = 0
        self.seq = 0
        self.parts: list[PartInfo] = []
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: list[Future[None]] = []

    def add(self, events: pl.DataFrame, rejects: pl.DataFrame | None) -> None:
        if events.height:
            self.events.append(events)
            self.buffered += events.height
        if rejects is not None and rejects.height:
            self.rejects.append(rejects)
        if self.buffered >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        events, self.events = self.events, []
        rejects, self.rejects = self.rejects, []
        self.buffered = 0
        if events:
            frame = pl.concat(events, rechunk=False)
            frame = frame.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d").alias(PARTITION_COLUMN))
            for (day,), part in frame.partition_by(PARTITION_COLUMN, as_dict=True, include_key=False).items():
                self._write(part, f"events/{PARTITION_COLUMN}={day}", "events")
        if rejects:
            self._write(pl.concat(rejects), "rejects", "rejects")

    def _write(self, frame: pl.DataFrame, subdir: str, kind: str) -> None:
        self.seq += 1
        name = f"part-{self.prefix}-{self.seq:05d}.parquet"
        final = f"{subdir}/{name}"
        tmp = f"{subdir}/.{name}.tmp"
        files = frame.get_column("source_file").cast(pl.String).unique().sort().to_list()
        self.parts.append(PartInfo(final, tmp, kind, frame.height, files))
        target = self.case_dir / tmp
        target.parent.mkdir(parents=True, exist_ok=True)
        self._pending.append(self._pool.submit(_write_parquet, frame, target))

    def close(self) -> list[PartInfo]:
        self.flush()
        self._pool.shutdown(wait=True)
        for fut in self._pending:
            fut.result()
        return self.parts


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    frame.write_parquet(path, compression="zstd", compression_level=3, statistics=True)


def _reject_rows(rej: pl.DataFrame, chunk: LineChunk, ctx: FileContext, fmt: str) -> pl.DataFrame:
    """Reject rows with provenance, the exact line's sha256 and its masked, truncated text."""
    if rej.height == 0:
        return empty_rejects()
    idx = rej.get_column("_idx").to_list()
    shas, texts, offsets = [], [], []
    for i in idx:
        raw = chunk.raw_line(i)
        shas.append(chunk.line_sha.get(i) or hashlib.sha256(raw).hexdigest())
        text = raw[: REJECT_TEXT_MAX * 4].decode("utf-8", "backslashreplace")[:REJECT_TEXT_MAX]
        texts.append(mask_text(text))
        offsets.append(int(chunk.offsets[i]))
    out = rej.select("source_line", "reason").with_columns(
        pl.Series("byte_offset", offsets, dtype=pl.UInt64),
        pl.Series("line_sha256", shas, dtype=pl.String),
        pl.Series("text", texts, dtype=pl.String),
        pl.lit(ctx.source_file).alias("source_file"),
        pl.lit(fmt).alias("source_format"),
    )
    return conform_rejects(out)


def _ts_bounds(frame: pl.DataFrame) -> tuple[Any, Any]:
    if frame.height == 0:
        return None, None
    ts = frame.get_column("ts")
    return ts.min(), ts.max()


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ingest_file(
    task: FileTask,
    options: IngestOptions,
    writer: PartWriter,
    nets: list[Any],
    progress: Progress | None = None,
) -> FileResult:
    """Detect, read, parse, normalise and buffer one file; never raises for bad input."""
    result = FileResult(path=task.rel_path, observer=task.observer)
    evidence = EvidenceFile(task.abs_path)
    try:
        head = evidence.head()
    except (InputReadError, OSError) as exc:
        _hash_only(evidence, result)
        result.status, result.error = "error", str(exc)
        return result
    if not head:
        _hash_only(evidence, result)
        result.status = "empty"
        return result
    lines = head_lines(head)
    detection = detect(lines, task.rel_path, options)
    if detection is None:
        _hash_only(evidence, result)
        result.status = "unknown"
        result.notes.append("no ingestor recognised the first lines; not parsed")
        return result
    ingestor = get(detection.ingestor)
    result.format, result.variant = ingestor.name, detection.variant
    result.detected_by, result.confidence = detection.how, detection.confidence
    result.role = options.role or ingestor.default_role
    ctx = FileContext(task.rel_path, task.observer, options, nets, detection)
    first = last = None
    try:
        if ingestor.line_based:
            for chunk in prefetch(
                iter_line_chunks(evidence.blocks(), max_line=options.max_line, invalid=ingestor.invalid_utf8)
            ):  # type: ignore[arg-type]
                events, rejects = _parse_chunk(ingestor, chunk, ctx)
                result.lines_read += chunk.lines.len()
                result.rows += events.height
                result.rejected += rejects.height
                result.invalid_utf8_lines += chunk.invalid_utf8
                lo, hi = _ts_bounds(events)
                first = lo if first is None or (lo is not None and lo < first) else first
                last = hi if last is None or (hi is not None and hi > last) else last
                writer.add(events, rejects)
                if progress:
                    progress(chunk.lines.len(), len(chunk.raw))
        else:
            for events, rejects, n in ingestor.read_document(evidence, ctx):
                events = finalize(events, ctx, ingestor.name) if events.height else events
                result.lines_read += n
                result.rows += events.height
                result.rejected += rejects.height
                lo, hi = _ts_bounds(events)
                first = lo if first is None or (lo is not None and lo < first) else first
                last = hi if last is None or (hi is not None and hi > last) else last
                writer.add(events, rejects)
    except InputReadError as exc:
        result.status = "partial" if result.lines_read else "error"
        result.error = str(exc)
    except OSError as exc:
        result.status = "error"
        result.error = f"cannot read: {exc}"
    d = evidence.digests
    result.sha256, result.content_sha256 = d.sha256, d.content_sha256
    result.bytes, result.content_bytes, result.compression = d.bytes, d.content_bytes, d.compression
    result.first_ts, result.last_ts = _iso(first), _iso(last)
    result.dst_ambiguous, result.dst_nonexistent = ctx.tz_stats.ambiguous, ctx.tz_stats.nonexistent
    result.notes.extend(ctx.notes)
    return result


def _parse_chunk(ingestor: Ingestor, chunk: LineChunk, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = chunk.frame()
    rejects = []
    if chunk.too_long:
        long_idx = pl.Series(list(chunk.too_long), dtype=pl.UInt32)
        long_rows = frame.filter(pl.col("_idx").is_in(long_idx.implode()))
        lengths = [chunk.too_long[i] for i in long_rows.get_column("_idx").to_list()]
        rejects.append(
            long_rows.select("_idx", "source_line").with_columns(
                pl.Series(
                    "reason", [f"line longer than {ctx.options.max_line} bytes ({n} bytes)" for n in lengths]
                )
            )
        )
        frame = frame.filter(~pl.col("_idx").is_in(long_idx.implode()))
    events, rej = ingestor.parse(frame, ctx) if frame.height else (pl.DataFrame(), None)
    if rej is not None and rej.height:
        rejects.append(rej.select("_idx", "source_line", "reason"))
    events = finalize(events, ctx, ingestor.name)
    rej_all = pl.concat(rejects) if rejects else pl.DataFrame()
    return events, _reject_rows(rej_all, chunk, ctx, ingestor.name)


def _hash_only(evidence: EvidenceFile, result: FileResult) -> None:
    """Read a file we do not parse to the end, so the manifest still proves what it was."""
    try:
        for _ in evidence.blocks():
            pass
    except (InputReadError, OSError) as exc:
        result.error = str(exc)
    d = evidence.digests
    result.sha256, result.content_sha256 = d.sha256, d.content_sha256
    result.bytes, result.content_bytes, result.compression = d.bytes, d.content_bytes, d.compression


def run_unit(task: UnitTask, progress: Progress | None = None) -> UnitResult:
    """The unit of work. Pure: inputs in, temporary parts and stats out."""
    nets = trusted_networks(task.options.trusted_proxies)
    writer = PartWriter(task.case_dir, f"{task.unit_id}")
    results = [ingest_file(f, task.options, writer, nets, progress) for f in task.files]
    parts = writer.close()
    return UnitResult(task.unit_id, results, parts)


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def worker_init() -> None:
    """Process-pool initialiser (spawned workers): nothing global to set beyond the environment."""
    os.environ.setdefault("POLARS_MAX_THREADS", "1")


__all__ = ["FileResult", "FileTask", "PartInfo", "UnitResult", "UnitTask", "Detection", "run_unit"]
