"""Reading evidence whole: the one-call path for small clean files must say exactly what the streaming
path says (content, digests), and a small file that decompresses to much more is streamed instead."""

from __future__ import annotations

import gzip
import hashlib

import polars as pl
import pytest

from forensics.ingest import reader, unit
from forensics.ingest.reader import EvidenceFile, split_block
from forensics.schema import conform_rejects

LINE = '198.51.100.{a} - - [01/Feb/2023:00:{m:02d}:{s:02d} +0000] "GET /api/v1/customers/{i} HTTP/1.1" 200 {b} "-" "curl/8"\n'


def _log(n: int, start: int = 0) -> bytes:
    return "".join(
        LINE.format(a=i % 200, m=i // 60 % 60, s=i % 60, i=1000 + i, b=100 + i % 900)
        for i in range(start, start + n)
    ).encode()


def _streamed(path) -> tuple[bytes, dict]:
    """What the block-by-block reader delivers for the same file."""
    ev = EvidenceFile(path)
    content = b"".join(ev.blocks())
    return content, vars(ev.digests)


@pytest.mark.parametrize(
    "name, stored",
    [
        ("plain.log", _log(300)),
        ("one.log.gz", gzip.compress(_log(300))),
        ("members.log.gz", gzip.compress(_log(200)) + gzip.compress(_log(100, 200))),
        ("padded.log.gz", gzip.compress(_log(300)) + b"\0" * 16),
        # a member per ten lines, as some shippers write: read by the streaming reader (see WHOLE_GZIP_MEMBERS)
        ("many.log.gz", b"".join(gzip.compress(_log(10, k)) for k in range(0, 300, 10))),
    ],
)
def test_whole_file_read_matches_the_stream(tmp_path, name, stored):
    path = tmp_path / name
    path.write_bytes(stored)
    ev = EvidenceFile(path)
    content = ev.read_all(limit=10_000_000)
    streamed, digests = _streamed(path)
    assert content == streamed and content.count(b"\n") == 300
    assert vars(ev.digests) == digests
    assert ev.digests.sha256 == hashlib.sha256(stored).hexdigest()
    assert ev.digests.content_sha256 == hashlib.sha256(content).hexdigest()
    assert ev.error is None


def test_damaged_gzip_read_whole_keeps_what_precedes_the_damage(tmp_path):
    packed = gzip.compress(_log(300))
    for name, stored in {"cut.log.gz": packed[: len(packed) // 2], "tail.log.gz": packed + b"junk"}.items():
        path = tmp_path / name
        path.write_bytes(stored)
        ev = EvidenceFile(path)
        content = ev.read_all(limit=10_000_000)
        assert ev.error is not None and str(ev.error).startswith("corrupt or truncated gzip")
        assert content and _log(300).startswith(content)
        assert ev.digests.sha256 == hashlib.sha256(stored).hexdigest()  # still the file's own digest


def test_content_beyond_the_limit_is_not_held(tmp_path):
    data = _log(2000)
    for name, stored in {"a.log.gz": gzip.compress(data), "b.log": data}.items():
        path = tmp_path / name
        path.write_bytes(stored)
        assert EvidenceFile(path).read_all(limit=len(data) - 1) is None
        assert EvidenceFile(path).read_all(limit=len(data)) == data


def test_a_small_gzip_that_decompresses_big_is_streamed_in_chunks(ingest_files, monkeypatch):
    """A few MB of gzip can hold hundreds of MB of log: such a file is streamed like a big one, so memory
    stays bounded; nothing about it changes in the case."""
    data = _log(5000)
    monkeypatch.setattr(unit, "SMALL_CONTENT", len(data) // 4)
    streamed: list[str] = []
    real = unit._stream_file
    monkeypatch.setattr(
        unit,
        "_stream_file",
        lambda task, *a: streamed.append(task.rel_path.rsplit("/", 1)[-1]) or real(task, *a),
    )
    case = ingest_files({"access.log.1.gz": gzip.compress(data), "small.log": _log(10, 9000)})
    assert streamed == ["access.log.1.gz"]  # the small one was read whole and batched
    entry = case.entry("access.log.1.gz")
    counts = (entry["status"], entry["lines_read"], entry["rows"], entry["rejected"])
    assert counts == ("ingested", 5000, 5000, 0)
    assert entry["content_sha256"] == hashlib.sha256(data).hexdigest()
    assert (entry["content_bytes"], entry["compression"]) == (len(data), "gzip")
    assert case.entry("small.log")["rows"] == 10
    events = case.events().filter(source_file=entry["path"]).sort("source_line")
    assert events.get_column("source_line").to_list() == list(range(1, 5001))


@pytest.mark.parametrize(
    "block, lines, starts, ends",
    [
        (b"", [], [], []),
        (b"\n", [""], [0], [0]),
        (b"a\r\nb\n\nc\r\r\nlast", ["a", "b", "", "c", "last"], [0, 3, 5, 6, 10], [1, 4, 5, 8, 14]),
        (b"caf\xc3\xa9\nbad\xff\n", ["café", "bad\\xff"], [0, 6], [5, 10]),
        (b"x" * 20 + b"\nok\n", ["", "ok"], [0, 21], [20, 23]),  # over max_line: an empty marker
    ],
)
def test_split_block_cuts_lines_with_their_byte_positions(block, lines, starts, ends):
    chunk = split_block(block, 100, 7, 10, "escape")
    assert chunk.lines.to_list() == lines
    assert chunk.starts.tolist() == starts and chunk.ends.tolist() == ends
    assert chunk.offsets.tolist() == [s + 100 for s in starts]
    assert [chunk.raw_line(i) for i in range(len(lines))] == [
        block[s:e] for s, e in zip(starts, ends, strict=True)
    ]
    assert chunk.invalid_idx == ([1] if b"\xff" in block else [])
    assert chunk.too_long == ({0: 20} if block.startswith(b"x" * 20) else {})


def test_millions_of_blank_lines_are_cut_into_chunks_of_bounded_lines(ingest_files, monkeypatch):
    """Memory grows with a chunk's lines, not its bytes: 31 MB of newlines is 32 million rejects, which
    must come in chunks of bounded lines (and be flushed as they come), each still exact."""
    monkeypatch.setattr(reader, "MAX_CHUNK_LINES", 1000)
    monkeypatch.setattr(unit, "MAX_CHUNK_LINES", 1000)
    sizes: list[int] = []
    real = reader.split_block
    monkeypatch.setattr(
        reader, "split_block", lambda block, *a: sizes.append(block.count(b"\n")) or real(block, *a)
    )
    data = _log(30) + b"\n" * 5000 + _log(20, 30)
    case = ingest_files({"access.log.gz": gzip.compress(data)})
    entry = case.entry("access.log.gz")
    assert (entry["lines_read"], entry["rows"], entry["rejected"]) == (5050, 50, 5000)
    assert sizes and max(sizes) <= 1000 and sum(sizes) == 5050  # streamed in bounded chunks
    rejects = case.rejects().sort("source_line")
    assert set(rejects.get_column("reason").to_list()) == {"blank line"}
    assert rejects.get_column("source_line").to_list() == list(range(31, 5031))
    head = len(_log(30))
    assert rejects.get_column("byte_offset").to_list() == list(range(head, head + 5000))
    events = case.events().sort("source_line")
    assert events.get_column("source_line").to_list() == [*range(1, 31), *range(5031, 5051)]


def test_buffered_rejects_are_flushed_like_events(tmp_path):
    """A stretch of rejects with no events between them is written as it comes, not held to the end."""
    rejects = conform_rejects(
        pl.DataFrame(
            {"source_file": ["a.log"] * 25, "source_line": list(range(1, 26)), "reason": ["blank line"] * 25}
        )
    )
    writer = unit.PartWriter(str(tmp_path), "t", flush_rows=10)
    writer.add(pl.DataFrame(), rejects)
    assert writer.rejects == []  # handed to the writer thread at once
    parts = writer.close()
    assert [(p.kind, p.rows) for p in parts] == [("rejects", 25)]
    written = pl.read_parquet(tmp_path / parts[0].tmp)
    assert written.get_column("source_line").to_list() == list(range(1, 26))
