"""Benchmark: end-to-end `forensics ingest` of a 2,000,000-line nginx `main` log.

Compared with polars' raw two-stage regex parse of the same file (the speed limit: one line regex without
alternation, a second small regex on the request field, cached datetime parsing, integer casts) and with
GoAccess (`--log-format=COMBINED`), the reference log analyzer. Also times a custom --log-format with 12
variables against the preset. Prints lines/s, MB/s, peak memory and the ratios, and a floor: the raw
parse plus writing its columns to Parquet and hashing the file, run as a command of its own (the work
no ingest can skip, with no normalisation at all). Each command runs --runs times; the fastest counts.

    .venv/bin/python bench/ingest_nginx.py [--lines 2000000] [--runs 2] [--no-goaccess] [--keep DIR]

Data is generated into a temporary folder (never the repository).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import best_of, measured  # noqa: E402

HERE = Path(__file__).resolve().parent
FORENSICS = [sys.executable, "-m", "forensics"]

# The 12-variable custom format used for the custom-vs-preset comparison.
CUSTOM_FORMAT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" '
    '"$http_user_agent" "$http_x_forwarded_for" $request_time $upstream_response_time $host'
)


def generate(path: Path, n: int, custom: bool = False, seed: int = 7) -> None:
    """A realistic gateway log behind a load balancer, written with polars string expressions."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2022-11-20T00:00:00")
    offsets = np.sort(rng.integers(0, 30 * 86400, n))
    ts = pl.Series((start + offsets.astype("timedelta64[s]")).astype("datetime64[ms]")).dt.strftime(
        "%d/%b/%Y:%H:%M:%S -0800"
    )
    lb = pl.Series([f"10.0.{a}.{b}" for a, b in rng.integers(1, 250, (4, 2))])[rng.integers(0, 4, n)]
    clients = pl.Series([f"{a}.{b}.{c}.{d}" for a, b, c, d in rng.integers(1, 250, (20000, 4))])
    xff = clients[rng.integers(0, len(clients), n)]
    ids = pl.Series(rng.integers(10_000_000, 60_000_000, n)).cast(pl.String)
    kinds = rng.integers(0, 10, n)
    paths = pl.DataFrame({"k": kinds, "id": ids}).select(
        pl.when(pl.col("k") < 5)
        .then(pl.lit("/api/v1/customers/") + pl.col("id"))
        .when(pl.col("k") < 7)
        .then(pl.lit("/api/v1/customers/") + pl.col("id") + pl.lit("/usage?month=2022-11"))
        .when(pl.col("k") < 8)
        .then(pl.lit("/api/v1/catalog/plans?api_key=partnerkey") + pl.col("id").str.slice(0, 2))
        .when(pl.col("k") < 9)
        .then(pl.lit("/api/v1/login"))
        .otherwise(pl.lit("/static/app.") + pl.col("id").str.slice(0, 6) + pl.lit(".js"))
        .alias("p")
    )["p"]
    uas = pl.Series(
        [
            "Mozilla/5.0 (iPhone; CPU iPhone OS 16_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
            "okhttp/4.9.3",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/108.0.0.0 Safari/537.36",
            "python-requests/2.28.1",
        ]
    )[rng.integers(0, 4, n)]
    status = pl.Series(rng.choice([200, 200, 200, 200, 304, 404, 401], n)).cast(pl.String)
    size = pl.Series(rng.integers(100, 4000, n)).cast(pl.String)
    frame = pl.DataFrame({"lb": lb, "ts": ts, "p": paths, "st": status, "sz": size, "ua": uas, "xff": xff})
    parts = [
        pl.col("lb"),
        pl.lit(" - - ["),
        pl.col("ts"),
        pl.lit('] "GET '),
        pl.col("p"),
        pl.lit(' HTTP/1.1" '),
        pl.col("st"),
        pl.lit(" "),
        pl.col("sz"),
        pl.lit(' "-" "'),
        pl.col("ua"),
        pl.lit('" "'),
        pl.col("xff"),
        pl.lit('"'),
    ]
    if custom:
        parts += [pl.lit(" 0.012 0.010, 0.002 : 0.001 api.example.com")]
    lines = frame.select(pl.concat_str(parts).alias("line"))
    with open(path, "wb") as fh:
        lines.write_csv(fh, include_header=False, quote_style="never")


def polars_raw(path: Path, write_to: Path | None = None) -> float:
    """The speed limit: polars' raw two-stage parse of the file (no provenance, no normalisation).

    With ``write_to``, the parsed columns are also written to Parquet and the file hashed: the work no
    ingest can skip (the event store and the manifest's sha256), with no normalisation at all. Run as a
    command of its own (``--floor-of``), it is a floor for the end-to-end figure."""
    t = time.perf_counter()
    lines = pl.read_csv(
        path,
        has_header=False,
        separator="\x01",
        quote_char=None,
        new_columns=["line"],
        schema={"line": pl.String},
    )
    line_re = r'^(\S+) \S+ (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\S+) "([^"]*)" "([^"]*)" "([^"]*)"$'
    req_re = r"^(\S+) (.*?) (HTTP/\S+)$"
    out = (
        lines.lazy()
        .select(pl.col("line").str.extract_groups(line_re).alias("g"))
        .unnest("g")
        .with_columns(
            pl.col("3").str.to_datetime("%d/%b/%Y:%H:%M:%S %z", cache=True),
            pl.col("5").cast(pl.Int16),
            pl.col("6").cast(pl.Int64, strict=False),
            pl.col("4").str.extract_groups(req_re).alias("rq"),
        )
        .collect()
    )
    assert out.height > 0
    if write_to is not None:
        out.with_columns(pl.col("rq").struct.rename_fields(["m", "t", "p"])).unnest("rq").write_parquet(
            write_to, compression="zstd", compression_level=1
        )
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(1 << 24):
                digest.update(block)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--keep", help="keep the generated data in this folder")
    ap.add_argument("--no-goaccess", action="store_true")
    ap.add_argument("--runs", type=int, default=2, help="runs of each command; the fastest is reported")
    ap.add_argument("--floor-of", help=argparse.SUPPRESS)  # internal: run the floor on this log, exit
    args = ap.parse_args()
    if args.floor_of:
        polars_raw(Path(args.floor_of), Path(args.keep) / "floor.parquet")
        return
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="forensics-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        log = tmp / "access.log"
        custom_log = tmp / "custom" / "access.log"
        custom_log.parent.mkdir(exist_ok=True)
        t = time.perf_counter()
        generate(log, args.lines)
        generate(custom_log, args.lines, custom=True)
        mb = log.stat().st_size / 1e6
        print(f"generated {args.lines:,} lines, {mb:.0f} MB in {time.perf_counter() - t:.1f}s -> {tmp}")
        os.sync()
        _ = log.read_bytes()  # warm the page cache for every contender alike

        raw = min(polars_raw(log) for _ in range(max(2, args.runs)))
        # The floor as a command of its own, so that it pays an interpreter start and imports as forensics does.
        floor_cmd = [sys.executable, __file__, "--floor-of", str(log), "--keep", str(tmp)]
        floor, _ = best_of(floor_cmd, args.runs)
        case = tmp / "case"
        ing, ing_rss = best_of([*FORENSICS, "ingest", str(log), "--case", str(case)], args.runs, case)
        case2 = tmp / "case_custom"
        cus, cus_rss = best_of(
            [*FORENSICS, "ingest", str(custom_log), "--case", str(case2), "--log-format", CUSTOM_FORMAT],
            args.runs,
            case2,
        )
        manifest = json.loads((case / "manifest.json").read_text())
        rows = sum(e["rows"] for e in manifest["inputs"])
        assert rows == args.lines, f"ingested {rows} of {args.lines}"

        def rate(seconds: float) -> str:
            return f"{args.lines / seconds:>12,.0f} lines/s {mb / seconds:7.1f} MB/s"

        print(f"polars raw two-stage parse   {raw:7.2f}s {rate(raw)}")
        print(f"floor: + Parquet, sha256     {floor:7.2f}s {rate(floor)}  (own process, no normalisation)")
        print(f"forensics ingest (main)      {ing:7.2f}s {rate(ing)}  peak {ing_rss / 2**20:6.0f} MiB")
        print(f"forensics ingest (12 vars)   {cus:7.2f}s {rate(cus)}  peak {cus_rss / 2**20:6.0f} MiB")
        print(f"ratio ingest / polars raw    {ing / raw:7.2f}x   (target <= 1.3x)")
        print(f"ratio floor / polars raw     {floor / raw:7.2f}x")
        print(f"ratio custom / preset        {cus / ing:7.2f}x   (target <= 1.5x)")
        if not args.no_goaccess and shutil.which("goaccess"):
            ga, ga_rss = measured(
                ["goaccess", str(log), "--log-format=COMBINED", "-o", str(tmp / "ga.json"), "--no-progress"]
            )
            print(f"goaccess (COMBINED)          {ga:7.2f}s {rate(ga)}  peak {ga_rss / 2**20:6.0f} MiB")
            print(f"speed-up over GoAccess       {ga / ing:7.1f}x   (target >= 15x)")
        elif args.no_goaccess:
            print("goaccess: skipped (--no-goaccess)")
        else:
            print("goaccess not installed (apt-get install goaccess): skipped")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
