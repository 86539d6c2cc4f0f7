"""Shared parsing for combined-log-like formats (nginx, Apache, and any log_format/LogFormat string).

Lines go through stages, each on the lines the previous ones did not match:

1. each candidate format's *fast* regex (no alternation; the common case, almost every line);
2. its *escape-tolerant* regex (Apache's ``\\"`` inside quoted fields);
3. for the stock CLF family, one *lenient* CLF regex that accepts what real servers write around the
   stock layout: a vhost or ``vhost:port`` prefix, a quoted X-Forwarded-For prefix, an address list in
   place of ``$remote_addr``, a missing ident column, a missing referer/user agent;
4. whatever is left is a reject, with a reason: blank, an error-log line, truncated, or not the format.

A line whose request is odd (binary, ``""``, spaces) still matches: it is an event with its raw
``request`` kept. A line whose timestamp does not parse is a reject.
"""

from __future__ import annotations

import re

import polars as pl

from .base import Detection, FileContext, empty_reject_rows, reject_frame, sniff_lines
from .logformat import CompiledFormat, Field, to_events

# The lenient stage: prefix before "[time]" is split afterwards (vhost, address or list, ident, user).
_LENIENT_RE = (
    r'^(.*?) ?\[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\S+) (\S+)'
    r'(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?(?: "((?:[^"\\]|\\.)*)")?'
    # further complete fields are accepted (and ignored); an unterminated quote is not
    r'(?: (?:"(?:[^"\\]|\\.)*"|[^"\s]+))*\s*$'
)
_LENIENT_FIELDS = (
    "prefix",
    "time_local",
    "request",
    "status",
    "body_bytes_sent",
    "http_referer",
    "http_user_agent",
    "http_x_forwarded_for",
)
LENIENT = CompiledFormat(
    name="clf_lenient",
    dialect="nginx",
    source="(lenient CLF)",
    fields=tuple(Field(n, n, False) for n in _LENIENT_FIELDS),
    regex=_LENIENT_RE,
    tolerant_regex=_LENIENT_RE,
)

# Last resort: quotes inside fields left unescaped (Apache before 2.0.46, hand-edited logs). The request
# runs to the first '" <status> <bytes>'; referer and user agent split at the last '" "'.
_RAW_QUOTES_RE = r'^(.*?) ?\[([^\]]+)\] "(.*?)" (\d{3}|-) (\d+|-)(?: "(.*)" "(.*)")?\s*$'
LENIENT_RAW = CompiledFormat(
    name="clf_raw_quotes",
    dialect="apache",
    source="(CLF with unescaped quotes)",
    fields=tuple(Field(n, n, False) for n in _LENIENT_FIELDS[:7]),
    regex=_RAW_QUOTES_RE,
    tolerant_regex=_RAW_QUOTES_RE,
)

_ERROR_NGINX = r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[[a-z]+\] "
_ERROR_APACHE = r"^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d [\d:.]+ \d{4}\] \["
_ERROR_ANY = re.compile(_ERROR_NGINX + "|" + _ERROR_APACHE)


def _extract(frame: pl.DataFrame, regex: str, fields: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply one regex: (matched rows with f_<field> columns, unmatched rows)."""
    names = [f"f_{f}" for f in fields]
    # DataFrame.select, not Series.str: the frame-level path runs about twice as fast here.
    groups = frame.select(pl.col("line").str.extract_groups(regex).struct.rename_fields(names)).unnest("line")
    matched = groups.get_column(names[0]).is_not_null()
    if matched.all():  # the common case: no filtering copies
        return frame.drop("line").hstack(groups), frame.clear()
    return frame.drop("line").hstack(groups).filter(matched), frame.filter(~matched)


def _extract_split(frame: pl.DataFrame, fmt: CompiledFormat) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`_extract` with the format's fast regex, by way of its quote segments (see
    :class:`~forensics.ingest.logformat.CompiledFormat`): the lines with the format's number of quotes
    are split on them and each piece matched alone; the others are left for the whole-line regex."""
    segments = fmt.segments
    n = len(segments) - 1
    names = [f"f_{f}" for f in fmt.field_names]
    pieces = [f"_s{k}" for k in range(n + 1)]
    split = frame.select(
        pl.col("line").str.split_exact('"', n).struct.rename_fields(pieces).alias("_s")
    ).unnest("_s")
    ok = pl.col(pieces[-1]).is_not_null() & ~pl.col(pieces[-1]).str.contains('"', literal=True)
    exprs: list[pl.Expr] = []
    structs: list[str] = []
    firsts: list[str] = []
    for k, seg in enumerate(segments):
        piece = pl.col(pieces[k])
        if seg.regex is None:
            exprs.append(piece.alias(names[seg.fields[0]]))
        elif not seg.fields:
            ok = ok & (piece == seg.literal)
        else:
            fields = [names[i] for i in seg.fields]
            exprs.append(piece.str.extract_groups(seg.regex).struct.rename_fields(fields).alias(f"_g{k}"))
            structs.append(f"_g{k}")
            firsts.append(fields[0])  # every group is mandatory: a null first group is no match
    got = split.select(*exprs, ok.fill_null(False).alias("_ok")).unnest(structs)
    matched = got.select(
        pl.all_horizontal(pl.col("_ok"), *[pl.col(c).is_not_null() for c in firsts])
    ).to_series()
    groups = got.select(names)
    if matched.all():
        return frame.drop("line").hstack(groups), frame.clear()
    return frame.drop("line").hstack(groups).filter(matched), frame.filter(~matched)


def _lenient_prefix(frame: pl.DataFrame) -> pl.DataFrame:
    """Split the lenient stage's prefix: ``["xff" ][vhost ]addr[ ident] user``."""
    quoted = pl.col("f_prefix").str.extract(r'^"([^"]*)"')
    rest = pl.col("f_prefix").str.replace(r'^"[^"]*"\s*', "").str.replace_all(r",\s+", ",")
    frame = frame.with_columns(quoted.alias("_qxff"), rest.str.split(" ").alias("_tok"))
    n = pl.col("_tok").list.len()
    tok = pl.col("_tok")
    first = tok.list.get(n - 4, null_on_oob=True)
    # A leading token that is an address (list) is an unquoted "$http_x_forwarded_for $remote_addr" prefix.
    first_is_addr = first.str.contains(r"^[0-9A-Fa-f:.,\[\]]+$") & first.str.contains(r"[.:]")
    frame = frame.with_columns(
        pl.when(n >= 3)
        .then(tok.list.get(n - 3, null_on_oob=True))
        .otherwise(tok.list.first())
        .alias("f_remote_addr"),
        pl.when(n >= 2).then(tok.list.last()).alias("f_remote_user"),
        pl.when((n >= 4) & ~first_is_addr).then(first).alias("f_server_name"),
        pl.coalesce(
            pl.col("f_http_x_forwarded_for"), pl.col("_qxff"), pl.when((n >= 4) & first_is_addr).then(first)
        ).alias("f_http_x_forwarded_for"),
    )
    # A "vhost:port" prefix: the port is the server's, the name is the virtual host.
    frame = frame.with_columns(pl.col("f_server_name").str.replace(r":\d+$", ""))
    return frame.drop("_qxff", "_tok", "f_prefix")


def classify_rejects(rest: pl.DataFrame, fmt_label: str) -> pl.DataFrame:
    """Why each unmatched line is not an event."""
    line = pl.col("line")
    reason = (
        pl.when(line.str.strip_chars() == "")
        .then(pl.lit("blank line"))
        .when(line.str.contains(_ERROR_NGINX))
        .then(pl.lit("nginx error.log line, not an access-log entry"))
        .when(line.str.contains(_ERROR_APACHE))
        .then(pl.lit("Apache error_log line, not an access-log entry"))
        .when(line.str.contains(r'\] "') & (line.str.count_matches(r'(?:^|[^\\])"') % 2 == 1))
        .then(pl.lit("truncated line: a quoted field is never closed"))
        .otherwise(pl.lit(f"does not match the {fmt_label} format"))
    )
    return reject_frame(rest, reason)


def split_bad_time(events: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(events with a timestamp, reject rows for those without): a line whose time does not parse is
    not an event."""
    if events.height == 0:
        return events, None
    cols = [c for c in ("ts", "_ts_local") if c in events.columns]
    if not cols:
        return events.clear(), reject_frame(events, "format has no timestamp variable")
    has_ts = pl.any_horizontal([pl.col(c).is_not_null() for c in cols])
    bad = events.filter(~has_ts)
    if bad.height == 0:
        return events, None
    return events.filter(has_ts), reject_frame(bad, "unparseable timestamp")


def parse_clf(
    frame: pl.DataFrame, formats: list[CompiledFormat], lenient: bool, fmt_label: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines → (intermediate event columns, reject rows)."""
    outs: list[pl.DataFrame] = []
    rest = frame
    stages: list[tuple[CompiledFormat, str]] = []
    for fmt in formats:
        stages.append((fmt, fmt.regex))
    for fmt in formats:
        if fmt.tolerant_regex != fmt.regex:
            stages.append((fmt, fmt.tolerant_regex))
    if lenient:
        stages.append((LENIENT, LENIENT.regex))
        stages.append((LENIENT_RAW, LENIENT_RAW.regex))
    for fmt, regex in stages:
        if rest.height == 0:
            break
        if regex == fmt.regex and fmt.segments:
            split, rest = _extract_split(rest, fmt)
            if rest.height:
                whole, rest = _extract(rest, regex, fmt.field_names)
                split = pl.concat([split, whole]) if whole.height else split
            matched = split
        else:
            matched, rest = _extract(rest, regex, fmt.field_names)
        if matched.height == 0:
            continue
        if fmt is LENIENT or fmt is LENIENT_RAW:
            if "f_http_x_forwarded_for" not in matched.columns:
                matched = matched.with_columns(pl.lit(None, pl.String).alias("f_http_x_forwarded_for"))
            matched = _lenient_prefix(matched)
        outs.append(to_events(matched, fmt))
    events = pl.concat(outs, how="diagonal_relaxed") if outs else pl.DataFrame()
    rejects = [classify_rejects(rest, fmt_label)] if rest.height else []
    events, bad = split_bad_time(events)
    if bad is not None:
        rejects.append(bad)
    rej = pl.concat(rejects) if rejects else empty_reject_rows()
    return events.drop("_idx", strict=False), rej


# --------------------------------------------------------------------------------------------------
# Detection


def _py(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


_PY_CACHE: dict[str, re.Pattern[str]] = {}


def _match(regex: str, line: str) -> bool:
    pat = _PY_CACHE.get(regex)
    if pat is None:
        pat = _PY_CACHE[regex] = _py(regex)
    return pat.search(line) is not None


#: Longest head line the lenient patterns are tried on at detection: their lazy prefix makes Python's
#: backtracking engine quadratic in the brackets of a line (a 200 kB line of "[" took 47 s). Parsing
#: itself runs on polars' linear-time engine.
LENIENT_SNIFF_MAX = 8192

_TS_RE = re.compile(r"\d{1,2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}")


def sniff_clf(
    name: str, lines: list[str], candidates: dict[str, CompiledFormat], lenient: bool, bonus: float = 0.0
) -> Detection | None:
    """Trial-parse the head lines with every candidate format; best first.

    Confidence is the share of non-blank head lines that parse (lenient-only matches count 0.8), plus a
    small dialect ``bonus`` that breaks ties between nginx and Apache, which write identical lines.
    """
    body = sniff_lines(lines)
    if not body:
        return None
    if not any("[" in ln for ln in body[:50]):  # cheap literal check: CLF-like lines carry [time]
        return None
    counts: dict[str, int] = {}
    matched_any = [False] * len(body)
    lenient_only = [False] * len(body)
    for key, fmt in candidates.items():
        c = 0
        for i, ln in enumerate(body):
            if _match(fmt.regex, ln) or _match(fmt.tolerant_regex, ln):
                c += 1
                matched_any[i] = True
        counts[key] = c
    if lenient:
        for i, ln in enumerate(body):
            if (
                not matched_any[i]
                and len(ln) <= LENIENT_SNIFF_MAX
                and _TS_RE.search(ln)
                and (_match(LENIENT.regex, ln) or _match(LENIENT_RAW.regex, ln))
            ):
                lenient_only[i] = True
    strict = sum(matched_any)
    loose = sum(lenient_only)
    # error-log lines mixed into an access log are the same server's, not another format
    loose += sum(
        1 for i, ln in enumerate(body) if not matched_any[i] and not lenient_only[i] and _ERROR_ANY.search(ln)
    )
    if strict + loose == 0:
        return None
    order = [k for k in sorted(counts, key=lambda k: -counts[k]) if counts[k] > 0]
    # Up to 0.8 from the lines, the rest from dialect hints, so hints still rank two perfect parses.
    conf = min(1.0, 0.8 * (strict + 0.8 * loose) / len(body) + bonus)
    if conf < 0.25:
        return None
    variant = order[0] if order else "clf_lenient"
    how = f"{strict + loose}/{len(body)} head lines parse as {name} " + (
        "/".join(order) if order else "CLF (lenient)"
    )
    return Detection(
        ingestor=name, confidence=round(conf, 3), how=how, params={"formats": order}, variant=variant
    )


def run(
    ingestor_name: str,
    frame: pl.DataFrame,
    ctx: FileContext,
    presets: dict[str, CompiledFormat],
    lenient: bool,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parse with the formats detection chose (or the user's)."""
    custom = ctx.detection.params.get("compiled")
    if custom is not None:
        formats = [custom]
        lenient = False
    else:
        names = ctx.detection.params.get("formats") or list(presets)
        formats = [presets[n] for n in names if n in presets]
    label = "/".join(f.name for f in formats) if formats else ingestor_name
    return parse_clf(frame, formats, lenient, f"{ingestor_name} {label}")
