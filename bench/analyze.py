"""Benchmark: `forensics analyze` on a case of 20,000,000 events (and the 100,000,000 scaling figure).

The case is synthesised directly in the case layout (day-partitioned Parquet parts listed in a
manifest), because producing tens of millions of log lines and ingesting them would measure ingest,
not analysis. Its shape follows `forensics sample`: app customers in sessions reading their own
records, carrier-NAT addresses, a steady partner, scanners, and an attacker walking customer ids from
a rotating pool of addresses for weeks; every request is seen by two observers (the balancer and the
gateway behind it, with a clock skew), so de-duplication is part of the work.

    .venv/bin/python bench/analyze.py [--events 20000000] [--keep DIR]
    .venv/bin/python bench/analyze.py --events 100000000      # the scaling figure

Prints the wall time and peak memory (RSS of the analyze process) and checks the attacker is found.
Data is generated into a temporary folder (never the repository).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forensics.case import Case  # noqa: E402
from forensics.endpoints import template_paths  # noqa: E402
from forensics.schema import conform  # noqa: E402

START = datetime(2022, 11, 1, tzinfo=UTC)
DAYS = 70
ATTACK = (24, 65)  # days of the walk
CUSTOMERS = 2_000_000
BASE_ID = 10_000_000


def day_frame(rng: np.random.Generator, day: int, requests: int, attack_pool: list[str]) -> pl.DataFrame:
    """One day's requests (one observer), with the attacker's share when the day is in the walk."""
    t0 = int((START + timedelta(days=day)).timestamp() * 1e6)
    n_attack = requests // 50 if ATTACK[0] <= day <= ATTACK[1] else 0
    n_app = requests - n_attack
    # app customers: sessions of login, own record, plan, usage; 5% of customers behind 200 NAT addresses
    cust = rng.integers(0, CUSTOMERS, n_app // 4)
    nat = rng.random(len(cust)) < 0.05
    ip_num = np.where(nat, 1_000_000 + cust % 200, 2_000_000 + cust)
    kinds = np.array(
        [
            "/api/v1/auth/login",
            "/api/v1/customers/{}",
            "/api/v1/customers/{}/plan",
            "/api/v1/customers/{}/usage",
        ]
    )
    sess_t = t0 + rng.integers(0, 86_400_000_000, len(cust))
    rows_ip = np.repeat(ip_num, 4)
    rows_cust = np.repeat(cust + BASE_ID, 4)
    rows_kind = np.tile(np.arange(4), len(cust))
    rows_t = np.repeat(sess_t, 4) + rows_kind * 2_000_000
    # the attacker: ids in order, addresses taking turns
    start_id = BASE_ID + (day - ATTACK[0]) * n_attack
    att_ids = start_id + np.arange(n_attack)
    att_t = t0 + np.sort(rng.integers(0, 86_400_000_000, n_attack))
    att_ip = np.arange(n_attack) % max(1, len(attack_pool))
    frame = pl.DataFrame(
        {
            "ts_us": np.concatenate([rows_t, att_t]),
            "kind": np.concatenate([rows_kind, np.full(n_attack, 1)]),
            "obj": np.concatenate([rows_cust, att_ids]),
            "ip_num": np.concatenate([rows_ip, np.full(n_attack, -1)]),
            "att_ip": np.concatenate([np.full(len(rows_t), -1), att_ip]),
        }
    )
    kind_path = pl.Series(kinds.tolist())
    pool = pl.Series(attack_pool or ["-"])
    app_ip = pl.format(
        "{}.{}.{}.{}",
        100 + pl.col("ip_num") // 16_777_216 % 100,
        pl.col("ip_num") // 65536 % 256,
        pl.col("ip_num") // 256 % 256,
        pl.col("ip_num") % 256,
    )
    frame = frame.with_columns(
        pl.from_epoch("ts_us", time_unit="us").dt.replace_time_zone("UTC").alias("ts"),
        pl.when(pl.col("att_ip") >= 0)
        .then(pl.lit(pool).gather(pl.col("att_ip").clip(0)))
        .otherwise(app_ip)
        .alias("client_ip"),
        pl.lit(kind_path)
        .gather(pl.col("kind"))
        .str.replace("{}", pl.col("obj").cast(pl.String), literal=True)
        .alias("path"),
    )
    frame = frame.with_columns(
        pl.when(pl.col("kind") == 0).then(pl.lit("POST")).otherwise(pl.lit("GET")).alias("method"),
        pl.when(pl.col("obj") % 9 == 0).then(404).otherwise(200).cast(pl.Int16).alias("status"),
        (800 + pl.col("obj") % 1200).cast(pl.Int64).alias("bytes_out"),
        pl.when(pl.col("att_ip") >= 0)
        .then(pl.lit("python-requests/2.28.1"))
        .otherwise(pl.lit("MagentelApp/8.4.0 (Android 13) okhttp/4.10.0"))
        .alias("user_agent"),
    )
    return frame.drop("ts_us", "kind", "obj", "ip_num", "att_ip")


def build_case(case_dir: Path, events: int, seed: int = 5) -> None:
    """Write the case: per day, the balancer's copy and the gateway's copy of every request."""
    rng = np.random.default_rng(seed)
    case = Case.create(case_dir)
    manifest = case.load_manifest()
    pool = [f"198.18.{i // 200}.{i % 200 + 1}" for i in range(50)]
    per_day = events // 2 // DAYS
    for day in range(DAYS):
        base = day_frame(rng, day, per_day, pool)
        base = base.with_columns(template_paths(base.get_column("path")).alias("endpoint"))
        for observer, fmt, shift_ms in (("app/api-prod/1", "alb", 0), ("gw1/access.log", "nginx", 480)):
            f = base.with_columns(
                (pl.col("ts") + pl.duration(milliseconds=shift_ms)).dt.truncate(
                    "1s" if fmt == "nginx" else "1us"
                ),
                pl.lit(fmt).alias("source_format"),
                pl.lit(observer).alias("observer"),
                pl.lit(f"bench/{fmt}-{day:03d}.log").alias("source_file"),
                pl.int_range(1, base.height + 1, dtype=pl.UInt64).alias("source_line"),
            )
            f = conform(f)
            rel = f"events/date={(START + timedelta(days=day)):%Y-%m-%d}/part-bench-{fmt}-{day:03d}.parquet"
            (case.path / rel).parent.mkdir(parents=True, exist_ok=True)
            f.write_parquet(case.path / rel, compression="zstd")
            manifest["parts"].append(
                {"path": rel, "kind": "events", "rows": f.height, "files": [f"bench/{fmt}-{day:03d}.log"]}
            )
            manifest["inputs"].append(
                {
                    "path": f"bench/{fmt}-{day:03d}.log",
                    "status": "ingested",
                    "format": fmt,
                    "role": "traffic",
                    "rows": f.height,
                    "lines_read": f.height,
                    "rejected": 0,
                    "sha256": "",
                    "content_sha256": f"bench-{fmt}-{day}",
                    "bytes": 0,
                }
            )
    case.save_manifest(manifest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--keep", help="keep the case in this folder")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="forensics-bench-analyze-"))
    case_dir = tmp / "case"
    try:
        if not (case_dir / "manifest.json").exists():
            t = time.perf_counter()
            build_case(case_dir, args.events)
            print(f"built a case of {args.events:,} events in {time.perf_counter() - t:.1f}s -> {case_dir}")
        cmd = [sys.executable, "-m", "forensics", "analyze", "--case", str(case_dir)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        if proc.returncode:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(proc.returncode)
        doc = json.loads((case_dir / "findings.json").read_text())
        windows = [f for f in doc["findings"] if f["kind"] == "exfiltration_window"]
        print(
            f"forensics analyze  {args.events:,} events  {dt:7.1f}s  peak {rss / 2**30:5.2f} GiB  "
            f"({args.events / dt:,.0f} events/s)"
        )
        for w in windows:
            print(
                f"  window {w['start']} → {w['end']}: {len(w['actor']['client_ips'])} addresses, "
                f"{w['distinct_objects']:,} records"
            )
        target = "met" if dt < 60 and rss < 4 * 2**30 else "NOT met"
        print(f"target (20M events): < 60 s and < 4 GiB: {target}" if args.events == 20_000_000 else "")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
