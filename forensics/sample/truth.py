"""truth.json: what really happened in a generated scenario, counted from the requests that were written.

Every number is computed from the final request table (after the window cut), never from the plan,
so the file always agrees with the evidence. Times are the balancer's ``time`` of a request (when the
response was sent), UTC, ISO 8601 with microseconds and ``Z``; nginx logs the same instant in whole
seconds of server-local time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from .. import __version__
from .actors import World
from .render import ACCOUNT, ELB, GATEWAYS, NGINX_MAIN, NODES, REGION, ROTATE_AT, Written
from .scenario import CUSTOMER, DAY, ENDPOINTS, HOST, PLAN, PROBES, SERVER_TZ, US, USAGE, iso

SCHEMA = "forensics.sample.truth/1"
ENDPOINT = "/api/v1/customers/{id}"


def _endpoint_templates() -> list[str]:
    out = []
    for _m, prefix, has_id, suffix, _q, _ms in ENDPOINTS:
        out.append(prefix + ("{id}" if has_id else "") + suffix)
    return out + [p for p, _ in PROBES]


def _day(us: int) -> str:
    return datetime.fromtimestamp(us // US, UTC).strftime("%Y-%m-%d")


class Facts:
    """Counting helpers over the final request table."""

    def __init__(self, table: dict[str, np.ndarray], world: World) -> None:
        self.t = table
        self.w = world
        self.addr = world.addresses.table
        self.uas = world.traffic.uas.table
        self.templates = _endpoint_templates()

    def mask(self, actor: str) -> np.ndarray:
        if actor not in self.w.traffic.actors:
            return np.zeros(len(self.t["t"]), dtype=bool)
        return self.t["actor"] == self.w.traffic.actors.index(actor)

    def addresses(self, m: np.ndarray) -> list[str]:
        return sorted({self.addr[i] for i in np.unique(self.t["ip"][m]).tolist()})

    def span(self, m: np.ndarray) -> dict[str, Any]:
        t = self.t["t"][m]
        if len(t) == 0:
            return {"requests": 0, "first_request": None, "last_request": None}
        return {
            "requests": int(m.sum()),
            "first_request": iso(int(t.min())),
            "last_request": iso(int(t.max())),
        }

    def endpoints(self, m: np.ndarray) -> dict[str, int]:
        eps, counts = np.unique(self.t["ep"][m], return_counts=True)
        out: dict[str, int] = {}
        methods = [e[0] for e in ENDPOINTS] + ["GET"] * len(PROBES)
        for e, c in zip(eps.tolist(), counts.tolist(), strict=True):
            key = f"{methods[e]} {self.templates[e]}"
            out[key] = out.get(key, 0) + c
        return out

    def daily_per_address(self, m: np.ndarray) -> dict[str, int]:
        """Requests a day per address (max and median over address-days): how heavy one address looks."""
        if not m.any():
            return {"max": 0, "median": 0}
        day = (self.t["t"][m] - self.w.start_us) // DAY
        key = day * (1 << 32) + self.t["ip"][m]
        _, counts = np.unique(key, return_counts=True)
        return {"max": int(counts.max()), "median": int(np.median(counts))}

    def daily(self, m: np.ndarray) -> dict[str, int]:
        """Requests a day of the whole actor (min and max over the days it was active)."""
        if not m.any():
            return {"min": 0, "max": 0}
        _, counts = np.unique((self.t["t"][m] - self.w.start_us) // DAY, return_counts=True)
        return {"min": int(counts.min()), "max": int(counts.max())}

    def records(self, m: np.ndarray) -> dict[str, int]:
        """Distinct customer ids asked for on the abused endpoint, and those answered with a record."""
        on = m & (self.t["ep"] == CUSTOMER)
        ok = on & (self.t["status"] == 200) & (self.t["body"] > 0)
        return {
            "records_requested": int(len(np.unique(self.t["obj"][on]))),
            "records_returned": int(len(np.unique(self.t["obj"][ok]))),
            "endpoint_requests": int(on.sum()),
            "endpoint_bytes": int(self.t["body"][ok].sum()),
        }

    def user_agents(self, m: np.ndarray) -> list[str]:
        return sorted({self.uas[i] for i in np.unique(self.t["ua"][m]).tolist()})


def build(
    world: World,
    table: dict[str, np.ndarray],
    written: dict[str, Written],
    har_file: str | None,
    har_entries: int,
    nodes: int,
) -> dict[str, Any]:
    """The truth document (schema ``forensics.sample.truth/1``; see the package docstring for the keys)."""
    p = world.params
    f = Facts(table, world)
    notes = world.traffic.notes
    total = len(table["t"])

    # The attacker.
    am = f.mask("attacker")
    note = notes["attacker"]
    attacker = {
        "id": "attacker",
        "kind": note["kind"],
        "description": note["description"],
        "addresses": f.addresses(am),
        "method": "GET",
        "host": HOST,
        "endpoint": ENDPOINT,
        **f.span(am),
        **f.records(am),
        "endpoints": f.endpoints(am),
        "id_order": note["id_order"],
        "user_agents": f.user_agents(am),
        "forged_xff": sorted(world.addresses.table[i] for i in note["forged_xff"]),
        "pauses": [
            {"first_day": _day(p.start_us + a * DAY), "last_day": _day(p.start_us + b * DAY)}
            for a, b in note["pauses"]
        ],
        "daily_requests_per_address": f.daily_per_address(am),
        "credentials": "none: no Authorization header, no cookie",
    }

    # Benign clients that are heavy or unusual: what they are, and their addresses.
    benign: list[dict[str, Any]] = []

    def entry(actor: str, **extra: Any) -> dict[str, Any]:
        m = f.mask(actor)
        n = notes[actor]
        return {
            "id": actor,
            "kind": n["kind"],
            "description": n["description"],
            "addresses": f.addresses(m),
            **f.span(m),
            "endpoints": f.endpoints(m),
            "user_agents": f.user_agents(m),
            **extra,
        }

    pm = f.mask("partner")
    benign.append(
        entry(
            "partner",
            credentials="api_key query parameter (logged; the tool fingerprints it into the principal)",
            daily_requests=f.daily(pm),
            daily_requests_per_address=f.daily_per_address(pm),
        )
    )
    bm = f.mask("batch_job")
    if bm.any():
        runs = []
        for d in np.unique((table["t"][bm] - world.start_us) // DAY).tolist():
            rm = bm & ((table["t"] - world.start_us) // DAY == d)
            runs.append(f.span(rm))
        benign.append(entry("batch_job", runs=runs, credentials="bearer token (not logged)"))
    # Carrier NAT: one address, many customers, each reading only their own id.
    cm = f.mask("customers")
    nat = []
    for i in notes["customers"]["nat_addresses"]:
        m = cm & (table["ip"] == i)
        own = m & np.isin(table["ep"], [CUSTOMER, PLAN, USAGE])
        nat.append(
            {
                "address": world.addresses.table[i],
                "customers": int(len(np.unique(table["obj"][own]))),
                "requests": int(m.sum()),
                "daily_requests": f.daily(m),
            }
        )
    benign.append(
        {
            "id": "carrier_nat",
            "kind": "nat",
            "description": "carrier-grade NAT: many app customers share each address, each reading only "
            "their own id",
            "addresses": sorted(n["address"] for n in nat),
            "per_address": sorted(nat, key=lambda n: n["address"]),
        }
    )
    benign.append(entry("scanner_paths"))
    sm = f.mask("scanner_ids")
    benign.append(entry("scanner_ids", **{k: v for k, v in f.records(sm).items() if k != "endpoint_bytes"}))
    if "staff" in world.traffic.actors:
        st = f.mask("staff")
        on = st & (table["ep"] == CUSTOMER)
        ids, counts = np.unique(table["obj"][on], return_counts=True)
        benign.append(
            entry(
                "staff",
                **f.records(st),
                ids_read_twice=int((counts > 1).sum()),
                daily_requests_per_address=f.daily_per_address(st),
                credentials="single sign-on session (not logged)",
            )
        )
    if "app_team" in world.traffic.actors:
        benign.append(entry("app_team", **f.records(f.mask("app_team")), har=har_file))
    benign.sort(key=lambda b: b["id"])

    customers = {
        "count": int(len(np.unique(table["obj"][cm & (table["ep"] == CUSTOMER)]))),
        "requests": int(cm.sum()),
        "addresses": int(len(np.unique(table["ip"][cm]))),
        "behind_nat_requests": int((cm & np.isin(table["ip"], notes["customers"]["nat_addresses"])).sum()),
        "corporate_proxy_xff": len(notes["customers"]["proxy_xff"]),
        "description": notes["customers"]["description"],
    }

    formats: dict[str, Any] = {}
    if "alb" in written:
        w = written["alb"]
        formats["alb"] = {
            "files": len(w.files),
            "lines": sum(w.files.values()),
            "events": total,
            "rejects": 0,
            "root": f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/",
        }
    if "nginx" in written:
        w = written["nginx"]
        planted_events = sum(1 for m in w.malformed if m["expected"] == "event")
        planted_rejects = sum(1 for m in w.malformed if m["expected"] == "reject")
        per_gateway = {}
        for name, _ip in GATEWAYS:
            files = {k: v for k, v in w.files.items() if k.startswith(f"{name}/")}
            per_gateway[name] = {"files": files, "lines": sum(files.values())}
        formats["nginx"] = {
            "gateways": per_gateway,
            "lines": sum(w.files.values()),
            "events": total + planted_events,
            "rejects": planted_rejects,
            "malformed": w.malformed,
        }
    if har_file is not None:
        formats["har"] = {"file": har_file, "entries": har_entries, "role": "reference"}

    db = world.db
    return {
        "schema": SCHEMA,
        "generator": f"forensics {__version__}",
        "seed": p.seed,
        "profile": p.profile,
        "scale": p.scale,
        "window": {
            "start": iso(p.start_us),
            "end": iso(p.end_us),
            "days": p.days,
        },
        "requests": total,
        "attackers": [attacker],
        "benign": benign,
        "customers": customers,
        "customer_ids": {
            "first": int(db.base),
            "last": int(db.base + len(db.exists) - 1),
            "existing": int(db.exists.sum()),
        },
        "formats": formats,
        "infrastructure": {
            "host": HOST,
            "alb": {
                "account": ACCOUNT,
                "region": REGION,
                "elb": ELB,
                "nodes": NODES[:nodes],
            },
            "gateways": [{"name": n, "address": ip, "port": 8080} for n, ip in GATEWAYS],
            "nginx": {
                "log_format": NGINX_MAIN,
                "timezone": SERVER_TZ,
                "rotation": f"daily at {ROTATE_AT[0]:02d}:{ROTATE_AT[1]:02d} local time, delaycompress "
                "(access.log, access.log.1, access.log.N.gz)",
            },
        },
        "timezone": SERVER_TZ,
    }


__all__ = ["ENDPOINT", "SCHEMA", "build"]
