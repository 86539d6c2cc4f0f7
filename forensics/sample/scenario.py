"""Who does what, and when: the actors of a synthetic API breach, generated as arrays of requests.

Every actor is a vectorised generator that adds a block of requests (numpy arrays, one element per
request) to :class:`Traffic`; nothing here renders text. The same requests are later written into
every format (:mod:`.render`), so the ALB tree and the nginx logs describe exactly the same traffic.

Times are integers: microseconds since the Unix epoch, UTC. ``t0`` is when the request reached the
balancer; the balancer's ``time`` (what an ALB line and the event ``ts`` carry) is ``t0`` plus the
processing times, computed once in :meth:`Traffic.assemble`.

Randomness: one :class:`numpy.random.SeedSequence` per scenario, spawned into one stream per concern
(addresses, customers, partner, …), always in the same order, so a seed gives the same bytes and
changing one actor's code does not reshuffle the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

US = 1_000_000
SEC = US
MIN = 60 * US
HOUR = 3600 * US
DAY = 86_400 * US

PROFILES = ("standard", "hard")

#: The T-Mobile reference case: evidence from 1 Nov 2022 for 70 days, abuse from 25 Nov 2022 to the
#: detection on 5 Jan 2023. Other windows keep the attack at the same relative position.
REF_START = datetime(2022, 11, 1, tzinfo=UTC)
REF_DAYS = 70
REF_ATTACK_DAY = 24  # 2022-11-25
REF_DETECTION_DAY = 65  # 2023-01-05

SERVER_TZ = "America/Los_Angeles"
DOMAIN = "magentel.example"  # RFC 2606 reserved name: a fictional carrier, "Magentel"
HOST = f"api.{DOMAIN}"

# --------------------------------------------------------------------------------------------------
# Endpoints: (method, path prefix, takes an id, path suffix, query kind, typical target time in ms)
# Query kinds: "" none, "api_key" the partner's key, "page" the batch job's paging.

PARTNER_KEY = "pk_live_7c1e4b9a0d2f48e6a3b5c8d1f0e2a4b6"

ENDPOINTS: list[tuple[str, str, bool, str, str, float]] = [
    ("POST", "/api/v1/auth/login", False, "", "", 45.0),  # 0 LOGIN
    ("GET", "/api/v1/customers/", True, "", "", 28.0),  # 1 CUSTOMER: the abused endpoint
    ("GET", "/api/v1/customers/", True, "/plan", "", 22.0),  # 2 PLAN
    ("GET", "/api/v1/customers/", True, "/usage", "", 60.0),  # 3 USAGE
    ("GET", "/api/v1/catalog/plans", False, "", "", 9.0),  # 4 CATALOG
    ("GET", "/api/v1/devices", False, "", "", 18.0),  # 5 DEVICES
    ("POST", "/api/v1/auth/refresh", False, "", "", 15.0),  # 6 REFRESH
    ("GET", "/api/v1/partner/status", False, "", "api_key", 4.0),  # 7 PARTNER_STATUS
    ("GET", "/api/v1/partner/orders/", True, "", "api_key", 35.0),  # 8 PARTNER_ORDER
    ("POST", "/api/v1/partner/orders", False, "", "api_key", 80.0),  # 9 PARTNER_ORDER_NEW
    ("GET", "/api/v1/reports/billing", False, "", "page", 420.0),  # 10 BILLING
]
LOGIN, CUSTOMER, PLAN, USAGE, CATALOG, DEVICES, REFRESH = range(7)
PARTNER_STATUS, PARTNER_ORDER, PARTNER_ORDER_NEW, BILLING = range(7, 11)

#: What scanners ask for, with the gateway's answer.
PROBES: list[tuple[str, int]] = [
    ("/.env", 404),
    ("/.git/config", 404),
    ("/wp-login.php", 404),
    ("/wp-admin/setup-config.php", 404),
    ("/admin", 403),
    ("/admin/login", 404),
    ("/phpmyadmin/", 404),
    ("/server-status", 403),
    ("/actuator/env", 404),
    ("/actuator/health", 404),
    ("/config.json", 404),
    ("/.aws/credentials", 404),
    ("/backup.zip", 404),
    ("/api/v1/swagger.json", 404),
    ("/swagger-ui.html", 404),
    ("/v2/api-docs", 404),
    ("/graphql", 404),
    ("/api/v1/users", 401),
    ("/api/v1/admin/users", 403),
    ("/.DS_Store", 404),
    ("/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", 404),
    ("/cgi-bin/luci/;stok=/locale", 404),
    ("/console/", 404),
    ("/solr/admin/info/system", 404),
    ("/.well-known/security.txt", 404),
    ("/robots.txt", 404),
    ("/", 404),
    ("/api/", 404),
    ("/debug/pprof/", 404),
    ("/HNAP1/", 404),
]
PROBE_BASE = len(ENDPOINTS)  # endpoint code of PROBES[0]

# --------------------------------------------------------------------------------------------------
# User agents

APP = "MagentelApp"
APP_VERSIONS = ["8.3.2", "8.4.0", "8.5.1"]  # released before the window, at 15% and 60% of it
ANDROID_DEVICES = [
    "Android 13; SM-S908U",
    "Android 13; Pixel 7",
    "Android 12; SM-G991U",
    "Android 12; moto g stylus 5G",
    "Android 13; SM-A536U",
    "Android 11; SM-G973U",
]
IOS_DEVICES = [
    "iPhone14,2; iOS 16.1.1",
    "iPhone15,3; iOS 16.1",
    "iPhone13,1; iOS 16.0.3",
    "iPhone12,1; iOS 15.7.1",
    "iPhone14,5; iOS 16.2",
]
BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/108.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/107.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/108.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:107.0) Gecko/20100101 Firefox/107.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:108.0) Gecko/20100101 Firefox/108.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/108.0.0.0 Safari/537.36 Edg/108.0.1462.54",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; SM-S908U) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/108.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/107.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:107.0) Gecko/20100101 Firefox/107.0",
    "Mozilla/5.0 (iPad; CPU OS 16_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.1 Mobile/15E148 Safari/604.1",
]
STAFF_UAS = BROWSERS[:2]  # the corporate desktop image: Chrome on Windows
ATTACKER_UA = f"{APP}/8.2.1 (Android 11; SM-G973U) okhttp/4.9.0"  # an old app build, replayed by a script
PARTNER_UA = "Apache-HttpClient/4.5.13 (Java/17.0.5)"
BATCH_UA = "billing-export/2.3.0 python-requests/2.28.1"
SCANNER_UAS = [
    "Mozilla/5.0 zgrab/0.x",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/74.0.3729.169 Safari/537.36",
]
ID_SCANNER_UA = "python-requests/2.28.1"


def app_ua(version: str, device: str) -> str:
    if device.startswith("Android"):
        return f"{APP}/{version} ({device}) okhttp/4.10.0"
    return f"{APP}/{version} ({device}; Scale/3.00)"


# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """What the user asked for."""

    seed: int = 1
    scale: float = 1.0
    start: datetime = REF_START
    days: int = REF_DAYS
    profile: str = "standard"

    @property
    def start_us(self) -> int:
        return int(self.start.timestamp()) * US

    @property
    def end_us(self) -> int:
        return self.start_us + self.days * DAY


def attack_days(days: int) -> tuple[int, int]:
    """Day offsets of the first and last attack day: the reference position, clamped inside the window."""
    first = min(max(round(REF_ATTACK_DAY * days / REF_DAYS), 0), days - 1)
    last = min(max(round(REF_DETECTION_DAY * days / REF_DAYS), first), days - 1)
    return first, last


class Addresses:
    """Public client addresses, drawn only from reserved ranges.

    RFC 5737 documentation blocks (192.0.2/24, 198.51.100/24, 203.0.113/24) and the RFC 2544
    benchmarking range (198.18.0.0/15): no real host is ever named. Named actors get whole /24 blocks
    of their own (hosting providers, corporate egress); customers and residential proxies are scattered
    over the rest. Nothing is drawn twice, so no two actors share an address by accident.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        blocks = ["192.0.2", "198.51.100", "203.0.113"] + [
            f"198.{18 + i // 256}.{i % 256}" for i in range(512)
        ]
        self.blocks = [blocks[i] for i in rng.permutation(len(blocks))]
        self.rng = rng
        self.table: list[str] = []
        self._reserved = 0
        self._perm: np.ndarray | None = None
        self._next = 0

    def add(self, text: str) -> int:
        self.table.append(text)
        return len(self.table) - 1

    def block(self, count: int, first_host: int | None = None) -> list[int]:
        """``count`` addresses in a /24 of their own (consecutive from ``first_host``, else random)."""
        if self._perm is not None:
            raise RuntimeError("reserve blocks before drawing scattered addresses")
        prefix = self.blocks[self._reserved]
        self._reserved += 1
        if first_host is None:
            hosts = np.sort(self.rng.choice(np.arange(2, 255), size=count, replace=False))
        else:
            hosts = np.arange(first_host, first_host + count)
        return [self.add(f"{prefix}.{int(h)}") for h in hosts]

    def scattered(self, count: int, share: bool = False) -> np.ndarray:
        """``count`` new addresses spread over the unreserved blocks.

        When the space runs out (beyond ``--scale`` 100 or so), ``share=True`` lets the callers share the
        addresses they just got (households); otherwise it is an error, so no two actors ever share one.
        """
        free = self.blocks[self._reserved :]
        space = len(free) * 254
        if self._perm is None:
            self._perm = self.rng.permutation(space)
        fresh = min(count, space - self._next)
        if fresh < count and (not share or fresh <= 0):
            raise ValueError(f"out of addresses: {count} wanted, {space - self._next} left")
        picks = self._perm[self._next : self._next + fresh]
        self._next += fresh
        start = len(self.table)
        self.table.extend(f"{free[p // 254]}.{p % 254 + 1}" for p in picks.tolist())
        out = np.arange(start, start + fresh, dtype=np.int32)
        if fresh < count:
            out = np.concatenate([out, self.rng.choice(out, size=count - fresh)])
        return out


class Strings:
    """An interned table of strings (user agents): requests carry the index."""

    def __init__(self) -> None:
        self.table: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        idx = self._index.get(text)
        if idx is None:
            idx = self._index[text] = len(self.table)
            self.table.append(text)
        return idx


#: Columns of a request block, with their dtypes; generators may omit the ones with defaults.
COLUMNS: dict[str, Any] = {
    "t0": np.int64,  # arrival at the balancer, µs since the epoch (UTC)
    "actor": np.int16,  # index into Traffic.actors
    "ip": np.int32,  # client address (index into Addresses.table)
    "xff": np.int32,  # X-Forwarded-For the client sent itself (-1: none)
    "ep": np.int16,  # endpoint code (ENDPOINTS, then PROBES)
    "obj": np.int64,  # the id in the path, or the page number (-1: none)
    "status": np.int16,
    "body": np.int64,  # response body bytes
    "ua": np.int32,  # index into Traffic.uas
    "conn": np.int64,  # connection (client port, balancer node): local to the actor block
    "h2": np.bool_,  # HTTP/2 from the client (ALB type h2), else HTTP/1.1 (https)
    "auth": np.bool_,  # the client sent credentials (not visible in the logs; used by the truth)
}


@dataclass
class Traffic:
    """Every request of the scenario, as blocks of arrays, and what each actor is."""

    actors: list[str] = field(default_factory=list)
    blocks: list[dict[str, np.ndarray]] = field(default_factory=list)
    uas: Strings = field(default_factory=Strings)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def actor(self, name: str, **note: Any) -> int:
        self.actors.append(name)
        self.notes[name] = note
        return len(self.actors) - 1

    def add(self, actor: int, **cols: Any) -> None:
        n = len(cols["t0"])
        block: dict[str, np.ndarray] = {}
        defaults = {"xff": -1, "obj": -1, "h2": True, "auth": False}
        for name, dtype in COLUMNS.items():
            if name == "actor":
                block[name] = np.full(n, actor, dtype=dtype)
            elif name in cols:
                value = cols[name]
                block[name] = (
                    np.full(n, value, dtype=dtype) if np.isscalar(value) else np.asarray(value, dtype=dtype)
                )
            elif name == "conn":
                block[name] = np.arange(n, dtype=dtype)
            else:
                block[name] = np.full(n, defaults[name], dtype=dtype)
            if len(block[name]) != n:
                raise ValueError(f"{name}: {len(block[name])} values for {n} requests")
        self.blocks.append(block)

    def assemble(
        self, rng: np.random.Generator, start_us: int, end_us: int, nodes: int
    ) -> dict[str, np.ndarray]:
        """One table, in the balancer's time order, inside the window; connection → port and node."""
        cols = {name: np.concatenate([b[name] for b in self.blocks]) for name in COLUMNS}
        # Connections are local to a block: make them global, then draw a port and a node for each.
        offsets = np.cumsum([0] + [int(b["conn"].max()) + 1 if len(b["conn"]) else 0 for b in self.blocks])
        conn = np.concatenate([b["conn"] + offsets[i] for i, b in enumerate(self.blocks)])
        n_conn = int(offsets[-1])
        port = rng.integers(1025, 65535, size=n_conn, dtype=np.int32)
        node = rng.integers(0, nodes, size=n_conn, dtype=np.int8)
        n = len(conn)
        ep = cols["ep"]
        base_ms = np.array([e[5] for e in ENDPOINTS] + [1.0] * len(PROBES))
        target_us = (base_ms[ep] * 1000 * rng.lognormal(0.0, 0.45, size=n)).astype(np.int64) + 400
        request_us = rng.integers(0, 2, size=n) * 1000  # ALB rounds to the ms: 0.000 or 0.001 s
        cols.update(
            port=port[conn],
            node=node[conn],
            gw=rng.integers(0, 2, size=n, dtype=np.int8),
            req_proc_us=request_us,
            tgt_proc_us=target_us,
            t=cols["t0"] + request_us + target_us,
            conn=conn,
        )
        keep = (cols["t0"] >= start_us) & (cols["t"] < end_us)
        order = np.argsort(cols["t"][keep], kind="stable")
        return {k: v[keep][order] for k, v in cols.items()}


# --------------------------------------------------------------------------------------------------


@dataclass
class Database:
    """The customer table behind the API: which ids exist, and how big each record's JSON is."""

    base: int
    exists: np.ndarray  # bool per offset
    size: np.ndarray  # body bytes of GET /customers/{id} per offset

    @property
    def existing(self) -> np.ndarray:
        return self.base + np.flatnonzero(self.exists)

    def has(self, ids: np.ndarray) -> np.ndarray:
        off = ids - self.base
        ok = (off >= 0) & (off < len(self.exists))
        out = np.zeros(len(ids), dtype=bool)
        out[ok] = self.exists[off[ok]]
        return out

    def body(self, ids: np.ndarray) -> np.ndarray:
        """Response body bytes for GET /customers/{id}: the record, or a short 404 document."""
        off = np.clip(ids - self.base, 0, len(self.size) - 1)
        return np.where(self.has(ids), self.size[off], 48)


def diurnal_hours(rng: np.random.Generator, n: int, utc_offset: int = -6) -> np.ndarray:
    """UTC hours of activity for people in US time: quiet at night, busy from late morning to evening."""
    local = np.array(
        [0.2, 0.1, 0.07, 0.06, 0.07, 0.15, 0.35, 0.6, 0.8, 0.9, 1.0, 1.0]
        + [1.0, 1.0, 0.95, 0.95, 1.0, 1.05, 1.1, 1.1, 1.0, 0.85, 0.6, 0.35]
    )
    weights = np.roll(local, utc_offset)  # weights[h_utc] = local[(h_utc + offset) % 24]
    return rng.choice(24, size=n, p=weights / weights.sum())


def local_midnights(start_us: int, days: int, tz: str) -> np.ndarray:
    """UTC µs of each local midnight from the day before the window to the day after (DST-correct)."""
    zone = ZoneInfo(tz)
    first = datetime.fromtimestamp(start_us / US, UTC).astimezone(zone).date() - timedelta(days=1)
    out = []
    for i in range(days + 3):
        d = first + timedelta(days=i)
        out.append(int(datetime(d.year, d.month, d.day, tzinfo=zone).timestamp()) * US)
    return np.array(out, dtype=np.int64)


def iso(us: int) -> str:
    """µs since the epoch → ``2022-11-25T10:14:03.123456Z``."""
    return datetime.fromtimestamp(us // US, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{us % US:06d}Z"
