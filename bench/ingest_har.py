"""Benchmark: end-to-end `forensics ingest` of a ~200 MB single-line HAR capture.

The capture looks like a browser export of an API session: Chrome-style headers (HTTP/2 pseudo-headers
included), cookies, timings, JSON response bodies with personal data, base64 images, form posts and a
few websocket entries, all on one line (the hardest shape for a line reader). Prints entries/s, MB/s
and the peak memory of the ingest process (target: under 500 MB, whatever the size of the capture).

    .venv/bin/python bench/ingest_har.py [--mb 200] [--gzip] [--keep DIR]

Data is generated into a temporary folder (never the repository).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measured  # noqa: E402

FORENSICS = [sys.executable, "-m", "forensics"]
PEAK_TARGET_MB = 500

FIRST = ["Jane", "Omar", "Priya", "Tomasz", "Grace", "Luis", "Mei", "Connor"]
LAST = ["Doe", "Okafor", "Patel", "Nguyen", "Reyes", "Tanaka", "Moreno", "Lindqvist"]
PIXEL = base64.b64encode(bytes(range(256)) * 12).decode()  # a ~4 KB "image"


def _headers(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": n, "value": v} for n, v in pairs]


def _entry(i: int, rng: random.Random, t0: datetime) -> dict:
    started = (t0 + timedelta(milliseconds=37 * i)).isoformat(timespec="milliseconds")
    code = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))
    kind = rng.random()
    token = f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{code}In0.sig{i % 97}"
    req_headers = [
        (":authority", "api.example.com"),
        (":method", "GET"),
        (":path", f"/api/v1/customers/{code}"),
        (":scheme", "https"),
        ("accept", "application/json, text/plain, */*"),
        ("accept-encoding", "gzip, deflate, br"),
        ("accept-language", "en-US,en;q=0.9"),
        ("origin", "https://app.example.com"),
        ("referer", "https://app.example.com/account"),
        ("sec-ch-ua", '"Chromium";v="118", "Google Chrome";v="118"'),
        ("sec-fetch-mode", "cors"),
        (
            "user-agent",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/118.0 Safari/537.36",
        ),
    ]
    if kind < 0.7:
        req_headers.append(("authorization", f"Bearer {token}"))
    resp_headers = [
        ("content-type", "application/json; charset=utf-8"),
        ("cache-control", "no-store"),
        ("date", "Thu, 05 Jan 2023 10:00:00 GMT"),
        ("server", "nginx"),
        ("strict-transport-security", "max-age=31536000"),
        ("x-request-id", f"req-{i:08d}"),
        ("x-amzn-trace-id", f"Root=1-63b6a0a0-{i:024x}"),
    ]
    mime, text, encoding, url, method = "application/json", None, None, "", "GET"
    post = None
    if kind < 0.75:
        url = f"https://api.example.com/api/v1/customers/{code}"
        record = {
            "id": code,
            "firstName": rng.choice(FIRST),
            "lastName": rng.choice(LAST),
            "email": f"{code.lower()}@example.com",
            "phone": f"+1415555{i % 10000:04d}",
            "address": {"street": f"{i % 900 + 1} Main Street", "city": "Springfield", "zip": "62704"},
            "accountNumber": f"{9000000000 + i}",
            "plan": {
                "name": "Unlimited Plus",
                "lines": [{"msisdn": f"1415555{i % 10000:04d}", "device": "Pixel 7"}],
            },
            "usage": [
                {"month": f"2022-{m:02d}", "dataGb": rng.random() * 40, "minutes": rng.randint(0, 900)}
                for m in range(1, 13)
            ],
        }
        text = json.dumps(record)
    elif kind < 0.85:
        url = f"https://cdn.example.com/img/avatar-{i % 500}.png"
        mime, text, encoding = "image/png", PIXEL, "base64"
    elif kind < 0.95:
        url = "https://api.example.com/api/v1/login"
        method = "POST"
        post = {
            "mimeType": "application/json",
            "text": json.dumps({"username": code, "password": f"pw-{code}"}),
        }
        text = json.dumps({"access_token": token, "expires_in": 3600})
    else:
        url = f"wss://ws.example.com/socket?channel={i % 20}"
        mime = ""
    entry = {
        "_initiator": {"type": "script"},
        "_priority": "High",
        "_resourceType": "fetch",
        "cache": {},
        "connection": str(443000 + i % 50),
        "pageref": "page_1",
        "request": {
            "method": method,
            "url": url,
            "httpVersion": "h2" if kind < 0.95 else "HTTP/1.1",
            "headers": _headers(req_headers),
            "queryString": [],
            "cookies": [
                {"name": "SESSIONID", "value": f"s-{code}", "path": "/", "httpOnly": True, "secure": True}
            ],
            "headersSize": -1,
            "bodySize": len(post["text"]) if post else 0,
        },
        "response": {
            "status": 200 if kind < 0.95 else 101,
            "statusText": "",
            "httpVersion": "h2",
            "headers": _headers(resp_headers),
            "cookies": [],
            "content": {"size": len(text) if text else 0, "mimeType": mime},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
            "_transferSize": 900 + (len(text) if text else 0),
        },
        "serverIPAddress": "203.0.113.80",
        "startedDateTime": started + "Z",
        "time": rng.random() * 300,
        "timings": {
            "blocked": 1.2,
            "dns": -1,
            "ssl": -1,
            "connect": -1,
            "send": 0.1,
            "wait": 80.5,
            "receive": 2.3,
        },
    }
    if post:
        entry["request"]["postData"] = post
    if text is not None:
        entry["response"]["content"]["text"] = text
        if encoding:
            entry["response"]["content"]["encoding"] = encoding
    if kind >= 0.95:
        entry["_webSocketMessages"] = [
            {"type": "send", "time": 1.0, "opcode": 1, "data": '{"op":"subscribe"}'},
            {
                "type": "receive",
                "time": 1.1,
                "opcode": 1,
                "data": json.dumps({"email": f"{code}@example.org"}),
            },
        ]
    return entry


def generate(path: Path, target_mb: float, compress: bool, seed: int = 7) -> int:
    """Write the capture as one line, entry by entry (never the whole document in memory)."""
    rng = random.Random(seed)
    t0 = datetime(2023, 1, 5, 10, tzinfo=UTC).replace(tzinfo=None)
    head = json.dumps(
        {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"}, "pages": []}
    )[:-1]
    opener = gzip.open if compress else open
    n = 0
    with opener(path, "wb") as fh:
        fh.write(b'\xef\xbb\xbf{"log": ' + head.encode() + b', "entries": [')
        written = 0
        while written < target_mb * 1e6:
            data = json.dumps(_entry(n, rng, t0)).encode()
            if n:
                fh.write(b", ")
            fh.write(data)
            written += len(data) + 2
            n += 1
        fh.write(b"]}}")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=float, default=200, help="size of the decompressed capture")
    ap.add_argument("--gzip", action="store_true", help="write the capture gzip-compressed")
    ap.add_argument("--keep", help="keep the generated data in this folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="forensics-bench-har-") as scratch:
        tmp = Path(args.keep) if args.keep else Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        evidence = tmp / "evidence"
        evidence.mkdir(exist_ok=True)
        har = evidence / ("capture.har.gz" if args.gzip else "capture.har")
        t = time.perf_counter()
        entries = generate(har, args.mb, args.gzip)
        size = har.stat().st_size / 1e6
        print(
            f"generated {entries:,} entries, {size:.0f} MB on disk in {time.perf_counter() - t:.1f}s -> {tmp}"
        )
        _ = har.read_bytes()  # warm the page cache
        case = tmp / "case"
        shutil.rmtree(case, ignore_errors=True)
        seconds, rss = measured([*FORENSICS, "ingest", str(evidence), "--case", str(case), "--workers", "1"])
        manifest = json.loads((case / "manifest.json").read_text())
        (e,) = manifest["inputs"]
        assert (e["status"], e["format"]) == ("ingested", "har"), e
        assert e["rows"] == entries and e["rejected"] == 0, e
        content_mb = e["content_bytes"] / 1e6
        peak = rss / 2**20
        print(
            f"forensics ingest (har)  {seconds:7.2f}s  {entries / seconds:>9,.0f} entries/s  "
            f"{content_mb / seconds:6.1f} MB/s (decompressed)  peak {peak:6.0f} MiB"
        )
        print(
            f"peak memory target      < {PEAK_TARGET_MB} MB: {'ok' if rss / 1e6 < PEAK_TARGET_MB else 'OVER'}"
        )
        t = time.perf_counter()
        out = subprocess.run(
            [*FORENSICS, "inventory", "--case", str(case), "--limit", "5"],
            check=True,
            capture_output=True,
            text=True,
        )
        print(f"forensics inventory     {time.perf_counter() - t:7.2f}s")
        print(out.stdout.splitlines()[0])


if __name__ == "__main__":
    main()
