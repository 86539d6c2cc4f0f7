"""What every ingestor is, and the normalisation every ingestor's output goes through.

An ingestor recognises its format (:meth:`Ingestor.sniff`: a cheap literal check, then a trial parse of
the first lines, giving a confidence) and parses it: line formats get a frame of lines and return
intermediate columns; document formats (HAR, JSON blobs) stream their records. :func:`finalize` then
does what is common to all: client resolution, request-line and URL splitting, unescaping, credential
masking, endpoint templating, provenance, and the one event schema.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from ..clients import Network, canonical_addresses, resolve_clients
from ..endpoints import template_paths
from ..schema import conform, conform_rejects
from ..secrets import auth_from_header, fingerprint, mask_series
from ._time import localize
from .reader import MAX_LINE, EvidenceFile

ROLES = ("traffic", "reference")


@dataclass(frozen=True)
class IngestOptions:
    """What the user said about the evidence (CLI options of ``forensics ingest``)."""

    format: str | None = None  # ingestor or preset name; None = detect
    log_format: str | None = None  # nginx log_format / Apache LogFormat string
    trusted_proxies: tuple[str, ...] = ()
    tz: str | None = None  # zone for sources that write local time without an offset
    role: str | None = None  # None = the ingestor's default
    max_line: int = MAX_LINE


@dataclass
class Detection:
    """An ingestor's claim on a file."""

    ingestor: str
    confidence: float
    how: str  # human-readable: what matched
    params: dict[str, Any] = field(default_factory=dict)
    variant: str | None = None


@dataclass
class FileContext:
    """Everything a parse needs to know about the file beyond its bytes."""

    source_file: str  # path as recorded in the manifest ("" when a batch spans files: then a column says)
    observer: str
    options: IngestOptions
    nets: list[Network]
    detection: Detection
    # source_file → [ambiguous, non-existent] rows, for the files that had local (offset-less) times
    dst: dict[str, list[int]] = field(default_factory=dict)
    # The batch's bytes, line for line as the frame handed to parse() (None when lines were left out or
    # repaired): parsers that split fields with a CSV reader read them instead of re-joining the lines.
    raw: bytes | None = None
    notes: list[str] = field(default_factory=list)


def local_time_note(options: IngestOptions) -> str:
    """The manifest note of a file whose times had no offset."""
    if options.tz is None:
        return "local times without offset read as UTC (no --tz given)"
    return f"local times without offset read in {options.tz}"


class Ingestor:
    """Base class: a format that can be recognised and parsed."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""  # one line: what it reads
    recognised_by: ClassVar[str] = ""  # one line: how detection recognises it
    default_role: ClassVar[str] = "traffic"
    invalid_utf8: ClassVar[str] = "escape"  # how the reader repairs invalid UTF-8 for this format
    line_based: ClassVar[bool] = True
    #: Event columns the ingestor masks itself (fields it knows cannot carry client text stay as they
    #: are); finalize() masks every other free-text column.
    premasked: ClassVar[frozenset[str]] = frozenset()

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        raise NotImplementedError

    def parse(self, frame: pl.DataFrame, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Line formats: ``frame`` has ``line``, ``source_line``, ``_idx``; return (events, rejects).

        Rejects carry ``_idx`` and ``reason``; events carry ``source_line`` and any event or intermediate
        columns (see :func:`finalize`).
        """
        raise NotImplementedError

    def read_document(
        self, evidence: EvidenceFile, ctx: FileContext
    ) -> Iterator[tuple[pl.DataFrame, pl.DataFrame, int]]:
        """Document formats: yield (events, rejects, records read) batches; rejects are full reject rows."""
        raise NotImplementedError


def sniff_lines(lines: list[str]) -> list[str]:
    """The non-blank head lines detection judges on."""
    return [ln for ln in lines if ln.strip()]


def detect_by_line_kind(
    name: str,
    body: list[str],
    kind: Callable[[str], str | None],
    what: str,
    weight: float = 0.97,
    params: dict[str, Any] | None = None,
) -> Detection | None:
    """A claim from classifying each head line: confidence is the share of lines of a known kind, the
    variant the commonest kind (formats whose files mix variants still name the one that dominates)."""
    kinds = [kind(ln) for ln in body]
    ok = sum(1 for k in kinds if k)
    if not ok:
        return None
    variant = max({k for k in kinds if k}, key=kinds.count)
    return Detection(
        name,
        round(weight * ok / len(body), 3),
        f"{ok}/{len(body)} head lines are {what} ({variant})",
        params=dict(params or {}),
        variant=variant,
    )


# --------------------------------------------------------------------------------------------------
# Helpers shared by formats.

_UNESCAPE_RE = re.compile(r"\\x([0-9A-Fa-f]{2})|\\([\"\\])")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def unescape_text(value: str | None) -> str | None:
    """Undo nginx (``\\xHH``) and Apache (``\\xhh``, ``\\"``, ``\\\\``) escaping when the result is text.

    A UTF-8 user agent logged as ``Caf\\xC3\\xA9`` becomes ``Café``. When the bytes are not valid UTF-8
    or contain control characters (binary sent to an HTTP port) the escaped form is kept: it is the
    exact record, and safe to display.
    """
    if value is None or "\\" not in value:
        return value
    out = bytearray()
    pos = 0
    for m in _UNESCAPE_RE.finditer(value):
        out += value[pos : m.start()].encode("utf-8")
        out += bytes([int(m.group(1), 16)]) if m.group(1) else m.group(2).encode()
        pos = m.end()
    out += value[pos:].encode("utf-8")
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError:
        return value
    if _CONTROL_RE.search(text):
        return value
    return text


def unescape_series(values: pl.Series) -> pl.Series:
    """Vectorised selection, scalar work only on the rows that contain a backslash."""
    hit = values.str.contains("\\", literal=True).fill_null(False)
    if not hit.any():
        return values
    idx = hit.arg_true()
    fixed = pl.Series([unescape_text(v) for v in values.gather(idx).to_list()], dtype=pl.String)
    return values.scatter(idx, fixed)


#: Columns whose values repeat across rows (a few hundred user agents in a million requests): their
#: per-row text work (unescaping, masking) runs over the distinct values instead.
REPETITIVE_COLUMNS = frozenset({"user_agent", "referer"})


def on_distinct(values: pl.Series, fn: Callable[[pl.Series], pl.Series]) -> pl.Series:
    """``fn`` applied to the distinct values only and mapped back; the column itself is returned
    untouched when ``fn`` changed none of them (the rule). A hash of each value costs less than an
    Aho-Corasick or regex scan of each long user agent."""
    distinct = values.unique()
    out = fn(distinct.clone())  # a clone: fn may scatter into its argument in place
    changed = distinct.ne_missing(out)
    if not changed.any():
        return values
    return values.replace(distinct.filter(changed), out.filter(changed))


# "GET /path?x HTTP/1.1" → method, target, protocol. The target may contain spaces ("/a[ ]b"):
# the method is split off the left and the protocol off the right.
_REQUEST_RE = r"^([A-Za-z][A-Za-z0-9_-]*) (.*?)(?: (HTTP/[0-9.]+|HTTP))?$"
_REQUEST_FAST_RE = r"^([A-Z]+) (\S+) (HTTP/[0-9.]+)$"
# The userinfo of an absolute URL (``user:password@``) is dropped: a password, never a host.
_URL_RE = r"^([A-Za-z][A-Za-z0-9+.-]*)://(?:[^/?#@]*@)?([^/?#]*)(.*)$"


def split_request(frame: pl.DataFrame) -> pl.DataFrame:
    """``request_line`` → method, target, protocol; the raw line kept in ``request`` when unreadable."""
    if "request_line" not in frame.columns:
        return frame
    # Fast path (almost every line): "METHOD target HTTP/x" with no space in the target; the general
    # regex (spaces in the target, no protocol) runs only on the rest.
    # split_exact is several times cheaper than a capture regex; a part that fails the shape check
    # (a method of letters, a protocol "HTTP/…", no fourth part) sends the line to the regexes.
    line = frame.get_column("request_line")
    parts = frame.select(
        pl.col("request_line").str.split_exact(" ", 3).struct.rename_fields(["1", "2", "3", "4"])
    ).unnest("request_line")
    m, t, p = (parts.get_column(k) for k in ("1", "2", "3"))
    shape = (
        parts.select(
            pl.col("4").is_null()
            & pl.col("3").str.starts_with("HTTP/")
            & pl.col("1").str.contains(r"^[A-Z]+$")
            & (pl.col("2").str.len_bytes() > 0)
        )
        .to_series()
        .fill_null(False)
    )
    m, t, p = (pl.select(pl.when(shape).then(x)).to_series() for x in (m, t, p))
    miss = m.is_null() & line.is_not_null()
    if miss.any():
        idx = miss.arg_true()
        slow = line.gather(idx).str.extract_groups(_REQUEST_RE).struct.unnest()  # spaces, no protocol
        m, t, p = (s.scatter(idx, slow.get_column(k)) for s, k in ((m, "1"), (t, "2"), (p, "3")))
    frame = frame.with_columns(m.alias("_m"), t.alias("_t"), p.alias("_p"))
    method, target, protocol = pl.col("_m"), pl.col("_t"), pl.col("_p")
    readable = method.is_not_null() & (target.str.len_bytes() > 0)
    cols = {
        "method": pl.when(readable).then(method),
        "target": pl.when(readable).then(target),
        "protocol": pl.when(readable).then(protocol),
        "request": pl.when(~readable).then(pl.col("request_line")),
    }
    exprs = []
    for name, expr in cols.items():
        if name in frame.columns and name != "request":
            expr = pl.coalesce(pl.col(name), expr)
        exprs.append(expr.alias(name))
    return frame.with_columns(exprs).drop("_m", "_t", "_p", "request_line")


def split_target(frame: pl.DataFrame) -> pl.DataFrame:
    """``target`` (path?query, or an absolute URL) → scheme, host, path, query."""
    if "target" not in frame.columns:
        return frame
    # Origin-form targets ("/path?q") are the rule; only absolute URLs need the URL regex.
    origin = frame.select(pl.col("target").str.starts_with("/").fill_null(True).all()).item()
    if origin:
        rest = pl.col("target")
        parts = frame.select(rest.str.splitn("?", 2).struct.rename_fields(["_path", "_query"])).unnest(
            "target"
        )
        frame = frame.hstack(parts)
        new = {"path": pl.col("_path"), "query": pl.col("_query")}
    else:
        url = frame.select(
            pl.col("target").str.extract_groups(_URL_RE).struct.rename_fields(["_s", "_h", "_r"])
        )
        frame = frame.hstack(url.unnest("target"))
        is_abs = pl.col("_s").is_not_null()
        rest = pl.when(is_abs).then(pl.col("_r")).otherwise(pl.col("target"))
        parts = frame.select(rest.str.splitn("?", 2).struct.rename_fields(["_path", "_query"]).alias("_sp"))
        frame = frame.hstack(parts.unnest("_sp"))
        new = {
            "path": pl.when(is_abs & (pl.col("_path") == "")).then(pl.lit("/")).otherwise(pl.col("_path")),
            "query": pl.col("_query"),
            "scheme": pl.when(is_abs).then(pl.col("_s").str.to_lowercase()),
            "host": pl.when(is_abs).then(pl.col("_h")),
        }
    exprs = []
    for name, expr in new.items():
        if name in frame.columns:
            # A column the format logged itself (e.g. $scheme, $host) wins for scheme/host; the
            # target's path/query win over format columns of the same name only when present.
            expr = (
                pl.coalesce(pl.col(name), expr)
                if name in ("scheme", "host")
                else pl.coalesce(expr, pl.col(name))
            )
        exprs.append(expr.alias(name))
    drop = [c for c in ("_s", "_h", "_r", "_path", "_query", "target") if c in frame.columns]
    return frame.with_columns(exprs).drop(drop)


_CREDENTIAL_COLUMNS = {"authorization": "authorization", "api_key": "apikey", "cookie": "cookie"}
_PRECEDENCE = {"authorization": 0, "apikey": 1, "cookie": 2}


def _fingerprints(values: pl.Series, kind: str) -> tuple[pl.Series, pl.Series]:
    """(auth kinds, principal fingerprints) for a credential column; hashing once per distinct value."""
    uniq = values.drop_nulls().unique().to_list()
    if kind == "authorization":
        mapping = {v: auth_from_header(v) for v in uniq}
    else:
        mapping = {v: (kind, fingerprint(v)) for v in uniq}
    kinds = values.replace_strict({k: v[0] for k, v in mapping.items()}, default=None, return_dtype=pl.String)
    fps = values.replace_strict({k: v[1] for k, v in mapping.items()}, default=None, return_dtype=pl.String)
    return kinds, fps


def merge_extra(frame: pl.DataFrame, fields: dict[str, pl.Series]) -> pl.DataFrame:
    """Add keys to the ``extra`` JSON object of each row (creating it where there is none)."""
    if not fields:
        return frame
    new = pl.DataFrame(fields).select(pl.struct(pl.all()).struct.json_encode().alias("_new")).to_series()
    if "extra" not in frame.columns:
        return frame.with_columns(new.alias("extra"))
    merged = (
        pl.when(pl.col("extra").is_null())
        .then(pl.col("_new"))
        .otherwise(pl.col("extra").str.strip_suffix("}") + pl.lit(",") + pl.col("_new").str.strip_prefix("{"))
    )
    return frame.with_columns(new.alias("_new")).with_columns(merged.alias("extra")).drop("_new")


def _principal_from_headers(frame: pl.DataFrame) -> pl.DataFrame:
    """Logged credentials (Authorization, API-key headers and arguments, cookies, api_key in the query)
    become ``principal`` fingerprints and an ``auth`` kind; the values themselves never stay."""
    n = frame.height
    principal = (
        frame.get_column("principal")
        if "principal" in frame.columns
        else pl.Series([None] * n, dtype=pl.String)
    )
    # Basic-auth user names ($remote_user / %u) are identities, not secrets.
    auth = pl.select(pl.when(principal.is_not_null()).then(pl.lit("basic"))).to_series()
    if "auth" in frame.columns:
        # A source that shows every request header (HAR) decides the kind itself, "none" included.
        given = frame.get_column("auth").cast(pl.String)
        auth = pl.select(pl.coalesce(given, auth)).to_series()
    creds: list[tuple[str, str]] = [(c, k) for c, k in _CREDENTIAL_COLUMNS.items() if c in frame.columns]
    from .logformat import secret_kind

    creds += [(c, secret_kind(c.split(":", 1)[1])) for c in frame.columns if c.startswith("secret:")]
    creds.sort(key=lambda ck: _PRECEDENCE[ck[1]])
    for_extra: dict[str, pl.Series] = {}
    for col, kind in creds:
        kinds, fps = _fingerprints(frame.get_column(col), kind)
        principal = pl.select(pl.coalesce(principal, fps)).to_series()
        auth = pl.select(pl.coalesce(auth, kinds)).to_series()
        if col.startswith("secret:"):
            for_extra[col.split(":", 1)[1]] = fps
    if "query" in frame.columns and frame.get_column("query").str.contains("fp:", literal=True).any():
        # After masking, a credential parameter reads "api_key=fp:…": that fingerprint names the caller.
        fp = frame.get_column("query").str.extract(
            r"(?i)(?:^|&)(?:api[_-]?key|apikey|key|access[_-]?token|token)=(fp:[0-9a-f]{16})"
        )
        principal = pl.select(pl.coalesce(principal, fp)).to_series()
        auth = pl.select(pl.coalesce(auth, pl.when(fp.is_not_null()).then(pl.lit("apikey")))).to_series()
    frame = frame.drop([c for c, _ in creds]).with_columns(principal.alias("principal"), auth.alias("auth"))
    return merge_extra(frame, for_extra)


#: Free-text columns that may carry credentials; masked in every event.
MASKED_COLUMNS = ["query", "request", "referer", "extra", "path", "user_agent", "request_id"]


def _unescape_and_mask(values: pl.Series) -> pl.Series:
    return mask_series(unescape_series(values))


def _per_value(values: pl.Series, fn: Callable[[pl.Series], pl.Series]) -> pl.Series:
    return on_distinct(values, fn) if values.name in REPETITIVE_COLUMNS else fn(values)


def finalize(
    frame: pl.DataFrame, ctx: FileContext, source_format: str, premasked: frozenset[str] = frozenset()
) -> pl.DataFrame:
    """Intermediate columns → the event schema. Common to every ingestor."""
    if frame.height == 0:
        return conform(frame)
    from .logformat import ESCAPED_COLUMNS

    if "source_file" not in frame.columns:
        frame = frame.with_columns(pl.lit(ctx.source_file).alias("source_file"))
    if "_ts_local" in frame.columns:  # local wall-clock time without an offset
        tz = ctx.options.tz or "UTC"
        utc, ambiguous, gap = localize(frame.get_column("_ts_local"), tz)
        if "ts" in frame.columns:
            utc = frame.select(pl.coalesce(pl.col("ts"), utc)).to_series()
        frame = frame.drop("_ts_local")
        counts = (
            pl.DataFrame({"f": frame.get_column("source_file").cast(pl.String), "a": ambiguous, "g": gap})
            .group_by("f")
            .agg(pl.col("a").sum(), pl.col("g").sum())
        )
        for f, a, g in counts.iter_rows():
            tally = ctx.dst.setdefault(f, [0, 0])
            tally[0] += int(a)
            tally[1] += int(g)
        frame = frame.with_columns(utc.alias("ts"))
    frame = split_request(frame)
    frame = split_target(frame)
    esc = [c for c in ESCAPED_COLUMNS if c in frame.columns and frame.schema[c] == pl.String]
    # Repetitive columns are unescaped and masked in one pass over their distinct values.
    masked_early = {c for c in esc if c in REPETITIVE_COLUMNS and c in MASKED_COLUMNS and c not in premasked}
    if esc:
        frame = frame.with_columns(
            _per_value(
                frame.get_column(c), _unescape_and_mask if c in masked_early else unescape_series
            ).alias(c)
            for c in esc
        )
    if "remote_addr" in frame.columns or "xff" in frame.columns:
        frame = resolve_clients(frame, ctx.nets)
        frame = frame.drop([c for c in ("remote_addr", "xff") if c in frame.columns])
    if "_peer_port" in frame.columns:  # the peer's port is the client's where the client is the peer
        port = pl.when(pl.col("peer_ip").is_null()).then(pl.col("_peer_port"))
        if "client_port" in frame.columns:
            port = pl.coalesce(pl.col("client_port"), port)
        frame = frame.with_columns(port.alias("client_port")).drop("_peer_port")
    addresses = [c for c in ("client_ip", "peer_ip") if c in frame.columns and frame.schema[c] == pl.String]
    if addresses:
        before = [frame.get_column(c) for c in addresses]
        after = [canonical_addresses(s) for s in before]
        changed = any(a is not b for a, b in zip(after, before, strict=True))  # the rule: nothing to do
        if changed:
            frame = frame.with_columns(after)
        if changed and len(addresses) == 2:  # the peer is kept only where it differs from the client
            frame = frame.with_columns(
                pl.when(pl.col("peer_ip").ne_missing(pl.col("client_ip")))
                .then(pl.col("peer_ip"))
                .alias("peer_ip")
            )
    if "server_name" in frame.columns:
        frame = frame.with_columns(
            (pl.coalesce("host", "server_name") if "host" in frame.columns else pl.col("server_name")).alias(
                "host"
            )
        ).drop("server_name")
    if "host" in frame.columns:
        # Hosts compare across sources: lower case, without a port (ALB logs "host:443", nginx "$host").
        # Only the rows that need it are rewritten.
        host = pl.col("host")
        needs = host.str.contains(r"[A-Z]|:\d+$").fill_null(False)
        if frame.select(needs.any()).item():
            frame = frame.with_columns(
                pl.when(needs).then(host.str.to_lowercase().str.replace(r":\d+$", "")).otherwise(host)
            )
    if "bytes_out_total" in frame.columns:
        expr = pl.col("bytes_out_total")
        if "bytes_out" in frame.columns:
            expr = pl.coalesce("bytes_out", "bytes_out_total")
        frame = frame.with_columns(expr.alias("bytes_out")).drop("bytes_out_total")
    for c in MASKED_COLUMNS:
        if c in frame.columns and c not in premasked | masked_early and frame.schema[c] == pl.String:
            frame = frame.with_columns(_per_value(frame.get_column(c), mask_series).alias(c))
    frame = _principal_from_headers(frame)
    if "path" in frame.columns:
        frame = frame.with_columns(template_paths(frame.get_column("path")).alias("endpoint"))
    # Observer: what the format itself names (an ALB), else the file's (batched files carry a column).
    observer = pl.col("_file_observer") if "_file_observer" in frame.columns else pl.lit(ctx.observer)
    if "observer" in frame.columns:
        observer = pl.coalesce(pl.col("observer").cast(pl.String), observer)
    frame = frame.with_columns(pl.lit(source_format).alias("source_format"), observer.alias("observer"))
    return conform(frame)


def reject_frame(frame: pl.DataFrame, reason: str | pl.Expr) -> pl.DataFrame:
    """Rows of a lines frame (``_idx``, ``source_line``) as rejects with a reason (text added later)."""
    r = reason if isinstance(reason, pl.Expr) else pl.lit(reason)
    return frame.select("_idx", "source_line", r.alias("reason"))


def empty_reject_rows() -> pl.DataFrame:
    return pl.DataFrame(schema={"_idx": pl.UInt32, "source_line": pl.UInt64, "reason": pl.String})


__all__ = [
    "ROLES",
    "Detection",
    "FileContext",
    "IngestOptions",
    "Ingestor",
    "conform_rejects",
    "empty_reject_rows",
    "finalize",
    "reject_frame",
    "sniff_lines",
    "split_request",
    "split_target",
    "unescape_text",
]
