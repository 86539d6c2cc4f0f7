"""Damaged evidence: what was read before the damage is kept, the damage itself is said, never hidden."""

from __future__ import annotations

import gzip

import zstandard

LINE = '203.0.113.9 - - [01/Feb/2023:00:{m:02d}:{s:02d} +0000] "GET /api/v1/customers/{i} HTTP/1.1" 200 625 "-" "curl/8"\n'


def _log(n: int) -> bytes:
    return "".join(LINE.format(m=i // 60 % 60, s=i % 60, i=1000 + i) for i in range(n)).encode()


def test_a_truncated_zstd_file_is_partial_with_its_error(ingest_files):
    """zstandard's stream reader returns a truncated file's readable part as if it were all of it."""
    data = _log(20_000)
    packed = zstandard.ZstdCompressor().compress(data)
    case = ingest_files({"access.log.zst": packed[: len(packed) // 2], "whole.log.zst": packed})
    entry = case.entry("access.log.zst")
    assert entry["status"] == "partial"
    assert "zstd stream ends inside a frame" in entry["error"]
    assert 0 < entry["rows"] < 20_000 and entry["rows"] + entry["rejected"] == entry["lines_read"]
    whole = case.entry("whole.log.zst")
    assert (whole["status"], whole["rows"], whole["error"]) == ("ingested", 20_000, None)


def test_the_line_cut_by_the_damage_is_a_reject_not_an_event(ingest_files):
    """A gzip cut inside a line ends with '… 200 6' for '… 200 625': that is no event's byte count."""
    data = _log(50)
    packed = gzip.compress(data)
    case = ingest_files({"access.log.gz": packed[: len(packed) * 2 // 3]})
    entry = case.entry("access.log.gz")
    assert entry["status"] == "partial" and entry["error"]
    rejects = case.rejects()
    assert rejects.get_column("reason").to_list() == ["line cut short: the file is corrupt or truncated here"]
    events = case.events()
    assert events.height == entry["rows"] == entry["lines_read"] - 1
    assert events.get_column("bytes_out").unique().to_list() == [625]  # only whole lines became events
    assert rejects.get_column("source_line").item() == entry["lines_read"]


def test_a_damaged_file_in_no_known_format_keeps_its_error(ingest_files):
    blob = bytes((i * 7919 + i // 3) % 256 for i in range(200_000))  # binary, compresses little
    packed = gzip.compress(blob)
    case = ingest_files({"blob.gz": packed[: len(packed) // 2]})
    entry = case.entry("blob.gz")
    assert entry["status"] == "unknown"
    assert entry["error"] and entry["error"].startswith("corrupt or truncated gzip")


def test_zstd_frames_of_every_kind_are_read_and_a_cut_is_noticed(ingest_files):
    """pzstd puts a skippable frame before each frame; a streaming compressor writes no content size and
    ends with a checksum: both read whole, and a file cut inside the checksum is still partial."""
    data, other = _log(3000), _log(3001)  # different contents: copies would be duplicates
    half = len(data) // 2
    skippable = (0x184D2A53).to_bytes(4, "little") + (4).to_bytes(4, "little") + b"pzst"
    packed = zstandard.ZstdCompressor()
    pz = skippable + packed.compress(data[:half]) + skippable + packed.compress(data[half:])

    def streamed(text: bytes) -> bytes:
        stream = zstandard.ZstdCompressor(write_checksum=True).compressobj()
        return stream.compress(text) + stream.flush()

    case = ingest_files(
        {"pz.log.zst": pz, "streamed.log.zst": streamed(other), "cut.log.zst": streamed(_log(5))[:-2]}
    )
    for name, rows in (("pz.log.zst", 3000), ("streamed.log.zst", 3001)):
        entry = case.entry(name)
        assert (entry["status"], entry["rows"], entry["error"]) == ("ingested", rows, None), name
    cut = case.entry("cut.log.zst")
    assert cut["status"] == "partial" and "ends inside a frame" in cut["error"]
