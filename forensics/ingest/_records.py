"""Pieces shared by the JSON-record ingestors: GCP, Azure Application Gateway, Kong, Envoy, Traefik, Caddy.

Every one of those formats is a stream of JSON objects (one a line, or inside a document), so they share:

* :func:`decode_objects`: one vectorised ``str.json_decode`` over the batch with the fields the format
  needs (a fixed struct type, so keys the format does not need are never materialised). polars fails the
  whole batch on one odd record (invalid JSON, or a value whose JSON type differs from the usual one,
  such as a header logged as a list when it was repeated); then the batch is decoded again in slices,
  and only the slices that still fail are read record by record in Python, to reject the invalid
  records and to project the odd ones onto the expected types. That record-by-record reading cannot
  raise for any one record: JSON nested deeper than the parser allows, numbers the decoder cannot hold
  and any other failure become a reject with a reason (see :func:`load_json`).
* :func:`read_lines` and :func:`read_records`: the ``read_document`` of the ingestors that cannot use
  the unit's line batches, either because a file may be one JSON document (GCP arrays, Azure
  ``{"records": [...]}`` blobs, streamed with ijson) or because their reject texts must be masked with
  knowledge of JSON keys (request headers logged by Kong and Caddy carry credentials that the
  free-text masking does not recognise, such as ``"apikey": "…"``).
* small expression helpers: IPv6-safe ``host:port`` splitting, exact epoch-seconds decoding.

Counts always add up: every line (or record of a document) becomes an event or a reject with a reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import ijson
import numpy as np
import polars as pl

from ..errors import InputReadError
from ..schema import REJECT_TEXT_MAX, conform_rejects, empty_rejects
from ..secrets import CREDENTIAL_PARAMS, fingerprint, mask_text
from . import _aws
from .base import FileContext, empty_reject_rows, reject_frame
from .reader import BOM, EvidenceFile, LineChunk, iter_line_chunks, prefetch

#: Rows per slice when a batch has to be decoded again after a failure.
FALLBACK_ROWS = 2_000
#: Records of a JSON document handed to the parser at once.
DOCUMENT_BATCH = 20_000
#: Deepest nesting read in a JSON document. ijson's memory grows with the square of the depth (about
#: 100 MB at this limit, gigabytes for a 200 kB bomb of 100,000 levels); a record deeper than Python's
#: encoder allows (~1,000) is one reject, and a document that goes past this limit stops there (partial).
DOCUMENT_MAX_DEPTH = 6000

Parse = Callable[[pl.DataFrame, FileContext], tuple[pl.DataFrame, pl.DataFrame]]

#: ``"clientPort":-`` (Azure, nginx escape=json): a number that was empty. Repaired to ``null``.
DASH_NUMBER = r'":\s*-\s*([,}])'

#: What a failed decode raises: polars' own errors, and a Rust panic (a ``BaseException``, not an
#: ``Exception``) on input its decoder does not expect.
DECODE_ERRORS = (pl.exceptions.PolarsError, pl.exceptions.PanicException)
#: Longest integer kept as a number when a record is read in Python (longer ones are kept as their
#: text: polars' decoder rejects integers beyond 128 bits, Python's beyond 4300 digits).
_INT_DIGITS = 18


# --------------------------------------------------------------------------------------------------
# Decoding


#: What container runtimes and compose put before each line of a container's output: the CRI/containerd
#: prefix (``2025-01-01T00:00:00.000000000Z stdout F ``) and docker compose's service column
#: (``caddy  | ``). Stripped before a line is read.
CONTAINER_PREFIX = (
    r"^(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}) (?:stdout|stderr) [FP] )?"
    r"(?:[A-Za-z0-9][A-Za-z0-9_.-]*\s+\| )?"
)


_PREFIX = re.compile(CONTAINER_PREFIX)


def strip_prefix_text(line: str) -> str:
    """One line without a container-runtime or compose prefix (for detection)."""
    return _PREFIX.sub("", line, count=1)


def head_object(line: str) -> dict[str, Any] | None:
    """A head line as a JSON object, for detection; None when it is not one (cheap check first)."""
    if not line.startswith("{"):
        return None
    obj, _ = load_json(line)
    return obj if isinstance(obj, dict) else None


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose repeated keys keep their first value, as polars' decoder does."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


def _float(token: str) -> float | str:
    """A JSON number with a fraction or exponent: a float, or its text when no float holds it (1e400)."""
    value = float(token)
    return value if math.isfinite(value) else token


def _int(token: str) -> int | str:
    """A JSON integer: an int, or its text when it is too long for the decoder."""
    return int(token) if len(token.lstrip("-")) <= _INT_DIGITS else token


def load_json(text: str) -> tuple[Any, str | None]:
    """One record's text read by Python's parser: (value, None), or (None, the reject reason). Never raises.

    Values polars' decoder cannot hold are read as their text: ``NaN``, ``Infinity`` and ``-Infinity``
    (not JSON, but Python's parser and some loggers accept them), numbers beyond a float (``1e400``) and
    very long integers. A repeated key keeps its first value (as in the vectorised path).
    """
    try:
        value = json.loads(
            text, parse_constant=str, parse_float=_float, parse_int=_int, object_pairs_hook=_first_wins
        )
    except RecursionError:
        return None, "JSON nested too deeply"
    except Exception:  # noqa: BLE001 - one bad record is a reject, never the end of the run
        return None, "invalid JSON"
    return value, None


def strip_container_prefix(frame: pl.DataFrame, column: str = "line") -> pl.DataFrame:
    """``column`` without a container-runtime or compose prefix (a cheap literal check first)."""
    has = pl.col(column).str.contains(r"^\d{4}-\d{2}-\d{2}T| \| ")
    if not frame.select(has.any()).item():
        return frame
    return frame.with_columns(pl.col(column).str.replace(CONTAINER_PREFIX, ""))


def drop_blank(frame: pl.DataFrame, column: str = "line") -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """(the non-blank rows, [rejects for the blank ones])."""
    blank = pl.col(column).str.strip_chars() == ""
    if not frame.select(blank.any()).item():
        return frame, []
    return frame.filter(~blank), [reject_frame(frame.filter(blank), "blank line")]


def decode_objects(
    frame: pl.DataFrame, dtype: pl.Struct, column: str = "line"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Decode ``column`` (JSON object text) into the struct column ``_j``; the rows that are not JSON
    objects come back as rejects (``invalid JSON``, ``not a JSON object``, ``JSON nested too deeply``).

    ``dtype`` lists only the wanted keys, as ``String`` (numbers and booleans are read as their text),
    ``List(String)`` or nested ``Struct``; other keys are skipped by the decoder.
    """
    expr = pl.col(column).str.json_decode(dtype).alias("_j")
    try:
        return frame.with_columns(expr), empty_reject_rows()
    except DECODE_ERRORS:
        pass
    parts: list[pl.DataFrame] = []
    rejects: list[pl.DataFrame] = []
    for start in range(0, frame.height, FALLBACK_ROWS):
        part = frame.slice(start, FALLBACK_ROWS)
        try:
            parts.append(part.with_columns(expr))
            continue
        except DECODE_ERRORS:
            pass
        texts: list[str | None] = []
        reasons: list[str | None] = []
        for value in part.get_column(column).to_list():
            fixed, reason = _fix_record(value, dtype)
            texts.append(fixed)
            reasons.append(reason)
        part = part.with_columns(
            pl.Series("_fixed", texts, dtype=pl.String), pl.Series("_why", reasons, dtype=pl.String)
        )
        part = _decode_fixed(part, dtype)
        bad = part.filter(pl.col("_why").is_not_null())
        if bad.height:
            rejects.append(reject_frame(bad, pl.col("_why")))
        parts.append(part.filter(pl.col("_why").is_null()).drop("_fixed", "_why"))
    out = pl.concat(parts, how="vertical_relaxed") if parts else frame.clear().with_columns(expr)
    return out, (pl.concat(rejects) if rejects else empty_reject_rows())


def _fix_record(value: str | None, dtype: pl.Struct) -> tuple[str | None, str | None]:
    """One record that failed the vectorised decode → (its JSON projected onto ``dtype``, None), or
    (None, the reject reason). Never raises."""
    if value is None:
        return None, "invalid JSON"
    obj, reason = load_json(value)
    if reason is not None:
        return None, reason
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    try:
        fixed = json.dumps(_project(obj, dtype), ensure_ascii=False, allow_nan=False)
    except RecursionError:
        return None, "JSON nested too deeply"
    except Exception:  # noqa: BLE001 - one bad record is a reject, never the end of the run
        return None, "JSON value not readable"
    return _utf8(fixed), None


def _utf8(value: str) -> str:
    """``value`` with any lone surrogate (read from an escape such as ``\\ud800``) replaced by U+FFFD:
    polars holds UTF-8 text only."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _decode_fixed(part: pl.DataFrame, dtype: pl.Struct) -> pl.DataFrame:
    """``_fixed`` (projected records, null where ``_why`` holds a reason) decoded into ``_j``; should one
    still fail, it is decoded record by record and the failing ones get a reason instead."""
    expr = pl.col("_fixed").str.json_decode(dtype).alias("_j")
    try:
        return part.with_columns(expr)
    except DECODE_ERRORS:
        pass
    decoded: list[pl.Series] = []
    reasons = part.get_column("_why").to_list()
    for i, fixed in enumerate(part.get_column("_fixed").to_list()):
        one = pl.Series("_fixed", [fixed if reasons[i] is None else None], dtype=pl.String)
        try:
            decoded.append(one.str.json_decode(dtype))
        except DECODE_ERRORS:
            reasons[i] = "JSON value not readable"
            decoded.append(pl.Series("_fixed", [None], dtype=pl.String).str.json_decode(dtype))
    column = pl.concat(decoded) if decoded else pl.Series("_j", [], dtype=dtype)
    return part.with_columns(column.alias("_j"), pl.Series("_why", reasons, dtype=pl.String))


def _project(value: Any, dtype: pl.DataType) -> Any:
    """A decoded JSON value reduced to ``dtype``: lists of header values joined by ", " where a single
    value is expected, objects where text is expected serialised, a single value where a list is
    expected wrapped. Numbers stay numbers, so they read back exactly as in the vectorised path."""
    if value is None:
        return None
    if isinstance(dtype, pl.Struct):
        if not isinstance(value, dict):
            return None
        return {f.name: _project(value.get(f.name), f.dtype) for f in dtype.fields}
    if isinstance(dtype, pl.List):
        items = value if isinstance(value, list) else [value]
        return [_project(v, dtype.inner) for v in items]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        parts = [_project(v, dtype) for v in value]
        return ", ".join(str(p) for p in parts if p is not None)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def field(path: str) -> pl.Expr:
    """``"httpRequest.remoteIp"`` → the struct field of ``_j`` (or an already unnested column)."""
    parts = path.split(".")
    expr = pl.col("_j")
    for p in parts:
        expr = expr.struct.field(p)
    return expr


def text(expr: pl.Expr) -> pl.Expr:
    """``-`` and empty mean "no value" (DESIGN.md): null."""
    return pl.when(~expr.is_in(["-", ""])).then(expr)


def first_header(expr: pl.Expr) -> pl.Expr:
    """A header logged as a list of values (Caddy, Go's ``http.Header``) → its values joined by ", "."""
    return text(expr.list.join(", "))


#: A credential-like parameter in a query string or a request target (``?api_key=…``, ``&token=…``).
QUERY_CREDENTIAL = r"(?i)(?:^|[?&;])(?:" + CREDENTIAL_PARAMS + r")="


def no_credential(headers_logged: pl.Expr, credentials: list[pl.Expr], target: pl.Expr) -> pl.Expr:
    """``auth`` = ``none`` where a source that logs every request header (Kong, Caddy) shows that the
    request carried no credential: no credential header and no credential-like query parameter. Null
    elsewhere (finalize then decides from the credential columns)."""
    absent = pl.all_horizontal([c.is_null() for c in credentials]) if credentials else pl.lit(True)
    clean = ~target.str.contains(QUERY_CREDENTIAL).fill_null(False)
    return pl.when(headers_logged & absent & clean).then(pl.lit("none"))


# --------------------------------------------------------------------------------------------------
# Values


def split_address(frame: pl.DataFrame, column: str, host: str, port: str | None = None) -> pl.DataFrame:
    """``addr[:port]`` → host and port columns, safe for IPv6.

    ``1.2.3.4:80`` and ``name:80`` split on the colon, ``[2001:db8::1]:443`` loses its brackets, and a
    bare IPv6 address (``2001:db8::1``, ``fe80::1``) is kept whole: its last group is not a port.
    ``-`` and empty are null.
    """
    value = text(pl.col(column).str.strip_chars())
    bracket = value.str.extract(r"^\[([0-9A-Fa-f:.%a-zA-Z]+)\](?::(\d{1,5}))?$", 1)
    bracket_port = value.str.extract(r"^\[[^\]]+\]:(\d{1,5})$", 1)
    single = value.str.count_matches(":") == 1
    plain_host = pl.when(single).then(value.str.extract(r"^(.*):\d{1,5}$", 1)).otherwise(value)
    plain_port = pl.when(single).then(value.str.extract(r":(\d{1,5})$", 1))
    exprs = [pl.coalesce(bracket, pl.coalesce(plain_host, value)).alias(host)]
    if port is not None:
        exprs.append(pl.coalesce(bracket_port, plain_port).cast(pl.Int32, strict=False).alias(port))
    return frame.with_columns(exprs)


def epoch_seconds(expr: pl.Expr) -> pl.Expr:
    """Epoch seconds written as decimal text (``1693840791.7564995``) → UTC, exact to the microsecond
    (the digits are cut, not rounded through a float). A value with an exponent goes through a float."""
    whole = expr.str.extract(r"^(-?\d+)(?:\.\d*)?$", 1).cast(pl.Int64, strict=False)
    frac = expr.str.extract(r"^-?\d+\.(\d+)$", 1).fill_null("0").str.slice(0, 6).str.pad_end(6, "0")
    micros = whole * 1_000_000 + frac.cast(pl.Int64, strict=False)
    via_float = (expr.cast(pl.Float64, strict=False) * 1_000_000).round(0).cast(pl.Int64, strict=False)
    return pl.from_epoch(pl.coalesce(micros, via_float), time_unit="us").dt.replace_time_zone("UTC")


def epoch_millis(expr: pl.Expr) -> pl.Expr:
    """Epoch milliseconds (Kong ``started_at``) → UTC."""
    ms = expr.cast(pl.Float64, strict=False).round(0).cast(pl.Int64, strict=False)
    return pl.from_epoch(ms, time_unit="ms").dt.cast_time_unit("us").dt.replace_time_zone("UTC")


def number(expr: pl.Expr, dtype: pl.DataType = pl.Int64) -> pl.Expr:
    """A number logged as a number or as text (``"423"``); ``-``, empty or negative → null."""
    value = expr.cast(pl.Float64, strict=False)
    return pl.when(value >= 0).then(value).cast(dtype, strict=False)


def json_object(fields: dict[str, pl.Expr]) -> pl.Expr:
    """``extra``: one JSON object per row (:func:`._aws.json_object`) with only the keys that have a
    value; null when none has. Vectorised: the encoded nulls are cut out of the text."""
    encoded = _aws.json_object(fields)
    compact = encoded.str.replace_all(r',"[^"\\]*":null', "").str.replace(r'^\{"[^"\\]*":null,?', "{")
    return pl.when(compact != "{}").then(compact)


# --------------------------------------------------------------------------------------------------
# Masking of reject texts


#: JSON keys whose values are credentials (request headers as Kong, Caddy, Traefik and Envoy log them).
_SECRET_KEY = re.compile(
    r'"((?:[^"\\]|\\.)*?(?:authorization|cookie|api[-_]?key|apikey|token|secret|passw|session)'
    r'(?:[^"\\]|\\.)*?)"(\s*:\s*)',
    re.IGNORECASE,
)
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)("|$)')


def mask_record_text(value: str) -> str:
    """A record's text with every credential value fingerprinted: the values of credential-named JSON
    keys (a string, or each string of a list; also when the line is cut inside the value), then the
    free-text shapes :func:`forensics.secrets.mask_text` knows (bearer tokens, ``key=value``, JWTs)."""
    out: list[str] = []
    pos = 0
    for m in _SECRET_KEY.finditer(value):
        if m.start() < pos:
            continue
        out.append(value[pos : m.end()])
        pos = m.end()
        rest = value[pos:]
        if rest.startswith("["):
            depth_end = rest.find("]")
            span = rest if depth_end < 0 else rest[: depth_end + 1]
            out.append(_STRING.sub(lambda s: '"' + fingerprint(s.group(1)) + s.group(2), span))
            pos += len(span)
        elif rest.startswith('"'):
            s = _STRING.match(rest)
            if s is not None:
                out.append('"' + fingerprint(s.group(1)) + s.group(2))
                pos += s.end()
    out.append(value[pos:])
    return mask_text("".join(out)) or ""


def _reject_text(raw: bytes) -> tuple[str, str]:
    text_ = raw[: REJECT_TEXT_MAX * 4].decode("utf-8", "backslashreplace")
    return hashlib.sha256(raw).hexdigest(), mask_record_text(text_)[:REJECT_TEXT_MAX]


def line_reject_rows(rej: pl.DataFrame, chunk: LineChunk, ctx: FileContext, fmt: str) -> pl.DataFrame:
    """Reject rows (``_idx``, ``source_line``, ``reason``) of a line chunk, with byte offset, the exact
    line's sha256 and its masked text."""
    if rej.height == 0:
        return empty_rejects()
    shas, texts, offsets = [], [], []
    for i in rej.get_column("_idx").to_list():
        sha, masked = _reject_text(chunk.raw_line(i))
        shas.append(chunk.line_sha.get(i) or sha)
        texts.append(masked)
        offsets.append(int(chunk.offsets[i]))
    return conform_rejects(
        rej.select("source_line", "reason").with_columns(
            pl.Series("byte_offset", offsets, dtype=pl.UInt64),
            pl.Series("line_sha256", shas, dtype=pl.String),
            pl.Series("text", texts, dtype=pl.String),
            pl.lit(ctx.source_file).alias("source_file"),
            pl.lit(fmt).alias("source_format"),
        )
    )


def record_reject_rows(rej: pl.DataFrame, texts: list[str], ctx: FileContext, fmt: str) -> pl.DataFrame:
    """Rejected records of a JSON document: the record re-serialised is the text (no byte offset)."""
    if rej.height == 0:
        return empty_rejects()
    pairs = [
        _reject_text(texts[i].encode("utf-8", "surrogatepass")) for i in rej.get_column("_idx").to_list()
    ]
    return conform_rejects(
        rej.select("source_line", "reason").with_columns(
            pl.lit(None, pl.UInt64).alias("byte_offset"),
            pl.Series("line_sha256", [p[0] for p in pairs], dtype=pl.String),
            pl.Series("text", [p[1] for p in pairs], dtype=pl.String),
            pl.lit(ctx.source_file).alias("source_file"),
            pl.lit(fmt).alias("source_format"),
        )
    )


# --------------------------------------------------------------------------------------------------
# Readers for ingestors that are not line-based


def read_lines(
    evidence: EvidenceFile, ctx: FileContext, parse: Parse, fmt: str
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame, int]]:
    """One JSON record a line, chunk by chunk: (events, reject rows, lines read) per chunk."""
    max_line = ctx.options.max_line
    chunks = prefetch(iter_line_chunks(evidence.blocks(), max_line=max_line, invalid="replace"))
    for chunk in chunks:
        frame = chunk.frame()
        rejects = []
        if chunk.too_long:
            idx = pl.Series(list(chunk.too_long), dtype=pl.UInt32)
            long_rows = frame.filter(pl.col("_idx").is_in(idx.implode()))
            reasons = [
                f"line longer than {max_line} bytes ({chunk.too_long[i]} bytes)"
                for i in long_rows.get_column("_idx").to_list()
            ]
            rejects.append(long_rows.select("_idx", "source_line", pl.Series("reason", reasons)))
            frame = frame.filter(~pl.col("_idx").is_in(idx.implode()))
        events, rej = parse(frame, ctx) if frame.height else (pl.DataFrame(), empty_reject_rows())
        if rej.height:
            rejects.append(rej.select("_idx", "source_line", "reason"))
        rej_all = pl.concat(rejects, how="vertical_relaxed") if rejects else empty_reject_rows()
        yield events, line_reject_rows(rej_all, chunk, ctx, fmt), chunk.lines.len()


def json_structure(
    chunk: bytes, depth: int, in_string: bool, odd_backslashes: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, bool]:
    """The structural brackets of ``chunk``, given the state before it: (their offsets, whether each
    opens, the depth after each, whether the chunk ends inside a string, and with an unpaired backslash).

    Vectorised, for ~3 ms per MB: a quote preceded by an odd run of backslashes is escaped; the other
    quotes toggle "inside a string"; a bracket counts when an even number of them precede it.
    """
    a = np.frombuffer(chunk, np.uint8)
    if not a.size:
        return np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.int64), in_string, odd_backslashes
    quote = a == 0x22
    backslash = a == 0x5C
    if odd_backslashes:
        quote[0] = False
    escaped = np.flatnonzero(quote[1:] & backslash[:-1]) + 1
    if escaped.size:
        run = np.ones(escaped.size, np.int64)  # backslashes right before each candidate quote
        back = escaped - 2
        alive = back >= 0
        reaches_start = ~alive
        while True:
            live = np.flatnonzero(alive)
            if not live.size:
                break
            more = backslash[back[live]]
            run[live[more]] += 1
            back[live] -= 1
            alive[live] = more
            reaches_start |= alive & (back < 0)
            alive &= back >= 0
        run += reaches_start & odd_backslashes
        quote[escaped[(run & 1) == 1]] = False
    quotes = np.flatnonzero(quote)
    if backslash[-1]:
        plain = np.flatnonzero(~backslash)
        tail = a.size - 1 - int(plain[-1]) if plain.size else a.size + odd_backslashes
        odd_out = bool(tail & 1)
    else:
        odd_out = False
    in_out = in_string ^ bool(quotes.size & 1)
    folded = a & 0xDF  # [ and { → 0x5B, ] and } → 0x5D
    opening = folded == 0x5B
    where = np.flatnonzero(opening | (folded == 0x5D))
    if where.size:
        outside = (np.searchsorted(quotes, where) & 1) == int(in_string)
        where = where[outside]
    opens = opening[where]
    depths = np.where(opens, 1, -1).cumsum() + depth
    return where, opens, depths, in_out, odd_out and in_out


class BlockStream:
    """The decompressed blocks as a file for ijson: strips a BOM, optionally repairs ``"key":-`` into
    ``"key":null`` on the fly (a carry of bytes at each block end keeps a split match intact), and
    remembers a corrupt-stream error for after the records read before it."""

    _CARRY = 64
    _DASH = re.compile(rb'(":\s*)-(\s*[,}\]])')

    def __init__(self, blocks: Iterator[bytes], repair: bool = False, max_depth: int | None = None) -> None:
        self._blocks = blocks
        # Nesting guard: ijson keeps the path of every open level (memory grows with the square of the
        # depth: gigabytes for a 200 kB bomb), so the bytes past ``max_depth`` levels never reach it.
        self._max_depth = max_depth
        self._depth, self._in_string, self._odd, self._seen = 0, False, False, 0
        self._wall: str | None = None  # set once the guard cut the stream: raised when it is reached
        self._buf = b""
        self._pos = 0  # read position in _buf
        self._pending = b""
        self._first = True
        self._eof = False
        self._repair = repair
        self.error: InputReadError | None = None
        self.repaired = 0

    def _pull(self) -> bool:
        try:
            block = next(self._blocks)
        except StopIteration:
            block = None
        except InputReadError as exc:
            self.error = exc
            block = None
        if block is None:
            self._eof = True
            data, self._pending = self._pending, b""
        else:
            if self._first and block.startswith(BOM):
                block = block[len(BOM) :]
            self._first = False
            data = self._pending + block
            if self._repair and len(data) > self._CARRY:
                data, self._pending = data[: -self._CARRY], data[-self._CARRY :]
            else:
                data, self._pending = (b"", data) if self._repair else (data, b"")
        if self._repair and data:
            data, n = self._DASH.subn(rb"\1null\2", data)
            self.repaired += n
        if self._max_depth is not None and data and self._wall is None:
            data = self._guard(data)
        self._buf += data
        return not self._eof

    def _guard(self, data: bytes) -> bytes:
        """``data`` up to the first bracket nested deeper than ``max_depth``; the stream ends there."""
        assert self._max_depth is not None
        where, _opens, depths, in_string, odd = json_structure(data, self._depth, self._in_string, self._odd)
        over = np.flatnonzero(depths > self._max_depth) if depths.size else depths
        if over.size:
            cut = int(where[int(over[0])])
            # ijson reads ahead before it yields: the records parsed in its last buffer go with the rest.
            self._wall = f"JSON nested deeper than {self._max_depth} levels at byte {self._seen + cut}"
            self._eof = True
            return data[:cut]
        if depths.size:
            self._depth = int(depths[-1])
        self._in_string, self._odd = in_string, odd
        self._seen += len(data)
        return data

    def _fill(self, n: int) -> None:
        """Pull blocks until ``n`` unread bytes are buffered (or the end); the read part is dropped first,
        so a block is copied once, not at every small read."""
        if self._eof or (n >= 0 and len(self._buf) - self._pos >= n):
            return
        self._buf, self._pos = self._buf[self._pos :], 0
        while (n < 0 or len(self._buf) < n) and not self._eof:
            self._pull()

    def read(self, n: int = -1) -> bytes:
        self._fill(n)
        end = len(self._buf) if n < 0 else self._pos + n
        out = self._buf[self._pos : end]
        self._pos = min(end, len(self._buf))
        if not out and self._wall is not None:
            raise ValueError(self._wall)
        return out

    def peek(self, n: int) -> bytes:
        """The next ``n`` bytes, left unread."""
        self._fill(n)
        return self._buf[self._pos : self._pos + n]

    def drain(self) -> None:
        """Read to the end so the evidence digests cover the whole file (past a nesting wall too)."""
        self._buf, self._pos = b"", 0
        try:
            for _ in self._blocks:
                pass
        except InputReadError as exc:
            self.error = self.error or exc


def _item_prefix(head: bytes, list_keys: tuple[str, ...]) -> str | None:
    """The ijson prefix of the records when the document opens in one of the two usual shapes."""
    if re.match(rb"\s*\[", head):
        return "item"
    m = re.match(rb'\s*\{\s*"([^"\\]+)"\s*:\s*\[', head)
    if m is not None and m.group(1).decode() in list_keys:
        return m.group(1).decode() + ".item"
    return None


def iter_records(stream: BlockStream, list_keys: tuple[str, ...]) -> Iterator[Any]:
    """The records of a JSON document, one at a time, never the whole document in memory.

    Top-level values follow each other (concatenated or newline-separated documents are fine): an array
    yields its items; an object whose key in ``list_keys`` holds an array (``{"records": [...]}``,
    ``{"entries": [...]}``) yields that array's items; any other object is itself a record.

    A document that opens as an array, or with a list key, is read by ijson's C item builder (several
    times faster); its concatenated followers are expected to have the same shape, as one producer
    writes them. Any other opening goes through the general event walk below.
    """
    prefix = _item_prefix(stream.peek(4096), list_keys)
    if prefix is not None:
        yield from ijson.items(stream, prefix, multiple_values=True, use_float=True)
        return
    yield from _walk_records(stream, list_keys)


class ValueBuilder:
    """One JSON value rebuilt from ijson's events, from its opening event until it closes."""

    def __init__(self, event: str, value: Any) -> None:
        self._builder = ijson.ObjectBuilder()
        self._builder.event(event, value)
        self._depth = 1

    def add(self, event: str, value: Any) -> bool:
        """Feed one event; whether the value is now complete (see :attr:`value`)."""
        self._builder.event(event, value)
        if event in ("start_map", "start_array"):
            self._depth += 1
        elif event in ("end_map", "end_array"):
            self._depth -= 1
        return self._depth == 0

    @property
    def value(self) -> Any:
        return self._builder.value


def _walk_records(stream: BlockStream, list_keys: tuple[str, ...]) -> Iterator[Any]:
    """:func:`iter_records` for any opening, event by event."""
    builder: ValueBuilder | None = None
    mode: str | None = None  # None | "array" | "object" | "wrapper" | "after"
    top: ijson.ObjectBuilder | None = None
    wrapper_key = ""
    candidate: str | None = None
    for prefix, event, value in ijson.parse(stream, multiple_values=True, use_float=True):
        if builder is not None:
            if builder.add(event, value):
                yield builder.value
                builder = None
            continue
        if mode is None:
            if event == "start_array":
                mode = "array"
            elif event == "start_map":
                mode, top, candidate = "object", ijson.ObjectBuilder(), None
                top.event(event, value)
            else:
                yield value  # a bare scalar: not a record (the caller rejects it)
            continue
        if mode in ("array", "wrapper"):
            item = "item" if mode == "array" else f"{wrapper_key}.item"
            if prefix == item and event in ("start_map", "start_array"):
                builder = ValueBuilder(event, value)
            elif prefix == item:
                yield value
            elif mode == "array" and prefix == "" and event == "end_array":
                mode = None
            elif mode == "wrapper" and prefix == wrapper_key and event == "end_array":
                mode = "after"
            continue
        if mode == "after":
            if prefix == "" and event == "end_map":
                mode = None
            continue
        # mode == "object": a record, or a wrapper once one of list_keys opens an array
        if prefix == "" and event == "map_key":
            candidate = value if value in list_keys else None
        elif candidate is not None and prefix == candidate and event == "start_array":
            mode, wrapper_key, top = "wrapper", candidate, None
            continue
        assert top is not None
        top.event(event, value)
        if prefix == "" and event == "end_map":
            yield top.value
            mode, top = None, None


def read_records(
    evidence: EvidenceFile,
    ctx: FileContext,
    parse: Parse,
    fmt: str,
    list_keys: tuple[str, ...],
    repair: bool = False,
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame, int]]:
    """A JSON document, streamed: each record re-serialised as one JSON line and parsed in batches by the
    ingestor's own ``parse``. A record's ``source_line`` is its ordinal in the document. Broken JSON ends
    the file as *partial*, with every record before the damage kept."""
    stream = BlockStream(evidence.blocks(), repair=repair, max_depth=DOCUMENT_MAX_DEPTH)
    batch: list[tuple[str, str | None]] = []
    ordinal = 0
    error: str | None = None
    try:
        for record in iter_records(stream, list_keys):
            batch.append(_record_text(record))
            if len(batch) >= DOCUMENT_BATCH:
                yield _document_batch(batch, ordinal, ctx, parse, fmt)
                ordinal += len(batch)
                batch = []
    except (ijson.JSONError, ValueError) as exc:
        error = f"invalid JSON after {ordinal + len(batch)} records: {str(exc).splitlines()[0][:200]}"
    if batch:
        yield _document_batch(batch, ordinal, ctx, parse, fmt)
    stream.drain()
    if stream.repaired:
        ctx.notes.append(f'{stream.repaired} empty number(s) written as "-" read as null')
    if stream.error is not None:
        raise stream.error
    if error is not None:
        raise InputReadError(error)


def _record_text(record: Any) -> tuple[str, str | None]:
    """A record of a document as one JSON line: (text, None), or ("", the reject reason) when it cannot
    be written (nested deeper than the encoder allows). Never raises."""
    try:
        return _utf8(json.dumps(record, ensure_ascii=False, separators=(",", ":"))), None
    except RecursionError:
        return "", "JSON nested too deeply"
    except Exception:  # noqa: BLE001 - one bad record is a reject, never the end of the run
        return "", "JSON value not readable"


def _document_batch(
    batch: list[tuple[str, str | None]], ordinal: int, ctx: FileContext, parse: Parse, fmt: str
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    n = len(batch)
    texts = [t for t, _ in batch]
    frame = pl.DataFrame(
        {
            "line": pl.Series(texts, dtype=pl.String),
            "source_line": pl.int_range(ordinal + 1, ordinal + n + 1, dtype=pl.UInt64, eager=True),
            "_idx": pl.int_range(0, n, dtype=pl.UInt32, eager=True),
        }
    )
    reasons = pl.Series("reason", [r for _, r in batch], dtype=pl.String)
    rejects: list[pl.DataFrame] = []
    if reasons.null_count() < n:  # records that could not be written again: rejected here
        unwritten = frame.with_columns(reasons).filter(pl.col("reason").is_not_null())
        rejects.append(unwritten.select("_idx", "source_line", "reason"))
        frame = frame.filter(reasons.is_null())
    events, rej = parse(frame, ctx) if frame.height else (pl.DataFrame(), empty_reject_rows())
    if rej.height:
        rejects.append(rej.select("_idx", "source_line", "reason"))
    rej_all = pl.concat(rejects, how="vertical_relaxed") if rejects else empty_reject_rows()
    return events, record_reject_rows(rej_all, texts, ctx, fmt), n


__all__ = [
    "DASH_NUMBER",
    "DECODE_ERRORS",
    "QUERY_CREDENTIAL",
    "CONTAINER_PREFIX",
    "BlockStream",
    "decode_objects",
    "drop_blank",
    "epoch_millis",
    "epoch_seconds",
    "field",
    "first_header",
    "iter_records",
    "json_object",
    "head_object",
    "load_json",
    "line_reject_rows",
    "record_reject_rows",
    "mask_record_text",
    "no_credential",
    "number",
    "read_lines",
    "read_records",
    "split_address",
    "strip_container_prefix",
    "strip_prefix_text",
    "text",
]
