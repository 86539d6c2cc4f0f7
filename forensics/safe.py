"""Attacker-controlled text is data: neutralise it for CSV, terminals and HTML.

One place for each output channel, used by every writer.
"""

from __future__ import annotations

import html
import re

import polars as pl

# A cell a spreadsheet would run as a formula: starts with = + - @ tab or CR and is not a plain number.
_FORMULA_START = r"^[=+\-@\t\r]"
_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # \t and \n too


def neutralize_csv(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix formula-like string cells with ``'`` (OWASP CSV-injection rule); numbers are left alone.

    List columns are joined with ``;`` first, so every text cell passes the same check.
    """
    lists = [pl.col(n).list.join(";").alias(n) for n, d in frame.schema.items() if d == pl.List(pl.String)]
    if lists:
        frame = frame.with_columns(lists)
    exprs = [
        pl.when(pl.col(n).str.contains(_FORMULA_START) & ~pl.col(n).str.contains(_NUMBER))
        .then(pl.lit("'") + pl.col(n))
        .otherwise(pl.col(n))
        .alias(n)
        for n, d in frame.schema.items()
        if d == pl.String
    ]
    return frame.with_columns(exprs) if exprs else frame


def write_csv(frame: pl.DataFrame, path: str) -> None:
    """The only way the tool writes CSV: neutralised, UTF-8, header row."""
    neutralize_csv(frame).write_csv(path)


def terminal(text: object, limit: int = 200, lines: bool = False) -> str:
    """Make a value safe to print on a terminal: control characters and bidi overrides escaped, tabs and
    newlines too (one value, one line: a user agent cannot draw fake rows) unless ``lines``."""
    s = "" if text is None else str(text)
    s = (_CONTROL if lines else _CONTROL_LINE).sub(lambda m: f"\\x{ord(m.group(0)):02x}", s)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


def html_text(text: object) -> str:
    """Escape for HTML element content and attribute values."""
    return html.escape("" if text is None else str(text), quote=True)
