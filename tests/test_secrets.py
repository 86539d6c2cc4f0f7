"""Credentials never reach the case directory in clear; fingerprints stay stable."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from forensics.secrets import _PREFILTER, fingerprint, mask_series, mask_text

TOKEN = "s3cr3t-T0ken-planted-4242"


def _case_text(case_dir: Path) -> str:
    """Everything in the case as text: raw bytes of every file, and every Parquet cell (compressed on disk)."""
    chunks = []
    for f in sorted(case_dir.rglob("*")):
        if not f.is_file():
            continue
        if f.suffix == ".parquet":
            frame = pl.read_parquet(f)
            chunks.append(frame.select(pl.all().cast(pl.String)).write_csv())
        else:
            chunks.append(f.read_bytes().decode("utf-8", "replace"))
    return "\n".join(chunks)


def test_planted_token_is_absent_from_the_whole_case(ingest_files):
    lines = (
        f'203.0.113.9 - - [01/Feb/2023:00:00:00 +0000] "GET /api/v1/me?api_key={TOKEN}&x=1 HTTP/1.1" 200 10 '
        f'"https://app.example.com/cb?access_token={TOKEN}" "curl/8"\n'
        f'203.0.113.9 - - [01/Feb/2023:00:00:01 +0000] "GET /reset?token={TOKEN} HTTP/1.1" 200 10 "-" "curl/8"\n'
        # a reject that carries the token must be masked too
        f'203.0.113.9 - - [01/Feb/2023:00:00:02 +0000] "GET /x?password={TOKEN} HTTP/1.1" 200 10 "-" "unterminated\n'
    ) * 3
    case = ingest_files({"access.log": lines})
    text = _case_text(case.case_dir)
    assert TOKEN not in text
    assert fingerprint(TOKEN) in text
    ev = case.events()
    assert ev.filter(pl.col("path") == "/api/v1/me")["principal"][0] == fingerprint(TOKEN)
    assert ev.filter(pl.col("path") == "/api/v1/me")["auth"][0] == "apikey"
    assert case.rejects().height == 3


def test_mask_shapes():
    assert mask_text(f"a=1&api_key={TOKEN}") == f"a=1&api_key={fingerprint(TOKEN)}"
    # an OAuth implicit-flow redirect carries the token in the fragment
    assert (
        mask_text(f"https://app/cb#access_token={TOKEN}&x=1")
        == f"https://app/cb#access_token={fingerprint(TOKEN)}&x=1"
    )
    assert (
        mask_text(f"a=1&next_page={TOKEN}&tokens=2") == f"a=1&next_page={TOKEN}&tokens=2"
    )  # not credentials
    assert mask_text(f"monkey={TOKEN}") == f"monkey={TOKEN}"  # not a credential name
    assert mask_text(f"https://bob:{TOKEN}@h/x") == f"https://bob:{fingerprint(TOKEN)}@h/x"
    assert mask_text(f"Authorization: Bearer {TOKEN}") == f"Authorization: Bearer {fingerprint(TOKEN)}"
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl"
    assert mask_text(f"x {jwt} y") == f"x {fingerprint(jwt)} y"
    # masking is idempotent: a fingerprint is not fingerprinted again
    once = mask_text(f"token={TOKEN}")
    assert mask_text(once) == once


def test_vectorised_masking_equals_scalar():
    values = [f"q=1&token={TOKEN}", None, "plain", f"token={TOKEN}x&token={TOKEN}", "password=&a=b"]
    got = mask_series(pl.Series(values, dtype=pl.String)).to_list()
    assert got == [mask_text(v) for v in values]


def test_every_credential_parameter_passes_the_prefilter():
    names = [
        "api_key",
        "apikey",
        "api-key",
        "x-api-key",
        "key",
        "access_token",
        "id-token",
        "refresh_token",
        "auth_token",
        "token",
        "auth",
        "authorization",
        "password",
        "passwd",
        "pwd",
        "pass",
        "secret",
        "client_secret",
        "signature",
        "sig",
        "X-Amz-Signature",
        "x-amz-credential",
        "x-amz-security-token",
        "session",
        "session_id",
        "sessid",
        "JSESSIONID",
        "phpsessid",
        "sid",
        "code",
        "jwt",
        "private_token",
        "csrf-token",
        "X-Goog-Signature",
        "X-Goog-Credential-Secret",
        "api%5Fkey",
        "access%5Ftoken",
        "x%2Damz%2Dcredential",
    ]
    values = pl.Series([f"a=1&{n}={TOKEN}" for n in names], dtype=pl.String)
    masked = mask_series(values).to_list()
    for name, value in zip(names, masked, strict=True):
        assert TOKEN not in value, name
        assert value == f"a=1&{name}={fingerprint(TOKEN)}"
    # The same names as JSON members (API Gateway, ALB extras, HAR bodies) pass the pre-filter too.
    members = pl.Series([f'{{"n":1,"{n}": "{TOKEN}"}}' for n in names], dtype=pl.String)
    for name, value in zip(names, mask_series(members).to_list(), strict=True):
        assert value == f'{{"n":1,"{name}": "{fingerprint(TOKEN)}"}}', name


def test_prefilter_skips_member_names_that_only_end_like_a_credential():
    """``"target_status_code"`` is in every ALB row's extra: it must not send every row to the regex."""
    extra = '{"type":"h2","target_status_code":"200","ssl_cipher":"ECDHE-RSA-AES128-GCM-SHA256"}'
    assert not pl.Series([extra]).str.contains_any(_PREFILTER, ascii_case_insensitive=True).any()
    assert mask_text(extra) == extra


def test_json_members_holding_credentials_are_masked():
    text = f'{{"user":"bob","api_key": "{TOKEN}","Cookie":"sid={TOKEN}","monkey":"{TOKEN}"}}'
    got = mask_text(text)
    assert f'"api_key": "{fingerprint(TOKEN)}"' in got
    assert '"Cookie":"fp:' in got
    assert f'"monkey":"{TOKEN}"' in got  # not a credential name
    assert got.count(TOKEN) == 1
    assert mask_text(got) == got  # idempotent
    assert mask_series(pl.Series([text, None])).to_list() == [got, None]


def test_masking_over_distinct_values_maps_back_to_every_row():
    from forensics.ingest.base import on_distinct

    values = pl.Series("user_agent", ["curl/8", f"bot token={TOKEN}", None, "curl/8", f"bot token={TOKEN}"])
    got = on_distinct(values, mask_series)
    assert got.to_list() == [mask_text(v) for v in values.to_list()]
    assert got.name == "user_agent" and values[1] == f"bot token={TOKEN}"  # the input is untouched
    clean = pl.Series("user_agent", ["curl/8", None, "okhttp/4"])
    assert on_distinct(clean, mask_series) is clean  # nothing to change: the column itself


def test_userinfo_of_an_absolute_request_url_is_neither_host_nor_stored(ingest_files):
    """``GET https://admin:pw@host/x`` (a proxy request): the host is the host, the password is gone."""
    alb = (
        "https 2023-01-05T16:40:12.000001Z app/api-prod/50dc6c495c0c9188 198.51.100.7:40000 10.0.1.23:8080 "
        f'0.000 0.010 0.000 200 200 100 200 "GET https://admin:{TOKEN}@api.example.com:443/x HTTP/1.1" '
        '"curl/8.0" - - arn:tg "Root=1-x" "-" "-" 0 2023-01-05T16:40:11.990000Z "forward" "-" "-" '
        '"10.0.1.23:8080" "200" "-" "-"\n'
    )
    nginx = (
        f'203.0.113.9 - - [01/Feb/2023:00:00:00 +0000] "GET https://admin:{TOKEN}@Api.Example.com/x?a=1 '
        'HTTP/1.1" 200 10 "-" "curl/8"\n'
    )
    case = ingest_files(
        {
            "AWSLogs/1/elasticloadbalancing/us-east-1/2023/01/05/1_elasticloadbalancing_us-east-1_app.a.b_20230105T1645Z_10.0.1.17_x.log": alb,
            "access.log": nginx,
        }
    )
    ev = case.events().sort("source_format")
    assert ev.select("source_format", "host", "path").rows() == [
        ("alb", "api.example.com", "/x"),
        ("nginx", "api.example.com", "/x"),
    ]
    assert TOKEN not in _case_text(case.case_dir)
