"""The app team's HAR capture: an authenticated app session, then the abused endpoint without credentials.

Made the day after detection while reproducing the calls through an intercepting proxy (HAR 1.2,
HTTP/2 with pseudo-headers). It carries what HAR captures really carry and what the tool must never
copy out in clear: a password in a login body, a bearer token, a session cookie. The unauthenticated
``GET /api/v1/customers/{id}`` answers 200 with a customer's name, email, phone, postal address and
account number: the exposure. The same requests are in the ALB and nginx logs (actor ``app_team``),
with the body sizes of the bodies written here.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from .scenario import (
    APP_VERSIONS,
    CATALOG,
    CUSTOMER,
    DAY,
    DOMAIN,
    HOST,
    HOUR,
    IOS_DEVICES,
    LOGIN,
    MIN,
    PLAN,
    SERVER_TZ,
    US,
    USAGE,
    Database,
    app_ua,
)

FIRST = [
    "Dana",
    "Miguel",
    "Priya",
    "Tomasz",
    "Aaliyah",
    "Connor",
    "Mei",
    "Santiago",
    "Grace",
    "Omar",
    "Hannah",
    "Luis",
    "Keisha",
    "Ethan",
    "Rosa",
    "Jamal",
]
LAST = [
    "Whitfield",
    "Okafor",
    "Brennan",
    "Castillo",
    "Nguyen",
    "Lindqvist",
    "Haddad",
    "Moreno",
    "Patel",
    "Sullivan",
    "Kowalski",
    "Reyes",
    "Tanaka",
]
STREETS = [
    "Alder Crest Ave",
    "Birchwood Ln",
    "Cedar Hollow Rd",
    "Delmar Blvd",
    "Elm Park Dr",
    "Foxglove Ct",
    "Garnet St",
    "Harbor View Way",
]
CITIES = [
    ("Tacoma", "WA", "98405", "253"),
    ("Bellevue", "WA", "98004", "425"),
    ("Portland", "OR", "97205", "503"),
    ("Boise", "ID", "83702", "208"),
    ("Sacramento", "CA", "95814", "916"),
    ("Spokane", "WA", "99201", "509"),
    ("Reno", "NV", "89501", "775"),
]
PLANS = [
    ("MGN-UNL-PLUS", "Magentel Unlimited Plus", "110.00", ["5G", "hotspot-40GB", "intl-texting"]),
    ("MGN-ESS", "Magentel Essentials", "60.00", ["5G", "hotspot-3G"]),
    ("MGN-55", "Magentel 55+", "70.00", ["5G", "hotspot-5GB", "scam-shield"]),
]


def customer_record(rng: np.random.Generator, customer_id: int) -> dict[str, Any]:
    """A fictional customer as the API returns it (names, example.* emails, 555-01xx phone numbers)."""
    first = str(rng.choice(FIRST))
    last = str(rng.choice(LAST))
    city, state, zipcode, area = CITIES[int(rng.integers(0, len(CITIES)))]
    phone = f"+1-{area}-555-01{int(rng.integers(0, 100)):02d}"
    address = {
        "line1": f"{int(rng.integers(100, 9999))} {rng.choice(STREETS)}",
        "line2": f"Apt {int(rng.integers(1, 40))}" if rng.random() < 0.4 else "",
        "city": city,
        "state": state,
        "postalCode": zipcode,
        "country": "US",
    }
    code, name, rate, features = PLANS[int(rng.integers(0, len(PLANS)))]
    lines = int(rng.integers(1, 4))
    return {
        "customerId": str(customer_id),
        "accountNumber": str(int(rng.integers(100_000_000, 999_999_999))),
        "firstName": first,
        "lastName": last,
        "email": f"{first.lower()}.{last.lower()}{int(rng.integers(10, 99))}@example.net",
        "phone": phone,
        "billingAddress": address,
        "serviceAddress": address,
        "plan": {"code": code, "name": name, "lines": lines, "monthlyRate": rate, "features": features},
        "lines": [
            {
                "msisdn": phone if i == 0 else f"+1-{area}-555-01{int(rng.integers(0, 100)):02d}",
                "deviceModel": str(rng.choice(["iPhone 14", "Galaxy S22", "Pixel 7", "iPhone 13", "moto g"])),
                "status": "active",
            }
            for i in range(lines)
        ],
        "accountStatus": "active",
        "customerSince": f"{int(rng.integers(2009, 2022))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}",
        "preferredLanguage": "en-US",
        "paperlessBilling": bool(rng.random() < 0.7),
        "autopay": bool(rng.random() < 0.6),
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Entry:
    """One HAR entry, and the request it is in the logs."""

    t0: int  # µs since the epoch (startedDateTime)
    ep: int
    obj: int
    status: int
    body: bytes
    authenticated: bool
    json: dict[str, Any]


def build(
    rng: np.random.Generator, db: Database, start_us: int, end_us: int, after_us: int, victim: int
) -> tuple[list[Entry], dict[str, Any]]:
    """The capture (entries with their log-side facts, and the HAR document).

    The records' sizes are written into ``db`` so that every log line about them has the same size.
    """
    existing = db.existing
    own = int(existing[rng.integers(0, len(existing))])
    missing = db.base + np.flatnonzero(~db.exists)
    absent = int(missing[rng.integers(0, len(missing))])
    begin = after_us + 18 * HOUR  # the next morning, Los Angeles time
    begin = begin - begin % DAY + 18 * HOUR + int(rng.integers(0, 40 * MIN))
    if begin > end_us - HOUR:
        begin = min(after_us + 10 * MIN, end_us - 30 * MIN)
    device = IOS_DEVICES[0]
    ua = app_ua(APP_VERSIONS[-1], device)
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "mgn-2022-10"}).encode())
    claims = {"sub": str(own), "iss": f"https://auth.{DOMAIN}", "aud": "magentel-app", "iat": begin // US}
    claims["exp"] = claims["iat"] + 3600
    token = f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(rng.bytes(64))}"
    refresh = rng.bytes(24).hex()
    session = rng.bytes(16).hex()
    own_record = customer_record(rng, own)
    victim_record = customer_record(rng, victim)
    password = "Tr0ub4dor&3-qa"
    login = {"username": "qa.tester@magentel.example", "password": password, "deviceId": rng.bytes(8).hex()}
    catalog = {
        "plans": [
            {"code": c, "name": n, "monthlyRate": r, "features": f, "available": True} for c, n, r, f in PLANS
        ],
        "currency": "USD",
        "updated": "2022-12-01",
    }
    usage = {
        "customerId": str(own),
        "period": "2022-12",
        "dataGB": 14.2,
        "voiceMinutes": 312,
        "messages": 884,
        "hotspotGB": 1.1,
    }

    def body(doc: Any) -> bytes:
        return json.dumps(doc, separators=(",", ":")).encode()

    plan_doc = {"customerId": str(own), **own_record["plan"], "renewal": "2023-01-14"}
    specs = [
        (
            LOGIN,
            -1,
            200,
            body(
                {"access_token": token, "refresh_token": refresh, "token_type": "Bearer", "expires_in": 3600}
            ),
            False,
            login,
        ),
        (CUSTOMER, own, 200, body(own_record), True, None),
        (PLAN, own, 200, body(plan_doc), True, None),
        (USAGE, own, 200, body(usage), True, None),
        (CATALOG, -1, 200, body(catalog), True, None),
        (CUSTOMER, victim, 200, body(victim_record), False, None),
        (CUSTOMER, absent, 404, body({"error": "customer not found", "code": 404}), False, None),
    ]
    for ep, obj, _status, data, _auth, _ in specs:
        if ep == CUSTOMER and obj >= 0 and db.has(np.array([obj]))[0]:
            db.size[obj - db.base] = len(data)
    gaps = [0, 2.1, 0.4, 0.35, 1.8, 41.0, 17.5]
    entries: list[Entry] = []
    t = begin
    for (ep, obj, status, data, authenticated, post), gap in zip(specs, gaps, strict=True):
        t += int(gap * US) + int(rng.integers(0, 300_000))
        entries.append(Entry(t, ep, obj, status, data, authenticated, post or {}))
    doc = _document(rng, entries, ua, token, session)
    return entries, doc


_PATHS = {
    LOGIN: lambda o: "/api/v1/auth/login",
    CUSTOMER: lambda o: f"/api/v1/customers/{o}",
    PLAN: lambda o: f"/api/v1/customers/{o}/plan",
    USAGE: lambda o: f"/api/v1/customers/{o}/usage",
    CATALOG: lambda o: "/api/v1/catalog/plans",
}


def _local(us: int) -> str:
    dt = datetime.fromtimestamp(us // US, UTC).astimezone(ZoneInfo(SERVER_TZ))
    text = dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(us % US) // 1000:03d}" + dt.strftime("%z")
    return text[:-2] + ":" + text[-2:]


def _document(
    rng: np.random.Generator, entries: list[Entry], ua: str, token: str, session: str
) -> dict[str, Any]:
    har_entries = []
    for e in entries:
        path = _PATHS[e.ep](e.obj)
        method = "POST" if e.ep == LOGIN else "GET"
        headers = [
            {"name": ":method", "value": method},
            {"name": ":authority", "value": HOST},
            {"name": ":scheme", "value": "https"},
            {"name": ":path", "value": path},
            {"name": "accept", "value": "application/json"},
            {"name": "accept-encoding", "value": "gzip"},
            {"name": "user-agent", "value": ua},
            {"name": "x-app-version", "value": APP_VERSIONS[-1]},
        ]
        cookies = []
        if e.authenticated:
            headers.append({"name": "authorization", "value": f"Bearer {token}"})
            headers.append({"name": "cookie", "value": f"mgn_session={session}"})
            cookies.append({"name": "mgn_session", "value": session})
        request: dict[str, Any] = {
            "method": method,
            "url": f"https://{HOST}{path}",
            "httpVersion": "HTTP/2.0",
            "cookies": cookies,
            "headers": headers,
            "queryString": [],
            "headersSize": -1,
            "bodySize": 0,
        }
        if e.json:
            text = json.dumps(e.json, separators=(",", ":"))
            headers.append({"name": "content-type", "value": "application/json; charset=utf-8"})
            request["postData"] = {"mimeType": "application/json; charset=utf-8", "text": text}
            request["bodySize"] = len(text)
        resp_headers = [
            {"name": ":status", "value": str(e.status)},
            {"name": "content-type", "value": "application/json"},
            {"name": "content-length", "value": str(len(e.body))},
            {
                "name": "date",
                "value": datetime.fromtimestamp(e.t0 // US, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
            },
            {"name": "server", "value": "nginx"},
            {"name": "cache-control", "value": "no-store"},
        ]
        resp_cookies = []
        if e.ep == LOGIN:
            cookie = f"mgn_session={session}; Path=/; Domain=.{DOMAIN}; Secure; HttpOnly; SameSite=Lax"
            resp_headers.append({"name": "set-cookie", "value": cookie})
            resp_cookies.append(
                {
                    "name": "mgn_session",
                    "value": session,
                    "path": "/",
                    "domain": f".{DOMAIN}",
                    "httpOnly": True,
                    "secure": True,
                }
            )
        wait = round(float(rng.uniform(20, 90)), 3)
        har_entries.append(
            {
                "startedDateTime": _local(e.t0),
                "time": round(wait + 0.6, 3),
                "request": request,
                "response": {
                    "status": e.status,
                    "statusText": "OK" if e.status == 200 else "Not Found",
                    "httpVersion": "HTTP/2.0",
                    "cookies": resp_cookies,
                    "headers": resp_headers,
                    "content": {"size": len(e.body), "mimeType": "application/json", "text": e.body.decode()},
                    "redirectURL": "",
                    "headersSize": -1,
                    "bodySize": len(e.body),
                },
                "cache": {},
                "timings": {
                    "blocked": -1,
                    "dns": -1,
                    "connect": -1,
                    "ssl": -1,
                    "send": 0.2,
                    "wait": wait,
                    "receive": 0.4,
                },
                "connection": "443",
            }
        )
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "Charles Proxy", "version": "4.6.3"},
            "comment": "app team: reproducing the customer lookup (INC-2023-0105)",
            "entries": har_entries,
        }
    }
