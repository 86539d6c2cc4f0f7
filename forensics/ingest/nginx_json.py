"""nginx ``escape=json`` access logs: one JSON object a line, keys chosen by the administrator.

``log_format j escape=json '{"time_local":"$time_local","remote_addr":"$remote_addr",…}'``. Keys are
read as nginx variable names (``time_local``, ``remote_addr``, ``request``, ``status``, …, also with a
leading ``@`` or ``$``), and mapped like any log_format variable; other keys go to ``extra``.

Real files break JSON in two ways and neither may cost the rest of the file: bytes >= 0x80 are written
raw (the reader replaces invalid UTF-8 with U+FFFD), and unquoted numeric variables that are empty
write ``"upstream_response_time":-`` (repaired to ``null`` before decoding). A batch that still fails
to decode goes through :func:`._records.decode_objects`: each invalid line becomes a reject with its
reason (``invalid JSON``, ``not a JSON object``, ``JSON nested too deeply``), and a value of an odd
JSON type is kept as text (an object as its JSON, a list as its items joined by ", "; masked like any
other text); ``NaN``, ``Infinity`` and numbers beyond a float are read as their text.
"""

from __future__ import annotations

import re

import polars as pl

from . import _clf
from . import _records as R
from .base import Detection, FileContext, Ingestor, reject_frame, sniff_lines
from .logformat import CompiledFormat, Field, to_events

_TIME_KEYS = {"time_local", "time_iso8601", "msec", "timestamp", "time"}
_KEY_ALIASES = {
    "timestamp": "time_iso8601",
    "time": "time_iso8601",
    "http_referrer": "http_referer",
    "client_ip": "remote_addr",
    "ip": "remote_addr",
    "user_agent": "http_user_agent",
    "referer": "http_referer",
    "referrer": "http_referer",
    "method": "request_method",
    "bytes_sent_body": "body_bytes_sent",
    "xff": "http_x_forwarded_for",
}
_DASH_NUMBER = R.DASH_NUMBER


def _canonical(key: str) -> str:
    k = key.lstrip("@$").lower().replace("-", "_")
    return _KEY_ALIASES.get(k, k)


class NginxJsonIngestor(Ingestor):
    name = "nginx_json"
    description = "nginx access log written with log_format escape=json (one JSON object a line)"
    recognised_by = (
        "lines that are JSON objects whose keys are nginx variables (request/status and a time key)"
    )
    invalid_utf8 = "replace"

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        body = sniff_lines(lines)
        if not body or not body[0].lstrip().startswith("{"):
            return None
        keys: set[str] = set()
        ok = 0
        for ln in body:
            obj = R.head_object(re.sub(_DASH_NUMBER, r'":null\1', ln).strip())
            if obj is not None:
                ok += 1
                keys.update(_canonical(k) for k in obj)
        has_time = bool(keys & {"time_local", "time_iso8601", "msec"})
        has_req = "request" in keys or {"request_method", "request_uri"} <= keys or "uri" in keys
        if not (has_time and has_req and ("status" in keys)):
            return None
        conf = 0.95 * ok / len(body)
        return Detection(
            self.name,
            round(conf, 3),
            f"{ok}/{len(body)} head lines are JSON objects with nginx keys",
            params={},
        )

    def parse(self, frame: pl.DataFrame, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
        line = pl.col("line")
        frame = frame.with_columns(line.str.replace_all(_DASH_NUMBER, r'":null$1'))
        blank = frame.filter(line.str.strip_chars() == "")
        frame = frame.filter(line.str.strip_chars() != "")
        rejects = [reject_frame(blank, "blank line")] if blank.height else []
        keys = _keys(frame)
        if not keys:
            return pl.DataFrame(), pl.concat([*rejects, _clf.classify_rejects(frame, "nginx escape=json")])
        dtype = pl.Struct({k: pl.String for k in keys})
        decoded, bad = R.decode_objects(frame, dtype)
        if bad.height:
            rejects.append(bad)
        names = [f"f_{_canonical(k)}" for k in keys]
        # Two keys mapping to one canonical name: keep the first, the other stays under its own name.
        seen: set[str] = set()
        final = []
        for k, n in zip(keys, names, strict=True):
            final.append(n if n not in seen else f"f_{k}")
            seen.add(n)
        decoded = decoded.with_columns(pl.col("_j").struct.rename_fields(final)).unnest("_j").drop("line")
        fmt = CompiledFormat(
            "escape=json",
            "nginx",
            "(json keys)",
            tuple(Field(k, n[2:], True) for k, n in zip(keys, final, strict=True)),
            "",
            "",
        )
        events = to_events(decoded, fmt)
        events, bad = _clf.split_bad_time(events)
        if bad is not None:
            rejects.append(bad)
        rej = pl.concat(rejects) if rejects else reject_frame(frame.clear(), "")
        return events.drop("_idx", strict=False), rej


def _keys(frame: pl.DataFrame) -> list[str]:
    """Union of top-level keys over the whole batch, in first-seen order (vectorised)."""
    found = (
        frame.get_column("line")
        .str.extract_all(r'[{,]\s*"[^"\\]+"\s*:')
        .explode()
        .drop_nulls()
        .str.replace(r'^[{,]\s*"', "")
        .str.replace(r'"\s*:$', "")
        .unique(maintain_order=True)
    )
    return found.to_list()
