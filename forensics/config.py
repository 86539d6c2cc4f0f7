"""Every threshold and allowlist of the analysis, with its default, in one place.

A TOML file (``forensics analyze --config FILE``) overrides any subset; ``forensics config --defaults``
prints the defaults. The effective configuration and its SHA-256 go into findings.json, so a finding can
always be traced to the exact thresholds that produced it. Allowlists apply retroactively: adding a
client to them and re-running ``analyze`` moves its findings to ``cleared``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from .errors import ForensicsError

DEFAULTS: dict[str, Any] = {
    "objects": {
        # Query parameters whose values name an object (``?customerId=123``): a regex on the name.
        "query_id_params": r"(?i)^(?:[a-z]*_?id|id_?[a-z]*|account(?:_?(?:no|number|id))?|customer|msisdn|"
        r"subscriber|user|phone|number)$",
    },
    "enumeration": {
        # A client walks an endpoint's objects when it asks for many distinct ids, hardly ever the same
        # one twice, in a pattern (sequential strides, dense coverage of a range, or many misses).
        "min_distinct_objects": 50,
        "max_repeat_share": 0.2,  # share of its ids a client asked for more than once
        "sequential_stride": 16,  # consecutive requests whose ids differ by at most this are "in order"
        "min_sequential_share": 0.5,
        "min_coverage": 0.2,  # distinct ids / (max - min + 1) over numeric ids
        "min_miss_share": 0.5,  # share of 404s that marks guessing
        "min_endpoint_share": 0.6,  # share of the client's requests on this endpoint ("narrow mix")
        "critical_records": 1000,  # records returned from a personal-data endpoint for severity critical
    },
    "scanning": {
        # Bursts of errors over many distinct paths, or short id probes that are mostly refused.
        "window_minutes": 60,
        "min_distinct_paths": 10,
        "min_error_share": 0.8,
        "probe_min_ids": 10,
        "probe_max_requests": 2000,
        "probe_min_refused_share": 0.8,
    },
    "volume": {
        # Requests and bytes per client and day against the client's own history and its peers.
        "min_history_days": 3,
        "mad_k": 8.0,  # robust z: (x - median) / (1.4826 MAD)
        "peer_quantile": 0.999,  # a client-day above this quantile of all client-days is unusual…
        "min_requests": 500,  # …and never below this many requests
        "heavy_clients": 10,  # the heaviest clients examined and, when not flagged, listed in cleared
    },
    "actors": {
        # Linking the addresses of one operation on a record endpoint (see forensics.passes.actors).
        "max_subresource_share": 0.05,  # share of read records whose sub-resources (plan, usage) it also read
        "max_reread_share": 0.05,  # share of records read successfully more than once
        "band_gap": 256,  # ids closer than this on one day are one walk band
        "agent_gap_hours": 24.0,  # same user agent, active within this many hours: one stream
        # A user agent this many ordinary readers of the endpoint also use (the app's own) links no
        # single-request address by itself: its one read must fall in the actor's band of that day.
        "common_agent_clients": 10,
        "band_slack_hours": 2.0,  # a single read joins a day's band only this close to the walk's hours
    },
    "exfiltration": {
        # The sustained window in which an actor took the data (see forensics.passes.exfiltration).
        "max_pause_days": 7,  # quiet days tolerated inside one window
        "min_records": 50,  # records returned for a window to be reported
        "critical_records": 1000,
    },
    "exposure": {
        "min_requests": 1,  # log traffic to a personal-data endpoint needed to report it
    },
    "allowlist": {
        # Known-good clients: their findings are reported as cleared, with the reason "allowlisted".
        "clients": [],
        "cidrs": [],
        "principals": [],
        "user_agents": [],  # regexes
    },
    "report": {
        "sample_refs": 5,  # source_file:source_line references kept per finding
    },
}


def defaults() -> dict[str, Any]:
    return copy.deepcopy(DEFAULTS)


def defaults_toml() -> str:
    header = (
        "# forensics analysis configuration: the defaults. Copy, change what you need, and pass it with\n"
        "# `forensics analyze --case DIR --config FILE.toml`. Unknown keys are an error.\n\n"
    )
    return header + tomli_w.dumps(DEFAULTS)


def _merge(base: dict[str, Any], override: dict[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in base:
            raise ForensicsError(
                f"unknown configuration key {where}{key}",
                hint="`forensics config --defaults` lists every key",
            )
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ForensicsError(f"configuration {where}{key} must be a table")
            out[key] = _merge(base[key], value, f"{where}{key}.")
        else:
            expected = type(base[key])
            if expected is float and isinstance(value, int):
                value = float(value)
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ForensicsError(
                    f"configuration {where}{key} must be {expected.__name__}, not {type(value).__name__}"
                )
            out[key] = value
    return out


def load(path: str | Path | None = None) -> dict[str, Any]:
    """The effective configuration: defaults overridden by the TOML file, validated."""
    if path is None:
        return defaults()
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ForensicsError(f"no such config file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ForensicsError(f"{path} is not valid TOML: {exc}") from None
    return _merge(DEFAULTS, data, "")


def digest(config: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the configuration."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
