"""Personal-data detection: each kind, the checks behind it, counts, and that no value ever comes out."""

from __future__ import annotations

import base64
import json

import polars as pl
import pytest

from forensics import pii
from forensics.pii import (
    body_text,
    iban_valid,
    is_card_number,
    kinds_column,
    luhn_valid,
    scan_bodies,
    scan_body,
    scan_text,
    scannable,
)


def test_luhn_known_values():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert luhn_valid("4111111111111111")
    assert luhn_valid("4111 1111 1111 1111")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("4111-1111-1111-111x")
    assert not luhn_valid("0")


def test_card_numbers_need_a_network_prefix_and_luhn():
    assert is_card_number("4111 1111 1111 1111")  # Visa test number
    assert is_card_number("5500-0000-0000-0004")  # Mastercard
    assert is_card_number("340000000000009")  # Amex, 15 digits
    assert not is_card_number("4111111111111112")  # Luhn fails
    assert not is_card_number("1234567812345670")  # Luhn passes, no network starts with 12
    assert not is_card_number("411111111111")  # 12 digits


def test_iban_mod97():
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert iban_valid("DE89370400440532013000")
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ('{"email": "jane.doe@example.com"}', {"email": 1}),
        ("write to jane.doe@example.com or bob@example.org", {"email": 2}),
        ("logo@2x.png and icon@3x.webp", {}),
        ('{"msisdn": "14155550123"}', {"phone": 1}),
        ("call +14155550123 or (415) 555-0199", {"phone": 2}),
        ('{"firstName": "Jane", "lastName": "Doe"}', {"name": 1}),
        ('{"name": "Jane Doe", "email": "jane@example.com"}', {"name": 1, "email": 1}),
        ('{"name": "Jane Doe"}', {}),  # a bare name alone: a plan or product more often than a person
        ('{"plans": [{"name": "Magenta Unlimited Plus"}, {"name": "Essentials Saver"}]}', {}),
        ('{"name": "premium", "email": "a@example.com"}', {"email": 1}),
        ('{"full_name": "mitmproxy/mitmproxy"}', {}),
        ('{"billingAddress": {"street": "1 Elm St", "zip": "10001"}}', {"address": 1}),
        ("ship to 742 Evergreen Terrace, Springfield", {"address": 1}),
        ('{"postalCode": 10001}', {"address": 1}),
        ('{"dateOfBirth": "1980-04-01", "dob": "1990-01-01"}', {"dob": 1}),
        ("ssn 123-45-6789", {"ssn": 1}),
        ("ssn 000-45-6789 or 666-12-3456 or 123-00-6789", {}),
        ('{"ssn": "123456789"}', {"ssn": 1}),
        ("card 4111 1111 1111 1111", {"card": 1}),
        ("id 4111111111111112", {}),
        ('{"cardNumber": "**** **** **** 1111"}', {}),
        ('{"pan": "5500000000000004"}', {"card": 1}),
        ('{"accountNumber": "9876543210"}', {"account": 1}),
        ('{"BAN": "961234567"}', {"account": 1}),
        ("IBAN GB82 WEST 1234 5698 7654 32", {"account": 1}),
        ('{"client": "203.0.113.9", "v6": "2001:db8::1"}', {"ip": 2}),
        ("version 1.2.3.4", {}),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc-def_ghi", {"jwt": 1}),
        ('{"email": null, "phone": "", "ssn": "***-**-****"}', {}),
        ('{"emailVerified": true, "phoneType": "mobile"}', {}),
        ("", {}),
    ],
)
def test_each_kind(text, kinds):
    assert scan_text(text) == kinds


def test_counts_are_records_not_fields():
    records = [
        {
            "firstName": f"Ann{i}x",
            "lastName": "Lee",
            "email": f"a{i}@example.com",
            "phone": f"+1415555{i:04d}",
            "address": {"street": f"{i} Main Street", "zip": "10001"},
        }
        for i in range(1, 8)
    ]
    assert scan_text(json.dumps({"customers": records})) == {"name": 7, "email": 7, "phone": 7, "address": 7}


def test_values_are_never_returned():
    text = json.dumps(
        {"email": "jane.doe@example.com", "ssn": "123-45-6789", "cardNumber": "4111111111111111"}
    )
    found = scan_text(text)
    assert found == {"email": 1, "ssn": 1, "card": 1}
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in found.items())
    counts = scan_bodies(pl.Series([text, None, "nothing here"]))
    assert counts.columns == list(pii.KINDS)
    assert all(d == pl.UInt32 for d in counts.dtypes)
    assert counts.row(0, named=True)["email"] == 1 and counts.row(1, named=True)["email"] == 0


def test_vectorised_equals_scalar():
    bodies = [
        '{"email": "a@example.com", "phone": "+14155550123"}',
        "card 4111 1111 1111 1111, ssn 123-45-6789",
        None,
        '{"name": "Jane Doe", "accountNumber": "12345678"}',
        "plain",
    ]
    counts = scan_bodies(pl.Series(bodies, dtype=pl.String))
    for i, body in enumerate(bodies):
        row = {k: v for k, v in counts.row(i, named=True).items() if v}
        assert row == (scan_text(body) if body else {})
    assert kinds_column(counts).to_list() == [
        ["email", "phone"],
        ["ssn", "card"],
        [],
        ["name", "account"],
        [],
    ]


def test_scan_is_capped(monkeypatch):
    monkeypatch.setattr(pii, "SCAN_MAX_BYTES", 100)
    text = "a@example.com " * 50
    assert scan_text(text) == {"email": 7}  # 100 characters hold 7 whole addresses


def test_base64_and_binary_bodies():
    data = base64.b64encode(b'{"email": "x@example.com"}').decode()
    assert body_text(data, "base64") == '{"email": "x@example.com"}'
    assert scan_body(data, "application/json", "base64") == {"email": 1}
    assert body_text(base64.b64encode(b"\x89PNG\x00\x00").decode(), "base64") is None
    assert scan_body("%%%not base64!", None, "base64") == {}  # garbage decodes to nothing personal


def test_mime_types():
    assert scannable("application/json") and scannable("text/html; charset=utf-8") and scannable(None)
    assert not scannable("image/png") and not scannable("application/javascript")
    assert (
        not scannable("text/css")
        and not scannable("font/woff2")
        and not scannable("application/octet-stream")
    )
    assert scan_body('var e = "a@example.com";', "text/javascript") == {}


def test_bare_names_in_a_batch_do_not_hide_real_ones():
    bodies = [
        '{"plans": [{"name": "Magenta Unlimited Plus"}]}',
        '{"firstName": "Rosa", "lastName": "Tanaka", "accountNumber": "623576051"}',
        '{"name": "Rosa Tanaka", "email": "rosa@example.net"}',
    ]
    counts = scan_bodies(pl.Series(bodies))
    assert counts.get_column("name").to_list() == [0, 1, 1]
