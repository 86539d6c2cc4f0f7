"""The actors: app customers, carrier NAT, a partner, a batch job, scanners, staff and the attacker.

Each function adds one actor's requests to the world's :class:`.scenario.Traffic` with numpy arrays,
and records in ``traffic.notes`` what the actor is (the truth file reports it with the numbers
counted from what was actually written). Sizes scale with ``--scale``; the scanners do not (a scan
is a scan whatever the size of the customer base).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from .scenario import (
    ANDROID_DEVICES,
    APP_VERSIONS,
    ATTACKER_UA,
    BATCH_UA,
    BILLING,
    BROWSERS,
    CATALOG,
    CUSTOMER,
    DAY,
    DEVICES,
    HOUR,
    ID_SCANNER_UA,
    IOS_DEVICES,
    LOGIN,
    MIN,
    PARTNER_ORDER,
    PARTNER_ORDER_NEW,
    PARTNER_STATUS,
    PARTNER_UA,
    PLAN,
    PROBE_BASE,
    PROBES,
    REFRESH,
    SCANNER_UAS,
    SEC,
    SERVER_TZ,
    STAFF_UAS,
    US,
    USAGE,
    Addresses,
    Database,
    Params,
    Traffic,
    app_ua,
    attack_days,
    diurnal_hours,
    local_midnights,
)

#: Random streams, spawned in this order from the seed (append only: reordering changes every scenario).
STREAMS = (
    "window",
    "addresses",
    "database",
    "customers",
    "partner",
    "batch",
    "scanners",
    "attacker",
    "staff",
    "app_team",
    "assemble",
    "render",
    "har",
    "nginx",
)

ATTACK_RATE = 110  # requests a day to the abused endpoint at scale 1


@dataclass
class World:
    """Everything the actors share: parameters, random streams, addresses, the database, the attack window."""

    params: Params
    rng: dict[str, np.random.Generator]
    addresses: Addresses
    traffic: Traffic
    db: Database
    attack_start_us: int
    attack_end_us: int
    walk_start: int  # offset in the database where an id walk starts
    planned_attack: int  # requests to the abused endpoint the attacker plans
    catalog: tuple[int, int] = (4381, 4512)  # body bytes of the plan catalogue, before and after mid-window

    @property
    def start_us(self) -> int:
        return self.params.start_us

    @property
    def end_us(self) -> int:
        return self.params.end_us


def new_world(params: Params) -> World:
    """Place the attack in the window, size the customer database, and spawn the random streams."""
    seqs = np.random.SeedSequence(params.seed).spawn(len(STREAMS))
    rng = {name: np.random.default_rng(s) for name, s in zip(STREAMS, seqs, strict=True)}
    start, end = params.start_us, params.end_us
    first, last = attack_days(params.days)
    r = rng["window"]
    a_start = start + first * DAY + int(r.integers(14 * HOUR, 20 * HOUR))
    a_end = start + last * DAY + int(r.integers(15 * HOUR, 21 * HOUR))
    a_end = min(max(a_end, a_start + 6 * HOUR), end - 2 * HOUR)
    a_start = min(a_start, a_end - HOUR)
    span_days = (a_end - a_start) / DAY
    planned = max(20, round(ATTACK_RATE * params.scale * span_days))
    n_customers = customer_count(params.scale)
    r = rng["database"]
    size = int(planned * 2.2 + n_customers * 4 + 20_000)
    base = int(r.integers(3, 9)) * 10_000_000 + int(r.integers(0, 100)) * 10_000
    db = Database(base=base, exists=r.random(size) < 0.88, size=r.integers(1100, 1950, size=size))
    walk_start = int(r.integers(0, size - int(planned * 1.5) - 1000))
    return World(
        params=params,
        rng=rng,
        addresses=Addresses(rng["addresses"]),
        traffic=Traffic(),
        db=db,
        attack_start_us=a_start,
        attack_end_us=a_end,
        walk_start=walk_start,
        planned_attack=planned,
    )


def pool_factor(scale: float) -> int:
    """How many times the scale-1 address pool the standard attacker uses (NAT grows the same way)."""
    return max(1, round(scale**0.5))


def customer_count(scale: float) -> int:
    """App customers at a scale (1,000 at scale 1)."""
    return max(20, round(1000 * scale))


# --------------------------------------------------------------------------------------------------
# Reserved address blocks, in a fixed order (so adding an actor never moves the others' addresses).


@dataclass
class Blocks:
    """The addresses of the named actors (reserved before anybody draws scattered ones)."""

    hosting: list[list[int]]  # the standard attacker's VPS ranges
    nat: list[int]
    partner: list[int]
    batch: list[int]
    staff: list[int]
    office: list[int]
    scanners: list[list[int]]
    forged: np.ndarray  # X-Forwarded-For values the standard attacker forges
    residential: np.ndarray  # the hard attacker's residential proxies


def reserve_blocks(w: World) -> Blocks:
    """Give each named actor its addresses, always in the same order (stable across code changes)."""
    a = w.addresses
    r = w.rng["addresses"]
    # Tens of hosting addresses; more at larger scales, so each stays an ordinary heavy user's volume.
    hosting = [a.block(9) for _ in range(4 * pool_factor(w.params.scale))]
    nat_count = max(2, round(3 * w.params.scale**0.5))
    nat = a.block(nat_count)
    partner = a.block(2, first_host=int(r.integers(20, 200)))
    batch = a.block(1)
    staff = a.block(3, first_host=int(r.integers(10, 200)))
    office = a.block(1)
    scanners = [a.block(1) for _ in range(4)]
    # The attacker's scattered addresses come before the customers', which may share when space runs out.
    residential = min(20_000, max(150, w.planned_attack // 6))
    return Blocks(
        hosting=hosting,
        nat=nat,
        partner=partner,
        batch=batch,
        staff=staff,
        office=office,
        scanners=scanners,
        forged=a.scattered(sum(len(h) for h in hosting) // 3),
        residential=a.scattered(residential if w.params.profile == "hard" else 0),
    )


# --------------------------------------------------------------------------------------------------


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group counts → (group index of each element, position inside its group)."""
    group = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(int(counts.sum())) - np.repeat(starts, counts)
    return group, pos


def _within_group_offsets(gaps: np.ndarray, group: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Cumulative gaps restarting at each group's first element (which gets 0)."""
    gaps = np.where(pos == 0, 0, gaps)
    total = np.cumsum(gaps)
    first = total[np.flatnonzero(pos == 0)]
    return total - first[group]


def customers(w: World, blocks: Blocks) -> None:
    """App users over the whole window: each reads only their own record, in sessions, many behind NAT."""
    rng = w.rng["customers"]
    p = w.params
    t = w.traffic
    n = customer_count(p.scale)
    ids = rng.choice(w.db.existing, size=n, replace=False)
    home = w.addresses.scattered(n, share=True)
    nat = np.array(blocks.nat, dtype=np.int32)
    # Share of a customer's sessions made on cellular data (behind the carrier's NAT).
    mobile = np.where(rng.random(n) < 0.45, rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 0.15, n))
    # A few sit behind a corporate proxy that sends its own X-Forwarded-For (an internal address).
    proxied = rng.random(n) < 0.04
    xff = np.full(n, -1, dtype=np.int32)
    for i in np.flatnonzero(proxied):
        o = rng.integers(0, 256, size=3)
        xff[i] = w.addresses.add(f"10.{o[0]}.{o[1]}.{o[2] or 1}")
    # User agents: platform and device per customer, the app version by the time of the session.
    android = rng.random(n) < 0.55
    device = np.where(android, rng.integers(0, len(ANDROID_DEVICES), n), rng.integers(0, len(IOS_DEVICES), n))
    devices = ANDROID_DEVICES + IOS_DEVICES
    dev_idx = np.where(android, device, len(ANDROID_DEVICES) + device)
    ua_table = np.array([[t.uas(app_ua(v, d)) for d in devices] for v in APP_VERSIONS], dtype=np.int32)
    releases = np.array(
        [p.start_us - 30 * DAY, p.start_us + int(0.15 * p.days * DAY), p.start_us + int(0.6 * p.days * DAY)]
    )
    lag = (rng.exponential(5.0, n) * DAY).astype(np.int64)

    sessions = 1 + rng.negative_binomial(1, 0.3, size=n)
    sess_cust, _ = _expand(sessions)
    s = len(sess_cust)
    day = rng.integers(0, p.days, size=s)
    t_sess = p.start_us + day * DAY + diurnal_hours(rng, s) * HOUR + rng.integers(0, HOUR, size=s)
    on_mobile = rng.random(s) < mobile[sess_cust]
    sess_ip = np.where(on_mobile, nat[rng.integers(0, len(nat), size=s)], home[sess_cust])
    sess_xff = np.where(on_mobile, -1, xff[sess_cust])
    version = (t_sess[:, None] >= releases[None, :] + lag[sess_cust][:, None]).sum(axis=1) - 1
    sess_ua = ua_table[np.clip(version, 0, len(APP_VERSIONS) - 1), dev_idx[sess_cust]]
    first = rng.choice([LOGIN, REFRESH, CUSTOMER], size=s, p=[0.4, 0.25, 0.35])

    k = 2 + rng.binomial(4, 0.4, size=s)
    req_sess, pos = _expand(k)
    r = len(req_sess)
    gaps = (rng.lognormal(np.log(2.5), 0.9, size=r) * SEC).astype(np.int64)
    t0 = t_sess[req_sess] + _within_group_offsets(gaps, req_sess, pos) + rng.integers(0, 1000, size=r)
    ep = rng.choice([PLAN, USAGE, CATALOG, DEVICES, CUSTOMER], size=r, p=[0.3, 0.3, 0.15, 0.15, 0.1])
    ep = np.where(pos == 0, first[req_sess], ep)
    ep = np.where((pos == 1) & (first[req_sess] != CUSTOMER), CUSTOMER, ep)
    own = ids[sess_cust[req_sess]]
    obj = np.where(np.isin(ep, [CUSTOMER, PLAN, USAGE]), own, -1)
    status = np.full(r, 200)
    status[(ep == LOGIN) & (rng.random(r) < 0.02)] = 401
    status[rng.random(r) < 0.002] = 502
    body = _app_body(rng, ep, obj, w.db, w.catalog, p.start_us + p.days * DAY // 2, t0)
    body = np.where(status == 401, 58, np.where(status == 502, 150, body))
    t.add(
        t.actor(
            "customers",
            kind="app_users",
            description="app customers in sessions (login, own record, plan, usage, catalogue, devices); "
            "each reads only their own id",
        ),
        t0=t0,
        ip=sess_ip[req_sess],
        xff=sess_xff[req_sess],
        ep=ep,
        obj=obj,
        status=status,
        body=body,
        ua=sess_ua[req_sess],
        conn=req_sess,
        h2=True,
        auth=ep != CATALOG,
    )
    w.traffic.notes["customers"]["nat_addresses"] = [int(i) for i in nat]
    w.traffic.notes["customers"]["proxy_xff"] = sorted(int(i) for i in xff[proxied])


def _app_body(
    rng: np.random.Generator,
    ep: np.ndarray,
    obj: np.ndarray,
    db: Database,
    catalog: tuple[int, int],
    catalog_change: int,
    t0: np.ndarray,
) -> np.ndarray:
    """Response sizes of the app's endpoints; a record's size is the same whoever reads it."""
    n = len(ep)
    own = np.where(obj >= 0, obj, db.base)
    body = np.select(
        [ep == LOGIN, ep == REFRESH, ep == CUSTOMER, ep == PLAN, ep == USAGE, ep == CATALOG, ep == DEVICES],
        [
            np.full(n, 1187),
            np.full(n, 1102),
            db.body(own),
            412 + own % 293,
            900 + own % 1700,
            np.where(t0 < catalog_change, catalog[0], catalog[1]),
            310 + rng.integers(0, 4, n) * 214,
        ],
        default=0,
    )
    return body


def partner(w: World, blocks: Blocks) -> None:
    """A B2B partner syncing every hour, all day, every day: the heaviest client (but on the batch job's 1st)."""
    rng = w.rng["partner"]
    p = w.params
    n_sync = p.days * 24
    phase = int(rng.integers(0, 60 * MIN))
    t_sync = p.start_us + phase + np.arange(n_sync, dtype=np.int64) * HOUR + rng.integers(0, 20 * SEC, n_sync)
    primary, failover = blocks.partner
    failover_day = rng.random(p.days) < 0.1
    sync_day = (t_sync - p.start_us) // DAY
    sync_ip = np.where(failover_day[np.clip(sync_day, 0, p.days - 1)], failover, primary)
    # Never below a floor: the partner stays the heaviest client even in tiny test scenarios.
    orders = rng.poisson(3.0 * max(p.scale, 1.0), size=n_sync)
    new = (rng.random(n_sync) < 0.05).astype(np.int64)
    k = 1 + orders + new
    sync, pos = _expand(k)
    r = len(sync)
    gaps = rng.integers(150_000, 900_000, size=r)
    t0 = t_sync[sync] + _within_group_offsets(gaps, sync, pos)
    last = pos == k[sync] - 1
    ep = np.where(
        pos == 0, PARTNER_STATUS, np.where(last & (new[sync] == 1), PARTNER_ORDER_NEW, PARTNER_ORDER)
    )
    obj = np.where(ep == PARTNER_ORDER, 7_400_000_000 + rng.integers(0, 50_000_000, size=r), -1)
    status = np.where(ep == PARTNER_ORDER_NEW, 201, 200)
    status = np.where((ep == PARTNER_ORDER) & (rng.random(r) < 0.02), 404, status)
    body = np.select(
        [ep == PARTNER_STATUS, status == 404, ep == PARTNER_ORDER, ep == PARTNER_ORDER_NEW],
        [rng.integers(64, 73, r), np.full(r, 48), rng.integers(700, 1200, r), rng.integers(180, 221, r)],
    )
    t = w.traffic
    t.add(
        t.actor(
            "partner",
            kind="partner",
            description="B2B partner: syncs every hour (status, orders) with an api_key query "
            "parameter; the heaviest client every day except the batch job's hours on the 1st",
            api_key_param="api_key",
        ),
        t0=t0,
        ip=sync_ip[sync],
        ep=ep,
        obj=obj,
        status=status,
        body=body,
        ua=t.uas(PARTNER_UA),
        conn=sync,
        h2=False,
        auth=True,
    )


def batch_job(w: World, blocks: Blocks) -> None:
    """The monthly billing export: on the 1st, a couple of hours of paged requests from one address."""
    rng = w.rng["batch"]
    p = w.params
    firsts = [d for d in range(p.days) if datetime.fromtimestamp((p.start_us + d * DAY) // US, UTC).day == 1]
    pages = max(50, round(2000 * p.scale))
    t0s, objs, conns = [], [], []
    for i, d in enumerate(firsts):
        begin = p.start_us + d * DAY + 9 * HOUR + int(rng.integers(0, 20 * MIN))  # 01:00 in Los Angeles
        length = int(2 * HOUR * rng.uniform(0.85, 1.15))
        gaps = rng.uniform(0.6, 1.4, size=pages)
        offsets = (np.cumsum(gaps) - gaps[0]) / gaps.sum() * length
        t0s.append(begin + offsets.astype(np.int64))
        objs.append(np.arange(1, pages + 1))
        conns.append(np.full(pages, i))
    t = w.traffic
    actor = t.actor(
        "batch_job",
        kind="batch_job",
        description="monthly billing export on the 1st: GET /api/v1/reports/billing?page=N, one address",
        runs=len(firsts),
        pages_per_run=pages,
    )
    if not firsts:
        return
    obj = np.concatenate(objs)
    r = len(obj)
    body = np.where(obj == pages, rng.integers(2_000, 30_000, r), rng.integers(48_000, 62_000, r))
    t.add(
        actor,
        t0=np.concatenate(t0s),
        ip=blocks.batch[0],
        ep=BILLING,
        obj=obj,
        status=200,
        body=body,
        ua=t.uas(BATCH_UA),
        conn=np.concatenate(conns),
        h2=False,
        auth=True,
    )


def scanners(w: World, blocks: Blocks) -> None:
    """Internet background noise: path probes from a few addresses, and one short run of customer ids."""
    rng = w.rng["scanners"]
    p = w.params
    t = w.traffic
    small = min(1.0, p.scale**0.5)  # tiny scenarios get shorter scans (the partner must stay on top)
    t0s, ips, eps, uas, conns = [], [], [], [], []
    visit = 0
    for s in range(3):
        ip = blocks.scanners[s][0]
        ua = t.uas(SCANNER_UAS[s])
        for _ in range(int(rng.integers(1, 4))):
            n = max(6, round(int(rng.integers(18, len(PROBES) + 1)) * small))
            begin = p.start_us + int(rng.integers(0, p.days * DAY - HOUR))
            gaps = rng.integers(200_000, 3_000_000, size=n)
            t0s.append(begin + np.cumsum(gaps) - gaps[0])
            eps.append(PROBE_BASE + rng.choice(len(PROBES), size=n, replace=False))
            ips.append(np.full(n, ip))
            uas.append(np.full(n, ua))
            conns.append(np.full(n, visit))
            visit += 1
    ep = np.concatenate(eps)
    status = np.array([code for _, code in PROBES])[ep - PROBE_BASE]
    t.add(
        t.actor(
            "scanner_paths", kind="scanner", description="path probes (/.env, /wp-login.php, …), mostly 404"
        ),
        t0=np.concatenate(t0s),
        ip=np.concatenate(ips),
        ep=ep,
        status=status,
        body=np.where(status == 404, 153, np.where(status == 403, 146, 61)),
        ua=np.concatenate(uas),
        conn=np.concatenate(conns),
        h2=False,
    )
    # One run of low customer ids within an hour: none exists (404), the usage calls need a login (401).
    n = max(10, round(int(rng.integers(30, 61)) * small))
    begin = p.start_us + int(rng.integers(0, p.days * DAY - 2 * HOUR))
    gaps = rng.integers(8 * SEC, 16 * SEC, size=n)
    ids = int(rng.integers(100, 5000)) + np.arange(n)
    ep = np.where(rng.random(n) < 0.15, USAGE, CUSTOMER)
    status = np.where(ep == USAGE, 401, 404)
    t.add(
        t.actor(
            "scanner_ids",
            kind="scanner",
            description="a short run of low customer ids within an hour, refused (404 no such customer, "
            "401 on /usage)",
        ),
        t0=begin + np.cumsum(gaps) - gaps[0],
        ip=blocks.scanners[3][0],
        ep=ep,
        obj=ids,
        status=status,
        body=np.where(status == 404, 48, 61),
        ua=t.uas(ID_SCANNER_UA),
        h2=False,
    )


# --------------------------------------------------------------------------------------------------
# The attacker


def _even_times(rng: np.random.Generator, begin: int, end: int, n: int, jitter: float = 0.3) -> np.ndarray:
    """``n`` times over [begin, end] at a constant-ish cadence (evenly spaced, jittered, sorted)."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    step = (end - begin) / n
    base = begin + (np.arange(n) + 0.5) * step
    out = base + rng.uniform(-jitter, jitter, size=n) * step
    out = np.sort(np.clip(out, begin, end)).astype(np.int64)
    out[0] = begin
    return out


def attacker_standard(w: World, blocks: Blocks) -> None:
    """Weeks of walking ids in order through GET /api/v1/customers/{id}, from a pool of hosting
    addresses, each address only a normal heavy user's volume on any day; some forge X-Forwarded-For."""
    rng = w.rng["attacker"]
    n = w.planned_attack
    t0 = _even_times(rng, w.attack_start_us, w.attack_end_us, n, jitter=0.25)
    ids = w.db.base + w.walk_start + np.arange(n)
    pool = np.array([a for b in blocks.hosting for a in b], dtype=np.int32)
    forging = rng.choice(pool, size=len(pool) // 3, replace=False)
    forged = blocks.forged
    xff_of = dict(zip(forging.tolist(), forged.tolist(), strict=True))
    day = (t0 - w.start_us) // DAY
    ip = np.empty(n, dtype=np.int32)
    for d in np.unique(day):
        sel = np.flatnonzero(day == d)
        k = int(rng.integers(6, 11)) * pool_factor(w.params.scale)
        active = rng.choice(pool, size=min(len(pool), k), replace=False)
        ip[sel] = active[rng.integers(0, len(active), size=len(sel))]
    xff = np.array([xff_of.get(int(a), -1) for a in ip], dtype=np.int32)
    t = w.traffic
    t.add(
        t.actor(
            "attacker",
            kind="enumeration",
            description="walks customer ids in order through GET /api/v1/customers/{id} without "
            "credentials, from a rotating pool of hosting addresses",
            id_order="sequential",
            forged_xff=sorted(int(f) for f in forged),
            pauses=[],
        ),
        t0=t0,
        ip=ip,
        xff=xff,
        ep=CUSTOMER,
        obj=ids,
        status=np.where(w.db.has(ids), 200, 404),
        body=w.db.body(ids),
        ua=t.uas(ATTACKER_UA),
        conn=np.arange(n),
        h2=False,
    )


def attacker_hard(w: World, blocks: Blocks) -> None:
    """The evasive variant: hundreds of residential addresses with a few requests each, shuffled ids or
    a list, app-like requests mixed in, retries after errors, pauses of days, a slow start with probes,
    ordinary browser user agents."""
    rng = w.rng["attacker"]
    p = w.params
    a0, a1 = w.attack_start_us, w.attack_end_us
    first_day = (a0 - p.start_us) // DAY
    last_day = (a1 - p.start_us) // DAY
    days = np.arange(first_day, last_day + 1)
    nd = len(days)
    kind = np.full(nd, "active", dtype=object)
    probe_days = min(nd, int(rng.integers(2, 4)))
    kind[:probe_days] = "probe"
    pauses: list[tuple[int, int]] = []
    room_lo, room_hi = probe_days + 1, nd - 3
    for _ in range(int(rng.integers(1, 3))):
        length = int(rng.integers(2, 6))
        if room_hi - room_lo < length + 1:
            break
        s = int(rng.integers(room_lo, room_hi - length))
        if (kind[s - 1 : s + length + 1] == "pause").any():
            continue
        kind[s : s + length] = "pause"
        pauses.append((int(days[s]), int(days[s + length - 1])))
    active = kind == "active"
    per_day = np.where(kind == "probe", rng.integers(3, 13, nd), np.where(active, 0, 0)).astype(np.int64)
    rate = w.planned_attack / max(1, active.sum() + 0.0)
    per_day[active] = np.maximum(1, (rate * rng.uniform(0.7, 1.3, active.sum())).astype(np.int64))
    t_parts = []
    for i, d in enumerate(days):
        if per_day[i] == 0:
            continue
        lo = max(a0, p.start_us + int(d) * DAY)
        hi = min(a1, p.start_us + (int(d) + 1) * DAY - 1)
        if kind[i] == "probe":  # a few requests by hand, in the evening
            lo2 = lo if i == 0 else lo + 16 * HOUR
            times = np.sort(lo2 + rng.integers(0, max(1, min(hi, lo2 + 4 * HOUR) - lo2), per_day[i]))
            if i == 0:
                times[0] = a0
            t_parts.append(times)
        else:
            t_parts.append(_even_times(rng, lo, hi, int(per_day[i])))
    t0 = np.concatenate(t_parts)
    if kind[-1] != "pause":
        t0[-1] = max(t0[-1], a1)
    n = len(t0)

    # Ids: shuffled inside blocks of a sequential range, or taken from a list of existing customers.
    mode = str(rng.choice(["block_shuffle", "list"]))
    if mode == "list":
        ids = rng.choice(w.db.existing, size=n, replace=False)
    else:
        ids = w.db.base + w.walk_start + np.arange(n)
        block = int(rng.integers(64, 257))
        for s in range(0, n, block):
            ids[s : s + block] = rng.permutation(ids[s : s + block])

    # Addresses: short runs (a few requests each) on residential proxies; runs overlap in time.
    runs = np.minimum(rng.geometric(0.3, size=n), 12)
    runs = runs[: int(np.searchsorted(np.cumsum(runs), n)) + 1]
    run_of, pos = _expand(runs)
    run_of, pos = run_of[:n], pos[:n]
    stretch = rng.uniform(1.0, 4.0, size=len(runs))
    starts = np.cumsum(runs) - runs
    key = starts[run_of] + pos * stretch[run_of] + rng.uniform(0, 1, size=n)
    slot_run = run_of[np.argsort(key, kind="stable")]  # the run serving the k-th request in time
    pool = blocks.residential
    run_ip = pool[rng.integers(0, len(pool), size=len(runs))]
    run_ua = rng.integers(0, len(BROWSERS), size=len(runs))
    t = w.traffic
    browser = np.array([t.uas(b) for b in BROWSERS], dtype=np.int32)
    ip = run_ip[slot_run]
    ua = browser[run_ua[slot_run]]

    # Errors and retries: a throttled request is asked again, seconds later, from the next address.
    status = np.where(w.db.has(ids), 200, 404)
    err = rng.random(n) < 0.04
    status = np.where(err, np.where(rng.random(n) < 0.6, 429, 503), status)
    body = np.where(status == 429, 62, np.where(status == 503, 162, w.db.body(ids)))
    e = np.flatnonzero(err)
    retry_t = np.minimum(t0[e] + rng.integers(3 * SEC, 90 * SEC, size=len(e)), a1)
    retry_run = np.minimum(slot_run[e] + 1, len(runs) - 1)
    retry_ids = ids[e]

    # App-like requests mixed in: the login page, the catalogue, the device list (no session: 401).
    m = round(0.1 * n)
    near = rng.integers(0, n, size=m)
    mix_t = np.clip(t0[near] + rng.integers(-20 * SEC, 20 * SEC, size=m), t0.min(), a1)
    mix_ep = rng.choice([LOGIN, CATALOG, DEVICES], size=m, p=[0.4, 0.4, 0.2])
    mix_status = np.where(mix_ep == CATALOG, 200, 401)
    mid = p.start_us + p.days * DAY // 2
    mix_body = np.where(mix_ep == CATALOG, np.where(mix_t < mid, w.catalog[0], w.catalog[1]), 58)

    t.add(
        t.actor(
            "attacker",
            kind="enumeration",
            description="takes customer records through GET /api/v1/customers/{id} without credentials, "
            "evasively: residential proxies, shuffled ids or a list, app-like requests, retries, pauses, "
            "browser user agents",
            id_order=mode,
            forged_xff=[],
            pauses=pauses,
        ),
        t0=np.concatenate([t0, retry_t, mix_t]),
        ip=np.concatenate([ip, run_ip[retry_run], ip[near]]),
        ep=np.concatenate([np.full(n + len(e), CUSTOMER), mix_ep]),
        obj=np.concatenate([ids, retry_ids, np.full(m, -1)]),
        status=np.concatenate([status, np.where(w.db.has(retry_ids), 200, 404), mix_status]),
        body=np.concatenate([body, w.db.body(retry_ids), mix_body]),
        ua=np.concatenate([ua, browser[run_ua[retry_run]], ua[near]]),
        conn=np.concatenate([slot_run, retry_run, slot_run[near]]),
        h2=True,
    )


def staff(w: World, blocks: Blocks) -> None:
    """Customer-service agents (hard profile): many customers a day through the same endpoint, from a
    few corporate addresses, business hours on weekdays, since the first day of evidence."""
    rng = w.rng["staff"]
    p = w.params
    t = w.traffic
    uas = np.array([t.uas(u) for u in STAFF_UAS], dtype=np.int32)
    midnights = local_midnights(p.start_us, p.days, SERVER_TZ)
    look_t, look_ip = [], []
    for m in midnights:
        weekday = datetime.fromtimestamp(int(m + 12 * HOUR) // US, UTC).weekday()
        if weekday >= 5:
            continue
        for ip in blocks.staff:
            k = int(rng.poisson(15 * p.scale))
            look_t.append(m + 8 * HOUR + rng.integers(0, int(9.5 * HOUR), size=k))
            look_ip.append(np.full(k, ip))
    lt = np.concatenate(look_t)
    lip = np.concatenate(look_ip)
    nl = len(lt)
    existing = w.db.existing
    ids = existing[rng.integers(0, len(existing), size=nl)]
    typo = rng.random(nl) < 0.03
    missing = w.db.base + np.flatnonzero(~w.db.exists)
    ids[typo] = missing[rng.integers(0, len(missing), size=int(typo.sum()))]
    # Each lookup opens the customer, often the plan and usage tabs; some are opened again later.
    reread = rng.random(nl) < 0.08
    plan = rng.random(nl) < 0.5
    usage = rng.random(nl) < 0.3
    found = w.db.has(ids)
    parts_t = [lt, lt[plan & found] + rng.integers(2 * SEC, 20 * SEC, int((plan & found).sum()))]
    parts_t += [
        lt[usage & found] + rng.integers(3 * SEC, 30 * SEC, int((usage & found).sum())),
        lt[reread] + rng.integers(5 * MIN, 90 * MIN, int(reread.sum())),
    ]
    sel = [np.arange(nl), np.flatnonzero(plan & found), np.flatnonzero(usage & found), np.flatnonzero(reread)]
    eps = [CUSTOMER, PLAN, USAGE, CUSTOMER]
    idx = np.concatenate(sel)
    ep = np.concatenate([np.full(len(s), e) for s, e in zip(sel, eps, strict=True)])
    obj = ids[idx]
    status = np.where(w.db.has(obj), 200, 404)
    look_ua = uas[rng.integers(0, len(uas), size=nl)]
    body = np.where(ep == CUSTOMER, w.db.body(obj), np.where(ep == PLAN, 412 + obj % 293, 900 + obj % 1700))
    t.add(
        t.actor(
            "staff",
            kind="staff",
            description="customer-service agents in the CRM: random customers, weekdays 08:00-17:30 "
            "Los Angeles time, some records opened twice",
        ),
        t0=np.concatenate(parts_t),
        ip=lip[idx],
        ep=ep,
        obj=obj,
        status=status,
        body=body,
        ua=look_ua[idx],
        conn=idx,
        h2=True,
        auth=True,
    )


def app_team(w: World, blocks: Blocks, entries: list) -> None:
    """The app team reproducing the calls the day after detection (the HAR capture): the same requests,
    seen by the balancer and the gateways, from the office."""
    if not entries:
        return
    t = w.traffic
    ua = t.uas(app_ua(APP_VERSIONS[-1], IOS_DEVICES[0]))
    t.add(
        t.actor(
            "app_team",
            kind="app_team",
            description="the app team reproducing the calls through an intercepting proxy (the HAR capture)",
        ),
        t0=np.array([e.t0 for e in entries], dtype=np.int64),
        ip=blocks.office[0],
        ep=np.array([e.ep for e in entries]),
        obj=np.array([e.obj for e in entries]),
        status=np.array([e.status for e in entries]),
        body=np.array([len(e.body) for e in entries]),
        ua=ua,
        conn=np.zeros(len(entries), dtype=np.int64),
        h2=True,
        auth=np.array([e.authenticated for e in entries]),
    )
