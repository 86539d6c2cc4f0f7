"""Benchmark: end-to-end `forensics ingest` of an ALB S3 tree (1,000,000 requests, >= 10,000 gzip files).

The tree has the real S3 layout and file names
(``AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/<account>_elasticloadbalancing_<region>_app.<name>.<id>_<end YYYYMMDDTHHMMZ>_<node-ip>_<random>.log.gz``,
one file per balancer node per 5 minutes), current 33-field lines with the variety real ones have
(WAF blocks with -1 timings, 404s, h2, redirects, a URI with a space). Prints lines/s, MB/s (of the
decompressed logs), peak memory of the ingest process tree, and the ratio to polars' raw CSV-reader
parse of the same requests as one uncompressed 1M-line file (the speed limit: split fields only), and a
floor: reading, gunzipping and hashing every file, splitting the fields and writing them to Parquet in
two spawned workers, run as a command of its own (the work no ingest of the tree can skip, with no
normalisation at all). Each command runs --runs times; the fastest counts.

    .venv/bin/python bench/ingest_alb.py [--lines 1000000] [--files 10400] [--workers N] [--runs 2] [--keep DIR]

Data is generated into a temporary folder (never the repository).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
from isal import igzip

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import best_of  # noqa: E402

FORENSICS = [sys.executable, "-m", "forensics"]
ACCOUNT, REGION, NAME, LB_ID = "123456789012", "us-east-1", "api-prod", "50dc6c495c0c9188"
NODES = ("10.0.1.17", "10.0.2.33", "10.0.3.41", "10.0.4.9")


def generate_lines(n: int, days: float, seed: int = 11) -> pl.DataFrame:
    """n ALB lines (column ``line``) in time order, with the node that logged each (``node``)."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2022-11-25T00:00:00", "us")
    us = np.sort(rng.integers(0, int(days * 86400e6), n))
    ts = pl.Series(start + us.astype("timedelta64[us]"))
    clients = pl.Series([f"{a}.{b}.{c}.{d}" for a, b, c, d in rng.integers(1, 250, (30000, 4))])
    kind = rng.integers(0, 100, n)
    ids = pl.Series(rng.integers(10_000_000, 60_000_000, n)).cast(pl.String)
    df = pl.DataFrame(
        {
            "t": ts,
            "node": pl.Series(NODES)[rng.integers(0, len(NODES), n)],
            "client": clients[rng.integers(0, len(clients), n)],
            "cport": pl.Series(rng.integers(1024, 65535, n)).cast(pl.String),
            "k": kind,
            "id": ids,
            "tpt": pl.Series(rng.integers(2, 900, n)).cast(pl.String).str.zfill(3),
            "rx": pl.Series(rng.integers(200, 900, n)).cast(pl.String),
            "tx": pl.Series(rng.integers(300, 9000, n)).cast(pl.String),
            "trace": pl.Series(rng.integers(0, 2**62, n)).map_elements(lambda v: f"{v:024x}", pl.String),
            "tid": pl.Series(rng.integers(0, 2**62, n)).map_elements(lambda v: f"{v:016x}", pl.String),
            "target": pl.Series([f"10.0.{i}.{j}:8080" for i, j in rng.integers(1, 60, (12, 2))])[
                rng.integers(0, 12, n)
            ],
            "ua": pl.Series(
                [
                    "okhttp/4.9.3",
                    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/108.0.0.0 Safari/537.36",
                    "python-requests/2.28.1",
                ]
            )[rng.integers(0, 4, n)],
        }
    )
    k = pl.col("k")
    time_s = pl.col("t").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
    waf = k >= 97  # blocked by WAF: no target, -1 timings
    status = pl.when(waf).then(pl.lit("403")).when(k < 85).then(pl.lit("200")).otherwise(pl.lit("404"))
    path = (
        pl.when(k < 60)
        .then(pl.lit("/api/v1/customers/") + pl.col("id"))
        .when(k < 80)
        .then(pl.lit("/api/v1/customers/") + pl.col("id") + pl.lit("/usage?month=2022-11&fields=plan,email"))
        .when(k < 90)
        .then(pl.lit("/api/v1/catalog/plans?page=") + pl.col("id").str.slice(0, 2))
        .when(k == 96)
        .then(pl.lit("/search?q=a b"))  # a URI with a space (SpaceInUri)
        .otherwise(pl.lit("/static/app.") + pl.col("id").str.slice(0, 6) + pl.lit(".js"))
    )
    proto = pl.when(k % 3 == 0).then(pl.lit("h2")).otherwise(pl.lit("https"))
    http = pl.when(k % 3 == 0).then(pl.lit("HTTP/2.0")).otherwise(pl.lit("HTTP/1.1"))
    target = pl.when(waf).then(pl.lit("-")).otherwise(pl.col("target"))
    timings = (
        pl.when(waf).then(pl.lit("-1 -1 -1")).otherwise(pl.lit("0.001 0.") + pl.col("tpt") + pl.lit(" 0.000"))
    )
    tstatus = pl.when(waf).then(pl.lit("-")).otherwise(status)
    actions = pl.when(waf).then(pl.lit("waf")).otherwise(pl.lit("waf,forward"))
    classification = pl.when(k == 96).then(pl.lit('"Acceptable" "SpaceInUri"')).otherwise(pl.lit('"-" "-"'))
    line = pl.concat_str(
        [
            proto,
            pl.lit(" "),
            time_s,
            pl.lit(f" app/{NAME}/{LB_ID} "),
            pl.col("client"),
            pl.lit(":"),
            pl.col("cport"),
            pl.lit(" "),
            target,
            pl.lit(" "),
            timings,
            pl.lit(" "),
            status,
            pl.lit(" "),
            tstatus,
            pl.lit(" "),
            pl.col("rx"),
            pl.lit(" "),
            pl.col("tx"),
            pl.lit(' "GET https://api.example.com:443'),
            path,
            pl.lit(" "),
            http,
            pl.lit('" "'),
            pl.col("ua"),
            pl.lit(
                f'" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:'
                'targetgroup/api/73e2d6bc24d8a067 "Root=1-'
            ),
            pl.col("trace"),
            pl.lit(
                f'" "api.example.com" "arn:aws:acm:{REGION}:{ACCOUNT}:certificate/'
                '12345678-1234-1234-1234-123456789012" 1 '
            ),
            time_s,
            pl.lit(' "'),
            actions,
            pl.lit('" "-" "-" "'),
            target,
            pl.lit('" "'),
            tstatus,
            pl.lit('" '),
            classification,
            pl.lit(" TID_"),
            pl.col("tid"),
            pl.lit(' "-" "-" "-"'),
        ]
    )
    # The file a line lands in: its node and the end of its 5-minute interval.
    end = (pl.col("t").dt.truncate("5m") + pl.duration(minutes=5)).alias("end")
    return df.select(line.alias("line"), "node", end)


def write_tree(lines: pl.DataFrame, root: Path, seed: int = 5) -> tuple[int, int]:
    """Write the S3 tree; returns (files, decompressed bytes)."""
    rng = np.random.default_rng(seed)
    files = 0
    nbytes = 0
    for (node, end), part in lines.group_by(["node", "end"], maintain_order=True):
        day = root / "AWSLogs" / ACCOUNT / "elasticloadbalancing" / REGION / end.strftime("%Y/%m/%d")
        day.mkdir(parents=True, exist_ok=True)
        rand = "".join(chr(c) for c in rng.integers(97, 123, 8))
        name = (
            f"{ACCOUNT}_elasticloadbalancing_{REGION}_app.{NAME}.{LB_ID}_"
            f"{end.strftime('%Y%m%dT%H%MZ')}_{node}_{rand}.log.gz"
        )
        data = ("\n".join(part.get_column("line").to_list()) + "\n").encode()
        (day / name).write_bytes(gzip.compress(data, compresslevel=6, mtime=0))
        files += 1
        nbytes += len(data)
    return files, nbytes


def polars_raw(path: Path | bytes) -> float:
    """The speed limit: polars' CSV reader splitting the fields of one uncompressed 1M-line file."""
    t = time.perf_counter()
    out = _split_fields(path)
    assert out.height > 0
    return time.perf_counter() - t


def _split_fields(source: Path | bytes) -> pl.DataFrame:
    return pl.read_csv(
        source if isinstance(source, Path) else io.BytesIO(source),
        has_header=False,
        separator=" ",
        quote_char='"',
        schema={f"c{i}": pl.String for i in range(33)},
        missing_columns="insert",
        truncate_ragged_lines=True,
    )


def _floor_part(paths: list[Path], out: Path) -> None:
    contents = []
    for path in paths:
        stored = path.read_bytes()
        hashlib.sha256(stored).digest()
        content = igzip.decompress(stored)
        hashlib.sha256(content).digest()
        contents.append(content)
    _split_fields(b"".join(contents)).write_parquet(out, compression="zstd", compression_level=1)


def floor(tree: Path, out: Path, workers: int = 2) -> None:
    """The work no ingest of the tree can skip, with no normalisation: read, gunzip and hash every file
    (stored and decompressed sha256), split the fields, write them to Parquet; in ``workers`` spawned
    processes. Run as a command of its own (``--floor-of``), so that every interpreter start and import is
    paid, as forensics pays it."""
    paths = sorted(tree.rglob("*.gz"))
    out.mkdir(exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    os.environ["POLARS_MAX_THREADS"] = "1"  # one polars thread per worker, as forensics runs them
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        shares = [paths[i::workers] for i in range(workers)]
        list(pool.map(_floor_part, shares, [out / f"part-{i}.parquet" for i in range(workers)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=10_400, help="about this many files (4 nodes x intervals)")
    ap.add_argument("--workers", type=int, default=None, help="passed to forensics ingest --workers")
    ap.add_argument("--keep", help="keep the generated data in this folder")
    ap.add_argument("--runs", type=int, default=2, help="runs of each command; the fastest is reported")
    ap.add_argument("--floor-of", help=argparse.SUPPRESS)  # internal: run the floor on this tree, exit
    args = ap.parse_args()
    if args.floor_of:
        floor(Path(args.floor_of), Path(args.keep) / "floor")
        return
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="forensics-bench-alb-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        days = args.files / len(NODES) * 300 / 86400
        lines = generate_lines(args.lines, days)
        tree = tmp / "s3"
        files, nbytes = write_tree(lines, tree)
        flat = tmp / "one_file.log"
        with open(flat, "wb") as fh:
            lines.select("line").write_csv(fh, include_header=False, quote_style="never")
        mb = nbytes / 1e6
        gz_mb = sum(p.stat().st_size for p in tree.rglob("*.gz")) / 1e6
        print(
            f"generated {args.lines:,} requests in {files:,} gzip files "
            f"({mb:.0f} MB, {gz_mb:.0f} MB compressed) in {time.perf_counter() - t:.1f}s -> {tmp}"
        )
        del lines

        raw = min(polars_raw(flat) for _ in range(max(2, args.runs)))
        floor_cmd = [sys.executable, __file__, "--floor-of", str(tree), "--keep", str(tmp)]
        least, _ = best_of(floor_cmd, args.runs)
        case = tmp / "case"
        cmd = [*FORENSICS, "ingest", str(tree), "--case", str(case)]
        if args.workers is not None:
            cmd += ["--workers", str(args.workers)]
        ing, rss = best_of(cmd, args.runs, case)
        manifest = json.loads((case / "manifest.json").read_text())
        rows = sum(e["rows"] for e in manifest["inputs"])
        formats = {e["format"] for e in manifest["inputs"]}
        assert rows == args.lines and formats == {"alb"}, (rows, formats)

        def rate(seconds: float) -> str:
            return f"{args.lines / seconds:>12,.0f} lines/s {mb / seconds:7.1f} MB/s"

        print(f"polars raw CSV split (1 file)  {raw:7.2f}s {rate(raw)}")
        print(f"  floor: gunzip+sha256+split+Parquet {least:7.2f}s {rate(least)}  (no normalisation)")
        print(f"forensics ingest ({files} files) {ing:7.2f}s {rate(ing)}  peak {rss / 2**20:6.0f} MiB")
        print(f"ratio ingest / polars raw      {ing / raw:7.2f}x")
        print(
            f"target: >= 350,000 lines/s and peak < 1024 MiB: {'met' if args.lines / ing >= 350_000 and rss < 2**30 else 'NOT met'}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
