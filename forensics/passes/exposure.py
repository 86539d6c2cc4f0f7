"""Exposure: endpoints the inventory knows return personal data, with the log traffic to them.

The reference captures (HAR) show what an endpoint returns and whether the caller was authenticated;
the inventory carries that over to the endpoint template. Two kinds:

* ``sensitive_exposure``: the endpoint returns personal data (names, e-mails, phones, addresses, …);
* ``unauthenticated_access``: it does so to a caller without any credential.

Each names the PII kinds and the traffic the logs show to the same endpoint (requests, clients, status
mix), which is what turns "a bug in one response" into "data that left".
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ..findings import Finding
from . import Context, censored, event_query, sample_refs


def run(prepared: pl.LazyFrame, ctx: Context) -> list[Finding]:
    cfg = ctx.config["exposure"]
    refs_n = ctx.config["report"]["sample_refs"]
    findings = []
    for (method, endpoint), facts in sorted((ctx.pii or {}).items()):
        if not facts.get("pii_kinds"):
            continue
        traffic = (
            prepared.filter((pl.col("method") == method) & (pl.col("endpoint") == endpoint))
            .select("ts", "source_file", "source_line", "client", "status", "bytes_out")
            .sort("ts", "source_file", "source_line")
            .collect()
        )
        if traffic.height < cfg["min_requests"] and not facts.get("unauthenticated"):
            continue
        status_mix = _status_mix(traffic)
        clients = traffic.get_column("client").drop_nulls().n_unique()
        start = traffic.get_column("ts").min() if traffic.height else None
        end = traffic.get_column("ts").max() if traffic.height else None
        kinds = sorted(facts["pii_kinds"])
        unauth = bool(facts.get("unauthenticated"))
        evidence: dict[str, Any] = {
            "pii_kinds": kinds,
            "auth_kinds": sorted(facts.get("auth_kinds", [])),
            "reference_sources": sorted(facts.get("sources", [])),
            "log_requests": traffic.height,
            "log_clients": clients,
            "status_mix": status_mix,
            "criteria": {"min_requests": cfg["min_requests"]},
            "sample_refs": sample_refs(traffic, refs_n),
        }
        what = ", ".join(kinds)
        base = dict(
            actor=None,
            method=method,
            host=facts.get("host"),
            endpoint=endpoint,
            start=start,
            end=end,
            requests=traffic.height,
            bytes=int(traffic.get_column("bytes_out").sum() or 0) if traffic.height else 0,
            evidence=evidence,
            query=event_query(None, method, [endpoint]),
            censored=censored(start, end, ctx) if start else {"start": False, "end": False},
            pii_kinds=kinds,
        )
        findings.append(
            Finding(
                kind="sensitive_exposure",
                severity="high" if traffic.height else "medium",
                score=round(min(1.0, 0.5 + 0.1 * len(kinds)), 4),
                summary=(
                    f"{method} {endpoint} returns personal data ({what}); the logs show {traffic.height:,} "
                    f"requests to it from {clients:,} clients."
                ),
                **base,  # type: ignore[arg-type]
            )
        )
        if unauth:
            findings.append(
                Finding(
                    kind="unauthenticated_access",
                    severity="critical",
                    score=round(min(1.0, 0.7 + 0.05 * len(kinds)), 4),
                    summary=(
                        f"{method} {endpoint} returned personal data ({what}) to a caller without any "
                        f"credential; the logs show {traffic.height:,} requests to it from {clients:,} clients."
                    ),
                    **base,  # type: ignore[arg-type]
                )
            )
    return findings


def _status_mix(traffic: pl.DataFrame) -> dict[str, int]:
    if traffic.height == 0:
        return {}
    classes = traffic.select(
        (pl.col("status") // 100).cast(pl.String).fill_null("?") + pl.lit("xx")
    ).to_series()
    counts = classes.value_counts().sort(classes.name)
    return {k: int(v) for k, v in counts.iter_rows()}
