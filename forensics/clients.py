"""Who made the request: the client address behind proxies and load balancers.

Policy (DESIGN.md, FORMATS.md): when the address the server saw (the peer) is a trusted proxy (private,
loopback or link-local ranges, or a ``--trusted-proxy`` CIDR) and X-Forwarded-For is present, the client
is the right-most address in the chain that is not a trusted proxy; a client can forge the left part,
every proxy appends what it saw. If every address is trusted, the left-most one is the client. When the
peer is not trusted, X-Forwarded-For is ignored: anybody can send it. ``peer_ip`` keeps the address the
server saw when it differs from the client.

Vectorised: the trust decision is made once per distinct address (with :mod:`ipaddress`), and applied
to the rows with ``is_in``; the chains are polars lists.
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
    """Strip brackets and ports: ``[2001:db8::1]:443`` → ``2001:db8::1``, ``1.2.3.4:80`` → ``1.2.3.4``."""
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


def trusted_subset(values: pl.Series, nets: Sequence[Network]) -> pl.Series:
    """The distinct values of ``values`` that are trusted proxy addresses."""
    uniq = values.drop_nulls().unique()
    return pl.Series([v for v in uniq.to_list() if _is_trusted(v, nets)], dtype=pl.String)


def resolve_clients(frame: pl.DataFrame, nets: Sequence[Network]) -> pl.DataFrame:
    """Add ``client_ip`` and ``peer_ip`` from ``remote_addr`` (the peer, possibly itself a list) and ``xff``.

    Rows that already carry ``client_ip`` (sources that state the client, like GCP's remoteIp) keep it.
    """
    if "remote_addr" not in frame.columns:
        return frame
    has_xff = "xff" in frame.columns
    chain_parts = []
    if has_xff:
        chain_parts.append(pl.col("xff").fill_null(""))
    chain_parts.append(pl.col("remote_addr").fill_null(""))
    chain = (
        pl.concat_str(chain_parts, separator=",")
        .str.split(",")
        .list.eval(normalise_address(pl.element()))
        .list.eval(pl.element().filter((pl.element() != "") & (pl.element() != "-")))
    )
    work = frame.with_columns(chain.alias("_chain"))
    work = work.with_columns(pl.col("_chain").list.last().alias("_peer"))
    trusted = trusted_subset(work.get_column("_chain").explode(), nets)
    # The right-most untrusted address, else the left-most; only when the peer itself is trusted.
    trusted_list = pl.lit(trusted).implode()
    untrusted_last = (
        pl.col("_chain").list.eval(pl.element().filter(~pl.element().is_in(trusted_list))).list.last()
    )
    resolved = (
        pl.when(pl.col("_peer").is_in(trusted_list))
        .then(pl.coalesce(untrusted_last, pl.col("_chain").list.first()))
        .otherwise(pl.col("_peer"))
    )
    if "client_ip" in frame.columns:
        resolved = pl.coalesce(pl.col("client_ip"), resolved)
    work = work.with_columns(resolved.alias("client_ip"))
    work = work.with_columns(
        pl.when(pl.col("_peer") != pl.col("client_ip")).then(pl.col("_peer")).otherwise(None).alias("peer_ip")
    )
    return work.drop("_chain", "_peer")
