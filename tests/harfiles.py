"""HAR documents built in tests: small, explicit, one builder call per entry."""

from __future__ import annotations

import base64
import json
from typing import Any

#: The personal data an unauthenticated endpoint returns in the tests (never to appear in a case).
CUSTOMER = {
    "id": "A7F3K2",
    "firstName": "Jane",
    "lastName": "Doe",
    "email": "jane.doe@example.com",
    "phone": "+14155550123",
    "address": {"street": "123 Main Street", "city": "Springfield", "zip": "62704"},
    "accountNumber": "9876543210",
    "plan": "Unlimited",
}
CUSTOMER_VALUES = ["jane.doe@example.com", "+14155550123", "123 Main Street", "9876543210", "62704"]


def headers(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"name": n, "value": v} for n, v in pairs]


def entry(
    url: str,
    *,
    method: str = "GET",
    started: str = "2023-01-05T10:00:00.000Z",
    time: float = 12.5,
    status: int = 200,
    http_version: str = "HTTP/1.1",
    request_headers: list[dict[str, str]] | None = None,
    response_headers: list[dict[str, str]] | None = None,
    cookies: list[dict[str, str]] | None = None,
    body: Any = None,
    mime: str = "application/json",
    base64_body: bool = False,
    body_size: int = -1,
    content_size: int | None = None,
    request_body_size: int = 0,
    post_text: str | None = None,
    server_ip: str | None = "203.0.113.80",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One HAR entry; ``body`` (dict/list → JSON, str as is) becomes response.content.text."""
    text = None
    if body is not None:
        text = body if isinstance(body, str) else json.dumps(body)
    content: dict[str, Any] = {
        "size": content_size if content_size is not None else (len(text.encode()) if text else 0),
        "mimeType": mime,
    }
    if text is not None:
        if base64_body:
            content["text"] = base64.b64encode(text.encode()).decode()
            content["encoding"] = "base64"
        else:
            content["text"] = text
    request: dict[str, Any] = {
        "method": method,
        "url": url,
        "httpVersion": http_version,
        "headers": request_headers or [],
        "cookies": cookies or [],
        "queryString": [],
        "headersSize": -1,
        "bodySize": request_body_size,
    }
    if post_text is not None:
        request["postData"] = {"mimeType": "application/json", "text": post_text}
    e: dict[str, Any] = {
        "startedDateTime": started,
        "time": time,
        "request": request,
        "response": {
            "status": status,
            "statusText": "",
            "httpVersion": http_version,
            "headers": response_headers or [],
            "cookies": [],
            "content": content,
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": body_size,
        },
        "cache": {},
        "timings": {
            "blocked": -1,
            "dns": -1,
            "connect": -1,
            "send": 0,
            "wait": time,
            "receive": 0,
            "ssl": -1,
        },
    }
    if server_ip:
        e["serverIPAddress"] = server_ip
    e.update(extra or {})
    return e


def har(*entries: dict[str, Any], version: str = "1.2", pages: bool = True) -> dict[str, Any]:
    log: dict[str, Any] = {"version": version, "creator": {"name": "tests", "version": "1.0"}}
    if pages:
        log["pages"] = [{"startedDateTime": "2023-01-05T10:00:00.000Z", "id": "page_1", "title": "t"}]
    log["entries"] = list(entries)
    return {"log": log}


def dumps(doc: dict[str, Any], *, bom: bool = False, indent: int | None = None) -> bytes:
    data = json.dumps(doc, indent=indent).encode()
    return (b"\xef\xbb\xbf" + data) if bom else data
