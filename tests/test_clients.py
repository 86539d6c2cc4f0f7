"""Client resolution on tiny inline frames."""

from __future__ import annotations

import polars as pl
import pytest

from forensics.clients import resolve_clients, trusted_networks


def _resolve(rows: list[tuple[str | None, str | None]], extra: tuple[str, ...] = ()) -> list[tuple]:
    frame = pl.DataFrame(rows, schema={"remote_addr": pl.String, "xff": pl.String}, orient="row")
    out = resolve_clients(frame, trusted_networks(extra))
    return list(zip(out["client_ip"].to_list(), out["peer_ip"].to_list(), strict=True))


def test_direct_client_without_proxy():
    assert _resolve([("198.51.100.1", None)]) == [("198.51.100.1", None)]


def test_forged_left_part_is_ignored():
    assert _resolve([("10.0.0.1", "6.6.6.6, 198.51.100.2")]) == [("198.51.100.2", "10.0.0.1")]


def test_all_trusted_chain_gives_left_most():
    assert _resolve([("127.0.0.1", "10.0.0.2, 10.0.0.1")]) == [("10.0.0.2", "127.0.0.1")]


def test_untrusted_peer_xff_not_believed():
    assert _resolve([("198.51.100.3", "1.2.3.4")]) == [("198.51.100.3", None)]


def test_ipv6_and_ports_and_odd_text():
    rows = [
        ("fd00::5", "[2001:db8::7]:443"),
        ("10.0.0.1", "203.0.113.4:5555"),
        ("170.01.01.02", None),
        ("10.0.0.1", "unknown, 198.51.100.8"),
    ]
    assert _resolve(rows) == [
        ("2001:db8::7", "fd00::5"),
        ("203.0.113.4", "10.0.0.1"),
        ("170.01.01.02", None),
        ("198.51.100.8", "10.0.0.1"),
    ]


def test_custom_trusted_range():
    assert _resolve([("192.0.2.1", "198.51.100.9")], ("192.0.2.0/24",)) == [("198.51.100.9", "192.0.2.1")]


def test_empty_frame_keeps_schema():
    out = resolve_clients(
        pl.DataFrame(schema={"remote_addr": pl.String, "xff": pl.String}), trusted_networks()
    )
    assert out.height == 0 and out.schema["client_ip"] == pl.String


def test_a_row_without_a_peer_resolves_from_its_chain():
    assert _resolve([(None, "198.51.100.4"), ("10.0.0.1", "198.51.100.5"), (None, None)]) == [
        ("198.51.100.4", None),
        ("198.51.100.5", "10.0.0.1"),
        (None, None),
    ]


def test_host_port_split_keeps_bare_ipv6_whole():
    from forensics.ingest._records import split_address

    values = ["fe80::1", "1.2.3.4:80", "[2001:db8::1]:443", "[2001:db8::1]", "host:8080", "170.01.01.02", "-"]
    out = split_address(pl.DataFrame({"a": values}), "a", "h", "p").select("h", "p")
    assert out.rows() == [
        ("fe80::1", None),
        ("1.2.3.4", 80),
        ("2001:db8::1", 443),
        ("2001:db8::1", None),
        ("host", 8080),
        ("170.01.01.02", None),
        (None, None),
    ]


def test_one_client_is_one_value_whichever_server_logged_it(ingest_files):
    """IPv6 case and zero compression, and IPv4-mapped addresses of a dual-stack server."""
    line = '{a} - - [05/Jan/2023:16:40:1{i} +0000] "GET /x HTTP/1.1" 200 5 "-" "curl/8"\n'
    addrs = ["2001:DB8::0:61", "2001:db8::61", "::ffff:198.51.100.7", "198.51.100.7", "unknown"]
    case = ingest_files({"access.log": "".join(line.format(a=a, i=i) for i, a in enumerate(addrs))})
    ev = case.events()
    assert ev.get_column("client_ip").to_list() == [
        "2001:db8::61",
        "2001:db8::61",
        "198.51.100.7",
        "198.51.100.7",
        "unknown",
    ]
    assert ev.get_column("peer_ip").null_count() == len(addrs)


ISTIO = (
    '[2020-11-25T21:26:18.409Z] "GET /x HTTP/1.1" 200 - via_upstream - "-" 0 135 4 4 "198.51.100.9" '
    '"curl" "id" "h:8000" "10.44.1.27:80" outbound|8000||h 10.44.1.23:37652 10.0.45.184:8000 '
    "203.0.113.50:46520 - default\n"
)
TRAEFIK = (
    '{"ClientAddr":"203.0.113.5:4444","ClientHost":"203.0.113.5","ClientPort":"4444","DownstreamStatus":200,'
    '"Duration":1500000,"RequestMethod":"GET","RequestPath":"/","RequestProtocol":"HTTP/1.1",'
    '"StartUTC":"2021-12-08T14:02:43Z","request_X-Forwarded-For":"9.9.9.9"}\n'
)


@pytest.mark.parametrize(
    ("name", "line", "client"),
    [("istio.log", ISTIO, ("203.0.113.50", 46520)), ("traefik.json", TRAEFIK, ("203.0.113.5", 4444))],
)
def test_the_peer_port_is_the_clients_when_the_forwarded_chain_is_not_believed(
    ingest_files, name, line, client
):
    """A public peer's X-Forwarded-For is ignored: the client is the peer, and so is its port."""
    row = ingest_files({name: line}).events().row(0, named=True)
    assert (row["client_ip"], row["client_port"], row["peer_ip"]) == (*client, None)
