"""Requests → raw evidence files: the ALB S3 tree, the gateways' rotated nginx logs, the HAR capture.

Lines are rendered in bulk with polars string expressions (one pass per format over every request),
then cut into files with numpy boundaries; gzip runs in a thread pool (zlib releases the GIL). Every
byte is a function of the seed: gzip headers carry mtime 0 and no file name, file names come from the
seeded stream, nothing reads the clock.

Infrastructure (fixed, fictional): one internet-facing ALB ``app/api-prod/…`` in us-west-2 with 2 nodes
(3 from ``--scale 2``), forwarding to two nginx gateways on port 8080 whose clocks are on
America/Los_Angeles time.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from .scenario import ENDPOINTS, HOST, PARTNER_KEY, PROBES, SERVER_TZ, US, iso

ACCOUNT = "210987654321"
REGION = "us-west-2"
LB_NAME = "api-prod"
LB_ID = "7f3a9c1d2e4b5a60"
ELB = f"app/{LB_NAME}/{LB_ID}"
TARGET_GROUP = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/api-gateways/3c9e1f0a7b2d4e61"
CERT = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/8d2f6a1e-4b7c-4e0a-9f3d-2c5b7e9a1f04"
NODES = ["10.0.1.37", "10.0.2.152", "10.0.3.88"]  # the balancer's nodes (one per availability zone)
GATEWAYS = [("gw1", "10.0.1.201"), ("gw2", "10.0.2.214")]
GATEWAY_PORT = 8080
INTERNAL_SCANNER = "10.0.9.14"  # a vulnerability scanner inside the VPC, talking to a gateway directly
NGINX_MAIN = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for"'
)
ROTATE_AT = (6, 25)  # cron.daily on Debian: 06:25 local time
ALB_INTERVAL = 300 * US
GZIP_LEVEL = 6


def node_count(scale: float) -> int:
    return 2 if scale < 2 else 3


# --------------------------------------------------------------------------------------------------
# The request table as text columns


@dataclass(frozen=True)
class Lookups:
    """The string tables numeric requests point into (addresses, user agents)."""

    addresses: pl.Series
    uas: pl.Series

    @classmethod
    def of(cls, addresses: list[str], uas: list[str]) -> Lookups:
        return cls(pl.Series(addresses, dtype=pl.String), pl.Series(uas, dtype=pl.String))


def request_frame(table: dict[str, np.ndarray]) -> pl.DataFrame:
    """The request table as a numeric frame; text is added per chunk (:func:`with_text`) to bound memory."""
    return pl.DataFrame(
        {
            "t": table["t"],
            "t0": table["t0"],
            "ep": table["ep"].astype(np.int32),
            "obj": table["obj"],
            "status": table["status"],
            "body": table["body"],
            "port": table["port"],
            "node": table["node"],
            "gw": table["gw"],
            "h2": table["h2"],
            "auth": table["auth"],
            "conn": table["conn"],
            "req_proc_ms": table["req_proc_us"] // 1000,
            "tgt_proc_ms": (table["tgt_proc_us"] + 500) // 1000,
            "ip": table["ip"],
            "xff": table["xff"],
            "ua_idx": table["ua"],
        }
    )


def with_text(df: pl.DataFrame, look: Lookups) -> pl.DataFrame:
    """Add the text both formats need: client, the X-Forwarded-For the client sent, user agent, method,
    path and query."""
    methods = [e[0] for e in ENDPOINTS] + ["GET"] * len(PROBES)
    prefixes = [e[1] for e in ENDPOINTS] + [p for p, _ in PROBES]
    has_id = [e[2] for e in ENDPOINTS] + [False] * len(PROBES)
    suffixes = [e[3] for e in ENDPOINTS] + [""] * len(PROBES)
    queries = [e[4] for e in ENDPOINTS] + [""] * len(PROBES)
    xff = df.get_column("xff").to_numpy()
    df = df.with_columns(
        look.addresses.gather(df.get_column("ip")).alias("client"),
        look.addresses.gather(np.where(xff >= 0, xff, 0)).alias("xff_sent"),
        pl.Series("has_xff", xff >= 0),
        look.uas.gather(df.get_column("ua_idx")).alias("ua"),
    )
    codes = list(range(len(methods)))
    qkind = pl.col("ep").replace_strict(codes, queries, return_dtype=pl.String)
    obj_text = pl.col("obj").cast(pl.String)
    return df.with_columns(
        pl.col("ep").replace_strict(codes, methods, return_dtype=pl.String).alias("method"),
        pl.concat_str(
            pl.col("ep").replace_strict(codes, prefixes, return_dtype=pl.String),
            pl.when(pl.col("ep").replace_strict(codes, has_id, return_dtype=pl.Boolean))
            .then(obj_text)
            .otherwise(pl.lit("")),
            pl.col("ep").replace_strict(codes, suffixes, return_dtype=pl.String),
        ).alias("path"),
        pl.when(qkind == "api_key")
        .then(pl.lit(f"?api_key={PARTNER_KEY}"))
        .when(qkind == "page")
        .then(pl.concat_str(pl.lit("?page="), obj_text, pl.lit("&per_page=500")))
        .otherwise(pl.lit(""))
        .alias("query"),
    )


def _seconds(ms: pl.Expr) -> pl.Expr:
    """Milliseconds → ``0.028`` (ALB's three decimals)."""
    return pl.concat_str((ms // 1000).cast(pl.String), pl.lit("."), (ms % 1000).cast(pl.String).str.zfill(3))


def _hex(values: np.ndarray, width: int) -> np.ndarray:
    """Unsigned integers → fixed-width lowercase hex (vectorised, as bytes)."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    nibbles = (values.astype(np.uint64)[:, None] >> shifts[None, :]) & np.uint64(15)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nibbles.astype(np.int64)]
    return np.ascontiguousarray(digits).view(f"S{width}").ravel()


def _text(raw: np.ndarray) -> pl.Series:
    return pl.Series(raw).cast(pl.String)


def alb_random(df: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Draw the ALB-only random values of every request at once (trace ids, header and request sizes),
    so rendering in chunks gives the same bytes whatever the chunk size."""
    n = df.height
    return df.with_columns(
        pl.Series("_r64", rng.integers(0, 2**64, size=n, dtype=np.uint64)),  # trace id: 96 random bits
        pl.Series("_r32", rng.integers(0, 2**32, size=n, dtype=np.uint32)),
        pl.Series("_hdr", rng.integers(150, 260, size=n)),  # response header bytes the balancer adds
        pl.Series("_xin", rng.integers(0, 90, size=n)),  # request header bytes beyond the known ones
    )


def alb_lines(df: pl.DataFrame, look: Lookups) -> pl.Series:
    """The ALB access-log line of every request (29 fields: the layout ALB wrote in 2022).

    ``df`` carries the columns of :func:`request_frame` and :func:`alb_random`.
    """
    df = with_text(df, look)
    if df.height:
        df = df.with_columns(
            _text(_hex(df.get_column("t0").to_numpy() // US, 8)).alias("_epoch"),
            pl.concat_str(
                _text(_hex(df.get_column("_r64").to_numpy(), 16)),
                _text(_hex(df.get_column("_r32").to_numpy(), 8)),
            ).alias("_trace"),
        )
    else:
        df = df.with_columns(pl.lit("").alias("_epoch"), pl.lit("").alias("_trace"))
    ts = pl.from_epoch("t", "us").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
    created = pl.from_epoch(pl.col("t0") // 1000 * 1000, "us").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
    gw_ip = pl.col("gw").replace_strict([0, 1], [GATEWAYS[0][1], GATEWAYS[1][1]], return_dtype=pl.String)
    target = pl.concat_str(gw_ip, pl.lit(f":{GATEWAY_PORT}"))
    proto = pl.when(pl.col("h2")).then(pl.lit("HTTP/2.0")).otherwise(pl.lit("HTTP/1.1"))
    request = pl.concat_str(
        pl.col("method"), pl.lit(f" https://{HOST}:443"), pl.col("path"), pl.col("query"), pl.lit(" "), proto
    )
    auth_bytes = pl.when(pl.col("auth")).then(780).otherwise(0)  # a bearer token or a session cookie
    received = (
        pl.col("path").str.len_bytes()
        + pl.col("query").str.len_bytes()
        + pl.col("ua").str.len_bytes()
        + auth_bytes
        + pl.when(pl.col("method") == "POST").then(180).otherwise(90)
        + pl.col("_xin")
    )
    cipher = (
        pl.when((pl.col("conn") * 2654435761) % 100 < 80)
        .then(pl.lit("ECDHE-RSA-AES128-GCM-SHA256"))
        .otherwise(pl.lit("ECDHE-RSA-AES256-GCM-SHA384"))
    )
    rule = (
        pl.when(pl.col("path").str.starts_with("/api/v1/partner/"))
        .then(pl.lit("10"))
        .when(pl.col("path").str.starts_with("/api/"))
        .then(pl.lit("20"))
        .otherwise(pl.lit("0"))
    )
    status = pl.col("status").cast(pl.String)
    q = pl.lit('"')
    return df.select(
        pl.concat_str(
            [
                pl.when(pl.col("h2")).then(pl.lit("h2")).otherwise(pl.lit("https")),
                ts,
                pl.lit(ELB),
                pl.concat_str(pl.col("client"), pl.lit(":"), pl.col("port").cast(pl.String)),
                target,
                _seconds(pl.col("req_proc_ms")),
                _seconds(pl.col("tgt_proc_ms")),
                pl.lit("0.000"),
                status,
                status,
                received.cast(pl.String),
                (pl.col("body") + pl.col("_hdr")).cast(pl.String),
                pl.concat_str(q, request, q),
                pl.concat_str(q, pl.col("ua"), q),
                cipher,
                pl.lit("TLSv1.2"),
                pl.lit(TARGET_GROUP),
                pl.concat_str(pl.lit('"Root=1-'), pl.col("_epoch"), pl.lit("-"), pl.col("_trace"), q),
                pl.lit(f'"{HOST}"'),
                pl.lit(f'"{CERT}"'),
                rule,
                created,
                pl.lit('"forward"'),
                pl.lit('"-"'),
                pl.lit('"-"'),
                pl.concat_str(q, target, q),
                pl.concat_str(q, status, q),
                pl.lit('"-"'),
                pl.lit('"-"'),
            ],
            separator=" ",
        ).alias("line")
    ).to_series()


def nginx_lines(df: pl.DataFrame, look: Lookups) -> pl.Series:
    """The gateway's ``main`` line of every request, as the balancer forwarded it."""
    df = with_text(df, look)
    node_ip = pl.col("node").replace_strict(list(range(len(NODES))), NODES, return_dtype=pl.String)
    local = (
        pl.from_epoch(pl.col("t") // US * US, "us")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(SERVER_TZ)
        .dt.strftime("%d/%b/%Y:%H:%M:%S %z")
    )
    xff = pl.when(pl.col("has_xff")).then(pl.concat_str(pl.col("xff_sent"), pl.lit(", "), pl.col("client")))
    return df.select(
        pl.concat_str(
            node_ip,
            pl.lit(" - - ["),
            local,
            pl.lit('] "'),
            pl.col("method"),
            pl.lit(" "),
            pl.col("path"),
            pl.col("query"),
            pl.lit(' HTTP/1.1" '),
            pl.col("status").cast(pl.String),
            pl.lit(" "),
            pl.col("body").cast(pl.String),
            pl.lit(' "-" "'),
            pl.col("ua"),
            pl.lit('" "'),
            xff.otherwise(pl.col("client")),
            pl.lit('"'),
        ).alias("line")
    ).to_series()


# --------------------------------------------------------------------------------------------------
# Files


@dataclass
class Written:
    """What the writers produced, for the truth file."""

    files: dict[str, int] = field(default_factory=dict)  # relative path → lines
    malformed: list[dict[str, Any]] = field(default_factory=list)
    bytes: int = 0


class FileSink:
    """Compress and write files in a thread pool; contents and names are decided by the caller.

    Files go to the pool in batches (one task writes many small files: one GIL hand-over per batch,
    not per file), and at most ``budget`` bytes of text wait, so memory stays bounded at any scale.
    """

    def __init__(self, root: Path, workers: int = 0, budget: int = 64 << 20, batch: int = 2 << 20) -> None:
        self.root = root
        self.pool = ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1))
        self.pending: deque[tuple[Future[int], int]] = deque()
        self.pending_bytes = 0
        self.budget = budget
        self.batch_bytes = batch
        self.batch: list[tuple[Path, str, bool]] = []
        self.batch_size = 0
        self.bytes = 0
        self.dirs: set[Path] = set()

    def put(self, rel: str, text: str, gz: bool) -> None:
        path = self.root / rel
        if path.parent not in self.dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.dirs.add(path.parent)
        self.batch.append((path, text, gz))
        self.batch_size += len(text)
        if self.batch_size >= self.batch_bytes:
            self._submit()

    def _submit(self) -> None:
        if not self.batch:
            return
        self.pending.append((self.pool.submit(self._write, self.batch), self.batch_size))
        self.pending_bytes += self.batch_size
        self.batch, self.batch_size = [], 0
        while self.pending_bytes > self.budget:
            self._collect()

    def _collect(self) -> None:
        fut, size = self.pending.popleft()
        self.bytes += fut.result()
        self.pending_bytes -= size

    @staticmethod
    def _write(batch: list[tuple[Path, str, bool]]) -> int:
        total = 0
        for path, text, gz in batch:
            data = text.encode("utf-8")
            if gz:
                data = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
            path.write_bytes(data)
            total += len(data)
        return total

    def close(self) -> int:
        self._submit()
        while self.pending:
            self._collect()
        self.pool.shutdown()
        return self.bytes


def _groups(keys: np.ndarray) -> Iterable[tuple[int, int]]:
    """(start, end) of runs of equal consecutive keys."""
    if len(keys) == 0:
        return []
    cut = np.flatnonzero(np.diff(keys)) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [len(keys)]])
    return zip(starts.tolist(), ends.tolist(), strict=True)


def write_alb(
    sink: FileSink, df: pl.DataFrame, look: Lookups, rng: np.random.Generator, chunk_rows: int = 100_000
) -> Written:
    """One gzip file per balancer node per 5 minutes with traffic, in the S3 key layout.

    Rendered in chunks of whole files (about ``chunk_rows`` lines each) to bound memory.
    """
    out = Written()
    df = alb_random(df, rng)
    interval = df.get_column("t").to_numpy() // ALB_INTERVAL
    node = df.get_column("node").to_numpy().astype(np.int64)
    key = interval * 8 + node
    order = np.argsort(key, kind="stable")  # rows are in time order already: stays so inside a file
    df = df[order]
    key = key[order]
    groups = list(_groups(key))
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)
    suffixes = np.ascontiguousarray(alphabet[rng.integers(0, 36, size=(len(groups), 8))]).view("S8").ravel()
    names = []
    for (a, _b), suffix in zip(groups, suffixes.tolist(), strict=True):
        end_us = int(key[a] // 8 + 1) * ALB_INTERVAL
        end = datetime.fromtimestamp(end_us // US, UTC)
        name = (
            f"{ACCOUNT}_elasticloadbalancing_{REGION}_app.{LB_NAME}.{LB_ID}_{end:%Y%m%dT%H%MZ}_"
            f"{NODES[int(key[a] % 8)]}_{suffix.decode()}.log.gz"
        )
        names.append((f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/{end:%Y/%m/%d}/{name}", end_us))
    g = 0
    while g < len(groups):
        first = groups[g][0]
        h = g
        while h < len(groups) and groups[h][1] - first < chunk_rows:
            h += 1
        h = max(h, g + 1)
        last = groups[h - 1][1]
        text = alb_lines(df.slice(first, last - first), look).to_list()
        for i in range(g, h):
            a, b = groups[i]
            rel, end_us = names[i]
            sink.put(rel, "\n".join(text[a - first : b - first]) + "\n", gz=True)
            out.files[rel] = b - a
        g = h
    return out


def rotation_times(start_us: int, end_us: int, tz: str = SERVER_TZ) -> list[int]:
    """logrotate's daily runs (06:25 local) strictly inside the window, as UTC µs."""
    zone = ZoneInfo(tz)
    day = datetime.fromtimestamp(start_us // US, UTC).astimezone(zone).date() - timedelta(days=1)
    out = []
    while True:
        at = int(datetime(day.year, day.month, day.day, *ROTATE_AT, tzinfo=zone).timestamp()) * US
        if at >= end_us:
            return out
        if at > start_us:
            out.append(at)
        day += timedelta(days=1)


def _nginx_escape(data: bytes) -> str:
    """nginx's default escaping of a logged value: ``\\xHH`` for control bytes, ``"``, ``\\`` and >= 0x7F."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\x{b:02X}" for b in data)


def _time_local(us: int) -> str:
    return (
        datetime.fromtimestamp(us // US, UTC).astimezone(ZoneInfo(SERVER_TZ)).strftime("%d/%b/%Y:%H:%M:%S %z")
    )


def write_nginx(
    sink: FileSink, df: pl.DataFrame, look: Lookups, start_us: int, end_us: int, rng: np.random.Generator
) -> Written:
    """Each gateway's access log, rotated daily with delaycompress, with three malformed lines planted."""
    out = Written()
    rotations = rotation_times(start_us, end_us)
    bounds = np.array([start_us, *rotations, end_us], dtype=np.int64)
    days = (end_us - start_us) // (86_400 * US)
    hello = bytes.fromhex("160301020001000200fc0303") + rng.bytes(40)
    planted = [
        # (gateway, when, text after the timestamp, kind, expected)
        (
            0,
            start_us + int(0.3 * days) * 86_400 * US + 10 * 3600 * US + 1_234 * US,
            f'"{_nginx_escape(hello)}" 400 157 "-" "-" "-"',
            "tls_handshake",
            "event",
        ),
        (
            1,
            start_us + int(0.55 * days) * 86_400 * US + 22 * 3600 * US + 517 * US,
            '"" 400 0 "-" "-" "-"',
            "empty_request",
            "event",
        ),
    ]
    later = [r for r in rotations if r >= start_us + int(0.8 * days) * 86_400 * US]
    cut_at = later[0] if later else end_us
    planted.append(
        (
            0,
            cut_at - 3 * US,
            '"GET /server-status HTTP/1.1" 404 153 "-" "Mozilla/5.0 (compatible; Nes',
            "truncated",
            "reject",
        )
    )
    t_all = df.get_column("t").to_numpy()
    gw_all = df.get_column("gw").to_numpy()
    for g, (name, _ip) in enumerate(GATEWAYS):
        rows = np.flatnonzero(gw_all == g)
        mine = df[rows]
        times = t_all[rows]
        segment = np.searchsorted(bounds, times, side="right") - 1
        starts, ends = _segment_edges(segment, len(bounds) - 1)
        files = [nginx_lines(mine.slice(a, b - a), look).to_list() for a, b in zip(starts, ends, strict=True)]
        seconds = [times[a:b] // US for a, b in zip(starts, ends, strict=True)]
        placed: list[tuple[int, str, dict[str, Any]]] = []
        for _g, when, rest, kind, expected in sorted((p for p in planted if p[0] == g), key=lambda p: p[1]):
            s = min(max(int(np.searchsorted(bounds, when, side="right") - 1), 0), len(files) - 1)
            if kind == "truncated":  # the last line of its file, cut when the disk filled up
                if len(seconds[s]):
                    when = max(when, int(seconds[s].max()) * US)
                line = f"{INTERNAL_SCANNER} - - [{_time_local(when)}] {rest}"
                files[s].append(line)
            else:
                line = f"{INTERNAL_SCANNER} - - [{_time_local(when)}] {rest}"
                pos = int(np.searchsorted(seconds[s], when // US, side="right"))
                pos += sum(1 for ps, _, m in placed if ps == s and m["kind"] != "truncated")
                files[s].insert(pos, line)
            info = {
                "gateway": name,
                "kind": kind,
                "expected": expected,
                "text": line,
                "time": iso(when // US * US),
            }
            placed.append((s, line, info))
        # logrotate's notifempty: a day without lines is not rotated (its file just goes on)
        keep = [s for s, content in enumerate(files) if content or s == len(files) - 1]
        cut = {ps for ps, _, info in placed if info["kind"] == "truncated"}  # no newline after the last line
        for rank, s in enumerate(reversed(keep)):
            content = files[s]
            rel = f"{name}/access.log" + ("" if rank == 0 else f".{rank}") + (".gz" if rank >= 2 else "")
            body = "\n".join(content) + ("" if s in cut or not content else "\n")
            sink.put(rel, body, gz=rank >= 2)
            out.files[rel] = len(content)
            for ps, line, info in placed:
                if ps == s:
                    info["file"] = rel
                    info["line"] = content.index(line) + 1
        out.malformed.extend(info for _, _, info in placed)
    return out


def _segment_edges(segment: np.ndarray, count: int) -> tuple[list[int], list[int]]:
    """Row ranges of each rotation segment (rows are in time order)."""
    starts = np.searchsorted(segment, np.arange(count), side="left")
    ends = np.searchsorted(segment, np.arange(count), side="right")
    return starts.tolist(), ends.tolist()


def write_har(sink: FileSink, doc: dict[str, Any], rel: str) -> Written:
    sink.put(rel, json.dumps(doc, indent=2) + "\n", gz=False)
    return Written(files={rel: len(doc["log"]["entries"])})


def write_json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
