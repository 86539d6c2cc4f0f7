"""Who made the request: the client address behind proxies and load balancers.

Policy (DESIGN.md, FORMATS.md): when the address the server saw (the peer) is a trusted proxy (private,
loopback or link-local ranges, or a ``--trusted-proxy`` CIDR) and X-Forwarded-For is present, the client
is the right-most address in the chain that is not a trusted proxy; a client can forge the left part,
every proxy appends what it saw. If every address is trusted, the left-most one is the client. When the
peer is not trusted, X-Forwarded-For is ignored: anybody can send it. ``peer_ip`` keeps the address the
server saw when it differs from the client.

Vectorised: IPv4 addresses are turned into integers and compared with the trusted ranges as polars
expressions; the few IPv6 and odd values are decided once per distinct value with :mod:`ipaddress`.
Rows with a single-address X-Forwarded-For (the common case) need no list operations at all; only
chains go through polars lists.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

import polars as pl

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_TRUSTED: tuple[str, ...] = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
)

_OCTET = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"


def parse_networks(cidrs: Iterable[str]) -> list[Network]:
    """Parse CIDR strings; raises ValueError with the offending text."""
    nets: list[Network] = []
    for cidr in cidrs:
        try:
            nets.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not a CIDR range: {cidr!r}") from exc
    return nets


def trusted_networks(extra: Sequence[str] = ()) -> list[Network]:
    return parse_networks([*DEFAULT_TRUSTED, *extra])


def normalise_address(expr: pl.Expr) -> pl.Expr:
    """Strip quotes, brackets and ports: ``[2001:db8::1]:443`` → ``2001:db8::1``, ``1.2.3.4:80`` → ``1.2.3.4``."""
    expr = expr.str.strip_chars(' \t"')
    expr = expr.str.replace(r"^\[([^\]]+)\](?::\d+)?$", "$1")
    return expr.str.replace(r"^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}):\d+$", "$1")


def _is_trusted(addr: str, nets: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False  # odd text (``170.01.01.02``, ``unknown``) is never a proxy of ours
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in nets if net.version == ip.version)


def trusted_expr(addr: pl.Expr, values: pl.Series, nets: Sequence[Network]) -> pl.Expr:
    """Boolean expression: is ``addr`` a trusted proxy? ``values`` are the values it can take (for the
    non-IPv4 minority, decided once per distinct value)."""
    octets = addr.str.extract_groups(_IPV4)
    as_int = (
        octets.struct.field("1").cast(pl.Int64) * 16777216
        + octets.struct.field("2").cast(pl.Int64) * 65536
        + octets.struct.field("3").cast(pl.Int64) * 256
        + octets.struct.field("4").cast(pl.Int64)
    )
    v4 = pl.lit(False)
    for net in nets:
        if net.version == 4:
            lo, hi = int(net.network_address), int(net.broadcast_address)
            v4 = v4 | as_int.is_between(lo, hi)
    others = values.filter(values.str.contains(":", literal=True)).unique()
    trusted_v6 = [v for v in others.to_list() if _is_trusted(v, nets)]
    v6 = addr.is_in(pl.Series(trusted_v6, dtype=pl.String).implode()) if trusted_v6 else pl.lit(False)
    return (v4.fill_null(False) | v6).fill_null(False)


def canonical_addresses(values: pl.Series) -> pl.Series:
    """IPv6 addresses in one spelling (``2001:DB8::0:61`` → ``2001:db8::61``) and IPv4-mapped ones as
    IPv4 (``::ffff:198.51.100.7`` → ``198.51.100.7``), so one client is one value whichever server
    logged it; decided once per distinct value with a colon, everything else untouched."""
    v6 = values.str.contains(":", literal=True).fill_null(False)
    if not v6.any():
        return values
    mapping: dict[str, str] = {}
    for v in values.filter(v6).unique().to_list():
        try:
            ip = ipaddress.ip_address(v)
        except ValueError:
            continue  # odd text stays as logged
        text = str(ip.ipv4_mapped) if ip.version == 6 and ip.ipv4_mapped is not None else str(ip)
        if text != v:
            mapping[v] = text
    return values.replace(mapping) if mapping else values


def resolve_clients(frame: pl.DataFrame, nets: Sequence[Network]) -> pl.DataFrame:
    """Add ``client_ip`` and ``peer_ip`` from ``remote_addr`` (the peer, possibly itself a list) and ``xff``.

    Rows that already carry ``client_ip`` (sources that state the client, like GCP's remoteIp) keep it.
    """
    if "remote_addr" not in frame.columns:
        if "xff" not in frame.columns:
            return frame
        # A format that logs X-Forwarded-For in place of the peer (Apache "%{X-Forwarded-For}i %l %u …"):
        # the server sits behind a proxy; the client is the right-most untrusted address of the chain.
        frame = frame.with_columns(pl.lit(None, pl.String).alias("remote_addr"))
        no_peer = True
    else:
        no_peer = False
    xff = pl.col("xff") if "xff" in frame.columns else pl.lit(None, pl.String)
    work = frame.with_row_index("_row").with_columns(
        pl.col("remote_addr").alias("_ra"),
        pl.when(xff.is_in(["-", ""])).then(None).otherwise(xff).alias("_xff"),
    )
    # Chains: an X-Forwarded-For list, or an address list where $remote_addr should be.
    is_chain = pl.col("_xff").str.contains(",", literal=True).fill_null(False) | pl.col("_ra").str.contains(
        ",", literal=True
    ).fill_null(False)
    odd = pl.col("_ra").str.contains(r"[\[\]\s\"]|^\d+\.\d+\.\d+\.\d+:\d+$").fill_null(False) | pl.col(
        "_xff"
    ).str.contains(r"[\[\]\s\"]|^\d+\.\d+\.\d+\.\d+:\d+$").fill_null(False)
    # No peer on this row but a chain: the chain alone decides (as when the format logs no peer at all).
    peerless = pl.col("_ra").is_null() & pl.col("_xff").is_not_null()
    work = work.with_columns((is_chain | odd | peerless | pl.lit(no_peer)).alias("_slow"))
    any_slow = bool(work.get_column("_slow").any())
    slow = work.filter(pl.col("_slow")) if any_slow else work.clear()
    fast = work.filter(~pl.col("_slow")) if any_slow else work
    parts = []
    if fast.height:
        # One address each side: the client is the X-Forwarded-For address when the peer is trusted
        # (whatever that address is: right-most untrusted, or the only one left). Trust is decided for
        # the distinct peers only.
        peers = fast.get_column("_ra").drop_nulls().unique()
        flags = pl.DataFrame({"a": peers}).select(trusted_expr(pl.col("a"), peers, nets)).to_series()
        peer_trusted = pl.col("_ra").is_in(peers.filter(flags).implode())
        resolved = (
            pl.when(peer_trusted & pl.col("_xff").is_not_null()).then(pl.col("_xff")).otherwise(pl.col("_ra"))
        )
        parts.append(fast.with_columns(resolved.alias("_client"), pl.col("_ra").alias("_peer")))
    # (the fast and chain parts have the same columns, in the same order)
    if slow.height or not parts:
        parts.append(_resolve_chains(slow, nets))
    work = pl.concat(parts).sort("_row") if len(parts) > 1 else parts[0]
    client = pl.col("_client")
    if "client_ip" in frame.columns:
        client = pl.coalesce(pl.col("client_ip"), client)
    work = work.with_columns(client.alias("client_ip"))
    work = work.with_columns(
        pl.when(pl.col("_peer") != pl.col("client_ip")).then(pl.col("_peer")).otherwise(None).alias("peer_ip")
    )
    out = work.drop("_row", "_ra", "_xff", "_slow", "_client", "_peer")
    return out.drop("remote_addr") if no_peer else out


def _resolve_chains(frame: pl.DataFrame, nets: Sequence[Network]) -> pl.DataFrame:
    """The general case with polars lists: right-most untrusted, else left-most."""
    chain = (
        pl.concat_str([pl.col("_xff").fill_null(""), pl.col("_ra").fill_null("")], separator=",")
        .str.split(",")
        .list.eval(normalise_address(pl.element()))
        .list.eval(pl.element().filter((pl.element() != "") & (pl.element() != "-")))
    )
    work = frame.with_columns(chain.alias("_chain"))
    work = work.with_columns(pl.col("_chain").list.last().alias("_peer"))
    members = work.get_column("_chain").explode().drop_nulls().unique()
    flags = pl.DataFrame({"a": members}).select(trusted_expr(pl.col("a"), members, nets)).to_series()
    trusted = pl.lit(members.filter(flags)).implode()
    untrusted_last = pl.col("_chain").list.eval(pl.element().filter(~pl.element().is_in(trusted))).list.last()
    resolved = (
        pl.when(pl.col("_peer").is_in(trusted))
        .then(pl.coalesce(untrusted_last, pl.col("_chain").list.first()))
        .otherwise(pl.col("_peer"))
    )
    return (
        work.with_columns(resolved.alias("_client")).drop("_chain").select(*frame.columns, "_client", "_peer")
    )
