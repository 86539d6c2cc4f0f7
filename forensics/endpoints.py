"""Path → endpoint template at ingest (``/api/v1/customers/1234/profile`` → ``/api/v1/customers/{id}/profile``).

Rule-based and vectorised: each rule is a regex over whole path segments. The frequent rule (numeric
ids) runs over every row; the rare ones (UUIDs, e-mails, JWTs, long hex, long tokens) only over the
rows a cheap literal check selects, which keeps templating a small share of ingest time. The inventory
refines these templates across the whole case (segment positions with many distinct values).
"""

from __future__ import annotations

import polars as pl

# A segment is delimited by "/" on the left and "/" or the end on the right. The Rust regex engine has
# no look-ahead, so the right delimiter is captured and put back ($1); consecutive matching segments
# ("/1/2") need a second pass, applied only to the rows that still match.
_SEG_END = r"(/|$)"

#: (name, segment regex, placeholder), applied in this order.
RARE_RULES: list[tuple[str, str, str]] = [
    ("uuid", r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "{uuid}"),
    ("email", r"[^/@%]+(?:@|%40)[^/@]+\.[A-Za-z]{2,}", "{email}"),
    ("jwt", r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*", "{token}"),
    ("hex", r"[0-9a-fA-F]{16,}", "{hex}"),
    ("token", r"[A-Za-z0-9_=-]{32,}", "{token}"),
]
_RARE_PREFILTER = r"[0-9a-fA-F]{8}-|@|%40|eyJ|[0-9a-fA-F]{16}|[A-Za-z0-9_=-]{32}"
_SLOW_PREFILTER = r"/\d+/\d|" + _RARE_PREFILTER


def _apply_rule(expr: pl.Expr, segment: str, placeholder: str) -> pl.Expr:
    return expr.str.replace_all("/" + segment + _SEG_END, "/" + placeholder + "$1")


def _apply_rare(expr: pl.Expr) -> pl.Expr:
    for _name, segment, placeholder in RARE_RULES:
        expr = _apply_rule(expr, segment, placeholder)
        expr = _apply_rule(expr, segment, placeholder)
    return expr


def template_paths(paths: pl.Series) -> pl.Series:
    """Return the endpoint template of each path (null stays null)."""
    # Numeric ids in two capture-free passes (the regex engine's fast path): inner segments, then a
    # final one. One pre-filter over the original paths finds the few rows that need more: consecutive
    # inner ids ("/1/2/", where every other one is left by the first pass) and the rare rules.
    frame = pl.DataFrame({"p": paths})
    numeric = pl.col("p").str.replace_all(r"/\d+/", "/{id}/").str.replace(r"/\d+$", "/{id}")
    res = frame.select(
        numeric.alias("p"), pl.col("p").str.contains(_SLOW_PREFILTER).fill_null(False).alias("s")
    )
    out, slow = res.get_column("p"), res.get_column("s")
    if slow.any():
        idx = slow.arg_true()
        sub = pl.DataFrame({"p": out.gather(idx)}).select(_apply_rare(numeric)).to_series()
        out = out.scatter(idx, sub)
    return out.alias("endpoint")


def template_path(path: str | None) -> str | None:
    """Scalar form of :func:`template_paths`, for documents parsed record by record (HAR)."""
    if path is None:
        return None
    return template_paths(pl.Series([path], dtype=pl.String))[0]
