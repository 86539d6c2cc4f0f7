"""nginx ``log_format`` and Apache ``LogFormat`` strings compiled into one vectorised parser.

The stock formats (nginx ``combined`` and ``main``, Apache ``common``/``combined``/vhost variants, Nginx
Proxy Manager's ``proxy``) are format strings compiled here too: one mechanism, not two.

A format string becomes one regex with one capture group per variable (no alternation, so polars'
regex engine stays on its fast path) plus, per variable, a *canonical field* name (nginx spelling:
``remote_addr``, ``time_local``, ``request``, …; Apache directives map onto the same names). Canonical
fields are then converted to event columns by :func:`to_events` with polars expressions. Variables
without a column in the schema go to ``extra`` as text; unknown ones are kept the same way, never an
error.

The dialect is told apart by syntax: ``$name`` is nginx, ``%h``/``%{…}i`` is Apache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

from ._time import CLF_TIME, parse_epoch_seconds, parse_iso_time

# --------------------------------------------------------------------------------------------------
# Value patterns. Quoted values: nginx escapes '"' as \x22, so [^"]* is exact; Apache writes \" and the
# escape-tolerant variant is used by the second stage for the lines the fast one misses.
_QUOTED_FAST = r'[^"]*'
_QUOTED_ESCAPED = r'(?:[^"\\]|\\.)*'
_TOKEN = r"\S+"  # one space-free token (also "-")
_LIST = r"[^ ,]+(?:(?:, | : )[^ ,]+)*"  # "0.001, 0.002 : 0.003" lists (upstream_*): greedy, unambiguous
_BRACKETED = r"[^\]]*"
_ADDR_LIST = r"[^\s,]+(?:,\s*[^\s,]+)*"  # "203.0.113.1, 10.0.0.2" (X-Forwarded-For, unquoted)

#: nginx variables whose value can contain spaces when unquoted.
_LIST_VARS = {
    "upstream_response_time",
    "upstream_addr",
    "upstream_status",
    "upstream_connect_time",
    "upstream_header_time",
    "upstream_bytes_received",
    "upstream_bytes_sent",
    "upstream_response_length",
    "upstream_cache_status",
}


@dataclass(frozen=True)
class Field:
    var: str  # the variable as written (``$http_user_agent``, ``%{User-Agent}i``)
    name: str  # canonical field name
    quoted: bool


@dataclass(frozen=True)
class Segment:
    """The text between two of a format's double quotes. ``regex`` (anchored, one group per field) is
    None when the segment is exactly one quoted field, whose value is then the segment itself."""

    regex: str | None
    fields: tuple[int, ...]  # indices into CompiledFormat.fields
    literal: str = ""  # the whole segment, when it has no field


@dataclass(frozen=True)
class CompiledFormat:
    """A log format ready to run: a fast regex, an escape-tolerant one, and the fields they capture.

    ``segments`` is the same fast regex cut at the format's double quotes: a line with exactly that many
    quotes is split on them and each piece matched by its own short regex, several times faster than
    the whole-line regex (and immune to one ambiguous field slowing every line down). Since quoted values
    cannot contain quotes, a line the split accepts gets exactly the whole-line regex's captures; the rest
    goes to the whole-line regex.
    """

    name: str
    dialect: str  # "nginx" or "apache"
    source: str
    fields: tuple[Field, ...]
    regex: str
    tolerant_regex: str
    time_format: str | None = None  # strftime of an Apache %{format}t, when the format has one
    literal_hint: str = ""  # a literal that every line contains (cheap pre-check for detection)
    segments: tuple[Segment, ...] = ()  # empty: the format has no double quotes

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


def dialect_of(fmt: str) -> str:
    """``nginx`` for ``$variable`` strings, ``apache`` for ``%directive`` strings."""
    nginx = len(re.findall(r"\$\{?[A-Za-z_][A-Za-z0-9_]*", fmt))
    apache = len(re.findall(r"%[<>]?(?:\{[^}]*\})?[a-zA-Z]", fmt))
    if nginx == 0 and apache == 0:
        raise ValueError("neither an nginx log_format ($variable) nor an Apache LogFormat (%directive)")
    return "nginx" if nginx >= apache else "apache"


def compile_format(fmt: str, name: str = "custom") -> CompiledFormat:
    """Compile an nginx ``log_format`` or Apache ``LogFormat`` string."""
    fmt = _strip_config_quoting(fmt)
    if dialect_of(fmt) == "nginx":
        tokens = _tokenize_nginx(fmt)
        dialect = "nginx"
    else:
        tokens = _tokenize_apache(fmt)
        dialect = "apache"
    return _build(tokens, fmt, name, dialect)


def _strip_config_quoting(fmt: str) -> str:
    """Accept a line pasted from nginx.conf/httpd.conf: ``log_format main '…' '…';`` or ``LogFormat "…" nick``."""
    s = fmt.strip()
    m = re.match(r"^log_format\s+\S+\s+(?:escape=\S+\s+)?(.*?);?$", s, re.S)
    if m:
        parts = re.findall(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"", m.group(1))
        if parts:
            return "".join(a or b for a, b in parts)
    m = re.match(r'^(?:Custom|Transfer)?LogFormat\s+"((?:[^"\\]|\\.)*)"(?:\s+\S+)?$', s)
    if m:
        return m.group(1).replace('\\"', '"')
    return fmt


# A token is either literal text or a variable (canonical name, original spelling, extra info).
_Tok = tuple[str, str, str, str]  # (kind "lit"/"var", text or canonical name, original, arg)


def _tokenize_nginx(fmt: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    for m in re.finditer(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))", fmt):
        if m.start() > pos:
            out.append(("lit", fmt[pos : m.start()], "", ""))
        var = m.group(1) or m.group(2)
        out.append(("var", var.lower(), m.group(0), ""))
        pos = m.end()
    if pos < len(fmt):
        out.append(("lit", fmt[pos:], "", ""))
    return out


# Apache directive → canonical (nginx-spelled) field.
_APACHE_SIMPLE = {
    "h": "remote_addr",
    "a": "remote_addr",
    "l": "ident",
    "u": "remote_user",
    "t": "time_apache",
    "r": "request",
    "s": "status",
    "b": "body_bytes_sent",
    "B": "body_bytes_sent",
    "O": "bytes_sent",
    "I": "request_length",
    "S": "bytes_transferred",
    "D": "request_time_us",
    "T": "request_time_s",
    "v": "server_name",
    "V": "host",
    "p": "server_port",
    "m": "request_method",
    "U": "uri",
    "q": "query_string",
    "H": "server_protocol",
    "f": "request_filename",
    "P": "pid",
    "k": "keepalive_requests",
    "X": "connection_status",
    "L": "log_id",
    "R": "handler",
}


def _tokenize_apache(fmt: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    for m in re.finditer(r"%%|%([<>]?)(?:\{([^}]*)\})?([a-zA-Z])", fmt):
        if m.group(0) == "%%":
            continue
        if m.start() > pos:
            out.append(("lit", fmt[pos : m.start()].replace("%%", "%"), "", ""))
        arg, letter = m.group(2), m.group(3)
        out.append(("var", _apache_name(letter, arg), m.group(0), arg or ""))
        pos = m.end()
    if pos < len(fmt):
        out.append(("lit", fmt[pos:].replace("%%", "%"), "", ""))
    return out


def _apache_name(letter: str, arg: str | None) -> str:
    if arg is not None:
        key = arg.lower().replace("-", "_")
        if letter == "i":
            return "http_" + key
        if letter == "o":
            return "sent_http_" + key
        if letter == "C":
            return "cookie_" + key
        if letter == "e":
            return "env_" + key
        if letter == "n":
            return "note_" + key
        if letter == "T":
            return {"ms": "request_time_ms", "us": "request_time_us", "s": "request_time_s"}.get(
                key, "request_time_s"
            )
        if letter == "t":
            return "time_strftime"
        if letter == "a":
            return "peer_addr" if key == "c" else "remote_addr"
        if letter == "p":
            return (
                "server_port"
                if key in ("canonical", "local")
                else "remote_port"
                if key == "remote"
                else "server_port"
            )
        return f"{letter}_{key}"
    return _APACHE_SIMPLE.get(letter, f"apache_{letter}")


def _value_pattern(name: str, quoted: bool, bracketed: bool, last: bool, escaped: bool) -> str:
    if quoted:
        return _QUOTED_ESCAPED if escaped else _QUOTED_FAST
    if name == "time_apache":
        return r"\[[^\]]*\]"
    if bracketed:
        return _BRACKETED
    if name == "time_local":
        return r"\d{1,2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}"
    if name in _LIST_VARS:
        return _LIST
    if name in ("http_x_forwarded_for", "proxy_add_x_forwarded_for"):
        return _ADDR_LIST
    if name == "time_strftime":
        return r".+?"
    return _TOKEN


def _build(tokens: list[_Tok], fmt: str, name: str, dialect: str) -> CompiledFormat:
    fields: list[Field] = []
    fast: list[str] = ["^"]
    tolerant: list[str] = ["^"]
    time_format = None
    seen: dict[str, int] = {}
    # The fast regex again, cut at literal double quotes: pieces and field indices per segment.
    seg_parts: list[list[str]] = [[]]
    seg_fields: list[list[int]] = [[]]
    seg_text: list[str] = [""]
    for i, (kind, text, original, arg) in enumerate(tokens):
        if kind == "lit":
            lit = re.escape(text)
            fast.append(lit)
            tolerant.append(lit)
            for j, piece in enumerate(text.split('"')):
                if j:
                    seg_parts.append([])
                    seg_fields.append([])
                    seg_text.append("")
                if piece:
                    seg_parts[-1].append(re.escape(piece))
                    seg_text[-1] += piece
            continue
        prev = tokens[i - 1][1] if i > 0 and tokens[i - 1][0] == "lit" else ""
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) and tokens[i + 1][0] == "lit" else ""
        quoted = prev.endswith('"') and nxt.startswith('"')
        bracketed = prev.endswith("[") and nxt.startswith("]")
        last = i == len(tokens) - 1
        if text == "time_strftime":
            time_format = arg
        canon = text
        if canon in seen:  # the same variable twice: keep both, the second in extra
            seen[canon] += 1
            canon = f"{canon}__{seen[canon]}"
        else:
            seen[canon] = 1
        fields.append(Field(original, canon, quoted))
        fast.append("(" + _value_pattern(text, quoted, bracketed, last, False) + ")")
        tolerant.append("(" + _value_pattern(text, quoted, bracketed, last, True) + ")")
        seg_parts[-1].append(fast[-1])
        seg_fields[-1].append(len(fields) - 1)
    lits = [t[1] for t in tokens if t[0] == "lit" and t[1].strip()]
    hint = max(lits, key=len).strip() if lits else ""
    segments: tuple[Segment, ...] = ()
    if len(seg_parts) > 1:
        segments = tuple(
            Segment(
                None if parts == [f"({_QUOTED_FAST})"] else "^" + "".join(parts) + "$",
                tuple(idx),
                "" if idx else text,
            )
            for parts, idx, text in zip(seg_parts, seg_fields, seg_text, strict=True)
        )
    return CompiledFormat(
        name=name,
        dialect=dialect,
        source=fmt,
        fields=tuple(fields),
        regex="".join(fast) + "$",
        tolerant_regex="".join(tolerant) + "$",
        time_format=time_format,
        literal_hint=hint,
        segments=segments,
    )


# --------------------------------------------------------------------------------------------------
# Presets: real configuration strings, compiled by the same function.

NGINX_PRESETS: dict[str, str] = {
    # nginx.conf as shipped (and Docker's nginx image): combined + X-Forwarded-For.
    "main": '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for"',
    # Built into nginx (ngx_http_log_module).
    "combined": '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent"',
    # Nginx Proxy Manager, docker/rootfs/etc/nginx/nginx.conf: log_format proxy / standard.
    "npm_proxy": "[$time_local] $upstream_cache_status $upstream_status $status - $request_method $scheme $host "
    '"$request_uri" [Client $remote_addr] [Length $body_bytes_sent] [Gzip $gzip_ratio] [Sent-to $server] '
    '"$http_user_agent" "$http_referer"',
    "npm_standard": '[$time_local] $status - $request_method $scheme $host "$request_uri" [Client $remote_addr] '
    '[Length $body_bytes_sent] [Gzip $gzip_ratio] "$http_user_agent" "$http_referer"',
}

APACHE_PRESETS: dict[str, str] = {
    # httpd.conf: LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"" combined
    "combined": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"',
    # Debian/Ubuntu apache2.conf: combined and vhost_combined with %O (bytes sent incl. headers).
    "debian_combined": '%h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"',
    "vhost_combined": '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"',
    "common": '%h %l %u %t "%r" %>s %b',
    "vhost_common": '%v %h %l %u %t "%r" %>s %b',
}


# nginx error.log lines that describe a request ("… client: 1.2.3.4, server: x, request: "GET / HTTP/1.1",
# host: "x""). Not a log_format (error_log has a fixed layout), so the regex is written out. Nginx Proxy
# Manager's container logs interleave them with access lines; a failed basic-auth login is one.
_NGINX_ERROR = CompiledFormat(
    name="nginx_error",
    dialect="nginx",
    source="(nginx error_log with client and request)",
    fields=tuple(
        Field(n, n, False)
        for n in (
            "time_strftime",
            "error_level",
            "error_pid",
            "error_message",
            "remote_addr",
            "server_name",
            "request",
            "upstream",
            "host",
            "http_referer",
        )
    ),
    regex=(
        r"^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[([a-z]+)\] (\d+#\d+): (?:\*\d+ )?(.*?), client: ([^,]+)"
        r'(?:, server: ([^,]*))?, request: "([^"]*)"(?:, upstream: "([^"]*)")?(?:, host: "([^"]*)")?'
        r'(?:, referrer: "([^"]*)")?$'
    ),
    tolerant_regex="",
    time_format="%Y/%m/%d %H:%M:%S",
)
_NGINX_ERROR = CompiledFormat(**{**_NGINX_ERROR.__dict__, "tolerant_regex": _NGINX_ERROR.regex})

#: Preset families: formats one product writes into the same stream, tried together.
FAMILIES: dict[str, list[str]] = {
    "npm": ["npm_proxy", "npm_standard", "combined", "nginx_error"],
}


def presets(dialect: str) -> dict[str, CompiledFormat]:
    table = NGINX_PRESETS if dialect == "nginx" else APACHE_PRESETS
    out = {name: compile_format(fmt, name) for name, fmt in table.items()}
    if dialect == "nginx":
        out["nginx_error"] = _NGINX_ERROR
    return out


# --------------------------------------------------------------------------------------------------
# Canonical fields → event columns.


@dataclass
class Converted:
    columns: dict[str, pl.Expr] = field(default_factory=dict)
    extra: dict[str, pl.Expr] = field(default_factory=dict)


def _null_dash(e: pl.Expr) -> pl.Expr:
    return pl.when((e == "-") | (e == "")).then(None).otherwise(e)


_INT64 = pl.Int64()


def _int(e: pl.Expr, dtype: pl.DataType = _INT64) -> pl.Expr:
    return e.cast(dtype, strict=False)


def _seconds_to_ms(e: pl.Expr) -> pl.Expr:
    # Rounded to the microsecond the logs carry: 1.005 s is 1005.0 ms, not 1004.9999999999999.
    return (e.cast(pl.Float64, strict=False) * 1000.0).round(3)


def _list_total_ms(e: pl.Expr) -> pl.Expr:
    """``0.001, 0.002 : 0.003`` → total in ms (each attempt and each internal redirect took that long).

    Literal splits and a plain cast of the list of numbers (no regex, no per-element expression); a
    "-" attempt (no upstream answered) counts as nothing."""
    listed = (
        e.str.replace_all(" : ", ", ", literal=True)
        .str.split(", ")
        .cast(pl.List(pl.Float64), strict=False)
        .list.sum()
    )
    return (pl.coalesce(e.cast(pl.Float64, strict=False), listed) * 1000.0).round(3)


# Columns set by a canonical field; a callable returns the expression for that column.
_DIRECT: dict[str, tuple[str, object]] = {
    "remote_addr": ("remote_addr", None),
    "realip_remote_addr": ("remote_addr", None),
    "binary_remote_addr": ("remote_addr", None),
    "remote_port": ("client_port", lambda e: _int(e, pl.Int32())),
    "remote_user": ("principal", None),
    "request": ("request_line", None),
    "request_method": ("method", None),
    "request_uri": ("target", None),
    "uri": ("path", None),
    "document_uri": ("path", None),
    "args": ("query", None),
    "query_string": ("query", None),
    "server_protocol": ("protocol", None),
    "scheme": ("scheme", None),
    "status": ("status", lambda e: _int(e, pl.Int16())),
    "body_bytes_sent": ("bytes_out", _int),
    "bytes_sent": ("bytes_out_total", _int),
    "request_length": ("bytes_in", _int),
    "request_time": ("duration_ms", _seconds_to_ms),
    "request_time_s": ("duration_ms", _seconds_to_ms),
    "request_time_ms": ("duration_ms", lambda e: e.cast(pl.Float64, strict=False)),
    "request_time_us": ("duration_ms", lambda e: e.cast(pl.Float64, strict=False) / 1000.0),
    "http_referer": ("referer", None),
    "http_referrer": ("referer", None),
    "http_user_agent": ("user_agent", None),
    "http_x_forwarded_for": ("xff", None),
    "proxy_add_x_forwarded_for": ("xff", None),
    "host": ("host", None),
    "http_host": ("host", None),
    "server_name": ("server_name", None),
    "request_id": ("request_id", None),
    "http_x_request_id": ("request_id", None),
    "http_x_amzn_trace_id": ("request_id", None),
    "http_traceparent": ("request_id", None),
    "time_local": ("ts", "clf"),
    "time_apache": ("ts", "apache"),
    "time_iso8601": ("ts", "iso"),
    "msec": ("ts", "epoch"),
    "time_strftime": ("ts", "strftime"),
}

#: Header, cookie and argument variables that carry credentials.
_SECRET_HEADERS = {
    "http_authorization",
    "http_proxy_authorization",
    "http_x_api_key",
    "http_api_key",
    "http_apikey",
    "http_x_auth_token",
    "http_x_access_token",
    "http_cookie",
    "sent_http_set_cookie",
}
_SECRET_ARGS = re.compile(
    r"^arg_(?:api_?key|apikey|key|token|access_token|auth|password|passwd|secret|session)"
)


def is_secret_field(canon: str) -> bool:
    """Is this variable's value a credential (Authorization, API-key headers, cookies, secret arguments)?"""
    return canon in _SECRET_HEADERS or canon.startswith("cookie_") or bool(_SECRET_ARGS.match(canon))


def secret_kind(canon: str) -> str:
    """The ``auth`` kind a credential variable stands for."""
    if canon in ("http_authorization", "http_proxy_authorization"):
        return "authorization"
    if canon.startswith("cookie_") or canon in ("http_cookie", "sent_http_set_cookie"):
        return "cookie"
    return "apikey"


#: Canonical fields whose text is dropped (no information for the investigation).
_DROP = {"ident"}

#: Fields with nginx/Apache backslash escaping (``\xHH``, ``\"``) that is undone for readability.
ESCAPED_COLUMNS = ("user_agent", "referer", "path", "query", "target", "principal", "host")


def to_events(parsed: pl.DataFrame, fmt: CompiledFormat) -> pl.DataFrame:
    """Convert a frame of canonical fields (strings) into event columns + intermediate columns.

    Intermediate columns (``remote_addr``, ``xff``, ``request_line``, ``target``, ``authorization``,
    ``api_key``, ``cookie``, ``server_name``, ``bytes_out_total``) are resolved by
    :func:`forensics.ingest.base.finalize`.
    """
    exprs: dict[str, pl.Expr] = {}
    extra: dict[str, pl.Expr] = {}
    for name in parsed.columns:
        if not name.startswith("f_"):
            continue
        canon = name[2:]
        if canon in _DROP:
            continue
        target = _DIRECT.get(canon)
        # numbers and times: a failed conversion is null anyway, no need to test for "-"
        numeric = target is not None and (target[0] == "ts" or callable(target[1]))
        if numeric:
            col = pl.col(name)
        elif canon == "request":
            # An empty request ("") is what the client sent: kept as "" (DESIGN: the raw request is kept
            # when it cannot be read); "-" means the server had none to write.
            col = pl.when(pl.col(name) == "-").then(None).otherwise(pl.col(name))
        else:
            col = _null_dash(pl.col(name))
        if is_secret_field(canon):
            # credentials: fingerprinted by finalize(), never kept in clear (principal/auth from them)
            exprs[f"secret:{canon}"] = col
            continue
        if canon == "upstream_response_time":
            extra["upstream_response_time"] = col
            extra["upstream_response_ms"] = _list_total_ms(col)
            continue
        if target is None:
            extra[canon] = col
            continue
        column, conv = target
        if column in exprs:  # a second source for the same column (e.g. host and http_host): keep in extra
            extra[canon] = col
            continue
        if column == "ts":
            expr, local = _time_expr(col, str(conv), fmt)
            exprs["_ts_local" if local else "ts"] = expr
            continue
        exprs[column] = conv(col) if callable(conv) else col  # type: ignore[operator]
    out = parsed.select(
        *[pl.col(c) for c in parsed.columns if not c.startswith("f_")],
        *[e.alias(k) for k, e in exprs.items()],
        *(
            [pl.struct([e.alias(k) for k, e in extra.items()]).struct.json_encode().alias("extra")]
            if extra
            else []
        ),
    )
    return out


def _time_expr(col: pl.Expr, kind: str, fmt: CompiledFormat) -> tuple[pl.Expr, bool]:
    """(expression, is local time): local (offset-less) times go to ``_ts_local`` for finalize() to
    localise with --tz by the DST rule of forensics.ingest._time."""
    if kind == "clf":
        return col.str.to_datetime(CLF_TIME, time_unit="us", strict=False, cache=True).dt.convert_time_zone(
            "UTC"
        ), False
    if kind == "apache":
        inner = col.str.strip_prefix("[").str.strip_suffix("]")
        return inner.str.to_datetime(CLF_TIME, time_unit="us", strict=False, cache=True).dt.convert_time_zone(
            "UTC"
        ), False
    if kind == "iso":
        return parse_iso_time(col), False
    if kind == "epoch":
        return parse_epoch_seconds(col), False
    strf = fmt.time_format or ""
    if strf.startswith(("begin:", "end:")):
        strf = strf.split(":", 1)[1]
    if "%z" in strf:
        return col.str.to_datetime(strf, time_unit="us", strict=False, cache=True).dt.convert_time_zone(
            "UTC"
        ), False
    return col.str.to_datetime(strf, time_unit="us", strict=False, cache=True), True
