"""Credential masking: secrets in logs become stable fingerprints, in events and rejects alike.

A fingerprint (``fp:`` + 16 hex digits of a salted SHA-256) is stable, so two requests made with the same
API key or token still link to one principal, but the secret itself never reaches the case directory.

Vectorised: a cheap ``str.contains`` selects the few rows that carry a credential; their credential
substrings are extracted, the distinct ones are fingerprinted in Python (there are few distinct secrets
even when every request carries one), and mapped back with one Aho-Corasick ``replace_many``.
"""

from __future__ import annotations

import hashlib
import re

import polars as pl

_SALT = b"forensics-fp/1\x00"

#: Query / form parameter names whose values are credentials.
#: ``_`` and ``-`` inside a name may arrive percent-encoded (``api%5Fkey``); any name that ends in token,
#: secret, signature or password (``private_token``, ``X-Goog-Signature``) is one too.
_SEP = r"(?:[_-]|%5[Ff]|%2[Dd])"
CREDENTIAL_PARAMS = (
    f"api{_SEP}?key|apikey|x{_SEP}api{_SEP}key|key|"
    r"[a-z0-9_.%-]*(?:token|secret|signature|password|passwd)|"
    f"auth|authorization|pwd|pass|sig|jwt|x{_SEP}amz{_SEP}credential|session|session{_SEP}?id|sessid|"
    "jsessionid|phpsessid|sid|code"
)

# One alternation for every credential shape; written to work in both Rust regex and Python re.
#  1. key=value pairs in queries, form bodies and cookies (the boundary character is kept)
#  2. user:password@ in URLs
#  3. Authorization schemes in free text ("Bearer xyz", "Basic dXNlcjpwYXNz")
#  4. bare JWTs anywhere
#  5. JSON members whose key is a credential name or a secret-bearing header ("api_key": "…")
_PAIR = r"(?:^|[?&#;\s\"',{(])(?:" + CREDENTIAL_PARAMS + r")=[^&#;\s\"',}]+"
_USERINFO = r"://[^/@\s:\"]+:[^/@\s\"]+@"
_SCHEME = r"(?:[Bb]earer|[Bb]asic|[Tt]oken|[Dd]igest)\s+[A-Za-z0-9._~+/=-]{8,}"
_JWT = r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"
_JSON_PAIR = r'"(?:' + CREDENTIAL_PARAMS + r'|cookie|set-cookie|x-api-key)"\s*:\s*"[^"]+"'
SECRET_RE = "(?i)(?:" + _PAIR + "|" + _USERINFO + "|" + _SCHEME + "|" + _JWT + "|" + _JSON_PAIR + ")"
_SECRET_PY = re.compile(SECRET_RE)
#: Literals one of which every credential shape contains (checked case-insensitively, with
#: Aho-Corasick, before the regex): the parameter names (``api_key=`` contains ``key=``, ``password``
#: contains ``pass``, …), ``@`` of ``user:password@``, the Authorization schemes, and JWTs.
_PREFILTER = [
    "key=",
    "sig=",
    "sid=",
    "pwd=",
    "code=",
    "pass",
    "auth",
    "token",
    "secret",
    "signature",
    "session",
    "sessid",
    "amz",
    "@",
    "bearer",
    "basic",
    "digest",
    "eyj",
    "jwt",
    # JSON member names: every name in CREDENTIAL_PARAMS ends in one of these (with its closing quote)
    # or contains a literal above; the short ones carry their opening quote too, so that
    # ``"target_status_code":`` (every ALB row's extra) does not send each row to the regex.
    'key"',
    '"sig"',
    '"sid"',
    '"pwd"',
    '"code"',
    "cookie",
]
_FP_RE = re.compile(r"^fp:[0-9a-f]{16}$")


def fingerprint(value: str) -> str:
    """Stable, non-reversible stand-in for a secret value."""
    return "fp:" + hashlib.sha256(_SALT + value.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _mask_match(match: str) -> str:
    """Replacement for one credential substring found by SECRET_RE."""
    low = match.lower()
    if match.startswith('"'):
        key, _, rest = match.partition(":")
        sep_len = len(rest) - len(rest.lstrip())
        value = rest[sep_len + 1 : -1]
        if _FP_RE.match(value):
            return match
        return f'{key}:{rest[:sep_len]}"{fingerprint(value)}"'
    if low.startswith("eyj"):
        return fingerprint(match)
    if match.startswith("://"):
        user, _, secret = match[3:-1].partition(":")
        return f"://{user}:{fingerprint(secret)}@"
    for scheme in ("bearer", "basic", "token", "digest"):
        if low.startswith(scheme) and len(match) > len(scheme) and match[len(scheme)].isspace():
            rest = match[len(scheme) :]
            sep_len = len(rest) - len(rest.lstrip())
            secret = rest[sep_len:]
            return match[: len(scheme) + sep_len] + (secret if _FP_RE.match(secret) else fingerprint(secret))
    key, _, value = match.partition("=")
    if _FP_RE.match(value):
        return match
    return f"{key}={fingerprint(value)}"


def mask_text(text: str | None) -> str | None:
    """Scalar masking, for values handled one at a time (HAR headers, reject excerpts)."""
    if not text:
        return text
    return _SECRET_PY.sub(lambda m: _mask_match(m.group(0)), text)


def mask_series(values: pl.Series) -> pl.Series:
    """Vectorised :func:`mask_text` over a string column."""
    if values.len() == 0 or values.null_count() == values.len():
        return values
    # A literal pre-filter (Aho-Corasick) first: the regex runs only on rows that could match.
    frame = pl.DataFrame({"v": values})
    maybe = frame.select(pl.col("v").str.contains_any(_PREFILTER, ascii_case_insensitive=True)).to_series()
    if not maybe.any():
        return values
    candidates = maybe.fill_null(False).arg_true()
    hit = values.gather(candidates).str.contains(SECRET_RE).fill_null(False)
    if not hit.any():
        return values
    idx = candidates.filter(hit)
    subset = values.gather(idx)
    found = subset.str.extract_all(SECRET_RE).explode().drop_nulls().unique().to_list()
    found = sorted(found, key=len, reverse=True)  # longest first: leftmost-first then prefers it
    repl = [_mask_match(m) for m in found]
    masked = subset.str.replace_many(found, repl)
    return values.scatter(idx, masked)


def auth_from_header(value: str | None) -> tuple[str | None, str | None]:
    """(auth kind, principal fingerprint) from an Authorization header value."""
    if not value:
        return None, None
    scheme, _, cred = value.strip().partition(" ")
    kind = scheme.lower()
    cred = cred.strip()
    if kind == "basic":
        import base64

        try:
            user = base64.b64decode(cred + "===").decode("utf-8", "replace").partition(":")[0]
        except ValueError:
            user = ""
        # The user name is an identity, not a secret; the password never leaves this function.
        return "basic", user or fingerprint(cred)
    if kind == "bearer":
        return "bearer", fingerprint(cred)
    return "unknown", fingerprint(value.strip())
