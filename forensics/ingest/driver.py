"""The ingest driver: resolve sources, plan units, run them (in-process or in a spawn pool), commit.

The driver is the only writer of manifest.json. It decides duplicates (content already in the case,
also a rotated-and-compressed copy), renames the units' temporary parts into place, and appends the
manifest entries last, so a crash never leaves a half-ingested file visible.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import math
import multiprocessing
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from ..case import Case
from ..errors import ForensicsError
from . import detect, get
from .base import IngestOptions
from .reader import HEAD_BYTES, head_lines, sniff_compression
from .unit import (
    FLUSH_ROWS,
    FileResult,
    FileTask,
    PartInfo,
    UnitResult,
    UnitTask,
    merge_ranges,
    new_run_id,
    run_unit,
    worker_ready,
)

UNIT_MAX_FILES = 400
UNIT_MAX_BYTES = 256 * 1024 * 1024
POOL_MIN_BYTES = 16 * 1024 * 1024
#: An uncompressed line-based log at least this big is parsed as byte ranges by several workers.
SPLIT_MIN_BYTES = 96 * 1024 * 1024
RANGE_BYTES = 256 * 1024 * 1024

_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".zst", ".xz")


def _strip_rotation(name: str) -> str:
    """One rotation suffix off: a compression extension, or ``.N`` / ``-N`` / ``-YYYYMMDD[HH]``."""
    for ext in _COMPRESSED_SUFFIXES:
        if name.endswith(ext):
            return name[: -len(ext)]
    digits = len(name) - len(name.rstrip("0123456789"))
    if digits and len(name) > digits and name[-digits - 1] in ".-":
        return name[: -digits - 1]
    return name


def rotation_base(rel_path: str) -> str:
    """``gw1/access.log.2.gz`` → ``gw1/access.log``: the logrotate set a file belongs to.

    String methods, not a regex anchored at the end: the file names of an S3 tree are long, and an
    unanchorable ``$`` regex rescans them from every position."""
    base = rel_path
    for _ in range(3):
        stripped = _strip_rotation(base)
        if stripped == base:
            break
        base = stripped
    return base


@dataclass
class IngestReport:
    """What one ``forensics ingest`` did, for the closing summary."""

    files: list[FileResult] = field(default_factory=list)
    skipped_known: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, Any]:
        per_format: dict[str, dict[str, int]] = defaultdict(
            lambda: {"files": 0, "lines": 0, "rows": 0, "rejected": 0}
        )
        for f in self.files:
            if f.status in ("ingested", "partial"):
                t = per_format[f.format or "?"]
                t["files"] += 1
                t["lines"] += f.lines_read
                t["rows"] += f.rows
                t["rejected"] += f.rejected
        by_status: dict[str, int] = defaultdict(int)
        for f in self.files:
            by_status[f.status] += 1
        return {
            "lines": sum(f.lines_read for f in self.files if f.status in ("ingested", "partial")),
            "rows": sum(f.rows for f in self.files if f.status in ("ingested", "partial")),
            "rejected": sum(f.rejected for f in self.files if f.status in ("ingested", "partial")),
            "bytes": sum(f.bytes for f in self.files),
            "status": dict(by_status),
            "formats": dict(per_format),
            "already_in_case": len(self.skipped_known),
        }


# --------------------------------------------------------------------------------------------------
# Sources


#: Manifest statuses of inputs that yielded nothing and are read again by a later ingest.
RETRIED_STATUSES = ("unknown", "error")


@dataclass
class Sources:
    """What the command line names: the evidence root, the files to read, and what was passed over."""

    root: Path
    files: list[Path]
    passed_over: list[FileResult]  # symbolic links, special files, unlistable folders (with the reason)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter((self.root, self.files, self.passed_over))


def resolve_sources(sources: Iterable[str]) -> Sources:
    """Files, directories (recursive) and globs → the evidence root and its files. Missing paths are an
    error; inside a directory, symbolic links are not followed and special files are not read, and
    both are reported rather than dropped."""
    files: list[Path] = []
    anchors: list[Path] = []
    passed: list[tuple[str, str, str]] = []  # (absolute path, status, reason)
    for src in sources:
        matches = (
            [Path(p) for p in sorted(glob.glob(src, recursive=True))] if glob.has_magic(src) else [Path(src)]
        )
        if not matches or not all(m.exists() for m in matches):
            raise ForensicsError(
                f"no such file or directory: {src}", hint="check the path (globs are expanded)"
            )
        for m in matches:
            m = m.resolve()
            if m.is_dir():
                anchors.append(m.parent)
                files.extend(Path(p) for p in _regular_files_under(str(m), passed))
            elif m.is_file():
                anchors.append(m.parent)
                files.append(m)
            else:
                raise ForensicsError(f"not a regular file or directory: {m}")
    if not files:
        raise ForensicsError("no files found in the given sources", hint="give files, directories or globs")
    root = Path(os.path.commonpath([str(a) for a in anchors]))
    unique = list(dict.fromkeys(files))
    passed_over = [
        FileResult(
            path=Path(p).relative_to(root).as_posix(),
            observer="",
            abs_path=p,
            status=status,
            **({"error": why} if status == "error" else {"notes": [why]}),
        )
        for p, status, why in passed
    ]
    return Sources(root, unique, passed_over)


def _regular_files_under(top: str, passed: list[tuple[str, str, str]]) -> list[str]:
    """Regular files below ``top``, in path order; symbolic links (not followed: they may leave the
    evidence or loop), special files and folders that cannot be listed go to ``passed`` with why.

    ``os.scandir`` knows each entry's type from the directory listing itself: an S3 tree of ten
    thousand files costs no stat call per file."""
    found: list[str] = []
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                listing = list(entries)
        except OSError as exc:
            passed.append((folder, "error", f"cannot list this folder: {exc.strerror or exc}"))
            continue
        for entry in listing:
            if entry.is_symlink():
                passed.append(
                    (entry.path, "skipped", "symbolic link inside an evidence folder: not followed")
                )
            elif entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                found.append(entry.path)
            else:
                passed.append(
                    (entry.path, "skipped", "not a regular file (FIFO, socket or device): not read")
                )
    passed.sort(key=lambda p: p[0].split(os.sep))
    return sorted(found, key=lambda p: p.split(os.sep))


def check_case_location(case_dir: Path, sources: Iterable[str]) -> None:
    """A case inside the evidence would ingest itself and modify the evidence: refuse."""
    case = case_dir.resolve()
    for src in sources:
        if glob.has_magic(src):
            # A glob's evidence is what it matches, the case folder too once it exists: ``ev/*`` holds
            # ``ev/case``, ``ev[4]`` the folder ev4; ``*.log`` only files.
            pattern = os.path.abspath(src)
            patterns = {pattern, pattern.replace(f"{os.sep}**{os.sep}", os.sep)}  # ** also matches no folder
            here = os.path.abspath(case_dir)
            candidates = (here, *map(str, Path(here).parents))
            if any(fnmatch.fnmatchcase(p, pat) for p in candidates for pat in patterns):
                raise ForensicsError(
                    f"the case directory {case_dir} is inside the evidence {src}",
                    hint="put --case outside the evidence; evidence is read-only",
                )
        for match in sorted(glob.glob(src, recursive=True)) if glob.has_magic(src) else [src]:
            base = Path(match).resolve()
            if base.is_dir() and (case == base or base in case.parents):
                raise ForensicsError(
                    f"the case directory {case_dir} is inside the evidence {src}",
                    hint="put --case outside the evidence; evidence is read-only",
                )


# --------------------------------------------------------------------------------------------------
# Planning


def plan_units(tasks: list[FileTask], run_id: str, case_dir: str, options: IngestOptions) -> list[UnitTask]:
    """Batch files into units: a logrotate set stays together (its copies deduplicate inside one unit),
    many small files share a unit, a big file gets its own."""
    sets: dict[str, list[FileTask]] = defaultdict(list)
    for t in tasks:
        sets[rotation_base(t.rel_path)].append(t)
    units: list[list[FileTask]] = []
    current: list[FileTask] = []
    size = 0
    # In path order: vendor trees are laid out by date (AWSLogs/…/YYYY/MM/DD/), so a unit covers a few
    # days and writes a few day partitions, not one tiny part per day it happens to touch.
    for key in sorted(sets):
        group = sets[key]
        gsize = sum(t.size for t in group)
        if current and (len(current) + len(group) > UNIT_MAX_FILES or size + gsize > UNIT_MAX_BYTES):
            units.append(current)
            current, size = [], 0
        current.extend(group)
        size += gsize
    if current:
        units.append(current)
    return [UnitTask(f"{run_id}-{i:04d}", case_dir, tuple(u), options) for i, u in enumerate(units)]


def split_points(task: FileTask, options: IngestOptions, n_workers: int) -> list[int] | None:
    """Where to cut a big plain-text log into byte ranges (each cut just after a newline), or None when
    the file is compressed, small, or not a line-based format: then one worker streams it whole."""
    if n_workers < 2 or task.size < SPLIT_MIN_BYTES:
        return None
    k = n_workers * math.ceil(task.size / (n_workers * RANGE_BYTES))
    cuts: list[int] = []
    with open(task.abs_path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
        if sniff_compression(head) is not None:
            return None
        detection = detect(head_lines(head), task.rel_path, options)
        if detection is None or not get(detection.ingestor).line_based:
            return None
        for i in range(1, k):
            pos = max(i * task.size // k, cuts[-1] if cuts else 0)
            fh.seek(pos)
            while True:
                window = fh.read(1 << 20)
                if not window:
                    break
                nl = window.find(b"\n")
                if nl >= 0:
                    pos += nl + 1
                    break
                pos += len(window)
            if (not cuts or pos > cuts[-1]) and pos < task.size:
                cuts.append(pos)
    return cuts or None


class _FileScan(threading.Thread):
    """One sequential read of a split file in the driver: its sha256 (the ranges cannot hash it) and the
    number of lines before each cut (the line number each range starts at)."""

    def __init__(self, path: str, cuts: list[int]) -> None:
        super().__init__(daemon=True)
        self.path, self.cuts = path, cuts
        self.lines_before: dict[int, int] = {}
        self.sha256 = ""
        self.size = 0
        self.error: OSError | None = None
        self.cond = threading.Condition()

    def run(self) -> None:
        # Counting first (to the last cut only), so the later ranges can start early; hashing after.
        lines = pos = 0
        pending = list(self.cuts)
        sha = hashlib.sha256()
        try:
            with open(self.path, "rb") as fh:
                while pending and (block := fh.read(16 << 20)):
                    while pending and pending[0] <= pos + len(block):
                        with self.cond:
                            self.lines_before[pending[0]] = lines + block.count(b"\n", 0, pending[0] - pos)
                            self.cond.notify_all()
                        pending.pop(0)
                    lines += block.count(b"\n")
                    pos += len(block)
                fh.seek(0)
                pos = 0
                while block := fh.read(16 << 20):
                    sha.update(block)
                    pos += len(block)
        except OSError as exc:
            self.error = exc
        with self.cond:
            self.sha256, self.size = sha.hexdigest(), pos
            for cut in pending:  # the file shrank: the range will report what it could not read
                self.lines_before[cut] = lines
            self.cond.notify_all()

    def first_line(self, cut: int) -> int:
        with self.cond:
            self.cond.wait_for(lambda: cut in self.lines_before)
            return self.lines_before[cut] + 1


@dataclass
class _Split:
    """A file parsed as byte ranges: the scan, and the ranges' results as they arrive."""

    scan: _FileScan
    sizes: dict[str, int]  # unit id → bytes of its range
    results: dict[str, UnitResult] = field(default_factory=dict)


def plan_ranges(
    task: FileTask, cuts: list[int], run_id: str, index: int, case_dir: str, options: IngestOptions
) -> list[UnitTask]:
    """One unit per byte range; ``first_line`` is filled in when the scan has counted that far."""
    bounds = [0, *cuts, task.size]
    return [
        UnitTask(
            f"{run_id}-r{index:03d}-{i:03d}",
            case_dir,
            (replace(task, byte_range=(bounds[i], bounds[i + 1])),),
            options,
        )
        for i in range(len(bounds) - 1)
    ]


def _range_bytes(u: UnitTask) -> int:
    start, end = u.files[0].byte_range or (0, 0)
    return end - start


# --------------------------------------------------------------------------------------------------
# Running


@contextmanager
def _worker_env(threads: int):
    """Spawned workers inherit the environment at spawn: cap polars' pool per worker."""
    old = os.environ.get("POLARS_MAX_THREADS")
    os.environ["POLARS_MAX_THREADS"] = str(threads)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("POLARS_MAX_THREADS", None)
        else:
            os.environ["POLARS_MAX_THREADS"] = old


def _sha256_file(path: Path) -> str | None:
    """The stored file's sha256; None when it cannot be read (the unit reports that for the file)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


Callback = Callable[[str, dict[str, Any]], None]


def ingest(
    sources: list[str],
    case_dir: str | os.PathLike[str],
    options: IngestOptions | None = None,
    *,
    workers: int | None = None,
    on_event: Callback | None = None,
    resolved: Sources | None = None,
) -> IngestReport:
    """Ingest evidence into a case. ``on_event(kind, data)`` reports progress (plan, lines, unit, file)."""
    options = options or IngestOptions()
    notify = on_event or (lambda kind, data: None)
    check_case_location(Path(case_dir), sources)
    root, files, passed_over = resolved or resolve_sources(sources)
    case_prefix = str(Path(case_dir).resolve()) + os.sep
    files = [f for f in files if not str(f).startswith(case_prefix)]
    case = Case.create(case_dir)
    manifest = case.load_manifest()
    report = IngestReport()

    # Already in the case: same size and same sha256 of the stored file → nothing to do. A file that
    # was unknown or unreadable, and yielded nothing, is read again (with the --format given now, say)
    # and its new entry replaces the old one.
    retry = {
        e["path"]
        for e in manifest["inputs"]
        if e.get("status") in RETRIED_STATUSES and not e.get("rows") and not e.get("rejected")
    }
    settled = [e for e in manifest["inputs"] if e["path"] not in retry]
    by_size: dict[int, set[str]] = defaultdict(set)
    for e in settled:
        by_size[e.get("bytes", -1)].add(e.get("sha256", ""))
    known_paths = {e["path"] for e in settled}
    tasks: list[FileTask] = []
    retried: set[str] = set()
    for f in files:
        try:
            size = f.stat().st_size
        except OSError:  # unreadable: the unit reports it for this file
            size = 0
        rel = f.relative_to(root).as_posix()
        # The file's sha256, read once and only when it is needed (its size or its name is known).
        digest = _sha256_file(f) if size in by_size or (rel in known_paths and rel not in retry) else None
        if digest is not None and digest in by_size.get(size, ()):
            report.skipped_known.append(rel)
            continue
        if rel in retry:
            retried.add(rel)
        elif rel in known_paths:  # same name, different content: keep both, apart
            rel = f"{rel}@{(digest or 'unreadable')[:12]}"
        tasks.append(FileTask(str(f), rel, rotation_base(rel), size))
    if retried:
        manifest["inputs"] = [e for e in manifest["inputs"] if e["path"] not in retried]
    listed = {(e["path"], e.get("status")) for e in manifest["inputs"]}
    for p in passed_over:  # symbolic links and special files in the evidence folders, said once
        if (p.path, p.status) not in listed:
            manifest["inputs"].append(p.entry())
        report.files.append(p)

    run_id = new_run_id()
    n_workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    splits: dict[str, _Split] = {}  # unit id → the split file it is a range of
    range_units: list[UnitTask] = []
    whole: list[FileTask] = []
    for t in tasks:
        try:
            cuts = split_points(t, options, n_workers)
        except OSError:  # unreadable now: the unit reports it for this file
            cuts = None
        if cuts is None:
            whole.append(t)
            continue
        scan = _FileScan(t.abs_path, cuts)
        scan.start()
        ranges = plan_ranges(t, cuts, run_id, len(range_units), str(case.path), options)
        split = _Split(scan, {u.unit_id: _range_bytes(u) for u in ranges})
        for u in ranges:
            splits[u.unit_id] = split
        range_units.extend(ranges)
    units = range_units + plan_units(whole, run_id, str(case.path), options)
    total_bytes = sum(t.size for t in tasks)
    notify(
        "plan",
        {"files": len(tasks), "bytes": total_bytes, "units": len(units), "known": len(report.skipped_known)},
    )
    known_content = {
        e["content_sha256"]: e["path"]
        for e in manifest["inputs"]
        if e.get("content_sha256") and e.get("status") in ("ingested", "partial", "unknown", "empty")
    }

    last_save = [0.0]

    def commit(res: UnitResult) -> None:
        split = splits.get(res.unit_id)
        if split is not None:
            # A byte range: the file is committed, whole, when its last range and the scan are done.
            split.results[res.unit_id] = res
            notify(
                "unit",
                {
                    "files": 0,
                    "bytes": split.sizes[res.unit_id],
                    "lines": sum(f.lines_read for f in res.files),
                },
            )
            if len(split.results) < len(split.sizes):
                return
            split.scan.join()
            ordered = [split.results[k] for k in sorted(split.results)]
            scan = split.scan
            merged = merge_ranges(
                [r.files[0] for r in ordered],
                {
                    "sha256": scan.sha256,
                    "content_sha256": scan.sha256,
                    "bytes": scan.size,
                    "content_bytes": scan.size,
                },
            )
            if scan.error is not None and not merged.error:
                merged.status, merged.error = "partial", f"cannot read: {scan.error}"
            res = UnitResult(ordered[0].unit_id, [merged], [p for r in ordered for p in r.parts])
        _commit_unit(case, manifest, res, known_content)
        # The manifest is rewritten at most every two seconds (and at the end): parts renamed in between
        # are unlisted until then, and a crash leaves them as orphans, never as half a file.
        if time.monotonic() - last_save[0] >= 2.0:
            case.save_manifest(manifest)
            last_save[0] = time.monotonic()
        report.files.extend(res.files)
        counted = split is not None  # its ranges have reported their bytes and lines already
        notify(
            "unit",
            {
                "files": len(res.files),
                "bytes": 0 if counted else sum(f.bytes for f in res.files),
                "lines": 0 if counted else sum(f.lines_read for f in res.files),
            },
        )

    def placed(u: UnitTask) -> UnitTask:
        """A range unit with the line number its range starts at (waits for the scan to get there)."""
        split = splits.get(u.unit_id)
        f = u.files[0]
        if split is None or f.byte_range is None or f.byte_range[0] == 0:
            return u
        return replace(u, files=(replace(f, first_line=split.scan.first_line(f.byte_range[0])),))

    use_pool = n_workers > 1 and len(units) > 1 and (total_bytes >= POOL_MIN_BYTES or bool(splits))
    if use_pool:
        ctx = multiprocessing.get_context("spawn")
        threads = max(1, (os.cpu_count() or 1) // n_workers)
        flush = max(50_000, FLUSH_ROWS * 2 // (n_workers + 2))
        with _worker_env(threads), ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
            # The pool starts a worker per submission while none is idle: start them all now, so that
            # their interpreters load while the scan counts the lines in front of each range.
            for _ in range(min(n_workers, len(units))):
                pool.submit(worker_ready)
            futures = [pool.submit(run_unit, replace(placed(u), flush_rows=flush)) for u in units]
            for fut in as_completed(futures):
                commit(fut.result())
    else:
        for u in units:
            commit(
                run_unit(
                    placed(u),
                    progress=lambda lines, nbytes: notify("lines", {"lines": lines, "bytes": nbytes}),
                )
            )
    case.save_manifest(manifest)
    case.remove_orphans()
    return report


def _commit_unit(case: Case, manifest: dict[str, Any], res: UnitResult, known: dict[str, str]) -> None:
    """Decide duplicates, move the unit's parts into place, then record its files in the manifest."""
    dropped: list[str] = []
    for f in res.files:
        if f.status in ("ingested", "partial", "unknown", "empty") and f.content_sha256:
            first = known.get(f.content_sha256)
            if first is not None and first != f.path:
                f.status, f.duplicate_of = "duplicate", first
                f.notes.append(f"same decompressed content as {first}: adds nothing")
                dropped.append(f.path)
                continue
            known[f.content_sha256] = f.path
    parts = res.parts
    if dropped:
        parts = [_drop_files(case, p, set(dropped)) for p in parts]
    for p in parts:
        if p is None:
            continue
        os.replace(case.path / p.tmp, case.path / p.path)
        manifest["parts"].append({"path": p.path, "kind": p.kind, "rows": p.rows, "files": p.files})
    for f in res.files:
        if f.status == "duplicate":
            f.rows = f.rejected = 0  # its lines were read and matched an earlier copy; none were kept
        manifest["inputs"].append(f.entry())


def _drop_files(case: Case, part: PartInfo, drop: set[str]) -> PartInfo | None:
    """Rewrite a temporary part without the rows of duplicate files (rare: a copy in the same unit)."""
    if not drop & set(part.files):
        return part
    path = case.path / part.tmp
    frame = pl.read_parquet(path, glob=False)
    frame = frame.filter(~pl.col("source_file").cast(pl.String).is_in(list(drop)))
    if frame.height == 0:
        path.unlink()
        return None
    frame.write_parquet(path, compression="zstd", statistics=True)
    return PartInfo(part.path, part.tmp, part.kind, frame.height, sorted(set(part.files) - drop))
