"""Evidence whose attacker-controlled fields carry HTML and spreadsheet-formula payloads."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

SCRIPT_UA = "<script>document.title='pwned'</script>"
IMG_PATH = "/<img src=x onerror=document.title='pwned2'>"
FORMULA_UA = '=HYPERLINK("http://evil.example/","x")'


def _nginx(ip: str, t: datetime, path: str, status: int, size: int, ua: str) -> str:
    return f'{ip} - - [{t:%d/%b/%Y:%H:%M:%S} +0000] "GET {path} HTTP/1.1" {status} {size} "-" "{ua}"'


def injected_evidence(directory: Path) -> Path:
    """Ordinary app clients, an attacker walking ids with a <script> user agent, and a scanner whose
    user agent is a spreadsheet formula and whose paths include an <img onerror> payload."""
    rng = random.Random(1)
    t0 = datetime(2023, 2, 1, tzinfo=UTC)
    app = "MagentelApp/8.5.1 (Android 13) okhttp/4.10.0"
    events = []
    for day in range(6):
        for c in range(40):
            ip, own = f"198.51.100.{c + 10}", 5000 + c * 37
            for _ in range(rng.randint(3, 8)):
                t = t0 + timedelta(days=day, hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
                events.append((t, _nginx(ip, t, f"/api/v1/customers/{own}", 200, 900, app)))
                t2 = t + timedelta(seconds=1)
                events.append((t2, _nginx(ip, t2, f"/api/v1/customers/{own}/plan", 200, 300, app)))
    i = 5000
    for day in range(2, 5):
        for k in range(120):
            t = t0 + timedelta(days=day, minutes=k * 11)
            events.append(
                (
                    t,
                    _nginx(
                        "203.0.113.66", t, f"/api/v1/customers/{i}", 200 if i % 7 else 404, 900, SCRIPT_UA
                    ),
                )
            )
            i += 1
    paths = [IMG_PATH, "/.env", "/.git/config", "/admin", "/wp-login.php", "/phpmyadmin", "/server-status"]
    paths += ["/.aws/credentials", "/actuator/env", "/console", "/config.json", "/backup.zip"]
    for k, p in enumerate(paths * 2):
        t = t0 + timedelta(days=3, hours=5, seconds=k * 3)
        events.append((t, _nginx("192.0.2.99", t, p, 404, 150, FORMULA_UA)))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "access.log").write_text("\n".join(line for _t, line in sorted(events)) + "\n")
    return directory
