"""Ingest's unit of work: a batch of files → Parquet parts + per-file stats. A pure function.

The unit holds no global state and writes only temporary part files inside the case directory; the
driver decides what becomes part of the case. The same function runs in-process, in a spawn-based
process pool, or could run on a cluster for evidence that outgrows one machine.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..clients import trusted_networks
from ..errors import InputReadError
from ..schema import PARTITION_COLUMN, REJECT_TEXT_MAX, conform_rejects, empty_rejects
from ..secrets import mask_text
from . import detect, get
from .base import Detection, FileContext, IngestOptions, Ingestor, finalize, local_time_note
from .reader import (
    BOM,
    CHUNK_BYTES,
    HEAD_BYTES,
    MAX_CHUNK_LINES,
    EvidenceFile,
    LineChunk,
    head_lines,
    iter_line_chunks,
    prefetch,
    split_block,
    split_chunks,
)

FLUSH_ROWS = 250_000
FLUSH_BYTES = 128 * 1024 * 1024
SMALL_FILE = 8 * 1024 * 1024  # stored size up to which a file is read whole and batched with others
SMALL_CONTENT = 32 * 1024 * 1024  # ... if its decompressed content is no bigger than this
BATCH_LINES = 300_000
BATCH_BYTES = 32 * 1024 * 1024

Progress = Callable[[int, int], None]  # (lines, bytes) since the last call


@dataclass(frozen=True)
class FileTask:
    abs_path: str
    rel_path: str  # as recorded in the manifest (source_file)
    observer: str
    size: int
    # A byte range of a big plain-text file (several workers share it; the driver hashes the file and
    # merges the ranges' results into one manifest entry): [start, end) and the line number at start.
    byte_range: tuple[int, int] | None = None
    first_line: int = 1


@dataclass(frozen=True)
class UnitTask:
    unit_id: str
    case_dir: str
    files: tuple[FileTask, ...]
    options: IngestOptions
    # Workers running side by side share the memory budget: each buffers fewer rows before a write.
    flush_rows: int = FLUSH_ROWS


@dataclass
class FileResult:
    """One manifest entry (see DESIGN.md, "The case directory")."""

    path: str
    observer: str
    abs_path: str = ""  # where the evidence was read from (explain re-reads raw lines from it)
    status: str = "ingested"  # ingested | partial | unknown | error | empty | duplicate | skipped
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
        return {
            f.name: (list(v) if isinstance(v := getattr(self, f.name), list) else v) for f in fields(self)
        }


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
        self.buffered_bytes = 0
        self.seq = 0
        self.parts: list[PartInfo] = []
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: list[Future[None]] = []

    def add(self, events: pl.DataFrame, rejects: pl.DataFrame | None) -> None:
        if events.height:
            self.events.append(events)
            self.buffered += events.height
            self.buffered_bytes += events.estimated_size()
        if rejects is not None and rejects.height:
            self.rejects.append(rejects)
            self.buffered += rejects.height
            self.buffered_bytes += rejects.estimated_size()
        # By rows and by size: wide rows (HAR extras, long user agents) must not pile up in memory, and
        # neither must the rejects of a file of millions of blank lines.
        if self.buffered >= self.flush_rows or self.buffered_bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Hand the buffered frames to the writer thread (concatenate, split by day, write)."""
        events, self.events = self.events, []
        rejects, self.rejects = self.rejects, []
        self.buffered = 0
        self.buffered_bytes = 0
        if events or rejects:
            # Back-pressure: at most one write in flight, so buffered frames cannot pile up in memory.
            while self._pending:
                self._pending.pop(0).result()
            self._pending.append(self._pool.submit(self._write_all, events, rejects))

    def _write_all(self, events: list[pl.DataFrame], rejects: list[pl.DataFrame]) -> None:
        if events:
            frame = pl.concat(events, rechunk=False)
            for day, part in _by_day(frame):
                self._write(part, f"events/{PARTITION_COLUMN}={day.isoformat()}", "events")
        if rejects:
            self._write(pl.concat(rejects), "rejects", "rejects")

    def _write(self, frame: pl.DataFrame, subdir: str, kind: str) -> None:
        self.seq += 1
        name = f"part-{self.prefix}-{self.seq:05d}.parquet"
        final = f"{subdir}/{name}"
        tmp = f"{subdir}/.{name}.tmp"
        files = frame.get_column("source_file").cast(pl.String).unique().sort().to_list()
        target = self.case_dir / tmp
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_parquet(frame, target)
        self.parts.append(PartInfo(final, tmp, kind, frame.height, files))

    def close(self) -> list[PartInfo]:
        self.flush()
        self._pool.shutdown(wait=True)
        for fut in self._pending:
            fut.result()
        return sorted(self.parts, key=lambda p: p.path)


def _by_day(frame: pl.DataFrame) -> list[tuple[Any, pl.DataFrame]]:
    """The frame split by UTC day. Logs are written in time order, so a day is usually one contiguous run
    of rows: then the parts are zero-copy slices; otherwise rows are gathered per day."""
    days = frame.get_column("ts").dt.date()
    change = (days != days.shift(1)).fill_null(True)
    starts = change.arg_true().to_list()
    run_days = days.gather(starts).to_list()
    if len(set(run_days)) == len(run_days):
        bounds = [*starts, frame.height]
        return [(d, frame.slice(a, b - a)) for d, a, b in zip(run_days, bounds, bounds[1:], strict=False)]
    keyed = frame.with_columns(days.alias(PARTITION_COLUMN))
    parts = keyed.partition_by(PARTITION_COLUMN, as_dict=True, include_key=False)
    return [(day, part) for (day,), part in parts.items()]


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    frame.write_parquet(path, compression="zstd", compression_level=1, statistics=True)


@dataclass
class _Member:
    """One file's lines inside a parse batch."""

    result: FileResult
    observer: str
    start: int  # global index of the file's first line in the batch
    n: int  # lines
    first_line: int = 1  # line number of its first line in the file (> 1 for later chunks of a big file)
    byte_base: int = 0  # where the file starts in the batch's bytes (offsets are reported per file)


@dataclass
class _Batch:
    """Lines of one or more files of the same format, parsed by one vectorised call.

    Small files are added whole and cut into lines once, together, when the batch is processed: the
    per-file cost is a read, a hash and a newline count, not a polars pipeline.
    """

    ingestor: Ingestor
    ctx: FileContext
    members: list[_Member] = field(default_factory=list)
    contents: list[bytes] = field(default_factory=list)
    cut_short: list[int] = field(default_factory=list)  # batch-wide indices of lines cut by damage
    chunk: LineChunk | None = None
    lines: int = 0
    nbytes: int = 0

    def add_content(self, result: FileResult, content: bytes, observer: str, damaged: bool = False) -> None:
        """A whole small file; ``damaged``: its reading stopped at corruption, so a last line without
        its newline was cut there and is a reject, not an event with a truncated value."""
        base = self.nbytes
        if content.startswith(BOM):  # a UTF-8 byte-order mark is not part of the first line
            content = content[len(BOM) :]
            base -= len(BOM)
        n = content.count(b"\n")
        if content and not content.endswith(b"\n"):
            content += b"\n"  # the last line without a newline is a line
            n += 1
            if damaged:
                self.cut_short.append(self.lines + n - 1)
        self.members.append(_Member(result, observer, self.lines, n, 1, base))
        self.contents.append(content)
        self.lines += n
        self.nbytes += len(content)

    def add_chunk(self, result: FileResult, chunk: LineChunk, observer: str) -> None:
        """A chunk of a big file streamed on its own (offsets in the chunk are already the file's)."""
        self.chunk = chunk
        self.members.append(_Member(result, observer, 0, chunk.lines.len(), chunk.first_line, 0))
        self.lines += chunk.lines.len()
        self.nbytes += len(chunk.raw)

    @property
    def full(self) -> bool:
        return self.lines >= BATCH_LINES or self.nbytes >= BATCH_BYTES

    def cut(self) -> LineChunk:
        if self.chunk is None:
            opts = self.ctx.options
            self.chunk = split_block(b"".join(self.contents), 0, 1, opts.max_line, self.ingestor.invalid_utf8)  # type: ignore[arg-type]
            self.chunk.cut_short = self.cut_short
            self.contents = []
        return self.chunk

    def member_index(self, global_idx: np.ndarray) -> np.ndarray:
        starts = np.asarray([m.start for m in self.members])
        return np.searchsorted(starts, global_idx, side="right") - 1


def _frame(batch: _Batch, chunk: LineChunk) -> pl.DataFrame:
    """Lines with their file, line number and the batch-wide index ``_idx``."""
    counts = np.asarray([m.n for m in batch.members])
    if int(counts.sum()) != chunk.lines.len():  # cannot happen with \n-terminated members; be safe
        raise AssertionError(f"batch line count {chunk.lines.len()} != {int(counts.sum())}")
    file_idx = np.repeat(np.arange(len(batch.members)), counts)
    starts = np.asarray([m.start for m in batch.members])
    firsts = np.asarray([m.first_line for m in batch.members])
    idx = np.arange(chunk.lines.len())
    frame = pl.DataFrame(
        {
            "line": chunk.lines,
            "source_line": pl.Series(idx - starts[file_idx] + firsts[file_idx], dtype=pl.UInt64),
            "_idx": pl.Series(idx, dtype=pl.UInt32),
        }
    )
    if len(batch.members) == 1:  # a chunk of one file: constants, not a gathered string per row
        m = batch.members[0]
        frame = frame.with_columns(
            pl.lit(m.result.path).alias("source_file"), pl.lit(m.observer).alias("_file_observer")
        )
    else:
        paths = pl.Series([m.result.path for m in batch.members], dtype=pl.String)
        observers = pl.Series([m.observer for m in batch.members], dtype=pl.String)
        frame = frame.with_columns(
            paths.gather(file_idx).alias("source_file"), observers.gather(file_idx).alias("_file_observer")
        )
    return split_chunks(frame)


#: Why the last line of a damaged file is not an event.
CUT_SHORT = "line cut short: the file is corrupt or truncated here"


def _process(batch: _Batch, writer: PartWriter, progress: Progress | None) -> None:
    """Parse, normalise and buffer a batch; add per-file counts to each member's result."""
    chunk = batch.cut()
    frame = _frame(batch, chunk)
    rejects = []
    # Lines that are rejects before any parse: too long to keep, or cut short by a damaged file.
    forced = {
        i: f"line longer than {batch.ctx.options.max_line} bytes ({n} bytes)"
        for i, n in chunk.too_long.items()
    }
    forced.update({i: CUT_SHORT for i in chunk.cut_short})
    if forced:
        idx = pl.Series(list(forced), dtype=pl.UInt32).implode()
        rows = frame.filter(pl.col("_idx").is_in(idx))
        reasons = [forced[i] for i in rows.get_column("_idx").to_list()]
        rejects.append(
            rows.select("_idx", "source_line", "source_file").with_columns(pl.Series("reason", reasons))
        )
        frame = frame.filter(~pl.col("_idx").is_in(idx))
    batch.ctx.raw = chunk.raw if not forced and not chunk.invalid_idx else None
    events, rej = batch.ingestor.parse(frame, batch.ctx) if frame.height else (pl.DataFrame(), None)
    batch.ctx.raw = None
    if rej is not None and rej.height:
        if "source_file" not in rej.columns:
            rej = rej.join(frame.select("_idx", "source_file"), on="_idx", how="left")
        rejects.append(rej.select("_idx", "source_line", "reason", "source_file"))
    events = finalize(events, batch.ctx, batch.ingestor.name, batch.ingestor.premasked)
    rej_all = pl.concat(rejects, how="diagonal_relaxed") if rejects else None
    _count(batch, chunk, events, rej_all)
    writer.add(events, _reject_rows(rej_all, batch, chunk) if rej_all is not None else None)
    if progress:
        progress(batch.lines, batch.nbytes)


def _count(batch: _Batch, chunk: LineChunk, events: pl.DataFrame, rejects: pl.DataFrame | None) -> None:
    by_file = {m.result.path: m.result for m in batch.members}
    for m in batch.members:
        m.result.lines_read += m.n
    if chunk.invalid_idx:
        for i in batch.member_index(np.asarray(chunk.invalid_idx)):
            batch.members[int(i)].result.invalid_utf8_lines += 1
    if events.height:
        stats = events.group_by(pl.col("source_file").cast(pl.String)).agg(
            pl.len().alias("n"), pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi")
        )
        for f, n, lo, hi in stats.iter_rows():
            r = by_file[f]
            r.rows += n
            r.first_ts = _min_iso(r.first_ts, lo)
            r.last_ts = _max_iso(r.last_ts, hi)
    if rejects is not None and rejects.height:
        for f, n in rejects.group_by("source_file").agg(pl.len()).iter_rows():
            by_file[f].rejected += n
    _apply_dst(batch.ctx, by_file)


def _apply_dst(ctx: FileContext, by_file: dict[str, FileResult]) -> None:
    """Move the local-time counts gathered by finalize() onto the files' results."""
    for f, (amb, gap) in ctx.dst.items():
        r = by_file.get(f)
        if r is None:
            continue
        r.dst_ambiguous += amb
        r.dst_nonexistent += gap
        note = local_time_note(ctx.options)
        if note not in r.notes:
            r.notes.append(note)
    ctx.dst.clear()


def _min_iso(current: str | None, value: Any) -> str | None:
    iso = _iso(value)
    return iso if current is None or (iso is not None and iso < current) else current


def _max_iso(current: str | None, value: Any) -> str | None:
    iso = _iso(value)
    return iso if current is None or (iso is not None and iso > current) else current


def _reject_rows(rej: pl.DataFrame, batch: _Batch, chunk: LineChunk) -> pl.DataFrame:
    """Reject rows with provenance, the exact line's sha256 and its masked, truncated text."""
    if rej.height == 0:
        return empty_rejects()
    shas, texts, offsets = [], [], []
    glob = rej.get_column("_idx").to_numpy()
    for g, mi in zip(glob.tolist(), batch.member_index(glob).tolist(), strict=True):
        m = batch.members[mi]
        raw = chunk.raw_line(g)
        shas.append(chunk.line_sha.get(g) or hashlib.sha256(raw).hexdigest())
        text = raw[: REJECT_TEXT_MAX * 4].decode("utf-8", "backslashreplace")[:REJECT_TEXT_MAX]
        texts.append(mask_text(text))
        offsets.append(int(chunk.offsets[g]) - m.byte_base)
    out = rej.select("source_line", "reason", "source_file").with_columns(
        pl.Series("byte_offset", offsets, dtype=pl.UInt64),
        pl.Series("line_sha256", shas, dtype=pl.String),
        pl.Series("text", texts, dtype=pl.String),
        pl.lit(batch.ingestor.name).alias("source_format"),
    )
    return conform_rejects(out)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fill_digests(result: FileResult, evidence: EvidenceFile) -> None:
    d = evidence.digests
    result.sha256, result.content_sha256 = d.sha256, d.content_sha256
    result.bytes, result.content_bytes, result.compression = d.bytes, d.content_bytes, d.compression


def _detect(
    task: FileTask, head: bytes, options: IngestOptions, result: FileResult, cache: dict[str, Detection]
) -> Detection | None:
    """Detection, remembered per file-name shape: ten thousand ALB files share one shape, and each is only
    checked against the remembered format (a trial parse of its first lines) instead of every format."""
    shape = _shape(task.rel_path)
    detection = None
    known = cache.get(shape)
    if known is not None and not options.format and not options.log_format:
        again = get(known.ingestor).sniff(head_lines(head, 8), task.rel_path)
        if again is not None and again.confidence >= known.confidence - 0.15 and again.params == known.params:
            detection = again
    if detection is None:
        detection = detect(head_lines(head), task.rel_path, options)
        if detection is not None:
            cache[shape] = detection
    if detection is not None:
        ing = get(detection.ingestor)
        result.format, result.variant = ing.name, detection.variant
        result.detected_by, result.confidence = detection.how, detection.confidence
        result.role = options.role or ing.default_role
    return detection


def _shape(rel_path: str) -> str:
    """A file name with its numbers and random tokens blanked: every file of an S3 tree has one shape
    (``…_20221125T1815Z_10.0.2.152_1k78uli7.log.gz`` → ``…_#_#.#.#.#_#.log.gz``)."""
    # Numbers, and any long alphanumeric run (random suffixes such as ``hlgzexuv`` have no digit): a
    # too-coarse shape only costs a full detection, since the remembered format is always re-checked.
    return re.sub(r"[A-Za-z0-9]{6,}|\d+", "#", rel_path)


def worker_ready() -> None:
    """Submitted once per pool worker so that every worker starts (and imports this module) at once."""


def run_unit(task: UnitTask, progress: Progress | None = None) -> UnitResult:
    """The unit of work. Pure: inputs in, temporary parts and stats out.

    Small files are read whole (one read serves hashing, detection and parsing) and their lines are
    batched per format into one vectorised parse; big files stream chunk by chunk.
    """
    nets = trusted_networks(task.options.trusted_proxies)
    writer = PartWriter(task.case_dir, f"{task.unit_id}", task.flush_rows)
    results: list[FileResult] = []
    batches: dict[str, _Batch] = {}
    cache: dict[str, Detection] = {}
    for f in task.files:
        result = FileResult(path=f.rel_path, observer=f.observer, abs_path=f.abs_path)
        results.append(result)
        evidence = EvidenceFile(f.abs_path)
        try:
            # Small files are read whole, unless they decompress to more than a batch: then streamed.
            small = f.size <= SMALL_FILE and f.byte_range is None
            content = evidence.read_all(limit=SMALL_CONTENT) if small else None
            if (
                content is not None
                and len(content) > MAX_CHUNK_LINES
                and content.count(b"\n") > MAX_CHUNK_LINES
            ):
                content = None  # millions of (blank) lines: streamed in chunks of bounded lines
            if content is not None:
                head = content[:HEAD_BYTES]
                if evidence.error is not None and not content:
                    raise evidence.error
            else:
                head = evidence.head()
        except (InputReadError, OSError) as exc:
            if not result.sha256:
                _hash_only(evidence, result)
            result.status, result.error = "error", str(exc)
            continue
        if not head:
            _fill_digests(result, evidence) if content is not None else _hash_only(evidence, result)
            result.status = "empty"
            continue
        detection = _detect(f, head, task.options, result, cache)
        if f.byte_range is not None and (detection is None or not get(detection.ingestor).line_based):
            # The driver split the file because it saw a line format; a range never guesses alone.
            result.status, result.error = "error", "byte range of a file that is not a line-based log"
            continue
        if detection is None:
            _fill_digests(result, evidence) if content is not None else _hash_only(evidence, result)
            result.status = "unknown"
            result.notes.append("no ingestor recognised the first lines; not parsed")
            if evidence.error is not None:  # the damage is part of the story of an unreadable file
                result.error = str(evidence.error)
            continue
        ingestor = get(detection.ingestor)
        ctx = FileContext(f.rel_path, f.observer, task.options, nets, detection)
        if content is not None and ingestor.line_based:
            _fill_digests(result, evidence)
            if evidence.error is not None:
                result.status, result.error = ("partial" if content else "error"), str(evidence.error)
            key = f"{ingestor.name}|{detection.params!r}"
            batch = batches.get(key)
            if batch is None:
                batch = batches[key] = _Batch(ingestor, FileContext("", "", task.options, nets, detection))
            batch.add_content(result, content, f.observer, damaged=evidence.error is not None)
            if batch.full:
                _process(batch, writer, progress)
                del batches[key]
        else:
            _stream_file(f, evidence, ingestor, ctx, result, writer, progress)
    for batch in batches.values():
        _process(batch, writer, progress)
    parts = writer.close()
    return UnitResult(task.unit_id, results, parts)


def _stream_file(
    task: FileTask,
    evidence: EvidenceFile,
    ingestor: Ingestor,
    ctx: FileContext,
    result: FileResult,
    writer: PartWriter,
    progress: Progress | None,
) -> None:
    """A big file (or a document format): chunk by chunk, memory bounded whatever its size."""
    try:
        if ingestor.line_based:
            if task.byte_range is not None:
                # Half-size blocks: ranges run in parallel workers with one polars thread each.
                blocks = evidence.range_blocks(*task.byte_range, size=CHUNK_BYTES // 2)
                base, first = task.byte_range[0], task.first_line
            else:
                blocks, base, first = evidence.blocks(), 0, 1
            chunks = prefetch(
                iter_line_chunks(
                    blocks,
                    max_line=ctx.options.max_line,
                    invalid=ingestor.invalid_utf8,
                    base_offset=base,
                    first_line=first,
                )
            )  # type: ignore[arg-type]
            for chunk in chunks:
                batch = _Batch(ingestor, ctx)
                batch.add_chunk(result, chunk, task.observer)
                _process(batch, writer, progress)
        else:
            for events, rejects, n in ingestor.read_document(evidence, ctx):
                events = finalize(events, ctx, ingestor.name, ingestor.premasked) if events.height else events
                result.lines_read += n
                result.rows += events.height
                result.rejected += rejects.height
                if events.height:
                    result.first_ts = _min_iso(result.first_ts, events.get_column("ts").min())
                    result.last_ts = _max_iso(result.last_ts, events.get_column("ts").max())
                writer.add(events, rejects)
                if progress:
                    progress(n, 0)
    except InputReadError as exc:
        result.status = "partial" if result.lines_read else "error"
        result.error = str(exc)
    except OSError as exc:
        result.status = "error"
        result.error = f"cannot read: {exc}"
    if task.byte_range is None:
        _fill_digests(result, evidence)
    _apply_dst(ctx, {result.path: result})
    result.notes.extend(n for n in ctx.notes if n not in result.notes)


def merge_ranges(parts: list[FileResult], digests: dict[str, Any]) -> FileResult:
    """One manifest entry from the results of a file's byte ranges (in file order) and the digests the
    driver computed over the whole file."""
    out = FileResult(path=parts[0].path, observer=parts[0].observer, abs_path=parts[0].abs_path)
    first = next((p for p in parts if p.format), parts[0])
    out.format, out.variant, out.role = first.format, first.variant, first.role
    out.detected_by, out.confidence = first.detected_by, first.confidence
    for key in ("lines_read", "rows", "rejected", "invalid_utf8_lines", "dst_ambiguous", "dst_nonexistent"):
        setattr(out, key, sum(getattr(p, key) for p in parts))
    out.first_ts = min((p.first_ts for p in parts if p.first_ts), default=None)
    out.last_ts = max((p.last_ts for p in parts if p.last_ts), default=None)
    out.notes = list(dict.fromkeys(n for p in parts for n in p.notes))
    errors = [p.error for p in parts if p.error]
    if errors:
        out.error = errors[0]
        out.status = "partial" if out.lines_read else "error"
    for key, value in digests.items():
        setattr(out, key, value)
    return out


def _hash_only(evidence: EvidenceFile, result: FileResult) -> None:
    """Read a file we do not parse to the end, so the manifest still proves what it was."""
    try:
        for _ in evidence.blocks():
            pass
    except (InputReadError, OSError) as exc:
        result.error = str(exc)
    _fill_digests(result, evidence)


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


__all__ = ["FileResult", "FileTask", "PartInfo", "UnitResult", "UnitTask", "Detection", "run_unit"]
