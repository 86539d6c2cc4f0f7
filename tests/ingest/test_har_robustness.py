"""HAR inputs built to break the reader: nesting bombs, documents that are not HARs, odd entries.

Each case checks the rule that matters: one bad entry is one reject with its reason, the good entries
around it are events, counts add up, and nothing is silently dropped or costs unbounded memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from harfiles import dumps, entry, har

from forensics.ingest._records import json_structure
from forensics.ingest.har import MAX_DEPTH

API = "https://api.example.com"
DEEP = f"JSON nested deeper than {MAX_DEPTH} levels"


def good(i: int) -> dict:
    return entry(f"{API}/api/v1/items/{i}", started=f"2023-01-05T10:00:0{i}.000Z")


def doc_with(*raw_entries: bytes) -> bytes:
    """A HAR whose entries are given as raw JSON text (a bomb cannot go through json.dumps)."""
    return b'{"log":{"version":"1.2","entries":[' + b",".join(raw_entries) + b"]}}"


def as_json(e: dict) -> bytes:
    return json.dumps(e).encode()


def bomb(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + close * depth


def counts(case, name: str) -> tuple[int, int, int, str]:
    e = case.entry(name)
    assert e["lines_read"] == e["rows"] + e["rejected"]
    return e["lines_read"], e["rows"], e["rejected"], e["status"]


# --------------------------------------------------------------------------------------------------
# Nesting bombs: never built, one reject, the other entries kept.


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 10_000, 100_000])
def test_deep_array_entry_is_one_reject_between_good_entries(ingest_files, depth):
    raw = doc_with(as_json(good(1)), bomb(depth), as_json(good(2)))
    case = ingest_files({"deep.har": raw})
    assert counts(case, "deep.har") == (3, 2, 1, "ingested")
    ev = case.events()
    assert ev.get_column("path").to_list() == ["/api/v1/items/1", "/api/v1/items/2"]
    assert ev.get_column("source_line").to_list() == [1, 3]
    rej = case.rejects().row(0, named=True)
    assert rej["source_line"] == 2
    assert rej["reason"] == f"{DEEP} ({2 * depth} bytes skipped)"
    assert rej["byte_offset"] == raw.index(b"[[")
    assert rej["text"].startswith("[[[[")


def test_deep_object_inside_an_entry_rejects_that_entry_only(ingest_files):
    deep = good(2)
    deep["_initiator"] = "@@"
    text = as_json(deep).replace(b'"@@"', b'{"a":' * 5_000 + b"1" + b"}" * 5_000)
    raw = doc_with(as_json(good(1)), text, as_json(good(3)))
    case = ingest_files({"deep.har": raw})
    assert counts(case, "deep.har") == (3, 2, 1, "ingested")
    assert case.events().get_column("source_line").to_list() == [1, 3]
    rej = case.rejects().row(0, named=True)
    assert rej["reason"] == f"{DEEP} ({len(text)} bytes skipped)"
    assert rej["byte_offset"] == raw.index(text)


def test_entry_at_the_depth_limit_is_kept(ingest_files):
    # The entry object (1 level) and MAX_DEPTH - 1 objects under _initiator: exactly MAX_DEPTH levels.
    e = good(1)
    e["_initiator"] = "@@"
    text = as_json(e).replace(b'"@@"', b'{"a":' * (MAX_DEPTH - 1) + b"1" + b"}" * (MAX_DEPTH - 1))
    case = ingest_files({"limit.har": doc_with(text)})
    assert counts(case, "limit.har") == (1, 1, 0, "ingested")


def test_deep_last_entry_ends_the_entries(ingest_files):
    raw = doc_with(as_json(good(1)), bomb(100_000))
    case = ingest_files({"deep.har": raw})
    assert counts(case, "deep.har") == (2, 1, 1, "ingested")
    assert case.rejects().get_column("reason").to_list() == [f"{DEEP} (200000 bytes skipped)"]


def test_truncated_bomb_is_partial(ingest_files):
    raw = doc_with(as_json(good(1)))[:-3] + b"," + b"[" * 50_000
    case = ingest_files({"deep.har": raw})
    assert counts(case, "deep.har") == (2, 1, 1, "partial")
    assert case.entry("deep.har")["error"] == (
        f"document ends inside an entry nested deeper than {MAX_DEPTH} levels"
    )
    assert case.rejects().get_column("reason").to_list() == [
        f"{DEEP} (document ends here) (50000 bytes skipped)"
    ]


def test_brackets_inside_strings_do_not_count(ingest_files):
    # A response body of 100,000 "[" is text, not nesting; escaped quotes must not end the string.
    e = entry(f"{API}/a", body='\\"' + "[" * 100_000 + '\\\\"{', mime="text/plain")
    case = ingest_files({"s.har": dumps(har(e, good(2)))})
    assert counts(case, "s.har") == (2, 2, 0, "ingested")


def test_deep_bomb_runs_in_bounded_memory_and_time(tmp_path: Path):
    """The reviewer's 200 KB file (100,000 levels) took 24 GB: now a few MB and well under a second."""
    path = tmp_path / "deep.har"
    path.write_bytes(b'{"log":{"entries":[' + bomb(100_000) + b"]}}")
    script = textwrap.dedent(
        f"""
        import resource, time
        from forensics.ingest.har import _EntryReader, _Source
        from forensics.ingest.reader import EvidenceFile
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        items = list(_EntryReader(_Source(EvidenceFile({str(path)!r}).blocks(1 << 20))))
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(len(items), items[0][1].reason, items[0][1].length, grew, time.perf_counter() - t)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    n, *reason, length, grew_kb, seconds = out.stdout.split()
    assert (int(n), " ".join(reason), int(length)) == (1, DEEP, 200_000)
    assert int(grew_kb) < 50 * 1024
    assert float(seconds) < 5


# --------------------------------------------------------------------------------------------------
# Documents that are not HARs: an error for the file, never "ingested 0".


@pytest.mark.parametrize(
    "content",
    [
        b'{"log": {"entries": "notalist"}}',
        b"[1, 2, 3]",
        b'{"log": null}',
        b'{"log": {"version": "1.2", "creator": {"name": "x"}}}',
        b"2023-01-05 10:00:00 GET /x 200\nfoo bar\n",
    ],
)
def test_not_a_har_is_an_error(ingest_files, content):
    case = ingest_files({"x.har": content}, format="har")
    e = case.entry("x.har")
    assert (e["status"], e["error"]) == ("error", "not a HAR document: no log.entries array")
    assert (e["lines_read"], e["rows"], e["rejected"]) == (0, 0, 0)


def test_empty_entries_is_an_empty_capture_not_an_error(ingest_files):
    case = ingest_files({"e.har": dumps(har())})
    e = case.entry("e.har")
    assert (e["status"], e["error"], e["lines_read"]) == ("ingested", None, 0)
    assert e["notes"] == ["log.entries is empty"]


# --------------------------------------------------------------------------------------------------
# Odd entries: each one reject with its reason, never an exception.


def test_odd_entries_are_rejects_with_reasons(ingest_files):
    odd = [
        1,
        "x",
        None,
        [1, 2],
        {"request": "nope"},
        {"request": {"url": 5}},
        {"startedDateTime": "garbage", "request": {"url": f"{API}/b"}},
    ]
    case = ingest_files({"odd.har": dumps(har(good(1), *odd, good(2)))})
    assert counts(case, "odd.har") == (9, 2, 7, "ingested")
    assert case.rejects().get_column("reason").to_list() == [
        "entry is not an object (int)",
        "entry is not an object (str)",
        "entry is not an object (NoneType)",
        "entry is not an object (list)",
        "no request object",
        "no request.url",
        "unreadable startedDateTime",
    ]


def test_odd_field_types_and_numbers_keep_the_entry(ingest_files):
    e = good(1)
    e["request"]["headers"] = {"Authorization": "Bearer x"}  # not a list: no header read
    e["request"]["cookies"] = "sid=1"
    e["response"]["headers"] = None
    e["response"]["bodySize"] = 1e20  # past Int64
    e["response"]["content"]["size"] = 1e300
    e["time"] = 1e308
    e["_webSocketMessages"] = {"not": "a list"}
    case = ingest_files({"odd.har": dumps(har(e))})
    assert counts(case, "odd.har") == (1, 1, 0, "ingested")
    row = case.events().row(0, named=True)
    assert (row["bytes_out"], row["duration_ms"], row["auth"]) == (None, None, "none")


def test_nan_and_huge_integer_are_rejected_not_fatal(ingest_files):
    raw = doc_with(
        as_json(good(1)),
        as_json(good(2)).replace(b'"time": 12.5', b'"time": NaN'),
        as_json(good(3)).replace(b'"status": 200', b'"status": ' + b"9" * 400),
        as_json(good(4)),
    )
    case = ingest_files({"n.har": raw})
    assert counts(case, "n.har") == (4, 2, 2, "ingested")
    assert case.events().get_column("source_line").to_list() == [1, 4]
    reasons = case.rejects().get_column("reason").to_list()
    assert reasons[0].startswith("invalid JSON: lexical error: invalid char in json text.")
    assert reasons[1].startswith("invalid JSON: parse error: integer overflow")


# --------------------------------------------------------------------------------------------------
# The nesting scan itself.


def reference_depths(text: bytes) -> list[int]:
    depth, inside, escaped, out = 0, False, False, []
    for ch in text.decode():
        if inside:
            escaped, inside = (False, inside) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            inside = True
        elif ch in "[{]}":
            depth += 1 if ch in "[{" else -1
            out.append(depth)
    return out


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64])
def test_structure_matches_a_character_loop_across_chunk_boundaries(step):
    text = json.dumps(
        {"a": ['x\\"[', "\\\\", '"', "\\", "}]{", [{"b": [[]]}], {"c\\": '\\\\\\"'}]},
    ).encode()
    depth, inside, odd, depths = 0, False, False, []
    for i in range(0, len(text), step):
        _, _, d, inside, odd = json_structure(text[i : i + step], depth, inside, odd)
        depths += d.tolist()
        depth = d[-1] if d.size else depth
    assert depths == reference_depths(text)
    assert (depth, inside, odd) == (0, False, False)


def test_max_depth_leaves_python_recursion_room():
    # Rejects re-serialise the entry (json.dumps recurses): the limit must stay well under it.
    assert sys.getrecursionlimit() > MAX_DEPTH * 2
