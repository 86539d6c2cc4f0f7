"""Personal data in response bodies: which kinds, and how many, never the values.

An endpoint that returns names, e-mails, phone numbers, addresses or account numbers is what a breach
investigation is about; the inventory marks it, and the exposure passes size the damage with it. The
detectors here answer "which kinds of personal data does this body carry, and roughly how many
records' worth", from two kinds of evidence:

* **Field names** in JSON (``"email": …``, ``"firstName": …``, ``"msisdn": …``, ``"accountNumber": …``):
  a key from :data:`FIELD_NAMES` (case, ``_``, ``-`` and a qualifier such as ``billing``/``customer``
  ignored) whose value is not empty, null or masked (``"***"``). Some keys check the value too: a
  generic ``"name"`` counts only when its value looks like a person's name ("Jane Doe") and the body
  carries other personal data (:data:`BARE_NAME_NEEDS`), a ``"cardNumber"`` only when it is a
  Luhn-valid card number.
* **Value patterns** anywhere in the text: e-mail addresses, phone numbers (E.164, or North American
  with separators), US social security numbers (formatted, valid ranges), payment cards (13-19 digits,
  a card-network prefix and a valid Luhn check), IBANs (mod-97 check), IPv4/IPv6 addresses, JWTs and
  US-style street addresses. Dates of birth and names are recognised by field name only: dates and
  capitalised words are everywhere.

The count of a kind is the largest count among its field names and its value pattern (a record with
``firstName`` and ``lastName`` is one name, an ``"email"`` key and the address in its value are one
e-mail), so it approximates the number of records exposing that kind.

Nothing found is ever copied out: the functions return kinds and counts only. The work is vectorised
(:func:`scan_bodies`: Rust regexes in polars over a batch of bodies, ~60 MB/s on one core of dense
personal data; only candidates that need a checksum go through Python, once per distinct value).
Bodies are scanned up to :data:`SCAN_MAX_BYTES` (a prefix; counts are then lower bounds), so a
multi-megabyte response costs what 1 MiB does; binary bodies (images, fonts, media) and
scripts/stylesheets are skipped (see :func:`scannable`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable

import polars as pl

#: Characters of a body that are scanned (its prefix). 1 MiB holds thousands of records of a list
#: response; a larger body yields lower-bound counts.
SCAN_MAX_BYTES = 1 << 20

#: Every kind this module reports, in report order.
KINDS: tuple[str, ...] = ("name", "email", "phone", "address", "dob", "ssn", "card", "account", "ip", "jwt")

#: JSON field names per kind, as word sequences: ("first", "name") matches firstName, first_name,
#: first-name, FIRSTNAME. Each entry is a group: a kind's key count is its largest group count.
FIELD_NAMES: dict[str, tuple[tuple[str, ...], ...]] = {
    "name": (
        ("first", "name"),
        ("last", "name"),
        ("full", "name"),
        ("given", "name"),
        ("family", "name"),
        ("middle", "name"),
        ("sur", "name"),
        ("holder", "name"),
        ("account", "holder"),
        ("card", "holder", "name"),
        ("name",),  # value must look like a person's name
    ),
    "email": (("email",), ("e", "mail"), ("email", "address"), ("mail",)),
    "phone": (
        ("phone",),
        ("phone", "number"),
        ("phone", "no"),
        ("mobile",),
        ("mobile", "number"),
        ("msisdn",),
        ("mdn",),
        ("tel",),
        ("telephone",),
        ("telephone", "number"),
        ("cell",),
        ("cell", "phone"),
        ("contact", "number"),
    ),
    "address": (
        ("address",),
        ("street",),
        ("street", "address"),
        ("address", "line", "1"),
        ("address", "line", "2"),
        ("address", "1"),
        ("address", "2"),
        ("zip",),
        ("zip", "code"),
        ("postal", "code"),
        ("post", "code"),
    ),
    "dob": (("dob",), ("date", "of", "birth"), ("birth", "date"), ("birthday",)),
    "ssn": (
        ("ssn",),
        ("social", "security", "number"),
        ("social", "security", "no"),
        ("national", "id"),
        ("national", "id", "number"),
    ),
    "card": (
        ("card", "number"),
        ("card", "no"),
        ("credit", "card", "number"),
        ("cc", "number"),
        ("pan",),
        ("primary", "account", "number"),
    ),
    "account": (
        ("account", "number"),
        ("account", "no"),
        ("account", "num"),
        ("acct", "number"),
        ("acct", "no"),
        ("bank", "account"),
        ("bank", "account", "number"),
        ("billing", "account", "number"),
        ("ban",),
        ("iban",),
    ),
}

#: A bare ``"name"`` field (no firstName/lastName/fullName…) counts as a person's name only when the
#: same body also carries one of these kinds: alone it is far more often a plan or product name
#: ("Magenta Unlimited Plus") than a person's.
BARE_NAME_NEEDS: tuple[str, ...] = ("email", "phone", "address", "dob", "ssn", "card", "account")

#: Qualifiers a field name may start with and still mean the same kind (``billingAddress``,
#: ``customerEmail``, ``homePhone``).
QUALIFIERS = (
    "user",
    "customer",
    "contact",
    "primary",
    "secondary",
    "alternate",
    "alt",
    "billing",
    "shipping",
    "mailing",
    "service",
    "home",
    "work",
    "business",
    "personal",
    "residential",
    "mobile",
    "subscriber",
    "account",
    "owner",
    "holder",
    "member",
    "patient",
)

_SEP = r"[_\- ]?"


def _words(words: tuple[str, ...]) -> str:
    return _SEP.join(re.escape(w) for w in words)


def _norm(key: str) -> str:
    return re.sub(r"[^0-9a-z]", "", key.lower())


_GROUP_OF: dict[str, tuple[str, str]] = {}  # normalised field name → (kind, group)
for _kind, _groups in FIELD_NAMES.items():
    for _g in _groups:
        _GROUP_OF.setdefault("".join(_g), (_kind, "".join(_g)))

_BASES = sorted({_words(g) for gs in FIELD_NAMES.values() for g in gs}, key=len, reverse=True)
_QUALIFIER_ALT = "(?:" + "|".join(re.escape(q) for q in QUALIFIERS) + ")"

# The patterns below run in polars (Rust regex: no look-around), vectorised over a batch of bodies.
# A left boundary is consumed as a character instead of a look-behind, which only matters for
# adjacent matches.

# A JSON member whose key is a personal-data field name, with its scalar value or an opening brace.
FIELD_PATTERN = (
    r'(?i)"(?:' + _QUALIFIER_ALT + _SEP + r")?(?:" + "|".join(_BASES) + r')"\s*:\s*'
    r'(?:"(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*|\{|\[|null|true|false)'
)
_FIELD_SPLIT = r'(?s)^"([^"]*)"\s*:\s*(.*)$'
_QUALIFIER_PREFIX = "^(?:" + "|".join(sorted({_norm(q) for q in QUALIFIERS}, key=len, reverse=True)) + ")"
_PERSON_NAME = r"^[A-Z][a-zA-Z'’.-]+(?:\s+[A-Z][a-zA-Z'’.-]+){1,3}$"
_NAME_VALUE = r"^\p{L}[\p{L}'’. -]{0,80}$"  # letters, not "org/repo" or "user123"
_MASKED = r"\*{2,}|x{4,}|X{4,}|•{2,}"

_H = "[0-9A-Fa-f]{1,4}"
#: Value patterns counted directly: kind → pattern.
VALUE_PATTERNS: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b",
    "phone": (
        r"(?:^|[^\w+])\+[1-9]\d{7,14}\b"  # E.164
        r"|(?:^|[^\w.+-])(?:\+?1[-. ])?\(?[2-9]\d{2}\)?[-. ][2-9]\d{2}[-. ]\d{4}\b"  # NANP, separated
    ),
    "ip": (
        r"(?:^|[^\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b"
        r"|(?:^|[^\w:])(?:(?:"
        + _H
        + r":){7}"
        + _H
        + r"|(?:"
        + _H
        + r":){1,6}:(?:"
        + _H
        + r":){0,5}"
        + _H
        + r")\b"
    ),
    "jwt": r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
    "address": (
        r"\b\d{1,6}\s+(?:[A-Z][A-Za-z]*\.?\s+){1,4}"
        r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|"
        r"Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq)\b"
    ),
}
#: Matches of a value pattern that are not personal data: image names such as logo@2x.png, and
#: dotted quads of single digits (version numbers far more often than addresses).
VALUE_EXCLUDE: dict[str, str] = {
    "ip": r"(?:^|[^\w.])\d\.\d\.\d\.\d\b",
    "email": r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*"
    r"\.(?i:png|jpe?g|gif|svg|webp|ico|js|css|map|woff2?|ttf)\b",
}
#: Candidates that need a check in code (ranges, Luhn, mod 97): kind → pattern.
CHECKED_PATTERNS: dict[str, str] = {
    "ssn": r"(?:^|[^\w-])\d{3}-\d{2}-\d{4}\b",
    "card": r"(?:^|[^\w.+-])(?:\d[ -]?){12,18}\d\b",
    "account": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
}
_SSN_INVALID = r"(?:000|666|9\d\d)-\d{2}-\d{4}$|-00-\d{4}$|-0000$"

#: Mime types whose bodies are never scanned: binary content, and code (scripts, styles) full of
#: numbers that look like identifiers.
_SKIP_MIME = re.compile(
    r"^(?:image|audio|video|font)/|octet-stream|javascript|ecmascript|text/css|wasm|protobuf|"
    r"application/(?:zip|gzip|pdf|x-font|vnd\.ms-fontobject)",
    re.IGNORECASE,
)


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) check of a card number; separators are ignored, other characters fail."""
    digits = [c for c in number if c not in " -"]
    if len(digits) < 2 or not all(c.isdigit() for c in digits):
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_prefix(d: str) -> bool:
    """Issuer identification numbers of the card networks (Visa, Mastercard, Amex, Discover, JCB,
    Diners, UnionPay): a 16-digit id that happens to pass Luhn rarely starts with one of these."""
    n2, n4 = int(d[:2]), int(d[:4])
    return (
        d[0] == "4"
        or 51 <= n2 <= 55
        or 2221 <= n4 <= 2720
        or n2 in (34, 37, 36, 38, 62, 65)
        or n4 == 6011
        or 644 <= int(d[:3]) <= 649
        or 3528 <= n4 <= 3589
        or 300 <= int(d[:3]) <= 305
    )


def is_card_number(value: str) -> bool:
    """13-19 digits (spaces/dashes allowed), a card-network prefix and a valid Luhn check."""
    d = re.sub(r"[ -]", "", value)
    return d.isdigit() and 13 <= len(d) <= 19 and _card_prefix(d) and luhn_valid(d)


def iban_valid(value: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN (spaces ignored)."""
    s = value.replace(" ", "").upper()
    if not (15 <= len(s) <= 34) or not s.isalnum():
        return False
    moved = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def _checked(values: pl.Series, check: Callable[[str], bool]) -> pl.Series:
    """Apply a Python check to the distinct values only (candidates are few even in big batches)."""
    uniq = values.drop_nulls().unique().to_list()
    return values.replace_strict({v: check(v) for v in uniq}, default=False, return_dtype=pl.Boolean)


def _ssn_ok(candidate: str) -> bool:
    return re.search(_SSN_INVALID, candidate) is None


def _card_ok(candidate: str) -> bool:
    return is_card_number(re.sub(r"^[^\d]", "", candidate))


def _empty_counts(n: int) -> pl.DataFrame:
    return pl.DataFrame({k: pl.zeros(n, dtype=pl.UInt32, eager=True) for k in KINDS})


def _field_counts(text: pl.Series) -> pl.DataFrame:
    """(row, kind, n): personal-data JSON fields per body, largest group per kind."""
    found = (
        pl.DataFrame({"m": text.str.extract_all(FIELD_PATTERN)})
        .with_row_index("row")
        .explode("m")
        .drop_nulls("m")
    )
    if found.height == 0:
        return pl.DataFrame(schema={"row": pl.UInt32, "kind": pl.String, "n": pl.UInt32})
    kv = found.get_column("m").str.extract_groups(_FIELD_SPLIT)
    key = kv.struct.field("1").str.to_lowercase().str.replace_all("[^0-9a-z]", "")
    value = kv.struct.field("2")
    mapping = {k: f"{kind}|{group}" for k, (kind, group) in _GROUP_OF.items()}
    hit = key.replace_strict(mapping, default=None, return_dtype=pl.String)
    bare = key.str.replace(_QUALIFIER_PREFIX, "").replace_strict(
        mapping, default=None, return_dtype=pl.String
    )
    frame = pl.DataFrame(
        {"row": found.get_column("row"), "hit": pl.select(pl.coalesce(hit, bare)).to_series(), "v": value}
    ).drop_nulls("hit")
    parts = frame.get_column("hit").str.split_exact("|", 1)
    frame = frame.with_columns(
        parts.struct.field("field_0").alias("kind"), parts.struct.field("field_1").alias("group")
    )
    v = pl.col("v")
    is_str = v.str.starts_with('"')
    inner = v.str.slice(1, v.str.len_chars() - 2).str.strip_chars()
    kind, group = pl.col("kind"), pl.col("group")
    is_card = frame.get_column("kind") == "card"
    card = pl.Series([False] * frame.height, dtype=pl.Boolean)
    if is_card.any():
        idx = is_card.arg_true()
        card = card.scatter(
            idx, _checked(frame.get_column("v").gather(idx).str.strip_chars('"'), is_card_number)
        )
    frame = frame.with_columns(card.alias("_card"))
    scalar_ok = (
        pl.when(is_str)
        .then((inner != "") & ~inner.str.contains(_MASKED))
        .otherwise(v.str.contains(r"^-?\d") & ~v.is_in(["0", "-1"]) & ~kind.is_in(["name", "email", "dob"]))
    )
    kind_ok = (
        pl.when(kind == "name")
        .then(
            pl.when(group == "name")
            .then(inner.str.contains(_PERSON_NAME))
            .otherwise(inner.str.contains(_NAME_VALUE))
        )
        .when(kind == "email")
        .then(inner.str.contains("@", literal=True))
        .when(kind == "card")
        .then(pl.col("_card"))
        .when(kind.is_in(["phone", "ssn", "account"]))
        .then(v.str.contains(r"\d"))
        .otherwise(pl.lit(True))
    )
    ok = pl.when(v == "{").then(kind == "address").when(v.is_in(["[", "null", "true", "false"])).then(False)
    ok = ok.otherwise(scalar_ok & kind_ok)
    per_group = frame.filter(ok).group_by("row", "kind", "group").agg(pl.len().alias("n"))
    # A record with firstName and lastName is one name; a bare "name" counts only without them, and
    # is marked: alone (no other personal data in the body) it is a plan or product name.
    return (
        per_group.group_by("row", "kind")
        .agg(
            pl.col("n").filter(pl.col("group") != "name").max().alias("specific"),
            pl.col("n").filter(pl.col("group") == "name").max().alias("generic"),
        )
        .select(
            "row",
            pl.when(pl.col("specific").is_null() & (pl.col("kind") == "name"))
            .then(pl.lit("_bare_name"))
            .otherwise(pl.col("kind"))
            .alias("kind"),
            pl.coalesce("specific", "generic").cast(pl.UInt32).alias("n"),
        )
    )


def scan_bodies(bodies: pl.Series) -> pl.DataFrame:
    """One row per body: a UInt32 count per kind (columns :data:`KINDS`, 0 when absent).

    Vectorised over a batch (Rust regexes in polars); each body is scanned up to
    :data:`SCAN_MAX_BYTES` characters. Values are used to decide and count, never returned.
    """
    n = bodies.len()
    if n == 0 or bodies.null_count() == n:
        return _empty_counts(n)
    text = bodies.cast(pl.String).str.slice(0, SCAN_MAX_BYTES)
    frame = pl.DataFrame({"t": text})
    exprs = []
    for kind, pattern in VALUE_PATTERNS.items():
        expr = pl.col("t").str.count_matches(pattern)
        if kind in VALUE_EXCLUDE:
            expr = expr - pl.col("t").str.count_matches(VALUE_EXCLUDE[kind])
        exprs.append(expr.fill_null(0).cast(pl.UInt32).alias(kind))
    for kind, pattern in CHECKED_PATTERNS.items():
        exprs.append(pl.col("t").str.extract_all(pattern).alias(f"_{kind}"))
    counts = frame.select(exprs)
    checks = {"ssn": _ssn_ok, "card": _card_ok, "account": lambda c: iban_valid(c.strip())}
    for kind, check in checks.items():
        col = counts.get_column(f"_{kind}")
        exploded = pl.DataFrame({"c": col}).with_row_index("row").explode("c").drop_nulls("c")
        if exploded.height:
            exploded = exploded.filter(_checked(exploded.get_column("c"), check))
        per_row = exploded.group_by("row").agg(pl.len().cast(pl.UInt32).alias("n"))
        full = (
            pl.DataFrame({"row": pl.int_range(0, n, dtype=pl.UInt32, eager=True)})
            .join(per_row, on="row", how="left")
            .get_column("n")
            .fill_null(0)
        )
        counts = counts.with_columns(full.alias(kind)).drop(f"_{kind}")
    fields = _field_counts(text)
    if fields.height:
        wide = fields.pivot(on="kind", index="row", values="n")
        full = pl.DataFrame({"row": pl.int_range(0, n, dtype=pl.UInt32, eager=True)}).join(
            wide, on="row", how="left"
        )
        updates = []
        for kind in KINDS:
            if kind in full.columns:
                by_field = full.get_column(kind).fill_null(0).cast(pl.UInt32)
                current = (
                    counts.get_column(kind) if kind in counts.columns else pl.zeros(n, pl.UInt32, eager=True)
                )
                updates.append(pl.max_horizontal(current, by_field).cast(pl.UInt32).alias(kind))
        counts = counts.with_columns(updates)
        missing = [pl.lit(0, dtype=pl.UInt32).alias(k) for k in KINDS if k not in counts.columns]
        counts = counts.with_columns(missing) if missing else counts
        if "_bare_name" in full.columns:
            bare = full.get_column("_bare_name").fill_null(0).cast(pl.UInt32)
            personal = counts.select(pl.any_horizontal([pl.col(k) > 0 for k in BARE_NAME_NEEDS])).to_series()
            bare = pl.select(pl.when(personal).then(bare).otherwise(0)).to_series().cast(pl.UInt32)
            counts = counts.with_columns(pl.max_horizontal(counts.get_column("name"), bare).alias("name"))
    missing = [pl.lit(0, dtype=pl.UInt32).alias(k) for k in KINDS if k not in counts.columns]
    if missing:
        counts = counts.with_columns(missing)
    return counts.select(KINDS)


def kinds_column(counts: pl.DataFrame) -> pl.Series:
    """The ``pii_kinds`` list of each row of :func:`scan_bodies`' result (kinds in :data:`KINDS` order)."""
    if counts.height == 0:
        return pl.Series("pii_kinds", [], dtype=pl.List(pl.String))
    return counts.select(
        pl.concat_list([pl.when(pl.col(k) > 0).then(pl.lit(k)) for k in KINDS])
        .list.drop_nulls()
        .alias("pii_kinds")
    ).to_series()


def scan_text(text: str | None) -> dict[str, int]:
    """Kinds of personal data in one text (JSON or not) → count; empty when none. Values never leave."""
    if not text:
        return {}
    row = scan_bodies(pl.Series([text], dtype=pl.String)).row(0, named=True)
    return {k: int(v) for k, v in row.items() if v}


def scannable(mime: str | None) -> bool:
    """Whether a body of this mime type is worth scanning (text-like: JSON, XML, HTML, plain, forms)."""
    return not (mime and _SKIP_MIME.search(mime))


def body_text(body: str | bytes | None, encoding: str | None = None) -> str | None:
    """A body as text, at most :data:`SCAN_MAX_BYTES` of it; base64 (HAR ``content.encoding``) decoded.

    Only the prefix that is scanned is decoded, so a 50 MB base64 body costs what 1 MB does. Bodies
    that decode to binary (NUL bytes) give None.
    """
    if body is None:
        return None
    if encoding and encoding.lower() == "base64":
        raw = body.encode("ascii", "ignore") if isinstance(body, str) else body
        raw = re.sub(rb"[^A-Za-z0-9+/=_-]", b"", raw[: SCAN_MAX_BYTES * 4 // 3 + 64])
        raw = raw[: len(raw) - len(raw) % 4]
        try:
            data = base64.b64decode(raw.replace(b"-", b"+").replace(b"_", b"/"))
        except (binascii.Error, ValueError):
            return None
        body = data
    if isinstance(body, bytes):
        body = body[:SCAN_MAX_BYTES]
        if b"\x00" in body:
            return None
        return body.decode("utf-8", "replace")
    return body[:SCAN_MAX_BYTES]


def scan_body(
    body: str | bytes | None, mime: str | None = None, encoding: str | None = None
) -> dict[str, int]:
    """Kinds of personal data in a response body → count (see the module docstring).

    ``mime`` skips binary and code bodies; ``encoding="base64"`` decodes a HAR base64 body first.
    """
    if body is None or not scannable(mime):
        return {}
    return scan_text(body_text(body, encoding))


def kinds_of(counts: dict[str, int] | Iterable[str]) -> list[str]:
    """Kinds present, in :data:`KINDS` order (for the ``pii_kinds`` column)."""
    present = set(counts)
    return [k for k in KINDS if k in present]


def merge_counts(*many: dict[str, int]) -> dict[str, int]:
    """Sum counts of several bodies (e.g. the messages of one websocket)."""
    out: dict[str, int] = {}
    for counts in many:
        for k, n in counts.items():
            out[k] = out.get(k, 0) + n
    return {k: out[k] for k in KINDS if out.get(k)}


__all__ = [
    "BARE_NAME_NEEDS",
    "FIELD_NAMES",
    "KINDS",
    "SCAN_MAX_BYTES",
    "body_text",
    "iban_valid",
    "is_card_number",
    "kinds_column",
    "kinds_of",
    "luhn_valid",
    "merge_counts",
    "scan_bodies",
    "scan_body",
    "scan_text",
    "scannable",
]
