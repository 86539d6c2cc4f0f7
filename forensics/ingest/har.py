"""HAR 1.2 and 1.1 captures (browser developer tools, Charles, mitmproxy, Fiddler, …).

A HAR is one JSON document, ``{"log": {"version", "creator", "pages": […], "entries": […]}}``, often a
single line of hundreds of megabytes. It is streamed with ijson (``log.entries.item``) over the
decompressed blocks of the evidence, so no more than one entry is ever held as Python objects, and
entries are batched into polars frames of :data:`BATCH_ENTRIES`. Captures are *reference* by default
(they describe endpoints: authentication, personal data, record sizes); ``--role traffic`` counts them
as traffic.

One entry → one event:

``ts``
    ``startedDateTime`` with its own offset, converted to UTC (an offset-less value is read in
    ``--tz``, else UTC, with a note).
``method, scheme, host, path, query``
    From ``request.url`` (the fragment dropped, user:password@ removed from the host). The
    ``:authority``/``:path``/``:method``/``:scheme`` pseudo-headers of HTTP/2 exports are ignored: the
    URL says the same. A URL without ``//`` (``data:``, ``about:blank``) keeps its first 256
    characters in ``request`` and has no path.
``protocol``
    ``httpVersion`` of the request (else the response) normalised: ``http/1.1`` → ``HTTP/1.1``,
    ``h2``/``HTTP/2`` → ``HTTP/2.0``, ``h3``/``h3-29`` → ``HTTP/3.0``; ``""`` and ``unknown`` → null.
    A value outside those spellings is kept as written in ``extra.http_version``.
``status``
    ``response.status``; 0 (no response: blocked, aborted, CORS) is kept as 0.
``bytes_out``
    The response body as transferred: ``response.bodySize``, else ``content.size`` (the decoded
    size) when bodySize is ``-1``; headers are not counted, as in nginx's ``$body_bytes_sent``.
    ``-1`` everywhere → null. ``extra.content_size`` keeps the decoded size when it differs.
``bytes_in``
    ``request.bodySize``, else the UTF-8 length of ``postData.text``; ``-1`` → null.
``duration_ms``
    ``time`` (``-1`` → null).
``user_agent, referer``
    The request headers. ``request_id``: ``x-request-id``, ``x-amzn-trace-id``, ``traceparent``
    (then a few other trace headers), from the response first, then the request.
``auth, principal``
    From what the request carried, first match wins: ``Authorization`` (bearer/basic/other), an
    API-key header (:data:`API_KEY_HEADERS`), a credential in the query (``api_key``, ``token``, …),
    user:password in the URL, session cookies (any cookie not on the :data:`_TRACKING_COOKIE` list),
    else ``none``. ``principal`` is the basic-auth user name or a fingerprint of the credential
    (:func:`forensics.secrets.fingerprint`); no header, cookie or body value is stored.
``client_ip``
    Null: a HAR records no client address. ``serverIPAddress`` goes to ``extra.server_ip``.
``pii_kinds``
    Personal data in ``response.content.text`` (base64 decoded when ``encoding`` says so) and in the
    received messages of a websocket (``_webSocketMessages``): :mod:`forensics.pii`. Counts go to
    ``extra.pii``; null when the entry has no body to look at.
``extra``
    JSON: ``server_ip``, ``mime``, ``content_size``, ``http_version``, ``from_cache``, ``pii``, ``ws``
    (websocket message counts and received bytes), only the keys that have a value.

Broken input never costs the rest of the file. An entry that is valid JSON but not a usable entry
(no URL, unreadable ``startedDateTime``, wrong types) is a reject whose ``line_sha256`` is the sha256
of the entry re-serialised compactly (the streaming parser does not keep its original bytes) and
whose text is the entry with bodies left out and credential values fingerprinted. Broken JSON stops
the streaming parser; the reader then looks, in a window of recent bytes and onwards, for the next
``{`` that starts an entry (preceded by ``[`` or ``,`` and opening with a known entry key), checks it
by parsing it, and resumes there. Every unparseable stretch becomes one reject with its byte offset,
the sha256 of its bytes and a redacted excerpt. A document that ends broken (a truncated capture) is
reported as ``partial`` with every entry before the damage kept. Invalid UTF-8 is replaced by U+FFFD
before parsing, and a note says so.

Every byte is checked for nesting depth before ijson sees it (a vectorised scan of quotes, backslashes
and brackets): an entry nested deeper than :data:`MAX_DEPTH` levels is never built; it is skipped to
its closing bracket and becomes one reject ("JSON nested deeper than … levels"). A document without a
``log.entries`` array (another format forced with ``--format har``, ``"entries": "…"``) is an error
for the file, not an empty capture.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import ijson
import numpy as np
import polars as pl

from ..errors import InputReadError
from ..pii import body_text, kinds_column, scan_bodies, scannable
from ..schema import REJECT_TEXT_MAX, conform_rejects, empty_rejects
from ..secrets import CREDENTIAL_PARAMS, auth_from_header, fingerprint, mask_text
from ._records import json_structure
from .base import Detection, FileContext, Ingestor
from .reader import EvidenceFile

#: Entries per frame handed to finalize().
BATCH_ENTRIES = 5_000
#: Body text (for the personal-data scan) held per batch before it is flushed early.
BATCH_BODY_BYTES = 64 * 1024 * 1024
#: Decompressed block size read from the evidence.
READ_BLOCK = 1024 * 1024
#: ijson's read size.
PARSE_BUFFER = 64 * 1024
#: Bytes kept behind the parser, so that after broken JSON the reader can step back.
RESYNC_BACK = 1024 * 1024
#: ijson's read size while checking a candidate entry start (small: most checks fail fast).
TRIAL_BUFFER = 16 * 1024
#: Longest ``request`` text kept for a URL that is not scheme://host/… (data: URLs can be megabytes).
REQUEST_MAX = 256
#: Deepest nesting of arrays and objects inside one entry. ijson keeps the path of every open level
#: (memory grows with the square of the depth: 24 GB for 100,000 levels) and Python recursion (repr,
#: json.dumps) fails near 1,000; real entries nest about ten levels (Chrome's async ``_initiator`` stacks
#: a few dozen).
MAX_DEPTH = 256

#: Request headers whose value is an API key or token (lower case).
API_KEY_HEADERS = (
    "x-api-key",
    "api-key",
    "apikey",
    "x-apikey",
    "x-auth-token",
    "x-access-token",
    "x-api-token",
    "x-token",
    "auth-token",
    "x-session-token",
    "private-token",
    "ocp-apim-subscription-key",
    "x-goog-api-key",
    "x-functions-key",
    "x-amz-security-token",
    "x-shopify-access-token",
)
#: Headers that carry a request or trace id, in order of preference (response first, then request).
REQUEST_ID_HEADERS = (
    "x-request-id",
    "x-amzn-trace-id",
    "traceparent",
    "x-amzn-requestid",
    "x-amz-request-id",
    "x-correlation-id",
    "x-cloud-trace-context",
    "x-amz-cf-id",
    "cf-ray",
)
_WANTED = frozenset(
    ("authorization", "cookie", "user-agent", "referer", *API_KEY_HEADERS, *REQUEST_ID_HEADERS)
)

# Cookies that identify nobody: analytics, consent, load-balancer stickiness, preferences. Any other
# cookie is taken as a session credential (a false "none" would wrongly flag an endpoint as open).
_TRACKING_COOKIE = re.compile(
    r"^(?:_ga|_gid|_gat|_gcl|__utm|_fbp|_fbc|_hj|ajs_|amplitude|mp_|_pk_|_uet|optanon|cookieconsent|"
    r"euconsent|__cf_bm|_cfuvid|cf_clearance|awsalb|awselb|lang$|locale$|language$|theme$|tz$|timezone$|"
    r"_dd_s|intercom-|_clck|_clsk|muid$|nid$|1p_jar|__gads|__gpi|_tt_|_scid|_sctr|_ttp|_rdt_uuid|"
    r"__hs|hubspotutk|_lr_|_ym_|_gaexp|_fplc|_ketch)",
    re.IGNORECASE,
)
_SESSION_COOKIE = re.compile(r"sess|sid|auth|token|jwt|login|remember|user|account|identity", re.IGNORECASE)
# Query parameters whose value is a credential (masked in the query; their fingerprint names the caller).
# (The same names the masking replaces by a fingerprint: tokens, keys, sessions, signed-URL credentials.)
_QUERY_CREDENTIAL = re.compile(r"(?:^|&)(?:" + CREDENTIAL_PARAMS + r")=([^&]+)", re.IGNORECASE)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

# The start of an entry object inside the entries array, for resynchronising after broken JSON.
_ENTRY_START = re.compile(
    rb'[\[,]\s*(\{)\s*"(?:startedDateTime|pageref|request|response|time|timings|cache|connection|'
    rb'serverIPAddress|comment|_[A-Za-z0-9]+)"\s*:'
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")

_PROTOCOLS = {
    "http/1.0": "HTTP/1.0",
    "http/1.1": "HTTP/1.1",
    "http/2": "HTTP/2.0",
    "http/2.0": "HTTP/2.0",
    "h2": "HTTP/2.0",
    "h2c": "HTTP/2.0",
    "http/3": "HTTP/3.0",
    "http/3.0": "HTTP/3.0",
    "h3": "HTTP/3.0",
    "http/0.9": "HTTP/0.9",
}


class HarIngestor(Ingestor):
    name = "har"
    description = "HAR 1.2/1.1 captures (browser dev tools, proxies); reference by default"
    recognised_by = 'a JSON document opening with {"log": {…}} with "version", "creator" or "entries"'
    default_role = "reference"
    line_based = False

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        head = "\n".join(lines).lstrip("\ufeff \t\r\n")
        if not head.startswith("{"):
            return None
        marks = [k for k in ("entries", "version", "creator", "pages") if f'"{k}"' in head]
        opens_log = re.match(r'\{\s*"log"\s*:\s*\{', head) is not None
        if opens_log and marks:
            conf, how = 0.95, 'opens with {"log": {' + ", has " + ", ".join(marks)
        elif opens_log:
            conf, how = 0.8, 'opens with {"log": { (head cut short)'
        elif '"log"' in head and '"entries"' in head and ('"creator"' in head or '"version"' in head):
            conf, how = 0.7, 'a JSON object with "log", "entries" and "creator"/"version"'
        else:
            return None
        version = re.search(r'"version"\s*:\s*"([^"]{1,16})"', head)
        return Detection(self.name, conf, how, variant=version.group(1) if version else None)

    def read_document(
        self, evidence: EvidenceFile, ctx: FileContext
    ) -> Iterator[tuple[pl.DataFrame, pl.DataFrame, int]]:
        source = _Source(evidence.blocks(READ_BLOCK))
        batch = _Batch(ctx, self.name)
        reader = _EntryReader(source)
        try:
            for entry, broken in reader:
                if broken is not None:
                    batch.reject_broken(broken)
                else:
                    batch.add(entry)
                if batch.full():
                    yield batch.flush()
            if batch.records:
                yield batch.flush()
        finally:
            source.drain()  # fills the evidence digests whatever happened
        if source.replaced:
            ctx.notes.append(f"invalid UTF-8 replaced by U+FFFD in {source.replaced} block(s)")
        if batch.naive_ts:
            ctx.notes.append(
                f"{batch.naive_ts} startedDateTime value(s) without offset read as {batch.tz_name}"
            )
        ctx.notes.extend(reader.notes)
        if reader.trailing:
            ctx.notes.append(f"data after the end of the entries ignored ({reader.trailing})")
        if source.error is not None:
            raise source.error
        if reader.fatal is not None:
            raise InputReadError(reader.fatal)
        if reader.entries_seen == reader.broken_seen == 0:
            if not source.entries_array:
                # Nothing was read and nothing rejected: say so for the file, never "ingested 0".
                raise InputReadError("not a HAR document: no log.entries array")
            ctx.notes.append("log.entries is empty")


# --------------------------------------------------------------------------------------------------
# Streaming: a file-like view of the decompressed blocks that can step back after broken JSON.


class _Source:
    """Decompressed content as a file for ijson, keeping :data:`RESYNC_BACK` bytes behind the reader.

    Strips a UTF-8 BOM, replaces invalid UTF-8 (ijson would stop at it; offsets after a repaired
    block count the repaired bytes), and remembers the error of a corrupt compressed stream (reported
    after what was read before it).
    """

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self.data = bytearray()
        self.base = 0  # absolute offset of data[0] (in the content after the BOM)
        self.pos = 0  # next byte handed to the parser
        self.pin: int | None = None  # keep bytes from here (a trial parse may step back to it)
        self.inject = b""  # served before data (the "[" of a resynchronised parse)
        self.eof = False
        self.bom = 0
        self.error: InputReadError | None = None
        self.replaced = 0
        self._first = True
        self._carry = b""
        # Nesting guard (see _records.json_structure): the state of the bytes handed to the parser so far.
        self.depth = 0  # open arrays/objects
        self.in_string = False
        self.odd_backslashes = False  # the bytes so far end inside a string with an unpaired backslash
        self.array_depth = 3  # depth of the entries array: {"log": {"entries": [
        self.element: int | None = None  # offset of the opening bracket of the current array element
        self.wall: int | None = None  # offset of a bracket past MAX_DEPTH: the parser stops there
        self.entries_array = False  # '"entries": [' was seen
        self._tail = b""

    # file protocol used by ijson
    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = PARSE_BUFFER
        if self.inject:
            out, self.inject = self.inject[:n], self.inject[n:]
            return self._guard(out, None)
        if self.wall is not None and self.pos >= self.wall:
            raise _TooDeep(f"JSON nested deeper than {MAX_DEPTH} levels")
        while self.pos + n > self.base + len(self.data) and self.pull():
            pass
        start = self.pos - self.base
        with memoryview(self.data) as view:
            out = bytes(view[start : start + n])
        out = self._guard(out, self.pos)
        self.pos += len(out)
        self._trim()
        if not out and self.wall is not None:
            raise _TooDeep(f"JSON nested deeper than {MAX_DEPTH} levels")
        return out

    def _guard(self, out: bytes, at: int | None) -> bytes:
        """``out`` cut before the first bracket that would nest deeper than MAX_DEPTH inside an entry
        (the next read then raises _TooDeep), with the nesting state moved past what is returned.
        ``at``: the offset of ``out`` (None for injected bytes)."""
        if not out:
            return out
        if not self.entries_array and at is not None:
            self.entries_array = _ENTRIES_ARRAY.search(self._tail + out) is not None
            self._tail = out[-64:]
        where, opens, depths, in_string, odd = json_structure(
            out, self.depth, self.in_string, self.odd_backslashes
        )
        if not depths.size:
            self.in_string, self.odd_backslashes = in_string, odd
            return out
        over = np.flatnonzero(depths > self.array_depth + MAX_DEPTH)
        if over.size:
            i = int(over[0])  # an opening bracket outside any string: the state before it is plain
            cut = int(where[i])
            self.wall = (at or 0) + cut
            where, opens, depths = where[:i], opens[:i], depths[:i]
            out, in_string, odd = out[:cut], False, False
            self.depth = self.array_depth + MAX_DEPTH
        else:
            self.depth = int(depths[-1])
        if at is not None:
            starts = np.flatnonzero(opens & (depths == self.array_depth + 1))
            if starts.size:
                self.element = at + int(where[starts[-1]])
        self.in_string, self.odd_backslashes = in_string, odd
        return out

    def pull(self) -> bool:
        """Append the next block; False at the end of the content."""
        if self.eof:
            return False
        try:
            block = next(self._blocks)
        except StopIteration:
            block = b""
            self.eof = True
        except InputReadError as exc:
            block = b""
            self.eof = True
            self.error = exc
        if self._first and block:
            self._first = False
            if block.startswith(b"\xef\xbb\xbf"):
                block = block[3:]
                self.bom = 3
        block = self._valid_utf8(block)
        self.data += block
        return bool(block) or not self.eof

    def _valid_utf8(self, block: bytes) -> bytes:
        data = self._carry + block if self._carry else block
        self._carry = b""
        if not self.eof:
            cut = len(data)
            # Keep an incomplete multi-byte sequence at the end for the next block.
            for back in range(1, min(4, len(data)) + 1):
                b = data[-back]
                if b & 0xC0 == 0x80:
                    continue
                if b >= 0xC0 and back < (2 if b < 0xE0 else 3 if b < 0xF0 else 4):
                    cut = len(data) - back
                break
            data, self._carry = data[:cut], data[cut:]
        try:
            data.decode("utf-8")
            return data
        except UnicodeDecodeError:
            self.replaced += 1
            return data.decode("utf-8", "replace").encode("utf-8")

    def _trim(self) -> None:
        keep = self.pos - RESYNC_BACK
        if self.pin is not None:
            keep = min(keep, self.pin)
        if keep - self.base > 4 * READ_BLOCK:
            del self.data[: keep - self.base]
            self.base = keep

    def seek(self, offset: int) -> None:
        """Restart at ``offset``, the start of an entry (the caller injects the "[" before it)."""
        if offset < self.base:
            raise ValueError("offset no longer buffered")
        self.pos = offset
        self.inject = b""
        self.depth, self.in_string, self.odd_backslashes = 0, False, False
        self.array_depth, self.element, self.wall = 1, None, None

    def find_entry_start(self, start: int) -> int | None:
        """Offset of the next ``{`` that looks like the start of an entry, at or after ``start``."""
        scan = max(start, self.base)
        while True:
            self.pin = max(self.base, scan - 64)
            m = _ENTRY_START.search(self.data, max(0, scan - self.base - 64))
            while m is not None and self.base + m.start(1) < start:
                m = _ENTRY_START.search(self.data, m.start(1) + 1)
            if m is not None:
                return self.base + m.start(1)
            scan = max(start, self.base + len(self.data) - 256)
            if not self.pull():
                return None
            if self.pin is not None and self.pin - self.base > 4 * READ_BLOCK:
                del self.data[: self.pin - self.base]
                self.base = self.pin

    def excerpt(self, start: int, end: int | None) -> tuple[bytes, str, int]:
        """(first bytes, sha256, length) of [start, end) (end None: to the end of what is buffered)."""
        lo = max(start, self.base) - self.base
        hi = len(self.data) if end is None else max(lo, end - self.base)
        chunk = memoryview(self.data)[lo:hi]
        sha = hashlib.sha256(chunk).hexdigest()
        head = bytes(chunk[: REJECT_TEXT_MAX * 4])
        chunk.release()
        return head, sha, hi - lo

    def drain(self) -> None:
        """Read the rest of the content so the evidence digests are complete."""
        try:
            for _ in self._blocks:
                pass
        except InputReadError as exc:
            self.error = self.error or exc
        self.eof = True


class _TooDeep(ijson.JSONError):
    """Raised by _Source.read at a bracket nesting past MAX_DEPTH (a JSONError: trial parses reject it)."""


class _Broken:
    """An unparseable stretch of the document (one reject)."""

    def __init__(self, offset: int, head: bytes, sha: str, length: int, reason: str) -> None:
        self.offset, self.head, self.sha, self.length, self.reason = offset, head, sha, length, reason


def _identity(entry: Any) -> tuple[Any, ...]:
    if isinstance(entry, list):
        return ("list", len(entry))  # never repr(): it copies the whole value
    if not isinstance(entry, dict):
        return (repr(entry)[:200],)
    req = entry.get("request")
    url = req.get("url") if isinstance(req, dict) else None
    return (entry.get("startedDateTime"), url, entry.get("time"))


def _entry_like(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("request"), dict)


def _first_line(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__


class _EntryReader:
    """Entries of ``log.entries`` in order, and the broken stretches between them."""

    def __init__(self, source: _Source) -> None:
        self.source = source
        self.fatal: str | None = None
        self.trailing: str | None = None
        self.entries_seen = 0
        self.broken_seen = 0
        self.notes: list[str] = []
        self._resumed = False  # parsing a resynchronised "[" + rest-of-entries stream
        self._recent: deque[tuple[int, tuple[Any, ...]]] = deque(maxlen=8192)

    def _parse(self, prefix: str, buf_size: int | None = None) -> Iterator[Any]:
        return ijson.items(self.source, prefix, use_float=True, buf_size=buf_size or PARSE_BUFFER)

    def __iter__(self) -> Iterator[tuple[Any, _Broken | None]]:
        parser: Iterator[Any] = self._parse("log.entries.item")
        while True:
            try:
                for obj in parser:
                    self.entries_seen += 1
                    self._recent.append((self.source.pos, _identity(obj)))
                    yield obj, None
                return
            except _TooDeep:
                broken, after = self._skip_deep()
                yield None, broken
                if after is None:
                    return
                parser = after
                self._resumed = True
                continue
            except ijson.JSONError as exc:
                message = _first_line(exc)
                failed_at = self.source.pos
            resumed = None
            for item in self._resync(failed_at, message):
                if isinstance(item, _Broken):
                    yield None, item
                else:
                    resumed = item
            if resumed is None:
                return
            parser = resumed
            self._resumed = True

    def _skip_deep(self) -> tuple[_Broken, Iterator[Any] | None]:
        """After _TooDeep: the over-deep array element as one reject, read to its closing bracket by the
        nesting scan alone (never built), and a parser positioned after it (None at the end of the
        entries or of the document)."""
        src = self.source
        reason = f"JSON nested deeper than {MAX_DEPTH} levels"
        start = src.element if src.element is not None else src.pos
        lo = max(start, src.base)
        head = bytes(src.data[lo - src.base : lo - src.base + REJECT_TEXT_MAX * 4])
        sha = hashlib.sha256(memoryview(src.data)[lo - src.base : src.pos - src.base])
        pos, depth, in_string, odd = src.pos, src.depth, False, False
        end = None
        while end is None:
            if pos >= src.base + len(src.data) and not src.pull():
                break
            chunk = bytes(src.data[pos - src.base : pos - src.base + READ_BLOCK])
            where, _, depths, in_string, odd = json_structure(chunk, depth, in_string, odd)
            closed = np.flatnonzero(depths <= src.array_depth)
            if closed.size:
                chunk = chunk[: int(where[closed[0]]) + 1]
                end = pos + len(chunk)
            elif depths.size:
                depth = int(depths[-1])
            sha.update(chunk)
            pos += len(chunk)
            src.pos = pos
            src._trim()
        self.broken_seen += 1
        if end is None:
            self.fatal = f"document ends inside an entry nested deeper than {MAX_DEPTH} levels"
            return _Broken(
                start + src.bom, head, sha.hexdigest(), pos - start, reason + " (document ends here)"
            ), None
        broken = _Broken(start + src.bom, head, sha.hexdigest(), end - start, reason)
        # What follows the element: "," and the next entry, or "]" (the last entry).
        while True:
            m = _SKIP_WS.match(src.data, end - src.base)
            if m.end() < len(src.data) or not src.pull():
                break
        nxt = src.data[m.end() : m.end() + 1]
        if nxt in (b"", b"]"):
            src.pos = src.base + m.end()
            return broken, None
        src.seek(src.base + m.end() + (1 if nxt == b"," else 0))
        src.inject = b"["
        return broken, self._parse("item")

    def _resync(self, failed_at: int, message: str) -> Iterator[Any]:
        """After broken JSON: yield a _Broken per unparseable stretch, then a parser positioned on the
        next good entry (or nothing when the document has no more entries).

        The parser failed somewhere in the last buffer it read, ``(failed_at - PARSE_BUFFER,
        failed_at]``, and had yielded every entry completed before that. The kept window behind it is
        walked entry start by entry start: an entry that closes before the failing buffer (a brace
        match over its bytes says where) and whose startedDateTime was just yielded was read already;
        any other is checked by parsing it and comparing it with the entries just yielded; the first one that
        neither was read nor fails to parse is where reading resumes. Everything between the end of
        the last entry read and that point is rejected, one reject per entry start found in it.
        """
        src = self.source
        # "trailing garbage": the top-level value had ended (the document, or the entries array of a
        # resynchronised parse): what follows is no entry unless an entry start is found in it.
        clean_end = "trailing garbage" in message
        window = max(src.base, failed_at - RESYNC_BACK)
        settled = failed_at - PARSE_BUFFER  # entries closing before this were read for sure
        seen = {ident for pos, ident in self._recent if pos > settled}
        started_read = {ident[0] for pos, ident in self._recent if pos > window}
        failed: list[tuple[int, str]] = []
        after_read: int | None = None  # end of the last entry read before the damage
        scan = window
        resume: int | None = None
        parser: Iterator[Any] | None = None
        while True:
            start = src.find_entry_start(scan)
            if start is None:
                break
            if start < settled:
                end = _object_end(src.data, start - src.base)
                if end is not None and src.base + end <= settled:
                    started = _STARTED.search(src.data, start - src.base, end)
                    if started is not None and started.group(1).decode("utf-8", "replace") in started_read:
                        failed.clear()
                        after_read = scan = src.base + end
                        continue
            src.seek(start)
            src.pin = start
            src.inject = b"["
            trial = self._parse("item", TRIAL_BUFFER)
            try:
                first = next(trial)
            except (ijson.JSONError, StopIteration) as exc:
                failed.append((start, _first_line(exc) if isinstance(exc, ijson.JSONError) else "no value"))
                scan = start + 1
                continue
            if not _entry_like(first):
                scan = start + 1
                continue
            if start < failed_at and _identity(first) in seen:  # read before the damage
                failed.clear()
                end = _object_end(src.data, start - src.base)
                after_read = src.base + end if end is not None else None
                scan = after_read if after_read is not None else start + 1
                continue
            resume = start

            def resumed(first: Any = first, trial: Iterator[Any] = trial) -> Iterator[Any]:
                yield first
                yield from trial

            parser = resumed()
            break
        src.pin = None
        if resume is None and clean_end and not failed:
            if not self._resumed:
                self.trailing = message
            return
        if resume is None and not (self.entries_seen or self.broken_seen or failed):
            self.fatal = f"invalid JSON after 0 entries: {message}"  # not a HAR at all: no rejects
            return
        yield from self._broken_stretches(failed, resume, after_read, failed_at, message, clean_end)
        if parser is not None:
            yield parser
        else:
            self.fatal = f"invalid JSON after {self.entries_seen} entries: {message}"

    def _broken_stretches(
        self,
        failed: list[tuple[int, str]],
        resume: int | None,
        after_read: int | None,
        failed_at: int,
        message: str,
        clean_end: bool,
    ) -> Iterator[_Broken]:
        """One _Broken per unparseable entry between the last entry read and ``resume``."""
        src = self.source
        stretches = list(failed)
        first = stretches[0][0] if stretches else resume
        if not clean_end:
            if after_read is not None and after_read >= src.base:
                # From the end of the last entry read: an entry whose opening is what broke (a
                # missing comma) is not an entry start, but its bytes are there.
                lo = src.base + _SKIP_SEPARATORS.match(src.data, after_read - src.base).end()
                gap = src.data[lo - src.base : (first - src.base) if first is not None else None]
                if _CLOSERS.sub(b"", gap) and (first is None or lo < first):
                    stretches.insert(0, (lo, message))
            elif not stretches:
                # The last entry read is out of the window: reject from the failing buffer's first "{"
                # (unless the damage came before the entries array began).
                lo = max(src.base, failed_at - PARSE_BUFFER)
                brace = src.data.find(b"{", lo - src.base)
                if brace >= 0 and (resume is None or src.base + brace < resume):
                    lo = src.base + brace
                gap = src.data[lo - src.base : (resume - src.base) if resume is not None else None]
                if (
                    self.entries_seen == 0
                    and self.broken_seen == 0
                    and re.search(rb'"entries"\s*:\s*\[', gap)
                ):
                    self.notes.append(f"damaged JSON before the entries skipped: {message}")
                else:
                    stretches = [(lo, message)]
        for i, (start, why) in enumerate(stretches):
            end = stretches[i + 1][0] if i + 1 < len(stretches) else resume
            head, sha, length = src.excerpt(start, end)
            reason = f"invalid JSON: {why}"
            if end is None:
                reason += " (document ends here)"
            self.broken_seen += 1
            yield _Broken(start + src.bom, head, sha, length, reason)


_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]]')
_SKIP_SEPARATORS = re.compile(rb"[\s,]*")
_SKIP_WS = re.compile(rb"\s*")
_ENTRIES_ARRAY = re.compile(rb'"entries"\s*:\s*\[')
_STARTED = re.compile(rb'"startedDateTime"\s*:\s*"([^"\\]*)"')
_CLOSERS = re.compile(rb"[\s,\]}]+")


def _object_end(data: bytearray, at: int) -> int | None:
    """Index just past the JSON object that opens at ``data[at]`` (None if it does not close)."""
    depth = 0
    for m in _TOKEN.finditer(data, at):
        c = data[m.start()]
        if c == 0x22:  # a string: skipped whole
            continue
        depth += 1 if c in (0x7B, 0x5B) else -1
        if depth == 0:
            return m.end()
    return None


# --------------------------------------------------------------------------------------------------
# Entries → rows.


class _BadEntry(ValueError):
    pass


def _size(value: Any) -> int | None:
    """A HAR size: -1 (and anything not a non-negative integer) is "not known"."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float):
        return int(value) if 0 <= value < 2**63 else None  # beyond Int64: not a real size
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _status(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and 0 <= value <= 32767 else None


def _protocol(value: Any) -> tuple[str | None, str | None]:
    """(normalised protocol, the raw value when it was unusual)."""
    if not isinstance(value, str):
        return None, None
    raw = value.strip()
    low = raw.lower()
    if low in ("", "unknown", "-"):
        return None, None
    if low in _PROTOCOLS:
        return _PROTOCOLS[low], None
    if low.startswith("h3-") or low.startswith("http/3"):
        return "HTTP/3.0", raw
    if low.startswith("spdy"):
        return raw.upper(), raw
    return raw[:32], raw[:32]


def _headers(value: Any) -> dict[str, str]:
    """The headers detection needs, by lower-case name (first value wins)."""
    out: dict[str, str] = {}
    if not isinstance(value, list):
        return out
    for h in value:
        try:
            low = h["name"].lower()
        except (TypeError, KeyError, AttributeError):
            continue
        if low in _WANTED and low not in out:
            v = h.get("value")
            if isinstance(v, str) and v.strip():
                out[low] = v.strip()
    return out


def _cookies(req: dict[str, Any], cookie_header: str | None) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    listed = req.get("cookies")
    if isinstance(listed, list):
        for c in listed:
            if isinstance(c, dict) and isinstance(c.get("name"), str) and c.get("value") not in (None, ""):
                pairs.append((c["name"], str(c["value"])))
    if not pairs and cookie_header:
        for part in cookie_header.split(";"):
            name, eq, value = part.strip().partition("=")
            if eq and name and value:
                pairs.append((name, value))
    return pairs


def _auth(
    headers: dict[str, str], query: str | None, userinfo: str | None, cookies: list[tuple[str, str]]
) -> tuple[str, str | None]:
    """(auth kind, principal) from everything the request carried; ("none", None) without a credential."""
    authorization = headers.get("authorization")
    if authorization:
        kind, principal = auth_from_header(authorization)
        if kind:
            return kind, principal
    for name in API_KEY_HEADERS:
        if name in headers:
            return "apikey", fingerprint(headers[name])
    if query:
        m = _QUERY_CREDENTIAL.search(query)
        if m:
            return "apikey", fingerprint(m.group(1))
    if userinfo:
        user, _, password = userinfo.partition(":")
        return "basic", (user or fingerprint(password))
    creds = [(n, v) for n, v in cookies if not _TRACKING_COOKIE.match(n)]
    if creds:
        session = [(n, v) for n, v in creds if _SESSION_COOKIE.search(n)] or creds
        return "cookie", fingerprint("; ".join(f"{n}={v}" for n, v in sorted(session)))
    return "none", None


def _utc_micros(value: Any, tz: ZoneInfo | None) -> tuple[int, bool]:
    """startedDateTime → (microseconds since the epoch, UTC; whether it had no offset)."""
    if not isinstance(value, str) or not value.strip():
        raise _BadEntry("no startedDateTime")
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        fixed = re.sub(r"(\.\d{6})\d+", r"\1", text)
        try:
            dt = datetime.fromisoformat(fixed)
        except ValueError:
            raise _BadEntry("unreadable startedDateTime") from None
    naive = dt.tzinfo is None
    if naive:
        dt = dt.replace(tzinfo=tz or UTC)
    return (dt - _EPOCH) // _US, naive


def _split_url(url: str) -> tuple[str | None, str | None, str | None, str | None, str | None, str | None]:
    """(scheme, host, path, query, userinfo, request) of a HAR URL."""
    url = url.split("#", 1)[0]
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME.match(scheme):
        head = url.split(":", 1)[0] if ":" in url else None
        return (
            (head.lower() if head and _SCHEME.match(head) else None),
            None,
            None,
            None,
            None,
            url[:REQUEST_MAX],
        )
    cut = len(rest)
    for ch in "/?":
        i = rest.find(ch)
        if 0 <= i < cut:
            cut = i
    authority, target = rest[:cut], rest[cut:]
    userinfo, at, hostport = authority.rpartition("@")
    path, q, query = target.partition("?")
    return (
        scheme.lower(),
        hostport.lower() or None,
        path or "/",
        query or None,
        userinfo if at else None,
        None,
    )


def _ws(messages: Any) -> tuple[dict[str, int] | None, str | None]:
    """Websocket message counts, and the received text (for the personal-data scan)."""
    if not isinstance(messages, list) or not messages:
        return None, None
    sent = received = rbytes = 0
    texts: list[str] = []
    budget = 1 << 20
    for m in messages:
        if not isinstance(m, dict):
            continue
        data = m.get("data")
        if m.get("type") == "send":
            sent += 1
        else:
            received += 1
            if isinstance(data, str):
                rbytes += len(data.encode("utf-8", "replace"))
                if budget > 0 and m.get("opcode", 1) == 1:
                    texts.append(data[:budget])
                    budget -= len(texts[-1])
    return {"messages": sent + received, "sent": sent, "received": received, "received_bytes": rbytes}, (
        "\n".join(texts) if texts else None
    )


def _redact_entry(entry: Any) -> Any:
    """A copy of an entry fit for rejects/: bodies left out, credential-bearing values fingerprinted."""
    if not isinstance(entry, dict):
        return entry
    out = dict(entry)
    for side in ("request", "response"):
        part = out.get(side)
        if not isinstance(part, dict):
            continue
        part = dict(part)
        for key in ("headers", "cookies", "queryString"):
            items = part.get(key)
            if isinstance(items, list):
                part[key] = [
                    {**i, "value": fingerprint(str(i["value"]))}
                    if isinstance(i, dict) and i.get("value")
                    else i
                    for i in items
                ]
        post = part.get("postData")
        if isinstance(post, dict):
            post = dict(post)
            if isinstance(post.get("text"), str):
                post["text"] = f"[{len(post['text'])} characters not kept]"
            if isinstance(post.get("params"), list):
                post["params"] = [
                    {**p, "value": fingerprint(str(p["value"]))}
                    if isinstance(p, dict) and p.get("value")
                    else p
                    for p in post["params"]
                ]
            part["postData"] = post
        content = part.get("content")
        if isinstance(content, dict) and isinstance(content.get("text"), str):
            part["content"] = {**content, "text": f"[{len(content['text'])} characters not kept]"}
        out[side] = part
    if isinstance(out.get("_webSocketMessages"), list):
        out["_webSocketMessages"] = f"[{len(out['_webSocketMessages'])} messages not kept]"
    return out


_RAW_VALUE = re.compile(r'("(?:value|text|data)"\s*:\s*)"(?:[^"\\]|\\.)*("|$)')


def _redact_raw(text: str) -> str:
    """Redact an excerpt of broken HAR text: every header/cookie/param value and body is replaced."""
    text = _RAW_VALUE.sub(lambda m: m.group(1) + '"[not kept]' + m.group(2), text)
    return mask_text(text) or ""


class _Batch:
    """Rows and rejects of up to :data:`BATCH_ENTRIES` consecutive entries."""

    def __init__(self, ctx: FileContext, fmt: str) -> None:
        self.ctx = ctx
        self.fmt = fmt
        self.index = 0  # entries (and broken stretches) read so far: source_line of the next one
        self.tz = ZoneInfo(ctx.options.tz) if ctx.options.tz else None
        self.tz_name = ctx.options.tz or "UTC"
        self.naive_ts = 0
        self._reset()

    def _reset(self) -> None:
        self.cols: dict[str, list[Any]] = {k: [] for k in _COLUMNS}
        self.extras: list[dict[str, Any]] = []
        self.bodies: list[str | None] = []
        self.body_bytes = 0
        self.rejects: list[dict[str, Any]] = []
        self.records = 0

    def full(self) -> bool:
        return self.records >= BATCH_ENTRIES or self.body_bytes >= BATCH_BODY_BYTES

    def add(self, entry: Any) -> None:
        self.index += 1
        self.records += 1
        try:
            row, extra, body = self._row(entry)
        except (_BadEntry, TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
            reason = str(exc) if isinstance(exc, _BadEntry) else f"invalid entry ({type(exc).__name__})"
            self._reject_entry(entry, reason)
            return
        for k, v in row.items():
            self.cols[k].append(v)
        self.extras.append(extra)
        self.bodies.append(body)
        self.body_bytes += len(body) if body else 0

    def _row(self, entry: Any) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        if not isinstance(entry, dict):
            raise _BadEntry(f"entry is not an object ({type(entry).__name__})")
        req = entry.get("request")
        if not isinstance(req, dict):
            raise _BadEntry("no request object")
        url = req.get("url")
        if not isinstance(url, str) or not url.strip():
            raise _BadEntry("no request.url")
        ts, naive = _utc_micros(entry.get("startedDateTime"), self.tz)
        self.naive_ts += naive
        resp = entry.get("response")
        resp = resp if isinstance(resp, dict) else {}
        scheme, host, path, query, userinfo, request = _split_url(url.strip())
        rh = _headers(req.get("headers"))
        sh = _headers(resp.get("headers"))
        auth, principal = _auth(rh, query, userinfo, _cookies(req, rh.get("cookie")))
        protocol, odd_version = _protocol(req.get("httpVersion"))
        if protocol is None and odd_version is None:
            protocol, odd_version = _protocol(resp.get("httpVersion"))
        status = _status(resp.get("status"))
        content = resp.get("content")
        content = content if isinstance(content, dict) else {}
        content_size = _size(content.get("size"))
        bytes_out = _size(resp.get("bodySize"))
        if bytes_out is None:
            bytes_out = content_size
        bytes_in = _size(req.get("bodySize"))
        post = req.get("postData")
        if bytes_in is None and isinstance(post, dict) and isinstance(post.get("text"), str):
            bytes_in = len(post["text"].encode("utf-8", "replace"))
        duration = entry.get("time")
        duration = float(duration) if isinstance(duration, int | float) and 0 <= duration < 1e300 else None
        request_id = None
        for name in REQUEST_ID_HEADERS:
            request_id = sh.get(name) or rh.get(name)
            if request_id:
                break
        method = req.get("method")
        method = method.strip().upper() if isinstance(method, str) and method.strip() else None
        mime = content.get("mimeType") if isinstance(content.get("mimeType"), str) else None
        extra: dict[str, Any] = {}
        server_ip = entry.get("serverIPAddress")
        if isinstance(server_ip, str) and server_ip.strip():
            extra["server_ip"] = server_ip.strip().strip("[]")
        if mime:
            extra["mime"] = mime[:100]
        if content_size is not None and content_size != bytes_out:
            extra["content_size"] = content_size
        if odd_version:
            extra["http_version"] = odd_version
        if entry.get("_fromCache"):
            extra["from_cache"] = str(entry["_fromCache"])[:20]
        body = None
        text = content.get("text")
        if isinstance(text, str) and text and scannable(mime):
            encoding = content.get("encoding")
            body = body_text(text, encoding if isinstance(encoding, str) else None)
        ws, ws_text = _ws(entry.get("_webSocketMessages"))
        if ws:
            extra["ws"] = ws
            if ws_text:
                body = ws_text if body is None else body + "\n" + ws_text
        row = {
            "ts": ts,
            "method": method,
            "scheme": scheme,
            "host": host,
            "path": path,
            "query": query,
            "request": request,
            "protocol": protocol,
            "status": status,
            "bytes_out": bytes_out,
            "bytes_in": bytes_in,
            "duration_ms": duration,
            "user_agent": rh.get("user-agent"),
            "referer": rh.get("referer"),
            "request_id": request_id[:200] if request_id else None,
            "auth": auth,
            "principal": principal,
            "source_line": self.index,
        }
        return row, extra, body

    def _reject_entry(self, entry: Any, reason: str) -> None:
        try:
            canonical = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str)
            text = json.dumps(_redact_entry(entry), ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError):
            canonical = text = repr(type(entry))
        self.rejects.append(
            {
                "source_line": self.index,
                "byte_offset": None,
                "line_sha256": hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest(),
                "reason": reason,
                "text": (mask_text(text[: REJECT_TEXT_MAX * 2]) or "")[:REJECT_TEXT_MAX],
            }
        )

    def reject_broken(self, broken: _Broken) -> None:
        self.index += 1
        self.records += 1
        text = _redact_raw(broken.head.decode("utf-8", "replace"))[:REJECT_TEXT_MAX]
        self.rejects.append(
            {
                "source_line": self.index,
                "byte_offset": broken.offset,
                "line_sha256": broken.sha,
                "reason": f"{broken.reason} ({broken.length} bytes skipped)",
                "text": text,
            }
        )

    def flush(self) -> tuple[pl.DataFrame, pl.DataFrame, int]:
        n = len(self.extras)
        events = pl.DataFrame(self.cols, schema=_COLUMNS)
        if n:
            events = events.with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
            scanned = pl.Series(self.bodies, dtype=pl.String)
            counts = scan_bodies(scanned)
            kinds = kinds_column(counts)
            kinds = pl.select(pl.when(scanned.is_not_null()).then(kinds)).to_series()
            for i, row in enumerate(counts.iter_rows(named=True)):
                found = {k: v for k, v in row.items() if v}
                if found:
                    self.extras[i]["pii"] = found
            extra = [json.dumps(e, separators=(",", ":"), sort_keys=True) if e else None for e in self.extras]
            events = events.with_columns(kinds.alias("pii_kinds"), pl.Series("extra", extra, dtype=pl.String))
        rejects = empty_rejects()
        if self.rejects:
            rejects = conform_rejects(
                pl.DataFrame(
                    self.rejects,
                    schema={
                        "source_line": pl.UInt64,
                        "byte_offset": pl.UInt64,
                        "line_sha256": pl.String,
                        "reason": pl.String,
                        "text": pl.String,
                    },
                ).with_columns(
                    pl.lit(self.ctx.source_file).alias("source_file"), pl.lit(self.fmt).alias("source_format")
                )
            )
        records = self.records
        self._reset()
        return events, rejects, records


_COLUMNS: dict[str, pl.DataType] = {
    "ts": pl.Int64(),
    "method": pl.String(),
    "scheme": pl.String(),
    "host": pl.String(),
    "path": pl.String(),
    "query": pl.String(),
    "request": pl.String(),
    "protocol": pl.String(),
    "status": pl.Int16(),
    "bytes_out": pl.Int64(),
    "bytes_in": pl.Int64(),
    "duration_ms": pl.Float64(),
    "user_agent": pl.String(),
    "referer": pl.String(),
    "request_id": pl.String(),
    "auth": pl.String(),
    "principal": pl.String(),
    "source_line": pl.UInt64(),
}
